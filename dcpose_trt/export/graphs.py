"""The graphs exported: one ``nn.Module`` per graph (input names come from ``forward``'s parameters),
example inputs, the I/O docs written into the file, and the DCN form swapped in while tracing."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import Tensor, nn

from dcpose_trt.model import use_deform_conv
from dcpose_trt.model.dcpose import DCPose
from dcpose_trt.model.deform import deform_conv2d_gridsample


class Backbone(nn.Module):
    def __init__(self, model: DCPose):
        super().__init__()
        self.model = model

    def forward(self, image: Tensor) -> Tensor:
        return self.model.backbone(image)


class Head(nn.Module):
    def __init__(self, model: DCPose):
        super().__init__()
        self.model = model

    def forward(self, cur: Tensor, prev: Tensor, next: Tensor, margin: Tensor) -> Tensor:  # noqa: A002
        return self.model.head(cur, prev, next, margin)


def part_spec(model: DCPose, part: str, batch: int) -> tuple[nn.Module, tuple[Tensor, ...], list[str], str]:
    """(module, example inputs, input names, scope prefix to strip) for one graph."""
    h, w = model.preset.image_size
    hh, hw = model.preset.heatmap_size
    g = torch.Generator().manual_seed(0)
    margin = torch.ones(batch, 2)
    if part == "full":
        return model, (torch.randn(batch, 9, h, w, generator=g), margin), ["frames", "margin"], ""
    if part == "backbone":
        return Backbone(model).eval(), (torch.randn(batch, 3, h, w, generator=g),), ["image"], "model."
    hm = [torch.randn(batch, 17, hh, hw, generator=g) * 0.1 for _ in range(3)]
    return Head(model).eval(), (*hm, margin), ["cur", "prev", "next", "margin"], "model."


INPUT_DOCS = {
    "frames": "float32[persons, 9, H, W]: crops of frames [current, previous, next], RGB, ImageNet-normalised",
    "margin": "float32[persons, 2]: frame distance [previous, next] ([1, 1] for adjacent frames)",
    "image": "float32[persons, 3, H, W]: one RGB ImageNet-normalised crop",
    "cur": "float32[persons, 17, h, w]: backbone heatmaps of the current frame",
    "prev": "float32[persons, 17, h, w]: backbone heatmaps of the previous frame",
    "next": "float32[persons, 17, h, w]: backbone heatmaps of the next frame",
    "heatmaps": "float32[persons, 17, h, w]: joint heatmaps (h, w = H/4, W/4)",
}


@contextlib.contextmanager
def exporting(model: DCPose, deform: str) -> Iterator[None]:
    """Put the model in the DCN form being exported (gridsample swaps the function; others trace torchvision)."""
    if deform == "gridsample":
        with use_deform_conv(model, deform_conv2d_gridsample):
            yield
    else:
        yield
