"""On-demand exports of a checkpoint for the backends that run exported files, cached on disk (engine side).

``run --backend onnxruntime`` (or ``tensorrt``, ``tensorrt-rtx``, ...) without ``--model`` exports the
bundled checkpoint once (and, for TensorRT, builds a plan) into
``$DCPOSE_TRT_CACHE`` (default ``~/.cache/dcpose_trt``) ``/models/<entry>/`` and reuses it next time.

An entry's name holds the checkpoint's sha256, the DCN form, the precision and the versions of
dcpose-trt, torch and onnx (plus the builder's, for a plan): any change makes a new entry, so a stale
export is never reused. Each entry records the size and sha256 of its files
(:mod:`~dcpose_trt.engine.cache_manifest`); an entry that no longer matches is rebuilt with a warning.
Entries are written into a temporary folder next to their final name and renamed
into place, so an interrupted export leaves nothing that looks finished.

A backend adds its own step with :func:`register_exporter` (see the built-in steps at the bottom). This
module makes the artifact; the runtime opens it (:func:`dcpose_trt.runtime.backends.registry.open_named`, through
the backend registry), so the export/build half stays in the engine layer.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from dcpose_trt.engine import cache_manifest
from dcpose_trt.engine.onnx_info import file_sha256
from dcpose_trt.errors import InputError

log = logging.getLogger(__name__)

#: Distributions whose versions are part of every cache key (an upgrade re-exports).
BASE_VERSIONS = ("dcpose-trt", "torch", "onnx")


@dataclass(frozen=True)
class ExportStep:
    """How one backend gets a runnable artifact from a checkpoint.

    Attributes:
        backend: the backend name (``--backend``).
        form: DCN form of the export (``deformconv``, ``gridsample``, ...), part of the cache key.
        precision: ``fp32``/``fp16``/``int8``, part of the cache key.
        artifact: file (or folder) name of the result inside the cache entry, e.g. ``model.onnx``.
        make: ``make(checkpoint, preset, entry_dir, step, progress)`` writes ``entry_dir / artifact``;
            the runtime opens it with the registered backend of the same name.
        stages: number of progress-bar stages ``make`` reports (export, build, ...).
        versions: further distributions whose versions key the entry (e.g. the builder).
        unavailable: returns why the step cannot run on this machine (e.g. no builder), or None.
        split: the artifact is a ``--split`` export (backbone + head: what the cached mode runs).
    """

    backend: str
    form: str
    precision: str
    artifact: str
    make: Callable[..., Path]
    stages: int = 1
    versions: tuple[str, ...] = ()
    unavailable: Callable[[], str | None] = field(default=lambda: None)
    split: bool = False


_STEPS: dict[tuple[str, bool], ExportStep] = {}


def register_exporter(step: ExportStep) -> None:
    """Make ``step.backend`` accept a checkpoint (exported on demand and cached); ``step.split``: in cached mode."""
    _STEPS[(step.backend, step.split)] = step


def export_step(backend: str, split: bool = False) -> ExportStep | None:
    """The registered step of ``backend`` (``split``: its cached-mode pair), or None."""
    return _STEPS.get((backend, split))


def registered_backends() -> tuple[str, ...]:
    return tuple(dict.fromkeys(b for b, _ in _STEPS))


def cache_root() -> Path:
    """``$DCPOSE_TRT_CACHE`` or ``~/.cache/dcpose_trt`` (:func:`dcpose_trt._env.cache_root`)."""
    from dcpose_trt._env import cache_root as root

    return root()


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        if dist == "dcpose-trt":
            from dcpose_trt import __version__

            return __version__
        return "none"


def cache_key(checkpoint: Path, step: ExportStep, preset: str | None) -> dict[str, str]:
    """Everything that decides the export's content (written to ``key.json`` in the entry)."""
    key = {"checkpoint": str(checkpoint), "sha256": file_sha256(checkpoint), "backend": step.backend,
           "form": step.form, "precision": step.precision, "preset": preset or ""}
    if step.split:
        key["split"] = "backbone+head"
    for dist in (*BASE_VERSIONS, *step.versions):
        key[dist] = _version(dist)
    return key


def entry_dir(checkpoint: Path, step: ExportStep, preset: str | None) -> tuple[Path, dict[str, str]]:
    """The cache folder for this checkpoint and step, and its key."""
    key = cache_key(checkpoint, step, preset)
    digest = hashlib.sha256(json.dumps({k: v for k, v in key.items() if k != "checkpoint"},
                                       sort_keys=True).encode()).hexdigest()[:16]
    kind = f"{step.form}-{step.precision}{'-split' if step.split else ''}"
    name = f"{checkpoint.stem}-{key['sha256'][:12]}-{step.backend}-{kind}-{digest}"
    return cache_root() / "models" / name, key


def _say(msg: str, progress: bool) -> None:
    log.info("%s", msg)
    if progress:
        print(f"dcpose-trt: {msg}", file=sys.stderr, flush=True)


def cached_artifact(checkpoint: Path, backend: str, preset: str | None = None, progress: bool = True,
                    split: bool = False) -> Path:
    """The cached export of ``checkpoint`` for ``backend`` (``split``: the backbone + head pair of the cached
    mode); exports (and builds) it first when missing."""
    step = export_step(backend, split)
    if step is None and split and export_step(backend) is not None:
        raise InputError(f"the {backend} backend runs whole models only (no cached mode from a checkpoint); "
                         "use --mode exact or another backend")
    if step is None:
        raise InputError(f"the {backend} backend cannot export a checkpoint on demand; give it an exported model")
    why = step.unavailable()
    if why:
        raise InputError(f"the {backend} backend needs an exported model and cannot make one here ({why}); "
                         "pass --model with an exported file")
    entry, key = entry_dir(checkpoint, step, preset)
    artifact = entry / step.artifact
    if entry.exists():
        why = cache_manifest.verify(entry) if artifact.exists() else f"{step.artifact} is missing"
        if why is None:
            _say(f"reusing cached export {artifact}", progress)
            return artifact
        log.warning("the cached export %s cannot be reused (%s); rebuilding it", entry, why)
        cache_manifest.discard(entry)
    root = entry.parent
    try:
        root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{entry.name}.", dir=root))
    except OSError as exc:
        raise InputError(f"cannot write the model cache {root} ({exc.strerror}); set DCPOSE_TRT_CACHE to a "
                         "writable folder") from None
    _say(f"exporting {checkpoint.name} for {backend} ({step.form}, {step.precision}"
         f"{', backbone + head' if split else ''}) into {entry} "
         "(once; later runs reuse it)", progress)
    try:
        step.make(checkpoint, preset, tmp, step, progress)
        (tmp / "key.json").write_text(json.dumps(key, indent=2) + "\n")
        cache_manifest.write(tmp, key)  # size + sha256 of every file, checked before each reuse
        try:
            os.replace(tmp, entry)  # atomic; fails when another process finished the same entry first
        except OSError:
            if not artifact.exists():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return artifact


# -- built-in steps ------------------------------------------------------------------------------------


def _stage_bar(step: ExportStep, progress: bool):
    from tqdm import tqdm

    # tqdm decides: no bar when stderr is not a terminal (disable=None).
    return tqdm(total=step.stages, desc=f"preparing {step.backend} model", unit="step",
                disable=None if progress else True, file=sys.stderr)


def _export(checkpoint: Path, preset: str | None, out: Path, deform: str, split: bool = False) -> Path:
    from dcpose_trt.export import ExportConfig, export_onnx
    from dcpose_trt.model import load_model

    return export_onnx(load_model(checkpoint, preset), out, ExportConfig(deform=deform, split=split))


def _make_onnx(checkpoint: Path, preset: str | None, entry: Path, step: ExportStep, progress: bool) -> Path:
    with _stage_bar(step, progress) as bar:
        bar.set_postfix_str("export")
        out = _export(checkpoint, preset, entry / step.artifact, step.form, step.split)
        bar.update(1)
    return out


def _make_plan(checkpoint: Path, preset: str | None, entry: Path, step: ExportStep, progress: bool) -> Path:
    from dcpose_trt.engine.builder import BuildConfig, build_engine

    with _stage_bar(step, progress) as bar:
        bar.set_postfix_str("export")
        onnx = _export(checkpoint, preset, entry / "model.onnx", step.form)
        bar.update(1)
        bar.set_postfix_str("build")
        build_engine(onnx, entry / step.artifact, BuildConfig(backend=step.backend, progress=False))
        bar.update(1)
    return entry / step.artifact


def _builder_missing(backend: str) -> Callable[[], str | None]:
    def check() -> str | None:
        from dcpose_trt._deps import available
        from dcpose_trt._env import TRT_FLAVOURS, install_hint

        module = TRT_FLAVOURS[backend].module
        return None if available(module) else f"no {module} builder: {install_hint(module)}"

    return check


register_exporter(ExportStep("onnxruntime", form="deformconv", precision="fp32", artifact="model.onnx",
                             make=_make_onnx))
# The cached mode's backbone + head pair (a folder), so `run --backend onnxruntime --mode cached` needs no --model.
register_exporter(ExportStep("onnxruntime", form="deformconv", precision="fp32", artifact="split",
                             make=_make_onnx, split=True))
for _backend, _dist in (("tensorrt", "tensorrt"), ("tensorrt-rtx", "tensorrt-rtx")):
    # gridsample: the one DCN form every TensorRT (>= 8.5) and TensorRT-RTX builds without a plugin.
    register_exporter(ExportStep(_backend, form="gridsample", precision="fp32", artifact="model.plan",
                                 make=_make_plan, stages=2, versions=(_dist,),
                                 unavailable=_builder_missing(_backend)))
