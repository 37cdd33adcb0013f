"""What made each per-video output of ``predict``, and whether a rerun may keep it (resume).

Next to every ``<out>/<video>.json`` the driver writes ``<video>.json.made`` (after the output, atomically):
the dcpose-trt version, the model's sha256, the backend and precision, the mode, the boxes source and its
sha256, the input annotation's sha256 (or the video file's size), and the sha256 and frame count of the
output it describes. The output bytes themselves stay exactly what one process writes.

A rerun skips an output only when its record matches what this run would make, the output still has the
recorded hash, and it covers every frame of its video; otherwise it says why and runs the video again.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from dcpose_trt._atomic import atomic_write_text

SCHEMA = "dcpose_trt.predict-made/1"


def made_path(out: str | Path) -> Path:
    """``<video>.json`` -> ``<video>.json.made`` (not ``*.json``: readers of the folder never see it)."""
    return Path(f"{out}.made")


@lru_cache(maxsize=256)
def _sha256_cached(path: str, size: int, mtime_ns: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def file_id(path: str | Path | None) -> str | None:
    """sha256 of a file (of every file, in name order, for a folder); None for None or a missing path."""
    if path is None:
        return None
    p = Path(path)
    try:
        if p.is_dir():
            h = hashlib.sha256()
            for f in sorted(q for q in p.rglob("*") if q.is_file()):
                h.update(f"{f.relative_to(p).as_posix()}\0{file_id(f)}\0".encode())
            return h.hexdigest()
        st = p.stat()
        return _sha256_cached(str(p.resolve()), st.st_size, st.st_mtime_ns)
    except OSError:
        return None


def _precision(backend: str, model: str | None) -> str:
    """The precision the run computes in: the backend's suffix (``openvino-int8``), a plan's sidecar, FP32
    for a checkpoint; an ONNX file's precision is fixed by its bytes (its sha256 is recorded)."""
    for suffix in ("bf16", "fp16", "int8"):
        if backend.endswith(f"-{suffix}"):
            return suffix
    if model is not None and Path(model).suffix.lower() in (".plan", ".engine"):
        try:
            return str(json.loads(Path(f"{model}.json").read_text()).get("precision", "?"))
        except (OSError, ValueError, AttributeError):
            return "?"
    if model is not None and (Path(model).is_dir() or Path(model).suffix.lower() == ".onnx"):
        return "as exported"
    return "fp32"


def expected(job: Any, model: str | None, backend: str, mode: str, lookahead: bool) -> dict[str, Any]:
    """What this run records for ``job`` (``backend`` already resolved from ``auto``)."""
    from dcpose_trt import __version__
    from dcpose_trt.model.presets import bundled_model_path

    model_file = model if model is not None else bundled_model_path()
    rec: dict[str, Any] = {"dcpose_trt": __version__, "model_sha256": file_id(model_file), "backend": backend,
                           "precision": _precision(backend, model), "mode": mode, "lookahead": lookahead,
                           "min_score": getattr(job, "min_score", None)}
    if hasattr(job, "annotation"):  # PoseTrackJob
        boxes_file = job.detections if job.boxes == "detections" else job.annotation
        rec.update(boxes=job.boxes, boxes_sha256=file_id(boxes_file), input_sha256=file_id(job.annotation))
    else:  # VideoFileJob
        source = job.boxes if job.boxes is not None else job.detector
        rec.update(boxes="file" if job.boxes is not None else "detector", boxes_sha256=file_id(source))
        if job.boxes is None:  # a detector: --detect-every changes the boxes between its runs
            rec["detect_every"] = getattr(job, "detect_every", 1)
        try:
            rec["input_bytes"] = Path(job.video).stat().st_size if Path(job.video).is_file() else file_id(job.video)
        except OSError:
            rec["input_bytes"] = None
    return rec


def _frames_in(doc: Any) -> int | None:
    if isinstance(doc, dict) and isinstance(doc.get("annolist"), list):
        return len(doc["annolist"])
    if isinstance(doc, dict) and isinstance(doc.get("frames"), list):
        return len(doc["frames"])
    return None


def _frames_expected(job: Any) -> int | None:
    """Frames a complete output holds: every frame of a PoseTrack video (None: unknown, video files)."""
    if not hasattr(job, "annotation"):
        return None
    from dcpose_trt.data.posetrack import load_video
    from dcpose_trt.errors import DcposeTrtError

    try:
        return len(load_video(job.annotation, job.root).frames)
    except (DcposeTrtError, OSError, ValueError):
        return None


def why_redo(job: Any, want: Mapping[str, Any]) -> str | None:
    """None when ``job.out`` may be kept; else one short reason. A missing output is not a redo ("")."""
    out = Path(job.out)
    try:
        data = out.read_bytes()
    except FileNotFoundError:
        return ""
    except OSError as exc:
        return f"its output cannot be read ({exc.strerror})"
    try:
        made = json.loads(made_path(out).read_text())
    except FileNotFoundError:
        return "its output records nothing about what made it (an older run, or written by hand)"
    except (OSError, ValueError, RecursionError):
        return f"its record {made_path(out).name} is unreadable"
    if not isinstance(made, dict) or made.get("schema") != SCHEMA or not isinstance(made.get("made_by"), dict):
        return f"its record {made_path(out).name} is not a {SCHEMA} record"
    diff = sorted(k for k in set(want) | set(made["made_by"]) if want.get(k) != made["made_by"].get(k))
    if diff:
        return f"it was made with another {', '.join(diff)}"
    if hashlib.sha256(data).hexdigest() != made.get("sha256"):
        return "its output changed since it was written"
    try:
        n = _frames_in(json.loads(data))
    except (ValueError, RecursionError):
        return "its output is not valid JSON"
    need = _frames_expected(job)
    if n is None or n == 0 or (need is not None and n < need):
        return f"its output covers {n or 0} of {need if need is not None else 'the'} frames"
    return None


def record(job: Any, data: bytes, want: Mapping[str, Any]) -> Path:
    """Write ``<out>.made`` for the output ``data`` just published."""
    try:
        frames = _frames_in(json.loads(data))
    except ValueError:
        frames = None
    doc = {"schema": SCHEMA, "made_by": dict(want), "sha256": hashlib.sha256(data).hexdigest(), "frames": frames}
    return atomic_write_text(made_path(job.out), json.dumps(doc, indent=1, sort_keys=True) + "\n")


def is_complete(path: str | Path) -> bool:
    """True when ``path`` holds a whole result file (outputs are written atomically, so a file that
    parses as a result document is complete; a truncated one from elsewhere does not parse)."""
    try:
        doc = json.loads(Path(path).read_bytes())
    except (OSError, ValueError):
        return False
    return isinstance(doc, dict) and ("annolist" in doc or "frames" in doc)


def split_done(jobs: Sequence[Any], resume: bool, want: Callable[[Any], dict] | None = None,
               redone: dict[str, str] | None = None) -> tuple[list[Any], list[str]]:
    """(jobs still to run, names skipped because their output is complete).

    With ``want`` (what this run records for a job, :func:`made_by`), an output is skipped only when it
    was made the same way and covers every frame (:func:`dcpose_trt.scale.resume.why_redo`); the reason
    for each other existing output goes into ``redone``.
    """
    if not resume:
        return list(jobs), []
    todo, skipped = [], []
    for j in jobs:
        if want is None:
            (skipped.append(j.name) if is_complete(j.out) else todo.append(j))
            continue
        why = why_redo(j, want(j))
        if why is None:
            skipped.append(j.name)
        else:
            todo.append(j)
            if why and redone is not None:
                redone[j.name] = why
    return todo, skipped


def made_by(cfg: Any) -> Callable[[Any], dict]:
    """What outputs of a run with ``cfg`` (an :class:`~dcpose_trt.scale.jobs.EstimatorConfig`) record
    (``auto`` resolved once, as the estimator resolves it)."""
    backend = cfg.resolved_backend()
    return lambda job: expected(job, cfg.model, backend, cfg.mode, cfg.lookahead)


def check_job_outputs(jobs: Sequence[Any], inputs: Sequence[str | None] = ()) -> None:
    """Refuse a run where a video's output would replace one of its inputs (the video, its boxes file, its
    annotation or detection file) or one of ``inputs`` (the model): one line, before any work."""
    from dcpose_trt._atomic import check_not_input

    for j in jobs:
        own = [getattr(j, k, None) for k in ("video", "boxes", "detector", "annotation", "detections")]
        check_not_input(j.out, [*own, *inputs], (), "output")
