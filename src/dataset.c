/* dataset.c - MNIST-layout data sets: finding the four IDX files in a folder,
 * checking that images and labels agree, and Fashion-MNIST's class names. */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cnnkit/data.h"
#include "util.h"

#define DEFAULT_DIR "/usr/share/datasets/fashion-mnist"
#define INSTALL_HINT                                                                               \
    "install it with 'apt-get install dataset-fashion-mnist' or pass --data DIR (a folder with "   \
    "the four MNIST-layout IDX files)"

const char *cnn_dataset_default_dir(void) { return DEFAULT_DIR; }

const char *cnn_fashion_mnist_class(int i) {
    static const char *const names[] = {"t-shirt", "trouser", "pullover", "dress", "coat",
                                        "sandal",  "shirt",   "sneaker",  "bag",   "ankle boot"};
    return i >= 0 && i < (int)CNN_COUNT_OF(names) ? names[i] : NULL;
}

static bool is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static bool is_file(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static cnn_status missing(const char *dir, const char *what, char *err, size_t errlen) {
    if (strcmp(dir, DEFAULT_DIR) == 0)
        return cnn_fail(CNN_STATUS_IO, err, errlen, "no Fashion-MNIST at %s: %s", dir,
                        INSTALL_HINT);
    return cnn_fail(CNN_STATUS_IO, err, errlen, "%s: %s; for Fashion-MNIST %s", dir, what,
                    INSTALL_HINT);
}

/* dir/NAME.gz or dir/NAME for NAME = "train-images-idx3-ubyte", then the same
 * with the last '-' of the stem as '.' ("train-images.idx3-ubyte"), which is
 * how some copies of MNIST are named. */
static cnn_status find_file(const char *dir, const char *prefix, const char *kind, char **path,
                            char *err, size_t errlen) {
    char stems[2][64];
    snprintf(stems[0], sizeof stems[0], "%s-%s-ubyte", prefix, kind);
    snprintf(stems[1], sizeof stems[1], "%s-%s-ubyte", prefix, kind);
    char *dash = strchr(stems[1] + strlen(prefix) + 1, '-');
    if (dash) *dash = '.';
    for (int i = 0; i < 4; i++) {
        const char *stem = stems[i / 2], *ext = i % 2 == 0 ? ".gz" : "";
        int n = snprintf(NULL, 0, "%s/%s%s", dir, stem, ext);
        char *p = malloc((size_t)n + 1);
        if (!p) return cnn_fail(CNN_STATUS_NO_MEMORY, err, errlen, "%s: out of memory", dir);
        snprintf(p, (size_t)n + 1, "%s/%s%s", dir, stem, ext);
        if (is_file(p)) {
            *path = p;
            return CNN_OK;
        }
        free(p);
    }
    char what[160];
    snprintf(what, sizeof what, "no %s or %s.gz", stems[0], stems[0]);
    return missing(dir, what, err, errlen);
}

static cnn_status read_part(const char *dir, const char *prefix, const char *kind, cnn_idx *idx,
                            char **path, char *err, size_t errlen) {
    cnn_status s = find_file(dir, prefix, kind, path, err, errlen);
    if (s != CNN_OK) return s;
    s = cnn_idx_read(*path, idx, err, errlen);
    if (s != CNN_OK) {
        free(*path);
        *path = NULL;
    }
    return s;
}

static cnn_status check(const cnn_idx *im, const char *impath, const cnn_idx *lb,
                        const char *lbpath, char *err, size_t errlen) {
    if (im->ndim != 3)
        return cnn_fail(CNN_STATUS_FORMAT, err, errlen,
                        "%s: header: %d dimensions, images need 3 (count, height, width)", impath,
                        im->ndim);
    if (lb->ndim != 1)
        return cnn_fail(CNN_STATUS_FORMAT, err, errlen,
                        "%s: header: %d dimensions, labels need 1 (count)", lbpath, lb->ndim);
    if (im->dim[0] != lb->dim[0])
        return cnn_fail(CNN_STATUS_FORMAT, err, errlen,
                        "%s: header: %lu labels, but %s holds %lu images", lbpath,
                        (unsigned long)lb->dim[0], impath, (unsigned long)im->dim[0]);
    if (im->dim[0] == 0)
        return cnn_fail(CNN_STATUS_FORMAT, err, errlen, "%s: header: no images", impath);
    if (im->dim[1] == 0 || im->dim[2] == 0)
        return cnn_fail(CNN_STATUS_FORMAT, err, errlen, "%s: header: images of %lux%lu pixels",
                        impath, (unsigned long)im->dim[1], (unsigned long)im->dim[2]);
    return CNN_OK;
}

cnn_status cnn_dataset_load(const char *dir, const char *split, cnn_dataset **out, char *err,
                            size_t errlen) {
    CNN_ASSERT(dir && split && out);
    *out = NULL;
    const char *prefix = strcmp(split, "train") == 0  ? "train"
                         : strcmp(split, "test") == 0 ? "t10k"
                                                      : NULL;
    if (!prefix)
        return cnn_fail(CNN_STATUS_INVALID_ARGUMENT, err, errlen,
                        "unknown split '%s': 'train' or 'test'", split);
    if (!is_dir(dir)) return missing(dir, "not a folder", err, errlen);
    cnn_idx im = {0}, lb = {0};
    char *impath = NULL, *lbpath = NULL;
    cnn_status s = read_part(dir, prefix, "images-idx3", &im, &impath, err, errlen);
    if (s == CNN_OK) s = read_part(dir, prefix, "labels-idx1", &lb, &lbpath, err, errlen);
    if (s == CNN_OK) s = check(&im, impath, &lb, lbpath, err, errlen);
    cnn_dataset *ds = NULL;
    if (s == CNN_OK && !(ds = calloc(1, sizeof *ds)))
        s = cnn_fail(CNN_STATUS_NO_MEMORY, err, errlen, "%s: out of memory", dir);
    if (s == CNN_OK) {
        ds->count = im.dim[0];
        ds->height = im.dim[1];
        ds->width = im.dim[2];
        ds->images = im.data;
        ds->labels = lb.data;
        im.data = lb.data = NULL;
        int max = 0;
        for (int64_t i = 0; i < ds->count; i++)
            if (ds->labels[i] > max) max = ds->labels[i];
        ds->num_classes = max + 1;
        *out = ds;
    }
    cnn_idx_free(&im);
    cnn_idx_free(&lb);
    free(impath);
    free(lbpath);
    return s;
}

cnn_status cnn_dataset_new(int64_t count, int64_t height, int64_t width, const uint8_t *images,
                           const uint8_t *labels, cnn_dataset **out) {
    CNN_ASSERT(out);
    *out = NULL;
    size_t plane, n;
    if (count <= 0 || height <= 0 || width <= 0 || !images || !labels)
        return CNN_STATUS_INVALID_ARGUMENT;
    if (!cnn_mul_size((size_t)height, (size_t)width, &plane) ||
        !cnn_mul_size(plane, (size_t)count, &n))
        return CNN_STATUS_NO_MEMORY;
    cnn_dataset *ds = calloc(1, sizeof *ds);
    if (!ds) return CNN_STATUS_NO_MEMORY;
    ds->images = malloc(n);
    ds->labels = malloc((size_t)count);
    if (!ds->images || !ds->labels) {
        cnn_dataset_free(ds);
        return CNN_STATUS_NO_MEMORY;
    }
    memcpy(ds->images, images, n);
    memcpy(ds->labels, labels, (size_t)count);
    ds->count = count;
    ds->height = height;
    ds->width = width;
    int max = 0;
    for (int64_t i = 0; i < count; i++)
        if (labels[i] > max) max = labels[i];
    ds->num_classes = max + 1;
    *out = ds;
    return CNN_OK;
}

void cnn_dataset_free(cnn_dataset *ds) {
    if (!ds) return;
    free(ds->images);
    free(ds->labels);
    free(ds);
}
