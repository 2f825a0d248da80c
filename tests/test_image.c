/* test_image.c - PNG and PGM pictures for predict: every PNG colour type and
 * depth written here with libpng, Pillow's luma, PGM in both forms, hostile
 * files, and the conversion to a model input. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <png.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include <cmocka.h>

#include "cnnkit/data.h"
#include "cnnkit/image.h"
#include "cnnkit/safetensors.h"

#ifndef CNNKIT_FIXTURES
#define CNNKIT_FIXTURES "tests/fixtures"
#endif

/* ---- writing PNGs in memory ----------------------------------------------- */

typedef struct membuf {
    unsigned char *p;
    size_t len, cap;
} membuf;

static void mem_write(png_structp png, png_bytep data, size_t n) {
    membuf *m = png_get_io_ptr(png);
    if (m->len + n > m->cap) {
        m->cap = (m->len + n) * 2;
        m->p = realloc(m->p, m->cap);
        if (!m->p) png_error(png, "out of memory");
    }
    memcpy(m->p + m->len, data, n);
    m->len += n;
}

static void mem_flush(png_structp png) { (void)png; }

typedef struct png_spec {
    int width, height, color, depth;
    bool interlace;
    const unsigned char *samples; /* rows of width * channels samples, 16-bit big-endian */
    const png_color *palette;
    int npalette;
    const unsigned char *trns; /* palette alpha, npalette entries */
} png_spec;

static int channels_of(int color) {
    switch (color) {
    case PNG_COLOR_TYPE_GRAY: return 1;
    case PNG_COLOR_TYPE_GRAY_ALPHA: return 2;
    case PNG_COLOR_TYPE_RGB: return 3;
    case PNG_COLOR_TYPE_RGB_ALPHA: return 4;
    default: return 1; /* palette indices */
    }
}

static unsigned char *make_png(const png_spec *s, size_t *len) {
    membuf *m = calloc(1, sizeof *m);
    assert_non_null(m);
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    assert_true(png && info);
    if (setjmp(png_jmpbuf(png))) fail_msg("libpng could not write the test image");
    png_set_write_fn(png, m, mem_write, mem_flush);
    png_set_IHDR(png, info, (png_uint_32)s->width, (png_uint_32)s->height, s->depth, s->color,
                 s->interlace ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    if (s->palette) png_set_PLTE(png, info, s->palette, s->npalette);
    if (s->trns) png_set_tRNS(png, info, s->trns, s->npalette, NULL);
    png_write_info(png, info);
    size_t rowbytes = ((size_t)s->width * (size_t)channels_of(s->color) * (size_t)s->depth + 7) / 8;
    png_bytep *rows = malloc((size_t)s->height * sizeof *rows);
    assert_non_null(rows);
    for (int y = 0; y < s->height; y++)
        rows[y] = (png_bytep)(s->samples + (size_t)y * rowbytes);
    png_write_image(png, rows);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    free(rows);
    unsigned char *p = m->p;
    *len = m->len;
    free(m);
    return p;
}

static cnn_image decode_ok(const unsigned char *buf, size_t len) {
    cnn_image img;
    char err[512] = "";
    if (cnn_image_decode(buf, len, "t.png", &img, err, sizeof err) != CNN_OK) fail_msg("%s", err);
    return img;
}

static void reject(const unsigned char *buf, size_t len, cnn_status want, const char *phrase) {
    cnn_image img;
    char err[512] = "";
    cnn_status s = cnn_image_decode(buf, len, "bad.img", &img, err, sizeof err);
    if (s != want)
        fail_msg("status %s, wanted %s (%s)", cnn_status_str(s), cnn_status_str(want), err);
    assert_null(img.pixels);
    if (strncmp(err, "bad.img: ", 9) != 0) fail_msg("error does not name the file: %s", err);
    if (!strstr(err, phrase)) fail_msg("error lacks '%s': %s", phrase, err);
    if (strchr(err, '\n')) fail_msg("error is not one line: %s", err);
}

/* Whatever happens to the bytes, an error or an image, never a crash. */
static void decode_anything(const unsigned char *buf, size_t len) {
    cnn_image img;
    char err[512];
    if (cnn_image_decode(buf, len, "x", &img, err, sizeof err) == CNN_OK) {
        assert_non_null(img.pixels);
        cnn_image_free(&img);
    } else {
        assert_null(img.pixels);
    }
}

static uint8_t luma(int r, int g, int b) {
    return (uint8_t)((r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16);
}

/* ---- PNG ----------------------------------------------------------------- */

static void png_grey_should_read_as_is(void **state) {
    (void)state;
    unsigned char px[5 * 3];
    for (int i = 0; i < 15; i++)
        px[i] = (unsigned char)(i * 17);
    for (int interlace = 0; interlace < 2; interlace++) {
        png_spec s = {5, 3, PNG_COLOR_TYPE_GRAY, 8, interlace, px, NULL, 0, NULL};
        size_t len;
        unsigned char *buf = make_png(&s, &len);
        cnn_image img = decode_ok(buf, len);
        assert_int_equal(img.width, 5);
        assert_int_equal(img.height, 3);
        assert_memory_equal(img.pixels, px, 15);
        cnn_image_free(&img);
        assert_null(img.pixels);
        free(buf);
    }
}

static void png_low_bit_depth_grey_should_expand_to_8_bits(void **state) {
    (void)state;
    /* 1 bit: 8 pixels 10110001 per row, 2 rows. */
    unsigned char px[2] = {0xB1, 0x0F};
    png_spec s = {8, 2, PNG_COLOR_TYPE_GRAY, 1, false, px, NULL, 0, NULL};
    size_t len;
    unsigned char *buf = make_png(&s, &len);
    cnn_image img = decode_ok(buf, len);
    const uint8_t want[16] = {255, 0, 255, 255, 0, 0, 0, 255, 0, 0, 0, 0, 255, 255, 255, 255};
    assert_memory_equal(img.pixels, want, 16);
    cnn_image_free(&img);
    free(buf);
    /* 4 bits: 0x0..0xF scale by 17. */
    unsigned char px4[2] = {0x0F, 0x58};
    png_spec s4 = {4, 1, PNG_COLOR_TYPE_GRAY, 4, false, px4, NULL, 0, NULL};
    buf = make_png(&s4, &len);
    img = decode_ok(buf, len);
    const uint8_t want4[4] = {0, 255, 85, 136};
    assert_memory_equal(img.pixels, want4, 4);
    cnn_image_free(&img);
    free(buf);
}

static void png_16_bit_should_keep_the_high_byte(void **state) {
    (void)state;
    unsigned char grey[4 * 2] = {0x12, 0x34, 0xFF, 0xFF, 0x00, 0xFF, 0x80, 0x00};
    png_spec s = {4, 1, PNG_COLOR_TYPE_GRAY, 16, false, grey, NULL, 0, NULL};
    size_t len;
    unsigned char *buf = make_png(&s, &len);
    cnn_image img = decode_ok(buf, len);
    const uint8_t want[4] = {0x12, 0xFF, 0x00, 0x80};
    assert_memory_equal(img.pixels, want, 4);
    cnn_image_free(&img);
    free(buf);
    /* 16-bit RGBA: high bytes, then luma; alpha ignored. */
    unsigned char rgba[2 * 8] = {0xC8, 1, 0x64, 2, 0x32, 3, 0,    0,
                                 0x0A, 9, 0xF0, 9, 0x7F, 9, 0xFF, 0xFF};
    png_spec s2 = {2, 1, PNG_COLOR_TYPE_RGB_ALPHA, 16, true, rgba, NULL, 0, NULL};
    buf = make_png(&s2, &len);
    img = decode_ok(buf, len);
    assert_int_equal(img.pixels[0], luma(0xC8, 0x64, 0x32));
    assert_int_equal(img.pixels[1], luma(0x0A, 0xF0, 0x7F));
    cnn_image_free(&img);
    free(buf);
}

static void png_alpha_should_be_ignored(void **state) {
    (void)state;
    unsigned char ga[3 * 2] = {10, 0, 20, 128, 30, 255};
    png_spec s = {3, 1, PNG_COLOR_TYPE_GRAY_ALPHA, 8, false, ga, NULL, 0, NULL};
    size_t len;
    unsigned char *buf = make_png(&s, &len);
    cnn_image img = decode_ok(buf, len);
    assert_memory_equal(img.pixels, ((uint8_t[]){10, 20, 30}), 3);
    cnn_image_free(&img);
    free(buf);
    unsigned char rgba[2 * 4] = {255, 0, 0, 0, 0, 0, 255, 7};
    png_spec s2 = {2, 1, PNG_COLOR_TYPE_RGB_ALPHA, 8, false, rgba, NULL, 0, NULL};
    buf = make_png(&s2, &len);
    img = decode_ok(buf, len);
    assert_int_equal(img.pixels[0], luma(255, 0, 0));
    assert_int_equal(img.pixels[1], luma(0, 0, 255));
    cnn_image_free(&img);
    free(buf);
}

static void png_palette_should_read_through_its_colours(void **state) {
    (void)state;
    const png_color pal[4] = {{0, 0, 0}, {255, 0, 0}, {10, 200, 30}, {255, 255, 255}};
    const unsigned char alpha[4] = {255, 0, 128, 255};
    unsigned char px[1] = {0x1B}; /* 2-bit indices 0, 1, 2, 3 */
    for (int trns = 0; trns < 2; trns++) {
        png_spec s = {4, 1, PNG_COLOR_TYPE_PALETTE, 2, false, px, pal, 4, trns ? alpha : NULL};
        size_t len;
        unsigned char *buf = make_png(&s, &len);
        cnn_image img = decode_ok(buf, len);
        assert_int_equal(img.pixels[0], 0);
        assert_int_equal(img.pixels[1], luma(255, 0, 0));
        assert_int_equal(img.pixels[2], luma(10, 200, 30));
        assert_int_equal(img.pixels[3], 255);
        cnn_image_free(&img);
        free(buf);
    }
}

static void png_rgb_should_become_grey_as_pillow_does(void **state) {
    (void)state;
    char path[512], err[512] = "";
    snprintf(path, sizeof path, "%s/data_luma.safetensors", CNNKIT_FIXTURES);
    cnn_st_file *st;
    if (cnn_st_read(path, &st, err, sizeof err) != CNN_OK) fail_msg("%s", err);
    const cnn_st_entry *rgb = cnn_st_find(st, "rgb"), *l = cnn_st_find(st, "l");
    assert_true(rgb && l && rgb->f32 && l->f32 && rgb->numel == 3 * l->numel);
    size_t n = l->numel;
    unsigned char *px = malloc(3 * n);
    assert_non_null(px);
    for (size_t i = 0; i < 3 * n; i++)
        px[i] = (unsigned char)rgb->f32[i];
    png_spec s = {(int)n, 1, PNG_COLOR_TYPE_RGB, 8, false, px, NULL, 0, NULL};
    size_t len;
    unsigned char *buf = make_png(&s, &len);
    cnn_image img = decode_ok(buf, len);
    size_t ndiff = 0;
    for (size_t i = 0; i < n; i++)
        ndiff += img.pixels[i] != (uint8_t)l->f32[i];
    print_message("luma of %zu colours: %zu differ from Pillow %s's convert('L')\n", n, ndiff,
                  cnn_st_metadata(st, "pillow"));
    assert_int_equal(ndiff, 0);
    cnn_image_free(&img);
    free(buf);
    free(px);
    cnn_st_free(st);
}

static void patch_crc(unsigned char *chunk_len_pos) {
    uint32_t n = (uint32_t)chunk_len_pos[0] << 24 | (uint32_t)chunk_len_pos[1] << 16 |
                 (uint32_t)chunk_len_pos[2] << 8 | chunk_len_pos[3];
    uLong crc = crc32(0, chunk_len_pos + 4, n + 4);
    unsigned char *c = chunk_len_pos + 8 + n;
    for (int k = 0; k < 4; k++)
        c[k] = (unsigned char)(crc >> (24 - 8 * k));
}

static unsigned char *small_rgb_png(size_t *len) {
    unsigned char px[6 * 5 * 3];
    for (size_t i = 0; i < sizeof px; i++)
        px[i] = (unsigned char)(i * 7);
    png_spec s = {6, 5, PNG_COLOR_TYPE_RGB, 8, false, px, NULL, 0, NULL};
    return make_png(&s, len);
}

static void png_corrupt_files_should_fail_cleanly(void **state) {
    (void)state;
    size_t len;
    unsigned char *good = small_rgb_png(&len);
    unsigned char *b = malloc(len);
    assert_non_null(b);

    /* Every truncation. */
    for (size_t n = 8; n < len; n++) {
        cnn_image img;
        char err[512];
        cnn_status s = cnn_image_decode(good, n, "bad.img", &img, err, sizeof err);
        if (s == CNN_OK) fail_msg("a PNG cut to %zu of %zu bytes was accepted", n, len);
        assert_null(img.pixels);
    }
    reject(good, len - 20, CNN_STATUS_FORMAT, "PNG: ");

    /* A bad CRC on IHDR (bytes 8..32: length, type, 13 bytes, CRC). */
    memcpy(b, good, len);
    b[29] ^= 0xFF;
    reject(b, len, CNN_STATUS_FORMAT, "IHDR: CRC error");

    /* Absurd and zero dimensions, with a valid CRC. */
    memcpy(b, good, len);
    b[16] = 0x00, b[17] = 0x01, b[18] = 0x86, b[19] = 0xA0; /* width 100000 */
    patch_crc(b + 8);
    reject(b, len, CNN_STATUS_UNSUPPORTED, "exceeds user limit");
    b[16] = 0x7F, b[17] = 0xFF, b[18] = 0xFF, b[19] = 0xFF;
    b[20] = 0x7F, b[21] = 0xFF, b[22] = 0xFF, b[23] = 0xFF;
    patch_crc(b + 8);
    reject(b, len, CNN_STATUS_UNSUPPORTED, "exceeds user limit");
    memcpy(b, good, len);
    b[16] = b[17] = b[18] = b[19] = 0;
    patch_crc(b + 8);
    reject(b, len, CNN_STATUS_FORMAT, "PNG: ");
    /* Bigger than the pixels that follow: the data runs out. */
    memcpy(b, good, len);
    b[19] = 60;
    patch_crc(b + 8);
    reject(b, len, CNN_STATUS_FORMAT, "PNG: ");

    /* Every byte flipped in turn, and every byte zeroed. */
    for (size_t i = 0; i < len; i++) {
        memcpy(b, good, len);
        b[i] ^= 0xFF;
        decode_anything(b, len);
        b[i] = 0;
        decode_anything(b, len);
    }
    free(b);
    free(good);
}

/* ---- PGM ----------------------------------------------------------------- */

static void pgm_binary_and_plain_should_read(void **state) {
    (void)state;
    static const unsigned char p5[] = "P5\n# made by hand\n3 2\n255\n\x00\x10\x20\x30\x40\xff";
    cnn_image img = decode_ok(p5, sizeof p5 - 1);
    assert_int_equal(img.width, 3);
    assert_int_equal(img.height, 2);
    assert_memory_equal(img.pixels, ((uint8_t[]){0, 0x10, 0x20, 0x30, 0x40, 0xff}), 6);
    cnn_image_free(&img);

    static const char p2[] = "P2 # plain\n2 # width\n2\n15\n0 15\n# a comment between rows\n7 8\n";
    img = decode_ok((const unsigned char *)p2, strlen(p2));
    assert_memory_equal(img.pixels, ((uint8_t[]){0, 255, 119, 136}), 4); /* v * 255 / 15 */
    cnn_image_free(&img);

    /* 16-bit samples, big-endian. */
    static const unsigned char p16[] = "P5 2 1 65535\n\xff\xff\x80\x00";
    img = decode_ok(p16, sizeof p16 - 1);
    assert_memory_equal(img.pixels, ((uint8_t[]){255, 128}), 2);
    cnn_image_free(&img);
    static const unsigned char p1000[] = "P5 2 1 1000\n\x03\xe8\x01\xf4";
    img = decode_ok(p1000, sizeof p1000 - 1);
    assert_memory_equal(img.pixels, ((uint8_t[]){255, 128}), 2); /* 500 * 255 / 1000 = 127.5 */
    cnn_image_free(&img);
}

static void pgm_bad_headers_and_short_data_should_fail(void **state) {
    (void)state;
    const struct {
        const char *text;
        cnn_status status;
        const char *phrase;
    } cases[] = {
        {"P5\n", CNN_STATUS_FORMAT, "PGM header: expected width, height and maxval"},
        {"P5 3 2\n", CNN_STATUS_FORMAT, "PGM header"},
        {"P5 -3 2 255\n", CNN_STATUS_FORMAT, "PGM header"},
        {"P5 3x 2 255\n", CNN_STATUS_FORMAT, "PGM header"},
        {"P55 3 255\n", CNN_STATUS_FORMAT, "PGM header"},
        {"P5 0 2 255\n", CNN_STATUS_FORMAT, "0x2 with maxval 255"},
        {"P5 3 2 0\n", CNN_STATUS_FORMAT, "maxval in [1, 65535]"},
        {"P5 3 2 70000\n", CNN_STATUS_FORMAT, "maxval in [1, 65535]"},
        {"P5 3 2 99999999999999999999\n", CNN_STATUS_FORMAT, "PGM header"},
        {"P5 100000 2 255\n", CNN_STATUS_UNSUPPORTED, "cnnkit reads at most 16384x16384"},
        {"P5 16385 16385 255\n", CNN_STATUS_UNSUPPORTED, "at most"},
        {"P5 3 2 255\nabc", CNN_STATUS_FORMAT, "PGM data: ends after 3 of 6 pixels"},
        {"P5 3 2 255", CNN_STATUS_FORMAT, "PGM data: ends after 0 of 6 pixels"},
        {"P5 2 2 65535\n\0\0\0\0\0", CNN_STATUS_FORMAT, "PGM data: ends after 2 of 4 pixels"},
        {"P5 2 1 1000\n\x03\xe9\x01\x01", CNN_STATUS_FORMAT, "pixel 0 is 1001, above maxval 1000"},
        {"P2 2 2 255\n1 2 3", CNN_STATUS_FORMAT, "PGM data: ends after 3 of 4 pixels"},
        {"P2 2 2 15\n1 2 16 4", CNN_STATUS_FORMAT, "pixel 2 of 4 is not a number in [0, maxval]"},
        {"P2 2 2 15\n1 2 x 4", CNN_STATUS_FORMAT, "pixel 2 of 4 is not a number"},
        {"P6 2 2 255\n", CNN_STATUS_FORMAT, "not a PNG or PGM image"},
        {"hello", CNN_STATUS_FORMAT, "not a PNG or PGM image"},
        {"", CNN_STATUS_FORMAT, "not a PNG or PGM image"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t n = strlen(cases[i].text);
        if (strstr(cases[i].text, "65535\n")) n += 5; /* the embedded zeros */
        reject((const unsigned char *)cases[i].text, n, cases[i].status, cases[i].phrase);
    }
    /* Every truncation of a good file. */
    static const char p2[] = "P2\n3 2\n255\n1 2 3\n4 5 6\n";
    for (size_t n = 0; n < sizeof p2 - 3; n++) {
        cnn_image img;
        char err[256];
        if (cnn_image_decode((const unsigned char *)p2, n, "x", &img, err, sizeof err) == CNN_OK)
            fail_msg("a PGM cut to %zu bytes was accepted", n);
    }
}

/* ---- files and model inputs ------------------------------------------------ */

static void image_read_should_read_a_file_and_name_it_in_errors(void **state) {
    (void)state;
    const char *tmp = getenv("TMPDIR");
    char dir[256], path[300];
    snprintf(dir, sizeof dir, "%s/cnnkit-img-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/a.pgm", dir);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fputs("P2 1 1 255 77\n", f);
    fclose(f);
    cnn_image img;
    char err[512] = "";
    if (cnn_image_read(path, &img, err, sizeof err) != CNN_OK) fail_msg("%s", err);
    assert_int_equal(img.pixels[0], 77);
    cnn_image_free(&img);
    f = fopen(path, "wb");
    assert_non_null(f);
    fputs("GIF89a", f);
    fclose(f);
    assert_int_equal(cnn_image_read(path, &img, err, sizeof err), CNN_STATUS_FORMAT);
    assert_true(strncmp(err, path, strlen(path)) == 0);
    unlink(path);
    assert_int_equal(cnn_image_read(path, &img, err, sizeof err), CNN_STATUS_IO);
    assert_null(img.pixels);
    rmdir(dir);
}

static void image_to_input_should_scale_invert_and_resize(void **state) {
    (void)state;
    uint8_t px[4 * 3];
    for (int i = 0; i < 12; i++)
        px[i] = (uint8_t)(i * 20);
    cnn_image img = {4, 3, px};
    float same[12], inv[12];
    assert_int_equal(cnn_image_to_input(&img, 3, 4, false, same), CNN_OK);
    assert_int_equal(cnn_image_to_input(&img, 3, 4, true, inv), CNN_OK);
    for (int i = 0; i < 12; i++) {
        assert_true(same[i] == (float)px[i] / 255.0f);
        assert_true(inv[i] == (float)(255 - px[i]) / 255.0f);
    }
    float big[7 * 9], want[7 * 9];
    assert_int_equal(cnn_image_to_input(&img, 7, 9, false, big), CNN_OK);
    assert_int_equal(cnn_resize_bilinear(same, 1, 3, 4, want, 7, 9), CNN_OK);
    assert_memory_equal(big, want, sizeof big);
    assert_int_equal(cnn_image_to_input(&img, 0, 9, false, big), CNN_STATUS_INVALID_ARGUMENT);
    cnn_image empty = {0};
    assert_int_equal(cnn_image_to_input(&empty, 7, 9, false, big), CNN_STATUS_INVALID_ARGUMENT);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(png_grey_should_read_as_is),
        cmocka_unit_test(png_low_bit_depth_grey_should_expand_to_8_bits),
        cmocka_unit_test(png_16_bit_should_keep_the_high_byte),
        cmocka_unit_test(png_alpha_should_be_ignored),
        cmocka_unit_test(png_palette_should_read_through_its_colours),
        cmocka_unit_test(png_rgb_should_become_grey_as_pillow_does),
        cmocka_unit_test(png_corrupt_files_should_fail_cleanly),
        cmocka_unit_test(pgm_binary_and_plain_should_read),
        cmocka_unit_test(pgm_bad_headers_and_short_data_should_fail),
        cmocka_unit_test(image_read_should_read_a_file_and_name_it_in_errors),
        cmocka_unit_test(image_to_input_should_scale_invert_and_resize),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
