/* transform.h - one training image from uint8 pixels to the loader's float
 * output: ToTensor's scaling, RandomResizedCrop or a resize, RandomCrop with
 * zero padding and RandomHorizontalFlip, with the draws cnnkit/data.h
 * documents. Never installed. */
#ifndef CNNKIT_TRANSFORM_H
#define CNNKIT_TRANSFORM_H

#include <stdbool.h>
#include <stdint.h>

#include "cnnkit/rng.h"
#include "resize.h"

/* What every image goes through; fixed for a loader, shared by its threads. */
typedef struct cnn_transform {
    int64_t h, w;   /* source */
    int64_t oh, ow; /* output */
    bool resize;    /* bilinear from h x w to oh x ow (without random resized crop) */
    bool rrc;       /* random resized crop to oh x ow */
    int64_t pad;    /* random crop with this zero padding; 0 = off */
    bool hflip;
    float lut[256];    /* ToTensor: i / 255 in float32 */
    cnn_lerp *ph, *pw; /* owned: [oh], [ow] plans for the plain resize */
} cnn_transform;

/* Per-thread working memory, allocated once. */
typedef struct cnn_transform_scratch {
    float *src;        /* h x w: the image as floats */
    float *mid;        /* oh x ow: before the padded crop and flip */
    cnn_lerp *ph, *pw; /* [oh], [ow]: plans for a random resized crop */
} cnn_transform_scratch;

/* false when out of memory (t is then empty). */
bool cnn_transform_init(cnn_transform *t, int64_t h, int64_t w, int64_t oh, int64_t ow, bool rrc,
                        int64_t pad, bool hflip);
void cnn_transform_free(cnn_transform *t);
bool cnn_transform_scratch_init(cnn_transform_scratch *s, const cnn_transform *t);
void cnn_transform_scratch_free(cnn_transform_scratch *s);

/* torchvision's RandomResizedCrop.get_params with scale (0.08, 1) and ratio
 * (3/4, 4/3) on an h x w image: the crop's top, left, height and width. */
void cnn_rrc_params(cnn_rng *r, int64_t h, int64_t w, int64_t *top, int64_t *left, int64_t *ch,
                    int64_t *cw);

/* img is (h,w) uint8; dst is (oh,ow) floats. Draws from r as documented. */
void cnn_transform_apply(const cnn_transform *t, cnn_transform_scratch *s, const uint8_t *img,
                         cnn_rng *r, float *dst);

#endif
