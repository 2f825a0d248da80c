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
    if (!cnn_infer_4d(in, err, errlen)) return false;
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

/* Convolution as GEMM over a chunk of B images at once: im2col lays the
 * chunk's patches side by side, col = (K, B*P) with K = C/groups*kh*kw and
 * P = oh*ow, so one SGEMM per group computes (OC/groups, B*P) outputs. Small
 * layers (LeNet's) then make one large GEMM instead of hundreds of tiny ones.
 * The chunk is as large as the workspace cap allows. */
#define CONV_WORK_CAP ((size_t)8 << 20) /* floats: 32 MiB */

typedef struct conv_dims {
    int64_t N, C, H, W, OC, oh, ow, G, Cg, OCg, K, P, chunk;
} conv_dims;

static conv_dims conv_dims_of(const cnn_node *n) {
    const cnn_layer *L = &n->L;
    conv_dims d = {.N = n->in_shape.dim[0],
                   .C = L->in,
                   .H = n->in_shape.dim[2],
                   .W = n->in_shape.dim[3],
                   .OC = L->out,
                   .oh = n->out_shape.dim[2],
                   .ow = n->out_shape.dim[3],
                   .G = L->groups};
    d.Cg = d.C / d.G;
    d.OCg = d.OC / d.G;
    d.K = d.Cg * L->kernel[0] * L->kernel[1];
    d.P = d.oh * d.ow;
    /* Per image: col (K*P), the GEMM's output or input gradient (OCg*P), and for the
     * backward pass the gradient of col (K*P). */
    const size_t per = (size_t)((2 * d.K + d.OCg) * d.P);
    d.chunk = (int64_t)(CONV_WORK_CAP / (per ? per : 1));
    if (d.chunk < 1) d.chunk = 1;
    if (d.chunk > d.N) d.chunk = d.N;
    return d;
}

static size_t conv_workspace(const cnn_node *n) {
    conv_dims d = conv_dims_of(n);
    return (size_t)(d.chunk * (d.K + d.OCg) * d.P);
}

static size_t conv_workspace_backward(const cnn_node *n) {
    conv_dims d = conv_dims_of(n);
    return (size_t)(d.chunk * (2 * d.K + d.OCg) * d.P);
}

/* The outputs ox whose input column ix = ox*s - p + kj*d falls inside [0, W):
 * [*lo, *hi), so the copy loops need no bounds test. */
static void valid_range(int64_t W, int64_t ow, int64_t s, int64_t p, int64_t off, int64_t *lo,
                        int64_t *hi) {
    /* ox*s - p + off >= 0  <=>  ox >= ceil((p - off) / s) */
    int64_t a = p - off, l = a <= 0 ? 0 : (a + s - 1) / s;
    /* ox*s - p + off <= W - 1  <=>  ox <= floor((W - 1 + p - off) / s) */
    int64_t c = W - 1 + p - off, h = c < 0 ? 0 : c / s + 1;
    *lo = l < ow ? l : ow;
    *hi = h < ow ? h : ow;
    if (*hi < *lo) *hi = *lo;
}

/* One row (c, ki, kj) of im2col: dst[oy*ow + ox] = x[c][oy*sh - ph + ki*dh][ox*sw - pw + kj*dw],
 * zero where that falls in the padding. x is (C,H,W). */
static void im2col_row(float *dst, const float *x, int64_t r, int64_t H, int64_t W,
                       const cnn_layer *L, int64_t oh, int64_t ow) {
    const int64_t kh = L->kernel[0], kw = L->kernel[1], sw = L->stride[1];
    const int64_t c = r / (kh * kw), ki = (r / kw) % kh, kj = r % kw;
    const int64_t off = kj * L->dilation[1] - L->padding[1];
    int64_t lo, hi;
    valid_range(W, ow, sw, L->padding[1], kj * L->dilation[1], &lo, &hi);
    const float *xc = x + c * H * W;
    for (int64_t oy = 0; oy < oh; oy++) {
        const int64_t iy = oy * L->stride[0] - L->padding[0] + ki * L->dilation[0];
        float *d = dst + oy * ow;
        if (iy < 0 || iy >= H) {
            memset(d, 0, (size_t)ow * sizeof(float));
            continue;
        }
        const float *xr = xc + iy * W + off;
        for (int64_t ox = 0; ox < lo; ox++)
            d[ox] = 0.0f;
        if (sw == 1)
            memcpy(d + lo, xr + lo, (size_t)(hi - lo) * sizeof(float));
        else
            for (int64_t ox = lo; ox < hi; ox++)
                d[ox] = xr[ox * sw];
        for (int64_t ox = hi; ox < ow; ox++)
            d[ox] = 0.0f;
    }
}

/* im2col of B images of group g side by side: col is (K, B*P), image b's
 * patches in columns [b*P, (b+1)*P). One parallel loop over (image, row). */
static void im2col_chunk(float *col, const float *x, const conv_dims *d, const cnn_layer *L,
                         int64_t b0, int64_t B, int64_t g) {
    const int64_t ld = B * d->P;
#pragma omp parallel for collapse(2) schedule(static) if (B * d->K * d->P > 16384)
    for (int64_t b = 0; b < B; b++)
        for (int64_t r = 0; r < d->K; r++)
            im2col_row(col + r * ld + b * d->P, x + ((b0 + b) * d->C + g * d->Cg) * d->H * d->W, r,
                       d->H, d->W, L, d->oh, d->ow);
}

/* The adjoint of im2col_chunk: dx[c][iy][ix] += every dcol entry that im2col read
 * from there. The rows of one channel of one image write the same plane, so
 * (image, channel) pairs are the unit of parallel work. */
static void col2im_chunk(float *dx, const float *dcol, const conv_dims *d, const cnn_layer *L,
                         int64_t b0, int64_t B, int64_t g) {
    const int64_t kh = L->kernel[0], kw = L->kernel[1], ld = B * d->P;
    const int64_t H = d->H, W = d->W, oh = d->oh, ow = d->ow;
#pragma omp parallel for collapse(2) schedule(static) if (B * d->K * d->P > 16384)
    for (int64_t b = 0; b < B; b++) {
        for (int64_t c = 0; c < d->Cg; c++) {
            float *dxc = dx + (((b0 + b) * d->C + g * d->Cg) + c) * H * W;
            for (int64_t ki = 0; ki < kh; ki++) {
                for (int64_t kj = 0; kj < kw; kj++) {
                    const float *src = dcol + ((c * kh + ki) * kw + kj) * ld + b * d->P;
                    const int64_t sw = L->stride[1], off = kj * L->dilation[1] - L->padding[1];
                    int64_t lo, hi;
                    valid_range(W, ow, sw, L->padding[1], kj * L->dilation[1], &lo, &hi);
                    for (int64_t oy = 0; oy < oh; oy++) {
                        const int64_t iy = oy * L->stride[0] - L->padding[0] + ki * L->dilation[0];
                        if (iy < 0 || iy >= H) continue;
                        float *dr = dxc + iy * W + off;
                        const float *sr = src + oy * ow;
                        if (sw == 1)
                            for (int64_t ox = lo; ox < hi; ox++)
                                dr[ox] += sr[ox];
                        else
                            for (int64_t ox = lo; ox < hi; ox++)
                                dr[ox * sw] += sr[ox];
                    }
                }
            }
        }
    }
}

/* x is (N,C,H,W), y is (N,OC,oh,ow), weight is (OC, C/groups, kh, kw). */
static void conv_forward(const cnn_node *n, const float *x, float *y, float *work) {
    const cnn_layer *L = &n->L;
    const conv_dims d = conv_dims_of(n);
    const float *weight = n->param[CNN_SLOT_WEIGHT], *bias = n->param[CNN_SLOT_BIAS];
    float *col = work, *out = work + d.chunk * d.K * d.P;
    for (int64_t b0 = 0; b0 < d.N; b0 += d.chunk) {
        const int64_t B = d.N - b0 < d.chunk ? d.N - b0 : d.chunk, ld = B * d.P;
        for (int64_t g = 0; g < d.G; g++) {
            im2col_chunk(col, x, &d, L, b0, B, g);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)d.OCg, (int)ld, (int)d.K,
                        1.0f, weight + g * d.OCg * d.K, (int)d.K, col, (int)ld, 0.0f, out, (int)ld);
            /* (OCg, B*P) back to NCHW, adding the bias on the way. */
#pragma omp parallel for collapse(2) schedule(static) if (d.OCg * ld > 32768)
            for (int64_t b = 0; b < B; b++)
                for (int64_t o = 0; o < d.OCg; o++) {
                    const float bo = bias ? bias[g * d.OCg + o] : 0.0f;
                    const float *src = out + o * ld + b * d.P;
                    float *dst = y + ((b0 + b) * d.OC + g * d.OCg + o) * d.P;
                    for (int64_t i = 0; i < d.P; i++)
                        dst[i] = src[i] + bo;
                }
        }
    }
}

/* Per chunk and group, with dY' = dy gathered as (OCg, B*P):
 * dW_g += dY' col^T, db += sums of dY', dcol = W_g^T dY', then col2im into dx.
 * x and dx are (N,C,H,W), dy is (N,OC,oh,ow). */
static void conv_backward(const cnn_node *n, const float *x, const float *y, const float *dy,
                          float *dx, const void *aux, float *work) {
    (void)y;
    (void)aux;
    const cnn_layer *L = &n->L;
    const conv_dims d = conv_dims_of(n);
    const float *weight = n->param[CNN_SLOT_WEIGHT];
    float *dweight = n->grad[CNN_SLOT_WEIGHT], *dbias = n->grad[CNN_SLOT_BIAS];
    float *col = work, *dyg = work + d.chunk * d.K * d.P, *dcol = dyg + d.chunk * d.OCg * d.P;
    for (int64_t b0 = 0; b0 < d.N; b0 += d.chunk) {
        const int64_t B = d.N - b0 < d.chunk ? d.N - b0 : d.chunk, ld = B * d.P;
        for (int64_t g = 0; g < d.G; g++) {
#pragma omp parallel for collapse(2) schedule(static) if (d.OCg * ld > 32768)
            for (int64_t b = 0; b < B; b++)
                for (int64_t o = 0; o < d.OCg; o++)
                    memcpy(dyg + o * ld + b * d.P, dy + ((b0 + b) * d.OC + g * d.OCg + o) * d.P,
                           (size_t)d.P * sizeof(float));
            im2col_chunk(col, x, &d, L, b0, B, g);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)d.OCg, (int)d.K, (int)ld,
                        1.0f, dyg, (int)ld, col, (int)ld, 1.0f, dweight + g * d.OCg * d.K,
                        (int)d.K);
            if (dbias) {
                for (int64_t o = 0; o < d.OCg; o++) {
                    float sum = 0.0f;
                    for (int64_t i = 0; i < ld; i++)
                        sum += dyg[o * ld + i];
                    dbias[g * d.OCg + o] += sum;
                }
            }
            if (!dx) continue;
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)d.K, (int)ld, (int)d.OCg,
                        1.0f, weight + g * d.OCg * d.K, (int)d.K, dyg, (int)ld, 0.0f, dcol,
                        (int)ld);
            col2im_chunk(dx, dcol, &d, L, b0, B, g);
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
