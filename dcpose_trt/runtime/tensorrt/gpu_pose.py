"""The fused GPU pose path: frames to the GPU once, crops and decoding by Triton kernels, keypoints back.

:class:`FusedGpuPose` implements :meth:`~dcpose_trt.runtime.backends.base.GpuPoseBackend.pose` around a
:class:`~dcpose_trt.runtime.tensorrt.executor.BucketExecutor` with inputs ``frames`` [B, 9, H, W] and
``margin`` [B, 2] and one output [B, 17, H/4, W/4]; the kernels are :mod:`dcpose_trt.runtime.tensorrt.gpu_kernels`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from dcpose_trt._deps import require
from dcpose_trt.errors import CudaError, InputError
from dcpose_trt.runtime.backends.base import GpuPoseBackend
from dcpose_trt.runtime.tensorrt.cuda import (
    HostDeviceBuffer,
)
from dcpose_trt.runtime.tensorrt.executor import BucketExecutor, _chunks

if TYPE_CHECKING:

    pass

log = logging.getLogger(__name__)


class FusedGpuPose(GpuPoseBackend):
    """``pose(window, boxes)``: crops and decoding on the GPU around a :class:`BucketExecutor` that has
    inputs ``frames`` [B, 9, H, W] and ``margin`` [B, 2] and one output [B, 17, H/4, W/4].

    Subclasses set ``executor``, ``input_size``, ``mean`` and ``std`` and call :meth:`_gpu_setup` first
    and :meth:`_gpu_close` in ``close()``.
    """

    executor: BucketExecutor
    input_size: tuple[int, int]
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    def _gpu_setup(self) -> None:
        self._frames_buf: HostDeviceBuffer | None = None

    def _views(self) -> Callable[[HostDeviceBuffer], Any]:
        import torch

        if not torch.cuda.is_available():
            raise CudaError("pose() runs the Triton crop/decode kernels through torch CUDA tensors; "
                            "install a CUDA build of torch, or use infer() with CPU crops")
        dev = torch.device("cuda", self.executor.device.index)
        return lambda buf: torch.as_tensor(buf, device=dev)

    def pose(self, window: Sequence[np.ndarray], boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Keypoints of the key frame, with crops and decoding on the GPU.

        Args:
            window: three uint8 BGR frames ``[H, W, 3]`` of one size: [current, previous, next].
            boxes: float32[N, >=4] person boxes (x, y, w, h[, score]) on the current frame (cleaned).

        Returns:
            coords float32[N, 17, 2] (image pixels) and maxvals float32[N, 17], as
            ``decode_heatmaps(infer(make_inputs(...)))`` gives them (crops within one intensity level).
        """
        require("triton", "triton", "the GPU crop and decode kernels")
        import torch

        from dcpose_trt.runtime.tensorrt import gpu_kernels as gk

        view = self._views()
        ex = self.executor
        if len(window) != 3 or any(f.shape != window[0].shape or f.dtype != np.uint8 or f.ndim != 3
                                   for f in window):
            raise InputError("pose() needs a window of three uint8 BGR frames of one size")
        boxes = np.asarray(boxes, np.float32)
        if boxes.ndim != 2 or boxes.shape[1] < 4:
            raise InputError(f"boxes must be [N, 4 or 5] (x, y, w, h[, score]), got shape {list(boxes.shape)}")
        n = len(boxes)
        hm_hw = (self.input_size[0] // 4, self.input_size[1] // 4)
        if n == 0:
            return np.zeros((0, 17, 2), np.float32), np.zeros((0, 17), np.float32)
        shape = (3, *window[0].shape)
        if self._frames_buf is None or self._frames_buf.shape != shape:
            if self._frames_buf is not None:
                ex.stream.synchronize()
                self._frames_buf.close()
            self._frames_buf = HostDeviceBuffer(shape, np.uint8, mapped=ex.mapped)
        fb = self._frames_buf
        for i, f in enumerate(window):
            fb.host[i] = f
        fb.copy_to_device(ex.stream)
        frames_t = view(fb)
        crop_inv, centers, scales = gk.crop_affines(boxes, self.input_size)
        dec_inv = gk.decode_affines(centers, scales, hm_hw)
        coords, maxvals = [], []
        tstream = torch.cuda.ExternalStream(ex.stream.ptr, device=frames_t.device)
        for start, stop in _chunks(n, ex.max_batch):
            m = stop - start
            bucket = ex.bucket_for(m)
            size = bucket.size
            if not bucket.extra:  # per-bucket pinned parameters, allocated once
                bucket.extra["crop"] = ex._buffer((size, 2, 3), np.float32)
                bucket.extra["decode"] = ex._buffer((size, 2, 3), np.float32)
                bucket.extra["frame_idx"] = ex._buffer((size * 3,), np.int32)
                bucket.extra["frame_idx"].host[:] = np.tile(np.arange(3, dtype=np.int32), size)
            crop, dec, idx = bucket.extra["crop"], bucket.extra["decode"], bucket.extra["frame_idx"]
            # Padded rows repeat person 0, so the engine sees real crops everywhere.
            crop.host[:m] = crop_inv[start:stop]
            crop.host[m:] = crop_inv[start]
            dec.host[:m] = dec_inv[start:stop]
            margin = bucket.inputs["margin"]
            margin.host[:] = 1.0
            for buf in (crop, dec, idx, margin):
                buf.copy_to_device(ex.stream)
            with torch.cuda.stream(tstream):  # Triton launches on torch's current stream
                gk.gpu_crop(frames_t, view(crop), view(idx), self.input_size, self.mean, self.std,
                            out=view(bucket.inputs["frames"]))
            ex.launch(bucket)  # on ex.stream, after the crop (same stream)
            with torch.cuda.stream(tstream):
                out = view(next(iter(bucket.outputs.values())))
                xy, mv = gk.gpu_decode(out[:m], view(dec)[:m])
                coords.append(xy.cpu().numpy())  # synchronous on our stream
                maxvals.append(mv.cpu().numpy())
        return np.concatenate(coords), np.concatenate(maxvals)

    def _gpu_close(self) -> None:
        if self._frames_buf is not None:
            self._frames_buf.close()
            self._frames_buf = None
