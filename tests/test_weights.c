/* test_weights.c - state_dicts in safetensors: PyTorch's keys, strict loading
 * that reports every problem at once, and corrupt files that fail cleanly. */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "scratch.h"

#include "cnnkit/cnnkit.h"

static char dir[256];

static int make_dir(void **state) {
    (void)state;
    return scratch_make(dir, sizeof dir, "weights");
}

static int remove_dir(void **state) {
    (void)state;
    scratch_remove(dir);
    return 0;
}

static const char *tmp_path(const char *name) {
    static char path[600];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return path;
}

/* A small model with every kind of state: conv weight+bias, BatchNorm's
 * running statistics and counter, a bias-free Linear. */
static cnn_model *small_model(void) {
    cnn_model *m = cnn_model_new("Net");
    int f = cnn_model_add_container(m, 0, "features", "Sequential");
    assert_true(f > 0);
    cnn_layer conv = cnn_conv2d(1, 2, 3);
    assert_true(cnn_model_add_layer(m, f, "0", &conv) >= 0);
    cnn_layer bn = cnn_batchnorm2d(2);
    assert_true(cnn_model_add_layer(m, f, "1", &bn) >= 0);
    int c = cnn_model_add_container(m, 0, "classifier", "Sequential");
    cnn_layer flat = cnn_flatten();
    assert_true(cnn_model_add_layer(m, c, "0", &flat) >= 0);
    cnn_layer fc = cnn_linear(2 * 3 * 3, 4);
    fc.bias = false;
    assert_true(cnn_model_add_layer(m, c, "1", &fc) >= 0);
    assert_int_equal(cnn_model_finalize(m), CNN_OK);
    return m;
}

static void state_dict_keys_should_equal_pytorchs(void **state) {
    (void)state;
    cnn_model *m = small_model();
    const char *want[] = {"features.0.weight",
                          "features.0.bias",
                          "features.1.weight",
                          "features.1.bias",
                          "features.1.running_mean",
                          "features.1.running_var",
                          "features.1.num_batches_tracked",
                          "classifier.1.weight"};
    assert_int_equal(cnn_model_num_params(m), 8);
    for (int i = 0; i < 8; i++)
        assert_string_equal(cnn_model_param(m, i).name, want[i]);
    cnn_param_info nbt = cnn_model_param(m, 6);
    assert_null(nbt.data);
    assert_non_null(nbt.i64);
    assert_int_equal(nbt.shape.ndim, 0);
    assert_false(cnn_model_param(m, 4).trainable);
    assert_true(cnn_model_param(m, 7).trainable);
    cnn_model_free(m);
}

static void params_should_live_in_one_buffer(void **state) {
    (void)state;
    cnn_model *m = small_model();
    size_t n;
    float *buf = cnn_model_param_buffer(m, &n);
    assert_int_equal(n, 2 * 9 + 2 + 2 * 4 + 4 * 18);
    size_t off = 0;
    for (int i = 0; i < cnn_model_num_params(m); i++) {
        cnn_param_info p = cnn_model_param(m, i);
        if (!p.data) continue;
        assert_ptr_equal(p.data, buf + off);
        off += p.numel;
    }
    cnn_model_free(m);
}

static void save_then_load_should_round_trip_every_tensor(void **state) {
    (void)state;
    cnn_model *a = small_model(), *b = small_model();
    assert_int_equal(cnn_model_init(a, CNN_INIT_DEFAULT, 3), CNN_OK);
    *cnn_model_param(a, 6).i64 = 41;
    cnn_model_param(a, 4).data[1] = 0.25f;
    const char *meta[] = {"producer", "cnnkit test", NULL};
    assert_int_equal(cnn_model_save(a, tmp_path("w.safetensors"), meta), CNN_OK);
    assert_int_equal(cnn_model_load(b, tmp_path("w.safetensors")), CNN_OK);
    size_t na, nb;
    float *pa = cnn_model_param_buffer(a, &na), *pb = cnn_model_param_buffer(b, &nb);
    assert_int_equal(na, nb);
    assert_memory_equal(pa, pb, na * sizeof(float));
    assert_int_equal(*cnn_model_param(b, 6).i64, 41);
    cnn_model_free(a);
    cnn_model_free(b);
}

static void load_should_report_missing_unexpected_and_mismatched_keys_at_once(void **state) {
    (void)state;
    /* A file with one key missing, one unexpected and one of the wrong shape. */
    cnn_st_file *st = cnn_st_new();
    float zeros[128] = {0};
    int64_t count = 0;
    cnn_shape w = cnn_shape_make(4, (int64_t[]){2, 1, 5, 5});
    cnn_shape c2 = cnn_shape_make(1, (int64_t[]){2});
    cnn_shape scalar = cnn_shape_make(0, NULL);
    cnn_shape fc = cnn_shape_make(2, (int64_t[]){4, 18});
    float big[100] = {0};
    assert_int_equal(cnn_st_add_f32(st, "features.0.weight", &w, big), CNN_OK);
    assert_int_equal(cnn_st_add_f32(st, "features.1.weight", &c2, zeros), CNN_OK);
    assert_int_equal(cnn_st_add_f32(st, "features.1.bias", &c2, zeros), CNN_OK);
    assert_int_equal(cnn_st_add_f32(st, "features.1.running_mean", &c2, zeros), CNN_OK);
    assert_int_equal(cnn_st_add_f32(st, "features.1.running_var", &c2, zeros), CNN_OK);
    assert_int_equal(cnn_st_add_i64(st, "features.1.num_batches_tracked", &scalar, &count), CNN_OK);
    assert_int_equal(cnn_st_add_f32(st, "classifier.1.weight", &fc, zeros), CNN_OK);
    assert_int_equal(cnn_st_add_f32(st, "classifier.1.bias", &c2, zeros), CNN_OK);
    char err[512];
    assert_int_equal(cnn_st_write(st, tmp_path("bad.safetensors"), err, sizeof err), CNN_OK);
    cnn_st_free(st);

    cnn_model *m = small_model();
    assert_int_equal(cnn_model_init(m, CNN_INIT_DEFAULT, 1), CNN_OK);
    float before = cnn_model_param(m, 7).data[0];
    assert_int_equal(cnn_model_load(m, tmp_path("bad.safetensors")), CNN_STATUS_MISMATCH);
    const char *e = cnn_model_error(m);
    printf("  %s\n", e);
    assert_non_null(strstr(e, "bad.safetensors"));
    assert_non_null(strstr(e, "missing keys: features.0.bias"));
    assert_non_null(strstr(e, "unexpected keys: classifier.1.bias"));
    assert_non_null(strstr(e, "size mismatch for features.0.weight: the file has [2, 1, 5, 5], "
                              "the model needs [2, 1, 3, 3]"));
    assert_null(strchr(e, '\n'));
    /* Nothing was loaded. */
    assert_true(cnn_model_param(m, 7).data[0] == before);
    cnn_model_free(m);
}

static void load_should_reject_a_counter_stored_as_float(void **state) {
    (void)state;
    cnn_model *m = small_model();
    assert_int_equal(cnn_model_save(m, tmp_path("ok.safetensors"), NULL), CNN_OK);
    /* Rewrite with num_batches_tracked as F32. */
    char err[512];
    cnn_st_file *in;
    assert_int_equal(cnn_st_read(tmp_path("ok.safetensors"), &in, err, sizeof err), CNN_OK);
    cnn_st_file *out = cnn_st_new();
    float one = 1.0f;
    for (int i = 0; i < cnn_st_count(in); i++) {
        const cnn_st_entry *e = cnn_st_get(in, i);
        if (e->i64)
            assert_int_equal(cnn_st_add_f32(out, e->name, &e->shape, &one), CNN_OK);
        else
            assert_int_equal(cnn_st_add_f32(out, e->name, &e->shape, e->f32), CNN_OK);
    }
    assert_int_equal(cnn_st_write(out, tmp_path("f32count.safetensors"), err, sizeof err), CNN_OK);
    cnn_st_free(out);
    cnn_st_free(in);
    assert_int_equal(cnn_model_load(m, tmp_path("f32count.safetensors")), CNN_STATUS_MISMATCH);
    assert_non_null(
        strstr(cnn_model_error(m), "dtype mismatch for features.1.num_batches_tracked"));
    cnn_model_free(m);
}

static void load_should_fail_cleanly_on_truncated_files(void **state) {
    (void)state;
    cnn_model *m = small_model();
    assert_int_equal(cnn_model_save(m, tmp_path("full.safetensors"), NULL), CNN_OK);
    FILE *f = fopen(tmp_path("full.safetensors"), "rb");
    assert_non_null(f);
    unsigned char buf[4096];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    assert_true(n > 100 && n < sizeof buf);
    for (size_t cut = 0; cut < n; cut += 7) {
        FILE *g = fopen(tmp_path("cut.safetensors"), "wb");
        fwrite(buf, 1, cut, g);
        fclose(g);
        cnn_status s = cnn_model_load(m, tmp_path("cut.safetensors"));
        assert_int_equal(s, CNN_STATUS_FORMAT);
        assert_non_null(strstr(cnn_model_error(m), "cut.safetensors"));
    }
    assert_int_equal(cnn_model_load(m, tmp_path("does-not-exist.safetensors")), CNN_STATUS_IO);
    cnn_model_free(m);
}

static void save_should_leave_no_partial_file_when_the_folder_is_missing(void **state) {
    (void)state;
    cnn_model *m = small_model();
    assert_int_equal(cnn_model_save(m, tmp_path("no/such/dir/w.safetensors"), NULL), CNN_STATUS_IO);
    assert_non_null(strstr(cnn_model_error(m), "w.safetensors"));
    cnn_model_free(m);
}

static void default_init_should_use_pytorchs_bounds(void **state) {
    (void)state;
    cnn_model *m = small_model();
    assert_int_equal(cnn_model_init(m, CNN_INIT_DEFAULT, 5), CNN_OK);
    /* Conv2d(1, 2, 3): fan_in 9, bound 1/3 for weight and bias. */
    cnn_param_info w = cnn_model_param(m, 0), b = cnn_model_param(m, 1);
    float wmax = 0;
    for (size_t i = 0; i < w.numel; i++) {
        assert_true(w.data[i] >= -1.0f / 3 && w.data[i] < 1.0f / 3);
        if (w.data[i] > wmax) wmax = w.data[i];
    }
    assert_true(wmax > 0.0f);
    for (size_t i = 0; i < b.numel; i++)
        assert_true(b.data[i] >= -1.0f / 3 && b.data[i] < 1.0f / 3);
    /* BatchNorm: weight 1, bias 0, mean 0, var 1. */
    assert_true(cnn_model_param(m, 2).data[0] == 1.0f && cnn_model_param(m, 3).data[1] == 0.0f);
    assert_true(cnn_model_param(m, 4).data[0] == 0.0f && cnn_model_param(m, 5).data[1] == 1.0f);
    /* Linear(18, 4) xavier: bound sqrt(6 / 22). */
    assert_int_equal(cnn_model_init(m, CNN_INIT_XAVIER, 5), CNN_OK);
    cnn_param_info fc = cnn_model_param(m, 7);
    float bound = 0.52223297f, seen = 0;
    for (size_t i = 0; i < fc.numel; i++) {
        assert_true(fc.data[i] >= -bound && fc.data[i] < bound);
        if (fc.data[i] > seen) seen = fc.data[i];
    }
    assert_true(seen > 1.0f / 4.3f); /* beyond the default's 1/sqrt(18) = 0.236 */
    cnn_model_free(m);
}

static void the_same_seed_should_give_the_same_weights(void **state) {
    (void)state;
    cnn_model *a = small_model(), *b = small_model();
    cnn_model_init(a, CNN_INIT_DEFAULT, 9);
    cnn_model_init(b, CNN_INIT_DEFAULT, 9);
    size_t n;
    float *pa = cnn_model_param_buffer(a, &n), *pb = cnn_model_param_buffer(b, NULL);
    assert_memory_equal(pa, pb, n * sizeof(float));
    cnn_model_init(b, CNN_INIT_DEFAULT, 10);
    assert_memory_not_equal(pa, pb, n * sizeof(float));
    cnn_model_free(a);
    cnn_model_free(b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(state_dict_keys_should_equal_pytorchs),
        cmocka_unit_test(params_should_live_in_one_buffer),
        cmocka_unit_test(save_then_load_should_round_trip_every_tensor),
        cmocka_unit_test(load_should_report_missing_unexpected_and_mismatched_keys_at_once),
        cmocka_unit_test(load_should_reject_a_counter_stored_as_float),
        cmocka_unit_test(load_should_fail_cleanly_on_truncated_files),
        cmocka_unit_test(save_should_leave_no_partial_file_when_the_folder_is_missing),
        cmocka_unit_test(default_init_should_use_pytorchs_bounds),
        cmocka_unit_test(the_same_seed_should_give_the_same_weights),
    };
    return cmocka_run_group_tests(tests, make_dir, remove_dir);
}
