/* lanes.c - convolution and pooling on 16 images at once, one image per
 * vector lane (lanes.h), for training small models.
 *
 * LeNet's layers are too small for their rows to fill vectors: a 10-wide
 * row leaves 6 of 16 lanes idle, a 28-wide one 4 of 32, and the input
 * gradient of a 5x5 kernel on a 10x10 output is a product of 150 x 16 by
 * 16 x 100 and a col2im. With an image in each lane every vector is full
 * whatever the shape, a weight is a broadcast and an input a plain load:
 *
 * - forward, a register tile holds up to 4 output channels times up to 7
 *   columns of one output row; for each input channel and kernel offset it
 *   loads the 7 inputs under them and multiplies each by the channels'
 *   broadcast weights;
 * - the weight gradient keeps a vector of sums per weight (each lane one
 *   image's share) for up to 4 channels times a kernel row, loading dy and
 *   the input rows' shifted vectors at every output; the lanes are added up
 *   once per batch;
 * - the input gradient adds, for each row of the padded input, the products
 *   of up to 10 dy vectors of a row with a kernel row into a window of
 *   registers: every product is one that the convolution has, none falls
 *   outside, and nothing goes through memory but the window's sum.
 *
 * Everything is for AVX-512 (cnn_lanes_conv_ok); the register tiles are
 * unrolled by their sizes, which a switch picks. */
#include <string.h>

#include "lanes.h"
#include "simd.h"
#include "vmath.h"

#define L CNN_LANES

/* 16 rows of n <= 16 floats, row l at x + l*stride, into dst[j*16 + l]
 * (rows_to_lanes), and back (lanes_to_rows, adding with add). */
static void rows_to_lanes_generic(const float *x, size_t stride, int n, float *dst) {
    for (int l = 0; l < L; l++)
        for (int j = 0; j < n; j++)
            dst[(size_t)j * L + l] = x[(size_t)l * stride + j];
}

static void lanes_to_rows_generic(const float *src, int n, float *x, size_t stride, bool add) {
    for (int l = 0; l < L; l++)
        for (int j = 0; j < n; j++) {
            float *o = x + (size_t)l * stride + j;
            *o = add ? *o + src[(size_t)j * L + l] : src[(size_t)j * L + l];
        }
}

#if CNN_HAVE_X86_KERNELS
#include <immintrin.h>

/* r[i][j] <- r[j][i]: pairs, then quads, then 128-bit quarters. */
CNN_TARGET_AVX512 __attribute__((always_inline)) static inline void transpose16(__m512 r[16]) {
    __m512 t[16];
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int i = 0; i < 16; i += 4)
        for (int h = 0; h < 2; h++) {
            const __m512d a = _mm512_castps_pd(t[i + h]), b = _mm512_castps_pd(t[i + h + 2]);
            r[i + 2 * h] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, b));
            r[i + 2 * h + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, b));
        }
    for (int i = 0; i < 16; i += 8)
        for (int j = 0; j < 4; j++) {
            t[i + j] = _mm512_shuffle_f32x4(r[i + j], r[i + j + 4], 0x88);
            t[i + j + 4] = _mm512_shuffle_f32x4(r[i + j], r[i + j + 4], 0xdd);
        }
    for (int j = 0; j < 8; j++) {
        r[j] = _mm512_shuffle_f32x4(t[j], t[j + 8], 0x88);
        r[j + 8] = _mm512_shuffle_f32x4(t[j], t[j + 8], 0xdd);
    }
}

CNN_TARGET_AVX512 static void rows_to_lanes_avx512(const float *x, size_t stride, int n,
                                                   float *dst) {
    const __mmask16 k = (__mmask16)((1u << n) - 1u);
    __m512 r[16];
    for (int l = 0; l < L; l++)
        r[l] = _mm512_maskz_loadu_ps(k, x + (size_t)l * stride);
    transpose16(r);
    for (int j = 0; j < n; j++)
        _mm512_storeu_ps(dst + (size_t)j * L, r[j]);
}

CNN_TARGET_AVX512 static void lanes_to_rows_avx512(const float *src, int n, float *x, size_t stride,
                                                   bool add) {
    const __mmask16 k = (__mmask16)((1u << n) - 1u);
    __m512 r[16];
    for (int j = 0; j < 16; j++)
        r[j] = j < n ? _mm512_loadu_ps(src + (size_t)j * L) : _mm512_setzero_ps();
    transpose16(r);
    for (int l = 0; l < L; l++) {
        float *o = x + (size_t)l * stride;
        _mm512_mask_storeu_ps(o, k, add ? _mm512_add_ps(_mm512_maskz_loadu_ps(k, o), r[l]) : r[l]);
    }
}
#endif

/* On AVX-512, 16 by 16 in registers: LeNet's input padded into lanes took
 * 0.079 us per image against 0.254 element by element, its 400 features
 * into lanes and back 0.061 against 0.211. */
static void rows_to_lanes(const float *x, size_t stride, int n, float *dst) {
#if CNN_HAVE_X86_KERNELS
    if (cnn_simd_level() == CNN_SIMD_AVX512) {
        rows_to_lanes_avx512(x, stride, n, dst);
        return;
    }
#endif
    rows_to_lanes_generic(x, stride, n, dst);
}

static void lanes_to_rows(const float *src, int n, float *x, size_t stride, bool add) {
#if CNN_HAVE_X86_KERNELS
    if (cnn_simd_level() == CNN_SIMD_AVX512) {
        lanes_to_rows_avx512(src, n, x, stride, add);
        return;
    }
#endif
    lanes_to_rows_generic(src, n, x, stride, add);
}

void cnn_lanes_gather(const float *x, size_t per, float *xl) {
    for (size_t i0 = 0; i0 < per; i0 += 16)
        rows_to_lanes(x + i0, per, per - i0 < 16 ? (int)(per - i0) : 16, xl + i0 * L);
}

void cnn_lanes_scatter(const float *xl, size_t per, float *x, bool add) {
    for (size_t i0 = 0; i0 < per; i0 += 16)
        lanes_to_rows(xl + i0 * L, per - i0 < 16 ? (int)(per - i0) : 16, x + i0, per, add);
}

static int padded_h(const cnn_conv_geom *g) { return g->H + 2 * g->ph; }
static int padded_w(const cnn_conv_geom *g) { return g->W + 2 * g->pw; }

size_t cnn_lanes_pad_floats(const cnn_conv_geom *g) {
    return (size_t)g->C * padded_h(g) * padded_w(g) * L;
}

void cnn_lanes_pad(const cnn_conv_geom *g, const float *x, bool images, float *xp) {
    const int Hp = padded_h(g), Wp = padded_w(g);
    const size_t per = (size_t)g->C * g->H * g->W;
    for (int c = 0; c < g->C; c++)
        for (int py = 0; py < Hp; py++) {
            float *row = xp + ((size_t)c * Hp + py) * Wp * L;
            const int iy = py - g->ph;
            if (iy < 0 || iy >= g->H) {
                memset(row, 0, (size_t)Wp * L * sizeof(float));
                continue;
            }
            memset(row, 0, (size_t)g->pw * L * sizeof(float));
            memset(row + (size_t)(g->pw + g->W) * L, 0, (size_t)g->pw * L * sizeof(float));
            float *dst = row + (size_t)g->pw * L;
            const size_t at = ((size_t)c * g->H + iy) * g->W;
            if (!images) {
                memcpy(dst, x + at * L, (size_t)g->W * L * sizeof(float));
                continue;
            }
            for (int ix = 0; ix < g->W; ix += 16)
                rows_to_lanes(x + at + ix, per, g->W - ix < 16 ? g->W - ix : 16,
                              dst + (size_t)ix * L);
        }
}

void cnn_lanes_reduce(const float *lanes, size_t n, float *out) {
    for (size_t i = 0; i < n; i++) {
        float s = 0.0f;
        for (int l = 0; l < L; l++)
            s += lanes[i * L + l];
        out[i] += s;
    }
}

#if CNN_HAVE_X86_KERNELS

#define FWD_MT 4  /* output channels per forward tile, at most */
#define FWD_R  7  /* columns per forward tile, at most */
#define DX_R   10 /* dy columns per input-gradient window, at most */
#define KW_MAX 7

bool cnn_lanes_conv_ok(const cnn_conv_geom *g) {
    return cnn_simd_level() == CNN_SIMD_AVX512 && g->kh >= 1 && g->kh <= KW_MAX && g->kw >= 1 &&
           g->kw <= KW_MAX && g->ph >= 0 && g->ph < g->kh && g->pw >= 0 && g->pw < g->kw &&
           g->oh >= 1 && g->ow >= 1 && g->C >= 1 && g->M >= 1;
}

/* Outputs of MT channels from m0, R columns from ox0 of row oy. */
CNN_TARGET_AVX512 __attribute__((always_inline)) static inline void
fwd_tile(const int MT, const int R, const cnn_conv_geom *g, const float *xp, const float *w,
         const float *bias, float *y, int m0, int oy, int ox0) {
    const int Hp = padded_h(g), Wp = padded_w(g), K2 = g->kh * g->kw, CK = g->C * K2;
    __m512 acc[FWD_MT][FWD_R];
    for (int m = 0; m < MT; m++) {
        const __m512 b = _mm512_set1_ps(bias ? bias[m0 + m] : 0.0f);
        for (int r = 0; r < R; r++)
            acc[m][r] = b;
    }
    for (int c = 0; c < g->C; c++)
        for (int ki = 0; ki < g->kh; ki++) {
            const float *row = xp + (((size_t)c * Hp + oy + ki) * Wp + ox0) * L;
            const float *wr = w + (size_t)m0 * CK + c * K2 + ki * g->kw;
            for (int kj = 0; kj < g->kw; kj++) {
                __m512 xv[FWD_R];
                for (int r = 0; r < R; r++)
                    xv[r] = _mm512_loadu_ps(row + (size_t)(r + kj) * L);
                for (int m = 0; m < MT; m++) {
                    const __m512 wv = _mm512_set1_ps(wr[(size_t)m * CK + kj]);
                    for (int r = 0; r < R; r++)
                        acc[m][r] = _mm512_fmadd_ps(wv, xv[r], acc[m][r]);
                }
            }
        }
    for (int m = 0; m < MT; m++)
        for (int r = 0; r < R; r++)
            _mm512_storeu_ps(y + (((size_t)(m0 + m) * g->oh + oy) * g->ow + ox0 + r) * L,
                             acc[m][r]);
}

#define FWD_CASE(MT, R)                                                                            \
    case (MT)*8 + (R):                                                                             \
        fwd_tile(MT, R, g, xp, w, bias, y, m0, oy, ox0);                                           \
        break;
#define FWD_ROW(MT)                                                                                \
    FWD_CASE(MT, 1)                                                                                \
    FWD_CASE(MT, 2)                                                                                \
    FWD_CASE(MT, 3) FWD_CASE(MT, 4) FWD_CASE(MT, 5) FWD_CASE(MT, 6) FWD_CASE(MT, 7)

CNN_TARGET_AVX512 static void fwd_any(int mt, int r, const cnn_conv_geom *g, const float *xp,
                                      const float *w, const float *bias, float *y, int m0, int oy,
                                      int ox0) {
    switch (mt * 8 + r) {
        FWD_ROW(1)
        FWD_ROW(2)
        FWD_ROW(3)
        FWD_ROW(4)
    default: break;
    }
}

/* Piece k of n equal pieces of [0, len): [k*len/n, (k+1)*len/n). */
static int piece(int len, int n, int k) { return (int)((long)k * len / n); }

/* Rows this far ahead of the one being computed are fetched. */
#define LANES_AHEAD 2

/* n floats from p fetched into L1, for writing when write. A layer's
 * outputs and gradients were last touched a step ago: each store would
 * otherwise wait for its line (LeNet's conv1 forward, sigmoid included,
 * with its outputs out of the caches: 3.05-3.62 -> 2.62-2.65 us per image;
 * 2.51-2.68 with them in L2). */
CNN_TARGET_AVX512 static void fetch(const float *p, size_t n, bool write) {
    const char *c = (const char *)p;
    for (size_t b = 0; b < n * sizeof(float); b += 64)
        if (write)
            _mm_prefetch(c + b, _MM_HINT_ET0);
        else
            _mm_prefetch(c + b, _MM_HINT_T0);
}

/* Output row oy of every channel, fetched for writing. */
CNN_TARGET_AVX512 static void prefetch_row(float *y, const cnn_conv_geom *g, int oy) {
    for (int m = 0; m < g->M; m++)
        fetch(y + ((size_t)m * g->oh + oy) * g->ow * L, (size_t)g->ow * L, true);
}

void cnn_lanes_conv(const cnn_conv_geom *g, const float *xp, const float *w, const float *bias,
                    bool has_act, cnn_op act, float *y) {
    const int nm = (g->M + FWD_MT - 1) / FWD_MT, nr = (g->ow + FWD_R - 1) / FWD_R;
    for (int oy = 0; oy < g->oh; oy++) {
        if (oy + LANES_AHEAD < g->oh) prefetch_row(y, g, oy + LANES_AHEAD);
        for (int i = 0; i < nr; i++) {
            const int ox0 = piece(g->ow, nr, i), r = piece(g->ow, nr, i + 1) - ox0;
            for (int j = 0; j < nm; j++) {
                const int m0 = piece(g->M, nm, j);
                fwd_any(piece(g->M, nm, j + 1) - m0, r, g, xp, w, bias, y, m0, oy, ox0);
            }
        }
        /* The row's activation while it is in L1. */
        if (has_act)
            for (int m = 0; m < g->M; m++) {
                float *row = y + ((size_t)m * g->oh + oy) * g->ow * L;
                cnn_vactivation(act, row, row, (size_t)g->ow * L);
            }
    }
}

/* The lane sums of MT channels' weights from m0, input channel c, kernel row ki. */
CNN_TARGET_AVX512 __attribute__((always_inline)) static inline void
dw_tile(const int MT, const int KW, const cnn_conv_geom *g, const float *xp, const float *dy,
        float *dw, int m0, int c, int ki) {
    const int Hp = padded_h(g), Wp = padded_w(g), K2 = g->kh * KW, CK = g->C * K2;
    const size_t P = (size_t)g->oh * g->ow;
    float *base = dw + ((size_t)m0 * CK + c * K2 + ki * KW) * L;
    __m512 acc[FWD_MT][KW_MAX];
    for (int m = 0; m < MT; m++)
        for (int kj = 0; kj < KW; kj++)
            acc[m][kj] = _mm512_loadu_ps(base + ((size_t)m * CK + kj) * L);
    for (int oy = 0; oy < g->oh; oy++) {
        const float *xr = xp + ((size_t)c * Hp + oy + ki) * Wp * L;
        const float *dr = dy + ((size_t)m0 * P + (size_t)oy * g->ow) * L;
        for (int ox = 0; ox < g->ow; ox++) {
            __m512 xv[KW_MAX];
            for (int kj = 0; kj < KW; kj++)
                xv[kj] = _mm512_loadu_ps(xr + (size_t)(ox + kj) * L);
            for (int m = 0; m < MT; m++) {
                const __m512 d = _mm512_loadu_ps(dr + ((size_t)m * P + ox) * L);
                for (int kj = 0; kj < KW; kj++)
                    acc[m][kj] = _mm512_fmadd_ps(d, xv[kj], acc[m][kj]);
            }
        }
    }
    for (int m = 0; m < MT; m++)
        for (int kj = 0; kj < KW; kj++)
            _mm512_storeu_ps(base + ((size_t)m * CK + kj) * L, acc[m][kj]);
}

#define DW_CASE(MT, KW)                                                                            \
    case (MT)*8 + (KW):                                                                            \
        dw_tile(MT, KW, g, xp, dy, dw, m0, c, ki);                                                 \
        break;
#define DW_ROW(MT)                                                                                 \
    DW_CASE(MT, 1)                                                                                 \
    DW_CASE(MT, 2)                                                                                 \
    DW_CASE(MT, 3) DW_CASE(MT, 4) DW_CASE(MT, 5) DW_CASE(MT, 6) DW_CASE(MT, 7)

CNN_TARGET_AVX512 static void dw_any(int mt, const cnn_conv_geom *g, const float *xp,
                                     const float *dy, float *dw, int m0, int c, int ki) {
    switch (mt * 8 + g->kw) {
        DW_ROW(1)
        DW_ROW(2)
        DW_ROW(3)
        DW_ROW(4)
    default: break;
    }
}

CNN_TARGET_AVX512 void cnn_lanes_conv_dw(const cnn_conv_geom *g, const float *xp, const float *dy,
                                         float *dw, float *db) {
    /* 4 channels by kw sums and kw inputs fit the 32 registers up to kw = 5. */
    const int most = g->kw <= 5 ? 4 : 3, nm = (g->M + most - 1) / most;
    for (int j = 0; j < nm; j++) {
        const int m0 = piece(g->M, nm, j), mt = piece(g->M, nm, j + 1) - m0;
        for (int c = 0; c < g->C; c++)
            for (int ki = 0; ki < g->kh; ki++)
                dw_any(mt, g, xp, dy, dw, m0, c, ki);
    }
    if (!db) return;
    /* Four sums a channel, so that the additions do not wait on each other:
     * one chain of 784 on LeNet's conv1 took 0.3 us per image. */
    const size_t P = (size_t)g->oh * g->ow;
    for (int m = 0; m < g->M; m++) {
        const float *d = dy + (size_t)m * P * L;
        __m512 s[4] = {_mm512_loadu_ps(db + (size_t)m * L), _mm512_setzero_ps(),
                       _mm512_setzero_ps(), _mm512_setzero_ps()};
        size_t i = 0;
        for (; i + 4 <= P; i += 4)
            for (int e = 0; e < 4; e++)
                s[e] = _mm512_add_ps(s[e], _mm512_loadu_ps(d + (i + (size_t)e) * L));
        for (; i < P; i++)
            s[0] = _mm512_add_ps(s[0], _mm512_loadu_ps(d + i * L));
        _mm512_storeu_ps(db + (size_t)m * L,
                         _mm512_add_ps(_mm512_add_ps(s[0], s[1]), _mm512_add_ps(s[2], s[3])));
    }
}

/* Row py of the padded input gradient of channel c, padded columns
 * [ox0, ox0 + R + KW - 1): the products of dy's columns [ox0, ox0 + R) of
 * the rows py - ki with the kernels' rows ki, added into dx. */
CNN_TARGET_AVX512 __attribute__((always_inline)) static inline void
dx_tile(const int R, const int KW, const cnn_conv_geom *g, const float *w, const float *dy,
        float *dx, int c, int py, int ox0) {
    __m512 acc[DX_R + KW_MAX - 1];
    for (int j = 0; j < R + KW - 1; j++)
        acc[j] = _mm512_setzero_ps();
    for (int ki = 0; ki < g->kh; ki++) {
        const int oy = py - ki;
        if (oy < 0 || oy >= g->oh) continue;
        for (int m = 0; m < g->M; m++) {
            const float *dr = dy + (((size_t)m * g->oh + oy) * g->ow + ox0) * L;
            const float *wr = w + (((size_t)m * g->C + c) * g->kh + ki) * KW;
            __m512 dv[DX_R];
            for (int r = 0; r < R; r++)
                dv[r] = _mm512_loadu_ps(dr + (size_t)r * L);
            for (int kj = 0; kj < KW; kj++) {
                const __m512 wv = _mm512_set1_ps(wr[kj]);
                for (int r = 0; r < R; r++)
                    acc[r + kj] = _mm512_fmadd_ps(wv, dv[r], acc[r + kj]);
            }
        }
    }
    float *row = dx + ((size_t)c * g->H + py - g->ph) * g->W * L;
    for (int j = 0; j < R + KW - 1; j++) {
        const int ix = ox0 + j - g->pw;
        if (ix < 0 || ix >= g->W) continue;
        float *at = row + (size_t)ix * L;
        _mm512_storeu_ps(at, _mm512_add_ps(_mm512_loadu_ps(at), acc[j]));
    }
}

#define DX_CASE(R, KW)                                                                             \
    case (R)*8 + (KW):                                                                             \
        dx_tile(R, KW, g, w, dy, dx, c, py, ox0);                                                  \
        break;
#define DX_ROW(R)                                                                                  \
    DX_CASE(R, 1)                                                                                  \
    DX_CASE(R, 2) DX_CASE(R, 3) DX_CASE(R, 4) DX_CASE(R, 5) DX_CASE(R, 6) DX_CASE(R, 7)

CNN_TARGET_AVX512 static void dx_any(int r, const cnn_conv_geom *g, const float *w, const float *dy,
                                     float *dx, int c, int py, int ox0) {
    switch (r * 8 + g->kw) {
        DX_ROW(1)
        DX_ROW(2)
        DX_ROW(3)
        DX_ROW(4)
        DX_ROW(5)
        DX_ROW(6)
        DX_ROW(7)
        DX_ROW(8)
        DX_ROW(9)
        DX_ROW(10)
    default: break;
    }
}

void cnn_lanes_conv_dx(const cnn_conv_geom *g, const float *w, const float *dy, float *dx) {
    const int nr = (g->ow + DX_R - 1) / DX_R;
    for (int c = 0; c < g->C; c++)
        for (int py = g->ph; py < g->ph + g->H; py++) {
            const int ahead = py - g->ph + LANES_AHEAD;
            if (ahead < g->H)
                fetch(dx + ((size_t)c * g->H + ahead) * g->W * L, (size_t)g->W * L, true);
            for (int i = 0; i < nr; i++) {
                const int ox0 = piece(g->ow, nr, i);
                dx_any(piece(g->ow, nr, i + 1) - ox0, g, w, dy, dx, c, py, ox0);
            }
        }
}

CNN_TARGET_AVX512 void cnn_lanes_avgpool2(const float *x, int C, int H, int W, float *y) {
    const int oh = H / 2, ow = W / 2;
    const __m512 quarter = _mm512_set1_ps(0.25f); /* x * 0.25 is x / 4 to the bit */
    for (int c = 0; c < C; c++)
        for (int oy = 0; oy < oh; oy++) {
            const float *r0 = x + ((size_t)c * H + 2 * oy) * W * L, *r1 = r0 + (size_t)W * L;
            float *yr = y + ((size_t)c * oh + oy) * ow * L;
            fetch(yr, (size_t)ow * L, true);
            for (int ox = 0; ox < ow; ox++) {
                const size_t a = (size_t)2 * ox * L;
                __m512 s = _mm512_add_ps(_mm512_loadu_ps(r0 + a), _mm512_loadu_ps(r0 + a + L));
                s = _mm512_add_ps(s, _mm512_loadu_ps(r1 + a));
                s = _mm512_add_ps(s, _mm512_loadu_ps(r1 + a + L));
                _mm512_storeu_ps(yr + (size_t)ox * L, _mm512_mul_ps(s, quarter));
            }
        }
}

/* act'(y) times v, as pool2_act_row in vmath.c orders the products. */
CNN_TARGET_AVX512 __attribute__((always_inline)) static inline __m512
act_grad(bool fused, cnn_op act, __m512 v, __m512 y) {
    if (!fused) return v;
    const __m512 one = _mm512_set1_ps(1.0f);
    switch (act) {
    case CNN_OP_RELU:
        return _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(y, _mm512_setzero_ps(), _CMP_GT_OQ), v);
    case CNN_OP_SIGMOID: return _mm512_mul_ps(_mm512_mul_ps(v, y), _mm512_sub_ps(one, y));
    default: return _mm512_mul_ps(v, _mm512_sub_ps(one, _mm512_mul_ps(y, y)));
    }
}

CNN_TARGET_AVX512 void cnn_lanes_avgpool2_backward(bool fused, cnn_op act, float *dx,
                                                   const float *y, const float *dy, int C, int H,
                                                   int W, bool add) {
    const int oh = H / 2, ow = W / 2;
    const __m512 quarter = _mm512_set1_ps(0.25f); /* x * 0.25 is x / 4 to the bit */
    for (int c = 0; c < C; c++)
        for (int iy = 0; iy < H; iy++) {
            const size_t at = ((size_t)c * H + iy) * W * L;
            float *d = dx + at;
            const float *yr = y + at, *g = dy + ((size_t)c * oh + iy / 2) * ow * L;
            if (iy + LANES_AHEAD < H) {
                fetch(d + (size_t)LANES_AHEAD * W * L, (size_t)W * L, true);
                fetch(yr + (size_t)LANES_AHEAD * W * L, (size_t)W * L, false);
            }
            for (int ix = 0; ix < W; ix++) {
                __m512 v = _mm512_setzero_ps();
                if (iy < 2 * oh && ix < 2 * ow) {
                    v = _mm512_mul_ps(_mm512_loadu_ps(g + (size_t)(ix / 2) * L), quarter);
                    v = act_grad(fused, act, v, _mm512_loadu_ps(yr + (size_t)ix * L));
                }
                float *o = d + (size_t)ix * L;
                _mm512_storeu_ps(o, add ? _mm512_add_ps(_mm512_loadu_ps(o), v) : v);
            }
        }
}

#else

bool cnn_lanes_conv_ok(const cnn_conv_geom *g) {
    (void)g;
    return false;
}

/* Never called: cnn_lanes_conv_ok is false without the x86 kernels. */
void cnn_lanes_conv(const cnn_conv_geom *g, const float *xp, const float *w, const float *bias,
                    bool has_act, cnn_op act, float *y) {
    (void)g, (void)xp, (void)w, (void)bias, (void)has_act, (void)act, (void)y;
}
void cnn_lanes_conv_dw(const cnn_conv_geom *g, const float *xp, const float *dy, float *dw,
                       float *db) {
    (void)g, (void)xp, (void)dy, (void)dw, (void)db;
}
void cnn_lanes_conv_dx(const cnn_conv_geom *g, const float *w, const float *dy, float *dx) {
    (void)g, (void)w, (void)dy, (void)dx;
}
void cnn_lanes_avgpool2(const float *x, int C, int H, int W, float *y) {
    (void)x, (void)C, (void)H, (void)W, (void)y;
}
void cnn_lanes_avgpool2_backward(bool fused, cnn_op act, float *dx, const float *y, const float *dy,
                                 int C, int H, int W, bool add) {
    (void)fused, (void)act, (void)dx, (void)y, (void)dy, (void)C, (void)H, (void)W, (void)add;
}

#endif
