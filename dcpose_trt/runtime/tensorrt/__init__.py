"""The GPU path: TensorRT plans and the torch-CUDA backend on shared CUDA buffers, streams and kernels."""
