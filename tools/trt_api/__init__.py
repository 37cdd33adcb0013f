"""TensorRT API conformance without TensorRT: type-check project code against the real Python bindings.

``python -m tools.trt_api check --versions 10.3,10.9,10.13,10.15,11.4,rtx dcpose_trt/engine dcpose_trt/runtime``

The bindings wheels of every TensorRT release import on a CPU once their native libraries are replaced by
stub shared objects (see :mod:`tools.trt_api.stubs`); ``pybind11-stubgen`` turns them into ``.pyi`` files
and mypy checks the given modules against each version (:mod:`tools.trt_api.check`).
"""

from __future__ import annotations

from tools.trt_api.check import CheckResult, check, run_mypy
from tools.trt_api.stubs import (
    DEFAULT_VERSIONS,
    ApiSpec,
    StubSet,
    TrtApiError,
    bindings_env,
    cache_root,
    parse_spec,
    prepare,
)

__all__ = [
    "DEFAULT_VERSIONS",
    "ApiSpec",
    "CheckResult",
    "StubSet",
    "TrtApiError",
    "bindings_env",
    "cache_root",
    "check",
    "parse_spec",
    "prepare",
    "run_mypy",
]
