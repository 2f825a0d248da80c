/* resize.h - bilinear resizing with PyTorch's arithmetic (see cnnkit/data.h),
 * split into a plan per axis and a plane kernel so that the loader plans once
 * and resizes crops without copying them. Never installed. */
#ifndef CNNKIT_RESIZE_H
#define CNNKIT_RESIZE_H

#include <stdint.h>

/* One output coordinate along one axis: the two source indices and weights. */
typedef struct cnn_lerp {
    int64_t i0, i1;
    float l0, l1;
} cnn_lerp;

/* plan is [out]: upsample_bilinear2d's indices and lambdas, align_corners=False. */
void cnn_lerp_plan(cnn_lerp *plan, int64_t in, int64_t out);

/* dst is (oh,ow) contiguous; src is a plane whose rows are src_stride floats
 * apart (a crop of a larger image is src + top * stride + left). ph is [oh],
 * pw is [ow], both planned from the crop's own height and width. */
void cnn_resize_plane(float *dst, int64_t oh, int64_t ow, const float *src, int64_t src_stride,
                      const cnn_lerp *ph, const cnn_lerp *pw);

#endif
