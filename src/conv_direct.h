/* conv_direct.h - private: a convolution and its weight gradient for one
 * image without im2col, for stride 1 and dilation 1 on CPUs with AVX-512.
 * Never installed. */
#ifndef CNNKIT_CONV_DIRECT_H
#define CNNKIT_CONV_DIRECT_H

#include <stdbool.h>
#include <stddef.h>

/* One image and group: x is (C,H,W), dy is (M,oh,ow), the weights (M,C,kh,kw). */
typedef struct cnn_conv_geom {
    int C, H, W, M, oh, ow, kh, kw, ph, pw;
} cnn_conv_geom;

/* Floats of lane partial sums per weight that cnn_conv_direct_dw keeps. */
#define CNN_DIRECT_LANES 16

/* True when this process runs the kernels (AVX-512) and they pay for g:
 * rows 16 or more wide, kernels at most 7 wide. */
bool cnn_conv_direct_ok(const cnn_conv_geom *g);

/* True when cnn_conv_direct alone pays for g: rows 8 or more wide. */
bool cnn_conv_direct_forward_ok(const cnn_conv_geom *g);

/* The narrow kernel, for rows 8 to 16 wide without padding (LeNet's conv2
 * in inference): each output column a vector of 16 channels, so no lane
 * idles, from the weights laid out as (C*kh*kw, M rounded up to 16).
 * cnn_conv_narrow_weights lays them out from (M, C, kh, kw) into
 * cnn_conv_narrow_floats(g) floats; cnn_conv_narrow computes y (M,oh,ow) =
 * bias + the convolution of x with them (bias may be NULL). */
bool cnn_conv_narrow_ok(const cnn_conv_geom *g);
size_t cnn_conv_narrow_floats(const cnn_conv_geom *g);
void cnn_conv_narrow_weights(const cnn_conv_geom *g, const float *w, float *wt);
void cnn_conv_narrow(const cnn_conv_geom *g, const float *x, const float *wt, const float *bias,
                     float *y);

/* Its weight gradient for one image, straight from the image: dwt (C*kh*kw,
 * M) += the products of x's shifted inputs with dyt, dy transposed to
 * (oh*ow, M). */
void cnn_conv_narrow_dw(const cnn_conv_geom *g, const float *x, const float *dyt, float *dwt);

/* dyt (P, M) = dy (M, P) transposed, for cnn_conv_narrow_dw and the input
 * gradient's product, and db[o] += the sum of dy's row o, on the way. */
void cnn_conv_transpose_sum(const float *dy, int M, int P, float *dyt, float *db);

/* y (M,oh,ow) = bias + the convolution of x with w (bias may be NULL);
 * scratch holds cnn_conv_direct_floats(g) floats (a padded copy of x). */
size_t cnn_conv_direct_floats(const cnn_conv_geom *g);
void cnn_conv_direct(const cnn_conv_geom *g, const float *x, const float *w, const float *bias,
                     float *y, float *scratch);

/* The weight gradient of one image, dw[m][c][ki][kj] += sum over (oy, ox) of
 * dy[m][oy][ox] * x[c][oy - ph + ki][ox - pw + kj] (zero outside x), kept
 * unreduced: lanes is (M*C*kh*kw, CNN_DIRECT_LANES) and each weight's
 * gradient is the sum of its row. The caller sums the rows once per batch:
 * no horizontal additions per image. */
void cnn_conv_direct_dw(const cnn_conv_geom *g, const float *x, const float *dy, float *lanes);

#endif
