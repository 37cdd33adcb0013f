"""Synthetic pose videos in the PoseTrack18 layout, made so that temporal context pays off.

There are no pretrained DCPose weights where this project is developed, so it trains its own tiny
model on videos made here. Each video shows 1-4 articulated people (17 COCO-order joints, PoseTrack
semantics: ``head_bottom``/``head_top`` in the eye slots, ears never annotated) walking, waving or
dancing in front of a textured background, filmed by a panning, zooming camera. People cross and
occlude each other; static poles and signs, fast moving objects and one-frame "flash" occluders
hide joints; some frames get motion blur or defocus. Joints that are hidden but inside the frame
keep ``v=1`` (as in PoseTrack, where occluded joints are annotated and evaluated), so a joint that is
covered or smeared in frame t but clear in t-1 and t+1 is exactly where a temporal model can beat a
single-frame one. Joints outside the frame are written as ``(0, 0, 0)`` (PoseTrack's "not annotated").

Layout written under ``out`` (the same as PoseTrack18, plus a detections folder)::

    images/{train,val}/<video>/<frame:06d>.jpg
    annotations/{train,val}/<video>.json      # PoseTrack18 per-video schema
    detections/{train,val}.json               # COCO detection list, jittered like a real detector

Everything is a pure function of ``seed``: each video has its own generator seeded by
``(seed, video index)``, so output does not depend on the number of worker processes.

Rendering and writing are separate: :func:`render_video` yields :class:`SynthFrame` s (image,
annotation and detection dicts) in memory; :func:`write_video` / :func:`generate` write them (JPEG
frames here, the PoseTrack documents and detection files with the writers beside their readers in
:mod:`dcpose_trt.data.posetrack`), every file atomically.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from dcpose_trt._atomic import atomic_write_bytes
from dcpose_trt.data.posetrack import write_boxes_file, write_video_annotations
from dcpose_trt.errors import InputError

log = logging.getLogger(__name__)

_JPEG_QUALITY = 90
_TILE = 64  # texture tile side, pixels


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


# ----------------------------------------------------------------------------------------------
# Textures


def _texture(rng: np.random.Generator, base: np.ndarray | None = None) -> np.ndarray:
    """A ``_TILE``x``_TILE``x3 uint8 tileable texture: stripes, checks, speckle or plain+noise."""
    c1 = rng.integers(20, 236, 3) if base is None else base
    c2 = np.clip(c1.astype(int) + rng.integers(-90, 91, 3), 0, 255)
    yy, xx = np.mgrid[0:_TILE, 0:_TILE]
    kind = rng.integers(0, 5)
    if kind == 0:  # stripes, any of 4 orientations, period divides the tile so it tiles
        period = int(rng.choice([4, 8, 16]))
        coord = [yy, xx, xx + yy, xx - yy][rng.integers(0, 4)]
        m = (coord % period) < period // 2
    elif kind == 1:  # checks
        period = int(rng.choice([8, 16]))
        m = ((xx // (period // 2)) + (yy // (period // 2))) % 2 == 0
    elif kind == 2:  # speckle
        m = rng.random((_TILE, _TILE)) < 0.3
    else:  # plain
        m = np.zeros((_TILE, _TILE), bool)
    tex = np.where(m[..., None], c2, c1).astype(np.float32)
    tex += rng.normal(0, 6, (_TILE, _TILE, 1))  # fabric grain
    return np.clip(tex, 0, 255).astype(np.uint8)


def _background(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    """A textured world canvas h x w x 3 (BGR uint8): sky/ground, buildings, blobs, lines, noise."""
    horizon = int(h * rng.uniform(0.3, 0.5))
    img = np.empty((h, w, 3), np.float32)
    sky0, sky1 = rng.integers(60, 250, 3), rng.integers(60, 250, 3)
    g0, g1 = rng.integers(20, 200, 3), rng.integers(20, 200, 3)
    t = np.linspace(0, 1, h)[:, None, None]
    img[:] = np.where(np.arange(h)[:, None, None] < horizon, sky0 + (sky1 - sky0) * t, g0 + (g1 - g0) * t)
    img = img.astype(np.uint8)
    for _ in range(int(rng.integers(4, 12))):  # buildings / walls
        x0 = int(rng.integers(-w // 8, w))
        bw, bh = int(rng.integers(w // 16, w // 4)), int(rng.integers(h // 10, horizon + 1))
        col = tuple(int(c) for c in rng.integers(30, 230, 3))
        cv2.rectangle(img, (x0, horizon - bh), (x0 + bw, horizon), col, -1)
        for _ in range(int(rng.integers(0, 8))):  # windows
            wx, wy = x0 + int(rng.integers(0, max(bw, 1))), horizon - int(rng.integers(0, max(bh, 1)))
            cv2.rectangle(img, (wx, wy), (wx + 6, wy + 8), tuple(int(c) for c in rng.integers(0, 255, 3)), -1)
    for _ in range(int(rng.integers(10, 30))):  # blobs, tufts, ground marks
        c = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        ax = (int(rng.integers(3, w // 10)), int(rng.integers(2, h // 12)))
        cv2.ellipse(
            img, c, ax, float(rng.uniform(0, 180)), 0, 360, tuple(int(v) for v in rng.integers(0, 255, 3)), -1
        )
    for _ in range(int(rng.integers(3, 10))):  # lines: fences, court markings, cables
        p = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        q = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        cv2.line(img, p, q, tuple(int(v) for v in rng.integers(0, 255, 3)), int(rng.integers(1, 4)))
    noise = rng.normal(0, 1, (h // 8 + 1, w // 8 + 1, 3)).astype(np.float32)
    noise = cv2.resize(noise, (w, h), interpolation=cv2.INTER_CUBIC) * 10 + rng.normal(0, 4, (h, w, 3))
    return np.clip(img + noise, 0, 255).astype(np.uint8)


def _tiled(tile: np.ndarray, h: int, w: int) -> np.ndarray:
    """``tile`` repeated to cover at least (h + _TILE) x (w + _TILE), so any window is a plain slice."""
    reps = (h // _TILE + 2, w // _TILE + 2, 1)
    return np.tile(tile, reps)


def _paint(
    frame: np.ndarray,
    mask: np.ndarray,
    x0: int,
    y0: int,
    tile: np.ndarray,
    tex_offset: tuple[int, int],
    shade: float = 1.0,
) -> None:
    """Paint ``tile`` (tiled, shifted by ``tex_offset`` so it moves with its owner) where ``mask``.

    ``mask`` is an h x w bool array whose top-left corner sits at image pixel (x0, y0); the part
    outside the frame is ignored.
    """
    H, W = frame.shape[:2]
    h, w = mask.shape
    fx0, fy0, fx1, fy1 = max(x0, 0), max(y0, 0), min(x0 + w, W), min(y0 + h, H)
    if fx1 <= fx0 or fy1 <= fy0:
        return
    m = mask[fy0 - y0 : fy1 - y0, fx0 - x0 : fx1 - x0]
    # Shrink to the mask's bounding box: most masks are small and the copy below is per pixel.
    bx, by, bw, bh = cv2.boundingRect(m.view(np.uint8))
    if bw == 0:
        return
    m = m[by : by + bh, bx : bx + bw]
    fx0, fy0 = fx0 + bx, fy0 + by
    big = _tiled(tile, bh, bw)
    oy, ox = (fy0 - tex_offset[1]) % _TILE, (fx0 - tex_offset[0]) % _TILE
    tex = big[oy : oy + bh, ox : ox + bw]
    if shade != 1.0:
        tex = (tex * shade).astype(np.uint8)
    np.copyto(frame[fy0 : fy0 + bh, fx0 : fx0 + bw], tex, where=m[..., None])


# ----------------------------------------------------------------------------------------------
# People

# Body model in units of body height, pelvis at the origin; x = the person's left, y = down,
# z = the direction the person faces. Proportions follow standard anthropometric tables.
_SHOULDER_Y, _SHOULDER_X, _HIP_X = -0.29, 0.115, 0.075
_UPPER_ARM, _FOREARM, _THIGH, _SHIN = 0.165, 0.145, 0.245, 0.245
_HEAD_TOP_Y, _HEAD_BOTTOM_Y = -0.475, -0.345

# Materials of the per-person label canvas (value = material + 8 * shade level).
_SHIRT, _PANTS, _SKIN, _HAIR, _DARK, _LOGO, _SLEEVE = 1, 2, 3, 4, 5, 6, 7

# Degrees of freedom animated per person: angle(t) = base + amp * sin(harm * phase(t) + offset).
_DOFS = (
    "l_sho_flex",
    "r_sho_flex",
    "l_sho_abd",
    "r_sho_abd",
    "l_elbow",
    "r_elbow",
    "l_hip_flex",
    "r_hip_flex",
    "l_hip_abd",
    "r_hip_abd",
    "l_knee",
    "r_knee",
    "lean",
    "tilt",
)


@dataclass
class _Person:
    """One animated person; world units are pixels of the background canvas."""

    height: float  # world px
    x0: float  # world x of the pelvis at t = 0
    vx: float  # world px / frame
    foot_y: float  # world y of the feet
    yaw0: float  # radians; 0 = facing the camera, +pi/2 = facing image-right
    yaw_amp: float
    phase0: float
    dphase: float  # radians / frame
    build: float  # limb width factor
    angles: dict[str, tuple[float, float, float, float]]  # base, amp, harmonic, offset (radians)
    tiles: dict[int, np.ndarray]
    long_sleeves: bool
    shorts: bool
    has_logo: bool
    annotated: bool = True
    track_id: int = 0
    tex_offset: tuple[int, int] = (0, 0)
    extra: dict = field(default_factory=dict)

    def angle(self, name: str, phase: float) -> float:
        base, amp, harm, off = self.angles[name]
        return base + amp * math.sin(harm * phase + off)


def _make_person(
    rng: np.random.Generator,
    *,
    frame_w: int,
    frame_h: int,
    cam0: np.ndarray,
    frames: int,
    background: bool = False,
) -> _Person:
    d = rng.uniform(0.0, 0.25) if background else rng.uniform(0.15, 1.0)  # 0 far .. 1 near
    height = frame_h * (0.38 + 0.42 * d) * rng.uniform(0.88, 1.12)
    if background:
        height = frame_h * rng.uniform(0.18, 0.28)
    foot_y = cam0[1] - frame_h / 2 + frame_h * (0.6 + 0.38 * d) + rng.normal(0, 4)
    mode = rng.choice(["walk", "walk", "wave", "jacks", "dance"])
    direction = 1.0 if rng.random() < 0.5 else -1.0
    if mode == "walk":
        speed = rng.uniform(1.5, 4.0) * height / 150
        yaw0 = direction * rng.uniform(0.9, 2.0)  # mostly profile, sometimes three-quarter
    else:
        speed = rng.uniform(0.0, 0.6) * height / 150
        yaw0 = rng.uniform(-0.9, 0.9) if rng.random() < 0.8 else math.pi + rng.uniform(-0.6, 0.6)
    vx = direction * speed
    # Everyone passes near the image centre half-way through: people cross and occlude each other.
    x_mid = cam0[0] + rng.uniform(-0.3, 0.3) * frame_w
    x0 = x_mid - vx * frames / 2
    r = math.radians
    a: dict[str, tuple[float, float, float, float]] = {}
    u = rng.uniform
    if mode == "walk":
        amp = r(u(18, 35))
        a["l_hip_flex"] = (0.0, amp, 1, 0.0)
        a["r_hip_flex"] = (0.0, amp, 1, math.pi)
        a["l_knee"] = (r(25), r(u(15, 30)), 1, -0.8)  # knee bends most while the leg swings forward
        a["r_knee"] = (r(25), r(u(15, 30)), 1, math.pi - 0.8)
        a["l_sho_flex"] = (0.0, 0.8 * amp, 1, math.pi)  # arms swing against the legs
        a["r_sho_flex"] = (0.0, 0.8 * amp, 1, 0.0)
        a["l_elbow"] = (r(u(10, 40)), r(u(5, 20)), 1, math.pi)
        a["r_elbow"] = (r(u(10, 40)), r(u(5, 20)), 1, 0.0)
        a["l_sho_abd"] = (r(u(4, 14)), 0.0, 1, 0.0)
        a["r_sho_abd"] = (r(u(4, 14)), 0.0, 1, 0.0)
        a["lean"] = (r(u(0, 8)), r(2), 2, 0.0)
    elif mode == "wave":
        side = "l" if rng.random() < 0.5 else "r"
        other = "r" if side == "l" else "l"
        a[f"{side}_sho_abd"] = (r(u(100, 150)), r(u(15, 35)), 1, 0.0)
        a[f"{side}_elbow"] = (r(u(20, 60)), r(u(10, 40)), 1, 1.0)
        a[f"{other}_sho_abd"] = (r(u(5, 30)), r(u(0, 10)), 1, 0.5)
        a[f"{other}_elbow"] = (r(u(0, 90)), r(u(0, 20)), 1, 0.0)
        a["l_hip_flex"] = (0.0, r(u(0, 8)), 1, 0.0)
        a["r_hip_flex"] = (0.0, r(u(0, 8)), 1, math.pi)
        a["tilt"] = (0.0, r(u(0, 6)), 1, 0.3)
    elif mode == "jacks":
        arm, leg = r(u(60, 80)), r(u(10, 20))
        for s in "lr":
            a[f"{s}_sho_abd"] = (arm + r(10), arm, 1, 0.0)
            a[f"{s}_hip_abd"] = (leg, leg, 1, 0.0)
            a[f"{s}_elbow"] = (r(u(0, 25)), 0.0, 1, 0.0)
    else:  # dance: independent smooth oscillations of every joint
        for name in _DOFS:
            big = name.endswith(("abd", "flex"))
            a[name] = (
                r(u(-10, 60)) if big else r(u(0, 40)),
                r(u(5, 45)) if big else r(u(0, 25)),
                int(rng.integers(1, 3)),
                u(0, 2 * math.pi),
            )
        for k in ("l_hip_flex", "r_hip_flex"):
            a[k] = (r(u(-10, 30)), r(u(5, 30)), 1, u(0, 2 * math.pi))
        for k in ("l_hip_abd", "r_hip_abd"):
            a[k] = (r(u(0, 15)), r(u(0, 12)), 1, u(0, 2 * math.pi))
        a["lean"] = (r(u(-5, 10)), r(u(0, 10)), 1, 0.0)
        a["tilt"] = (0.0, r(u(0, 10)), 1, 0.0)
    for name in _DOFS:
        a.setdefault(name, (0.0, 0.0, 1, 0.0))
    skin_base = np.array([u(60, 200), u(90, 210), u(120, 235)])  # BGR, light to dark skin tones
    skin = np.clip(skin_base + rng.normal(0, 4, (_TILE, _TILE, 3)), 0, 255).astype(np.uint8)
    hair = np.full((_TILE, _TILE, 3), rng.integers(10, 120, 3), np.uint8)
    dark = np.full((_TILE, _TILE, 3), 25, np.uint8)
    shirt = _texture(rng)
    tiles = {
        _SHIRT: shirt,
        _PANTS: _texture(rng),
        _SKIN: skin,
        _HAIR: hair,
        _DARK: dark,
        _LOGO: _texture(rng),
        _SLEEVE: shirt,
    }
    return _Person(
        height=height,
        x0=x0,
        vx=vx,
        foot_y=foot_y,
        yaw0=yaw0,
        yaw_amp=u(0.0, 0.25),
        phase0=u(0, 2 * math.pi),
        dphase=u(0.15, 0.35) if mode != "walk" else u(0.18, 0.3),
        build=u(0.8, 1.25),
        angles=a,
        tiles=tiles,
        long_sleeves=bool(rng.random() < 0.5),
        shorts=bool(rng.random() < 0.3),
        has_logo=bool(rng.random() < 0.7),
        annotated=not background,
        tex_offset=(int(rng.integers(0, _TILE)), int(rng.integers(0, _TILE))),
    )


def _limb_dir(side: float, abd: float, flex: float) -> np.ndarray:
    """Unit vector of a limb hanging down, abducted sideways by ``abd`` then flexed forward."""
    return np.array([side * math.sin(abd) * math.cos(flex), math.cos(abd) * math.cos(flex), math.sin(flex)])


def _pose3d(p: _Person, t: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """17x3 joints (COCO order; ears at the head centre) in body units, and extra 3D points."""
    ph = p.phase0 + p.dphase * t
    A = {k: p.angle(k, ph) for k in _DOFS}
    lean, tilt = A["lean"], A["tilt"]
    # Upper body rotates about the pelvis: forward lean (y-z plane), then sideways tilt (x-y plane).
    cl, sl, ct, st = math.cos(lean), math.sin(lean), math.cos(tilt), math.sin(tilt)
    R = np.array([[ct, -st, 0], [st, ct, 0], [0, 0, 1]]) @ np.array([[1, 0, 0], [0, cl, -sl], [0, sl, cl]])
    J = np.zeros((17, 3))
    J[1] = R @ [0, _HEAD_BOTTOM_Y, 0.01]
    J[2] = R @ [0, _HEAD_TOP_Y, 0]
    head_c = R @ [0, (_HEAD_TOP_Y + _HEAD_BOTTOM_Y) / 2, 0]
    J[0] = R @ [0, _HEAD_BOTTOM_Y - 0.035, 0.05]  # nose: front of the face, below the eyes
    J[3] = J[4] = head_c
    for s, side in (("l", 1.0), ("r", -1.0)):
        i = 0 if s == "l" else 1
        sho = np.array([side * _SHOULDER_X, _SHOULDER_Y, 0])
        elb = sho + _UPPER_ARM * _limb_dir(side, A[f"{s}_sho_abd"], A[f"{s}_sho_flex"])
        # The elbow flexes the forearm forward (and further up when the arm is raised).
        wri = elb + _FOREARM * _limb_dir(side, A[f"{s}_sho_abd"], A[f"{s}_sho_flex"] + A[f"{s}_elbow"])
        J[5 + i], J[7 + i], J[9 + i] = R @ sho, R @ elb, R @ wri
        hip = np.array([side * _HIP_X, 0, 0])
        knee = hip + _THIGH * _limb_dir(side, A[f"{s}_hip_abd"], A[f"{s}_hip_flex"])
        ank = knee + _SHIN * _limb_dir(side, A[f"{s}_hip_abd"], A[f"{s}_hip_flex"] - A[f"{s}_knee"])
        J[11 + i], J[13 + i], J[15 + i] = hip, knee, ank
    extra = {
        "head_c": head_c,
        "eye_l": R @ [0.022, _HEAD_BOTTOM_Y - 0.075, 0.045],
        "eye_r": R @ [-0.022, _HEAD_BOTTOM_Y - 0.075, 0.045],
        "chest": R @ [0, -0.2, 0.06],
        "neck": R @ [0, _SHOULDER_Y, 0],
        "R": R,
    }
    return J, extra


def _project(P: np.ndarray, yaw: float) -> tuple[np.ndarray, np.ndarray]:
    """Orthographic view of body points N x 3 turned by ``yaw``: image-plane N x 2, depth N (+ = near)."""
    c, s = math.cos(yaw), math.sin(yaw)
    X = P[..., 0] * c + P[..., 2] * s
    Z = -P[..., 0] * s + P[..., 2] * c
    return np.stack([X, P[..., 1]], -1), Z


@dataclass
class _Rendered:
    keypoints: np.ndarray  # 17 x 2 image px (unclipped)
    bbox: tuple[float, float, float, float] | None  # silhouette box x, y, w, h (may leave the frame)
    head_box: tuple[float, float, float, float]
    label: np.ndarray | None  # person label canvas
    origin: tuple[int, int]


def _render_person(frame: np.ndarray, p: _Person, t: int, cam_c: np.ndarray, zoom: float) -> _Rendered:
    """Draw person ``p`` at frame ``t`` onto ``frame`` (in place) and return its 2D annotation."""
    H, W = frame.shape[:2]
    J3, ex = _pose3d(p, t)
    ph = p.phase0 + p.dphase * t
    yaw = p.yaw0 + p.yaw_amp * math.sin(0.3 * ph)
    scale = p.height * zoom  # image px per body unit
    bob = 0.012 * abs(math.sin(ph)) if abs(p.vx) > 0.5 else 0.0  # walking lifts the pelvis twice a cycle
    root_w = np.array([p.x0 + p.vx * t, p.foot_y - 0.5 * p.height * (1 + bob)])
    root = zoom * (root_w - cam_c) + np.array([W / 2, H / 2])
    pts = np.concatenate([J3, np.stack([ex[k] for k in ("head_c", "eye_l", "eye_r", "chest", "neck")])])
    xy, depth = _project(pts, yaw)
    xy = root + scale * xy
    kp = xy[:17]
    head_c, eye_l, eye_r, chest, neck = xy[17], xy[18], xy[19], xy[20], xy[21]
    dz = depth

    # Label canvas covering the whole silhouette (not clipped to the frame, so the box is honest).
    pad = 0.12 * scale
    x0, y0 = int(math.floor(kp[:, 0].min() - pad)), int(math.floor(kp[:, 1].min() - pad))
    x1, y1 = int(math.ceil(kp[:, 0].max() + pad)), int(math.ceil(kp[:, 1].max() + pad))
    lab = np.zeros((y1 - y0 + 1, x1 - x0 + 1), np.uint8)
    o = np.array([x0, y0], float)
    S = 4  # fixed-point shift for sub-pixel polygon drawing

    def fx(q: np.ndarray) -> np.ndarray:
        return np.round((q - o) * S).astype(np.int32)

    def limb(a: np.ndarray, b: np.ndarray, wa: float, wb: float, val: int) -> None:
        d = b - a
        n = np.array([-d[1], d[0]]) / (np.hypot(*d) + 1e-6)
        quad = np.stack([a + n * wa / 2, b + n * wb / 2, b - n * wb / 2, a - n * wa / 2])
        cv2.fillConvexPoly(lab, fx(quad), val, cv2.LINE_8, 2)
        cv2.circle(lab, tuple(int(v) for v in fx(a)), int(wa / 2 * S), val, -1, cv2.LINE_8, 2)
        cv2.circle(lab, tuple(int(v) for v in fx(b)), int(wb / 2 * S), val, -1, cv2.LINE_8, 2)

    bw = p.build * scale
    parts: list[tuple[float, object, tuple]] = []  # (depth, draw function, its arguments)

    def shade(z: float) -> int:
        return 8 if z < -0.02 else 0  # far-side limbs darker: a depth cue for left/right

    fore_mat = _SLEEVE if p.long_sleeves else _SKIN
    shin_mat = _SKIN if p.shorts else _PANTS
    for i in (0, 1):  # left, right
        sho, elb, wri, hip, kne, ank = 5 + i, 7 + i, 9 + i, 11 + i, 13 + i, 15 + i
        for a, b, wa, wb, mat, bias in (
            (sho, elb, 0.055, 0.045, _SLEEVE, 0.001),
            (elb, wri, 0.042, 0.034, fore_mat, 0.002),
            (hip, kne, 0.08, 0.06, _PANTS, 0.0),
            (kne, ank, 0.058, 0.045, shin_mat, 0.001),
        ):
            z = (dz[a] + dz[b]) / 2
            parts.append((z + bias, limb, (kp[a], kp[b], wa * bw, wb * bw, mat + shade(z))))

    # Torso: hull of shoulders and hips thickened front-to-back, so it keeps a width in profile.
    R = ex["R"]
    corners = []
    for j in (5, 6, 11, 12):
        for zoff in (-0.055, 0.055):
            q = J3[j] + (R @ [0, 0, zoff] if j < 11 else np.array([0, 0, zoff]))
            corners.append(q)
    cxy, _ = _project(np.stack(corners), yaw)
    cxy = root + scale * cxy

    def torso() -> None:
        hull = cv2.convexHull(fx(cxy).reshape(-1, 1, 2))
        cv2.fillConvexPoly(lab, hull, _SHIRT, cv2.LINE_8, 2)
        limb(kp[11], kp[12], 0.06 * bw, 0.06 * bw, _PANTS)  # belt line / pelvis
        if p.has_logo and math.cos(yaw) > 0.3:  # a chest print: tells front from back
            cv2.circle(lab, tuple(int(v) for v in fx(chest)), int(0.03 * scale * S), _LOGO, -1, cv2.LINE_8, 2)

    parts.append((0.0, torso, ()))

    # Head: an ellipse between head_bottom and head_top; hair at the back; eyes and nose in front.
    axis = kp[2] - kp[1]
    head_len = max(float(np.hypot(*axis)), 1.0)
    head_w = scale * (0.095 + 0.02 * abs(math.sin(yaw)))
    ang = math.degrees(math.atan2(axis[1], axis[0])) + 90.0
    front = math.cos(yaw)

    def head() -> None:
        limb(neck, kp[1], 0.05 * bw, 0.045 * bw, _SKIN)
        c = tuple(int(v) for v in fx(head_c))
        axes = (int(head_w / 2 * S), int(head_len / 2 * 1.05 * S))
        cv2.ellipse(lab, c, axes, ang, 0, 360, _SKIN, -1, cv2.LINE_8, 2)
        if front < 0.0:  # seen from behind: hair covers the head
            cv2.ellipse(lab, c, axes, ang, 0, 360, _HAIR, -1, cv2.LINE_8, 2)
        else:  # a hair cap on top, shifted to the back of the head
            back = -math.sin(yaw) * head_w * 0.25
            hc = head_c + np.array([back, 0.0]) + axis / head_len * head_len * 0.18
            cv2.ellipse(
                lab,
                tuple(int(v) for v in fx(hc)),
                (int(head_w / 2 * 0.95 * S), int(head_len * 0.36 * S)),
                ang,
                0,
                360,
                _HAIR,
                -1,
                cv2.LINE_8,
                2,
            )
            r = max(int(0.012 * scale * S), S)
            if front > 0.2:
                for e in (eye_l, eye_r):
                    cv2.circle(lab, tuple(int(v) for v in fx(e)), r, _DARK, -1, cv2.LINE_8, 2)
            cv2.circle(lab, tuple(int(v) for v in fx(kp[0])), int(r * 1.3), _DARK, -1, cv2.LINE_8, 2)

    parts.append((0.02, head, ()))
    for _, draw, args in sorted(parts, key=lambda e: e[0]):
        draw(*args)

    # Composite the label canvas with the person's textures; texture moves with the person.
    toff = (int(round(root[0])) + p.tex_offset[0], int(round(root[1])) + p.tex_offset[1])
    for val in np.unique(lab):
        if val == 0:
            continue
        mat, sh = int(val) % 8, int(val) // 8
        _paint(frame, lab == val, x0, y0, p.tiles[mat], toff, 0.7 if sh else 1.0)

    ys, xs = np.nonzero(lab)
    bbox = None
    if len(xs):
        bx0, by0, bx1, by1 = xs.min() + x0, ys.min() + y0, xs.max() + x0 + 1, ys.max() + y0 + 1
        m = 0.04 * max(bx1 - bx0, by1 - by0)  # a little slack, as annotators draw it
        bbox = (float(bx0 - m), float(by0 - m), float(bx1 - bx0 + 2 * m), float(by1 - by0 + 2 * m))
    # Head box: the axis-aligned extent of the head ellipse.
    th = math.radians(ang)
    a_, b_ = head_w / 2, head_len / 2 * 1.05
    ex_ = math.sqrt((a_ * math.cos(th)) ** 2 + (b_ * math.sin(th)) ** 2)
    ey_ = math.sqrt((a_ * math.sin(th)) ** 2 + (b_ * math.cos(th)) ** 2)
    head_box = (float(head_c[0] - ex_), float(head_c[1] - ey_), float(2 * ex_), float(2 * ey_))
    return _Rendered(kp.copy(), bbox, head_box, lab, (x0, y0))


# ----------------------------------------------------------------------------------------------
# Occluders, blur


@dataclass
class _Occluder:
    kind: str  # "pole" | "sign" | "bush" (world-fixed) | "mover" (image space) | "flash"
    tile: np.ndarray
    geom: tuple  # kind-specific
    t0: int = 0
    t1: int = 1 << 30


def _make_static_occluder(rng: np.random.Generator, cam0: np.ndarray, W: int, H: int) -> _Occluder:
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
    return _Occluder(kind, _texture(rng), geom)


def _make_mover(rng: np.random.Generator, frames: int, W: int, H: int) -> _Occluder:
    """An object crossing the image fast (a ball, a passer-by's bag): covers joints for a few frames."""
    r = rng.uniform(0.05, 0.12) * H
    speed = rng.uniform(10, 22) * (1 if rng.random() < 0.5 else -1)
    y = rng.uniform(0.2, 0.85) * H
    t0 = int(rng.integers(0, max(frames - 3, 1)))
    x_start = -r if speed > 0 else W + r
    return _Occluder("mover", _texture(rng), (x_start, y, speed, r, rng.uniform(0.6, 1.6)), t0=t0)


def _draw_occluder(frame: np.ndarray, oc: _Occluder, t: int, cam_c: np.ndarray, zoom: float) -> None:
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
    _paint(frame, mask.astype(bool), 0, 0, oc.tile, toff)


def _motion_blur(img: np.ndarray, length: int, angle: float) -> np.ndarray:
    k = np.zeros((length, length), np.float32)
    c = (length - 1) / 2
    dx, dy = math.cos(angle) * c, math.sin(angle) * c
    cv2.line(k, (int(round(c - dx)), int(round(c - dy))), (int(round(c + dx)), int(round(c + dy))), 1.0, 1)
    return cv2.filter2D(img, -1, k / k.sum(), borderType=cv2.BORDER_REFLECT)


# ----------------------------------------------------------------------------------------------
# One video


def _round(v: float) -> float:
    return round(float(v), 2)


@dataclass(frozen=True)
class SynthFrame:
    """One rendered frame of a synthetic video, in memory.

    Attributes:
        index: frame number t (0-based).
        image: ``uint8[H, W, 3]`` BGR.
        image_entry: its PoseTrack18 ``images[]`` entry (``file_name`` is the layout's relative path).
        annotations: its PoseTrack18 ``annotations[]`` entries, one per annotated person in view.
        detections: COCO detection dicts: jittered boxes, misses, false positives, as a detector gives.
    """

    index: int
    image: np.ndarray
    image_entry: dict
    annotations: list[dict]
    detections: list[dict]


def render_video(index: int, cfg: SynthConfig) -> Iterator[SynthFrame]:
    """Render video ``index`` of ``cfg`` frame by frame; pure: nothing is written.

    The frames are a pure function of ``(cfg.seed, index)`` and the other fields of ``cfg``
    (``cfg.out`` and ``cfg.workers`` play no part); consume the generator in order.
    """
    split = split_of(index, cfg)
    diff = Difficulty.for_split(split, cfg.hard_val)
    rng = np.random.default_rng([cfg.seed, index])
    W, H = cfg.size
    T = cfg.frames
    name = video_name(index, split)
    vid_id = index + 1

    # World canvas larger than the view so the camera can pan and zoom out.
    BW, BH = int(W * 1.8), int(H * 1.8)
    bg = _background(rng, BW, BH)
    cam0 = np.array([BW / 2, BH / 2]) + rng.uniform(-0.1, 0.1, 2) * [W, H]
    pan_v = rng.uniform(-1.5, 1.5, 2) * [1.0, 0.3]  # px / frame
    pan_a, pan_w, pan_p = rng.uniform(0, 12, 2), rng.uniform(0.05, 0.2), rng.uniform(0, 2 * math.pi, 2)
    zoom0, zoom_a, zoom_w, zoom_p = (
        rng.uniform(0.95, 1.15),
        rng.uniform(0, 0.15),
        rng.uniform(0.04, 0.15),
        rng.uniform(0, 2 * math.pi),
    )

    n_people = int(rng.integers(1, 5))
    people = [_make_person(rng, frame_w=W, frame_h=H, cam0=cam0, frames=T) for _ in range(n_people)]
    for k, p in enumerate(people):
        p.track_id = k
    # Sometimes a small unannotated person in the back, covered by an ignore region (as in PoseTrack).
    if rng.random() < 0.3:
        people.append(_make_person(rng, frame_w=W, frame_h=H, cam0=cam0, frames=T, background=True))
    # Near people are lower in the image and bigger: draw far (small foot_y) first.
    order = sorted(range(len(people)), key=lambda k: people[k].foot_y)

    occluders = [
        _make_static_occluder(rng, cam0, W, H)
        for _ in range(int(rng.integers(diff.static_occluders[0], diff.static_occluders[1] + 1)))
    ]
    occluders += [
        _make_mover(rng, T, W, H)
        for _ in range(int(rng.integers(diff.moving_occluders[0], diff.moving_occluders[1] + 1)))
    ]
    # Per-frame randomness drawn up front so it does not depend on how much drawing happened.
    blur_kind = rng.random((T, 2))
    blur_par = rng.random((T, 3))
    flash_count = np.minimum(rng.poisson(diff.flash_rate, T), 4)
    flash_draw = rng.random((T, 4, 4))
    flash_tiles = [_texture(rng) for _ in range(3)]
    # Sensor noise: one bank per video, a different window of it per frame (cheaper than fresh noise).
    noise = np.round(rng.normal(0, 2.5, (H + 32, W + 32, 3))).astype(np.int16)
    noise_off = rng.integers(0, 33, (T, 2))
    det_rng = np.random.default_rng([cfg.seed, index, 1])

    for t in range(T):
        annotations: list[dict] = []
        detections: list[dict] = []
        cam_c = cam0 + pan_v * (t - T / 2) + pan_a * np.sin(pan_w * t + pan_p)
        zoom = zoom0 * (1 + zoom_a * math.sin(zoom_w * t + zoom_p))
        # Camera: world -> image is p_img = zoom * (p_world - cam_c) + centre.
        M = np.array([[zoom, 0, W / 2 - zoom * cam_c[0]], [0, zoom, H / 2 - zoom * cam_c[1]]])
        frame = cv2.warpAffine(bg, M, (W, H), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        rendered: dict[int, _Rendered] = {}
        for k in order:
            rendered[k] = _render_person(frame, people[k], t, cam_c, zoom)
        for oc in occluders:
            _draw_occluder(frame, oc, t, cam_c, zoom)
        # Flash occluders: patches over single joints, in this frame only (visible in the neighbours).
        annotated_ids = [k for k in range(len(people)) if people[k].annotated]
        for f in range(flash_count[t] if annotated_ids else 0):
            u = flash_draw[t, f]
            k = annotated_ids[int(u[0] * len(annotated_ids))]
            j = (0, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16)[int(u[1] * 13)]
            c = rendered[k].keypoints[j] + (u[2] - 0.5) * 0.05 * people[k].height * zoom
            s = people[k].height * zoom * (0.1 + 0.1 * u[3])
            oc = _Occluder("flash", flash_tiles[f % 3], (c[0] - s / 2, c[1] - s / 2, s, s * 0.9))
            _draw_occluder(frame, oc, t, cam_c, zoom)
        if blur_kind[t, 0] < diff.motion_blur:
            frame = _motion_blur(frame, 5 + int(blur_par[t, 0] * 8), blur_par[t, 1] * math.pi)
        elif blur_kind[t, 1] < diff.defocus:
            frame = cv2.GaussianBlur(frame, (0, 0), 1.2 + 2.0 * blur_par[t, 2])
        win = noise[noise_off[t, 0] : noise_off[t, 0] + H, noise_off[t, 1] : noise_off[t, 1] + W]
        frame = np.clip(frame.astype(np.int16) + win, 0, 255).astype(np.uint8)

        image_id = frame_image_id(vid_id, t)
        file_name = f"images/{split}/{name}/{t:06d}.jpg"
        ign_x, ign_y = [], []
        n_ann = 0
        for k in range(len(people)):
            r = rendered[k]
            if r.bbox is None:
                continue
            x, y, w, h = r.bbox
            on_screen = x < W and y < H and x + w > 0 and y + h > 0
            if not people[k].annotated:
                if on_screen:  # ignore region: the unannotated person's (clipped) box
                    qx0, qy0 = max(x, 0.0), max(y, 0.0)
                    qx1, qy1 = min(x + w, W - 1.0), min(y + h, H - 1.0)
                    ign_x.append([_round(qx0), _round(qx1), _round(qx1), _round(qx0)])
                    ign_y.append([_round(qy0), _round(qy0), _round(qy1), _round(qy1)])
                    if det_rng.random() < 0.6:
                        detections.append(_det(det_rng, image_id, file_name, T, t, r.bbox, 0.3, W, H))
                continue
            kp = r.keypoints
            inside = (kp[:, 0] >= 0) & (kp[:, 0] <= W - 1) & (kp[:, 1] >= 0) & (kp[:, 1] <= H - 1)
            inside[3:5] = False  # PoseTrack has no ears
            if inside.sum() < 2 or not on_screen:
                continue
            flat: list[float] = []
            for j in range(17):
                flat += [_round(kp[j, 0]), _round(kp[j, 1]), 1] if inside[j] else [0, 0, 0]
            annotations.append(
                {
                    "bbox_head": [_round(v) for v in r.head_box],
                    "keypoints": flat,
                    "track_id": people[k].track_id,
                    "image_id": image_id,
                    "bbox": [_round(v) for v in r.bbox],
                    "scores": [],
                    "category_id": 1,
                    "id": image_id * 100 + people[k].track_id,
                    "iscrowd": False,
                    "num_keypoints": int(inside.sum()),
                }
            )
            n_ann += 1
            out_frac = 1.0 - inside.sum() / 15.0
            if det_rng.random() >= diff.miss_rate + 0.4 * out_frac**2:
                detections.append(
                    _det(det_rng, image_id, file_name, T, t, r.bbox, 0.95 - 0.4 * out_frac, W, H)
                )
        for _ in range(int(det_rng.poisson(0.35))):  # false positives on background clutter
            bw_, bh_ = det_rng.uniform(0.1, 0.4) * W, det_rng.uniform(0.2, 0.7) * H
            box = (det_rng.uniform(0, W - bw_), det_rng.uniform(0, H - bh_), bw_, bh_)
            detections.append(_det(det_rng, image_id, file_name, T, t, box, 0.3, W, H, jitter=0.0))
        image_entry = {
            "has_no_densepose": True,
            "is_labeled": n_ann > 0,
            "file_name": file_name,
            "nframes": T,
            "frame_id": image_id,
            "vid_id": f"{vid_id:06d}",
            "ignore_regions_y": ign_y,
            "ignore_regions_x": ign_x,
            "id": image_id,
            "width": W,
            "height": H,
        }
        yield SynthFrame(t, frame, image_entry, annotations, detections)


def write_frame(path: Path, image: np.ndarray) -> None:
    """Encode ``image`` (BGR uint8) as a quality-90 JPEG and write it atomically."""
    ok, jpg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, _JPEG_QUALITY])
    if not ok:  # pragma: no cover - cv2 always encodes a valid uint8 image
        raise RuntimeError("cv2.imencode failed")
    atomic_write_bytes(path, jpg.tobytes())


def write_video(index: int, cfg: SynthConfig) -> list[dict]:
    """Render video ``index`` of ``cfg`` and write its frames and annotation file under ``cfg.out``.

    Returns:
        its detection entries (COCO detection dicts); :func:`generate` writes them per split.
    """
    cv2.setNumThreads(1)  # workers are processes already; cv2's own threads would oversubscribe
    split = split_of(index, cfg)
    name = video_name(index, split)
    img_dir = Path(cfg.out) / "images" / split / name
    images, annotations, detections = [], [], []
    for f in render_video(index, cfg):
        write_frame(img_dir / f"{f.index:06d}.jpg", f.image)
        images.append(f.image_entry)
        annotations += f.annotations
        detections += f.detections
    write_video_annotations(Path(cfg.out) / "annotations" / split / f"{name}.json", images, annotations)
    return detections


def _det(
    rng: np.random.Generator,
    image_id: int,
    file_name: str,
    nframes: int,
    frame: int,
    box: Sequence[float],
    score_mean: float,
    W: int,
    H: int,
    jitter: float = 1.0,
) -> dict:
    """One detector-like box: centre/size jitter, clipped to the image, noisy score in (0, 1)."""
    x, y, w, h = box
    cx = x + w / 2 + rng.normal(0, 0.05 * jitter) * w
    cy = y + h / 2 + rng.normal(0, 0.04 * jitter) * h
    w = w * math.exp(rng.normal(0, 0.08 * jitter))
    h = h * math.exp(rng.normal(0, 0.06 * jitter))
    x0, y0 = max(cx - w / 2, 0.0), max(cy - h / 2, 0.0)
    x1, y1 = min(cx + w / 2, W - 1.0), min(cy + h / 2, H - 1.0)
    score = float(np.clip(score_mean + rng.normal(0, 0.1), 0.02, 0.999))
    return {
        "image_id": image_id,
        "image_name": file_name,
        "bbox": [_round(x0), _round(y0), _round(max(x1 - x0, 1.0)), _round(max(y1 - y0, 1.0))],
        "score": round(score, 4),
        "category_id": 1,
        "nframes": nframes,
        "frame_id": frame,
    }


# ----------------------------------------------------------------------------------------------
# The stage function


@dataclass(frozen=True)
class SynthSummary:
    """What :func:`generate` wrote: video names per split, frame count, seconds taken."""

    out: Path
    videos: dict[str, list[str]]
    frames: int
    seconds: float


def _write_video_star(args: tuple[int, SynthConfig]) -> list[dict]:
    return write_video(*args)


def generate(cfg: SynthConfig) -> SynthSummary:
    """Write the synthetic dataset described by ``cfg`` (see the module docstring for the layout).

    Returns:
        SynthSummary: the video names per split and the time taken.
    """
    start = time.perf_counter()
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    workers = cfg.workers or min(4, os.cpu_count() or 1)
    jobs = [(i, cfg) for i in range(cfg.videos)]
    if workers > 1 and cfg.videos > 1:
        with ProcessPoolExecutor(max_workers=min(workers, cfg.videos)) as ex:
            dets_per_video = list(ex.map(_write_video_star, jobs))
    else:
        dets_per_video = [write_video(i, cfg) for i, _ in jobs]
    names: dict[str, list[str]] = {"train": [], "val": []}
    dets: dict[str, list[dict]] = {"train": [], "val": []}
    for i, d in enumerate(dets_per_video):
        split = split_of(i, cfg)
        names[split].append(video_name(i, split))
        dets[split] += d
    for split in ("train", "val"):
        if names[split]:
            write_boxes_file(out / "detections" / f"{split}.json", dets[split])
    seconds = time.perf_counter() - start
    n_frames = cfg.videos * cfg.frames
    log.info(
        "synth: %d videos x %d frames in %.1f s (%.1f ms/frame)",
        cfg.videos,
        cfg.frames,
        seconds,
        1000 * seconds / n_frames,
    )
    return SynthSummary(out, names, n_frames, seconds)
