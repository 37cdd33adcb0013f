"""From an ONNX file to a TensorRT network: plugins registered first, parser flags, batch inputs, parse errors."""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dcpose_trt._env import install_hint
from dcpose_trt.contract import HARDWARE_COMPAT_MIN_ARCH
from dcpose_trt.engine._trt import import_backend
from dcpose_trt.engine.config import BuildConfig
from dcpose_trt.engine.onnx_info import PLUGIN_DOMAIN, OnnxInfo
from dcpose_trt.errors import EngineBuildError, InputError

if TYPE_CHECKING:
    from dcpose_trt.engine._trt import trt

log = logging.getLogger(__name__)

# libnvinfer_plugin keeps the ILogger it is initialised with as a raw pointer for the life of the process
# (NVIDIA/TensorRT plugin/api/inferPlugin.cpp: InitializePlugin stores static_cast<ILogger*>(logger) in the
# global gLogger and logs through it later), so it gets one logger per TensorRT module that is never freed,
# not a build's logger that dies with the build.
_plugin_loggers: dict[str, Any] = {}
_plugin_lock = threading.Lock()


def init_builtin_plugins(trt_module: Any) -> Any:
    """Register TensorRT's built-in plugins (``init_libnvinfer_plugins``) once per process, with a module-level
    logger; returns that logger. The runtime may call it too (same logger)."""
    if TYPE_CHECKING:
        from dcpose_trt.engine._trt import trt
    else:
        trt = trt_module
    key = str(getattr(trt, "__name__", "tensorrt"))
    with _plugin_lock:
        logger = _plugin_loggers.get(key)
        if logger is None:
            logger = trt.Logger(trt.Logger.WARNING)
            trt.init_libnvinfer_plugins(logger, "")
            _plugin_loggers[key] = logger
    return logger


def parse_errors(parser: trt.OnnxParser) -> str:
    """All ONNX parser errors as ``node 'name' (op Type, #idx): reason`` lines."""
    lines = []
    for i in range(parser.num_errors):
        err = parser.get_error(i)
        node, name, op = err.node(), err.node_name(), err.node_operator()
        where = f"node '{name or '?'}' (op {op or '?'}, #{node})" if node >= 0 else "model"
        lines.append(f"{where}: {err.desc()} [{err.code()}]")
    return "\n  ".join(lines)


def check_batch_inputs(info: OnnxInfo) -> list[str]:
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


def plugin_setup(logger: trt.ILogger, info: OnnxInfo, cfg: BuildConfig) -> list[str]:
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
                f"imported ({exc}); {install_hint(extra='triton')}, or export with --deform gridsample"
            ) from None
        register_plugin()
    if any(p.source == "libnvinfer_plugin" for p in info.plugins):
        if cfg.backend == "tensorrt-rtx":
            raise EngineBuildError(
                f"{info.path} uses the standard DeformConv op, which TensorRT maps to its built-in "
                "ModulatedDeformConv2d plugin; TensorRT-RTX has no built-in plugins - export with "
                "--deform gridsample (or --deform plugin)")
        init_builtin_plugins(trt)
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
        raise EngineBuildError(f"TensorRT could not parse {onnx_path}:\n  {parse_errors(parser)}")
    return network, parser, plugin_impl


def check_forms(info: OnnxInfo, cfg: BuildConfig) -> list[str]:
    """Refuse DCN form x compatibility combinations known not to run; return the ones not yet proven.

    * ``deformconv`` + ``--version-compatible``: the form is TensorRT's built-in ModulatedDeformConv2d
      plugin from ``libnvinfer_plugin``; a version-compatible plan runs on the lean runtime, which loads only
      plugins serialized into the plan, so such a plan passes the lean-runtime check and then fails to
      deserialize (issue 23 finding 6). Refused before TensorRT is imported.
    * ``plugin`` + ``--version-compatible`` or ``--hardware-compat``: our AOT plugin's PTX is embedded in the
      plan, so both should load, but no GPU run has shown it: returned as "unverified" notes (the sidecar
      and ``check-plan`` carry them).

    Raises:
        InputError: a refused combination (the message says why and what to build instead).
    """
    if cfg.version_compatible and info.dcn_form == "deformconv":
        raise InputError(
            f"{info.path} uses the deformconv form (TensorRT's built-in ModulatedDeformConv2d plugin from "
            "libnvinfer_plugin), which a version-compatible plan cannot carry: the lean runtime loads only "
            "plugins serialized into the plan, so it would fail to deserialize; export with --deform "
            "gridsample (or plugin) for --version-compatible, or build without it")
    notes = compat_notes(info.dcn_form, cfg.version_compatible, cfg.hardware_compat)
    for note in notes:
        log.warning("%s", note)
    return notes


def compat_notes(dcn_form: str, version_compatible: bool, hardware_compat: str) -> list[str]:
    """The "unverified" notes of a plan with this DCN form and compatibility (see :func:`check_forms`);
    ``check-plan`` derives them from the sidecar, so plans built before the notes were recorded get them too."""
    notes = []
    if dcn_form == "plugin":
        if version_compatible:
            notes.append("unverified: a version-compatible plan with our AOT DeformConv plugin has not been "
                         "loaded on a GPU yet")
        if hardware_compat not in ("none", None):
            notes.append(f"unverified: a hardware-compatible ({hardware_compat}) plan with our AOT DeformConv "
                         "plugin has not been run on a GPU other than the one it was built on yet")
    return notes
