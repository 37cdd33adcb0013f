"""Modulated deformable convolution (DCNv2): the torchvision op and a GridSample reference.

Both functions have the signature of :func:`torchvision.ops.deform_conv2d`. The GridSample form uses
only standard ops (GridSample, Mul, Reshape, strided Conv), so it exports to plain ONNX that any
TensorRT >= 8.5 builds; it is the base of the ``gridsample`` export.

Layout (same as the official mmdetection-v1 op, torchvision and mmcv): for offset group ``g`` and
kernel tap ``k = i * kw + j`` (row-major), ``offset[:, 2 * (g * K + k)]`` is Δy and ``+ 1`` is Δx;
``mask[:, g * K + k]`` multiplies the sampled value. Masks are used raw (no sigmoid). A sample is
bilinear with corners outside the image contributing zero, and zero when it lies at or beyond one
pixel outside the image.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

DeformConvFn = Callable[..., Tensor]


def _pair(v: int | tuple[int, int]) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


def check_deform_args(
    input: Tensor, offset: Tensor, weight: Tensor, mask: Tensor | None, stride, padding, dilation
) -> tuple[int, int, int, int]:
    """Validate shapes like torchvision does; returns (offset_groups, Ho, Wo, K).

    Raises:
        ValueError: with got/expected numbers when a shape does not fit.
    """
    if input.dim() != 4:
        raise ValueError(f"input must be B×C×H×W, got {tuple(input.shape)}")
    b, c, h, w = input.shape
    cout, cin_g, kh, kw = weight.shape
    sh, sw = _pair(stride)
    ph, pw = _pair(padding)
    dh, dw = _pair(dilation)
    ho = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    wo = (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    k = kh * kw
    if c % cin_g != 0:
        raise ValueError(f"input channels {c} are not a multiple of weight.shape[1]={cin_g}")
    if offset.shape[1] % (2 * k) != 0:
        raise ValueError(f"offset has {offset.shape[1]} channels, expected a multiple of 2*kh*kw={2 * k}")
    groups = offset.shape[1] // (2 * k)
    if groups == 0 or c % groups != 0:
        raise ValueError(f"input channels {c} must be divisible by the {groups} offset groups")
    if tuple(offset.shape) != (b, 2 * groups * k, ho, wo):
        raise ValueError(
            f"the shape of the offset is {tuple(offset.shape)}, expected {(b, 2 * groups * k, ho, wo)}"
        )
    if mask is not None and tuple(mask.shape) != (b, groups * k, ho, wo):
        raise ValueError(f"the shape of the mask is {tuple(mask.shape)}, expected {(b, groups * k, ho, wo)}")
    return groups, ho, wo, k


def deform_conv2d_torchvision(
    input: Tensor,
    offset: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] = 0,
    dilation: int | tuple[int, int] = 1,
    mask: Tensor | None = None,
) -> Tensor:
    """:func:`torchvision.ops.deform_conv2d` (imported lazily so the model module stays light)."""
    from torchvision.ops import deform_conv2d

    return deform_conv2d(input, offset, weight, bias, stride=stride, padding=padding, dilation=dilation, mask=mask)


def deform_conv2d_gridsample(
    input: Tensor,
    offset: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] = 0,
    dilation: int | tuple[int, int] = 1,
    mask: Tensor | None = None,
) -> Tensor:
    """Modulated deformable conv from GridSample + a strided conv (standard ONNX ops only).

    Args:
        input (Tensor[B, Cin, H, W]): the sampled feature map.
        offset (Tensor[B, 2 * G * kh * kw, Ho, Wo]): (Δy, Δx) per offset group and tap.
        weight (Tensor[Cout, Cin / groups, kh, kw]): conv weights; ``groups = Cin / weight.shape[1]``.
        bias (Tensor[Cout] | None): optional bias.
        mask (Tensor[B, G * kh * kw, Ho, Wo] | None): raw modulation (no sigmoid); ``None`` means 1.

    Returns:
        Tensor[B, Cout, Ho, Wo].

    How: every (group, tap) sample position is turned into a GridSample grid (align_corners=False,
    zero padding, which reproduces DCN's "corners outside count zero" rule exactly); the sampled
    values are laid out as a (Ho·kh)×(Wo·kw) image so that a conv with stride (kh, kw) performs the
    Cout × (Cin·K) reduction in one standard op.
    """
    groups, ho, wo, k = check_deform_args(input, offset, weight, mask, stride, padding, dilation)
    b, c, h, w = input.shape
    cout, cin_g, kh, kw = weight.shape
    sh, sw = _pair(stride)
    ph, pw = _pair(padding)
    dh, dw = _pair(dilation)
    cpg = c // groups  # channels per offset group
    dtype = input.dtype

    # Base sampling positions (without offsets) for each tap and output pixel: (K, Ho, Wo).
    ys = torch.arange(ho, dtype=dtype, device=input.device) * sh - ph
    xs = torch.arange(wo, dtype=dtype, device=input.device) * sw - pw
    ti = torch.arange(kh, dtype=dtype, device=input.device) * dh
    tj = torch.arange(kw, dtype=dtype, device=input.device) * dw
    base_y = (ti.view(kh, 1, 1, 1) + ys.view(1, 1, ho, 1)).expand(kh, kw, ho, wo).reshape(k, ho, wo)
    base_x = (tj.view(1, kw, 1, 1) + xs.view(1, 1, 1, wo)).expand(kh, kw, ho, wo).reshape(k, ho, wo)

    off = offset.reshape(b, groups, k, 2, ho, wo)
    py = off[:, :, :, 0] + base_y  # (B, G, K, Ho, Wo) absolute y
    px = off[:, :, :, 1] + base_x
    # Normalise for align_corners=False: pixel p sits at (2p + 1) / size - 1.
    gy = (2.0 * py + 1.0) / h - 1.0
    gx = (2.0 * px + 1.0) / w - 1.0
    grid = torch.stack([gx, gy], dim=-1).reshape(b * groups, k * ho, wo, 2)

    feat = input.reshape(b * groups, cpg, h, w)
    sampled = F.grid_sample(feat, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    sampled = sampled.reshape(b, groups, cpg, k, ho, wo)  # (B, G, Cpg, K, Ho, Wo)
    if mask is not None:
        sampled = sampled * mask.reshape(b, groups, 1, k, ho, wo)

    # (B, C, kh, kw, Ho, Wo) -> (B, C, Ho, kh, Wo, kw) -> (B, C, Ho*kh, Wo*kw)
    cols = sampled.reshape(b, c, kh, kw, ho, wo).permute(0, 1, 4, 2, 5, 3).reshape(b, c, ho * kh, wo * kw)
    return F.conv2d(cols, weight, bias, stride=(kh, kw), groups=c // cin_g)
