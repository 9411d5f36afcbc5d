#define _GNU_SOURCE
#include "concur_shims.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <dirent.h>
#include <poll.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/ioctl.h>
#include <termios.h>
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

static int spawn_in(const char *path, char *const argv[], char *const envp[], int channel_fd, int progress_fd,
                    int output_fd, int error_fd, const char *directory, int search_path, pid_t *pid) {
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
    if (output_fd >= 0) posix_spawn_file_actions_adddup2(&actions, output_fd, 1);
    if (error_fd >= 0) posix_spawn_file_actions_adddup2(&actions, error_fd, 2);
    if (directory != NULL) posix_spawn_file_actions_addchdir_np(&actions, directory);
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
    return spawn_in(path, argv, envp, channel_fd, -1, output_fd, output_fd, NULL, search_path, pid);
}

int concur_spawn_command(const char *path, char *const argv[], char *const envp[], int output_fd, int error_fd,
                         const char *directory, pid_t *pid) {
    return spawn_in(path, argv, envp, -1, -1, output_fd, error_fd, directory, 1, pid);
}

int concur_spawn_worker(const char *path, char *const argv[], char *const envp[], int channel_fd, int progress_fd, pid_t *pid) {
    return spawn_in(path, argv, envp, channel_fd, progress_fd, -1, -1, NULL, 0, pid);
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

static uint64_t *command_group_slot = NULL;

void concur_publish_command_group(uint64_t *slot) { command_group_slot = slot; }

void concur_set_command_group(pid_t group) {
    command_group = group;
    if (command_group_slot != NULL) __atomic_store_n(command_group_slot, (uint64_t)group, __ATOMIC_RELEASE);
}

void concur_exit_stopping_command(int code) {
    pid_t group = command_group;
    if (group > 0) kill(-group, SIGKILL);
    _exit(code);
}

int concur_pipe_cloexec(int ends[2]) { return pipe2(ends, O_CLOEXEC); }

int concur_set_pipe_size(int fd, int bytes) { return fcntl(fd, F_SETPIPE_SZ, bytes); }

void concur_guard_serve(int fd) {
    // The process groups of the running commands, as the daemon registers and releases them.
    // The guard does not wake for each record: it waits for the pipe's hang-up alone (every
    // writer gone), and every 200 ms takes what was written since, so that the pipe never fills.
    size_t count = 0, capacity = 64;
    pid_t *groups = malloc(capacity * sizeof *groups);
    int64_t records[512];
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    for (;;) {
        struct pollfd hangup = {.fd = fd, .events = 0, .revents = 0};
        int ready = poll(&hangup, 1, 200);
        if (ready < 0 && errno != EINTR) break;
        int ended = 0;
        for (;;) {
            ssize_t got = read(fd, records, sizeof records);
            if (got < 0 && errno == EINTR) continue;
            if (got == 0) ended = 1;  // end of file: every writer is gone
            if (got <= 0) break;
            for (size_t at = 0; at < (size_t)got / sizeof records[0]; at++) {
                int64_t record = records[at];
                if (record > 0) {
                    // A group registered twice (with a replacement guard, while the daemon told
                    // it the running ones) is held once: one release forgets it.
                    int known = 0;
                    for (size_t index = 0; index < count && !known; index++) known = groups[index] == (pid_t)record;
                    if (known) continue;
                    if (count == capacity) {
                        pid_t *grown = realloc(groups, 2 * capacity * sizeof *groups);
                        if (grown == NULL) continue;
                        groups = grown;
                        capacity *= 2;
                    }
                    if (groups != NULL) groups[count++] = (pid_t)record;
                } else {
                    for (size_t index = 0; index < count; index++) {
                        if (groups[index] == (pid_t)-record) {
                            groups[index] = groups[--count];
                            break;
                        }
                    }
                }
            }
        }
        if (ended) break;
    }
    // The daemon is gone; so goes what it ran.
    for (size_t index = 0; index < count; index++) kill(-groups[index], SIGKILL);
    _exit(0);
}

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


int concur_thread_count(void) {
    DIR *tasks = opendir("/proc/self/task");
    if (!tasks) return -1;
    int count = 0;
    struct dirent *entry;
    while ((entry = readdir(tasks)) != NULL) {
        if (entry->d_name[0] != '.') count++;
    }
    closedir(tasks);
    return count;
}

static void forkserver_send(int socket_fd, concur_forkserver_message message) {
    ssize_t sent;
    do {
        sent = send(socket_fd, &message, sizeof message, MSG_NOSIGNAL);
    } while (sent < 0 && errno == EINTR);
    if (sent < 0) _exit(0);  // the daemon is gone
}

/// One request to the forkserver: its number, and room for the two descriptors it passes.
typedef struct {
    uint32_t request;
    struct iovec vector;
    struct msghdr header;
    union {
        char buffer[CMSG_SPACE(2 * sizeof(int))];
        struct cmsghdr align;
    } control;
} forkserver_request_buffer;

static void forkserver_request_prepare(forkserver_request_buffer *buffer, uint32_t request) {
    memset(buffer, 0, sizeof *buffer);
    buffer->request = request;
    buffer->vector.iov_base = &buffer->request;
    buffer->vector.iov_len = sizeof buffer->request;
    buffer->header.msg_iov = &buffer->vector;
    buffer->header.msg_iovlen = 1;
    buffer->header.msg_control = buffer->control.buffer;
    buffer->header.msg_controllen = sizeof buffer->control.buffer;
}

/// Sets up a freshly forked worker: fds 3 and 4, nothing else open above 2, clean signals.
static void forkserver_child(int channel_fd, int progress_fd) {
    // Out of the way first, so that neither lands on 3 or 4 before it is moved there.
    int channel = fcntl(channel_fd, F_DUPFD, 10);
    int progress = fcntl(progress_fd, F_DUPFD, 10);
    if (channel < 0 || progress < 0 || dup2(channel, 3) != 3 || dup2(progress, 4) != 4) _exit(71);
    syscall(SYS_close_range, 5, ~0U, 0);
    int null = open("/dev/null", O_RDONLY);
    if (null >= 0 && null != 0) {
        dup2(null, 0);
        close(null);
    }
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = SIG_DFL;
    for (int number = 1; number < NSIG; number++) {
        if (number != SIGKILL && number != SIGSTOP) sigaction(number, &action, NULL);
    }
    sigset_t empty;
    sigemptyset(&empty);
    sigprocmask(SIG_SETMASK, &empty, NULL);
    setpgid(0, 0);
}

int concur_forkserver_serve(int socket_fd) {
    setpgid(0, 0);
    // The daemon's signals are not for the helper (a terminal's Ctrl-C, systemd's SIGTERM go to
    // the daemon, which drains its workers); it ends when the daemon's end of the socket closes.
    int ignored[] = {SIGINT, SIGTERM, SIGQUIT, SIGHUP, SIGTTIN, SIGTTOU, SIGUSR1, SIGUSR2, SIGPIPE};
    for (size_t index = 0; index < sizeof ignored / sizeof ignored[0]; index++) signal(ignored[index], SIG_IGN);
    sigset_t children;
    sigemptyset(&children);
    sigaddset(&children, SIGCHLD);
    sigprocmask(SIG_BLOCK, &children, NULL);
    int child_signals = signalfd(-1, &children, SFD_CLOEXEC | SFD_NONBLOCK);
    if (child_signals < 0) _exit(70);
    for (;;) {
        struct pollfd descriptors[2] = {{socket_fd, POLLIN, 0}, {child_signals, POLLIN, 0}};
        if (poll(descriptors, 2, -1) < 0) {
            if (errno == EINTR) continue;
            _exit(70);
        }
        if (descriptors[1].revents) {
            struct signalfd_siginfo info;
            while (read(child_signals, &info, sizeof info) > 0) {
            }
            int status;
            pid_t pid;
            while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
                concur_forkserver_message message = {2, 0, pid, 0, WIFEXITED(status) ? WEXITSTATUS(status) : -1,
                                                     WIFSIGNALED(status) ? WTERMSIG(status) : -1};
                forkserver_send(socket_fd, message);
            }
        }
        if (!descriptors[0].revents) continue;
        forkserver_request_buffer buffer;
        forkserver_request_prepare(&buffer, 0);
        ssize_t got = recvmsg(socket_fd, &buffer.header, MSG_CMSG_CLOEXEC);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) _exit(0);  // the daemon is gone; the workers follow (their death signal)
        uint32_t request = buffer.request;
        struct cmsghdr *message = CMSG_FIRSTHDR(&buffer.header);
        if (!message || message->cmsg_type != SCM_RIGHTS || message->cmsg_len != CMSG_LEN(2 * sizeof(int))) {
            // Not a request this helper sends; close whatever descriptors came with it.
            for (; message; message = CMSG_NXTHDR(&buffer.header, message)) {
                if (message->cmsg_type != SCM_RIGHTS) continue;
                int *passed = (int *)CMSG_DATA(message);
                size_t count = (message->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                for (size_t index = 0; index < count; index++) close(passed[index]);
            }
            concur_forkserver_message reply = {1, request, -1, EINVAL, -1, -1};
            forkserver_send(socket_fd, reply);
            continue;
        }
        int fds[2];
        memcpy(fds, CMSG_DATA(message), sizeof fds);
        pid_t pid = fork();
        if (pid == 0) {
            close(socket_fd);
            close(child_signals);
            forkserver_child(fds[0], fds[1]);
            return 0;
        }
        int error = pid < 0 ? errno : 0;
        close(fds[0]);
        close(fds[1]);
        concur_forkserver_message reply = {1, request, pid, error, -1, -1};
        forkserver_send(socket_fd, reply);
    }
}

int concur_forkserver_request(int socket_fd, uint32_t request, int channel_fd, int progress_fd) {
    forkserver_request_buffer buffer;
    forkserver_request_prepare(&buffer, request);
    struct cmsghdr *message = CMSG_FIRSTHDR(&buffer.header);
    message->cmsg_level = SOL_SOCKET;
    message->cmsg_type = SCM_RIGHTS;
    message->cmsg_len = CMSG_LEN(2 * sizeof(int));
    int fds[2] = {channel_fd, progress_fd};
    memcpy(CMSG_DATA(message), fds, sizeof fds);
    ssize_t sent;
    do {
        sent = sendmsg(socket_fd, &buffer.header, MSG_NOSIGNAL);
    } while (sent < 0 && errno == EINTR);
    return sent < 0 ? errno : 0;
}

static struct termios saved_terminal;
static int saved_terminal_fd = -1;
static char leave_sequence[256];
static size_t leave_length;

void concur_terminal_restore(void) {
    if (saved_terminal_fd < 0) return;
    ssize_t written = write(saved_terminal_fd, leave_sequence, leave_length);
    (void)written;
    tcsetattr(saved_terminal_fd, TCSAFLUSH, &saved_terminal);
    saved_terminal_fd = -1;
}

static void terminal_signal(int number) {
    (void)number;
    concur_terminal_restore();
    _exit(0);
}

void concur_terminal_set_leave_sequence(const char *leave) {
    size_t length = strlen(leave);
    if (length >= sizeof leave_sequence) length = sizeof leave_sequence - 1;
    memcpy(leave_sequence, leave, length);
    leave_length = length;
}

int concur_terminal_raw(int fd) {
    struct termios settings;
    if (tcgetattr(fd, &settings) != 0) return errno;
    saved_terminal = settings;
    saved_terminal_fd = fd;
    settings.c_lflag &= ~(ICANON | ECHO | ISIG | IEXTEN);
    settings.c_iflag &= ~(IXON | ICRNL);
    settings.c_cc[VMIN] = 0;
    settings.c_cc[VTIME] = 0;
    if (tcsetattr(fd, TCSAFLUSH, &settings) != 0) return errno;
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = terminal_signal;
    int numbers[] = {SIGTERM, SIGHUP, SIGINT, SIGQUIT};
    for (size_t index = 0; index < sizeof numbers / sizeof numbers[0]; index++) sigaction(numbers[index], &action, NULL);
    return 0;
}

void concur_terminal_size(int fd, int *rows, int *columns) {
    struct winsize size;
    if (ioctl(fd, TIOCGWINSZ, &size) != 0) {
        *rows = 0;
        *columns = 0;
        return;
    }
    *rows = size.ws_row;
    *columns = size.ws_col;
}

static void quiet_exit(int number) {
    (void)number;
    _exit(0);
}

void concur_exit_quietly_on_signals(void) {
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = quiet_exit;
    sigaction(SIGINT, &action, NULL);
    sigaction(SIGTERM, &action, NULL);
    sigaction(SIGHUP, &action, NULL);
}

static volatile sig_atomic_t terminal_resized;

static void note_resize(int number) {
    (void)number;
    terminal_resized = 1;
}

void concur_terminal_watch_resize(void) {
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = note_resize;  // no SA_RESTART: a blocking poll returns EINTR at once
    sigaction(SIGWINCH, &action, NULL);
}

int concur_terminal_take_resize(void) {
    int resized = terminal_resized;
    terminal_resized = 0;
    return resized;
}

static void (*fresh_thread_entry)(void);

static void *fresh_thread(void *unused) {
    (void)unused;
    fresh_thread_entry();
    return NULL;
}

void concur_run_on_fresh_thread(void (*entry)(void)) {
    fresh_thread_entry = entry;
    pthread_attr_t attributes;
    pthread_attr_init(&attributes);
    pthread_attr_setstacksize(&attributes, 8 << 20);
    pthread_t thread;
    if (pthread_create(&thread, &attributes, fresh_thread, NULL) != 0) _exit(71);
    for (;;) pause();
}
