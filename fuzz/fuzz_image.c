/* fuzz_image.c - libFuzzer target for the picture readers (PNG through
 * libpng, PGM): any bytes either decode into an image whose every pixel can
 * be read and turned into a model input, or fail with an error text; never a
 * crash, a leak, a longjmp gone astray or undefined behaviour. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cnnkit/image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char err[512];
    cnn_image img;
    if (cnn_image_decode(data, size, "fuzz.img", &img, err, sizeof err) != CNN_OK) {
        /* A failure always explains itself, on one line, and leaves nothing behind. */
        if (!err[0] || !memchr(err, 0, sizeof err) || strchr(err, '\n') || img.pixels)
            __builtin_trap();
        return 0;
    }
    if (img.width <= 0 || img.height <= 0 || img.width > CNN_IMAGE_MAX_SIDE ||
        img.height > CNN_IMAGE_MAX_SIDE)
        __builtin_trap();
    volatile unsigned sum = 0;
    for (int64_t i = 0; i < img.width * img.height; i++)
        sum += img.pixels[i];
    float x[28 * 28];
    if (cnn_image_to_input(&img, 28, 28, true, x) != CNN_OK) __builtin_trap();
    for (int i = 0; i < 28 * 28; i++)
        if (!(x[i] >= 0.0f && x[i] <= 1.000001f)) __builtin_trap(); /* bilinear: 1 + an ulp */
    (void)sum;
    cnn_image_free(&img);
    return 0;
}
