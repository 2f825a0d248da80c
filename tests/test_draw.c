/* test_draw.c - the SVG writer and the drawings: text measured as DejaVu Sans
 * sets it, labels fitted, and for every style, every zoo model, the LeNet vs
 * AlexNet comparison and some unusual models, a layout where no two texts
 * overlap, every text lies in its box and on the canvas, and no line or box
 * runs through a text. */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "cnnkit/cnnkit.h"
#include "cnnkit/draw.h"
#include "cnnkit/modelfile.h"
#include "cnnkit/svg.h"

#define EPS 0.01

/* ---- The SVG writer ----------------------------------------------------- */

static void svg_escape_should_escape_markup_and_replace_what_xml_cannot_hold(void **state) {
    (void)state;
    char buf[128];
    size_t n = cnn_svg_escape(buf, sizeof buf, "a<b & \"c\" 'd'>");
    assert_string_equal(buf, "a&lt;b &amp; &quot;c&quot; &apos;d&apos;&gt;");
    assert_int_equal(n, strlen(buf));
    cnn_svg_escape(buf, sizeof buf,
                   "x\x01y\xff"
                   "z");
    assert_string_equal(buf, "x\xEF\xBF\xBDy\xEF\xBF\xBDz");
    cnn_svg_escape(buf, sizeof buf, "\xC0\xAF|\xED\xA0\x80|\xE2\x80\xA6"); /* overlong, surrogate */
    assert_string_equal(buf, "\xEF\xBF\xBD|\xEF\xBF\xBD|\xE2\x80\xA6");
    n = cnn_svg_escape(buf, 4, "<<<");
    assert_int_equal(n, 12);
    assert_string_equal(buf, "&lt");
}

static void svg_text_width_should_sum_dejavu_advances(void **state) {
    (void)state;
    /* DejaVu Sans Book at 2048 units per em: 'W' 2025, 'i' 569, digits 1303. */
    assert_float_equal(cnn_svg_text_width("W", 2048, false), 2025, 1e-9);
    assert_float_equal(cnn_svg_text_width("Wi", 2048, false), 2025 + 569, 1e-9);
    assert_float_equal(cnn_svg_text_width("0123456789", 20.48, false), 13030 / 100.0, 1e-9);
    assert_true(cnn_svg_text_width("FC(120)", 14, true) > cnn_svg_text_width("FC(120)", 14, false));
    assert_float_equal(cnn_svg_text_width("", 14, false), 0, 0);
    /* Outside the table: one em, wider than any glyph a fallback draws. */
    assert_float_equal(cnn_svg_text_width("\xE4\xB8\xAD", 10, false), 10, 1e-9);
    assert_true(cnn_svg_text_ascent(10) > 9 && cnn_svg_text_descent(10) > 2);
}

static void check_fitted(const cnn_svg_fitted *f, double max_w, int max_lines, bool bold) {
    assert_true(f->n_lines >= 1 && f->n_lines <= max_lines);
    for (int i = 0; i < f->n_lines; i++)
        assert_true(cnn_svg_text_width(f->line[i], f->size, bold) <= max_w + 1e-9);
}

static void svg_fit_text_should_wrap_after_commas_then_shrink_then_cut(void **state) {
    (void)state;
    cnn_svg_fitted f;
    cnn_svg_fit_text("FC(120), sigmoid", 300, 3, 14, 10, false, &f);
    assert_int_equal(f.n_lines, 1);
    assert_float_equal(f.size, 14, 0);
    assert_string_equal(f.line[0], "FC(120), sigmoid");

    /* Two balanced lines, broken after a comma. */
    const char *conv = "11x11 Conv(96), stride 4, pad 1, ReLU";
    cnn_svg_fit_text(conv, 200, 3, 14, 10, false, &f);
    check_fitted(&f, 200, 3, false);
    assert_int_equal(f.n_lines, 2);
    assert_string_equal(f.line[0], "11x11 Conv(96),");
    assert_string_equal(f.line[1], "stride 4, pad 1, ReLU");

    /* One line only: smaller. */
    cnn_svg_fit_text(conv, 230, 1, 14, 8, false, &f);
    check_fitted(&f, 230, 1, false);
    assert_true(f.size < 14 && f.size >= 8);
    assert_string_equal(f.line[0], conv);

    /* Nothing fits: cut with an ellipsis, never wider than the box. */
    cnn_svg_fit_text("Supercalifragilisticexpialidocious and more words after it", 60, 2, 14, 10,
                     true, &f);
    check_fitted(&f, 60, 2, true);
    assert_int_equal(f.n_lines, 2);
    assert_non_null(strstr(f.line[1], "\xE2\x80\xA6"));

    /* A box narrower than any character: empty lines, still within it. */
    cnn_svg_fit_text("WWW", 1, 2, 14, 10, false, &f);
    check_fitted(&f, 1, 2, false);
}

static char *read_text(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = calloc(1, 1 << 20);
    size_t n = buf ? fread(buf, 1, (1 << 20) - 1, f) : 0;
    fclose(f);
    if (buf) buf[n] = 0;
    return buf;
}

static void svg_document_should_be_closed_and_saved_atomically(void **state) {
    (void)state;
    assert_null(cnn_svg_new(0, 10));
    cnn_svg *s = cnn_svg_new(120.5, 40);
    assert_non_null(s);
    cnn_svg_title(s, "a <title>");
    cnn_svg_arrow_marker(s, "arrow", "#555555");
    cnn_svg_arrow_marker(s, "bad id\"", "#555555"); /* ignored */
    cnn_svg_group_begin(s, "boxes");
    cnn_svg_rect(s, 1, 2, 3.25, 4.5, 2,
                 &(cnn_svg_paint){
                     .fill = "#dbe9f6", .stroke = "#4a7fb5", .stroke_width = 1.3, .dash = "4 2"});
    cnn_svg_line(s, 0, 0, 10, 10, &(cnn_svg_paint){.stroke = "#555555", .marker_end = "arrow"});
    cnn_svg_polyline(s, (const double[]){0, 0, 5, 5, 10, 0}, 3, &(cnn_svg_paint){.stroke = "red"});
    cnn_svg_path(s, "M 0 0 L 1 1 Z", &(cnn_svg_paint){.fill = "#000000", .opacity = 0.5});
    cnn_svg_circle(s, 5, 5, 2, NULL);
    cnn_svg_text(s, 10, 20, "5x5 Conv(6) & <more>",
                 &(cnn_svg_font){.size = 14, .bold = true, .anchor = CNN_SVG_ANCHOR_MIDDLE});
    const char *data;
    size_t len;
    assert_int_equal(cnn_svg_finish(s, &data, &len), CNN_OK);
    assert_int_equal(len, strlen(data));
    assert_non_null(strstr(data, "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" "
                                 "width=\"120.5\" height=\"40\" viewBox=\"0 0 120.5 40\""));
    assert_non_null(strstr(data, "<title>a &lt;title&gt;</title>"));
    assert_non_null(strstr(data, "<g class=\"boxes\">"));
    assert_non_null(strstr(data, "x=\"1\" y=\"2\" width=\"3.25\" height=\"4.5\" rx=\"2\""));
    assert_non_null(strstr(data, "marker-end=\"url(#arrow)\""));
    assert_null(strstr(data, "bad id"));
    assert_non_null(strstr(data, "font-weight=\"bold\" text-anchor=\"middle\">5x5 Conv(6) &amp; "
                                 "&lt;more&gt;</text>"));
    assert_non_null(strstr(data, "</g>\n</svg>\n")); /* the open group closed */
    cnn_svg_rect(s, 0, 0, 1, 1, 0, NULL);            /* after finishing: ignored */
    assert_int_equal(cnn_svg_finish(s, &data, &len), CNN_OK);
    assert_int_equal(len, strlen(data));

    char dir[] = "/tmp/cnnkit_svg_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[256], bad[256], err[256] = "";
    snprintf(path, sizeof path, "%s/a.svg", dir);
    snprintf(bad, sizeof bad, "%s/no/such/dir/a.svg", dir);
    assert_int_equal(cnn_svg_save(s, path, err, sizeof err), CNN_OK);
    char *back = read_text(path);
    assert_non_null(back);
    assert_string_equal(back, data);
    free(back);
    assert_int_equal(cnn_svg_save(s, bad, err, sizeof err), CNN_STATUS_IO);
    assert_non_null(strstr(err, bad));
    cnn_svg_free(s);
    unlink(path);
    rmdir(dir);
}

/* ---- Layout invariants -------------------------------------------------- */

static bool box_inside(double x, double y, double w, double h, double X, double Y, double W,
                       double H) {
    return x >= X - EPS && y >= Y - EPS && x + w <= X + W + EPS && y + h <= Y + H + EPS;
}

static bool boxes_overlap(double ax, double ay, double aw, double ah, double bx, double by,
                          double bw, double bh) {
    return ax < bx + bw - EPS && bx < ax + aw - EPS && ay < by + bh - EPS && by < ay + ah - EPS;
}

/* Whether the segment crosses the inside of the box (Liang-Barsky clipping). */
static bool segment_hits_box(double x1, double y1, double x2, double y2, double bx, double by,
                             double bw, double bh) {
    double t0 = 0, t1 = 1, dx = x2 - x1, dy = y2 - y1;
    const double p[4] = {-dx, dx, -dy, dy};
    const double q[4] = {x1 - (bx + EPS), (bx + bw - EPS) - x1, y1 - (by + EPS),
                         (by + bh - EPS) - y1};
    for (int i = 0; i < 4; i++) {
        if (p[i] == 0) {
            if (q[i] < 0) return false;
            continue;
        }
        double t = q[i] / p[i];
        if (p[i] < 0) {
            if (t > t1) return false;
            if (t > t0) t0 = t;
        } else {
            if (t < t0) return false;
            if (t < t1) t1 = t;
        }
    }
    return t0 < t1;
}

static int n_failures;

static void failure(const char *what, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void failure(const char *what, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    print_error("%s: %s\n", what, msg);
    n_failures++;
}

static void check_layout(const cnn_draw_layout *L, const char *what) {
    n_failures = 0;
    assert_true(L->width > 0 && L->height > 0);
    assert_true(L->n_texts > 0 && L->n_rects > 0);
    for (int i = 0; i < L->n_texts; i++) {
        const cnn_draw_text *t = &L->texts[i];
        assert_true(t->rect >= -1 && t->rect < L->n_rects);
        if (t->bw <= 0 || t->bh <= 0) failure(what, "'%s' has no size", t->text);
        if (!box_inside(t->bx, t->by, t->bw, t->bh, 0, 0, L->width, L->height))
            failure(what, "'%s' leaves the %gx%g canvas", t->text, L->width, L->height);
        double want = cnn_svg_text_width(t->text, t->size, t->bold);
        if (t->bw + EPS < want) failure(what, "'%s' is wider than its box says", t->text);
        const cnn_draw_rect *home = t->rect >= 0 ? &L->rects[t->rect] : NULL;
        if (home && !box_inside(t->bx, t->by, t->bw, t->bh, home->x, home->y, home->w, home->h))
            failure(what, "'%s' (%.1f wide) runs out of its %.1f-wide box", t->text, t->bw,
                    home->w);
        for (int j = i + 1; j < L->n_texts; j++) {
            const cnn_draw_text *u = &L->texts[j];
            if (boxes_overlap(t->bx, t->by, t->bw, t->bh, u->bx, u->by, u->bw, u->bh))
                failure(what, "'%s' overlaps '%s'", t->text, u->text);
        }
        /* A drawn box it is not written in (nor in a box inside it) stays clear of it. */
        for (int r = 0; r < L->n_rects; r++) {
            const cnn_draw_rect *b = &L->rects[r];
            if (b->kind < 0 || r == t->rect) continue;
            if (home && box_inside(home->x, home->y, home->w, home->h, b->x, b->y, b->w, b->h))
                continue;
            if (boxes_overlap(t->bx, t->by, t->bw, t->bh, b->x, b->y, b->w, b->h))
                failure(what, "'%s' overlaps a box at %.1f,%.1f", t->text, b->x, b->y);
        }
        for (int l = 0; l < L->n_lines; l++) {
            const cnn_draw_line *ln = &L->lines[l];
            for (int k = 0; k + 1 < ln->n; k++)
                if (segment_hits_box(ln->x[k], ln->y[k], ln->x[k + 1], ln->y[k + 1], t->bx, t->by,
                                     t->bw, t->bh))
                    failure(what, "a line runs through '%s'", t->text);
        }
    }
    for (int r = 0; r < L->n_rects; r++) {
        const cnn_draw_rect *b = &L->rects[r];
        if (!box_inside(b->x, b->y, b->w, b->h, 0, 0, L->width, L->height))
            failure(what, "a box at %.1f,%.1f leaves the canvas", b->x, b->y);
    }
    for (int l = 0; l < L->n_lines; l++)
        for (int k = 0; k < L->lines[l].n; k++)
            if (!box_inside(L->lines[l].x[k], L->lines[l].y[k], 0, 0, 0, 0, L->width, L->height))
                failure(what, "a line leaves the canvas");
    if (n_failures) fail_msg("%s: %d layout problems", what, n_failures);
}

static bool has_text(const cnn_draw_layout *L, const char *s) {
    for (int i = 0; i < L->n_texts; i++)
        if (!strcmp(L->texts[i].text, s)) return true;
    return false;
}

/* The layer box whose (first line of) label is s. */
static const cnn_draw_rect *box_of(const cnn_draw_layout *L, const char *s, int nth) {
    for (int i = 0; i < L->n_texts; i++)
        if (!strcmp(L->texts[i].text, s) && L->texts[i].rect >= 0 && nth-- == 0)
            return &L->rects[L->texts[i].rect];
    return NULL;
}

static void layout_of(cnn_model *const *ms, int n, const cnn_shape *ins, cnn_draw_style style,
                      cnn_draw_layout *L) {
    char err[512] = "";
    cnn_status st = cnn_draw_layout_build(ms, NULL, n, ins, style, L, err, sizeof err);
    if (st != CNN_OK) fail_msg("%s: %s", cnn_draw_style_name(style), err);
}

static void every_style_should_lay_out_every_zoo_model_cleanly(void **state) {
    (void)state;
    for (int z = 0; z < cnn_zoo_count(); z++) {
        const cnn_zoo_entry *e = cnn_zoo_get(z);
        cnn_model *m;
        assert_int_equal(cnn_zoo_build(e->name, &m), CNN_OK);
        for (int s = 0; s < CNN_DRAW_STYLE_COUNT; s++) {
            cnn_draw_layout L;
            layout_of(&m, 1, &e->input, (cnn_draw_style)s, &L);
            char what[64];
            snprintf(what, sizeof what, "%s %s", e->name, cnn_draw_style_name((cnn_draw_style)s));
            check_layout(&L, what);
            print_message("%-16s %5.0f x %-5.0f %3d boxes %3d texts %3d lines\n", what, L.width,
                          L.height, L.n_rects, L.n_texts, L.n_lines);
            cnn_draw_layout_free(&L);
        }
        cnn_model_free(m);
    }
}

static void lenet_and_alexnet_should_line_up_by_role(void **state) {
    (void)state;
    cnn_model *ms[2];
    cnn_shape ins[2];
    assert_int_equal(cnn_zoo_build("lenet", &ms[0]), CNN_OK);
    assert_int_equal(cnn_zoo_build("alexnet", &ms[1]), CNN_OK);
    ins[0] = cnn_zoo_find("lenet")->input;
    ins[1] = cnn_zoo_find("alexnet")->input;
    for (int s = 0; s < CNN_DRAW_STYLE_COUNT; s++) {
        cnn_draw_layout L;
        layout_of(ms, 2, ins, (cnn_draw_style)s, &L);
        char what[64];
        snprintf(what, sizeof what, "lenet+alexnet %s", cnn_draw_style_name((cnn_draw_style)s));
        check_layout(&L, what);
        assert_true(has_text(&L, "LeNet") && has_text(&L, "AlexNet"));
        if (s == CNN_DRAW_BLOCKS) {
            /* Inputs, the first convolutions, Flatten and the last layers share rows. */
            const cnn_draw_rect *a, *b;
            a = box_of(&L, "Input 28x28 image", 0), b = box_of(&L, "Input 224x224 image", 0);
            assert_true(a && b && a->y + a->h / 2 == b->y + b->h / 2 && a->x < b->x);
            a = box_of(&L, "5x5 Conv(6), pad 2, sigmoid", 0), b = box_of(&L, "11x11 Conv(96),", 0);
            assert_true(a && b && a->y + a->h / 2 == b->y + b->h / 2);
            a = box_of(&L, "5x5 Conv(16), sigmoid", 0),
            b = box_of(&L, "5x5 Conv(256), pad 2, ReLU", 0);
            assert_true(a && b && a->y + a->h / 2 == b->y + b->h / 2);
            a = box_of(&L, "Flatten", 0), b = box_of(&L, "Flatten", 1);
            assert_true(a && b && a->y == b->y);
            a = box_of(&L, "FC(10)", 0), b = box_of(&L, "FC(10)", 1);
            assert_true(a && b && a->y == b->y);
            a = box_of(&L, "FC(120), sigmoid", 0), b = box_of(&L, "FC(4096), ReLU, dropout 0.5", 0);
            assert_true(a && b && a->y == b->y);
        }
        cnn_draw_layout_free(&L);
    }
    cnn_model_free(ms[0]);
    cnn_model_free(ms[1]);
}

static void labels_should_read_as_the_book_and_netron_write_them(void **state) {
    (void)state;
    cnn_model *m;
    assert_int_equal(cnn_zoo_build("lenet", &m), CNN_OK);
    const cnn_shape in = cnn_zoo_find("lenet")->input;
    cnn_draw_layout L;
    layout_of(&m, 1, &in, CNN_DRAW_BLOCKS, &L);
    const char *blocks[] = {"LeNet",
                            "Input 28x28 image",
                            "5x5 Conv(6), pad 2, sigmoid",
                            "2x2 AvgPool, stride 2",
                            "5x5 Conv(16), sigmoid",
                            "Flatten",
                            "FC(120), sigmoid",
                            "FC(84), sigmoid",
                            "FC(10)",
                            "6x28x28",
                            "400",
                            "Convolution",
                            "Pooling",
                            "Fully connected"};
    for (size_t i = 0; i < sizeof blocks / sizeof *blocks; i++)
        if (!has_text(&L, blocks[i])) fail_msg("blocks: no '%s'", blocks[i]);
    assert_false(has_text(&L, "Activation")); /* folded: no box of its own, no legend entry */
    cnn_draw_layout_free(&L);

    layout_of(&m, 1, &in, CNN_DRAW_GRAPH, &L);
    const char *graph[] = {"input",     "Conv2d", "W",         "<6x1x5x5>", "B",         "<6>",
                           "padding",   "2x2",    "1x6x28x28", "Sigmoid",   "AvgPool2d", "Linear",
                           "<120x400>", "net.11", "1x10",      "output"};
    for (size_t i = 0; i < sizeof graph / sizeof *graph; i++)
        if (!has_text(&L, graph[i])) fail_msg("graph: no '%s'", graph[i]);
    cnn_draw_layout_free(&L);

    layout_of(&m, 1, &in, CNN_DRAW_PLANES, &L);
    const char *planes[] = {"1@28x28", "6@28x28", "6@14x14", "16@10x10", "16@5x5", "400",
                            "120",     "84",      "10",      "Flatten",  "FC(10)"};
    for (size_t i = 0; i < sizeof planes / sizeof *planes; i++)
        if (!has_text(&L, planes[i])) fail_msg("planes: no '%s'", planes[i]);
    cnn_draw_layout_free(&L);
    cnn_model_free(m);
}

static bool is_model_file(const char *name) {
    size_t n = strlen(name);
    return (n > 4 && !strcmp(name + n - 4, ".txt")) || (n > 3 && !strcmp(name + n - 3, ".py"));
}

static void every_style_should_lay_out_every_model_file_cleanly(void **state) {
    (void)state;
    DIR *d = opendir(CNNKIT_MODELS);
    if (!d) skip(); /* no model files in this tree */
    int files = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (!is_model_file(e->d_name)) continue;
        char path[1024], err[2048];
        snprintf(path, sizeof path, "%s/%s", CNNKIT_MODELS, e->d_name);
        cnn_model *m;
        if (cnn_model_read_file(path, &m, err, sizeof err) != CNN_OK) fail_msg("%s", err);
        cnn_shape in;
        if (cnn_model_guess_input(m, &in) != CNN_OK) fail_msg("%s: %s", path, cnn_model_error(m));
        for (int s = 0; s < CNN_DRAW_STYLE_COUNT; s++) {
            cnn_draw_layout L;
            layout_of(&m, 1, &in, (cnn_draw_style)s, &L);
            char what[512];
            snprintf(what, sizeof what, "%s %s", e->d_name, cnn_draw_style_name((cnn_draw_style)s));
            check_layout(&L, what);
            cnn_draw_layout_free(&L);
        }
        cnn_model_free(m);
        files++;
    }
    closedir(d);
    print_message("%d model files, every style\n", files);
}

/* ---- Unusual models ----------------------------------------------------- */

static cnn_model *odd_features(void) {
    cnn_model *m = cnn_model_new("AVeryLongClassNameThatCannotPossiblyFitOverItsOwnColumn");
    int seq = cnn_model_add_container(m, 0, "features", "Sequential");
    cnn_layer c = cnn_conv2d(4, 8, 3);
    c.kernel[1] = 5;
    c.stride[0] = 2;
    c.padding[0] = 1;
    c.padding[1] = 2;
    c.dilation[1] = 2;
    c.groups = 2;
    cnn_layer pool = cnn_maxpool2d(3);
    pool.stride[0] = pool.stride[1] = 2;
    pool.padding[0] = pool.padding[1] = 1;
    pool.ceil_mode = true;
    cnn_layer avg = cnn_avgpool2d(2);
    avg.count_include_pad = false;
    cnn_layer bn = cnn_batchnorm2d(8), lrn = cnn_lrn(5), relu = cnn_relu(), tanh_ = cnn_tanh(),
              drop = cnn_dropout(0.25), gap = cnn_adaptiveavgpool2d(1), flat = cnn_flatten(),
              fc1 = cnn_linear(8, 6), sm = cnn_softmax(1), fc2 = cnn_linear(6, 3);
    const cnn_layer *layers[] = {&c,     &bn,  &relu, &pool, &lrn, &avg, &drop,
                                 &tanh_, &gap, &flat, &drop, &fc1, &sm,  &fc2};
    for (size_t i = 0; i < sizeof layers / sizeof *layers; i++) {
        char name[8];
        snprintf(name, sizeof name, "%zu", i);
        assert_true(cnn_model_add_layer(m, seq, name, layers[i]) >= 0);
    }
    assert_int_equal(cnn_model_finalize(m), CNN_OK);
    return m;
}

static cnn_model *mlp(void) {
    cnn_model *m = cnn_model_new("MLP");
    cnn_layer a = cnn_linear(784, 256), r = cnn_relu(), b = cnn_linear(256, 10);
    assert_true(cnn_model_add_layer(m, 0, "fc1", &a) >= 0);
    assert_true(cnn_model_add_layer(m, 0, "act", &r) >= 0);
    assert_true(cnn_model_add_layer(m, 0, "fc2", &b) >= 0);
    assert_int_equal(cnn_model_finalize(m), CNN_OK);
    return m;
}

/* A conv whose output two layers read: the second reads past the first. */
static cnn_model *branching(void) {
    cnn_model *m = cnn_model_new("Branch");
    cnn_layer c1 = cnn_conv2d(1, 2, 3), r = cnn_relu(), c2 = cnn_conv2d(2, 2, 3),
              flat = cnn_flatten(), fc = cnn_linear(2 * 4 * 4, 5);
    int n0 = cnn_model_add_layer(m, 0, "conv1", &c1);
    assert_true(n0 >= 0);
    assert_true(cnn_model_add_layer(m, 0, "act", &r) >= 0);
    assert_true(cnn_model_add_node(m, 0, "conv2", &c2, &n0, 1) >= 0);
    assert_true(cnn_model_add_layer(m, 0, "flat", &flat) >= 0);
    assert_true(cnn_model_add_layer(m, 0, "fc", &fc) >= 0);
    assert_int_equal(cnn_model_finalize(m), CNN_OK);
    return m;
}

static void unusual_models_should_lay_out_cleanly_too(void **state) {
    (void)state;
    cnn_model *ms[4] = {odd_features(), mlp(), branching(), NULL};
    assert_int_equal(cnn_zoo_build("lenet", &ms[3]), CNN_OK);
    const cnn_shape ins[4] = {
        cnn_shape_make(4, (int64_t[]){1, 4, 20, 24}), cnn_shape_make(2, (int64_t[]){1, 784}),
        cnn_shape_make(4, (int64_t[]){1, 1, 8, 8}), cnn_zoo_find("lenet")->input};
    const char *names[] = {"odd", "mlp", "branch", "lenet"};
    for (int s = 0; s < CNN_DRAW_STYLE_COUNT; s++) {
        for (int i = 0; i < 3; i++) {
            cnn_draw_layout L;
            layout_of(&ms[i], 1, &ins[i], (cnn_draw_style)s, &L);
            char what[64];
            snprintf(what, sizeof what, "%s %s", names[i], cnn_draw_style_name((cnn_draw_style)s));
            check_layout(&L, what);
            cnn_draw_layout_free(&L);
        }
        cnn_draw_layout L;
        layout_of(ms, 4, ins, (cnn_draw_style)s, &L);
        char what[64];
        snprintf(what, sizeof what, "all four %s", cnn_draw_style_name((cnn_draw_style)s));
        check_layout(&L, what);
        cnn_draw_layout_free(&L);
    }
    /* Folding: BatchNorm keeps the ReLU after it; Dropout after pooling folds in. */
    cnn_draw_layout L;
    layout_of(&ms[0], 1, &ins[0], CNN_DRAW_BLOCKS, &L);
    bool bn = false, sm = false;
    for (int i = 0; i < L.n_texts; i++) {
        bn = bn || strstr(L.texts[i].text, "BatchNorm(8), ReLU");
        sm = sm || strstr(L.texts[i].text, "softmax");
    }
    assert_true(bn && sm);
    cnn_draw_layout_free(&L);
    for (int i = 0; i < 4; i++)
        cnn_model_free(ms[i]);
}

/* ---- Files and errors --------------------------------------------------- */

static void draw_should_write_every_format_atomically(void **state) {
    (void)state;
    cnn_model *m;
    assert_int_equal(cnn_zoo_build("lenet", &m), CNN_OK);
    const cnn_shape in = cnn_zoo_find("lenet")->input;
    char dir[] = "/tmp/cnnkit_draw_XXXXXX";
    assert_non_null(mkdtemp(dir));
    const char *names[] = {"a.svg", "a.png", "a.dot"};
    const char *heads[] = {"<?xml", "\x89PNG\r\n\x1a\n", "digraph"};
    char path[256], err[512];
    for (int f = 0; f < CNN_DRAW_FORMAT_COUNT; f++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[f]);
        assert_int_equal(cnn_draw_format_from_path(path), f);
        for (int s = 0; s < CNN_DRAW_STYLE_COUNT; s++) {
            cnn_status st = cnn_draw(&m, NULL, 1, &in, (cnn_draw_style)s, (cnn_draw_format)f, path,
                                     err, sizeof err);
            if (st != CNN_OK) fail_msg("%s: %s", path, err);
            char *text = read_text(path);
            assert_non_null(text);
            assert_memory_equal(text, heads[f], strlen(heads[f]));
            free(text);
        }
        unlink(path);
        /* Into a folder that is not there: an error naming the file, nothing written. */
        snprintf(path, sizeof path, "%s/missing/%s", dir, names[f]);
        assert_int_equal(
            cnn_draw(&m, NULL, 1, &in, CNN_DRAW_BLOCKS, (cnn_draw_format)f, path, err, sizeof err),
            CNN_STATUS_IO);
        assert_non_null(strstr(err, path));
    }
    assert_int_equal(rmdir(dir), 0); /* nothing left behind */
    cnn_model_free(m);
}

static void draw_should_name_the_model_and_layer_of_a_shape_error(void **state) {
    (void)state;
    cnn_model *m;
    assert_int_equal(cnn_zoo_build("lenet", &m), CNN_OK);
    const cnn_shape in = cnn_shape_make(4, (int64_t[]){1, 1, 32, 32});
    const char *title = "My LeNet";
    char err[512];
    cnn_draw_layout L;
    assert_int_equal(cnn_draw_layout_build(&m, &title, 1, &in, CNN_DRAW_GRAPH, &L, err, sizeof err),
                     CNN_STATUS_SHAPE);
    cnn_draw_layout_free(&L);
    assert_non_null(strstr(err, "My LeNet: "));
    assert_non_null(strstr(err, "net.7"));
    assert_int_equal(
        cnn_draw(&m, NULL, 1, &in, CNN_DRAW_BLOCKS, CNN_DRAW_DOT, "/tmp/x.dot", err, sizeof err),
        CNN_STATUS_SHAPE);
    assert_int_equal(cnn_draw(&m, NULL, 1, &in, CNN_DRAW_STYLE_COUNT, CNN_DRAW_SVG, "/tmp/x.svg",
                              err, sizeof err),
                     CNN_STATUS_INVALID_ARGUMENT);
    assert_int_equal(
        cnn_draw(&m, NULL, 0, &in, CNN_DRAW_BLOCKS, CNN_DRAW_SVG, "/tmp/x.svg", err, sizeof err),
        CNN_STATUS_INVALID_ARGUMENT);
    cnn_model_free(m);
}

static void names_should_round_trip(void **state) {
    (void)state;
    for (int s = 0; s < CNN_DRAW_STYLE_COUNT; s++)
        assert_int_equal(cnn_draw_style_from_name(cnn_draw_style_name((cnn_draw_style)s)), s);
    assert_int_equal(cnn_draw_style_from_name("boxes"), CNN_DRAW_STYLE_COUNT);
    assert_null(cnn_draw_style_name(CNN_DRAW_STYLE_COUNT));
    assert_int_equal(cnn_draw_format_from_path("x/Fig.SVG"), CNN_DRAW_SVG);
    assert_int_equal(cnn_draw_format_from_path("fig.png"), CNN_DRAW_PNG);
    assert_int_equal(cnn_draw_format_from_path("fig.dot"), CNN_DRAW_DOT);
    assert_int_equal(cnn_draw_format_from_path("fig.pdf"), CNN_DRAW_FORMAT_COUNT);
    assert_int_equal(cnn_draw_format_from_path("a.svg/fig"), CNN_DRAW_FORMAT_COUNT);
    assert_int_equal(cnn_draw_format_from_path(".svg"), CNN_DRAW_FORMAT_COUNT);
    for (int k = 0; k < CNN_DRAW_KIND_COUNT; k++)
        assert_non_null(cnn_draw_kind_name((cnn_draw_kind)k));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(svg_escape_should_escape_markup_and_replace_what_xml_cannot_hold),
        cmocka_unit_test(svg_text_width_should_sum_dejavu_advances),
        cmocka_unit_test(svg_fit_text_should_wrap_after_commas_then_shrink_then_cut),
        cmocka_unit_test(svg_document_should_be_closed_and_saved_atomically),
        cmocka_unit_test(every_style_should_lay_out_every_zoo_model_cleanly),
        cmocka_unit_test(every_style_should_lay_out_every_model_file_cleanly),
        cmocka_unit_test(lenet_and_alexnet_should_line_up_by_role),
        cmocka_unit_test(labels_should_read_as_the_book_and_netron_write_them),
        cmocka_unit_test(unusual_models_should_lay_out_cleanly_too),
        cmocka_unit_test(draw_should_write_every_format_atomically),
        cmocka_unit_test(draw_should_name_the_model_and_layer_of_a_shape_error),
        cmocka_unit_test(names_should_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
