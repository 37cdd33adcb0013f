"""The one stream loop: numbered frames + their person boxes → tracked poses, frame by frame.

``run``, ``predict --videos`` (one process and Ray workers), the Python API (:meth:`PoseEstimator.run`) and
``examples/edge_app.py`` all stream through :func:`stream_poses`; a server that receives frames one at a
time (a Triton stream model) drives the same steps itself: ``estimator.process(frame, boxes, index)`` per
frame (the poses of the frame before, with look-ahead) and ``estimator.flush()`` at the end.

Frames carry their position in the source (``FrameSource.indexed()``), so after a skipped (unreadable)
frame the boxes and the output keep the right frame numbers. The box policy (clean, clip to the frame,
cap the persons) is the estimator's (:func:`dcpose_trt.runtime.boxes.frame_boxes`), so a caller of the
API that never comes here gets the same crops.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Protocol

import numpy as np

#: ``boxes(index, frame) -> boxes``: a frame's person boxes (x, y, w, h[, score]) by its position
#: (``BoxesFromFile``, a ``YoloDetector``, a lookup).
BoxesFn = Callable[[int, np.ndarray], Any]


class Stepper(Protocol):
    """What the loop needs (a :class:`~dcpose_trt.runtime.estimator.PoseEstimator`)."""

    def reset(self) -> None: ...

    def process(self, frame: np.ndarray, boxes: Any, index: int | None = None) -> list[Any]: ...

    def flush(self) -> list[Any]: ...


def stream_poses(estimator: Stepper, frames: Iterable[tuple[int, np.ndarray]], boxes: BoxesFn, *,
                 max_frames: int | None = None,
                 on_frame: Callable[[int, float, int], object] | None = None) -> Iterator[Any]:
    """Poses (:class:`~dcpose_trt.runtime.estimator.FramePoses`) of every frame of ``frames``, in order.

    Args:
        estimator: reset first; no state crosses streams.
        frames: ``(position, BGR frame)`` pairs (``FrameSource.indexed()``).
        boxes: the frame's boxes by position (:data:`BoxesFn`).
        max_frames: stop after this many frames.
        on_frame: called after each frame with ``(position, seconds for boxes + model, results returned)``.

    An exception (Ctrl-C included) ends the loop where it is; the frames received and not yet returned
    are still in the estimator: ``estimator.flush()`` returns them (``run`` does, so its output has no gap).
    """
    estimator.reset()
    n = 0
    for index, frame in frames:
        if max_frames is not None and n >= max_frames:
            break
        n += 1
        t0 = time.perf_counter()
        done = estimator.process(frame, boxes(index, frame), index)
        if on_frame is not None:
            on_frame(index, time.perf_counter() - t0, len(done))
        yield from done
    yield from estimator.flush()
