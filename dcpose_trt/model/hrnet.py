"""HRNet pose backbone with the official ``pose_hrnet.py`` attribute names.

The module tree and state-dict names match leoxiaobin/deep-high-resolution-net.pytorch (and therefore
DCPose's ``rough_pose_estimation_net``), so official COCO checkpoints load without renaming. Widths and
depths come from :class:`HRNetConfig`, which lets the same code build W48, W32 and the tiny CPU preset.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

BN_MOMENTUM = 0.1


@dataclass(frozen=True)
class StageConfig:
    """One HRNet stage: ``num_modules`` HighResolutionModules over ``len(channels)`` branches."""

    num_modules: int
    num_blocks: tuple[int, ...]
    channels: tuple[int, ...]


@dataclass(frozen=True)
class HRNetConfig:
    """HRNet widths and depths. Defaults are HRNet-W48 (the official DCPose backbone)."""

    stem_width: int = 64
    layer1_planes: int = 64
    layer1_blocks: int = 4
    stage2: StageConfig = StageConfig(1, (4, 4), (48, 96))
    stage3: StageConfig = StageConfig(4, (4, 4, 4), (48, 96, 192))
    stage4: StageConfig = StageConfig(3, (4, 4, 4, 4), (48, 96, 192, 384))
    num_joints: int = 17
    final_conv_kernel: int = 1


def conv3x3(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes, momentum=BN_MOMENTUM)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes, momentum=BN_MOMENTUM)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + residual)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, kernel_size=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes, momentum=BN_MOMENTUM)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes, momentum=BN_MOMENTUM)
        self.conv3 = nn.Conv2d(planes, planes * self.expansion, kernel_size=1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion, momentum=BN_MOMENTUM)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + residual)


def _make_blocks(inplanes: int, planes: int, num_blocks: int, block: type[nn.Module]) -> nn.Sequential:
    downsample = None
    if inplanes != planes * block.expansion:
        downsample = nn.Sequential(
            nn.Conv2d(inplanes, planes * block.expansion, kernel_size=1, stride=1, bias=False),
            nn.BatchNorm2d(planes * block.expansion, momentum=BN_MOMENTUM),
        )
    layers = [block(inplanes, planes, 1, downsample)]
    layers += [block(planes * block.expansion, planes) for _ in range(1, num_blocks)]
    return nn.Sequential(*layers)


class HighResolutionModule(nn.Module):
    """Parallel branches of BasicBlocks followed by the all-to-all fuse layers (FUSE: SUM)."""

    def __init__(
        self,
        num_inchannels: list[int],
        num_blocks: tuple[int, ...],
        num_channels: tuple[int, ...],
        multi_scale_output: bool = True,
    ):
        super().__init__()
        self.num_branches = len(num_channels)
        self.num_inchannels = list(num_inchannels)
        self.multi_scale_output = multi_scale_output
        self.branches = nn.ModuleList(
            _make_blocks(self.num_inchannels[i], num_channels[i], num_blocks[i], BasicBlock)
            for i in range(self.num_branches)
        )
        self.num_inchannels = [c * BasicBlock.expansion for c in num_channels]
        self.fuse_layers = self._make_fuse_layers()
        self.relu = nn.ReLU(True)

    def _make_fuse_layers(self) -> nn.ModuleList | None:
        if self.num_branches == 1:
            return None
        nin = self.num_inchannels
        fuse_layers = []
        for i in range(self.num_branches if self.multi_scale_output else 1):
            row: list[nn.Module | None] = []
            for j in range(self.num_branches):
                if j > i:
                    row.append(
                        nn.Sequential(
                            nn.Conv2d(nin[j], nin[i], 1, 1, 0, bias=False),
                            nn.BatchNorm2d(nin[i], momentum=BN_MOMENTUM),
                            nn.Upsample(scale_factor=2 ** (j - i), mode="nearest"),
                        )
                    )
                elif j == i:
                    row.append(None)
                else:
                    convs: list[nn.Module] = []
                    for k in range(i - j):
                        if k == i - j - 1:
                            convs.append(
                                nn.Sequential(
                                    nn.Conv2d(nin[j], nin[i], 3, 2, 1, bias=False),
                                    nn.BatchNorm2d(nin[i], momentum=BN_MOMENTUM),
                                )
                            )
                        else:
                            convs.append(
                                nn.Sequential(
                                    nn.Conv2d(nin[j], nin[j], 3, 2, 1, bias=False),
                                    nn.BatchNorm2d(nin[j], momentum=BN_MOMENTUM),
                                    nn.ReLU(True),
                                )
                            )
                    row.append(nn.Sequential(*convs))
            fuse_layers.append(nn.ModuleList(row))
        return nn.ModuleList(fuse_layers)

    def forward(self, x: list[torch.Tensor]) -> list[torch.Tensor]:
        if self.num_branches == 1:
            return [self.branches[0](x[0])]
        x = [branch(xi) for branch, xi in zip(self.branches, x, strict=True)]
        assert self.fuse_layers is not None
        out = []
        for i, row in enumerate(self.fuse_layers):
            y = x[0] if i == 0 else row[0](x[0])
            for j in range(1, self.num_branches):
                y = y + (x[j] if i == j else row[j](x[j]))
            out.append(self.relu(y))
        return out


class PoseHighResolutionNet(nn.Module):
    """HRNet for top-down pose: B×3×H×W image crops → B×J×H/4×W/4 heatmaps (no sigmoid)."""

    def __init__(self, cfg: HRNetConfig | None = None):
        super().__init__()
        cfg = cfg or HRNetConfig()
        self.cfg = cfg
        sw = cfg.stem_width
        self.conv1 = nn.Conv2d(3, sw, kernel_size=3, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(sw, momentum=BN_MOMENTUM)
        self.conv2 = nn.Conv2d(sw, sw, kernel_size=3, stride=2, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(sw, momentum=BN_MOMENTUM)
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = _make_blocks(sw, cfg.layer1_planes, cfg.layer1_blocks, Bottleneck)

        pre = [cfg.layer1_planes * Bottleneck.expansion]
        self.transition1 = self._make_transition_layer(pre, list(cfg.stage2.channels))
        self.stage2, pre = self._make_stage(cfg.stage2, list(cfg.stage2.channels))
        self.transition2 = self._make_transition_layer(pre, list(cfg.stage3.channels))
        self.stage3, pre = self._make_stage(cfg.stage3, list(cfg.stage3.channels))
        self.transition3 = self._make_transition_layer(pre, list(cfg.stage4.channels))
        self.stage4, pre = self._make_stage(cfg.stage4, list(cfg.stage4.channels), multi_scale_output=False)
        k = cfg.final_conv_kernel
        self.final_layer = nn.Conv2d(pre[0], cfg.num_joints, kernel_size=k, stride=1, padding=1 if k == 3 else 0)

    @staticmethod
    def _make_transition_layer(pre: list[int], cur: list[int]) -> nn.ModuleList:
        layers: list[nn.Module | None] = []
        for i in range(len(cur)):
            if i < len(pre):
                if cur[i] != pre[i]:
                    layers.append(
                        nn.Sequential(
                            nn.Conv2d(pre[i], cur[i], 3, 1, 1, bias=False),
                            nn.BatchNorm2d(cur[i], momentum=BN_MOMENTUM),
                            nn.ReLU(inplace=True),
                        )
                    )
                else:
                    layers.append(None)
            else:
                convs = []
                for j in range(i + 1 - len(pre)):
                    cin = pre[-1]
                    cout = cur[i] if j == i - len(pre) else cin
                    convs.append(
                        nn.Sequential(
                            nn.Conv2d(cin, cout, 3, 2, 1, bias=False),
                            nn.BatchNorm2d(cout, momentum=BN_MOMENTUM),
                            nn.ReLU(inplace=True),
                        )
                    )
                layers.append(nn.Sequential(*convs))
        return nn.ModuleList(layers)

    @staticmethod
    def _make_stage(
        stage: StageConfig, num_inchannels: list[int], multi_scale_output: bool = True
    ) -> tuple[nn.Sequential, list[int]]:
        modules = []
        for i in range(stage.num_modules):
            reset = not (not multi_scale_output and i == stage.num_modules - 1)
            module = HighResolutionModule(num_inchannels, stage.num_blocks, stage.channels, reset)
            modules.append(module)
            num_inchannels = module.num_inchannels
        return nn.Sequential(*modules), num_inchannels

    @staticmethod
    def _transition(transition: nn.ModuleList, y_list: list[torch.Tensor], n: int) -> list[torch.Tensor]:
        # Like the official code, every new or re-projected branch is fed from the lowest-resolution
        # output of the previous stage (y_list[-1]).
        out = []
        for i in range(n):
            t = transition[i]
            out.append(t(y_list[-1]) if t is not None else y_list[i])
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.relu(self.bn2(self.conv2(x)))
        x = self.layer1(x)
        x_list = [t(x) if t is not None else x for t in self.transition1]
        y_list = self.stage2(x_list)
        y_list = self.stage3(self._transition(self.transition2, y_list, len(self.cfg.stage3.channels)))
        y_list = self.stage4(self._transition(self.transition3, y_list, len(self.cfg.stage4.channels)))
        return self.final_layer(y_list[0])
