/* onnx_fixture - exports a layer fixture of tests/fixtures as ONNX.
 *
 *   onnx_fixture FIXTURES NAME export OUT.onnx [--dynamic-batch]
 *   onnx_fixture FIXTURES NAME run IN.safetensors OUT.safetensors
 *   onnx_fixture list
 *
 * Rebuilds Sequential(layer) as tests/ref/make_fixtures.py constructs it
 * (the same table as test_parity.c), checks that its repr equals the one
 * PyTorch stored in NAME.weights.safetensors and loads those weights. Then
 * `export` calls cnn_onnx_export for the fixture's input shape, and `run`
 * does what `cnnkit run` does for a built-in model: the forward pass on the
 * tensor 'input' of IN, written as 'output' of OUT. A model file parser
 * could not stand in: AvgPool2d's repr leaves out ceil_mode and
 * count_include_pad. `list` prints the fixtures' names. Exits 0 on success, 1 on failure with one
 * line on stderr (the exporter's error for a refused layer), 2 on bad usage.
 */
#include <stdio.h>
#include <string.h>

#include "cnnkit/cnnkit.h"
#include "cnnkit/onnx.h"

#include "../fixture_layers.h"

/* cnnkit's forward pass on the tensor 'input' of in, written as 'output' of out. */
static bool run(cnn_model *m, const char *in, const char *out) {
    char err[1024];
    cnn_st_file *st = NULL, *o = NULL;
    cnn_tensor x = {0}, y = {0};
    bool ok = false;
    const cnn_st_entry *e = NULL;
    if (cnn_st_read(in, &st, err, sizeof err) != CNN_OK) {
        fprintf(stderr, "onnx_fixture: %s\n", err);
    } else if (!(e = cnn_st_find(st, "input")) || !e->f32 ||
               cnn_tensor_alloc(&x, &e->shape) != CNN_OK) {
        fprintf(stderr, "onnx_fixture: %s: no float tensor 'input'\n", in);
    } else {
        memcpy(x.data, e->f32, e->numel * sizeof(float));
        if (cnn_model_forward(m, &x, &y) != CNN_OK)
            fprintf(stderr, "onnx_fixture: %s\n", cnn_model_error(m));
        else if (!(o = cnn_st_new()) || cnn_st_add_f32(o, "output", &y.shape, y.data) != CNN_OK ||
                 cnn_st_write(o, out, err, sizeof err) != CNN_OK)
            fprintf(stderr, "onnx_fixture: %s: cannot write\n", out);
        else
            ok = true;
    }
    cnn_st_free(o);
    cnn_tensor_free(&x);
    cnn_tensor_free(&y);
    cnn_st_free(st);
    return ok;
}

int main(int argc, char **argv) {
    cnn_layer L;
    if (argc == 2 && !strcmp(argv[1], "list")) return fixture_layer(NULL, &L) ? 1 : 0;
    const bool export = argc >= 5 && !strcmp(argv[3], "export");
    const bool dynamic = export && argc == 6 && !strcmp(argv[5], "--dynamic-batch");
    const bool forward = argc == 6 && !strcmp(argv[3], "run");
    if (!(export && (argc == 5 || dynamic)) && !forward) {
        fprintf(stderr, "usage: onnx_fixture FIXTURES NAME export OUT.onnx [--dynamic-batch]\n"
                        "       onnx_fixture FIXTURES NAME run IN.safetensors OUT.safetensors\n"
                        "       onnx_fixture list\n");
        return 2;
    }
    if (!fixture_layer(argv[2], &L)) {
        fprintf(stderr, "onnx_fixture: no layer fixture '%s' in tests/ref/make_fixtures.py\n",
                argv[2]);
        return 2;
    }
    const char *name = argv[2];
    char path[4096], err[1024], repr[4096];
    snprintf(path, sizeof path, "%s/%s.weights.safetensors", argv[1], name);
    cnn_model *m = cnn_model_new("Sequential");
    cnn_st_file *w = NULL;
    int rc = 1;
    cnn_shape input;
    if (!m || cnn_model_add_layer(m, 0, "0", &L) < 0 || cnn_model_load(m, path) != CNN_OK) {
        fprintf(stderr, "onnx_fixture: %s\n", m ? cnn_model_error(m) : "out of memory");
        goto done;
    }
    if (cnn_st_read(path, &w, err, sizeof err) != CNN_OK) {
        fprintf(stderr, "onnx_fixture: %s\n", err);
        goto done;
    }
    const char *want = cnn_st_metadata(w, "repr"), *shape = cnn_st_metadata(w, "input_shape");
    int n = cnn_model_repr(m, repr, sizeof repr);
    if (n > 0 && (size_t)n < sizeof repr) repr[n - 1] = 0; /* repr() has no final newline */
    if (!want || !shape || strcmp(repr, want) != 0 || cnn_shape_parse(shape, &input) != CNN_OK) {
        fprintf(stderr, "onnx_fixture: %s: the model is not the fixture's (repr or input_shape)\n",
                path);
        goto done;
    }
    if (forward) {
        rc = run(m, argv[4], argv[5]) ? 0 : 1;
    } else if (cnn_onnx_export(m, &input, dynamic, argv[4], err, sizeof err) != CNN_OK) {
        fprintf(stderr, "onnx_fixture: %s\n", err);
    } else {
        rc = 0;
    }
done:
    cnn_st_free(w);
    cnn_model_free(m);
    return rc;
}
