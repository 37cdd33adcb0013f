"""The run flow: backends (torch, ONNX Runtime, TensorRT) behind one ``PoseEstimator``."""

from dcpose_trt.model.presets import bundled_model_path
from dcpose_trt.runtime.backends.base import Backend, TorchBackend
from dcpose_trt.runtime.estimator import FramePoses, PersonPose, PoseEstimator, make_backend

__all__ = ["Backend", "FramePoses", "PersonPose", "PoseEstimator", "TorchBackend", "bundled_model_path",
           "make_backend"]
