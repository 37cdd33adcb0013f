"""TensorRT plugins of dcpose-trt."""
