"""``--detect-every N`` in the one stream loop (issue 22 §3): the box source runs on every N-th frame,
each person's box comes from their keypoints in between, and every frame still gets its poses.

The box source is a real one (:class:`~dcpose_trt.runtime.detector.BoxSource`) over a synthetic video's
own detections file (a detector that finds these figures), recording the frames it is called on. Poses
come from the bundled tiny checkpoint on the torch backend.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from dcpose_trt.cli import main
from dcpose_trt.data.synth import SynthConfig, generate
from dcpose_trt.data.video import BoxesFromFile, FrameSource
from dcpose_trt.errors import InputError
from dcpose_trt.runtime import PoseEstimator, stream_poses
from dcpose_trt.runtime.detector import BoxSource
from dcpose_trt.runtime.pipeline import RunConfig, run_video

FRAMES = 10


@pytest.fixture(scope="module")
def synth(tmp_path_factory) -> tuple[Path, Path]:
    """``(folder of the video's frames, synth's detections file)``."""
    root = tmp_path_factory.mktemp("synth")
    generate(SynthConfig(out=root, videos=1, frames=FRAMES, seed=3, split_ratio=0.0, workers=1))
    return next((root / "images" / "val").iterdir()), root / "detections" / "val.json"


@pytest.fixture(scope="module")
def est() -> PoseEstimator:
    return PoseEstimator(None, backend="torch")


def _detector(frames: Path, detections: Path, calls: list[int], kind: str = "detector") -> BoxSource:
    source = FrameSource(frames)
    table = BoxesFromFile(detections, source.names(), 0.2, frames=len(source), video=frames.name)

    def detect(index: int, frame: np.ndarray) -> np.ndarray:
        calls.append(index)
        return table(index, frame)

    return BoxSource(detect, kind, "synth detections")


def _poses(results) -> list[tuple[int, list[np.ndarray], list[np.ndarray]]]:
    return [(r.index, [p.keypoints for p in r.persons], [p.box for p in r.persons]) for r in results]


def test_every_frame_is_the_loop_of_before(synth, est):
    """N = 1: the same calls and exactly the same poses as the loop without the option."""
    frames, detections = synth
    calls_before: list[int] = []
    boxes = _detector(frames, detections, calls_before)
    est.reset()
    before = []
    for index, frame in FrameSource(frames).indexed():  # the loop as it was: boxes of every frame, then flush
        before += est.process(frame, boxes(index, frame), index)
    before += est.flush()
    calls: list[int] = []
    after = list(stream_poses(est, FrameSource(frames).indexed(), _detector(frames, detections, calls),
                              detect_every=1))
    assert calls == calls_before == list(range(FRAMES))
    a, b = _poses(after), _poses(before)
    assert [x[0] for x in a] == [x[0] for x in b] == list(range(FRAMES))
    for (_, kp_a, box_a), (_, kp_b, box_b) in zip(a, b, strict=True):
        assert len(kp_a) == len(kp_b) > 0
        for x, y in zip(kp_a + box_a, kp_b + box_b, strict=True):
            np.testing.assert_array_equal(x, y)


def test_every_third_frame_detects_and_the_poses_fill_in(synth, est):
    frames, detections = synth
    calls: list[int] = []
    results = list(stream_poses(est, FrameSource(frames).indexed(), _detector(frames, detections, calls),
                                detect_every=3))
    assert calls == [0, 3, 6, 9]  # the detector on frames 0, 3, 6, 9 only
    assert [r.index for r in results] == list(range(FRAMES))
    assert all(len(r.persons) > 0 for r in results)  # poses on every frame
    # Between detections the boxes are the poses' (not the detector's, which was not asked for them).
    table = BoxesFromFile(detections, FrameSource(frames).names(), 0.2, frames=FRAMES, video=frames.name)
    followed = np.stack([p.box for p in results[2].persons])
    detected = table(2, None)
    assert followed.shape != detected.shape or not np.allclose(followed[:, :4], detected[:, :4])


def test_a_boxes_file_is_read_on_every_frame(synth, est):
    """A boxes file costs nothing to read: --detect-every does not replace its boxes with followed ones."""
    frames, detections = synth
    calls: list[int] = []
    results = list(stream_poses(est, FrameSource(frames).indexed(), _detector(frames, detections, calls, "file"),
                                detect_every=3))
    assert calls == list(range(FRAMES)) and len(results) == FRAMES


def test_run_and_predict_take_detect_every(synth, tmp_path, capsys):
    """The CLI: `run --detect-every 3` with the built-in detector gives poses on every frame and says how
    often the detector ran; `predict --videos` takes the option too."""
    frames, _ = synth
    out = tmp_path / "poses.json"
    assert main(["run", "--video", str(frames), "--detect-every", "3", "--json", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert [f["frame"] for f in doc["frames"]] == list(range(FRAMES))
    assert 4 <= doc["summary"]["detector_runs"] <= FRAMES  # at least frames 0, 3, 6, 9
    capsys.readouterr()
    assert main(["predict", "--videos", str(frames.parent / "*"), "--detect-every", "3",
                 "--out", str(tmp_path / "predict")]) == 0, capsys.readouterr().err
    assert len(json.loads((tmp_path / "predict" / f"{frames.name}.json").read_text())["frames"]) == FRAMES


@pytest.mark.parametrize("verb", ["run", "predict"])
@pytest.mark.parametrize("n", ["0", "-2"])
def test_bad_detect_every_is_one_line(verb, n, synth, tmp_path, capsys):
    frames, _ = synth
    args = (["run", "--video", str(frames)] if verb == "run" else
            ["predict", "--videos", str(frames.parent / "*"), "--out", str(tmp_path / "o")])
    assert main([*args, "--detect-every", n]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0] == f"dcpose-trt {verb}: error: --detect-every must be an integer >= 1 " \
        f"(1: the detector on every frame), got {n}", err
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())


def test_bad_detect_every_in_the_api(synth):
    frames, _ = synth
    with pytest.raises(InputError, match="--detect-every"):
        run_video(RunConfig(str(frames), backend="torch", detect_every=0), progress=False)
    with pytest.raises(InputError, match="--detect-every"):
        list(stream_poses(PoseEstimator(None, backend="torch"), [], lambda i, f: None, detect_every=1.5))
