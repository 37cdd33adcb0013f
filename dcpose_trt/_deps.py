"""Lazy imports of heavy optional dependencies with an actionable error."""

from __future__ import annotations

import importlib
from types import ModuleType

from dcpose_trt._env import install_hint
from dcpose_trt.errors import MissingDependencyError


def require(module: str, extra: str, purpose: str = "") -> ModuleType:
    """Import ``module`` or raise :class:`MissingDependencyError` naming the pip extra.

    Args:
        module: dotted module name, e.g. ``"onnxruntime"``.
        extra: the dcpose-trt extra that installs it, e.g. ``"onnx"``.
        purpose: what needs it, for the message (e.g. ``"the ONNX Runtime backend"``).
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:  # noqa: PERF203 - one import
        what = f" for {purpose}" if purpose else ""
        raise MissingDependencyError(
            f"'{module}' is needed{what} but cannot be imported ({exc}); "
            f"install it with: {install_hint(extra=extra)}"
        ) from None


def available(module: str) -> bool:
    """True when ``module`` imports (never raises)."""
    try:
        importlib.import_module(module)
    except Exception:  # noqa: BLE001 - a broken optional install counts as absent
        return False
    return True
