/* gemm.h - private: the single-threaded matrix product behind the small
 * convolutions. Never installed. */
#ifndef CNNKIT_GEMM_H
#define CNNKIT_GEMM_H

#include <stdbool.h>

/* C = A B, plus bias[i] on row i when bias is given, or plus C's old values
 * when accumulate is set. A is (M,K), B is (K,N), C is (M,N), all row-major
 * with leading dimensions lda, ldb, ldc. Runs on the calling thread only,
 * with the instruction set of cnn_simd_level(). */
void cnn_gemm(int M, int N, int K, const float *A, int lda, const float *B, int ldb, float *C,
              int ldc, const float *bias, bool accumulate);

#endif
