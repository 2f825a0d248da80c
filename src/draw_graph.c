/* draw_graph.c - Netron's style: every op a node headed by its type, listing
 * its parameter shapes and attributes, every edge labelled with its shape. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "draw_impl.h"

#define HEAD_FONT  13.0
#define ROW_FONT   12.0
#define EDGE_FONT  11.0
#define PATH_FONT  11.0
#define TITLE_FONT 17.0

enum {
    MARGIN = 24,
    HEAD_H = 26,     /* the header with the op's type */
    ROW_H = 18,      /* a line of the body */
    BODY_PAD = 6,    /* above and below the body's lines */
    NODE_PAD_X = 10, /* text to the node's sides */
    NAME_GAP = 6,    /* a row's name to its value */
    NODE_W_MIN = 96,
    NODE_W_MAX = 340,
    EDGE_GAP = 38, /* between ranks: the edge and its label */
    RANK_GAP = 28, /* between nodes side by side */
    PATH_GAP = 8,  /* the module path to its node */
    EDGE_LABEL_GAP = 6,
    COL_GAP = 56,
    TITLE_GAP = 14,
    LEGEND_TOP = 28,
};

/* ---- Node contents ------------------------------------------------------ */

static void row(draw_row *rows, int *n, int max, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static void row(draw_row *rows, int *n, int max, const char *name, const char *fmt, ...) {
    if (*n >= max) return;
    snprintf(rows[*n].name, sizeof rows[*n].name, "%s", name);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(rows[*n].value, sizeof rows[*n].value, fmt, ap);
    va_end(ap);
    (*n)++;
}

static void pair_row(draw_row *rows, int *n, int max, const char *name, const int64_t v[2]) {
    char b[64];
    draw_pair_text(b, sizeof b, v, true);
    row(rows, n, max, name, "%s", b);
}

static void float_row(draw_row *rows, int *n, int max, const char *name, double v) {
    char b[40];
    cnn_format_pyfloat(b, sizeof b, v);
    row(rows, n, max, name, "%s", b);
}

/* A parameter's short name, as Netron shows ONNX inputs: W, B, mean, var. */
static const char *param_short(const char *key) {
    const char *dot = strrchr(key, '.');
    const char *leaf = dot ? dot + 1 : key;
    if (!strcmp(leaf, "weight")) return "W";
    if (!strcmp(leaf, "bias")) return "B";
    if (!strcmp(leaf, "running_mean")) return "mean";
    if (!strcmp(leaf, "running_var")) return "var";
    if (!strcmp(leaf, "num_batches_tracked")) return NULL;
    return leaf;
}

int draw_node_rows(const cnn_model *m, int node, draw_row *rows, int max) {
    int n = 0;
    for (int i = 0; i < cnn_model_num_params(m); i++) {
        cnn_param_info p = cnn_model_param(m, i);
        const char *name = p.node == node ? param_short(p.name) : NULL;
        if (!name) continue;
        char shape[96];
        draw_shape_text(shape, sizeof shape, &p.shape, false);
        row(rows, &n, max, name, "<%s>", shape);
    }
    const cnn_layer *L = cnn_model_node_layer(m, node);
    switch (L->op) {
    case CNN_OP_CONV2D:
        pair_row(rows, &n, max, "kernel_size", L->kernel);
        if (L->stride[0] != 1 || L->stride[1] != 1) pair_row(rows, &n, max, "stride", L->stride);
        if (L->padding[0] || L->padding[1]) pair_row(rows, &n, max, "padding", L->padding);
        if (L->dilation[0] != 1 || L->dilation[1] != 1)
            pair_row(rows, &n, max, "dilation", L->dilation);
        if (L->groups != 1) row(rows, &n, max, "groups", "%lld", (long long)L->groups);
        break;
    case CNN_OP_MAXPOOL2D:
    case CNN_OP_AVGPOOL2D:
        pair_row(rows, &n, max, "kernel_size", L->kernel);
        if (L->stride[0] != L->kernel[0] || L->stride[1] != L->kernel[1])
            pair_row(rows, &n, max, "stride", L->stride);
        if (L->padding[0] || L->padding[1]) pair_row(rows, &n, max, "padding", L->padding);
        if (L->op == CNN_OP_MAXPOOL2D && (L->dilation[0] != 1 || L->dilation[1] != 1))
            pair_row(rows, &n, max, "dilation", L->dilation);
        if (L->ceil_mode) row(rows, &n, max, "ceil_mode", "True");
        if (L->op == CNN_OP_AVGPOOL2D && !L->count_include_pad)
            row(rows, &n, max, "count_include_pad", "False");
        break;
    case CNN_OP_ADAPTIVEAVGPOOL2D: pair_row(rows, &n, max, "output_size", L->output_size); break;
    case CNN_OP_FLATTEN:
        row(rows, &n, max, "start_dim", "%lld", (long long)L->start_dim);
        row(rows, &n, max, "end_dim", "%lld", (long long)L->end_dim);
        break;
    case CNN_OP_DROPOUT: float_row(rows, &n, max, "p", L->p); break;
    case CNN_OP_BATCHNORM2D:
        float_row(rows, &n, max, "eps", L->eps);
        if (L->momentum_none)
            row(rows, &n, max, "momentum", "None");
        else
            float_row(rows, &n, max, "momentum", L->momentum);
        break;
    case CNN_OP_LRN:
        row(rows, &n, max, "size", "%lld", (long long)L->in);
        float_row(rows, &n, max, "alpha", L->alpha);
        float_row(rows, &n, max, "beta", L->beta);
        float_row(rows, &n, max, "k", L->k);
        break;
    case CNN_OP_SOFTMAX: row(rows, &n, max, "dim", "%lld", (long long)L->dim); break;
    default: break;
    }
    return n;
}

/* ---- Layout ------------------------------------------------------------- */

typedef struct gnode {
    cnn_draw_kind kind;
    char head[64];
    const char *path; /* module path, NULL for the input and output */
    draw_row rows[DRAW_MAX_ROWS];
    int n_rows;
    double name_w;    /* the widest row name */
    double value_max; /* room for a value */
    double path_w;
    double x, y, w, h;
    int rank;
    int inputs[DRAW_BLOCK_MAX_INPUTS]; /* item indices */
    int n_inputs;
    cnn_shape out;
} gnode;

typedef struct gcol {
    gnode *items; /* the input, one per node, the output */
    int n;
    double x, w, axis; /* left end, width, the offset of the ranks' centre */
    double min_x;      /* leftmost extent, relative to the axis */
    int n_ranks;
} gcol;

static bool is_pill(const gnode *g) {
    return g->kind == CNN_DRAW_KIND_INPUT || g->kind == CNN_DRAW_KIND_OUTPUT;
}

/* Reads a model into items, sized and ranked. */
static bool build_items(const draw_net *net, gcol *c) {
    const cnn_model *m = net->m;
    int nn = cnn_model_num_nodes(m);
    c->n = nn + 2;
    c->items = calloc((size_t)c->n, sizeof *c->items);
    if (!c->items) return false;
    gnode *in = &c->items[0], *out = &c->items[nn + 1];
    in->kind = CNN_DRAW_KIND_INPUT;
    snprintf(in->head, sizeof in->head, "input");
    in->out = net->input;
    for (int i = 0; i < nn; i++) {
        gnode *g = &c->items[i + 1];
        const cnn_layer *L = cnn_model_node_layer(m, i);
        g->kind = draw_kind_of(L->op);
        snprintf(g->head, sizeof g->head, "%s", cnn_op_name(L->op) ? cnn_op_name(L->op) : "?");
        g->path = cnn_model_node_path(m, i);
        g->n_rows = draw_node_rows(m, i, g->rows, DRAW_MAX_ROWS);
        g->out = cnn_model_node_stats(m, i).out_shape;
        const int *ins;
        int k = cnn_model_node_inputs(m, i, &ins);
        for (int j = 0; j < k && g->n_inputs < DRAW_BLOCK_MAX_INPUTS; j++)
            g->inputs[g->n_inputs++] = ins[j] >= 0 && ins[j] < nn ? ins[j] + 1 : 0;
        if (k == 0) g->inputs[g->n_inputs++] = 0;
    }
    out->kind = CNN_DRAW_KIND_OUTPUT;
    snprintf(out->head, sizeof out->head, "output");
    out->inputs[out->n_inputs++] = nn;
    out->out = nn ? c->items[nn].out : net->input;

    for (int i = 0; i < c->n; i++) {
        gnode *g = &c->items[i];
        for (int j = 0; j < g->n_inputs; j++)
            if (c->items[g->inputs[j]].rank + 1 > g->rank)
                g->rank = c->items[g->inputs[j]].rank + 1;
        if (g->rank + 1 > c->n_ranks) c->n_ranks = g->rank + 1;
        double head_w = cnn_svg_text_width(g->head, HEAD_FONT, true);
        if (is_pill(g)) {
            g->w = head_w + 2 * 16;
            g->h = HEAD_H;
            continue;
        }
        double value_w = 0;
        for (int r = 0; r < g->n_rows; r++) {
            g->name_w = fmax(g->name_w, cnn_svg_text_width(g->rows[r].name, ROW_FONT, true));
            value_w = fmax(value_w, cnn_svg_text_width(g->rows[r].value, ROW_FONT, false));
        }
        double body_w = g->n_rows ? 2 * NODE_PAD_X + g->name_w + NAME_GAP + value_w : 0;
        g->w = fmin(fmax(fmax(head_w + 2 * 14, body_w), g->n_rows ? NODE_W_MIN : 0), NODE_W_MAX);
        g->w = ceil(g->w);
        g->value_max = g->w - 2 * NODE_PAD_X - g->name_w - NAME_GAP;
        g->h = HEAD_H + (g->n_rows ? 2 * BODY_PAD + g->n_rows * ROW_H : 0);
        g->path_w = g->path && *g->path ? cnn_svg_text_width(g->path, PATH_FONT, false) : 0;
    }
    return true;
}

/* Places a column's items relative to its axis (x) and its top (y). */
static void place_items(gcol *c, double *rank_y, double *rank_h) {
    for (int r = 0; r < c->n_ranks; r++)
        rank_h[r] = 0;
    for (int i = 0; i < c->n; i++)
        rank_h[c->items[i].rank] = fmax(rank_h[c->items[i].rank], c->items[i].h);
    double y = 0;
    for (int r = 0; r < c->n_ranks; r++) {
        rank_y[r] = y;
        y += rank_h[r] + EDGE_GAP;
    }
    c->min_x = 0;
    double max_x = 0;
    /* A rank's nodes side by side, centred on the axis; module paths hang
     * to the left of their nodes. */
    for (int r = 0; r < c->n_ranks; r++) {
        double total = 0;
        int k = 0;
        for (int i = 0; i < c->n; i++)
            if (c->items[i].rank == r) {
                const gnode *g = &c->items[i];
                total += (k++ ? RANK_GAP + (g->path_w ? g->path_w + PATH_GAP : 0) : 0) + g->w;
            }
        double x = -total / 2;
        k = 0;
        for (int i = 0; i < c->n; i++) {
            gnode *g = &c->items[i];
            if (g->rank != r) continue;
            double path = g->path_w ? g->path_w + PATH_GAP : 0;
            if (k++) x += path;
            g->x = x;
            g->y = rank_y[r];
            x += g->w + RANK_GAP;
            c->min_x = fmin(c->min_x, g->x - path);
            max_x = fmax(max_x, g->x + g->w);
        }
    }
    /* Edge labels sit right of the edge's last stretch. */
    for (int i = 0; i < c->n; i++) {
        const gnode *g = &c->items[i];
        for (int j = 0; j < g->n_inputs; j++) {
            char shape[128];
            draw_shape_text(shape, sizeof shape, &c->items[g->inputs[j]].out, false);
            max_x = fmax(max_x, g->x + g->w / 2 + EDGE_LABEL_GAP +
                                    cnn_svg_text_width(shape, EDGE_FONT, false));
        }
    }
    c->w = max_x - c->min_x;
}

static void draw_item(cnn_draw_layout *L, const gnode *g, double ox, double oy) {
    const draw_colour *col = draw_colour_of(g->kind);
    double x = ox + g->x, y = oy + g->y;
    if (is_pill(g)) {
        int r = draw_rect(L, x, y, g->w, g->h, g->h / 2, col->fill, col->stroke, 1.2, g->kind);
        draw_text(L, x + g->w / 2, draw_baseline(y + g->h / 2, HEAD_FONT), CNN_SVG_ANCHOR_MIDDLE,
                  HEAD_FONT, true, DRAW_INK, g->head, r);
        return;
    }
    int body = -1;
    if (g->n_rows) body = draw_rect(L, x, y, g->w, g->h, 4, "#ffffff", col->dark, 1, g->kind);
    int head = draw_rect(L, x, y, g->w, HEAD_H, 4, col->dark, col->dark, 1, g->kind);
    if (g->n_rows) draw_rect(L, x, y + HEAD_H / 2.0, g->w, HEAD_H / 2.0, 0, col->dark, NULL, 0, -1);
    cnn_svg_fitted f;
    cnn_svg_fit_text(g->head, g->w - 2 * NODE_PAD_X, 1, HEAD_FONT, 9, true, &f);
    draw_fitted(L, &f, x + g->w / 2, y + HEAD_H / 2.0, CNN_SVG_ANCHOR_MIDDLE, true, "#ffffff",
                head);
    for (int r = 0; r < g->n_rows; r++) {
        double cy = y + HEAD_H + BODY_PAD + ROW_H * (r + 0.5);
        draw_text(L, x + NODE_PAD_X, draw_baseline(cy, ROW_FONT), CNN_SVG_ANCHOR_START, ROW_FONT,
                  true, DRAW_INK, g->rows[r].name, body);
        cnn_svg_fit_text(g->rows[r].value, g->value_max, 1, ROW_FONT, 8, false, &f);
        draw_fitted(L, &f, x + NODE_PAD_X + g->name_w + NAME_GAP, cy, CNN_SVG_ANCHOR_START, false,
                    DRAW_MUTED, body);
    }
    if (g->path_w)
        draw_text(L, x - PATH_GAP, draw_baseline(y + HEAD_H / 2.0, PATH_FONT), CNN_SVG_ANCHOR_END,
                  PATH_FONT, false, DRAW_FAINT, g->path, -1);
}

static void draw_edges(cnn_draw_layout *L, const gcol *c, double ox, double oy) {
    for (int i = 0; i < c->n; i++) {
        const gnode *to = &c->items[i];
        for (int j = 0; j < to->n_inputs; j++) {
            const gnode *from = &c->items[to->inputs[j]];
            double x1 = ox + from->x + from->w / 2, y1 = oy + from->y + from->h;
            double x2 = ox + to->x + to->w / 2, y2 = oy + to->y;
            double ymid = (y1 + y2) / 2;
            if (fabs(x1 - x2) < 0.5) {
                double xy[] = {x1, y1, x2, y2 - 0.5};
                draw_line(L, xy, 2, DRAW_EDGE, 1.3, NULL, true);
            } else {
                double ybend = y2 - EDGE_GAP / 2.0 - 4;
                double xy[] = {x1, y1, x1, ybend, x2, ybend, x2, y2 - 0.5};
                draw_line(L, xy, 4, DRAW_EDGE, 1.3, NULL, true);
                ymid = (ybend + y2) / 2;
            }
            char shape[128];
            draw_shape_text(shape, sizeof shape, &from->out, false);
            draw_text(L, x2 + EDGE_LABEL_GAP, draw_baseline(ymid, EDGE_FONT), CNN_SVG_ANCHOR_START,
                      EDGE_FONT, false, DRAW_MUTED, shape, -1);
        }
    }
}

cnn_status draw_graph(const draw_net *nets, int n, cnn_draw_layout *L, char *err, size_t errlen) {
    gcol *cols = calloc((size_t)n, sizeof *cols);
    if (!cols) return cnn_fail(CNN_STATUS_NO_MEMORY, err, errlen, "out of memory");
    cnn_status st = CNN_OK;
    bool used[CNN_DRAW_KIND_COUNT] = {0};
    double content_w = 0, content_h = 0;
    double *rank_y = NULL, *rank_h = NULL;
    for (int k = 0; k < n; k++) {
        gcol *c = &cols[k];
        free(rank_y);
        free(rank_h);
        rank_y = rank_h = NULL;
        if (!build_items(&nets[k], c) || !(rank_y = calloc((size_t)c->n_ranks, sizeof *rank_y)) ||
            !(rank_h = calloc((size_t)c->n_ranks, sizeof *rank_h))) {
            st = cnn_fail(CNN_STATUS_NO_MEMORY, err, errlen, "out of memory");
            goto done;
        }
        place_items(c, rank_y, rank_h);
        double title_w = cnn_svg_text_width(nets[k].title, TITLE_FONT, true);
        if (title_w > c->w) {
            c->min_x -= (fmin(title_w, 480) - c->w) / 2;
            c->w = fmin(title_w, 480);
        }
        content_w += c->w + (k ? COL_GAP : 0);
        content_h = fmax(content_h, rank_y[c->n_ranks - 1] + rank_h[c->n_ranks - 1]);
        for (int i = 0; i < c->n; i++)
            if (c->items[i].kind != CNN_DRAW_KIND_OUTPUT) used[c->items[i].kind] = true;
    }
    double legend_w;
    draw_legend(NULL, used, true, 0, 0, 1e9, &legend_w);
    double legend_max = fmax(content_w, fmin(legend_w, 640));
    double legend_h = draw_legend(NULL, used, true, 0, 0, legend_max, &legend_w);
    double inner_w = fmax(content_w, legend_w);
    double top = MARGIN + TITLE_FONT * 1.2 + TITLE_GAP;
    L->width = ceil(2 * MARGIN + inner_w);
    L->height = ceil(top + content_h + LEGEND_TOP + legend_h + MARGIN);
    draw_rect(L, 0, 0, L->width, L->height, 0, "#ffffff", NULL, 0, -1);

    double x = MARGIN + (inner_w - content_w) / 2;
    for (int k = 0; k < n; k++) {
        gcol *c = &cols[k];
        c->x = x;
        double ox = x - c->min_x;
        x += c->w + COL_GAP;
        cnn_svg_fitted tf;
        cnn_svg_fit_text(nets[k].title, c->w, 1, TITLE_FONT, 11, true, &tf);
        double tcx = fmin(fmax(ox, c->x + tf.width / 2), c->x + c->w - tf.width / 2);
        draw_fitted(L, &tf, tcx, MARGIN + TITLE_FONT * 0.6, CNN_SVG_ANCHOR_MIDDLE, true, DRAW_INK,
                    -1);
        for (int i = 0; i < c->n; i++)
            draw_item(L, &c->items[i], ox, top);
        draw_edges(L, c, ox, top);
    }
    draw_legend(L, used, true, MARGIN + inner_w / 2, top + content_h + LEGEND_TOP, legend_max,
                &legend_w);
done:
    free(rank_y);
    free(rank_h);
    for (int k = 0; k < n; k++)
        free(cols[k].items);
    free(cols);
    return st;
}
