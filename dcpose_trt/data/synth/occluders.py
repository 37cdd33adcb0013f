"""What hides joints besides people: poles, signs, bushes, fast movers, one-frame flashes; motion blur."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from dcpose_trt.data.synth.texture import paint, texture


@dataclass
class Occluder:
    kind: str  # "pole" | "sign" | "bush" (world-fixed) | "mover" (image space) | "flash"
    tile: np.ndarray
    geom: tuple  # kind-specific
    t0: int = 0
    t1: int = 1 << 30


def make_static_occluder(rng: np.random.Generator, cam0: np.ndarray, W: int, H: int) -> Occluder:
    kind = str(rng.choice(["pole", "sign", "bush"]))
    cx = cam0[0] + rng.uniform(-0.35, 0.35) * W
    if kind == "pole":
        w = rng.uniform(0.02, 0.06) * W
        y0 = cam0[1] - H * rng.uniform(0.3, 0.8)
        geom = (cx - w / 2, y0, w, cam0[1] + H - y0)
    elif kind == "sign":
        w, h = rng.uniform(0.08, 0.2) * W, rng.uniform(0.08, 0.2) * H
        geom = (cx - w / 2, cam0[1] + rng.uniform(-0.35, 0.2) * H, w, h)
    else:
        w, h = rng.uniform(0.12, 0.3) * W, rng.uniform(0.1, 0.25) * H
        geom = (cx, cam0[1] + H * rng.uniform(0.3, 0.5), w / 2, h / 2)
    return Occluder(kind, texture(rng), geom)


def make_mover(rng: np.random.Generator, frames: int, W: int, H: int) -> Occluder:
    """An object crossing the image fast (a ball, a passer-by's bag): covers joints for a few frames."""
    r = rng.uniform(0.05, 0.12) * H
    speed = rng.uniform(10, 22) * (1 if rng.random() < 0.5 else -1)
    y = rng.uniform(0.2, 0.85) * H
    t0 = int(rng.integers(0, max(frames - 3, 1)))
    x_start = -r if speed > 0 else W + r
    return Occluder("mover", texture(rng), (x_start, y, speed, r, rng.uniform(0.6, 1.6)), t0=t0)


def draw_occluder(frame: np.ndarray, oc: Occluder, t: int, cam_c: np.ndarray, zoom: float) -> None:
    H, W = frame.shape[:2]
    if not oc.t0 <= t < oc.t1:
        return
    mask = np.zeros((H, W), np.uint8)
    ctr = np.array([W / 2, H / 2])

    def to_img(q: Sequence[float]) -> np.ndarray:
        return zoom * (np.asarray(q, float) - cam_c) + ctr

    if oc.kind in ("pole", "sign"):
        x, y, w, h = oc.geom
        a, b = to_img((x, y)), to_img((x + w, y + h))
        cv2.rectangle(mask, tuple(int(v) for v in a), tuple(int(v) for v in b), 1, -1)
        if oc.kind == "sign":  # the sign stands on a post
            m = (a + b) / 2
            cv2.rectangle(mask, (int(m[0]) - 2, int(b[1])), (int(m[0]) + 2, H), 1, -1)
        toff = tuple(int(v) for v in a)
    elif oc.kind == "bush":
        cx, cy, rx, ry = oc.geom
        c = to_img((cx, cy))
        cv2.ellipse(mask, tuple(int(v) for v in c), (int(rx * zoom), int(ry * zoom)), 0, 0, 360, 1, -1)
        toff = tuple(int(v) for v in c)
    elif oc.kind == "mover":
        x, y, speed, r, aspect = oc.geom
        c = (x + speed * (t - oc.t0), y)
        cv2.ellipse(mask, (int(c[0]), int(c[1])), (int(r * aspect), int(r)), 0, 0, 360, 1, -1)
        toff = (int(c[0]), int(c[1]))
    else:  # flash: image-space rectangle for a single frame
        x, y, w, h = oc.geom
        cv2.rectangle(mask, (int(x), int(y)), (int(x + w), int(y + h)), 1, -1)
        toff = (int(x), int(y))
    paint(frame, mask.astype(bool), 0, 0, oc.tile, toff)


def motion_blur(img: np.ndarray, length: int, angle: float) -> np.ndarray:
    k = np.zeros((length, length), np.float32)
    c = (length - 1) / 2
    dx, dy = math.cos(angle) * c, math.sin(angle) * c
    cv2.line(k, (int(round(c - dx)), int(round(c - dy))), (int(round(c + dx)), int(round(c + dy))), 1.0, 1)
    return cv2.filter2D(img, -1, k / k.sum(), borderType=cv2.BORDER_REFLECT)
