"""[trust] items 12 and 15, and Ctrl-C from library code (issue 20's new-user list).

12: ``--ray-address`` auto with no cluster, ``ray://``, malformed, unreachable ``HOST:PORT``: one line each
    within a bounded, settable wait (``--ray-timeout``). Run as subprocesses: on the code before the fix a
    reachable non-Ray port made Ray end the whole process.
15: Ray >= 2.59 (token authentication on by default for local clusters) is required, and the local
    cluster listens on 127.0.0.1 only, without a dashboard.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory) -> Path:
    """A PoseTrack-layout folder the driver can list (the run stops before any worker reads it)."""
    root = tmp_path_factory.mktemp("ds")
    (root / "annotations" / "val").mkdir(parents=True)
    (root / "annotations" / "val" / "v1.json").write_text(json.dumps({"annolist": []}))
    return root


def _predict(root: Path, out: Path, address: str, *extra: str, env_extra: dict | None = None):
    env = {**os.environ, "PYTHONPATH": str(REPO), **(env_extra or {})}
    env.pop("RAY_ADDRESS", None)
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "dcpose_trt.cli", "predict", "--data", str(root), "--boxes", "gt",
                           "--backend", "torch", "--out", str(out), "--workers", "1", "--ray-address", address,
                           *extra], capture_output=True, text=True, env=env, timeout=240)
    return proc, time.monotonic() - t0


def _listening_non_ray_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(8)
    return s


@pytest.mark.parametrize("case", ["ray-client", "malformed", "port-out-of-range", "refused", "not-ray",
                                  "auto-without-cluster"])
def test_bad_cluster_address_is_one_line_within_the_wait(case, tiny_dataset, tmp_path):
    held = None
    env_extra = {}
    if case == "ray-client":
        address = "ray://127.0.0.1:10001"
    elif case == "malformed":
        address = "head node:63 79"
    elif case == "port-out-of-range":
        address = "10.0.0.5:99999"
    elif case == "refused":
        s = _listening_non_ray_port()
        address = f"127.0.0.1:{s.getsockname()[1]}"
        s.close()  # nothing listens there now
    elif case == "not-ray":
        held = _listening_non_ray_port()  # accepts TCP, speaks no Ray
        address = f"127.0.0.1:{held.getsockname()[1]}"
    else:
        address = "auto"
        env_extra = {"RAY_TMPDIR": str(tmp_path / "no-ray-here")}  # no cluster file: no cluster to find
    try:
        proc, took = _predict(tiny_dataset, tmp_path / "out", address, "--ray-timeout", "8", env_extra=env_extra)
    finally:
        if held is not None:
            held.close()
    err = proc.stderr.strip().splitlines()
    ours = [ln for ln in err if ln.startswith("dcpose-trt predict: error:")]
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert len(ours) == 1 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert took < 8 + 60, took  # the wait is bounded by --ray-timeout (plus Python/Ray start-up)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_address_forms_are_checked_before_any_work():
    from dcpose_trt.errors import InputError
    from dcpose_trt.scale.ray_connect import parse_address

    assert parse_address("local") == ("local", None, None)
    assert parse_address("auto") == ("auto", None, None)
    assert parse_address("10.0.0.5:6379") == ("hostport", "10.0.0.5", 6379)
    assert parse_address("[::1]:6379") == ("hostport", "::1", 6379)
    for bad in ("ray://h:10001", "h", ":6379", "h:0", "h:x", "http://h:6379", ""):
        with pytest.raises(InputError):
            parse_address(bad)


def test_ray_without_default_token_auth_is_refused(monkeypatch, tmp_path, tiny_dataset):
    from dcpose_trt.errors import MissingDependencyError
    from dcpose_trt.scale.distributed import ClusterConfig, run_distributed
    from dcpose_trt.scale.jobs import EstimatorConfig, posetrack_jobs

    monkeypatch.setattr(ray, "__version__", "2.52.0")
    jobs = posetrack_jobs(tiny_dataset, "val", tmp_path / "o", boxes="gt")
    with pytest.raises(MissingDependencyError, match=r"Ray >= 2\.59"):
        run_distributed(jobs, EstimatorConfig(None, "torch"), ClusterConfig(workers=1), progress=False)


def test_setup_requires_ray_with_token_auth_by_default():
    text = (REPO / "setup.py").read_text()
    assert '"ray>=2.59"' in text


def test_local_cluster_is_loopback_only_without_dashboard():
    """The real ``ray.init`` of ``--ray-address local``: node and GCS on 127.0.0.1, no dashboard, token
    authentication on."""
    from dcpose_trt.scale.distributed import ClusterConfig, _connect
    from dcpose_trt.scale.jobs import EstimatorConfig

    if ray.is_initialized():
        pytest.skip("a Ray cluster of another test module is still connected")
    started, dashboard = _connect(ray, ClusterConfig(workers=1), EstimatorConfig())
    try:
        assert started and dashboard is None
        nodes = ray.nodes()
        assert nodes and all(n["NodeManagerAddress"] == "127.0.0.1" for n in nodes)
        assert ray.get_runtime_context().gcs_address.startswith("127.0.0.1:")
        assert os.environ.get("RAY_AUTH_MODE") == "token"  # Ray >= 2.59 turned it on for this local cluster
        with socket.socket() as s:  # nothing on the dashboard's port
            assert s.connect_ex(("127.0.0.1", 8265)) != 0
    finally:
        ray.shutdown()


# -- Ctrl-C in library code reaches a Python caller --------------------------------------------------------

def _job(name: str, out: Path, interrupt: bool = False):
    """A video job (the real dataclass) whose run finishes at once or is interrupted by Ctrl-C."""
    from dataclasses import dataclass

    from dcpose_trt.scale.jobs import JobOutput, VideoFileJob

    @dataclass(frozen=True)
    class Job(VideoFileJob):
        interrupt: bool = False

        def run(self, state, on_frame=None):
            if self.interrupt:
                raise KeyboardInterrupt
            return JobOutput(self.name, b'{"frames": [{"frame": 0, "persons": []}]}', 1, 0, 0.0)

    return Job(name, str(out), video=str(out.parent / f"{name}.mp4"), boxes=None, interrupt=interrupt)


def test_ctrl_c_in_run_in_process_reaches_the_caller_after_cleanup(tmp_path):
    from dcpose_trt.scale.jobs import EstimatorConfig, run_in_process

    jobs = [_job("a", tmp_path / "a.json"), _job("b", tmp_path / "b.json", interrupt=True),
            _job("c", tmp_path / "c.json")]
    with pytest.raises(KeyboardInterrupt) as info:
        run_in_process(jobs, EstimatorConfig(), resume=False, progress=False, state=object())
    report = info.value.report
    assert report.interrupted and report.done == ["a"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "a.json.made"]  # whole files only


def test_predict_cli_turns_ctrl_c_into_130(tmp_path, monkeypatch, capsys, tiny_dataset):
    import dcpose_trt.scale.jobs as jobs_mod
    from dcpose_trt.cli import main

    real = jobs_mod.run_in_process

    def interrupted(jobs, cfg, resume=True, progress=True, state=None):
        return real([_job("v1", tmp_path / "o" / "v1.json", interrupt=True)], cfg, resume,
                                       progress, object())

    monkeypatch.setattr(jobs_mod, "run_in_process", interrupted)
    monkeypatch.setattr(jobs_mod, "WorkerState", lambda est: None)
    rc = main(["predict", "--data", str(tiny_dataset), "--boxes", "gt", "--out", str(tmp_path / "o")])
    assert rc == 130
    assert "interrupted" in capsys.readouterr().err
