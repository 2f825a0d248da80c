/* op_linear.c - Linear: y = x W^T + b over the last dimension: OpenBLAS, or
 * cnnkit's dot products for a few rows through small weights. */
#include <cblas.h>
#include <omp.h>
#include <stdio.h>

#include "gemm.h"
#include "model_impl.h"
#include "vmath.h"

static bool linear_check(const cnn_layer *L, char *err, size_t errlen) {
    if (L->in <= 0 || L->out <= 0) {
        snprintf(err, errlen, "in_features and out_features must be positive");
        return false;
    }
    return true;
}

static int linear_params(const cnn_layer *L, cnn_param_spec out[CNN_MAX_PARAMS]) {
    int64_t w[2] = {L->out, L->in};
    out[0] = (cnn_param_spec){CNN_SLOT_WEIGHT, cnn_shape_make(2, w)};
    if (!L->bias) return 1;
    out[1] = (cnn_param_spec){CNN_SLOT_BIAS, cnn_shape_make(1, &L->out)};
    return 2;
}

static bool linear_infer(const cnn_layer *L, const cnn_shape *in, cnn_shape *out, char *err,
                         size_t errlen) {
    if (in->ndim < 1) {
        snprintf(err, errlen, "expects at least a 1-D input, got a scalar");
        return false;
    }
    if (in->dim[in->ndim - 1] != L->in) {
        snprintf(err, errlen, "expects %lld input features, got %lld", (long long)L->in,
                 (long long)in->dim[in->ndim - 1]);
        return false;
    }
    *out = *in;
    out->dim[out->ndim - 1] = L->out;
    return true;
}

static void linear_repr(const cnn_layer *L, cnn_sb *sb) {
    cnn_sb_printf(sb, "in_features=%lld, out_features=%lld, bias=%s", (long long)L->in,
                  (long long)L->out, L->bias ? "True" : "False");
}

/* Up to this many rows, cnn_gemm_nt (dot products on one thread) beats
 * OpenBLAS on layers under a million weights. LeNet's 400 -> 120 on Zen 5:
 * 6 us against 15 at 4 rows, 25 against 32 at 16, even at 32, and at 64
 * OpenBLAS on two threads takes half the time. */
#define LINEAR_DOT_ROWS 16

/* Up to this many weights, each thread runs its own rows through all of
 * them (they stay in its L2); past it, OpenBLAS shares one product out, each
 * thread reading only a part of the weights: AlexNet's 6400 -> 4096 layer at
 * batch 64 took 20 ms with every thread reading all of them, 14 shared out. */
#define LINEAR_OWN_ROWS_WEIGHTS ((int64_t)1 << 18)

/* x is (rows, in), y is (rows, out), weight is (out, in). */
static void linear_forward(const cnn_node *n, const float *x, float *y, float *work) {
    (void)work;
    const cnn_layer *L = &n->L;
    size_t numel;
    cnn_shape_numel(&n->in_shape, &numel);
    const int64_t rows = (int64_t)numel / L->in, in = L->in, out = L->out;
    const float *w = n->param[CNN_SLOT_WEIGHT], *bias = n->param[CNN_SLOT_BIAS];
    if (rows <= LINEAR_DOT_ROWS && in * out < ((int64_t)1 << 20)) {
        /* A few rows through small weights are a few hundred dot products:
         * OpenBLAS's SGEMM spends 13 us on one row through 400 -> 120, these
         * 1.8 us. LeNet at batch 1 went from 24k to 43k images/s. */
        cnn_gemm_nt((int)rows, (int)out, (int)in, x, (int)in, w, (int)in, y, (int)out, bias);
        if (n->has_act) /* the activation after it (see model_impl.h) */
            cnn_vactivation_shared(n->act, y, y, (size_t)(rows * out));
    } else if (omp_get_max_threads() < 2 || rows < 2 * omp_get_max_threads() ||
               in * out > LINEAR_OWN_ROWS_WEIGHTS) {
        if (bias) {
#pragma omp parallel for schedule(static) if (rows * out > 32768)
            for (int64_t r = 0; r < rows; r++)
                for (int64_t o = 0; o < out; o++)
                    y[r * out + o] = bias[o];
        }
        /* One row through large weights is a matrix-vector product: OpenBLAS's
         * SGEMV streams them on every thread, 2.6x faster than its SGEMM with
         * one row (AlexNet's 6400 -> 4096 layer at batch 1: 2.3 ms against
         * 6.1 ms; AlexNet at batch 1 went from 44 to 63 images/s). */
        if (rows == 1)
            cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)out, (int)in, 1.0f, w, (int)in, x, 1,
                        bias ? 1.0f : 0.0f, y, 1);
        else
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)rows, (int)out, (int)in, 1.0f,
                        x, (int)in, w, (int)in, bias ? 1.0f : 0.0f, y, (int)out);
        if (n->has_act) /* the activation after it (see model_impl.h) */
            cnn_vactivation_shared(n->act, y, y, (size_t)(rows * out));
    } else {
        /* Each thread its own rows through all the weights, by OpenBLAS on
         * that thread (it runs on one inside a parallel region), and the
         * activation while they are in cache. */
#pragma omp parallel
        {
            const int t = omp_get_thread_num(), of = omp_get_num_threads();
            const int64_t r0 = t * rows / of, nr = (t + 1) * rows / of - r0;
            float *yr = y + r0 * out;
            if (bias)
                for (int64_t r = 0; r < nr; r++)
                    for (int64_t o = 0; o < out; o++)
                        yr[r * out + o] = bias[o];
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nr, (int)out, (int)in, 1.0f,
                        x + r0 * in, (int)in, w, (int)in, bias ? 1.0f : 0.0f, yr, (int)out);
            if (n->has_act) /* the activation after it (see model_impl.h) */
                cnn_vactivation(n->act, yr, yr, (size_t)(nr * out));
        }
    }
}

/* Columns [c0, c1) of `in` for part i of parts, in steps of 16 floats (64
 * bytes: where rows are a multiple of 16 floats, as LeNet's 400, no two
 * threads write one cache line). */
static void column_block(int64_t in, int i, int parts, int64_t *c0, int64_t *c1) {
    *c0 = i * in / parts / 16 * 16;
    *c1 = i + 1 == parts ? in : (i + 1) * in / parts / 16 * 16;
}

/* dW += dy^T x, db += column sums of dy, dx += dy W. The two products have
 * the same multiply-adds (rows * in * out): for small weights on two threads
 * or more, half the threads take dW and the others dx, each a block of
 * columns by OpenBLAS on its own thread. LeNet's 400 -> 120 layer at batch
 * 256 on two threads took 0.24 ms with each product shared out by OpenBLAS,
 * 0.175 side by side; its forward pass 0.19 ms, 0.125 by rows per thread.
 * AlexNet's large layers showed no difference. */
static void linear_backward(const cnn_node *n, const float *x, const float *y, const float *dy,
                            float *dx, const void *aux, float *work) {
    (void)y;
    (void)aux;
    (void)work;
    const cnn_layer *L = &n->L;
    size_t numel;
    cnn_shape_numel(&n->in_shape, &numel);
    const int64_t rows = (int64_t)numel / L->in, in = L->in, out = L->out;
    const float *w = n->param[CNN_SLOT_WEIGHT];
    float *dweight = n->grad[CNN_SLOT_WEIGHT], *dbias = n->grad[CNN_SLOT_BIAS];
    if (dbias) {
        for (int64_t r = 0; r < rows; r++)
            for (int64_t o = 0; o < out; o++)
                dbias[o] += dy[r * out + o];
    }
    const int threads =
        dx && in >= 32 && in * out <= LINEAR_OWN_ROWS_WEIGHTS ? omp_get_max_threads() : 1;
    if (threads < 2) {
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)out, (int)in, (int)rows, 1.0f, dy,
                    (int)out, x, (int)in, 1.0f, dweight, (int)in);
        if (dx)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)rows, (int)in, (int)out,
                        1.0f, dy, (int)out, w, (int)in, 1.0f, dx, (int)in);
        return;
    }
#pragma omp parallel num_threads(threads)
    {
        const int t = omp_get_thread_num(), of = omp_get_num_threads(), half = of / 2;
        int64_t c0, c1;
        if (of < 2) {
            c0 = 0, c1 = in;
        } else if (t < half) {
            column_block(in, t, half, &c0, &c1);
        } else {
            column_block(in, t - half, of - half, &c0, &c1);
        }
        /* A part may be empty: more threads than blocks of 16 columns. */
        if (c1 > c0 && (of < 2 || t < half))
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)out, (int)(c1 - c0),
                        (int)rows, 1.0f, dy, (int)out, x + c0, (int)in, 1.0f, dweight + c0,
                        (int)in);
        if (c1 > c0 && (of < 2 || t >= half))
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)rows, (int)(c1 - c0),
                        (int)out, 1.0f, dy, (int)out, w + c0, (int)in, 1.0f, dx + c0, (int)in);
    }
}

const cnn_op_vtable cnn_op_linear = {
    .op = CNN_OP_LINEAR,
    .name = "Linear",
    .check = linear_check,
    .params = linear_params,
    .infer = linear_infer,
    .repr = linear_repr,
    .forward = linear_forward,
    .backward = linear_backward,
};
