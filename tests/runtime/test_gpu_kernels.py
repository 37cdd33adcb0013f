"""The Triton crop and decode kernels against the exact CPU path (``dcpose_trt.data.transforms``).

Without a GPU the kernels run in Triton's interpreter on CPU tensors (see ``conftest.py``); with one, on
CUDA tensors. Crops must match ``make_inputs`` within one intensity level, keypoints ``decode_heatmaps``
within 1e-3 px.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dcpose_trt.data.transforms import decode_heatmaps, make_inputs

pytest.importorskip("triton")
gk = pytest.importorskip("dcpose_trt.runtime.tensorrt.gpu_kernels")

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
MEAN = np.array(gk.IMAGENET_MEAN, np.float32)
STD = np.array(gk.IMAGENET_STD, np.float32)


def _levels(a: np.ndarray) -> np.ndarray:
    """Normalised [N, 9, h, w] crops -> intensity levels (undo std and /255; the mean cancels in diffs)."""
    return a * np.tile(STD, 3)[None, :, None, None] * 255.0


def _boxes(rng: np.random.Generator, n: int, h: int, w: int) -> np.ndarray:
    """Random person boxes, many partly outside the frame, a few tiny, one wholly outside."""
    x = rng.uniform(-0.4 * w, 0.9 * w, n)
    y = rng.uniform(-0.4 * h, 0.9 * h, n)
    bw = rng.uniform(3, 0.8 * w, n)
    bh = rng.uniform(3, 1.2 * h, n)
    boxes = np.stack([x, y, bw, bh, rng.uniform(0.3, 1, n)], axis=1).astype(np.float32)
    boxes[-1, :2] = (-3.0 * w, 2.5 * h)  # nothing of this crop is on screen: all black
    return boxes


def _crop(frames: list[np.ndarray], boxes: np.ndarray, frame_idx: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    inv, _, _ = gk.crop_affines(boxes, hw)
    out = gk.gpu_crop(torch.from_numpy(np.stack(frames)).to(DEVICE), torch.from_numpy(inv).to(DEVICE),
                      torch.from_numpy(frame_idx).to(DEVICE), hw, MEAN, STD)
    return out.cpu().numpy()


class TestCrop:
    def test_matches_cv2_on_noise(self):
        # Noise is the worst case for interpolation differences: every pixel is a sharp edge.
        rng = np.random.default_rng(0)
        h, w, hw = 57, 83, (32, 24)
        window = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in range(3)]
        boxes = _boxes(rng, 7, h, w)
        ref, _, _ = make_inputs(window, boxes, hw, MEAN, STD)
        got = _crop(window, boxes, np.tile(np.arange(3, dtype=np.int32), len(boxes)), hw)
        assert got.shape == ref.shape == (7, 9, 32, 24)
        diff = np.abs(_levels(got) - _levels(ref))
        assert diff.max() <= 1.0 + 1e-3, f"max difference {diff.max():.3f} levels"
        assert (diff > 1e-3).mean() < 0.01  # off-by-one levels are rare ties of rounding, not a pattern
        # The crop that is wholly off screen is black in all three frames.
        np.testing.assert_allclose(got[-1], np.broadcast_to((-np.tile(MEAN / STD, 3))[:, None, None], (9, 32, 24)),
                                   atol=1e-6)

    def test_shared_frames_and_window_order(self):
        # Four frames on the device, persons reading different windows: slot k of crop n reads frame_idx[3n+k].
        rng = np.random.default_rng(1)
        h, w, hw = 40, 52, (24, 20)
        frames = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in range(4)]
        boxes = _boxes(rng, 3, h, w)
        frame_idx = np.array([1, 0, 2, 3, 2, 3, 0, 0, 0], np.int32)
        got = _crop(frames, boxes, frame_idx, hw)
        for n in range(3):
            window = [frames[i] for i in frame_idx[3 * n : 3 * n + 3]]
            ref, _, _ = make_inputs(window, boxes[n : n + 1], hw, MEAN, STD)
            assert np.abs(_levels(got[n : n + 1]) - _levels(ref)).max() <= 1.0 + 1e-3

    def test_writes_into_a_preallocated_buffer(self):
        rng = np.random.default_rng(2)
        frames = [rng.integers(0, 256, (30, 30, 3), dtype=np.uint8) for _ in range(3)]
        boxes = _boxes(rng, 2, 30, 30)
        inv, _, _ = gk.crop_affines(boxes, (16, 12))
        buf = torch.full((4, 9, 16, 12), 7.0, device=DEVICE)  # a bucket of 4, 2 persons
        out = gk.gpu_crop(torch.from_numpy(np.stack(frames)).to(DEVICE), torch.from_numpy(inv).to(DEVICE),
                          torch.tensor([0, 1, 2] * 2, dtype=torch.int32, device=DEVICE), (16, 12), out=buf)
        assert out.data_ptr() == buf.data_ptr() and out.shape[0] == 2
        assert torch.all(buf[2:] == 7.0)  # padding rows untouched

    def test_bad_arguments(self):
        f = torch.zeros((1, 8, 8, 3), dtype=torch.uint8, device=DEVICE)
        a = torch.zeros((1, 2, 3), device=DEVICE)
        with pytest.raises(ValueError, match="uint8"):
            gk.gpu_crop(f.float(), a, torch.zeros(3, dtype=torch.int32, device=DEVICE), (4, 4))
        with pytest.raises(ValueError, match="3 \\* N = 3"):
            gk.gpu_crop(f, a, torch.zeros(2, dtype=torch.int32, device=DEVICE), (4, 4))
        if DEVICE == "cpu":
            with pytest.raises(ValueError, match=r"frame_idx must lie in \[0, 1\)"):
                gk.gpu_crop(f, a, torch.tensor([0, 1, 0], dtype=torch.int32), (4, 4))


class TestDecode:
    def _heatmaps(self, rng: np.random.Generator, n: int, h: int, w: int) -> np.ndarray:
        hm = rng.random((n, 17, h, w), dtype=np.float32)
        hm[0, 0] = -rng.random((h, w), dtype=np.float32)  # peak <= 0: coordinates (0, 0) before the affine
        hm[0, 1, 5, 1] = 2.0  # px == 1: on the strict-interior boundary, no quarter offset
        hm[0, 2, h - 2, 7] = 2.0  # py == h - 2: inside, gets the offset
        hm[0, 3, 3, w - 1] = 2.0  # last column
        hm[0, 4, 0, 0] = 2.0  # first pixel
        hm[0, 5, 4, 6] = hm[0, 5, 9, 2] = 2.0  # a tie: the first maximum (row-major) wins
        hm[0, 6, 6, 6] = 2.0
        hm[0, 6, 6, 5] = hm[0, 6, 6, 7] = 1.0  # equal neighbours: sign 0, no x offset
        hm[0, 7] = 0.0  # flat zero map: argmax 0, peak 0 -> (0, 0)
        return hm

    def test_matches_decode_heatmaps(self):
        rng = np.random.default_rng(3)
        n, h, w = 4, 32, 24
        hm = self._heatmaps(rng, n, h, w)
        centers = rng.uniform(-50, 1900, (n, 2)).astype(np.float32)  # large image coordinates
        scales = rng.uniform(0.05, 4.0, (n, 2)).astype(np.float32)
        ref_xy, ref_v = decode_heatmaps(hm, centers, scales)
        inv = gk.decode_affines(centers, scales, (h, w))
        xy, v = gk.gpu_decode(torch.from_numpy(hm).to(DEVICE), torch.from_numpy(inv).to(DEVICE))
        np.testing.assert_array_equal(v.cpu().numpy(), ref_v)
        np.testing.assert_allclose(xy.cpu().numpy(), ref_xy, rtol=0, atol=1e-3)

    def test_empty(self):
        xy, v = gk.gpu_decode(torch.zeros((0, 17, 8, 6), device=DEVICE), torch.zeros((0, 2, 3), device=DEVICE))
        assert xy.shape == (0, 17, 2) and v.shape == (0, 17)


def test_crop_then_decode_round_trip():
    """Affines from crop_affines and decode_affines agree with make_inputs / decode_heatmaps' centers."""
    rng = np.random.default_rng(4)
    boxes = _boxes(rng, 3, 100, 120)
    _, centers, scales = gk.crop_affines(boxes, (64, 48))
    _, ref_c, ref_s = make_inputs([np.zeros((100, 120, 3), np.uint8)] * 3, boxes, (64, 48))
    np.testing.assert_array_equal(centers, ref_c)
    np.testing.assert_array_equal(scales, ref_s)
