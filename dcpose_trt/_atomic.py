"""Atomic file output: every artifact is written to a temporary name next to it, then renamed.

A crash, an exception or Ctrl-C leaves either the old file or the new one, never half of one, and no
temporary behind. Published files get the permissions a plain ``open()`` would give them (``mkstemp``
creates 0600, which would make exported models and videos unreadable to other users).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


def _default_mode() -> int:
    umask = os.umask(0)  # the only way to read the umask is to set it; restore it at once
    os.umask(umask)
    return 0o666 & ~umask


def publish(tmp: str | os.PathLike[str], path: str | os.PathLike[str]) -> Path:
    """Give ``tmp`` default permissions and rename it over ``path``."""
    os.chmod(tmp, _default_mode())
    os.replace(tmp, path)
    return Path(path)


def temp_path(path: str | os.PathLike[str], suffix: str = ".tmp") -> Path:
    """Create an empty, uniquely named temporary file next to ``path`` (same file system) and return it.

    ``suffix`` matters to writers that pick a format by extension (OpenCV's video writer).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    return Path(name)


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike[str], suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on a clean exit it replaces ``path``, else it is removed."""
    tmp = temp_path(path, suffix)
    try:
        yield tmp
        publish(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes | memoryview) -> Path:
    """Write ``data`` to ``path`` atomically (fsync'd before the rename)."""
    with atomic_output(path) as tmp, open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    return Path(path)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def check_output_path(path: str | os.PathLike[str], *, kind: str = "file") -> Path:
    """Fail fast, before any work, when ``path`` cannot receive a ``kind`` (``"file"`` or ``"dir"``) output.

    Problems (each an :class:`~dcpose_trt.errors.InputError` with a one-line message): an existing folder
    where a file goes, an existing file where a folder goes, a parent that is a file, a nearest existing
    folder that cannot be written (read-only, no permission, read-only file system). Missing parents are
    fine when they can be created (the atomic writers create them). Writability is probed by creating and
    removing a temporary file, so root, ACLs and read-only mounts are judged as the real write will be.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    from dcpose_trt.errors import InputError

    if kind not in ("file", "dir"):
        raise ValueError(f"kind must be 'file' or 'dir', got {kind!r}")
    path = Path(path)
    if kind == "file" and path.is_dir():
        raise InputError(f"{path} is a folder; give a file name")
    if kind == "dir" and path.exists() and not path.is_dir():
        raise InputError(f"{path} exists and is not a folder")
    probe = path if kind == "dir" and path.is_dir() else path.parent
    probe = probe if str(probe) else Path(".")
    while not probe.exists():
        if probe == probe.parent:
            break
        probe = probe.parent
    if not probe.is_dir():
        raise InputError(f"cannot write {path}: {probe} is not a folder")
    try:
        with tempfile.TemporaryFile(dir=probe):
            pass
    except OSError as exc:
        why = exc.strerror or type(exc).__name__
        raise InputError(f"cannot write {path}: cannot create files in {probe} ({why})") from None
    return path
