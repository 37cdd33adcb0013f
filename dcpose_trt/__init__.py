"""dcpose-trt: DCPose video pose estimation from PyTorch to TensorRT, with a low-latency runtime."""

from dcpose_trt.errors import DcposeTrtError

__version__ = "0.1.0"
__all__ = ["DcposeTrtError", "__version__"]
