"""Articulated people: a 3D body model, randomly drawn looks and motions, and their pose at frame t."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from dcpose_trt.data.synth.texture import TILE, texture

# Body model in units of body height, pelvis at the origin; x = the person's left, y = down,
# z = the direction the person faces. Proportions follow standard anthropometric tables.
_SHOULDER_Y, _SHOULDER_X, _HIP_X = -0.29, 0.115, 0.075
_UPPER_ARM, _FOREARM, _THIGH, _SHIN = 0.165, 0.145, 0.245, 0.245
_HEAD_TOP_Y, _HEAD_BOTTOM_Y = -0.475, -0.345

# Materials of the per-person label canvas (value = material + 8 * shade level).
SHIRT, PANTS, SKIN, HAIR, DARK, LOGO, SLEEVE = 1, 2, 3, 4, 5, 6, 7

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
class Person:
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


def make_person(
    rng: np.random.Generator,
    *,
    frame_w: int,
    frame_h: int,
    cam0: np.ndarray,
    frames: int,
    background: bool = False,
) -> Person:
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
    skin = np.clip(skin_base + rng.normal(0, 4, (TILE, TILE, 3)), 0, 255).astype(np.uint8)
    hair = np.full((TILE, TILE, 3), rng.integers(10, 120, 3), np.uint8)
    dark = np.full((TILE, TILE, 3), 25, np.uint8)
    shirt = texture(rng)
    tiles = {
        SHIRT: shirt,
        PANTS: texture(rng),
        SKIN: skin,
        HAIR: hair,
        DARK: dark,
        LOGO: texture(rng),
        SLEEVE: shirt,
    }
    return Person(
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
        tex_offset=(int(rng.integers(0, TILE)), int(rng.integers(0, TILE))),
    )


def _limb_dir(side: float, abd: float, flex: float) -> np.ndarray:
    """Unit vector of a limb hanging down, abducted sideways by ``abd`` then flexed forward."""
    return np.array([side * math.sin(abd) * math.cos(flex), math.cos(abd) * math.cos(flex), math.sin(flex)])


def pose3d(p: Person, t: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
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


def project(P: np.ndarray, yaw: float) -> tuple[np.ndarray, np.ndarray]:
    """Orthographic view of body points N x 3 turned by ``yaw``: image-plane N x 2, depth N (+ = near)."""
    c, s = math.cos(yaw), math.sin(yaw)
    X = P[..., 0] * c + P[..., 2] * s
    Z = -P[..., 0] * s + P[..., 2] * c
    return np.stack([X, P[..., 1]], -1), Z

