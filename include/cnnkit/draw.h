/* cnnkit/draw.h - figures of models: architecture diagrams drawn from the model.
 *
 * Three styles, each for one model or several side by side:
 *
 *   CNN_DRAW_BLOCKS  the d2l book's: a vertical stack of boxes, one per conv,
 *                    pool, norm and fully-connected layer, labelled the book's
 *                    way ("5x5 Conv(6), pad 2, sigmoid", "2x2 AvgPool, stride 2",
 *                    "FC(120), sigmoid"), activations and dropout folded into
 *                    their layer's box, the output shape beside each box, a
 *                    colour per layer kind with a legend. Several models are
 *                    columns lined up by role: the input, the feature layers
 *                    from the top, Flatten, the dense layers from the bottom.
 *   CNN_DRAW_GRAPH   Netron's: every op (activations too) a node with its
 *                    attributes and parameter shapes ("W <6x1x5x5>", "B <6>"),
 *                    every edge labelled with its tensor's shape ("1x6x28x28").
 *   CNN_DRAW_PLANES  LeCun's: feature maps as stacks of offset squares scaled by
 *                    their size, labelled "6@28x28", then the dense layers as bars.
 *
 * and three formats: SVG (self-contained, real <text>, DejaVu Sans), PNG (the
 * same SVG rendered by librsvg at twice its size) and Graphviz DOT.
 *
 *   cnn_model *m;
 *   cnn_zoo_build("lenet", &m);
 *   cnn_shape in = cnn_shape_make(4, (int64_t[]){1, 1, 28, 28});
 *   const char *title = "LeNet";
 *   char err[256];
 *   if (cnn_draw(&m, &title, 1, &in, CNN_DRAW_BLOCKS, CNN_DRAW_SVG, "lenet.svg", err,
 *                sizeof err) != CNN_OK)
 *       fprintf(stderr, "%s\n", err);
 *
 * The drawing is computed as a layout (cnn_draw_layout) and then written
 * from it, so the layout is exactly what the SVG shows: tests read it to
 * check that no two texts overlap and that every text lies in its box.
 */
#ifndef CNNKIT_DRAW_H
#define CNNKIT_DRAW_H

#include <stdbool.h>
#include <stddef.h>

#include "cnnkit/model.h"
#include "cnnkit/status.h"
#include "cnnkit/svg.h"
#include "cnnkit/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum cnn_draw_style {
    CNN_DRAW_BLOCKS,
    CNN_DRAW_GRAPH,
    CNN_DRAW_PLANES,
    CNN_DRAW_STYLE_COUNT
} cnn_draw_style;

typedef enum cnn_draw_format {
    CNN_DRAW_SVG,
    CNN_DRAW_PNG,
    CNN_DRAW_DOT,
    CNN_DRAW_FORMAT_COUNT
} cnn_draw_format;

/* What a box draws; each kind has its colour and a legend entry. */
typedef enum cnn_draw_kind {
    CNN_DRAW_KIND_INPUT,
    CNN_DRAW_KIND_CONV,
    CNN_DRAW_KIND_POOL,
    CNN_DRAW_KIND_NORM,
    CNN_DRAW_KIND_ACTIVATION,
    CNN_DRAW_KIND_DROPOUT,
    CNN_DRAW_KIND_FLATTEN,
    CNN_DRAW_KIND_DENSE,
    CNN_DRAW_KIND_OUTPUT,
    CNN_DRAW_KIND_OTHER, /* an op none of the above describes */
    CNN_DRAW_KIND_COUNT
} cnn_draw_kind;

/* "blocks", "graph", "planes"; NULL for an invalid style. */
const char *cnn_draw_style_name(cnn_draw_style style);
/* The style called name, or CNN_DRAW_STYLE_COUNT. */
cnn_draw_style cnn_draw_style_from_name(const char *name);
/* The format a file name's extension asks for (".svg", ".png", ".dot",
 * any case), or CNN_DRAW_FORMAT_COUNT for any other. */
cnn_draw_format cnn_draw_format_from_path(const char *path);
/* The legend's name of a kind ("Convolution"); NULL for an invalid kind. */
const char *cnn_draw_kind_name(cnn_draw_kind kind);

/* Draws n models (n >= 1) into path, atomically (a failure leaves no file).
 * titles[i] heads model i's column (NULL titles: the models' class names);
 * inputs[i] is the input shape model i is inferred with. On failure writes
 * one line into err: a shape error names the model and the layer. */
cnn_status cnn_draw(cnn_model *const *models, const char *const *titles, int n,
                    const cnn_shape *inputs, cnn_draw_style style, cnn_draw_format format,
                    const char *path, char *err, size_t errlen);

/* ---- The layout --------------------------------------------------------- */

/* A rectangle: a layer's box, a feature map's plane, a legend swatch. */
typedef struct cnn_draw_rect {
    double x, y, w, h, rx;
    const char *fill, *stroke; /* SVG colours, static strings */
    double stroke_width;
    int kind; /* the cnn_draw_kind it shows, -1 for none */
} cnn_draw_rect;

/* One line of text. x, y is its anchor point on the baseline; bx, by, bw, bh
 * is the box it covers: its measured width, from the font's ascent above the
 * baseline to its descent below. */
typedef struct cnn_draw_text {
    double x, y;
    cnn_svg_anchor anchor;
    double size;
    bool bold;
    const char *fill;
    char *text; /* owned by the layout */
    double bx, by, bw, bh;
    int rect; /* the rect it is written in (index into rects), -1 for none */
} cnn_draw_text;

#define CNN_DRAW_LINE_MAX_POINTS 6

/* A line or polyline, with an arrowhead at its end when arrow is set. */
typedef struct cnn_draw_line {
    int n;
    double x[CNN_DRAW_LINE_MAX_POINTS], y[CNN_DRAW_LINE_MAX_POINTS];
    const char *stroke;
    double width;
    const char *dash; /* NULL for a solid line */
    bool arrow;
} cnn_draw_line;

/* A drawing: rects painted first in order, then lines, then texts. */
typedef struct cnn_draw_layout {
    double width, height;
    cnn_draw_rect *rects;
    cnn_draw_text *texts;
    cnn_draw_line *lines;
    int n_rects, n_texts, n_lines;
    int cap_rects, cap_texts, cap_lines; /* allocated lengths */
    bool oom;                            /* an append failed */
} cnn_draw_layout;

/* Computes the drawing of n models in a style, as cnn_draw does, into *out
 * (free it with cnn_draw_layout_free, also after a failure). */
cnn_status cnn_draw_layout_build(cnn_model *const *models, const char *const *titles, int n,
                                 const cnn_shape *inputs, cnn_draw_style style,
                                 cnn_draw_layout *out, char *err, size_t errlen);
void cnn_draw_layout_free(cnn_draw_layout *layout);

/* Writes a layout as an SVG document, atomically. */
cnn_status cnn_draw_layout_save_svg(const cnn_draw_layout *layout, const char *title,
                                    const char *path, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif
#endif
