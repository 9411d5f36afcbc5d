/* Prints the wall clock (CLOCK_REALTIME) as seconds with nanoseconds: bench/run's exec section
 * runs it as a job to see when a command really began, against when it was submitted. */
#include <stdio.h>
#include <time.h>

int main(void) {
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    printf("%lld.%09ld\n", (long long)now.tv_sec, now.tv_nsec);
    return 0;
}
