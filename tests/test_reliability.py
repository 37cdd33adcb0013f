"""Bad input end to end: odd frame formats, bad boxes, size changes, and a long streaming run (slow)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dcpose_trt.errors import InputError
from dcpose_trt.model import build_dcpose
from dcpose_trt.runtime import PoseEstimator, TorchBackend


@pytest.fixture(scope="module")
def est():
    torch.manual_seed(0)
    return PoseEstimator(backend=TorchBackend(build_dcpose("tiny-128x96")))


@pytest.mark.parametrize("make", [
    lambda rng: rng.integers(0, 255, (90, 120), dtype=np.uint8),  # grayscale
    lambda rng: rng.integers(0, 255, (90, 120, 1), dtype=np.uint8),  # grayscale with a channel axis
    lambda rng: rng.integers(0, 255, (90, 120, 4), dtype=np.uint8),  # BGRA
    lambda rng: rng.integers(0, 65535, (90, 120, 3), dtype=np.uint16),  # 16-bit
    lambda rng: rng.random((90, 120, 3), dtype=np.float32),  # float in [0, 1]
], ids=["gray", "gray1", "bgra", "uint16", "float"])
def test_frame_formats(est, make):
    rng = np.random.default_rng(0)
    frames = [make(rng) for _ in range(3)]
    out = est.run(frames, [[[10, 10, 40, 60, 0.9]]] * 3)
    assert [r.index for r in out] == [0, 1, 2]
    assert all(np.isfinite(r.persons[0].keypoints).all() for r in out)


def test_unusable_frames_are_one_line_errors(est):
    for bad in (np.zeros((0, 10, 3), np.uint8), np.zeros((4, 4, 2), np.uint8), np.zeros((4, 4, 3), np.int32),
                np.zeros(5, np.uint8)):
        with pytest.raises(InputError):
            est.process(bad, [])
    est.reset()


def test_bad_boxes_are_handled(est):
    frame = np.zeros((90, 120, 3), np.uint8)
    boxes = [[], [[0, 0, 0, 10, 1]], [[5, 5, -3, 10, 1]], [[np.nan, 1, 2, 3, 1]], [[1000, 1000, 20, 40, 1]],
             [[-30, -30, 40, 60, 0.5]]]
    out = est.run([frame] * len(boxes), boxes)
    # Degenerate and NaN boxes give no person; a box wholly outside the frame is dropped and one crossing the
    # border is clipped: the one box policy of run, predict and the API (runtime/boxes.py, issue 20).
    assert [len(r.persons) for r in out] == [0, 0, 0, 0, 0, 1]
    with pytest.raises(InputError):
        est.process(frame, [["a", "b"]])
    est.reset()


def test_frame_size_change_mid_stream(est):
    a, b = np.zeros((90, 120, 3), np.uint8), np.zeros((60, 80, 3), np.uint8)
    box = [[5, 5, 30, 50, 1]]
    out = []
    for f in (a, a, a, b, b):
        out += est.process(f, box)
    out += est.flush()
    assert [r.index for r in out] == [0, 1, 2, 3, 4]


@pytest.mark.slow
def test_long_run_memory_is_flat(tmp_path):
    """10,000 frames through ONNX Runtime (tiny preset): resident memory at the end within 5% of frame 500."""
    from dcpose_trt.export import ExportConfig, export_onnx

    onnx_path = export_onnx(None, tmp_path / "tiny.onnx", ExportConfig(deform="deformconv", check=False))
    est = PoseEstimator(str(onnx_path), backend="onnxruntime")
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 255, (120, 160, 3), dtype=np.uint8) for _ in range(8)]

    def rss() -> int:  # current resident set size (Linux), not the peak that getrusage reports
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:")) * 1024

    rss_500 = 0
    for i in range(10_000):
        est.process(frames[i % 8], [[10 + i % 7, 10, 50, 90, 0.9]])
        if i == 500:
            rss_500 = rss()
    est.flush()
    rss_end = rss()
    print(f"\nlong run: RSS {rss_500 / 2**20:.1f} MiB after 500 frames, {rss_end / 2**20:.1f} MiB after 10,000 "
          f"({100 * (rss_end / rss_500 - 1):+.2f}%)")
    assert rss_end <= rss_500 * 1.05, (rss_500, rss_end)
