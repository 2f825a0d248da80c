/* draw_png.c - PNG output: the drawing's SVG rendered by librsvg into a
 * cairo image at twice its size, written atomically. */
#include <math.h>

#include <cairo.h>
#include <librsvg/rsvg.h>

#include "draw_impl.h"

#define PNG_SCALE    2.0
#define PNG_MAX_SIDE 16384.0 /* well under cairo's 32767 */

static cairo_status_t write_chunk(void *closure, const unsigned char *data, unsigned int len) {
    FILE *f = closure;
    return fwrite(data, 1, len, f) == len ? CAIRO_STATUS_SUCCESS : CAIRO_STATUS_WRITE_ERROR;
}

cnn_status draw_write_png(const char *svg, size_t len, const char *path, char *err, size_t errlen) {
    GError *gerr = NULL;
    RsvgHandle *h = rsvg_handle_new_from_data((const guint8 *)svg, len, &gerr);
    if (!h) {
        cnn_status st = cnn_fail(CNN_STATUS_FORMAT, err, errlen, "%s: cannot render the SVG: %s",
                                 path, gerr ? gerr->message : "librsvg failed");
        if (gerr) g_error_free(gerr);
        return st;
    }
    double w = 0, hh = 0;
    if (!rsvg_handle_get_intrinsic_size_in_pixels(h, &w, &hh) || !(w > 0) || !(hh > 0)) {
        g_object_unref(h);
        return cnn_fail(CNN_STATUS_FORMAT, err, errlen, "%s: the SVG has no size", path);
    }
    double scale = fmin(PNG_SCALE, PNG_MAX_SIDE / fmax(w, hh));
    cairo_surface_t *surf = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, (int)ceil(w * scale),
                                                       (int)ceil(hh * scale));
    if (cairo_surface_status(surf) != CAIRO_STATUS_SUCCESS) {
        cairo_surface_destroy(surf);
        g_object_unref(h);
        return cnn_fail(CNN_STATUS_NO_MEMORY, err, errlen, "%s: out of memory", path);
    }
    cairo_t *cr = cairo_create(surf);
    RsvgRectangle viewport = {0, 0, w * scale, hh * scale};
    bool ok = rsvg_handle_render_document(h, cr, &viewport, &gerr);
    cnn_status st = CNN_OK;
    if (!ok || cairo_status(cr) != CAIRO_STATUS_SUCCESS) {
        st = cnn_fail(CNN_STATUS_FORMAT, err, errlen, "%s: cannot render the SVG: %s", path,
                      gerr ? gerr->message : cairo_status_to_string(cairo_status(cr)));
    }
    if (gerr) g_error_free(gerr);
    cairo_destroy(cr);
    g_object_unref(h);
    if (st == CNN_OK) {
        cairo_surface_flush(surf);
        cnn_afile af;
        st = cnn_afile_open(&af, path, err, errlen);
        if (st == CNN_OK) {
            if (cairo_surface_write_to_png_stream(surf, write_chunk, af.f) !=
                CAIRO_STATUS_SUCCESS) {
                cnn_afile_abort(&af);
                st = cnn_fail(CNN_STATUS_IO, err, errlen, "%s: cannot write", path);
            } else {
                st = cnn_afile_commit(&af, err, errlen);
            }
        }
    }
    cairo_surface_destroy(surf);
    return st;
}
