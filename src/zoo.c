/* zoo.c - LeNet and AlexNet as in "Dive into Deep Learning" (and the notes). */
#include <stdio.h>
#include <string.h>

#include "cnnkit/zoo.h"
#include "util.h"

static cnn_layer conv(int64_t in, int64_t out, int64_t k, int64_t stride, int64_t pad) {
    cnn_layer L = cnn_conv2d(in, out, k);
    L.stride[0] = L.stride[1] = stride;
    L.padding[0] = L.padding[1] = pad;
    return L;
}

static cnn_layer pool(cnn_layer L, int64_t stride) {
    L.stride[0] = L.stride[1] = stride;
    return L;
}

/* Adds the layers to a Sequential named "net" under the top module, naming them 0, 1, 2, ... */
static cnn_status build_sequential(cnn_model *m, const cnn_layer *layers, int n) {
    int net = cnn_model_add_container(m, 0, "net", "Sequential");
    if (net < 0) return CNN_STATUS_NO_MEMORY;
    for (int i = 0; i < n; i++) {
        char name[16];
        snprintf(name, sizeof name, "%d", i);
        if (cnn_model_add_layer(m, net, name, &layers[i]) < 0) return CNN_STATUS_INVALID_ARGUMENT;
    }
    return cnn_model_finalize(m);
}

static cnn_status build_lenet(cnn_model *m) {
    const cnn_layer layers[] = {
        conv(1, 6, 5, 1, 2),
        cnn_sigmoid(),
        pool(cnn_avgpool2d(2), 2),
        conv(6, 16, 5, 1, 0),
        cnn_sigmoid(),
        pool(cnn_avgpool2d(2), 2),
        cnn_flatten(),
        cnn_linear(16 * 5 * 5, 120),
        cnn_sigmoid(),
        cnn_linear(120, 84),
        cnn_sigmoid(),
        cnn_linear(84, 10),
    };
    return build_sequential(m, layers, (int)CNN_COUNT_OF(layers));
}

static cnn_status build_alexnet(cnn_model *m) {
    const cnn_layer layers[] = {
        conv(1, 96, 11, 4, 1),
        cnn_relu(),
        pool(cnn_maxpool2d(3), 2),
        conv(96, 256, 5, 1, 2),
        cnn_relu(),
        pool(cnn_maxpool2d(3), 2),
        conv(256, 384, 3, 1, 1),
        cnn_relu(),
        conv(384, 384, 3, 1, 1),
        cnn_relu(),
        conv(384, 256, 3, 1, 1),
        cnn_relu(),
        pool(cnn_maxpool2d(3), 2),
        cnn_flatten(),
        cnn_linear(6400, 4096),
        cnn_relu(),
        cnn_dropout(0.5),
        cnn_linear(4096, 4096),
        cnn_relu(),
        cnn_dropout(0.5),
        cnn_linear(4096, 10),
    };
    return build_sequential(m, layers, (int)CNN_COUNT_OF(layers));
}

static const struct {
    cnn_zoo_entry entry;
    const char *class_name;
    cnn_status (*build)(cnn_model *m);
} zoo[] = {
    {{"lenet",
      "LeNet-5 as in d2l: sigmoid, average pooling, 28x28 grey input",
      {4, {1, 1, 28, 28}}},
     "LeNet",
     build_lenet},
    {{"alexnet",
      "AlexNet as in d2l: one input channel, 10 classes, 224x224 input",
      {4, {1, 1, 224, 224}}},
     "AlexNet",
     build_alexnet},
};

int cnn_zoo_count(void) { return (int)CNN_COUNT_OF(zoo); }

const cnn_zoo_entry *cnn_zoo_get(int i) {
    return i >= 0 && i < cnn_zoo_count() ? &zoo[i].entry : NULL;
}

const cnn_zoo_entry *cnn_zoo_find(const char *name) {
    for (int i = 0; i < cnn_zoo_count(); i++)
        if (strcmp(zoo[i].entry.name, name) == 0) return &zoo[i].entry;
    return NULL;
}

cnn_status cnn_zoo_build(const char *name, cnn_model **out) {
    *out = NULL;
    for (int i = 0; i < cnn_zoo_count(); i++) {
        if (strcmp(zoo[i].entry.name, name) != 0) continue;
        cnn_model *m = cnn_model_new(zoo[i].class_name);
        if (!m) return CNN_STATUS_NO_MEMORY;
        cnn_status s = zoo[i].build(m);
        /* A built-in model that fails to build is a bug, not bad input. */
        CNN_ASSERT(s == CNN_OK || s == CNN_STATUS_NO_MEMORY);
        if (s != CNN_OK) {
            cnn_model_free(m);
            return s;
        }
        *out = m;
        return CNN_OK;
    }
    return CNN_STATUS_INVALID_ARGUMENT;
}
