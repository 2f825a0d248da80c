/* cnnkit/layer.h - layer descriptions with PyTorch's semantics and defaults.
 *
 * A cnn_layer is a plain value that says what a layer is, the way a
 * torch.nn constructor call does. The cnn_<layer>() functions below return
 * one filled with PyTorch's defaults; change fields afterwards for the
 * non-default arguments:
 *
 *   cnn_layer c = cnn_conv2d(1, 6, 5);   // nn.Conv2d(1, 6, kernel_size=5)
 *   c.padding[0] = c.padding[1] = 2;     //            padding=2
 *
 * Two-element arrays are (height, width), as PyTorch's tuples. For the
 * pooling layers, whose repr echoes the argument as it was written,
 * the *_tuple flags record whether it was written as a tuple ("(3, 3)") or a
 * single int ("3"); Conv2d always prints tuples, like PyTorch.
 */
#ifndef CNNKIT_LAYER_H
#define CNNKIT_LAYER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum cnn_op {
    CNN_OP_CONV2D,
    CNN_OP_LINEAR,
    CNN_OP_MAXPOOL2D,
    CNN_OP_AVGPOOL2D,
    CNN_OP_ADAPTIVEAVGPOOL2D,
    CNN_OP_RELU,
    CNN_OP_SIGMOID,
    CNN_OP_TANH,
    CNN_OP_FLATTEN,
    CNN_OP_DROPOUT,
    CNN_OP_BATCHNORM2D,
    CNN_OP_LRN,
    CNN_OP_SOFTMAX,
    CNN_OP_COUNT
} cnn_op;

typedef struct cnn_layer {
    cnn_op op;
    /* Conv2d: in_channels, out_channels. Linear: in_features, out_features.
     * BatchNorm2d: num_features in `in`. LocalResponseNorm: size in `in`. */
    int64_t in, out;
    int64_t kernel[2], stride[2], padding[2], dilation[2];
    int64_t groups;
    int64_t output_size[2];           /* AdaptiveAvgPool2d */
    int64_t start_dim, end_dim;       /* Flatten */
    int64_t dim;                      /* Softmax */
    double p;                         /* Dropout */
    double eps, momentum;             /* BatchNorm2d */
    double alpha, beta, k;            /* LocalResponseNorm */
    bool bias;                        /* Conv2d, Linear */
    bool ceil_mode;                   /* MaxPool2d, AvgPool2d */
    bool count_include_pad;           /* AvgPool2d */
    bool affine, track_running_stats; /* BatchNorm2d */
    bool momentum_none;               /* BatchNorm2d(momentum=None): cumulative average */
    bool inplace;                     /* ReLU, Dropout: printed only, no effect on results */
    bool kernel_tuple, stride_tuple, padding_tuple, dilation_tuple, output_size_tuple;
} cnn_layer;

/* PyTorch's class name of an op ("Conv2d"); NULL for an invalid op. */
const char *cnn_op_name(cnn_op op);

/* The op whose class name is name, or CNN_OP_COUNT when there is none. */
cnn_op cnn_op_from_name(const char *name);

/* Writes the layer's PyTorch repr ("Conv2d(1, 6, kernel_size=(5, 5), stride=(1, 1))")
 * into buf, snprintf-style: returns the length the full text needs. */
int cnn_layer_repr(char *buf, size_t cap, const cnn_layer *L);

/* Checks the attributes alone (positive sizes, channels divisible by groups,
 * pooling padding at most half the kernel, ...), as PyTorch's constructors
 * and first call do. On failure writes the reason into err and returns false. */
bool cnn_layer_check(const cnn_layer *L, char *err, size_t errlen);

/* Constructors with PyTorch's defaults. Pooling strides default to the kernel. */
cnn_layer cnn_conv2d(int64_t in_channels, int64_t out_channels, int64_t kernel_size);
cnn_layer cnn_linear(int64_t in_features, int64_t out_features);
cnn_layer cnn_maxpool2d(int64_t kernel_size);
cnn_layer cnn_avgpool2d(int64_t kernel_size);
cnn_layer cnn_adaptiveavgpool2d(int64_t output_size);
cnn_layer cnn_relu(void);
cnn_layer cnn_sigmoid(void);
cnn_layer cnn_tanh(void);
cnn_layer cnn_flatten(void);
cnn_layer cnn_dropout(double p);
cnn_layer cnn_batchnorm2d(int64_t num_features);
cnn_layer cnn_lrn(int64_t size);
cnn_layer cnn_softmax(int64_t dim);

#ifdef __cplusplus
}
#endif
#endif
