/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdlib.h>

#include "erase.h"
#include "error.h"
#include "i18n.h"

static const char *const erase_method_table[_ERASE_METHOD_MAX] = {
        [ERASE_CRYPTO] = "crypto-erase",
        [ERASE_DISCARD] = "discard",
        [ERASE_OVERWRITE] = "overwrite",
        [ERASE_SECURE_DISCARD] = "secure-discard",
};
DEFINE_STRING_TABLE_LOOKUP(erase_method, EraseMethod);

void erase_result_done(EraseResult *r) {
        free(r->luks_uuid);
        *r = (EraseResult) {};
}

/* CONTRACT STUB: implemented in branch "erase". */
int erase_partition(const EraseTarget *t, EraseProgress progress, void *userdata, EraseResult *ret) {
        return error_setf(-EOPNOTSUPP, "erase_partition: not implemented yet");
}

int erase_probe(const EraseTarget *t, EraseMethod *ret_method, uint64_t *ret_estimate_usec) {
        return error_setf(-EOPNOTSUPP, "erase_probe: not implemented yet");
}

int erase_result_describe(const EraseResult *r, char **ret) {
        return -EOPNOTSUPP;
}
