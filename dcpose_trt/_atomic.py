"""Atomic file output: every artifact is written to a temporary name next to it, then renamed.

A crash, an exception or Ctrl-C leaves either the old file or the new one, never half of one, and no
temporary behind. A process killed outright (SIGKILL, power loss) cannot clean up: its temporary's name
holds the host and process id of its writer, and the next writer of the same path removes the ones whose
writer is gone (:func:`remove_orphans`). Published files get the permissions a plain ``open()`` would give
them (``mkstemp`` creates 0600, which would make exported models and videos unreadable to other users).
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import tempfile
from collections.abc import Iterable, Iterator
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


def _owner() -> str:
    """``<host>-<pid>`` of this process, as it appears in its temporaries' names (no dots or dashes in host)."""
    host = re.sub(r"[^A-Za-z0-9_]", "_", socket.gethostname())[:64] or "host"
    return f"{host}-{os.getpid()}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def remove_orphans(path: str | os.PathLike[str]) -> list[Path]:
    """Remove the temporaries of ``path`` whose writer, a process on this host, no longer runs (killed
    before it could clean up); returns them. Temporaries of live writers and of other hosts (a shared
    file system) are left alone."""
    path = Path(path)
    pattern = re.compile(re.escape(f".{path.name}.") + r"(?P<host>[A-Za-z0-9_]+)-(?P<pid>\d+)\.")
    host = _owner().rsplit("-", 1)[0]
    removed = []
    try:
        candidates = list(path.parent.iterdir())
    except OSError:
        return removed
    for p in candidates:
        m = pattern.match(p.name)
        if m and m["host"] == host and int(m["pid"]) != os.getpid() and not _alive(int(m["pid"])) and p.is_file():
            with contextlib.suppress(OSError):
                p.unlink()
                removed.append(p)
    return removed


def temp_path(path: str | os.PathLike[str], suffix: str = ".tmp") -> Path:
    """Create an empty, uniquely named temporary file next to ``path`` (same file system) and return it,
    after removing the orphan temporaries of ``path`` (:func:`remove_orphans`).

    ``suffix`` matters to writers that pick a format by extension (OpenCV's video writer).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_orphans(path)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.{_owner()}.", suffix=suffix, dir=path.parent)
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


def check_writable(path: str | os.PathLike[str], what: str = "output", folder: bool = False, *,
                   inputs: Iterable[str | os.PathLike[str] | None] = (),
                   protected: Iterable[str | os.PathLike[str] | None] = ()) -> Path:
    """Fail early, before any work, when ``path`` cannot be written; returns it as a Path.

    ``path`` must not be a folder (a file, for ``folder=False``) or a file (``folder=True``); its parent
    may be missing (the writers create it) but the closest existing ancestor must be a folder this
    process can create files in. Probed by creating (and removing) a temporary file, which also holds
    for root, read-only mounts and ACLs, where ``os.access`` is not reliable. ``inputs`` and ``protected``:
    see :func:`check_not_input`.

    Raises:
        InputError: one line saying what is wrong with the path.
    """
    from dcpose_trt.errors import InputError

    p = Path(path)
    check_not_input(p, inputs, protected, what)
    if not folder and p.is_dir():
        raise InputError(f"{what} {p} is a folder; give a file name")
    if folder and p.exists() and not p.is_dir():
        raise InputError(f"{what} {p} exists and is not a folder")
    anc = p if folder else p.parent
    anc = anc.absolute()
    while not anc.exists():
        anc = anc.parent
    if not anc.is_dir():
        raise InputError(f"cannot write {what} {p}: {anc} is a file, not a folder")
    try:
        fd, probe = tempfile.mkstemp(prefix=".dcpose-trt-probe.", dir=anc)
    except OSError as exc:
        raise InputError(f"cannot write {what} {p}: folder {anc} is not writable ({exc.strerror})") from None
    os.close(fd)
    os.unlink(probe)
    return p


def _same(a: Path, b: Path) -> bool:
    """Same file: the same resolved path (symlinks, ``..``) or the same inode (hard links)."""
    if a.resolve() == b.resolve():
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def check_not_input(path: str | os.PathLike[str], inputs: Iterable[str | os.PathLike[str] | None] = (),
                    protected: Iterable[str | os.PathLike[str] | None] = (), what: str = "output") -> None:
    """Refuse an output that is one of the run's ``inputs`` (the same file, also through links) or lies in
    (or is) a ``protected`` folder (an input dataset's annotations). ``None`` entries are skipped.

    Raises:
        InputError: one line naming the input; nothing has been written.
    """
    from dcpose_trt.errors import InputError

    p = Path(path)
    for i in inputs:
        if i is not None and str(i) and _same(p, Path(i)):
            raise InputError(f"{what} {p} is the input {i}; writing it would destroy the input (choose another "
                             "output path)")
    res = p.resolve()
    for d in protected:
        if d is None or not str(d):
            continue
        folder = Path(d).resolve()
        if res == folder or folder in res.parents:
            raise InputError(f"{what} {p} lies in the input annotation folder {d}; write outputs elsewhere")


def check_distinct(outputs: Iterable[tuple[str, str | os.PathLike[str] | None]]) -> None:
    """Refuse two outputs of one run that are the same file (``[("--out", a), ("--json", b)]``)."""
    from dcpose_trt.errors import InputError

    seen: list[tuple[str, Path]] = []
    for what, path in outputs:
        if path is None or not str(path):
            continue
        for other, q in seen:
            if _same(Path(path), q):
                raise InputError(f"{what} and {other} name the same file {path}; give two different outputs")
        seen.append((what, Path(path)))
