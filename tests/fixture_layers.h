/* fixture_layers.h - the layer of every fixture that tests/ref/make_fixtures.py
 * writes, built as that script constructs it, for the tests that rebuild the
 * fixtures (test_parity.c, tools/onnx_fixture.c). A model file cannot stand in:
 * AvgPool2d's repr leaves out ceil_mode and count_include_pad. */
#ifndef CNNKIT_TESTS_FIXTURE_LAYERS_H
#define CNNKIT_TESTS_FIXTURE_LAYERS_H

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "cnnkit/layer.h"

static cnn_layer conv2d_full(void) {
    cnn_layer L = cnn_conv2d(4, 6, 3);
    L.kernel[1] = 5;
    L.stride[0] = 2;
    L.padding[0] = 1;
    L.padding[1] = 2;
    L.dilation[0] = 2;
    L.groups = 2;
    L.bias = false;
    return L;
}

static cnn_layer conv2d_depthwise(void) {
    cnn_layer L = cnn_conv2d(4, 8, 3);
    L.padding[0] = L.padding[1] = 1;
    L.groups = 4;
    return L;
}

static cnn_layer linear_nobias(void) {
    cnn_layer L = cnn_linear(7, 4);
    L.bias = false;
    return L;
}

static cnn_layer maxpool(void) {
    cnn_layer L = cnn_maxpool2d(3);
    L.stride[0] = L.stride[1] = 2;
    return L;
}

static cnn_layer maxpool_full(void) {
    cnn_layer L = cnn_maxpool2d(3);
    L.kernel[1] = 2;
    L.stride[0] = 2;
    L.stride[1] = 1;
    L.padding[0] = L.padding[1] = 1;
    L.dilation[0] = 2;
    L.ceil_mode = true;
    L.kernel_tuple = L.stride_tuple = L.padding_tuple = L.dilation_tuple = true;
    return L;
}

static cnn_layer maxpool_ceil(void) {
    cnn_layer L = cnn_maxpool2d(2);
    L.padding[0] = L.padding[1] = 1;
    L.ceil_mode = true;
    return L;
}

static cnn_layer avgpool(void) {
    cnn_layer L = cnn_avgpool2d(3);
    L.stride[0] = L.stride[1] = 2;
    L.padding[0] = L.padding[1] = 1;
    return L;
}

static cnn_layer avgpool_exclude_pad(void) {
    cnn_layer L = cnn_avgpool2d(3);
    L.kernel[1] = 2;
    L.stride[0] = L.stride[1] = 2;
    L.padding[0] = L.padding[1] = 1;
    L.ceil_mode = true;
    L.count_include_pad = false;
    L.kernel_tuple = L.stride_tuple = L.padding_tuple = true;
    return L;
}

static cnn_layer avgpool_include_pad(void) {
    cnn_layer L = avgpool();
    L.ceil_mode = true;
    return L;
}

static cnn_layer adaptive(void) {
    cnn_layer L = cnn_adaptiveavgpool2d(3);
    L.output_size[1] = 2;
    L.output_size_tuple = true;
    return L;
}

static cnn_layer relu(void) {
    cnn_layer L = cnn_relu();
    L.inplace = true;
    return L;
}

static cnn_layer flatten_middle(void) {
    cnn_layer L = cnn_flatten();
    L.end_dim = 2;
    return L;
}

static cnn_layer bn_noaffine(void) {
    cnn_layer L = cnn_batchnorm2d(3);
    L.eps = 0.001;
    L.momentum = 0.2;
    L.affine = false;
    return L;
}

static cnn_layer bn_batchstats(void) {
    cnn_layer L = cnn_batchnorm2d(3);
    L.track_running_stats = false;
    return L;
}

static cnn_layer lrn(void) {
    cnn_layer L = cnn_lrn(3);
    L.alpha = 0.001;
    L.beta = 0.6;
    L.k = 2.0;
    return L;
}

/* The layer of fixture name; false when there is no such fixture. With
 * name NULL, prints every fixture's name and returns false. */
static bool fixture_layer(const char *name, cnn_layer *L) {
    const struct {
        const char *name;
        cnn_layer layer;
    } table[] = {
        {"conv2d_basic", cnn_conv2d(3, 4, 3)},
        {"conv2d_full", conv2d_full()},
        {"conv2d_depthwise", conv2d_depthwise()},
        {"linear", cnn_linear(12, 5)},
        {"linear_nobias_3d", linear_nobias()},
        {"maxpool", maxpool()},
        {"maxpool_full", maxpool_full()},
        {"maxpool_ceil_last_window", maxpool_ceil()},
        {"avgpool", avgpool()},
        {"avgpool_ceil_exclude_pad", avgpool_exclude_pad()},
        {"avgpool_ceil_include_pad", avgpool_include_pad()},
        {"adaptiveavgpool", adaptive()},
        {"adaptiveavgpool_global", cnn_adaptiveavgpool2d(1)},
        {"relu", relu()},
        {"sigmoid", cnn_sigmoid()},
        {"tanh", cnn_tanh()},
        {"flatten", cnn_flatten()},
        {"flatten_middle", flatten_middle()},
        {"dropout", cnn_dropout(0.3)},
        {"batchnorm", cnn_batchnorm2d(4)},
        {"batchnorm_noaffine", bn_noaffine()},
        {"batchnorm_batchstats", bn_batchstats()},
        {"lrn", lrn()},
        {"lrn_even", cnn_lrn(4)},
        {"softmax", cnn_softmax(1)},
        {"softmax_last", cnn_softmax(-1)},
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (!name)
            puts(table[i].name);
        else if (!strcmp(table[i].name, name)) {
            *L = table[i].layer;
            return true;
        }
    return false;
}

#endif
