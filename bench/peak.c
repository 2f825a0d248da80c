/* peak.c - the machine's FP32 FMA peak: independent AVX2 FMA chains on every
 * thread, so the bench can report a fraction of what the cores can do.
 * Built by bench/run.sh with -O2 -mavx2 -mfma -fopenmp. Prints GFLOP/s. */
#include <immintrin.h>
#include <omp.h>
#include <stdio.h>

int main(void) {
    const long iters = 200000000L / 8;
    double best = 0.0;
    for (int rep = 0; rep < 3; rep++) {
        double t0 = omp_get_wtime();
        float sink = 0.0f;
#pragma omp parallel reduction(+ : sink)
        {
            __m256 a[10], b = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-7f);
            for (int k = 0; k < 10; k++) a[k] = _mm256_set1_ps((float)k);
            for (long i = 0; i < iters; i++)
                for (int k = 0; k < 10; k++) a[k] = _mm256_fmadd_ps(a[k], b, c);
            for (int k = 0; k < 10; k++) {
                float v[8];
                _mm256_storeu_ps(v, a[k]);
                sink += v[0];
            }
        }
        double dt = omp_get_wtime() - t0;
        double gflops = 2.0 * 8 * 10 * (double)iters * omp_get_max_threads() / dt / 1e9;
        if (gflops > best) best = gflops;
        if (sink == 12345.0f) puts("");
    }
    printf("%.1f\n", best);
    return 0;
}
