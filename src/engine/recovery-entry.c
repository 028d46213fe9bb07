/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdlib.h>

#include "error.h"
#include "recovery-entry.h"

/* CONTRACT STUB: implemented in branch "recovery". */
int recovery_entry_find(char **ret_path, uint64_t *ret_size) {
        *ret_path = NULL;
        *ret_size = 0;
        return 0;
}

int recovery_entry_install(const FsLocation *boot, const char *uki_path) {
        return -EOPNOTSUPP;
}

int recovery_entry_write_request_hook(const char *root) {
        return 0;
}

int recovery_request_pending(const EfiVars *v, char **ret_description) {
        *ret_description = NULL;
        return 0;
}

int recovery_request_clear(const EfiVars *v) {
        return 0;
}

int recovery_redirect_boot(const EfiVars *v, char **ret_previous) {
        *ret_previous = NULL;
        return 0;
}

int recovery_redirect_restore(const EfiVars *v, const char *previous) {
        return 0;
}

int recovery_request_tpm_clear(void) {
        return -EOPNOTSUPP;
}
