"""ONNX Runtime backend: the :class:`~dcpose_trt.runtime.backends.base.Backend` interface on an exported ONNX.

Runs FP32, FP16 and INT8 (Q/DQ) files of the ``deformconv`` and ``gridsample`` forms (the ``plugin``
form's custom node has no ONNX Runtime kernel). A split export (``backbone.onnx`` + ``head.onnx``)
opens as :class:`OnnxRuntimeSplitBackend` (a :class:`~dcpose_trt.runtime.backends.base.SplitBackend`:
``backbone``/``head`` for the cached-backbone runtime; ``infer`` then chains the two).
CPU provider by default; the CUDA provider first when onnxruntime-gpu offers it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from dcpose_trt._deps import require
from dcpose_trt.contract import DCN_DOMAIN, DCN_OP_TYPE, META_PRESET, read_model_metadata
from dcpose_trt.errors import InputError
from dcpose_trt.runtime.backends.base import Backend, OpenOptions, SplitBackend, model_files

log = logging.getLogger(__name__)


def _physical_cores() -> int:
    """Cores this process may use (affinity-aware); ORT's intra-op pool is sized to them."""
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        n = os.cpu_count() or 1
    return max(1, n)


def default_providers() -> list[str]:
    """CUDA (when onnxruntime-gpu offers it), then CPU."""
    ort = require("onnxruntime", "onnx", "the ONNX Runtime backend")
    available = ort.get_available_providers()
    return [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available] or available


def _read_model(path: Path) -> Any:
    """Load the graph (no external data) to read its metadata and check its nodes; InputError if not ONNX."""
    onnx = require("onnx", "onnx", "the ONNX Runtime backend")
    if not path.is_file():
        raise InputError(f"ONNX file not found: {path}")
    try:
        return onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # noqa: BLE001 - protobuf raises DecodeError, RuntimeError, ...
        raise InputError(f"{path} is not an ONNX model ({type(exc).__name__})") from None


class _Session:
    """One ONNX Runtime session plus what we read from its file."""

    def __init__(self, path: Path, providers: Sequence[str] | None, threads: int | None):
        ort = require("onnxruntime", "onnx", "the ONNX Runtime backend")
        proto = _read_model(path)
        if any(n.domain == DCN_DOMAIN for n in proto.graph.node):
            raise InputError(
                f"{path} uses the TensorRT plugin node ({DCN_DOMAIN}::{DCN_OP_TYPE}), which ONNX Runtime cannot run; "
                "export with --deform deformconv or --deform gridsample for ONNX Runtime")
        self.path = path
        self.meta = read_model_metadata(proto, source=str(path))
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # One request at a time: all cores to the intra-op pool, none to an inter-op pool.
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.intra_op_num_threads = threads or _physical_cores()
        so.inter_op_num_threads = 1
        # No busy-waiting after a run: idle pool threads would otherwise spin on the cores that the next
        # call needs. The cached mode alternates two sessions (backbone, head), and crops/decode run in
        # Python between calls; with spinning on, cached mode on the 2-core CI VM took 100 ms per frame of
        # the real clip instead of 78 ms (exact mode: 76 vs 76).
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        so.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(proto.SerializeToString(), so,
                                                providers=list(providers or default_providers()))
        except Exception as exc:  # noqa: BLE001 - ORT raises its own exception types
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise InputError(f"ONNX Runtime cannot load {path}: {first[:300]}") from None
        self.inputs = [i.name for i in self.session.get_inputs()]
        self.input_shapes = {i.name: i.shape for i in self.session.get_inputs()}
        self.output = self.session.get_outputs()[0].name

    def run(self, feed: dict[str, np.ndarray]) -> np.ndarray:
        return self.session.run([self.output], feed)[0]


class OnnxRuntimeBackend(Backend):
    """DCPose on ONNX Runtime.

    Constructing it with a split export gives an :class:`OnnxRuntimeSplitBackend` (its subclass that
    also implements :class:`~dcpose_trt.runtime.backends.base.SplitBackend`).

    Args:
        path: an exported ``.onnx`` (whole model), a split-export folder holding ``backbone.onnx`` and
            ``head.onnx``, the ``backbone.onnx`` of such a pair (``head.onnx`` is taken beside it), or a
            ``(backbone, head)`` pair of paths.
        providers: ONNX Runtime execution providers. Defaults to CUDA (if onnxruntime-gpu has it), CPU.
        preset: expected preset; a file exported for another preset raises :class:`InputError`.
        threads: intra-op threads. Defaults to the cores this process may use.

    Attributes:
        name: ``"onnxruntime"``. preset_name: from the file's metadata. input_size: crop (H, W).
        split: True for a backbone/head pair (``backbone`` and ``head`` are available).
        last_inference_time: seconds of the last ``infer`` call.
    """

    name = "onnxruntime"

    def __new__(cls, path: str | os.PathLike | Sequence[str | os.PathLike], *args: Any, **kwargs: Any
                ) -> OnnxRuntimeBackend:
        if cls is OnnxRuntimeBackend and not isinstance(cls._resolve(path), Path):
            cls = OnnxRuntimeSplitBackend  # a backbone/head pair
        return super().__new__(cls)

    def __init__(self, path: str | os.PathLike | Sequence[str | os.PathLike], providers: Sequence[str] | None = None,
                 preset: str | None = None, threads: int | None = None):
        pair = self._resolve(path)
        self._full: _Session | None = None
        self._backbone: _Session | None = None
        self._head: _Session | None = None
        if isinstance(pair, Path):
            self._full = _Session(pair, providers, threads)
            sessions = [self._full]
            if "frames" not in self._full.inputs or "margin" not in self._full.inputs:
                raise InputError(f"{pair} is not a whole DCPose model (inputs {self._full.inputs}); "
                                 "for a split export give its folder")
        else:
            self._backbone = _Session(pair[0], providers, threads)
            self._head = _Session(pair[1], providers, threads)
            sessions = [self._backbone, self._head]
            if self._backbone.inputs != ["image"] or self._head.inputs[:3] != ["cur", "prev", "next"]:
                raise InputError(f"{pair[0]} / {pair[1]} are not a DCPose backbone/head pair")
        presets = {s.meta.preset for s in sessions}
        if len(presets) != 1 or None in presets:
            raise InputError(f"{', '.join(str(s.path) for s in sessions)}: missing or inconsistent "
                             f"'{META_PRESET}' metadata ({presets}); re-export with 'dcpose-trt export'")
        self.preset_name: str = presets.pop()  # type: ignore[assignment]
        if preset is not None and preset != self.preset_name:
            raise InputError(f"{sessions[0].path} was exported for preset {self.preset_name}, not {preset}")
        first = sessions[0]
        shape = first.input_shapes["frames" if self._full else "image"]
        if not all(isinstance(d, int) for d in shape[2:]):
            raise InputError(f"{first.path}: the crop size must be static, got input shape {shape}")
        self.input_size: tuple[int, int] = (int(shape[2]), int(shape[3]))
        self.precision = first.meta.precision
        self.deform = first.meta.deform or ""
        self.providers = first.session.get_providers()
        self.split = self._full is None
        self.threads = threads

    @staticmethod
    def _resolve(path: str | os.PathLike | Sequence[str | os.PathLike]) -> Path | tuple[Path, Path]:
        return model_files(path, (".onnx",), "ONNX")

    def _infer_impl(self, frames: np.ndarray, margin: np.ndarray) -> np.ndarray:
        if self._full is not None:
            return self._full.run({"frames": frames, "margin": margin})
        assert isinstance(self, OnnxRuntimeSplitBackend)
        return self.infer_by_parts(frames, margin)

    def __repr__(self) -> str:
        files = (self._full.path,) if self._full else (self._backbone.path, self._head.path)  # type: ignore[union-attr]
        return (f"OnnxRuntimeBackend({', '.join(map(str, files))}, preset={self.preset_name}, "
                f"precision={self.precision}, providers={self.providers})")


class OnnxRuntimeSplitBackend(OnnxRuntimeBackend, SplitBackend):
    """A split export (``backbone.onnx`` + ``head.onnx``) on ONNX Runtime: also ``backbone`` and ``head``."""

    def _backbone_impl(self, x: np.ndarray) -> np.ndarray:
        assert self._backbone is not None  # a split pair (see __new__)
        return self._backbone.run({"image": x})

    def _head_impl(self, cur: np.ndarray, prev: np.ndarray, nxt: np.ndarray, margin: np.ndarray) -> np.ndarray:
        assert self._head is not None
        return self._head.run({"cur": cur, "prev": prev, "next": nxt, "margin": margin})


def open_onnxruntime(path: Path | None, name: str, options: OpenOptions) -> OnnxRuntimeBackend:
    """Opener of ``--backend onnxruntime``: an ``.onnx`` file or a split-export folder."""
    if path is None or not (path.is_dir() or path.suffix.lower() == ".onnx"):
        is_plan = path is not None and path.suffix.lower() in (".plan", ".engine")
        hint = ("a TensorRT plan runs with --backend tensorrt/tensorrt-rtx (or auto); for ONNX Runtime give "
                "the ONNX it was built from, or a checkpoint (.pth)" if is_plan else
                f"export one with 'dcpose-trt export --model {path} --out model.onnx'")
        raise InputError(f"the onnxruntime backend needs an ONNX file, got {path}; {hint}")
    return OnnxRuntimeBackend(path, preset=options.preset, threads=options.threads)
