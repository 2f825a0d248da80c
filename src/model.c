/* model.c - the module tree, the graph, parameter layout, shape inference,
 * statistics, printing and the inference-mode forward pass. */
#define _POSIX_C_SOURCE 200809L
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "lanes.h"
#include "model_impl.h"
#include "parallel.h"

cnn_status cnn_model_fail(cnn_model *m, cnn_status status, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m->err, sizeof m->err, fmt, ap);
    va_end(ap);
    return status;
}

void cnn_node_describe(const cnn_node *n, cnn_sb *sb) {
    cnn_sb_printf(sb, "%s %s(", n->path, n->vt->name);
    n->vt->repr(&n->L, sb);
    cnn_sb_puts(sb, ")");
}

static char *join_path(const char *parent, const char *name) {
    size_t a = strlen(parent), b = strlen(name);
    char *p = malloc(a + b + 2);
    if (!p) return NULL;
    if (a)
        snprintf(p, a + b + 2, "%s.%s", parent, name);
    else
        memcpy(p, name, b + 1);
    return p;
}

cnn_model *cnn_model_new(const char *class_name) {
    cnn_model *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    m->mods = calloc(8, sizeof *m->mods);
    m->cap_mods = 8;
    if (m->mods) {
        m->mods[0] = (cnn_module){.name = strdup(""),
                                  .path = strdup(""),
                                  .type = strdup(class_name),
                                  .parent = -1,
                                  .depth = 0,
                                  .node = -1};
        m->n_mods = 1;
    }
    if (!m->mods || !m->mods[0].name || !m->mods[0].path || !m->mods[0].type) {
        cnn_model_free(m);
        return NULL;
    }
    return m;
}

void cnn_model_free(cnn_model *m) {
    if (!m) return;
    for (int i = 0; i < m->n_mods; i++) {
        free(m->mods[i].name);
        free(m->mods[i].path);
        free(m->mods[i].type);
    }
    for (int i = 0; i < m->n_nodes; i++) {
        free(m->nodes[i].path);
        free(m->nodes[i].origin);
    }
    for (int i = 0; i < m->n_params; i++)
        free(m->params[i].name);
    free(m->mods);
    free(m->params);
    free(m->pbuf);
    free(m->ibuf);
    cnn_model_free_own(m);
    free(m);
}

void cnn_model_free_own(cnn_model *m) {
    cnn_replicas_free(m);
    free(m->nodes);
    free(m->gbuf);
    free(m->darena);
    free(m->aux);
    free(m->arena);
    free(m->work);
}

const char *cnn_model_error(const cnn_model *m) { return m->err; }

/* Adds module `name` under `parent`, checking PyTorch's naming rules. */
static int add_module(cnn_model *m, int parent, const char *name, const char *type, int node) {
    if (m->finalized) {
        cnn_model_fail(m, CNN_STATUS_INVALID_ARGUMENT, "cannot add '%s': the model is finalized",
                       name);
        return -1;
    }
    if (parent < 0 || parent >= m->n_mods || m->mods[parent].node >= 0) {
        cnn_model_fail(m, CNN_STATUS_INVALID_ARGUMENT,
                       "cannot add '%s': parent %d is not a container", name, parent);
        return -1;
    }
    if (!name[0] || strchr(name, '.')) {
        cnn_model_fail(m, CNN_STATUS_INVALID_ARGUMENT,
                       "module name '%s' must be non-empty and contain no '.'", name);
        return -1;
    }
    for (int i = 1; i < m->n_mods; i++) {
        if (m->mods[i].parent == parent && strcmp(m->mods[i].name, name) == 0) {
            cnn_model_fail(m, CNN_STATUS_INVALID_ARGUMENT, "duplicate module name '%s' in %s", name,
                           parent ? m->mods[parent].path : m->mods[0].type);
            return -1;
        }
    }
    if (m->n_mods == m->cap_mods) {
        cnn_module *p = realloc(m->mods, 2 * (size_t)m->cap_mods * sizeof *p);
        if (!p) goto oom;
        m->mods = p;
        m->cap_mods *= 2;
    }
    cnn_module *mod = &m->mods[m->n_mods];
    *mod = (cnn_module){.name = strdup(name),
                        .path = join_path(m->mods[parent].path, name),
                        .type = strdup(type),
                        .parent = parent,
                        .depth = m->mods[parent].depth + 1,
                        .node = node};
    if (!mod->name || !mod->path || !mod->type) {
        free(mod->name);
        free(mod->path);
        free(mod->type);
        goto oom;
    }
    /* Modules are kept in pre-order: a child goes after its parent's last descendant. */
    int at = parent + 1;
    while (at < m->n_mods) {
        int a = m->mods[at].parent;
        while (a > parent)
            a = m->mods[a].parent;
        if (a != parent) break;
        at++;
    }
    cnn_module tmp = *mod;
    memmove(&m->mods[at + 1], &m->mods[at], (size_t)(m->n_mods - at) * sizeof *mod);
    m->mods[at] = tmp;
    for (int i = 0; i <= m->n_mods; i++)
        if (i != at && m->mods[i].parent >= at) m->mods[i].parent++;
    for (int i = 0; i < m->n_nodes; i++)
        if (m->nodes[i].module >= at) m->nodes[i].module++;
    m->n_mods++;
    return at;
oom:
    cnn_model_fail(m, CNN_STATUS_NO_MEMORY, "out of memory");
    return -1;
}

int cnn_model_add_container(cnn_model *m, int parent, const char *name, const char *type) {
    return add_module(m, parent, name, type, -1);
}

int cnn_model_add_node(cnn_model *m, int parent, const char *name, const cnn_layer *L,
                       const int *inputs, int n_inputs) {
    const cnn_op_vtable *vt = cnn_op_table(L->op);
    if (!vt) {
        cnn_model_fail(m, CNN_STATUS_INVALID_ARGUMENT, "invalid op %d", (int)L->op);
        return -1;
    }
    if (n_inputs < 1 || n_inputs > CNN_MAX_INPUTS) {
        cnn_model_fail(m, CNN_STATUS_INVALID_ARGUMENT, "a layer takes 1 to %d inputs, got %d",
                       CNN_MAX_INPUTS, n_inputs);
        return -1;
    }
    for (int i = 0; i < n_inputs; i++) {
        if (inputs[i] < -1 || inputs[i] >= m->n_nodes) {
            cnn_model_fail(m, CNN_STATUS_INVALID_ARGUMENT,
                           "input %d of '%s' is not an earlier node", inputs[i], name);
            return -1;
        }
    }
    char why[256];
    if (!cnn_layer_check(L, why, sizeof why)) {
        char repr[256];
        cnn_layer_repr(repr, sizeof repr, L);
        const char *pp = parent >= 0 && parent < m->n_mods ? m->mods[parent].path : "";
        cnn_model_fail(m, CNN_STATUS_INVALID_ARGUMENT, "%s%s%s %s: %s", pp, *pp ? "." : "", name,
                       repr, why);
        return -1;
    }
    if (m->n_nodes == m->cap_nodes) {
        int cap = m->cap_nodes ? 2 * m->cap_nodes : 16;
        cnn_node *p = realloc(m->nodes, (size_t)cap * sizeof *p);
        if (!p) {
            cnn_model_fail(m, CNN_STATUS_NO_MEMORY, "out of memory");
            return -1;
        }
        m->nodes = p;
        m->cap_nodes = cap;
    }
    int id = m->n_nodes;
    int mod = add_module(m, parent, name, vt->name, id);
    if (mod < 0) return -1;
    cnn_node *n = &m->nodes[id];
    *n = (cnn_node){.L = *L, .vt = vt, .module = mod, .n_in = n_inputs};
    n->path = strdup(m->mods[mod].path);
    n->stats_frozen = &m->stats_frozen;
    memcpy(n->in, inputs, (size_t)n_inputs * sizeof *inputs);
    m->n_nodes++;
    if (!n->path) {
        cnn_model_fail(m, CNN_STATUS_NO_MEMORY, "out of memory");
        return -1;
    }
    return id;
}

cnn_status cnn_model_set_origin(cnn_model *m, int node, const char *origin) {
    if (node < 0 || node >= m->n_nodes)
        return cnn_model_fail(m, CNN_STATUS_INVALID_ARGUMENT, "no node %d", node);
    char *copy = strdup(origin);
    if (!copy) return cnn_model_fail(m, CNN_STATUS_NO_MEMORY, "out of memory");
    free(m->nodes[node].origin);
    m->nodes[node].origin = copy;
    return CNN_OK;
}

int cnn_model_add_layer(cnn_model *m, int parent, const char *name, const cnn_layer *L) {
    int prev = m->n_nodes - 1;
    return cnn_model_add_node(m, parent, name, L, &prev, 1);
}

static const char *const slot_names[] = {"weight", "bias", "running_mean", "running_var",
                                         "num_batches_tracked"};
_Static_assert(CNN_COUNT_OF(slot_names) == CNN_SLOT_COUNT, "one name per slot");

cnn_status cnn_model_finalize(cnn_model *m) {
    if (m->finalized) return CNN_OK;
    /* Count first, so the buffers are allocated once. */
    int total = 0;
    for (int i = 0; i < m->n_nodes; i++) {
        cnn_param_spec spec[CNN_MAX_PARAMS];
        total += m->nodes[i].vt->params ? m->nodes[i].vt->params(&m->nodes[i].L, spec) : 0;
    }
    m->params = calloc(total ? (size_t)total : 1, sizeof *m->params);
    if (!m->params) return cnn_model_fail(m, CNN_STATUS_NO_MEMORY, "out of memory");
    size_t fsize = 0, isize = 0;
    for (int i = 0; i < m->n_nodes; i++) {
        cnn_node *n = &m->nodes[i];
        cnn_param_spec spec[CNN_MAX_PARAMS];
        int np = n->vt->params ? n->vt->params(&n->L, spec) : 0;
        for (int j = 0; j < np; j++) {
            cnn_param *p = &m->params[m->n_params];
            size_t numel;
            if (cnn_shape_numel(&spec[j].shape, &numel) != CNN_OK)
                return cnn_model_fail(m, CNN_STATUS_NO_MEMORY, "%s: parameter too large", n->path);
            p->name = join_path(n->path, slot_names[spec[j].slot]);
            if (!p->name) return cnn_model_fail(m, CNN_STATUS_NO_MEMORY, "out of memory");
            m->n_params++;
            p->shape = spec[j].shape;
            p->numel = numel;
            p->node = i;
            p->slot = spec[j].slot;
            size_t *size = spec[j].slot == CNN_SLOT_NUM_BATCHES ? &isize : &fsize;
            p->offset = *size;
            if (*size > SIZE_MAX - numel)
                return cnn_model_fail(m, CNN_STATUS_NO_MEMORY, "%s: parameters too large", n->path);
            *size += numel;
        }
    }
    size_t bytes;
    if (!cnn_mul_size(fsize ? fsize : 1, sizeof(float), &bytes) || !(m->pbuf = calloc(1, bytes)))
        return cnn_model_fail(m, CNN_STATUS_NO_MEMORY, "out of memory for %zu parameters", fsize);
    m->gbuf = calloc(1, bytes);
    if (!m->gbuf) return cnn_model_fail(m, CNN_STATUS_NO_MEMORY, "out of memory for gradients");
    m->ibuf = calloc(isize ? isize : 1, sizeof(int64_t));
    if (!m->ibuf) return cnn_model_fail(m, CNN_STATUS_NO_MEMORY, "out of memory");
    m->pbuf_numel = fsize;
    m->ibuf_numel = isize;
    for (int i = 0; i < m->n_params; i++) {
        cnn_param *p = &m->params[i];
        cnn_node *n = &m->nodes[p->node];
        if (p->slot == CNN_SLOT_NUM_BATCHES)
            n->num_batches_tracked = m->ibuf + p->offset;
        else {
            n->param[p->slot] = m->pbuf + p->offset;
            n->grad[p->slot] = m->gbuf + p->offset;
        }
    }
    m->finalized = true;
    return CNN_OK;
}

/* ---- Structure ---- */

const char *cnn_model_class(const cnn_model *m) { return m->mods[0].type; }
int cnn_model_num_modules(const cnn_model *m) { return m->n_mods; }

cnn_module_info cnn_model_module(const cnn_model *m, int i) {
    CNN_ASSERT(i >= 0 && i < m->n_mods);
    const cnn_module *mod = &m->mods[i];
    return (cnn_module_info){mod->name, mod->path, mod->type, mod->parent, mod->depth, mod->node};
}

int cnn_model_num_nodes(const cnn_model *m) { return m->n_nodes; }

const cnn_layer *cnn_model_node_layer(const cnn_model *m, int node) {
    CNN_ASSERT(node >= 0 && node < m->n_nodes);
    return &m->nodes[node].L;
}

const char *cnn_model_node_path(const cnn_model *m, int node) {
    CNN_ASSERT(node >= 0 && node < m->n_nodes);
    return m->nodes[node].path;
}

int cnn_model_node_inputs(const cnn_model *m, int node, const int **inputs) {
    CNN_ASSERT(node >= 0 && node < m->n_nodes);
    *inputs = m->nodes[node].in;
    return m->nodes[node].n_in;
}

/* PyTorch's Module.__repr__: a leaf with a one-line extra_repr prints inline;
 * a container prints its children indented by two spaces per level. */
static void repr_module(const cnn_model *m, int i, cnn_sb *sb) {
    const cnn_module *mod = &m->mods[i];
    if (mod->node >= 0) {
        const cnn_node *n = &m->nodes[mod->node];
        cnn_sb_printf(sb, "%s(", n->vt->name);
        n->vt->repr(&n->L, sb);
        cnn_sb_puts(sb, ")");
        return;
    }
    cnn_sb_printf(sb, "%s(", mod->type);
    bool any = false;
    for (int c = i + 1; c < m->n_mods; c++) {
        if (m->mods[c].parent != i) continue;
        any = true;
        cnn_sb_puts(sb, "\n");
        for (int d = 0; d <= mod->depth; d++)
            cnn_sb_puts(sb, "  ");
        cnn_sb_printf(sb, "(%s): ", m->mods[c].name);
        repr_module(m, c, sb);
    }
    if (any) {
        cnn_sb_puts(sb, "\n");
        for (int d = 0; d < mod->depth; d++)
            cnn_sb_puts(sb, "  ");
    }
    cnn_sb_puts(sb, ")");
}

int cnn_model_repr(const cnn_model *m, char *buf, size_t cap) {
    cnn_sb sb = {0};
    repr_module(m, 0, &sb);
    cnn_sb_puts(&sb, "\n");
    int n = sb.oom ? -1 : (int)sb.len;
    if (cap) snprintf(buf, cap, "%s", sb.oom ? "" : sb.buf);
    cnn_sb_free(&sb);
    return n;
}

/* ---- Parameters ---- */

int cnn_model_num_params(const cnn_model *m) { return m->n_params; }

cnn_param_info cnn_model_param(const cnn_model *m, int i) {
    CNN_ASSERT(m->finalized && i >= 0 && i < m->n_params);
    const cnn_param *p = &m->params[i];
    bool counter = p->slot == CNN_SLOT_NUM_BATCHES;
    return (cnn_param_info){
        .name = p->name,
        .shape = p->shape,
        .data = counter ? NULL : m->pbuf + p->offset,
        .grad = counter ? NULL : m->gbuf + p->offset,
        .i64 = counter ? m->ibuf + p->offset : NULL,
        .numel = p->numel,
        .trainable = p->slot == CNN_SLOT_WEIGHT || p->slot == CNN_SLOT_BIAS,
        .node = p->node,
    };
}

float *cnn_model_param_buffer(cnn_model *m, size_t *numel) {
    if (numel) *numel = m->pbuf_numel;
    return m->pbuf;
}

/* ---- Shapes and statistics ---- */

cnn_status cnn_model_infer(cnn_model *m, const cnn_shape *input) {
    m->err[0] = 0;
    if (!m->finalized) {
        cnn_status s = cnn_model_finalize(m);
        if (s != CNN_OK) return s;
    }
    if (m->inferred && cnn_shape_equal(&m->input_shape, input)) return CNN_OK;
    m->inferred = false;
    m->planned = 0;
    m->trained_forward = false;
    m->rep_threads = 0;
    size_t numel;
    if (cnn_shape_numel(input, &numel) != CNN_OK)
        return cnn_model_fail(m, CNN_STATUS_SHAPE, "input shape is invalid or too large");
    if (m->n_nodes == 0) return cnn_model_fail(m, CNN_STATUS_SHAPE, "the model has no layers");
    for (int i = 0; i < m->n_nodes; i++) {
        cnn_node *n = &m->nodes[i];
        n->in_shape = n->in[0] < 0 ? *input : m->nodes[n->in[0]].out_shape;
        char why[512];
        size_t out_numel;
        if (!n->vt->infer(&n->L, &n->in_shape, &n->out_shape, why, sizeof why) ||
            cnn_shape_numel(&n->out_shape, &out_numel) != CNN_OK) {
            char shape[128];
            cnn_shape_format(shape, sizeof shape, &n->in_shape);
            cnn_sb sb = {0};
            cnn_node_describe(n, &sb);
            cnn_model_fail(m, CNN_STATUS_SHAPE, "%s%s%s: %s (input %s)", n->origin ? n->origin : "",
                           n->origin ? ": " : "", sb.oom ? n->path : sb.buf,
                           why[0] ? why : "output too large", shape);
            cnn_sb_free(&sb);
            return CNN_STATUS_SHAPE;
        }
    }
    m->input_shape = *input;
    m->inferred = true;
    return CNN_OK;
}

cnn_shape cnn_model_input_shape(const cnn_model *m) { return m->input_shape; }

cnn_shape cnn_model_output_shape(const cnn_model *m) {
    CNN_ASSERT(m->inferred);
    return m->nodes[m->n_nodes - 1].out_shape;
}

cnn_node_stats cnn_model_node_stats(const cnn_model *m, int node) {
    CNN_ASSERT(m->inferred && node >= 0 && node < m->n_nodes);
    const cnn_node *n = &m->nodes[node];
    cnn_node_stats st = {.out_shape = n->out_shape};
    for (int i = 0; i < m->n_params; i++) {
        const cnn_param *p = &m->params[i];
        if (p->node == node && (p->slot == CNN_SLOT_WEIGHT || p->slot == CNN_SLOT_BIAS))
            st.params += p->numel;
    }
    /* torchinfo 1.8: a convolution's parameters once per output position
     * (batch included, channels not); any other layer's once per sample. */
    size_t per = (size_t)n->out_shape.dim[0];
    if (n->L.op == CNN_OP_CONV2D)
        per = (size_t)(n->out_shape.dim[0] * n->out_shape.dim[2] * n->out_shape.dim[3]);
    st.macs = st.params * per;
    size_t numel;
    cnn_shape_numel(&n->out_shape, &numel);
    st.out_bytes = numel * sizeof(float);
    return st;
}

int cnn_model_node_explain(const cnn_model *m, int node, char *buf, size_t cap) {
    CNN_ASSERT(m->inferred && node >= 0 && node < m->n_nodes);
    const cnn_node *n = &m->nodes[node];
    cnn_sb sb = {0};
    cnn_sb_puts(&sb, "");
    if (n->vt->explain) n->vt->explain(n, &sb);
    int len = sb.oom ? -1 : (int)sb.len;
    if (cap) snprintf(buf, cap, "%s", sb.oom ? "" : sb.buf);
    cnn_sb_free(&sb);
    return len;
}

/* ---- Running ---- */

static cnn_status grow(cnn_model *m, void **buf, size_t *have, size_t want, size_t elem,
                       const char *what) {
    size_t bytes;
    if (want <= *have) return CNN_OK;
    void *p = cnn_mul_size(want, elem, &bytes) ? realloc(*buf, bytes) : NULL;
    if (!p)
        return cnn_model_fail(m, CNN_STATUS_NO_MEMORY, "out of memory for %zu bytes of %s",
                              want * elem, what);
    *buf = p;
    *have = want;
    return CNN_OK;
}

/* Buffers start on 64-byte boundaries: no false sharing between them, aligned vectors. */
static size_t round_up(size_t n, size_t to) { return (n + to - 1) / to * to; }

/* Node i is an elementwise activation (ReLU, Sigmoid, Tanh) that its producer,
 * a Conv2d or Linear read by nothing else, applies to its output itself
 * while it is in cache. In inference the activation's node is then a view
 * (LeNet's inference: 15% faster); in training it runs in place
 * (act_in_place), and only its backward pass is left to run (LeNet's
 * training step: conv1 and its sigmoid forward 0.86 -> 0.83 ms, the step
 * 6.13 -> 5.90 ms in paired runs on Zen 5). */
static bool act_after_layer(const cnn_model *m, int i) {
    const cnn_node *n = &m->nodes[i];
    const cnn_op op = n->L.op;
    if (n->n_in != 1 || n->in[0] < 0) return false;
    if (op != CNN_OP_RELU && op != CNN_OP_SIGMOID && op != CNN_OP_TANH) return false;
    const int p = n->in[0];
    if (m->nodes[p].L.op != CNN_OP_CONV2D && m->nodes[p].L.op != CNN_OP_LINEAR) return false;
    for (int k = p + 1; k < m->n_nodes; k++)
        for (int j = 0; j < m->nodes[k].n_in; j++)
            if (k != i && m->nodes[k].in[j] == p) return false;
    return true;
}

/* In training, the same activation runs in place on the layer's output: the
 * layer's backward pass never reads its own output, and the activation's
 * reads only the activated values (y > 0, y(1 - y), 1 - y^2), so the
 * layer's output need not be kept. Its gradient keeps its own buffer.
 * AlexNet at batch 64 keeps 152 MB less. */
static bool act_in_place(const cnn_model *m, int i, bool train) {
    return train && act_after_layer(m, i);
}

/* The elementwise activation before node i when i is a pool that alone
 * reads it and can take its backward pass (cnn_pool_takes_act: LeNet's
 * sigmoids before AvgPool2d(2), AlexNet's ReLUs before MaxPool2d): in
 * training, the pool's backward pass runs the activation's too, in one
 * pass, and the activation's node skips its own. -1 otherwise. */
static int act_before_pool(const cnn_model *m, int i) {
    const cnn_node *n = &m->nodes[i];
    if (n->n_in != 1 || n->in[0] < 0) return -1;
    const int p = n->in[0];
    const cnn_op op = m->nodes[p].L.op;
    if (op != CNN_OP_RELU && op != CNN_OP_SIGMOID && op != CNN_OP_TANH) return -1;
    if (m->nodes[p].n_in != 1 || !cnn_pool_takes_act(n, op)) return -1;
    for (int k = p + 1; k < m->n_nodes; k++)
        for (int j = 0; j < m->nodes[k].n_in; j++)
            if (k != i && m->nodes[k].in[j] == p) return -1;
    return p;
}

/* Node j reads node i alone, and nothing else reads node i. */
static bool sole_reader(const cnn_model *m, int i, int j) {
    if (m->nodes[j].n_in != 1 || m->nodes[j].in[0] != i) return false;
    for (int k = i + 1; k < m->n_nodes; k++)
        for (int e = 0; e < m->nodes[k].n_in; e++)
            if (k != j && m->nodes[k].in[e] == i) return false;
    return true;
}

static bool is_activation(cnn_op op) {
    return op == CNN_OP_RELU || op == CNN_OP_SIGMOID || op == CNN_OP_TANH;
}

/* The most nodes in a chain that runs a sixteen at a time. */
#define LANES_CHAIN_MAX 32

/* Training on one thread (a replica, or a run of one thread) with a batch
 * of whole sixteens: a chain of nodes that starts at a Conv2d and ends at an
 * AvgPool2d(2), each node the only reader of the one before, of Conv2d,
 * AvgPool2d and elementwise activations that lanes.c takes (LeNet's conv1
 * to its second pool), runs on 16 images per vector lane. The chain's
 * first node takes its input as it is and its last gives its output as it
 * is; between them every output and gradient stays in lanes. On a 28x28
 * LeNet every vector of the convolutions is full, where rows 10 and 28
 * wide left lanes idle, and the input gradient needs no col2im.
 *
 * Where the chain's activations run inside its layers (LeNet's sigmoids:
 * forward in the convolutions, backward in the pools), it runs a sixteen
 * at a time through all its nodes, forward and backward, so that what a
 * node writes is in L2 when the next reads it: LeNet's step on one thread
 * at batch 128 ran 2-7% faster (6 alternating pairs, 43.7-49.2k against
 * 46.5-51.8k images/s), every layer of the chain a little. The gradients between its
 * nodes then hold one sixteen each, reused by every sixteen and live
 * through the chain's backward pass (plan_gradients): they stay in L2
 * (LeNet's first pool backward 0.11-0.12 -> 0.09 ms per 128 images, the
 * step 2-7% faster; its activation gradients at batch 256 14 -> 2.2 MiB).
 * The convolutions' weight-gradient sums live in their aux memory. */
static void plan_lanes(cnn_model *m, bool train) {
    const int64_t N = m->input_shape.dim[0];
    for (int i = 0; i < m->n_nodes; i++) {
        cnn_node *n = &m->nodes[i];
        n->lanes.in = n->lanes.out = false;
        n->lanes.first = n->lanes.last = -1;
        n->lanes.din_one = n->lanes.dout_one = false;
        n->lanes.from = 0;
        n->lanes.to = N / CNN_LANES;
    }
    if (!train || omp_get_max_threads() != 1 || N < CNN_LANES || N % CNN_LANES) return;
    for (int i = 0; i < m->n_nodes; i++) {
        if (m->nodes[i].L.op != CNN_OP_CONV2D || !cnn_conv2d_lanes_ok(&m->nodes[i])) continue;
        int end = -1;
        for (int j = i; j + 1 < m->n_nodes && sole_reader(m, j, j + 1); j++) {
            const cnn_node *q = &m->nodes[j + 1];
            if (q->L.op == CNN_OP_AVGPOOL2D && cnn_pool_lanes_ok(q))
                end = j + 1;
            else if (!is_activation(q->L.op) &&
                     !(q->L.op == CNN_OP_CONV2D && cnn_conv2d_lanes_ok(q)))
                break;
        }
        if (end < 0) continue;
        /* A sixteen at a time through the whole chain when its activations
         * run inside its convolutions and pools (see above). */
        bool deep = end - i < LANES_CHAIN_MAX;
        for (int k = i; k <= end; k++) {
            m->nodes[k].lanes.in = k > i;
            m->nodes[k].lanes.out = k < end;
            if (is_activation(m->nodes[k].L.op))
                deep = deep && act_in_place(m, k, true) && act_before_pool(m, k + 1) == k;
        }
        for (int k = i; deep && k <= end; k++) {
            m->nodes[k].lanes.first = i;
            m->nodes[k].lanes.last = end;
            m->nodes[k].lanes.din_one = k > i;
            m->nodes[k].lanes.dout_one = k < end;
        }
        i = end;
    }
}

/* A plan's sizes: the activation arena, the workspace and the gradient arena in
 * floats, the training aux memory in bytes. */
typedef struct plan_sizes {
    size_t arena, work, darena, aux;
} plan_sizes;

typedef struct grad_buf {
    int start, b; /* the node whose backward starts the gradient of buffer b */
} grad_buf;

/* Backward order: later starts first, and at one node the later buffer first. */
static int grad_buf_cmp(const void *x, const void *y) {
    const grad_buf *p = x, *q = y;
    if (p->start != q->start) return p->start < q->start ? 1 : -1;
    return p->b < q->b ? 1 : p->b > q->b ? -1 : 0;
}

/* The gradient arena. The gradient of buffer b (a node's output, shared with
 * its views) is live in the backward pass from the backward of b's last
 * reader, which starts it (or from the start, for the model's output, which
 * dy fills), to the backward of b's producer, which reads it last. First fit
 * over those intervals in backward order: a chain holds about two gradients
 * at a time instead of one per layer (AlexNet at batch 64: 326 -> 153 MiB).
 * grad_offset[i] gets node i's place; false when out of memory. */
static bool plan_gradients(const cnn_model *m, const int *owner, const size_t *size,
                           size_t *grad_offset, unsigned char *zero, size_t *total) {
    const int nn = m->n_nodes;
    int *reader = malloc((size_t)nn * sizeof *reader); /* last node whose backward adds to b */
    grad_buf *order = malloc((size_t)nn * sizeof *order);
    size_t *gsize = malloc((size_t)nn * sizeof *gsize); /* floats of each gradient */
    if (!reader || !order || !gsize) {
        free(reader);
        free(order);
        free(gsize);
        return false;
    }
    for (int b = 0; b < nn; b++)
        reader[b] = -1;
    for (int j = 0; j < nn; j++) {
        const int in = m->nodes[j].in[0];
        if (in >= 0 && owner[j] != owner[in] && j > reader[owner[in]]) reader[owner[in]] = j;
    }
    reader[owner[nn - 1]] = nn;
    /* A chain that runs a sixteen at a time holds all its gradients from its
     * last node's backward to its first's, those between its nodes one
     * sixteen's worth. */
    for (int b = 0; b < nn; b++) {
        gsize[b] = size[b];
        if (m->nodes[b].lanes.dout_one)
            gsize[b] = round_up(size[b] / (size_t)(m->input_shape.dim[0] / CNN_LANES), 16);
    }
    int nb = 0;
    for (int b = 0; b < nn; b++) {
        if (owner[b] != b) continue;
        int start = reader[b] < 0 ? b : reader[b];
        if (m->nodes[b].lanes.last > start) start = m->nodes[b].lanes.last;
        order[nb++] = (grad_buf){start, b};
    }
    qsort(order, (size_t)nb, sizeof *order, grad_buf_cmp);
    /* Buffer order[k] is live from its start down to its producer's backward; one
     * placed before it is still live then when its producer comes at or after the start. */
    *total = 0;
    for (int k = 0; k < nb; k++) {
        const int b = order[k].b;
        size_t off = 0;
        bool moved = true;
        while (moved) {
            moved = false;
            for (int q = 0; q < k; q++) {
                const int c = order[q].b,
                          low = m->nodes[c].lanes.first >= 0 ? m->nodes[c].lanes.first : c;
                if (low > order[k].start) continue;
                const size_t a = grad_offset[c], e = a + gsize[c];
                if (off < e && a < off + gsize[b]) {
                    off = e;
                    moved = true;
                }
            }
        }
        grad_offset[b] = off;
        if (off + gsize[b] > *total) *total = off + gsize[b];
    }
    for (int i = 0; i < nn; i++) {
        if (owner[i] != i) grad_offset[i] = grad_offset[owner[i]];
        /* Who zeroes a gradient before it is added to: its first adder (bit 1, for
         * the node's input), or its producer when nothing adds to it (bit 2). */
        const int in = m->nodes[i].in[0];
        zero[i] = (unsigned char)((in >= 0 && reader[owner[in]] == i ? 1 : 0) |
                                  (owner[i] == i && reader[i] < 0 ? 2 : 0));
    }
    free(reader);
    free(order);
    free(gsize);
    return true;
}

/* Lays out every node's output in one arena, for the inferred shapes, and
 * allocates nothing of it: out_offset[i] and aux_offset[i] get node i's
 * places, *sz the sizes. For inference a buffer is reused once the last node
 * that reads it has run; for training every output lives until the backward
 * pass, and a gradient arena of the same layout and the ops' aux memory come
 * with it. Views share their input's buffer. */
static cnn_status plan_layout(cnn_model *m, bool train, size_t *out_offset, size_t *aux_offset,
                              size_t *grad_offset, unsigned char *zero, plan_sizes *sz) {
    const int nn = m->n_nodes;
    /* Every float count stays below this, so that bytes and offsets cannot overflow. */
    const size_t limit = SIZE_MAX / sizeof(float) - 64;
    int *last_use = malloc((size_t)nn * sizeof *last_use);
    int *owner = calloc((size_t)nn, sizeof *owner); /* node whose output a node's is (a view) */
    int *buf = calloc((size_t)nn, sizeof *buf); /* node whose buffer a node's output lives in */
    size_t *size = malloc((size_t)nn * sizeof *size);
    cnn_status s = CNN_OK;
    plan_lanes(m, train); /* before the ops size their workspaces */
    if (!last_use || !owner || !buf || !size) {
        s = cnn_model_fail(m, CNN_STATUS_NO_MEMORY, "out of memory");
        goto done;
    }
    size_t work = 0, aux = 0;
    for (int i = 0; i < nn; i++) {
        cnn_node *n = &m->nodes[i];
        cnn_shape_numel(&n->out_shape, &size[i]);
        size_t a = train && n->vt->aux_bytes ? n->vt->aux_bytes(n) : 0;
        if (size[i] > limit || a > limit || aux > limit - a) {
            s = cnn_model_fail(m, CNN_STATUS_NO_MEMORY, "%s: activations too large", n->path);
            goto done;
        }
        size[i] = round_up(size[i], 16);
        bool view = train ? n->vt->train_view : n->vt->is_view || act_after_layer(m, i);
        owner[i] = (view && n->in[0] >= 0) ? owner[n->in[0]] : i;
        buf[i] = (view || act_in_place(m, i, train)) && n->in[0] >= 0 ? buf[n->in[0]] : i;
        last_use[i] = (train || i == nn - 1) ? nn : i;
        for (int j = 0; j < n->n_in; j++)
            if (n->in[j] >= 0 && last_use[buf[n->in[j]]] < i) last_use[buf[n->in[j]]] = i;
        size_t w = n->vt->workspace ? n->vt->workspace(n) : 0;
        if (train && n->vt->workspace_backward && n->vt->workspace_backward(n) > w)
            w = n->vt->workspace_backward(n);
        if (w > work) work = w;
        aux_offset[i] = aux;
        aux += round_up(a, 64);
    }
    last_use[buf[nn - 1]] = nn; /* the model's output lives to the end */
    /* First fit over the live buffers, in the order nodes run. */
    size_t total = 0;
    for (int i = 0; i < nn; i++) {
        if (buf[i] != i) continue;
        size_t off = 0;
        bool moved = true;
        while (moved) {
            moved = false;
            for (int j = 0; j < i; j++) {
                if (buf[j] != j || last_use[j] < i) continue;
                size_t a = out_offset[j], b = a + size[j];
                if (off < b && a < off + size[i]) {
                    off = b;
                    moved = true;
                }
            }
        }
        if (off > limit - size[i]) {
            s = cnn_model_fail(m, CNN_STATUS_NO_MEMORY, "%s: activations too large",
                               m->nodes[i].path);
            goto done;
        }
        out_offset[i] = off;
        if (off + size[i] > total) total = off + size[i];
    }
    for (int i = 0; i < nn; i++)
        if (buf[i] != i) out_offset[i] = out_offset[buf[i]];
    size_t gtotal = 0;
    if (train && !plan_gradients(m, owner, size, grad_offset, zero, &gtotal)) {
        s = cnn_model_fail(m, CNN_STATUS_NO_MEMORY, "out of memory");
        goto done;
    }
    if (work > limit) {
        s = cnn_model_fail(m, CNN_STATUS_NO_MEMORY, "workspace too large");
        goto done;
    }
    *sz = (plan_sizes){.arena = total, .work = work, .darena = gtotal, .aux = aux};
done:
    free(last_use);
    free(owner);
    free(buf);
    free(size);
    return s;
}

/* Plans the inferred shapes for mode and allocates the arenas (growing them,
 * never shrinking). */
static cnn_status plan(cnn_model *m, int mode) {
    /* Workspaces are laid out per OpenMP thread: a new thread count is a new plan. */
    if (m->planned == mode && m->plan_threads == omp_get_max_threads()) return CNN_OK;
    m->planned = 0;
    const bool train = mode == PLAN_TRAIN;
    const size_t nn = (size_t)m->n_nodes;
    size_t *off = malloc(3 * nn * sizeof *off);
    unsigned char *zero = calloc(nn, 1);
    if (!off || !zero) {
        free(off);
        free(zero);
        return cnn_model_fail(m, CNN_STATUS_NO_MEMORY, "out of memory");
    }
    plan_sizes sz;
    cnn_status s = plan_layout(m, train, off, off + nn, off + 2 * nn, zero, &sz);
    if (s == CNN_OK)
        s = grow(m, (void **)&m->arena, &m->arena_numel, sz.arena, sizeof(float), "activations");
    if (s == CNN_OK)
        s = grow(m, (void **)&m->work, &m->work_numel, sz.work, sizeof(float), "workspace");
    if (s == CNN_OK && train)
        s = grow(m, (void **)&m->darena, &m->darena_numel, sz.darena, sizeof(float), "gradients");
    if (s == CNN_OK && train)
        s = grow(m, (void **)&m->aux, &m->aux_bytes, sz.aux, 1, "training state");
    if (s == CNN_OK) {
        for (size_t i = 0; i < nn; i++) {
            m->nodes[i].out_offset = off[i];
            m->nodes[i].aux_offset = off[nn + i];
            m->nodes[i].grad_offset = train ? off[2 * nn + i] : 0;
            m->nodes[i].zero_din = train && (zero[i] & 1);
            m->nodes[i].zero_dout = train && (zero[i] & 2);
        }
        m->planned = mode;
        m->plan_threads = omp_get_max_threads();
        for (int i = 0; i < m->n_nodes; i++) {
            m->nodes[i].has_act = false;
            m->nodes[i].in_place = act_in_place(m, i, train);
        }
        for (int i = 0; i < m->n_nodes; i++) {
            if (!act_after_layer(m, i)) continue;
            m->nodes[m->nodes[i].in[0]].has_act = true;
            m->nodes[m->nodes[i].in[0]].act = m->nodes[i].L.op;
        }
        for (int i = 0; i < m->n_nodes; i++)
            m->nodes[i].bwd_act_fused = m->nodes[i].bwd_skip = false;
        for (int i = 0; train && i < m->n_nodes; i++) {
            const int p = act_before_pool(m, i);
            if (p < 0) continue;
            m->nodes[i].bwd_act_fused = true;
            m->nodes[i].bwd_act = m->nodes[p].L.op;
            m->nodes[i].bwd_act_sets = m->nodes[p].zero_din;
            m->nodes[p].bwd_skip = true;
        }
    }
    free(off);
    free(zero);
    return s;
}

/* The bytes of a plan's parts as cnn_memory reports them; false when the
 * total does not fit a size_t (the parts always do: see plan_layout). */
static bool memory_of(const cnn_model *m, const plan_sizes *sz, cnn_memory *r) {
    *r = (cnn_memory){
        .weights = m->pbuf_numel * sizeof(float) + m->ibuf_numel * sizeof(int64_t),
        .gradients = m->gbuf ? m->pbuf_numel * sizeof(float) : 0,
        .activations = sz->arena * sizeof(float),
        .activation_gradients = sz->darena * sizeof(float),
        .training_state = sz->aux,
        .workspace = sz->work * sizeof(float),
    };
    const size_t parts[] = {r->weights,        r->gradients,
                            r->activations,    r->activation_gradients,
                            r->training_state, r->workspace};
    for (size_t i = 0; i < CNN_COUNT_OF(parts); i++) {
        if (parts[i] > SIZE_MAX - r->total) return false;
        r->total += parts[i];
    }
    return true;
}

cnn_status cnn_model_memory(cnn_model *m, const cnn_shape *input, bool train, cnn_memory *out) {
    *out = (cnn_memory){0};
    m->err[0] = 0;
    if (!m->finalized) {
        cnn_status s = cnn_model_finalize(m);
        if (s != CNN_OK) return s;
    }
    /* Shapes for input, then the model's own inference state put back as it was:
     * a plan (and a training forward awaiting its backward) stays valid. */
    const size_t nn = (size_t)m->n_nodes;
    const bool keep = m->inferred && cnn_shape_equal(&m->input_shape, input);
    const bool inferred = m->inferred, trained_forward = m->trained_forward;
    const int planned = m->planned, rep_threads = m->rep_threads;
    const cnn_shape input_shape = m->input_shape;
    cnn_shape *shapes = keep ? NULL : malloc((2 * nn + 1) * sizeof *shapes);
    size_t *off = malloc((3 * nn + 1) * sizeof *off);
    unsigned char *zero = malloc(nn + 1);
    cnn_lanes_plan *lanes = malloc((nn + 1) * sizeof *lanes);
    if ((!keep && !shapes) || !off || !zero || !lanes) {
        free(shapes);
        free(off);
        free(zero);
        free(lanes);
        return cnn_model_fail(m, CNN_STATUS_NO_MEMORY, "out of memory");
    }
    /* plan_layout decides the lanes anew (plan_lanes): the plan's own are put back. */
    for (size_t i = 0; i < nn; i++)
        lanes[i] = m->nodes[i].lanes;
    for (size_t i = 0; shapes && i < nn; i++) {
        shapes[2 * i] = m->nodes[i].in_shape;
        shapes[2 * i + 1] = m->nodes[i].out_shape;
    }
    cnn_status s = cnn_model_infer(m, input);
    plan_sizes sz;
    const bool replicas =
        s == CNN_OK && train && cnn_replicas_fit(m, input->dim[0], omp_get_max_threads());
    if (replicas) s = cnn_replicas_memory(m, input, omp_get_max_threads(), out);
    if (s == CNN_OK && !replicas) s = plan_layout(m, train, off, off + nn, off + 2 * nn, zero, &sz);
    if (s == CNN_OK && !replicas && !memory_of(m, &sz, out))
        s = cnn_model_fail(m, CNN_STATUS_NO_MEMORY,
                           "the model needs more bytes than a size_t holds");
    if (shapes) {
        for (size_t i = 0; i < nn; i++) {
            m->nodes[i].in_shape = shapes[2 * i];
            m->nodes[i].out_shape = shapes[2 * i + 1];
        }
        m->input_shape = input_shape;
        m->inferred = inferred;
        m->planned = planned;
        m->trained_forward = trained_forward;
        m->rep_threads = rep_threads;
    }
    for (size_t i = 0; i < nn; i++)
        m->nodes[i].lanes = lanes[i];
    free(shapes);
    free(off);
    free(zero);
    free(lanes);
    return s;
}

void cnn_model_allocated(const cnn_model *m, cnn_memory *out) {
    const plan_sizes sz = {m->arena_numel, m->work_numel, m->darena_numel, m->aux_bytes};
    memory_of(m, &sz, out); /* what was allocated fits a size_t */
    cnn_replicas_allocated(m, out);
}

/* Runs node i on x (the model's input when the node reads it). */
static void run_node(cnn_model *m, int i, const float *x, bool train, uint64_t seed,
                     uint64_t step) {
    cnn_node *n = &m->nodes[i];
    const float *in = n->in[0] < 0 ? x : m->arena + m->nodes[n->in[0]].out_offset;
    float *out = m->arena + n->out_offset;
    if (in == out && !n->in_place) return;                 /* a view */
    if (n->in_place && m->nodes[n->in[0]].has_act) return; /* done by its producer */
    const double t0 = m->profiling ? omp_get_wtime() : 0.0;
    if (train ? n->vt->train_view : n->vt->is_view) {
        /* A view of the caller's input: copy it into the arena once. */
        size_t numel;
        cnn_shape_numel(&n->out_shape, &numel);
        memcpy(out, in, numel * sizeof(float));
    } else if (train && n->vt->forward_train) {
        /* Every node draws from its own stream of the step: reproducible and resumable. */
        cnn_rng rng;
        cnn_rng_seed(&rng, seed, step * 4096 + (uint64_t)i);
        n->vt->forward_train(n, in, out, m->aux + n->aux_offset, m->work, &rng);
    } else {
        n->vt->forward(n, in, out, m->work);
    }
    if (m->profiling) n->fwd_seconds += omp_get_wtime() - t0;
}

/* Nodes first to last of a chain that runs a sixteen at a time, sixteen
 * [k, k + 1) on each call, and then every sixteen again for calls outside. */
static void lanes_only(cnn_model *m, int first, int last, int64_t k) {
    for (int j = first; j <= last; j++) {
        m->nodes[j].lanes.from = k < 0 ? 0 : k;
        m->nodes[j].lanes.to = k < 0 ? m->input_shape.dim[0] / CNN_LANES : k + 1;
    }
}

/* Runs every node on x (already checked against the inferred shape). */
static void run_nodes(cnn_model *m, const float *x, bool train, uint64_t seed, uint64_t step) {
    for (int i = 0; i < m->n_nodes; i++) {
        const int last = m->nodes[i].lanes.last;
        if (last < 0) {
            run_node(m, i, x, train, seed, step);
            continue;
        }
        for (int64_t k = 0; k < m->input_shape.dim[0] / CNN_LANES; k++) {
            lanes_only(m, i, last, k);
            for (int j = i; j <= last; j++)
                run_node(m, j, x, train, seed, step);
        }
        lanes_only(m, i, last, -1);
        i = last;
    }
}

cnn_status cnn_model_forward(cnn_model *m, const cnn_tensor *x, cnn_tensor *y) {
    y->data = NULL;
    cnn_status s = cnn_model_infer(m, &x->shape);
    if (s != CNN_OK) return s;
    if (!x->data) return cnn_model_fail(m, CNN_STATUS_INVALID_ARGUMENT, "input tensor has no data");
    s = plan(m, PLAN_INFER);
    if (s != CNN_OK) return s;
    m->trained_forward = false;
    m->rep_threads = 0;
    run_nodes(m, x->data, false, 0, 0);
    const cnn_node *last = &m->nodes[m->n_nodes - 1];
    s = cnn_tensor_alloc(y, &last->out_shape);
    if (s != CNN_OK) return cnn_model_fail(m, s, "out of memory for the output");
    memcpy(y->data, m->arena + last->out_offset, cnn_tensor_numel(y) * sizeof(float));
    return CNN_OK;
}

const float *cnn_model_forward_view(cnn_model *m, const cnn_tensor *x) {
    if (cnn_model_infer(m, &x->shape) != CNN_OK) return NULL;
    if (!x->data) {
        cnn_model_fail(m, CNN_STATUS_INVALID_ARGUMENT, "input tensor has no data");
        return NULL;
    }
    if (plan(m, PLAN_INFER) != CNN_OK) return NULL;
    m->trained_forward = false;
    m->rep_threads = 0;
    run_nodes(m, x->data, false, 0, 0);
    return m->arena + m->nodes[m->n_nodes - 1].out_offset;
}

const float *cnn_model_forward_train(cnn_model *m, const cnn_tensor *x, uint64_t seed,
                                     uint64_t step) {
    if (cnn_model_infer(m, &x->shape) != CNN_OK) return NULL;
    if (!x->data) {
        cnn_model_fail(m, CNN_STATUS_INVALID_ARGUMENT, "input tensor has no data");
        return NULL;
    }
    for (int i = 0; i < m->n_nodes; i++) {
        const cnn_node *n = &m->nodes[i];
        char why[256];
        if (n->vt->check_train && !n->vt->check_train(n, why, sizeof why)) {
            char shape[128];
            cnn_shape_format(shape, sizeof shape, &n->in_shape);
            cnn_sb sb = {0};
            cnn_node_describe(n, &sb);
            cnn_model_fail(m, CNN_STATUS_SHAPE, "%s: %s (input %s)", sb.oom ? n->path : sb.buf, why,
                           shape);
            cnn_sb_free(&sb);
            return NULL;
        }
    }
    /* Small models: a replica per thread, each on its share of the batch. */
    const int threads = omp_get_max_threads();
    if (cnn_replicas_fit(m, x->shape.dim[0], threads)) {
        m->trained_forward = false;
        const float *y = cnn_replicas_forward_train(m, x, seed, step, threads);
        m->trained_forward = y != NULL;
        return y;
    }
    m->rep_threads = 0;
    if (plan(m, PLAN_TRAIN) != CNN_OK) return NULL;
    run_nodes(m, x->data, true, seed, step);
    m->trained_forward = true;
    return m->arena + m->nodes[m->n_nodes - 1].out_offset;
}

/* memset on every thread: one core writes about half as fast as two. */
static void zero_floats(float *p, size_t n) {
    const size_t per = 1 << 16;
    CNN_PARALLEL_FOR(
        n > 4 * per, for (size_t i = 0; i < n; i += per) {
            memset(p + i, 0, (n - i < per ? n - i : per) * sizeof(float));
        });
}

/* Where node i's backward pass reads and writes. */
typedef struct bwd_io {
    const float *in;
    float *din, *dout;
} bwd_io;

/* Node i's input and gradients; false when its backward pass is a view's
 * or runs in the pool after it. */
static bool backward_begin(cnn_model *m, int i, const float *x, float *dx, bwd_io *io) {
    cnn_node *n = &m->nodes[i];
    if (n->bwd_skip) return false; /* run by the pool after it */
    const bool from_input = n->in[0] < 0;
    io->in = from_input ? x : m->arena + m->nodes[n->in[0]].out_offset;
    io->din = from_input ? dx : m->darena + m->nodes[n->in[0]].grad_offset;
    io->dout = m->darena + n->grad_offset;
    if (n->bwd_act_fused) { /* into the activation's input gradient */
        const cnn_node *a = &m->nodes[n->in[0]];
        io->din = a->in[0] < 0 ? dx : m->darena + m->nodes[a->in[0]].grad_offset;
    }
    return io->din != io->dout; /* else a view: its gradient is already its input's */
}

/* Gradients accumulate (a node may feed several): each starts from zero, set
 * by the first node to add to it; the arena reuses the memory of dead ones.
 * In a chain that runs a sixteen at a time (k >= 0), the gradients between
 * its nodes hold one sixteen and are zeroed for each; the others once, at
 * the first. The zeroing counts in the node's time (--profile). */
static void backward_zero(cnn_model *m, int i, const bwd_io *io, int64_t k) {
    cnn_node *n = &m->nodes[i];
    const bool din = n->zero_din && io->din && !n->vt->sets_dx && !n->bwd_act_fused;
    if (!n->zero_dout && !din) return;
    const double t0 = m->profiling ? omp_get_wtime() : 0.0;
    const size_t groups = (size_t)(m->input_shape.dim[0] / CNN_LANES);
    size_t numel;
    if (n->zero_dout && (k <= 0 || n->lanes.dout_one)) {
        cnn_shape_numel(&n->out_shape, &numel);
        zero_floats(io->dout, n->lanes.dout_one ? numel / groups : numel);
    }
    if (din && (k <= 0 || n->lanes.din_one)) {
        cnn_shape_numel(&n->in_shape, &numel);
        zero_floats(io->din, n->lanes.din_one ? numel / groups : numel);
    }
    if (m->profiling) n->bwd_seconds += omp_get_wtime() - t0;
}

static void backward_run(cnn_model *m, int i, const bwd_io *io) {
    cnn_node *n = &m->nodes[i];
    const double t0 = m->profiling ? omp_get_wtime() : 0.0;
    if (n->vt->train_view) {
        if (io->din) {
            size_t k;
            cnn_shape_numel(&n->out_shape, &k);
            for (size_t j = 0; j < k; j++)
                io->din[j] += io->dout[j];
        }
    } else {
        n->vt->backward(n, io->in, m->arena + n->out_offset, io->dout, io->din,
                        m->aux + n->aux_offset, m->work);
    }
    if (m->profiling) n->bwd_seconds += omp_get_wtime() - t0;
}

cnn_status cnn_model_backward(cnn_model *m, const float *x, const float *dy, float *dx) {
    if (m->trained_forward && m->rep_threads) return cnn_replicas_backward(m, x, dy, dx);
    if (!m->trained_forward || m->planned != PLAN_TRAIN)
        return cnn_model_fail(m, CNN_STATUS_INVALID_ARGUMENT,
                              "backward needs a training forward pass first");
    if (m->plan_threads != omp_get_max_threads())
        return cnn_model_fail(m, CNN_STATUS_INVALID_ARGUMENT,
                              "the thread count changed between the forward and backward pass");
    size_t numel;
    cnn_shape_numel(&m->input_shape, &numel);
    if (dx) zero_floats(dx, numel);
    const cnn_node *last = &m->nodes[m->n_nodes - 1];
    cnn_shape_numel(&last->out_shape, &numel);
    memcpy(m->darena + last->grad_offset, dy, numel * sizeof(float));
    for (int i = m->n_nodes - 1; i >= 0; i--) {
        const int first = m->nodes[i].lanes.first;
        if (first < 0) {
            bwd_io io;
            const bool runs = backward_begin(m, i, x, dx, &io);
            if (runs) {
                backward_zero(m, i, &io, -1);
                backward_run(m, i, &io);
            }
            if ((runs || m->nodes[i].bwd_skip) && m->grad_hook) m->grad_hook(m->grad_hook_ctx, i);
            continue;
        }
        /* A chain that runs a sixteen at a time, i its last node: each sixteen
         * back through all of them. */
        bwd_io io[LANES_CHAIN_MAX];
        bool runs[LANES_CHAIN_MAX];
        for (int j = i; j >= first; j--)
            runs[j - first] = backward_begin(m, j, x, dx, &io[j - first]);
        for (int64_t k = 0; k < m->input_shape.dim[0] / CNN_LANES; k++) {
            lanes_only(m, first, i, k);
            for (int j = i; j >= first; j--) {
                if (!runs[j - first]) continue;
                backward_zero(m, j, &io[j - first], k);
                backward_run(m, j, &io[j - first]);
            }
        }
        lanes_only(m, first, i, -1);
        for (int j = i; j >= first && m->grad_hook; j--)
            if (runs[j - first] || m->nodes[j].bwd_skip) m->grad_hook(m->grad_hook_ctx, j);
        i = first;
    }
    return CNN_OK;
}

void cnn_model_freeze_stats(cnn_model *m, bool frozen) { m->stats_frozen = frozen; }

void cnn_model_set_profiling(cnn_model *m, bool on) {
    m->profiling = on;
    for (int i = 0; i < m->n_nodes; i++)
        m->nodes[i].fwd_seconds = m->nodes[i].bwd_seconds = 0.0;
    for (int k = 0; k < m->n_rep; k++)
        cnn_model_set_profiling(m->rep[k], on);
}

/* With replicas, the mean of their times: each ran the layer on its share
 * while the others ran it on theirs. */
void cnn_model_node_time(const cnn_model *m, int node, double *forward, double *backward) {
    CNN_ASSERT(node >= 0 && node < m->n_nodes);
    *forward = m->nodes[node].fwd_seconds;
    *backward = m->nodes[node].bwd_seconds;
    if (m->n_rep == 0) return;
    double f = 0.0, b = 0.0;
    for (int k = 0; k < m->n_rep; k++) {
        f += m->rep[k]->nodes[node].fwd_seconds;
        b += m->rep[k]->nodes[node].bwd_seconds;
    }
    *forward += f / m->n_rep;
    *backward += b / m->n_rep;
}

const char *cnn_model_node_algorithm(const cnn_model *m, int node) {
    CNN_ASSERT(node >= 0 && node < m->n_nodes);
    if (m->rep_threads) return cnn_model_node_algorithm(m->rep[0], node);
    const cnn_node *n = &m->nodes[node];
    if (n->L.op != CNN_OP_CONV2D || n->in_shape.ndim != 4) return NULL;
    return cnn_conv2d_algorithm(n, m->planned == PLAN_TRAIN);
}

int cnn_model_replicas(const cnn_model *m) { return m->rep_threads; }

void cnn_model_zero_grad(cnn_model *m) {
    if (m->gbuf) zero_floats(m->gbuf, m->pbuf_numel ? m->pbuf_numel : 1);
}

float *cnn_model_grad_buffer(cnn_model *m, size_t *numel) {
    if (numel) *numel = m->pbuf_numel;
    return m->gbuf;
}

void cnn_model_set_grad_hook(cnn_model *m, void (*hook)(void *ctx, int node), void *ctx) {
    m->grad_hook = hook;
    m->grad_hook_ctx = ctx;
}

void cnn_set_threads(int n) {
    if (n <= 0) n = omp_get_num_procs();
    omp_set_num_threads(n);
    openblas_set_num_threads(n);
}
