/* util.h - private helpers shared by the library's files: assertions, error
 * texts, a growable string, overflow-checked sizes and atomic file output.
 * Never installed. */
#ifndef CNNKIT_UTIL_H
#define CNNKIT_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "cnnkit/status.h"

/* Programmer errors only (a broken invariant inside cnnkit), never bad input. */
#define CNN_ASSERT(x)                                                                              \
    do {                                                                                           \
        if (!(x)) cnn_assert_fail(__FILE__, __LINE__, #x);                                         \
    } while (0)
_Noreturn void cnn_assert_fail(const char *file, int line, const char *expr);

#define CNN_COUNT_OF(a) (sizeof(a) / sizeof((a)[0]))

/* snprintf into err (which may be NULL), then return status. */
cnn_status cnn_fail(cnn_status status, char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* a*b into *out; false when it overflows. */
bool cnn_mul_size(size_t a, size_t b, size_t *out);

/* A growable NUL-terminated string. A failed allocation sets oom and makes
 * later appends no-ops, so callers check once at the end. */
typedef struct cnn_sb {
    char *buf;
    size_t len, cap;
    bool oom;
} cnn_sb;

void cnn_sb_printf(cnn_sb *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void cnn_sb_puts(cnn_sb *sb, const char *s);
void cnn_sb_free(cnn_sb *sb);

/* Python's repr() of a float: the shortest text that reads back to v, in
 * Python's layout (0.0001, 1e-05, 2.0, 0.5). */
void cnn_format_pyfloat(char *buf, size_t cap, double v);

/* A file written atomically: a temporary file in the target's folder that
 * cnn_afile_commit flushes, syncs and renames over the target, and
 * cnn_afile_abort removes. */
typedef struct cnn_afile {
    FILE *f;
    char *tmp;
    char *path;
} cnn_afile;

cnn_status cnn_afile_open(cnn_afile *af, const char *path, char *err, size_t errlen);
cnn_status cnn_afile_commit(cnn_afile *af, char *err, size_t errlen);
void cnn_afile_abort(cnn_afile *af);

/* Reads a whole file into a malloc'd buffer. */
cnn_status cnn_read_file(const char *path, unsigned char **buf, size_t *len, char *err,
                         size_t errlen);

#endif
