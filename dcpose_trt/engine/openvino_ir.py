"""OpenVINO IR of a DCPose checkpoint: conversion with OpenVINO's PyTorch frontend, NNCF INT8, the IR cache.

The conversion step of the OpenVINO backend (:mod:`dcpose_trt.runtime.backends.ov_backend`), in the engine layer
because it uses the export stage (the ONNX export's backbone/head wrappers and the INT8 calibration crops).
The runtime asks :func:`ir_for_checkpoint` for the IR folder and opens it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from dcpose_trt._deps import require
from dcpose_trt.contract import META_PRESET
from dcpose_trt.engine import cache_manifest
from dcpose_trt.engine.model_cache import file_sha256
from dcpose_trt.engine.ov_extension import new_core
from dcpose_trt.errors import InputError

if TYPE_CHECKING:
    from dcpose_trt.export.quantize_config import QuantizeConfig

log = logging.getLogger(__name__)

#: The head's converted form, in the IR cache key: an IR cached before the head changed form (the native
#: ``DeformableConvolution`` head of earlier releases, or a head INT8 scope change) is converted again.
HEAD_FORM = "cpu-gridsample-1x1/int8-offsets/features-dtype"


def head_form() -> str:
    """:data:`HEAD_FORM` with this machine's DCN form (``fused``: the ``DcnGemm`` op, or ``graph``,
    :func:`dcpose_trt.engine.ov_extension.dcn_form`): an IR converted with the op is not reused where the
    op is not built, and the other way round."""
    from dcpose_trt.engine.ov_extension import dcn_form

    return f"{HEAD_FORM}/dcn-{dcn_form()}"


def _ov() -> Any:
    return require("openvino", "openvino", "the OpenVINO backend")


def default_cache_dir() -> Path:
    """``$DCPOSE_TRT_CACHE/openvino`` (default ``~/.cache/dcpose_trt/openvino``)."""
    from dcpose_trt._env import cache_root

    return cache_root("openvino")


def cpu_has_bf16() -> bool:
    """True when OpenVINO's CPU plugin reports native BF16 (AVX-512 BF16 or AMX)."""
    ov = _ov()
    try:
        caps = ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    except RuntimeError:  # no CPU plugin (OpenVINO raises RuntimeError): no BF16
        return False
    return "BF16" in caps


#: Overrides :func:`int8_head_features` (``fp32`` or ``bf16``).
HEAD_FEATURES_ENV = "DCPOSE_TRT_INT8_HEAD_FEATURES"


def int8_head_features() -> str:
    """The precision of the PRF/PTM/combine convs in an INT8 head built on this machine: ``$DCPOSE_TRT_INT8_
    HEAD_FEATURES`` when set, else ``bf16`` where the CPU has native BF16 (those convs take half the time
    there, docs/cpu_backends.md), else ``fp32``."""
    env = os.environ.get(HEAD_FEATURES_ENV, "").strip().lower()
    if env:
        if env not in ("fp32", "bf16"):
            raise InputError(f"{HEAD_FEATURES_ENV} must be fp32 or bf16, got {env!r}")
        return env
    return "bf16" if cpu_has_bf16() else "fp32"


def convert_parts(model: Any, parts: tuple[str, ...] = ("backbone", "head"),
                  head_features: str = "fp32", dcn: str | None = None) -> dict[str, Any]:
    """Backbone and head of a :class:`DCPose` → ``{"backbone": ov.Model, "head": ov.Model}`` (dynamic batch;
    ``parts`` picks which).

    Backbone ``image float32[B, 3, H, W]`` → ``float32[B, 17, h, w]``; head ``cur, prev, next
    float32[B, 17, h, w]`` + ``margin float32[B, 2]`` → ``float32[B, 17, h, w]``. The head is converted in
    its CPU form (:class:`~dcpose_trt.model.cpu_head.CpuHead`: each deformable conv as GridSample + a 1×1
    conv), which OpenVINO runs faster than its ``DeformableConvolution`` and NNCF can quantize;
    ``head_features="bf16"`` converts its PRF/PTM/combine convs in BF16 (the rest stays FP32); ``dcn``:
    ``fused`` (each DCN's sampling and 1×1 conv as our ``DcnGemm`` op, :mod:`dcpose_trt.engine.ov_extension`)
    or ``graph``, default :func:`~dcpose_trt.engine.ov_extension.dcn_form`.
    """
    import torch
    import torchvision.ops  # noqa: F401 - imported before tracing: its import-time _cuda_version op breaks the trace

    from dcpose_trt.engine.ov_extension import conversion_extensions, dcn_form
    from dcpose_trt.model.cpu_head import CpuHead


    class Part(torch.nn.Module):
        """One method of the model (``backbone`` or ``head``) as a module to convert."""

        def __init__(self, part: str):
            super().__init__()
            self.model, self.part = model, part

        def forward(self, *x: torch.Tensor) -> torch.Tensor:
            return getattr(self.model, self.part)(*x)

    ov = _ov()
    model = model.eval().cpu()
    h, w = model.preset.image_size
    hh, hw = model.preset.heatmap_size
    hm = [torch.rand(2, 17, hh, hw) * 0.1 for _ in range(3)]
    if head_features not in ("fp32", "bf16"):
        raise InputError(f"head_features must be fp32 or bf16, got {head_features!r}")
    dtype = torch.bfloat16 if head_features == "bf16" else torch.float32
    if dcn not in (None, "fused", "graph"):
        raise InputError(f"dcn must be fused or graph, got {dcn!r}")
    fused = "head" in parts and (dcn or dcn_form()) == "fused"
    specs = {
        "backbone": (Part("backbone").eval(), (torch.rand(2, 3, h, w),), [[-1, 3, h, w]]),
        "head": (CpuHead(model, dtype, fused_dcn=fused).eval(), (*hm, torch.ones(2, 2)),
                 [[-1, 17, hh, hw]] * 3 + [[-1, 2]]),
    }
    out = {}
    for part, (module, example, shapes) in specs.items():
        if part not in parts:
            continue
        t0 = time.perf_counter()
        with torch.no_grad(), warnings.catch_warnings():
            # OpenVINO's frontend traces with torch.jit, which PyTorch marks deprecated on every call: not
            # the user's concern, and two such warnings per conversion bury our progress lines.
            warnings.filterwarnings("ignore", category=FutureWarning, module=r"torch\.jit")
            ext = {"extension": conversion_extensions()} if part == "head" and fused else {}
            m = ov.convert_model(module, example_input=example, input=[ov.PartialShape(s) for s in shapes], **ext)
        m.set_rt_info(model.preset_name, ["framework", META_PRESET])
        log.info("converted the %s with OpenVINO's PyTorch frontend in %.1f s", part, time.perf_counter() - t0)
        out[part] = m
    return out


def quantize_backbone(backbone: Any, crops: np.ndarray, batch: int = 8) -> Any:
    """NNCF post-training INT8 quantization of a backbone ``ov.Model`` on real crops ``float32[N, 9, H, W]``.

    Each crop window gives three backbone images (current, previous, next), as at inference.
    """
    nncf = require("nncf", "openvino", "OpenVINO INT8 (NNCF post-training quantization)")
    images = np.ascontiguousarray(crops.reshape(-1, 3, *crops.shape[2:]), dtype=np.float32)
    batches = [images[i : i + batch] for i in range(0, len(images), batch)]
    t0 = time.perf_counter()
    q = nncf.quantize(backbone, nncf.Dataset(batches), subset_size=len(batches),
                      preset=nncf.QuantizationPreset.PERFORMANCE)
    log.info("NNCF quantized the backbone on %d images in %.1f s", len(images), time.perf_counter() - t0)
    return q


def quantize_head(head: Any, backbone: Any, crops: np.ndarray, batch: int = 8, scope: str = "offsets") -> Any:
    """NNCF INT8 quantization of the CPU-form head ``ov.Model`` (:mod:`dcpose_trt.model.cpu_head`).

    Calibrated on what the head sees at run time: the heatmaps ``backbone`` (the ``ov.Model`` that will run
    before it, INT8 or FP32) gives for the current, previous and next images of each crop window
    ``float32[N, 9, H, W]``, margin [1, 1]. ``scope`` (a key of ``INT8_KEEP_FLOAT``) says which convs
    are quantized; the sampling coordinates stay FP32 either way.
    """
    from dcpose_trt.model.cpu_head import INT8_KEEP_FLOAT

    nncf = require("nncf", "openvino", "OpenVINO INT8 (NNCF post-training quantization)")
    if scope not in INT8_KEEP_FLOAT:
        raise InputError(f"unknown head INT8 scope {scope!r}; choose one of: {', '.join(INT8_KEEP_FLOAT)}")
    t0 = time.perf_counter()
    compiled = new_core().compile_model(backbone, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    batches = []
    for i in range(0, len(crops), batch):
        window = np.ascontiguousarray(crops[i : i + batch], dtype=np.float32)  # (b, 9, H, W)
        b = len(window)
        # Channels [current, previous, next] RGB → (b·3, 3, H, W) images → (b, 3, 17, h, w) heatmaps.
        hm = compiled(window.reshape(b * 3, 3, *window.shape[2:]))[0]
        hm = hm.reshape(b, 3, *hm.shape[1:])
        batches.append([np.ascontiguousarray(hm[:, t]) for t in range(3)] + [np.ones((b, 2), np.float32)])
    q = nncf.quantize(head, nncf.Dataset(batches), subset_size=len(batches),
                      preset=nncf.QuantizationPreset.PERFORMANCE,
                      ignored_scope=nncf.IgnoredScope(patterns=[INT8_KEEP_FLOAT[scope]], validate=False))
    log.info("NNCF quantized the head (%s) on %d windows in %.1f s", scope, len(crops), time.perf_counter() - t0)
    return q


def ir_for_checkpoint(path: str | os.PathLike | None, precision: str = "fp32",
                      cache_dir: str | os.PathLike | None = None, calib: str | os.PathLike | None = None,
                      calib_boxes: str | os.PathLike | None = None, calib_samples: int = 256,
                      calib_split: str = "val") -> tuple[Path, Path]:
    """The IR pair of a checkpoint (None: the bundled model), converted once and cached; returns
    ``(ir_folder, cache_dir)``.

    The IR pair lands in ``<cache_dir>/<sha256[:16]>-ov<version>[-int8-<calib hash>]/`` and is reused by
    later calls. BF16 is a compile-time hint on the FP32 IR; only ``precision="int8"`` changes the IR and
    needs ``calib`` (a PoseTrack-layout dataset, or a video/frames folder with ``calib_boxes``), as
    ``dcpose-trt quantize`` does.
    """
    from dcpose_trt.model import bundled_model_path, load_model

    ov = _ov()
    ckpt = Path(path) if path is not None else bundled_model_path()
    if ckpt is None:
        raise InputError("no checkpoint given and no bundled model in this install")
    if not ckpt.is_file():
        raise InputError(f"checkpoint not found: {ckpt}")
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    ir_precision = "int8" if precision == "int8" else "fp32"
    if ir_precision == "int8" and calib is None:
        raise InputError("OpenVINO INT8 from a checkpoint needs real calibration crops: pass calib (a "
                         "PoseTrack-layout dataset, or a video/frames folder with calib_boxes), or give "
                         "an INT8 Q/DQ ONNX of the gridsample form ('dcpose-trt quantize')")
    fp32_name, fp32_key = ir_cache_key(ckpt, ov.__version__)
    fp32 = cache / fp32_name
    folder, key = fp32, fp32_key
    if ir_precision == "int8":
        name, key = ir_cache_key(ckpt, ov.__version__, calib, calib_boxes, calib_samples, calib_split)
        folder = cache / name
    if not _reusable(folder, key):
        model = load_model(ckpt)
        if ir_precision == "int8":  # quantize the (cached) FP32 conversion
            if not _reusable(fp32, fp32_key):
                build_ir(model, fp32, key=fp32_key)
            core = new_core()
            parts = {part: core.read_model(str(fp32 / f"{part}.xml")) for part in ("backbone", "head")}
            build_ir(model, folder, ir_precision, calib, calib_boxes, calib_samples, parts, calib_split, key=key)
        else:
            build_ir(model, folder, key=key)
    return folder, cache


def ir_cache_key(ckpt: Path, ov_version: str, calib: str | os.PathLike | None = None,
                 calib_boxes: str | os.PathLike | None = None, calib_samples: int = 256,
                 calib_split: str = "val") -> tuple[str, dict[str, str]]:
    """``(folder name, key)`` of a checkpoint's IR pair: the checkpoint's sha256 and the versions of
    dcpose-trt, torch and OpenVINO (the converter; NNCF's too for INT8, with the calibration inputs), so
    an upgrade of any of them converts again instead of reusing an IR of the old code."""
    from dcpose_trt.engine.model_cache import _version

    sha = file_sha256(ckpt)
    key = {"checkpoint_sha256": sha, "precision": "fp32", "dcpose-trt": _version("dcpose-trt"),
           "torch": _version("torch"), "openvino": ov_version, "head_form": head_form()}
    if calib is not None:
        key.update(precision="int8", nncf=_version("nncf"), head_features=int8_head_features(),
                   calib=str(Path(calib).resolve()),
                   calib_boxes=str(calib_boxes), calib_samples=str(calib_samples), calib_split=calib_split)
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]
    name = f"{sha[:16]}-ov{ov_version.split('-')[0]}-{digest}" + ("-int8" if calib is not None else "")
    return name, key


def _reusable(folder: Path, key: dict[str, str]) -> bool:
    """An IR pair whose files are as they were written for ``key``; a stale one is discarded with a warning."""
    if not folder.exists():
        return False
    why = cache_manifest.verify(folder, key) if is_ir_pair(folder) else "the IR pair is incomplete"
    if why is None:
        return True
    log.warning("the cached OpenVINO IR %s cannot be reused (%s); converting again", folder, why)
    cache_manifest.discard(folder)
    return False


def is_ir_pair(folder: Path) -> bool:
    """True when ``folder`` holds a converted ``backbone.xml`` + ``head.xml``."""
    return (folder / "backbone.xml").is_file() and (folder / "head.xml").is_file()


def build_ir(model: Any, folder: Path, precision: str = "fp32", calib: str | os.PathLike | None = None,
             calib_boxes: str | os.PathLike | None = None, calib_samples: int = 256,
             parts: dict[str, Any] | None = None, calib_split: str = "val", *,
             key: dict[str, str] | None = None, head_scope: str = "offsets",
             head_features: str | None = None) -> Path:
    """Convert a :class:`DCPose` into an IR pair in ``folder`` (``int8``: NNCF backbone and head on ``calib``
    crops; ``head_scope``: which head convs, see :func:`quantize_head`; ``head_features``: the precision of
    the INT8 head's PRF/PTM/combine convs, default :func:`int8_head_features`).

    ``parts``: already converted FP32 ``{"backbone", "head"}`` models to start from (skips the conversion;
    an INT8 head with BF16 features is converted again in that form).
    """
    parts = dict(parts) if parts is not None else convert_parts(model)
    if precision == "int8":
        head_features = head_features or int8_head_features()
        if head_features != "fp32":
            parts["head"] = convert_parts(model, ("head",), head_features)["head"]
        from dcpose_trt.export.int8 import calibration_crops
        from dcpose_trt.export.quantize_config import QuantizeConfig

        qc = QuantizeConfig(precision="int8", calib=Path(calib) if calib else None, calib_samples=calib_samples,
                            calib_boxes=Path(calib_boxes) if calib_boxes else None, calib_split=calib_split)
        p = model.preset
        crops = calibration_crops(qc, tuple(p.image_size), tuple(p.mean), tuple(p.std))
        parts["backbone"] = quantize_backbone(parts["backbone"], crops)
        parts["head"] = quantize_head(parts["head"], parts["backbone"], crops, scope=head_scope)
    _save_pair(parts, folder, key)
    return folder


def _save_pair(parts: dict[str, Any], folder: Path, key: dict[str, str] | None = None) -> None:
    """Write ``backbone.xml/.bin`` + ``head.xml/.bin`` into ``folder`` atomically (a temp folder renamed)."""
    ov = _ov()
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.with_name(f".{folder.name}.{os.getpid()}.tmp")
    tmp.mkdir(exist_ok=True)
    for part, m in parts.items():
        ov.save_model(m, str(tmp / f"{part}.xml"), compress_to_fp16=False)
    cache_manifest.write(tmp, key)  # checked before each reuse (_reusable)
    cache_manifest.discard(folder)  # a stale pair in the way of the rename
    try:
        os.replace(tmp, folder)
    except OSError:  # another process won the race: keep its copy
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)


def quantize_ir(model_path: str | os.PathLike | None, out: str | os.PathLike, qc: QuantizeConfig) -> Path:
    """``dcpose-trt quantize --target openvino``: the INT8 IR pair of a checkpoint (None: the bundled model)
    written into ``out`` (``backbone.xml/.bin`` + ``head.xml/.bin``, atomically), as the ``openvino-int8``
    backend builds it into its cache: NNCF INT8 backbone and head offset/mask convs (the PRF/PTM/combine
    convs in BF16 where the CPU has it, :func:`int8_head_features`), calibrated on ``qc``
    (``calib_method`` does not apply: NNCF sets its own ranges).
    """
    from dcpose_trt.model import bundled_model_path, load_model

    if qc.precision != "int8" or qc.target != "openvino":
        raise InputError("the OpenVINO IR is an INT8 target: give --precision int8 --target openvino")
    ckpt = Path(model_path) if model_path is not None else bundled_model_path()
    if ckpt is None:
        raise InputError("no --model given and no bundled model in this install")
    if not ckpt.is_file():
        raise InputError(f"checkpoint not found: {ckpt}")
    _ov()  # the install hint before the checkpoint loads
    return build_ir(load_model(ckpt), Path(out), "int8", qc.calib, qc.calib_boxes, qc.calib_samples,
                    calib_split=qc.calib_split)
