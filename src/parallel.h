/* parallel.h - private: loops split over OpenMP's threads only when they
 * are worth it. Never installed. */
#ifndef CNNKIT_PARALLEL_H
#define CNNKIT_PARALLEL_H

#include <omp.h>
#include <stdatomic.h>
#include <stdint.h>

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

/* Static shares that a thread which finishes early helps to finish. Thread
 * t of `of` owns items [t*n/of, (t+1)*n/of) and takes them one at a time from
 * the front; when its own run out it takes the next of the other threads'
 * shares, in turn. Most items stay with the thread of the static split (its
 * caches hold them from the layer before), and the team ends together: on
 * these virtual machines one core is at times 20% slower than the other for
 * a whole run, and with fixed halves the other waited that long. For items
 * that any thread may run with the same result (no sums per thread).
 *
 *   cnn_steal s[CNN_STEAL_MAX];           // before the region
 *   const int nt = cnn_steal_init(s, threads, n);
 *   #pragma omp parallel num_threads(nt)
 *   for (int64_t i; (i = cnn_steal_next(s, omp_get_thread_num())) >= 0;)
 *       ...item i...
 *
 * A team smaller than nt leaves nothing behind: each thread goes on to the
 * shares of the missing ones. */
#define CNN_STEAL_MAX 64

typedef struct cnn_steal {
    _Alignas(64) atomic_llong next; /* the share's next item; one cache line each */
    long long end, of;
} cnn_steal;

/* Shares for up to `threads` (at most CNN_STEAL_MAX); returns how many. */
static inline int cnn_steal_init(cnn_steal *s, int threads, int64_t n) {
    const int nt = threads < 1 ? 1 : threads < CNN_STEAL_MAX ? threads : CNN_STEAL_MAX;
    for (int t = 0; t < nt; t++) {
        atomic_init(&s[t].next, (long long)(t * n / nt));
        s[t].end = (long long)((t + 1) * n / nt);
        s[t].of = nt;
    }
    return nt;
}

static inline int64_t cnn_steal_next(cnn_steal *s, int t) {
    const int of = (int)s[0].of;
    for (int k = 0; k < of; k++) {
        cnn_steal *u = &s[(t + k) % of];
        if (atomic_load_explicit(&u->next, memory_order_relaxed) >= u->end) continue;
        const long long i = atomic_fetch_add_explicit(&u->next, 1, memory_order_relaxed);
        if (i < u->end) return (int64_t)i;
    }
    return -1;
}

#endif
