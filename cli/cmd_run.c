/* cmd_run.c - `cnnkit run`: the inference-mode forward pass on a safetensors tensor. */
#define _GNU_SOURCE
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

static int usage_run(void) {
    printf("usage: cnnkit run MODEL --input X.safetensors -o Y.safetensors\n"
           "                  [--weights W.safetensors] [--seed N] [--threads N]\n\n"
           "Runs MODEL in inference mode (Dropout off, BatchNorm on its running statistics)\n"
           "on the tensor named 'input' in X and writes the result as the tensor named\n"
           "'output' in Y, atomically. MODEL is a built-in name or a model file (.txt repr\n"
           "or .py code).\n\n"
           "  -i, --input X        safetensors file with a float tensor 'input' (e.g. [N,C,H,W])\n"
           "  -o, --output Y       where to write 'output'\n"
           "  -w, --weights W      a state_dict in safetensors, PyTorch's keys (net.0.weight...)\n"
           "      --seed N         without --weights: PyTorch's default init from seed N (0)\n"
           "      --threads N      threads for OpenMP and OpenBLAS (default: all cores)\n");
    return EXIT_OK;
}

/* What a forward pass holds at a batch: the model's plan, the input and the output. */
typedef struct run_plan {
    cnn_model *m;
    cnn_shape in;
    bool batched;         /* in.dim[0] is the batch (else the plan is for in alone) */
    size_t out_per_image; /* output floats per image */
} run_plan;

static const char *run_need(void *ctx, int64_t batch, cli_need *need) {
    const run_plan *p = ctx;
    cnn_shape in = p->in;
    if (p->batched) in.dim[0] = batch;
    *need = (cli_need){0};
    if (cnn_model_memory(p->m, &in, false, &need->model) != CNN_OK) return cnn_model_error(p->m);
    size_t x;
    cnn_shape_numel(&in, &x);
    need->data = (x + (p->batched ? (size_t)batch : 1) * p->out_per_image) * sizeof(float);
    cli_need_sum(need);
    return NULL;
}

int cmd_run(int argc, char **argv) {
    static const struct option opts[] = {{"input", required_argument, 0, 'i'},
                                         {"output", required_argument, 0, 'o'},
                                         {"weights", required_argument, 0, 'w'},
                                         {"seed", required_argument, 0, 's'},
                                         {"threads", required_argument, 0, 't'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    const char *in_path = NULL, *out_path = NULL, *weights = NULL;
    unsigned long long seed = 0, threads = 0;
    int c;
    while ((c = getopt_long(argc, argv, "i:o:w:h", opts, NULL)) != -1) {
        switch (c) {
        case 'i': in_path = optarg; break;
        case 'o': out_path = optarg; break;
        case 'w': weights = optarg; break;
        case 's':
            if (!cli_parse_uint("run", "--seed", optarg, UINT64_MAX, &seed)) return EXIT_USAGE;
            break;
        case 't':
            if (!cli_parse_uint("run", "--threads", optarg, 1024, &threads)) return EXIT_USAGE;
            break;
        case 'h': return usage_run();
        default: return EXIT_USAGE;
        }
    }
    if (argc - optind != 1) return cli_error(EXIT_USAGE, "run", "expected one MODEL (see --help)");
    if (!in_path || !out_path) return cli_error(EXIT_USAGE, "run", "--input and -o are required");
    if (weights && seed) return cli_error(EXIT_USAGE, "run", "--seed has no effect with --weights");
    cnn_set_threads((int)threads);

    cnn_model *m;
    cnn_shape default_input;
    int rc = cli_open_model("run", argv[optind], &m, &default_input);
    if (rc != EXIT_OK) return rc;
    cnn_st_file *in = NULL;
    cnn_tensor x = {0}, y = {0};
    char err[1024];
    cnn_status s = weights ? cnn_model_load(m, weights) : cnn_model_init(m, CNN_INIT_DEFAULT, seed);
    if (s != CNN_OK) {
        rc = cli_error(EXIT_FAIL, "run", "%s", cnn_model_error(m));
        goto done;
    }
    if (cnn_st_read(in_path, &in, err, sizeof err) != CNN_OK) {
        rc = cli_error(EXIT_FAIL, "run", "%s", err);
        goto done;
    }
    const cnn_st_entry *e = cnn_st_find(in, "input");
    if (!e || !e->f32) {
        rc = cli_error(EXIT_FAIL, "run", "%s: %s", in_path,
                       e ? "tensor 'input' is not a float tensor" : "no tensor named 'input'");
        goto done;
    }
    /* The plan before any activation is allocated; the weights are in memory already. */
    if (cnn_model_infer(m, &e->shape) != CNN_OK) {
        rc = cli_error(EXIT_FAIL, "run", "%s", cnn_model_error(m));
        goto done;
    }
    size_t out_numel;
    cnn_shape out_shape = cnn_model_output_shape(m);
    cnn_shape_numel(&out_shape, &out_numel);
    const bool batched = e->shape.ndim >= 2 && e->shape.dim[0] >= 1;
    run_plan plan = {m, e->shape, batched,
                     batched ? out_numel / (size_t)e->shape.dim[0] : out_numel};
    rc = cli_memory_check("run", argv[optind], batched ? e->shape.dim[0] : 1, NULL, true, run_need,
                          &plan);
    if (rc != EXIT_OK) goto done;
    if (cnn_tensor_alloc(&x, &e->shape) != CNN_OK) {
        rc = cli_error(EXIT_FAIL, "run", "%s: out of memory", in_path);
        goto done;
    }
    memcpy(x.data, e->f32, e->numel * sizeof(float));
    if (cnn_model_forward(m, &x, &y) != CNN_OK) {
        rc = cli_error(EXIT_FAIL, "run", "%s", cnn_model_error(m));
        goto done;
    }
    cnn_st_file *out = cnn_st_new();
    s = out ? cnn_st_add_f32(out, "output", &y.shape, y.data) : CNN_STATUS_NO_MEMORY;
    if (s == CNN_OK)
        s = cnn_st_write(out, out_path, err, sizeof err);
    else
        snprintf(err, sizeof err, "%s: %s", out_path, cnn_status_str(s));
    cnn_st_free(out);
    if (s != CNN_OK) {
        rc = cli_error(EXIT_FAIL, "run", "%s", err);
        goto done;
    }
    char shape[128];
    cnn_shape_format(shape, sizeof shape, &y.shape);
    fprintf(stderr, "output %s -> %s\n", shape, out_path);
done:
    cnn_tensor_free(&x);
    cnn_tensor_free(&y);
    cnn_st_free(in);
    cnn_model_free(m);
    return rc;
}
