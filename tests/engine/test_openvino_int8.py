"""OpenVINO INT8 IR of the bundled model: NNCF quantizes the backbone and the head's offset/mask convs only,
the sampling coordinates stay FP32, and the INT8 head stays close to the FP32 head on real crops."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("openvino")
pytest.importorskip("nncf")

from dcpose_trt.data.synth import SynthConfig, generate  # noqa: E402


@pytest.fixture(scope="module")
def int8_ir(tmp_path_factory):
    """(FP32 IR folder, INT8 IR folder, calibration crops) of the bundled model, calibrated on synthetic train."""
    from dcpose_trt.engine import openvino_ir
    from dcpose_trt.export.int8 import calibration_crops
    from dcpose_trt.export.quantize_config import QuantizeConfig
    from dcpose_trt.model import bundled_model_path, load_model

    root = tmp_path_factory.mktemp("ovint8")
    data = root / "synth"
    generate(SynthConfig(out=data, videos=2, frames=8, seed=0, split_ratio=0.5, workers=1))
    model = load_model(bundled_model_path())
    fp32 = openvino_ir.build_ir(model, root / "fp32")
    int8 = openvino_ir.build_ir(model, root / "int8", "int8", data, None, 24, calib_split="train")
    p = model.preset
    qc = QuantizeConfig(precision="int8", calib=data, calib_samples=24, calib_split="val")
    return fp32, int8, calibration_crops(qc, tuple(p.image_size), tuple(p.mean), tuple(p.std))


def _runtime_convs(folder):
    from dcpose_trt.engine.ov_extension import new_core

    core = new_core()
    compiled = core.compile_model(core.read_model(str(folder / "head.xml")), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    out = {}
    for op in compiled.get_runtime_model().get_ordered_ops():
        rt = op.get_rt_info()
        out[rt["originalLayersNames"].astype(str)] = (rt["layerType"].astype(str), rt["runtimePrecision"].astype(str),
                                                     rt["outputPrecisions"].astype(str))
    return out


def test_only_offset_and_mask_convs_run_int8(int8_ir):
    _, int8, _ = int8_ir
    layers = _runtime_convs(int8)
    convs = {name: v for name, v in layers.items() if v[0] == "Convolution"}
    quantized = {name for name, (_, prec, _) in convs.items() if prec in ("u8", "i8")}
    offset_mask = {name for name in convs if ".offset/" in name or ".mask/" in name}
    assert len(offset_mask) == 10  # five dilations × (offset conv, mask conv)
    assert quantized == offset_mask
    # The coordinates: the offset convs hand FP32 to the grid arithmetic, and the gather runs in FP32 (our
    # DcnGemm op where it builds, else GridSample).
    assert all(convs[name][2] == "f32" for name in offset_mask)
    gathers = [v for name, v in layers.items() if v[0] == "GridSample" or name.startswith("DcnGemm")]
    assert len(gathers) == 5 and all(prec == "f32" for _, prec, _ in gathers)


def test_fusion_convs_run_bf16_where_the_cpu_has_it(int8_ir):
    """On a BF16 CPU the INT8 head's PRF/PTM/combine convs run in BF16 under the FP32 hint (the graph's own
    casts), elsewhere in FP32; the coordinate arithmetic and the gather run in FP32 either way."""
    from dcpose_trt.engine.openvino_ir import int8_head_features

    _, int8, _ = int8_ir
    layers = _runtime_convs(int8)
    fusion = [prec for name, (kind, prec, _) in layers.items()
              if kind == "Convolution" and ("temporal_fuse" in name or "offset_mask_combine_conv" in name)]
    assert len(fusion) > 20
    want = "bf16" if int8_head_features() == "bf16" else "f32"
    assert set(fusion) == {want}, fusion
    coords = [v for name, v in layers.items() if name.startswith("DcnGemm") or ".branches." in name
              and v[0] in ("Add", "Subtract", "Transpose", "Eltwise", "GridSample")]
    assert len(coords) >= 5 and all(prec == "f32" for _, prec, _ in coords), coords


def test_int8_head_stays_close_to_fp32(int8_ir):
    """On real crops (synthetic val), the INT8 IR's refined heatmaps peak where the FP32 IR's do."""
    from dcpose_trt.engine.ov_extension import new_core

    fp32, int8, crops = int8_ir
    core = new_core()
    peaks = []
    for folder in (fp32, int8):
        backbone = core.compile_model(str(folder / "backbone.xml"), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
        head = core.compile_model(str(folder / "head.xml"), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
        hm = backbone(crops.reshape(-1, 3, *crops.shape[2:]))[0]
        hm = hm.reshape(len(crops), 3, *hm.shape[1:])
        out = head([np.ascontiguousarray(hm[:, t]) for t in range(3)] + [np.ones((len(crops), 2), np.float32)])[0]
        peaks.append(out.reshape(*out.shape[:2], -1).argmax(-1))
    w = crops.shape[-1] // 4
    (a, b) = peaks
    dist = np.hypot(a // w - b // w, a % w - b % w)
    assert np.mean(dist <= 1.5) >= 0.9, np.mean(dist <= 1.5)


def test_head_features_override_and_cache_key(monkeypatch, tmp_path):
    """``$DCPOSE_TRT_INT8_HEAD_FEATURES`` picks the fusion convs' precision, is part of the INT8 IR's cache
    key (an IR of the other form is not reused), and a typo is a clear error."""
    from dcpose_trt.engine import openvino_ir
    from dcpose_trt.errors import InputError

    ckpt = tmp_path / "m.pth"
    ckpt.write_bytes(b"weights")
    names = {}
    for form in ("fp32", "bf16"):
        monkeypatch.setenv(openvino_ir.HEAD_FEATURES_ENV, form)
        assert openvino_ir.int8_head_features() == form
        names[form], key = openvino_ir.ir_cache_key(ckpt, "2026.4.1", calib=tmp_path)
        assert key["head_features"] == form
    assert names["fp32"] != names["bf16"]
    monkeypatch.setenv(openvino_ir.HEAD_FEATURES_ENV, "fp16")
    with pytest.raises(InputError, match="fp32 or bf16"):
        openvino_ir.int8_head_features()
