/* conv_direct.h - private: a convolution's weight gradient for one image
 * without im2col, for stride 1 and dilation 1 on CPUs with AVX-512. Never
 * installed. */
#ifndef CNNKIT_CONV_DIRECT_H
#define CNNKIT_CONV_DIRECT_H

#include <stdbool.h>

/* One image and group: x is (C,H,W), dy is (M,oh,ow), the weights (M,C,kh,kw). */
typedef struct cnn_conv_geom {
    int C, H, W, M, oh, ow, kh, kw, ph, pw;
} cnn_conv_geom;

/* Floats of lane partial sums per weight that cnn_conv_direct_dw keeps. */
#define CNN_DIRECT_LANES 16

/* True when this process runs the kernel (AVX-512) and it pays for g. */
bool cnn_conv_direct_dw_ok(const cnn_conv_geom *g);

/* The weight gradient of one image, dw[m][c][ki][kj] += sum over (oy, ox) of
 * dy[m][oy][ox] * x[c][oy - ph + ki][ox - pw + kj] (zero outside x), kept
 * unreduced: lanes is (M*C*kh*kw, CNN_DIRECT_LANES) and each weight's
 * gradient is the sum of its row. The caller sums the rows once per batch:
 * no horizontal additions per image. */
void cnn_conv_direct_dw(const cnn_conv_geom *g, const float *x, const float *dy, float *lanes);

#endif
