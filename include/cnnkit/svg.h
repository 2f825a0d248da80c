/* cnnkit/svg.h - a small SVG writer with text measurement, for figures.
 *
 * Builds one self-contained SVG document in memory (no external fonts,
 * images or style sheets; every label a real, searchable <text>) and writes
 * it atomically. Text is set in DejaVu Sans (Debian's fonts-dejavu-core),
 * and cnn_svg_text_width() measures it with the font's own advance widths,
 * so a layout can be computed before anything is drawn:
 *
 *   cnn_svg *s = cnn_svg_new(320, 120);
 *   cnn_svg_arrow_marker(s, "arrow", "#555555");
 *   cnn_svg_rect(s, 10, 10, 140, 34, 4, &(cnn_svg_paint){.fill = "#dbe9f6",
 *                                                      .stroke = "#4a7fb5", .stroke_width = 1});
 *   cnn_svg_text(s, 80, 32, "FC(120)", &(cnn_svg_font){.size = 14,
 *                                                     .anchor = CNN_SVG_ANCHOR_MIDDLE});
 *   cnn_svg_line(s, 80, 44, 80, 80, &(cnn_svg_paint){.stroke = "#555555", .stroke_width = 1.4,
 *                                                    .marker_end = "arrow"});
 *   if (cnn_svg_save(s, "fig.svg", err, sizeof err) != CNN_OK) ...
 *   cnn_svg_free(s);
 *
 * Drawing calls never fail on their own: a failed allocation is remembered
 * and reported by cnn_svg_finish / cnn_svg_save as CNN_STATUS_NO_MEMORY.
 * Colours and dash patterns are SVG attribute text ("#4a7fb5", "none",
 * "4 3"); text is UTF-8 and escaped by the writer.
 */
#ifndef CNNKIT_SVG_H
#define CNNKIT_SVG_H

#include <stdbool.h>
#include <stddef.h>

#include "cnnkit/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The font family every text is set in, and what cnn_svg_text_width measures. */
#define CNN_SVG_FONT_FAMILY "DejaVu Sans"

typedef struct cnn_svg cnn_svg;

typedef enum cnn_svg_anchor {
    CNN_SVG_ANCHOR_START, /* x is the left end of the text */
    CNN_SVG_ANCHOR_MIDDLE,
    CNN_SVG_ANCHOR_END,
    CNN_SVG_ANCHOR_COUNT
} cnn_svg_anchor;

/* How a shape is filled and stroked. A zero value draws nothing visible:
 * NULL fill and stroke mean "none". */
typedef struct cnn_svg_paint {
    const char *fill;
    const char *stroke;
    double stroke_width;
    const char *dash;       /* stroke-dasharray, e.g. "4 3"; NULL for a solid line */
    const char *marker_end; /* id of a marker from cnn_svg_arrow_marker, or NULL */
    double opacity;         /* 0 means opaque (1) */
} cnn_svg_paint;

/* How a text is set. size 0 means 12; NULL fill means black. */
typedef struct cnn_svg_font {
    double size; /* px */
    bool bold;
    bool italic;
    cnn_svg_anchor anchor;
    const char *fill;
} cnn_svg_font;

/* A document of width x height px, with a viewBox of the same size. NULL
 * when out of memory or for a size that is not positive and finite. */
cnn_svg *cnn_svg_new(double width, double height);
void cnn_svg_free(cnn_svg *s);

/* The document's <title> (what a browser shows as its name); call it first. */
void cnn_svg_title(cnn_svg *s, const char *title);

/* Defines an arrowhead marker called id (a name of letters, digits, '-' and
 * '_') in colour, for cnn_svg_paint.marker_end. */
void cnn_svg_arrow_marker(cnn_svg *s, const char *id, const char *colour);

/* <g class="cls"> ... </g>; cls may be NULL. Groups nest. */
void cnn_svg_group_begin(cnn_svg *s, const char *cls);
void cnn_svg_group_end(cnn_svg *s);

/* Shapes. rx rounds the rectangle's corners. */
void cnn_svg_rect(cnn_svg *s, double x, double y, double w, double h, double rx,
                  const cnn_svg_paint *p);
void cnn_svg_line(cnn_svg *s, double x1, double y1, double x2, double y2, const cnn_svg_paint *p);
/* n points from xy: x0, y0, x1, y1, ... */
void cnn_svg_polyline(cnn_svg *s, const double *xy, int n, const cnn_svg_paint *p);
/* A path's d attribute as written ("M 0 0 L 10 10 Z"). */
void cnn_svg_path(cnn_svg *s, const char *d, const cnn_svg_paint *p);
void cnn_svg_circle(cnn_svg *s, double cx, double cy, double r, const cnn_svg_paint *p);

/* One line of text whose baseline starts (or centres, or ends: f->anchor) at x, y. */
void cnn_svg_text(cnn_svg *s, double x, double y, const char *text, const cnn_svg_font *f);

/* Closes the document (once; later drawing calls are ignored) and returns
 * its text, owned by s. CNN_STATUS_NO_MEMORY if any call ran out of memory. */
cnn_status cnn_svg_finish(cnn_svg *s, const char **data, size_t *len);

/* Finishes the document and writes it to path atomically (a temporary file
 * in the same folder, synced and renamed): a failure leaves no file behind. */
cnn_status cnn_svg_save(cnn_svg *s, const char *path, char *err, size_t errlen);

/* Writes text escaped for XML character data and attribute values into buf,
 * snprintf-style (returns the length the full text needs). Characters XML
 * cannot hold (control characters, invalid UTF-8) become U+FFFD. */
size_t cnn_svg_escape(char *buf, size_t cap, const char *text);

/* ---- Measuring and fitting text ------------------------------------------ */

/* Advance width in px of UTF-8 text set in CNN_SVG_FONT_FAMILY at size px:
 * the sum of the font's advance widths (kerning only narrows DejaVu Sans);
 * characters outside the built-in table count one em, which is wider than
 * any glyph a fallback font would draw for them. */
double cnn_svg_text_width(const char *text, double size, bool bold);

/* A line's extent around its baseline, in px: the font's ascent above it and
 * descent below it. */
double cnn_svg_text_ascent(double size);
double cnn_svg_text_descent(double size);

#define CNN_SVG_FIT_MAX_LINES 4
#define CNN_SVG_FIT_LINE_CAP  256

/* A text fitted into a width: its lines and the size they are set in. */
typedef struct cnn_svg_fitted {
    int n_lines;
    double size;
    double width; /* the widest line, measured */
    char line[CNN_SVG_FIT_MAX_LINES][CNN_SVG_FIT_LINE_CAP];
} cnn_svg_fitted;

/* Fits text into max_width px on at most max_lines lines (1 to
 * CNN_SVG_FIT_MAX_LINES): at size if it fits on one line; otherwise wrapped,
 * after commas first and then at spaces; otherwise at a smaller size, down
 * to min_size; failing that, the last line is cut short with an ellipsis.
 * Every line of the result measures at most max_width. */
void cnn_svg_fit_text(const char *text, double max_width, int max_lines, double size,
                      double min_size, bool bold, cnn_svg_fitted *out);

#ifdef __cplusplus
}
#endif
#endif
