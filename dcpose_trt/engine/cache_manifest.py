"""What a cache entry held when it was written (``manifest.json``), checked before the entry is reused.

A cache folder is shared (``$DCPOSE_TRT_CACHE``, a network home, a copied ``~/.cache``) and outlives the
process that filled it: a file can be truncated by a full disk, replaced by another tool, or edited. Each
entry records the size and sha256 of every file it holds; :func:`verify` tells why an entry cannot be
reused (the caller rebuilds it with a warning), and never raises on a malformed manifest.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

from dcpose_trt.engine.onnx_info import file_sha256

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
SCHEMA = "dcpose_trt.cache/1"


def write(folder: Path, key: dict[str, Any] | None = None) -> Path:
    """Record every file under ``folder`` (and the cache ``key``) in ``folder/manifest.json``."""
    files = {}
    for p in sorted(folder.rglob("*")):
        if p.is_file() and p.name != MANIFEST:
            files[p.relative_to(folder).as_posix()] = {"bytes": p.stat().st_size, "sha256": file_sha256(p)}
    doc = {"schema": SCHEMA, "key": key or {}, "files": files}
    path = folder / MANIFEST
    path.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    return path


def read(folder: Path) -> dict[str, Any] | None:
    """The manifest of ``folder`` when it is well formed, else None."""
    try:
        doc = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError, RecursionError):
        return None
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA or not isinstance(doc.get("files"), dict):
        return None
    for rec in doc["files"].values():
        if not (isinstance(rec, dict) and isinstance(rec.get("bytes"), int) and isinstance(rec.get("sha256"), str)):
            return None
    return doc


def verify(folder: Path, key: dict[str, Any] | None = None) -> str | None:
    """Why ``folder`` cannot be reused (no or a broken manifest, another key, a file missing, resized or
    changed), or None when every recorded file is as it was written."""
    doc = read(folder)
    if doc is None:
        return "it has no readable manifest (written by an older dcpose-trt, or damaged)"
    if key is not None and doc.get("key") != key:
        return "it was made for another key (versions or inputs differ)"
    root = folder.resolve()
    for rel, rec in doc["files"].items():
        p = (folder / rel)
        if root not in p.resolve().parents:
            return f"its manifest names {rel!r}, outside the entry"
        if not p.is_file():
            return f"{rel} is missing"
        if p.stat().st_size != rec["bytes"]:
            return f"{rel} has {p.stat().st_size} bytes, {rec['bytes']} were written"
        if file_sha256(p) != rec["sha256"]:
            return f"{rel} changed since it was written (sha256 differs)"
    return None


def discard(folder: Path) -> None:
    """Move a stale entry out of the way (renamed first, so a reader never sees half of it), then delete it."""
    if not folder.exists():
        return
    aside = folder.with_name(f".{folder.name}.stale.{os.getpid()}")
    try:
        os.replace(folder, aside)
    except OSError:
        aside = folder
    shutil.rmtree(aside, ignore_errors=True)
