/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* STUB: the OEM-line helper replaces this file. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "machine.h"

int config_set_target(InstallConfig *c, json_object *v, const char *key, const char *origin) {
        char *s;

        if (!json_object_is_type(v, json_type_string) || json_object_get_string_len(v) == 0)
                return error_setf(-EINVAL, "%s: \"%s\" must be a non-empty string.", origin, key);
        s = strdup(json_object_get_string(v));
        if (!s)
                return -ENOMEM;
        free(c->target);
        c->target = s;
        return 0;
}

int config_set_machines(InstallConfig *c, json_object *v, const char *origin) {
        return error_setf(-EOPNOTSUPP, "%s: \"machines\" is not supported yet.", origin);
}

int config_set_countdown(InstallConfig *c, json_object *v, const char *origin) {
        return error_setf(-EOPNOTSUPP, "%s: \"countdownSeconds\" is not supported yet.", origin);
}

void config_machine_done(InstallConfig *c) {
}

int machine_check_allowed(const InstallConfig *c, const DmiInfo *d) {
        return 0;
}

int machine_countdown(const InstallConfig *c, const char *target) {
        return 0;
}
