/* peak.c - the machine's FP32 FMA peak: twelve independent FMA chains in
 * registers on every thread (enough to cover the FMA latency on two pipes),
 * in the widest vectors the CPU has (AVX-512 where present, as OpenBLAS uses
 * it there, else AVX2), so the bench can report a fraction of what the cores
 * can do. Built by bench/run.sh with -O2 -march=native -fopenmp. Prints GFLOP/s. */
#include <immintrin.h>
#include <omp.h>
#include <stdio.h>

#ifdef __AVX512F__
#define __m256 __m512
#define _mm256_fmadd_ps _mm512_fmadd_ps
#define _mm256_set1_ps _mm512_set1_ps
#define _mm256_add_ps _mm512_add_ps
#define _mm256_storeu_ps _mm512_storeu_ps
#define LANES 16
#else
#define LANES 8
#endif

#define FMA12(b, c)                                                                                \
    a0 = _mm256_fmadd_ps(a0, b, c), a1 = _mm256_fmadd_ps(a1, b, c),                               \
    a2 = _mm256_fmadd_ps(a2, b, c), a3 = _mm256_fmadd_ps(a3, b, c),                               \
    a4 = _mm256_fmadd_ps(a4, b, c), a5 = _mm256_fmadd_ps(a5, b, c),                               \
    a6 = _mm256_fmadd_ps(a6, b, c), a7 = _mm256_fmadd_ps(a7, b, c),                               \
    a8 = _mm256_fmadd_ps(a8, b, c), a9 = _mm256_fmadd_ps(a9, b, c),                               \
    a10 = _mm256_fmadd_ps(a10, b, c), a11 = _mm256_fmadd_ps(a11, b, c)

int main(void) {
    const long iters = 50000000L;
    double best = 0.0;
    for (int rep = 0; rep < 3; rep++) {
        double t0 = omp_get_wtime();
        float sink = 0.0f;
#pragma omp parallel reduction(+ : sink)
        {
            const __m256 b = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-7f);
            __m256 a0 = _mm256_set1_ps(0), a1 = _mm256_set1_ps(1), a2 = _mm256_set1_ps(2),
                   a3 = _mm256_set1_ps(3), a4 = _mm256_set1_ps(4), a5 = _mm256_set1_ps(5),
                   a6 = _mm256_set1_ps(6), a7 = _mm256_set1_ps(7), a8 = _mm256_set1_ps(8),
                   a9 = _mm256_set1_ps(9), a10 = _mm256_set1_ps(10), a11 = _mm256_set1_ps(11);
            for (long i = 0; i < iters; i++) FMA12(b, c);
            __m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)),
                                     _mm256_add_ps(_mm256_add_ps(a4, a5), _mm256_add_ps(a6, a7)));
            s = _mm256_add_ps(s, _mm256_add_ps(_mm256_add_ps(a8, a9), _mm256_add_ps(a10, a11)));
            float v[LANES];
            _mm256_storeu_ps(v, s);
            sink += v[0];
        }
        double dt = omp_get_wtime() - t0;
        double gflops = 2.0 * LANES * 12 * (double)iters * omp_get_max_threads() / dt / 1e9;
        if (gflops > best) best = gflops;
        if (sink == 12345.0f) puts("");
    }
    printf("%.1f\n", best);
    return 0;
}
