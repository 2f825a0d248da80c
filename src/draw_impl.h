/* draw_impl.h - what the drawing styles share: models read into blocks (a
 * layer with its activation and dropout folded in, labelled the book's way),
 * colours, and the layout's primitives. Never installed. */
#ifndef CNNKIT_DRAW_IMPL_H
#define CNNKIT_DRAW_IMPL_H

#include "cnnkit/draw.h"
#include "util.h"

#define DRAW_BLOCK_MAX_NODES  8
#define DRAW_BLOCK_MAX_INPUTS 4
#define DRAW_LABEL_CAP        256

/* Text colours. */
#define DRAW_INK   "#222222"
#define DRAW_MUTED "#555555"
#define DRAW_FAINT "#888888"
#define DRAW_EDGE  "#666666"

/* Where a block sits in a network; columns line up by it. */
typedef enum draw_role {
    DRAW_ROLE_INPUT,
    DRAW_ROLE_FEATURE, /* before the first Flatten or Linear */
    DRAW_ROLE_FLATTEN, /* that first Flatten */
    DRAW_ROLE_DENSE    /* after it */
} draw_role;

/* One box of the blocks style: a layer and the activation or dropout that
 * directly follow it, or the model's input (block 0). */
typedef struct draw_block {
    int nodes[DRAW_BLOCK_MAX_NODES]; /* graph nodes, the main one first; none for the input */
    int n_nodes;
    int inputs[DRAW_BLOCK_MAX_INPUTS]; /* producing blocks */
    int n_inputs;
    cnn_draw_kind kind;
    draw_role role;
    cnn_shape out;
    char label[DRAW_LABEL_CAP]; /* "5x5 Conv(6), pad 2, sigmoid" */
} draw_block;

typedef struct draw_net {
    cnn_model *m;
    const char *title;
    cnn_shape input;
    draw_block *blocks;
    int n_blocks;
} draw_net;

/* Infers every model's shapes and reads it into blocks. On failure err names
 * the model and what went wrong. Free with draw_nets_free (also on failure). */
cnn_status draw_nets_build(cnn_model *const *models, const char *const *titles, int n,
                           const cnn_shape *inputs, draw_net **out, char *err, size_t errlen);
void draw_nets_free(draw_net *nets, int n);

/* A kind's light fill, its stroke, and a dark shade for white text. */
typedef struct draw_colour {
    const char *fill, *stroke, *dark;
} draw_colour;
const draw_colour *draw_colour_of(cnn_draw_kind kind);

/* The kind of box an op is drawn as. */
cnn_draw_kind draw_kind_of(cnn_op op);

/* "6x28x28": a shape's dimensions joined by 'x', the batch dimension
 * dropped when drop_batch and there are at least two. */
void draw_shape_text(char *buf, size_t cap, const cnn_shape *s, bool drop_batch);

/* A (height, width) pair: "2" when equal, else "(1, 2)"; as_size writes "3x5" instead. */
void draw_pair_text(char *buf, size_t cap, const int64_t v[2], bool as_size);

/* ---- Layout primitives (draw.c) ----------------------------------------- */

/* Appends; they return the new item's index, or -1 and set layout->oom. */
int draw_rect(cnn_draw_layout *L, double x, double y, double w, double h, double rx,
              const char *fill, const char *stroke, double stroke_width, int kind);
int draw_text(cnn_draw_layout *L, double x, double y, cnn_svg_anchor anchor, double size, bool bold,
              const char *fill, const char *text, int rect);
int draw_line(cnn_draw_layout *L, const double *xy, int n, const char *stroke, double width,
              const char *dash, bool arrow);

/* The baseline that centres a line of capitals and digits on cy. */
double draw_baseline(double cy, double size);

/* Line spacing of fitted text: never less than a line's ascent plus descent. */
double draw_line_height(double size);

/* Writes fitted lines centred on (cx, cy), each anchored as anchor at x = cx
 * (or the left end for START). */
void draw_fitted(cnn_draw_layout *L, const cnn_svg_fitted *f, double cx, double cy,
                 cnn_svg_anchor anchor, bool bold, const char *fill, int rect);

/* The legend: a swatch and a name for each kind in used, in rows no wider
 * than max_w, each centred on cx. With L NULL it only measures. Swatches use
 * the dark shades when dark. Returns the legend's height and sets *width to
 * its widest row. */
double draw_legend(cnn_draw_layout *L, const bool used[CNN_DRAW_KIND_COUNT], bool dark, double cx,
                   double y, double max_w, double *width);

/* The styles. */
cnn_status draw_blocks(const draw_net *nets, int n, cnn_draw_layout *L, char *err, size_t errlen);
cnn_status draw_graph(const draw_net *nets, int n, cnn_draw_layout *L, char *err, size_t errlen);
cnn_status draw_planes(const draw_net *nets, int n, cnn_draw_layout *L, char *err, size_t errlen);

/* ---- Graph style's node contents (draw_graph.c), shared with DOT -------- */

typedef struct draw_row {
    char name[32];   /* "W", "kernel_size" */
    char value[128]; /* "<6x1x5x5>", "5x5" */
} draw_row;

#define DRAW_MAX_ROWS 12

/* A node's parameter shapes and non-default attributes, Netron's way. Returns the count. */
int draw_node_rows(const cnn_model *m, int node, draw_row *rows, int max);

/* ---- Output (draw.c, draw_png.c) ---------------------------------------- */

cnn_status draw_write_png(const char *svg, size_t len, const char *path, char *err, size_t errlen);

#endif
