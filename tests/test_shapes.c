/* test_shapes.c - shape inference against PyTorch: every case of
 * fixtures/shape_cases.json (written by tests/ref/shape_cases.py) is built as
 * a one-layer model and must give PyTorch's output shape or fail where PyTorch
 * raised; plus unit tests of the shape helpers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <cmocka.h>

#include "cnnkit/layer.h"
#include "cnnkit/model.h"
#include "cnnkit/tensor.h"

#ifndef CNNKIT_FIXTURES
#define CNNKIT_FIXTURES "tests/fixtures"
#endif

#define CASES_PATH CNNKIT_FIXTURES "/shape_cases.json"
#define MIN_CASES  80

/* ---- helpers ------------------------------------------------------------ */

static char *read_text(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) fail_msg("cannot open %s", path);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    long len = ftell(f);
    assert_true(len >= 0);
    assert_int_equal(fseek(f, 0, SEEK_SET), 0);
    char *buf = malloc((size_t)len + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)len, f), (size_t)len);
    buf[len] = 0;
    fclose(f);
    return buf;
}

static bool starts_with(const char *s, const char *prefix) {
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

static bool ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* ---- layer arguments from JSON ------------------------------------------ */

/* The "args" object of a case; every getter counts the keys it consumed so
 * that an argument the test does not know about is reported, not ignored. */
typedef struct case_args {
    const cJSON *obj;
    int used;
    char err[200];
} case_args;

static const cJSON *take(case_args *a, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(a->obj, key);
    if (v) a->used++;
    return v;
}

static bool json_int(const cJSON *v, int64_t *out) {
    if (!cJSON_IsNumber(v)) return false;
    double d = v->valuedouble;
    if (!(d >= -9e15 && d <= 9e15) || d != (double)(int64_t)d) return false;
    *out = (int64_t)d;
    return true;
}

static bool bad_arg(case_args *a, const char *key, const char *want) {
    if (!a->err[0]) snprintf(a->err, sizeof a->err, "argument %s is not %s", key, want);
    return false;
}

/* Returns whether key is present; *v is left alone when it is not. */
static bool get_int(case_args *a, const char *key, int64_t *v) {
    const cJSON *j = take(a, key);
    if (!j) return false;
    if (!json_int(j, v)) return bad_arg(a, key, "an integer");
    return true;
}

/* An int (both elements, tuple false) or a [h, w] list (tuple true). */
static bool get_pair(case_args *a, const char *key, int64_t v[2], bool *tuple) {
    const cJSON *j = take(a, key);
    if (!j || cJSON_IsNull(j)) return false;
    if (cJSON_IsArray(j)) {
        if (cJSON_GetArraySize(j) != 2 || !json_int(cJSON_GetArrayItem(j, 0), &v[0]) ||
            !json_int(cJSON_GetArrayItem(j, 1), &v[1]))
            return bad_arg(a, key, "an int or a list of two ints");
        *tuple = true;
        return true;
    }
    int64_t x;
    if (!json_int(j, &x)) return bad_arg(a, key, "an int or a list of two ints");
    v[0] = v[1] = x;
    *tuple = false;
    return true;
}

static bool get_bool(case_args *a, const char *key, bool *v) {
    const cJSON *j = take(a, key);
    if (!j) return false;
    if (!cJSON_IsBool(j)) return bad_arg(a, key, "a bool");
    *v = cJSON_IsTrue(j);
    return true;
}

/* A number; JSON null sets *is_null (BatchNorm2d's momentum=None). */
static bool get_double(case_args *a, const char *key, double *v, bool *is_null) {
    const cJSON *j = take(a, key);
    if (!j) return false;
    if (cJSON_IsNull(j) && is_null) {
        *is_null = true;
        return true;
    }
    if (!cJSON_IsNumber(j)) return bad_arg(a, key, "a number");
    *v = j->valuedouble;
    return true;
}

static bool require(case_args *a, bool present, const char *key) {
    if (!present && !a->err[0]) snprintf(a->err, sizeof a->err, "argument %s is missing", key);
    return present;
}

/* Pooling: the constructor gives stride = kernel; a stride in args overrides it. */
static void pool_args(case_args *a, cnn_layer *L, bool has_dilation) {
    bool t = false;
    if (get_pair(a, "stride", L->stride, &t))
        L->stride_tuple = t;
    else
        L->stride_tuple = L->kernel_tuple;
    if (get_pair(a, "padding", L->padding, &t)) L->padding_tuple = t;
    if (has_dilation && get_pair(a, "dilation", L->dilation, &t)) L->dilation_tuple = t;
    get_bool(a, "ceil_mode", &L->ceil_mode);
}

/* Builds the layer as torch.nn.<name>(**args) would. On a malformed case
 * returns false with the reason in err. */
static bool build_layer(const char *name, const cJSON *args, cnn_layer *L, char *err,
                        size_t errlen) {
    cnn_op op = cnn_op_from_name(name);
    if (op == CNN_OP_COUNT) {
        snprintf(err, errlen, "unknown layer %s", name);
        return false;
    }
    if (!cJSON_IsObject(args)) {
        snprintf(err, errlen, "args is not an object");
        return false;
    }
    case_args a = {.obj = args};
    int64_t x = 0, y = 0, k[2] = {0, 0};
    double d = 0.0;
    bool t = false;
    switch (op) {
    case CNN_OP_CONV2D:
        require(&a, get_int(&a, "in_channels", &x), "in_channels");
        require(&a, get_int(&a, "out_channels", &y), "out_channels");
        require(&a, get_pair(&a, "kernel_size", k, &t), "kernel_size");
        *L = cnn_conv2d(x, y, k[0]);
        L->kernel[1] = k[1];
        L->kernel_tuple = t;
        if (get_pair(&a, "stride", L->stride, &t)) L->stride_tuple = t;
        if (get_pair(&a, "padding", L->padding, &t)) L->padding_tuple = t;
        if (get_pair(&a, "dilation", L->dilation, &t)) L->dilation_tuple = t;
        get_int(&a, "groups", &L->groups);
        get_bool(&a, "bias", &L->bias);
        break;
    case CNN_OP_LINEAR:
        require(&a, get_int(&a, "in_features", &x), "in_features");
        require(&a, get_int(&a, "out_features", &y), "out_features");
        *L = cnn_linear(x, y);
        get_bool(&a, "bias", &L->bias);
        break;
    case CNN_OP_MAXPOOL2D:
    case CNN_OP_AVGPOOL2D:
        require(&a, get_pair(&a, "kernel_size", k, &t), "kernel_size");
        *L = op == CNN_OP_MAXPOOL2D ? cnn_maxpool2d(k[0]) : cnn_avgpool2d(k[0]);
        L->kernel[1] = k[1];
        L->stride[1] = k[1];
        L->kernel_tuple = t;
        pool_args(&a, L, op == CNN_OP_MAXPOOL2D);
        if (op == CNN_OP_AVGPOOL2D) get_bool(&a, "count_include_pad", &L->count_include_pad);
        break;
    case CNN_OP_ADAPTIVEAVGPOOL2D:
        require(&a, get_pair(&a, "output_size", k, &t), "output_size");
        *L = cnn_adaptiveavgpool2d(k[0]);
        L->output_size[1] = k[1];
        L->output_size_tuple = t;
        break;
    case CNN_OP_RELU: *L = cnn_relu(); break;
    case CNN_OP_SIGMOID: *L = cnn_sigmoid(); break;
    case CNN_OP_TANH: *L = cnn_tanh(); break;
    case CNN_OP_FLATTEN:
        *L = cnn_flatten();
        get_int(&a, "start_dim", &L->start_dim);
        get_int(&a, "end_dim", &L->end_dim);
        break;
    case CNN_OP_DROPOUT:
        d = 0.5;
        get_double(&a, "p", &d, NULL);
        *L = cnn_dropout(d);
        break;
    case CNN_OP_BATCHNORM2D:
        require(&a, get_int(&a, "num_features", &x), "num_features");
        *L = cnn_batchnorm2d(x);
        get_double(&a, "eps", &L->eps, NULL);
        get_double(&a, "momentum", &L->momentum, &L->momentum_none);
        get_bool(&a, "affine", &L->affine);
        get_bool(&a, "track_running_stats", &L->track_running_stats);
        break;
    case CNN_OP_LRN:
        require(&a, get_int(&a, "size", &x), "size");
        *L = cnn_lrn(x);
        get_double(&a, "alpha", &L->alpha, NULL);
        get_double(&a, "beta", &L->beta, NULL);
        get_double(&a, "k", &L->k, NULL);
        break;
    case CNN_OP_SOFTMAX:
        require(&a, get_int(&a, "dim", &x), "dim");
        *L = cnn_softmax(x);
        break;
    case CNN_OP_COUNT: break;
    }
    if (!a.err[0] && a.used != cJSON_GetArraySize(args))
        snprintf(a.err, sizeof a.err, "args has %d key(s) %s does not take",
                 cJSON_GetArraySize(args) - a.used, name);
    if (a.err[0]) {
        snprintf(err, errlen, "%s", a.err);
        return false;
    }
    return true;
}

static bool json_shape(const cJSON *j, cnn_shape *s) {
    if (!cJSON_IsArray(j) || cJSON_GetArraySize(j) > CNN_MAX_DIMS) return false;
    int64_t dims[CNN_MAX_DIMS];
    int n = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, j) {
        if (!json_int(e, &dims[n])) return false;
        n++;
    }
    *s = cnn_shape_make(n, dims);
    return true;
}

/* ---- one case ------------------------------------------------------------ */

/* The error text of a layer that failed: "0 <repr>: <why>", one line; after
 * inference also ending " (input <shape>)". Returns NULL when it has that form. */
static const char *bad_error_text(const char *text, const char *repr, const cnn_shape *input) {
    char prefix[600];
    snprintf(prefix, sizeof prefix, "0 %s: ", repr);
    if (!starts_with(text, prefix)) return "the error does not start with \"0 <repr>: \"";
    if (strchr(text, '\n')) return "the error is not one line";
    if (input) {
        char shape[128], suffix[160];
        cnn_shape_format(shape, sizeof shape, input);
        snprintf(suffix, sizeof suffix, " (input %s)", shape);
        if (!ends_with(text, suffix)) return "the error does not end with \" (input <shape>)\"";
    }
    return NULL;
}

/* Checks one case; on a mismatch returns false with what cnnkit did in got. */
static bool check_case(const cJSON *c, char *got, size_t cap) {
    const cJSON *jlayer = cJSON_GetObjectItemCaseSensitive(c, "layer");
    const cJSON *jargs = cJSON_GetObjectItemCaseSensitive(c, "args");
    const cJSON *jin = cJSON_GetObjectItemCaseSensitive(c, "input");
    const cJSON *jout = cJSON_GetObjectItemCaseSensitive(c, "output");
    const cJSON *jerr = cJSON_GetObjectItemCaseSensitive(c, "error");
    cnn_shape in, want = {0};
    if (!cJSON_IsString(jlayer) || !json_shape(jin, &in) || (jout != NULL) == (jerr != NULL) ||
        (jout && !json_shape(jout, &want)) || (jerr && !cJSON_IsString(jerr))) {
        snprintf(got, cap, "malformed case");
        return false;
    }
    cnn_layer L;
    char why[256];
    if (!build_layer(jlayer->valuestring, jargs, &L, why, sizeof why)) {
        snprintf(got, cap, "malformed case: %s", why);
        return false;
    }
    char repr[512];
    cnn_layer_repr(repr, sizeof repr, &L);
    bool check_ok = cnn_layer_check(&L, why, sizeof why);

    cnn_model *m = cnn_model_new("Sequential");
    assert_non_null(m);
    bool pass = false;
    int node = cnn_model_add_layer(m, 0, "0", &L);
    const char *err = cnn_model_error(m);
    if ((node >= 0) != check_ok) {
        snprintf(got, cap, "cnn_layer_check says %s but cnn_model_add_layer %s: %s",
                 check_ok ? "valid" : "invalid", node >= 0 ? "accepted it" : "rejected it",
                 check_ok ? err : why);
    } else if (node < 0) {
        /* Rejected at construction: right for any PyTorch error. */
        const char *bad = bad_error_text(err, repr, NULL);
        if (jout)
            snprintf(got, cap, "rejected at construction: %s", err);
        else if (bad)
            snprintf(got, cap, "rejected at construction, but %s: %s", bad, err);
        else
            pass = true;
    } else {
        cnn_status s = cnn_model_finalize(m);
        if (s == CNN_OK) s = cnn_model_infer(m, &in);
        err = cnn_model_error(m);
        if (s == CNN_OK) {
            char shape[128];
            cnn_shape out = cnn_model_output_shape(m);
            cnn_shape_format(shape, sizeof shape, &out);
            if (jout && cnn_shape_equal(&out, &want))
                pass = true;
            else
                snprintf(got, cap, "output %s", shape);
        } else if (jout || s != CNN_STATUS_SHAPE) {
            snprintf(got, cap, "%s: %s", cnn_status_str(s), err);
        } else {
            const char *bad = bad_error_text(err, repr, &in);
            if (bad)
                snprintf(got, cap, "%s: %s", bad, err);
            else
                pass = true;
        }
    }
    cnn_model_free(m);
    return pass;
}

static void describe_case(const cJSON *c, const char *got) {
    const cJSON *jout = cJSON_GetObjectItemCaseSensitive(c, "output");
    const cJSON *jerr = cJSON_GetObjectItemCaseSensitive(c, "error");
    char *args = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(c, "args"));
    char *in = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(c, "input"));
    char *out = jout ? cJSON_PrintUnformatted(jout) : NULL;
    const cJSON *jlayer = cJSON_GetObjectItemCaseSensitive(c, "layer");
    printf("MISMATCH %s %s input %s\n", cJSON_IsString(jlayer) ? jlayer->valuestring : "?",
           args ? args : "?", in ? in : "?");
    if (out)
        printf("  expected output %s\n", out);
    else
        printf("  expected an error%s (PyTorch: %s)\n",
               cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(c, "construct_error"))
                   ? " at construction"
                   : "",
               cJSON_IsString(jerr) ? jerr->valuestring : "?");
    printf("  got %s\n", got);
    cJSON_free(args);
    cJSON_free(in);
    cJSON_free(out);
}

/* ---- tests --------------------------------------------------------------- */

static void every_shape_case_should_match_pytorch(void **state) {
    (void)state;
    char *text = read_text(CASES_PATH);
    cJSON *cases = cJSON_Parse(text);
    free(text);
    if (!cJSON_IsArray(cases)) fail_msg("%s is not a JSON array", CASES_PATH);
    int checked = 0, failed = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, cases) {
        char got[1200] = "";
        checked++;
        if (!check_case(c, got, sizeof got)) {
            failed++;
            describe_case(c, got);
        }
    }
    cJSON_Delete(cases);
    printf("shape cases: %d checked, %d failed\n", checked, failed);
    fflush(stdout);
    if (checked < MIN_CASES) fail_msg("only %d cases in %s", checked, CASES_PATH);
    if (failed) fail_msg("%d of %d shape cases differ from PyTorch", failed, checked);
}

static void shape_parse_should_accept_commas_and_xs(void **state) {
    (void)state;
    cnn_shape s;
    assert_int_equal(cnn_shape_parse("1,1,28,28", &s), CNN_OK);
    cnn_shape want = cnn_shape_make(4, (int64_t[]){1, 1, 28, 28});
    assert_true(cnn_shape_equal(&s, &want));
    assert_int_equal(cnn_shape_parse("1x3x224x224", &s), CNN_OK);
    want = cnn_shape_make(4, (int64_t[]){1, 3, 224, 224});
    assert_true(cnn_shape_equal(&s, &want));
    assert_int_equal(cnn_shape_parse("10", &s), CNN_OK);
    want = cnn_shape_make(1, (int64_t[]){10});
    assert_true(cnn_shape_equal(&s, &want));
}

static void shape_parse_should_reject_malformed_text(void **state) {
    (void)state;
    static const char *const bad[] = {
        "", "1,,2", "0,1", "-1,2", "a", "1,2,", "1,2,3,4,5,6,7",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cnn_shape s = cnn_shape_make(1, (int64_t[]){42});
        if (cnn_shape_parse(bad[i], &s) != CNN_STATUS_INVALID_ARGUMENT)
            fail_msg("cnn_shape_parse accepted \"%s\"", bad[i]);
    }
}

static void shape_numel_should_report_overflow_as_no_memory(void **state) {
    (void)state;
    size_t n = 0;
    cnn_shape s = cnn_shape_make(4, (int64_t[]){1, 6, 28, 28});
    assert_int_equal(cnn_shape_numel(&s, &n), CNN_OK);
    assert_int_equal(n, 4704);
    s = cnn_shape_make(0, NULL);
    assert_int_equal(cnn_shape_numel(&s, &n), CNN_OK);
    assert_int_equal(n, 1);
    s = cnn_shape_make(2, (int64_t[]){INT64_C(1) << 40, INT64_C(1) << 40});
    assert_int_equal(cnn_shape_numel(&s, &n), CNN_STATUS_NO_MEMORY);
    s = cnn_shape_make(3, (int64_t[]){INT64_MAX, 2, 3});
    assert_int_equal(cnn_shape_numel(&s, &n), CNN_STATUS_NO_MEMORY);
}

static void shape_format_should_write_pytorch_list_form(void **state) {
    (void)state;
    char buf[64];
    cnn_shape s = cnn_shape_make(4, (int64_t[]){1, 6, 28, 28});
    assert_int_equal(cnn_shape_format(buf, sizeof buf, &s), 14);
    assert_string_equal(buf, "[1, 6, 28, 28]");
    s = cnn_shape_make(0, NULL);
    assert_int_equal(cnn_shape_format(buf, sizeof buf, &s), 2);
    assert_string_equal(buf, "[]");
    /* snprintf-style: a short buffer gets a terminated prefix and the full length. */
    s = cnn_shape_make(2, (int64_t[]){120, 84});
    assert_int_equal(cnn_shape_format(buf, 5, &s), 9);
    assert_string_equal(buf, "[120");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_shape_case_should_match_pytorch),
        cmocka_unit_test(shape_parse_should_accept_commas_and_xs),
        cmocka_unit_test(shape_parse_should_reject_malformed_text),
        cmocka_unit_test(shape_numel_should_report_overflow_as_no_memory),
        cmocka_unit_test(shape_format_should_write_pytorch_list_form),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
