/* op_conv2d.c - Conv2d: im2col, then one SGEMM per image and group through CBLAS. */
#include <cblas.h>
#include <stdio.h>
#include <string.h>

#include "model_impl.h"

static bool conv_check(const cnn_layer *L, char *err, size_t errlen) {
    if (L->in <= 0 || L->out <= 0) {
        snprintf(err, errlen, "in_channels and out_channels must be positive");
        return false;
    }
    for (int i = 0; i < 2; i++) {
        if (L->kernel[i] <= 0 || L->stride[i] <= 0 || L->dilation[i] <= 0 || L->padding[i] < 0) {
            snprintf(err, errlen,
                     "kernel_size, stride and dilation must be positive and padding non-negative");
            return false;
        }
    }
    if (L->groups <= 0) {
        snprintf(err, errlen, "groups must be a positive integer");
        return false;
    }
    if (L->in % L->groups != 0) {
        snprintf(err, errlen, "in_channels must be divisible by groups");
        return false;
    }
    if (L->out % L->groups != 0) {
        snprintf(err, errlen, "out_channels must be divisible by groups");
        return false;
    }
    return true;
}

static int conv_params(const cnn_layer *L, cnn_param_spec out[CNN_MAX_PARAMS]) {
    int64_t w[4] = {L->out, L->in / L->groups, L->kernel[0], L->kernel[1]};
    out[0] = (cnn_param_spec){CNN_SLOT_WEIGHT, cnn_shape_make(4, w)};
    if (!L->bias) return 1;
    out[1] = (cnn_param_spec){CNN_SLOT_BIAS, cnn_shape_make(1, &L->out)};
    return 2;
}

static bool conv_infer(const cnn_layer *L, const cnn_shape *in, cnn_shape *out, char *err,
                       size_t errlen) {
    if (in->ndim != 4) {
        snprintf(err, errlen, "expects a 4-D input [N, C, H, W], got %d-D", in->ndim);
        return false;
    }
    if (in->dim[1] != L->in) {
        snprintf(err, errlen, "expects %lld input channels, got %lld", (long long)L->in,
                 (long long)in->dim[1]);
        return false;
    }
    int64_t ek[2], padded[2];
    for (int i = 0; i < 2; i++) {
        ek[i] = L->dilation[i] * (L->kernel[i] - 1) + 1;
        padded[i] = in->dim[2 + i] + 2 * L->padding[i];
    }
    if (ek[0] > padded[0] || ek[1] > padded[1]) {
        snprintf(err, errlen,
                 "kernel %lldx%lld (with dilation %lldx%lld) is larger than the padded input "
                 "%lldx%lld",
                 (long long)L->kernel[0], (long long)L->kernel[1], (long long)ek[0],
                 (long long)ek[1], (long long)padded[0], (long long)padded[1]);
        return false;
    }
    *out = *in;
    out->dim[1] = L->out;
    for (int i = 0; i < 2; i++)
        out->dim[2 + i] = (padded[i] - ek[i]) / L->stride[i] + 1;
    return true;
}

static void conv_repr(const cnn_layer *L, cnn_sb *sb) {
    cnn_sb_printf(sb, "%lld, %lld, kernel_size=", (long long)L->in, (long long)L->out);
    cnn_repr_pair(sb, L->kernel, true);
    cnn_sb_puts(sb, ", stride=");
    cnn_repr_pair(sb, L->stride, true);
    if (L->padding[0] || L->padding[1]) {
        cnn_sb_puts(sb, ", padding=");
        cnn_repr_pair(sb, L->padding, true);
    }
    if (L->dilation[0] != 1 || L->dilation[1] != 1) {
        cnn_sb_puts(sb, ", dilation=");
        cnn_repr_pair(sb, L->dilation, true);
    }
    if (L->groups != 1) cnn_sb_printf(sb, ", groups=%lld", (long long)L->groups);
    if (!L->bias) cnn_sb_puts(sb, ", bias=False");
}

static bool conv_is_pointwise(const cnn_layer *L) {
    return L->kernel[0] == 1 && L->kernel[1] == 1 && L->stride[0] == 1 && L->stride[1] == 1 &&
           L->padding[0] == 0 && L->padding[1] == 0;
}

static size_t conv_workspace(const cnn_node *n) {
    const cnn_layer *L = &n->L;
    if (conv_is_pointwise(L)) return 0;
    return (size_t)(L->in / L->groups) * (size_t)(L->kernel[0] * L->kernel[1]) *
           (size_t)(n->out_shape.dim[2] * n->out_shape.dim[3]);
}

/* col is (C*kh*kw, oh*ow): row (c, ki, kj) holds x[c][oy*sh - ph + ki*dh][ox*sw - pw + kj*dw],
 * zero where that falls in the padding. x is (C,H,W). */
static void im2col(float *col, const float *x, int64_t C, int64_t H, int64_t W, const cnn_layer *L,
                   int64_t oh, int64_t ow) {
    const int64_t kh = L->kernel[0], kw = L->kernel[1];
    const int64_t rows = C * kh * kw;
#pragma omp parallel for schedule(static) if (rows * oh * ow > 32768)
    for (int64_t r = 0; r < rows; r++) {
        const int64_t c = r / (kh * kw), ki = (r / kw) % kh, kj = r % kw;
        const float *xc = x + c * H * W;
        float *dst = col + r * oh * ow;
        for (int64_t oy = 0; oy < oh; oy++) {
            const int64_t iy = oy * L->stride[0] - L->padding[0] + ki * L->dilation[0];
            float *d = dst + oy * ow;
            if (iy < 0 || iy >= H) {
                memset(d, 0, (size_t)ow * sizeof(float));
                continue;
            }
            const float *xr = xc + iy * W;
            for (int64_t ox = 0; ox < ow; ox++) {
                const int64_t ix = ox * L->stride[1] - L->padding[1] + kj * L->dilation[1];
                d[ox] = (ix >= 0 && ix < W) ? xr[ix] : 0.0f;
            }
        }
    }
}

/* x is (N,C,H,W), y is (N,OC,oh,ow), weight is (OC, C/groups, kh, kw). */
static void conv_forward(const cnn_node *n, const float *x, float *y, float *work) {
    const cnn_layer *L = &n->L;
    const int64_t N = n->in_shape.dim[0], C = L->in, H = n->in_shape.dim[2], W = n->in_shape.dim[3];
    const int64_t OC = L->out, oh = n->out_shape.dim[2], ow = n->out_shape.dim[3];
    const int64_t G = L->groups, Cg = C / G, OCg = OC / G;
    const int64_t K = Cg * L->kernel[0] * L->kernel[1], P = oh * ow;
    const float *weight = n->param[CNN_SLOT_WEIGHT], *bias = n->param[CNN_SLOT_BIAS];
    const bool pointwise = conv_is_pointwise(L);
    for (int64_t b = 0; b < N; b++) {
        for (int64_t g = 0; g < G; g++) {
            const float *xg = x + (b * C + g * Cg) * H * W;
            const float *col = xg;
            if (!pointwise) {
                im2col(work, xg, Cg, H, W, L, oh, ow);
                col = work;
            }
            float *yg = y + (b * OC + g * OCg) * P;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)OCg, (int)P, (int)K, 1.0f,
                        weight + g * OCg * K, (int)K, col, (int)P, 0.0f, yg, (int)P);
        }
        if (bias) {
            float *yb = y + b * OC * P;
#pragma omp parallel for schedule(static) if (OC * P > 32768)
            for (int64_t o = 0; o < OC; o++)
                for (int64_t i = 0; i < P; i++)
                    yb[o * P + i] += bias[o];
        }
    }
}

static size_t conv_workspace_backward(const cnn_node *n) { return 2 * conv_workspace(n); }

/* The adjoint of im2col: dx[c][iy][ix] += every dcol entry that im2col read from there.
 * Rows of one channel write the same plane, so channels are the unit of parallel work. */
static void col2im_add(float *dx, const float *dcol, int64_t C, int64_t H, int64_t W,
                       const cnn_layer *L, int64_t oh, int64_t ow) {
    const int64_t kh = L->kernel[0], kw = L->kernel[1];
#pragma omp parallel for schedule(static) if (C * kh * kw * oh * ow > 32768)
    for (int64_t c = 0; c < C; c++) {
        float *dxc = dx + c * H * W;
        for (int64_t ki = 0; ki < kh; ki++) {
            for (int64_t kj = 0; kj < kw; kj++) {
                const float *src = dcol + ((c * kh + ki) * kw + kj) * oh * ow;
                for (int64_t oy = 0; oy < oh; oy++) {
                    const int64_t iy = oy * L->stride[0] - L->padding[0] + ki * L->dilation[0];
                    if (iy < 0 || iy >= H) continue;
                    float *dr = dxc + iy * W;
                    const float *s = src + oy * ow;
                    for (int64_t ox = 0; ox < ow; ox++) {
                        const int64_t ix = ox * L->stride[1] - L->padding[1] + kj * L->dilation[1];
                        if (ix >= 0 && ix < W) dr[ix] += s[ox];
                    }
                }
            }
        }
    }
}

/* dW_g += dY_g col^T, db += sum of dY over positions, dcol = W_g^T dY_g then col2im into dx.
 * x and dx are (N,C,H,W), dy is (N,OC,oh,ow). */
static void conv_backward(const cnn_node *n, const float *x, const float *y, const float *dy,
                          float *dx, const void *aux, float *work) {
    (void)y;
    (void)aux;
    const cnn_layer *L = &n->L;
    const int64_t N = n->in_shape.dim[0], C = L->in, H = n->in_shape.dim[2], W = n->in_shape.dim[3];
    const int64_t OC = L->out, oh = n->out_shape.dim[2], ow = n->out_shape.dim[3];
    const int64_t G = L->groups, Cg = C / G, OCg = OC / G;
    const int64_t K = Cg * L->kernel[0] * L->kernel[1], P = oh * ow;
    const float *weight = n->param[CNN_SLOT_WEIGHT];
    float *dweight = n->grad[CNN_SLOT_WEIGHT], *dbias = n->grad[CNN_SLOT_BIAS];
    const bool pointwise = conv_is_pointwise(L);
    float *col = work, *dcol = work + K * P;
    for (int64_t b = 0; b < N; b++) {
        for (int64_t g = 0; g < G; g++) {
            const float *xg = x + (b * C + g * Cg) * H * W;
            const float *dyg = dy + (b * OC + g * OCg) * P;
            const float *cg = xg;
            if (!pointwise) {
                im2col(col, xg, Cg, H, W, L, oh, ow);
                cg = col;
            }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)OCg, (int)K, (int)P, 1.0f,
                        dyg, (int)P, cg, (int)P, 1.0f, dweight + g * OCg * K, (int)K);
            if (!dx) continue;
            float *dxg = dx + (b * C + g * Cg) * H * W;
            float *dst = pointwise ? dxg : dcol;
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)K, (int)P, (int)OCg, 1.0f,
                        weight + g * OCg * K, (int)K, dyg, (int)P, pointwise ? 1.0f : 0.0f, dst,
                        (int)P);
            if (!pointwise) col2im_add(dxg, dcol, Cg, H, W, L, oh, ow);
        }
        if (dbias) {
            const float *dyb = dy + b * OC * P;
            for (int64_t o = 0; o < OC; o++) {
                float s = 0.0f;
                for (int64_t i = 0; i < P; i++)
                    s += dyb[o * P + i];
                dbias[o] += s;
            }
        }
    }
}

static void conv_explain(const cnn_node *n, cnn_sb *sb) {
    const cnn_layer *L = &n->L;
    cnn_explain_window(sb, "h", n->in_shape.dim[2], L->kernel[0], L->stride[0], L->padding[0],
                       L->dilation[0], false, true);
    cnn_explain_window(sb, "w", n->in_shape.dim[3], L->kernel[1], L->stride[1], L->padding[1],
                       L->dilation[1], false, true);
}

const cnn_op_vtable cnn_op_conv2d = {
    .op = CNN_OP_CONV2D,
    .name = "Conv2d",
    .check = conv_check,
    .params = conv_params,
    .infer = conv_infer,
    .repr = conv_repr,
    .workspace = conv_workspace,
    .forward = conv_forward,
    .explain = conv_explain,
    .backward = conv_backward,
    .workspace_backward = conv_workspace_backward,
};
