/* The e2e target: each time the host writes "N F S Z" into /spy/go, it makes exactly N getppid
 * calls, N failing fchdir(-1) calls (EBADF), F fork calls (each child exits at once; clone on
 * arm64, which has no fork), S signals to itself that a handler catches (S rt_sigreturn
 * calls), and Z clock_nanosleep calls of 20 ms each, then writes /spy/done: the nanoseconds
 * those Z calls took in all and the longest, as it measured them around each call (F, S and Z
 * may be left out: 0). It waits for /spy/go with poll(), so that its only clock_nanosleep
 * calls are those. Triggered from the host through a bind mount, never by `docker exec` (which
 * would run inside the target's cgroup and be counted too). Built statically on the host: the
 * target image needs nothing. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t caught;

static void on_signal(int sig) {
    (void)sig;
    caught++;
}

static void read_numbers(const char *path, long *n, long *forks, long *signals, long *sleeps) {
    char buf[96] = {0};
    *n = *forks = *signals = *sleeps = 0;
    int fd = open(path, O_RDONLY);
    if (fd < 0) return;
    if (read(fd, buf, sizeof buf - 1) > 0) sscanf(buf, "%ld %ld %ld %ld", n, forks, signals, sleeps);
    close(fd);
}

static long long now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000000000LL + t.tv_nsec;
}

int main(void) {
    const struct timespec nap = {0, 20 * 1000 * 1000};
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGUSR1, &sa, NULL);
    for (;;) {
        if (access("/spy/go", F_OK) != 0) {
            poll(NULL, 0, 5);
            continue;
        }
        long n, forks, signals, sleeps;
        read_numbers("/spy/go", &n, &forks, &signals, &sleeps);
        unlink("/spy/go");
        for (long i = 0; i < n; i++) syscall(SYS_getppid);
        for (long i = 0; i < n; i++) syscall(SYS_fchdir, -1);
        for (long i = 0; i < forks; i++) {
            /* The raw syscall: fork() in glibc is clone(). The child returns too. arm64 has
             * no fork: there it is clone with fork's flags. */
#ifdef SYS_fork
            if (syscall(SYS_fork) == 0) syscall(SYS_exit_group, 0);
#else
            if (syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0) == 0) syscall(SYS_exit_group, 0);
#endif
            wait(NULL);
        }
        /* One kill and one rt_sigreturn per signal: the handler runs on the way back. */
        for (long i = 0; i < signals; i++) syscall(SYS_kill, syscall(SYS_getpid), SIGUSR1);
        long long slept = 0, longest = 0;
        for (long i = 0; i < sleeps; i++) {
            long long t0 = now_ns();
            syscall(SYS_clock_nanosleep, CLOCK_MONOTONIC, 0, &nap, NULL);
            long long took = now_ns() - t0;
            slept += took;
            if (took > longest) longest = took;
        }
        /* Written whole, then renamed: the host reads it once it exists. */
        int fd = open("/spy/done.tmp", O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) {
            dprintf(fd, "%lld %lld\n", slept, longest);
            close(fd);
            rename("/spy/done.tmp", "/spy/done");
        }
    }
}
