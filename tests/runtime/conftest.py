"""Runtime tests run the Triton crop/decode kernels in Triton's CPU interpreter when there is no GPU.

``TRITON_INTERPRET`` is read when a ``@triton.jit`` kernel is defined, so it is set here, at collection
time, before any test imports :mod:`dcpose_trt.runtime.tensorrt.gpu_kernels`.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")


def _assert_same_poses(a: np.ndarray, b: np.ndarray, min_agree: float = 0.95) -> None:
    """Keypoints float32[N, 17, 3] of one model run two ways (batch sizes, cached vs exact) agree.

    Different batch sizes or graph splits pick different conv kernels/blockings, so float32 sums differ in
    the last bits (~1e-6 relative). Scores (heatmap peaks) therefore agree to 1e-4 relative; a position is
    an argmax, which such noise moves only where two cells nearly tie: allow a few such joints.
    """
    np.testing.assert_allclose(a[..., 2], b[..., 2], rtol=1e-4, atol=1e-4 * float(np.abs(a[..., 2]).max()))
    agree = np.all(np.abs(a[..., :2] - b[..., :2]) <= 1e-3, axis=-1)
    assert agree.mean() >= min_agree, f"{agree.mean():.1%} of joints agree"


@pytest.fixture
def assert_same_poses():
    """The comparison of two runs' keypoints that tolerates argmax near-ties (see _assert_same_poses)."""
    return _assert_same_poses


@pytest.fixture(scope="module")
def clip(shared_data) -> Path:
    """The real 5-frame PoseTrack clip's folder (frames + ``boxes.json``); test files that need it in another
    form define their own ``clip``."""
    path = shared_data / "posetrack18_sample" / "videos" / "000001_mpiinew_test"
    if not (path / "boxes.json").is_file():
        pytest.skip("real clip not found")
    return path
