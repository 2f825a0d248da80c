/* simd.c - picks the kernels' instruction set once: the best the CPU has,
 * capped by CNNKIT_SIMD; and names OpenBLAS's. */
#include <cblas.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "simd.h"
#include "util.h"

static const char *const simd_names[] = {"generic", "avx2", "avx512"};
_Static_assert(CNN_COUNT_OF(simd_names) == CNN_SIMD_COUNT, "one name per level");

const char *cnn_simd_name(cnn_simd s) {
    return (unsigned)s < CNN_SIMD_COUNT ? simd_names[s] : "unknown";
}

static cnn_simd detect(void) {
    cnn_simd best = CNN_SIMD_GENERIC;
#if CNN_HAVE_X86_KERNELS
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) best = CNN_SIMD_AVX2;
    if (__builtin_cpu_supports("avx512f")) best = CNN_SIMD_AVX512;
#endif
    const char *want = getenv("CNNKIT_SIMD");
    if (want)
        for (int s = 0; s < CNN_SIMD_COUNT; s++)
            if (strcmp(want, simd_names[s]) == 0 && (cnn_simd)s < best) best = (cnn_simd)s;
    return best;
}

cnn_simd cnn_simd_level(void) {
    static atomic_int level = -1;
    int l = atomic_load_explicit(&level, memory_order_relaxed);
    if (l < 0) {
        l = (int)detect();
        atomic_store_explicit(&level, l, memory_order_relaxed);
    }
    return (cnn_simd)l;
}

const char *cnn_blas_core(void) { return openblas_get_corename(); }
