"""The runtime's side of the on-demand export cache: open a checkpoint's cached export with its backend.

Exporting and building the cached artifact is the engine's (:mod:`dcpose_trt.engine.model_cache`, where
:func:`register_exporter` adds a backend's step); here the artifact is opened with the backend registry
(:func:`~dcpose_trt.runtime.estimator.make_backend`). Re-exports the engine module's public names.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from dcpose_trt.engine.model_cache import (  # noqa: F401 - re-exported
    ExportStep,
    cache_root,
    cached_artifact,
    entry_dir,
    export_step,
    register_exporter,
    registered_backends,
)
from dcpose_trt.errors import InputError

if TYPE_CHECKING:
    from dcpose_trt.runtime.backends.base import Backend


def open_cached(checkpoint: Path | None, backend: str, preset: str | None = None, progress: bool = True,
                split: bool = False) -> Backend:
    """Open the cached export of ``checkpoint`` (made on demand) with ``backend``; ``split``: the cached mode's
    backbone + head pair."""
    from dcpose_trt.runtime.estimator import make_backend

    if checkpoint is None:
        raise InputError(f"the {backend} backend needs a model and this install has no bundled checkpoint; "
                         "pass --model")
    artifact = cached_artifact(Path(checkpoint), backend, preset, progress, split=split)
    return make_backend(artifact, backend, preset, progress=progress)
