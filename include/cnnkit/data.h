/* cnnkit/data.h - training data: IDX files, data sets, bilinear resizing and
 * a prefetching batch loader.
 *
 * The default data set is Fashion-MNIST as Debian's dataset-fashion-mnist
 * package installs it; any folder with the four MNIST-layout IDX files
 * (gzip-compressed or not) works the same way, so MNIST does too.
 *
 *   cnn_dataset *train;
 *   char err[512];
 *   if (cnn_dataset_load(cnn_dataset_default_dir(), "train", &train, err, sizeof err) != CNN_OK)
 *       return fprintf(stderr, "%s\n", err), 1;
 *   cnn_loader_config cfg = cnn_loader_config_default();
 *   cfg.batch_size = 256;
 *   cfg.shuffle = true;
 *   cfg.seed = 42;
 *   cnn_loader *ld;
 *   if (cnn_loader_new(train, &cfg, &ld, err, sizeof err) != CNN_OK) ...
 *   for (int epoch = 0; epoch < 10; epoch++) {
 *       cnn_loader_start_epoch(ld, epoch, 0);
 *       cnn_batch b;
 *       while (cnn_loader_next(ld, &b) == CNN_OK && b.count > 0) {
 *           cnn_tensor x = {b.shape, b.x};   // [count, 1, S, S], pixels in [0, 1]
 *           ... forward, loss against b.y, backward, step ...
 *       }
 *   }
 *   cnn_loader_free(ld);
 *   cnn_dataset_free(train);
 *
 * Errors are one line, "PATH: place: problem".
 */
#ifndef CNNKIT_DATA_H
#define CNNKIT_DATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cnnkit/status.h"
#include "cnnkit/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- IDX files ------------------------------------------------------------
 *
 * The format of LeCun's MNIST files: the magic bytes 0x00 0x00 TYPE NDIM,
 * NDIM big-endian uint32 dimensions, then the data, row-major. cnnkit reads
 * TYPE 0x08 (unsigned byte), the only type MNIST-layout data sets use, and up
 * to CNN_IDX_MAX_DIMS dimensions. */

#define CNN_IDX_MAX_DIMS 4

typedef struct cnn_idx {
    int ndim;
    uint32_t dim[CNN_IDX_MAX_DIMS];
    uint8_t *data; /* owned: the product of dim[] bytes; released by cnn_idx_free */
    size_t size;   /* bytes in data */
} cnn_idx;

/* Reads an IDX file, gzip-compressed or plain (zlib tells them apart). The
 * file must hold exactly the bytes its header announces: a short file, bytes
 * after the data, a corrupt gzip stream, a wrong magic, zero or too many
 * dimensions fail with CNN_STATUS_FORMAT, a type other than unsigned byte
 * with CNN_STATUS_UNSUPPORTED, an unreadable file with CNN_STATUS_IO. Memory
 * grows with the data actually read, so a lying header cannot make it
 * allocate more than the file holds (plus at most 1 MiB). On failure *out is
 * empty. */
cnn_status cnn_idx_read(const char *path, cnn_idx *out, char *err, size_t errlen);

/* Releases idx->data and leaves idx empty; NULL is fine. */
void cnn_idx_free(cnn_idx *idx);

/* ---- data sets ------------------------------------------------------------ */

typedef struct cnn_dataset {
    int64_t count;         /* images */
    int64_t height, width; /* every image: one channel, height x width */
    int num_classes;       /* the largest label + 1 (10 for Fashion-MNIST) */
    uint8_t *images;       /* owned: count x height x width, 0 (black) .. 255 (white) */
    uint8_t *labels;       /* owned: count */
} cnn_dataset;

/* "/usr/share/datasets/fashion-mnist", where dataset-fashion-mnist installs. */
const char *cnn_dataset_default_dir(void);

/* Loads split "train" (train-images-idx3-ubyte, train-labels-idx1-ubyte) or
 * "test" (t10k-...) from dir; each file may end in .gz (tried first) or not,
 * and "train-images.idx3-ubyte"-style names are accepted too. Checks that
 * the images are 3-D, the labels 1-D, the counts agree and there is at
 * least one image. A missing folder or file fails with CNN_STATUS_IO and a
 * text that says how to install Fashion-MNIST or use --data. *out is owned
 * by the caller (cnn_dataset_free); NULL on failure. */
cnn_status cnn_dataset_load(const char *dir, const char *split, cnn_dataset **out, char *err,
                            size_t errlen);

/* A data set from memory (tests, tools): copies count x height x width
 * pixels and count labels. */
cnn_status cnn_dataset_new(int64_t count, int64_t height, int64_t width, const uint8_t *images,
                           const uint8_t *labels, cnn_dataset **out);

void cnn_dataset_free(cnn_dataset *ds);

/* Fashion-MNIST's class names as d2l's get_fashion_mnist_labels gives them
 * ("t-shirt", "trouser", ..., "ankle boot"); NULL outside [0, 10). */
const char *cnn_fashion_mnist_class(int i);

/* ---- bilinear resizing ------------------------------------------------------
 *
 * PyTorch's F.interpolate(x, size=(OH, OW), mode='bilinear',
 * align_corners=False, antialias=False) on float32, for every plane of x:
 * scale = (float)in / out; the source coordinate (out_index + 0.5) * scale -
 * 0.5 in double, clamped at 0; i0 its integer part, i1 = i0 + (i0 < in - 1);
 * lambda1 = coordinate - i0 in float, lambda0 = 1 - lambda1; each output is
 * (float)(sum of the four float weights h_lambda * w_lambda times their
 * pixels, in double), which is what PyTorch 1.13's CPU kernel computes for a
 * one-channel [N, 1, H, W] batch: the results are bit-identical. (For C > 1
 * PyTorch takes another kernel whose last bit depends on the CPU's FMA; the
 * two agree within 2e-7.) Downscaling does not antialias, as in PyTorch. As
 * in PyTorch, the four weights need not sum to exactly 1, so between pixels
 * of 1.0 a result may come out an ulp above 1. */

/* src is (C,H,W), dst is (C,OH,OW); all sizes positive. Fails with
 * CNN_STATUS_INVALID_ARGUMENT or CNN_STATUS_NO_MEMORY (a small index table). */
cnn_status cnn_resize_bilinear(const float *src, int64_t C, int64_t H, int64_t W, float *dst,
                               int64_t OH, int64_t OW);

/* ---- the batch loader -------------------------------------------------------
 *
 * A loader turns a data set into batches of NCHW float32 [B, 1, S, S] with
 * pixels x / 255 (torchvision's ToTensor) and int32 labels. Background threads
 * prepare the next batches while the caller computes on the current one.
 *
 * Each image goes through, in this order (each step optional):
 *   1. random resized crop (torchvision RandomResizedCrop(S), scale (0.08, 1),
 *      ratio (3/4, 4/3): up to 10 tries of area fraction U(0.08, 1) and
 *      aspect exp(U(log 3/4, log 4/3)), w = round(sqrt(area * aspect)),
 *      h = round(sqrt(area / aspect)) (round half to even, as Python), kept if
 *      it fits, at top = U{0..H-h}, left = U{0..W-w}; otherwise the centre
 *      crop of the whole image clamped to the ratio range), then bilinear as
 *      above to S x S; without it, bilinear resize to S x S when resize > 0;
 *   2. random crop with zero padding (RandomCrop(S, padding=pad)): top and
 *      left offsets U{0..2*pad} into the zero-padded image;
 *   3. random horizontal flip with probability 1/2.
 * The output is S x S with S = cfg.resize, or the data set's height x width
 * when resize is 0 (then the crops above are resized back to that size).
 *
 * Randomness is a pure function of (seed, epoch, position in the epoch), so a
 * run resumed at (epoch, batch) sees exactly the batches it would have seen,
 * whatever the thread count or timing:
 *   - the epoch's order: cnn_rng_seed(&r, seed, (uint64_t)epoch << 32), then
 *     Fisher-Yates: for i = n-1 down to 1, swap(i, cnn_rng_below(&r, i + 1));
 *     without shuffle, the data set's order;
 *   - the sample at position p of the epoch (batch b, row k: p = b * B + k):
 *     cnn_rng_seed(&r, seed, ((uint64_t)epoch << 32) | (p + 1)), then the draws
 *     of steps 1-3 in order: per try cnn_rng_range(0.08, 1) and
 *     cnn_rng_range(log 3/4, log 4/3), then cnn_rng_below(H - h + 1) and
 *     cnn_rng_below(W - w + 1); then cnn_rng_below(2 * pad + 1) for top and
 *     for left;
 *     then flip when cnn_rng_uniform < 0.5.
 * Epochs are limited to [0, 2^31) and data sets to 2^32 - 2 images. These are
 * cnnkit's PCG32 streams, not torch's generator: the same seed does not give
 * torchvision's choices. */

typedef struct cnn_loader_config {
    int64_t batch_size;       /* > 0; default 256 (d2l's) */
    bool shuffle;             /* a new order every epoch; default false */
    uint64_t seed;            /* default 0 */
    int64_t resize;           /* output S x S; 0 keeps the data set's size (default) */
    bool hflip;               /* random horizontal flip */
    int64_t crop_padding;     /* random crop with this zero padding; 0 = off */
    bool random_resized_crop; /* RandomResizedCrop to the output size */
    bool drop_last;           /* drop a last partial batch; default false (d2l keeps it) */
    int threads;              /* background preparation threads; 0 = prepare in
                                 cnn_loader_next itself; default 1 */
} cnn_loader_config;

/* The defaults above. */
cnn_loader_config cnn_loader_config_default(void);

typedef struct cnn_batch {
    float *x;             /* [count, 1, h, w] NCHW pixels in [0, 1]; the caller may
                             modify them in place */
    const int32_t *y;     /* [count] labels */
    const int64_t *index; /* [count] the samples' indices in the data set */
    cnn_shape shape;      /* {count, 1, h, w} */
    int64_t count;        /* images in the batch; 0 at the end of the epoch */
    int64_t batch;        /* the batch's number within the epoch */
} cnn_batch;

typedef struct cnn_loader cnn_loader;

/* A loader over ds, which must outlive it and not change. Allocates every
 * buffer now (threads + 1 batches and per-thread scratch) and starts the
 * threads; no allocation happens per batch. Fails with
 * CNN_STATUS_INVALID_ARGUMENT on a bad configuration, CNN_STATUS_UNSUPPORTED
 * for images over 65536 pixels a side or over 2^32 - 2 of them, and
 * CNN_STATUS_NO_MEMORY when memory or a thread cannot be had. */
cnn_status cnn_loader_new(const cnn_dataset *ds, const cnn_loader_config *cfg, cnn_loader **out,
                          char *err, size_t errlen);

/* Batches per epoch: ceil(count / B), or floor with drop_last. */
int64_t cnn_loader_num_batches(const cnn_loader *l);

/* The output's height and width (S, or the data set's). */
void cnn_loader_image_size(const cnn_loader *l, int64_t *height, int64_t *width);

/* Starts (or restarts) epoch at batch first_batch (0 <= first_batch <=
 * num_batches): discards whatever was being prepared and begins preparing
 * the epoch's batches. The previous batch becomes invalid. */
cnn_status cnn_loader_start_epoch(cnn_loader *l, int epoch, int64_t first_batch);

/* The next batch of the epoch, waiting for it if it is not ready. *out stays
 * valid until the next cnn_loader_next, cnn_loader_start_epoch or
 * cnn_loader_free. At the end of the epoch it returns CNN_OK with
 * out->count == 0. CNN_STATUS_INVALID_ARGUMENT before any start_epoch. */
cnn_status cnn_loader_next(cnn_loader *l, cnn_batch *out);

/* Stops the threads and releases everything; NULL is fine. */
void cnn_loader_free(cnn_loader *l);

#ifdef __cplusplus
}
#endif
#endif
