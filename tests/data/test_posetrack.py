"""PoseTrack17/18 annotation and box-file readers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dcpose_trt.data.posetrack import (
    COCO17_TO_PT15,
    PT15_TO_COCO17,
    clean_box,
    frame_path,
    load_split,
    load_video,
    read_boxes_file,
    video_document,
    write_boxes_file,
    write_video_annotations,
)
from dcpose_trt.errors import DataError

SAMPLE = "posetrack18_sample"


class TestPoseTrack18Sample:
    def test_loads(self, shared_data):
        idx = load_split(shared_data / SAMPLE, "val")
        assert sorted(idx.videos) == ["003418_mpii_test", "009473_mpii_test", "012834_mpii_test"]
        v = idx.videos["003418_mpii_test"]
        assert (v.nframes, v.digits, v.first_index) == (149, 6, 0)
        (f,) = v.frames
        assert f.index == 0 and f.labeled and f.path.is_file() and f.image_id == 10034180000
        assert len(f.ignore_regions) == 9 and f.ignore_regions[0].shape[1] == 2
        (p,) = f.persons
        assert p.keypoints.shape == (17, 3) and p.keypoints.dtype == np.float32
        np.testing.assert_allclose(p.keypoints[0], [621, 471, 1])
        assert p.head_box == (346, 337, 296, 237) and p.track_id == 0
        assert not p.annotated[3:5].any() and p.annotated.sum() == 11
        assert [len(idx.videos[n].frames[0].persons) for n in sorted(idx.videos)] == [1, 2, 11]

    def test_frame_paths(self, shared_data):
        idx = load_split(shared_data / SAMPLE, "val")
        p = idx.frame_path("009473_mpii_test", 12)
        assert p == shared_data / SAMPLE / "images/val/009473_mpii_test/000012.jpg"
        assert frame_path("x", 1, 8) == Path("x/00000001.jpg")
        assert idx.videos["009473_mpii_test"].neighbours(0) == (0, 1)
        assert idx.videos["009473_mpii_test"].neighbours(100) == (99, 100)

    def test_gt_and_detection_boxes(self, shared_data):
        idx = load_split(shared_data / SAMPLE, "val")
        boxes = read_boxes_file(shared_data / SAMPLE / "annotations/test_posetrack18_human_detections.json")
        assert sum(len(b) for b in boxes.values()) == 278 and set(boxes) == {
            10034180000,
            10094730000,
            10128340000,
        }
        assert idx.attach_detections(boxes) == 3
        d = idx.boxes("012834_mpii_test", 0, "detections")
        assert d.shape[1] == 5 and (d[:, 4] >= 0.2).all() and len(d) < len(boxes[10128340000])
        g = idx.boxes("009473_mpii_test", 0, "gt")
        assert g.shape == (2, 5) and (g[:, 4] == 1).all()


def test_boxes_json_of_the_clip(shared_data):
    b = read_boxes_file(shared_data / SAMPLE / "videos/000001_mpiinew_test/boxes.json")
    assert sorted(b) == [0, 1, 2, 3, 4]
    assert b[0][0] == (356.0, 262.0, 212.0, 322.0, 1.0) and all(len(v) == 3 for v in b.values())


def _pt17_doc() -> dict:
    # PoseTrack17: 8-digit, 1-indexed names; points by PoseTrack id; head box as x1..y2.
    def frame(i, people):
        return {
            "image": [{"name": f"images/bonn/000342_mpii/{i:08d}.jpg"}],
            "imgnum": [i],
            "annorect": people,
        }

    person = {
        "x1": [10],
        "y1": [20],
        "x2": [30],
        "y2": [50],
        "track_id": [4],
        "annopoints": [
            {"point": [{"id": [13], "x": [15.0], "y": [30.0]}, {"id": [0], "x": [40], "y": [90]}]}
        ],
    }
    return {"annolist": [frame(1, [person]), frame(2, []), frame(3, [])]}


def test_posetrack17(tmp_path):
    fp = tmp_path / "annotations" / "val" / "000342_mpii.json"
    fp.parent.mkdir(parents=True)
    fp.write_text(json.dumps(_pt17_doc()))
    v = load_video(fp)
    assert (v.digits, v.first_index, v.nframes) == (8, 1, 3)
    assert v.frame_path(1) == tmp_path / "images/bonn/000342_mpii/00000001.jpg"
    assert list(v.frame_indices()) == [1, 2, 3] and v.neighbours(3) == (2, 3)
    (p,) = v.frames[0].persons
    np.testing.assert_allclose(p.keypoints[0], [15, 30, 1])  # nose
    np.testing.assert_allclose(p.keypoints[16], [40, 90, 1])  # right ankle
    assert p.annotated.sum() == 2 and p.head_box == (10, 20, 20, 30) and p.track_id == 4
    # poseval's convert: keypoint extent x 1.3 about the centre
    np.testing.assert_allclose(p.bbox, (27.5 - 16.25, 60 - 39, 32.5, 78))
    assert v.frames[0].labeled and not v.frames[1].labeled


def test_joint_maps_are_inverse():
    assert sorted(PT15_TO_COCO17) == [0, 1, 2, *range(5, 17)]
    assert all(PT15_TO_COCO17[p] == c for c, p in COCO17_TO_PT15.items())


def test_clean_box():
    assert clean_box((-5, 10, 50, 500), 40, 100) == (0, 10, 39, 89)


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("{not json", "not valid JSON"),
        ('{"foo": 1}', "expected a list"),
        ('[{"bbox": [1, 2, 3], "image_id": 1}]', r"bbox must be \[x, y, w, h\]"),
        ('[{"bbox": [1, 2, 3, "a"], "image_id": 1}]', "finite number"),
        ('[{"bbox": [1, 2, -3, 4], "image_id": 1}]', "negative size"),
        ('[{"bbox": [1, 2, 3, 4]}]', "none of image_name"),
        ('[{"image_id": 3}]', "has no 'bbox'"),
        ("[1]", "not an object"),
    ],
)
def test_malformed_box_files(tmp_path, content, match):
    fp = tmp_path / "d.json"
    fp.write_text(content)
    with pytest.raises(DataError, match=match):
        read_boxes_file(fp)


@pytest.mark.parametrize(
    ("doc", "match"),
    [
        ({"x": 1}, "not a PoseTrack annotation file"),
        ({"images": []}, "non-empty list"),
        ({"images": [{"id": 1}]}, "no 'file_name'"),
        ({"images": [{"id": 1, "file_name": "v/abc.jpg"}]}, "frame number"),
        (
            {"images": [{"id": 1, "file_name": "v/000001.jpg"}], "annotations": [{"image_id": 2}]},
            "unknown image_id",
        ),
        (
            {
                "images": [{"id": 1, "file_name": "v/000001.jpg"}],
                "annotations": [{"image_id": 1, "keypoints": [1, 2]}],
            },
            "triples",
        ),
        ({"annolist": [{"annorect": []}]}, "no image name"),
    ],
)
def test_malformed_annotation_files(tmp_path, doc, match):
    fp = tmp_path / "v.json"
    fp.write_text(json.dumps(doc))
    with pytest.raises(DataError, match=match):
        load_video(fp, tmp_path)
    assert "\n" not in str(pytest.raises(DataError, load_video, fp, tmp_path).value)


def test_missing_split(tmp_path):
    with pytest.raises(DataError, match="no annotation folder"):
        load_split(tmp_path, "val")


_box = st.tuples(*[st.floats(0, 2000, allow_nan=False)] * 4)
_entry = st.fixed_dictionaries({
    "image_id": st.integers(1, 5),
    "bbox": _box,
    "score": st.floats(0, 1),
    "category_id": st.sampled_from([1, 1, 1, 2]),
})  # fmt: skip


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(entries=st.lists(_entry, max_size=20), min_score=st.floats(0, 1))
def test_detection_roundtrip(tmp_path, entries, min_score):
    fp = tmp_path / "d.json"
    write_boxes_file(fp, [{**e, "bbox": list(e["bbox"])} for e in entries])
    got = read_boxes_file(fp, min_score=min_score)
    want: dict[int, list] = {}
    for e in entries:
        if e["category_id"] == 1 and e["score"] >= min_score:
            want.setdefault(e["image_id"], []).append((*e["bbox"], e["score"]))
    assert got == want


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda c: (
        st.lists(c, max_size=4)
        | st.dictionaries(st.sampled_from(["bbox", "image_id", "score", "frame", "x"]), c)
    ),
    max_leaves=12,
)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(doc=_json)
def test_arbitrary_json_gives_data_error_or_boxes(tmp_path, doc):
    # Whatever the content, the reader either returns boxes or raises DataError: never a bug's traceback.
    fp = tmp_path / "d.json"
    fp.write_text(json.dumps(doc))
    try:
        out = read_boxes_file(fp)
    except DataError as exc:
        assert "\n" not in str(exc)
    else:
        assert all(len(r) == 5 for rows in out.values() for r in rows)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    doc=st.fixed_dictionaries({"images": _json, "annotations": _json})
    | st.fixed_dictionaries({"annolist": _json})
)
def test_arbitrary_annotation_json_gives_data_error(tmp_path, doc):
    fp = tmp_path / "v.json"
    fp.write_text(json.dumps(doc))
    try:
        load_video(fp, tmp_path)
    except DataError as exc:
        assert "\n" not in str(exc)


def test_video_document_roundtrip(tmp_path, shared_data):
    sample = json.loads((shared_data / SAMPLE / "annotations/val/009473_mpii_test.json").read_text())
    image = {"file_name": "images/val/000007_x/000000.jpg", "nframes": 1, "frame_id": 10000070000,
             "vid_id": "000007", "id": 10000070000, "is_labeled": True, "width": 64, "height": 48,
             "ignore_regions_x": [[1, 5, 5, 1]], "ignore_regions_y": [[2, 2, 6, 6]]}
    kp = [0.0] * 51
    kp[0:3] = [10.5, 12.0, 1]
    ann = {"image_id": 10000070000, "track_id": 3, "keypoints": kp, "bbox": [5, 6, 20, 30],
           "bbox_head": [8, 7, 6, 5], "category_id": 1, "id": 1}
    doc = video_document([image], [ann])
    assert doc.keys() == sample.keys()
    assert doc["categories"] == [{k: sample["categories"][0][k] for k in doc["categories"][0]}]
    path = tmp_path / "annotations" / "val" / "000007_x.json"
    assert write_video_annotations(path, [image], [ann]) == path
    assert json.loads(path.read_text()) == doc
    assert [p.name for p in path.parent.iterdir()] == ["000007_x.json"]  # no temporary left behind
    v = load_video(path, tmp_path)
    (f,) = v.frames
    (person,) = f.persons
    np.testing.assert_allclose(person.keypoints[0], [10.5, 12.0, 1])
    assert person.track_id == 3 and len(f.ignore_regions) == 1


def test_read_frame_skips_a_header_claiming_100000_squared_pixels(tmp_path):
    """Issue 21 item 9: OpenCV raised cv2.error on such a header (CV_IO_MAX_IMAGE_PIXELS); read_frame now
    reports it as any unreadable frame (DataError), through the frame readers' one helper."""
    import struct
    import zlib

    from dcpose_trt.data.posetrack import read_frame

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    huge = tmp_path / "000000.png"
    huge.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b""))
    with pytest.raises(DataError, match="cannot read image"):
        read_frame(str(huge))
    with pytest.raises(DataError, match="cannot read image"):
        read_frame(str(tmp_path / "missing.jpg"))  # the same as a missing frame
