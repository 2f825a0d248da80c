/* test_onnx_export.c - what cnn_onnx_export writes, read back with the same
 * protobuf-c code: names, doc strings, initializers, value_info, the
 * dynamic batch, and the refusals that must leave no file. The checker,
 * shape inference and ONNX Runtime are tests/test_onnx.sh's part. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "cnnkit/cnnkit.h"
#include "cnnkit/onnx.h"
#include "onnx.pb-c.h"
#include "util.h"

#define OUT "test_onnx_export.onnx"

/* Net(features: Conv2d, BatchNorm2d, ReLU, MaxPool2d, Dropout; classifier: Flatten, Linear). */
static cnn_model *small_net(void) {
    cnn_model *m = cnn_model_new("Net");
    assert_non_null(m);
    int f = cnn_model_add_container(m, 0, "features", "Sequential");
    cnn_layer conv = cnn_conv2d(1, 4, 3), bn = cnn_batchnorm2d(4), relu = cnn_relu();
    cnn_layer pool = cnn_maxpool2d(2), drop = cnn_dropout(0.5), flat = cnn_flatten();
    cnn_layer fc = cnn_linear(4 * 3 * 3, 5);
    assert_true(cnn_model_add_layer(m, f, "0", &conv) >= 0);
    assert_true(cnn_model_add_layer(m, f, "1", &bn) >= 0);
    assert_true(cnn_model_add_layer(m, f, "2", &relu) >= 0);
    assert_true(cnn_model_add_layer(m, f, "3", &pool) >= 0);
    assert_true(cnn_model_add_layer(m, f, "4", &drop) >= 0);
    int c = cnn_model_add_container(m, 0, "classifier", "Sequential");
    assert_true(cnn_model_add_layer(m, c, "0", &flat) >= 0);
    assert_true(cnn_model_add_layer(m, c, "1", &fc) >= 0);
    assert_int_equal(cnn_model_finalize(m), CNN_OK);
    assert_int_equal(cnn_model_init(m, CNN_INIT_DEFAULT, 1), CNN_OK);
    return m;
}

static Onnx__ModelProto *read_back(const char *path) {
    unsigned char *buf;
    size_t len;
    char err[256];
    assert_int_equal(cnn_read_file(path, &buf, &len, err, sizeof err), CNN_OK);
    Onnx__ModelProto *mp = onnx__model_proto__unpack(NULL, len, buf);
    free(buf);
    assert_non_null(mp);
    return mp;
}

static const Onnx__AttributeProto *attr(const Onnx__NodeProto *n, const char *name) {
    for (size_t i = 0; i < n->n_attribute; i++)
        if (!strcmp(n->attribute[i]->name, name)) return n->attribute[i];
    return NULL;
}

static void export_should_name_everything_as_pytorch_does(void **state) {
    (void)state;
    cnn_model *m = small_net();
    cnn_shape in = cnn_shape_make(4, (int64_t[]){2, 1, 8, 8});
    char err[512] = "";
    assert_int_equal(cnn_onnx_export(m, &in, 0, OUT, err, sizeof err), CNN_OK);
    Onnx__ModelProto *mp = read_back(OUT);

    assert_string_equal(mp->producer_name, "cnnkit");
    assert_string_equal(mp->producer_version, CNNKIT_VERSION);
    assert_int_equal(mp->ir_version, CNN_ONNX_IR_VERSION);
    assert_int_equal(mp->n_opset_import, 1);
    assert_int_equal(mp->opset_import[0]->version, CNN_ONNX_OPSET);
    const Onnx__GraphProto *g = mp->graph;
    assert_string_equal(g->name, "Net");
    char repr[2048];
    cnn_model_repr(m, repr, sizeof repr);
    assert_string_equal(g->doc_string, repr);

    /* One node per layer but Dropout, named by module path, repr as doc string. */
    const char *names[] = {"features.0", "features.1",   "features.2",
                           "features.3", "classifier.0", "classifier.1"};
    const char *ops[] = {"Conv", "BatchNormalization", "Relu", "MaxPool", "Flatten", "Gemm"};
    const int nodes[] = {0, 1, 2, 3, 5, 6};
    assert_int_equal(g->n_node, 6);
    for (int i = 0; i < 6; i++) {
        const Onnx__NodeProto *n = g->node[i];
        assert_string_equal(n->name, names[i]);
        assert_string_equal(n->op_type, ops[i]);
        cnn_layer_repr(repr, sizeof repr, cnn_model_node_layer(m, nodes[i]));
        assert_string_equal(n->doc_string, repr);
        assert_int_equal(n->n_output, 1);
        assert_string_equal(n->output[0], i == 5 ? "output" : names[i]);
    }
    assert_string_equal(g->node[0]->input[0], "input");
    /* Dropout left out: classifier.0 reads what features.4 read. */
    assert_string_equal(g->node[4]->input[0], "features.3");
    assert_string_equal(g->node[1]->input[1], "features.1.weight");
    assert_string_equal(g->node[1]->input[3], "features.1.running_mean");
    assert_int_equal(attr(g->node[5], "transB")->i, 1);
    const Onnx__AttributeProto *pads = attr(g->node[0], "pads");
    assert_int_equal(pads->n_ints, 4);

    /* Initializers: the state_dict without num_batches_tracked, in its order. */
    size_t k = 0;
    for (int i = 0; i < cnn_model_num_params(m); i++) {
        cnn_param_info p = cnn_model_param(m, i);
        if (!p.data) {
            assert_non_null(strstr(p.name, "num_batches_tracked"));
            continue;
        }
        assert_true(k < g->n_initializer);
        assert_string_equal(g->initializer[k]->name, p.name);
        assert_int_equal(g->initializer[k]->n_float_data, p.numel);
        assert_memory_equal(g->initializer[k]->float_data, p.data, p.numel * sizeof(float));
        k++;
    }
    assert_int_equal(k, g->n_initializer);

    /* value_info: one per intermediate tensor, with the inferred shape. */
    assert_int_equal(g->n_value_info, 5);
    for (int i = 0; i < 5; i++) {
        const Onnx__ValueInfoProto *v = g->value_info[i];
        assert_string_equal(v->name, names[i]);
        cnn_shape want = cnn_model_node_stats(m, nodes[i]).out_shape;
        const Onnx__TensorShapeProto *s = v->type->tensor_type->shape;
        assert_int_equal(s->n_dim, (size_t)want.ndim);
        for (int d = 0; d < want.ndim; d++)
            assert_int_equal(s->dim[d]->dim_value, want.dim[d]);
    }
    assert_string_equal(g->input[0]->name, "input");
    assert_string_equal(g->output[0]->name, "output");
    onnx__model_proto__free_unpacked(mp, NULL);
    unlink(OUT);
    cnn_model_free(m);
}

static void dynamic_batch_should_name_dimension_zero_N_everywhere(void **state) {
    (void)state;
    cnn_model *m = small_net();
    cnn_shape in = cnn_shape_make(4, (int64_t[]){1, 1, 8, 8});
    char err[512];
    assert_int_equal(cnn_onnx_export(m, &in, 1, OUT, err, sizeof err), CNN_OK);
    Onnx__ModelProto *mp = read_back(OUT);
    const Onnx__GraphProto *g = mp->graph;
    const Onnx__ValueInfoProto *all[16];
    size_t n = 0;
    all[n++] = g->input[0];
    all[n++] = g->output[0];
    for (size_t i = 0; i < g->n_value_info; i++)
        all[n++] = g->value_info[i];
    for (size_t i = 0; i < n; i++) {
        const Onnx__TensorShapeProto__Dimension *d = all[i]->type->tensor_type->shape->dim[0];
        assert_int_equal(d->value_case, ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM);
        assert_string_equal(d->dim_param, "N");
        const Onnx__TensorShapeProto__Dimension *d1 = all[i]->type->tensor_type->shape->dim[1];
        assert_int_equal(d1->value_case, ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE);
    }
    onnx__model_proto__free_unpacked(mp, NULL);
    unlink(OUT);
    cnn_model_free(m);
}

/* A one-layer model exported for in; returns the status and leaves err. */
static cnn_status export_layer(cnn_layer L, int ndim, const int64_t *dims, int dynamic, char *err,
                               size_t errlen) {
    cnn_model *m = cnn_model_new("Sequential");
    assert_non_null(m);
    assert_true(cnn_model_add_layer(m, 0, "0", &L) >= 0);
    assert_int_equal(cnn_model_finalize(m), CNN_OK);
    cnn_shape in = cnn_shape_make(ndim, dims);
    unlink(OUT);
    cnn_status s = cnn_onnx_export(m, &in, dynamic, OUT, err, errlen);
    cnn_model_free(m);
    return s;
}

static void unsupported_layers_should_be_refused_without_a_file(void **state) {
    (void)state;
    char err[512];
    cnn_layer ad = cnn_adaptiveavgpool2d(3);
    assert_int_equal(export_layer(ad, 4, (int64_t[]){1, 2, 7, 6}, 0, err, sizeof err),
                     CNN_STATUS_UNSUPPORTED);
    assert_non_null(strstr(err, "0 AdaptiveAvgPool2d(output_size=3): ONNX has no adaptive "
                                "pooling, and input 7x6 is not a multiple of output_size 3x3"));
    assert_null(strchr(err, '\n'));
    assert_int_equal(access(OUT, F_OK), -1);

    cnn_layer bn = cnn_batchnorm2d(2);
    bn.track_running_stats = false;
    assert_int_equal(export_layer(bn, 4, (int64_t[]){1, 2, 3, 3}, 0, err, sizeof err),
                     CNN_STATUS_UNSUPPORTED);
    assert_non_null(strstr(err, "track_running_stats=False"));
    assert_int_equal(export_layer(cnn_lrn(2), 4, (int64_t[]){1, 4, 3, 3}, 0, err, sizeof err),
                     CNN_STATUS_UNSUPPORTED);
    assert_int_equal(export_layer(cnn_lrn(3), 3, (int64_t[]){1, 4, 3}, 0, err, sizeof err),
                     CNN_STATUS_UNSUPPORTED);
    cnn_layer flat = cnn_flatten();
    flat.start_dim = 0;
    assert_int_equal(export_layer(flat, 2, (int64_t[]){2, 3}, 1, err, sizeof err),
                     CNN_STATUS_UNSUPPORTED);
    assert_int_equal(export_layer(flat, 2, (int64_t[]){2, 3}, 0, err, sizeof err), CNN_OK);
    /* The adaptive pooling that is exact: an input that is a multiple of the output. */
    assert_int_equal(export_layer(ad, 4, (int64_t[]){1, 2, 6, 9}, 1, err, sizeof err), CNN_OK);
    assert_int_equal(access(OUT, F_OK), 0);
    unlink(OUT);
}

static void pooling_ceil_mode_should_be_written_so_old_onnx_agrees(void **state) {
    (void)state;
    char err[512];
    /* PyTorch drops the last window (it would start in the padding): floor mode, same pads. */
    cnn_layer mp = cnn_maxpool2d(2);
    mp.padding[0] = mp.padding[1] = 1;
    mp.ceil_mode = true;
    assert_int_equal(export_layer(mp, 4, (int64_t[]){1, 2, 5, 5}, 0, err, sizeof err), CNN_OK);
    Onnx__ModelProto *m = read_back(OUT);
    const Onnx__NodeProto *n = m->graph->node[0];
    assert_int_equal(attr(n, "ceil_mode")->i, 0);
    assert_int_equal(attr(n, "pads")->ints[2], 1);
    onnx__model_proto__free_unpacked(m, NULL);
    /* A ceil window that ONNX counts as PyTorch does stays ceil_mode=1. */
    assert_int_equal(export_layer(mp, 4, (int64_t[]){1, 2, 6, 6}, 0, err, sizeof err), CNN_OK);
    m = read_back(OUT);
    assert_int_equal(attr(m->graph->node[0], "ceil_mode")->i, 1);
    onnx__model_proto__free_unpacked(m, NULL);
    /* One axis drops, the other keeps: floor mode with the bottom pad grown. */
    cnn_layer ap = cnn_avgpool2d(3);
    ap.kernel[1] = 2;
    ap.stride[0] = ap.stride[1] = 2;
    ap.padding[0] = ap.padding[1] = 1;
    ap.ceil_mode = true;
    ap.count_include_pad = false;
    assert_int_equal(export_layer(ap, 4, (int64_t[]){1, 2, 8, 7}, 0, err, sizeof err), CNN_OK);
    m = read_back(OUT);
    n = m->graph->node[0];
    assert_int_equal(attr(n, "ceil_mode")->i, 0);
    assert_int_equal(attr(n, "pads")->ints[2], 2);
    assert_int_equal(attr(n, "pads")->ints[3], 1);
    onnx__model_proto__free_unpacked(m, NULL);
    /* The same with count_include_pad would count the grown pad: refused. */
    ap.count_include_pad = true;
    assert_int_equal(export_layer(ap, 4, (int64_t[]){1, 2, 8, 7}, 0, err, sizeof err),
                     CNN_STATUS_UNSUPPORTED);
    assert_int_equal(access(OUT, F_OK), -1);
    unlink(OUT);
}

static void bad_calls_should_fail_with_one_line(void **state) {
    (void)state;
    char err[512];
    cnn_model *m = small_net();
    cnn_shape in = cnn_shape_make(4, (int64_t[]){1, 1, 8, 8});
    assert_int_equal(cnn_onnx_export(NULL, &in, 0, OUT, err, sizeof err),
                     CNN_STATUS_INVALID_ARGUMENT);
    assert_int_equal(cnn_onnx_export(m, NULL, 0, OUT, NULL, 0), CNN_STATUS_INVALID_ARGUMENT);
    assert_int_equal(cnn_onnx_export(m, &in, 0, "no/such/dir/x.onnx", err, sizeof err),
                     CNN_STATUS_IO);
    assert_non_null(strstr(err, "no/such/dir/x.onnx: cannot create"));
    cnn_shape small = cnn_shape_make(4, (int64_t[]){1, 1, 2, 2});
    assert_int_equal(cnn_onnx_export(m, &small, 0, OUT, err, sizeof err), CNN_STATUS_SHAPE);
    assert_non_null(strstr(err, "features.0 Conv2d"));
    assert_int_equal(access(OUT, F_OK), -1);
    cnn_model_free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(export_should_name_everything_as_pytorch_does),
        cmocka_unit_test(dynamic_batch_should_name_dimension_zero_N_everywhere),
        cmocka_unit_test(unsupported_layers_should_be_refused_without_a_file),
        cmocka_unit_test(pooling_ceil_mode_should_be_written_so_old_onnx_agrees),
        cmocka_unit_test(bad_calls_should_fail_with_one_line),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
