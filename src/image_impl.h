/* image_impl.h - the decoders behind cnn_image_decode. Never installed. */
#ifndef CNNKIT_IMAGE_IMPL_H
#define CNNKIT_IMAGE_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cnnkit/image.h"

/* Pillow's ITU-R 601-2 luma for 8-bit R, G, B. */
static inline uint8_t cnn_luma(unsigned r, unsigned g, unsigned b) {
    return (uint8_t)((r * 19595u + g * 38470u + b * 7471u + 0x8000u) >> 16);
}

bool cnn_is_png(const unsigned char *buf, size_t len);
bool cnn_is_pgm(const unsigned char *buf, size_t len);

/* Both fill *out (empty on entry) or fail with "NAME: problem" in err. */
cnn_status cnn_png_decode(const unsigned char *buf, size_t len, const char *name, cnn_image *out,
                          char *err, size_t errlen);
cnn_status cnn_pgm_decode(const unsigned char *buf, size_t len, const char *name, cnn_image *out,
                          char *err, size_t errlen);

#endif
