/* cmd_predict.c - `cnnkit predict`: classify PNG or PGM images with trained weights. */
#define _GNU_SOURCE
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cnnkit/data.h"
#include "cnnkit/image.h"

static int usage_predict(void) {
    printf("usage: cnnkit predict MODEL --weights W.safetensors [--top K] [--invert]\n"
           "                     [--labels fashion|digits|none] IMAGE...\n\n"
           "Classifies each IMAGE (PNG or PGM, any size, colour made grey) with MODEL and\n"
           "weights W: the image becomes the model's input as in training (pixels / 255,\n"
           "bilinear resize to the model's input size) and the top K classes are printed\n"
           "with their softmax probabilities.\n\n"
           "  -w, --weights W   a state_dict in safetensors (cnnkit train writes one)\n"
           "  -k, --top K       classes to show per image (default 3)\n"
           "      --invert      use 255 - pixel: Fashion-MNIST shows light objects on black,\n"
           "                    so a dark object photographed on white needs it\n"
           "      --labels L    class names: fashion (Fashion-MNIST, default), digits, none\n");
    return EXIT_OK;
}

/* What classifying an image holds: the model's inference plan and the input. */
typedef struct predict_plan {
    cnn_model *m;
    cnn_shape in;
} predict_plan;

static const char *predict_need(void *ctx, int64_t batch, cli_need *need) {
    const predict_plan *p = ctx;
    cnn_shape in = p->in;
    in.dim[0] = batch;
    *need = (cli_need){0};
    if (cnn_model_memory(p->m, &in, false, &need->model) != CNN_OK) return cnn_model_error(p->m);
    size_t x;
    cnn_shape_numel(&in, &x);
    need->data = x * sizeof(float);
    cli_need_sum(need);
    return NULL;
}

int cmd_predict(int argc, char **argv) {
    static const struct option opts[] = {
        {"weights", required_argument, 0, 'w'}, {"top", required_argument, 0, 'k'},
        {"invert", no_argument, 0, 'i'},        {"labels", required_argument, 0, 'l'},
        {"help", no_argument, 0, 'h'},          {0, 0, 0, 0}};
    const char *weights = NULL, *labels = "fashion";
    unsigned long long top = 3;
    bool invert = false;
    int c;
    while ((c = getopt_long(argc, argv, "w:k:h", opts, NULL)) != -1) {
        switch (c) {
        case 'w': weights = optarg; break;
        case 'k':
            if (!cli_parse_uint("predict", "--top", optarg, 1000, &top) || !top)
                return top ? EXIT_USAGE
                           : cli_error(EXIT_USAGE, "predict", "--top must be positive");
            break;
        case 'i': invert = true; break;
        case 'l':
            if (strcmp(optarg, "fashion") && strcmp(optarg, "digits") && strcmp(optarg, "none"))
                return cli_error(EXIT_USAGE, "predict",
                                 "--labels '%s': expected fashion, digits or none", optarg);
            labels = optarg;
            break;
        case 'h': return usage_predict();
        default: return EXIT_USAGE;
        }
    }
    if (argc - optind < 2)
        return cli_error(EXIT_USAGE, "predict",
                         "expected MODEL and at least one IMAGE (see --help)");
    if (!weights) return cli_error(EXIT_USAGE, "predict", "--weights is required");
    cnn_model *m;
    cnn_shape input;
    int rc = cli_open_model("predict", argv[optind], &m, &input);
    if (rc != EXIT_OK) return rc;
    cnn_tensor x = {0};
    if (cnn_model_load(m, weights) != CNN_OK) {
        rc = cli_error(EXIT_FAIL, "predict", "%s", cnn_model_error(m));
        goto done;
    }
    if (input.ndim != 4 || input.dim[1] != 1) {
        rc = cli_error(EXIT_FAIL, "predict",
                       "%s takes %s input; predict reads grey images, "
                       "so the model must take [N, 1, H, W]",
                       argv[optind], input.ndim == 4 ? "multi-channel" : "non-image");
        goto done;
    }
    input.dim[0] = 1;
    predict_plan plan = {m, input};
    rc = cli_memory_check("predict", argv[optind], 1, NULL, true, predict_need, &plan);
    if (rc != EXIT_OK) goto done;
    if (cnn_tensor_alloc(&x, &input) != CNN_OK) {
        rc = cli_error(EXIT_FAIL, "predict", "out of memory");
        goto done;
    }
    for (int i = optind + 1; i < argc; i++) {
        cnn_image img;
        char err[512];
        if (cnn_image_read(argv[i], &img, err, sizeof err) != CNN_OK ||
            cnn_image_to_input(&img, input.dim[2], input.dim[3], invert, x.data) != CNN_OK) {
            rc = cli_error(EXIT_FAIL, "predict", "%s", err);
            cnn_image_free(&img);
            continue; /* the other images still get their answer */
        }
        cnn_image_free(&img);
        const float *y = cnn_model_forward_view(m, &x);
        if (!y) {
            rc = cli_error(EXIT_FAIL, "predict", "%s", cnn_model_error(m));
            goto done;
        }
        cnn_shape os = cnn_model_output_shape(m);
        const int64_t K = os.dim[os.ndim - 1];
        /* Softmax, then the top K by selection. */
        double *p = malloc((size_t)K * sizeof *p), mx = -INFINITY, sum = 0.0;
        if (!p) {
            rc = cli_error(EXIT_FAIL, "predict", "out of memory");
            goto done;
        }
        for (int64_t k = 0; k < K; k++)
            mx = y[k] > mx ? y[k] : mx;
        for (int64_t k = 0; k < K; k++)
            sum += p[k] = exp(y[k] - mx);
        printf("%s\n", argv[i]);
        for (unsigned long long t = 0; t < top && t < (unsigned long long)K; t++) {
            int64_t best = -1;
            for (int64_t k = 0; k < K; k++)
                if (p[k] >= 0 && (best < 0 || p[k] > p[best])) best = k;
            const char *name = "";
            if (!strcmp(labels, "fashion")) name = cnn_fashion_mnist_class((int)best);
            char digit[8];
            if (!strcmp(labels, "digits") && best < 10) {
                snprintf(digit, sizeof digit, "%d", (int)best);
                name = digit;
            }
            printf("  %2d %-12s %6.2f%%\n", (int)best, name ? name : "", 100.0 * p[best] / sum);
            p[best] = -1.0;
        }
        free(p);
    }
done:
    cnn_tensor_free(&x);
    cnn_model_free(m);
    return rc;
}
