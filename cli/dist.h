/* dist.h - data-parallel training across processes with MPI (Open MPI).
 *
 * Every rank holds the whole model and runs the same steps on its own rows
 * of each global batch; gradients are summed with MPI_Allreduce in buckets
 * that start while the backward pass is still running on the remaining
 * layers. Every collective has a timeout, so a rank that dies ends the job
 * with a message on the others instead of a hang. Built without MPI, a
 * process started by mpirun says so and stops. */
#ifndef CNNKIT_CLI_DIST_H
#define CNNKIT_CLI_DIST_H

#include <stdbool.h>
#include <stddef.h>

#include "cnnkit/cnnkit.h"

typedef struct cli_dist {
    int rank, size; /* 0 and 1 when not distributed */
    double timeout; /* seconds a collective may wait */
} cli_dist;

/* Starts MPI when the process was launched by mpirun/srun (or refuses when
 * cnnkit has no MPI); otherwise a single process. Returns false on failure
 * after printing why. */
bool cli_dist_init(int *argc, char ***argv, cli_dist *d);
void cli_dist_finalize(const cli_dist *d);
/* Ends every rank of the job after a message (MPI_Abort). */
_Noreturn void cli_dist_abort(const cli_dist *d, int code);

/* Element-wise sums across ranks, in place. false after a timeout or error
 * (the message is printed). */
bool cli_dist_sum_doubles(const cli_dist *d, double *v, int n);
/* Rank 0's floats to every rank. */
bool cli_dist_bcast_floats(const cli_dist *d, float *v, size_t n);

/* Gradient reduction that overlaps the backward pass: hooked into
 * cnn_model_backward, it sums the gradient buffer across ranks bucket by
 * bucket as layers finish; cli_dist_grads_wait completes it. */
typedef struct cli_grad_sync cli_grad_sync;
cli_grad_sync *cli_grad_sync_new(const cli_dist *d, cnn_model *m, size_t bucket_bytes);
bool cli_grad_sync_wait(cli_grad_sync *g);
void cli_grad_sync_free(cli_grad_sync *g);

#endif
