/* evaluate.c - loss, accuracy and confusion counts of a model over a data
 * set, in inference mode; a rank of a distributed job takes its own slice. */
#include <math.h>

#include "cli.h"
#include "cnnkit/data.h"

int cli_evaluate(const char *cmd, cnn_model *m, const cnn_dataset *ds, int64_t batch,
                 int64_t resize, int rank, int ranks, double *sums, int64_t *confusion) {
    /* This rank's contiguous slice of the images. */
    cnn_dataset part = *ds;
    const int64_t lo = ds->count * rank / ranks, hi = ds->count * (rank + 1) / ranks;
    part.count = hi - lo;
    part.images = ds->images + lo * ds->height * ds->width;
    part.labels = ds->labels + lo;
    sums[0] = sums[1] = sums[2] = 0.0;
    if (part.count == 0) return EXIT_OK;
    cnn_loader_config cfg = cnn_loader_config_default();
    cfg.batch_size = batch;
    cfg.resize = resize;
    cnn_loader *ld;
    char err[512];
    if (cnn_loader_new(&part, &cfg, &ld, err, sizeof err) != CNN_OK)
        return cli_error(EXIT_FAIL, cmd, "%s", err);
    cnn_loader_start_epoch(ld, 0, 0);
    cnn_batch b;
    int rc = EXIT_OK;
    while (cnn_loader_next(ld, &b) == CNN_OK && b.count > 0) {
        cnn_tensor x = {b.shape, b.x};
        const float *y = cnn_model_forward_view(m, &x);
        if (!y) {
            rc = cli_error(EXIT_FAIL, cmd, "%s", cnn_model_error(m));
            break;
        }
        cnn_shape os = cnn_model_output_shape(m);
        double l;
        int64_t c;
        if (os.ndim != 2 || cnn_cross_entropy(y, b.y, b.count, os.dim[1], NULL, &l, &c) != CNN_OK) {
            rc = cli_error(EXIT_FAIL, cmd,
                           "the model's output must be [N, classes] with at least %d classes",
                           ds->num_classes);
            break;
        }
        sums[0] += l * (double)b.count;
        sums[1] += (double)c;
        sums[2] += (double)b.count;
        for (int64_t i = 0; confusion && i < b.count; i++) {
            int64_t best = 0;
            for (int64_t k = 1; k < os.dim[1]; k++)
                if (y[i * os.dim[1] + k] > y[i * os.dim[1] + best]) best = k;
            if (best < ds->num_classes) confusion[b.y[i] * ds->num_classes + best]++;
        }
    }
    cnn_loader_free(ld);
    return rc;
}
