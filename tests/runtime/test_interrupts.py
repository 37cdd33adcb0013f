"""Issue 21 item 4: an interrupted `run` keeps frames 0..k with no gap (Ctrl-C used to lose the frame in
flight: 154 -> 156), SIGTERM is handled like Ctrl-C (outputs published, no temporaries), and a temporary
left by a process killed outright (SIGKILL) is removed by the next run writing the same path.

The interrupt is raised from inside the real torch model call (the frame in flight), by a backend that
forwards to the bundled model and interrupts its k-th call.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from dcpose_trt.runtime import PoseEstimator, TorchBackend
from dcpose_trt.runtime.backends.base import Backend
from dcpose_trt.runtime.pipeline import RunConfig, run_video

REPO = Path(__file__).resolve().parents[2]


class InterruptAt(Backend):
    """The bundled torch model; its ``at``-th call raises KeyboardInterrupt (or sends ``signum``) instead."""

    def __init__(self, at: int, signum: int | None = None):
        self.inner = TorchBackend.from_checkpoint(None)
        self.name, self.preset_name, self.input_size = "torch", self.inner.preset_name, self.inner.input_size
        self.at, self.signum, self.n = at, signum, 0

    def _infer_impl(self, frames, margin):
        self.n += 1
        if self.n == self.at:
            if self.signum is None:
                raise KeyboardInterrupt
            os.kill(os.getpid(), self.signum)
        return self.inner.infer(frames, margin)


@pytest.fixture(scope="module")
def clip(shared_data, tmp_path_factory) -> Path:
    src = shared_data / "posetrack18_sample" / "videos" / "000001_mpiinew_test"
    if not (src / "boxes.json").is_file():
        pytest.skip("real clip not found")
    d = tmp_path_factory.mktemp("clip")
    for p in sorted(src.glob("*.jpg")) + [src / "boxes.json"]:
        shutil.copy(p, d / p.name)
    return d


def test_ctrl_c_in_the_model_call_keeps_the_frame_in_flight(clip, tmp_path):
    # Call 3 refines frame 2 (look-ahead: the call made while frame 3 arrives); Ctrl-C lands inside it.
    est = PoseEstimator(backend=InterruptAt(3))
    summary = run_video(RunConfig(str(clip), boxes=str(clip / "boxes.json"), out=str(tmp_path / "o.mp4"),
                                  json_out=str(tmp_path / "o.json")), estimator=est, progress=False)
    doc = json.loads((tmp_path / "o.json").read_text())
    assert summary.interrupted and doc["summary"]["interrupted"]
    assert [f["frame"] for f in doc["frames"]] == [0, 1, 2, 3]  # no gap: frame 2 was in flight
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.json", "o.mp4"]


def test_ctrl_c_in_causal_mode_keeps_the_frame_in_flight(clip, tmp_path):
    est = PoseEstimator(backend=InterruptAt(3), lookahead=False)
    run_video(RunConfig(str(clip), boxes=str(clip / "boxes.json"), json_out=str(tmp_path / "o.json")),
              estimator=est, progress=False)
    assert [f["frame"] for f in json.loads((tmp_path / "o.json").read_text())["frames"]] == [0, 1, 2]


SIGTERM_RUN = textwrap.dedent("""
    import signal, sys
    sys.path.insert(0, sys.argv[1])
    from test_interrupts import InterruptAt
    from dcpose_trt.runtime import PoseEstimator
    from dcpose_trt.runtime.pipeline import RunConfig, run_video

    out = sys.argv[3]
    s = run_video(RunConfig(sys.argv[2], boxes=sys.argv[2] + "/boxes.json", out=out + "/o.mp4",
                            json_out=out + "/o.json"),
                  estimator=PoseEstimator(backend=InterruptAt(3, signal.SIGTERM)), progress=False)
    print("interrupted", s.interrupted)
""")


def test_sigterm_is_handled_like_ctrl_c(clip, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    r = subprocess.run([sys.executable, "-c", SIGTERM_RUN, str(Path(__file__).parent), str(clip), str(tmp_path)],
                       capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, (r.returncode, r.stderr[-2000:])  # not killed by the signal
    assert "interrupted True" in r.stdout
    doc = json.loads((tmp_path / "o.json").read_text())
    assert [f["frame"] for f in doc["frames"]] == [0, 1, 2, 3] and doc["summary"]["interrupted"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.json", "o.mp4"]  # no hidden temporaries


KILLED_WRITER = textwrap.dedent("""
    import os, signal, sys
    from dcpose_trt._atomic import temp_path
    tmp = temp_path(sys.argv[1], ".mp4")
    tmp.write_bytes(b"half a video")
    os.kill(os.getpid(), signal.SIGKILL)
""")


def test_a_temporary_left_by_sigkill_is_removed_by_the_next_run(clip, tmp_path):
    out = tmp_path / "o.mp4"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    r = subprocess.run([sys.executable, "-c", KILLED_WRITER, str(out)], env=env, timeout=120)
    assert r.returncode == -signal.SIGKILL
    orphans = [p.name for p in tmp_path.iterdir()]
    assert len(orphans) == 1 and orphans[0].startswith(".o.mp4.")
    run_video(RunConfig(str(clip), backend="torch", boxes=str(clip / "boxes.json"), out=str(out), max_frames=2),
              progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.mp4"]


def test_a_live_writers_temporary_is_left_alone(tmp_path):
    from dcpose_trt._atomic import atomic_write_text, temp_path

    mine = temp_path(tmp_path / "a.json")  # this process is alive: not an orphan
    atomic_write_text(tmp_path / "a.json", "{}")
    assert mine.exists()
