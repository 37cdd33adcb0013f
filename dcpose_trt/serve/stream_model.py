"""The stream model: one :class:`~dcpose_trt.runtime.estimator.PoseEstimator` per live camera stream.

Runs inside Triton's Python backend (see :mod:`dcpose_trt.serve.model_template`) under the sequence
batcher: every request carries its stream's id (``CORRID``) and start/end flags; the state of a stream
(frame window, tracker, cached backbone outputs) is its estimator, created on ``START``, dropped on
``END`` or when the stream sent nothing for the idle timeout. A stream runs the one stream loop of
``dcpose-trt run``: a :class:`~dcpose_trt.runtime.stream.StreamLoop` over its estimator, ``step`` per
frame request (with the request's boxes), ``finish`` on ``END``. The estimators' backbone and head are BLS
calls (:class:`~dcpose_trt.serve.bls.TritonBlsBackend`) to the batched part models. The wire protocol is
:mod:`dcpose_trt.serve.protocol`.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dcpose_trt.errors import DcposeTrtError, InputError
from dcpose_trt.runtime.estimator import FramePoses, PoseEstimator
from dcpose_trt.runtime.stream import StreamLoop
from dcpose_trt.serve import protocol as P
from dcpose_trt.serve.bls import PartNames, TritonBlsBackend, pb_array, pb_tensor

log = logging.getLogger(__name__)


@dataclass
class _Stream:
    estimator: PoseEstimator
    loop: StreamLoop  # the one stream loop over ``estimator``; its frame count is the next FRAME_INDEX
    shape: tuple[int, ...] | None = None
    last_seen: float = field(default_factory=time.monotonic)
    busy: bool = False


def parameters(config: dict[str, Any]) -> dict[str, str]:
    """A model config's ``parameters`` as plain strings."""
    return {k: v.get("string_value", "") for k, v in config.get("parameters", {}).items()}


class StreamModel:
    """Per-stream pose estimation; ``args`` is what Triton gives ``initialize``."""

    def __init__(self, args: dict[str, str]):
        import triton_python_backend_utils as pb_utils

        self.pb = pb_utils
        cfg = json.loads(args["model_config"])
        p = parameters(cfg)
        self.mode = p.get("mode", "exact")
        self.preset = p["preset"]
        h, w = (int(v) for v in p["input_size"].split("x"))
        self.input_size = (h, w)
        self.part_batch = int(p["part_max_batch"])
        self.names = PartNames(**json.loads(p["part_names"])) if p.get("part_names") else PartNames()
        if isinstance(self.names.head_in, list):
            self.names = PartNames(self.names.backbone_in, self.names.backbone_out, tuple(self.names.head_in),
                                   self.names.head_out)
        idle_us = int(cfg.get("sequence_batching", {}).get("max_sequence_idle_microseconds", 0) or 0)
        self.idle_s = idle_us / 1e6 if idle_us > 0 else None
        self.streams: dict[int, _Stream] = {}
        self.lock = threading.Lock()
        self.instance = args.get("model_instance_name", "0")
        # The family must outlive its metric (Triton refuses to set a metric of a deleted family).
        self.family = family = pb_utils.MetricFamily(
            name=P.LIVE_METRIC, description="camera streams whose state is held", kind=pb_utils.MetricFamily.GAUGE)
        self.gauge = family.Metric(labels={"model": cfg.get("name", P.STREAM_MODEL), "instance": self.instance})
        self.gauge.set(0)
        self._stop = threading.Event()
        self._sweeper = None
        if self.idle_s is not None:
            self._sweeper = threading.Thread(target=self._sweep_loop, name="dcpose-idle-sweep", daemon=True)
            self._sweeper.start()

    # -- state -------------------------------------------------------------------------------------
    def _new_estimator(self) -> PoseEstimator:
        backend = TritonBlsBackend(self.preset, self.input_size, self.part_batch, P.BACKBONE_MODEL, P.HEAD_MODEL,
                                   self.names)
        # One backend call of exact mode sends 3 crops per person: keep it within one part-model batch.
        per_call = self.part_batch // 3 if self.mode == "exact" else self.part_batch
        return PoseEstimator(backend=backend, mode=self.mode, max_batch=max(1, per_call))

    def live(self) -> int:
        with self.lock:
            return len(self.streams)

    def _publish(self) -> int:
        n = self.live()
        self.gauge.set(n)
        return n

    def sweep(self, now: float | None = None) -> int:
        """Drop the streams idle for longer than the timeout; returns how many were dropped."""
        if self.idle_s is None:
            return 0
        now = time.monotonic() if now is None else now
        with self.lock:
            old = [k for k, s in self.streams.items() if not s.busy and now - s.last_seen > self.idle_s]
            for k in old:
                self.streams.pop(k).estimator.close()
        if old:
            log.info("dropped %d idle stream(s): %s", len(old), old)
            self._publish()
        return len(old)

    def _sweep_loop(self) -> None:
        assert self.idle_s is not None
        period = min(1.0, max(0.05, self.idle_s / 4))
        while not self._stop.wait(period):
            self.sweep()

    # -- requests ----------------------------------------------------------------------------------
    def _tensor(self, request: Any, name: str) -> np.ndarray | None:
        t = self.pb.get_input_tensor_by_name(request, name)
        return None if t is None else pb_array(t)

    def _flag(self, request: Any, name: str) -> bool:
        v = self._tensor(request, name)
        return bool(v is not None and v.size and v.reshape(-1)[0])

    def _inputs(self, request: Any) -> tuple[np.ndarray | None, np.ndarray | None]:
        frame, boxes = self._tensor(request, P.FRAME), self._tensor(request, P.BOXES)
        if (frame is None) != (boxes is None):
            raise InputError(f"send {P.FRAME} and {P.BOXES} together (or neither, to end a stream)")
        if frame is None or boxes is None:
            return None, None
        if frame.ndim != 4 or frame.shape[0] != 1 or frame.shape[3] != 3 or frame.shape[1] < 1 or frame.shape[2] < 1:
            raise InputError(f"{P.FRAME} must be uint8[1, H, W, 3], got shape {list(frame.shape)}")
        if boxes.ndim != 3 or boxes.shape[0] != 1 or boxes.shape[2] != 5:
            raise InputError(f"{P.BOXES} must be float32[1, N, 5], got shape {list(boxes.shape)}")
        if not np.isfinite(boxes).all():
            raise InputError(f"{P.BOXES} holds NaN or inf")
        return frame[0], boxes[0]

    def _one(self, request: Any) -> list[FramePoses]:
        corrid = self._tensor(request, P.CORRID)
        if corrid is None:
            raise InputError("no sequence id: send every frame of a stream with the same sequence_id")
        sid = int(corrid.reshape(-1)[0])
        start, end = self._flag(request, P.START), self._flag(request, P.END)
        frame, boxes = self._inputs(request)  # checked before any state changes
        with self.lock:
            stream = self.streams.get(sid)
            if start:
                if stream is not None:  # a restarted id: the old stream's state is gone
                    stream.estimator.close()
                est = self._new_estimator()
                stream = self.streams[sid] = _Stream(est, StreamLoop(est))
            if stream is None:
                raise InputError(f"stream {sid} is not live (never started, ended, or dropped after the idle "
                                 "timeout): start it again with sequence_start")
            if frame is not None and stream.shape is not None and frame.shape != stream.shape:
                raise InputError(f"stream {sid}: frame of size {frame.shape[1]}x{frame.shape[0]}, the stream's "
                                 f"frames are {stream.shape[1]}x{stream.shape[0]}")
            stream.busy = True
        self._publish()
        try:
            out: list[FramePoses] = []
            if frame is not None:
                stream.shape = frame.shape
                out += stream.loop.step(stream.loop.frames, frame, boxes)
            if end:
                out += stream.loop.finish()
            return out
        finally:
            with self.lock:
                stream.busy = False
                stream.last_seen = time.monotonic()
                if end and self.streams.get(sid) is stream:
                    self.streams.pop(sid).estimator.close()

    def _response(self, results: list[FramePoses]) -> Any:
        res = [P.PoseResult(r.index,
                            np.stack([p.keypoints for p in r.persons]) if r.persons else np.zeros((0, 17, 3)),
                            np.stack([p.box for p in r.persons]) if r.persons else np.zeros((0, 5)),
                            np.array([p.track_id for p in r.persons], np.int64))
               for r in results]
        tensors = P.encode(res, self._publish())
        return self.pb.InferenceResponse([pb_tensor(self.pb, k, v) for k, v in tensors.items()])

    def execute(self, requests: list[Any]) -> list[Any]:
        """One response per request; a request's failure is its own error response (other streams go on)."""
        self.sweep()
        return [self._answer(r) for r in requests]

    def _answer(self, request: Any) -> Any:
        try:
            return self._response(self._one(request))
        except DcposeTrtError as exc:
            return self.pb.InferenceResponse(error=self.pb.TritonError(str(exc)))
        except Exception as exc:  # noqa: BLE001 - a bug answers its request, the server keeps serving
            log.exception("stream model failed a request")
            return self.pb.InferenceResponse(error=self.pb.TritonError(f"{type(exc).__name__}: {exc}"))

    def finalize(self) -> None:
        self._stop.set()
        with self.lock:
            for s in self.streams.values():
                s.estimator.close()
            self.streams.clear()
