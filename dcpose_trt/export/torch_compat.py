"""Which torch can run our export: ``torch.onnx.export(..., custom_translation_table=, optimize=)``.

Both keywords first appear in torch 2.6 (read in torch's own ``torch/onnx/__init__.py``: its docstring says
"``optimize`` is now True by default" under ``versionchanged:: 2.7``, so the keyword predates 2.7, and the
2.5 source, ``pytorch.org/docs/2.5/_modules/torch/onnx.html``, has neither keyword in ``export``).
JetPack 6 ships torch 2.5, and ``torch>=2.6`` in ``install_requires`` would make pip replace JetPack's CUDA
build of torch, so the requirement stays and the export checks the installed torch instead, with one line
that says where to export (an x86 machine; the ONNX file is portable).
"""

from __future__ import annotations

import inspect
from collections.abc import Collection

from dcpose_trt._env import install_hint
from dcpose_trt.errors import ExportError

NEEDED = ("custom_translation_table", "optimize")
FIRST_TORCH = "2.6"


def missing_export_options(parameters: Collection[str]) -> list[str]:
    """The keywords of :data:`NEEDED` that an ``export`` with ``parameters`` lacks."""
    return [p for p in NEEDED if p not in parameters]


def require_export_options() -> None:
    """Raise :class:`ExportError` (one line) when this torch's ``torch.onnx.export`` lacks :data:`NEEDED`."""
    import torch

    missing = missing_export_options(inspect.signature(torch.onnx.export).parameters)
    if missing:
        raise ExportError(
            f"torch {torch.__version__} cannot export DCPose: torch.onnx.export has no {', '.join(missing)} "
            f"(needs torch >= {FIRST_TORCH}); on a Jetson with JetPack's torch, export on an x86 machine "
            f"({install_hint(extra='onnx')}) and copy the .onnx file over - it is portable")
