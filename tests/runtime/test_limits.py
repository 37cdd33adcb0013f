"""Issue 21 items 8 and 9: a per-frame person cap (10^5 boxes crashed the tracker with a 74.5 GiB
allocation), a bounded tracker, `bench --persons` bounded like `build --persons`, and a frame whose header
claims 100000x100000 pixels skipped like any unreadable frame; issue 20: `run` without outputs says so."""

from __future__ import annotations

import json
import logging
import shutil
import struct
import zlib

import numpy as np
import pytest

from dcpose_trt.cli import main
from dcpose_trt.data.video import FrameSource, imread
from dcpose_trt.errors import InputError
from dcpose_trt.runtime import PoseEstimator
from dcpose_trt.runtime.boxes import DEFAULT_MAX_PERSONS
from dcpose_trt.runtime.tracker import IoUTracker


def _png_header(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` (valid chunk CRCs, a few bytes of data)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b"")


def test_a_frame_claiming_100000_squared_pixels_is_skipped(clip, tmp_path, caplog):
    frames = tmp_path / "frames"
    frames.mkdir()
    for p in sorted(clip.glob("*.jpg")):
        shutil.copy(p, frames / p.name)
    (frames / "000002.jpg").unlink()
    (frames / "000002.png").write_bytes(_png_header(100_000, 100_000))
    src = FrameSource(frames)
    assert [i for i, _ in src.indexed()] == [0, 1, 3, 4] and src.skipped == 1
    with pytest.raises(InputError, match="cannot read image"):
        imread(frames / "000002.png")
    assert main(["run", "--video", str(frames), "--boxes", str(clip / "boxes.json"), "--backend", "torch",
                 "--json", str(tmp_path / "o.json")]) == 0
    assert [f["frame"] for f in json.loads((tmp_path / "o.json").read_text())["frames"]] == [0, 1, 3, 4]


def test_a_frame_with_100000_boxes_keeps_the_highest_scoring(caplog):
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 255, (120, 160, 3), dtype=np.uint8)
    n = 100_000
    boxes = np.column_stack([rng.uniform(0, 100, n), rng.uniform(0, 60, n), np.full(n, 40.0), np.full(n, 50.0),
                             rng.uniform(0, 0.9, n)]).astype(np.float32)
    best = np.sort(np.argsort(-boxes[:, 4])[:3])
    boxes[best, 4] = [0.95, 0.96, 0.97]
    with caplog.at_level(logging.WARNING), PoseEstimator(backend="torch", max_persons=3, lookahead=False) as est:
        (r,) = est.process(frame, boxes)
    assert np.allclose([p.box for p in r.persons], boxes[best])
    assert est.stats["boxes_capped"] == n - 3 and "highest-scoring" in caplog.text
    assert DEFAULT_MAX_PERSONS >= 32  # crowded PoseTrack frames fit under the default
    with pytest.raises(InputError, match="max_persons"):
        PoseEstimator(backend="torch", max_persons=0)


def test_the_tracker_keeps_at_most_max_tracks():
    tr = IoUTracker(max_tracks=50)
    for t in range(6):  # 40 new, disjoint people per frame: nobody matches
        boxes = np.array([[1000 * t + 20 * i, 0, 10, 10, 1] for i in range(40)], np.float32)
        ids = tr.update(boxes)
        assert len(tr._tracks) <= 50 and len(set(ids.tolist())) == 40


def test_bench_persons_is_bounded_like_build(capsys):
    assert main(["bench", "--persons", "1000000", "--backends", "torch", "--precisions", "fp32"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--persons" in err[0] and "Traceback" not in err[0]


def test_run_without_outputs_says_nothing_is_written(clip, capsys):
    assert main(["run", "--video", str(clip), "--boxes", str(clip / "boxes.json"), "--backend", "torch",
                 "--max-frames", "2"]) == 0
    assert "no --out or --json" in capsys.readouterr().err
