/* cnnkit/train.h - the loss, the optimizers and learning-rate schedules,
 * with PyTorch's formulas.
 *
 *   cnn_optim *opt;
 *   cnn_optim_config cfg = cnn_optim_defaults(CNN_OPTIM_SGD);
 *   cfg.lr = 0.9;
 *   cnn_optim_new(m, &cfg, &opt);
 *   for each batch (x, labels):
 *       cnn_model_zero_grad(m);
 *       const float *logits = cnn_model_forward_train(m, &x, seed, step);
 *       cnn_cross_entropy(logits, labels, N, C, dlogits, &loss, &correct);
 *       cnn_model_backward(m, x.data, dlogits, NULL);
 *       cnn_optim_step(opt, cnn_schedule_lr(&sched, cfg.lr, epoch));
 */
#ifndef CNNKIT_TRAIN_H
#define CNNKIT_TRAIN_H

#include <stdbool.h>
#include <stdint.h>

#include "cnnkit/model.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Softmax cross-entropy, averaged over the batch as nn.CrossEntropyLoss does,
 * computed stably (log-sum-exp with the row maximum subtracted). logits is
 * (N, C); dlogits, when not NULL, receives dL/dlogits = (softmax - onehot)/N.
 * *correct counts rows whose first maximum is the label. A label outside
 * [0, C) is CNN_STATUS_INVALID_ARGUMENT. */
cnn_status cnn_cross_entropy(const float *logits, const int32_t *labels, int64_t N, int64_t C,
                             float *dlogits, double *loss, int64_t *correct);

typedef enum cnn_optim_kind {
    CNN_OPTIM_SGD,   /* torch.optim.SGD */
    CNN_OPTIM_ADAM,  /* torch.optim.Adam (L2 weight decay added to the gradient) */
    CNN_OPTIM_ADAMW, /* torch.optim.AdamW (decoupled weight decay) */
    CNN_OPTIM_COUNT
} cnn_optim_kind;

typedef struct cnn_optim_config {
    cnn_optim_kind kind;
    double lr;
    double momentum, dampening; /* SGD */
    bool nesterov;              /* SGD; needs momentum > 0 and dampening 0 */
    double weight_decay;
    double beta1, beta2, eps; /* Adam, AdamW */
} cnn_optim_config;

/* PyTorch's defaults: SGD lr 0.001 momentum 0; Adam lr 0.001 betas (0.9, 0.999)
 * eps 1e-8; AdamW the same with weight_decay 0.01. */
cnn_optim_config cnn_optim_defaults(cnn_optim_kind kind);
const char *cnn_optim_name(cnn_optim_kind kind);

typedef struct cnn_optim cnn_optim;

/* An optimizer over the trainable parameters of m (weights and biases, not
 * BatchNorm's running statistics). Checks the config as PyTorch does. */
cnn_status cnn_optim_new(cnn_model *m, const cnn_optim_config *cfg, cnn_optim **out, char *err,
                         size_t errlen);
/* One update from the model's gradient buffer with learning rate lr. */
void cnn_optim_step(cnn_optim *o, double lr);
/* Updates done so far (Adam's t). */
int64_t cnn_optim_steps(const cnn_optim *o);
void cnn_optim_set_steps(cnn_optim *o, int64_t steps);
void cnn_optim_free(cnn_optim *o);

/* The optimizer's state buffers, each laid out as the parameter buffer
 * ("momentum_buffer" for SGD with momentum; "exp_avg" and "exp_avg_sq" for
 * Adam), for checkpoints. */
int cnn_optim_num_states(const cnn_optim *o);
const char *cnn_optim_state_name(const cnn_optim *o, int i);
float *cnn_optim_state(cnn_optim *o, int i, size_t *numel);

struct cnn_st_file;

/* A training checkpoint: the model's state_dict under PyTorch's keys, the
 * optimizer's state buffers as "optim.<name>" (flat, in the parameter
 * buffer's layout), its step count as metadata "optim_steps", plus the
 * caller's metadata (NULL-terminated key, value pairs; may be NULL). Written
 * atomically: an interrupted write leaves the previous file intact. */
cnn_status cnn_checkpoint_save(cnn_model *m, cnn_optim *o, const char *const *metadata,
                               const char *path, char *err, size_t errlen);

/* Restores model and optimizer from a checkpoint already read into st (path
 * names it in errors). Everything is checked first (the optimizer state's
 * names and sizes, then the model's keys as strictly as cnn_model_load), so a
 * failure leaves both unchanged. */
cnn_status cnn_checkpoint_load(cnn_model *m, cnn_optim *o, const struct cnn_st_file *st,
                               const char *path, char *err, size_t errlen);

typedef enum cnn_schedule_kind {
    CNN_SCHEDULE_CONSTANT,
    CNN_SCHEDULE_STEP,   /* StepLR: lr * gamma^(epoch / step_size) */
    CNN_SCHEDULE_COSINE, /* CosineAnnealingLR: eta_min + (lr - eta_min)(1 + cos(pi epoch/t_max))/2
                          */
    CNN_SCHEDULE_COUNT
} cnn_schedule_kind;

typedef struct cnn_schedule {
    cnn_schedule_kind kind;
    int step_size;
    double gamma;
    int t_max;
    double eta_min;
} cnn_schedule;

/* The learning rate for a 0-based epoch. */
double cnn_schedule_lr(const cnn_schedule *s, double base_lr, int epoch);

#ifdef __cplusplus
}
#endif
#endif
