"""OpenVINO backend: the :class:`~dcpose_trt.runtime.backends.Backend` interface on the CPU through OpenVINO.

Sources, in order of preference:

* a DCPose checkpoint (``.pth``, or None for the bundled model): converted on demand with OpenVINO's
  PyTorch frontend (``ov.convert_model`` on the backbone and the head module; torchvision's
  ``deform_conv2d`` becomes OpenVINO's native ``DeformableConvolution``) and saved as IR in a cache keyed
  by the checkpoint's SHA-256, the precision and the OpenVINO version. This is the default because it
  keeps the deformable convolution one native op: on tiny-128x96 the head ran in 172 ms vs 187 ms
  for the ``gridsample`` ONNX form (FP32, 1 person, load average 10 on 2 cores, see README), and the
  backbone in 8.5 vs 24 ms.
* an ONNX file of the ``gridsample`` form (OpenVINO has no conversion rule for ONNX ``DeformConv``),
  whole or split (folder with ``backbone.onnx`` + ``head.onnx``), FP32 or our INT8 Q/DQ export;
* OpenVINO IR (``.xml``, or a folder with ``backbone.xml`` + ``head.xml``).

Precisions: ``fp32``; ``bf16`` (OpenVINO's inference-precision hint; only where the CPU reports BF16,
i.e. AVX-512 BF16 or AMX); ``int8`` (NNCF post-training quantization of the backbone, calibrated on real
person crops, with the head kept in FP32 because its deformable-conv offsets decide sub-pixel positions;
or a Q/DQ INT8 ONNX as exported). Compiled models are cached on disk (OpenVINO ``CACHE_DIR``) so a second
start skips compilation.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from dcpose_trt._deps import require
from dcpose_trt.errors import InputError

log = logging.getLogger(__name__)

NAME = "openvino"
PRECISIONS = ("fp32", "bf16", "int8")
# Backend names the CLI and make_backend accept: the precision rides on the name, so every verb that takes
# --backend gets BF16/INT8 without a new flag.
BACKEND_NAMES = ("openvino", "openvino-bf16", "openvino-int8")
_META_PRESET = "dcpose_trt.preset"
_META_PRECISION = "dcpose_trt.precision"
_HINT = {"fp32": "f32", "bf16": "bf16", "int8": "f32"}  # int8: the non-quantized parts run in FP32


def precision_of(backend: str) -> str:
    """``"openvino-bf16"`` → ``"bf16"``; ``"openvino"`` → ``"fp32"``."""
    if backend not in BACKEND_NAMES:
        raise InputError(f"unknown OpenVINO backend {backend!r}; choose one of: {', '.join(BACKEND_NAMES)}")
    return backend.split("-", 1)[1] if "-" in backend else "fp32"


def default_cache_dir() -> Path:
    """``$DCPOSE_TRT_CACHE/openvino``, else ``$XDG_CACHE_HOME/dcpose_trt/openvino`` (``~/.cache``)."""
    root = os.environ.get("DCPOSE_TRT_CACHE")
    if root:
        return Path(root) / "openvino"
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "dcpose_trt" / "openvino"


def _ov() -> Any:
    return require("openvino", "openvino", "the OpenVINO backend")


def cpu_has_bf16() -> bool:
    """True when OpenVINO's CPU plugin reports native BF16 (AVX-512 BF16 or AMX)."""
    ov = _ov()
    try:
        caps = ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    except Exception:  # noqa: BLE001 - no CPU plugin: no BF16
        return False
    return "BF16" in caps


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _check_precision(precision: str) -> None:
    if precision not in PRECISIONS:
        raise InputError(f"unknown OpenVINO precision {precision!r}; choose one of: {', '.join(PRECISIONS)}")
    if precision == "bf16" and not cpu_has_bf16():
        raise InputError("OpenVINO BF16 needs a CPU with AVX-512 BF16 or AMX; this CPU has neither "
                         "(use fp32 or int8)")


# %% Conversion ----------------------------------------------------------------------------------------


def convert_parts(model: Any) -> dict[str, Any]:
    """Backbone and head of a :class:`DCPose` → ``{"backbone": ov.Model, "head": ov.Model}`` (dynamic batch).

    Backbone ``image float32[B, 3, H, W]`` → ``float32[B, 17, h, w]``; head ``cur, prev, next
    float32[B, 17, h, w]`` + ``margin float32[B, 2]`` → ``float32[B, 17, h, w]``.
    """
    import torch
    import torchvision.ops  # noqa: F401 - imported before tracing: its import-time _cuda_version op breaks the trace

    from dcpose_trt.export.onnx_export import _Backbone, _Head  # the wrappers the ONNX export uses

    ov = _ov()
    model = model.eval().cpu()
    h, w = model.preset.image_size
    hh, hw = model.preset.heatmap_size
    hm = [torch.rand(2, 17, hh, hw) * 0.1 for _ in range(3)]
    specs = {
        "backbone": (_Backbone(model).eval(), (torch.rand(2, 3, h, w),), [[-1, 3, h, w]]),
        "head": (_Head(model).eval(), (*hm, torch.ones(2, 2)), [[-1, 17, hh, hw]] * 3 + [[-1, 2]]),
    }
    out = {}
    for part, (module, example, shapes) in specs.items():
        t0 = time.perf_counter()
        with torch.no_grad():
            m = ov.convert_model(module, example_input=example, input=[ov.PartialShape(s) for s in shapes])
        m.set_rt_info(model.preset_name, ["framework", _META_PRESET])
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


def from_checkpoint(path: str | os.PathLike | None, precision: str = "fp32", cache_dir: str | os.PathLike | None = None,
                    calib: str | os.PathLike | None = None, calib_boxes: str | os.PathLike | None = None,
                    calib_samples: int = 256, threads: int | None = None, calib_split: str = "val") -> OpenVINOBackend:
    """The OpenVINO backend of a checkpoint (None: the bundled model), converted once and cached as IR.

    The IR pair lands in ``<cache_dir>/<sha256[:16]>-<preset>-<precision>[-<calib hash>]/`` and is reused by
    later calls; INT8 needs ``calib`` (a PoseTrack-layout dataset, or a video/frames folder with
    ``calib_boxes``), as ``dcpose-trt quantize`` does.
    """
    from dcpose_trt.model import bundled_model_path, load_model

    _check_precision(precision)
    ov = _ov()
    ckpt = Path(path) if path is not None else bundled_model_path()
    if ckpt is None:
        raise InputError("no checkpoint given and no bundled model in this install")
    if not ckpt.is_file():
        raise InputError(f"checkpoint not found: {ckpt}")
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    key = f"{_file_sha256(ckpt)[:16]}-ov{ov.__version__.split('-')[0]}"
    # BF16 is a compile-time hint on the FP32 IR; only INT8 changes the IR (and depends on the calibration).
    ir_precision = "int8" if precision == "int8" else "fp32"
    if ir_precision == "int8":
        if calib is None:
            raise InputError("OpenVINO INT8 from a checkpoint needs real calibration crops: pass calib (a "
                             "PoseTrack-layout dataset, or a video/frames folder with calib_boxes), or give "
                             "an INT8 Q/DQ ONNX of the gridsample form ('dcpose-trt quantize')")
        ckey = hashlib.sha256(f"{Path(calib).resolve()}|{calib_boxes}|{calib_samples}|{calib_split}".encode()
                              ).hexdigest()[:8]
        key += f"-int8-{ckey}"
    folder = cache / key
    if not is_ir_pair(folder):
        model = load_model(ckpt)
        if ir_precision == "int8":  # quantize the (cached) FP32 conversion
            fp32 = cache / key.split("-int8-")[0]
            if not is_ir_pair(fp32):
                build_ir(model, fp32)
            core = ov.Core()
            parts = {part: core.read_model(str(fp32 / f"{part}.xml")) for part in ("backbone", "head")}
            build_ir(model, folder, ir_precision, calib, calib_boxes, calib_samples, parts, calib_split)
        else:
            build_ir(model, folder)
    return OpenVINOBackend(folder, precision=precision, threads=threads, cache_dir=cache)


def is_ir_pair(folder: Path) -> bool:
    """True when ``folder`` holds a converted ``backbone.xml`` + ``head.xml``."""
    return (folder / "backbone.xml").is_file() and (folder / "head.xml").is_file()


def build_ir(model: Any, folder: Path, precision: str = "fp32", calib: str | os.PathLike | None = None,
             calib_boxes: str | os.PathLike | None = None, calib_samples: int = 256,
             parts: dict[str, Any] | None = None, calib_split: str = "val") -> Path:
    """Convert a :class:`DCPose` into an IR pair in ``folder`` (``int8``: NNCF backbone on ``calib`` crops).

    ``parts``: already converted FP32 ``{"backbone", "head"}`` models to start from (skips the conversion).
    """
    parts = dict(parts) if parts is not None else convert_parts(model)
    if precision == "int8":
        from dcpose_trt.export.int8 import calibration_crops
        from dcpose_trt.export.precision import QuantizeConfig

        qc = QuantizeConfig(precision="int8", calib=Path(calib) if calib else None, calib_samples=calib_samples,
                            calib_boxes=Path(calib_boxes) if calib_boxes else None, calib_split=calib_split)
        p = model.preset
        crops = calibration_crops(qc, tuple(p.image_size), tuple(p.mean), tuple(p.std))
        parts["backbone"] = quantize_backbone(parts["backbone"], crops)
    _save_pair(parts, folder)
    return folder


def _save_pair(parts: dict[str, Any], folder: Path) -> None:
    """Write ``backbone.xml/.bin`` + ``head.xml/.bin`` into ``folder`` atomically (a temp folder renamed)."""
    ov = _ov()
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.with_name(f".{folder.name}.{os.getpid()}.tmp")
    tmp.mkdir(exist_ok=True)
    for part, m in parts.items():
        ov.save_model(m, str(tmp / f"{part}.xml"), compress_to_fp16=False)
    try:
        os.replace(tmp, folder)
    except OSError:  # another process won the race: keep its copy
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)


# %% Backend -------------------------------------------------------------------------------------------


def _f32(a: np.ndarray, name: str, ndim: int) -> np.ndarray:
    arr = np.ascontiguousarray(a, dtype=np.float32)
    if arr.ndim != ndim:
        raise InputError(f"{name} must have {ndim} dimensions, got shape {arr.shape}")
    return arr


class _Compiled:
    """One compiled OpenVINO model with one infer request (the runtime serves one call at a time)."""

    def __init__(self, core: Any, path: Path, config: dict[str, Any]):
        ov = _ov()
        try:
            model = core.read_model(str(path))
        except Exception as exc:  # noqa: BLE001 - OpenVINO raises RuntimeError/OpConversionFailure
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            hint = (" (OpenVINO cannot read ONNX DeformConv: export with --deform gridsample, or give the "
                    "checkpoint)") if "DeformConv" in str(exc) else ""
            raise InputError(f"OpenVINO cannot read {path}: {first[:200]}{hint}") from None
        self.path = path
        self.meta = _metadata(model, path)
        self.inputs = [p.get_any_name() for p in model.inputs]
        self.input_shapes = [p.get_partial_shape() for p in model.inputs]
        # Compiling from the path (not the ov.Model) lets the CPU plugin's CACHE_DIR skip the compilation.
        self.compiled = core.compile_model(str(path), "CPU", config)
        self.request = self.compiled.create_infer_request()
        del ov

    def run(self, *arrays: np.ndarray) -> np.ndarray:
        self.request.infer(list(arrays))
        return self.request.get_output_tensor(0).data.copy()


def _metadata(model: Any, path: Path) -> dict[str, str]:
    """Preset and precision: ONNX metadata_props for ONNX files, rt_info for our IR."""
    meta: dict[str, str] = {}
    if path.suffix == ".onnx":
        onnx = require("onnx", "onnx", "reading ONNX metadata")
        proto = onnx.load(str(path), load_external_data=False)
        meta = {p.key: p.value for p in proto.metadata_props}
    elif model.has_rt_info(["framework", _META_PRESET]):
        meta[_META_PRESET] = model.get_rt_info(["framework", _META_PRESET]).astype(str)
    if any("FakeQuantize" in op.get_type_name() or "FakeConvert" in op.get_type_name() for op in model.get_ops()):
        meta[_META_PRECISION] = "int8"
    return meta


class OpenVINOBackend:
    """DCPose on OpenVINO's CPU plugin.

    Args:
        path: an IR or ONNX file of the whole model (``frames``, ``margin`` inputs), or a split pair: a
            folder with ``backbone.xml`` + ``head.xml`` (or ``.onnx``), or a ``(backbone, head)`` pair.
            For a checkpoint use :func:`from_checkpoint`.
        precision: ``fp32``, ``bf16`` (inference-precision hint) or ``int8`` (the file must be quantized:
            an NNCF IR from :func:`from_checkpoint` or a Q/DQ ONNX).
        preset: expected preset; a file of another preset raises :class:`InputError`.
        threads: CPU inference threads (default: OpenVINO's, all usable cores).
        cache_dir: OpenVINO compiled-model cache is ``<cache_dir>/compiled`` (default :func:`default_cache_dir`).

    Attributes: name ``"openvino"``, preset_name, input_size (crop H, W), precision, split,
    last_inference_time (s, last ``infer``), compile_seconds (reading + compiling all parts).
    """

    name = NAME

    def __init__(self, path: str | os.PathLike | Sequence[str | os.PathLike], precision: str = "fp32",
                 preset: str | None = None, threads: int | None = None, cache_dir: str | os.PathLike | None = None):
        ov = _ov()
        _check_precision(precision)
        pair = self._resolve(path)
        cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        core = ov.Core()
        try:
            (cache / "compiled").mkdir(parents=True, exist_ok=True)
            core.set_property({"CACHE_DIR": str(cache / "compiled")})
        except OSError as exc:  # a read-only home only costs a recompilation per start
            log.info("no OpenVINO model cache in %s: %s", cache, exc)
        config: dict[str, Any] = {"INFERENCE_PRECISION_HINT": _HINT[precision], "PERFORMANCE_HINT": "LATENCY"}
        if threads:
            config["INFERENCE_NUM_THREADS"] = int(threads)
        t0 = time.perf_counter()
        self._full: _Compiled | None = None
        self._backbone: _Compiled | None = None
        self._head: _Compiled | None = None
        if isinstance(pair, Path):
            self._full = _Compiled(core, pair, config)
            parts = [self._full]
            if len(self._full.inputs) != 2:
                raise InputError(f"{pair} is not a whole DCPose model (inputs {self._full.inputs}); "
                                 "for a split export give its folder")
        else:
            self._backbone = _Compiled(core, pair[0], config)
            self._head = _Compiled(core, pair[1], config)
            parts = [self._backbone, self._head]
            if len(self._backbone.inputs) != 1 or len(self._head.inputs) != 4:
                raise InputError(f"{pair[0]} / {pair[1]} are not a DCPose backbone/head pair")
        self.compile_seconds = time.perf_counter() - t0
        presets = {p.meta.get(_META_PRESET) for p in parts}
        if len(presets) != 1 or None in presets:
            raise InputError(f"{', '.join(str(p.path) for p in parts)}: missing or inconsistent preset metadata "
                             f"({presets}); convert with from_checkpoint or re-export with 'dcpose-trt export'")
        self.preset_name: str = presets.pop()  # type: ignore[assignment]
        if preset is not None and preset != self.preset_name:
            raise InputError(f"{parts[0].path} was exported for preset {self.preset_name}, not {preset}")
        shape = parts[0].input_shapes[0]
        if shape.rank.get_length() != 4 or not (shape[2].is_static and shape[3].is_static):
            raise InputError(f"{parts[0].path}: the crop size must be static, got input shape {shape}")
        self.input_size: tuple[int, int] = (shape[2].get_length(), shape[3].get_length())
        quantized = any(p.meta.get(_META_PRECISION) == "int8" for p in parts)
        if precision == "int8" and not quantized:
            raise InputError(f"{parts[0].path} is not quantized; for INT8 give a Q/DQ ONNX or use from_checkpoint "
                             "with calibration data")
        self.precision = precision if precision != "fp32" or not quantized else "int8"
        self.split = self._full is None
        self.last_inference_time = 0.0

    @staticmethod
    def _resolve(path: str | os.PathLike | Sequence[str | os.PathLike]) -> Path | tuple[Path, Path]:
        if not isinstance(path, (str, os.PathLike)):
            items = [Path(p) for p in path]
            if len(items) != 2:
                raise InputError(f"give one model file or a (backbone, head) pair, got {len(items)} paths")
            return items[0], items[1]
        p = Path(path)
        if p.is_dir():
            for ext in (".xml", ".onnx"):
                if (p / f"backbone{ext}").is_file() and (p / f"head{ext}").is_file():
                    return p / f"backbone{ext}", p / f"head{ext}"
            for name in ("model.xml", "model.onnx"):
                if (p / name).is_file():
                    return p / name
            raise InputError(f"{p} holds neither backbone + head (.xml or .onnx) nor model.xml/.onnx")
        if not p.is_file():
            raise InputError(f"model file not found: {p}")
        if p.suffix not in (".xml", ".onnx"):
            raise InputError(f"the OpenVINO backend reads IR (.xml), ONNX or a checkpoint, got {p}")
        if p.stem == "backbone" and (p.parent / f"head{p.suffix}").is_file():
            return p, p.parent / f"head{p.suffix}"
        return p

    def infer(self, frames: np.ndarray, margin: np.ndarray) -> np.ndarray:
        """frames ``float32[B, 9, H, W]`` + margin ``float32[B, 2]`` → heatmaps ``float32[B, 17, H/4, W/4]``."""
        f = _f32(frames, "frames", 4)
        m = _f32(margin, "margin", 2)
        if f.shape[1] != 9 or tuple(f.shape[2:]) != self.input_size or m.shape != (f.shape[0], 2):
            raise InputError(f"expected frames [B, 9, {self.input_size[0]}, {self.input_size[1]}] and margin "
                             f"[B, 2], got {f.shape} and {m.shape}")
        t0 = time.perf_counter()
        if self._full is not None:
            out = self._full.run(f, m)
        else:
            b = f.shape[0]
            hm = self.backbone(np.concatenate([f[:, 0:3], f[:, 3:6], f[:, 6:9]], axis=0))
            out = self.head(hm[:b], hm[b : 2 * b], hm[2 * b :], m)
        self.last_inference_time = time.perf_counter() - t0
        return out

    def backbone(self, x: np.ndarray) -> np.ndarray:
        """One frame's crops ``float32[B, 3, H, W]`` → rough heatmaps ``float32[B, 17, h, w]`` (split only)."""
        if self._backbone is None:
            raise InputError("this is a whole model; backbone() needs a split one (a checkpoint or a --split export)")
        return self._backbone.run(_f32(x, "image", 4))

    def head(self, cur: np.ndarray, prev: np.ndarray, nxt: np.ndarray, margin: np.ndarray) -> np.ndarray:
        """Three ``float32[B, 17, h, w]`` heatmaps + margin ``float32[B, 2]`` → refined heatmaps (split only)."""
        if self._head is None:
            raise InputError("this is a whole model; head() needs a split one (a checkpoint or a --split export)")
        return self._head.run(_f32(cur, "cur", 4), _f32(prev, "prev", 4), _f32(nxt, "next", 4),
                              _f32(margin, "margin", 2))

    def __repr__(self) -> str:
        files = (self._full.path,) if self._full else (self._backbone.path, self._head.path)  # type: ignore[union-attr]
        return f"OpenVINOBackend({', '.join(map(str, files))}, preset={self.preset_name}, precision={self.precision})"


def open_backend(model: str | os.PathLike | None, backend: str = "openvino", preset: str | None = None,
                 cache_dir: str | os.PathLike | None = None, threads: int | None = None) -> OpenVINOBackend:
    """``make_backend``'s entry: a checkpoint (or None) is converted on demand, IR/ONNX files are read."""
    precision = precision_of(backend)
    path = Path(model) if model is not None else None
    if path is None or (path.is_file() and path.suffix.lower() in (".pth", ".pt", ".tar")):
        be = from_checkpoint(path, precision, cache_dir, threads=threads)
    else:
        be = OpenVINOBackend(path, precision, preset, threads, cache_dir)
    if preset is not None and preset != be.preset_name:
        raise InputError(f"{model} holds preset {be.preset_name}, not {preset}")
    return be
