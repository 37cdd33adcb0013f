"""The run flow: open a model with a backend (``backends/``, ``tensorrt/``), stream frames and boxes through
``PoseEstimator`` (``stream.py``, one box policy in ``boxes.py``), write overlays and JSON (``pipeline.py``)."""

from dcpose_trt.model.presets import bundled_model_path
from dcpose_trt.runtime.backends.base import Backend
from dcpose_trt.runtime.backends.opener import open_backend
from dcpose_trt.runtime.backends.torch_backend import TorchBackend
from dcpose_trt.runtime.estimator import FramePoses, PersonPose, PoseEstimator
from dcpose_trt.runtime.stream import stream_poses

__all__ = ["Backend", "FramePoses", "PersonPose", "PoseEstimator", "TorchBackend", "bundled_model_path",
           "open_backend", "stream_poses"]
