/* test_util.c - the small pieces: Python float text, the PRNG, status names,
 * the module tree and its printing, and --explain's arithmetic. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "cnnkit/cnnkit.h"
#include "util.h"

static void pyfloat_should_print_as_python_repr_does(void **state) {
    (void)state;
    const struct {
        double v;
        const char *text;
    } cases[] = {
        {0.5, "0.5"},
        {1e-05, "1e-05"},
        {0.0001, "0.0001"},
        {0.75, "0.75"},
        {2.0, "2.0"},
        {1.0, "1.0"},
        {0.1, "0.1"},
        {0.0, "0.0"},
        {-0.25, "-0.25"},
        {1e16, "1e+16"},
        {123456789.0, "123456789.0"},
        {1e-3, "0.001"},
        {0.3, "0.3"},
        {2.5e-7, "2.5e-07"},
        {1.0 / 3, "0.3333333333333333"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char buf[64];
        cnn_format_pyfloat(buf, sizeof buf, cases[i].v);
        assert_string_equal(buf, cases[i].text);
    }
}

static void pcg32_should_match_the_reference_stream(void **state) {
    (void)state;
    /* pcg32-demo from the PCG reference implementation: seed 42, stream 54. */
    const uint32_t want[] = {0xa15c02b7, 0x7b47f409, 0xba1d3330,
                             0x83d2f293, 0xbfa4784b, 0xcbed606e};
    cnn_rng r;
    cnn_rng_seed(&r, 42, 54);
    for (int i = 0; i < 6; i++)
        assert_int_equal(cnn_rng_u32(&r), want[i]);
    for (int i = 0; i < 1000; i++) {
        float u = cnn_rng_uniform(&r);
        assert_true(u >= 0.0f && u < 1.0f);
        assert_true(cnn_rng_below(&r, 7) < 7);
    }
    /* Jumping ahead lands where that many draws would. */
    const uint64_t skips[] = {0, 1, 2, 3, 7, 64, 1000, 4097};
    for (int i = 0; i < 8; i++) {
        cnn_rng a, b;
        cnn_rng_seed(&a, 42, 54);
        cnn_rng_seed(&b, 42, 54);
        for (uint64_t k = 0; k < skips[i]; k++)
            cnn_rng_u32(&a);
        cnn_rng_advance(&b, skips[i]);
        for (int k = 0; k < 4; k++)
            assert_int_equal(cnn_rng_u32(&a), cnn_rng_u32(&b));
    }
}

static void every_status_should_have_a_name(void **state) {
    (void)state;
    for (int s = 0; s < CNN_STATUS_COUNT; s++)
        assert_true(strlen(cnn_status_str((cnn_status)s)) > 0);
    assert_string_equal(cnn_status_str(CNN_STATUS_COUNT), "unknown status");
}

static void every_op_should_round_trip_its_name(void **state) {
    (void)state;
    for (int op = 0; op < CNN_OP_COUNT; op++)
        assert_int_equal(cnn_op_from_name(cnn_op_name((cnn_op)op)), op);
    assert_int_equal(cnn_op_from_name("Conv3d"), CNN_OP_COUNT);
}

static void nested_containers_should_print_as_pytorch_does(void **state) {
    (void)state;
    cnn_model *m = cnn_model_new("Net");
    int f = cnn_model_add_container(m, 0, "features", "Sequential");
    cnn_layer c = cnn_conv2d(3, 8, 3);
    c.bias = false;
    c.groups = 1;
    cnn_model_add_layer(m, f, "conv", &c);
    cnn_layer bn = cnn_batchnorm2d(8);
    bn.momentum_none = true;
    cnn_model_add_layer(m, f, "bn", &bn);
    int inner = cnn_model_add_container(m, f, "block", "Sequential");
    cnn_layer r = cnn_relu();
    r.inplace = true;
    cnn_model_add_layer(m, inner, "0", &r);
    cnn_model_add_container(m, 0, "empty", "Sequential");
    cnn_layer lrn = cnn_lrn(5);
    lrn.k = 2.0;
    cnn_model_add_layer(m, 0, "norm", &lrn);
    cnn_layer ap = cnn_adaptiveavgpool2d(6);
    ap.output_size_tuple = true;
    cnn_model_add_layer(m, 0, "pool", &ap);
    assert_int_equal(cnn_model_finalize(m), CNN_OK);
    char got[2048];
    cnn_model_repr(m, got, sizeof got);
    /* What PyTorch 1.13 prints for the same nn.Module. */
    assert_string_equal(got,
                        "Net(\n"
                        "  (features): Sequential(\n"
                        "    (conv): Conv2d(3, 8, kernel_size=(3, 3), stride=(1, 1), bias=False)\n"
                        "    (bn): BatchNorm2d(8, eps=1e-05, momentum=None, affine=True, "
                        "track_running_stats=True)\n"
                        "    (block): Sequential(\n"
                        "      (0): ReLU(inplace=True)\n"
                        "    )\n"
                        "  )\n"
                        "  (empty): Sequential()\n"
                        "  (norm): LocalResponseNorm(5, alpha=0.0001, beta=0.75, k=2.0)\n"
                        "  (pool): AdaptiveAvgPool2d(output_size=(6, 6))\n"
                        ")\n");
    /* Module paths follow the tree; the graph runs in definition order. */
    assert_string_equal(cnn_model_node_path(m, 2), "features.block.0");
    assert_string_equal(cnn_model_node_path(m, 3), "norm");
    assert_string_equal(cnn_model_param(m, 1).name, "features.bn.weight");
    cnn_model_free(m);
}

static void module_names_should_follow_pytorchs_rules(void **state) {
    (void)state;
    cnn_model *m = cnn_model_new("Net");
    cnn_layer r = cnn_relu();
    assert_true(cnn_model_add_layer(m, 0, "a", &r) >= 0);
    assert_int_equal(cnn_model_add_layer(m, 0, "a", &r), -1);
    assert_non_null(strstr(cnn_model_error(m), "duplicate module name 'a'"));
    assert_int_equal(cnn_model_add_layer(m, 0, "a.b", &r), -1);
    assert_int_equal(cnn_model_add_layer(m, 0, "", &r), -1);
    assert_int_equal(cnn_model_add_container(m, 1, "x", "Sequential"),
                     -1); /* a leaf is no parent */
    assert_int_equal(cnn_model_finalize(m), CNN_OK);
    assert_int_equal(cnn_model_add_layer(m, 0, "late", &r), -1);
    assert_non_null(strstr(cnn_model_error(m), "finalized"));
    cnn_model_free(m);
}

static void invalid_attributes_should_name_the_layer(void **state) {
    (void)state;
    cnn_model *m = cnn_model_new("Net");
    int f = cnn_model_add_container(m, 0, "features", "Sequential");
    cnn_layer c = cnn_conv2d(3, 8, 3);
    c.groups = 2;
    assert_int_equal(cnn_model_add_layer(m, f, "0", &c), -1);
    assert_string_equal(cnn_model_error(m), "features.0 Conv2d(3, 8, kernel_size=(3, 3), "
                                            "stride=(1, 1), groups=2): in_channels must be "
                                            "divisible by groups");
    cnn_layer p = cnn_maxpool2d(3);
    p.padding[0] = p.padding[1] = 2;
    assert_int_equal(cnn_model_add_layer(m, f, "1", &p), -1);
    assert_non_null(strstr(cnn_model_error(m), "pad should be at most half of kernel size"));
    cnn_layer d = cnn_dropout(1.5);
    assert_int_equal(cnn_model_add_layer(m, f, "2", &d), -1);
    assert_non_null(strstr(cnn_model_error(m), "between 0 and 1, but got 1.5"));
    cnn_model_free(m);
}

static void shape_errors_should_name_layer_input_and_need(void **state) {
    (void)state;
    cnn_model *m;
    assert_int_equal(cnn_zoo_build("lenet", &m), CNN_OK);
    cnn_shape in = cnn_shape_make(4, (int64_t[]){1, 1, 32, 32});
    assert_int_equal(cnn_model_infer(m, &in), CNN_STATUS_SHAPE);
    assert_string_equal(cnn_model_error(m),
                        "net.7 Linear(in_features=400, out_features=120, bias=True): expects 400 "
                        "input features, got 576 (input [1, 576])");
    in = cnn_shape_make(4, (int64_t[]){1, 3, 28, 28});
    assert_int_equal(cnn_model_infer(m, &in), CNN_STATUS_SHAPE);
    assert_string_equal(cnn_model_error(m),
                        "net.0 Conv2d(1, 6, kernel_size=(5, 5), stride=(1, 1), padding=(2, 2)): "
                        "expects 1 input channels, got 3 (input [1, 3, 28, 28])");
    in = cnn_shape_make(4, (int64_t[]){1, 1, 28, 28});
    assert_int_equal(cnn_model_infer(m, &in), CNN_OK);
    cnn_model_free(m);
}

static void explain_should_show_the_notes_arithmetic(void **state) {
    (void)state;
    cnn_model *m;
    assert_int_equal(cnn_zoo_build("lenet", &m), CNN_OK);
    cnn_shape in = cnn_shape_make(4, (int64_t[]){1, 1, 28, 28});
    assert_int_equal(cnn_model_infer(m, &in), CNN_OK);
    char buf[512];
    cnn_model_node_explain(m, 0, buf, sizeof buf);
    assert_string_equal(buf, "h' = floor((28 + 2*2 - 1*(5-1) - 1) / 1) + 1 = 28\n"
                             "w' = floor((28 + 2*2 - 1*(5-1) - 1) / 1) + 1 = 28\n");
    cnn_model_node_explain(m, 1, buf, sizeof buf);
    assert_string_equal(buf, "");
    cnn_model_node_explain(m, 6, buf, sizeof buf);
    assert_string_equal(buf, "dim 1 = 16*5*5 = 400\n");
    cnn_model_free(m);

    /* ceil_mode's last-window rule is spelled out where it applies. */
    m = cnn_model_new("Sequential");
    cnn_layer p = cnn_maxpool2d(2);
    p.padding[0] = p.padding[1] = 1;
    p.ceil_mode = true;
    cnn_model_add_layer(m, 0, "0", &p);
    in = cnn_shape_make(4, (int64_t[]){1, 1, 5, 5});
    assert_int_equal(cnn_model_infer(m, &in), CNN_OK);
    cnn_model_node_explain(m, 0, buf, sizeof buf);
    assert_non_null(strstr(buf, "h' = ceil((5 + 2*1 - 1*(2-1) - 1) / 2) + 1 - 1 = 3  (the last "
                                "window would start at 6 >= 5 + 1"));
    cnn_model_free(m);
}

static void stats_should_count_as_torchinfo_does(void **state) {
    (void)state;
    const struct {
        const char *name;
        size_t params, macs;
    } want[] = {{"lenet", 61706, 423038}, {"alexnet", 46764746, 938754826}};
    for (int i = 0; i < 2; i++) {
        cnn_model *m;
        assert_int_equal(cnn_zoo_build(want[i].name, &m), CNN_OK);
        assert_int_equal(cnn_model_infer(m, &cnn_zoo_find(want[i].name)->input), CNN_OK);
        size_t params = 0, macs = 0;
        for (int n = 0; n < cnn_model_num_nodes(m); n++) {
            params += cnn_model_node_stats(m, n).params;
            macs += cnn_model_node_stats(m, n).macs;
        }
        assert_int_equal(params, want[i].params);
        assert_int_equal(macs, want[i].macs);
        cnn_model_free(m);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(pyfloat_should_print_as_python_repr_does),
        cmocka_unit_test(pcg32_should_match_the_reference_stream),
        cmocka_unit_test(every_status_should_have_a_name),
        cmocka_unit_test(every_op_should_round_trip_its_name),
        cmocka_unit_test(nested_containers_should_print_as_pytorch_does),
        cmocka_unit_test(module_names_should_follow_pytorchs_rules),
        cmocka_unit_test(invalid_attributes_should_name_the_layer),
        cmocka_unit_test(shape_errors_should_name_layer_input_and_need),
        cmocka_unit_test(explain_should_show_the_notes_arithmetic),
        cmocka_unit_test(stats_should_count_as_torchinfo_does),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
