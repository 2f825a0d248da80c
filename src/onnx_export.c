/* onnx_export.c - a model as an ONNX ModelProto, built with protobuf-c from
 * the onnx.proto that Debian's libonnx-dev ships (compiled at build time)
 * and streamed into an atomically written file.
 *
 * Every message is allocated in one list owned by the exporter and freed at
 * once; parameter data is not copied: initializers point into the model's
 * parameter buffer. */
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cnnkit/onnx.h"
#include "onnx.pb-c.h"
#include "util.h"

#ifndef CNNKIT_VERSION
#define CNNKIT_VERSION "0.0.0"
#endif

typedef struct ox {
    bool oom;
    void **allocs;
    size_t n_allocs, cap_allocs;
    /* Sized from the model before the walk: no layer adds more than 3 nodes,
     * 3 tensors or 2 initializers. */
    Onnx__NodeProto **nodes;
    Onnx__TensorProto **inits;
    Onnx__ValueInfoProto **vinfo;
    size_t n_nodes, n_inits, n_vinfo;
    bool dynamic; /* dimension 0 of batched tensors is "N" */
} ox;

static void *ox_alloc(ox *x, size_t size) {
    if (x->oom) return NULL;
    if (x->n_allocs == x->cap_allocs) {
        size_t cap = x->cap_allocs ? x->cap_allocs * 2 : 256;
        void **a = cap > SIZE_MAX / sizeof *a ? NULL : realloc(x->allocs, cap * sizeof *a);
        if (!a) {
            x->oom = true;
            return NULL;
        }
        x->allocs = a;
        x->cap_allocs = cap;
    }
    void *p = calloc(1, size ? size : 1);
    if (!p) {
        x->oom = true;
        return NULL;
    }
    x->allocs[x->n_allocs++] = p;
    return p;
}

static void *ox_array(ox *x, size_t n, size_t size) {
    size_t bytes;
    if (!cnn_mul_size(n, size, &bytes)) {
        x->oom = true;
        return NULL;
    }
    return ox_alloc(x, bytes);
}

/* A message of type T set to its INIT value. */
#define OX_NEW(x, T, INIT) ((T *)ox_new((x), sizeof(T), &(T)INIT))

static void *ox_new(ox *x, size_t size, const void *init) {
    void *p = ox_alloc(x, size);
    if (p) memcpy(p, init, size);
    return p;
}

static char *ox_printf(ox *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static char *ox_printf(ox *x, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *s = n < 0 ? NULL : ox_alloc(x, (size_t)n + 1);
    if (!s) return NULL;
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

static void ox_free(ox *x) {
    for (size_t i = 0; i < x->n_allocs; i++)
        free(x->allocs[i]);
    free(x->allocs);
}

/* ---- Types and tensors --------------------------------------------------- */

/* A float tensor type of shape s; with batch (and dynamic export) dimension
 * 0 is the symbolic "N". */
static Onnx__TypeProto *ox_type(ox *x, const cnn_shape *s, bool batch) {
    Onnx__TypeProto *t = OX_NEW(x, Onnx__TypeProto, ONNX__TYPE_PROTO__INIT);
    Onnx__TypeProto__Tensor *tt =
        OX_NEW(x, Onnx__TypeProto__Tensor, ONNX__TYPE_PROTO__TENSOR__INIT);
    Onnx__TensorShapeProto *sh = OX_NEW(x, Onnx__TensorShapeProto, ONNX__TENSOR_SHAPE_PROTO__INIT);
    Onnx__TensorShapeProto__Dimension **dims = ox_array(x, (size_t)s->ndim + 1, sizeof *dims);
    if (x->oom) return NULL;
    for (int i = 0; i < s->ndim; i++) {
        Onnx__TensorShapeProto__Dimension *d =
            OX_NEW(x, Onnx__TensorShapeProto__Dimension, ONNX__TENSOR_SHAPE_PROTO__DIMENSION__INIT);
        if (!d) return NULL;
        if (i == 0 && batch && x->dynamic) {
            d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
            d->dim_param = "N";
        } else {
            d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
            d->dim_value = s->dim[i];
        }
        dims[i] = d;
    }
    sh->n_dim = (size_t)s->ndim;
    sh->dim = dims;
    tt->has_elem_type = 1;
    tt->elem_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    tt->shape = sh;
    t->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    t->tensor_type = tt;
    return t;
}

static Onnx__ValueInfoProto *ox_value(ox *x, const char *name, const cnn_shape *s, bool batch) {
    Onnx__ValueInfoProto *v = OX_NEW(x, Onnx__ValueInfoProto, ONNX__VALUE_INFO_PROTO__INIT);
    Onnx__TypeProto *t = ox_type(x, s, batch);
    if (x->oom) return NULL;
    v->name = (char *)name;
    v->type = t;
    return v;
}

/* A value_info entry for an intermediate tensor. */
static void ox_add_value(ox *x, const char *name, const cnn_shape *s, bool batch) {
    Onnx__ValueInfoProto *v = ox_value(x, name, s, batch);
    if (v) x->vinfo[x->n_vinfo++] = v;
}

/* An initializer. float data is borrowed (it must outlive the write), int64
 * data is copied. */
static void ox_add_init(ox *x, const char *name, const cnn_shape *s, const float *f,
                        const int64_t *i64) {
    Onnx__TensorProto *t = OX_NEW(x, Onnx__TensorProto, ONNX__TENSOR_PROTO__INIT);
    int64_t *dims = ox_array(x, (size_t)s->ndim + 1, sizeof *dims);
    size_t numel = 0;
    if (cnn_shape_numel(s, &numel) != CNN_OK) x->oom = true;
    int64_t *copy = i64 ? ox_array(x, numel + 1, sizeof *copy) : NULL;
    if (x->oom) return;
    memcpy(dims, s->dim, (size_t)s->ndim * sizeof *dims);
    t->n_dims = (size_t)s->ndim;
    t->dims = dims;
    t->name = (char *)name;
    t->has_data_type = 1;
    if (i64) {
        memcpy(copy, i64, numel * sizeof *copy);
        t->data_type = ONNX__TENSOR_PROTO__DATA_TYPE__INT64;
        t->n_int64_data = numel;
        t->int64_data = copy;
    } else {
        t->data_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
        t->n_float_data = numel;
        t->float_data = (float *)f;
    }
    x->inits[x->n_inits++] = t;
}

/* A float initializer of n copies of v. */
static void ox_add_fill(ox *x, const char *name, int64_t n, float v) {
    float *data = ox_array(x, (size_t)n, sizeof *data);
    if (!data) return;
    for (int64_t i = 0; i < n; i++)
        data[i] = v;
    cnn_shape s = cnn_shape_make(1, &n);
    ox_add_init(x, name, &s, data, NULL);
}

/* ---- Nodes -------------------------------------------------------------- */

enum { OX_MAX_INPUTS = 5, OX_MAX_ATTRS = 8 };

static Onnx__NodeProto *ox_node(ox *x, const char *op, const char *name, const char *doc,
                                const char *output) {
    Onnx__NodeProto *n = OX_NEW(x, Onnx__NodeProto, ONNX__NODE_PROTO__INIT);
    char **in = ox_array(x, OX_MAX_INPUTS, sizeof *in);
    char **out = ox_array(x, 1, sizeof *out);
    Onnx__AttributeProto **attrs = ox_array(x, OX_MAX_ATTRS, sizeof *attrs);
    if (x->oom) return NULL;
    n->op_type = (char *)op;
    n->name = (char *)name;
    n->doc_string = (char *)doc;
    n->input = in;
    n->output = out;
    n->n_output = 1;
    out[0] = (char *)output;
    n->attribute = attrs;
    x->nodes[x->n_nodes++] = n;
    return n;
}

static void ox_input(ox *x, Onnx__NodeProto *n, const char *name) {
    if (x->oom) return;
    CNN_ASSERT(n->n_input < OX_MAX_INPUTS);
    n->input[n->n_input++] = (char *)name;
}

static Onnx__AttributeProto *ox_attr(ox *x, Onnx__NodeProto *n, const char *name,
                                     Onnx__AttributeProto__AttributeType type) {
    Onnx__AttributeProto *a = OX_NEW(x, Onnx__AttributeProto, ONNX__ATTRIBUTE_PROTO__INIT);
    if (!a) return NULL;
    CNN_ASSERT(n->n_attribute < OX_MAX_ATTRS);
    a->name = (char *)name;
    a->has_type = 1;
    a->type = type;
    n->attribute[n->n_attribute++] = a;
    return a;
}

static void ox_attr_int(ox *x, Onnx__NodeProto *n, const char *name, int64_t v) {
    Onnx__AttributeProto *a = ox_attr(x, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);
    if (!a) return;
    a->has_i = 1;
    a->i = v;
}

static void ox_attr_float(ox *x, Onnx__NodeProto *n, const char *name, double v) {
    Onnx__AttributeProto *a = ox_attr(x, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT);
    if (!a) return;
    a->has_f = 1;
    a->f = (float)v;
}

static void ox_attr_ints(ox *x, Onnx__NodeProto *n, const char *name, const int64_t *v,
                         size_t count) {
    Onnx__AttributeProto *a = ox_attr(x, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS);
    int64_t *copy = ox_array(x, count, sizeof *copy);
    if (!a || !copy) return;
    memcpy(copy, v, count * sizeof *copy);
    a->n_ints = count;
    a->ints = copy;
}

/* ---- Layers ------------------------------------------------------------- */

/* What the walk knows about the layer being exported. */
typedef struct ox_layer {
    const cnn_model *m;
    int node;
    const cnn_layer *L;
    const char *path;
    const char *doc; /* the layer's repr */
    const char *in;  /* input tensor name */
    const char *out; /* output tensor name */
    cnn_shape in_shape, out_shape;
    char *err;
    size_t errlen;
} ox_layer;

static cnn_status ox_refuse(const ox_layer *l, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* "net.0 AdaptiveAvgPool2d(output_size=(3, 2)): <why>" */
static cnn_status ox_refuse(const ox_layer *l, const char *fmt, ...) {
    char why[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    return cnn_fail(CNN_STATUS_UNSUPPORTED, l->err, l->errlen, "%s %s: %s", l->path, l->doc, why);
}

/* The name of the layer's parameter path.suffix, which the layer has. */
static const char *ox_param(const ox_layer *l, const char *suffix) {
    size_t plen = strlen(l->path);
    for (int i = 0; i < cnn_model_num_params(l->m); i++) {
        cnn_param_info p = cnn_model_param(l->m, i);
        if (p.node == l->node && !strncmp(p.name, l->path, plen) && p.name[plen] == '.' &&
            !strcmp(p.name + plen + 1, suffix))
            return p.name;
    }
    CNN_ASSERT(!"a layer's parameter is missing from the model");
    return NULL;
}

static void ox_pair(int64_t *dst, const int64_t *src) {
    dst[0] = src[0];
    dst[1] = src[1];
}

/* pads in ONNX's order: [top, left, bottom, right]. */
static void ox_pads(int64_t *pads, const int64_t *padding) {
    pads[0] = pads[2] = padding[0];
    pads[1] = pads[3] = padding[1];
}

static cnn_status ox_conv(ox *x, const ox_layer *l) {
    const cnn_layer *L = l->L;
    Onnx__NodeProto *n = ox_node(x, "Conv", l->path, l->doc, l->out);
    ox_input(x, n, l->in);
    ox_input(x, n, ox_param(l, "weight"));
    if (L->bias) ox_input(x, n, ox_param(l, "bias"));
    int64_t v[4];
    ox_pair(v, L->kernel);
    ox_attr_ints(x, n, "kernel_shape", v, 2);
    ox_pair(v, L->stride);
    ox_attr_ints(x, n, "strides", v, 2);
    ox_pads(v, L->padding);
    ox_attr_ints(x, n, "pads", v, 4);
    ox_pair(v, L->dilation);
    ox_attr_ints(x, n, "dilations", v, 2);
    ox_attr_int(x, n, "group", L->groups);
    return CNN_OK;
}

/* Gemm on a matrix; on any other rank (x @ W^T + b), MatMul with the
 * transposed weight and an Add, as Gemm takes only 2-D inputs. */
static cnn_status ox_linear(ox *x, const ox_layer *l) {
    const char *w = ox_param(l, "weight"), *b = l->L->bias ? ox_param(l, "bias") : NULL;
    if (l->in_shape.ndim == 2) {
        Onnx__NodeProto *n = ox_node(x, "Gemm", l->path, l->doc, l->out);
        ox_input(x, n, l->in);
        ox_input(x, n, w);
        if (b) ox_input(x, n, b);
        ox_attr_int(x, n, "transB", 1);
        return CNN_OK;
    }
    const char *wt = ox_printf(x, "%s/weight_T", l->path);
    Onnx__NodeProto *t = ox_node(x, "Transpose", ox_printf(x, "%s/Transpose", l->path), l->doc, wt);
    ox_input(x, t, w);
    ox_attr_ints(x, t, "perm", (const int64_t[]){1, 0}, 2);
    cnn_shape ts = cnn_shape_make(2, (const int64_t[]){l->L->in, l->L->out});
    ox_add_value(x, wt, &ts, false);

    const char *mm = b ? ox_printf(x, "%s/MatMul", l->path) : l->out;
    Onnx__NodeProto *n = ox_node(x, "MatMul", b ? mm : l->path, l->doc, mm);
    ox_input(x, n, l->in);
    ox_input(x, n, wt);
    if (!b) return CNN_OK;
    ox_add_value(x, mm, &l->out_shape, true);
    Onnx__NodeProto *a = ox_node(x, "Add", l->path, l->doc, l->out);
    ox_input(x, a, mm);
    ox_input(x, a, b);
    return CNN_OK;
}

/* a / b rounded down and up, b > 0. */
static int64_t ox_floor_div(int64_t a, int64_t b) { return a / b - (a % b != 0 && a < 0); }
static int64_t ox_ceil_div(int64_t a, int64_t b) { return -ox_floor_div(-a, b); }

/* Whether a max pooling has an output window that holds no input element;
 * if so, its index and axis. Only dilation makes one (padding is at most
 * half the kernel, and a ceil_mode window starts inside the input). */
static bool ox_pool_empty_window(const cnn_layer *L, const cnn_shape *in, const cnn_shape *out,
                                 int64_t *index, int *axis) {
    for (int a = 0; a < 2; a++)
        for (int64_t o = 0; o < out->dim[2 + a]; o++) {
            bool any = false;
            for (int64_t j = 0; j < L->kernel[a] && !any; j++) {
                const int64_t pos = o * L->stride[a] - L->padding[a] + j * L->dilation[a];
                any = pos >= 0 && pos < in->dim[2 + a];
            }
            if (!any) {
                *index = o;
                *axis = a;
                return true;
            }
        }
    return false;
}

/* PyTorch's ceil_mode drops a last window that would start in the right
 * padding; ONNX 1.12's shape inference (Debian's checker) keeps it, while
 * ONNX Runtime follows PyTorch. So ceil_mode=1 is written only where ONNX's
 * plain ceil rule gives PyTorch's size on both axes. Elsewhere the same
 * windows are written in floor mode, which every ONNX reader agrees on: with
 * the same pads where that gives PyTorch's size, or else with the bottom or
 * right pad grown until it does. Growing a pad is exact for MaxPool (padding
 * never wins) and for AveragePool without count_include_pad (padding is not
 * counted); AveragePool that counts padding would count the new padding too,
 * so that case is refused. */
static cnn_status ox_pool(ox *x, const ox_layer *l) {
    const cnn_layer *L = l->L;
    const bool max = L->op == CNN_OP_MAXPOOL2D;
    int64_t pads[4], num[2], want[2];
    ox_pads(pads, L->padding);
    bool ceil_fits = L->ceil_mode, floor_fits = true;
    for (int a = 0; a < 2; a++) {
        const int64_t extent = (max ? L->dilation[a] : 1) * (L->kernel[a] - 1) + 1;
        num[a] = l->in_shape.dim[2 + a] + pads[a] + pads[2 + a] - extent;
        want[a] = l->out_shape.dim[2 + a];
        ceil_fits = ceil_fits && ox_ceil_div(num[a], L->stride[a]) + 1 == want[a];
        floor_fits = floor_fits && ox_floor_div(num[a], L->stride[a]) + 1 == want[a];
    }
    int64_t empty;
    int axis;
    if (max && ox_pool_empty_window(L, &l->in_shape, &l->out_shape, &empty, &axis))
        return ox_refuse(l,
                         "its dilated window %lld along the %s holds only padding, where PyTorch "
                         "gives -inf and ONNX Runtime the lowest float",
                         (long long)empty, axis ? "width" : "height");
    if (!ceil_fits && !floor_fits) {
        if (!max && L->count_include_pad)
            return ox_refuse(l, "with ceil_mode PyTorch drops its last window along one axis "
                                "(it would start past the input) and keeps one that reaches past "
                                "the padding along the other, which ONNX's AveragePool with "
                                "count_include_pad cannot express");
        for (int a = 0; a < 2; a++) {
            const int64_t grow = (want[a] - 1) * L->stride[a] - num[a];
            if (grow <= 0) continue;
            pads[2 + a] += grow;
            if (pads[2 + a] >= L->kernel[a])
                return ox_refuse(l,
                                 "its ceil_mode windows along %s need an end padding of %lld, "
                                 "not smaller than the kernel as ONNX Runtime requires",
                                 a ? "the width" : "the height", (long long)pads[2 + a]);
        }
    }
    Onnx__NodeProto *n = ox_node(x, max ? "MaxPool" : "AveragePool", l->path, l->doc, l->out);
    ox_input(x, n, l->in);
    int64_t v[2];
    ox_pair(v, L->kernel);
    ox_attr_ints(x, n, "kernel_shape", v, 2);
    ox_pair(v, L->stride);
    ox_attr_ints(x, n, "strides", v, 2);
    ox_attr_ints(x, n, "pads", pads, 4);
    if (max) {
        ox_pair(v, L->dilation);
        ox_attr_ints(x, n, "dilations", v, 2);
    } else {
        ox_attr_int(x, n, "count_include_pad", L->count_include_pad);
    }
    ox_attr_int(x, n, "ceil_mode", ceil_fits);
    return CNN_OK;
}

/* ONNX has no adaptive pooling: a 1x1 output is GlobalAveragePool, an input
 * that is a multiple of the output is AveragePool with kernel = stride =
 * input / output (PyTorch's bins are then exactly those windows). */
static cnn_status ox_adaptive(ox *x, const ox_layer *l) {
    const int64_t *o = l->L->output_size, h = l->in_shape.dim[2], w = l->in_shape.dim[3];
    if (o[0] == 1 && o[1] == 1) {
        Onnx__NodeProto *n = ox_node(x, "GlobalAveragePool", l->path, l->doc, l->out);
        ox_input(x, n, l->in);
        return CNN_OK;
    }
    if (h % o[0] || w % o[1])
        return ox_refuse(l,
                         "ONNX has no adaptive pooling, and input %lldx%lld is not a multiple of "
                         "output_size %lldx%lld, so no AveragePool equals it; export with an "
                         "input whose height and width are multiples of the output size",
                         (long long)h, (long long)w, (long long)o[0], (long long)o[1]);
    Onnx__NodeProto *n = ox_node(x, "AveragePool", l->path, l->doc, l->out);
    ox_input(x, n, l->in);
    int64_t k[2] = {h / o[0], w / o[1]};
    ox_attr_ints(x, n, "kernel_shape", k, 2);
    ox_attr_ints(x, n, "strides", k, 2);
    return CNN_OK;
}

/* Flatten(start_dim=1, end_dim=-1) is ONNX's Flatten(axis=1); any other range
 * is a Reshape to the inferred shape, with 0 ("keep") for a batch it keeps. */
static cnn_status ox_flatten(ox *x, const ox_layer *l) {
    const int nd = l->in_shape.ndim;
    const int64_t s = l->L->start_dim < 0 ? l->L->start_dim + nd : l->L->start_dim;
    const int64_t e = l->L->end_dim < 0 ? l->L->end_dim + nd : l->L->end_dim;
    if (nd >= 2 && s == 1 && e == nd - 1) {
        Onnx__NodeProto *n = ox_node(x, "Flatten", l->path, l->doc, l->out);
        ox_input(x, n, l->in);
        ox_attr_int(x, n, "axis", 1);
        return CNN_OK;
    }
    if (s == 0 && x->dynamic)
        return ox_refuse(l, "it merges the batch dimension into others, which a dynamic batch "
                            "cannot name; export without --dynamic-batch");
    int64_t dims[CNN_MAX_DIMS];
    for (int i = 0; i < l->out_shape.ndim; i++)
        dims[i] = l->out_shape.dim[i];
    if (s > 0) dims[0] = 0;
    const char *shape = ox_printf(x, "%s/shape", l->path);
    cnn_shape ss = cnn_shape_make(1, (const int64_t[]){l->out_shape.ndim});
    ox_add_init(x, shape, &ss, NULL, dims);
    Onnx__NodeProto *n = ox_node(x, "Reshape", l->path, l->doc, l->out);
    ox_input(x, n, l->in);
    ox_input(x, n, shape);
    return CNN_OK;
}

/* Inference BatchNormalization on the running statistics; without affine,
 * scale and bias are synthesized initializers of ones and zeros. */
static cnn_status ox_batchnorm(ox *x, const ox_layer *l) {
    const cnn_layer *L = l->L;
    if (!L->track_running_stats)
        return ox_refuse(l, "track_running_stats=False normalizes with each batch's own "
                            "statistics even in eval mode, which ONNX's inference "
                            "BatchNormalization cannot do");
    const char *scale, *bias;
    if (L->affine) {
        scale = ox_param(l, "weight");
        bias = ox_param(l, "bias");
    } else {
        scale = ox_printf(x, "%s/scale_ones", l->path);
        bias = ox_printf(x, "%s/bias_zeros", l->path);
        ox_add_fill(x, scale, L->in, 1.0f);
        ox_add_fill(x, bias, L->in, 0.0f);
    }
    Onnx__NodeProto *n = ox_node(x, "BatchNormalization", l->path, l->doc, l->out);
    ox_input(x, n, l->in);
    ox_input(x, n, scale);
    ox_input(x, n, bias);
    ox_input(x, n, ox_param(l, "running_mean"));
    ox_input(x, n, ox_param(l, "running_var"));
    ox_attr_float(x, n, "epsilon", L->eps);
    return CNN_OK;
}

/* ONNX's LRN sums channels c - floor((size-1)/2) .. c + ceil((size-1)/2),
 * PyTorch's c - floor(size/2) .. c + floor((size-1)/2): the same window for
 * an odd size only (and ONNX Runtime takes only odd sizes). */
static cnn_status ox_lrn(ox *x, const ox_layer *l) {
    const cnn_layer *L = l->L;
    if (L->in % 2 == 0)
        return ox_refuse(l, "an even size centres the channel window one channel later in ONNX's "
                            "LRN than in PyTorch (and ONNX Runtime accepts only odd sizes)");
    if (l->in_shape.ndim != 4)
        return ox_refuse(l, "ONNX Runtime's LRN takes only a 4-D input [N, C, H, W], got %d-D",
                         l->in_shape.ndim);
    Onnx__NodeProto *n = ox_node(x, "LRN", l->path, l->doc, l->out);
    ox_input(x, n, l->in);
    ox_attr_int(x, n, "size", L->in);
    ox_attr_float(x, n, "alpha", L->alpha);
    ox_attr_float(x, n, "beta", L->beta);
    ox_attr_float(x, n, "bias", L->k);
    return CNN_OK;
}

static cnn_status ox_simple(ox *x, const ox_layer *l, const char *op) {
    Onnx__NodeProto *n = ox_node(x, op, l->path, l->doc, l->out);
    ox_input(x, n, l->in);
    if (l->L->op == CNN_OP_SOFTMAX) ox_attr_int(x, n, "axis", l->L->dim);
    return CNN_OK;
}

static cnn_status ox_layer_export(ox *x, const ox_layer *l) {
    switch (l->L->op) {
    case CNN_OP_CONV2D: return ox_conv(x, l);
    case CNN_OP_LINEAR: return ox_linear(x, l);
    case CNN_OP_MAXPOOL2D:
    case CNN_OP_AVGPOOL2D: return ox_pool(x, l);
    case CNN_OP_ADAPTIVEAVGPOOL2D: return ox_adaptive(x, l);
    case CNN_OP_RELU: return ox_simple(x, l, "Relu");
    case CNN_OP_SIGMOID: return ox_simple(x, l, "Sigmoid");
    case CNN_OP_TANH: return ox_simple(x, l, "Tanh");
    case CNN_OP_SOFTMAX: return ox_simple(x, l, "Softmax");
    case CNN_OP_FLATTEN: return ox_flatten(x, l);
    case CNN_OP_BATCHNORM2D: return ox_batchnorm(x, l);
    case CNN_OP_LRN: return ox_lrn(x, l);
    case CNN_OP_DROPOUT:
    case CNN_OP_COUNT: break;
    }
    return ox_refuse(l, "no ONNX mapping for this layer");
}

/* ---- Output ------------------------------------------------------------- */

typedef struct ox_sink {
    ProtobufCBuffer base; /* first, so the callback can find the sink */
    FILE *f;
    bool failed;
} ox_sink;

static void ox_sink_append(ProtobufCBuffer *b, size_t len, const uint8_t *data) {
    ox_sink *s = (ox_sink *)b;
    if (!s->failed && fwrite(data, 1, len, s->f) != len) s->failed = true;
}

static cnn_status ox_write(const Onnx__ModelProto *mp, const char *path, char *err, size_t errlen) {
    /* protobuf messages, and so ONNX files without external data, stop at 2 GiB. */
    size_t size = protobuf_c_message_get_packed_size(&mp->base);
    if (size > INT32_MAX)
        return cnn_fail(CNN_STATUS_UNSUPPORTED, err, errlen,
                        "%s: the model needs %zu bytes, over protobuf's 2 GiB limit for one ONNX "
                        "file (external data is not supported)",
                        path, size);
    cnn_afile af;
    cnn_status s = cnn_afile_open(&af, path, err, errlen);
    if (s != CNN_OK) return s;
    ox_sink sink = {.base = {ox_sink_append}, .f = af.f};
    protobuf_c_message_pack_to_buffer(&mp->base, &sink.base);
    if (sink.failed) {
        cnn_afile_abort(&af);
        return cnn_fail(CNN_STATUS_IO, err, errlen, "%s: cannot write", path);
    }
    return cnn_afile_commit(&af, err, errlen);
}

/* ---- The model ---------------------------------------------------------- */

static char *ox_model_repr(ox *x, const cnn_model *m) {
    int n = cnn_model_repr(m, NULL, 0);
    char *s = n < 0 ? NULL : ox_alloc(x, (size_t)n + 1);
    if (s) cnn_model_repr(m, s, (size_t)n + 1);
    return s;
}

static char *ox_layer_repr(ox *x, const cnn_layer *L) {
    int n = cnn_layer_repr(NULL, 0, L);
    char *s = n < 0 ? NULL : ox_alloc(x, (size_t)n + 1);
    if (s) cnn_layer_repr(s, (size_t)n + 1, L);
    return s;
}

/* The node whose tensor node i's output is: Dropout passes its input's on;
 * -1 is the model's input. */
static int ox_source(const cnn_model *m, int i) {
    while (i >= 0 && cnn_model_node_layer(m, i)->op == CNN_OP_DROPOUT) {
        const int *in;
        cnn_model_node_inputs(m, i, &in);
        i = in[0];
    }
    return i;
}

static cnn_status ox_graph(ox *x, cnn_model *m, const cnn_shape *input, Onnx__GraphProto *g,
                           char *err, size_t errlen) {
    const int nn = cnn_model_num_nodes(m);
    const char **tname = ox_array(x, (size_t)nn, sizeof *tname);
    if (!tname) return CNN_STATUS_NO_MEMORY;
    for (int i = 0; i < nn; i++) {
        const int *in;
        if (cnn_model_node_inputs(m, i, &in) != 1)
            return cnn_fail(CNN_STATUS_UNSUPPORTED, err, errlen,
                            "%s: only layers with one input can be exported",
                            cnn_model_node_path(m, i));
        tname[i] = cnn_model_node_path(m, i);
    }
    /* The last layer's tensor is the graph's "output"; when only Dropouts
     * separate it from the input, an Identity carries it. */
    const int last = nn - 1, out_src = ox_source(m, last);
    if (out_src >= 0) tname[out_src] = "output";

    for (int i = 0; i < cnn_model_num_params(m); i++) {
        cnn_param_info p = cnn_model_param(m, i);
        if (p.data) ox_add_init(x, p.name, &p.shape, p.data, NULL); /* not num_batches_tracked */
    }
    for (int i = 0; i < nn; i++) {
        const cnn_layer *L = cnn_model_node_layer(m, i);
        if (L->op == CNN_OP_DROPOUT) continue;
        const int *in;
        cnn_model_node_inputs(m, i, &in);
        const int src = ox_source(m, in[0]);
        ox_layer l = {.m = m,
                      .node = i,
                      .L = L,
                      .path = cnn_model_node_path(m, i),
                      .doc = ox_layer_repr(x, L),
                      .in = src < 0 ? "input" : tname[src],
                      .out = tname[i],
                      .in_shape = src < 0 ? *input : cnn_model_node_stats(m, src).out_shape,
                      .out_shape = cnn_model_node_stats(m, i).out_shape,
                      .err = err,
                      .errlen = errlen};
        if (x->oom) return CNN_STATUS_NO_MEMORY;
        cnn_status s = ox_layer_export(x, &l);
        if (s != CNN_OK) return s;
        if (i != out_src) ox_add_value(x, l.out, &l.out_shape, true);
    }
    if (out_src < 0) {
        const cnn_layer *L = cnn_model_node_layer(m, last);
        Onnx__NodeProto *n =
            ox_node(x, "Identity", cnn_model_node_path(m, last), ox_layer_repr(x, L), "output");
        ox_input(x, n, "input");
    }

    Onnx__ValueInfoProto **io = ox_array(x, 2, sizeof *io);
    cnn_shape out_shape = cnn_model_output_shape(m);
    if (io) io[0] = ox_value(x, "input", input, true);
    if (io) io[1] = ox_value(x, "output", &out_shape, true);
    if (x->oom) return CNN_STATUS_NO_MEMORY;
    g->name = (char *)cnn_model_class(m);
    g->doc_string = ox_model_repr(x, m);
    g->n_node = x->n_nodes;
    g->node = x->nodes;
    g->n_initializer = x->n_inits;
    g->initializer = x->inits;
    g->n_input = 1;
    g->input = &io[0];
    g->n_output = 1;
    g->output = &io[1];
    g->n_value_info = x->n_vinfo;
    g->value_info = x->vinfo;
    return x->oom ? CNN_STATUS_NO_MEMORY : CNN_OK;
}

cnn_status cnn_onnx_export(cnn_model *m, const cnn_shape *input, int dynamic_batch,
                           const char *path, char *err, size_t errlen) {
    if (!m || !input || !path)
        return cnn_fail(CNN_STATUS_INVALID_ARGUMENT, err, errlen,
                        "cnn_onnx_export: model, input and path are required");
    const int nn = cnn_model_num_nodes(m);
    if (nn < 1)
        return cnn_fail(CNN_STATUS_INVALID_ARGUMENT, err, errlen, "%s: the model has no layers",
                        cnn_model_class(m));
    if (dynamic_batch && input->ndim < 2)
        return cnn_fail(CNN_STATUS_UNSUPPORTED, err, errlen,
                        "a dynamic batch needs an input with a batch dimension (2-D or more)");
    cnn_status s = cnn_model_infer(m, input);
    if (s != CNN_OK) return cnn_fail(s, err, errlen, "%s", cnn_model_error(m));

    ox x = {.dynamic = dynamic_batch != 0};
    const size_t cap = 3 * (size_t)nn + 1;
    x.nodes = ox_array(&x, cap, sizeof *x.nodes);
    x.vinfo = ox_array(&x, cap, sizeof *x.vinfo);
    x.inits = ox_array(&x, (size_t)cnn_model_num_params(m) + 2 * (size_t)nn, sizeof *x.inits);
    Onnx__ModelProto *mp = OX_NEW(&x, Onnx__ModelProto, ONNX__MODEL_PROTO__INIT);
    Onnx__GraphProto *g = OX_NEW(&x, Onnx__GraphProto, ONNX__GRAPH_PROTO__INIT);
    Onnx__OperatorSetIdProto *opset =
        OX_NEW(&x, Onnx__OperatorSetIdProto, ONNX__OPERATOR_SET_ID_PROTO__INIT);
    Onnx__OperatorSetIdProto **opsets = ox_array(&x, 1, sizeof *opsets);
    if (!x.oom) s = ox_graph(&x, m, input, g, err, errlen);
    if (s == CNN_OK && x.oom) s = CNN_STATUS_NO_MEMORY;
    if (s == CNN_STATUS_NO_MEMORY) cnn_fail(s, err, errlen, "%s: out of memory", path);
    if (s == CNN_OK) {
        opset->domain = "";
        opset->has_version = 1;
        opset->version = CNN_ONNX_OPSET;
        opsets[0] = opset;
        mp->has_ir_version = 1;
        mp->ir_version = CNN_ONNX_IR_VERSION;
        mp->n_opset_import = 1;
        mp->opset_import = opsets;
        mp->producer_name = "cnnkit";
        mp->producer_version = CNNKIT_VERSION;
        mp->graph = g;
        s = ox_write(mp, path, err, errlen);
    }
    ox_free(&x);
    return s;
}
