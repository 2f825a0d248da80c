/* layer.c - layer descriptions: constructors with PyTorch's defaults, names,
 * reprs, attribute checks, and the window arithmetic the spatial ops share. */
#include <stdio.h>
#include <string.h>

#include "model_impl.h"

static const cnn_op_vtable *const op_tables[] = {
    &cnn_op_conv2d,
    &cnn_op_linear,
    &cnn_op_maxpool2d,
    &cnn_op_avgpool2d,
    &cnn_op_adaptiveavgpool2d,
    &cnn_op_relu,
    &cnn_op_sigmoid,
    &cnn_op_tanh,
    &cnn_op_flatten,
    &cnn_op_dropout,
    &cnn_op_batchnorm2d,
    &cnn_op_lrn,
    &cnn_op_softmax,
};
_Static_assert(CNN_COUNT_OF(op_tables) == CNN_OP_COUNT, "one table per op");

const cnn_op_vtable *cnn_op_table(cnn_op op) {
    if ((unsigned)op >= CNN_OP_COUNT) return NULL;
    CNN_ASSERT(op_tables[op]->op == op);
    CNN_ASSERT(op_tables[op]->backward || op_tables[op]->train_view);
    return op_tables[op];
}

const char *cnn_op_name(cnn_op op) {
    const cnn_op_vtable *vt = cnn_op_table(op);
    return vt ? vt->name : NULL;
}

cnn_op cnn_op_from_name(const char *name) {
    for (int i = 0; i < CNN_OP_COUNT; i++)
        if (strcmp(op_tables[i]->name, name) == 0) return (cnn_op)i;
    return CNN_OP_COUNT;
}

int cnn_layer_repr(char *buf, size_t cap, const cnn_layer *L) {
    const cnn_op_vtable *vt = cnn_op_table(L->op);
    cnn_sb sb = {0};
    if (vt) {
        cnn_sb_printf(&sb, "%s(", vt->name);
        vt->repr(L, &sb);
        cnn_sb_puts(&sb, ")");
    } else {
        cnn_sb_puts(&sb, "<invalid layer>");
    }
    int n = sb.oom ? -1 : (int)sb.len;
    if (cap) snprintf(buf, cap, "%s", sb.oom ? "" : sb.buf);
    cnn_sb_free(&sb);
    return n;
}

bool cnn_layer_check(const cnn_layer *L, char *err, size_t errlen) {
    const cnn_op_vtable *vt = cnn_op_table(L->op);
    if (!vt) {
        snprintf(err, errlen, "invalid op %d", (int)L->op);
        return false;
    }
    return vt->check ? vt->check(L, err, errlen) : true;
}

static cnn_layer layer_of(cnn_op op) {
    cnn_layer L = {0};
    L.op = op;
    L.dilation[0] = L.dilation[1] = 1;
    L.stride[0] = L.stride[1] = 1;
    L.groups = 1;
    L.bias = true;
    L.count_include_pad = true;
    return L;
}

cnn_layer cnn_conv2d(int64_t in_channels, int64_t out_channels, int64_t kernel_size) {
    cnn_layer L = layer_of(CNN_OP_CONV2D);
    L.in = in_channels;
    L.out = out_channels;
    L.kernel[0] = L.kernel[1] = kernel_size;
    return L;
}

cnn_layer cnn_linear(int64_t in_features, int64_t out_features) {
    cnn_layer L = layer_of(CNN_OP_LINEAR);
    L.in = in_features;
    L.out = out_features;
    return L;
}

static cnn_layer pool_of(cnn_op op, int64_t kernel_size) {
    cnn_layer L = layer_of(op);
    L.kernel[0] = L.kernel[1] = kernel_size;
    L.stride[0] = L.stride[1] = kernel_size;
    return L;
}

cnn_layer cnn_maxpool2d(int64_t kernel_size) { return pool_of(CNN_OP_MAXPOOL2D, kernel_size); }
cnn_layer cnn_avgpool2d(int64_t kernel_size) { return pool_of(CNN_OP_AVGPOOL2D, kernel_size); }

cnn_layer cnn_adaptiveavgpool2d(int64_t output_size) {
    cnn_layer L = layer_of(CNN_OP_ADAPTIVEAVGPOOL2D);
    L.output_size[0] = L.output_size[1] = output_size;
    return L;
}

cnn_layer cnn_relu(void) { return layer_of(CNN_OP_RELU); }
cnn_layer cnn_sigmoid(void) { return layer_of(CNN_OP_SIGMOID); }
cnn_layer cnn_tanh(void) { return layer_of(CNN_OP_TANH); }

cnn_layer cnn_flatten(void) {
    cnn_layer L = layer_of(CNN_OP_FLATTEN);
    L.start_dim = 1;
    L.end_dim = -1;
    return L;
}

cnn_layer cnn_dropout(double p) {
    cnn_layer L = layer_of(CNN_OP_DROPOUT);
    L.p = p;
    return L;
}

cnn_layer cnn_batchnorm2d(int64_t num_features) {
    cnn_layer L = layer_of(CNN_OP_BATCHNORM2D);
    L.in = num_features;
    L.eps = 1e-5;
    L.momentum = 0.1;
    L.affine = true;
    L.track_running_stats = true;
    return L;
}

cnn_layer cnn_lrn(int64_t size) {
    cnn_layer L = layer_of(CNN_OP_LRN);
    L.in = size;
    L.alpha = 1e-4;
    L.beta = 0.75;
    L.k = 1.0;
    return L;
}

cnn_layer cnn_softmax(int64_t dim) {
    cnn_layer L = layer_of(CNN_OP_SOFTMAX);
    L.dim = dim;
    return L;
}

/* PyTorch's pooling_output_shape before its last-window rule:
 * div_rtn(in + 2p - d*(k-1) - 1 + (ceil ? s-1 : 0), s) + 1. */
static int64_t pool_windows(int64_t in, int64_t k, int64_t s, int64_t p, int64_t d,
                            bool ceil_mode) {
    int64_t num = in + 2 * p - d * (k - 1) - 1 + (ceil_mode ? s - 1 : 0);
    int64_t q = num / s;
    if (num % s != 0 && num < 0) q--; /* round toward -inf; s > 0 */
    return q + 1;
}

/* With ceil_mode, a last window that would start in the right padding is dropped. */
int64_t cnn_pool_out_size(int64_t in, int64_t k, int64_t s, int64_t p, int64_t d, bool ceil_mode) {
    int64_t out = pool_windows(in, k, s, p, d, ceil_mode);
    if (ceil_mode && (out - 1) * s >= in + p) out--;
    return out;
}

void cnn_explain_window(cnn_sb *sb, const char *axis, int64_t in, int64_t k, int64_t s, int64_t p,
                        int64_t d, bool ceil_mode, bool show_dilation) {
    const char *round = ceil_mode ? "ceil" : "floor";
    if (show_dilation)
        cnn_sb_printf(sb, "%s' = %s((%lld + 2*%lld - %lld*(%lld-1) - 1) / %lld) + 1", axis, round,
                      (long long)in, (long long)p, (long long)d, (long long)k, (long long)s);
    else
        cnn_sb_printf(sb, "%s' = %s((%lld + 2*%lld - %lld) / %lld) + 1", axis, round, (long long)in,
                      (long long)p, (long long)k, (long long)s);
    int64_t windows = pool_windows(in, k, s, p, d, ceil_mode);
    int64_t out = cnn_pool_out_size(in, k, s, p, d, ceil_mode);
    if (windows != out)
        cnn_sb_printf(sb,
                      " - 1 = %lld  (the last window would start at %lld >= %lld + %lld, "
                      "input + left padding: dropped)\n",
                      (long long)out, (long long)((windows - 1) * s), (long long)in, (long long)p);
    else
        cnn_sb_printf(sb, " = %lld\n", (long long)out);
}

bool cnn_infer_4d(const cnn_shape *in, char *err, size_t errlen) {
    if (in->ndim == 4) return true;
    snprintf(err, errlen, "expects a 4-D input [N, C, H, W], got %d-D", in->ndim);
    return false;
}

void cnn_repr_pair(cnn_sb *sb, const int64_t v[2], bool tuple) {
    if (tuple)
        cnn_sb_printf(sb, "(%lld, %lld)", (long long)v[0], (long long)v[1]);
    else
        cnn_sb_printf(sb, "%lld", (long long)v[0]);
}
