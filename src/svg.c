/* svg.c - the SVG writer: a document built in memory, text measured with
 * DejaVu Sans' advance widths, labels fitted into boxes, atomic output. */
#include "cnnkit/svg.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "svg_font.h"
#include "util.h"

struct cnn_svg {
    cnn_sb sb;
    int depth; /* open groups */
    bool finished;
};

/* ---- UTF-8 ---------------------------------------------------------------- */

/* Decodes the code point at s (not at its end); sets *len to the bytes it
 * takes. Anything XML cannot hold (invalid or overlong UTF-8, surrogates,
 * control characters but tab, newline and return) reads as U+FFFD. */
static uint32_t utf8_next(const char *s, size_t *len) {
    const unsigned char *u = (const unsigned char *)s;
    uint32_t c = u[0];
    size_t n = c < 0x80             ? 1
               : (c & 0xE0) == 0xC0 ? 2
               : (c & 0xF0) == 0xE0 ? 3
               : (c & 0xF8) == 0xF0 ? 4
                                    : 0;
    if (n == 0) {
        *len = 1;
        return 0xFFFD;
    }
    if (n == 1) {
        *len = 1;
        return (c < 0x20 && c != '\t' && c != '\n' && c != '\r') ? 0xFFFD : c;
    }
    c &= 0x7Fu >> n;
    for (size_t i = 1; i < n; i++) {
        if ((u[i] & 0xC0) != 0x80) {
            *len = i;
            return 0xFFFD;
        }
        c = (c << 6) | (u[i] & 0x3F);
    }
    *len = n;
    static const uint32_t min_for_len[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (c < min_for_len[n] || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF) || c == 0xFFFE ||
        c == 0xFFFF)
        return 0xFFFD;
    return c;
}

static size_t utf8_put(char *out, uint32_t c) {
    if (c < 0x80) {
        out[0] = (char)c;
        return 1;
    }
    if (c < 0x800) {
        out[0] = (char)(0xC0 | (c >> 6));
        out[1] = (char)(0x80 | (c & 0x3F));
        return 2;
    }
    if (c < 0x10000) {
        out[0] = (char)(0xE0 | (c >> 12));
        out[1] = (char)(0x80 | ((c >> 6) & 0x3F));
        out[2] = (char)(0x80 | (c & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (c >> 18));
    out[1] = (char)(0x80 | ((c >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((c >> 6) & 0x3F));
    out[3] = (char)(0x80 | (c & 0x3F));
    return 4;
}

size_t cnn_svg_escape(char *buf, size_t cap, const char *text) {
    size_t o = 0;
    for (const char *p = text; *p;) {
        size_t len;
        uint32_t c = utf8_next(p, &len);
        char tmp[8];
        const char *rep = tmp;
        size_t n;
        switch (c) {
        case '&': rep = "&amp;"; break;
        case '<': rep = "&lt;"; break;
        case '>': rep = "&gt;"; break;
        case '"': rep = "&quot;"; break;
        case '\'': rep = "&apos;"; break;
        default: break;
        }
        n = rep == tmp ? utf8_put(tmp, c) : strlen(rep);
        for (size_t i = 0; i < n; i++, o++)
            if (o + 1 < cap) buf[o] = rep[i];
        p += len;
    }
    if (cap) buf[o < cap ? o : cap - 1] = 0;
    return o;
}

/* ---- Measuring ---------------------------------------------------------- */

static double advance(uint32_t c, bool bold) {
    if (c >= 32 && c < 127) return (bold ? svg_font_ascii_bold : svg_font_ascii_regular)[c - 32];
    for (size_t i = 0; i < CNN_COUNT_OF(svg_font_extra_cp); i++)
        if (svg_font_extra_cp[i] == c)
            return (bold ? svg_font_extra_bold : svg_font_extra_regular)[i];
    if (c < 32) return 0;
    return SVG_FONT_UNITS_PER_EM;
}

double cnn_svg_text_width(const char *text, double size, bool bold) {
    double units = 0;
    for (const char *p = text; *p;) {
        size_t len;
        units += advance(utf8_next(p, &len), bold);
        p += len;
    }
    return units * size / SVG_FONT_UNITS_PER_EM;
}

double cnn_svg_text_ascent(double size) { return size * SVG_FONT_ASCENT / SVG_FONT_UNITS_PER_EM; }
double cnn_svg_text_descent(double size) { return size * SVG_FONT_DESCENT / SVG_FONT_UNITS_PER_EM; }

/* ---- Fitting ------------------------------------------------------------ */

/* Width of the n bytes at s. */
static double width_n(const char *s, size_t n, double size, bool bold) {
    double units = 0;
    for (size_t i = 0; i < n;) {
        size_t len;
        units += advance(utf8_next(s + i, &len), bold);
        i += len;
    }
    return units * size / SVG_FONT_UNITS_PER_EM;
}

static void set_line(cnn_svg_fitted *out, int i, const char *s, size_t n) {
    if (n >= CNN_SVG_FIT_LINE_CAP) n = CNN_SVG_FIT_LINE_CAP - 1;
    memcpy(out->line[i], s, n);
    out->line[i][n] = 0;
}

/* Greedy wrap breaking only at spaces outside parentheses (after a comma
 * when commas_only), with no word cut. False when a piece is too wide or
 * more lines are needed. */
static bool wrap(const char *text, double max_width, int max_lines, double size, bool bold,
                 bool commas_only, cnn_svg_fitted *out) {
    out->n_lines = 0;
    out->size = size;
    out->width = 0;
    const char *p = text;
    while (*p == ' ')
        p++;
    while (*p) {
        if (out->n_lines == max_lines) return false;
        /* The longest run from p that ends before a break and fits. */
        size_t best = 0;
        int depth = 0; /* never inside parentheses: "pad (1, 0)" stays whole */
        for (size_t i = 0;; i++) {
            bool at_end = p[i] == 0;
            depth += (p[i] == '(' || p[i] == '[') - (p[i] == ')' || p[i] == ']');
            bool brk = p[i] == ' ' && depth <= 0 && (!commas_only || (i > 0 && p[i - 1] == ',')) &&
                       (i == 0 || p[i - 1] != ' ');
            if (!at_end && !brk) continue;
            size_t n = i;
            while (n > 0 && p[n - 1] == ' ')
                n--;
            if (n >= CNN_SVG_FIT_LINE_CAP || width_n(p, n, size, bold) > max_width) break;
            best = i;
            if (at_end) break;
        }
        if (best == 0) return false;
        size_t n = best;
        while (n > 0 && p[n - 1] == ' ')
            n--;
        set_line(out, out->n_lines, p, n);
        double w = width_n(p, n, size, bold);
        if (w > out->width) out->width = w;
        out->n_lines++;
        p += best;
        while (*p == ' ')
            p++;
    }
    return out->n_lines > 0;
}

/* Bytes of the longest prefix of s (whole code points) that fits in w. */
static size_t fit_prefix(const char *s, double w, double size, bool bold, size_t cap) {
    size_t n = 0;
    double units = 0, limit = w * SVG_FONT_UNITS_PER_EM / size;
    while (s[n]) {
        size_t len;
        double a = advance(utf8_next(s + n, &len), bold);
        if (units + a > limit || n + len >= cap) break;
        units += a;
        n += len;
    }
    return n;
}

/* The last resort: lines filled to the width (cut inside words when they
 * must be), the last one ended with an ellipsis. */
static void wrap_hard(const char *text, double max_width, int max_lines, double size, bool bold,
                      cnn_svg_fitted *out) {
    static const char ellipsis[] = "\xE2\x80\xA6";
    out->n_lines = 0;
    out->size = size;
    out->width = 0;
    const char *p = text;
    for (int li = 0; li < max_lines; li++) {
        while (*p == ' ')
            p++;
        size_t rest = strlen(p);
        size_t n = fit_prefix(p, max_width, size, bold, CNN_SVG_FIT_LINE_CAP);
        if (n == rest) {
            set_line(out, li, p, n);
            out->n_lines = li + 1;
            p += n;
            break;
        }
        if (li == max_lines - 1) {
            double ew = cnn_svg_text_width(ellipsis, size, bold);
            n = ew <= max_width ? fit_prefix(p, max_width - ew, size, bold,
                                             CNN_SVG_FIT_LINE_CAP - sizeof ellipsis)
                                : 0;
            while (n > 0 && p[n - 1] == ' ')
                n--;
            set_line(out, li, p, n);
            if (ew <= max_width) strcat(out->line[li], ellipsis);
            out->n_lines = li + 1;
            break;
        }
        size_t cut = n;
        for (size_t i = n; i > 0; i--)
            if (p[i] == ' ') {
                cut = i;
                break;
            }
        if (cut == 0) { /* not even one character fits */
            size_t len;
            utf8_next(p, &len);
            cut = len;
        }
        set_line(out, li, p, cut);
        out->n_lines = li + 1;
        p += cut;
    }
    for (int i = 0; i < out->n_lines && i < CNN_SVG_FIT_MAX_LINES; i++) {
        double w = cnn_svg_text_width(out->line[i], size, bold);
        if (w > max_width) { /* a single character wider than the box */
            out->line[i][0] = 0;
            w = 0;
        }
        if (w > out->width) out->width = w;
    }
}

/* Evens out wrapped lines: the narrowest width that still wraps into as few
 * lines, so "11x11 Conv(96), stride 4, pad 1, ReLU" breaks after "stride 4,"
 * rather than before "ReLU". */
static void balance(const char *text, double max_width, double size, bool bold, bool commas_only,
                    cnn_svg_fitted *out) {
    int lines = out->n_lines;
    double lo = 0, hi = max_width;
    cnn_svg_fitted tmp;
    for (int i = 0; i < 14; i++) {
        double mid = (lo + hi) / 2;
        if (wrap(text, mid, lines, size, bold, commas_only, &tmp)) {
            hi = mid;
            *out = tmp;
        } else {
            lo = mid;
        }
    }
}

void cnn_svg_fit_text(const char *text, double max_width, int max_lines, double size,
                      double min_size, bool bold, cnn_svg_fitted *out) {
    if (max_lines < 1) max_lines = 1;
    if (max_lines > CNN_SVG_FIT_MAX_LINES) max_lines = CNN_SVG_FIT_MAX_LINES;
    if (min_size > size) min_size = size;
    if (!*text) {
        *out = (cnn_svg_fitted){.n_lines = 1, .size = size};
        return;
    }
    for (double s = size; s >= min_size - 1e-9; s -= 0.5) {
        if (wrap(text, max_width, 1, s, bold, false, out)) return;
        for (int commas = 1; commas >= 0 && max_lines > 1; commas--) {
            if (!wrap(text, max_width, max_lines, s, bold, commas, out)) continue;
            balance(text, max_width, s, bold, commas, out);
            return;
        }
    }
    wrap_hard(text, max_width, max_lines, min_size, bold, out);
}

/* ---- The document ------------------------------------------------------- */

/* Numbers as SVG wants them: up to two decimals, no trailing zeros. */
static const char *num(char *buf, double v) {
    if (!isfinite(v)) v = 0;
    int n = snprintf(buf, 32, "%.2f", v);
    while (n > 0 && buf[n - 1] == '0')
        buf[--n] = 0;
    if (n > 0 && buf[n - 1] == '.') buf[--n] = 0;
    if (!strcmp(buf, "-0")) strcpy(buf, "0");
    return buf;
}

static bool open_ok(const cnn_svg *s) { return s && !s->finished; }

static void put_escaped(cnn_svg *s, const char *text) {
    size_t n = cnn_svg_escape(NULL, 0, text);
    char stack[256];
    char *buf = n < sizeof stack ? stack : malloc(n + 1);
    if (!buf) {
        s->sb.oom = true;
        return;
    }
    cnn_svg_escape(buf, n + 1, text);
    cnn_sb_puts(&s->sb, buf);
    if (buf != stack) free(buf);
}

cnn_svg *cnn_svg_new(double width, double height) {
    if (!(width > 0) || !(height > 0) || !isfinite(width) || !isfinite(height)) return NULL;
    cnn_svg *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    char w[32], h[32];
    cnn_sb_printf(&s->sb,
                  "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                  "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"%s\" "
                  "height=\"%s\" viewBox=\"0 0 %s %s\" font-family=\"'" CNN_SVG_FONT_FAMILY
                  "', 'Bitstream Vera Sans', sans-serif\">\n",
                  num(w, width), num(h, height), w, h);
    if (s->sb.oom) {
        cnn_svg_free(s);
        return NULL;
    }
    return s;
}

void cnn_svg_free(cnn_svg *s) {
    if (!s) return;
    cnn_sb_free(&s->sb);
    free(s);
}

void cnn_svg_title(cnn_svg *s, const char *title) {
    if (!open_ok(s)) return;
    cnn_sb_puts(&s->sb, "<title>");
    put_escaped(s, title);
    cnn_sb_puts(&s->sb, "</title>\n");
}

/* An id or class name: letters, digits, '-' and '_' only, so it needs no escaping. */
static bool name_ok(const char *id) {
    if (!id || !*id) return false;
    for (const char *p = id; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '-' || *p == '_'))
            return false;
    return true;
}

void cnn_svg_arrow_marker(cnn_svg *s, const char *id, const char *colour) {
    if (!open_ok(s) || !name_ok(id)) return;
    cnn_sb_printf(&s->sb,
                  "<defs><marker id=\"%s\" viewBox=\"0 0 10 10\" refX=\"9\" refY=\"5\" "
                  "markerWidth=\"7\" markerHeight=\"7\" orient=\"auto\" "
                  "markerUnits=\"userSpaceOnUse\">",
                  id);
    cnn_sb_puts(&s->sb, "<path d=\"M 0 0.5 L 10 5 L 0 9.5 Z\" fill=\"");
    put_escaped(s, colour ? colour : "#000000");
    cnn_sb_puts(&s->sb, "\"/></marker></defs>\n");
}

void cnn_svg_group_begin(cnn_svg *s, const char *cls) {
    if (!open_ok(s)) return;
    if (name_ok(cls))
        cnn_sb_printf(&s->sb, "<g class=\"%s\">\n", cls);
    else
        cnn_sb_puts(&s->sb, "<g>\n");
    s->depth++;
}

void cnn_svg_group_end(cnn_svg *s) {
    if (!open_ok(s) || s->depth == 0) return;
    cnn_sb_puts(&s->sb, "</g>\n");
    s->depth--;
}

static void attr(cnn_svg *s, const char *name, const char *value) {
    cnn_sb_printf(&s->sb, " %s=\"", name);
    put_escaped(s, value);
    cnn_sb_puts(&s->sb, "\"");
}

static void paint(cnn_svg *s, const cnn_svg_paint *p) {
    char b[32];
    attr(s, "fill", p && p->fill ? p->fill : "none");
    if (p && p->stroke) {
        attr(s, "stroke", p->stroke);
        cnn_sb_printf(&s->sb, " stroke-width=\"%s\"", num(b, p->stroke_width));
        if (p->dash) attr(s, "stroke-dasharray", p->dash);
    }
    if (p && p->opacity > 0 && p->opacity < 1)
        cnn_sb_printf(&s->sb, " opacity=\"%s\"", num(b, p->opacity));
    if (p && name_ok(p->marker_end))
        cnn_sb_printf(&s->sb, " marker-end=\"url(#%s)\"", p->marker_end);
}

void cnn_svg_rect(cnn_svg *s, double x, double y, double w, double h, double rx,
                  const cnn_svg_paint *p) {
    if (!open_ok(s)) return;
    char a[32], b[32], c[32], d[32];
    cnn_sb_printf(&s->sb, "<rect x=\"%s\" y=\"%s\" width=\"%s\" height=\"%s\"", num(a, x),
                  num(b, y), num(c, w), num(d, h));
    if (rx > 0) cnn_sb_printf(&s->sb, " rx=\"%s\"", num(a, rx));
    paint(s, p);
    cnn_sb_puts(&s->sb, "/>\n");
}

void cnn_svg_line(cnn_svg *s, double x1, double y1, double x2, double y2, const cnn_svg_paint *p) {
    if (!open_ok(s)) return;
    char a[32], b[32], c[32], d[32];
    cnn_sb_printf(&s->sb, "<line x1=\"%s\" y1=\"%s\" x2=\"%s\" y2=\"%s\"", num(a, x1), num(b, y1),
                  num(c, x2), num(d, y2));
    paint(s, p);
    cnn_sb_puts(&s->sb, "/>\n");
}

void cnn_svg_polyline(cnn_svg *s, const double *xy, int n, const cnn_svg_paint *p) {
    if (!open_ok(s) || n < 2) return;
    char a[32], b[32];
    cnn_sb_puts(&s->sb, "<polyline points=\"");
    for (int i = 0; i < n; i++)
        cnn_sb_printf(&s->sb, "%s%s,%s", i ? " " : "", num(a, xy[2 * i]), num(b, xy[2 * i + 1]));
    cnn_sb_puts(&s->sb, "\"");
    paint(s, p);
    cnn_sb_puts(&s->sb, "/>\n");
}

void cnn_svg_path(cnn_svg *s, const char *d, const cnn_svg_paint *p) {
    if (!open_ok(s)) return;
    cnn_sb_puts(&s->sb, "<path");
    attr(s, "d", d);
    paint(s, p);
    cnn_sb_puts(&s->sb, "/>\n");
}

void cnn_svg_circle(cnn_svg *s, double cx, double cy, double r, const cnn_svg_paint *p) {
    if (!open_ok(s)) return;
    char a[32], b[32], c[32];
    cnn_sb_printf(&s->sb, "<circle cx=\"%s\" cy=\"%s\" r=\"%s\"", num(a, cx), num(b, cy),
                  num(c, r));
    paint(s, p);
    cnn_sb_puts(&s->sb, "/>\n");
}

void cnn_svg_text(cnn_svg *s, double x, double y, const char *text, const cnn_svg_font *f) {
    if (!open_ok(s)) return;
    static const char *const anchors[] = {"start", "middle", "end"};
    _Static_assert(CNN_COUNT_OF(anchors) == CNN_SVG_ANCHOR_COUNT, "one name per anchor");
    char a[32], b[32], c[32];
    double size = f && f->size > 0 ? f->size : 12;
    cnn_sb_printf(&s->sb, "<text x=\"%s\" y=\"%s\" font-size=\"%s\"", num(a, x), num(b, y),
                  num(c, size));
    if (f && f->bold) cnn_sb_puts(&s->sb, " font-weight=\"bold\"");
    if (f && f->italic) cnn_sb_puts(&s->sb, " font-style=\"italic\"");
    if (f && (unsigned)f->anchor < CNN_SVG_ANCHOR_COUNT && f->anchor != CNN_SVG_ANCHOR_START)
        cnn_sb_printf(&s->sb, " text-anchor=\"%s\"", anchors[f->anchor]);
    if (f && f->fill) attr(s, "fill", f->fill);
    cnn_sb_puts(&s->sb, ">");
    put_escaped(s, text);
    cnn_sb_puts(&s->sb, "</text>\n");
}

cnn_status cnn_svg_finish(cnn_svg *s, const char **data, size_t *len) {
    if (!s->finished) {
        while (s->depth > 0) {
            cnn_sb_puts(&s->sb, "</g>\n");
            s->depth--;
        }
        cnn_sb_puts(&s->sb, "</svg>\n");
        s->finished = true;
    }
    if (s->sb.oom) return CNN_STATUS_NO_MEMORY;
    *data = s->sb.buf;
    *len = s->sb.len;
    return CNN_OK;
}

cnn_status cnn_svg_save(cnn_svg *s, const char *path, char *err, size_t errlen) {
    const char *data;
    size_t len;
    if (cnn_svg_finish(s, &data, &len) != CNN_OK)
        return cnn_fail(CNN_STATUS_NO_MEMORY, err, errlen, "%s: out of memory", path);
    cnn_afile af;
    cnn_status st = cnn_afile_open(&af, path, err, errlen);
    if (st != CNN_OK) return st;
    if (fwrite(data, 1, len, af.f) != len) {
        cnn_afile_abort(&af);
        return cnn_fail(CNN_STATUS_IO, err, errlen, "%s: cannot write", path);
    }
    return cnn_afile_commit(&af, err, errlen);
}
