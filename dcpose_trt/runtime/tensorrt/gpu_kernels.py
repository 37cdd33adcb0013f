"""GPU pre- and post-processing in Triton: the batched person crop and the heatmap decode.

Both kernels reproduce the exact CPU path of :mod:`dcpose_trt.data.transforms` (``make_inputs`` /
``decode_heatmaps``) so that the TensorRT and torch-CUDA runtimes can keep frames, crops and heatmaps on
the GPU and copy only keypoints back. The module is import-pure (kernel definitions, small wrappers);
``triton`` and ``torch`` are imported at the top, so import it only where Triton is wanted.

Crop (:func:`gpu_crop`): ``grid = (cdiv(h * w, BLOCK), N * 3)``. The second axis is one crop (person
``n = c // 3``, window slot ``k = c % 3``) so the three crops of every person are one launch. For each
output pixel ``(x, y)`` the inverse affine gives the source position ``X = a00 x + a01 y + a02``,
``Y = a10 x + a11 y + a12`` in fp32, then

* bilinear like ``cv2.warpAffine(INTER_LINEAR, BORDER_CONSTANT, 0)`` in OpenCV >= 4.11 (the installed
  reference is 5.0): fp32 coordinates, ``x0 = floor(X)``, ``ax = X - x0``, horizontal lerps
  ``v0 + ax (v1 - v0)`` then a vertical one, each of the four corners read as 0 when it lies outside the
  frame, rounded half-to-even to an integer level (the CPU path stores a uint8 crop). OpenCV <= 4.10
  quantised ``ax``/``ay`` to 1/32 (``INTER_BITS = 5``) in fixed point; against it crops differ by a few
  levels at sharp edges;
* BGR -> RGB, ``/ 255``, ``(v - mean) / std`` in fp32, written to channel ``3 k + c`` of ``out[n]``.

Decode (:func:`gpu_decode`): ``grid = (N * J,)``; one program per heatmap: first maximum
(``tl.argmax`` breaks ties to the left like ``numpy.argmax``), coordinates zeroed when the peak is
``<= 0``, a quarter-pixel step towards the larger neighbour only strictly inside the map
(``1 < px < w - 1`` and ``1 < py < h - 1``), then the heatmap -> image affine.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import cv2
import numpy as np
import torch
import triton
import triton.language as tl

from dcpose_trt.data.transforms import box_to_center_scale, get_affine_transform

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


# %% Compute kernels ---------------------------------------------------------------------------------


@triton.jit
def crop_normalize_kernel(
    # pointers
    frames_ptr,  # uint8 [F, H, W, 3] BGR, contiguous
    affine_ptr,  # float32 [N, 6]: crop -> image (a00, a01, a02, a10, a11, a12)
    frame_idx_ptr,  # int32 [N * 3]: frame read by crop c
    out_ptr,  # float32 [N, 9, OH, OW]
    # dims
    H,
    W,
    OH,
    OW,
    # normalisation, per RGB channel: (v / 255 - mean) / std
    mean_r,
    mean_g,
    mean_b,
    std_r,
    std_g,
    std_b,
    # meta-parameters
    BLOCK: tl.constexpr,
):
    pid_p = tl.program_id(0)
    c = tl.program_id(1)  # crop index: person c // 3, window slot c % 3
    n = c // 3
    k = c % 3

    offs = pid_p * BLOCK + tl.arange(0, BLOCK)
    valid = offs < OH * OW
    oy = (offs // OW).to(tl.float32)
    ox = (offs % OW).to(tl.float32)

    a = affine_ptr + n * 6
    a00 = tl.load(a + 0)
    a01 = tl.load(a + 1)
    a02 = tl.load(a + 2)
    a10 = tl.load(a + 3)
    a11 = tl.load(a + 4)
    a12 = tl.load(a + 5)
    sx = a00 * ox + a01 * oy + a02
    sy = a10 * ox + a11 * oy + a12
    # A source point left of -1 / right of W (above -1 / below H) has all four corners outside the frame
    # and samples 0; clamping into [-2, W + 1] keeps that result and keeps far-away points (a box way off
    # screen) from overflowing the float -> int conversion.
    sx = tl.minimum(tl.maximum(sx, -2.0), W + 1.0)
    sy = tl.minimum(tl.maximum(sy, -2.0), H + 1.0)
    x0f = tl.floor(sx)
    y0f = tl.floor(sy)
    ax = sx - x0f
    ay = sy - y0f
    x0 = x0f.to(tl.int32)
    y0 = y0f.to(tl.int32)
    x1 = x0 + 1
    y1 = y0 + 1
    # BORDER_CONSTANT 0: a corner outside the frame contributes 0 (masked load, other=0).
    in_x0 = (x0 >= 0) & (x0 < W)
    in_x1 = (x1 >= 0) & (x1 < W)
    in_y0 = valid & (y0 >= 0) & (y0 < H)
    in_y1 = valid & (y1 >= 0) & (y1 < H)
    m00 = in_y0 & in_x0
    m01 = in_y0 & in_x1
    m10 = in_y1 & in_x0
    m11 = in_y1 & in_x1

    f = tl.load(frame_idx_ptr + c).to(tl.int64)
    base = frames_ptr + f * H * W * 3  # int64: F frames of 4K exceed nothing, but be safe
    p00 = base + (y0 * W + x0) * 3
    p01 = base + (y0 * W + x1) * 3
    p10 = base + (y1 * W + x0) * 3
    p11 = base + (y1 * W + x1) * 3
    out_n = out_ptr + n * 9 * OH * OW + offs
    for ch in tl.static_range(3):  # BGR source channel ch -> RGB output channel 2 - ch
        v00 = tl.load(p00 + ch, mask=m00, other=0).to(tl.float32)
        v01 = tl.load(p01 + ch, mask=m01, other=0).to(tl.float32)
        v10 = tl.load(p10 + ch, mask=m10, other=0).to(tl.float32)
        v11 = tl.load(p11 + ch, mask=m11, other=0).to(tl.float32)
        top = v00 + ax * (v01 - v00)
        bot = v10 + ax * (v11 - v10)
        v = top + ay * (bot - top)
        # Round half to even (cvRound) to the integer level the CPU path's uint8 crop holds.
        r = tl.floor(v + 0.5)
        odd = (r - 2.0 * tl.floor(r * 0.5)) == 1.0
        r = tl.where(((r - v) == 0.5) & odd, r - 1.0, r)
        r = tl.minimum(tl.maximum(r, 0.0), 255.0)
        if ch == 0:
            mean = mean_b
            std = std_b
        elif ch == 1:
            mean = mean_g
            std = std_g
        else:
            mean = mean_r
            std = std_r
        val = (r * (1.0 / 255.0) - mean) / std
        tl.store(out_n + (3 * k + 2 - ch) * OH * OW, val, mask=valid)


@triton.jit
def decode_heatmaps_kernel(
    # pointers
    heatmaps_ptr,  # float32 [N, J, HM_H, HM_W], contiguous
    affine_ptr,  # float32 [N, 6]: heatmap -> image
    coords_ptr,  # float32 [N, J, 2] out
    maxvals_ptr,  # float32 [N, J] out
    # dims
    J,
    HM_H,
    HM_W,
    # meta-parameters
    BLOCK: tl.constexpr,  # >= HM_H * HM_W: one program sees the whole map
):
    pid = tl.program_id(0)  # = n * J + j
    n = pid // J
    hw = HM_H * HM_W
    hm = heatmaps_ptr + pid.to(tl.int64) * hw
    offs = tl.arange(0, BLOCK)
    vals = tl.load(hm + offs, mask=offs < hw, other=float("-inf"))
    maxval = tl.max(vals, axis=0)
    idx = tl.argmax(vals, axis=0)  # first maximum, like numpy.argmax
    px = idx % HM_W
    py = idx // HM_W
    # Officially a joint whose peak is <= 0 gets coordinates (0, 0) (before the affine).
    pos = maxval > 0.0
    px = tl.where(pos, px, 0)
    py = tl.where(pos, py, 0)
    x = px.to(tl.float32)
    y = py.to(tl.float32)
    # Quarter offset towards the larger neighbour, only strictly inside the map (spec: 1 < p < size - 1).
    inside = (px > 1) & (px < HM_W - 1) & (py > 1) & (py < HM_H - 1)
    c = py * HM_W + px
    right = tl.load(hm + c + 1, mask=inside, other=0.0)
    left = tl.load(hm + c - 1, mask=inside, other=0.0)
    down = tl.load(hm + c + HM_W, mask=inside, other=0.0)
    up = tl.load(hm + c - HM_W, mask=inside, other=0.0)
    dx = right - left
    dy = down - up
    sgn_x = tl.where(dx > 0.0, 1.0, tl.where(dx < 0.0, -1.0, 0.0))
    sgn_y = tl.where(dy > 0.0, 1.0, tl.where(dy < 0.0, -1.0, 0.0))
    x = tl.where(inside, x + 0.25 * sgn_x, x)
    y = tl.where(inside, y + 0.25 * sgn_y, y)

    a = affine_ptr + n * 6
    ix = tl.load(a + 0) * x + tl.load(a + 1) * y + tl.load(a + 2)
    iy = tl.load(a + 3) * x + tl.load(a + 4) * y + tl.load(a + 5)
    tl.store(coords_ptr + pid * 2, ix)
    tl.store(coords_ptr + pid * 2 + 1, iy)
    tl.store(maxvals_ptr + pid, maxval)


# %% Host side: affines and wrappers ----------------------------------------------------------------


def crop_affines(boxes: np.ndarray, image_size_hw: Sequence[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-person crop affines, exactly as :func:`dcpose_trt.data.transforms.make_inputs` builds them.

    Args:
        boxes: float32[N, >=4] boxes (x, y, w, h[, score]) on the key frame.
        image_size_hw: crop (H, W).

    Returns:
        ``inv`` float32[N, 2, 3] (crop -> image, what :func:`gpu_crop` takes; the inverse cv2.warpAffine
        itself computes from the forward matrix), centers float32[N, 2], scales float32[N, 2].
    """
    h, w = int(image_size_hw[0]), int(image_size_hw[1])
    n = len(boxes)
    inv = np.empty((n, 2, 3), np.float32)
    centers = np.empty((n, 2), np.float32)
    scales = np.empty((n, 2), np.float32)
    for i, box in enumerate(boxes):
        c, s = box_to_center_scale(box, w / h)
        inv[i] = cv2.invertAffineTransform(get_affine_transform(c, s, 0.0, (w, h)))
        centers[i], scales[i] = c, s
    return inv, centers, scales


def decode_affines(centers: np.ndarray, scales: np.ndarray, heatmap_hw: Sequence[int]) -> np.ndarray:
    """Heatmap -> image affines float32[N, 2, 3] for :func:`gpu_decode` (as ``decode_heatmaps`` uses them)."""
    hh, hw = int(heatmap_hw[0]), int(heatmap_hw[1])
    out = np.empty((len(centers), 2, 3), np.float32)
    for i in range(len(centers)):
        out[i] = get_affine_transform(centers[i], scales[i], 0.0, (hw, hh), inv=True)
    return out


def _interpreted() -> bool:
    return os.environ.get("TRITON_INTERPRET") == "1"


def _check_device(*tensors: torch.Tensor) -> None:
    dev = tensors[0].device
    for t in tensors:
        if t.device != dev:
            raise ValueError(f"all tensors must be on one device, got {t.device} and {dev}")
    if dev.type != "cuda" and not _interpreted():
        raise ValueError(f"the Triton kernels need CUDA tensors (got {dev}); on a CPU use "
                         "dcpose_trt.data.transforms, or set TRITON_INTERPRET=1 before importing triton")


def gpu_crop(
    frames: torch.Tensor,
    affines: torch.Tensor,
    frame_idx: torch.Tensor,
    out_hw: Sequence[int],
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
    out: torch.Tensor | None = None,
) -> torch.Tensor:
    """Crop, convert and normalise the three window crops of every person in one launch.

    Args:
        frames (Tensor[F, H, W, 3] uint8): BGR frames on the device.
        affines (Tensor[N, 2, 3] float32): per person, the crop -> image map (see :func:`crop_affines`).
        frame_idx (Tensor[N * 3] int32): which frame crop ``3 n + k`` reads (k = 0, 1, 2: current,
            previous, next).
        out_hw: crop (H, W).
        mean, std: RGB normalisation (ImageNet by default).
        out (Tensor[>=N, 9, h, w] float32, optional): where to write, e.g. an engine's input buffer; its
            first N rows are written. Defaults to a new tensor.

    Returns:
        Tensor[N, 9, h, w] float32: channels [current RGB, previous RGB, next RGB], normalised — what
        ``make_inputs`` returns, within one intensity level (one level = ``1 / (255 std)``).
    """
    oh, ow = int(out_hw[0]), int(out_hw[1])
    if frames.dtype != torch.uint8 or frames.dim() != 4 or frames.shape[3] != 3:
        raise ValueError(f"frames must be uint8 [F, H, W, 3], got {frames.dtype} {list(frames.shape)}")
    n = affines.shape[0]
    if tuple(affines.shape[1:]) != (2, 3):
        raise ValueError(f"affines must be [N, 2, 3], got {list(affines.shape)}")
    if frame_idx.numel() != 3 * n:
        raise ValueError(f"frame_idx must hold 3 * N = {3 * n} frame indices, got {frame_idx.numel()}")
    if out is None:
        out = torch.empty((n, 9, oh, ow), dtype=torch.float32, device=frames.device)
    elif (out.dtype != torch.float32 or out.dim() != 4 or tuple(out.shape[1:]) != (9, oh, ow)
          or out.shape[0] < n or not out.is_contiguous()):
        raise ValueError(f"out must be a contiguous float32 [>={n}, 9, {oh}, {ow}], got {out.dtype} {list(out.shape)}")
    _check_device(frames, affines, frame_idx, out)
    if n == 0:
        return out[:0]
    num_frames, h, w = int(frames.shape[0]), int(frames.shape[1]), int(frames.shape[2])
    if frame_idx.device.type == "cpu":
        # Host-side indices are cheap to validate; an out-of-range index would read foreign memory.
        fi = frame_idx.reshape(-1)
        if int(fi.min()) < 0 or int(fi.max()) >= num_frames:
            raise ValueError(f"frame_idx must lie in [0, {num_frames}), got [{int(fi.min())}, {int(fi.max())}]")
    # The interpreter pays per operation, not per element: one program per crop is fastest there.
    block = triton.next_power_of_2(oh * ow) if not frames.is_cuda else 256
    grid = (triton.cdiv(oh * ow, block), 3 * n)
    crop_normalize_kernel[grid](
        frames.contiguous(), affines.to(torch.float32).contiguous(), frame_idx.to(torch.int32).contiguous(), out,
        h, w, oh, ow,
        float(mean[0]), float(mean[1]), float(mean[2]), float(std[0]), float(std[1]), float(std[2]),
        BLOCK=block,
    )  # fmt: skip
    return out[:n]


def gpu_decode(heatmaps: torch.Tensor, inv_affines: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Heatmaps -> image keypoints on the device (the GPU twin of ``decode_heatmaps``).

    Args:
        heatmaps (Tensor[N, J, h, w] float32): refined heatmaps.
        inv_affines (Tensor[N, 2, 3] float32): per person, heatmap -> image (see :func:`decode_affines`).

    Returns:
        coords (Tensor[N, J, 2] float32, x and y in image pixels) and maxvals (Tensor[N, J] float32).
    """
    if heatmaps.dim() != 4:
        raise ValueError(f"heatmaps must be [N, J, h, w], got {list(heatmaps.shape)}")
    n, j, hh, hw = (int(v) for v in heatmaps.shape)
    if tuple(inv_affines.shape) != (n, 2, 3):
        raise ValueError(f"inv_affines must be [{n}, 2, 3], got {list(inv_affines.shape)}")
    _check_device(heatmaps, inv_affines)
    coords = torch.empty((n, j, 2), dtype=torch.float32, device=heatmaps.device)
    maxvals = torch.empty((n, j), dtype=torch.float32, device=heatmaps.device)
    if n * j == 0:
        return coords, maxvals
    decode_heatmaps_kernel[(n * j,)](
        heatmaps.to(torch.float32).contiguous(), inv_affines.to(torch.float32).contiguous(), coords, maxvals,
        j, hh, hw,
        BLOCK=triton.next_power_of_2(hh * hw),
    )  # fmt: skip
    return coords, maxvals
