// This machine's floor for a request and its reply over a Unix socket: a parent and a forked
// child on a listening stream socket, blocking read and write, the request and reply sizes
// of a Varlink Status call. Whatever concurd's control round trip costs beyond this is
// concurd's own; what this costs is the kernel's and the scheduler's of the moment.
//
//   pingpong CALLS [REQUEST_BYTES REPLY_BYTES]
//
// Prints one JSON object: p50_us, p99_us, max_us over CALLS round trips after a warm-up.
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static unsigned long long now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (unsigned long long)t.tv_sec * 1000000000ull + (unsigned long long)t.tv_nsec;
}

static int exactly(int fd, char *buffer, size_t size, int writing) {
    size_t done = 0;
    while (done < size) {
        // send, not write: a peer gone mid-run is an error here, not a SIGPIPE.
        ssize_t n = writing ? send(fd, buffer + done, size - done, MSG_NOSIGNAL) : recv(fd, buffer + done, size - done, 0);
        if (n <= 0) return -1;
        done += (size_t)n;
    }
    return 0;
}

static int compare(const void *a, const void *b) {
    unsigned long long x = *(const unsigned long long *)a, y = *(const unsigned long long *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    if (argc != 2 && argc != 4) {
        fprintf(stderr, "usage: pingpong CALLS [REQUEST_BYTES REPLY_BYTES]\n");
        return 2;
    }
    long calls = atol(argv[1]);
    size_t request = argc == 4 ? (size_t)atol(argv[2]) : 48, reply = argc == 4 ? (size_t)atol(argv[3]) : 1024;
    if (calls < 1 || request < 1 || reply < 1 || request > 65536 || reply > 65536) {
        fprintf(stderr, "pingpong: CALLS must be at least 1 and the sizes between 1 and 65536\n");
        return 2;
    }
    char path[] = "/tmp/concur-pingpong-XXXXXX";
    if (!mkdtemp(path)) { perror("pingpong: mkdtemp"); return 1; }
    struct sockaddr_un address = {.sun_family = AF_UNIX};
    snprintf(address.sun_path, sizeof address.sun_path, "%s/s", path);
    int listener = socket(AF_UNIX, SOCK_STREAM, 0);
    if (listener < 0 || bind(listener, (struct sockaddr *)&address, sizeof address) != 0 || listen(listener, 1) != 0) {
        perror("pingpong: listen");
        unlink(address.sun_path);
        rmdir(path);
        return 1;
    }
    static char in[65536], out[65536];
    memset(out, 'x', sizeof out);
    long total = calls + (calls < 1000 ? calls : 1000);
    pid_t child = fork();
    if (child == 0) {
        int connection = accept(listener, NULL, NULL);
        for (long i = 0; i < total; i++) {
            if (exactly(connection, in, request, 0) || exactly(connection, out, reply, 1)) _exit(1);
        }
        _exit(0);
    }
    int connection = socket(AF_UNIX, SOCK_STREAM, 0);
    int connected = connect(connection, (struct sockaddr *)&address, sizeof address);
    unlink(address.sun_path);  // connected or not, the name is no longer needed
    rmdir(path);
    if (connected != 0) {
        perror("pingpong: connect");
        kill(child, SIGKILL);
        return 1;
    }
    unsigned long long *samples = malloc(sizeof *samples * (size_t)calls);
    if (!samples) { fprintf(stderr, "pingpong: out of memory for %ld samples\n", calls); return 1; }
    for (long i = 0; i < total; i++) {
        unsigned long long begin = now_ns();
        if (exactly(connection, out, request, 1) || exactly(connection, in, reply, 0)) {
            fprintf(stderr, "pingpong: the echo ended early\n");
            return 1;
        }
        long index = i - (total - calls);
        if (index >= 0) samples[index] = now_ns() - begin;
    }
    close(connection);
    int status = 0;
    waitpid(child, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "pingpong: the echo process failed\n");
        return 1;
    }
    qsort(samples, (size_t)calls, sizeof *samples, compare);
    long p50 = (calls * 50 + 99) / 100 - 1, p99 = (calls * 99 + 99) / 100 - 1;
    printf("{\"calls\": %ld, \"p50_us\": %.3f, \"p99_us\": %.3f, \"max_us\": %.3f}\n", calls, samples[p50] / 1000.0,
           samples[p99] / 1000.0, samples[calls - 1] / 1000.0);
    return 0;
}
