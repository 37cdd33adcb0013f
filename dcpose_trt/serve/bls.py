"""``TritonBlsBackend``: the runner protocol's split backend whose backbone and head are calls to the
server's batched ``dcpose_backbone`` / ``dcpose_head`` models (Business Logic Scripting).

It runs only inside a Triton Python-backend model (``triton_python_backend_utils`` is the stub's module).
The stream model gives every stream's :class:`~dcpose_trt.runtime.estimator.PoseEstimator` one of these,
so the estimators of all streams send their persons to the same two models, whose dynamic batchers put
the persons of different streams into one batch.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass
from typing import Any

import numpy as np

from dcpose_trt.errors import DcposeTrtError, InputError
from dcpose_trt.runtime.backends.base import SplitBackend


@dataclass(frozen=True)
class PartNames:
    """Tensor names of the two part models (those of the split ONNX export, kept by the plans):
    backbone ``image -> heatmaps``, head ``cur, prev, next, margin -> heatmaps``."""

    backbone_in: str = "image"
    backbone_out: str = "heatmaps"
    head_in: tuple[str, str, str, str] = ("cur", "prev", "next", "margin")
    head_out: str = "heatmaps"


#: DLPack's name of a consumed capsule (kept alive here: a capsule stores the pointer, not a copy).
_USED_DLTENSOR = ctypes.c_char_p(b"used_dltensor")


def pb_tensor(pb_utils: Any, name: str, array: np.ndarray) -> Any:
    """A ``pb_utils.Tensor`` of ``array`` through DLPack.

    Not ``pb_utils.Tensor(name, array)``: that constructor reads the element size from numpy's dtype struct
    with a pybind11 older than numpy 2's layout change (the bundled 2.51 stub), so under numpy 2 every tensor
    it makes holds 0 bytes. DLPack carries the size itself.
    """
    a = np.ascontiguousarray(array)
    # The stub accepts only the exact C-order strides, which numpy does not keep for empty arrays.
    strides = tuple(int(a.itemsize * np.prod(a.shape[i + 1 :], dtype=np.int64)) for i in range(a.ndim))
    capsule = np.lib.stride_tricks.as_strided(a, a.shape, strides).__dlpack__()
    tensor = pb_utils.Tensor.from_dlpack(name, capsule)
    # The stub marks the consumed capsule "used_dlpack", not DLPack's "used_dltensor": numpy's capsule
    # destructor would then report an error for every tensor. Give it the standard name.
    if ctypes.pythonapi.PyCapsule_IsValid(ctypes.py_object(capsule), b"used_dlpack"):
        ctypes.pythonapi.PyCapsule_SetName(ctypes.py_object(capsule), _USED_DLTENSOR)
    return tensor


class _DLPack:
    """Hands numpy a ``pb_utils.Tensor``'s DLPack capsule (numpy 2 takes only objects with ``__dlpack__``)."""

    def __init__(self, tensor: Any):
        self.tensor = tensor

    def __dlpack__(self, **_: Any) -> Any:
        return self.tensor.to_dlpack()

    def __dlpack_device__(self) -> tuple[int, int]:
        return (1, 0)  # kDLCPU


def pb_array(tensor: Any) -> np.ndarray:
    """A copy of a ``pb_utils.Tensor``'s data (not ``as_numpy()``: under numpy 2 the bundled stub builds it
    with a wrong element size, see :func:`pb_tensor`)."""
    return np.array(np.from_dlpack(_DLPack(tensor)), copy=True)


class ServeError(DcposeTrtError):
    """The server or a model on it failed a request (not the caller's input)."""


class TritonBlsBackend(SplitBackend):
    """Backbone and head as BLS requests to ``backbone_model`` / ``head_model``.

    Args:
        preset_name, input_size: the model's preset and crop (H, W) (recorded by the export).
        max_batch: the part models' ``max_batch_size``: one call never sends more rows (a larger call is
            split, as the dynamic batcher cannot split a request).
    """

    name = "triton-bls"

    def __init__(self, preset_name: str, input_size: tuple[int, int], max_batch: int,
                 backbone_model: str = "dcpose_backbone", head_model: str = "dcpose_head",
                 names: PartNames | None = None):
        self.preset_name = preset_name
        self.input_size = (int(input_size[0]), int(input_size[1]))
        self.max_batch = int(max_batch)
        self.backbone_model, self.head_model = backbone_model, head_model
        self.names = names or PartNames()
        self.last_inference_time = 0.0
        self.calls = 0  # BLS requests sent

    def _call(self, model: str, inputs: dict[str, np.ndarray], output: str) -> np.ndarray:
        import triton_python_backend_utils as pb_utils

        rows = next(iter(inputs.values())).shape[0]
        if rows == 0:
            raise InputError("a part model call needs at least one person")
        parts = []
        for s in range(0, rows, self.max_batch):
            tensors = [pb_tensor(pb_utils, k, np.ascontiguousarray(v[s : s + self.max_batch], np.float32))
                       for k, v in inputs.items()]
            req = pb_utils.InferenceRequest(model_name=model, requested_output_names=[output], inputs=tensors)
            resp = req.exec()
            self.calls += 1
            if resp.has_error():
                raise ServeError(f"{model}: {resp.error().message()}")
            parts.append(pb_array(pb_utils.get_output_tensor_by_name(resp, output)))
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def _backbone_impl(self, x: np.ndarray) -> np.ndarray:
        return self._call(self.backbone_model, {self.names.backbone_in: x}, self.names.backbone_out)

    def _head_impl(self, cur: np.ndarray, prev: np.ndarray, nxt: np.ndarray, margin: np.ndarray) -> np.ndarray:
        names = self.names.head_in
        return self._call(self.head_model, dict(zip(names, (cur, prev, nxt, margin), strict=True)),
                          self.names.head_out)

    def _infer_impl(self, frames: np.ndarray, margin: np.ndarray) -> np.ndarray:
        return self.infer_by_parts(frames, margin)
