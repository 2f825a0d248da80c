/* main.c - the cnnkit command: subcommand dispatch and shared helpers. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"

static const cli_command commands[] = {
    {"zoo", "list the built-in models with their input, parameters and MACs", cmd_zoo},
    {"print", "print a model exactly as PyTorch's print(model) does", cmd_print},
    {"summary", "per-layer output shapes, parameters and MACs (--trace, --explain, --json)",
     cmd_summary},
    {"run", "forward pass on a safetensors input, writing a safetensors output", cmd_run},
    {"draw", "architecture figures: d2l blocks, Netron graph or LeCun planes (SVG, PNG, DOT)",
     cmd_draw},
    {"export", "write the model as an ONNX file for ONNX Runtime and Netron", cmd_export},
    {"train", "train on Fashion-MNIST with d2l's recipe; checkpoints, resume, curves", cmd_train},
    {"eval", "loss, accuracy, per-class accuracy and confusion matrix on the test set", cmd_eval},
    {"predict", "classify PNG or PGM images, top-k classes with probabilities", cmd_predict},
    {"bench", "images per second for inference or training, with a per-layer profile", cmd_bench},
};

static void usage(FILE *f) {
    fprintf(f, "usage: cnnkit COMMAND [ARGS...]\n\n"
               "Classic convolutional networks (LeNet, AlexNet) in C, equal to PyTorch.\n\n"
               "commands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-9s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\nMODEL is a built-in name (see `cnnkit zoo`) or a model file (.txt repr or .py "
               "code,\nsee docs/model-files.md).\n"
               "Run `cnnkit COMMAND --help` for a command's options.\n"
               "Exit status: 0 success, 1 failure, 2 bad usage.\n");
}

int cli_error(int code, const char *cmd, const char *fmt, ...) {
    fprintf(stderr, "cnnkit %s: ", cmd);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return code;
}

/* A path (with a '/' or ending in .txt or .py), or an existing file that is
 * not a built-in name: ./lenet reads a file called lenet. */
static bool is_model_file(const char *spec) {
    size_t n = strlen(spec);
    if (strchr(spec, '/') || (n > 4 && strcmp(spec + n - 4, ".txt") == 0) ||
        (n > 3 && strcmp(spec + n - 3, ".py") == 0))
        return true;
    struct stat st;
    return !cnn_zoo_find(spec) && stat(spec, &st) == 0;
}

int cli_open_model(const char *cmd, const char *spec, cnn_model **m, cnn_shape *input) {
    if (is_model_file(spec)) {
        char err[2048];
        cnn_status s = cnn_model_read_file(spec, m, err, sizeof err);
        if (s == CNN_STATUS_IO || s == CNN_STATUS_NO_MEMORY)
            return cli_error(EXIT_FAIL, cmd, "%s", err);
        if (s != CNN_OK) {
            fprintf(stderr, "%s\n", err); /* FILE:LINE:COL: message, the line, a caret */
            return EXIT_FAIL;
        }
        if (cnn_model_guess_input(*m, input) != CNN_OK) input->ndim = 0;
        return EXIT_OK;
    }
    const cnn_zoo_entry *e = cnn_zoo_find(spec);
    if (e) {
        cnn_status s = cnn_zoo_build(spec, m);
        if (s != CNN_OK) return cli_error(EXIT_FAIL, cmd, "%s: %s", spec, cnn_status_str(s));
        *input = e->input;
        return EXIT_OK;
    }
    char names[256] = "";
    for (int i = 0; i < cnn_zoo_count(); i++) {
        strncat(names, i ? ", " : "", sizeof names - strlen(names) - 1);
        strncat(names, cnn_zoo_get(i)->name, sizeof names - strlen(names) - 1);
    }
    return cli_error(EXIT_FAIL, cmd,
                     "unknown model '%s': built-in models are %s, or give a model file (.txt, .py)",
                     spec, names);
}

bool cli_need_input(const char *cmd, const char *spec, const cnn_model *m, const cnn_shape *input) {
    if (input->ndim > 0) return true;
    cli_error(EXIT_FAIL, cmd, "%s: pass --input N,C,H,W: %s", spec, cnn_model_error(m));
    return false;
}

bool cli_parse_shape(const char *cmd, const char *text, cnn_shape *out) {
    if (cnn_shape_parse(text, out) == CNN_OK) return true;
    cli_error(EXIT_USAGE, cmd, "--input '%s': expected positive integers like 1,1,28,28", text);
    return false;
}

bool cli_parse_uint(const char *cmd, const char *opt, const char *text, unsigned long long max,
                    unsigned long long *out) {
    char *end;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (!*text || *end || errno || text[0] == '-' || v > max) {
        cli_error(EXIT_USAGE, cmd, "%s '%s': expected an integer from 0 to %llu", opt, text, max);
        return false;
    }
    *out = v;
    return true;
}

void cli_group_digits(char *buf, size_t cap, unsigned long long v) {
    char tmp[32];
    int n = snprintf(tmp, sizeof tmp, "%llu", v);
    size_t o = 0;
    for (int i = 0; i < n && o + 1 < cap; i++) {
        if (i && (n - i) % 3 == 0 && o + 2 < cap) buf[o++] = ',';
        buf[o++] = tmp[i];
    }
    buf[o] = 0;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
        if (argc > 2 && strcmp(cmd, "help") == 0) {
            char *help_argv[] = {argv[2], "--help", NULL};
            for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
                if (!strcmp(commands[i].name, argv[2])) return commands[i].run(2, help_argv);
        }
        usage(stdout);
        return EXIT_OK;
    }
    if (!strcmp(cmd, "--version")) {
        printf("cnnkit 0.1.0\n");
        return EXIT_OK;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(commands[i].name, cmd)) return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "cnnkit: unknown command '%s'\n\n", cmd);
    usage(stderr);
    return EXIT_USAGE;
}
