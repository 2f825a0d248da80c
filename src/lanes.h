/* lanes.h - private: 16 images at once, one image per vector lane, for
 * training small models on CPUs with AVX-512. A batch of 16 images of shape
 * (C,H,W) lies as [C][H][W][16]: every element a vector of its 16 images'
 * values. Never installed. */
#ifndef CNNKIT_LANES_H
#define CNNKIT_LANES_H

#include <stdbool.h>
#include <stddef.h>

#include "cnnkit/layer.h"
#include "conv_direct.h"

#define CNN_LANES 16

/* xl (per, 16) = the 16 images at x, per floats each, one after the other,
 * transposed; and back: x = xl transposed (or += with add). */
void cnn_lanes_gather(const float *x, size_t per, float *xl);
void cnn_lanes_scatter(const float *xl, size_t per, float *x, bool add);

/* True when this process runs the kernels below (AVX-512) and they take g
 * (stride 1, dilation 1, one group): kernels at most 7 by 7, padding less
 * than the kernel. */
bool cnn_lanes_conv_ok(const cnn_conv_geom *g);

/* The padded input: xp [C][H + 2ph][W + 2pw][16] from x, 16 images in lanes
 * (images = false) or one after the other (images = true, cnn_lanes_gather's
 * layout), zeros around. Without padding, x in lanes is already that. */
size_t cnn_lanes_pad_floats(const cnn_conv_geom *g);
void cnn_lanes_pad(const cnn_conv_geom *g, const float *x, bool images, float *xp);

/* y [M][oh][ow][16] = bias + the convolution of the padded input xp with w
 * (M, C, kh, kw), then act (cnn_vactivation's) when has_act; bias may be
 * NULL. */
void cnn_lanes_conv(const cnn_conv_geom *g, const float *xp, const float *w, const float *bias,
                    bool has_act, cnn_op act, float *y);

/* The weight gradient, kept per lane: dw [M*C*kh*kw][16] += the products of
 * dy [M][oh][ow][16] with the padded input's shifted planes; db [M][16] +=
 * dy's sums when not NULL. cnn_lanes_reduce adds the lanes up. */
void cnn_lanes_conv_dw(const cnn_conv_geom *g, const float *xp, const float *dy, float *dw,
                       float *db);

/* out[i] += the sum of the 16 lanes of row i of lanes, for i < n. */
void cnn_lanes_reduce(const float *lanes, size_t n, float *out);

/* The input gradient: dx [C][H][W][16] += the convolution of dy with the
 * flipped kernels, every product one that lands inside the padded input. */
void cnn_lanes_conv_dx(const cnn_conv_geom *g, const float *w, const float *dy, float *dx);

/* AvgPool2d(2) over C planes H x W in lanes (oh = H/2, ow = W/2): y = the
 * windows' means, summed in the order of op_pool.c's loop. */
void cnn_lanes_avgpool2(const float *x, int C, int H, int W, float *y);

/* Its backward pass: dx = dy/4 inside the windows and 0 outside, or += with
 * add. With fused, times act'(y) of the activation before it (ReLU, Sigmoid
 * or Tanh), y being its output: the same products, in the same order, as
 * cnn_vavgpool2_act_backward. */
void cnn_lanes_avgpool2_backward(bool fused, cnn_op act, float *dx, const float *y, const float *dy,
                                 int C, int H, int W, bool add);

#endif
