"""The fused Triton DCN kernel against torchvision, the GridSample reference and a float64 loop oracle.

Without a GPU the kernel runs in Triton's interpreter (``conftest.py``); the interpreter pays per
operation, so shapes are small but hit every index path: out-of-image samples, negative masks, stride,
dilation, conv groups, offset groups spanning conv groups, Cout tiling, fp16 I/O.
"""

from __future__ import annotations

import math

import pytest
import torch

from dcpose_trt.errors import PluginError
from dcpose_trt.model.deform import deform_conv2d_gridsample, deform_conv2d_torchvision
from dcpose_trt.plugins.deform_conv import MAX_BLOCK_CO, deform_conv2d, launch_geometry

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
TOL = {torch.float32: 1e-4, torch.float16: 1e-2}  # max |err| / max |ref|


def rel_err(got: torch.Tensor, ref: torch.Tensor) -> float:
    ref = ref.double()
    return ((got.double() - ref).abs().max() / ref.abs().max().clamp_min(1e-12)).item()


def make_case(b, c_in, c_out, h, w, kh, kw, stride, pad, dil, groups, off_groups, *, seed, off_std=6.0,
              mask=True, bias=True, dtype=torch.float32):  # fmt: skip
    """Random DCN inputs; offsets large enough that many samples fall outside the image."""
    g = torch.Generator().manual_seed(seed)
    ho = (h + 2 * pad[0] - dil[0] * (kh - 1) - 1) // stride[0] + 1
    wo = (w + 2 * pad[1] - dil[1] * (kw - 1) - 1) // stride[1] + 1
    k = kh * kw
    args = {
        "input": torch.randn(b, c_in, h, w, generator=g),
        "offset": torch.randn(b, 2 * off_groups * k, ho, wo, generator=g) * off_std,
        "weight": torch.randn(c_out, c_in // groups, kh, kw, generator=g),
        "bias": torch.randn(c_out, generator=g) if bias else None,
        "mask": torch.randn(b, off_groups * k, ho, wo, generator=g) if mask else None,  # raw, negative too
    }
    args = {n: (t.to(dtype=dtype, device=DEVICE) if t is not None else None) for n, t in args.items()}
    return args, {"stride": stride, "padding": pad, "dilation": dil}


def as_float(args):
    return {n: (t.float() if t is not None else None) for n, t in args.items()}


def out_of_bounds_fraction(offset, h, w, kh, kw, stride, pad, dil) -> float:
    """Fraction of sample positions that the DCN boundary rule zeroes (y <= -1, y >= H, ...)."""
    b, c2, ho, wo = offset.shape
    k = kh * kw
    off = offset.float().cpu().view(b, c2 // (2 * k), k, 2, ho, wo)
    i = torch.arange(kh).repeat_interleave(kw).view(k, 1, 1) * dil[0]
    j = torch.arange(kw).repeat(kh).view(k, 1, 1) * dil[1]
    y = torch.arange(ho).view(1, ho, 1) * stride[0] - pad[0] + i + off[:, :, :, 0]
    x = torch.arange(wo).view(1, 1, wo) * stride[1] - pad[1] + j + off[:, :, :, 1]
    out = (y <= -1) | (y >= h) | (x <= -1) | (x >= w)
    return out.float().mean().item()


# ---------------------------------------------------------------------------------------------------
# float64 loop oracle (after torchvision's TestDeformConv.expected_fn)
# ---------------------------------------------------------------------------------------------------


def _bilinear(img: list, y: float, x: float) -> float:
    h, w = len(img), len(img[0])
    if y <= -1 or y >= h or x <= -1 or x >= w:
        return 0.0
    y0, x0 = math.floor(y), math.floor(x)
    ly, lx = y - y0, x - x0

    def px(yy, xx):
        return img[yy][xx] if 0 <= yy < h and 0 <= xx < w else 0.0

    return ((1 - ly) * (1 - lx) * px(y0, x0) + (1 - ly) * lx * px(y0, x0 + 1)
            + ly * (1 - lx) * px(y0 + 1, x0) + ly * lx * px(y0 + 1, x0 + 1))  # fmt: skip


def oracle(input, offset, weight, bias, stride, padding, dilation, mask):
    x, off, wt = input.double().tolist(), offset.double().tolist(), weight.double().tolist()
    m = mask.double().tolist() if mask is not None else None
    b_n, c_in = input.shape[:2]
    c_out, cin_g, kh, kw = weight.shape
    ho, wo = offset.shape[2:]
    k = kh * kw
    n_og = offset.shape[1] // (2 * k)
    cpg, cout_g = c_in // n_og, c_out // (c_in // cin_g)
    out = torch.zeros(b_n, c_out, ho, wo, dtype=torch.float64)
    for b in range(b_n):
        for co in range(c_out):
            gi = co // cout_g
            for oh in range(ho):
                for ow in range(wo):
                    acc = float(bias[co]) if bias is not None else 0.0
                    for ci in range(cin_g):
                        c = gi * cin_g + ci
                        g = c // cpg
                        for i in range(kh):
                            for j in range(kw):
                                t = g * k + i * kw + j
                                y = oh * stride[0] - padding[0] + i * dilation[0] + off[b][2 * t][oh][ow]
                                xx = ow * stride[1] - padding[1] + j * dilation[1] + off[b][2 * t + 1][oh][ow]
                                v = _bilinear(x[b][c], y, xx)
                                if m is not None:
                                    v *= m[b][t][oh][ow]
                                acc += wt[co][ci][i][j] * v
                    out[b, co, oh, ow] = acc
    return out


AWKWARD = dict(b=2, c_in=6, c_out=4, h=5, w=4, kh=3, kw=2, stride=(2, 1), pad=(1, 0), dil=(2, 1),
               groups=2, off_groups=3)  # fmt: skip


class TestOracle:
    def test_torchvision_matches_oracle(self):
        args, conv = make_case(**AWKWARD, seed=0, off_std=2.0, dtype=torch.float64)
        ref = oracle(**args, **conv)
        tv = deform_conv2d_torchvision(**{n: (t.cpu() if t is not None else None) for n, t in args.items()}, **conv)
        assert (tv - ref).abs().max().item() < 1e-10  # float64: 18-term sums of O(1) values, eps64 = 2.2e-16

    @pytest.mark.parametrize("with_mask", [True, False])
    def test_kernel_matches_oracle(self, with_mask):
        """Conv groups 2 × offset groups 3 (an offset group straddles two conv groups), kernel 3×2,
        stride (2, 1), padding (1, 0), dilation (2, 1)."""
        args, conv = make_case(**AWKWARD, seed=1, off_std=2.0, mask=with_mask)
        ref = oracle(**{n: (t.cpu() if t is not None else None) for n, t in args.items()}, **conv)
        # fp32 kernel vs float64 oracle, 18-term sums: <= 18 * eps32 (1.2e-7) of the sum of |terms| ~ 2e-6.
        assert rel_err(deform_conv2d(**args, **conv).cpu(), ref) < 1e-5


# ---------------------------------------------------------------------------------------------------
# Kernel vs torchvision vs GridSample
# ---------------------------------------------------------------------------------------------------

CASES = {
    # DCPose's PCN layer: 17 -> 17, 3x3, 17 offset groups, padding = dilation; tiny heatmaps.
    "dcpose_d3_b1": (dict(b=1, c_in=17, c_out=17, h=12, w=10, kh=3, kw=3, stride=(1, 1), pad=(3, 3), dil=(3, 3),
                          groups=1, off_groups=17), torch.float32),
    "dcpose_d15_b2": (dict(b=2, c_in=17, c_out=17, h=11, w=9, kh=3, kw=3, stride=(1, 1), pad=(15, 15),
                           dil=(15, 15), groups=1, off_groups=17), torch.float32),
    "dcpose_d9_fp16": (dict(b=1, c_in=17, c_out=17, h=10, w=12, kh=3, kw=3, stride=(1, 1), pad=(9, 9),
                            dil=(9, 9), groups=1, off_groups=17), torch.float16),
    # Batch 8, several channels per offset group (coordinates reused across channels).
    "batch8_cpg2": (dict(b=8, c_in=4, c_out=5, h=7, w=6, kh=3, kw=3, stride=(1, 1), pad=(1, 1), dil=(1, 1),
                         groups=1, off_groups=2), torch.float32),
    "batch8_cpg2_fp16": (dict(b=8, c_in=4, c_out=5, h=7, w=6, kh=3, kw=3, stride=(1, 1), pad=(1, 1),
                              dil=(1, 1), groups=1, off_groups=2), torch.float16),
    # Stride 2, rectangular kernel, one offset group spanning two conv groups.
    "stride2_groups2": (dict(b=3, c_in=4, c_out=6, h=9, w=7, kh=2, kw=3, stride=(2, 2), pad=(1, 0),
                             dil=(1, 2), groups=2, off_groups=1), torch.float32),
    # More output channels than one register tile: Cout is tiled over the grid.
    "cout_tiled": (dict(b=1, c_in=2, c_out=MAX_BLOCK_CO + 6, h=5, w=6, kh=2, kw=2, stride=(1, 1), pad=(0, 1),
                        dil=(1, 1), groups=1, off_groups=1), torch.float32),
}  # fmt: skip


@pytest.mark.parametrize("name", list(CASES))
def test_kernel_vs_torchvision_and_gridsample(name):
    shape, dtype = CASES[name]
    args, conv = make_case(**shape, seed=list(CASES).index(name), dtype=dtype)
    frac = out_of_bounds_fraction(args["offset"], shape["h"], shape["w"], shape["kh"], shape["kw"],
                                  conv["stride"], conv["padding"], conv["dilation"])  # fmt: skip
    assert frac > 0.1, "the case should exercise the boundary rule"
    got = deform_conv2d(**args, **conv)
    assert got.dtype == dtype and got.shape == (shape["b"], shape["c_out"], *args["offset"].shape[2:])
    # References in fp32 on the same (possibly fp16-rounded) inputs: the kernel's coordinates and
    # accumulation are fp32 whatever the I/O type, so only the output rounding differs.
    ref_args = {n: (t.float().cpu() if t is not None else None) for n, t in args.items()}
    tv = deform_conv2d_torchvision(**ref_args, **conv)
    gs = deform_conv2d_gridsample(**ref_args, **conv)
    assert rel_err(gs, tv) < 1e-4  # the two references agree
    assert rel_err(got.cpu(), tv) < TOL[dtype]
    assert rel_err(got.cpu(), gs) < TOL[dtype]


def test_swapped_dy_dx_fails():
    """The kernel reads offset[2k] as Δy: feeding (Δx, Δy) pairs must give a different answer."""
    shape, _ = CASES["dcpose_d3_b1"]
    args, conv = make_case(**shape, seed=7)
    b, c2, ho, wo = args["offset"].shape
    swapped = args["offset"].view(b, c2 // 2, 2, ho, wo).flip(2).reshape(b, c2, ho, wo)
    ref = deform_conv2d_torchvision(**{n: (t.cpu() if t is not None else None) for n, t in args.items()}, **conv)
    got_swapped = deform_conv2d(**{**args, "offset": swapped}, **conv).cpu()
    assert rel_err(got_swapped, ref) > 0.05


def test_no_mask_no_bias_and_noncontiguous():
    shape = dict(b=2, c_in=3, c_out=4, h=6, w=5, kh=3, kw=3, stride=(1, 1), pad=(2, 2), dil=(2, 2), groups=1,
                 off_groups=3)  # fmt: skip
    args, conv = make_case(**shape, seed=3, mask=False, bias=False)
    # A non-contiguous input (a transposed view of a W×H tensor) must give the same result.
    x_t = args["input"].transpose(2, 3).contiguous().transpose(2, 3)
    assert not x_t.is_contiguous()
    got = deform_conv2d(**{**args, "input": x_t}, **conv)
    ref = deform_conv2d_torchvision(**{n: (t.cpu() if t is not None else None) for n, t in args.items()}, **conv)
    assert rel_err(got.cpu(), ref) < 1e-4


def test_zero_offsets_unit_mask_is_conv2d():
    args, conv = make_case(b=1, c_in=3, c_out=2, h=6, w=7, kh=3, kw=3, stride=(1, 1), pad=(2, 2), dil=(2, 2),
                           groups=1, off_groups=1, seed=4)  # fmt: skip
    args["offset"].zero_()
    args["mask"].fill_(1.0)
    ref = torch.nn.functional.conv2d(args["input"].cpu(), args["weight"].cpu(), args["bias"].cpu(), padding=2,
                                     dilation=2)  # fmt: skip
    assert rel_err(deform_conv2d(**args, **conv).cpu(), ref) < 1e-5


def test_empty_batch():
    args, conv = make_case(**AWKWARD, seed=5)
    args = {n: (t[:0] if n in ("input", "offset", "mask") else t) for n, t in args.items()}
    out = deform_conv2d(**args, **conv)
    assert out.shape == (0, 4, 2, 3)


def test_launch_geometry_dcpose_8_persons():
    geo = launch_geometry((8, 17, 96, 72), (17, 17, 3, 3), 17, stride=1, padding=9, dilation=9, tactic=1)
    assert geo.grid == (math.ceil(96 * 72 / 128), 8, 1)
    assert geo.block == (128, 1, 1)
    assert geo.scalars == (17, 96, 72, 17, 96, 72, 17, 17, 1, 1, 1, 9, 9, 9, 9)
    assert geo.constexprs == {"KH": 3, "KW": 3, "BLOCK_CO": 32, "BLOCK_P": 128, "HAS_MASK": True,
                              "HAS_BIAS": True, "SINGLE_CH": True}  # fmt: skip


# ---------------------------------------------------------------------------------------------------
# Argument validation
# ---------------------------------------------------------------------------------------------------


class TestValidation:
    def _args(self):
        return make_case(**AWKWARD, seed=6)

    def test_offset_channels(self):
        args, conv = self._args()
        with pytest.raises(ValueError, match="expected a multiple of 2\\*kh\\*kw=12"):
            deform_conv2d(**{**args, "offset": args["offset"][:, :-1]}, **conv)

    def test_offset_shape(self):
        args, conv = self._args()
        with pytest.raises(ValueError, match="the shape of the offset"):
            deform_conv2d(**{**args, "offset": args["offset"][:, :, :-1]}, **conv)

    def test_mask_shape(self):
        args, conv = self._args()
        with pytest.raises(ValueError, match="the shape of the mask"):
            deform_conv2d(**{**args, "mask": args["mask"][:, :-1]}, **conv)

    def test_bias_shape(self):
        args, conv = self._args()
        with pytest.raises(ValueError, match=r"the shape of the bias is \(3,\), expected \(4,\)"):
            deform_conv2d(**{**args, "bias": args["bias"][:3]}, **conv)

    def test_input_rank(self):
        args, conv = self._args()
        with pytest.raises(ValueError, match="input must be B×C×H×W"):
            deform_conv2d(**{**args, "input": args["input"][0]}, **conv)

    def test_dtype(self):
        args, conv = self._args()
        with pytest.raises(ValueError, match="weight must be float32, float16 or bfloat16"):
            deform_conv2d(**{**args, "weight": args["weight"].to(torch.int32)}, **conv)

    def test_groups_must_divide_cout(self):
        args, conv = self._args()
        with pytest.raises(ValueError, match="output channels 5 must be divisible by groups=2"):
            deform_conv2d(**{**args, "weight": torch.randn(5, 3, 3, 2, device=DEVICE), "bias": None}, **conv)

    def test_cpu_without_interpreter(self, monkeypatch):
        if DEVICE == "cuda":
            pytest.skip("CPU-only behaviour")
        monkeypatch.setenv("TRITON_INTERPRET", "0")
        args, conv = self._args()
        with pytest.raises(PluginError, match="needs CUDA tensors"):
            deform_conv2d(**args, **conv)
