/* fuzz_model.h - the body the two model-file fuzz targets share. Any bytes
 * either fail with a "FILE:LINE:COL: " error or give a model whose print
 * reads back to the same print; a model small enough is then finalized and
 * its input shape guessed, which runs shape inference on it. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cnnkit/cnnkit.h"
#include "model_impl.h"
#include "modelfile_impl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Parameters of the model's layers, saturating; no memory is touched. */
static size_t fuzz_param_count(const cnn_model *m) {
    size_t total = 0;
    for (int i = 0; i < cnn_model_num_nodes(m); i++) {
        const cnn_layer *L = cnn_model_node_layer(m, i);
        const cnn_op_vtable *vt = cnn_op_table(L->op);
        cnn_param_spec spec[CNN_MAX_PARAMS];
        int n = vt->params ? vt->params(L, spec) : 0;
        for (int j = 0; j < n; j++) {
            size_t numel;
            if (cnn_shape_numel(&spec[j].shape, &numel) != CNN_OK || numel > SIZE_MAX / 2 - total)
                return SIZE_MAX;
            total += numel;
        }
    }
    return total;
}

static char *fuzz_repr(const cnn_model *m, size_t *len) {
    int n = cnn_model_repr(m, NULL, 0);
    char *buf = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (!buf) abort();
    cnn_model_repr(m, buf, (size_t)n + 1);
    *len = (size_t)n;
    return buf;
}

static int fuzz_model_file(const uint8_t *data, size_t size, const char *name) {
    char err[1024];
    cnn_model *m = NULL;
    cnn_status s = mf_parse_model((const char *)data, size, name, false, &m, err, sizeof err);
    if (s != CNN_OK) {
        size_t n = strlen(name);
        if (m || strncmp(err, name, n) != 0 || err[n] != ':') abort();
        return 0;
    }
    size_t len;
    char *text = fuzz_repr(m, &len);
    cnn_model *again = NULL;
    if (mf_parse_model(text, len, "print.txt", false, &again, err, sizeof err) != CNN_OK) abort();
    size_t len2;
    char *text2 = fuzz_repr(again, &len2);
    if (len != len2 || memcmp(text, text2, len) != 0) abort();
    free(text);
    free(text2);
    cnn_model_free(again);
    if (fuzz_param_count(m) <= ((size_t)1 << 20) && cnn_model_finalize(m) == CNN_OK) {
        cnn_shape in;
        (void)cnn_model_guess_input(m, &in);
    }
    cnn_model_free(m);
    return 0;
}
