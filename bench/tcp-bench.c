/*
 * A TCP server and its two clients, for bench/publish.sh: bulk throughput
 * and the rate of short connections through one path to a container.
 *
 *   tcp-bench serve PORT
 *       The server (built static, so that it runs in any image). One
 *       connection at a time: reads an 8-byte count N (little-endian),
 *       sends N zero bytes, closes.
 *   tcp-bench get IP PORT BYTES
 *       One connection asking for BYTES; prints the MB/s (10^6 bytes) at
 *       which they arrived, from connect() to end of file. Exits 1 if fewer
 *       arrived.
 *   tcp-bench conns IP PORT COUNT
 *       COUNT connections one after another, each asking for one byte and
 *       reading to end of file; prints connections per second.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define CHUNK (1 << 20)
static char buf[CHUNK];

static void die(const char *what)
{
    perror(what);
    exit(2);
}

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static _Noreturn void serve(int port)
{
    int one = 1;
    int l = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    if (l < 0)
        die("socket");
    setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(l, (struct sockaddr *)&a, sizeof a) < 0 || listen(l, 128) < 0)
        die("bind");
    for (;;) {
        int c = accept(l, NULL, NULL);
        uint64_t want = 0;
        size_t got = 0;
        if (c < 0)
            continue;
        while (got < sizeof want) {
            ssize_t n = read(c, (char *)&want + got, sizeof want - got);
            if (n <= 0)
                break;
            got += n;
        }
        while (got == sizeof want && want > 0) {
            ssize_t n = write(c, buf, want < CHUNK ? want : CHUNK);
            if (n <= 0)
                break;
            want -= n;
        }
        close(c);
    }
}

/* Connects, asks for `want` bytes and reads them to end of file; returns how many came. */
static uint64_t fetch(const struct sockaddr_in *to, uint64_t want)
{
    int one = 1;
    uint64_t got = 0;
    ssize_t n;
    int s = socket(AF_INET, SOCK_STREAM, 0);
    if (s < 0)
        die("socket");
    setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(s, (const struct sockaddr *)to, sizeof *to) < 0)
        die("connect");
    if (write(s, &want, sizeof want) != sizeof want)
        die("write");
    while ((n = read(s, buf, CHUNK)) > 0)
        got += n;
    close(s);
    return got;
}

int main(int argc, char **argv)
{
    struct sockaddr_in to = {.sin_family = AF_INET};
    if (argc == 3 && !strcmp(argv[1], "serve"))
        serve(atoi(argv[2]));
    if (argc != 5 || inet_pton(AF_INET, argv[2], &to.sin_addr) != 1) {
        fprintf(stderr, "usage: tcp-bench serve PORT | get IP PORT BYTES | conns IP PORT COUNT\n");
        return 2;
    }
    to.sin_port = htons(atoi(argv[3]));
    uint64_t n = strtoull(argv[4], NULL, 10);
    double start = now();
    if (!strcmp(argv[1], "get")) {
        uint64_t got = fetch(&to, n);
        printf("%.1f\n", got / (now() - start) / 1e6);
        return got == n ? 0 : 1;
    }
    if (!strcmp(argv[1], "conns")) {
        for (uint64_t i = 0; i < n; i++)
            if (fetch(&to, 1) != 1)
                return 1;
        printf("%.0f\n", n / (now() - start));
        return 0;
    }
    return 2;
}
