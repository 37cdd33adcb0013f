"""Shared fixtures; the ``gpu`` mark becomes a visible skip on machines without CUDA."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

# Triton reads TRITON_INTERPRET when a @triton.jit function is *defined*: set it here, before any test
# module (or the package code it imports) defines a kernel, so that every kernel of the run, and every
# @triton.jit helper it calls, runs in the CPU interpreter on machines without a GPU.
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

# `--backend auto` for a checkpoint times every CPU backend once per machine and model
# (dcpose_trt.runtime.backends.autoselect). Tests that are not about that choice run checkpoints with torch, as auto
# did before it measured; a single candidate is taken without timing. tests/runtime/test_autoselect.py sets
# its own candidates. Set here (not in a fixture) so that CLI subprocesses inherit it too.
os.environ.setdefault("DCPOSE_TRT_AUTO_CANDIDATES", "torch")

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("DCPOSE_TRT_SHARED_DATA", REPO.parent / "shared" / "data"))


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _restore_rng():
    """Tests may seed freely without leaking RNG state into each other."""
    torch_state = torch.get_rng_state()
    np_state = np.random.get_state()
    yield
    torch.set_rng_state(torch_state)
    np.random.set_state(np_state)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def tiny_model_perturbed():
    """``tiny-128x96`` with weights moved away from the official near-zero init (heatmaps ~1e-11), so that
    outputs depend on every input and wiring mistakes show up. Shared: tests must not modify it."""
    from dcpose_trt.model import build_dcpose

    gen = torch.Generator().manual_seed(0)
    model = build_dcpose("tiny-128x96")
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * 0.05)
    return model
