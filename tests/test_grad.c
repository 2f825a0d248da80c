/* test_grad.c - every backward pass against central finite differences, for
 * every layer and attribute combination, in training mode. The loss is
 * L = sum(r * y) with fixed random r, accumulated in double; inputs keep away
 * from ReLU's kink and max-pool ties, where the derivative is not defined. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cnnkit/cnnkit.h"

#define H   5e-3 /* finite-difference step */
#define TOL 2e-3 /* |numeric - analytic| <= TOL * max(1, |analytic|) */

typedef struct gcase {
    const char *name;
    cnn_layer layer;
    int64_t shape[4];
    int ndim;
} gcase;

static double loss_of(cnn_model *m, const cnn_tensor *x, const float *r, size_t n) {
    const float *y = cnn_model_forward_train(m, x, 11, 3);
    if (!y) fail_msg("%s", cnn_model_error(m));
    double l = 0.0;
    for (size_t i = 0; i < n; i++)
        l += (double)r[i] * y[i];
    return l;
}

/* Inputs on a grid with spacing s >= 5H, shuffled: any two differ by more than
 * 2H (no max-pool ties within a step) and none is within 2H of 0 (ReLU's kink). */
static void fill_input(float *x, size_t n, cnn_rng *rng) {
    const double s = fmax(4.0 / (double)n, 5 * H);
    for (size_t i = 0; i < n; i++) {
        double v = -2.0 + ((double)i + 0.5) * s;
        if (fabs(v) < 2 * H) v += s / 2;
        x[i] = (float)v;
    }
    for (size_t i = n - 1; i > 0; i--) {
        size_t j = cnn_rng_below(rng, (uint32_t)(i + 1));
        float t = x[i];
        x[i] = x[j];
        x[j] = t;
    }
}

static int check_one(const char *what, double numeric, double analytic, double *worst) {
    double err = fabs(numeric - analytic) / fmax(1.0, fabs(analytic));
    if (err > *worst) *worst = err;
    if (err <= TOL) return 0;
    printf("    %s: numeric %.6g, analytic %.6g\n", what, numeric, analytic);
    return 1;
}

/* Checks dL/dx (every element, or a sample of 256) and dL/dparam (a sample of 32 each). */
static int check_model(cnn_model *m, const cnn_shape *in, const char *name) {
    cnn_rng rng;
    cnn_rng_seed(&rng, 7, 0);
    cnn_tensor x;
    assert_int_equal(cnn_tensor_alloc(&x, in), CNN_OK);
    size_t nx = cnn_tensor_numel(&x);
    fill_input(x.data, nx, &rng);
    if (cnn_model_infer(m, in) != CNN_OK) fail_msg("%s: %s", name, cnn_model_error(m));
    cnn_shape out = cnn_model_output_shape(m);
    size_t ny;
    cnn_shape_numel(&out, &ny);
    float *r = malloc(ny * sizeof *r), *dx = malloc(nx * sizeof *dx);
    for (size_t i = 0; i < ny; i++)
        r[i] = cnn_rng_range(&rng, -1.0f, 1.0f);

    cnn_model_zero_grad(m);
    if (!cnn_model_forward_train(m, &x, 11, 3)) fail_msg("%s", cnn_model_error(m));
    assert_int_equal(cnn_model_backward(m, x.data, r, dx), CNN_OK);
    /* Parameter gradients are read before the finite differences run the forward again. */
    size_t ngrad;
    float *grad = cnn_model_grad_buffer(m, &ngrad);
    float *g = malloc((ngrad ? ngrad : 1) * sizeof *g);
    memcpy(g, grad, ngrad * sizeof *g);

    int bad = 0, nonzero = 0;
    double worst = 0.0;
    for (size_t i = 0; i < nx; i++)
        nonzero += dx[i] != 0.0f;
    /* A case whose gradient vanishes checks nothing. */
    if (nonzero == 0) {
        printf("    dx is zero everywhere\n");
        bad++;
    }
    size_t stride = nx > 256 ? nx / 256 : 1;
    for (size_t i = 0; i < nx; i += stride) {
        float keep = x.data[i];
        x.data[i] = keep + (float)H;
        double lp = loss_of(m, &x, r, ny);
        x.data[i] = keep - (float)H;
        double lm = loss_of(m, &x, r, ny);
        x.data[i] = keep;
        char what[64];
        snprintf(what, sizeof what, "dx[%zu]", i);
        bad += check_one(what, (lp - lm) / (2 * H), dx[i], &worst);
    }
    float *params = cnn_model_param_buffer(m, NULL);
    for (int k = 0; k < cnn_model_num_params(m); k++) {
        cnn_param_info p = cnn_model_param(m, k);
        if (!p.trainable) continue;
        size_t step = p.numel > 32 ? p.numel / 32 : 1;
        for (size_t i = 0; i < p.numel; i += step) {
            float keep = p.data[i];
            p.data[i] = keep + (float)H;
            double lp = loss_of(m, &x, r, ny);
            p.data[i] = keep - (float)H;
            double lm = loss_of(m, &x, r, ny);
            p.data[i] = keep;
            char what[300];
            snprintf(what, sizeof what, "%s[%zu]", p.name, i);
            bad += check_one(what, (lp - lm) / (2 * H), g[(size_t)(p.data - params) + i], &worst);
        }
    }
    printf("  %-34s worst relative error %.2e, %d of %zu dx nonzero%s\n", name, worst, nonzero, nx,
           bad ? "  FAILED" : "");
    free(g);
    free(r);
    free(dx);
    cnn_tensor_free(&x);
    return bad;
}

static cnn_layer conv(int64_t in, int64_t out, int64_t kh, int64_t kw, int64_t sh, int64_t sw,
                      int64_t ph, int64_t pw, int64_t dh, int64_t dw, int64_t groups, bool bias) {
    cnn_layer L = cnn_conv2d(in, out, kh);
    L.kernel[1] = kw;
    L.stride[0] = sh;
    L.stride[1] = sw;
    L.padding[0] = ph;
    L.padding[1] = pw;
    L.dilation[0] = dh;
    L.dilation[1] = dw;
    L.groups = groups;
    L.bias = bias;
    return L;
}

static cnn_layer pool(cnn_layer L, int64_t kh, int64_t kw, int64_t s, int64_t p, int64_t d,
                      bool ceil_mode, bool include_pad) {
    L.kernel[0] = kh;
    L.kernel[1] = kw;
    L.stride[0] = L.stride[1] = s;
    L.padding[0] = L.padding[1] = p;
    L.dilation[0] = L.dilation[1] = d;
    L.ceil_mode = ceil_mode;
    L.count_include_pad = include_pad;
    return L;
}

static cnn_layer with(cnn_layer L, double a, double b, double k) {
    L.alpha = a;
    L.beta = b;
    L.k = k;
    return L;
}

static void every_layer_backward_should_match_finite_differences(void **state) {
    (void)state;
    cnn_layer bn_noaffine = cnn_batchnorm2d(3), bn_batch = cnn_batchnorm2d(3),
              bn_cumulative = cnn_batchnorm2d(3);
    bn_noaffine.affine = false;
    bn_batch.track_running_stats = false;
    bn_cumulative.momentum_none = true;
    cnn_layer lin_nobias = cnn_linear(6, 4), flat_mid = cnn_flatten(),
              ad = cnn_adaptiveavgpool2d(3);
    lin_nobias.bias = false;
    flat_mid.end_dim = 2;
    ad.output_size[1] = 2;
    const gcase cases[] = {
        {"Conv2d 3x3", cnn_conv2d(2, 3, 3), {2, 2, 6, 5}, 4},
        {"Conv2d stride pad dilation groups",
         conv(4, 6, 3, 2, 2, 1, 1, 2, 2, 1, 2, true),
         {2, 4, 9, 7},
         4},
        {"Conv2d 1x1 no bias", conv(3, 2, 1, 1, 1, 1, 0, 0, 1, 1, 1, false), {2, 3, 4, 4}, 4},
        {"Conv2d depthwise", conv(3, 3, 3, 3, 1, 1, 1, 1, 1, 1, 3, true), {1, 3, 5, 5}, 4},
        {"Linear", cnn_linear(6, 4), {3, 6}, 2},
        {"Linear 3-D no bias", lin_nobias, {2, 3, 6}, 3},
        {"MaxPool2d 2x2", cnn_maxpool2d(2), {2, 2, 6, 6}, 4},
        {"MaxPool2d ceil pad dilation",
         pool(cnn_maxpool2d(3), 3, 2, 2, 1, 2, true, true),
         {1, 2, 9, 8},
         4},
        {"AvgPool2d pad include",
         pool(cnn_avgpool2d(3), 3, 3, 2, 1, 1, false, true),
         {2, 2, 7, 7},
         4},
        {"AvgPool2d ceil exclude pad",
         pool(cnn_avgpool2d(3), 3, 2, 2, 1, 1, true, false),
         {1, 2, 8, 7},
         4},
        {"AdaptiveAvgPool2d 3x2", ad, {2, 2, 7, 5}, 4},
        {"ReLU", cnn_relu(), {2, 3, 4, 4}, 4},
        {"Sigmoid", cnn_sigmoid(), {2, 3, 4, 4}, 4},
        {"Tanh", cnn_tanh(), {2, 3, 4, 4}, 4},
        {"Flatten(1, 2)", flat_mid, {2, 3, 4, 2}, 4},
        {"Dropout(0.4)", cnn_dropout(0.4), {4, 10}, 2},
        {"BatchNorm2d", cnn_batchnorm2d(3), {3, 3, 4, 4}, 4},
        {"BatchNorm2d affine=False", bn_noaffine, {2, 3, 3, 3}, 4},
        {"BatchNorm2d batch stats", bn_batch, {2, 3, 3, 3}, 4},
        {"BatchNorm2d momentum=None", bn_cumulative, {2, 3, 3, 3}, 4},
        {"LocalResponseNorm(3)", with(cnn_lrn(3), 0.1, 0.75, 1.0), {2, 5, 3, 3}, 4},
        {"LocalResponseNorm(4) k=2", with(cnn_lrn(4), 0.3, 0.6, 2.0), {1, 6, 2, 3}, 4},
        {"Softmax(dim=1)", cnn_softmax(1), {2, 4, 3, 2}, 4},
        {"Softmax(dim=-1)", cnn_softmax(-1), {3, 5}, 2},
    };
    int bad = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cnn_model *m = cnn_model_new("Sequential");
        if (cnn_model_add_layer(m, 0, "0", &cases[i].layer) < 0)
            fail_msg("%s: %s", cases[i].name, cnn_model_error(m));
        assert_int_equal(cnn_model_init(m, CNN_INIT_DEFAULT, (uint64_t)i), CNN_OK);
        cnn_shape in = cnn_shape_make(cases[i].ndim, cases[i].shape);
        bad += check_model(m, &in, cases[i].name) != 0;
        cnn_model_free(m);
    }
    assert_int_equal(bad, 0);
}

static void zoo_models_backward_should_match_finite_differences(void **state) {
    (void)state;
    cnn_model *m;
    assert_int_equal(cnn_zoo_build("lenet", &m), CNN_OK);
    assert_int_equal(cnn_model_init(m, CNN_INIT_XAVIER, 1), CNN_OK);
    cnn_shape in = cnn_shape_make(4, (int64_t[]){2, 1, 28, 28});
    assert_int_equal(check_model(m, &in, "LeNet"), 0);
    cnn_model_free(m);
}

static void cross_entropy_gradient_should_match_finite_differences(void **state) {
    (void)state;
    float z[12], d[12];
    const int32_t labels[] = {2, 0, 3};
    cnn_rng rng;
    cnn_rng_seed(&rng, 3, 0);
    for (int i = 0; i < 12; i++)
        z[i] = cnn_rng_range(&rng, -3.0f, 3.0f);
    double loss, lp, lm;
    assert_int_equal(cnn_cross_entropy(z, labels, 3, 4, d, &loss, NULL), CNN_OK);
    double worst = 0.0;
    for (int i = 0; i < 12; i++) {
        float keep = z[i];
        z[i] = keep + (float)H;
        cnn_cross_entropy(z, labels, 3, 4, NULL, &lp, NULL);
        z[i] = keep - (float)H;
        cnn_cross_entropy(z, labels, 3, 4, NULL, &lm, NULL);
        z[i] = keep;
        assert_int_equal(check_one("dlogits", (lp - lm) / (2 * H), d[i], &worst), 0);
    }
    printf("  %-34s worst relative error %.2e\n", "CrossEntropy", worst);
}

static void backward_should_require_a_training_forward(void **state) {
    (void)state;
    cnn_model *m;
    assert_int_equal(cnn_zoo_build("lenet", &m), CNN_OK);
    cnn_shape in = cnn_shape_make(4, (int64_t[]){1, 1, 28, 28});
    cnn_tensor x, y;
    assert_int_equal(cnn_tensor_alloc(&x, &in), CNN_OK);
    assert_int_equal(cnn_model_forward(m, &x, &y), CNN_OK);
    float dy[10] = {0};
    assert_int_equal(cnn_model_backward(m, x.data, dy, NULL), CNN_STATUS_INVALID_ARGUMENT);
    cnn_tensor_free(&x);
    cnn_tensor_free(&y);
    cnn_model_free(m);

    /* BatchNorm cannot train on one value per channel, as in PyTorch. */
    m = cnn_model_new("Sequential");
    cnn_layer bn = cnn_batchnorm2d(2);
    cnn_model_add_layer(m, 0, "0", &bn);
    in = cnn_shape_make(4, (int64_t[]){1, 2, 1, 1});
    assert_int_equal(cnn_tensor_alloc(&x, &in), CNN_OK);
    assert_null(cnn_model_forward_train(m, &x, 0, 0));
    assert_non_null(strstr(cnn_model_error(m), "more than 1 value per channel when training"));
    cnn_tensor_free(&x);
    cnn_model_free(m);
}

/* An activation and the AvgPool2d(2) after it run their backward passes as
 * one (cnn_vavgpool2_act_backward), and a ReLU and the MaxPool2d after it: from the model's input
 * (adding to dx) and after a Conv2d (setting its output's gradient), with odd sizes that leave a
 * row or a column outside every window. (Not ReLU after a Conv2d: its outputs come near the kink,
 * where finite differences mean nothing.) */
static void activation_then_pool_backward_should_match_finite_differences(void **state) {
    (void)state;
    const cnn_layer acts[] = {cnn_relu(), cnn_sigmoid(), cnn_tanh()};
    const char *names[] = {"ReLU", "Sigmoid", "Tanh"};
    int bad = 0;
    for (int a = 0; a < 3; a++)
        for (int conv = 0; conv < (a == 0 ? 1 : 2); conv++) {
            cnn_model *m = cnn_model_new("Sequential");
            cnn_layer c = cnn_conv2d(2, 3, 3), pool = cnn_avgpool2d(2);
            c.padding[0] = c.padding[1] = 1;
            int k = 0;
            char key[8], name[64];
            if (conv) assert_true(cnn_model_add_layer(m, 0, "0", &c) >= 0), k++;
            snprintf(key, sizeof key, "%d", k++);
            assert_true(cnn_model_add_layer(m, 0, key, &acts[a]) >= 0);
            snprintf(key, sizeof key, "%d", k++);
            assert_true(cnn_model_add_layer(m, 0, key, &pool) >= 0);
            assert_int_equal(cnn_model_init(m, CNN_INIT_DEFAULT, (uint64_t)(a + 1)), CNN_OK);
            /* 7 rows: plane by plane; 8: the planes as one tall plane; 10 and
             * 28 wide (LeNet's widths): windows that tile the plane, 10 in one
             * vector a row (2 rows of 28: the weights' finite differences lose
             * precision over more). */
            const int64_t hw[][2] = {{7, 9}, {8, 9}, {8, 10}, {2, 28}};
            for (int s = 0; s < 4; s++) {
                cnn_shape in = cnn_shape_make(4, (int64_t[]){2, 2, hw[s][0], hw[s][1]});
                snprintf(name, sizeof name, "%s%s, AvgPool2d(2), %lldx%lld", conv ? "Conv2d, " : "",
                         names[a], (long long)hw[s][0], (long long)hw[s][1]);
                bad += check_model(m, &in, name) != 0;
            }
            cnn_model_free(m);
        }
    /* A ReLU and the MaxPool2d after it likewise, over overlapping windows (2,
     * stride 1): from the model's input, adding to dx; and after a 1x1
     * Conv2d of weight -1, setting its output's gradient, where most inputs
     * to the ReLU are negative and many windows lie wholly below zero (the
     * ReLU stops their gradient). One channel: changing the weight or bias
     * by the step scales or shifts every value alike, so no value crosses
     * the kink and no window changes its maximum. */
    for (int conv = 0; conv < 2; conv++) {
        cnn_model *m = cnn_model_new("Sequential");
        cnn_layer c = cnn_conv2d(1, 1, 1), relu = cnn_relu(), pool = cnn_maxpool2d(2);
        pool.stride[0] = pool.stride[1] = 1;
        int k = 0;
        char key[8];
        if (conv) assert_true(cnn_model_add_layer(m, 0, "0", &c) >= 0), k++;
        snprintf(key, sizeof key, "%d", k++);
        assert_true(cnn_model_add_layer(m, 0, key, &relu) >= 0);
        snprintf(key, sizeof key, "%d", k++);
        assert_true(cnn_model_add_layer(m, 0, key, &pool) >= 0);
        assert_int_equal(cnn_model_init(m, CNN_INIT_DEFAULT, 5), CNN_OK);
        if (conv) {
            cnn_model_param(m, 0).data[0] = -1.0f;
            cnn_model_param(m, 1).data[0] = 0.0f;
        }
        cnn_shape in = cnn_shape_make(4, (int64_t[]){2, 1, 9, 8});
        bad += check_model(m, &in,
                           conv ? "Conv2d(w=-1), ReLU, MaxPool2d(2, 1)"
                                : "ReLU, MaxPool2d(2, 1)") != 0;
        cnn_model_free(m);
    }
    assert_int_equal(bad, 0);
}

/* Dropout's mask is drawn on every thread, each share jumping ahead in the
 * one stream: the same mask on 1, 2 and 3 threads, over more elements than
 * one share (16384) holds. */
static void dropout_mask_should_not_depend_on_the_thread_count(void **state) {
    (void)state;
    enum { N = 3 * 7000 };
    cnn_shape in = cnn_shape_make(2, (int64_t[]){3, 7000});
    cnn_tensor x;
    assert_int_equal(cnn_tensor_alloc(&x, &in), CNN_OK);
    for (size_t i = 0; i < N; i++)
        x.data[i] = 1.0f;
    float *first = malloc(N * sizeof(float));
    assert_non_null(first);
    for (int t = 1; t <= 3; t++) {
        cnn_set_threads(t);
        cnn_model *m = cnn_model_new("Sequential");
        cnn_layer drop = cnn_dropout(0.3);
        assert_true(cnn_model_add_layer(m, 0, "0", &drop) >= 0);
        const float *y = cnn_model_forward_train(m, &x, 11, 3);
        if (!y) fail_msg("%s", cnn_model_error(m));
        if (t == 1) {
            size_t kept = 0;
            for (size_t i = 0; i < N; i++) {
                assert_true(y[i] == 0.0f || y[i] == 1.0f / 0.7f);
                kept += y[i] != 0.0f;
            }
            printf("  dropout(0.3) kept %zu of %d\n", kept, N);
            assert_true(kept > 0.68 * N && kept < 0.72 * N);
            memcpy(first, y, N * sizeof(float));
        } else {
            assert_memory_equal(first, y, N * sizeof(float));
        }
        cnn_model_free(m);
    }
    cnn_set_threads(0);
    free(first);
    cnn_tensor_free(&x);
}

/* The per-image convolutions share their images out as the threads get to
 * them, each block of images summed on its own: the gradients of LeNet at
 * batch 64 (blocks of 8) are the same to the bit on every run. */
static void lenet_gradients_should_repeat_bit_for_bit(void **state) {
    (void)state;
    cnn_model *m;
    assert_int_equal(cnn_zoo_build("lenet", &m), CNN_OK);
    assert_int_equal(cnn_model_init(m, CNN_INIT_DEFAULT, 5), CNN_OK);
    cnn_shape in = cnn_shape_make(4, (int64_t[]){64, 1, 28, 28});
    cnn_tensor x;
    assert_int_equal(cnn_tensor_alloc(&x, &in), CNN_OK);
    cnn_rng rng;
    cnn_rng_seed(&rng, 3, 0);
    for (size_t i = 0; i < cnn_tensor_numel(&x); i++)
        x.data[i] = cnn_rng_uniform(&rng);
    float dy[64 * 10], *first = NULL;
    for (int i = 0; i < 64 * 10; i++)
        dy[i] = cnn_rng_uniform(&rng) - 0.5f;
    size_t n;
    float *g = cnn_model_grad_buffer(m, &n);
    for (int run = 0; run < 6; run++) {
        cnn_model_zero_grad(m);
        if (!cnn_model_forward_train(m, &x, 1, 1)) fail_msg("%s", cnn_model_error(m));
        assert_int_equal(cnn_model_backward(m, x.data, dy, NULL), CNN_OK);
        if (!first) {
            first = malloc(n * sizeof *first);
            assert_non_null(first);
            memcpy(first, g, n * sizeof *first);
        } else {
            assert_memory_equal(first, g, n * sizeof *first);
        }
    }
    printf("  LeNet's %zu gradients the same on 6 runs\n", n);
    free(first);
    cnn_tensor_free(&x);
    cnn_model_free(m);
}

/* On several threads LeNet trains as a replica per thread (each passes its
 * share of the batch through the whole model; the gradients are added up at
 * the end): the outputs, parameter gradients and input gradients equal one
 * model's on one thread up to rounding, at 2 threads (even shares) and 3
 * (shares of 16, 16 and 17 images), and the memory figures count a gradient
 * buffer per replica. */
static void lenet_replicas_should_match_one_model(void **state) {
    (void)state;
    enum { B = 49, IN = B * 784, OUT = B * 10 };
    cnn_shape in = cnn_shape_make(4, (int64_t[]){B, 1, 28, 28});
    cnn_tensor x;
    assert_int_equal(cnn_tensor_alloc(&x, &in), CNN_OK);
    cnn_rng rng;
    cnn_rng_seed(&rng, 7, 0);
    for (size_t i = 0; i < IN; i++)
        x.data[i] = cnn_rng_uniform(&rng);
    float dy[OUT];
    for (int i = 0; i < OUT; i++)
        dy[i] = cnn_rng_uniform(&rng) - 0.5f;
    float *ref = NULL, *dx = malloc(2 * IN * sizeof *dx), y1[OUT];
    assert_non_null(dx);
    size_t n = 0;
    for (int t = 1; t <= 3; t++) {
        cnn_set_threads(t);
        cnn_model *m;
        assert_int_equal(cnn_zoo_build("lenet", &m), CNN_OK);
        assert_int_equal(cnn_model_init(m, CNN_INIT_DEFAULT, 5), CNN_OK);
        cnn_memory mem;
        assert_int_equal(cnn_model_memory(m, &in, true, &mem), CNN_OK);
        const float *g = cnn_model_grad_buffer(m, &n);
        assert_int_equal(mem.gradients, (t == 1 ? 1 : 1 + t) * n * sizeof(float));
        cnn_model_zero_grad(m);
        const float *y = cnn_model_forward_train(m, &x, 1, 1);
        if (!y) fail_msg("%s", cnn_model_error(m));
        float *dxt = dx + (t == 1 ? 0 : IN);
        assert_int_equal(cnn_model_backward(m, x.data, dy, dxt), CNN_OK);
        if (t == 1) {
            ref = malloc(n * sizeof *ref);
            assert_non_null(ref);
            memcpy(ref, g, n * sizeof *ref);
            memcpy(y1, y, sizeof y1);
        } else {
            double dy_max = 0, dg = 0, gmax = 0, ddx = 0, dxmax = 0;
            for (int i = 0; i < OUT; i++)
                dy_max = fmax(dy_max, fabs(y[i] - y1[i]));
            for (size_t i = 0; i < n; i++) {
                dg = fmax(dg, fabs(g[i] - ref[i]));
                gmax = fmax(gmax, fabs(ref[i]));
            }
            for (int i = 0; i < IN; i++) {
                ddx = fmax(ddx, fabs(dxt[i] - dx[i]));
                dxmax = fmax(dxmax, fabs(dx[i]));
            }
            printf("  LeNet on %d replicas against one model: outputs %.3g, gradients %.3g of "
                   "%.3g, input gradients %.3g of %.3g\n",
                   t, dy_max, dg, gmax, ddx, dxmax);
            assert_true(dy_max <= 1e-5);
            assert_true(dg <= 1e-5 * gmax);
            assert_true(ddx <= 1e-5 * dxmax);
        }
        cnn_model_free(m);
    }
    cnn_set_threads(0);
    free(ref);
    free(dx);
    cnn_tensor_free(&x);
}

/* Shapes that LeNet's layers do not have, on 16 images per vector lane:
 * padding on both convolutions, a 7x5 kernel, channel counts that do not
 * fill the register tiles, rows of 23 (several tiles, several input-gradient
 * windows), a pool that drops an odd row and column, and a Sigmoid whose
 * backward pass runs on its own (so each layer runs all the sixteens
 * before the next). 32 images on one thread take the lanes; 33 do not, and
 * the 33rd image, its output gradient zero, changes no gradient: outputs,
 * parameter and input gradients agree up to rounding. */
static void lanes_should_match_the_per_image_path(void **state) {
    (void)state;
    enum { C = 3, HH = 13, WW = 23, OUT = 10, IN = C * HH * WW };
    cnn_layer c1 = cnn_conv2d(C, 5, 3), c2 = cnn_conv2d(5, 7, 7);
    c1.padding[0] = c1.padding[1] = 1;
    c2.kernel[1] = 5;
    c2.padding[0] = 3;
    c2.padding[1] = 2;
    const cnn_layer layers[] = {c1,
                                cnn_sigmoid(),
                                c2,
                                cnn_tanh(),
                                cnn_avgpool2d(2),
                                cnn_flatten(),
                                cnn_linear(7 * 6 * 11, OUT)};
    cnn_set_threads(1);
    float *y[2], *g[2], *dx[2];
    size_t n = 0;
    cnn_rng rng;
    cnn_rng_seed(&rng, 11, 0);
    float *x33 = malloc(33 * IN * sizeof *x33), dy[33 * OUT];
    assert_non_null(x33);
    for (int i = 0; i < 33 * IN; i++)
        x33[i] = cnn_rng_uniform(&rng) * 2.0f - 1.0f;
    for (int i = 0; i < 33 * OUT; i++)
        dy[i] = i < 32 * OUT ? cnn_rng_uniform(&rng) - 0.5f : 0.0f;
    for (int k = 0; k < 2; k++) {
        const int B = 32 + k;
        cnn_model *m = cnn_model_new("Net");
        const int seq = cnn_model_add_container(m, 0, "net", "Sequential");
        for (int i = 0; i < 7; i++) {
            char name[8];
            snprintf(name, sizeof name, "%d", i);
            assert_true(cnn_model_add_layer(m, seq, name, &layers[i]) >= 0);
        }
        assert_int_equal(cnn_model_finalize(m), CNN_OK);
        assert_int_equal(cnn_model_init(m, CNN_INIT_DEFAULT, 3), CNN_OK);
        cnn_tensor x = {.shape = cnn_shape_make(4, (int64_t[]){B, C, HH, WW}), .data = x33};
        cnn_model_zero_grad(m);
        const float *out = cnn_model_forward_train(m, &x, 1, 1);
        if (!out) fail_msg("%s", cnn_model_error(m));
        const char *alg = cnn_model_node_algorithm(m, 2);
        const bool lanes = k == 0 && cnn_simd_level() == CNN_SIMD_AVX512;
        assert_true((strcmp(alg, "16 images a vector") == 0) == lanes);
        y[k] = malloc(32 * OUT * sizeof(float));
        dx[k] = malloc((size_t)B * IN * sizeof(float));
        assert_non_null(y[k]);
        assert_non_null(dx[k]);
        memcpy(y[k], out, 32 * OUT * sizeof(float));
        assert_int_equal(cnn_model_backward(m, x33, dy, dx[k]), CNN_OK);
        const float *gb = cnn_model_grad_buffer(m, &n);
        g[k] = malloc(n * sizeof(float));
        assert_non_null(g[k]);
        memcpy(g[k], gb, n * sizeof(float));
        cnn_model_free(m);
    }
    cnn_set_threads(0);
    double dyv = 0, dg = 0, gmax = 0, ddx = 0, dxmax = 0;
    for (int i = 0; i < 32 * OUT; i++)
        dyv = fmax(dyv, fabs(y[0][i] - y[1][i]));
    for (size_t i = 0; i < n; i++) {
        dg = fmax(dg, fabs(g[0][i] - g[1][i]));
        gmax = fmax(gmax, fabs(g[1][i]));
    }
    for (int i = 0; i < 32 * IN; i++) {
        ddx = fmax(ddx, fabs(dx[0][i] - dx[1][i]));
        dxmax = fmax(dxmax, fabs(dx[1][i]));
    }
    printf("  lanes against per image: outputs %.3g, gradients %.3g of %.3g, input gradients "
           "%.3g of %.3g\n",
           dyv, dg, gmax, ddx, dxmax);
    assert_true(dyv <= 1e-5);
    assert_true(dg <= 1e-5 * gmax);
    assert_true(ddx <= 1e-5 * dxmax);
    for (int k = 0; k < 2; k++) {
        free(y[k]);
        free(g[k]);
        free(dx[k]);
    }
    free(x33);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_layer_backward_should_match_finite_differences),
        cmocka_unit_test(zoo_models_backward_should_match_finite_differences),
        cmocka_unit_test(cross_entropy_gradient_should_match_finite_differences),
        cmocka_unit_test(backward_should_require_a_training_forward),
        cmocka_unit_test(activation_then_pool_backward_should_match_finite_differences),
        cmocka_unit_test(dropout_mask_should_not_depend_on_the_thread_count),
        cmocka_unit_test(lenet_gradients_should_repeat_bit_for_bit),
        cmocka_unit_test(lenet_replicas_should_match_one_model),
        cmocka_unit_test(lanes_should_match_the_per_image_path),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
