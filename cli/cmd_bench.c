/* cmd_bench.c - `cnnkit bench`: images per second for inference or a training
 * step, after warm-up, and with --profile where the time goes, layer by layer
 * (forward and backward time, share, GFLOP/s), as `caffe time` shows it. */
#define _GNU_SOURCE
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <omp.h>

#include "cli.h"

static int usage_bench(void) {
    printf("usage: cnnkit bench MODEL [--batch N] [--train] [--threads N] [--profile]\n"
           "                  [--input N,C,H,W] [--seconds S] [--json]\n\n"
           "Measures images per second for MODEL on random data: the inference-mode\n"
           "forward pass, or with --train a whole training step (forward, cross-entropy,\n"
           "backward, SGD update). Warm-up iterations run first; then iterations repeat\n"
           "for at least --seconds (default 3) and 3 times.\n\n"
           "  -b, --batch N     images per iteration (default 1)\n"
           "      --train       time training steps instead of inference\n"
           "      --threads N   OpenMP and OpenBLAS threads (default: all cores)\n"
           "      --profile     a per-layer table: forward and backward time, share, GFLOP/s,\n"
           "                    and how each convolution runs (im2col, direct, Winograd,\n"
           "                    16 images a vector)\n"
           "  -i, --input SHAPE C,H,W or N,C,H,W (default: the model's input)\n"
           "      --seconds S   how long to measure (default 3)\n"
           "      --json        one JSON object instead of text\n\n"
           "The line names the kernels' instruction set (avx512, avx2 or generic: the best\n"
           "this CPU has); CNNKIT_SIMD=generic|avx2|avx512 in the environment caps it.\n");
    return EXIT_OK;
}

/* Floating-point operations of a node's inference forward over the whole batch:
 * 2 x torchinfo's multiply-adds (counted for the inferred batch), 0 for layers
 * without weights. */
static double node_flops(const cnn_model *m, int node) {
    return 2.0 * (double)cnn_model_node_stats(m, node).macs;
}

/* What an iteration holds at a batch: the model's plan, the optimizer's state,
 * the input, the labels and the loss gradient. */
typedef struct bench_plan {
    cnn_model *m;
    cnn_shape in;
    bool train;
    const cnn_optim_config *oc;
    size_t out_per_image; /* output floats per image */
} bench_plan;

static const char *bench_need(void *ctx, int64_t batch, cli_need *need) {
    const bench_plan *p = ctx;
    cnn_shape in = p->in;
    in.dim[0] = batch;
    *need = (cli_need){0};
    if (cnn_model_memory(p->m, &in, p->train, &need->model) != CNN_OK) return cnn_model_error(p->m);
    size_t x, floats;
    cnn_shape_numel(&in, &x);
    cnn_model_param_buffer(p->m, &floats);
    need->optimizer = p->train ? cli_optim_state_bytes(p->oc, floats) : 0;
    need->data = (x + (size_t)batch * (1 + p->out_per_image)) * sizeof(float);
    cli_need_sum(need);
    return NULL;
}

int cmd_bench(int argc, char **argv) {
    static const struct option opts[] = {{"batch", required_argument, 0, 'b'},
                                         {"train", no_argument, 0, 'T'},
                                         {"threads", required_argument, 0, 't'},
                                         {"profile", no_argument, 0, 'p'},
                                         {"input", required_argument, 0, 'i'},
                                         {"seconds", required_argument, 0, 's'},
                                         {"json", no_argument, 0, 'j'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    unsigned long long batch = 1, threads = 0;
    bool train = false, profile = false, json = false;
    const char *input_text = NULL;
    double seconds = 3.0;
    int c;
    while ((c = getopt_long(argc, argv, "b:i:h", opts, NULL)) != -1) {
        switch (c) {
        case 'b':
            if (!cli_parse_uint("bench", "--batch", optarg, 1 << 16, &batch) || !batch)
                return batch ? EXIT_USAGE
                             : cli_error(EXIT_USAGE, "bench", "--batch must be positive");
            break;
        case 'T': train = true; break;
        case 't':
            if (!cli_parse_uint("bench", "--threads", optarg, 1024, &threads)) return EXIT_USAGE;
            break;
        case 'p': profile = true; break;
        case 'i': input_text = optarg; break;
        case 's': {
            char *end;
            seconds = strtod(optarg, &end);
            if (*end || !(seconds > 0 && seconds < 3600))
                return cli_error(EXIT_USAGE, "bench", "--seconds '%s': expected 0 to 3600", optarg);
            break;
        }
        case 'j': json = true; break;
        case 'h': return usage_bench();
        default: return EXIT_USAGE;
        }
    }
    if (argc - optind != 1)
        return cli_error(EXIT_USAGE, "bench", "expected one MODEL (see --help)");
    cnn_set_threads((int)threads);
    cnn_model *m;
    cnn_shape in;
    int rc = cli_open_model("bench", argv[optind], &m, &in);
    if (rc != EXIT_OK) return rc;
    const cnn_shape model_in = in;
    if (input_text && !cli_parse_shape("bench", input_text, &in)) {
        cnn_model_free(m);
        return EXIT_USAGE;
    }
    /* C,H,W (one dimension fewer than the model's input, or three when the
     * model has none): the batch goes in front. */
    const int given = input_text ? in.ndim : 0;
    if (given > 0 && given < CNN_MAX_DIMS &&
        (model_in.ndim > 0 ? given == model_in.ndim - 1 : given == 3)) {
        for (int i = given; i > 0; i--)
            in.dim[i] = in.dim[i - 1];
        in.ndim = given + 1;
    }
    in.dim[0] = (int64_t)batch;
    cnn_tensor x = {0};
    int32_t *labels = NULL;
    float *dy = NULL;
    cnn_optim *opt = NULL;
    char err[512];
    if (cnn_model_infer(m, &in) != CNN_OK) {
        rc = cli_error(EXIT_FAIL, "bench", "%s", cnn_model_error(m));
        goto done;
    }
    cnn_shape out = cnn_model_output_shape(m);
    const int64_t classes = out.dim[out.ndim - 1];
    size_t out_numel;
    cnn_shape_numel(&out, &out_numel);
    cnn_optim_config oc = cnn_optim_defaults(CNN_OPTIM_SGD);
    oc.lr = 1e-4;
    bench_plan plan = {m, in, train, &oc, out_numel / (size_t)batch};
    rc = cli_memory_check("bench", argv[optind], (int64_t)batch, "--batch", false, bench_need,
                          &plan);
    if (rc != EXIT_OK) goto done;
    if (cnn_tensor_alloc(&x, &in) != CNN_OK || !(labels = calloc(batch, sizeof *labels)) ||
        !(dy = calloc(out_numel, sizeof *dy)) || cnn_model_init(m, CNN_INIT_XAVIER, 1) != CNN_OK ||
        cnn_optim_new(m, &oc, &opt, err, sizeof err) != CNN_OK) {
        rc = cli_error(EXIT_FAIL, "bench", "out of memory");
        goto done;
    }
    cnn_rng r;
    cnn_rng_seed(&r, 1, 0);
    for (size_t i = 0; i < cnn_tensor_numel(&x); i++)
        x.data[i] = cnn_rng_uniform(&r);
    for (unsigned long long i = 0; i < batch; i++)
        labels[i] = (int32_t)cnn_rng_below(&r, (uint32_t)classes);
    const bool logits = out.ndim == 2 && out.dim[0] == (int64_t)batch;

    /* One iteration: the inference forward, or a whole training step. */
    int64_t iters = 0, warm = 2;
    double t0 = 0.0, elapsed = 0.0;
    for (int64_t it = 0;; it++) {
        if (it == warm) {
            t0 = omp_get_wtime();
            cnn_model_set_profiling(m, profile);
        }
        if (train) {
            cnn_model_zero_grad(m);
            const float *y = cnn_model_forward_train(m, &x, 1, (uint64_t)it);
            double loss;
            if (!y) {
                rc = cli_error(EXIT_FAIL, "bench", "%s", cnn_model_error(m));
                goto done;
            }
            if (logits) cnn_cross_entropy(y, labels, (int64_t)batch, classes, dy, &loss, NULL);
            cnn_model_backward(m, x.data, dy, NULL);
            cnn_optim_step(opt, oc.lr);
        } else if (!cnn_model_forward_view(m, &x)) {
            rc = cli_error(EXIT_FAIL, "bench", "%s", cnn_model_error(m));
            goto done;
        }
        if (it >= warm) {
            iters = it - warm + 1;
            elapsed = omp_get_wtime() - t0;
            if (elapsed >= seconds && iters >= 3) break;
        }
    }
    double flops = 0.0;
    for (int i = 0; i < cnn_model_num_nodes(m); i++)
        flops += node_flops(m, i);
    if (train) flops *= 3.0; /* backward: the gradients of the input and of the weights */
    const double ips = (double)batch * (double)iters / elapsed;
    const double gflops = flops * (double)iters / elapsed / 1e9;
    const int replicas = train ? cnn_model_replicas(m) : 0;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    const double rss_mb = (double)ru.ru_maxrss / 1024.0;
    if (json) {
        printf("{\"model\": \"%s\", \"batch\": %llu, \"train\": %s, \"threads\": %d, "
               "\"replicas\": %d, \"kernels\": \"%s\", \"openblas\": \"%s\", "
               "\"images_per_second\": %.3f, \"seconds_per_iteration\": %.6f, \"gflops\": %.3f, "
               "\"peak_rss_mb\": %.1f}\n",
               argv[optind], batch, train ? "true" : "false", omp_get_max_threads(), replicas,
               cnn_simd_name(cnn_simd_level()), cnn_blas_core(), ips, elapsed / (double)iters,
               gflops, rss_mb);
    } else {
        printf("%s %s, batch %llu, %d threads%s, %s kernels, OpenBLAS %s: %.1f images/s (%.3f ms "
               "per iteration, %lld iterations), %.1f GFLOP/s, peak RSS %.0f MB\n",
               argv[optind], train ? "training step" : "inference", batch, omp_get_max_threads(),
               replicas ? " (a replica each)" : "", cnn_simd_name(cnn_simd_level()),
               cnn_blas_core(), ips, 1e3 * elapsed / (double)iters, (long long)iters, gflops,
               rss_mb);
    }
    if (profile && !json) {
        double total = 0.0;
        for (int i = 0; i < cnn_model_num_nodes(m); i++) {
            double f, b;
            cnn_model_node_time(m, i, &f, &b);
            total += f + b;
        }
        printf("\n%-14s %-18s %11s %11s %7s %9s  %s\n", "layer", "type", "forward ms",
               "backward ms", "share", "GFLOP/s", "algorithm");
        for (int i = 0; i < cnn_model_num_nodes(m); i++) {
            double f, b;
            cnn_model_node_time(m, i, &f, &b);
            const double nf = node_flops(m, i) * (train ? 3.0 : 1.0);
            char rate[32] = "";
            if (nf > 0 && f + b > 0)
                snprintf(rate, sizeof rate, "%.1f", nf * (double)iters / (f + b) / 1e9);
            const char *algorithm = cnn_model_node_algorithm(m, i);
            printf("%-14s %-18s %11.3f %11.3f %6.1f%% %9s%s%s\n", cnn_model_node_path(m, i),
                   cnn_op_name(cnn_model_node_layer(m, i)->op), 1e3 * f / (double)iters,
                   1e3 * b / (double)iters, total > 0 ? 100.0 * (f + b) / total : 0.0, rate,
                   algorithm ? "  " : "", algorithm ? algorithm : "");
        }
        printf("%-14s %-18s %11s %11s %6.1f%% of %.3f ms per iteration\n", "total", "", "", "",
               total > 0 ? 100.0 * total / elapsed : 0.0, 1e3 * elapsed / (double)iters);
        if (replicas)
            printf(
                "(%d replicas ran every layer at once, each on its share of the batch: the times "
                "are their means;\n the rest is the loss, the update, the sum of their "
                "gradients and the wait for the slowest)\n",
                replicas);
    }
done:
    cnn_optim_free(opt);
    free(dy);
    free(labels);
    cnn_tensor_free(&x);
    cnn_model_free(m);
    return rc;
}
