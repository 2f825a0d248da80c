/* cmd_train.c - `cnnkit train`: the d2l recipe on Fashion-MNIST, with
 * progress, per-epoch checkpoints that a killed run resumes from exactly,
 * a metrics log and d2l's training figure. */
#define _GNU_SOURCE
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <omp.h>

#include "cli.h"
#include "cnnkit/data.h"
#include "dist.h"
#include "cnnkit/plot.h"

#define MAX_EPOCHS 100000

typedef struct train_opts {
    const char *model, *data, *out, *ckpt, *log, *plot;
    long long epochs, batch, resize, limit, steps, ckpt_every, log_every, threads, shards;
    double lr;
    cnn_optim_config optim;
    cnn_schedule sched;
    unsigned long long seed;
    bool augment;
    cnn_init init;
    int given; /* options given other than --resume and --threads */
} train_opts;

static int usage_train(void) {
    printf(
        "usage: cnnkit train MODEL [options]\n"
        "       cnnkit train --resume CKPT [--threads N] [--epochs N] [--steps N]\n\n"
        "Trains MODEL on Fashion-MNIST (or --data DIR) with d2l's recipe: cross-entropy,\n"
        "minibatch SGD, xavier-uniform weights. After each epoch it prints d2l's line\n"
        "(epoch, loss, train acc, test acc) and writes a checkpoint; a run that is killed\n"
        "resumes from it and ends with the same weights as one that was not.\n\n"
        "  --data DIR          a folder with the four MNIST-layout IDX files\n"
        "                      (default /usr/share/datasets/fashion-mnist)\n"
        "  --epochs N          (d2l: 10)\n"
        "  --batch N           (d2l: 256 for LeNet, 128 for AlexNet)\n"
        "  --lr X              (d2l: 0.9 for LeNet, 0.01 for AlexNet, else 0.1)\n"
        "  --optim sgd|adam|adamw   (default sgd)\n"
        "  --momentum X  --dampening X  --nesterov  --weight-decay X\n"
        "  --schedule constant|step|cosine   (default constant)\n"
        "  --step-size N --gamma X           for step (default 10 and 0.1)\n"
        "  --init xavier|default             weights (default xavier, as d2l)\n"
        "  --resize S          train and test at SxS (AlexNet: 224; default: the model's input)\n"
        "  --augment           random horizontal flip and random crop with padding 4\n"
        "  --seed N            data order, augmentation, dropout and init (default 0)\n"
        "  --threads N         OpenMP and OpenBLAS threads (default: all cores)\n"
        "  --limit N           use the first N training and test images only\n"
        "  --steps N           stop after N steps in all (0: no limit)\n"
        "  -o, --output W      final weights, PyTorch's keys (default MODEL.safetensors)\n"
        "  --checkpoint C      checkpoint file (default: W with .ckpt.safetensors)\n"
        "  --checkpoint-every N  also checkpoint every N steps (default: each epoch)\n"
        "  --resume C          continue the run saved in checkpoint C, with its options\n"
        "  --log F.csv         metrics per epoch (and every --log-every N steps)\n"
        "  --plot F.svg        d2l's figure: loss, train acc and test acc per epoch\n"
        "  --shards K          split each batch as K processes would, BatchNorm per part\n"
        "                      (what `mpirun -np K cnnkit train` computes, in one process)\n\n"
        "Under mpirun (or srun), every process trains on its own rows of each batch and\n"
        "the gradients are summed with MPI; --batch is the global batch. Rank 0 prints\n"
        "and writes the files. CNNKIT_MPI_TIMEOUT (seconds, default 120) bounds the wait\n"
        "for the other ranks; see docs/distributed.md.\n");
    return EXIT_OK;
}

enum {
    OPT_DATA = 256,
    OPT_EPOCHS,
    OPT_BATCH,
    OPT_LR,
    OPT_OPTIM,
    OPT_MOMENTUM,
    OPT_DAMPENING,
    OPT_NESTEROV,
    OPT_WD,
    OPT_SCHEDULE,
    OPT_STEP_SIZE,
    OPT_GAMMA,
    OPT_INIT,
    OPT_RESIZE,
    OPT_AUGMENT,
    OPT_SEED,
    OPT_THREADS,
    OPT_LIMIT,
    OPT_STEPS,
    OPT_CKPT,
    OPT_CKPT_EVERY,
    OPT_RESUME,
    OPT_LOG,
    OPT_LOG_EVERY,
    OPT_PLOT,
    OPT_SHARDS
};

static const struct option train_options[] = {
    {"data", required_argument, 0, OPT_DATA},
    {"epochs", required_argument, 0, OPT_EPOCHS},
    {"batch", required_argument, 0, OPT_BATCH},
    {"lr", required_argument, 0, OPT_LR},
    {"optim", required_argument, 0, OPT_OPTIM},
    {"momentum", required_argument, 0, OPT_MOMENTUM},
    {"dampening", required_argument, 0, OPT_DAMPENING},
    {"nesterov", no_argument, 0, OPT_NESTEROV},
    {"weight-decay", required_argument, 0, OPT_WD},
    {"schedule", required_argument, 0, OPT_SCHEDULE},
    {"step-size", required_argument, 0, OPT_STEP_SIZE},
    {"gamma", required_argument, 0, OPT_GAMMA},
    {"init", required_argument, 0, OPT_INIT},
    {"resize", required_argument, 0, OPT_RESIZE},
    {"augment", no_argument, 0, OPT_AUGMENT},
    {"seed", required_argument, 0, OPT_SEED},
    {"threads", required_argument, 0, OPT_THREADS},
    {"limit", required_argument, 0, OPT_LIMIT},
    {"steps", required_argument, 0, OPT_STEPS},
    {"output", required_argument, 0, 'o'},
    {"checkpoint", required_argument, 0, OPT_CKPT},
    {"checkpoint-every", required_argument, 0, OPT_CKPT_EVERY},
    {"resume", required_argument, 0, OPT_RESUME},
    {"log", required_argument, 0, OPT_LOG},
    {"log-every", required_argument, 0, OPT_LOG_EVERY},
    {"plot", required_argument, 0, OPT_PLOT},
    {"shards", required_argument, 0, OPT_SHARDS},
    {"help", no_argument, 0, 'h'},
    {0, 0, 0, 0},
};

static bool parse_double(const char *opt, const char *text, double *out) {
    char *end;
    double v = strtod(text, &end);
    if (!*text || *end || !isfinite(v) || v < 0) {
        cli_error(EXIT_USAGE, "train", "%s '%s': expected a non-negative number", opt, text);
        return false;
    }
    *out = v;
    return true;
}

static bool parse_count(const char *opt, const char *text, long long max, long long *out) {
    unsigned long long v;
    if (!cli_parse_uint("train", opt, text, (unsigned long long)max, &v)) return false;
    *out = (long long)v;
    return true;
}

/* Parses the options (not --resume, not --help); unset numbers stay -1 or NaN for
 * the model's defaults. Returns EXIT_OK or the exit code. */
static int parse_opts(int argc, char **argv, train_opts *o, const char **resume) {
    *o = (train_opts){.epochs = -1,
                      .batch = -1,
                      .resize = -1,
                      .limit = 0,
                      .steps = -1,
                      .shards = 1,
                      .ckpt_every = 0,
                      .log_every = 0,
                      .threads = 0,
                      .lr = NAN,
                      .init = CNN_INIT_XAVIER};
    o->optim = cnn_optim_defaults(CNN_OPTIM_SGD);
    o->sched = (cnn_schedule){.kind = CNN_SCHEDULE_CONSTANT, .step_size = 10, .gamma = 0.1};
    double v;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "o:h", train_options, NULL)) != -1) {
        o->given += c != OPT_RESUME && c != OPT_THREADS && c != OPT_STEPS && c != OPT_EPOCHS;
        switch (c) {
        case OPT_DATA: o->data = optarg; break;
        case OPT_EPOCHS:
            if (!parse_count("--epochs", optarg, MAX_EPOCHS, &o->epochs)) return EXIT_USAGE;
            break;
        case OPT_BATCH:
            if (!parse_count("--batch", optarg, 1 << 20, &o->batch) || o->batch == 0)
                return o->batch == 0 ? cli_error(EXIT_USAGE, "train", "--batch must be positive")
                                     : EXIT_USAGE;
            break;
        case OPT_LR:
            if (!parse_double("--lr", optarg, &o->lr)) return EXIT_USAGE;
            break;
        case OPT_OPTIM: {
            cnn_optim_kind k;
            if (!cli_parse_optim("train", optarg, &k)) return EXIT_USAGE;
            double mom = o->optim.momentum, damp = o->optim.dampening;
            bool nest = o->optim.nesterov;
            o->optim = cnn_optim_defaults(k);
            o->optim.momentum = mom;
            o->optim.dampening = damp;
            o->optim.nesterov = nest;
            break;
        }
        case OPT_MOMENTUM:
            if (!parse_double("--momentum", optarg, &o->optim.momentum)) return EXIT_USAGE;
            break;
        case OPT_DAMPENING:
            if (!parse_double("--dampening", optarg, &o->optim.dampening)) return EXIT_USAGE;
            break;
        case OPT_NESTEROV: o->optim.nesterov = true; break;
        case OPT_WD:
            if (!parse_double("--weight-decay", optarg, &o->optim.weight_decay)) return EXIT_USAGE;
            break;
        case OPT_SCHEDULE:
            if (!strcmp(optarg, "constant"))
                o->sched.kind = CNN_SCHEDULE_CONSTANT;
            else if (!strcmp(optarg, "step"))
                o->sched.kind = CNN_SCHEDULE_STEP;
            else if (!strcmp(optarg, "cosine"))
                o->sched.kind = CNN_SCHEDULE_COSINE;
            else
                return cli_error(EXIT_USAGE, "train",
                                 "--schedule '%s': expected constant, step or cosine", optarg);
            break;
        case OPT_STEP_SIZE: {
            long long n;
            if (!parse_count("--step-size", optarg, MAX_EPOCHS, &n) || n == 0) return EXIT_USAGE;
            o->sched.step_size = (int)n;
            break;
        }
        case OPT_GAMMA:
            if (!parse_double("--gamma", optarg, &v)) return EXIT_USAGE;
            o->sched.gamma = v;
            break;
        case OPT_INIT:
            if (!strcmp(optarg, "xavier"))
                o->init = CNN_INIT_XAVIER;
            else if (!strcmp(optarg, "default"))
                o->init = CNN_INIT_DEFAULT;
            else
                return cli_error(EXIT_USAGE, "train", "--init '%s': expected xavier or default",
                                 optarg);
            break;
        case OPT_RESIZE:
            if (!parse_count("--resize", optarg, 4096, &o->resize)) return EXIT_USAGE;
            break;
        case OPT_AUGMENT: o->augment = true; break;
        case OPT_SEED:
            if (!cli_parse_uint("train", "--seed", optarg, UINT64_MAX, &o->seed)) return EXIT_USAGE;
            break;
        case OPT_THREADS:
            if (!parse_count("--threads", optarg, 1024, &o->threads)) return EXIT_USAGE;
            break;
        case OPT_LIMIT:
            if (!parse_count("--limit", optarg, INT64_MAX, &o->limit)) return EXIT_USAGE;
            break;
        case OPT_STEPS:
            if (!parse_count("--steps", optarg, INT64_MAX, &o->steps)) return EXIT_USAGE;
            break;
        case 'o': o->out = optarg; break;
        case OPT_CKPT: o->ckpt = optarg; break;
        case OPT_CKPT_EVERY:
            if (!parse_count("--checkpoint-every", optarg, INT64_MAX, &o->ckpt_every))
                return EXIT_USAGE;
            break;
        case OPT_RESUME: *resume = optarg; break;
        case OPT_LOG: o->log = optarg; break;
        case OPT_LOG_EVERY:
            if (!parse_count("--log-every", optarg, INT64_MAX, &o->log_every)) return EXIT_USAGE;
            break;
        case OPT_PLOT: o->plot = optarg; break;
        case OPT_SHARDS:
            if (!parse_count("--shards", optarg, 4096, &o->shards) || o->shards == 0)
                return o->shards == 0 ? cli_error(EXIT_USAGE, "train", "--shards must be positive")
                                      : EXIT_USAGE;
            break;
        case 'h': return -1;
        default: return EXIT_USAGE;
        }
    }
    if (optind < argc) o->model = argv[optind++];
    if (optind < argc)
        return cli_error(EXIT_USAGE, "train", "unexpected argument '%s'", argv[optind]);
    return EXIT_OK;
}

/* ---- the run's state ---- */

typedef struct epoch_row {
    double loss, train_acc, test_acc;
} epoch_row;

typedef struct run_state {
    int epoch;               /* the epoch in progress (0-based) */
    int64_t batch;           /* the next batch of that epoch */
    int64_t step;            /* steps done in all */
    double loss_sum;         /* over the epoch so far: sum of loss * count */
    int64_t correct, seen;   /* over the epoch so far */
    double seconds;          /* training time so far (for examples/sec) */
    int64_t examples;        /* training examples seen so far */
    epoch_row history[1024]; /* completed epochs (the plot shows the first 1024) */
    int n_history;
} run_state;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* The metadata a checkpoint carries besides the tensors. */
static char *state_json(const run_state *r, int argc, char **argv) {
    cJSON *j = cJSON_CreateObject();
    cJSON *cmd = cJSON_AddArrayToObject(j, "command");
    for (int i = 0; i < argc; i++)
        cJSON_AddItemToArray(cmd, cJSON_CreateString(argv[i]));
    cJSON_AddNumberToObject(j, "epoch", r->epoch);
    cJSON_AddNumberToObject(j, "batch", (double)r->batch);
    cJSON_AddNumberToObject(j, "step", (double)r->step);
    cJSON_AddNumberToObject(j, "loss_sum", r->loss_sum);
    cJSON_AddNumberToObject(j, "correct", (double)r->correct);
    cJSON_AddNumberToObject(j, "seen", (double)r->seen);
    cJSON_AddNumberToObject(j, "seconds", r->seconds);
    cJSON_AddNumberToObject(j, "examples", (double)r->examples);
    cJSON *h = cJSON_AddArrayToObject(j, "history");
    for (int i = 0; i < r->n_history; i++) {
        double row[3] = {r->history[i].loss, r->history[i].train_acc, r->history[i].test_acc};
        cJSON_AddItemToArray(h, cJSON_CreateDoubleArray(row, 3));
    }
    char *text = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    return text;
}

static double json_num(const cJSON *j, const char *key, bool *ok) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    if (!cJSON_IsNumber(v)) *ok = false;
    return cJSON_IsNumber(v) ? v->valuedouble : 0.0;
}

/* Reads the run state and the stored command line back. *argv_out is malloc'd
 * with its strings; free with free_argv. */
static bool parse_state(const char *text, run_state *r, int *argc_out, char ***argv_out) {
    cJSON *j = cJSON_Parse(text);
    bool ok = j != NULL;
    const cJSON *cmd = cJSON_GetObjectItemCaseSensitive(j, "command");
    const cJSON *h = cJSON_GetObjectItemCaseSensitive(j, "history");
    ok = ok && cJSON_IsArray(cmd) && cJSON_IsArray(h) && cJSON_GetArraySize(h) <= 1024;
    if (ok) {
        r->epoch = (int)json_num(j, "epoch", &ok);
        r->batch = (int64_t)json_num(j, "batch", &ok);
        r->step = (int64_t)json_num(j, "step", &ok);
        r->loss_sum = json_num(j, "loss_sum", &ok);
        r->correct = (int64_t)json_num(j, "correct", &ok);
        r->seen = (int64_t)json_num(j, "seen", &ok);
        r->seconds = json_num(j, "seconds", &ok);
        r->examples = (int64_t)json_num(j, "examples", &ok);
        r->n_history = 0;
        const cJSON *row;
        cJSON_ArrayForEach(row, h) {
            if (!cJSON_IsArray(row) || cJSON_GetArraySize(row) != 3) {
                ok = false;
                break;
            }
            epoch_row e = {cJSON_GetArrayItem(row, 0)->valuedouble,
                           cJSON_GetArrayItem(row, 1)->valuedouble,
                           cJSON_GetArrayItem(row, 2)->valuedouble};
            r->history[r->n_history++] = e;
        }
    }
    int n = ok ? cJSON_GetArraySize(cmd) : 0;
    char **argv = ok ? calloc((size_t)n + 1, sizeof *argv) : NULL;
    ok = ok && argv;
    for (int i = 0; ok && i < n; i++) {
        const cJSON *a = cJSON_GetArrayItem(cmd, i);
        ok = cJSON_IsString(a) && (argv[i] = strdup(a->valuestring));
    }
    cJSON_Delete(j);
    if (!ok) {
        for (int i = 0; argv && i < n; i++)
            free(argv[i]);
        free(argv);
        return false;
    }
    *argc_out = n;
    *argv_out = argv;
    return r->epoch >= 0 && r->batch >= 0 && r->step >= 0;
}

static void free_argv(int argc, char **argv) {
    for (int i = 0; argv && i < argc; i++)
        free(argv[i]);
    free(argv);
}

/* ---- progress ---- */

static void progress(bool tty, const run_state *r, int epochs, int64_t batches, double rate,
                     double eta) {
    double loss = r->seen ? r->loss_sum / (double)r->seen : 0.0;
    double acc = r->seen ? (double)r->correct / (double)r->seen : 0.0;
    int eta_s = (int)eta;
    if (tty) {
        int filled = batches ? (int)(20 * r->batch / batches) : 0;
        char bar[21];
        for (int i = 0; i < 20; i++)
            bar[i] = i < filled ? '#' : '.';
        bar[20] = 0;
        fprintf(stderr,
                "\repoch %d/%d [%s] %" PRId64 "/%" PRId64
                "  loss %.3f  acc %.3f  %.0f img/s  ETA %d:%02d:%02d ",
                r->epoch + 1, epochs, bar, r->batch, batches, loss, acc, rate, eta_s / 3600,
                eta_s / 60 % 60, eta_s % 60);
    } else {
        fprintf(stderr,
                "epoch %d/%d batch %" PRId64 "/%" PRId64
                " loss %.3f acc %.3f %.0f img/s ETA %d:%02d:%02d\n",
                r->epoch + 1, epochs, r->batch, batches, loss, acc, rate, eta_s / 3600,
                eta_s / 60 % 60, eta_s % 60);
    }
    fflush(stderr);
}

/* ---- the trainer ---- */

typedef struct trainer {
    train_opts o;
    run_state *r;
    cli_dist dist;
    cnn_model *m;
    cnn_optim *opt;
    cnn_dataset *train, *test;
    cnn_loader *ld;
    cli_grad_sync *sync;
    FILE *log;
    float *dy;
    int64_t classes, batches;
    int saved_argc;
    char **saved_argv;
    /* BatchNorm's running statistics: rank 0's reach every rank after each step. */
    float *stats;
    size_t stats_numel;
    char wbuf[512], cbuf[600], err[1024];
} trainer;

static bool is_root(const trainer *t) { return t->dist.rank == 0; }

/* A checkpoint is only worth keeping when every weight is a number. */
static bool params_finite(cnn_model *m) {
    size_t n;
    const float *p = cnn_model_param_buffer(m, &n);
    for (size_t i = 0; i < n; i++)
        if (!isfinite(p[i])) return false;
    return true;
}

static int save_checkpoint(trainer *t) {
    if (!is_root(t)) return EXIT_OK;
    char *meta = state_json(t->r, t->saved_argc, t->saved_argv);
    const char *md[] = {"run", meta, NULL};
    cnn_status s = meta ? cnn_checkpoint_save(t->m, t->opt, md, t->o.ckpt, t->err, sizeof t->err)
                        : CNN_STATUS_NO_MEMORY;
    cJSON_free(meta);
    if (s != CNN_OK)
        return cli_error(EXIT_FAIL, "train", "%s",
                         s == CNN_STATUS_NO_MEMORY ? "out of memory" : t->err);
    return EXIT_OK;
}

static int diverged(const trainer *t, int64_t batch, const char *what) {
    return cli_error(EXIT_FAIL, "train",
                     "epoch %d batch %" PRId64 ": %s; stopping (try a smaller --lr). The last "
                     "good checkpoint is %s",
                     t->r->epoch + 1, batch + 1, what,
                     access(t->o.ckpt, F_OK) == 0 ? t->o.ckpt : "(none written yet)");
}

/* One step on a global batch. Each rank (or, in one process, each of --shards
 * shards) takes rows [count*k/K, count*(k+1)/K) with BatchNorm on its own rows;
 * its loss gradient is scaled by rows/count, so the summed gradient is that
 * of the mean loss over the whole batch. sums gets the batch's summed loss
 * and correct count. */
static int train_step(trainer *t, const cnn_batch *b, double lr, double sums[2]) {
    const int K = t->dist.size > 1 ? t->dist.size : (int)t->o.shards;
    const int first = t->dist.size > 1 ? t->dist.rank : 0, last = t->dist.size > 1 ? first + 1 : K;
    const int64_t image = b->shape.dim[1] * b->shape.dim[2] * b->shape.dim[3];
    sums[0] = sums[1] = 0.0;
    cnn_model_zero_grad(t->m);
    for (int k = first; k < last; k++) {
        const int64_t lo = b->count * k / K, hi = b->count * (k + 1) / K, n = hi - lo;
        if (n == 0) continue;
        cnn_tensor x = {b->shape, b->x + lo * image};
        x.shape.dim[0] = n;
        /* Shard k draws dropout masks of its own, as rank k would. */
        const uint64_t seed = t->o.seed ^ ((uint64_t)k * 0x9E3779B97F4A7C15ULL);
        cnn_model_freeze_stats(t->m, k > 0 && t->dist.size == 1);
        const float *y = cnn_model_forward_train(t->m, &x, seed, (uint64_t)t->r->step);
        double loss;
        int64_t correct;
        if (!y) return cli_error(EXIT_FAIL, "train", "%s", cnn_model_error(t->m));
        if (cnn_cross_entropy(y, b->y + lo, n, t->classes, t->dy, &loss, &correct) != CNN_OK)
            return cli_error(EXIT_FAIL, "train", "a label is out of range for %" PRId64 " classes",
                             t->classes);
        const float scale = (float)n / (float)b->count;
        for (int64_t i = 0; i < n * t->classes; i++)
            t->dy[i] *= scale;
        if (cnn_model_backward(t->m, x.data, t->dy, NULL) != CNN_OK)
            return cli_error(EXIT_FAIL, "train", "%s", cnn_model_error(t->m));
        sums[0] += loss * (double)n;
        sums[1] += (double)correct;
    }
    cnn_model_freeze_stats(t->m, false);
    if (!cli_grad_sync_wait(t->sync) || !cli_dist_sum_doubles(&t->dist, sums, 2))
        cli_dist_abort(&t->dist, EXIT_FAIL);
    if (!isfinite(sums[0]))
        return diverged(t, b->batch, isnan(sums[0]) ? "the loss is NaN" : "the loss is infinite");
    cnn_optim_step(t->opt, lr);
    if (t->stats_numel && !cli_dist_bcast_floats(&t->dist, t->stats, t->stats_numel))
        cli_dist_abort(&t->dist, EXIT_FAIL);
    return EXIT_OK;
}

static int evaluate(trainer *t, double *acc) {
    double sums[3];
    int rc = cli_evaluate("train", t->m, t->test, t->o.batch, t->o.resize, t->dist.rank,
                          t->dist.size, sums, NULL);
    if (rc != EXIT_OK) cli_dist_abort(&t->dist, rc);
    if (!cli_dist_sum_doubles(&t->dist, sums, 3)) cli_dist_abort(&t->dist, EXIT_FAIL);
    *acc = sums[1] / sums[2];
    return EXIT_OK;
}

static int run_epochs(trainer *t) {
    run_state *r = t->r;
    const train_opts *o = &t->o;
    const bool tty = isatty(fileno(stderr)) && is_root(t);
    bool stop = false;
    int64_t last_ckpt_step = r->step;
    while (r->epoch < o->epochs && !stop) {
        const double lr = cnn_schedule_lr(&o->sched, o->lr, r->epoch);
        cnn_loader_start_epoch(t->ld, r->epoch, r->batch);
        double t0 = now(), last_print = 0.0;
        const int64_t first = r->batch;
        cnn_batch b;
        while (!stop && cnn_loader_next(t->ld, &b) == CNN_OK && b.count > 0) {
            double ts = now(), sums[2];
            int rc = train_step(t, &b, lr, sums);
            if (rc != EXIT_OK) return rc;
            r->step++;
            r->batch = b.batch + 1;
            r->loss_sum += sums[0];
            r->correct += (int64_t)sums[1];
            r->seen += b.count;
            r->examples += b.count;
            r->seconds += now() - ts;
            const bool end = r->batch == t->batches;
            const bool checkpoint_now =
                o->ckpt_every && r->step - last_ckpt_step >= o->ckpt_every && !end;
            if ((checkpoint_now || end) && !params_finite(t->m))
                return diverged(t, b.batch, "the weights are no longer finite");
            double elapsed = now() - t0;
            double rate =
                (double)(r->batch - first) * (double)o->batch / (elapsed > 0 ? elapsed : 1);
            if (t->log && o->log_every && r->step % o->log_every == 0) {
                fprintf(t->log, "%d,%" PRId64 ",%.6f,%.6f,,%g,%.3f\n", r->epoch + 1, r->step,
                        r->loss_sum / (double)r->seen, (double)r->correct / (double)r->seen, lr,
                        r->seconds);
                fflush(t->log);
            }
            if (is_root(t) && (elapsed - last_print >= (tty ? 0.2 : 10.0) || end)) {
                double left = (double)(t->batches - r->batch) +
                              (double)(o->epochs - r->epoch - 1) * (double)t->batches;
                progress(tty, r, (int)o->epochs, t->batches, rate,
                         left * (double)o->batch / (rate > 0 ? rate : 1));
                last_print = elapsed;
            }
            if (o->steps > 0 && r->step >= o->steps) stop = true;
            if (checkpoint_now) {
                if (save_checkpoint(t) != EXIT_OK) return EXIT_FAIL;
                last_ckpt_step = r->step;
            }
        }
        if (tty) fputc('\n', stderr);
        if (r->batch < t->batches && stop) break; /* --steps ended the run inside an epoch */
        double test_acc;
        evaluate(t, &test_acc);
        epoch_row row = {r->loss_sum / (double)r->seen, (double)r->correct / (double)r->seen,
                         test_acc};
        if (r->n_history < 1024) r->history[r->n_history++] = row;
        if (is_root(t)) {
            printf("epoch %d loss %.3f, train acc %.3f, test acc %.3f\n", r->epoch + 1, row.loss,
                   row.train_acc, row.test_acc);
            fflush(stdout);
        }
        if (t->log) {
            fprintf(t->log, "%d,%" PRId64 ",%.6f,%.6f,%.6f,%g,%.3f\n", r->epoch + 1, r->step,
                    row.loss, row.train_acc, row.test_acc, lr, r->seconds);
            fflush(t->log);
        }
        r->epoch++;
        r->batch = 0;
        r->loss_sum = 0.0;
        r->correct = r->seen = 0;
        if (save_checkpoint(t) != EXIT_OK) return EXIT_FAIL;
        last_ckpt_step = r->step;
    }
    return EXIT_OK;
}

static int finish(trainer *t) {
    run_state *r = t->r;
    if (!is_root(t)) return EXIT_OK;
    if (r->n_history)
        printf("loss %.3f, train acc %.3f, test acc %.3f\n", r->history[r->n_history - 1].loss,
               r->history[r->n_history - 1].train_acc, r->history[r->n_history - 1].test_acc);
    printf("%.1f examples/sec on cpu (%d threads%s)\n",
           r->seconds > 0 ? (double)r->examples / r->seconds : 0.0, omp_get_max_threads(),
           t->dist.size > 1 ? " per process" : "");
    char producer[64];
    snprintf(producer, sizeof producer, "cnnkit train, %" PRId64 " steps", r->step);
    const char *md[] = {"producer", producer, NULL};
    if (cnn_model_save(t->m, t->o.out, md) != CNN_OK)
        return cli_error(EXIT_FAIL, "train", "%s", cnn_model_error(t->m));
    printf("weights: %s (PyTorch state_dict keys), checkpoint: %s\n", t->o.out, t->o.ckpt);
    if (t->o.plot && r->n_history) {
        static double x[1024], l[1024], a[1024], v[1024];
        for (int i = 0; i < r->n_history; i++) {
            x[i] = i + 1;
            l[i] = r->history[i].loss;
            a[i] = r->history[i].train_acc;
            v[i] = r->history[i].test_acc;
        }
        const cnn_plot_series series[] = {
            {"train loss", l, r->n_history, "#1f77b4", 0},
            {"train acc", a, r->n_history, "#bf00bf", 1},
            {"test acc", v, r->n_history, "#2ca02c", 1},
        };
        char title[256];
        snprintf(title, sizeof title, "%s on Fashion-MNIST", cnn_model_class(t->m));
        if (cnn_plot_lines(t->o.plot, title, "epoch", x, series, 3, t->err, sizeof t->err) !=
            CNN_OK)
            return cli_error(EXIT_FAIL, "train", "%s", t->err);
        printf("plot: %s\n", t->o.plot);
    }
    return EXIT_OK;
}

/* ---- memory ---- */

/* The larger of each part of two plans: the model's arenas only grow. */
static void memory_max(cnn_memory *a, const cnn_memory *b) {
    size_t *pa[] = {&a->activations, &a->activation_gradients, &a->training_state, &a->workspace};
    const size_t pb[] = {b->activations, b->activation_gradients, b->training_state, b->workspace};
    for (size_t i = 0; i < sizeof pb / sizeof pb[0]; i++)
        if (pb[i] > *pa[i]) *pa[i] = pb[i];
    const size_t parts[] = {a->weights,        a->gradients,
                            a->activations,    a->activation_gradients,
                            a->training_state, a->workspace};
    a->total = 0;
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++)
        a->total = parts[i] > SIZE_MAX - a->total ? SIZE_MAX : a->total + parts[i];
}

/* What training holds at a (global) batch: the model planned for training on
 * a shard's rows (a process's, or the largest of --shards) and for evaluating
 * whole batches, the optimizer's state, the training and test loaders'
 * batches and the loss gradient. The data sets are in memory already. */
static const char *train_need(void *ctx, int64_t batch, cli_need *need) {
    const trainer *t = ctx;
    const int64_t K = t->dist.size > 1 ? t->dist.size : t->o.shards;
    const int64_t h = t->o.resize ? t->o.resize : t->train->height;
    const int64_t w = t->o.resize ? t->o.resize : t->train->width;
    /* A loader's batch holds at most the whole data set. */
    int64_t rows = batch < t->train->count ? batch : t->train->count;
    int64_t test_rows = batch < t->test->count ? batch : t->test->count;
    rows = rows > 0 ? (rows + K - 1) / K : 1;
    test_rows = test_rows > 0 ? test_rows : 1;
    cnn_shape train_in = cnn_shape_make(4, (int64_t[]){rows, 1, h, w});
    cnn_shape eval_in = cnn_shape_make(4, (int64_t[]){test_rows, 1, h, w});
    cnn_memory eval;
    *need = (cli_need){0};
    if (cnn_model_memory(t->m, &train_in, true, &need->model) != CNN_OK ||
        cnn_model_memory(t->m, &eval_in, false, &eval) != CNN_OK)
        return cnn_model_error(t->m);
    memory_max(&need->model, &eval);
    size_t floats;
    cnn_model_param_buffer(t->m, &floats);
    need->optimizer = cli_optim_state_bytes(&t->o.optim, floats);
    const int threads = cnn_loader_config_default().threads;
    need->data = cli_loader_bytes(batch, t->train->count, h * w, threads) +
                 cli_loader_bytes(batch, t->test->count, h * w, threads) +
                 (size_t)batch * (size_t)t->classes * sizeof(float);
    cli_need_sum(need);
    return NULL;
}

static const char *default_weights_path(const char *model, char *buf, size_t cap) {
    const char *base = strrchr(model, '/');
    base = base ? base + 1 : model;
    const char *dot = strrchr(base, '.');
    int n = dot && dot != base ? (int)(dot - base) : (int)strlen(base);
    snprintf(buf, cap, "%.*s.safetensors", n, base);
    return buf;
}

/* Everything before the first step: the model, its defaults, data, optimizer,
 * the checkpoint to resume, the loader and the log. */
static int setup(trainer *t, const char *resume, cnn_st_file *ckst) {
    train_opts *o = &t->o;
    cnn_shape input;
    int rc = cli_open_model("train", o->model, &t->m, &input);
    if (rc != EXIT_OK) return rc;
    /* d2l's settings for the zoo models; 0.1, 256 and 10 for the rest. */
    const bool is_alexnet = !strcmp(o->model, "alexnet"), is_lenet = !strcmp(o->model, "lenet");
    if (isnan(o->lr)) o->lr = is_lenet ? 0.9 : is_alexnet ? 0.01 : 0.1;
    if (o->batch < 0) o->batch = is_alexnet ? 128 : 256;
    if (o->epochs < 0) o->epochs = 10;
    o->optim.lr = o->lr;
    if (o->sched.kind == CNN_SCHEDULE_COSINE) o->sched.t_max = (int)o->epochs;
    if (o->shards > 1 && t->dist.size > 1)
        return cli_error(EXIT_USAGE, "train",
                         "--shards emulates processes in one; not with mpirun");

    const char *dir = o->data ? o->data : cnn_dataset_default_dir();
    if (cnn_dataset_load(dir, "train", &t->train, t->err, sizeof t->err) != CNN_OK ||
        cnn_dataset_load(dir, "test", &t->test, t->err, sizeof t->err) != CNN_OK)
        return cli_error(EXIT_FAIL, "train", "%s", t->err);
    if (o->limit) {
        if (t->train->count > o->limit) t->train->count = o->limit;
        if (t->test->count > o->limit) t->test->count = o->limit;
    }
    if (o->resize < 0)
        o->resize = input.ndim == 4 && input.dim[2] != t->train->height ? input.dim[2] : 0;
    const int64_t h = o->resize ? o->resize : t->train->height;
    const int64_t w = o->resize ? o->resize : t->train->width;
    cnn_shape want = cnn_shape_make(4, (int64_t[]){o->batch, 1, h, w});
    if (cnn_model_infer(t->m, &want) != CNN_OK)
        return cli_error(EXIT_FAIL, "train",
                         "%s (the images are 1x%" PRId64 "x%" PRId64 "; --resize changes that)",
                         cnn_model_error(t->m), h, w);
    cnn_shape out = cnn_model_output_shape(t->m);
    if (out.ndim != 2 || out.dim[1] < t->train->num_classes) {
        char s[64];
        cnn_shape_format(s, sizeof s, &out);
        return cli_error(EXIT_FAIL, "train",
                         "%s gives %s, but training needs [N, classes] with at least %d classes",
                         o->model, s, t->train->num_classes);
    }
    t->classes = out.dim[1];
    rc = cli_memory_check("train", o->model, o->batch, "--batch", false, train_need, t);
    if (rc != EXIT_OK) return rc;
    if (cnn_model_init(t->m, o->init, o->seed) != CNN_OK ||
        cnn_optim_new(t->m, &o->optim, &t->opt, t->err, sizeof t->err) != CNN_OK)
        return cli_error(EXIT_FAIL, "train", "%s", t->err);
    if (!o->out) o->out = default_weights_path(o->model, t->wbuf, sizeof t->wbuf);
    if (!o->ckpt) {
        size_t n = strlen(o->out);
        if (n > 12 && !strcmp(o->out + n - 12, ".safetensors")) n -= 12;
        snprintf(t->cbuf, sizeof t->cbuf, "%.*s.ckpt.safetensors", (int)n, o->out);
        o->ckpt = t->cbuf;
    }
    if (ckst && cnn_checkpoint_load(t->m, t->opt, ckst, resume, t->err, sizeof t->err) != CNN_OK)
        return cli_error(EXIT_FAIL, "train", "%s", t->err);
    /* The running statistics sit together in the parameter buffer only per layer:
     * keep a copy range from the first to the last, broadcast as one. */
    size_t numel, lo = SIZE_MAX, hi = 0;
    float *p = cnn_model_param_buffer(t->m, &numel);
    for (int i = 0; i < cnn_model_num_params(t->m); i++) {
        cnn_param_info pi = cnn_model_param(t->m, i);
        if (pi.trainable || !pi.data) continue;
        size_t off = (size_t)(pi.data - p);
        if (off < lo) lo = off;
        if (off + pi.numel > hi) hi = off + pi.numel;
    }
    if (hi > lo && t->dist.size > 1) {
        /* Between lo and hi lie weights too; every rank holds the same ones, so
         * broadcasting them with the statistics changes nothing. */
        t->stats = p + lo;
        t->stats_numel = hi - lo;
    }

    cnn_loader_config lc = cnn_loader_config_default();
    lc.batch_size = o->batch;
    lc.shuffle = true;
    lc.seed = o->seed;
    lc.resize = o->resize;
    if (o->augment) {
        lc.hflip = true;
        lc.crop_padding = 4;
    }
    if (cnn_loader_new(t->train, &lc, &t->ld, t->err, sizeof t->err) != CNN_OK)
        return cli_error(EXIT_FAIL, "train", "%s", t->err);
    t->batches = cnn_loader_num_batches(t->ld);
    if (o->log && is_root(t)) {
        /* A resumed run appends; a new one starts the file. */
        t->log = fopen(o->log, resume ? "a" : "w");
        if (!t->log ||
            (!resume && fprintf(t->log, "epoch,step,loss,train_acc,test_acc,lr,seconds\n") < 0))
            return cli_error(EXIT_FAIL, "train", "%s: cannot write", o->log);
    }
    t->dy = malloc((size_t)(o->batch * t->classes) * sizeof *t->dy);
    if (!t->dy) return cli_error(EXIT_FAIL, "train", "out of memory");
    t->sync = cli_grad_sync_new(&t->dist, t->m, (size_t)4 << 20);
    if (t->dist.size > 1 && !t->sync) return cli_error(EXIT_FAIL, "train", "out of memory");
    if (is_root(t)) {
        if (!resume)
            printf("training %s on %s: %" PRId64 " images at %" PRId64 "x%" PRId64
                   ", %lld epochs, batch %lld, %s lr %g, %d threads%s\n",
                   o->model, dir, t->train->count, h, w, o->epochs, o->batch,
                   cnn_optim_name(o->optim.kind), o->lr, omp_get_max_threads(),
                   t->dist.size > 1 ? "" : "");
        else
            printf("resuming %s from %s at epoch %d, batch %" PRId64 " (step %" PRId64 ")\n",
                   o->model, resume, t->r->epoch + 1, t->r->batch, t->r->step);
        if (t->dist.size > 1)
            printf("data parallel: %d processes, %lld images of each batch apiece\n", t->dist.size,
                   o->batch / t->dist.size);
        fflush(stdout);
    }
    return EXIT_OK;
}

int cmd_train(int argc, char **argv) {
    trainer *t = calloc(1, sizeof *t);
    run_state *r = calloc(1, sizeof *r);
    if (!t || !r) {
        free(t);
        free(r);
        return cli_error(EXIT_FAIL, "train", "out of memory");
    }
    t->r = r;
    const char *resume = NULL;
    char **stored = NULL;
    int n_stored = 0;
    cnn_st_file *ckst = NULL;
    int rc = parse_opts(argc, argv, &t->o, &resume);
    if (rc == -1) {
        rc = usage_train();
        goto out;
    }
    if (rc != EXIT_OK) goto out;
    if (!cli_dist_init(&argc, &argv, &t->dist)) {
        rc = EXIT_FAIL;
        goto out;
    }
    t->saved_argc = argc - 1;
    t->saved_argv = argv + 1; /* the options as given, stored in checkpoints */
    if (resume) {
        if (t->o.model || t->o.given) {
            rc = cli_error(EXIT_USAGE, "train",
                           "--resume takes the model and options from the checkpoint; only "
                           "--threads, --epochs and --steps may change");
            goto done;
        }
        if (cnn_st_read(resume, &ckst, t->err, sizeof t->err) != CNN_OK) {
            rc = cli_error(EXIT_FAIL, "train", "%s", t->err);
            goto done;
        }
        const char *meta = cnn_st_metadata(ckst, "run");
        if (!meta || !parse_state(meta, r, &n_stored, &stored)) {
            rc = cli_error(EXIT_FAIL, "train", "%s: metadata 'run' is missing or invalid", resume);
            goto done;
        }
        const train_opts given = t->o;
        const char *again = NULL;
        char **args = calloc((size_t)n_stored + 2, sizeof *args);
        if (!args) {
            rc = cli_error(EXIT_FAIL, "train", "out of memory");
            goto done;
        }
        args[0] = argv[0];
        memcpy(args + 1, stored, (size_t)n_stored * sizeof *args);
        rc = parse_opts(n_stored + 1, args, &t->o, &again);
        free(args);
        if (rc != EXIT_OK || again || !t->o.model) {
            rc = cli_error(EXIT_FAIL, "train", "%s: the stored command line is invalid", resume);
            goto done;
        }
        if (given.threads) t->o.threads = given.threads;
        if (given.steps >= 0) t->o.steps = given.steps;
        if (given.epochs >= 0) t->o.epochs = given.epochs;
        t->saved_argc = n_stored;
        t->saved_argv = stored;
    } else if (!t->o.model) {
        rc = cli_error(EXIT_USAGE, "train", "expected a MODEL (see --help)");
        goto done;
    }
    cnn_set_threads((int)t->o.threads);
    rc = setup(t, resume, ckst);
    if (rc == EXIT_OK) rc = run_epochs(t);
    if (rc == EXIT_OK) rc = finish(t);
done:
    if (rc != EXIT_OK && t->dist.size > 1) cli_dist_abort(&t->dist, rc);
    cli_dist_finalize(&t->dist);
    if (t->log && fclose(t->log) != 0 && rc == EXIT_OK)
        rc = cli_error(EXIT_FAIL, "train", "%s: cannot write", t->o.log);
    cli_grad_sync_free(t->sync);
    free(t->dy);
    cnn_loader_free(t->ld);
    cnn_dataset_free(t->train);
    cnn_dataset_free(t->test);
    cnn_optim_free(t->opt);
    cnn_model_free(t->m);
out:
    cnn_st_free(ckst);
    free_argv(n_stored, stored);
    free(r);
    free(t);
    return rc;
}
