"""Which TensorRT module a build uses, and what machine it runs on.

``tensorrt`` (10.x/11.x) and ``tensorrt_rtx`` have the same Python API under different module names, so the
builder imports the module for ``BuildConfig.backend`` at call time. For type checking, each function that
touches TensorRT starts with::

    if TYPE_CHECKING:
        from dcpose_trt.engine._trt import trt
    else:
        trt = import_backend(backend)

so mypy sees the real API. ``tools.trt_api`` runs mypy once per TensorRT version and sets ``TRT_API_RTX``
(``always_true``/``always_false``), so the same code is checked against ``tensorrt_rtx`` as well.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING

from dcpose_trt._deps import require
from dcpose_trt._env import TRT_BUILDERS, TRT_FLAVOURS, GpuInfo, installed_version, local_gpu
from dcpose_trt.errors import InputError

TRT_API_RTX = False
if TYPE_CHECKING:
    if TRT_API_RTX:
        import tensorrt_rtx as trt
    else:
        import tensorrt as trt

__all__ = ["GpuInfo", "Machine", "import_backend", "local_machine", "trt"]

log = logging.getLogger(__name__)


def import_backend(backend: str) -> ModuleType:
    """Import the Python module of ``backend`` (``"tensorrt"`` or ``"tensorrt-rtx"``)."""
    if backend not in TRT_BUILDERS:
        raise InputError(f"unknown backend {backend!r}; choose one of {', '.join(TRT_BUILDERS)}")
    f = TRT_FLAVOURS[backend]
    return require(f.module, f.extra, f"the {backend} engine builder")


@dataclass(frozen=True)
class Machine:
    """What decides whether a plan runs here: installed backend versions and the GPU (None: no GPU)."""

    backend_versions: dict[str, str]
    gpu: GpuInfo | None


def module_version(module: str) -> str | None:
    """``__version__`` of ``module`` as imported here (what the builder records in a plan's sidecar), None
    when it does not import. Package metadata may differ (the 10.13 bindings wheel is ``10.13.3.9.post1``)
    or be absent (bindings on ``PYTHONPATH``, JetPack's apt packages), so it is only the fallback for a
    module without ``__version__``."""
    import importlib

    try:
        mod = importlib.import_module(module)
    except Exception:  # noqa: BLE001 - absent, or native libraries missing: not usable here
        return None
    version = getattr(mod, "__version__", None)
    return str(version) if version else installed_version(module)


def local_machine() -> Machine:
    """Describe this machine (TensorRT / TensorRT-RTX versions as imported, first GPU)."""
    versions = {b: v for b in TRT_BUILDERS if (v := module_version(TRT_FLAVOURS[b].module)) is not None}
    return Machine(versions, local_gpu())
