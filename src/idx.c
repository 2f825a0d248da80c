/* idx.c - reading IDX files (LeCun's MNIST format), plain or gzip-compressed.
 *
 * Everything goes through zlib's gzread, which passes plain files through
 * unchanged. The file must hold exactly what its header announces: after the
 * data one more read must find the end, which is also what makes zlib check
 * the gzip trailer's CRC and length. */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "cnnkit/data.h"
#include "util.h"

#define IDX_TYPE_UBYTE  0x08
#define IDX_FIRST_CHUNK ((size_t)1 << 20) /* memory grows from here as data arrives */
#define IDX_MAX_READ    ((size_t)1 << 30) /* gzread counts in unsigned int */

static const char *type_name(int type) {
    switch (type) {
    case 0x08: return "unsigned byte";
    case 0x09: return "signed byte";
    case 0x0B: return "16-bit integer";
    case 0x0C: return "32-bit integer";
    case 0x0D: return "float";
    case 0x0E: return "double";
    default: return NULL;
    }
}

/* Why a read came up short: a zlib or system error, or simply the end. */
static cnn_status short_read(gzFile gz, const char *path, const char *place, size_t got,
                             size_t want, char *err, size_t errlen) {
    int zerr = Z_OK;
    const char *msg = gzerror(gz, &zerr);
    if (zerr == Z_ERRNO)
        return cnn_fail(CNN_STATUS_IO, err, errlen, "%s: %s: read error: %s", path, place,
                        strerror(errno));
    if (zerr == Z_MEM_ERROR)
        return cnn_fail(CNN_STATUS_NO_MEMORY, err, errlen, "%s: %s: out of memory", path, place);
    if (zerr != Z_OK) {
        /* zlib decompresses ahead of what was asked for, so where a corrupt
         * stream shows up says nothing about where it is; zlib's text starts
         * with the path, which the error names already. */
        size_t n = strlen(path);
        if (strncmp(msg, path, n) == 0 && strncmp(msg + n, ": ", 2) == 0) msg += n + 2;
        return cnn_fail(CNN_STATUS_FORMAT, err, errlen, "%s: gzip stream is corrupt: %s", path,
                        msg);
    }
    return cnn_fail(CNN_STATUS_FORMAT, err, errlen, "%s: %s: file ends after %zu of %zu bytes",
                    path, place, got, want);
}

/* Reads up to n bytes into buf; *got is how many arrived. false on a zlib error. */
static bool read_some(gzFile gz, unsigned char *buf, size_t n, size_t *got) {
    *got = 0;
    while (*got < n) {
        size_t chunk = n - *got < IDX_MAX_READ ? n - *got : IDX_MAX_READ;
        int r = gzread(gz, buf + *got, (unsigned)chunk);
        if (r < 0) return false;
        if (r == 0) break;
        *got += (size_t)r;
    }
    return true;
}

static cnn_status read_header(gzFile gz, const char *path, cnn_idx *out, size_t *total, char *err,
                              size_t errlen) {
    unsigned char magic[4];
    size_t got;
    if (!read_some(gz, magic, 4, &got) || got < 4)
        return short_read(gz, path, "header", got, 4, err, errlen);
    unsigned long m = (unsigned long)magic[0] << 24 | (unsigned long)magic[1] << 16 |
                      (unsigned long)magic[2] << 8 | magic[3];
    const char *tname = type_name(magic[2]);
    if (magic[0] != 0 || magic[1] != 0 || !tname)
        return cnn_fail(CNN_STATUS_FORMAT, err, errlen,
                        "%s: header: magic 0x%08lX is not an IDX file", path, m);
    if (magic[2] != IDX_TYPE_UBYTE)
        return cnn_fail(
            CNN_STATUS_UNSUPPORTED, err, errlen,
            "%s: header: magic 0x%08lX is an IDX file of type 0x%02X (%s); cnnkit reads "
            "only 0x08 (unsigned byte)",
            path, m, magic[2], tname);
    int ndim = magic[3];
    if (ndim == 0)
        return cnn_fail(CNN_STATUS_FORMAT, err, errlen, "%s: header: the file has no dimensions",
                        path);
    if (ndim > CNN_IDX_MAX_DIMS)
        return cnn_fail(CNN_STATUS_UNSUPPORTED, err, errlen,
                        "%s: header: %d dimensions, cnnkit reads at most %d", path, ndim,
                        CNN_IDX_MAX_DIMS);
    unsigned char dims[4 * CNN_IDX_MAX_DIMS];
    size_t want = 4 * (size_t)ndim;
    if (!read_some(gz, dims, want, &got) || got < want)
        return short_read(gz, path, "header", 4 + got, 4 + want, err, errlen);
    size_t n = 1;
    for (int i = 0; i < ndim; i++) {
        const unsigned char *d = dims + 4 * i;
        out->dim[i] = (uint32_t)d[0] << 24 | (uint32_t)d[1] << 16 | (uint32_t)d[2] << 8 | d[3];
        if (!cnn_mul_size(n, out->dim[i], &n))
            return cnn_fail(CNN_STATUS_FORMAT, err, errlen,
                            "%s: header: the dimensions' product overflows", path);
    }
    out->ndim = ndim;
    *total = n;
    return CNN_OK;
}

/* Reads exactly total data bytes, growing the buffer only as they arrive. */
static cnn_status read_data(gzFile gz, const char *path, size_t total, cnn_idx *out, char *err,
                            size_t errlen) {
    size_t cap = total < IDX_FIRST_CHUNK ? total : IDX_FIRST_CHUNK, have = 0;
    unsigned char *buf = malloc(cap ? cap : 1);
    if (!buf) return cnn_fail(CNN_STATUS_NO_MEMORY, err, errlen, "%s: data: out of memory", path);
    while (have < total) {
        if (have == cap) {
            size_t next = cap > total / 2 ? total : cap * 2;
            unsigned char *p = realloc(buf, next);
            if (!p) {
                free(buf);
                return cnn_fail(CNN_STATUS_NO_MEMORY, err, errlen,
                                "%s: data: out of memory for %zu bytes", path, next);
            }
            buf = p;
            cap = next;
        }
        size_t got;
        bool ok = read_some(gz, buf + have, cap - have, &got);
        have += got;
        if (!ok || have < cap) {
            free(buf);
            return short_read(gz, path, "data", have, total, err, errlen);
        }
    }
    unsigned char extra;
    int r = gzread(gz, &extra, 1);
    if (r != 0) {
        free(buf);
        if (r > 0)
            return cnn_fail(CNN_STATUS_FORMAT, err, errlen,
                            "%s: data: more bytes follow the %zu the header announces", path,
                            total);
        return short_read(gz, path, "data", have, total, err, errlen);
    }
    int zerr = Z_OK;
    gzerror(gz, &zerr);
    if (zerr != Z_OK) {
        free(buf);
        return short_read(gz, path, "data", have, total, err, errlen);
    }
    out->data = buf;
    out->size = total;
    return CNN_OK;
}

cnn_status cnn_idx_read(const char *path, cnn_idx *out, char *err, size_t errlen) {
    CNN_ASSERT(path && out);
    memset(out, 0, sizeof *out);
    errno = 0;
    gzFile gz = gzopen(path, "rb");
    if (!gz) {
        if (errno == 0)
            return cnn_fail(CNN_STATUS_NO_MEMORY, err, errlen, "%s: out of memory", path);
        return cnn_fail(CNN_STATUS_IO, err, errlen, "%s: %s", path, strerror(errno));
    }
    gzbuffer(gz, 1 << 18);
    size_t total = 0;
    cnn_status s = read_header(gz, path, out, &total, err, errlen);
    if (s == CNN_OK) s = read_data(gz, path, total, out, err, errlen);
    gzclose_r(gz);
    if (s != CNN_OK) memset(out, 0, sizeof *out);
    return s;
}

void cnn_idx_free(cnn_idx *idx) {
    if (!idx) return;
    free(idx->data);
    memset(idx, 0, sizeof *idx);
}
