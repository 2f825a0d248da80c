/* op_norm.c - BatchNorm2d and LocalResponseNorm. */
#include <math.h>
#include <stdio.h>

#include "model_impl.h"
#include "parallel.h"

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
    if (!cnn_infer_4d(in, err, errlen)) return false;
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
    CNN_PARALLEL_FOR(
        N * C * P > 65536, for (int64_t c = 0; c < C; c++) {
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
        });
}

static size_t bn_aux_bytes(const cnn_node *n) {
    return 2 * (size_t)n->in_shape.dim[1] * sizeof(float);
}

/* Training: normalize with the batch's mean and biased variance, keep
 * (mean, 1/sqrt(var+eps)) per channel for the backward pass, and move the
 * running statistics toward the batch's (unbiased variance), counting the
 * batch in num_batches_tracked; momentum=None averages over all batches. */
static void bn_forward_train(cnn_node *n, const float *x, float *y, void *aux, float *work,
                             cnn_rng *rng) {
    (void)work;
    (void)rng;
    const cnn_layer *L = &n->L;
    const int64_t N = n->in_shape.dim[0], C = n->in_shape.dim[1];
    const int64_t P = n->in_shape.dim[2] * n->in_shape.dim[3];
    const float *w = n->param[CNN_SLOT_WEIGHT], *b = n->param[CNN_SLOT_BIAS];
    float *rm = n->param[CNN_SLOT_RUNNING_MEAN], *rv = n->param[CNN_SLOT_RUNNING_VAR];
    float *stats = aux;
    double factor = L->momentum;
    if (*n->stats_frozen) rm = rv = NULL;
    if (rm) {
        ++*n->num_batches_tracked;
        if (L->momentum_none) factor = 1.0 / (double)*n->num_batches_tracked;
    }
    const double cnt = (double)(N * P);
    CNN_PARALLEL_FOR(
        N * C * P > 65536, for (int64_t c = 0; c < C; c++) {
            double s = 0.0, ss = 0.0;
            for (int64_t i = 0; i < N; i++)
                for (int64_t p = 0; p < P; p++)
                    s += x[(i * C + c) * P + p];
            const double mean = s / cnt;
            for (int64_t i = 0; i < N; i++)
                for (int64_t p = 0; p < P; p++) {
                    const double d = x[(i * C + c) * P + p] - mean;
                    ss += d * d;
                }
            const double var = ss / cnt, inv = 1.0 / sqrt(var + L->eps);
            stats[c] = (float)mean;
            stats[C + c] = (float)inv;
            const float scale = (float)(inv * (w ? w[c] : 1.0f));
            const float shift = (float)((b ? b[c] : 0.0f) - mean * inv * (w ? w[c] : 1.0f));
            for (int64_t i = 0; i < N; i++) {
                const float *xp = x + (i * C + c) * P;
                float *yp = y + (i * C + c) * P;
                for (int64_t p = 0; p < P; p++)
                    yp[p] = xp[p] * scale + shift;
            }
            if (rm) {
                rm[c] = (float)((1.0 - factor) * rm[c] + factor * mean);
                rv[c] = (float)((1.0 - factor) * rv[c] + factor * var * cnt / (cnt - 1.0));
            }
        });
}

/* With g = dy*w and xhat the normalized input, over the M = N*H*W values of a channel:
 * dx = inv/M * (M*g - sum(g) - xhat*sum(g*xhat)), dw += sum(dy*xhat), db += sum(dy). */
static void bn_backward(const cnn_node *n, const float *x, const float *y, const float *dy,
                        float *dx, const void *aux, float *work) {
    (void)y;
    (void)work;
    const int64_t N = n->in_shape.dim[0], C = n->in_shape.dim[1];
    const int64_t P = n->in_shape.dim[2] * n->in_shape.dim[3];
    const float *w = n->param[CNN_SLOT_WEIGHT];
    float *dw = n->grad[CNN_SLOT_WEIGHT], *db = n->grad[CNN_SLOT_BIAS];
    const float *stats = aux;
    const double M = (double)(N * P);
    CNN_PARALLEL_FOR(
        N * C * P > 65536, for (int64_t c = 0; c < C; c++) {
            const double mean = stats[c], inv = stats[C + c], wc = w ? w[c] : 1.0;
            double sdy = 0.0, sdyx = 0.0;
            for (int64_t i = 0; i < N; i++)
                for (int64_t p = 0; p < P; p++) {
                    const int64_t k = (i * C + c) * P + p;
                    sdy += dy[k];
                    sdyx += dy[k] * (x[k] - mean) * inv;
                }
            if (dw) dw[c] += (float)sdyx;
            if (db) db[c] += (float)sdy;
            if (!dx) continue;
            /* sum(g) = w*sum(dy), sum(g*xhat) = w*sum(dy*xhat) */
            const double a = wc * inv, mg = sdy / M, mgx = sdyx / M;
            for (int64_t i = 0; i < N; i++)
                for (int64_t p = 0; p < P; p++) {
                    const int64_t k = (i * C + c) * P + p;
                    const double xhat = (x[k] - mean) * inv;
                    dx[k] += (float)(a * (dy[k] - mg - xhat * mgx));
                }
        });
}

static bool bn_check_train(const cnn_node *n, char *err, size_t errlen) {
    if (n->in_shape.dim[0] * n->in_shape.dim[2] * n->in_shape.dim[3] > 1) return true;
    snprintf(err, errlen, "expects more than 1 value per channel when training");
    return false;
}

const cnn_op_vtable cnn_op_batchnorm2d = {
    .op = CNN_OP_BATCHNORM2D,
    .name = "BatchNorm2d",
    .check = channels_check,
    .params = bn_params,
    .infer = bn_infer,
    .repr = bn_repr,
    .forward = bn_forward,
    .check_train = bn_check_train,
    .aux_bytes = bn_aux_bytes,
    .forward_train = bn_forward_train,
    .backward = bn_backward,
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

/* x is (N,C,P) with P the product of the remaining dimensions. D, when not
 * NULL, keeps k + alpha/size * (window sum of x^2) for the backward pass. */
static void lrn_run(const cnn_node *n, const float *x, float *y, float *D) {
    const cnn_layer *L = &n->L;
    const int64_t N = n->in_shape.dim[0], C = n->in_shape.dim[1];
    int64_t P = 1;
    for (int i = 2; i < n->in_shape.ndim; i++)
        P *= n->in_shape.dim[i];
    const int64_t lo = L->in / 2, hi = (L->in - 1) / 2;
    const float alpha = (float)(L->alpha / (double)L->in), k = (float)L->k, beta = (float)L->beta;
    CNN_PARALLEL_FOR2(
        N * C * P > 65536, for (int64_t i = 0; i < N; i++) {
            for (int64_t c = 0; c < C; c++) {
                const int64_t c0 = c - lo < 0 ? 0 : c - lo, c1 = c + hi >= C ? C - 1 : c + hi;
                const float *xb = x + i * C * P;
                for (int64_t p = 0; p < P; p++) {
                    float s = 0.0f;
                    for (int64_t j = c0; j <= c1; j++)
                        s += xb[j * P + p] * xb[j * P + p];
                    const int64_t at = (i * C + c) * P + p;
                    const float d = k + alpha * s;
                    if (D) D[at] = d;
                    y[at] = x[at] / powf(d, beta);
                }
            }
        });
}

static void lrn_forward(const cnn_node *n, const float *x, float *y, float *work) {
    (void)work;
    lrn_run(n, x, y, NULL);
}

static size_t lrn_aux_bytes(const cnn_node *n) {
    size_t numel;
    cnn_shape_numel(&n->in_shape, &numel);
    return numel * sizeof(float);
}

static void lrn_forward_train(cnn_node *n, const float *x, float *y, void *aux, float *work,
                              cnn_rng *rng) {
    (void)work;
    (void)rng;
    lrn_run(n, x, y, aux);
}

/* y_c = x_c D_c^-beta with D_c = k + a*sum_{j in win(c)} x_j^2 (a = alpha/size), so
 * dx_j = dy_j D_j^-beta - 2*a*beta*x_j * sum_{c : j in win(c)} dy_c y_c / D_c. */
static void lrn_backward(const cnn_node *n, const float *x, const float *y, const float *dy,
                         float *dx, const void *aux, float *work) {
    (void)work;
    if (!dx) return;
    const cnn_layer *L = &n->L;
    const float *D = aux;
    const int64_t N = n->in_shape.dim[0], C = n->in_shape.dim[1];
    int64_t P = 1;
    for (int i = 2; i < n->in_shape.ndim; i++)
        P *= n->in_shape.dim[i];
    const int64_t lo = L->in / 2, hi = (L->in - 1) / 2;
    const float a2b = (float)(2.0 * L->alpha / (double)L->in * L->beta), beta = (float)L->beta;
    CNN_PARALLEL_FOR2(
        N * C * P > 65536, for (int64_t i = 0; i < N; i++) {
            for (int64_t j = 0; j < C; j++) {
                /* c's window [c-lo, c+hi] holds j exactly when c is in [j-hi, j+lo]. */
                const int64_t c0 = j - hi < 0 ? 0 : j - hi, c1 = j + lo >= C ? C - 1 : j + lo;
                const int64_t base = i * C * P;
                for (int64_t p = 0; p < P; p++) {
                    float s = 0.0f;
                    for (int64_t c = c0; c <= c1; c++) {
                        const int64_t at = base + c * P + p;
                        s += dy[at] * y[at] / D[at];
                    }
                    const int64_t at = base + j * P + p;
                    dx[at] += dy[at] / powf(D[at], beta) - a2b * x[at] * s;
                }
            }
        });
}

const cnn_op_vtable cnn_op_lrn = {
    .op = CNN_OP_LRN,
    .name = "LocalResponseNorm",
    .check = channels_check,
    .infer = lrn_infer,
    .repr = lrn_repr,
    .forward = lrn_forward,
    .aux_bytes = lrn_aux_bytes,
    .forward_train = lrn_forward_train,
    .backward = lrn_backward,
};
