"""Small CUDA helpers over cuda-python (``cuda.bindings.runtime``), as TensorRT's own samples use it.

Streams, pinned host + device buffer pairs (zero-copy mapped memory on integrated GPUs such as Jetson),
async copies and CUDA graphs. Every resource is released deterministically by ``close()`` (idempotent)
or by leaving its ``with`` block; a best-effort ``__del__`` only covers objects nobody closed.

Every cuda-python call returns ``(err, *values)``; :func:`check_cuda` turns a non-success ``err`` into a
:class:`~dcpose_trt.errors.CudaError` naming the call and the error, and returns the values.
cuda-python is imported on first use (the ``cuda`` extra), so importing this module
never needs it.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

from dcpose_trt._deps import require
from dcpose_trt.errors import CudaError

log = logging.getLogger(__name__)

_ERROR_DOCS = "https://docs.nvidia.com/cuda/cuda-runtime-api/group__CUDART__TYPES.html"


def cudart() -> ModuleType:
    """``cuda.bindings.runtime`` (cuda-python >= 12.6), or :class:`MissingDependencyError` naming the extra."""
    return require("cuda.bindings.runtime", "cuda", "the CUDA runtime (streams, pinned buffers, graphs)")


def native_handle(obj: Any) -> int:
    """The address behind a cuda-python handle (``cudaStream_t``, ``cudaGraphExec_t``, ...) as ``int``.

    ``int(handle)`` is deprecated since cuda-bindings 12.9.1; ``cuda.bindings.utils.get_cuda_native_handle``
    replaces it (older cuda-python has no such helper and only ``int``).
    """
    try:
        from cuda.bindings.utils import get_cuda_native_handle  # type: ignore[import-not-found]
    except ImportError:
        return int(obj)
    return int(get_cuda_native_handle(obj))


def check_cuda(result: Any, what: str) -> Any:
    """Check a cuda-python result ``(err, *values)`` and return the values.

    Args:
        result: what a ``cuda.bindings`` runtime or driver call returned: a tuple whose first item is a
            ``cudaError_t`` / ``CUresult`` (0 = success), or that error alone.
        what: the call, for the message (``"cudaMemcpyAsync"``).

    Returns:
        ``None`` for no values, the value itself for one, else the tuple of values.

    Raises:
        CudaError: ``err`` is not success; the message names ``what`` and the error
            (``cudaMalloc failed: cudaErrorMemoryAllocation (out of memory)``).
    """
    err, values = (result[0], result[1:]) if isinstance(result, tuple) else (result, ())
    if int(err) != 0:
        name = getattr(err, "name", str(err))
        detail = ""
        with contextlib.suppress(Exception):  # the description is a nicety; never mask the real error
            rt = cudart()
            if isinstance(err, rt.cudaError_t):
                detail = f" ({rt.cudaGetErrorString(err)[1].decode()})"
        raise CudaError(f"{what} failed: {name}{detail}; see {_ERROR_DOCS}")
    if not values:
        return None
    return values[0] if len(values) == 1 else values


@dataclass(frozen=True)
class DeviceInfo:
    """One CUDA device.

    Attributes:
        index: device ordinal. name: marketing name. compute_capability: ``"8.7"``.
        integrated: an iGPU sharing DRAM with the CPU (Jetson): zero-copy mapped buffers avoid copies.
        can_map_host_memory: mapped pinned memory is supported.
    """

    index: int
    name: str
    compute_capability: str
    integrated: bool
    can_map_host_memory: bool


def device_info(index: int = 0) -> DeviceInfo:
    """Properties of CUDA device ``index`` (raises :class:`CudaError` without a usable GPU/driver)."""
    rt = cudart()
    prop = check_cuda(rt.cudaGetDeviceProperties(index), "cudaGetDeviceProperties")
    name = prop.name.decode(errors="replace").rstrip("\x00") if isinstance(prop.name, bytes) else str(prop.name)
    return DeviceInfo(index, name, f"{prop.major}.{prop.minor}", bool(prop.integrated), bool(prop.canMapHostMemory))


def set_device(index: int = 0) -> None:
    """Make ``index`` the calling thread's current device (creates the primary context if needed)."""
    check_cuda(cudart().cudaSetDevice(index), "cudaSetDevice")


class Resource:
    """Base of the closeable wrappers: ``close()`` is idempotent, ``with`` closes, ``__del__`` is a fallback."""

    _closed = True

    def close(self) -> None:
        raise NotImplementedError

    @property
    def closed(self) -> bool:
        return self._closed

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        # Only for objects nobody closed; at interpreter exit cuda-python may already be gone.
        if not self._closed:
            with contextlib.suppress(Exception):
                self.close()


class Stream(Resource):
    """A non-blocking CUDA stream (no implicit sync with the legacy default stream).

    Attributes:
        handle: the ``cudaStream_t``. ptr: its address as ``int`` (what TensorRT's
            ``execute_async_v3`` and ``torch.cuda.ExternalStream`` take).
    """

    def __init__(self) -> None:
        rt = cudart()
        self.handle = check_cuda(rt.cudaStreamCreateWithFlags(rt.cudaStreamNonBlocking), "cudaStreamCreateWithFlags")
        self._closed = False

    @property
    def ptr(self) -> int:
        return native_handle(self.handle)

    def synchronize(self) -> None:
        check_cuda(cudart().cudaStreamSynchronize(self.handle), "cudaStreamSynchronize")

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        check_cuda(cudart().cudaStreamDestroy(self.handle), "cudaStreamDestroy")


class DeviceBuffer(Resource):
    """``nbytes`` of device memory (``cudaMalloc``), e.g. an engine's activation memory."""

    def __init__(self, nbytes: int) -> None:
        self.nbytes = max(int(nbytes), 1)
        self.ptr: int = int(check_cuda(cudart().cudaMalloc(self.nbytes), "cudaMalloc"))
        self._closed = False

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        check_cuda(cudart().cudaFree(self.ptr), "cudaFree")


class HostDeviceBuffer(Resource):
    """A pinned host array and the device memory it is copied to/from, allocated once.

    Discrete GPUs: ``cudaMallocHost`` + ``cudaMalloc``, copied with async memcpys on a stream. Integrated
    GPUs (``mapped=True``): one ``cudaHostAlloc(cudaHostAllocMapped)`` block whose device address comes from
    ``cudaHostGetDevicePointer``; the GPU reads and writes the same DRAM, so the copies are no-ops.

    Args:
        shape: array shape, e.g. ``(8, 9, 384, 288)``.
        dtype: numpy dtype.
        mapped: zero-copy mapped memory (use :attr:`DeviceInfo.integrated`).

    Attributes:
        host (np.ndarray[shape]): the pinned host array (valid until :meth:`close`).
        device_ptr (int): device address of the data.
        nbytes (int): size in bytes.

    ``__cuda_array_interface__`` describes the device side, so ``torch.as_tensor(buf, device="cuda")`` is a
    zero-copy view (valid until :meth:`close`).
    """

    def __init__(self, shape: Sequence[int], dtype: Any = np.float32, mapped: bool = False) -> None:
        rt = cudart()
        self.shape = tuple(int(s) for s in shape)
        self.dtype = np.dtype(dtype)
        self.nbytes = max(int(np.prod(self.shape)) * self.dtype.itemsize, 1)
        self.mapped = bool(mapped)
        self._host_ptr = 0
        self.device_ptr = 0
        self._closed = False  # from here on close() frees whatever was allocated
        try:
            if self.mapped:
                self._host_ptr = int(check_cuda(rt.cudaHostAlloc(self.nbytes, rt.cudaHostAllocMapped),
                                                "cudaHostAlloc(cudaHostAllocMapped)"))
                self.device_ptr = int(check_cuda(rt.cudaHostGetDevicePointer(self._host_ptr, 0),
                                                 "cudaHostGetDevicePointer"))
            else:
                self._host_ptr = int(check_cuda(rt.cudaMallocHost(self.nbytes), "cudaMallocHost"))
                self.device_ptr = int(check_cuda(rt.cudaMalloc(self.nbytes), "cudaMalloc"))
        except BaseException:
            self.close()
            raise
        raw = (ctypes.c_byte * self.nbytes).from_address(self._host_ptr)
        count = int(np.prod(self.shape))
        self.host: np.ndarray = np.frombuffer(raw, dtype=self.dtype, count=count).reshape(self.shape)

    @property
    def __cuda_array_interface__(self) -> dict[str, Any]:
        if self._closed:
            raise CudaError("this buffer was closed")
        return {"shape": self.shape, "typestr": self.dtype.str, "data": (self.device_ptr, False), "version": 3,
                "strides": None}

    def copy_to_device(self, stream: Stream, nbytes: int | None = None) -> None:
        """Async host -> device copy of the first ``nbytes`` (default all) on ``stream``; no-op when mapped."""
        if not self.mapped:
            rt = cudart()
            n = self.nbytes if nbytes is None else min(int(nbytes), self.nbytes)
            check_cuda(rt.cudaMemcpyAsync(self.device_ptr, self._host_ptr, n, rt.cudaMemcpyKind.cudaMemcpyHostToDevice,
                                          stream.handle), "cudaMemcpyAsync(host to device)")

    def copy_to_host(self, stream: Stream, nbytes: int | None = None) -> None:
        """Async device -> host copy of the first ``nbytes`` (default all) on ``stream``; no-op when mapped."""
        if not self.mapped:
            rt = cudart()
            n = self.nbytes if nbytes is None else min(int(nbytes), self.nbytes)
            check_cuda(rt.cudaMemcpyAsync(self._host_ptr, self.device_ptr, n, rt.cudaMemcpyKind.cudaMemcpyDeviceToHost,
                                          stream.handle), "cudaMemcpyAsync(device to host)")

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.host = np.empty((0,), self.dtype)  # drop the view before the memory goes away
        rt = cudart()
        errors = []
        if self.device_ptr and not self.mapped:
            errors.append((rt.cudaFree(self.device_ptr), "cudaFree"))
        if self._host_ptr:
            errors.append((rt.cudaFreeHost(self._host_ptr), "cudaFreeHost"))
        self._host_ptr = self.device_ptr = 0
        for result, what in errors:
            check_cuda(result, what)


class CudaGraph(Resource):
    """A captured, instantiated CUDA graph; :meth:`launch` replays it on a stream.

    Graphs bake in kernel arguments (tensor addresses, shapes): capture one per fixed set of buffers and
    shapes (one per person bucket) and keep those buffers alive and unmoved while the graph exists.
    """

    def __init__(self, graph: Any, graph_exec: Any) -> None:
        self._graph = graph
        self._exec = graph_exec
        self._closed = False

    @classmethod
    def capture(cls, stream: Stream, enqueue: Callable[[], None], mode: str = "thread_local") -> CudaGraph:
        """Record what ``enqueue()`` puts on ``stream`` and instantiate it.

        ``cudaStreamBeginCapture`` -> ``enqueue()`` -> ``cudaStreamEndCapture`` -> ``cudaGraphInstantiate``.
        Nothing runs during capture. If ``enqueue`` raises, the capture is ended and discarded and the
        exception propagates.

        Args:
            stream: the stream ``enqueue`` launches work on.
            enqueue: launches the work (e.g. ``context.execute_async_v3(stream.ptr)``).
            mode: ``"thread_local"`` (default: other threads of the application may keep calling CUDA),
                ``"global"`` or ``"relaxed"`` (``cudaStreamCaptureMode``).
        """
        rt = cudart()
        modes = {"global": rt.cudaStreamCaptureMode.cudaStreamCaptureModeGlobal,
                 "thread_local": rt.cudaStreamCaptureMode.cudaStreamCaptureModeThreadLocal,
                 "relaxed": rt.cudaStreamCaptureMode.cudaStreamCaptureModeRelaxed}
        if mode not in modes:
            raise ValueError(f"capture mode must be one of {', '.join(modes)}, got {mode!r}")
        check_cuda(rt.cudaStreamBeginCapture(stream.handle, modes[mode]), "cudaStreamBeginCapture")
        try:
            enqueue()
        except BaseException:
            # End (and so abandon) the capture, or the stream stays unusable.
            err, graph = rt.cudaStreamEndCapture(stream.handle)
            if int(err) == 0 and graph is not None:
                rt.cudaGraphDestroy(graph)
            raise
        graph = check_cuda(rt.cudaStreamEndCapture(stream.handle), "cudaStreamEndCapture")
        try:
            graph_exec = check_cuda(rt.cudaGraphInstantiate(graph, 0), "cudaGraphInstantiate")
        except CudaError:
            rt.cudaGraphDestroy(graph)
            raise
        return cls(graph, graph_exec)

    def launch(self, stream: Stream) -> None:
        """Enqueue one replay on ``stream`` (asynchronous)."""
        if self._closed:
            raise CudaError("cudaGraphLaunch on a closed graph")
        check_cuda(cudart().cudaGraphLaunch(self._exec, stream.handle), "cudaGraphLaunch")

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        rt = cudart()
        r1 = rt.cudaGraphExecDestroy(self._exec)
        r2 = rt.cudaGraphDestroy(self._graph)
        check_cuda(r1, "cudaGraphExecDestroy")
        check_cuda(r2, "cudaGraphDestroy")
