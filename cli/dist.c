/* dist.c - MPI for data-parallel training; without MPI, a refusal to run
 * under mpirun. */
#define _GNU_SOURCE
#include "dist.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Set by mpirun (Open MPI), srun (Slurm's PMI) or MPICH's hydra. */
static int launched_size(void) {
    const char *vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "SLURM_NTASKS", "PMIX_SIZE"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        const char *v = getenv(vars[i]);
        if (v && atoi(v) > 1) return atoi(v);
    }
    return 1;
}

#ifdef CNNKIT_MPI
#include <mpi.h>

static void sleep_briefly(void) {
    struct timespec ts = {0, 200000}; /* 0.2 ms between polls */
    nanosleep(&ts, NULL);
}

/* Waits for req, polling, for at most d->timeout seconds. */
static bool wait_for(const cli_dist *d, MPI_Request *req, const char *what) {
    const double start = MPI_Wtime();
    for (;;) {
        int done = 0;
        int rc = MPI_Test(req, &done, MPI_STATUS_IGNORE);
        if (rc != MPI_SUCCESS) {
            char msg[MPI_MAX_ERROR_STRING];
            int len;
            MPI_Error_string(rc, msg, &len);
            fprintf(stderr, "cnnkit train: rank %d: %s failed: %s\n", d->rank, what, msg);
            return false;
        }
        if (done) return true;
        if (MPI_Wtime() - start > d->timeout) {
            fprintf(stderr,
                    "cnnkit train: rank %d: no answer from the other ranks for %.0f s during %s "
                    "(did a rank die?); stopping the job\n",
                    d->rank, d->timeout, what);
            return false;
        }
        sleep_briefly();
    }
}

bool cli_dist_init(int *argc, char ***argv, cli_dist *d) {
    *d = (cli_dist){.rank = 0, .size = 1, .timeout = 120.0};
    const char *t = getenv("CNNKIT_MPI_TIMEOUT");
    if (t && atof(t) > 0) d->timeout = atof(t);
    if (launched_size() <= 1) return true;
    int provided;
    if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) {
        fprintf(stderr, "cnnkit train: MPI_Init failed\n");
        return false;
    }
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &d->rank);
    MPI_Comm_size(MPI_COMM_WORLD, &d->size);
    return true;
}

void cli_dist_finalize(const cli_dist *d) {
    if (d->size > 1) MPI_Finalize();
}

void cli_dist_abort(const cli_dist *d, int code) {
    if (d->size > 1) MPI_Abort(MPI_COMM_WORLD, code);
    exit(code);
}

bool cli_dist_sum_doubles(const cli_dist *d, double *v, int n) {
    if (d->size == 1) return true;
    MPI_Request req;
    if (MPI_Iallreduce(MPI_IN_PLACE, v, n, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD, &req) !=
        MPI_SUCCESS)
        return false;
    return wait_for(d, &req, "a metrics reduction");
}

bool cli_dist_bcast_floats(const cli_dist *d, float *v, size_t n) {
    if (d->size == 1) return true;
    for (size_t off = 0; off < n; off += (size_t)1 << 30) {
        size_t k = n - off < ((size_t)1 << 30) ? n - off : (size_t)1 << 30;
        MPI_Request req;
        if (MPI_Ibcast(v + off, (int)k, MPI_FLOAT, 0, MPI_COMM_WORLD, &req) != MPI_SUCCESS ||
            !wait_for(d, &req, "a broadcast"))
            return false;
    }
    return true;
}

/* Buckets of whole nodes' gradients, contiguous in the gradient buffer:
 * nodes finish last to first, and their parameters are laid out first to
 * last, so a bucket is the range from the newest node's first parameter up
 * to where the previous bucket began. */
struct cli_grad_sync {
    const cli_dist *d;
    cnn_model *m;
    float *grad;
    size_t bucket_bytes;
    size_t *node_start; /* first gradient offset of each node's parameters, or SIZE_MAX */
    size_t pending_end; /* the open bucket is [node_start of its newest node, pending_end) */
    MPI_Request *reqs;
    int n_reqs, cap_reqs;
    bool failed;
};

static void start_bucket(cli_grad_sync *g, size_t lo, size_t hi) {
    if (hi <= lo || g->failed) return;
    if (g->n_reqs == g->cap_reqs) {
        int cap = g->cap_reqs ? 2 * g->cap_reqs : 16;
        MPI_Request *r = realloc(g->reqs, (size_t)cap * sizeof *r);
        if (!r) {
            g->failed = true;
            return;
        }
        g->reqs = r;
        g->cap_reqs = cap;
    }
    if (MPI_Iallreduce(MPI_IN_PLACE, g->grad + lo, (int)(hi - lo), MPI_FLOAT, MPI_SUM,
                       MPI_COMM_WORLD, &g->reqs[g->n_reqs]) != MPI_SUCCESS)
        g->failed = true;
    else
        g->n_reqs++;
}

static void on_node_done(void *ctx, int node) {
    cli_grad_sync *g = ctx;
    size_t start = g->node_start[node];
    if (start == SIZE_MAX) return;
    if ((g->pending_end - start) * sizeof(float) >= g->bucket_bytes) {
        start_bucket(g, start, g->pending_end);
        g->pending_end = start;
    }
    /* Let MPI progress the buckets already on their way. */
    int flag;
    if (g->n_reqs) MPI_Testall(g->n_reqs, g->reqs, &flag, MPI_STATUSES_IGNORE);
}

cli_grad_sync *cli_grad_sync_new(const cli_dist *d, cnn_model *m, size_t bucket_bytes) {
    if (d->size == 1) return NULL;
    cli_grad_sync *g = calloc(1, sizeof *g);
    if (!g) return NULL;
    size_t n;
    g->d = d;
    g->m = m;
    g->grad = cnn_model_grad_buffer(m, &n);
    g->bucket_bytes = bucket_bytes;
    g->pending_end = n;
    g->node_start = malloc((size_t)cnn_model_num_nodes(m) * sizeof *g->node_start);
    if (!g->node_start) {
        free(g);
        return NULL;
    }
    for (int i = 0; i < cnn_model_num_nodes(m); i++)
        g->node_start[i] = SIZE_MAX;
    for (int i = 0; i < cnn_model_num_params(m); i++) {
        cnn_param_info p = cnn_model_param(m, i);
        size_t off = p.grad ? (size_t)(p.grad - g->grad) : SIZE_MAX;
        if (p.grad && off < g->node_start[p.node]) g->node_start[p.node] = off;
    }
    cnn_model_set_grad_hook(m, on_node_done, g);
    return g;
}

bool cli_grad_sync_wait(cli_grad_sync *g) {
    if (!g) return true;
    start_bucket(g, 0, g->pending_end); /* the rest, down to the first layer */
    bool ok = !g->failed;
    for (int i = 0; i < g->n_reqs && ok; i++)
        ok = wait_for(g->d, &g->reqs[i], "the gradient sum");
    size_t n;
    cnn_model_grad_buffer(g->m, &n);
    g->pending_end = n;
    g->n_reqs = 0;
    return ok;
}

void cli_grad_sync_free(cli_grad_sync *g) {
    if (!g) return;
    cnn_model_set_grad_hook(g->m, NULL, NULL);
    free(g->node_start);
    free(g->reqs);
    free(g);
}

#else /* no MPI */

bool cli_dist_init(int *argc, char ***argv, cli_dist *d) {
    (void)argc;
    (void)argv;
    *d = (cli_dist){.rank = 0, .size = 1, .timeout = 0};
    if (launched_size() > 1) {
        fprintf(stderr,
                "cnnkit train: started as one of %d processes, but this cnnkit was built "
                "without MPI (apt-get install libopenmpi-dev, then rebuild)\n",
                launched_size());
        return false;
    }
    return true;
}

void cli_dist_finalize(const cli_dist *d) { (void)d; }

void cli_dist_abort(const cli_dist *d, int code) {
    (void)d;
    exit(code);
}

bool cli_dist_sum_doubles(const cli_dist *d, double *v, int n) {
    (void)d;
    (void)v;
    (void)n;
    return true;
}

bool cli_dist_bcast_floats(const cli_dist *d, float *v, size_t n) {
    (void)d;
    (void)v;
    (void)n;
    return true;
}

cli_grad_sync *cli_grad_sync_new(const cli_dist *d, cnn_model *m, size_t bucket_bytes) {
    (void)d;
    (void)m;
    (void)bucket_bytes;
    return NULL;
}

bool cli_grad_sync_wait(cli_grad_sync *g) {
    (void)g;
    return true;
}

void cli_grad_sync_free(cli_grad_sync *g) { (void)g; }

#endif
