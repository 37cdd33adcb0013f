"""``PYTHONPATH=. python3 -m benchmarks.gpu_check --out DIR``: runs from an uninstalled copy, gates each step.

* From a fresh copy of the tree (``git ls-files``) with this project NOT installed (a site folder holding
  every installed package but ours, no ``.pth`` processing, so neither the editable finder nor our
  ``dist-info`` is visible), on this GPU-less machine: exit 0, every step ``skipped`` with "no GPU" and
  its reason, ``summary.json`` written, at most 8 files of at most 16 MiB (issue 23 items 11).
* The gate (item 12), with the machine's probes replaced by :class:`~benchmarks.gpu_check.Env` values
  (the probes are ours, not a library's): a visible GPU with a CPU-only torch fails every step with the
  reason; TensorRT that does not import fails the TensorRT tier only; exit code 1.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from benchmarks import gpu_check
from benchmarks.gpu_check import Env

REPO = Path(__file__).resolve().parents[2]


def _copy_tree(dst: Path) -> Path:
    files = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
    for rel in filter(None, files.decode().split("\0")):
        src = REPO / rel
        if src.is_file():
            (dst / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst / rel)
    return dst


def _site_without_us(dst: Path) -> Path:
    """Every entry of this interpreter's site-packages but this project's (editable finder, .pth, dist-info)."""
    site = Path(sysconfig.get_paths()["purelib"])
    dst.mkdir()
    for entry in site.iterdir():
        if entry.name.startswith(("dcpose_trt", "__editable__", "dcpose-trt")) or entry.suffix == ".pth":
            continue
        (dst / entry.name).symlink_to(entry)
    return dst


@pytest.fixture(scope="module")
def uninstalled_run(tmp_path_factory):
    machine, _ = gpu_check.probe_nvidia_smi()
    if machine is not None:
        pytest.skip(f"this machine has a GPU ({machine}): run the check itself")
    tmp = tmp_path_factory.mktemp("gpu_check")
    tree = _copy_tree(tmp / "tree")
    site = _site_without_us(tmp / "site")
    out = tmp / "out"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP")}
    env["PYTHONPATH"] = os.pathsep.join([".", str(site)])  # "." = the copy: PYTHONPATH=. as documented
    env["DCPOSE_TRT_CACHE"] = str(tmp / "cache")
    # -S: no site processing, so no .pth (the editable install's finder) runs; PYTHONPATH still applies.
    code = ("import dcpose_trt, benchmarks, sys; print('FROM', dcpose_trt.__file__, benchmarks.__file__); "
            "import runpy; sys.argv = ['gpu_check', '--out', sys.argv[1]]; "
            "runpy.run_module('benchmarks.gpu_check', run_name='__main__', alter_sys=True)")
    probe = subprocess.run([sys.executable, "-S", "-c", code, str(out)], cwd=tree, env=env, capture_output=True,
                           text=True, timeout=600)
    direct = subprocess.run([sys.executable, "-S", "-m", "benchmarks.gpu_check", "--out", str(tmp / "out2")],
                            cwd=tree, env=env, capture_output=True, text=True, timeout=600)
    return tree, out, probe, direct, tmp / "out2"


def test_runs_from_an_uninstalled_copy(uninstalled_run):
    tree, out, probe, direct, out2 = uninstalled_run
    assert probe.returncode == 0, probe.stdout[-2000:] + probe.stderr[-3000:]
    line = next(ln for ln in probe.stdout.splitlines() if ln.startswith("FROM"))
    assert all(p.startswith(str(tree)) for p in line.split()[1:]), line  # the copy, not the install
    assert direct.returncode == 0, direct.stderr[-3000:]  # the documented `python3 -m benchmarks.gpu_check`
    for folder in (out, out2):
        summary = json.loads((folder / "summary.json").read_text())
        assert summary["gpu"] is None and summary["steps"]
        assert set(summary["steps"]) == set(gpu_check.all_steps())
        for name, step in summary["steps"].items():
            assert step["status"] == "skipped", (name, step)
            assert step["reason"].startswith("no GPU: ") and "nvidia-smi" in step["reason"], (name, step)
        files = [p for p in folder.rglob("*") if p.is_file()]
        assert 1 <= len(files) <= gpu_check.MAX_FILES
        assert all(p.stat().st_size <= gpu_check.MAX_FILE_BYTES for p in files)
    assert "skipped" in probe.stdout and "no GPU" in probe.stdout


def _stub_steps(monkeypatch, ran: list[str]):
    """Replace every step's work by a recorder, keeping names and tiers (the gate is what is tested)."""
    steps = {}
    for name, s in gpu_check.all_steps().items():
        steps[name] = gpu_check.Step(name, s.tier, lambda ctx, n=name: ran.append(n) or {"ok": True, "summary": n},
                                     s.doc)
    monkeypatch.setattr(gpu_check, "all_steps", lambda: steps)
    return steps


def test_visible_gpu_without_cuda_torch_fails(monkeypatch, tmp_path):
    ran: list[str] = []
    steps = _stub_steps(monkeypatch, ran)
    env = Env("NVIDIA H100 (nvidia-smi)", torch_cuda="torch 2.11.0+cpu sees no CUDA device",
              tensorrt="tensorrt does not import (ModuleNotFoundError)")
    code, summary = gpu_check.run_checks(tmp_path, env=env)
    assert code == 1 and not ran
    for name in steps:
        r = summary["steps"][name]
        assert r["status"] == "failed" and "torch has no CUDA" in r["reason"] and "2.11.0+cpu" in r["reason"]
    assert json.loads((tmp_path / "summary.json").read_text())["steps"] == summary["steps"]


def test_tensorrt_missing_fails_only_its_tier(monkeypatch, tmp_path):
    ran: list[str] = []
    steps = _stub_steps(monkeypatch, ran)
    env = Env("NVIDIA H100 (cuda-python)", tensorrt="tensorrt does not import (ModuleNotFoundError: tensorrt)")
    code, summary = gpu_check.run_checks(tmp_path, env=env)
    assert code == 1
    cuda = [n for n, s in steps.items() if s.tier == "cuda"]
    assert ran == cuda and cuda
    for name, s in steps.items():
        r = summary["steps"][name]
        if s.tier == "cuda":
            assert r["status"] == "passed"
        else:
            assert r["status"] == "failed" and "TensorRT does not import" in r["reason"]
    # The CUDA tier alone passes on that machine (what the lent GPU machine runs).
    ran.clear()
    code, _ = gpu_check.run_checks(tmp_path / "c", env=env, tiers=("cuda",))
    assert code == 0 and ran == cuda


def test_no_gpu_skips_and_a_failing_step_does_not_stop_the_others(monkeypatch, tmp_path):
    ran: list[str] = []
    steps = _stub_steps(monkeypatch, ran)
    code, summary = gpu_check.run_checks(tmp_path, env=Env(None, no_gpu="nvidia-smi not found; ..."))
    assert code == 0 and not ran
    assert {r["status"] for r in summary["steps"].values()} == {"skipped"}

    first, second = list(steps)[:2]

    def boom(ctx):
        raise RuntimeError("kernel exploded")

    steps[first] = gpu_check.Step(first, "cuda", boom, "")
    code, summary = gpu_check.run_checks(tmp_path / "b", steps=[first, second], env=Env("GPU (torch)"))
    assert code == 1 and ran == [second]
    assert summary["steps"][first] == {**summary["steps"][first], "status": "failed",
                                       "reason": "RuntimeError: kernel exploded"}
    assert summary["steps"][second]["status"] == "passed"
    assert "kernel exploded" in (tmp_path / "b" / "gpu_check.log").read_text()


def test_unknown_step_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exc:
        gpu_check.main(["--steps", "nope"])
    assert exc.value.code == 2 and "unknown step" in capsys.readouterr().err


def test_make_target_is_the_same_command():
    make = shutil.which("make")
    if make is None:
        pytest.skip("no make")
    # --no-print-directory: under `make test` this make is nested and would announce its directory.
    proc = subprocess.run([make, "--no-print-directory", "-n", "gpu-check", "ARGS=--out X"], cwd=REPO,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "PYTHONPATH=. python3 -m benchmarks.gpu_check --out X"


def test_every_name_the_steps_import_exists():
    """The steps import lazily (they run only on a GPU): check here that every module and name they import
    exists, so a renamed function breaks this CPU test instead of the one GPU run we get."""
    import ast
    import importlib

    missing = []
    for mod in ("benchmarks.gpu_check.cuda_tier", "benchmarks.gpu_check.trt_tier"):
        tree = ast.parse(Path(importlib.import_module(mod).__file__).read_text())
        for node in ast.walk(tree):
            ours = isinstance(node, ast.ImportFrom) and (node.module or "").startswith(("dcpose_trt", "benchmarks"))
            if ours:
                target = importlib.import_module(node.module)
                missing += [f"{node.module}.{a.name}" for a in node.names if not hasattr(target, a.name)
                            and importlib.util.find_spec(f"{node.module}.{a.name}") is None]
    assert not missing


def test_runtime_step_inputs_work_on_the_cpu(tmp_path):
    """The device-independent half of ``torch_cuda_runtime`` (videos, boxes, the pose loop) on the torch CPU
    backend, so the GPU run only adds the GPU half."""
    from benchmarks.gpu_check import cuda_tier
    from dcpose_trt.model import load_model
    from dcpose_trt.runtime.backends.torch_backend import TorchBackend

    ctx = gpu_check.Context(tmp_path, tmp_path, True, Env(None))
    videos = cuda_tier._videos(ctx)
    assert "synthetic" in videos
    video, boxes = videos["real_clip"] if "real_clip" in videos else videos["synthetic"]
    poses = cuda_tier._poses(TorchBackend(load_model()), video, boxes)
    assert poses and sum(len(p) for p in poses) > 0
    assert all(p.shape[1:] == (17, 3) for p in poses)


def test_runtime_step_keeps_boxes_on_their_frames_past_an_unreadable_one(tmp_path):
    """The pose loop of ``torch_cuda_runtime`` numbers frames by their position in the folder (the indexed
    frame source), so an unreadable frame does not shift the boxes of the frames after it (issue 21 item 9;
    it counted with ``enumerate`` before: frame 3 got frame 2's boxes)."""
    import json

    import cv2
    import numpy as np

    from benchmarks.gpu_check import cuda_tier
    from dcpose_trt.model import load_model
    from dcpose_trt.runtime.backends.torch_backend import TorchBackend

    rng = np.random.default_rng(0)
    rows = []
    for i in range(5):
        cv2.imwrite(str(tmp_path / f"{i:06d}.jpg"), rng.integers(0, 256, (120, 160, 3), dtype=np.uint8))
        rows += [{"frame": i, "file_name": f"{i:06d}.jpg", "bbox": [5 + 10 * k, 5, 40, 80], "score": 1.0,
                  "category_id": 1} for k in range(i + 1)]  # frame i has i + 1 persons
    (tmp_path / "000002.jpg").write_bytes(b"not an image")
    boxes = tmp_path.parent / f"{tmp_path.name}_boxes.json"
    boxes.write_text(json.dumps(rows))
    poses = cuda_tier._poses(TorchBackend(load_model()), tmp_path, boxes)
    assert [len(p) for p in poses] == [1, 2, 4, 5]
