"""Which crop/decode path a backend's frames take (the pre- and post-processing around the model).

* :func:`cpu_pose`: OpenCV crops (:func:`~dcpose_trt.data.transforms.make_inputs`), ``backend.infer``, NumPy
  decoding (:func:`~dcpose_trt.data.transforms.decode_heatmaps`). Every backend can run it, a plan included:
  it needs only NumPy and OpenCV besides the backend itself.
* :func:`fused_pose`: ``backend.pose`` of a :class:`~dcpose_trt.runtime.backends.base.GpuPoseBackend`
  (crops and decoding by Triton kernels on torch CUDA tensors). An optimisation, taken only where Triton
  imports and torch sees a GPU; a plan run on TensorRT + cuda-python alone (the Jetson and ``[cuda12]``
  installs) falls back to :func:`cpu_pose` with a one-line note.

:func:`choose_pose_path` takes the environment probes as parameters, so the choice is testable anywhere.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Callable, Sequence

import numpy as np

from dcpose_trt._deps import available
from dcpose_trt._env import install_hint
from dcpose_trt.data.transforms import decode_heatmaps, make_inputs
from dcpose_trt.model.presets import Preset
from dcpose_trt.runtime.backends.base import Backend, GpuPoseBackend

log = logging.getLogger(__name__)

#: ``(backend, window, boxes, preset) -> (coords float32[N, 17, 2], maxvals float32[N, 17])``.
PosePath = Callable[[Backend, Sequence[np.ndarray], np.ndarray, Preset], tuple[np.ndarray, np.ndarray]]

_noted: set[str] = set()  # notes already logged in this process (one per missing set)


def cpu_pose(backend: Backend, window: Sequence[np.ndarray], boxes: np.ndarray,
             preset: Preset) -> tuple[np.ndarray, np.ndarray]:
    """Crops on the CPU, ``backend.infer``, decoding on the CPU: the path of every CPU backend.

    Args:
        window: three uint8 BGR frames [current, previous, next], each ``[H, W, 3]``.
        boxes: float32[N, 5] cleaned person boxes (x, y, w, h, score) on the current frame.
    """
    h, w = preset.image_size
    frames, centers, scales = make_inputs(window, boxes, (h, w), preset.mean, preset.std)
    heatmaps = backend.infer(frames, np.ones((len(boxes), 2), np.float32))
    return decode_heatmaps(heatmaps, centers, scales)


def fused_pose(backend: Backend, window: Sequence[np.ndarray], boxes: np.ndarray,
               preset: Preset) -> tuple[np.ndarray, np.ndarray]:
    """Crops, inference and decoding on the GPU (``backend.pose``); same arguments as :func:`cpu_pose`."""
    assert isinstance(backend, GpuPoseBackend)  # chosen by choose_pose_path only for these
    return backend.pose(window, boxes)


def triton_usable() -> bool:
    """Triton imports (the fused path's crop and decode kernels)."""
    return importlib.util.find_spec("triton") is not None and available("triton")


def torch_cuda_usable() -> bool:
    """torch imports and sees a CUDA GPU (the fused path hands the kernels torch CUDA tensors)."""
    if importlib.util.find_spec("torch") is None:
        return False
    try:
        import torch

        return bool(torch.cuda.is_available())
    except Exception:  # noqa: BLE001 - a broken or CPU-only torch counts as no CUDA
        return False


def fused_path_missing(torch_cuda: Callable[[], bool], triton: Callable[[], bool]) -> list[str]:
    """What the fused GPU path lacks here (empty: it can run), both probed so the note names all of it."""
    missing = [] if triton() else ["Triton"]
    if not torch_cuda():
        missing.append("a CUDA build of torch that sees this GPU")
    return missing


def choose_pose_path(backend_type: type[Backend], torch_cuda: Callable[[], bool] | None = None,
                     triton: Callable[[], bool] | None = None) -> tuple[PosePath, str | None]:
    """``(path, note)``: :func:`fused_pose` for a GPU pose backend whose fused path can run here, else
    :func:`cpu_pose`; ``note`` (or None) says what the fused path would need.

    Args:
        backend_type: the backend's class (a :class:`~dcpose_trt.runtime.backends.base.GpuPoseBackend`
            such as the TensorRT backend may take the fused path; any other takes the CPU path).
        torch_cuda, triton: environment probes (default :func:`torch_cuda_usable`, :func:`triton_usable`),
            called only for a GPU pose backend.
    """
    if not issubclass(backend_type, GpuPoseBackend):
        return cpu_pose, None
    missing = fused_path_missing(torch_cuda or torch_cuda_usable, triton or triton_usable)
    if not missing:
        return fused_pose, None
    return cpu_pose, (f"crops and decoding run on the CPU; the fused GPU path needs {' and '.join(missing)} "
                      f"({install_hint(extra='triton')} and a torch wheel for this CUDA)")


def note_once(note: str | None) -> None:
    """Log ``note`` as a warning the first time it occurs in this process (one line per run, not per
    estimator: a server opens several)."""
    if note and note not in _noted:
        _noted.add(note)
        log.warning("%s", note)
