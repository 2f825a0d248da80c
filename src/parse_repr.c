/* parse_repr.c - reads a model as print(model) shows it:
 *
 *   LeNet(
 *     (net): Sequential(
 *       (0): Conv2d(1, 6, kernel_size=(5, 5), stride=(1, 1), padding=(2, 2))
 *       ...
 *
 * The top module may have any class name; below it containers are
 * Sequential and leaves are the supported layers, with their arguments in any
 * form the constructor accepts (keyword or positional, int or tuple), since
 * PyTorch prints constructor arguments. Line breaks and indentation are not
 * significant; '#' comments are skipped. */
#include <stdio.h>
#include <string.h>

#include "modelfile_impl.h"

typedef struct rp {
    mf_ctx *c;
    mf_stream ts;
    mf_tree *t;
} rp;

/* An argument value: a number (with a sign), True, False, None, a word
 * (padding=same), a string, or a tuple of scalars. */
static bool scalar_or_tuple(mf_stream *ts, mf_ctx *c, mf_value *out, bool in_tuple) {
    memset(out, 0, sizeof *out);
    mf_token t = mf_take(ts);
    out->pos = t.pos;
    bool neg = false;
    if (mf_tok_is(&t, "-") || mf_tok_is(&t, "+")) {
        neg = mf_tok_is(&t, "-");
        t = mf_take(ts);
        if (t.kind != MF_T_INT && t.kind != MF_T_FLOAT) {
            char got[64];
            mf_tok_describe(&t, got, sizeof got);
            return mf_error(c, t.pos, CNN_STATUS_FORMAT, "expected a number after the sign, got %s",
                            got);
        }
    }
    switch (t.kind) {
    case MF_T_INT:
        if (t.too_big)
            return mf_error(c, t.pos, CNN_STATUS_UNSUPPORTED, "integer %.*s is too large",
                            (int)(t.len > 40 ? 40 : t.len), t.s);
        out->kind = MF_V_INT;
        out->i = neg ? -t.i : t.i;
        return true;
    case MF_T_FLOAT:
        out->kind = MF_V_FLOAT;
        out->f = neg ? -t.f : t.f;
        return true;
    case MF_T_STRING:
        if (in_tuple) break;
        if (!t.str_plain)
            return mf_error(c, t.pos, CNN_STATUS_UNSUPPORTED,
                            "strings with escapes or prefixes are not supported");
        out->kind = MF_V_STR;
        out->s = t.str;
        out->slen = t.strlen;
        return true;
    case MF_T_NAME:
        if (mf_tok_name_is(&t, "True") || mf_tok_name_is(&t, "False")) {
            out->kind = MF_V_BOOL;
            out->i = mf_tok_name_is(&t, "True");
            return true;
        }
        if (mf_tok_name_is(&t, "None")) {
            out->kind = MF_V_NONE;
            return true;
        }
        if (in_tuple) break;
        if (mf_tok_is(mf_peek(ts, 0), "(") || mf_tok_is(mf_peek(ts, 0), "."))
            return mf_error(c, t.pos, CNN_STATUS_UNSUPPORTED,
                            "'%.*s%s' is not supported in a printed model's arguments: write "
                            "numbers, True, False, None or tuples",
                            (int)(t.len > 40 ? 40 : t.len), t.s,
                            mf_tok_is(mf_peek(ts, 0), "(") ? "(" : ".");
        out->kind = MF_V_WORD;
        out->s = t.s;
        out->slen = t.len;
        return true;
    case MF_T_OP:
        if (!mf_tok_is(&t, "(")) break;
        if (in_tuple)
            return mf_error(c, t.pos, CNN_STATUS_UNSUPPORTED, "nested tuples are not supported");
        out->kind = MF_V_TUPLE;
        for (;;) {
            const mf_token *n = mf_peek(ts, 0);
            if (mf_tok_is(n, ")")) {
                mf_take(ts);
                return true;
            }
            if (n->kind == MF_T_EOF) return mf_error_close(c, n, "')'", "(", out->pos);
            mf_value item;
            if (!scalar_or_tuple(ts, c, &item, true)) return false;
            if (out->n < MF_TUPLE_MAX) out->item[out->n] = (mf_scalar){item.kind, item.i, item.f};
            out->n++;
            n = mf_peek(ts, 0);
            if (mf_tok_is(n, ",")) {
                mf_take(ts);
            } else if (!mf_tok_is(n, ")")) {
                return mf_error_close(c, n, "',' or ')'", "(", out->pos);
            } else if (out->n == 1) {
                /* (x) without a comma is x itself, as in Python. */
                mf_take(ts);
                mf_pos pos = out->pos;
                *out = item;
                out->pos = pos;
                return true;
            }
        }
    default: break;
    }
    char got[64];
    mf_tok_describe(&t, got, sizeof got);
    return mf_error(c, t.pos, CNN_STATUS_FORMAT, "expected %s, got %s",
                    in_tuple ? "a number, True, False or None in the tuple" : "a value", got);
}

static bool repr_value(mf_stream *ts, mf_ctx *c, void *ud, mf_value *out) {
    (void)ud;
    return scalar_or_tuple(ts, c, out, false);
}

static bool container_body(rp *p, int mod, int depth, const char *what, mf_pos open);

/* "(name): Class(...)" inside container mod, the '(' already taken. */
static bool child(rp *p, int mod, int depth) {
    mf_stream *ts = &p->ts;
    mf_token name = mf_take(ts);
    if (name.kind != MF_T_NAME && name.kind != MF_T_INT) {
        char got[64];
        mf_tok_describe(&name, got, sizeof got);
        return mf_error(p->c, name.pos, CNN_STATUS_FORMAT,
                        "expected a module name, like (0) or (features), got %s", got);
    }
    mf_token t = mf_take(ts);
    if (!mf_tok_is(&t, ")"))
        return mf_error(p->c, t.pos, CNN_STATUS_FORMAT, "expected ')' after the module name '%.*s'",
                        (int)(name.len > 40 ? 40 : name.len), name.s);
    t = mf_take(ts);
    if (!mf_tok_is(&t, ":"))
        return mf_error(p->c, t.pos, CNN_STATUS_FORMAT, "expected ':' after '(%.*s)'",
                        (int)(name.len > 40 ? 40 : name.len), name.s);
    mf_token cls = mf_take(ts);
    if (cls.kind != MF_T_NAME) {
        char got[64];
        mf_tok_describe(&cls, got, sizeof got);
        return mf_error(p->c, cls.pos, CNN_STATUS_FORMAT,
                        "expected a module, like Conv2d(...) or Sequential(...), got %s", got);
    }
    mf_token open = mf_take(ts);
    if (!mf_tok_is(&open, "("))
        return mf_error(p->c, open.pos, CNN_STATUS_FORMAT, "expected '(' after '%.*s'",
                        (int)(cls.len > 40 ? 40 : cls.len), cls.s);
    char what[MF_MAX_NAME + 2];
    snprintf(what, sizeof what, "%.*s(", (int)(cls.len < MF_MAX_NAME ? cls.len : MF_MAX_NAME - 1),
             cls.s);
    cnn_op op = mf_layer_op(cls.s, cls.len);
    if (op != CNN_OP_COUNT) {
        mf_arg args[MF_MAX_ARGS];
        int nargs;
        cnn_layer L;
        if (!mf_parse_args(ts, p->c, what, cls.pos, repr_value, NULL, args, &nargs) ||
            !mf_make_layer(p->c, op, cls.pos, args, nargs, &L))
            return false;
        int leaf = mf_tree_add(p->t, p->c, true, &L, cls.s, cls.len, cls.pos);
        return leaf >= 0 && mf_tree_attach(p->t, p->c, mod, leaf, name.s, name.len, name.pos);
    }
    const mf_token *n0 = mf_peek(ts, 0);
    bool container = mf_tok_is(n0, ")") ||
                     (mf_tok_is(n0, "(") &&
                      (mf_peek(ts, 1)->kind == MF_T_NAME || mf_peek(ts, 1)->kind == MF_T_INT) &&
                      mf_tok_is(mf_peek(ts, 2), ")") && mf_tok_is(mf_peek(ts, 3), ":"));
    if (!mf_tok_name_is(&cls, "Sequential")) {
        if (container)
            return mf_error(p->c, cls.pos, CNN_STATUS_UNSUPPORTED,
                            "%.*s is not supported as a nested module: below the top, cnnkit "
                            "reads Sequential containers, whose children run in the order printed",
                            (int)(cls.len > 40 ? 40 : cls.len), cls.s);
        return mf_error_unsupported_layer(p->c, cls.pos, cls.s, cls.len, false);
    }
    if (depth >= MF_MAX_DEPTH)
        return mf_error(p->c, cls.pos, CNN_STATUS_UNSUPPORTED,
                        "containers nested more than %d deep", MF_MAX_DEPTH);
    int sub = mf_tree_add(p->t, p->c, false, NULL, cls.s, cls.len, cls.pos);
    return sub >= 0 && mf_tree_attach(p->t, p->c, mod, sub, name.s, name.len, name.pos) &&
           container_body(p, sub, depth + 1, what, cls.pos);
}

/* Children up to the ')' that closes the container opened at open. */
static bool container_body(rp *p, int mod, int depth, const char *what, mf_pos open) {
    for (;;) {
        const mf_token *t = mf_peek(&p->ts, 0);
        if (mf_tok_is(t, ")")) {
            mf_take(&p->ts);
            return true;
        }
        if (!mf_tok_is(t, "("))
            return mf_error_close(p->c, t, "'(name): module' or ')'", what, open);
        mf_take(&p->ts);
        if (!child(p, mod, depth)) return false;
    }
}

bool mf_parse_repr(mf_ctx *c, mf_tree *tree) {
    rp p;
    p.c = c;
    p.t = tree;
    mf_stream_init(&p.ts, c, false);
    mf_token cls = mf_take(&p.ts);
    if (cls.kind == MF_T_EOF && !mf_failed(c))
        return mf_error(c, cls.pos, CNN_STATUS_FORMAT,
                        "no model: expected a printed model, like 'LeNet(', or Python code");
    if (cls.kind != MF_T_NAME) {
        char got[64];
        mf_tok_describe(&cls, got, sizeof got);
        return mf_error(c, cls.pos, CNN_STATUS_FORMAT,
                        "expected the model's class name, like 'LeNet(' or 'Sequential(', got %s",
                        got);
    }
    mf_token open = mf_take(&p.ts);
    if (!mf_tok_is(&open, "("))
        return mf_error(c, open.pos, CNN_STATUS_FORMAT, "expected '(' after '%.*s'",
                        (int)(cls.len > 40 ? 40 : cls.len), cls.s);
    if (mf_layer_op(cls.s, cls.len) != CNN_OP_COUNT)
        return mf_error(c, cls.pos, CNN_STATUS_UNSUPPORTED,
                        "a single layer is not a model: the text starts with a class that "
                        "holds the layers, like 'Sequential(' followed by '(0): %.*s(...)'",
                        (int)cls.len, cls.s);
    char what[MF_MAX_NAME + 2];
    snprintf(what, sizeof what, "%.*s(", (int)(cls.len < MF_MAX_NAME ? cls.len : MF_MAX_NAME - 1),
             cls.s);
    if (mf_tree_add(tree, c, false, NULL, cls.s, cls.len, cls.pos) != 0) return false;
    if (!container_body(&p, 0, 0, what, cls.pos)) return false;
    mf_token end = mf_take(&p.ts);
    if (end.kind != MF_T_EOF) {
        char got[64];
        mf_tok_describe(&end, got, sizeof got);
        return mf_error(c, end.pos, CNN_STATUS_FORMAT,
                        "unexpected %s after the model: a model file holds one model", got);
    }
    return !mf_failed(c);
}
