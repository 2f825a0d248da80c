/* loader.c - batches from a data set, prepared ahead by background threads.
 *
 * The loader owns threads + 1 batch slots. Batch b always goes to slot
 * b % nslots, so a worker may start batch b only once the caller has given
 * back batch b - nslots; the caller holds one slot, the workers fill the
 * rest. Every random choice is drawn from a generator seeded from (seed,
 * epoch, position) alone (see cnnkit/data.h), so the bytes of a batch do not
 * depend on which thread made it or when. The epoch's order and number are
 * written only while no worker is busy and the loader is inactive; workers
 * read them after taking a job under the mutex. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "cnnkit/data.h"
#include "cnnkit/rng.h"
#include "transform.h"
#include "util.h"

#define LOADER_MAX_SIDE    65536 /* image sides, in and out */
#define LOADER_MAX_THREADS 64

enum { SLOT_FREE, SLOT_BUSY, SLOT_READY };

typedef struct slot {
    float *x;
    int32_t *y;
    int64_t *index;
    int64_t batch, count;
    int state;
} slot;

typedef struct worker {
    cnn_loader *l;
    pthread_t thread;
    bool started;
    cnn_transform_scratch scratch;
} worker;

struct cnn_loader {
    const cnn_dataset *ds;
    cnn_loader_config cfg;
    cnn_transform tf;
    int64_t nbatches;
    size_t plane; /* output floats per image */
    int64_t *order;

    slot *slots;
    int nslots;
    worker *workers; /* cfg.threads of them; with 0 threads one for the caller's use */
    int nworkers;

    pthread_mutex_t mu;
    pthread_cond_t work_cv;  /* a slot was freed, an epoch started, or quit */
    pthread_cond_t ready_cv; /* a slot became ready (and a worker went idle) */
    bool sync_ok;            /* mu and the condition variables were initialised */
    bool quit, active, started;
    int epoch;
    int64_t next_job, next_out;
    int held; /* the slot the caller holds, or -1 */
    int busy; /* workers filling a slot */
};

cnn_loader_config cnn_loader_config_default(void) {
    return (cnn_loader_config){.batch_size = 256, .threads = 1};
}

int64_t cnn_loader_num_batches(const cnn_loader *l) { return l->nbatches; }

void cnn_loader_image_size(const cnn_loader *l, int64_t *height, int64_t *width) {
    *height = l->tf.oh;
    *width = l->tf.ow;
}

static void fill(const cnn_loader *l, slot *s, int64_t b, int epoch,
                 cnn_transform_scratch *scratch) {
    const cnn_dataset *ds = l->ds;
    const int64_t bs = l->cfg.batch_size, start = b * bs;
    const int64_t count = ds->count - start < bs ? ds->count - start : bs;
    const size_t in_plane = (size_t)ds->height * (size_t)ds->width;
    for (int64_t k = 0; k < count; k++) {
        const int64_t p = start + k, i = l->order[p];
        cnn_rng r;
        cnn_rng_seed(&r, l->cfg.seed, (uint64_t)epoch << 32 | (uint64_t)(p + 1));
        cnn_transform_apply(&l->tf, scratch, ds->images + (size_t)i * in_plane, &r,
                            s->x + (size_t)k * l->plane);
        s->y[k] = ds->labels[i];
        s->index[k] = i;
    }
    s->count = count;
}

static void *work(void *arg) {
    worker *w = arg;
    cnn_loader *l = w->l;
    pthread_mutex_lock(&l->mu);
    for (;;) {
        while (!l->quit && !(l->active && l->next_job < l->nbatches &&
                             l->slots[l->next_job % l->nslots].state == SLOT_FREE))
            pthread_cond_wait(&l->work_cv, &l->mu);
        if (l->quit) break;
        int64_t b = l->next_job++;
        slot *s = &l->slots[b % l->nslots];
        s->state = SLOT_BUSY;
        s->batch = b;
        l->busy++;
        int epoch = l->epoch;
        pthread_mutex_unlock(&l->mu);
        fill(l, s, b, epoch, &w->scratch);
        pthread_mutex_lock(&l->mu);
        s->state = SLOT_READY;
        l->busy--;
        pthread_cond_broadcast(&l->ready_cv);
    }
    pthread_mutex_unlock(&l->mu);
    return NULL;
}

static cnn_status check_config(const cnn_dataset *ds, const cnn_loader_config *c, char *err,
                               size_t errlen) {
    if (!ds || ds->count <= 0 || ds->height <= 0 || ds->width <= 0 || !ds->images || !ds->labels)
        return cnn_fail(CNN_STATUS_INVALID_ARGUMENT, err, errlen, "loader: empty data set");
    if ((uint64_t)ds->count > UINT32_MAX - 1)
        return cnn_fail(CNN_STATUS_UNSUPPORTED, err, errlen, "loader: %lld images, at most %lu",
                        (long long)ds->count, (unsigned long)(UINT32_MAX - 1));
    if (ds->height > LOADER_MAX_SIDE || ds->width > LOADER_MAX_SIDE)
        return cnn_fail(CNN_STATUS_UNSUPPORTED, err, errlen,
                        "loader: images of %lldx%lld, at most %d per side", (long long)ds->height,
                        (long long)ds->width, LOADER_MAX_SIDE);
    if (c->batch_size <= 0)
        return cnn_fail(CNN_STATUS_INVALID_ARGUMENT, err, errlen,
                        "loader: batch size %lld, must be positive", (long long)c->batch_size);
    if (c->resize < 0 || c->resize > LOADER_MAX_SIDE)
        return cnn_fail(CNN_STATUS_INVALID_ARGUMENT, err, errlen,
                        "loader: resize %lld, must be in [0, %d] (0: keep the size)",
                        (long long)c->resize, LOADER_MAX_SIDE);
    if (c->crop_padding < 0 || c->crop_padding > LOADER_MAX_SIDE)
        return cnn_fail(CNN_STATUS_INVALID_ARGUMENT, err, errlen,
                        "loader: crop padding %lld, must be in [0, %d]", (long long)c->crop_padding,
                        LOADER_MAX_SIDE);
    if (c->threads < 0 || c->threads > LOADER_MAX_THREADS)
        return cnn_fail(CNN_STATUS_INVALID_ARGUMENT, err, errlen,
                        "loader: %d threads, must be in [0, %d]", c->threads, LOADER_MAX_THREADS);
    return CNN_OK;
}

static cnn_status alloc_buffers(cnn_loader *l, char *err, size_t errlen) {
    const int64_t bs = l->cfg.batch_size < l->ds->count ? l->cfg.batch_size : l->ds->count;
    size_t xn;
    if (!cnn_mul_size(l->plane, (size_t)bs, &xn) || !cnn_mul_size(xn, sizeof(float), &xn))
        return cnn_fail(CNN_STATUS_NO_MEMORY, err, errlen, "loader: batch too large");
    l->order = malloc((size_t)l->ds->count * sizeof *l->order);
    l->slots = calloc((size_t)l->nslots, sizeof *l->slots);
    l->workers = calloc((size_t)l->nworkers, sizeof *l->workers);
    if (!l->order || !l->slots || !l->workers) goto oom;
    for (int i = 0; i < l->nslots; i++) {
        slot *s = &l->slots[i];
        s->x = malloc(xn);
        s->y = malloc((size_t)bs * sizeof *s->y);
        s->index = malloc((size_t)bs * sizeof *s->index);
        if (!s->x || !s->y || !s->index) goto oom;
    }
    for (int i = 0; i < l->nworkers; i++) {
        l->workers[i].l = l;
        if (!cnn_transform_scratch_init(&l->workers[i].scratch, &l->tf)) goto oom;
    }
    return CNN_OK;
oom:
    return cnn_fail(CNN_STATUS_NO_MEMORY, err, errlen,
                    "loader: out of memory for %d batches of %lld images", l->nslots,
                    (long long)bs);
}

static cnn_status start_threads(cnn_loader *l, char *err, size_t errlen) {
    if (pthread_mutex_init(&l->mu, NULL) != 0) goto fail;
    if (pthread_cond_init(&l->work_cv, NULL) != 0) {
        pthread_mutex_destroy(&l->mu);
        goto fail;
    }
    if (pthread_cond_init(&l->ready_cv, NULL) != 0) {
        pthread_cond_destroy(&l->work_cv);
        pthread_mutex_destroy(&l->mu);
        goto fail;
    }
    l->sync_ok = true;
    for (int i = 0; i < l->cfg.threads; i++) {
        int e = pthread_create(&l->workers[i].thread, NULL, work, &l->workers[i]);
        if (e != 0)
            return cnn_fail(CNN_STATUS_NO_MEMORY, err, errlen,
                            "loader: cannot start a preparation thread: %s", strerror(e));
        l->workers[i].started = true;
    }
    return CNN_OK;
fail:
    return cnn_fail(CNN_STATUS_NO_MEMORY, err, errlen, "loader: cannot create a mutex");
}

cnn_status cnn_loader_new(const cnn_dataset *ds, const cnn_loader_config *cfg, cnn_loader **out,
                          char *err, size_t errlen) {
    CNN_ASSERT(cfg && out);
    *out = NULL;
    cnn_status s = check_config(ds, cfg, err, errlen);
    if (s != CNN_OK) return s;
    cnn_loader *l = calloc(1, sizeof *l);
    if (!l) return cnn_fail(CNN_STATUS_NO_MEMORY, err, errlen, "loader: out of memory");
    l->ds = ds;
    l->cfg = *cfg;
    l->held = -1;
    l->nbatches = cfg->drop_last ? ds->count / cfg->batch_size
                                 : (ds->count + cfg->batch_size - 1) / cfg->batch_size;
    int64_t oh = cfg->resize ? cfg->resize : ds->height, ow = cfg->resize ? cfg->resize : ds->width;
    l->plane = (size_t)oh * (size_t)ow;
    l->nslots = cfg->threads + 1;
    l->nworkers = cfg->threads > 0 ? cfg->threads : 1;
    if (!cnn_transform_init(&l->tf, ds->height, ds->width, oh, ow, cfg->random_resized_crop,
                            cfg->crop_padding, cfg->hflip))
        s = cnn_fail(CNN_STATUS_NO_MEMORY, err, errlen, "loader: out of memory");
    if (s == CNN_OK) s = alloc_buffers(l, err, errlen);
    if (s == CNN_OK && cfg->threads > 0) s = start_threads(l, err, errlen);
    if (s != CNN_OK) {
        cnn_loader_free(l);
        return s;
    }
    *out = l;
    return CNN_OK;
}

/* Waits until no worker is filling a slot and stops new jobs. Needs mu. */
static void quiesce(cnn_loader *l) {
    l->active = false;
    while (l->busy > 0)
        pthread_cond_wait(&l->ready_cv, &l->mu);
    for (int i = 0; i < l->nslots; i++)
        l->slots[i].state = SLOT_FREE;
    l->held = -1;
}

static void make_order(cnn_loader *l, int epoch) {
    const int64_t n = l->ds->count;
    for (int64_t i = 0; i < n; i++)
        l->order[i] = i;
    if (!l->cfg.shuffle) return;
    cnn_rng r;
    cnn_rng_seed(&r, l->cfg.seed, (uint64_t)epoch << 32);
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = cnn_rng_below(&r, (uint32_t)(i + 1));
        int64_t t = l->order[i];
        l->order[i] = l->order[j];
        l->order[j] = t;
    }
}

cnn_status cnn_loader_start_epoch(cnn_loader *l, int epoch, int64_t first_batch) {
    CNN_ASSERT(l);
    if (epoch < 0 || first_batch < 0 || first_batch > l->nbatches)
        return CNN_STATUS_INVALID_ARGUMENT;
    const bool threaded = l->cfg.threads > 0;
    if (threaded) {
        pthread_mutex_lock(&l->mu);
        quiesce(l);
        pthread_mutex_unlock(&l->mu);
    }
    make_order(l, epoch);
    if (threaded) pthread_mutex_lock(&l->mu);
    l->epoch = epoch;
    l->next_job = l->next_out = first_batch;
    l->held = -1;
    l->started = l->active = true;
    if (threaded) {
        pthread_cond_broadcast(&l->work_cv);
        pthread_mutex_unlock(&l->mu);
    }
    return CNN_OK;
}

static void describe(const cnn_loader *l, const slot *s, cnn_batch *out) {
    out->x = s->x;
    out->y = s->y;
    out->index = s->index;
    out->count = s->count;
    out->batch = s->batch;
    out->shape = cnn_shape_make(4, (int64_t[]){s->count, 1, l->tf.oh, l->tf.ow});
}

cnn_status cnn_loader_next(cnn_loader *l, cnn_batch *out) {
    CNN_ASSERT(l && out);
    memset(out, 0, sizeof *out);
    if (l->cfg.threads == 0) {
        if (!l->started) return CNN_STATUS_INVALID_ARGUMENT;
        if (l->next_out >= l->nbatches) return CNN_OK;
        slot *s = &l->slots[0];
        s->batch = l->next_out++;
        fill(l, s, s->batch, l->epoch, &l->workers[0].scratch);
        describe(l, s, out);
        return CNN_OK;
    }
    pthread_mutex_lock(&l->mu);
    if (!l->started) {
        pthread_mutex_unlock(&l->mu);
        return CNN_STATUS_INVALID_ARGUMENT;
    }
    if (l->held >= 0) {
        l->slots[l->held].state = SLOT_FREE;
        l->held = -1;
        pthread_cond_broadcast(&l->work_cv);
    }
    if (l->next_out >= l->nbatches) {
        pthread_mutex_unlock(&l->mu);
        return CNN_OK;
    }
    int64_t b = l->next_out++;
    int i = (int)(b % l->nslots);
    slot *s = &l->slots[i];
    while (!(s->state == SLOT_READY && s->batch == b))
        pthread_cond_wait(&l->ready_cv, &l->mu);
    l->held = i;
    describe(l, s, out);
    pthread_mutex_unlock(&l->mu);
    return CNN_OK;
}

void cnn_loader_free(cnn_loader *l) {
    if (!l) return;
    if (l->sync_ok) {
        pthread_mutex_lock(&l->mu);
        l->quit = true;
        pthread_cond_broadcast(&l->work_cv);
        pthread_mutex_unlock(&l->mu);
        for (int i = 0; i < l->nworkers; i++)
            if (l->workers[i].started) pthread_join(l->workers[i].thread, NULL);
        pthread_cond_destroy(&l->ready_cv);
        pthread_cond_destroy(&l->work_cv);
        pthread_mutex_destroy(&l->mu);
    }
    for (int i = 0; l->workers && i < l->nworkers; i++)
        cnn_transform_scratch_free(&l->workers[i].scratch);
    for (int i = 0; l->slots && i < l->nslots; i++) {
        free(l->slots[i].x);
        free(l->slots[i].y);
        free(l->slots[i].index);
    }
    free(l->workers);
    free(l->slots);
    free(l->order);
    cnn_transform_free(&l->tf);
    free(l);
}
