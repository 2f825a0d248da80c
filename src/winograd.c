/* winograd.c - stride-1 convolutions by Winograd's minimal filtering
 * (Lavin and Gray, "Fast Algorithms for Convolutional Neural Networks", 2015):
 * F(2x2, 3x3), F(4x4, 3x3) and F(4x4, 5x5).
 *
 * Each m x m block of outputs is computed from the n x n block of inputs
 * under it (n = m + r - 1): with d the input tile and g the r x r kernel,
 * Y = AT [(G g GT) . (BT d B)] A, where . multiplies element by element.
 * Summed over input channels, each of the n^2 elements is a matrix product
 * over all tiles:
 *   M[e] (OC, T) = U[e] (OC, C) V[e] (C, T),  e = 0..n^2-1,
 * U = the transformed kernels, V = the transformed input tiles. Per output
 * that is n^2/m^2 multiplications instead of r^2: 4 for F(2x2, 3x3) and 2.25
 * for F(4x4, 3x3) instead of 9, 4 for F(4x4, 5x5) instead of 25; the
 * products are OpenBLAS's matrix products, one per thread at a time.
 *
 * The transforms (winograd_tables.h, derived by tools/winograd_matrices.py)
 * run on 16 tiles side by side, one per vector lane: one body, compiled for
 * AVX-512, AVX2 and the baseline, with each variant's matrices constants the
 * compiler folds in (terms with a zero coefficient are never computed). The
 * tables' points keep the float32 error near the direct sum's: over 256
 * channels, at most 6e-7 of the sum of the terms' magnitudes for F(4x4, 3x3)
 * and 1e-6 for F(4x4, 5x5), 1.5e-6 for the weight gradient's F(5x5, 4x4)
 * (the script measures it; test_kernels holds the F(4x4, .) layers to 4e-6
 * and F(2x2, 3x3) to 1e-6, as im2col). */
#include <cblas.h>
#include <omp.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include "parallel.h"
#include "simd.h"
#include "winograd.h"
#include "winograd_tables.h"

#define WL   16 /* tiles transformed side by side: the lanes of the vector code */
/* GCC unrolls the transforms' loops fully, so that the tables' entries
 * become constants (AlexNet's training step is 25% slower without). Clang
 * took over ten minutes on the unrolled file under the fuzz build's
 * sanitizers: it is left to its own choices. */
#if defined(__clang__)
#define UNROLL(n)
#else
#define UNROLL_PRAGMA(x) _Pragma(#x)
#define UNROLL(n)        UNROLL_PRAGMA(GCC unroll n)
#endif
#define NMAX 8  /* the largest tile side, n */

static const cnn_wino variants[] = {{2, 3, 4}, {4, 3, 6}, {4, 5, 8}};

const cnn_wino *cnn_winograd_pick(int64_t r, int64_t oh, int64_t ow) {
    const cnn_wino *best = NULL;
    int64_t best_cost = 0;
    for (size_t i = 0; i < sizeof variants / sizeof variants[0]; i++) {
        const cnn_wino *f = &variants[i];
        if (f->r != r) continue;
        const int64_t cost = (int64_t)f->n * f->n * ((oh + f->m - 1) / f->m) *
                             ((ow + f->m - 1) / f->m);
        if (!best || cost < best_cost) best = f, best_cost = cost;
    }
    return best;
}

/* Where each tile of a chunk is: image b, tile row ty, tile column tx. */
typedef struct tile_at {
    int32_t b, ty, tx;
} tile_at;

/* A thread's padded planes: the chunk's B planes of one input channel with
 * zeros around, (th*m + r - 1) x (tw*m + r - 1) each. */
static size_t stage_floats(const cnn_wino *f, int64_t B, int64_t oh, int64_t ow) {
    const int64_t hp = (oh + f->m - 1) / f->m * f->m + f->r - 1;
    const int64_t wp = (ow + f->m - 1) / f->m * f->m + f->r - 1;
    return (size_t)((B * hp * wp + 15) / 16 * 16) + 16; /* + the 8-float rows' overrun */
}

/* The floats between the planes of V, M and U' (one plane per element e):
 * whole 4 KiB pages, so that a transform's n^2 stores per group of tiles all
 * fall on the same place in a page. When they fell on many, loads from the
 * stage that matched one of them in the low 12 bits of their address (4K
 * aliasing) waited for the store: with planes 64 bytes past a page, the input
 * transforms ran 3x slower; with AlexNet's unpadded planes, the weight
 * gradient's ran 1.6x slower than now. */
static int64_t plane(int64_t floats) { return (floats + 1023) / 1024 * 1024; }

/* The tile table, then the threads' stages, V and M (WL floats past M: the
 * output transform reads whole vectors). */
static size_t table_floats(int64_t T) {
    return (size_t)((T * (int64_t)sizeof(tile_at) / (int64_t)sizeof(float) + 15) / 16 * 16);
}

size_t cnn_winograd_floats(const cnn_wino *f, int64_t B, int64_t C, int64_t OC, int64_t oh,
                           int64_t ow, int threads) {
    const int64_t T = B * ((oh + f->m - 1) / f->m) * ((ow + f->m - 1) / f->m);
    return table_floats(T) + (size_t)threads * stage_floats(f, B, oh, ow) +
           (size_t)(f->n * f->n * (plane(C * T) + plane(OC * T))) + WL;
}

/* WL lanes as one vector (GCC's vector extension, which clang shares): with
 * arrays of floats and loops over the lanes, GCC left the kernel transform
 * (and the weight gradient's dy transform, which is the same) in scalar
 * instructions, 2.9x slower. */
typedef float vlanes __attribute__((vector_size(WL * sizeof(float))));
typedef float vlanes_u __attribute__((vector_size(WL * sizeof(float)), aligned(4)));
typedef vlanes lanes[NMAX][NMAX];

/* A transform's two products, element by element over WL lanes: with X a
 * table of constants (row-major, `inner` wide) the compiler folds in, a term
 * with a zero coefficient is never computed.
 *   left:  out[i][j] = sum over k of X[i][k] in[k][j], i < rows, j < cols
 *   right: out[i][j] = sum over k of in[i][k] X[j][k], i < rows, j < cols */

__attribute__((always_inline)) static inline void left(const int rows, const int inner,
                                                       const int cols, const float *X, lanes out,
                                                       lanes in) {
UNROLL(8)
    for (int i = 0; i < rows; i++)
UNROLL(8)
        for (int j = 0; j < cols; j++) {
            vlanes acc = {0};
UNROLL(8)
            for (int k = 0; k < inner; k++) {
                const float c = X[i * inner + k];
                if (c == 0.0f) continue;
                acc += c * in[k][j];
            }
            out[i][j] = acc;
        }
}

__attribute__((always_inline)) static inline void right(const int rows, const int cols,
                                                        const int inner, const float *X,
                                                        lanes out, lanes in) {
UNROLL(8)
    for (int i = 0; i < rows; i++)
UNROLL(8)
        for (int j = 0; j < cols; j++) {
            vlanes acc = {0};
UNROLL(8)
            for (int k = 0; k < inner; k++) {
                const float c = X[j * inner + k];
                if (c == 0.0f) continue;
                acc += c * in[i][k];
            }
            out[i][j] = acc;
        }
}

/* out[i][j][l] for l < nl to dst + (i*n + j)*stride + l: n x n transformed
 * values of nl tiles or kernels, each element's lanes contiguous. */
__attribute__((always_inline)) static inline void store(const int n, float *dst, int64_t stride,
                                                        lanes out, int nl) {
UNROLL(8)
    for (int i = 0; i < n; i++)
UNROLL(8)
        for (int j = 0; j < n; j++) {
            float *d = dst + (i * n + j) * stride;
            if (nl == WL)
                *(vlanes_u *)d = out[i][j];
            else
                for (int l = 0; l < nl; l++)
                    d[l] = out[i][j][l];
        }
}

/* The input transform of up to WL tiles, one per lane: tile l's n x n
 * inputs start at P + base[l], rows ws apart; V[e][l] = (BT d B)[e] at
 * v + e*CT + l for l < nl. */
/* d[i][j][l] = P[base[l] + i*ws + j] for i < n, j < 8: row i of each tile
 * loaded whole (8 floats, past the tile when n < 8), and the 16 x 8 rows
 * turned into 8 vectors of 16 lanes by three rounds of two-vector shuffles.
 * After the first round vector e[b][q] holds, in this order, bit q2 of the
 * row pair q2*4 + q, the row's parity h, and column 4b + j' (j' < 4); after
 * the second, f[b][c][q0] holds q1, q2, h and column 4b + 2c + j0; the third
 * puts the lanes in tile order. Against a load of one float per lane and
 * element, AlexNet's training step went from 693 to 660 ms with AVX-512.
 * AVX2's registers hold 8 floats, and there the shuffles cost more than they
 * saved (89 against 96 images/s): it loads by lane, as the baseline does. */
typedef float row8 __attribute__((vector_size(8 * sizeof(float)), aligned(4)));
#define ROUND1(b) 0 + 4 * b, 1 + 4 * b, 2 + 4 * b, 3 + 4 * b, 8 + 4 * b, 9 + 4 * b, 10 + 4 * b, \
                  11 + 4 * b, 16 + 4 * b, 17 + 4 * b, 18 + 4 * b, 19 + 4 * b, 24 + 4 * b,        \
                  25 + 4 * b, 26 + 4 * b, 27 + 4 * b
#define ROUND2(c) 0 + 2 * c, 1 + 2 * c, 4 + 2 * c, 5 + 2 * c, 8 + 2 * c, 9 + 2 * c, 12 + 2 * c,  \
                  13 + 2 * c, 16 + 2 * c, 17 + 2 * c, 20 + 2 * c, 21 + 2 * c, 24 + 2 * c,        \
                  25 + 2 * c, 28 + 2 * c, 29 + 2 * c
#define ROUND3(d) 0 + d, 2 + d, 16 + d, 18 + d, 8 + d, 10 + d, 24 + d, 26 + d, 4 + d, 6 + d,     \
                  20 + d, 22 + d, 12 + d, 14 + d, 28 + d, 30 + d
__attribute__((always_inline)) static inline void load_rows(const int n, lanes d, const float *P,
                                                            const int64_t *base, int64_t ws) {
UNROLL(8)
    for (int i = 0; i < n; i++) {
        vlanes p[8], e[2][4], f[2][2][2];
        for (int q = 0; q < 8; q++)
            p[q] = __builtin_shufflevector(*(const row8 *)(P + base[2 * q] + i * ws),
                                           *(const row8 *)(P + base[2 * q + 1] + i * ws), 0, 1,
                                           2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
        for (int q = 0; q < 4; q++) {
            e[0][q] = __builtin_shufflevector(p[q], p[q + 4], ROUND1(0));
            e[1][q] = __builtin_shufflevector(p[q], p[q + 4], ROUND1(1));
        }
        for (int b = 0; b < 2; b++)
            for (int q = 0; q < 2; q++) {
                f[b][0][q] = __builtin_shufflevector(e[b][q], e[b][q + 2], ROUND2(0));
                f[b][1][q] = __builtin_shufflevector(e[b][q], e[b][q + 2], ROUND2(1));
            }
        for (int b = 0; b < 2; b++)
            for (int c = 0; c < 2; c++) {
                d[i][4 * b + 2 * c] = __builtin_shufflevector(f[b][c][0], f[b][c][1], ROUND3(0));
                d[i][4 * b + 2 * c + 1] = __builtin_shufflevector(f[b][c][0], f[b][c][1], ROUND3(1));
            }
    }
}

__attribute__((always_inline)) static inline void input_body(const int n, const bool shuffled,
                                                             const float *bt, float *v, int64_t CT,
                                                             const float *P, const int64_t *base,
                                                             int64_t ws, int nl) {
    lanes d, t;
    if (shuffled) {
        load_rows(n, d, P, base, ws);
    } else {
        for (int l = 0; l < WL; l++) {
            const float *src = P + base[l];
UNROLL(8)
            for (int i = 0; i < n; i++)
UNROLL(8)
                for (int j = 0; j < n; j++)
                    d[i][j][l] = src[i * ws + j];
        }
    }
    left(n, n, n, bt, t, d);  /* BT d */
    right(n, n, n, bt, d, t); /* (BT d) B */
    store(n, v, CT, d, nl);
}

/* The output transform of WL tiles, one per lane: M[e][l] at mm + e*OT + l,
 * y[i][j][l] = (AT M A)[i][j] for i, j < m. */
__attribute__((always_inline)) static inline void output_body(const int m, const int n,
                                                              const float *at, lanes y,
                                                              const float *mm, int64_t OT) {
    lanes a, t;
UNROLL(8)
    for (int i = 0; i < n; i++)
UNROLL(8)
        for (int j = 0; j < n; j++)
            a[i][j] = *(const vlanes_u *)(mm + (i * n + j) * OT);
    left(m, n, n, at, t, a);  /* AT a */
    right(m, m, n, at, y, t); /* (AT a) A */
}

/* The kernel transform of WL kernels, one per lane: kernel l's r x r taps
 * at w + base[l], rows ws apart, or (flip, rows r apart) reversed;
 * U[e][l] = (G g GT)[e] at u + e*OCC + l for l < nl. The weight gradient
 * transforms the 4x4 tiles of dy with it too, from a stage that can be read
 * 8 floats past each row (shuffled). */
__attribute__((always_inline)) static inline void kernel_body(const int r, const int n,
                                                              const bool shuffled,
                                                              const float *gm, float *u,
                                                              int64_t OCC, const float *w,
                                                              const int64_t *base, int64_t ws,
                                                              bool flip, int nl) {
    lanes g, t;
    if (shuffled) {
        load_rows(r, g, w, base, ws);
    } else {
        for (int l = 0; l < WL; l++) {
            const float *src = w + base[l];
UNROLL(25)
            for (int k = 0; k < r * r; k++)
                g[k / r][k % r][l] = flip ? src[r * r - 1 - k] : src[k / r * ws + k % r];
        }
    }
    left(n, r, r, gm, t, g);  /* G g */
    right(n, n, r, gm, g, t); /* (G g) GT */
    store(n, u, OCC, g, nl);
}

/* Each instruction set's transforms for every variant, the matrices constants. */
#define WINO_TRANSFORMS(isa, target, shuffled)                                                               \
    target static void kernels_##isa(const cnn_wino *f, float *u, int64_t OCC, const float *w,    \
                                     const int64_t *base, int64_t ws, bool flip, int nl) {        \
        switch (f->m * 10 + f->r) {                                                                \
        case 23: kernel_body(3, 4, false, &wino_F2_3_G[0][0], u, OCC, w, base, ws, flip, nl);      \
                 break;                                                                            \
        case 43: kernel_body(3, 6, false, &wino_F4_3_G[0][0], u, OCC, w, base, ws, flip, nl);      \
                 break;                                                                            \
        default: kernel_body(5, 8, false, &wino_F4_5_G[0][0], u, OCC, w, base, ws, flip, nl);      \
                 break;                                                                            \
        }                                                                                          \
    }                                                                                              \
    target static void dy_tiles_##isa(const cnn_wino *f, float *u, int64_t OT, const float *P,     \
                                      const int64_t *base, int64_t ws, int nl) {                   \
        if (f->m == 3)                                                                             \
            kernel_body(4, 6, shuffled, &wino_F3_4_G[0][0], u, OT, P, base, ws, false, nl);        \
        else                                                                                       \
            kernel_body(4, 8, shuffled, &wino_F5_4_G[0][0], u, OT, P, base, ws, false, nl);        \
    }                                                                                              \
    target static void input_tiles_##isa(const cnn_wino *f, float *v, int64_t CT, const float *P, \
                                         const int64_t *base, int64_t ws, int nl) {               \
        switch (f->m * 10 + f->r) {                                                                \
        case 23: input_body(4, shuffled, &wino_F2_3_BT[0][0], v, CT, P, base, ws, nl); break;      \
        case 43: input_body(6, shuffled, &wino_F4_3_BT[0][0], v, CT, P, base, ws, nl); break;      \
        default: input_body(8, shuffled, &wino_F4_5_BT[0][0], v, CT, P, base, ws, nl); break;      \
        }                                                                                          \
    }                                                                                              \
    target static void output_tiles_##isa(const cnn_wino *f, lanes y,                              \
                                          const float *mm, int64_t OT) {                          \
        switch (f->m * 10 + f->r) {                                                                \
        case 23: output_body(2, 4, &wino_F2_3_AT[0][0], y, mm, OT); break;                         \
        case 43: output_body(4, 6, &wino_F4_3_AT[0][0], y, mm, OT); break;                         \
        case 45: output_body(4, 8, &wino_F4_5_AT[0][0], y, mm, OT); break;                         \
        case 34: output_body(3, 6, &wino_F3_4_AT[0][0], y, mm, OT); break;                         \
        default: output_body(5, 8, &wino_F5_4_AT[0][0], y, mm, OT); break;                         \
        }                                                                                          \
    }

WINO_TRANSFORMS(generic, , false)
#if CNN_HAVE_X86_KERNELS
WINO_TRANSFORMS(avx2, CNN_TARGET_AVX2, false)
WINO_TRANSFORMS(avx512, CNN_TARGET_AVX512, true)
#endif

typedef void kernels_fn(const cnn_wino *, float *, int64_t, const float *, const int64_t *,
                        int64_t, bool, int);
typedef void input_tiles_fn(const cnn_wino *, float *, int64_t, const float *, const int64_t *,
                            int64_t, int);
typedef input_tiles_fn dy_tiles_fn;
typedef void output_tiles_fn(const cnn_wino *, lanes, const float *, int64_t);

typedef struct transforms {
    kernels_fn *kernels;
    input_tiles_fn *input;
    dy_tiles_fn *dy;
    output_tiles_fn *output;
} transforms;

static transforms pick(void) {
#if CNN_HAVE_X86_KERNELS
    switch (cnn_simd_level()) {
    case CNN_SIMD_AVX512:
        return (transforms){kernels_avx512, input_tiles_avx512, dy_tiles_avx512,
                            output_tiles_avx512};
    case CNN_SIMD_AVX2:
        return (transforms){kernels_avx2, input_tiles_avx2, dy_tiles_avx2, output_tiles_avx2};
    default: break;
    }
#endif
    return (transforms){kernels_generic, input_tiles_generic, dy_tiles_generic,
                        output_tiles_generic};
}

void cnn_winograd_kernels(const cnn_wino *f, float *u, const float *w, int64_t OC, int64_t C,
                          bool flip) {
    const int64_t OCC = OC * C, rr = (int64_t)f->r * f->r;
    kernels_fn *fn = pick().kernels;
    CNN_PARALLEL_FOR(
        OCC > 4096, for (int64_t i0 = 0; i0 < OCC; i0 += WL) {
            /* Entry i = (o, c) of u: w[o][c], or with flip w[c][o] turned by 180 degrees. */
            const int nl = OCC - i0 < WL ? (int)(OCC - i0) : WL;
            int64_t base[WL];
            for (int l = 0; l < WL; l++) {
                const int64_t i = i0 + (l < nl ? l : 0), o = i / C, c = i % C;
                base[l] = (flip ? c * OC + o : i) * rr;
            }
            fn(f, u + i0, OCC, w, base, f->r, flip, nl);
        });
}

/* One channel's B planes (plane b at src + b*stride, H x W) into a stage of
 * B planes hp x wp: row r, column q of the stage is the plane's (r - ph,
 * q - pw), zero outside it. */
static void stage_planes(float *P, const float *src, int64_t B, int64_t stride, int64_t H,
                         int64_t W, int64_t hp, int64_t wp, int64_t ph, int64_t pw) {
    const int64_t cols = W < wp - pw ? W : wp - pw, right = wp - pw - cols;
    for (int64_t b = 0; b < B; b++) {
        const float *xp = src + b * stride;
        float *pp = P + b * hp * wp;
        for (int64_t py = 0; py < hp; py++) {
            float *row = pp + py * wp;
            const int64_t iy = py - ph;
            if (iy < 0 || iy >= H) {
                memset(row, 0, (size_t)wp * sizeof(float));
                continue;
            }
            memset(row, 0, (size_t)pw * sizeof(float));
            memcpy(row + pw, xp + iy * W, (size_t)cols * sizeof(float));
            memset(row + pw + cols, 0, (size_t)right * sizeof(float));
        }
    }
}

/* The stage offsets of tiles t0.. (m apart, in hp x wp planes), up to WL of
 * them, the lanes past T repeating the first; returns how many are real. */
static int tile_bases(int64_t base[WL], const tile_at *tiles, int64_t t0, int64_t T, int64_t m,
                      int64_t hp, int64_t wp) {
    const int nl = T - t0 < WL ? (int)(T - t0) : WL;
    for (int l = 0; l < WL; l++) {
        const tile_at *ta = &tiles[t0 + (l < nl ? l : 0)];
        base[l] = ta->b * hp * wp + ta->ty * m * wp + ta->tx * m;
    }
    return nl;
}

/* V[e][c][t] = (BT d B)[e] for every input tile d, zero outside the image
 * (the padding). Each step of the parallel loop takes one channel: its B
 * planes, padded, into the thread's stage, then WL tiles at a time. */
static void input_transform(const cnn_wino *f, float *v, float *stages, const tile_at *tiles,
                            const float *x, int64_t B, int64_t C, int64_t H, int64_t W,
                            int64_t oh, int64_t ow, int64_t ph, int64_t pw, int64_t T,
                            int threads) {
    const int64_t m = f->m, CT = plane(C * T);
    const int64_t hp = (oh + m - 1) / m * m + f->r - 1, wp = (ow + m - 1) / m * m + f->r - 1;
    const size_t per = stage_floats(f, B, oh, ow);
    input_tiles_fn *tiles_fn = pick().input;
    cnn_steal share[CNN_STEAL_MAX];
    const int nt = cnn_steal_init(share, threads, C);
#pragma omp parallel num_threads(nt)
    {
        const int t = omp_get_thread_num();
        float *P = stages + (size_t)t * per;
        for (int64_t c; (c = cnn_steal_next(share, t)) >= 0;) {
            stage_planes(P, x + c * H * W, B, C * H * W, H, W, hp, wp, ph, pw);
            for (int64_t t0 = 0; t0 < T; t0 += WL) {
                int64_t base[WL];
                const int nl = tile_bases(base, tiles, t0, T, m, hp, wp);
                tiles_fn(f, v + c * T + t0, CT, P, base, wp, nl);
            }
        }
    }
}

/* y = bias + AT M A for every tile (or y += it), clipped at the output's
 * edge. Each step of the parallel loop takes one output channel. */
static void output_transform(const cnn_wino *f, float *y, const float *mm, const tile_at *tiles,
                             const float *bias, bool acc, int64_t OC, int64_t oh, int64_t ow,
                             int64_t T, int threads) {
    const int64_t m = f->m, OT = plane(OC * T);
    output_tiles_fn *tiles_fn = pick().output;
    cnn_steal share[CNN_STEAL_MAX];
    const int nt = cnn_steal_init(share, threads, OC);
#pragma omp parallel num_threads(nt)
    for (int64_t o; (o = cnn_steal_next(share, omp_get_thread_num())) >= 0;) {
        const float bo = bias ? bias[o] : 0.0f;
        for (int64_t t0 = 0; t0 < T; t0 += WL) {
            lanes yt;
            tiles_fn(f, yt, mm + o * T + t0, OT);
            const int nl = T - t0 < WL ? (int)(T - t0) : WL;
            for (int l = 0; l < nl; l++) {
                const tile_at *ta = &tiles[t0 + l];
                const int64_t oy = ta->ty * m, ox = ta->tx * m;
                float *yp = y + ((ta->b * OC + o) * oh + oy) * ow + ox;
                const int64_t rows = oh - oy < m ? oh - oy : m, cols = ow - ox < m ? ow - ox : m;
                for (int64_t i = 0; i < rows; i++)
                    for (int64_t j = 0; j < cols; j++)
                        yp[i * ow + j] = (acc ? yp[i * ow + j] : bo) + yt[i][j][l];
            }
        }
    }
}

void cnn_winograd_conv(const cnn_wino *f, float *y, const float *x, const float *u,
                       const float *bias, bool accumulate, int64_t B, int64_t C, int64_t H,
                       int64_t W, int64_t OC, int64_t oh, int64_t ow, int64_t ph, int64_t pw,
                       float *work, int threads) {
    const int64_t m = f->m, nn = (int64_t)f->n * f->n;
    const int64_t th = (oh + m - 1) / m, tw = (ow + m - 1) / m, T = B * th * tw;
    tile_at *tiles = (tile_at *)work;
    float *stages = work + table_floats(T);
    float *v = stages + (size_t)threads * stage_floats(f, B, oh, ow), *mm = v + nn * plane(C * T);
    for (int64_t t = 0; t < T; t++)
        tiles[t] = (tile_at){(int32_t)(t / (th * tw)), (int32_t)(t / tw % th), (int32_t)(t % tw)};
    input_transform(f, v, stages, tiles, x, B, C, H, W, oh, ow, ph, pw, T, threads);
    /* The n^2 products are independent: each thread takes whole ones, and
     * OpenBLAS's OpenMP build runs a product called inside a parallel region
     * on the calling thread. One product on both threads at a time spent more
     * in OpenBLAS's synchronization and packing than it shared: AlexNet's
     * inference at batch 64 went from 220 to 250 images/s, its training step
     * from 68 to 73. */
#pragma omp parallel for schedule(dynamic) num_threads(threads)
    for (int64_t e = 0; e < nn; e++)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)OC, (int)T, (int)C, 1.0f,
                    u + e * OC * C, (int)C, v + e * plane(C * T), (int)T, 0.0f, mm + e * plane(OC * T), (int)T);
    output_transform(f, y, mm, tiles, bias, accumulate, OC, oh, ow, T, threads);
}

/* The weight gradient dW[o][c] = sum over images and positions of
 * dy[o](y, x) * x[c](y - p + i, x - p + j) is a correlation of x with dy
 * that has r x r outputs: by F(r x r, 4x4) on the 4x4 tiles of dy, with the
 * inputs under each tile transformed exactly as F(4x4, r x r) transforms
 * them in the forward pass (the same points give the same BT):
 *   M[e] (OC, C) += U'[e] (OC, T) V[e] (C, T)^T,  U' = G' dy G'^T,
 * a product over the tiles, summed over chunks, and dW = AT' M AT'^T once
 * at the end. 4 multiplications per tile element instead of r^2 per output:
 * 5.6x fewer for r = 3 (36 per 16 outputs against 144), 8.5x for r = 5. */
static const cnn_wino dw_variants[] = {{3, 4, 6}, {5, 4, 8}};

/* The weight gradient's variant for r x r kernels, and in *fwd the forward
 * F(4x4, r x r) whose input transform it shares. */
static const cnn_wino *dw_variant(int64_t r, const cnn_wino **fwd) {
    *fwd = &variants[0];
    for (size_t i = 0; i < sizeof variants / sizeof variants[0]; i++)
        if (variants[i].m == 4 && variants[i].r == r) *fwd = &variants[i];
    return &dw_variants[r == 5];
}

size_t cnn_winograd_dw_acc_floats(int64_t r, int64_t OC, int64_t C) {
    const cnn_wino *fwd, *f = dw_variant(r, &fwd);
    return (size_t)(f->n * f->n * OC * C) + WL;
}

size_t cnn_winograd_dw_floats(int64_t r, int64_t B, int64_t C, int64_t OC, int64_t oh, int64_t ow,
                              int threads) {
    const cnn_wino *fwd;
    dw_variant(r, &fwd);
    return cnn_winograd_floats(fwd, B, C, OC, oh, ow, threads);
}

/* U'[e][o][t] = (G' dy_t G'^T)[e] for the 4x4 tiles of dy, zero past its
 * edge. Each step of the parallel loop takes one output channel. */
static void dy_transform(const cnn_wino *f, float *u, float *stages, size_t per,
                         const tile_at *tiles, const float *dy, int64_t B, int64_t OC, int64_t oh,
                         int64_t ow, int64_t T, int threads) {
    const int64_t ht = (oh + 3) / 4 * 4, wt = (ow + 3) / 4 * 4, OT = plane(OC * T);
    dy_tiles_fn *fn = pick().dy;
    cnn_steal share[CNN_STEAL_MAX];
    const int nt = cnn_steal_init(share, threads, OC);
#pragma omp parallel num_threads(nt)
    {
        const int t = omp_get_thread_num();
        float *P = stages + (size_t)t * per;
        for (int64_t o; (o = cnn_steal_next(share, t)) >= 0;) {
            stage_planes(P, dy + o * oh * ow, B, OC * oh * ow, oh, ow, ht, wt, 0, 0);
            for (int64_t t0 = 0; t0 < T; t0 += WL) {
                int64_t base[WL];
                const int nl = tile_bases(base, tiles, t0, T, 4, ht, wt);
                fn(f, u + o * T + t0, OT, P, base, wt, nl);
            }
        }
    }
}

void cnn_winograd_dw(int64_t r, float *macc, bool first, const float *x, const float *dy,
                     int64_t B, int64_t C, int64_t H, int64_t W, int64_t OC, int64_t oh,
                     int64_t ow, int64_t ph, int64_t pw, float *work, int threads) {
    const cnn_wino *fwd, *f = dw_variant(r, &fwd);
    const int64_t nn = (int64_t)f->n * f->n, th = (oh + 3) / 4, tw = (ow + 3) / 4, T = B * th * tw;
    const size_t per = stage_floats(fwd, B, oh, ow);
    tile_at *tiles = (tile_at *)work;
    float *stages = work + table_floats(T);
    float *v = stages + (size_t)threads * per, *u = v + nn * plane(C * T);
    for (int64_t t = 0; t < T; t++)
        tiles[t] = (tile_at){(int32_t)(t / (th * tw)), (int32_t)(t / tw % th), (int32_t)(t % tw)};
    input_transform(fwd, v, stages, tiles, x, B, C, H, W, oh, ow, ph, pw, T, threads);
    dy_transform(f, u, stages, per, tiles, dy, B, OC, oh, ow, T, threads);
    /* Whole products per thread, as in cnn_winograd_conv. */
#pragma omp parallel for schedule(dynamic) num_threads(threads)
    for (int64_t e = 0; e < nn; e++)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)OC, (int)C, (int)T, 1.0f,
                    u + e * plane(OC * T), (int)T, v + e * plane(C * T), (int)T, first ? 0.0f : 1.0f,
                    macc + e * OC * C, (int)C);
}

void cnn_winograd_dw_finish(int64_t r, float *dweight, const float *macc, int64_t OC, int64_t C) {
    const cnn_wino *fwd, *f = dw_variant(r, &fwd);
    const int64_t OCC = OC * C, rr = r * r;
    output_tiles_fn *fn = pick().output;
#pragma omp parallel for schedule(static)
    for (int64_t i0 = 0; i0 < OCC; i0 += WL) {
        lanes y;
        fn(f, y, macc + i0, OCC);
        const int nl = OCC - i0 < WL ? (int)(OCC - i0) : WL;
        for (int l = 0; l < nl; l++)
            for (int64_t i = 0; i < r; i++)
                for (int64_t j = 0; j < r; j++)
                    dweight[(i0 + l) * rr + i * r + j] += y[i][j][l];
    }
}
