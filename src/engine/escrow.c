/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* STUB: the escrow helper replaces this file. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "escrow.h"

int config_set_escrow(InstallConfig *c, json_object *v, const char *key, const char *origin) {
        char *s;

        if (!json_object_is_type(v, json_type_string) || json_object_get_string_len(v) == 0)
                return error_setf(-EINVAL, "%s: \"%s\" must be a non-empty string.", origin, key);
        s = strdup(json_object_get_string(v));
        if (!s)
                return -ENOMEM;
        free(c->escrow_dir);
        c->escrow_dir = s;
        return 0;
}

void config_escrow_done(InstallConfig *c) {
        free(c->escrow_certificate);
        c->escrow_certificate = NULL;
}
