/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The per-machine report of an OEM line (config.h: "report"). */

#include <stdbool.h>

#include "config.h"

typedef struct ReportConfig {
        char *directory;   /* a directory (an NFS/SMB share mounted by the live system) */
        bool console;      /* the serial console */
        char *url;         /* an HTTP(S) POST */
} ReportConfig;
