/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The per-machine report of an OEM line (config.h: "report"): one JSON document per install or
 * reset, written at the end or on failure, with no secrets. The front end (imprint unattended)
 * feeds it what happens; report_finish() writes it to every destination. */

#include <stdbool.h>

#include <json-c/json.h>

#include "config.h"
#include "executor.h"
#include "plan.h"

typedef struct ReportConfig {
        char *directory;   /* a directory (an NFS/SMB share mounted by the live system) */
        bool console;      /* the serial console */
        char *url;         /* an HTTP(S) POST */
} ReportConfig;

typedef struct Report Report;

/* "formatVersion" of the document; raised when a field changes meaning or goes away. */
#define REPORT_FORMAT_VERSION 1
/* The lines around the document on the console (one JSON line between them). */
#define REPORT_CONSOLE_BEGIN "IMPRINT-REPORT-BEGIN"
#define REPORT_CONSOLE_END "IMPRINT-REPORT-END"

/* A report for configuration c, or *ret = NULL when c asks for none. It reads the machine's
 * identity (dmi.h) now, and keeps the last lines of imprint's log (LOG_INFO and more important)
 * until it is freed, passing them on to stderr (log_sink_stderr) as before. */
int report_new(const InstallConfig *c, Report **ret);
Report *report_free(Report *r);
/* What happened: each progress event, the recovery key's escrow (path, and "cms" or "plaintext"),
 * and a refusal before the plan (machine not allowed, no disk matched). */
void report_progress(Report *r, const ProgressEvent *ev);
void report_escrow(Report *r, const char *path, const char *method);
void report_refusal(Report *r, const char *what, const char *message);
/* Writes the document (plan may be NULL when the install failed before it had one; exit_code and
 * message are the result) to every destination, each tried whatever happened to the others.
 * Failures to deliver are returned with one sentence naming each destination that failed (the
 * caller logs it); they do not change the install's result. */
int report_finish(Report *r, const Plan *plan, int exit_code, const char *message);

/* The document report_finish() writes (no secrets: the plan, the disk as it is now — identity and
 * the partitions' UUIDs read back with libblkid —, the image, the TPM enrollment, the escrow's
 * path and method, each step, the result, the refusals, the log tail). Without a plan, the
 * configuration's target is described. The destinations:
 *   directory  <dir>/imprint-<serial, SMBIOS UUID or "unknown">-<UTC YYYYmmddTHHMMSSZ>.json, mode
 *              0644, written to a temporary file, fsync'ed and renamed;
 *   console    /dev/console ($IMPRINT_CONSOLE: another file, for tests; stderr when it cannot be
 *              opened): REPORT_CONSOLE_BEGIN, the document on one line, REPORT_CONSOLE_END;
 *   url        POSTed by curl (--fail, --retry 3, --max-time 30), the document on its stdin. */
int report_to_json(Report *r, const Plan *plan, int exit_code, const char *message, json_object **ret);
