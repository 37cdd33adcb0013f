"""The one stream loop: numbered frames + their person boxes → tracked poses, frame by frame.

:class:`StreamLoop` is the loop's body, push-style: :meth:`StreamLoop.step` per frame (the box call,
the estimator, the follow-up of ``--detect-every``, the timing), :meth:`StreamLoop.finish` at the end.
``run``, ``predict --videos`` (one process and Ray workers), the Python API (:meth:`PoseEstimator.run`)
and ``examples/edge_app.py`` pull whole sources through :func:`stream_poses`, a thin generator over it;
the Triton stream model (:mod:`dcpose_trt.serve.stream_model`), which receives a stream's frames one
request at a time, keeps one :class:`StreamLoop` per stream and calls the same ``step``/``finish``.

Frames carry their position in the source (``FrameSource.indexed()``), so after a skipped (unreadable)
frame the boxes and the output keep the right frame numbers. The box policy (clean, clip to the frame,
cap the persons) is the estimator's (:func:`dcpose_trt.runtime.boxes.frame_boxes`), so a caller of the
API that never comes here gets the same crops.

``detect_every = N > 1`` (``--detect-every``) runs the box source on every N-th frame only; in between,
each person's box comes from their newest keypoints (:class:`~dcpose_trt.runtime.follow.DetectEvery`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Protocol

import numpy as np

from dcpose_trt.errors import InputError

#: ``boxes(index, frame) -> boxes``: a frame's person boxes (x, y, w, h[, score]) by its position
#: (``BoxesFromFile``, a ``YoloDetector``, a lookup).
BoxesFn = Callable[[int, np.ndarray], Any]
#: ``on_frame(position, seconds for boxes + model, results returned)``, called after each step.
OnFrame = Callable[[int, float, int], object]


class Stepper(Protocol):
    """What the loop needs (a :class:`~dcpose_trt.runtime.estimator.PoseEstimator`)."""

    def reset(self) -> None: ...

    def process(self, frame: np.ndarray, boxes: Any, index: int | None = None) -> list[Any]: ...

    def flush(self) -> list[Any]: ...


class StreamLoop:
    """One stream through one estimator, a frame at a time (the body of every stream loop).

    Args:
        estimator: reset here; no state crosses streams (one loop per stream).
        boxes: the frame's boxes by position (:data:`BoxesFn`); None when every :meth:`step` brings its own.
        detect_every: call ``boxes`` on every N-th frame only (and again when nobody is left to follow);
            the frames in between get boxes from the poses (1: ``boxes`` on every frame). Ignored for a
            boxes file (``boxes.is_detector`` false), which is read on every frame.
        on_frame: called after each step (:data:`OnFrame`).

    Raises:
        InputError: ``detect_every`` not an integer >= 1.
    """

    def __init__(self, estimator: Stepper, boxes: BoxesFn | None = None, *, detect_every: int = 1,
                 on_frame: OnFrame | None = None):
        from dcpose_trt.runtime.follow import DetectEvery, check_detect_every

        check_detect_every(detect_every)
        # A boxes file (a BoxSource of kind "file") is read on every frame: its boxes cost nothing and are
        # better than any followed ones. Any other source (a detector, a caller's function) is followed.
        every = detect_every if boxes is not None and getattr(boxes, "is_detector", True) else 1
        self.estimator = estimator
        self.boxes = boxes
        self.follow = DetectEvery(boxes, every) if boxes is not None and every > 1 else None
        self.on_frame = on_frame
        self.frames = 0  # frames stepped (failed ones included)
        estimator.reset()

    def step(self, index: int, frame: np.ndarray, boxes: Any = None) -> list[Any]:
        """Push frame ``index`` (BGR ``uint8[H, W, 3]``); returns the poses it finished (0 or 1, 2 after a
        change of frame size: :meth:`PoseEstimator.process`), oldest first.

        ``boxes`` (x, y, w, h[, score] rows) are this frame's persons; None asks the loop's box source.
        """
        t0 = time.perf_counter()
        self.frames += 1  # a frame that fails still counts: the next one keeps its own position
        if boxes is None:
            if self.boxes is None:
                raise InputError("no boxes for this frame and no box source for the stream")
            boxes = (self.follow or self.boxes)(index, frame)
        done = self.estimator.process(frame, boxes, index)
        if self.follow is not None and done:
            # Which poses feed which boxes: process(frame t) returns the poses of the frames it finished:
            # with look-ahead frame t-1 (refined with t as its next frame), causal frame t itself. The
            # newest of them gives the boxes until the next detection, so with look-ahead the boxes of
            # frame t+1 come from the keypoints of frame t-1 (two frames of motion, inside the margin),
            # causal from frame t. Frame t's own boxes were already chosen before this call.
            newest = done[-1].persons
            self.follow.observe([p.keypoints for p in newest], [float(p.box[4]) for p in newest])
        if self.on_frame is not None:
            self.on_frame(index, time.perf_counter() - t0, len(done))
        return done

    def finish(self) -> list[Any]:
        """The poses of every frame stepped and not yet returned (the last one, or more after an
        interrupted step); the stream is over."""
        return self.estimator.flush()


def stream_poses(estimator: Stepper, frames: Iterable[tuple[int, np.ndarray]], boxes: BoxesFn, *,
                 max_frames: int | None = None, on_frame: OnFrame | None = None,
                 detect_every: int = 1) -> Iterator[Any]:
    """Poses (:class:`~dcpose_trt.runtime.estimator.FramePoses`) of every frame of ``frames``, in order.

    Args:
        estimator: reset first; no state crosses streams.
        frames: ``(position, BGR frame)`` pairs (``FrameSource.indexed()``).
        boxes: the frame's boxes by position (:data:`BoxesFn`).
        max_frames: stop after this many frames.
        on_frame: called after each frame with ``(position, seconds for boxes + model, results returned)``.
        detect_every: as :class:`StreamLoop`.

    Raises:
        InputError: ``detect_every`` not an integer >= 1.

    An exception (Ctrl-C included) ends the loop where it is; the frames received and not yet returned
    are still in the estimator: ``estimator.flush()`` returns them (``run`` does, so its output has no gap).
    """
    loop = StreamLoop(estimator, boxes, detect_every=detect_every, on_frame=on_frame)
    for index, frame in frames:
        if max_frames is not None and loop.frames >= max_frames:
            break
        yield from loop.step(index, frame)
    yield from loop.finish()
