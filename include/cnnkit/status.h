/* cnnkit/status.h - status codes returned by every fallible cnnkit call.
 *
 * The library never exits and never prints. A call that fails returns a
 * status other than CNN_OK and, where it has somewhere to put one, fills an
 * error text that names the file, the layer or the place and the problem.
 */
#ifndef CNNKIT_STATUS_H
#define CNNKIT_STATUS_H

#ifdef __cplusplus
extern "C" {
#endif

typedef enum cnn_status {
    CNN_OK = 0,
    CNN_STATUS_INVALID_ARGUMENT, /* a bad attribute, name or call order */
    CNN_STATUS_SHAPE,            /* shape inference rejected the input */
    CNN_STATUS_NO_MEMORY,        /* allocation failed or a size overflowed */
    CNN_STATUS_IO,               /* a file could not be opened, read or written */
    CNN_STATUS_FORMAT,           /* a file is corrupt or not what it claims */
    CNN_STATUS_MISMATCH,         /* weights do not fit the model */
    CNN_STATUS_UNSUPPORTED,      /* valid, but not something cnnkit does */
    CNN_STATUS_COUNT
} cnn_status;

/* A short English name for a status ("shape error"); never NULL. */
const char *cnn_status_str(cnn_status s);

#ifdef __cplusplus
}
#endif
#endif
