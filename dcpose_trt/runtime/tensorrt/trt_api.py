"""Small helpers over the TensorRT Python API shared by the plan executor and the tools: the logger, the
execution context of a bucket, dims and dtypes."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import numpy as np

log = logging.getLogger(__name__)

#: TensorRT tensor dtype name -> numpy dtype (what the runtime can feed and read).
NP_DTYPES = {"FLOAT": np.float32, "HALF": np.float16, "INT32": np.int32, "INT64": np.int64, "INT8": np.int8,
             "UINT8": np.uint8, "BOOL": np.bool_}


def dims(dims: Any) -> tuple[int, ...]:
    return tuple(int(dims[i]) for i in range(len(dims)))


def make_logger(trt_module: Any) -> Any:
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
