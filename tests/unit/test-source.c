/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* Image sources (source.h), refereed by stock tools:
 *   - local files: raw, zstd (one frame and two frames, made by `zstd`), xz (`xz -T2` with many
 *     blocks, and `xz -T1`): source_read() gives back exactly the original bytes, fills every
 *     buffer but the last, and the SHA256 equals `sha256sum` of the file as published;
 *   - the same over HTTP from tests/http-server.py; with the connection dropped twice the bytes
 *     are the same, source_resumes() is 2 and the server's log shows range requests from where
 *     each drop was, and no byte sent twice; a stalled connection is resumed too; a server
 *     without range support fails with a sentence, never with wrong data; 404, 410 are -ENOENT,
 *     503 fails after the retries; a redirect is followed; a URL with a password is refused;
 *   - truncated and trailing garbage zstd and xz files fail with "damaged";
 *   - source_fetch_small(), source_sibling(), sums_lookup();
 *   - sums_verify() with PEM keys (RSA, EC P-256, Ed25519; `openssl dgst -sha256 -sign` and
 *     `openssl pkeyutl -sign -rawin`) and with OpenPGP keys (made by `gpg --quick-gen-key`,
 *     binary and armoured; `gpg --detach-sign`): good, SHA256SUMS with one byte changed, and a
 *     signature by another key. */

#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "error.h"
#include "fileio.h"
#include "interrupt.h"
#include "log.h"
#include "source.h"
#include "tests.h"

#define MiB (UINT64_C(1024) * 1024)

static char workdir[] = "/tmp/test-source.XXXXXX";
static bool have_workdir;
static pid_t server_pid = -1;
static char *gnupghome;

static void stop_server(void) {
        if (server_pid > 0) {
                kill(server_pid, SIGTERM);
                (void) waitpid(server_pid, NULL, 0);
                server_pid = -1;
        }
}

static void cleanup(void) {
        char cmd[512];

        stop_server();
        if (gnupghome) {
                snprintf(cmd, sizeof(cmd), "GNUPGHOME=%s gpgconf --kill all >/dev/null 2>&1", gnupghome);
                (void) system(cmd);
        }
        if (have_workdir) {
                snprintf(cmd, sizeof(cmd), "rm -rf %s", workdir);
                (void) system(cmd);
                have_workdir = false;
        }
}

static char *path_of(const char *fmt, ...) _printf_(1, 2);
static char *path_of(const char *fmt, ...) {
        char name[256], *p;
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(name, sizeof(name), fmt, ap);
        va_end(ap);
        ASSERT_TRUE(asprintf(&p, "%s/%s", workdir, name) > 0);
        return p;
}

/* Runs a shell command in the work directory; it must succeed. */
static void sh(const char *fmt, ...) _printf_(1, 2);
static void sh(const char *fmt, ...) {
        char *cmd, *full;
        va_list ap;
        int r;

        va_start(ap, fmt);
        ASSERT_TRUE(vasprintf(&cmd, fmt, ap) > 0);
        va_end(ap);
        ASSERT_TRUE(asprintf(&full, "cd %s && %s", workdir, cmd) > 0);
        r = system(full);
        if (r != 0)
                FAIL("command failed (%d): %s", r, cmd);
        free(cmd);
        free(full);
}

/* The first line of a shell command's output. */
static char *sh_out(const char *fmt, ...) _printf_(1, 2);
static char *sh_out(const char *fmt, ...) {
        char *cmd, *full, line[4096];
        va_list ap;
        FILE *f;

        va_start(ap, fmt);
        ASSERT_TRUE(vasprintf(&cmd, fmt, ap) > 0);
        va_end(ap);
        ASSERT_TRUE(asprintf(&full, "cd %s && %s", workdir, cmd) > 0);
        f = popen(full, "r");
        ASSERT_TRUE(f);
        if (!fgets(line, sizeof(line), f))
                line[0] = 0;
        ASSERT_EQ(pclose(f), 0);
        line[strcspn(line, "\n")] = 0;
        free(cmd);
        free(full);
        return strdup(line);
}

static char *sha256sum(const char *name) {
        char *out = sh_out("sha256sum %s", name);
        out[strcspn(out, " ")] = 0;
        ASSERT_EQ(strlen(out), 64);
        return out;
}

static void read_file(const char *name, uint8_t **ret, size_t *ret_size) {
        char *p = path_of("%s", name), *data = NULL;
        size_t size = 0;

        ASSERT_OK(read_regular_file(p, "test file", 1024 * MiB, &data, &size));
        *ret = (uint8_t *) data;
        *ret_size = size;
        free(p);
}

static const SourceOptions fast = { .retries = 3, .retry_delay_ms = 20, .stall_seconds = 2 };

/* ---- the server --------------------------------------------------------------------------------- */

static unsigned port;

static void start_server(const char *extra) {
        char *portfile = path_of("port"), *logfile = path_of("requests.log"), *www = path_of("www"), *cmd;

        stop_server();
        (void) unlink(portfile);
        (void) unlink(logfile);
        ASSERT_TRUE(asprintf(&cmd, "exec python3 %s/tests/http-server.py %s %s --log %s %s", getenv("SOURCE_ROOT"), portfile, www,
                             logfile, extra) > 0);
        server_pid = fork();
        ASSERT_TRUE(server_pid >= 0);
        if (server_pid == 0) {
                (void) prctl(PR_SET_PDEATHSIG, SIGTERM);
                execl("/bin/sh", "sh", "-c", cmd, (char *) NULL);
                _exit(127);
        }
        for (int i = 0; i < 200; i++) {
                FILE *f = fopen(portfile, "r");
                if (f) {
                        ASSERT_EQ(fscanf(f, "%u", &port), 1);
                        fclose(f);
                        free(portfile), free(logfile), free(www), free(cmd);
                        return;
                }
                ASSERT_EQ(waitpid(server_pid, NULL, WNOHANG), 0);
                nanosleep(&(struct timespec) { .tv_nsec = 50 * 1000 * 1000 }, NULL);
        }
        FAIL("the test HTTP server did not start");
}

static char *url(const char *name) {
        char *u;
        ASSERT_TRUE(asprintf(&u, "http://127.0.0.1:%u/%s", port, name) > 0);
        return u;
}

typedef struct Request {
        char method[8], path[256], range[64];
        int status;
        uint64_t sent;
} Request;

static size_t read_requests_once(Request *r, size_t max) {
        char *p = path_of("requests.log"), line[512];
        FILE *f = fopen(p, "r");
        size_t n = 0;

        if (!f) {
                ASSERT_EQ(errno, ENOENT);
                free(p);
                return 0;
        }
        while (n < max && fgets(line, sizeof(line), f)) {
                ASSERT_EQ(sscanf(line, "%7s %255s %63s %d %" SCNu64, r[n].method, r[n].path, r[n].range, &r[n].status, &r[n].sent),
                          5);
                n++;
        }
        fclose(f);
        free(p);
        return n;
}

/* The server's log, once it holds at least the requests expected: the server writes a request's
 * line after its last byte, which the client may have read already. A line that came later than
 * expected would still be counted: the log is read again until it has been stable for 100 ms. */
static size_t read_requests(Request *r, size_t max, size_t expected) {
        size_t n = 0, last = SIZE_MAX;

        for (int i = 0; i < 300; i++) { /* up to 30 s: a loaded CI machine */
                n = read_requests_once(r, max);
                if (n >= expected && n == last)
                        break;
                last = n;
                nanosleep(&(struct timespec) { .tv_nsec = 100 * 1000 * 1000 }, NULL);
        }
        return n;
}

/* ---- the log ---------------------------------------------------------------------------------- */

static char logged[8192];
static bool logged_elsewhere;
static pthread_t main_thread;

static void capture_log(int level, const char *line, void *userdata) {
        /* Sinks are not thread-safe: every line must come through the caller's thread. */
        if (!pthread_equal(pthread_self(), main_thread))
                logged_elsewhere = true;
        if (strlen(logged) + strlen(line) + 2 < sizeof(logged)) {
                strcat(logged, line);
                strcat(logged, "\n");
        }
}

/* ---- reading ------------------------------------------------------------------------------------ */

/* Reads location whole in chunks of chunk bytes; every read but the last fills its buffer. */
static int read_all(const char *location, const SourceOptions *o, size_t chunk, uint8_t **ret, size_t *ret_size,
                    char ret_sha[65], ImageSource **ret_source) {
        _cleanup_(source_freep) ImageSource *s = NULL;
        uint8_t *data = NULL;
        size_t size = 0;
        bool short_read = false;
        int r;

        r = source_open(location, o, &s);
        if (r < 0)
                return r;
        for (;;) {
                ssize_t k;

                data = realloc(data, size + chunk);
                ASSERT_TRUE(data);
                k = source_read(s, data + size, chunk);
                if (k < 0) {
                        *ret = data;
                        *ret_size = size;
                        return (int) k;
                }
                if (k == 0)
                        break;
                ASSERT_FALSE(short_read); /* a short read only at the end */
                short_read = (size_t) k < chunk;
                size += (size_t) k;
        }
        r = source_finish(s, ret_sha);
        *ret = data;
        *ret_size = size;
        if (ret_source)
                *ret_source = TAKE_PTR(s);
        return r;
}

/* location decompresses to exactly original; its SHA256 is that of published (a file in the work
 * directory). */
static void check_source(const char *location, const char *original, const char *published, SourceCompression want,
                         const SourceOptions *o, size_t chunk, ImageSource **ret_source) {
        _cleanup_(freep) uint8_t *want_data = NULL, *got = NULL;
        _cleanup_(freep) char *want_sha = sha256sum(published);
        _cleanup_(source_freep) ImageSource *s = NULL;
        char *pub = path_of("%s", published);
        size_t want_size = 0, got_size = 0;
        char sha[65];
        struct stat st;
        int r;

        read_file(original, &want_data, &want_size);
        r = read_all(location, o, chunk, &got, &got_size, sha, &s);
        if (r < 0)
                FAIL("reading %s: %s", location, error_message_for(r) ?: strerror(-r));
        ASSERT_EQ(source_compression(s), want);
        ASSERT_EQ(got_size, want_size);
        ASSERT_TRUE(memcmp(got, want_data, want_size) == 0);
        ASSERT_STREQ(sha, want_sha);
        ASSERT_OK(stat(pub, &st));
        ASSERT_EQ(source_raw_size(s), st.st_size);
        ASSERT_EQ(source_raw_done(s), st.st_size);
        free(pub);
        if (ret_source)
                *ret_source = TAKE_PTR(s);
        printf("ok: %s (%s) equals %s, sha256 %s\n", location, source_compression_to_string(want), original, sha);
}

static void make_images(void) {
        sh("mkdir www");
        /* 6 MiB: random, zeros and text, so that the compressed files are of some size. */
        sh("{ head -c 2097152 /dev/urandom; head -c 2097152 /dev/zero; seq 1 400000 | head -c 2097152; } > www/img.raw");
        sh("zstd -q -3 -o www/img.raw.zst www/img.raw");
        /* Two frames, one after the other. */
        sh("head -c 3000000 www/img.raw | zstd -q -c > www/two.raw.zst && tail -c +3000001 www/img.raw | zstd -q -c >> "
           "www/two.raw.zst");
        sh("xz -q -1 -T2 --block-size=1MiB -c www/img.raw > www/img-mt.raw.xz");
        sh("xz -q -1 -T1 -c www/img.raw > www/img.raw.xz");
        /* Many blocks, really. */
        sh("[ \"$(xz --robot -l www/img-mt.raw.xz | awk '$1 == \"totals\" { print $3 }')\" -ge 6 ]");
        sh("[ \"$(xz --robot -l www/img.raw.xz | awk '$1 == \"totals\" { print $3 }')\" -eq 1 ]");
        /* 3 MiB of random bytes for the drops. */
        sh("head -c 3145728 /dev/urandom > www/random.raw");
        sh("zstd -q -1 -o www/random.raw.zst www/random.raw");
}

static void test_local(void) {
        struct {
                const char *name;
                SourceCompression c;
        } cases[] = {
                { "img.raw", SOURCE_RAW },         { "img.raw.zst", SOURCE_ZSTD }, { "two.raw.zst", SOURCE_ZSTD },
                { "img-mt.raw.xz", SOURCE_XZ },    { "img.raw.xz", SOURCE_XZ },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                char *p = path_of("www/%s", cases[i].name), *pub = path_of("www/%s", cases[i].name);
                SourceCompression c;

                ASSERT_OK(source_file_compression(p, &c));
                ASSERT_EQ(c, cases[i].c);
                /* 4 MiB chunks, as the caller reads, and an odd size that crosses every boundary. */
                check_source(p, "www/img.raw", pub + strlen(workdir) + 1, cases[i].c, NULL, 4 * MiB, NULL);
                check_source(p, "www/img.raw", pub + strlen(workdir) + 1, cases[i].c, NULL, 1000003, NULL);
                free(p), free(pub);
        }
        ASSERT_EQ(source_file_compression("/nonexistent/img.raw", &(SourceCompression) { SOURCE_RAW }), -ENOENT);
}

/* Damaged compressed files: every one fails, with "damaged" in its sentence. */
static void test_damaged(void) {
        const char *cases[] = {
                "head -c -100 www/img.raw.zst > bad-truncated.zst",
                "{ cat www/img.raw.zst; printf 'trailing garbage'; } > bad-trailing.zst",
                "{ cat www/img.raw.zst; printf 'xy'; } > bad-trailing-short.zst",
                "{ head -c 20000 www/img.raw.zst; head -c 20000 /dev/urandom; tail -c +40001 www/img.raw.zst; } > bad-middle.zst",
                "head -c -100 www/img.raw.xz > bad-truncated.xz",
                "head -c -100 www/img-mt.raw.xz > bad-truncated-mt.xz",
                "{ cat www/img.raw.xz; printf 'trailing garbage'; } > bad-trailing.xz",
                "{ head -c 20000 www/img.raw.xz; head -c 20000 /dev/urandom; tail -c +40001 www/img.raw.xz; } > bad-middle.xz",
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_(freep) uint8_t *got = NULL;
                char name[64], sha[65], *p;
                size_t size = 0;
                int r;

                sh("%s", cases[i]);
                sscanf(strstr(cases[i], "> ") + 2, "%63s", name);
                p = path_of("%s", name);
                r = read_all(p, NULL, 4 * MiB, &got, &size, sha, NULL);
                if (r >= 0)
                        FAIL("%s was read without an error", name);
                ASSERT_EQ(r, -EBADMSG);
                ASSERT_CONTAINS(error_message_for(r), "is damaged");
                ASSERT_CONTAINS(error_message_for(r), p);
                printf("ok: %s: %s\n", name, error_message_for(r));
                free(p);
        }
}

static void test_http(void) {
        const char *names[] = { "img.raw", "img.raw.zst", "two.raw.zst", "img-mt.raw.xz", "img.raw.xz" };
        const SourceCompression want[] = { SOURCE_RAW, SOURCE_ZSTD, SOURCE_ZSTD, SOURCE_XZ, SOURCE_XZ };
        _cleanup_(freep) char *r_url = NULL;

        start_server("--redirect r/img.raw.zst=/img.raw.zst");
        for (size_t i = 0; i < ELEMENTSOF(names); i++) {
                _cleanup_(freep) char *u = url(names[i]);
                char pub[128];
                snprintf(pub, sizeof(pub), "www/%s", names[i]);
                check_source(u, "www/img.raw", pub, want[i], &fast, 4 * MiB, NULL);
        }
        /* A redirect is followed. */
        r_url = url("r/img.raw.zst");
        check_source(r_url, "www/img.raw", "www/img.raw.zst", SOURCE_ZSTD, &fast, 4 * MiB, NULL);
        stop_server();
}

/* Dropped twice after 1 MiB of a response: resumed twice, from where each drop was. */
static void test_http_drops(void) {
        ImageSource *s = NULL;
        Request req[16];
        uint64_t total = 0;
        size_t n;
        struct stat st;
        char *u, *raw = path_of("www/random.raw"), *zst = path_of("www/random.raw.zst");

        start_server("--drop-after 1048576 --drop-times 2");
        logged[0] = 0;
        u = url("random.raw");
        check_source(u, "www/random.raw", "www/random.raw", SOURCE_RAW, &fast, 4 * MiB, &s);
        ASSERT_EQ(source_resumes(s), 2);
        s = source_free(s);
        ASSERT_CONTAINS(logged, "resuming http://127.0.0.1:");
        ASSERT_CONTAINS(logged, "/random.raw at 1 MiB (attempt 2 of 4)");
        ASSERT_CONTAINS(logged, "/random.raw at 2 MiB (attempt 3 of 4)");
        ASSERT_FALSE(logged_elsewhere);
        n = read_requests(req, ELEMENTSOF(req), 3);
        ASSERT_EQ(n, 3);
        ASSERT_STREQ(req[0].range, "-");
        ASSERT_EQ(req[0].status, 200);
        ASSERT_EQ(req[0].sent, 1048576);
        ASSERT_STREQ(req[1].range, "bytes=1048576-");
        ASSERT_EQ(req[1].status, 206);
        ASSERT_EQ(req[1].sent, 1048576);
        ASSERT_STREQ(req[2].range, "bytes=2097152-");
        ASSERT_EQ(req[2].status, 206);
        for (size_t i = 0; i < n; i++)
                total += req[i].sent;
        ASSERT_OK(stat(raw, &st));
        /* No byte was sent twice: no restart from zero. */
        ASSERT_EQ(total, st.st_size);
        printf("ok: dropped twice, resumed at 1 MiB and 2 MiB, %" PRIu64 " bytes sent for a %jd byte file\n", total,
               (intmax_t) st.st_size);
        free(u);

        /* The same for a compressed file: the decompressor never notices. */
        start_server("--drop-after 1000000 --drop-times 2");
        u = url("random.raw.zst");
        check_source(u, "www/random.raw", "www/random.raw.zst", SOURCE_ZSTD, &fast, 4 * MiB, &s);
        ASSERT_EQ(source_resumes(s), 2);
        s = source_free(s);
        n = read_requests(req, ELEMENTSOF(req), 3);
        ASSERT_EQ(n, 3);
        ASSERT_STREQ(req[1].range, "bytes=1000000-");
        ASSERT_STREQ(req[2].range, "bytes=2000000-");
        free(u);

        /* A connection that stops sending without closing: resumed after stall_seconds. */
        start_server("--stall-after 1048576 --drop-times 1");
        u = url("random.raw");
        check_source(u, "www/random.raw", "www/random.raw", SOURCE_RAW,
                     &(SourceOptions) { .retries = 2, .retry_delay_ms = 20, .stall_seconds = 1 }, 4 * MiB, &s);
        ASSERT_EQ(source_resumes(s), 1);
        s = source_free(s);
        n = read_requests(req, ELEMENTSOF(req), 2);
        ASSERT_EQ(n, 2);
        ASSERT_STREQ(req[1].range, "bytes=1048576-");
        printf("ok: a stalled transfer was resumed at 1 MiB\n");
        free(u);

        /* More drops than retries: an error naming the URL and how far it came. */
        start_server("--drop-after 1048576 --drop-times 10");
        u = url("random.raw");
        {
                _cleanup_(freep) uint8_t *got = NULL, *want = NULL;
                size_t got_size = 0, want_size = 0;
                char sha[65];
                int r = read_all(u, &(SourceOptions) { .retries = 1, .retry_delay_ms = 10 }, 4 * MiB, &got, &got_size, sha, NULL);
                ASSERT_EQ(r, -EIO);
                ASSERT_CONTAINS(error_message_for(r), u);
                ASSERT_CONTAINS(error_message_for(r), "failed 2 times");
                ASSERT_CONTAINS(error_message_for(r), "at byte 2097152 of 3145728");
                read_file("www/random.raw", &want, &want_size);
                ASSERT_TRUE(got_size <= want_size && memcmp(got, want, got_size) == 0);
                printf("ok: retries exhausted: %s\n", error_message_for(r));
        }
        free(u);
        stop_server();
        free(raw), free(zst);
}

/* Freeing a source in the middle of a stalled download stops the transfer at once: an install that
 * is interrupted does not wait for the stall limit. */
static void test_http_cancel(void) {
        _cleanup_(freep) char *u = NULL;
        ImageSource *s = NULL;
        struct timespec a, b;
        uint8_t buf[65536];

        start_server("--stall-after 1048576 --drop-times 1");
        u = url("random.raw");
        ASSERT_OK(source_open(u, &(SourceOptions) { .stall_seconds = 60 }, &s));
        for (size_t done = 0; done < 1048576; done += sizeof(buf))
                ASSERT_EQ(source_read(s, buf, sizeof(buf)), sizeof(buf));
        clock_gettime(CLOCK_MONOTONIC, &a);
        s = source_free(s);
        clock_gettime(CLOCK_MONOTONIC, &b);
        ASSERT_TRUE(b.tv_sec - a.tv_sec < 5);
        printf("ok: a stalled download was stopped in %ld ms\n",
               (long) ((b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000));

        /* Ctrl-C while source_read() waits for a stalled transfer: -EINTR at once. */
        start_server("--stall-after 1048576 --drop-times 1");
        free(u);
        u = url("random.raw");
        ASSERT_OK(interrupt_install());
        ASSERT_OK(source_open(u, &(SourceOptions) { .stall_seconds = 60 }, &s));
        for (size_t done = 0; done < 1048576; done += sizeof(buf))
                ASSERT_EQ(source_read(s, buf, sizeof(buf)), sizeof(buf));
        {
                pid_t pid = fork();
                ASSERT_TRUE(pid >= 0);
                if (pid == 0) {
                        nanosleep(&(struct timespec) { .tv_nsec = 300 * 1000 * 1000 }, NULL);
                        kill(getppid(), SIGINT);
                        _exit(0);
                }
                clock_gettime(CLOCK_MONOTONIC, &a);
                ASSERT_EQ(source_read(s, buf, sizeof(buf)), -EINTR);
                clock_gettime(CLOCK_MONOTONIC, &b);
                ASSERT_EQ(waitpid(pid, NULL, 0), pid);
        }
        ASSERT_EQ(interrupt_pending(), SIGINT);
        ASSERT_CONTAINS(error_message(), "interrupted");
        ASSERT_TRUE(b.tv_sec - a.tv_sec < 5);
        s = source_free(s);
        interrupt_uninstall();
        printf("ok: Ctrl-C during a stalled download: %s\n", error_message());
        stop_server();
}

/* A server that ignores Range: the dropped transfer is not resumed and no wrong byte is given. */
static void test_http_no_range(void) {
        _cleanup_(freep) uint8_t *got = NULL, *want = NULL;
        _cleanup_(freep) char *u = NULL;
        size_t got_size = 0, want_size = 0;
        Request req[8];
        char sha[65];
        int r;

        start_server("--no-range --drop-after 1048576 --drop-times 1");
        u = url("random.raw");
        r = read_all(u, &fast, 4 * MiB, &got, &got_size, sha, NULL);
        if (r != -EPROTO)
                FAIL("expected -EPROTO, got %d: %s", r, error_message_for(r) ?: "");
        ASSERT_CONTAINS(error_message_for(r), "does not support range requests, so a dropped transfer cannot be resumed");
        ASSERT_CONTAINS(error_message_for(r), u);
        read_file("www/random.raw", &want, &want_size);
        ASSERT_TRUE(got_size <= 1048576);
        ASSERT_TRUE(memcmp(got, want, got_size) == 0);
        ASSERT_EQ(read_requests(req, ELEMENTSOF(req), 2), 2);
        ASSERT_STREQ(req[1].range, "bytes=1048576-");
        printf("ok: no range support: %s\n", error_message_for(r));
        stop_server();

        /* The file changed between two requests: its total size in Content-Range differs. */
        free(got);
        got = NULL;
        start_server("--wrong-total --drop-after 1048576 --drop-times 1");
        free(u);
        u = url("random.raw");
        r = read_all(u, &fast, 4 * MiB, &got, &got_size, sha, NULL);
        if (r != -EPROTO)
                FAIL("expected -EPROTO, got %d: %s", r, error_message_for(r) ?: "");
        ASSERT_CONTAINS(error_message_for(r), "changed on the server");
        ASSERT_TRUE(got_size <= 1048576 && memcmp(got, want, got_size) == 0);
        printf("ok: changed file: %s\n", error_message_for(r));
        stop_server();
}

static void test_http_errors(void) {
        ImageSource *s = NULL;
        void *data = NULL;
        size_t size = 0;
        Request req[16];
        char *u;
        int r;

        start_server("--status-for gone.raw=410 --status-for busy.raw=503 --redirect ftp.raw=ftp://127.0.0.1:1/img.raw");
        u = url("missing.raw");
        r = source_open(u, &fast, &s);
        ASSERT_EQ(r, -ENOENT);
        ASSERT_CONTAINS(error_message_for(r), u);
        ASSERT_CONTAINS(error_message_for(r), "404");
        printf("ok: %s\n", error_message_for(r));
        ASSERT_EQ(source_fetch_small(u, &fast, 4096, &data, &size), -ENOENT);
        free(u);

        u = url("gone.raw");
        ASSERT_EQ(source_open(u, &fast, &s), -ENOENT);
        ASSERT_CONTAINS(error_message(), "410");
        ASSERT_EQ(source_fetch_small(u, &fast, 4096, &data, &size), -ENOENT);
        free(u);

        /* 503 may pass: retried, then an error. */
        u = url("busy.raw");
        r = source_open(u, &(SourceOptions) { .retries = 2, .retry_delay_ms = 10 }, &s);
        ASSERT_EQ(r, -EIO);
        ASSERT_CONTAINS(error_message_for(r), "HTTP status 503");
        ASSERT_CONTAINS(error_message_for(r), "failed 3 times");
        ASSERT_EQ(read_requests(req, ELEMENTSOF(req), 1 + 1 + 1 + 1 + 3), 1 + 1 + 1 + 1 + 3);
        printf("ok: %s\n", error_message_for(r));
        free(u);

        /* A redirect may lead to http or https only. */
        u = url("ftp.raw");
        r = source_open(u, &fast, &s);
        ASSERT_TRUE(r < 0);
        ASSERT_CONTAINS(error_message_for(r), u);
        printf("ok: redirect to ftp: %s\n", error_message_for(r));
        free(u);

        /* Credentials in a URL never get near the log. */
        r = source_open("http://user:secret@127.0.0.1:1/img.raw", &fast, &s);
        ASSERT_EQ(r, -EINVAL);
        ASSERT_CONTAINS(error_message_for(r), "user name or password");
        ASSERT_FALSE(strstr(error_message_for(r), "secret"));
        ASSERT_EQ(source_fetch_small("https://user:secret@127.0.0.1:1/SHA256SUMS", &fast, 4096, &data, &size), -EINVAL);

        /* Nobody listening: retried, then an error naming the URL. */
        r = source_open("http://127.0.0.1:1/img.raw", &(SourceOptions) { .retries = 1, .retry_delay_ms = 10 }, &s);
        ASSERT_EQ(r, -EIO);
        ASSERT_CONTAINS(error_message_for(r), "http://127.0.0.1:1/img.raw");
        printf("ok: %s\n", error_message_for(r));
        stop_server();
}

static void test_fetch_small(void) {
        _cleanup_(freep) char *u = NULL, *local = path_of("www/SHA256SUMS"), *sib = NULL;
        void *data = NULL;
        size_t size = 0;

        sh("cd www && sha256sum img.raw.zst img.raw.xz > SHA256SUMS");
        start_server("");
        u = url("SHA256SUMS");
        ASSERT_OK(source_fetch_small(u, &fast, 4096, &data, &size));
        ASSERT_EQ(size, 2 * (64 + 2) + strlen("img.raw.zst\n") + strlen("img.raw.xz\n"));
        free(data);
        ASSERT_EQ(source_fetch_small(u, &fast, 100, &data, &size), -EFBIG);
        ASSERT_OK(source_fetch_small(local, &fast, 4096, &data, &size));
        ASSERT_EQ(size, 2 * (64 + 2) + strlen("img.raw.zst\n") + strlen("img.raw.xz\n"));
        free(data);
        ASSERT_EQ(source_fetch_small(local, &fast, 100, &data, &size), -EFBIG);
        ASSERT_EQ(source_fetch_small("/nonexistent/SHA256SUMS", &fast, 100, &data, &size), -ENOENT);
        stop_server();

        ASSERT_OK(source_sibling("/srv/a/img.raw.zst", "SHA256SUMS", &sib));
        ASSERT_STREQ(sib, "/srv/a/SHA256SUMS");
        free(sib);
        ASSERT_OK(source_sibling("img.raw.zst", "SHA256SUMS", &sib));
        ASSERT_STREQ(sib, "SHA256SUMS");
        free(sib);
        ASSERT_OK(source_sibling("https://h/p/img.raw.zst?x=1/2#f", "SHA256SUMS", &sib));
        ASSERT_STREQ(sib, "https://h/p/SHA256SUMS");
        free(sib);
        ASSERT_OK(source_sibling("https://h:8080", "SHA256SUMS", &sib));
        ASSERT_STREQ(sib, "https://h:8080/SHA256SUMS");
        free(sib);
        ASSERT_OK(source_sibling("http://h/img.raw", "SHA256SUMS", &sib));
        ASSERT_STREQ(sib, "http://h/SHA256SUMS");
        free(sib);
        sib = NULL;
        ASSERT_TRUE(source_is_url("HTTPS://h/x") && source_is_url("http://h") && !source_is_url("/srv/http://x") &&
                    !source_is_url("ftp://h/x"));
}

static void test_sums_lookup(void) {
        const char *sums = "# comment\n"
                           "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef  other.raw\n"
                           "ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789 *img.raw.zst\r\n"
                           "1111111111111111111111111111111111111111111111111111111111111111  img.raw.zst.old\n"
                           "SHA256 (tagged.raw) = 2222222222222222222222222222222222222222222222222222222222222222\n"
                           "333  short.raw\n"
                           "4444444444444444444444444444444444444444444444444444444444444444  last.raw";
        _cleanup_(freep) char *real = NULL, *want = NULL;
        void *data = NULL;
        size_t size = 0;
        char sha[65];

        ASSERT_EQ(sums_lookup(sums, strlen(sums), "img.raw.zst", sha), 1);
        ASSERT_STREQ(sha, "abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789");
        ASSERT_EQ(sums_lookup(sums, strlen(sums), "https://h/p/img.raw.zst?token=1", sha), 1);
        ASSERT_STREQ(sha, "abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789");
        ASSERT_EQ(sums_lookup(sums, strlen(sums), "/srv/x/other.raw", sha), 1);
        ASSERT_STREQ(sha, "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
        ASSERT_EQ(sums_lookup(sums, strlen(sums), "tagged.raw", sha), 1);
        ASSERT_STREQ(sha, "2222222222222222222222222222222222222222222222222222222222222222");
        ASSERT_EQ(sums_lookup(sums, strlen(sums), "last.raw", sha), 1);
        ASSERT_STREQ(sha, "4444444444444444444444444444444444444444444444444444444444444444");
        ASSERT_EQ(sums_lookup(sums, strlen(sums), "img.raw", sha), 0);
        ASSERT_EQ(sums_lookup(sums, strlen(sums), "short.raw", sha), 0);
        ASSERT_EQ(sums_lookup(sums, strlen(sums), "comment", sha), 0);
        /* Not NUL-terminated: the size is the end. */
        ASSERT_EQ(sums_lookup(sums, strlen(sums) - 1, "last.raw", sha), 0);

        /* sha256sum's own output, and the digest that source_finish() computes. */
        real = path_of("www/SHA256SUMS");
        ASSERT_OK(source_fetch_small(real, NULL, 4096, &data, &size));
        ASSERT_EQ(sums_lookup(data, size, "img.raw.xz", sha), 1);
        want = sha256sum("www/img.raw.xz");
        ASSERT_STREQ(sha, want);
        free(data);
        printf("ok: sums_lookup\n");
}

static void expect_verify(const char *sums, const char *sig, const char *key, SumsKeyKind kind, int want) {
        _cleanup_(freep) uint8_t *s = NULL, *g = NULL;
        _cleanup_(freep) char *k = path_of("%s", key);
        size_t s_size = 0, g_size = 0;
        SumsKeyKind got;
        int r;

        read_file(sums, &s, &s_size);
        read_file(sig, &g, &g_size);
        ASSERT_OK(sums_key_kind(k, &got));
        ASSERT_EQ(got, kind);
        r = sums_verify(s, s_size, g, g_size, k, kind);
        if (r != want)
                FAIL("sums_verify(%s, %s, %s) = %d (%s), expected %d", sums, sig, key, r, error_message_for(r) ?: "", want);
        if (r == -EBADMSG) {
                ASSERT_CONTAINS(error_message_for(r), "signature of SHA256SUMS");
                ASSERT_CONTAINS(error_message_for(r), k);
        }
        printf("ok: %s signed %s, key %s: %d %s\n", sums, sig, key, r, r < 0 ? error_message_for(r) : "");
}

static void test_verify_pem(void) {
        _cleanup_(freep) char *priv = path_of("sig/rsa.key");
        SumsKeyKind kind;

        sh("mkdir sig && cp www/SHA256SUMS sig/SHA256SUMS && sed '1{s/^a/b/;t;s/^./a/}' sig/SHA256SUMS > sig/SHA256SUMS.bad");
        sh("! cmp -s sig/SHA256SUMS sig/SHA256SUMS.bad && [ $(cmp -l sig/SHA256SUMS sig/SHA256SUMS.bad | wc -l) -eq 1 ]");
        sh("cd sig && openssl genpkey -quiet -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out rsa.key 2>/dev/null"
           " && openssl pkey -in rsa.key -pubout -out rsa.pem"
           " && openssl dgst -sha256 -sign rsa.key -out rsa.sig SHA256SUMS"
           " && openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ec.key"
           " && openssl pkey -in ec.key -pubout -out ec.pem"
           " && openssl dgst -sha256 -sign ec.key -out ec.sig SHA256SUMS"
           " && openssl base64 -in ec.sig -out ec.sig.b64"
           " && openssl genpkey -algorithm ED25519 -out ed.key"
           " && openssl pkey -in ed.key -pubout -out ed.pem"
           " && openssl pkeyutl -sign -rawin -inkey ed.key -in SHA256SUMS -out ed.sig"
           " && openssl dgst -sha256 -verify rsa.pem -signature rsa.sig SHA256SUMS >/dev/null");
        expect_verify("sig/SHA256SUMS", "sig/rsa.sig", "sig/rsa.pem", SUMS_KEY_PEM, 0);
        expect_verify("sig/SHA256SUMS.bad", "sig/rsa.sig", "sig/rsa.pem", SUMS_KEY_PEM, -EBADMSG);
        expect_verify("sig/SHA256SUMS", "sig/ec.sig", "sig/ec.pem", SUMS_KEY_PEM, 0);
        expect_verify("sig/SHA256SUMS", "sig/ec.sig.b64", "sig/ec.pem", SUMS_KEY_PEM, 0);
        expect_verify("sig/SHA256SUMS.bad", "sig/ec.sig", "sig/ec.pem", SUMS_KEY_PEM, -EBADMSG);
        expect_verify("sig/SHA256SUMS", "sig/ed.sig", "sig/ed.pem", SUMS_KEY_PEM, 0);
        expect_verify("sig/SHA256SUMS.bad", "sig/ed.sig", "sig/ed.pem", SUMS_KEY_PEM, -EBADMSG);
        /* Signed by another key. */
        expect_verify("sig/SHA256SUMS", "sig/ec.sig", "sig/rsa.pem", SUMS_KEY_PEM, -EBADMSG);
        expect_verify("sig/SHA256SUMS", "sig/rsa.sig", "sig/ec.pem", SUMS_KEY_PEM, -EBADMSG);
        ASSERT_STREQ(sums_signature_name(SUMS_KEY_PEM), "SHA256SUMS.sig");

        /* A private key is refused, and so is anything else. */
        ASSERT_EQ(sums_key_kind(priv, &kind), -EINVAL);
        ASSERT_CONTAINS(error_message(), "private key");
        free(priv);
        priv = path_of("sig/SHA256SUMS");
        ASSERT_EQ(sums_key_kind(priv, &kind), -EINVAL);
        ASSERT_CONTAINS(error_message(), "neither an OpenPGP public key");
}

static void test_verify_gpg(void) {
        gnupghome = path_of("gnupg");
        ASSERT_OK(setenv("GNUPGHOME", gnupghome, 1));
        sh("mkdir -m 700 gnupg"
           " && gpg -q --batch --passphrase '' --quick-gen-key 'Image signer <signer@example.org>' ed25519 sign never 2>/dev/null"
           " && gpg -q --batch --passphrase '' --quick-gen-key 'Someone else <else@example.org>' ed25519 sign never 2>/dev/null"
           " && gpg -q --batch --export signer@example.org > sig/signer.gpg"
           " && gpg -q --batch --armor --export signer@example.org > sig/signer.asc"
           " && gpg -q --batch --export else@example.org > sig/else.gpg"
           " && gpg -q --batch --local-user signer@example.org --detach-sign -o sig/SHA256SUMS.gpg sig/SHA256SUMS"
           " && gpg -q --batch --local-user signer@example.org --armor --detach-sign -o sig/SHA256SUMS.asc sig/SHA256SUMS"
           " && gpg -q --batch --local-user else@example.org --detach-sign -o sig/SHA256SUMS.else.gpg sig/SHA256SUMS"
           " && gpgv --keyring ./sig/signer.gpg sig/SHA256SUMS.gpg sig/SHA256SUMS 2>/dev/null");
        /* Nothing of this GNUPGHOME may help sums_verify(). */
        ASSERT_OK(unsetenv("GNUPGHOME"));
        sh("grep -q 'BEGIN PGP PUBLIC KEY BLOCK' sig/signer.asc");

        expect_verify("sig/SHA256SUMS", "sig/SHA256SUMS.gpg", "sig/signer.gpg", SUMS_KEY_GPG, 0);
        expect_verify("sig/SHA256SUMS", "sig/SHA256SUMS.gpg", "sig/signer.asc", SUMS_KEY_GPG, 0);
        expect_verify("sig/SHA256SUMS", "sig/SHA256SUMS.asc", "sig/signer.asc", SUMS_KEY_GPG, 0);
        expect_verify("sig/SHA256SUMS.bad", "sig/SHA256SUMS.gpg", "sig/signer.gpg", SUMS_KEY_GPG, -EBADMSG);
        expect_verify("sig/SHA256SUMS.bad", "sig/SHA256SUMS.gpg", "sig/signer.asc", SUMS_KEY_GPG, -EBADMSG);
        expect_verify("sig/SHA256SUMS", "sig/SHA256SUMS.else.gpg", "sig/signer.gpg", SUMS_KEY_GPG, -EBADMSG);
        expect_verify("sig/SHA256SUMS", "sig/SHA256SUMS.gpg", "sig/else.gpg", SUMS_KEY_GPG, -EBADMSG);
        /* A signature that is no signature: refused, not accepted. */
        {
                _cleanup_(freep) char *k = path_of("sig/signer.gpg");
                const char junk[] = "not a signature";
                int r = sums_verify("x", 1, junk, sizeof(junk), k, SUMS_KEY_GPG);
                ASSERT_TRUE(r < 0);
        }
        /* An armoured key whose checksum line does not match is refused. */
        sh("awk '/^=/ { print \"=AAAA\"; next } { print }' sig/signer.asc > sig/broken.asc");
        {
                _cleanup_(freep) char *k = path_of("sig/broken.asc");
                _cleanup_(freep) uint8_t *s = NULL, *g = NULL;
                size_t s_size = 0, g_size = 0;
                read_file("sig/SHA256SUMS", &s, &s_size);
                read_file("sig/SHA256SUMS.gpg", &g, &g_size);
                ASSERT_EQ(sums_verify(s, s_size, g, g_size, k, SUMS_KEY_GPG), -EINVAL);
                ASSERT_CONTAINS(error_message(), "checksum");
        }
        ASSERT_STREQ(sums_signature_name(SUMS_KEY_GPG), "SHA256SUMS.gpg");
}

int main(void) {
        setvbuf(stdout, NULL, _IOLBF, 0);
        main_thread = pthread_self();
        log_set_sink(capture_log, NULL);
        /* The test server is on 127.0.0.1: never through a proxy of the environment. */
        setenv("no_proxy", "127.0.0.1,localhost", 1);
        setenv("NO_PROXY", "127.0.0.1,localhost", 1);
        if (!getenv("SOURCE_ROOT"))
                setenv("SOURCE_ROOT", ".", 1);

        ASSERT_TRUE(mkdtemp(workdir));
        have_workdir = true;
        atexit(cleanup);

        make_images();
        test_local();
        test_damaged();
        test_http();
        test_http_drops();
        test_http_no_range();
        test_http_cancel();
        test_http_errors();
        test_fetch_small();
        test_sums_lookup();
        test_verify_pem();
        test_verify_gpg();
        printf("ok\n");
        return 0;
}
