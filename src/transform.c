/* transform.c - one training image through ToTensor, RandomResizedCrop or a
 * resize, RandomCrop(padding) and RandomHorizontalFlip (see transform.h). */
#include "transform.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

bool cnn_transform_init(cnn_transform *t, int64_t h, int64_t w, int64_t oh, int64_t ow, bool rrc,
                        int64_t pad, bool hflip) {
    memset(t, 0, sizeof *t);
    t->h = h;
    t->w = w;
    t->oh = oh;
    t->ow = ow;
    t->rrc = rrc;
    t->resize = !rrc && (oh != h || ow != w);
    t->pad = pad;
    t->hflip = hflip;
    for (int i = 0; i < 256; i++)
        t->lut[i] = (float)i / 255.0f;
    if (t->resize) {
        t->ph = malloc(((size_t)oh + (size_t)ow) * sizeof *t->ph);
        if (!t->ph) return false;
        t->pw = t->ph + oh;
        cnn_lerp_plan(t->ph, h, oh);
        cnn_lerp_plan(t->pw, w, ow);
    }
    return true;
}

void cnn_transform_free(cnn_transform *t) {
    free(t->ph);
    t->ph = t->pw = NULL;
}

bool cnn_transform_scratch_init(cnn_transform_scratch *s, const cnn_transform *t) {
    memset(s, 0, sizeof *s);
    size_t src = (size_t)t->h * (size_t)t->w, mid = (size_t)t->oh * (size_t)t->ow;
    s->src = malloc(src * sizeof *s->src);
    s->mid = malloc(mid * sizeof *s->mid);
    s->ph = malloc(((size_t)t->oh + (size_t)t->ow) * sizeof *s->ph);
    if (!s->src || !s->mid || !s->ph) {
        cnn_transform_scratch_free(s);
        return false;
    }
    s->pw = s->ph + t->oh;
    return true;
}

void cnn_transform_scratch_free(cnn_transform_scratch *s) {
    free(s->src);
    free(s->mid);
    free(s->ph);
    memset(s, 0, sizeof *s);
}

void cnn_rrc_params(cnn_rng *r, int64_t h, int64_t w, int64_t *top, int64_t *left, int64_t *ch,
                    int64_t *cw) {
    const double area = (double)h * (double)w;
    const float log_lo = logf(3.0f / 4.0f), log_hi = logf(4.0f / 3.0f);
    for (int attempt = 0; attempt < 10; attempt++) {
        double target = area * (double)cnn_rng_range(r, 0.08f, 1.0f);
        double aspect = (double)expf(cnn_rng_range(r, log_lo, log_hi));
        /* Python's round(): half to even, which nearbyint does in the default mode. */
        int64_t tw = (int64_t)nearbyint(sqrt(target * aspect));
        int64_t th = (int64_t)nearbyint(sqrt(target / aspect));
        if (tw > 0 && tw <= w && th > 0 && th <= h) {
            *top = cnn_rng_below(r, (uint32_t)(h - th + 1));
            *left = cnn_rng_below(r, (uint32_t)(w - tw + 1));
            *ch = th;
            *cw = tw;
            return;
        }
    }
    /* The fallback: the whole image, narrowed to the ratio range, centred. */
    double in_ratio = (double)w / (double)h;
    int64_t tw = w, th = h;
    if (in_ratio < 3.0 / 4.0)
        th = (int64_t)nearbyint((double)tw / (3.0 / 4.0));
    else if (in_ratio > 4.0 / 3.0)
        tw = (int64_t)nearbyint((double)th * (4.0 / 3.0));
    *top = (h - th) / 2;
    *left = (w - tw) / 2;
    *ch = th;
    *cw = tw;
}

static void to_float(const float *lut, const uint8_t *img, size_t n, float *dst) {
    for (size_t i = 0; i < n; i++)
        dst[i] = lut[img[i]];
}

void cnn_transform_apply(const cnn_transform *t, cnn_transform_scratch *s, const uint8_t *img,
                         cnn_rng *r, float *dst) {
    const bool crop = t->pad > 0;
    float *stage = crop || t->hflip ? s->mid : dst;
    if (t->rrc) {
        int64_t top, left, ch, cw;
        cnn_rrc_params(r, t->h, t->w, &top, &left, &ch, &cw);
        to_float(t->lut, img, (size_t)t->h * (size_t)t->w, s->src);
        cnn_lerp_plan(s->ph, ch, t->oh);
        cnn_lerp_plan(s->pw, cw, t->ow);
        cnn_resize_plane(stage, t->oh, t->ow, s->src + top * t->w + left, t->w, s->ph, s->pw);
    } else if (t->resize) {
        to_float(t->lut, img, (size_t)t->h * (size_t)t->w, s->src);
        cnn_resize_plane(stage, t->oh, t->ow, s->src, t->w, t->ph, t->pw);
    } else {
        to_float(t->lut, img, (size_t)t->h * (size_t)t->w, stage);
    }
    if (stage == dst) return;

    /* RandomCrop(padding=pad): offsets into the zero-padded image, top first. */
    int64_t dy = 0, dx = 0;
    if (crop) {
        dy = (int64_t)cnn_rng_below(r, (uint32_t)(2 * t->pad + 1)) - t->pad;
        dx = (int64_t)cnn_rng_below(r, (uint32_t)(2 * t->pad + 1)) - t->pad;
    }
    bool flip = t->hflip && cnn_rng_uniform(r) < 0.5f;
    const int64_t oh = t->oh, ow = t->ow;
    for (int64_t y = 0; y < oh; y++) {
        float *out = dst + y * ow;
        int64_t sy = y + dy;
        if (sy < 0 || sy >= oh) {
            memset(out, 0, (size_t)ow * sizeof *out);
            continue;
        }
        const float *row = s->mid + sy * ow;
        for (int64_t x = 0; x < ow; x++) {
            int64_t sx = (flip ? ow - 1 - x : x) + dx;
            out[x] = sx >= 0 && sx < ow ? row[sx] : 0.0f;
        }
    }
}
