"""[trust] item 7: ``predict`` resumes only outputs made the same way that cover every frame, and says
why it redoes the others (before the fix an empty ``{"frames": []}`` and another model's result were kept)."""

from __future__ import annotations

import json

import pytest

from dcpose_trt.data.synth import SynthConfig, generate
from dcpose_trt.scale.jobs import EstimatorConfig, WorkerState, posetrack_jobs, run_in_process


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("archive")
    generate(SynthConfig(out=root, videos=2, frames=3, seed=5, split_ratio=0.0, size=(128, 96), workers=1))
    return root


@pytest.fixture(scope="module")
def state():
    return WorkerState(EstimatorConfig(None, "torch", threads=1))


def _run(dataset, out, state, cfg=None):
    jobs = posetrack_jobs(dataset, "val", out, boxes="gt")
    return jobs, run_in_process(jobs, cfg or EstimatorConfig(None, "torch", threads=1), resume=True, progress=False,
                                state=state)


def test_resume_skips_only_outputs_made_the_same_way(dataset, tmp_path, state):
    out = tmp_path / "pred"
    jobs, first = _run(dataset, out, state)
    assert sorted(first.done) == sorted(j.name for j in jobs) and not first.skipped
    _, again = _run(dataset, out, state)
    assert sorted(again.skipped) == sorted(j.name for j in jobs) and not again.done

    a, b = sorted(j.name for j in jobs)
    (out / f"{a}.json").write_text(json.dumps({"annolist": []}))  # empty: parses, covers nothing
    _, third = _run(dataset, out, state)
    assert third.done == [a] and third.skipped == [b]
    assert a in third.redone and "\n" not in third.redone[a]
    assert any(a in line and "redo" in line for line in third.lines())
    assert len(json.loads((out / f"{a}.json").read_text())["annolist"]) > 0


def test_output_of_another_model_or_mode_is_redone(dataset, tmp_path, state):
    out = tmp_path / "pred"
    jobs, _ = _run(dataset, out, state)
    # Same files, another mode asked for (causal): nothing made that way yet.
    _, other = _run(dataset, out, state, EstimatorConfig(None, "torch", lookahead=False, threads=1))
    assert sorted(other.done) == sorted(j.name for j in jobs)
    assert all("lookahead" in why for why in other.redone.values()), other.redone


def test_output_without_a_record_is_redone(dataset, tmp_path, state):
    out = tmp_path / "pred"
    jobs, _ = _run(dataset, out, state)
    for j in jobs:
        (out / f"{j.name}.json.made").unlink()  # e.g. written by an older dcpose-trt or copied in by hand
    _, again = _run(dataset, out, state)
    assert sorted(again.done) == sorted(j.name for j in jobs)
    assert all("records nothing" in why for why in again.redone.values())
