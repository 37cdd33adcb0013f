"""``--backend auto`` for a checkpoint on the CPU: the fastest backend of this machine, measured once.

Which CPU backend is fastest depends on the CPU (AVX2 vs AVX-512 BF16 vs AMX), the model size, the person
count and the library versions: on the 2-core AVX-512 BF16 EPYC of the committed runs OpenVINO BF16 was
fastest, OpenVINO FP32 beat ONNX Runtime FP32 at 8 persons but not at 1. So ``auto`` does not guess: the
first time a checkpoint is opened with ``auto`` on a machine, each candidate backend is opened (exported or
converted once into the model caches) and timed on this model's own input shape, at 1 and 8 persons, in
the requested mode (exact: the whole model; cached: one backbone call and one head call). The fastest
(smallest geometric mean of the two per-frame medians) is remembered in
``$DCPOSE_TRT_CACHE/autoselect/<key>.json`` (default ``~/.cache/dcpose_trt``); the key holds the
checkpoint's sha256, the mode, the CPU model and extensions, the usable cores and the versions of torch,
ONNX Runtime and OpenVINO, so an upgrade or another machine measures again.

Candidates: ``onnxruntime``, ``openvino`` (FP32), ``openvino-bf16`` (only where the CPU has native BF16;
its keypoints passed the BF16 fidelity gate, README "CPU backends") and ``torch``, each where installed.
INT8 is not a candidate: it needs calibration data that a checkpoint does not carry. Restrict the set with
``DCPOSE_TRT_AUTO_CANDIDATES=onnxruntime,openvino`` (e.g. FP32 only), or pass ``--backend``.

:func:`resolve_backend` is the one place ``auto`` is turned into a backend name, for every kind of model
(plan, ONNX, IR, checkpoint). A remembered record that does not read as one (hand-edited, truncated, of
another layout) is ignored with a warning and measured again.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import math
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from dcpose_trt.errors import DcposeTrtError, InputError

log = logging.getLogger(__name__)

#: Every backend ``auto`` may pick for a checkpoint on the CPU, in the order they are measured.
CANDIDATES = ("onnxruntime", "openvino", "openvino-bf16", "torch")
#: Person counts each candidate is timed at (one small, one crowded frame).
PERSONS = (1, 8)
#: Environment variable restricting the candidates (comma list of names from :data:`CANDIDATES`).
CANDIDATES_ENV = "DCPOSE_TRT_AUTO_CANDIDATES"
#: Version of the remembered file and of what was measured (a change measures again). 2: the OpenVINO
#: candidates convert the head in its CPU form (dcpose_trt.model.cpu_head), so a choice made against the
#: native deformable-conv head is stale.
FORMAT = 2


@dataclass
class Selection:
    """What ``auto`` chose and why.

    Attributes:
        backend: the chosen ``--backend`` name.
        times_ms: per candidate, the median ms per frame at each person count (``{"1": ms, "8": ms}``).
        skipped: per candidate that could not run here, the one-line reason.
        key: what the measurement depends on (see the module docstring).
        measured_at: ISO date of the measurement.
        load_average: the 1-minute load average before and after measuring (other work on the cores skews
            the ranking; :func:`announce` says so).
        path: the remembered file. reused: True when read from it instead of measured now.
    """

    backend: str
    times_ms: dict[str, dict[str, float]] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    key: dict[str, str] = field(default_factory=dict)
    measured_at: str = ""
    load_average: list[float] = field(default_factory=list)
    path: str = ""
    reused: bool = False

    def score(self, name: str) -> float:
        """Geometric mean of the per-frame medians over the person counts (lower is faster)."""
        t = self.times_ms[name]
        return math.exp(sum(math.log(v) for v in t.values()) / len(t))

    def summary(self) -> str:
        """One line: the choice and every candidate's times."""
        parts = [f"{n} {'/'.join(f'{v:.1f}' for v in t.values())} ms" for n, t in
                 sorted(self.times_ms.items(), key=lambda kv: self.score(kv[0]))]
        persons = "/".join(next(iter(self.times_ms.values()), {}).keys()) or "-"
        return f"{self.backend} (per frame at {persons} persons: {', '.join(parts)})"


def candidates(wanted: Sequence[str] | None = None) -> tuple[list[str], dict[str, str]]:
    """The candidates that can run on this machine, and why the others cannot.

    ``wanted``: names to consider (default: ``$DCPOSE_TRT_AUTO_CANDIDATES``, else :data:`CANDIDATES`).
    """
    if wanted is None:
        env = os.environ.get(CANDIDATES_ENV, "").strip()
        wanted = [w.strip() for w in env.split(",") if w.strip()] if env else list(CANDIDATES)
    unknown = [w for w in wanted if w not in CANDIDATES]
    if unknown or not wanted:
        raise InputError(f"unknown auto candidate(s) {', '.join(unknown) or '(none given)'}"
                         f"{' in $' + CANDIDATES_ENV if wanted is None else ''}; choose from: {', '.join(CANDIDATES)}")
    from dcpose_trt.runtime.backends.registry import unavailable_reason

    ok, skipped = [], {}
    for name in wanted:
        why = unavailable_reason(name)
        if why:
            skipped[name] = why
            continue
        ok.append(name)
    return ok, skipped


def selection_key(checkpoint: Path, preset: str | None, mode: str) -> dict[str, str]:
    """Everything the measurement depends on."""
    from dcpose_trt._env import cpu_extensions, cpu_model, installed_version
    from dcpose_trt.engine.model_cache import file_sha256

    return {"format": str(FORMAT), "checkpoint_sha256": file_sha256(checkpoint), "preset": preset or "",
            "mode": mode, "cpu": cpu_model(), "cpu_extensions": ",".join(cpu_extensions()),
            "cores": str(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()),
            **{m: installed_version(m) or "none" for m in ("torch", "onnxruntime", "openvino")}}


def selection_path(key: dict[str, str]) -> Path:
    from dcpose_trt._env import cache_root

    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    return cache_root("autoselect") / f"{key['checkpoint_sha256'][:12]}-{key['mode']}-{digest}.json"


def read_record(path: Path) -> Selection | None:
    """The :class:`Selection` remembered in ``path``, or None when the file does not read as one: every
    ``times_ms`` entry a non-empty map of person counts to finite positive milliseconds, ``skipped`` and
    ``key`` maps of strings."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(doc, dict) or set(doc) - {f for f in Selection.__dataclass_fields__ if f != "reused"}:
        return None
    times, skipped, key = doc.get("times_ms"), doc.get("skipped", {}), doc.get("key")

    def str_map(d: object) -> bool:
        return isinstance(d, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in d.items())

    def ms_map(d: object) -> bool:
        return isinstance(d, dict) and bool(d) and all(
            isinstance(k, str) and isinstance(v, (int, float)) and not isinstance(v, bool)
            and math.isfinite(v) and v > 0 for k, v in d.items())

    if not (isinstance(times, dict) and times and all(isinstance(n, str) and ms_map(t) for n, t in times.items())
            and str_map(skipped) and str_map(key) and isinstance(doc.get("backend", ""), str)
            and isinstance(doc.get("measured_at", ""), str) and isinstance(doc.get("path", ""), str)):
        return None
    load = doc.get("load_average", [])
    if not (isinstance(load, list) and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in load)):
        return None
    try:
        return Selection(**doc)
    except TypeError:  # a required field missing (found by tests/test_properties.py)
        return None


def _time_backend(backend: object, mode: str, persons: int, budget_s: float) -> float:
    """Median seconds per call of what one frame of ``persons`` costs in ``mode`` (after one warm-up call).

    exact: ``infer(frames[B, 9, H, W], margin)``; cached: ``backbone(crops[B, 3, H, W])`` + ``head`` on
    three heatmaps (the per-frame work of the cached mode). Inputs are fixed pseudo-random crops (timings do
    not depend on the values). At least 3 timed calls, more while within ``budget_s``, at most 15.
    """
    from dcpose_trt.runtime.backends.base import Backend, SplitBackend

    assert isinstance(backend, Backend)
    h, w = backend.input_size
    rng = np.random.default_rng(0)
    margin = np.ones((persons, 2), np.float32)
    if mode == "cached":
        assert isinstance(backend, SplitBackend)
        crops = rng.standard_normal((persons, 3, h, w)).astype(np.float32)
        heat = np.abs(rng.standard_normal((persons, 17, h // 4, w // 4))).astype(np.float32)

        def call() -> None:
            backend.backbone(crops)
            backend.head(heat, heat, heat, margin)
    else:
        frames = rng.standard_normal((persons, 9, h, w)).astype(np.float32)

        def call() -> None:
            backend.infer(frames, margin)

    call()  # warm-up: first-call allocations, OpenVINO/ONNX Runtime lazy initialisation
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < 3 or (len(times) < 15 and time.perf_counter() - start < budget_s):
        t0 = time.perf_counter()
        call()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def measure(checkpoint: Path, preset: str | None, mode: str, names: Sequence[str], budget_s: float = 2.0,
            progress: bool = True) -> tuple[dict[str, dict[str, float]], dict[str, str]]:
    """Open each backend of ``names`` on ``checkpoint`` and time it at :data:`PERSONS` persons.

    Returns (per backend: persons → median ms per frame, per backend that failed to open or run: why).
    """
    from dcpose_trt.runtime.backends.base import OpenOptions
    from dcpose_trt.runtime.backends.registry import open_named

    times: dict[str, dict[str, float]] = {}
    failed: dict[str, str] = {}
    for name in names:
        _say(f"auto: timing {name} ({mode} mode) on {checkpoint.name}", progress)
        try:
            with open_named(checkpoint, name, OpenOptions(preset, mode, progress=progress)) as backend:
                times[name] = {str(p): round(1e3 * _time_backend(backend, mode, p, budget_s), 3) for p in PERSONS}
        except (DcposeTrtError, RuntimeError, OSError) as exc:  # a candidate that cannot run here is skipped
            failed[name] = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
            log.warning("auto: %s skipped: %s", name, failed[name])
    return times, failed


def select_backend(checkpoint: Path, preset: str | None = None, mode: str = "exact", remeasure: bool = False,
                   wanted: Sequence[str] | None = None, budget_s: float = 2.0, progress: bool = True) -> Selection:
    """The fastest CPU backend for ``checkpoint`` in ``mode`` on this machine (measured once, then remembered).

    Args:
        checkpoint: the DCPose checkpoint (``.pth``) that will run.
        preset: preset for a checkpoint without one recorded.
        mode: ``exact`` or ``cached`` (what is timed).
        remeasure: measure even when a remembered choice exists.
        wanted: candidate names (default: ``$DCPOSE_TRT_AUTO_CANDIDATES``, else :data:`CANDIDATES`); a
            remembered choice is reused only when it measured all of them.
        budget_s: seconds of timed calls per candidate and person count (at least 3 calls each).

    Raises:
        InputError: unknown candidate names, or no candidate runs here.
    """
    from dcpose_trt._atomic import atomic_write_text

    names, skipped = candidates(wanted)
    key = selection_key(checkpoint, preset, mode)
    path = selection_path(key)
    if not remeasure and path.is_file():
        sel = read_record(path)
        if sel is None:
            log.warning("auto: ignoring an unreadable %s; measuring again", path)
        elif sel.key == key and set(names) <= set(sel.times_ms) | set(sel.skipped):
            ranked = [n for n in sorted(sel.times_ms, key=sel.score) if n in names]
            if ranked:
                sel.backend, sel.reused, sel.path = ranked[0], True, str(path)
                return sel
    if len(names) == 1:  # one candidate: nothing to compare, nothing to remember
        return Selection(backend=names[0], skipped=skipped, key=key, reused=True,
                         path=f"${CANDIDATES_ENV}={names[0]}" if wanted is None else "--candidates")
    if not names:
        raise InputError("auto: no CPU backend can run here (" + "; ".join(f"{k}: {v}" for k, v in skipped.items())
                         + "); pass --backend")
    load_before = _load()
    times, failed = measure(checkpoint, preset, mode, names, budget_s, progress)
    if not times:
        raise InputError("auto: no candidate backend ran here (" + "; ".join(f"{k}: {v}" for k, v in failed.items())
                         + "); pass --backend")
    sel = Selection(backend="", times_ms=times, skipped={**skipped, **failed}, key=key,
                    measured_at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                    load_average=[v for v in (load_before, _load()) if v is not None], path=str(path))
    sel.backend = min(times, key=sel.score)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        record = asdict(sel)
        record.pop("reused")
        atomic_write_text(path, json.dumps(record, indent=2) + "\n")
    except OSError as exc:  # a read-only cache only costs a new measurement next time
        log.warning("auto: could not remember the choice in %s (%s)", path, exc.strerror)
    return sel


def _load() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:  # no load average on this OS
        return None


def _say(msg: str, progress: bool) -> None:
    log.info("%s", msg)
    if progress:
        print(f"dcpose-trt: {msg}", file=sys.stderr, flush=True)


def announce(sel: Selection, progress: bool = True) -> None:
    """Tell the user what ``auto`` chose (stderr when ``progress``, else the log)."""
    if not sel.times_ms:
        log.info("auto chose %s, the only candidate (%s)", sel.backend, sel.path)
        return
    how = f"remembered from {sel.measured_at[:10]}" if sel.reused else "measured now"
    _say(f"auto chose {sel.summary()}; {how} in {sel.path} (--backend NAME or ${CANDIDATES_ENV} to override)",
         progress)
    cores = int(sel.key.get("cores") or 1) if str(sel.key.get("cores", "")).isdigit() else 1
    if not sel.reused and sel.load_average and max(sel.load_average) > cores:
        # Contention hits the backends unequally (measured: PyTorch's threads suffer most), so the ranking
        # of a loaded measurement may not hold on an idle machine. Said once, when measured: a remembered
        # choice is not measured again, so repeating it on every run would only be noise.
        log.warning("auto: measured while the machine was busy (load average %s on %d cores); rerun "
                    "`dcpose-trt select-backend --remeasure` when it is idle", max(sel.load_average), cores)


#: ``auto`` for an exported model: the backend for the file's suffix (a folder is a split ONNX export).
BY_SUFFIX = {".onnx": "onnxruntime", ".xml": "openvino"}


def resolve_backend(model: str | os.PathLike | None, backend: str, preset: str | None = None, mode: str = "exact",
                    device: str = "cpu", progress: bool = True) -> str:
    """The backend name ``backend`` means for ``model`` (None: the bundled checkpoint): ``backend`` itself
    unless it is ``auto``; then a plan's builder (read from its sidecar), ONNX Runtime for ONNX, OpenVINO
    for IR, and for a checkpoint the fastest CPU backend measured on this machine (announced; ``device``
    other than the CPU: torch). ``predict --workers`` calls it once in the driver so that the workers do
    not each measure, at the same time, on the same cores.

    Raises:
        InputError: ``model`` does not exist; no CPU backend runs here.
        PlanMismatchError: a plan without a readable sidecar.
    """
    from dcpose_trt.model.presets import bundled_model_path

    if backend != "auto":
        return backend
    path = Path(model) if model is not None else bundled_model_path()
    if path is None:
        return "torch"  # no bundled checkpoint: the torch backend builds the preset's model
    if not path.exists():
        raise InputError(f"model file not found: {path}")
    suffix = ".onnx" if path.is_dir() else path.suffix.lower()
    if suffix in (".plan", ".engine"):
        from dcpose_trt.engine import read_sidecar

        return str(read_sidecar(path)["backend"]["name"])
    if suffix in BY_SUFFIX:
        return BY_SUFFIX[suffix]
    if not str(device).startswith("cpu"):
        return "torch"
    sel = select_backend(path, preset, mode, progress=progress)
    announce(sel, progress)
    return sel.backend
