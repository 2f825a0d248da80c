/* vmath.h - private: elementwise functions over arrays, vectorized for the
 * instruction set of cnn_simd_level(). Never installed. */
#ifndef CNNKIT_VMATH_H
#define CNNKIT_VMATH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cnnkit/layer.h"

/* y[i] = 1 / (1 + exp(-x[i])) for i < n, on the calling thread. Within 2 ulp
 * of the correctly rounded value; NaN stays NaN; y may be x. */
void cnn_vsigmoid(float *y, const float *x, size_t n);

/* y[i] = act(x[i]) for i < n with act ReLU (NaN passes, as in PyTorch's
 * clamp_min), Sigmoid or Tanh, on the calling thread; y may be x. The one
 * implementation of those layers' forward passes, and of the activation a
 * Conv2d or Linear applies to its own output in inference. */
void cnn_vactivation(cnn_op op, float *y, const float *x, size_t n);

/* The same in blocks of 4096 that the OpenMP threads share (above 65536 values). */
void cnn_vactivation_shared(cnn_op op, float *y, const float *x, size_t n);

/* MaxPool2d of one plane x (H,W) into y (oh,ow) for windows that lie inside
 * the plane (no padding, dilation 1): y[oy][ox] = the maximum of
 * x[oy*sh + i][ox*sw + j] by PyTorch's scan (row by row, a value replaces
 * the maximum when greater or NaN); arg, when not NULL, gets its index into
 * the plane (H*W must fit an int32). */
void cnn_vmaxpool_plane(float *y, int32_t *arg, const float *x, int64_t H, int64_t W, int64_t kh,
                        int64_t kw, int64_t sh, int64_t sw, int64_t oh, int64_t ow);

/* The backward passes of AvgPool2d(2) (kernel 2, stride 2, no padding) and
 * of the activation act (ReLU, Sigmoid or Tanh) before it, in one pass over
 * one plane, on the calling thread: dx (H,W) = g * act'(y), or += with add,
 * where g = dy[r/2][c/2] / 4 inside the windows (r < 2*oh, c < 2*ow) and 0
 * elsewhere, and act' comes from the activation's output y: y > 0, y(1 - y),
 * 1 - y^2. The same bits as the two passes one after the other. v is room
 * for 2*ow floats. */
void cnn_vavgpool2_act_backward(cnn_op act, float *dx, const float *y, const float *dy, int64_t H,
                                int64_t W, int64_t oh, int64_t ow, bool add, float *v);

/* The sum of v in 16 float lanes (vector adds), the lanes and the tail added
 * in double: a bias gradient sums thousands of terms. */
float cnn_vsum(const float *v, int64_t n);

#endif
