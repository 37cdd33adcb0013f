"""The run flow: open a model with a backend (``backends/``, ``tensorrt/``), stream frames and boxes through
``PoseEstimator`` (``stream.py``, one box policy in ``boxes.py``), write overlays and JSON (``pipeline.py``)."""

from dcpose_trt.model.presets import bundled_model_path
from dcpose_trt.runtime.backends.base import Backend
from dcpose_trt.runtime.backends.opener import open_backend
from dcpose_trt.runtime.backends.torch_backend import TorchBackend
from dcpose_trt.runtime.detector import YoloDetector, open_box_source
from dcpose_trt.runtime.estimator import FramePoses, PersonPose, PoseEstimator
from dcpose_trt.runtime.hog_detector import HogDetector
from dcpose_trt.runtime.stream import stream_poses

__all__ = ["Backend", "FramePoses", "HogDetector", "PersonPose", "PoseEstimator", "TorchBackend", "YoloDetector",
           "bundled_model_path", "open_backend", "open_box_source", "stream_poses"]
