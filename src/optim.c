/* optim.c - SGD (momentum, dampening, nesterov, weight decay), Adam and AdamW
 * with torch.optim's update formulas, over one flat parameter buffer; and
 * the learning-rate schedules. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "cnnkit/train.h"
#include "parallel.h"
#include "util.h"

/* A trainable parameter's place in the flat buffers. */
typedef struct range {
    size_t offset, numel;
} range;

struct cnn_optim {
    cnn_optim_config cfg;
    float *param, *grad;
    range *ranges;
    int n_ranges;
    size_t numel;
    float *state[2]; /* momentum_buffer; or exp_avg, exp_avg_sq */
    int n_state;
    int64_t steps;
};

cnn_optim_config cnn_optim_defaults(cnn_optim_kind kind) {
    cnn_optim_config c = {.kind = kind, .lr = 0.001, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8};
    if (kind == CNN_OPTIM_ADAMW) c.weight_decay = 0.01;
    return c;
}

const char *cnn_optim_name(cnn_optim_kind kind) {
    static const char *const names[] = {"sgd", "adam", "adamw"};
    _Static_assert(CNN_COUNT_OF(names) == CNN_OPTIM_COUNT, "one name per optimizer");
    return (unsigned)kind < CNN_OPTIM_COUNT ? names[kind] : NULL;
}

cnn_status cnn_optim_new(cnn_model *m, const cnn_optim_config *cfg, cnn_optim **out, char *err,
                         size_t errlen) {
    *out = NULL;
    const cnn_optim_config *c = cfg;
    if ((unsigned)c->kind >= CNN_OPTIM_COUNT)
        return cnn_fail(CNN_STATUS_INVALID_ARGUMENT, err, errlen, "invalid optimizer");
    if (!(c->lr >= 0.0))
        return cnn_fail(CNN_STATUS_INVALID_ARGUMENT, err, errlen, "invalid learning rate: %g",
                        c->lr);
    if (!(c->weight_decay >= 0.0))
        return cnn_fail(CNN_STATUS_INVALID_ARGUMENT, err, errlen, "invalid weight_decay value: %g",
                        c->weight_decay);
    if (c->kind == CNN_OPTIM_SGD) {
        if (!(c->momentum >= 0.0))
            return cnn_fail(CNN_STATUS_INVALID_ARGUMENT, err, errlen, "invalid momentum value: %g",
                            c->momentum);
        if (c->nesterov && (c->momentum <= 0.0 || c->dampening != 0.0))
            return cnn_fail(CNN_STATUS_INVALID_ARGUMENT, err, errlen,
                            "nesterov momentum requires a momentum and zero dampening");
    } else {
        if (!(c->eps >= 0.0) || !(c->beta1 >= 0.0 && c->beta1 < 1.0) ||
            !(c->beta2 >= 0.0 && c->beta2 < 1.0))
            return cnn_fail(CNN_STATUS_INVALID_ARGUMENT, err, errlen,
                            "invalid Adam parameters: betas must be in [0, 1) and eps >= 0");
    }
    cnn_optim *o = calloc(1, sizeof *o);
    if (!o) return cnn_fail(CNN_STATUS_NO_MEMORY, err, errlen, "out of memory");
    o->cfg = *c;
    o->param = cnn_model_param_buffer(m, &o->numel);
    o->grad = cnn_model_grad_buffer(m, NULL);
    int np = cnn_model_num_params(m);
    o->ranges = calloc(np ? (size_t)np : 1, sizeof *o->ranges);
    o->n_state = c->kind == CNN_OPTIM_SGD ? (c->momentum != 0.0) : 2;
    for (int i = 0; i < o->n_state && o->ranges; i++)
        if (!(o->state[i] = calloc(o->numel ? o->numel : 1, sizeof(float)))) o->n_state = -1;
    if (!o->ranges || o->n_state < 0 || !o->param) {
        cnn_optim_free(o);
        return cnn_fail(CNN_STATUS_NO_MEMORY, err, errlen, "out of memory for optimizer state");
    }
    for (int i = 0; i < np; i++) {
        cnn_param_info p = cnn_model_param(m, i);
        if (p.trainable) o->ranges[o->n_ranges++] = (range){(size_t)(p.data - o->param), p.numel};
    }
    *out = o;
    return CNN_OK;
}

void cnn_optim_free(cnn_optim *o) {
    if (!o) return;
    free(o->ranges);
    free(o->state[0]);
    free(o->state[1]);
    free(o);
}

int64_t cnn_optim_steps(const cnn_optim *o) { return o->steps; }
void cnn_optim_set_steps(cnn_optim *o, int64_t steps) { o->steps = steps; }
int cnn_optim_num_states(const cnn_optim *o) { return o->n_state; }

const char *cnn_optim_state_name(const cnn_optim *o, int i) {
    if (i < 0 || i >= o->n_state) return NULL;
    return o->cfg.kind == CNN_OPTIM_SGD ? "momentum_buffer" : i == 0 ? "exp_avg" : "exp_avg_sq";
}

float *cnn_optim_state(cnn_optim *o, int i, size_t *numel) {
    if (numel) *numel = o->numel;
    return i >= 0 && i < o->n_state ? o->state[i] : NULL;
}

/* torch.optim.SGD: d = g + wd*p; buf = d on the first step, else
 * momentum*buf + (1-dampening)*d; d = nesterov ? d + momentum*buf : buf; p -= lr*d. */
static void sgd_range(cnn_optim *o, range r, float lr) {
    const cnn_optim_config *c = &o->cfg;
    float *p = o->param + r.offset, *buf = o->state[0] ? o->state[0] + r.offset : NULL;
    const float *g = o->grad + r.offset;
    const float wd = (float)c->weight_decay, mom = (float)c->momentum,
                damp = (float)(1.0 - c->dampening);
    const bool first = o->steps == 0;
    CNN_PARALLEL_FOR(
        r.numel > 65536, for (size_t i = 0; i < r.numel; i++) {
            float d = g[i] + wd * p[i];
            if (buf) {
                buf[i] = first ? d : mom * buf[i] + damp * d;
                d = c->nesterov ? d + mom * buf[i] : buf[i];
            }
            p[i] -= lr * d;
        });
}

/* torch.optim.Adam(W) (amsgrad off): AdamW first decays p by lr*wd, Adam adds wd*p to g;
 * m = b1*m + (1-b1)*g; v = b2*v + (1-b2)*g^2;
 * p -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps). */
static void adam_range(cnn_optim *o, range r, float lr) {
    const cnn_optim_config *c = &o->cfg;
    float *p = o->param + r.offset, *m = o->state[0] + r.offset, *v = o->state[1] + r.offset;
    const float *g = o->grad + r.offset;
    const double t = (double)(o->steps + 1);
    const float b1 = (float)c->beta1, b2 = (float)c->beta2, eps = (float)c->eps;
    const float step = (float)(lr / (1.0 - pow(c->beta1, t)));
    const float bc2 = (float)sqrt(1.0 - pow(c->beta2, t));
    const float wd = (float)c->weight_decay;
    const bool decoupled = c->kind == CNN_OPTIM_ADAMW;
    CNN_PARALLEL_FOR(
        r.numel > 65536, for (size_t i = 0; i < r.numel; i++) {
            float gi = g[i];
            if (decoupled)
                p[i] *= 1.0f - lr * wd;
            else
                gi += wd * p[i];
            m[i] = b1 * m[i] + (1.0f - b1) * gi;
            v[i] = b2 * v[i] + (1.0f - b2) * gi * gi;
            p[i] -= step * m[i] / (sqrtf(v[i]) / bc2 + eps);
        });
}

void cnn_optim_step(cnn_optim *o, double lr) {
    for (int i = 0; i < o->n_ranges; i++) {
        if (o->cfg.kind == CNN_OPTIM_SGD)
            sgd_range(o, o->ranges[i], (float)lr);
        else
            adam_range(o, o->ranges[i], (float)lr);
    }
    o->steps++;
}

double cnn_schedule_lr(const cnn_schedule *s, double base_lr, int epoch) {
    switch (s->kind) {
    case CNN_SCHEDULE_STEP:
        return base_lr * pow(s->gamma, (double)(epoch / (s->step_size > 0 ? s->step_size : 1)));
    case CNN_SCHEDULE_COSINE: {
        const double pi = 3.14159265358979323846;
        const int t = s->t_max > 0 ? s->t_max : 1;
        return s->eta_min + (base_lr - s->eta_min) * (1.0 + cos(pi * epoch / t)) / 2.0;
    }
    default: return base_lr;
    }
}
