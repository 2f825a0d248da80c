/* draw_blocks.c - the book's style: a column of labelled boxes per model,
 * output shapes beside them, arrows between them, columns lined up by role. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "draw_impl.h"

#define FONT       14.0
#define MIN_FONT   10.0
#define SHAPE_FONT 12.5
#define TITLE_FONT 17.0

enum {
    MARGIN = 24,
    PAD_X = 12, /* label to box side */
    PAD_Y = 8,  /* label to box top and bottom */
    BOX_H = 36, /* a box with one line */
    BOX_W_MIN = 190,
    BOX_W_MAX = 270,
    ROW_GAP = 26,   /* between boxes: the arrow */
    COL_GAP = 48,   /* between columns */
    SHAPE_GAP = 10, /* box to the shape beside it */
    TITLE_GAP = 12, /* title to the first box */
    SIDE_STEP = 9,  /* between arrows routed beside a column */
    LEGEND_TOP = 26,
};

typedef struct cell {
    int row;
    cnn_svg_fitted fit;
    double x, y, w, h; /* the box */
    char shape[96];
    double shape_w;
    int side; /* arrows into it routed beside the column */
} cell;

typedef struct column {
    cell *cells;
    int n;
    double x, w; /* left end and width, the side routes included */
    double side; /* room for side routes left of the boxes */
    double shape_w;
} column;

static bool is_chain_edge(int from, int to) { return from == to - 1; }

cnn_status draw_blocks(const draw_net *nets, int n, cnn_draw_layout *L, char *err, size_t errlen) {
    column *cols = calloc((size_t)n, sizeof *cols);
    if (!cols) return cnn_fail(CNN_STATUS_NO_MEMORY, err, errlen, "out of memory");
    cnn_status st = CNN_OK;
    double *row_h = NULL, *row_y = NULL;
    bool used[CNN_DRAW_KIND_COUNT] = {0};

    /* Rows: the input, the feature layers from the top, Flatten, the dense
     * layers from the bottom, so that the same roles line up across columns. */
    int f_max = 0, flat_any = 0, d_max = 0;
    double natural = 0;
    for (int k = 0; k < n; k++) {
        int f = 0, d = 0;
        for (int b = 0; b < nets[k].n_blocks; b++) {
            const draw_block *blk = &nets[k].blocks[b];
            f += blk->role == DRAW_ROLE_FEATURE;
            d += blk->role == DRAW_ROLE_DENSE;
            flat_any |= blk->role == DRAW_ROLE_FLATTEN;
            double w = cnn_svg_text_width(blk->label, FONT, false) + 2 * PAD_X;
            if (w > natural) natural = w;
            used[blk->kind] = true;
        }
        if (f > f_max) f_max = f;
        if (d > d_max) d_max = d;
    }
    int n_rows = 1 + f_max + flat_any + d_max;
    double bw = fmin(fmax(ceil(natural), BOX_W_MIN), BOX_W_MAX);
    row_h = calloc((size_t)n_rows, sizeof *row_h);
    row_y = calloc((size_t)n_rows, sizeof *row_y);
    if (!row_h || !row_y) {
        st = cnn_fail(CNN_STATUS_NO_MEMORY, err, errlen, "out of memory");
        goto done;
    }

    for (int k = 0; k < n; k++) {
        const draw_net *net = &nets[k];
        column *c = &cols[k];
        c->cells = calloc((size_t)net->n_blocks, sizeof *c->cells);
        if (!c->cells) {
            st = cnn_fail(CNN_STATUS_NO_MEMORY, err, errlen, "out of memory");
            goto done;
        }
        c->n = net->n_blocks;
        int d_k = 0, f = 0, d = 0, n_side = 0;
        for (int b = 0; b < net->n_blocks; b++)
            d_k += net->blocks[b].role == DRAW_ROLE_DENSE;
        for (int b = 0; b < net->n_blocks; b++) {
            const draw_block *blk = &net->blocks[b];
            cell *ce = &c->cells[b];
            switch (blk->role) {
            case DRAW_ROLE_INPUT: ce->row = 0; break;
            case DRAW_ROLE_FEATURE: ce->row = 1 + f++; break;
            case DRAW_ROLE_FLATTEN: ce->row = 1 + f_max; break;
            case DRAW_ROLE_DENSE: ce->row = 1 + f_max + flat_any + (d_max - d_k) + d++; break;
            }
            cnn_svg_fit_text(blk->label, bw - 2 * PAD_X, 3, FONT, MIN_FONT, false, &ce->fit);
            ce->w = bw;
            ce->h = fmax(BOX_H, ce->fit.n_lines * draw_line_height(ce->fit.size) + 2 * PAD_Y);
            if (ce->h > row_h[ce->row]) row_h[ce->row] = ce->h;
            draw_shape_text(ce->shape, sizeof ce->shape, &blk->out, true);
            ce->shape_w = cnn_svg_text_width(ce->shape, SHAPE_FONT, false);
            if (ce->shape_w > c->shape_w) c->shape_w = ce->shape_w;
            for (int j = 0; j < blk->n_inputs; j++)
                if (!is_chain_edge(blk->inputs[j], b)) ce->side = ++n_side;
        }
        c->side = n_side ? 8 + SIDE_STEP * n_side : 0;
        c->w = c->side + bw + SHAPE_GAP + c->shape_w;
        double title_w = cnn_svg_text_width(net->title, TITLE_FONT, true);
        if (title_w > c->w) c->w = fmin(title_w, bw + SHAPE_GAP + 200 + c->side);
    }

    /* Widths: the columns, and the legend under them. */
    double content_w = 0;
    for (int k = 0; k < n; k++)
        content_w += cols[k].w + (k ? COL_GAP : 0);
    double legend_w;
    draw_legend(NULL, used, false, 0, 0, 1e9, &legend_w);
    double legend_max = fmax(content_w, fmin(legend_w, 640));
    double legend_h = draw_legend(NULL, used, false, 0, 0, legend_max, &legend_w);
    double inner_w = fmax(content_w, legend_w);
    L->width = ceil(2 * MARGIN + inner_w);

    double title_h = TITLE_FONT * 1.2 + TITLE_GAP;
    double y = round(MARGIN + title_h);
    for (int r = 0; r < n_rows; r++) {
        row_y[r] = y;
        y += row_h[r] + ROW_GAP;
    }
    double legend_y = y - ROW_GAP + LEGEND_TOP;
    L->height = ceil(legend_y + legend_h + MARGIN);

    draw_rect(L, 0, 0, L->width, L->height, 0, "#ffffff", NULL, 0, -1);
    double x = round(MARGIN + (inner_w - content_w) / 2);
    for (int k = 0; k < n; k++) {
        const draw_net *net = &nets[k];
        column *c = &cols[k];
        c->x = x;
        x += c->w + COL_GAP;
        double box_x = c->x + c->side;

        /* The title, centred over the boxes as far as the column allows. */
        cnn_svg_fitted tf;
        cnn_svg_fit_text(net->title, c->w, 1, TITLE_FONT, 11, true, &tf);
        double tcx = fmin(fmax(box_x + bw / 2, c->x + tf.width / 2), c->x + c->w - tf.width / 2);
        draw_fitted(L, &tf, tcx, MARGIN + TITLE_FONT * 0.6, CNN_SVG_ANCHOR_MIDDLE, true, DRAW_INK,
                    -1);

        for (int b = 0; b < c->n; b++) {
            const draw_block *blk = &net->blocks[b];
            cell *ce = &c->cells[b];
            const draw_colour *col = draw_colour_of(blk->kind);
            ce->x = box_x;
            ce->y = row_y[ce->row] + (row_h[ce->row] - ce->h) / 2;
            int rect =
                draw_rect(L, ce->x, ce->y, ce->w, ce->h, 5, col->fill, col->stroke, 1.3, blk->kind);
            double cy = ce->y + ce->h / 2;
            draw_fitted(L, &ce->fit, ce->x + ce->w / 2, cy, CNN_SVG_ANCHOR_MIDDLE, false, DRAW_INK,
                        rect);
            draw_text(L, ce->x + ce->w + SHAPE_GAP, draw_baseline(cy, SHAPE_FONT),
                      CNN_SVG_ANCHOR_START, SHAPE_FONT, false, DRAW_MUTED, ce->shape, -1);
        }
        /* Arrows: down the column between neighbours, beside it otherwise. */
        int side = 0;
        for (int b = 1; b < c->n; b++) {
            const draw_block *blk = &net->blocks[b];
            const cell *to = &c->cells[b];
            for (int j = 0; j < blk->n_inputs; j++) {
                const cell *from = &c->cells[blk->inputs[j]];
                if (is_chain_edge(blk->inputs[j], b)) {
                    double cx = to->x + to->w / 2;
                    double xy[] = {cx, from->y + from->h, cx, to->y - 0.5};
                    draw_line(L, xy, 2, DRAW_EDGE, 1.4, NULL, true);
                } else {
                    double sx = box_x - 8 - SIDE_STEP * side++;
                    double fy = from->y + from->h / 2, ty = to->y + to->h / 2;
                    double xy[] = {box_x, fy, sx, fy, sx, ty, box_x - 0.5, ty};
                    draw_line(L, xy, 4, DRAW_EDGE, 1.4, NULL, true);
                }
            }
        }
    }
    draw_legend(L, used, false, MARGIN + inner_w / 2, legend_y, legend_max, &legend_w);

done:
    for (int k = 0; k < n; k++)
        free(cols[k].cells);
    free(cols);
    free(row_h);
    free(row_y);
    return st;
}
