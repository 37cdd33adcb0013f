"""TensorRT / TensorRT-RTX / lean-runtime plans on cuda-python: :class:`TensorRTExecutor`, :class:`TensorRTBackend`.

:class:`TensorRTExecutor` plugs an ``ICudaEngine`` into the shared
:class:`~dcpose_trt.runtime.tensorrt.executor.BucketExecutor`: one execution context per bucket (its profile and
input shapes fixed, so its CUDA graph stays valid), all contexts sharing one activation-memory block (the
buckets run one after another on one stream), ``set_tensor_address`` + ``execute_async_v3``.
:class:`TensorRTBackend` puts the :class:`~dcpose_trt.runtime.backends.base.Backend` interface on it, with the
fused GPU path ``pose(window, boxes)`` (:mod:`dcpose_trt.runtime.tensorrt.gpu_pose`).

The bucket machinery (:mod:`~dcpose_trt.runtime.tensorrt.executor`), the TensorRT API helpers
(:mod:`~dcpose_trt.runtime.tensorrt.trt_api`) and the fused path live in their own modules.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from dcpose_trt._deps import available, require
from dcpose_trt._env import TRT_FLAVOURS, install_hint
from dcpose_trt.engine import plan_trust
from dcpose_trt.engine.plan_trust import PlanTrust
from dcpose_trt.errors import CudaError, InputError, PlanMismatchError
from dcpose_trt.runtime.backends.base import OpenOptions
from dcpose_trt.runtime.tensorrt.cuda import DeviceBuffer, cudart, set_device
from dcpose_trt.runtime.tensorrt.executor import Bucket, BucketExecutor, TensorSpec, buckets_from_profiles
from dcpose_trt.runtime.tensorrt.gpu_pose import FusedGpuPose
from dcpose_trt.runtime.tensorrt.trt_api import NP_DTYPES, create_context, dims, make_logger

if TYPE_CHECKING:

    from dcpose_trt.engine._trt import trt

log = logging.getLogger(__name__)


# %% TensorRT ----------------------------------------------------------------------------------------


def _import_runtime(flavour: str) -> Any:
    f = TRT_FLAVOURS[flavour]  # the lean runtime loads version-compatible plans built by full TensorRT
    return require(f.module, f.extra, f"running {f.loads} plans")



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


def register_plan_plugins(trt_module: Any, logger: Any, plugins: PlanPlugins, what: str = "plan",
                          trust: PlanTrust | None = None) -> None:
    """Register what ``plugins`` says the plan needs, as Polygraphy's and TensorRT's samples do before every
    ``deserialize_cuda_engine``: TensorRT's built-in plugins (``init_libnvinfer_plugins``, once per process
    with the engine stage's lasting logger, :func:`~dcpose_trt.engine.network.init_builtin_plugins`: the
    ``deformconv`` form's ModulatedDeformConv2d lives there), the plugin libraries the user named
    (``trust``; never a path from the sidecar: :mod:`dcpose_trt.engine.plan_trust`), and our Python plugin
    for JIT plans. ``logger`` is the plan's own logger (messages of what it loads).

    Raises:
        PlanMismatchError: a recorded plugin library is missing, or our JIT plugin cannot be registered.
    """
    if TYPE_CHECKING:
        from dcpose_trt.engine._trt import trt as t
    else:
        t = trt_module
    if hasattr(t, "init_libnvinfer_plugins"):  # not in the lean runtime (VC plans carry their plugins)
        # libnvinfer_plugin keeps the logger as a raw pointer for the process: the one lasting logger.
        from dcpose_trt.engine.network import init_builtin_plugins

        init_builtin_plugins(t)
    elif plugins.dcn_form == "deformconv" and not plugins.version_compatible:
        raise PlanMismatchError(f"{what} uses TensorRT's built-in DeformConv plugin, which {t.__name__} "
                                f"cannot load; run it with full TensorRT ({install_hint('tensorrt')})")
    libs = plan_trust.libraries_to_load(plan_trust.library_needs(plugins.libraries), trust or plan_trust.resolve(),
                                        plugins.version_compatible, what)
    if libs:
        registry = t.get_plugin_registry()
        for lib in libs:
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
                what: str = "plan", trust: PlanTrust | None = None) -> tuple[Any, Any]:
    """``(runtime, engine)``: plugins registered (:func:`register_plan_plugins`), then the plan deserialized.

    Host code (a version-compatible plan's lean runtime and plugins) is allowed only with the user's
    opt-in (``trust``, default :func:`~dcpose_trt.engine.plan_trust.resolve`); it is explicitly disallowed
    otherwise, whatever the sidecar says.

    Raises:
        PlanMismatchError: the runtime refused the plan (message: TensorRT's error).
    """
    if TYPE_CHECKING:
        from dcpose_trt.engine._trt import trt as t
    else:
        t = trt_module
    plugins = plugins or PlanPlugins()
    trust = trust or plan_trust.resolve()
    allow = plan_trust.host_code_allowed(plugins.version_compatible, trust, what)  # raises without the opt-in
    register_plan_plugins(t, logger, plugins, what, trust)
    runtime = t.Runtime(logger)
    if hasattr(runtime, "engine_host_code_allowed"):
        runtime.engine_host_code_allowed = allow
    engine = runtime.deserialize_cuda_engine(plan)
    if engine is None:
        detail = "; ".join(getattr(logger, "errors", [])[-3:]) or "no error was logged"
        raise PlanMismatchError(f"{t.__name__} {t.__version__} cannot load {what}: {detail}")
    return runtime, engine


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
                 plugins: PlanPlugins | None = None, trust: PlanTrust | None = None) -> None:
        if TYPE_CHECKING:
            from dcpose_trt.engine._trt import trt as t
        else:
            t = trt_module
        self._trt = trt_module
        set_device(device)  # the runtime deserializes into the current device's context
        self._logger = make_logger(trt_module)
        if plugins is None:
            plugins = PlanPlugins(version_compatible=version_compatible)
        elif version_compatible and not plugins.version_compatible:
            plugins = PlanPlugins(plugins.dcn_form, plugins.plugin_impl, plugins.libraries, True)
        runtime, engine = load_engine(plan, t, self._logger, plugins, what, trust)
        self._runtime: Any = runtime
        self.engine: trt.ICudaEngine | None = engine
        self._contexts: dict[int, trt.IExecutionContext] = {}  # bucket size -> its context

        inputs, outputs, self._batched = [], [], set()
        for i in range(engine.num_io_tensors):
            name = engine.get_tensor_name(i)
            dt = engine.get_tensor_dtype(name).name
            if dt not in NP_DTYPES:
                raise PlanMismatchError(f"{what}: tensor {name} has type {dt}, which the runtime cannot feed")
            shape = dims(engine.get_tensor_shape(name))
            if engine.get_tensor_mode(name) == t.TensorIOMode.INPUT:
                if any(d < 0 for d in shape[1:]):
                    raise PlanMismatchError(f"{what}: input {name} {list(shape)} has a dynamic non-batch dimension")
                if shape[0] < 0:
                    self._batched.add(name)
                inputs.append(TensorSpec(name, shape[1:], NP_DTYPES[dt]))
            else:
                outputs.append(name)
        # A plan without a dynamic batch runs at its static batch size (padded like a bucket).
        static = [dims(engine.get_tensor_shape(spec.name))[0] for spec in inputs]
        self.fixed_batch = next((b for b in static if b > 0), 0)
        if self._batched:
            first = sorted(self._batched)[0]
            profiles = []
            for p in range(engine.num_optimization_profiles):
                lo, opt, hi = (dims(d)[0] for d in engine.get_tensor_profile_shape(first, p))
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
            shape = dims(context.get_tensor_shape(name))
            out[name] = (shape, NP_DTYPES[engine.get_tensor_dtype(name).name])
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


# %% Backend ----------------------------------------------------------------------------------------


class TensorRTBackend(FusedGpuPose):
    """DCPose from a TensorRT / TensorRT-RTX plan (``dcpose-trt build``), on cuda-python.

    Args:
        path: ``MODEL.plan``; its sidecar ``MODEL.plan.json`` must sit beside it.
        backend: ``"auto"`` (the sidecar's), ``"tensorrt"`` or ``"tensorrt-rtx"``. A version-compatible
            TensorRT plan runs on full ``tensorrt`` if installed, else on the lean runtime ``tensorrt_lean``.
        onnx: the ONNX the plan must come from (a changed file makes the plan stale).
        preset: expected model preset.
        device: CUDA device ordinal.
        use_graphs: one CUDA graph per bucket after warm-up.
        trust_plan, plugin_libs: the user's word on the plan's host code and plugin libraries
            (:mod:`dcpose_trt.engine.plan_trust`; None: ``--trust-plan`` / ``DCPOSE_TRT_TRUST_PLANS``).

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
                 preset: str | None = None, device: int = 0, use_graphs: bool = True,
                 trust_plan: bool | None = None, plugin_libs: list[str] | None = None) -> None:
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
        trust = plan_trust.resolve(trust_plan, plugin_libs)
        plan_trust.check_sidecar_trust(meta, trust, str(self.path))  # one line naming the opt-in, before any import
        vc = meta["target"].get("version_compatible") is True
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
                                         plugins=PlanPlugins.from_sidecar(meta), trust=trust)
        names = [s.name for s in self.executor.input_specs]
        frames = next((s for s in self.executor.input_specs if s.name == "frames"), None)
        if frames is None or "margin" not in names or len(frames.shape) != 3 or frames.shape[0] != 9:
            self.close()
            raise PlanMismatchError(f"{self.path} is not a whole DCPose plan (inputs {names}); split "
                                    "backbone/head plans are not supported by this backend yet")
        self.input_size: tuple[int, int] = (int(frames.shape[1]), int(frames.shape[2]))
        self.buckets = [b for b, _ in self.executor.bucket_sizes]

    def _infer_impl(self, frames: np.ndarray, margin: np.ndarray) -> np.ndarray:
        out = self.executor.run({"frames": frames, "margin": margin})
        return next(iter(out.values())).astype(np.float32, copy=False)

    def close(self) -> None:
        """Release every CUDA resource and the engine; idempotent."""
        self._gpu_close()
        ex = getattr(self, "executor", None)
        if ex is not None:
            ex.close()

    def __repr__(self) -> str:
        return (f"TensorRTBackend({self.path}, runtime={getattr(self, 'runtime', '?')}, "
                f"preset={getattr(self, 'preset_name', '?')}, buckets={getattr(self, 'buckets', '?')})")


def open_plan(path: Path | None, name: str, options: OpenOptions) -> TensorRTBackend:
    """Opener of ``--backend tensorrt`` / ``tensorrt-rtx`` (and ``auto`` for a plan: the sidecar's builder)."""
    if path is None or path.suffix.lower() not in (".plan", ".engine"):
        raise InputError(f"the {name} backend needs a TensorRT plan (.plan); build one with 'dcpose-trt build'")
    return TensorRTBackend(path, backend=name, preset=options.preset)
