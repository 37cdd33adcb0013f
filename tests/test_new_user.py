"""Issue 20, the new-user list: defaults and flags a user meets on the first day.

Each test failed on the code before the fix (noted per test).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from dcpose_trt.cli import build_parser, main
from dcpose_trt.model.presets import BUNDLED_PRESET

REPO = Path(__file__).resolve().parents[1]


# `-v` was accepted only before the verb ("unrecognized arguments: -v" after it).
@pytest.mark.parametrize("argv, level", [
    (["eval", "-v", "--gt", "g", "--pred", "p"], 1),
    (["-v", "eval", "-v", "--gt", "g", "--pred", "p"], 2),
    (["-vv", "eval", "--gt", "g", "--pred", "p"], 2),
    (["bench", "scale", "-v"], 1),
    (["plugin", "build", "-vv", "--out", "x"], 2),
])
def test_verbose_before_or_after_the_verb(argv, level):
    args = build_parser().parse_args(argv)
    assert args.verbose + getattr(args, "verbose_after", 0) == level


def test_every_verb_accepts_verbose_after_it():
    sub = build_parser()._subparsers._group_actions[0]
    for name, parser in sub.choices.items():
        assert any("-v" in a.option_strings for a in parser._actions), name


# `train` defaulted to w48-384x288 while every other verb runs the bundled tiny model.
def test_train_defaults_to_the_bundled_preset():
    from dcpose_trt.train import TrainConfig

    assert TrainConfig(data=Path("d"), out=Path("o")).preset == BUNDLED_PRESET
    train = build_parser()._subparsers._group_actions[0].choices["train"]
    assert f"(default: {BUNDLED_PRESET})" in train.format_help()


# `quantize` calibrated on `val` (the split `eval`/`fidelity` measure on) unless told otherwise.
def test_quantize_calibrates_on_train_by_default(tmp_path, monkeypatch, capsys):
    from dcpose_trt.export import precision

    seen = {}

    def spy(onnx, out, cfg):  # the CLI -> stage boundary: what the stage function is asked to do
        seen["cfg"] = cfg
        return Path(out)

    monkeypatch.setattr(precision, "quantize_onnx", spy)
    (tmp_path / "m.onnx").write_bytes(b"")
    assert main(["quantize", "--onnx", str(tmp_path / "m.onnx"), "--precision", "int8", "--calib",
                 str(tmp_path), "--out", str(tmp_path / "q.onnx")]) == 0
    assert seen["cfg"].calib_split == "train"
    assert main(["quantize", "--onnx", str(tmp_path / "m.onnx"), "--precision", "int8", "--calib",
                 str(tmp_path), "--calib-split", "val", "--out", str(tmp_path / "q.onnx")]) == 0
    assert seen["cfg"].calib_split == "val"


# `bench` defaulted to torch,onnxruntime,tensorrt (TensorRT is not installable on a CPU machine) and left out
# OpenVINO, which `auto` picks here.
def test_bench_defaults_to_the_installed_backends():
    import importlib.util

    from benchmarks.config import BenchConfig

    backends = BenchConfig().backends
    assert backends[0] == "torch"
    for name in ("onnxruntime", "openvino", "tensorrt"):
        assert (name in backends) == (importlib.util.find_spec(name) is not None), name


def _frames(folder: Path) -> Path:
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        cv2.imwrite(str(folder / f"{i:06d}.jpg"), rng.integers(0, 255, (120, 160, 3), dtype=np.uint8))
    return folder


# `bench` wrote into the checkout's outputs/bench/ whatever the working directory, and a second run the same day
# replaced the first; `bench scale` wrote into the committed benchmarks/results/scale_cpu.
# Also: without our data folder (the PoseTrack sample clip is not shipped) `bench` stopped with "frames to read
# not found"; it now times a synthetic video it makes.
def test_bench_writes_under_the_cwd_and_never_replaces_a_run(tmp_path, monkeypatch, capsys):
    from benchmarks import config

    frames = _frames(tmp_path / "frames")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache-home"))
    argv = ["bench", "--backends", "torch", "--precisions", "fp32", "--persons", "1", "--modes", "exact",
            "--iters", "1", "--warmup", "0", "--no-progress"]
    with monkeypatch.context() as m:  # a user's machine: no data folder beside the checkout
        m.setattr(config, "SAMPLE_CLIP", tmp_path / "absent" / "clip")
        m.setattr(config, "SAMPLE_DATASET", tmp_path / "absent")
        assert main(argv) == 0
    assert "synthetic video" in capsys.readouterr().err
    argv += ["--video", str(frames)]
    assert main(argv) == 0
    runs = sorted(p.name for p in (work / "outputs" / "bench").iterdir())
    assert len(runs) == 2 and runs[1] == f"{runs[0]}-2", runs
    assert all((work / "outputs" / "bench" / r / "results.json").is_file() for r in runs)
    assert (work / "outputs" / "bench" / runs[0] / "synth" / "annotations" / "val").is_dir()
    # A named --out holding a run: one line, exit 2, nothing touched.
    first = work / "outputs" / "bench" / runs[0]
    before = (first / "results.json").read_bytes()
    capsys.readouterr()
    assert main([*argv, "--out", str(first)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "earlier run" in err
    assert (first / "results.json").read_bytes() == before


def test_bench_scale_defaults_outside_the_committed_results(tmp_path, monkeypatch):
    from benchmarks.cli import _run_dir
    from benchmarks.config import DEFAULT_SCALE_OUT, RESULTS

    monkeypatch.chdir(tmp_path)
    out = _run_dir(None, DEFAULT_SCALE_OUT)
    assert (tmp_path / out).resolve().parent == (tmp_path / "outputs" / "bench").resolve()
    assert RESULTS.resolve() not in (REPO / out).resolve().parents
    (tmp_path / out).mkdir(parents=True)
    (tmp_path / out / "results.json").write_text("{}")
    assert _run_dir(None, DEFAULT_SCALE_OUT).name == "scale-2"
