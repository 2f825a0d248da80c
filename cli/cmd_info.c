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

enum { COL_NAME = 40, COL_SHAPE = 22, COL_PARAMS = 14, COL_MACS = 16 };

static void summary_table(const cnn_model *m, bool explain) {
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

static int summary_json(const cnn_model *m, const char *name) {
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
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    if (!text) return cli_error(EXIT_FAIL, "summary", "out of memory");
    puts(text);
    cJSON_free(text);
    return EXIT_OK;
}

int cmd_summary(int argc, char **argv) {
    static const struct option opts[] = {
        {"input", required_argument, 0, 'i'}, {"trace", no_argument, 0, 't'},
        {"explain", no_argument, 0, 'e'},     {"json", no_argument, 0, 'j'},
        {"help", no_argument, 0, 'h'},        {0, 0, 0, 0}};
    const char *input_text = NULL;
    bool trace = false, explain = false, json = false;
    int c;
    while ((c = getopt_long(argc, argv, "i:h", opts, NULL)) != -1) {
        switch (c) {
        case 'i': input_text = optarg; break;
        case 't': trace = true; break;
        case 'e': explain = true; break;
        case 'j': json = true; break;
        case 'h':
            printf(
                "usage: cnnkit summary MODEL [--input N,C,H,W] [--trace | --explain | --json]\n\n"
                "Shape inference for every layer, with parameters and multiply-adds counted as\n"
                "torchinfo 1.8 counts them, in a table modelled on torchinfo's.\n\n"
                "MODEL is a built-in name or a model file (.txt repr or .py code).\n\n"
                "  -i, --input N,C,H,W  input shape (default: the model's, e.g. 1,1,28,28; for\n"
                "                       a file, the first of 28, 32, ... 256 square that fits)\n"
                "      --trace          print each layer's repr, then torch.Size([...]) of its\n"
                "                       output, as a PyTorch loop over the layers does\n"
                "      --explain        show the arithmetic behind every layer's H and W\n"
                "      --json           one JSON object: model, input, output_shape,\n"
                "                       total_params, total_macs and a list of layers\n");
            return EXIT_OK;
        default: return EXIT_USAGE;
        }
    }
    if (argc - optind != 1)
        return cli_error(EXIT_USAGE, "summary", "expected one MODEL (see --help)");
    if (trace + json > 1)
        return cli_error(EXIT_USAGE, "summary", "--trace and --json exclude each other");
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
    if (cnn_model_infer(m, &input) != CNN_OK) {
        rc = cli_error(EXIT_FAIL, "summary", "%s", cnn_model_error(m));
        cnn_model_free(m);
        return rc;
    }
    if (trace)
        summary_trace(m);
    else if (json)
        rc = summary_json(m, argv[optind]);
    else
        summary_table(m, explain);
    cnn_model_free(m);
    return rc;
}
