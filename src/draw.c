/* draw.c - what the drawing styles share: models read into labelled blocks,
 * colours, layout primitives and the legend; the dispatch, and output as
 * SVG (from the layout) and as Graphviz DOT. */
#define _POSIX_C_SOURCE 200809L
#include "draw_impl.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- Names -------------------------------------------------------------- */

static const char *const style_names[] = {"blocks", "graph", "planes"};
_Static_assert(CNN_COUNT_OF(style_names) == CNN_DRAW_STYLE_COUNT, "one name per style");

const char *cnn_draw_style_name(cnn_draw_style style) {
    return (unsigned)style < CNN_DRAW_STYLE_COUNT ? style_names[style] : NULL;
}

cnn_draw_style cnn_draw_style_from_name(const char *name) {
    for (int i = 0; i < CNN_DRAW_STYLE_COUNT; i++)
        if (name && !strcmp(name, style_names[i])) return (cnn_draw_style)i;
    return CNN_DRAW_STYLE_COUNT;
}

cnn_draw_format cnn_draw_format_from_path(const char *path) {
    static const char *const exts[] = {".svg", ".png", ".dot"};
    _Static_assert(CNN_COUNT_OF(exts) == CNN_DRAW_FORMAT_COUNT, "one extension per format");
    const char *slash = path ? strrchr(path, '/') : NULL;
    const char *base = slash ? slash + 1 : path;
    const char *dot = base ? strrchr(base, '.') : NULL;
    if (!dot || dot == base) return CNN_DRAW_FORMAT_COUNT;
    for (int i = 0; i < CNN_DRAW_FORMAT_COUNT; i++)
        if (!strcasecmp(dot, exts[i])) return (cnn_draw_format)i;
    return CNN_DRAW_FORMAT_COUNT;
}

static const char *const kind_names[] = {
    "Input",   "Convolution", "Pooling",         "Normalization", "Activation",
    "Dropout", "Flatten",     "Fully connected", "Output",        "Other",
};
_Static_assert(CNN_COUNT_OF(kind_names) == CNN_DRAW_KIND_COUNT, "one name per kind");

const char *cnn_draw_kind_name(cnn_draw_kind kind) {
    return (unsigned)kind < CNN_DRAW_KIND_COUNT ? kind_names[kind] : NULL;
}

/* ---- Colours ------------------------------------------------------------ */

/* Soft fills with a stroke of the same hue, and a dark shade of it for
 * white text (the graph style's headers, as Netron draws them). */
static const draw_colour colours[] = {
    [CNN_DRAW_KIND_INPUT] = {"#f4f4f4", "#6b6b6b", "#555555"},
    [CNN_DRAW_KIND_CONV] = {"#dbe9f6", "#4a7fb5", "#2f5f93"},
    [CNN_DRAW_KIND_POOL] = {"#fde9cf", "#d08a2e", "#9a5c12"},
    [CNN_DRAW_KIND_NORM] = {"#ebe1f4", "#8a66b3", "#5f3f8a"},
    [CNN_DRAW_KIND_ACTIVATION] = {"#fbe0df", "#c4524f", "#8e2f2c"},
    [CNN_DRAW_KIND_DROPOUT] = {"#ececec", "#9a9a9a", "#5e5e5e"},
    [CNN_DRAW_KIND_FLATTEN] = {"#f2eed8", "#a39356", "#6f6230"},
    [CNN_DRAW_KIND_DENSE] = {"#dcefd9", "#4e9a4a", "#2f6e2c"},
    [CNN_DRAW_KIND_OUTPUT] = {"#f4f4f4", "#6b6b6b", "#555555"},
    [CNN_DRAW_KIND_OTHER] = {"#e3f1f1", "#4f9a9a", "#2f6b6b"},
};
_Static_assert(CNN_COUNT_OF(colours) == CNN_DRAW_KIND_COUNT, "one colour per kind");

const draw_colour *draw_colour_of(cnn_draw_kind kind) {
    return &colours[(unsigned)kind < CNN_DRAW_KIND_COUNT ? kind : CNN_DRAW_KIND_OTHER];
}

cnn_draw_kind draw_kind_of(cnn_op op) {
    switch (op) {
    case CNN_OP_CONV2D: return CNN_DRAW_KIND_CONV;
    case CNN_OP_LINEAR: return CNN_DRAW_KIND_DENSE;
    case CNN_OP_MAXPOOL2D:
    case CNN_OP_AVGPOOL2D:
    case CNN_OP_ADAPTIVEAVGPOOL2D: return CNN_DRAW_KIND_POOL;
    case CNN_OP_RELU:
    case CNN_OP_SIGMOID:
    case CNN_OP_TANH:
    case CNN_OP_SOFTMAX: return CNN_DRAW_KIND_ACTIVATION;
    case CNN_OP_FLATTEN: return CNN_DRAW_KIND_FLATTEN;
    case CNN_OP_DROPOUT: return CNN_DRAW_KIND_DROPOUT;
    case CNN_OP_BATCHNORM2D:
    case CNN_OP_LRN: return CNN_DRAW_KIND_NORM;
    default: return CNN_DRAW_KIND_OTHER;
    }
}

/* ---- Text of shapes and labels ----------------------------------------- */

void draw_shape_text(char *buf, size_t cap, const cnn_shape *s, bool drop_batch) {
    size_t o = 0;
    int first = drop_batch && s->ndim >= 2 ? 1 : 0;
    if (cap) buf[0] = 0;
    for (int i = first; i < s->ndim && o < cap; i++)
        o += (size_t)snprintf(buf + o, cap - o, "%s%lld", i > first ? "x" : "",
                              (long long)s->dim[i]);
    if (s->ndim == 0 && cap) snprintf(buf, cap, "scalar");
}

void draw_pair_text(char *buf, size_t cap, const int64_t v[2], bool as_size) {
    if (as_size)
        snprintf(buf, cap, "%lldx%lld", (long long)v[0], (long long)v[1]);
    else if (v[0] == v[1])
        snprintf(buf, cap, "%lld", (long long)v[0]);
    else
        snprintf(buf, cap, "(%lld, %lld)", (long long)v[0], (long long)v[1]);
}

static bool pair_is(const int64_t v[2], int64_t x) { return v[0] == x && v[1] == x; }

/* Appends ", name value" for a pair unless it equals dflt. */
static void add_pair(cnn_sb *sb, const char *name, const int64_t v[2], int64_t dflt) {
    if (pair_is(v, dflt)) return;
    char b[64];
    draw_pair_text(b, sizeof b, v, false);
    cnn_sb_printf(sb, ", %s %s", name, b);
}

/* The book's label of a layer standing alone in its box. */
static void layer_label(cnn_sb *sb, const cnn_layer *L) {
    char k[64], f[40];
    switch (L->op) {
    case CNN_OP_CONV2D:
        draw_pair_text(k, sizeof k, L->kernel, true);
        cnn_sb_printf(sb, "%s Conv(%lld)", k, (long long)L->out);
        add_pair(sb, "stride", L->stride, 1);
        add_pair(sb, "pad", L->padding, 0);
        add_pair(sb, "dilation", L->dilation, 1);
        if (L->groups != 1) cnn_sb_printf(sb, ", groups %lld", (long long)L->groups);
        break;
    case CNN_OP_MAXPOOL2D:
    case CNN_OP_AVGPOOL2D:
        draw_pair_text(k, sizeof k, L->kernel, true);
        draw_pair_text(f, sizeof f, L->stride, false);
        cnn_sb_printf(sb, "%s %s, stride %s", k, L->op == CNN_OP_MAXPOOL2D ? "MaxPool" : "AvgPool",
                      f);
        add_pair(sb, "pad", L->padding, 0);
        if (L->op == CNN_OP_MAXPOOL2D) add_pair(sb, "dilation", L->dilation, 1);
        if (L->ceil_mode) cnn_sb_puts(sb, ", ceil mode");
        break;
    case CNN_OP_ADAPTIVEAVGPOOL2D:
        if (pair_is(L->output_size, 1)) {
            cnn_sb_puts(sb, "Global AvgPool");
        } else {
            draw_pair_text(k, sizeof k, L->output_size, true);
            cnn_sb_printf(sb, "AdaptiveAvgPool(%s)", k);
        }
        break;
    case CNN_OP_LINEAR: cnn_sb_printf(sb, "FC(%lld)", (long long)L->out); break;
    case CNN_OP_FLATTEN: cnn_sb_puts(sb, "Flatten"); break;
    case CNN_OP_DROPOUT:
        cnn_format_pyfloat(f, sizeof f, L->p);
        cnn_sb_printf(sb, "Dropout(%s)", f);
        break;
    case CNN_OP_BATCHNORM2D: cnn_sb_printf(sb, "BatchNorm(%lld)", (long long)L->in); break;
    case CNN_OP_LRN: cnn_sb_printf(sb, "LRN, size %lld", (long long)L->in); break;
    case CNN_OP_RELU: cnn_sb_puts(sb, "ReLU"); break;
    case CNN_OP_SIGMOID: cnn_sb_puts(sb, "Sigmoid"); break;
    case CNN_OP_TANH: cnn_sb_puts(sb, "Tanh"); break;
    case CNN_OP_SOFTMAX: cnn_sb_puts(sb, "Softmax"); break;
    default: {
        const char *name = cnn_op_name(L->op);
        cnn_sb_puts(sb, name ? name : "?");
        break;
    }
    }
}

/* What an activation or dropout adds to the box it is folded into; false
 * for a layer that is never folded. */
static bool fold_suffix(const cnn_layer *L, char *buf, size_t cap) {
    char p[40];
    switch (L->op) {
    case CNN_OP_RELU: snprintf(buf, cap, ", ReLU"); return true;
    case CNN_OP_SIGMOID: snprintf(buf, cap, ", sigmoid"); return true;
    case CNN_OP_TANH: snprintf(buf, cap, ", tanh"); return true;
    case CNN_OP_SOFTMAX: snprintf(buf, cap, ", softmax"); return true;
    case CNN_OP_DROPOUT:
        cnn_format_pyfloat(p, sizeof p, L->p);
        snprintf(buf, cap, ", dropout %s", p);
        return true;
    default: return false;
    }
}

static void input_label(char *buf, size_t cap, const cnn_shape *s) {
    const int64_t *d = s->dim;
    if (s->ndim == 4 && d[1] == 1)
        snprintf(buf, cap, "Input %lldx%lld image", (long long)d[2], (long long)d[3]);
    else if (s->ndim == 4)
        snprintf(buf, cap, "Input %lldx%lldx%lld image", (long long)d[1], (long long)d[2],
                 (long long)d[3]);
    else if (s->ndim == 2)
        snprintf(buf, cap, "Input %lld features", (long long)d[1]);
    else {
        char sh[128];
        draw_shape_text(sh, sizeof sh, s, true);
        snprintf(buf, cap, "Input %s", sh);
    }
}

/* ---- Reading models into blocks ----------------------------------------- */

static void copy_label(draw_block *b, const cnn_sb *sb) {
    snprintf(b->label, sizeof b->label, "%s", sb->oom || !sb->buf ? "?" : sb->buf);
}

static cnn_status net_build(cnn_model *m, const char *title, const cnn_shape *input, draw_net *net,
                            char *err, size_t errlen) {
    net->m = m;
    net->title = title ? title : cnn_model_class(m);
    net->input = *input;
    cnn_status inferred = cnn_model_infer(m, input);
    if (inferred != CNN_OK)
        return cnn_fail(inferred, err, errlen, "%s: %s", net->title, cnn_model_error(m));
    int nn = cnn_model_num_nodes(m);
    net->blocks = calloc((size_t)nn + 1, sizeof *net->blocks);
    int *block_of = calloc((size_t)nn + 1, sizeof *block_of);
    int *consumers = calloc((size_t)nn + 1, sizeof *consumers);
    if (!net->blocks || !block_of || !consumers) {
        free(block_of);
        free(consumers);
        return cnn_fail(CNN_STATUS_NO_MEMORY, err, errlen, "%s: out of memory", net->title);
    }
    for (int i = 0; i < nn; i++) {
        const int *in;
        int k = cnn_model_node_inputs(m, i, &in);
        for (int j = 0; j < k; j++)
            if (in[j] >= 0 && in[j] < nn) consumers[in[j]]++;
    }
    draw_block *b0 = &net->blocks[0];
    b0->kind = CNN_DRAW_KIND_INPUT;
    b0->role = DRAW_ROLE_INPUT;
    b0->out = *input;
    input_label(b0->label, sizeof b0->label, input);
    net->n_blocks = 1;

    cnn_status st = CNN_OK;
    for (int i = 0; i < nn; i++) {
        const cnn_layer *L = cnn_model_node_layer(m, i);
        const int *in;
        int k = cnn_model_node_inputs(m, i, &in);
        cnn_node_stats stats = cnn_model_node_stats(m, i);
        char suffix[64];
        /* Folded into the block before when it takes that block's output alone. */
        if (k == 1 && in[0] >= 0 && consumers[in[0]] == 1 &&
            fold_suffix(L, suffix, sizeof suffix)) {
            draw_block *p = &net->blocks[block_of[in[0]]];
            bool foldable = p->n_nodes > 0 && p->nodes[p->n_nodes - 1] == in[0] &&
                            p->n_nodes < DRAW_BLOCK_MAX_NODES && p->kind != CNN_DRAW_KIND_FLATTEN;
            if (foldable && strlen(p->label) + strlen(suffix) < sizeof p->label) {
                strcat(p->label, suffix);
                p->nodes[p->n_nodes++] = i;
                p->out = stats.out_shape;
                block_of[i] = (int)(p - net->blocks);
                continue;
            }
        }
        draw_block *b = &net->blocks[net->n_blocks];
        b->nodes[b->n_nodes++] = i;
        b->kind = draw_kind_of(L->op);
        b->out = stats.out_shape;
        for (int j = 0; j < k && b->n_inputs < DRAW_BLOCK_MAX_INPUTS; j++)
            b->inputs[b->n_inputs++] = in[j] >= 0 && in[j] < nn ? block_of[in[j]] : 0;
        if (k == 0) b->inputs[b->n_inputs++] = 0;
        cnn_sb sb = {0};
        layer_label(&sb, L);
        if (sb.oom) st = CNN_STATUS_NO_MEMORY;
        copy_label(b, &sb);
        cnn_sb_free(&sb);
        block_of[i] = net->n_blocks++;
    }
    free(block_of);
    free(consumers);
    if (st != CNN_OK) return cnn_fail(st, err, errlen, "%s: out of memory", net->title);

    /* Roles: features until the first Flatten or Linear, dense after it. */
    draw_role role = DRAW_ROLE_FEATURE;
    for (int i = 1; i < net->n_blocks; i++) {
        draw_block *b = &net->blocks[i];
        if (role == DRAW_ROLE_FEATURE &&
            (b->kind == CNN_DRAW_KIND_FLATTEN || b->kind == CNN_DRAW_KIND_DENSE)) {
            b->role = b->kind == CNN_DRAW_KIND_FLATTEN ? DRAW_ROLE_FLATTEN : DRAW_ROLE_DENSE;
            role = DRAW_ROLE_DENSE;
            continue;
        }
        b->role = role;
    }
    return CNN_OK;
}

cnn_status draw_nets_build(cnn_model *const *models, const char *const *titles, int n,
                           const cnn_shape *inputs, draw_net **out, char *err, size_t errlen) {
    *out = NULL;
    if (n < 1 || !models || !inputs)
        return cnn_fail(CNN_STATUS_INVALID_ARGUMENT, err, errlen, "nothing to draw");
    draw_net *nets = calloc((size_t)n, sizeof *nets);
    if (!nets) return cnn_fail(CNN_STATUS_NO_MEMORY, err, errlen, "out of memory");
    *out = nets;
    for (int i = 0; i < n; i++) {
        if (!models[i])
            return cnn_fail(CNN_STATUS_INVALID_ARGUMENT, err, errlen, "model %d is NULL", i);
        cnn_status st =
            net_build(models[i], titles ? titles[i] : NULL, &inputs[i], &nets[i], err, errlen);
        if (st != CNN_OK) return st;
    }
    return CNN_OK;
}

void draw_nets_free(draw_net *nets, int n) {
    if (!nets) return;
    for (int i = 0; i < n; i++)
        free(nets[i].blocks);
    free(nets);
}

/* ---- Layout primitives -------------------------------------------------- */

/* Grows an array to hold one more item; false (and oom set) when it cannot. */
static bool grow(cnn_draw_layout *L, void **items, int *cap, int n, size_t size) {
    if (L->oom) return false;
    if (n < *cap) return true;
    int nc = *cap ? *cap * 2 : 32;
    void *p = nc > 0 ? realloc(*items, (size_t)nc * size) : NULL;
    if (!p) {
        L->oom = true;
        return false;
    }
    *items = p;
    *cap = nc;
    return true;
}

int draw_rect(cnn_draw_layout *L, double x, double y, double w, double h, double rx,
              const char *fill, const char *stroke, double stroke_width, int kind) {
    if (!grow(L, (void **)&L->rects, &L->cap_rects, L->n_rects, sizeof *L->rects)) return -1;
    L->rects[L->n_rects] = (cnn_draw_rect){x, y, w, h, rx, fill, stroke, stroke_width, kind};
    return L->n_rects++;
}

int draw_text(cnn_draw_layout *L, double x, double y, cnn_svg_anchor anchor, double size, bool bold,
              const char *fill, const char *text, int rect) {
    if (!grow(L, (void **)&L->texts, &L->cap_texts, L->n_texts, sizeof *L->texts)) return -1;
    char *copy = strdup(text);
    if (!copy) {
        L->oom = true;
        return -1;
    }
    double w = cnn_svg_text_width(text, size, bold);
    double bx = anchor == CNN_SVG_ANCHOR_START    ? x
                : anchor == CNN_SVG_ANCHOR_MIDDLE ? x - w / 2
                                                  : x - w;
    double asc = cnn_svg_text_ascent(size), desc = cnn_svg_text_descent(size);
    L->texts[L->n_texts] = (cnn_draw_text){.x = x,
                                           .y = y,
                                           .anchor = anchor,
                                           .size = size,
                                           .bold = bold,
                                           .fill = fill,
                                           .text = copy,
                                           .bx = bx,
                                           .by = y - asc,
                                           .bw = w,
                                           .bh = asc + desc,
                                           .rect = rect};
    return L->n_texts++;
}

int draw_line(cnn_draw_layout *L, const double *xy, int n, const char *stroke, double width,
              const char *dash, bool arrow) {
    CNN_ASSERT(n >= 2 && n <= CNN_DRAW_LINE_MAX_POINTS);
    if (!grow(L, (void **)&L->lines, &L->cap_lines, L->n_lines, sizeof *L->lines)) return -1;
    cnn_draw_line *l = &L->lines[L->n_lines];
    *l = (cnn_draw_line){.n = n, .stroke = stroke, .width = width, .dash = dash, .arrow = arrow};
    for (int i = 0; i < n; i++) {
        l->x[i] = xy[2 * i];
        l->y[i] = xy[2 * i + 1];
    }
    return L->n_lines++;
}

double draw_baseline(double cy, double size) { return cy + 0.36 * size; }

double draw_line_height(double size) { return 1.22 * size; }

void draw_fitted(cnn_draw_layout *L, const cnn_svg_fitted *f, double cx, double cy,
                 cnn_svg_anchor anchor, bool bold, const char *fill, int rect) {
    double lh = draw_line_height(f->size);
    double first = cy - (f->n_lines - 1) * lh / 2;
    for (int i = 0; i < f->n_lines; i++)
        if (f->line[i][0])
            draw_text(L, cx, draw_baseline(first + i * lh, f->size), anchor, f->size, bold, fill,
                      f->line[i], rect);
}

enum { LEGEND_SWATCH = 14, LEGEND_GAP = 6, LEGEND_SPACING = 20, LEGEND_ROW = 22 };
#define LEGEND_FONT 12.5

/* Items in rows of at most max_w; returns the number of rows. */
static int legend_rows(const bool used[CNN_DRAW_KIND_COUNT], const double *item_w, double max_w,
                       int *row_start, double *row_w) {
    int n_rows = 0;
    double w = 0;
    for (int k = 0; k < CNN_DRAW_KIND_COUNT; k++) {
        if (!used[k]) continue;
        if (n_rows == 0 || w + LEGEND_SPACING + item_w[k] > max_w) {
            if (n_rows) row_w[n_rows - 1] = w;
            row_start[n_rows++] = k;
            w = item_w[k];
        } else {
            w += LEGEND_SPACING + item_w[k];
        }
    }
    if (n_rows) row_w[n_rows - 1] = w;
    row_start[n_rows] = CNN_DRAW_KIND_COUNT;
    return n_rows;
}

double draw_legend(cnn_draw_layout *L, const bool used[CNN_DRAW_KIND_COUNT], bool dark, double cx,
                   double y, double max_w, double *width) {
    int row_start[CNN_DRAW_KIND_COUNT + 1];
    double row_w[CNN_DRAW_KIND_COUNT], item_w[CNN_DRAW_KIND_COUNT] = {0};
    *width = 0;
    for (int k = 0; k < CNN_DRAW_KIND_COUNT; k++)
        if (used[k])
            item_w[k] =
                LEGEND_SWATCH + LEGEND_GAP + cnn_svg_text_width(kind_names[k], LEGEND_FONT, false);
    int n_rows = legend_rows(used, item_w, max_w, row_start, row_w);
    if (n_rows == 0) return 0;
    /* Rows evened out: the narrowest width that needs no more rows. */
    double lo = 0, hi = max_w;
    for (int i = 0; i < 20 && n_rows > 1; i++) {
        double mid = (lo + hi) / 2;
        if (legend_rows(used, item_w, mid, row_start, row_w) <= n_rows)
            hi = mid;
        else
            lo = mid;
    }
    legend_rows(used, item_w, hi, row_start, row_w);
    for (int r = 0; r < n_rows; r++)
        if (row_w[r] > *width) *width = row_w[r];
    if (L) {
        for (int r = 0; r < n_rows; r++) {
            double x = cx - row_w[r] / 2, cy = y + r * LEGEND_ROW + LEGEND_ROW / 2.0;
            for (int k = row_start[r]; k < row_start[r + 1]; k++) {
                if (!used[k]) continue;
                const draw_colour *c = draw_colour_of((cnn_draw_kind)k);
                /* The input and output are light in every style. */
                bool d = dark && k != CNN_DRAW_KIND_INPUT && k != CNN_DRAW_KIND_OUTPUT;
                draw_rect(L, x, cy - LEGEND_SWATCH / 2.0, LEGEND_SWATCH, LEGEND_SWATCH, 3,
                          d ? c->dark : c->fill, d ? c->dark : c->stroke, 1, k);
                draw_text(L, x + LEGEND_SWATCH + LEGEND_GAP, draw_baseline(cy, LEGEND_FONT),
                          CNN_SVG_ANCHOR_START, LEGEND_FONT, false, DRAW_MUTED, kind_names[k], -1);
                x += item_w[k] + LEGEND_SPACING;
            }
        }
    }
    return n_rows * LEGEND_ROW;
}

/* ---- Layouts ------------------------------------------------------------ */

void cnn_draw_layout_free(cnn_draw_layout *layout) {
    if (!layout) return;
    for (int i = 0; i < layout->n_texts; i++)
        free(layout->texts[i].text);
    free(layout->rects);
    free(layout->texts);
    free(layout->lines);
    *layout = (cnn_draw_layout){0};
}

cnn_status cnn_draw_layout_build(cnn_model *const *models, const char *const *titles, int n,
                                 const cnn_shape *inputs, cnn_draw_style style,
                                 cnn_draw_layout *out, char *err, size_t errlen) {
    *out = (cnn_draw_layout){0};
    if ((unsigned)style >= CNN_DRAW_STYLE_COUNT)
        return cnn_fail(CNN_STATUS_INVALID_ARGUMENT, err, errlen, "unknown drawing style %d",
                        (int)style);
    draw_net *nets;
    cnn_status st = draw_nets_build(models, titles, n, inputs, &nets, err, errlen);
    if (st == CNN_OK) {
        switch (style) {
        case CNN_DRAW_BLOCKS: st = draw_blocks(nets, n, out, err, errlen); break;
        case CNN_DRAW_GRAPH: st = draw_graph(nets, n, out, err, errlen); break;
        case CNN_DRAW_PLANES: st = draw_planes(nets, n, out, err, errlen); break;
        default: break;
        }
    }
    draw_nets_free(nets, n);
    if (st == CNN_OK && out->oom) st = cnn_fail(CNN_STATUS_NO_MEMORY, err, errlen, "out of memory");
    return st;
}

/* ---- SVG ---------------------------------------------------------------- */

static cnn_svg *layout_svg(const cnn_draw_layout *L, const char *title) {
    cnn_svg *s = cnn_svg_new(L->width, L->height);
    if (!s) return NULL;
    if (title) cnn_svg_title(s, title);
    /* One arrowhead marker per colour of arrow. */
    const char *marker_colour[8];
    int n_markers = 0;
    for (int i = 0; i < L->n_lines; i++) {
        const cnn_draw_line *l = &L->lines[i];
        if (!l->arrow) continue;
        bool seen = false;
        for (int j = 0; j < n_markers; j++)
            seen = seen || !strcmp(marker_colour[j], l->stroke);
        if (!seen && n_markers < (int)CNN_COUNT_OF(marker_colour)) {
            char id[24];
            snprintf(id, sizeof id, "arrow%d", n_markers);
            cnn_svg_arrow_marker(s, id, l->stroke);
            marker_colour[n_markers++] = l->stroke;
        }
    }
    cnn_svg_group_begin(s, "shapes");
    for (int i = 0; i < L->n_rects; i++) {
        const cnn_draw_rect *r = &L->rects[i];
        cnn_svg_rect(s, r->x, r->y, r->w, r->h, r->rx,
                     &(cnn_svg_paint){
                         .fill = r->fill, .stroke = r->stroke, .stroke_width = r->stroke_width});
    }
    cnn_svg_group_end(s);
    cnn_svg_group_begin(s, "edges");
    for (int i = 0; i < L->n_lines; i++) {
        const cnn_draw_line *l = &L->lines[i];
        char id[24] = "";
        for (int j = 0; l->arrow && j < n_markers; j++)
            if (!strcmp(marker_colour[j], l->stroke)) snprintf(id, sizeof id, "arrow%d", j);
        cnn_svg_paint p = {.stroke = l->stroke,
                           .stroke_width = l->width,
                           .dash = l->dash,
                           .marker_end = id[0] ? id : NULL};
        double xy[2 * CNN_DRAW_LINE_MAX_POINTS];
        for (int j = 0; j < l->n; j++) {
            xy[2 * j] = l->x[j];
            xy[2 * j + 1] = l->y[j];
        }
        if (l->n == 2)
            cnn_svg_line(s, xy[0], xy[1], xy[2], xy[3], &p);
        else
            cnn_svg_polyline(s, xy, l->n, &p);
    }
    cnn_svg_group_end(s);
    cnn_svg_group_begin(s, "labels");
    for (int i = 0; i < L->n_texts; i++) {
        const cnn_draw_text *t = &L->texts[i];
        cnn_svg_text(s, t->x, t->y, t->text,
                     &(cnn_svg_font){
                         .size = t->size, .bold = t->bold, .anchor = t->anchor, .fill = t->fill});
    }
    cnn_svg_group_end(s);
    return s;
}

cnn_status cnn_draw_layout_save_svg(const cnn_draw_layout *layout, const char *title,
                                    const char *path, char *err, size_t errlen) {
    cnn_svg *s = layout_svg(layout, title);
    if (!s) return cnn_fail(CNN_STATUS_NO_MEMORY, err, errlen, "%s: out of memory", path);
    cnn_status st = cnn_svg_save(s, path, err, errlen);
    cnn_svg_free(s);
    return st;
}

/* ---- DOT ---------------------------------------------------------------- */

/* A DOT string's contents: quotes and backslashes escaped, newlines as \n. */
static void dot_str(cnn_sb *sb, const char *s) {
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            cnn_sb_printf(sb, "\\%c", *s);
        else if (*s == '\n')
            cnn_sb_puts(sb, "\\n");
        else if ((unsigned char)*s >= 0x20)
            cnn_sb_printf(sb, "%c", *s);
    }
}

static void dot_node(cnn_sb *sb, int net, const char *id, const char *label, cnn_draw_kind kind,
                     bool dark) {
    const draw_colour *c = draw_colour_of(kind);
    cnn_sb_printf(sb, "    m%d_%s [label=\"", net, id);
    dot_str(sb, label);
    if (dark)
        cnn_sb_printf(sb, "\", fillcolor=\"%s\", color=\"%s\", fontcolor=\"#ffffff\"];\n", c->dark,
                      c->dark);
    else
        cnn_sb_printf(sb, "\", fillcolor=\"%s\", color=\"%s\"];\n", c->fill, c->stroke);
}

static void dot_edge(cnn_sb *sb, int net, const char *from, const char *to, const cnn_shape *s,
                     bool with_batch) {
    char shape[128];
    draw_shape_text(shape, sizeof shape, s, !with_batch);
    cnn_sb_printf(sb, "    m%d_%s -> m%d_%s [label=\"%s\"];\n", net, from, net, to, shape);
}

static void dot_blocks(cnn_sb *sb, const draw_net *net, int k) {
    char id[32], from[32];
    for (int b = 0; b < net->n_blocks; b++) {
        const draw_block *blk = &net->blocks[b];
        snprintf(id, sizeof id, "b%d", b);
        dot_node(sb, k, id, blk->label, blk->kind, false);
        for (int j = 0; j < blk->n_inputs; j++) {
            snprintf(from, sizeof from, "b%d", blk->inputs[j]);
            dot_edge(sb, k, from, id, &net->blocks[blk->inputs[j]].out, false);
        }
    }
}

static void dot_graph(cnn_sb *sb, const draw_net *net, int k) {
    const cnn_model *m = net->m;
    int nn = cnn_model_num_nodes(m);
    char id[32], from[32];
    dot_node(sb, k, "input", "input", CNN_DRAW_KIND_INPUT, false);
    for (int i = 0; i < nn; i++) {
        const cnn_layer *L = cnn_model_node_layer(m, i);
        draw_row rows[DRAW_MAX_ROWS];
        int nr = draw_node_rows(m, i, rows, DRAW_MAX_ROWS);
        cnn_sb label = {0};
        cnn_sb_printf(&label, "%s", cnn_op_name(L->op) ? cnn_op_name(L->op) : "?");
        for (int r = 0; r < nr; r++)
            cnn_sb_printf(&label, "\n%s %s", rows[r].name, rows[r].value);
        snprintf(id, sizeof id, "n%d", i);
        dot_node(sb, k, id, label.oom || !label.buf ? "?" : label.buf, draw_kind_of(L->op), true);
        cnn_sb_free(&label);
        const int *in;
        int ni = cnn_model_node_inputs(m, i, &in);
        for (int j = 0; j < ni; j++) {
            cnn_shape s = in[j] >= 0 ? cnn_model_node_stats(m, in[j]).out_shape : net->input;
            if (in[j] >= 0)
                snprintf(from, sizeof from, "n%d", in[j]);
            else
                snprintf(from, sizeof from, "input");
            dot_edge(sb, k, from, id, &s, true);
        }
    }
    dot_node(sb, k, "output", "output", CNN_DRAW_KIND_OUTPUT, false);
    if (nn > 0) {
        snprintf(from, sizeof from, "n%d", nn - 1);
        cnn_shape s = cnn_model_node_stats(m, nn - 1).out_shape;
        dot_edge(sb, k, from, "output", &s, true);
    }
}

static cnn_status write_dot(const draw_net *nets, int n, cnn_draw_style style, const char *path,
                            char *err, size_t errlen) {
    cnn_sb sb = {0};
    cnn_sb_puts(&sb,
                "digraph cnnkit {\n"
                "    graph [rankdir=TB, fontname=\"" CNN_SVG_FONT_FAMILY "\", fontsize=14, "
                "nodesep=0.3, ranksep=0.35];\n"
                "    node [shape=box, style=\"rounded,filled\", fontname=\"" CNN_SVG_FONT_FAMILY
                "\", fontsize=11, penwidth=1.2];\n"
                "    edge [fontname=\"" CNN_SVG_FONT_FAMILY
                "\", fontsize=9, color=\"#666666\", fontcolor=\"#555555\"];\n");
    for (int k = 0; k < n; k++) {
        cnn_sb_printf(&sb, "  subgraph cluster_%d {\n    label=\"", k);
        dot_str(&sb, nets[k].title);
        cnn_sb_puts(&sb, "\";\n    color=\"#cccccc\";\n");
        if (style == CNN_DRAW_GRAPH)
            dot_graph(&sb, &nets[k], k);
        else
            dot_blocks(&sb, &nets[k], k);
        cnn_sb_puts(&sb, "  }\n");
    }
    cnn_sb_puts(&sb, "}\n");
    if (sb.oom) {
        cnn_sb_free(&sb);
        return cnn_fail(CNN_STATUS_NO_MEMORY, err, errlen, "%s: out of memory", path);
    }
    cnn_afile af;
    cnn_status st = cnn_afile_open(&af, path, err, errlen);
    if (st == CNN_OK) {
        if (fwrite(sb.buf, 1, sb.len, af.f) != sb.len) {
            cnn_afile_abort(&af);
            st = cnn_fail(CNN_STATUS_IO, err, errlen, "%s: cannot write", path);
        } else {
            st = cnn_afile_commit(&af, err, errlen);
        }
    }
    cnn_sb_free(&sb);
    return st;
}

/* ---- Drawing ------------------------------------------------------------ */

/* The document's title: the models' titles joined. */
static void doc_title(char *buf, size_t cap, cnn_model *const *models, const char *const *titles,
                      int n) {
    size_t o = 0;
    if (cap) buf[0] = 0;
    for (int i = 0; i < n && o < cap; i++)
        o += (size_t)snprintf(buf + o, cap - o, "%s%s", i ? " vs " : "",
                              titles && titles[i] ? titles[i] : cnn_model_class(models[i]));
}

cnn_status cnn_draw(cnn_model *const *models, const char *const *titles, int n,
                    const cnn_shape *inputs, cnn_draw_style style, cnn_draw_format format,
                    const char *path, char *err, size_t errlen) {
    if ((unsigned)format >= CNN_DRAW_FORMAT_COUNT)
        return cnn_fail(CNN_STATUS_INVALID_ARGUMENT, err, errlen, "unknown output format %d",
                        (int)format);
    if (!path) return cnn_fail(CNN_STATUS_INVALID_ARGUMENT, err, errlen, "no output path");
    if (format == CNN_DRAW_DOT) {
        if ((unsigned)style >= CNN_DRAW_STYLE_COUNT)
            return cnn_fail(CNN_STATUS_INVALID_ARGUMENT, err, errlen, "unknown drawing style %d",
                            (int)style);
        draw_net *nets;
        cnn_status st = draw_nets_build(models, titles, n, inputs, &nets, err, errlen);
        if (st == CNN_OK) st = write_dot(nets, n, style, path, err, errlen);
        draw_nets_free(nets, n);
        return st;
    }
    cnn_draw_layout L;
    cnn_status st = cnn_draw_layout_build(models, titles, n, inputs, style, &L, err, errlen);
    if (st != CNN_OK) {
        cnn_draw_layout_free(&L);
        return st;
    }
    char title[512];
    doc_title(title, sizeof title, models, titles, n);
    if (format == CNN_DRAW_SVG) {
        st = cnn_draw_layout_save_svg(&L, title, path, err, errlen);
    } else {
        cnn_svg *s = layout_svg(&L, title);
        const char *data;
        size_t len;
        if (!s || cnn_svg_finish(s, &data, &len) != CNN_OK)
            st = cnn_fail(CNN_STATUS_NO_MEMORY, err, errlen, "%s: out of memory", path);
        else
            st = draw_write_png(data, len, path, err, errlen);
        cnn_svg_free(s);
    }
    cnn_draw_layout_free(&L);
    return st;
}
