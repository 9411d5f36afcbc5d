#ifndef CONCUR_SHIMS_H
#define CONCUR_SHIMS_H

#include <stdint.h>
#include <sys/types.h>

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

#endif
