"""A plan runs without Triton and a CUDA build of torch (issue 23, finding 2).

The fused GPU crop/decode path (:class:`~dcpose_trt.runtime.tensorrt.gpu_pose.FusedGpuPose`, the base of the
TensorRT backend) is an optimisation: where Triton or torch's CUDA is missing the estimator takes the CPU
crop/decode path, the very function the CPU backends go through. Shown on the real ONNX Runtime backend.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest

from dcpose_trt.export import ExportConfig, export_onnx
from dcpose_trt.runtime import PoseEstimator
from dcpose_trt.runtime.backends.ort_backend import OnnxRuntimeBackend
from dcpose_trt.runtime.backends.torch_backend import TorchBackend
from dcpose_trt.runtime.prepost import choose_pose_path, cpu_pose, fused_pose, torch_cuda_usable
from dcpose_trt.runtime.tensorrt.gpu_pose import FusedGpuPose
from dcpose_trt.runtime.tensorrt.torch_cuda import TorchCudaBackend
from dcpose_trt.runtime.tensorrt.trt_backend import TensorRTBackend

pytest.importorskip("onnxruntime")


def _no():
    return False


def _yes():
    return True


@pytest.mark.parametrize(("torch_cuda", "triton"), [(_no, _no), (_no, _yes), (_yes, _no)])
def test_plan_without_torch_cuda_or_triton_takes_the_cpu_backends_path(torch_cuda, triton):
    plan_path, note = choose_pose_path(TensorRTBackend, torch_cuda=torch_cuda, triton=triton)
    ort_path, ort_note = choose_pose_path(OnnxRuntimeBackend, torch_cuda=torch_cuda, triton=triton)
    assert plan_path is ort_path is cpu_pose  # the same function object, not a copy of it
    assert choose_pose_path(TorchBackend, torch_cuda=torch_cuda, triton=triton)[0] is cpu_pose
    assert choose_pose_path(TorchCudaBackend, torch_cuda=torch_cuda, triton=triton)[0] is cpu_pose
    assert ort_note is None
    # One line naming what the fused path would need.
    assert note is not None and "\n" not in note
    assert ("Triton" in note) == (triton is _no)
    assert ("CUDA build of torch" in note) == (torch_cuda is _no)


def test_fused_path_only_where_it_can_run():
    assert choose_pose_path(TensorRTBackend, torch_cuda=_yes, triton=_yes) == (fused_pose, None)
    assert choose_pose_path(OnnxRuntimeBackend, torch_cuda=_yes, triton=_yes) == (cpu_pose, None)


class _PlanLike(FusedGpuPose):
    """The TensorRT backend's class structure (the real fused path, ``pose()`` included) with the model run
    by a real ONNX Runtime session: what a plan-backed estimator sees, on a machine without a GPU."""

    def __init__(self, ort: OnnxRuntimeBackend):
        self._gpu_setup()
        self.ort = ort
        self.name, self.preset_name, self.input_size = "plan-like", ort.preset_name, ort.input_size
        self.pose_calls = 0

    def pose(self, window, boxes):
        self.pose_calls += 1
        return super().pose(window, boxes)  # the real fused path: needs Triton and torch CUDA

    def _infer_impl(self, frames, margin):
        return self.ort.infer(frames, margin)


@pytest.fixture(scope="module")
def ort_model(tmp_path_factory, tiny_model_perturbed):
    return export_onnx(tiny_model_perturbed, tmp_path_factory.mktemp("onnx") / "tiny.onnx",
                       ExportConfig(deform="deformconv", check=False))


def test_plan_backed_estimator_runs_on_the_cpu_path_end_to_end(ort_model, monkeypatch, caplog):
    """Failed before the fix: the estimator sent every GpuPoseBackend through ``pose()``, which raised
    CudaError ("install a CUDA build of torch") where torch has no CUDA, or MissingDependencyError without
    Triton: a plan could not run on TensorRT + cuda-python + NumPy + OpenCV alone."""
    if torch_cuda_usable():
        monkeypatch.setattr("dcpose_trt.runtime.prepost.torch_cuda_usable", _no)
    monkeypatch.setattr("dcpose_trt.runtime.prepost.triton_usable", _no)
    monkeypatch.setattr("dcpose_trt.runtime.prepost._noted", set())
    ort = OnnxRuntimeBackend(ort_model, threads=1)
    plan_like = _PlanLike(ort)
    with caplog.at_level(logging.WARNING, logger="dcpose_trt.runtime.prepost"):
        est = PoseEstimator(backend=plan_like)
    ref = PoseEstimator(backend=ort)
    rng = np.random.default_rng(5)
    frames = [rng.integers(0, 256, (120, 160, 3), dtype=np.uint8) for _ in range(4)]
    boxes = [np.array([[10, 5, 60, 100, 0.9], [70, 20, 50, 90, 0.8]], np.float32)] * 4
    got, want = est.run(frames, boxes), ref.run(frames, boxes)
    assert plan_like.pose_calls == 0
    assert est.pose_path is ref.pose_path is cpu_pose
    assert [r.getMessage().count("\n") for r in caplog.records] == [0]
    assert "fused GPU path needs Triton" in caplog.text
    assert [r.index for r in got] == [0, 1, 2, 3]
    for g, w in zip(got, want, strict=True):
        np.testing.assert_array_equal(np.stack([p.keypoints for p in g.persons]),
                                      np.stack([p.keypoints for p in w.persons]))
