/* op_activation.c - ReLU, Sigmoid, Tanh (elementwise) and Softmax(dim). */
#include <math.h>
#include <stdio.h>

#include "model_impl.h"
#include "parallel.h"
#include "vmath.h"

static bool same_shape(const cnn_layer *L, const cnn_shape *in, cnn_shape *out, char *err,
                       size_t errlen) {
    (void)L;
    (void)err;
    (void)errlen;
    *out = *in;
    return true;
}

static void no_repr(const cnn_layer *L, cnn_sb *sb) {
    (void)L;
    (void)sb;
}

static size_t numel_of(const cnn_node *n) {
    size_t numel;
    cnn_shape_numel(&n->in_shape, &numel);
    return numel;
}

static void relu_repr(const cnn_layer *L, cnn_sb *sb) {
    if (L->inplace) cnn_sb_puts(sb, "inplace=True");
}

/* ReLU, Sigmoid and Tanh: vmath.c's kernels, shared with the Conv2d and
 * Linear that apply them in inference. */
static void activation_forward(const cnn_node *n, const float *x, float *y, float *work) {
    (void)work;
    cnn_vactivation_shared(n->L.op, y, x, numel_of(n));
}

/* The elementwise backward passes read the output y, as PyTorch's do. When
 * this node is the first to write its input's gradient (n->zero_din), they
 * set it instead of adding to it, and the model leaves it unzeroed
 * (.sets_dx): AlexNet's training step then skips a pass over 150 MB. */
static void relu_backward(const cnn_node *n, const float *x, const float *y, const float *dy,
                          float *dx, const void *aux, float *work) {
    (void)x;
    (void)aux;
    (void)work;
    if (!dx) return;
    const size_t N = numel_of(n);
    /* dy[i] loaded whether or not it is kept, so that the loops vectorize. */
    if (n->zero_din) {
        CNN_PARALLEL_FOR(
            N > 65536, for (size_t i = 0; i < N; i++) {
                const float g = dy[i];
                dx[i] = y[i] > 0.0f ? g : 0.0f;
            });
    } else {
        CNN_PARALLEL_FOR(
            N > 65536, for (size_t i = 0; i < N; i++) {
                const float g = dy[i];
                dx[i] += y[i] > 0.0f ? g : 0.0f;
            });
    }
}

static void sigmoid_backward(const cnn_node *n, const float *x, const float *y, const float *dy,
                             float *dx, const void *aux, float *work) {
    (void)x;
    (void)aux;
    (void)work;
    if (!dx) return;
    const size_t N = numel_of(n);
    if (n->zero_din) {
        CNN_PARALLEL_FOR(
            N > 65536, for (size_t i = 0; i < N; i++) { dx[i] = dy[i] * y[i] * (1.0f - y[i]); });
    } else {
        CNN_PARALLEL_FOR(
            N > 65536, for (size_t i = 0; i < N; i++) { dx[i] += dy[i] * y[i] * (1.0f - y[i]); });
    }
}

static void tanh_backward(const cnn_node *n, const float *x, const float *y, const float *dy,
                          float *dx, const void *aux, float *work) {
    (void)x;
    (void)aux;
    (void)work;
    if (!dx) return;
    const size_t N = numel_of(n);
    if (n->zero_din) {
        CNN_PARALLEL_FOR(
            N > 65536, for (size_t i = 0; i < N; i++) { dx[i] = dy[i] * (1.0f - y[i] * y[i]); });
    } else {
        CNN_PARALLEL_FOR(
            N > 65536, for (size_t i = 0; i < N; i++) { dx[i] += dy[i] * (1.0f - y[i] * y[i]); });
    }
}

const cnn_op_vtable cnn_op_relu = {
    .op = CNN_OP_RELU,
    .name = "ReLU",
    .infer = same_shape,
    .repr = relu_repr,
    .forward = activation_forward,
    .backward = relu_backward,
    .sets_dx = true,
};

const cnn_op_vtable cnn_op_sigmoid = {
    .op = CNN_OP_SIGMOID,
    .name = "Sigmoid",
    .infer = same_shape,
    .repr = no_repr,
    .forward = activation_forward,
    .backward = sigmoid_backward,
    .sets_dx = true,
};

const cnn_op_vtable cnn_op_tanh = {
    .op = CNN_OP_TANH,
    .name = "Tanh",
    .infer = same_shape,
    .repr = no_repr,
    .forward = activation_forward,
    .backward = tanh_backward,
    .sets_dx = true,
};

/* ---- Softmax over one dimension, max-subtracted for stability. ---- */

static bool softmax_infer(const cnn_layer *L, const cnn_shape *in, cnn_shape *out, char *err,
                          size_t errlen) {
    const int64_t nd = in->ndim ? in->ndim : 1;
    if (L->dim < -nd || L->dim >= nd) {
        snprintf(err, errlen, "dim %lld is out of range for a %d-D input (expected [%lld, %lld])",
                 (long long)L->dim, in->ndim, (long long)-nd, (long long)(nd - 1));
        return false;
    }
    *out = *in;
    return true;
}

static void softmax_repr(const cnn_layer *L, cnn_sb *sb) {
    cnn_sb_printf(sb, "dim=%lld", (long long)L->dim);
}

/* The input viewed as (outer, D, inner) around the softmax dimension D. */
static void softmax_view(const cnn_node *n, int64_t *outer, int64_t *D, int64_t *inner) {
    const cnn_shape *s = &n->in_shape;
    const int dim = (int)(n->L.dim < 0 ? n->L.dim + s->ndim : n->L.dim);
    *outer = 1;
    *inner = 1;
    *D = s->ndim ? s->dim[dim] : 1;
    for (int i = 0; i < dim; i++)
        *outer *= s->dim[i];
    for (int i = dim + 1; i < s->ndim; i++)
        *inner *= s->dim[i];
}

static void softmax_forward(const cnn_node *n, const float *x, float *y, float *work) {
    (void)work;
    int64_t outer, D, inner;
    softmax_view(n, &outer, &D, &inner);
    CNN_PARALLEL_FOR(
        outer * D * inner > 65536, for (int64_t o = 0; o < outer; o++) {
            for (int64_t in = 0; in < inner; in++) {
                const float *xp = x + o * D * inner + in;
                float *yp = y + o * D * inner + in;
                float m = -INFINITY;
                for (int64_t d = 0; d < D; d++)
                    if (xp[d * inner] > m) m = xp[d * inner];
                float sum = 0.0f;
                for (int64_t d = 0; d < D; d++) {
                    yp[d * inner] = expf(xp[d * inner] - m);
                    sum += yp[d * inner];
                }
                for (int64_t d = 0; d < D; d++)
                    yp[d * inner] /= sum;
            }
        });
}

/* dx = y * (dy - sum over D of dy*y). */
static void softmax_backward(const cnn_node *n, const float *x, const float *y, const float *dy,
                             float *dx, const void *aux, float *work) {
    (void)x;
    (void)aux;
    (void)work;
    if (!dx) return;
    int64_t outer, D, inner;
    softmax_view(n, &outer, &D, &inner);
    CNN_PARALLEL_FOR(
        outer * D * inner > 65536, for (int64_t o = 0; o < outer; o++) {
            for (int64_t in = 0; in < inner; in++) {
                const int64_t base = o * D * inner + in;
                float dot = 0.0f;
                for (int64_t d = 0; d < D; d++)
                    dot += dy[base + d * inner] * y[base + d * inner];
                for (int64_t d = 0; d < D; d++)
                    dx[base + d * inner] += y[base + d * inner] * (dy[base + d * inner] - dot);
            }
        });
}

const cnn_op_vtable cnn_op_softmax = {
    .op = CNN_OP_SOFTMAX,
    .name = "Softmax",
    .infer = softmax_infer,
    .repr = softmax_repr,
    .forward = softmax_forward,
    .backward = softmax_backward,
};
