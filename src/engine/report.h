/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The per-machine report of an OEM line (config.h: "report"): one JSON document per install or
 * reset, written at the end or on failure, with no secrets. The front end (imprint unattended)
 * feeds it what happens; report_finish() writes it to every destination. */

#include <stdbool.h>

#include "config.h"
#include "executor.h"
#include "plan.h"

typedef struct ReportConfig {
        char *directory;   /* a directory (an NFS/SMB share mounted by the live system) */
        bool console;      /* the serial console */
        char *url;         /* an HTTP(S) POST */
} ReportConfig;

typedef struct Report Report;

/* A report for configuration c, or *ret = NULL when c asks for none. */
int report_new(const InstallConfig *c, Report **ret);
Report *report_free(Report *r);
/* What happened: each progress event, the recovery key's escrow (path, and "cms" or "plaintext"),
 * and a refusal before the plan (machine not allowed, no disk matched). */
void report_progress(Report *r, const ProgressEvent *ev);
void report_escrow(Report *r, const char *path, const char *method);
void report_refusal(Report *r, const char *what, const char *message);
/* Writes the document (plan may be NULL when the install failed before it had one; exit_code and
 * message are the result) to every destination. Failures to deliver are logged and returned;
 * they do not change the install's result. */
int report_finish(Report *r, const Plan *plan, int exit_code, const char *message);
