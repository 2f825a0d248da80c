/* cmd_draw.c - cnnkit draw: architecture figures of one or more models. */
#define _GNU_SOURCE
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cnnkit/draw.h"

static void draw_usage(FILE *f) {
    fprintf(f,
            "usage: cnnkit draw MODEL [MODEL ...] [--input N,C,H,W] [--style STYLE] -o FILE\n\n"
            "Draws the models side by side, one column (or row) each, titled with their class\n"
            "names, in one of three styles:\n"
            "  blocks  (default) the d2l book's: a box per conv, pool and fully-connected layer,\n"
            "          activations folded in, output shapes beside, a colour per layer kind\n"
            "  graph   Netron's: every op a node with its attributes and parameter shapes,\n"
            "          edges labelled with tensor shapes\n"
            "  planes  LeCun's: feature maps as stacks of planes scaled by their size,\n"
            "          then the dense layers as bars\n\n"
            "options:\n"
            "  -o, --output FILE   FILE.svg (self-contained SVG), FILE.png (rendered at 2x)\n"
            "                      or FILE.dot (Graphviz); written atomically\n"
            "  --style STYLE       blocks, graph or planes\n"
            "  --input N,C,H,W     input shape for every model (default: each model's own;\n"
            "                      a model file's is guessed from its first layer)\n\n"
            "MODEL is a built-in model name (see `cnnkit zoo`) or a model file (.txt, .py).\n");
}

int cmd_draw(int argc, char **argv) {
    static const struct option opts[] = {{"help", no_argument, 0, 'h'},
                                         {"output", required_argument, 0, 'o'},
                                         {"style", required_argument, 0, 's'},
                                         {"input", required_argument, 0, 'i'},
                                         {0, 0, 0, 0}};
    const char *out = NULL, *style_name = "blocks";
    cnn_shape input;
    bool have_input = false;
    int c;
    while ((c = getopt_long(argc, argv, "ho:", opts, NULL)) != -1) {
        switch (c) {
        case 'h': draw_usage(stdout); return EXIT_OK;
        case 'o': out = optarg; break;
        case 's': style_name = optarg; break;
        case 'i':
            if (!cli_parse_shape("draw", optarg, &input)) return EXIT_USAGE;
            have_input = true;
            break;
        default: return EXIT_USAGE;
        }
    }
    int n = argc - optind;
    if (n < 1) return cli_error(EXIT_USAGE, "draw", "expected at least one MODEL (see --help)");
    if (!out) return cli_error(EXIT_USAGE, "draw", "expected -o FILE.svg, FILE.png or FILE.dot");
    cnn_draw_style style = cnn_draw_style_from_name(style_name);
    if (style == CNN_DRAW_STYLE_COUNT)
        return cli_error(EXIT_USAGE, "draw", "--style '%s': expected blocks, graph or planes",
                         style_name);
    cnn_draw_format format = cnn_draw_format_from_path(out);
    if (format == CNN_DRAW_FORMAT_COUNT)
        return cli_error(EXIT_USAGE, "draw", "%s: the output must end in .svg, .png or .dot", out);

    cnn_model **models = calloc((size_t)n, sizeof *models);
    cnn_shape *inputs = calloc((size_t)n, sizeof *inputs);
    const char **titles = calloc((size_t)n, sizeof *titles);
    int rc = EXIT_OK;
    if (!models || !inputs || !titles) {
        rc = cli_error(EXIT_FAIL, "draw", "out of memory");
        goto done;
    }
    for (int i = 0; i < n; i++) {
        rc = cli_open_model("draw", argv[optind + i], &models[i], &inputs[i]);
        if (rc != EXIT_OK) goto done;
        if (have_input) {
            inputs[i] = input;
        } else if (!cli_need_input("draw", argv[optind + i], models[i], &inputs[i])) {
            rc = EXIT_FAIL;
            goto done;
        }
        titles[i] = cnn_model_class(models[i]);
    }
    char err[512];
    if (cnn_draw(models, titles, n, inputs, style, format, out, err, sizeof err) != CNN_OK) {
        rc = cli_error(EXIT_FAIL, "draw", "%s", err);
        goto done;
    }
    for (int i = 0; i < n; i++)
        printf("%s%s", i ? ", " : "", titles[i]);
    printf(" (%s) -> %s\n", cnn_draw_style_name(style), out);
done:
    if (models)
        for (int i = 0; i < n; i++)
            cnn_model_free(models[i]);
    free(models);
    free(inputs);
    free(titles);
    return rc;
}
