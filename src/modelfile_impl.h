/* modelfile_impl.h - what the model-file readers share: error positions, the
 * tokenizer, values, the pending module tree and the "layer from a call"
 * builder. lexer.c tokenizes, parse_repr.c reads print(model) text,
 * parse_code.c reads the Python subset, modelfile.c detects the format,
 * builds layers with PyTorch's constructor signatures and turns the tree into
 * a cnn_model. Never installed. */
#ifndef CNNKIT_MODELFILE_IMPL_H
#define CNNKIT_MODELFILE_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cnnkit/layer.h"
#include "cnnkit/status.h"

/* More modules than this are refused (real models have hundreds at most). */
#define MF_MAX_MODULES 10000
/* Containers nested deeper than this, and expressions with more levels of
 * parentheses and calls, are errors: the parsers recurse, and never deeper. */
#define MF_MAX_DEPTH 64
/* Python's own limit on indentation levels. */
#define MF_MAX_INDENT 100
/* Arguments of one call. */
#define MF_MAX_ARGS 32
/* Integer layer arguments beyond +-(2^31 - 1) are refused: no real layer has
 * them, and it keeps every size formula far from int64 overflow. */
#define MF_MAX_INT 2147483647
/* Module and class names are copied into buffers of this size. */
#define MF_MAX_NAME 128

/* A place in the source: 1-based line and column (in code points), and the
 * byte offset, from which the error text finds the line. */
typedef struct mf_pos {
    int line, col;
    size_t off;
} mf_pos;

/* The text being read and where the first error goes. */
typedef struct mf_ctx {
    const char *src;
    size_t len;
    const char *file;
    char *err;
    size_t errlen;
    cnn_status status; /* CNN_OK until the first error */
} mf_ctx;

/* Records the first error only, as "FILE:LINE:COL: message", the source
 * line and a caret under the column. Returns false, so callers can
 * `return mf_error(...)`. */
bool mf_error(mf_ctx *c, mf_pos pos, cnn_status status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static inline bool mf_failed(const mf_ctx *c) { return c->status != CNN_OK; }

/* ---- Tokens ------------------------------------------------------------- */

typedef enum mf_tok_kind {
    MF_T_EOF,
    MF_T_NEWLINE, /* end of a logical line (layout mode only) */
    MF_T_INDENT,
    MF_T_DEDENT,
    MF_T_NAME,
    MF_T_INT,
    MF_T_FLOAT,
    MF_T_STRING,
    MF_T_OP /* punctuation and operators, s/len hold the text */
} mf_tok_kind;

typedef struct mf_token {
    mf_tok_kind kind;
    mf_pos pos;
    const char *s; /* the token's text in the source */
    size_t len;
    int64_t i;       /* MF_T_INT */
    bool too_big;    /* MF_T_INT beyond int64 */
    double f;        /* MF_T_FLOAT */
    const char *str; /* MF_T_STRING: the contents between the quotes */
    size_t strlen;
    bool str_plain; /* no escapes and no prefix: str is the value */
} mf_token;

/* The tokenizer's whole state is plain data, so a parser can copy it to come
 * back to a place (parse_code.c does for __init__ bodies). In layout mode it
 * produces NEWLINE, INDENT and DEDENT as Python's tokenizer does (none inside
 * brackets); otherwise line breaks are whitespace. '#' comments are skipped in
 * both modes. */
typedef struct mf_lexer {
    mf_ctx *ctx;
    size_t pos;
    int line, col;
    bool layout;
    int brackets;    /* open ( [ { */
    bool line_start; /* at the start of a logical line (layout mode) */
    int indent[MF_MAX_INDENT];
    int n_indent;
    int dedents;     /* DEDENT tokens still to give */
    bool ended;      /* the final NEWLINE and DEDENTs are given */
    mf_pos last_end; /* just after the last real token, where EOF is reported */
} mf_lexer;

void mf_lex_init(mf_lexer *lx, mf_ctx *ctx, bool layout);
/* The next token. On a bad character or literal it records the error and
 * gives MF_T_EOF. */
mf_token mf_lex_next(mf_lexer *lx);

bool mf_tok_is(const mf_token *t, const char *op);        /* an MF_T_OP with this text */
bool mf_tok_name_is(const mf_token *t, const char *name); /* an MF_T_NAME with this text */
/* "'nn'", "end of line", "end of file", ... for error texts. */
void mf_tok_describe(const mf_token *t, char *buf, size_t cap);

/* A token stream with lookahead. Plain data, copyable, like the lexer. */
#define MF_LOOKAHEAD 6
typedef struct mf_stream {
    mf_lexer lx;
    mf_token la[MF_LOOKAHEAD];
    int n;
} mf_stream;

void mf_stream_init(mf_stream *ts, mf_ctx *ctx, bool layout);
/* The k-th token ahead (0 is the next one). */
const mf_token *mf_peek(mf_stream *ts, int k);
mf_token mf_take(mf_stream *ts);

/* ---- Values ------------------------------------------------------------- */

typedef enum mf_vkind {
    MF_V_INT,
    MF_V_FLOAT,
    MF_V_BOOL,
    MF_V_NONE,
    MF_V_STR,    /* a string literal (code) */
    MF_V_WORD,   /* a bare word where a printed model has one: padding=same */
    MF_V_TUPLE,  /* of scalars */
    MF_V_MODULE, /* an nn.X(...) or nn.Sequential(...) call (code) */
    MF_V_COUNT
} mf_vkind;

#define MF_TUPLE_MAX 4
typedef struct mf_scalar {
    mf_vkind kind; /* INT, FLOAT, BOOL, NONE */
    int64_t i;
    double f;
} mf_scalar;

typedef struct mf_value {
    mf_vkind kind;
    mf_pos pos;
    int64_t i;     /* INT, BOOL (0/1) */
    double f;      /* FLOAT */
    const char *s; /* STR, WORD: into the source */
    size_t slen;
    int n; /* TUPLE: items, counted even beyond MF_TUPLE_MAX */
    mf_scalar item[MF_TUPLE_MAX];
    int module; /* MODULE: index into the tree */
} mf_value;

/* "int 5", "float 0.5", "True", "a tuple of 3", ... for error texts. */
void mf_value_describe(const mf_value *v, char *buf, size_t cap);

typedef struct mf_arg {
    const char *kw; /* NULL for a positional argument */
    size_t kwlen;
    mf_pos kwpos;
    mf_value v;
} mf_arg;

/* Parses one value into *out; the stream is at its first token. */
typedef bool (*mf_value_fn)(mf_stream *ts, mf_ctx *c, void *ud, mf_value *out);

/* Parses the arguments of a call whose '(' at open was just taken, up to and
 * including the ')': positional, then keyword (name=value), commas, an
 * optional trailing comma. what is the callee as written ("nn.Conv2d"),
 * for "expected ')' to close 'nn.Conv2d(' opened at 3:5". */
bool mf_parse_args(mf_stream *ts, mf_ctx *c, const char *what, mf_pos open, mf_value_fn value,
                   void *ud, mf_arg *args, int *nargs);

/* Records "expected X to close 'what(' opened at L:C" at t. */
bool mf_error_close(mf_ctx *c, const mf_token *t, const char *expected, const char *what,
                    mf_pos open);

/* ---- The module tree the parsers build ---------------------------------- */

typedef struct mf_mod {
    bool leaf;
    cnn_layer L;            /* leaf */
    char type[MF_MAX_NAME]; /* container class name */
    char name[MF_MAX_NAME]; /* "" until attached to a parent */
    mf_pos pos;             /* of the class name / callee */
    mf_pos name_pos;        /* of the name, for duplicate errors */
    int parent;             /* -1 for the top and for modules not attached yet */
    int first, last, next;  /* children in order, -1 when none */
} mf_mod;

typedef struct mf_tree {
    mf_mod *mods;
    int n, cap;
    int top;    /* the model's module: 0, or a top-level nn.Sequential(...) */
    int *names; /* open addressing over (parent, name): module index + 1, 0 when free */
    size_t names_cap;
    int named;
} mf_tree;

/* A new module; returns its index, or -1 (out of memory, recorded in ctx). */
int mf_tree_add(mf_tree *t, mf_ctx *c, bool leaf, const cnn_layer *L, const char *type,
                size_t typelen, mf_pos pos);
/* Attaches child under parent as the last child, named name. Fails with an
 * error at name_pos on a duplicate name, an empty one or one with a '.'. */
bool mf_tree_attach(mf_tree *t, mf_ctx *c, int parent, int child, const char *name, size_t namelen,
                    mf_pos name_pos);
void mf_tree_free(mf_tree *t);

/* ---- Layers ------------------------------------------------------------- */

/* The op called name (a torch.nn class name), or CNN_OP_COUNT. */
cnn_op mf_layer_op(const char *name, size_t len);

/* Records "NAME is not supported; supported: Conv2d, Linear, ..." at pos. */
bool mf_error_unsupported_layer(mf_ctx *c, mf_pos pos, const char *name, size_t len,
                                bool with_sequential);

/* Builds the layer that torch.nn.<op>(args) constructs, with PyTorch's
 * signature (positional order, keywords, defaults) and strict types; errors
 * point at the argument at fault, or at pos (the call) for missing ones and
 * for the layer's own checks. */
bool mf_make_layer(mf_ctx *c, cnn_op op, mf_pos pos, const mf_arg *args, int nargs, cnn_layer *out);

/* ---- The readers -------------------------------------------------------- */

/* Each fills tree with the model's modules; tree->top is the model, a
 * container whose type is the model's class name. */
bool mf_parse_repr(mf_ctx *c, mf_tree *tree);
bool mf_parse_code(mf_ctx *c, mf_tree *tree);

/* Parses without finalizing (no parameter memory), for the fuzz targets,
 * which must not allocate a model's worth of weights for every input. */
struct cnn_model;
cnn_status mf_parse_model(const char *text, size_t len, const char *filename, bool finalize,
                          struct cnn_model **out, char *err, size_t errlen);

#endif
