/* test_memory.c - cnn_model_memory: the figures it plans equal what the
 * passes then allocate, for LeNet and AlexNet at batch 1 and 64, inference
 * and training; it leaves the model's own plan alone; shape errors read as
 * cnn_model_infer's; and the optimizers' state is what `cnnkit summary` says. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cnnkit/cnnkit.h"
#include "model_impl.h"

static cnn_model *zoo(const char *name) {
    cnn_model *m;
    assert_int_equal(cnn_zoo_build(name, &m), CNN_OK);
    assert_int_equal(cnn_model_init(m, CNN_INIT_DEFAULT, 1), CNN_OK);
    return m;
}

static cnn_shape zoo_input(const char *name, int64_t batch) {
    cnn_shape s = cnn_zoo_find(name)->input;
    s.dim[0] = batch;
    return s;
}

static void print_memory(const char *what, const cnn_memory *r) {
    printf("  %-28s weights %zu, gradients %zu, activations %zu, activation gradients %zu, "
           "training state %zu, workspace %zu, total %zu\n",
           what, r->weights, r->gradients, r->activations, r->activation_gradients,
           r->training_state, r->workspace, r->total);
}

static void assert_same_memory(const cnn_memory *a, const cnn_memory *b) {
    assert_int_equal(a->weights, b->weights);
    assert_int_equal(a->gradients, b->gradients);
    assert_int_equal(a->activations, b->activations);
    assert_int_equal(a->activation_gradients, b->activation_gradients);
    assert_int_equal(a->training_state, b->training_state);
    assert_int_equal(a->workspace, b->workspace);
    assert_int_equal(a->total, b->total);
}

/* Runs one pass of the kind planned on a fresh model and checks that its
 * allocations are the plan's figures. */
static cnn_memory plan_and_run(const char *name, int64_t batch, bool train) {
    cnn_model *m = zoo(name);
    cnn_shape in = zoo_input(name, batch);
    cnn_memory plan, real;
    assert_int_equal(cnn_model_memory(m, &in, train, &plan), CNN_OK);
    cnn_model_allocated(m, &real);
    assert_int_equal(real.activations + real.workspace + real.activation_gradients, 0);
    cnn_tensor x;
    assert_int_equal(cnn_tensor_alloc(&x, &in), CNN_OK);
    const float *y = train ? cnn_model_forward_train(m, &x, 1, 0) : cnn_model_forward_view(m, &x);
    if (!y) fail_msg("%s", cnn_model_error(m));
    cnn_model_allocated(m, &real);
    char what[64];
    snprintf(what, sizeof what, "%s batch %lld %s", name, (long long)batch,
             train ? "training" : "inference");
    print_memory(what, &plan);
    assert_same_memory(&plan, &real);
    cnn_tensor_free(&x);
    cnn_model_free(m);
    return plan;
}

static void memory_should_equal_what_inference_allocates(void **state) {
    (void)state;
    const struct {
        const char *name;
        size_t params;
    } models[] = {{"lenet", 61706}, {"alexnet", 46764746}};
    for (size_t i = 0; i < sizeof models / sizeof models[0]; i++) {
        cnn_memory one = plan_and_run(models[i].name, 1, false);
        cnn_memory many = plan_and_run(models[i].name, 64, false);
        assert_int_equal(one.weights, 4 * models[i].params);
        assert_int_equal(one.gradients, 4 * models[i].params);
        assert_int_equal(many.weights, one.weights);
        assert_int_equal(one.activation_gradients + one.training_state, 0);
        assert_int_equal(many.activation_gradients + many.training_state, 0);
        assert_true(many.activations > 32 * one.activations);
    }
}

/* An activation right after a Conv2d or Linear that nothing else reads runs
 * in place in training. */
static bool in_place(const cnn_model *m, int i) {
    const cnn_op op = cnn_model_node_layer(m, i)->op;
    const int *in;
    if (op != CNN_OP_RELU && op != CNN_OP_SIGMOID && op != CNN_OP_TANH) return false;
    if (cnn_model_node_inputs(m, i, &in) != 1 || in[0] < 0) return false;
    const cnn_op from = cnn_model_node_layer(m, in[0])->op;
    if (from != CNN_OP_CONV2D && from != CNN_OP_LINEAR) return false;
    for (int k = 0; k < cnn_model_num_nodes(m); k++) {
        const int *kin;
        const int n = cnn_model_node_inputs(m, k, &kin);
        for (int j = 0; j < n; j++)
            if (k != i && kin[j] == in[0]) return false;
    }
    return true;
}

/* In training every other output is kept (Flatten is the only view), each
 * buffer rounded up to 16 floats. */
static size_t kept_outputs(const char *name, int64_t batch, size_t *all) {
    cnn_model *m = zoo(name);
    cnn_shape in = zoo_input(name, batch);
    assert_int_equal(cnn_model_infer(m, &in), CNN_OK);
    size_t bytes = 0;
    int shared = 0;
    *all = 0;
    for (int i = 0; i < cnn_model_num_nodes(m); i++) {
        if (cnn_model_node_layer(m, i)->op == CNN_OP_FLATTEN) continue;
        const size_t out = (cnn_model_node_stats(m, i).out_bytes + 63) / 64 * 64;
        *all += out;
        if (in_place(m, i))
            shared++;
        else
            bytes += out;
    }
    /* LeNet's four sigmoids and AlexNet's seven ReLUs follow a Conv2d or Linear. */
    assert_int_equal(shared, strcmp(name, "lenet") == 0 ? 4 : 7);
    cnn_model_free(m);
    return bytes;
}

static void memory_should_equal_what_training_allocates(void **state) {
    (void)state;
    const char *names[] = {"lenet", "alexnet"};
    const int64_t batches[] = {1, 64};
    for (size_t i = 0; i < 2; i++) {
        for (size_t j = 0; j < 2; j++) {
            cnn_memory infer = plan_and_run(names[i], batches[j], false);
            cnn_memory train = plan_and_run(names[i], batches[j], true);
            size_t outputs;
            assert_int_equal(train.activations, kept_outputs(names[i], batches[j], &outputs));
            /* Output gradients live only from their first adder to their producer in the
             * backward pass, so the chain needs far fewer bytes than the outputs do. */
            assert_true(train.activation_gradients > 0);
            assert_true(train.activation_gradients < outputs);
            assert_true(train.activations >= infer.activations);
            assert_true(train.workspace >= infer.workspace);
            assert_int_equal(train.weights, infer.weights);
            /* AlexNet keeps at least max-pooling's argmax and Dropout's masks (what a
             * layer keeps is its own business: the figure's check is the equality above). */
            if (i == 1) assert_true(train.training_state > 0);
        }
    }
}

static void memory_should_leave_the_models_plan_alone(void **state) {
    (void)state;
    cnn_model *m = zoo("lenet");
    cnn_shape in = zoo_input("lenet", 2), big = zoo_input("lenet", 64);
    cnn_tensor x;
    assert_int_equal(cnn_tensor_alloc(&x, &in), CNN_OK);
    assert_non_null(cnn_model_forward_train(m, &x, 1, 0));
    cnn_memory before, after, planned;
    cnn_model_allocated(m, &before);
    assert_int_equal(cnn_model_memory(m, &big, true, &planned), CNN_OK);
    assert_true(planned.activations > before.activations);
    cnn_model_allocated(m, &after);
    assert_same_memory(&before, &after);
    /* The training forward still awaits its backward, at its own shape. */
    cnn_shape out = cnn_model_output_shape(m);
    assert_int_equal(out.dim[0], 2);
    float dy[20] = {0.1f};
    assert_int_equal(cnn_model_backward(m, x.data, dy, NULL), CNN_OK);
    cnn_model_allocated(m, &after);
    assert_same_memory(&before, &after);
    cnn_tensor_free(&x);
    cnn_model_free(m);
}

/* On one thread with a batch of whole sixteens, LeNet's layers up to its
 * second pool run on 16 images per vector lane, a sixteen at a time (the
 * plan records which and how many): planning the memory of other batches
 * between the forward and the backward pass leaves that alone, and the
 * gradients are the same bits as a model's that planned nothing. */
static void memory_should_leave_a_lanes_plan_alone(void **state) {
    (void)state;
    cnn_set_threads(1);
    cnn_model *m = zoo("lenet"), *ref = zoo("lenet");
    cnn_shape in = zoo_input("lenet", 32), big = zoo_input("lenet", 64),
              small = zoo_input("lenet", 2);
    cnn_tensor x;
    assert_int_equal(cnn_tensor_alloc(&x, &in), CNN_OK);
    cnn_rng rng;
    cnn_rng_seed(&rng, 9, 0);
    for (size_t i = 0; i < cnn_tensor_numel(&x); i++)
        x.data[i] = cnn_rng_uniform(&rng);
    float dy[32 * 10];
    for (int i = 0; i < 32 * 10; i++)
        dy[i] = cnn_rng_uniform(&rng) - 0.5f;
    cnn_model *both[2] = {m, ref};
    for (int k = 0; k < 2; k++) {
        cnn_model_zero_grad(both[k]);
        assert_non_null(cnn_model_forward_train(both[k], &x, 1, 0));
    }
    cnn_memory planned;
    assert_int_equal(cnn_model_memory(m, &big, true, &planned), CNN_OK);
    assert_int_equal(cnn_model_memory(m, &small, true, &planned), CNN_OK);
    assert_int_equal(cnn_model_memory(m, &big, false, &planned), CNN_OK);
    for (int k = 0; k < 2; k++)
        assert_int_equal(cnn_model_backward(both[k], x.data, dy, NULL), CNN_OK);
    size_t n, n2;
    const float *g = cnn_model_grad_buffer(m, &n), *g2 = cnn_model_grad_buffer(ref, &n2);
    assert_int_equal(n, n2);
    assert_memory_equal(g, g2, n * sizeof *g);
    cnn_set_threads(0);
    cnn_tensor_free(&x);
    cnn_model_free(m);
    cnn_model_free(ref);
}

static void memory_should_report_shape_errors_as_infer_does(void **state) {
    (void)state;
    cnn_model *m = zoo("lenet");
    cnn_shape bad = cnn_shape_make(4, (int64_t[]){1, 1, 32, 32});
    cnn_memory r = {.total = 1};
    assert_int_equal(cnn_model_memory(m, &bad, false, &r), CNN_STATUS_SHAPE);
    assert_int_equal(r.total, 0);
    assert_non_null(strstr(cnn_model_error(m), "net.7 Linear(in_features=400, out_features=120, "
                                               "bias=True): expects 400 input features, got 576"));
    cnn_model_free(m);
}

/* BatchNorm's counter is an int64 next to the float buffer; Dropout keeps masks. */
static void memory_should_count_batchnorm_counters_and_masks(void **state) {
    (void)state;
    cnn_model *m = cnn_model_new("Net");
    int seq = cnn_model_add_container(m, 0, "net", "Sequential");
    cnn_layer layers[] = {cnn_conv2d(1, 4, 3),        cnn_batchnorm2d(4), cnn_relu(),
                          cnn_maxpool2d(2),           cnn_flatten(),      cnn_dropout(0.5),
                          cnn_linear(4 * 13 * 13, 10)};
    for (int i = 0; i < (int)(sizeof layers / sizeof layers[0]); i++) {
        char name[8];
        snprintf(name, sizeof name, "%d", i);
        assert_true(cnn_model_add_layer(m, seq, name, &layers[i]) >= 0);
    }
    assert_int_equal(cnn_model_finalize(m), CNN_OK);
    assert_int_equal(cnn_model_init(m, CNN_INIT_DEFAULT, 1), CNN_OK);
    size_t floats;
    cnn_model_param_buffer(m, &floats);
    assert_int_equal(floats, 40 + 4 * 4 + 6760 + 10);
    cnn_shape in = cnn_shape_make(4, (int64_t[]){4, 1, 28, 28});
    cnn_memory plan, real;
    assert_int_equal(cnn_model_memory(m, &in, true, &plan), CNN_OK);
    assert_int_equal(plan.weights, 4 * floats + 8);
    assert_true(plan.training_state > 0);
    cnn_tensor x;
    assert_int_equal(cnn_tensor_alloc(&x, &in), CNN_OK);
    assert_non_null(cnn_model_forward_train(m, &x, 1, 0));
    cnn_model_allocated(m, &real);
    print_memory("conv-bn-pool-dropout training", &plan);
    assert_same_memory(&plan, &real);
    cnn_tensor_free(&x);
    cnn_model_free(m);
}

/* `cnnkit summary` and the refusals count optimizer state as optim.c
 * allocates it: one buffer the size of the parameter buffer per state. */
static void optimizer_state_should_be_one_parameter_buffer_per_state(void **state) {
    (void)state;
    cnn_model *m = zoo("lenet");
    size_t floats;
    cnn_model_param_buffer(m, &floats);
    const struct {
        cnn_optim_kind kind;
        double momentum;
        int states;
    } cases[] = {{CNN_OPTIM_SGD, 0.0, 0},
                 {CNN_OPTIM_SGD, 0.9, 1},
                 {CNN_OPTIM_ADAM, 0.0, 2},
                 {CNN_OPTIM_ADAMW, 0.0, 2}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cnn_optim_config c = cnn_optim_defaults(cases[i].kind);
        c.momentum = cases[i].momentum;
        cnn_optim *o;
        char err[256];
        assert_int_equal(cnn_optim_new(m, &c, &o, err, sizeof err), CNN_OK);
        assert_int_equal(cnn_optim_num_states(o), cases[i].states);
        for (int s = 0; s < cases[i].states; s++) {
            size_t n;
            assert_non_null(cnn_optim_state(o, s, &n));
            assert_int_equal(n, floats);
        }
        cnn_optim_free(o);
    }
    cnn_model_free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(memory_should_equal_what_inference_allocates),
        cmocka_unit_test(memory_should_equal_what_training_allocates),
        cmocka_unit_test(memory_should_leave_the_models_plan_alone),
        cmocka_unit_test(memory_should_leave_a_lanes_plan_alone),
        cmocka_unit_test(memory_should_report_shape_errors_as_infer_does),
        cmocka_unit_test(memory_should_count_batchnorm_counters_and_masks),
        cmocka_unit_test(optimizer_state_should_be_one_parameter_buffer_per_state),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
