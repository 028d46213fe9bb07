/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The Varlink wire protocol and a small poll() server: see varlink.h for the contract.
 *
 * Threads and locks: the connection list, the input buffers and dispatching belong to the loop's
 * thread. Each connection has a write lock (one message on the wire at a time, from any thread)
 * and a state lock (gone, the call in progress, its disconnect handler, call reference counts).
 * The write lock is never taken while the state lock is held. A connection's socket is closed
 * only when its last reference goes, so a worker never writes to a reused descriptor; the loop
 * drops a client with shutdown(), which also wakes a worker blocked in poll() for it. */

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "error.h"
#include "json-strict.h"
#include "log.h"
#include "varlink.h"

/* The service interface every Varlink service offers (varlink.org, "Service"). */
static const char org_varlink_service[] =
        "# The interface every Varlink service offers: what it is and which interfaces it implements.\n"
        "interface org.varlink.service\n"
        "\n"
        "# The service's vendor, product, version, url, and the interfaces it implements.\n"
        "method GetInfo() -> (\n"
        "  vendor: string,\n"
        "  product: string,\n"
        "  version: string,\n"
        "  url: string,\n"
        "  interfaces: []string\n"
        ")\n"
        "\n"
        "# The description of one of the interfaces it implements.\n"
        "method GetInterfaceDescription(interface: string) -> (description: string)\n"
        "\n"
        "# The interface is not implemented here.\n"
        "error InterfaceNotFound (interface: string)\n"
        "\n"
        "# The interface has no such method.\n"
        "error MethodNotFound (method: string)\n"
        "\n"
        "# The interface has the method, but this service does not implement it.\n"
        "error MethodNotImplemented (method: string)\n"
        "\n"
        "# A parameter is missing, unknown, or of the wrong type.\n"
        "error InvalidParameter (parameter: string)\n"
        "\n"
        "# The caller may not call this.\n"
        "error PermissionDenied ()\n"
        "\n"
        "# The method must be called with \"more\".\n"
        "error ExpectedMore ()\n";

typedef struct Interface {
        char *name;
        const char *description;
} Interface;

typedef struct Method {
        char *name;
        VarlinkMethod fn;
        VarlinkMethodFlags flags;
        void *userdata;
} Method;

typedef struct Connection {
        unsigned n_ref;                /* atomic */
        VarlinkServer *server;
        int fd;
        uid_t uid;
        pthread_mutex_t write_lock;
        pthread_mutex_t lock;
        bool gone;                     /* written under lock, read atomically */
        VarlinkCall *current;          /* under lock: the call not answered yet (borrowed) */
        bool eof;                      /* loop thread only, like the buffer */
        char *in;
        size_t in_size;
} Connection;

struct VarlinkCall {
        unsigned n_ref;                /* under conn->lock */
        Connection *conn;
        char *method;
        json_object *parameters;
        bool more, oneway;
        bool answered;                 /* under conn->write_lock */
        void (*on_disconnect)(VarlinkCall *call, void *userdata); /* under conn->lock */
        void *disconnect_userdata;
};

struct VarlinkServer {
        char *vendor, *product, *version, *url;
        Interface *interfaces;
        size_t n_interfaces;
        Method *methods;
        size_t n_methods;
        int *listen_fds;
        size_t n_listen_fds;
        Connection **conns;
        size_t n_conns;
        uid_t allowed_uid;
        unsigned idle_msec;
        int wake_fd;
        int quit;                      /* atomic */
        unsigned n_calls;              /* atomic: calls not freed yet */
        pthread_t loop_thread;
        bool in_loop;
};

static void server_wake(VarlinkServer *s) {
        uint64_t one = 1;
        /* Best effort: a full eventfd counter wakes the loop just the same. */
        ssize_t n = write(s->wake_fd, &one, sizeof(one));
        (void) n;
}

/* Wipes every string value in j (keys are names, never secrets). */
static void json_wipe_strings(json_object *j) {
        switch (json_object_get_type(j)) {
        case json_type_string:
                explicit_bzero((char *) json_object_get_string(j), json_object_get_string_len(j));
                break;
        case json_type_object: {
                json_object_object_foreach(j, key, v) {
                        (void) key;
                        json_wipe_strings(v);
                }
                break;
        }
        case json_type_array:
                for (size_t i = 0; i < json_object_array_length(j); i++)
                        json_wipe_strings(json_object_array_get_idx(j, i));
                break;
        default:
                break;
        }
}

static void json_put_wiped(json_object *j) {
        if (!j)
                return;
        json_wipe_strings(j);
        json_object_put(j);
}

/* ---- connections ----------------------------------------------------------------------------- */

static Connection *conn_ref(Connection *c) {
        __atomic_add_fetch(&c->n_ref, 1, __ATOMIC_SEQ_CST);
        return c;
}

static void conn_unref(Connection *c) {
        if (!c || __atomic_sub_fetch(&c->n_ref, 1, __ATOMIC_SEQ_CST) > 0)
                return;
        if (c->in) {
                explicit_bzero(c->in, VARLINK_MESSAGE_MAX + 1);
                free(c->in);
        }
        if (c->fd >= 0)
                close(c->fd);
        pthread_mutex_destroy(&c->write_lock);
        pthread_mutex_destroy(&c->lock);
        free(c);
}

static bool conn_is_gone(Connection *c) {
        return __atomic_load_n(&c->gone, __ATOMIC_SEQ_CST);
}

/* From any thread: the client is gone, or is to be dropped. The loop reaps it. */
static void conn_mark_gone(Connection *c) {
        pthread_mutex_lock(&c->lock);
        __atomic_store_n(&c->gone, true, __ATOMIC_SEQ_CST);
        pthread_mutex_unlock(&c->lock);
        (void) shutdown(c->fd, SHUT_RDWR);
        server_wake(c->server);
}

/* Sends size bytes; the caller holds the write lock. The loop's thread waits at most
 * VARLINK_SEND_TIMEOUT_SEC for a client that does not read; other threads wait until the client
 * reads or goes. */
static int conn_write(Connection *c, const char *p, size_t size) {
        VarlinkServer *s = c->server;
        bool in_loop = s->in_loop && pthread_equal(pthread_self(), s->loop_thread);

        while (size > 0) {
                if (conn_is_gone(c))
                        return -ECONNRESET;
                ssize_t n = send(c->fd, p, size, MSG_NOSIGNAL | MSG_DONTWAIT);
                if (n >= 0) {
                        p += n;
                        size -= n;
                        continue;
                }
                if (errno == EINTR)
                        continue;
                if (errno != EAGAIN) {
                        conn_mark_gone(c);
                        return -ECONNRESET;
                }
                struct pollfd pfd = { .fd = c->fd, .events = POLLOUT };
                int k = poll(&pfd, 1, in_loop ? VARLINK_SEND_TIMEOUT_SEC * 1000 : -1);
                if (k == 0) {
                        log_debug("Varlink client of uid %u does not read its replies; dropped.", (unsigned) c->uid);
                        conn_mark_gone(c);
                        return -ECONNRESET;
                }
        }
        return 0;
}

/* Sends msg and a NUL, then wipes the text json-c made of it. The caller holds the write lock. */
static int conn_send(Connection *c, json_object *msg) {
        size_t len;
        const char *text = json_object_to_json_string_length(msg, JSON_C_TO_STRING_PLAIN, &len);
        if (!text)
                return -ENOMEM;
        /* json-c's text is NUL-terminated: that NUL is the message's end on the wire. */
        int r = conn_write(c, text, len + 1);
        explicit_bzero((char *) text, len);
        return r;
}

static int conn_send_error_locked(Connection *c, const char *error, json_object *parameters) {
        json_object *msg = json_object_new_object();
        if (!msg) {
                json_object_put(parameters);
                return -ENOMEM;
        }
        json_object_object_add(msg, "error", json_object_new_string(error));
        json_object_object_add(msg, "parameters", parameters ?: json_object_new_object());
        int r = conn_send(c, msg);
        json_object_put(msg);
        return r;
}

/* A message that is no Varlink call: say why, then drop the client. */
static void conn_refuse_message(Connection *c, const char *reason) {
        char buf[4096];

        log_debug("Refusing a Varlink message: %s", reason);
        json_object *p = json_object_new_object();
        json_object_object_add(p, "reason", json_object_new_string(reason));
        pthread_mutex_lock(&c->write_lock);
        (void) conn_send_error_locked(c, VARLINK_ERROR_INVALID_MESSAGE, p);
        pthread_mutex_unlock(&c->write_lock);
        /* Read what the client sent after it (bounded), so that it sees end of stream after the
         * error rather than a reset for unread data. */
        for (size_t total = 0; total < 4 * VARLINK_MESSAGE_MAX;) {
                ssize_t n = recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT);
                if (n <= 0)
                        break;
                total += n;
        }
        explicit_bzero(buf, sizeof(buf));
        conn_mark_gone(c);
}

/* ---- calls ----------------------------------------------------------------------------------- */

const char *varlink_call_method(const VarlinkCall *call) {
        return call->method;
}

bool varlink_call_more(const VarlinkCall *call) {
        return call->more;
}

bool varlink_call_oneway(const VarlinkCall *call) {
        return call->oneway;
}

uid_t varlink_call_peer_uid(const VarlinkCall *call) {
        return call->conn->uid;
}

json_object *varlink_call_parameters(const VarlinkCall *call) {
        return call->parameters;
}

bool varlink_call_is_gone(VarlinkCall *call) {
        return conn_is_gone(call->conn);
}

VarlinkCall *varlink_call_ref(VarlinkCall *call) {
        pthread_mutex_lock(&call->conn->lock);
        call->n_ref++;
        pthread_mutex_unlock(&call->conn->lock);
        return call;
}

int varlink_call_set_disconnect_handler(VarlinkCall *call, void (*fn)(VarlinkCall *call, void *userdata),
                                        void *userdata) {
        Connection *c = call->conn;
        int r = 0;

        pthread_mutex_lock(&c->lock);
        if (c->gone)
                r = -ECONNRESET;
        else {
                call->on_disconnect = fn;
                call->disconnect_userdata = userdata;
        }
        pthread_mutex_unlock(&c->lock);
        return r;
}

/* Sends a reply (error NULL) or an error; final unless continues. Takes parameters. */
static int call_send(VarlinkCall *call, const char *error, json_object *parameters, bool continues) {
        Connection *c = call->conn;
        int r = 0;

        if (!parameters)
                parameters = json_object_new_object();
        if (!parameters)
                return -ENOMEM;

        pthread_mutex_lock(&c->write_lock);
        if (call->answered)
                r = -EALREADY;
        else if (continues && !call->more)
                r = -EINVAL;
        else {
                if (!continues)
                        call->answered = true;
                if (!call->oneway) {
                        json_object *msg = json_object_new_object();
                        if (!msg)
                                r = -ENOMEM;
                        else {
                                if (error)
                                        json_object_object_add(msg, "error", json_object_new_string(error));
                                json_object_object_add(msg, "parameters", json_object_get(parameters));
                                if (continues)
                                        json_object_object_add(msg, "continues", json_object_new_boolean(true));
                                r = conn_send(c, msg);
                                json_object_put(msg);
                        }
                }
        }
        bool finished = !continues && r != -EALREADY && r != -EINVAL;
        pthread_mutex_unlock(&c->write_lock);
        json_put_wiped(parameters);

        if (finished) {
                /* The next call of this connection may be read now. */
                pthread_mutex_lock(&c->lock);
                if (c->current == call)
                        c->current = NULL;
                pthread_mutex_unlock(&c->lock);
                server_wake(c->server);
        }
        return r;
}

int varlink_call_reply(VarlinkCall *call, json_object *parameters) {
        return call_send(call, NULL, parameters, false);
}

int varlink_call_notify(VarlinkCall *call, json_object *parameters) {
        return call_send(call, NULL, parameters, true);
}

int varlink_call_error(VarlinkCall *call, const char *error, json_object *parameters) {
        return call_send(call, error, parameters, false);
}

int varlink_call_error_invalid_parameter(VarlinkCall *call, const char *name) {
        json_object *p = json_object_new_object();
        if (!p)
                return -ENOMEM;
        json_object_object_add(p, "parameter", json_object_new_string(name));
        return varlink_call_error(call, "org.varlink.service.InvalidParameter", p);
}

/* The error systemd's services send for a failure with an errno. */
static int call_error_errno(VarlinkCall *call, int r) {
        json_object *p = json_object_new_object();
        if (!p)
                return -ENOMEM;
        json_object_object_add(p, "errno", json_object_new_int(r < 0 ? -r : r));
        return varlink_call_error(call, "io.systemd.System", p);
}

static bool call_answered(VarlinkCall *call) {
        pthread_mutex_lock(&call->conn->write_lock);
        bool a = call->answered;
        pthread_mutex_unlock(&call->conn->write_lock);
        return a;
}

VarlinkCall *varlink_call_unref(VarlinkCall *call) {
        if (!call)
                return NULL;
        Connection *c = call->conn;
        VarlinkServer *s = c->server;

        pthread_mutex_lock(&c->lock);
        unsigned n = --call->n_ref;
        pthread_mutex_unlock(&c->lock);
        if (n > 0)
                return NULL;

        if (!call_answered(call))
                (void) call_error_errno(call, -ECANCELED);
        pthread_mutex_lock(&c->lock);
        if (c->current == call)
                c->current = NULL;
        pthread_mutex_unlock(&c->lock);
        json_put_wiped(call->parameters);
        free(call->method);
        free(call);
        conn_unref(c);
        __atomic_sub_fetch(&s->n_calls, 1, __ATOMIC_SEQ_CST);
        server_wake(s);
        return NULL;
}

/* ---- checking parameters --------------------------------------------------------------------- */

static bool type_fits(json_type want, json_object *v) {
        json_type t = json_object_get_type(v);
        return t == want || (want == json_type_double && t == json_type_int);
}

/* 0, or -EINVAL with *ret_bad naming the parameter (allocated). */
static int check_object(json_object *o, const VarlinkField *fields, const char *prefix, char **ret_bad) {
        json_object_object_foreach(o, key, val) {
                const VarlinkField *f = fields;
                (void) val;
                while (f->name && !streq(f->name, key))
                        f++;
                if (!f->name) {
                        if (asprintf(ret_bad, "%s%s", prefix, key) < 0)
                                return -ENOMEM;
                        return -EINVAL;
                }
        }

        for (const VarlinkField *f = fields; f->name; f++) {
                json_object *v = NULL;
                bool ok;

                if (!json_object_object_get_ex(o, f->name, &v) || !v)
                        ok = f->flags & VARLINK_NULLABLE;
                else if (!type_fits(f->type, v))
                        ok = false;
                else if (f->type == json_type_object && f->fields) {
                        _cleanup_(freep) char *p = NULL;
                        if (asprintf(&p, "%s%s.", prefix, f->name) < 0)
                                return -ENOMEM;
                        int r = check_object(v, f->fields, p, ret_bad);
                        if (r < 0)
                                return r;
                        ok = true;
                } else {
                        ok = true;
                        if (f->type == json_type_array && f->elements != json_type_null)
                                for (size_t i = 0; ok && i < json_object_array_length(v); i++)
                                        ok = type_fits(f->elements, json_object_array_get_idx(v, i));
                }
                if (!ok) {
                        if (asprintf(ret_bad, "%s%s", prefix, f->name) < 0)
                                return -ENOMEM;
                        return -EINVAL;
                }
        }
        return 0;
}

int varlink_check_parameters(VarlinkCall *call, json_object *parameters, const VarlinkField *fields) {
        _cleanup_(freep) char *bad = NULL;

        if (!json_object_is_type(parameters, json_type_object))
                return -EINVAL;
        int r = check_object(parameters, fields, "", &bad);
        if (r == -EINVAL && call)
                (void) varlink_call_error_invalid_parameter(call, bad);
        return r;
}

/* ---- the server ------------------------------------------------------------------------------ */

static const Interface *server_find_interface(VarlinkServer *s, const char *name, size_t len) {
        for (size_t i = 0; i < s->n_interfaces; i++)
                if (strlen(s->interfaces[i].name) == len && strncmp(s->interfaces[i].name, name, len) == 0)
                        return &s->interfaces[i];
        return NULL;
}

static const Method *server_find_method(VarlinkServer *s, const char *name) {
        for (size_t i = 0; i < s->n_methods; i++)
                if (streq(s->methods[i].name, name))
                        return &s->methods[i];
        return NULL;
}

static int method_get_info(VarlinkCall *call, json_object *parameters, void *userdata) {
        static const VarlinkField fields[] = { {} };
        VarlinkServer *s = userdata;

        int r = varlink_check_parameters(call, parameters, fields);
        if (r < 0)
                return r;
        json_object *p = json_object_new_object(), *ifaces = json_object_new_array();
        if (!p || !ifaces) {
                json_object_put(p);
                json_object_put(ifaces);
                return -ENOMEM;
        }
        json_object_object_add(p, "vendor", json_object_new_string(s->vendor ?: ""));
        json_object_object_add(p, "product", json_object_new_string(s->product ?: ""));
        json_object_object_add(p, "version", json_object_new_string(s->version ?: ""));
        json_object_object_add(p, "url", json_object_new_string(s->url ?: ""));
        for (size_t i = 0; i < s->n_interfaces; i++)
                json_object_array_add(ifaces, json_object_new_string(s->interfaces[i].name));
        json_object_object_add(p, "interfaces", ifaces);
        return varlink_call_reply(call, p);
}

static int method_get_interface_description(VarlinkCall *call, json_object *parameters, void *userdata) {
        static const VarlinkField fields[] = { { "interface", json_type_string }, {} };
        VarlinkServer *s = userdata;
        json_object *v, *p;

        int r = varlink_check_parameters(call, parameters, fields);
        if (r < 0)
                return r;
        json_object_object_get_ex(parameters, "interface", &v);
        const char *name = json_object_get_string(v);
        const Interface *i = server_find_interface(s, name, strlen(name));
        p = json_object_new_object();
        if (!p)
                return -ENOMEM;
        if (!i) {
                json_object_object_add(p, "interface", json_object_new_string(name));
                return varlink_call_error(call, "org.varlink.service.InterfaceNotFound", p);
        }
        json_object_object_add(p, "description", json_object_new_string(i->description));
        return varlink_call_reply(call, p);
}

int varlink_server_new(VarlinkServer **ret) {
        _cleanup_(varlink_server_freep) VarlinkServer *s = calloc(1, sizeof(VarlinkServer));
        int r;

        if (!s)
                return -ENOMEM;
        s->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (s->wake_fd < 0)
                return negative_errno();
        r = varlink_server_add_interface(s, org_varlink_service);
        if (r < 0)
                return r;
        r = varlink_server_add_method(s, "org.varlink.service.GetInfo", method_get_info, 0, s);
        if (r < 0)
                return r;
        r = varlink_server_add_method(s, "org.varlink.service.GetInterfaceDescription",
                                      method_get_interface_description, 0, s);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(s);
        return 0;
}

static void server_drop_connection(VarlinkServer *s, size_t i);

VarlinkServer *varlink_server_free(VarlinkServer *s) {
        if (!s)
                return NULL;
        while (s->n_conns > 0)
                server_drop_connection(s, s->n_conns - 1);
        free(s->conns);
        for (size_t i = 0; i < s->n_listen_fds; i++)
                close(s->listen_fds[i]);
        free(s->listen_fds);
        for (size_t i = 0; i < s->n_interfaces; i++)
                free(s->interfaces[i].name);
        free(s->interfaces);
        for (size_t i = 0; i < s->n_methods; i++)
                free(s->methods[i].name);
        free(s->methods);
        free(s->vendor);
        free(s->product);
        free(s->version);
        free(s->url);
        if (s->wake_fd >= 0)
                close(s->wake_fd);
        free(s);
        return NULL;
}

static int strdup_to(char **p, const char *v) {
        char *c = v ? strdup(v) : NULL;
        if (v && !c)
                return -ENOMEM;
        free(*p);
        *p = c;
        return 0;
}

int varlink_server_set_info(VarlinkServer *s, const char *vendor, const char *product,
                            const char *version, const char *url) {
        if (strdup_to(&s->vendor, vendor) < 0 || strdup_to(&s->product, product) < 0 ||
            strdup_to(&s->version, version) < 0 || strdup_to(&s->url, url) < 0)
                return -ENOMEM;
        return 0;
}

int varlink_server_add_interface(VarlinkServer *s, const char *description) {
        const char *p = description, *name = NULL;
        size_t len = 0;

        /* The name is on the first line that is neither empty nor a comment: "interface NAME". */
        while (*p) {
                p += strspn(p, " \t\r\n");
                if (*p == '#') {
                        p += strcspn(p, "\n");
                        continue;
                }
                if (strncmp(p, "interface", 9) == 0 && (p[9] == ' ' || p[9] == '\t')) {
                        name = p + 9 + strspn(p + 9, " \t");
                        len = strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-");
                }
                break;
        }
        if (!name || len == 0 || !strchr(" \t\r\n#", name[len]))
                return -EINVAL;
        if (server_find_interface(s, name, len))
                return -EEXIST;

        Interface *a = reallocarray(s->interfaces, s->n_interfaces + 1, sizeof(Interface));
        if (!a)
                return -ENOMEM;
        s->interfaces = a;
        a[s->n_interfaces] = (Interface) { .name = strndup(name, len), .description = description };
        if (!a[s->n_interfaces].name)
                return -ENOMEM;
        s->n_interfaces++;
        return 0;
}

int varlink_server_add_method(VarlinkServer *s, const char *full_name, VarlinkMethod m,
                              VarlinkMethodFlags flags, void *userdata) {
        const char *dot = strrchr(full_name, '.');

        if (!dot || dot == full_name || !dot[1] || !m)
                return -EINVAL;
        if (!server_find_interface(s, full_name, dot - full_name))
                return -ENOENT;
        if (server_find_method(s, full_name))
                return -EEXIST;
        Method *a = reallocarray(s->methods, s->n_methods + 1, sizeof(Method));
        if (!a)
                return -ENOMEM;
        s->methods = a;
        a[s->n_methods] = (Method) { .name = strdup(full_name), .fn = m, .flags = flags, .userdata = userdata };
        if (!a[s->n_methods].name)
                return -ENOMEM;
        s->n_methods++;
        return 0;
}

void varlink_server_set_allowed_uid(VarlinkServer *s, uid_t uid) {
        s->allowed_uid = uid;
}

void varlink_server_set_idle_timeout(VarlinkServer *s, unsigned msec) {
        s->idle_msec = msec;
}

int varlink_server_listen_fd(VarlinkServer *s, int fd) {
        int *a = reallocarray(s->listen_fds, s->n_listen_fds + 1, sizeof(int));
        if (!a) {
                close(fd);
                return -ENOMEM;
        }
        s->listen_fds = a;
        a[s->n_listen_fds++] = fd;
        return 0;
}

int varlink_server_listen_path(VarlinkServer *s, const char *path, mode_t mode) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };

        if (strlen(path) >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        strcpy(sa.sun_path, path);
        _cleanup_(closep) int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return negative_errno();
        if (unlink(path) < 0 && errno != ENOENT)
                return negative_errno();
        if (bind(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0)
                return negative_errno();
        /* Nobody can connect before listen(): the mode is right before anyone can. */
        if (chmod(path, mode) < 0 || listen(fd, SOMAXCONN) < 0)
                return negative_errno();
        return varlink_server_listen_fd(s, TAKE_FD(fd));
}

int varlink_server_listen_auto(VarlinkServer *s) {
        int n = sd_listen_fds(true);
        if (n < 0)
                return n;
        for (int i = 0; i < n; i++) {
                int fd = SD_LISTEN_FDS_START + i;
                if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0)
                        return negative_errno();
                int r = varlink_server_listen_fd(s, fd);
                if (r < 0)
                        return r;
        }
        return n;
}

void varlink_server_quit(VarlinkServer *s) {
        __atomic_store_n(&s->quit, 1, __ATOMIC_SEQ_CST);
        server_wake(s);
}

static void server_accept(VarlinkServer *s, int listen_fd) {
        int fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
                return;
        struct ucred cred;
        socklen_t sl = sizeof(cred);
        Connection *c = calloc(1, sizeof(Connection));
        char *in = malloc(VARLINK_MESSAGE_MAX + 1);
        Connection **a = reallocarray(s->conns, s->n_conns + 1, sizeof(Connection *));
        if (a)
                s->conns = a;
        if (!c || !in || !a || getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &sl) < 0) {
                free(c);
                free(in);
                close(fd);
                return;
        }
        *c = (Connection) { .n_ref = 1, .server = s, .fd = fd, .uid = cred.uid, .in = in };
        pthread_mutex_init(&c->write_lock, NULL);
        pthread_mutex_init(&c->lock, NULL);
        s->conns[s->n_conns++] = c;
}

/* Removes connection i; tells the holder of a call in progress that its client is gone. */
static void server_drop_connection(VarlinkServer *s, size_t i) {
        Connection *c = s->conns[i];
        VarlinkCall *call = NULL;
        void (*fn)(VarlinkCall *, void *) = NULL;
        void *userdata = NULL;

        conn_mark_gone(c);
        pthread_mutex_lock(&c->lock);
        /* A call whose last reference is being dropped right now is not handed out again. */
        if (c->current && c->current->n_ref > 0) {
                call = c->current;
                call->n_ref++;
                fn = call->on_disconnect;
                userdata = call->disconnect_userdata;
                call->on_disconnect = NULL;
        }
        pthread_mutex_unlock(&c->lock);
        if (fn)
                fn(call, userdata);
        varlink_call_unref(call);

        memmove(s->conns + i, s->conns + i + 1, (s->n_conns - i - 1) * sizeof(Connection *));
        s->n_conns--;
        conn_unref(c);
}

static void server_dispatch(VarlinkServer *s, VarlinkCall *call) {
        const char *error = NULL;
        json_object *ep = NULL;
        const Method *m = NULL;
        const char *dot = strrchr(call->method, '.');

        if (call->conn->uid != s->allowed_uid)
                error = "org.varlink.service.PermissionDenied";
        else if (!dot || !server_find_interface(s, call->method, dot - call->method)) {
                error = "org.varlink.service.InterfaceNotFound";
                ep = json_object_new_object();
                json_object_object_add(ep, "interface",
                                       json_object_new_string_len(call->method, dot ? dot - call->method : (int) strlen(call->method)));
        } else if (!(m = server_find_method(s, call->method))) {
                error = "org.varlink.service.MethodNotFound";
                ep = json_object_new_object();
                json_object_object_add(ep, "method", json_object_new_string(call->method));
        } else if (call->more && call->oneway) {
                call->oneway = false; /* a contradiction is answered */
                ep = json_object_new_object();
                json_object_object_add(ep, "parameter", json_object_new_string("oneway"));
                error = "org.varlink.service.InvalidParameter";
        } else if ((m->flags & VARLINK_METHOD_REQUIRES_MORE) && !call->more)
                error = "org.varlink.service.ExpectedMore";

        if (error) {
                (void) varlink_call_error(call, error, ep);
                varlink_call_unref(call);
                return;
        }

        int r = m->fn(call, call->parameters, m->userdata);
        if (r == VARLINK_DEFERRED)
                return; /* the handler holds the reference now */
        if (!call_answered(call)) {
                if (r < 0)
                        (void) call_error_errno(call, r);
                else
                        (void) varlink_call_reply(call, NULL);
        }
        varlink_call_unref(call);
}

/* Reads one message of c's buffer (text, len: without its NUL) as a call and dispatches it. */
static void server_handle_message(VarlinkServer *s, Connection *c, json_object *m) {
        json_object *method = NULL, *parameters = NULL, *v;
        bool flags[3] = {};
        static const char *const flag_names[3] = { "more", "oneway", "upgrade" };

        if (!json_object_is_type(m, json_type_object))
                { conn_refuse_message(c, "The message is not a JSON object."); return; }
        if (!json_object_object_get_ex(m, "method", &method) || !json_object_is_type(method, json_type_string))
                { conn_refuse_message(c, "The message has no \"method\" string."); return; }
        if (json_object_object_get_ex(m, "parameters", &parameters) && parameters &&
            !json_object_is_type(parameters, json_type_object))
                { conn_refuse_message(c, "The message's \"parameters\" is not an object."); return; }
        for (size_t i = 0; i < 3; i++)
                if (json_object_object_get_ex(m, flag_names[i], &v) && v) {
                        if (!json_object_is_type(v, json_type_boolean))
                                { conn_refuse_message(c, "A flag of the message (more, oneway, upgrade) is not a boolean."); return; }
                        flags[i] = json_object_get_boolean(v);
                }

        VarlinkCall *call = calloc(1, sizeof(VarlinkCall));
        if (!call)
                { conn_mark_gone(c); return; }
        /* The call takes the parameters out of the message: the message is wiped when it is freed,
         * the parameters when the call is. */
        parameters = parameters ? json_object_get(parameters) : json_object_new_object();
        json_object_object_del(m, "parameters");
        *call = (VarlinkCall) {
                .n_ref = 1,
                .conn = conn_ref(c),
                .method = strdup(json_object_get_string(method)),
                .parameters = parameters,
                .more = flags[0],
                .oneway = flags[1],
        };
        __atomic_add_fetch(&s->n_calls, 1, __ATOMIC_SEQ_CST);
        pthread_mutex_lock(&c->lock);
        c->current = call;
        pthread_mutex_unlock(&c->lock);
        if (!call->method || !call->parameters) {
                (void) call_error_errno(call, -ENOMEM);
                varlink_call_unref(call);
                return;
        }
        if (flags[2]) {
                (void) varlink_call_error_invalid_parameter(call, "upgrade");
                varlink_call_unref(call);
                return;
        }
        server_dispatch(s, call);
}

static bool conn_busy(Connection *c) {
        pthread_mutex_lock(&c->lock);
        bool busy = c->current;
        pthread_mutex_unlock(&c->lock);
        return busy;
}

/* Dispatches the complete messages in c's buffer, one call at a time. */
static void server_process(VarlinkServer *s, Connection *c) {
        while (!conn_is_gone(c) && !conn_busy(c)) {
                char *nul = memchr(c->in, 0, c->in_size);
                if (!nul) {
                        if (c->in_size > VARLINK_MESSAGE_MAX)
                                conn_refuse_message(c, "The message is longer than 128 KiB.");
                        else if (c->eof)
                                conn_mark_gone(c); /* done, perhaps in the middle of a message */
                        return;
                }
                size_t len = nul - c->in;
                if (len == 0)
                        { conn_refuse_message(c, "The message is empty."); return; }

                json_object *m = NULL;
                int r = json_parse_strict(c->in, len, "the message", &m);
                /* Wipe the message's bytes: they may hold passwords. */
                size_t rest = c->in_size - len - 1;
                memmove(c->in, nul + 1, rest);
                explicit_bzero(c->in + rest, len + 1);
                c->in_size = rest;
                if (r < 0)
                        { conn_refuse_message(c, error_message() ?: "The message is not valid JSON."); return; }
                server_handle_message(s, c, m);
                json_put_wiped(m);
        }
}

static void conn_read(Connection *c) {
        ssize_t n = recv(c->fd, c->in + c->in_size, VARLINK_MESSAGE_MAX + 1 - c->in_size, MSG_DONTWAIT);
        if (n < 0) {
                if (errno != EAGAIN && errno != EINTR)
                        conn_mark_gone(c);
        } else if (n == 0)
                c->eof = true;
        else
                c->in_size += n;
}

static uint64_t now_msec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int varlink_server_run(VarlinkServer *s) {
        _cleanup_(freep) struct pollfd *pfds = NULL;
        uint64_t idle_since = now_msec();

        s->loop_thread = pthread_self();
        s->in_loop = true;
        pfds = calloc(1 + s->n_listen_fds + VARLINK_CONNECTIONS_MAX, sizeof(struct pollfd));
        if (!pfds)
                return -ENOMEM;

        while (!__atomic_load_n(&s->quit, __ATOMIC_SEQ_CST)) {
                for (size_t i = 0; i < s->n_conns; i++)
                        server_process(s, s->conns[i]);
                for (size_t i = s->n_conns; i > 0; i--)
                        if (conn_is_gone(s->conns[i - 1]))
                                server_drop_connection(s, i - 1);

                int timeout = -1;
                if (s->n_conns > 0 || __atomic_load_n(&s->n_calls, __ATOMIC_SEQ_CST) > 0)
                        idle_since = now_msec();
                else if (s->idle_msec > 0) {
                        uint64_t idle = now_msec() - idle_since;
                        if (idle >= s->idle_msec)
                                break;
                        timeout = (int) (s->idle_msec - idle);
                }

                size_t n = 0, n_listen = s->n_conns < VARLINK_CONNECTIONS_MAX ? s->n_listen_fds : 0;
                pfds[n++] = (struct pollfd) { .fd = s->wake_fd, .events = POLLIN };
                for (size_t i = 0; i < n_listen; i++)
                        pfds[n++] = (struct pollfd) { .fd = s->listen_fds[i], .events = POLLIN };
                for (size_t i = 0; i < s->n_conns; i++) {
                        Connection *c = s->conns[i];
                        /* A connection with a call in progress is not read: calls are answered in
                         * order, and a client cannot queue unbounded input. Hang-ups still show. */
                        pfds[n++] = (struct pollfd) { .fd = c->fd, .events = !c->eof && !conn_busy(c) ? POLLIN : 0 };
                }

                if (poll(pfds, n, timeout) < 0) {
                        if (errno == EINTR)
                                continue;
                        return negative_errno();
                }
                if (pfds[0].revents) {
                        uint64_t v;
                        ssize_t k = read(s->wake_fd, &v, sizeof(v));
                        (void) k;
                }
                size_t n_conns = s->n_conns;
                for (size_t i = 0; i < n_conns; i++) {
                        struct pollfd *p = &pfds[1 + n_listen + i];
                        if (p->revents & POLLIN)
                                conn_read(s->conns[i]);
                        else if (p->revents & (POLLHUP | POLLERR))
                                conn_mark_gone(s->conns[i]);
                }
                for (size_t i = 0; i < n_listen; i++)
                        if (pfds[1 + i].revents & POLLIN)
                                server_accept(s, s->listen_fds[i]);
        }
        s->in_loop = false;
        return 0;
}

/* ---- the client ------------------------------------------------------------------------------ */

struct VarlinkClient {
        int fd;
        char *buf;
        size_t size;
};

int varlink_client_connect(const char *path, VarlinkClient **ret) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };

        if (strlen(path) >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        strcpy(sa.sun_path, path);
        _cleanup_(closep) int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return negative_errno();
        if (connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0)
                return negative_errno();
        VarlinkClient *c = calloc(1, sizeof(VarlinkClient));
        if (!c || !(c->buf = malloc(VARLINK_MESSAGE_MAX + 1))) {
                free(c);
                return -ENOMEM;
        }
        c->fd = TAKE_FD(fd);
        *ret = c;
        return 0;
}

VarlinkClient *varlink_client_free(VarlinkClient *c) {
        if (!c)
                return NULL;
        explicit_bzero(c->buf, VARLINK_MESSAGE_MAX + 1);
        free(c->buf);
        close(c->fd);
        free(c);
        return NULL;
}

int varlink_client_fd(VarlinkClient *c) {
        return c->fd;
}

int varlink_client_send(VarlinkClient *c, const char *method, json_object *parameters, VarlinkCallFlags flags) {
        json_object *msg = json_object_new_object();
        if (!msg) {
                json_object_put(parameters);
                return -ENOMEM;
        }
        json_object_object_add(msg, "method", json_object_new_string(method));
        if (parameters)
                json_object_object_add(msg, "parameters", parameters);
        if (flags & VARLINK_CALL_MORE)
                json_object_object_add(msg, "more", json_object_new_boolean(true));
        if (flags & VARLINK_CALL_ONEWAY)
                json_object_object_add(msg, "oneway", json_object_new_boolean(true));

        size_t len;
        const char *p = json_object_to_json_string_length(msg, JSON_C_TO_STRING_PLAIN, &len);
        int r = 0;
        for (size_t done = 0; p && done <= len;) {
                ssize_t n = send(c->fd, p + done, len + 1 - done, MSG_NOSIGNAL);
                if (n < 0 && errno != EINTR) {
                        r = negative_errno();
                        break;
                }
                if (n > 0)
                        done += n;
        }
        if (p)
                explicit_bzero((char *) p, len);
        json_put_wiped(msg);
        return p ? r : -ENOMEM;
}

int varlink_client_read(VarlinkClient *c, json_object **ret_parameters, char **ret_error) {
        char *nul;

        while (!(nul = memchr(c->buf, 0, c->size))) {
                if (c->size > VARLINK_MESSAGE_MAX)
                        return -EBADMSG;
                ssize_t n = recv(c->fd, c->buf + c->size, VARLINK_MESSAGE_MAX + 1 - c->size, 0);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return negative_errno();
                if (n == 0)
                        return -ECONNRESET;
                c->size += n;
        }

        json_object *m = NULL, *p = NULL, *e = NULL, *more = NULL;
        size_t len = nul - c->buf, rest = c->size - len - 1;
        int r = json_parse_strict(c->buf, len, "the reply", &m);
        memmove(c->buf, nul + 1, rest);
        explicit_bzero(c->buf + rest, len + 1);
        c->size = rest;
        if (r < 0)
                return -EBADMSG;
        if (!json_object_is_type(m, json_type_object) ||
            (json_object_object_get_ex(m, "parameters", &p) && !json_object_is_type(p, json_type_object)) ||
            (json_object_object_get_ex(m, "error", &e) && !json_object_is_type(e, json_type_string)) ||
            (json_object_object_get_ex(m, "continues", &more) && !json_object_is_type(more, json_type_boolean))) {
                json_object_put(m);
                return -EBADMSG;
        }
        char *error = e ? strdup(json_object_get_string(e)) : NULL;
        if (e && !error) {
                json_object_put(m);
                return -ENOMEM;
        }
        r = more && json_object_get_boolean(more) ? 1 : 0;
        if (ret_parameters)
                *ret_parameters = p ? json_object_get(p) : json_object_new_object();
        if (ret_error)
                *ret_error = error;
        else
                free(error);
        json_object_put(m);
        return r;
}

int varlink_client_call(VarlinkClient *c, const char *method, json_object *parameters,
                        json_object **ret_parameters, char **ret_error) {
        int r = varlink_client_send(c, method, parameters, 0);
        if (r < 0)
                return r;
        r = varlink_client_read(c, ret_parameters, ret_error);
        return r > 0 ? -EBADMSG : r;
}
