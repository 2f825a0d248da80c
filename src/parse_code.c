/* parse_code.c - reads the subset of Python that defines a classic CNN:
 *
 *   import torch / from torch import nn / import torch.nn as nn / ...
 *   net = nn.Sequential(nn.Conv2d(1, 6, kernel_size=5, padding=2), nn.Sigmoid(), ...)
 *
 * or one class derived from nn.Module whose __init__ assigns modules to
 * self.NAME (children run in assignment order; forward() and any other
 * method are skipped, by indentation, unread). Arguments are literals (int,
 * float, True, False, None, tuples, strings where PyTorch takes one),
 * arithmetic on them (16 * 5 * 5) and names bound to such values: constants
 * at the top level, __init__'s parameters and its local constants. A model
 * file defines exactly one model: an nn.Sequential expression or assignment,
 * or the class (optionally instantiated once: net = LeNet(num_classes=10)).
 * Anything else is an error naming the construct. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "modelfile_impl.h"

/* SYM_MODEL is the name the model is assigned to, which nothing may use. */
typedef enum sym_kind { SYM_PATH, SYM_CONST, SYM_CLASS, SYM_MODEL } sym_kind;

typedef struct sym {
    char name[MF_MAX_NAME];
    sym_kind kind;
    char path[MF_MAX_NAME]; /* SYM_PATH: the module or class it names ("torch.nn") */
    mf_value v;             /* SYM_CONST */
} sym;

#define MAX_SYMS 256
typedef struct scope {
    sym s[MAX_SYMS];
    int n;
} scope;

typedef struct param {
    char name[MF_MAX_NAME];
    mf_pos pos;
    bool has_default;
    mf_value def;
} param;

typedef struct cp {
    mf_ctx *c;
    mf_stream ts;
    mf_tree *t;
    scope globals, locals;
    bool in_init;
    int depth;       /* expression nesting */
    bool ended_line; /* the last statement ended its line (not with ';') */

    bool have_model; /* a Sequential at the top level, or the class */
    mf_pos model_pos;
    int model_mod; /* the top-level Sequential's tree index; -1 for the class */

    bool have_class;
    char class_name[MF_MAX_NAME];
    mf_pos class_pos;
    bool have_init;
    mf_pos init_pos;
    mf_stream init_body; /* the stream just after "def __init__(...):" */
    param params[MF_MAX_ARGS];
    int nparams;
    char self_name[MF_MAX_NAME];
    bool instantiated;
    mf_pos inst_pos;
    mf_value inst_val[MF_MAX_ARGS]; /* __init__'s arguments, by parameter */
    bool inst_given[MF_MAX_ARGS];
} cp;

/* ---- Small helpers ------------------------------------------------------ */

static const mf_token *peek(cp *p, int k) { return mf_peek(&p->ts, k); }
static mf_token take(cp *p) { return mf_take(&p->ts); }

static bool unexpected(cp *p, const mf_token *t, const char *expected) {
    char got[64];
    mf_tok_describe(t, got, sizeof got);
    return mf_error(p->c, t->pos, CNN_STATUS_FORMAT, "expected %s, got %s", expected, got);
}

static bool expect_op(cp *p, const char *op, const char *expected) {
    const mf_token *t = peek(p, 0);
    if (!mf_tok_is(t, op)) return unexpected(p, t, expected);
    take(p);
    return true;
}

static void tok_text(const mf_token *t, char *buf, size_t cap) {
    snprintf(buf, cap, "%.*s", (int)(t->len < cap ? t->len : cap - 1), t->s);
}

static bool name_eq(const char *a, const char *s, size_t len) {
    return strlen(a) == len && memcmp(a, s, len) == 0;
}

/* Statements cnnkit does not read, named in the error. */
static const char *const keywords[] = {
    "if",     "elif",  "else",     "for",      "while",  "with",  "try",    "except", "finally",
    "return", "del",   "global",   "nonlocal", "assert", "raise", "lambda", "yield",  "async",
    "await",  "break", "continue", "not",      "and",    "or",    "is",     "in"};

/* Python's reserved words, which are never names. */
static const char *const reserved[] = {
    "False", "None",     "True",  "and",    "as",   "assert", "async",  "await",    "break",
    "class", "continue", "def",   "del",    "elif", "else",   "except", "finally",  "for",
    "from",  "global",   "if",    "import", "in",   "is",     "lambda", "nonlocal", "not",
    "or",    "pass",     "raise", "return", "try",  "while",  "with",   "yield"};

/* A name token that is not a reserved word; otherwise an error saying what
 * was expected. */
static bool expect_name(cp *p, const mf_token *t, const char *what) {
    if (t->kind != MF_T_NAME) return unexpected(p, t, what);
    for (size_t i = 0; i < sizeof reserved / sizeof reserved[0]; i++)
        if (mf_tok_name_is(t, reserved[i]))
            return mf_error(p->c, t->pos, CNN_STATUS_FORMAT,
                            "expected %s, got the reserved word '%s'", what, reserved[i]);
    return true;
}

static bool is_keyword(const mf_token *t) {
    for (size_t i = 0; i < sizeof keywords / sizeof keywords[0]; i++)
        if (mf_tok_name_is(t, keywords[i])) return true;
    return false;
}

/* ---- Names -------------------------------------------------------------- */

static sym *lookup_in(scope *s, const char *name, size_t len) {
    for (int i = s->n - 1; i >= 0; i--)
        if (name_eq(s->s[i].name, name, len)) return &s->s[i];
    return NULL;
}

static sym *lookup(cp *p, const char *name, size_t len) {
    sym *s = p->in_init ? lookup_in(&p->locals, name, len) : NULL;
    return s ? s : lookup_in(&p->globals, name, len);
}

static sym *bind(cp *p, scope *s, const char *name, size_t len, mf_pos pos) {
    if (len >= MF_MAX_NAME) {
        mf_error(p->c, pos, CNN_STATUS_UNSUPPORTED, "name longer than %d characters",
                 MF_MAX_NAME - 1);
        return NULL;
    }
    sym *e = lookup_in(s, name, len);
    if (!e) {
        if (s->n == MAX_SYMS) {
            mf_error(p->c, pos, CNN_STATUS_UNSUPPORTED, "more than %d names", MAX_SYMS);
            return NULL;
        }
        e = &s->s[s->n++];
    }
    memset(e, 0, sizeof *e);
    memcpy(e->name, name, len);
    return e;
}

/* A dotted name as written ("nn.Conv2d") and what it refers to
 * ("torch.nn.Conv2d"), with the position of its first part. */
typedef struct dotted {
    char text[256];
    char path[256];
    mf_pos pos;
    sym *head; /* the symbol of the first part, NULL for a default */
    int parts;
} dotted;

/* Reads NAME(.NAME)* and resolves the first part: an import, a constant, the
 * class, or by default nn (torch.nn), torch and OrderedDict, which the notes'
 * code uses without importing them. Another name is an error, except before
 * '(' (a call, which call() reports) and when lenient. */
static bool read_dotted(cp *p, dotted *d, bool lenient) {
    memset(d, 0, sizeof *d);
    mf_token t = take(p);
    d->pos = t.pos;
    size_t o = 0;
    for (;;) {
        o += (size_t)snprintf(d->text + o, sizeof d->text - (o < sizeof d->text ? o : 0), "%s%.*s",
                              d->parts ? "." : "", (int)(t.len > 100 ? 100 : t.len), t.s);
        if (o >= sizeof d->text) o = sizeof d->text - 1;
        d->parts++;
        if (!mf_tok_is(peek(p, 0), ".")) break;
        take(p);
        t = take(p);
        if (t.kind != MF_T_NAME) return unexpected(p, &t, "a name after '.'");
    }
    const char *first_end = strchr(d->text, '.');
    size_t flen = first_end ? (size_t)(first_end - d->text) : strlen(d->text);
    const char *rest = first_end ? first_end : "";
    sym *s = lookup(p, d->text, flen);
    d->head = s;
    if (s && s->kind == SYM_MODEL)
        return mf_error(p->c, d->pos, CNN_STATUS_UNSUPPORTED,
                        "using '%.*s' after its definition is not supported: a model file only "
                        "defines the model",
                        (int)flen, d->text);
    if (s && s->kind == SYM_PATH) {
        snprintf(d->path, sizeof d->path, "%s%s", s->path, rest);
    } else if (s) {
        snprintf(d->path, sizeof d->path, "%s", d->text);
    } else if (name_eq("nn", d->text, flen)) {
        snprintf(d->path, sizeof d->path, "torch.nn%s", rest);
    } else if (name_eq("torch", d->text, flen) || name_eq("collections", d->text, flen)) {
        snprintf(d->path, sizeof d->path, "%s", d->text);
    } else if (name_eq("OrderedDict", d->text, flen)) {
        snprintf(d->path, sizeof d->path, "collections.OrderedDict%s", rest);
    } else if (p->in_init && name_eq(p->self_name, d->text, flen)) {
        snprintf(d->path, sizeof d->path, "%s", d->text);
    } else {
        bool layer =
            mf_layer_op(d->text, flen) != CNN_OP_COUNT || name_eq("Sequential", d->text, flen);
        if (lenient || (!layer && mf_tok_is(peek(p, 0), "("))) {
            snprintf(d->path, sizeof d->path, "%s", d->text);
            return true;
        }
        return mf_error(p->c, d->pos, CNN_STATUS_INVALID_ARGUMENT,
                        "name '%.*s' is not defined%s%.*s%s", (int)flen, d->text,
                        layer ? " (write nn." : "", layer ? (int)flen : 0, d->text,
                        layer ? ", or import it from torch.nn)" : "");
    }
    return true;
}

/* The torch.nn class a path names ("Conv2d" for torch.nn.Conv2d), or NULL. */
static const char *nn_class(const char *path) {
    static const char prefix[] = "torch.nn.";
    if (strncmp(path, prefix, sizeof prefix - 1) != 0) return NULL;
    const char *name = path + sizeof prefix - 1;
    return strchr(name, '.') ? NULL : name;
}

/* ---- Expressions -------------------------------------------------------- */

static bool expr(cp *p, mf_value *out);

static bool code_value(mf_stream *ts, mf_ctx *c, void *ud, mf_value *out) {
    (void)ts;
    (void)c;
    return expr((cp *)ud, out);
}

static bool is_scalar(mf_vkind k) {
    return k == MF_V_INT || k == MF_V_FLOAT || k == MF_V_BOOL || k == MF_V_NONE;
}

static bool number_op(cp *p, mf_pos pos, const char *op, mf_value *a, const mf_value *b) {
    char da[64], db[64];
    if (a->kind == MF_V_BOOL || b->kind == MF_V_BOOL)
        return mf_error(p->c, pos, CNN_STATUS_UNSUPPORTED,
                        "arithmetic on True and False is not supported");
    if ((a->kind != MF_V_INT && a->kind != MF_V_FLOAT) ||
        (b->kind != MF_V_INT && b->kind != MF_V_FLOAT)) {
        mf_value_describe(a, da, sizeof da);
        mf_value_describe(b, db, sizeof db);
        return mf_error(p->c, pos, CNN_STATUS_UNSUPPORTED,
                        "'%s' is not supported between %s and %s", op, da, db);
    }
    bool zero = b->kind == MF_V_INT ? b->i == 0 : b->f == 0.0;
    if (zero && (!strcmp(op, "/") || !strcmp(op, "//") || !strcmp(op, "%")))
        return mf_error(p->c, pos, CNN_STATUS_INVALID_ARGUMENT, "division by zero");
    if (a->kind == MF_V_INT && b->kind == MF_V_INT && strcmp(op, "/") != 0) {
        int64_t x = a->i, y = b->i, r = 0;
        bool overflow = false;
        if (!strcmp(op, "+")) {
            overflow = __builtin_add_overflow(x, y, &r);
        } else if (!strcmp(op, "-")) {
            overflow = __builtin_sub_overflow(x, y, &r);
        } else if (!strcmp(op, "*")) {
            overflow = __builtin_mul_overflow(x, y, &r);
        } else if (x == INT64_MIN && y == -1) {
            overflow = !strcmp(op, "//");
            r = 0;
        } else if (!strcmp(op, "//")) {
            r = x / y - ((x % y != 0) && ((x < 0) != (y < 0))); /* Python floors */
        } else {
            r = x % y;
            if (r != 0 && ((r < 0) != (y < 0))) r += y;
        }
        if (overflow)
            return mf_error(p->c, pos, CNN_STATUS_UNSUPPORTED,
                            "integer overflow: the result needs more than 64 bits");
        a->i = r;
        return true;
    }
    double x = a->kind == MF_V_INT ? (double)a->i : a->f;
    double y = b->kind == MF_V_INT ? (double)b->i : b->f;
    double r;
    if (!strcmp(op, "+"))
        r = x + y;
    else if (!strcmp(op, "-"))
        r = x - y;
    else if (!strcmp(op, "*"))
        r = x * y;
    else if (!strcmp(op, "/"))
        r = x / y;
    else if (!strcmp(op, "//"))
        r = floor(x / y);
    else {
        r = fmod(x, y);
        if (r != 0 && ((r < 0) != (y < 0))) r += y;
    }
    if (!isfinite(r))
        return mf_error(p->c, pos, CNN_STATUS_UNSUPPORTED, "the result is not a finite number");
    a->kind = MF_V_FLOAT;
    a->f = r;
    return true;
}

static bool call(cp *p, dotted *d, mf_value *out);

static bool tuple_add(cp *p, mf_value *tuple, const mf_value *item) {
    if (!is_scalar(item->kind)) {
        char d[64];
        mf_value_describe(item, d, sizeof d);
        return mf_error(p->c, item->pos, CNN_STATUS_UNSUPPORTED,
                        "tuples hold numbers, True, False or None here, not %s", d);
    }
    if (tuple->n < MF_TUPLE_MAX) tuple->item[tuple->n] = (mf_scalar){item->kind, item->i, item->f};
    tuple->n++;
    return true;
}

/* Tuples and parentheses: '(' taken at open. */
static bool paren(cp *p, mf_pos open, mf_value *out) {
    memset(out, 0, sizeof *out);
    out->pos = open;
    out->kind = MF_V_TUPLE;
    if (mf_tok_is(peek(p, 0), ")")) {
        take(p);
        return true;
    }
    mf_value item;
    if (!expr(p, &item)) return false;
    const mf_token *t = peek(p, 0);
    if (mf_tok_is(t, ")")) {
        take(p);
        *out = item;
        out->pos = open;
        return true;
    }
    for (;;) {
        if (!mf_tok_is(t, ",")) return mf_error_close(p->c, t, "',' or ')'", "(", open);
        take(p);
        if (!tuple_add(p, out, &item)) return false;
        t = peek(p, 0);
        if (mf_tok_is(t, ")")) {
            take(p);
            return true;
        }
        if (t->kind == MF_T_EOF) return mf_error_close(p->c, t, "')'", "(", open);
        if (!expr(p, &item)) return false;
        t = peek(p, 0);
        if (mf_tok_is(t, ")")) {
            take(p);
            return tuple_add(p, out, &item);
        }
    }
}

static bool atom(cp *p, mf_value *out) {
    memset(out, 0, sizeof *out);
    const mf_token *t = peek(p, 0);
    out->pos = t->pos;
    switch (t->kind) {
    case MF_T_INT:
        if (t->too_big)
            return mf_error(p->c, t->pos, CNN_STATUS_UNSUPPORTED, "integer %.*s is too large",
                            (int)(t->len > 40 ? 40 : t->len), t->s);
        out->kind = MF_V_INT;
        out->i = t->i;
        take(p);
        return true;
    case MF_T_FLOAT:
        out->kind = MF_V_FLOAT;
        out->f = t->f;
        take(p);
        return true;
    case MF_T_STRING:
        if (!t->str_plain)
            return mf_error(p->c, t->pos, CNN_STATUS_UNSUPPORTED,
                            "strings with escapes or prefixes are not supported here");
        out->kind = MF_V_STR;
        out->s = t->str;
        out->slen = t->strlen;
        take(p);
        if (peek(p, 0)->kind == MF_T_STRING)
            return mf_error(p->c, peek(p, 0)->pos, CNN_STATUS_UNSUPPORTED,
                            "adjacent strings are not supported");
        return true;
    case MF_T_OP:
        if (mf_tok_is(t, "(")) {
            mf_token open = take(p);
            return paren(p, open.pos, out);
        }
        if (mf_tok_is(t, "["))
            return mf_error(p->c, t->pos, CNN_STATUS_UNSUPPORTED,
                            "lists are not supported here: write a tuple, (3, 3)");
        if (mf_tok_is(t, "{"))
            return mf_error(p->c, t->pos, CNN_STATUS_UNSUPPORTED,
                            "dicts and sets are not supported");
        return unexpected(p, t, "a value");
    case MF_T_NAME: break;
    default: return unexpected(p, t, "a value");
    }
    if (mf_tok_name_is(t, "True") || mf_tok_name_is(t, "False")) {
        out->kind = MF_V_BOOL;
        out->i = mf_tok_name_is(t, "True");
        take(p);
        return true;
    }
    if (mf_tok_name_is(t, "None")) {
        out->kind = MF_V_NONE;
        take(p);
        return true;
    }
    if (is_keyword(t))
        return mf_error(p->c, t->pos, CNN_STATUS_UNSUPPORTED, "'%.*s' is not supported here",
                        (int)t->len, t->s);
    dotted d;
    if (!read_dotted(p, &d, false)) return false;
    if (mf_tok_is(peek(p, 0), "(")) return call(p, &d, out);
    if (d.parts == 1 && d.head && d.head->kind == SYM_CONST) {
        *out = d.head->v;
        out->pos = d.pos;
        return true;
    }
    if (p->in_init && !strncmp(d.text, p->self_name, strlen(p->self_name)) &&
        d.text[strlen(p->self_name)] == '.')
        return mf_error(p->c, d.pos, CNN_STATUS_UNSUPPORTED,
                        "'%s' is not supported in arguments: use a literal or a name bound to "
                        "one",
                        d.text);
    return mf_error(p->c, d.pos, CNN_STATUS_UNSUPPORTED,
                    "'%s' is not supported here: arguments are literals, arithmetic on them and "
                    "names bound to them",
                    d.text);
}

static bool factor(cp *p, mf_value *out) {
    const mf_token *t = peek(p, 0);
    if (mf_tok_is(t, "-") || mf_tok_is(t, "+") || mf_tok_is(t, "~")) {
        mf_token op = take(p);
        if (++p->depth > MF_MAX_DEPTH)
            return mf_error(p->c, op.pos, CNN_STATUS_UNSUPPORTED,
                            "expression nested more than %d levels deep", MF_MAX_DEPTH);
        bool ok = factor(p, out);
        p->depth--;
        if (!ok) return false;
        if (mf_tok_is(&op, "~"))
            return mf_error(p->c, op.pos, CNN_STATUS_UNSUPPORTED, "'~' is not supported");
        if (out->kind == MF_V_INT) {
            if (mf_tok_is(&op, "-")) {
                if (out->i == INT64_MIN)
                    return mf_error(p->c, op.pos, CNN_STATUS_UNSUPPORTED, "integer overflow");
                out->i = -out->i;
            }
        } else if (out->kind == MF_V_FLOAT) {
            if (mf_tok_is(&op, "-")) out->f = -out->f;
        } else {
            char d[64];
            mf_value_describe(out, d, sizeof d);
            return mf_error(p->c, op.pos, CNN_STATUS_UNSUPPORTED,
                            "unary '%.*s' is not supported on %s", (int)op.len, op.s, d);
        }
        out->pos = op.pos;
        return true;
    }
    if (!atom(p, out)) return false;
    t = peek(p, 0);
    if (mf_tok_is(t, "**"))
        return mf_error(p->c, t->pos, CNN_STATUS_UNSUPPORTED, "'**' is not supported");
    if (mf_tok_is(t, "[") || mf_tok_is(t, ".") || mf_tok_is(t, "("))
        return mf_error(p->c, t->pos, CNN_STATUS_UNSUPPORTED,
                        "'%.*s' after a value is not supported", (int)t->len, t->s);
    return true;
}

static bool term(cp *p, mf_value *out) {
    if (!factor(p, out)) return false;
    for (;;) {
        const mf_token *t = peek(p, 0);
        if (!(mf_tok_is(t, "*") || mf_tok_is(t, "/") || mf_tok_is(t, "//") || mf_tok_is(t, "%")))
            return true;
        mf_token op = take(p);
        char ops[4];
        tok_text(&op, ops, sizeof ops);
        mf_value rhs;
        if (!factor(p, &rhs) || !number_op(p, op.pos, ops, out, &rhs)) return false;
    }
}

static bool expr(cp *p, mf_value *out) {
    const mf_token *t = peek(p, 0);
    if (++p->depth > MF_MAX_DEPTH) {
        return mf_error(p->c, t->pos, CNN_STATUS_UNSUPPORTED,
                        "expression nested more than %d levels deep", MF_MAX_DEPTH);
    }
    bool ok = term(p, out);
    while (ok) {
        t = peek(p, 0);
        if (!(mf_tok_is(t, "+") || mf_tok_is(t, "-"))) break;
        mf_token op = take(p);
        char ops[4];
        tok_text(&op, ops, sizeof ops);
        mf_value rhs;
        ok = term(p, &rhs) && number_op(p, op.pos, ops, out, &rhs);
    }
    p->depth--;
    return ok;
}

/* ---- Calls: layers, Sequential, OrderedDict ----------------------------- */

/* OrderedDict([('name', module), ...]) after its '(' (at open): a container
 * of named children, returned as a tree module of type "OrderedDict". */
static bool ordered_dict(cp *p, const dotted *d, mf_pos open, mf_value *out) {
    char what[260];
    snprintf(what, sizeof what, "%s(", d->text);
    const mf_token *t = peek(p, 0);
    if (!mf_tok_is(t, "["))
        return mf_error(p->c, t->pos, CNN_STATUS_UNSUPPORTED,
                        "OrderedDict takes a list of ('name', module) pairs here: "
                        "OrderedDict([('conv1', nn.Conv2d(...)), ...])");
    mf_token lopen = take(p);
    int mod = mf_tree_add(p->t, p->c, false, NULL, "OrderedDict", 11, d->pos);
    if (mod < 0) return false;
    for (;;) {
        t = peek(p, 0);
        if (mf_tok_is(t, "]")) {
            take(p);
            break;
        }
        if (!mf_tok_is(t, "(")) {
            if (t->kind == MF_T_EOF) return mf_error_close(p->c, t, "']'", "[", lopen.pos);
            return unexpected(p, t, "a ('name', module) pair");
        }
        mf_token popen = take(p);
        mf_token name = take(p);
        if (name.kind != MF_T_STRING || !name.str_plain)
            return unexpected(p, &name, "the module's name as a plain string");
        if (!expect_op(p, ",", "',' after the name")) return false;
        mf_value v;
        if (!expr(p, &v)) return false;
        if (v.kind != MF_V_MODULE) {
            char dv[64];
            mf_value_describe(&v, dv, sizeof dv);
            return mf_error(p->c, v.pos, CNN_STATUS_INVALID_ARGUMENT,
                            "OrderedDict's values must be modules, got %s", dv);
        }
        if (mf_tok_is(peek(p, 0), ",")) take(p);
        t = peek(p, 0);
        if (!mf_tok_is(t, ")")) return mf_error_close(p->c, t, "')'", "(", popen.pos);
        take(p);
        if (!mf_tree_attach(p->t, p->c, mod, v.module, name.str, name.strlen, name.pos))
            return false;
        t = peek(p, 0);
        if (mf_tok_is(t, ","))
            take(p);
        else if (!mf_tok_is(t, "]"))
            return mf_error_close(p->c, t, "',' or ']'", "[", lopen.pos);
    }
    if (mf_tok_is(peek(p, 0), ",")) take(p);
    t = peek(p, 0);
    if (!mf_tok_is(t, ")")) return mf_error_close(p->c, t, "')'", what, open);
    take(p);
    memset(out, 0, sizeof *out);
    out->kind = MF_V_MODULE;
    out->pos = d->pos;
    out->module = mod;
    return true;
}

/* nn.Sequential(m0, m1, ...) or nn.Sequential(OrderedDict([...])), after its
 * '('. Children are attached as they come, named 0, 1, ... */
static bool sequential(cp *p, const dotted *d, mf_pos open, mf_value *out) {
    char what[260];
    snprintf(what, sizeof what, "%s(", d->text);
    int mod = mf_tree_add(p->t, p->c, false, NULL, "Sequential", 10, d->pos);
    if (mod < 0) return false;
    memset(out, 0, sizeof *out);
    out->kind = MF_V_MODULE;
    out->pos = d->pos;
    out->module = mod;
    for (int i = 0;; i++) {
        const mf_token *t = peek(p, 0);
        if (mf_tok_is(t, ")")) {
            take(p);
            return true;
        }
        if (t->kind == MF_T_EOF) return mf_error_close(p->c, t, "')'", what, open);
        if (t->kind == MF_T_NAME && mf_tok_is(peek(p, 1), "="))
            return mf_error(p->c, t->pos, CNN_STATUS_INVALID_ARGUMENT,
                            "Sequential takes modules, not keyword arguments");
        if (mf_tok_is(t, "*") || mf_tok_is(t, "**"))
            return mf_error(p->c, t->pos, CNN_STATUS_UNSUPPORTED,
                            "'%.*s' arguments are not supported: write the modules out",
                            (int)t->len, t->s);
        mf_value v;
        if (!expr(p, &v)) return false;
        if (v.kind != MF_V_MODULE) {
            char dv[64];
            mf_value_describe(&v, dv, sizeof dv);
            return mf_error(p->c, v.pos, CNN_STATUS_INVALID_ARGUMENT,
                            "Sequential's arguments must be modules, got %s", dv);
        }
        if (!strcmp(p->t->mods[v.module].type, "OrderedDict")) {
            if (i > 0 || !(mf_tok_is(peek(p, 0), ")") ||
                           (mf_tok_is(peek(p, 0), ",") && mf_tok_is(peek(p, 1), ")"))))
                return mf_error(p->c, v.pos, CNN_STATUS_INVALID_ARGUMENT,
                                "an OrderedDict must be Sequential's only argument");
            /* The OrderedDict's container, with its named children, is the Sequential;
             * the one made above stays unused. */
            mf_mod *od = &p->t->mods[v.module];
            snprintf(od->type, sizeof od->type, "Sequential");
            od->pos = d->pos;
            out->module = v.module;
        } else {
            char name[16];
            int n = snprintf(name, sizeof name, "%d", i);
            if (!mf_tree_attach(p->t, p->c, mod, v.module, name, (size_t)n, v.pos)) return false;
        }
        t = peek(p, 0);
        if (mf_tok_is(t, ","))
            take(p);
        else if (!mf_tok_is(t, ")"))
            return mf_error_close(p->c, t, "',' or ')'", what, open);
    }
}

static bool call(cp *p, dotted *d, mf_value *out) {
    take(p); /* '(' */
    char what[260];
    snprintf(what, sizeof what, "%s(", d->text);
    if (d->head && d->head->kind == SYM_CLASS)
        return mf_error(p->c, d->pos, CNN_STATUS_UNSUPPORTED,
                        "%s(...) is only supported as the whole model: 'net = %s(...)'", d->text,
                        d->text);
    if (!strcmp(d->path, "collections.OrderedDict")) return ordered_dict(p, d, d->pos, out);
    const char *cls = nn_class(d->path);
    if (cls && !strcmp(cls, "Sequential")) return sequential(p, d, d->pos, out);
    if (!cls)
        return mf_error(p->c, d->pos, CNN_STATUS_UNSUPPORTED,
                        "calling '%s' is not supported: a model file calls nn.<layer>(...), "
                        "nn.Sequential(...) and OrderedDict(...)",
                        d->text);
    cnn_op op = mf_layer_op(cls, strlen(cls));
    if (op == CNN_OP_COUNT) return mf_error_unsupported_layer(p->c, d->pos, cls, strlen(cls), true);
    mf_arg args[MF_MAX_ARGS];
    int nargs;
    cnn_layer L;
    if (!mf_parse_args(&p->ts, p->c, what, d->pos, code_value, p, args, &nargs) ||
        !mf_make_layer(p->c, op, d->pos, args, nargs, &L))
        return false;
    int mod = mf_tree_add(p->t, p->c, true, &L, cls, strlen(cls), d->pos);
    if (mod < 0) return false;
    memset(out, 0, sizeof *out);
    out->kind = MF_V_MODULE;
    out->pos = d->pos;
    out->module = mod;
    return true;
}

/* ---- Statements --------------------------------------------------------- */

/* The end of a simple statement: a line break, ';' or the end of the file. */
static bool end_statement(cp *p) {
    const mf_token *t = peek(p, 0);
    p->ended_line = !mf_tok_is(t, ";");
    if (t->kind == MF_T_NEWLINE || mf_tok_is(t, ";")) {
        take(p);
        return true;
    }
    if (t->kind == MF_T_EOF || t->kind == MF_T_DEDENT) return true;
    return unexpected(p, t, "the end of the statement");
}

static bool unsupported_statement(cp *p, const mf_token *t, const char *where) {
    return mf_error(p->c, t->pos, CNN_STATUS_UNSUPPORTED, "'%.*s' statements are not supported %s",
                    (int)(t->len > 20 ? 20 : t->len), t->s, where);
}

/* Skips a block after its ':': an indented suite or the rest of the line. */
static bool skip_block(cp *p) {
    const mf_token *t = peek(p, 0);
    if (t->kind != MF_T_NEWLINE) {
        while (t->kind != MF_T_NEWLINE && t->kind != MF_T_EOF) {
            take(p);
            t = peek(p, 0);
        }
        if (t->kind == MF_T_NEWLINE) take(p);
        return !mf_failed(p->c);
    }
    take(p);
    t = peek(p, 0);
    if (t->kind != MF_T_INDENT) return unexpected(p, t, "an indented block");
    take(p);
    for (int level = 1; level > 0;) {
        mf_token k = take(p);
        if (k.kind == MF_T_INDENT) level++;
        if (k.kind == MF_T_DEDENT) level--;
        if (k.kind == MF_T_EOF)
            return !mf_failed(p->c) && unexpected(p, &k, "the end of the block");
    }
    return true;
}

/* Skips tokens up to the ':' that ends a def or class header. */
static bool skip_to_colon(cp *p) {
    int brackets = 0;
    for (;;) {
        const mf_token *t = peek(p, 0);
        if (t->kind == MF_T_EOF || t->kind == MF_T_NEWLINE) return unexpected(p, t, "':'");
        if (brackets == 0 && mf_tok_is(t, ":")) {
            take(p);
            return true;
        }
        if (mf_tok_is(t, "(") || mf_tok_is(t, "[") || mf_tok_is(t, "{")) brackets++;
        if (mf_tok_is(t, ")") || mf_tok_is(t, "]") || mf_tok_is(t, "}")) brackets--;
        take(p);
    }
}

/* import a.b [as c], ... / from a.b import c [as d], ... / from a import * */
static bool import_statement(cp *p) {
    mf_token kw = take(p);
    bool from = mf_tok_name_is(&kw, "from");
    char module[MF_MAX_NAME] = "";
    for (;;) {
        size_t o = 0;
        module[0] = 0;
        while (mf_tok_is(peek(p, 0), ".") || mf_tok_is(peek(p, 0), "...")) {
            mf_token dot = take(p);
            o += (size_t)snprintf(module + o, sizeof module - o, "%.*s", (int)dot.len, dot.s);
            if (o >= sizeof module) o = sizeof module - 1;
        }
        mf_token first = *peek(p, 0);
        if (first.kind == MF_T_NAME) {
            for (;;) {
                mf_token n = take(p);
                if (n.kind != MF_T_NAME) return unexpected(p, &n, "a module name");
                o += (size_t)snprintf(module + o, sizeof module - o, "%.*s",
                                      (int)(n.len > 60 ? 60 : n.len), n.s);
                if (o >= sizeof module) o = sizeof module - 1;
                if (!mf_tok_is(peek(p, 0), ".")) break;
                take(p);
                o += (size_t)snprintf(module + o, sizeof module - o, ".");
                if (o >= sizeof module) o = sizeof module - 1;
            }
        } else if (!from || o == 0) {
            return unexpected(p, &first, "a module name");
        }
        if (from) break;
        /* import a.b.c binds a; import a.b.c as x binds x to a.b.c. */
        const char *dot = strchr(module, '.');
        const char *bound = module;
        size_t blen = dot ? (size_t)(dot - module) : strlen(module);
        mf_pos pos = first.pos;
        if (mf_tok_name_is(peek(p, 0), "as")) {
            take(p);
            mf_token alias = take(p);
            if (!expect_name(p, &alias, "a name after 'as'")) return false;
            bound = alias.s;
            blen = alias.len;
            pos = alias.pos;
            sym *s = bind(p, &p->globals, bound, blen, pos);
            if (!s) return false;
            s->kind = SYM_PATH;
            snprintf(s->path, sizeof s->path, "%s", module);
        } else {
            sym *s = bind(p, &p->globals, bound, blen, pos);
            if (!s) return false;
            s->kind = SYM_PATH;
            snprintf(s->path, sizeof s->path, "%.*s", (int)blen, module);
        }
        if (!mf_tok_is(peek(p, 0), ",")) return end_statement(p);
        take(p);
    }
    mf_token imp = take(p);
    if (!mf_tok_name_is(&imp, "import")) return unexpected(p, &imp, "'import'");
    bool parens = mf_tok_is(peek(p, 0), "(");
    mf_pos open = peek(p, 0)->pos;
    if (parens) take(p);
    if (mf_tok_is(peek(p, 0), "*")) {
        mf_token star = take(p);
        if (strcmp(module, "torch.nn") != 0)
            return mf_error(p->c, star.pos, CNN_STATUS_UNSUPPORTED,
                            "'from %s import *' is not supported (only from torch.nn)", module);
        /* Every torch.nn class name cnnkit reads, bound to its path. */
        for (int i = 0; i <= CNN_OP_COUNT; i++) {
            const char *n = i < CNN_OP_COUNT ? cnn_op_name((cnn_op)i) : "Sequential";
            sym *s = bind(p, &p->globals, n, strlen(n), star.pos);
            if (!s) return false;
            s->kind = SYM_PATH;
            snprintf(s->path, sizeof s->path, "torch.nn.%s", n);
        }
        sym *s = bind(p, &p->globals, "Module", 6, star.pos);
        if (!s) return false;
        s->kind = SYM_PATH;
        snprintf(s->path, sizeof s->path, "torch.nn.Module");
        return end_statement(p);
    }
    for (;;) {
        mf_token n = take(p);
        if (n.kind != MF_T_NAME) return unexpected(p, &n, "a name to import");
        mf_token bound = n;
        if (mf_tok_name_is(peek(p, 0), "as")) {
            take(p);
            bound = take(p);
            if (!expect_name(p, &bound, "a name after 'as'")) return false;
        }
        sym *s = bind(p, &p->globals, bound.s, bound.len, bound.pos);
        if (!s) return false;
        s->kind = SYM_PATH;
        size_t ml = strlen(module);
        if (ml + 1 + n.len >= sizeof s->path)
            return mf_error(p->c, n.pos, CNN_STATUS_UNSUPPORTED, "import path too long");
        memcpy(s->path, module, ml);
        s->path[ml] = '.';
        memcpy(s->path + ml + 1, n.s, n.len);
        s->path[ml + 1 + n.len] = 0;
        if (!mf_tok_is(peek(p, 0), ",")) break;
        take(p);
        if (parens && mf_tok_is(peek(p, 0), ")")) break;
    }
    if (parens) {
        const mf_token *t = peek(p, 0);
        if (!mf_tok_is(t, ")")) return mf_error_close(p->c, t, "')'", "(", open);
        take(p);
    }
    return end_statement(p);
}

static bool set_model(cp *p, mf_pos pos, int mod) {
    if (p->have_model)
        return mf_error(p->c, pos, CNN_STATUS_UNSUPPORTED,
                        "a second model: this file already defines one at %d:%d, and a model "
                        "file defines exactly one",
                        p->model_pos.line, p->model_pos.col);
    if (mod >= 0 && p->t->mods[mod].leaf)
        return mf_error(p->c, pos, CNN_STATUS_UNSUPPORTED,
                        "a single layer is not a model: wrap it in nn.Sequential(...)");
    p->have_model = true;
    p->model_pos = pos;
    p->model_mod = mod;
    return true;
}

/* net = LeNet(...) / LeNet(...): the class, instantiated with these arguments. */
static bool instantiate(cp *p, mf_pos pos) {
    dotted d;
    if (!read_dotted(p, &d, false)) return false;
    take(p); /* '(' */
    if (p->instantiated)
        return mf_error(p->c, pos, CNN_STATUS_UNSUPPORTED,
                        "a second model: %s is already instantiated at %d:%d, and a model file "
                        "defines exactly one",
                        p->class_name, p->inst_pos.line, p->inst_pos.col);
    char what[260];
    snprintf(what, sizeof what, "%s(", d.text);
    mf_arg args[MF_MAX_ARGS];
    int nargs;
    if (!mf_parse_args(&p->ts, p->c, what, d.pos, code_value, p, args, &nargs)) return false;
    p->instantiated = true;
    p->inst_pos = pos;
    int npos = 0;
    for (int i = 0; i < nargs; i++) {
        const mf_arg *a = &args[i];
        if (a->v.kind == MF_V_MODULE)
            return mf_error(p->c, a->v.pos, CNN_STATUS_UNSUPPORTED,
                            "modules as arguments of %s(...) are not supported", p->class_name);
        int k = -1;
        if (!a->kw) {
            if (npos >= p->nparams)
                return mf_error(p->c, a->v.pos, CNN_STATUS_INVALID_ARGUMENT,
                                "%s() takes %d argument%s", p->class_name, p->nparams,
                                p->nparams == 1 ? "" : "s");
            k = npos++;
        } else {
            for (int j = 0; j < p->nparams && k < 0; j++)
                if (name_eq(p->params[j].name, a->kw, a->kwlen)) k = j;
            if (k < 0)
                return mf_error(p->c, a->kwpos, CNN_STATUS_INVALID_ARGUMENT,
                                "%s.__init__ has no parameter '%.*s'", p->class_name, (int)a->kwlen,
                                a->kw);
            if (p->inst_given[k])
                return mf_error(p->c, a->kwpos, CNN_STATUS_INVALID_ARGUMENT,
                                "%s() got two values for '%s'", p->class_name, p->params[k].name);
        }
        p->inst_given[k] = true;
        p->inst_val[k] = a->v;
    }
    return end_statement(p);
}

/* A top-level statement that starts with a name or a value. */
static bool top_assignment_or_expr(cp *p) {
    const mf_token *t = peek(p, 0);
    bool assign = t->kind == MF_T_NAME && mf_tok_is(peek(p, 1), "=");
    mf_token target = *t;
    if (assign) {
        if (!expect_name(p, t, "a name to assign to")) return false;
        take(p);
        take(p);
    }
    t = peek(p, 0);
    mf_pos pos = t->pos;
    if (t->kind == MF_T_NAME) {
        sym *s = lookup(p, t->s, t->len);
        if (s && s->kind == SYM_CLASS && mf_tok_is(peek(p, 1), "(")) {
            if (assign) {
                sym *m = bind(p, &p->globals, target.s, target.len, target.pos);
                if (!m) return false;
                m->kind = SYM_MODEL;
            }
            return instantiate(p, pos);
        }
    }
    mf_value v;
    if (!expr(p, &v)) return false;
    if (v.kind == MF_V_MODULE) {
        if (!strcmp(p->t->mods[v.module].type, "OrderedDict"))
            return mf_error(p->c, v.pos, CNN_STATUS_UNSUPPORTED,
                            "an OrderedDict is not a model: pass it to nn.Sequential(...)");
        if (!set_model(p, pos, v.module)) return false;
        if (assign) {
            sym *s = bind(p, &p->globals, target.s, target.len, target.pos);
            if (!s) return false;
            s->kind = SYM_MODEL;
        }
    } else if (assign) {
        sym *s = bind(p, &p->globals, target.s, target.len, target.pos);
        if (!s) return false;
        s->kind = SYM_CONST;
        s->v = v;
    } else {
        return mf_error(p->c, pos, CNN_STATUS_UNSUPPORTED,
                        "a statement that defines nothing: a model file holds imports, "
                        "constants and one model");
    }
    return end_statement(p);
}

/* def __init__(self, a, b=1, c: int = 2) -> None: the parameters after self. */
static bool init_params(cp *p) {
    mf_token open = take(p);
    if (!mf_tok_is(&open, "(")) return unexpected(p, &open, "'('");
    mf_token self = take(p);
    if (!expect_name(p, &self, "'self'")) return false;
    if (self.len >= MF_MAX_NAME)
        return mf_error(p->c, self.pos, CNN_STATUS_UNSUPPORTED, "name too long");
    tok_text(&self, p->self_name, sizeof p->self_name);
    for (;;) {
        const mf_token *t = peek(p, 0);
        if (mf_tok_is(t, ")")) break;
        if (!mf_tok_is(t, ",")) return mf_error_close(p->c, t, "',' or ')'", "__init__(", open.pos);
        take(p);
        t = peek(p, 0);
        if (mf_tok_is(t, ")")) break;
        if (t->kind != MF_T_NAME)
            return mf_error(p->c, t->pos, CNN_STATUS_UNSUPPORTED,
                            "__init__'s parameters are names with optional defaults; '%.*s' is "
                            "not supported",
                            (int)(t->len > 20 ? 20 : t->len), t->s);
        if (p->nparams == MF_MAX_ARGS)
            return mf_error(p->c, t->pos, CNN_STATUS_UNSUPPORTED, "more than %d parameters",
                            MF_MAX_ARGS);
        mf_token n = take(p);
        if (!expect_name(p, &n, "a parameter name")) return false;
        if (n.len >= MF_MAX_NAME)
            return mf_error(p->c, n.pos, CNN_STATUS_UNSUPPORTED, "name too long");
        param *pa = &p->params[p->nparams++];
        memset(pa, 0, sizeof *pa);
        tok_text(&n, pa->name, sizeof pa->name);
        pa->pos = n.pos;
        if (mf_tok_is(peek(p, 0), ":")) { /* an annotation: not read */
            take(p);
            int brackets = 0;
            for (;;) {
                t = peek(p, 0);
                if (t->kind == MF_T_EOF)
                    return mf_error_close(p->c, t, "')'", "__init__(", open.pos);
                if (brackets == 0 && (mf_tok_is(t, ",") || mf_tok_is(t, "=") || mf_tok_is(t, ")")))
                    break;
                if (mf_tok_is(t, "(") || mf_tok_is(t, "[") || mf_tok_is(t, "{")) brackets++;
                if (mf_tok_is(t, ")") || mf_tok_is(t, "]") || mf_tok_is(t, "}")) brackets--;
                take(p);
            }
        }
        if (mf_tok_is(peek(p, 0), "=")) {
            take(p);
            if (!expr(p, &pa->def)) return false;
            if (pa->def.kind == MF_V_MODULE)
                return mf_error(p->c, pa->def.pos, CNN_STATUS_UNSUPPORTED,
                                "modules as default values are not supported");
            pa->has_default = true;
        } else if (p->nparams > 1 && p->params[p->nparams - 2].has_default) {
            return mf_error(p->c, n.pos, CNN_STATUS_FORMAT,
                            "a parameter without a default follows one with a default");
        }
    }
    take(p);
    return skip_to_colon(p);
}

static bool class_statement(cp *p) {
    mf_token kw = take(p);
    mf_token name = take(p);
    if (!expect_name(p, &name, "the class name")) return false;
    if (p->have_class)
        return mf_error(p->c, kw.pos, CNN_STATUS_UNSUPPORTED,
                        "a second class: this file already defines %s at %d:%d, and cnnkit reads "
                        "one nn.Module class per file",
                        p->class_name, p->class_pos.line, p->class_pos.col);
    if (name.len >= MF_MAX_NAME)
        return mf_error(p->c, name.pos, CNN_STATUS_UNSUPPORTED, "class name too long");
    if (mf_layer_op(name.s, name.len) != CNN_OP_COUNT)
        return mf_error(p->c, name.pos, CNN_STATUS_UNSUPPORTED,
                        "a model class named like the layer %.*s is not supported", (int)name.len,
                        name.s);
    if (!set_model(p, kw.pos, -1)) return false;
    p->have_class = true;
    tok_text(&name, p->class_name, sizeof p->class_name);
    p->class_pos = name.pos;
    const mf_token *t = peek(p, 0);
    bool module_base = false;
    mf_pos base_pos = t->pos;
    if (mf_tok_is(t, "(")) {
        take(p);
        t = peek(p, 0);
        base_pos = t->pos;
        if (t->kind == MF_T_NAME) {
            dotted d;
            if (!read_dotted(p, &d, true)) return false;
            module_base = !strcmp(d.path, "torch.nn.Module");
        }
        if (!expect_op(p, ")", "')' after the base class")) return false;
    }
    if (!module_base)
        return mf_error(p->c, base_pos, CNN_STATUS_UNSUPPORTED,
                        "class %s must derive from nn.Module, and only from it", p->class_name);
    if (!expect_op(p, ":", "':'")) return false;
    sym *s = bind(p, &p->globals, name.s, name.len, name.pos);
    if (!s) return false;
    s->kind = SYM_CLASS;
    /* The body: methods (only __init__ is read), docstrings, pass. */
    t = peek(p, 0);
    if (t->kind != MF_T_NEWLINE) {
        while (mf_tok_name_is(peek(p, 0), "pass") || peek(p, 0)->kind == MF_T_STRING) {
            take(p);
            if (!mf_tok_is(peek(p, 0), ";")) break;
            take(p);
        }
        return end_statement(p);
    }
    take(p);
    t = peek(p, 0);
    if (t->kind != MF_T_INDENT) return unexpected(p, t, "an indented block");
    take(p);
    for (;;) {
        t = peek(p, 0);
        if (t->kind == MF_T_DEDENT) {
            take(p);
            return true;
        }
        if (t->kind == MF_T_EOF) return !mf_failed(p->c);
        if (t->kind == MF_T_NEWLINE) {
            take(p);
        } else if (t->kind == MF_T_STRING || mf_tok_name_is(t, "pass")) {
            take(p);
            if (!end_statement(p)) return false;
        } else if (mf_tok_name_is(t, "def")) {
            take(p);
            mf_token m = take(p);
            if (m.kind != MF_T_NAME) return unexpected(p, &m, "the method's name");
            if (mf_tok_name_is(&m, "__init__")) {
                if (p->have_init)
                    return mf_error(p->c, m.pos, CNN_STATUS_UNSUPPORTED,
                                    "a second __init__ (the first is at %d:%d)", p->init_pos.line,
                                    p->init_pos.col);
                p->have_init = true;
                p->init_pos = m.pos;
                if (!init_params(p)) return false;
                p->init_body = p->ts;
            } else if (!skip_to_colon(p)) {
                return false;
            }
            if (!skip_block(p)) return false;
        } else if (mf_tok_is(t, "@")) {
            /* A decorated method is skipped like any other; __init__ must not be one. */
            while (peek(p, 0)->kind != MF_T_NEWLINE && peek(p, 0)->kind != MF_T_EOF)
                take(p);
            take(p);
            if (!mf_tok_name_is(peek(p, 0), "def") && !mf_tok_is(peek(p, 0), "@"))
                return unexpected(p, peek(p, 0), "a method after the decorator");
            if (mf_tok_name_is(peek(p, 1), "__init__"))
                return mf_error(p->c, t->pos, CNN_STATUS_UNSUPPORTED,
                                "a decorated __init__ is not supported");
        } else {
            return mf_error(p->c, t->pos, CNN_STATUS_UNSUPPORTED,
                            "only methods are supported in the body of class %s (class attributes "
                            "are not)",
                            p->class_name);
        }
    }
}

/* super().__init__() or super(Class, self).__init__(), 'super' next. */
static bool super_call(cp *p) {
    mf_token sup = take(p);
    if (!expect_op(p, "(", "'('")) return false;
    if (!mf_tok_is(peek(p, 0), ")")) {
        mf_token cls = take(p);
        if (!mf_tok_name_is(&cls, p->class_name))
            return mf_error(p->c, cls.pos, CNN_STATUS_INVALID_ARGUMENT, "expected super(%s, %s)",
                            p->class_name, p->self_name);
        if (!expect_op(p, ",", "','")) return false;
        mf_token self = take(p);
        if (!mf_tok_name_is(&self, p->self_name))
            return mf_error(p->c, self.pos, CNN_STATUS_INVALID_ARGUMENT, "expected super(%s, %s)",
                            p->class_name, p->self_name);
    }
    if (!expect_op(p, ")", "')'") || !expect_op(p, ".", "'.__init__()'")) return false;
    mf_token init = take(p);
    if (!mf_tok_name_is(&init, "__init__"))
        return mf_error(p->c, sup.pos, CNN_STATUS_UNSUPPORTED,
                        "only super().__init__() is supported");
    if (!expect_op(p, "(", "'('")) return false;
    if (!mf_tok_is(peek(p, 0), ")"))
        return mf_error(p->c, peek(p, 0)->pos, CNN_STATUS_UNSUPPORTED,
                        "super().__init__() takes no arguments here");
    take(p);
    return end_statement(p);
}

/* The body of __init__, from the snapshot taken after its ':'. */
static bool run_init(cp *p) {
    p->locals.n = 0;
    for (int i = 0; i < p->nparams; i++) {
        const param *pa = &p->params[i];
        if (!p->inst_given[i] && !pa->has_default)
            return mf_error(p->c, p->instantiated ? p->inst_pos : pa->pos,
                            CNN_STATUS_INVALID_ARGUMENT,
                            "%s needs a value for '%s': give it a default in __init__ or pass "
                            "it, as in 'net = %s(%s=...)'",
                            p->class_name, pa->name, p->class_name, pa->name);
        sym *s = bind(p, &p->locals, pa->name, strlen(pa->name), pa->pos);
        if (!s) return false;
        s->kind = SYM_CONST;
        s->v = p->inst_given[i] ? p->inst_val[i] : pa->def;
    }
    p->ts = p->init_body;
    p->in_init = true;
    bool inited = false;
    bool one_line = peek(p, 0)->kind != MF_T_NEWLINE;
    if (!one_line) {
        take(p);
        const mf_token *t = peek(p, 0);
        if (t->kind != MF_T_INDENT) return unexpected(p, t, "an indented block");
        take(p);
    }
    for (p->ended_line = false; !(one_line && p->ended_line);) {
        const mf_token *t = peek(p, 0);
        if (t->kind == MF_T_DEDENT || t->kind == MF_T_EOF) break;
        if (t->kind == MF_T_NEWLINE) {
            take(p);
            continue;
        }
        if (t->kind == MF_T_STRING || mf_tok_name_is(t, "pass")) {
            take(p);
            if (!end_statement(p)) return false;
        } else if (mf_tok_name_is(t, "super")) {
            if (!super_call(p)) return false;
            inited = true;
        } else if (mf_tok_name_is(t, p->self_name) && mf_tok_is(peek(p, 1), ".") &&
                   peek(p, 2)->kind == MF_T_NAME && mf_tok_is(peek(p, 3), "=")) {
            take(p);
            take(p);
            mf_token attr = take(p);
            if (!expect_name(p, &attr, "an attribute name")) return false;
            take(p);
            mf_value v;
            if (!expr(p, &v)) return false;
            if (v.kind == MF_V_MODULE) {
                if (!strcmp(p->t->mods[v.module].type, "OrderedDict"))
                    return mf_error(
                        p->c, v.pos, CNN_STATUS_UNSUPPORTED,
                        "an OrderedDict is not a module: pass it to nn.Sequential(...)");
                if (!inited)
                    return mf_error(p->c, attr.pos, CNN_STATUS_INVALID_ARGUMENT,
                                    "cannot assign module before Module.__init__() call: call "
                                    "super().__init__() first");
                if (!mf_tree_attach(p->t, p->c, 0, v.module, attr.s, attr.len, attr.pos))
                    return false;
            }
            /* A plain attribute (self.num_classes = 10) is not part of the model. */
            if (!end_statement(p)) return false;
        } else if (t->kind == MF_T_NAME && mf_tok_is(peek(p, 1), "=") && !is_keyword(t)) {
            mf_token n = take(p);
            if (!expect_name(p, &n, "a name to assign to")) return false;
            take(p);
            mf_value v;
            if (!expr(p, &v)) return false;
            if (v.kind == MF_V_MODULE)
                return mf_error(p->c, n.pos, CNN_STATUS_UNSUPPORTED,
                                "modules must be assigned to %s.NAME to be part of the model",
                                p->self_name);
            sym *s = bind(p, &p->locals, n.s, n.len, n.pos);
            if (!s) return false;
            s->kind = SYM_CONST;
            s->v = v;
            if (!end_statement(p)) return false;
        } else if (is_keyword(t) || mf_tok_name_is(t, "def") || mf_tok_name_is(t, "class") ||
                   mf_tok_name_is(t, "import") || mf_tok_name_is(t, "from")) {
            return unsupported_statement(p, t, "in __init__: it assigns modules to self.NAME");
        } else {
            mf_value v;
            mf_pos pos = t->pos;
            if (!expr(p, &v)) return false;
            return mf_error(
                p->c, pos, CNN_STATUS_UNSUPPORTED,
                v.kind == MF_V_MODULE
                    ? "a module that is not assigned to %s.NAME is not part of the model"
                    : "a statement that assigns nothing (%s.NAME = module is what "
                      "__init__ holds)",
                p->self_name);
        }
    }
    p->in_init = false;
    if (!inited)
        return mf_error(p->c, p->init_pos, CNN_STATUS_INVALID_ARGUMENT,
                        "%s.__init__ never calls super().__init__()", p->class_name);
    return true;
}

bool mf_parse_code(mf_ctx *c, mf_tree *tree) {
    cp *p = calloc(1, sizeof *p); /* the scopes make it too big for the stack */
    if (!p) return mf_error(c, (mf_pos){1, 1, 0}, CNN_STATUS_NO_MEMORY, "out of memory");
    p->c = c;
    p->t = tree;
    p->model_mod = -1;
    mf_stream_init(&p->ts, c, true);
    bool ok = mf_tree_add(tree, c, false, NULL, "", 0, (mf_pos){1, 1, 0}) == 0;
    while (ok) {
        const mf_token *t = peek(p, 0);
        if (t->kind == MF_T_EOF) break;
        if (t->kind == MF_T_NEWLINE) {
            take(p);
        } else if (t->kind == MF_T_INDENT) {
            ok = mf_error(c, t->pos, CNN_STATUS_FORMAT, "unexpected indent");
        } else if (t->kind == MF_T_DEDENT) {
            take(p);
        } else if (mf_tok_name_is(t, "import") || mf_tok_name_is(t, "from")) {
            ok = import_statement(p);
        } else if (mf_tok_name_is(t, "class")) {
            ok = class_statement(p);
        } else if (mf_tok_name_is(t, "def")) {
            ok = mf_error(c, t->pos, CNN_STATUS_UNSUPPORTED,
                          "functions are not supported: define the model with nn.Sequential(...) "
                          "or an nn.Module class");
        } else if (mf_tok_is(t, "@")) {
            ok = mf_error(c, t->pos, CNN_STATUS_UNSUPPORTED, "decorators are not supported");
        } else if (is_keyword(t)) {
            ok = unsupported_statement(p, t,
                                       "in a model file: it defines the model with "
                                       "nn.Sequential(...) or an nn.Module class");
        } else if (t->kind == MF_T_STRING) {
            take(p);
            ok = end_statement(p);
        } else if (mf_tok_name_is(t, "pass")) {
            take(p);
            ok = end_statement(p);
        } else {
            ok = top_assignment_or_expr(p);
        }
    }
    if (ok && !mf_failed(c)) {
        const mf_token *end = peek(p, 0);
        if (!p->have_model) {
            ok = mf_error(c, end->pos, CNN_STATUS_FORMAT,
                          "no model: a model file defines nn.Sequential(...) or a class derived "
                          "from nn.Module");
        } else if (p->have_class) {
            if (!p->have_init)
                ok = mf_error(c, p->class_pos, CNN_STATUS_INVALID_ARGUMENT,
                              "class %s has no __init__ that defines its modules", p->class_name);
            else
                ok = run_init(p);
            snprintf(tree->mods[0].type, sizeof tree->mods[0].type, "%s", p->class_name);
            tree->mods[0].pos = p->class_pos;
        } else {
            tree->top = p->model_mod; /* the Sequential itself is the model */
        }
    }
    free(p);
    return ok && !mf_failed(c);
}
