/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/fs.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <lzma.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <zstd.h>

#include "base64.h"
#include "error.h"
#include "fileio.h"
#include "interrupt.h"
#include "log.h"
#include "macro.h"
#include "run.h"
#include "size.h"
#include "source.h"

/* The network thread runs ahead of the reader by at most this much: enough to keep the
 * connection busy while the reader decompresses and the caller writes a 4–8 MiB chunk. */
#define RING_SIZE (16 * MiB)
/* The decompressors' input: compressed data is pulled in pieces of this size. */
#define INBUF_SIZE (1 * MiB)
#define RETRY_DELAY_MAX_MS 30000U
#define DEFAULT_RETRIES 8U
#define DEFAULT_RETRY_DELAY_MS 1000U
#define DEFAULT_STALL_SECONDS 30U
#define CONNECT_TIMEOUT_SECONDS 30L
/* libcurl's "too slow" threshold: below this many bytes a second for stall_seconds. */
#define STALL_BYTES_PER_SECOND 1024L
/* The longest zstd or xz magic. */
#define MAGIC_MAX 6
#define KEY_FILE_MAX (1 * MiB)

static const uint8_t zstd_magic[] = { 0x28, 0xb5, 0x2f, 0xfd };
static const uint8_t xz_magic[] = { 0xfd, '7', 'z', 'X', 'Z', 0x00 };

static const char *const compression_table[_SOURCE_COMPRESSION_MAX] = {
        [SOURCE_RAW] = "raw",
        [SOURCE_ZSTD] = "zstd",
        [SOURCE_XZ] = "xz",
};

const char *source_compression_to_string(SourceCompression c) {
        if ((int) c < 0 || (int) c >= _SOURCE_COMPRESSION_MAX)
                return NULL;
        return compression_table[c];
}

bool source_is_url(const char *location) {
        if (!location)
                return false;
        return strncasecmp(location, "http://", 7) == 0 || strncasecmp(location, "https://", 8) == 0;
}

static SourceCompression sniff(const uint8_t *p, size_t n) {
        if (n >= sizeof(zstd_magic) && memcmp(p, zstd_magic, sizeof(zstd_magic)) == 0)
                return SOURCE_ZSTD;
        if (n >= sizeof(xz_magic) && memcmp(p, xz_magic, sizeof(xz_magic)) == 0)
                return SOURCE_XZ;
        return SOURCE_RAW;
}

int source_file_compression(const char *path, SourceCompression *ret) {
        _cleanup_(closep) int fd = -EBADF;
        uint8_t magic[MAGIC_MAX];
        ssize_t k;

        fd = open_input_file(path, true, NULL);
        if (fd < 0)
                return fd;
        k = pread(fd, magic, sizeof(magic), 0);
        if (k < 0)
                return -errno;
        *ret = sniff(magic, (size_t) k);
        return 0;
}

/* ---- URLs --------------------------------------------------------------------------------------- */

/* Where the authority of a URL ends (the host part: "https://user:pw@host:port"). */
static const char *url_authority(const char *url, size_t *ret_len) {
        const char *a = strstr(url, "://");

        a = a ? a + 3 : url;
        *ret_len = strcspn(a, "/?#");
        return a;
}

/* URLs with credentials are refused: they would end up in the log, in the report and in error
 * messages. The sentence shows the URL without them. */
static int url_check_credentials(const char *url) {
        size_t n;
        const char *a = url_authority(url, &n);
        const char *at = memrchr(a, '@', n);

        if (!at)
                return 0;
        return error_setf(-EINVAL,
                          "The URL %.*s%s carries a user name or password; give a URL without credentials (imprint would write "
                          "them to its log).",
                          (int) (a - url), url, at + 1);
}

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_result = CURLE_FAILED_INIT;

static void curl_init_once(void) {
        curl_init_result = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static int curl_ensure_init(void) {
        (void) pthread_once(&curl_once, curl_init_once);
        if (curl_init_result != CURLE_OK)
                return error_setf(-EIO, "Cannot initialise libcurl: %s.", curl_easy_strerror(curl_init_result));
        return 0;
}

static void fill_options(const SourceOptions *o, SourceOptions *ret) {
        *ret = o ? *o : (SourceOptions) {};
        if (ret->retries == 0)
                ret->retries = DEFAULT_RETRIES;
        if (ret->retry_delay_ms == 0)
                ret->retry_delay_ms = DEFAULT_RETRY_DELAY_MS;
        if (ret->stall_seconds == 0)
                ret->stall_seconds = DEFAULT_STALL_SECONDS;
}

/* What every transfer shares: http and https only, redirects followed (at most 5, never from
 * https down to http), HTTP errors as errors, a connect timeout, a stall limit, TCP keepalive. */
static int curl_setup(CURL *c, const char *url, const SourceOptions *o, char *errbuf) {
        bool https = strncasecmp(url, "https://", 8) == 0;

        if (curl_easy_setopt(c, CURLOPT_URL, url) != CURLE_OK ||
            curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK ||
            curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, https ? "https" : "http,https") != CURLE_OK ||
            curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L) != CURLE_OK ||
            curl_easy_setopt(c, CURLOPT_MAXREDIRS, 5L) != CURLE_OK ||
            curl_easy_setopt(c, CURLOPT_FAILONERROR, 1L) != CURLE_OK ||
            curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
            curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, CONNECT_TIMEOUT_SECONDS) != CURLE_OK ||
            curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, STALL_BYTES_PER_SECOND) != CURLE_OK ||
            curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, (long) o->stall_seconds) != CURLE_OK ||
            curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L) != CURLE_OK ||
            curl_easy_setopt(c, CURLOPT_TCP_KEEPIDLE, 30L) != CURLE_OK ||
            curl_easy_setopt(c, CURLOPT_TCP_KEEPINTVL, 15L) != CURLE_OK ||
            curl_easy_setopt(c, CURLOPT_USERAGENT, "imprint/" IMPRINT_VERSION) != CURLE_OK ||
            curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf) != CURLE_OK)
                return error_setf(-EIO, "Cannot set up the download of %s: this libcurl lacks an option imprint needs.", url);
        return 0;
}

static const char *curl_error(CURLcode c, const char *errbuf) {
        return !isempty(errbuf) ? errbuf : curl_easy_strerror(c);
}

/* Failures that another attempt cannot mend. */
static bool curl_error_is_permanent(CURLcode c, long status) {
        switch (c) {
        case CURLE_HTTP_RETURNED_ERROR:
                /* 408 Request Timeout and 429 Too Many Requests ask to come back later; 5xx may pass. */
                return status >= 400 && status < 500 && status != 408 && status != 429;
        case CURLE_UNSUPPORTED_PROTOCOL:
        case CURLE_URL_MALFORMAT:
        case CURLE_TOO_MANY_REDIRECTS:
        case CURLE_PEER_FAILED_VERIFICATION:
        case CURLE_SSL_CACERT_BADFILE:
        case CURLE_SSL_CERTPROBLEM:
        case CURLE_LOGIN_DENIED:
        case CURLE_REMOTE_ACCESS_DENIED:
        case CURLE_FILESIZE_EXCEEDED:
        case CURLE_OUT_OF_MEMORY:
                return true;
        default:
                return false;
        }
}

static int http_status_errno(long status) {
        return status == 404 || status == 410 ? -ENOENT : status == 401 || status == 403 ? -EACCES : -EIO;
}

/* Blocks SIGPIPE around a transfer in the calling thread: OpenSSL writes to its socket with
 * write(), and CURLOPT_NOSIGNAL leaves SIGPIPE alone. A SIGPIPE raised meanwhile is taken. */
static CURLcode perform_without_sigpipe(CURL *c) {
        sigset_t block, old, pending;
        CURLcode cc;
        bool was_pending;

        sigemptyset(&block);
        sigaddset(&block, SIGPIPE);
        sigpending(&pending);
        was_pending = sigismember(&pending, SIGPIPE);
        pthread_sigmask(SIG_BLOCK, &block, &old);
        cc = curl_easy_perform(c);
        if (!was_pending) {
                struct timespec zero = {};
                sigpending(&pending);
                if (sigismember(&pending, SIGPIPE))
                        (void) sigtimedwait(&block, NULL, &zero);
        }
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        return cc;
}

/* Waits ms, or less when *cancel becomes true (checked under lock, signalled on cond). */
static void wait_ms(pthread_mutex_t *lock, pthread_cond_t *cond, const bool *cancel, unsigned ms) {
        struct timespec until;

        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += ms / 1000;
        until.tv_nsec += (long) (ms % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L)
                until.tv_sec++, until.tv_nsec -= 1000000000L;
        pthread_mutex_lock(lock);
        while (!*cancel)
                if (pthread_cond_timedwait(cond, lock, &until) == ETIMEDOUT)
                        break;
        pthread_mutex_unlock(lock);
}

/* ---- the source --------------------------------------------------------------------------------- */

struct ImageSource {
        char *location;
        SourceOptions o;
        SourceCompression compression;
        bool is_url;
        int fd;                 /* a local file */

        /* The network: a producer thread fills ring, source_read() drains it. lock guards the
         * ring and everything below it up to the producer-only part. */
        pthread_mutex_t lock;
        pthread_cond_t cond;
        bool thread_running;
        pthread_t thread;
        uint8_t *ring;
        size_t ring_start, ring_count;
        bool net_eof;           /* the whole file arrived */
        int net_error;          /* the transfer failed for good; net_error_msg says why */
        char *net_error_msg;
        bool cancel;            /* source_free(): stop now */
        bool announced_known;
        uint64_t announced;     /* Content-Length of the whole file */
        uint64_t received;      /* bytes of the file that arrived (the resume offset) */
        unsigned resumes;
        char *log_pending;      /* lines the producer logs through the reader's thread */

        /* Producer only: the transfer under way. */
        CURL *curl;
        char curl_errbuf[CURL_ERROR_SIZE];
        uint64_t xfer_start;    /* the offset this transfer asked for */
        bool xfer_checked;      /* its status and range were checked at its first byte */
        bool range_seen;
        uint64_t range_first, range_total;
        bool range_total_known;
        int fatal;              /* found in a callback: not worth another attempt */
        char *fatal_msg;

        /* The reader. */
        uint64_t raw_size;      /* the file's size, or the announced size */
        uint64_t raw_done;      /* bytes pulled from the file or ring (and hashed) */
        EVP_MD_CTX *md;
        uint8_t *in;
        size_t in_pos, in_size;
        bool in_eof;
        ZSTD_DStream *zstd;
        size_t zstd_last;       /* 0 when the last frame ended cleanly */
        lzma_stream lzma;
        bool lzma_ready, lzma_end;
        bool eof;               /* source_read() reached the end of the image */
        int failed;             /* a sticky failure of source_read() */
        char *failed_msg;
};

SourceCompression source_compression(const ImageSource *s) {
        return s->compression;
}

uint64_t source_raw_size(const ImageSource *s) {
        return __atomic_load_n(&s->raw_size, __ATOMIC_RELAXED);
}

uint64_t source_raw_done(const ImageSource *s) {
        return __atomic_load_n(&s->raw_done, __ATOMIC_RELAXED);
}

unsigned source_resumes(const ImageSource *s) {
        return __atomic_load_n(&s->resumes, __ATOMIC_RELAXED);
}

/* A fatal problem found inside a curl callback: remembered, and the transfer aborted. */
static size_t fail_transfer(ImageSource *s, int r, const char *fmt, ...) _printf_(3, 4);
static size_t fail_transfer(ImageSource *s, int r, const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        free(s->fatal_msg);
        if (vasprintf(&s->fatal_msg, fmt, ap) < 0)
                s->fatal_msg = NULL;
        va_end(ap);
        s->fatal = r;
        return 0; /* a short write: curl stops with CURLE_WRITE_ERROR */
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *userdata) {
        ImageSource *s = userdata;
        size_t n = size * nmemb;
        char line[256];
        uint64_t first, last, total;

        snprintf(line, sizeof(line), "%.*s", (int) MIN(n, sizeof(line) - 1), data);
        if (strncmp(line, "HTTP/", 5) == 0) {
                /* A new response (after a redirect, say): forget the previous one's range. */
                s->range_seen = s->range_total_known = false;
                return n;
        }
        if (strncasecmp(line, "Content-Range:", 14) != 0)
                return n;
        if (sscanf(line + 14, " bytes %" SCNu64 "-%" SCNu64 "/%" SCNu64, &first, &last, &total) == 3) {
                s->range_seen = true;
                s->range_first = first;
                s->range_total = total;
                s->range_total_known = true;
        } else if (sscanf(line + 14, " bytes %" SCNu64 "-%" SCNu64 "/*", &first, &last) == 2) {
                s->range_seen = true;
                s->range_first = first;
                s->range_total_known = false;
        }
        return n;
}

/* The first byte of a transfer: is it the answer asked for? */
static size_t check_transfer(ImageSource *s) {
        curl_off_t length = -1;
        long status = 0;
        bool known;

        (void) curl_easy_getinfo(s->curl, CURLINFO_RESPONSE_CODE, &status);
        (void) curl_easy_getinfo(s->curl, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &length);

        if (s->xfer_start == 0) {
                if (status != 200 && !(status == 206 && s->range_seen && s->range_first == 0))
                        return fail_transfer(s, -EPROTO, "Cannot download %s: the server answered HTTP status %ld instead of 200.",
                                             s->location, status);
                known = status == 206 ? s->range_total_known : length >= 0;
                pthread_mutex_lock(&s->lock);
                s->announced_known = known;
                s->announced = !known ? 0 : status == 206 ? s->range_total : (uint64_t) length;
                __atomic_store_n(&s->raw_size, s->announced, __ATOMIC_RELAXED);
                pthread_mutex_unlock(&s->lock);
                return 1;
        }

        if (status == 200)
                return fail_transfer(s, -EPROTO,
                                     "The server of %s does not support range requests, so a dropped transfer cannot be resumed "
                                     "(it dropped at byte %" PRIu64 "); download the image over a more reliable connection or "
                                     "from another server.",
                                     s->location, s->xfer_start);
        if (status != 206 || !s->range_seen)
                return fail_transfer(s, -EPROTO,
                                     "Cannot resume the download of %s: the server answered the range request with HTTP status "
                                     "%ld and no Content-Range.",
                                     s->location, status);
        if (s->range_first != s->xfer_start)
                return fail_transfer(s, -EPROTO,
                                     "Cannot resume the download of %s: asked for the bytes from %" PRIu64
                                     ", the server sent them from %" PRIu64 ".",
                                     s->location, s->xfer_start, s->range_first);
        if (s->announced_known && s->range_total_known && s->range_total != s->announced)
                return fail_transfer(s, -EPROTO,
                                     "The file %s changed on the server during the download: it was %" PRIu64
                                     " bytes long, now it is %" PRIu64 "; start again.",
                                     s->location, s->announced, s->range_total);
        return 1;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *userdata) {
        ImageSource *s = userdata;
        size_t n = size * nmemb, done = 0;

        if (!s->xfer_checked) {
                if (check_transfer(s) == 0)
                        return 0;
                s->xfer_checked = true;
        }
        if (s->announced_known && s->received + n > s->announced)
                return fail_transfer(s, -EPROTO, "Cannot download %s: the server sent more than the %" PRIu64 " bytes it announced.",
                                     s->location, s->announced);

        pthread_mutex_lock(&s->lock);
        while (done < n) {
                size_t end, k;

                while (s->ring_count == RING_SIZE && !s->cancel)
                        pthread_cond_wait(&s->cond, &s->lock);
                if (s->cancel)
                        break;
                end = (s->ring_start + s->ring_count) % RING_SIZE;
                k = MIN(n - done, MIN(RING_SIZE - s->ring_count, RING_SIZE - end));
                memcpy(s->ring + end, data + done, k);
                s->ring_count += k;
                s->received += k;
                done += k;
                pthread_cond_broadcast(&s->cond);
        }
        pthread_mutex_unlock(&s->lock);
        return done;
}

static int on_progress(void *userdata, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow) {
        ImageSource *s = userdata;
        bool cancel;

        pthread_mutex_lock(&s->lock);
        cancel = s->cancel;
        pthread_mutex_unlock(&s->lock);
        return cancel ? 1 : 0;
}

/* Log sinks (the full-screen UI's live log) are not thread-safe: the producer's lines are
 * queued and written by the reader's thread while it waits for data. */
static void queue_log(ImageSource *s, const char *fmt, ...) _printf_(2, 3);
static void queue_log(ImageSource *s, const char *fmt, ...) {
        _cleanup_(freep) char *line = NULL;
        va_list ap;
        char *joined;

        va_start(ap, fmt);
        if (vasprintf(&line, fmt, ap) < 0)
                line = NULL;
        va_end(ap);
        if (!line)
                return;
        pthread_mutex_lock(&s->lock);
        if (asprintf(&joined, "%s%s\n", s->log_pending ?: "", line) >= 0) {
                free(s->log_pending);
                s->log_pending = joined;
        }
        pthread_cond_broadcast(&s->cond);
        pthread_mutex_unlock(&s->lock);
}

/* With the lock held: writes the queued lines (without holding it). */
static void emit_log_locked(ImageSource *s) {
        _cleanup_(freep) char *lines = TAKE_PTR(s->log_pending);

        if (!lines)
                return;
        pthread_mutex_unlock(&s->lock);
        for (char *l = lines, *eol; (eol = strchr(l, '\n')); l = eol + 1) {
                *eol = 0;
                log_info("%s", l);
        }
        pthread_mutex_lock(&s->lock);
}

/* The producer's loop: one transfer, then as many resumes as allowed. */
static int fetch_run(ImageSource *s, char **ret_msg) {
        unsigned delay = s->o.retry_delay_ms;
        int r;

        s->curl = curl_easy_init();
        if (!s->curl)
                return -ENOMEM;
        r = curl_setup(s->curl, s->location, &s->o, s->curl_errbuf);
        if (r < 0) {
                *ret_msg = strdup(error_message() ?: "Cannot set up libcurl.");
                return r;
        }
        if (curl_easy_setopt(s->curl, CURLOPT_WRITEFUNCTION, on_body) != CURLE_OK ||
            curl_easy_setopt(s->curl, CURLOPT_WRITEDATA, s) != CURLE_OK ||
            curl_easy_setopt(s->curl, CURLOPT_HEADERFUNCTION, on_header) != CURLE_OK ||
            curl_easy_setopt(s->curl, CURLOPT_HEADERDATA, s) != CURLE_OK ||
            curl_easy_setopt(s->curl, CURLOPT_XFERINFOFUNCTION, on_progress) != CURLE_OK ||
            curl_easy_setopt(s->curl, CURLOPT_XFERINFODATA, s) != CURLE_OK ||
            curl_easy_setopt(s->curl, CURLOPT_NOPROGRESS, 0L) != CURLE_OK)
                return -EIO;

        for (unsigned attempt = 1;; attempt++) {
                char why[CURL_ERROR_SIZE + 128];
                long status = 0;
                CURLcode c;
                bool cancel;

                s->xfer_start = s->received;
                s->xfer_checked = false;
                s->range_seen = false;
                s->curl_errbuf[0] = 0;
                (void) curl_easy_setopt(s->curl, CURLOPT_RESUME_FROM_LARGE, (curl_off_t) s->received);

                c = perform_without_sigpipe(s->curl);

                pthread_mutex_lock(&s->lock);
                cancel = s->cancel;
                pthread_mutex_unlock(&s->lock);
                if (cancel)
                        return -ECANCELED;
                if (s->fatal < 0) {
                        *ret_msg = TAKE_PTR(s->fatal_msg);
                        return s->fatal;
                }
                (void) curl_easy_getinfo(s->curl, CURLINFO_RESPONSE_CODE, &status);

                if (c == CURLE_OK) {
                        if (!s->announced_known || s->received == s->announced)
                                return 0;
                        /* The connection closed cleanly before the announced end. */
                        snprintf(why, sizeof(why), "the connection closed early");
                } else if (c == CURLE_HTTP_RETURNED_ERROR)
                        snprintf(why, sizeof(why), "HTTP status %ld", status);
                else
                        snprintf(why, sizeof(why), "%s", curl_error(c, s->curl_errbuf));

                if (c == CURLE_RANGE_ERROR) {
                        /* The server answered the range request with the whole file (200). */
                        if (asprintf(ret_msg,
                                     "The server of %s does not support range requests, so a dropped transfer cannot be resumed "
                                     "(it dropped at byte %" PRIu64 "); download the image over a more reliable connection or "
                                     "from another server.",
                                     s->location, s->received) < 0)
                                *ret_msg = NULL;
                        return -EPROTO;
                }
                if (c != CURLE_OK && curl_error_is_permanent(c, status)) {
                        if (c == CURLE_HTTP_RETURNED_ERROR) {
                                if (asprintf(ret_msg, "Cannot download %s: the server answered HTTP status %ld%s.", s->location,
                                             status, status == 404 || status == 410 ? " (no such file)" : "") < 0)
                                        *ret_msg = NULL;
                                return http_status_errno(status);
                        }
                        if (asprintf(ret_msg, "Cannot download %s: %s.", s->location, why) < 0)
                                *ret_msg = NULL;
                        return -EIO;
                }
                if (attempt > s->o.retries) {
                        char where[96] = "";
                        if (s->received > 0)
                                snprintf(where, sizeof(where), ", the last time at byte %" PRIu64, s->received);
                        if (s->received > 0 && s->announced_known)
                                snprintf(where + strlen(where), sizeof(where) - strlen(where), " of %" PRIu64, s->announced);
                        if (asprintf(ret_msg, "Cannot download %s: the transfer failed %u times%s: %s.", s->location, attempt,
                                     where, why) < 0)
                                *ret_msg = NULL;
                        return -EIO;
                }

                if (s->received > 0) {
                        __atomic_add_fetch(&s->resumes, 1, __ATOMIC_RELAXED);
                        queue_log(s, "resuming %s at %s (attempt %u of %u) in %u ms: %s", s->location,
                                  FORMAT_BYTES(s->received), attempt + 1, s->o.retries + 1, delay, why);
                } else
                        queue_log(s, "retrying %s (attempt %u of %u) in %u ms: %s", s->location, attempt + 1, s->o.retries + 1,
                                  delay, why);
                wait_ms(&s->lock, &s->cond, &s->cancel, delay);
                delay = MIN(delay * 2, RETRY_DELAY_MAX_MS);
        }
}

static void *fetch_thread(void *userdata) {
        ImageSource *s = userdata;
        _cleanup_(freep) char *msg = NULL;
        sigset_t block;
        int r;

        /* Thread-directed SIGPIPE from OpenSSL's write() stays pending here and dies with the
         * thread. */
        sigemptyset(&block);
        sigaddset(&block, SIGPIPE);
        pthread_sigmask(SIG_BLOCK, &block, NULL);

        r = fetch_run(s, &msg);

        pthread_mutex_lock(&s->lock);
        if (r < 0) {
                s->net_error = r;
                s->net_error_msg = TAKE_PTR(msg);
        } else
                s->net_eof = true;
        pthread_cond_broadcast(&s->cond);
        pthread_mutex_unlock(&s->lock);
        return NULL;
}

ImageSource *source_free(ImageSource *s) {
        if (!s)
                return NULL;
        if (s->thread_running) {
                pthread_mutex_lock(&s->lock);
                s->cancel = true;
                pthread_cond_broadcast(&s->cond);
                pthread_mutex_unlock(&s->lock);
                pthread_join(s->thread, NULL);
        }
        if (s->curl)
                curl_easy_cleanup(s->curl);
        if (s->zstd)
                ZSTD_freeDStream(s->zstd);
        if (s->lzma_ready)
                lzma_end(&s->lzma);
        if (s->md)
                EVP_MD_CTX_free(s->md);
        if (s->fd >= 0)
                close(s->fd);
        pthread_mutex_destroy(&s->lock);
        pthread_cond_destroy(&s->cond);
        free(s->ring);
        free(s->in);
        free(s->net_error_msg);
        free(s->log_pending);
        free(s->fatal_msg);
        free(s->failed_msg);
        free(s->location);
        return mfree(s);
}

/* Records a failure of the reader; later calls repeat it. */
static int source_fail(ImageSource *s, int r, const char *fmt, ...) _printf_(3, 4);
static int source_fail(ImageSource *s, int r, const char *fmt, ...) {
        va_list ap;

        free(s->failed_msg);
        va_start(ap, fmt);
        if (vasprintf(&s->failed_msg, fmt, ap) < 0)
                s->failed_msg = NULL;
        va_end(ap);
        s->failed = r;
        return error_setf(r, "%s", s->failed_msg ?: "Cannot read the image.");
}

/* With the lock held: waits until the ring holds want bytes or the transfer ended, writing the
 * producer's log lines meanwhile. -EINTR when a stop was asked for (interrupt.h): a stalled
 * transfer takes stall_seconds and the retries minutes to give up, a person should not wait. */
static int wait_for_ring_locked(ImageSource *s, size_t want) {
        for (;;) {
                struct timespec until;

                emit_log_locked(s);
                if (s->ring_count >= want || s->net_eof || s->net_error < 0)
                        return 0;
                if (interrupt_pending())
                        return -EINTR;
                clock_gettime(CLOCK_REALTIME, &until);
                until.tv_nsec += 200 * 1000 * 1000;
                if (until.tv_nsec >= 1000000000L)
                        until.tv_sec++, until.tv_nsec -= 1000000000L;
                (void) pthread_cond_timedwait(&s->cond, &s->lock, &until);
        }
}

/* Up to max bytes of the published file into dst, hashed on the way; 0 at its end. */
static ssize_t pull_raw(ImageSource *s, uint8_t *dst, size_t max) {
        size_t n = 0;

        if (!s->is_url) {
                for (;;) {
                        ssize_t k = read(s->fd, dst, max);
                        if (k < 0 && errno == EINTR)
                                continue;
                        if (k < 0)
                                return source_fail(s, -errno, "Cannot read the image %s: %s.", s->location, strerror(errno));
                        n = (size_t) k;
                        break;
                }
        } else {
                pthread_mutex_lock(&s->lock);
                if (wait_for_ring_locked(s, 1) < 0) {
                        pthread_mutex_unlock(&s->lock);
                        return error_setf(-EINTR, "The download of %s was interrupted.", s->location);
                }
                if (s->ring_count == 0 && s->net_error < 0) {
                        int r = s->net_error;
                        pthread_mutex_unlock(&s->lock);
                        return source_fail(s, r, "%s", s->net_error_msg ?: "Cannot download the image.");
                }
                while (n < max && s->ring_count > 0) {
                        size_t k = MIN(max - n, MIN(s->ring_count, RING_SIZE - s->ring_start));
                        memcpy(dst + n, s->ring + s->ring_start, k);
                        s->ring_start = (s->ring_start + k) % RING_SIZE;
                        s->ring_count -= k;
                        n += k;
                }
                pthread_cond_broadcast(&s->cond);
                pthread_mutex_unlock(&s->lock);
        }
        if (n > 0 && EVP_DigestUpdate(s->md, dst, n) != 1)
                return source_fail(s, -EIO, "Cannot compute the SHA256 of %s.", s->location);
        __atomic_add_fetch(&s->raw_done, n, __ATOMIC_RELAXED);
        return (ssize_t) n;
}

/* Refills the decompressor's input when it is used up. */
static int fill_input(ImageSource *s) {
        ssize_t k;

        if (s->in_pos < s->in_size || s->in_eof)
                return 0;
        k = pull_raw(s, s->in, INBUF_SIZE);
        if (k < 0)
                return (int) k;
        s->in_pos = 0;
        s->in_size = (size_t) k;
        if (k == 0)
                s->in_eof = true;
        return 0;
}

static int damaged(ImageSource *s, const char *what) {
        return source_fail(s, -EBADMSG,
                           "The image %s is damaged: the %s data %s (at byte %" PRIu64 " of the compressed file); get the "
                           "image again.",
                           s->location, source_compression_to_string(s->compression), what, s->raw_done - (s->in_size - s->in_pos));
}

static ssize_t read_raw(ImageSource *s, uint8_t *buf, size_t n) {
        size_t done = 0;

        while (done < n) {
                ssize_t k = pull_raw(s, buf + done, n - done);
                if (k < 0)
                        return k;
                if (k == 0) {
                        s->eof = true;
                        break;
                }
                done += (size_t) k;
        }
        return (ssize_t) done;
}

static ssize_t read_zstd(ImageSource *s, uint8_t *buf, size_t n) {
        ZSTD_outBuffer out = { buf, n, 0 };
        int r;

        while (out.pos < out.size) {
                ZSTD_inBuffer in;
                size_t before = out.pos, ret;

                r = fill_input(s);
                if (r < 0)
                        return r;
                if (s->in_eof && s->zstd_last == 0) {
                        /* The last frame ended and was flushed: nothing is pending. (Called
                         * again, the decoder would ask for the next frame's header.) */
                        s->eof = true;
                        break;
                }
                in = (ZSTD_inBuffer) { s->in, s->in_size, s->in_pos };
                ret = ZSTD_decompressStream(s->zstd, &out, &in);
                s->in_pos = in.pos;
                if (ZSTD_isError(ret)) {
                        char what[128];
                        snprintf(what, sizeof(what), "is corrupt (%s)", ZSTD_getErrorName(ret));
                        return damaged(s, what);
                }
                s->zstd_last = ret;
                if (s->in_eof && out.pos == before) {
                        /* No input left and nothing more flushed: the end, clean or not. */
                        if (s->zstd_last != 0)
                                return damaged(s, "ends in the middle of a frame (the file is truncated)");
                        s->eof = true;
                        break;
                }
        }
        return (ssize_t) out.pos;
}

static ssize_t read_xz(ImageSource *s, uint8_t *buf, size_t n) {
        int r;

        s->lzma.next_out = buf;
        s->lzma.avail_out = n;
        while (s->lzma.avail_out > 0 && !s->lzma_end) {
                lzma_ret ret;

                r = fill_input(s);
                if (r < 0)
                        return r;
                s->lzma.next_in = s->in + s->in_pos;
                s->lzma.avail_in = s->in_size - s->in_pos;
                ret = lzma_code(&s->lzma, s->in_eof ? LZMA_FINISH : LZMA_RUN);
                s->in_pos = s->in_size - s->lzma.avail_in;
                switch (ret) {
                case LZMA_OK:
                        break;
                case LZMA_STREAM_END:
                        s->lzma_end = true;
                        break;
                case LZMA_BUF_ERROR:
                        return damaged(s, "ends in the middle of a stream (the file is truncated)");
                case LZMA_MEM_ERROR:
                        return source_fail(s, -ENOMEM, "Cannot decompress the image %s: out of memory.", s->location);
                case LZMA_MEMLIMIT_ERROR:
                        return source_fail(s, -ENOMEM, "Cannot decompress the image %s: it needs more memory (%" PRIu64 " MiB) than allowed.",
                                           s->location, lzma_memusage(&s->lzma) / MiB);
                case LZMA_FORMAT_ERROR:
                        return damaged(s, "is not in the xz format where it should be (garbage after a stream?)");
                case LZMA_OPTIONS_ERROR:
                        return damaged(s, "uses options this liblzma does not support");
                case LZMA_DATA_ERROR:
                        return damaged(s, "is corrupt");
                default:
                        return damaged(s, "cannot be decoded");
                }
        }
        if (s->lzma_end) {
                /* LZMA_CONCATENATED ends only at the end of the input. */
                if (s->in_pos < s->in_size || !s->in_eof)
                        return damaged(s, "is followed by something that is not xz data");
                if (s->lzma.avail_out == n)
                        s->eof = true;
        }
        return (ssize_t) (n - s->lzma.avail_out);
}

ssize_t source_read(ImageSource *s, void *buf, size_t n) {
        if (s->failed < 0)
                return error_setf(s->failed, "%s", s->failed_msg ?: "Cannot read the image.");
        if (s->eof || n == 0)
                return 0;
        switch (s->compression) {
        case SOURCE_ZSTD:
                return read_zstd(s, buf, n);
        case SOURCE_XZ:
                return read_xz(s, buf, n);
        default:
                return read_raw(s, buf, n);
        }
}

static int open_local(ImageSource *s) {
        uint8_t magic[MAGIC_MAX];
        struct stat st;
        ssize_t k;

        s->fd = open_input_file(s->location, true, &st);
        if (s->fd == -ENOENT)
                return error_setf(s->fd, "Cannot open the image %s: it does not exist.", s->location);
        if (s->fd == -EISDIR || s->fd == -EBADFD)
                return error_setf(-EINVAL, "Cannot read the image %s: it is %s, not a file.", s->location,
                                  s->fd == -EISDIR ? "a directory" : "neither a regular file nor a block device");
        if (s->fd < 0)
                return error_setf(s->fd, "Cannot open the image %s: %s.", s->location, strerror(-s->fd));
        if (S_ISBLK(st.st_mode)) {
                uint64_t size = 0;
                if (ioctl(s->fd, BLKGETSIZE64, &size) < 0)
                        return error_setf(-errno, "Cannot read the size of %s: %m.", s->location);
                s->raw_size = size;
        } else
                s->raw_size = (uint64_t) st.st_size;
        (void) posix_fadvise(s->fd, 0, 0, POSIX_FADV_SEQUENTIAL);
        k = pread(s->fd, magic, sizeof(magic), 0);
        if (k < 0)
                return error_setf(-errno, "Cannot read the image %s: %m.", s->location);
        s->compression = sniff(magic, (size_t) k);
        return 0;
}

static int open_url(ImageSource *s) {
        uint8_t magic[MAGIC_MAX];
        size_t n;
        int r;

        r = url_check_credentials(s->location);
        if (r < 0)
                return r;
        r = curl_ensure_init();
        if (r < 0)
                return r;
        s->ring = malloc(RING_SIZE);
        if (!s->ring)
                return -ENOMEM;
        r = -pthread_create(&s->thread, NULL, fetch_thread, s);
        if (r < 0)
                return error_setf(r, "Cannot start the download of %s: %s.", s->location, strerror(-r));
        s->thread_running = true;

        /* Far enough to know the compression (and the size the server announced). */
        pthread_mutex_lock(&s->lock);
        if (wait_for_ring_locked(s, MAGIC_MAX) < 0) {
                pthread_mutex_unlock(&s->lock);
                return error_setf(-EINTR, "The download of %s was interrupted.", s->location);
        }
        r = s->ring_count == 0 ? s->net_error : 0;
        n = MIN(s->ring_count, sizeof(magic));
        for (size_t i = 0; i < n; i++)
                magic[i] = s->ring[(s->ring_start + i) % RING_SIZE];
        pthread_mutex_unlock(&s->lock);
        if (r < 0)
                return error_setf(r, "%s", s->net_error_msg ?: "Cannot download the image.");
        s->compression = sniff(magic, n);
        return 0;
}

int source_open(const char *location, const SourceOptions *o, ImageSource **ret) {
        _cleanup_(source_freep) ImageSource *s = NULL;
        int r;

        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->fd = -EBADF;
        pthread_mutex_init(&s->lock, NULL);
        pthread_cond_init(&s->cond, NULL);
        fill_options(o, &s->o);
        s->is_url = source_is_url(location);
        s->location = strdup(location);
        s->md = EVP_MD_CTX_new();
        if (!s->location || !s->md)
                return -ENOMEM;
        if (EVP_DigestInit_ex(s->md, EVP_sha256(), NULL) != 1)
                return error_setf(-EIO, "Cannot set up SHA256 in libcrypto.");

        r = s->is_url ? open_url(s) : open_local(s);
        if (r < 0)
                return r;

        if (s->compression != SOURCE_RAW) {
                s->in = malloc(INBUF_SIZE);
                if (!s->in)
                        return -ENOMEM;
        }
        if (s->compression == SOURCE_ZSTD) {
                s->zstd = ZSTD_createDStream();
                if (!s->zstd || ZSTD_isError(ZSTD_initDStream(s->zstd)))
                        return -ENOMEM;
                s->zstd_last = 1;
        } else if (s->compression == SOURCE_XZ) {
                lzma_ret lr;
#if LZMA_VERSION >= 50040000
                /* Multi-block files (xz -T) decode on two threads; others as usual. */
                lzma_mt mt = {
                        .flags = LZMA_CONCATENATED,
                        .threads = MAX(1U, MIN(lzma_cputhreads(), 4U)),
                        .timeout = 0,
                        .memlimit_threading = 512 * MiB,
                        .memlimit_stop = UINT64_MAX,
                };
                s->lzma = (lzma_stream) LZMA_STREAM_INIT;
                lr = lzma_stream_decoder_mt(&s->lzma, &mt);
#else
                s->lzma = (lzma_stream) LZMA_STREAM_INIT;
                lr = lzma_stream_decoder(&s->lzma, UINT64_MAX, LZMA_CONCATENATED);
#endif
                if (lr != LZMA_OK)
                        return error_setf(-ENOMEM, "Cannot set up the xz decoder for %s.", s->location);
                s->lzma_ready = true;
        }

        log_debug("source %s: %s, %" PRIu64 " bytes published", s->location, source_compression_to_string(s->compression),
                  source_raw_size(s));
        *ret = TAKE_PTR(s);
        return 0;
}

int source_finish(ImageSource *s, char ret_sha256[65]) {
        uint8_t digest[EVP_MAX_MD_SIZE];
        unsigned len = 0;

        if (s->failed < 0)
                return error_setf(s->failed, "%s", s->failed_msg ?: "Cannot read the image.");
        if (!s->eof) {
                /* The caller stopped before the end: whatever follows must be nothing. */
                uint8_t scratch[4096];
                ssize_t k = source_read(s, scratch, sizeof(scratch));
                if (k < 0)
                        return (int) k;
                if (k > 0 || !s->eof)
                        return source_fail(s, -EBADMSG, "The image %s holds more data than was read.", s->location);
        }
        if (s->compression == SOURCE_ZSTD && s->zstd_last != 0)
                return damaged(s, "ends in the middle of a frame (the file is truncated)");
        if (s->compression == SOURCE_XZ && !s->lzma_end)
                return damaged(s, "ends in the middle of a stream (the file is truncated)");
        if (s->is_url) {
                bool complete;
                pthread_mutex_lock(&s->lock);
                complete = s->net_eof && (!s->announced_known || s->raw_done == s->announced);
                pthread_mutex_unlock(&s->lock);
                if (!complete)
                        return source_fail(s, -EIO, "The download of %s ended at %" PRIu64 " bytes of %" PRIu64 ".", s->location,
                                           s->raw_done, s->announced);
        } else if (s->raw_done != s->raw_size)
                return source_fail(s, -EIO, "The image %s changed while it was read: it was %" PRIu64 " bytes, %" PRIu64 " were read.",
                                   s->location, s->raw_size, s->raw_done);

        if (EVP_DigestFinal_ex(s->md, digest, &len) != 1 || len != 32)
                return source_fail(s, -EIO, "Cannot compute the SHA256 of %s.", s->location);
        for (unsigned i = 0; i < len; i++)
                sprintf(ret_sha256 + 2 * i, "%02x", digest[i]);
        ret_sha256[64] = 0;
        /* Once only: the digest context is spent. */
        s->failed = -EALREADY;
        s->failed_msg = strdup("source_finish() was already called.");
        return 0;
}

/* ---- small files -------------------------------------------------------------------------------- */

int source_sibling(const char *location, const char *name, char **ret) {
        size_t end, base;
        char *s;

        if (source_is_url(location)) {
                size_t alen;
                const char *a = url_authority(location, &alen);
                size_t path_start = (size_t) (a - location) + alen;

                end = path_start + strcspn(location + path_start, "?#");
                base = end;
                while (base > path_start && location[base - 1] != '/')
                        base--;
                if (base == path_start) {
                        /* "https://host" alone */
                        if (asprintf(&s, "%.*s/%s", (int) path_start, location, name) < 0)
                                return -ENOMEM;
                        *ret = s;
                        return 0;
                }
        } else {
                const char *slash = strrchr(location, '/');
                base = slash ? (size_t) (slash - location) + 1 : 0;
        }
        if (asprintf(&s, "%.*s%s", (int) base, location, name) < 0)
                return -ENOMEM;
        *ret = s;
        return 0;
}

typedef struct SmallBody {
        uint8_t *data;
        size_t size, max;
        bool too_big;
} SmallBody;

static size_t on_small_body(char *data, size_t size, size_t nmemb, void *userdata) {
        SmallBody *b = userdata;
        size_t n = size * nmemb;
        uint8_t *p;

        if (b->size + n > b->max) {
                b->too_big = true;
                return 0;
        }
        p = realloc(b->data, b->size + n + 1);
        if (!p)
                return 0;
        memcpy(p + b->size, data, n);
        b->data = p;
        b->size += n;
        b->data[b->size] = 0;
        return n;
}

static int on_small_progress(void *userdata, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow) {
        return interrupt_pending() ? 1 : 0;
}

static int fetch_small_url(const char *url, const SourceOptions *o, size_t max, void **ret, size_t *ret_size) {
        _cleanup_(freep) uint8_t *data = NULL;
        char errbuf[CURL_ERROR_SIZE] = "";
        unsigned delay = o->retry_delay_ms;
        CURL *c;
        int r;

        r = url_check_credentials(url);
        if (r < 0)
                return r;
        r = curl_ensure_init();
        if (r < 0)
                return r;
        c = curl_easy_init();
        if (!c)
                return -ENOMEM;

        for (unsigned attempt = 1;; attempt++) {
                SmallBody b = { .max = max };
                long status = 0;
                CURLcode cc;
                char why[CURL_ERROR_SIZE + 64];

                curl_easy_reset(c);
                r = curl_setup(c, url, o, errbuf);
                if (r < 0)
                        break;
                errbuf[0] = 0;
                (void) curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_small_body);
                (void) curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
                (void) curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_small_progress);
                (void) curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);

                cc = perform_without_sigpipe(c);
                (void) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
                if (cc == CURLE_OK) {
                        data = b.data ?: calloc(1, 1);
                        if (!data) {
                                r = -ENOMEM;
                                break;
                        }
                        *ret_size = b.size;
                        r = 0;
                        break;
                }
                free(b.data);
                if (b.too_big) {
                        r = error_setf(-EFBIG, "Cannot download %s: it is larger than %zu KiB, the limit for such a file.", url, max / 1024);
                        break;
                }
                if (cc == CURLE_ABORTED_BY_CALLBACK) {
                        r = error_setf(-EINTR, "The download of %s was interrupted.", url);
                        break;
                }
                if (cc == CURLE_HTTP_RETURNED_ERROR && curl_error_is_permanent(cc, status)) {
                        r = error_setf(http_status_errno(status), "Cannot download %s: the server answered HTTP status %ld%s.", url,
                                       status, status == 404 || status == 410 ? " (no such file)" : "");
                        break;
                }
                if (cc == CURLE_HTTP_RETURNED_ERROR)
                        snprintf(why, sizeof(why), "HTTP status %ld", status);
                else
                        snprintf(why, sizeof(why), "%s", curl_error(cc, errbuf));
                if (curl_error_is_permanent(cc, status)) {
                        r = error_setf(-EIO, "Cannot download %s: %s.", url, why);
                        break;
                }
                if (attempt > o->retries) {
                        r = error_setf(-EIO, "Cannot download %s: it failed %u times, the last time with: %s.", url, attempt, why);
                        break;
                }
                log_info("retrying %s (attempt %u of %u) in %u ms: %s", url, attempt + 1, o->retries + 1, delay, why);
                nanosleep(&(struct timespec) { .tv_sec = delay / 1000, .tv_nsec = (long) (delay % 1000) * 1000000L }, NULL);
                delay = MIN(delay * 2, RETRY_DELAY_MAX_MS);
        }
        curl_easy_cleanup(c);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(data);
        return 0;
}

int source_fetch_small(const char *location, const SourceOptions *o, size_t max, void **ret, size_t *ret_size) {
        SourceOptions opts;
        char *data = NULL;
        size_t size = 0;
        int r;

        fill_options(o, &opts);
        if (source_is_url(location))
                return fetch_small_url(location, &opts, max, ret, ret_size);

        r = read_regular_file(location, "the file", max, &data, &size);
        if (r == -E2BIG)
                return error_setf(-EFBIG, "%s", error_message() ?: "The file is too large.");
        if (r < 0)
                return r;
        *ret = data;
        *ret_size = size;
        return 0;
}

/* ---- SHA256SUMS --------------------------------------------------------------------------------- */

static bool is_hex64(const char *p, size_t n) {
        if (n < 64)
                return false;
        for (size_t i = 0; i < 64; i++)
                if (!isxdigit((unsigned char) p[i]))
                        return false;
        return n == 64 || !isxdigit((unsigned char) p[64]);
}

/* One line: "<hex>  name", "<hex> *name" (sha256sum's text and binary mode) or
 * "SHA256 (name) = <hex>" (sha256sum --tag). */
static bool parse_line(const char *l, size_t n, const char **ret_hex, const char **ret_name, size_t *ret_name_len) {
        if (is_hex64(l, n) && n > 65 && (l[64] == ' ' || l[64] == '\t')) {
                const char *name = l + 65;
                if (name < l + n && (*name == ' ' || *name == '*'))
                        name++;
                *ret_hex = l;
                *ret_name = name;
                *ret_name_len = (size_t) (l + n - name);
                return true;
        }
        if (n > 8 + 4 + 64 && strncmp(l, "SHA256 (", 8) == 0 && memcmp(l + n - 64 - 4, ") = ", 4) == 0 &&
            is_hex64(l + n - 64, 64)) {
                *ret_hex = l + n - 64;
                *ret_name = l + 8;
                *ret_name_len = n - 8 - 4 - 64;
                return true;
        }
        return false;
}

int sums_lookup(const void *sums, size_t size, const char *name, char ret_sha256[65]) {
        const char *p = sums, *end = p + size, *want = name;
        size_t want_len;

        /* The file name: the last path component, without a URL's query or fragment. */
        want_len = source_is_url(name) ? strcspn(name, "?#") : strlen(name);
        for (size_t i = 0; i < want_len; i++)
                if (name[i] == '/')
                        want = name + i + 1;
        want_len -= (size_t) (want - name);
        if (want_len == 0)
                return -EINVAL;

        while (p < end) {
                const char *eol = memchr(p, '\n', (size_t) (end - p)) ?: end;
                size_t n = (size_t) (eol - p), name_len;
                const char *hex, *file;

                if (n > 0 && p[n - 1] == '\r')
                        n--;
                if (parse_line(p, n, &hex, &file, &name_len) && name_len == want_len && memcmp(file, want, want_len) == 0) {
                        for (size_t i = 0; i < 64; i++)
                                ret_sha256[i] = (char) tolower((unsigned char) hex[i]);
                        ret_sha256[64] = 0;
                        return 1;
                }
                p = eol + 1;
        }
        return 0;
}

/* ---- signatures --------------------------------------------------------------------------------- */

#define PGP_ARMOR_BEGIN "-----BEGIN PGP PUBLIC KEY BLOCK-----"
#define PGP_ARMOR_END "-----END PGP PUBLIC KEY BLOCK-----"

static bool is_openpgp_binary(const uint8_t *p, size_t n) {
        unsigned tag;

        if (n >= 12 && memcmp(p + 8, "KBXf", 4) == 0) /* a GnuPG keybox (pubring.kbx) */
                return true;
        if (n < 2 || !(p[0] & 0x80))
                return false;
        /* RFC 4880 4.2: new format tag in the low 6 bits, old format in bits 5..2. A keyring
         * starts with a public key packet (tag 6). */
        tag = (p[0] & 0x40) ? (p[0] & 0x3f) : ((p[0] >> 2) & 0x0f);
        return tag == 6;
}

static int key_kind_of(const char *path, const uint8_t *p, size_t n, SumsKeyKind *ret) {
        if (memmem(p, n, PGP_ARMOR_BEGIN, strlen(PGP_ARMOR_BEGIN)) || is_openpgp_binary(p, n)) {
                *ret = SUMS_KEY_GPG;
                return 0;
        }
        if (memmem(p, n, "-----BEGIN PUBLIC KEY-----", 26) || memmem(p, n, "-----BEGIN CERTIFICATE-----", 27)) {
                *ret = SUMS_KEY_PEM;
                return 0;
        }
        if (memmem(p, n, "PRIVATE KEY", 11))
                return error_setf(-EINVAL,
                                  "The key %s is a private key; give the public key that belongs to it, and keep the private key "
                                  "away from the machines being installed.",
                                  path);
        return error_setf(-EINVAL,
                          "The key %s is neither an OpenPGP public key (binary or \"" PGP_ARMOR_BEGIN "\") nor a PEM public key "
                          "(\"-----BEGIN PUBLIC KEY-----\").",
                          path);
}

static int read_key(const char *path, char **ret, size_t *ret_size) {
        return read_regular_file(path, "the signing key", KEY_FILE_MAX, ret, ret_size);
}

int sums_key_kind(const char *key_path, SumsKeyKind *ret) {
        _cleanup_(freep) char *data = NULL;
        size_t size = 0;
        int r;

        r = read_key(key_path, &data, &size);
        if (r < 0)
                return r;
        return key_kind_of(key_path, (const uint8_t *) data, size, ret);
}

const char *sums_signature_name(SumsKeyKind k) {
        return k == SUMS_KEY_GPG ? "SHA256SUMS.gpg" : k == SUMS_KEY_PEM ? "SHA256SUMS.sig" : NULL;
}

/* RFC 4880 6.1 */
static uint32_t crc24(const uint8_t *p, size_t n) {
        uint32_t crc = 0xB704CEU;

        for (size_t i = 0; i < n; i++) {
                crc ^= (uint32_t) p[i] << 16;
                for (int b = 0; b < 8; b++) {
                        crc <<= 1;
                        if (crc & 0x1000000U)
                                crc ^= 0x1864CFBU;
                }
        }
        return crc & 0xFFFFFFU;
}

/* The binary packets of every "PGP PUBLIC KEY BLOCK" in the text (RFC 4880 6.2): gpgv reads only
 * binary keyrings, and the live system carries gpgv without gpg. */
static int pgp_dearmor(const char *path, const char *text, size_t size, uint8_t **ret, size_t *ret_size) {
        _cleanup_(freep) uint8_t *out = NULL;
        size_t out_size = 0;
        const char *p = text, *end = text + size;
        unsigned blocks = 0;

        for (;;) {
                _cleanup_(freep) char *b64 = NULL, *crc_b64 = NULL;
                _cleanup_(freep) void *bin = NULL;
                size_t b64_len = 0, bin_size = 0;
                bool headers = true;
                const char *begin;
                uint8_t *q;
                int r;

                begin = memmem(p, (size_t) (end - p), PGP_ARMOR_BEGIN, strlen(PGP_ARMOR_BEGIN));
                if (!begin)
                        break;
                p = memchr(begin, '\n', (size_t) (end - begin));
                if (!p)
                        break;
                p++;
                b64 = malloc((size_t) (end - p) + 1);
                if (!b64)
                        return -ENOMEM;
                for (;;) {
                        const char *eol = memchr(p, '\n', (size_t) (end - p)) ?: end;
                        size_t n = (size_t) (eol - p);

                        while (n > 0 && (p[n - 1] == '\r' || p[n - 1] == ' ' || p[n - 1] == '\t'))
                                n--;
                        if (p >= end)
                                return error_setf(-EINVAL, "The key %s ends inside its armour (no \"" PGP_ARMOR_END "\").", path);
                        if (n >= 5 && strncmp(p, "-----", 5) == 0) {
                                p = eol;
                                break;
                        }
                        if (headers && n > 0 && memchr(p, ':', n)) {
                                /* "Version: …", "Comment: …" */
                        } else if (n == 0)
                                headers = false;
                        else if (p[0] == '=' && n == 5) {
                                crc_b64 = strndup(p + 1, 4);
                                if (!crc_b64)
                                        return -ENOMEM;
                                headers = false;
                        } else {
                                headers = false;
                                memcpy(b64 + b64_len, p, n);
                                b64_len += n;
                        }
                        p = eol < end ? eol + 1 : end;
                }
                b64[b64_len] = 0;
                r = base64_decode(b64, &bin, &bin_size);
                if (r < 0 || bin_size == 0)
                        return error_setf(-EINVAL, "The key %s is not valid ASCII armour: its base64 cannot be decoded.", path);
                if (crc_b64) {
                        _cleanup_(freep) void *crc = NULL;
                        size_t crc_size = 0;
                        const uint8_t *c;
                        uint32_t want;

                        r = base64_decode(crc_b64, &crc, &crc_size);
                        if (r < 0 || crc_size != 3)
                                return error_setf(-EINVAL, "The key %s is not valid ASCII armour: its checksum line is malformed.", path);
                        c = crc;
                        want = (uint32_t) c[0] << 16 | (uint32_t) c[1] << 8 | c[2];
                        if (crc24(bin, bin_size) != want)
                                return error_setf(-EINVAL, "The key %s is damaged: its armour checksum does not match.", path);
                }
                q = realloc(out, out_size + bin_size);
                if (!q)
                        return -ENOMEM;
                out = q;
                memcpy(out + out_size, bin, bin_size);
                out_size += bin_size;
                blocks++;
        }
        if (blocks == 0)
                return error_setf(-EINVAL, "The key %s holds no \"" PGP_ARMOR_BEGIN "\".", path);
        *ret = TAKE_PTR(out);
        *ret_size = out_size;
        return 0;
}

/* A private directory for gpgv's files, removed with everything in it. */
typedef struct TempDir {
        char *path;
        char *files[4];
        size_t n_files;
} TempDir;

static void temp_dir_remove(TempDir *t) {
        for (size_t i = 0; i < t->n_files; i++) {
                (void) unlink(t->files[i]);
                free(t->files[i]);
        }
        t->n_files = 0;
        if (t->path) {
                (void) rmdir(t->path);
                t->path = mfree(t->path);
        }
}

static int temp_dir_make(TempDir *t) {
        const char *base = getenv("TMPDIR");

        if (isempty(base))
                base = access("/run", W_OK) == 0 ? "/run" : "/tmp";
        if (asprintf(&t->path, "%s/imprint-sums-XXXXXX", base) < 0) {
                t->path = NULL;
                return -ENOMEM;
        }
        if (!mkdtemp(t->path)) {
                int r = -errno;
                t->path = mfree(t->path);
                return error_setf(r, "Cannot make a temporary directory in %s: %s.", base, strerror(-r));
        }
        return 0;
}

static int temp_dir_write(TempDir *t, const char *name, const void *data, size_t size, char **ret_path) {
        _cleanup_(closep) int fd = -EBADF;
        char *path;
        int r;

        if (t->n_files >= ELEMENTSOF(t->files) || asprintf(&path, "%s/%s", t->path, name) < 0)
                return -ENOMEM;
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0) {
                r = -errno;
                free(path);
                return error_setf(r, "Cannot write %s/%s: %s.", t->path, name, strerror(-r));
        }
        t->files[t->n_files++] = path;
        r = pwrite_full(fd, data, size, 0);
        if (r < 0)
                return error_setf(r, "Cannot write %s: %s.", path, strerror(-r));
        *ret_path = path;
        return 0;
}

static bool status_has(const char *out, const char *keyword, char *ret_arg, size_t arg_size) {
        size_t kl = strlen(keyword);

        for (const char *l = out; l && *l;) {
                const char *eol = strchrnul(l, '\n');
                if (strncmp(l, "[GNUPG:] ", 9) == 0 && strncmp(l + 9, keyword, kl) == 0 && (l[9 + kl] == ' ' || l + 9 + kl == eol)) {
                        if (ret_arg) {
                                const char *a = l + 9 + kl;
                                while (*a == ' ')
                                        a++;
                                snprintf(ret_arg, arg_size, "%.*s", (int) (eol - a), a);
                        }
                        return true;
                }
                l = *eol ? eol + 1 : eol;
        }
        return false;
}

static int verify_gpg(const void *sums, size_t sums_size, const void *sig, size_t sig_size, const char *key_path) {
        _cleanup_(temp_dir_remove) TempDir t = {};
        _cleanup_(freep) char *key = NULL, *out = NULL;
        _cleanup_(freep) uint8_t *keyring = NULL;
        char *sums_path, *sig_path, *keyring_path, arg[256];
        size_t key_size = 0, keyring_size = 0;
        int r, status = 0;

        if (!find_executable("gpgv"))
                return error_setf(-ENOENT, "Cannot check the signature of SHA256SUMS: gpgv is not installed (Debian package gpgv).");
        r = read_key(key_path, &key, &key_size);
        if (r < 0)
                return r;
        if (memmem(key, key_size, PGP_ARMOR_BEGIN, strlen(PGP_ARMOR_BEGIN))) {
                r = pgp_dearmor(key_path, key, key_size, &keyring, &keyring_size);
                if (r < 0)
                        return r;
        } else if (is_openpgp_binary((const uint8_t *) key, key_size)) {
                keyring = (uint8_t *) TAKE_PTR(key);
                keyring_size = key_size;
        } else
                return error_setf(-EINVAL, "The key %s is not an OpenPGP public key.", key_path);

        r = temp_dir_make(&t);
        if (r < 0)
                return r;
        r = temp_dir_write(&t, "keyring.gpg", keyring, keyring_size, &keyring_path);
        if (r < 0)
                return r;
        r = temp_dir_write(&t, "SHA256SUMS", sums, sums_size, &sums_path);
        if (r < 0)
                return r;
        r = temp_dir_write(&t, "SHA256SUMS.gpg", sig, sig_size, &sig_path);
        if (r < 0)
                return r;

        /* Only the keyring given is trusted: an empty home directory, no default keyring. */
        char *argv[] = { (char *) "gpgv", (char *) "--homedir", t.path, (char *) "--keyring", keyring_path, (char *) "--status-fd",
                         (char *) "1", sig_path, sums_path, NULL };
        r = run_command(argv, &(RunOptions) { .ret_stdout = &out, .ret_status = &status, .merge_stderr = true });
        if (r < 0)
                return r;
        for (const char *l = out; l && *l;) {
                const char *eol = strchrnul(l, '\n');
                if (eol > l)
                        log_info("gpgv: %.*s", (int) (eol - l), l);
                l = *eol ? eol + 1 : eol;
        }

        if (status == 0 && status_has(out, "GOODSIG", NULL, 0) && status_has(out, "VALIDSIG", NULL, 0) &&
            !status_has(out, "BADSIG", NULL, 0))
                return 0;
        if (status_has(out, "BADSIG", arg, sizeof(arg)))
                return error_setf(-EBADMSG,
                                  "The signature of SHA256SUMS does not match the key %s: SHA256SUMS was changed after it was signed "
                                  "(signature by %s).",
                                  key_path, arg);
        if (status_has(out, "NO_PUBKEY", arg, sizeof(arg)))
                return error_setf(-EBADMSG,
                                  "The signature of SHA256SUMS does not match the key %s: it was made by another key (%s).",
                                  key_path, arg);
        if (status_has(out, "EXPKEYSIG", arg, sizeof(arg)) || status_has(out, "REVKEYSIG", arg, sizeof(arg)))
                return error_setf(-EBADMSG,
                                  "The signature of SHA256SUMS was made by a key of %s that has expired or was revoked (%s).",
                                  key_path, arg);
        if (status_has(out, "NODATA", NULL, 0))
                return error_setf(-EINVAL, "Cannot check the signature of SHA256SUMS: SHA256SUMS.gpg is not an OpenPGP signature.");
        return error_setf(-EBADMSG,
                          "The signature of SHA256SUMS does not match the key %s: gpgv exited with status %d; its output is in the log.",
                          key_path, status);
}

DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_PKEY *, EVP_PKEY_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_MD_CTX *, EVP_MD_CTX_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(X509 *, X509_free);
static void BIO_freep(BIO **b) {
        if (*b)
                BIO_free(*b);
}

/* A signature published as base64 text (openssl base64) rather than binary. */
static bool looks_base64(const uint8_t *p, size_t n) {
        if (n == 0)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!isalnum(p[i]) && !strchr("+/=\r\n", p[i]))
                        return false;
        return true;
}

static int verify_pem(const void *sums, size_t sums_size, const void *sig, size_t sig_size, const char *key_path) {
        _cleanup_(freep) char *key = NULL;
        _cleanup_(freep) void *decoded = NULL;
        _cleanup_(BIO_freep) BIO *b = NULL;
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *pkey = NULL;
        _cleanup_(EVP_MD_CTX_freep) EVP_MD_CTX *ctx = NULL;
        size_t key_size = 0;
        const EVP_MD *md;
        int r, id;

        r = read_key(key_path, &key, &key_size);
        if (r < 0)
                return r;
        b = BIO_new_mem_buf(key, (int) key_size);
        if (!b)
                return -ENOMEM;
        pkey = PEM_read_bio_PUBKEY(b, NULL, NULL, NULL);
        if (!pkey) {
                _cleanup_(X509_freep) X509 *x = NULL;
                BIO_free(b);
                b = BIO_new_mem_buf(key, (int) key_size);
                if (!b)
                        return -ENOMEM;
                x = PEM_read_bio_X509(b, NULL, NULL, NULL);
                if (x)
                        pkey = X509_get_pubkey(x);
        }
        ERR_clear_error();
        if (!pkey)
                return error_setf(-EINVAL, "The key %s is not a PEM public key (\"-----BEGIN PUBLIC KEY-----\").", key_path);

        if (looks_base64(sig, sig_size)) {
                _cleanup_(freep) char *text = malloc(sig_size + 1);
                size_t n = 0, decoded_size = 0;

                if (!text)
                        return -ENOMEM;
                for (size_t i = 0; i < sig_size; i++)
                        if (!strchr("\r\n", ((const char *) sig)[i]))
                                text[n++] = ((const char *) sig)[i];
                text[n] = 0;
                if (base64_decode(text, &decoded, &decoded_size) >= 0) {
                        sig = decoded;
                        sig_size = decoded_size;
                }
        }

        /* Ed25519 and Ed448 sign the message itself; RSA (PKCS#1 v1.5) and ECDSA its SHA256. */
        id = EVP_PKEY_get_id(pkey);
        md = id == EVP_PKEY_ED25519 || id == EVP_PKEY_ED448 ? NULL : EVP_sha256();
        ctx = EVP_MD_CTX_new();
        if (!ctx)
                return -ENOMEM;
        if (EVP_DigestVerifyInit(ctx, NULL, md, NULL, pkey) != 1) {
                ERR_clear_error();
                return error_setf(-EINVAL, "The key %s (%s) cannot check signatures with SHA256.", key_path,
                                  OBJ_nid2sn(id) ?: "unknown type");
        }
        r = EVP_DigestVerify(ctx, sig, sig_size, sums, sums_size);
        ERR_clear_error();
        if (r != 1)
                return error_setf(-EBADMSG,
                                  "The signature of SHA256SUMS does not match the key %s: SHA256SUMS was changed after it was signed, "
                                  "or signed with another key.",
                                  key_path);
        return 0;
}

int sums_verify(const void *sums, size_t sums_size, const void *sig, size_t sig_size, const char *key_path, SumsKeyKind kind) {
        switch (kind) {
        case SUMS_KEY_GPG:
                return verify_gpg(sums, sums_size, sig, sig_size, key_path);
        case SUMS_KEY_PEM:
                return verify_pem(sums, sums_size, sig, sig_size, key_path);
        default:
                return -EINVAL;
        }
}
