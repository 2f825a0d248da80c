/* fuzz_safetensors.c - libFuzzer target for the safetensors reader: any bytes
 * either parse into entries whose every value can be read, or fail with an
 * error text; never a crash, a leak or undefined behaviour. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "cnnkit/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char err[512];
    cnn_st_file *st = NULL;
    if (cnn_st_parse(data, size, "fuzz.safetensors", &st, err, sizeof err) != CNN_OK) {
        /* A failure always explains itself. */
        if (!err[0] || !memchr(err, 0, sizeof err)) __builtin_trap();
        return 0;
    }
    volatile double sum = 0;
    for (int i = 0; i < cnn_st_count(st); i++) {
        const cnn_st_entry *e = cnn_st_get(st, i);
        if (!e || cnn_st_find(st, e->name) != e) __builtin_trap();
        size_t numel;
        if (cnn_shape_numel(&e->shape, &numel) != CNN_OK || numel != e->numel) __builtin_trap();
        for (size_t j = 0; j < e->numel; j++)
            sum += e->f32 ? (double)e->f32[j] : (double)e->i64[j];
    }
    (void)cnn_st_metadata(st, "repr");
    (void)sum;
    cnn_st_free(st);
    return 0;
}
