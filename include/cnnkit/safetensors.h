/* cnnkit/safetensors.h - reading and writing safetensors files.
 *
 * The format (https://github.com/huggingface/safetensors): an 8-byte
 * little-endian header length N, N bytes of JSON mapping each tensor name to
 * {"dtype", "shape", "data_offsets": [begin, end]} plus an optional
 * "__metadata__" object of string values, then the raw little-endian data.
 *
 * Reading checks everything (header length against the file, JSON syntax,
 * dtype names, shapes, offsets inside the data, byte counts equal to
 * numel * dtype size, no overlapping tensors) and converts F16, BF16 and F64
 * to float32. I64 tensors (BatchNorm's num_batches_tracked) are kept as
 * int64. Any other dtype is reported as unsupported. A failed read fills
 * err with one line: "FILE: place: problem".
 *
 * Writing is atomic: the file appears complete under its name or not at all.
 *
 *   cnn_st_file *st = cnn_st_new();
 *   cnn_st_add_f32(st, "output", &shape, data);   // data is borrowed
 *   cnn_status s = cnn_st_write(st, "y.safetensors", err, sizeof err);
 *   cnn_st_free(st);
 */
#ifndef CNNKIT_SAFETENSORS_H
#define CNNKIT_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "cnnkit/status.h"
#include "cnnkit/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum cnn_dtype {
    CNN_DTYPE_F32,
    CNN_DTYPE_F16,
    CNN_DTYPE_BF16,
    CNN_DTYPE_F64,
    CNN_DTYPE_I64,
    CNN_DTYPE_COUNT
} cnn_dtype;

/* The safetensors name of a dtype ("F32"). */
const char *cnn_dtype_name(cnn_dtype d);

typedef struct cnn_st_entry {
    const char *name;
    cnn_dtype dtype; /* as stored in the file */
    cnn_shape shape;
    size_t numel;
    const float *f32;   /* float dtypes, converted to float32; NULL for I64 */
    const int64_t *i64; /* I64 only; NULL otherwise */
} cnn_st_entry;

typedef struct cnn_st_file cnn_st_file;

/* Reads and validates a whole file. On success *out owns all data. */
cnn_status cnn_st_read(const char *path, cnn_st_file **out, char *err, size_t errlen);

/* Same, from a buffer already in memory; name is used in error texts. */
cnn_status cnn_st_parse(const unsigned char *buf, size_t len, const char *name, cnn_st_file **out,
                        char *err, size_t errlen);

int cnn_st_count(const cnn_st_file *st);
/* The i-th tensor in the header's order, or NULL when i is out of range. */
const cnn_st_entry *cnn_st_get(const cnn_st_file *st, int i);
/* The tensor called name, or NULL. */
const cnn_st_entry *cnn_st_find(const cnn_st_file *st, const char *name);
/* A "__metadata__" value, or NULL. */
const char *cnn_st_metadata(const cnn_st_file *st, const char *key);

/* An empty file to fill and write. NULL when out of memory. */
cnn_st_file *cnn_st_new(void);

/* Adds a float32 tensor. The data pointer is borrowed: it must stay valid
 * until cnn_st_write returns. The name is copied. Duplicate names are
 * rejected with CNN_STATUS_INVALID_ARGUMENT. */
cnn_status cnn_st_add_f32(cnn_st_file *st, const char *name, const cnn_shape *shape,
                          const float *data);
/* Adds an int64 tensor (borrowed, as above). */
cnn_status cnn_st_add_i64(cnn_st_file *st, const char *name, const cnn_shape *shape,
                          const int64_t *data);
/* Sets a "__metadata__" string (both copied). */
cnn_status cnn_st_set_metadata(cnn_st_file *st, const char *key, const char *value);

/* Writes the tensors in the order added, atomically (temporary file in the
 * same folder, flushed and synced, then renamed over path). */
cnn_status cnn_st_write(const cnn_st_file *st, const char *path, char *err, size_t errlen);

void cnn_st_free(cnn_st_file *st);

#ifdef __cplusplus
}
#endif
#endif
