"""examples/edge_app.py runs end to end on the real clip."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_edge_app_on_real_clip(tmp_path, shared_data):
    import torch

    from dcpose_trt.model import build_dcpose, save_checkpoint

    torch.manual_seed(0)
    ckpt = tmp_path / "tiny.pth"
    save_checkpoint(build_dcpose("tiny-128x96"), ckpt, extra={"preset": "tiny-128x96"})
    clip = shared_data / "posetrack18_sample" / "videos" / "000001_mpiinew_test"
    proc = subprocess.run(
        [sys.executable, str(REPO / "examples" / "edge_app.py"), "--video", str(clip / "000001_mpiinew_test.mp4"),
         "--boxes", str(clip / "boxes.json"), "--model", str(ckpt)],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [d["frame"] for d in lines] == [0, 1, 2, 3, 4]
    assert all(len(d["persons"]) == 3 and len(d["persons"][0]["keypoints"]) == 17 for d in lines)


def test_edge_app_bad_input(tmp_path):
    proc = subprocess.run([sys.executable, str(REPO / "examples" / "edge_app.py"), "--video",
                           str(tmp_path / "missing.mp4"), "--boxes", "b.json"], capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
