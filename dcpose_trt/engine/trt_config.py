"""The builder config of a :class:`~dcpose_trt.engine.config.BuildConfig`: flags, compatibility, targets,
optimization profiles and the timing cache."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from dcpose_trt.engine._trt import import_backend
from dcpose_trt.engine.config import BuildConfig
from dcpose_trt.errors import EngineBuildError, InputError

if TYPE_CHECKING:
    from dcpose_trt.engine._trt import trt

log = logging.getLogger(__name__)


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


def serialize_vc_plugins(config: Any, parser: Any, plugin_libs: list[str]) -> list[str]:
    """Version-compatible plans must carry their plugin libraries (the lean runtime cannot load TensorRT's
    own): the parser's VC plugin libraries plus any ``--plugin-dir`` ones go to
    ``config.plugins_to_serialize``, as trtexec does (``samples/common/sampleEngines.cpp``)."""
    libs = [*plugin_libs, *(str(p) for p in parser.get_used_vc_plugin_libraries())]
    libs = list(dict.fromkeys(libs))
    if libs:
        config.plugins_to_serialize = libs
    return libs


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
            rest = dims_list(t.shape)[1:]
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

    atomic_write_bytes(path, host_bytes(config.get_timing_cache().serialize()))


def dims_list(dims: trt.Dims) -> list[int]:
    """``trt.Dims`` -> list (``-1`` for dynamic dimensions)."""
    return [int(dims[i]) for i in range(len(dims))]


def host_bytes(mem: trt.IHostMemory) -> memoryview:
    """View of a serialized plan / timing cache without copying.

    ``IHostMemory`` implements the buffer protocol (pybind11 ``py::buffer_protocol``), which the
    generated stubs cannot express, hence the cast.
    """
    return memoryview(cast(Any, mem)).cast("B")
