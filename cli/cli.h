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

/* "61,706" */
void cli_group_digits(char *buf, size_t cap, unsigned long long v);

#endif
