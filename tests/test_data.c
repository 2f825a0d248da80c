/* test_data.c - IDX files, data sets, bilinear resizing against PyTorch, the
 * augmentations and the prefetching batch loader. */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include <cmocka.h>

#include "scratch.h"

#include "cnnkit/data.h"
#include "cnnkit/rng.h"
#include "cnnkit/safetensors.h"
#include "transform.h"

#ifndef CNNKIT_FIXTURES
#define CNNKIT_FIXTURES "tests/fixtures"
#endif

/* ---- helpers ------------------------------------------------------------ */

/* A scratch folder per test, removed (with its files) afterwards. */
typedef struct scratch {
    char dir[256];
} scratch;

static int scratch_setup(void **state) {
    scratch *s = calloc(1, sizeof *s);
    if (!s) return -1;
    if (scratch_make(s->dir, sizeof s->dir, "data") != 0) {
        free(s);
        return -1;
    }
    *state = s;
    return 0;
}

static int scratch_teardown(void **state) {
    scratch *s = *state;
    scratch_remove(s->dir);
    free(s);
    return 0;
}

static const char *in_dir(const scratch *s, const char *name) {
    static char path[600];
    snprintf(path, sizeof path, "%s/%s", s->dir, name);
    return path;
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* The bytes of an IDX file: magic 00 00 type ndim, big-endian dims, data. */
static unsigned char *idx_bytes(int type, int ndim, const uint32_t *dims, const uint8_t *data,
                                size_t dlen, size_t *len) {
    *len = 4 + 4 * (size_t)ndim + dlen;
    unsigned char *b = malloc(*len);
    assert_non_null(b);
    b[0] = b[1] = 0;
    b[2] = (unsigned char)type;
    b[3] = (unsigned char)ndim;
    for (int i = 0; i < ndim; i++)
        for (int k = 0; k < 4; k++)
            b[4 + 4 * i + k] = (unsigned char)(dims[i] >> (24 - 8 * k));
    if (dlen) memcpy(b + 4 + 4 * ndim, data, dlen);
    return b;
}

static void write_raw(const char *path, const void *buf, size_t len) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(buf, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

static void write_gz(const char *path, const void *buf, size_t len) {
    gzFile gz = gzopen(path, "wb");
    assert_non_null(gz);
    assert_int_equal(gzwrite(gz, buf, (unsigned)len), (int)len);
    assert_int_equal(gzclose(gz), Z_OK);
}

static void write_file(const char *path, bool gz, const void *buf, size_t len) {
    if (gz)
        write_gz(path, buf, len);
    else
        write_raw(path, buf, len);
}

static unsigned char *read_raw(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    *len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc(*len);
    assert_non_null(b);
    assert_int_equal(fread(b, 1, *len, f), *len);
    fclose(f);
    return b;
}

/* An error text: starts with the path, holds the phrase, one line. */
static void check_err(const char *err, const char *path, const char *phrase) {
    size_t n = strlen(path);
    if (strncmp(err, path, n) != 0 || err[n] != ':')
        fail_msg("error does not start with '%s:': %s", path, err);
    if (!strstr(err, phrase)) fail_msg("error lacks '%s': %s", phrase, err);
    if (strchr(err, '\n')) fail_msg("error is not one line: %s", err);
}

static void reject_idx(const char *path, cnn_status want, const char *phrase) {
    cnn_idx idx;
    char err[512] = "";
    cnn_status s = cnn_idx_read(path, &idx, err, sizeof err);
    if (s != want)
        fail_msg("status %s, wanted %s (%s)", cnn_status_str(s), cnn_status_str(want), err);
    assert_null(idx.data);
    assert_int_equal(idx.ndim, 0);
    check_err(err, path, phrase);
}

/* Writes a small IDX file (plain or gzipped) of 3 images of 2x4 pixels. */
static void write_images(const char *path, bool gz) {
    uint8_t px[24];
    for (int i = 0; i < 24; i++)
        px[i] = (uint8_t)(i * 10);
    size_t len;
    unsigned char *b = idx_bytes(0x08, 3, (uint32_t[]){3, 2, 4}, px, sizeof px, &len);
    write_file(path, gz, b, len);
    free(b);
}

/* ---- IDX files ---------------------------------------------------------- */

static void idx_read_should_read_plain_and_gzipped_files(void **state) {
    scratch *sc = *state;
    for (int gz = 0; gz < 2; gz++) {
        const char *path = in_dir(sc, gz ? "a.gz" : "a");
        write_images(path, gz);
        cnn_idx idx;
        char err[512] = "";
        if (cnn_idx_read(path, &idx, err, sizeof err) != CNN_OK) fail_msg("%s", err);
        assert_int_equal(idx.ndim, 3);
        assert_int_equal(idx.dim[0], 3);
        assert_int_equal(idx.dim[1], 2);
        assert_int_equal(idx.dim[2], 4);
        assert_int_equal(idx.size, 24);
        for (int i = 0; i < 24; i++)
            assert_int_equal(idx.data[i], i * 10);
        cnn_idx_free(&idx);
        assert_null(idx.data);
    }
}

static void idx_read_should_reject_a_truncated_header(void **state) {
    scratch *sc = *state;
    const char *path = in_dir(sc, "h");
    size_t len;
    unsigned char *b = idx_bytes(0x08, 3, (uint32_t[]){3, 2, 4}, NULL, 0, &len);
    for (int gz = 0; gz < 2; gz++) {
        write_file(path, gz, b, 2);
        reject_idx(path, CNN_STATUS_FORMAT, "header: file ends after 2 of 4 bytes");
        write_file(path, gz, b, 9); /* magic and one and a bit dimensions of three */
        reject_idx(path, CNN_STATUS_FORMAT, "header: file ends after 9 of 16 bytes");
        write_file(path, gz, b, 0);
        reject_idx(path, CNN_STATUS_FORMAT, "header: file ends after 0 of 4 bytes");
    }
    free(b);
}

static void idx_read_should_reject_truncated_data(void **state) {
    scratch *sc = *state;
    const char *path = in_dir(sc, "t");
    uint8_t px[24] = {0};
    size_t len;
    unsigned char *b = idx_bytes(0x08, 3, (uint32_t[]){3, 2, 4}, px, sizeof px, &len);
    for (int gz = 0; gz < 2; gz++) {
        write_file(path, gz, b, len - 5);
        reject_idx(path, CNN_STATUS_FORMAT, "data: file ends after 19 of 24 bytes");
    }
    free(b);
}

static void idx_read_should_reject_a_wrong_magic(void **state) {
    scratch *sc = *state;
    const char *path = in_dir(sc, "m");
    write_raw(path, "\x12\x34\x56\x78\0\0\0\0", 8);
    reject_idx(path, CNN_STATUS_FORMAT, "header: magic 0x12345678 is not an IDX file");
    write_raw(path, "PK\x03\x04 zip", 8);
    reject_idx(path, CNN_STATUS_FORMAT, "is not an IDX file");
    write_raw(path, "\0\0\x42\x01\0\0\0\0", 8); /* no such type */
    reject_idx(path, CNN_STATUS_FORMAT, "header: magic 0x00004201 is not an IDX file");
}

static void idx_read_should_refuse_types_other_than_unsigned_byte(void **state) {
    scratch *sc = *state;
    const char *path = in_dir(sc, "f");
    size_t len;
    unsigned char *b = idx_bytes(0x0D, 1, (uint32_t[]){1}, (const uint8_t *)"\0\0\0\0", 4, &len);
    write_gz(path, b, len);
    reject_idx(path, CNN_STATUS_UNSUPPORTED, "type 0x0D (float); cnnkit reads only 0x08");
    free(b);
    b = idx_bytes(0x09, 1, (uint32_t[]){1}, (const uint8_t *)"\0", 1, &len);
    write_raw(path, b, len);
    reject_idx(path, CNN_STATUS_UNSUPPORTED, "header: magic 0x00000901 is an IDX file of type");
    free(b);
}

static void idx_read_should_reject_dims_that_do_not_match_the_length(void **state) {
    scratch *sc = *state;
    const char *path = in_dir(sc, "d");
    uint8_t px[24] = {0};
    size_t len;
    /* The header promises 4 images of 2x4 = 32 bytes; the file has 24. */
    unsigned char *b = idx_bytes(0x08, 3, (uint32_t[]){4, 2, 4}, px, sizeof px, &len);
    write_gz(path, b, len);
    reject_idx(path, CNN_STATUS_FORMAT, "data: file ends after 24 of 32 bytes");
    free(b);
    /* It promises 2 images of 2x4 = 16 bytes; the file has 24. */
    b = idx_bytes(0x08, 3, (uint32_t[]){2, 2, 4}, px, sizeof px, &len);
    write_raw(path, b, len);
    reject_idx(path, CNN_STATUS_FORMAT, "data: more bytes follow the 16 the header announces");
    free(b);
}

static void idx_read_should_refuse_zero_or_too_many_dimensions(void **state) {
    scratch *sc = *state;
    const char *path = in_dir(sc, "n");
    size_t len;
    uint32_t dims[5] = {1, 1, 1, 1, 1};
    unsigned char *b = idx_bytes(0x08, 5, dims, (const uint8_t *)"x", 1, &len);
    write_raw(path, b, len);
    reject_idx(path, CNN_STATUS_UNSUPPORTED, "header: 5 dimensions, cnnkit reads at most 4");
    free(b);
    b = idx_bytes(0x08, 0, dims, NULL, 0, &len);
    write_raw(path, b, len);
    reject_idx(path, CNN_STATUS_FORMAT, "header: the file has no dimensions");
    free(b);
}

static void idx_read_should_reject_trailing_bytes(void **state) {
    scratch *sc = *state;
    const char *path = in_dir(sc, "g");
    uint8_t px[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    size_t len;
    unsigned char *b = idx_bytes(0x08, 1, (uint32_t[]){8}, px, sizeof px, &len);
    for (int gz = 0; gz < 2; gz++) {
        write_file(path, gz, b, len);
        reject_idx(path, CNN_STATUS_FORMAT, "data: more bytes follow the 8 the header announces");
    }
    free(b);
}

static void idx_read_should_not_believe_a_huge_header(void **state) {
    scratch *sc = *state;
    const char *path = in_dir(sc, "big");
    size_t len;
    /* 4 x 65535 x 65535 x 65535 overflows 64 bits. */
    unsigned char *b =
        idx_bytes(0x08, 4, (uint32_t[]){0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 4}, NULL, 0, &len);
    write_raw(path, b, len);
    reject_idx(path, CNN_STATUS_FORMAT, "header: the dimensions' product overflows");
    free(b);
    /* 16 GiB announced, 10 bytes there: an error, without allocating 16 GiB. */
    b = idx_bytes(0x08, 2, (uint32_t[]){0x40000000, 16}, (const uint8_t *)"0123456789", 10, &len);
    write_gz(path, b, len);
    reject_idx(path, CNN_STATUS_FORMAT, "data: file ends after 10 of 17179869184 bytes");
    free(b);
}

static void idx_read_should_reject_a_corrupt_gzip_stream(void **state) {
    scratch *sc = *state;
    const char *path = in_dir(sc, "c.gz");
    enum { N = 6000 };
    uint8_t *px = malloc(N);
    assert_non_null(px);
    for (int i = 0; i < N; i++)
        px[i] = (uint8_t)((i * i) % 251 / 16); /* compressible, not trivially */
    size_t len, glen;
    unsigned char *b = idx_bytes(0x08, 1, (uint32_t[]){N}, px, N, &len);
    write_gz(path, b, len);
    unsigned char *g = read_raw(path, &glen);
    assert_true(glen > 100);

    /* Bytes flipped in the middle of the deflate data. */
    unsigned char *bad = malloc(glen);
    assert_non_null(bad);
    memcpy(bad, g, glen);
    for (size_t i = glen / 2; i < glen / 2 + 4; i++)
        bad[i] ^= 0x5A;
    write_raw(path, bad, glen);
    reject_idx(path, CNN_STATUS_FORMAT, "gzip stream is corrupt: ");

    /* One flipped byte of the CRC in the trailer. */
    memcpy(bad, g, glen);
    bad[glen - 6] ^= 1;
    write_raw(path, bad, glen);
    reject_idx(path, CNN_STATUS_FORMAT, "gzip stream is corrupt: incorrect data check");

    /* The stream cut short: every data byte may be there, the trailer is not. */
    write_raw(path, g, glen - 4);
    reject_idx(path, CNN_STATUS_FORMAT, "gzip stream is corrupt: unexpected end of file");
    write_raw(path, g, glen / 2);
    reject_idx(path, CNN_STATUS_FORMAT, "gzip stream is corrupt: unexpected end of file");
    free(bad);
    free(g);
    free(b);
    free(px);
}

static void idx_read_should_report_a_missing_file(void **state) {
    scratch *sc = *state;
    const char *path = in_dir(sc, "absent.gz");
    reject_idx(path, CNN_STATUS_IO, "No such file or directory");
}

/* ---- data sets ---------------------------------------------------------- */

static void write_labels(const char *path, bool gz, const uint8_t *labels, uint32_t n) {
    size_t len;
    unsigned char *b = idx_bytes(0x08, 1, (uint32_t[]){n}, labels, n, &len);
    write_file(path, gz, b, len);
    free(b);
}

static void dataset_load_should_read_the_four_files_gzipped_or_not(void **state) {
    scratch *sc = *state;
    write_images(in_dir(sc, "train-images-idx3-ubyte.gz"), true);
    write_labels(in_dir(sc, "train-labels-idx1-ubyte"), false, (const uint8_t[]){3, 0, 2}, 3);
    write_images(in_dir(sc, "t10k-images.idx3-ubyte"), false); /* MNIST's other naming */
    write_labels(in_dir(sc, "t10k-labels.idx1-ubyte.gz"), true, (const uint8_t[]){1, 1, 0}, 3);
    char err[512] = "";
    cnn_dataset *tr, *te;
    if (cnn_dataset_load(sc->dir, "train", &tr, err, sizeof err) != CNN_OK) fail_msg("%s", err);
    if (cnn_dataset_load(sc->dir, "test", &te, err, sizeof err) != CNN_OK) fail_msg("%s", err);
    assert_int_equal(tr->count, 3);
    assert_int_equal(tr->height, 2);
    assert_int_equal(tr->width, 4);
    assert_int_equal(tr->num_classes, 4);
    assert_int_equal(tr->labels[0], 3);
    assert_int_equal(tr->images[23], 230);
    assert_int_equal(te->num_classes, 2);
    cnn_dataset_free(tr);
    cnn_dataset_free(te);
    assert_int_equal(cnn_dataset_load(sc->dir, "valid", &tr, err, sizeof err),
                     CNN_STATUS_INVALID_ARGUMENT);
    assert_null(tr);
}

static void dataset_load_should_reject_mismatched_counts_and_shapes(void **state) {
    scratch *sc = *state;
    write_images(in_dir(sc, "train-images-idx3-ubyte"), false);
    write_labels(in_dir(sc, "train-labels-idx1-ubyte"), false, (const uint8_t[]){1, 2}, 2);
    char err[512] = "";
    cnn_dataset *ds;
    assert_int_equal(cnn_dataset_load(sc->dir, "train", &ds, err, sizeof err), CNN_STATUS_FORMAT);
    assert_null(ds);
    check_err(err, in_dir(sc, "train-labels-idx1-ubyte"), "header: 2 labels, but ");
    assert_non_null(strstr(err, "holds 3 images"));

    /* Labels with two dimensions. */
    size_t len;
    unsigned char *b = idx_bytes(0x08, 2, (uint32_t[]){3, 1}, (const uint8_t *)"abc", 3, &len);
    write_raw(in_dir(sc, "train-labels-idx1-ubyte"), b, len);
    free(b);
    assert_int_equal(cnn_dataset_load(sc->dir, "train", &ds, err, sizeof err), CNN_STATUS_FORMAT);
    check_err(err, in_dir(sc, "train-labels-idx1-ubyte"), "labels need 1");

    /* Images with one dimension. */
    write_labels(in_dir(sc, "train-images-idx3-ubyte"), false, (const uint8_t[]){1, 2, 3}, 3);
    assert_int_equal(cnn_dataset_load(sc->dir, "train", &ds, err, sizeof err), CNN_STATUS_FORMAT);
    check_err(err, in_dir(sc, "train-images-idx3-ubyte"), "images need 3");

    /* A broken images file: its own error comes through. */
    write_raw(in_dir(sc, "train-images-idx3-ubyte"), "\0\0\x08\x03\0\0", 6);
    assert_int_equal(cnn_dataset_load(sc->dir, "train", &ds, err, sizeof err), CNN_STATUS_FORMAT);
    check_err(err, in_dir(sc, "train-images-idx3-ubyte"), "header: file ends after 6 of 16");
}

static void dataset_load_should_say_how_to_install_fashion_mnist(void **state) {
    scratch *sc = *state;
    char err[512] = "";
    cnn_dataset *ds;
    const char *hint = "install it with 'apt-get install dataset-fashion-mnist' or pass --data "
                       "DIR (a folder with the four MNIST-layout IDX files)";
    if (access(cnn_dataset_default_dir(), F_OK) != 0) {
        assert_int_equal(cnn_dataset_load(cnn_dataset_default_dir(), "train", &ds, err, sizeof err),
                         CNN_STATUS_IO);
        assert_string_equal(err, "no Fashion-MNIST at /usr/share/datasets/fashion-mnist: "
                                 "install it with 'apt-get install dataset-fashion-mnist' or pass "
                                 "--data DIR (a folder with the four MNIST-layout IDX files)");
    }
    /* A folder without the files. */
    assert_int_equal(cnn_dataset_load(sc->dir, "test", &ds, err, sizeof err), CNN_STATUS_IO);
    assert_null(ds);
    check_err(err, sc->dir, "no t10k-images-idx3-ubyte or t10k-images-idx3-ubyte.gz");
    assert_non_null(strstr(err, hint));
    /* The images but not the labels. */
    write_images(in_dir(sc, "t10k-images-idx3-ubyte.gz"), true);
    assert_int_equal(cnn_dataset_load(sc->dir, "test", &ds, err, sizeof err), CNN_STATUS_IO);
    check_err(err, sc->dir, "no t10k-labels-idx1-ubyte or t10k-labels-idx1-ubyte.gz");
    /* No folder at all. */
    assert_int_equal(cnn_dataset_load(in_dir(sc, "nowhere"), "test", &ds, err, sizeof err),
                     CNN_STATUS_IO);
    assert_non_null(strstr(err, "not a folder"));
    assert_non_null(strstr(err, hint));
}

static void dataset_load_should_read_the_installed_fashion_mnist(void **state) {
    (void)state;
    const char *dir = cnn_dataset_default_dir();
    if (access(dir, F_OK) != 0) {
        print_message("Fashion-MNIST is not installed at %s: skipped\n", dir);
        skip();
    }
    char err[512] = "";
    cnn_dataset *tr, *te;
    double t0 = now();
    if (cnn_dataset_load(dir, "train", &tr, err, sizeof err) != CNN_OK) fail_msg("%s", err);
    double t1 = now();
    if (cnn_dataset_load(dir, "test", &te, err, sizeof err) != CNN_OK) fail_msg("%s", err);
    print_message("Fashion-MNIST: train (60000) loaded in %.3f s, test in %.3f s\n", t1 - t0,
                  now() - t1);
    assert_int_equal(tr->count, 60000);
    assert_int_equal(te->count, 10000);
    assert_int_equal(tr->height, 28);
    assert_int_equal(tr->width, 28);
    assert_int_equal(te->height, 28);
    assert_int_equal(tr->num_classes, 10);
    assert_int_equal(te->num_classes, 10);
    /* 6000 of each class in train, 1000 in test. */
    int counts[10] = {0};
    for (int64_t i = 0; i < tr->count; i++)
        counts[tr->labels[i]]++;
    for (int c = 0; c < 10; c++)
        assert_int_equal(counts[c], 6000);
    /* The first training image is an ankle boot (label 9), as d2l shows. */
    assert_int_equal(tr->labels[0], 9);
    assert_string_equal(cnn_fashion_mnist_class(tr->labels[0]), "ankle boot");
    cnn_dataset_free(tr);
    cnn_dataset_free(te);
}

static void fashion_mnist_class_names_should_be_d2ls(void **state) {
    (void)state;
    const char *want[] = {"t-shirt", "trouser", "pullover", "dress", "coat",
                          "sandal",  "shirt",   "sneaker",  "bag",   "ankle boot"};
    for (int i = 0; i < 10; i++)
        assert_string_equal(cnn_fashion_mnist_class(i), want[i]);
    assert_null(cnn_fashion_mnist_class(10));
    assert_null(cnn_fashion_mnist_class(-1));
}

/* ---- resizing against PyTorch ------------------------------------------- */

static cnn_st_file *fixture(const char *name) {
    char path[512], err[512] = "";
    snprintf(path, sizeof path, "%s/%s", CNNKIT_FIXTURES, name);
    cnn_st_file *st;
    if (cnn_st_read(path, &st, err, sizeof err) != CNN_OK) fail_msg("%s", err);
    return st;
}

static const cnn_st_entry *entry(const cnn_st_file *st, const char *name, const char *part) {
    char key[128];
    snprintf(key, sizeof key, "%s.%s", name, part);
    const cnn_st_entry *e = cnn_st_find(st, key);
    if (!e || !e->f32 || e->shape.ndim != 4) fail_msg("fixture lacks %s", key);
    return e;
}

/* Max |a - b| and how many differ at all. */
static double compare(const float *a, const float *b, size_t n, size_t *ndiff) {
    double m = 0;
    *ndiff = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (d > m) m = d;
        if (a[i] != b[i]) ++*ndiff;
    }
    return m;
}

static void resize_should_match_pytorch_interpolate(void **state) {
    (void)state;
    cnn_st_file *st = fixture("data_resize.safetensors");
    const char *cases[] = {"up224", "up32", "down5", "down28", "rect", "rect_t", "same", "rgb"};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const cnn_st_entry *in = entry(st, cases[c], "input"), *out = entry(st, cases[c], "output");
        const int64_t *d = in->shape.dim, *o = out->shape.dim;
        float *y = malloc(out->numel * sizeof *y);
        assert_non_null(y);
        assert_int_equal(cnn_resize_bilinear(in->f32, d[0] * d[1], d[2], d[3], y, o[2], o[3]),
                         CNN_OK);
        size_t ndiff;
        double m = compare(y, out->f32, out->numel, &ndiff);
        print_message("resize %-6s [%lld,%lld,%lld,%lld] -> %lldx%lld: max |diff| %.3g, %zu of "
                      "%zu values differ\n",
                      cases[c], (long long)d[0], (long long)d[1], (long long)d[2], (long long)d[3],
                      (long long)o[2], (long long)o[3], m, ndiff, out->numel);
        assert_true(m <= 1e-5);
        /* One channel: PyTorch's kernel, bit for bit. */
        if (d[1] == 1) assert_int_equal(ndiff, 0);
        free(y);
    }
    cnn_st_free(st);
}

static void resize_of_a_crop_should_match_pytorch(void **state) {
    (void)state;
    cnn_st_file *st = fixture("data_resize.safetensors");
    const cnn_st_entry *in = entry(st, "crop", "input"), *out = entry(st, "crop", "output");
    int top, left, h, w;
    assert_int_equal(sscanf(cnn_st_metadata(st, "crop"), "%d,%d,%d,%d", &top, &left, &h, &w), 4);
    cnn_lerp ph[28], pw[28];
    cnn_lerp_plan(ph, h, 28);
    cnn_lerp_plan(pw, w, 28);
    float y[28 * 28];
    cnn_resize_plane(y, 28, 28, in->f32 + top * 28 + left, 28, ph, pw);
    size_t ndiff;
    double m = compare(y, out->f32, 28 * 28, &ndiff);
    print_message("resized crop %dx%d at (%d,%d) -> 28x28: max |diff| %.3g, %zu differ\n", h, w,
                  top, left, m, ndiff);
    assert_int_equal(ndiff, 0);
    cnn_st_free(st);
}

static void resize_should_reject_bad_sizes(void **state) {
    (void)state;
    float a[4] = {0}, b[4];
    assert_int_equal(cnn_resize_bilinear(a, 1, 2, 2, b, 0, 2), CNN_STATUS_INVALID_ARGUMENT);
    assert_int_equal(cnn_resize_bilinear(a, 1, -2, 2, b, 2, 2), CNN_STATUS_INVALID_ARGUMENT);
    assert_int_equal(cnn_resize_bilinear(NULL, 1, 2, 2, b, 2, 2), CNN_STATUS_INVALID_ARGUMENT);
    assert_int_equal(cnn_resize_bilinear(a, 1, 2, 2, b, 2, 2), CNN_OK);
    assert_memory_equal(a, b, sizeof a);
}

/* ---- the loader ------------------------------------------------------------ */

enum { SYN_N = 103, SYN_H = 6, SYN_W = 5 };

/* A data set whose pixels tell the images apart. */
static cnn_dataset *synthetic(void) {
    uint8_t *px = malloc(SYN_N * SYN_H * SYN_W), labels[SYN_N];
    assert_non_null(px);
    for (int i = 0; i < SYN_N; i++) {
        labels[i] = (uint8_t)(i % 10);
        for (int k = 0; k < SYN_H * SYN_W; k++)
            px[i * SYN_H * SYN_W + k] = (uint8_t)((i * 37 + k * 11 + k * k) % 256);
    }
    cnn_dataset *ds;
    assert_int_equal(cnn_dataset_new(SYN_N, SYN_H, SYN_W, px, labels, &ds), CNN_OK);
    free(px);
    return ds;
}

/* Every batch of one epoch from first_batch on, concatenated. */
typedef struct epoch_run {
    float *x;
    int32_t *y;
    int64_t *index;
    int64_t n, batches, plane;
    int64_t sizes[256];
} epoch_run;

static epoch_run run_epoch(const cnn_dataset *ds, const cnn_loader_config *cfg, int epoch,
                           int64_t first_batch) {
    cnn_loader *ld;
    char err[256] = "";
    if (cnn_loader_new(ds, cfg, &ld, err, sizeof err) != CNN_OK) fail_msg("%s", err);
    int64_t h, w;
    cnn_loader_image_size(ld, &h, &w);
    epoch_run r = {0};
    r.plane = h * w;
    r.x = malloc((size_t)(ds->count * r.plane) * sizeof *r.x);
    r.y = malloc((size_t)ds->count * sizeof *r.y);
    r.index = malloc((size_t)ds->count * sizeof *r.index);
    assert_true(r.x && r.y && r.index);
    assert_int_equal(cnn_loader_start_epoch(ld, epoch, first_batch), CNN_OK);
    cnn_batch b;
    int64_t expect = first_batch;
    while (cnn_loader_next(ld, &b) == CNN_OK && b.count > 0) {
        assert_int_equal(b.batch, expect++);
        assert_int_equal(b.shape.ndim, 4);
        assert_int_equal(b.shape.dim[0], b.count);
        assert_int_equal(b.shape.dim[1], 1);
        assert_int_equal(b.shape.dim[2], h);
        assert_int_equal(b.shape.dim[3], w);
        assert_true(r.batches < 256);
        r.sizes[r.batches++] = b.count;
        memcpy(r.x + r.n * r.plane, b.x, (size_t)(b.count * r.plane) * sizeof *r.x);
        memcpy(r.y + r.n, b.y, (size_t)b.count * sizeof *r.y);
        memcpy(r.index + r.n, b.index, (size_t)b.count * sizeof *r.index);
        r.n += b.count;
    }
    assert_int_equal(b.count, 0);
    /* After the end, still the end. */
    assert_int_equal(cnn_loader_next(ld, &b), CNN_OK);
    assert_int_equal(b.count, 0);
    cnn_loader_free(ld);
    return r;
}

static void free_run(epoch_run *r) {
    free(r->x);
    free(r->y);
    free(r->index);
}

static bool same_run(const epoch_run *a, const epoch_run *b) {
    return a->n == b->n && a->plane == b->plane &&
           memcmp(a->index, b->index, (size_t)a->n * sizeof *a->index) == 0 &&
           memcmp(a->y, b->y, (size_t)a->n * sizeof *a->y) == 0 &&
           memcmp(a->x, b->x, (size_t)(a->n * a->plane) * sizeof *a->x) == 0;
}

static cnn_loader_config config(int64_t batch, bool shuffle, int threads) {
    cnn_loader_config c = cnn_loader_config_default();
    c.batch_size = batch;
    c.shuffle = shuffle;
    c.seed = 1234;
    c.threads = threads;
    return c;
}

static void loader_should_show_every_image_once_per_epoch(void **state) {
    (void)state;
    cnn_dataset *ds = synthetic();
    const int threads[] = {0, 1, 3};
    for (int t = 0; t < 3; t++) {
        for (int shuffle = 0; shuffle < 2; shuffle++) {
            cnn_loader_config c = config(10, shuffle, threads[t]);
            epoch_run r = run_epoch(ds, &c, 2, 0);
            assert_int_equal(r.n, SYN_N);
            int seen[SYN_N] = {0};
            bool in_order = true;
            for (int64_t i = 0; i < r.n; i++) {
                int64_t k = r.index[i];
                assert_true(k >= 0 && k < SYN_N);
                seen[k]++;
                in_order = in_order && k == i;
                assert_int_equal(r.y[i], ds->labels[k]);
                for (int p = 0; p < SYN_H * SYN_W; p++)
                    assert_true(r.x[i * r.plane + p] ==
                                (float)ds->images[k * SYN_H * SYN_W + p] / 255.0f);
            }
            for (int k = 0; k < SYN_N; k++)
                assert_int_equal(seen[k], 1);
            assert_true(in_order == !shuffle);
            free_run(&r);
        }
    }
    cnn_dataset_free(ds);
}

static cnn_loader_config augmenting(int64_t batch, int threads) {
    cnn_loader_config c = config(batch, true, threads);
    c.hflip = true;
    c.crop_padding = 2;
    c.random_resized_crop = true;
    c.resize = 9;
    return c;
}

static void loader_should_repeat_an_epoch_for_the_same_seed_whatever_the_threads(void **state) {
    (void)state;
    cnn_dataset *ds = synthetic();
    cnn_loader_config c0 = augmenting(7, 0), c1 = augmenting(7, 1), c4 = augmenting(7, 4);
    epoch_run a = run_epoch(ds, &c0, 5, 0), b = run_epoch(ds, &c1, 5, 0),
              c = run_epoch(ds, &c4, 5, 0);
    assert_true(same_run(&a, &b));
    assert_true(same_run(&a, &c));
    /* Another seed, another epoch. */
    c1.seed = 99;
    epoch_run d = run_epoch(ds, &c1, 5, 0);
    assert_false(same_run(&a, &d));
    free_run(&a);
    free_run(&b);
    free_run(&c);
    free_run(&d);
    cnn_dataset_free(ds);
}

static void loader_should_shuffle_differently_each_epoch(void **state) {
    (void)state;
    cnn_dataset *ds = synthetic();
    cnn_loader_config c = config(16, true, 1);
    epoch_run a = run_epoch(ds, &c, 0, 0), b = run_epoch(ds, &c, 1, 0);
    assert_int_equal(a.n, b.n);
    assert_memory_not_equal(a.index, b.index, (size_t)a.n * sizeof *a.index);
    free_run(&a);
    free_run(&b);
    cnn_dataset_free(ds);
}

static void loader_resumed_at_batch_k_should_give_the_batches_of_a_full_run(void **state) {
    (void)state;
    cnn_dataset *ds = synthetic();
    cnn_loader_config c = augmenting(8, 2);
    epoch_run full = run_epoch(ds, &c, 3, 0);
    for (int64_t k = 0; k <= full.batches; k++) {
        epoch_run part = run_epoch(ds, &c, 3, k);
        int64_t skip = k * 8 < full.n ? k * 8 : full.n;
        assert_int_equal(part.n, full.n - skip);
        assert_memory_equal(part.index, full.index + skip, (size_t)part.n * sizeof *part.index);
        assert_memory_equal(part.x, full.x + skip * full.plane,
                            (size_t)(part.n * part.plane) * sizeof *part.x);
        free_run(&part);
    }
    /* The same loader restarted in the middle of an epoch, several times. */
    cnn_loader *ld;
    char err[256];
    assert_int_equal(cnn_loader_new(ds, &c, &ld, err, sizeof err), CNN_OK);
    cnn_batch b;
    for (int round = 0; round < 3; round++) {
        assert_int_equal(cnn_loader_start_epoch(ld, 3, 4), CNN_OK);
        for (int i = 0; i < 2 + round; i++) {
            assert_int_equal(cnn_loader_next(ld, &b), CNN_OK);
            assert_int_equal(b.batch, 4 + i);
            assert_memory_equal(b.x, full.x + (4 + i) * 8 * full.plane,
                                (size_t)(b.count * full.plane) * sizeof *b.x);
        }
    }
    cnn_loader_free(ld);
    free_run(&full);
    cnn_dataset_free(ds);
}

static void loader_should_keep_or_drop_the_last_partial_batch(void **state) {
    (void)state;
    cnn_dataset *ds = synthetic();
    cnn_loader_config c = config(25, false, 1);
    epoch_run r = run_epoch(ds, &c, 0, 0);
    assert_int_equal(r.batches, 5);
    assert_int_equal(r.sizes[4], 3);
    assert_int_equal(r.n, SYN_N);
    free_run(&r);
    c.drop_last = true;
    r = run_epoch(ds, &c, 0, 0);
    assert_int_equal(r.batches, 4);
    assert_int_equal(r.sizes[3], 25);
    assert_int_equal(r.n, 100);
    free_run(&r);
    /* A batch larger than the data set. */
    c.batch_size = 1000;
    c.drop_last = false;
    r = run_epoch(ds, &c, 0, 0);
    assert_int_equal(r.batches, 1);
    assert_int_equal(r.n, SYN_N);
    free_run(&r);
    c.drop_last = true;
    r = run_epoch(ds, &c, 0, 0);
    assert_int_equal(r.batches, 0);
    free_run(&r);
    cnn_dataset_free(ds);
}

static void loader_should_resize_like_pytorch(void **state) {
    (void)state;
    cnn_st_file *st = fixture("data_resize.safetensors");
    const cnn_st_entry *in = entry(st, "up224", "input"), *out = entry(st, "up224", "output");
    uint8_t px[28 * 28], label = 0;
    for (int i = 0; i < 28 * 28; i++)
        px[i] = (uint8_t)lrintf(in->f32[i] * 255.0f);
    cnn_dataset *ds;
    assert_int_equal(cnn_dataset_new(1, 28, 28, px, &label, &ds), CNN_OK);
    cnn_loader_config c = config(4, false, 1);
    c.resize = 224;
    epoch_run r = run_epoch(ds, &c, 0, 0);
    assert_int_equal(r.plane, 224 * 224);
    size_t ndiff;
    double m = compare(r.x, out->f32, 224 * 224, &ndiff);
    print_message("loader 28 -> 224: max |diff| %.3g against F.interpolate, %zu differ\n", m,
                  ndiff);
    assert_int_equal(ndiff, 0);
    free_run(&r);
    cnn_dataset_free(ds);
    cnn_st_free(st);
}

/* One image through the transform with a given stream. */
static void transform_one(const cnn_transform *t, const uint8_t *img, uint64_t stream, float *dst) {
    cnn_transform_scratch s;
    assert_true(cnn_transform_scratch_init(&s, t));
    cnn_rng r;
    cnn_rng_seed(&r, 7, stream);
    cnn_transform_apply(t, &s, img, &r, dst);
    cnn_transform_scratch_free(&s);
}

static void augment_flip_should_mirror_the_image(void **state) {
    (void)state;
    uint8_t img[SYN_H * SYN_W];
    for (int k = 0; k < SYN_H * SYN_W; k++)
        img[k] = (uint8_t)(k * 8);
    cnn_transform t;
    assert_true(cnn_transform_init(&t, SYN_H, SYN_W, SYN_H, SYN_W, false, 0, true));
    int flipped = 0, kept = 0;
    for (uint64_t stream = 0; stream < 64; stream++) {
        float y[SYN_H * SYN_W];
        transform_one(&t, img, stream, y);
        bool same = true, mirror = true;
        for (int r = 0; r < SYN_H; r++)
            for (int c = 0; c < SYN_W; c++) {
                same = same && y[r * SYN_W + c] == img[r * SYN_W + c] / 255.0f;
                mirror = mirror && y[r * SYN_W + c] == img[r * SYN_W + SYN_W - 1 - c] / 255.0f;
            }
        assert_true(same != mirror);
        flipped += mirror;
        kept += same;
    }
    assert_true(flipped > 16 && kept > 16);
    cnn_transform_free(&t);
}

static void augment_crop_should_keep_the_size_and_pad_with_zeros(void **state) {
    (void)state;
    enum { H = 8, W = 7, P = 3 };
    uint8_t img[H * W];
    for (int k = 0; k < H * W; k++)
        img[k] = (uint8_t)(100 + k); /* never 0 */
    cnn_transform t;
    assert_true(cnn_transform_init(&t, H, W, H, W, false, P, false));
    int shifts[2 * P + 1][2 * P + 1] = {{0}};
    for (uint64_t stream = 0; stream < 400; stream++) {
        float y[H * W];
        transform_one(&t, img, stream, y);
        /* Find the shift: the output is the image moved by (dy, dx), zeros elsewhere. */
        int found = 0;
        for (int dy = -P; dy <= P; dy++)
            for (int dx = -P; dx <= P; dx++) {
                bool ok = true;
                for (int r = 0; r < H && ok; r++)
                    for (int c = 0; c < W && ok; c++) {
                        int sr = r + dy, sc = c + dx;
                        float want = sr >= 0 && sr < H && sc >= 0 && sc < W
                                         ? img[sr * W + sc] / 255.0f
                                         : 0.0f;
                        ok = y[r * W + c] == want;
                    }
                if (ok) {
                    shifts[dy + P][dx + P]++;
                    found++;
                }
            }
        assert_int_equal(found, 1);
    }
    /* Every offset in [-P, P]^2 turns up. */
    for (int i = 0; i < 2 * P + 1; i++)
        for (int j = 0; j < 2 * P + 1; j++)
            assert_true(shifts[i][j] > 0);
    cnn_transform_free(&t);
}

static void random_resized_crop_should_pick_crops_inside_the_image(void **state) {
    (void)state;
    int64_t min_area = INT64_MAX, max_area = 0;
    for (uint64_t stream = 0; stream < 2000; stream++) {
        cnn_rng r;
        cnn_rng_seed(&r, 3, stream);
        int64_t top, left, h, w;
        cnn_rrc_params(&r, 28, 28, &top, &left, &h, &w);
        assert_true(h >= 1 && w >= 1 && top >= 0 && left >= 0);
        assert_true(top + h <= 28 && left + w <= 28);
        double ratio = (double)w / (double)h;
        /* Rounding to whole pixels can stretch the ratio a little. */
        assert_true(ratio > 0.5 && ratio < 2.0);
        if (h * w < min_area) min_area = h * w;
        if (h * w > max_area) max_area = h * w;
    }
    assert_true(min_area < 28 * 28 / 5 && max_area > 28 * 28 * 3 / 4);
    /* A 1x100 strip: no try fits, so the centre crop at the ratio's end. */
    cnn_rng r;
    cnn_rng_seed(&r, 3, 0);
    int64_t top, left, h, w;
    cnn_rrc_params(&r, 1, 100, &top, &left, &h, &w);
    assert_int_equal(h, 1);
    assert_int_equal(w, 1); /* round(1 * 4/3) */
    assert_int_equal(top, 0);
    assert_int_equal(left, 49);
    cnn_rrc_params(&r, 100, 2, &top, &left, &h, &w);
    assert_int_equal(w, 2);
    assert_int_equal(h, 3); /* round(2 / (3/4)) */
    assert_int_equal(top, 48);
    assert_int_equal(left, 0);
}

static void augmented_batches_should_stay_in_range(void **state) {
    (void)state;
    cnn_dataset *ds = synthetic();
    cnn_loader_config c = augmenting(16, 1);
    c.resize = 32;
    epoch_run r = run_epoch(ds, &c, 0, 0);
    assert_int_equal(r.plane, 32 * 32);
    double lo = 1, hi = 0;
    for (int64_t i = 0; i < r.n * r.plane; i++) {
        /* Bilinear weights may sum to 1 + an ulp, in PyTorch too. */
        assert_true(r.x[i] >= 0.0f && r.x[i] <= 1.000001f);
        if (r.x[i] < lo) lo = r.x[i];
        if (r.x[i] > hi) hi = r.x[i];
    }
    assert_true(lo == 0.0 && hi > 0.9);
    free_run(&r);
    cnn_dataset_free(ds);
}

static void loader_should_reject_bad_configurations(void **state) {
    (void)state;
    cnn_dataset *ds = synthetic();
    cnn_loader *ld;
    char err[256];
    cnn_loader_config c = config(0, false, 1);
    assert_int_equal(cnn_loader_new(ds, &c, &ld, err, sizeof err), CNN_STATUS_INVALID_ARGUMENT);
    assert_null(ld);
    assert_non_null(strstr(err, "batch size 0"));
    c = config(4, false, -1);
    assert_int_equal(cnn_loader_new(ds, &c, &ld, err, sizeof err), CNN_STATUS_INVALID_ARGUMENT);
    c = config(4, false, 1);
    c.resize = -3;
    assert_int_equal(cnn_loader_new(ds, &c, &ld, err, sizeof err), CNN_STATUS_INVALID_ARGUMENT);
    c.resize = 0;
    c.crop_padding = -1;
    assert_int_equal(cnn_loader_new(ds, &c, &ld, err, sizeof err), CNN_STATUS_INVALID_ARGUMENT);
    assert_int_equal(cnn_loader_new(NULL, &c, &ld, err, sizeof err), CNN_STATUS_INVALID_ARGUMENT);
    /* Calls out of order. */
    c = config(4, false, 1);
    assert_int_equal(cnn_loader_new(ds, &c, &ld, err, sizeof err), CNN_OK);
    assert_int_equal(cnn_loader_num_batches(ld), 26);
    cnn_batch b;
    assert_int_equal(cnn_loader_next(ld, &b), CNN_STATUS_INVALID_ARGUMENT);
    assert_int_equal(cnn_loader_start_epoch(ld, 0, 27), CNN_STATUS_INVALID_ARGUMENT);
    assert_int_equal(cnn_loader_start_epoch(ld, -1, 0), CNN_STATUS_INVALID_ARGUMENT);
    assert_int_equal(cnn_loader_start_epoch(ld, 0, 26), CNN_OK);
    assert_int_equal(cnn_loader_next(ld, &b), CNN_OK);
    assert_int_equal(b.count, 0);
    cnn_loader_free(ld);
    cnn_loader_free(NULL);
    cnn_dataset_free(ds);
}

/* Restarts in the middle, a slow and a fast consumer, several threads: what
 * comes out must be what one thread in the caller makes. Run this one under
 * -fsanitize=thread to look for races. */
static void loader_threads_should_not_change_what_comes_out(void **state) {
    (void)state;
    cnn_dataset *ds = synthetic();
    cnn_loader_config ref = augmenting(5, 0), c = augmenting(5, 3);
    epoch_run want[3];
    for (int e = 0; e < 3; e++)
        want[e] = run_epoch(ds, &ref, e, 0);
    cnn_loader *ld;
    char err[256];
    assert_int_equal(cnn_loader_new(ds, &c, &ld, err, sizeof err), CNN_OK);
    for (int round = 0; round < 30; round++) {
        int e = round % 3;
        int64_t first = round % 7;
        assert_int_equal(cnn_loader_start_epoch(ld, e, first), CNN_OK);
        int64_t stop = round % 2 ? want[e].batches : first + 3; /* abandon some epochs */
        for (int64_t k = first; k < stop; k++) {
            cnn_batch b;
            assert_int_equal(cnn_loader_next(ld, &b), CNN_OK);
            assert_int_equal(b.batch, k);
            assert_memory_equal(b.index, want[e].index + k * 5, (size_t)b.count * sizeof *b.index);
            assert_memory_equal(b.x, want[e].x + k * 5 * want[e].plane,
                                (size_t)(b.count * want[e].plane) * sizeof *b.x);
            b.x[0] = -1; /* the caller may write into its batch */
            if (k % 4 == 0) nanosleep(&(struct timespec){0, 200000}, NULL);
        }
    }
    cnn_loader_free(ld);
    for (int e = 0; e < 3; e++)
        free_run(&want[e]);
    cnn_dataset_free(ds);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(idx_read_should_read_plain_and_gzipped_files, scratch_setup,
                                        scratch_teardown),
        cmocka_unit_test_setup_teardown(idx_read_should_reject_a_truncated_header, scratch_setup,
                                        scratch_teardown),
        cmocka_unit_test_setup_teardown(idx_read_should_reject_truncated_data, scratch_setup,
                                        scratch_teardown),
        cmocka_unit_test_setup_teardown(idx_read_should_reject_a_wrong_magic, scratch_setup,
                                        scratch_teardown),
        cmocka_unit_test_setup_teardown(idx_read_should_refuse_types_other_than_unsigned_byte,
                                        scratch_setup, scratch_teardown),
        cmocka_unit_test_setup_teardown(idx_read_should_reject_dims_that_do_not_match_the_length,
                                        scratch_setup, scratch_teardown),
        cmocka_unit_test_setup_teardown(idx_read_should_refuse_zero_or_too_many_dimensions,
                                        scratch_setup, scratch_teardown),
        cmocka_unit_test_setup_teardown(idx_read_should_reject_trailing_bytes, scratch_setup,
                                        scratch_teardown),
        cmocka_unit_test_setup_teardown(idx_read_should_not_believe_a_huge_header, scratch_setup,
                                        scratch_teardown),
        cmocka_unit_test_setup_teardown(idx_read_should_reject_a_corrupt_gzip_stream, scratch_setup,
                                        scratch_teardown),
        cmocka_unit_test_setup_teardown(idx_read_should_report_a_missing_file, scratch_setup,
                                        scratch_teardown),
        cmocka_unit_test_setup_teardown(dataset_load_should_read_the_four_files_gzipped_or_not,
                                        scratch_setup, scratch_teardown),
        cmocka_unit_test_setup_teardown(dataset_load_should_reject_mismatched_counts_and_shapes,
                                        scratch_setup, scratch_teardown),
        cmocka_unit_test_setup_teardown(dataset_load_should_say_how_to_install_fashion_mnist,
                                        scratch_setup, scratch_teardown),
        cmocka_unit_test(dataset_load_should_read_the_installed_fashion_mnist),
        cmocka_unit_test(fashion_mnist_class_names_should_be_d2ls),
        cmocka_unit_test(resize_should_match_pytorch_interpolate),
        cmocka_unit_test(resize_of_a_crop_should_match_pytorch),
        cmocka_unit_test(resize_should_reject_bad_sizes),
        cmocka_unit_test(loader_should_show_every_image_once_per_epoch),
        cmocka_unit_test(loader_should_repeat_an_epoch_for_the_same_seed_whatever_the_threads),
        cmocka_unit_test(loader_should_shuffle_differently_each_epoch),
        cmocka_unit_test(loader_resumed_at_batch_k_should_give_the_batches_of_a_full_run),
        cmocka_unit_test(loader_should_keep_or_drop_the_last_partial_batch),
        cmocka_unit_test(loader_should_resize_like_pytorch),
        cmocka_unit_test(augment_flip_should_mirror_the_image),
        cmocka_unit_test(augment_crop_should_keep_the_size_and_pad_with_zeros),
        cmocka_unit_test(random_resized_crop_should_pick_crops_inside_the_image),
        cmocka_unit_test(augmented_batches_should_stay_in_range),
        cmocka_unit_test(loader_should_reject_bad_configurations),
        cmocka_unit_test(loader_threads_should_not_change_what_comes_out),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
