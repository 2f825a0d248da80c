/* test_parity.c - forward parity with PyTorch: every fixture that
 * tests/ref/make_fixtures.py wrote (one per layer type with non-default
 * attributes, and LeNet) is rebuilt here, loaded with PyTorch's weights, run,
 * and compared with PyTorch's output. The repr PyTorch printed for each
 * fixture must equal cnnkit's too. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "cnnkit/cnnkit.h"
#include "fixture_layers.h"

#define TOL 1e-4

/* The fixtures' names, in make_fixtures.py's order (fixture_layer has the layers). */
static const char *const fixture_names[] = {"conv2d_basic",
                                            "conv2d_full",
                                            "conv2d_depthwise",
                                            "linear",
                                            "linear_nobias_3d",
                                            "maxpool",
                                            "maxpool_full",
                                            "maxpool_ceil_last_window",
                                            "avgpool",
                                            "avgpool_ceil_exclude_pad",
                                            "avgpool_ceil_include_pad",
                                            "adaptiveavgpool",
                                            "adaptiveavgpool_global",
                                            "relu",
                                            "sigmoid",
                                            "tanh",
                                            "flatten",
                                            "flatten_middle",
                                            "dropout",
                                            "batchnorm",
                                            "batchnorm_noaffine",
                                            "batchnorm_batchstats",
                                            "lrn",
                                            "lrn_even",
                                            "softmax",
                                            "softmax_last"};

static char *read_text(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    static char buf[8192];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = 0;
    fclose(f);
    return buf;
}

/* Loads the weights and input, runs, compares; returns the max abs difference. */
static double run_fixture(cnn_model *m, const char *name) {
    char path[512], err[1024];
    snprintf(path, sizeof path, "%s/%s.weights.safetensors", CNNKIT_FIXTURES, name);
    if (cnn_model_load(m, path) != CNN_OK) fail_msg("%s: %s", name, cnn_model_error(m));

    /* PyTorch's repr of the same model, stored by the reference script. */
    cnn_st_file *w;
    assert_int_equal(cnn_st_read(path, &w, err, sizeof err), CNN_OK);
    const char *want = cnn_st_metadata(w, "repr");
    assert_non_null(want);
    char got[4096];
    cnn_model_repr(m, got, sizeof got);
    got[strlen(got) - 1] = 0; /* repr() has no final newline; print() adds it */
    if (strcmp(got, want) != 0)
        fail_msg("%s: repr differs:\ncnnkit:  %s\nPyTorch: %s", name, got, want);
    cnn_st_free(w);

    snprintf(path, sizeof path, "%s/%s.io.safetensors", CNNKIT_FIXTURES, name);
    cnn_st_file *io;
    if (cnn_st_read(path, &io, err, sizeof err) != CNN_OK) fail_msg("%s", err);
    const cnn_st_entry *in = cnn_st_find(io, "input"), *out = cnn_st_find(io, "output");
    assert_non_null(in);
    assert_non_null(out);
    cnn_tensor x, y;
    assert_int_equal(cnn_tensor_alloc(&x, &in->shape), CNN_OK);
    memcpy(x.data, in->f32, in->numel * sizeof(float));
    if (cnn_model_forward(m, &x, &y) != CNN_OK) fail_msg("%s: %s", name, cnn_model_error(m));
    if (!cnn_shape_equal(&y.shape, &out->shape)) {
        char a[64], b[64];
        cnn_shape_format(a, sizeof a, &y.shape);
        cnn_shape_format(b, sizeof b, &out->shape);
        fail_msg("%s: output shape %s, PyTorch %s", name, a, b);
    }
    double maxdiff = 0.0;
    for (size_t i = 0; i < out->numel; i++) {
        double d = fabs((double)y.data[i] - (double)out->f32[i]);
        if (!(d <= maxdiff)) maxdiff = d; /* NaN propagates */
    }
    cnn_tensor_free(&x);
    cnn_tensor_free(&y);
    cnn_st_free(io);
    return maxdiff;
}

static void every_layer_fixture_should_match_pytorch(void **state) {
    (void)state;
    int bad = 0;
    for (size_t i = 0; i < sizeof fixture_names / sizeof fixture_names[0]; i++) {
        cnn_layer L;
        assert_true(fixture_layer(fixture_names[i], &L));
        cnn_model *m = cnn_model_new("Sequential");
        assert_non_null(m);
        if (cnn_model_add_layer(m, 0, "0", &L) < 0)
            fail_msg("%s: %s", fixture_names[i], cnn_model_error(m));
        double d = run_fixture(m, fixture_names[i]);
        printf("  %-26s max abs diff %.3g\n", fixture_names[i], d);
        if (!(d <= TOL)) bad++;
        cnn_model_free(m);
    }
    assert_int_equal(bad, 0);
}

static void lenet_should_match_pytorch_with_pytorch_weights(void **state) {
    (void)state;
    cnn_model *m;
    assert_int_equal(cnn_zoo_build("lenet", &m), CNN_OK);
    double d = run_fixture(m, "lenet");
    printf("  %-26s max abs diff %.3g\n", "lenet", d);
    assert_true(d <= TOL);
    cnn_model_free(m);
}

static void zoo_models_should_print_as_pytorch_prints_them(void **state) {
    (void)state;
    const char *names[] = {"lenet", "alexnet"};
    for (int i = 0; i < 2; i++) {
        char path[512], got[8192];
        snprintf(path, sizeof path, "%s/%s.print.txt", CNNKIT_FIXTURES, names[i]);
        char *want = read_text(path);
        assert_non_null(want);
        cnn_model *m;
        assert_int_equal(cnn_zoo_build(names[i], &m), CNN_OK);
        cnn_model_repr(m, got, sizeof got);
        assert_string_equal(got, want);
        cnn_model_free(m);
    }
}

static void the_same_model_should_run_many_batch_sizes(void **state) {
    (void)state;
    cnn_model *m;
    assert_int_equal(cnn_zoo_build("lenet", &m), CNN_OK);
    assert_int_equal(cnn_model_init(m, CNN_INIT_DEFAULT, 7), CNN_OK);
    /* Every image of a batch of 37 must equal the same image alone: one image
     * takes the single-thread paths (Linear by dot products), 37 the shared
     * ones (Linear by rows per thread), uneven over 2 and 3 threads. */
    enum { B = 37 };
    cnn_tensor x3, x1, y3, y1;
    cnn_shape s3 = cnn_shape_make(4, (int64_t[]){B, 1, 28, 28});
    cnn_shape s1 = cnn_shape_make(4, (int64_t[]){1, 1, 28, 28});
    assert_int_equal(cnn_tensor_alloc(&x3, &s3), CNN_OK);
    assert_int_equal(cnn_tensor_alloc(&x1, &s1), CNN_OK);
    cnn_rng r;
    cnn_rng_seed(&r, 1, 0);
    for (size_t i = 0; i < cnn_tensor_numel(&x3); i++)
        x3.data[i] = cnn_rng_uniform(&r);
    assert_int_equal(cnn_model_forward(m, &x3, &y3), CNN_OK);
    double worst = 0.0;
    for (int b = 0; b < B; b++) {
        memcpy(x1.data, x3.data + b * 784, 784 * sizeof(float));
        assert_int_equal(cnn_model_forward(m, &x1, &y1), CNN_OK);
        for (int i = 0; i < 10; i++) {
            const double d = fabs((double)y1.data[i] - y3.data[b * 10 + i]);
            if (d > worst) worst = d;
        }
        cnn_tensor_free(&y1);
    }
    printf("  batch of %d against one image at a time: max abs diff %.1e\n", B, worst);
    assert_true(worst < 1e-6);
    cnn_tensor_free(&x3);
    cnn_tensor_free(&x1);
    cnn_tensor_free(&y3);
    cnn_model_free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_layer_fixture_should_match_pytorch),
        cmocka_unit_test(lenet_should_match_pytorch_with_pytorch_weights),
        cmocka_unit_test(zoo_models_should_print_as_pytorch_prints_them),
        cmocka_unit_test(the_same_model_should_run_many_batch_sizes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
