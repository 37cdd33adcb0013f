"""DCPose model: official key inventory, wiring, checkpoints, DCN references."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torchvision.ops import deform_conv2d

from dcpose_trt.errors import CheckpointError
from dcpose_trt.model import (
    build_dcpose,
    deform_conv2d_gridsample,
    load_checkpoint,
    read_checkpoint_meta,
    save_checkpoint,
    use_deform_conv,
)
from dcpose_trt.model.dcpose import DILATIONS


@pytest.fixture(scope="module")
def w48():
    return build_dcpose("w48-384x288")


@pytest.fixture(scope="module")
def tiny(tiny_model_perturbed):
    return tiny_model_perturbed


def test_official_key_inventory(w48, shared_data):
    rows = [line.rstrip("\n").split("\t") for line in open(shared_data / "dcpose_official_keys.tsv")]
    official = {name: shape for name, shape, _ in rows}
    sd = w48.state_dict()
    assert len(official) == 2215
    assert list(sd) == [r[0] for r in rows]  # same names in the same (registration) order
    for name, t in sd.items():
        assert str(tuple(t.shape)) == official[name], name
    dtypes = {name: dt for name, _, dt in rows}
    assert all(str(t.dtype) == dtypes[k] for k, t in sd.items())


def test_parameter_counts(w48):
    def count(prefix):
        return sum(p.numel() for k, p in w48.named_parameters() if k.startswith(prefix))

    assert count("") == 65_198_798
    assert count("rough_pose_estimation_net") == 63_595_745
    assert count("diff_temporal_fuse") == 99_670
    assert count("support_temporal_fuse") == 43_249
    assert count("offset_mask_combine_conv") == 125_124
    assert count("offsets_list") == 881_280
    assert count("masks_list") == 440_640
    assert count("modulated_deform_conv_list") == 13_090


@pytest.mark.parametrize("preset,hw", [("tiny-128x96", (128, 96)), ("w32-256x192", (256, 192))])
def test_forward_shapes(preset, hw):
    m = build_dcpose(preset)
    x = torch.randn(2, 9, *hw)
    with torch.no_grad():
        y = m(x, torch.ones(2, 2))
    assert y.shape == (2, 17, hw[0] // 4, hw[1] // 4)
    assert torch.isfinite(y).all()


def test_forward_equals_backbone_plus_head(tiny):
    x = torch.randn(3, 9, 128, 96)
    margin = torch.tensor([[1.0, 1.0], [1.0, 2.0], [3.0, 1.0]])
    with torch.no_grad():
        full = tiny(x, margin)
        cur, prev, nxt = (tiny.backbone(x[:, 3 * i : 3 * i + 3]) for i in range(3))
        split = tiny.head(cur, prev, nxt, margin)
    # fp32, the same convs at another batch size (kernels may block the sums differently): ~100 eps (1.2e-7).
    torch.testing.assert_close(full, split, rtol=1e-5, atol=1e-5)


def test_frame_order_and_margin_matter(tiny):
    """[current, previous, next] order and the margin weights change the output (wiring is live)."""
    x = torch.randn(1, 9, 128, 96)
    with torch.no_grad():
        ref = tiny(x, torch.ones(1, 2))
        swapped = tiny(torch.cat([x[:, 3:6], x[:, 0:3], x[:, 6:9]], 1), torch.ones(1, 2))
        margin = tiny(x, torch.tensor([[1.0, 3.0]]))
    assert (ref - swapped).abs().max() > 1e-4
    assert (ref - margin).abs().max() > 1e-6


def test_head_matches_official_per_joint_loops(tiny):
    """The stack/flatten interleaving equals the official per-joint list construction."""
    b, j = 2, 17
    cur, prev, nxt = (torch.randn(b, j, 32, 24) for _ in range(3))
    margin = torch.tensor([[1.0, 2.0], [2.0, 1.0]])
    m = margin / margin.sum(1, keepdim=True)
    wp, wn = m[:, 1].view(b, 1, 1, 1), m[:, 0].view(b, 1, 1, 1)
    a, bd = cur - prev, cur - nxt
    prf, ptm = [], []
    for k in range(j):
        prf += [a[:, k : k + 1], a[:, k : k + 1] * wp, bd[:, k : k + 1], bd[:, k : k + 1] * wn]
        ptm += [cur[:, k : k + 1], prev[:, k : k + 1] * wp, nxt[:, k : k + 1] * wn]
    with torch.no_grad():
        dif = tiny.diff_temporal_fuse(torch.cat(prf, 1))
        sup = tiny.support_temporal_fuse(torch.cat(ptm, 1))
        feat = tiny.offset_mask_combine_conv(torch.cat([dif, sup], 1))
        expected = sum(
            deform_conv2d(sup, tiny.offsets_list[i](feat), tiny.modulated_deform_conv_list[i].deform_conv.weight,
                          tiny.modulated_deform_conv_list[i].deform_conv.bias, padding=d, dilation=d,
                          mask=tiny.masks_list[i](feat)) / 5
            for i, d in enumerate(DILATIONS)
        )
        got = tiny.head(cur, prev, nxt, margin)
    # The same ops on the same values, only the concatenation order differs: a few eps (1.2e-7) at most.
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)


def test_official_container_roundtrip(tiny, tmp_path):
    path = tmp_path / "epoch_3_state.pth"
    save_checkpoint(tiny, path, epoch=3, extra={"preset": "tiny-128x96"})
    obj = torch.load(path, weights_only=True)
    assert set(obj) >= {"begin_epoch", "state_dict", "optimizer", "tensorboard_global_steps"}
    other = build_dcpose("tiny-128x96")
    assert load_checkpoint(other, path) == "dcpose"
    for k, v in tiny.state_dict().items():
        assert torch.equal(v, other.state_dict()[k]), k
    assert read_checkpoint_meta(path)["preset"] == "tiny-128x96"


def test_module_prefix_and_raw_state_dict(tiny, tmp_path):
    path = tmp_path / "raw.pth"
    torch.save({"module." + k: v for k, v in tiny.state_dict().items()}, path)
    other = build_dcpose("tiny-128x96")
    load_checkpoint(other, path)
    assert torch.equal(other.offsets_list[2][0].weight, tiny.offsets_list[2][0].weight)


def test_hrnet_and_mmpose_checkpoints_load_backbone(tiny, tmp_path):
    bb = {k[len("rough_pose_estimation_net."):]: v for k, v in tiny.state_dict().items()
          if k.startswith("rough_pose_estimation_net.")}
    hrnet = tmp_path / "pose_hrnet_tiny.pth"
    torch.save({k: v for k, v in bb.items() if not k.endswith("num_batches_tracked")}, hrnet)
    m = build_dcpose("tiny-128x96")
    assert load_checkpoint(m, hrnet) == "hrnet"
    assert torch.equal(m.rough_pose_estimation_net.conv1.weight, tiny.rough_pose_estimation_net.conv1.weight)

    mm = {("keypoint_head." + k if k.startswith("final_layer") else "backbone." + k): v for k, v in bb.items()}
    mmpath = tmp_path / "mmpose.pth"
    torch.save({"state_dict": mm, "meta": {}}, mmpath)
    m2 = build_dcpose("tiny-128x96")
    assert load_checkpoint(m2, mmpath) == "mmpose"
    assert torch.equal(m2.rough_pose_estimation_net.final_layer.bias, tiny.rough_pose_estimation_net.final_layer.bias)


def test_checkpoint_errors(tiny, tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tiny, tmp_path / "nope.pth")
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match="not a PyTorch checkpoint"):
        load_checkpoint(tiny, bad)
    good = tmp_path / "good.pth"
    save_checkpoint(tiny, good)
    trunc = tmp_path / "trunc.pth"
    trunc.write_bytes(good.read_bytes()[:5000])
    with pytest.raises(CheckpointError):
        load_checkpoint(tiny, trunc)
    with pytest.raises(CheckpointError, match=r"mis-shaped keys: rough_pose_estimation_net\.conv1\.weight"):
        load_checkpoint(build_dcpose("w32-256x192"), good)
    notsd = tmp_path / "list.pth"
    torch.save([1, 2, 3], notsd)
    with pytest.raises(CheckpointError, match="state dict"):
        load_checkpoint(tiny, notsd)


def test_missing_and_unexpected_keys_listed(tiny, tmp_path):
    sd = dict(tiny.state_dict())
    sd.pop("offsets_list.0.0.weight")
    sd["extra.weight"] = torch.zeros(1)
    p = tmp_path / "m.pth"
    torch.save({"state_dict": sd}, p)
    with pytest.raises(CheckpointError, match=r"1 missing keys: offsets_list\.0\.0\.weight.*1 unexpected keys: extra"):
        load_checkpoint(build_dcpose("tiny-128x96"), p)


# ---- deformable conv references -----------------------------------------------------------------


def _dcn_inputs(b=2, c=17, h=24, w=18, d=3, groups=17, seed=0, offset_std=8.0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(b, c, h, w, generator=g, dtype=torch.float64)
    off = torch.randn(b, 2 * groups * 9, h, w, generator=g, dtype=torch.float64) * offset_std
    mask = torch.randn(b, groups * 9, h, w, generator=g, dtype=torch.float64)  # raw, negative too
    weight = torch.randn(c, c, 3, 3, generator=g, dtype=torch.float64)
    bias = torch.randn(c, generator=g, dtype=torch.float64)
    return x, off, weight, bias, mask


@pytest.mark.parametrize("d", DILATIONS)
def test_gridsample_reference_equals_torchvision(d):
    x, off, weight, bias, mask = _dcn_inputs(d=d, seed=d)
    ref = deform_conv2d(x, off, weight, bias, padding=d, dilation=d, mask=mask)
    got = deform_conv2d_gridsample(x, off, weight, bias, padding=d, dilation=d, mask=mask)
    assert torch.allclose(got, ref, rtol=1e-5, atol=1e-5), (got - ref).abs().max()
    # float32 too, the dtype the model runs in: 153 products of N(0, 1) terms (output ~12) summed in another
    # order, worst case 153 * eps32 * sum|terms| ~ 2e-4 absolute; typical ~sqrt(153) * eps * 12 ~ 2e-5.
    got32 = deform_conv2d_gridsample(x.float(), off.float(), weight.float(), bias.float(), padding=d,
                                     dilation=d, mask=mask.float())
    assert torch.allclose(got32.double(), ref, rtol=1e-4, atol=1e-4)


def test_gridsample_general_shapes():
    """Stride, asymmetric kernel/dilation, weight groups and offset groups != channels."""
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 6, 9, 7, generator=g, dtype=torch.float64)
    weight = torch.randn(4, 3, 3, 2, generator=g, dtype=torch.float64)  # groups = 2
    off = torch.randn(2, 2 * 3 * 6, 4, 8, generator=g, dtype=torch.float64) * 3  # 3 offset groups
    mask = torch.randn(2, 3 * 6, 4, 8, generator=g, dtype=torch.float64)
    kw = dict(stride=(2, 1), padding=(1, 1), dilation=(2, 1))
    ref = deform_conv2d(x, off, weight, None, mask=mask, **kw)
    got = deform_conv2d_gridsample(x, off, weight, None, mask=mask, **kw)
    assert torch.allclose(got, ref, rtol=1e-5, atol=1e-5)
    ref = deform_conv2d(x, off, weight, None, **kw)
    assert torch.allclose(deform_conv2d_gridsample(x, off, weight, None, **kw), ref, rtol=1e-5, atol=1e-5)


def test_dy_dx_swap_is_detected():
    x, off, weight, bias, mask = _dcn_inputs(seed=5)
    ref = deform_conv2d(x, off, weight, bias, padding=3, dilation=3, mask=mask)
    swapped = off.reshape(2, 17 * 9, 2, 24, 18).flip(2).reshape_as(off)
    got = deform_conv2d_gridsample(x, swapped, weight, bias, padding=3, dilation=3, mask=mask)
    assert not torch.allclose(got, ref, rtol=1e-5, atol=1e-5)
    assert (got - ref).abs().max() > 1.0


def test_zero_offsets_unit_mask_is_dilated_conv():
    x, off, weight, bias, mask = _dcn_inputs(seed=2)
    off0 = torch.zeros(2, 306, 24, 18, dtype=torch.float64)
    got = deform_conv2d_gridsample(x, off0, weight, bias, padding=6, dilation=6, mask=torch.ones(2, 153, 24, 18,
                                   dtype=torch.float64))
    assert torch.allclose(got, F.conv2d(x, weight, bias, padding=6, dilation=6), atol=1e-10)


def test_deform_arg_errors():
    x, off, weight, bias, mask = _dcn_inputs()
    with pytest.raises(ValueError, match="the shape of the offset"):
        deform_conv2d_gridsample(x, off[:, :, :5], weight, bias, padding=3, dilation=3, mask=mask)
    with pytest.raises(ValueError, match="the shape of the mask"):
        deform_conv2d_gridsample(x, off, weight, bias, padding=3, dilation=3, mask=mask[:, :10])


def test_model_with_gridsample_equals_torchvision(tiny):
    x = torch.randn(2, 9, 128, 96)
    with torch.no_grad():
        ref = tiny(x, torch.ones(2, 2))
        with use_deform_conv(tiny, deform_conv2d_gridsample):
            got = tiny(x, torch.ones(2, 2))
        again = tiny(x, torch.ones(2, 2))
    # DCN sums (17 ch x 9 taps) in another order per layer, then the rest of the head: ~100 eps relative.
    torch.testing.assert_close(got, ref, rtol=1e-4, atol=1e-5)
    assert torch.equal(again, ref)  # the context manager restored torchvision


def test_forward_with_rough_returns_the_backbone_heatmaps(tiny):
    g = torch.Generator().manual_seed(3)
    frames = torch.randn(2, 9, 128, 96, generator=g)
    margin = torch.tensor([[1.0, 1.0], [2.0, 1.0]])
    with torch.no_grad():
        refined, rough = tiny.forward_with_rough(frames, margin)
        assert torch.equal(refined, tiny(frames, margin))
        rough_ref = torch.cat([tiny.backbone(frames[:, i : i + 3]) for i in (0, 3, 6)])
    assert rough.shape == (6, 17, 32, 24)
    torch.testing.assert_close(rough, rough_ref, rtol=1e-5, atol=1e-6)
