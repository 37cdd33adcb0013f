"""What ``dcpose-trt synth`` makes: its configuration, the per-split difficulty, video names and ids."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dcpose_trt.errors import InputError


@dataclass(frozen=True)
class SynthConfig:
    """What ``dcpose-trt synth`` makes.

    Attributes:
        out (Path): output root.
        videos (int): number of videos (train + val). Defaults to 60.
        frames (int): frames per video (< 10000, the PoseTrack18 id scheme). Defaults to 30.
        seed (int): everything is a pure function of it. Defaults to 0.
        split_ratio (float): fraction of videos in ``train``; the rest is ``val`` (at least one
            video each when ``videos >= 2``). Defaults to 0.8.
        size (tuple[int, int]): frame (width, height) in pixels. Defaults to (320, 240).
        hard_val (bool): val videos get more occlusion and blur than train. Defaults to True.
        workers (int): processes; 0 means ``min(4, cpu count)``. Output does not depend on it.
    """

    out: Path
    videos: int = 60
    frames: int = 30
    seed: int = 0
    split_ratio: float = 0.8
    size: tuple[int, int] = (320, 240)
    hard_val: bool = True
    workers: int = 0

    def __post_init__(self) -> None:
        if self.videos < 1:
            raise InputError(f"--videos must be >= 1, got {self.videos}")
        if not 1 <= self.frames < 10000:
            raise InputError(f"--frames must be in [1, 9999], got {self.frames}")
        if not 0.0 <= self.split_ratio <= 1.0:
            raise InputError(f"--split-ratio must be in [0, 1], got {self.split_ratio}")
        w, h = self.size
        if w < 64 or h < 48:
            raise InputError(f"--size must be at least 64x48, got {w}x{h}")
        if self.videos > 999999:
            raise InputError(f"--videos must be < 1000000 (6-digit video ids), got {self.videos}")
        if self.workers < 0:
            raise InputError(f"--workers must be >= 0, got {self.workers}")


@dataclass(frozen=True)
class Difficulty:
    """Per-split rates of the things that hide joints (probabilities are per frame unless noted)."""

    motion_blur: float = 0.08
    defocus: float = 0.05
    flash_rate: float = 0.25  # mean number of one-frame patches over random joints, per frame
    static_occluders: tuple[int, int] = (0, 2)  # inclusive range per video
    moving_occluders: tuple[int, int] = (0, 1)
    miss_rate: float = 0.04  # detector misses

    @staticmethod
    def for_split(split: str, hard_val: bool) -> Difficulty:
        if split == "val" and hard_val:
            return Difficulty(
                motion_blur=0.2,
                defocus=0.15,
                flash_rate=1.0,
                static_occluders=(1, 3),
                moving_occluders=(1, 2),
                miss_rate=0.06,
            )
        return Difficulty()


def split_of(index: int, cfg: SynthConfig) -> str:
    """``"train"`` for the first ``round(videos * split_ratio)`` videos, ``"val"`` for the rest."""
    n_train = round(cfg.videos * cfg.split_ratio)
    if cfg.videos >= 2 and 0.0 < cfg.split_ratio < 1.0:
        n_train = min(max(n_train, 1), cfg.videos - 1)
    return "train" if index < n_train else "val"


def video_name(index: int, split: str) -> str:
    """PoseTrack-like video folder name, e.g. ``000001_synth_train`` (ids are 1-based)."""
    return f"{index + 1:06d}_synth_{split}"


def frame_image_id(video_id: int, frame: int) -> int:
    """PoseTrack18 image id: ``1`` + 6-digit video id + 4-digit frame, e.g. 10034180000."""
    return int(f"1{video_id:06d}{frame:04d}")
