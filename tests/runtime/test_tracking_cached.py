"""Tracker stability, cached-backbone mode, box sources, the YOLO decode and the `run` verb."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from dcpose_trt.cli import main
from dcpose_trt.data.posetrack import load_split
from dcpose_trt.data.synth import SynthConfig, generate
from dcpose_trt.errors import InputError
from dcpose_trt.runtime import PoseEstimator, TorchBackend
from dcpose_trt.runtime.backends.base import Backend, SplitBackend
from dcpose_trt.runtime.detector import decode_yolo, letterbox
from dcpose_trt.runtime.tracker import IoUTracker, iou_matrix


@pytest.fixture(scope="module")
def synth_video(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    generate(SynthConfig(out=root, videos=3, frames=24, seed=3, split_ratio=0.0, workers=1))
    data = load_split(root, "val")
    # the video with the most people: crossings happen mid-video
    video = max(data.videos.values(), key=lambda v: max(len(f.persons) for f in v.frames))
    return root, video


@pytest.fixture(scope="module")
def model(tiny_model_perturbed):
    return tiny_model_perturbed


def test_iou_matrix():
    a = np.array([[0, 0, 10, 10], [20, 20, 10, 10]], float)
    b = np.array([[5, 0, 10, 10]], float)
    np.testing.assert_allclose(iou_matrix(a, b), [[50 / 150], [0]])


def test_tracker_ids_stable_through_crossings(synth_video):
    _, video = synth_video
    assert max(len(f.persons) for f in video.frames) >= 2
    tracker = IoUTracker()
    rng = np.random.default_rng(0)
    mapping: dict[int, int] = {}
    for f in video.frames:
        persons = [p for p in f.persons if p.bbox is not None and p.bbox[2] > 2 and p.bbox[3] > 2]
        order = rng.permutation(len(persons))  # detector order is arbitrary
        boxes = np.array([[*persons[i].bbox, 1.0] for i in order], float).reshape(-1, 5)
        ids = tracker.update(boxes)
        for k, i in enumerate(order):
            gt = persons[i].track_id
            assert mapping.setdefault(gt, int(ids[k])) == ids[k], f"frame {f.index}: GT track {gt} switched id"
    assert len(set(mapping.values())) == len(mapping)


class _Counting(SplitBackend):
    """Wraps a backend and counts backbone crops (no fakes: the real torch model runs)."""

    def __init__(self, inner):
        self.inner, self.name = inner, inner.name
        self.preset_name, self.input_size = inner.preset_name, inner.input_size
        self.crops = 0

    def _infer_impl(self, frames, margin):
        self.crops += 3 * len(frames)
        return self.inner.infer(frames, margin)

    def _backbone_impl(self, x):
        self.crops += len(x)
        return self.inner.backbone(x)

    def _head_impl(self, *a):
        return self.inner.head(*a)


def _frames_and_boxes(video, n=8):
    frames, boxes = [], []
    for f in video.frames[:n]:
        frames.append(cv2.imread(str(f.path)))
        boxes.append(np.array([[*p.bbox, 1.0] for p in f.persons if p.bbox is not None], np.float32))
    return frames, boxes


def test_cached_mode_one_backbone_call_per_person_frame(synth_video, model):
    _, video = synth_video
    frames, boxes = _frames_and_boxes(video)
    backend = _Counting(TorchBackend(model))
    est = PoseEstimator(backend=backend, mode="cached")
    out = est.run(frames, boxes)
    person_frames = sum(len(b) for b in boxes)
    assert backend.crops == person_frames
    assert [r.index for r in out] == list(range(len(frames)))
    exact_backend = _Counting(TorchBackend(model))
    exact = PoseEstimator(backend=exact_backend, mode="exact").run(frames, boxes)
    assert exact_backend.crops == 3 * person_frames
    # On a near-static first/last frame pair the two modes see the same crops; everywhere they agree roughly.
    d = [np.abs(a.persons[i].keypoints[:, :2] - b.persons[i].keypoints[:, :2]).mean()
         for a, b in zip(out, exact, strict=True) for i in range(len(a.persons))]
    assert np.isfinite(d).all()


def test_cached_mode_equals_exact_for_a_static_person(model, assert_same_poses):
    """Same box in every frame: re-aligned cached heatmaps are exactly the exact mode's crops."""
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 255, (120, 160, 3), dtype=np.uint8) for _ in range(4)]
    boxes = [np.array([[30, 10, 60, 100, 0.9]], np.float32)] * 4
    a = PoseEstimator(backend=TorchBackend(model), mode="cached").run(frames, boxes)
    b = PoseEstimator(backend=TorchBackend(model), mode="exact").run(frames, boxes)
    # Cached mode runs the backbone on another batch size than exact mode: last-bit differences, so the
    # comparison allows argmax near-ties (see assert_same_poses).
    assert_same_poses(np.stack([x.persons[0].keypoints for x in a]), np.stack([y.persons[0].keypoints for y in b]))


def test_cached_mode_needs_split_backend(model):
    class FullOnly(Backend):
        name, preset_name, input_size = "onnxruntime", "tiny-128x96", (128, 96)

        def _infer_impl(self, frames, margin):
            raise AssertionError

    with pytest.raises(InputError, match="--split"):
        PoseEstimator(backend=FullOnly(), mode="cached")
    with pytest.raises(InputError, match="unknown mode"):
        PoseEstimator(backend=TorchBackend(model), mode="fast")


def test_yolo_decode_letterbox_and_nms():
    frame = np.zeros((360, 640, 3), np.uint8)
    img, gain, pad = letterbox(frame, 640)
    assert img.shape == (640, 640, 3) and gain == 1.0 and pad == (0.0, 140.0)
    # Two overlapping candidates for one person, one other person, one low-score and one non-person row.
    rows = np.zeros((4 + 2, 40), np.float32)  # 40 anchors, most empty
    rows[:, 0] = [100, 240, 40, 80, 0.9, 0.0]
    rows[:, 1] = [102, 242, 40, 80, 0.8, 0.0]
    rows[:, 2] = [300, 300, 50, 100, 0.7, 0.0]
    rows[:, 3] = [500, 300, 50, 100, 0.1, 0.0]
    rows[:, 4] = [400, 300, 50, 100, 0.0, 0.95]
    boxes = decode_yolo(rows[None], gain, pad, conf=0.4, iou=0.45)
    assert len(boxes) == 2
    np.testing.assert_allclose(boxes[0], [80, 200 - 140, 40, 80, 0.9], atol=1e-4)
    np.testing.assert_allclose(boxes[1], [275, 250 - 140, 50, 100, 0.7], atol=1e-4)
    assert decode_yolo(rows.T[None], gain, pad).shape == (2, 5)  # [1, A, 4 + C] layout too


def test_run_cli_real_clip(tmp_path, model, shared_data):
    ckpt = tmp_path / "m.pth"
    from dcpose_trt.model import save_checkpoint

    save_checkpoint(model, ckpt, extra={"preset": "tiny-128x96"})
    clip = shared_data / "posetrack18_sample" / "videos" / "000001_mpiinew_test"
    out, js = tmp_path / "o.mp4", tmp_path / "o.json"
    rc = main(["run", "--video", str(clip), "--boxes", str(clip / "boxes.json"), "--model", str(ckpt),
               "--backend", "torch", "--out", str(out), "--json", str(js)])
    assert rc == 0
    doc = json.loads(js.read_text())
    assert len(doc["frames"]) == 5
    person = doc["frames"][0]["persons"][0]
    assert set(person) == {"track_id", "box", "keypoints"} and len(person["keypoints"]) == 17
    ids = [[p["track_id"] for p in f["persons"]] for f in doc["frames"]]
    assert all(i == ids[0] for i in ids)  # the same boxes every frame: the same ids
    cap = cv2.VideoCapture(str(out))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 5
    # the mp4 of the clip works as input too
    rc = main(["run", "--video", str(clip / "000001_mpiinew_test.mp4"), "--boxes", str(clip / "boxes.json"),
               "--model", str(ckpt), "--backend", "torch", "--max-frames", "2"])
    assert rc == 0


def test_run_cli_errors(tmp_path, capsys):
    assert main(["run", "--video", str(tmp_path / "none.mp4"), "--boxes", "x.json"]) == 2
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00" * 100)
    assert main(["run", "--video", str(bad), "--boxes", "x.json"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(e.startswith("dcpose-trt run: error:") for e in err)
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["run", "--video", str(empty), "--boxes", "x.json"]) == 2
