/* modelfile.c - model files: format detection, compiler-style errors, the
 * layer builder with torch.nn's constructor signatures, the module tree, and
 * turning that tree into a finalized cnn_model whose layers remember their
 * file positions. The two readers are parse_repr.c and parse_code.c. */
#define _POSIX_C_SOURCE 200809L
#include "cnnkit/modelfile.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "model_impl.h"
#include "modelfile_impl.h"

/* ---- Errors ------------------------------------------------------------- */

/* Source lines longer than this are shown as a window around the column. */
#define MF_SHOW_COLS 120

static size_t utf8_len(unsigned char ch) {
    return ch < 0x80 ? 1 : ch >= 0xF0 ? 4 : ch >= 0xE0 ? 3 : ch >= 0xC0 ? 2 : 1;
}

static bool utf8_cont(unsigned char ch) { return (ch & 0xC0) == 0x80; }

/* The bytes of the character at s[0..n): 1 for one that is not valid UTF-8. */
static size_t utf8_char(const char *s, size_t n) {
    unsigned char ch = (unsigned char)s[0];
    size_t k = utf8_len(ch);
    if (k > n || (ch >= 0x80 && ch < 0xC2) || ch >= 0xF5) return 1;
    for (size_t j = 1; j < k; j++)
        if (!utf8_cont((unsigned char)s[j])) return 1;
    return k;
}

bool mf_error(mf_ctx *c, mf_pos pos, cnn_status status, const char *fmt, ...) {
    if (c->status != CNN_OK) return false;
    c->status = status;
    if (!c->err || !c->errlen) return false;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);

    size_t off = pos.off <= c->len ? pos.off : c->len;
    size_t ls = off, le = off;
    while (ls > 0 && c->src[ls - 1] != '\n')
        ls--;
    while (le < c->len && c->src[le] != '\n')
        le++;
    if (le > ls && c->src[le - 1] == '\r') le--;
    if (ls == 0 && le >= 3 && memcmp(c->src, "\xEF\xBB\xBF", 3) == 0) ls = 3; /* the BOM */
    /* Columns as the lexer counts them: one per byte that is not a UTF-8
     * continuation byte. A long line is shown as a window of columns around
     * the error, with "..." where it was cut. */
    size_t cols = 0;
    for (size_t i = ls; i < le; i++)
        cols += !utf8_cont((unsigned char)c->src[i]);
    size_t col = pos.col > 0 ? (size_t)pos.col - 1 : 0, skip = 0;
    if (cols > MF_SHOW_COLS && col > MF_SHOW_COLS / 2) skip = col - MF_SHOW_COLS / 2;

    char line[4 * MF_SHOW_COLS + 16], under[MF_SHOW_COLS + 16];
    size_t n = 0, u = 0, colno = 0;
    if (skip) {
        memcpy(line, "...", 3);
        memcpy(under, "   ", 3);
        n = u = 3;
    }
    for (size_t i = ls; i < le && colno < skip + MF_SHOW_COLS;) {
        unsigned char ch = (unsigned char)c->src[i];
        if (utf8_cont(ch)) { /* left over from an invalid character: no column */
            i++;
            continue;
        }
        size_t k = utf8_char(c->src + i, le - i);
        if (colno >= skip) {
            if (ch == '\t' || (k > 1) || (ch >= 0x20 && ch < 0x7F)) {
                memcpy(line + n, c->src + i, k);
                n += k;
            } else {
                line[n++] = '?'; /* a control character or a byte that is not UTF-8 */
            }
            if (colno < col) under[u++] = ch == '\t' ? '\t' : ' ';
        }
        colno++;
        i += k;
    }
    if (colno < cols) {
        memcpy(line + n, "...", 3);
        n += 3;
    }
    for (; colno < col && u < sizeof under - 2; colno++)
        under[u++] = ' ';
    line[n] = 0;
    under[u++] = '^';
    under[u] = 0;
    snprintf(c->err, c->errlen, "%s:%d:%d: %s\n%s\n%s", c->file, pos.line, pos.col, msg, line,
             under);
    return false;
}

bool mf_error_close(mf_ctx *c, const mf_token *t, const char *expected, const char *what,
                    mf_pos open) {
    return mf_error(c, t->pos, CNN_STATUS_FORMAT, "expected %s to close '%s' opened at %d:%d%s",
                    expected, what, open.line, open.col,
                    t->kind == MF_T_EOF ? ", got end of file" : "");
}

/* ---- Values and arguments ----------------------------------------------- */

static void describe_scalar(const mf_scalar *s, char *buf, size_t cap) {
    char f[32];
    switch (s->kind) {
    case MF_V_INT: snprintf(buf, cap, "int %lld", (long long)s->i); break;
    case MF_V_FLOAT:
        cnn_format_pyfloat(f, sizeof f, s->f);
        snprintf(buf, cap, "float %s", f);
        break;
    case MF_V_BOOL: snprintf(buf, cap, "%s", s->i ? "True" : "False"); break;
    default: snprintf(buf, cap, "None"); break;
    }
}

void mf_value_describe(const mf_value *v, char *buf, size_t cap) {
    switch (v->kind) {
    case MF_V_INT:
    case MF_V_FLOAT:
    case MF_V_BOOL:
    case MF_V_NONE: {
        mf_scalar s = {v->kind, v->i, v->f};
        describe_scalar(&s, buf, cap);
        break;
    }
    case MF_V_STR:
        snprintf(buf, cap, "the string '%.*s'", (int)(v->slen > 40 ? 40 : v->slen), v->s);
        break;
    case MF_V_WORD: snprintf(buf, cap, "'%.*s'", (int)(v->slen > 40 ? 40 : v->slen), v->s); break;
    case MF_V_TUPLE:
        if (v->n == 2) {
            char a[48], b[48];
            describe_scalar(&v->item[0], a, sizeof a);
            describe_scalar(&v->item[1], b, sizeof b);
            snprintf(buf, cap, "a tuple of %s and %s", a, b);
        } else {
            snprintf(buf, cap, "a tuple of %d", v->n);
        }
        break;
    case MF_V_MODULE: snprintf(buf, cap, "a module"); break;
    default: snprintf(buf, cap, "a value"); break;
    }
}

bool mf_parse_args(mf_stream *ts, mf_ctx *c, const char *what, mf_pos open, mf_value_fn value,
                   void *ud, mf_arg *args, int *nargs) {
    *nargs = 0;
    bool keywords = false;
    for (;;) {
        const mf_token *t = mf_peek(ts, 0);
        if (mf_tok_is(t, ")")) {
            mf_take(ts);
            return true;
        }
        if (t->kind == MF_T_EOF) return mf_error_close(c, t, "')'", what, open);
        if (mf_tok_is(t, "*") || mf_tok_is(t, "**"))
            return mf_error(c, t->pos, CNN_STATUS_UNSUPPORTED,
                            "'%.*s' arguments are not supported: write the arguments out",
                            (int)t->len, t->s);
        if (*nargs == MF_MAX_ARGS)
            return mf_error(c, t->pos, CNN_STATUS_UNSUPPORTED, "more than %d arguments in one call",
                            MF_MAX_ARGS);
        mf_arg *a = &args[*nargs];
        memset(a, 0, sizeof *a);
        if (t->kind == MF_T_NAME && mf_tok_is(mf_peek(ts, 1), "=")) {
            a->kw = t->s;
            a->kwlen = t->len;
            a->kwpos = t->pos;
            mf_take(ts);
            mf_take(ts);
            keywords = true;
        } else if (keywords) {
            return mf_error(c, t->pos, CNN_STATUS_FORMAT,
                            "positional argument follows keyword argument");
        }
        if (!value(ts, c, ud, &a->v)) return false;
        (*nargs)++;
        t = mf_peek(ts, 0);
        if (mf_tok_is(t, ",")) {
            mf_take(ts);
            continue;
        }
        if (!mf_tok_is(t, ")")) return mf_error_close(c, t, "',' or ')'", what, open);
    }
}

/* ---- The module tree ---------------------------------------------------- */

int mf_tree_add(mf_tree *t, mf_ctx *c, bool leaf, const cnn_layer *L, const char *type,
                size_t typelen, mf_pos pos) {
    if (t->n == MF_MAX_MODULES) {
        mf_error(c, pos, CNN_STATUS_UNSUPPORTED, "more than %d modules", MF_MAX_MODULES);
        return -1;
    }
    if (typelen >= MF_MAX_NAME) {
        mf_error(c, pos, CNN_STATUS_UNSUPPORTED, "class name longer than %d characters",
                 MF_MAX_NAME - 1);
        return -1;
    }
    if (t->n == t->cap) {
        int cap = t->cap ? 2 * t->cap : 32;
        mf_mod *p = realloc(t->mods, (size_t)cap * sizeof *p);
        if (!p) {
            mf_error(c, pos, CNN_STATUS_NO_MEMORY, "out of memory");
            return -1;
        }
        t->mods = p;
        t->cap = cap;
    }
    mf_mod *m = &t->mods[t->n];
    memset(m, 0, sizeof *m);
    m->leaf = leaf;
    if (L) m->L = *L;
    memcpy(m->type, type, typelen);
    m->type[typelen] = 0;
    m->pos = pos;
    m->parent = m->first = m->last = m->next = -1;
    return t->n++;
}

static size_t name_hash(int parent, const char *name, size_t len) {
    uint64_t h = 1469598103934665603u ^ (uint64_t)(unsigned)parent; /* FNV-1a */
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)name[i]) * 1099511628211u;
    return (size_t)(h ^ (h >> 29));
}

/* The slot of (parent, name): the module that has it, or the free slot where it goes. */
static size_t name_slot(const mf_tree *t, int parent, const char *name, size_t len) {
    size_t i = name_hash(parent, name, len) & (t->names_cap - 1);
    for (;; i = (i + 1) & (t->names_cap - 1)) {
        int k = t->names[i] - 1;
        if (k < 0 || (t->mods[k].parent == parent && strlen(t->mods[k].name) == len &&
                      memcmp(t->mods[k].name, name, len) == 0))
            return i;
    }
}

/* Keeps the table at most half full. */
static bool names_grow(mf_tree *t) {
    if ((size_t)(t->named + 1) * 2 <= t->names_cap) return true;
    size_t cap = t->names_cap ? 2 * t->names_cap : 64;
    int *old = t->names;
    size_t old_cap = t->names_cap;
    t->names = calloc(cap, sizeof *t->names);
    if (!t->names) {
        t->names = old;
        return false;
    }
    t->names_cap = cap;
    for (size_t i = 0; i < old_cap; i++) {
        int k = old[i] - 1;
        if (k >= 0)
            t->names[name_slot(t, t->mods[k].parent, t->mods[k].name, strlen(t->mods[k].name))] =
                k + 1;
    }
    free(old);
    return true;
}

/* A module is attached once and never moved: the names table keys on the parent. */
bool mf_tree_attach(mf_tree *t, mf_ctx *c, int parent, int child, const char *name, size_t namelen,
                    mf_pos name_pos) {
    if (namelen == 0 || namelen >= MF_MAX_NAME)
        return mf_error(c, name_pos, CNN_STATUS_UNSUPPORTED,
                        "module names must have 1 to %d characters", MF_MAX_NAME - 1);
    if (memchr(name, '.', namelen))
        return mf_error(c, name_pos, CNN_STATUS_INVALID_ARGUMENT,
                        "module name '%.*s' can't contain '.'", (int)namelen, name);
    /* Identifiers and indices only, so that every name prints as it reads back. */
    bool ident = !(name[0] >= '0' && name[0] <= '9'), index = !ident;
    for (size_t i = 0; i < namelen; i++) {
        char ch = name[i];
        bool digit = ch >= '0' && ch <= '9';
        ident =
            ident && (digit || ch == '_' || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z'));
        index = index && digit;
    }
    if (index && namelen > 1 && name[0] == '0') index = false; /* as str(int) writes it */
    if (!ident && !index)
        return mf_error(c, name_pos, CNN_STATUS_UNSUPPORTED,
                        "module name '%.*s' is not supported: cnnkit reads names that are "
                        "identifiers (conv1) or indices (0)",
                        (int)(namelen > 40 ? 40 : namelen), name);
    if (!names_grow(t)) return mf_error(c, name_pos, CNN_STATUS_NO_MEMORY, "out of memory");
    size_t slot = name_slot(t, parent, name, namelen);
    int k = t->names[slot] - 1;
    if (k >= 0)
        return mf_error(c, name_pos, CNN_STATUS_INVALID_ARGUMENT,
                        "duplicate module name '%.*s' (the first is at %d:%d)", (int)namelen, name,
                        t->mods[k].name_pos.line, t->mods[k].name_pos.col);
    t->names[slot] = child + 1;
    t->named++;
    mf_mod *m = &t->mods[child];
    memcpy(m->name, name, namelen);
    m->name[namelen] = 0;
    m->name_pos = name_pos;
    m->parent = parent;
    if (t->mods[parent].last >= 0)
        t->mods[t->mods[parent].last].next = child;
    else
        t->mods[parent].first = child;
    t->mods[parent].last = child;
    return true;
}

void mf_tree_free(mf_tree *t) {
    free(t->mods);
    free(t->names);
    memset(t, 0, sizeof *t);
}

/* ---- Layers: torch.nn's constructors ------------------------------------ */

typedef enum param_kind {
    P_INT,
    P_PAIR, /* int or (int, int) */
    P_BOOL,
    P_FLOAT,
    P_FLOAT_NONE,   /* BatchNorm2d's momentum */
    P_DIM,          /* Softmax's dim: an int; None is refused */
    P_STRIDE,       /* pooling: pair or None (the kernel) */
    P_CONV_PADDING, /* pair, or 'same' / 'valid' (refused with the equivalent) */
    P_ZEROS,        /* padding_mode: only 'zeros' */
    P_NONE,         /* device, dtype, divisor_override: only None */
    P_FALSE         /* return_indices: only False */
} param_kind;

typedef struct param_spec {
    const char *name;
    param_kind kind;
    bool required;
} param_spec;

static const param_spec conv_params[] = {{"in_channels", P_INT, true},
                                         {"out_channels", P_INT, true},
                                         {"kernel_size", P_PAIR, true},
                                         {"stride", P_PAIR, false},
                                         {"padding", P_CONV_PADDING, false},
                                         {"dilation", P_PAIR, false},
                                         {"groups", P_INT, false},
                                         {"bias", P_BOOL, false},
                                         {"padding_mode", P_ZEROS, false},
                                         {"device", P_NONE, false},
                                         {"dtype", P_NONE, false}};
static const param_spec linear_params[] = {{"in_features", P_INT, true},
                                           {"out_features", P_INT, true},
                                           {"bias", P_BOOL, false},
                                           {"device", P_NONE, false},
                                           {"dtype", P_NONE, false}};
static const param_spec maxpool_params[] = {
    {"kernel_size", P_PAIR, true},      {"stride", P_STRIDE, false},
    {"padding", P_PAIR, false},         {"dilation", P_PAIR, false},
    {"return_indices", P_FALSE, false}, {"ceil_mode", P_BOOL, false}};
static const param_spec avgpool_params[] = {
    {"kernel_size", P_PAIR, true},        {"stride", P_STRIDE, false},
    {"padding", P_PAIR, false},           {"ceil_mode", P_BOOL, false},
    {"count_include_pad", P_BOOL, false}, {"divisor_override", P_NONE, false}};
static const param_spec adaptive_params[] = {{"output_size", P_PAIR, true}};
static const param_spec relu_params[] = {{"inplace", P_BOOL, false}};
static const param_spec flatten_params[] = {{"start_dim", P_INT, false}, {"end_dim", P_INT, false}};
static const param_spec dropout_params[] = {{"p", P_FLOAT, false}, {"inplace", P_BOOL, false}};
static const param_spec bn_params[] = {{"num_features", P_INT, true},
                                       {"eps", P_FLOAT, false},
                                       {"momentum", P_FLOAT_NONE, false},
                                       {"affine", P_BOOL, false},
                                       {"track_running_stats", P_BOOL, false},
                                       {"device", P_NONE, false},
                                       {"dtype", P_NONE, false}};
static const param_spec lrn_params[] = {{"size", P_INT, true},
                                        {"alpha", P_FLOAT, false},
                                        {"beta", P_FLOAT, false},
                                        {"k", P_FLOAT, false}};
static const param_spec softmax_params[] = {{"dim", P_DIM, false}};

typedef struct layer_spec {
    const param_spec *params;
    int n;
} layer_spec;

#define SPEC(a)                                                                                    \
    { a, (int)CNN_COUNT_OF(a) }
static const layer_spec layer_specs[] = {
    [CNN_OP_CONV2D] = SPEC(conv_params),
    [CNN_OP_LINEAR] = SPEC(linear_params),
    [CNN_OP_MAXPOOL2D] = SPEC(maxpool_params),
    [CNN_OP_AVGPOOL2D] = SPEC(avgpool_params),
    [CNN_OP_ADAPTIVEAVGPOOL2D] = SPEC(adaptive_params),
    [CNN_OP_RELU] = SPEC(relu_params),
    [CNN_OP_SIGMOID] = {NULL, 0},
    [CNN_OP_TANH] = {NULL, 0},
    [CNN_OP_FLATTEN] = SPEC(flatten_params),
    [CNN_OP_DROPOUT] = SPEC(dropout_params),
    [CNN_OP_BATCHNORM2D] = SPEC(bn_params),
    [CNN_OP_LRN] = SPEC(lrn_params),
    [CNN_OP_SOFTMAX] = SPEC(softmax_params),
};
_Static_assert(CNN_COUNT_OF(layer_specs) == CNN_OP_COUNT, "one signature per op");
#define MF_MAX_PARAMS 11

cnn_op mf_layer_op(const char *name, size_t len) {
    for (int i = 0; i < CNN_OP_COUNT; i++) {
        const char *n = cnn_op_name((cnn_op)i);
        if (strlen(n) == len && memcmp(n, name, len) == 0) return (cnn_op)i;
    }
    return CNN_OP_COUNT;
}

bool mf_error_unsupported_layer(mf_ctx *c, mf_pos pos, const char *name, size_t len,
                                bool with_sequential) {
    char list[256] = "";
    size_t o = 0;
    const char *hint = NULL;
    for (int i = 0; i < CNN_OP_COUNT; i++) {
        const char *n = cnn_op_name((cnn_op)i);
        o += (size_t)snprintf(list + o, sizeof list - o, "%s%s", i ? ", " : "", n);
        if (strlen(n) == len && strncasecmp(n, name, len) == 0) hint = n;
    }
    if (with_sequential) snprintf(list + o, sizeof list - o, ", Sequential");
    if (hint)
        return mf_error(c, pos, CNN_STATUS_UNSUPPORTED,
                        "%.*s is not supported (did you mean %s?); supported: %s", (int)len, name,
                        hint, list);
    return mf_error(c, pos, CNN_STATUS_UNSUPPORTED, "%.*s is not supported; supported: %s",
                    (int)len, name, list);
}

/* The typed readers of one bound argument; each reports at the value. */
typedef struct binder {
    mf_ctx *c;
    const char *layer;
} binder;

static bool want(binder *b, const mf_value *v, const char *param, const char *what) {
    char got[128];
    mf_value_describe(v, got, sizeof got);
    return mf_error(b->c, v->pos, CNN_STATUS_INVALID_ARGUMENT, "%s: %s must be %s, got %s",
                    b->layer, param, what, got);
}

static bool in_range(binder *b, const mf_value *v, const char *param, int64_t x) {
    if (x >= -MF_MAX_INT && x <= MF_MAX_INT) return true;
    return mf_error(b->c, v->pos, CNN_STATUS_UNSUPPORTED,
                    "%s: %s=%lld is out of cnnkit's range (at most %d in magnitude)", b->layer,
                    param, (long long)x, MF_MAX_INT);
}

static bool get_int(binder *b, const mf_value *v, const char *param, int64_t *out) {
    if (v->kind != MF_V_INT) return want(b, v, param, "an int");
    *out = v->i;
    return in_range(b, v, param, v->i);
}

static bool get_pair(binder *b, const mf_value *v, const char *param, int64_t out[2], bool *tuple) {
    if (v->kind == MF_V_INT) {
        out[0] = out[1] = v->i;
        if (tuple) *tuple = false;
        return in_range(b, v, param, v->i);
    }
    if (v->kind != MF_V_TUPLE || v->n != 2 || v->item[0].kind != MF_V_INT ||
        v->item[1].kind != MF_V_INT)
        return want(b, v, param, "an int or a tuple of 2 ints");
    out[0] = v->item[0].i;
    out[1] = v->item[1].i;
    if (tuple) *tuple = true;
    return in_range(b, v, param, out[0]) && in_range(b, v, param, out[1]);
}

static bool get_bool(binder *b, const mf_value *v, const char *param, bool *out) {
    if (v->kind != MF_V_BOOL) return want(b, v, param, "True or False");
    *out = v->i != 0;
    return true;
}

/* PyTorch keeps an int given for a float argument and prints it as an int
 * ("p=0"); cnnkit stores floats, so it asks for the float. */
static bool get_float(binder *b, const mf_value *v, const char *param, double *out) {
    if (v->kind == MF_V_INT)
        return mf_error(b->c, v->pos, CNN_STATUS_INVALID_ARGUMENT,
                        "%s: %s must be a float, got int %lld: write %lld.0 (PyTorch would keep "
                        "the int and print it as one)",
                        b->layer, param, (long long)v->i, (long long)v->i);
    if (v->kind != MF_V_FLOAT) return want(b, v, param, "a float");
    *out = v->f;
    return true;
}

static bool is_text(const mf_value *v, const char *s) {
    return (v->kind == MF_V_STR || v->kind == MF_V_WORD) && v->slen == strlen(s) &&
           memcmp(v->s, s, v->slen) == 0;
}

/* padding='same' / 'valid': PyTorch prints these words, which a cnn_layer
 * cannot hold, so they are refused with the equivalent numbers. */
static bool conv_padding_text(binder *b, const mf_value *v, const cnn_layer *L) {
    if (is_text(v, "valid"))
        return mf_error(b->c, v->pos, CNN_STATUS_UNSUPPORTED,
                        "Conv2d: padding='valid' is not supported: write padding=0, which is the "
                        "same");
    if (!is_text(v, "same"))
        return want(b, v, "padding", "an int, a tuple of 2 ints, 'same' or 'valid'");
    if (L->stride[0] != 1 || L->stride[1] != 1)
        return mf_error(b->c, v->pos, CNN_STATUS_INVALID_ARGUMENT,
                        "Conv2d: padding='same' is not supported for strided convolutions");
    int64_t total[2];
    for (int i = 0; i < 2; i++)
        total[i] = L->dilation[i] * (L->kernel[i] - 1);
    if (total[0] % 2 || total[1] % 2)
        return mf_error(b->c, v->pos, CNN_STATUS_UNSUPPORTED,
                        "Conv2d: padding='same' with kernel_size (%lld, %lld) needs more padding "
                        "on one side than the other, which cnnkit does not support",
                        (long long)L->kernel[0], (long long)L->kernel[1]);
    if (total[0] == total[1])
        return mf_error(b->c, v->pos, CNN_STATUS_UNSUPPORTED,
                        "Conv2d: padding='same' is not supported: write padding=%lld, which is "
                        "the same here",
                        (long long)(total[0] / 2));
    return mf_error(b->c, v->pos, CNN_STATUS_UNSUPPORTED,
                    "Conv2d: padding='same' is not supported: write padding=(%lld, %lld), which "
                    "is the same here",
                    (long long)(total[0] / 2), (long long)(total[1] / 2));
}

/* The arguments PyTorch accepts but whose only value cnnkit runs is the default. */
static bool check_fixed(binder *b, const param_spec *p, const mf_value *v) {
    switch (p->kind) {
    case P_ZEROS:
        if (is_text(v, "zeros")) return true;
        if (v->kind == MF_V_STR || v->kind == MF_V_WORD)
            return mf_error(b->c, v->pos, CNN_STATUS_UNSUPPORTED,
                            "%s: padding_mode='%.*s' is not supported: cnnkit pads with zeros",
                            b->layer, (int)(v->slen > 40 ? 40 : v->slen), v->s);
        return want(b, v, p->name, "'zeros'");
    case P_NONE:
        if (v->kind == MF_V_NONE) return true;
        return mf_error(b->c, v->pos, CNN_STATUS_UNSUPPORTED,
                        "%s: %s is not supported (cnnkit runs float32 on the CPU, as PyTorch's "
                        "defaults do); leave it out or pass None",
                        b->layer, p->name);
    case P_FALSE:
        if (v->kind == MF_V_BOOL && !v->i) return true;
        return mf_error(b->c, v->pos, CNN_STATUS_UNSUPPORTED,
                        "%s: %s=True is not supported; leave it out or pass False", b->layer,
                        p->name);
    default: return true;
    }
}

bool mf_make_layer(mf_ctx *c, cnn_op op, mf_pos pos, const mf_arg *args, int nargs,
                   cnn_layer *out) {
    const layer_spec *spec = &layer_specs[op];
    const char *name = cnn_op_name(op);
    binder b = {c, name};
    const mf_value *bound[MF_MAX_PARAMS] = {0};
    int npos = 0, total_pos = 0;
    for (int i = 0; i < nargs; i++)
        total_pos += !args[i].kw;
    for (int i = 0; i < nargs; i++) {
        const mf_arg *a = &args[i];
        if (!a->kw) {
            if (npos >= spec->n)
                return mf_error(c, a->v.pos, CNN_STATUS_INVALID_ARGUMENT,
                                "%s takes %s%d positional argument%s, got %d", name,
                                spec->n ? "at most " : "", spec->n, spec->n == 1 ? "" : "s",
                                total_pos);
            bound[npos++] = &a->v;
            continue;
        }
        int k = 0;
        while (k < spec->n && !(strlen(spec->params[k].name) == a->kwlen &&
                                memcmp(spec->params[k].name, a->kw, a->kwlen) == 0))
            k++;
        if (k == spec->n) {
            char list[256] = "";
            size_t o = 0;
            for (int j = 0; j < spec->n; j++)
                o += (size_t)snprintf(list + o, sizeof list - o, "%s%s", j ? ", " : "",
                                      spec->params[j].name);
            if (!spec->n)
                return mf_error(c, a->kwpos, CNN_STATUS_INVALID_ARGUMENT,
                                "%s takes no arguments, got '%.*s'", name, (int)a->kwlen, a->kw);
            return mf_error(c, a->kwpos, CNN_STATUS_INVALID_ARGUMENT,
                            "%s has no argument '%.*s'; its arguments are %s", name, (int)a->kwlen,
                            a->kw, list);
        }
        if (bound[k])
            return mf_error(c, a->kwpos, CNN_STATUS_INVALID_ARGUMENT, "%s got two values for '%s'",
                            name, spec->params[k].name);
        bound[k] = &a->v;
    }
    for (int k = 0; k < spec->n; k++) {
        if (spec->params[k].required && !bound[k])
            return mf_error(c, pos, CNN_STATUS_INVALID_ARGUMENT,
                            "%s is missing its required argument '%s'", name, spec->params[k].name);
        if (bound[k] && !check_fixed(&b, &spec->params[k], bound[k])) return false;
    }
#define ARG(k) bound[k]
    cnn_layer L;
    int64_t pair[2];
    switch (op) {
    case CNN_OP_CONV2D: {
        int64_t in = 0, outc = 0;
        if (!get_int(&b, ARG(0), "in_channels", &in) ||
            !get_int(&b, ARG(1), "out_channels", &outc) ||
            !get_pair(&b, ARG(2), "kernel_size", pair, NULL))
            return false;
        L = cnn_conv2d(in, outc, pair[0]);
        L.kernel[1] = pair[1];
        if (ARG(3) && !get_pair(&b, ARG(3), "stride", L.stride, NULL)) return false;
        if (ARG(5) && !get_pair(&b, ARG(5), "dilation", L.dilation, NULL)) return false;
        if (ARG(4)) {
            if (ARG(4)->kind == MF_V_STR || ARG(4)->kind == MF_V_WORD)
                return conv_padding_text(&b, ARG(4), &L);
            if (!get_pair(&b, ARG(4), "padding", L.padding, NULL)) return false;
        }
        if (ARG(6) && !get_int(&b, ARG(6), "groups", &L.groups)) return false;
        if (ARG(7) && !get_bool(&b, ARG(7), "bias", &L.bias)) return false;
        break;
    }
    case CNN_OP_LINEAR: {
        int64_t in = 0, outf = 0;
        if (!get_int(&b, ARG(0), "in_features", &in) || !get_int(&b, ARG(1), "out_features", &outf))
            return false;
        L = cnn_linear(in, outf);
        if (ARG(2) && !get_bool(&b, ARG(2), "bias", &L.bias)) return false;
        break;
    }
    case CNN_OP_MAXPOOL2D:
    case CNN_OP_AVGPOOL2D: {
        bool tuple;
        if (!get_pair(&b, ARG(0), "kernel_size", pair, &tuple)) return false;
        L = op == CNN_OP_MAXPOOL2D ? cnn_maxpool2d(pair[0]) : cnn_avgpool2d(pair[0]);
        L.kernel[1] = L.stride[1] = pair[1];
        L.kernel_tuple = L.stride_tuple = tuple; /* stride=None is the kernel, as written */
        if (ARG(1) && ARG(1)->kind != MF_V_NONE &&
            !get_pair(&b, ARG(1), "stride", L.stride, &L.stride_tuple))
            return false;
        if (ARG(2) && !get_pair(&b, ARG(2), "padding", L.padding, &L.padding_tuple)) return false;
        if (op == CNN_OP_MAXPOOL2D) {
            if (ARG(3) && !get_pair(&b, ARG(3), "dilation", L.dilation, &L.dilation_tuple))
                return false;
            if (ARG(5) && !get_bool(&b, ARG(5), "ceil_mode", &L.ceil_mode)) return false;
        } else {
            if (ARG(3) && !get_bool(&b, ARG(3), "ceil_mode", &L.ceil_mode)) return false;
            if (ARG(4) && !get_bool(&b, ARG(4), "count_include_pad", &L.count_include_pad))
                return false;
        }
        break;
    }
    case CNN_OP_ADAPTIVEAVGPOOL2D: {
        bool tuple;
        const mf_value *v = ARG(0);
        if (v->kind == MF_V_NONE ||
            (v->kind == MF_V_TUPLE && v->n == 2 &&
             (v->item[0].kind == MF_V_NONE || v->item[1].kind == MF_V_NONE)))
            return mf_error(c, v->pos, CNN_STATUS_UNSUPPORTED,
                            "AdaptiveAvgPool2d: None in output_size (keep the input's size) is "
                            "not supported");
        if (!get_pair(&b, v, "output_size", pair, &tuple)) return false;
        L = cnn_adaptiveavgpool2d(pair[0]);
        L.output_size[1] = pair[1];
        L.output_size_tuple = tuple;
        break;
    }
    case CNN_OP_RELU:
        L = cnn_relu();
        if (ARG(0) && !get_bool(&b, ARG(0), "inplace", &L.inplace)) return false;
        break;
    case CNN_OP_SIGMOID: L = cnn_sigmoid(); break;
    case CNN_OP_TANH: L = cnn_tanh(); break;
    case CNN_OP_FLATTEN:
        L = cnn_flatten();
        if (ARG(0) && !get_int(&b, ARG(0), "start_dim", &L.start_dim)) return false;
        if (ARG(1) && !get_int(&b, ARG(1), "end_dim", &L.end_dim)) return false;
        break;
    case CNN_OP_DROPOUT:
        L = cnn_dropout(0.5);
        if (ARG(0) && !get_float(&b, ARG(0), "p", &L.p)) return false;
        if (ARG(1) && !get_bool(&b, ARG(1), "inplace", &L.inplace)) return false;
        break;
    case CNN_OP_BATCHNORM2D: {
        int64_t nf = 0;
        if (!get_int(&b, ARG(0), "num_features", &nf)) return false;
        L = cnn_batchnorm2d(nf);
        if (ARG(1) && !get_float(&b, ARG(1), "eps", &L.eps)) return false;
        if (ARG(2) && ARG(2)->kind == MF_V_NONE)
            L.momentum_none = true;
        else if (ARG(2) && !get_float(&b, ARG(2), "momentum", &L.momentum))
            return false;
        if (ARG(3) && !get_bool(&b, ARG(3), "affine", &L.affine)) return false;
        if (ARG(4) && !get_bool(&b, ARG(4), "track_running_stats", &L.track_running_stats))
            return false;
        break;
    }
    case CNN_OP_LRN: {
        int64_t size = 0;
        if (!get_int(&b, ARG(0), "size", &size)) return false;
        L = cnn_lrn(size);
        if (ARG(1) && !get_float(&b, ARG(1), "alpha", &L.alpha)) return false;
        if (ARG(2) && !get_float(&b, ARG(2), "beta", &L.beta)) return false;
        if (ARG(3) && !get_float(&b, ARG(3), "k", &L.k)) return false;
        break;
    }
    case CNN_OP_SOFTMAX: {
        int64_t dim = 0;
        if (!ARG(0) || ARG(0)->kind == MF_V_NONE)
            return mf_error(c, ARG(0) ? ARG(0)->pos : pos, CNN_STATUS_UNSUPPORTED,
                            "Softmax needs an explicit dim, e.g. Softmax(dim=1): PyTorch's "
                            "implicit choice is deprecated and cnnkit does not guess it");
        if (!get_int(&b, ARG(0), "dim", &dim)) return false;
        L = cnn_softmax(dim);
        break;
    }
    default: return mf_error(c, pos, CNN_STATUS_UNSUPPORTED, "invalid op");
    }
#undef ARG
    char why[256];
    if (!cnn_layer_check(&L, why, sizeof why))
        return mf_error(c, pos, CNN_STATUS_INVALID_ARGUMENT, "invalid %s: %s", name, why);
    *out = L;
    return true;
}

/* ---- Format detection ---------------------------------------------------- */

static bool ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* True for code, false for a printed model; see modelfile.h for the rules. */
static bool is_code(const char *text, size_t len, const char *filename) {
    mf_ctx scratch = {text, len, "", NULL, 0, CNN_OK};
    mf_stream ts;
    mf_stream_init(&ts, &scratch, false);
    const mf_token *t0 = mf_peek(&ts, 0), *t1 = mf_peek(&ts, 1);
    if (!mf_failed(&scratch)) {
        if (t0->kind == MF_T_STRING || mf_tok_is(t0, "@")) return true;
        if (mf_tok_name_is(t0, "class") || mf_tok_name_is(t0, "import") ||
            mf_tok_name_is(t0, "from") || mf_tok_name_is(t0, "def"))
            return true;
        if (t0->kind == MF_T_NAME && (mf_tok_is(t1, ".") || mf_tok_is(t1, "="))) return true;
        if (t0->kind == MF_T_NAME && mf_tok_is(t1, "(")) {
            const mf_token *t2 = mf_peek(&ts, 2);
            if (!mf_failed(&scratch)) {
                if (mf_tok_is(t2, ")") || t2->pos.line > t1->pos.line) return false;
                const mf_token *t3 = mf_peek(&ts, 3), *t4 = mf_peek(&ts, 4), *t5 = mf_peek(&ts, 5);
                if (!mf_failed(&scratch) && mf_tok_is(t2, "(") &&
                    (t3->kind == MF_T_NAME || t3->kind == MF_T_INT) && mf_tok_is(t4, ")") &&
                    mf_tok_is(t5, ":"))
                    return false;
            }
        }
    }
    return ends_with(filename, ".py");
}

/* ---- From the tree to a model ------------------------------------------- */

typedef struct builder {
    mf_ctx *c;
    const mf_tree *t;
    cnn_model *m;
} builder;

static bool build_children(builder *bd, int tmod, int mmod, int depth) {
    if (depth > MF_MAX_DEPTH + 1)
        return mf_error(bd->c, bd->t->mods[tmod].pos, CNN_STATUS_UNSUPPORTED,
                        "containers nested more than %d deep", MF_MAX_DEPTH);
    for (int k = bd->t->mods[tmod].first; k >= 0; k = bd->t->mods[k].next) {
        const mf_mod *mod = &bd->t->mods[k];
        if (mod->leaf) {
            int node = cnn_model_add_layer(bd->m, mmod, mod->name, &mod->L);
            char origin[512];
            snprintf(origin, sizeof origin, "%s:%d:%d", bd->c->file, mod->pos.line, mod->pos.col);
            if (node < 0 || cnn_model_set_origin(bd->m, node, origin) != CNN_OK)
                return mf_error(bd->c, mod->pos,
                                node < 0 ? CNN_STATUS_INVALID_ARGUMENT : CNN_STATUS_NO_MEMORY, "%s",
                                cnn_model_error(bd->m));
        } else {
            int sub = cnn_model_add_container(bd->m, mmod, mod->name, mod->type);
            if (sub < 0)
                return mf_error(bd->c, mod->pos, CNN_STATUS_INVALID_ARGUMENT, "%s",
                                cnn_model_error(bd->m));
            if (!build_children(bd, k, sub, depth + 1)) return false;
        }
    }
    return true;
}

cnn_status mf_parse_model(const char *text, size_t len, const char *filename, bool finalize,
                          cnn_model **out, char *err, size_t errlen) {
    if (err && errlen) err[0] = 0;
    if (!out) return cnn_fail(CNN_STATUS_INVALID_ARGUMENT, err, errlen, "no output");
    *out = NULL;
    if (!text && len) return cnn_fail(CNN_STATUS_INVALID_ARGUMENT, err, errlen, "no text");
    if (!text) text = "";
    mf_ctx c = {text, len, filename ? filename : "<text>", err, errlen, CNN_OK};
    mf_tree tree = {0};
    bool ok = is_code(text, len, c.file) ? mf_parse_code(&c, &tree) : mf_parse_repr(&c, &tree);
    cnn_model *m = NULL;
    if (ok && !mf_failed(&c)) {
        const mf_mod *top = &tree.mods[tree.top];
        m = cnn_model_new(top->type);
        if (!m) {
            mf_error(&c, top->pos, CNN_STATUS_NO_MEMORY, "out of memory");
        } else {
            builder bd = {&c, &tree, m};
            if (build_children(&bd, tree.top, 0, 1) && finalize && cnn_model_finalize(m) != CNN_OK)
                mf_error(&c, top->pos, CNN_STATUS_NO_MEMORY, "%s", cnn_model_error(m));
        }
    } else if (!mf_failed(&c)) {
        mf_error(&c, (mf_pos){1, 1, 0}, CNN_STATUS_FORMAT, "no model");
    }
    mf_tree_free(&tree);
    if (mf_failed(&c)) {
        cnn_model_free(m);
        return c.status;
    }
    *out = m;
    return CNN_OK;
}

cnn_status cnn_model_parse(const char *text, size_t len, const char *filename, cnn_model **out,
                           char *err, size_t errlen) {
    return mf_parse_model(text, len, filename, true, out, err, errlen);
}

cnn_status cnn_model_read_file(const char *path, cnn_model **out, char *err, size_t errlen) {
    if (out) *out = NULL;
    if (!path || !out) return cnn_fail(CNN_STATUS_INVALID_ARGUMENT, err, errlen, "no path");
    FILE *f = fopen(path, "rb");
    if (!f) return cnn_fail(CNN_STATUS_IO, err, errlen, "%s: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode)) {
        fclose(f);
        return cnn_fail(CNN_STATUS_IO, err, errlen, "%s: not a regular file", path);
    }
    if ((unsigned long long)sb.st_size > CNN_MODELFILE_MAX_BYTES) {
        fclose(f);
        return cnn_fail(CNN_STATUS_IO, err, errlen,
                        "%s: %lld bytes is over the limit for a model file (%u bytes)", path,
                        (long long)sb.st_size, CNN_MODELFILE_MAX_BYTES);
    }
    /* One byte more than the limit, in case the file grows while it is read. */
    size_t cap = (size_t)sb.st_size + 1;
    char *buf = malloc(cap);
    if (!buf) {
        fclose(f);
        return cnn_fail(CNN_STATUS_NO_MEMORY, err, errlen, "%s: out of memory", path);
    }
    size_t len = fread(buf, 1, cap, f);
    bool failed = ferror(f) != 0;
    int e = errno;
    fclose(f);
    if (failed || len == cap) {
        free(buf);
        return cnn_fail(CNN_STATUS_IO, err, errlen, "%s: %s", path,
                        failed ? strerror(e) : "the file changed while it was read");
    }
    cnn_status s = cnn_model_parse(buf, len, path, out, err, errlen);
    free(buf);
    return s;
}

/* ---- Input shapes --------------------------------------------------------- */

cnn_status cnn_model_guess_input(cnn_model *m, cnn_shape *out) {
    int n = cnn_model_num_nodes(m);
    if (n == 0) return cnn_model_fail(m, CNN_STATUS_SHAPE, "the model has no layers");
    const cnn_layer *first = cnn_model_node_layer(m, 0);
    if (first->op == CNN_OP_LINEAR) {
        cnn_shape s = cnn_shape_make(2, (int64_t[]){1, first->in});
        cnn_status st = cnn_model_infer(m, &s);
        if (st == CNN_OK) *out = s;
        return st;
    }
    int64_t channels[2] = {1, 3};
    int nc = 2;
    for (int i = 0; i < n; i++) {
        const cnn_layer *L = cnn_model_node_layer(m, i);
        if (L->op == CNN_OP_CONV2D || L->op == CNN_OP_BATCHNORM2D) {
            channels[0] = L->in;
            nc = 1;
            break;
        }
    }
    static const int64_t sizes[] = {28, 32, 64, 96, 224, 227, 256};
    char first_err[sizeof m->err] = "";
    for (size_t i = 0; i < CNN_COUNT_OF(sizes); i++) {
        for (int k = 0; k < nc; k++) {
            cnn_shape s = cnn_shape_make(4, (int64_t[]){1, channels[k], sizes[i], sizes[i]});
            if (cnn_model_infer(m, &s) == CNN_OK) {
                *out = s;
                return CNN_OK;
            }
            if (!first_err[0]) snprintf(first_err, sizeof first_err, "%s", cnn_model_error(m));
        }
    }
    return cnn_model_fail(m, CNN_STATUS_SHAPE,
                          "no square input from 28x28 to 256x256 fits the model; at 28x28: %s",
                          first_err);
}
