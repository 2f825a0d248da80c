/* vmath.h - private: elementwise functions over arrays, vectorized for the
 * instruction set of cnn_simd_level(). Never installed. */
#ifndef CNNKIT_VMATH_H
#define CNNKIT_VMATH_H

#include <stddef.h>

/* y[i] = 1 / (1 + exp(-x[i])) for i < n, on the calling thread. Within 2 ulp
 * of the correctly rounded value; NaN stays NaN; y may be x. */
void cnn_vsigmoid(float *y, const float *x, size_t n);

#endif
