"""The bucket executor every GPU path shares (TensorRT plans and torch CUDA modules).

One CUDA stream; per person *bucket* (the batch sizes the plan's optimization profiles are built for,
e.g. 1 / 8 / 32) pinned host and device buffers allocated once; async copies; an eager warm-up run, then
one CUDA graph per bucket captured and replayed; a batch larger than the largest bucket is split;
``close()`` releases everything in reverse order. Engines plug in by overriding ``_setup_bucket``,
``_bind_outputs``, ``_enqueue`` (and ``_capturable``, ``_close_engine``):
:class:`~dcpose_trt.runtime.tensorrt.trt_backend.TensorRTExecutor` and
:class:`~dcpose_trt.runtime.tensorrt.torch_cuda.TorchCudaExecutor`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from dcpose_trt.errors import CudaError, InputError
from dcpose_trt.runtime.tensorrt.cuda import (
    CudaGraph,
    HostDeviceBuffer,
    Resource,
    Stream,
    cudart,
    device_info,
    set_device,
)

if TYPE_CHECKING:

    pass

log = logging.getLogger(__name__)


# %% Buckets -----------------------------------------------------------------------------------------


def buckets_from_profiles(profiles: Sequence[tuple[int, int, int]]) -> list[tuple[int, int]]:
    """Person buckets and the profile each one runs in, from batch profiles ``(min, opt, max)``.

    A bucket is a batch size the runtime pads to (its graph has a fixed shape): every profile's ``opt``
    and ``max``, plus the smallest ``min`` (a single person should not pay for eight). A bucket runs in the
    profile whose ``opt`` equals it (kernels tuned for it), else the first profile that covers it.

    ``[(1, 8, 32)]`` -> ``[(1, 0), (8, 0), (32, 0)]``;
    ``[(1, 1, 1), (2, 8, 8), (9, 32, 32)]`` -> ``[(1, 0), (8, 1), (32, 2)]``.
    """
    if not profiles:
        raise InputError("a plan needs at least one batch profile")
    sizes = {min(p[0] for p in profiles)}
    for _, opt, hi in profiles:
        sizes |= {opt, hi}
    out = []
    for b in sorted(sizes):
        tuned = [i for i, p in enumerate(profiles) if p[1] == b]
        covering = [i for i, p in enumerate(profiles) if p[0] <= b <= p[2]]
        if tuned or covering:
            out.append((b, (tuned or covering)[0]))
    return out


def _chunks(n: int, largest: int) -> list[tuple[int, int]]:
    """``[start, stop)`` slices of at most ``largest`` items covering ``range(n)``."""
    return [(s, min(n, s + largest)) for s in range(0, n, largest)]


# %% The shared executor -----------------------------------------------------------------------------


@dataclass(frozen=True)
class TensorSpec:
    """One network input or output: ``shape`` without the batch dimension, numpy ``dtype``."""

    name: str
    shape: tuple[int, ...]
    dtype: Any = np.float32


@dataclass
class Bucket:
    """The fixed resources of one batch size.

    Attributes:
        size: batch size (persons). profile: optimization-profile index (TensorRT).
        inputs, outputs: ``name -> HostDeviceBuffer`` of shape ``(size, *spec.shape)``.
        graph: the captured CUDA graph once warmed up (None before, or when capture is off or failed).
        runs: eager runs so far. state: engine-specific (the TensorRT execution context, torch views).
    """

    size: int
    profile: int
    inputs: dict[str, HostDeviceBuffer] = field(default_factory=dict)
    outputs: dict[str, HostDeviceBuffer] = field(default_factory=dict)
    graph: CudaGraph | None = None
    graph_failed: bool = False
    runs: int = 0
    state: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, HostDeviceBuffer] = field(default_factory=dict)


class BucketExecutor(Resource):
    """One stream, per-bucket pinned/device buffers and CUDA graphs, for a model with a batch dimension.

    Subclasses say how to bind a bucket (:meth:`_setup_bucket`: shapes, addresses; returns the output
    shapes) and how to enqueue the model on :attr:`stream` (:meth:`_enqueue`); this class owns the
    buffers, copies, graphs and their release.

    Args:
        inputs: input specs (batch dimension excluded), in the order the model takes them.
        outputs: output names in order (their shapes come from :meth:`_setup_bucket`).
        buckets: ``(size, profile)`` pairs (see :func:`buckets_from_profiles`).
        device: CUDA device ordinal.
        use_graphs: capture one CUDA graph per bucket after its first (warm-up) run.
        mapped: zero-copy mapped host buffers; ``None`` picks them on integrated GPUs (Jetson).

    Attributes:
        stream: the :class:`~dcpose_trt.runtime.tensorrt.cuda.Stream` everything runs on.
        device: :class:`~dcpose_trt.runtime.tensorrt.cuda.DeviceInfo`.
    """

    def __init__(self, inputs: Sequence[TensorSpec], outputs: Sequence[str], buckets: Sequence[tuple[int, int]],
                 device: int = 0, use_graphs: bool = True, mapped: bool | None = None) -> None:
        if not buckets:
            raise InputError("no batch buckets to run")
        self.input_specs = list(inputs)
        self.output_names = list(outputs)
        self.bucket_sizes = sorted(buckets)
        self.use_graphs = use_graphs
        self._buckets: dict[int, Bucket] = {}
        self._resources: list[Any] = []  # closed in reverse order
        self._closed = False
        cudart()  # MissingDependencyError naming the [cuda] extra before anything else
        set_device(device)
        self.device = device_info(device)
        self.mapped = self.device.integrated and self.device.can_map_host_memory if mapped is None else mapped
        self.stream = self._own(Stream())

    # -- subclass hooks -----------------------------------------------------------------------------
    def _setup_bucket(self, bucket: Bucket) -> dict[str, tuple[tuple[int, ...], Any]]:
        """Prepare the engine for ``bucket`` (its input buffers exist); return ``name -> (shape, dtype)``
        of every output (full shape, batch included)."""
        raise NotImplementedError

    def _bind_outputs(self, bucket: Bucket) -> None:
        """Called once the output buffers exist (set their addresses)."""

    def _enqueue(self, bucket: Bucket) -> None:
        """Enqueue one run of the model on :attr:`stream` reading/writing the bucket's device buffers."""
        raise NotImplementedError

    def _capturable(self, bucket: Bucket) -> bool:
        """Whether the bucket's enqueue may be captured into a CUDA graph."""
        return True

    # -- resources ----------------------------------------------------------------------------------
    def _own(self, resource: Any) -> Any:
        self._resources.append(resource)
        return resource

    def _buffer(self, shape: Sequence[int], dtype: Any) -> HostDeviceBuffer:
        return self._own(HostDeviceBuffer(shape, dtype, mapped=self.mapped))

    @property
    def max_batch(self) -> int:
        return self.bucket_sizes[-1][0]

    def bucket_for(self, n: int) -> Bucket:
        """The bucket that runs ``n`` persons (the smallest one >= n), created on first use."""
        if self._closed:
            raise CudaError("this executor was closed")
        if n < 1 or n > self.max_batch:
            raise InputError(f"a batch of {n} does not fit the buckets {[b for b, _ in self.bucket_sizes]}")
        size, profile = next((b, p) for b, p in self.bucket_sizes if b >= n)
        bucket = self._buckets.get(size)
        if bucket is None:
            bucket = Bucket(size, profile)
            for spec in self.input_specs:
                bucket.inputs[spec.name] = self._buffer((size, *spec.shape), spec.dtype)
            out_shapes = self._setup_bucket(bucket)
            for name in self.output_names:
                shape, dtype = out_shapes[name]
                bucket.outputs[name] = self._buffer(shape, dtype)
            self._bind_outputs(bucket)
            self._buckets[size] = bucket
        return bucket

    def prepare(self, sizes: Sequence[int] | None = None) -> None:
        """Allocate, warm up and capture the given buckets (default all) now instead of on first use."""
        for size in sizes or [b for b, _ in self.bucket_sizes]:
            bucket = self.bucket_for(size)
            if bucket.runs == 0:
                for buf in bucket.inputs.values():  # pinned memory starts uninitialised
                    buf.host[...] = 0
                    buf.copy_to_device(self.stream)
                self.launch(bucket)  # eager warm-up, then the graph is captured
                self.stream.synchronize()

    # -- running ------------------------------------------------------------------------------------
    def launch(self, bucket: Bucket) -> None:
        """Enqueue one run of ``bucket`` on the stream: its graph if captured, else eagerly.

        The first run is eager (TensorRT allocates lazily, torch warms its allocator and cuDNN); the graph
        is captured right after it, so every later run is one ``cudaGraphLaunch``. Capture failures (an
        engine that is not stream-capturable) leave the bucket eager, with a warning.
        """
        if bucket.graph is not None:
            bucket.graph.launch(self.stream)
            return
        self._enqueue(bucket)
        bucket.runs += 1
        if self.use_graphs and not bucket.graph_failed:
            if not self._capturable(bucket):
                bucket.graph_failed = True
                log.info("the engine is not stream-capturable; batch %d runs without a CUDA graph", bucket.size)
                return
            self.stream.synchronize()  # the warm-up run must finish before capture changes the stream's mode
            try:
                bucket.graph = self._own(CudaGraph.capture(self.stream, lambda: self._enqueue(bucket)))
            except (CudaError, RuntimeError) as exc:
                bucket.graph_failed = True
                log.warning("CUDA graph capture failed for batch %d; running it without a graph (%s)",
                            bucket.size, exc)

    def run(self, feed: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Host arrays in, host arrays out: ``feed[name]`` is ``[N, *spec.shape]`` for every input.

        Each chunk of at most :attr:`max_batch` rows is copied into its bucket's pinned buffer (the rows
        past N repeat row 0, so padded rows compute finite values), copied to the device, run, and the N
        valid output rows are copied back. Returns ``name -> [N, ...]`` (fresh arrays).
        """
        arrays = {}
        for spec in self.input_specs:
            if spec.name not in feed:
                raise InputError(f"missing input {spec.name!r}")
            a = np.ascontiguousarray(feed[spec.name], dtype=spec.dtype)
            if tuple(a.shape[1:]) != spec.shape:
                raise InputError(f"{spec.name} must be [N, {', '.join(map(str, spec.shape))}], got {list(a.shape)}")
            arrays[spec.name] = a
        n = {a.shape[0] for a in arrays.values()}
        if len(n) != 1:
            raise InputError(f"inputs disagree on the batch size: {sorted(n)}")
        total = n.pop()
        parts: dict[str, list[np.ndarray]] = {name: [] for name in self.output_names}
        for start, stop in _chunks(total, self.max_batch):
            m = stop - start
            bucket = self.bucket_for(m)
            for name, buf in bucket.inputs.items():
                buf.host[:m] = arrays[name][start:stop]
                buf.host[m:] = buf.host[0]
                buf.copy_to_device(self.stream)
            self.launch(bucket)
            for buf in bucket.outputs.values():
                buf.copy_to_host(self.stream, nbytes=m * (buf.nbytes // bucket.size))
            self.stream.synchronize()
            for name, buf in bucket.outputs.items():
                parts[name].append(buf.host[:m].copy())
        return {name: np.concatenate(p) if p else np.zeros((0,), np.float32) for name, p in parts.items()}

    # -- release ------------------------------------------------------------------------------------
    def close(self) -> None:
        """Release every CUDA resource (graphs, buffers, stream, engine state), newest first; idempotent."""
        if self._closed:
            return
        self._closed = True
        try:
            if not self.stream.closed:
                self.stream.synchronize()  # nothing may still be reading a buffer we free
        finally:
            errors = []
            self._close_engine()
            while self._resources:
                res = self._resources.pop()
                try:
                    res.close()
                except CudaError as exc:  # keep releasing the rest, report the first failure
                    errors.append(exc)
            self._buckets.clear()
            if errors:
                raise errors[0]

    def _close_engine(self) -> None:
        """Drop engine objects that live on the device memory about to be freed (subclasses)."""
