"""The run flow: backends (torch, ONNX Runtime, TensorRT) behind one ``PoseEstimator``."""

from dcpose_trt.model.presets import bundled_model_path
from dcpose_trt.runtime.backends.base import Backend, TorchBackend
from dcpose_trt.runtime.detector import YoloDetector, open_box_source
from dcpose_trt.runtime.estimator import FramePoses, PersonPose, PoseEstimator, make_backend
from dcpose_trt.runtime.hog_detector import HogDetector

__all__ = ["Backend", "FramePoses", "HogDetector", "PersonPose", "PoseEstimator", "TorchBackend", "YoloDetector",
           "bundled_model_path", "make_backend", "open_box_source"]
