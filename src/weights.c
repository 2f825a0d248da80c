/* weights.c - a model's state_dict to and from safetensors, with the checks
 * of PyTorch's strict load_state_dict. */
#include <string.h>

#include "cnnkit/safetensors.h"
#include "model_impl.h"

static void shape_text(cnn_sb *sb, const cnn_shape *s) {
    char buf[128];
    cnn_shape_format(buf, sizeof buf, s);
    cnn_sb_puts(sb, buf);
}

/* Appends "label: a, b" to sb for a list of names, with the separator "; ". */
static void list_start(cnn_sb *sb, bool *first_in_list, const char *label) {
    if (*first_in_list) {
        if (sb->len) cnn_sb_puts(sb, "; ");
        cnn_sb_printf(sb, "%s: ", label);
        *first_in_list = false;
    } else {
        cnn_sb_puts(sb, ", ");
    }
}

/* Loads the state_dict held in st (read from path). Keys starting with
 * skip_prefix (a checkpoint's optimizer state) are not the model's and are
 * neither loaded nor unexpected. */
static cnn_status load_state(cnn_model *m, const cnn_st_file *st, const char *path,
                             const char *skip_prefix) {
    cnn_status s = CNN_OK;
    /* Check everything first, so a failed load leaves the model unchanged. */
    cnn_sb problems = {0};
    bool first = true;
    for (int i = 0; i < m->n_params; i++) {
        if (!cnn_st_find(st, m->params[i].name)) {
            list_start(&problems, &first, "missing keys");
            cnn_sb_puts(&problems, m->params[i].name);
        }
    }
    first = true;
    for (int i = 0; i < cnn_st_count(st); i++) {
        const char *name = cnn_st_get(st, i)->name;
        if (skip_prefix && strncmp(name, skip_prefix, strlen(skip_prefix)) == 0) continue;
        bool known = false;
        for (int j = 0; j < m->n_params && !known; j++)
            known = !strcmp(m->params[j].name, name);
        if (!known) {
            list_start(&problems, &first, "unexpected keys");
            cnn_sb_puts(&problems, name);
        }
    }
    for (int i = 0; i < m->n_params; i++) {
        const cnn_param *p = &m->params[i];
        const cnn_st_entry *e = cnn_st_find(st, p->name);
        if (!e) continue;
        const bool counter = p->slot == CNN_SLOT_NUM_BATCHES;
        if (!cnn_shape_equal(&e->shape, &p->shape)) {
            if (problems.len) cnn_sb_puts(&problems, "; ");
            cnn_sb_printf(&problems, "size mismatch for %s: the file has ", p->name);
            shape_text(&problems, &e->shape);
            cnn_sb_puts(&problems, ", the model needs ");
            shape_text(&problems, &p->shape);
        } else if (counter != (e->dtype == CNN_DTYPE_I64)) {
            if (problems.len) cnn_sb_puts(&problems, "; ");
            cnn_sb_printf(&problems, "dtype mismatch for %s: the file has %s, the model needs %s",
                          p->name, cnn_dtype_name(e->dtype), counter ? "I64" : "a float dtype");
        }
    }
    if (problems.oom) {
        s = cnn_model_fail(m, CNN_STATUS_NO_MEMORY, "%s: out of memory", path);
    } else if (problems.len) {
        s = cnn_model_fail(m, CNN_STATUS_MISMATCH, "%s: error loading state_dict for %s: %s", path,
                           m->mods[0].type, problems.buf);
    } else {
        for (int i = 0; i < m->n_params; i++) {
            const cnn_param *p = &m->params[i];
            const cnn_st_entry *e = cnn_st_find(st, p->name);
            if (p->slot == CNN_SLOT_NUM_BATCHES)
                memcpy(m->ibuf + p->offset, e->i64, p->numel * sizeof(int64_t));
            else
                memcpy(m->pbuf + p->offset, e->f32, p->numel * sizeof(float));
        }
    }
    cnn_sb_free(&problems);
    return s;
}

cnn_status cnn_model_load(cnn_model *m, const char *path) {
    m->err[0] = 0;
    if (!m->finalized) {
        cnn_status s = cnn_model_finalize(m);
        if (s != CNN_OK) return s;
    }
    cnn_st_file *st;
    cnn_status s = cnn_st_read(path, &st, m->err, sizeof m->err);
    if (s != CNN_OK) return s;
    s = load_state(m, st, path, NULL);
    cnn_st_free(st);
    return s;
}

cnn_status cnn_model_load_st(cnn_model *m, const cnn_st_file *st, const char *path,
                             const char *skip_prefix) {
    m->err[0] = 0;
    if (!m->finalized) {
        cnn_status s = cnn_model_finalize(m);
        if (s != CNN_OK) return s;
    }
    return load_state(m, st, path, skip_prefix);
}

cnn_status cnn_model_add_state(cnn_model *m, cnn_st_file *st) {
    cnn_status s = m->finalized ? CNN_OK : cnn_model_finalize(m);
    for (int i = 0; i < m->n_params && s == CNN_OK; i++) {
        const cnn_param *p = &m->params[i];
        if (p->slot == CNN_SLOT_NUM_BATCHES)
            s = cnn_st_add_i64(st, p->name, &p->shape, m->ibuf + p->offset);
        else
            s = cnn_st_add_f32(st, p->name, &p->shape, m->pbuf + p->offset);
    }
    return s;
}

cnn_status cnn_model_save(cnn_model *m, const char *path, const char *const *metadata) {
    m->err[0] = 0;
    if (!m->finalized) {
        cnn_status s = cnn_model_finalize(m);
        if (s != CNN_OK) return s;
    }
    cnn_st_file *st = cnn_st_new();
    if (!st) return cnn_model_fail(m, CNN_STATUS_NO_MEMORY, "%s: out of memory", path);
    cnn_status s = cnn_model_add_state(m, st);
    for (int i = 0; metadata && metadata[i] && s == CNN_OK; i += 2)
        s = cnn_st_set_metadata(st, metadata[i], metadata[i + 1] ? metadata[i + 1] : "");
    if (s != CNN_OK)
        cnn_model_fail(m, s, "%s: cannot prepare the state_dict: %s", path, cnn_status_str(s));
    else
        s = cnn_st_write(st, path, m->err, sizeof m->err);
    cnn_st_free(st);
    return s;
}
