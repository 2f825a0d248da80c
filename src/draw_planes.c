/* draw_planes.c - LeCun's style: feature maps as stacks of offset planes
 * scaled by their size ("6@28x28"), the layer between two stacks written
 * under the gap, a kernel's receptive field projected onto the next map,
 * then the dense layers as bars. One row per model. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "draw_impl.h"

#define TENSOR_FONT 12.5
#define OP_FONT     11.5
#define MIN_FONT    9.0
#define TITLE_FONT  16.0

enum {
    MARGIN = 24,
    SIDE_MAX = 130, /* the largest map's side */
    SIDE_MIN = 22,  /* the smallest map's side, when sizes differ a lot */
    BAR_W = 16,
    BAR_MIN = 24,
    OFFSET_MAX = 48, /* depth of a stack */
    GAP_MIN = 44,    /* between two elements */
    OP_W = 124,      /* widest op label */
    LABEL_GAP = 14,  /* elements to their labels */
    OP_GAP = 8,      /* tensor labels to op labels */
    OP_SPACING = 22, /* between op labels */
    TITLE_GAP = 12,
    ROW_GAP = 34,
    LEGEND_TOP = 26,
};

typedef struct element {
    bool stack;
    cnn_draw_kind kind;
    int64_t c, mh, mw;             /* a stack's channels and map size; a bar's units in c */
    int64_t kernel[2], in_h, in_w; /* of the layer into the next element */
    char tensor[96];
    char op[2 * DRAW_LABEL_CAP]; /* the layers into it; "" for the first */
    cnn_svg_fitted tfit, ofit;
    int n_planes;
    double side_w, side_h, d; /* a plane's size and the offset between planes */
    double w, h;              /* the whole drawing */
    double slot;              /* its width with its label */
    double x, y;              /* its drawing's top left */
    double op_cx;             /* the op label's centre */
} element;

typedef struct prow {
    element *els;
    int n;
    double w, min_x; /* extent, relative to the first element's slot */
    double h;        /* tallest element */
} prow;

static int64_t numel_of(const cnn_shape *s, int first) {
    int64_t n = 1;
    for (int i = first; i < s->ndim; i++)
        n = n > INT64_MAX / (s->dim[i] ? s->dim[i] : 1) ? INT64_MAX : n * s->dim[i];
    return n;
}

static void set_shape(element *e, const cnn_shape *s) {
    e->stack = s->ndim == 4;
    if (e->stack) {
        e->c = s->dim[1];
        e->mh = s->dim[2];
        e->mw = s->dim[3];
        snprintf(e->tensor, sizeof e->tensor, "%lld@%lldx%lld", (long long)e->c, (long long)e->mh,
                 (long long)e->mw);
    } else {
        e->c = numel_of(s, s->ndim >= 2 ? 1 : 0);
        draw_shape_text(e->tensor, sizeof e->tensor, s, true);
    }
}

static bool same_map(const element *e, const cnn_shape *s) {
    element t = {0};
    set_shape(&t, s);
    return t.stack == e->stack && t.c == e->c && t.mh == e->mh && t.mw == e->mw;
}

/* A model's elements: the input, then a new one wherever a conv, pool,
 * flatten or dense layer or a new shape starts; other layers join the label
 * of the element before. */
static bool build_row(const draw_net *net, prow *r) {
    r->els = calloc((size_t)net->n_blocks, sizeof *r->els);
    if (!r->els) return false;
    element *e = &r->els[0];
    set_shape(e, &net->input);
    e->kind = CNN_DRAW_KIND_INPUT;
    r->n = 1;
    for (int b = 1; b < net->n_blocks; b++) {
        const draw_block *blk = &net->blocks[b];
        element *prev = &r->els[r->n - 1];
        bool starts = blk->kind == CNN_DRAW_KIND_CONV || blk->kind == CNN_DRAW_KIND_POOL ||
                      blk->kind == CNN_DRAW_KIND_DENSE || blk->kind == CNN_DRAW_KIND_FLATTEN ||
                      r->n == 1 || !same_map(prev, &blk->out);
        if (!starts) {
            size_t len = strlen(prev->op);
            snprintf(prev->op + len, sizeof prev->op - len, ", %s", blk->label);
            continue;
        }
        e = &r->els[r->n++];
        set_shape(e, &blk->out);
        e->kind = blk->kind;
        snprintf(e->op, sizeof e->op, "%s", blk->label);
        const cnn_layer *L = cnn_model_node_layer(net->m, blk->nodes[0]);
        if (prev->stack && e->stack &&
            (L->op == CNN_OP_CONV2D || L->op == CNN_OP_MAXPOOL2D || L->op == CNN_OP_AVGPOOL2D)) {
            prev->kernel[0] = L->kernel[0];
            prev->kernel[1] = L->kernel[1];
        }
    }
    return true;
}

/* Sizes: sides scaled with one exponent for every map of the figure, linear
 * when that keeps the smallest map readable, flatter when sizes differ a lot. */
typedef struct scale {
    double max_dim, exponent, max_units;
} scale;

static double side_of(const scale *s, int64_t dim) {
    return fmax(SIDE_MAX * pow((double)dim / s->max_dim, s->exponent), 6);
}

static void size_element(element *e, const scale *s) {
    if (e->stack) {
        e->side_h = side_of(s, e->mh);
        e->side_w = side_of(s, e->mw);
        e->n_planes = (int)fmin((double)e->c, 1 + round(1.6 * log2((double)e->c)));
        if (e->n_planes < 1) e->n_planes = 1;
        e->d = e->n_planes > 1 ? fmin(6, (double)OFFSET_MAX / (e->n_planes - 1)) : 0;
        e->w = e->side_w + (e->n_planes - 1) * e->d;
        e->h = e->side_h + (e->n_planes - 1) * e->d;
    } else {
        double f = s->max_units > 1 ? log2((double)e->c + 1) / log2(s->max_units + 1) : 1;
        e->w = BAR_W;
        e->h = BAR_MIN + (SIDE_MAX - BAR_MIN) * f;
    }
    cnn_svg_fit_text(e->tensor, 160, 1, TENSOR_FONT, MIN_FONT, false, &e->tfit);
    cnn_svg_fit_text(e->op, OP_W, 3, OP_FONT, MIN_FONT, false, &e->ofit);
    e->slot = fmax(e->w, e->tfit.width + 8);
}

/* Places elements left to right with room for every label. */
static void place_row(prow *r) {
    double x = 0, prev_op_right = -1e9;
    r->min_x = 0;
    r->h = 0;
    for (int i = 0; i < r->n; i++) {
        element *e = &r->els[i];
        r->h = fmax(r->h, e->h);
        if (i > 0) {
            const element *p = &r->els[i - 1];
            double gap = GAP_MIN;
            double cx = x + p->slot + gap / 2;
            if (e->op[0] && cx - e->ofit.width / 2 < prev_op_right + OP_SPACING) {
                gap += 2 * (prev_op_right + OP_SPACING - (cx - e->ofit.width / 2));
                cx = x + p->slot + gap / 2;
            }
            e->op_cx = cx;
            if (e->op[0]) {
                prev_op_right = cx + e->ofit.width / 2;
                r->min_x = fmin(r->min_x, cx - e->ofit.width / 2);
            }
            x += p->slot + gap;
        }
        e->x = x + (e->slot - e->w) / 2;
    }
    const element *last = &r->els[r->n - 1];
    r->w = fmax(x + last->slot, prev_op_right) - r->min_x;
}

/* A stack of planes, back to front, the front one at the bottom left. */
static void draw_stack(cnn_draw_layout *L, const element *e) {
    const draw_colour *col = draw_colour_of(e->kind);
    for (int k = e->n_planes - 1; k >= 0; k--)
        draw_rect(L, e->x + k * e->d, e->y + (e->n_planes - 1 - k) * e->d, e->side_w, e->side_h, 0,
                  col->fill, col->stroke, 0.9, e->kind);
}

static void front_plane(const element *e, double *x, double *y, double *w, double *h) {
    *x = e->x;
    *y = e->y + (e->n_planes - 1) * e->d;
    *w = e->side_w;
    *h = e->side_h;
}

/* The receptive field of the layer into the next map: its kernel on this
 * map's front plane, joined to a point on the next. */
static void draw_projection(cnn_draw_layout *L, const element *a, const element *b) {
    double ax, ay, aw, ah, bx, by, bw, bh;
    front_plane(a, &ax, &ay, &aw, &ah);
    front_plane(b, &bx, &by, &bw, &bh);
    double kw = fmin(fmax(aw * (double)a->kernel[1] / (double)a->mw, 5), aw / 2);
    double kh = fmin(fmax(ah * (double)a->kernel[0] / (double)a->mh, 5), ah / 2);
    double kx = ax + aw * 0.66 - kw / 2, ky = ay + ah * 0.34 - kh / 2;
    double tx = bx + bw * 0.34, ty = by + bh * 0.62;
    draw_rect(L, kx, ky, kw, kh, 0, "none", "#333333", 1, -1);
    draw_rect(L, tx - 1.5, ty - 1.5, 3, 3, 0, "#333333", NULL, 0, -1);
    double top[] = {kx + kw, ky, tx, ty};
    double bottom[] = {kx + kw, ky + kh, tx, ty};
    draw_line(L, top, 2, "#777777", 0.8, NULL, false);
    draw_line(L, bottom, 2, "#777777", 0.8, NULL, false);
}

cnn_status draw_planes(const draw_net *nets, int n, cnn_draw_layout *L, char *err, size_t errlen) {
    prow *rows = calloc((size_t)n, sizeof *rows);
    if (!rows) return cnn_fail(CNN_STATUS_NO_MEMORY, err, errlen, "out of memory");
    cnn_status st = CNN_OK;
    bool used[CNN_DRAW_KIND_COUNT] = {0};
    scale sc = {.max_dim = 1, .exponent = 1, .max_units = 1};
    double min_dim = 1e300;
    for (int k = 0; k < n; k++) {
        if (!build_row(&nets[k], &rows[k])) {
            st = cnn_fail(CNN_STATUS_NO_MEMORY, err, errlen, "out of memory");
            goto done;
        }
        for (int i = 0; i < rows[k].n; i++) {
            const element *e = &rows[k].els[i];
            used[e->kind] = true;
            if (e->stack) {
                sc.max_dim = fmax(sc.max_dim, (double)(e->mh > e->mw ? e->mh : e->mw));
                min_dim = fmin(min_dim, (double)(e->mh < e->mw ? e->mh : e->mw));
            } else {
                sc.max_units = fmax(sc.max_units, (double)e->c);
            }
        }
    }
    if (min_dim < sc.max_dim && SIDE_MAX * min_dim / sc.max_dim < SIDE_MIN)
        sc.exponent = log((double)SIDE_MAX / SIDE_MIN) / log(sc.max_dim / min_dim);

    double content_w = 0;
    for (int k = 0; k < n; k++) {
        for (int i = 0; i < rows[k].n; i++)
            size_element(&rows[k].els[i], &sc);
        place_row(&rows[k]);
        content_w = fmax(content_w, rows[k].w);
        content_w = fmax(content_w, cnn_svg_text_width(nets[k].title, TITLE_FONT, true));
    }
    double legend_w;
    draw_legend(NULL, used, false, 0, 0, 1e9, &legend_w);
    double legend_max = fmax(content_w, fmin(legend_w, 640));
    double legend_h = draw_legend(NULL, used, false, 0, 0, legend_max, &legend_w);
    double inner_w = fmax(content_w, legend_w);

    /* Heights: title, the elements, their tensor labels, the op labels. */
    double tlh = draw_line_height(TENSOR_FONT);
    double y = MARGIN;
    double *row_top = calloc((size_t)n, sizeof *row_top);
    if (!row_top) {
        st = cnn_fail(CNN_STATUS_NO_MEMORY, err, errlen, "out of memory");
        goto done;
    }
    for (int k = 0; k < n; k++) {
        row_top[k] = y;
        int op_lines = 0;
        for (int i = 0; i < rows[k].n; i++)
            if (rows[k].els[i].op[0] && rows[k].els[i].ofit.n_lines > op_lines)
                op_lines = rows[k].els[i].ofit.n_lines;
        y += TITLE_FONT * 1.2 + TITLE_GAP + rows[k].h + LABEL_GAP + tlh + OP_GAP +
             op_lines * draw_line_height(OP_FONT) + ROW_GAP;
    }
    double legend_y = y - ROW_GAP + LEGEND_TOP;
    L->width = ceil(2 * MARGIN + inner_w);
    L->height = ceil(legend_y + legend_h + MARGIN);
    draw_rect(L, 0, 0, L->width, L->height, 0, "#ffffff", NULL, 0, -1);

    for (int k = 0; k < n; k++) {
        prow *r = &rows[k];
        double ox = MARGIN - r->min_x;
        double top = row_top[k];
        cnn_svg_fitted tf;
        cnn_svg_fit_text(nets[k].title, inner_w, 1, TITLE_FONT, 11, true, &tf);
        draw_fitted(L, &tf, MARGIN, top + TITLE_FONT * 0.6, CNN_SVG_ANCHOR_START, true, DRAW_INK,
                    -1);
        double mid = top + TITLE_FONT * 1.2 + TITLE_GAP + r->h / 2;
        double tensor_cy = mid + r->h / 2 + LABEL_GAP + tlh / 2;
        double op_top = tensor_cy + tlh / 2 + OP_GAP;
        for (int i = 0; i < r->n; i++) {
            element *e = &r->els[i];
            e->x += ox;
            e->op_cx += ox;
            e->y = mid - e->h / 2;
            if (e->stack) {
                draw_stack(L, e);
            } else {
                const draw_colour *col = draw_colour_of(e->kind);
                draw_rect(L, e->x, e->y, e->w, e->h, 2, col->fill, col->stroke, 1, e->kind);
            }
            draw_fitted(L, &e->tfit, e->x + e->w / 2, tensor_cy, CNN_SVG_ANCHOR_MIDDLE, false,
                        DRAW_INK, -1);
            if (i > 0 && e->op[0])
                draw_fitted(L, &e->ofit, e->op_cx,
                            op_top + e->ofit.n_lines * draw_line_height(e->ofit.size) / 2,
                            CNN_SVG_ANCHOR_MIDDLE, false, DRAW_MUTED, -1);
        }
        for (int i = 1; i < r->n; i++) {
            const element *a = &r->els[i - 1], *b = &r->els[i];
            if (a->stack && b->stack && a->kernel[0] > 0) {
                draw_projection(L, a, b);
            } else {
                double xy[] = {a->x + a->w + 6, mid, b->x - 6, mid};
                if (xy[2] - xy[0] > 10) draw_line(L, xy, 2, DRAW_EDGE, 1.3, NULL, true);
            }
        }
    }
    free(row_top);
    draw_legend(L, used, false, MARGIN + inner_w / 2, legend_y, legend_max, &legend_w);
done:
    for (int k = 0; k < n; k++)
        free(rows[k].els);
    free(rows);
    return st;
}
