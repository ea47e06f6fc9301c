/* The e2e seccomp probe: makes each syscall named on its command line once and prints how it
 * went, "NAME ok" or "NAME EPERM" (the errno's name). Exit status 0 when every call
 * succeeded, 1 otherwise. Built statically on the host, like the workload, so that the
 * calls it makes while it starts are the workload's. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static long call(const char *name) {
    static char buf[4096];
    if (!strcmp(name, "uname")) return syscall(SYS_uname, buf);
    if (!strcmp(name, "sysinfo")) return syscall(SYS_sysinfo, buf);
    if (!strcmp(name, "getppid")) return syscall(SYS_getppid);
    errno = EINVAL;
    return -2;
}

int main(int argc, char **argv) {
    int failed = 0;
    for (int i = 1; i < argc; i++) {
        long r = call(argv[i]);
        if (r == -2) {
            printf("%s unknown\n", argv[i]);
            failed = 1;
        } else if (r < 0) {
            printf("%s %s\n", argv[i], strerrorname_np(errno));
            failed = 1;
        } else {
            printf("%s ok\n", argv[i]);
        }
    }
    return failed;
}
