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

static cnn_layer conv2d_full(void) {
    cnn_layer L = cnn_conv2d(4, 6, 3);
    L.kernel[1] = 5;
    L.stride[0] = 2;
    L.padding[0] = 1;
    L.padding[1] = 2;
    L.dilation[0] = 2;
    L.groups = 2;
    L.bias = false;
    return L;
}

static cnn_layer conv2d_depthwise(void) {
    cnn_layer L = cnn_conv2d(4, 8, 3);
    L.padding[0] = L.padding[1] = 1;
    L.groups = 4;
    return L;
}

static cnn_layer linear_nobias(void) {
    cnn_layer L = cnn_linear(7, 4);
    L.bias = false;
    return L;
}

static cnn_layer maxpool(void) {
    cnn_layer L = cnn_maxpool2d(3);
    L.stride[0] = L.stride[1] = 2;
    return L;
}

static cnn_layer maxpool_full(void) {
    cnn_layer L = cnn_maxpool2d(3);
    L.kernel[1] = 2;
    L.stride[0] = 2;
    L.stride[1] = 1;
    L.padding[0] = L.padding[1] = 1;
    L.dilation[0] = 2;
    L.ceil_mode = true;
    L.kernel_tuple = L.stride_tuple = L.padding_tuple = L.dilation_tuple = true;
    return L;
}

static cnn_layer maxpool_ceil(void) {
    cnn_layer L = cnn_maxpool2d(2);
    L.padding[0] = L.padding[1] = 1;
    L.ceil_mode = true;
    return L;
}

static cnn_layer avgpool(void) {
    cnn_layer L = cnn_avgpool2d(3);
    L.stride[0] = L.stride[1] = 2;
    L.padding[0] = L.padding[1] = 1;
    return L;
}

static cnn_layer avgpool_exclude_pad(void) {
    cnn_layer L = cnn_avgpool2d(3);
    L.kernel[1] = 2;
    L.stride[0] = L.stride[1] = 2;
    L.padding[0] = L.padding[1] = 1;
    L.ceil_mode = true;
    L.count_include_pad = false;
    L.kernel_tuple = L.stride_tuple = L.padding_tuple = true;
    return L;
}

static cnn_layer avgpool_include_pad(void) {
    cnn_layer L = avgpool();
    L.ceil_mode = true;
    return L;
}

static cnn_layer adaptive(void) {
    cnn_layer L = cnn_adaptiveavgpool2d(3);
    L.output_size[1] = 2;
    L.output_size_tuple = true;
    return L;
}

static cnn_layer relu(void) {
    cnn_layer L = cnn_relu();
    L.inplace = true;
    return L;
}

static cnn_layer flatten_middle(void) {
    cnn_layer L = cnn_flatten();
    L.end_dim = 2;
    return L;
}

static cnn_layer bn_noaffine(void) {
    cnn_layer L = cnn_batchnorm2d(3);
    L.eps = 0.001;
    L.momentum = 0.2;
    L.affine = false;
    return L;
}

static cnn_layer bn_batchstats(void) {
    cnn_layer L = cnn_batchnorm2d(3);
    L.track_running_stats = false;
    return L;
}

static cnn_layer lrn(void) {
    cnn_layer L = cnn_lrn(3);
    L.alpha = 0.001;
    L.beta = 0.6;
    L.k = 2.0;
    return L;
}

/* The layer of fixture name; false when there is no such fixture. With
 * name NULL, prints every fixture's name and returns false. */
static bool fixture_layer(const char *name, cnn_layer *L) {
    const struct {
        const char *name;
        cnn_layer layer;
    } table[] = {
        {"conv2d_basic", cnn_conv2d(3, 4, 3)},
        {"conv2d_full", conv2d_full()},
        {"conv2d_depthwise", conv2d_depthwise()},
        {"linear", cnn_linear(12, 5)},
        {"linear_nobias_3d", linear_nobias()},
        {"maxpool", maxpool()},
        {"maxpool_full", maxpool_full()},
        {"maxpool_ceil_last_window", maxpool_ceil()},
        {"avgpool", avgpool()},
        {"avgpool_ceil_exclude_pad", avgpool_exclude_pad()},
        {"avgpool_ceil_include_pad", avgpool_include_pad()},
        {"adaptiveavgpool", adaptive()},
        {"adaptiveavgpool_global", cnn_adaptiveavgpool2d(1)},
        {"relu", relu()},
        {"sigmoid", cnn_sigmoid()},
        {"tanh", cnn_tanh()},
        {"flatten", cnn_flatten()},
        {"flatten_middle", flatten_middle()},
        {"dropout", cnn_dropout(0.3)},
        {"batchnorm", cnn_batchnorm2d(4)},
        {"batchnorm_noaffine", bn_noaffine()},
        {"batchnorm_batchstats", bn_batchstats()},
        {"lrn", lrn()},
        {"lrn_even", cnn_lrn(4)},
        {"softmax", cnn_softmax(1)},
        {"softmax_last", cnn_softmax(-1)},
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (!name)
            puts(table[i].name);
        else if (!strcmp(table[i].name, name)) {
            *L = table[i].layer;
            return true;
        }
    return false;
}

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
