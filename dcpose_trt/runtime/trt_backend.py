"""The low-latency GPU runtime: TensorRT / TensorRT-RTX / lean-runtime plans on cuda-python.

:class:`BucketExecutor` is the machinery every GPU path shares: one CUDA stream; per person *bucket*
(the batch sizes the plan's optimization profiles are built for, e.g. 1 / 8 / 32) pinned host and device
buffers allocated once; async copies; an eager warm-up run, then one CUDA graph per bucket captured and
replayed; a batch larger than the largest bucket is split; ``close()`` releases everything in reverse
order. Two engines plug into it:

* :class:`TensorRTExecutor`: an ``ICudaEngine`` with one execution context per bucket (its profile and
  input shapes fixed, so its graph stays valid), all contexts sharing one activation-memory block (the
  buckets run one after another on one stream), ``set_tensor_address`` + ``execute_async_v3``.
* :class:`TorchCudaExecutor`: a torch CUDA module on the same stream, buffers and graphs (the GPU machines
  available to this project have no TensorRT; ``pytest -m gpu`` exercises this path).

:class:`TensorRTBackend` and :class:`TorchCudaBackend` put the :class:`~dcpose_trt.runtime.backends.Backend`
interface on them. Besides ``infer(frames, margin)`` (CPU crops in, heatmaps out) they offer
``pose(window, boxes)``: frames go to the GPU once, the Triton kernels of
:mod:`dcpose_trt.runtime.gpu_kernels` crop straight into the engine's input buffer and decode its output,
and only keypoints come back.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from dcpose_trt._deps import available, require
from dcpose_trt.errors import CudaError, InputError, PlanMismatchError
from dcpose_trt.runtime.cuda import (
    CudaGraph,
    DeviceBuffer,
    HostDeviceBuffer,
    Resource,
    Stream,
    cudart,
    device_info,
    set_device,
)

if TYPE_CHECKING:
    import torch

    from dcpose_trt.engine._trt import trt

log = logging.getLogger(__name__)

# runtime flavour -> (module, pip extra). The lean runtime loads version-compatible plans built by full
# TensorRT (``--version-compatible``); it has Runtime/ICudaEngine/IExecutionContext and nothing else.
RUNTIME_MODULES: dict[str, tuple[str, str]] = {
    "tensorrt": ("tensorrt", "trt"),
    "tensorrt-rtx": ("tensorrt_rtx", "rtx"),
    "tensorrt-lean": ("tensorrt_lean", "lean"),
}

_NP_DTYPES = {"FLOAT": np.float32, "HALF": np.float16, "INT32": np.int32, "INT64": np.int64, "INT8": np.int8,
              "UINT8": np.uint8, "BOOL": np.bool_}


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
        stream: the :class:`~dcpose_trt.runtime.cuda.Stream` everything runs on.
        device: :class:`~dcpose_trt.runtime.cuda.DeviceInfo`.
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


# %% TensorRT ----------------------------------------------------------------------------------------


def _import_runtime(flavour: str) -> Any:
    module, extra = RUNTIME_MODULES[flavour]
    return require(module, extra, f"running {flavour.replace('-lean', '')} plans")


def _dims(dims: Any) -> tuple[int, ...]:
    return tuple(int(dims[i]) for i in range(len(dims)))


def _make_logger(trt_module: Any) -> Any:
    """An ``ILogger`` of ``trt_module`` that forwards to :mod:`logging` and keeps the errors (``.errors``)."""
    if TYPE_CHECKING:
        from dcpose_trt.engine._trt import trt as t
    else:
        t = trt_module

    class Logger(t.ILogger):
        def __init__(self) -> None:
            t.ILogger.__init__(self)
            self.errors: list[str] = []

        def log(self, severity: t.ILogger.Severity, msg: str) -> None:
            name = severity.name
            if name in ("INTERNAL_ERROR", "ERROR"):
                self.errors.append(msg)
                log.error("%s", msg)
            elif name == "WARNING":
                log.warning("%s", msg)
            else:
                log.debug("%s", msg)

    return Logger()


@dataclass(frozen=True)
class PlanPlugins:
    """What a plan's plugin layers need registered before it is deserialized (read from its sidecar).

    Attributes:
        dcn_form: ``"plugin"`` (our QDP), ``"deformconv"`` (libnvinfer_plugin's ModulatedDeformConv2d),
            ``"gridsample"`` or ``"none"``.
        plugin_impl: ``"aot"`` (PTX embedded in the plan: no Python needed), ``"jit"`` (our Python plugin
            must be registered in this process) or None (no plugin of ours).
        libraries: plugin libraries the build loaded (``--plugin-dir``); loaded again here unless the plan is
            version-compatible (then the builder serialized them into the plan).
        version_compatible: the plan was built ``--version-compatible``.
    """

    dcn_form: str = "none"
    plugin_impl: str | None = None
    libraries: tuple[str, ...] = ()
    version_compatible: bool = False

    @classmethod
    def from_sidecar(cls, meta: Mapping[str, Any]) -> PlanPlugins:
        build = meta.get("build") or {}
        form = str((meta.get("dcn") or {}).get("form", "none"))
        impl = build.get("plugin_impl")
        if form == "plugin" and impl is None:
            impl = "jit"  # a sidecar from before plugin_impl was recorded: register to be safe
        return cls(form, impl, tuple(build.get("plugin_libraries") or ()),
                   bool((meta.get("target") or {}).get("version_compatible")))


def register_plan_plugins(trt_module: Any, logger: Any, plugins: PlanPlugins, what: str = "plan") -> None:
    """Register what ``plugins`` says the plan needs, as Polygraphy's and TensorRT's samples do before every
    ``deserialize_cuda_engine``: TensorRT's built-in plugins (``init_libnvinfer_plugins``: the
    ``deformconv`` form's ModulatedDeformConv2d lives there), the plugin libraries of the build, and our
    Python plugin for JIT plans.

    Raises:
        PlanMismatchError: a recorded plugin library is missing, or our JIT plugin cannot be registered.
    """
    if TYPE_CHECKING:
        from dcpose_trt.engine._trt import trt as t
    else:
        t = trt_module
    if hasattr(t, "init_libnvinfer_plugins"):  # not in the lean runtime (VC plans carry their plugins)
        t.init_libnvinfer_plugins(logger, "")
    elif plugins.dcn_form == "deformconv" and not plugins.version_compatible:
        raise PlanMismatchError(f"{what} uses TensorRT's built-in DeformConv plugin, which {t.__name__} "
                                "cannot load; run it with full TensorRT (pip install 'dcpose-trt[trt]')")
    if plugins.libraries and not plugins.version_compatible:
        registry = t.get_plugin_registry()
        for lib in plugins.libraries:
            if not Path(lib).is_file():
                raise PlanMismatchError(f"{what} needs the plugin library {lib}, which does not exist here")
            registry.load_library(lib)
    if plugins.plugin_impl == "jit":
        from dcpose_trt.errors import PluginError
        from dcpose_trt.plugins.deform_conv.plugin import register_plugin

        try:
            register_plugin()
        except PluginError as exc:
            raise PlanMismatchError(f"{what} runs the dcpose_trt plugin from Python (JIT) and it cannot be "
                                    f"registered here: {exc}") from None


def load_engine(plan: bytes, trt_module: Any, logger: Any, plugins: PlanPlugins | None = None,
                what: str = "plan") -> tuple[Any, Any]:
    """``(runtime, engine)``: plugins registered (:func:`register_plan_plugins`), then the plan deserialized.

    Raises:
        PlanMismatchError: the runtime refused the plan (message: TensorRT's error).
    """
    if TYPE_CHECKING:
        from dcpose_trt.engine._trt import trt as t
    else:
        t = trt_module
    plugins = plugins or PlanPlugins()
    register_plan_plugins(t, logger, plugins, what)
    runtime = t.Runtime(logger)
    if plugins.version_compatible and hasattr(runtime, "engine_host_code_allowed"):
        # A version-compatible plan carries its own lean runtime and serialized plugin libraries (host
        # code); full TensorRT runs them only when allowed to. The lean runtime needs no permission.
        runtime.engine_host_code_allowed = True
    engine = runtime.deserialize_cuda_engine(plan)
    if engine is None:
        detail = "; ".join(getattr(logger, "errors", [])[-3:]) or "no error was logged"
        raise PlanMismatchError(f"{t.__name__} {t.__version__} cannot load {what}: {detail}")
    return runtime, engine


def create_context(trt_module: Any, engine: Any) -> Any:
    """An execution context whose activation memory the caller provides (``set_device_memory``).

    TensorRT-RTX compiles shape-specialized kernels lazily and runs fallback kernels until they are ready,
    so a CUDA graph captured after the warm-up could keep the fallbacks: its runtime config asks for
    eager specialization (``DynamicShapesKernelSpecializationStrategy.EAGER``) and turns off its own CUDA
    graphs (``CudaGraphStrategy.DISABLED``), since :class:`BucketExecutor` captures one graph per bucket.
    Full TensorRT has neither knob and gets a plain ``USER_MANAGED`` context.
    """
    if TYPE_CHECKING:
        from dcpose_trt.engine._trt import trt as t
    else:
        t = trt_module
    user_managed = t.ExecutionContextAllocationStrategy.USER_MANAGED
    specialize = getattr(t, "DynamicShapesKernelSpecializationStrategy", None)  # version probe: RTX
    if specialize is None or not hasattr(engine, "create_runtime_config"):
        return engine.create_execution_context(user_managed)
    config = engine.create_runtime_config()
    config.set_execution_context_allocation_strategy(user_managed)
    config.dynamic_shapes_kernel_specialization_strategy = specialize.EAGER
    graphs = getattr(t, "CudaGraphStrategy", None)
    if graphs is not None:
        config.cuda_graph_strategy = graphs.DISABLED
    return engine.create_execution_context(config)


class TensorRTExecutor(BucketExecutor):
    """A deserialized TensorRT / TensorRT-RTX / lean-runtime engine on the shared bucket machinery.

    Args:
        plan: the serialized engine (bytes).
        trt_module: the imported ``tensorrt``, ``tensorrt_rtx`` or ``tensorrt_lean`` module.
        version_compatible: the plan was built ``--version-compatible`` (full TensorRT must then be allowed
            to run the lean runtime embedded in it).
        plugins: what the plan's plugin layers need (:meth:`PlanPlugins.from_sidecar`); registered before
            the plan is deserialized.
        device, use_graphs, mapped: see :class:`BucketExecutor`.
        what: the plan's name, for messages.

    Raises:
        PlanMismatchError: the runtime refused the plan (message: TensorRT's error).
        CudaError: a CUDA call failed or ``execute_async_v3`` returned False.
    """

    def __init__(self, plan: bytes, trt_module: Any, version_compatible: bool = False, device: int = 0,
                 use_graphs: bool = True, mapped: bool | None = None, what: str = "plan",
                 plugins: PlanPlugins | None = None) -> None:
        if TYPE_CHECKING:
            from dcpose_trt.engine._trt import trt as t
        else:
            t = trt_module
        self._trt = trt_module
        set_device(device)  # the runtime deserializes into the current device's context
        self._logger = _make_logger(trt_module)
        if plugins is None:
            plugins = PlanPlugins(version_compatible=version_compatible)
        elif version_compatible and not plugins.version_compatible:
            plugins = PlanPlugins(plugins.dcn_form, plugins.plugin_impl, plugins.libraries, True)
        runtime, engine = load_engine(plan, t, self._logger, plugins, what)
        self._runtime: Any = runtime
        self.engine: trt.ICudaEngine | None = engine
        self._contexts: dict[int, trt.IExecutionContext] = {}  # bucket size -> its context

        inputs, outputs, self._batched = [], [], set()
        for i in range(engine.num_io_tensors):
            name = engine.get_tensor_name(i)
            dt = engine.get_tensor_dtype(name).name
            if dt not in _NP_DTYPES:
                raise PlanMismatchError(f"{what}: tensor {name} has type {dt}, which the runtime cannot feed")
            shape = _dims(engine.get_tensor_shape(name))
            if engine.get_tensor_mode(name) == t.TensorIOMode.INPUT:
                if any(d < 0 for d in shape[1:]):
                    raise PlanMismatchError(f"{what}: input {name} {list(shape)} has a dynamic non-batch dimension")
                if shape[0] < 0:
                    self._batched.add(name)
                inputs.append(TensorSpec(name, shape[1:], _NP_DTYPES[dt]))
            else:
                outputs.append(name)
        # A plan without a dynamic batch runs at its static batch size (padded like a bucket).
        static = [_dims(engine.get_tensor_shape(spec.name))[0] for spec in inputs]
        self.fixed_batch = next((b for b in static if b > 0), 0)
        if self._batched:
            first = sorted(self._batched)[0]
            profiles = []
            for p in range(engine.num_optimization_profiles):
                lo, opt, hi = (_dims(d)[0] for d in engine.get_tensor_profile_shape(first, p))
                profiles.append((lo, opt, hi))
            buckets = buckets_from_profiles(profiles)
        else:
            buckets = [(max(self.fixed_batch, 1), 0)]
        super().__init__(inputs, outputs, buckets, device=device, use_graphs=use_graphs, mapped=mapped)
        try:
            # One activation block for all contexts: buckets run one at a time on one stream.
            self._activation = self._own(DeviceBuffer(int(engine.device_memory_size_v2)))
        except BaseException:
            self.close()
            raise

    def _setup_bucket(self, bucket: Bucket) -> dict[str, tuple[tuple[int, ...], Any]]:
        if TYPE_CHECKING:
            from dcpose_trt.engine._trt import trt as t
        else:
            t = self._trt
        engine = self.engine
        if engine is None:
            raise CudaError("this executor was closed")
        context = create_context(t, engine)
        if context is None:
            raise CudaError(f"could not create an execution context for batch {bucket.size}: "
                            f"{'; '.join(self._logger.errors[-3:]) or 'no error was logged'}")
        self._contexts[bucket.size] = context
        context.set_device_memory(self._activation.ptr, self._activation.nbytes)
        if engine.num_optimization_profiles > 1:
            if not context.set_optimization_profile_async(bucket.profile, self.stream.ptr):
                raise CudaError(f"set_optimization_profile_async({bucket.profile}) failed")
        for spec in self.input_specs:
            buf = bucket.inputs[spec.name]
            if spec.name in self._batched and not context.set_input_shape(spec.name, buf.shape):
                raise CudaError(f"set_input_shape({spec.name}, {list(buf.shape)}) was refused "
                                f"(profile {bucket.profile})")
            if not context.set_tensor_address(spec.name, buf.device_ptr):
                raise CudaError(f"set_tensor_address({spec.name}) was refused")
        missing = context.infer_shapes()
        if missing:
            raise CudaError(f"TensorRT cannot infer shapes for batch {bucket.size}: {missing}")
        out: dict[str, tuple[tuple[int, ...], Any]] = {}
        for name in self.output_names:
            shape = _dims(context.get_tensor_shape(name))
            out[name] = (shape, _NP_DTYPES[engine.get_tensor_dtype(name).name])
        return out

    def _bind_outputs(self, bucket: Bucket) -> None:
        context = self._contexts[bucket.size]
        for name, buf in bucket.outputs.items():
            if not context.set_tensor_address(name, buf.device_ptr):
                raise CudaError(f"set_tensor_address({name}) was refused")

    def _capturable(self, bucket: Bucket) -> bool:
        context = self._contexts[bucket.size]
        # TensorRT-RTX (and newer TensorRT) can say whether an engine's enqueue may be captured.
        return not hasattr(context, "is_stream_capturable") or bool(context.is_stream_capturable(self.stream.ptr))

    def _enqueue(self, bucket: Bucket) -> None:
        if not self._contexts[bucket.size].execute_async_v3(self.stream.ptr):
            detail = "; ".join(self._logger.errors[-3:]) or "no error was logged"
            raise CudaError(f"execute_async_v3 failed for batch {bucket.size}: {detail}")

    def _close_engine(self) -> None:
        # Contexts before the engine before the runtime (TensorRT's destruction order); the activation
        # block and buffers are freed after them by the base class.
        self._contexts.clear()
        self.engine = None
        self._runtime = None


# %% torch CUDA --------------------------------------------------------------------------------------


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


# %% Backends ----------------------------------------------------------------------------------------


class _GpuPoseMixin:
    """``pose(window, boxes)``: crops and decoding on the GPU around a :class:`BucketExecutor` that has
    inputs ``frames`` [B, 9, H, W] and ``margin`` [B, 2] and one output [B, 17, H/4, W/4]."""

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

        from dcpose_trt.runtime import gpu_kernels as gk

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


class TensorRTBackend(_GpuPoseMixin):
    """DCPose from a TensorRT / TensorRT-RTX plan (``dcpose-trt build``), on cuda-python.

    Args:
        path: ``MODEL.plan``; its sidecar ``MODEL.plan.json`` must sit beside it.
        backend: ``"auto"`` (the sidecar's), ``"tensorrt"`` or ``"tensorrt-rtx"``. A version-compatible
            TensorRT plan runs on full ``tensorrt`` if installed, else on the lean runtime ``tensorrt_lean``.
        onnx: the ONNX the plan must come from (a changed file makes the plan stale).
        preset: expected model preset.
        device: CUDA device ordinal.
        use_graphs: one CUDA graph per bucket after warm-up.

    Attributes:
        name (``"tensorrt"`` / ``"tensorrt-rtx"``), preset_name, input_size (crop H, W), precision,
        runtime (the module used), buckets (batch sizes), meta (the sidecar).

    Raises:
        InputError: no such file, or a backend that does not match the plan.
        MissingDependencyError: the runtime module or cuda-python is missing (message names the extra).
        PlanMismatchError: the plan does not fit this machine (stale, foreign GPU, other version, no GPU):
            one line with the reasons and the ``dcpose-trt build`` command that makes a fitting plan.
    """

    def __init__(self, path: str | os.PathLike[str], backend: str = "auto", onnx: str | os.PathLike[str] | None = None,
                 preset: str | None = None, device: int = 0, use_graphs: bool = True) -> None:
        from dcpose_trt.engine import ensure_plan_fits, read_sidecar
        from dcpose_trt.engine.plan import rebuild_command

        self.path = Path(path)
        self._gpu_setup()
        self.executor: BucketExecutor  # set last; close() copes with a half-built backend
        if not self.path.is_file():
            raise InputError(f"plan file not found: {self.path}")
        if backend not in ("auto", "tensorrt", "tensorrt-rtx"):
            raise InputError(f"backend must be auto, tensorrt or tensorrt-rtx, got {backend!r}")
        meta = read_sidecar(self.path)  # PlanMismatchError (missing/unreadable sidecar) says how to rebuild
        built = meta["backend"]["name"]
        if backend != "auto" and backend != built:
            raise InputError(f"{self.path} was built with {built}; open it with backend='{built}' (or 'auto')")
        vc = bool(meta["target"].get("version_compatible"))
        flavour = built
        if built == "tensorrt" and vc and not available("tensorrt") and available("tensorrt_lean"):
            flavour = "tensorrt-lean"
        trt_module = _import_runtime(flavour)  # MissingDependencyError: pip install 'dcpose-trt[trt|rtx|lean]'
        cudart()  # MissingDependencyError: pip install 'dcpose-trt[cuda]'
        ensure_plan_fits(self.path, meta, flavour, onnx_path=onnx, preset=preset)  # lean: its version counts
        self.meta = meta
        self.name = built
        self.runtime = trt_module.__name__
        self.precision = str(meta.get("precision", "fp32"))
        self.preset_name: str = meta.get("preset") or (preset or "")
        if not self.preset_name:
            raise PlanMismatchError(f"{self.path}: the sidecar names no model preset; rebuild it with: "
                                    f"{rebuild_command(meta, self.path, Path(onnx) if onnx is not None else None)}")
        from dcpose_trt.model.presets import get_preset

        p = get_preset(self.preset_name)
        self.mean, self.std = tuple(p.mean), tuple(p.std)  # type: ignore[assignment]
        self.executor = TensorRTExecutor(self.path.read_bytes(), trt_module, version_compatible=vc, device=device,
                                         use_graphs=use_graphs, what=str(self.path),
                                         plugins=PlanPlugins.from_sidecar(meta))
        names = [s.name for s in self.executor.input_specs]
        frames = next((s for s in self.executor.input_specs if s.name == "frames"), None)
        if frames is None or "margin" not in names or len(frames.shape) != 3 or frames.shape[0] != 9:
            self.close()
            raise PlanMismatchError(f"{self.path} is not a whole DCPose plan (inputs {names}); split "
                                    "backbone/head plans are not supported by this backend yet")
        self.input_size: tuple[int, int] = (int(frames.shape[1]), int(frames.shape[2]))
        self.buckets = [b for b, _ in self.executor.bucket_sizes]

    def infer(self, frames: np.ndarray, margin: np.ndarray) -> np.ndarray:
        """frames ``float32[B, 9, H, W]`` + margin ``float32[B, 2]`` -> heatmaps ``float32[B, 17, H/4, W/4]``."""
        out = self.executor.run({"frames": frames, "margin": margin})
        return next(iter(out.values())).astype(np.float32, copy=False)

    def close(self) -> None:
        """Release every CUDA resource and the engine; idempotent."""
        self._gpu_close()
        ex = getattr(self, "executor", None)
        if ex is not None:
            ex.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"TensorRTBackend({self.path}, runtime={getattr(self, 'runtime', '?')}, "
                f"preset={getattr(self, 'preset_name', '?')}, buckets={getattr(self, 'buckets', '?')})")


class TorchCudaBackend(_GpuPoseMixin):
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

    def infer(self, frames: np.ndarray, margin: np.ndarray) -> np.ndarray:
        """frames ``float32[B, 9, H, W]`` + margin ``float32[B, 2]`` -> heatmaps ``float32[B, 17, H/4, W/4]``."""
        return self.executor.run({"frames": frames, "margin": margin})["heatmaps"]

    def close(self) -> None:
        """Release every CUDA resource; idempotent."""
        self._gpu_close()
        self.executor.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
