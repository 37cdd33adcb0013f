"""Training targets and augmentation, as the official DCPose/HRNet data pipeline (spec §4.4, §5)."""

from __future__ import annotations

import numpy as np

# COCO left/right pairs (ears, shoulders, elbows, wrists, hips, knees, ankles).
FLIP_PAIRS = ((3, 4), (5, 6), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16))
UPPER_BODY = (0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10)


def gaussian_targets(
    joints: np.ndarray, vis: np.ndarray, image_size_hw: tuple[int, int], sigma: float
) -> tuple[np.ndarray, np.ndarray]:
    """Unnormalised Gaussian heatmaps (peak 1) at stride 4.

    Args:
        joints: float[J, 2] joint positions in crop pixels.
        vis: float[J] 0/1 visibility (annotated and inside the crop).
        image_size_hw: crop (H, W).
        sigma: Gaussian std in heatmap cells.

    Returns:
        target float32[J, H/4, W/4] and target_weight float32[J] (0 where not annotated or the
        Gaussian lies wholly outside the map).
    """
    h, w = image_size_hw[0] // 4, image_size_hw[1] // 4
    stride = image_size_hw[1] / w
    nj = len(joints)
    target = np.zeros((nj, h, w), np.float32)
    weight = vis.astype(np.float32).copy()
    tmp = sigma * 3
    size = int(2 * tmp + 1)
    xs = np.arange(size, dtype=np.float32)
    g = np.exp(-((xs[None] - size // 2) ** 2 + (xs[:, None] - size // 2) ** 2) / (2 * sigma**2))
    for j in range(nj):
        if weight[j] <= 0:
            continue
        mu_x = int(joints[j, 0] / stride + 0.5)
        mu_y = int(joints[j, 1] / stride + 0.5)
        ul = (int(mu_x - tmp), int(mu_y - tmp))
        br = (int(mu_x + tmp + 1), int(mu_y + tmp + 1))
        if ul[0] >= w or ul[1] >= h or br[0] < 0 or br[1] < 0:
            weight[j] = 0
            continue
        gx = max(0, -ul[0]), min(br[0], w) - ul[0]
        gy = max(0, -ul[1]), min(br[1], h) - ul[1]
        ix = max(0, ul[0]), min(br[0], w)
        iy = max(0, ul[1]), min(br[1], h)
        target[j, iy[0] : iy[1], ix[0] : ix[1]] = g[gy[0] : gy[1], gx[0] : gx[1]]
    return target, weight


def half_body_box(joints: np.ndarray, vis: np.ndarray, rng: np.random.Generator,
                  aspect_ratio: float) -> tuple[np.ndarray, np.ndarray] | None:
    """Official half-body augmentation: center/scale around the upper or lower body joints (×1.5)."""
    upper = [j for j in range(len(joints)) if vis[j] > 0 and j in UPPER_BODY]
    lower = [j for j in range(len(joints)) if vis[j] > 0 and j not in UPPER_BODY]
    chosen = upper if (rng.standard_normal() < 0.5 and len(upper) > 2) else lower
    if len(chosen) < 2:
        chosen = upper if len(upper) > len(lower) else lower
    if len(chosen) < 2:
        return None
    pts = joints[chosen]
    center = pts.mean(axis=0).astype(np.float32)
    lt, rb = pts.min(axis=0), pts.max(axis=0)
    w, h = rb[0] - lt[0], rb[1] - lt[1]
    if w > aspect_ratio * h:
        h = w / aspect_ratio
    elif w < aspect_ratio * h:
        w = h * aspect_ratio
    scale = np.array([w / 200.0, h / 200.0], np.float32) * 1.5
    return center, scale


def joint_mse_loss(pred, target, weight):
    """Official JointMSELoss: Σ_j MSE_mean(pred_j·w_j, gt_j·w_j) / J (no 0.5 factor).

    pred, target: Tensor[B, J, h, w]; weight: Tensor[B, J].
    """
    b, j = pred.shape[:2]
    w = weight.reshape(b, j, 1)
    p = pred.reshape(b, j, -1) * w
    t = target.reshape(b, j, -1) * w
    return ((p - t) ** 2).mean(dim=(0, 2)).sum() / j
