"""Issue 20: `predict --threads N` reaches the session of every CPU backend, read back from the session
itself (ONNX Runtime ``SessionOptions.intra_op_num_threads``, OpenVINO ``INFERENCE_NUM_THREADS``, torch's
intra-op pool). Models are the bundled checkpoint, exported or converted on demand as `predict` does."""

from __future__ import annotations

import pytest
import torch

from dcpose_trt.errors import MissingDependencyError
from dcpose_trt.runtime.backends.registry import REGISTRY, unavailable_reason
from dcpose_trt.scale.jobs import EstimatorConfig, WorkerState


def _ort_threads(be) -> set[int]:
    sessions = [s for s in (be._full, be._backbone, be._head) if s is not None]
    return {s.session.get_session_options().intra_op_num_threads for s in sessions}


def _ov_threads(be) -> set[int]:
    parts = [p for p in (be._full, be._backbone, be._head) if p is not None]
    return {int(p.compiled.get_property("INFERENCE_NUM_THREADS")) for p in parts}


def _torch_threads(be) -> set[int]:
    return {torch.get_num_threads()}


#: How to read the thread setting back from each backend's session (a new CPU backend adds its reader).
READERS = {"torch": _torch_threads, "onnxruntime": _ort_threads, "openvino": _ov_threads,
           "openvino-bf16": _ov_threads, "openvino-int8": _ov_threads}
GPU_ONLY = {"tensorrt", "tensorrt-rtx"}


@pytest.fixture
def restore_torch_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize("name", sorted(REGISTRY))
@pytest.mark.parametrize("mode", ["exact", "cached"])
def test_predict_threads_reach_the_session(name, mode, restore_torch_threads):
    if name in GPU_ONLY:
        pytest.skip(f"{name} runs on the GPU: no CPU thread setting")
    why = unavailable_reason(name) or REGISTRY[name].needs
    if why:
        pytest.skip(f"{name}: {why}")
    assert name in READERS, f"add how to read {name}'s thread setting to READERS"
    try:
        state = WorkerState(EstimatorConfig(None, name, mode=mode, threads=1))  # what `predict --threads 1` builds
    except MissingDependencyError as exc:
        pytest.skip(str(exc))
    try:
        assert READERS[name](state.estimator.backend) == {1}
    finally:
        state.estimator.close()
