/* vmath.c - elementwise math the compiler can vectorize: exp by range
 * reduction and Cephes' degree-6 polynomial, max pooling and activations,
 * written without branches or calls so that each loop becomes vector code.
 * One body, compiled three times (AVX-512, AVX2 + FMA, baseline) and chosen
 * by cnn_simd_level(). */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "parallel.h"
#include "simd.h"
#include "vmath.h"

#if CNN_HAVE_X86_KERNELS
#include <immintrin.h>
#endif

/* a*b + c, rounded once where the kernel is built for FMA (fused is a
 * constant in each copy of a body), else twice: GCC in ISO C mode does not
 * contract a*b + c by itself. */
#define MADD(fused, a, b, c) ((fused) ? fmaf((a), (b), (c)) : (a) * (b) + (c))

/* exp's constants, for exp_reduced and its AVX-512 spelling in sigmoid_avx512. */
#define EXP_BIG   0x1.8p23f /* adding it rounds to an integer, kept in the low bits */
#define EXP_LOG2E 1.44269504088896341f
#define EXP_C1    0.693359375f /* ln2 in two parts, Cephes' C1 (n*C1 is exact) + C2 */
#define EXP_C2    2.12194440e-4f
#define EXP_P0    1.9875691500e-4f /* the polynomial's coefficients, highest first */
#define EXP_P1    1.3981999507e-3f
#define EXP_P2    8.3334519073e-3f
#define EXP_P3    4.1665795894e-2f
#define EXP_P4    1.6666665459e-1f
#define EXP_P5    5.0000001201e-1f
#define EXP_BIAS  (127 - 0x4b400000) /* t's bits to 2^n's exponent field */
/* sigmoid's bounds on -x: see sigmoid_body. */
#define SIGMOID_HI 89.0f
#define SIGMOID_LO -87.33f

/* exp(x) for x in [-87.33, 88]: x = n ln2 + r with |r| <= ln2/2, exp(r) from
 * the polynomial, 2^n put straight into the exponent bits. Callers clamp x
 * first (the bounds keep 2^n a normal number); NaN passes the clamps. */
__attribute__((always_inline)) static inline float exp_reduced(float x, bool fused) {
    const float t = MADD(fused, x, EXP_LOG2E, EXP_BIG);
    const float n = t - EXP_BIG;
    float r = x - n * EXP_C1;
    r = MADD(fused, n, EXP_C2, r);
    float p = EXP_P0;
    p = MADD(fused, p, r, EXP_P1);
    p = MADD(fused, p, r, EXP_P2);
    p = MADD(fused, p, r, EXP_P3);
    p = MADD(fused, p, r, EXP_P4);
    p = MADD(fused, p, r, EXP_P5);
    p = MADD(fused, p * r, r, r) + 1.0f;
    uint32_t bits;
    memcpy(&bits, &t, sizeof bits);
    bits = (bits + (uint32_t)EXP_BIAS) << 23; /* the low bits of t are n */
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

/* exp(-x) is clamped to [exp(-87.33), exp(88)]: past those bounds sigmoid is
 * 1 to the last bit, or below 6e-39. */
__attribute__((always_inline)) static inline void sigmoid_body(float *y, const float *x, size_t n,
                                                               bool fused) {
    for (size_t i = 0; i < n; i++) {
        float v = -x[i];
        v = v > SIGMOID_HI ? SIGMOID_HI : v;
        v = v < SIGMOID_LO ? SIGMOID_LO : v;
        y[i] = 1.0f / (1.0f + exp_reduced(v, fused));
    }
}

static void sigmoid_generic(float *y, const float *x, size_t n) { sigmoid_body(y, x, n, false); }

#if CNN_HAVE_X86_KERNELS
/* sigmoid_body with FMA, spelled out: GCC vectorized the body's clamps as
 * compares, blends and a masked division, where a minimum and a maximum keep
 * NaN the same way (the second operand wins). 4,704 values (LeNet's first
 * layer, one image) on one Zen 5 core: 1.28 us from the body, 0.85 from this,
 * the same bits. */
CNN_TARGET_AVX512 static void sigmoid_avx512(float *y, const float *x, size_t n) {
    const __m512 hi = _mm512_set1_ps(SIGMOID_HI), lo = _mm512_set1_ps(SIGMOID_LO),
                 log2e = _mm512_set1_ps(EXP_LOG2E), big = _mm512_set1_ps(EXP_BIG),
                 c1 = _mm512_set1_ps(EXP_C1), c2 = _mm512_set1_ps(EXP_C2),
                 one = _mm512_set1_ps(1.0f);
    const __m512i sign = _mm512_set1_epi32(INT32_MIN), bias = _mm512_set1_epi32(EXP_BIAS);
    for (size_t i = 0; i < n; i += 16) {
        /* Masked loads and stores for the tail only: a version that masked every one
         * (its mask worked out each step) took 1.24 us against 0.86 in one process. */
        const __mmask16 m = n - i >= 16 ? 0xffff : (__mmask16)((1u << (n - i)) - 1);
        __m512 v = _mm512_castsi512_ps(
            _mm512_xor_si512(_mm512_castps_si512(m == 0xffff ? _mm512_loadu_ps(x + i)
                                                             : _mm512_maskz_loadu_ps(m, x + i)),
                             sign));
        v = _mm512_max_ps(lo, _mm512_min_ps(hi, v)); /* v > 89 ? 89 : v, then v < lo ? lo : v */
        const __m512 t = _mm512_fmadd_ps(v, log2e, big), k = _mm512_sub_ps(t, big);
        __m512 r = _mm512_fmadd_ps(k, c2, _mm512_fnmadd_ps(k, c1, v)); /* k*c1 is exact */
        __m512 p = _mm512_set1_ps(EXP_P0);
        p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(EXP_P1));
        p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(EXP_P2));
        p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(EXP_P3));
        p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(EXP_P4));
        p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(EXP_P5));
        p = _mm512_add_ps(_mm512_fmadd_ps(_mm512_mul_ps(p, r), r, r), one);
        const __m512i e = _mm512_slli_epi32(_mm512_add_epi32(_mm512_castps_si512(t), bias), 23);
        p = _mm512_mul_ps(p, _mm512_castsi512_ps(e));
        p = _mm512_div_ps(one, _mm512_add_ps(one, p));
        if (m == 0xffff)
            _mm512_storeu_ps(y + i, p);
        else
            _mm512_mask_storeu_ps(y + i, m, p);
    }
}
CNN_TARGET_AVX2 static void sigmoid_avx2(float *y, const float *x, size_t n) {
    sigmoid_body(y, x, n, true);
}
#endif

/* PyTorch's scan: a value replaces the maximum when it is greater or NaN
 * (so the first maximum wins, or the last NaN), the index with it. Without
 * branches, so the ox loop vectorizes. */
__attribute__((always_inline)) static inline void maxpool_body(float *y, int32_t *arg,
                                                               const float *x, int64_t W,
                                                               int64_t kh, int64_t kw, int64_t sh,
                                                               int64_t sw, int64_t oh, int64_t ow) {
    for (int64_t oy = 0; oy < oh; oy++) {
        float *yr = y + oy * ow;
        int32_t *ar = arg ? arg + oy * ow : NULL;
        const float *x0 = x + oy * sh * W;
        for (int64_t ox = 0; ox < ow; ox++)
            yr[ox] = x0[ox * sw];
        if (ar)
            for (int64_t ox = 0; ox < ow; ox++)
                ar[ox] = (int32_t)(oy * sh * W + ox * sw);
        for (int64_t i = 0; i < kh; i++)
            for (int64_t j = i ? 0 : 1; j < kw; j++) {
                const float *xr = x0 + i * W + j;
                if (ar) {
                    const int32_t at = (int32_t)((oy * sh + i) * W + j);
                    for (int64_t ox = 0; ox < ow; ox++) {
                        const float v = xr[ox * sw], m = yr[ox];
                        const bool take = v > m || v != v;
                        yr[ox] = take ? v : m;
                        ar[ox] = take ? at + (int32_t)(ox * sw) : ar[ox];
                    }
                } else {
                    for (int64_t ox = 0; ox < ow; ox++) {
                        const float v = xr[ox * sw], m = yr[ox];
                        yr[ox] = v > m || v != v ? v : m;
                    }
                }
            }
    }
}

static void maxpool_generic(float *y, int32_t *arg, const float *x, int64_t W, int64_t kh,
                            int64_t kw, int64_t sh, int64_t sw, int64_t oh, int64_t ow) {
    maxpool_body(y, arg, x, W, kh, kw, sh, sw, oh, ow);
}

#if CNN_HAVE_X86_KERNELS
CNN_TARGET_AVX512 static void maxpool_avx512(float *y, int32_t *arg, const float *x, int64_t W,
                                             int64_t kh, int64_t kw, int64_t sh, int64_t sw,
                                             int64_t oh, int64_t ow) {
    maxpool_body(y, arg, x, W, kh, kw, sh, sw, oh, ow);
}
CNN_TARGET_AVX2 static void maxpool_avx2(float *y, int32_t *arg, const float *x, int64_t W,
                                         int64_t kh, int64_t kw, int64_t sh, int64_t sw, int64_t oh,
                                         int64_t ow) {
    maxpool_body(y, arg, x, W, kh, kw, sh, sw, oh, ow);
}
#endif

void cnn_vmaxpool_plane(float *y, int32_t *arg, const float *x, int64_t H, int64_t W, int64_t kh,
                        int64_t kw, int64_t sh, int64_t sw, int64_t oh, int64_t ow) {
    (void)H;
#if CNN_HAVE_X86_KERNELS
    switch (cnn_simd_level()) {
    case CNN_SIMD_AVX512: maxpool_avx512(y, arg, x, W, kh, kw, sh, sw, oh, ow); return;
    case CNN_SIMD_AVX2: maxpool_avx2(y, arg, x, W, kh, kw, sh, sw, oh, ow); return;
    default: break;
    }
#endif
    maxpool_generic(y, arg, x, W, kh, kw, sh, sw, oh, ow);
}

void cnn_vsigmoid(float *y, const float *x, size_t n) {
#if CNN_HAVE_X86_KERNELS
    switch (cnn_simd_level()) {
    case CNN_SIMD_AVX512: sigmoid_avx512(y, x, n); return;
    case CNN_SIMD_AVX2: sigmoid_avx2(y, x, n); return;
    default: break;
    }
#endif
    sigmoid_generic(y, x, n);
}

void cnn_vactivation(cnn_op op, float *y, const float *x, size_t n) {
    switch (op) {
    case CNN_OP_RELU:
        for (size_t i = 0; i < n; i++)
            y[i] = x[i] < 0.0f ? 0.0f : x[i];
        break;
    case CNN_OP_SIGMOID: cnn_vsigmoid(y, x, n); break;
    case CNN_OP_TANH:
        for (size_t i = 0; i < n; i++)
            y[i] = tanhf(x[i]);
        break;
    default: break;
    }
}

void cnn_vactivation_shared(cnn_op op, float *y, const float *x, size_t n) {
    const size_t block = 4096;
    CNN_PARALLEL_FOR(
        n > 65536, for (size_t i = 0; i < n; i += block) {
            cnn_vactivation(op, y + i, x + i, n - i < block ? n - i : block);
        });
}

/* One row of cnn_vavgpool2_act_backward: n values of g in v. Each product in
 * the order the separate passes take: (g * y) * (1 - y), g * (1 - y * y). */
__attribute__((always_inline)) static inline void
pool2_act_row(cnn_op act, float *d, const float *y, const float *v, int64_t n, bool add) {
    switch (act) {
    case CNN_OP_RELU:
        if (add)
            for (int64_t c = 0; c < n; c++)
                d[c] += y[c] > 0.0f ? v[c] : 0.0f;
        else
            for (int64_t c = 0; c < n; c++)
                d[c] = y[c] > 0.0f ? v[c] : 0.0f;
        break;
    case CNN_OP_SIGMOID:
        if (add)
            for (int64_t c = 0; c < n; c++)
                d[c] += v[c] * y[c] * (1.0f - y[c]);
        else
            for (int64_t c = 0; c < n; c++)
                d[c] = v[c] * y[c] * (1.0f - y[c]);
        break;
    default: /* Tanh */
        if (add)
            for (int64_t c = 0; c < n; c++)
                d[c] += v[c] * (1.0f - y[c] * y[c]);
        else
            for (int64_t c = 0; c < n; c++)
                d[c] = v[c] * (1.0f - y[c] * y[c]);
        break;
    }
}

__attribute__((always_inline)) static inline void pool2_act_body(cnn_op act, float *dx,
                                                                 const float *y, const float *dy,
                                                                 int64_t H, int64_t W, int64_t oh,
                                                                 int64_t ow, bool add, float *v) {
    for (int64_t r = 0; r < H; r++) {
        float *d = dx + r * W;
        int64_t c = 0;
        if (r < 2 * oh) {
            if (r % 2 == 0)
                for (int64_t ox = 0; ox < ow; ox++)
                    v[2 * ox] = v[2 * ox + 1] = dy[r / 2 * ow + ox] / 4.0f;
            pool2_act_row(act, d, y + r * W, v, 2 * ow, add);
            c = 2 * ow;
        }
        if (!add)
            for (; c < W; c++)
                d[c] = 0.0f;
    }
}

static void pool2_act_generic(cnn_op act, float *dx, const float *y, const float *dy, int64_t H,
                              int64_t W, int64_t oh, int64_t ow, bool add, float *v) {
    pool2_act_body(act, dx, y, dy, H, W, oh, ow, add, v);
}

#if CNN_HAVE_X86_KERNELS
CNN_TARGET_AVX512 static void pool2_act_avx512(cnn_op act, float *dx, const float *y,
                                               const float *dy, int64_t H, int64_t W, int64_t oh,
                                               int64_t ow, bool add, float *v) {
    pool2_act_body(act, dx, y, dy, H, W, oh, ow, add, v);
}
CNN_TARGET_AVX2 static void pool2_act_avx2(cnn_op act, float *dx, const float *y, const float *dy,
                                           int64_t H, int64_t W, int64_t oh, int64_t ow, bool add,
                                           float *v) {
    pool2_act_body(act, dx, y, dy, H, W, oh, ow, add, v);
}
#endif

#if CNN_HAVE_X86_KERNELS
/* Planes whose windows tile them (H = 2*oh, W = 2*ow) with rows up to 16
 * wide: a row of dy is one vector, its values doubled by a permutation into
 * the vector of both rows of a pair, each product in the generic order and
 * unfused (the same bits as the separate passes). LeNet's 10-wide rows went
 * through 10 scalar steps: its second pool's backward pass at batch 256
 * took 0.18 ms, this 0.12. On its 28-wide rows, the generic loop's 16 lanes
 * and 12 steps stayed faster than two vectors (0.28 ms against 0.38): the
 * pass waits for memory there. */
CNN_TARGET_AVX512 static void pool2_pairs_avx512(cnn_op act, float *dx, const float *y,
                                                 const float *dy, int64_t oh, int64_t ow,
                                                 bool add) {
    const int64_t W = 2 * ow;
    const __mmask16 gm = (__mmask16)((1u << ow) - 1), m = (__mmask16)((1u << W) - 1);
    const __m512i dup = _mm512_set_epi32(7, 7, 6, 6, 5, 5, 4, 4, 3, 3, 2, 2, 1, 1, 0, 0);
    const __m512 quarter = _mm512_set1_ps(0.25f), one = _mm512_set1_ps(1.0f); /* g / 4 exactly */
    for (int64_t oy = 0; oy < oh; oy++) {
        const __m512 g = _mm512_mul_ps(_mm512_maskz_loadu_ps(gm, dy + oy * ow), quarter);
        const __m512 v = _mm512_permutexvar_ps(dup, g);
        for (int64_t r = 2 * oy; r < 2 * oy + 2; r++) {
            const __m512 yr = _mm512_maskz_loadu_ps(m, y + r * W);
            __m512 t;
            switch (act) {
            case CNN_OP_RELU:
                t = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(yr, _mm512_setzero_ps(), _CMP_GT_OQ), v);
                break;
            case CNN_OP_SIGMOID:
                t = _mm512_mul_ps(_mm512_mul_ps(v, yr), _mm512_sub_ps(one, yr));
                break;
            default: t = _mm512_mul_ps(v, _mm512_sub_ps(one, _mm512_mul_ps(yr, yr))); break;
            }
            if (add) t = _mm512_add_ps(_mm512_maskz_loadu_ps(m, dx + r * W), t);
            _mm512_mask_storeu_ps(dx + r * W, m, t);
        }
    }
}
#endif

void cnn_vavgpool2_act_backward(cnn_op act, float *dx, const float *y, const float *dy, int64_t H,
                                int64_t W, int64_t oh, int64_t ow, bool add, float *v) {
#if CNN_HAVE_X86_KERNELS
    if (cnn_simd_level() == CNN_SIMD_AVX512 && H == 2 * oh && W == 2 * ow && ow <= 8) {
        pool2_pairs_avx512(act, dx, y, dy, oh, ow, add);
        return;
    }
    switch (cnn_simd_level()) {
    case CNN_SIMD_AVX512: pool2_act_avx512(act, dx, y, dy, H, W, oh, ow, add, v); return;
    case CNN_SIMD_AVX2: pool2_act_avx2(act, dx, y, dy, H, W, oh, ow, add, v); return;
    default: break;
    }
#endif
    pool2_act_generic(act, dx, y, dy, H, W, oh, ow, add, v);
}

float cnn_vsum(const float *v, int64_t n) {
    float lane[16] = {0};
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        for (int l = 0; l < 16; l++)
            lane[l] += v[i + l];
    double sum = 0.0;
    for (; i < n; i++)
        sum += v[i];
    for (int l = 0; l < 16; l++)
        sum += lane[l];
    return (float)sum;
}
