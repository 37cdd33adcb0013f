"""Tileable textures, the background canvas, and painting a texture through a mask."""

from __future__ import annotations

import cv2
import numpy as np

TILE = 64  # texture tile side, pixels


def texture(rng: np.random.Generator, base: np.ndarray | None = None) -> np.ndarray:
    """A ``TILE``x``TILE``x3 uint8 tileable texture: stripes, checks, speckle or plain+noise."""
    c1 = rng.integers(20, 236, 3) if base is None else base
    c2 = np.clip(c1.astype(int) + rng.integers(-90, 91, 3), 0, 255)
    yy, xx = np.mgrid[0:TILE, 0:TILE]
    kind = rng.integers(0, 5)
    if kind == 0:  # stripes, any of 4 orientations, period divides the tile so it tiles
        period = int(rng.choice([4, 8, 16]))
        coord = [yy, xx, xx + yy, xx - yy][rng.integers(0, 4)]
        m = (coord % period) < period // 2
    elif kind == 1:  # checks
        period = int(rng.choice([8, 16]))
        m = ((xx // (period // 2)) + (yy // (period // 2))) % 2 == 0
    elif kind == 2:  # speckle
        m = rng.random((TILE, TILE)) < 0.3
    else:  # plain
        m = np.zeros((TILE, TILE), bool)
    tex = np.where(m[..., None], c2, c1).astype(np.float32)
    tex += rng.normal(0, 6, (TILE, TILE, 1))  # fabric grain
    return np.clip(tex, 0, 255).astype(np.uint8)


def background(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
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
    """``tile`` repeated to cover at least (h + TILE) x (w + TILE), so any window is a plain slice."""
    reps = (h // TILE + 2, w // TILE + 2, 1)
    return np.tile(tile, reps)


def paint(
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
    oy, ox = (fy0 - tex_offset[1]) % TILE, (fx0 - tex_offset[0]) % TILE
    tex = big[oy : oy + bh, ox : ox + bw]
    if shade != 1.0:
        tex = (tex * shade).astype(np.uint8)
    np.copyto(frame[fy0 : fy0 + bh, fx0 : fx0 + bw], tex, where=m[..., None])
