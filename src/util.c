/* util.c - errors, strings, sizes, Python float text and atomic file output. */
#define _POSIX_C_SOURCE 200809L
#include "util.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void cnn_assert_fail(const char *file, int line, const char *expr) {
    fprintf(stderr, "cnnkit: %s:%d: assertion failed: %s\n", file, line, expr);
    abort();
}

const char *cnn_status_str(cnn_status s) {
    static const char *const names[] = {
        "ok",        "invalid argument", "shape error",      "out of memory",
        "I/O error", "corrupt file",     "weights mismatch", "unsupported",
    };
    _Static_assert(CNN_COUNT_OF(names) == CNN_STATUS_COUNT, "one name per status");
    return (unsigned)s < CNN_STATUS_COUNT ? names[s] : "unknown status";
}

cnn_status cnn_fail(cnn_status status, char *err, size_t errlen, const char *fmt, ...) {
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return status;
}

bool cnn_mul_size(size_t a, size_t b, size_t *out) {
    if (a != 0 && b > SIZE_MAX / a) return false;
    *out = a * b;
    return true;
}

static void sb_reserve(cnn_sb *sb, size_t extra) {
    if (sb->oom) return;
    size_t need = sb->len + extra + 1;
    if (need <= sb->cap) return;
    size_t cap = sb->cap ? sb->cap : 64;
    while (cap < need)
        cap *= 2;
    char *p = realloc(sb->buf, cap);
    if (!p) {
        sb->oom = true;
        return;
    }
    sb->buf = p;
    sb->cap = cap;
}

void cnn_sb_printf(cnn_sb *sb, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        sb->oom = true;
        return;
    }
    sb_reserve(sb, (size_t)n);
    if (sb->oom) return;
    va_start(ap, fmt);
    vsnprintf(sb->buf + sb->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    sb->len += (size_t)n;
}

void cnn_sb_puts(cnn_sb *sb, const char *s) { cnn_sb_printf(sb, "%s", s); }

void cnn_sb_free(cnn_sb *sb) {
    free(sb->buf);
    *sb = (cnn_sb){0};
}

void cnn_format_pyfloat(char *buf, size_t cap, double v) {
    if (isnan(v)) {
        snprintf(buf, cap, "nan");
        return;
    }
    if (isinf(v)) {
        snprintf(buf, cap, v < 0 ? "-inf" : "inf");
        return;
    }
    /* Shortest round-tripping significand, as Python's repr picks it. */
    char tmp[40];
    int prec = 1;
    for (; prec <= 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*e", prec - 1, v);
        if (strtod(tmp, NULL) == v) break;
    }
    /* tmp is "-d.ddde[+-]XX": split into sign, digits and exponent. */
    char digits[24];
    int nd = 0, exp10;
    const char *p = tmp;
    bool neg = *p == '-';
    if (neg) p++;
    for (; *p && *p != 'e'; p++)
        if (*p != '.') digits[nd++] = *p;
    exp10 = atoi(p + 1);
    while (nd > 1 && digits[nd - 1] == '0')
        nd--;
    digits[nd] = 0;

    cnn_sb sb = {0};
    if (neg) cnn_sb_puts(&sb, "-");
    if (exp10 >= -4 && exp10 < 16) {
        /* Positional, as Python's repr does for 1e-4 <= |v| < 1e16. */
        if (exp10 < 0) {
            cnn_sb_puts(&sb, "0.");
            for (int i = 0; i < -exp10 - 1; i++)
                cnn_sb_puts(&sb, "0");
            cnn_sb_puts(&sb, digits);
        } else {
            for (int i = 0; i <= exp10; i++)
                cnn_sb_printf(&sb, "%c", i < nd ? digits[i] : '0');
            cnn_sb_puts(&sb, ".");
            if (nd > exp10 + 1)
                cnn_sb_puts(&sb, digits + exp10 + 1);
            else
                cnn_sb_puts(&sb, "0");
        }
    } else {
        cnn_sb_printf(&sb, "%c", digits[0]);
        if (nd > 1) cnn_sb_printf(&sb, ".%s", digits + 1);
        cnn_sb_printf(&sb, "e%c%02d", exp10 < 0 ? '-' : '+', exp10 < 0 ? -exp10 : exp10);
    }
    snprintf(buf, cap, "%s", sb.oom || !sb.buf ? "?" : sb.buf);
    cnn_sb_free(&sb);
}

cnn_status cnn_afile_open(cnn_afile *af, const char *path, char *err, size_t errlen) {
    *af = (cnn_afile){0};
    size_t n = strlen(path);
    af->path = strdup(path);
    af->tmp = malloc(n + 16);
    if (!af->path || !af->tmp) {
        cnn_afile_abort(af);
        return cnn_fail(CNN_STATUS_NO_MEMORY, err, errlen, "%s: out of memory", path);
    }
    snprintf(af->tmp, n + 16, "%s.tmp.XXXXXX", path);
    int fd = mkstemp(af->tmp);
    if (fd < 0) {
        int e = errno;
        free(af->tmp);
        af->tmp = NULL;
        cnn_afile_abort(af);
        return cnn_fail(CNN_STATUS_IO, err, errlen, "%s: cannot create: %s", path, strerror(e));
    }
    /* mkstemp makes the file private (0600); give it the mode a plain create would. */
    mode_t mask = umask(0);
    umask(mask);
    fchmod(fd, 0666 & ~mask);
    af->f = fdopen(fd, "wb");
    if (!af->f) {
        close(fd);
        cnn_afile_abort(af);
        return cnn_fail(CNN_STATUS_IO, err, errlen, "%s: cannot open: %s", path, strerror(errno));
    }
    return CNN_OK;
}

cnn_status cnn_afile_commit(cnn_afile *af, char *err, size_t errlen) {
    bool ok = !ferror(af->f) && fflush(af->f) == 0 && fsync(fileno(af->f)) == 0;
    int e = errno;
    ok = (fclose(af->f) == 0) && ok;
    af->f = NULL;
    if (ok && rename(af->tmp, af->path) != 0) {
        e = errno;
        ok = false;
    }
    if (!ok) {
        char *path = af->path;
        af->path = NULL;
        cnn_afile_abort(af);
        cnn_status s =
            cnn_fail(CNN_STATUS_IO, err, errlen, "%s: cannot write: %s", path, strerror(e));
        free(path);
        return s;
    }
    free(af->tmp);
    free(af->path);
    *af = (cnn_afile){0};
    return CNN_OK;
}

void cnn_afile_abort(cnn_afile *af) {
    if (af->f) fclose(af->f);
    if (af->tmp) unlink(af->tmp);
    free(af->tmp);
    free(af->path);
    *af = (cnn_afile){0};
}

cnn_status cnn_read_file(const char *path, unsigned char **buf, size_t *len, char *err,
                         size_t errlen) {
    *buf = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return cnn_fail(CNN_STATUS_IO, err, errlen, "%s: %s", path, strerror(errno));
    size_t cap = 1 << 16, n = 0;
    unsigned char *p = malloc(cap);
    while (p) {
        n += fread(p + n, 1, cap - n, f);
        if (n < cap) break;
        unsigned char *q = cap > SIZE_MAX / 2 ? NULL : realloc(p, cap * 2);
        if (!q) {
            free(p);
            p = NULL;
            break;
        }
        p = q;
        cap *= 2;
    }
    bool bad = p && ferror(f);
    int e = errno;
    fclose(f);
    if (!p) return cnn_fail(CNN_STATUS_NO_MEMORY, err, errlen, "%s: out of memory", path);
    if (bad) {
        free(p);
        return cnn_fail(CNN_STATUS_IO, err, errlen, "%s: read error: %s", path, strerror(e));
    }
    *buf = p;
    *len = n;
    return CNN_OK;
}
