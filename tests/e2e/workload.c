/* The e2e target: each time the host writes "N F" into /spy/go, it makes exactly N getppid
 * calls, N failing fchdir(-1) calls (EBADF) and F fork calls (each child exits at once),
 * then writes /spy/done. Triggered from the host
 * through a bind mount, never by `docker exec` (which would run inside the target's cgroup
 * and be counted too). Built statically on the host: the target image needs nothing. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void read_numbers(const char *path, long *n, long *forks) {
    char buf[64] = {0};
    *n = *forks = 0;
    int fd = open(path, O_RDONLY);
    if (fd < 0) return;
    if (read(fd, buf, sizeof buf - 1) > 0) sscanf(buf, "%ld %ld", n, forks);
    close(fd);
}

int main(void) {
    const struct timespec tick = {0, 5 * 1000 * 1000};
    for (;;) {
        if (access("/spy/go", F_OK) != 0) {
            nanosleep(&tick, NULL);
            continue;
        }
        long n, forks;
        read_numbers("/spy/go", &n, &forks);
        unlink("/spy/go");
        for (long i = 0; i < n; i++) syscall(SYS_getppid);
        for (long i = 0; i < n; i++) syscall(SYS_fchdir, -1);
        for (long i = 0; i < forks; i++) {
            /* The raw syscall: fork() in glibc is clone(). The child returns too. */
            if (syscall(SYS_fork) == 0) syscall(SYS_exit_group, 0);
            wait(NULL);
        }
        int fd = open("/spy/done", O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) close(fd);
    }
}
