"""The TensorRT backend and the executor machinery it shares with the torch-CUDA path.

Without a GPU: bucket selection, the refusal paths of a real TensorRT-RTX plan (built on this CPU by
``dcpose_trt.engine.build_engine``), the errors for missing cuda-python / TensorRT, and real cuda-python
calls failing cleanly. With a GPU (``-m gpu``): streams, pinned and mapped buffers, CUDA graphs and the
Triton pre/post-processing through :class:`TorchCudaExecutor` (this project's GPU machines have no TensorRT).
"""

from __future__ import annotations

import json
import shutil
import sys

import numpy as np
import pytest
import torch

from dcpose_trt.errors import CudaError, InputError, MissingDependencyError, PlanMismatchError
from dcpose_trt.runtime.tensorrt.executor import _chunks, buckets_from_profiles
from dcpose_trt.runtime.tensorrt.trt_backend import TensorRTBackend

TINY = "tiny-128x96"


# --------------------------------------------------------------------------------------------------
# Pure logic


@pytest.mark.parametrize(("profiles", "expected"), [
    ([(1, 8, 32)], [(1, 0), (8, 0), (32, 0)]),
    ([(1, 1, 1), (2, 8, 8), (9, 32, 32)], [(1, 0), (8, 1), (32, 2)]),
    ([(4, 4, 4)], [(4, 0)]),
    ([(1, 4, 8), (1, 16, 16)], [(1, 0), (4, 0), (8, 0), (16, 1)]),
])
def test_buckets_from_profiles(profiles, expected):
    assert buckets_from_profiles(profiles) == expected


def test_buckets_need_a_profile():
    with pytest.raises(InputError, match="at least one batch profile"):
        buckets_from_profiles([])


def test_chunks_split_large_batches():
    assert _chunks(70, 32) == [(0, 32), (32, 64), (64, 70)]
    assert _chunks(0, 8) == []


# --------------------------------------------------------------------------------------------------
# A real TensorRT-RTX plan, built on this CPU (TensorRT-RTX compiles ahead of time for named GPUs)


def _tiny_onnx(path, h: int = 128, w: int = 96):
    """frames [B, 9, h, w], margin [B, 2] -> heatmaps [B, 17, h/4, w/4]: pool, 1x1 conv, times sum(margin)."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.standard_normal((17, 9, 1, 1)).astype(np.float32), "w"),
             numpy_helper.from_array(np.array([1], np.int64), "axes"),
             numpy_helper.from_array(np.array([2, 3], np.int64), "axes23")]
    nodes = [helper.make_node("AveragePool", ["frames"], ["pooled"], kernel_shape=[4, 4], strides=[4, 4]),
             helper.make_node("Conv", ["pooled", "w"], ["conv"]),
             helper.make_node("ReduceSum", ["margin", "axes"], ["msum"], keepdims=1),
             helper.make_node("Unsqueeze", ["msum", "axes23"], ["m4"]),
             helper.make_node("Mul", ["conv", "m4"], ["heatmaps"])]
    graph = helper.make_graph(
        nodes, "tiny", [helper.make_tensor_value_info("frames", TensorProto.FLOAT, ["B", 9, h, w]),
                        helper.make_tensor_value_info("margin", TensorProto.FLOAT, ["B", 2])],
        [helper.make_tensor_value_info("heatmaps", TensorProto.FLOAT, ["B", 17, h // 4, w // 4])], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)])
    model.ir_version = 10
    helper.set_model_props(model, {"dcpose_trt.preset": TINY})  # no DCN: no deform form to name
    onnx.save(model, str(path))
    return path


@pytest.fixture(scope="module")
def rtx_plan(tmp_path_factory):
    """(plan, onnx) built by the project's builder with the real TensorRT-RTX (about 10 s on 2 cores)."""
    pytest.importorskip("tensorrt_rtx")
    from dcpose_trt.engine import BuildConfig, build_engine

    d = tmp_path_factory.mktemp("rtx")
    onnx_path = _tiny_onnx(d / "tiny.onnx")
    plan = build_engine(onnx_path, d / "tiny.plan", BuildConfig(backend="tensorrt-rtx", progress=False,
                                                                 profiles=((1, 2, 4),), compute_capabilities=("8.9",)))
    return plan, onnx_path


@pytest.fixture
def plan_copy(rtx_plan, tmp_path):
    """A private copy of the plan and sidecar that a test may damage."""
    plan, onnx_path = rtx_plan
    dst = tmp_path / "m.plan"
    shutil.copy(plan, dst)
    shutil.copy(f"{plan}.json", f"{dst}.json")
    return dst, onnx_path


no_gpu = pytest.mark.skipif(torch.cuda.is_available(), reason="tests the refusal on a machine without a GPU")


class TestRefusal:
    @no_gpu
    def test_no_gpu_refused_with_rebuild_command(self, rtx_plan):
        plan, _ = rtx_plan
        with pytest.raises(PlanMismatchError) as info:
            TensorRTBackend(plan)
        msg = str(info.value)
        assert "\n" not in msg
        assert "no CUDA GPU" in msg and "rebuild with: dcpose-trt build --onnx" in msg

    def test_stale_onnx(self, plan_copy):
        plan, onnx_path = plan_copy
        changed = _tiny_onnx(plan.parent / "changed.onnx", 64, 48)
        with pytest.raises(PlanMismatchError, match=r"changed since the plan was built.*rebuild with: dcpose-trt"):
            TensorRTBackend(plan, onnx=changed)

    def test_damaged_plan(self, plan_copy):
        plan, _ = plan_copy
        data = bytearray(plan.read_bytes())
        data[len(data) // 2] ^= 0xFF
        plan.write_bytes(bytes(data))
        with pytest.raises(PlanMismatchError, match="does not match its sidecar"):
            TensorRTBackend(plan)

    def test_missing_sidecar(self, plan_copy):
        plan, _ = plan_copy
        plan.with_name(plan.name + ".json").unlink()
        with pytest.raises(PlanMismatchError, match="no sidecar m.plan.json; rebuild it with dcpose-trt build"):
            TensorRTBackend(plan)

    def test_wrong_preset(self, plan_copy):
        plan, _ = plan_copy
        with pytest.raises(PlanMismatchError, match=f"it is for preset {TINY} but w48-384x288 was requested"):
            TensorRTBackend(plan, preset="w48-384x288")

    def test_backend_must_match_the_plan(self, plan_copy):
        plan, _ = plan_copy
        with pytest.raises(InputError, match="was built with tensorrt-rtx; open it with backend='tensorrt-rtx'"):
            TensorRTBackend(plan, backend="tensorrt")

    def test_not_a_file(self, tmp_path):
        with pytest.raises(InputError, match="plan file not found"):
            TensorRTBackend(tmp_path / "nope.plan")

    def test_missing_tensorrt_names_the_extra(self, plan_copy):
        from dcpose_trt._deps import available

        if available("tensorrt"):
            pytest.skip("tensorrt is installed here")
        plan, _ = plan_copy
        side = plan.with_name(plan.name + ".json")
        meta = json.loads(side.read_text())
        meta["backend"] = {"name": "tensorrt", "version": "10.13.3.9"}  # as a TensorRT 10 build writes it
        side.write_text(json.dumps(meta))
        with pytest.raises(MissingDependencyError, match=r"'tensorrt' is needed.*pip install -e '\.\[trt\]'"):
            TensorRTBackend(plan)

    def test_missing_cuda_python_names_the_extra(self, plan_copy, monkeypatch):
        plan, _ = plan_copy
        # None in sys.modules makes the import fail exactly as if cuda-python were not installed.
        monkeypatch.setitem(sys.modules, "cuda.bindings.runtime", None)
        with pytest.raises(MissingDependencyError, match=r"cuda\.bindings\.runtime.*pip install -e '\.\[cuda\]'"):
            TensorRTBackend(plan)

    @no_gpu
    def test_deserialization_without_gpu_fails_cleanly(self, rtx_plan):
        """Past the fitness check, the executor's first CUDA call refuses with a CudaError, not a crash."""
        pytest.importorskip("cuda.bindings")
        import tensorrt_rtx

        from dcpose_trt.runtime.tensorrt.trt_backend import TensorRTExecutor

        plan, _ = rtx_plan
        with pytest.raises(CudaError, match=r"cudaSetDevice failed: cudaError\w+"):
            TensorRTExecutor(plan.read_bytes(), tensorrt_rtx, what=str(plan))

    @no_gpu
    def test_runtime_refuses_plan_without_gpu(self, rtx_plan):
        """The real TensorRT-RTX runtime returns no engine (it needs a GPU); our logger keeps its reason."""
        trt = pytest.importorskip("tensorrt_rtx")
        from dcpose_trt.runtime.tensorrt.trt_api import make_logger

        plan, _ = rtx_plan
        logger = make_logger(trt)
        assert trt.Runtime(logger).deserialize_cuda_engine(plan.read_bytes()) is None
        assert any("deserializeCudaEngine" in e or "Cuda" in e for e in logger.errors)


def test_check_cuda_names_the_failing_call():
    pytest.importorskip("cuda.bindings")
    from dcpose_trt.runtime.tensorrt.cuda import check_cuda, cudart

    rt = cudart()
    with pytest.raises(CudaError, match=r"cudaSetDevice failed: cudaError\w+ \(.+\); see https://docs.nvidia"):
        check_cuda(rt.cudaSetDevice(10_000), "cudaSetDevice")
    assert check_cuda((rt.cudaError_t.cudaSuccess, 7), "x") == 7
    assert check_cuda((rt.cudaError_t.cudaSuccess,), "x") is None
    assert check_cuda((rt.cudaError_t.cudaSuccess, 1, 2), "x") == (1, 2)


# --------------------------------------------------------------------------------------------------
# GPU: the same machinery with a torch CUDA module as the engine


class _Net(torch.nn.Module):
    """frames [B, 9, H, W], margin [B, 2] -> [B, 17, H/4, W/4]: conv, pooling and the margin, like DCPose's I/O."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(9, 17, 3, padding=1)

    def forward(self, frames: torch.Tensor, margin: torch.Tensor) -> torch.Tensor:
        x = torch.nn.functional.avg_pool2d(torch.relu(self.conv(frames)), 4)
        return x * margin.sum(1)[:, None, None, None]


def _executor(use_graphs: bool = True, buckets=(1, 4), mapped=None):
    from dcpose_trt.runtime.tensorrt.executor import TensorSpec
    from dcpose_trt.runtime.tensorrt.torch_cuda import TorchCudaExecutor

    torch.manual_seed(0)
    net = _Net().cuda().eval()
    ex = TorchCudaExecutor(net, [TensorSpec("frames", (9, 32, 24)), TensorSpec("margin", (2,))],
                           TensorSpec("out", (17, 8, 6)), buckets=buckets, use_graphs=use_graphs, mapped=mapped)
    return net, ex


@pytest.mark.gpu
class TestGpuExecutor:
    def test_buffers_round_trip(self):
        from dcpose_trt.runtime.tensorrt.cuda import HostDeviceBuffer, Stream

        for mapped in (False, True):
            with Stream() as s, HostDeviceBuffer((3, 5), np.float32, mapped=mapped) as buf:
                buf.host[:] = np.arange(15, dtype=np.float32).reshape(3, 5)
                buf.copy_to_device(s)
                dev = torch.as_tensor(buf, device="cuda")
                s.synchronize()
                assert dev.data_ptr() == buf.device_ptr
                np.testing.assert_array_equal(dev.cpu().numpy(), buf.host)
                dev.mul_(2)
                torch.cuda.synchronize()
                buf.copy_to_host(s)
                s.synchronize()
                np.testing.assert_array_equal(buf.host, 2 * np.arange(15, dtype=np.float32).reshape(3, 5))
            assert buf.closed and s.closed
            buf.close()  # idempotent
            s.close()

    def test_graph_replay_equals_eager(self):
        net, ex = _executor()
        with ex:
            rng = np.random.default_rng(0)
            for n in (3, 4, 1, 6, 3):  # 6 = 4 + 2: split over the largest bucket
                frames = rng.standard_normal((n, 9, 32, 24)).astype(np.float32)
                margin = rng.uniform(0.5, 2, (n, 2)).astype(np.float32)
                got = ex.run({"frames": frames, "margin": margin})["out"]
                with torch.inference_mode():
                    ref = net(torch.from_numpy(frames).cuda(), torch.from_numpy(margin).cuda()).cpu().numpy()
                np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5)
            # Buckets 1 and 4 were warmed up eagerly once, then captured and replayed.
            for size in (1, 4):
                bucket = ex.bucket_for(size)
                assert bucket.graph is not None and bucket.runs == 1 and not bucket.graph_failed

    def test_graphs_off_gives_the_same(self):
        _, ex_g = _executor(True)
        _, ex_e = _executor(False)
        frames = np.random.default_rng(1).standard_normal((4, 9, 32, 24)).astype(np.float32)
        margin = np.ones((4, 2), np.float32)
        with ex_g, ex_e:
            for _ in range(3):
                a = ex_g.run({"frames": frames, "margin": margin})["out"]
                b = ex_e.run({"frames": frames, "margin": margin})["out"]
                np.testing.assert_array_equal(a, b)
            assert ex_e.bucket_for(4).graph is None

    def test_release_is_deterministic(self):
        _, ex = _executor()
        ex.prepare()
        resources = list(ex._resources)
        assert any(type(r).__name__ == "CudaGraph" for r in resources)
        ex.close()
        assert ex.closed and all(r.closed for r in resources) and not ex._resources
        ex.close()  # idempotent
        with pytest.raises(CudaError, match="closed"):
            ex.bucket_for(1)

    def test_mapped_buffers(self):
        net, ex = _executor(mapped=True)
        with ex:
            frames = np.random.default_rng(2).standard_normal((2, 9, 32, 24)).astype(np.float32)
            margin = np.ones((2, 2), np.float32)
            for _ in range(2):
                got = ex.run({"frames": frames, "margin": margin})["out"]
            with torch.inference_mode():
                ref = net(torch.from_numpy(frames).cuda(), torch.from_numpy(margin).cuda()).cpu().numpy()
            np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5)

    def test_dcpose_backend_infer_and_gpu_pose(self):
        from dcpose_trt.data.transforms import decode_heatmaps, make_inputs
        from dcpose_trt.model import build_dcpose
        from dcpose_trt.runtime.backends.torch_backend import TorchBackend
        from dcpose_trt.runtime.tensorrt.torch_cuda import TorchCudaBackend

        torch.manual_seed(0)
        model = build_dcpose(TINY).eval()
        ref_backend = TorchBackend(model, "cuda")
        rng = np.random.default_rng(3)
        window = [rng.integers(0, 256, (120, 160, 3), dtype=np.uint8) for _ in range(3)]
        boxes = np.array([[10, 5, 40, 90, 0.9], [-20, 30, 60, 100, 0.8], [100, -10, 70, 60, 1.0]], np.float32)
        frames, centers, scales = make_inputs(window, boxes, (128, 96))
        margin = np.ones((3, 2), np.float32)
        ref_hm = ref_backend.infer(frames, margin)
        ref_xy, ref_v = decode_heatmaps(ref_hm, centers, scales)
        with TorchCudaBackend(model, buckets=(1, 2)) as backend:  # 3 persons: buckets 2 + 1
            for _ in range(2):  # eager warm-up, then graphs
                hm = backend.infer(frames, margin)
                np.testing.assert_allclose(hm, ref_hm, rtol=1e-4, atol=1e-4)
                xy, v = backend.pose(window, boxes)
                close = np.abs(xy - ref_xy).max(-1) < 1e-2
                # Crops agree within one level, so only near-tied heatmap peaks may move.
                assert close.mean() > 0.9
                np.testing.assert_allclose(v[close], ref_v[close], atol=1e-2)
