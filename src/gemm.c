/* gemm.c - register-tiled matrix products for the shapes OpenBLAS handles
 * worst: a convolution of one image with few output channels (LeNet's 6 and
 * 16 rows, K = 25 or 150), where packing and thread start-up cost more than
 * the arithmetic, and a few rows through a small Linear layer (A B^T, dot
 * products of rows). No packing: a tile of C stays in registers while k runs
 * over a column panel of B that fits in L1.
 *
 * cnn_gemm sums over k in order with one multiply-add per term, so its
 * vector builds agree to the last bit with each other (both use FMA) and to
 * rounding with the portable one. cnn_gemm_nt sums k in 16 or 8 lanes and
 * then across them: its builds agree to rounding. */
#include <stddef.h>

#include "gemm.h"
#include "simd.h"

static void gemm_generic(int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                         float *C, int ldc, const float *bias, bool acc) {
    for (int i = 0; i < M; i++) {
        float *c = C + (size_t)i * ldc;
        for (int j = 0; j < N; j++)
            c[j] = bias ? bias[i] : acc ? c[j] : 0.0f;
        for (int k = 0; k < K; k++) {
            const float a = A[(size_t)i * lda + k], *b = B + (size_t)k * ldb;
            for (int j = 0; j < N; j++)
                c[j] += a * b[j];
        }
    }
}

static void gemm_nt_generic(int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                            float *C, int ldc, const float *bias) {
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            float s = 0.0f;
            for (int k = 0; k < K; k++)
                s += A[(size_t)i * lda + k] * B[(size_t)j * ldb + k];
            C[(size_t)i * ldc + j] = bias ? bias[j] + s : s;
        }
}

#if CNN_HAVE_X86_KERNELS
#include <immintrin.h>

/* One tile of mr rows (at most 8) and 16 or 32 columns (two = 32), the
 * columns past the edge masked off by m0/m1. mr and two are constants at
 * every call, so the arrays become registers. */
CNN_TARGET_AVX512 __attribute__((always_inline)) static inline void
tile_avx512(const int mr, const bool two, int K, const float *A, int lda, const float *B, int ldb,
            float *C, int ldc, const float *bias, bool acc, __mmask16 m0, __mmask16 m1) {
    __m512 c0[8], c1[8];
    for (int r = 0; r < mr; r++) {
        if (bias) {
            c0[r] = c1[r] = _mm512_set1_ps(bias[r]);
        } else if (acc) {
            c0[r] = _mm512_maskz_loadu_ps(m0, C + (size_t)r * ldc);
            c1[r] = two ? _mm512_maskz_loadu_ps(m1, C + (size_t)r * ldc + 16) : c0[r];
        } else {
            c0[r] = c1[r] = _mm512_setzero_ps();
        }
    }
    for (int k = 0; k < K; k++) {
        const float *b = B + (size_t)k * ldb;
        const __m512 b0 = _mm512_maskz_loadu_ps(m0, b);
        const __m512 b1 = two ? _mm512_maskz_loadu_ps(m1, b + 16) : b0;
        for (int r = 0; r < mr; r++) {
            const __m512 a = _mm512_set1_ps(A[(size_t)r * lda + k]);
            c0[r] = _mm512_fmadd_ps(a, b0, c0[r]);
            if (two) c1[r] = _mm512_fmadd_ps(a, b1, c1[r]);
        }
    }
    for (int r = 0; r < mr; r++) {
        _mm512_mask_storeu_ps(C + (size_t)r * ldc, m0, c0[r]);
        if (two) _mm512_mask_storeu_ps(C + (size_t)r * ldc + 16, m1, c1[r]);
    }
}

#define TILE512(mr, two)                                                                           \
    tile_avx512(mr, two, K, A + (size_t)i * lda, lda, B + j, ldb, C + (size_t)i * ldc + j, ldc,    \
                bias ? bias + i : NULL, acc, m0, m1)

CNN_TARGET_AVX512 static void gemm_avx512(int M, int N, int K, const float *A, int lda,
                                          const float *B, int ldb, float *C, int ldc,
                                          const float *bias, bool acc) {
    for (int j = 0; j < N; j += 32) {
        const int nr = N - j < 32 ? N - j : 32;
        const __mmask16 m0 = nr >= 16 ? 0xffff : (__mmask16)((1u << nr) - 1);
        const __mmask16 m1 = nr >= 32 ? 0xffff : nr > 16 ? (__mmask16)((1u << (nr - 16)) - 1) : 0;
        for (int i = 0; i < M; i += 8) {
            const int mr = M - i < 8 ? M - i : 8;
            if (nr > 16) {
                switch (mr) {
                case 8: TILE512(8, true); break;
                case 7: TILE512(7, true); break;
                case 6: TILE512(6, true); break;
                case 5: TILE512(5, true); break;
                case 4: TILE512(4, true); break;
                case 3: TILE512(3, true); break;
                case 2: TILE512(2, true); break;
                default: TILE512(1, true); break;
                }
            } else {
                switch (mr) {
                case 8: TILE512(8, false); break;
                case 7: TILE512(7, false); break;
                case 6: TILE512(6, false); break;
                case 5: TILE512(5, false); break;
                case 4: TILE512(4, false); break;
                case 3: TILE512(3, false); break;
                case 2: TILE512(2, false); break;
                default: TILE512(1, false); break;
                }
            }
        }
    }
}

/* AVX2 has 16 vector registers: tiles of up to 6 rows by 8 or 16 columns. */
CNN_TARGET_AVX2 __attribute__((always_inline)) static inline void
tile_avx2(const int mr, const bool two, int K, const float *A, int lda, const float *B, int ldb,
          float *C, int ldc, const float *bias, bool acc, __m256i m0, __m256i m1) {
    __m256 c0[6], c1[6];
    for (int r = 0; r < mr; r++) {
        if (bias) {
            c0[r] = c1[r] = _mm256_set1_ps(bias[r]);
        } else if (acc) {
            c0[r] = _mm256_maskload_ps(C + (size_t)r * ldc, m0);
            c1[r] = two ? _mm256_maskload_ps(C + (size_t)r * ldc + 8, m1) : c0[r];
        } else {
            c0[r] = c1[r] = _mm256_setzero_ps();
        }
    }
    for (int k = 0; k < K; k++) {
        const float *b = B + (size_t)k * ldb;
        const __m256 b0 = _mm256_maskload_ps(b, m0);
        const __m256 b1 = two ? _mm256_maskload_ps(b + 8, m1) : b0;
        for (int r = 0; r < mr; r++) {
            const __m256 a = _mm256_broadcast_ss(A + (size_t)r * lda + k);
            c0[r] = _mm256_fmadd_ps(a, b0, c0[r]);
            if (two) c1[r] = _mm256_fmadd_ps(a, b1, c1[r]);
        }
    }
    for (int r = 0; r < mr; r++) {
        _mm256_maskstore_ps(C + (size_t)r * ldc, m0, c0[r]);
        if (two) _mm256_maskstore_ps(C + (size_t)r * ldc + 8, m1, c1[r]);
    }
}

#define TILE256(mr, two)                                                                           \
    tile_avx2(mr, two, K, A + (size_t)i * lda, lda, B + j, ldb, C + (size_t)i * ldc + j, ldc,      \
              bias ? bias + i : NULL, acc, m0, m1)

CNN_TARGET_AVX2 static void gemm_avx2(int M, int N, int K, const float *A, int lda, const float *B,
                                      int ldb, float *C, int ldc, const float *bias, bool acc) {
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    for (int j = 0; j < N; j += 16) {
        const int nr = N - j < 16 ? N - j : 16;
        const __m256i m0 = _mm256_cmpgt_epi32(_mm256_set1_epi32(nr), lane);
        const __m256i m1 = _mm256_cmpgt_epi32(_mm256_set1_epi32(nr - 8), lane);
        for (int i = 0; i < M; i += 6) {
            const int mr = M - i < 6 ? M - i : 6;
            if (nr > 8) {
                switch (mr) {
                case 6: TILE256(6, true); break;
                case 5: TILE256(5, true); break;
                case 4: TILE256(4, true); break;
                case 3: TILE256(3, true); break;
                case 2: TILE256(2, true); break;
                default: TILE256(1, true); break;
                }
            } else {
                switch (mr) {
                case 6: TILE256(6, false); break;
                case 5: TILE256(5, false); break;
                case 4: TILE256(4, false); break;
                case 3: TILE256(3, false); break;
                case 2: TILE256(2, false); break;
                default: TILE256(1, false); break;
                }
            }
        }
    }
}
/* mr rows of A (1 or 2) against nr rows of B (8, 4 or 1): mr * nr sums,
 * each 16 lanes wide until the end, the tail of k masked. A single row
 * needs the 8 sums at once to keep the multiply-adds' latency covered
 * (4 sums: 1.9 us for 400 -> 120, 8 sums: 0.9 us). */
CNN_TARGET_AVX512 __attribute__((always_inline)) static inline void
dots_avx512(const int mr, const int nr, int K, const float *A, int lda, const float *B, int ldb,
            float *C, int ldc, const float *bias) {
    __m512 c[2][8];
    for (int r = 0; r < mr; r++)
        for (int j = 0; j < nr; j++)
            c[r][j] = _mm512_setzero_ps();
    for (int k = 0; k < K; k += 16) {
        const __mmask16 m = K - k >= 16 ? 0xffff : (__mmask16)((1u << (K - k)) - 1);
        __m512 a[2];
        for (int r = 0; r < mr; r++)
            a[r] = _mm512_maskz_loadu_ps(m, A + (size_t)r * lda + k);
        for (int j = 0; j < nr; j++) {
            const __m512 b = _mm512_maskz_loadu_ps(m, B + (size_t)j * ldb + k);
            for (int r = 0; r < mr; r++)
                c[r][j] = _mm512_fmadd_ps(a[r], b, c[r][j]);
        }
    }
    for (int r = 0; r < mr; r++)
        for (int j = 0; j < nr; j++) {
            const float s = _mm512_reduce_add_ps(c[r][j]);
            C[(size_t)r * ldc + j] = bias ? bias[j] + s : s;
        }
}

CNN_TARGET_AVX512 static void gemm_nt_avx512(int M, int N, int K, const float *A, int lda,
                                             const float *B, int ldb, float *C, int ldc,
                                             const float *bias) {
    for (int i = 0; i < M; i += 2) {
        const float *Ai = A + (size_t)i * lda;
        float *Ci = C + (size_t)i * ldc;
        for (int j = 0; j < N;) {
            const float *Bj = B + (size_t)j * ldb, *bj = bias ? bias + j : NULL;
            const int nr = N - j >= 8 ? 8 : N - j >= 4 ? 4 : 1;
            if (M - i >= 2) {
                if (nr == 8)
                    dots_avx512(2, 8, K, Ai, lda, Bj, ldb, Ci + j, ldc, bj);
                else if (nr == 4)
                    dots_avx512(2, 4, K, Ai, lda, Bj, ldb, Ci + j, ldc, bj);
                else
                    dots_avx512(2, 1, K, Ai, lda, Bj, ldb, Ci + j, ldc, bj);
            } else {
                if (nr == 8)
                    dots_avx512(1, 8, K, Ai, lda, Bj, ldb, Ci + j, ldc, bj);
                else if (nr == 4)
                    dots_avx512(1, 4, K, Ai, lda, Bj, ldb, Ci + j, ldc, bj);
                else
                    dots_avx512(1, 1, K, Ai, lda, Bj, ldb, Ci + j, ldc, bj);
            }
            j += nr;
        }
    }
}

CNN_TARGET_AVX2 static inline float hsum_avx2(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* As dots_avx512 with 8 lanes. Of the 16 registers, two rows take 2 * 4
 * sums and their 2 inputs with the 4 weights; one row 8 sums, the weights
 * read straight into the multiply-adds. */
CNN_TARGET_AVX2 __attribute__((always_inline)) static inline void
dots_avx2(const int mr, const int nr, int K, const float *A, int lda, const float *B, int ldb,
          float *C, int ldc, const float *bias) {
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    __m256 c[2][8];
    for (int r = 0; r < mr; r++)
        for (int j = 0; j < nr; j++)
            c[r][j] = _mm256_setzero_ps();
    for (int k = 0; k < K; k += 8) {
        const __m256i m = _mm256_cmpgt_epi32(_mm256_set1_epi32(K - k), lane);
        __m256 a[2];
        for (int r = 0; r < mr; r++)
            a[r] = _mm256_maskload_ps(A + (size_t)r * lda + k, m);
        for (int j = 0; j < nr; j++) {
            const __m256 b = _mm256_maskload_ps(B + (size_t)j * ldb + k, m);
            for (int r = 0; r < mr; r++)
                c[r][j] = _mm256_fmadd_ps(a[r], b, c[r][j]);
        }
    }
    for (int r = 0; r < mr; r++)
        for (int j = 0; j < nr; j++) {
            const float s = hsum_avx2(c[r][j]);
            C[(size_t)r * ldc + j] = bias ? bias[j] + s : s;
        }
}

CNN_TARGET_AVX2 static void gemm_nt_avx2(int M, int N, int K, const float *A, int lda,
                                         const float *B, int ldb, float *C, int ldc,
                                         const float *bias) {
    for (int i = 0; i < M; i += 2) {
        const float *Ai = A + (size_t)i * lda;
        float *Ci = C + (size_t)i * ldc;
        for (int j = 0; j < N;) {
            const float *Bj = B + (size_t)j * ldb, *bj = bias ? bias + j : NULL;
            int nr;
            if (M - i >= 2) {
                nr = N - j >= 4 ? 4 : 1;
                if (nr == 4)
                    dots_avx2(2, 4, K, Ai, lda, Bj, ldb, Ci + j, ldc, bj);
                else
                    dots_avx2(2, 1, K, Ai, lda, Bj, ldb, Ci + j, ldc, bj);
            } else {
                nr = N - j >= 8 ? 8 : N - j >= 4 ? 4 : 1;
                if (nr == 8)
                    dots_avx2(1, 8, K, Ai, lda, Bj, ldb, Ci + j, ldc, bj);
                else if (nr == 4)
                    dots_avx2(1, 4, K, Ai, lda, Bj, ldb, Ci + j, ldc, bj);
                else
                    dots_avx2(1, 1, K, Ai, lda, Bj, ldb, Ci + j, ldc, bj);
            }
            j += nr;
        }
    }
}
#endif

void cnn_gemm(int M, int N, int K, const float *A, int lda, const float *B, int ldb, float *C,
              int ldc, const float *bias, bool accumulate) {
#if CNN_HAVE_X86_KERNELS
    switch (cnn_simd_level()) {
    case CNN_SIMD_AVX512: gemm_avx512(M, N, K, A, lda, B, ldb, C, ldc, bias, accumulate); return;
    case CNN_SIMD_AVX2: gemm_avx2(M, N, K, A, lda, B, ldb, C, ldc, bias, accumulate); return;
    default: break;
    }
#endif
    gemm_generic(M, N, K, A, lda, B, ldb, C, ldc, bias, accumulate);
}

void cnn_gemm_nt(int M, int N, int K, const float *A, int lda, const float *B, int ldb, float *C,
                 int ldc, const float *bias) {
#if CNN_HAVE_X86_KERNELS
    switch (cnn_simd_level()) {
    case CNN_SIMD_AVX512: gemm_nt_avx512(M, N, K, A, lda, B, ldb, C, ldc, bias); return;
    case CNN_SIMD_AVX2: gemm_nt_avx2(M, N, K, A, lda, B, ldb, C, ldc, bias); return;
    default: break;
    }
#endif
    gemm_nt_generic(M, N, K, A, lda, B, ldb, C, ldc, bias);
}
