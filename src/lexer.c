/* lexer.c - the tokenizer both model-file formats share: names, numbers as
 * Python writes them (16, 1_000, 0.5, 1e-05, .5), strings (so that they can
 * be reported, or skipped in methods that are ignored), operators, '#'
 * comments, and in layout mode Python's NEWLINE / INDENT / DEDENT. Every
 * token knows its line and column. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "modelfile_impl.h"

void mf_lex_init(mf_lexer *lx, mf_ctx *ctx, bool layout) {
    memset(lx, 0, sizeof *lx);
    lx->ctx = ctx;
    lx->line = lx->col = 1;
    lx->layout = layout;
    lx->line_start = true;
    lx->n_indent = 1; /* indent[0] = 0 */
    lx->last_end = (mf_pos){1, 1, 0};
    /* A UTF-8 byte order mark, as some editors write, is not part of the text. */
    if (ctx->len >= 3 && memcmp(ctx->src, "\xEF\xBB\xBF", 3) == 0) lx->pos = lx->last_end.off = 3;
}

static int cur(const mf_lexer *lx) {
    return lx->pos < lx->ctx->len ? (unsigned char)lx->ctx->src[lx->pos] : -1;
}

static int at(const mf_lexer *lx, size_t k) {
    return lx->pos + k < lx->ctx->len ? (unsigned char)lx->ctx->src[lx->pos + k] : -1;
}

static void advance(mf_lexer *lx) {
    if (lx->pos >= lx->ctx->len) return;
    unsigned char ch = (unsigned char)lx->ctx->src[lx->pos++];
    if (ch == '\n') {
        lx->line++;
        lx->col = 1;
    } else if ((ch & 0xC0) != 0x80) {
        lx->col++; /* one column per code point: continuation bytes do not count */
    }
}

static mf_pos here(const mf_lexer *lx) { return (mf_pos){lx->line, lx->col, lx->pos}; }

static bool is_name_start(int ch) {
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_';
}
static bool is_digit(int ch) { return ch >= '0' && ch <= '9'; }
static bool is_name_char(int ch) { return is_name_start(ch) || is_digit(ch); }

static mf_token make(const mf_lexer *lx, mf_tok_kind kind, mf_pos pos) {
    mf_token t = {0};
    t.kind = kind;
    t.pos = pos;
    t.s = lx->ctx->src + pos.off;
    t.len = lx->pos - pos.off;
    return t;
}

static mf_token fail(mf_lexer *lx, mf_pos pos, const char *fmt, const char *arg) {
    mf_error(lx->ctx, pos, CNN_STATUS_FORMAT, fmt, arg);
    mf_token t = {0};
    t.kind = MF_T_EOF;
    t.pos = pos;
    t.s = lx->ctx->src + pos.off;
    return t;
}

/* An unexpected byte, shown as the character when it is printable UTF-8. */
static mf_token bad_char(mf_lexer *lx) {
    mf_pos pos = here(lx);
    unsigned char ch = (unsigned char)lx->ctx->src[lx->pos];
    char shown[32];
    int n = ch < 0x80 ? 1 : ch >= 0xF0 ? 4 : ch >= 0xE0 ? 3 : ch >= 0xC2 ? 2 : 0;
    bool ok = n > 0 && lx->pos + (size_t)n <= lx->ctx->len && ch >= 0x20 && ch != 0x7F;
    for (int i = 1; ok && i < n; i++)
        ok = ((unsigned char)lx->ctx->src[lx->pos + (size_t)i] & 0xC0) == 0x80;
    if (ok)
        snprintf(shown, sizeof shown, "'%.*s'", n, lx->ctx->src + lx->pos);
    else
        snprintf(shown, sizeof shown, "byte 0x%02x", ch);
    return fail(lx, pos, "unexpected character %s", shown);
}

/* Digits with single underscores between them, as Python allows (1_000). */
static bool digits(mf_lexer *lx) {
    if (!is_digit(cur(lx))) return false;
    while (is_digit(cur(lx)) || (cur(lx) == '_' && is_digit(at(lx, 1)))) {
        if (cur(lx) == '_') advance(lx);
        advance(lx);
    }
    return true;
}

static mf_token number(mf_lexer *lx) {
    mf_pos pos = here(lx);
    bool is_float = false;
    if (cur(lx) == '0' && (at(lx, 1) == 'x' || at(lx, 1) == 'X' || at(lx, 1) == 'o' ||
                           at(lx, 1) == 'O' || at(lx, 1) == 'b' || at(lx, 1) == 'B'))
        return fail(lx, pos, "%s", "hexadecimal, octal and binary numbers are not supported");
    digits(lx);
    if (cur(lx) == '.' && !(at(lx, 1) == '.')) {
        is_float = true;
        advance(lx);
        if (is_digit(cur(lx))) digits(lx);
    }
    if (cur(lx) == 'e' || cur(lx) == 'E') {
        size_t k = 1;
        if (at(lx, 1) == '+' || at(lx, 1) == '-') k = 2;
        if (!is_digit(at(lx, k))) {
            while (is_name_char(cur(lx)))
                advance(lx);
            char text[64];
            snprintf(text, sizeof text, "%.*s", (int)(lx->pos - pos.off), lx->ctx->src + pos.off);
            return fail(lx, pos, "invalid number '%s'", text);
        }
        is_float = true;
        for (size_t i = 0; i < k; i++)
            advance(lx);
        digits(lx);
    }
    if (is_name_char(cur(lx)) || cur(lx) == '.') {
        while (is_name_char(cur(lx)) || cur(lx) == '.')
            advance(lx);
        char text[64];
        snprintf(text, sizeof text, "%.*s", (int)(lx->pos - pos.off), lx->ctx->src + pos.off);
        return fail(lx, pos, "invalid number '%s'", text);
    }
    mf_token t = make(lx, is_float ? MF_T_FLOAT : MF_T_INT, pos);
    /* Without the underscores, and NUL-terminated for strtod. */
    char buf[128];
    size_t n = 0;
    for (size_t i = 0; i < t.len; i++)
        if (t.s[i] != '_' && n + 1 < sizeof buf) buf[n++] = t.s[i];
    buf[n] = 0;
    if (t.len >= sizeof buf && is_float) return fail(lx, pos, "%s", "number too long");
    if (is_float) {
        t.f = strtod(buf, NULL);
        if (!isfinite(t.f)) return fail(lx, pos, "float %s is too large", buf);
        return t;
    }
    if (n > 1 && buf[0] == '0') {
        for (size_t i = 0; i < n; i++)
            if (buf[i] != '0')
                return fail(lx, pos, "%s",
                            "leading zeros in an integer are not allowed (Python does not "
                            "allow them either)");
    }
    int64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        int d = buf[i] - '0';
        if (v > (INT64_MAX - d) / 10) {
            t.too_big = true;
            break;
        }
        v = v * 10 + d;
    }
    t.i = v;
    if (t.len >= sizeof buf) t.too_big = true;
    return t;
}

/* A string literal with an optional prefix (r, b, f, u, in any order and
 * case); triple quotes span lines. Its value is kept only when it is plain. */
static mf_token string(mf_lexer *lx, mf_pos pos, bool prefixed) {
    int q = cur(lx);
    bool triple = at(lx, 1) == q && at(lx, 2) == q;
    size_t nq = triple ? 3 : 1;
    for (size_t i = 0; i < nq; i++)
        advance(lx);
    size_t start = lx->pos;
    bool escapes = false;
    for (;;) {
        int ch = cur(lx);
        if (ch < 0) return fail(lx, pos, "%s", "unterminated string");
        if (ch == '\n' && !triple) return fail(lx, pos, "%s", "unterminated string");
        if (ch == '\\') {
            escapes = true;
            advance(lx);
            if (cur(lx) < 0) return fail(lx, pos, "%s", "unterminated string");
            advance(lx);
            continue;
        }
        if (ch == q && (!triple || (at(lx, 1) == q && at(lx, 2) == q))) break;
        advance(lx);
    }
    size_t end = lx->pos;
    for (size_t i = 0; i < nq; i++)
        advance(lx);
    mf_token t = make(lx, MF_T_STRING, pos);
    t.str = lx->ctx->src + start;
    t.strlen = end - start;
    t.str_plain = !escapes && !prefixed;
    return t;
}

/* Python's operators and delimiters, longest first. */
static const char *const ops[] = {"**=", "//=", ">>=", "<<=", "...", "->", ":=", "**", "//", "<<",
                                  ">>",  "<=",  ">=",  "==",  "!=",  "+=", "-=", "*=", "/=", "%=",
                                  "&=",  "|=",  "^=",  "@=",  "(",   ")",  "[",  "]",  "{",  "}",
                                  ",",   ":",   ".",   ";",   "@",   "=",  "+",  "-",  "*",  "/",
                                  "%",   "&",   "|",   "^",   "~",   "<",  ">"};

/* Skips blanks, comments and (outside layout, or inside brackets) line
 * breaks and backslash continuations. Stops at a significant newline. */
static void skip_space(mf_lexer *lx) {
    for (;;) {
        int ch = cur(lx);
        if (ch == ' ' || ch == '\t' || ch == '\f' || ch == '\r') {
            advance(lx);
        } else if (ch == '#') {
            while (cur(lx) >= 0 && cur(lx) != '\n')
                advance(lx);
        } else if (ch == '\\' && (at(lx, 1) == '\n' || (at(lx, 1) == '\r' && at(lx, 2) == '\n'))) {
            advance(lx);
            while (cur(lx) != '\n')
                advance(lx);
            advance(lx);
        } else if (ch == '\n' && (!lx->layout || lx->brackets > 0)) {
            advance(lx);
        } else {
            break;
        }
    }
}

/* At the start of a logical line: measure the indentation of the next line
 * that is not blank, and queue INDENT or DEDENTs. */
static bool indentation(mf_lexer *lx, mf_token *out) {
    for (;;) {
        int width = 0;
        while (cur(lx) == ' ' || cur(lx) == '\t' || cur(lx) == '\f') {
            width = cur(lx) == '\t' ? (width / 8 + 1) * 8 : cur(lx) == '\f' ? 0 : width + 1;
            advance(lx);
        }
        if (cur(lx) == '\r') advance(lx);
        if (cur(lx) == '#') {
            while (cur(lx) >= 0 && cur(lx) != '\n')
                advance(lx);
        }
        if (cur(lx) == '\n') { /* a blank or comment line */
            advance(lx);
            continue;
        }
        if (cur(lx) < 0) return false; /* end of file: the caller closes the blocks */
        lx->line_start = false;
        mf_pos pos = here(lx);
        int top = lx->indent[lx->n_indent - 1];
        if (width > top) {
            if (lx->n_indent == MF_MAX_INDENT) {
                *out = fail(lx, pos, "%s", "too many levels of indentation (the limit is 100)");
                return true;
            }
            lx->indent[lx->n_indent++] = width;
            *out = make(lx, MF_T_INDENT, pos);
            return true;
        }
        if (width < top) {
            int n = 0;
            while (lx->n_indent > 1 && lx->indent[lx->n_indent - 1] > width) {
                lx->n_indent--;
                n++;
            }
            if (lx->indent[lx->n_indent - 1] != width) {
                *out = fail(lx, pos, "%s", "unindent does not match any outer indentation level");
                return true;
            }
            lx->dedents = n - 1;
            *out = make(lx, MF_T_DEDENT, pos);
            return true;
        }
        return false;
    }
}

mf_token mf_lex_next(mf_lexer *lx) {
    if (mf_failed(lx->ctx)) {
        mf_token t = {0};
        t.kind = MF_T_EOF;
        t.pos = lx->last_end;
        t.s = lx->ctx->src + lx->last_end.off;
        return t;
    }
    if (lx->dedents > 0) {
        lx->dedents--;
        return make(lx, MF_T_DEDENT, here(lx));
    }
    if (lx->layout && lx->line_start && !lx->ended) {
        mf_token t;
        if (indentation(lx, &t)) return t;
    }
    skip_space(lx);
    int ch = cur(lx);
    if (ch < 0) {
        if (lx->layout && !lx->ended && lx->brackets == 0) {
            /* A final NEWLINE if a line was open, then close every block. */
            if (!lx->line_start) {
                lx->line_start = true;
                return make(lx, MF_T_NEWLINE, lx->last_end);
            }
            lx->ended = true;
            lx->dedents = lx->n_indent - 1;
            lx->n_indent = 1;
            if (lx->dedents > 0) {
                lx->dedents--;
                return make(lx, MF_T_DEDENT, lx->last_end);
            }
        }
        mf_token t = make(lx, MF_T_EOF, lx->last_end);
        t.len = 0;
        return t;
    }
    if (ch == '\n') { /* layout mode, outside brackets */
        mf_pos pos = here(lx);
        advance(lx);
        lx->line_start = true;
        mf_token t = make(lx, MF_T_NEWLINE, pos);
        t.len = 0;
        return t;
    }
    mf_pos pos = here(lx);
    mf_token t;
    if (is_name_start(ch)) {
        while (is_name_char(cur(lx)))
            advance(lx);
        /* A string prefix: r'', b"", f'', u'', rb'' ... */
        size_t n = lx->pos - pos.off;
        if ((cur(lx) == '\'' || cur(lx) == '"') && n <= 2) {
            bool prefix = true;
            for (size_t i = 0; i < n; i++)
                prefix = prefix && strchr("rRbBfFuU", lx->ctx->src[pos.off + i]) != NULL;
            if (prefix) {
                t = string(lx, pos, true);
                goto done;
            }
        }
        t = make(lx, MF_T_NAME, pos);
    } else if (is_digit(ch) || (ch == '.' && is_digit(at(lx, 1)))) {
        t = number(lx);
    } else if (ch == '\'' || ch == '"') {
        t = string(lx, pos, false);
    } else {
        const char *op = NULL;
        for (size_t i = 0; i < sizeof ops / sizeof ops[0] && !op; i++) {
            size_t n = strlen(ops[i]);
            if (lx->pos + n <= lx->ctx->len && memcmp(lx->ctx->src + lx->pos, ops[i], n) == 0)
                op = ops[i];
        }
        if (!op) return bad_char(lx);
        for (size_t i = 0; op[i]; i++)
            advance(lx);
        t = make(lx, MF_T_OP, pos);
        if (strchr("([{", op[0]) && !op[1]) lx->brackets++;
        if (strchr(")]}", op[0]) && !op[1] && lx->brackets > 0) lx->brackets--;
    }
done:
    if (t.kind != MF_T_EOF) lx->last_end = here(lx);
    return t;
}

bool mf_tok_is(const mf_token *t, const char *op) {
    return t->kind == MF_T_OP && t->len == strlen(op) && memcmp(t->s, op, t->len) == 0;
}

bool mf_tok_name_is(const mf_token *t, const char *name) {
    return t->kind == MF_T_NAME && t->len == strlen(name) && memcmp(t->s, name, t->len) == 0;
}

void mf_tok_describe(const mf_token *t, char *buf, size_t cap) {
    switch (t->kind) {
    case MF_T_EOF: snprintf(buf, cap, "end of file"); break;
    case MF_T_NEWLINE: snprintf(buf, cap, "end of line"); break;
    case MF_T_INDENT: snprintf(buf, cap, "an indented block"); break;
    case MF_T_DEDENT: snprintf(buf, cap, "the end of the indented block"); break;
    case MF_T_STRING: snprintf(buf, cap, "a string"); break;
    default:
        if (t->len > 40)
            snprintf(buf, cap, "'%.37s...'", t->s);
        else
            snprintf(buf, cap, "'%.*s'", (int)t->len, t->s);
    }
}

void mf_stream_init(mf_stream *ts, mf_ctx *ctx, bool layout) {
    memset(ts, 0, sizeof *ts);
    mf_lex_init(&ts->lx, ctx, layout);
}

const mf_token *mf_peek(mf_stream *ts, int k) {
    while (ts->n <= k)
        ts->la[ts->n++] = mf_lex_next(&ts->lx);
    return &ts->la[k];
}

mf_token mf_take(mf_stream *ts) {
    mf_peek(ts, 0);
    mf_token t = ts->la[0];
    memmove(ts->la, ts->la + 1, (size_t)(ts->n - 1) * sizeof ts->la[0]);
    ts->n--;
    return t;
}
