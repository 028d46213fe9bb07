/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "error.h"

static _Thread_local char message[2048];
static _Thread_local int message_code;

int error_setf(int r, const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(message, sizeof(message), fmt, ap);
        va_end(ap);
        message_code = r;
        return r;
}

int error_prefixf(int r, const char *fmt, ...) {
        char prefix[1024], old[sizeof(message)];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(prefix, sizeof(prefix), fmt, ap);
        va_end(ap);

        memcpy(old, message, sizeof(old));
        if (old[0])
                snprintf(message, sizeof(message), "%.1000s: %.1000s", prefix, old);
        else
                snprintf(message, sizeof(message), "%s: %s", prefix, strerror(r < 0 ? -r : r));
        message_code = r;
        return r;
}

const char *error_message(void) {
        return message[0] ? message : NULL;
}

const char *error_message_for(int r) {
        return message[0] && message_code == r ? message : NULL;
}

int error_code(void) {
        return message[0] ? message_code : 0;
}

void error_clear(void) {
        message[0] = 0;
        message_code = 0;
}
