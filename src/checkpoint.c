/* checkpoint.c - model and optimizer state in one safetensors file. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cnnkit/safetensors.h"
#include "cnnkit/train.h"
#include "util.h"

#define OPTIM_PREFIX "optim."

cnn_status cnn_checkpoint_save(cnn_model *m, cnn_optim *o, const char *const *metadata,
                               const char *path, char *err, size_t errlen) {
    cnn_st_file *st = cnn_st_new();
    if (!st) return cnn_fail(CNN_STATUS_NO_MEMORY, err, errlen, "%s: out of memory", path);
    cnn_status s = cnn_model_add_state(m, st);
    char name[64], steps[32];
    for (int i = 0; o && i < cnn_optim_num_states(o) && s == CNN_OK; i++) {
        size_t n;
        float *buf = cnn_optim_state(o, i, &n);
        snprintf(name, sizeof name, OPTIM_PREFIX "%s", cnn_optim_state_name(o, i));
        cnn_shape shape = cnn_shape_make(1, (int64_t[]){(int64_t)n});
        s = cnn_st_add_f32(st, name, &shape, buf);
    }
    snprintf(steps, sizeof steps, "%" PRId64, o ? cnn_optim_steps(o) : 0);
    if (s == CNN_OK) s = cnn_st_set_metadata(st, "format", "cnnkit-checkpoint/1");
    if (s == CNN_OK) s = cnn_st_set_metadata(st, "optim_steps", steps);
    for (int i = 0; metadata && metadata[i] && s == CNN_OK; i += 2)
        s = cnn_st_set_metadata(st, metadata[i], metadata[i + 1] ? metadata[i + 1] : "");
    if (s != CNN_OK)
        cnn_fail(s, err, errlen, "%s: cannot prepare the checkpoint: %s", path, cnn_status_str(s));
    else
        s = cnn_st_write(st, path, err, errlen);
    cnn_st_free(st);
    return s;
}

cnn_status cnn_checkpoint_load(cnn_model *m, cnn_optim *o, const cnn_st_file *st, const char *path,
                               char *err, size_t errlen) {
    const char *format = cnn_st_metadata(st, "format");
    if (!format || strcmp(format, "cnnkit-checkpoint/1") != 0)
        return cnn_fail(CNN_STATUS_FORMAT, err, errlen,
                        "%s: not a cnnkit checkpoint (metadata 'format' is %s)", path,
                        format ? format : "missing");
    /* The optimizer's state is checked before anything is changed. */
    for (int i = 0; o && i < cnn_optim_num_states(o); i++) {
        char name[64];
        size_t n;
        cnn_optim_state(o, i, &n);
        snprintf(name, sizeof name, OPTIM_PREFIX "%s", cnn_optim_state_name(o, i));
        const cnn_st_entry *e = cnn_st_find(st, name);
        if (!e || !e->f32 || e->numel != n)
            return cnn_fail(CNN_STATUS_MISMATCH, err, errlen,
                            "%s: %s: the checkpoint has no float tensor of %zu values for this "
                            "optimizer (was it written with another --optim or --momentum?)",
                            path, name, n);
    }
    const char *steps = cnn_st_metadata(st, "optim_steps");
    char *end = NULL;
    long long nsteps = steps ? strtoll(steps, &end, 10) : -1;
    if (!steps || *end || nsteps < 0)
        return cnn_fail(CNN_STATUS_FORMAT, err, errlen, "%s: metadata 'optim_steps' is invalid",
                        path);
    cnn_status s = cnn_model_load_st(m, st, path, OPTIM_PREFIX);
    if (s != CNN_OK) return cnn_fail(s, err, errlen, "%s", cnn_model_error(m));
    for (int i = 0; o && i < cnn_optim_num_states(o); i++) {
        char name[64];
        size_t n;
        float *buf = cnn_optim_state(o, i, &n);
        snprintf(name, sizeof name, OPTIM_PREFIX "%s", cnn_optim_state_name(o, i));
        memcpy(buf, cnn_st_find(st, name)->f32, n * sizeof(float));
    }
    if (o) cnn_optim_set_steps(o, nsteps);
    return CNN_OK;
}
