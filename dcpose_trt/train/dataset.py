"""DCPose training samples: [current, previous, next] crops with the current GT box (spec §4, §5)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from dcpose_trt.data.posetrack import read_frame
from dcpose_trt.data.transforms import affine_points, box_to_center_scale, crop_person, get_affine_transform, to_input
from dcpose_trt.errors import DataError
from dcpose_trt.model.presets import Preset
from dcpose_trt.train.targets import FLIP_PAIRS, gaussian_targets, half_body_box


@dataclass(frozen=True)
class Sample:
    """One annotated person: frame paths [current, previous, next], joints float[17, 3], GT box (x, y, w, h)."""

    paths: tuple[str, str, str]
    joints: np.ndarray
    box: tuple[float, float, float, float]


@dataclass(frozen=True)
class AugmentConfig:
    """Official augmentation (spec §5); ``enabled=False`` gives the plain evaluation crop."""

    enabled: bool = True
    scale_factor: float = 0.35
    rot_factor: float = 45.0
    rot_prob: float = 0.6
    flip: bool = True
    half_body_prob: float = 0.3
    half_body_min_joints: int = 8


def training_samples(root: str | Path, split: str = "train") -> list[Sample]:
    """Every annotated person of every labelled frame of a PoseTrack-layout dataset (GT boxes)."""
    from dcpose_trt.data.posetrack import load_split

    data = load_split(root, split)
    samples = []
    for video, frame in data.labeled_frames():
        prev, nxt = video.neighbours(frame.index)
        paths = (str(frame.path), str(video.frame_path(prev)), str(video.frame_path(nxt)))
        for person in frame.persons:
            kps = np.asarray(person.keypoints, np.float32).reshape(17, 3)
            if kps.max() <= 0 or person.bbox is None or person.bbox[2] <= 1 or person.bbox[3] <= 1:
                continue
            samples.append(Sample(paths, kps, tuple(float(v) for v in person.bbox[:4])))
    if not samples:
        raise DataError(f"no annotated persons in split {split!r} of {root}")
    return samples


class PoseTrackTrainSet(Dataset):
    """Torch dataset of DCPose training tuples.

    Items: ``frames`` float32[9, H, W], ``margin`` float32[2] (always [1, 1] as officially),
    ``target`` float32[17, H/4, W/4], ``target_weight`` float32[17].
    """

    def __init__(self, samples: list[Sample], preset: Preset, sigma: float, augment: AugmentConfig,
                 seed: int = 0):
        self.samples = samples
        self.preset = preset
        self.sigma = sigma
        self.augment = augment
        self.seed = seed
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        s = self.samples[i]
        rng = np.random.default_rng((self.seed, self.epoch, i))
        h, w = self.preset.image_size
        aspect = w / h
        images = [read_frame(p) for p in s.paths]
        img_w = images[0].shape[1]
        joints = s.joints[:, :2].astype(np.float32).copy()
        vis = (s.joints[:, 2] > 0).astype(np.float32)
        center, scale = box_to_center_scale(s.box, aspect)
        rot = 0.0
        flip = False
        a = self.augment
        if a.enabled:
            if vis.sum() > a.half_body_min_joints and rng.random() < a.half_body_prob:
                hb = half_body_box(joints, vis, rng, aspect)
                if hb is not None:
                    center, scale = hb
            sf = a.scale_factor
            scale = scale * float(np.clip(rng.standard_normal() * sf + 1, 1 - sf, 1 + sf))
            if rng.random() <= a.rot_prob:
                rot = float(np.clip(rng.standard_normal() * a.rot_factor, -2 * a.rot_factor, 2 * a.rot_factor))
            flip = a.flip and rng.random() <= 0.5
        if flip:
            # The same flip on all three frames; joints mirror and swap left/right.
            images = [img[:, ::-1] for img in images]
            joints[:, 0] = img_w - joints[:, 0] - 1
            for l, r in FLIP_PAIRS:
                joints[[l, r]] = joints[[r, l]]
                vis[[l, r]] = vis[[r, l]]
            center = center.copy()
            center[0] = img_w - center[0] - 1
        trans = get_affine_transform(center, scale, rot, (w, h))
        frames = np.concatenate([to_input(crop_person(np.ascontiguousarray(img), trans, (h, w)),
                                          self.preset.mean, self.preset.std) for img in images])
        pts = affine_points(joints, trans)
        inside = (pts[:, 0] >= 0) & (pts[:, 0] < w) & (pts[:, 1] >= 0) & (pts[:, 1] < h)
        vis = vis * inside
        target, weight = gaussian_targets(pts, vis, (h, w), self.sigma)
        return {
            "frames": torch.from_numpy(frames),
            "margin": torch.ones(2),
            "target": torch.from_numpy(target),
            "target_weight": torch.from_numpy(weight),
        }
