/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdlib.h>

#include "error.h"
#include "i18n.h"
#include "reset.h"

/* CONTRACT STUB: implemented in branch "reset". */
void reset_request_init(ResetRequest *r) {
        *r = (ResetRequest) { .entry_point = RESET_FROM_LIVE_MEDIUM };
}

ResetTarget *reset_target_free(ResetTarget *t) {
        if (!t)
                return NULL;
        install_record_free(t->record);
        free(t->refusal);
        free(t->os_name);
        free(t->image_version);
        free(t->last_reset);
        free(t);
        return NULL;
}

int reset_probe(const Disk *d, ResetTarget **ret) {
        return error_setf(-EOPNOTSUPP, "reset_probe: not implemented yet");
}

int reset_plan(const Disk *d, const ResetRequest *req, const Image *img, Plan **ret) {
        return error_setf(-EOPNOTSUPP, "reset_plan: not implemented yet");
}

int reset_boot_disk(const DiskList *l, const Disk **ret) {
        return error_setf(-EOPNOTSUPP, "reset_boot_disk: not implemented yet");
}
