"""``build_engine(onnx, plan, cfg)``: ONNX -> TensorRT / TensorRT-RTX plan plus its JSON sidecar.

The steps live by concern: :mod:`.network` (plugins, parser, ONNX -> network), :mod:`.trt_config`
(builder flags, compatibility, targets, profiles, timing cache), :mod:`.callbacks` (logger, progress,
Ctrl-C); this module runs them in order and writes the plan.

One code path for ``tensorrt`` 10.x/11.x and ``tensorrt_rtx``. Where their APIs differ the code asks the
module (``hasattr(trt.BuilderFlag, "FP16")``), which mypy understands, so ``tools.trt_api`` can check
this file against every supported TensorRT version.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from dcpose_trt.contract import META_INT8_TARGET
from dcpose_trt.engine._trt import import_backend, local_machine
from dcpose_trt.engine.callbacks import BuildLog, cancel_on_sigint, make_logger, make_progress_monitor
from dcpose_trt.engine.config import BuildConfig, check_batch_limits
from dcpose_trt.engine.network import (
    check_batch_inputs,
    check_forms,
    create_network,
    plugin_ptx_arch,
    plugin_setup,
)
from dcpose_trt.engine.onnx_info import inspect_onnx
from dcpose_trt.engine.plan import PlanArtifact, write_plan
from dcpose_trt.engine.plan_trust import library_records
from dcpose_trt.engine.trt_config import (
    add_profiles,
    create_config,
    dims_list,
    host_bytes,
    load_timing_cache,
    save_timing_cache,
    set_targets,
    timing_cache_path,
)
from dcpose_trt.errors import EngineBuildError, InputError

if TYPE_CHECKING:
    from dcpose_trt.engine._trt import trt

log = logging.getLogger(__name__)


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
    monitor = make_progress_monitor(cfg.backend, cancel, enabled=cfg.progress)
    config.progress_monitor = monitor
    t0 = time.perf_counter()
    with cancel_on_sigint(cancel):
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
    batched = check_batch_inputs(info)
    unverified = check_forms(info, cfg)
    check_batch_limits(cfg.profiles, [(t.name, t.dtype, t.shape) for t in (*info.inputs, *info.outputs)])
    if not batched and (len(cfg.profiles) > 1 or cfg.profiles[0] != (1, 1, 1)):
        log.warning("%s has no dynamic batch input; building a fixed-shape plan", onnx_path)

    if TYPE_CHECKING:
        from dcpose_trt.engine._trt import trt
    else:
        trt = import_backend(cfg.backend)
    build_log = BuildLog()
    logger = make_logger(cfg.backend, build_log)
    plugin_libs = plugin_setup(logger, info, cfg)
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
        inputs=[{"name": t.name, "dtype": t.dtype.name.lower(), "shape": dims_list(t.shape)} for t in inputs],
        outputs=[{"name": t.name, "dtype": t.dtype.name.lower(), "shape": dims_list(t.shape)} for t in outputs],
        build={
            "strongly_typed": not cfg.fp16_flag,
            "flags": build_flags,
            "hardware_compat": cfg.hardware_compat,
            "version_compatible": cfg.version_compatible,
            "opt_level": cfg.opt_level,
            "workspace_mb": cfg.workspace_mb,
            "timing_cache": str(cache_path) if cache_path else None,
            # name + sha256 of each library loaded: what a runner must be given (--plugin-lib), never a path to load
            "plugin_libraries": library_records(plugin_libs),
            "plugin_impl": plugin_impl,
            "plugin_ptx_arch": ptx_arch,
            "unverified": unverified,
            "seconds": round(seconds, 3),
        },
        layers=build_log.layers,
        command=cfg.command(onnx_path, out_plan),
    )
    return write_plan(out_plan, host_bytes(serialized), artifact)


