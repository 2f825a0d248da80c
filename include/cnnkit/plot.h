/* cnnkit/plot.h - line charts as SVG, for training curves (d2l's figure:
 * train loss, train acc and test acc against epoch). */
#ifndef CNNKIT_PLOT_H
#define CNNKIT_PLOT_H

#include <stddef.h>

#include "cnnkit/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cnn_plot_series {
    const char *label;  /* in the legend */
    const double *y;    /* n values at x[0..n-1]; NaN leaves a gap */
    int n;
    const char *colour; /* "#1f77b4" */
    int dashed;
} cnn_plot_series;

/* Draws the series against x (shared, increasing) with axes, ticks, grid,
 * axis labels and a legend, and writes the SVG atomically. The y axis spans 0
 * to the largest value rounded up (at least 1). */
cnn_status cnn_plot_lines(const char *path, const char *title, const char *xlabel,
                          const double *x, const cnn_plot_series *series, int n_series, char *err,
                          size_t errlen);

#ifdef __cplusplus
}
#endif
#endif
