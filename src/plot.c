/* plot.c - line charts through the project's SVG writer. */
#include <math.h>
#include <stdio.h>

#include "cnnkit/plot.h"
#include "cnnkit/svg.h"
#include "util.h"

/* A "nice" tick step (1, 2 or 5 times a power of ten) for about `want` ticks. */
static double tick_step(double span, int want) {
    double raw = span / want, p = pow(10.0, floor(log10(raw)));
    double m = raw / p;
    return (m <= 1.0 ? 1.0 : m <= 2.0 ? 2.0 : m <= 5.0 ? 5.0 : 10.0) * p;
}

cnn_status cnn_plot_lines(const char *path, const char *title, const char *xlabel, const double *x,
                          const cnn_plot_series *series, int n_series, char *err, size_t errlen) {
    int n = n_series > 0 ? series[0].n : 0;
    if (n < 1)
        return cnn_fail(CNN_STATUS_INVALID_ARGUMENT, err, errlen, "%s: nothing to plot", path);
    double xmin = x[0], xmax = x[n - 1], ymax = 1.0;
    for (int s = 0; s < n_series; s++)
        for (int i = 0; i < series[s].n; i++)
            if (isfinite(series[s].y[i]) && series[s].y[i] > ymax) ymax = series[s].y[i];
    double ystep = tick_step(ymax, 5);
    ymax = ceil(ymax / ystep) * ystep;
    if (xmax <= xmin) xmax = xmin + 1.0;
    double xstep = tick_step(xmax - xmin, 8);
    if (xstep < 1.0) xstep = 1.0;

    const double W = 480, H = 330, left = 56, right = 16, top = title ? 36 : 16, bottom = 48;
    const double pw = W - left - right, ph = H - top - bottom;
#define PX(v) (left + ((v)-xmin) / (xmax - xmin) * pw)
#define PY(v) (top + ph - (v) / ymax * ph)
    cnn_svg *svg = cnn_svg_new(W, H);
    if (!svg) return cnn_fail(CNN_STATUS_NO_MEMORY, err, errlen, "%s: out of memory", path);
    if (title) cnn_svg_title(svg, title);
    cnn_svg_rect(svg, 0, 0, W, H, 0, &(cnn_svg_paint){.fill = "#ffffff"});
    const cnn_svg_paint grid = {.stroke = "#e5e5e5", .stroke_width = 1};
    const cnn_svg_paint axis = {.stroke = "#333333", .stroke_width = 1};
    const cnn_svg_font tick = {.size = 11, .anchor = CNN_SVG_ANCHOR_MIDDLE, .fill = "#333333"};
    const cnn_svg_font ytick = {.size = 11, .anchor = CNN_SVG_ANCHOR_END, .fill = "#333333"};
    char label[32];
    for (double v = 0.0; v <= ymax + ystep / 2; v += ystep) {
        cnn_svg_line(svg, left, PY(v), left + pw, PY(v), &grid);
        snprintf(label, sizeof label, "%g", v);
        cnn_svg_text(svg, left - 6, PY(v) + 4, label, &ytick);
    }
    for (double v = ceil(xmin / xstep) * xstep; v <= xmax + xstep / 2; v += xstep) {
        cnn_svg_line(svg, PX(v), top, PX(v), top + ph, &grid);
        snprintf(label, sizeof label, "%g", v);
        cnn_svg_text(svg, PX(v), top + ph + 16, label, &tick);
    }
    cnn_svg_line(svg, left, top + ph, left + pw, top + ph, &axis);
    cnn_svg_line(svg, left, top, left, top + ph, &axis);
    cnn_svg_text(svg, left + pw / 2, H - 10, xlabel,
                 &(cnn_svg_font){.size = 12, .anchor = CNN_SVG_ANCHOR_MIDDLE});
    if (title)
        cnn_svg_text(svg, W / 2, 22, title,
                     &(cnn_svg_font){.size = 13, .bold = 1, .anchor = CNN_SVG_ANCHOR_MIDDLE});
    for (int s = 0; s < n_series; s++) {
        const cnn_plot_series *se = &series[s];
        cnn_svg_paint line = {
            .stroke = se->colour, .stroke_width = 2, .dash = se->dashed ? "6 4" : NULL};
        double xy[2 * 1024];
        int k = 0;
        for (int i = 0; i <= se->n; i++) {
            /* Draw each run of finite points as one polyline. */
            if (i == se->n || !isfinite(se->y[i]) || k == 1024) {
                if (k > 1) cnn_svg_polyline(svg, xy, k, &line);
                if (k == 1)
                    cnn_svg_circle(svg, xy[0], xy[1], 2.5, &(cnn_svg_paint){.fill = se->colour});
                k = 0;
                continue;
            }
            xy[2 * k] = PX(x[i]);
            xy[2 * k + 1] = PY(se->y[i]);
            k++;
        }
    }
    /* The legend, top right, as d2l places it. */
    double lw = 0;
    for (int s = 0; s < n_series; s++) {
        double w = cnn_svg_text_width(series[s].label, 11, false);
        if (w > lw) lw = w;
    }
    double lx = left + pw - lw - 44, ly = top + 8;
    cnn_svg_rect(svg, lx, ly, lw + 38, 18.0 * n_series + 8, 3,
                 &(cnn_svg_paint){.fill = "#ffffff", .stroke = "#cccccc", .stroke_width = 1});
    for (int s = 0; s < n_series; s++) {
        double yy = ly + 14 + 18.0 * s;
        cnn_svg_line(svg, lx + 6, yy - 4, lx + 26, yy - 4,
                     &(cnn_svg_paint){.stroke = series[s].colour,
                                      .stroke_width = 2,
                                      .dash = series[s].dashed ? "6 4" : NULL});
        cnn_svg_text(svg, lx + 32, yy, series[s].label, &(cnn_svg_font){.size = 11});
    }
#undef PX
#undef PY
    cnn_status st = cnn_svg_save(svg, path, err, errlen);
    cnn_svg_free(svg);
    return st;
}
