/* cmd_info.c - subcommands that describe a model: zoo, print, summary. */
#define _GNU_SOURCE
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli.h"

/* Sums over the leaf layers of a model already inferred. */
typedef struct totals {
    unsigned long long params, macs, out_bytes, buffer_bytes, input_bytes;
} totals;

static totals model_totals(const cnn_model *m) {
    totals t = {0};
    for (int i = 0; i < cnn_model_num_nodes(m); i++) {
        cnn_node_stats st = cnn_model_node_stats(m, i);
        t.params += st.params;
        t.macs += st.macs;
        t.out_bytes += st.out_bytes;
    }
    for (int i = 0; i < cnn_model_num_params(m); i++) {
        cnn_param_info p = cnn_model_param(m, i);
        if (!p.trainable) t.buffer_bytes += p.numel * (p.i64 ? 8 : 4);
    }
    cnn_shape in = cnn_model_input_shape(m);
    size_t n = 0;
    cnn_shape_numel(&in, &n);
    t.input_bytes = n * sizeof(float);
    return t;
}

/* ---- zoo ---- */

int cmd_zoo(int argc, char **argv) {
    static const struct option opts[] = {{"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == 'h') {
            printf("usage: cnnkit zoo\n\nLists the built-in models: name, class, default input, "
                   "parameters and multiply-adds\n(torchinfo's count) at the default input.\n");
            return EXIT_OK;
        }
        return EXIT_USAGE;
    }
    if (optind < argc)
        return cli_error(EXIT_USAGE, "zoo", "unexpected argument '%s'", argv[optind]);
    printf("%-8s %-8s %-18s %12s %14s  %s\n", "name", "class", "input", "params", "MACs",
           "description");
    for (int i = 0; i < cnn_zoo_count(); i++) {
        const cnn_zoo_entry *e = cnn_zoo_get(i);
        cnn_model *m;
        if (cnn_zoo_build(e->name, &m) != CNN_OK)
            return cli_error(EXIT_FAIL, "zoo", "%s: out of memory", e->name);
        if (cnn_model_infer(m, &e->input) != CNN_OK) {
            int rc = cli_error(EXIT_FAIL, "zoo", "%s", cnn_model_error(m));
            cnn_model_free(m);
            return rc;
        }
        totals t = model_totals(m);
        char shape[64], params[32], macs[32];
        cnn_shape_format(shape, sizeof shape, &e->input);
        cli_group_digits(params, sizeof params, t.params);
        cli_group_digits(macs, sizeof macs, t.macs);
        printf("%-8s %-8s %-18s %12s %14s  %s\n", e->name, cnn_model_class(m), shape, params, macs,
               e->description);
        cnn_model_free(m);
    }
    return EXIT_OK;
}

/* ---- print ---- */

int cmd_print(int argc, char **argv) {
    static const struct option opts[] = {{"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == 'h') {
            printf("usage: cnnkit print MODEL\n\nPrints MODEL byte for byte as PyTorch's "
                   "print(model) does.\nMODEL is a built-in name or a model file (.txt repr or "
                   ".py code).\n");
            return EXIT_OK;
        }
        return EXIT_USAGE;
    }
    if (argc - optind != 1)
        return cli_error(EXIT_USAGE, "print", "expected one MODEL (see --help)");
    cnn_model *m;
    cnn_shape input;
    int rc = cli_open_model("print", argv[optind], &m, &input);
    if (rc != EXIT_OK) return rc;
    int n = cnn_model_repr(m, NULL, 0);
    char *buf = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (!buf) {
        cnn_model_free(m);
        return cli_error(EXIT_FAIL, "print", "out of memory");
    }
    cnn_model_repr(m, buf, (size_t)n + 1);
    fputs(buf, stdout);
    free(buf);
    cnn_model_free(m);
    return EXIT_OK;
}

/* ---- summary ---- */

/* Display width of UTF-8 text: one column per code point. */
static int text_width(const char *s) {
    int w = 0;
    for (; *s; s++)
        w += ((unsigned char)*s & 0xC0) != 0x80;
    return w;
}

static void print_padded(const char *s, int width) {
    fputs(s, stdout);
    for (int w = text_width(s); w < width; w++)
        putchar(' ');
}

static void print_rule(char ch, int width) {
    for (int i = 0; i < width; i++)
        putchar(ch);
    putchar('\n');
}

/* The output shape of a container: its last leaf's (Sequential semantics). */
static int last_leaf(const cnn_model *m, int mod) {
    int leaf = -1;
    for (int i = mod; i < cnn_model_num_modules(m); i++) {
        cnn_module_info mi = cnn_model_module(m, i);
        int a = i;
        while (a > mod)
            a = cnn_model_module(m, a).parent;
        if (a != mod) break;
        if (mi.node >= 0) leaf = mi.node;
    }
    return leaf;
}

/* What the model holds at the summary's input, inferring, and (train) training
 * with the optimizer's state on top. */
typedef struct summary_memory {
    int64_t batch;
    cnn_memory infer, train;
    bool with_train;
    size_t optim_bytes; /* optimizer state */
    char optim[32];     /* "sgd", "sgd, momentum", "adam" */
} summary_memory;

static int summary_plan(const char *cmd, cnn_model *m, const cnn_shape *input, bool train,
                        const cnn_optim_config *oc, summary_memory *mem) {
    *mem = (summary_memory){.batch = input->dim[0], .with_train = train};
    if (cnn_model_memory(m, input, false, &mem->infer) != CNN_OK ||
        (train && cnn_model_memory(m, input, true, &mem->train) != CNN_OK))
        return cli_error(EXIT_FAIL, cmd, "%s", cnn_model_error(m));
    size_t floats;
    cnn_model_param_buffer(m, &floats);
    mem->optim_bytes = cli_optim_state_bytes(oc, floats);
    snprintf(mem->optim, sizeof mem->optim, "%s%s", cnn_optim_name(oc->kind),
             oc->kind != CNN_OPTIM_SGD ? ""
             : oc->nesterov            ? ", nesterov"
             : oc->momentum != 0.0     ? ", momentum"
                                       : "");
    return EXIT_OK;
}

enum { COL_NAME = 40, COL_SHAPE = 22, COL_PARAMS = 14, COL_MACS = 16 };

/* One row of the memory section: MiB per column, "--" where a part does not apply. */
static void memory_row(const char *label, const size_t *v, int cols) {
    print_padded(label, COL_NAME + COL_SHAPE);
    for (int c = 0; c < cols; c++) {
        char cell[32] = "--";
        if (v[c] != SIZE_MAX) snprintf(cell, sizeof cell, "%.2f", (double)v[c] / (1024.0 * 1024.0));
        printf("%*s", c ? COL_MACS : COL_PARAMS, cell);
    }
    putchar('\n');
}

/* Bytes cnnkit allocates, planned as the passes plan them (cnn_model_memory). */
static void summary_memory_section(const summary_memory *mem) {
    const int width = COL_NAME + COL_SHAPE + COL_PARAMS + COL_MACS;
    const cnn_memory *i = &mem->infer, *t = &mem->train;
    const bool tr = mem->with_train;
    const int cols = tr ? 2 : 1;
    const size_t na = SIZE_MAX;
    char head[64], optim[64];
    snprintf(head, sizeof head, "Memory at batch %lld (MiB)", (long long)mem->batch);
    print_padded(head, COL_NAME + COL_SHAPE);
    printf("%*s", COL_PARAMS, "Inference");
    if (tr) printf("%*s", COL_MACS, "Training");
    putchar('\n');
    print_rule('-', width);
    memory_row("Weights and buffers", (size_t[]){i->weights, t->weights}, cols);
    memory_row("Weight gradients (allocated with the weights)",
               (size_t[]){i->gradients, t->gradients}, cols);
    if (tr) {
        snprintf(optim, sizeof optim, "Optimizer state (%s)", mem->optim);
        memory_row(optim, (size_t[]){na, mem->optim_bytes}, cols);
    }
    memory_row("Activations", (size_t[]){i->activations, t->activations}, cols);
    if (tr) {
        memory_row("Activation gradients", (size_t[]){na, t->activation_gradients}, cols);
        memory_row("Training state (masks, argmax, patches, batch statistics)",
                   (size_t[]){na, t->training_state}, cols);
    }
    memory_row("Workspace", (size_t[]){i->workspace, t->workspace}, cols);
    memory_row("Total", (size_t[]){i->total, t->total + mem->optim_bytes}, cols);
    print_rule('=', width);
}

static void summary_table(const cnn_model *m, bool explain, const summary_memory *mem) {
    const int width = COL_NAME + COL_SHAPE + COL_PARAMS + COL_MACS;
    char shape[128], buf[64];
    cnn_shape in = cnn_model_input_shape(m);
    cnn_shape_format(shape, sizeof shape, &in);
    print_rule('=', width);
    print_padded("Layer (type)", COL_NAME);
    print_padded("Output Shape", COL_SHAPE);
    printf("%*s%*s\n", COL_PARAMS, "Param #", COL_MACS, "Mult-Adds");
    print_rule('=', width);
    for (int i = 0; i < cnn_model_num_modules(m); i++) {
        cnn_module_info mi = cnn_model_module(m, i);
        char name[256] = "";
        size_t o = 0;
        for (int d = 1; d < mi.depth; d++)
            o += (size_t)snprintf(name + o, sizeof name - o, "│    ");
        if (mi.depth == 1) o += (size_t)snprintf(name + o, sizeof name - o, "├─");
        if (mi.depth > 1) o += (size_t)snprintf(name + o, sizeof name - o, "└─");
        if (mi.depth == 0)
            snprintf(name + o, sizeof name - o, "%s", mi.type);
        else
            snprintf(name + o, sizeof name - o, "%s (%s)", mi.path, mi.type);
        int leaf = mi.node >= 0 ? mi.node : last_leaf(m, i);
        if (leaf >= 0) {
            cnn_node_stats st = cnn_model_node_stats(m, leaf);
            cnn_shape_format(shape, sizeof shape, &st.out_shape);
        } else {
            snprintf(shape, sizeof shape, "--");
        }
        print_padded(name, COL_NAME);
        print_padded(shape, COL_SHAPE);
        if (mi.node >= 0) {
            cnn_node_stats st = cnn_model_node_stats(m, mi.node);
            char macs[32];
            if (st.params) {
                cli_group_digits(buf, sizeof buf, st.params);
                cli_group_digits(macs, sizeof macs, st.macs);
            } else {
                snprintf(buf, sizeof buf, "--");
                snprintf(macs, sizeof macs, "--");
            }
            printf("%*s%*s\n", COL_PARAMS, buf, COL_MACS, macs);
            if (explain) {
                char text[1024];
                cnn_model_node_explain(m, mi.node, text, sizeof text);
                /* Under the layer's name, with the tree's vertical lines kept. */
                for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
                    for (int d = 1; d < mi.depth; d++)
                        fputs("│    ", stdout);
                    printf("%s%s\n", mi.depth ? "      " : "", line);
                }
            }
        } else {
            printf("%*s%*s\n", COL_PARAMS, "--", COL_MACS, "--");
        }
    }
    totals t = model_totals(m);
    print_rule('=', width);
    cli_group_digits(buf, sizeof buf, t.params);
    printf("Total params: %s\nTrainable params: %s\nNon-trainable params: 0\n", buf, buf);
    printf("Total mult-adds (M): %.2f\n", (double)t.macs / 1e6);
    print_rule('=', width);
    /* torchinfo counts each output twice for the backward pass's gradients. */
    double in_mb = (double)t.input_bytes / 1e6, act_mb = 2.0 * (double)t.out_bytes / 1e6;
    double par_mb = (double)(t.params * 4 + t.buffer_bytes) / 1e6;
    printf("Input size (MB): %.2f\nForward/backward pass size (MB): %.2f\n", in_mb, act_mb);
    printf("Params size (MB): %.2f\nEstimated Total Size (MB): %.2f\n", par_mb,
           in_mb + act_mb + par_mb);
    print_rule('=', width);
    summary_memory_section(mem);
}

/* The notes' loop: for layer in net: print(layer); x = layer(x); print(x.shape). */
static void summary_trace(const cnn_model *m) {
    for (int i = 0; i < cnn_model_num_nodes(m); i++) {
        char repr[512], shape[128];
        cnn_layer_repr(repr, sizeof repr, cnn_model_node_layer(m, i));
        cnn_node_stats st = cnn_model_node_stats(m, i);
        cnn_shape_format(shape, sizeof shape, &st.out_shape);
        printf("%s\ntorch.Size(%s)\n", repr, shape);
    }
}

static cJSON *shape_json(const cnn_shape *s) {
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; a && i < s->ndim; i++)
        cJSON_AddItemToArray(a, cJSON_CreateNumber((double)s->dim[i]));
    return a;
}

static cJSON *memory_json(const cnn_memory *r, const summary_memory *mem, bool train) {
    cJSON *o = cJSON_CreateObject();
    if (train) cJSON_AddStringToObject(o, "optimizer", mem->optim);
    cJSON_AddNumberToObject(o, "weights", (double)r->weights);
    cJSON_AddNumberToObject(o, "gradients", (double)r->gradients);
    if (train) cJSON_AddNumberToObject(o, "optimizer_state", (double)mem->optim_bytes);
    cJSON_AddNumberToObject(o, "activations", (double)r->activations);
    cJSON_AddNumberToObject(o, "activation_gradients", (double)r->activation_gradients);
    cJSON_AddNumberToObject(o, "training_state", (double)r->training_state);
    cJSON_AddNumberToObject(o, "workspace", (double)r->workspace);
    cJSON_AddNumberToObject(o, "total", (double)(r->total + (train ? mem->optim_bytes : 0)));
    return o;
}

static int summary_json(const cnn_model *m, const char *name, const summary_memory *mem) {
    totals t = model_totals(m);
    cnn_shape in = cnn_model_input_shape(m), out = cnn_model_output_shape(m);
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "model", name);
    cJSON_AddItemToObject(root, "input", shape_json(&in));
    cJSON_AddItemToObject(root, "output_shape", shape_json(&out));
    cJSON_AddNumberToObject(root, "total_params", (double)t.params);
    cJSON_AddNumberToObject(root, "total_macs", (double)t.macs);
    cJSON *layers = cJSON_AddArrayToObject(root, "layers");
    for (int i = 0; layers && i < cnn_model_num_nodes(m); i++) {
        cnn_node_stats st = cnn_model_node_stats(m, i);
        cJSON *l = cJSON_CreateObject();
        cJSON_AddStringToObject(l, "name", cnn_model_node_path(m, i));
        cJSON_AddStringToObject(l, "type", cnn_op_name(cnn_model_node_layer(m, i)->op));
        cJSON_AddItemToObject(l, "output_shape", shape_json(&st.out_shape));
        cJSON_AddNumberToObject(l, "params", (double)st.params);
        cJSON_AddNumberToObject(l, "macs", (double)st.macs);
        cJSON_AddItemToArray(layers, l);
    }
    cJSON *memory = cJSON_AddObjectToObject(root, "memory");
    cJSON_AddNumberToObject(memory, "batch", (double)mem->batch);
    cJSON_AddItemToObject(memory, "inference", memory_json(&mem->infer, mem, false));
    if (mem->with_train)
        cJSON_AddItemToObject(memory, "training", memory_json(&mem->train, mem, true));
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    if (!text) return cli_error(EXIT_FAIL, "summary", "out of memory");
    puts(text);
    cJSON_free(text);
    return EXIT_OK;
}

int cmd_summary(int argc, char **argv) {
    enum { OPT_BATCH = 256, OPT_TRAIN, OPT_OPTIM, OPT_MOMENTUM, OPT_NESTEROV, OPT_THREADS };
    static const struct option opts[] = {{"input", required_argument, 0, 'i'},
                                         {"batch", required_argument, 0, OPT_BATCH},
                                         {"train", no_argument, 0, OPT_TRAIN},
                                         {"optim", required_argument, 0, OPT_OPTIM},
                                         {"momentum", required_argument, 0, OPT_MOMENTUM},
                                         {"nesterov", no_argument, 0, OPT_NESTEROV},
                                         {"threads", required_argument, 0, OPT_THREADS},
                                         {"trace", no_argument, 0, 't'},
                                         {"explain", no_argument, 0, 'e'},
                                         {"json", no_argument, 0, 'j'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    const char *input_text = NULL;
    bool trace = false, explain = false, json = false, train = false;
    unsigned long long batch = 0, threads = 0;
    cnn_optim_config oc = cnn_optim_defaults(CNN_OPTIM_SGD);
    int c;
    while ((c = getopt_long(argc, argv, "i:h", opts, NULL)) != -1) {
        switch (c) {
        case 'i': input_text = optarg; break;
        case OPT_BATCH:
            if (!cli_parse_uint("summary", "--batch", optarg, 1 << 20, &batch) || !batch)
                return batch ? EXIT_USAGE
                             : cli_error(EXIT_USAGE, "summary", "--batch must be positive");
            break;
        case OPT_TRAIN: train = true; break;
        case OPT_OPTIM: {
            cnn_optim_kind k;
            if (!cli_parse_optim("summary", optarg, &k)) return EXIT_USAGE;
            oc.kind = k;
            train = true;
            break;
        }
        case OPT_MOMENTUM: {
            char *end;
            oc.momentum = strtod(optarg, &end);
            if (!*optarg || *end || !(oc.momentum >= 0.0))
                return cli_error(EXIT_USAGE, "summary",
                                 "--momentum '%s': expected a non-negative number", optarg);
            train = true;
            break;
        }
        case OPT_NESTEROV:
            oc.nesterov = true;
            train = true;
            break;
        case OPT_THREADS:
            if (!cli_parse_uint("summary", "--threads", optarg, 1024, &threads)) return EXIT_USAGE;
            break;
        case 't': trace = true; break;
        case 'e': explain = true; break;
        case 'j': json = true; break;
        case 'h':
            printf(
                "usage: cnnkit summary MODEL [--input N,C,H,W] [--batch N] [--threads N]\n"
                "                      [--train [--optim NAME]] [--trace | --explain | --json]\n\n"
                "Shape inference for every layer, with parameters and multiply-adds counted as\n"
                "torchinfo 1.8 counts them, in a table modelled on torchinfo's; then the memory\n"
                "cnnkit allocates to run the model at that batch: weights, gradients, activations\n"
                "and workspace, planned before anything is allocated. `train`, `run`, `eval`,\n"
                "`predict` and `bench` refuse to start when that does not fit in memory.\n\n"
                "MODEL is a built-in name or a model file (.txt repr or .py code).\n\n"
                "  -i, --input N,C,H,W  input shape (default: the model's, e.g. 1,1,28,28; for\n"
                "                       a file, the first of 28, 32, ... 256 square that fits)\n"
                "      --batch N        the input's N (default: the input's)\n"
                "      --train          memory for training too: weight gradients, optimizer\n"
                "                       state, the activations kept for the backward pass, their\n"
                "                       gradients and what else it keeps (masks, argmax...)\n"
                "      --optim NAME     sgd (default), adam or adamw: its state (implies --train)\n"
                "      --momentum X     SGD's momentum (a buffer when not 0; implies --train)\n"
                "      --nesterov       SGD with nesterov momentum (implies --train)\n"
                "      --threads N      the threads to plan for (default: all cores): a\n"
                "                       convolution's workspace grows with them\n"
                "      --trace          print each layer's repr, then torch.Size([...]) of its\n"
                "                       output, as a PyTorch loop over the layers does\n"
                "      --explain        show the arithmetic behind every layer's H and W\n"
                "      --json           one JSON object: model, input, output_shape,\n"
                "                       total_params, total_macs, a list of layers and memory\n"
                "                       (bytes: inference, and training with --train)\n");
            return EXIT_OK;
        default: return EXIT_USAGE;
        }
    }
    if (argc - optind != 1)
        return cli_error(EXIT_USAGE, "summary", "expected one MODEL (see --help)");
    if (trace + json > 1)
        return cli_error(EXIT_USAGE, "summary", "--trace and --json exclude each other");
    if (oc.nesterov && oc.momentum <= 0.0)
        return cli_error(EXIT_USAGE, "summary", "--nesterov needs a --momentum");
    cnn_set_threads((int)threads);
    cnn_model *m;
    cnn_shape input;
    int rc = cli_open_model("summary", argv[optind], &m, &input);
    if (rc != EXIT_OK) return rc;
    if (input_text && !cli_parse_shape("summary", input_text, &input)) {
        cnn_model_free(m);
        return EXIT_USAGE;
    }
    if (!input_text && !cli_need_input("summary", argv[optind], m, &input)) {
        cnn_model_free(m);
        return EXIT_FAIL;
    }
    if (batch) input.dim[0] = (int64_t)batch;
    if (cnn_model_infer(m, &input) != CNN_OK) {
        rc = cli_error(EXIT_FAIL, "summary", "%s", cnn_model_error(m));
        cnn_model_free(m);
        return rc;
    }
    summary_memory mem;
    if (trace) {
        summary_trace(m);
    } else {
        rc = summary_plan("summary", m, &input, train, &oc, &mem);
        if (rc == EXIT_OK && json)
            rc = summary_json(m, argv[optind], &mem);
        else if (rc == EXIT_OK)
            summary_table(m, explain, &mem);
    }
    cnn_model_free(m);
    return rc;
}
