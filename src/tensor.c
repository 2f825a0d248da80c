/* tensor.c - shapes and float32 tensors. */
#include "cnnkit/tensor.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

cnn_shape cnn_shape_make(int ndim, const int64_t *dims) {
    cnn_shape s = {0};
    CNN_ASSERT(ndim >= 0 && ndim <= CNN_MAX_DIMS);
    s.ndim = ndim;
    for (int i = 0; i < ndim; i++)
        s.dim[i] = dims[i];
    return s;
}

cnn_status cnn_shape_numel(const cnn_shape *s, size_t *out) {
    *out = 0;
    if (s->ndim < 0 || s->ndim > CNN_MAX_DIMS) return CNN_STATUS_INVALID_ARGUMENT;
    size_t n = 1;
    for (int i = 0; i < s->ndim; i++) {
        if (s->dim[i] < 0) return CNN_STATUS_INVALID_ARGUMENT;
        if ((uint64_t)s->dim[i] > SIZE_MAX || !cnn_mul_size(n, (size_t)s->dim[i], &n))
            return CNN_STATUS_NO_MEMORY;
    }
    *out = n;
    return CNN_OK;
}

int cnn_shape_equal(const cnn_shape *a, const cnn_shape *b) {
    if (a->ndim != b->ndim) return 0;
    for (int i = 0; i < a->ndim; i++)
        if (a->dim[i] != b->dim[i]) return 0;
    return 1;
}

int cnn_shape_format(char *buf, size_t cap, const cnn_shape *s) {
    cnn_sb sb = {0};
    cnn_sb_puts(&sb, "[");
    for (int i = 0; i < s->ndim; i++)
        cnn_sb_printf(&sb, "%s%lld", i ? ", " : "", (long long)s->dim[i]);
    cnn_sb_puts(&sb, "]");
    int n = sb.oom ? -1 : (int)sb.len;
    if (cap) snprintf(buf, cap, "%s", sb.oom ? "" : sb.buf);
    cnn_sb_free(&sb);
    return n;
}

cnn_status cnn_shape_parse(const char *text, cnn_shape *out) {
    cnn_shape s = {0};
    const char *p = text;
    for (;;) {
        while (isspace((unsigned char)*p))
            p++;
        if (!isdigit((unsigned char)*p)) return CNN_STATUS_INVALID_ARGUMENT;
        errno = 0;
        char *end;
        long long v = strtoll(p, &end, 10);
        if (errno || v <= 0 || s.ndim == CNN_MAX_DIMS) return CNN_STATUS_INVALID_ARGUMENT;
        s.dim[s.ndim++] = v;
        p = end;
        while (isspace((unsigned char)*p))
            p++;
        if (*p == 0) break;
        if (*p != ',' && *p != 'x') return CNN_STATUS_INVALID_ARGUMENT;
        p++;
    }
    size_t n;
    if (cnn_shape_numel(&s, &n) != CNN_OK) return CNN_STATUS_INVALID_ARGUMENT;
    *out = s;
    return CNN_OK;
}

cnn_status cnn_tensor_alloc(cnn_tensor *t, const cnn_shape *s) {
    t->data = NULL;
    t->shape = *s;
    size_t n, bytes;
    cnn_status st = cnn_shape_numel(s, &n);
    if (st != CNN_OK) return st;
    if (!cnn_mul_size(n ? n : 1, sizeof(float), &bytes)) return CNN_STATUS_NO_MEMORY;
    t->data = calloc(1, bytes);
    return t->data ? CNN_OK : CNN_STATUS_NO_MEMORY;
}

void cnn_tensor_free(cnn_tensor *t) {
    if (!t) return;
    free(t->data);
    t->data = NULL;
    t->shape = (cnn_shape){0};
}

size_t cnn_tensor_numel(const cnn_tensor *t) {
    size_t n = 0;
    if (t->data) cnn_shape_numel(&t->shape, &n);
    return n;
}
