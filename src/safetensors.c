/* safetensors.c - reading (strictly validated) and writing safetensors files.
 *
 * Reading: the whole file is loaded, the header checked byte by byte (UTF-8,
 * no raw control characters) and parsed with cJSON, every entry validated,
 * the data section checked to be covered exactly once, and only then is
 * anything converted. Writing builds the header with cJSON and writes
 * through cnn_afile_*, so the target appears complete or not at all.
 */
#include "cnnkit/safetensors.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

/* The Python library refuses headers above 100 MB; so do we. */
#define ST_MAX_HEADER 100000000u
/* JSON numbers are doubles in cJSON: from 2^53 on, integers may have been rounded. */
#define ST_JSON_INT_LIMIT 9007199254740992.0 /* 2^53 */

typedef struct st_item {
    cnn_st_entry e;
    char *name;  /* owned; e.name points here */
    void *owned; /* converted data owned by the file (reads); NULL for borrowed data */
} st_item;

typedef struct st_meta {
    char *key, *value;
} st_meta;

struct cnn_st_file {
    st_item *items;
    int count, cap;
    st_meta *meta;
    int nmeta, metacap;
};

static const char *const dtype_names[] = {"F32", "F16", "BF16", "F64", "I64"};
static const size_t dtype_sizes[] = {4, 2, 2, 8, 8};
_Static_assert(CNN_COUNT_OF(dtype_names) == CNN_DTYPE_COUNT, "one name per dtype");
_Static_assert(CNN_COUNT_OF(dtype_sizes) == CNN_DTYPE_COUNT, "one size per dtype");

const char *cnn_dtype_name(cnn_dtype d) {
    return (unsigned)d < CNN_DTYPE_COUNT ? dtype_names[d] : "UNKNOWN";
}

/* ---- small helpers ------------------------------------------------------ */

static char *dup_str(const char *s) {
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p) memcpy(p, s, n);
    return p;
}

/* Offset of the first invalid UTF-8 byte in s[0..n), or n when it is valid.
 * Rejects overlong forms, surrogates and code points above U+10FFFF. */
static size_t utf8_check(const unsigned char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        size_t len;
        unsigned min, cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xe0) == 0xc0) {
            len = 2, min = 0x80, cp = c & 0x1f;
        } else if ((c & 0xf0) == 0xe0) {
            len = 3, min = 0x800, cp = c & 0x0f;
        } else if ((c & 0xf8) == 0xf0) {
            len = 4, min = 0x10000, cp = c & 0x07;
        } else {
            return i;
        }
        if (n - i < len) return i;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xc0) != 0x80) return i;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return i;
        i += len;
    }
    return n;
}

static bool utf8_ok(const char *s) {
    size_t n = strlen(s);
    return utf8_check((const unsigned char *)s, n) == n;
}

/* A name made safe for a one-line error: control characters become '?', and
 * long names are cut with "...". */
static const char *show(char *buf, size_t cap, const char *s) {
    size_t n = 0, i = 0;
    for (; s[i] && n + 1 < cap; i++) {
        unsigned char c = (unsigned char)s[i];
        buf[n++] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
    }
    buf[n] = 0;
    if (s[i] && cap >= 4) memcpy(buf + cap - 4, "...", 4);
    return buf;
}

/* Little-endian loads, assembled from bytes so they work on any host. */
static uint16_t ld16(const unsigned char *p) { return (uint16_t)(p[0] | (unsigned)p[1] << 8); }

static uint32_t ld32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t ld64(const unsigned char *p) { return ld32(p) | (uint64_t)ld32(p + 4) << 32; }

static void st32(unsigned char *p, uint32_t v) {
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static void st64(unsigned char *p, uint64_t v) {
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static float bits_to_float(uint32_t b) {
    float f;
    memcpy(&f, &b, sizeof f);
    return f;
}

static float half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h >> 15) << 31;
    uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ff;
    if (exp == 0x1f) return bits_to_float(sign | 0x7f800000u | man << 13); /* inf, nan */
    if (exp != 0) return bits_to_float(sign | (exp + 112) << 23 | man << 13);
    if (man == 0) return bits_to_float(sign); /* +-0 */
    /* Subnormal: man * 2^-24, renormalised into a float32 normal. */
    exp = 113;
    while (!(man & 0x400)) {
        man <<= 1;
        exp--;
    }
    return bits_to_float(sign | exp << 23 | (man & 0x3ff) << 13);
}

/* (float)d with IEEE round-to-nearest, without the undefined behaviour C
 * gives to out-of-range conversions. */
static float double_to_float(double d) {
    if (isfinite(d) && fabs(d) > FLT_MAX) {
        /* Halfway between FLT_MAX and the next power of two rounds to inf
         * (FLT_MAX's significand is odd). */
        double halfway = (double)FLT_MAX + ldexp(1.0, 103);
        float m = fabs(d) < halfway ? FLT_MAX : INFINITY;
        return d < 0 ? -m : m;
    }
    return (float)d;
}

/* ---- the file object ---------------------------------------------------- */

cnn_st_file *cnn_st_new(void) { return calloc(1, sizeof(cnn_st_file)); }

void cnn_st_free(cnn_st_file *st) {
    if (!st) return;
    for (int i = 0; i < st->count; i++) {
        free(st->items[i].name);
        free(st->items[i].owned);
    }
    for (int i = 0; i < st->nmeta; i++) {
        free(st->meta[i].key);
        free(st->meta[i].value);
    }
    free(st->items);
    free(st->meta);
    free(st);
}

int cnn_st_count(const cnn_st_file *st) { return st ? st->count : 0; }

const cnn_st_entry *cnn_st_get(const cnn_st_file *st, int i) {
    if (!st || i < 0 || i >= st->count) return NULL;
    return &st->items[i].e;
}

const cnn_st_entry *cnn_st_find(const cnn_st_file *st, const char *name) {
    if (!st || !name) return NULL;
    for (int i = 0; i < st->count; i++)
        if (strcmp(st->items[i].name, name) == 0) return &st->items[i].e;
    return NULL;
}

const char *cnn_st_metadata(const cnn_st_file *st, const char *key) {
    if (!st || !key) return NULL;
    for (int i = 0; i < st->nmeta; i++)
        if (strcmp(st->meta[i].key, key) == 0) return st->meta[i].value;
    return NULL;
}

static bool grow(void **arr, int *cap, int count, size_t elem) {
    if (count < *cap) return true;
    if (*cap > INT_MAX / 2) return false;
    int ncap = *cap ? *cap * 2 : 16;
    size_t bytes;
    if (!cnn_mul_size((size_t)ncap, elem, &bytes)) return false;
    void *p = realloc(*arr, bytes);
    if (!p) return false;
    *arr = p;
    *cap = ncap;
    return true;
}

/* Appends an item; takes ownership of name and owned (also on failure). */
static st_item *push_item(cnn_st_file *st, char *name, void *owned) {
    if (!name || !grow((void **)&st->items, &st->cap, st->count, sizeof(st_item))) {
        free(name);
        free(owned);
        return NULL;
    }
    st_item *it = &st->items[st->count++];
    *it = (st_item){0};
    it->name = name;
    it->e.name = name;
    it->owned = owned;
    return it;
}

/* Appends a metadata pair; takes ownership of key and value (also on failure). */
static bool push_meta(cnn_st_file *st, char *key, char *value) {
    if (!key || !value || !grow((void **)&st->meta, &st->metacap, st->nmeta, sizeof(st_meta))) {
        free(key);
        free(value);
        return false;
    }
    st->meta[st->nmeta++] = (st_meta){key, value};
    return true;
}

/* ---- reading ------------------------------------------------------------ */

typedef struct reader {
    const char *path;
    char *err;
    size_t errlen;
} reader;

/* Fails with "PATH: place: problem". */
static cnn_status rfail(const reader *r, cnn_status s, const char *place, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static cnn_status rfail(const reader *r, cnn_status s, const char *place, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return cnn_fail(s, r->err, r->errlen, "%s: %s: %s", r->path, place, msg);
}

static cnn_status oom(const reader *r) {
    return cnn_fail(CNN_STATUS_NO_MEMORY, r->err, r->errlen, "%s: out of memory", r->path);
}

/* A JSON number that is a non-negative integer cJSON holds exactly. */
static bool json_uint(const cJSON *j, uint64_t *out) {
    if (!cJSON_IsNumber(j)) return false;
    double v = j->valuedouble;
    if (!(v >= 0) || signbit(v) || v >= ST_JSON_INT_LIMIT || v != floor(v)) return false;
    *out = (uint64_t)v;
    return true;
}

static const char *json_kind(const cJSON *j) {
    if (cJSON_IsObject(j)) return "an object";
    if (cJSON_IsArray(j)) return "an array";
    if (cJSON_IsString(j)) return "a string";
    if (cJSON_IsNumber(j)) return "a number";
    if (cJSON_IsBool(j)) return "a boolean";
    if (cJSON_IsNull(j)) return "null";
    return "invalid";
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The first key that an object holds twice, or NULL (also on no memory:
 * *nomem is set). */
static const char *duplicate_key(const cJSON *obj, bool *nomem) {
    *nomem = false;
    int n = cJSON_GetArraySize(obj);
    if (n < 2) return NULL;
    const char **keys = malloc((size_t)n * sizeof *keys);
    if (!keys) {
        *nomem = true;
        return NULL;
    }
    int k = 0;
    for (const cJSON *c = obj->child; c && k < n; c = c->next)
        keys[k++] = c->string;
    qsort(keys, (size_t)k, sizeof *keys, cmp_str);
    const char *dup = NULL;
    for (int i = 1; i < k && !dup; i++)
        if (strcmp(keys[i - 1], keys[i]) == 0) dup = keys[i];
    free(keys);
    return dup;
}

/* One validated tensor, before conversion. */
typedef struct span {
    uint64_t begin, end;
    int index;
} span;

static int cmp_span(const void *a, const void *b) {
    const span *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return x->index < y->index ? -1 : x->index > y->index;
}

static cnn_status read_metadata(const reader *r, const cJSON *m, cnn_st_file *st) {
    char shown[128];
    if (!cJSON_IsObject(m))
        return rfail(r, CNN_STATUS_FORMAT, "metadata", "\"__metadata__\" is %s, not an object",
                     json_kind(m));
    bool nomem;
    const char *dup = duplicate_key(m, &nomem);
    if (nomem) return oom(r);
    if (dup) {
        char place[160];
        snprintf(place, sizeof place, "metadata '%s'", show(shown, sizeof shown, dup));
        return rfail(r, CNN_STATUS_FORMAT, place, "duplicate key");
    }
    for (const cJSON *c = m->child; c; c = c->next) {
        if (!cJSON_IsString(c)) {
            char place[160];
            snprintf(place, sizeof place, "metadata '%s'", show(shown, sizeof shown, c->string));
            return rfail(r, CNN_STATUS_FORMAT, place, "value is %s, not a string", json_kind(c));
        }
        if (!push_meta(st, dup_str(c->string), dup_str(c->valuestring))) return oom(r);
    }
    return CNN_OK;
}

/* Validates one tensor entry against a data section of datalen bytes. */
static cnn_status read_entry(const reader *r, const cJSON *t, uint64_t datalen, cnn_st_entry *e,
                             span *sp) {
    char shown[128], place[160];
    snprintf(place, sizeof place, "tensor '%s'", show(shown, sizeof shown, t->string));
    if (!cJSON_IsObject(t))
        return rfail(r, CNN_STATUS_FORMAT, place, "entry is %s, not an object", json_kind(t));

    const cJSON *dtype = NULL, *shape = NULL, *offs = NULL;
    for (const cJSON *c = t->child; c; c = c->next) {
        const cJSON **slot = strcmp(c->string, "dtype") == 0          ? &dtype
                             : strcmp(c->string, "shape") == 0        ? &shape
                             : strcmp(c->string, "data_offsets") == 0 ? &offs
                                                                      : NULL;
        if (!slot)
            return rfail(r, CNN_STATUS_FORMAT, place, "unexpected field \"%s\"",
                         show(shown, sizeof shown, c->string));
        if (*slot)
            return rfail(r, CNN_STATUS_FORMAT, place, "field \"%s\" appears twice", c->string);
        *slot = c;
    }
    if (!dtype) return rfail(r, CNN_STATUS_FORMAT, place, "missing field \"dtype\"");
    if (!shape) return rfail(r, CNN_STATUS_FORMAT, place, "missing field \"shape\"");
    if (!offs) return rfail(r, CNN_STATUS_FORMAT, place, "missing field \"data_offsets\"");

    /* dtype */
    if (!cJSON_IsString(dtype))
        return rfail(r, CNN_STATUS_FORMAT, place, "dtype is %s, not a string", json_kind(dtype));
    int d = 0;
    while (d < CNN_DTYPE_COUNT && strcmp(dtype->valuestring, dtype_names[d]) != 0)
        d++;
    if (d == CNN_DTYPE_COUNT)
        return rfail(r, CNN_STATUS_UNSUPPORTED, place,
                     "dtype %s is not supported (cnnkit reads F32, F16, BF16, F64 and I64)",
                     show(shown, sizeof shown, dtype->valuestring));
    e->dtype = (cnn_dtype)d;

    /* shape */
    if (!cJSON_IsArray(shape))
        return rfail(r, CNN_STATUS_FORMAT, place, "shape is %s, not an array", json_kind(shape));
    int ndim = cJSON_GetArraySize(shape);
    if (ndim > CNN_MAX_DIMS)
        return rfail(r, CNN_STATUS_FORMAT, place, "shape has %d dimensions, at most %d allowed",
                     ndim, CNN_MAX_DIMS);
    e->shape = (cnn_shape){.ndim = ndim};
    int i = 0;
    for (const cJSON *c = shape->child; c; c = c->next, i++) {
        uint64_t v;
        if (!json_uint(c, &v))
            return rfail(r, CNN_STATUS_FORMAT, place,
                         "shape[%d] is not a non-negative integer below 2^53", i);
        e->shape.dim[i] = (int64_t)v;
    }
    char shp[160];
    cnn_shape_format(shp, sizeof shp, &e->shape);
    size_t bytes;
    if (cnn_shape_numel(&e->shape, &e->numel) != CNN_OK ||
        !cnn_mul_size(e->numel, dtype_sizes[d], &bytes))
        return rfail(r, CNN_STATUS_FORMAT, place, "shape %s has too many elements", shp);

    /* data_offsets */
    uint64_t b, en;
    if (!cJSON_IsArray(offs) || cJSON_GetArraySize(offs) != 2 || !json_uint(offs->child, &b) ||
        !json_uint(offs->child->next, &en))
        return rfail(r, CNN_STATUS_FORMAT, place,
                     "data_offsets is not a pair of non-negative integers");
    if (b > en)
        return rfail(r, CNN_STATUS_FORMAT, place, "data_offsets [%llu, %llu] end before they begin",
                     (unsigned long long)b, (unsigned long long)en);
    if (en > datalen)
        return rfail(r, CNN_STATUS_FORMAT, place,
                     "data_offsets [%llu, %llu] run past the end of the data (%llu bytes)",
                     (unsigned long long)b, (unsigned long long)en, (unsigned long long)datalen);
    if (en - b != (uint64_t)bytes)
        return rfail(r, CNN_STATUS_FORMAT, place,
                     "data_offsets [%llu, %llu] hold %llu bytes, but %s %s needs %llu",
                     (unsigned long long)b, (unsigned long long)en, (unsigned long long)(en - b),
                     dtype_names[d], shp, (unsigned long long)bytes);
    sp->begin = b;
    sp->end = en;
    return CNN_OK;
}

/* The data section must be covered exactly: no overlaps, no holes. */
static cnn_status check_coverage(const reader *r, const cnn_st_file *st, span *sp, int n,
                                 uint64_t datalen) {
    qsort(sp, (size_t)n, sizeof *sp, cmp_span);
    uint64_t pos = 0;
    char shown[128], place[160];
    for (int i = 0; i < n; i++) {
        if (sp[i].begin != pos) {
            snprintf(place, sizeof place, "tensor '%s'",
                     show(shown, sizeof shown, st->items[sp[i].index].name));
            if (sp[i].begin < pos) {
                char other[128];
                return rfail(r, CNN_STATUS_FORMAT, place,
                             "data_offsets [%llu, %llu] overlap tensor '%s'",
                             (unsigned long long)sp[i].begin, (unsigned long long)sp[i].end,
                             show(other, sizeof other, st->items[sp[i - 1].index].name));
            }
            return rfail(r, CNN_STATUS_FORMAT, place,
                         "data_offsets [%llu, %llu] leave a hole: bytes [%llu, %llu) belong to "
                         "no tensor",
                         (unsigned long long)sp[i].begin, (unsigned long long)sp[i].end,
                         (unsigned long long)pos, (unsigned long long)sp[i].begin);
        }
        pos = sp[i].end;
    }
    if (pos != datalen)
        return rfail(r, CNN_STATUS_FORMAT, "data", "a hole: bytes [%llu, %llu) belong to no tensor",
                     (unsigned long long)pos, (unsigned long long)datalen);
    return CNN_OK;
}

static cnn_status convert(const reader *r, st_item *it, const unsigned char *src) {
    cnn_st_entry *e = &it->e;
    size_t n = e->numel ? e->numel : 1, bytes;
    size_t elem = e->dtype == CNN_DTYPE_I64 ? sizeof(int64_t) : sizeof(float);
    if (!cnn_mul_size(n, elem, &bytes)) return oom(r);
    void *dst = malloc(bytes);
    if (!dst) return oom(r);
    it->owned = dst;
    float *f = dst;
    size_t sz = dtype_sizes[e->dtype];
    switch (e->dtype) {
    case CNN_DTYPE_F32:
        for (size_t i = 0; i < e->numel; i++)
            f[i] = bits_to_float(ld32(src + i * sz));
        break;
    case CNN_DTYPE_F16:
        for (size_t i = 0; i < e->numel; i++)
            f[i] = half_to_float(ld16(src + i * sz));
        break;
    case CNN_DTYPE_BF16:
        for (size_t i = 0; i < e->numel; i++)
            f[i] = bits_to_float((uint32_t)ld16(src + i * sz) << 16);
        break;
    case CNN_DTYPE_F64:
        for (size_t i = 0; i < e->numel; i++) {
            uint64_t u = ld64(src + i * sz);
            double d;
            memcpy(&d, &u, sizeof d);
            f[i] = double_to_float(d);
        }
        break;
    case CNN_DTYPE_I64: {
        int64_t *q = dst;
        for (size_t i = 0; i < e->numel; i++) {
            uint64_t u = ld64(src + i * sz);
            memcpy(&q[i], &u, sizeof u);
        }
        e->i64 = q;
        return CNN_OK;
    }
    default: CNN_ASSERT(!"unreachable dtype");
    }
    e->f32 = f;
    return CNN_OK;
}

/* Parses the validated-so-far header text (NUL-terminated, hlen bytes). */
static cnn_status parse_header(const reader *r, const char *text, size_t hlen,
                               const unsigned char *data, uint64_t datalen, cnn_st_file *st) {
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, hlen + 1, &end, 1);
    if (!root) {
        size_t at = end && end >= text && end <= text + hlen ? (size_t)(end - text) : 0;
        return rfail(r, CNN_STATUS_FORMAT, "header", "invalid JSON near byte %zu", at);
    }
    cnn_status s = CNN_OK;
    span *sp = NULL;
    if (!cJSON_IsObject(root)) {
        s = rfail(r, CNN_STATUS_FORMAT, "header", "JSON is %s, not an object", json_kind(root));
        goto done;
    }
    bool nomem;
    const char *dup = duplicate_key(root, &nomem);
    if (nomem) {
        s = oom(r);
        goto done;
    }
    if (dup) {
        char shown[128], place[160];
        if (strcmp(dup, "__metadata__") == 0) {
            s = rfail(r, CNN_STATUS_FORMAT, "header", "duplicate key \"__metadata__\"");
        } else {
            snprintf(place, sizeof place, "tensor '%s'", show(shown, sizeof shown, dup));
            s = rfail(r, CNN_STATUS_FORMAT, place, "duplicate name in the header");
        }
        goto done;
    }

    int n = cJSON_GetArraySize(root);
    sp = malloc(((size_t)n + 1) * sizeof *sp);
    if (!sp) {
        s = oom(r);
        goto done;
    }
    int nt = 0;
    for (const cJSON *c = root->child; c; c = c->next) {
        if (strcmp(c->string, "__metadata__") == 0) {
            s = read_metadata(r, c, st);
            if (s != CNN_OK) goto done;
            continue;
        }
        st_item *it = push_item(st, dup_str(c->string), NULL);
        if (!it) {
            s = oom(r);
            goto done;
        }
        s = read_entry(r, c, datalen, &it->e, &sp[nt]);
        if (s != CNN_OK) goto done;
        sp[nt].index = nt;
        nt++;
    }
    s = check_coverage(r, st, sp, nt, datalen);
    if (s != CNN_OK) goto done;
    /* check_coverage sorted sp; index still maps each span to its item. */
    for (int i = 0; i < nt && s == CNN_OK; i++)
        s = convert(r, &st->items[sp[i].index], data + sp[i].begin);
done:
    free(sp);
    cJSON_Delete(root);
    return s;
}

cnn_status cnn_st_parse(const unsigned char *buf, size_t len, const char *name, cnn_st_file **out,
                        char *err, size_t errlen) {
    reader r = {name ? name : "<buffer>", err, errlen};
    if (!out) return cnn_fail(CNN_STATUS_INVALID_ARGUMENT, err, errlen, "%s: no output", r.path);
    *out = NULL;
    if (!buf && len)
        return cnn_fail(CNN_STATUS_INVALID_ARGUMENT, err, errlen, "%s: no buffer", r.path);
    if (len < 8)
        return rfail(&r, CNN_STATUS_FORMAT, "header",
                     "file is %zu bytes, too short for the 8-byte header length", len);
    uint64_t hlen = ld64(buf);
    if (hlen > ST_MAX_HEADER)
        return rfail(&r, CNN_STATUS_FORMAT, "header",
                     "header length %llu is absurd (the limit is %u)", (unsigned long long)hlen,
                     ST_MAX_HEADER);
    if (hlen > len - 8)
        return rfail(&r, CNN_STATUS_FORMAT, "header",
                     "header length %llu runs past the end of the file (%zu bytes after it)",
                     (unsigned long long)hlen, len - 8);
    const unsigned char *h = buf + 8;
    size_t bad = utf8_check(h, (size_t)hlen);
    if (bad < hlen) return rfail(&r, CNN_STATUS_FORMAT, "header", "invalid UTF-8 at byte %zu", bad);
    /* Raw control characters are invalid anywhere in JSON (and a NUL would
     * cut cJSON's strings short). */
    for (size_t i = 0; i < hlen; i++)
        if (h[i] < 0x20 && h[i] != '\t' && h[i] != '\n' && h[i] != '\r')
            return rfail(&r, CNN_STATUS_FORMAT, "header",
                         "invalid JSON near byte %zu (control character 0x%02x)", i, h[i]);

    char *text = malloc((size_t)hlen + 1);
    cnn_st_file *st = cnn_st_new();
    if (!text || !st) {
        free(text);
        free(st);
        return oom(&r);
    }
    memcpy(text, h, (size_t)hlen);
    text[hlen] = 0;
    cnn_status s = parse_header(&r, text, (size_t)hlen, h + hlen, len - 8 - hlen, st);
    free(text);
    if (s != CNN_OK) {
        cnn_st_free(st);
        return s;
    }
    *out = st;
    return CNN_OK;
}

cnn_status cnn_st_read(const char *path, cnn_st_file **out, char *err, size_t errlen) {
    if (out) *out = NULL;
    if (!path || !out)
        return cnn_fail(CNN_STATUS_INVALID_ARGUMENT, err, errlen, "cnn_st_read: no path or output");
    unsigned char *buf;
    size_t len;
    cnn_status s = cnn_read_file(path, &buf, &len, err, errlen);
    if (s != CNN_OK) return s;
    s = cnn_st_parse(buf, len, path, out, err, errlen);
    free(buf);
    return s;
}

/* ---- writing ------------------------------------------------------------ */

static cnn_status add_tensor(cnn_st_file *st, const char *name, const cnn_shape *shape,
                             cnn_dtype dtype, const void *data) {
    if (!st || !name || !shape || !utf8_ok(name) || strcmp(name, "__metadata__") == 0)
        return CNN_STATUS_INVALID_ARGUMENT;
    size_t numel, bytes;
    cnn_status s = cnn_shape_numel(shape, &numel);
    if (s != CNN_OK) return s;
    if (!cnn_mul_size(numel, dtype_sizes[dtype], &bytes)) return CNN_STATUS_NO_MEMORY;
    if (numel && !data) return CNN_STATUS_INVALID_ARGUMENT;
    if (cnn_st_find(st, name)) return CNN_STATUS_INVALID_ARGUMENT;
    st_item *it = push_item(st, dup_str(name), NULL);
    if (!it) return CNN_STATUS_NO_MEMORY;
    it->e.dtype = dtype;
    it->e.shape = *shape;
    it->e.numel = numel;
    if (dtype == CNN_DTYPE_I64)
        it->e.i64 = data;
    else
        it->e.f32 = data;
    return CNN_OK;
}

cnn_status cnn_st_add_f32(cnn_st_file *st, const char *name, const cnn_shape *shape,
                          const float *data) {
    return add_tensor(st, name, shape, CNN_DTYPE_F32, data);
}

cnn_status cnn_st_add_i64(cnn_st_file *st, const char *name, const cnn_shape *shape,
                          const int64_t *data) {
    return add_tensor(st, name, shape, CNN_DTYPE_I64, data);
}

cnn_status cnn_st_set_metadata(cnn_st_file *st, const char *key, const char *value) {
    if (!st || !key || !value || !utf8_ok(key) || !utf8_ok(value))
        return CNN_STATUS_INVALID_ARGUMENT;
    for (int i = 0; i < st->nmeta; i++) {
        if (strcmp(st->meta[i].key, key) == 0) {
            char *v = dup_str(value);
            if (!v) return CNN_STATUS_NO_MEMORY;
            free(st->meta[i].value);
            st->meta[i].value = v;
            return CNN_OK;
        }
    }
    return push_meta(st, dup_str(key), dup_str(value)) ? CNN_OK : CNN_STATUS_NO_MEMORY;
}

/* An exact integer for the header (cJSON would print doubles, e.g. 1e+16). */
static bool add_uint(cJSON *arr, uint64_t v) {
    char num[24];
    snprintf(num, sizeof num, "%llu", (unsigned long long)v);
    cJSON *j = cJSON_CreateRaw(num);
    return j && cJSON_AddItemToArray(arr, j);
}

/* The compact header, unpadded; NULL when out of memory or the offsets overflow. */
static char *build_header(const cnn_st_file *st) {
    cJSON *root = cJSON_CreateObject();
    bool ok = root != NULL;
    if (ok && st->nmeta) {
        cJSON *m = cJSON_AddObjectToObject(root, "__metadata__");
        ok = m != NULL;
        for (int i = 0; ok && i < st->nmeta; i++)
            ok = cJSON_AddStringToObject(m, st->meta[i].key, st->meta[i].value) != NULL;
    }
    uint64_t off = 0;
    for (int i = 0; ok && i < st->count; i++) {
        const cnn_st_entry *e = &st->items[i].e;
        cnn_dtype d = e->dtype == CNN_DTYPE_I64 ? CNN_DTYPE_I64 : CNN_DTYPE_F32;
        uint64_t bytes = (uint64_t)e->numel * dtype_sizes[d];
        cJSON *t = cJSON_AddObjectToObject(root, e->name);
        cJSON *shape = t ? cJSON_CreateArray() : NULL;
        cJSON *offs = t ? cJSON_CreateArray() : NULL;
        ok = t && shape && offs && cJSON_AddStringToObject(t, "dtype", dtype_names[d]);
        if (ok) ok = cJSON_AddItemToObject(t, "shape", shape);
        if (!ok) cJSON_Delete(shape);
        if (ok) ok = cJSON_AddItemToObject(t, "data_offsets", offs);
        if (!ok) cJSON_Delete(offs);
        for (int k = 0; ok && k < e->shape.ndim; k++)
            ok = add_uint(shape, (uint64_t)e->shape.dim[k]);
        ok = ok && bytes / dtype_sizes[d] == e->numel && off + bytes >= off;
        ok = ok && add_uint(offs, off) && add_uint(offs, off + bytes);
        off += bytes;
    }
    char *text = ok ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    return text;
}

static bool write_data(FILE *f, const cnn_st_entry *e) {
    unsigned char buf[1 << 15];
    size_t n = 0;
    bool i64 = e->dtype == CNN_DTYPE_I64;
    for (size_t i = 0; i < e->numel; i++) {
        if (i64) {
            uint64_t u;
            memcpy(&u, &e->i64[i], sizeof u);
            st64(buf + n, u);
            n += 8;
        } else {
            uint32_t u;
            memcpy(&u, &e->f32[i], sizeof u);
            st32(buf + n, u);
            n += 4;
        }
        if (n == sizeof buf) {
            if (fwrite(buf, 1, n, f) != n) return false;
            n = 0;
        }
    }
    return n == 0 || fwrite(buf, 1, n, f) == n;
}

cnn_status cnn_st_write(const cnn_st_file *st, const char *path, char *err, size_t errlen) {
    if (!st || !path)
        return cnn_fail(CNN_STATUS_INVALID_ARGUMENT, err, errlen, "cnn_st_write: no file or path");
    char *header = build_header(st);
    if (!header) return cnn_fail(CNN_STATUS_NO_MEMORY, err, errlen, "%s: out of memory", path);
    size_t hlen = strlen(header), padded = (hlen + 7) / 8 * 8;
    static const char spaces[8] = "        ";

    cnn_afile af;
    cnn_status s = cnn_afile_open(&af, path, err, errlen);
    if (s != CNN_OK) {
        free(header);
        return s;
    }
    unsigned char lenbuf[8];
    st64(lenbuf, padded);
    bool ok = fwrite(lenbuf, 1, 8, af.f) == 8 && fwrite(header, 1, hlen, af.f) == hlen &&
              fwrite(spaces, 1, padded - hlen, af.f) == padded - hlen;
    free(header);
    for (int i = 0; ok && i < st->count; i++)
        ok = write_data(af.f, &st->items[i].e);
    if (!ok) {
        int e = errno;
        cnn_afile_abort(&af);
        return cnn_fail(CNN_STATUS_IO, err, errlen, "%s: cannot write: %s", path, strerror(e));
    }
    return cnn_afile_commit(&af, err, errlen);
}
