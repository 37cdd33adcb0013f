"""The DCPose head rewritten for CPU runtimes: the deformable convs as GridSample + a 1×1 conv.

Same function as :meth:`DCPose.head` (equal to float rounding), laid out so that a CPU runtime spends its
time in its fast kernels instead of a generic deformable-convolution op:

* Each modulated DCN (17→17 channels, 3×3, one offset group per channel) becomes a bilinear gather of its
  17·9 samples per pixel (one ``GridSample`` over the 17 channels as 17 single-channel images), a
  multiplication by the mask, and a 1×1 convolution over the 153 gathered values (the DCN's GEMM). On
  OpenVINO (w32, 8 persons) the gather takes ~6 ms per DCN where its ``DeformableConvolution`` took ~42 ms,
  and the 1×1 conv is an ordinary conv that INT8 quantization covers.
* The offset convolutions produce the sampling grid directly: their output channels are reordered from
  the DCN's (Δy, Δx) to GridSample's (x, y) and scaled by GridSample's normalisation (2/W, 2/H) in the
  weights, so the grid is one constant add and one transpose away (no per-element stack).
* The 1/5 averaging of the five DCNs is folded into their 1×1 weights and biases.
* ``fused_dcn=True`` routes each DCN's gather, mask and 1×1 conv through one op, ``dcpose_trt::dcn_gemm``
  (:func:`dcn_gemm`, whose PyTorch body is the graph above): OpenVINO's frontend converts it to our C++ op
  ``DcnGemm`` (:mod:`dcpose_trt.engine.ov_extension`), one pass over the offsets and masks instead of the
  grid passes OpenVINO runs for the graph.

The sampling coordinates are arithmetic on the offset convs' outputs and must stay FP32: a BF16 add of the
base position would round a coordinate near the map's edge by up to 1/256 of its width. OpenVINO's BF16
hint lowers that add too, so the INT8 IR runs with the FP32 hint (only the quantized convs in INT8), and
the precision of the rest is set in the graph itself: ``features_dtype=torch.bfloat16`` runs PRF, PTM and
their combination (the RSB convs, whose outputs are heatmap values and features, not coordinates) on BF16
copies of their modules, with explicit casts that OpenVINO keeps under the FP32 hint.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import Tensor, nn

#: What INT8 post-training quantization of the CPU head leaves in floating point, as regular expressions over
#: the converted nodes' names (OpenVINO's PyTorch frontend names each node after its module path):
#: ``offsets`` (what ships) quantizes only the offset and mask convolutions (three quarters of the head's
#: FLOPs); ``convs`` every convolution except the DCNs' 1×1 GEMMs, whose inputs are sampled heatmap values
#: (PRF/PTM/combine too: fails the fidelity gate, as does quantizing the 1×1 GEMMs; docs/cpu_backends.md).
#: The sampling coordinates (the grid add, transpose and GridSample) are never quantized: their inputs
#: are the convs' FP32 outputs.
INT8_KEEP_FLOAT = {
    "offsets": r"^(?!.*branches\.\d+\.(offset|mask)/).*",
    "convs": r".*branches\.\d+\.gemm/.*",
}


class _DcnBranch(nn.Module):
    """One dilation: offset conv (emitting normalised grid deltas), mask conv, gather, 1×1 conv."""

    def __init__(self, model: nn.Module, i: int, hw: tuple[int, int], fused: bool = False):
        super().__init__()
        off_conv: nn.Conv2d = model.offsets_list[i][0]
        mask_conv: nn.Conv2d = model.masks_list[i][0]
        dcn = model.modulated_deform_conv_list[i].deform_conv
        j = model.num_joints
        d = model.dilations[i]
        n = len(model.dilations)
        h, w = hw
        k = dcn.weight.shape[-1] * dcn.weight.shape[-2]
        self.j, self.k, self.h, self.w = j, k, h, w
        dil, pad = dcn.dilation, dcn.padding
        kh, kw = dcn.weight.shape[-2:]
        self.fused = fused
        # Offset channels are (group j, tap t, [dy, dx]); GridSample wants (x, y) normalised as
        # x_norm = (2x + 1) / W - 1 (align_corners=False). Reorder to (j, t, [dx, dy]) and scale by 2/W, 2/H.
        wt = off_conv.weight.detach().reshape(j, k, 2, *off_conv.weight.shape[1:])
        wt = torch.stack([wt[:, :, 1] * (2.0 / w), wt[:, :, 0] * (2.0 / h)], dim=2)
        self.offset = nn.Conv2d(off_conv.in_channels, j * k * 2, off_conv.kernel_size, padding=d, dilation=d,
                                bias=False)
        self.offset.weight.data.copy_(wt.reshape_as(off_conv.weight))
        self.mask = mask_conv
        self.kernel, self.dilation, self.padding = (kh, kw), dil, pad
        self.grid_base = nn.Parameter(grid_base((kh, kw), dil, pad, h, w).repeat(1, j, 1, 1), requires_grad=False)
        # The DCN's GEMM: out[o] = sum over (c, t) of weight[o, c, t] * sample[c, t]; the 1/n average folded in.
        self.gemm = nn.Conv2d(j * k, dcn.weight.shape[0], 1)
        self.gemm.weight.data.copy_(dcn.weight.detach().reshape(dcn.weight.shape[0], j * k, 1, 1) / n)
        self.gemm.bias.data.copy_(dcn.bias.detach() / n)

    def forward(self, feat: Tensor, sup: Tensor) -> Tensor:
        off, mask = self.offset(feat), self.mask(feat)
        if self.fused:  # one op for the runtime (OpenVINO: dcpose_trt/engine/ov_dcn/dcn_gemm.cpp)
            w = self.gemm.weight
            return torch.ops.dcpose_trt.dcn_gemm(off, mask, sup, w.reshape(w.shape[0], -1), self.gemm.bias,
                                                 *self.kernel, self.dilation, self.padding)
        return self.gemm(_sample(off + self.grid_base, mask, sup, self.k))


def grid_base(kernel: tuple[int, int], dilation: int, padding: int, h: int, w: int) -> Tensor:
    """Base sampling position of each tap of a ``kernel`` conv at each pixel, GridSample-normalised
    (``align_corners=False``): ``Tensor[1, k·2, h, w]``, channels (tap, [x, y])."""
    kh, kw = kernel
    ys = torch.arange(h, dtype=torch.float64) - padding
    xs = torch.arange(w, dtype=torch.float64) - padding
    by = (torch.arange(kh, dtype=torch.float64) * dilation).view(kh, 1, 1, 1) + ys.view(1, 1, h, 1)
    bx = (torch.arange(kw, dtype=torch.float64) * dilation).view(1, kw, 1, 1) + xs.view(1, 1, 1, w)
    gx = (2.0 * bx.expand(kh, kw, h, w) + 1.0) / w - 1.0
    gy = (2.0 * by.expand(kh, kw, h, w) + 1.0) / h - 1.0
    return torch.stack([gx, gy], dim=2).reshape(1, kh * kw * 2, h, w).float()


def _sample(grid: Tensor, mask: Tensor, sup: Tensor, k: int) -> Tensor:
    """The DCN's modulated gather: ``grid Tensor[B, j·k·2, h, w]`` (normalised (x, y) per group and tap),
    ``mask Tensor[B, j·k, h, w]``, ``sup Tensor[B, j, h, w]`` → ``Tensor[B, j·k, h, w]``."""
    b, j, h, w = sup.shape
    grid = grid.reshape(b, j, k, 2, h, w).permute(0, 1, 2, 4, 5, 3).reshape(b * j, k * h, w, 2)
    s = F.grid_sample(sup.reshape(b * j, 1, h, w), grid, mode="bilinear", padding_mode="zeros",
                      align_corners=False)  # (B·j, 1, k·h, w)
    return s.reshape(b, j * k, h, w) * mask


@torch.library.custom_op("dcpose_trt::dcn_gemm", mutates_args=())
def dcn_gemm(offsets: Tensor, mask: Tensor, sup: Tensor, weight: Tensor, bias: Tensor, kernel_h: int,
             kernel_w: int, dilation: int, pad: int) -> Tensor:
    """One modulated DCN of the head as one op (what a runtime with a fused kernel implements; here the
    reference): ``offsets Tensor[B, j·k·2, h, w]`` (normalised (dx, dy) per group and tap, without the base
    position), ``mask Tensor[B, j·k, h, w]``, ``sup Tensor[B, j, h, w]``, ``weight Tensor[O, j·k]``,
    ``bias Tensor[O]`` → ``Tensor[B, O, h, w]``."""
    b, j, h, w = sup.shape
    base = grid_base((kernel_h, kernel_w), dilation, pad, h, w).repeat(1, j, 1, 1)
    s = _sample(offsets + base, mask, sup, kernel_h * kernel_w)
    return F.conv2d(s, weight.reshape(*weight.shape, 1, 1), bias)


@dcn_gemm.register_fake
def _(offsets: Tensor, mask: Tensor, sup: Tensor, weight: Tensor, bias: Tensor, kernel_h: int, kernel_w: int,
      dilation: int, pad: int) -> Tensor:
    return sup.new_empty(sup.shape[0], weight.shape[0], *sup.shape[2:])


class CpuHead(nn.Module):
    """:meth:`DCPose.head` of ``model`` in the CPU form: ``cur, prev, next Tensor[B, 17, h, w]`` + margin
    ``Tensor[B, 2]`` → ``Tensor[B, 17, h, w]``. Shares the PRF/PTM/combine modules with ``model`` (copies in
    ``features_dtype`` when that is not FP32); the DCN branches hold converted copies of its offset/DCN
    weights (rebuild after changing the model). ``fused_dcn``: each DCN through the ``dcpose_trt::dcn_gemm``
    op (same numbers in PyTorch; one op for OpenVINO) instead of the GridSample graph."""

    def __init__(self, model: nn.Module, features_dtype: torch.dtype = torch.float32, fused_dcn: bool = False):
        super().__init__()
        self.model = model
        hw = tuple(model.preset.heatmap_size)
        self.branches = nn.ModuleList(_DcnBranch(model, i, hw, fused_dcn) for i in range(len(model.dilations)))
        self.features_dtype = features_dtype
        self.features = _Features(model, features_dtype) if features_dtype != torch.float32 else None

    def forward(self, cur: Tensor, prev: Tensor, nxt: Tensor, margin: Tensor) -> Tensor:
        if self.features is None:
            sup, feat = self.model.head_features(cur, prev, nxt, margin)
        else:
            dt = self.features_dtype
            prf_in, ptm_in = self.model.temporal_inputs(cur, prev, nxt, margin)
            sup, feat = self.features(prf_in.to(dt), ptm_in.to(dt))
            sup, feat = sup.float(), feat.float()
        out = None
        for br in self.branches:
            y = br(feat, sup)
            out = y if out is None else out + y
        assert out is not None
        return out


class _Features(nn.Module):
    """PRF, PTM and their combination (:meth:`DCPose.fuse_features`) on copies of the model's modules in
    ``dtype``."""

    def __init__(self, model: nn.Module, dtype: torch.dtype):
        super().__init__()
        self._fuse = type(model).fuse_features
        for name in ("diff_temporal_fuse", "support_temporal_fuse", "offset_mask_combine_conv"):
            setattr(self, name, copy.deepcopy(getattr(model, name)).to(dtype).requires_grad_(False))

    def forward(self, prf_in: Tensor, ptm_in: Tensor) -> tuple[Tensor, Tensor]:
        return self._fuse(self, prf_in, ptm_in)  # the model's own code, over these modules
