/* resize.c - bilinear resizing equal to PyTorch's F.interpolate(mode='bilinear',
 * align_corners=False) on float32 (aten's upsample_bilinear2d, CPU). */
#include "resize.h"

#include <stdlib.h>

#include "cnnkit/data.h"
#include "util.h"

void cnn_lerp_plan(cnn_lerp *plan, int64_t in, int64_t out) {
    /* area_pixel_compute_scale<float>: the ratio is a float ... */
    float scale = (float)in / (float)out;
    for (int64_t o = 0; o < out; o++) {
        cnn_lerp *p = &plan[o];
        if (in == out) {
            *p = (cnn_lerp){o, o, 1.0f, 0.0f};
            continue;
        }
        /* ... but the source index is computed in acc_type<float> = double. */
        double real = (double)scale * ((double)o + 0.5) - 0.5;
        if (real < 0) real = 0;
        int64_t i0 = (int64_t)real;
        p->i0 = i0;
        p->i1 = i0 + (i0 < in - 1 ? 1 : 0);
        p->l1 = (float)(real - (double)i0);
        p->l0 = 1.0f - p->l1;
    }
}

void cnn_resize_plane(float *dst, int64_t oh, int64_t ow, const float *src, int64_t src_stride,
                      const cnn_lerp *ph, const cnn_lerp *pw) {
    for (int64_t y = 0; y < oh; y++) {
        const float *r0 = src + ph[y].i0 * src_stride;
        const float *r1 = src + ph[y].i1 * src_stride;
        float h0 = ph[y].l0, h1 = ph[y].l1;
        float *out = dst + y * ow;
        for (int64_t x = 0; x < ow; x++) {
            const cnn_lerp *w = &pw[x];
            /* Float weights, a double sum: PyTorch's kernel for one channel. The
             * products of two floats are exact in double, so contraction into
             * FMAs cannot change the result. */
            float w00 = h0 * w->l0, w01 = h0 * w->l1, w10 = h1 * w->l0, w11 = h1 * w->l1;
            double v = (double)r0[w->i0] * w00 + (double)r0[w->i1] * w01 + (double)r1[w->i0] * w10 +
                       (double)r1[w->i1] * w11;
            out[x] = (float)v;
        }
    }
}

cnn_status cnn_resize_bilinear(const float *src, int64_t C, int64_t H, int64_t W, float *dst,
                               int64_t OH, int64_t OW) {
    if (!src || !dst || C <= 0 || H <= 0 || W <= 0 || OH <= 0 || OW <= 0)
        return CNN_STATUS_INVALID_ARGUMENT;
    size_t n, in_plane, out_plane;
    if (!cnn_mul_size((size_t)OH + (size_t)OW, sizeof(cnn_lerp), &n) ||
        !cnn_mul_size((size_t)H, (size_t)W, &in_plane) ||
        !cnn_mul_size((size_t)OH, (size_t)OW, &out_plane))
        return CNN_STATUS_NO_MEMORY;
    cnn_lerp *ph = malloc(n);
    if (!ph) return CNN_STATUS_NO_MEMORY;
    cnn_lerp *pw = ph + OH;
    cnn_lerp_plan(ph, H, OH);
    cnn_lerp_plan(pw, W, OW);
    for (int64_t c = 0; c < C; c++)
        cnn_resize_plane(dst + (size_t)c * out_plane, OH, OW, src + (size_t)c * in_plane, W, ph,
                         pw);
    free(ph);
    return CNN_OK;
}
