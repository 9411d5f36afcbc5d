#define _GNU_SOURCE
#include "concur_shims.h"

#include <pthread.h>
#include <sys/prctl.h>
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
