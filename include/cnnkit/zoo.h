/* cnnkit/zoo.h - the built-in models, exactly as the d2l notes define them.
 *
 *   lenet    LeNet(net: Sequential(...)), input [1, 1, 28, 28]
 *   alexnet  AlexNet(net: Sequential(...)), input [1, 1, 224, 224]
 */
#ifndef CNNKIT_ZOO_H
#define CNNKIT_ZOO_H

#include "cnnkit/model.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cnn_zoo_entry {
    const char *name;        /* "lenet" */
    const char *description; /* one line */
    cnn_shape input;         /* default input shape */
} cnn_zoo_entry;

int cnn_zoo_count(void);
/* The i-th built-in model, or NULL when i is out of range. */
const cnn_zoo_entry *cnn_zoo_get(int i);
/* The built-in model called name, or NULL. */
const cnn_zoo_entry *cnn_zoo_find(const char *name);

/* Builds and finalizes a built-in model (parameters zero; see cnn_model_init).
 * CNN_STATUS_INVALID_ARGUMENT for an unknown name. */
cnn_status cnn_zoo_build(const char *name, cnn_model **out);

#ifdef __cplusplus
}
#endif
#endif
