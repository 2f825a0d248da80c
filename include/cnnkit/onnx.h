/* cnnkit/onnx.h - exporting a model to ONNX for ONNX Runtime and Netron.
 *
 * The file is an inference graph: one ONNX node per layer, named by its
 * module path ("net.0") with the layer's PyTorch repr as its doc string;
 * initializers named by the state_dict keys ("net.0.weight"); the graph input
 * "input" and output "output"; every other tensor named by the module path of
 * the layer that produces it, and given a value_info entry with its inferred
 * shape, so Netron shows each edge's shape without running shape inference.
 *
 *   char err[512];
 *   cnn_shape in = cnn_shape_make(4, (int64_t[]){1, 1, 28, 28});
 *   if (cnn_onnx_export(m, &in, 1, "lenet.onnx", err, sizeof err) != CNN_OK)
 *       fprintf(stderr, "%s\n", err);
 *
 * Dropout is left out (the identity in inference); BatchNorm2d uses its
 * running statistics. What ONNX (and ONNX Runtime) cannot compute exactly as
 * PyTorch does is refused with CNN_STATUS_UNSUPPORTED and an error naming the
 * layer, never written approximately: AdaptiveAvgPool2d on an input that is
 * not a multiple of its output size, BatchNorm2d without running statistics,
 * LocalResponseNorm with an even size or a non-4-D input, a few ceil_mode and
 * dilation corner cases of pooling, and Flatten over the batch with a
 * dynamic batch. docs/onnx.md has the op mapping and every limit.
 */
#ifndef CNNKIT_ONNX_H
#define CNNKIT_ONNX_H

#include <stddef.h>

#include "cnnkit/model.h"
#include "cnnkit/status.h"
#include "cnnkit/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The ONNX opset and IR version written. */
#define CNN_ONNX_OPSET      17
#define CNN_ONNX_IR_VERSION 8

/* Writes m, with its current weights, as an ONNX model for an input of the
 * given shape, atomically (a temporary file in path's folder, synced and
 * renamed; nothing is left behind on failure). With dynamic_batch, dimension
 * 0 of every tensor is the symbolic "N" instead of input->dim[0]. m must be
 * finalized; the call runs cnn_model_infer(m, input). On failure returns the
 * status and writes one line into err (which may be NULL). */
cnn_status cnn_onnx_export(cnn_model *m, const cnn_shape *input, int dynamic_batch,
                           const char *path, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif
#endif
