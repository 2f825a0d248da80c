/* model_impl.h - the model's insides, shared by model.c, weights.c and the
 * op_*.c files. Never installed.
 *
 * Each layer kind is one op_*.c file that exports a `static const`-style
 * table of functions (cnn_op_vtable); model.c only walks the graph and calls
 * through the table. */
#ifndef CNNKIT_MODEL_IMPL_H
#define CNNKIT_MODEL_IMPL_H

#include <stdbool.h>

#include "cnnkit/model.h"
#include "cnnkit/rng.h"
#include "util.h"

#define CNN_MAX_INPUTS 4
#define CNN_MAX_PARAMS 5

typedef struct cnn_node cnn_node;

/* Where a parameter's view is kept on its node. */
typedef enum cnn_slot {
    CNN_SLOT_WEIGHT,
    CNN_SLOT_BIAS,
    CNN_SLOT_RUNNING_MEAN,
    CNN_SLOT_RUNNING_VAR,
    CNN_SLOT_NUM_BATCHES, /* int64 */
    CNN_SLOT_COUNT
} cnn_slot;

typedef struct cnn_param_spec {
    cnn_slot slot;
    cnn_shape shape;
} cnn_param_spec;

typedef struct cnn_op_vtable {
    cnn_op op;
    const char *name; /* PyTorch's class name */
    /* Attributes alone; err gets the problem, without the layer's name. */
    bool (*check)(const cnn_layer *L, char *err, size_t errlen);
    /* The layer's parameters and buffers in state_dict order; returns the count. */
    int (*params)(const cnn_layer *L, cnn_param_spec out[CNN_MAX_PARAMS]);
    /* Output shape from the input shape(s); err gets the problem. */
    bool (*infer)(const cnn_layer *L, const cnn_shape *in, cnn_shape *out, char *err,
                  size_t errlen);
    /* Inside the parentheses of the repr ("in_features=400, out_features=120, bias=True"). */
    void (*repr)(const cnn_layer *L, cnn_sb *sb);
    /* Floats of scratch the forward pass needs; NULL for none. */
    size_t (*workspace)(const cnn_node *n);
    /* Inference-mode forward: y = f(x), shapes in n->in_shape and n->out_shape. */
    void (*forward)(const cnn_node *n, const float *x, float *y, float *work);
    /* The H and W arithmetic for --explain; NULL when the op keeps H and W. */
    void (*explain)(const cnn_node *n, cnn_sb *sb);
    /* The output is the input, unchanged (Flatten, Dropout in inference): no copy. */
    bool is_view;

    /* ---- Training ---- */
    /* The output is the input in training too (Flatten): no copy, no backward. */
    bool train_view;
    /* Shape rules that hold in training only (BatchNorm needs two values per channel). */
    bool (*check_train)(const cnn_node *n, char *err, size_t errlen);
    /* Bytes that forward_train keeps for backward (masks, argmax, batch statistics). */
    size_t (*aux_bytes)(const cnn_node *n);
    /* Training-mode forward (Dropout masks from rng, BatchNorm on batch statistics with
     * running-statistics updates); NULL when it is the inference forward. */
    void (*forward_train)(cnn_node *n, const float *x, float *y, void *aux, float *work,
                          cnn_rng *rng);
    /* Accumulates dL/dx into dx (skipped when dx is NULL) and dL/dparam into n->grad[]. */
    void (*backward)(const cnn_node *n, const float *x, const float *y, const float *dy, float *dx,
                     const void *aux, float *work);
    /* Floats of scratch the backward pass needs; NULL for none. */
    size_t (*workspace_backward)(const cnn_node *n);
    /* backward sets dx, rather than adding to it, when n->zero_din: the model
     * does not zero it first. */
    bool sets_dx;
} cnn_op_vtable;

extern const cnn_op_vtable cnn_op_conv2d, cnn_op_linear, cnn_op_maxpool2d, cnn_op_avgpool2d,
    cnn_op_adaptiveavgpool2d, cnn_op_relu, cnn_op_sigmoid, cnn_op_tanh, cnn_op_flatten,
    cnn_op_dropout, cnn_op_batchnorm2d, cnn_op_lrn, cnn_op_softmax;

/* The table for an op, or NULL. */
const cnn_op_vtable *cnn_op_table(cnn_op op);

/* How a Conv2d node runs at its planned batch, in a training plan (train)
 * or an inference plan: "per image, direct", "per image, narrow", "per image, im2col", "chunked,
 * im2col" or "Winograd F(4x4, 3x3)" (and the other variants). The backward
 * pass follows the same path. Plans differ on 8- to 16-wide rows that the
 * narrow kernel does not take (padding, groups): inference runs them by the
 * direct kernel, training by im2col, keeping the patches. */
const char *cnn_conv2d_algorithm(const struct cnn_node *n, bool train);

/* Training plans on one thread, with a batch of whole sixteens, only (see
 * plan_lanes in model.c): a node's input, and its gradient, lie as 16
 * images per vector lane (lanes.h) when in, its output and its gradient
 * when out; the op runs lanes.c's kernels. A chain that runs a sixteen at a
 * time through all its nodes has its first and last node on each of its
 * nodes (-1 on the others); the op's call runs the sixteens [from, to) of
 * the batch, every sixteen outside such a chain. */
typedef struct cnn_lanes_plan {
    bool in, out;
    int first, last;
    int64_t from, to;
    /* In such a chain, the gradient of the node's input (din_one) and of its
     * output (dout_one) hold one sixteen, reused by each: the chain's own. */
    bool din_one, dout_one;
} cnn_lanes_plan;

struct cnn_node {
    cnn_layer L;
    const cnn_op_vtable *vt;
    char *path;
    char *origin; /* "file:line:col" of a node read from a model file, or NULL */
    int module;
    int n_in;
    int in[CNN_MAX_INPUTS];
    float *param[CNN_SLOT_COUNT]; /* views into the parameter buffer, NULL when absent */
    float *grad[CNN_SLOT_COUNT];  /* the same views into the gradient buffer */
    int64_t *num_batches_tracked;
    const bool *stats_frozen;      /* the model's flag */
    cnn_shape in_shape, out_shape; /* from the last inference */
    size_t out_offset;             /* into the activation arena */
    size_t aux_offset;             /* into the training aux arena */
    size_t grad_offset;            /* training: dL/d(output) in the gradient arena */
    bool zero_din;  /* training: this node's backward is the first to add to its input's gradient */
    bool zero_dout; /* training: nothing adds to this node's output gradient (a dead end) */
    double fwd_seconds, bwd_seconds; /* accumulated while the model is profiled */
    /* The elementwise activation after this Conv2d or Linear, which the op
     * applies to its own output while it is in cache; the activation's node is
     * then a view in inference and skips its forward in training (see
     * act_after_layer in model.c). */
    bool has_act;
    cnn_op act;
    /* Training plans only: this activation runs in place on its input, the
     * output of a Conv2d or Linear (see act_in_place in model.c). */
    bool in_place;
    /* Training plans only (see act_before_pool in model.c): this pooling
     * node's backward pass also runs that of the activation before it, bwd_act,
     * into the activation's input gradient, which it sets when bwd_act_sets
     * and adds to otherwise; that activation's node then skips its own
     * (bwd_skip). */
    bool bwd_act_fused, bwd_act_sets, bwd_skip;
    cnn_op bwd_act;
    cnn_lanes_plan lanes;
};

typedef struct cnn_module {
    char *name, *path, *type;
    int parent, depth, node;
} cnn_module;

typedef struct cnn_param {
    char *name;
    cnn_shape shape;
    size_t numel;
    size_t offset; /* into the float buffer, or the int64 buffer for counters */
    int node;
    cnn_slot slot;
} cnn_param;

struct cnn_model {
    cnn_module *mods;
    int n_mods, cap_mods;
    cnn_node *nodes;
    int n_nodes, cap_nodes;
    cnn_param *params;
    int n_params;
    float *pbuf; /* every float parameter and buffer, one allocation */
    size_t pbuf_numel;
    int64_t *ibuf; /* int64 buffers (num_batches_tracked) */
    size_t ibuf_numel;
    bool finalized;

    float *gbuf; /* gradients, the same layout as pbuf */

    bool inferred; /* shapes below are valid */
    cnn_shape input_shape;
    int planned;      /* 0: no plan; PLAN_INFER or PLAN_TRAIN for input_shape */
    int plan_threads; /* omp_get_max_threads() when planned */
    float *arena;
    size_t arena_numel;
    float *work;
    size_t work_numel;
    float *darena; /* training: dL/d(output), each live only during part of the backward pass */
    size_t darena_numel;
    unsigned char *aux;
    size_t aux_bytes;
    bool trained_forward; /* the arena holds a training forward, so backward may run */
    bool profiling;
    bool stats_frozen; /* training forwards leave BatchNorm's running statistics alone */
    void (*grad_hook)(void *ctx, int node);
    void *grad_hook_ctx;
    /* Training small models: a replica per thread (replicas.c). */
    struct cnn_model **rep;
    int n_rep;
    int rep_threads; /* replicas that ran the pending training forward; 0: m itself did */
    float *rep_out;  /* their outputs, gathered */
    size_t rep_out_numel;

    char err[1024];
};

enum { PLAN_INFER = 1, PLAN_TRAIN = 2 };

/* Sets m->err and returns status. */
cnn_status cnn_model_fail(cnn_model *m, cnn_status status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* What m has allocated now, in cnn_model_memory's terms: the sizes its
 * buffers were last allocated with (the tests compare the two). */
void cnn_model_allocated(const cnn_model *m, cnn_memory *out);

/* Frees what a model owns apart from what its replicas borrow (names,
 * modules, parameter records, the parameter buffers): its nodes, gradient
 * buffer, plan buffers and replicas. cnn_model_free calls it for a model,
 * replicas.c for a replica. */
void cnn_model_free_own(cnn_model *m);

/* Data parallelism over the threads in training (replicas.c). Whether
 * training m at this batch runs on a replica per thread; the passes on
 * them; cnn_model_memory's and cnn_model_allocated's share of them; and
 * their release. */
bool cnn_replicas_fit(const cnn_model *m, int64_t batch, int threads);
const float *cnn_replicas_forward_train(cnn_model *m, const cnn_tensor *x, uint64_t seed,
                                        uint64_t step, int threads);
cnn_status cnn_replicas_backward(cnn_model *m, const float *x, const float *dy, float *dx);
cnn_status cnn_replicas_memory(cnn_model *m, const cnn_shape *input, int threads, cnn_memory *out);
void cnn_replicas_allocated(const cnn_model *m, cnn_memory *out);
void cnn_replicas_free(cnn_model *m);

/* "net.7 Linear(in_features=400, out_features=120, bias=True)" into sb. */
void cnn_node_describe(const cnn_node *n, cnn_sb *sb);

/* Whether this pooling node's backward pass can run the backward pass of
 * the elementwise activation act before it: AvgPool2d(2) after ReLU,
 * Sigmoid or Tanh (cnn_vavgpool2_act_backward), MaxPool2d after ReLU. */
bool cnn_pool_takes_act(const cnn_node *n, cnn_op act);

/* Whether a Conv2d or an AvgPool2d takes its input and output as 16 images
 * per vector lane (lanes.c) in training: stride 1, one group and kernels at
 * most 7 wide; AvgPool2d(2). */
bool cnn_conv2d_lanes_ok(const cnn_node *n);
bool cnn_pool_lanes_ok(const cnn_node *n);

/* Shared by the pooling and convolution ops: one spatial output size with
 * PyTorch's formula, including ceil_mode's last-window rule. */
int64_t cnn_pool_out_size(int64_t in, int64_t k, int64_t s, int64_t p, int64_t d, bool ceil_mode);
void cnn_explain_window(cnn_sb *sb, const char *axis, int64_t in, int64_t k, int64_t s, int64_t p,
                        int64_t d, bool ceil_mode, bool show_dilation);
/* The image layers' first shape rule: a 4-D [N, C, H, W] input; false with the
 * reason in err otherwise. */
bool cnn_infer_4d(const cnn_shape *in, char *err, size_t errlen);
/* Repr of a pooling argument: "3" or "(3, 2)" as it was written. */
void cnn_repr_pair(cnn_sb *sb, const int64_t v[2], bool tuple);

#endif
