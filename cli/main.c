/* main.c - the cnnkit command: subcommand dispatch and shared helpers. */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

static const cli_command commands[] = {
    {"zoo", "list the built-in models with their input, parameters and MACs", cmd_zoo},
    {"print", "print a model exactly as PyTorch's print(model) does", cmd_print},
    {"summary", "per-layer output shapes, parameters, MACs and memory (--trace, --explain, --json)",
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
               "A run that would not fit in memory is refused before it starts (see `cnnkit\n"
               "summary --help`); CNNKIT_MEMORY_LIMIT=BYTES sets the memory to fit in, =none\n"
               "turns the check off.\n"
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

bool cli_parse_optim(const char *cmd, const char *text, cnn_optim_kind *out) {
    for (int i = 0; i < CNN_OPTIM_COUNT; i++)
        if (!strcmp(text, cnn_optim_name((cnn_optim_kind)i))) {
            *out = (cnn_optim_kind)i;
            return true;
        }
    cli_error(EXIT_USAGE, cmd, "--optim '%s': expected sgd, adam or adamw", text);
    return false;
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

/* ---- Memory ---- */

static size_t add_sat(size_t a, size_t b) { return a > SIZE_MAX - b ? SIZE_MAX : a + b; }

void cli_need_sum(cli_need *need) {
    need->total = add_sat(add_sat(need->model.total, need->optimizer), need->data);
}

size_t cli_optim_state_bytes(const cnn_optim_config *c, size_t param_floats) {
    const size_t states = c->kind == CNN_OPTIM_SGD ? (c->momentum != 0.0) : 2;
    return states * param_floats * sizeof(float);
}

size_t cli_loader_bytes(int64_t batch, int64_t count, int64_t plane, int threads) {
    const size_t bs = (size_t)(batch < count ? batch : count);
    const size_t image = (size_t)plane * sizeof(float) + sizeof(int32_t) + sizeof(int64_t);
    return (size_t)(threads + 1) * bs * image + (size_t)count * sizeof(int64_t);
}

/* The first number after "key" at the start of a line of file (a
 * "key value" or "key: value kB" file), times unit; false when absent. */
static bool read_key(const char *path, const char *key, unsigned long long unit, size_t *out) {
    FILE *f = fopen(path, "r");
    if (!f) return false;
    char line[512];
    bool found = false;
    const size_t n = strlen(key);
    while (!found && fgets(line, sizeof line, f)) {
        if (strncmp(line, key, n) || (line[n] != ' ' && line[n] != ':' && line[n] != '\t'))
            continue;
        unsigned long long v;
        found = sscanf(line + n + 1, " %llu", &v) == 1;
        if (found) *out = v > SIZE_MAX / unit ? SIZE_MAX : (size_t)(v * unit);
    }
    fclose(f);
    return found;
}

/* The number a one-line file holds; "max" (cgroup v2) and v1's "unlimited"
 * (2^63 rounded down to a page) read as SIZE_MAX. */
static bool read_value(const char *path, size_t *out) {
    FILE *f = fopen(path, "r");
    if (!f) return false;
    char text[64] = "";
    bool ok = fgets(text, sizeof text, f) != NULL;
    fclose(f);
    unsigned long long v;
    if (ok && !strncmp(text, "max", 3))
        *out = SIZE_MAX;
    else if (ok && sscanf(text, "%llu", &v) == 1)
        *out = v >= (1ULL << 62) || v > SIZE_MAX ? SIZE_MAX : (size_t)v;
    else
        ok = false;
    return ok;
}

/* The least room the memory limits of dir/path and every cgroup above it
 * leave: limit - (usage - inactive file pages), which the kernel reclaims
 * before it kills. */
static size_t cgroup_room(const char *dir, const char *path, const char *limit_file,
                          const char *usage_file, const char *inactive_key) {
    char p[4096], f[4200];
    snprintf(p, sizeof p, "%s%s", dir, path);
    size_t room = SIZE_MAX;
    for (;;) {
        size_t limit, usage, inactive = 0;
        snprintf(f, sizeof f, "%s/%s", p, limit_file);
        if (read_value(f, &limit) && limit != SIZE_MAX) {
            snprintf(f, sizeof f, "%s/%s", p, usage_file);
            if (!read_value(f, &usage)) usage = 0;
            snprintf(f, sizeof f, "%s/memory.stat", p);
            read_key(f, inactive_key, 1, &inactive);
            if (inactive > usage) inactive = usage;
            usage -= inactive;
            size_t left = limit > usage ? limit - usage : 0;
            if (left < room) room = left;
        }
        char *slash = strrchr(p, '/');
        if (!slash || (size_t)(slash - p) < strlen(dir)) break;
        *slash = 0;
    }
    return room;
}

bool cli_memory_available(size_t resident, size_t mapped, size_t *avail, const char **source) {
    *avail = SIZE_MAX;
    *source = "nothing limits it";
    const char *env = getenv("CNNKIT_MEMORY_LIMIT");
    if (env && *env) {
        *source = "CNNKIT_MEMORY_LIMIT";
        if (!strcmp(env, "none")) return true;
        char *end;
        errno = 0;
        unsigned long long v = strtoull(env, &end, 10);
        const char *units = "KMGT";
        const char *u = *end ? strchr(units, *end) : NULL;
        if (u && end[1] == 0) {
            for (const char *k = units; k <= u; k++)
                v = v > ULLONG_MAX / 1024 ? ULLONG_MAX : v * 1024;
            end++;
        }
        if (*end || errno || env[0] == '-' || !isdigit((unsigned char)env[0])) {
            *source = "CNNKIT_MEMORY_LIMIT: expected a number of bytes (K, M, G, T suffixes) or "
                      "none";
            return false;
        }
        *avail = v > SIZE_MAX ? SIZE_MAX : (size_t)v;
        return true;
    }
    size_t v;
    if (read_key("/proc/meminfo", "MemAvailable", 1024, &v) && add_sat(v, resident) < *avail) {
        *avail = add_sat(v, resident);
        *source = "MemAvailable in /proc/meminfo";
    }
    FILE *f = fopen("/proc/self/cgroup", "r");
    char line[4096];
    while (f && fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (!c2) continue;
        *c2 = 0;
        const char *ctrl = c1 + 1, *path = strcmp(c2 + 1, "/") ? c2 + 1 : "";
        size_t room = SIZE_MAX;
        if (!strcmp(line, "0") && !*ctrl) {
            struct stat st;
            const char *dir = stat("/sys/fs/cgroup/cgroup.controllers", &st) == 0
                                  ? "/sys/fs/cgroup"
                                  : "/sys/fs/cgroup/unified";
            room = cgroup_room(dir, path, "memory.max", "memory.current", "inactive_file");
        } else {
            /* cgroup v1: the hierarchy whose controllers include memory. */
            char *save, *tok;
            for (tok = strtok_r(c1 + 1, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
                if (!strcmp(tok, "memory"))
                    room = cgroup_room("/sys/fs/cgroup/memory", path, "memory.limit_in_bytes",
                                       "memory.usage_in_bytes", "total_inactive_file");
        }
        if (add_sat(room, resident) < *avail) {
            *avail = add_sat(room, resident);
            *source = "the cgroup's memory limit";
        }
    }
    if (f) fclose(f);
    struct rlimit rl;
    size_t pages;
    if (getrlimit(RLIMIT_AS, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
        read_value("/proc/self/statm", &pages)) {
        size_t used = pages * (size_t)sysconf(_SC_PAGESIZE);
        used = used > mapped ? used - mapped : 0;
        size_t left = rl.rlim_cur > used ? (size_t)(rl.rlim_cur - used) : 0;
        if (left < *avail) {
            *avail = left;
            *source = "RLIMIT_AS (ulimit -v)";
        }
    }
    return true;
}

void cli_format_bytes(char *buf, size_t cap, size_t bytes) {
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    double v = (double)bytes;
    int u = 0;
    while (v >= 1024.0 && u < 6) {
        v /= 1024.0;
        u++;
    }
    if (u == 0)
        snprintf(buf, cap, "%zu B", bytes);
    else
        snprintf(buf, cap, "%.1f %s", v, units[u]);
}

int cli_memory_check(const char *cmd, const char *what, int64_t batch, const char *batch_option,
                     bool loaded, cli_need_fn need, void *ctx) {
    cli_need n;
    const char *err = need(ctx, batch, &n);
    if (err) return cli_error(EXIT_FAIL, cmd, "%s", err);
    size_t avail;
    const char *source;
    /* The model's parameter and gradient buffers exist already; the weights are
     * written once loaded, the gradients not before a training step. */
    const size_t mapped = add_sat(n.model.weights, n.model.gradients);
    if (!cli_memory_available(loaded ? n.model.weights : 0, mapped, &avail, &source))
        return cli_error(EXIT_USAGE, cmd, "%s", source);
    if (n.total <= avail) return EXIT_OK;
    /* Memory grows with the batch: the largest that fits, by bisection. */
    int64_t lo = 0, hi = batch;
    while (hi - lo > 1) {
        const int64_t mid = lo + (hi - lo) / 2;
        cli_need m;
        if (!need(ctx, mid, &m) && m.total <= avail)
            lo = mid;
        else
            hi = mid;
    }
    char parts[512] = "", b[32];
    size_t o = 0;
    const struct {
        const char *name;
        size_t bytes;
    } part[] = {{"weights", n.model.weights},
                {"gradients", n.model.gradients},
                {"optimizer state", n.optimizer},
                {"activations", n.model.activations},
                {"activation gradients", n.model.activation_gradients},
                {"training state", n.model.training_state},
                {"workspace", n.model.workspace},
                {"data", n.data}};
    for (size_t i = 0; i < sizeof part / sizeof part[0]; i++) {
        if (!part[i].bytes || o >= sizeof parts) continue;
        cli_format_bytes(b, sizeof b, part[i].bytes);
        o += (size_t)snprintf(parts + o, sizeof parts - o, "%s%s %s", o ? ", " : "", part[i].name,
                              b);
    }
    char total[32], room[32], hint[96] = "";
    cli_format_bytes(total, sizeof total, n.total);
    cli_format_bytes(room, sizeof room, avail);
    if (lo > 0 && batch_option)
        snprintf(hint, sizeof hint, "; try %s %" PRId64, batch_option, lo);
    else if (lo > 0)
        snprintf(hint, sizeof hint, "; a batch of %" PRId64 " fits", lo);
    else if (batch > 1 && !need(ctx, 1, &n)) {
        cli_format_bytes(b, sizeof b, n.total);
        snprintf(hint, sizeof hint, "; even batch 1 needs %s", b);
    }
    return cli_error(EXIT_FAIL, cmd,
                     "%s at batch %" PRId64 " needs %s (%s) but %s is available (%s)%s", what,
                     batch, total, parts, room, source, hint);
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
