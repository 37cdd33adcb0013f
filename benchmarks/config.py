"""The latency benchmark's settings: :class:`BenchConfig` (defaults live here only), names and paths."""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass, field
from pathlib import Path

from dcpose_trt.errors import InputError

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"  # committed runs; its README.md index changes only on request
# Default output root: relative, so it lands under the working directory like every other verb's outputs (in a
# checkout: outputs/, git-ignored), never in the committed results. A default run folder that exists already
# gets a number (fresh_run_dir): a second run never replaces the first.
DEFAULT_OUT_ROOT = Path("outputs") / "bench"
DEFAULT_SCALE_OUT = DEFAULT_OUT_ROOT / "scale"  # `bench scale` (commit a run with --out benchmarks/results/...)
SHARED_DATA = Path(os.environ.get("DCPOSE_TRT_SHARED_DATA", REPO.parent / "shared" / "data"))
SAMPLE_DATASET = SHARED_DATA / "posetrack18_sample"
SAMPLE_CLIP = SAMPLE_DATASET / "videos" / "000001_mpiinew_test"
SAMPLE_DETECTIONS = SAMPLE_DATASET / "annotations" / "test_posetrack18_human_detections.json"

BACKENDS = ("torch", "onnxruntime", "tensorrt", "tensorrt-rtx", "openvino")
# The module each backend needs (torch is always installed).
_BACKEND_MODULE = {"onnxruntime": "onnxruntime", "openvino": "openvino", "tensorrt": "tensorrt"}


def default_backends() -> tuple[str, ...]:
    """What ``bench`` measures when ``--backends`` is not given: PyTorch (the baseline) and every other backend
    whose package is installed: ONNX Runtime, OpenVINO, TensorRT. TensorRT-RTX is left out (it only runs on RTX
    GPUs; name it). Found without importing anything (``--help`` stays fast)."""
    return ("torch", *(b for b, m in _BACKEND_MODULE.items() if importlib.util.find_spec(m) is not None))


def fresh_run_dir(path: Path) -> Path:
    """``path`` if it does not exist or is empty, else the first free ``path-2``, ``path-3``, ..."""
    path = Path(path)
    n = 1
    candidate = path
    while candidate.exists() and (not candidate.is_dir() or any(candidate.iterdir())):
        n += 1
        candidate = path.with_name(f"{path.name}-{n}")
    return candidate


def refuse_earlier_run(out: Path, marker: str = "results.json") -> None:
    """An ``--out`` the user named must not hold an earlier run: one line instead of replacing it.

    Raises:
        InputError: ``out/marker`` exists.
    """
    if (Path(out) / marker).exists():
        raise InputError(f"--out {out} holds an earlier run ({marker}); name a new folder or remove it first")
PRECISIONS = ("fp32", "fp16", "bf16", "int8")
MODES = ("exact", "cached")
STAGES = ("read", "crop", "infer", "align", "decode", "e2e")
# The DCN form each backend gets (architecture.md: TensorRT-RTX has no built-in DeformConv plugin).
# OpenVINO converts the torch module (torchvision's deform_conv2d → its native DeformableConvolution).
DEFORM_FOR = {"torch": "torchvision", "onnxruntime": "deformconv", "tensorrt": "deformconv",
              "tensorrt-rtx": "gridsample", "openvino": "torchvision"}


@dataclass(frozen=True)
class BenchConfig:
    """One benchmark run (one preset). Defaults live here only.

    Attributes:
        preset: model preset. Defaults to ``"tiny-128x96"``.
        model: DCPose checkpoint; None uses the bundled model for its preset, else the preset's random
            initialisation with a warning (timings do not depend on weights).
        backends: any of ``torch``, ``onnxruntime``, ``tensorrt``, ``tensorrt-rtx``, ``openvino``. Defaults to
            the installed ones (:func:`default_backends`).
        precisions: any of ``fp32``, ``fp16``, ``bf16``, ``int8`` (bf16: torch autocast and OpenVINO only).
        persons: person counts per frame, e.g. ``(1, 4, 8, 16)``; each is one batch.
        modes: ``exact`` (backbone on t-1, t, t+1 crops of the key box) and/or ``cached`` (backbone once
            per person-frame, split export).
        iters: timed frames per combination (median = p50). Defaults to 20.
        warmup: untimed frames before them, after the 2 frames that fill the look-ahead window.
        out: output folder. Defaults to ``outputs/bench/<date>-<machine>-<preset>`` under the working
            directory (the CLI numbers it when that folder holds an earlier run).
        video: real frames to read: a folder of images or a video file. Defaults to the shared sample clip.
        calib, calib_boxes: INT8 calibration source (see :class:`dcpose_trt.export.QuantizeConfig`).
            Defaults to the shared ``posetrack18_sample`` dataset with its detector boxes.
        calib_samples: person crops to calibrate on; None keeps the quantizer's default (256).
        device: torch device for the torch backend: ``auto`` (CUDA when available), ``cpu`` or ``cuda``.
        threads: ONNX Runtime intra-op threads (None: the cores this process may use).
        progress: tqdm bar over the combinations (off when stderr is not a terminal).
        update_index: rewrite the committed index ``benchmarks/results/README.md`` after the run; needs
            ``out`` directly under ``benchmarks/results``. Off by default: the index changes only on purpose.
    """

    preset: str = "tiny-128x96"
    model: Path | None = None
    backends: tuple[str, ...] = field(default_factory=default_backends)
    precisions: tuple[str, ...] = ("fp32", "fp16", "int8")
    persons: tuple[int, ...] = (1, 4, 8, 16)
    modes: tuple[str, ...] = ("exact", "cached")
    iters: int = 20
    warmup: int = 3
    out: Path | None = None
    video: Path | None = None
    calib: Path | None = None
    calib_boxes: Path | None = None
    calib_samples: int | None = None
    device: str = "auto"
    threads: int | None = None
    progress: bool = True
    update_index: bool = False

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raises :class:`~dcpose_trt.errors.InputError` naming the flag of the first bad setting."""
        from dcpose_trt.model.presets import get_preset

        get_preset(self.preset)  # InputError listing the presets
        for what, values, allowed in (("backend", self.backends, BACKENDS), ("precision", self.precisions,
                                      PRECISIONS), ("mode", self.modes, MODES)):
            bad = [v for v in values if v not in allowed]
            if bad or not values:
                raise InputError(f"unknown or no --{what}s {bad or ''}; choose from: {', '.join(allowed)}")
        if not self.persons or min(self.persons) < 1:
            raise InputError(f"--persons must be positive integers, got {list(self.persons)}")
        from dcpose_trt.engine.config import check_batch_limits

        h, w = get_preset(self.preset).image_size
        try:  # the bound of `build --persons`: TensorRT's tensor size limit and this machine's memory
            check_batch_limits([(1, 1, max(self.persons))], [("frames", "float32", [-1, 9, h, w]),
                                                             ("heatmaps", "float32", [-1, 17, h // 4, w // 4])])
        except InputError as exc:
            raise InputError(f"--persons {max(self.persons)}: {exc}") from None
        if self.iters < 1 or self.warmup < 0:
            raise InputError(f"--iters must be >= 1 and --warmup >= 0, got {self.iters} and {self.warmup}")
        if self.device not in ("auto", "cpu", "cuda"):
            raise InputError(f"--device must be auto, cpu or cuda, got {self.device!r}")
        if self.model is not None and not Path(self.model).is_file():
            raise InputError(f"checkpoint not found: {self.model}")
        if self.update_index and (self.out is None or Path(self.out).resolve().parent != RESULTS.resolve()):
            raise InputError(f"--update-index indexes the runs in {RESULTS}: give --out {RESULTS}/<run name>")

