/* cnnkit/rng.h - the seeded random number generator behind every random choice.
 *
 * PCG32 (M. E. O'Neill, "PCG: A Family of Simple Fast Space-Efficient
 * Statistically Good Algorithms for Random Number Generation", 2014), the
 * XSH-RR variant with 64-bit state: state = state * 6364136223846793005 + inc,
 * output = rotr32(((state >> 18) ^ state) >> 27, state >> 59). A seed fixes the
 * whole stream on every platform, so results are reproducible across machines.
 * It is not PyTorch's generator: the same seed gives different numbers than
 * torch.manual_seed.
 */
#ifndef CNNKIT_RNG_H
#define CNNKIT_RNG_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cnn_rng {
    uint64_t state, inc;
} cnn_rng;

/* Seeds the generator; stream selects one of 2^63 independent sequences. */
void cnn_rng_seed(cnn_rng *r, uint64_t seed, uint64_t stream);
/* The next 32 random bits. */
uint32_t cnn_rng_u32(cnn_rng *r);
/* Uniform in [0, 1), 24 random bits: exact in float32. */
float cnn_rng_uniform(cnn_rng *r);
/* Uniform in [lo, hi). */
float cnn_rng_range(cnn_rng *r, float lo, float hi);
/* Uniform integer in [0, n), without modulo bias; n > 0. */
uint32_t cnn_rng_below(cnn_rng *r, uint32_t n);
/* Skips delta outputs of cnn_rng_u32 in O(log delta) steps (PCG's jump
 * ahead), so threads can each draw their own part of one stream. */
void cnn_rng_advance(cnn_rng *r, uint64_t delta);

#ifdef __cplusplus
}
#endif
#endif
