/* op_conv2d.c - Conv2d: per image (im2col and a product, or straight from the image), in chunks
 * of images, by Winograd, or in training on 16 images per vector lane (lanes.c). */
#include <cblas.h>
#include <omp.h>
#include <stdio.h>
#include <string.h>

#include "conv_direct.h"
#include "gemm.h"
#include "im2col.h"
#include "lanes.h"
#include "parallel.h"
#include "winograd.h"
#include "model_impl.h"
#include "vmath.h"

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

/* Three ways to run a convolution, chosen per layer and batch from
 * measurements on a 2-core AVX-512 Xeon, and a fourth in training on one
 * thread (a replica each, see replicas.c): small stride-1 layers between a
 * first Conv2d and an AvgPool2d(2) run on 16 images per vector lane
 * (lanes.c, plan_lanes in model.c), as below.
 *
 * Per image, when one image's patches fit in L2 (K*P floats, K =
 * C/groups*kh*kw, P = oh*ow) and the batch keeps every thread busy, or the
 * layer is too small to share: each thread takes whole images and runs them
 * on its own, straight into the output, bias included: no barrier inside
 * the layer and no layout copy. im2col fills a buffer of the thread's own
 * and cnn_gemm multiplies (products this small lose more to OpenBLAS's
 * packing and threads than they gain); with stride 1 and AVX-512, layers
 * with rows 16 or more wide run straight from the image, forward and weight
 * gradient (conv_direct.c), and rows 8 to 16 wide without padding (LeNet's
 * conv2) by the narrow kernel, which puts output channels in the vector
 * lanes (forward and weight gradient; the input gradient stays W^T dy and
 * col2im). When this path came in, LeNet's training step went from 9.7k to
 * 16.4k images/s.
 *
 * Chunked (AlexNet's large layers, and batches that would leave a thread
 * idle): im2col lays a chunk of B images side by side, col = (K, B*P), and
 * one multi-threaded OpenBLAS SGEMM per group computes (OC/groups, B*P),
 * copied back to NCHW. Per image (one OpenBLAS product per image and
 * thread) was 10% slower there: 1.5 MB of patches per image leave the cache.
 *
 * Winograd, chunked, for 3x3 and 5x5 stride-1 layers with enough channels
 * and outputs for its n^2 products to be large (winograd.c): F(4x4, 3x3) for
 * AlexNet's conv3-5 and F(4x4, 5x5) for its conv2, with the products split
 * across the threads, took inference at batch 64 from 149 to 250 images/s
 * (F(2x2, 3x3) on conv3-5 only, before). */
#define CONV_WORK_CAP ((size_t)8 << 20) /* floats: 32 MiB for the chunked paths */
/* Floats for Winograd: 64 MiB. Its products are only as large as a chunk
 * (OC x C by C x tiles), and OpenBLAS needs over 800 columns to run near
 * full speed: AlexNet's training step at batch 64 took 1060 ms at 32 MiB,
 * 890 at 64 and 900 at 96 (conv4's F(4x4, 3x3) kernels alone take 21 MiB). */
#define WINO_WORK_CAP ((size_t)16 << 20)
/* Floats of one image's patches for the per-image path: 256 KiB. */
#define CONV_IMAGE_CAP   ((int64_t)1 << 16)
#define CONV_SMALL_LAYER ((size_t)1 << 20) /* multiply-adds of a layer not worth sharing */

typedef struct conv_dims {
    int64_t N, C, H, W, OC, oh, ow, G, Cg, OCg, K, P, chunk;
    int threads;               /* OpenMP threads the workspace is laid out for */
    bool per_image;            /* the per-image path */
    bool direct;               /* straight from the image (conv_direct.c), no im2col */
    bool direct_infer;         /* the forward pass so, when it keeps no patches */
    bool narrow;               /* forward and dW by the narrow kernel (conv_direct.c) */
    bool winograd;             /* chunked, by Winograd's minimal filtering (winograd.c) */
    const cnn_wino *wino, *wino_dx; /* its variants: forward, input gradient */
    int64_t wchunk, wchunk_dx, wchunk_dw; /* images per Winograd chunk: forward, dx, dW */
    cnn_conv_geom geom;        /* one image and group */
} conv_dims;

/* The largest chunk when `most` images fit in the cap: the batch cut in
 * chunks as equal as can be, of up to an eighth more than that, so that no
 * chunk is left with a few images (AlexNet's conv4 at batch 64 fits 63: a
 * product over the last image's 9 tiles ran at a tenth of the speed).
 * Chunk k of chunk_count(N, chunk) starts at image k*N/count. */
static int64_t even_chunks(int64_t N, int64_t most) {
    most += most / 8;
    if (most < 1) most = 1;
    const int64_t chunks = (N + most - 1) / most;
    return (N + chunks - 1) / chunks;
}

static int64_t chunk_count(int64_t N, int64_t chunk) { return (N + chunk - 1) / chunk; }

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
    d.threads = omp_get_max_threads();
    /* Whole images per thread when the batch keeps every thread busy, or when
     * the layer is too small to share out (LeNet at batch 1: one thread, no
     * OpenBLAS start-up). */
    const bool even = d.N >= d.threads && (d.N % d.threads == 0 || d.N >= 8 * d.threads);
    d.per_image = d.K * d.P <= CONV_IMAGE_CAP &&
                  (even || (size_t)(d.N * d.OC * d.K * d.P) <= CONV_SMALL_LAYER);
    d.geom = (cnn_conv_geom){.C = (int)d.Cg,
                             .H = (int)d.H,
                             .W = (int)d.W,
                             .M = (int)d.OCg,
                             .oh = (int)d.oh,
                             .ow = (int)d.ow,
                             .kh = (int)L->kernel[0],
                             .kw = (int)L->kernel[1],
                             .ph = (int)L->padding[0],
                             .pw = (int)L->padding[1]};
    const bool unit = L->stride[0] == 1 && L->stride[1] == 1 && L->dilation[0] == 1 &&
                      L->dilation[1] == 1;
    d.direct = d.per_image && unit && cnn_conv_direct_ok(&d.geom);
    /* In inference, the direct kernel also takes rows 8 to 16 wide that the
     * narrow kernel does not (padding, groups): at batch 256, a 10x10 3x3
     * layer with 2 groups took 0.59 ms against 0.73 by im2col, a 5x5 one
     * with padding 2 the same 1.0 ms either way. */
    d.direct_infer = d.direct || (d.per_image && unit && cnn_conv_direct_forward_ok(&d.geom));
    d.narrow = d.per_image && unit && d.G == 1 && !d.direct && cnn_conv_narrow_ok(&d.geom);
    /* Square 3x3 or 5x5 kernels, stride 1, with enough channels and outputs
     * for the n^2 products to run at OpenBLAS's speed. The input gradient is
     * the convolution of dy with the flipped kernels, padding r - 1 - p, and
     * picks its own variant; the weight gradient runs F(r x r, 4x4) over the
     * tiles of dy. AlexNet's training step at batch 64 went from 33 to 43
     * images/s with F(2x2, 3x3) on conv3-5, and to 73 with all of this. */
    const int64_t r = L->kernel[0];
    if (!d.per_image && L->kernel[1] == r && (r == 3 || r == 5) && L->stride[0] == 1 &&
        L->stride[1] == 1 && L->dilation[0] == 1 && L->dilation[1] == 1 && d.G == 1 &&
        d.C >= 32 && d.OC >= 32 && L->padding[0] < r && L->padding[1] < r) {
        d.wino = cnn_winograd_pick(r, d.oh, d.ow);
        d.wino_dx = cnn_winograd_pick(r, d.H, d.W);
        /* The largest of the transformed kernels and the weight gradient's sums
         * (n = 6 for 3x3, 8 for 5x5) must leave room for images. */
        const int64_t tn = r == 5 ? 8 : 6;
        const size_t u = (size_t)(tn * tn * d.OC * d.C);
        /* At least 512 outputs per channel in the batch: even with small products,
         * 4x to 6x fewer multiplications than im2col. In inference, AlexNet's 26x26
         * conv2 at batch 1 (676) took 2.5 to 2.9 ms against 3.6 by im2col; its 12x12
         * conv3-5 took 11.8 ms against 12.6 at batch 4 (576), 15.1 against 11.9 at
         * batch 3 (432). */
        if (u >= WINO_WORK_CAP / 2 || d.N * d.oh * d.ow < 512) d.wino = d.wino_dx = NULL;
    }
    d.winograd = d.wino != NULL;
    if (d.winograd) {
        /* Past the transformed kernels, as many images as the cap leaves room for. */
        const size_t room = WINO_WORK_CAP - (size_t)(d.wino->n * d.wino->n * d.OC * d.C),
                     room_dx = WINO_WORK_CAP - (size_t)(d.wino_dx->n * d.wino_dx->n * d.OC * d.C);
        d.wchunk = (int64_t)(room / cnn_winograd_floats(d.wino, 1, d.C, d.OC, d.oh, d.ow, d.threads));
        d.wchunk_dx =
            (int64_t)(room_dx / cnn_winograd_floats(d.wino_dx, 1, d.OC, d.C, d.H, d.W, d.threads));
        d.wchunk_dw = (int64_t)((WINO_WORK_CAP - cnn_winograd_dw_acc_floats(r, d.OC, d.C)) /
                                cnn_winograd_dw_floats(r, 1, d.C, d.OC, d.oh, d.ow, d.threads));
        d.wchunk = even_chunks(d.N, d.wchunk);
        d.wchunk_dx = even_chunks(d.N, d.wchunk_dx);
        d.wchunk_dw = even_chunks(d.N, d.wchunk_dw);
    }
    /* Per image: col (K*P), the GEMM's output or input gradient (OCg*P), and for the
     * backward pass the gradient of col (K*P). */
    const size_t per = (size_t)((2 * d.K + d.OCg) * d.P);
    d.chunk = even_chunks(d.N, (int64_t)(CONV_WORK_CAP / (per ? per : 1)));
    return d;
}

/* Per-image path, one thread's share of the workspace: col (K*P) for im2col,
 * and for the backward pass dy transposed (OCg*P). */
static size_t conv_thread_floats(const conv_dims *d, bool backward) {
    size_t f = (size_t)(d->K * d->P);
    if (d->direct_infer && cnn_conv_direct_floats(&d->geom) > f)
        f = cnn_conv_direct_floats(&d->geom);
    if (backward) f += (size_t)(d->OCg * d->P);
    return (f + 15) / 16 * 16; /* 64-byte steps: no false sharing */
}

/* Per-image backward pass: the bias and weight gradients of one block of
 * images (16 lane sums per weight from the direct kernel, else the
 * transposed gradient), summed in block order at the end. */
static size_t conv_block_floats(const conv_dims *d) {
    const size_t f =
        (size_t)(d->OC + 16) + (size_t)(d->OC * d->K) * (d->direct ? CNN_DIRECT_LANES : 1);
    return (f + 15) / 16 * 16;
}

/* Blocks of about 8 images, at least one per thread, at most CNN_STEAL_MAX,
 * and their sums within 4 Mi floats (16 MiB) where the weights are many. */
static int conv_blocks(const conv_dims *d) {
    int64_t nb = d->N / 8, cap = (int64_t)(((size_t)4 << 20) / conv_block_floats(d));
    if (nb > cap) nb = cap;
    if (nb < d->threads) nb = d->threads;
    if (nb > d->N) nb = d->N;
    if (nb > CNN_STEAL_MAX) nb = CNN_STEAL_MAX;
    return nb < 1 ? 1 : (int)nb;
}

/* Chunked backward pass: one thread's own dW_g and db (OCg*K + OCg) in 64-byte steps. */
static size_t chunk_sums_floats(const conv_dims *d) {
    return (size_t)((d->OCg * d->K + d->OCg + 15) / 16 * 16);
}

/* ---- 16 images per vector lane (lanes.c), in training on one thread ----
 * The plan (plan_lanes in model.c) gives such a layer its output, and its
 * input unless it comes first, as 16 images per lane. Forward, each sixteen
 * of the batch is padded into the workspace and convolved; backward, dW and
 * db keep a vector of sums per weight over the batch, added up at the end,
 * and dx comes straight from dy and the weights. On one Zen 5 core, LeNet's
 * conv2 ran at 220 GFLOP/s each way (2.2 us per image each), its conv1
 * forward at 166. */

/* A sixteen's padded input and output up to 1 MiB each: the tiles stay in L2. */
#define CONV_LANES_CAP ((size_t)1 << 18)

bool cnn_conv2d_lanes_ok(const cnn_node *n) {
    const cnn_layer *L = &n->L;
    if (L->groups != 1 || L->stride[0] != 1 || L->stride[1] != 1 || L->dilation[0] != 1 ||
        L->dilation[1] != 1 || n->in_shape.ndim != 4)
        return false;
    const conv_dims d = conv_dims_of(n);
    return cnn_lanes_conv_ok(&d.geom) && cnn_lanes_pad_floats(&d.geom) <= CONV_LANES_CAP &&
           (size_t)(d.OC * d.P) * CNN_LANES <= CONV_LANES_CAP;
}

/* Workspace: the padded input; backward, also a sixteen's input gradient
 * when dx is not in lanes. */
static size_t conv_lanes_floats(const conv_dims *d, bool backward, bool lanes_in) {
    size_t f = cnn_lanes_pad_floats(&d->geom) + 16;
    if (backward && !lanes_in) f += (size_t)(d->C * d->H * d->W) * CNN_LANES;
    return f;
}

/* Aux memory: the lane sums of dW and db, from the first sixteen's backward
 * pass to the last's (a chain may run the sixteens one call each). */
static size_t conv_lanes_sums_floats(const conv_dims *d) {
    return (size_t)(d->OC * d->K + d->OC) * CNN_LANES;
}

/* A sixteen's input as the kernels take it: padded into xp, or as it is. */
static const float *conv_lanes_input(const cnn_node *n, const conv_dims *d, const float *x,
                                     float *xp) {
    if (n->lanes.in && d->geom.ph == 0 && d->geom.pw == 0) return x;
    cnn_lanes_pad(&d->geom, x, !n->lanes.in, xp);
    return xp;
}

static void conv_lanes_forward(const cnn_node *n, const conv_dims *d, const float *x, float *y,
                               float *work) {
    const float *weight = n->param[CNN_SLOT_WEIGHT], *bias = n->param[CNN_SLOT_BIAS];
    const size_t in = (size_t)(d->C * d->H * d->W) * CNN_LANES,
                 out = (size_t)(d->OC * d->P) * CNN_LANES;
    for (int64_t k = n->lanes.from; k < n->lanes.to; k++)
        cnn_lanes_conv(&d->geom, conv_lanes_input(n, d, x + (size_t)k * in, work), weight, bias,
                       n->has_act, n->act, y + (size_t)k * out);
}

static void conv_lanes_backward(const cnn_node *n, const conv_dims *d, const float *x,
                                const float *dy, float *dx, float *sums, float *work) {
    const float *weight = n->param[CNN_SLOT_WEIGHT];
    float *dweight = n->grad[CNN_SLOT_WEIGHT], *dbias = n->grad[CNN_SLOT_BIAS];
    const size_t in = (size_t)(d->C * d->H * d->W) * CNN_LANES,
                 out = (size_t)(d->OC * d->P) * CNN_LANES;
    const size_t nw = (size_t)(d->OC * d->K);
    float *xp = work, *dxl = xp + cnn_lanes_pad_floats(&d->geom) + 16;
    float *dw = sums, *db = dw + nw * CNN_LANES;
    if (n->lanes.from == 0) memset(sums, 0, conv_lanes_sums_floats(d) * sizeof(float));
    for (int64_t k = n->lanes.from; k < n->lanes.to; k++) {
        const float *dyk = n->lanes.dout_one ? dy : dy + (size_t)k * out;
        cnn_lanes_conv_dw(&d->geom, conv_lanes_input(n, d, x + (size_t)k * in, xp), dyk, dw,
                          dbias ? db : NULL);
        if (!dx) continue;
        if (n->lanes.in) {
            cnn_lanes_conv_dx(&d->geom, weight, dyk, n->lanes.din_one ? dx : dx + (size_t)k * in);
        } else {
            memset(dxl, 0, in * sizeof(float));
            cnn_lanes_conv_dx(&d->geom, weight, dyk, dxl);
            cnn_lanes_scatter(dxl, in / CNN_LANES, dx + (size_t)k * in, true);
        }
    }
    if (n->lanes.to < d->N / CNN_LANES) return;
    cnn_lanes_reduce(dw, nw, dweight);
    if (dbias) cnn_lanes_reduce(db, (size_t)d->OC, dbias);
}

static size_t conv_workspace(const cnn_node *n) {
    conv_dims d = conv_dims_of(n);
    if (n->lanes.out) return conv_lanes_floats(&d, false, n->lanes.in);
    if (d.per_image)
        return (size_t)d.threads * conv_thread_floats(&d, false) + 16 +
               (d.narrow ? cnn_conv_narrow_floats(&d.geom) : 0);
    if (d.winograd)
        return (size_t)(d.wino->n * d.wino->n * d.OC * d.C) +
               cnn_winograd_floats(d.wino, d.wchunk, d.C, d.OC, d.oh, d.ow, d.threads);
    return (size_t)(d.chunk * (d.K + d.OCg) * d.P);
}

static size_t conv_workspace_backward(const cnn_node *n) {
    conv_dims d = conv_dims_of(n);
    if (n->lanes.out) return conv_lanes_floats(&d, true, n->lanes.in);
    /* The transposed weights (OC*K) come first. */
    if (d.per_image)
        return (size_t)(d.OC * d.K + 16) + (size_t)conv_blocks(&d) * conv_block_floats(&d) +
               (size_t)d.threads * conv_thread_floats(&d, true) + 16;
    if (!d.winograd)
        return (size_t)(d.chunk * (2 * d.K + d.OCg) * d.P) +
               (size_t)d.threads * chunk_sums_floats(&d);
    const int64_t r = n->L.kernel[0];
    const size_t dx = (size_t)(d.wino_dx->n * d.wino_dx->n * d.OC * d.C) +
                      cnn_winograd_floats(d.wino_dx, d.wchunk_dx, d.OC, d.C, d.H, d.W, d.threads);
    const size_t dw = cnn_winograd_dw_acc_floats(r, d.OC, d.C) +
                      cnn_winograd_dw_floats(r, d.wchunk_dw, d.C, d.OC, d.oh, d.ow, d.threads);
    return dx > dw ? dx : dw;
}

static cnn_patch_geom patch_geom(const conv_dims *d, const cnn_layer *L) {
    return (cnn_patch_geom){.C = d->Cg,
                            .H = d->H,
                            .W = d->W,
                            .kh = L->kernel[0],
                            .kw = L->kernel[1],
                            .sh = L->stride[0],
                            .sw = L->stride[1],
                            .ph = L->padding[0],
                            .pw = L->padding[1],
                            .dh = L->dilation[0],
                            .dw = L->dilation[1],
                            .oh = d->oh,
                            .ow = d->ow};
}

/* im2col of B images of group g side by side: col is (K, B*P), image b's
 * patches in columns [b*P, (b+1)*P). One parallel loop over (image, row). */
static void im2col_chunk(float *col, const float *x, const conv_dims *d, const cnn_layer *L,
                         int64_t b0, int64_t B, int64_t g) {
    const cnn_patch_geom pg = patch_geom(d, L);
    const int64_t ld = B * d->P;
    CNN_PARALLEL_FOR2(
        B * d->K * d->P > 16384, for (int64_t b = 0; b < B; b++) {
            for (int64_t r = 0; r < d->K; r++)
                cnn_im2col(col + b * d->P, ld, x + ((b0 + b) * d->C + g * d->Cg) * d->H * d->W, &pg,
                           r, r + 1);
        });
}

/* The chunk's col2im: the rows of one channel of one image write the same
 * plane, so images are the unit of parallel work. */
static void col2im_chunk(float *dx, const float *dcol, const conv_dims *d, const cnn_layer *L,
                         int64_t b0, int64_t B, int64_t g) {
    const cnn_patch_geom pg = patch_geom(d, L);
    CNN_PARALLEL_FOR(
        B * d->K * d->P > 16384, for (int64_t b = 0; b < B; b++) {
            cnn_col2im(dx + ((b0 + b) * d->C + g * d->Cg) * d->H * d->W, dcol + b * d->P, B * d->P,
                       &pg);
        });
}

/* The patches of image b, group g, into col (K, P); a 1x1 convolution with
 * stride 1 and no padding reads the image itself. */
static const float *image_patches(float *col, const float *x, const conv_dims *d,
                                  const cnn_layer *L, int64_t b, int64_t g) {
    const float *xb = x + (b * d->C + g * d->Cg) * d->H * d->W;
    if (d->K == d->Cg && d->P == d->H * d->W && L->padding[0] == 0 && L->padding[1] == 0) return xb;
    const cnn_patch_geom pg = patch_geom(d, L);
    cnn_im2col(col, d->P, xb, &pg, 0, d->K);
    return col;
}

/* In training, the per-image path keeps every image's patches for the
 * backward pass when its weight gradient is a product with them (not with
 * the direct or the narrow kernel): im2col once per step instead of twice,
 * for N*K*P floats (15 MiB for LeNet's second layer at batch 256, without
 * AVX-512). */
static bool conv_keeps_patches(const conv_dims *d, const cnn_layer *L) {
    const bool identity =
        d->K == d->Cg && d->P == d->H * d->W && L->padding[0] == 0 && L->padding[1] == 0;
    return d->per_image && !d->direct && !d->narrow && !identity;
}

static size_t conv_aux_bytes(const cnn_node *n) {
    const conv_dims d = conv_dims_of(n);
    if (n->lanes.out) return conv_lanes_sums_floats(&d) * sizeof(float);
    return conv_keeps_patches(&d, &n->L) ? (size_t)(d.N * d.G * d.K * d.P) * sizeof(float) : 0;
}

/* The per-image path runs on one thread below this many multiply-adds: a
 * parallel region costs 6 us on the 2-core Zen 5 machines (parallel.h).
 * LeNet's inference at batch 2: 71k images/s on two threads, 104k on one;
 * at batch 4, 91k and 99k. */
#define CONV_REGION_MACS (1 << 20)

/* Images b0 to b1 - 1 of the per-image path, on the calling thread, with
 * col (conv_thread_floats) to itself; wt holds the narrow kernel's weights
 * when narrow. */
static void conv_images(const cnn_node *n, const conv_dims *d, const float *x, float *y, float *col,
                        float *kept, const float *wt, bool narrow, int64_t b0, int64_t b1) {
    const cnn_layer *L = &n->L;
    const float *weight = n->param[CNN_SLOT_WEIGHT], *bias = n->param[CNN_SLOT_BIAS];
    for (int64_t b = b0; b < b1; b++) {
        for (int64_t g = 0; g < d->G; g++) {
            const float *wg = weight + g * d->OCg * d->K, *bg = bias ? bias + g * d->OCg : NULL;
            float *yg = y + (b * d->OC + g * d->OCg) * d->P;
            float *patches = kept ? kept + (b * d->G + g) * d->K * d->P : col;
            if (narrow)
                cnn_conv_narrow(&d->geom, x + b * d->C * d->H * d->W, wt, bg, yg);
            else if (d->direct || (d->direct_infer && !kept))
                cnn_conv_direct(&d->geom, x + (b * d->C + g * d->Cg) * d->H * d->W, wg, bg, yg,
                                col);
            else
                cnn_gemm((int)d->OCg, (int)d->P, (int)d->K, wg, (int)d->K,
                         image_patches(patches, x, d, L, b, g), (int)d->P, yg, (int)d->P, bg,
                         false);
        }
        if (n->has_act) {
            float *yb = y + b * d->OC * d->P;
            cnn_vactivation(n->act, yb, yb, (size_t)(d->OC * d->P));
        }
    }
}

/* x is (N,C,H,W), y is (N,OC,oh,ow), weight is (OC, C/groups, kh, kw);
 * kept, when not NULL, receives each image's patches (image b, group g at
 * (b*G + g)*K*P). */
static void conv_run(const cnn_node *n, const float *x, float *y, float *work, float *kept) {
    const cnn_layer *L = &n->L;
    const conv_dims d = conv_dims_of(n);
    const float *weight = n->param[CNN_SLOT_WEIGHT], *bias = n->param[CNN_SLOT_BIAS];
    /* The narrow kernel's weights go past the threads' shares of the workspace. */
    const bool narrow = d.narrow && !kept;
    float *wt = narrow ? work + (size_t)d.threads * conv_thread_floats(&d, false) + 16 : NULL;
    if (narrow) cnn_conv_narrow_weights(&d.geom, weight, wt);
    if (d.per_image) {
        const size_t per = conv_thread_floats(&d, false);
        const int nt = d.N < d.threads ? (int)d.N : d.threads;
        if (nt <= 1 || d.N * d.OC * d.K * d.P < CONV_REGION_MACS) {
            conv_images(n, &d, x, y, work, kept, wt, narrow, 0, d.N);
            return;
        }
        cnn_steal share[CNN_STEAL_MAX];
        const int ns = cnn_steal_init(share, nt, d.N);
#pragma omp parallel num_threads(ns)
        {
            const int t = omp_get_thread_num();
            for (int64_t b; (b = cnn_steal_next(share, t)) >= 0;)
                conv_images(n, &d, x, y, work + (size_t)t * per, kept, wt, narrow, b, b + 1);
        }
        return;
    }
    if (d.winograd) {
        float *u = work;
        cnn_winograd_kernels(d.wino, u, weight, d.OC, d.C, false);
        for (int64_t k = 0, nk = chunk_count(d.N, d.wchunk); k < nk; k++) {
            const int64_t b0 = k * d.N / nk, B = (k + 1) * d.N / nk - b0;
            cnn_winograd_conv(d.wino, y + b0 * d.OC * d.P, x + b0 * d.C * d.H * d.W, u, bias, false,
                              B, d.C, d.H, d.W, d.OC, d.oh, d.ow, L->padding[0], L->padding[1],
                              work + d.wino->n * d.wino->n * d.OC * d.C, d.threads);
            if (n->has_act)
                cnn_vactivation_shared(n->act, y + b0 * d.OC * d.P, y + b0 * d.OC * d.P,
                                       (size_t)(B * d.OC * d.P));
        }
        return;
    }
    float *col = work, *out = work + d.chunk * d.K * d.P;
    for (int64_t k = 0, nk = chunk_count(d.N, d.chunk); k < nk; k++) {
        const int64_t b0 = k * d.N / nk, B = (k + 1) * d.N / nk - b0, ld = B * d.P;
        for (int64_t g = 0; g < d.G; g++) {
            im2col_chunk(col, x, &d, L, b0, B, g);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)d.OCg, (int)ld, (int)d.K,
                        1.0f, weight + g * d.OCg * d.K, (int)d.K, col, (int)ld, 0.0f, out, (int)ld);
            /* (OCg, B*P) back to NCHW, adding the bias on the way. */
            CNN_PARALLEL_FOR2(
                d.OCg * ld > 32768, for (int64_t b = 0; b < B; b++) {
                    for (int64_t o = 0; o < d.OCg; o++) {
                        const float bo = bias ? bias[g * d.OCg + o] : 0.0f;
                        const float *src = out + o * ld + b * d.P;
                        float *dst = y + ((b0 + b) * d.OC + g * d.OCg + o) * d.P;
                        for (int64_t i = 0; i < d.P; i++)
                            dst[i] = src[i] + bo;
                        /* While the row is in cache: AlexNet's conv1 spent 8% of its
                         * time on a pass over the chunk's outputs after the copy. */
                        if (n->has_act) cnn_vactivation(n->act, dst, dst, (size_t)d.P);
                    }
                });
        }
    }
}

static void conv_forward(const cnn_node *n, const float *x, float *y, float *work) {
    conv_run(n, x, y, work, NULL);
}

static void conv_forward_train(cnn_node *n, const float *x, float *y, void *aux, float *work,
                               cnn_rng *rng) {
    (void)rng;
    const conv_dims d = conv_dims_of(n);
    if (n->lanes.out) {
        conv_lanes_forward(n, &d, x, y, work);
        return;
    }
    conv_run(n, x, y, work, conv_keeps_patches(&d, &n->L) ? aux : NULL);
}

/* Per image, into the sums of its block (summed at the end, in block order,
 * so a run repeats bit for bit whichever thread took a block): dW from the
 * image itself where the direct kernel suits the shape, else dW_g^T += col
 * dY_g^T; db += row sums of dY_g; dx from dcol = W_g^T dY_g through col2im.
 * Each thread takes its own blocks first, then helps with the others'
 * (cnn_steal): LeNet's conv2 waited up to 23% of its time with fixed
 * halves when one core ran slower. */
static void conv_backward_per_image(const cnn_node *n, const conv_dims *d, const float *x,
                                    const float *dy, float *dx, const float *kept, float *work) {
    const cnn_layer *L = &n->L;
    const float *weight = n->param[CNN_SLOT_WEIGHT];
    float *dweight = n->grad[CNN_SLOT_WEIGHT], *dbias = n->grad[CNN_SLOT_BIAS];
    const int64_t nw = d->OC * d->K, nwg = d->OCg * d->K;
    const int64_t lanes = d->direct ? CNN_DIRECT_LANES : 1;
    const cnn_patch_geom pg = patch_geom(d, L);
    /* W_g^T (K, OCg) per group for cnn_gemm, which takes A untransposed. */
    float *wt = work, *sums = work + nw + 16 - nw % 16;
    for (int64_t g = 0; g < d->G; g++)
        for (int64_t o = 0; o < d->OCg; o++)
            for (int64_t k = 0; k < d->K; k++)
                wt[g * nwg + k * d->OCg + o] = weight[(g * d->OCg + o) * d->K + k];
    const int nb = conv_blocks(d);
    const size_t block = conv_block_floats(d), per = conv_thread_floats(d, true);
    float *scratch = sums + (size_t)nb * block;
    const int64_t dw_at = d->OC + 16 - d->OC % 16; /* into a block's sums */
    cnn_steal share[CNN_STEAL_MAX];
    const int nt = cnn_steal_init(share, d->threads < nb ? d->threads : nb, nb);
#pragma omp parallel num_threads(nt)
    {
        const int t = omp_get_thread_num();
        float *col = scratch + (size_t)t * per, *dyt = col + d->K * d->P;
        for (int64_t j; (j = cnn_steal_next(share, t)) >= 0;) {
            float *db = sums + (size_t)j * block, *dw = db + dw_at;
            memset(db, 0, block * sizeof(float));
            for (int64_t b = j * d->N / nb; b < (j + 1) * d->N / nb; b++) {
                for (int64_t g = 0; g < d->G; g++) {
                    const float *xg = x + (b * d->C + g * d->Cg) * d->H * d->W;
                    const float *dyg = dy + (b * d->OC + g * d->OCg) * d->P;
                    float *dxg = dx ? dx + (b * d->C + g * d->Cg) * d->H * d->W : NULL;
                    if (d->direct) {
                        for (int64_t o = 0; o < d->OCg; o++)
                            db[g * d->OCg + o] += cnn_vsum(dyg + o * d->P, d->P);
                        cnn_conv_direct_dw(&d->geom, xg, dyg, dw + g * nwg * lanes);
                    } else {
                        cnn_conv_transpose_sum(dyg, (int)d->OCg, (int)d->P, dyt, db + g * d->OCg);
                        if (d->narrow) {
                            cnn_conv_narrow_dw(&d->geom, xg, dyt, dw + g * nwg);
                        } else {
                            const float *patches = kept ? kept + (b * d->G + g) * d->K * d->P
                                                        : image_patches(col, x, d, L, b, g);
                            cnn_gemm((int)d->K, (int)d->OCg, (int)d->P, patches, (int)d->P, dyt,
                                     (int)d->OCg, dw + g * nwg, (int)d->OCg, NULL, true);
                        }
                    }
                    if (!dxg) continue;
                    cnn_gemm((int)d->K, (int)d->P, (int)d->OCg, wt + g * nwg, (int)d->OCg, dyg,
                             (int)d->P, col, (int)d->P, NULL, false);
                    cnn_col2im(dxg, col, d->P, &pg);
                }
            }
        }
#pragma omp barrier
        /* Each block's sums hold weight i = (g*OCg + o)*K + k at 16 lanes from
         * i*16 (direct) or at g*OCg*K + k*OCg + o (dW_g^T): added up block by
         * block in block order, 16 lanes or 16 channels at a time. */
        if (d->direct) {
#pragma omp for schedule(static)
            for (int64_t i = 0; i < nw; i++) {
                float acc[CNN_DIRECT_LANES] = {0};
                for (int j = 0; j < nb; j++) {
                    const float *l = sums + (size_t)j * block + dw_at + i * CNN_DIRECT_LANES;
                    for (int e = 0; e < CNN_DIRECT_LANES; e++)
                        acc[e] += l[e];
                }
                float sum = 0.0f;
                for (int e = 0; e < CNN_DIRECT_LANES; e++)
                    sum += acc[e];
                dweight[i] += sum;
            }
        } else {
#pragma omp for schedule(static)
            for (int64_t gk = 0; gk < d->G * d->K; gk++) {
                const int64_t g = gk / d->K, k = gk % d->K, at = g * nwg + k * d->OCg;
                for (int64_t o0 = 0; o0 < d->OCg; o0 += 16) {
                    const int64_t m = d->OCg - o0 < 16 ? d->OCg - o0 : 16;
                    float acc[16] = {0};
                    for (int j = 0; j < nb; j++) {
                        const float *l = sums + (size_t)j * block + dw_at + at + o0;
                        for (int64_t e = 0; e < m; e++)
                            acc[e] += l[e];
                    }
                    for (int64_t e = 0; e < m; e++)
                        dweight[(g * d->OCg + o0 + e) * d->K + k] += acc[e];
                }
            }
        }
#pragma omp single
        if (dbias)
            for (int64_t o = 0; o < d->OC; o++)
                for (int j = 0; j < nb; j++)
                    dbias[o] += sums[(size_t)j * block + o];
    }
}

/* Winograd layers: db from dy's rows; dW by Winograd over the tiles of dy,
 * in chunks (cnn_winograd_dw); dx += the convolution of dy with the flipped
 * kernels, padding r - 1 - p. */
static void conv_backward_winograd(const cnn_node *n, const conv_dims *d, const float *x,
                                   const float *dy, float *dx, float *work) {
    const cnn_layer *L = &n->L;
    const int64_t r = L->kernel[0], ph = L->padding[0], pw = L->padding[1];
    float *dweight = n->grad[CNN_SLOT_WEIGHT], *dbias = n->grad[CNN_SLOT_BIAS];
    if (dbias) {
#pragma omp parallel for schedule(static)
        for (int64_t o = 0; o < d->OC; o++) {
            double sum = 0.0;
            for (int64_t b = 0; b < d->N; b++)
                sum += cnn_vsum(dy + (b * d->OC + o) * d->P, d->P);
            dbias[o] += (float)sum;
        }
    }
    float *macc = work, *rest = work + cnn_winograd_dw_acc_floats(r, d->OC, d->C);
    for (int64_t k = 0, nk = chunk_count(d->N, d->wchunk_dw); k < nk; k++) {
        const int64_t b0 = k * d->N / nk, B = (k + 1) * d->N / nk - b0;
        cnn_winograd_dw(r, macc, k == 0, x + b0 * d->C * d->H * d->W, dy + b0 * d->OC * d->P, B,
                        d->C, d->H, d->W, d->OC, d->oh, d->ow, ph, pw, rest, d->threads);
    }
    cnn_winograd_dw_finish(r, dweight, macc, d->OC, d->C);
    if (!dx) return;
    const cnn_wino *f = d->wino_dx;
    float *u = work;
    cnn_winograd_kernels(f, u, n->param[CNN_SLOT_WEIGHT], d->C, d->OC, true);
    for (int64_t k = 0, nk = chunk_count(d->N, d->wchunk_dx); k < nk; k++) {
        const int64_t b0 = k * d->N / nk, B = (k + 1) * d->N / nk - b0;
        cnn_winograd_conv(f, dx + b0 * d->C * d->H * d->W, dy + b0 * d->OC * d->P, u, NULL, true,
                          B, d->OC, d->oh, d->ow, d->C, d->H, d->W, r - 1 - ph, r - 1 - pw,
                          work + f->n * f->n * d->OC * d->C, d->threads);
    }
}

/* The chunk's share of dW_g and db: dW_g += dY_b col_b^T and db += the row
 * sums of dY_b for each image b, its patches at column b*P of col. With
 * more than one thread, each sums its images into its own (sums) and the
 * sums are added in thread order: OpenBLAS runs on one thread inside a
 * parallel region. AlexNet's conv1 backward pass at batch 64 took 53 ms on
 * one thread and 33 on two when each product was shared out and the bias
 * sums ran on one. */
static void chunk_weight_grads(const cnn_node *n, const conv_dims *d, const float *dy,
                               const float *col, int64_t b0, int64_t B, int64_t g, float *sums) {
    float *dweight = n->grad[CNN_SLOT_WEIGHT] + g * d->OCg * d->K, *dbias = n->grad[CNN_SLOT_BIAS];
    if (dbias) dbias += g * d->OCg;
    const int64_t ld = B * d->P, nw = d->OCg * d->K;
    const int nt = B < d->threads ? (int)B : d->threads;
    const size_t per = chunk_sums_floats(d);
#pragma omp parallel num_threads(nt)
    {
        const int t = omp_get_thread_num(), of = omp_get_num_threads();
        float *dw = of > 1 ? sums + (size_t)t * per : dweight;
        float *db = of > 1 ? dw + nw : dbias;
        if (of > 1) memset(dw, 0, per * sizeof(float));
        for (int64_t b = t * B / of; b < (t + 1) * B / of; b++) {
            const float *dyb = dy + ((b0 + b) * d->OC + g * d->OCg) * d->P;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)d->OCg, (int)d->K, (int)d->P,
                        1.0f, dyb, (int)d->P, col + b * d->P, (int)ld, 1.0f, dw, (int)d->K);
            if (db)
                for (int64_t o = 0; o < d->OCg; o++)
                    db[o] += cnn_vsum(dyb + o * d->P, d->P);
        }
        if (of > 1) {
#pragma omp barrier
#pragma omp for schedule(static)
            for (int64_t i = 0; i < nw + d->OCg; i++) {
                if (i >= nw && !dbias) continue;
                float sum = 0.0f;
                for (int u = 0; u < of; u++)
                    sum += sums[(size_t)u * per + i];
                if (i < nw)
                    dweight[i] += sum;
                else
                    dbias[i - nw] += sum;
            }
        }
    }
}

/* Per chunk and group: dW_g += dY_b col_b^T and db += sums of dY_b for each
 * image b; with dY' = dy gathered as (OCg, B*P), dcol = W_g^T dY', then
 * col2im into dx. x and dx are (N,C,H,W), dy is (N,OC,oh,ow). */
static void conv_backward(const cnn_node *n, const float *x, const float *y, const float *dy,
                          float *dx, const void *aux, float *work) {
    (void)y;
    const cnn_layer *L = &n->L;
    const conv_dims d = conv_dims_of(n);
    if (n->lanes.out) {
        conv_lanes_backward(n, &d, x, dy, dx, (float *)aux, work);
        return;
    }
    if (d.per_image) {
        conv_backward_per_image(n, &d, x, dy, dx, conv_keeps_patches(&d, L) ? aux : NULL, work);
        return;
    }
    if (d.winograd) {
        conv_backward_winograd(n, &d, x, dy, dx, work);
        return;
    }
    const float *weight = n->param[CNN_SLOT_WEIGHT];
    float *col = work, *dyg = work + d.chunk * d.K * d.P, *dcol = dyg + d.chunk * d.OCg * d.P;
    float *sums = dcol + d.chunk * d.K * d.P;
    for (int64_t k = 0, nk = chunk_count(d.N, d.chunk); k < nk; k++) {
        const int64_t b0 = k * d.N / nk, B = (k + 1) * d.N / nk - b0, ld = B * d.P;
        for (int64_t g = 0; g < d.G; g++) {
            /* dW_g += dY_b col_b^T image by image, straight from dy (NCHW): 9%
             * faster on AlexNet's conv1 than gathering dY' first. */
            im2col_chunk(col, x, &d, L, b0, B, g);
            chunk_weight_grads(n, &d, dy, col, b0, B, g, sums);
            if (!dx) continue;
            CNN_PARALLEL_FOR2(
                d.OCg * ld > 32768, for (int64_t b = 0; b < B; b++) {
                    for (int64_t o = 0; o < d.OCg; o++)
                        memcpy(dyg + o * ld + b * d.P, dy + ((b0 + b) * d.OC + g * d.OCg + o) * d.P,
                               (size_t)d.P * sizeof(float));
                });
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)d.K, (int)ld, (int)d.OCg,
                        1.0f, weight + g * d.OCg * d.K, (int)d.K, dyg, (int)ld, 0.0f, dcol,
                        (int)ld);
            col2im_chunk(dx, dcol, &d, L, b0, B, g);
        }
    }
}

const char *cnn_conv2d_algorithm(const cnn_node *n, bool train) {
    const conv_dims d = conv_dims_of(n);
    if (train && n->lanes.out) return "16 images a vector";
    if (d.per_image && d.narrow) return "per image, narrow"; /* in training too: no kept patches */
    if (d.per_image)
        return d.direct || (d.direct_infer && !(train && conv_keeps_patches(&d, &n->L)))
                   ? "per image, direct"
                   : "per image, im2col";
    if (!d.winograd) return "chunked, im2col";
    return d.wino->r == 5 ? "Winograd F(4x4, 5x5)"
           : d.wino->m == 4 ? "Winograd F(4x4, 3x3)"
                            : "Winograd F(2x2, 3x3)";
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
    .aux_bytes = conv_aux_bytes,
    .forward_train = conv_forward_train,
    .backward = conv_backward,
    .workspace_backward = conv_workspace_backward,
};
