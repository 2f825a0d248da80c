/* simd.h - private: whether this build carries the x86 kernels, and the
 * attributes that compile one function for one instruction set. Never installed. */
#ifndef CNNKIT_SIMD_H
#define CNNKIT_SIMD_H

#include "cnnkit/cpu.h"

/* GCC and Clang compile AVX2 and AVX-512 functions into a baseline x86-64
 * build (the target attribute); cnn_simd_level() decides at run time whether
 * they are called. -DCNNKIT_NO_X86_KERNELS (CMake: -DCNNKIT_X86_KERNELS=OFF)
 * leaves them out, as on every other architecture. */
#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__) &&                             \
    !defined(CNNKIT_NO_X86_KERNELS)
#define CNN_HAVE_X86_KERNELS 1
#define CNN_TARGET_AVX2      __attribute__((target("avx2,fma")))
#define CNN_TARGET_AVX512    __attribute__((target("avx512f,avx2,fma")))
#else
#define CNN_HAVE_X86_KERNELS 0
#endif

#endif
