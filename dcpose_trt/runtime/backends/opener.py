"""``open_backend``: the one way to open a model with a backend (the CLI, the Python API, ``predict``'s
workers and the benchmarks all come here)."""

from __future__ import annotations

import os
from pathlib import Path

from dcpose_trt.errors import InputError
from dcpose_trt.runtime.backends.autoselect import resolve_backend
from dcpose_trt.runtime.backends.base import Backend, OpenOptions
from dcpose_trt.runtime.backends.registry import backend_names, open_named

MODES = ("exact", "cached")


def open_backend(model: str | os.PathLike | None = None, backend: str = "auto", *, preset: str | None = None,
                 mode: str = "exact", device: str = "cpu", threads: int | None = None,
                 progress: bool = True) -> Backend:
    """Open ``model`` (checkpoint ``.pth``, ``.onnx`` or split-export folder, OpenVINO ``.xml``, TensorRT
    ``.plan``; None: the bundled tiny checkpoint) with ``backend``.

    Args:
        backend: a name of :data:`~dcpose_trt.runtime.backends.registry.REGISTRY` or ``auto``
            (:func:`~dcpose_trt.runtime.backends.autoselect.resolve_backend`: a plan's builder, ONNX
            Runtime for ONNX, the fastest CPU backend measured on this machine for a checkpoint). A
            checkpoint given to a backend that runs exported files (``onnxruntime``, ``tensorrt``,
            ``tensorrt-rtx``, and any registered with
            :func:`~dcpose_trt.engine.model_cache.register_exporter`) is exported on demand into the model
            cache and reused.
        preset: expected preset (a checkpoint without one recorded takes it).
        mode: ``exact`` or ``cached`` (a checkpoint is then exported as the backbone + head pair).
        device: torch device (torch backend). threads: CPU threads of the session (None: all cores).
        progress: export/measurement messages on stderr.

    Raises:
        InputError: unknown backend or mode, a missing model, a model the backend cannot run.
        MissingDependencyError: the backend's package is not installed (the message names the extra).
    """
    from dcpose_trt.engine.model_cache import registered_backends
    from dcpose_trt.model.presets import bundled_model_path

    known = (*backend_names(), *registered_backends())
    if backend not in known:
        raise InputError(f"unknown backend {backend!r}; choose one of: {', '.join(dict.fromkeys(known))}")
    if mode not in MODES:
        raise InputError(f"unknown mode {mode!r}; choose one of: {', '.join(MODES)}")
    if threads is not None and int(threads) < 1:
        raise InputError(f"threads must be >= 1, got {threads}")
    if model is None and bundled_model_path() is None and preset is None:
        raise InputError("no model given and no bundled model in this install; pass --model CKPT|ONNX|PLAN")
    path = Path(model) if model is not None else None
    if path is not None and not path.exists():
        raise InputError(f"model file not found: {path}")
    name = resolve_backend(path, backend, preset, mode, device, progress)
    return open_named(path, name, OpenOptions(preset, mode, device, threads, progress))
