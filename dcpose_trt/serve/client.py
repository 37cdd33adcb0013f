"""The camera side: :class:`StreamClient` sends one stream's frames and boxes to the stream model over gRPC
and gets each frame's poses back (the protocol: :mod:`dcpose_trt.serve.protocol`).

It has :class:`~dcpose_trt.runtime.estimator.PoseEstimator`'s streaming surface (``process`` / ``flush``),
so ``dcpose-trt serve stream`` is ``dcpose-trt run``'s own loop (:func:`~dcpose_trt.runtime.pipeline.run_video`:
box clipping, frame positions, overlay and JSON) with the estimator on the server: it writes what ``run``
writes.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np

from dcpose_trt.data.transforms import as_bgr8, clean_boxes
from dcpose_trt.errors import DcposeTrtError, InputError, MissingDependencyError
from dcpose_trt.runtime.estimator import FramePoses, PersonPose
from dcpose_trt.serve import protocol as P


class ServerUnavailableError(DcposeTrtError):
    """The server cannot be reached, went away mid-stream, or did not answer in time."""


class RequestError(DcposeTrtError):
    """The server refused or failed one request (its message)."""


def _grpc() -> Any:
    try:
        import tritonclient.grpc as grpcclient
    except (ImportError, RuntimeError) as exc:
        from dcpose_trt._env import install_hint

        raise MissingDependencyError(f"the Triton gRPC client is not installed ({exc}): "
                                     f"{install_hint(extra='serve')}") from None
    return grpcclient


def _one_line(text: str) -> str:
    return " ".join(str(text).split())[:400]


@dataclass
class _Name:
    name: str


class StreamClient:
    """One camera stream on a server: feed frames in order, get each frame's poses exactly once.

    Args:
        url: the server's gRPC address ``HOST:PORT``.
        stream_id: the stream's sequence id (default: a random one); unique among the server's live streams.
        timeout_s: the longest one request may take (a dead or stuck server is an error after it).
    """

    def __init__(self, url: str, stream_id: int | None = None, timeout_s: float = 60.0,
                 model: str = P.STREAM_MODEL):
        g = _grpc()
        self._g = g
        self.url = url
        self.model = model
        self.timeout_s = float(timeout_s)
        self.stream_id = int(stream_id) if stream_id is not None else random.randrange(1, 2**62)
        self.client = g.InferenceServerClient(url)
        self.backend = _Name(f"triton {url}")  # what run_video's summary names as the backend
        self.live_streams = -1  # the server instance's live-stream count after the last response
        self._sent = 0  # frames sent in the current server-side stream
        self._offset = 0  # frames of earlier shots (a frame-size change starts a new server-side stream)
        self._shape: tuple[int, ...] | None = None

    def _infer(self, inputs: list[Any], start: bool, end: bool) -> list[P.PoseResult]:
        g = self._g
        try:
            res = self.client.infer(self.model, inputs, sequence_id=self.stream_id, sequence_start=start,
                                    sequence_end=end, client_timeout=self.timeout_s,
                                    outputs=[g.InferRequestedOutput(n) for n in P.OUTPUTS])
        except g.InferenceServerException as exc:
            status = str(exc.status() or "")
            if any(s in status for s in ("UNAVAILABLE", "DEADLINE_EXCEEDED", "CANCELLED")):
                raise ServerUnavailableError(f"server {self.url}: {_one_line(exc.message() or str(exc))}") from None
            raise RequestError(f"server {self.url} refused the request: {_one_line(exc.message() or str(exc))}") \
                from None
        tensors = {n: res.as_numpy(n) for n in P.OUTPUTS}
        self.live_streams = int(tensors[P.LIVE_STREAMS].reshape(-1)[0])
        return P.decode(tensors)

    def send(self, frame: np.ndarray, boxes: np.ndarray, start: bool = False, end: bool = False
             ) -> list[P.PoseResult]:
        """The raw protocol: one request with ``frame`` (sent as it is) and ``boxes``."""
        g = self._g
        f = g.InferInput(P.FRAME, [1, *frame.shape], g.np_to_triton_dtype(frame.dtype))
        f.set_data_from_numpy(frame[None])
        b = g.InferInput(P.BOXES, [1, *boxes.shape], g.np_to_triton_dtype(boxes.dtype))
        b.set_data_from_numpy(boxes[None])
        return self._infer([f, b], start, end)

    def _poses(self, results: list[P.PoseResult]) -> list[FramePoses]:
        return [FramePoses(self._offset + r.index,
                           [PersonPose(r.keypoints[i], r.boxes[i], int(r.track_ids[i])) for i in range(len(r.boxes))])
                for r in results]

    def reset(self) -> None:
        """Start over (the stream loop's first step): a live server-side stream is ended, its poses dropped."""
        if self._sent:
            self.flush()

    def process(self, frame: np.ndarray, boxes: np.ndarray | Sequence | None,
                index: int | None = None) -> list[FramePoses]:
        """Send the next frame and its boxes (x, y, w, h[, score]); returns 0 or 1 frames' poses (the
        previous frame's: one frame of look-ahead). A frame of another size ends the shot (its last frame
        is returned too) and starts a new stream on the server, as ``PoseEstimator.process`` does.
        ``index`` (the frame's position, from the stream loop) is not sent: the server numbers frames."""
        img = as_bgr8(frame)
        done: list[FramePoses] = []
        if self._shape is not None and img.shape != self._shape:
            done = self.flush()
        b = clean_boxes(boxes)
        out = self._poses(self.send(img, b, start=self._sent == 0))
        self._shape = img.shape
        self._sent += 1
        return done + out

    def flush(self) -> list[FramePoses]:
        """End the stream: returns the last frame's poses; the next ``process`` starts a new stream."""
        if self._sent == 0:
            return []
        out = self._poses(self._infer([], start=False, end=True))
        self._offset += self._sent
        self._sent = 0
        self._shape = None
        return out

    def close(self) -> None:
        try:
            self.client.close()
        except Exception:  # noqa: BLE001 - closing a channel to a dead server must not mask the real error
            pass

    def __enter__(self) -> StreamClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def stream_video(url: str, video: str, boxes: str | None = None, detector: str | None = None,
                 json_out: str | None = None, out: str | None = None, max_frames: int | None = None,
                 timeout_s: float = 60.0, progress: bool = True) -> Any:
    """``dcpose-trt serve stream``: ``run``'s loop with the server as the estimator; returns its RunSummary."""
    from dcpose_trt.runtime.estimator import PoseEstimator
    from dcpose_trt.runtime.pipeline import RunConfig, run_video

    if max_frames is not None and max_frames < 1:
        raise InputError(f"--max-frames must be >= 1, got {max_frames}")
    cfg = RunConfig(video=video, boxes=boxes, detector=detector, out=out, json_out=json_out, max_frames=max_frames)
    with StreamClient(url, timeout_s=timeout_s) as client:
        return run_video(cfg, estimator=cast(PoseEstimator, client), progress=progress)
