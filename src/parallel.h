/* parallel.h - private: loops split over OpenMP's threads only when they
 * are worth it. Never installed. */
#ifndef CNNKIT_PARALLEL_H
#define CNNKIT_PARALLEL_H

#include <omp.h>

/* The for statement given after cond, split statically over the threads
 * when cond holds and more than one thread may run, and on the calling
 * thread otherwise. `#pragma omp parallel for if (cond)` is not the same:
 * libgomp enters a parallel region for a false if () too, and ends every
 * region with a futex system call. On the 2-core Zen 5 virtual machines
 * that is 1.3 us a region with if () false and 6.4 us with two threads
 * (a system call there takes microseconds); LeNet at batch 1 ran six such
 * regions in 23 us, and without them runs at 93k images/s instead of 43k. */
#define CNN_PARALLEL_FOR(cond, ...)                                                                \
    CNN_PARALLEL_LOOP("omp parallel for schedule(static)", cond, __VA_ARGS__)

/* The same over two nested loops, collapsed into one iteration space. */
#define CNN_PARALLEL_FOR2(cond, ...)                                                               \
    CNN_PARALLEL_LOOP("omp parallel for collapse(2) schedule(static)", cond, __VA_ARGS__)

#define CNN_PARALLEL_LOOP(omp, cond, ...)                                                          \
    do {                                                                                           \
        if ((cond) && omp_get_max_threads() > 1) {                                                 \
            _Pragma(omp) __VA_ARGS__                                                               \
        } else {                                                                                   \
            __VA_ARGS__                                                                            \
        }                                                                                          \
    } while (0)

#endif
