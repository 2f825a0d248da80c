/* conv_direct.c - a convolution and its weight gradient straight from the
 * image, for stride 1 and dilation 1: no im2col buffer to write and read back.
 *
 * Forward, a register tile holds up to 8 output channels times 32 columns of
 * one output row; for each input channel and kernel offset it loads the 32
 * inputs under them with masks that make the padding zero, and broadcasts
 * each channel's weight into a multiply-add. On LeNet's first layer: 3.5 us
 * per image against 5.0 for im2col + cnn_gemm.
 *
 * dw[m][c][ki][kj] sums dy[m] times the input plane c shifted by (ki, kj).
 * A register tile holds the sums of up to 4 output channels times all kw
 * kernel columns of one kernel row, 16 outputs wide; for every output row
 * and 16 columns it loads those 4 rows of dy once and kw shifted pieces of
 * one input row, each with a mask that drops the columns in the padding.
 *
 * AVX-512 only, for its masked loads, and only where the rows are at least
 * 16 wide: on LeNet's 28-wide first layer this is 1.6x faster than
 * cnn_gemm with the patches; on its 10-wide second layer a third of every
 * vector idles and the tile's setup comes every ten rows, and cnn_gemm with
 * the patches is 3.3x faster. The forward pass alone runs rows 8 to 16 wide
 * two rows to a tile: LeNet's second layer then took 0.84 ms for 256 images
 * against 0.97 for im2col and cnn_gemm, but in training the patches are kept
 * for the weight gradient, and there im2col stays.
 *
 * The narrow kernel turns the tile around for such rows when there is no
 * padding: a vector holds 16 output channels of one column, a row's columns
 * are the register tile, and each input is a broadcast. No lane idles, and
 * the weights, laid out once per call with the channels innermost, are one
 * load per kernel offset. LeNet's conv2 in inference: 0.61 ms for 256 images
 * (204 GFLOP/s) against 0.84 for the row pairs; inference at batch 256 went
 * from 127k to 147k images/s, at batch 1 from 51k to 56k. Its weight
 * gradient is the same turn: a vector of dy's channels at one output (dy
 * transposed) times a broadcast input, for two kernel rows and every kernel
 * column at once. In training it replaces im2col, the product and the kept
 * patches: LeNet's step went from 5.6 to 5.3 ms and from 50 to 35 MB. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "conv_direct.h"
#include "simd.h"
#include "vmath.h"

#define DIRECT_KW_MAX 7 /* the weight-gradient tiles are unrolled over kw */

/* The direct kernels run g, with rows at least min_ow wide. */
static bool direct_fits(const cnn_conv_geom *g, int min_ow) {
#if CNN_HAVE_X86_KERNELS
    return cnn_simd_level() == CNN_SIMD_AVX512 && g->kw >= 1 && g->kw <= DIRECT_KW_MAX &&
           g->kh >= 1 && g->oh >= 1 && g->ow >= min_ow;
#else
    (void)g, (void)min_ow;
    return false;
#endif
}

bool cnn_conv_direct_ok(const cnn_conv_geom *g) { return direct_fits(g, 16); }

bool cnn_conv_direct_forward_ok(const cnn_conv_geom *g) { return direct_fits(g, 8); }

/* The narrow kernel's weights per input position: M rounded up to whole vectors. */
static int narrow_width(const cnn_conv_geom *g) { return (g->M + 15) / 16 * 16; }

/* The forward kernel's padded rows: whole vectors past ow, and the kernel's width. */
static int padded_width(const cnn_conv_geom *g) { return (g->ow + 15) / 16 * 16 + g->kw - 1; }

/* Rows 17 to 32 wide with a last tile of at most 6 channels (M % 8 in 1..6),
 * which fwd_tile4 takes from a padded copy of the image. */
static bool padded_rows(const cnn_conv_geom *g) {
    return g->ow > 16 && g->ow <= 32 && g->M % 8 != 0 && g->M % 8 <= 6;
}

size_t cnn_conv_direct_floats(const cnn_conv_geom *g) {
    if (!padded_rows(g)) return 0;
    /* One more row: the last output row, when oh is odd, still reads the row below. */
    return (size_t)padded_width(g) * ((size_t)g->C * (g->H + 2 * g->ph) + 1) + 16;
}

#if CNN_HAVE_X86_KERNELS
#include <immintrin.h>

/* xp = x with ph zero rows above and below each plane, pw zero columns on
 * the left, and zeros to padded_width on the right. */
static void pad_image(const cnn_conv_geom *g, const float *x, float *xp) {
    const int Wp = padded_width(g), Hp = g->H + 2 * g->ph;
    memset(xp, 0, cnn_conv_direct_floats(g) * sizeof(float));
    for (int c = 0; c < g->C; c++)
        for (int iy = 0; iy < g->H; iy++)
            memcpy(xp + ((size_t)c * Hp + iy + g->ph) * Wp + g->pw,
                   x + ((size_t)c * g->H + iy) * g->W, (size_t)g->W * sizeof(float));
}

/* Lanes [lo, hi) of 16. */
static inline __mmask16 lane_range(int lo, int hi) {
    if (lo < 0) lo = 0;
    if (hi > 16) hi = 16;
    return hi > lo ? (__mmask16)(((1u << hi) - 1u) & ~((1u << lo) - 1u)) : 0;
}

/* The 16 inputs x[row][s..s+15] that sit under outputs ox0..ox0+15 at kernel
 * column kj (s = ox0 - pw + kj): the lanes inside the row and before ow. */
static inline __mmask16 input_lanes(const cnn_conv_geom *g, int ox0, int kj) {
    const int s = ox0 - g->pw + kj;
    const int hi = g->W - s < g->ow - ox0 ? g->W - s : g->ow - ox0;
    return lane_range(-s, hi);
}

/* A pointer to x + off, where off may point before a row that a zero mask
 * keeps from being read. */
static inline const float *at(const float *x, ptrdiff_t off) {
    return (const float *)((uintptr_t)x + (uintptr_t)(off * (ptrdiff_t)sizeof(float)));
}

/* Outputs of mr (at most 8) channels in two vectors of 16 columns: row oy,
 * columns ox0.., and row oy1, columns ox1..: the next 16 columns of the same
 * row, or on rows at most 16 wide the same columns of the next row, so that
 * the second vector does not idle. For every input channel and kernel
 * offset, one masked load per vector and one broadcast weight per channel.
 * w points at the tile's first channel. */
CNN_TARGET_AVX512 __attribute__((always_inline)) static inline void
fwd_tile(const int mr, const cnn_conv_geom *g, const float *x, const float *w, const float *bias,
         float *y, int oy, int ox0, int oy1, int ox1) {
    const int HW = g->H * g->W, OP = g->oh * g->ow, K2 = g->kh * g->kw, WM = g->C * K2;
    const bool second = oy1 < g->oh && ox1 < g->ow;
    const __mmask16 om0 = lane_range(0, g->ow - ox0), om1 = second ? lane_range(0, g->ow - ox1) : 0;
    __mmask16 m0[DIRECT_KW_MAX], m1[DIRECT_KW_MAX];
    for (int kj = 0; kj < g->kw; kj++) {
        m0[kj] = input_lanes(g, ox0, kj);
        m1[kj] = second ? input_lanes(g, ox1, kj) : 0;
    }
    __m512 a[8], b[8];
    for (int r = 0; r < mr; r++)
        a[r] = b[r] = bias ? _mm512_set1_ps(bias[r]) : _mm512_setzero_ps();
    for (int c = 0; c < g->C; c++) {
        for (int ki = 0; ki < g->kh; ki++) {
            const int iy = oy - g->ph + ki, iy1 = oy1 - g->ph + ki;
            const bool in0 = iy >= 0 && iy < g->H, in1 = iy1 >= 0 && iy1 < g->H;
            if (!in0 && !in1) continue;
            const float *xr = at(x, c * HW + iy * g->W), *xr1 = at(x, c * HW + iy1 * g->W);
            const float *wk = w + c * K2 + ki * g->kw;
            for (int kj = 0; kj < g->kw; kj++) {
                const __m512 x0 =
                    _mm512_maskz_loadu_ps(in0 ? m0[kj] : 0, at(xr, ox0 - g->pw + kj));
                const __m512 x1 =
                    _mm512_maskz_loadu_ps(in1 ? m1[kj] : 0, at(xr1, ox1 - g->pw + kj));
                for (int r = 0; r < mr; r++) {
                    const __m512 wv = _mm512_set1_ps(wk[r * WM + kj]);
                    a[r] = _mm512_fmadd_ps(wv, x0, a[r]);
                    b[r] = _mm512_fmadd_ps(wv, x1, b[r]);
                }
            }
        }
    }
    for (int r = 0; r < mr; r++) {
        _mm512_mask_storeu_ps(y + r * OP + oy * g->ow + ox0, om0, a[r]);
        if (second) _mm512_mask_storeu_ps(y + r * OP + oy1 * g->ow + ox1, om1, b[r]);
    }
}

#define FWD(mr) fwd_tile(mr, g, x, wm, bm, ym, oy, ox0, oy1, ox1)

/* Rows 17 to 32 wide, up to 6 channels: two rows of two vectors each, 24
 * sums, so that each channel's weight, broadcast once, feeds four
 * multiply-adds instead of two. LeNet's conv1 on one thread: 1.9 us per
 * image against 2.5 with fwd_tile; inference at batch 1 6% faster. The
 * same sums in the same order as fwd_tile. xp is the image with its padding
 * laid out (pad_image), so every load is a whole vector and no row is
 * tested: the kernel rows that would read only padding are left out by
 * the loop's bounds, and the lanes past ow are never stored. */
CNN_TARGET_AVX512 __attribute__((always_inline)) static inline void
fwd_tile4(const int mr, const cnn_conv_geom *g, const float *xp, const float *w, const float *bias,
          float *y, int oy) {
    const int OP = g->oh * g->ow, K2 = g->kh * g->kw, WM = g->C * K2, Wp = padded_width(g);
    const int Hp = g->H + 2 * g->ph, HWp = Hp * Wp;
    const bool below = oy + 1 < g->oh;
    const __mmask16 om0 = lane_range(0, g->ow), om1 = lane_range(0, g->ow - 16), all = 0xffff;
    /* Padded rows oy + ki and oy + 1 + ki: at least one inside the image. */
    const int ki0 = g->ph - oy - 1 > 0 ? g->ph - oy - 1 : 0;
    const int ki1 = g->ph + g->H - oy < g->kh ? g->ph + g->H - oy : g->kh;
    __m512 a[6], b[6], c[6], d[6]; /* (oy, 0..15), (oy, 16..), (oy + 1, 0..15), (oy + 1, 16..) */
    for (int r = 0; r < mr; r++)
        a[r] = b[r] = c[r] = d[r] = bias ? _mm512_set1_ps(bias[r]) : _mm512_setzero_ps();
    for (int ch = 0; ch < g->C; ch++) {
        for (int ki = ki0; ki < ki1; ki++) {
            const float *xr = xp + ch * HWp + (oy + ki) * Wp, *xr1 = xr + Wp;
            const float *wk = w + ch * K2 + ki * g->kw;
            for (int kj = 0; kj < g->kw; kj++) {
                /* Masked loads with every lane on: a plain load would be
                 * folded into each of the multiply-adds below and read mr
                 * times (1.7 against 3.0 us for conv1's weight gradient). */
                const __m512 x00 = _mm512_maskz_loadu_ps(all, xr + kj);
                const __m512 x01 = _mm512_maskz_loadu_ps(all, xr + kj + 16);
                const __m512 x10 = _mm512_maskz_loadu_ps(all, xr1 + kj);
                const __m512 x11 = _mm512_maskz_loadu_ps(all, xr1 + kj + 16);
                for (int r = 0; r < mr; r++) {
                    const __m512 wv = _mm512_set1_ps(wk[r * WM + kj]);
                    a[r] = _mm512_fmadd_ps(wv, x00, a[r]);
                    b[r] = _mm512_fmadd_ps(wv, x01, b[r]);
                    c[r] = _mm512_fmadd_ps(wv, x10, c[r]);
                    d[r] = _mm512_fmadd_ps(wv, x11, d[r]);
                }
            }
        }
    }
    for (int r = 0; r < mr; r++) {
        float *yr = y + r * OP + oy * g->ow;
        _mm512_mask_storeu_ps(yr, om0, a[r]);
        _mm512_mask_storeu_ps(yr + 16, om1, b[r]);
        if (below) {
            _mm512_mask_storeu_ps(yr + g->ow, om0, c[r]);
            _mm512_mask_storeu_ps(yr + g->ow + 16, om1, d[r]);
        }
    }
}

#define FWD4(mr) fwd_tile4(mr, g, xp, wm, bm, ym, oy)

CNN_TARGET_AVX512 static void direct_avx512(const cnn_conv_geom *g, const float *x, const float *w,
                                            const float *bias, float *y, float *xp) {
    if (padded_rows(g)) pad_image(g, x, xp);
    for (int m0 = 0; m0 < g->M; m0 += 8) {
        const int mr = g->M - m0 < 8 ? g->M - m0 : 8;
        const float *wm = w + m0 * g->C * g->kh * g->kw, *bm = bias ? bias + m0 : NULL;
        float *ym = y + m0 * g->oh * g->ow;
        const bool pairs = g->ow <= 16; /* two rows per tile */
        if (padded_rows(g) && mr <= 6) {
            for (int oy = 0; oy < g->oh; oy += 2) {
                switch (mr) {
                case 6: FWD4(6); break;
                case 5: FWD4(5); break;
                case 4: FWD4(4); break;
                case 3: FWD4(3); break;
                case 2: FWD4(2); break;
                default: FWD4(1); break;
                }
            }
            continue;
        }
        for (int oy = 0; oy < g->oh; oy += pairs ? 2 : 1) {
            for (int ox0 = 0; ox0 < g->ow; ox0 += 32) {
                const int oy1 = pairs ? oy + 1 : oy, ox1 = pairs ? ox0 : ox0 + 16;
                switch (mr) {
                case 8: FWD(8); break;
                case 7: FWD(7); break;
                case 6: FWD(6); break;
                case 5: FWD(5); break;
                case 4: FWD(4); break;
                case 3: FWD(3); break;
                case 2: FWD(2); break;
                default: FWD(1); break;
                }
            }
        }
    }
}

/* Weight gradient of mr (at most 4) output channels, input channel c, kernel
 * row ki, all kw columns: acc[r][kj] gathers dy[m0+r] * x shifted by kj, 16
 * outputs at a time. */
CNN_TARGET_AVX512 __attribute__((always_inline)) static inline void
dw_tile(const int mr, const int kw, const cnn_conv_geom *g, const float *x, const float *dy,
        float *lanes, int m0, int c, int ki) {
    const int OP = g->oh * g->ow;
    __m512 acc[4][DIRECT_KW_MAX];
    for (int r = 0; r < mr; r++)
        for (int kj = 0; kj < kw; kj++)
            acc[r][kj] = _mm512_setzero_ps();
    /* The output rows whose input row iy = oy - ph + ki lies in the image;
     * pointers step a row at a time. */
    const int oy0 = g->ph - ki > 0 ? g->ph - ki : 0;
    const int oy1 = g->H + g->ph - ki < g->oh ? g->H + g->ph - ki : g->oh;
    const int W = g->W, ow = g->ow;
    for (int ox0 = 0; ox0 < ow; ox0 += 16) {
        const __mmask16 om = lane_range(0, ow - ox0);
        __mmask16 m[DIRECT_KW_MAX];
        for (int kj = 0; kj < kw; kj++)
            m[kj] = input_lanes(g, ox0, kj);
        const float *xr = at(x, (ptrdiff_t)(c * g->H + oy0 - g->ph + ki) * W + ox0 - g->pw);
        const float *dr[4];
        for (int r = 0; r < mr; r++)
            dr[r] = dy + (m0 + r) * OP + oy0 * ow + ox0;
        for (int oy = oy0; oy < oy1; oy++) {
            __m512 d[4];
            for (int r = 0; r < mr; r++) {
                d[r] = _mm512_maskz_loadu_ps(om, dr[r]);
                dr[r] += ow;
            }
            for (int kj = 0; kj < kw; kj++) {
                const __m512 xv = _mm512_maskz_loadu_ps(m[kj], at(xr, kj));
                for (int r = 0; r < mr; r++)
                    acc[r][kj] = _mm512_fmadd_ps(d[r], xv, acc[r][kj]);
            }
            xr = at(xr, W);
        }
    }
    for (int r = 0; r < mr; r++)
        for (int kj = 0; kj < kw; kj++) {
            float *l =
                lanes + ((size_t)(((m0 + r) * g->C + c) * g->kh + ki) * kw + kj) * CNN_DIRECT_LANES;
            _mm512_storeu_ps(l, _mm512_add_ps(_mm512_loadu_ps(l), acc[r][kj]));
        }
}

#define DW(mr, kw) dw_tile(mr, kw, g, x, dy, lanes, m0, c, ki)
#define DW_KW(kw)                                                                                  \
    switch (mr) {                                                                                  \
    case 4: DW(4, kw); break;                                                                      \
    case 3: DW(3, kw); break;                                                                      \
    case 2: DW(2, kw); break;                                                                      \
    default: DW(1, kw); break;                                                                     \
    }

CNN_TARGET_AVX512 static void direct_dw_avx512(const cnn_conv_geom *g, const float *x,
                                               const float *dy, float *lanes) {
    for (int m0 = 0; m0 < g->M; m0 += 4) {
        const int mr = g->M - m0 < 4 ? g->M - m0 : 4;
        for (int c = 0; c < g->C; c++) {
            for (int ki = 0; ki < g->kh; ki++) {
                switch (g->kw) {
                case 1: DW_KW(1); break;
                case 2: DW_KW(2); break;
                case 3: DW_KW(3); break;
                case 4: DW_KW(4); break;
                case 5: DW_KW(5); break;
                case 6: DW_KW(6); break;
                default: DW_KW(7); break;
                }
            }
        }
    }
}

/* One output row of the narrow kernel, nx columns, 16 channels from m0: a
 * vector of channels per column, and for every input channel and kernel
 * offset one vector of weights and a broadcast input per column; then the
 * vectors through t (16 x 16) into the channel planes. */
CNN_TARGET_AVX512 __attribute__((always_inline)) static inline void
narrow_row(const int nx, const cnn_conv_geom *g, const float *x, const float *wt, int Mp, int m0,
           __m512 bias, float *t, float *y, int oy) {
    __m512 acc[16];
    for (int p = 0; p < nx; p++)
        acc[p] = bias;
    const int HW = g->H * g->W;
    for (int c = 0; c < g->C; c++)
        for (int ki = 0; ki < g->kh; ki++) {
            const float *xr = x + c * HW + (oy + ki) * g->W;
            const float *wk = wt + (size_t)((c * g->kh + ki) * g->kw) * Mp + m0;
            for (int kj = 0; kj < g->kw; kj++) {
                const __m512 w = _mm512_loadu_ps(wk + (size_t)kj * Mp);
                for (int p = 0; p < nx; p++)
                    acc[p] = _mm512_fmadd_ps(_mm512_set1_ps(xr[kj + p]), w, acc[p]);
            }
        }
    for (int p = 0; p < nx; p++)
        _mm512_store_ps(t + p * 16, acc[p]);
    const int OP = g->oh * g->ow, mr = g->M - m0 < 16 ? g->M - m0 : 16;
    for (int r = 0; r < mr; r++)
        for (int p = 0; p < nx; p++)
            y[(m0 + r) * OP + oy * g->ow + p] = t[p * 16 + r];
}

/* The narrow kernel's weight gradient for input channel c, kernel rows ki
 * and ki + 1 (when two), 16 output channels from m0: acc[r][kj] gathers, over
 * every output, a broadcast input times the vector of dy's channels there. */
CNN_TARGET_AVX512 __attribute__((always_inline)) static inline void
narrow_dw_rows(const int kw, const bool two, const cnn_conv_geom *g, const float *x,
               const float *dyt, float *dwt, int m0, int c, int ki) {
    const __mmask16 mm = lane_range(0, g->M - m0);
    __m512 acc[2][DIRECT_KW_MAX];
    for (int r = 0; r < 2; r++)
        for (int kj = 0; kj < kw; kj++)
            acc[r][kj] = _mm512_setzero_ps();
    for (int oy = 0; oy < g->oh; oy++) {
        const float *x0 = x + (c * g->H + oy + ki) * g->W, *x1 = x0 + g->W;
        const float *dr = dyt + (size_t)(oy * g->ow) * g->M + m0;
        int ox = 0;
        /* Two outputs at a time share kw - 1 of their broadcasts: 2 + 2(kw + 1)
         * loads for 4kw multiply-adds, not 2 + 4kw (the loads held it back).
         * Each sum still takes the outputs in order. */
        for (; ox + 2 <= g->ow; ox += 2) {
            const __m512 d0 = _mm512_maskz_loadu_ps(mm, dr + (size_t)ox * g->M),
                         d1 = _mm512_maskz_loadu_ps(mm, dr + (size_t)(ox + 1) * g->M);
            for (int j = 0; j <= kw; j++) {
                const __m512 b0 = _mm512_set1_ps(x0[ox + j]);
                if (j < kw) acc[0][j] = _mm512_fmadd_ps(b0, d0, acc[0][j]);
                if (j > 0) acc[0][j - 1] = _mm512_fmadd_ps(b0, d1, acc[0][j - 1]);
                if (two) {
                    const __m512 b1 = _mm512_set1_ps(x1[ox + j]);
                    if (j < kw) acc[1][j] = _mm512_fmadd_ps(b1, d0, acc[1][j]);
                    if (j > 0) acc[1][j - 1] = _mm512_fmadd_ps(b1, d1, acc[1][j - 1]);
                }
            }
        }
        for (; ox < g->ow; ox++) {
            const __m512 d = _mm512_maskz_loadu_ps(mm, dr + (size_t)ox * g->M);
            for (int kj = 0; kj < kw; kj++) {
                acc[0][kj] = _mm512_fmadd_ps(_mm512_set1_ps(x0[ox + kj]), d, acc[0][kj]);
                if (two) acc[1][kj] = _mm512_fmadd_ps(_mm512_set1_ps(x1[ox + kj]), d, acc[1][kj]);
            }
        }
    }
    for (int r = 0; r < (two ? 2 : 1); r++)
        for (int kj = 0; kj < kw; kj++) {
            float *at = dwt + (size_t)((c * g->kh + ki + r) * g->kw + kj) * g->M + m0;
            _mm512_mask_storeu_ps(at, mm, _mm512_add_ps(_mm512_maskz_loadu_ps(mm, at), acc[r][kj]));
        }
}

#define NARROW_DW(kw)                                                                              \
    do {                                                                                           \
        if (ki + 1 < g->kh)                                                                        \
            narrow_dw_rows(kw, true, g, x, dyt, dwt, m0, c, ki);                                   \
        else                                                                                       \
            narrow_dw_rows(kw, false, g, x, dyt, dwt, m0, c, ki);                                  \
    } while (0)

CNN_TARGET_AVX512 static void narrow_dw_avx512(const cnn_conv_geom *g, const float *x,
                                               const float *dyt, float *dwt) {
    for (int m0 = 0; m0 < g->M; m0 += 16)
        for (int c = 0; c < g->C; c++)
            for (int ki = 0; ki < g->kh; ki += 2) {
                switch (g->kw) {
                case 1: NARROW_DW(1); break;
                case 2: NARROW_DW(2); break;
                case 3: NARROW_DW(3); break;
                case 4: NARROW_DW(4); break;
                case 5: NARROW_DW(5); break;
                case 6: NARROW_DW(6); break;
                default: NARROW_DW(7); break;
                }
            }
}

#define NARROW(nx) narrow_row(nx, g, x, wt, Mp, m0, b, t, y, oy)

CNN_TARGET_AVX512 static void narrow_avx512(const cnn_conv_geom *g, const float *x,
                                            const float *wt, const float *bias, float *y) {
    const int Mp = narrow_width(g);
    _Alignas(64) float t[16 * 16];
    for (int m0 = 0; m0 < g->M; m0 += 16) {
        const __m512 b = bias ? _mm512_maskz_loadu_ps(lane_range(0, g->M - m0), bias + m0)
                              : _mm512_setzero_ps();
        for (int oy = 0; oy < g->oh; oy++) {
            switch (g->ow) {
            case 8: NARROW(8); break;
            case 9: NARROW(9); break;
            case 10: NARROW(10); break;
            case 11: NARROW(11); break;
            case 12: NARROW(12); break;
            case 13: NARROW(13); break;
            case 14: NARROW(14); break;
            case 15: NARROW(15); break;
            default: NARROW(16); break;
            }
        }
    }
}
#endif

bool cnn_conv_narrow_ok(const cnn_conv_geom *g) {
#if CNN_HAVE_X86_KERNELS
    return cnn_simd_level() == CNN_SIMD_AVX512 && g->ph == 0 && g->pw == 0 && g->ow >= 8 &&
           g->ow <= 16 && g->oh == g->H - g->kh + 1 && g->ow == g->W - g->kw + 1 &&
           g->kw <= DIRECT_KW_MAX;
#else
    (void)g;
    return false;
#endif
}

size_t cnn_conv_narrow_floats(const cnn_conv_geom *g) {
    return (size_t)g->C * g->kh * g->kw * (size_t)narrow_width(g);
}

void cnn_conv_narrow_weights(const cnn_conv_geom *g, const float *w, float *wt) {
    const size_t K = (size_t)g->C * g->kh * g->kw, Mp = (size_t)narrow_width(g);
    for (size_t k = 0; k < K; k++)
        for (size_t m = 0; m < Mp; m++)
            wt[k * Mp + m] = m < (size_t)g->M ? w[m * K + k] : 0.0f;
}

void cnn_conv_narrow(const cnn_conv_geom *g, const float *x, const float *wt, const float *bias,
                     float *y) {
#if CNN_HAVE_X86_KERNELS
    narrow_avx512(g, x, wt, bias, y);
#else
    (void)g, (void)x, (void)wt, (void)bias, (void)y;
#endif
}

void cnn_conv_narrow_dw(const cnn_conv_geom *g, const float *x, const float *dyt, float *dwt) {
#if CNN_HAVE_X86_KERNELS
    narrow_dw_avx512(g, x, dyt, dwt);
#else
    (void)g, (void)x, (void)dyt, (void)dwt;
#endif
}

void cnn_conv_direct(const cnn_conv_geom *g, const float *x, const float *w, const float *bias,
                     float *y, float *scratch) {
#if CNN_HAVE_X86_KERNELS
    direct_avx512(g, x, w, bias, y, scratch);
#else
    (void)g, (void)x, (void)w, (void)bias, (void)y, (void)scratch;
#endif
}

void cnn_conv_direct_dw(const cnn_conv_geom *g, const float *x, const float *dy, float *lanes) {
#if CNN_HAVE_X86_KERNELS
    direct_dw_avx512(g, x, dy, lanes);
#else
    (void)g, (void)x, (void)dy, (void)lanes;
#endif
}

/* The generic path: row sums by cnn_vsum. */
static void transpose_sum_generic(const float *dy, int M, int P, float *dyt, float *db) {
    for (int o = 0; o < M; o++) {
        const float *row = dy + (size_t)o * P;
        db[o] += cnn_vsum(row, P);
        for (int i = 0; i < P; i++)
            dyt[(size_t)i * M + o] = row[i];
    }
}

#if CNN_HAVE_X86_KERNELS
/* r[i] lane j <- r[j] lane i: two-lane, four-lane, then 128-bit shuffles. */
CNN_TARGET_AVX512 static inline void transpose16(__m512 r[16]) {
    __m512 t[16], u[16];
    for (int k = 0; k < 16; k += 2) {
        t[k] = _mm512_unpacklo_ps(r[k], r[k + 1]);
        t[k + 1] = _mm512_unpackhi_ps(r[k], r[k + 1]);
    }
    for (int k = 0; k < 16; k += 4) {
        const __m512d a = _mm512_castps_pd(t[k]), b = _mm512_castps_pd(t[k + 1]),
                      c = _mm512_castps_pd(t[k + 2]), d = _mm512_castps_pd(t[k + 3]);
        u[k] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
        u[k + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
        u[k + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));
        u[k + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
    }
    /* u[4q + j] lane (4l + e) holds r[4q + e] at column 4l + j, l the 128-bit lane. */
    for (int k = 0; k < 16; k += 8)
        for (int j = 0; j < 4; j++) {
            t[k + j] = _mm512_shuffle_f32x4(u[k + j], u[k + 4 + j], 0x88);
            t[k + 4 + j] = _mm512_shuffle_f32x4(u[k + j], u[k + 4 + j], 0xdd);
        }
    for (int j = 0; j < 8; j++) {
        r[j] = _mm512_shuffle_f32x4(t[j], t[8 + j], 0x88);
        r[8 + j] = _mm512_shuffle_f32x4(t[j], t[8 + j], 0xdd);
    }
}

/* 16 channels by 16 columns at a time: masked loads, a register transpose,
 * masked stores; the transposed rows summed into the channels' lanes (16
 * terms in float, then double). */
CNN_TARGET_AVX512 static void transpose_sum_avx512(const float *dy, int M, int P, float *dyt,
                                                   float *db) {
    for (int o0 = 0; o0 < M; o0 += 16) {
        const int m = M - o0 < 16 ? M - o0 : 16;
        const __mmask16 om = (__mmask16)((1u << m) - 1);
        __m512d lo = _mm512_setzero_pd(), hi = _mm512_setzero_pd();
        for (int i0 = 0; i0 < P; i0 += 16) {
            const int n = P - i0 < 16 ? P - i0 : 16;
            const __mmask16 im = (__mmask16)((1u << n) - 1);
            __m512 r[16];
            for (int o = 0; o < 16; o++)
                r[o] = o < m ? _mm512_maskz_loadu_ps(im, dy + (size_t)(o0 + o) * P + i0)
                             : _mm512_setzero_ps();
            transpose16(r);
            __m512 acc = r[0];
            _mm512_mask_storeu_ps(dyt + (size_t)i0 * M + o0, om, r[0]);
            for (int i = 1; i < n; i++) {
                _mm512_mask_storeu_ps(dyt + (size_t)(i0 + i) * M + o0, om, r[i]);
                acc = _mm512_add_ps(acc, r[i]);
            }
            lo = _mm512_add_pd(lo, _mm512_cvtps_pd(_mm512_castps512_ps256(acc)));
            hi = _mm512_add_pd(hi, _mm512_cvtps_pd(_mm256_castpd_ps(
                                       _mm512_extractf64x4_pd(_mm512_castps_pd(acc), 1))));
        }
        double sum[16];
        _mm512_storeu_pd(sum, lo);
        _mm512_storeu_pd(sum + 8, hi);
        for (int o = 0; o < m; o++)
            db[o0 + o] += (float)sum[o];
    }
}
#endif

void cnn_conv_transpose_sum(const float *dy, int M, int P, float *dyt, float *db) {
#if CNN_HAVE_X86_KERNELS
    if (cnn_simd_level() == CNN_SIMD_AVX512) {
        transpose_sum_avx512(dy, M, P, dyt, db);
        return;
    }
#endif
    transpose_sum_generic(dy, M, P, dyt, db);
}
