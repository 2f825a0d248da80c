/* im2col.c - patches of an image as rows of a matrix, and back. A row is oh
 * segments of ow floats, each a piece of one input row with zeros where the
 * window hangs over the padding. The segments are short (LeNet's are 10 and
 * 28 floats), so the cost is per segment: the AVX-512 and AVX2 builds move
 * a stride-1 segment with one masked load and store per 16 or 8 floats, the
 * mask doing the padding; the portable build works out the valid range
 * [lo, hi) once per row and copies between zero fills, and so does the
 * AVX-512 build for other strides. */
#include <stdbool.h>
#include <string.h>

#include "im2col.h"
#include "simd.h"

/* The outputs ox whose input column ix = ox*s - p + off falls inside [0, W):
 * [*lo, *hi), so the copy loops need no bounds test. */
static void valid_range(int64_t W, int64_t ow, int64_t s, int64_t p, int64_t off, int64_t *lo,
                        int64_t *hi) {
    /* ox*s - p + off >= 0  <=>  ox >= ceil((p - off) / s) */
    int64_t a = p - off, l = a <= 0 ? 0 : (a + s - 1) / s;
    /* ox*s - p + off <= W - 1  <=>  ox <= floor((W - 1 + p - off) / s) */
    int64_t c = W - 1 + p - off, h = c < 0 ? 0 : c / s + 1;
    *lo = l < ow ? l : ow;
    *hi = h < ow ? h : ow;
    if (*hi < *lo) *hi = *lo;
}

/* Row r of the patch matrix is (c, ki, kj); stepping through the rows keeps
 * the three counters instead of dividing per row (a 64-bit division costs
 * as much as copying a LeNet segment). */
typedef struct row_index {
    int64_t c, ki, kj;
} row_index;

static row_index row_index_at(const cnn_patch_geom *g, int64_t r) {
    return (row_index){r / (g->kh * g->kw), r / g->kw % g->kh, r % g->kw};
}

static void row_index_next(const cnn_patch_geom *g, row_index *ri) {
    if (++ri->kj < g->kw) return;
    ri->kj = 0;
    if (++ri->ki < g->kh) return;
    ri->ki = 0;
    ri->c++;
}

/* The rows with the stride sw (g->sw, or a constant the compiler can plan
 * the loads around: see im2col_strided_avx512). */
__attribute__((always_inline)) static inline void im2col_rows(float *col, int64_t ld,
                                                              const float *x,
                                                              const cnn_patch_geom *g, int64_t r0,
                                                              int64_t r1, const int64_t sw) {
    const int64_t ow = g->ow;
    row_index ri = row_index_at(g, r0);
    for (int64_t r = r0; r < r1; r++, row_index_next(g, &ri)) {
        const int64_t c = ri.c, ki = ri.ki, kj = ri.kj;
        const int64_t off = kj * g->dw - g->pw;
        int64_t lo, hi;
        valid_range(g->W, ow, sw, g->pw, kj * g->dw, &lo, &hi);
        float *dst = col + r * ld;
        for (int64_t oy = 0; oy < g->oh; oy++) {
            const int64_t iy = oy * g->sh - g->ph + ki * g->dh;
            float *d = dst + oy * ow;
            if (iy < 0 || iy >= g->H) {
                memset(d, 0, (size_t)ow * sizeof(float));
                continue;
            }
            const float *xr = x + (c * g->H + iy) * g->W + off;
            for (int64_t ox = 0; ox < lo; ox++)
                d[ox] = 0.0f;
            if (sw == 1)
                memcpy(d + lo, xr + lo, (size_t)(hi - lo) * sizeof(float));
            else
                for (int64_t ox = lo; ox < hi; ox++)
                    d[ox] = xr[ox * sw];
            for (int64_t ox = hi; ox < ow; ox++)
                d[ox] = 0.0f;
        }
    }
}

static void im2col_generic(float *col, int64_t ld, const float *x, const cnn_patch_geom *g,
                           int64_t r0, int64_t r1) {
    im2col_rows(col, ld, x, g, r0, r1, g->sw);
}

static void col2im_generic(float *dx, const float *col, int64_t ld, const cnn_patch_geom *g) {
    const int64_t ow = g->ow;
    row_index ri = row_index_at(g, 0);
    for (int64_t r = 0; r < g->C * g->kh * g->kw; r++, row_index_next(g, &ri)) {
        const int64_t c = ri.c, ki = ri.ki, kj = ri.kj;
        const int64_t off = kj * g->dw - g->pw;
        int64_t lo, hi;
        valid_range(g->W, ow, g->sw, g->pw, kj * g->dw, &lo, &hi);
        for (int64_t oy = 0; oy < g->oh; oy++) {
            const int64_t iy = oy * g->sh - g->ph + ki * g->dh;
            if (iy < 0 || iy >= g->H) continue;
            float *dr = dx + (c * g->H + iy) * g->W + off;
            const float *sr = col + r * ld + oy * ow;
            if (g->sw == 1)
                for (int64_t ox = lo; ox < hi; ox++)
                    dr[ox] += sr[ox];
            else
                for (int64_t ox = lo; ox < hi; ox++)
                    dr[ox * g->sw] += sr[ox];
        }
    }
}

#if CNN_HAVE_X86_KERNELS
#include <immintrin.h>

/* Lanes [lo, hi) of 16, clipped to the vector. */
static inline __mmask16 lane_range(int64_t lo, int64_t hi) {
    if (lo < 0) lo = 0;
    if (hi > 16) hi = 16;
    return hi > lo ? (__mmask16)(((1u << hi) - 1u) & ~((1u << lo) - 1u)) : 0;
}

/* Stride 1: the segment for outputs ox0..ox0+15 of row oy reads
 * x[iy][s..s+15], s = ox0 - pw + kj*dw; the lanes outside [0, W) read
 * nothing and are zero. The masks depend on the row of col, not on oy. */
CNN_TARGET_AVX512 static void im2col_avx512(float *col, int64_t ld, const float *x,
                                            const cnn_patch_geom *g, int64_t r0, int64_t r1) {
    const int64_t ow = g->ow, chunks = (ow + 15) / 16;
    row_index ri = row_index_at(g, r0);
    for (int64_t r = r0; r < r1; r++, row_index_next(g, &ri)) {
        const float *xc = x + ri.c * g->H * g->W;
        float *dst = col + r * ld;
        for (int64_t q = 0; q < chunks; q++) {
            const int64_t ox0 = q * 16, s = ox0 - g->pw + ri.kj * g->dw;
            const __mmask16 out = lane_range(0, ow - ox0), in = lane_range(-s, g->W - s) & out;
            for (int64_t oy = 0; oy < g->oh; oy++) {
                const int64_t iy = oy * g->sh - g->ph + ri.ki * g->dh;
                const bool inside = iy >= 0 && iy < g->H;
                /* The address is formed as an integer: s may point before the row. */
                const float *src = (const float *)((uintptr_t)(xc + (inside ? iy : 0) * g->W) +
                                                   (uintptr_t)(s * 4));
                _mm512_mask_storeu_ps(dst + oy * ow + ox0, out,
                                      _mm512_maskz_loadu_ps(inside ? in : 0, src));
            }
        }
    }
}

/* Strides 2 and 4 (AlexNet's first layer) as constants, so that the
 * strided copies vectorize: that layer's forward pass at batch 64 went from
 * 37.4 to 34.3 ms. */
CNN_TARGET_AVX512 static void im2col_strided_avx512(float *col, int64_t ld, const float *x,
                                                    const cnn_patch_geom *g, int64_t r0,
                                                    int64_t r1) {
    if (g->sw == 4)
        im2col_rows(col, ld, x, g, r0, r1, 4);
    else if (g->sw == 2)
        im2col_rows(col, ld, x, g, r0, r1, 2);
    else
        im2col_rows(col, ld, x, g, r0, r1, g->sw);
}

/* Stride 1, gathered by the destination: each 16 floats of an input row
 * dx[c][iy] take the entries of every col row (c, ki, kj) that fall on
 * them, summed in a register, and are written once. (Scattering row by row
 * instead stores to a place that the next row's load overlaps, shifted by
 * one float, which defeats store forwarding: 2.7x slower on LeNet's second
 * layer.) The lanes each kj reads depend on the 16 columns only: up to
 * COL2IM_KW of them are worked out once per column block, not per row;
 * and up to 4 channels run side by side (col2im_row). LeNet's training
 * step at batch 256: col2im 10.6% of its time before, 6.1% after, conv2's
 * backward pass 2.0 -> 1.6 ms. */
#define COL2IM_KW 16

CNN_TARGET_AVX512 __attribute__((always_inline)) static inline __mmask16
col2im_lanes(const cnn_patch_geom *g, int64_t ix0, int64_t kj) {
    /* ox = ix + pw - kj*dw for ix = ix0 + lane. */
    const int64_t o0 = ix0 + g->pw - kj * g->dw;
    return lane_range(-o0, g->ow - o0) & lane_range(0, g->W - ix0);
}

/* Row iy of nc channels from c (nc constant at each call): the sums run in
 * the order of col's rows, one chain per channel, so that the additions of
 * one channel overlap the other's. */
CNN_TARGET_AVX512 __attribute__((always_inline)) static inline void
col2im_row(const int nc, float *dx, const float *col, int64_t ld, const cnn_patch_geom *g,
           const __mmask16 *lanes, int64_t c, int64_t iy, int64_t ix0) {
    const int64_t kk = g->kh * g->kw, plane = g->H * g->W, step = kk * ld;
    const __mmask16 wm = lane_range(0, g->W - ix0);
    float *dr = dx + (c * g->H + iy) * g->W + ix0;
    __m512 acc[4];
    for (int j = 0; j < nc; j++)
        acc[j] = _mm512_maskz_loadu_ps(wm, dr + j * plane);
    for (int64_t ki = 0; ki < g->kh; ki++) {
        /* iy = oy*sh - ph + ki*dh */
        const int64_t t = iy + g->ph - ki * g->dh;
        if (t < 0 || t % g->sh != 0 || t / g->sh >= g->oh) continue;
        const float *row = col + (c * kk + ki * g->kw) * ld + t / g->sh * g->ow;
        for (int64_t kj = 0; kj < g->kw; kj++) {
            const int64_t o0 = ix0 + g->pw - kj * g->dw;
            const __mmask16 m = kj < COL2IM_KW ? lanes[kj] : col2im_lanes(g, ix0, kj);
            /* The address is formed as an integer: o0 may point before the row. */
            const float *src = (const float *)((uintptr_t)(row + kj * ld) + (uintptr_t)(o0 * 4));
            for (int j = 0; j < nc; j++)
                acc[j] = _mm512_add_ps(acc[j], _mm512_maskz_loadu_ps(m, src + j * step));
        }
    }
    for (int j = 0; j < nc; j++)
        _mm512_mask_storeu_ps(dr + j * plane, wm, acc[j]);
}

CNN_TARGET_AVX512 static void col2im_avx512(float *dx, const float *col, int64_t ld,
                                            const cnn_patch_geom *g) {
    __mmask16 lanes[COL2IM_KW];
    for (int64_t ix0 = 0; ix0 < g->W; ix0 += 16) {
        for (int64_t kj = 0; kj < g->kw && kj < COL2IM_KW; kj++)
            lanes[kj] = col2im_lanes(g, ix0, kj);
        for (int64_t c = 0; c < g->C;) {
            const int nc = g->C - c >= 4 ? 4 : (int)(g->C - c);
            for (int64_t iy = 0; iy < g->H; iy++)
                switch (nc) {
                case 4: col2im_row(4, dx, col, ld, g, lanes, c, iy, ix0); break;
                case 3: col2im_row(3, dx, col, ld, g, lanes, c, iy, ix0); break;
                case 2: col2im_row(2, dx, col, ld, g, lanes, c, iy, ix0); break;
                default: col2im_row(1, dx, col, ld, g, lanes, c, iy, ix0); break;
                }
            c += nc;
        }
    }
}

/* The same two with AVX2's 8 lanes, masks as integer vectors. */
CNN_TARGET_AVX2 static inline __m256i lane_range8(int64_t lo, int64_t hi) {
    if (lo < 0) lo = 0;
    if (hi > 8) hi = 8;
    const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_and_si256(_mm256_cmpgt_epi32(_mm256_set1_epi32((int)hi), idx),
                            _mm256_cmpgt_epi32(idx, _mm256_set1_epi32((int)lo - 1)));
}

CNN_TARGET_AVX2 static void im2col_avx2(float *col, int64_t ld, const float *x,
                                        const cnn_patch_geom *g, int64_t r0, int64_t r1) {
    const int64_t ow = g->ow, chunks = (ow + 7) / 8;
    const __m256i none = _mm256_setzero_si256();
    row_index ri = row_index_at(g, r0);
    for (int64_t r = r0; r < r1; r++, row_index_next(g, &ri)) {
        const float *xc = x + ri.c * g->H * g->W;
        float *dst = col + r * ld;
        for (int64_t q = 0; q < chunks; q++) {
            const int64_t ox0 = q * 8, s = ox0 - g->pw + ri.kj * g->dw;
            const __m256i out = lane_range8(0, ow - ox0);
            const __m256i in = _mm256_and_si256(lane_range8(-s, g->W - s), out);
            for (int64_t oy = 0; oy < g->oh; oy++) {
                const int64_t iy = oy * g->sh - g->ph + ri.ki * g->dh;
                const bool inside = iy >= 0 && iy < g->H;
                const float *src = (const float *)((uintptr_t)(xc + (inside ? iy : 0) * g->W) +
                                                   (uintptr_t)(s * 4));
                _mm256_maskstore_ps(dst + oy * ow + ox0, out,
                                    _mm256_maskload_ps(src, inside ? in : none));
            }
        }
    }
}

CNN_TARGET_AVX2 static void col2im_avx2(float *dx, const float *col, int64_t ld,
                                        const cnn_patch_geom *g) {
    const int64_t ow = g->ow, kk = g->kh * g->kw;
    for (int64_t c = 0; c < g->C; c++) {
        for (int64_t ki = 0; ki < g->kh; ki++) {
            const float *rows = col + (c * kk + ki * g->kw) * ld;
            for (int64_t oy = 0; oy < g->oh; oy++) {
                const int64_t iy = oy * g->sh - g->ph + ki * g->dh;
                if (iy < 0 || iy >= g->H) continue;
                float *dr = dx + (c * g->H + iy) * g->W;
                for (int64_t ix0 = 0; ix0 < g->W; ix0 += 8) {
                    const __m256i wm = lane_range8(0, g->W - ix0);
                    __m256 acc = _mm256_maskload_ps(dr + ix0, wm);
                    for (int64_t kj = 0; kj < g->kw; kj++) {
                        const int64_t o0 = ix0 + g->pw - kj * g->dw;
                        const __m256i m = _mm256_and_si256(lane_range8(-o0, ow - o0), wm);
                        const float *src = (const float *)((uintptr_t)(rows + kj * ld + oy * ow) +
                                                           (uintptr_t)(o0 * 4));
                        acc = _mm256_add_ps(acc, _mm256_maskload_ps(src, m));
                    }
                    _mm256_maskstore_ps(dr + ix0, wm, acc);
                }
            }
        }
    }
}
#endif

void cnn_im2col(float *col, int64_t ld, const float *x, const cnn_patch_geom *g, int64_t r0,
                int64_t r1) {
#if CNN_HAVE_X86_KERNELS
    if (g->sw == 1 && cnn_simd_level() == CNN_SIMD_AVX512) {
        im2col_avx512(col, ld, x, g, r0, r1);
        return;
    }
    if (g->sw == 1 && cnn_simd_level() == CNN_SIMD_AVX2) {
        im2col_avx2(col, ld, x, g, r0, r1);
        return;
    }
    if (cnn_simd_level() == CNN_SIMD_AVX512) {
        im2col_strided_avx512(col, ld, x, g, r0, r1);
        return;
    }
#endif
    im2col_generic(col, ld, x, g, r0, r1);
}

void cnn_col2im(float *dx, const float *col, int64_t ld, const cnn_patch_geom *g) {
#if CNN_HAVE_X86_KERNELS
    if (g->sw == 1 && cnn_simd_level() == CNN_SIMD_AVX512) {
        col2im_avx512(dx, col, ld, g);
        return;
    }
    if (g->sw == 1 && cnn_simd_level() == CNN_SIMD_AVX2) {
        col2im_avx2(dx, col, ld, g);
        return;
    }
#endif
    col2im_generic(dx, col, ld, g);
}
