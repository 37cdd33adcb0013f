"""The plan sidecar (``dcpose_trt.plan/1``) is validated against its JSON Schema before any field is used.

A sidecar comes from whoever built the plan (and from any editor since), so each field the checks and the
runtime read is checked here, against the one schema the docs publish (``dcpose_trt/schemas/
plan_sidecar.schema.json``, docs/formats.md); a wrong one is one line naming the field, never a ``TypeError``
deep inside :func:`dcpose_trt.engine.plan.check`.
"""

from __future__ import annotations

from typing import Any

from dcpose_trt import schemas
from dcpose_trt.errors import DataError, PlanMismatchError


def validate_sidecar(meta: Any, where: str) -> dict[str, Any]:
    """``meta`` when it satisfies the plan-sidecar schema.

    Raises:
        PlanMismatchError: one line naming the sidecar, the first field that is missing or wrong, and why.
    """
    if not isinstance(meta, dict):
        raise PlanMismatchError(f"{where}: the sidecar is not a JSON object")
    try:
        schemas.validate(meta, "plan_sidecar", where, dotted=True)
    except DataError as exc:  # the plan family: check-plan and the runtime report it as a plan that does not fit
        raise PlanMismatchError(str(exc)) from None
    return meta
