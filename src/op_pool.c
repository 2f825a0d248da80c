/* op_pool.c - MaxPool2d, AvgPool2d and AdaptiveAvgPool2d, one (H,W) plane per OpenMP task. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "lanes.h"
#include "model_impl.h"
#include "parallel.h"
#include "vmath.h"

static bool pool_check(const cnn_layer *L, char *err, size_t errlen) {
    for (int i = 0; i < 2; i++) {
        if (L->kernel[i] <= 0 || L->stride[i] <= 0 || L->dilation[i] <= 0 || L->padding[i] < 0) {
            snprintf(err, errlen,
                     "kernel_size, stride and dilation must be positive and padding non-negative");
            return false;
        }
        /* PyTorch checks padding against half the kernel, not the dilated kernel. */
        if (L->padding[i] > L->kernel[i] / 2) {
            snprintf(err, errlen,
                     "pad should be at most half of kernel size, but got pad=%lld and "
                     "kernel_size=%lld",
                     (long long)L->padding[i], (long long)L->kernel[i]);
            return false;
        }
    }
    if (L->op == CNN_OP_AVGPOOL2D && (L->dilation[0] != 1 || L->dilation[1] != 1)) {
        snprintf(err, errlen, "AvgPool2d has no dilation");
        return false;
    }
    return true;
}

static bool pool_infer(const cnn_layer *L, const cnn_shape *in, cnn_shape *out, char *err,
                       size_t errlen) {
    if (!cnn_infer_4d(in, err, errlen)) return false;
    int64_t o[2];
    for (int i = 0; i < 2; i++)
        o[i] = cnn_pool_out_size(in->dim[2 + i], L->kernel[i], L->stride[i], L->padding[i],
                                 L->dilation[i], L->ceil_mode);
    if (o[0] < 1 || o[1] < 1) {
        snprintf(err, errlen,
                 "output size %lldx%lld is too small: the %lldx%lld window does not fit the "
                 "input %lldx%lld with padding %lldx%lld",
                 (long long)o[0], (long long)o[1], (long long)L->kernel[0], (long long)L->kernel[1],
                 (long long)in->dim[2], (long long)in->dim[3], (long long)L->padding[0],
                 (long long)L->padding[1]);
        return false;
    }
    *out = *in;
    out->dim[2] = o[0];
    out->dim[3] = o[1];
    return true;
}

static void maxpool_repr(const cnn_layer *L, cnn_sb *sb) {
    cnn_sb_puts(sb, "kernel_size=");
    cnn_repr_pair(sb, L->kernel, L->kernel_tuple);
    cnn_sb_puts(sb, ", stride=");
    cnn_repr_pair(sb, L->stride, L->stride_tuple);
    cnn_sb_puts(sb, ", padding=");
    cnn_repr_pair(sb, L->padding, L->padding_tuple);
    cnn_sb_puts(sb, ", dilation=");
    cnn_repr_pair(sb, L->dilation, L->dilation_tuple);
    cnn_sb_printf(sb, ", ceil_mode=%s", L->ceil_mode ? "True" : "False");
}

/* PyTorch prints neither ceil_mode nor count_include_pad for AvgPool2d. */
static void avgpool_repr(const cnn_layer *L, cnn_sb *sb) {
    cnn_sb_puts(sb, "kernel_size=");
    cnn_repr_pair(sb, L->kernel, L->kernel_tuple);
    cnn_sb_puts(sb, ", stride=");
    cnn_repr_pair(sb, L->stride, L->stride_tuple);
    cnn_sb_puts(sb, ", padding=");
    cnn_repr_pair(sb, L->padding, L->padding_tuple);
}

static void maxpool_run(const cnn_node *n, const float *x, float *y, int32_t *arg);

/* x is (N,C,H,W), y is (N,C,oh,ow). NaN wins, as in PyTorch. */
static void maxpool_forward(const cnn_node *n, const float *x, float *y, float *work) {
    (void)work;
    maxpool_run(n, x, y, NULL);
}

static size_t maxpool_aux_bytes(const cnn_node *n) {
    size_t numel;
    cnn_shape_numel(&n->out_shape, &numel);
    return numel * sizeof(int32_t);
}

/* The forward pass; arg, when not NULL, keeps each window's argmax as an
 * index into the input plane. PyTorch's rule: scanning the window row by
 * row, a value replaces the maximum when it is greater or NaN, so the first
 * maximum wins, or the last NaN (checked against python3-torch 1.13). */
static void maxpool_run(const cnn_node *n, const float *x, float *y, int32_t *arg) {
    const cnn_layer *L = &n->L;
    const int64_t planes = n->in_shape.dim[0] * n->in_shape.dim[1];
    const int64_t H = n->in_shape.dim[2], W = n->in_shape.dim[3];
    const int64_t oh = n->out_shape.dim[2], ow = n->out_shape.dim[3];
    /* Every window inside the plane (AlexNet's three pools): the vector kernel. */
    if (L->padding[0] == 0 && L->padding[1] == 0 && L->dilation[0] == 1 && L->dilation[1] == 1 &&
        (oh - 1) * L->stride[0] + L->kernel[0] <= H &&
        (ow - 1) * L->stride[1] + L->kernel[1] <= W && H * W <= INT32_MAX) {
        CNN_PARALLEL_FOR(
            planes * oh * ow > 16384, for (int64_t pl = 0; pl < planes; pl++) {
                cnn_vmaxpool_plane(y + pl * oh * ow, arg ? arg + pl * oh * ow : NULL,
                                   x + pl * H * W, H, W, L->kernel[0], L->kernel[1], L->stride[0],
                                   L->stride[1], oh, ow);
            });
        return;
    }
    CNN_PARALLEL_FOR(
        planes * oh * ow > 16384, for (int64_t pl = 0; pl < planes; pl++) {
            const float *xp = x + pl * H * W;
            for (int64_t oy = 0; oy < oh; oy++) {
                const int64_t y0 = oy * L->stride[0] - L->padding[0];
                for (int64_t ox = 0; ox < ow; ox++) {
                    const int64_t x0 = ox * L->stride[1] - L->padding[1];
                    float m = -INFINITY;
                    int64_t best = -1;
                    for (int64_t i = 0; i < L->kernel[0]; i++) {
                        const int64_t iy = y0 + i * L->dilation[0];
                        if (iy < 0 || iy >= H) continue;
                        for (int64_t j = 0; j < L->kernel[1]; j++) {
                            const int64_t ix = x0 + j * L->dilation[1];
                            if (ix < 0 || ix >= W) continue;
                            const float v = xp[iy * W + ix];
                            if (v > m || isnan(v) || best < 0) {
                                m = v;
                                best = iy * W + ix;
                            }
                        }
                    }
                    y[(pl * oh + oy) * ow + ox] = m;
                    if (arg) arg[(pl * oh + oy) * ow + ox] = (int32_t)best;
                }
            }
        });
}

static void maxpool_forward_train(cnn_node *n, const float *x, float *y, void *aux, float *work,
                                  cnn_rng *rng) {
    (void)work;
    (void)rng;
    maxpool_run(n, x, y, aux);
}

/* With bwd_act_fused (a ReLU before the pool), x is the ReLU's output and
 * dx its input's gradient: each plane zeroed (when the ReLU would set it)
 * and the gradient of the windows' maxima added where the ReLU passed them,
 * while the plane is in cache; no zeroed intermediate gradient and no
 * second pass over it. When the ReLU sets its gradient, the same bits as
 * the two passes: each term passes whole or not at all. AlexNet's training
 * step at batch 64, best of four alternating runs: 105.1 -> 108.1 images/s
 * on 2 threads, 57.9 -> 59.0 on 1. */
static void maxpool_backward(const cnn_node *n, const float *x, const float *y, const float *dy,
                             float *dx, const void *aux, float *work) {
    (void)y;
    (void)work;
    if (!dx) return;
    const int32_t *arg = aux;
    const int64_t planes = n->in_shape.dim[0] * n->in_shape.dim[1];
    const int64_t HW = n->in_shape.dim[2] * n->in_shape.dim[3];
    const int64_t P = n->out_shape.dim[2] * n->out_shape.dim[3];
    if (n->bwd_act_fused) {
        CNN_PARALLEL_FOR(
            planes * P > 16384, for (int64_t pl = 0; pl < planes; pl++) {
                float *d = dx + pl * HW;
                const float *xp = x + pl * HW, *g = dy + pl * P;
                const int32_t *a = arg + pl * P;
                if (n->bwd_act_sets) memset(d, 0, (size_t)HW * sizeof(float));
                for (int64_t i = 0; i < P; i++)
                    if (a[i] >= 0 && xp[a[i]] > 0.0f) d[a[i]] += g[i];
            });
        return;
    }
    CNN_PARALLEL_FOR(
        planes * P > 16384, for (int64_t pl = 0; pl < planes; pl++) {
            for (int64_t i = 0; i < P; i++)
                if (arg[pl * P + i] >= 0) dx[pl * HW + arg[pl * P + i]] += dy[pl * P + i];
        });
}

/* One window of AvgPool2d: its clipped bounds and PyTorch's divisor. */
typedef struct avg_window {
    int64_t ys, ye, xs, xe, div;
} avg_window;

static avg_window avg_window_at(const cnn_layer *L, int64_t H, int64_t W, int64_t oy, int64_t ox) {
    avg_window w;
    const int64_t ph = L->padding[0], pw = L->padding[1];
    w.ys = oy * L->stride[0] - ph;
    w.ye = w.ys + L->kernel[0];
    if (w.ye > H + ph) w.ye = H + ph;
    w.xs = ox * L->stride[1] - pw;
    w.xe = w.xs + L->kernel[1];
    if (w.xe > W + pw) w.xe = W + pw;
    const int64_t padded = (w.ye - w.ys) * (w.xe - w.xs);
    if (w.ys < 0) w.ys = 0;
    if (w.ye > H) w.ye = H;
    if (w.xs < 0) w.xs = 0;
    if (w.xe > W) w.xe = W;
    w.div = L->count_include_pad ? padded : (w.ye - w.ys) * (w.xe - w.xs);
    return w;
}

/* LeNet's pooling, AvgPool2d(2) with no padding and every window inside the
 * input: the divisor is 4 and the loops need no window arithmetic. The sums
 * run in the general loop's order, so the results are the same bits. */
static bool avg_is_2x2(const cnn_layer *L, int64_t H, int64_t W, int64_t oh, int64_t ow) {
    return L->kernel[0] == 2 && L->kernel[1] == 2 && L->stride[0] == 2 && L->stride[1] == 2 &&
           L->padding[0] == 0 && L->padding[1] == 0 && 2 * oh <= H && 2 * ow <= W;
}

/* The widest output row whose input gradient cnn_vavgpool2_act_backward
 * builds on the stack. */
#define POOL2_ACT_MAX_OW 512

bool cnn_pool_takes_act(const cnn_node *n, cnn_op act) {
    if (n->in_shape.ndim != 4) return false;
    if (n->L.op == CNN_OP_MAXPOOL2D) return act == CNN_OP_RELU;
    return n->L.op == CNN_OP_AVGPOOL2D && n->out_shape.dim[3] <= POOL2_ACT_MAX_OW &&
           avg_is_2x2(&n->L, n->in_shape.dim[2], n->in_shape.dim[3], n->out_shape.dim[2],
                      n->out_shape.dim[3]);
}

/* ---- AvgPool2d(2) on 16 images per vector lane (plan_lanes in model.c) ----
 * The input is in lanes; the output too, or, at the end of a chain, as the
 * next node takes it: then each sixteen's output is pooled into the
 * workspace and scattered, and its gradient gathered there. */

#define POOL_LANES_CAP ((size_t)1 << 18) /* a sixteen's input: 1 MiB */

bool cnn_pool_lanes_ok(const cnn_node *n) {
    if (n->L.op != CNN_OP_AVGPOOL2D || n->in_shape.ndim != 4) return false;
    const int64_t C = n->in_shape.dim[1], H = n->in_shape.dim[2], W = n->in_shape.dim[3];
    return avg_is_2x2(&n->L, H, W, n->out_shape.dim[2], n->out_shape.dim[3]) &&
           (size_t)(C * H * W) * CNN_LANES <= POOL_LANES_CAP;
}

static size_t avgpool_workspace(const cnn_node *n) {
    if (!n->lanes.in || n->lanes.out) return 0;
    size_t numel;
    cnn_shape_numel(&n->out_shape, &numel);
    return numel / (size_t)n->out_shape.dim[0] * CNN_LANES;
}

static void avgpool_lanes_forward(const cnn_node *n, const float *x, float *y, float *work) {
    const int C = (int)n->in_shape.dim[1], H = (int)n->in_shape.dim[2], W = (int)n->in_shape.dim[3];
    const size_t in = (size_t)C * H * W * CNN_LANES,
                 out = (size_t)C * (H / 2) * (W / 2) * CNN_LANES;
    for (int64_t k = n->lanes.from; k < n->lanes.to; k++) {
        cnn_lanes_avgpool2(x + (size_t)k * in, C, H, W, n->lanes.out ? y + (size_t)k * out : work);
        if (!n->lanes.out) cnn_lanes_scatter(work, out / CNN_LANES, y + (size_t)k * out, false);
    }
}

static void avgpool_lanes_backward(const cnn_node *n, const float *x, const float *dy, float *dx,
                                   float *work) {
    const int C = (int)n->in_shape.dim[1], H = (int)n->in_shape.dim[2], W = (int)n->in_shape.dim[3];
    const size_t in = (size_t)C * H * W * CNN_LANES,
                 out = (size_t)C * (H / 2) * (W / 2) * CNN_LANES;
    const bool add = !n->bwd_act_fused || !n->bwd_act_sets;
    for (int64_t k = n->lanes.from; k < n->lanes.to; k++) {
        const float *g = n->lanes.dout_one ? dy : dy + (size_t)k * out;
        if (!n->lanes.out) {
            cnn_lanes_gather(g, out / CNN_LANES, work);
            g = work;
        }
        cnn_lanes_avgpool2_backward(n->bwd_act_fused, n->bwd_act,
                                    n->lanes.din_one ? dx : dx + (size_t)k * in, x + (size_t)k * in,
                                    g, C, H, W, add);
    }
}

/* With bwd_act_fused, x is the activation's output and dx its input's
 * gradient: one pass instead of zeroing the pool's input gradient, adding
 * to it and reading it back in the activation's backward pass. LeNet's
 * first sigmoid and pool at batch 256: 0.36 -> 0.26 ms backward; the
 * training step 3-5% faster in paired runs on Zen 5. */
static void avgpool_backward(const cnn_node *n, const float *x, const float *y, const float *dy,
                             float *dx, const void *aux, float *work) {
    (void)y;
    (void)aux;
    if (!dx) return;
    if (n->lanes.in) {
        avgpool_lanes_backward(n, x, dy, dx, work);
        return;
    }
    const cnn_layer *L = &n->L;
    const int64_t planes = n->in_shape.dim[0] * n->in_shape.dim[1];
    const int64_t H = n->in_shape.dim[2], W = n->in_shape.dim[3];
    const int64_t oh = n->out_shape.dim[2], ow = n->out_shape.dim[3];
    if (n->bwd_act_fused) {
        /* With no row left out of the windows (H = 2*oh), a run of planes is
         * one tall plane: one call per 16 planes, not per plane (LeNet's
         * conv2 planes are 10x10). */
        const int64_t run = H == 2 * oh ? 16 : 1;
        CNN_PARALLEL_FOR(
            planes * H * W > 16384, for (int64_t p0 = 0; p0 < planes; p0 += run) {
                const int64_t k = planes - p0 < run ? planes - p0 : run;
                float v[2 * POOL2_ACT_MAX_OW];
                cnn_vavgpool2_act_backward(n->bwd_act, dx + p0 * H * W, x + p0 * H * W,
                                           dy + p0 * oh * ow, k * H, W, k * oh, ow,
                                           !n->bwd_act_sets, v);
            });
        return;
    }
    if (avg_is_2x2(L, H, W, oh, ow)) {
        CNN_PARALLEL_FOR(
            planes * oh * ow > 16384, for (int64_t pl = 0; pl < planes; pl++) {
                for (int64_t oy = 0; oy < oh; oy++) {
                    float *d0 = dx + (pl * H + 2 * oy) * W, *d1 = d0 + W;
                    const float *g = dy + (pl * oh + oy) * ow;
                    for (int64_t ox = 0; ox < ow; ox++) {
                        const float v = g[ox] / 4.0f;
                        d0[2 * ox] += v;
                        d0[2 * ox + 1] += v;
                        d1[2 * ox] += v;
                        d1[2 * ox + 1] += v;
                    }
                }
            });
        return;
    }
    CNN_PARALLEL_FOR(
        planes * oh * ow > 16384, for (int64_t pl = 0; pl < planes; pl++) {
            float *dxp = dx + pl * H * W;
            const float *dyp = dy + pl * oh * ow;
            for (int64_t oy = 0; oy < oh; oy++)
                for (int64_t ox = 0; ox < ow; ox++) {
                    avg_window w = avg_window_at(L, H, W, oy, ox);
                    if (w.div <= 0) continue;
                    const float g = dyp[oy * ow + ox] / (float)w.div;
                    for (int64_t iy = w.ys; iy < w.ye; iy++)
                        for (int64_t ix = w.xs; ix < w.xe; ix++)
                            dxp[iy * W + ix] += g;
                }
        });
}

/* The divisor follows PyTorch: with count_include_pad the window clipped to the
 * padded input, otherwise the window clipped to the input itself. */
static void avgpool_forward(const cnn_node *n, const float *x, float *y, float *work) {
    if (n->lanes.in) {
        avgpool_lanes_forward(n, x, y, work);
        return;
    }
    const cnn_layer *L = &n->L;
    const int64_t planes = n->in_shape.dim[0] * n->in_shape.dim[1];
    const int64_t H = n->in_shape.dim[2], W = n->in_shape.dim[3];
    const int64_t oh = n->out_shape.dim[2], ow = n->out_shape.dim[3];
    if (avg_is_2x2(L, H, W, oh, ow)) {
        CNN_PARALLEL_FOR(
            planes * oh * ow > 16384, for (int64_t pl = 0; pl < planes; pl++) {
                for (int64_t oy = 0; oy < oh; oy++) {
                    const float *r0 = x + (pl * H + 2 * oy) * W, *r1 = r0 + W;
                    float *yr = y + (pl * oh + oy) * ow;
                    for (int64_t ox = 0; ox < ow; ox++)
                        yr[ox] = (r0[2 * ox] + r0[2 * ox + 1] + r1[2 * ox] + r1[2 * ox + 1]) / 4.0f;
                }
            });
        return;
    }
    CNN_PARALLEL_FOR(
        planes * oh * ow > 16384, for (int64_t pl = 0; pl < planes; pl++) {
            const float *xp = x + pl * H * W;
            float *yp = y + pl * oh * ow;
            for (int64_t oy = 0; oy < oh; oy++) {
                for (int64_t ox = 0; ox < ow; ox++) {
                    avg_window w = avg_window_at(L, H, W, oy, ox);
                    float sum = 0.0f;
                    for (int64_t iy = w.ys; iy < w.ye; iy++)
                        for (int64_t ix = w.xs; ix < w.xe; ix++)
                            sum += xp[iy * W + ix];
                    yp[oy * ow + ox] = w.div > 0 ? sum / (float)w.div : 0.0f;
                }
            }
        });
}

static void pool_explain(const cnn_node *n, cnn_sb *sb) {
    const cnn_layer *L = &n->L;
    const bool dil = L->op == CNN_OP_MAXPOOL2D;
    cnn_explain_window(sb, "h", n->in_shape.dim[2], L->kernel[0], L->stride[0], L->padding[0],
                       L->dilation[0], L->ceil_mode, dil);
    cnn_explain_window(sb, "w", n->in_shape.dim[3], L->kernel[1], L->stride[1], L->padding[1],
                       L->dilation[1], L->ceil_mode, dil);
}

const cnn_op_vtable cnn_op_maxpool2d = {
    .op = CNN_OP_MAXPOOL2D,
    .name = "MaxPool2d",
    .check = pool_check,
    .infer = pool_infer,
    .repr = maxpool_repr,
    .forward = maxpool_forward,
    .explain = pool_explain,
    .aux_bytes = maxpool_aux_bytes,
    .forward_train = maxpool_forward_train,
    .backward = maxpool_backward,
};

const cnn_op_vtable cnn_op_avgpool2d = {
    .op = CNN_OP_AVGPOOL2D,
    .name = "AvgPool2d",
    .check = pool_check,
    .infer = pool_infer,
    .repr = avgpool_repr,
    .workspace = avgpool_workspace,
    .forward = avgpool_forward,
    .explain = pool_explain,
    .backward = avgpool_backward,
};

/* ---- AdaptiveAvgPool2d: bin i covers [floor(i*H/o), ceil((i+1)*H/o)). ---- */

static bool adaptive_check(const cnn_layer *L, char *err, size_t errlen) {
    if (L->output_size[0] <= 0 || L->output_size[1] <= 0) {
        snprintf(err, errlen, "output_size must be positive");
        return false;
    }
    return true;
}

static bool adaptive_infer(const cnn_layer *L, const cnn_shape *in, cnn_shape *out, char *err,
                           size_t errlen) {
    if (!cnn_infer_4d(in, err, errlen)) return false;
    if (in->dim[2] < 1 || in->dim[3] < 1) {
        snprintf(err, errlen, "expects a non-empty input plane, got %lldx%lld",
                 (long long)in->dim[2], (long long)in->dim[3]);
        return false;
    }
    *out = *in;
    out->dim[2] = L->output_size[0];
    out->dim[3] = L->output_size[1];
    return true;
}

static void adaptive_repr(const cnn_layer *L, cnn_sb *sb) {
    cnn_sb_puts(sb, "output_size=");
    cnn_repr_pair(sb, L->output_size, L->output_size_tuple);
}

static void adaptive_forward(const cnn_node *n, const float *x, float *y, float *work) {
    (void)work;
    const int64_t planes = n->in_shape.dim[0] * n->in_shape.dim[1];
    const int64_t H = n->in_shape.dim[2], W = n->in_shape.dim[3];
    const int64_t oh = n->out_shape.dim[2], ow = n->out_shape.dim[3];
    CNN_PARALLEL_FOR(
        planes * H * W > 16384, for (int64_t pl = 0; pl < planes; pl++) {
            const float *xp = x + pl * H * W;
            float *yp = y + pl * oh * ow;
            for (int64_t oy = 0; oy < oh; oy++) {
                const int64_t ys = (oy * H) / oh, ye = ((oy + 1) * H + oh - 1) / oh;
                for (int64_t ox = 0; ox < ow; ox++) {
                    const int64_t xs = (ox * W) / ow, xe = ((ox + 1) * W + ow - 1) / ow;
                    float sum = 0.0f;
                    for (int64_t iy = ys; iy < ye; iy++)
                        for (int64_t ix = xs; ix < xe; ix++)
                            sum += xp[iy * W + ix];
                    yp[oy * ow + ox] = sum / (float)((ye - ys) * (xe - xs));
                }
            }
        });
}

static void adaptive_backward(const cnn_node *n, const float *x, const float *y, const float *dy,
                              float *dx, const void *aux, float *work) {
    (void)x;
    (void)y;
    (void)aux;
    (void)work;
    if (!dx) return;
    const int64_t planes = n->in_shape.dim[0] * n->in_shape.dim[1];
    const int64_t H = n->in_shape.dim[2], W = n->in_shape.dim[3];
    const int64_t oh = n->out_shape.dim[2], ow = n->out_shape.dim[3];
    CNN_PARALLEL_FOR(
        planes * H * W > 16384, for (int64_t pl = 0; pl < planes; pl++) {
            float *dxp = dx + pl * H * W;
            const float *dyp = dy + pl * oh * ow;
            for (int64_t oy = 0; oy < oh; oy++) {
                const int64_t ys = (oy * H) / oh, ye = ((oy + 1) * H + oh - 1) / oh;
                for (int64_t ox = 0; ox < ow; ox++) {
                    const int64_t xs = (ox * W) / ow, xe = ((ox + 1) * W + ow - 1) / ow;
                    const float g = dyp[oy * ow + ox] / (float)((ye - ys) * (xe - xs));
                    for (int64_t iy = ys; iy < ye; iy++)
                        for (int64_t ix = xs; ix < xe; ix++)
                            dxp[iy * W + ix] += g;
                }
            }
        });
}

static void adaptive_explain(const cnn_node *n, cnn_sb *sb) {
    const int64_t H = n->in_shape.dim[2], W = n->in_shape.dim[3];
    const int64_t oh = n->out_shape.dim[2], ow = n->out_shape.dim[3];
    cnn_sb_printf(sb,
                  "h' = output_size[0] = %lld  (bin i averages rows floor(i*%lld/%lld) to "
                  "ceil((i+1)*%lld/%lld))\n",
                  (long long)oh, (long long)H, (long long)oh, (long long)H, (long long)oh);
    cnn_sb_printf(sb,
                  "w' = output_size[1] = %lld  (bin j averages columns floor(j*%lld/%lld) to "
                  "ceil((j+1)*%lld/%lld))\n",
                  (long long)ow, (long long)W, (long long)ow, (long long)W, (long long)ow);
}

const cnn_op_vtable cnn_op_adaptiveavgpool2d = {
    .op = CNN_OP_ADAPTIVEAVGPOOL2D,
    .name = "AdaptiveAvgPool2d",
    .check = adaptive_check,
    .infer = adaptive_infer,
    .repr = adaptive_repr,
    .forward = adaptive_forward,
    .explain = adaptive_explain,
    .backward = adaptive_backward,
};
