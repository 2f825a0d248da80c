/* winograd.c - 3x3 convolutions with stride 1 by Winograd's minimal filtering
 * F(2x2, 3x3) (Lavin and Gray, "Fast Algorithms for Convolutional Neural
 * Networks", 2015).
 *
 * Each 2x2 block of outputs is computed from the 4x4 block of inputs under
 * it: with d the input tile and g the 3x3 kernel, Y = A^T [(G g G^T) .
 * (B^T d B)] A, where . multiplies element by element. Summed over input
 * channels, each of the 16 elements is a matrix product over all tiles:
 *   M[e] (OC, T) = U[e] (OC, C) V[e] (C, T),  e = 0..15,
 * U = the transformed kernels, V = the transformed input tiles. That is 16
 * multiplications per 4 outputs instead of 36: 2.25x fewer, and the products
 * are OpenBLAS's large matrix products. The transforms add and subtract
 * only (and halve, in G), so rounding stays at the level of the direct sum;
 * the tests hold it to the same tolerance. */
#include <cblas.h>
#include <stdbool.h>
#include <stddef.h>

#include "winograd.h"

void cnn_winograd_kernels(float *u, const float *w, int64_t OC, int64_t C, bool flip) {
    const int64_t OCC = OC * C;
#pragma omp parallel for schedule(static) if (OCC > 4096)
    for (int64_t i = 0; i < OCC; i++) {
        /* Entry (o, c) of u: w[o][c], or with flip w[c][o] turned by 180 degrees. */
        const int64_t o = i / C, c = i % C;
        const float *w9 = flip ? w + (c * OC + o) * 9 : w + i * 9;
        float g[9];
        for (int k = 0; k < 9; k++)
            g[k] = w9[flip ? 8 - k : k];
        float t[4][3]; /* G g */
        for (int s = 0; s < 3; s++) {
            t[0][s] = g[s];
            t[1][s] = 0.5f * (g[s] + g[3 + s] + g[6 + s]);
            t[2][s] = 0.5f * (g[s] - g[3 + s] + g[6 + s]);
            t[3][s] = g[6 + s];
        }
        for (int r = 0; r < 4; r++) { /* (G g) G^T */
            u[(r * 4 + 0) * OCC + i] = t[r][0];
            u[(r * 4 + 1) * OCC + i] = 0.5f * (t[r][0] + t[r][1] + t[r][2]);
            u[(r * 4 + 2) * OCC + i] = 0.5f * (t[r][0] - t[r][1] + t[r][2]);
            u[(r * 4 + 3) * OCC + i] = t[r][2];
        }
    }
}

size_t cnn_winograd_floats(int64_t B, int64_t C, int64_t OC, int64_t oh, int64_t ow) {
    const int64_t T = B * ((oh + 1) / 2) * ((ow + 1) / 2);
    return (size_t)(16 * (C + OC) * T);
}

/* V[e][c][t] = (B^T d B)[e] for every input tile d; B^T = [1 0 -1 0; 0 1 1 0;
 * 0 -1 1 0; 0 1 0 -1]. Zero outside the image: the padding. */
static void input_transform(float *v, const float *x, int64_t B, int64_t C, int64_t H, int64_t W,
                            int64_t th, int64_t tw, int64_t ph, int64_t pw) {
    const int64_t T = B * th * tw, CT = C * T;
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t b = 0; b < B; b++) {
        for (int64_t c = 0; c < C; c++) {
            const float *xp = x + (b * C + c) * H * W;
            for (int64_t ty = 0; ty < th; ty++) {
                for (int64_t tx = 0; tx < tw; tx++) {
                    float d[4][4];
                    const int64_t y0 = 2 * ty - ph, x0 = 2 * tx - pw;
                    if (y0 >= 0 && y0 + 4 <= H && x0 >= 0 && x0 + 4 <= W) {
                        for (int i = 0; i < 4; i++)
                            for (int j = 0; j < 4; j++)
                                d[i][j] = xp[(y0 + i) * W + x0 + j];
                    } else {
                        /* At the border: every load from a clamped place, then a select,
                         * so no branch per element (and an inf there stays out of it). */
                        for (int i = 0; i < 4; i++)
                            for (int j = 0; j < 4; j++) {
                                const int64_t iy = y0 + i, ix = x0 + j;
                                const int64_t cy = iy < 0 ? 0 : iy >= H ? H - 1 : iy;
                                const int64_t cx = ix < 0 ? 0 : ix >= W ? W - 1 : ix;
                                const float val = xp[cy * W + cx];
                                d[i][j] = iy >= 0 && iy < H && ix >= 0 && ix < W ? val : 0.0f;
                            }
                    }
                    float t[4][4]; /* B^T d */
                    for (int j = 0; j < 4; j++) {
                        t[0][j] = d[0][j] - d[2][j];
                        t[1][j] = d[1][j] + d[2][j];
                        t[2][j] = d[2][j] - d[1][j];
                        t[3][j] = d[1][j] - d[3][j];
                    }
                    float *vt = v + c * T + (b * th + ty) * tw + tx;
                    for (int i = 0; i < 4; i++) { /* (B^T d) B */
                        vt[(i * 4 + 0) * CT] = t[i][0] - t[i][2];
                        vt[(i * 4 + 1) * CT] = t[i][1] + t[i][2];
                        vt[(i * 4 + 2) * CT] = t[i][2] - t[i][1];
                        vt[(i * 4 + 3) * CT] = t[i][1] - t[i][3];
                    }
                }
            }
        }
    }
}

/* y = bias + A^T m A for every tile, A^T = [1 1 1 0; 0 1 -1 -1], clipped at
 * the output's edge when oh or ow is odd. */
static void output_transform(float *y, const float *m, const float *bias, bool acc, int64_t B,
                             int64_t OC, int64_t oh, int64_t ow, int64_t th, int64_t tw) {
    const int64_t T = B * th * tw, OT = OC * T;
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t b = 0; b < B; b++) {
        for (int64_t o = 0; o < OC; o++) {
            float *yp = y + (b * OC + o) * oh * ow;
            const float bo = bias ? bias[o] : 0.0f;
            for (int64_t ty = 0; ty < th; ty++) {
                for (int64_t tx = 0; tx < tw; tx++) {
                    const float *mt = m + o * T + (b * th + ty) * tw + tx;
                    float a[4][4];
                    for (int e = 0; e < 16; e++)
                        a[e / 4][e % 4] = mt[e * OT];
                    float t[2][4]; /* A^T a */
                    for (int j = 0; j < 4; j++) {
                        t[0][j] = a[0][j] + a[1][j] + a[2][j];
                        t[1][j] = a[1][j] - a[2][j] - a[3][j];
                    }
                    for (int i = 0; i < 2; i++) {
                        const int64_t oy = 2 * ty + i;
                        if (oy >= oh) break;
                        const float r[2] = {t[i][0] + t[i][1] + t[i][2],
                                            t[i][1] - t[i][2] - t[i][3]};
                        for (int j = 0; j < 2; j++)
                            if (2 * tx + j < ow)
                                yp[oy * ow + 2 * tx + j] =
                                    (acc ? yp[oy * ow + 2 * tx + j] : bo) + r[j];
                    }
                }
            }
        }
    }
}

void cnn_winograd_conv(float *y, const float *x, const float *u, const float *bias, bool accumulate,
                       int64_t B, int64_t C, int64_t H, int64_t W, int64_t OC, int64_t oh,
                       int64_t ow, int64_t ph, int64_t pw, float *work) {
    const int64_t th = (oh + 1) / 2, tw = (ow + 1) / 2, T = B * th * tw;
    float *v = work, *m = work + 16 * C * T;
    input_transform(v, x, B, C, H, W, th, tw, ph, pw);
    for (int e = 0; e < 16; e++)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)OC, (int)T, (int)C, 1.0f,
                    u + e * OC * C, (int)C, v + e * C * T, (int)T, 0.0f, m + e * OC * T, (int)T);
    output_transform(y, m, bias, accumulate, B, OC, oh, ow, th, tw);
}
