/* cnnkit/model.h - models: a module tree for names and printing, a graph of
 * layer nodes for computing.
 *
 * A model mirrors a PyTorch nn.Module. Its module tree holds containers
 * (the top-level class, Sequentials) and leaves; every leaf is a node of the
 * compute graph, kept in topological order, with its op, attributes, input
 * node(s) and views of its parameters inside one contiguous float buffer.
 * Every module and parameter has its PyTorch path ("net.0",
 * "net.0.weight", "features.1.running_var"), so names equal the keys of
 * PyTorch's state_dict().
 *
 * Building:
 *
 *   cnn_model *m = cnn_model_new("LeNet");
 *   int net = cnn_model_add_container(m, 0, "net", "Sequential");
 *   cnn_layer c = cnn_conv2d(1, 6, 5);
 *   c.padding[0] = c.padding[1] = 2;
 *   cnn_model_add_layer(m, net, "0", &c);    // input: the model's input
 *   cnn_model_add_layer(m, net, "1", &(cnn_layer){...});  // input: the node before
 *   ...
 *   cnn_model_finalize(m);          // allocates parameters (zero)
 *   cnn_model_init(m, CNN_INIT_DEFAULT, 42);
 *
 * Running:
 *
 *   cnn_shape in = cnn_shape_make(4, (int64_t[]){1, 1, 28, 28});
 *   if (cnn_model_infer(m, &in) != CNN_OK) puts(cnn_model_error(m));
 *   cnn_model_forward(m, &x, &y);    // y allocated by the call
 *
 * Errors: every call that returns a status also leaves a one-line text in
 * cnn_model_error(m) naming the layer by path and repr.
 */
#ifndef CNNKIT_MODEL_H
#define CNNKIT_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cnnkit/layer.h"
#include "cnnkit/status.h"
#include "cnnkit/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cnn_model cnn_model;

/* A model whose top-level module has the given class name. NULL when out of memory. */
cnn_model *cnn_model_new(const char *class_name);
void cnn_model_free(cnn_model *m);

/* Adds a container module (e.g. "Sequential") named name under module parent
 * (0 is the top). Returns its module index, or -1 on error (see cnn_model_error). */
int cnn_model_add_container(cnn_model *m, int parent, const char *name, const char *type);

/* Adds a leaf layer under module parent. Its input is the node added before
 * it (the model's input for the first), which is how Sequential runs.
 * Returns the new node's index, or -1 on error. */
int cnn_model_add_layer(cnn_model *m, int parent, const char *name, const cnn_layer *L);

/* Adds a leaf layer with explicit inputs: node indices, or -1 for the model's input. */
int cnn_model_add_node(cnn_model *m, int parent, const char *name, const cnn_layer *L,
                       const int *inputs, int n_inputs);

/* Records where a node was defined ("model.py:3:5"), copied. Shape errors
 * for the node then start with it, so they point into the model file. */
cnn_status cnn_model_set_origin(cnn_model *m, int node, const char *origin);

/* Ends building: lays out every parameter in one buffer, zero-filled.
 * Layers can no longer be added. */
cnn_status cnn_model_finalize(cnn_model *m);

/* Text of the last error, "" when none. Valid until the next call on m. */
const char *cnn_model_error(const cnn_model *m);

/* ---- Structure ---------------------------------------------------------- */

const char *cnn_model_class(const cnn_model *m);

typedef struct cnn_module_info {
    const char *name; /* local name: "net", "0"; "" for the top */
    const char *path; /* "net.0"; "" for the top */
    const char *type; /* class name: "LeNet", "Sequential", "Conv2d" */
    int parent;       /* module index, -1 for the top */
    int depth;        /* 0 for the top */
    int node;         /* graph node of a leaf, -1 for a container */
} cnn_module_info;

/* Modules in definition (pre-)order; module 0 is the top. */
int cnn_model_num_modules(const cnn_model *m);
cnn_module_info cnn_model_module(const cnn_model *m, int i);

/* Graph nodes (the leaf layers) in topological order. */
int cnn_model_num_nodes(const cnn_model *m);
const cnn_layer *cnn_model_node_layer(const cnn_model *m, int node);
const char *cnn_model_node_path(const cnn_model *m, int node);
/* The node's inputs (-1 = the model's input); returns their count. */
int cnn_model_node_inputs(const cnn_model *m, int node, const int **inputs);

/* PyTorch's print(model), with the final newline. snprintf-style. */
int cnn_model_repr(const cnn_model *m, char *buf, size_t cap);

/* ---- Parameters --------------------------------------------------------- */

typedef struct cnn_param_info {
    const char *name; /* state_dict key: "net.0.weight" */
    cnn_shape shape;
    float *data;  /* view into the model's parameter buffer; NULL for an int64 buffer */
    float *grad;  /* the same view into the gradient buffer; NULL for an int64 buffer */
    int64_t *i64; /* BatchNorm's num_batches_tracked; NULL otherwise */
    size_t numel;
    int trainable; /* 0 for running statistics and counters */
    int node;
} cnn_param_info;

/* Every tensor of the state_dict, in PyTorch's order. */
int cnn_model_num_params(const cnn_model *m);
cnn_param_info cnn_model_param(const cnn_model *m, int i);
/* The single parameter buffer (weights, biases and running statistics). */
float *cnn_model_param_buffer(cnn_model *m, size_t *numel);

typedef enum cnn_init {
    CNN_INIT_DEFAULT, /* PyTorch's reset_parameters(): kaiming_uniform(a=sqrt(5)) weights,
                         uniform(+-1/sqrt(fan_in)) biases, BatchNorm 1/0 */
    CNN_INIT_XAVIER,  /* xavier_uniform weights of Conv2d and Linear; the rest as DEFAULT */
    CNN_INIT_COUNT
} cnn_init;

/* Fills every parameter from the seeded PRNG (PCG32, see cnnkit/rng.h). */
cnn_status cnn_model_init(cnn_model *m, cnn_init how, uint64_t seed);

/* Loads a safetensors state_dict. Like PyTorch's strict load_state_dict, it
 * checks every key, shape and dtype and reports the missing, unexpected and
 * mismatched keys all at once; on any error the model is unchanged. */
cnn_status cnn_model_load(cnn_model *m, const char *path);

/* Saves the state_dict as safetensors (atomically); metadata may be NULL or a
 * NULL-terminated list of key, value pairs. */
cnn_status cnn_model_save(cnn_model *m, const char *path, const char *const *metadata);

struct cnn_st_file;

/* Adds every state_dict tensor of m to st (borrowed: m must outlive the write),
 * for files that hold more than the weights, such as checkpoints. */
cnn_status cnn_model_add_state(cnn_model *m, struct cnn_st_file *st);

/* Loads the state_dict from an already read safetensors file (path names it in
 * errors), as strictly as cnn_model_load, except that keys starting with
 * skip_prefix (when not NULL) belong to someone else and are ignored. */
cnn_status cnn_model_load_st(cnn_model *m, const struct cnn_st_file *st, const char *path,
                             const char *skip_prefix);

/* ---- Shapes and statistics --------------------------------------------- */

/* Shape inference for an input shape, before any allocation. Fails with
 * CNN_STATUS_SHAPE and an error naming the layer, what it got and what it needed. */
cnn_status cnn_model_infer(cnn_model *m, const cnn_shape *input);

typedef struct cnn_node_stats {
    cnn_shape out_shape; /* after cnn_model_infer */
    size_t params;       /* trainable parameters */
    size_t macs;         /* as torchinfo 1.8 counts them */
    size_t out_bytes;    /* bytes of the output activation */
} cnn_node_stats;

/* Per-node statistics from the last successful cnn_model_infer. */
cnn_node_stats cnn_model_node_stats(const cnn_model *m, int node);
/* The inferred input and output shapes. */
cnn_shape cnn_model_input_shape(const cnn_model *m);
cnn_shape cnn_model_output_shape(const cnn_model *m);

/* How the node's output H and W follow from its input, with the numbers
 * filled in: "h' = floor((28 + 2*2 - 1*(5-1) - 1) / 1) + 1 = 28\n" and the
 * same for w'; "" for a node that keeps H and W. snprintf-style. */
int cnn_model_node_explain(const cnn_model *m, int node, char *buf, size_t cap);

/* ---- Memory ------------------------------------------------------------- */

/* Bytes the model holds for one input shape, part by part. */
typedef struct cnn_memory {
    size_t weights;              /* the parameter buffer (weights, biases, BatchNorm's running
                                    statistics) and the int64 counters (num_batches_tracked) */
    size_t gradients;            /* the gradient buffer, laid out as the parameter buffer;
                                    cnn_model_finalize allocates it, so inference holds it too;
                                    training a small model on several threads adds one per
                                    thread (see cnn_model_forward_train) */
    size_t activations;          /* the activation arena: every layer's output, a buffer reused
                                    once its readers have run (inference) or every output kept
                                    for the backward pass (training); views take no room */
    size_t activation_gradients; /* training: dL/d(output) of every layer, the arena's layout */
    size_t training_state;       /* training: what the forward keeps for the backward (Dropout's
                                    masks, MaxPool2d's argmax, BatchNorm's batch statistics, a
                                    convolution's im2col patches) */
    size_t workspace;            /* scratch shared by the layers (im2col, ...), the largest
                                    one's need, forward and (training) backward; one per
                                    thread's replica, and their gathered outputs, when the
                                    training runs on replicas */
    size_t total;                /* the sum of the above */
} cnn_memory;

/* What running m on inputs of shape input will hold (train: training
 * forwards and backward passes; else inference forwards), computed from the
 * inferred shapes and the same layout the passes allocate, without allocating
 * any of it: a model that has run only such passes has allocated exactly
 * these figures. The arenas only grow, so a model that ran several shapes or
 * both modes holds, part by part, the largest. Optimizer state is not the
 * model's: see cnn_optim_new (cnnkit/train.h). m's own shapes, plan and
 * pending backward are left as they were. Fails as cnn_model_infer does on a
 * shape that does not fit (the rules that hold in training only, such as
 * BatchNorm's two values per channel, are not checked), or with
 * CNN_STATUS_NO_MEMORY when the total does not fit a size_t; *out is then
 * zero. */
cnn_status cnn_model_memory(cnn_model *m, const cnn_shape *input, bool train, cnn_memory *out);

/* ---- Running ------------------------------------------------------------ */

/* The forward pass in inference mode (Dropout is the identity, BatchNorm uses
 * its running statistics). Infers shapes for x, plans the activations once
 * per input shape and allocates *y (free it with cnn_tensor_free). */
cnn_status cnn_model_forward(cnn_model *m, const cnn_tensor *x, cnn_tensor *y);

/* The same, without a copy: the output stays inside the model and is valid
 * until the next call on m. NULL on failure (see cnn_model_error). */
const float *cnn_model_forward_view(cnn_model *m, const cnn_tensor *x);

/* ---- Training ------------------------------------------------------------
 *
 * One step: cnn_model_zero_grad, cnn_model_forward_train, a loss that gives
 * dL/dy (cnn_cross_entropy in cnnkit/train.h), cnn_model_backward, then an
 * optimizer step on the parameter buffer (cnnkit/train.h).
 */

/* The forward pass in training mode: Dropout zeroes with probability p and
 * scales by 1/(1-p); BatchNorm normalizes with the batch's statistics and
 * updates its running ones as PyTorch does. Every output is kept for the
 * backward pass. Random choices come from PCG32 seeded with seed on stream
 * step*4096 + node, so a step can be replayed exactly. Returns the output
 * (inside the model, valid until the next call), or NULL on failure.
 * A small model (at most 1 Mi parameters, no BatchNorm or Dropout) on
 * several threads, with at least 8 images per thread, runs as a replica per
 * thread: each thread passes its own share of the batch through the whole
 * model, and cnn_model_backward adds up the replicas' gradients at its end
 * (LeNet's step at batch 256 on 2 cores: 8-11% faster than sharing out each
 * layer). The results equal the single model's up to rounding, and repeat
 * bit for bit at a given thread count. */
const float *cnn_model_forward_train(cnn_model *m, const cnn_tensor *x, uint64_t seed,
                                     uint64_t step);

/* Backpropagates dy = dL/d(output) through the last training forward, whose
 * input x must be passed again. Parameter gradients accumulate (+=) into the
 * gradient buffer; dx, when not NULL, receives dL/dx (overwritten). */
cnn_status cnn_model_backward(cnn_model *m, const float *x, const float *dy, float *dx);

/* The replicas that ran the pending training forward (see
 * cnn_model_forward_train), 0 when the model ran it itself. */
int cnn_model_replicas(const cnn_model *m);

/* Sets every parameter gradient to zero. */
void cnn_model_zero_grad(cnn_model *m);

/* The single gradient buffer, laid out as the parameter buffer. */
float *cnn_model_grad_buffer(cnn_model *m, size_t *numel);

/* Calls hook(ctx, node) during cnn_model_backward as soon as the node's
 * parameter gradients are final (nodes run last to first), e.g. to start
 * reducing them across processes while the rest of the pass runs. On
 * replicas (see cnn_model_forward_train) they are final together, at the
 * end of the pass, and the hook runs then for every node, last to first. */
void cnn_model_set_grad_hook(cnn_model *m, void (*hook)(void *ctx, int node), void *ctx);

/* While frozen, training forwards still normalize with the batch's
 * statistics but leave BatchNorm's running statistics and counters as they
 * are (data-parallel replicas whose statistics come from rank 0). */
void cnn_model_freeze_stats(cnn_model *m, bool frozen);

/* Profiling: while on, every node's forward and backward time accumulates
 * (seconds, wall clock); turning it on resets the sums. */
void cnn_model_set_profiling(cnn_model *m, bool on);
void cnn_model_node_time(const cnn_model *m, int node, double *forward, double *backward);

/* How a Conv2d node runs at the batch of the last pass (or the declared
 * input's): "per image, direct", "per image, narrow", "per image, im2col", "chunked, im2col",
 * "Winograd F(2x2, 3x3)", "Winograd F(4x4, 3x3)" or "Winograd F(4x4, 5x5)";
 * NULL for other layers. The string is static. */
const char *cnn_model_node_algorithm(const cnn_model *m, int node);

/* Threads for OpenMP and OpenBLAS; 0 means all cores. */
void cnn_set_threads(int n);

#ifdef __cplusplus
}
#endif
#endif
