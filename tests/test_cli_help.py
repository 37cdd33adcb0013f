"""Every verb's ``--help`` works in-process, and ``dcpose-trt --help`` works as a command."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from dcpose_trt.cli import build_parser, main


def _verbs() -> list[str]:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sorted(sub.choices)


def test_expected_verbs_present():
    assert {"bench", "doctor", "export", "run"} <= set(_verbs())


@pytest.mark.parametrize("verb", _verbs())
def test_verb_help(verb, capsys):
    with pytest.raises(SystemExit) as exc:
        main([verb, "--help"])
    assert exc.value.code == 0
    assert "usage: dcpose-trt" in capsys.readouterr().out


def test_top_level_help_subprocess():
    exe = Path(sys.executable).with_name("dcpose-trt")  # the console script of this environment
    cmd = [str(exe)] if exe.is_file() else [sys.executable, "-m", "dcpose_trt.cli"]
    proc = subprocess.run([*cmd, "--help"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "bench" in proc.stdout and "doctor" in proc.stdout
