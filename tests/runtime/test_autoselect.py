"""``--backend auto`` for a checkpoint: the fastest CPU backend, measured once per machine and model (issue 15, §4).

Real measurements of real backends on the bundled model (torch and ONNX Runtime: OpenVINO's conversion is
covered by test_ov_backend.py and would add minutes here), in a private cache.
"""

from __future__ import annotations

import json

import pytest

from dcpose_trt.cli import main
from dcpose_trt.errors import InputError
from dcpose_trt.model.presets import BUNDLED_MODEL
from dcpose_trt.runtime.backends import autoselect
from dcpose_trt.runtime.backends.base import SplitBackend
from dcpose_trt.runtime.backends.opener import open_backend

pytest.importorskip("onnxruntime")
PAIR = ["torch", "onnxruntime"]


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    root = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DCPOSE_TRT_CACHE", str(root))
        mp.setenv(autoselect.CANDIDATES_ENV, ",".join(PAIR))
        yield root


@pytest.fixture(scope="module")
def exact(cache):
    return autoselect.select_backend(BUNDLED_MODEL, mode="exact", budget_s=0.2, progress=False)


def test_measures_both_and_picks_the_faster(exact, cache):
    assert not exact.reused and set(exact.times_ms) == set(PAIR)
    assert all(set(t) == {"1", "8"} and all(v > 0 for v in t.values()) for t in exact.times_ms.values())
    assert exact.backend == min(PAIR, key=exact.score)
    # Per-frame time grows with the persons (a backend that ignored the batch would be a measuring bug).
    assert all(t["8"] > t["1"] for t in exact.times_ms.values())
    record = json.loads((cache / "autoselect" / exact.path.rsplit("/", 1)[-1]).read_text())
    assert record["backend"] == exact.backend and record["key"]["mode"] == "exact"
    assert record["key"]["cpu"] and record["key"]["checkpoint_sha256"] == exact.key["checkpoint_sha256"]


def test_remembered_choice_is_reused_and_opened_by_auto(exact, cache, capsys):
    again = autoselect.select_backend(BUNDLED_MODEL, mode="exact", progress=False)
    assert again.reused and again.backend == exact.backend and again.times_ms == exact.times_ms
    # A subset of the measured candidates is answered from the same measurement.
    only_torch = autoselect.select_backend(BUNDLED_MODEL, mode="exact", wanted=["torch"], progress=False)
    assert only_torch.backend == "torch"
    before = {p: p.stat().st_mtime_ns for p in (cache / "autoselect").iterdir()}
    backend = open_backend(None, "auto", mode="exact")
    assert backend.name == exact.backend
    assert {p: p.stat().st_mtime_ns for p in (cache / "autoselect").iterdir()} == before  # nothing re-measured
    assert f"auto chose {exact.backend}" in capsys.readouterr().err


def test_cached_mode_is_its_own_measurement_and_exports_a_split_model(exact, cache):
    sel = autoselect.select_backend(BUNDLED_MODEL, mode="cached", budget_s=0.2, progress=False)
    assert not sel.reused and sel.path != exact.path and set(sel.times_ms) == set(PAIR)
    # ONNX Runtime in cached mode from a checkpoint: the backbone + head pair is exported on demand.
    with open_backend(None, "onnxruntime", mode="cached", progress=False) as b:
        assert isinstance(b, SplitBackend)
    assert any("-split-" in p.name for p in (cache / "models").iterdir())


def test_remeasure_and_cli(exact, cache, capsys):
    assert main(["select-backend", "--budget", "0.1"]) == 0
    out = capsys.readouterr().out
    assert "remembered" in out and "<- auto" in out and all(n in out for n in PAIR)
    assert main(["select-backend", "--remeasure", "--budget", "0.1", "--candidates", "torch,onnxruntime"]) == 0
    assert "measured now" in capsys.readouterr().out


def test_bad_candidates_are_one_line_errors(cache, monkeypatch, capsys):
    with pytest.raises(InputError, match="unknown auto candidate"):
        autoselect.candidates(["tensorrt"])
    monkeypatch.setenv(autoselect.CANDIDATES_ENV, "torch,nope")
    assert main(["select-backend"]) == 2
    err = capsys.readouterr().err
    assert "nope" in err and len(err.strip().splitlines()) == 1
    assert main(["select-backend", "--model", "missing.pth"]) == 2


def test_resolve_leaves_exported_models_and_named_backends_alone(exact, tmp_path):
    onnx_file = tmp_path / "m.onnx"
    onnx_file.write_bytes(b"")
    assert autoselect.resolve_backend(onnx_file, "auto") == "onnxruntime"  # an ONNX: by file type
    assert autoselect.resolve_backend(tmp_path, "auto") == "onnxruntime"  # a split-export folder
    assert autoselect.resolve_backend(None, "openvino") == "openvino"
    # A checkpoint: the measured choice on the CPU; torch on a CUDA device.
    assert autoselect.resolve_backend(None, "auto", progress=False) == exact.backend
    assert autoselect.resolve_backend(None, "auto", device="cuda", progress=False) == "torch"


@pytest.mark.parametrize("times", [[], {}, PAIR, {n: {} for n in PAIR}, {n: [] for n in PAIR},
                                   {n: {"1": 0} for n in PAIR}, {n: {"1": "fast"} for n in PAIR},
                                   {"torch": {"1": 3.0}, "onnxruntime": {"1": -1}}])
def test_a_corrupt_record_is_ignored_and_measured_again(exact, cache, times, caplog):
    """Issue 21 item 10: an empty or list ``times_ms`` (or any unreadable entry) used to crash every auto run."""
    path = autoselect.selection_path(exact.key)
    good = path.read_text()
    try:
        record = json.loads(good)
        record["times_ms"] = times
        path.write_text(json.dumps(record))
        sel = autoselect.select_backend(BUNDLED_MODEL, mode="exact", budget_s=0.05, progress=False)
        assert not sel.reused and sel.backend in PAIR and set(sel.times_ms) == set(PAIR)
        assert "ignoring an unreadable" in caplog.text
        assert autoselect.read_record(path) is not None  # the new measurement replaced it
    finally:
        path.write_text(good)


def test_the_busy_warning_is_said_once_when_measured(exact, caplog):
    """Issue 20 (new user): "measured while the machine was busy" repeated on every run of a remembered choice."""
    busy = autoselect.Selection(**{**{k: getattr(exact, k) for k in ("backend", "times_ms", "skipped", "key",
                                                                      "measured_at", "path")},
                                   "load_average": [99.0, 99.0]})
    autoselect.announce(busy, progress=False)
    assert "measured while the machine was busy" in caplog.text
    caplog.clear()
    busy.reused = True
    autoselect.announce(busy, progress=False)
    assert "busy" not in caplog.text
