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

/* Prints "cnnkit CMD: message" on stderr and returns code. */
int cli_error(int code, const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Opens MODEL: a built-in name now; a model file is another kind of spec
 * that fits here. *input gets the model's default input shape. */
int cli_open_model(const char *cmd, const char *spec, cnn_model **m, cnn_shape *input);

/* Parses --input N,C,H,W; prints the error and returns false on bad text. */
bool cli_parse_shape(const char *cmd, const char *text, cnn_shape *out);

/* Parses a non-negative integer option value. */
bool cli_parse_uint(const char *cmd, const char *opt, const char *text, unsigned long long max,
                    unsigned long long *out);

/* "61,706" */
void cli_group_digits(char *buf, size_t cap, unsigned long long v);

#endif
