/* test_kernels.c - cnnkit's own kernels against their definitions in plain
 * double-precision loops: the register-tiled matrix product and the dot
 * products behind small Linear layers, the direct convolution and weight
 * gradient, im2col and col2im, the vector sigmoid and max pool, and a Conv2d
 * layer down each of its paths (chunked; per image, direct where it applies;
 * Winograd's three variants). CTest runs it once per instruction set
 * (CNNKIT_SIMD), so every build of every kernel this machine can run is
 * checked. */
#include <math.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <omp.h>

#include "cnnkit/cnnkit.h"
#include "cnnkit/cpu.h"
#include "conv_direct.h"
#include "gemm.h"
#include "im2col.h"
#include "lanes.h"
#include "model_impl.h"
#include "vmath.h"
#include "winograd.h"

static float *random_floats(cnn_rng *rng, size_t n) {
    float *p = malloc((n ? n : 1) * sizeof *p);
    assert_non_null(p);
    for (size_t i = 0; i < n; i++)
        p[i] = cnn_rng_uniform(rng) * 2.0f - 1.0f;
    return p;
}

static void gemm_should_equal_the_plain_product_for_every_tile_shape(void **state) {
    (void)state;
    cnn_rng rng;
    cnn_rng_seed(&rng, 1, 0);
    /* Row and column counts on both sides of every tile edge (6 and 8 rows,
     * 8, 16 and 32 columns), with leading dimensions wider than the matrices. */
    const int shapes[][3] = {{1, 1, 1},    {6, 784, 25}, {16, 100, 150}, {150, 100, 16},
                             {7, 13, 5},   {9, 33, 3},   {8, 32, 64},    {5, 17, 1},
                             {13, 47, 29}, {3, 8, 7},    {17, 15, 2},    {25, 6, 784}};
    double worst = 0.0;
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
        const int lda = K + 3, ldb = N + 5, ldc = N + 2;
        float *A = random_floats(&rng, (size_t)M * lda), *B = random_floats(&rng, (size_t)K * ldb);
        float *bias = random_floats(&rng, (size_t)M), *C = random_floats(&rng, (size_t)M * ldc);
        float *C0 = malloc((size_t)M * ldc * sizeof *C0);
        assert_non_null(C0);
        for (int mode = 0; mode < 3; mode++) { /* plain, bias, accumulate */
            memcpy(C0, C, (size_t)M * ldc * sizeof *C);
            cnn_gemm(M, N, K, A, lda, B, ldb, C, ldc, mode == 1 ? bias : NULL, mode == 2);
            for (int i = 0; i < M; i++) {
                for (int j = 0; j < ldc; j++) {
                    if (j >= N) { /* past the matrix: untouched */
                        assert_true(C[i * ldc + j] == C0[i * ldc + j]);
                        continue;
                    }
                    double ref = mode == 1 ? bias[i] : mode == 2 ? C0[i * ldc + j] : 0.0, mag = 1;
                    for (int k = 0; k < K; k++) {
                        ref += (double)A[i * lda + k] * B[k * ldb + j];
                        mag += fabs((double)A[i * lda + k] * B[k * ldb + j]);
                    }
                    const double err = fabs(C[i * ldc + j] - ref) / mag;
                    if (err > worst) worst = err;
                    if (err > 1e-6)
                        fail_msg("gemm %dx%dx%d mode %d: C[%d][%d] = %.9g, expected %.9g", M, N, K,
                                 mode, i, j, C[i * ldc + j], ref);
                }
            }
        }
        free(A), free(B), free(bias), free(C), free(C0);
    }
    printf("  gemm (%s): worst error %.3g of the sum of |terms|\n", cnn_simd_name(cnn_simd_level()),
           worst);
}

/* LeNet's two layers, rows narrower and wider than 16 and 32, odd row
 * counts, padding larger than the kernel and negative. */
static const cnn_conv_geom geoms[] = {
    {1, 28, 28, 6, 28, 28, 5, 5, 2, 2},
    {6, 14, 14, 16, 10, 10, 5, 5, 0, 0},
    {16, 10, 10, 6, 14, 14, 5, 5, 4, 4},
    {3, 7, 9, 9, 5, 7, 3, 3, 0, 0},
    {2, 40, 37, 5, 38, 39, 3, 1, 0, 1},
    {4, 5, 5, 11, 9, 11, 3, 3, 3, 4},
    {2, 9, 20, 3, 5, 16, 5, 5, 0, 0},
    {1, 6, 50, 2, 4, 44, 7, 7, 2, 0},
    {5, 12, 12, 4, 12, 12, 1, 1, 0, 0},
    {3, 11, 11, 8, 5, 5, 5, 5, -1, -1},
    {3, 12, 11, 20, 10, 9, 3, 3, 0, 0},
    /* Rows 17 to 32 wide, up to 6 channels a tile: two rows of two vectors
     * (odd row counts, 13 channels as 8 + 5, padding on one side). */
    {3, 17, 21, 3, 17, 21, 3, 3, 1, 1},
    {2, 9, 30, 13, 7, 30, 3, 5, 0, 2},
    /* Padding past half the kernel: the top pair's first kernel rows read only padding. */
    {2, 7, 24, 5, 9, 26, 5, 3, 3, 2},
};

static void gemm_nt_should_equal_the_dot_products_for_every_tile_shape(void **state) {
    (void)state;
    cnn_rng rng;
    cnn_rng_seed(&rng, 2, 0);
    /* Rows on both sides of the 2- and 4-row tiles, columns on both sides of
     * 4, and K on both sides of the 8 and 16 lanes (LeNet's 400 -> 120 too). */
    const int shapes[][3] = {{1, 120, 400}, {1, 84, 120}, {1, 10, 84}, {2, 5, 16}, {3, 7, 17},
                             {4, 4, 8},     {5, 9, 1},    {8, 3, 33},  {7, 1, 15}, {1, 1, 1}};
    double worst = 0.0;
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
        const int lda = K + 3, ldb = K + 1, ldc = N + 2;
        float *A = random_floats(&rng, (size_t)M * lda), *B = random_floats(&rng, (size_t)N * ldb);
        float *bias = random_floats(&rng, (size_t)N), *C = random_floats(&rng, (size_t)M * ldc);
        float *C0 = malloc((size_t)M * ldc * sizeof *C0);
        assert_non_null(C0);
        for (int with_bias = 0; with_bias < 2; with_bias++) {
            memcpy(C0, C, (size_t)M * ldc * sizeof *C);
            cnn_gemm_nt(M, N, K, A, lda, B, ldb, C, ldc, with_bias ? bias : NULL);
            for (int i = 0; i < M; i++)
                for (int j = 0; j < ldc; j++) {
                    if (j >= N) { /* past the matrix: untouched */
                        assert_true(C[i * ldc + j] == C0[i * ldc + j]);
                        continue;
                    }
                    double ref = with_bias ? bias[j] : 0.0, mag = 1;
                    for (int k = 0; k < K; k++) {
                        ref += (double)A[i * lda + k] * B[j * ldb + k];
                        mag += fabs((double)A[i * lda + k] * B[j * ldb + k]);
                    }
                    const double err = fabs(C[i * ldc + j] - ref) / mag;
                    if (err > worst) worst = err;
                    if (err > 1e-6)
                        fail_msg("gemm_nt %dx%dx%d: C[%d][%d] = %.9g, expected %.9g", M, N, K, i,
                                 j, C[i * ldc + j], ref);
                }
        }
        free(A), free(B), free(bias), free(C), free(C0);
    }
    printf("  gemm_nt (%s): worst error %.3g of the sum of |terms|\n",
           cnn_simd_name(cnn_simd_level()), worst);
}

static void direct_kernels_should_equal_the_plain_loops(void **state) {
    (void)state;
    if (cnn_simd_level() != CNN_SIMD_AVX512) {
        printf("  direct convolution: not used with %s kernels\n", cnn_simd_name(cnn_simd_level()));
        skip();
    }
    cnn_rng rng;
    cnn_rng_seed(&rng, 2, 0);
    double worst = 0.0, worst_fwd = 0.0;
    int narrow_geoms = 0;
    for (size_t s = 0; s < sizeof geoms / sizeof geoms[0]; s++) {
        const cnn_conv_geom *g = &geoms[s];
        assert_true(g->oh == g->H + 2 * g->ph - g->kh + 1 && g->ow == g->W + 2 * g->pw - g->kw + 1);
        const size_t nx = (size_t)g->C * g->H * g->W, ny = (size_t)g->M * g->oh * g->ow;
        const size_t nw = (size_t)g->M * g->C * g->kh * g->kw;
        float *x = random_floats(&rng, nx), *dy = random_floats(&rng, ny);
        float *lanes = calloc(nw * CNN_DIRECT_LANES, sizeof *lanes);
        assert_non_null(lanes);
        /* Forward, with and without bias, nothing written past the output; and
         * the narrow kernel (channels in the lanes) where it applies. */
        float *w = random_floats(&rng, nw), *bias = random_floats(&rng, (size_t)g->M);
        float *y = random_floats(&rng, ny + 1);
        const float guard = y[ny];
        float *wt = malloc(cnn_conv_narrow_floats(g) * sizeof *wt);
        float *scratch = malloc((cnn_conv_direct_floats(g) + 1) * sizeof *scratch);
        assert_non_null(wt);
        assert_non_null(scratch);
        cnn_conv_narrow_weights(g, w, wt);
        const int runs = cnn_conv_narrow_ok(g) ? 4 : 2;
        if (runs == 4) narrow_geoms++;
        for (int run = 0; run < runs; run++) {
            const int with_bias = run % 2;
            if (run < 2)
                cnn_conv_direct(g, x, w, with_bias ? bias : NULL, y, scratch);
            else
                cnn_conv_narrow(g, x, wt, with_bias ? bias : NULL, y);
            for (size_t i = 0; i < ny; i++) {
                const int ox = (int)(i % g->ow), oy = (int)(i / g->ow % g->oh);
                const int m = (int)(i / ((size_t)g->ow * g->oh));
                double ref = with_bias ? bias[m] : 0.0, mag = 1.0;
                for (int c = 0; c < g->C; c++)
                    for (int ki = 0; ki < g->kh; ki++)
                        for (int kj = 0; kj < g->kw; kj++) {
                            const int iy = oy - g->ph + ki, ix = ox - g->pw + kj;
                            if (iy < 0 || iy >= g->H || ix < 0 || ix >= g->W) continue;
                            const double t = (double)w[((m * g->C + c) * g->kh + ki) * g->kw + kj] *
                                             x[((size_t)c * g->H + iy) * g->W + ix];
                            ref += t;
                            mag += fabs(t);
                        }
                const double err = fabs(y[i] - ref) / mag;
                if (err > worst_fwd) worst_fwd = err;
                if (err > 1e-6)
                    fail_msg("geometry %zu: y[%zu] = %.9g, expected %.9g", s, i, y[i], ref);
            }
        }
        assert_true(y[ny] == guard);
        free(w), free(bias), free(y), free(wt), free(scratch);
        cnn_conv_direct_dw(g, x, dy, lanes);
        cnn_conv_direct_dw(g, x, dy, lanes); /* accumulates: twice the gradient */
        /* The narrow kernel's, from dy transposed, into (C*kh*kw, M), twice. */
        const size_t P = (size_t)g->oh * g->ow, K = nw / (size_t)g->M;
        float *dyt = malloc(P * (size_t)g->M * sizeof *dyt), *dwt = calloc(nw, sizeof *dwt);
        assert_true(dyt && dwt);
        for (size_t p = 0; p < P; p++)
            for (int m = 0; m < g->M; m++)
                dyt[p * (size_t)g->M + (size_t)m] = dy[(size_t)m * P + p];
        if (cnn_conv_narrow_ok(g)) {
            cnn_conv_narrow_dw(g, x, dyt, dwt);
            cnn_conv_narrow_dw(g, x, dyt, dwt);
        }
        for (size_t i = 0; i < nw; i++) {
            const int kj = (int)(i % g->kw), ki = (int)(i / g->kw % g->kh);
            const int c = (int)(i / ((size_t)g->kw * g->kh) % g->C);
            const int m = (int)(i / ((size_t)g->kw * g->kh * g->C));
            double ref = 0.0, mag = 1.0, got = 0.0;
            for (int oy = 0; oy < g->oh; oy++)
                for (int ox = 0; ox < g->ow; ox++) {
                    const int iy = oy - g->ph + ki, ix = ox - g->pw + kj;
                    if (iy < 0 || iy >= g->H || ix < 0 || ix >= g->W) continue;
                    const double t = 2.0 * dy[((size_t)m * g->oh + oy) * g->ow + ox] *
                                     x[((size_t)c * g->H + iy) * g->W + ix];
                    ref += t;
                    mag += fabs(t);
                }
            for (int l = 0; l < CNN_DIRECT_LANES; l++)
                got += lanes[i * CNN_DIRECT_LANES + l];
            const double err = fabs(got - ref) / mag;
            if (err > worst) worst = err;
            if (err > 1e-6) fail_msg("geometry %zu: dw[%zu] = %.9g, expected %.9g", s, i, got, ref);
            if (!cnn_conv_narrow_ok(g)) continue;
            const double got_n = dwt[(i % K) * (size_t)g->M + (size_t)m];
            const double err_n = fabs(got_n - ref) / mag;
            if (err_n > worst) worst = err_n;
            if (err_n > 1e-6)
                fail_msg("geometry %zu: narrow dw[%zu] = %.9g, expected %.9g", s, i, got_n, ref);
        }
        free(x), free(dy), free(lanes), free(dyt), free(dwt);
    }
    printf("  direct convolution: worst error %.3g, weight gradient %.3g (of the sum of |terms|); "
           "narrow kernel on %d geometries\n",
           worst_fwd, worst, narrow_geoms);
    assert_true(narrow_geoms >= 3); /* LeNet's conv2, a 1x1 layer, 20 channels (two vectors) */
}

/* More shapes for the lanes' register tiles: every kernel width 1 to 7,
 * channel counts 1 to 9 (tiles of up to 4 and their remainders), rows up to
 * 23 wide (several forward tiles and input-gradient windows). */
static const cnn_conv_geom lanes_geoms[] = {
    {2, 6, 6, 1, 6, 6, 1, 1, 0, 0},     {3, 8, 9, 2, 6, 8, 3, 2, 0, 0},
    {1, 9, 23, 9, 9, 23, 3, 3, 1, 1},   {4, 7, 12, 7, 6, 9, 4, 4, 1, 0},
    {2, 11, 15, 5, 12, 14, 6, 6, 3, 2}, {3, 9, 18, 3, 3, 12, 7, 7, 0, 0},
    {2, 10, 21, 6, 10, 21, 7, 7, 3, 3},
};

/* The 16-images-per-lane kernels (lanes.c) against the definitions in double
 * precision, image by image: the padded copy (from images and from lanes),
 * the convolution with and without bias and a ReLU after it, the weight and
 * bias gradients (accumulated twice) and the input gradient (added to what
 * dx held); AvgPool2d(2) and its backward pass with and without each
 * activation, on odd planes; gather and scatter exactly. */
static void lanes_kernels_should_equal_their_definitions(void **state) {
    (void)state;
    cnn_rng rng;
    cnn_rng_seed(&rng, 4, 0);
    float *t = random_floats(&rng, 7 * 5 * 16), back[7 * 5 * 16], tl[7 * 5 * 16];
    cnn_lanes_gather(t, 35, tl);
    for (int l = 0; l < 16; l++)
        for (int i = 0; i < 35; i++)
            assert_true(tl[i * 16 + l] == t[l * 35 + i]);
    cnn_lanes_scatter(tl, 35, back, false);
    assert_memory_equal(back, t, sizeof back);
    cnn_lanes_scatter(tl, 35, back, true);
    for (int i = 0; i < 35 * 16; i++)
        assert_true(back[i] == 2.0f * t[i]);
    free(t);
    if (cnn_simd_level() != CNN_SIMD_AVX512) {
        printf("  lanes: not used with %s kernels\n", cnn_simd_name(cnn_simd_level()));
        skip();
    }
    double worst[3] = {0};
    int tested = 0;
    const size_t ng = sizeof geoms / sizeof geoms[0],
                 nl = sizeof lanes_geoms / sizeof lanes_geoms[0];
    for (size_t s = 0; s < ng + nl; s++) {
        const cnn_conv_geom *g = s < ng ? &geoms[s] : &lanes_geoms[s - ng];
        if (!cnn_lanes_conv_ok(g)) continue;
        tested++;
        assert_true(g->oh == g->H + 2 * g->ph - g->kh + 1 && g->ow == g->W + 2 * g->pw - g->kw + 1);
        const size_t nx = (size_t)g->C * g->H * g->W, ny = (size_t)g->M * g->oh * g->ow;
        const size_t nw = (size_t)g->M * g->C * g->kh * g->kw, npad = cnn_lanes_pad_floats(g);
        float *x = random_floats(&rng, 16 * nx), *dy = random_floats(&rng, 16 * ny);
        float *w = random_floats(&rng, nw), *bias = random_floats(&rng, (size_t)g->M);
        float *xl = malloc(16 * nx * sizeof *xl), *xp = malloc(npad * sizeof *xp),
              *xp2 = malloc(npad * sizeof *xp2), *y = malloc(16 * ny * sizeof *y);
        float *dw = calloc(16 * nw, sizeof *dw), *db = calloc(16 * (size_t)g->M, sizeof *db);
        float *dx = random_floats(&rng, 16 * nx), *dx0 = malloc(16 * nx * sizeof *dx0);
        assert_true(xl && xp && xp2 && y && dw && db && dx0);
        memcpy(dx0, dx, 16 * nx * sizeof *dx0);
        cnn_lanes_gather(x, nx, xl);
        cnn_lanes_pad(g, x, true, xp);
        cnn_lanes_pad(g, xl, false, xp2);
        assert_memory_equal(xp, xp2, npad * sizeof *xp);
        /* x[l][c][iy][ix] as the definitions read it, 0 in the padding. */
#define XAT(l, c, iy, ix)                                                                          \
    ((iy) < 0 || (iy) >= g->H || (ix) < 0 || (ix) >= g->W                                          \
         ? 0.0                                                                                     \
         : (double)x[(size_t)(l)*nx + ((size_t)(c)*g->H + (iy)) * g->W + (ix)])
        for (int run = 0; run < 2; run++) {
            cnn_lanes_conv(g, xp, w, run ? bias : NULL, run == 1, CNN_OP_RELU, y);
            for (size_t i = 0; i < ny; i++)
                for (int l = 0; l < 16; l++) {
                    const int ox = (int)(i % g->ow), oy = (int)(i / g->ow % g->oh);
                    const int m = (int)(i / ((size_t)g->ow * g->oh));
                    double ref = run ? bias[m] : 0.0, mag = 1.0;
                    for (int c = 0; c < g->C; c++)
                        for (int ki = 0; ki < g->kh; ki++)
                            for (int kj = 0; kj < g->kw; kj++) {
                                const double v = w[((m * g->C + c) * g->kh + ki) * g->kw + kj] *
                                                 XAT(l, c, oy - g->ph + ki, ox - g->pw + kj);
                                ref += v;
                                mag += fabs(v);
                            }
                    if (run) ref = ref > 0.0 ? ref : 0.0;
                    const double err = fabs(y[i * 16 + (size_t)l] - ref) / mag;
                    if (err > worst[0]) worst[0] = err;
                    if (err > 1e-6)
                        fail_msg("geometry %zu: y[%zu] image %d = %.9g, expected %.9g", s, i, l,
                                 y[i * 16 + (size_t)l], ref);
                }
        }
        cnn_lanes_conv_dw(g, xp, dy, dw, db);
        cnn_lanes_conv_dw(g, xp, dy, dw, db); /* accumulates: twice the gradient */
        float *dws = calloc(nw, sizeof *dws), *dbs = calloc((size_t)g->M, sizeof *dbs);
        assert_true(dws && dbs);
        cnn_lanes_reduce(dw, nw, dws);
        cnn_lanes_reduce(db, (size_t)g->M, dbs);
        for (size_t i = 0; i < nw; i++) {
            const int kj = (int)(i % g->kw), ki = (int)(i / g->kw % g->kh);
            const int c = (int)(i / ((size_t)g->kw * g->kh) % g->C);
            const int m = (int)(i / ((size_t)g->kw * g->kh * g->C));
            double ref = 0.0, mag = 1.0;
            for (int l = 0; l < 16; l++)
                for (int oy = 0; oy < g->oh; oy++)
                    for (int ox = 0; ox < g->ow; ox++) {
                        const double v =
                            2.0 * dy[(((size_t)m * g->oh + oy) * g->ow + ox) * 16 + (size_t)l] *
                            XAT(l, c, oy - g->ph + ki, ox - g->pw + kj);
                        ref += v;
                        mag += fabs(v);
                    }
            const double err = fabs(dws[i] - ref) / mag;
            if (err > worst[1]) worst[1] = err;
            if (err > 1e-6)
                fail_msg("geometry %zu: dw[%zu] = %.9g, expected %.9g", s, i, dws[i], ref);
        }
        for (int m = 0; m < g->M; m++) {
            double ref = 0.0, mag = 1.0;
            for (size_t i = 0; i < (size_t)g->oh * g->ow * 16; i++) {
                ref += 2.0 * dy[(size_t)m * g->oh * g->ow * 16 + i];
                mag += fabs(2.0 * dy[(size_t)m * g->oh * g->ow * 16 + i]);
            }
            if (fabs(dbs[m] - ref) / mag > 1e-6)
                fail_msg("geometry %zu: db[%d] = %.9g, expected %.9g", s, m, dbs[m], ref);
        }
#undef XAT
        cnn_lanes_conv_dx(g, w, dy, dx);
        for (size_t i = 0; i < nx; i++)
            for (int l = 0; l < 16; l++) {
                const int ix = (int)(i % g->W), iy = (int)(i / g->W % g->H);
                const int c = (int)(i / ((size_t)g->W * g->H));
                double ref = dx0[i * 16 + (size_t)l], mag = 1.0;
                for (int m = 0; m < g->M; m++)
                    for (int ki = 0; ki < g->kh; ki++)
                        for (int kj = 0; kj < g->kw; kj++) {
                            const int oy = iy + g->ph - ki, ox = ix + g->pw - kj;
                            if (oy < 0 || oy >= g->oh || ox < 0 || ox >= g->ow) continue;
                            const double v =
                                (double)w[((m * g->C + c) * g->kh + ki) * g->kw + kj] *
                                dy[(((size_t)m * g->oh + oy) * g->ow + ox) * 16 + (size_t)l];
                            ref += v;
                            mag += fabs(v);
                        }
                const double err = fabs(dx[i * 16 + (size_t)l] - ref) / mag;
                if (err > worst[2]) worst[2] = err;
                if (err > 1e-6)
                    fail_msg("geometry %zu: dx[%zu] image %d = %.9g, expected %.9g", s, i, l,
                             dx[i * 16 + (size_t)l], ref);
            }
        free(x), free(dy), free(w), free(bias), free(xl), free(xp), free(xp2), free(y);
        free(dw), free(db), free(dx), free(dx0), free(dws), free(dbs);
    }
    /* AvgPool2d(2) on 3 planes of 7 x 9: the last row and column outside every window. */
    enum { PC = 3, PH = 7, PW = 9, PO = PC * 3 * 4 * 16, PI = PC * PH * PW * 16 };
    float *px = random_floats(&rng, PI), *pdy = random_floats(&rng, PO), *py = malloc(PO * 4);
    float *pdx = random_floats(&rng, PI), *pdx0 = malloc(PI * 4);
    assert_true(py && pdx0);
    for (int i = 0; i < PI; i++)
        px[i] = px[i] * 0.5f + 0.5f; /* activations' outputs in (0, 1) */
    cnn_lanes_avgpool2(px, PC, PH, PW, py);
    for (int c = 0; c < PC; c++)
        for (int oy = 0; oy < 3; oy++)
            for (int ox = 0; ox < 4; ox++)
                for (int l = 0; l < 16; l++) {
#define PXAT(iy, ix) px[(((size_t)c * PH + (iy)) * PW + (ix)) * 16 + (size_t)l]
                    const float want = (PXAT(2 * oy, 2 * ox) + PXAT(2 * oy, 2 * ox + 1) +
                                        PXAT(2 * oy + 1, 2 * ox) + PXAT(2 * oy + 1, 2 * ox + 1)) /
                                       4.0f;
                    assert_true(py[(((size_t)c * 3 + oy) * 4 + ox) * 16 + (size_t)l] == want);
                }
    const cnn_op acts[] = {CNN_OP_RELU, CNN_OP_SIGMOID, CNN_OP_TANH};
    memcpy(pdx0, pdx, PI * 4);
    for (int a = -1; a < 3; a++)
        for (int add = 0; add < 2; add++) {
            memcpy(pdx, pdx0, PI * 4);
            cnn_lanes_avgpool2_backward(a >= 0, a >= 0 ? acts[a] : CNN_OP_RELU, pdx, px, pdy, PC,
                                        PH, PW, add);
            for (int i = 0; i < PI; i++) {
                const int l = i % 16, ix = i / 16 % PW, iy = i / 16 / PW % PH, c = i / 16 / PW / PH;
                float v = 0.0f;
                if (iy < 6 && ix < 8) {
                    v = pdy[(((size_t)c * 3 + iy / 2) * 4 + ix / 2) * 16 + (size_t)l] / 4.0f;
                    const float yv = px[i];
                    if (a == 0) v = yv > 0.0f ? v : 0.0f;
                    if (a == 1) v = v * yv * (1.0f - yv);
                    if (a == 2) v = v * (1.0f - yv * yv);
                }
                const float want = add ? pdx0[i] + v : v;
                if (pdx[i] != want)
                    fail_msg("pool backward, act %d, add %d: dx[%d] = %.9g, expected %.9g", a, add,
                             i, pdx[i], want);
            }
        }
#undef PXAT
    free(px), free(pdy), free(py), free(pdx), free(pdx0);
    printf("  lanes: %d geometries, worst error %.3g forward, %.3g weight gradient, %.3g input "
           "gradient (of the sum of |terms|); pools to the bit\n",
           tested, worst[0], worst[1], worst[2]);
    assert_true(tested >= 15);
}

/* dy transposed exactly, with a guard float past it, and each row's sum
 * added to db within float rounding of the double sum: channels of one, a
 * partial vector, one and two vectors; columns of one, partial and whole
 * blocks of 16 (LeNet's conv2: 16 channels of 100). */
static void transpose_sum_should_transpose_and_add_row_sums(void **state) {
    (void)state;
    cnn_rng rng;
    cnn_rng_seed(&rng, 11, 0);
    const int Ms[] = {1, 6, 16, 20, 33}, Ps[] = {1, 7, 16, 100, 37};
    double worst = 0.0;
    for (size_t a = 0; a < sizeof Ms / sizeof *Ms; a++)
        for (size_t b = 0; b < sizeof Ps / sizeof *Ps; b++) {
            const int M = Ms[a], P = Ps[b];
            float *dy = random_floats(&rng, (size_t)M * P), *db = random_floats(&rng, (size_t)M);
            float *dyt = malloc(((size_t)M * P + 1) * sizeof *dyt), *db0 = malloc(M * sizeof *db0);
            memcpy(db0, db, M * sizeof *db0);
            dyt[(size_t)M * P] = 12345.0f;
            cnn_conv_transpose_sum(dy, M, P, dyt, db);
            for (int o = 0; o < M; o++) {
                double sum = 0.0, mag = fabs(db0[o]);
                for (int i = 0; i < P; i++) {
                    assert_true(dyt[(size_t)i * M + o] == dy[(size_t)o * P + i]);
                    sum += dy[(size_t)o * P + i];
                    mag += fabs(dy[(size_t)o * P + i]);
                }
                const double err = fabs(db[o] - (db0[o] + sum)) / mag;
                if (err > worst) worst = err;
            }
            assert_true(dyt[(size_t)M * P] == 12345.0f);
            free(dy), free(db), free(dyt), free(db0);
        }
    printf("  dy transposed exactly; row sums worst error %.3g (of the sum of |terms|)\n", worst);
    assert_true(worst < 1e-6);
}

/* AvgPool2d(2)'s backward pass with the activation's before it, against
 * the definition: planes the windows tile with rows of 2 to 16 (a vector a
 * row, AVX-512) and wider, and planes with a row and a column left over. */
static void avgpool2_act_backward_should_follow_its_definition(void **state) {
    (void)state;
    cnn_rng rng;
    cnn_rng_seed(&rng, 13, 0);
    const cnn_op acts[] = {CNN_OP_RELU, CNN_OP_SIGMOID, CNN_OP_TANH};
    const int64_t shapes[][4] = {{28, 28, 14, 14}, {10, 10, 5, 5}, {4, 32, 2, 16},
                                 {6, 2, 3, 1},     {6, 18, 3, 9},  {7, 9, 3, 4}};
    double worst = 0.0;
    for (int a = 0; a < 3; a++)
        for (size_t k = 0; k < sizeof shapes / sizeof *shapes; k++)
            for (int add = 0; add < 2; add++) {
                const int64_t H = shapes[k][0], W = shapes[k][1], oh = shapes[k][2],
                              ow = shapes[k][3];
                float *y = random_floats(&rng, (size_t)(H * W)),
                      *dy = random_floats(&rng, (size_t)(oh * ow)),
                      *dx = random_floats(&rng, (size_t)(H * W)), v[64];
                double *want = malloc((size_t)(H * W) * sizeof *want);
                for (int64_t i = 0; i < H * W; i++) {
                    const int64_t r = i / W, c = i % W;
                    const double g = r < 2 * oh && c < 2 * ow ? dy[r / 2 * ow + c / 2] / 4.0 : 0.0;
                    const double d = acts[a] == CNN_OP_RELU      ? (y[i] > 0 ? g : 0.0)
                                     : acts[a] == CNN_OP_SIGMOID ? g * y[i] * (1.0 - y[i])
                                                                 : g * (1.0 - (double)y[i] * y[i]);
                    want[i] = (add ? dx[i] : 0.0) + d;
                }
                cnn_vavgpool2_act_backward(acts[a], dx, y, dy, H, W, oh, ow, add, v);
                for (int64_t i = 0; i < H * W; i++) {
                    const double err = fabs(dx[i] - want[i]) / fmax(1.0, fabs(want[i]));
                    if (err > worst) worst = err;
                }
                free(y), free(dy), free(dx), free(want);
            }
    printf("  avgpool2 + activation backward: worst error %.3g\n", worst);
    assert_true(worst < 1e-6);
}

/* im2col against its definition, and col2im against the scatter it adjoins,
 * exactly (both only move and add floats), with a guard float after each row. */
static void im2col_and_col2im_should_follow_their_definitions(void **state) {
    (void)state;
    const cnn_patch_geom pgs[] = {
        /* C, H, W, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow */
        {1, 28, 28, 5, 5, 1, 1, 2, 2, 1, 1, 28, 28}, {6, 14, 14, 5, 5, 1, 1, 0, 0, 1, 1, 10, 10},
        {2, 11, 10, 3, 3, 2, 2, 1, 0, 1, 1, 6, 4},   {3, 9, 40, 3, 3, 1, 1, 2, 2, 2, 2, 9, 40},
        {1, 20, 17, 11, 11, 4, 4, 2, 2, 1, 1, 4, 3}, {2, 7, 7, 7, 7, 1, 1, 3, 9, 1, 1, 7, 19},
        /* AlexNet's first layer, smaller, and a stride 2: rows long enough for vectors */
        {1, 64, 64, 11, 11, 4, 4, 1, 1, 1, 1, 14, 14}, {2, 40, 41, 3, 3, 2, 2, 1, 1, 1, 1, 20, 21},
        /* stride 2 down and 1 across; a kernel wider than col2im's cached lanes; 6 channels */
        {2, 13, 12, 3, 3, 2, 1, 1, 1, 1, 1, 7, 12},    {1, 6, 40, 1, 18, 1, 1, 0, 0, 1, 1, 6, 23},
        {6, 9, 20, 3, 3, 1, 1, 1, 1, 1, 1, 9, 20},
    };
    cnn_rng rng;
    cnn_rng_seed(&rng, 4, 0);
    for (size_t s = 0; s < sizeof pgs / sizeof pgs[0]; s++) {
        const cnn_patch_geom *g = &pgs[s];
        assert_true(g->oh == (g->H + 2 * g->ph - g->dh * (g->kh - 1) - 1) / g->sh + 1);
        assert_true(g->ow == (g->W + 2 * g->pw - g->dw * (g->kw - 1) - 1) / g->sw + 1);
        const int64_t K = g->C * g->kh * g->kw, P = g->oh * g->ow, ld = P + 1;
        const size_t nx = (size_t)(g->C * g->H * g->W);
        float *x = random_floats(&rng, nx), *col = random_floats(&rng, (size_t)(K * ld));
        float *dx = random_floats(&rng, nx), *ref = malloc(nx * sizeof *ref);
        assert_non_null(ref);
        for (int64_t r = 0; r < K; r++)
            col[r * ld + P] = 7.0f;
        cnn_im2col(col, ld, x, g, 0, K);
        memcpy(ref, dx, nx * sizeof *ref);
        cnn_col2im(dx, col, ld, g);
        for (int64_t r = 0; r < K; r++) {
            const int64_t c = r / (g->kh * g->kw), ki = r / g->kw % g->kh, kj = r % g->kw;
            assert_true(col[r * ld + P] == 7.0f);
            for (int64_t oy = 0; oy < g->oh; oy++)
                for (int64_t ox = 0; ox < g->ow; ox++) {
                    const int64_t iy = oy * g->sh - g->ph + ki * g->dh;
                    const int64_t ix = ox * g->sw - g->pw + kj * g->dw;
                    const bool in = iy >= 0 && iy < g->H && ix >= 0 && ix < g->W;
                    const float want = in ? x[(c * g->H + iy) * g->W + ix] : 0.0f;
                    if (col[r * ld + oy * g->ow + ox] != want)
                        fail_msg("geometry %zu: col[%lld][%lld] = %g, expected %g", s, (long long)r,
                                 (long long)(oy * g->ow + ox), col[r * ld + oy * g->ow + ox], want);
                    if (in) ref[(c * g->H + iy) * g->W + ix] += want;
                }
        }
        for (size_t i = 0; i < nx; i++)
            if (dx[i] != ref[i])
                fail_msg("geometry %zu: dx[%zu] = %g, expected %g", s, i, dx[i], ref[i]);
        free(x), free(col), free(dx), free(ref);
    }
}

static void sigmoid_should_be_within_two_ulp_and_keep_nan(void **state) {
    (void)state;
    enum { N = 200001 };
    float *x = malloc(N * sizeof *x), *y = malloc(N * sizeof *y);
    assert_true(x && y);
    for (int i = 0; i < N; i++)
        x[i] = -100.0f + 200.0f * (float)i / (N - 1);
    cnn_vsigmoid(y, x, N);
    double worst = 0.0;
    for (int i = 0; i < N; i++) {
        const double ref = 1.0 / (1.0 + exp(-(double)x[i]));
        /* Below 1e-37 (x < -85) float runs out of normal numbers: ask for 1e-38 absolute. */
        const bool tiny = ref < 1e-37;
        const double err = tiny ? 0.0 : fabs(y[i] - ref) / ref;
        if (err > worst) worst = err;
        if (err > 2.4e-7 || (tiny && fabs(y[i] - ref) > 1e-38))
            fail_msg("sigmoid(%.9g) = %.9g, expected %.9g", x[i], y[i], ref);
    }
    const float special[] = {NAN, INFINITY, -INFINITY, 0.0f, -0.0f};
    float out[5];
    cnn_vsigmoid(out, special, 5);
    assert_true(isnan(out[0]));
    assert_true(out[1] == 1.0f && out[2] == 0.0f && out[3] == 0.5f && out[4] == 0.5f);
    printf("  sigmoid (%s): worst relative error %.3g\n", cnn_simd_name(cnn_simd_level()), worst);
    free(x), free(y);
}

/* PyTorch's scan: a value replaces the maximum when greater or NaN, so the
 * first maximum wins, or the last NaN; *at gets its index in the plane. */
static float max_window(const float *x, int64_t W, int64_t y0, int64_t x0, int64_t kh, int64_t kw,
                        int32_t *at) {
    float m = -INFINITY;
    *at = (int32_t)(y0 * W + x0);
    for (int64_t i = 0; i < kh; i++)
        for (int64_t j = 0; j < kw; j++) {
            const float v = x[(y0 + i) * W + x0 + j];
            if (v > m || isnan(v)) {
                m = v;
                *at = (int32_t)((y0 + i) * W + x0 + j);
            }
        }
    return m;
}

static void maxpool_should_scan_windows_like_pytorch(void **state) {
    (void)state;
    cnn_rng rng;
    cnn_rng_seed(&rng, 5, 0);
    /* H, W, kh, kw, sh, sw: AlexNet's 3x3 stride 2, and odd shapes. */
    const int64_t cases[][6] = {{55, 55, 3, 3, 2, 2}, {13, 13, 3, 3, 2, 2}, {9, 40, 2, 3, 1, 2},
                                {7, 7, 7, 7, 1, 1},   {20, 33, 1, 4, 3, 4}, {6, 50, 2, 2, 2, 2}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const int64_t H = cases[c][0], W = cases[c][1], kh = cases[c][2], kw = cases[c][3];
        const int64_t sh = cases[c][4], sw = cases[c][5];
        const int64_t oh = (H - kh) / sh + 1, ow = (W - kw) / sw + 1;
        float *x = random_floats(&rng, (size_t)(H * W)), *y = malloc((size_t)(oh * ow) * 4);
        int32_t *arg = malloc((size_t)(oh * ow) * sizeof *arg);
        assert_true(y && arg);
        /* Ties, NaNs (several in one window) and infinities. */
        for (int64_t i = 0; i < H * W; i += 5)
            x[i] = i % 15 == 0 ? NAN : i % 3 == 1 ? -INFINITY : i % 3 == 2 ? INFINITY : 0.5f;
        for (int with_arg = 0; with_arg < 2; with_arg++) {
            cnn_vmaxpool_plane(y, with_arg ? arg : NULL, x, H, W, kh, kw, sh, sw, oh, ow);
            for (int64_t oy = 0; oy < oh; oy++)
                for (int64_t ox = 0; ox < ow; ox++) {
                    int32_t at;
                    const float want = max_window(x, W, oy * sh, ox * sw, kh, kw, &at);
                    const float got = y[oy * ow + ox];
                    if (!(got == want || (isnan(got) && isnan(want))))
                        fail_msg("case %zu: y[%lld][%lld] = %g, expected %g", c, (long long)oy,
                                 (long long)ox, got, want);
                    if (with_arg && arg[oy * ow + ox] != at)
                        fail_msg("case %zu: argmax[%lld][%lld] = %d, expected %d", c, (long long)oy,
                                 (long long)ox, arg[oy * ow + ox], at);
                }
        }
        free(x), free(y), free(arg);
    }
}

/* What python3-torch 1.13 gives for one 3x3 window with two NaNs:
 * max_pool2d(..., return_indices=True) returns NaN at index 3, the second. */
static void maxpool_gradient_should_go_to_pytorchs_nan(void **state) {
    (void)state;
    for (int general = 0; general < 2; general++) {
        cnn_layer L = cnn_maxpool2d(3);
        L.stride[0] = L.stride[1] = 1;
        L.padding[0] = L.padding[1] = general; /* padding takes the general window loop */
        cnn_model *m = cnn_model_new("Net");
        assert_non_null(m);
        assert_true(cnn_model_add_layer(m, 0, "pool", &L) >= 0);
        assert_int_equal(cnn_model_finalize(m), CNN_OK);
        cnn_tensor x;
        cnn_shape s = cnn_shape_make(4, (int64_t[]){1, 1, 3, 3});
        assert_int_equal(cnn_tensor_alloc(&x, &s), CNN_OK);
        const float in[9] = {1, NAN, 3, NAN, 2, 0, 5, 1, 1};
        memcpy(x.data, in, sizeof in);
        const float *y = cnn_model_forward_train(m, &x, 1, 0);
        assert_non_null(y);
        const size_t center = general ? 4 : 0; /* the output whose window is the whole input */
        assert_true(isnan(y[center]));
        cnn_shape ys = cnn_model_output_shape(m);
        size_t ny;
        cnn_shape_numel(&ys, &ny);
        float *dy = calloc(ny, sizeof *dy), dx[9];
        assert_non_null(dy);
        dy[center] = 1.0f;
        assert_int_equal(cnn_model_backward(m, x.data, dy, dx), CNN_OK);
        for (int i = 0; i < 9; i++)
            assert_true(dx[i] == (i == 3 ? 1.0f : 0.0f));
        free(dy);
        cnn_tensor_free(&x);
        cnn_model_free(m);
    }
}

/* One Conv2d layer run through a model: input, output gradient, and what
 * the model computes from them. */
typedef struct conv_run {
    float *x, *dy, *w, *b, *y, *dx, *dw, *db;
    float *y_infer; /* the inference-mode forward pass's output */
    size_t nx, ny, nw, nb;
    char algorithm[64]; /* the path the layer took (cnn_conv2d_algorithm) */
    char algorithm_infer[64]; /* and in an inference plan */
} conv_run;

static conv_run run_conv(const cnn_layer *L, const int64_t shape[4], int threads) {
    cnn_set_threads(threads);
    cnn_model *m = cnn_model_new("Net");
    assert_non_null(m);
    assert_true(cnn_model_add_layer(m, 0, "conv", L) >= 0);
    assert_int_equal(cnn_model_finalize(m), CNN_OK);
    assert_int_equal(cnn_model_init(m, CNN_INIT_DEFAULT, 5), CNN_OK);
    cnn_tensor x;
    cnn_shape s = cnn_shape_make(4, shape);
    assert_int_equal(cnn_tensor_alloc(&x, &s), CNN_OK);
    cnn_rng rng;
    cnn_rng_seed(&rng, 3, 0);
    conv_run r = {.nx = cnn_tensor_numel(&x)};
    for (size_t i = 0; i < r.nx; i++)
        x.data[i] = cnn_rng_uniform(&rng) * 2.0f - 1.0f;
    const float *y = cnn_model_forward_train(m, &x, 1, 0);
    assert_non_null(y);
    for (int i = 0; i < m->n_nodes; i++)
        if (m->nodes[i].L.op == CNN_OP_CONV2D)
            snprintf(r.algorithm, sizeof r.algorithm, "%s", cnn_conv2d_algorithm(&m->nodes[i], true));
    cnn_shape ys = cnn_model_output_shape(m);
    cnn_shape_numel(&ys, &r.ny);
    cnn_param_info w = cnn_model_param(m, 0), b = cnn_model_param(m, 1);
    r.nw = w.numel;
    r.nb = b.numel;
    r.x = x.data;
    r.y = malloc(r.ny * sizeof(float));
    r.dy = malloc(r.ny * sizeof(float));
    r.dx = malloc(r.nx * sizeof(float));
    r.w = malloc(r.nw * sizeof(float));
    r.b = malloc(r.nb * sizeof(float));
    r.dw = malloc(r.nw * sizeof(float));
    r.db = malloc(r.nb * sizeof(float));
    assert_true(r.y && r.dy && r.dx && r.w && r.b && r.dw && r.db);
    memcpy(r.y, y, r.ny * sizeof(float));
    for (size_t i = 0; i < r.ny; i++)
        r.dy[i] = cnn_rng_uniform(&rng) - 0.5f;
    cnn_model_zero_grad(m);
    assert_int_equal(cnn_model_backward(m, x.data, r.dy, r.dx), CNN_OK);
    memcpy(r.w, w.data, r.nw * sizeof(float));
    memcpy(r.b, b.data, r.nb * sizeof(float));
    memcpy(r.dw, w.grad, r.nw * sizeof(float));
    memcpy(r.db, b.grad, r.nb * sizeof(float));
    cnn_tensor yi;
    assert_int_equal(cnn_model_forward(m, &x, &yi), CNN_OK);
    assert_int_equal(cnn_tensor_numel(&yi), r.ny);
    r.y_infer = yi.data;
    for (int i = 0; i < m->n_nodes; i++)
        if (m->nodes[i].L.op == CNN_OP_CONV2D)
            snprintf(r.algorithm_infer, sizeof r.algorithm_infer, "%s",
                     cnn_conv2d_algorithm(&m->nodes[i], false));
    cnn_model_free(m);
    return r;
}

static void free_run(conv_run *r) {
    free(r->x), free(r->dy), free(r->w), free(r->b), free(r->y), free(r->dx), free(r->dw),
        free(r->db), free(r->y_infer);
}

/* Every product of the convolution in double: the reference values of y, dx,
 * dw and db, and for each the sum of the magnitudes of its terms, which
 * bounds what float rounding may move it by. */
typedef struct conv_ref_sums {
    double *v, *mag;
} conv_ref_sums;

static conv_ref_sums ref_alloc(size_t n, const float *init) {
    conv_ref_sums r = {calloc(n, sizeof(double)), calloc(n, sizeof(double))};
    assert_true(r.v && r.mag);
    for (size_t i = 0; init && i < n; i++) {
        r.v[i] = init[i];
        r.mag[i] = fabs((double)init[i]);
    }
    return r;
}

static void ref_add(conv_ref_sums *r, size_t i, double t) {
    r->v[i] += t;
    r->mag[i] += fabs(t);
}

/* The worst |got - ref| / (1 + sum of |terms|) over n values. */
static double ref_error(const conv_ref_sums *r, const float *got, size_t n) {
    double worst = 0.0;
    for (size_t i = 0; i < n; i++) {
        const double e = fabs(got[i] - r->v[i]) / (1.0 + r->mag[i]);
        if (e > worst) worst = e;
    }
    free(r->v), free(r->mag);
    return worst;
}

/* A run's four results against the double reference; returns the worst. */
static double check_run(const cnn_layer *L, const int64_t shape[4], const conv_run *r,
                        double err[4]) {
    const int64_t N = shape[0], C = shape[1], H = shape[2], W = shape[3], OC = L->out;
    const int64_t G = L->groups, Cg = C / G, OCg = OC / G, kh = L->kernel[0], kw = L->kernel[1];
    const int64_t oh = (H + 2 * L->padding[0] - kh) / L->stride[0] + 1;
    const int64_t ow = (W + 2 * L->padding[1] - kw) / L->stride[1] + 1;
    assert_true((size_t)(N * OC * oh * ow) == r->ny);
    conv_ref_sums y = ref_alloc(r->ny, NULL), dx = ref_alloc(r->nx, NULL);
    conv_ref_sums dw = ref_alloc(r->nw, NULL), db = ref_alloc(r->nb, NULL);
    for (int64_t n = 0; n < N; n++)
        for (int64_t o = 0; o < OC; o++)
            for (int64_t oy = 0; oy < oh; oy++)
                for (int64_t ox = 0; ox < ow; ox++) {
                    const size_t yi = (size_t)(((n * OC + o) * oh + oy) * ow + ox);
                    ref_add(&y, yi, r->b[o]);
                    ref_add(&db, (size_t)o, r->dy[yi]);
                    for (int64_t c = 0; c < Cg; c++)
                        for (int64_t ki = 0; ki < kh; ki++)
                            for (int64_t kj = 0; kj < kw; kj++) {
                                const int64_t iy = oy * L->stride[0] - L->padding[0] + ki;
                                const int64_t ix = ox * L->stride[1] - L->padding[1] + kj;
                                if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                                const size_t xi =
                                    (size_t)(((n * C + o / OCg * Cg + c) * H + iy) * W + ix);
                                const size_t wi = (size_t)(((o * Cg + c) * kh + ki) * kw + kj);
                                ref_add(&y, yi, (double)r->w[wi] * r->x[xi]);
                                ref_add(&dx, xi, (double)r->w[wi] * r->dy[yi]);
                                ref_add(&dw, wi, (double)r->x[xi] * r->dy[yi]);
                            }
                }
    err[0] = ref_error(&y, r->y, r->ny);
    err[1] = ref_error(&dx, r->dx, r->nx);
    err[2] = ref_error(&dw, r->dw, r->nw);
    err[3] = ref_error(&db, r->db, r->nb);
    return fmax(fmax(err[0], err[1]), fmax(err[2], err[3]));
}

/* A batch of 8 on 3 threads takes the chunked path (a thread would idle, and
 * each layer has over 2^20 multiply-adds); on 1 or 2 threads the per-image
 * path, direct where the kernels allow. Each against double precision. */
static void convolution_paths_should_equal_double_precision(void **state) {
    (void)state;
    const int saved = omp_get_max_threads();
    cnn_layer lenet2 = cnn_conv2d(6, 16, 5), padded = cnn_conv2d(3, 32, 3);
    cnn_layer strided = cnn_conv2d(4, 16, 3), grouped = cnn_conv2d(8, 32, 3);
    padded.padding[0] = padded.padding[1] = 2;
    strided.stride[0] = strided.stride[1] = 2;
    strided.padding[0] = 1;
    grouped.groups = 2;
    /* Over 2^16 floats of patches per image: chunked, by Winograd's minimal
     * filtering, the variant cnn_winograd_pick takes for the output (and the
     * input gradient's, at padding r - 1 - p): F(4x4, 3x3) on 13x11 and 30x7,
     * F(2x2, 3x3) on 6x6, F(4x4, 5x5) for 5x5 kernels. */
    cnn_layer wino = cnn_conv2d(64, 48, 3), wino_pad = cnn_conv2d(40, 36, 3);
    cnn_layer wino_small = cnn_conv2d(208, 32, 3), wino5 = cnn_conv2d(40, 36, 5);
    cnn_layer wino5_pad = cnn_conv2d(36, 40, 5);
    wino.padding[0] = wino.padding[1] = 1;
    wino_pad.padding[1] = 2;
    wino_small.padding[0] = wino_small.padding[1] = 1;
    wino5.padding[0] = wino5.padding[1] = 2;
    wino5_pad.padding[1] = 1;
    struct {
        const char *name;
        cnn_layer L;
        int64_t shape[4];
        const char *path; /* when the thread count does not decide it */
    } cases[] = {{"LeNet conv2", lenet2, {8, 6, 14, 14}, NULL},
                 {"3x3 padding 2", padded, {8, 3, 9, 21}, NULL},
                 {"3x3 stride 2", strided, {8, 4, 41, 40}, NULL},
                 {"groups 2", grouped, {8, 8, 20, 20}, NULL},
                 {"groups 2, 11x11", grouped, {8, 8, 13, 13}, NULL},
                 {"Winograd", wino, {8, 64, 13, 11}, "Winograd"},
                 {"Winograd pad 0,2", wino_pad, {5, 40, 30, 7}, "Winograd"},
                 {"Winograd 6x6", wino_small, {32, 208, 6, 6}, "Winograd"},
                 {"Winograd 5x5", wino5, {8, 40, 16, 9}, "Winograd"},
                 {"5x5 pad 0,1", wino5_pad, {8, 36, 16, 13}, "Winograd"}};
    /* Each variant runs in some case, forward and for the input gradient. */
    int forward[3] = {0}, backward[3] = {0};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const cnn_layer *L = &cases[c].L;
        const int64_t *s = cases[c].shape, r = L->kernel[0];
        if (!cases[c].path) continue;
        const cnn_wino *f = cnn_winograd_pick(r, s[2] + 2 * L->padding[0] - r + 1,
                                              s[3] + 2 * L->padding[1] - r + 1),
                       *fdx = cnn_winograd_pick(r, s[2], s[3]);
        assert_non_null(f), assert_non_null(fdx);
        printf("  %-16s F(%dx%d, %dx%d) forward, F(%dx%d, %dx%d) input gradient\n",
               cases[c].name, f->m, f->m, f->r, f->r, fdx->m, fdx->m, fdx->r, fdx->r);
        forward[f->r == 5 ? 2 : f->m == 4] = backward[fdx->r == 5 ? 2 : fdx->m == 4] = 1;
    }
    for (int v = 0; v < 3; v++)
        assert_true(forward[v] && backward[v]);
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        for (int t = 1; t <= 3; t++) {
            conv_run r = run_conv(&cases[c].L, cases[c].shape, t);
            double e[4];
            const double worst = check_run(&cases[c].L, cases[c].shape, &r, e);
            printf("  %-16s %d thread%s (%s): y %.2g, dx %.2g, dw %.2g, db %.2g\n", cases[c].name,
                   t, t > 1 ? "s" : " ", r.algorithm, e[0], e[1], e[2], e[3]);
            const char *want = cases[c].path ? cases[c].path : t == 3 ? "chunked" : "per image";
            assert_memory_equal(r.algorithm, want, strlen(want));
            /* F(4x4, .) scales terms by up to 16 and 1/45 on the way (its
             * tables' points reach 2 and -2): about 1e-6 of the magnitudes, as
             * tools/winograd_matrices.py measures; every other path 1e-6. */
            assert_true(worst < (strstr(r.algorithm, "F(4x4") ? 4e-6 : 1e-6));
            /* The inference plan's forward pass, which may take another path:
             * with AVX-512 LeNet's conv2 runs the narrow kernel in both plans,
             * and the grouped layer's 11-wide rows run direct (two rows to a
             * tile) in inference, by im2col with kept patches in training. */
            float *y_train = r.y;
            r.y = r.y_infer;
            double ei[4];
            check_run(&cases[c].L, cases[c].shape, &r, ei);
            r.y = y_train;
            printf("  %-16s %d thread%s inference (%s): y %.2g\n", cases[c].name, t,
                   t > 1 ? "s" : " ", r.algorithm_infer, ei[0]);
            assert_true(ei[0] < (strstr(r.algorithm_infer, "F(4x4") ? 4e-6 : 1e-6));
            const bool avx512 = cnn_simd_level() == CNN_SIMD_AVX512;
            if (c == 0 && t < 3) {
                const char *path = avx512 ? "per image, narrow" : "per image, im2col";
                assert_string_equal(r.algorithm, path);
                assert_string_equal(r.algorithm_infer, path);
            }
            if (!strcmp(cases[c].name, "groups 2, 11x11") && t < 3) {
                assert_string_equal(r.algorithm, "per image, im2col");
                assert_string_equal(r.algorithm_infer,
                                    avx512 ? "per image, direct" : "per image, im2col");
            }
            free_run(&r);
        }
    }
    cnn_set_threads(saved);
}

static double max_rel(const float *a, const float *b, size_t n) {
    double worst = 0.0;
    for (size_t i = 0; i < n; i++) {
        const double e = fabs((double)a[i] - b[i]) / fmax(1.0, fabs((double)b[i]));
        if (e > worst) worst = e;
    }
    return worst;
}

/* The convolution's workspace is laid out per thread: a model planned on one
 * thread and run on two must plan again (ASan sees an overrun otherwise), and
 * a backward pass on another thread count than its forward pass is refused. */
static void changing_threads_should_replan_the_workspace(void **state) {
    (void)state;
    const int saved = omp_get_max_threads();
    cnn_layer L = cnn_conv2d(6, 16, 5);
    cnn_model *m = cnn_model_new("Net");
    assert_non_null(m);
    assert_true(cnn_model_add_layer(m, 0, "conv", &L) >= 0);
    assert_int_equal(cnn_model_finalize(m), CNN_OK);
    assert_int_equal(cnn_model_init(m, CNN_INIT_DEFAULT, 5), CNN_OK);
    cnn_tensor x, y1, y2;
    cnn_shape s = cnn_shape_make(4, (int64_t[]){8, 6, 14, 14});
    assert_int_equal(cnn_tensor_alloc(&x, &s), CNN_OK);
    for (size_t i = 0; i < cnn_tensor_numel(&x); i++)
        x.data[i] = (float)(i % 7) - 3.0f;
    cnn_set_threads(1);
    assert_int_equal(cnn_model_forward(m, &x, &y1), CNN_OK);
    cnn_set_threads(2);
    assert_int_equal(cnn_model_forward(m, &x, &y2), CNN_OK);
    assert_true(max_rel(y1.data, y2.data, cnn_tensor_numel(&y1)) < 1e-6);
    assert_non_null(cnn_model_forward_train(m, &x, 1, 0));
    cnn_set_threads(1);
    float *dy = calloc(cnn_tensor_numel(&y1), sizeof *dy);
    assert_non_null(dy);
    assert_int_equal(cnn_model_backward(m, x.data, dy, NULL), CNN_STATUS_INVALID_ARGUMENT);
    printf("  %s\n", cnn_model_error(m));
    free(dy);
    cnn_tensor_free(&x), cnn_tensor_free(&y1), cnn_tensor_free(&y2);
    cnn_model_free(m);
    cnn_set_threads(saved);
}

int main(void) {
    printf("kernels: %s\n", cnn_simd_name(cnn_simd_level()));
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(gemm_should_equal_the_plain_product_for_every_tile_shape),
        cmocka_unit_test(gemm_nt_should_equal_the_dot_products_for_every_tile_shape),
        cmocka_unit_test(direct_kernels_should_equal_the_plain_loops),
        cmocka_unit_test(lanes_kernels_should_equal_their_definitions),
        cmocka_unit_test(transpose_sum_should_transpose_and_add_row_sums),
        cmocka_unit_test(avgpool2_act_backward_should_follow_its_definition),
        cmocka_unit_test(im2col_and_col2im_should_follow_their_definitions),
        cmocka_unit_test(sigmoid_should_be_within_two_ulp_and_keep_nan),
        cmocka_unit_test(maxpool_should_scan_windows_like_pytorch),
        cmocka_unit_test(maxpool_gradient_should_go_to_pytorchs_nan),
        cmocka_unit_test(convolution_paths_should_equal_double_precision),
        cmocka_unit_test(changing_threads_should_replan_the_workspace),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
