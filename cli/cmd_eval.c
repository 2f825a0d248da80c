/* cmd_eval.c - `cnnkit eval`: loss, accuracy, per-class accuracy and the
 * confusion matrix on the test split. */
#define _GNU_SOURCE
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cnnkit/data.h"

static int usage_eval(void) {
    printf("usage: cnnkit eval MODEL --weights W.safetensors [--data DIR] [--batch N]\n"
           "                  [--resize S] [--limit N] [--threads N]\n\n"
           "Evaluates MODEL with weights W on the test split of Fashion-MNIST (or --data\n"
           "DIR): cross-entropy loss, accuracy, accuracy per class and the confusion matrix\n"
           "(rows: true class, columns: predicted).\n\n"
           "  -w, --weights W   a state_dict in safetensors (cnnkit train writes one)\n"
           "      --data DIR    a folder with the four MNIST-layout IDX files\n"
           "      --batch N     images per forward pass (default 256)\n"
           "      --resize S    evaluate at SxS (default: the model's input size)\n"
           "      --limit N     the first N test images only\n"
           "      --threads N   OpenMP and OpenBLAS threads (default: all cores)\n");
    return EXIT_OK;
}

/* What evaluating holds at a batch: the model's inference plan and the loader's batches. */
typedef struct eval_plan {
    cnn_model *m;
    int64_t count, height, width;
} eval_plan;

static const char *eval_need(void *ctx, int64_t batch, cli_need *need) {
    const eval_plan *p = ctx;
    const int64_t rows = batch < p->count ? batch : p->count;
    cnn_shape in = cnn_shape_make(4, (int64_t[]){rows, 1, p->height, p->width});
    *need = (cli_need){0};
    if (cnn_model_memory(p->m, &in, false, &need->model) != CNN_OK) return cnn_model_error(p->m);
    need->data = cli_loader_bytes(batch, p->count, p->height * p->width,
                                  cnn_loader_config_default().threads);
    cli_need_sum(need);
    return NULL;
}

int cmd_eval(int argc, char **argv) {
    static const struct option opts[] = {
        {"weights", required_argument, 0, 'w'}, {"data", required_argument, 0, 'd'},
        {"batch", required_argument, 0, 'b'},   {"resize", required_argument, 0, 'r'},
        {"limit", required_argument, 0, 'l'},   {"threads", required_argument, 0, 't'},
        {"help", no_argument, 0, 'h'},          {0, 0, 0, 0}};
    const char *weights = NULL, *dir = NULL;
    unsigned long long batch = 256, threads = 0, limit = 0, resize = 0;
    bool resize_given = false;
    int c;
    while ((c = getopt_long(argc, argv, "w:h", opts, NULL)) != -1) {
        switch (c) {
        case 'w': weights = optarg; break;
        case 'd': dir = optarg; break;
        case 'b':
            if (!cli_parse_uint("eval", "--batch", optarg, 1 << 20, &batch) || !batch)
                return batch ? EXIT_USAGE
                             : cli_error(EXIT_USAGE, "eval", "--batch must be positive");
            break;
        case 'r':
            if (!cli_parse_uint("eval", "--resize", optarg, 4096, &resize)) return EXIT_USAGE;
            resize_given = true;
            break;
        case 'l':
            if (!cli_parse_uint("eval", "--limit", optarg, INT64_MAX, &limit)) return EXIT_USAGE;
            break;
        case 't':
            if (!cli_parse_uint("eval", "--threads", optarg, 1024, &threads)) return EXIT_USAGE;
            break;
        case 'h': return usage_eval();
        default: return EXIT_USAGE;
        }
    }
    if (argc - optind != 1) return cli_error(EXIT_USAGE, "eval", "expected one MODEL (see --help)");
    if (!weights) return cli_error(EXIT_USAGE, "eval", "--weights is required");
    cnn_set_threads((int)threads);
    cnn_model *m;
    cnn_shape input;
    int rc = cli_open_model("eval", argv[optind], &m, &input);
    if (rc != EXIT_OK) return rc;
    cnn_dataset *test = NULL;
    int64_t *confusion = NULL;
    char err[1024];
    if (cnn_model_load(m, weights) != CNN_OK) {
        rc = cli_error(EXIT_FAIL, "eval", "%s", cnn_model_error(m));
        goto done;
    }
    if (!dir) dir = cnn_dataset_default_dir();
    if (cnn_dataset_load(dir, "test", &test, err, sizeof err) != CNN_OK) {
        rc = cli_error(EXIT_FAIL, "eval", "%s", err);
        goto done;
    }
    if (limit && test->count > (int64_t)limit) test->count = (int64_t)limit;
    if (!resize_given && input.ndim == 4 && input.dim[2] != test->height)
        resize = (unsigned long long)input.dim[2];
    eval_plan plan = {m, test->count, resize ? (int64_t)resize : test->height,
                      resize ? (int64_t)resize : test->width};
    rc = cli_memory_check("eval", argv[optind], (int64_t)batch, "--batch", true, eval_need, &plan);
    if (rc != EXIT_OK) goto done;
    const int K = test->num_classes;
    confusion = calloc((size_t)K * (size_t)K, sizeof *confusion);
    if (!confusion) {
        rc = cli_error(EXIT_FAIL, "eval", "out of memory");
        goto done;
    }
    double sums[3];
    rc = cli_evaluate("eval", m, test, (int64_t)batch, (int64_t)resize, 0, 1, sums, confusion);
    if (rc != EXIT_OK) goto done;
    const double loss = sums[0] / sums[2], acc = sums[1] / sums[2];
    const bool fashion = K == 10 && !strcmp(dir, cnn_dataset_default_dir());
    printf("%s on %" PRId64 " test images: loss %.4f, accuracy %.4f\n\n", argv[optind], test->count,
           loss, acc);
    printf("%-12s %8s %8s\n", "class", "images", "accuracy");
    for (int k = 0; k < K; k++) {
        int64_t total = 0;
        for (int j = 0; j < K; j++)
            total += confusion[k * K + j];
        char name[32];
        snprintf(name, sizeof name, "%s", fashion ? cnn_fashion_mnist_class(k) : "");
        if (!fashion) snprintf(name, sizeof name, "%d", k);
        printf("%-12s %8" PRId64 " %8.4f\n", name, total,
               total ? (double)confusion[k * K + k] / (double)total : 0.0);
    }
    printf("\nconfusion matrix (rows: true class, columns: predicted)\n%-12s", "");
    for (int j = 0; j < K; j++)
        printf(" %6d", j);
    putchar('\n');
    for (int k = 0; k < K; k++) {
        char name[32];
        snprintf(name, sizeof name, "%d %s", k, fashion ? cnn_fashion_mnist_class(k) : "");
        printf("%-12.12s", name);
        for (int j = 0; j < K; j++)
            printf(" %6" PRId64, confusion[k * K + j]);
        putchar('\n');
    }
done:
    free(confusion);
    cnn_dataset_free(test);
    cnn_model_free(m);
    return rc;
}
