/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdio.h>

#include "log.h"

static log_sink_t sink = log_sink_stderr;
static void *sink_userdata;
static int max_level = LOG_WARNING;

void log_set_sink(log_sink_t s, void *userdata) {
        sink = s;
        sink_userdata = userdata;
}

void log_set_max_level(int level) {
        max_level = level;
}

int log_get_max_level(void) {
        return max_level;
}

void log_sink_stderr(int level, const char *line, void *userdata) {
        (void) userdata;
        if (level > max_level)
                return;
        fprintf(stderr, "imprint: %s\n", line);
}

int log_internal(int level, int r, const char *fmt, ...) {
        char buf[4096];
        va_list ap;
        int saved = errno;

        if (!sink)
                return r;

        va_start(ap, fmt);
        vsnprintf(buf, sizeof(buf), fmt, ap);
        va_end(ap);
        sink(level, buf, sink_userdata);
        errno = saved;
        return r;
}
