/* op_reshape.c - layers that pass their input's data through unchanged in
 * inference: Flatten (a new shape) and Dropout (the identity). */
#include <stdio.h>

#include "model_impl.h"
#include "parallel.h"

/* The output shares the input's memory (is_view), so there is nothing to compute. */
static void view_forward(const cnn_node *n, const float *x, float *y, float *work) {
    (void)n;
    (void)work;
    CNN_ASSERT(x == y);
}

static bool flatten_range(const cnn_layer *L, int ndim, int *start, int *end, char *err,
                          size_t errlen) {
    const int64_t nd = ndim ? ndim : 1;
    int64_t s = L->start_dim < 0 ? L->start_dim + nd : L->start_dim;
    int64_t e = L->end_dim < 0 ? L->end_dim + nd : L->end_dim;
    if (s < 0 || s >= nd || e < 0 || e >= nd) {
        snprintf(err, errlen,
                 "start_dim %lld or end_dim %lld is out of range for a %d-D input (expected "
                 "[%lld, %lld])",
                 (long long)L->start_dim, (long long)L->end_dim, ndim, (long long)-nd,
                 (long long)(nd - 1));
        return false;
    }
    if (s > e) {
        snprintf(err, errlen, "start_dim %lld comes after end_dim %lld", (long long)L->start_dim,
                 (long long)L->end_dim);
        return false;
    }
    *start = (int)s;
    *end = (int)e;
    return true;
}

static bool flatten_infer(const cnn_layer *L, const cnn_shape *in, cnn_shape *out, char *err,
                          size_t errlen) {
    int s, e;
    if (!flatten_range(L, in->ndim, &s, &e, err, errlen)) return false;
    if (in->ndim == 0) {
        *out = cnn_shape_make(1, (int64_t[]){1});
        return true;
    }
    cnn_shape o = {0};
    for (int i = 0; i < s; i++)
        o.dim[o.ndim++] = in->dim[i];
    int64_t prod = 1;
    for (int i = s; i <= e; i++)
        prod *= in->dim[i];
    o.dim[o.ndim++] = prod;
    for (int i = e + 1; i < in->ndim; i++)
        o.dim[o.ndim++] = in->dim[i];
    *out = o;
    return true;
}

static void flatten_repr(const cnn_layer *L, cnn_sb *sb) {
    cnn_sb_printf(sb, "start_dim=%lld, end_dim=%lld", (long long)L->start_dim,
                  (long long)L->end_dim);
}

static void flatten_explain(const cnn_node *n, cnn_sb *sb) {
    int s, e;
    char err[256];
    if (n->in_shape.ndim == 0 || !flatten_range(&n->L, n->in_shape.ndim, &s, &e, err, sizeof err))
        return;
    if (s == e) return;
    cnn_sb_printf(sb, "dim %d = ", s);
    for (int i = s; i <= e; i++)
        cnn_sb_printf(sb, "%s%lld", i > s ? "*" : "", (long long)n->in_shape.dim[i]);
    cnn_sb_printf(sb, " = %lld\n", (long long)n->out_shape.dim[s]);
}

const cnn_op_vtable cnn_op_flatten = {
    .op = CNN_OP_FLATTEN,
    .name = "Flatten",
    .infer = flatten_infer,
    .repr = flatten_repr,
    .forward = view_forward,
    .explain = flatten_explain,
    .is_view = true,
    .train_view = true,
};

static bool dropout_check(const cnn_layer *L, char *err, size_t errlen) {
    if (!(L->p >= 0.0 && L->p <= 1.0)) {
        char p[32];
        cnn_format_pyfloat(p, sizeof p, L->p);
        snprintf(err, errlen, "dropout probability has to be between 0 and 1, but got %s", p);
        return false;
    }
    return true;
}

static bool dropout_infer(const cnn_layer *L, const cnn_shape *in, cnn_shape *out, char *err,
                          size_t errlen) {
    (void)L;
    (void)err;
    (void)errlen;
    *out = *in;
    return true;
}

static void dropout_repr(const cnn_layer *L, cnn_sb *sb) {
    char p[32];
    cnn_format_pyfloat(p, sizeof p, L->p);
    cnn_sb_printf(sb, "p=%s, inplace=%s", p, L->inplace ? "True" : "False");
}

static size_t dropout_aux_bytes(const cnn_node *n) {
    size_t numel;
    cnn_shape_numel(&n->out_shape, &numel);
    return numel * sizeof(float);
}

/* Elements per share of the mask; each share jumps ahead in the stream to
 * its first element. */
#define DROPOUT_CHUNK 16384

/* Training: keep each element with probability 1-p and scale it by 1/(1-p),
 * as PyTorch does; the mask (0 or the scale) is kept for the backward pass.
 * Element i draws the i-th number of the generator's stream, whichever
 * thread runs it, so a step's mask is the same on any thread count. The
 * draws are split over the threads: one after another, and with a branch
 * on each, they took 2.8 ms of AlexNet's training step at batch 64. */
static void dropout_forward_train(cnn_node *n, const float *x, float *y, void *aux, float *work,
                                  cnn_rng *rng) {
    (void)work;
    float *mask = aux;
    const int64_t N = (int64_t)(dropout_aux_bytes(n) / sizeof(float));
    const float keep = (float)(1.0 - n->L.p);
    const float scale = keep > 0.0f ? 1.0f / keep : 0.0f;
    const cnn_rng start = *rng;
    CNN_PARALLEL_FOR(
        N > DROPOUT_CHUNK, for (int64_t i0 = 0; i0 < N; i0 += DROPOUT_CHUNK) {
            cnn_rng r = start;
            cnn_rng_advance(&r, (uint64_t)i0);
            const int64_t i1 = i0 + DROPOUT_CHUNK < N ? i0 + DROPOUT_CHUNK : N;
            for (int64_t i = i0; i < i1; i++) {
                /* No branch: a coin toss mispredicts half the time. */
                mask[i] = scale * (float)(cnn_rng_uniform(&r) < keep);
                y[i] = x[i] * mask[i];
            }
        });
    cnn_rng_advance(rng, (uint64_t)N);
}

static void dropout_backward(const cnn_node *n, const float *x, const float *y, const float *dy,
                             float *dx, const void *aux, float *work) {
    (void)x;
    (void)y;
    (void)work;
    if (!dx) return;
    const float *mask = aux;
    const size_t N = dropout_aux_bytes(n) / sizeof(float);
    for (size_t i = 0; i < N; i++)
        dx[i] += dy[i] * mask[i];
}

const cnn_op_vtable cnn_op_dropout = {
    .op = CNN_OP_DROPOUT,
    .name = "Dropout",
    .check = dropout_check,
    .infer = dropout_infer,
    .repr = dropout_repr,
    .forward = view_forward,
    .is_view = true,
    .aux_bytes = dropout_aux_bytes,
    .forward_train = dropout_forward_train,
    .backward = dropout_backward,
};
