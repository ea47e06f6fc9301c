/* Benchmark workload: each time /b/go holds "SECONDS", runs a getppid loop for that long and
 * writes the calls per second to /b/rate. Waits cheaply in between. Built statically on the
 * host by bench.py, bind-mounted into a plain debian container. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

int main(void) {
    const struct timespec tick = {0, 10 * 1000 * 1000};
    for (;;) {
        char buf[32] = {0};
        int fd = open("/b/go", O_RDONLY);
        if (fd < 0) { nanosleep(&tick, NULL); continue; }
        if (read(fd, buf, sizeof buf - 1) <= 0) buf[0] = '1';
        close(fd);
        unlink("/b/go");
        double seconds = atof(buf), start = now(), end = start + seconds, t = start;
        long calls = 0;
        while (t < end) {
            for (int i = 0; i < 1000; i++) syscall(SYS_getppid);
            calls += 1000;
            t = now();
        }
        FILE *out = fopen("/b/rate.tmp", "w");
        fprintf(out, "%.0f\n", calls / (t - start));
        fclose(out);
        rename("/b/rate.tmp", "/b/rate");
    }
}
