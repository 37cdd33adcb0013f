"""The ``--backend`` registry: each name's opener (imported here, so the arrows are real imports), the model
files it runs and what it needs, and :func:`open_named`, which opens a named backend.

A new backend is one module (a :class:`~dcpose_trt.runtime.backends.base.Backend` subclass plus an opener
``opener(path, name, options) -> Backend``) and one :func:`register_backend` line at the bottom of this
module; ``tests/runtime/test_backend_contract.py`` then covers it. Backend modules import their engine
(torch, onnxruntime, openvino, tensorrt) only when a model is opened, so importing this registry costs no
optional dependency.

``auto`` is not a backend: :func:`dcpose_trt.runtime.backends.autoselect.resolve_backend` turns it into
one of these names (:func:`dcpose_trt.runtime.backends.opener.open_backend` is the entry point).
``torch-cuda`` (:class:`~dcpose_trt.runtime.tensorrt.torch_cuda.TorchCudaBackend`) is built from a model
object in code (the GPU check and tests), so it has no entry here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from dcpose_trt.errors import InputError
from dcpose_trt.runtime.backends.base import Backend, OpenOptions
from dcpose_trt.runtime.backends.ort_backend import open_onnxruntime
from dcpose_trt.runtime.backends.ov_backend import open_openvino
from dcpose_trt.runtime.backends.torch_backend import CHECKPOINT_SUFFIXES, open_torch
from dcpose_trt.runtime.tensorrt.trt_backend import open_plan

#: ``opener(path, name, options) -> Backend``: ``path`` is the model file (None: the bundled model), ``name``
#: the backend name asked for. The opener checks the file kind and raises InputError.
Opener = Callable[[Path | None, str, OpenOptions], Backend]


@dataclass(frozen=True)
class BackendSpec:
    """One ``--backend`` choice.

    Attributes:
        name: the ``--backend`` value.
        opener: opens a model file with this backend.
        suffixes: the model kinds it runs as file suffixes (``.pth``, ``.onnx``, ``.plan``...); a folder
            counts as ``.onnx`` (a split export). A checkpoint given to a backend without ``.pth`` here is
            exported on demand into the model cache (:mod:`dcpose_trt.engine.model_cache`).
        requires: the modules it imports to run (what ``unavailable_reason`` checks).
        gpu: runs only on a CUDA GPU.
        needs: what it needs besides a checkpoint to open one (None: a checkpoint is enough).
    """

    name: str
    opener: Opener
    suffixes: tuple[str, ...]
    requires: tuple[str, ...] = ()
    gpu: bool = False
    needs: str | None = None


#: ``--backend`` name → how to open a model with it (filled at the bottom of this module).
REGISTRY: dict[str, BackendSpec] = {}


def register_backend(name: str, opener: Opener, suffixes: Sequence[str], requires: Sequence[str] = (),
                     gpu: bool = False, needs: str | None = None) -> None:
    """Make ``--backend name`` open models of ``suffixes`` with ``opener``."""
    REGISTRY[name] = BackendSpec(name, opener, tuple(suffixes), tuple(requires), gpu, needs)


def backend_names() -> tuple[str, ...]:
    """The ``--backend`` choices: ``auto`` and every registered backend."""
    return ("auto", *REGISTRY)


def unavailable_reason(name: str) -> str | None:
    """Why backend ``name`` cannot run on this machine (a missing package or GPU), or None."""
    from dcpose_trt._deps import available
    from dcpose_trt._env import install_hint, local_gpu

    spec = REGISTRY[name]
    for module in spec.requires:
        if not available(module):
            return f"{module} is not installed ({install_hint(module)})"
    if spec.gpu and local_gpu() is None:
        return "no CUDA GPU"
    if name == "openvino-bf16":
        from dcpose_trt.runtime.backends.ov_backend import cpu_has_bf16

        if not cpu_has_bf16():
            return "this CPU has no native BF16 (AVX-512 BF16 or AMX)"
    return None


def is_checkpoint(path: Path | None) -> bool:
    """True for a checkpoint file, and for None (the bundled checkpoint)."""
    return path is None or (not path.is_dir() and path.suffix.lower() in CHECKPOINT_SUFFIXES)


def open_named(path: Path | None, name: str, options: OpenOptions) -> Backend:
    """Open ``path`` (None: the bundled checkpoint) with the registered backend ``name`` (not ``auto``).

    A checkpoint given to a backend that runs exported files is exported (and built) once into the model
    cache (:func:`dcpose_trt.engine.model_cache.cached_artifact`; ``options.mode == "cached"``: the backbone
    + head pair) and the cached artifact is opened: the one artifact cache of the runtime, ``predict`` and
    the benchmarks.
    """
    from dcpose_trt.engine import model_cache

    spec = REGISTRY.get(name)
    runs_checkpoints = spec is not None and CHECKPOINT_SUFFIXES[0] in spec.suffixes
    if is_checkpoint(path) and not runs_checkpoints and name in model_cache.registered_backends():
        from dcpose_trt.model.presets import bundled_model_path

        checkpoint = path if path is not None else bundled_model_path()
        if checkpoint is None:
            raise InputError(f"the {name} backend needs a model and this install has no bundled checkpoint; "
                             "pass --model")
        path = model_cache.cached_artifact(checkpoint, name, options.preset, options.progress,
                                           split=options.mode == "cached")
    if spec is None:
        raise InputError(f"the {name} backend runs only checkpoints exported on demand; pass a checkpoint (.pth)")
    return spec.opener(path, name, options)


# One line per backend: name, opener, the model files it runs, what it needs.
register_backend("torch", open_torch, CHECKPOINT_SUFFIXES, requires=("torch",))
register_backend("onnxruntime", open_onnxruntime, (".onnx",), requires=("onnxruntime", "onnx"))
register_backend("tensorrt", open_plan, (".plan", ".engine"), requires=("tensorrt",), gpu=True)
register_backend("tensorrt-rtx", open_plan, (".plan", ".engine"), requires=("tensorrt_rtx",), gpu=True)
for _name in ("openvino", "openvino-bf16", "openvino-int8"):  # the precision rides on the name
    register_backend(_name, open_openvino, (*CHECKPOINT_SUFFIXES, ".onnx", ".xml"), requires=("openvino",),
                     needs="calibration crops (or an INT8 Q/DQ ONNX) to quantize" if _name.endswith("int8") else None)
