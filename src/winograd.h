/* winograd.h - private: stride-1 convolutions by Winograd's minimal filtering
 * F(m x m, r x r): F(2x2, 3x3), F(4x4, 3x3) and F(4x4, 5x5). Never installed. */
#ifndef CNNKIT_WINOGRAD_H
#define CNNKIT_WINOGRAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One variant: m x m outputs per tile from the n x n inputs under them,
 * n = m + r - 1; its transforms are in winograd_tables.h. */
typedef struct cnn_wino {
    int m, r, n;
} cnn_wino;

/* The variant for square r x r kernels and an oh x ow output that needs the
 * fewest multiplications (n^2 per tile, tiles cut off at the edge counted
 * whole); NULL when there is none for r. */
const cnn_wino *cnn_winograd_pick(int64_t r, int64_t oh, int64_t ow);

/* The transformed kernels: u is (n*n, OC, C) from w (OC, C, r, r); with flip,
 * from w (C, OC, r, r) with each kernel turned by 180 degrees, which makes
 * the convolution of dy give a layer's input gradient. */
void cnn_winograd_kernels(const cnn_wino *f, float *u, const float *w, int64_t OC, int64_t C,
                          bool flip);

/* Floats of work cnn_winograd_conv needs for B images on `threads` OpenMP threads. */
size_t cnn_winograd_floats(const cnn_wino *f, int64_t B, int64_t C, int64_t OC, int64_t oh,
                           int64_t ow, int threads);

/* y (B,OC,oh,ow) = bias + the r x r convolution of x (B,C,H,W) with the
 * kernels u came from, stride 1, padding (ph, pw), 0 <= ph, pw < r; bias may
 * be NULL; with accumulate, y += the convolution instead. The transforms and
 * the products share out over at most `threads` OpenMP threads. */
void cnn_winograd_conv(const cnn_wino *f, float *y, const float *x, const float *u,
                       const float *bias, bool accumulate, int64_t B, int64_t C, int64_t H,
                       int64_t W, int64_t OC, int64_t oh, int64_t ow, int64_t ph, int64_t pw,
                       float *work, int threads);

/* The weight gradient of an r x r layer (r = 3 or 5), stride 1, padding
 * (ph, pw) < r, in chunks of images: macc (cnn_winograd_dw_acc_floats)
 * holds the transformed sums; the first chunk sets it, later ones add to it;
 * cnn_winograd_dw_finish adds the gradient it holds to dweight (OC, C, r, r).
 * x is (B,C,H,W), dy is (B,OC,oh,ow); work is cnn_winograd_dw_floats. */
size_t cnn_winograd_dw_acc_floats(int64_t r, int64_t OC, int64_t C);
size_t cnn_winograd_dw_floats(int64_t r, int64_t B, int64_t C, int64_t OC, int64_t oh, int64_t ow,
                              int threads);
void cnn_winograd_dw(int64_t r, float *macc, bool first, const float *x, const float *dy,
                     int64_t B, int64_t C, int64_t H, int64_t W, int64_t OC, int64_t oh,
                     int64_t ow, int64_t ph, int64_t pw, float *work, int threads);
void cnn_winograd_dw_finish(int64_t r, float *dweight, const float *macc, int64_t OC, int64_t C);

#endif
