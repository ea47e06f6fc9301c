/* The e2e target of --by-process: a process family of known shape. At start the parent (comm
 * "parent") starts a thread and forks two children, which exec nothing but rename themselves
 * (prctl PR_SET_NAME: "child-b", "child-c"). Each then waits for /spy/go ("A B C D [F]"), and:
 *   - the parent makes A getppid calls, then forks F children one after the other ("storm":
 *     each makes 10 getppid calls and exits; the parent reaps it before the next),
 *   - its thread makes D getuid calls (a thread's calls are its process's),
 *   - child-b makes B getpgid calls and goes on running,
 *   - child-c makes C getpgid calls and exits (mid-window: the host triggers it in the window),
 * each writing /spy/done-<who> once done. Every waiter polls /spy/go with access() and sleeps
 * with poll() between looks: those are the runtime's own calls, as in workload.c. Triggered
 * from the host through a bind mount, never by `docker exec` (which would be counted too).
 * Built statically on the host: the target image needs nothing. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static long numbers[5]; /* A B C D F */

static void wait_for_go(void) {
    while (access("/spy/go", F_OK) != 0) poll(NULL, 0, 5);
    char buf[96] = {0};
    int fd = open("/spy/go", O_RDONLY);
    if (fd >= 0) {
        if (read(fd, buf, sizeof buf - 1) > 0)
            sscanf(buf, "%ld %ld %ld %ld %ld", &numbers[0], &numbers[1], &numbers[2], &numbers[3],
                   &numbers[4]);
        close(fd);
    }
}

static void done(const char *who) {
    char tmp[64], path[64];
    snprintf(tmp, sizeof tmp, "/spy/done-%s.tmp", who);
    snprintf(path, sizeof path, "/spy/done-%s", who);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) close(fd);
    rename(tmp, path);
}

static void *thread_main(void *arg) {
    (void)arg;
    wait_for_go();
    for (long i = 0; i < numbers[3]; i++) syscall(SYS_getuid);
    done("thread");
    return NULL;
}

static void child(const char *name, int index, int then_exit) {
    prctl(PR_SET_NAME, name, 0, 0, 0);
    wait_for_go();
    for (long i = 0; i < numbers[index]; i++) syscall(SYS_getpgid, 0);
    done(name);
    if (then_exit) syscall(SYS_exit_group, 0);
    for (;;) pause();
}

int main(void) {
    prctl(PR_SET_NAME, "parent", 0, 0, 0);
    if (fork() == 0) child("child-b", 1, 0);
    if (fork() == 0) child("child-c", 2, 1);
    pthread_t thread;
    pthread_create(&thread, NULL, thread_main, NULL);
    wait_for_go();
    for (long i = 0; i < numbers[0]; i++) syscall(SYS_getppid);
    for (long i = 0; i < numbers[4]; i++) {
        pid_t pid = fork();
        if (pid == 0) {
            prctl(PR_SET_NAME, "storm", 0, 0, 0);
            for (int j = 0; j < 10; j++) syscall(SYS_getppid);
            syscall(SYS_exit_group, 0);
        }
        waitpid(pid, NULL, 0);
    }
    done("parent");
    pthread_join(thread, NULL);
    for (;;) pause(); /* the children stay: child-c a zombie once it exits, child-b running */
}
