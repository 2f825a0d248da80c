/* cnnkit/cpu.h - which vector instructions cnnkit's own kernels use.
 *
 * The convolution and activation kernels come in three builds inside one
 * library: AVX-512, AVX2 with FMA, and portable C. The best one the CPU has
 * is picked at the first call; the environment variable CNNKIT_SIMD set to
 * "generic", "avx2" or "avx512" caps the choice (to compare them, or to run
 * the portable path's tests on any machine). Matrix products too large for
 * these kernels go to OpenBLAS, which makes its own choice.
 */
#ifndef CNNKIT_CPU_H
#define CNNKIT_CPU_H

#ifdef __cplusplus
extern "C" {
#endif

typedef enum cnn_simd {
    CNN_SIMD_GENERIC,
    CNN_SIMD_AVX2, /* AVX2 and FMA */
    CNN_SIMD_AVX512,
    CNN_SIMD_COUNT
} cnn_simd;

/* The instruction set the kernels use in this process (fixed after the first call). */
cnn_simd cnn_simd_level(void);

/* "generic", "avx2" or "avx512". */
const char *cnn_simd_name(cnn_simd s);

/* The kernels OpenBLAS runs in this process ("Haswell", "SkylakeX",
 * "Cooperlake", ...): its own pick for the CPU, or the environment's
 * OPENBLAS_CORETYPE, which it reads once, when it loads. */
const char *cnn_blas_core(void);

#ifdef __cplusplus
}
#endif

#endif
