"""Issue 20 item 3: the contract every registered backend keeps, run over the registry (a new backend is one
module and one registry line, and this test covers it).

Each backend opens the bundled tiny checkpoint (exported or converted on demand where it runs exported
files); one whose package or hardware is missing here is skipped with the reason. Then: outputs of the
documented shapes and dtype, the timing hook set, and bad inputs (shape, dtype, batch) refused with our
:class:`~dcpose_trt.errors.InputError` before the engine sees them.
"""

from __future__ import annotations

import numpy as np
import pytest

from dcpose_trt.errors import CudaError, InputError, MissingDependencyError, PlanMismatchError
from dcpose_trt.runtime.backends.base import Backend, SplitBackend
from dcpose_trt.runtime.backends.opener import open_backend
from dcpose_trt.runtime.backends.registry import REGISTRY, unavailable_reason


@pytest.fixture(scope="module", params=sorted(REGISTRY))
def backend(request):
    name = request.param
    why = unavailable_reason(name) or REGISTRY[name].needs
    if why:
        pytest.skip(f"{name}: {why}")
    try:
        be = open_backend(None, name, progress=False)
    except (MissingDependencyError, CudaError, PlanMismatchError) as exc:  # package or GPU missing here
        pytest.skip(f"{name}: {exc}")
    yield be
    be.close()


def _crops(b: int, c: int, h: int, w: int) -> np.ndarray:
    return np.random.default_rng(0).standard_normal((b, c, h, w)).astype(np.float32)


def test_outputs_have_the_documented_shapes_and_dtype(backend):
    assert isinstance(backend, Backend) and backend.name and backend.preset_name
    h, w = backend.input_size
    out = backend.infer(_crops(2, 9, h, w), np.ones((2, 2), np.float32))
    assert out.shape == (2, 17, h // 4, w // 4) and out.dtype == np.float32
    assert np.isfinite(out).all()
    assert backend.last_inference_time > 0 and backend.inference_calls >= 1
    if isinstance(backend, SplitBackend):
        hm = backend.backbone(_crops(3, 3, h, w))
        assert hm.shape == (3, 17, h // 4, w // 4) and hm.dtype == np.float32
        ref = backend.head(hm, hm, hm, np.ones((3, 2), np.float32))
        assert ref.shape == hm.shape and ref.dtype == np.float32


@pytest.mark.parametrize("case", ["channels", "crop-size", "rank", "int-dtype", "bool-dtype", "empty-batch",
                                  "margin-batch", "margin-shape"])
def test_bad_inputs_are_refused_with_our_error(backend, case):
    h, w = backend.input_size
    frames, margin = _crops(2, 9, h, w), np.ones((2, 2), np.float32)
    bad = {
        "channels": (frames[:, :8], margin),
        "crop-size": (_crops(2, 9, h + 4, w), margin),
        "rank": (frames[0], margin),
        "int-dtype": (frames.astype(np.int64), margin),
        "bool-dtype": (frames > 0, margin),
        "empty-batch": (frames[:0], margin[:0]),
        "margin-batch": (frames, margin[:1]),
        "margin-shape": (frames, np.ones((2, 3), np.float32)),
    }[case]
    with pytest.raises(InputError):
        backend.infer(*bad)


def test_a_batch_over_the_limit_is_refused(backend):
    if backend.max_batch is None:
        pytest.skip(f"{backend.name} takes any batch")
    h, w = backend.input_size
    n = backend.max_batch + 1
    with pytest.raises(InputError, match="batch"):
        backend.infer(_crops(n, 9, h, w), np.ones((n, 2), np.float32))


def test_split_halves_refuse_bad_inputs(backend):
    if not isinstance(backend, SplitBackend):
        pytest.skip(f"{backend.name} runs whole models only")
    h, w = backend.input_size
    with pytest.raises(InputError):
        backend.backbone(_crops(1, 9, h, w))
    with pytest.raises(InputError):
        backend.backbone(_crops(1, 3, h, w).astype(np.int32))
    hm = np.ones((2, 17, h // 4, w // 4), np.float32)
    with pytest.raises(InputError):
        backend.head(hm, hm[:1], hm, np.ones((2, 2), np.float32))
    with pytest.raises(InputError):
        backend.head(hm, hm, hm, np.ones((1, 2), np.float32))
