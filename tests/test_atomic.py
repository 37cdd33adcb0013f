"""Atomic outputs: all or nothing, no temporary left behind, default permissions (not mkstemp's 0600)."""

from __future__ import annotations

import os
import stat

import pytest

from dcpose_trt._atomic import atomic_output, atomic_write_bytes, atomic_write_text


def _umask() -> int:
    u = os.umask(0)
    os.umask(u)
    return u


def test_written_file_has_default_permissions(tmp_path):
    path = atomic_write_bytes(tmp_path / "sub" / "a.bin", b"abc")
    assert path.read_bytes() == b"abc"
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~_umask()
    assert sorted(p.name for p in path.parent.iterdir()) == ["a.bin"]


@pytest.mark.parametrize("exc", [RuntimeError, KeyboardInterrupt])
def test_failure_keeps_the_old_file_and_no_temporary(tmp_path, exc):
    path = atomic_write_text(tmp_path / "a.json", "old")
    with pytest.raises(exc), atomic_output(path) as tmp:
        tmp.write_text("half of the new")
        raise exc
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]
