/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdlib.h>

#include "error.h"
#include "record.h"

/* CONTRACT STUB: implemented in branch "reset". */
InstallRecord *install_record_free(InstallRecord *r) {
        if (!r)
                return NULL;
        free(r->imprint_version);
        free(r->installed_at);
        plan_free(r->plan);
        free(r);
        return NULL;
}

int record_install_write(const Plan *p, const FsLocation *esp) {
        return -EOPNOTSUPP;
}

int record_install_read(const FsLocation *esp, InstallRecord **ret) {
        return -ENOENT;
}

int record_reset_name(char **ret) {
        return -EOPNOTSUPP;
}

int record_reset_write(const FsLocation *esp, const char *name, json_object *audit) {
        return -EOPNOTSUPP;
}

int record_reset_last(const FsLocation *esp, json_object **ret, char **ret_name) {
        return -ENOENT;
}

int record_reset_summary(json_object *audit, char **ret) {
        return -EOPNOTSUPP;
}
