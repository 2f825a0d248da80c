/* im2col.h - private: an image's convolution patches as matrix rows, and the
 * adjoint. Never installed. */
#ifndef CNNKIT_IM2COL_H
#define CNNKIT_IM2COL_H

#include <stdint.h>

/* One image and group of a Conv2d: the input (C,H,W), kernel, stride,
 * padding, dilation, and the output size. */
typedef struct cnn_patch_geom {
    int64_t C, H, W, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow;
} cnn_patch_geom;

/* Rows r0..r1-1 of im2col: row r = (c, ki, kj) of the patch matrix (K, P),
 * K = C*kh*kw, P = oh*ow, holds x[c][oy*sh - ph + ki*dh][ox*sw - pw + kj*dw]
 * at oy*ow + ox, zero in the padding; row r starts at col + r*ld. */
void cnn_im2col(float *col, int64_t ld, const float *x, const cnn_patch_geom *g, int64_t r0,
                int64_t r1);

/* The adjoint of cnn_im2col over all K rows: dx (C,H,W) += every entry of
 * col that im2col would have read from there. */
void cnn_col2im(float *dx, const float *col, int64_t ld, const cnn_patch_geom *g);

#endif
