"""TensorRT / TensorRT-RTX engine builder, the plan artifact (plan + JSON sidecar) and its fitness check.

``build_engine(onnx, plan, BuildConfig(...))`` builds; ``check(plan)`` says whether a plan runs on this
machine and, if not, why and how to rebuild it; ``ensure_plan_fits`` is the raising variant the runtime
uses. TensorRT itself is imported only inside :func:`build_engine`.
"""

from __future__ import annotations

from dcpose_trt.engine._trt import GpuInfo, Machine, local_machine
from dcpose_trt.engine.builder import build_engine
from dcpose_trt.engine.config import BuildConfig, profiles_from_persons
from dcpose_trt.engine.onnx_info import OnnxInfo, inspect_onnx
from dcpose_trt.engine.plan import PlanCheck, check, ensure_plan_fits, read_sidecar, sidecar_path

__all__ = [
    "BuildConfig",
    "GpuInfo",
    "Machine",
    "OnnxInfo",
    "PlanCheck",
    "build_engine",
    "check",
    "ensure_plan_fits",
    "inspect_onnx",
    "local_machine",
    "profiles_from_persons",
    "read_sidecar",
    "sidecar_path",
]
