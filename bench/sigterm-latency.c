/*
 * How long a SIGTERM sent to a supervisor takes to reach the command it
 * supervises, when that command traps SIGTERM (bench/startup.sh).
 *
 *   sigterm-latency trap FIFO
 *       The supervised command (built static, so that it runs in any image).
 *       Catches SIGTERM and writes one byte to FIFO for each; exits 0 on SIGUSR1.
 *   sigterm-latency measure N FIFO COMMAND [ARGS...]
 *       Starts COMMAND (a supervisor running `sigterm-latency trap FIFO`), waits
 *       for the trap to be armed, then N times: sends SIGTERM to COMMAND's pid
 *       and times until the byte arrives on FIFO. Prints the median, the 90th
 *       percentile and the minimum in microseconds, then stops COMMAND with
 *       SIGUSR1 and checks that it exited 0.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int fifo = -1;

static void on_term(int sig)
{
    (void)sig;
    (void)!write(fifo, "t", 1);
}

static void on_usr1(int sig)
{
    (void)sig;
    _exit(0);
}

static int trap(const char *path)
{
    struct sigaction sa;
    if ((fifo = open(path, O_WRONLY | O_CLOEXEC)) < 0) {
        perror("sigterm-latency: open fifo");
        return 125;
    }
    memset(&sa, 0, sizeof sa);
    sa.sa_flags = SA_RESTART;
    sa.sa_handler = on_term;
    sigaction(SIGTERM, &sa, NULL);
    sa.sa_handler = on_usr1;
    sigaction(SIGUSR1, &sa, NULL);
    (void)!write(fifo, "r", 1); /* armed */
    for (;;)
        pause();
}

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int by_value(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int measure(int n, const char *path, char **command)
{
    struct timespec gap = {0, 2 * 1000 * 1000}; /* let the supervisor go idle again */
    double *t = calloc(n, sizeof *t);
    char byte;
    int fd, status;
    pid_t pid;

    if (!t || n < 1)
        return 125;
    pid = fork();
    if (pid == 0) {
        execvp(command[0], command);
        perror("sigterm-latency: exec");
        _exit(127);
    }
    alarm(60); /* a lost signal must not hang the benchmark */
    /* Blocks until the trap opens its end. */
    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0 || read(fd, &byte, 1) != 1 || byte != 'r') {
        fprintf(stderr, "sigterm-latency: the trap did not start\n");
        kill(pid, SIGKILL);
        return 125;
    }
    for (int i = 0; i < n; i++) {
        nanosleep(&gap, NULL);
        double start = now_us();
        kill(pid, SIGTERM);
        if (read(fd, &byte, 1) != 1) {
            fprintf(stderr, "sigterm-latency: the trap went away\n");
            return 125;
        }
        t[i] = now_us() - start;
    }
    kill(pid, SIGUSR1);
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "sigterm-latency: %s did not exit 0 on SIGUSR1\n", command[0]);
        return 125;
    }
    qsort(t, n, sizeof *t, by_value);
    printf("%.1f %.1f %.1f\n", t[n / 2], t[n * 9 / 10], t[0]);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "trap") == 0)
        return trap(argv[2]);
    if (argc >= 5 && strcmp(argv[1], "measure") == 0)
        return measure(atoi(argv[2]), argv[3], argv + 4);
    fprintf(stderr, "usage: sigterm-latency trap FIFO | measure N FIFO COMMAND [ARGS...]\n");
    return 125;
}
