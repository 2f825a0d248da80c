/* stdiff - compares one tensor in each of two safetensors files.
 *
 *   stdiff A.safetensors NAME_A B.safetensors NAME_B TOL
 *
 * Prints "max abs diff = 3.1e-07 over N values (tol 1e-04)" and exits 0
 * when the largest absolute difference is at most TOL, 1 when it is larger,
 * when either tensor holds a NaN, or when a file, a tensor or the shapes do
 * not fit, and 2 on bad usage. Errors go to stderr, one line each.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cnnkit/safetensors.h"

static double value(const cnn_st_entry *e, size_t i) {
    return e->f32 ? (double)e->f32[i] : (double)e->i64[i];
}

static const cnn_st_entry *load(const char *path, const char *name, cnn_st_file **st) {
    char err[512];
    if (cnn_st_read(path, st, err, sizeof err) != CNN_OK) {
        fprintf(stderr, "stdiff: %s\n", err);
        return NULL;
    }
    const cnn_st_entry *e = cnn_st_find(*st, name);
    if (!e) fprintf(stderr, "stdiff: %s: no tensor '%s'\n", path, name);
    return e;
}

/* The shortest %e text that reads back to v ("1e-04", "2.5e-03"). */
static void format_tol(char *buf, size_t cap, double v) {
    for (int prec = 0; prec <= 16; prec++) {
        snprintf(buf, cap, "%.*e", prec, v);
        if (strtod(buf, NULL) == v) return;
    }
}

int main(int argc, char **argv) {
    if (argc != 6) {
        fprintf(stderr, "usage: stdiff A.safetensors NAME_A B.safetensors NAME_B TOL\n");
        return 2;
    }
    char *end;
    errno = 0;
    double tol = strtod(argv[5], &end);
    if (errno || end == argv[5] || *end || !(tol >= 0) || isinf(tol)) {
        fprintf(stderr, "stdiff: TOL must be a non-negative number, not '%s'\n", argv[5]);
        return 2;
    }

    int rc = 1;
    cnn_st_file *sa = NULL, *sb = NULL;
    const cnn_st_entry *a = load(argv[1], argv[2], &sa);
    const cnn_st_entry *b = a ? load(argv[3], argv[4], &sb) : NULL;
    if (!a || !b) goto done;
    if (!cnn_shape_equal(&a->shape, &b->shape)) {
        char sha[160], shb[160];
        cnn_shape_format(sha, sizeof sha, &a->shape);
        cnn_shape_format(shb, sizeof shb, &b->shape);
        fprintf(stderr, "stdiff: shapes differ: %s:%s is %s, %s:%s is %s\n", argv[1], argv[2], sha,
                argv[3], argv[4], shb);
        goto done;
    }

    double maxdiff = 0;
    size_t nan_at = (size_t)-1;
    for (size_t i = 0; i < a->numel; i++) {
        double x = value(a, i), y = value(b, i);
        if (isnan(x) || isnan(y)) {
            nan_at = i;
            break;
        }
        double d = x == y ? 0 : fabs(x - y); /* equal infinities differ by 0 */
        if (d > maxdiff) maxdiff = d;
    }
    char tolbuf[40];
    format_tol(tolbuf, sizeof tolbuf, tol);
    if (nan_at != (size_t)-1) {
        printf("max abs diff = nan over %zu values (tol %s)\n", a->numel, tolbuf);
        fprintf(stderr, "stdiff: NaN at index %zu\n", nan_at);
        goto done;
    }
    printf("max abs diff = %.1e over %zu values (tol %s)\n", maxdiff, a->numel, tolbuf);
    rc = maxdiff <= tol ? 0 : 1;
done:
    cnn_st_free(sa);
    cnn_st_free(sb);
    return rc;
}
