/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "disk.h"
#include "dmi.h"
#include "error.h"
#include "fileio.h"
#include "json-strict.h"
#include "log.h"
#include "macro.h"
#include "report.h"
#include "run.h"

/* How many of imprint's last log lines the report keeps (the "logTail"). */
#define REPORT_LOG_LINES 50

typedef enum StepState {
        STEP_NOT_RUN,
        STEP_RUNNING,
        STEP_DONE,
        STEP_FAILED,
} StepState;

static const char *const step_state_names[] = {
        [STEP_NOT_RUN] = "not-run",
        [STEP_RUNNING] = "running",
        [STEP_DONE] = "done",
        [STEP_FAILED] = "failed",
};

typedef struct ReportStep {
        char *id, *description;
        StepState state;
        uint64_t start_usec;     /* since the report began (monotonic) */
        uint64_t duration_usec;
        uint64_t cpu_usec;
        uint64_t bytes;
        char *message;           /* failed: the reason; done: what the step says it did */
} ReportStep;

typedef struct ReportRefusal {
        char *what, *message;
} ReportRefusal;

struct Report {
        ReportConfig config;
        bool reset;
        char *config_target;     /* the configuration's target, for a report without a plan */
        struct timespec started; /* CLOCK_REALTIME */
        uint64_t started_mono_usec;
        DmiInfo dmi;

        ReportStep *steps;
        size_t n_steps;
        ReportRefusal *refusals;
        size_t n_refusals;
        char *escrow_path, *escrow_method;

        char *log[REPORT_LOG_LINES];   /* a ring: the oldest line at log_head once it is full */
        size_t log_head, n_log;
};

/* ---- the configuration: "report": {"directory", "console", "url"} ----------------------------- */

static void report_config_done(ReportConfig *rc) {
        free(rc->directory);
        free(rc->url);
        *rc = (ReportConfig) {};
}

/* A URL a line POSTs reports to: http:// or https://, a host, no user name or password (the URL
 * is logged with curl's command line, and a password in it would end up in every log). */
static int check_report_url(const char *url, const char *origin) {
        const char *rest, *end, *at;

        if (strncmp(url, "https://", 8) == 0)
                rest = url + 8;
        else if (strncmp(url, "http://", 7) == 0)
                rest = url + 7;
        else
                return error_setf(-EINVAL, "%s: \"report.url\" must start with http:// or https://, not \"%s\".", origin, url);
        end = rest + strcspn(rest, "/?#");
        if (end == rest)
                return error_setf(-EINVAL, "%s: \"report.url\" names no host: \"%s\".", origin, url);
        at = memchr(rest, '@', (size_t) (end - rest));
        if (at)
                return error_setf(-EINVAL,
                                  "%s: \"report.url\" must not hold a user name or password (it would be logged); let the "
                                  "server accept the line's network instead.", origin);
        for (const char *p = url; *p; p++)
                if ((unsigned char) *p <= ' ' || *p == 0x7f)
                        return error_setf(-EINVAL, "%s: \"report.url\" must not contain spaces or control characters.", origin);
        return 0;
}

int config_set_report(InstallConfig *c, json_object *v, const char *origin) {
        ReportConfig rc = {};
        int r = 0;

        if (!json_object_is_type(v, json_type_object))
                return error_setf(-EINVAL, "%s: \"report\" must be an object such as {\"directory\": \"/mnt/reports\"}.", origin);
        json_object_object_foreach(v, key, val) {
                if (r < 0)
                        break;
                if (streq(key, "directory")) {
                        const char *s = json_object_is_type(val, json_type_string) ? json_object_get_string(val) : NULL;

                        if (isempty(s) || s[0] != '/')
                                r = error_setf(-EINVAL, "%s: \"report.directory\" must be an absolute path such as \"/mnt/reports\".", origin);
                        else {
                                free(rc.directory);
                                rc.directory = strdup(s);
                                if (!rc.directory)
                                        r = -ENOMEM;
                        }
                } else if (streq(key, "console")) {
                        if (!json_object_is_type(val, json_type_boolean))
                                r = error_setf(-EINVAL, "%s: \"report.console\" must be true or false.", origin);
                        else
                                rc.console = json_object_get_boolean(val);
                } else if (streq(key, "url")) {
                        const char *s = json_object_is_type(val, json_type_string) ? json_object_get_string(val) : NULL;

                        if (isempty(s))
                                r = error_setf(-EINVAL, "%s: \"report.url\" must be a non-empty string such as \"https://line.example/report\".", origin);
                        else
                                r = check_report_url(s, origin);
                        if (r >= 0) {
                                free(rc.url);
                                rc.url = strdup(s);
                                if (!rc.url)
                                        r = -ENOMEM;
                        }
                } else
                        r = error_setf(-EINVAL, "%s: unknown key \"report.%s\" (known: directory, console, url).", origin, key);
        }
        if (r >= 0 && !rc.directory && !rc.console && !rc.url)
                r = error_setf(-EINVAL, "%s: \"report\" names no destination: give \"directory\", \"console\": true or \"url\".", origin);
        if (r < 0) {
                report_config_done(&rc);
                return r;
        }

        config_report_done(c);
        c->report = malloc(sizeof(ReportConfig));
        if (!c->report) {
                report_config_done(&rc);
                return -ENOMEM;
        }
        *c->report = rc;
        return 0;
}

void config_report_done(InstallConfig *c) {
        if (!c->report)
                return;
        report_config_done(c->report);
        free(c->report);
        c->report = NULL;
}

/* ---- gathering ------------------------------------------------------------------------------- */

static uint64_t now_mono_usec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000;
}

/* The log lines while a report is gathered: kept for its tail, and passed on to stderr as before. */
static Report *log_report = NULL;

static void report_log_sink(int level, const char *line, void *userdata) {
        Report *r = userdata;

        log_sink_stderr(level, line, NULL);
        if (!r || level > LOG_INFO)
                return;

        char *copy = strdup(line);
        if (!copy)
                return;
        if (r->n_log < REPORT_LOG_LINES)
                r->log[r->n_log++] = copy;
        else {
                free(r->log[r->log_head]);
                r->log[r->log_head] = copy;
                r->log_head = (r->log_head + 1) % REPORT_LOG_LINES;
        }
}

int report_new(const InstallConfig *c, Report **ret) {
        Report *r;
        int k;

        if (!c->report) {
                *ret = NULL;
                return 0;
        }
        r = calloc(1, sizeof(Report));
        if (!r)
                return -ENOMEM;
        r->config.console = c->report->console;
        r->config.directory = strdup_safe(c->report->directory);
        r->config.url = strdup_safe(c->report->url);
        r->reset = c->reset;
        r->config_target = strdup_safe(c->reset ? c->reset_target : c->target);
        if ((c->report->directory && !r->config.directory) || (c->report->url && !r->config.url)) {
                report_free(r);
                return -ENOMEM;
        }
        clock_gettime(CLOCK_REALTIME, &r->started);
        r->started_mono_usec = now_mono_usec();
        k = dmi_read(&r->dmi);
        if (k < 0) {
                report_free(r);
                return k;
        }
        /* One report gathers the log at a time; the newest wins. */
        log_report = r;
        log_set_sink(report_log_sink, r);
        *ret = r;
        return 0;
}

Report *report_free(Report *r) {
        if (!r)
                return NULL;
        if (log_report == r) {
                log_report = NULL;
                log_set_sink(log_sink_stderr, NULL);
        }
        report_config_done(&r->config);
        free(r->config_target);
        dmi_done(&r->dmi);
        for (size_t i = 0; i < r->n_steps; i++) {
                free(r->steps[i].id);
                free(r->steps[i].description);
                free(r->steps[i].message);
        }
        free(r->steps);
        for (size_t i = 0; i < r->n_refusals; i++) {
                free(r->refusals[i].what);
                free(r->refusals[i].message);
        }
        free(r->refusals);
        free(r->escrow_path);
        free(r->escrow_method);
        for (size_t i = 0; i < r->n_log; i++)
                free(r->log[i]);
        free(r);
        return NULL;
}

static ReportStep *find_step(Report *r, const ProgressEvent *ev) {
        ReportStep *s;

        if (!ev->id)
                return NULL;
        /* Steps are keyed by id: a reset and an install never repeat one within a run. */
        for (size_t i = 0; i < r->n_steps; i++)
                if (streq(r->steps[i].id, ev->id))
                        return &r->steps[i];

        s = realloc(r->steps, (r->n_steps + 1) * sizeof(ReportStep));
        if (!s)
                return NULL;
        r->steps = s;
        s = &r->steps[r->n_steps];
        *s = (ReportStep) { .id = strdup(ev->id), .description = strdup_safe(ev->description) };
        if (!s->id) {
                free(s->description);
                return NULL;
        }
        r->n_steps++;
        return s;
}

static void set_message(char **field, const char *message) {
        char *m;

        if (!message)
                return;
        m = strdup(message);
        if (!m)
                return;
        free(*field);
        *field = m;
}

/* Bytes a step moved; a step without a size counts 0/1 (executor.h), which is no bytes. */
static uint64_t step_bytes(const ProgressEvent *ev) {
        return ev->total <= 1 ? 0 : ev->done;
}

void report_progress(Report *r, const ProgressEvent *ev) {
        ReportStep *s;
        uint64_t now;

        if (!r || !ev)
                return;
        s = find_step(r, ev);
        if (!s)
                return;  /* out of memory: the report is less complete, the install goes on */
        now = now_mono_usec() - r->started_mono_usec;

        switch (ev->type) {
        case PROGRESS_PLANNED:
                break;
        case PROGRESS_BEGIN:
                s->state = STEP_RUNNING;
                s->start_usec = now;
                s->bytes = step_bytes(ev);
                break;
        case PROGRESS_UPDATE:
                if (s->state == STEP_NOT_RUN) {
                        s->state = STEP_RUNNING;
                        s->start_usec = now;
                }
                s->bytes = MAX(s->bytes, step_bytes(ev));
                break;
        case PROGRESS_END:
        case PROGRESS_FAILED:
                if (s->state == STEP_NOT_RUN)
                        s->start_usec = now;
                s->state = ev->type == PROGRESS_END ? STEP_DONE : STEP_FAILED;
                /* The executor's own clock for the step, else ours. */
                s->duration_usec = ev->elapsed_usec > 0 ? ev->elapsed_usec : now - s->start_usec;
                s->cpu_usec = ev->cpu_usec;
                s->bytes = MAX(s->bytes, step_bytes(ev));
                set_message(&s->message, ev->message);
                break;
        default:
                break;
        }
}

void report_escrow(Report *r, const char *path, const char *method) {
        if (!r)
                return;
        set_message(&r->escrow_path, path);
        set_message(&r->escrow_method, method ?: "plaintext");
}

void report_refusal(Report *r, const char *what, const char *message) {
        ReportRefusal *a;

        if (!r || !what)
                return;
        a = realloc(r->refusals, (r->n_refusals + 1) * sizeof(ReportRefusal));
        if (!a)
                return;
        r->refusals = a;
        a = &r->refusals[r->n_refusals];
        *a = (ReportRefusal) { .what = strdup(what), .message = strdup_safe(message) };
        if (!a->what) {
                free(a->message);
                return;
        }
        r->n_refusals++;
}

/* ---- the document ---------------------------------------------------------------------------- */

static json_object *json_string_or_null(const char *s) {
        return s ? json_object_new_string(s) : NULL;
}

/* Seconds to the millisecond: "12.345", not json-c's 17 digits. */
static json_object *json_seconds(uint64_t usec) {
        char buf[32];

        snprintf(buf, sizeof(buf), "%" PRIu64 ".%03" PRIu64, usec / 1000000, (usec % 1000000) / 1000);
        return json_object_new_double_s((double) usec / 1e6, buf);
}

/* ISO 8601 in UTC: "2026-12-03T12:00:00Z", or compact for file names: "20261203T120000Z". */
static char *format_utc(const struct timespec *ts, bool compact) {
        struct tm tm;
        char buf[64];

        if (!gmtime_r(&ts->tv_sec, &tm) ||
            strftime(buf, sizeof(buf), compact ? "%Y%m%dT%H%M%SZ" : "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
                return NULL;
        return strdup(buf);
}

static json_object *machine_to_json(const DmiInfo *d) {
        json_object *m = json_object_new_object();

        json_object_object_add(m, "vendor", json_string_or_null(d->sys_vendor));
        json_object_object_add(m, "product", json_string_or_null(d->product_name));
        json_object_object_add(m, "version", json_string_or_null(d->product_version));
        json_object_object_add(m, "sku", json_string_or_null(d->product_sku));
        json_object_object_add(m, "family", json_string_or_null(d->product_family));
        json_object_object_add(m, "serial", json_string_or_null(d->product_serial));
        json_object_object_add(m, "uuid", json_string_or_null(d->product_uuid));
        json_object_object_add(m, "boardVendor", json_string_or_null(d->board_vendor));
        json_object_object_add(m, "boardName", json_string_or_null(d->board_name));
        json_object_object_add(m, "biosVersion", json_string_or_null(d->bios_version));
        return m;
}

/* The target as it is now (after the install, or as it was left by a failure): its identity and
 * the UUIDs of its partitions as libblkid reads them from the disk, not as planned. */
static void target_to_json(const char *path, json_object *doc) {
        _cleanup_(disk_freep) Disk *d = NULL;
        json_object *o = json_object_new_object(), *parts;
        int r;

        json_object_object_add(o, "path", json_object_new_string(path));
        r = disk_discover(path, &(DiscoverOptions) {}, &d);
        if (r < 0) {
                json_object_object_add(o, "error", json_object_new_string(error_message_for(r) ?: strerror(-r)));
                json_object_object_add(doc, "disk", o);
                json_object_object_add(doc, "partitions", json_object_new_array());
                error_clear();
                return;
        }
        json_object_object_add(o, "name", json_string_or_null(d->name));
        json_object_object_add(o, "kind", json_object_new_string(disk_kind_to_string(d->kind)));
        json_object_object_add(o, "vendor", json_string_or_null(d->vendor));
        json_object_object_add(o, "model", json_string_or_null(d->model));
        json_object_object_add(o, "serial", json_string_or_null(d->serial));
        json_object_object_add(o, "size", json_object_new_int64((int64_t) d->size));
        json_object_object_add(o, "transport", json_object_new_string(transport_to_string(d->transport)));
        json_object_object_add(o, "rotational", json_object_new_boolean(d->rotational));
        {
                json_object *ids = json_object_new_array();
                for (char **l = d->by_id; l && *l; l++)
                        json_object_array_add(ids, json_object_new_string(*l));
                json_object_object_add(o, "byId", ids);
        }
        json_object_object_add(o, "partitionTable", json_string_or_null(d->pttype));
        json_object_object_add(o, "diskUuid", json_string_or_null(d->ptuuid));
        json_object_object_add(doc, "disk", o);

        parts = json_object_new_array();
        for (size_t i = 0; i < d->n_partitions; i++) {
                const DiskPartition *p = &d->partitions[i];
                json_object *pj = json_object_new_object();
                bool luks = p->fstype && streq(p->fstype, "crypto_LUKS");

                json_object_object_add(pj, "partno", json_object_new_int((int) p->partno));
                json_object_object_add(pj, "node", json_string_or_null(p->node));
                json_object_object_add(pj, "label", json_string_or_null(p->label));
                json_object_object_add(pj, "typeUuid", json_string_or_null(p->type_string));
                json_object_object_add(pj, "partUuid", json_string_or_null(p->uuid_string));
                json_object_object_add(pj, "start", json_object_new_int64((int64_t) p->start));
                json_object_object_add(pj, "size", json_object_new_int64((int64_t) p->size));
                json_object_object_add(pj, "fstype", json_string_or_null(p->fstype));
                json_object_object_add(pj, "fsUuid", luks ? NULL : json_string_or_null(p->fsuuid));
                json_object_object_add(pj, "luksUuid", luks ? json_string_or_null(p->fsuuid) : NULL);
                json_object_array_add(parts, pj);
        }
        json_object_object_add(doc, "partitions", parts);
}

static json_object *image_to_json(const PlanSource *s) {
        json_object *o = json_object_new_object();

        json_object_object_add(o, "path", json_object_new_string(s->path));
        json_object_object_add(o, "kind", json_object_new_string(plan_source_kind_to_string(s->kind)));
        json_object_object_add(o, "name", json_string_or_null(s->os_name));
        json_object_object_add(o, "id", json_string_or_null(s->image_id));
        json_object_object_add(o, "version", json_string_or_null(s->image_version));
        json_object_object_add(o, "size", json_object_new_int64((int64_t) s->size));
        json_object_object_add(o, "sha256", json_string_or_null(s->sha256));
        json_object_object_add(o, "sha256Origin", json_string_or_null(s->sha256_origin));
        if (s->streaming) {
                json_object *st = json_object_new_object();

                /* Read once while writing (stream.h): how it came. */
                json_object_object_add(st, "compression", json_string_or_null(s->compression));
                json_object_object_add(st, "partition", json_object_new_int64((int64_t) s->partitions[s->streamed].partno));
                json_object_object_add(st, "resumes", json_object_new_int64((int64_t) s->stream_resumes));
                json_object_object_add(o, "stream", st);
        }
        return o;
}

static json_object *pcrs_to_json(uint32_t mask) {
        json_object *a = json_object_new_array();

        for (int i = 0; i < 24; i++)
                if (mask & (UINT32_C(1) << i))
                        json_object_array_add(a, json_object_new_int(i));
        return a;
}

/* What unlocks the disk: TPM used or not (and why, in the plan's note), its PCRs and token. */
static json_object *encryption_to_json(const PlanEncryption *e) {
        json_object *o = json_object_new_object(), *t = json_object_new_object();

        json_object_object_add(o, "enabled", json_object_new_boolean(e->enabled));
        json_object_object_add(o, "recoveryKey", json_object_new_boolean(e->enabled && e->recovery_key));
        json_object_object_add(o, "passphrase", json_object_new_boolean(e->enabled && e->passphrase));
        json_object_object_add(t, "enrolled", json_object_new_boolean(e->enabled && e->tpm2));
        if (e->enabled && e->tpm2) {
                json_object_object_add(t, "token", json_object_new_string("systemd-tpm2"));
                json_object_object_add(t, "pcrs", pcrs_to_json(e->tpm2_pcrs));
                json_object_object_add(t, "publicKeyPcrs", pcrs_to_json(e->tpm2_pubkey_pcrs));
                json_object_object_add(t, "pin", json_object_new_boolean(e->tpm2_pin));
                json_object_object_add(t, "tcti", json_string_or_null(e->tpm2_tcti));
        }
        json_object_object_add(o, "tpm2", t);
        json_object_object_add(o, "note", json_string_or_null(e->note));
        return o;
}

static json_object *steps_to_json(const Report *r, const char **ret_failed) {
        json_object *a = json_object_new_array();

        *ret_failed = NULL;
        for (size_t i = 0; i < r->n_steps; i++) {
                const ReportStep *s = &r->steps[i];
                json_object *o = json_object_new_object();

                json_object_object_add(o, "id", json_object_new_string(s->id));
                json_object_object_add(o, "description", json_string_or_null(s->description));
                json_object_object_add(o, "result", json_object_new_string(step_state_names[s->state]));
                json_object_object_add(o, "startSeconds", s->state == STEP_NOT_RUN ? NULL : json_seconds(s->start_usec));
                json_object_object_add(o, "durationSeconds",
                                       s->state == STEP_DONE || s->state == STEP_FAILED ? json_seconds(s->duration_usec) : NULL);
                json_object_object_add(o, "cpuSeconds",
                                       s->state == STEP_DONE || s->state == STEP_FAILED ? json_seconds(s->cpu_usec) : NULL);
                json_object_object_add(o, "bytes", json_object_new_int64((int64_t) s->bytes));
                json_object_object_add(o, "message", json_string_or_null(s->message));
                json_object_array_add(a, o);
                if (s->state == STEP_FAILED && !*ret_failed)
                        *ret_failed = s->id;
        }
        return a;
}

int report_to_json(Report *r, const Plan *plan, int exit_code, const char *message, json_object **ret) {
        _cleanup_(freep) char *started = NULL, *ended = NULL;
        const char *failed_step = NULL, *target;
        struct timespec now;
        json_object *doc, *res, *refusals, *log, *steps;

        clock_gettime(CLOCK_REALTIME, &now);
        started = format_utc(&r->started, false);
        ended = format_utc(&now, false);
        if (!started || !ended)
                return -ENOMEM;

        /* The log tail is taken first: what the report itself reads (the disk) is not the install. */
        log = json_object_new_array();
        for (size_t i = 0; i < r->n_log; i++)
                json_object_array_add(log, json_object_new_string(r->log[(r->log_head + i) % REPORT_LOG_LINES]));

        doc = json_object_new_object();
        json_object_object_add(doc, "formatVersion", json_object_new_int(REPORT_FORMAT_VERSION));
        json_object_object_add(doc, "imprintVersion", json_object_new_string(IMPRINT_VERSION));
        json_object_object_add(doc, "mode", json_object_new_string(r->reset || (plan && plan->mode == PLAN_RESET) ? "reset" : "install"));
        json_object_object_add(doc, "started", json_object_new_string(started));
        json_object_object_add(doc, "ended", json_object_new_string(ended));
        json_object_object_add(doc, "durationSeconds",
                               json_seconds(now_mono_usec() - r->started_mono_usec));
        json_object_object_add(doc, "machine", machine_to_json(&r->dmi));

        target = plan ? plan->target : r->config_target;
        if (target && !streq(target, "auto"))
                target_to_json(target, doc);
        else {
                json_object_object_add(doc, "disk", NULL);
                json_object_object_add(doc, "partitions", json_object_new_array());
        }
        json_object_object_add(doc, "image", plan && plan->source ? image_to_json(plan->source) : NULL);
        json_object_object_add(doc, "encryption", plan ? encryption_to_json(&plan->encryption) : NULL);
        if (plan && plan->secure_boot.decided) {
                /* The firmware's state and what the install did about it (the plan has the sentences). */
                json_object *sb = json_object_new_object();
                json_object_object_add(sb, "firmwareMode", json_string_or_null(plan->secure_boot.firmware_mode));
                json_object_object_add(sb, "action", json_object_new_string(secure_boot_action_to_string(plan->secure_boot.action)));
                json_object_object_add(sb, "keysEnrolledAtFirstBoot", json_object_new_boolean(plan->secure_boot.action == SECURE_BOOT_ENROLL));
                json_object_object_add(doc, "secureBoot", sb);
        } else
                json_object_object_add(doc, "secureBoot", NULL);
        if (r->escrow_path) {
                json_object *e = json_object_new_object();
                json_object_object_add(e, "path", json_object_new_string(r->escrow_path));
                json_object_object_add(e, "method", json_object_new_string(r->escrow_method ?: "plaintext"));
                json_object_object_add(doc, "escrow", e);
        } else
                json_object_object_add(doc, "escrow", NULL);
        json_object_object_add(doc, "plan", plan ? plan_to_json(plan) : NULL);

        steps = steps_to_json(r, &failed_step);
        json_object_object_add(doc, "steps", steps);

        refusals = json_object_new_array();
        for (size_t i = 0; i < r->n_refusals; i++) {
                json_object *o = json_object_new_object();
                json_object_object_add(o, "what", json_object_new_string(r->refusals[i].what));
                json_object_object_add(o, "message", json_string_or_null(r->refusals[i].message));
                json_object_array_add(refusals, o);
        }
        json_object_object_add(doc, "refusals", refusals);

        res = json_object_new_object();
        json_object_object_add(res, "success", json_object_new_boolean(exit_code == 0));
        json_object_object_add(res, "exitCode", json_object_new_int(exit_code));
        json_object_object_add(res, "message", json_string_or_null(message));
        json_object_object_add(res, "failedStep", json_string_or_null(failed_step));
        json_object_object_add(doc, "result", res);

        json_object_object_add(doc, "logTail", log);

        *ret = doc;
        return 0;
}

/* ---- the destinations ------------------------------------------------------------------------ */

/* The machine's name in the file name: its serial number, else its SMBIOS UUID, else "unknown";
 * only characters that every share (NFS, SMB) takes. */
static char *report_machine_name(const Report *r) {
        const char *s = !isempty(r->dmi.product_serial) ? r->dmi.product_serial
                        : !isempty(r->dmi.product_uuid) ? r->dmi.product_uuid : "unknown";
        char *n = strdup(s);

        if (!n)
                return NULL;
        for (char *p = n; *p; p++)
                if (!strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.-_", *p))
                        *p = '_';
        if (n[0] == '.')
                n[0] = '_';
        return n;
}

static int write_all(int fd, const char *buf, size_t len) {
        while (len > 0) {
                ssize_t k = write(fd, buf, len);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                buf += k;
                len -= (size_t) k;
        }
        return 0;
}

/* The report as <dir>/imprint-<machine>-<UTC time>.json: written to a temporary file in the same
 * directory, flushed, then renamed, so that a reader of the share never sees half a report. */
static int report_write_directory(const Report *r, const char *text, char **ret_path) {
        _cleanup_(freep) char *name = NULL, *stamp = NULL, *tmp = NULL, *path = NULL;
        _cleanup_(closep) int fd = -1, dfd = -1;
        struct timespec now;
        int k;

        clock_gettime(CLOCK_REALTIME, &now);
        name = report_machine_name(r);
        stamp = format_utc(&now, true);
        if (!name || !stamp)
                return -ENOMEM;
        dfd = open(r->config.directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                return error_setf(-errno, "Cannot write the report to %s: %s.", r->config.directory, strerror(errno));
        /* Two reports of one machine within a second (a retried line) keep both. */
        for (unsigned n = 1;; n++) {
                free(path);
                if ((n == 1 ? asprintf(&path, "imprint-%s-%s.json", name, stamp)
                            : asprintf(&path, "imprint-%s-%s-%u.json", name, stamp, n)) < 0) {
                        path = NULL;
                        return -ENOMEM;
                }
                if (faccessat(dfd, path, F_OK, AT_SYMLINK_NOFOLLOW) < 0 && errno == ENOENT)
                        break;
                if (n >= 100)
                        return error_setf(-EEXIST, "Cannot write the report to %s: %s and 99 more names exist.", r->config.directory, path);
        }
        if (asprintf(&tmp, ".%s.tmp-%d", path, (int) getpid()) < 0) {
                tmp = NULL;
                return -ENOMEM;
        }
        fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (fd < 0)
                return error_setf(-errno, "Cannot write the report to %s: %s.", r->config.directory, strerror(errno));
        k = write_all(fd, text, strlen(text));
        if (k >= 0)
                k = write_all(fd, "\n", 1);
        /* 0644 whatever the umask: the line's records are read by other accounts. */
        if (k >= 0 && fchmod(fd, 0644) < 0)
                k = -errno;
        if (k >= 0 && fsync(fd) < 0)
                k = -errno;
        if (k >= 0 && renameat(dfd, tmp, dfd, path) < 0)
                k = -errno;
        if (k < 0) {
                (void) unlinkat(dfd, tmp, 0);
                return error_setf(k, "Cannot write the report to %s/%s: %s.", r->config.directory, path, strerror(-k));
        }
        (void) fsync(dfd);
        if (ret_path && asprintf(ret_path, "%s/%s", r->config.directory, path) < 0)
                *ret_path = NULL;
        return 0;
}

/* The serial console, where a rig cuts the report out of the log between the two marker lines.
 * $IMPRINT_CONSOLE names another file (tests); without a writable /dev/console, stderr. */
static int report_write_console(const char *text) {
        _cleanup_(freep) char *block = NULL;
        _cleanup_(closep) int fd = -1;
        const char *console = getenv("IMPRINT_CONSOLE");
        int k;

        if (asprintf(&block, "\n" REPORT_CONSOLE_BEGIN "\n%s\n" REPORT_CONSOLE_END "\n", text) < 0)
                return -ENOMEM;
        if (console)
                fd = open(console, O_WRONLY | O_APPEND | O_CREAT | O_NOCTTY | O_CLOEXEC, 0644);
        else
                fd = open("/dev/console", O_WRONLY | O_NOCTTY | O_CLOEXEC);
        k = write_all(fd >= 0 ? fd : STDERR_FILENO, block, strlen(block));
        if (k < 0)
                return error_setf(k, "Cannot write the report to %s: %s.", fd >= 0 ? (console ?: "/dev/console") : "standard error",
                                  strerror(-k));
        return 0;
}

/* An HTTP POST with stock curl: the document on its stdin, nothing secret on its command line. */
static int report_post(const char *url, const char *text) {
        char *argv[] = {
                (char *) "curl", (char *) "--silent", (char *) "--show-error", (char *) "--fail",
                (char *) "--proto", (char *) "=http,https", (char *) "--retry", (char *) "3", (char *) "--retry-connrefused",
                (char *) "--max-time", (char *) "30", (char *) "-H", (char *) "Content-Type: application/json",
                (char *) "--data-binary", (char *) "@-", (char *) "--output", (char *) "/dev/null", (char *) url, NULL,
        };
        int k;

        if (!find_executable("curl"))
                return error_setf(-ENOENT, "Cannot POST the report to %s: curl is not installed.", url);
        k = run_command(argv, &(RunOptions) { .stdin_data = text, .stdin_size = strlen(text), .keep_fd = -1, .quiet_stderr = true });
        if (k < 0)
                return error_prefixf(k, "Cannot POST the report to %s", url);
        return 0;
}

int report_finish(Report *r, const Plan *plan, int exit_code, const char *message) {
        _cleanup_(freep) char *failures = NULL;
        json_object *doc = NULL;
        const char *text;
        int k, ret = 0;

        if (!r)
                return 0;
        k = report_to_json(r, plan, exit_code, message, &doc);
        if (k < 0)
                return error_setf(k, "Cannot make the report: %s.", strerror(-k));
        text = json_object_to_json_string_ext(doc, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);

#define NOTE_FAILURE(k)                                                                                    \
        do {                                                                                               \
                const char *_m = error_message_for(k) ?: strerror(-(k));                                   \
                failures = failures ? strjoin_free(strjoin_free(failures, " "), _m) : strdup(_m);          \
                if (ret == 0)                                                                              \
                        ret = (k);                                                                         \
        } while (0)

        /* Each destination on its own: a share that is down does not keep the report off the
         * console or the server. */
        if (r->config.directory) {
                _cleanup_(freep) char *path = NULL;

                k = report_write_directory(r, text, &path);
                if (k < 0)
                        NOTE_FAILURE(k);
                else
                        log_info("The report was written to %s.", path ?: r->config.directory);
        }
        if (r->config.console) {
                k = report_write_console(text);
                if (k < 0)
                        NOTE_FAILURE(k);
        }
        if (r->config.url) {
                k = report_post(r->config.url, text);
                if (k < 0)
                        NOTE_FAILURE(k);
                else
                        log_info("The report was sent to %s.", r->config.url);
        }
#undef NOTE_FAILURE
        json_object_put(doc);
        if (ret < 0)
                return error_setf(ret, "%s", failures ?: "The report could not be delivered.");
        return 0;
}
