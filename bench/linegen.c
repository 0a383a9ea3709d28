/* Writes BYTES of numbered ~60-byte lines to stdout as fast as it can: by
 * default in 64 KiB writes of whole lines, or with `--line-per-write` one
 * write(2) per line. Built static so that it runs inside the busybox image.
 * Usage: linegen BYTES [--line-per-write] */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LINE 61 /* 60 characters and a newline */

static void out(const char *p, size_t n) {
    while (n > 0) {
        ssize_t w = write(1, p, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            perror("linegen: write");
            exit(1);
        }
        p += w;
        n -= (size_t)w;
    }
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: linegen BYTES [--line-per-write]\n");
        return 2;
    }
    unsigned long long total = strtoull(argv[1], NULL, 10);
    int per_line = argc > 2 && strcmp(argv[2], "--line-per-write") == 0;
    static char buf[65536];
    size_t used = 0;
    unsigned long long written = 0;
    /* A 12-digit counter incremented in place: formatting each line would
     * make the generator, not the pipe, the bottleneck. */
    char line[LINE + 1] = "000000000000 the quick brown fox jumps over the lazy dog 012\n";
    while (written < total) {
        if (per_line) {
            out(line, LINE);
        } else {
            if (used + LINE > sizeof buf) {
                out(buf, used);
                used = 0;
            }
            memcpy(buf + used, line, LINE);
            used += LINE;
        }
        written += LINE;
        for (int i = 11; i >= 0 && ++line[i] > '9'; i--) line[i] = '0';
    }
    out(buf, used);
    return 0;
}
