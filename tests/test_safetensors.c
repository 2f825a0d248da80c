/* test_safetensors.c - reading, validating and writing safetensors files. */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <float.h>
#include <math.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "scratch.h"

#include "cnnkit/safetensors.h"

#ifndef CNNKIT_FIXTURES
#define CNNKIT_FIXTURES "tests/fixtures"
#endif

#define NAME "w.safetensors"

/* ---- helpers ------------------------------------------------------------ */

/* A file image: 8-byte length, json exactly as given, then data. */
static unsigned char *image(const char *json, const void *data, size_t dlen, size_t *len) {
    size_t n = strlen(json);
    *len = 8 + n + dlen;
    unsigned char *buf = malloc(*len ? *len : 1);
    assert_non_null(buf);
    for (int i = 0; i < 8; i++)
        buf[i] = (unsigned char)((uint64_t)n >> (8 * i));
    memcpy(buf + 8, json, n);
    if (dlen) memcpy(buf + 8 + n, data, dlen);
    return buf;
}

static cnn_st_file *parse_ok(const char *json, const void *data, size_t dlen) {
    size_t len;
    unsigned char *buf = image(json, data, dlen, &len);
    cnn_st_file *st = NULL;
    char err[512] = "";
    cnn_status s = cnn_st_parse(buf, len, NAME, &st, err, sizeof err);
    free(buf);
    if (s != CNN_OK) fail_msg("unexpected error: %s", err);
    assert_non_null(st);
    return st;
}

/* An error text: starts with the file name, holds the phrase, one line. */
static void check_err(const char *err, const char *file, const char *phrase) {
    size_t n = strlen(file);
    if (strncmp(err, file, n) != 0 || err[n] != ':')
        fail_msg("error does not start with '%s:': %s", file, err);
    if (!strstr(err, phrase)) fail_msg("error lacks '%s': %s", phrase, err);
    if (strchr(err, '\n')) fail_msg("error is not one line: %s", err);
}

static void reject_image(const unsigned char *buf, size_t len, cnn_status want,
                         const char *phrase) {
    static char sentinel;
    cnn_st_file *st = (cnn_st_file *)&sentinel; /* must be reset to NULL */
    char err[512] = "";
    cnn_status s = cnn_st_parse(buf, len, NAME, &st, err, sizeof err);
    if (s != want)
        fail_msg("status %s, wanted %s (%s)", cnn_status_str(s), cnn_status_str(want), err);
    assert_null(st);
    check_err(err, NAME, phrase);
}

static void reject(const char *json, const void *data, size_t dlen, cnn_status want,
                   const char *phrase) {
    size_t len;
    unsigned char *buf = image(json, data, dlen, &len);
    reject_image(buf, len, want, phrase);
    free(buf);
}

static uint32_t bits_of_f32(float f) {
    uint32_t b;
    memcpy(&b, &f, sizeof b);
    return b;
}

static void put_le(unsigned char *p, uint64_t v, int bytes) {
    for (int i = 0; i < bytes; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static unsigned char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    long n = ftell(f);
    assert_true(n >= 0);
    rewind(f);
    unsigned char *buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static int count_entries(const char *dir) {
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)))
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) n++;
    closedir(d);
    return n;
}

/* A scratch folder per test, removed (with its files) afterwards. */
typedef struct scratch {
    char dir[256];
    char path[300];
} scratch;

static int scratch_setup(void **state) {
    scratch *s = calloc(1, sizeof *s);
    if (!s) return -1;
    if (scratch_make(s->dir, sizeof s->dir, "st") != 0) {
        free(s);
        return -1;
    }
    snprintf(s->path, sizeof s->path, "%s/" NAME, s->dir);
    *state = s;
    return 0;
}

static int scratch_teardown(void **state) {
    scratch *s = *state;
    scratch_remove(s->dir);
    free(s);
    return 0;
}

/* A small valid file image: two F32 tensors and metadata. */
static unsigned char *valid_image(size_t *len) {
    static const char json[] = "{\"__metadata__\":{\"format\":\"pt\"},"
                               "\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]},"
                               "\"b\":{\"dtype\":\"I64\",\"shape\":[],\"data_offsets\":[16,24]}}";
    unsigned char data[24] = {0};
    for (int i = 0; i < 4; i++)
        put_le(data + 4 * i, bits_of_f32((float)i + 0.5f), 4);
    put_le(data + 16, 7, 8);
    return image(json, data, sizeof data, len);
}

/* ---- writing and reading back ------------------------------------------- */

static void write_then_read_should_round_trip_f32_i64_and_metadata(void **state) {
    scratch *sc = *state;
    float w[6] = {1.5f, -2.25f, 0.0f, -0.0f, FLT_MAX, FLT_MIN / 4};
    float b[1] = {INFINITY};
    int64_t n = INT64_MIN, big[2] = {INT64_MAX, -3};
    cnn_shape ws = cnn_shape_make(2, (int64_t[]){2, 3});
    cnn_shape bs = cnn_shape_make(1, (int64_t[]){1});
    cnn_shape scalar = cnn_shape_make(0, NULL);
    cnn_shape two = cnn_shape_make(1, (int64_t[]){2});
    cnn_shape empty = cnn_shape_make(3, (int64_t[]){4, 0, 2});

    cnn_st_file *st = cnn_st_new();
    assert_non_null(st);
    assert_int_equal(cnn_st_add_f32(st, "net.0.weight", &ws, w), CNN_OK);
    assert_int_equal(cnn_st_add_f32(st, "net.0.bias", &bs, b), CNN_OK);
    assert_int_equal(cnn_st_add_i64(st, "bn.num_batches_tracked", &scalar, &n), CNN_OK);
    assert_int_equal(cnn_st_add_i64(st, "big", &two, big), CNN_OK);
    assert_int_equal(cnn_st_add_f32(st, "empty", &empty, NULL), CNN_OK);
    assert_int_equal(cnn_st_set_metadata(st, "repr", "Net(\n  \"quoted\" \\ é\n)"), CNN_OK);
    assert_int_equal(cnn_st_set_metadata(st, "torch", "2.1"), CNN_OK);
    char err[512] = "";
    assert_int_equal(cnn_st_write(st, sc->path, err, sizeof err), CNN_OK);
    cnn_st_free(st);
    assert_int_equal(count_entries(sc->dir), 1); /* no temporary left over */

    st = NULL;
    assert_int_equal(cnn_st_read(sc->path, &st, err, sizeof err), CNN_OK);
    assert_int_equal(cnn_st_count(st), 5);
    const cnn_st_entry *e = cnn_st_get(st, 0);
    assert_string_equal(e->name, "net.0.weight");
    assert_int_equal(e->dtype, CNN_DTYPE_F32);
    assert_true(cnn_shape_equal(&e->shape, &ws));
    assert_int_equal(e->numel, 6);
    assert_null(e->i64);
    for (int i = 0; i < 6; i++)
        assert_int_equal(bits_of_f32(e->f32[i]), bits_of_f32(w[i]));
    e = cnn_st_get(st, 1);
    assert_string_equal(e->name, "net.0.bias");
    assert_true(isinf(e->f32[0]) && e->f32[0] > 0);
    e = cnn_st_get(st, 2);
    assert_string_equal(e->name, "bn.num_batches_tracked");
    assert_int_equal(e->dtype, CNN_DTYPE_I64);
    assert_int_equal(e->shape.ndim, 0);
    assert_int_equal(e->numel, 1);
    assert_null(e->f32);
    assert_true(e->i64[0] == INT64_MIN);
    e = cnn_st_find(st, "big");
    assert_non_null(e);
    assert_true(e->i64[0] == INT64_MAX && e->i64[1] == -3);
    e = cnn_st_find(st, "empty");
    assert_non_null(e);
    assert_int_equal(e->numel, 0);
    assert_true(cnn_shape_equal(&e->shape, &empty));
    assert_non_null(e->f32);
    assert_string_equal(cnn_st_metadata(st, "repr"), "Net(\n  \"quoted\" \\ é\n)");
    assert_string_equal(cnn_st_metadata(st, "torch"), "2.1");
    assert_null(cnn_st_metadata(st, "nope"));
    assert_null(cnn_st_find(st, "nope"));
    assert_null(cnn_st_get(st, 5));
    assert_null(cnn_st_get(st, -1));
    cnn_st_free(st);
}

static void write_should_emit_the_standard_layout(void **state) {
    scratch *sc = *state;
    float a[2] = {1.0f, -2.0f};
    int64_t c = 258;
    cnn_shape s2 = cnn_shape_make(1, (int64_t[]){2});
    cnn_shape s0 = cnn_shape_make(0, NULL);
    cnn_st_file *st = cnn_st_new();
    assert_int_equal(cnn_st_add_f32(st, "a", &s2, a), CNN_OK);
    assert_int_equal(cnn_st_add_i64(st, "c", &s0, &c), CNN_OK);
    assert_int_equal(cnn_st_set_metadata(st, "k", "v"), CNN_OK);
    assert_int_equal(cnn_st_write(st, sc->path, NULL, 0), CNN_OK);
    cnn_st_free(st);

    static const char want[] = "{\"__metadata__\":{\"k\":\"v\"},"
                               "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                               "\"c\":{\"dtype\":\"I64\",\"shape\":[],\"data_offsets\":[8,16]}}";
    size_t len, wl = strlen(want), padded = (wl + 7) / 8 * 8;
    unsigned char *buf = slurp(sc->path, &len);
    assert_int_equal(len, 8 + padded + 16);
    uint64_t n = 0;
    for (int i = 0; i < 8; i++)
        n |= (uint64_t)buf[i] << (8 * i);
    assert_int_equal(n, padded);
    assert_memory_equal(buf + 8, want, wl);
    for (size_t i = wl; i < padded; i++)
        assert_int_equal(buf[8 + i], ' ');
    static const unsigned char data[16] = {0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x00, 0xc0,
                                           0x02, 0x01, 0,    0,    0,    0,    0,    0};
    assert_memory_equal(buf + 8 + padded, data, sizeof data);
    free(buf);
}

static void write_should_emit_an_empty_header_for_an_empty_file(void **state) {
    scratch *sc = *state;
    cnn_st_file *st = cnn_st_new();
    assert_int_equal(cnn_st_write(st, sc->path, NULL, 0), CNN_OK);
    cnn_st_free(st);
    size_t len;
    unsigned char *buf = slurp(sc->path, &len);
    assert_int_equal(len, 16);
    assert_memory_equal(buf, "\x08\0\0\0\0\0\0\0{}      ", 16);
    free(buf);
    st = NULL;
    assert_int_equal(cnn_st_read(sc->path, &st, NULL, 0), CNN_OK);
    assert_int_equal(cnn_st_count(st), 0);
    cnn_st_free(st);
}

static void read_should_load_a_pytorch_fixture(void **state) {
    (void)state;
    cnn_st_file *st = NULL;
    char err[512] = "";
    cnn_status s =
        cnn_st_read(CNNKIT_FIXTURES "/batchnorm.weights.safetensors", &st, err, sizeof err);
    if (s != CNN_OK) fail_msg("%s", err);
    const char *torch = cnn_st_metadata(st, "torch");
    assert_non_null(torch);
    int i64 = 0;
    for (int i = 0; i < cnn_st_count(st); i++) {
        const cnn_st_entry *e = cnn_st_get(st, i);
        if (e->dtype == CNN_DTYPE_I64) {
            i64++;
            assert_non_null(strstr(e->name, "num_batches_tracked"));
            assert_int_equal(e->shape.ndim, 0);
        } else {
            assert_int_equal(e->dtype, CNN_DTYPE_F32);
            assert_non_null(e->f32);
        }
    }
    assert_int_equal(i64, 1);
    cnn_st_free(st);
}

static void read_of_a_read_file_written_again_should_be_identical(void **state) {
    scratch *sc = *state;
    size_t len;
    unsigned char *buf = valid_image(&len);
    cnn_st_file *st = NULL;
    assert_int_equal(cnn_st_parse(buf, len, NAME, &st, NULL, 0), CNN_OK);
    free(buf);
    assert_int_equal(cnn_st_write(st, sc->path, NULL, 0), CNN_OK);
    cnn_st_file *again = NULL;
    assert_int_equal(cnn_st_read(sc->path, &again, NULL, 0), CNN_OK);
    assert_int_equal(cnn_st_count(again), 2);
    assert_memory_equal(cnn_st_get(again, 0)->f32, cnn_st_get(st, 0)->f32, 4 * sizeof(float));
    assert_true(cnn_st_get(again, 1)->i64[0] == 7);
    assert_string_equal(cnn_st_metadata(again, "format"), "pt");
    cnn_st_free(again);
    cnn_st_free(st);
}

/* ---- conversions -------------------------------------------------------- */

static void parse_should_convert_f16_exactly(void **state) {
    (void)state;
    static const uint16_t h[] = {0x3c00, 0xc000, 0x7bff, 0x0001, 0x03ff, 0x0400,
                                 0x8000, 0x0000, 0x7c00, 0xfc00, 0x7e00, 0x3555};
    const float want[] = {1.0f,  -2.0f, 65504.0f, 0x1p-24f,  0x3ffp-24f, 0x1p-14f,
                          -0.0f, 0.0f,  INFINITY, -INFINITY, NAN,        0x1.554p-2f};
    unsigned char data[sizeof h];
    for (size_t i = 0; i < 12; i++)
        put_le(data + 2 * i, h[i], 2);
    cnn_st_file *st = parse_ok(
        "{\"h\":{\"dtype\":\"F16\",\"shape\":[3,4],\"data_offsets\":[0,24]}}", data, sizeof data);
    const cnn_st_entry *e = cnn_st_find(st, "h");
    assert_int_equal(e->dtype, CNN_DTYPE_F16);
    assert_int_equal(e->numel, 12);
    assert_null(e->i64);
    for (size_t i = 0; i < 12; i++) {
        if (isnan(want[i]))
            assert_true(isnan(e->f32[i]));
        else if (bits_of_f32(e->f32[i]) != bits_of_f32(want[i]))
            fail_msg("half 0x%04x: got %a, want %a", h[i], (double)e->f32[i], (double)want[i]);
    }
    assert_true(signbit(e->f32[6]));
    assert_false(signbit(e->f32[7]));
    cnn_st_free(st);
}

static void parse_should_convert_bf16_exactly(void **state) {
    (void)state;
    static const uint16_t h[] = {0x3f80, 0xc040, 0x8000, 0x7f80, 0xff80, 0x0001, 0x7fc0, 0x7f7f};
    unsigned char data[sizeof h];
    for (size_t i = 0; i < 8; i++)
        put_le(data + 2 * i, h[i], 2);
    cnn_st_file *st = parse_ok("{\"b\":{\"dtype\":\"BF16\",\"shape\":[8],\"data_offsets\":[0,16]}}",
                               data, sizeof data);
    const cnn_st_entry *e = cnn_st_get(st, 0);
    assert_int_equal(e->dtype, CNN_DTYPE_BF16);
    for (size_t i = 0; i < 8; i++) {
        if (i == 6)
            assert_true(isnan(e->f32[i]));
        else
            assert_int_equal(bits_of_f32(e->f32[i]), (uint32_t)h[i] << 16);
    }
    assert_true(e->f32[0] == 1.0f && e->f32[1] == -3.0f && signbit(e->f32[2]) && e->f32[2] == 0.0f);
    cnn_st_free(st);
}

static void parse_should_convert_f64_with_rounding_and_overflow(void **state) {
    (void)state;
    const double v[] = {0.1,    -0.0, 1e300,      -1e300, (double)FLT_MAX * (1 + 0x1p-25),
                        1e-310, 0.5,  -123456.789};
    const float want[] = {0.1f, -0.0f, INFINITY, -INFINITY, FLT_MAX, 0.0f, 0.5f, -123456.789f};
    unsigned char data[sizeof v];
    for (size_t i = 0; i < 8; i++) {
        uint64_t u;
        memcpy(&u, &v[i], sizeof u);
        put_le(data + 8 * i, u, 8);
    }
    cnn_st_file *st = parse_ok(
        "{\"d\":{\"dtype\":\"F64\",\"shape\":[2,2,2],\"data_offsets\":[0,64]}}", data, sizeof data);
    const cnn_st_entry *e = cnn_st_get(st, 0);
    assert_int_equal(e->dtype, CNN_DTYPE_F64);
    for (size_t i = 0; i < 8; i++)
        if (bits_of_f32(e->f32[i]) != bits_of_f32(want[i]))
            fail_msg("double %a: got %a, want %a", v[i], (double)e->f32[i], (double)want[i]);
    cnn_st_free(st);
}

static void parse_should_read_unaligned_f32_and_i64(void **state) {
    (void)state;
    /* An unpadded 75-byte header puts the data at an odd address. */
    static const char json[] = "{\"x\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,12]},"
                               "\"n\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[12,20]}}";
    assert_true((8 + strlen(json)) % 4 != 0);
    unsigned char data[20];
    const float x[3] = {3.5f, -0.125f, 1e-40f};
    for (int i = 0; i < 3; i++)
        put_le(data + 4 * i, bits_of_f32(x[i]), 4);
    put_le(data + 12, (uint64_t)-5, 8);
    cnn_st_file *st = parse_ok(json, data, sizeof data);
    const cnn_st_entry *e = cnn_st_find(st, "x");
    for (int i = 0; i < 3; i++)
        assert_int_equal(bits_of_f32(e->f32[i]), bits_of_f32(x[i]));
    e = cnn_st_find(st, "n");
    assert_true(e->i64[0] == -5);
    cnn_st_free(st);
}

static void parse_should_accept_scalars_and_zero_size_tensors(void **state) {
    (void)state;
    unsigned char data[4];
    put_le(data, bits_of_f32(2.5f), 4);
    cnn_st_file *st = parse_ok("{\"z\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]},"
                               "\"s\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]},"
                               "\"z2\":{\"dtype\":\"I64\",\"shape\":[3,0,5],\"data_offsets\":[4,4]}"
                               "}",
                               data, sizeof data);
    assert_int_equal(cnn_st_count(st), 3);
    const cnn_st_entry *z = cnn_st_find(st, "z"), *s = cnn_st_find(st, "s");
    const cnn_st_entry *z2 = cnn_st_find(st, "z2");
    assert_int_equal(z->numel, 0);
    assert_int_equal(z->shape.ndim, 1);
    assert_non_null(z->f32);
    assert_int_equal(s->numel, 1);
    assert_int_equal(s->shape.ndim, 0);
    assert_true(s->f32[0] == 2.5f);
    assert_int_equal(z2->numel, 0);
    assert_int_equal(z2->shape.ndim, 3);
    assert_null(z2->f32);
    cnn_st_free(st);
}

static void parse_should_keep_the_header_order(void **state) {
    (void)state;
    cnn_st_file *st = parse_ok("{\"zeta\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]},"
                               "\"__metadata__\":{},"
                               "\"alpha\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}"
                               "   \n",
                               "\0\0\x80?\0\0\0@", 8);
    assert_int_equal(cnn_st_count(st), 2);
    assert_string_equal(cnn_st_get(st, 0)->name, "zeta");
    assert_string_equal(cnn_st_get(st, 1)->name, "alpha");
    assert_true(cnn_st_get(st, 0)->f32[0] == 2.0f);
    assert_true(cnn_st_get(st, 1)->f32[0] == 1.0f);
    cnn_st_free(st);
}

static void dtype_name_should_use_safetensors_spelling(void **state) {
    (void)state;
    assert_string_equal(cnn_dtype_name(CNN_DTYPE_F32), "F32");
    assert_string_equal(cnn_dtype_name(CNN_DTYPE_F16), "F16");
    assert_string_equal(cnn_dtype_name(CNN_DTYPE_BF16), "BF16");
    assert_string_equal(cnn_dtype_name(CNN_DTYPE_F64), "F64");
    assert_string_equal(cnn_dtype_name(CNN_DTYPE_I64), "I64");
    assert_non_null(cnn_dtype_name(CNN_DTYPE_COUNT));
}

/* ---- rejections: framing ------------------------------------------------ */

static void read_should_reject_a_file_shorter_than_8_bytes(void **state) {
    (void)state;
    reject_image((const unsigned char *)"\x02\0\0\0\0", 5, CNN_STATUS_FORMAT, "too short");
    reject_image(NULL, 0, CNN_STATUS_FORMAT, "too short");
}

static void read_should_reject_a_header_length_past_the_end(void **state) {
    (void)state;
    size_t len;
    unsigned char *buf = image("{}", NULL, 0, &len);
    buf[0] = 3;
    reject_image(buf, len, CNN_STATUS_FORMAT, "header length 3");
    free(buf);
}

static void read_should_reject_an_absurd_header_length(void **state) {
    (void)state;
    unsigned char buf[16] = {0};
    memset(buf, 0xff, 8);
    reject_image(buf, sizeof buf, CNN_STATUS_FORMAT, "header length 18446744073709551615");
    put_le(buf, 0x8000000000000000u, 8);
    reject_image(buf, sizeof buf, CNN_STATUS_FORMAT, "header length");
}

static void read_should_reject_invalid_json(void **state) {
    (void)state;
    reject("{\"a\":{\"dtype\":\"F32\",,}}", NULL, 0, CNN_STATUS_FORMAT,
           "header: invalid JSON near byte ");
    reject("", NULL, 0, CNN_STATUS_FORMAT, "invalid JSON");
    reject("{} x", NULL, 0, CNN_STATUS_FORMAT, "invalid JSON");
    reject("{\"a\":1", NULL, 0, CNN_STATUS_FORMAT, "invalid JSON");
}

static void read_should_reject_a_header_that_is_not_an_object(void **state) {
    (void)state;
    reject("[1,2]", NULL, 0, CNN_STATUS_FORMAT, "header: JSON is an array, not an object");
    reject("\"x\"   ", NULL, 0, CNN_STATUS_FORMAT, "not an object");
}

static void read_should_reject_invalid_utf8_in_the_header(void **state) {
    (void)state;
    reject("{\"\xff\":{}}", NULL, 0, CNN_STATUS_FORMAT, "header: invalid UTF-8 at byte 2");
    reject("{\"\xc0\x80\":{}}", NULL, 0, CNN_STATUS_FORMAT, "invalid UTF-8");     /* overlong NUL */
    reject("{\"\xed\xa0\x80\":{}}", NULL, 0, CNN_STATUS_FORMAT, "invalid UTF-8"); /* surrogate */
}

static void read_should_reject_control_characters_in_the_header(void **state) {
    (void)state;
    size_t len;
    unsigned char *buf = image("{\"a\x01\":{}}", NULL, 0, &len);
    reject_image(buf, len, CNN_STATUS_FORMAT, "invalid JSON near byte 3");
    free(buf);
    buf = image("{}      ", NULL, 0, &len);
    buf[8 + 4] = 0; /* a NUL in the padding */
    reject_image(buf, len, CNN_STATUS_FORMAT, "invalid JSON near byte 4");
    free(buf);
}

static void read_should_reject_duplicate_tensor_names(void **state) {
    (void)state;
    reject("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
           "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
           "12345678", 8, CNN_STATUS_FORMAT, "tensor 'a': duplicate name");
}

static void read_should_reject_a_duplicate_metadata_object(void **state) {
    (void)state;
    reject("{\"__metadata__\":{},\"__metadata__\":{}}", NULL, 0, CNN_STATUS_FORMAT,
           "header: duplicate key \"__metadata__\"");
}

/* ---- rejections: entries ------------------------------------------------ */

static void read_should_reject_an_entry_that_is_not_an_object(void **state) {
    (void)state;
    reject("{\"a\":[1]}", NULL, 0, CNN_STATUS_FORMAT,
           "tensor 'a': entry is an array, not an object");
    reject("{\"a\":null}", NULL, 0, CNN_STATUS_FORMAT, "tensor 'a': entry is null");
}

static void read_should_reject_missing_fields(void **state) {
    (void)state;
    reject("{\"a\":{\"shape\":[1],\"data_offsets\":[0,4]}}", "1234", 4, CNN_STATUS_FORMAT,
           "tensor 'a': missing field \"dtype\"");
    reject("{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", "1234", 4, CNN_STATUS_FORMAT,
           "tensor 'a': missing field \"shape\"");
    reject("{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", "1234", 4, CNN_STATUS_FORMAT,
           "tensor 'a': missing field \"data_offsets\"");
}

static void read_should_reject_extra_or_repeated_fields(void **state) {
    (void)state;
    reject("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"x\":1}}", "1234", 4,
           CNN_STATUS_FORMAT, "tensor 'a': unexpected field \"x\"");
    reject("{\"a\":{\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}",
           "1234", 4, CNN_STATUS_FORMAT, "tensor 'a': field \"dtype\" appears twice");
}

static void read_should_reject_a_dtype_that_is_not_a_string(void **state) {
    (void)state;
    reject("{\"a\":{\"dtype\":32,\"shape\":[1],\"data_offsets\":[0,4]}}", "1234", 4,
           CNN_STATUS_FORMAT, "tensor 'a': dtype is a number, not a string");
}

static void read_should_report_other_dtypes_as_unsupported(void **state) {
    (void)state;
    static const char *const dtypes[] = {"BOOL", "U8",  "I8",      "I16",     "I32",
                                         "U16",  "U32", "U64",     "F8_E4M3", "F8_E5M2",
                                         "C64",  "f32", "FLOAT32", ""};
    for (size_t i = 0; i < sizeof dtypes / sizeof *dtypes; i++) {
        char json[160], phrase[80];
        snprintf(json, sizeof json,
                 "{\"net.0.weight\":{\"dtype\":\"%s\",\"shape\":[1],\"data_offsets\":[0,4]}}",
                 dtypes[i]);
        snprintf(phrase, sizeof phrase, "tensor 'net.0.weight': dtype %s is not supported",
                 dtypes[i]);
        reject(json, "1234", 4, CNN_STATUS_UNSUPPORTED, phrase);
    }
}

static void read_should_reject_a_shape_that_is_not_an_array(void **state) {
    (void)state;
    reject("{\"a\":{\"dtype\":\"F32\",\"shape\":4,\"data_offsets\":[0,16]}}", "1234567890123456",
           16, CNN_STATUS_FORMAT, "tensor 'a': shape is a number, not an array");
}

static void read_should_reject_fractional_negative_or_huge_dimensions(void **state) {
    (void)state;
    static const char *const dims[] = {"1.5",  "-1",   "1e30", "-0",    "\"1\"",
                                       "true", "null", "[1]",  "1e400", "9007199254740993"};
    for (size_t i = 0; i < sizeof dims / sizeof *dims; i++) {
        char json[160];
        snprintf(json, sizeof json,
                 "{\"a\":{\"dtype\":\"F32\",\"shape\":[1,%s],\"data_offsets\":[0,4]}}", dims[i]);
        reject(json, "1234", 4, CNN_STATUS_FORMAT,
               "tensor 'a': shape[1] is not a non-negative integer");
    }
}

static void read_should_reject_more_than_max_dims(void **state) {
    (void)state;
    reject("{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", "1234",
           4, CNN_STATUS_FORMAT, "tensor 'a': shape has 7 dimensions");
}

static void read_should_reject_a_shape_whose_size_overflows(void **state) {
    (void)state;
    reject("{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4294967296],"
           "\"data_offsets\":[0,4]}}",
           "1234", 4, CNN_STATUS_FORMAT,
           "tensor 'a': shape [4294967296, 4294967296, 4294967296] has too many elements");
    /* numel fits, numel * 8 does not */
    reject("{\"a\":{\"dtype\":\"I64\",\"shape\":[4611686018427387,4096],\"data_offsets\":[0,8]}}",
           "12345678", 8, CNN_STATUS_FORMAT, "too many elements");
}

static void read_should_reject_malformed_data_offsets(void **state) {
    (void)state;
    static const char *const offs[] = {"4",      "[0]",    "[0,4,4]", "[\"0\",4]", "[0,4.5]",
                                       "[-1,4]", "[0,-0]", "{}",      "[0,1e40]",  "[0,null]"};
    for (size_t i = 0; i < sizeof offs / sizeof *offs; i++) {
        char json[160];
        snprintf(json, sizeof json, "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":%s}}",
                 offs[i]);
        reject(json, "1234", 4, CNN_STATUS_FORMAT,
               "tensor 'a': data_offsets is not a pair of non-negative integers");
    }
}

static void read_should_reject_reversed_data_offsets(void **state) {
    (void)state;
    reject("{\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[4,0]}}", "1234", 4,
           CNN_STATUS_FORMAT, "tensor 'a': data_offsets [4, 0] end before they begin");
}

static void read_should_reject_data_offsets_past_the_data(void **state) {
    (void)state;
    reject("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", "1234", 4,
           CNN_STATUS_FORMAT, "tensor 'a': data_offsets [0, 8] run past the end of the data");
}

static void read_should_reject_a_byte_count_that_does_not_fit_the_shape(void **state) {
    (void)state;
    unsigned char data[96] = {0};
    reject("{\"net.0.weight\":{\"dtype\":\"F32\",\"shape\":[6,1,5,5],\"data_offsets\":[0,96]}}",
           data, sizeof data, CNN_STATUS_FORMAT,
           "w.safetensors: tensor 'net.0.weight': data_offsets [0, 96] hold 96 bytes, but F32 "
           "[6, 1, 5, 5] needs 600");
    reject("{\"h\":{\"dtype\":\"F16\",\"shape\":[3],\"data_offsets\":[0,4]}}", "1234", 4,
           CNN_STATUS_FORMAT, "hold 4 bytes, but F16 [3] needs 6");
}

static void read_should_reject_overlapping_tensors(void **state) {
    (void)state;
    reject("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
           "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
           "123456789012", 12, CNN_STATUS_FORMAT,
           "tensor 'b': data_offsets [4, 12] overlap tensor 'a'");
    reject("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
           "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}",
           "1234", 4, CNN_STATUS_FORMAT, "overlap tensor 'a'");
}

static void read_should_reject_holes_in_the_data(void **state) {
    (void)state;
    reject("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
           "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}",
           "123456789012", 12, CNN_STATUS_FORMAT,
           "tensor 'b': data_offsets [8, 12] leave a hole: bytes [4, 8) belong to no tensor");
    reject("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", "12345678", 8,
           CNN_STATUS_FORMAT, "bytes [0, 4) belong to no tensor");
}

static void read_should_reject_trailing_bytes_after_the_last_tensor(void **state) {
    (void)state;
    reject("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", "12345", 5,
           CNN_STATUS_FORMAT, "data: a hole: bytes [4, 5) belong to no tensor");
    reject("{}", "1", 1, CNN_STATUS_FORMAT, "bytes [0, 1) belong to no tensor");
}

/* ---- rejections: metadata ----------------------------------------------- */

static void read_should_reject_metadata_that_is_not_an_object(void **state) {
    (void)state;
    reject("{\"__metadata__\":[\"a\"]}", NULL, 0, CNN_STATUS_FORMAT,
           "metadata: \"__metadata__\" is an array, not an object");
    reject("{\"__metadata__\":\"x\"}", NULL, 0, CNN_STATUS_FORMAT, "not an object");
}

static void read_should_reject_metadata_values_that_are_not_strings(void **state) {
    (void)state;
    reject("{\"__metadata__\":{\"ok\":\"1\",\"epoch\":3}}", NULL, 0, CNN_STATUS_FORMAT,
           "metadata 'epoch': value is a number, not a string");
    reject("{\"__metadata__\":{\"m\":{}}}", NULL, 0, CNN_STATUS_FORMAT,
           "metadata 'm': value is an object");
}

static void read_should_reject_duplicate_metadata_keys(void **state) {
    (void)state;
    reject("{\"__metadata__\":{\"k\":\"1\",\"k\":\"2\"}}", NULL, 0, CNN_STATUS_FORMAT,
           "metadata 'k': duplicate key");
}

/* ---- rejections: robustness --------------------------------------------- */

static void errors_should_stay_on_one_line_whatever_the_names(void **state) {
    (void)state;
    reject("{\"bad\\nname\\u0001\":{\"dtype\":\"I32\",\"shape\":[1],\"data_offsets\":[0,4]}}",
           "1234", 4, CNN_STATUS_UNSUPPORTED, "tensor 'bad?name?': dtype I32");
    /* A tiny err buffer is filled, not overrun. */
    size_t len;
    unsigned char *buf = image("[]", NULL, 0, &len);
    char err[8];
    cnn_st_file *st = NULL;
    assert_int_equal(cnn_st_parse(buf, len, NAME, &st, err, sizeof err), CNN_STATUS_FORMAT);
    assert_string_equal(err, "w.safet");
    assert_int_equal(cnn_st_parse(buf, len, NAME, &st, NULL, 0), CNN_STATUS_FORMAT);
    free(buf);
}

static void read_should_report_a_missing_file_as_an_io_error(void **state) {
    scratch *sc = *state;
    char path[400], err[512] = "";
    snprintf(path, sizeof path, "%s/absent.safetensors", sc->dir);
    cnn_st_file *st = NULL;
    assert_int_equal(cnn_st_read(path, &st, err, sizeof err), CNN_STATUS_IO);
    assert_null(st);
    check_err(err, path, "No such file");
}

static void read_should_name_the_path_in_errors(void **state) {
    scratch *sc = *state;
    FILE *f = fopen(sc->path, "wb");
    assert_non_null(f);
    fwrite("\x02\0\0\0\0\0\0\0{]", 1, 10, f);
    fclose(f);
    char err[512] = "";
    cnn_st_file *st = NULL;
    assert_int_equal(cnn_st_read(sc->path, &st, err, sizeof err), CNN_STATUS_FORMAT);
    check_err(err, sc->path, "header: invalid JSON near byte ");
}

static void read_should_fail_cleanly_at_every_truncation(void **state) {
    (void)state;
    size_t len;
    unsigned char *full = valid_image(&len);
    for (size_t n = 0; n < len; n++) {
        unsigned char *buf = malloc(n ? n : 1); /* exact size, so ASan sees overreads */
        assert_non_null(buf);
        memcpy(buf, full, n);
        cnn_st_file *st = NULL;
        char err[512] = "";
        cnn_status s = cnn_st_parse(buf, n, NAME, &st, err, sizeof err);
        if (s == CNN_OK) fail_msg("a file cut to %zu of %zu bytes was accepted", n, len);
        assert_int_equal(s, CNN_STATUS_FORMAT);
        assert_null(st);
        check_err(err, NAME, ": ");
        free(buf);
    }
    cnn_st_file *st = NULL;
    assert_int_equal(cnn_st_parse(full, len, NAME, &st, NULL, 0), CNN_OK);
    cnn_st_free(st);
    free(full);
}

static void read_should_survive_flipped_bytes(void **state) {
    (void)state;
    static const unsigned char masks[] = {0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80, 0xff};
    size_t len;
    unsigned char *full = valid_image(&len);
    int ok = 0, bad = 0;
    for (size_t pos = 0; pos < len; pos++) {
        for (size_t m = 0; m < sizeof masks; m++) {
            unsigned char *buf = malloc(len);
            assert_non_null(buf);
            memcpy(buf, full, len);
            buf[pos] ^= masks[m];
            cnn_st_file *st = NULL;
            char err[512] = "";
            cnn_status s = cnn_st_parse(buf, len, NAME, &st, err, sizeof err);
            if (s == CNN_OK) {
                ok++; /* e.g. a flipped data byte, or "a" renamed: must be usable */
                for (int i = 0; i < cnn_st_count(st); i++) {
                    const cnn_st_entry *e = cnn_st_get(st, i);
                    assert_true(e->f32 || e->i64);
                }
            } else {
                bad++;
                assert_null(st);
                assert_true(err[0] != 0);
                assert_null(strchr(err, '\n'));
            }
            cnn_st_free(st);
            free(buf);
        }
    }
    assert_true(ok > 0 && bad > 0);
    free(full);
}

/* ---- writer arguments and failures -------------------------------------- */

static void add_should_reject_duplicate_names(void **state) {
    (void)state;
    float x = 1;
    int64_t n = 1;
    cnn_shape s = cnn_shape_make(1, (int64_t[]){1});
    cnn_st_file *st = cnn_st_new();
    assert_int_equal(cnn_st_add_f32(st, "a", &s, &x), CNN_OK);
    assert_int_equal(cnn_st_add_f32(st, "a", &s, &x), CNN_STATUS_INVALID_ARGUMENT);
    assert_int_equal(cnn_st_add_i64(st, "a", &s, &n), CNN_STATUS_INVALID_ARGUMENT);
    assert_int_equal(cnn_st_count(st), 1);
    cnn_st_free(st);
}

static void add_should_reject_bad_arguments(void **state) {
    (void)state;
    float x[2] = {1, 2};
    cnn_shape s = cnn_shape_make(1, (int64_t[]){2});
    cnn_shape neg = cnn_shape_make(2, (int64_t[]){2, -1});
    cnn_shape bad = s;
    bad.ndim = CNN_MAX_DIMS + 1;
    cnn_st_file *st = cnn_st_new();
    assert_int_equal(cnn_st_add_f32(st, NULL, &s, x), CNN_STATUS_INVALID_ARGUMENT);
    assert_int_equal(cnn_st_add_f32(st, "a", NULL, x), CNN_STATUS_INVALID_ARGUMENT);
    assert_int_equal(cnn_st_add_f32(st, "a", &s, NULL), CNN_STATUS_INVALID_ARGUMENT);
    assert_int_equal(cnn_st_add_f32(st, "a", &neg, x), CNN_STATUS_INVALID_ARGUMENT);
    assert_int_equal(cnn_st_add_f32(st, "a", &bad, x), CNN_STATUS_INVALID_ARGUMENT);
    assert_int_equal(cnn_st_add_f32(st, "__metadata__", &s, x), CNN_STATUS_INVALID_ARGUMENT);
    assert_int_equal(cnn_st_add_f32(st, "bad\xff", &s, x), CNN_STATUS_INVALID_ARGUMENT);
    assert_int_equal(cnn_st_add_f32(NULL, "a", &s, x), CNN_STATUS_INVALID_ARGUMENT);
    assert_int_equal(cnn_st_set_metadata(st, "k", NULL), CNN_STATUS_INVALID_ARGUMENT);
    assert_int_equal(cnn_st_set_metadata(st, "k", "\xc3"), CNN_STATUS_INVALID_ARGUMENT);
    assert_int_equal(cnn_st_count(st), 0);
    assert_int_equal(cnn_st_write(NULL, "x", NULL, 0), CNN_STATUS_INVALID_ARGUMENT);
    cnn_st_free(st);
    cnn_st_free(NULL);
}

static void set_metadata_should_replace_an_existing_key(void **state) {
    scratch *sc = *state;
    cnn_st_file *st = cnn_st_new();
    assert_int_equal(cnn_st_set_metadata(st, "k", "1"), CNN_OK);
    assert_int_equal(cnn_st_set_metadata(st, "k", "2"), CNN_OK);
    assert_string_equal(cnn_st_metadata(st, "k"), "2");
    assert_int_equal(cnn_st_write(st, sc->path, NULL, 0), CNN_OK);
    cnn_st_free(st);
    st = NULL;
    assert_int_equal(cnn_st_read(sc->path, &st, NULL, 0), CNN_OK);
    assert_string_equal(cnn_st_metadata(st, "k"), "2");
    cnn_st_free(st);
}

static void write_should_fail_cleanly_in_a_missing_directory(void **state) {
    scratch *sc = *state;
    char path[400], err[512] = "";
    snprintf(path, sizeof path, "%s/no/such/dir/out.safetensors", sc->dir);
    float x = 1;
    cnn_shape s = cnn_shape_make(1, (int64_t[]){1});
    cnn_st_file *st = cnn_st_new();
    assert_int_equal(cnn_st_add_f32(st, "x", &s, &x), CNN_OK);
    assert_int_equal(cnn_st_write(st, path, err, sizeof err), CNN_STATUS_IO);
    check_err(err, path, "No such file");
    cnn_st_free(st);
    assert_int_equal(count_entries(sc->dir), 0);
}

static void a_failed_write_should_leave_an_existing_file_intact(void **state) {
    scratch *sc = *state;
    /* Put a valid file at the target. */
    size_t len;
    unsigned char *orig = valid_image(&len);
    FILE *f = fopen(sc->path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(orig, 1, len, f), len);
    assert_int_equal(fclose(f), 0);

    /* Make the write fail half-way: the file size limit stops it at 64 KiB. */
    size_t n = 1 << 18;
    float *big = calloc(n, sizeof *big);
    assert_non_null(big);
    cnn_shape s = cnn_shape_make(1, (int64_t[]){(int64_t)n});
    cnn_st_file *st = cnn_st_new();
    assert_int_equal(cnn_st_add_f32(st, "big", &s, big), CNN_OK);

    struct rlimit old, lim;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    lim = old;
    lim.rlim_cur = 1 << 16;
    void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    char err[512] = "";
    cnn_status r = cnn_st_write(st, sc->path, err, sizeof err);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, prev);
    assert_int_equal(r, CNN_STATUS_IO);
    check_err(err, sc->path, "cannot write");
    cnn_st_free(st);
    free(big);

    size_t got_len;
    unsigned char *got = slurp(sc->path, &got_len);
    assert_int_equal(got_len, len);
    assert_memory_equal(got, orig, len);
    assert_int_equal(count_entries(sc->dir), 1); /* the temporary is gone */
    free(got);
    free(orig);
}

#define SCRATCH(t) cmocka_unit_test_setup_teardown(t, scratch_setup, scratch_teardown)

int main(void) {
    const struct CMUnitTest tests[] = {
        SCRATCH(write_then_read_should_round_trip_f32_i64_and_metadata),
        SCRATCH(write_should_emit_the_standard_layout),
        SCRATCH(write_should_emit_an_empty_header_for_an_empty_file),
        cmocka_unit_test(read_should_load_a_pytorch_fixture),
        SCRATCH(read_of_a_read_file_written_again_should_be_identical),
        cmocka_unit_test(parse_should_convert_f16_exactly),
        cmocka_unit_test(parse_should_convert_bf16_exactly),
        cmocka_unit_test(parse_should_convert_f64_with_rounding_and_overflow),
        cmocka_unit_test(parse_should_read_unaligned_f32_and_i64),
        cmocka_unit_test(parse_should_accept_scalars_and_zero_size_tensors),
        cmocka_unit_test(parse_should_keep_the_header_order),
        cmocka_unit_test(dtype_name_should_use_safetensors_spelling),
        cmocka_unit_test(read_should_reject_a_file_shorter_than_8_bytes),
        cmocka_unit_test(read_should_reject_a_header_length_past_the_end),
        cmocka_unit_test(read_should_reject_an_absurd_header_length),
        cmocka_unit_test(read_should_reject_invalid_json),
        cmocka_unit_test(read_should_reject_a_header_that_is_not_an_object),
        cmocka_unit_test(read_should_reject_invalid_utf8_in_the_header),
        cmocka_unit_test(read_should_reject_control_characters_in_the_header),
        cmocka_unit_test(read_should_reject_duplicate_tensor_names),
        cmocka_unit_test(read_should_reject_a_duplicate_metadata_object),
        cmocka_unit_test(read_should_reject_an_entry_that_is_not_an_object),
        cmocka_unit_test(read_should_reject_missing_fields),
        cmocka_unit_test(read_should_reject_extra_or_repeated_fields),
        cmocka_unit_test(read_should_reject_a_dtype_that_is_not_a_string),
        cmocka_unit_test(read_should_report_other_dtypes_as_unsupported),
        cmocka_unit_test(read_should_reject_a_shape_that_is_not_an_array),
        cmocka_unit_test(read_should_reject_fractional_negative_or_huge_dimensions),
        cmocka_unit_test(read_should_reject_more_than_max_dims),
        cmocka_unit_test(read_should_reject_a_shape_whose_size_overflows),
        cmocka_unit_test(read_should_reject_malformed_data_offsets),
        cmocka_unit_test(read_should_reject_reversed_data_offsets),
        cmocka_unit_test(read_should_reject_data_offsets_past_the_data),
        cmocka_unit_test(read_should_reject_a_byte_count_that_does_not_fit_the_shape),
        cmocka_unit_test(read_should_reject_overlapping_tensors),
        cmocka_unit_test(read_should_reject_holes_in_the_data),
        cmocka_unit_test(read_should_reject_trailing_bytes_after_the_last_tensor),
        cmocka_unit_test(read_should_reject_metadata_that_is_not_an_object),
        cmocka_unit_test(read_should_reject_metadata_values_that_are_not_strings),
        cmocka_unit_test(read_should_reject_duplicate_metadata_keys),
        cmocka_unit_test(errors_should_stay_on_one_line_whatever_the_names),
        SCRATCH(read_should_report_a_missing_file_as_an_io_error),
        SCRATCH(read_should_name_the_path_in_errors),
        cmocka_unit_test(read_should_fail_cleanly_at_every_truncation),
        cmocka_unit_test(read_should_survive_flipped_bytes),
        cmocka_unit_test(add_should_reject_duplicate_names),
        cmocka_unit_test(add_should_reject_bad_arguments),
        SCRATCH(set_metadata_should_replace_an_existing_key),
        SCRATCH(write_should_fail_cleanly_in_a_missing_directory),
        SCRATCH(a_failed_write_should_leave_an_existing_file_intact),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
