/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdarg.h>

#include <json-c/json.h>

#include "macro.h"
#include "tests.h"

/* j["a"]["b"]…, failing when a member is missing. */
_sentinel_ static inline json_object *jget(json_object *j, ...) {
        const char *key;
        va_list ap;

        va_start(ap, j);
        while ((key = va_arg(ap, const char *))) {
                json_object *next;
                if (!json_object_object_get_ex(j, key, &next))
                        FAIL("JSON member \"%s\" missing in %s", key, json_object_to_json_string(j));
                j = next;
        }
        va_end(ap);
        return j;
}
