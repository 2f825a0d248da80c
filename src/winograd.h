/* winograd.h - private: 3x3 stride-1 convolutions by Winograd's F(2x2, 3x3).
 * Never installed. */
#ifndef CNNKIT_WINOGRAD_H
#define CNNKIT_WINOGRAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The transformed kernels: u is (16, OC, C) from w (OC, C, 3, 3); with flip,
 * from w (C, OC, 3, 3) with each kernel turned by 180 degrees, which makes
 * the convolution of dy give a layer's input gradient. */
void cnn_winograd_kernels(float *u, const float *w, int64_t OC, int64_t C, bool flip);

/* Floats of work cnn_winograd_conv needs for B images. */
size_t cnn_winograd_floats(int64_t B, int64_t C, int64_t OC, int64_t oh, int64_t ow);

/* y (B,OC,oh,ow) = bias + the 3x3 convolution of x (B,C,H,W) with the kernels
 * u came from, stride 1, padding (ph, pw); bias may be NULL; with accumulate,
 * y += the convolution instead. The products run on OpenBLAS's threads, the
 * transforms on OpenMP's. */
void cnn_winograd_conv(float *y, const float *x, const float *u, const float *bias, bool accumulate,
                       int64_t B, int64_t C, int64_t H, int64_t W, int64_t OC, int64_t oh,
                       int64_t ow, int64_t ph, int64_t pw, float *work);

#endif
