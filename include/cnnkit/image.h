/* cnnkit/image.h - reading one picture for prediction: PNG and PGM, as 8-bit grey.
 *
 * Colour becomes grey with ITU-R 601-2 luma exactly as Pillow's
 * Image.convert('L') computes it: L = (R * 19595 + G * 38470 + B * 7471 +
 * 0x8000) >> 16, i.e. R * 299/1000 + G * 587/1000 + B * 114/1000 rounded.
 * Alpha (and a tRNS transparency chunk) is ignored: the colour under it
 * counts, as in convert('L'). 16-bit samples keep their high byte (libpng's
 * png_set_strip_16, which is what Pillow does for 16-bit RGB); PGM samples
 * with a maxval other than 255 are scaled to 0..255 with rounding.
 *
 * Fashion-MNIST and MNIST show a light object on a black background; a photo
 * or drawing of a dark object on white needs invert (255 - L) to look like
 * the training data. */
#ifndef CNNKIT_IMAGE_H
#define CNNKIT_IMAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cnnkit/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The largest width or height cnnkit reads. */
#define CNN_IMAGE_MAX_SIDE 16384

typedef struct cnn_image {
    int64_t width, height;
    uint8_t *pixels; /* owned: height x width, 0 black .. 255 white; cnn_image_free */
} cnn_image;

/* Reads a PNG (any colour type and bit depth, interlaced or not) or a PGM (P5
 * binary or P2 plain, maxval up to 65535, # comments), told apart by their
 * first bytes. Anything else, a corrupt or truncated file, or a side over
 * CNN_IMAGE_MAX_SIDE fails with CNN_STATUS_FORMAT (CNN_STATUS_UNSUPPORTED for
 * the size), an unreadable file with CNN_STATUS_IO; the text is one line,
 * "PATH: problem". On failure *out is empty. */
cnn_status cnn_image_read(const char *path, cnn_image *out, char *err, size_t errlen);

/* The same from memory; name is used in error texts only. */
cnn_status cnn_image_decode(const unsigned char *buf, size_t len, const char *name, cnn_image *out,
                            char *err, size_t errlen);

/* Releases img->pixels and leaves img empty; NULL is fine. */
void cnn_image_free(cnn_image *img);

/* The model's input for img: dst is (height,width) floats, pixels / 255 as
 * ToTensor gives (or (255 - pixel) / 255 with invert), resized bilinearly to
 * height x width when the sizes differ, exactly as F.interpolate(mode=
 * 'bilinear', align_corners=False) does (cnn_resize_bilinear). Fails with
 * CNN_STATUS_INVALID_ARGUMENT or CNN_STATUS_NO_MEMORY. */
cnn_status cnn_image_to_input(const cnn_image *img, int64_t height, int64_t width, bool invert,
                              float *dst);

#ifdef __cplusplus
}
#endif
#endif
