/* image_png.c - PNG to 8-bit grey through libpng, from memory.
 *
 * libpng reports errors by longjmp. Everything that must survive one lives
 * in a struct reached through a pointer (never in locals of the function
 * that calls setjmp), so nothing is clobbered and everything is freed on
 * every path. Warnings are dropped: the library never prints. */
#include <png.h>
#include <stdlib.h>
#include <string.h>

#include "image_impl.h"
#include "util.h"

typedef struct png_job {
    const unsigned char *buf;
    size_t len, pos;
    char msg[200];
    char warning[200]; /* the last one: IHDR's details come as warnings */
    png_structp png;
    png_infop info;
    unsigned char *raw; /* the decoded rows */
    png_bytep *rows;
    uint8_t *grey;
    png_uint_32 width, height;
    int channels;
} png_job;

bool cnn_is_png(const unsigned char *buf, size_t len) {
    return len >= 8 && png_sig_cmp(buf, 0, 8) == 0;
}

static void on_error(png_structp png, png_const_charp msg) {
    png_job *job = png_get_error_ptr(png);
    snprintf(job->msg, sizeof job->msg, "%s", msg);
    png_longjmp(png, 1);
}

static void on_warning(png_structp png, png_const_charp msg) {
    png_job *job = png_get_error_ptr(png);
    snprintf(job->warning, sizeof job->warning, "%s", msg);
}

static void on_read(png_structp png, png_bytep data, size_t n) {
    png_job *job = png_get_io_ptr(png);
    if (n > job->len - job->pos) png_error(png, "file ends early (truncated)");
    memcpy(data, job->buf + job->pos, n);
    job->pos += n;
}

/* Everything libpng may interrupt; false after a libpng error (job->msg). */
static bool decode(png_job *job) {
    if (setjmp(png_jmpbuf(job->png))) return false;
    png_set_read_fn(job->png, job, on_read);
    png_set_user_limits(job->png, CNN_IMAGE_MAX_SIDE, CNN_IMAGE_MAX_SIDE);
    png_read_info(job->png, job->info);
    int depth = png_get_bit_depth(job->png, job->info);
    int color = png_get_color_type(job->png, job->info);
    if (depth == 16) png_set_strip_16(job->png);
    if (color == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(job->png);
    if (color == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(job->png);
    png_set_interlace_handling(job->png);
    png_read_update_info(job->png, job->info);
    job->width = png_get_image_width(job->png, job->info);
    job->height = png_get_image_height(job->png, job->info);
    job->channels = png_get_channels(job->png, job->info);
    size_t rowbytes = png_get_rowbytes(job->png, job->info), total;
    if (job->channels < 1 || job->channels > 4 || rowbytes < (size_t)job->width * job->channels)
        png_error(job->png, "unexpected row layout");
    if (!cnn_mul_size(rowbytes, job->height, &total)) png_error(job->png, "image too large");
    job->raw = malloc(total ? total : 1);
    job->rows = malloc((size_t)job->height * sizeof *job->rows);
    job->grey = malloc((size_t)job->width * job->height);
    if (!job->raw || !job->rows || !job->grey) png_error(job->png, "out of memory");
    for (png_uint_32 y = 0; y < job->height; y++)
        job->rows[y] = job->raw + (size_t)y * rowbytes;
    png_read_image(job->png, job->rows);
    png_read_end(job->png, NULL);
    return true;
}

static void to_grey(png_job *job) {
    for (png_uint_32 y = 0; y < job->height; y++) {
        const unsigned char *p = job->rows[y];
        uint8_t *out = job->grey + (size_t)y * job->width;
        for (png_uint_32 x = 0; x < job->width; x++, p += job->channels)
            out[x] = job->channels >= 3 ? cnn_luma(p[0], p[1], p[2]) : p[0];
    }
}

cnn_status cnn_png_decode(const unsigned char *buf, size_t len, const char *name, cnn_image *out,
                          char *err, size_t errlen) {
    png_job *job = calloc(1, sizeof *job);
    if (!job) return cnn_fail(CNN_STATUS_NO_MEMORY, err, errlen, "%s: out of memory", name);
    job->buf = buf;
    job->len = len;
    job->png = png_create_read_struct(PNG_LIBPNG_VER_STRING, job, on_error, on_warning);
    if (job->png) job->info = png_create_info_struct(job->png);
    cnn_status s = CNN_OK;
    if (!job->png || !job->info)
        s = cnn_fail(CNN_STATUS_NO_MEMORY, err, errlen, "%s: out of memory", name);
    else if (!decode(job)) {
        /* libpng lists what is wrong with IHDR as warnings, then fails with
         * "Invalid IHDR data"; the last warning is the useful part. */
        const char *why =
            strcmp(job->msg, "Invalid IHDR data") == 0 && job->warning[0] ? job->warning : job->msg;
        bool big = strstr(why, "exceeds user limit") != NULL;
        bool oom = strcmp(why, "out of memory") == 0;
        s = cnn_fail(big   ? CNN_STATUS_UNSUPPORTED
                     : oom ? CNN_STATUS_NO_MEMORY
                           : CNN_STATUS_FORMAT,
                     err, errlen, "%s: PNG: %s%s", name, why,
                     big ? " (cnnkit reads at most 16384x16384)" : "");
    } else {
        to_grey(job);
        out->width = job->width;
        out->height = job->height;
        out->pixels = job->grey;
        job->grey = NULL;
    }
    png_destroy_read_struct(&job->png, job->info ? &job->info : NULL, NULL);
    free(job->raw);
    free(job->rows);
    free(job->grey);
    free(job);
    return s;
}
