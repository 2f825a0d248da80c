/* image_pgm.c - Netpbm greymaps: P5 (binary) and P2 (plain text), from memory. */
#include <stdlib.h>
#include <string.h>

#include "image_impl.h"
#include "util.h"

#define PGM_MAXVAL 65535

typedef struct pgm_reader {
    const unsigned char *buf;
    size_t len, pos;
} pgm_reader;

bool cnn_is_pgm(const unsigned char *buf, size_t len) {
    return len >= 2 && buf[0] == 'P' && (buf[1] == '5' || buf[1] == '2');
}

static bool is_space(unsigned char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* Skips white space and # comments (which run to the end of the line). */
static void skip_space(pgm_reader *r) {
    while (r->pos < r->len) {
        unsigned char c = r->buf[r->pos];
        if (c == '#') {
            while (r->pos < r->len && r->buf[r->pos] != '\n' && r->buf[r->pos] != '\r')
                r->pos++;
        } else if (is_space(c)) {
            r->pos++;
        } else {
            return;
        }
    }
}

/* A decimal number up to limit. false when there is none, it is larger, or
 * it runs into something other than white space, a comment or the end. */
static bool read_number(pgm_reader *r, unsigned long limit, unsigned long *out) {
    skip_space(r);
    size_t start = r->pos;
    unsigned long v = 0;
    while (r->pos < r->len && r->buf[r->pos] >= '0' && r->buf[r->pos] <= '9') {
        v = v * 10 + (unsigned long)(r->buf[r->pos] - '0');
        if (v > limit) return false;
        r->pos++;
    }
    if (r->pos == start) return false;
    if (r->pos < r->len && !is_space(r->buf[r->pos]) && r->buf[r->pos] != '#') return false;
    *out = v;
    return true;
}

static uint8_t scale(unsigned long v, unsigned long maxval) {
    return maxval == 255 ? (uint8_t)v : (uint8_t)((v * 255 + maxval / 2) / maxval);
}

cnn_status cnn_pgm_decode(const unsigned char *buf, size_t len, const char *name, cnn_image *out,
                          char *err, size_t errlen) {
    pgm_reader r = {buf, len, 2};
    const bool plain = len >= 2 && buf[1] == '2';
    unsigned long w, h, maxval;
    if (len < 3 || !(is_space(buf[2]) || buf[2] == '#') ||
        !read_number(&r, CNN_IMAGE_MAX_SIDE * 1000UL, &w) ||
        !read_number(&r, CNN_IMAGE_MAX_SIDE * 1000UL, &h) ||
        !read_number(&r, PGM_MAXVAL * 1000UL, &maxval))
        return cnn_fail(CNN_STATUS_FORMAT, err, errlen,
                        "%s: PGM header: expected width, height and maxval as decimal numbers",
                        name);
    if (w == 0 || h == 0 || maxval == 0 || maxval > PGM_MAXVAL)
        return cnn_fail(CNN_STATUS_FORMAT, err, errlen,
                        "%s: PGM header: %lux%lu with maxval %lu (sides must be positive, maxval "
                        "in [1, 65535])",
                        name, w, h, maxval);
    if (w > CNN_IMAGE_MAX_SIDE || h > CNN_IMAGE_MAX_SIDE)
        return cnn_fail(CNN_STATUS_UNSUPPORTED, err, errlen,
                        "%s: PGM header: %lux%lu pixels, cnnkit reads at most %dx%d", name, w, h,
                        CNN_IMAGE_MAX_SIDE, CNN_IMAGE_MAX_SIDE);
    const size_t n = (size_t)w * h;
    uint8_t *pixels = malloc(n);
    if (!pixels) return cnn_fail(CNN_STATUS_NO_MEMORY, err, errlen, "%s: out of memory", name);
    if (plain) {
        for (size_t i = 0; i < n; i++) {
            unsigned long v;
            if (!read_number(&r, maxval, &v)) {
                free(pixels);
                skip_space(&r);
                return cnn_fail(CNN_STATUS_FORMAT, err, errlen,
                                r.pos >= r.len ? "%s: PGM data: ends after %zu of %zu pixels"
                                               : "%s: PGM data: pixel %zu of %zu is not a "
                                                 "number in [0, maxval]",
                                name, i, n);
            }
            pixels[i] = scale(v, maxval);
        }
    } else {
        /* One white-space byte ends the header; the samples follow. */
        if (r.pos >= r.len || !is_space(buf[r.pos])) {
            free(pixels);
            return cnn_fail(CNN_STATUS_FORMAT, err, errlen,
                            "%s: PGM data: ends after 0 of %zu pixels", name, n);
        }
        r.pos++;
        const size_t bps = maxval > 255 ? 2 : 1, have = (len - r.pos) / bps;
        if (have < n) {
            free(pixels);
            return cnn_fail(CNN_STATUS_FORMAT, err, errlen,
                            "%s: PGM data: ends after %zu of %zu pixels", name, have, n);
        }
        const unsigned char *p = buf + r.pos;
        for (size_t i = 0; i < n; i++, p += bps) {
            unsigned long v = bps == 2 ? (unsigned long)p[0] << 8 | p[1] : p[0];
            if (v > maxval) {
                free(pixels);
                return cnn_fail(CNN_STATUS_FORMAT, err, errlen,
                                "%s: PGM data: pixel %zu is %lu, above maxval %lu", name, i, v,
                                maxval);
            }
            pixels[i] = scale(v, maxval);
        }
    }
    out->width = (int64_t)w;
    out->height = (int64_t)h;
    out->pixels = pixels;
    return CNN_OK;
}
