"""Triton kernel of the fused modulated deformable convolution (DCNv2), import-pure.

One launch computes the whole batch: ``grid = (cdiv(Ho * Wo, BLOCK_P), B * groups * cdiv(Cout_g, BLOCK_CO))``.
Each program owns one batch item, one conv group, ``BLOCK_CO`` output channels (all of DCPose's 17 in
one tile) and ``BLOCK_P`` output pixels, and keeps the ``BLOCK_CO × BLOCK_P`` accumulator in fp32
registers while it loops over the ``Cin_g · K`` reduction: for each (offset group, tap) it loads Δy, Δx
and the mask once, computes the bilinear corners and weights once, then for each input channel of that
offset group gathers four corners and adds a rank-1 update ``weight[:, c, k] ⊗ sample`` to the tile.
No im2col buffer, no GEMM call, no per-sample loop. ``SINGLE_CH`` (one input channel per offset group,
DCPose's case) drops the inner channel loop so each tap's loads can overlap the previous tap's math.

Tensor layout (all contiguous NCHW, int32 element indexing inside one batch item, int64 batch bases):

* ``x``      [B, Cin, H, W]
* ``offset`` [B, 2 * G * K, Ho, Wo]; channel ``2 * (g * K + k)`` is Δy, ``+ 1`` is Δx (K = KH * KW,
  tap ``k = i * KW + j`` row-major)
* ``mask``   [B, G * K, Ho, Wo]; channel ``g * K + k``; used raw (may be negative)
* ``weight`` [Cout, Cin / groups, KH, KW]
* ``bias``   [Cout]
* ``out``    [B, Cout, Ho, Wo]

Argument order is the TensorRT ahead-of-time plugin convention: input pointers (in the node's input
order, which is ONNX ``DeformConv``'s: X, W, offset, B, mask), then int32 scalars, then the output
pointer, then ``tl.constexpr`` meta-parameters (baked into the PTX).
"""

from __future__ import annotations

import triton
import triton.language as tl


@triton.jit
def _bilinear_sample(xc, i00, m00, m01, m10, m11, w00, w01, w10, w11, W):
    """Σ corner weight × pixel of one channel plane ``xc`` (fp32); masked corners read nothing."""
    v = w00 * tl.load(xc + i00, mask=m00, other=0.0).to(tl.float32)
    v += w01 * tl.load(xc + i00 + 1, mask=m01, other=0.0).to(tl.float32)
    v += w10 * tl.load(xc + i00 + W, mask=m10, other=0.0).to(tl.float32)
    v += w11 * tl.load(xc + i00 + W + 1, mask=m11, other=0.0).to(tl.float32)
    return v


@triton.jit
def deform_conv2d_kernel(
    # input pointers (TensorRT: plugin inputs, in ONNX DeformConv order X, W, offset, B, mask)
    x_ptr,
    weight_ptr,
    offset_ptr,
    bias_ptr,
    mask_ptr,
    # int32 scalars (TensorRT: SymInt32 extra args)
    C_in,
    H,
    W,
    C_out,
    H_out,
    W_out,
    CIN_G,  # input channels per conv group = weight.shape[1]
    COUT_G,  # output channels per conv group
    C_PER_OG,  # input channels per offset group = Cin / G
    stride_h,
    stride_w,
    pad_h,
    pad_w,
    dil_h,
    dil_w,
    # output pointer (TensorRT: plugin output)
    out_ptr,
    # meta-parameters
    KH: tl.constexpr,
    KW: tl.constexpr,
    BLOCK_CO: tl.constexpr,
    BLOCK_P: tl.constexpr,
    HAS_MASK: tl.constexpr,
    HAS_BIAS: tl.constexpr,
    SINGLE_CH: tl.constexpr,  # C_PER_OG == 1
):
    K: tl.constexpr = KH * KW
    pid_p = tl.program_id(0)
    pid_y = tl.program_id(1)

    # Decode (batch, conv group, output-channel tile) from the second grid axis.
    n_groups = C_out // COUT_G
    n_co_tiles = tl.cdiv(COUT_G, BLOCK_CO)
    co_tile = pid_y % n_co_tiles
    bg = pid_y // n_co_tiles
    gi = bg % n_groups
    b = (bg // n_groups).to(tl.int64)  # int64: batch bases can exceed 2**31 elements for big B

    hw_out = H_out * W_out
    hw_in = H * W
    n_og = C_in // C_PER_OG

    offs_p = pid_p * BLOCK_P + tl.arange(0, BLOCK_P)
    p_valid = offs_p < hw_out
    oh = offs_p // W_out
    ow = offs_p % W_out
    # Top-left tap position (without offsets) of every output pixel in the tile.
    h_base = oh * stride_h - pad_h
    w_base = ow * stride_w - pad_w

    offs_co = co_tile * BLOCK_CO + tl.arange(0, BLOCK_CO)
    co_valid = offs_co < COUT_G
    co = gi * COUT_G + offs_co  # absolute output channel

    x_b = x_ptr + b * C_in * hw_in
    off_b = offset_ptr + b * (2 * n_og * K) * hw_out
    mask_b = mask_ptr + b * (n_og * K) * hw_out
    # Row of each output channel in the (Cout, CIN_G * K) weight matrix, as int32 element offsets (half
    # the registers of a pointer vector). Padding rows (co >= COUT_G) re-read the last real row instead
    # of carrying a predicate per row; their accumulators are never stored.
    w_rows = (gi * COUT_G + tl.minimum(offs_co, COUT_G - 1)) * (CIN_G * K)

    acc = tl.zeros((BLOCK_CO, BLOCK_P), dtype=tl.float32)

    # Input channels of this conv group, [c_lo, c_hi), visited offset group by offset group so that the
    # sampling coordinates of a (group, tap) are computed once and reused by all its channels.
    c_lo = gi * CIN_G
    c_hi = c_lo + CIN_G
    g_lo = c_lo // C_PER_OG
    g_hi = (c_hi - 1) // C_PER_OG + 1
    for g in range(g_lo, g_hi):
        c_start = tl.maximum(c_lo, g * C_PER_OG)
        c_end = tl.minimum(c_hi, (g + 1) * C_PER_OG)
        for k in tl.static_range(K):
            i = k // KW
            j = k % KW
            ch = 2 * (g * K + k)
            dy = tl.load(off_b + ch * hw_out + offs_p, mask=p_valid, other=0.0).to(tl.float32)
            dx = tl.load(off_b + (ch + 1) * hw_out + offs_p, mask=p_valid, other=0.0).to(tl.float32)
            # Sampling coordinates are fp32 whatever the I/O type: fp16 cannot resolve fractions of a
            # pixel at 96-px coordinates (1/16 px steps at 64..128).
            y = (h_base + i * dil_h).to(tl.float32) + dy
            xx = (w_base + j * dil_w).to(tl.float32) + dx
            # DCN boundary rule (torchvision / mmdet v1): zero unless -1 < y < H and -1 < x < W.
            inside = p_valid & (y > -1.0) & (y < H) & (xx > -1.0) & (xx < W)
            # Park rejected samples at 0 so the float->int conversion below never sees huge values.
            y = tl.where(inside, y, 0.0)
            xx = tl.where(inside, xx, 0.0)
            y0f = tl.floor(y)
            x0f = tl.floor(xx)
            ly = y - y0f
            lx = xx - x0f
            hy = 1.0 - ly
            hx = 1.0 - lx
            y0 = y0f.to(tl.int32)
            x0 = x0f.to(tl.int32)
            y1 = y0 + 1
            x1 = x0 + 1
            # Corners outside [0, H-1] x [0, W-1] contribute zero (no clamping of the coordinate).
            ok_y0 = inside & (y0 >= 0)
            ok_y1 = inside & (y1 <= H - 1)
            ok_x0 = x0 >= 0
            ok_x1 = x1 <= W - 1
            m00 = ok_y0 & ok_x0
            m01 = ok_y0 & ok_x1
            m10 = ok_y1 & ok_x0
            m11 = ok_y1 & ok_x1
            w00 = hy * hx
            w01 = hy * lx
            w10 = ly * hx
            w11 = ly * lx
            if HAS_MASK:
                # Fold the (raw, possibly negative) modulation into the four corner weights once per
                # (group, tap) instead of once per channel.
                m = tl.load(mask_b + (g * K + k) * hw_out + offs_p, mask=p_valid, other=0.0).to(tl.float32)
                w00 = w00 * m
                w01 = w01 * m
                w10 = w10 * m
                w11 = w11 * m
            i00 = y0 * W + x0  # top-left corner; the others are +1, +W, +W+1
            if SINGLE_CH:
                # One channel per offset group (DCPose: 17 channels, 17 groups): channel g, no inner loop,
                # so the gathers of all KH*KW taps can be issued back to back (latency hiding).
                v = _bilinear_sample(x_b + g * hw_in, i00, m00, m01, m10, m11, w00, w01, w10, w11, W)
                wk = tl.load(weight_ptr + (w_rows + ((g - c_lo) * K + k))).to(tl.float32)
                acc += wk[:, None] * v[None, :]
            else:
                for c in range(c_start, c_end):
                    v = _bilinear_sample(x_b + c * hw_in, i00, m00, m01, m10, m11, w00, w01, w10, w11, W)
                    wk = tl.load(weight_ptr + (w_rows + ((c - c_lo) * K + k))).to(tl.float32)
                    acc += wk[:, None] * v[None, :]

    if HAS_BIAS:
        acc += tl.load(bias_ptr + co, mask=co_valid, other=0.0).to(tl.float32)[:, None]

    out_b = out_ptr + b * C_out * hw_out
    out_ptrs = out_b + co[:, None] * hw_out + offs_p[None, :]
    tl.store(out_ptrs, acc.to(out_ptr.dtype.element_ty), mask=co_valid[:, None] & p_valid[None, :])
