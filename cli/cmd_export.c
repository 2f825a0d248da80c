/* cmd_export.c - `cnnkit export`: the model as an ONNX file for ONNX Runtime and Netron. */
#define _GNU_SOURCE
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "cnnkit/onnx.h"

static int usage_export(void) {
    printf("usage: cnnkit export MODEL -o FILE.onnx [--weights W.safetensors] [--seed N]\n"
           "                     [--input N,C,H,W] [--dynamic-batch]\n\n"
           "Writes MODEL as an ONNX model (opset %d) for ONNX Runtime and Netron, atomically:\n"
           "one node per layer named by its module path, initializers named by the\n"
           "state_dict keys, and every edge's shape in value_info. Dropout is left out and\n"
           "BatchNorm uses its running statistics, as in `cnnkit run`. MODEL is a built-in\n"
           "name or a model file (.txt repr or .py code). See docs/onnx.md.\n\n"
           "  -o, --output FILE    where to write the .onnx file\n"
           "  -w, --weights W      a state_dict in safetensors, PyTorch's keys (net.0.weight...)\n"
           "      --seed N         without --weights: PyTorch's default init from seed N (0)\n"
           "  -i, --input SHAPE    input shape, e.g. 1,1,28,28 (default: the model's, when known)\n"
           "      --dynamic-batch  make dimension 0 of every tensor the symbolic N\n",
           CNN_ONNX_OPSET);
    return EXIT_OK;
}

/* "[2, 1, 28, 28]", or "[N, 1, 28, 28]" for a dynamic batch. */
static void format_shape(char *buf, size_t cap, const cnn_shape *s, int dynamic) {
    char text[128];
    cnn_shape_format(text, sizeof text, s);
    const char *rest = strpbrk(text, ",]");
    if (dynamic && rest)
        snprintf(buf, cap, "[N%s", rest);
    else
        snprintf(buf, cap, "%s", text);
}

int cmd_export(int argc, char **argv) {
    static const struct option opts[] = {{"output", required_argument, 0, 'o'},
                                         {"weights", required_argument, 0, 'w'},
                                         {"seed", required_argument, 0, 's'},
                                         {"input", required_argument, 0, 'i'},
                                         {"dynamic-batch", no_argument, 0, 'd'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    const char *out_path = NULL, *weights = NULL, *shape_text = NULL;
    unsigned long long seed = 0;
    int dynamic = 0, c;
    while ((c = getopt_long(argc, argv, "o:w:i:h", opts, NULL)) != -1) {
        switch (c) {
        case 'o': out_path = optarg; break;
        case 'w': weights = optarg; break;
        case 'i': shape_text = optarg; break;
        case 'd': dynamic = 1; break;
        case 's':
            if (!cli_parse_uint("export", "--seed", optarg, UINT64_MAX, &seed)) return EXIT_USAGE;
            break;
        case 'h': return usage_export();
        default: return EXIT_USAGE;
        }
    }
    if (argc - optind != 1)
        return cli_error(EXIT_USAGE, "export", "expected one MODEL (see --help)");
    if (!out_path) return cli_error(EXIT_USAGE, "export", "-o FILE.onnx is required");
    if (weights && seed)
        return cli_error(EXIT_USAGE, "export", "--seed has no effect with --weights");
    cnn_shape input;
    if (shape_text && !cli_parse_shape("export", shape_text, &input)) return EXIT_USAGE;

    cnn_model *m;
    cnn_shape default_input;
    int rc = cli_open_model("export", argv[optind], &m, &default_input);
    if (rc != EXIT_OK) return rc;
    if (!shape_text) {
        if (!cli_need_input("export", argv[optind], m, &default_input)) {
            cnn_model_free(m);
            return EXIT_FAIL;
        }
        input = default_input;
    }
    cnn_status s = weights ? cnn_model_load(m, weights) : cnn_model_init(m, CNN_INIT_DEFAULT, seed);
    char err[1024];
    if (s != CNN_OK) {
        rc = cli_error(EXIT_FAIL, "export", "%s", cnn_model_error(m));
    } else if (cnn_onnx_export(m, &input, dynamic, out_path, err, sizeof err) != CNN_OK) {
        rc = cli_error(EXIT_FAIL, "export", "%s", err);
    } else {
        char in[128], out[128];
        cnn_shape os = cnn_model_output_shape(m);
        format_shape(in, sizeof in, &input, dynamic);
        format_shape(out, sizeof out, &os, dynamic);
        fprintf(stderr, "%s: input %s -> output %s, %d layers, ONNX opset %d -> %s\n",
                cnn_model_class(m), in, out, cnn_model_num_nodes(m), CNN_ONNX_OPSET, out_path);
    }
    cnn_model_free(m);
    return rc;
}
