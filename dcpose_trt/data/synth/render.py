"""One synthetic video, frame by frame in memory: camera, people, occluders, blur and noise, with the
frame's PoseTrack18 annotations and detector-like boxes."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from dcpose_trt.data.synth.body import make_person
from dcpose_trt.data.synth.config import Difficulty, SynthConfig, frame_image_id, split_of, video_name
from dcpose_trt.data.synth.draw_person import RenderedPerson, render_person
from dcpose_trt.data.synth.occluders import Occluder, draw_occluder, make_mover, make_static_occluder, motion_blur
from dcpose_trt.data.synth.texture import background, texture


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
    bg = background(rng, BW, BH)
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
    people = [make_person(rng, frame_w=W, frame_h=H, cam0=cam0, frames=T) for _ in range(n_people)]
    for k, p in enumerate(people):
        p.track_id = k
    # Sometimes a small unannotated person in the back, covered by an ignore region (as in PoseTrack).
    if rng.random() < 0.3:
        people.append(make_person(rng, frame_w=W, frame_h=H, cam0=cam0, frames=T, background=True))
    # Near people are lower in the image and bigger: draw far (small foot_y) first.
    order = sorted(range(len(people)), key=lambda k: people[k].foot_y)

    occluders = [
        make_static_occluder(rng, cam0, W, H)
        for _ in range(int(rng.integers(diff.static_occluders[0], diff.static_occluders[1] + 1)))
    ]
    occluders += [
        make_mover(rng, T, W, H)
        for _ in range(int(rng.integers(diff.moving_occluders[0], diff.moving_occluders[1] + 1)))
    ]
    # Per-frame randomness drawn up front so it does not depend on how much drawing happened.
    blur_kind = rng.random((T, 2))
    blur_par = rng.random((T, 3))
    flash_count = np.minimum(rng.poisson(diff.flash_rate, T), 4)
    flash_draw = rng.random((T, 4, 4))
    flash_tiles = [texture(rng) for _ in range(3)]
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
        rendered: dict[int, RenderedPerson] = {}
        for k in order:
            rendered[k] = render_person(frame, people[k], t, cam_c, zoom)
        for oc in occluders:
            draw_occluder(frame, oc, t, cam_c, zoom)
        # Flash occluders: patches over single joints, in this frame only (visible in the neighbours).
        annotated_ids = [k for k in range(len(people)) if people[k].annotated]
        for f in range(flash_count[t] if annotated_ids else 0):
            u = flash_draw[t, f]
            k = annotated_ids[int(u[0] * len(annotated_ids))]
            j = (0, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16)[int(u[1] * 13)]
            c = rendered[k].keypoints[j] + (u[2] - 0.5) * 0.05 * people[k].height * zoom
            s = people[k].height * zoom * (0.1 + 0.1 * u[3])
            oc = Occluder("flash", flash_tiles[f % 3], (c[0] - s / 2, c[1] - s / 2, s, s * 0.9))
            draw_occluder(frame, oc, t, cam_c, zoom)
        if blur_kind[t, 0] < diff.motion_blur:
            frame = motion_blur(frame, 5 + int(blur_par[t, 0] * 8), blur_par[t, 1] * math.pi)
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
