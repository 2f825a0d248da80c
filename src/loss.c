/* loss.c - softmax cross-entropy, mean over the batch. */
#include <math.h>

#include "cnnkit/train.h"

cnn_status cnn_cross_entropy(const float *logits, const int32_t *labels, int64_t N, int64_t C,
                             float *dlogits, double *loss, int64_t *correct) {
    double total = 0.0;
    int64_t right = 0;
    for (int64_t i = 0; i < N; i++)
        if (labels[i] < 0 || labels[i] >= C) return CNN_STATUS_INVALID_ARGUMENT;
    for (int64_t i = 0; i < N; i++) {
        const float *z = logits + i * C;
        int64_t best = 0;
        for (int64_t c = 1; c < C; c++)
            if (z[c] > z[best]) best = c;
        right += best == labels[i];
        /* log(sum(exp(z))) = max + log(sum(exp(z - max))) */
        const double zmax = z[best];
        double sum = 0.0;
        for (int64_t c = 0; c < C; c++)
            sum += exp((double)z[c] - zmax);
        const double lse = zmax + log(sum);
        total += lse - z[labels[i]];
        if (dlogits) {
            for (int64_t c = 0; c < C; c++)
                dlogits[i * C + c] = (float)((exp((double)z[c] - lse) - (c == labels[i])) / N);
        }
    }
    *loss = N ? total / (double)N : 0.0;
    if (correct) *correct = right;
    return CNN_OK;
}
