/* cnnkit.h - classic convolutional networks in C11, equal to PyTorch.
 *
 * cnnkit defines LeNet, AlexNet and their family from a built-in zoo, prints
 * them exactly as PyTorch's print(model) does, infers and explains every
 * layer's shape, counts parameters and multiply-adds as torchinfo does, and
 * runs them with PyTorch's layer semantics, reading and writing weights as
 * safetensors with PyTorch's state_dict keys.
 *
 * A worked example: LeNet on one image.
 *
 *   #include <cnnkit/cnnkit.h>
 *
 *   cnn_model *m;
 *   if (cnn_zoo_build("lenet", &m) != CNN_OK) return 1;
 *   if (cnn_model_load(m, "lenet.safetensors") != CNN_OK) {   // or cnn_model_init
 *       fprintf(stderr, "%s\n", cnn_model_error(m));
 *       return 1;
 *   }
 *   cnn_tensor x, y;
 *   cnn_shape s = cnn_shape_make(4, (int64_t[]){1, 1, 28, 28});
 *   cnn_tensor_alloc(&x, &s);                 // fill x.data with pixels in [0, 1]
 *   if (cnn_model_forward(m, &x, &y) != CNN_OK) fprintf(stderr, "%s\n", cnn_model_error(m));
 *   // y.shape is [1, 10]: the class scores
 *   cnn_tensor_free(&x);
 *   cnn_tensor_free(&y);
 *   cnn_model_free(m);
 *
 * Conventions: every fallible call returns cnn_status (cnnkit/status.h); the
 * library never exits or prints; the caller owns what it allocates and frees
 * it with the matching *_free. Link with pkg-config's `cnnkit`.
 */
#ifndef CNNKIT_H
#define CNNKIT_H

#include "cnnkit/cpu.h"
#include "cnnkit/data.h"
#include "cnnkit/draw.h"
#include "cnnkit/image.h"
#include "cnnkit/layer.h"
#include "cnnkit/model.h"
#include "cnnkit/modelfile.h"
#include "cnnkit/onnx.h"
#include "cnnkit/rng.h"
#include "cnnkit/safetensors.h"
#include "cnnkit/status.h"
#include "cnnkit/svg.h"
#include "cnnkit/tensor.h"
#include "cnnkit/train.h"
#include "cnnkit/zoo.h"

#endif
