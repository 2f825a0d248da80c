/* replicas.c - data parallelism over the threads, for training small models.
 *
 * A LeNet layer is too small to share out well: every layer's loop over the
 * batch splits over the threads and ends at a barrier, twice a step per
 * layer, and each core then reads the activations the other one wrote. Here
 * each thread instead runs the whole model on its own share of the batch,
 * on a replica (the same parameters, its own gradient buffer, arenas and a
 * plan for one thread), and the replicas' gradients are added to the
 * model's once, at the end of the backward pass, in replica order (a run
 * repeats bit for bit at a given thread count).
 *
 * For models without BatchNorm (its statistics are the whole batch's) and
 * Dropout (its masks are drawn over the whole batch), with parameters small
 * enough that a gradient buffer per thread costs little. LeNet's training
 * step at batch 256 on the 2-core Zen 5 machines: two processes of one
 * thread and 128 images each ran 82k to 92k images/s together where one
 * process of two threads ran 72k to 79k; replicas took it from 66k to 72k
 * (medians of 8 alternating runs), the shares being fixed while one core
 * ran up to 20% slower. */
#include <stdlib.h>
#include <string.h>

#include "model_impl.h"
#include "parallel.h"

/* A gradient buffer per replica up to 4 MiB (LeNet: 241 KiB; AlexNet's
 * 187 MB would not do). */
#define REPLICA_MAX_PARAMS ((size_t)1 << 20)
/* Images per replica at least: below, the layers' own loops over the batch
 * do as well. */
#define REPLICA_MIN_IMAGES  8
#define REPLICA_MAX_THREADS 64

bool cnn_replicas_fit(const cnn_model *m, int64_t batch, int threads) {
    if (threads < 2 || threads > REPLICA_MAX_THREADS || batch < REPLICA_MIN_IMAGES * threads ||
        m->pbuf_numel > REPLICA_MAX_PARAMS || m->ibuf_numel > 0)
        return false;
    for (int i = 0; i < m->n_nodes; i++) {
        const cnn_op op = m->nodes[i].L.op;
        if (op == CNN_OP_BATCHNORM2D || op == CNN_OP_DROPOUT) return false;
    }
    return true;
}

/* A replica of m: its nodes copied, their parameter views still m's, their
 * gradient views moved to a buffer of its own; names, modules and
 * parameter records borrowed from m. */
static cnn_model *replica_new(const cnn_model *m) {
    cnn_model *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->nodes = malloc((size_t)m->n_nodes * sizeof *r->nodes);
    r->gbuf = calloc(m->pbuf_numel ? m->pbuf_numel : 1, sizeof(float));
    if (!r->nodes || !r->gbuf) {
        free(r->nodes);
        free(r->gbuf);
        free(r);
        return NULL;
    }
    memcpy(r->nodes, m->nodes, (size_t)m->n_nodes * sizeof *r->nodes);
    r->n_nodes = r->cap_nodes = m->n_nodes;
    r->mods = m->mods;
    r->n_mods = m->n_mods;
    r->params = m->params;
    r->n_params = m->n_params;
    r->pbuf = m->pbuf;
    r->pbuf_numel = m->pbuf_numel;
    r->finalized = true;
    for (int i = 0; i < m->n_nodes; i++) {
        r->nodes[i].fwd_seconds = r->nodes[i].bwd_seconds = 0.0;
        for (int s = 0; s < CNN_SLOT_COUNT; s++)
            if (m->nodes[i].grad[s])
                r->nodes[i].grad[s] = r->gbuf + (m->nodes[i].grad[s] - m->gbuf);
    }
    return r;
}

static void replica_free(cnn_model *r) {
    if (!r) return;
    cnn_model_free_own(r);
    free(r);
}

void cnn_replicas_free(cnn_model *m) {
    for (int k = 0; k < m->n_rep; k++)
        replica_free(m->rep[k]);
    free(m->rep);
    free(m->rep_out);
    m->rep = NULL;
    m->rep_out = NULL;
    m->n_rep = m->rep_threads = 0;
    m->rep_out_numel = 0;
}

/* Exactly `threads` replicas of m. */
static cnn_status replicas_make(cnn_model *m, int threads) {
    if (m->n_rep == threads) return CNN_OK;
    for (int k = 0; k < m->n_rep; k++)
        replica_free(m->rep[k]);
    m->n_rep = 0;
    cnn_model **rep = realloc(m->rep, (size_t)threads * sizeof *rep);
    if (!rep) return cnn_model_fail(m, CNN_STATUS_NO_MEMORY, "out of memory for the replicas");
    m->rep = rep;
    for (; m->n_rep < threads; m->n_rep++)
        if (!(m->rep[m->n_rep] = replica_new(m)))
            return cnn_model_fail(m, CNN_STATUS_NO_MEMORY, "out of memory for the replicas");
    return CNN_OK;
}

/* Replica k of `of` takes images [k*N/of, (k+1)*N/of). */
static int64_t share_start(int64_t N, int k, int of) { return (int64_t)k * N / of; }

static size_t per_image(const cnn_shape *s) {
    size_t numel;
    cnn_shape_numel(s, &numel);
    return s->dim[0] ? numel / (size_t)s->dim[0] : 0;
}

/* The replicas run one per thread, each with one thread of its own; a team
 * smaller than asked takes the missing threads' replicas in turn. */
const float *cnn_replicas_forward_train(cnn_model *m, const cnn_tensor *x, uint64_t seed,
                                        uint64_t step, int threads) {
    m->rep_threads = 0;
    if (replicas_make(m, threads) != CNN_OK) return NULL;
    const int64_t N = x->shape.dim[0];
    const cnn_shape *out = &m->nodes[m->n_nodes - 1].out_shape;
    const size_t in_per = per_image(&x->shape), out_per = per_image(out);
    if (m->rep_out_numel < (size_t)N * out_per) {
        float *p = realloc(m->rep_out, (size_t)N * out_per * sizeof(float));
        if (!p) {
            cnn_model_fail(m, CNN_STATUS_NO_MEMORY, "out of memory for the output");
            return NULL;
        }
        m->rep_out = p;
        m->rep_out_numel = (size_t)N * out_per;
    }
    bool ok[REPLICA_MAX_THREADS];
#pragma omp parallel num_threads(threads)
    {
        omp_set_num_threads(1);
        for (int k = omp_get_thread_num(); k < threads; k += omp_get_num_threads()) {
            const int64_t b0 = share_start(N, k, threads), b1 = share_start(N, k + 1, threads);
            cnn_model *r = m->rep[k];
            r->profiling = m->profiling;
            cnn_tensor xs = {.shape = x->shape, .data = x->data + (size_t)b0 * in_per};
            xs.shape.dim[0] = b1 - b0;
            const float *y = cnn_model_forward_train(r, &xs, seed, step);
            ok[k] = y != NULL;
            if (y)
                memcpy(m->rep_out + (size_t)b0 * out_per, y,
                       (size_t)(b1 - b0) * out_per * sizeof(float));
        }
    }
    for (int k = 0; k < threads; k++)
        if (!ok[k]) {
            cnn_model_fail(m, CNN_STATUS_NO_MEMORY, "%s", m->rep[k]->err);
            return NULL;
        }
    m->rep_threads = threads;
    return m->rep_out;
}

cnn_status cnn_replicas_backward(cnn_model *m, const float *x, const float *dy, float *dx) {
    const int threads = m->rep_threads;
    if (threads != omp_get_max_threads())
        return cnn_model_fail(m, CNN_STATUS_INVALID_ARGUMENT,
                              "the thread count changed between the forward and backward pass");
    const int64_t N = m->input_shape.dim[0];
    const size_t in_per = per_image(&m->input_shape),
                 out_per = per_image(&m->nodes[m->n_nodes - 1].out_shape), P = m->pbuf_numel;
    cnn_status st[REPLICA_MAX_THREADS];
#pragma omp parallel num_threads(threads)
    {
        omp_set_num_threads(1);
        for (int k = omp_get_thread_num(); k < threads; k += omp_get_num_threads()) {
            const int64_t b0 = share_start(N, k, threads);
            cnn_model *r = m->rep[k];
            memset(r->gbuf, 0, P * sizeof(float));
            st[k] = cnn_model_backward(r, x + (size_t)b0 * in_per, dy + (size_t)b0 * out_per,
                                       dx ? dx + (size_t)b0 * in_per : NULL);
        }
#pragma omp barrier
        /* m's gradients += each replica's, in replica order, a range per thread. */
        const size_t block = 4096;
#pragma omp for schedule(static)
        for (size_t i0 = 0; i0 < P; i0 += block) {
            const size_t n = P - i0 < block ? P - i0 : block;
            float *g = m->gbuf + i0;
            for (int k = 0; k < threads; k++) {
                const float *rg = m->rep[k]->gbuf + i0;
                for (size_t i = 0; i < n; i++)
                    g[i] += rg[i];
            }
        }
    }
    for (int k = 0; k < threads; k++)
        if (st[k] != CNN_OK) return cnn_model_fail(m, st[k], "%s", m->rep[k]->err);
    if (m->grad_hook)
        for (int i = m->n_nodes - 1; i >= 0; i--)
            m->grad_hook(m->grad_hook_ctx, i);
    return CNN_OK;
}

/* A replica's figures into out, but its weights, which are m's. */
static void add_replica(cnn_memory *out, const cnn_memory *one) {
    out->gradients += one->gradients;
    out->activations += one->activations;
    out->activation_gradients += one->activation_gradients;
    out->training_state += one->training_state;
    out->workspace += one->workspace;
}

static void sum_parts(cnn_memory *out) {
    out->total = out->weights + out->gradients + out->activations + out->activation_gradients +
                 out->training_state + out->workspace;
}

/* cnn_model_memory's figures for replicas: m's weights and gradients, and
 * each replica's plan for its share on one thread (its gradient buffer
 * included), plus the gathered output as workspace. m's shapes are
 * inferred for input. Replicas of another count are measured on stand-ins,
 * so that m's own, and a forward pass awaiting its backward, stay. */
cnn_status cnn_replicas_memory(cnn_model *m, const cnn_shape *input, int threads, cnn_memory *out) {
    const int64_t N = input->dim[0];
    *out = (cnn_memory){
        .weights = m->pbuf_numel * sizeof(float),
        .gradients = m->pbuf_numel * sizeof(float),
        .workspace = (size_t)N * per_image(&m->nodes[m->n_nodes - 1].out_shape) * sizeof(float),
    };
    const bool own = m->n_rep == threads;
    cnn_model *stand_in = own ? NULL : replica_new(m);
    if (!own && !stand_in) return cnn_model_fail(m, CNN_STATUS_NO_MEMORY, "out of memory");
    const int keep = omp_get_max_threads();
    omp_set_num_threads(1);
    cnn_status s = CNN_OK;
    for (int k = 0; k < threads; k++) {
        cnn_model *r = own ? m->rep[k] : stand_in;
        cnn_shape sub = *input;
        sub.dim[0] = share_start(N, k + 1, threads) - share_start(N, k, threads);
        cnn_memory one;
        s = cnn_model_memory(r, &sub, true, &one);
        if (s != CNN_OK) {
            cnn_model_fail(m, s, "%s", r->err);
            break;
        }
        add_replica(out, &one);
    }
    omp_set_num_threads(keep);
    replica_free(stand_in);
    if (s == CNN_OK) sum_parts(out);
    return s;
}

void cnn_replicas_allocated(const cnn_model *m, cnn_memory *out) {
    for (int k = 0; k < m->n_rep; k++) {
        cnn_memory one;
        cnn_model_allocated(m->rep[k], &one);
        add_replica(out, &one);
    }
    out->workspace += m->rep_out_numel * sizeof(float);
    sum_parts(out);
}
