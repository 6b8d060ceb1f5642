/*
 * Test payload for criu4j: a small, long-running process tree that CRIU can
 * checkpoint and restore, and whose progress is observable from outside.
 *
 * Build:  cc -O2 -pthread -o payload payload.c
 * Usage:  payload --file PATH [--mem MIB] [--interval-ms N] [--threads N]
 *                 [--children N] [--append-file PATH]
 *
 * Run it the way the tests do, in its own PID namespace, so that a restored
 * copy can coexist with a frozen original on the same machine:
 *   unshare --pid --fork setsid ./payload --file /dev/shm/x/counter \
 *       </dev/null >/dev/null 2>&1 &
 * Start it holding no descriptors beyond 0-2 (close inherited ones): any
 * extra pipe or socket it inherits becomes part of what CRIU has to dump.
 *
 * PATH is opened once and the descriptor is kept for the whole life of the
 * process, so the open file itself is part of what CRIU must carry over.
 * Every tick the counter is rewritten in place at offset 0 as a fixed-width
 * record ("<decimal>", space padded, "\n", RECORD_LEN bytes in total): the
 * file size never changes (CRIU checks the size of open regular files on
 * restore) and a reader always sees one whole number.  The file stays empty
 * until the memory is allocated and touched, so "file holds a number" means
 * "payload is ready".
 *
 * With --append-file the payload also keeps a second file open (O_APPEND)
 * and appends one record per tick, the same fixed-width record as the
 * counter: line n holds n. That file grows while the process runs, which is
 * what CRIU must cope with for a process that writes a log: it records the
 * size at dump time and checks it on restore. Before every append the
 * payload checks that the file size and its own file offset are exactly
 * (records written) * RECORD_LEN, so a restore that lost or repeated data,
 * or reset the offset, stops it (exit 6). Readers outside can check that the
 * lines run 1, 2, 3, ... without a gap or a repeat.
 *
 * The payload checks itself and stops (exits, the counter stops moving) when
 * something did not survive a checkpoint/restore:
 *   exit 2  a memory page does not hold its pattern any more (1 MiB is
 *           checked per tick, walking round the region)
 *   exit 3  a child process died
 *   exit 4  the pipe from the children reached end of file
 *   exit 5  a thread stopped making progress
 *   exit 6  the appended file does not have the size or offset it wrote
 *   exit 1  bad usage or a failed system call at start-up
 * The reason is printed on stderr.
 *
 * SIGTERM and SIGINT end the payload (exit 0). As PID 1 of a namespace it
 * would otherwise ignore them: the kernel only delivers signals to a
 * namespace init for which it has a handler (SIGKILL always works from
 * outside). The children die with the parent (PR_SET_PDEATHSIG).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define RECORD_LEN 20            /* bytes per counter record, '\n' included */
#define PAGES_CHECKED_PER_TICK 256 /* 1 MiB of 4 KiB pages */
#define THREAD_STALL_TICKS 100   /* main-loop ticks without thread progress */

static long interval_ms = 100;

/* Memory region and its pattern. */
static uint64_t *mem;
static size_t mem_words;
static size_t page_words;

/* One counter per extra thread; only its own thread writes it. */
static volatile unsigned long *thread_counters;

static void on_term(int sig)
{
    (void)sig;
    _exit(0);
}

static void die(const char *what)
{
    fprintf(stderr, "payload: %s: %s\n", what, strerror(errno));
    exit(1);
}

static void fail(int code, const char *why)
{
    fprintf(stderr, "payload: %s\n", why);
    exit(code);
}

/* Sleep one interval; a signal (CRIU seizing/resuming us) must not cut it
 * short or turn into an error, so keep sleeping for the remainder. */
static void sleep_interval(void)
{
    struct timespec ts = {
        .tv_sec = interval_ms / 1000,
        .tv_nsec = (interval_ms % 1000) * 1000000L,
    };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* Every 64-bit word gets a value derived from its index: never zero, and
 * different on every page, so a lost page (reads as zero) or a page restored
 * at the wrong address is detected. */
static inline uint64_t pattern(size_t word_index)
{
    return ((uint64_t)word_index * 0x9E3779B97F4A7C15ULL) | 1;
}

static void fill_memory(long mib)
{
    size_t bytes = (size_t)mib << 20;
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        die("mmap");
    mem = p;
    mem_words = bytes / sizeof(uint64_t);
    page_words = (size_t)sysconf(_SC_PAGESIZE) / sizeof(uint64_t);
    for (size_t i = 0; i < mem_words; i++)
        mem[i] = pattern(i);
}

/* Check a few pages per tick, walking round the region, so that after a
 * restore the whole region gets verified over time without costing much. */
static void check_memory(void)
{
    static size_t next_page;
    size_t pages;

    if (mem_words == 0)
        return;
    pages = mem_words / page_words;
    for (int n = 0; n < PAGES_CHECKED_PER_TICK; n++) {
        size_t first = next_page * page_words;
        for (size_t i = first; i < first + page_words; i++)
            if (mem[i] != pattern(i))
                fail(2, "memory pattern mismatch");
        next_page = (next_page + 1) % pages;
    }
}

static void *thread_main(void *arg)
{
    volatile unsigned long *counter = arg;
    for (;;) {
        (*counter)++;
        sleep_interval();
    }
    return NULL;
}

static void start_threads(long n)
{
    pthread_attr_t attr;

    thread_counters = calloc((size_t)n, sizeof(*thread_counters));
    if (thread_counters == NULL)
        die("calloc");
    pthread_attr_init(&attr);
    /* The default 8 MiB stacks would only add to the dumped VMAs. */
    pthread_attr_setstacksize(&attr, 256 * 1024);
    for (long i = 0; i < n; i++) {
        pthread_t t;
        int err = pthread_create(&t, &attr, thread_main,
                                 (void *)&thread_counters[i]);
        if (err != 0) {
            errno = err;
            die("pthread_create");
        }
    }
    pthread_attr_destroy(&attr);
}

/* A thread that has not moved for many main-loop ticks is dead or stuck.
 * Ticks are counted rather than time measured because the monotonic clock
 * keeps running while the tree is frozen for a dump. */
static void check_threads(long n)
{
    static unsigned long *last_seen;
    static long *stalled;

    if (n == 0)
        return;
    if (last_seen == NULL) {
        last_seen = calloc((size_t)n, sizeof(*last_seen));
        stalled = calloc((size_t)n, sizeof(*stalled));
        if (last_seen == NULL || stalled == NULL)
            die("calloc");
    }
    for (long i = 0; i < n; i++) {
        unsigned long now = thread_counters[i];
        if (now != last_seen[i]) {
            last_seen[i] = now;
            stalled[i] = 0;
        } else if (++stalled[i] > THREAD_STALL_TICKS) {
            fail(5, "a thread stopped counting");
        }
    }
}

static void child_main(int wfd)
{
    const char byte = 'x';
    /* Do not outlive the parent (its death also closes the pipe, and the
     * next write then ends us with SIGPIPE). */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    for (;;) {
        /* A full pipe blocks the child until the parent drains it; that is
         * fine, the parent reads every tick. */
        if (write(wfd, &byte, 1) < 0 && errno != EINTR)
            _exit(1);
        sleep_interval();
    }
}

static int start_children(long n)
{
    int fds[2];

    if (pipe(fds) != 0)
        die("pipe");
    for (long i = 0; i < n; i++) {
        pid_t pid = fork();
        if (pid < 0)
            die("fork");
        if (pid == 0) {
            close(fds[0]);
            child_main(fds[1]);
        }
    }
    close(fds[1]);
    if (fcntl(fds[0], F_SETFL, O_NONBLOCK) != 0)
        die("fcntl");
    return fds[0];
}

static void drain_pipe(int rfd)
{
    char buf[512];
    for (;;) {
        ssize_t r = read(rfd, buf, sizeof(buf));
        if (r > 0)
            continue;
        if (r == 0)
            fail(4, "pipe from the children reached end of file");
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return;
        die("read pipe");
    }
}

/* We are usually PID 1 of our namespace, so we also reap anything that gets
 * re-parented to us; only our own children dying is an error. */
static void reap(long children)
{
    int status;
    while (waitpid(-1, &status, WNOHANG) > 0)
        if (children > 0)
            fail(3, "a child process died");
}

static void format_record(char rec[RECORD_LEN + 1], unsigned long long counter)
{
    int len = snprintf(rec, RECORD_LEN + 1, "%-*llu\n", RECORD_LEN - 1, counter);
    if (len != RECORD_LEN)
        fail(1, "counter record has the wrong length");
}

static void write_counter(int fd, unsigned long long counter)
{
    char rec[RECORD_LEN + 1];
    format_record(rec, counter);
    /* A short or interrupted write is retried next tick; nothing to do. */
    if (pwrite(fd, rec, RECORD_LEN, 0) < 0 && errno != EINTR)
        die("pwrite");
}

/* Appends record number `next` (1, 2, ...) after checking that the file holds
 * exactly the next - 1 records written before, and that our offset is at its
 * end. A short write is finished before returning so that the invariant holds
 * on the next tick. */
static void append_record(int fd, unsigned long long next)
{
    char rec[RECORD_LEN + 1];
    off_t expected = (off_t)(next - 1) * RECORD_LEN;
    struct stat st;
    size_t done = 0;

    if (fstat(fd, &st) != 0)
        die("fstat appended file");
    if (st.st_size != expected)
        fail(6, "appended file has the wrong size");
    if (lseek(fd, 0, SEEK_CUR) != expected)
        fail(6, "appended file offset is not at the end");
    format_record(rec, next);
    while (done < RECORD_LEN) {
        ssize_t w = write(fd, rec + done, RECORD_LEN - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            die("append");
        done += (size_t)w;
    }
}

static long parse_long(const char *opt, const char *value, long min, long max)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(value, &end, 10);
    if (errno != 0 || end == value || *end != '\0' || v < min || v > max) {
        fprintf(stderr, "payload: bad value for %s: %s\n", opt, value);
        exit(1);
    }
    return v;
}

static void usage(void)
{
    fprintf(stderr, "usage: payload --file PATH [--mem MIB] [--interval-ms N]"
                    " [--threads N] [--children N] [--append-file PATH]\n");
    exit(1);
}

int main(int argc, char **argv)
{
    const char *path = NULL, *append_path = NULL;
    long mib = 0, threads = 0, children = 0;
    unsigned long long counter = 0, appended = 0;
    int fd, rfd = -1, afd = -1;

    for (int i = 1; i < argc; i++) {
        const char *opt = argv[i];
        if (i + 1 >= argc)
            usage();
        const char *val = argv[++i];
        if (strcmp(opt, "--file") == 0)
            path = val;
        else if (strcmp(opt, "--mem") == 0)
            mib = parse_long(opt, val, 0, 1L << 20);
        else if (strcmp(opt, "--interval-ms") == 0)
            interval_ms = parse_long(opt, val, 1, 3600 * 1000L);
        else if (strcmp(opt, "--threads") == 0)
            threads = parse_long(opt, val, 0, 1024);
        else if (strcmp(opt, "--children") == 0)
            children = parse_long(opt, val, 0, 1024);
        else if (strcmp(opt, "--append-file") == 0)
            append_path = val;
        else
            usage();
    }
    if (path == NULL)
        usage();

    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_term;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGTERM, &sa, NULL) != 0 || sigaction(SIGINT, &sa, NULL) != 0)
        die("sigaction");

    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        die(path);
    if (append_path != NULL) {
        afd = open(append_path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC,
                   0644);
        if (afd < 0)
            die(append_path);
    }

    /* Children and threads come before the memory so that neither the fork
     * nor the threads copy or touch the big region. */
    if (children > 0)
        rfd = start_children(children);
    if (threads > 0)
        start_threads(threads);
    if (mib > 0)
        fill_memory(mib);

    for (;;) {
        write_counter(fd, ++counter);
        if (afd >= 0)
            append_record(afd, ++appended);
        sleep_interval();
        check_memory();
        check_threads(threads);
        if (rfd >= 0)
            drain_pipe(rfd);
        reap(children);
    }
}
