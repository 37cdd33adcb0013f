// DcnGemm: one modulated deformable convolution of the DCPose head as one OpenVINO CPU op.
//
// Compiled on the user's machine by dcpose_trt/engine/ov_extension.py (g++ against the installed OpenVINO)
// and loaded with Core.add_extension. It replaces, per DCN, the graph form of dcpose_trt/model/cpu_head.py
// (base add, transpose to GridSample's grid, GridSample, mask multiply, reorder, 1x1 conv): OpenVINO runs
// those as six passes over a 30 MB grid at w32 / 8 persons; this op reads the offsets and masks once.
//
// Inputs (planar f32, OpenVINO hands a custom op NCHW):
//   0 offsets  [B, J*K*2, H, W]  channel (j, t, {x, y}): GridSample-normalised deltas, dx * 2/W and dy * 2/H
//   1 mask     [B, J*K, H, W]    modulation, already through the sigmoid
//   2 support  [B, J, H, W]      the image group j samples from (one offset group per channel)
//   3 weight   [O, J*K]          the DCN's weights with the 1/5 branch average folded in
//   4 bias     [O]
// Output [B, O, H, W]: out[o] = bias[o] + sum over (j, t) of weight[o, j*K+t] * mask * bilinear(support[j]).
// Attributes: kernel_h, kernel_w, dilation, pad. Tap t = (ty, tx) samples (y - pad + ty*dil + dy,
// x - pad + tx*dil + dx) with zeros outside the map: GridSample's bilinear, zeros, align_corners=False.
#include <openvino/core/extension.hpp>
#include <openvino/core/op_extension.hpp>
#include <openvino/core/parallel.hpp>
#include <openvino/op/op.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>
#ifdef __AVX2__
#include <immintrin.h>
#endif

namespace {

constexpr int kRows = 4;   // rows per task: the offsets/mask are read as kRows·W-long contiguous runs
constexpr int kGroup = 6;  // outputs accumulated in registers at once (6 accumulators + operands < 16 ymm)

// Sample one row of W taps into `dst`: `img` is the zero-bordered (H+2)x(W+2) support image, (ox, oy, m) the
// tap's offset and mask rows, (bx, by) the tap's base position for x = 0.
inline void sample_row(const float* img, int PW, int W, int H, const float* ox, const float* oy, const float* m,
                       float bx, float by, float sx, float sy, float* dst) {
    int x = 0;
#ifdef __AVX2__
    const __m256 vsx = _mm256_set1_ps(sx), vsy = _mm256_set1_ps(sy), vm1 = _mm256_set1_ps(-1.f);
    const __m256 vW = _mm256_set1_ps(float(W)), vH = _mm256_set1_ps(float(H)), one = _mm256_set1_ps(1.f);
    const __m256 vby = _mm256_set1_ps(by), iota = _mm256_setr_ps(0.f, 1.f, 2.f, 3.f, 4.f, 5.f, 6.f, 7.f);
    const __m256i vPW = _mm256_set1_epi32(PW);
    for (; x + 8 <= W; x += 8) {
        __m256 px = _mm256_fmadd_ps(_mm256_loadu_ps(ox + x), vsx, _mm256_add_ps(_mm256_set1_ps(bx + float(x)), iota));
        __m256 py = _mm256_fmadd_ps(_mm256_loadu_ps(oy + x), vsy, vby);
        // Outside (-1, W) x (-1, H) every corner is zero; those (and NaN) move to (-1, -1), a zero corner.
        const __m256 ok = _mm256_and_ps(
            _mm256_and_ps(_mm256_cmp_ps(px, vm1, _CMP_GT_OQ), _mm256_cmp_ps(px, vW, _CMP_LT_OQ)),
            _mm256_and_ps(_mm256_cmp_ps(py, vm1, _CMP_GT_OQ), _mm256_cmp_ps(py, vH, _CMP_LT_OQ)));
        px = _mm256_blendv_ps(vm1, px, ok);
        py = _mm256_blendv_ps(vm1, py, ok);
        const __m256 fx = _mm256_floor_ps(px), fy = _mm256_floor_ps(py);
        const __m256 ax = _mm256_sub_ps(px, fx), ay = _mm256_sub_ps(py, fy);
        const __m256i idx = _mm256_add_epi32(_mm256_mullo_epi32(_mm256_cvttps_epi32(_mm256_add_ps(fy, one)), vPW),
                                             _mm256_cvttps_epi32(_mm256_add_ps(fx, one)));
        // The two corners of a row are adjacent: one 8-byte load each instead of a gather per corner
        // (gathers are slow on AMD Zen; this is as fast or faster on Intel).
        alignas(32) int ii[8];
        alignas(32) float tp[16], bt[16];
        _mm256_store_si256(reinterpret_cast<__m256i*>(ii), idx);
        for (int l = 0; l < 8; ++l) {
            std::memcpy(tp + 2 * l, img + ii[l], 8);
            std::memcpy(bt + 2 * l, img + ii[l] + PW, 8);
        }
        const __m256 t0 = _mm256_load_ps(tp), t1 = _mm256_load_ps(tp + 8);
        const __m256 b0 = _mm256_load_ps(bt), b1 = _mm256_load_ps(bt + 8);
        // shuffle_ps picks even/odd floats per 128-bit half; permute4x64 restores lane order.
        auto even = [](__m256 a, __m256 b) {
            return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(a, b, 0x88)), 0xD8));
        };
        auto odd = [](__m256 a, __m256 b) {
            return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(a, b, 0xDD)), 0xD8));
        };
        const __m256 v00 = even(t0, t1), v01 = odd(t0, t1), v10 = even(b0, b1), v11 = odd(b0, b1);
        const __m256 top = _mm256_fmadd_ps(ax, _mm256_sub_ps(v01, v00), v00);
        const __m256 bot = _mm256_fmadd_ps(ax, _mm256_sub_ps(v11, v10), v10);
        _mm256_storeu_ps(dst + x, _mm256_mul_ps(_mm256_fmadd_ps(ay, _mm256_sub_ps(bot, top), top), _mm256_loadu_ps(m + x)));
    }
#endif
    for (; x < W; ++x) {
        float px = bx + float(x) + ox[x] * sx, py = by + oy[x] * sy;
        const bool ok = (px > -1.f) & (px < float(W)) & (py > -1.f) & (py < float(H));
        px = ok ? px : -1.f;
        py = ok ? py : -1.f;
        const float fx = std::floor(px), fy = std::floor(py), ax = px - fx, ay = py - fy;
        const float* r = img + (int(fy) + 1) * PW + int(fx) + 1;
        const float top = r[0] + ax * (r[1] - r[0]), bot = r[PW] + ax * (r[PW + 1] - r[PW]);
        dst[x] = (top + ay * (bot - top)) * m[x];
    }
}

}  // namespace

class DcnGemm : public ov::op::Op {
public:
    OPENVINO_OP("DcnGemm", "dcpose_trt");

    DcnGemm() = default;
    DcnGemm(const ov::OutputVector& args, int64_t kernel_h, int64_t kernel_w, int64_t dilation, int64_t pad)
        : Op(args), kh_(kernel_h), kw_(kernel_w), dil_(dilation), pad_(pad) {
        constructor_validate_and_infer_types();
    }

    void validate_and_infer_types() override {
        NODE_VALIDATION_CHECK(this, get_input_size() == 5, "DcnGemm takes offsets, mask, support, weight, bias");
        for (size_t i = 0; i < 5; ++i)
            NODE_VALIDATION_CHECK(this, get_input_element_type(i).is_dynamic() ||
                                            get_input_element_type(i) == ov::element::f32, "DcnGemm is f32 only");
        auto shape = get_input_partial_shape(2);  // support [B, J, H, W] -> [B, O, H, W]
        const auto& w = get_input_partial_shape(3);
        if (shape.rank().is_static() && w.rank().is_static()) shape[1] = w[0];
        set_output_type(0, ov::element::f32, shape);
    }

    std::shared_ptr<ov::Node> clone_with_new_inputs(const ov::OutputVector& args) const override {
        return std::make_shared<DcnGemm>(args, kh_, kw_, dil_, pad_);
    }

    bool visit_attributes(ov::AttributeVisitor& v) override {
        v.on_attribute("kernel_h", kh_);
        v.on_attribute("kernel_w", kw_);
        v.on_attribute("dilation", dil_);
        v.on_attribute("pad", pad_);
        return true;
    }

    bool has_evaluate() const override { return true; }

    bool evaluate(ov::TensorVector& outputs, const ov::TensorVector& inputs) const override {
        const auto s = inputs[2].get_shape();
        const int B = int(s[0]), J = int(s[1]), H = int(s[2]), W = int(s[3]), K = int(kh_ * kw_);
        const int O = int(inputs[3].get_shape()[0]), C = J * K;
        outputs[0].set_shape({size_t(B), size_t(O), size_t(H), size_t(W)});
        const float* off = inputs[0].data<const float>();
        const float* msk = inputs[1].data<const float>();
        const float* sup = inputs[2].data<const float>();
        const float* wgt = inputs[3].data<const float>();
        const float* bias = inputs[4].data<const float>();
        float* dst = outputs[0].data<float>();

        // Zero-bordered copies of the support images: all four corners of an in-range sample are inside.
        const int PW = W + 2, PH = H + 2;
        std::vector<float> padded(size_t(B) * J * PH * PW, 0.f);
        ov::parallel_for(size_t(B) * J, [&](size_t bj) {
            for (int y = 0; y < H; ++y)
                std::memcpy(&padded[(bj * PH + y + 1) * PW + 1], sup + (bj * H + y) * W, sizeof(float) * W);
        });
        // Weights as [group][c][k] (zero-padded to whole groups) for broadcast loads.
        const int NG = (O + kGroup - 1) / kGroup;
        std::vector<float> wg(size_t(NG) * C * kGroup, 0.f);
        for (int o = 0; o < O; ++o)
            for (int c = 0; c < C; ++c) wg[(size_t(o / kGroup) * C + c) * kGroup + o % kGroup] = wgt[o * C + c];

        const float sx = 0.5f * float(W), sy = 0.5f * float(H);
        const int kw = int(kw_), dil = int(dil_), pad = int(pad_);
        const int R = std::min(kRows, H), NC = (H + R - 1) / R;
        ov::parallel_for(size_t(B) * NC, [&](size_t task) {
            const int b = int(task / NC), y0 = int(task % NC) * R, rows = std::min(R, H - y0), n = rows * W;
            std::vector<float> smp(size_t(C) * n);  // [c][pixel of this task]: the DCN's GEMM input
            for (int c = 0; c < C; ++c) {
                const int j = c / K, t = c % K;
                const float* img = padded.data() + size_t(b * J + j) * PH * PW;
                const float* ox = off + ((size_t(b) * 2 * C + 2 * c) * H + y0) * W;
                const float* oy = ox + size_t(H) * W;
                const float* m = msk + ((size_t(b) * C + c) * H + y0) * W;
                const float bx = float(-pad + (t % kw) * dil);
                for (int r = 0; r < rows; ++r)
                    sample_row(img, PW, W, H, ox + r * W, oy + r * W, m + r * W, bx,
                               float(y0 + r - pad + (t / kw) * dil), sx, sy, smp.data() + size_t(c) * n + r * W);
            }
            float* out = dst + (size_t(b) * O * H + y0) * W;  // out[o] at + o·H·W
            int p = 0;
#ifdef __AVX2__
            for (; p + 8 <= n; p += 8) {
                for (int g = 0; g < NG; ++g) {
                    __m256 acc[kGroup];
                    for (int k = 0; k < kGroup; ++k) acc[k] = _mm256_setzero_ps();
                    const float* w = wg.data() + size_t(g) * C * kGroup;
                    for (int c = 0; c < C; ++c) {
                        const __m256 v = _mm256_loadu_ps(smp.data() + size_t(c) * n + p);
                        for (int k = 0; k < kGroup; ++k)
                            acc[k] = _mm256_fmadd_ps(_mm256_broadcast_ss(w + c * kGroup + k), v, acc[k]);
                    }
                    for (int k = 0; k < kGroup && g * kGroup + k < O; ++k) {
                        const int o = g * kGroup + k;
                        _mm256_storeu_ps(out + size_t(o) * H * W + p, _mm256_add_ps(acc[k], _mm256_set1_ps(bias[o])));
                    }
                }
            }
#endif
            for (; p < n; ++p)
                for (int o = 0; o < O; ++o) {
                    float a = bias[o];
                    for (int c = 0; c < C; ++c) a += wgt[o * C + c] * smp[size_t(c) * n + p];
                    out[size_t(o) * H * W + p] = a;
                }
        });
        return true;
    }

private:
    int64_t kh_ = 3, kw_ = 3, dil_ = 1, pad_ = 1;
};

OPENVINO_CREATE_EXTENSIONS(std::vector<ov::Extension::Ptr>({std::make_shared<ov::OpExtension<DcnGemm>>()}));
