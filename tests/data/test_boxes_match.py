"""The boxes reader (issue 22 §4): frame keys a user may write, which one matched, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dcpose_trt.data.boxes import load_entries, match_video, no_match_message, video_name
from dcpose_trt.data.video import BoxesFromFile, video_windows
from dcpose_trt.errors import DataError, InputError

BOX = [10, 20, 30, 60]


def _write(tmp_path: Path, doc) -> Path:
    p = tmp_path / "boxes.json"
    p.write_text(json.dumps(doc))
    return p


@pytest.mark.parametrize(("entries", "key"), [
    ([{"frame": i, "bbox": BOX} for i in range(4)], "frame"),
    ([{"frame_id": i, "bbox": BOX, "image_id": 10000 + i} for i in range(4)], "frame_id"),
    ([{"image_name": f"{i:06d}.jpg", "bbox": BOX} for i in range(4)], "image number"),
    ([{"image_id": i, "bbox": BOX} for i in range(4)], "image_id"),
])
def test_each_frame_key_matches_a_video_and_says_so(entries, key, tmp_path):
    b = BoxesFromFile(_write(tmp_path, entries), frames=4)
    assert b.matched_on == key and b.match.matched == 4
    assert b.rows(3) == [(10.0, 20.0, 30.0, 60.0, 1.0)]
    assert f"'{key}'" in b.match.describe()


def test_a_folder_matches_on_its_file_names(tmp_path):
    names = ["a.jpg", "b.jpg", "c.jpg"]
    entries = [{"file_name": f"some/where/{n}", "bbox": BOX, "score": 0.5} for n in ("c.jpg", "a.jpg")]
    b = BoxesFromFile(_write(tmp_path, entries), names=names)
    assert b.matched_on == "image name" and sorted(b.table) == [0, 2]
    assert b.mismatch(3) is None


def test_a_split_wide_file_gives_the_entries_of_the_video_named_like_it(tmp_path):
    entries = [{"image_name": f"images/val/{v}/{i:06d}.jpg", "frame_id": i, "bbox": [i, 0, 5, 5]}
               for v in ("vid_a", "vid_b") for i in range(3)]
    path = _write(tmp_path, {"annotations": entries})
    b = BoxesFromFile(path, frames=3, video="vid_b")
    assert b.match.video_filter == "vid_b" and b.matched_on == "frame_id" and b.match.matched == 3
    with pytest.raises(InputError, match=r"boxes of 2 videos \(vid_a, vid_b\); none is named 'other'"):
        BoxesFromFile(path, frames=3, video="other")


def test_no_match_names_every_key_it_tried(tmp_path):
    entries = [{"image_id": 10010000 + i, "image_name": f"x/frame_{i}.png", "bbox": BOX} for i in range(5)]
    b = BoxesFromFile(_write(tmp_path, entries), names=["000000.jpg", "000001.jpg"])
    msg = b.no_match("clip")
    assert msg is not None and "\n" not in msg
    assert "matches no frame of clip (frames 0-1; this video's images are 000000.jpg, 000001.jpg)" in msg
    assert "'image name' (values frame_0.png, frame_1.png, frame_2.png, ...: 0 frame(s))" in msg
    assert "'image_id' (values 10010000" in msg


def test_entries_below_the_score_or_of_another_category_are_dropped(tmp_path):
    entries = [{"frame": 0, "bbox": BOX, "score": 0.1}, {"frame": 0, "bbox": BOX, "category_id": 2},
               {"frame": 1, "bbox": BOX, "score": 0.9}]
    assert len(load_entries(_write(tmp_path, entries), min_score=0.2)) == 1
    m = match_video([], 5)
    assert m.matched == 0 and "holds no person boxes" in no_match_message("f.json", "v", m, 5, None)


@pytest.mark.parametrize(("doc", "needle"), [
    ([{"frame": 0}], "entry 0: 'bbox' is a required property"),
    ([{"frame": 0, "bbox": [1, 2, -3, 4]}], "entry 0 > 'bbox' > entry 2: -3 is less than the minimum of 0"),
    ([{"frame": 0, "bbox": [1, 2, 3]}], "is too short"),
    ([{"bbox": BOX}], "entry 0:"),  # no frame key at all
    ({"boxes": []}, "the document"),
    ([{"frame": "zero", "bbox": BOX}], "'zero' is not of type 'integer'"),
])
def test_a_malformed_boxes_file_is_one_line_saying_where(doc, needle, tmp_path):
    with pytest.raises(DataError) as err:
        load_entries(_write(tmp_path, doc))
    msg = str(err.value)
    assert "\n" not in msg and "not a valid boxes file" in msg and needle in msg, msg


def test_not_json_and_missing_files(tmp_path):
    p = tmp_path / "b.json"
    p.write_text("[{")
    with pytest.raises(DataError, match="not a JSON boxes file"):
        load_entries(p)
    with pytest.raises(InputError, match="boxes file not found"):
        load_entries(tmp_path / "none.json")


def test_video_windows_refuse_a_file_that_fits_no_frame(shared_data, tmp_path):
    clip = shared_data / "posetrack18_sample" / "videos" / "000001_mpiinew_test"
    boxes = _write(tmp_path, [{"frame": 50 + i, "bbox": BOX} for i in range(5)])
    with pytest.raises(InputError, match="matches no frame"):
        next(video_windows(clip, boxes))
    assert len(list(video_windows(clip, clip / "boxes.json"))) == 5


def test_video_names(tmp_path):
    assert video_name(tmp_path) == tmp_path.name
    assert video_name("clips/000001_synth_val.mp4") == "000001_synth_val"
    assert video_name(0) is None and video_name("1") is None
