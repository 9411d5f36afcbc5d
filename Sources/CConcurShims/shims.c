#define _GNU_SOURCE
#include "concur_shims.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

int concur_so_peercred(void) { return SO_PEERCRED; }

int concur_peer_credentials(int fd, concur_ucred *out) {
    struct ucred cred;
    socklen_t length = sizeof(cred);
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &length) != 0) return -1;
    out->pid = cred.pid;
    out->uid = cred.uid;
    out->gid = cred.gid;
    return 0;
}

int concur_set_parent_death_signal(int signal) { return prctl(PR_SET_PDEATHSIG, signal, 0, 0, 0); }

int concur_pidfd_open(pid_t pid, unsigned int flags) { return (int)syscall(SYS_pidfd_open, pid, flags); }

void concur_set_thread_name(const char *name) { pthread_setname_np(pthread_self(), name); }

pid_t concur_gettid(void) { return (pid_t)syscall(SYS_gettid); }

int concur_lower_thread_priority(int increment) {
    // On Linux the nice value belongs to each thread: PRIO_PROCESS with a thread id sets just it.
    id_t tid = (id_t)syscall(SYS_gettid);
    errno = 0;
    int current = getpriority(PRIO_PROCESS, tid);
    if (current == -1 && errno != 0) return errno;
    int target = current + increment;
    if (target > 19) target = 19;
    return setpriority(PRIO_PROCESS, tid, target) == 0 ? 0 : errno;
}

static int spawn_with(const char *path, char *const argv[], char *const envp[], int channel_fd, int progress_fd,
                      int output_fd, int search_path, pid_t *pid) {
    posix_spawnattr_t attributes;
    posix_spawn_file_actions_t actions;
    int result = posix_spawnattr_init(&attributes);
    if (result != 0) return result;
    result = posix_spawn_file_actions_init(&actions);
    if (result != 0) {
        posix_spawnattr_destroy(&attributes);
        return result;
    }
    sigset_t empty, all;
    sigemptyset(&empty);
    sigfillset(&all);
    posix_spawnattr_setsigmask(&attributes, &empty);
    posix_spawnattr_setsigdefault(&attributes, &all);
    posix_spawnattr_setpgroup(&attributes, 0);
    posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    if (output_fd >= 0) {
        posix_spawn_file_actions_adddup2(&actions, output_fd, 1);
        posix_spawn_file_actions_adddup2(&actions, output_fd, 2);
    }
    int keep = 3;
    if (channel_fd >= 0) {
        posix_spawn_file_actions_adddup2(&actions, channel_fd, 3);
        keep = 4;
    }
    if (progress_fd >= 0) {
        posix_spawn_file_actions_adddup2(&actions, progress_fd, 4);
        keep = 5;
    }
    posix_spawn_file_actions_addclosefrom_np(&actions, keep);
    result = search_path ? posix_spawnp(pid, path, &actions, &attributes, argv, envp)
                         : posix_spawn(pid, path, &actions, &attributes, argv, envp);
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attributes);
    return result;
}

int concur_spawn(const char *path, char *const argv[], char *const envp[], int channel_fd, int output_fd,
                 int search_path, pid_t *pid) {
    return spawn_with(path, argv, envp, channel_fd, -1, output_fd, search_path, pid);
}

int concur_spawn_worker(const char *path, char *const argv[], char *const envp[], int channel_fd, int progress_fd, pid_t *pid) {
    return spawn_with(path, argv, envp, channel_fd, progress_fd, -1, 0, pid);
}

int concur_progress_page(void) {
    int fd = memfd_create("concur-progress", MFD_CLOEXEC);
    if (fd < 0) return -1;
    if (ftruncate(fd, 4096) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

uint64_t *concur_map_progress(int fd) {
    void *page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    return page == MAP_FAILED ? NULL : (uint64_t *)page;
}

void concur_unmap_progress(uint64_t *page) { munmap(page, 4096); }

void concur_store_release(uint64_t *slot, uint64_t value) { __atomic_store_n(slot, value, __ATOMIC_RELEASE); }

uint64_t concur_load_acquire(const uint64_t *slot) { return __atomic_load_n(slot, __ATOMIC_ACQUIRE); }

static volatile sig_atomic_t command_group = 0;

static void on_worker_term(int signal) {
    (void)signal;
    pid_t group = command_group;
    if (group > 0) kill(-group, SIGKILL);
    _exit(128 + SIGTERM);
}

void concur_install_worker_term_handler(void) {
    struct sigaction action;
    action.sa_handler = on_worker_term;
    sigemptyset(&action.sa_mask);
    action.sa_flags = 0;
    sigaction(SIGTERM, &action, NULL);
}

void concur_set_command_group(pid_t group) { command_group = group; }

int concur_reap(pid_t pid, int *exit_code, int *signal) {
    int status = 0;
    pid_t result = waitpid(pid, &status, WNOHANG);
    if (result == 0) return 0;
    if (result < 0) return -1;
    *exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    *signal = WIFSIGNALED(status) ? WTERMSIG(status) : -1;
    return 1;
}

int concur_doorbell(void) { return eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK); }

void concur_ring(int doorbell) {
    uint64_t one = 1;
    ssize_t written = write(doorbell, &one, sizeof one);
    (void)written;
}

void concur_drain(int doorbell) {
    uint64_t count;
    ssize_t got = read(doorbell, &count, sizeof count);
    (void)got;
}
