"""Drawing one person into a frame: a depth-ordered label canvas composited with the person's textures."""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from dcpose_trt.data.synth.body import DARK, HAIR, LOGO, PANTS, SHIRT, SKIN, SLEEVE, Person, pose3d, project
from dcpose_trt.data.synth.texture import paint


@dataclass
class RenderedPerson:
    keypoints: np.ndarray  # 17 x 2 image px (unclipped)
    bbox: tuple[float, float, float, float] | None  # silhouette box x, y, w, h (may leave the frame)
    head_box: tuple[float, float, float, float]
    label: np.ndarray | None  # person label canvas
    origin: tuple[int, int]


def render_person(frame: np.ndarray, p: Person, t: int, cam_c: np.ndarray, zoom: float) -> RenderedPerson:
    """Draw person ``p`` at frame ``t`` onto ``frame`` (in place) and return its 2D annotation."""
    H, W = frame.shape[:2]
    J3, ex = pose3d(p, t)
    ph = p.phase0 + p.dphase * t
    yaw = p.yaw0 + p.yaw_amp * math.sin(0.3 * ph)
    scale = p.height * zoom  # image px per body unit
    bob = 0.012 * abs(math.sin(ph)) if abs(p.vx) > 0.5 else 0.0  # walking lifts the pelvis twice a cycle
    root_w = np.array([p.x0 + p.vx * t, p.foot_y - 0.5 * p.height * (1 + bob)])
    root = zoom * (root_w - cam_c) + np.array([W / 2, H / 2])
    pts = np.concatenate([J3, np.stack([ex[k] for k in ("head_c", "eye_l", "eye_r", "chest", "neck")])])
    xy, depth = project(pts, yaw)
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

    fore_mat = SLEEVE if p.long_sleeves else SKIN
    shin_mat = SKIN if p.shorts else PANTS
    for i in (0, 1):  # left, right
        sho, elb, wri, hip, kne, ank = 5 + i, 7 + i, 9 + i, 11 + i, 13 + i, 15 + i
        for a, b, wa, wb, mat, bias in (
            (sho, elb, 0.055, 0.045, SLEEVE, 0.001),
            (elb, wri, 0.042, 0.034, fore_mat, 0.002),
            (hip, kne, 0.08, 0.06, PANTS, 0.0),
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
    cxy, _ = project(np.stack(corners), yaw)
    cxy = root + scale * cxy

    def torso() -> None:
        hull = cv2.convexHull(fx(cxy).reshape(-1, 1, 2))
        cv2.fillConvexPoly(lab, hull, SHIRT, cv2.LINE_8, 2)
        limb(kp[11], kp[12], 0.06 * bw, 0.06 * bw, PANTS)  # belt line / pelvis
        if p.has_logo and math.cos(yaw) > 0.3:  # a chest print: tells front from back
            cv2.circle(lab, tuple(int(v) for v in fx(chest)), int(0.03 * scale * S), LOGO, -1, cv2.LINE_8, 2)

    parts.append((0.0, torso, ()))

    # Head: an ellipse between head_bottom and head_top; hair at the back; eyes and nose in front.
    axis = kp[2] - kp[1]
    head_len = max(float(np.hypot(*axis)), 1.0)
    head_w = scale * (0.095 + 0.02 * abs(math.sin(yaw)))
    ang = math.degrees(math.atan2(axis[1], axis[0])) + 90.0
    front = math.cos(yaw)

    def head() -> None:
        limb(neck, kp[1], 0.05 * bw, 0.045 * bw, SKIN)
        c = tuple(int(v) for v in fx(head_c))
        axes = (int(head_w / 2 * S), int(head_len / 2 * 1.05 * S))
        cv2.ellipse(lab, c, axes, ang, 0, 360, SKIN, -1, cv2.LINE_8, 2)
        if front < 0.0:  # seen from behind: hair covers the head
            cv2.ellipse(lab, c, axes, ang, 0, 360, HAIR, -1, cv2.LINE_8, 2)
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
                HAIR,
                -1,
                cv2.LINE_8,
                2,
            )
            r = max(int(0.012 * scale * S), S)
            if front > 0.2:
                for e in (eye_l, eye_r):
                    cv2.circle(lab, tuple(int(v) for v in fx(e)), r, DARK, -1, cv2.LINE_8, 2)
            cv2.circle(lab, tuple(int(v) for v in fx(kp[0])), int(r * 1.3), DARK, -1, cv2.LINE_8, 2)

    parts.append((0.02, head, ()))
    for _, draw, args in sorted(parts, key=lambda e: e[0]):
        draw(*args)

    # Composite the label canvas with the person's textures; texture moves with the person.
    toff = (int(round(root[0])) + p.tex_offset[0], int(round(root[1])) + p.tex_offset[1])
    for val in np.unique(lab):
        if val == 0:
            continue
        mat, sh = int(val) % 8, int(val) // 8
        paint(frame, lab == val, x0, y0, p.tiles[mat], toff, 0.7 if sh else 1.0)

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
    return RenderedPerson(kp.copy(), bbox, head_box, lab, (x0, y0))
