"""Pre- and post-processing exactly as the official DCPose evaluation pipeline (spec §4.3, §4.5).

Box → center/scale (aspect 0.75, ×1.25, pixel_std 200) → the HRNet 3-point affine → bilinear warp with
a black border → RGB → ImageNet normalisation; heatmaps → argmax + quarter offset (strict interior
test) → inverse affine from heatmap size. All three frames of a window are cropped with the
*current* frame's box.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from dcpose_trt.errors import InputError

PIXEL_STD = 200.0
ENLARGE = 1.25


def box_to_center_scale(
    box: Sequence[float], aspect_ratio: float = 0.75, enlarge: float = ENLARGE
) -> tuple[np.ndarray, np.ndarray]:
    """Official ``box2cs``: (x, y, w, h) top-left box → center (2,) and scale (2,) in units of 200 px.

    The box is grown to the crop's aspect ratio (w/h) before scaling by ``enlarge``.
    """
    x, y, w, h = (float(v) for v in box[:4])
    center = np.array([x + w * 0.5, y + h * 0.5], dtype=np.float32)
    if w > aspect_ratio * h:
        h = w / aspect_ratio
    elif w < aspect_ratio * h:
        w = h * aspect_ratio
    scale = np.array([w / PIXEL_STD, h / PIXEL_STD], dtype=np.float32) * enlarge
    return center, scale


def _rotate_point(pt: np.ndarray, rot_rad: float) -> np.ndarray:
    sn, cs = np.sin(rot_rad), np.cos(rot_rad)
    return np.array([pt[0] * cs - pt[1] * sn, pt[0] * sn + pt[1] * cs], dtype=np.float32)


def _third_point(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    d = a - b
    return b + np.array([-d[1], d[0]], dtype=np.float32)


def get_affine_transform(
    center: np.ndarray, scale: np.ndarray, rot: float, output_size: Sequence[int], inv: bool = False,
    shift: Sequence[float] = (0.0, 0.0),
) -> np.ndarray:
    """The HRNet/SimpleBaseline 3-point affine (``float64[2, 3]``) from image to an output of (W, H).

    ``scale[0] * 200`` source pixels map to the output width; the center maps to the output center;
    ``rot`` is in degrees. ``inv=True`` gives the output → image transform.
    """
    scale_px = np.asarray(scale, dtype=np.float32) * PIXEL_STD
    src_w = scale_px[0]
    dst_w, dst_h = float(output_size[0]), float(output_size[1])
    rot_rad = np.pi * rot / 180.0
    src_dir = _rotate_point(np.array([0.0, src_w * -0.5], dtype=np.float32), rot_rad)
    dst_dir = np.array([0.0, dst_w * -0.5], dtype=np.float32)
    shift_arr = np.asarray(shift, dtype=np.float32)
    c = np.asarray(center, dtype=np.float32)
    src = np.zeros((3, 2), dtype=np.float32)
    dst = np.zeros((3, 2), dtype=np.float32)
    src[0] = c + scale_px * shift_arr
    src[1] = c + src_dir + scale_px * shift_arr
    dst[0] = [dst_w * 0.5, dst_h * 0.5]
    dst[1] = np.array([dst_w * 0.5, dst_h * 0.5], dtype=np.float32) + dst_dir
    src[2] = _third_point(src[0], src[1])
    dst[2] = _third_point(dst[0], dst[1])
    if inv:
        return cv2.getAffineTransform(dst, src)
    return cv2.getAffineTransform(src, dst)


def affine_points(points: np.ndarray, trans: np.ndarray) -> np.ndarray:
    """Apply a 2×3 affine to ``points[..., 2]``."""
    pts = np.asarray(points, dtype=np.float64)
    return pts @ trans[:, :2].T + trans[:, 2]


def as_bgr8(image: np.ndarray) -> np.ndarray:
    """Bring a frame to uint8 BGR H×W×3: grayscale, BGRA and 16-bit frames are converted.

    Raises:
        InputError: for anything that is not a 2-D or 3-D image with 1, 3 or 4 channels.
    """
    img = np.asarray(image)
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[:, :, 0]
    if img.ndim not in (2, 3) or (img.ndim == 3 and img.shape[2] not in (3, 4)) or img.size == 0:
        raise InputError(f"expected an H×W×3 BGR frame, got an array of shape {img.shape}")
    if img.dtype == np.uint16:
        img = (img >> 8).astype(np.uint8)  # keep the 8 most significant bits
    elif img.dtype in (np.float32, np.float64):
        img = np.clip(img * (255.0 if img.max() <= 1.0 else 1.0), 0, 255).astype(np.uint8)
    elif img.dtype != np.uint8:
        raise InputError(f"unsupported frame dtype {img.dtype}; use uint8, uint16 or float")
    if img.ndim == 2:
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    elif img.shape[2] == 4:
        img = cv2.cvtColor(img, cv2.COLOR_BGRA2BGR)
    return img


def crop_person(image_bgr: np.ndarray, trans: np.ndarray, out_size_hw: Sequence[int]) -> np.ndarray:
    """Warp one crop (uint8 H×W×3, BGR) with bilinear sampling and a black border (cv2 default)."""
    h, w = int(out_size_hw[0]), int(out_size_hw[1])
    return cv2.warpAffine(image_bgr, trans, (w, h), flags=cv2.INTER_LINEAR)


def to_input(crop_bgr: np.ndarray, mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """uint8 BGR H×W×3 crop → float32[3, H, W]: RGB, /255, ImageNet mean/std."""
    rgb = crop_bgr[:, :, ::-1].astype(np.float32) * (1.0 / 255.0)
    rgb = (rgb - np.asarray(mean, dtype=np.float32)) / np.asarray(std, dtype=np.float32)
    return np.ascontiguousarray(rgb.transpose(2, 0, 1))


def clean_boxes(boxes: np.ndarray | Sequence[Sequence[float]] | None) -> np.ndarray:
    """Validate person boxes → float32[N, 5] (x, y, w, h, score); drops unusable ones.

    Rows with NaN/inf, or non-positive width or height, are dropped (a detector can emit them and
    they cannot be cropped); a missing score becomes 1. Boxes partly or wholly outside the frame are
    kept: the crop's black border handles them as in the official pipeline.
    """
    if boxes is None:
        return np.zeros((0, 5), dtype=np.float32)
    try:
        arr = np.asarray(boxes, dtype=np.float64)
    except (ValueError, TypeError):
        raise InputError("boxes must be a numeric N×4 or N×5 array (x, y, w, h[, score])") from None
    if arr.size == 0:
        return np.zeros((0, 5), dtype=np.float32)
    if arr.ndim == 1:
        arr = arr[None]
    if arr.ndim != 2 or arr.shape[1] not in (4, 5):
        raise InputError(f"boxes must be N×4 or N×5 (x, y, w, h[, score]), got shape {arr.shape}")
    if arr.shape[1] == 4:
        arr = np.concatenate([arr, np.ones((arr.shape[0], 1))], axis=1)
    ok = np.isfinite(arr).all(axis=1) & (arr[:, 2] > 0) & (arr[:, 3] > 0)
    return arr[ok].astype(np.float32)


def make_inputs(
    window_bgr: Sequence[np.ndarray], boxes: np.ndarray, image_size_hw: Sequence[int],
    mean: Sequence[float] = (0.485, 0.456, 0.406), std: Sequence[float] = (0.229, 0.224, 0.225),
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Crop every person of the key frame from [current, previous, next] frames.

    Args:
        window_bgr: three uint8 BGR frames, in the order [current, previous, next].
        boxes: float32[N, 5] boxes (x, y, w, h, score) on the current frame (see :func:`clean_boxes`).
        image_size_hw: crop (H, W) of the model.

    Returns:
        frames float32[N, 9, H, W] (channels [cur RGB, prev RGB, next RGB]), centers float32[N, 2],
        scales float32[N, 2].
    """
    h, w = int(image_size_hw[0]), int(image_size_hw[1])
    n = len(boxes)
    frames = np.empty((n, 9, h, w), dtype=np.float32)
    centers = np.empty((n, 2), dtype=np.float32)
    scales = np.empty((n, 2), dtype=np.float32)
    for i, box in enumerate(boxes):
        c, s = box_to_center_scale(box, w / h)
        trans = get_affine_transform(c, s, 0.0, (w, h))
        for f, img in enumerate(window_bgr):
            frames[i, 3 * f : 3 * f + 3] = to_input(crop_person(img, trans, (h, w)), mean, std)
        centers[i], scales[i] = c, s
    return frames, centers, scales


def get_max_preds(heatmaps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Argmax per joint (first maximum): heatmaps float[N, J, h, w] → coords float32[N, J, 2] (x, y), maxvals[N, J].

    Coordinates of joints whose peak is ≤ 0 are set to 0, as officially.
    """
    n, j, h, w = heatmaps.shape
    flat = heatmaps.reshape(n, j, h * w)
    idx = flat.argmax(axis=2)
    maxvals = np.take_along_axis(flat, idx[..., None], axis=2)[..., 0].astype(np.float32)
    coords = np.stack([idx % w, idx // w], axis=-1).astype(np.float32)
    coords *= (maxvals > 0.0)[..., None]
    return coords, maxvals


def decode_heatmaps(
    heatmaps: np.ndarray, centers: np.ndarray, scales: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Official ``get_final_preds`` (no flip, no DARK): heatmaps float[N, J, h, w] → image coordinates.

    Returns:
        coords float32[N, J, 2] (x, y in image pixels) and maxvals float32[N, J] (peak heatmap values).
    """
    hm = np.asarray(heatmaps, dtype=np.float32)
    coords, maxvals = get_max_preds(hm)
    n, j, h, w = hm.shape
    px = np.floor(coords[..., 0] + 0.5).astype(np.int64)
    py = np.floor(coords[..., 1] + 0.5).astype(np.int64)
    # Quarter offset towards the larger neighbour, only strictly inside the map (1 < p < size-1).
    inside = (px > 1) & (px < w - 1) & (py > 1) & (py < h - 1)
    bi, ji = np.nonzero(inside)
    if bi.size:
        x, y = px[bi, ji], py[bi, ji]
        m = hm[bi, ji]
        dx = m[np.arange(bi.size), y, x + 1] - m[np.arange(bi.size), y, x - 1]
        dy = m[np.arange(bi.size), y + 1, x] - m[np.arange(bi.size), y - 1, x]
        coords[bi, ji, 0] += np.sign(dx) * 0.25
        coords[bi, ji, 1] += np.sign(dy) * 0.25
    out = np.empty_like(coords)
    for i in range(n):
        trans = get_affine_transform(centers[i], scales[i], 0.0, (w, h), inv=True)
        out[i] = affine_points(coords[i], trans)
    return out.astype(np.float32), maxvals
