"""FLOPs per person of a preset, counted once with torch's ``FlopCounterMode`` and cached on disk."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from dcpose_trt._atomic import atomic_write_text

log = logging.getLogger(__name__)


def _flops_cache_file() -> Path:
    root = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return root / "dcpose_trt" / "flops.json"


def count_flops(preset: str, model: Any | None = None) -> dict[str, float]:
    """GFLOP (2 × MAC) per person of ``preset``, counted once with ``FlopCounterMode`` and cached on disk.

    Returns ``{"exact": ..., "cached": ..., "backbone_image": ..., "head": ...}``: exact = the whole model on
    ``frames[1, 9, H, W]`` (3 backbone images + head); cached = one backbone image + the head. Counted by
    torch's FLOP counter over aten ops (convolutions dominate; the deformable sampling, well under 1 % of
    the model's FLOPs, is not an aten op and is not counted).
    """
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    cache = _flops_cache_file()
    key = f"{preset}@torch{torch.__version__.split('+')[0]}"
    try:
        table = json.loads(cache.read_text())
    except (OSError, ValueError):
        table = {}
    if key in table:
        return table[key]
    from dcpose_trt.model import build_dcpose

    m = (model if model is not None else build_dcpose(preset)).eval().cpu()
    h, w = m.preset.image_size
    hh, hw = m.preset.heatmap_size

    def gflop(fn: Any) -> float:
        with torch.inference_mode(), FlopCounterMode(display=False) as fc:
            fn()
        return fc.get_total_flops() / 1e9

    full = gflop(lambda: m(torch.zeros(1, 9, h, w), torch.ones(1, 2)))
    bb = gflop(lambda: m.backbone(torch.zeros(1, 3, h, w)))
    hm = torch.zeros(1, 17, hh, hw)
    head = gflop(lambda: m.head(hm, hm, hm, torch.ones(1, 2)))
    result = {"exact": full, "cached": bb + head, "backbone_image": bb, "head": head}
    table[key] = result
    try:
        atomic_write_text(cache, json.dumps(table, indent=1))
    except OSError as exc:  # a read-only home only costs a recount next time
        log.info("cannot cache FLOP counts in %s: %s", cache, exc)
    return result
