/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* STUB: the report helper replaces this file. */
#include <errno.h>
#include <stdlib.h>

#include "error.h"
#include "report.h"

int config_set_report(InstallConfig *c, json_object *v, const char *origin) {
        return error_setf(-EOPNOTSUPP, "%s: \"report\" is not supported yet.", origin);
}

void config_report_done(InstallConfig *c) {
}

int report_new(const InstallConfig *c, Report **ret) {
        *ret = NULL;
        return 0;
}

Report *report_free(Report *r) {
        return NULL;
}

void report_progress(Report *r, const ProgressEvent *ev) {
}

void report_escrow(Report *r, const char *path, const char *method) {
}

void report_refusal(Report *r, const char *what, const char *message) {
}

int report_finish(Report *r, const Plan *plan, int exit_code, const char *message) {
        return 0;
}
