/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* STUB: the record-and-replay helper replaces this file. */
#include <errno.h>

#include "config.h"
#include "error.h"

int config_set_credentials(InstallConfig *c, json_object *v, const char *origin) {
        return error_setf(-EOPNOTSUPP, "%s: \"credentials\" is not supported yet.", origin);
}

void config_credentials_done(InstallConfig *c) {
}
