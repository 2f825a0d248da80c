/* cnnkit/modelfile.h - models read from text in PyTorch's own syntax.
 *
 * Two formats, told apart by their content:
 *
 *   repr  what print(model) shows:       code  the Python that defines it:
 *
 *   LeNet(                                class LeNet(nn.Module):
 *     (net): Sequential(                      def __init__(self):
 *       (0): Conv2d(1, 6, kernel_size=...)        super().__init__()
 *       (1): Sigmoid()                            self.net = nn.Sequential(
 *       ...                                           nn.Conv2d(1, 6, kernel_size=5, padding=2),
 *     )                                               nn.Sigmoid(), ...)
 *   )
 *
 * A text whose first statement is `class`, `import`, `from`, `def`, a
 * string, `nn.`/`torch.nn.` or `NAME =` is code; `NAME(` followed by a line
 * break, `)` or a `(name):` child is a printed model. Anything else is read as
 * the file name says (.py is code), else as a printed model.
 *
 * Children run in the order they are printed or assigned, which is how
 * Sequential runs and how the zoo and torchvision-style `features` /
 * `classifier` models run; a class's forward() is not read. docs/model-files.md
 * has the supported subset, with examples.
 *
 * Errors are compiler-style, three lines:
 *
 *   model.py:6:42: expected ',' or ')' to close 'nn.AvgPool2d(' opened at 6:5
 *       nn.AvgPool2d(kernel_size=2, stride=2 nn.Sigmoid(),
 *                                            ^
 *
 * and every layer of the model remembers where it was defined, so shape
 * errors start with "model.py:LINE:COL: ".
 */
#ifndef CNNKIT_MODELFILE_H
#define CNNKIT_MODELFILE_H

#include <stddef.h>

#include "cnnkit/model.h"
#include "cnnkit/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Files larger than this are refused before they are read. */
#define CNN_MODELFILE_MAX_BYTES (16u << 20)

/* Parses a model from text[0..len) (no NUL needed; a NUL byte is an error).
 * filename names the text in error messages. On success *out is a finalized
 * model (parameters zero, see cnn_model_init / cnn_model_load) that the
 * caller frees with cnn_model_free. On failure *out is NULL, err gets
 * "FILE:LINE:COL: message", the source line and a caret line (no final
 * newline), and the status is CNN_STATUS_FORMAT for syntax errors,
 * CNN_STATUS_UNSUPPORTED for valid PyTorch that cnnkit does not read,
 * CNN_STATUS_INVALID_ARGUMENT for bad layer arguments, or
 * CNN_STATUS_NO_MEMORY. */
cnn_status cnn_model_parse(const char *text, size_t len, const char *filename, cnn_model **out,
                           char *err, size_t errlen);

/* Reads the file at path (at most CNN_MODELFILE_MAX_BYTES) and parses it as
 * above, with path as given in error texts. A file that cannot be read fails
 * with CNN_STATUS_IO and "PATH: reason". */
cnn_status cnn_model_read_file(const char *path, cnn_model **out, char *err, size_t errlen);

/* Chooses an input shape for a model that comes without one: [1, in_features]
 * when the first layer is Linear; otherwise the first square size of 28, 32,
 * 64, 96, 224, 227 and 256 that shape inference accepts, batch 1, with the
 * channels of the first Conv2d or BatchNorm2d (1 and then 3 when there is
 * none). The model is left inferred for *out. CNN_STATUS_SHAPE when no size
 * fits, with the reason for the first size tried in cnn_model_error(m). */
cnn_status cnn_model_guess_input(cnn_model *m, cnn_shape *out);

#ifdef __cplusplus
}
#endif
#endif
