/* bench_data.c - how fast the data pipeline is: loading Fashion-MNIST, then
 * one epoch of the loader with a caller that does no work, so the figures are
 * what the background threads can prepare at most.
 *
 *   bench_data [DIR]   (default: cnn_dataset_default_dir()) */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <time.h>

#include "cnnkit/data.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int epoch(const cnn_dataset *ds, const char *what, cnn_loader_config c) {
    cnn_loader *ld;
    char err[256];
    if (cnn_loader_new(ds, &c, &ld, err, sizeof err) != CNN_OK) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    double t0 = now();
    cnn_loader_start_epoch(ld, 0, 0);
    cnn_batch b;
    int64_t images = 0, batches = 0;
    while (cnn_loader_next(ld, &b) == CNN_OK && b.count > 0) {
        images += b.count;
        batches++;
    }
    double t = now() - t0;
    printf("%-44s %3d thread(s): %6.0f batches/s, %8.0f images/s (%.2f ms a batch)\n", what,
           c.threads, (double)batches / t, (double)images / t, 1e3 * t / (double)batches);
    cnn_loader_free(ld);
    return 0;
}

int main(int argc, char **argv) {
    const char *dir = argc > 1 ? argv[1] : cnn_dataset_default_dir();
    char err[512];
    cnn_dataset *ds;
    double t0 = now();
    if (cnn_dataset_load(dir, "train", &ds, err, sizeof err) != CNN_OK) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    printf("load train: %lld images of %lldx%lld in %.3f s\n", (long long)ds->count,
           (long long)ds->height, (long long)ds->width, now() - t0);
    int rc = 0;
    for (int threads = 1; threads <= 2; threads++) {
        cnn_loader_config c = cnn_loader_config_default();
        c.threads = threads;
        c.shuffle = true;
        c.batch_size = 256;
        rc |= epoch(ds, "batch 256, 28x28, shuffled", c);
        c.hflip = true;
        c.crop_padding = 4;
        rc |= epoch(ds, "batch 256, 28x28, flip + crop(4)", c);
        c = cnn_loader_config_default();
        c.threads = threads;
        c.shuffle = true;
        c.batch_size = 128;
        c.resize = 224;
        rc |= epoch(ds, "batch 128, resize 224", c);
        c.hflip = true;
        c.random_resized_crop = true;
        rc |= epoch(ds, "batch 128, random resized crop 224 + flip", c);
    }
    cnn_dataset_free(ds);
    return rc;
}
