"""Ahead-of-time PTX/cubin for several GPU archs, built on a CPU-only machine, and its cache."""

from __future__ import annotations

import json
import re
import time

import pytest

from dcpose_trt.cli import main
from dcpose_trt.errors import PluginError
from dcpose_trt.plugins.deform_conv import PLUGIN_ID, SCALAR_ARGS
from dcpose_trt.plugins.deform_conv.aot import KERNEL_NAME, compile_kernel, parse_archs, parse_config
from dcpose_trt.plugins.deform_conv.aot_build import build_ptx, find_kernel

pytest.importorskip("triton")

ARCHS = [72, 80, 90, 120]  # Volta (Triton's CUDA 12.9 ptxas) ... Blackwell (ptxas-blackwell)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("ptx_cache")


@pytest.fixture(scope="module")
def first_build(tmp_path_factory, cache):
    """One cold build shared by the tests below (compiling is the slow part)."""
    mp = pytest.MonkeyPatch()
    mp.setenv("DCPOSE_TRT_CACHE", str(cache))
    out = tmp_path_factory.mktemp("aot1")
    t0 = time.perf_counter()
    manifest = build_ptx(ARCHS, out, dtypes=["fp32"], tactics=[1], jobs=2, progress=False)
    yield out, manifest, time.perf_counter() - t0
    mp.undo()


def _entry_params(ptx: str) -> list[str]:
    m = re.search(r"\.entry\s+(\w+)\s*\(([^)]*)\)", ptx, re.DOTALL)
    assert m is not None
    return re.findall(r"\.param\s+\.(\w+)", m.group(2))


def test_ptx_for_each_arch(first_build):
    out, manifest, _ = first_build
    assert len(manifest["kernels"]) == len(ARCHS)
    for arch in ARCHS:
        e = find_kernel(manifest, arch, "fp32", "dcpose", 1)
        ptx = (out / e["ptx"]).read_text()
        # Portable target (no sm_90a-style arch-specific suffix) and the lowest PTX ISA for the arch.
        assert re.search(rf"^\.target sm_{arch}$", ptx, re.MULTILINE), ptx[:400]
        assert re.search(rf"^\.version {e['ptx_version']}$", ptx, re.MULTILINE)
        assert re.search(rf"^\.visible \.entry {KERNEL_NAME}\(", ptx, re.MULTILINE)
        assert e["kernel_name"] == KERNEL_NAME and e["target"] == f"sm_{arch}"
        # ABI = TensorRT's AOT launch: 5 input pointers, 15 int32 extra args, the output pointer; nothing else
        # (tests/plugins/test_aot_launch_abi.py derives the list from the aot_impl declaration).
        assert _entry_params(ptx) == ["u64"] * 5 + ["u32"] * len(SCALAR_ARGS) + ["u64"]
        assert e["num_params"] == 21 and e["global_scratch_size"] == 0 and e["profile_scratch_size"] == 0
        assert e["num_warps"] == 4 and e["shared_mem"] >= 0
        assert e["constexprs"] == {"KH": 3, "KW": 3, "BLOCK_CO": 32, "BLOCK_P": 128, "HAS_MASK": True,
                                   "HAS_BIAS": True, "SINGLE_CH": True}  # fmt: skip
        # ptxas assembled the rewritten PTX: it is valid for the arch.
        assert e["cubin"] and (out / e["cubin"]).read_bytes()[:4] == b"\x7fELF"
        assert e["ptxas"].startswith("ptxas")
        # DCPose's kernel must not spill (a spill would mean local-memory traffic in the inner loop).
        assert 0 < e["registers"] <= 255 and e["spill_bytes"] == 0


def test_manifest_on_disk(first_build):
    out, manifest, _ = first_build
    on_disk = json.loads((out / "manifest.json").read_text())
    assert on_disk["plugin"] == PLUGIN_ID
    assert on_disk["arguments"]["order"][:5] == ["x_ptr", "weight_ptr", "offset_ptr", "bias_ptr", "mask_ptr"]
    assert on_disk["arguments"]["scalars_int32"] == list(SCALAR_ARGS)
    assert on_disk["launch"]["grid"]["x"] == "cdiv(H_out * W_out, BLOCK_P)"
    assert on_disk["configs"]["dcpose"]["cout_per_group"] == 17
    assert len(on_disk["kernel_source_sha256"]) == 64 and on_disk["triton"]
    assert not any(e["cached"] for e in manifest["kernels"])


def test_second_build_hits_cache(first_build, tmp_path, monkeypatch, cache):
    out1, manifest1, cold_s = first_build
    monkeypatch.setenv("DCPOSE_TRT_CACHE", str(cache))
    t0 = time.perf_counter()
    manifest2 = build_ptx(ARCHS, tmp_path, dtypes=["fp32"], tactics=[1], progress=False)
    warm_s = time.perf_counter() - t0
    assert all(e["cached"] for e in manifest2["kernels"])
    assert warm_s < cold_s / 3
    for e1, e2 in zip(manifest1["kernels"], manifest2["kernels"], strict=True):
        assert (tmp_path / e2["ptx"]).read_text() == (out1 / e1["ptx"]).read_text()


def test_cli_build_fp16(tmp_path, monkeypatch, capsys):
    """``dcpose-trt plugin build`` with one job, from a process that runs kernels in Triton's
    interpreter (the CPU test setup): the compile must still produce real PTX."""
    monkeypatch.setenv("DCPOSE_TRT_CACHE", str(tmp_path / "cache"))
    rc = main(["plugin", "build", "--arch", "sm_86", "--dtypes", "fp16", "--tactics", "2", "--jobs", "1",
               "--no-progress", "--out", str(tmp_path / "out")])  # fmt: skip
    assert rc == 0
    assert "wrote 1 kernel(s) (0 from cache, 1 with cubin)" in capsys.readouterr().out
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    (e,) = manifest["kernels"]
    assert (e["arch"], e["dtype"], e["tactic"], e["num_warps"]) == (86, "fp16", 2, 2)
    ptx = (tmp_path / "out" / e["ptx"]).read_text()
    assert ".target sm_86" in ptx and "ld.global" in ptx and "cvt.f32.f16" in ptx


def test_compile_kernel_uses_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DCPOSE_TRT_CACHE", str(tmp_path))
    a = compile_kernel(75, "fp32", "3x3:17", tactic=2)
    b = compile_kernel(75, "fp32", "3x3:17", tactic=2)
    assert not a.cached and b.cached and a.ptx == b.ptx and a.key == b.key


def test_bad_arch_is_one_line_error(tmp_path, capsys):
    with pytest.raises(PluginError, match=r"unsupported arch '81': expected compute capabilities from 72,75"):
        parse_archs("80,81")
    assert main(["plugin", "build", "--arch", "80,sm_35", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "unsupported arch 'sm_35'" in err


def test_config_specs():
    assert parse_config("dcpose").cout_per_group == 17
    cfg = parse_config("3x3:64:nobias")
    assert (cfg.kh, cfg.kw, cfg.cout_per_group, cfg.has_mask, cfg.has_bias) == (3, 3, 64, True, False)
    assert not cfg.single_channel_groups and parse_config("3x3:17:cpg1").single_channel_groups
    with pytest.raises(PluginError, match="unknown DCN config 'huge'"):
        parse_config("huge")
