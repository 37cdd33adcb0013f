"""Reading JSON fields with one-line :class:`~dcpose_trt.errors.DataError` s that name the file."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from dcpose_trt.data.posetrack.schema import Box
from dcpose_trt.errors import DataError


def load_json(path: Path) -> Any:
    """A JSON document; unreadable or invalid files raise :class:`DataError` naming the file."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError:  # binary junk, or another encoding: not a document of ours
        raise DataError(f"{path}: not valid JSON (not UTF-8 text)") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    except RecursionError:  # nesting deeper than the parser's stack
        raise DataError(f"{path}: not valid JSON (nested too deeply)") from None


def number(v: Any, what: str, path: Path) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        raise DataError(f"{path}: {what} must be a finite number, got {v!r}")
    return float(v)


def integer(v: Any, what: str, path: Path) -> int:
    x = number(v, what, path)
    if x != int(x):
        raise DataError(f"{path}: {what} must be an integer, got {v!r}")
    return int(x)


def xywh(v: Any, what: str, path: Path) -> Box:
    if not isinstance(v, list | tuple) or len(v) != 4:
        raise DataError(f"{path}: {what} must be [x, y, w, h], got {v!r}")
    return tuple(number(c, what, path) for c in v)  # type: ignore[return-value]


def unwrap_scalar(v: Any) -> Any:
    """PoseTrack17 wraps scalars in one-element lists (``"x": [12.5]``)."""
    return v[0] if isinstance(v, list) and len(v) == 1 else v


def polygons(xs: Any, ys: Any, path: Path) -> list[np.ndarray]:
    if not isinstance(xs, list) or not isinstance(ys, list) or len(xs) != len(ys):
        raise DataError(f"{path}: ignore_regions_x and ignore_regions_y must be lists of equal length")
    out = []
    for px, py in zip(xs, ys, strict=True):
        if not isinstance(px, list) or not isinstance(py, list) or len(px) != len(py):
            raise DataError(f"{path}: an ignore region has x and y lists of different lengths")
        if px:
            out.append(np.array([[number(a, "ignore region x", path), number(b, "ignore region y", path)]
                                 for a, b in zip(px, py, strict=True)]))  # fmt: skip
    return out

