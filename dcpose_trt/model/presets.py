"""Model presets: backbone widths, input size and pre-processing constants, as plain data."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from dcpose_trt.errors import InputError
from dcpose_trt.model.hrnet import HRNetConfig, StageConfig


@dataclass(frozen=True)
class Preset:
    """Everything that fixes a model's shapes and pre-processing.

    Attributes:
        name: preset id, e.g. ``"w48-384x288"``.
        hrnet: backbone widths/depths.
        image_size: crop (H, W) fed to the backbone.
        mean, std: ImageNet normalisation of RGB values in [0, 1].
    """

    name: str
    hrnet: HRNetConfig
    image_size: tuple[int, int]
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    aspect_ratio: float = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "aspect_ratio", self.image_size[1] / self.image_size[0])

    @property
    def heatmap_size(self) -> tuple[int, int]:
        """Heatmap (h, w): the backbone's stride is 4."""
        return self.image_size[0] // 4, self.image_size[1] // 4


PRESETS: dict[str, Preset] = {
    # Official DCPose: HRNet-W48, 384×288 crops, 96×72 heatmaps.
    "w48-384x288": Preset("w48-384x288", HRNetConfig(), (384, 288)),
    # Edge: HRNet-W32 at 256×192 (the standard COCO HRNet-W32 configuration).
    "w32-256x192": Preset(
        "w32-256x192",
        HRNetConfig(
            stage2=StageConfig(1, (4, 4), (32, 64)),
            stage3=StageConfig(4, (4, 4, 4), (32, 64, 128)),
            stage4=StageConfig(3, (4, 4, 4, 4), (32, 64, 128, 256)),
        ),
        (256, 192),
    ),
    # Tiny CPU preset for demos, tests and training on a laptop: W16, one module per stage, 2 blocks
    # per branch, 128×96 crops (32×24 heatmaps). The temporal head is the official one.
    "tiny-128x96": Preset(
        "tiny-128x96",
        HRNetConfig(
            stem_width=32,
            layer1_planes=16,
            layer1_blocks=1,
            stage2=StageConfig(1, (2, 2), (16, 32)),
            stage3=StageConfig(1, (2, 2, 2), (16, 32, 64)),
            stage4=StageConfig(1, (2, 2, 2, 2), (16, 32, 64, 128)),
        ),
        (128, 96),
    ),
}

DEFAULT_PRESET = "w48-384x288"

#: The tiny DCPose trained on synthetic videos that ships with the package (see assets/README.md).
BUNDLED_MODEL = Path(__file__).resolve().parents[1] / "assets" / "dcpose_tiny.pth"
BUNDLED_PRESET = "tiny-128x96"


def bundled_model_path() -> Path | None:
    """The bundled checkpoint, or None when this install does not have it."""
    return BUNDLED_MODEL if BUNDLED_MODEL.is_file() else None


def get_preset(name: str) -> Preset:
    """Look a preset up by name; raises :class:`InputError` listing the valid names."""
    try:
        return PRESETS[name]
    except KeyError:
        raise InputError(f"unknown preset {name!r}; choose one of: {', '.join(PRESETS)}") from None
