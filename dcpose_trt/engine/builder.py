"""``build_engine(onnx, plan, cfg)``: ONNX -> TensorRT / TensorRT-RTX plan plus its JSON sidecar.

One code path for ``tensorrt`` 10.x/11.x and ``tensorrt_rtx``. Where their APIs differ the code asks the
module (``hasattr(trt.BuilderFlag, "FP16")``), which mypy understands, so ``tools.trt_api`` can check
this file against every supported TensorRT version.
"""

from __future__ import annotations

import logging
import re
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, SupportsInt, cast

from dcpose_trt.contract import HARDWARE_COMPAT_MIN_ARCH, META_INT8_TARGET
from dcpose_trt.engine._trt import import_backend, local_machine
from dcpose_trt.engine.config import BuildConfig, check_batch_limits
from dcpose_trt.engine.onnx_info import PLUGIN_DOMAIN, OnnxInfo, inspect_onnx
from dcpose_trt.engine.plan import PlanArtifact, write_plan
from dcpose_trt.errors import EngineBuildError, InputError

if TYPE_CHECKING:
    from dcpose_trt.engine._trt import trt

log = logging.getLogger(__name__)

# The builder's layer listing (ProfilingVerbosity.DETAILED, verbose log), in its two formats:
# TensorRT-RTX / Myelin: "Name: n, LayerType: correlation, Inputs: [ { Name: x, ..., Datatype: Half, ...}],
#   Constants: [...], Outputs: [...], TacticName: t, StreamId: 0, Metadata: [ONNX Layer: node_Conv_1]"
# TensorRT 10: "Layer(CaskConvolution): name, Tactic: 0x0, x (Half[-1,3,32,32]) -> y (Half[-1,8,32,32])"
_LAYER_DETAILED = re.compile(
    r"^Name: (?P<name>.*?), LayerType: (?P<type>[^,]*), Inputs: \[(?P<inputs>.*?)\], "
    r"Constants: \[(?P<consts>.*?)\], Outputs: \[(?P<outputs>.*?)\], TacticName: .*?Metadata: ?(?P<meta>.*)$")
_LAYER_ONELINE = re.compile(r"^Layer\((?P<type>[^)]*)\): (?P<name>.*?), Tactic: \S+, (?P<io>.*)$")
_DTYPE = re.compile(r"Datatype: (\w+)")
_IO_DTYPE = re.compile(r"\((\w+)\[")
_ONNX_NODE = re.compile(r"\[ONNX Layer: ([^\]]+)\]")


class BuildLog:
    """What TensorRT logged during one build: errors/warnings for messages, layer lines for the sidecar."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.warnings: list[str] = []
        self.layers: list[dict[str, Any]] = []

    def record(self, severity: str, msg: str) -> None:
        if severity in ("INTERNAL_ERROR", "ERROR"):
            self.errors.append(msg)
            log.error("TensorRT: %s", msg)
        elif severity == "WARNING":
            self.warnings.append(msg)
            log.warning("TensorRT: %s", msg)
        elif severity == "INFO":
            log.info("TensorRT: %s", msg)
        else:
            log.debug("TensorRT: %s", msg)
        # With ProfilingVerbosity.DETAILED the builder prints the final layers as one verbose line each;
        # that is the only layer listing available without a GPU (the engine inspector needs a
        # deserialized engine, which needs CUDA).
        for line in msg.splitlines():
            line = line.strip()
            if m := _LAYER_DETAILED.match(line):
                self.layers.append({
                    "name": m["name"], "type": m["type"],
                    "inputs": _DTYPE.findall(m["inputs"]), "constants": _DTYPE.findall(m["consts"]),
                    "outputs": _DTYPE.findall(m["outputs"]), "onnx_nodes": _ONNX_NODE.findall(m["meta"]),
                })
            elif m := _LAYER_ONELINE.match(line):
                ins, _, outs = m["io"].partition(" -> ")
                self.layers.append({"name": m["name"], "type": m["type"], "inputs": _IO_DTYPE.findall(ins),
                                    "constants": [], "outputs": _IO_DTYPE.findall(outs), "onnx_nodes": []})


def _parse_errors(parser: trt.OnnxParser) -> str:
    """All ONNX parser errors as ``node 'name' (op Type, #idx): reason`` lines."""
    lines = []
    for i in range(parser.num_errors):
        err = parser.get_error(i)
        node, name, op = err.node(), err.node_name(), err.node_operator()
        where = f"node '{name or '?'}' (op {op or '?'}, #{node})" if node >= 0 else "model"
        lines.append(f"{where}: {err.desc()} [{err.code()}]")
    return "\n  ".join(lines)


@contextmanager
def _cancel_on_sigint(flag: threading.Event) -> Iterator[None]:
    """Turn Ctrl-C into a cancel request that the progress monitor hands back to TensorRT.

    The build runs in C++; a KeyboardInterrupt raised inside a TensorRT callback would unwind through it.
    Instead the handler sets ``flag`` and ``step_complete`` returns False, so TensorRT stops cleanly, the
    build returns None and the caller raises KeyboardInterrupt with nothing written.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)

    def handler(signum: int, frame: object) -> None:
        if flag.is_set():  # second Ctrl-C: give up waiting for TensorRT
            signal.signal(signal.SIGINT, previous)
            raise KeyboardInterrupt
        flag.set()
        log.warning("cancelling the build (Ctrl-C again to abort immediately)")

    signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _check_batch_inputs(info: OnnxInfo) -> list[str]:
    """Names of inputs whose first dim is dynamic (the person batch); other dims must be static."""
    batched = []
    for t in info.inputs:
        if not t.shape:
            continue
        if any(d < 0 for d in t.shape[1:]):
            raise EngineBuildError(
                f"input '{t.name}' has dynamic non-batch dimensions {list(t.shape)}; only the first "
                "(person) dimension may be dynamic - re-export with a fixed crop size")
        if t.shape[0] < 0:
            batched.append(t.name)
    return batched


def _plugin_setup(logger: trt.ILogger, info: OnnxInfo, cfg: BuildConfig) -> list[str]:
    """Register what the graph's custom ops need before parsing; returns plugin libraries loaded."""
    if TYPE_CHECKING:
        from dcpose_trt.engine._trt import trt
    else:
        trt = import_backend(cfg.backend)
    if info.needs_dcpose_plugin:
        if cfg.backend == "tensorrt-rtx":
            # tensorrt.plugin (Quickly Deployable Plugins) exists only in TensorRT >= 10.6, not in RTX.
            raise EngineBuildError(
                f"{info.path} has '{PLUGIN_DOMAIN}' plugin nodes; TensorRT-RTX cannot load "
                "Python (QDP) plugins - export with --deform gridsample for TensorRT-RTX")
        try:
            from dcpose_trt.plugins.deform_conv.plugin import register_plugin
        except ImportError as exc:
            raise EngineBuildError(
                f"{info.path} has '{PLUGIN_DOMAIN}' plugin nodes but the dcpose-trt plugin cannot be "
                f"imported ({exc}); install 'dcpose-trt[triton]' or export with --deform gridsample"
            ) from None
        register_plugin()
    if any(p.source == "libnvinfer_plugin" for p in info.plugins):
        if cfg.backend == "tensorrt-rtx":
            raise EngineBuildError(
                f"{info.path} uses the standard DeformConv op, which TensorRT maps to its built-in "
                "ModulatedDeformConv2d plugin; TensorRT-RTX has no built-in plugins - export with "
                "--deform gridsample (or --deform plugin)")
        trt.init_libnvinfer_plugins(logger, "")
    loaded = []
    if cfg.plugin_dir is not None:
        libs = sorted(Path(cfg.plugin_dir).glob("*.so"))
        if not libs:
            raise InputError(f"--plugin-dir {cfg.plugin_dir} contains no *.so plugin library")
        registry = trt.get_plugin_registry()
        for lib in libs:
            registry.load_library(str(lib))
            loaded.append(str(lib))
    return loaded


def plugin_ptx_arch(info: OnnxInfo, cfg: BuildConfig) -> int | None:
    """The arch our plugin's AOT PTX is compiled for (recorded in the sidecar), or None without our plugin.

    A hardware-compatible plan runs on every GPU of its level, so the PTX targets the level's lowest arch
    (:data:`dcpose_trt.contract.HARDWARE_COMPAT_MIN_ARCH`: sm_80 for ``ampere+``; PTX for sm_90 would not
    load on an sm_86 GPU); otherwise the building GPU's arch.
    """
    if not info.needs_dcpose_plugin:
        return None
    from dcpose_trt.plugins.deform_conv import plugin

    plugin.set_ptx_arch(HARDWARE_COMPAT_MIN_ARCH.get(cfg.hardware_compat))
    return plugin.current_arch()


def require_user_allocation(trt_module: Any, config: Any) -> str | None:
    """TensorRT-RTX: ``BuilderFlag.REQUIRE_USER_ALLOCATION``, without which ``is_stream_capturable`` is false
    (TensorRT-RTX 1.2 release notes) and the runtime's CUDA graphs turn off. Returns the flag's name if set."""
    if TYPE_CHECKING:
        from dcpose_trt.engine._trt import trt
    else:
        trt = trt_module
    flag = getattr(trt.BuilderFlag, "REQUIRE_USER_ALLOCATION", None)  # version probe: TensorRT-RTX only
    if flag is None:
        return None
    config.set_flag(flag)
    return "REQUIRE_USER_ALLOCATION"


def configure_parser(trt_module: Any, parser: Any, info: OnnxInfo) -> list[str]:
    """Parser flags for the graph; returns the names set.

    ``ENABLE_PLUGIN_OVERRIDE`` (TensorRT >= 10.15) lets a registered plugin win over a built-in importer of
    the same op type. Our op type (:data:`dcpose_trt.contract.DCN_OP_TYPE`) has no built-in importer in
    any release (:mod:`dcpose_trt.engine.trt_parser_ops`), so this is a second guard, set where it exists.
    """
    if TYPE_CHECKING:
        from dcpose_trt.engine._trt import trt
    else:
        trt = trt_module
    flags = []
    override = getattr(trt.OnnxParserFlag, "ENABLE_PLUGIN_OVERRIDE", None)  # version probe: 10.15+
    if info.needs_dcpose_plugin and override is not None:
        parser.set_flag(override)
        flags.append("ENABLE_PLUGIN_OVERRIDE")
    return flags


def serialize_vc_plugins(config: Any, parser: Any, plugin_libs: list[str]) -> list[str]:
    """Version-compatible plans must carry their plugin libraries (the lean runtime cannot load TensorRT's
    own): the parser's VC plugin libraries plus any ``--plugin-dir`` ones go to
    ``config.plugins_to_serialize``, as trtexec does (``samples/common/sampleEngines.cpp``)."""
    libs = [*plugin_libs, *(str(p) for p in parser.get_used_vc_plugin_libraries())]
    libs = list(dict.fromkeys(libs))
    if libs:
        config.plugins_to_serialize = libs
    return libs


def make_logger(backend: str, build_log: BuildLog) -> trt.ILogger:
    """An ``ILogger`` that hands every message to ``build_log``.

    Verbose on purpose: the layer listing arrives as verbose lines; :class:`BuildLog` routes the rest
    through Python logging at the matching level.
    """
    if TYPE_CHECKING:
        from dcpose_trt.engine._trt import trt
    else:
        trt = import_backend(backend)

    class Logger(trt.ILogger):
        def __init__(self) -> None:
            trt.ILogger.__init__(self)

        def log(self, severity: trt.ILogger.Severity, msg: str) -> None:
            build_log.record(severity.name, msg)

    return Logger()


def create_network(builder: trt.Builder, logger: trt.ILogger, onnx_path: Path, info: OnnxInfo,
                   cfg: BuildConfig) -> tuple[trt.INetworkDefinition, trt.OnnxParser, str | None]:
    """Parse ``onnx_path`` into a new network; returns (network, parser, plugin implementation).

    The network is strongly typed unless ``cfg.fp16_flag``; with our DCN plugin it prefers the plugin's
    ahead-of-time implementation where TensorRT has it (``"aot"``; else ``"jit"``; None: no plugin).
    """
    if TYPE_CHECKING:
        from dcpose_trt.engine._trt import trt
    else:
        trt = import_backend(cfg.backend)
    flags = 0
    if not cfg.fp16_flag:
        # TensorRT 10 needs the flag; in 11 and TensorRT-RTX networks are always strongly typed, but the
        # flag still exists and is accepted.
        flags |= 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    plugin_impl = None
    if info.needs_dcpose_plugin:
        plugin_impl = "jit"
        if hasattr(trt.NetworkDefinitionCreationFlag, "PREFER_AOT_PYTHON_PLUGINS"):
            # Our plugin has both a JIT impl (debugging) and an AOT impl; the AOT one puts PTX in the plan
            # so it runs without Python (TensorRT >= 10.9).
            flags |= 1 << int(trt.NetworkDefinitionCreationFlag.PREFER_AOT_PYTHON_PLUGINS)
            plugin_impl = "aot"
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    configure_parser(trt, parser, info)
    # parse_from_file resolves external weight files relative to the model.
    if not parser.parse_from_file(str(onnx_path)):
        raise EngineBuildError(f"TensorRT could not parse {onnx_path}:\n  {_parse_errors(parser)}")
    return network, parser, plugin_impl


def create_config(builder: trt.Builder, parser: trt.OnnxParser, cfg: BuildConfig,
                  plugin_libs: list[str]) -> tuple[trt.IBuilderConfig, list[str]]:
    """The builder config of ``cfg`` (memory, optimisation level, flags, hardware compatibility);
    returns (config, names of the flags set, for the sidecar)."""
    if TYPE_CHECKING:
        from dcpose_trt.engine._trt import trt
    else:
        trt = import_backend(cfg.backend)
    config = builder.create_builder_config()
    if cfg.workspace_mb is not None:
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, cfg.workspace_mb << 20)
    config.builder_optimization_level = cfg.opt_level
    config.profiling_verbosity = trt.ProfilingVerbosity.DETAILED
    build_flags = []
    if cfg.fp16_flag:
        if not hasattr(trt.BuilderFlag, "FP16"):
            raise EngineBuildError(
                f"{cfg.backend} {trt.__version__} has no BuilderFlag.FP16 (weakly typed FP16 was removed); "
                "build an FP16 ONNX (dcpose-trt quantize --precision fp16) without --fp16-flag")
        config.set_flag(trt.BuilderFlag.FP16)
        build_flags.append("FP16")
    if cfg.version_compatible:
        config.set_flag(trt.BuilderFlag.VERSION_COMPATIBLE)
        build_flags.append("VERSION_COMPATIBLE")
        serialize_vc_plugins(config, parser, plugin_libs)
    rtx_capture = require_user_allocation(trt, config)
    if rtx_capture:
        build_flags.append(rtx_capture)
    if cfg.hardware_compat == "ampere+":
        config.hardware_compatibility_level = trt.HardwareCompatibilityLevel.AMPERE_PLUS
    elif cfg.hardware_compat == "same-cc":
        if not hasattr(trt.HardwareCompatibilityLevel, "SAME_COMPUTE_CAPABILITY"):
            raise EngineBuildError(f"--hardware-compat same-cc needs TensorRT >= 10.9 "
                                   f"(this is {cfg.backend} {trt.__version__})")
        config.hardware_compatibility_level = trt.HardwareCompatibilityLevel.SAME_COMPUTE_CAPABILITY
    return config, build_flags


def set_targets(config: trt.IBuilderConfig, cfg: BuildConfig) -> list[str]:
    """TensorRT-RTX: the compute capabilities to compile for (``cfg.compute_capabilities``); returns them."""
    if TYPE_CHECKING:
        from dcpose_trt.engine._trt import trt
    else:
        trt = import_backend(cfg.backend)
    targets: list[str] = []
    if not cfg.compute_capabilities:
        return targets
    if not (hasattr(trt, "ComputeCapability") and hasattr(config, "num_compute_capabilities")
            and hasattr(config, "set_compute_capability")):
        raise EngineBuildError(
            f"--compute-capability is a TensorRT-RTX option; {cfg.backend} {trt.__version__} builds for "
            "the GPU it runs on")
    members = trt.ComputeCapability.__members__
    config.num_compute_capabilities = len(cfg.compute_capabilities)
    for i, cc in enumerate(cfg.compute_capabilities):
        key = "SM" + cc.replace(".", "")
        if key not in members:
            known = sorted(f"{k[2:-1]}.{k[-1]}" for k in members if k.startswith("SM"))
            raise InputError(f"{cfg.backend} cannot target compute capability {cc}; it knows {known}")
        config.set_compute_capability(members[key], i)
        targets.append(cc)
    return targets


def add_profiles(builder: trt.Builder, config: trt.IBuilderConfig, inputs: list[trt.ITensor],
                 batched: list[str], cfg: BuildConfig) -> list[dict[str, Any]]:
    """One optimization profile per ``cfg.profiles`` entry over the ``batched`` inputs' first dimension;
    returns the profiles as the sidecar records them (``[]`` for a fixed-shape network)."""
    if TYPE_CHECKING:
        from dcpose_trt.engine._trt import trt
    else:
        trt = import_backend(cfg.backend)
    if not batched:
        return []
    profile_json = []
    for lo, opt, hi in cfg.profiles:
        profile = builder.create_optimization_profile()
        shapes = {}
        for t in inputs:
            if t.name not in batched:
                continue
            rest = _dims(t.shape)[1:]
            dims = [[b, *rest] for b in (lo, opt, hi)]
            profile.set_shape(t.name, trt.Dims(dims[0]), trt.Dims(dims[1]), trt.Dims(dims[2]))
            shapes[t.name] = {"min": dims[0], "opt": dims[1], "max": dims[2]}
        config.add_optimization_profile(profile)
        profile_json.append({"batch": [lo, opt, hi], "shapes": shapes})
    return profile_json


def timing_cache_path(cfg: BuildConfig) -> Path | None:
    """The timing cache the build loads and updates (None: none; TensorRT-RTX has none)."""
    if cfg.backend != "tensorrt-rtx":
        return cfg.timing_cache
    if cfg.timing_cache is not None:
        log.info("TensorRT-RTX has no timing cache (its cache calls are no-ops); ignoring --timing-cache")
    return None


def load_timing_cache(config: trt.IBuilderConfig, path: Path) -> None:
    """Give the build the cache at ``path`` (a new one when absent or from another TensorRT/GPU)."""
    blob = path.read_bytes() if path.is_file() else b""
    cache = config.create_timing_cache(blob)
    if not config.set_timing_cache(cache, False):
        # A cache from another TensorRT/GPU is rejected rather than silently mixed in.
        log.warning("timing cache %s does not match this TensorRT/GPU; starting a new one", path)
        config.set_timing_cache(config.create_timing_cache(b""), False)


def save_timing_cache(config: trt.IBuilderConfig, path: Path) -> None:
    """Write the build's (updated) timing cache to ``path``, atomically."""
    from dcpose_trt._atomic import atomic_write_bytes

    atomic_write_bytes(path, _host_bytes(config.get_timing_cache().serialize()))


def serialize(builder: trt.Builder, network: trt.INetworkDefinition, config: trt.IBuilderConfig,
              cfg: BuildConfig, what: str, build_log: BuildLog) -> tuple[trt.IHostMemory, float]:
    """Build the serialized plan with a progress bar that Ctrl-C cancels; returns (plan, seconds).

    Raises:
        KeyboardInterrupt: cancelled. EngineBuildError: the builder returned nothing (the last errors it
            logged are in the message).
    """
    if TYPE_CHECKING:
        from dcpose_trt.engine._trt import trt
    else:
        trt = import_backend(cfg.backend)
    cancel = threading.Event()
    monitor = _make_progress_monitor(cfg.backend, cancel, enabled=cfg.progress)
    config.progress_monitor = monitor
    t0 = time.perf_counter()
    with _cancel_on_sigint(cancel):
        serialized = builder.build_serialized_network(network, config)
    seconds = time.perf_counter() - t0
    monitor.close()
    if cancel.is_set():
        raise KeyboardInterrupt
    if serialized is None:
        detail = "\n  ".join(build_log.errors[-10:]) or "no error was logged (run with -vv)"
        raise EngineBuildError(f"{cfg.backend} {trt.__version__} failed to build {what}:\n  {detail}")
    return serialized, seconds


def build_engine(onnx_path: str | Path, out_plan: str | Path, cfg: BuildConfig | None = None) -> Path:
    """Build ``out_plan`` (and ``out_plan + ".json"``) from ``onnx_path``; returns the plan path.

    The network is strongly typed, so its precision is the ONNX's (FP32, FP16 or INT8 Q/DQ, see
    :mod:`dcpose_trt.export`); inputs with a dynamic first dimension (``frames`` ``[B, 9, H, W]``,
    ``margin`` ``[B, 2]``) get one optimization profile per ``cfg.profiles`` entry. Both files are written
    atomically: on failure or Ctrl-C neither a partial plan nor a stale sidecar is left behind.

    Args:
        onnx_path: ONNX model from ``dcpose-trt export`` (any DCN form, any precision).
        out_plan: where to write the plan, e.g. ``dcpose.plan``.
        cfg: build settings; defaults to :class:`BuildConfig()`.

    Raises:
        EngineBuildError: the parser or builder failed (message names node, op and reason).
        MissingDependencyError: the backend module is not installed.
        KeyboardInterrupt: the build was cancelled (nothing written).
    """
    cfg = cfg or BuildConfig()
    onnx_path, out_plan = Path(onnx_path), Path(out_plan)
    if not onnx_path.is_file():
        raise InputError(f"ONNX file not found: {onnx_path}")
    info = inspect_onnx(onnx_path)
    if info.metadata.get(META_INT8_TARGET) == "cpu":
        # QLinearConv/QLinearAdd with uint8 activations: ONNX Runtime's CPU layout, which TensorRT's parser
        # does not import (it takes explicit symmetric Q/DQ only).
        raise InputError(f"{onnx_path} is INT8 in ONNX Runtime's CPU layout (quantize --target cpu); "
                         "TensorRT needs the tensorrt layout: dcpose-trt quantize --precision int8 --target tensorrt")
    batched = _check_batch_inputs(info)
    check_batch_limits(cfg.profiles, [(t.name, t.dtype, t.shape) for t in (*info.inputs, *info.outputs)])
    if not batched and (len(cfg.profiles) > 1 or cfg.profiles[0] != (1, 1, 1)):
        log.warning("%s has no dynamic batch input; building a fixed-shape plan", onnx_path)

    if TYPE_CHECKING:
        from dcpose_trt.engine._trt import trt
    else:
        trt = import_backend(cfg.backend)
    build_log = BuildLog()
    logger = make_logger(cfg.backend, build_log)
    plugin_libs = _plugin_setup(logger, info, cfg)
    ptx_arch = plugin_ptx_arch(info, cfg)
    builder = trt.Builder(logger)
    network, parser, plugin_impl = create_network(builder, logger, onnx_path, info, cfg)
    inputs = [network.get_input(i) for i in range(network.num_inputs)]
    outputs = [network.get_output(i) for i in range(network.num_outputs)]
    config, build_flags = create_config(builder, parser, cfg, plugin_libs)
    targets = set_targets(config, cfg)
    profile_json = add_profiles(builder, config, inputs, batched, cfg)
    cache_path = timing_cache_path(cfg)
    if cache_path is not None:
        load_timing_cache(config, cache_path)

    log.info("building %s from %s with %s %s", out_plan, onnx_path, cfg.backend, trt.__version__)
    serialized, seconds = serialize(builder, network, config, cfg, str(onnx_path), build_log)
    log.info("built %s in %.1f s", out_plan, seconds)
    if cache_path is not None:
        save_timing_cache(config, cache_path)

    artifact = PlanArtifact(
        backend=cfg.backend,
        backend_version=str(trt.__version__),
        gpu=local_machine().gpu if not targets else None,
        compute_capabilities=tuple(targets),
        onnx=info,
        profiles=profile_json,
        inputs=[{"name": t.name, "dtype": t.dtype.name.lower(), "shape": _dims(t.shape)} for t in inputs],
        outputs=[{"name": t.name, "dtype": t.dtype.name.lower(), "shape": _dims(t.shape)} for t in outputs],
        build={
            "strongly_typed": not cfg.fp16_flag,
            "flags": build_flags,
            "hardware_compat": cfg.hardware_compat,
            "version_compatible": cfg.version_compatible,
            "opt_level": cfg.opt_level,
            "workspace_mb": cfg.workspace_mb,
            "timing_cache": str(cache_path) if cache_path else None,
            "plugin_libraries": plugin_libs,
            "plugin_impl": plugin_impl,
            "plugin_ptx_arch": ptx_arch,
            "seconds": round(seconds, 3),
        },
        layers=build_log.layers,
        command=cfg.command(onnx_path, out_plan),
    )
    return write_plan(out_plan, _host_bytes(serialized), artifact)


def _dims(dims: trt.Dims) -> list[int]:
    """``trt.Dims`` -> list (``-1`` for dynamic dimensions)."""
    return [int(dims[i]) for i in range(len(dims))]


def _host_bytes(mem: trt.IHostMemory) -> memoryview:
    """View of a serialized plan / timing cache without copying.

    ``IHostMemory`` implements the buffer protocol (pybind11 ``py::buffer_protocol``), which the
    generated stubs cannot express, hence the cast.
    """
    return memoryview(cast(Any, mem)).cast("B")


def _make_progress_monitor(backend: str, cancel: threading.Event, enabled: bool) -> Any:
    """A ``trt.IProgressMonitor`` that draws one tqdm bar per build phase (nested phases below)."""
    if TYPE_CHECKING:
        from dcpose_trt.engine._trt import trt
    else:
        trt = import_backend(backend)

    from tqdm.auto import tqdm

    class TqdmMonitor(trt.IProgressMonitor):
        # TensorRT may call from several builder threads: guard the bar table.
        def __init__(self) -> None:
            trt.IProgressMonitor.__init__(self)
            self._bars: dict[str, Any] = {}
            self._lock = threading.Lock()

        def phase_start(self, phase_name: str, parent_phase: str | None, num_steps: SupportsInt) -> None:
            if not enabled:
                return
            with self._lock:
                depth = len(self._bars)
                # disable=None: no bars when stderr is not a terminal (a log file got ~950 lines per build).
                self._bars[phase_name] = tqdm(total=int(num_steps), desc=phase_name, position=depth,
                                              leave=depth == 0, dynamic_ncols=True, disable=None)

        def step_complete(self, phase_name: str, step: SupportsInt) -> bool:
            with self._lock:
                bar = self._bars.get(phase_name)
                if bar is not None:
                    bar.n = int(step) + 1
                    bar.refresh()
            return not cancel.is_set()

        def phase_finish(self, phase_name: str) -> None:
            with self._lock:
                bar = self._bars.pop(phase_name, None)
                if bar is not None:
                    bar.n = bar.total
                    bar.close()

        def close(self) -> None:
            with self._lock:
                for bar in self._bars.values():
                    bar.close()
                self._bars.clear()

    return TqdmMonitor()
