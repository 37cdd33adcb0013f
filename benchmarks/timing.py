"""Timing one combination: real frames with ``persons`` boxes streamed through a fresh ``PoseEstimator``.

Per streamed frame:

* ``read``: decoding the next frame (jpg or video, :class:`~dcpose_trt.data.video.FrameSource`);
* ``crop``: from the ``process`` call to the first backend call (box cleaning, tracking, affine crops);
* ``infer``: inside the backend (``infer``, or ``backbone`` + ``head`` in cached mode);
* ``align``: between backend calls (cached mode: warping the neighbours' heatmaps into the key crop);
* ``decode``: from the last backend call to the end of ``process`` (heatmaps → keypoints);
* ``e2e``: read + ``process``, i.e. the latency a streaming user sees per frame (look-ahead excluded).

The stages partition ``e2e`` exactly, because they are cut from one call by a timing wrapper around the
backend (it is just another :class:`~dcpose_trt.runtime.backends.base.Backend`), not re-run separately.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from benchmarks.config import STAGES
from dcpose_trt.errors import InputError
from dcpose_trt.runtime.backends.base import Backend, SplitBackend


class TimedBackend(Backend):
    """A :class:`~dcpose_trt.runtime.backends.base.Backend` that records ``(start, end)`` of every call it forwards.

    ``calls`` holds ``perf_counter`` pairs since the last ``calls.clear()``; the runner cuts a ``process`` call
    into crop / infer / align / decode at these boundaries. It is a plain :class:`Backend` (or, around a
    :class:`SplitBackend`, a :class:`TimedSplitBackend`: see :func:`timed`), never a ``GpuPoseBackend``: the
    fused GPU path crops, infers and decodes in one call, which cannot be cut into stages, so GPU backends
    are timed through ``infer`` like the others. The wrapped backend stays its owner's to close.
    """

    def __init__(self, inner: Backend):
        self.inner = inner
        self.name = inner.name
        self.preset_name = inner.preset_name
        self.input_size = inner.input_size
        self.single_frame = inner.single_frame
        self.calls: list[tuple[float, float]] = []

    def _forward(self, fn: Callable[..., np.ndarray], *args: np.ndarray) -> np.ndarray:
        t0 = time.perf_counter()
        out = fn(*args)
        t1 = time.perf_counter()
        self.calls.append((t0, t1))
        self.last_inference_time = t1 - t0
        return out

    def _infer_impl(self, frames: np.ndarray, margin: np.ndarray) -> np.ndarray:
        """frames float32[B, 9, H, W], margin float32[B, 2] → heatmaps float32[B, 17, H/4, W/4]."""
        return self._forward(self.inner.infer, frames, margin)


class TimedSplitBackend(TimedBackend, SplitBackend):
    """:class:`TimedBackend` around a :class:`SplitBackend`: ``backbone`` and ``head`` are timed too."""

    inner: SplitBackend

    def _backbone_impl(self, x: np.ndarray) -> np.ndarray:
        """crops float32[B, 3, H, W] → heatmaps float32[B, 17, H/4, W/4]."""
        return self._forward(self.inner.backbone, x)

    def _head_impl(self, cur: np.ndarray, prev: np.ndarray, nxt: np.ndarray, margin: np.ndarray) -> np.ndarray:
        """three float32[B, 17, h, w] heatmaps + margin float32[B, 2] → refined heatmaps."""
        return self._forward(self.inner.head, cur, prev, nxt, margin)


def timed(backend: Backend) -> TimedBackend:
    """The timing wrapper that declares what ``backend`` declares (split or not)."""
    return TimedSplitBackend(backend) if isinstance(backend, SplitBackend) else TimedBackend(backend)


def person_boxes(n: int, frame_hw: tuple[int, int], t: int) -> np.ndarray:
    """``n`` person-shaped boxes float32[n, 5] (x, y, w, h, score) tiled over a frame, drifting 2 px per frame.

    The drift keeps the IoU tracker matching the same ids across frames (cached mode relies on them) while
    the crops change a little, as they would on video.
    """
    h, w = frame_hw
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    cw, ch = w / cols, h / rows
    dx = 2.0 * (t % 8)
    out = np.empty((n, 5), np.float32)
    for i in range(n):
        r, c = divmod(i, cols)
        out[i] = (c * cw + 0.15 * cw + dx, r * ch + 0.05 * ch, 0.6 * cw, 0.9 * ch, 1.0)
    return out


class FrameStream:
    """Endless stream of decoded frames from a folder of images or a video (restarted, untimed, at its end)."""

    def __init__(self, source: Path):
        from dcpose_trt.data.video import FrameSource

        self.source = FrameSource(source)
        self._it: Iterator[np.ndarray] = iter(self.source)

    def read(self) -> tuple[np.ndarray, float]:
        """The next BGR uint8 frame [H, W, 3] and the seconds its decode took."""
        t0 = time.perf_counter()
        frame = next(self._it, None)
        dt_s = time.perf_counter() - t0
        if frame is None:
            self._it = iter(self.source)
            t0 = time.perf_counter()
            frame = next(self._it, None)
            dt_s = time.perf_counter() - t0
            if frame is None:
                raise InputError(f"no frames in {self.source.source}")
        return frame, dt_s


def time_pipeline(backend: Backend, mode: str, persons: int, frames: FrameStream, iters: int, warmup: int
                  ) -> dict[str, np.ndarray]:
    """Stream frames with ``persons`` boxes through a fresh ``PoseEstimator``; per-frame stage times in ms.

    Returns ``{stage: float64[iters]}`` for every stage in :data:`STAGES`.
    """
    from dcpose_trt.runtime import PoseEstimator

    clock = timed(backend)
    est = PoseEstimator(backend=clock, mode=mode, max_batch=max(persons, 1))
    samples: dict[str, list[float]] = {s: [] for s in STAGES}
    # Two frames fill the look-ahead window (the first process() returns nothing and calls no backend).
    for i in range(2 + warmup + iters):
        frame, read_s = frames.read()
        boxes = person_boxes(persons, frame.shape[:2], i)
        clock.calls.clear()
        t0 = time.perf_counter()
        est.process(frame, boxes)
        t1 = time.perf_counter()
        if i < 2 + warmup:
            continue
        calls = clock.calls
        if not calls:
            raise RuntimeError("PoseEstimator.process made no backend call in steady state")
        infer = sum(e - s for s, e in calls)
        align = sum(calls[k + 1][0] - calls[k][1] for k in range(len(calls) - 1))
        for stage, sec in (("read", read_s), ("crop", calls[0][0] - t0), ("infer", infer), ("align", align),
                           ("decode", t1 - calls[-1][1]), ("e2e", read_s + t1 - t0)):
            samples[stage].append(sec * 1e3)
    return {s: np.asarray(v) for s, v in samples.items()}


def percentile(a: np.ndarray, q: float) -> float:
    """The ``q``-th percentile of ``a`` in ms, rounded to the µs."""
    return round(float(np.percentile(a, q)), 3)


def call_ms(fn: Callable[[], object], iters: int, warmup: int = 2) -> list[float]:
    """Milliseconds of each of ``iters`` calls of ``fn`` after ``warmup`` untimed ones (a part or an op alone,
    where no frame stream is involved)."""
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(iters):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1e3)
    return out
