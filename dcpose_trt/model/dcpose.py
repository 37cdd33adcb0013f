"""DCPose (Liu et al., CVPR 2021): HRNet on frames t, t-1, t+1, then PRF, PTM and PCN.

Attribute names follow the official ``DcPose_RSN`` exactly, so official checkpoints (2215 keys) load
strictly. See ``docs``/the spec §1 for every wiring detail reproduced here.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import Tensor, nn

from dcpose_trt.model.deform import DeformConvFn, deform_conv2d_torchvision
from dcpose_trt.model.hrnet import HRNetConfig, PoseHighResolutionNet

DILATIONS = (3, 6, 9, 12, 15)


class conv_bn_relu(nn.Module):  # noqa: N801 - official name, appears in state-dict keys' parents
    """Conv (with bias) + BN (+ ReLU), as in RSN."""

    def __init__(self, in_planes: int, out_planes: int, kernel_size: int, stride: int, padding: int,
                 has_relu: bool = True):
        super().__init__()
        self.conv = nn.Conv2d(in_planes, out_planes, kernel_size, stride, padding, bias=True)
        self.bn = nn.BatchNorm2d(out_planes)
        self.has_relu = has_relu
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        x = self.bn(self.conv(x))
        return self.relu(x) if self.has_relu else x


class RSB_BLOCK(nn.Module):  # noqa: N801 - official name
    """Residual Steps Block: four branches of 1-4 chained 3×3 convs with cross-branch sums."""

    def __init__(self, in_planes: int, planes: int, downsample: nn.Module | None = None):
        super().__init__()
        b = in_planes * 26 // 64  # official: floor on the block's *input* width
        self.branch_ch = b
        self.conv_bn_relu1 = conv_bn_relu(in_planes, 4 * b, 1, 1, 0)
        for name in ("2_1_1", "2_2_1", "2_2_2", "2_3_1", "2_3_2", "2_3_3", "2_4_1", "2_4_2", "2_4_3", "2_4_4"):
            setattr(self, f"conv_bn_relu{name}", conv_bn_relu(b, b, 3, 1, 1))
        self.conv_bn_relu3 = conv_bn_relu(4 * b, planes, 1, 1, 0, has_relu=False)
        self.downsample = downsample
        self.relu = nn.ReLU(inplace=False)

    def forward(self, x: Tensor) -> Tensor:
        s0, s1, s2, s3 = torch.split(self.conv_bn_relu1(x), self.branch_ch, dim=1)
        o11 = self.conv_bn_relu2_1_1(s0)
        o21 = self.conv_bn_relu2_2_1(s1 + o11)
        o22 = self.conv_bn_relu2_2_2(o21)
        o31 = self.conv_bn_relu2_3_1(s2 + o21)
        o32 = self.conv_bn_relu2_3_2(o31 + o22)
        o33 = self.conv_bn_relu2_3_3(o32)
        o41 = self.conv_bn_relu2_4_1(s3 + o31)
        o42 = self.conv_bn_relu2_4_2(o41 + o32)
        o43 = self.conv_bn_relu2_4_3(o42 + o33)
        o44 = self.conv_bn_relu2_4_4(o43)
        out = self.conv_bn_relu3(torch.cat([o11, o22, o33, o44], dim=1))
        identity = self.downsample(x) if self.downsample is not None else x
        return self.relu(out + identity)


class CHAIN_RSB_BLOCKS(nn.Module):  # noqa: N801 - official name
    def __init__(self, in_planes: int, out_planes: int, num_blocks: int):
        super().__init__()
        blocks = [RSB_BLOCK(in_planes, out_planes, conv_bn_relu(in_planes, out_planes, 1, 1, 0, has_relu=False))]
        blocks += [RSB_BLOCK(out_planes, out_planes) for _ in range(num_blocks - 1)]
        self.layers = nn.Sequential(*blocks)

    def forward(self, x: Tensor) -> Tensor:
        return self.layers(x)


class ModulatedDeformConv(nn.Module):
    """Parameters of one DCNv2 (17→17, 3×3, bias); the function that runs it is swappable.

    ``impl`` has the :func:`torchvision.ops.deform_conv2d` signature. It is torchvision by default;
    :func:`use_deform_conv` swaps it (GridSample reference, Triton kernel, ONNX plugin node).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, padding: int, dilation: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.padding = padding
        self.dilation = dilation
        self.impl: DeformConvFn = deform_conv2d_torchvision
        # Official init: identity kernel (centre tap of channel o reads channel o), zero bias.
        with torch.no_grad():
            self.weight.zero_()
            c = kernel_size // 2
            for o in range(min(in_channels, out_channels)):
                self.weight[o, o, c, c] = 1.0

    def forward(self, x: Tensor, offset: Tensor, mask: Tensor) -> Tensor:
        return self.impl(x, offset, self.weight, self.bias, stride=1, padding=self.padding,
                         dilation=self.dilation, mask=mask)

    def extra_repr(self) -> str:
        return f"{self.weight.shape[1]}, {self.weight.shape[0]}, dilation={self.dilation}"


class DeformableCONV(nn.Module):  # noqa: N801 - official name (key ``...deform_conv.weight``)
    def __init__(self, num_joints: int, kernel_size: int, dilation: int):
        super().__init__()
        self.deform_conv = ModulatedDeformConv(num_joints, num_joints, kernel_size, dilation, dilation)

    def forward(self, x: Tensor, offset: Tensor, mask: Tensor) -> Tensor:
        return self.deform_conv(x, offset, mask)


class DCPose(nn.Module):
    """DCPose (official ``DcPose_RSN``) with a configurable HRNet backbone.

    ``forward(frames, margin)``: frames ``Tensor[B, 9, H, W]`` (channels [current, previous, next],
    each RGB ImageNet-normalised), margin ``Tensor[B, 2]`` ([prev_delta, next_delta], [1, 1] for adjacent
    frames) → refined heatmaps ``Tensor[B, 17, H/4, W/4]``.
    """

    def __init__(self, hrnet: HRNetConfig | None = None, num_joints: int = 17,
                 dilations: tuple[int, ...] = DILATIONS):
        super().__init__()
        j = num_joints
        k = 3
        self.num_joints = j
        self.dilations = tuple(dilations)
        self.rough_pose_estimation_net = PoseHighResolutionNet(hrnet or HRNetConfig(num_joints=j))
        self.diff_temporal_fuse = CHAIN_RSB_BLOCKS(j * 4, 34, 2)  # PRF
        self.support_temporal_fuse = CHAIN_RSB_BLOCKS(j * 3, 17, 1)  # PTM
        self.offset_mask_combine_conv = CHAIN_RSB_BLOCKS(34 + 17, 64, 2)
        self.offsets_list = nn.ModuleList(
            nn.Sequential(nn.Conv2d(64, j * 2 * k * k, k, 1, padding=d, dilation=d, bias=False)) for d in dilations
        )
        self.masks_list = nn.ModuleList(
            nn.Sequential(nn.Conv2d(64, j * k * k, k, 1, padding=d, dilation=d, bias=False)) for d in dilations
        )
        self.modulated_deform_conv_list = nn.ModuleList(DeformableCONV(j, k, d) for d in dilations)
        self._init_weights()

    def _init_weights(self) -> None:
        # Official DcPose_RSN.init_weights: every conv ~ N(0, 0.001) with zero bias, BN 1/0, DCN
        # identity (set in ModulatedDeformConv). Officially the HRNet is then overwritten by COCO weights.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, std=0.001)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def backbone(self, x: Tensor) -> Tensor:
        """HRNet on one frame: ``Tensor[B, 3, H, W]`` → rough heatmaps ``Tensor[B, 17, H/4, W/4]``."""
        return self.rough_pose_estimation_net(x)

    def head_features(self, cur: Tensor, prev: Tensor, nxt: Tensor, margin: Tensor) -> tuple[Tensor, Tensor]:
        """PTM and PRF of the head: three ``Tensor[B, 17, h, w]`` heatmaps + margin ``Tensor[B, 2]`` →
        ``(sup Tensor[B, 17, h, w], feat Tensor[B, 64, h, w])``: the map the DCNs sample and the features
        their offsets and masks come from."""
        return self.fuse_features(*self.temporal_inputs(cur, prev, nxt, margin))

    def temporal_inputs(self, cur: Tensor, prev: Tensor, nxt: Tensor, margin: Tensor) -> tuple[Tensor, Tensor]:
        """The inputs of PRF and PTM, weighted by the margin: ``(prf_in Tensor[B, 68, h, w], ptm_in
        Tensor[B, 51, h, w])`` for 17 joints."""
        b = cur.shape[0]
        m = margin.float()
        m = m / m.sum(dim=1, keepdim=True)
        # The previous frame is weighted by the *next* delta and vice versa: the closer frame counts more.
        wp = m[:, 1].reshape(b, 1, 1, 1)
        wn = m[:, 0].reshape(b, 1, 1, 1)
        diff_a = cur - prev
        diff_b = cur - nxt
        # Per-joint interleaving (channel 4j+0..3 and 3j+0..2), as the official per-joint list loops.
        prf_in = torch.stack([diff_a, diff_a * wp, diff_b, diff_b * wn], dim=2).flatten(1, 2)
        ptm_in = torch.stack([cur, prev * wp, nxt * wn], dim=2).flatten(1, 2)
        return prf_in, ptm_in

    def fuse_features(self, prf_in: Tensor, ptm_in: Tensor) -> tuple[Tensor, Tensor]:
        """PRF, PTM and their combination: :meth:`temporal_inputs` → ``(sup, feat)`` of :meth:`head_features`."""
        dif = self.diff_temporal_fuse(prf_in)
        sup = self.support_temporal_fuse(ptm_in)
        return sup, self.offset_mask_combine_conv(torch.cat([dif, sup], dim=1))

    def head(self, cur: Tensor, prev: Tensor, nxt: Tensor, margin: Tensor) -> Tensor:
        """Temporal head: three ``Tensor[B, 17, h, w]`` heatmaps + margin ``Tensor[B, 2]`` → refined."""
        sup, feat = self.head_features(cur, prev, nxt, margin)
        out = None
        n = len(self.dilations)
        for off_conv, mask_conv, dcn in zip(self.offsets_list, self.masks_list,
                                            self.modulated_deform_conv_list, strict=True):
            # The DCN samples the PTM output; masks are raw conv outputs (no sigmoid).
            y = dcn(sup, off_conv(feat), mask_conv(feat)) * (1.0 / n)
            out = y if out is None else out + y
        assert out is not None
        return out

    def forward_with_rough(self, frames: Tensor, margin: Tensor) -> tuple[Tensor, Tensor]:
        """:meth:`forward` that also returns the backbone's heatmaps (training supervises both).

        Returns:
            refined ``Tensor[B, 17, H/4, W/4]`` and rough ``Tensor[3B, 17, H/4, W/4]`` ordered
            [current×B, previous×B, next×B] (``rough[:B]`` is the current frame's single-frame estimate).
        """
        b = frames.shape[0]
        # HRNet runs once on a 3B batch ordered [current×B, previous×B, next×B].
        x = torch.cat(torch.split(frames, 3, dim=1), dim=0)
        hm = self.rough_pose_estimation_net(x)
        cur, prev, nxt = hm[:b], hm[b : 2 * b], hm[2 * b :]
        return self.head(cur, prev, nxt, margin), hm

    def forward(self, frames: Tensor, margin: Tensor) -> Tensor:
        return self.forward_with_rough(frames, margin)[0]


@contextlib.contextmanager
def use_deform_conv(model: nn.Module, fn: DeformConvFn) -> Iterator[nn.Module]:
    """Temporarily run every :class:`ModulatedDeformConv` of ``model`` through ``fn``.

    ``fn`` has the :func:`torchvision.ops.deform_conv2d` signature (e.g.
    :func:`~dcpose_trt.model.deform.deform_conv2d_gridsample`). The previous functions are restored on exit.
    """
    dcns = [m for m in model.modules() if isinstance(m, ModulatedDeformConv)]
    saved = [m.impl for m in dcns]
    try:
        for m in dcns:
            m.impl = fn
        yield model
    finally:
        for m, f in zip(dcns, saved, strict=True):
            m.impl = f
