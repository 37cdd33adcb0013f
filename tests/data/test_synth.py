"""Synthetic PoseTrack18-layout videos: deterministic, schema-valid, readable by our own readers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from dcpose_trt.cli import main
from dcpose_trt.data.posetrack import load_split, read_boxes_file, video_document
from dcpose_trt.data.synth import Difficulty, SynthConfig, generate, render_video, split_of
from dcpose_trt.errors import InputError

SMALL = dict(videos=3, frames=4, size=(160, 120), workers=1)


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def synth(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "a"
    generate(SynthConfig(out=out, seed=7, **SMALL))
    return out


class TestDeterminism:
    def test_same_seed_same_bytes(self, synth, tmp_path):
        # Two workers here, one in the fixture: the output must not depend on it either.
        generate(SynthConfig(out=tmp_path / "b", seed=7, **{**SMALL, "workers": 2}))
        a, b = _files(synth), _files(tmp_path / "b")
        assert a.keys() == b.keys()
        assert all(a[k] == b[k] for k in a), [k for k in a if a[k] != b[k]][:5]

    def test_other_seed_differs(self, synth, tmp_path):
        generate(SynthConfig(out=tmp_path / "c", seed=8, **SMALL))
        a, c = _files(synth), _files(tmp_path / "c")
        assert any(a[k] != c.get(k) for k in a)


def test_rendering_writes_nothing_and_is_what_generate_wrote(synth, tmp_path):
    import cv2

    cfg = SynthConfig(out=tmp_path / "unused", seed=7, **SMALL)
    frames = list(render_video(2, cfg))  # video 3 of the fixture: 000003_synth_val
    assert not (tmp_path / "unused").exists()
    assert [f.index for f in frames] == list(range(SMALL["frames"]))
    for f in frames:
        assert f.image.shape == (120, 160, 3) and f.image.dtype == np.uint8
        ok, jpg = cv2.imencode(".jpg", f.image, [cv2.IMWRITE_JPEG_QUALITY, 90])
        assert ok and jpg.tobytes() == (synth / f.image_entry["file_name"]).read_bytes()
    doc = json.loads((synth / "annotations/val/000003_synth_val.json").read_text())
    assert doc == video_document([f.image_entry for f in frames], [a for f in frames for a in f.annotations])
    written = json.loads((synth / "detections/val.json").read_text())
    assert written == [d for f in frames for d in f.detections]


class TestLayoutAndSchema:
    def test_layout(self, synth):
        assert sorted(p.name for p in (synth / "annotations" / "train").glob("*.json")) == [
            "000001_synth_train.json",
            "000002_synth_train.json",
        ]
        assert [p.name for p in (synth / "annotations" / "val").glob("*.json")] == ["000003_synth_val.json"]
        frames = sorted((synth / "images" / "val" / "000003_synth_val").glob("*.jpg"))
        assert [p.name for p in frames] == [f"{i:06d}.jpg" for i in range(4)]
        assert (synth / "detections" / "train.json").is_file() and (
            synth / "detections" / "val.json"
        ).is_file()

    def test_schema_matches_sample(self, synth, shared_data):
        sample = json.loads(
            (shared_data / "posetrack18_sample/annotations/val/009473_mpii_test.json").read_text()
        )
        doc = json.loads((synth / "annotations/val/000003_synth_val.json").read_text())
        assert doc.keys() == sample.keys()
        assert doc["categories"][0]["keypoints"] == sample["categories"][0]["keypoints"]
        assert doc["categories"][0]["skeleton"] == sample["categories"][0]["skeleton"]
        img_keys = set(sample["images"][0]) - {"mask_file"}  # no masks: ignore regions are polygons
        ann_keys = set(sample["annotations"][0])
        assert len(doc["images"]) == 4
        for i, im in enumerate(doc["images"]):
            assert img_keys <= set(im)
            assert im["nframes"] == 4 and im["id"] == im["frame_id"] == int(f"1000003{i:04d}")
            assert im["file_name"] == f"images/val/000003_synth_val/{i:06d}.jpg"
            assert len(im["ignore_regions_x"]) == len(im["ignore_regions_y"])
        assert doc["annotations"], "every video has at least one annotated person"
        for a in doc["annotations"]:
            assert ann_keys <= set(a)
            kp = np.array(a["keypoints"], float).reshape(17, 3)
            assert set(kp[:, 2]) <= {0.0, 1.0}
            assert (kp[3:5] == 0).all(), "PoseTrack has no ears"
            assert (kp[kp[:, 2] == 0] == 0).all(), "unannotated joints are (0, 0, 0)"
            vis = kp[kp[:, 2] == 1]
            assert ((vis[:, 0] >= 0) & (vis[:, 0] <= 159) & (vis[:, 1] >= 0) & (vis[:, 1] <= 119)).all()
            assert a["num_keypoints"] == int((kp[:, 2] == 1).sum())
            assert a["bbox"][2] > 0 and a["bbox"][3] > 0 and a["bbox_head"][2] > 0 and a["bbox_head"][3] > 0
            assert a["id"] == a["image_id"] * 100 + a["track_id"]

    def test_detections_like_a_detector(self, synth):
        dets = json.loads((synth / "detections/train.json").read_text())
        assert dets and all(
            {"image_id", "image_name", "bbox", "score", "category_id"} <= set(d) for d in dets
        )
        assert all(0 < d["score"] < 1 and d["bbox"][2] > 0 and d["bbox"][3] > 0 for d in dets)
        idx = load_split(synth, "train")
        assert idx.attach_detections(read_boxes_file(synth / "detections/train.json")) > 0

    def test_readers_load_it(self, synth):
        idx = load_split(synth, "val")
        (v,) = idx.videos.values()
        assert v.nframes == 4 and v.digits == 6
        assert idx.frame_path(v.name, 2).is_file()
        assert all(f.labeled == bool(f.persons) for f in v.frames)


def test_val_is_harder():
    easy, hard = Difficulty.for_split("train", True), Difficulty.for_split("val", True)
    assert hard.flash_rate > easy.flash_rate and hard.motion_blur > easy.motion_blur
    assert Difficulty.for_split("val", False) == easy


def test_split_always_has_both():
    cfg = SynthConfig(out=Path("x"), videos=2, split_ratio=0.9)
    assert [split_of(i, cfg) for i in range(2)] == ["train", "val"]


@pytest.mark.parametrize("kw", [dict(videos=0), dict(frames=0), dict(split_ratio=1.5), dict(size=(10, 10))])
def test_bad_config(kw):
    with pytest.raises(InputError):
        SynthConfig(out=Path("x"), **kw)


def test_cli(tmp_path, capsys):
    args = ["synth", "--out", str(tmp_path), "--videos", "2", "--frames", "2", "--size", "96x72"]
    assert main([*args, "--seed", "3", "--workers", "1"]) == 0
    assert "1 train + 1 val" in capsys.readouterr().out
    assert main(["synth", "--out", str(tmp_path), "--videos", "0"]) == 2
    with pytest.raises(SystemExit):
        main(["synth", "--out", str(tmp_path), "--size", "big"])
