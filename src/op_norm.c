/* op_norm.c - BatchNorm2d and LocalResponseNorm. */
#include <math.h>
#include <stdio.h>

#include "model_impl.h"

static bool channels_check(const cnn_layer *L, char *err, size_t errlen) {
    if (L->in <= 0) {
        snprintf(err, errlen, "%s must be positive", L->op == CNN_OP_LRN ? "size" : "num_features");
        return false;
    }
    return true;
}

/* ---- BatchNorm2d ---- */

static int bn_params(const cnn_layer *L, cnn_param_spec out[CNN_MAX_PARAMS]) {
    int n = 0;
    const cnn_shape c = cnn_shape_make(1, &L->in);
    if (L->affine) {
        out[n++] = (cnn_param_spec){CNN_SLOT_WEIGHT, c};
        out[n++] = (cnn_param_spec){CNN_SLOT_BIAS, c};
    }
    if (L->track_running_stats) {
        out[n++] = (cnn_param_spec){CNN_SLOT_RUNNING_MEAN, c};
        out[n++] = (cnn_param_spec){CNN_SLOT_RUNNING_VAR, c};
        out[n++] = (cnn_param_spec){CNN_SLOT_NUM_BATCHES, cnn_shape_make(0, NULL)};
    }
    return n;
}

static bool bn_infer(const cnn_layer *L, const cnn_shape *in, cnn_shape *out, char *err,
                     size_t errlen) {
    if (in->ndim != 4) {
        snprintf(err, errlen, "expects a 4-D input [N, C, H, W], got %d-D", in->ndim);
        return false;
    }
    /* Like PyTorch, the channel count is only checked against per-channel tensors. */
    if ((L->affine || L->track_running_stats) && in->dim[1] != L->in) {
        snprintf(err, errlen, "expects %lld channels, got %lld", (long long)L->in,
                 (long long)in->dim[1]);
        return false;
    }
    /* Without running statistics the batch's own are used, even in inference. */
    if (!L->track_running_stats && in->dim[0] * in->dim[2] * in->dim[3] <= 1) {
        snprintf(err, errlen, "expects more than 1 value per channel to use batch statistics");
        return false;
    }
    *out = *in;
    return true;
}

static void bn_repr(const cnn_layer *L, cnn_sb *sb) {
    char eps[32], mom[32];
    cnn_format_pyfloat(eps, sizeof eps, L->eps);
    if (L->momentum_none)
        snprintf(mom, sizeof mom, "None");
    else
        cnn_format_pyfloat(mom, sizeof mom, L->momentum);
    cnn_sb_printf(sb, "%lld, eps=%s, momentum=%s, affine=%s, track_running_stats=%s",
                  (long long)L->in, eps, mom, L->affine ? "True" : "False",
                  L->track_running_stats ? "True" : "False");
}

/* x is (N,C,H,W). Without running statistics PyTorch normalizes with the
 * batch's own (biased) statistics even in inference. */
static void bn_forward(const cnn_node *n, const float *x, float *y, float *work) {
    (void)work;
    const cnn_layer *L = &n->L;
    const int64_t N = n->in_shape.dim[0], C = n->in_shape.dim[1];
    const int64_t P = n->in_shape.dim[2] * n->in_shape.dim[3];
    const float *w = n->param[CNN_SLOT_WEIGHT], *b = n->param[CNN_SLOT_BIAS];
    const float *rm = n->param[CNN_SLOT_RUNNING_MEAN], *rv = n->param[CNN_SLOT_RUNNING_VAR];
#pragma omp parallel for schedule(static) if (N * C * P > 65536)
    for (int64_t c = 0; c < C; c++) {
        double mean, var;
        if (rm) {
            mean = rm[c];
            var = rv[c];
        } else {
            double s = 0.0, ss = 0.0;
            for (int64_t i = 0; i < N; i++)
                for (int64_t p = 0; p < P; p++)
                    s += x[(i * C + c) * P + p];
            const double cnt = (double)(N * P);
            mean = cnt > 0 ? s / cnt : 0.0;
            for (int64_t i = 0; i < N; i++)
                for (int64_t p = 0; p < P; p++) {
                    const double d = x[(i * C + c) * P + p] - mean;
                    ss += d * d;
                }
            var = cnt > 0 ? ss / cnt : 0.0;
        }
        const double inv = 1.0 / sqrt(var + L->eps);
        const float scale = (float)(inv * (w ? w[c] : 1.0f));
        const float shift = (float)((b ? b[c] : 0.0f) - mean * inv * (w ? w[c] : 1.0f));
        for (int64_t i = 0; i < N; i++) {
            const float *xp = x + (i * C + c) * P;
            float *yp = y + (i * C + c) * P;
            for (int64_t p = 0; p < P; p++)
                yp[p] = xp[p] * scale + shift;
        }
    }
}

const cnn_op_vtable cnn_op_batchnorm2d = {
    .op = CNN_OP_BATCHNORM2D,
    .name = "BatchNorm2d",
    .check = channels_check,
    .params = bn_params,
    .infer = bn_infer,
    .repr = bn_repr,
    .forward = bn_forward,
};

/* ---- LocalResponseNorm: y = x / (k + alpha/size * sum of x^2 over the channel window)^beta,
 * the window [c - size/2, c + (size-1)/2] clipped to the channels, as PyTorch pads with zeros. */

static bool lrn_infer(const cnn_layer *L, const cnn_shape *in, cnn_shape *out, char *err,
                      size_t errlen) {
    (void)L;
    if (in->ndim < 3) {
        snprintf(err, errlen, "expects a 3-D or higher input [N, C, ...], got %d-D", in->ndim);
        return false;
    }
    *out = *in;
    return true;
}

static void lrn_repr(const cnn_layer *L, cnn_sb *sb) {
    char a[32], b[32], k[32];
    cnn_format_pyfloat(a, sizeof a, L->alpha);
    cnn_format_pyfloat(b, sizeof b, L->beta);
    cnn_format_pyfloat(k, sizeof k, L->k);
    cnn_sb_printf(sb, "%lld, alpha=%s, beta=%s, k=%s", (long long)L->in, a, b, k);
}

/* x is (N,C,P) with P the product of the remaining dimensions. */
static void lrn_forward(const cnn_node *n, const float *x, float *y, float *work) {
    (void)work;
    const cnn_layer *L = &n->L;
    const int64_t N = n->in_shape.dim[0], C = n->in_shape.dim[1];
    int64_t P = 1;
    for (int i = 2; i < n->in_shape.ndim; i++)
        P *= n->in_shape.dim[i];
    const int64_t lo = L->in / 2, hi = (L->in - 1) / 2;
    const float alpha = (float)(L->alpha / (double)L->in), k = (float)L->k, beta = (float)L->beta;
#pragma omp parallel for collapse(2) schedule(static) if (N * C * P > 65536)
    for (int64_t i = 0; i < N; i++) {
        for (int64_t c = 0; c < C; c++) {
            const int64_t c0 = c - lo < 0 ? 0 : c - lo, c1 = c + hi >= C ? C - 1 : c + hi;
            const float *xb = x + i * C * P;
            float *yp = y + (i * C + c) * P;
            for (int64_t p = 0; p < P; p++) {
                float s = 0.0f;
                for (int64_t j = c0; j <= c1; j++)
                    s += xb[j * P + p] * xb[j * P + p];
                yp[p] = xb[c * P + p] / powf(k + alpha * s, beta);
            }
        }
    }
}

const cnn_op_vtable cnn_op_lrn = {
    .op = CNN_OP_LRN,
    .name = "LocalResponseNorm",
    .check = channels_check,
    .infer = lrn_infer,
    .repr = lrn_repr,
    .forward = lrn_forward,
};
