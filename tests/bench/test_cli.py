"""``dcpose-trt bench``: one front end for every benchmark (latency is the default subcommand)."""

from __future__ import annotations

import argparse

import pytest

from benchmarks import cli as bench_cli
from benchmarks.runner import BenchConfig, _not_measured
from dcpose_trt.cli import build_parser, main
from dcpose_trt.errors import InputError


def _parse(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["bench", *argv])


def test_latency_is_the_default_subcommand():
    bare = _parse("--preset", "w32-256x192", "--iters", "2")
    named = _parse("latency", "--preset", "w32-256x192", "--iters", "2")
    assert bare.func is named.func is bench_cli._latency
    assert (bare.preset, bare.iters) == (named.preset, named.iters) == ("w32-256x192", 2)
    # Flags before `latency` are kept (the subcommand does not reset them to its defaults).
    assert _parse("--preset", "w32-256x192", "latency", "--iters", "3").preset == "w32-256x192"


def test_every_benchmark_is_a_subcommand():
    parser = build_parser()
    bench = parser._subparsers._group_actions[0].choices["bench"]
    subs = next(a for a in bench._actions if isinstance(a, argparse._SubParsersAction))
    assert set(subs.choices) == {"latency", "cpu-export", "kernel", "report", "scale", "gpu-check", "serve", "head"}


def test_options_default_to_the_config():
    # argparse leaves every latency option None; BenchConfig supplies the defaults.
    args = _parse()
    assert all(getattr(args, f) is None for f in ("preset", "backends", "precisions", "persons", "modes", "iters"))
    bench = build_parser()._subparsers._group_actions[0].choices["bench"]
    assert f"(default: {BenchConfig().preset})" in bench.format_help()


@pytest.mark.parametrize("argv, message", [
    (["bench", "--persons", "1,x", "--out", "{tmp}/o"], "--persons must be comma-separated integers"),
    (["bench", "--precisions", "fp64", "--out", "{tmp}/o"], "precision"),
    (["bench", "report", "--data", "{tmp}/nope", "--out", "{tmp}/r"], "is not a dataset root"),
    (["bench", "kernel", "--dtypes", "int4"], "--dtypes"),
    (["bench", "scale", "--videos", "0"], "--videos"),
])
def test_user_mistakes_are_one_line(argv, message, tmp_path, capsys):
    code = main([a.replace("{tmp}", str(tmp_path)) for a in argv])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("dcpose-trt bench: error:") and message in err
    assert len(err.strip().splitlines()) == 1


def test_unknown_gpu_check_step_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["bench", "gpu-check", "--steps", "nope"])
    assert exc.value.code == 2 and "unknown step" in capsys.readouterr().err


def test_one_helper_for_rows_not_measured(caplog):
    cfg = BenchConfig()
    row = {"cfg": cfg, "backend": "onnxruntime", "precision": "int8", "mode": "exact", "baseline": False}
    skipped = _not_measured(InputError("no calibration data"), (1, 4), "preparing the backend", **row)
    assert [(r["persons"], r["status"], r["reason"]) for r in skipped] == [
        (1, "skipped", "no calibration data"), (4, "skipped", "no calibration data")]
    try:
        raise ZeroDivisionError("bug")
    except ZeroDivisionError as exc:
        errors = _not_measured(exc, (8,), "persons=8", device="cpu", **row)
    assert [(r["status"], r["reason"], r["device"]) for r in errors] == [("error", "ZeroDivisionError: bug", "cpu")]
    assert "Traceback" in caplog.text and "persons=8" in caplog.text
