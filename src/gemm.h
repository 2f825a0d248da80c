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

/* C = A B^T, plus bias[j] on column j when bias is given. A is (M,K), B is
 * (N,K): every entry is a dot product of two rows, which is how a Linear
 * layer's weight is stored, so a few rows through it need no transpose and
 * no packing. For M of 1 to a few: OpenBLAS's SGEMM takes 13 us for one
 * row through LeNet's 400 -> 120 layer on a Zen 5 core, this 1.8 us (the
 * weights' trip from L2). Runs on the calling thread only. */
void cnn_gemm_nt(int M, int N, int K, const float *A, int lda, const float *B, int ldb, float *C,
                 int ldc, const float *bias);

#endif
