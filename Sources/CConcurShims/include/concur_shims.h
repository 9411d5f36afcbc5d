#ifndef CONCUR_SHIMS_H
#define CONCUR_SHIMS_H

#include <stdint.h>
#include <sys/types.h>
#include <time.h>

/// Nanoseconds on CLOCK_MONOTONIC (inline: it is on the pool's hot path).
static inline uint64_t concur_monotonic_nanoseconds(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
}

/// Layout-compatible with Linux's `struct ucred` (SO_PEERCRED), which glibc hides behind
/// _GNU_SOURCE and Swift therefore does not import.
typedef struct concur_ucred {
    pid_t pid;
    uid_t uid;
    gid_t gid;
} concur_ucred;

/// The SO_PEERCRED option name (not imported by Swift's Glibc module on every version).
int concur_so_peercred(void);

/// Reads the peer credentials of a connected Unix socket; returns 0 or -1 with errno set.
int concur_peer_credentials(int fd, concur_ucred *out);

/// prctl(PR_SET_PDEATHSIG, signal): prctl is variadic and therefore not callable from Swift.
int concur_set_parent_death_signal(int signal);

/// pidfd_open(2) through syscall(2), which is variadic too.
int concur_pidfd_open(pid_t pid, unsigned int flags);

/// Names the calling thread (at most 15 bytes are kept), for `top -H` and debuggers.
void concur_set_thread_name(const char *name);

/// The calling thread's kernel thread id.
pid_t concur_gettid(void);

/// Lowers the calling thread's CPU priority by `increment` nice levels (at most to 19); threads
/// it starts later inherit it. Returns 0, or an errno value.
int concur_lower_thread_priority(int increment);

/// posix_spawn of a worker or a command with everything a clean child needs: an empty signal
/// mask, every signal's disposition reset to default, a process group of its own, stdin from
/// /dev/null, `channel_fd` (if >= 0) as fd 3, `output_fd` (if >= 0) as stdout and stderr (else
/// both inherited), and every other descriptor closed. `search_path` uses PATH (posix_spawnp).
/// Returns 0 and the pid, or an errno value.
int concur_spawn(const char *path, char *const argv[], char *const envp[], int channel_fd, int output_fd,
                 int search_path, pid_t *pid);

/// posix_spawnp of an exec job's command, as `concur_spawn` does it, with `output_fd` as stdout
/// and `error_fd` as stderr, in `directory` (NULL: the caller's; a directory it cannot enter is
/// the spawn's error).
int concur_spawn_command(const char *path, char *const argv[], char *const envp[], int output_fd, int error_fd,
                         const char *directory, pid_t *pid);

/// As `concur_spawn`, with `progress_fd` (if >= 0) as fd 4 (every descriptor above is closed).
int concur_spawn_worker(const char *path, char *const argv[], char *const envp[], int channel_fd, int progress_fd, pid_t *pid);

/// A shared-memory page (memfd, close-on-exec) for a worker's progress; returns the fd or -1.
int concur_progress_page(void);

/// Maps a progress page read-write and shared; returns NULL on failure.
uint64_t *concur_map_progress(int fd);

/// Unmaps a progress page.
void concur_unmap_progress(uint64_t *page);

/// Stores `value` at `slot` with release ordering (visible to another process in order).
void concur_store_release(uint64_t *slot, uint64_t value);

/// Loads `slot` with acquire ordering.
uint64_t concur_load_acquire(const uint64_t *slot);

/// Installs the worker process's SIGTERM handler: it kills the process group of the command the
/// worker runs (if any) and exits, so an `exec` job never outlives a stopped worker.
void concur_install_worker_term_handler(void);

/// Tells the SIGTERM handler which process group to kill (0: none), and the slot given to
/// `concur_publish_command_group`, if any.
void concur_set_command_group(pid_t group);

/// In a child worker: where `concur_set_command_group` also stores the group (a slot of its
/// progress page), so that the daemon can kill a command whose worker was killed outright.
void concur_publish_command_group(uint64_t *slot);

/// Kills the process group `concur_set_command_group` named (if any) and exits with `code`: how
/// a worker process leaves when the daemon is gone, so its command does not outlive it.
__attribute__((noreturn)) void concur_exit_stopping_command(int code);

/// pipe2(O_CLOEXEC): both ends close-on-exec from the start; 0 or -1 (errno set).
int concur_pipe_cloexec(int ends[2]);

/// fcntl(F_SETPIPE_SZ): the pipe's capacity in bytes (rounded up by the kernel); the new size or -1.
int concur_set_pipe_size(int fd, int bytes);

/// The command guard's loop (`concurd __guard`): reads 8-byte records from `fd`, a process group
/// to watch (positive) or to forget (negative), in batches every 200 ms (it wakes for the hang-up
/// alone, not for each record); at end of file, when the daemon is gone however it ended,
/// SIGKILLs every group still watched and exits. Never returns.
__attribute__((noreturn)) void concur_guard_serve(int fd);

/// waitpid(pid, WNOHANG): 1 and the decoded status when it exited, 0 while it runs, -1 on error.
/// `exit_code` is set for a normal exit, `signal` for a death by signal (the other is -1).
int concur_reap(pid_t pid, int *exit_code, int *signal);

/// A doorbell: an eventfd (close-on-exec, non-blocking) that `concur_ring` makes readable and
/// `concur_drain` clears. Returns the descriptor or -1.
int concur_doorbell(void);

/// Rings a doorbell (async-signal-safe).
void concur_ring(int doorbell);

/// Clears a doorbell.
void concur_drain(int doorbell);

/// The number of threads of the calling process (from /proc/self/task), or -1.
int concur_thread_count(void);

/// A forkserver's message to the daemon: a fork's result, or a worker's exit.
typedef struct concur_forkserver_message {
    /// 1: the reply to request `request` (pid, or error an errno value); 2: worker `pid` exited
    /// (`code` for a normal exit, `signal` for a death by signal, the other -1).
    int32_t type;
    uint32_t request;
    int32_t pid;
    int32_t error;
    int32_t code;
    int32_t signal;
} concur_forkserver_message;

/// The forkserver's loop, in the helper process (a single-threaded `concurd __forkserver`): it
/// receives fork requests on `socket_fd` (a SOCK_SEQPACKET socket; each request is a uint32 id
/// with two descriptors, a worker's channel and its progress page), forks a worker for each
/// and replies with its pid, reaps its workers and reports their exits. It ignores the signals
/// meant for the daemon and sits in a process group of its own. It `_exit`s when the daemon
/// goes away; it returns only in a newly forked worker, with its channel as fd 3, its progress
/// page as fd 4, stdin from /dev/null, every other descriptor above 2 closed, an empty signal
/// mask, every signal's default disposition, and a process group of its own.
int concur_forkserver_serve(int socket_fd);

/// Sends a fork request to the forkserver: `request` and the two descriptors. 0 or an errno value.
int concur_forkserver_request(int socket_fd, uint32_t request, int channel_fd, int progress_fd);

/// Puts terminal `fd` in raw mode (no echo, no line editing, no signals from keys, reads return
/// at once) after saving its settings for concur_terminal_restore. 0 or an errno value.
int concur_terminal_raw(int fd);

/// Writes `leave` (the escape sequence that leaves a full-screen view; copied, at most 255
/// bytes) to the terminal and restores the saved settings: now, and from a handler of SIGTERM,
/// SIGHUP, SIGINT and SIGQUIT that then exits with status 0 (installed by
/// concur_terminal_raw).
void concur_terminal_set_leave_sequence(const char *leave);

/// Leaves the full-screen view (the leave sequence) and restores the terminal settings saved
/// by concur_terminal_raw; safe to call more than once.
void concur_terminal_restore(void);

/// The size of terminal `fd`: rows and columns, or 0 and 0 if it is not a terminal.
void concur_terminal_size(int fd, int *rows, int *columns);

/// Installs handlers of SIGINT, SIGTERM and SIGHUP that end the process at once with status 0
/// (for a command that prints whole lines and has nothing to clean up).
void concur_exit_quietly_on_signals(void);

/// Installs a SIGWINCH handler that only notes the resize (and interrupts a blocking poll).
void concur_terminal_watch_resize(void);

/// Whether the terminal was resized since the last call.
int concur_terminal_take_resize(void);

/// Runs `entry` on a new thread and parks the calling thread for ever (it only waits for
/// signals). For a forked worker: the thread that fork() copied carries the parent's thread id
/// in thread-local caches (the Swift runtime's futex locks cache it and store it in the lock
/// word), so it must not run Swift code that could contend a lock; a new thread starts clean.
void concur_run_on_fresh_thread(void (*entry)(void)) __attribute__((noreturn));

#endif
