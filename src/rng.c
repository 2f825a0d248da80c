/* rng.c - PCG32 (XSH-RR, 64-bit state), as described in cnnkit/rng.h. */
#include "cnnkit/rng.h"

void cnn_rng_seed(cnn_rng *r, uint64_t seed, uint64_t stream) {
    r->state = 0;
    r->inc = (stream << 1) | 1u;
    cnn_rng_u32(r);
    r->state += seed;
    cnn_rng_u32(r);
}

#define PCG_MULT 6364136223846793005ULL

uint32_t cnn_rng_u32(cnn_rng *r) {
    uint64_t old = r->state;
    r->state = old * PCG_MULT + r->inc;
    uint32_t xorshifted = (uint32_t)(((old >> 18) ^ old) >> 27);
    uint32_t rot = (uint32_t)(old >> 59);
    return (xorshifted >> rot) | (xorshifted << ((32 - rot) & 31));
}

float cnn_rng_uniform(cnn_rng *r) { return (float)(cnn_rng_u32(r) >> 8) * (1.0f / 16777216.0f); }

float cnn_rng_range(cnn_rng *r, float lo, float hi) { return lo + (hi - lo) * cnn_rng_uniform(r); }

uint32_t cnn_rng_below(cnn_rng *r, uint32_t n) {
    uint32_t threshold = (uint32_t)(-n) % n; /* 2^32 mod n: reject below it */
    for (;;) {
        uint32_t x = cnn_rng_u32(r);
        if (x >= threshold) return x % n;
    }
}

/* delta steps of state = state * mult + inc as one affine map, composed
 * from the maps of 1, 2, 4, ... steps (Brown, "Random Number Generation
 * with Arbitrary Strides", 1994), as pcg32_advance does. */
void cnn_rng_advance(cnn_rng *r, uint64_t delta) {
    uint64_t mult = PCG_MULT, plus = r->inc, acc_mult = 1, acc_plus = 0;
    for (; delta; delta >>= 1) {
        if (delta & 1) {
            acc_mult *= mult;
            acc_plus = acc_plus * mult + plus;
        }
        plus *= mult + 1;
        mult *= mult;
    }
    r->state = acc_mult * r->state + acc_plus;
}
