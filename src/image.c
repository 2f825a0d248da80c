/* image.c - reading a picture for prediction (PNG or PGM) and turning it into
 * a model input. */
#include <stdlib.h>
#include <string.h>

#include "cnnkit/data.h"
#include "image_impl.h"
#include "util.h"

cnn_status cnn_image_decode(const unsigned char *buf, size_t len, const char *name, cnn_image *out,
                            char *err, size_t errlen) {
    CNN_ASSERT(out && name && (buf || len == 0));
    memset(out, 0, sizeof *out);
    if (cnn_is_png(buf, len)) return cnn_png_decode(buf, len, name, out, err, errlen);
    if (cnn_is_pgm(buf, len)) return cnn_pgm_decode(buf, len, name, out, err, errlen);
    return cnn_fail(CNN_STATUS_FORMAT, err, errlen,
                    "%s: not a PNG or PGM image (cnnkit reads those two)", name);
}

cnn_status cnn_image_read(const char *path, cnn_image *out, char *err, size_t errlen) {
    CNN_ASSERT(path && out);
    memset(out, 0, sizeof *out);
    unsigned char *buf;
    size_t len;
    cnn_status s = cnn_read_file(path, &buf, &len, err, errlen);
    if (s != CNN_OK) return s;
    s = cnn_image_decode(buf, len, path, out, err, errlen);
    free(buf);
    return s;
}

void cnn_image_free(cnn_image *img) {
    if (!img) return;
    free(img->pixels);
    memset(img, 0, sizeof *img);
}

cnn_status cnn_image_to_input(const cnn_image *img, int64_t height, int64_t width, bool invert,
                              float *dst) {
    if (!img || !img->pixels || img->width <= 0 || img->height <= 0 || height <= 0 || width <= 0 ||
        !dst)
        return CNN_STATUS_INVALID_ARGUMENT;
    const size_t n = (size_t)img->width * (size_t)img->height;
    const bool same = img->width == width && img->height == height;
    float *plane = same ? dst : malloc(n * sizeof *plane);
    if (!plane) return CNN_STATUS_NO_MEMORY;
    for (size_t i = 0; i < n; i++) {
        int v = invert ? 255 - img->pixels[i] : img->pixels[i];
        plane[i] = (float)v / 255.0f;
    }
    if (same) return CNN_OK;
    cnn_status s = cnn_resize_bilinear(plane, 1, img->height, img->width, dst, height, width);
    free(plane);
    return s;
}
