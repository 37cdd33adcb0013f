"""Eager torch on CUDA through the bucket executor: :class:`TorchCudaExecutor` and :class:`TorchCudaBackend`.

The same stream, pinned buffers and CUDA graphs as a TensorRT plan, with a torch CUDA module as the
engine (the GPU machines available to this project have no TensorRT; ``pytest -m gpu`` exercises this
path). The backend offers the fused GPU path (:class:`~dcpose_trt.runtime.tensorrt.gpu_pose.FusedGpuPose`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from dcpose_trt.errors import CudaError
from dcpose_trt.runtime.tensorrt.cuda import HostDeviceBuffer
from dcpose_trt.runtime.tensorrt.executor import Bucket, BucketExecutor, TensorSpec
from dcpose_trt.runtime.tensorrt.gpu_pose import FusedGpuPose

if TYPE_CHECKING:
    import torch


log = logging.getLogger(__name__)


class TorchCudaExecutor(BucketExecutor):
    """A torch CUDA module on the shared stream / pinned-buffer / CUDA-graph machinery.

    The bucket's device buffers are wrapped as torch tensors (zero-copy, ``__cuda_array_interface__``);
    the module runs on the executor's stream (``torch.cuda.ExternalStream``) and its result is copied into
    the output buffer. Everything the module allocates goes to a private ``torch.cuda.MemPool``: a captured
    graph replays into the addresses it saw, so they must never be handed to other tensors. The pool is
    shared by the buckets' graphs, which is safe because they run one after another on one stream and
    keep nothing in it between runs.

    Args:
        module: callable on CUDA tensors ``module(*inputs) -> Tensor[B, ...]`` (one output).
        inputs: input specs without the batch dimension, in call order.
        output: output spec without the batch dimension.
        buckets: batch sizes (default 1, 8, 32).
        device, use_graphs, mapped: see :class:`BucketExecutor`.
    """

    def __init__(self, module: Callable[..., torch.Tensor], inputs: Sequence[TensorSpec], output: TensorSpec,
                 buckets: Sequence[int] = (1, 8, 32), device: int = 0, use_graphs: bool = True,
                 mapped: bool | None = None) -> None:
        import torch

        if not torch.cuda.is_available():
            raise CudaError("the torch-CUDA executor needs a CUDA build of torch and a GPU")
        self._torch = torch
        self.module = module
        self._output = output
        super().__init__(inputs, [output.name], [(int(b), 0) for b in sorted(set(buckets))], device=device,
                         use_graphs=use_graphs, mapped=mapped)
        self._tdevice = torch.device("cuda", device)
        self._tstream = torch.cuda.ExternalStream(self.stream.ptr, device=self._tdevice)
        self._pool = torch.cuda.MemPool()

    def torch_view(self, buf: HostDeviceBuffer) -> torch.Tensor:
        """A zero-copy torch tensor over ``buf``'s device memory (valid until the executor closes)."""
        return self._torch.as_tensor(buf, device=self._tdevice)

    def _setup_bucket(self, bucket: Bucket) -> dict[str, tuple[tuple[int, ...], Any]]:
        bucket.state["inputs"] = [self.torch_view(bucket.inputs[s.name]) for s in self.input_specs]
        return {self._output.name: ((bucket.size, *self._output.shape), self._output.dtype)}

    def _bind_outputs(self, bucket: Bucket) -> None:
        bucket.state["output"] = self.torch_view(bucket.outputs[self._output.name])

    def _enqueue(self, bucket: Bucket) -> None:
        torch = self._torch
        # use_mem_pool asks whether the *current* torch stream is capturing (and then wants a torch-made
        # graph), so it is entered on the default stream, which never captures; our stream comes after.
        with torch.cuda.stream(torch.cuda.default_stream(self._tdevice)), \
                torch.cuda.use_mem_pool(self._pool, self._tdevice), torch.cuda.stream(self._tstream), \
                torch.inference_mode():
            result = self.module(*bucket.state["inputs"])
            bucket.state["output"].copy_(result)
            del result

    def _close_engine(self) -> None:
        for b in self._buckets.values():
            b.state.clear()  # drop the tensor views before the buffers go


class TorchCudaBackend(FusedGpuPose):
    """DCPose eager torch on CUDA through the same executor as TensorRT (stream, pinned buffers, graphs).

    Args:
        model: a :class:`~dcpose_trt.model.dcpose.DCPose` (moved to the device, eval mode).
        buckets: person batch sizes (default 1, 8, 32).
        device: CUDA device ordinal. use_graphs: capture one CUDA graph per bucket.
    """

    name = "torch-cuda"

    def __init__(self, model: Any, buckets: Sequence[int] = (1, 8, 32), device: int = 0,
                 use_graphs: bool = True) -> None:
        import torch

        self._gpu_setup()
        self.model = model.eval().to(torch.device("cuda", device))
        self.preset_name: str = model.preset_name
        self.input_size: tuple[int, int] = tuple(model.preset.image_size)  # type: ignore[assignment]
        self.mean, self.std = tuple(model.preset.mean), tuple(model.preset.std)
        h, w = self.input_size
        self.executor = TorchCudaExecutor(
            self.model, [TensorSpec("frames", (9, h, w)), TensorSpec("margin", (2,))],
            TensorSpec("heatmaps", (17, h // 4, w // 4)), buckets=buckets, device=device, use_graphs=use_graphs)
        self.buckets = [b for b, _ in self.executor.bucket_sizes]

    def _infer_impl(self, frames: np.ndarray, margin: np.ndarray) -> np.ndarray:
        return self.executor.run({"frames": frames, "margin": margin})["heatmaps"]

    def close(self) -> None:
        """Release every CUDA resource; idempotent."""
        self._gpu_close()
        self.executor.close()
