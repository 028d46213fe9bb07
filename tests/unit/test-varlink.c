/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The Varlink wire protocol of src/session/varlink.c, checked with raw bytes on a socket: a
 * server runs in a thread on a socket in a temporary directory, and each test writes calls as a
 * client would (JSON + NUL) and compares what comes back, byte for byte where the bytes are
 * fixed. Covered: org.varlink.service, streaming with "more", oneway, pipelining, the standard
 * errors, messages that are not calls, deferred calls answered from another thread, clients that
 * go away in the middle of a call, and the idle timeout. */

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "io-imprint-installer-varlink.h"
#include "tests.h"
#include "varlink.h"

static const char test_interface[] =
        "# A test interface.\n"
        "interface org.example.test\n"
        "type Sub (name: string, size: ?int)\n"
        "method Echo(text: string, count: ?int, flag: ?bool, sub: ?Sub, list: ?[]int) -> (text: string)\n"
        "method Stream(n: int) -> (i: ?int, done: ?bool)\n"
        "method Defer() -> ()\n"
        "method Fail() -> ()\n";

/* ---- the server's methods -------------------------------------------------------------------- */

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static VarlinkCall *held;        /* the last call Defer kept */
static int n_disconnected;       /* disconnect handler calls */
static int n_echo;               /* Echo calls, oneway ones too */

static int method_echo(VarlinkCall *call, json_object *p, void *userdata) {
        static const VarlinkField sub_fields[] = {
                { "name", json_type_string },
                { "size", json_type_int, VARLINK_NULLABLE },
                {}
        };
        static const VarlinkField fields[] = {
                { "text", json_type_string },
                { "count", json_type_int, VARLINK_NULLABLE },
                { "flag", json_type_boolean, VARLINK_NULLABLE },
                { "sub", json_type_object, VARLINK_NULLABLE, sub_fields },
                { "list", json_type_array, VARLINK_NULLABLE, NULL, json_type_int },
                {}
        };
        json_object *text;

        pthread_mutex_lock(&lock);
        n_echo++;
        pthread_cond_broadcast(&cond);
        pthread_mutex_unlock(&lock);
        int r = varlink_check_parameters(call, p, fields);
        if (r < 0)
                return r;
        ASSERT_TRUE(json_object_object_get_ex(p, "text", &text));
        json_object *reply = json_object_new_object();
        json_object_object_add(reply, "text", json_object_new_string(json_object_get_string(text)));
        return varlink_call_reply(call, reply);
}

static int method_stream(VarlinkCall *call, json_object *p, void *userdata) {
        static const VarlinkField fields[] = { { "n", json_type_int }, {} };
        json_object *n, *reply;

        int r = varlink_check_parameters(call, p, fields);
        if (r < 0)
                return r;
        json_object_object_get_ex(p, "n", &n);
        for (int i = 0; i < json_object_get_int(n); i++) {
                reply = json_object_new_object();
                json_object_object_add(reply, "i", json_object_new_int(i));
                r = varlink_call_notify(call, reply);
                if (r < 0)
                        return r; /* the client left */
        }
        reply = json_object_new_object();
        json_object_object_add(reply, "done", json_object_new_boolean(true));
        return varlink_call_reply(call, reply);
}

static int method_defer(VarlinkCall *call, json_object *p, void *userdata) {
        pthread_mutex_lock(&lock);
        ASSERT_TRUE(held == NULL);
        held = call;
        pthread_cond_broadcast(&cond);
        pthread_mutex_unlock(&lock);
        return VARLINK_DEFERRED;
}

static int method_fail(VarlinkCall *call, json_object *p, void *userdata) {
        return -ENOENT;
}

static void on_disconnect(VarlinkCall *call, void *userdata) {
        pthread_mutex_lock(&lock);
        n_disconnected++;
        pthread_cond_broadcast(&cond);
        pthread_mutex_unlock(&lock);
}

/* Waits (at most a minute: a hang is a failure, not a slow pass) until *v reaches want. */
static void wait_for(int *v, int want) {
        struct timespec deadline;

        clock_gettime(CLOCK_REALTIME, &deadline);
        deadline.tv_sec += 60;
        pthread_mutex_lock(&lock);
        while (*v < want)
                if (pthread_cond_timedwait(&cond, &lock, &deadline) == ETIMEDOUT)
                        FAIL("waited a minute for %d, have %d", want, *v);
        pthread_mutex_unlock(&lock);
}

static VarlinkCall *wait_held(void) {
        struct timespec deadline;
        VarlinkCall *c;

        clock_gettime(CLOCK_REALTIME, &deadline);
        deadline.tv_sec += 60;
        pthread_mutex_lock(&lock);
        while (!held)
                if (pthread_cond_timedwait(&cond, &lock, &deadline) == ETIMEDOUT)
                        FAIL("Defer was not called within a minute");
        c = held;
        held = NULL;
        pthread_mutex_unlock(&lock);
        return c;
}

/* ---- a server in a thread -------------------------------------------------------------------- */

typedef struct TestServer {
        VarlinkServer *s;
        pthread_t thread;
        char path[128];
        int r;
        int returned;
} TestServer;

static char dir[] = "/tmp/test-varlink-XXXXXX";

static void *server_thread(void *p) {
        TestServer *t = p;
        int r = varlink_server_run(t->s);
        pthread_mutex_lock(&lock);
        t->r = r;
        t->returned = 1;
        pthread_cond_broadcast(&cond);
        pthread_mutex_unlock(&lock);
        return NULL;
}

static void server_start(TestServer *t, const char *name, uid_t allowed, unsigned idle_msec) {
        struct stat st;

        memset(t, 0, sizeof(*t));
        snprintf(t->path, sizeof(t->path), "%s/%s", dir, name);
        ASSERT_OK(varlink_server_new(&t->s));
        ASSERT_OK(varlink_server_set_info(t->s, "Imprint Tests", "test-varlink", "1.2", "https://example.org/imprint"));
        ASSERT_OK(varlink_server_add_interface(t->s, io_imprint_installer_varlink));
        ASSERT_OK(varlink_server_add_interface(t->s, test_interface));
        ASSERT_EQ(varlink_server_add_interface(t->s, test_interface), -EEXIST);
        ASSERT_EQ(varlink_server_add_interface(t->s, "# no name\nmethod X() -> ()\n"), -EINVAL);
        ASSERT_OK(varlink_server_add_method(t->s, "org.example.test.Echo", method_echo, 0, NULL));
        ASSERT_OK(varlink_server_add_method(t->s, "org.example.test.Stream", method_stream, VARLINK_METHOD_REQUIRES_MORE, NULL));
        ASSERT_OK(varlink_server_add_method(t->s, "org.example.test.Defer", method_defer, 0, NULL));
        ASSERT_OK(varlink_server_add_method(t->s, "org.example.test.Fail", method_fail, 0, NULL));
        ASSERT_EQ(varlink_server_add_method(t->s, "org.example.nope.X", method_fail, 0, NULL), -ENOENT);
        varlink_server_set_allowed_uid(t->s, allowed);
        varlink_server_set_idle_timeout(t->s, idle_msec);
        ASSERT_OK(varlink_server_listen_path(t->s, t->path, 0600));
        ASSERT_OK(stat(t->path, &st));
        ASSERT_TRUE(S_ISSOCK(st.st_mode));
        ASSERT_EQ(st.st_mode & 07777, 0600);
        ASSERT_EQ(pthread_create(&t->thread, NULL, server_thread, t), 0);
}

static void server_stop(TestServer *t) {
        varlink_server_quit(t->s);
        ASSERT_EQ(pthread_join(t->thread, NULL), 0);
        ASSERT_OK(t->r);
        varlink_server_free(t->s);
        unlink(t->path);
}

/* ---- raw bytes on the wire ------------------------------------------------------------------- */

static int raw_connect(const TestServer *t) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        struct timeval tv = { .tv_sec = 60 };
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

        ASSERT_TRUE(fd >= 0);
        strcpy(sa.sun_path, t->path);
        ASSERT_OK(connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0 ? -errno : 0);
        /* A server that never answers fails the test after a minute instead of hanging it. */
        ASSERT_OK(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)));
        return fd;
}

static void raw_send(int fd, const char *p, size_t n) {
        while (n > 0) {
                ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
                if (k < 0)
                        FAIL("send: %m");
                p += k;
                n -= k;
        }
}

/* Sends a string literal with its NUL: the message separator. */
#define SEND(fd, lit) raw_send((fd), (lit), sizeof(lit))

/* The next message, without its NUL; NULL at end of stream. */
static char *raw_read(int fd) {
        size_t n = 0, size = 256;
        char *buf = malloc(size), c;

        for (;;) {
                ssize_t k = recv(fd, &c, 1, 0);
                if (k < 0)
                        FAIL("recv: %m");
                if (k == 0) {
                        ASSERT_EQ(n, 0); /* no end of stream in the middle of a message */
                        free(buf);
                        return NULL;
                }
                if (n + 1 >= size)
                        buf = realloc(buf, size *= 2);
                buf[n++] = c;
                if (c == 0)
                        return buf;
        }
}

static void expect(int fd, const char *want) {
        char *got = raw_read(fd);
        ASSERT_STREQ(got, want);
        free(got);
}

static void expect_eof(int fd) {
        ASSERT_TRUE(raw_read(fd) == NULL);
}

static json_object *read_json(int fd) {
        char *got = raw_read(fd);
        ASSERT_TRUE(got);
        json_object *j = json_tokener_parse(got);
        ASSERT_TRUE(j);
        free(got);
        return j;
}

static const char *get_str(json_object *j, const char *path1, const char *path2) {
        json_object *v;
        ASSERT_TRUE(json_object_object_get_ex(j, path1, &v));
        if (path2)
                ASSERT_TRUE(json_object_object_get_ex(v, path2, &v));
        ASSERT_TRUE(json_object_is_type(v, json_type_string));
        return json_object_get_string(v);
}

/* ---- the tests ------------------------------------------------------------------------------- */

static void test_service_interface(TestServer *t) {
        int fd = raw_connect(t);
        json_object *j, *v;

        SEND(fd, "{\"method\":\"org.varlink.service.GetInfo\"}");
        j = read_json(fd);
        ASSERT_STREQ(get_str(j, "parameters", "vendor"), "Imprint Tests");
        ASSERT_STREQ(get_str(j, "parameters", "product"), "test-varlink");
        ASSERT_STREQ(get_str(j, "parameters", "version"), "1.2");
        ASSERT_STREQ(get_str(j, "parameters", "url"), "https://example.org/imprint");
        ASSERT_TRUE(json_object_object_get_ex(j, "parameters", &v));
        ASSERT_TRUE(json_object_object_get_ex(v, "interfaces", &v));
        ASSERT_STREQ(json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN),
                     "[\"org.varlink.service\",\"io.imprint.Installer\",\"org.example.test\"]");
        ASSERT_FALSE(json_object_object_get_ex(j, "error", NULL));
        ASSERT_FALSE(json_object_object_get_ex(j, "continues", NULL));
        json_object_put(j);

        /* The contract in the tree, byte for byte, as the build embedded it. */
        FILE *f = fopen(INTERFACE_FILE, "re");
        ASSERT_TRUE(f);
        char *file = calloc(1, 65536);
        size_t n = fread(file, 1, 65535, f);
        fclose(f);
        ASSERT_TRUE(n > 1000 && n < 65535);
        SEND(fd, "{\"method\":\"org.varlink.service.GetInterfaceDescription\",\"parameters\":{\"interface\":\"io.imprint.Installer\"}}");
        j = read_json(fd);
        ASSERT_STREQ(get_str(j, "parameters", "description"), file);
        json_object_put(j);
        free(file);

        SEND(fd, "{\"method\":\"org.varlink.service.GetInterfaceDescription\",\"parameters\":{\"interface\":\"org.varlink.service\"}}");
        j = read_json(fd);
        ASSERT_CONTAINS(get_str(j, "parameters", "description"), "interface org.varlink.service\n");
        ASSERT_CONTAINS(get_str(j, "parameters", "description"), "method GetInterfaceDescription(interface: string) -> (description: string)\n");
        json_object_put(j);

        SEND(fd, "{\"method\":\"org.varlink.service.GetInterfaceDescription\",\"parameters\":{\"interface\":\"org.example.nope\"}}");
        expect(fd, "{\"error\":\"org.varlink.service.InterfaceNotFound\",\"parameters\":{\"interface\":\"org.example.nope\"}}");
        SEND(fd, "{\"method\":\"org.varlink.service.GetInterfaceDescription\",\"parameters\":{}}");
        expect(fd, "{\"error\":\"org.varlink.service.InvalidParameter\",\"parameters\":{\"parameter\":\"interface\"}}");
        close(fd);
        printf("org.varlink.service: ok\n");
}

static void test_more_oneway_pipelined(TestServer *t) {
        int fd = raw_connect(t);
        int before;

        SEND(fd, "{\"method\":\"org.example.test.Stream\",\"parameters\":{\"n\":4},\"more\":true}");
        for (int i = 0; i < 4; i++) {
                char want[64];
                snprintf(want, sizeof(want), "{\"parameters\":{\"i\":%d},\"continues\":true}", i);
                expect(fd, want);
        }
        expect(fd, "{\"parameters\":{\"done\":true}}");

        SEND(fd, "{\"method\":\"org.example.test.Stream\",\"parameters\":{\"n\":4}}");
        expect(fd, "{\"error\":\"org.varlink.service.ExpectedMore\",\"parameters\":{}}");

        /* oneway: the method runs, nothing comes back; the next reply is the next call's. */
        pthread_mutex_lock(&lock);
        before = n_echo;
        pthread_mutex_unlock(&lock);
        SEND(fd, "{\"method\":\"org.example.test.Echo\",\"parameters\":{\"text\":\"quiet\"},\"oneway\":true}");
        SEND(fd, "{\"method\":\"org.example.test.Echo\",\"parameters\":{\"text\":\"bad\",\"bogus\":1},\"oneway\":true}");
        wait_for(&n_echo, before + 2);
        SEND(fd, "{\"method\":\"org.example.test.Echo\",\"parameters\":{\"text\":\"loud\"}}");
        expect(fd, "{\"parameters\":{\"text\":\"loud\"}}");

        /* Pipelined: written at once, answered in order. */
        static const char calls[] =
                "{\"method\":\"org.example.test.Echo\",\"parameters\":{\"text\":\"a\"}}\0"
                "{\"method\":\"org.example.test.Stream\",\"parameters\":{\"n\":2},\"more\":true}\0"
                "{\"method\":\"org.example.nope.X\"}\0"
                "{\"method\":\"org.example.test.Echo\",\"parameters\":{\"text\":\"b\"}}";
        raw_send(fd, calls, sizeof(calls));
        expect(fd, "{\"parameters\":{\"text\":\"a\"}}");
        expect(fd, "{\"parameters\":{\"i\":0},\"continues\":true}");
        expect(fd, "{\"parameters\":{\"i\":1},\"continues\":true}");
        expect(fd, "{\"parameters\":{\"done\":true}}");
        expect(fd, "{\"error\":\"org.varlink.service.InterfaceNotFound\",\"parameters\":{\"interface\":\"org.example.nope\"}}");
        expect(fd, "{\"parameters\":{\"text\":\"b\"}}");

        /* A message split across writes is one message. */
        raw_send(fd, "{\"method\":\"org.example.te", 25);
        usleep(10000);
        SEND(fd, "st.Echo\",\"parameters\":{\"text\":\"split\"}}");
        expect(fd, "{\"parameters\":{\"text\":\"split\"}}");
        close(fd);
        printf("more, oneway, pipelining: ok\n");
}

static void test_standard_errors(TestServer *t) {
        static const struct {
                const char *call, *reply;
        } cases[] = {
                { "{\"method\":\"org.example.test.Nope\"}",
                  "{\"error\":\"org.varlink.service.MethodNotFound\",\"parameters\":{\"method\":\"org.example.test.Nope\"}}" },
                { "{\"method\":\"org.example.nope.Echo\",\"parameters\":{\"text\":\"x\"}}",
                  "{\"error\":\"org.varlink.service.InterfaceNotFound\",\"parameters\":{\"interface\":\"org.example.nope\"}}" },
                { "{\"method\":\"NoDot\"}",
                  "{\"error\":\"org.varlink.service.InterfaceNotFound\",\"parameters\":{\"interface\":\"NoDot\"}}" },
                /* the contract's interface is known, its methods are not served here */
                { "{\"method\":\"io.imprint.Installer.Install\",\"parameters\":{}}",
                  "{\"error\":\"org.varlink.service.MethodNotFound\",\"parameters\":{\"method\":\"io.imprint.Installer.Install\"}}" },
                { "{\"method\":\"org.example.test.Echo\",\"parameters\":{\"text\":\"x\",\"bogus\":1}}",
                  "{\"error\":\"org.varlink.service.InvalidParameter\",\"parameters\":{\"parameter\":\"bogus\"}}" },
                { "{\"method\":\"org.example.test.Echo\",\"parameters\":{\"text\":5}}",
                  "{\"error\":\"org.varlink.service.InvalidParameter\",\"parameters\":{\"parameter\":\"text\"}}" },
                { "{\"method\":\"org.example.test.Echo\",\"parameters\":{\"text\":null}}",
                  "{\"error\":\"org.varlink.service.InvalidParameter\",\"parameters\":{\"parameter\":\"text\"}}" },
                { "{\"method\":\"org.example.test.Echo\"}",
                  "{\"error\":\"org.varlink.service.InvalidParameter\",\"parameters\":{\"parameter\":\"text\"}}" },
                { "{\"method\":\"org.example.test.Echo\",\"parameters\":{\"text\":\"x\",\"count\":1.5}}",
                  "{\"error\":\"org.varlink.service.InvalidParameter\",\"parameters\":{\"parameter\":\"count\"}}" },
                { "{\"method\":\"org.example.test.Echo\",\"parameters\":{\"text\":\"x\",\"flag\":\"true\"}}",
                  "{\"error\":\"org.varlink.service.InvalidParameter\",\"parameters\":{\"parameter\":\"flag\"}}" },
                { "{\"method\":\"org.example.test.Echo\",\"parameters\":{\"text\":\"x\",\"sub\":{\"name\":1}}}",
                  "{\"error\":\"org.varlink.service.InvalidParameter\",\"parameters\":{\"parameter\":\"sub.name\"}}" },
                { "{\"method\":\"org.example.test.Echo\",\"parameters\":{\"text\":\"x\",\"sub\":{\"name\":\"n\",\"x\":1}}}",
                  "{\"error\":\"org.varlink.service.InvalidParameter\",\"parameters\":{\"parameter\":\"sub.x\"}}" },
                { "{\"method\":\"org.example.test.Echo\",\"parameters\":{\"text\":\"x\",\"sub\":{}}}",
                  "{\"error\":\"org.varlink.service.InvalidParameter\",\"parameters\":{\"parameter\":\"sub.name\"}}" },
                { "{\"method\":\"org.example.test.Echo\",\"parameters\":{\"text\":\"x\",\"sub\":[]}}",
                  "{\"error\":\"org.varlink.service.InvalidParameter\",\"parameters\":{\"parameter\":\"sub\"}}" },
                { "{\"method\":\"org.example.test.Echo\",\"parameters\":{\"text\":\"x\",\"list\":[1,\"2\"]}}",
                  "{\"error\":\"org.varlink.service.InvalidParameter\",\"parameters\":{\"parameter\":\"list\"}}" },
                /* nullable fields may be null or missing, and nested ones too */
                { "{\"method\":\"org.example.test.Echo\",\"parameters\":{\"text\":\"ok\",\"count\":null,\"sub\":{\"name\":\"n\",\"size\":null},\"list\":[1,2]}}",
                  "{\"parameters\":{\"text\":\"ok\"}}" },
                { "{\"method\":\"org.example.test.Echo\",\"parameters\":{\"text\":\"x\"},\"upgrade\":true}",
                  "{\"error\":\"org.varlink.service.InvalidParameter\",\"parameters\":{\"parameter\":\"upgrade\"}}" },
                { "{\"method\":\"org.example.test.Echo\",\"parameters\":{\"text\":\"x\"},\"more\":true,\"oneway\":true}",
                  "{\"error\":\"org.varlink.service.InvalidParameter\",\"parameters\":{\"parameter\":\"oneway\"}}" },
                /* a handler's errno, as systemd's services report one */
                { "{\"method\":\"org.example.test.Fail\"}",
                  "{\"error\":\"io.systemd.System\",\"parameters\":{\"errno\":2}}" },
                /* unknown keys beside the call's are ignored (later protocol versions) */
                { "{\"method\":\"org.example.test.Echo\",\"parameters\":{\"text\":\"fine\"},\"future\":1}",
                  "{\"parameters\":{\"text\":\"fine\"}}" },
        };
        int fd = raw_connect(t);

        /* All on one connection: none of these errors closes it. */
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                raw_send(fd, cases[i].call, strlen(cases[i].call) + 1);
                expect(fd, cases[i].reply);
        }
        close(fd);
        printf("standard errors: ok\n");
}

static void test_bad_messages(TestServer *t) {
        static const struct {
                const char *bytes;
                size_t size;
                const char *reason;
        } cases[] = {
#define C(lit, reason) { lit, sizeof(lit), reason }
                C("{\"method\":", "not valid JSON"),
                C("[\"org.example.test.Echo\"]", "not a JSON object"),
                C("\"x\"", "not a JSON object"),
                C("", "empty"),
                C("{\"parameters\":{}}", "no \"method\""),
                C("{\"method\":7}", "no \"method\""),
                C("{\"method\":\"org.example.test.Echo\",\"parameters\":[]}", "\"parameters\" is not an object"),
                C("{\"method\":\"org.example.test.Echo\",\"more\":\"yes\"}", "not a boolean"),
                C("{\"method\":\"org.example.test.Echo\",\"method\":\"org.example.test.Fail\"}", "not valid JSON"),
                C("{\"method\":\"org.example.test.Echo\",\"parameters\":{\"text\":\"a\\u0000b\"}}", "not valid JSON"),
                /* a NUL inside ends the message there: what is before it is no JSON */
                C("{\"method\":\"org.example.test.Echo\"\0}", "not valid JSON"),
#undef C
        };
        json_object *j;

        for (size_t i = 0; i < ELEMENTSOF(cases) + 1; i++) {
                int fd = raw_connect(t);
                const char *reason;
                if (i < ELEMENTSOF(cases)) {
                        raw_send(fd, cases[i].bytes, cases[i].size);
                        reason = cases[i].reason;
                } else {
                        /* 129 KiB without a NUL, then one. */
                        size_t n = 129 * 1024;
                        char *big = malloc(n + 1);
                        memset(big, ' ', n);
                        big[n] = 0;
                        raw_send(fd, big, n + 1);
                        free(big);
                        reason = "longer than 128 KiB";
                }
                j = read_json(fd);
                ASSERT_STREQ(get_str(j, "error", NULL), "io.imprint.Installer.InvalidMessage");
                ASSERT_CONTAINS(get_str(j, "parameters", "reason"), reason);
                printf("refused: %s\n", get_str(j, "parameters", "reason"));
                json_object_put(j);
                expect_eof(fd);
                close(fd);
        }

        /* Exactly 128 KiB is a message. */
        {
                int fd = raw_connect(t);
                static const char head[] = "{\"method\":\"org.example.test.Echo\",\"parameters\":{\"text\":\"x\"}}";
                size_t n = 128 * 1024;
                char *big = malloc(n + 1);
                memset(big, ' ', n);
                memcpy(big, head, strlen(head));
                big[n] = 0;
                raw_send(fd, big, n + 1);
                free(big);
                expect(fd, "{\"parameters\":{\"text\":\"x\"}}");
                close(fd);
        }

        /* The server still serves. */
        int fd = raw_connect(t);
        SEND(fd, "{\"method\":\"org.example.test.Echo\",\"parameters\":{\"text\":\"still here\"}}");
        expect(fd, "{\"parameters\":{\"text\":\"still here\"}}");
        close(fd);
        printf("bad messages: ok\n");
}

typedef struct Answer {
        VarlinkCall *call;
        int r_notify, r_reply, r_again;
} Answer;

static void *answer_thread(void *p) {
        Answer *a = p;
        json_object *j = json_object_new_object();
        json_object_object_add(j, "i", json_object_new_int(7));
        a->r_notify = varlink_call_notify(a->call, j);
        j = json_object_new_object();
        json_object_object_add(j, "done", json_object_new_boolean(true));
        a->r_reply = varlink_call_reply(a->call, j);
        a->r_again = varlink_call_reply(a->call, NULL);
        varlink_call_unref(a->call);
        return NULL;
}

static void test_deferred(TestServer *t) {
        int fd = raw_connect(t), other = raw_connect(t);
        pthread_t thread;
        Answer a = {};

        /* Deferred, with a call pipelined behind it that must wait for it. */
        static const char calls[] =
                "{\"method\":\"org.example.test.Defer\",\"more\":true}\0"
                "{\"method\":\"org.example.test.Echo\",\"parameters\":{\"text\":\"after\"}}";
        raw_send(fd, calls, sizeof(calls));
        a.call = wait_held();
        ASSERT_STREQ(varlink_call_method(a.call), "org.example.test.Defer");
        ASSERT_TRUE(varlink_call_more(a.call));
        ASSERT_EQ(varlink_call_peer_uid(a.call), getuid());

        /* Meanwhile the server serves other connections. */
        SEND(other, "{\"method\":\"org.example.test.Echo\",\"parameters\":{\"text\":\"meanwhile\"}}");
        expect(other, "{\"parameters\":{\"text\":\"meanwhile\"}}");

        ASSERT_EQ(pthread_create(&thread, NULL, answer_thread, &a), 0);
        ASSERT_EQ(pthread_join(thread, NULL), 0);
        ASSERT_OK(a.r_notify);
        ASSERT_OK(a.r_reply);
        ASSERT_EQ(a.r_again, -EALREADY);
        expect(fd, "{\"parameters\":{\"i\":7},\"continues\":true}");
        expect(fd, "{\"parameters\":{\"done\":true}}");
        expect(fd, "{\"parameters\":{\"text\":\"after\"}}");

        /* A deferred call dropped without an answer is canceled, and the connection goes on. */
        SEND(fd, "{\"method\":\"org.example.test.Defer\"}");
        VarlinkCall *c = wait_held();
        ASSERT_EQ(varlink_call_notify(c, NULL), -EINVAL); /* no "more" */
        varlink_call_unref(c);
        expect(fd, "{\"error\":\"io.systemd.System\",\"parameters\":{\"errno\":125}}");
        SEND(fd, "{\"method\":\"org.example.test.Echo\",\"parameters\":{\"text\":\"next\"}}");
        expect(fd, "{\"parameters\":{\"text\":\"next\"}}");
        close(fd);
        close(other);
        printf("deferred calls: ok\n");
}

static void test_disconnect(TestServer *t) {
        int fd, before;
        VarlinkCall *c;
        json_object *j;

        /* The client goes; the loop tells the holder; replies fail without SIGPIPE. */
        fd = raw_connect(t);
        SEND(fd, "{\"method\":\"org.example.test.Defer\",\"more\":true}");
        c = wait_held();
        ASSERT_OK(varlink_call_set_disconnect_handler(c, on_disconnect, NULL));
        ASSERT_FALSE(varlink_call_is_gone(c));
        before = n_disconnected;
        close(fd);
        wait_for(&n_disconnected, before + 1);
        ASSERT_TRUE(varlink_call_is_gone(c));
        j = json_object_new_object();
        json_object_object_add(j, "secret", json_object_new_string("gone with the client"));
        ASSERT_EQ(varlink_call_notify(c, j), -ECONNRESET);
        ASSERT_EQ(varlink_call_reply(c, NULL), -ECONNRESET);
        ASSERT_EQ(varlink_call_set_disconnect_handler(c, on_disconnect, NULL), -ECONNRESET);
        varlink_call_unref(c);

        /* The holder writes before the loop noticed: the write fails, the loop still tells it. */
        fd = raw_connect(t);
        SEND(fd, "{\"method\":\"org.example.test.Defer\",\"more\":true}");
        c = wait_held();
        ASSERT_OK(varlink_call_set_disconnect_handler(c, on_disconnect, NULL));
        before = n_disconnected;
        close(fd);
        int r;
        for (int i = 0; i < 1000 && (r = varlink_call_notify(c, NULL)) == 0; i++)
                ;
        ASSERT_EQ(r, -ECONNRESET);
        wait_for(&n_disconnected, before + 1);
        varlink_call_unref(c);

        /* A client that sends a call and leaves at once: the reply goes nowhere, quietly. */
        for (int i = 0; i < 20; i++) {
                fd = raw_connect(t);
                SEND(fd, "{\"method\":\"org.example.test.Stream\",\"parameters\":{\"n\":50},\"more\":true}");
                close(fd);
        }

        fd = raw_connect(t);
        SEND(fd, "{\"method\":\"org.example.test.Echo\",\"parameters\":{\"text\":\"survived\"}}");
        expect(fd, "{\"parameters\":{\"text\":\"survived\"}}");
        close(fd);
        printf("disconnects: ok\n");
}

static void test_permission(void) {
        TestServer t;
        server_start(&t, "denied", getuid() + 1, 0);
        int fd = raw_connect(&t);
        SEND(fd, "{\"method\":\"org.varlink.service.GetInfo\"}");
        expect(fd, "{\"error\":\"org.varlink.service.PermissionDenied\",\"parameters\":{}}");
        SEND(fd, "{\"method\":\"org.example.test.Echo\",\"parameters\":{\"text\":\"x\"}}");
        expect(fd, "{\"error\":\"org.varlink.service.PermissionDenied\",\"parameters\":{}}");
        close(fd);
        server_stop(&t);
        printf("permission: ok\n");
}

static void test_client(TestServer *t) {
        _cleanup_(varlink_client_freep) VarlinkClient *c = NULL;
        json_object *p, *v;
        char *error = NULL;

        ASSERT_OK(varlink_client_connect(t->path, &c));
        p = json_object_new_object();
        json_object_object_add(p, "interface", json_object_new_string("org.example.test"));
        ASSERT_EQ(varlink_client_call(c, "org.varlink.service.GetInterfaceDescription", p, &p, &error), 0);
        ASSERT_TRUE(error == NULL);
        ASSERT_STREQ(get_str(p, "description", NULL), test_interface);
        json_object_put(p);

        ASSERT_EQ(varlink_client_call(c, "org.example.test.Stream", NULL, &p, &error), 0);
        ASSERT_STREQ(error, "org.varlink.service.ExpectedMore");
        free(error);
        json_object_put(p);

        p = json_object_new_object();
        json_object_object_add(p, "n", json_object_new_int(3));
        ASSERT_OK(varlink_client_send(c, "org.example.test.Stream", p, VARLINK_CALL_MORE));
        for (int i = 0; i < 3; i++) {
                ASSERT_EQ(varlink_client_read(c, &p, &error), 1);
                ASSERT_TRUE(json_object_object_get_ex(p, "i", &v));
                ASSERT_EQ(json_object_get_int(v), i);
                json_object_put(p);
        }
        ASSERT_EQ(varlink_client_read(c, &p, &error), 0);
        ASSERT_TRUE(json_object_object_get_ex(p, "done", &v));
        json_object_put(p);
        printf("client: ok\n");
}

static void test_idle_timeout(void) {
        TestServer t;
        VarlinkCall *c;
        int fd;

        /* Nobody connects: the loop ends by itself. */
        server_start(&t, "idle", getuid(), 50);
        wait_for(&t.returned, 1);
        ASSERT_EQ(pthread_join(t.thread, NULL), 0);
        ASSERT_OK(t.r);
        varlink_server_free(t.s);
        unlink(t.path);

        /* A deferred call whose client left keeps the loop running until it is released. */
        server_start(&t, "idle2", getuid(), 50);
        fd = raw_connect(&t);
        SEND(fd, "{\"method\":\"org.example.test.Defer\"}");
        c = wait_held();
        close(fd);
        usleep(300 * 1000);
        pthread_mutex_lock(&lock);
        ASSERT_EQ(t.returned, 0);
        pthread_mutex_unlock(&lock);
        varlink_call_unref(c);
        wait_for(&t.returned, 1);
        ASSERT_EQ(pthread_join(t.thread, NULL), 0);
        ASSERT_OK(t.r);
        varlink_server_free(t.s);
        unlink(t.path);
        printf("idle timeout: ok\n");
}

/* Socket activation: the listening socket arrives as fd 3 with $LISTEN_FDS and $LISTEN_PID. */
static void test_socket_activation(void) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        TestServer t = {};
        char pid[32];

        /* Whatever uses fd 3 in this process moves aside for the test and comes back after. */
        int saved = fcntl(3, F_DUPFD_CLOEXEC, 10);
        snprintf(t.path, sizeof(t.path), "%s/activated", dir);
        strcpy(sa.sun_path, t.path);
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        ASSERT_TRUE(fd >= 0);
        ASSERT_OK(bind(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0 ? -errno : 0);
        ASSERT_OK(listen(fd, 16) < 0 ? -errno : 0);
        if (fd != 3) {
                ASSERT_TRUE(dup2(fd, 3) == 3);
                close(fd);
        }
        snprintf(pid, sizeof(pid), "%d", (int) getpid());
        setenv("LISTEN_PID", pid, 1);
        setenv("LISTEN_FDS", "1", 1);

        ASSERT_OK(varlink_server_new(&t.s));
        ASSERT_OK(varlink_server_add_interface(t.s, io_imprint_installer_varlink));
        varlink_server_set_allowed_uid(t.s, getuid());
        ASSERT_EQ(varlink_server_listen_auto(t.s), 1);
        ASSERT_TRUE(getenv("LISTEN_FDS") == NULL); /* not passed on to children */
        ASSERT_EQ(pthread_create(&t.thread, NULL, server_thread, &t), 0);

        int c = raw_connect(&t);
        SEND(c, "{\"method\":\"org.varlink.service.GetInfo\"}");
        json_object *j = read_json(c);
        ASSERT_FALSE(json_object_object_get_ex(j, "error", NULL));
        json_object_put(j);
        close(c);
        server_stop(&t); /* closes fd 3 */
        if (saved >= 0) {
                ASSERT_TRUE(dup2(saved, 3) == 3);
                close(saved);
        }
        printf("socket activation: ok\n");
}

int main(void) {
        TestServer t;

        /* SIGPIPE stays at its default, which kills: a write without MSG_NOSIGNAL would end the test. */
        signal(SIGPIPE, SIG_DFL);
        setvbuf(stdout, NULL, _IOLBF, 0);
        ASSERT_TRUE(mkdtemp(dir));

        server_start(&t, "io.imprint.Installer", getuid(), 0);
        test_service_interface(&t);
        test_more_oneway_pipelined(&t);
        test_standard_errors(&t);
        test_bad_messages(&t);
        test_deferred(&t);
        test_disconnect(&t);
        test_client(&t);
        server_stop(&t);

        test_permission();
        test_idle_timeout();
        test_socket_activation();

        ASSERT_OK(rmdir(dir) < 0 ? -errno : 0);
        return 0;
}
