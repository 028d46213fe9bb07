/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* A small Varlink server (https://varlink.org/) on json-c, and a synchronous client for tests.
 * libsystemd 252 has no public Varlink API; this speaks the same wire protocol as sd-varlink.
 *
 * The wire: one JSON object per message, each followed by a NUL byte, over an AF_UNIX stream
 * socket. A call is {"method": "iface.Method", "parameters": {…}, "more": b, "oneway": b,
 * "upgrade": b}; a reply is {"parameters": {…}} (with "continues": true for the replies before
 * the last one of a call with "more"), an error {"error": "iface.Name", "parameters": {…}}.
 * Calls on one connection are answered in order: the next call is read only after the previous
 * one got its final reply (or was oneway).
 *
 * Using it (one method file is enough):
 *
 *     static int method_plan(VarlinkCall *call, json_object *p, void *userdata) {
 *             static const VarlinkField fields[] = {
 *                     { "request", json_type_object, 0, request_fields },
 *                     {}
 *             };
 *             int r = varlink_check_parameters(call, p, fields);
 *             if (r < 0)
 *                     return r;            // the error was sent already
 *             …
 *             return varlink_call_reply(call, reply);   // takes reply
 *     }
 *
 *     varlink_server_new(&s);
 *     varlink_server_set_info(s, "imprint", "imprint", IMPRINT_VERSION, "https://…");
 *     varlink_server_add_interface(s, io_imprint_installer_varlink);   // the .varlink text
 *     varlink_server_add_method(s, "io.imprint.Installer.Plan", method_plan, 0, session);
 *     varlink_server_listen_auto(s) or varlink_server_listen_path(s, "/run/…", 0600);
 *     varlink_server_run(s);
 *
 * The interface text: meson embeds data/io.imprint.Installer.varlink as the generated header
 * io-imprint-installer-varlink.h (static const char io_imprint_installer_varlink[]), part of the
 * `session` dependency. org.varlink.service (GetInfo, GetInterfaceDescription) is built in.
 *
 * What a handler returns:
 *   0                 done. When it sent no final reply, the server replies with {}.
 *   VARLINK_DEFERRED  the handler keeps the call and answers later, from any thread; the
 *                     reference the handler was called with is now the handler's, to drop with
 *                     varlink_call_unref() once done. No other call of that connection is read
 *                     until then.
 *   < 0               failed. When it sent no error or final reply, the server sends the error
 *                     io.systemd.System {"errno": -r}, as systemd's services do (varlinkctl prints
 *                     strerror for it).
 *
 * Threads: varlink_server_run() and the handlers run in one thread. varlink_call_reply(),
 * _notify(), _error(), _unref(), _is_gone() and varlink_server_quit() may be called from any
 * thread. A reply from another thread may block while the client does not read (never the loop:
 * the loop gives a client VARLINK_SEND_TIMEOUT_SEC to take a reply, then drops it); when the client
 * went away it returns -ECONNRESET, never raises SIGPIPE.
 *
 * Secrets (passwords in parameters, a recovery key in replies): the bytes of a message are wiped
 * from the connection's buffers once parsed or sent; every string of a reply's parameters is wiped
 * once sent (so never put a part of the call's own parameters into a reply: copy it), and every
 * string of a call's parameters when the call is freed. Handlers must wipe (or keep in a Secret)
 * every string they copy out of the parameters themselves. json-c's own
 * tokener buffer is not reachable and is not wiped. */

#include <stdbool.h>
#include <sys/types.h>

#include <json-c/json.h>

#include "macro.h"

/* Messages longer than this (without the NUL) are refused with InvalidMessage. */
#define VARLINK_MESSAGE_MAX (128 * 1024)
#define VARLINK_CONNECTIONS_MAX 64
#define VARLINK_SEND_TIMEOUT_SEC 10

/* The error a server sends for bad messages, before it closes the connection. */
#define VARLINK_ERROR_INVALID_MESSAGE "io.imprint.Installer.InvalidMessage"

#define VARLINK_DEFERRED 1

typedef struct VarlinkServer VarlinkServer;
typedef struct VarlinkCall VarlinkCall;

typedef int (*VarlinkMethod)(VarlinkCall *call, json_object *parameters, void *userdata);

typedef enum VarlinkMethodFlags {
        VARLINK_METHOD_REQUIRES_MORE = 1 << 0, /* calls without "more" get ExpectedMore */
} VarlinkMethodFlags;

/* ---- the server ---------------------------------------------------------------------------- */

int varlink_server_new(VarlinkServer **ret);
/* Closes every connection. Call only after every deferred call was unreferenced. */
VarlinkServer *varlink_server_free(VarlinkServer *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(VarlinkServer *, varlink_server_free);

/* What GetInfo answers. Copied. */
int varlink_server_set_info(VarlinkServer *s, const char *vendor, const char *product,
                            const char *version, const char *url);
/* Registers an interface by its description (the text of a .varlink file, borrowed: it must stay
 * valid as long as the server). Its name is taken from its "interface" line. -EINVAL without one,
 * -EEXIST when it is registered already. */
int varlink_server_add_interface(VarlinkServer *s, const char *description);
/* Adds the method full_name ("io.imprint.Installer.Plan"); its interface must be registered. */
int varlink_server_add_method(VarlinkServer *s, const char *full_name, VarlinkMethod m,
                              VarlinkMethodFlags flags, void *userdata);
/* Only peers with this uid (SO_PEERCRED) may call; the others get PermissionDenied for every
 * call. Default 0. */
void varlink_server_set_allowed_uid(VarlinkServer *s, uid_t uid);
/* varlink_server_run() returns after msec without connections and calls in progress; 0: never. */
void varlink_server_set_idle_timeout(VarlinkServer *s, unsigned msec);

/* Serves on a listening socket (taken: closed by the server, also on failure). */
int varlink_server_listen_fd(VarlinkServer *s, int fd);
/* Binds path (an existing socket there is replaced), with mode (e.g. 0600) before it listens. */
int varlink_server_listen_path(VarlinkServer *s, const char *path, mode_t mode);
/* Serves on the sockets systemd passed (sd_listen_fds()); returns how many (0: none passed). */
int varlink_server_listen_auto(VarlinkServer *s);

/* The loop: accepts, reads and dispatches until varlink_server_quit() or the idle timeout. */
int varlink_server_run(VarlinkServer *s);
/* Makes varlink_server_run() return soon. From any thread, and from a signal handler. */
void varlink_server_quit(VarlinkServer *s);

/* ---- a call -------------------------------------------------------------------------------- */

const char *varlink_call_method(const VarlinkCall *call);
bool varlink_call_more(const VarlinkCall *call);
bool varlink_call_oneway(const VarlinkCall *call);
/* The caller's uid (SO_PEERCRED). */
uid_t varlink_call_peer_uid(const VarlinkCall *call);
/* The call's parameters (an object, {} when the call had none); valid while the call is referenced. */
json_object *varlink_call_parameters(const VarlinkCall *call);

VarlinkCall *varlink_call_ref(VarlinkCall *call);
/* Drops a reference. When the last one goes and the call was not answered, the server sends the
 * error io.systemd.System {"errno": ECANCELED} (unless the client is gone or the call was oneway). */
VarlinkCall *varlink_call_unref(VarlinkCall *call);
DEFINE_TRIVIAL_CLEANUP_FUNC(VarlinkCall *, varlink_call_unref);

/* The final reply; takes parameters (NULL: {}). -EALREADY when the call was answered already,
 * -ECONNRESET when the client is gone. Oneway calls: nothing is sent, 0. */
int varlink_call_reply(VarlinkCall *call, json_object *parameters);
/* A reply with "continues": true; takes parameters. -EINVAL when the call was made without "more". */
int varlink_call_notify(VarlinkCall *call, json_object *parameters);
/* The final error (e.g. "io.imprint.Installer.Busy"); takes parameters (NULL: {}). */
int varlink_call_error(VarlinkCall *call, const char *error, json_object *parameters);
/* The standard org.varlink.service.InvalidParameter {"parameter": name}. */
int varlink_call_error_invalid_parameter(VarlinkCall *call, const char *name);

/* Whether the client went away (hung up, or a reply to it failed). */
bool varlink_call_is_gone(VarlinkCall *call);
/* fn is called once, from the loop's thread, when the client goes away before the call is
 * answered. -ECONNRESET (and fn is never called) when it is gone already. */
int varlink_call_set_disconnect_handler(VarlinkCall *call, void (*fn)(VarlinkCall *call, void *userdata),
                                        void *userdata);

/* ---- checking parameters ------------------------------------------------------------------- */

typedef enum VarlinkFieldFlags {
        VARLINK_NULLABLE = 1 << 0,    /* "?type": may be missing or null; else required, not null */
} VarlinkFieldFlags;

typedef struct VarlinkField {
        const char *name;
        json_type type;               /* json_type_int; json_type_double accepts ints too */
        VarlinkFieldFlags flags;
        const struct VarlinkField *fields; /* json_type_object: its fields (checked the same way);
                                            * NULL: any object */
        json_type elements;           /* json_type_array: each element's type; json_type_null: any */
} VarlinkField;

/* Checks parameters against fields (terminated by an entry without name): unknown names, wrong
 * types and missing required fields are refused with org.varlink.service.InvalidParameter naming
 * the parameter ("request.node" inside the object parameter "request"); that error is sent to
 * call and -EINVAL returned. call may be NULL (nothing sent). 0 when all is well. */
int varlink_check_parameters(VarlinkCall *call, json_object *parameters, const VarlinkField *fields);

/* ---- a synchronous client (tests, tools) --------------------------------------------------- */

typedef struct VarlinkClient VarlinkClient;

typedef enum VarlinkCallFlags {
        VARLINK_CALL_MORE = 1 << 0,
        VARLINK_CALL_ONEWAY = 1 << 1,
} VarlinkCallFlags;

int varlink_client_connect(const char *path, VarlinkClient **ret);
VarlinkClient *varlink_client_free(VarlinkClient *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(VarlinkClient *, varlink_client_free);
/* The connection's socket (to write raw bytes, to shut it down). */
int varlink_client_fd(VarlinkClient *c);

/* Sends a call; takes parameters (NULL: none). */
int varlink_client_send(VarlinkClient *c, const char *method, json_object *parameters, VarlinkCallFlags flags);
/* Reads the next message; blocks. Returns 1 when it continues, 0 when it is the last of its
 * call; -ECONNRESET at end of stream, -EBADMSG for a message that is not a Varlink reply. *ret_error:
 * the error name or NULL; *ret_parameters: the parameters ({} when none). */
int varlink_client_read(VarlinkClient *c, json_object **ret_parameters, char **ret_error);
/* send + read for a call without more. */
int varlink_client_call(VarlinkClient *c, const char *method, json_object *parameters,
                        json_object **ret_parameters, char **ret_error);
