/* cnnkit/tensor.h - shapes and float32 tensors.
 *
 * Tensors are dense, row-major float32; image batches are NCHW. Dimensions
 * are int64_t as in PyTorch, element counts are size_t, and every product of
 * dimensions is checked for overflow before anything is allocated.
 */
#ifndef CNNKIT_TENSOR_H
#define CNNKIT_TENSOR_H

#include <stddef.h>
#include <stdint.h>

#include "cnnkit/status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define CNN_MAX_DIMS 6

typedef struct cnn_shape {
    int ndim;
    int64_t dim[CNN_MAX_DIMS];
} cnn_shape;

typedef struct cnn_tensor {
    cnn_shape shape;
    float *data; /* owned: released by cnn_tensor_free */
} cnn_tensor;

/* A shape from up to CNN_MAX_DIMS dimensions: cnn_shape_make(4, (int64_t[]){1, 1, 28, 28}). */
cnn_shape cnn_shape_make(int ndim, const int64_t *dims);

/* Number of elements in *out. Fails with CNN_STATUS_NO_MEMORY when the
 * product overflows size_t, CNN_STATUS_INVALID_ARGUMENT for a negative
 * dimension or an ndim outside [0, CNN_MAX_DIMS]. */
cnn_status cnn_shape_numel(const cnn_shape *s, size_t *out);

/* 1 when both shapes have the same rank and dimensions. */
int cnn_shape_equal(const cnn_shape *a, const cnn_shape *b);

/* Writes "[1, 6, 28, 28]" (PyTorch's list form) into buf, snprintf-style:
 * returns the length the full text needs. */
int cnn_shape_format(char *buf, size_t cap, const cnn_shape *s);

/* Parses "1,1,28,28" (or "1x1x28x28") into *out. Every dimension must be a
 * positive integer. Returns CNN_STATUS_INVALID_ARGUMENT on anything else. */
cnn_status cnn_shape_parse(const char *text, cnn_shape *out);

/* Allocates a zero-filled tensor of the given shape. On failure t->data is NULL. */
cnn_status cnn_tensor_alloc(cnn_tensor *t, const cnn_shape *s);

/* Releases t->data and leaves t empty; NULL and empty tensors are fine. */
void cnn_tensor_free(cnn_tensor *t);

/* Element count of t (0 for an empty tensor). */
size_t cnn_tensor_numel(const cnn_tensor *t);

#ifdef __cplusplus
}
#endif
#endif
