/* cli.h - what the cnnkit command's subcommands share. */
#ifndef CNNKIT_CLI_H
#define CNNKIT_CLI_H

#include <stdbool.h>

#include "cnnkit/cnnkit.h"

/* Exit codes of every subcommand. */
enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2 };

typedef struct cli_command {
    const char *name;
    const char *summary; /* one line for `cnnkit --help` */
    int (*run)(int argc, char **argv);
} cli_command;

int cmd_zoo(int argc, char **argv);
int cmd_print(int argc, char **argv);
int cmd_summary(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_draw(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_predict(int argc, char **argv);
int cmd_bench(int argc, char **argv);

struct cnn_dataset;
/* Runs m in inference mode over rank's slice of the data set (ranks slices in
 * all; 0 and 1 for the whole), in batches, resized to resize x resize when
 * resize > 0. sums gets the summed loss, the correct count and the image
 * count; confusion, when not NULL, num_classes x num_classes counts (true
 * class, predicted) to add to. */
int cli_evaluate(const char *cmd, cnn_model *m, const struct cnn_dataset *ds, int64_t batch,
                 int64_t resize, int rank, int ranks, double *sums, int64_t *confusion);

/* Prints "cnnkit CMD: message" on stderr and returns code. */
int cli_error(int code, const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Opens MODEL: a built-in name or a model file (cnnkit/modelfile.h; a path
 * with a '/', a name ending in .txt or .py, or an existing file that is not a
 * built-in name). *input gets the model's default input shape: the zoo's, or
 * for a file the one cnn_model_guess_input finds, or ndim 0 when none fits
 * (see cli_need_input). A file's syntax error is printed as the parser wrote
 * it (FILE:LINE:COL, the line, a caret). */
int cli_open_model(const char *cmd, const char *spec, cnn_model **m, cnn_shape *input);

/* For a command that needs an input shape and was given no --input: true when
 * cli_open_model found one; otherwise prints why and that --input is needed. */
bool cli_need_input(const char *cmd, const char *spec, const cnn_model *m, const cnn_shape *input);

/* Parses --input N,C,H,W; prints the error and returns false on bad text. */
bool cli_parse_shape(const char *cmd, const char *text, cnn_shape *out);

/* Parses a non-negative integer option value. */
bool cli_parse_uint(const char *cmd, const char *opt, const char *text, unsigned long long max,
                    unsigned long long *out);

/* Parses --optim NAME (sgd, adam or adamw); prints the error and returns false on
 * another name. */
bool cli_parse_optim(const char *cmd, const char *text, cnn_optim_kind *out);

/* "61,706" */
void cli_group_digits(char *buf, size_t cap, unsigned long long v);

/* ---- Memory ---- */

/* What a command will hold at a batch, by part: the model's buffers, the
 * optimizer's state and the data in flight (loader batches, input and output
 * tensors, the loss gradient). */
typedef struct cli_need {
    cnn_memory model;
    size_t optimizer, data, total;
} cli_need;

/* Fills need for batch; returns NULL, or the error text when it cannot be planned. */
typedef const char *(*cli_need_fn)(void *ctx, int64_t batch, cli_need *need);

/* need->total from its parts (saturating at SIZE_MAX). */
void cli_need_sum(cli_need *need);

/* Optimizer state as cnn_optim_new allocates it: one buffer the size of the
 * parameter buffer (param_floats) per state; none for SGD without momentum,
 * one for momentum (nesterov or not), two for Adam and AdamW. */
size_t cli_optim_state_bytes(const cnn_optim_config *c, size_t param_floats);

/* What a loader over count images of plane floats each holds (cnn_loader_new:
 * threads + 1 batches of images, labels and indices, and the epoch's order). */
size_t cli_loader_bytes(int64_t batch, int64_t count, int64_t plane, int threads);

/* Bytes this process can still allocate: the smallest of MemAvailable in
 * /proc/meminfo; what the memory limit of its cgroup (v2, or v1's memory
 * controller), and of every cgroup above it, leaves above the working set
 * (usage less inactive file pages); and RLIMIT_AS, when set, less the address
 * space in use. resident bytes of what is counted already live in memory and
 * mapped bytes in the address space: they are added back (a need counts a
 * model's parameter buffer that is allocated, and once loaded written, before
 * the check). *source names the smallest; SIZE_MAX when nothing limits.
 * CNNKIT_MEMORY_LIMIT=BYTES (K, M, G, T suffixes: powers of 1024) replaces
 * the probes, "none" turns the check off. False with *source the reason when
 * that variable is not understood. */
bool cli_memory_available(size_t resident, size_t mapped, size_t *avail, const char **source);

/* "38.2 GiB", "512 B": powers of 1024, one decimal. */
void cli_format_bytes(char *buf, size_t cap, size_t bytes);

/* Refuses a run that would not fit: plans what cmd needs for what (the model's
 * name) at batch and, when the total exceeds cli_memory_available, prints one
 * line (the need, by part, what is available, and the largest batch that fits,
 * as "try OPTION N" when batch_option is not NULL) and returns EXIT_FAIL;
 * EXIT_OK when it fits, EXIT_USAGE for a CNNKIT_MEMORY_LIMIT it cannot read.
 * Call it once the model is built and before anything the need counts is
 * allocated, except the model's parameter and gradient buffers; loaded says
 * whether the weights have been loaded (or initialized) already. */
int cli_memory_check(const char *cmd, const char *what, int64_t batch, const char *batch_option,
                     bool loaded, cli_need_fn need, void *ctx);

#endif
