/* init.c - parameter initialization: PyTorch's reset_parameters() defaults
 * and xavier_uniform, drawn from PCG32 in state_dict order. */
#include <math.h>

#include "cnnkit/rng.h"
#include "model_impl.h"

/* PyTorch's _calculate_fan_in_and_fan_out for a weight (out, in, *receptive). */
static void fans(const cnn_param *p, double *fan_in, double *fan_out) {
    double receptive = 1.0;
    for (int i = 2; i < p->shape.ndim; i++)
        receptive *= (double)p->shape.dim[i];
    *fan_in = (double)p->shape.dim[1] * receptive;
    *fan_out = (double)p->shape.dim[0] * receptive;
}

static void fill_uniform(cnn_rng *r, float *x, size_t n, double bound) {
    for (size_t i = 0; i < n; i++)
        x[i] = cnn_rng_range(r, (float)-bound, (float)bound);
}

static void fill(float *x, size_t n, float v) {
    for (size_t i = 0; i < n; i++)
        x[i] = v;
}

cnn_status cnn_model_init(cnn_model *m, cnn_init how, uint64_t seed) {
    if ((unsigned)how >= CNN_INIT_COUNT)
        return cnn_model_fail(m, CNN_STATUS_INVALID_ARGUMENT, "invalid init %d", (int)how);
    if (!m->finalized) {
        cnn_status s = cnn_model_finalize(m);
        if (s != CNN_OK) return s;
    }
    cnn_rng r;
    cnn_rng_seed(&r, seed, 0);
    for (int i = 0; i < m->n_params; i++) {
        const cnn_param *p = &m->params[i];
        const cnn_node *n = &m->nodes[p->node];
        float *x = p->slot == CNN_SLOT_NUM_BATCHES ? NULL : m->pbuf + p->offset;
        const bool dense = n->L.op == CNN_OP_CONV2D || n->L.op == CNN_OP_LINEAR;
        switch (p->slot) {
        case CNN_SLOT_WEIGHT:
            if (dense) {
                double fan_in, fan_out;
                fans(p, &fan_in, &fan_out);
                /* kaiming_uniform(a=sqrt(5)): gain sqrt(2/(1+5)), bound gain*sqrt(3/fan_in). */
                double bound =
                    how == CNN_INIT_XAVIER ? sqrt(6.0 / (fan_in + fan_out)) : 1.0 / sqrt(fan_in);
                fill_uniform(&r, x, p->numel, bound);
            } else {
                fill(x, p->numel, 1.0f);
            }
            break;
        case CNN_SLOT_BIAS:
            if (dense) {
                double fan_in, fan_out;
                fans(&m->params[i - 1], &fan_in, &fan_out); /* the weight precedes its bias */
                fill_uniform(&r, x, p->numel, 1.0 / sqrt(fan_in));
            } else {
                fill(x, p->numel, 0.0f);
            }
            break;
        case CNN_SLOT_RUNNING_MEAN: fill(x, p->numel, 0.0f); break;
        case CNN_SLOT_RUNNING_VAR: fill(x, p->numel, 1.0f); break;
        case CNN_SLOT_NUM_BATCHES: m->ibuf[p->offset] = 0; break;
        case CNN_SLOT_COUNT: CNN_ASSERT(0);
        }
    }
    return CNN_OK;
}
