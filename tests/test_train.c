/* test_train.c - training parity with PyTorch: after one forward/backward in
 * training mode, every parameter's gradient, the input's gradient, the loss
 * and BatchNorm's running statistics equal PyTorch's (tests/ref/
 * make_grad_fixtures.py); after three optimizer steps (SGD with momentum,
 * nesterov, Adam, AdamW) the weights do too. Max differences are printed. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cnnkit/cnnkit.h"

static cnn_st_file *read_fixture(const char *name) {
    char path[512], err[512];
    snprintf(path, sizeof path, "%s/%s", CNNKIT_FIXTURES, name);
    cnn_st_file *st;
    if (cnn_st_read(path, &st, err, sizeof err) != CNN_OK) fail_msg("%s", err);
    return st;
}

static void load_weights(cnn_model *m, const char *name) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", CNNKIT_FIXTURES, name);
    if (cnn_model_load(m, path) != CNN_OK) fail_msg("%s", cnn_model_error(m));
}

static double max_diff(const float *a, const float *b, size_t n) {
    double d = 0.0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)a[i] - (double)b[i]);
        if (!(e <= d)) d = e;
    }
    return d;
}

/* Compares a cnnkit buffer with a fixture tensor; returns the max abs diff. */
static double compare(const char *what, const float *got, const cnn_st_file *st, const char *key,
                      size_t numel, double tol) {
    const cnn_st_entry *e = cnn_st_find(st, key);
    if (!e) fail_msg("fixture has no tensor '%s'", key);
    assert_int_equal(e->numel, numel);
    double d = max_diff(got, e->f32, numel);
    size_t over = 0;
    for (size_t i = 0; i < numel; i++)
        over += fabs((double)got[i] - (double)e->f32[i]) > 1e-6;
    printf("  %-40s max abs diff %.3g (%zu of %zu over 1e-6)\n", what, d, over, numel);
    if (!(d <= tol)) fail_msg("%s: max abs diff %g > %g", what, d, tol);
    return d;
}

static int32_t *labels_of(const cnn_st_file *st, const char *key, int64_t *n) {
    const cnn_st_entry *e = cnn_st_find(st, key);
    assert_non_null(e);
    assert_non_null(e->i64);
    int32_t *l = malloc(e->numel * sizeof *l);
    for (size_t i = 0; i < e->numel; i++)
        l[i] = (int32_t)e->i64[i];
    *n = (int64_t)e->numel;
    return l;
}

static cnn_tensor tensor_of(const cnn_st_file *st, const char *key) {
    const cnn_st_entry *e = cnn_st_find(st, key);
    assert_non_null(e);
    cnn_tensor t;
    assert_int_equal(cnn_tensor_alloc(&t, &e->shape), CNN_OK);
    memcpy(t.data, e->f32, e->numel * sizeof(float));
    return t;
}

/* One training step's gradients; returns the loss. */
static double forward_backward(cnn_model *m, const cnn_tensor *x, const int32_t *labels, int64_t N,
                               float *dx) {
    cnn_model_zero_grad(m);
    const float *y = cnn_model_forward_train(m, x, 0, 0);
    if (!y) fail_msg("%s", cnn_model_error(m));
    cnn_shape out = cnn_model_output_shape(m);
    int64_t C = out.dim[1];
    float *dy = malloc((size_t)(N * C) * sizeof *dy);
    double loss;
    assert_int_equal(cnn_cross_entropy(y, labels, N, C, dy, &loss, NULL), CNN_OK);
    assert_int_equal(cnn_model_backward(m, x->data, dy, dx), CNN_OK);
    free(dy);
    return loss;
}

static cnn_model *allnet(void) {
    cnn_model *m = cnn_model_new("AllNet");
    int f = cnn_model_add_container(m, 0, "features", "Sequential");
    cnn_layer c0 = cnn_conv2d(3, 8, 3);
    c0.padding[0] = c0.padding[1] = 1;
    cnn_layer lrn = cnn_lrn(3);
    lrn.alpha = 0.01;
    lrn.k = 2.0;
    cnn_layer mp = cnn_maxpool2d(2);
    mp.ceil_mode = true;
    cnn_layer c5 = cnn_conv2d(8, 8, 3);
    c5.kernel[1] = 2;
    c5.stride[1] = 2;
    c5.padding[0] = c5.padding[1] = 1;
    c5.dilation[0] = 2;
    c5.groups = 2;
    cnn_layer ap = cnn_avgpool2d(2);
    ap.stride[0] = ap.stride[1] = 1;
    ap.padding[0] = ap.padding[1] = 1;
    ap.count_include_pad = false;
    cnn_layer ad = cnn_adaptiveavgpool2d(2);
    ad.output_size[1] = 3;
    ad.output_size_tuple = true;
    const cnn_layer features[] = {c0, cnn_batchnorm2d(8), cnn_relu(), lrn, mp,
                                  c5, cnn_tanh(),         ap,         ad,  cnn_sigmoid()};
    for (int i = 0; i < 10; i++) {
        char name[8];
        snprintf(name, sizeof name, "%d", i);
        assert_true(cnn_model_add_layer(m, f, name, &features[i]) >= 0);
    }
    int c = cnn_model_add_container(m, 0, "classifier", "Sequential");
    const cnn_layer classifier[] = {cnn_flatten(), cnn_dropout(0.0),   cnn_linear(48, 16),
                                    cnn_relu(),    cnn_linear(16, 10), cnn_softmax(1)};
    for (int i = 0; i < 6; i++) {
        char name[8];
        snprintf(name, sizeof name, "%d", i);
        assert_true(cnn_model_add_layer(m, c, name, &classifier[i]) >= 0);
    }
    assert_int_equal(cnn_model_finalize(m), CNN_OK);
    return m;
}

static void check_gradients(cnn_model *m, const char *name) {
    char file[128];
    snprintf(file, sizeof file, "%s_grad.weights.safetensors", name);
    load_weights(m, file);
    cnn_st_file *w = read_fixture(file);
    char repr[4096];
    cnn_model_repr(m, repr, sizeof repr);
    repr[strlen(repr) - 1] = 0;
    assert_string_equal(repr, cnn_st_metadata(w, "repr"));
    cnn_st_free(w);

    snprintf(file, sizeof file, "%s_grad.step.safetensors", name);
    cnn_st_file *st = read_fixture(file);
    cnn_tensor x = tensor_of(st, "input");
    int64_t N;
    int32_t *labels = labels_of(st, "labels", &N);
    float *dx = malloc(cnn_tensor_numel(&x) * sizeof *dx);
    double loss = forward_backward(m, &x, labels, N, dx);
    const float want_loss = cnn_st_find(st, "loss")->f32[0];
    printf("  %-40s %.7f vs PyTorch %.7f\n", "loss", loss, want_loss);
    assert_true(fabs(loss - want_loss) < 1e-5);
    compare("dL/dinput", dx, st, "dinput", cnn_tensor_numel(&x), 1e-5);
    for (int i = 0; i < cnn_model_num_params(m); i++) {
        cnn_param_info p = cnn_model_param(m, i);
        char key[256];
        if (p.trainable) {
            snprintf(key, sizeof key, "grad.%s", p.name);
            compare(key, p.grad, st, key, p.numel, 1e-5);
        } else if (p.data) {
            snprintf(key, sizeof key, "after.%s", p.name);
            compare(key, p.data, st, key, p.numel, 1e-5);
        } else {
            snprintf(key, sizeof key, "after.%s", p.name);
            assert_int_equal(*p.i64, cnn_st_find(st, key)->i64[0]);
        }
    }
    free(dx);
    free(labels);
    cnn_tensor_free(&x);
    cnn_st_free(st);
}

static void lenet_gradients_should_equal_pytorchs(void **state) {
    (void)state;
    cnn_model *m;
    assert_int_equal(cnn_zoo_build("lenet", &m), CNN_OK);
    check_gradients(m, "lenet");
    cnn_model_free(m);
}

/* Training on one thread with a batch of whole sixteens, LeNet's layers up
 * to its second pool run on 16 images per vector lane (lanes.c), a sixteen
 * at a time through all of them: PyTorch's 8 images, repeated, give the
 * same loss and gradients (each copy's input gradient is PyTorch's divided
 * by the copies). 32 images on one thread, and 64 on two threads (two
 * replicas of 32), two sixteens each. */
static void lenet_gradients_in_lanes_should_equal_pytorchs(void **state) {
    (void)state;
    cnn_st_file *st = read_fixture("lenet_grad.step.safetensors");
    cnn_tensor x8 = tensor_of(st, "input");
    int64_t N8;
    int32_t *labels8 = labels_of(st, "labels", &N8);
    const cnn_st_entry *dref = cnn_st_find(st, "dinput");
    assert_non_null(dref);
    const size_t per = cnn_tensor_numel(&x8);
    for (int threads = 1; threads <= 2; threads++) {
        const int copies = 4 * threads;
        cnn_set_threads(threads);
        cnn_model *m;
        assert_int_equal(cnn_zoo_build("lenet", &m), CNN_OK);
        load_weights(m, "lenet_grad.weights.safetensors");
        cnn_shape shape = x8.shape;
        shape.dim[0] = N8 * copies;
        cnn_tensor x;
        assert_int_equal(cnn_tensor_alloc(&x, &shape), CNN_OK);
        int32_t *labels = malloc((size_t)(N8 * copies) * sizeof *labels);
        float *dx = malloc(per * copies * sizeof *dx);
        assert_non_null(labels);
        assert_non_null(dx);
        for (int k = 0; k < copies; k++) {
            memcpy(x.data + k * per, x8.data, per * sizeof(float));
            memcpy(labels + k * N8, labels8, (size_t)N8 * sizeof *labels);
        }
        const double loss = forward_backward(m, &x, labels, N8 * copies, dx);
        if (cnn_simd_level() == CNN_SIMD_AVX512) { /* the lanes' kernels are AVX-512's */
            assert_string_equal(cnn_model_node_algorithm(m, 0), "16 images a vector");
            assert_string_equal(cnn_model_node_algorithm(m, 3), "16 images a vector");
        }
        printf("  %d images on %d thread(s): loss %.7f vs PyTorch %.7f\n", (int)(N8 * copies),
               threads, loss, cnn_st_find(st, "loss")->f32[0]);
        assert_true(fabs(loss - cnn_st_find(st, "loss")->f32[0]) < 1e-5);
        for (size_t i = 0; i < per * copies; i++)
            dx[i] *= (float)copies;
        for (int k = 0; k < copies; k++)
            compare("dL/dinput, one copy, times the copies", dx + k * per, st, "dinput", per, 1e-5);
        for (int i = 0; i < cnn_model_num_params(m); i++) {
            cnn_param_info p = cnn_model_param(m, i);
            char key[256];
            snprintf(key, sizeof key, "grad.%s", p.name);
            compare(key, p.grad, st, key, p.numel, 1e-5);
        }
        free(dx);
        free(labels);
        cnn_tensor_free(&x);
        cnn_model_free(m);
    }
    cnn_set_threads(0);
    free(labels8);
    cnn_tensor_free(&x8);
    cnn_st_free(st);
}

static void every_layer_type_gradients_should_equal_pytorchs(void **state) {
    (void)state;
    cnn_model *m = allnet();
    check_gradients(m, "allnet");
    cnn_model_free(m);
}

static void optimizer_steps_should_equal_pytorchs(void **state) {
    (void)state;
    const char *names[] = {"sgd_momentum", "sgd_nesterov", "adam", "adamw"};
    for (int k = 0; k < 4; k++) {
        cnn_model *m;
        assert_int_equal(cnn_zoo_build("lenet", &m), CNN_OK);
        load_weights(m, "lenet_grad.weights.safetensors");
        char file[128];
        snprintf(file, sizeof file, "lenet_%s.steps.safetensors", names[k]);
        cnn_st_file *st = read_fixture(file);
        const char *kind = cnn_st_metadata(st, "optim");
        cnn_optim_config cfg = cnn_optim_defaults(!strcmp(kind, "sgd")    ? CNN_OPTIM_SGD
                                                  : !strcmp(kind, "adam") ? CNN_OPTIM_ADAM
                                                                          : CNN_OPTIM_ADAMW);
        cfg.lr = atof(cnn_st_metadata(st, "lr"));
        cfg.weight_decay = atof(cnn_st_metadata(st, "weight_decay"));
        if (cfg.kind == CNN_OPTIM_SGD) {
            cfg.momentum = atof(cnn_st_metadata(st, "momentum"));
            cfg.dampening = atof(cnn_st_metadata(st, "dampening"));
            cfg.nesterov = atoi(cnn_st_metadata(st, "nesterov"));
        }
        cnn_optim *opt;
        char err[256];
        assert_int_equal(cnn_optim_new(m, &cfg, &opt, err, sizeof err), CNN_OK);
        for (int s = 0; s < 3; s++) {
            char key[32];
            snprintf(key, sizeof key, "input.%d", s);
            cnn_tensor x = tensor_of(st, key);
            snprintf(key, sizeof key, "labels.%d", s);
            int64_t N;
            int32_t *labels = labels_of(st, key, &N);
            forward_backward(m, &x, labels, N, NULL);
            cnn_optim_step(opt, cfg.lr);
            free(labels);
            cnn_tensor_free(&x);
        }
        for (int i = 0; i < cnn_model_num_params(m); i++) {
            cnn_param_info p = cnn_model_param(m, i);
            char key[256], what[256];
            snprintf(key, sizeof key, "after.%s", p.name);
            snprintf(what, sizeof what, "%s %s", names[k], p.name);
            /* Adam's step is lr * m / sqrt(v), about lr * sign(g) at first: where the
             * gradient plus weight decay nearly cancels, float rounding of g moves that
             * step by a visible fraction of lr (SGD, with the same gradients, agrees to
             * 1e-8). Hold Adam to 1% of one step, SGD to 1e-5. */
            compare(what, p.data, st, key, p.numel,
                    cfg.kind == CNN_OPTIM_SGD ? 1e-5 : 1e-2 * cfg.lr);
        }
        cnn_optim_free(opt);
        cnn_st_free(st);
        cnn_model_free(m);
    }
}

static void cross_entropy_should_be_stable_and_mean_over_the_batch(void **state) {
    (void)state;
    /* Huge logits: a naive exp overflows. */
    const float logits[] = {1000.0f, 0.0f, -1000.0f, 0.0f, 0.0f, 0.0f};
    const int32_t labels[] = {0, 2};
    float d[6];
    double loss;
    int64_t correct;
    assert_int_equal(cnn_cross_entropy(logits, labels, 2, 3, d, &loss, &correct), CNN_OK);
    assert_true(fabs(loss - log(3.0) / 2) < 1e-9);
    assert_int_equal(correct, 1);
    assert_true(fabs(d[0]) < 1e-9 && fabs(d[5] - (1.0 / 3 - 1) / 2) < 1e-7);
    const int32_t bad[] = {0, 3};
    assert_int_equal(cnn_cross_entropy(logits, bad, 2, 3, d, &loss, &correct),
                     CNN_STATUS_INVALID_ARGUMENT);
}

static void optimizer_config_should_be_checked_as_pytorch_does(void **state) {
    (void)state;
    cnn_model *m;
    assert_int_equal(cnn_zoo_build("lenet", &m), CNN_OK);
    cnn_optim *o;
    char err[256];
    cnn_optim_config c = cnn_optim_defaults(CNN_OPTIM_SGD);
    c.nesterov = true;
    assert_int_equal(cnn_optim_new(m, &c, &o, err, sizeof err), CNN_STATUS_INVALID_ARGUMENT);
    assert_non_null(strstr(err, "nesterov"));
    c = cnn_optim_defaults(CNN_OPTIM_ADAM);
    c.beta1 = 1.0;
    assert_int_equal(cnn_optim_new(m, &c, &o, err, sizeof err), CNN_STATUS_INVALID_ARGUMENT);
    c = cnn_optim_defaults(CNN_OPTIM_SGD);
    c.lr = -1;
    assert_int_equal(cnn_optim_new(m, &c, &o, err, sizeof err), CNN_STATUS_INVALID_ARGUMENT);
    cnn_model_free(m);
}

static void schedules_should_follow_pytorchs_formulas(void **state) {
    (void)state;
    cnn_schedule step = {.kind = CNN_SCHEDULE_STEP, .step_size = 3, .gamma = 0.1};
    assert_true(fabs(cnn_schedule_lr(&step, 1.0, 2) - 1.0) < 1e-12);
    assert_true(fabs(cnn_schedule_lr(&step, 1.0, 3) - 0.1) < 1e-12);
    assert_true(fabs(cnn_schedule_lr(&step, 1.0, 7) - 0.01) < 1e-12);
    cnn_schedule cos = {.kind = CNN_SCHEDULE_COSINE, .t_max = 10, .eta_min = 0.0};
    assert_true(fabs(cnn_schedule_lr(&cos, 0.5, 0) - 0.5) < 1e-12);
    assert_true(fabs(cnn_schedule_lr(&cos, 0.5, 5) - 0.25) < 1e-12);
    assert_true(fabs(cnn_schedule_lr(&cos, 0.5, 10)) < 1e-12);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(lenet_gradients_should_equal_pytorchs),
        cmocka_unit_test(lenet_gradients_in_lanes_should_equal_pytorchs),
        cmocka_unit_test(every_layer_type_gradients_should_equal_pytorchs),
        cmocka_unit_test(optimizer_steps_should_equal_pytorchs),
        cmocka_unit_test(cross_entropy_should_be_stable_and_mean_over_the_batch),
        cmocka_unit_test(optimizer_config_should_be_checked_as_pytorch_does),
        cmocka_unit_test(schedules_should_follow_pytorchs_formulas),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
