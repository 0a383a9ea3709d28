/*
 * The reference for psdock's start-up time: the least a program can do to run
 * one command in a throwaway overlay container, and nothing else.
 *
 *   overlay-run IMAGE DIR COMMAND [ARGS...]
 *
 * Creates DIR/tmp and DIR/merged, mounts a tmpfs at DIR/tmp for the upper
 * and work directories (as psdock does by default), an overlay of IMAGE at
 * DIR/merged, clones a child into new mount and PID namespaces that chroots
 * into it and execs COMMAND, waits for it, unmounts, and removes what it
 * created. Exits with the command's status. No /proc, /dev, capabilities or
 * signal handling: this is the floor psdock's own work is measured against
 * (bench/startup.sh).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char tmp[PATH_MAX], upper[PATH_MAX], work[PATH_MAX], merged[PATH_MAX];
static char **command;

static void die(const char *what, const char *path)
{
    fprintf(stderr, "overlay-run: %s %s: %s\n", what, path, strerror(errno));
    exit(125);
}

static int child(void *arg)
{
    (void)arg;
    if (chroot(merged) != 0 || chdir("/") != 0) {
        perror("overlay-run: chroot");
        _exit(125);
    }
    execv(command[0], command);
    perror("overlay-run: exec");
    _exit(127);
}

static void path(char *out, const char *dir, const char *name)
{
    if (snprintf(out, PATH_MAX, "%s/%s", dir, name) >= PATH_MAX) {
        errno = ENAMETOOLONG;
        die("path", dir);
    }
}

int main(int argc, char **argv)
{
    static char stack[64 * 1024];
    char data[3 * PATH_MAX + 64];
    int status, code;
    pid_t pid;

    if (argc < 4) {
        fprintf(stderr, "usage: overlay-run IMAGE DIR COMMAND [ARGS...]\n");
        return 125;
    }
    command = argv + 3;
    path(tmp, argv[2], "tmp");
    path(upper, tmp, "upper");
    path(work, tmp, "work");
    path(merged, argv[2], "merged");
    if (mkdir(tmp, 0700) != 0) die("mkdir", tmp);
    if (mount("tmpfs", tmp, "tmpfs", 0, "mode=0700") != 0) die("mount", tmp);
    if (mkdir(upper, 0755) != 0) die("mkdir", upper);
    if (mkdir(work, 0700) != 0) die("mkdir", work);
    if (mkdir(merged, 0755) != 0) die("mkdir", merged);
    snprintf(data, sizeof data, "lowerdir=%s,upperdir=%s,workdir=%s", argv[1], upper, work);
    if (mount("overlay", merged, "overlay", 0, data) != 0) die("mount", merged);

    /* clone() with our own stack: the child only chroots and execs. */
    pid = clone(child, stack + sizeof stack, CLONE_NEWNS | CLONE_NEWPID | SIGCHLD, NULL);
    if (pid < 0) die("clone", merged);
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) die("waitpid", "child");
    }
    code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);

    if (umount2(merged, MNT_DETACH) != 0) die("umount", merged);
    /* The upper and work directories go with the tmpfs. */
    if (umount2(tmp, MNT_DETACH) != 0) die("umount", tmp);
    if (rmdir(merged) != 0) die("rmdir", merged);
    if (rmdir(tmp) != 0) die("rmdir", tmp);
    return code;
}
