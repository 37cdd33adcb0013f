"""Output paths are checked before any work (issue 12, §2.4): one line, exit 2, nothing written.

Each verb's work function is replaced by one that fails the test, so a check that came after the work
(or never) shows up as that failure instead of the expected one-line error.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dcpose_trt._atomic import check_writable
from dcpose_trt.cli import main
from dcpose_trt.errors import InputError

# The work each verb would start; it must not be reached when the output path is bad.
WORK = {
    "export": ("dcpose_trt.model", "load_model"),
    "quantize": ("dcpose_trt.export.precision", "quantize_onnx"),
    "build": ("dcpose_trt.engine.builder", "build_engine"),
    "bench": ("benchmarks.runner", "run_benchmark"),
    "train": ("dcpose_trt.train", "train"),
    "synth": ("dcpose_trt.data.synth", "generate"),
}


def _argv(verb: str, out: str, src: Path) -> list[str]:
    return {
        "export": ["export", "--out", out],
        "quantize": ["quantize", "--onnx", str(src), "--precision", "fp16", "--out", out],
        "build": ["build", "--onnx", str(src), "--out", out, "--backend", "tensorrt-rtx"],
        "bench": ["bench", "--out", out],
        "train": ["train", "--data", str(src.parent), "--out", out, "--preset", "tiny-128x96"],
        "synth": ["synth", "--out", out],
    }[verb]


FILE_VERBS = ("export", "quantize", "build")
DIR_VERBS = ("bench", "train", "synth")


@pytest.fixture
def guarded(monkeypatch):
    import importlib

    for module, name in WORK.values():
        def started(*_a, _n=name, **_k):
            raise AssertionError(f"{_n} ran before the output path was checked")
        monkeypatch.setattr(importlib.import_module(module), name, started)


def _case(tmp_path: Path, verb: str, case: str) -> str:
    if case == "wrong kind":  # a folder where a file goes, a file where a folder goes
        if verb in FILE_VERBS:
            (tmp_path / "a_dir").mkdir()
            return str(tmp_path / "a_dir")
        (tmp_path / "a_file").write_text("x")
        return str(tmp_path / "a_file")
    if case == "parent is a file":
        (tmp_path / "a_file").write_text("x")
        return str(tmp_path / "a_file" / "sub" / "out.onnx")
    # A folder nobody can create files in, root included (procfs).
    return "/proc/dcpose_out/out.onnx" if verb in FILE_VERBS else "/proc/dcpose_out"


@pytest.mark.parametrize("case", ["wrong kind", "parent is a file", "unwritable"])
@pytest.mark.parametrize("verb", [*FILE_VERBS, *DIR_VERBS])
def test_bad_output_path_fails_first(verb, case, tmp_path, capsys, guarded):
    src = tmp_path / "in.onnx"
    src.write_bytes(b"\x08\x09")  # never read: the output check comes first
    out = _case(tmp_path, verb, case)
    rc = main(_argv(verb, out, src))
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "\n" not in err and err.startswith(f"dcpose-trt {verb}: error: "), err
    assert out in err or str(Path(out).parent) in err


def test_missing_parents_are_fine_when_creatable(tmp_path):
    assert check_writable(tmp_path / "a" / "b" / "m.onnx") == tmp_path / "a" / "b" / "m.onnx"
    assert check_writable(tmp_path / "a" / "b", folder=True) == tmp_path / "a" / "b"
    assert not (tmp_path / "a").exists()  # checking creates nothing


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_folder(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        with pytest.raises(InputError, match="is not writable"):
            check_writable(ro / "m.onnx")
    finally:
        ro.chmod(0o700)


def test_split_export_out_must_be_a_folder(tmp_path, capsys, guarded):
    (tmp_path / "f").write_text("x")
    assert main(["export", "--split", "--out", str(tmp_path / "f")]) == 2
    assert "exists and is not a folder" in capsys.readouterr().err
