"""``PoseEstimator``: frames + person boxes in, 17 keypoints per person out, through any backend.

Streaming: DCPose needs frame t+1 to refine frame t, so :meth:`PoseEstimator.process` (the stream's
``push(frame, boxes, index)``) returns the poses of the *previous* frame (one frame of look-ahead) and
:meth:`PoseEstimator.flush` returns the rest. With ``lookahead=False`` (causal mode) frame t is refined with
t-1 and t-2 and returned at once. Whole sources go through :func:`dcpose_trt.runtime.stream.stream_poses`.
Every frame is normalised once (:func:`~dcpose_trt.data.transforms.as_bgr8`) and its boxes go through the
one box policy (:func:`dcpose_trt.runtime.boxes.frame_boxes`: clean, clip to the frame, cap).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from dcpose_trt.data.transforms import (
    as_bgr8,
    box_to_center_scale,
    crop_person,
    decode_heatmaps,
    get_affine_transform,
    to_input,
)
from dcpose_trt.errors import InputError
from dcpose_trt.model.presets import get_preset
from dcpose_trt.runtime.backends.base import Backend, SplitBackend
from dcpose_trt.runtime.backends.opener import MODES, open_backend
from dcpose_trt.runtime.backends.registry import backend_names
from dcpose_trt.runtime.boxes import DEFAULT_MAX_PERSONS, frame_boxes
from dcpose_trt.runtime.prepost import PosePath, choose_pose_path, note_once
from dcpose_trt.runtime.tracker import IoUTracker

log = logging.getLogger(__name__)


@dataclass
class PersonPose:
    """One person: ``keypoints`` float32[17, 3] (x, y, score) in image pixels, ``box`` (x, y, w, h, score)."""

    keypoints: np.ndarray
    box: np.ndarray
    track_id: int = -1

    def to_json(self) -> dict:
        return {
            "track_id": int(self.track_id),
            "box": [round(float(v), 3) for v in self.box],
            "keypoints": [[round(float(v), 3) for v in kp] for kp in self.keypoints],
        }


@dataclass
class FramePoses:
    """The poses of frame ``index`` (its position in the stream: a skipped frame keeps its number) and
    ``image``, the frame they belong to (uint8 BGR, as normalised once; not part of the JSON)."""

    index: int
    persons: list[PersonPose] = field(default_factory=list)
    image: np.ndarray | None = field(default=None, repr=False, compare=False)

    def to_json(self) -> dict:
        return {"frame": self.index, "persons": [p.to_json() for p in self.persons]}


class _Entry:
    """One received frame: the image, its cleaned boxes, their track ids, and (cached mode) backbone output."""

    __slots__ = ("index", "frame", "boxes", "ids", "heatmaps", "centers", "scales", "done")

    def __init__(self, index: int, frame: np.ndarray, boxes: np.ndarray, ids: np.ndarray):
        self.index, self.frame, self.boxes, self.ids = index, frame, boxes, ids
        self.done = False  # its poses were returned
        self.heatmaps: np.ndarray | None = None  # float32[N, 17, h, w], in each box's own crop
        self.centers: np.ndarray | None = None
        self.scales: np.ndarray | None = None


class PoseEstimator:
    """DCPose on a stream of frames.

    Args:
        model: checkpoint (``.pth``), ONNX (a full model; for ``mode="cached"`` a ``--split`` export
            directory), TensorRT plan, or ``None`` for the bundled tiny model.
        backend: ``"auto" | "torch" | "onnxruntime" | "tensorrt" | "tensorrt-rtx"``, or a
            :class:`~dcpose_trt.runtime.backends.base.Backend` instance. ``auto`` opens a plan with the
            builder its sidecar names, an ONNX with ONNX Runtime, and a checkpoint on the CPU with the
            fastest CPU backend measured on this machine (:mod:`~dcpose_trt.runtime.backends.autoselect`); a
            checkpoint given to a backend that runs exported files is exported (and built) once into the
            model cache (:mod:`dcpose_trt.engine.model_cache`).
        preset: preset name for a checkpoint without one recorded (default: read from the file).
        mode: ``"exact"`` crops frames t-1, t, t+1 with frame t's box and runs the backbone on all three
            (the official pipeline); ``"cached"`` runs the backbone once per person per frame and
            re-aligns the neighbours' heatmaps to the key frame's crop (about 3× fewer backbone calls).
        lookahead: ``True`` refines frame t with t-1 and t+1 (one frame of latency); ``False`` is the
            causal mode with t-1 and t-2 (no added latency).
        max_batch: persons per backend call; more persons in a frame are split into several calls.
        device: torch device for the torch backend.
        threads: CPU threads of the backend's session (None: all cores this process may use).
        max_persons: persons per frame (:data:`~dcpose_trt.runtime.boxes.DEFAULT_MAX_PERSONS`); a frame with
            more boxes keeps the highest-scoring ones, with a warning (None: no cap).
        tracker: assigns track ids (default: :class:`~dcpose_trt.runtime.tracker.IoUTracker`); the
            cached mode uses them to find a person's heatmaps in neighbouring frames.
    """

    def __init__(self, model: str | os.PathLike | None = None, backend: str | Backend = "auto",
                 preset: str | None = None, mode: str = "exact", lookahead: bool = True, max_batch: int = 32,
                 device: str = "cpu", tracker: IoUTracker | None = None, threads: int | None = None,
                 max_persons: int | None = DEFAULT_MAX_PERSONS):
        if mode not in MODES:
            raise InputError(f"unknown mode {mode!r}; choose one of: {', '.join(MODES)}")
        if not isinstance(backend, (str, Backend)):
            raise InputError(f"backend must be a name ({', '.join(backend_names())}) or a "
                             f"dcpose_trt.runtime.backends.base.Backend, got {type(backend).__name__}")
        if max_persons is not None and max_persons < 1:
            raise InputError(f"max_persons must be >= 1, got {max_persons}")
        self.backend: Backend = (backend if isinstance(backend, Backend) else
                                 open_backend(model, backend, preset=preset, mode=mode, device=device, threads=threads))
        if mode == "cached" and not isinstance(self.backend, SplitBackend):
            raise InputError(f"mode='cached' needs a split model (backbone + head); the {self.backend.name} "
                             "backend was given a full model: export with 'dcpose-trt export --split'")
        self.preset = get_preset(self.backend.preset_name)
        # The fused GPU crop/decode path where it can run (Triton + torch CUDA), else the CPU path.
        self.pose_path: PosePath
        self.pose_path, note = choose_pose_path(type(self.backend))
        note_once(note)
        self.mode = mode
        self.lookahead = lookahead
        self.max_batch = max(1, int(max_batch))
        self.max_persons = max_persons
        self.tracker = tracker or IoUTracker()
        #: Work done and boxes changed by the box policy, over the estimator's life (not reset per stream).
        self.stats = {"backbone_crops": 0, "person_frames": 0, "boxes_clipped": 0, "boxes_dropped": 0,
                      "boxes_capped": 0, "frames_with_boxes": 0}
        self.reset()

    def close(self) -> None:
        """Release the backend's resources (CUDA buffers, streams, graphs) now."""
        self.backend.close()

    def __enter__(self) -> PoseEstimator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def reset(self) -> None:
        """Forget the stream (start a new video)."""
        self._entries: list[_Entry] = []  # the last up-to-3 frames
        self._count = 0  # the index of the next frame when the caller gives none
        self._shape: tuple[int, ...] | None = None
        self.tracker.reset()

    def _boxes(self, boxes: np.ndarray | Sequence | None, shape: tuple[int, ...], index: int | None) -> np.ndarray:
        """The box policy (:func:`~dcpose_trt.runtime.boxes.frame_boxes`), counted in :attr:`stats`."""
        b, counts = frame_boxes(boxes, shape, self.max_persons)
        for k, v in counts.items():
            self.stats[k] += v
        if counts["boxes_capped"] and self.stats["boxes_capped"] == counts["boxes_capped"]:
            where = f"frame {index}" if index is not None else "a frame"
            log.warning("%s has %d boxes: keeping the %d highest-scoring (max_persons / --max-persons); "
                        "further frames over the cap are counted in the summary", where,
                        len(b) + counts["boxes_capped"], self.max_persons)
        return b

    # -- one frame window (exact mode) -----------------------------------------------------------
    def estimate(self, window: Sequence[np.ndarray], boxes: np.ndarray | Sequence | None
                 ) -> tuple[np.ndarray, np.ndarray]:
        """Poses on the key frame of ``window`` = [current, previous, next] (BGR frames).

        Returns keypoints float32[N, 17, 3] (x, y, heatmap peak × box score) for the N boxes the box policy
        keeps (:func:`~dcpose_trt.runtime.boxes.frame_boxes` on the key frame) and those boxes float32[N, 5].
        """
        window = [as_bgr8(f) for f in window]
        return self._estimate(window, self._boxes(boxes, window[0].shape, None))

    def _estimate(self, window: Sequence[np.ndarray], boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`estimate` on normalised frames and policy-checked boxes."""
        if len(boxes) == 0:
            return np.zeros((0, 17, 3), np.float32), boxes
        out = []
        backend = self.backend
        for s in range(0, len(boxes), self.max_batch):
            chunk = boxes[s : s + self.max_batch]
            coords, maxvals = self.pose_path(backend, window, chunk, self.preset)
            # The single-frame baseline runs the backbone on the current crop only.
            self.stats["backbone_crops"] += (1 if backend.single_frame else 3) * len(chunk)
            out.append(np.concatenate([coords, (maxvals * chunk[:, 4:5])[..., None]], axis=-1))
        self.stats["person_frames"] += len(boxes)
        return np.concatenate(out).astype(np.float32), boxes

    # -- cached mode ------------------------------------------------------------------------------
    def _split(self) -> SplitBackend:
        assert isinstance(self.backend, SplitBackend)  # checked in __init__ for mode="cached"
        return self.backend

    def _run_backbone(self, e: _Entry) -> None:
        """Backbone once per person of this frame, each in its own box's crop."""
        h, w = self.preset.image_size
        n = len(e.boxes)
        hh, hw = self.preset.heatmap_size
        e.heatmaps = np.zeros((n, 17, hh, hw), np.float32)
        e.centers = np.zeros((n, 2), np.float32)
        e.scales = np.zeros((n, 2), np.float32)
        for s in range(0, n, self.max_batch):
            chunk = e.boxes[s : s + self.max_batch]
            x = np.empty((len(chunk), 3, h, w), np.float32)
            for i, box in enumerate(chunk):
                c, sc = box_to_center_scale(box, w / h)
                trans = get_affine_transform(c, sc, 0.0, (w, h))
                x[i] = to_input(crop_person(e.frame, trans, (h, w)), self.preset.mean, self.preset.std)
                e.centers[s + i], e.scales[s + i] = c, sc
            e.heatmaps[s : s + len(chunk)] = self._split().backbone(x)
            self.stats["backbone_crops"] += len(chunk)

    def _aligned(self, key: _Entry, i: int, other: _Entry) -> np.ndarray:
        """Person ``i`` of ``key`` as seen in ``other``'s heatmaps, warped into ``key``'s crop."""
        assert key.heatmaps is not None and other.heatmaps is not None
        match = np.nonzero(other.ids == key.ids[i])[0] if other is not key else []
        if len(match) == 0:
            return key.heatmaps[i]  # no neighbour for this person: the key frame stands in (as at a boundary)
        j = int(match[0])
        hh, hw = self.preset.heatmap_size
        to_key = get_affine_transform(key.centers[i], key.scales[i], 0.0, (hw, hh))
        from_other = get_affine_transform(other.centers[j], other.scales[j], 0.0, (hw, hh), inv=True)
        # heatmap(other crop) -> image -> heatmap(key crop)
        m = to_key[:, :2] @ from_other
        m[:, 2] += to_key[:, 2]
        hm = other.heatmaps[j].transpose(1, 2, 0)
        warped = cv2.warpAffine(np.ascontiguousarray(hm), m, (hw, hh), flags=cv2.INTER_LINEAR)
        return warped.reshape(hh, hw, -1).transpose(2, 0, 1)

    def _cached_result(self, key: _Entry, prev: _Entry, nxt: _Entry) -> np.ndarray:
        n = len(key.boxes)
        if n == 0:
            return np.zeros((0, 17, 3), np.float32)
        assert key.heatmaps is not None
        p = np.stack([self._aligned(key, i, prev) for i in range(n)])
        q = np.stack([self._aligned(key, i, nxt) for i in range(n)])
        out = []
        for s in range(0, n, self.max_batch):
            sl = slice(s, s + self.max_batch)
            margin = np.ones((len(key.boxes[sl]), 2), np.float32)
            hm = self._split().head(key.heatmaps[sl], p[sl], q[sl], margin)
            coords, maxvals = decode_heatmaps(hm, key.centers[sl], key.scales[sl])
            out.append(np.concatenate([coords, (maxvals * key.boxes[sl, 4:5])[..., None]], axis=-1))
        self.stats["person_frames"] += n
        return np.concatenate(out).astype(np.float32)

    # -- streaming ------------------------------------------------------------------------------
    def _result(self, key: _Entry, prev: _Entry, nxt: _Entry) -> FramePoses:
        if self.mode == "cached":
            kps = self._cached_result(key, prev, nxt)
        else:
            kps, _ = self._estimate([key.frame, prev.frame, nxt.frame], key.boxes)
        persons = [PersonPose(kps[i], key.boxes[i], int(key.ids[i])) for i in range(len(key.boxes))]
        key.done = True
        return FramePoses(key.index, persons, key.frame)

    def process(self, frame: np.ndarray, boxes: np.ndarray | Sequence[Sequence[float]] | None,
                index: int | None = None) -> list[FramePoses]:
        """Push the next frame and its person boxes (x, y, w, h[, score]); returns 0 or 1 results.

        ``index`` is the frame's position in the source (default: one more than the last one), so a caller
        that skips an unreadable frame keeps the numbering. With look-ahead the result is for the previous
        frame; a change of frame size finishes the current shot (its last frame is returned too) and starts
        a new one.
        """
        frame = as_bgr8(frame)
        index = self._count if index is None else int(index)
        if self._shape is not None and frame.shape != self._shape:
            done = self.flush()
            self._count = index  # the stream goes on: a default index continues after the finished shot
            return done + self.process(frame, boxes, index)
        self._shape = frame.shape
        b = self._boxes(boxes, frame.shape, index)
        self.stats["frames_with_boxes"] += bool(len(b))
        e = _Entry(index, frame, b, self.tracker.update(b))
        if self.mode == "cached":
            self._run_backbone(e)
        self._entries = (self._entries + [e])[-3:]
        self._count = index + 1
        es = self._entries
        if not self.lookahead:
            prev = es[-2] if len(es) >= 2 else e
            prev2 = es[-3] if len(es) >= 3 else prev
            return [self._result(e, prev, prev2)]
        if len(es) < 2:
            return []
        key, nxt = es[-2], es[-1]
        prev = es[-3] if len(es) >= 3 else key
        return [self._result(key, prev, nxt)]

    def flush(self) -> list[FramePoses]:
        """Return the poses of every frame received and not yet returned, then forget the stream.

        Normally that is the last frame (it stands in for its own next frame). After an interrupted
        :meth:`process` (Ctrl-C during the model call) it is also the frame that call was refining, with
        the neighbours it would have had, so the output has no gap.
        """
        es, out = self._entries, []
        for j, key in enumerate(es):
            if key.done:
                continue
            prev = es[j - 1] if j > 0 else key
            if self.lookahead:
                out.append(self._result(key, prev, es[j + 1] if j + 1 < len(es) else key))
            else:
                out.append(self._result(key, prev, es[j - 2] if j > 1 else prev))
        self.reset()
        return out

    def run(self, frames: Iterable[np.ndarray], boxes: Iterable[np.ndarray | Sequence | None]) -> list[FramePoses]:
        """Whole video: poses for every frame, in order (frames numbered from 0; the stream loop of
        :func:`~dcpose_trt.runtime.stream.stream_poses`). The results do not keep the images."""
        from dcpose_trt.runtime.stream import stream_poses

        table: dict[int, object] = {}

        def numbered() -> Iterable[tuple[int, np.ndarray]]:
            for i, (frame, b) in enumerate(zip(frames, boxes, strict=True)):
                table[i] = b
                yield i, frame

        out = []
        for r in stream_poses(self, numbered(), lambda i, _frame: table.pop(i)):
            r.image = None
            out.append(r)
        return out
