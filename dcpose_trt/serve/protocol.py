"""The wire protocol between a camera client and the stream model: one place for every tensor name.

One camera stream is one Triton *sequence* (``sequence_id`` = the stream's id, unique among live streams).

Request (one per frame, in order; the batch dimension of every tensor is 1):

* ``FRAME`` ``uint8[1, H, W, 3]``: the frame, BGR. Every frame of a stream has the first frame's size;
  another size is an error for that request (the stream stays as it was).
* ``BOXES`` ``float32[1, N, 5]``: its person boxes (x, y, w, h, score), N >= 0; NaN/inf is an error.
* ``sequence_start`` on the first frame, ``sequence_end`` on the last request. The last request may leave
  out ``FRAME`` and ``BOXES``: it then only flushes (a camera that stopped, or a video whose end is known
  only after its last frame was sent).

Response: the poses of the frames that became final with this request, ``K`` of them (0, 1 or 2):
DCPose refines frame t with t+1, so the request of frame t returns frame t-1 (the first returns nothing),
and the end of a stream also returns its last frame. Every frame's poses come back exactly once, in order.

* ``FRAME_INDEX`` ``int64[1, K]``: each result's position in the stream (0-based count of frames sent).
* ``PERSONS`` ``int32[1, K]``: persons per result; ``P`` = their sum.
* ``KEYPOINTS`` ``float32[1, P, 17, 3]`` (x, y, score in frame pixels), ``BOXES_OUT`` ``float32[1, P, 5]``,
  ``TRACK_IDS`` ``int64[1, P]``: the persons of the K results, concatenated in order.
* ``LIVE_STREAMS`` ``int64[1, 1]``: streams whose state this model instance holds after the request (also
  the ``dcpose_live_streams`` gauge on the metrics port, one series per instance).

A stream that sends nothing for the idle timeout (``max_sequence_idle_microseconds``) is dropped: its state
is freed and a later request of it is an error.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

STREAM_MODEL = "dcpose_stream"
BACKBONE_MODEL = "dcpose_backbone"
HEAD_MODEL = "dcpose_head"

FRAME = "FRAME"
BOXES = "BOXES"
FRAME_INDEX = "FRAME_INDEX"
PERSONS = "PERSONS"
KEYPOINTS = "KEYPOINTS"
BOXES_OUT = "BOXES_OUT"
TRACK_IDS = "TRACK_IDS"
LIVE_STREAMS = "LIVE_STREAMS"
OUTPUTS = (FRAME_INDEX, PERSONS, KEYPOINTS, BOXES_OUT, TRACK_IDS, LIVE_STREAMS)

# Sequence-batcher control inputs (config.pbtxt maps Triton's controls onto them).
START = "START"
END = "END"
CORRID = "CORRID"

#: Custom metric (Prometheus gauge) of live stream states, labelled by model instance.
LIVE_METRIC = "dcpose_live_streams"


@dataclass
class PoseResult:
    """One frame's poses: ``index`` its position in the stream, ``keypoints`` float32[N, 17, 3],
    ``boxes`` float32[N, 5], ``track_ids`` int64[N]."""

    index: int
    keypoints: np.ndarray
    boxes: np.ndarray
    track_ids: np.ndarray


def encode(results: list[PoseResult], live: int) -> dict[str, np.ndarray]:
    """Results → the response tensors (each with the leading batch dimension 1)."""
    kps = [r.keypoints for r in results]
    return {
        FRAME_INDEX: np.array([[r.index for r in results]], np.int64).reshape(1, len(results)),
        PERSONS: np.array([[len(k) for k in kps]], np.int32).reshape(1, len(results)),
        KEYPOINTS: (np.concatenate(kps) if kps else np.zeros((0, 17, 3)))[None].astype(np.float32),
        BOXES_OUT: (np.concatenate([r.boxes for r in results]) if results else np.zeros((0, 5)))[None]
        .astype(np.float32),
        TRACK_IDS: (np.concatenate([r.track_ids for r in results]) if results else np.zeros(0))[None]
        .astype(np.int64),
        LIVE_STREAMS: np.array([[live]], np.int64),
    }


def decode(tensors: dict[str, np.ndarray]) -> list[PoseResult]:
    """Response tensors → the results they carry, in order."""
    idx = tensors[FRAME_INDEX].reshape(-1)
    counts = tensors[PERSONS].reshape(-1)
    kps = tensors[KEYPOINTS].reshape(-1, 17, 3)
    boxes = tensors[BOXES_OUT].reshape(-1, 5)
    ids = tensors[TRACK_IDS].reshape(-1)
    out, s = [], 0
    for i, n in zip(idx, counts, strict=True):
        out.append(PoseResult(int(i), kps[s : s + n], boxes[s : s + n], ids[s : s + n]))
        s += int(n)
    return out
