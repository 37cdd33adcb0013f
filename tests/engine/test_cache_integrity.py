"""[trust] item 6: cache keys hold our version, torch's and the converter's; a cached artifact is checked
against its recorded size and sha256 before reuse, and rebuilt with a warning when it does not match.

The exporter is the real registration API (``register_exporter``) with a step that writes a small file; the
OpenVINO converter (``build_ir``, a minute of tracing) is replaced by one that writes a small IR pair, as
the decision under test is the cache's, not the conversion's.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from dcpose_trt.engine import model_cache
from dcpose_trt.engine.model_cache import ExportStep, cached_artifact, register_exporter


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("DCPOSE_TRT_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture
def ckpt(tmp_path) -> Path:
    p = tmp_path / "m.pth"
    p.write_bytes(b"checkpoint bytes")
    return p


def _step(made: list) -> ExportStep:
    def make(checkpoint, preset, entry, step, progress):
        made.append(entry)
        (entry / step.artifact).write_bytes(b"exported model v1")
        return entry / step.artifact

    return ExportStep("trust-test", form="gridsample", precision="fp32", artifact="model.onnx", make=make)


@pytest.fixture
def step(monkeypatch):
    made: list = []
    monkeypatch.setattr(model_cache, "_STEPS", dict(model_cache._STEPS))
    register_exporter(_step(made))
    return made


@pytest.mark.parametrize("damage", ["same-size", "truncated", "deleted-manifest"])
def test_damaged_cached_export_is_rebuilt_with_a_warning(cache, ckpt, step, damage, caplog):
    art = cached_artifact(ckpt, "trust-test", progress=False)
    assert len(step) == 1 and cached_artifact(ckpt, "trust-test", progress=False) == art and len(step) == 1
    if damage == "same-size":
        art.write_bytes(b"exported model v2")  # same length, other bytes (another tool, an edit)
    elif damage == "truncated":
        art.write_bytes(b"exported")
    else:
        (art.parent / "manifest.json").unlink()
    with caplog.at_level(logging.WARNING):
        again = cached_artifact(ckpt, "trust-test", progress=False)
    assert len(step) == 2, "the damaged entry was reused"
    assert again.read_bytes() == b"exported model v1"
    assert any("rebuilding" in r.getMessage() for r in caplog.records)


def test_model_cache_key_holds_versions(ckpt):
    key = model_cache.cache_key(ckpt, _step([]), None)
    assert {"dcpose-trt", "torch", "onnx"} <= set(key)


def test_openvino_ir_key_holds_our_torch_and_converter_versions(cache, ckpt, monkeypatch, caplog):
    pytest.importorskip("openvino")
    from dcpose_trt.engine import openvino_ir

    built: list[Path] = []

    def build_ir(model, folder, precision="fp32", *a, key=None, **k):  # writes a small IR pair
        built.append(folder)
        tmp = folder.with_name(f".{folder.name}.tmp")
        tmp.mkdir(parents=True)
        for part in ("backbone", "head"):
            (tmp / f"{part}.xml").write_text(f"<{part}/>")
            (tmp / f"{part}.bin").write_bytes(b"w" * 8)
        from dcpose_trt.engine import cache_manifest

        cache_manifest.write(tmp, key)
        tmp.replace(folder)
        return folder

    monkeypatch.setattr(openvino_ir, "build_ir", build_ir)
    monkeypatch.setattr("dcpose_trt.model.load_model", lambda *a, **k: None)
    ov = openvino_ir._ov()
    # The IR an older dcpose-trt left under the old key (checkpoint hash + OpenVINO version only).
    stale = cache / "openvino" / f"{openvino_ir.file_sha256(ckpt)[:16]}-ov{ov.__version__.split('-')[0]}"
    stale.mkdir(parents=True)
    for part in ("backbone", "head"):
        (stale / f"{part}.xml").write_text("<old/>")
    folder, _ = openvino_ir.ir_for_checkpoint(ckpt, cache_dir=cache / "openvino")
    assert folder != stale and built == [folder], "the IR of the old code was reused"

    import dcpose_trt

    monkeypatch.setattr(dcpose_trt, "__version__", "999.0")
    monkeypatch.setattr(model_cache, "_version", lambda d: "999.0" if d == "dcpose-trt" else "x")
    folder2, _ = openvino_ir.ir_for_checkpoint(ckpt, cache_dir=cache / "openvino")
    assert folder2 != folder and built[-1] == folder2  # an upgrade converts again

    (folder2 / "backbone.bin").write_bytes(b"v" * 8)  # damaged in the cache
    with caplog.at_level(logging.WARNING):
        folder3, _ = openvino_ir.ir_for_checkpoint(ckpt, cache_dir=cache / "openvino")
    assert folder3 == folder2 and len(built) == 3 and (folder3 / "backbone.bin").read_bytes() == b"w" * 8
    assert any("converting again" in r.getMessage() for r in caplog.records)
