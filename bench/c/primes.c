/* The C reference for concur's 20-number prime workload: N pthreads pull indices from one
 * shared atomic counter and test each number by trial division over odd divisors up to
 * isqrt(n), exactly as concur's prime(n) job does. Build: cc -O2 -pthread primes.c -lm
 * Prints one JSON object: wall and CPU seconds, and the number of primes found (9). */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>

static const uint64_t numbers[20] = {
    2ULL, 142702110479723ULL, 299593572317531ULL, 3333333333333301ULL, 3333333333333333ULL,
    3333335652092209ULL, 4444444444444423ULL, 4444444444444444ULL, 4444444488888889ULL,
    5555553133149889ULL, 5555555555555503ULL, 5555555555555555ULL, 6666666666666666ULL,
    6666666666666719ULL, 6666667141414921ULL, 7777777536340681ULL, 7777777777777753ULL,
    7777777777777777ULL, 9999999999999917ULL, 9999999999999999ULL,
};
static atomic_int next_index;
static int is_prime[20];

static uint64_t isqrt(uint64_t n) {
    uint64_t root = (uint64_t)sqrtl((long double)n);
    while (root * root > n) root--;
    while ((root + 1) * (root + 1) <= n) root++;
    return root;
}

static uint64_t smallest_factor(uint64_t n) {
    if (n < 2) return 1;
    if (n % 2 == 0) return 2;
    uint64_t limit = isqrt(n);
    for (uint64_t d = 3; d <= limit; d += 2)
        if (n % d == 0) return d;
    return n;
}

static void *worker(void *unused) {
    (void)unused;
    for (;;) {
        int i = atomic_fetch_add(&next_index, 1);
        if (i >= 20) return NULL;
        is_prime[i] = numbers[i] >= 2 && smallest_factor(numbers[i]) == numbers[i];
    }
}

static double seconds(struct timeval t) { return t.tv_sec + t.tv_usec / 1e6; }

int main(int argc, char **argv) {
    int threads = argc > 1 ? atoi(argv[1]) : 2;
    if (threads < 1 || threads > 64) { fprintf(stderr, "usage: primes [THREADS 1-64]\n"); return 2; }
    pthread_t ids[64];
    struct timespec start, end;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (int t = 0; t < threads; t++) pthread_create(&ids[t], NULL, worker, NULL);
    for (int t = 0; t < threads; t++) pthread_join(ids[t], NULL);
    clock_gettime(CLOCK_MONOTONIC, &end);
    struct rusage usage;
    getrusage(RUSAGE_SELF, &usage);
    int primes = 0;
    for (int i = 0; i < 20; i++) primes += is_prime[i];
    printf("{\"wall\": %.6f, \"user\": %.6f, \"sys\": %.6f, \"primes\": %d}\n",
           (end.tv_sec - start.tv_sec) + (end.tv_nsec - start.tv_nsec) / 1e9,
           seconds(usage.ru_utime), seconds(usage.ru_stime), primes);
    return primes == 9 ? 0 : 1;
}
