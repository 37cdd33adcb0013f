"""Many videos on a Ray cluster: one actor per worker, each holding one ``PoseEstimator``.

The driver (this process) lists the videos, skips those with a complete output (resume), hands one
video at a time to each idle actor, and writes every returned result itself, atomically: workers need
to read the inputs (same paths on every node: a shared file system) but never write, so a worker that
dies leaves nothing behind, and Ctrl-C leaves only whole files.

Failures: a video whose input is bad (the actor raises one of our errors) fails alone, with its reason.
A worker that dies mid-video (killed, out of memory, node lost) is replaced by a new actor and its video
goes back to the queue, up to ``max_retries`` times; then the video is reported failed with the reason.

Resources follow the backend: TensorRT actors ask Ray for one GPU each and check their plan against the
GPU they land on (``dcpose_trt.engine.plan.check``) before taking work; the other backends ask for
``threads`` CPUs and run that many intra-op threads.
"""

from __future__ import annotations

import collections
import os
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from dcpose_trt._deps import require
from dcpose_trt.errors import DcposeTrtError, InputError
from dcpose_trt.scale.jobs import (
    EstimatorConfig,
    Job,
    JobOutput,
    RunInterrupted,
    RunReport,
    WorkerState,
    WorkerStats,
    reason_of,
    write_output,
)
from dcpose_trt.scale.ray_connect import CONNECT_TIMEOUT_S, connect, parse_address
from dcpose_trt.scale.resume import made_by, split_done

ADDRESS_HELP = ("local (start a Ray cluster on this machine), auto (join the cluster this machine belongs to) "
                "or HOST:PORT")


@dataclass(frozen=True)
class ClusterConfig:
    """Where and how wide a distributed run goes.

    Attributes:
        workers: actors (one estimator each).
        address: ``local``, ``auto`` or ``HOST:PORT`` (see :data:`ADDRESS_HELP`).
        threads: CPU threads per actor (CPU backends; Ray reserves that many CPUs per actor).
        max_retries: times a video is re-queued after its worker died, before it is reported failed.
        start_timeout_s: how long workers may take to be placed and load the model.
        gpus_per_worker: GPU share per actor for TensorRT (1: one GPU each; 0.25: four actors share a GPU,
            each decoding frames on its own CPU, for when decoding rather than the engine is the limit).
        connect_timeout_s: how long an existing cluster (``auto``, ``HOST:PORT``) may take to answer
            (``--ray-timeout``; :mod:`dcpose_trt.scale.ray_connect`).
    """

    workers: int = 2
    address: str = "local"
    threads: int = 1
    max_retries: int = 2
    gpus_per_worker: float = 1.0
    start_timeout_s: float = 300.0
    connect_timeout_s: float = CONNECT_TIMEOUT_S

    def __post_init__(self) -> None:
        parse_address(self.address)  # InputError: ray://, malformed
        if not self.connect_timeout_s > 0:
            raise InputError(f"--ray-timeout must be > 0 seconds, got {self.connect_timeout_s}")
        if self.workers < 1:
            raise InputError(f"--workers must be >= 1, got {self.workers}")
        if self.threads < 1:
            raise InputError(f"--threads must be >= 1, got {self.threads}")
        if self.max_retries < 0:
            raise InputError(f"--max-retries must be >= 0, got {self.max_retries}")
        g = self.gpus_per_worker
        if g <= 0 or (g > 1 and g != int(g)):  # Ray: fractions below 1, whole numbers above
            raise InputError(f"--gpus-per-worker must be a fraction in (0, 1] or a whole number, "
                             f"got {self.gpus_per_worker}")


@dataclass(frozen=True)
class WorkerInfo:
    """Where an actor runs: host, process id, and its GPU (TensorRT) or ``None``."""

    host: str
    pid: int
    gpu: str | None = None

    def label(self, slot: int) -> str:
        return f"worker {slot} ({self.host} pid {self.pid}{', ' + self.gpu if self.gpu else ''})"


class PoseWorker:
    """The actor body (wrapped with ``ray.remote`` at run time, so importing this module needs no Ray)."""

    def __init__(self, cfg: EstimatorConfig):
        gpu = None
        if cfg.uses_gpu:
            gpu = _check_plan_here(cfg)
        self.info = WorkerInfo(socket.gethostname(), os.getpid(), gpu)
        self.state = WorkerState(cfg)

    def ready(self) -> WorkerInfo:
        return self.info

    def run(self, job: Job) -> JobOutput:
        return job.run(self.state)


def _check_plan_here(cfg: EstimatorConfig) -> str:
    """Refuse to start on a GPU the plan does not fit (the reason names the rebuild command)."""
    from dcpose_trt.engine._trt import local_machine
    from dcpose_trt.engine.plan import check

    if cfg.model is None:
        raise InputError("the TensorRT backend needs --model PLAN")
    result = check(cfg.model)
    if not result.ok:
        raise DcposeTrtError(f"on {socket.gethostname()}: {result.message}")
    gpu = getattr(local_machine(), "gpu", None)
    return str(getattr(gpu, "name", "GPU"))


def _connect(ray: Any, cluster: ClusterConfig, est: EstimatorConfig) -> tuple[bool, str | None]:
    """Connect to (or start) the cluster; returns (whether we started the connection, dashboard URL)."""
    if ray.is_initialized():  # a caller (a test, a notebook) already connected: use that cluster
        return False, None
    return True, connect(ray, cluster.address, cluster.workers, cluster.threads, cluster.connect_timeout_s)


def _is_worker_death(ray: Any, exc: BaseException) -> bool:
    """The actor process is gone (killed, OOM, node lost), as opposed to the job raising an error."""
    ex = ray.exceptions
    kinds = tuple(getattr(ex, n) for n in ("RayActorError", "WorkerCrashedError", "OutOfMemoryError",
                                           "NodeDiedError", "ObjectLostError") if hasattr(ex, n))
    return isinstance(exc, kinds)


def _start_reason(exc: BaseException) -> str:
    """Why an actor's constructor failed: our error's message when Ray carries it, else Ray's text."""
    cause = getattr(exc, "cause", None)
    if isinstance(cause, BaseException):
        return reason_of(cause)
    text = " ".join(str(exc).split())
    for cls in ("InputError", "PlanMismatchError", "DcposeTrtError", "CheckpointError", "MissingDependencyError",
                "DataError", "CudaError"):
        marker = f"dcpose_trt.errors.{cls}: "
        if marker in text:  # the constructor's traceback is in the message: keep our one line
            return text.split(marker, 1)[1][:300]
    return _first_line(exc)


def _first_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:300] or type(exc).__name__


def run_distributed(jobs: Sequence[Job], est: EstimatorConfig, cluster: ClusterConfig, resume: bool = True,
                    progress: bool = True, on_submit: Callable[[Job, WorkerInfo], object] | None = None,
                    log: Callable[[str], object] = print) -> RunReport:
    """Run ``jobs`` on ``cluster.workers`` Ray actors and write each result as it arrives.

    Args:
        on_submit: called with (job, the worker's info) right after a video is handed to a worker
            (monitoring; the tests kill the worker's process from it).
        log: where the dashboard address and worker start-up lines go.
    """
    ray = require("ray", "ray", "--workers (distributed runs on Ray)")  # first: says which extra, always
    from dcpose_trt.scale.ray_connect import check_ray_version

    check_ray_version(str(getattr(ray, "__version__", "0")))
    from tqdm import tqdm

    from dcpose_trt.runtime.backends.autoselect import resolve_backend

    # auto for a checkpoint: measured (or recalled) once here, not by every worker at once on shared cores.
    est = EstimatorConfig(est.model, resolve_backend(est.model, est.backend, mode=est.mode, progress=progress),
                          est.mode, est.lookahead, est.threads)
    want = made_by(est)
    report = RunReport()
    todo, report.skipped = split_done(jobs, resume, want, report.redone)
    if not todo:
        return report
    t_start = time.perf_counter()
    started, report.dashboard = _connect(ray, cluster, est)
    if report.dashboard:
        log(f"Ray dashboard: {report.dashboard}")
    options: dict[str, Any] = {"num_cpus": cluster.threads, "max_restarts": 0}
    if est.uses_gpu:
        options["num_gpus"] = cluster.gpus_per_worker
    from dcpose_trt.engine.plan_trust import worker_env

    if worker_env():  # --trust-plan / --plugin-lib reach the workers that open the plan
        options["runtime_env"] = {"env_vars": worker_env()}
    actor_cls = ray.remote(PoseWorker).options(**options)
    worker_est = EstimatorConfig(est.model, est.backend, est.mode, est.lookahead, cluster.threads)

    def start(n: int) -> list[tuple[Any, WorkerInfo]]:
        """Start ``n`` actors and wait (up to ``start_timeout_s``) until each holds its estimator.

        An actor whose constructor fails (plan does not fit this GPU, model missing) stops the run with
        the reason; actors the cluster cannot place in time (not enough GPUs/CPUs) are given up, and
        the run goes on with the others (an error if none started).
        """
        actors = [actor_cls.remote(worker_est) for _ in range(n)]
        refs = [a.ready.remote() for a in actors]
        done, _ = ray.wait(refs, num_returns=n, timeout=cluster.start_timeout_s)
        out = []
        try:
            for a, ref in zip(actors, refs, strict=True):
                if ref in done:
                    out.append((a, ray.get(ref)))
        except ray.exceptions.RayError as exc:
            for a in actors:
                ray.kill(a)
            raise DcposeTrtError(f"a worker could not start: {_start_reason(exc)}") from None
        for a, ref in zip(actors, refs, strict=True):
            if ref not in done:
                ray.kill(a)
        if not out:
            need = {k: v for k, v in options.items() if k.startswith("num_")}
            free = {k: v for k, v in ray.available_resources().items() if k in ("CPU", "GPU")}
            raise DcposeTrtError(f"no worker started within {cluster.start_timeout_s:.0f} s; each needs {need}, "
                                 f"the cluster has {free} free")
        if len(out) < n:
            log(f"only {len(out)} of {n} workers started within {cluster.start_timeout_s:.0f} s; going on with them")
        return out

    slots: dict[int, tuple[Any, WorkerInfo]] = {}
    queue: collections.deque[tuple[Job, int]] = collections.deque((j, 0) for j in todo)
    pending: dict[Any, tuple[int, Job, int, float]] = {}  # ref -> (slot, job, attempt, submit time)
    bar = None
    try:
        for i, pair in enumerate(start(min(cluster.workers, len(todo)))):
            slots[i] = pair
            report.workers[str(i)] = WorkerStats(pair[1].label(i))
        report.startup_s = time.perf_counter() - t_start
        bar = tqdm(total=len(todo), desc=f"predict ({len(slots)} workers)", unit="video",
                   disable=None if progress else True)  # None: no bar when stderr is not a terminal
        t0 = time.perf_counter()
        busy: set[int] = set()
        while queue or pending:
            for slot in sorted(set(slots) - busy):
                if not queue:
                    break
                job, attempt = queue.popleft()
                actor, info = slots[slot]
                pending[actor.run.remote(job)] = (slot, job, attempt, time.perf_counter())
                busy.add(slot)
                if on_submit is not None:
                    on_submit(job, info)
            if not pending:  # every worker is gone: what is left cannot run
                for job, _ in queue:
                    report.failed[job.name] = "no worker left to run it"
                queue.clear()
                break
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=1.0)
            for ref in ready:
                slot, job, attempt, t_sub = pending.pop(ref)
                busy.discard(slot)
                try:
                    out: JobOutput = ray.get(ref)
                except Exception as exc:  # noqa: BLE001 - sorted into worker death vs. this video's error
                    if _is_worker_death(ray, exc):
                        _replace(ray, start, slots, slot, report)
                        if attempt < cluster.max_retries:
                            queue.append((job, attempt + 1))
                            report.retries += 1
                            continue
                        report.failed[job.name] = (f"its worker died {attempt + 1} times; last: "
                                                   f"{_first_line(exc)}")
                    else:
                        cause = getattr(exc, "cause", None)
                        report.failed[job.name] = reason_of(cause if isinstance(cause, BaseException) else exc)
                    bar.update(1)
                    continue
                write_output(job, out, want)
                report.overhead_s.append(max(0.0, time.perf_counter() - t_sub - out.seconds))
                report.done.append(job.name)
                report.frames += out.frames
                report.persons += out.persons
                w = report.workers[str(slot)]
                w.videos, w.frames, w.busy_s = w.videos + 1, w.frames + out.frames, w.busy_s + out.seconds
                bar.update(1)
                bar.set_postfix(fps=f"{report.frames / (time.perf_counter() - t0):.1f}")
        report.seconds = time.perf_counter() - t0
    except KeyboardInterrupt:
        report.interrupted = True
        report.seconds = time.perf_counter() - t_start
        raise RunInterrupted(report) from None  # after the finally below: workers killed, Ray shut down
    finally:
        if bar is not None:
            bar.close()
        for actor, _ in slots.values():
            ray.kill(actor)
        if started:
            ray.shutdown()
    return report


def _replace(ray: Any, start: Callable[[int], list], slots: dict[int, tuple[Any, WorkerInfo]], slot: int,
             report: RunReport) -> None:
    """A new actor in ``slot`` after its worker died; the slot is dropped if no new worker can start."""
    try:
        ray.kill(slots[slot][0])
    except Exception:  # noqa: BLE001 - it is already dead
        pass
    try:
        (pair,) = start(1)
    except DcposeTrtError:
        del slots[slot]
        return
    slots[slot] = pair
    old = report.workers.pop(str(slot))
    report.workers[str(slot)] = WorkerStats(pair[1].label(slot), old.videos, old.frames, old.busy_s)
