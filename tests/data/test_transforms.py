"""Pre/post-processing against the spec's reference values (spec §11) and round-trip properties."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dcpose_trt.data.transforms import (
    affine_points,
    as_bgr8,
    box_to_center_scale,
    clean_boxes,
    decode_heatmaps,
    get_affine_transform,
    make_inputs,
    to_input,
)
from dcpose_trt.data.video import frame_window
from dcpose_trt.errors import InputError

BOX = (50, 100, 150, 300)


def test_box2cs_reference():
    c, s = box_to_center_scale(BOX)
    np.testing.assert_allclose(c, [125, 250])
    np.testing.assert_allclose(s, [1.40625, 1.875])


def test_affine_reference():
    c, s = box_to_center_scale(BOX)
    trans = get_affine_transform(c, s, 0, (288, 384))
    np.testing.assert_allclose(trans, [[1.024, 0, 16], [0, 1.024, -64]], atol=1e-4)


def test_decode_reference():
    c, s = box_to_center_scale(BOX)
    hm = np.zeros((1, 17, 96, 72), np.float32)
    hm[0, 0, 48, 36] = 1.0
    hm[0, 1, 0, 0] = 1.0
    hm[0, 2, 10, 20] = 1.0
    hm[0, 2, 10, 21] = 0.5  # right neighbour larger than left
    hm[0, 2, 11, 20] = 0.5  # lower neighbour larger than upper
    coords, maxvals = decode_heatmaps(hm, c[None], s[None])
    np.testing.assert_allclose(coords[0, 0], [125, 250], atol=1e-3)
    np.testing.assert_allclose(coords[0, 1], [-15.625, 62.5], atol=1e-3)
    np.testing.assert_allclose(coords[0, 2], [63.4766, 102.5391], atol=1e-3)
    assert maxvals[0, 0] == 1.0


def test_quarter_offset_strict_interior():
    """At px == 1 (not > 1) no quarter offset is applied, as in the official code."""
    c, s = box_to_center_scale(BOX)
    hm = np.zeros((1, 1, 96, 72), np.float32)
    hm[0, 0, 30, 1] = 1.0
    hm[0, 0, 30, 2] = 0.5
    coords, _ = decode_heatmaps(hm, c[None], s[None])
    inv = get_affine_transform(c, s, 0, (72, 96), inv=True)
    np.testing.assert_allclose(coords[0, 0], affine_points(np.array([1.0, 30.0]), inv), atol=1e-4)


def test_nonpositive_peak_gives_origin():
    c, s = box_to_center_scale(BOX)
    hm = -np.ones((1, 1, 96, 72), np.float32)
    coords, maxvals = decode_heatmaps(hm, c[None], s[None])
    np.testing.assert_allclose(coords[0, 0], [-15.625, 62.5], atol=1e-3)  # (0, 0) in heatmap space
    assert maxvals[0, 0] == -1.0


def test_frame_window_boundaries():
    assert frame_window(0, 5) == (0, 1, (1, 1))
    assert frame_window(2, 5) == (1, 3, (1, 1))
    assert frame_window(4, 5) == (3, 4, (1, 1))
    assert frame_window(0, 1) == (0, 0, (1, 1))
    with pytest.raises(InputError):
        frame_window(5, 5)


def test_make_inputs_uses_current_box_for_all_frames():
    rng = np.random.default_rng(0)
    cur, prev, nxt = (rng.integers(0, 255, (240, 320, 3), dtype=np.uint8) for _ in range(3))
    boxes = clean_boxes([[40, 30, 60, 150, 0.9], [200, 50, 50, 100, 0.5]])
    frames, centers, scales = make_inputs([cur, prev, nxt], boxes, (128, 96))
    assert frames.shape == (2, 9, 128, 96) and frames.dtype == np.float32
    # Same affine for the three frames: cropping `prev` alone gives channels 3:6.
    only_prev, _, _ = make_inputs([prev, prev, prev], boxes, (128, 96))
    np.testing.assert_array_equal(frames[:, 3:6], only_prev[:, :3])
    # RGB order + ImageNet normalisation of a pure blue (BGR) image.
    blue = np.zeros((4, 4, 3), np.uint8)
    blue[..., 0] = 255
    x = to_input(blue, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    np.testing.assert_allclose(x[:, 0, 0], [-0.485 / 0.229, -0.456 / 0.224, (1 - 0.406) / 0.225], rtol=1e-5)


def test_clean_boxes_drops_bad_rows():
    b = clean_boxes(
        [
            [0, 0, 10, 10, 0.9],
            [0, 0, 0, 10, 1],
            [0, 0, -5, 10, 1],
            [np.nan, 0, 5, 5, 1],
            [-50, -50, 20, 20, 0.3],
        ]
    )
    assert b.shape == (2, 5)
    assert clean_boxes([[5, 5, 10, 10]])[0, 4] == 1.0  # missing score → 1
    with pytest.raises(InputError, match="numeric"):
        clean_boxes([[0, 0, 1, 1], [0, 0, 1]])
    assert clean_boxes([]).shape == (0, 5)
    assert clean_boxes(None).shape == (0, 5)
    with pytest.raises(InputError, match="N×4 or N×5"):
        clean_boxes(np.zeros((2, 3)))


def test_as_bgr8_conversions():
    gray = np.full((8, 6), 100, np.uint8)
    assert as_bgr8(gray).shape == (8, 6, 3)
    rgba = np.zeros((8, 6, 4), np.uint8)
    assert as_bgr8(rgba).shape == (8, 6, 3)
    deep = np.full((8, 6, 3), 65535, np.uint16)
    out = as_bgr8(deep)
    assert out.dtype == np.uint8 and out.max() == 255
    with pytest.raises(InputError, match="H×W×3"):
        as_bgr8(np.zeros((2, 2, 2, 2), np.uint8))
    with pytest.raises(InputError):
        as_bgr8(np.zeros((0, 5, 3), np.uint8))


@settings(max_examples=60, deadline=None)
@given(
    x=st.floats(-500, 2000),
    y=st.floats(-500, 2000),
    w=st.floats(1, 800),
    h=st.floats(1, 800),
    px=st.floats(0, 1),
    py=st.floats(0, 1),
)
def test_affine_roundtrip(x, y, w, h, px, py):
    """Crop transform followed by the inverse from the crop returns the original point."""
    c, s = box_to_center_scale((x, y, w, h))
    fwd = get_affine_transform(c, s, 0, (96, 128))
    inv = get_affine_transform(c, s, 0, (96, 128), inv=True)
    pt = np.array([x + px * w, y + py * h])
    back = affine_points(affine_points(pt, fwd), inv)
    np.testing.assert_allclose(back, pt, atol=1e-3 * max(1.0, w, h))


@settings(max_examples=40, deadline=None)
@given(
    hx=st.integers(0, 23),
    hy=st.integers(0, 31),
    x=st.floats(0, 600),
    y=st.floats(0, 400),
    w=st.floats(4, 300),
    h=st.floats(4, 300),
)
def test_decode_peak_maps_to_crop_location(hx, hy, x, y, w, h):
    """A single-peak heatmap decodes to the image point whose crop coordinate is 4× the peak cell."""
    c, s = box_to_center_scale((x, y, w, h))
    hm = np.zeros((1, 1, 32, 24), np.float32)
    hm[0, 0, hy, hx] = 1.0
    coords, _ = decode_heatmaps(hm, c[None], s[None])
    fwd = get_affine_transform(c, s, 0, (24, 32))  # image → heatmap space
    np.testing.assert_allclose(affine_points(coords[0, 0], fwd), [hx, hy], atol=1e-3)
