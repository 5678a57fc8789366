/* A timing wrapper for CNI plugins and netavark, used by scripts/bench_runtimes.py.
 *
 * Installed (as a symlink or copy) under a plugin's name in a wrapper directory DIR that
 * also holds DIR/.real/<name> (a link to the real program) and DIR/.calls.log. Run as
 * DIR/<name> (runtimes exec plugins by full path, so argv[0] names DIR), it takes
 * CLOCK_MONOTONIC, runs the real program with the same argv, environment, stdin, stdout
 * and stderr, waits for it, takes the clock again and appends one line to the log:
 *
 *   <name> <command> <ifname> <netns> <t0 ns> <t1 ns> <exit status> <pid>
 *
 * <command> is CNI_COMMAND, or for a program run without it (netavark) the first of its
 * arguments that is a known subcommand ("setup", "teardown", ...), else "-"; <netns> is
 * "netns" when CNI_NETNS is set and not empty, else "-" (containerd's second DEL). Times are
 * CLOCK_MONOTONIC, the clock of Python's time.monotonic_ns(). The line is written with
 * one write() on an O_APPEND descriptor, so concurrent calls never interleave. It exits
 * as the real program did. Its own start-up happens before t0 and its exit after t1: the
 * window covers the real program's spawn, run and reaping, as a runtime sees them.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static long long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static const char *word(const char *s) {
    /* Log fields are space-separated: anything empty or with a space becomes "-". */
    if (s == NULL || *s == '\0' || strpbrk(s, " \t\n") != NULL || strlen(s) > 64)
        return "-";
    return s;
}

int main(int argc, char **argv) {
    (void)argc;
    const char *slash = strrchr(argv[0], '/');
    if (slash == NULL) {
        fprintf(stderr, "cniwrap: run by a full path, not %s\n", argv[0]);
        return 127;
    }
    int dirlen = (int)(slash - argv[0]);
    const char *name = slash + 1;
    char real[PATH_MAX], log[PATH_MAX];
    if (snprintf(real, sizeof real, "%.*s/.real/%s", dirlen, argv[0], name) >= (int)sizeof real ||
        snprintf(log, sizeof log, "%.*s/.calls.log", dirlen, argv[0]) >= (int)sizeof log) {
        fprintf(stderr, "cniwrap: path too long\n");
        return 127;
    }
    const char *cmd = getenv("CNI_COMMAND");
    if (cmd == NULL) {
        static const char *subs[] = {"setup", "teardown", "version", "update", "dhcp-proxy", NULL};
        for (int i = 1; argv[i] != NULL && cmd == NULL; i++)
            for (int j = 0; subs[j] != NULL; j++)
                if (strcmp(argv[i], subs[j]) == 0) { cmd = subs[j]; break; }
    }
    const char *ifname = getenv("CNI_IFNAME");
    const char *netns = getenv("CNI_NETNS");

    long long t0 = now_ns();
    argv[0] = real;
    pid_t pid;
    int err = posix_spawn(&pid, real, NULL, NULL, argv, environ);
    if (err != 0) {
        fprintf(stderr, "cniwrap: cannot run %s: %s\n", real, strerror(err));
        return 127;
    }
    int status;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            fprintf(stderr, "cniwrap: waitpid: %s\n", strerror(errno));
            return 127;
        }
    }
    long long t1 = now_ns();
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);

    char line[512];
    int n = snprintf(line, sizeof line, "%s %s %s %s %lld %lld %d %d\n", word(name), word(cmd),
                     word(ifname), netns != NULL && *netns != '\0' ? "netns" : "-", t0, t1,
                     code, (int)getpid());
    int fd = open(log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0 || write(fd, line, (size_t)n) != n)
        fprintf(stderr, "cniwrap: cannot log to %s: %s\n", log, strerror(errno));
    if (fd >= 0)
        close(fd);
    if (WIFSIGNALED(status)) {
        signal(WTERMSIG(status), SIG_DFL);
        raise(WTERMSIG(status));
    }
    return code;
}
