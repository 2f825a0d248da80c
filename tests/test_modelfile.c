/* test_modelfile.c - model files in PyTorch's syntax (cnnkit/modelfile.h):
 * both of the notes' forms give the zoo's LeNet; the model files print as
 * PyTorch prints them and run as PyTorch runs them (fixtures from
 * tests/ref/make_modelfile_fixtures.py); every layer in every argument form;
 * every printed model in the fixtures reads back byte for byte; and a table of
 * errors, each with its FILE:LINE:COL, message and caret. */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <cmocka.h>

#include "cnnkit/cnnkit.h"

#define TOL 1e-4

static char *read_text(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) fail_msg("cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    buf[n] = 0;
    if (len) *len = (size_t)n;
    return buf;
}

static cnn_model *parse_ok(const char *text, const char *name) {
    cnn_model *m = NULL;
    char err[2048];
    if (cnn_model_parse(text, strlen(text), name, &m, err, sizeof err) != CNN_OK)
        fail_msg("%s did not parse:\n%s\n--- text:\n%s", name, err, text);
    return m;
}

static cnn_model *read_ok(const char *path) {
    cnn_model *m = NULL;
    char err[2048];
    if (cnn_model_read_file(path, &m, err, sizeof err) != CNN_OK) fail_msg("%s", err);
    return m;
}

static char *repr_of(const cnn_model *m) {
    int n = cnn_model_repr(m, NULL, 0);
    assert_true(n >= 0);
    char *buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    cnn_model_repr(m, buf, (size_t)n + 1);
    return buf;
}

static void assert_prints(const cnn_model *m, const char *want, const char *what) {
    char *got = repr_of(m);
    if (strcmp(got, want) != 0) fail_msg("%s prints\n%s\ninstead of\n%s", what, got, want);
    free(got);
}

/* Loads NAME.weights, runs NAME.io's input, returns the max abs difference
 * from PyTorch's output; *y gets cnnkit's output. */
static double run_io(cnn_model *m, const char *name, cnn_tensor *y) {
    char path[1024], err[1024];
    snprintf(path, sizeof path, "%s/%s.weights.safetensors", CNNKIT_FIXTURES, name);
    if (cnn_model_load(m, path) != CNN_OK) fail_msg("%s", cnn_model_error(m));
    snprintf(path, sizeof path, "%s/%s.io.safetensors", CNNKIT_FIXTURES, name);
    cnn_st_file *io;
    if (cnn_st_read(path, &io, err, sizeof err) != CNN_OK) fail_msg("%s", err);
    const cnn_st_entry *in = cnn_st_find(io, "input"), *out = cnn_st_find(io, "output");
    assert_non_null(in);
    assert_non_null(out);
    cnn_tensor x;
    assert_int_equal(cnn_tensor_alloc(&x, &in->shape), CNN_OK);
    memcpy(x.data, in->f32, in->numel * sizeof(float));
    if (cnn_model_forward(m, &x, y) != CNN_OK) fail_msg("%s", cnn_model_error(m));
    assert_true(cnn_shape_equal(&y->shape, &out->shape));
    double d = 0;
    for (size_t i = 0; i < out->numel; i++)
        d = fmax(d, fabs((double)y->data[i] - (double)out->f32[i]));
    cnn_tensor_free(&x);
    cnn_st_free(io);
    return d;
}

/* The model's print must equal the zoo model's, its shapes too, and with
 * the same weights its output must be the zoo's and PyTorch's. */
static void assert_same_as_zoo_lenet(cnn_model *m, const char *what) {
    cnn_model *zoo;
    assert_int_equal(cnn_zoo_build("lenet", &zoo), CNN_OK);
    char *want = repr_of(zoo);
    assert_prints(m, want, what);
    free(want);
    cnn_shape in = cnn_shape_make(4, (int64_t[]){1, 1, 28, 28});
    assert_int_equal(cnn_model_infer(m, &in), CNN_OK);
    assert_int_equal(cnn_model_infer(zoo, &in), CNN_OK);
    assert_int_equal(cnn_model_num_nodes(m), cnn_model_num_nodes(zoo));
    for (int i = 0; i < cnn_model_num_nodes(m); i++) {
        cnn_node_stats a = cnn_model_node_stats(m, i), b = cnn_model_node_stats(zoo, i);
        assert_true(cnn_shape_equal(&a.out_shape, &b.out_shape));
        assert_int_equal(a.params, b.params);
        assert_int_equal(a.macs, b.macs);
        assert_string_equal(cnn_model_node_path(m, i), cnn_model_node_path(zoo, i));
    }
    cnn_tensor y1, y2;
    double d1 = run_io(m, "lenet", &y1), d2 = run_io(zoo, "lenet", &y2);
    printf("    %s: max abs diff from PyTorch %.1e (zoo lenet: %.1e)\n", what, d1, d2);
    assert_true(d1 <= TOL);
    assert_memory_equal(y1.data, y2.data, cnn_tensor_numel(&y1) * sizeof(float));
    cnn_tensor_free(&y1);
    cnn_tensor_free(&y2);
    cnn_model_free(zoo);
}

static void notes_class_code_should_give_the_zoo_lenet(void **state) {
    (void)state;
    cnn_model *m = read_ok(CNNKIT_ROOT "/models/lenet.py");
    assert_same_as_zoo_lenet(m, "models/lenet.py");
    cnn_model_free(m);
}

/* The notes' printed LeNet verbatim: a trailing space on one line, and the
 * shape-trace comments after it. */
static void notes_printed_text_should_give_the_zoo_lenet(void **state) {
    (void)state;
    cnn_model *m = read_ok(CNNKIT_ROOT "/tests/modelfiles/notes_lenet.txt");
    assert_same_as_zoo_lenet(m, "notes' print(model)");
    cnn_model_free(m);
    m = read_ok(CNNKIT_ROOT "/models/lenet.txt");
    assert_same_as_zoo_lenet(m, "models/lenet.txt");
    cnn_model_free(m);
}

static void alexnet_file_should_print_as_the_zoo_alexnet(void **state) {
    (void)state;
    cnn_model *m = read_ok(CNNKIT_ROOT "/models/alexnet.txt"), *zoo;
    assert_int_equal(cnn_zoo_build("alexnet", &zoo), CNN_OK);
    char *want = read_text(CNNKIT_FIXTURES "/alexnet.print.txt", NULL);
    assert_prints(m, want, "models/alexnet.txt");
    assert_prints(zoo, want, "zoo alexnet");
    cnn_shape in;
    assert_int_equal(cnn_model_guess_input(m, &in), CNN_OK);
    cnn_shape want_in = cnn_shape_make(4, (int64_t[]){1, 1, 224, 224});
    assert_true(cnn_shape_equal(&in, &want_in));
    assert_int_equal(cnn_model_infer(zoo, &in), CNN_OK);
    for (int i = 0; i < cnn_model_num_nodes(m); i++) {
        cnn_node_stats a = cnn_model_node_stats(m, i), b = cnn_model_node_stats(zoo, i);
        assert_true(cnn_shape_equal(&a.out_shape, &b.out_shape));
    }
    free(want);
    cnn_model_free(zoo);
    cnn_model_free(m);
}

/* The notes' loop over the layers: print(layer), then the output's shape. */
static char *trace_of(cnn_model *m, const cnn_shape *in) {
    assert_int_equal(cnn_model_infer(m, in), CNN_OK);
    size_t cap = 65536, len = 0;
    char *buf = malloc(cap);
    assert_non_null(buf);
    for (int i = 0; i < cnn_model_num_nodes(m); i++) {
        char repr[512], shape[128];
        cnn_layer_repr(repr, sizeof repr, cnn_model_node_layer(m, i));
        cnn_node_stats st = cnn_model_node_stats(m, i);
        cnn_shape_format(shape, sizeof shape, &st.out_shape);
        len += (size_t)snprintf(buf + len, cap - len, "%s\ntorch.Size(%s)\n", repr, shape);
        assert_true(len < cap);
    }
    return buf;
}

/* Both forms of the torchvision-style model: print, every layer's shape and
 * the output against PyTorch. */
static void torchvision_style_files_should_match_pytorch(void **state) {
    (void)state;
    const char *files[] = {CNNKIT_ROOT "/models/tvstyle.py", CNNKIT_ROOT "/models/tvstyle.txt"};
    char err[1024];
    cnn_st_file *w;
    assert_int_equal(
        cnn_st_read(CNNKIT_FIXTURES "/tvstyle.weights.safetensors", &w, err, sizeof err), CNN_OK);
    const char *pt_repr = cnn_st_metadata(w, "repr");
    assert_non_null(pt_repr);
    char *want = malloc(strlen(pt_repr) + 2);
    assert_non_null(want);
    sprintf(want, "%s\n", pt_repr);
    char *trace = read_text(CNNKIT_FIXTURES "/tvstyle.trace.txt", NULL);
    for (int f = 0; f < 2; f++) {
        cnn_model *m = read_ok(files[f]);
        assert_prints(m, want, files[f]);
        cnn_shape in = cnn_shape_make(4, (int64_t[]){2, 3, 32, 32});
        char *got = trace_of(m, &in);
        assert_string_equal(got, trace);
        free(got);
        cnn_tensor y;
        double d = run_io(m, "tvstyle", &y);
        printf("    %s: max abs diff from PyTorch %.1e\n", strrchr(files[f], '/') + 1, d);
        assert_true(d <= TOL);
        cnn_tensor_free(&y);
        cnn_model_free(m);
    }
    free(trace);
    free(want);
    cnn_st_free(w);
}

/* tests/fixtures/modelfile_layers.json: [code, repr] pairs PyTorch wrote. */
static void every_layer_form_should_print_as_pytorch_prints_it(void **state) {
    (void)state;
    char *json = read_text(CNNKIT_FIXTURES "/modelfile_layers.json", NULL);
    cJSON *root = cJSON_Parse(json);
    assert_non_null(root);
    int n = 0;
    cJSON *pair;
    cJSON_ArrayForEach(pair, root) {
        const char *code = cJSON_GetArrayItem(pair, 0)->valuestring;
        const char *repr = cJSON_GetArrayItem(pair, 1)->valuestring;
        char text[1024], want[1024];
        snprintf(want, sizeof want, "Sequential(\n  (0): %s\n)\n", repr);
        snprintf(text, sizeof text, "import torch.nn as nn\nnet = nn.Sequential(%s)\n", code);
        cnn_model *m = parse_ok(text, "form.py");
        assert_prints(m, want, code);
        cnn_model_free(m);
        /* The printed form reads back to itself. */
        m = parse_ok(want, "form.txt");
        assert_prints(m, want, repr);
        cnn_model_free(m);
        n++;
    }
    printf("    %d layer forms, each in code and printed\n", n);
    assert_true(n >= 60);
    cJSON_Delete(root);
    free(json);
}

/* Keyword and positional forms inside a printed model read too. */
static void printed_models_should_accept_constructor_forms(void **state) {
    (void)state;
    const char *text = "Net(\n"
                       "  (a): Conv2d(1, 6, 5, padding=2)\n"
                       "  (b): MaxPool2d(2)\n"
                       "  (c): BatchNorm2d(6, momentum=None)\n"
                       "  (d): AdaptiveAvgPool2d((1, 1))\n"
                       "  (e): Flatten(1)\n"
                       "  (f): Dropout(0.25)\n"
                       "  (g): Linear(6, 3, bias=False)\n"
                       "  (h): Softmax(-1)\n"
                       ")\n";
    const char *want =
        "Net(\n"
        "  (a): Conv2d(1, 6, kernel_size=(5, 5), stride=(1, 1), padding=(2, 2))\n"
        "  (b): MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)\n"
        "  (c): BatchNorm2d(6, eps=1e-05, momentum=None, affine=True, track_running_stats=True)\n"
        "  (d): AdaptiveAvgPool2d(output_size=(1, 1))\n"
        "  (e): Flatten(start_dim=1, end_dim=-1)\n"
        "  (f): Dropout(p=0.25, inplace=False)\n"
        "  (g): Linear(in_features=6, out_features=3, bias=False)\n"
        "  (h): Softmax(dim=-1)\n"
        ")\n";
    cnn_model *m = parse_ok(text, "forms.txt");
    assert_prints(m, want, "forms.txt");
    cnn_shape in;
    assert_int_equal(cnn_model_guess_input(m, &in), CNN_OK);
    cnn_model_free(m);
}

/* Every "repr" that PyTorch wrote into a fixture reads back to itself. */
static void every_fixture_repr_should_round_trip_byte_for_byte(void **state) {
    (void)state;
    DIR *d = opendir(CNNKIT_FIXTURES);
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        const char *suffix = ".weights.safetensors";
        if (len < strlen(suffix) || strcmp(e->d_name + len - strlen(suffix), suffix) != 0) continue;
        char path[1024], err[1024];
        snprintf(path, sizeof path, "%s/%s", CNNKIT_FIXTURES, e->d_name);
        cnn_st_file *st;
        if (cnn_st_read(path, &st, err, sizeof err) != CNN_OK) fail_msg("%s", err);
        const char *repr = cnn_st_metadata(st, "repr");
        if (repr) {
            char *text = malloc(strlen(repr) + 2);
            assert_non_null(text);
            sprintf(text, "%s\n", repr);
            cnn_model *m = parse_ok(text, e->d_name);
            assert_prints(m, text, e->d_name);
            /* Its state_dict is the file's: the weights load. */
            if (cnn_model_load(m, path) != CNN_OK) fail_msg("%s", cnn_model_error(m));
            cnn_model_free(m);
            free(text);
            n++;
        }
        cnn_st_free(st);
    }
    closedir(d);
    printf("    %d fixture reprs round-trip\n", n);
    assert_true(n >= 28);
}

static void code_forms_should_give_what_pytorch_builds(void **state) {
    (void)state;
    /* Imports, constants, arithmetic, OrderedDict, comments. */
    cnn_model *m =
        parse_ok("from collections import OrderedDict\n"
                 "import torch.nn as nn\n"
                 "C = 3  # channels\n"
                 "net = nn.Sequential(OrderedDict([\n"
                 "    ('conv', nn.Conv2d(C, 2 * C, kernel_size=3)),\n"
                 "    ('act', nn.ReLU()),\n"
                 "    ('head', nn.Sequential(nn.Flatten(), nn.Linear(6 * 26 * 26, 10))),\n"
                 "]))\n",
                 "od.py");
    assert_prints(m,
                  "Sequential(\n"
                  "  (conv): Conv2d(3, 6, kernel_size=(3, 3), stride=(1, 1))\n"
                  "  (act): ReLU()\n"
                  "  (head): Sequential(\n"
                  "    (0): Flatten(start_dim=1, end_dim=-1)\n"
                  "    (1): Linear(in_features=4056, out_features=10, bias=True)\n"
                  "  )\n"
                  ")\n",
                  "od.py");
    cnn_shape in;
    assert_int_equal(cnn_model_guess_input(m, &in), CNN_OK);
    assert_int_equal(in.dim[1], 3);
    assert_int_equal(in.dim[2], 28);
    cnn_model_free(m);

    /* A class with parameters, instantiated once; leaves at the top;
     * other methods and plain attributes ignored. */
    m = parse_ok("from torch.nn import Module, Sequential, Conv2d, ReLU, Flatten, Linear\n"
                 "class Small(Module):\n"
                 "    '''doc'''\n"
                 "    def __init__(self, in_ch, classes: int = 10, hidden=4):\n"
                 "        super(Small, self).__init__()\n"
                 "        self.conv = Conv2d(in_ch, hidden, 3); self.act = ReLU(True)\n"
                 "        self.n = classes\n"
                 "        flat = hidden * 26 * 26\n"
                 "        self.head = Sequential(Flatten(), Linear(flat, classes))\n"
                 "    def forward(self, x): return self.head(self.act(self.conv(x)))\n"
                 "    @property\n"
                 "    def size(self):\n"
                 "        return 1\n"
                 "net = Small(1, classes=5)\n",
                 "small.py");
    assert_prints(m,
                  "Small(\n"
                  "  (conv): Conv2d(1, 4, kernel_size=(3, 3), stride=(1, 1))\n"
                  "  (act): ReLU(inplace=True)\n"
                  "  (head): Sequential(\n"
                  "    (0): Flatten(start_dim=1, end_dim=-1)\n"
                  "    (1): Linear(in_features=2704, out_features=5, bias=True)\n"
                  "  )\n"
                  ")\n",
                  "small.py");
    cnn_model_free(m);

    /* A bare expression is the model too; an empty Sequential is one. */
    m = parse_ok("nn.Sequential()\n", "empty.py");
    assert_prints(m, "Sequential()\n", "empty.py");
    cnn_model_free(m);
    m = parse_ok("Sequential()", "empty.txt");
    assert_prints(m, "Sequential()\n", "empty.txt");
    cnn_model_free(m);
}

/* Where the text itself does not say, the file name does. */
static void the_format_should_follow_the_content_then_the_name(void **state) {
    (void)state;
    const char *code = "torch.nn.Sequential(torch.nn.ReLU())";
    cnn_model *m = parse_ok(code, "x.txt"); /* code by its content */
    assert_prints(m, "Sequential(\n  (0): ReLU()\n)\n", "code in x.txt");
    cnn_model_free(m);
    m = parse_ok("Net(\n  (0): ReLU()\n)", "x.py"); /* printed, by its content */
    assert_prints(m, "Net(\n  (0): ReLU()\n)\n", "print in x.py");
    cnn_model_free(m);
    char err[1024];
    /* The same ambiguous text: code in a .py file, a printed model otherwise. */
    assert_int_not_equal(cnn_model_parse("Foo(1)", 6, "a.py", &m, err, sizeof err), CNN_OK);
    assert_non_null(strstr(err, "a.py:1:1: calling 'Foo' is not supported"));
    assert_int_not_equal(cnn_model_parse("Foo(1)", 6, "a.txt", &m, err, sizeof err), CNN_OK);
    assert_non_null(strstr(err, "expected '(name): module' or ')'"));
}

/* Windows line ends and a UTF-8 byte order mark read like plain text; bytes
 * that are not UTF-8 show as '?' and the caret stays under its column. */
static void crlf_and_bom_should_read_like_plain_text(void **state) {
    (void)state;
    cnn_model *m = parse_ok(
        "\xEF\xBB\xBFimport torch\r\nnet = nn.Sequential(\r\n    nn.ReLU())\r\n", "crlf.py");
    assert_prints(m, "Sequential(\n  (0): ReLU()\n)\n", "crlf.py");
    cnn_model_free(m);
    m = parse_ok("\xEF\xBB\xBFNet(\r\n  (0): ReLU()\r\n)\r\n", "crlf.txt");
    assert_prints(m, "Net(\n  (0): ReLU()\n)\n", "crlf.txt");
    cnn_model_free(m);
    char err[1024];
    const char *bad = "\xEF\xBB\xBFnet = nn.Sequential(nn.Conv3d())\r\n";
    assert_int_not_equal(cnn_model_parse(bad, strlen(bad), "crlf.py", &m, err, sizeof err), CNN_OK);
    assert_string_equal(err, "crlf.py:1:21: Conv3d is not supported; supported: Conv2d, Linear, "
                             "MaxPool2d, AvgPool2d, AdaptiveAvgPool2d, ReLU, Sigmoid, Tanh, "
                             "Flatten, Dropout, BatchNorm2d, LocalResponseNorm, Softmax, "
                             "Sequential\nnet = nn.Sequential(nn.Conv3d())\n                    ^");
    bad = "x = '\x80\xe0"
          "A'; net = nn.Sequential(nn.Conv3d())\n";
    assert_int_not_equal(cnn_model_parse(bad, strlen(bad), "bytes.py", &m, err, sizeof err),
                         CNN_OK);
    assert_non_null(strstr(err, "\nx = '?A'; net = nn.Sequential(nn.Conv3d())\n"
                                "                              ^"));
}

typedef struct err_case {
    const char *file, *text;
    const char *where;   /* "FILE:LINE:COL: " */
    const char *message; /* a substring of the message */
    const char *caret;   /* the caret line */
} err_case;

static const err_case errors[] = {
    /* ---- printed models ---- */
    {"conv3d.txt", "Net(\n  (0): Conv3d(1, 2, kernel_size=(3, 3, 3))\n)\n", "conv3d.txt:2:8: ",
     "Conv3d is not supported; supported: Conv2d, Linear, MaxPool2d", "       ^"},
    {"dup.txt", "Sequential(\n  (0): ReLU()\n  (0): Tanh()\n)\n",
     "dup.txt:3:4: ", "duplicate module name '0' (the first is at 2:4)", "   ^"},
    {"open.txt", "Net(\n  (a): Conv2d(1, 6, kernel_size=(5, 5)\n",
     "open.txt:2:39: ", "expected ',' or ')' to close 'Conv2d(' opened at 2:8, got end of file",
     "                                      ^"},
    {"colon.txt", "Net(\n  (a) Conv2d(1, 6, 5)\n)\n", "colon.txt:2:7: ", "expected ':' after '(a)'",
     "      ^"},
    {"kw.txt", "Net(\n  (fc): Linear(in_features=4, out_features=2, bias=True, foo=1)\n)\n",
     "kw.txt:2:58: ", "Linear has no argument 'foo'; its arguments are in_features, out_features",
     "                                                         ^"},
    {"missing.txt", "Net(\n  (fc): Linear(in_features=4)\n)\n",
     "missing.txt:2:9: ", "Linear is missing its required argument 'out_features'", "        ^"},
    {"bool.txt",
     "Net(\n  (p): MaxPool2d(kernel_size=3, stride=2, padding=0, dilation=1, ceil_mode=1)\n)\n",
     "bool.txt:2:76: ", "MaxPool2d: ceil_mode must be True or False, got int 1",
     "                                                                           ^"},
    {"tuple3.txt", "Net(\n  (c): Conv2d(1, 6, kernel_size=(5, 5, 5), stride=(1, 1))\n)\n",
     "tuple3.txt:2:33: ", "kernel_size must be an int or a tuple of 2 ints, got a tuple of 3",
     "                                ^"},
    {"block.txt", "ResNet(\n  (layer1): BasicBlock(\n    (conv1): Conv2d(1, 1, 3)\n  )\n)\n",
     "block.txt:2:13: ", "BasicBlock is not supported as a nested module", "            ^"},
    {"two.txt", "Sequential(\n)\nSequential(\n)\n",
     "two.txt:3:1: ", "unexpected 'Sequential' after the model: a model file holds one model", "^"},
    {"intp.txt", "Net(\n  (d): Dropout(p=0, inplace=False)\n)\n",
     "intp.txt:2:18: ", "p must be a float, got int 0: write 0.0", "                 ^"},
    {"softmax.txt", "Net(\n  (s): Softmax(dim=None)\n)\n",
     "softmax.txt:2:20: ", "Softmax needs an explicit dim", "                   ^"},
    {"same.txt", "Net(\n  (c): Conv2d(1, 2, kernel_size=(3, 3), stride=(1, 1), padding=same)\n)\n",
     "same.txt:2:64: ", "padding='same' is not supported: write padding=1",
     "                                                               ^"},
    {"layer.txt", "Conv2d(1, 6, kernel_size=(5, 5), stride=(1, 1))\n",
     "layer.txt:1:1: ", "a single layer is not a model", "^"},
    {"groups.txt", "Net(\n  (c): Conv2d(3, 8, kernel_size=(3, 3), stride=(1, 1), groups=2)\n)\n",
     "groups.txt:2:8: ", "invalid Conv2d: in_channels must be divisible by groups", "       ^"},
    {"char.txt", "Net(\n  (0): ReLU() $\n)\n", "char.txt:2:15: ", "unexpected character '$'",
     "              ^"},
    {"order.txt", "Net(\n  (fc): Linear(in_features=4, 2)\n)\n", "order.txt:2:31: ",
     "positional argument follows keyword argument", "                              ^"},
    {"many.txt", "Net(\n  (r): ReLU(True, True)\n)\n",
     "many.txt:2:19: ", "ReLU takes at most 1 positional argument, got 2", "                  ^"},
    {"range.txt", "Net(\n  (fc): Linear(in_features=4294967296, out_features=2)\n)\n",
     "range.txt:2:28: ", "in_features=4294967296 is out of cnnkit's range",
     "                           ^"},
    {"tabs.txt", "Net(\n\t(0):\tConv3d(1)\n)\n", "tabs.txt:2:7: ", "Conv3d is not supported",
     "\t    \t^"},
    {"empty.txt", "  \n# nothing\n", "empty.txt:1:1: ", "no model", "^"},
    {"pool.txt", "Net(\n  (p): MaxPool2d(kernel_size=2, padding=2)\n)\n",
     "pool.txt:2:8: ", "invalid MaxPool2d: pad should be at most half of kernel size", "       ^"},
    /* ---- Python code ---- */
    {"comma.py",
     "import torch\nfrom torch import nn\n\nnet = nn.Sequential(\n"
     "    nn.Conv2d(1, 6, 5), nn.MaxPool2d(2, 2 nn.ReLU(),\n)\n",
     "comma.py:5:43: ", "expected ',' or ')' to close 'nn.MaxPool2d(' opened at 5:25",
     "                                          ^"},
    {"eof.py", "net = nn.Sequential(\n    nn.Conv2d(1, 6, 5),\n",
     "eof.py:2:24: ", "expected ')' to close 'nn.Sequential(' opened at 1:7, got end of file",
     "                       ^"},
    {"conv3d.py", "net = nn.Sequential(nn.Conv3d(1, 6, 5))\n", "conv3d.py:1:21: ",
     "Conv3d is not supported; supported: Conv2d, Linear", "                    ^"},
    {"case.py", "net = nn.Sequential(nn.conv2d(1, 6, 5))\n",
     "case.py:1:21: ", "conv2d is not supported (did you mean Conv2d?)", "                    ^"},
    {"for.py", "import torch\nfor i in range(3):\n    pass\n",
     "for.py:2:1: ", "'for' statements are not supported in a model file", "^"},
    {"max.py", "net = nn.Sequential(nn.Linear(max(3, 4), 2))\n",
     "max.py:1:31: ", "calling 'max' is not supported", "                              ^"},
    {"name.py", "net = nn.Sequential(nn.Linear(n, 2))\n",
     "name.py:1:31: ", "name 'n' is not defined", "                              ^"},
    {"dupself.py",
     "class A(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
     "        self.fc = nn.Linear(2, 2)\n        self.fc = nn.Linear(2, 2)\n",
     "dupself.py:5:14: ", "duplicate module name 'fc' (the first is at 4:14)", "             ^"},
    {"early.py",
     "class A(nn.Module):\n    def __init__(self):\n        self.fc = nn.Linear(2, 2)\n"
     "        super().__init__()\n",
     "early.py:3:14: ", "cannot assign module before Module.__init__() call", "             ^"},
    {"nosuper.py", "class A(nn.Module):\n    def __init__(self):\n        pass\n",
     "nosuper.py:2:9: ", "A.__init__ never calls super().__init__()", "        ^"},
    {"base.py", "class A(object):\n    pass\n",
     "base.py:1:9: ", "class A must derive from nn.Module", "        ^"},
    {"twomodels.py", "a = nn.Sequential(nn.ReLU())\nb = nn.Sequential(nn.Tanh())\n",
     "twomodels.py:2:5: ", "a second model: this file already defines one at 1:5", "    ^"},
    {"nomodel.py", "import torch\nfrom torch import nn\n", "nomodel.py:2:21: ", "no model",
     "                    ^"},
    {"list.py", "net = nn.Sequential(nn.MaxPool2d([3, 3]))\n", "list.py:1:34: ",
     "lists are not supported here: write a tuple", "                                 ^"},
    {"star.py", "net = nn.Sequential(*layers)\n",
     "star.py:1:21: ", "'*' arguments are not supported", "                    ^"},
    {"boolint.py", "net = nn.Sequential(nn.Conv2d(True, 6, 5))\n", "boolint.py:1:31: ",
     "Conv2d: in_channels must be an int, got True", "                              ^"},
    {"float.py", "net = nn.Sequential(nn.Linear(4.0, 2))\n", "float.py:1:31: ",
     "in_features must be an int, got float 4.0", "                              ^"},
    {"reflect.py", "net = nn.Sequential(nn.Conv2d(1, 2, 3, padding_mode='reflect'))\n",
     "reflect.py:1:53: ", "padding_mode='reflect' is not supported: cnnkit pads with zeros",
     "                                                    ^"},
    {"indices.py", "net = nn.Sequential(nn.MaxPool2d(2, return_indices=True))\n",
     "indices.py:1:52: ", "return_indices=True is not supported",
     "                                                   ^"},
    {"divisor.py", "net = nn.Sequential(nn.AvgPool2d(2, divisor_override=3))\n",
     "divisor.py:1:54: ", "divisor_override is not supported",
     "                                                     ^"},
    {"sameeven.py", "net = nn.Sequential(nn.Conv2d(1, 2, 4, padding='same'))\n",
     "sameeven.py:1:48: ", "needs more padding on one side than the other",
     "                                               ^"},
    {"samestride.py", "net = nn.Sequential(nn.Conv2d(1, 2, 3, 2, 'same'))\n",
     "samestride.py:1:43: ", "padding='same' is not supported for strided convolutions",
     "                                          ^"},
    {"div0.py", "net = nn.Sequential(nn.Linear(4 // 0, 2))\n", "div0.py:1:33: ", "division by zero",
     "                                ^"},
    {"pow.py", "net = nn.Sequential(nn.Linear(2 ** 3, 2))\n",
     "pow.py:1:33: ", "'**' is not supported", "                                ^"},
    {"indent.py", "import torch\n    net = nn.Sequential()\n",
     "indent.py:2:5: ", "unexpected indent", "    ^"},
    {"dedent.py",
     "class A(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
     "      self.r = nn.ReLU()\n",
     "dedent.py:4:7: ", "unindent does not match any outer indentation level", "      ^"},
    {"string.py", "x = 'abc\nnet = nn.Sequential()\n", "string.py:1:5: ", "unterminated string",
     "    ^"},
    {"leaf.py", "net = nn.Linear(3, 4)\n", "leaf.py:1:7: ", "a single layer is not a model",
     "      ^"},
    {"seqkw.py", "net = nn.Sequential(relu=nn.ReLU())\n",
     "seqkw.py:1:21: ", "Sequential takes modules, not keyword arguments", "                    ^"},
    {"initfor.py",
     "class A(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
     "        for i in range(3):\n            pass\n",
     "initfor.py:4:9: ", "'for' statements are not supported in __init__", "        ^"},
    {"use.py", "net = nn.Sequential(nn.ReLU())\nnet.add_module('t', nn.Tanh())\n",
     "use.py:2:1: ", "using 'net' after its definition is not supported", "^"},
    {"param.py",
     "class A(nn.Module):\n    def __init__(self, n):\n        super().__init__()\n"
     "        self.fc = nn.Linear(n, 2)\n",
     "param.py:2:24: ", "A needs a value for 'n'", "                       ^"},
    {"instkw.py",
     "class A(nn.Module):\n    def __init__(self, n=2):\n        super().__init__()\n"
     "        self.fc = nn.Linear(n, 2)\nnet = A(m=3)\n",
     "instkw.py:5:9: ", "A.__init__ has no parameter 'm'", "        ^"},
    {"hex.py", "net = nn.Sequential(nn.Linear(0x10, 2))\n", "hex.py:1:31: ",
     "hexadecimal, octal and binary numbers are not supported", "                              ^"},
    {"overflow.py", "net = nn.Sequential(nn.Linear(9223372036854775807 + 1, 2))\n",
     "overflow.py:1:51: ", "integer overflow",
     "                                                  ^"},
    {"twice.py", "net = nn.Sequential(nn.Conv2d(1, 6, 5, stride=1, stride=2))\n", "twice.py:1:50: ",
     "Conv2d got two values for 'stride'", "                                                 ^"},
    {"poskw.py", "net = nn.Sequential(nn.Conv2d(1, 6, 5, kernel_size=3))\n", "poskw.py:1:40: ",
     "Conv2d got two values for 'kernel_size'", "                                       ^"},
    {"oddup.py", "net = nn.Sequential(OrderedDict([('a', nn.ReLU()), ('a', nn.Tanh())]))\n",
     "oddup.py:1:53: ", "duplicate module name 'a' (the first is at 1:35)",
     "                                                    ^"},
    {"oddot.py", "net = nn.Sequential(OrderedDict([('a.b', nn.ReLU())]))\n", "oddot.py:1:35: ",
     "module name 'a.b' can't contain '.'", "                                  ^"},
    {"oddash.py", "net = nn.Sequential(OrderedDict([('a-b', nn.ReLU())]))\n", "oddash.py:1:35: ",
     "module name 'a-b' is not supported", "                                  ^"},
    {"decorator.py", "@dataclass\nclass A(nn.Module):\n    pass\n",
     "decorator.py:1:1: ", "decorators are not supported", "^"},
    {"none7.py", "net = nn.Sequential(nn.AdaptiveAvgPool2d((None, 7)))\n",
     "none7.py:1:42: ", "None in output_size", "                                         ^"},
    {"device.py", "net = nn.Sequential(nn.Linear(2, 2, device='cuda'))\n",
     "device.py:1:44: ", "device is not supported", "                                           ^"},
    {"twoclasses.py", "class A(nn.Module):\n    pass\nclass B(nn.Module):\n    pass\n",
     "twoclasses.py:3:1: ", "a second class: this file already defines A at 1:7", "^"},
    {"noinit.py", "class A(nn.Module):\n    def forward(self, x):\n        return x\n",
     "noinit.py:1:7: ", "class A has no __init__", "      ^"},
    {"keyword.py", "class def(nn.Module):\n    pass\n",
     "keyword.py:1:7: ", "expected the class name, got the reserved word 'def'", "      ^"},
    {"zero.py", "net = nn.Sequential(OrderedDict([('01', nn.ReLU())]))\n",
     "zero.py:1:35: ", "module name '01' is not supported", "                                  ^"},
    {"bytes.py",
     "x = '\x80\xe0"
     "A'; net = nn.Sequential(nn.Conv3d())\n",
     "bytes.py:1:31: ", "Conv3d is not supported", "                              ^"},
    {"utf8.py", "# 中文注释\nnet = nn.Sequential(nn.ReLU(), 中)\n",
     "utf8.py:2:32: ", "unexpected character '中'", "                               ^"},
};

static void every_error_should_point_into_the_file(void **state) {
    (void)state;
    int n = 0, failed = 0;
    for (size_t i = 0; i < sizeof errors / sizeof errors[0]; i++) {
        const err_case *e = &errors[i];
        cnn_model *m = (cnn_model *)1;
        char err[2048];
        cnn_status s = cnn_model_parse(e->text, strlen(e->text), e->file, &m, err, sizeof err);
        n++;
        if (s == CNN_OK) {
            printf("    %s parsed, but should fail\n", e->file);
            cnn_model_free(m);
            failed++;
            continue;
        }
        assert_null(m);
        /* Three lines: where and what, the source line, the caret. */
        char *nl1 = strchr(err, '\n'), *nl2 = nl1 ? strchr(nl1 + 1, '\n') : NULL;
        if (!nl2 || strchr(nl2 + 1, '\n') || strncmp(err, e->where, strlen(e->where)) != 0 ||
            !strstr(err, e->message) || strcmp(nl2 + 1, e->caret) != 0) {
            printf("    %s: wanted %s...%s and caret '%s', got:\n%s\n", e->file, e->where,
                   e->message, e->caret, err);
            failed++;
        }
    }
    printf("    %d error cases, %d wrong\n", n, failed);
    assert_int_equal(failed, 0);
}

/* Shape errors start with the layer's place in the file. */
static void shape_errors_should_name_the_file_position(void **state) {
    (void)state;
    cnn_model *m = parse_ok("import torch.nn as nn\n"
                            "net = nn.Sequential(\n"
                            "    nn.Conv2d(1, 6, 5), nn.Flatten(),\n"
                            "    nn.Linear(100, 10))\n",
                            "shape.py");
    cnn_shape in = cnn_shape_make(4, (int64_t[]){1, 1, 28, 28});
    assert_int_equal(cnn_model_infer(m, &in), CNN_STATUS_SHAPE);
    const char *want = "shape.py:4:5: 2 Linear(in_features=100, out_features=10, bias=True): "
                       "expects 100 input features, got 3456";
    if (strncmp(cnn_model_error(m), want, strlen(want)) != 0)
        fail_msg("got: %s", cnn_model_error(m));
    cnn_shape guess;
    assert_int_equal(cnn_model_guess_input(m, &guess), CNN_STATUS_SHAPE);
    assert_non_null(strstr(cnn_model_error(m), "no square input from 28x28 to 256x256 fits"));
    cnn_model_free(m);
}

static void input_guesses_should_follow_the_first_layers(void **state) {
    (void)state;
    struct {
        const char *text;
        int ndim;
        int64_t dim[4];
    } cases[] = {
        {"nn.Sequential(nn.Linear(7, 2))", 2, {1, 7}},
        {"nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Linear(4 * 30 * 30, 2))",
         4,
         {1, 3, 32, 32}},
        {"nn.Sequential(nn.BatchNorm2d(5), nn.ReLU())", 4, {1, 5, 28, 28}},
        {"nn.Sequential(nn.Flatten(), nn.Linear(3 * 64 * 64, 2))", 4, {1, 3, 64, 64}},
        {"nn.Sequential(nn.Conv2d(1, 8, 11, stride=4), nn.Flatten(), nn.Linear(8 * 55 * 55, 2))",
         4,
         {1, 1, 227, 227}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cnn_model *m = parse_ok(cases[i].text, "guess.py");
        cnn_shape got, want = cnn_shape_make(cases[i].ndim, cases[i].dim);
        if (cnn_model_guess_input(m, &got) != CNN_OK) fail_msg("%s", cnn_model_error(m));
        assert_true(cnn_shape_equal(&got, &want));
        cnn_model_free(m);
    }
    cnn_model *m = parse_ok("Sequential()", "none.txt");
    cnn_shape got;
    assert_int_equal(cnn_model_guess_input(m, &got), CNN_STATUS_SHAPE);
    cnn_model_free(m);
}

/* Recursion is bounded: deep nesting is an error, never a crash. */
static void deep_nesting_should_be_an_error(void **state) {
    (void)state;
    size_t cap = 1 << 20;
    char *text = malloc(cap), err[2048];
    assert_non_null(text);
    cnn_model *m;
    /* 64 nested Sequentials are fine, 65 are not. */
    for (int depth = 64; depth <= 65; depth++) {
        size_t o = (size_t)snprintf(text, cap, "Net(\n");
        for (int i = 0; i < depth; i++)
            o += (size_t)snprintf(text + o, cap - o, "(0): Sequential(\n");
        o += (size_t)snprintf(text + o, cap - o, "(0): ReLU()\n");
        for (int i = 0; i <= depth; i++)
            o += (size_t)snprintf(text + o, cap - o, ")\n");
        cnn_status s = cnn_model_parse(text, o, "deep.txt", &m, err, sizeof err);
        if (depth == 64) {
            assert_int_equal(s, CNN_OK);
            cnn_model_free(m);
        } else {
            assert_int_equal(s, CNN_STATUS_UNSUPPORTED);
            assert_non_null(strstr(err, "containers nested more than 64 deep"));
        }
    }
    /* 100,000 parentheses and calls. */
    size_t o = (size_t)snprintf(text, cap, "net = nn.Sequential(nn.Linear(");
    for (int i = 0; i < 100000; i++)
        text[o++] = '(';
    assert_int_not_equal(cnn_model_parse(text, o, "paren.py", &m, err, sizeof err), CNN_OK);
    assert_non_null(strstr(err, "nested more than 64 levels deep"));
    o = 0;
    for (int i = 0; i < 10000; i++)
        o += (size_t)snprintf(text + o, cap - o, "nn.Sequential(");
    assert_int_not_equal(cnn_model_parse(text, o, "calls.py", &m, err, sizeof err), CNN_OK);
    assert_non_null(strstr(err, "nested more than 64 levels deep"));
    o = (size_t)snprintf(text, cap, "x = ");
    for (int i = 0; i < 100000; i++)
        text[o++] = '-';
    text[o++] = '1';
    assert_int_not_equal(cnn_model_parse(text, o, "minus.py", &m, err, sizeof err), CNN_OK);
    assert_non_null(strstr(err, "nested more than 64 levels deep"));
    free(text);
}

static void long_lines_should_show_the_part_around_the_error(void **state) {
    (void)state;
    char text[4096], err[2048];
    size_t o = (size_t)snprintf(text, sizeof text, "net = nn.Sequential(");
    for (int i = 0; i < 200; i++)
        o += (size_t)snprintf(text + o, sizeof text - o, "nn.ReLU(), ");
    o += (size_t)snprintf(text + o, sizeof text - o, "nn.Conv3d(1))");
    cnn_model *m;
    assert_int_not_equal(cnn_model_parse(text, o, "long.py", &m, err, sizeof err), CNN_OK);
    assert_non_null(strstr(err, "long.py:1:2221: Conv3d is not supported"));
    char *line = strchr(err, '\n') + 1, *caret = strchr(line, '\n') + 1;
    assert_true(strncmp(line, "...", 3) == 0);
    assert_true(strlen(caret) < 130);
    /* The caret is under the 'n' of nn.Conv3d. */
    assert_int_equal(caret[strlen(caret) - 1], '^');
    assert_memory_equal(line + strlen(caret) - 1, "nn.Conv3d", 9);
}

static void files_should_be_read_with_a_size_limit(void **state) {
    (void)state;
    cnn_model *m = (cnn_model *)1;
    char err[1024];
    assert_int_equal(cnn_model_read_file("/nonexistent/model.py", &m, err, sizeof err),
                     CNN_STATUS_IO);
    assert_null(m);
    assert_string_equal(err, "/nonexistent/model.py: No such file or directory");
    assert_int_equal(cnn_model_read_file(CNNKIT_FIXTURES, &m, err, sizeof err), CNN_STATUS_IO);
    assert_non_null(strstr(err, "not a regular file"));
    char path[] = "/tmp/cnnkit_big_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, CNN_MODELFILE_MAX_BYTES + 1), 0);
    close(fd);
    assert_int_equal(cnn_model_read_file(path, &m, err, sizeof err), CNN_STATUS_IO);
    assert_non_null(strstr(err, "over the limit for a model file"));
    unlink(path);
    /* A NUL byte is an error at its place. */
    assert_int_equal(
        cnn_model_parse("Net(\n  (0): ReLU()\0\n)", 21, "nul.txt", &m, err, sizeof err),
        CNN_STATUS_FORMAT);
    assert_non_null(strstr(err, "nul.txt:2:14: unexpected character byte 0x00"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(notes_class_code_should_give_the_zoo_lenet),
        cmocka_unit_test(notes_printed_text_should_give_the_zoo_lenet),
        cmocka_unit_test(alexnet_file_should_print_as_the_zoo_alexnet),
        cmocka_unit_test(torchvision_style_files_should_match_pytorch),
        cmocka_unit_test(every_layer_form_should_print_as_pytorch_prints_it),
        cmocka_unit_test(printed_models_should_accept_constructor_forms),
        cmocka_unit_test(every_fixture_repr_should_round_trip_byte_for_byte),
        cmocka_unit_test(code_forms_should_give_what_pytorch_builds),
        cmocka_unit_test(the_format_should_follow_the_content_then_the_name),
        cmocka_unit_test(crlf_and_bom_should_read_like_plain_text),
        cmocka_unit_test(every_error_should_point_into_the_file),
        cmocka_unit_test(shape_errors_should_name_the_file_position),
        cmocka_unit_test(input_guesses_should_follow_the_first_layers),
        cmocka_unit_test(deep_nesting_should_be_an_error),
        cmocka_unit_test(long_lines_should_show_the_part_around_the_error),
        cmocka_unit_test(files_should_be_read_with_a_size_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
