/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <pwquality.h>

#include "error.h"
#include "quality.h"

int password_quality_check(const char *password, const char *user) {
        pwquality_settings_t *pq;
        void *auxerror = NULL;
        char buf[PWQ_MAX_ERROR_MESSAGE_LEN];
        int r;

        pq = pwquality_default_settings();
        if (!pq)
                return -ENOMEM;
        /* A missing or broken configuration file leaves the built-in defaults, as in passwd. */
        (void) pwquality_read_config(pq, NULL, NULL);

        r = pwquality_check(pq, password, NULL, user, &auxerror);
        if (r < 0) {
                const char *why = pwquality_strerror(buf, sizeof(buf), r, auxerror);
                pwquality_free_settings(pq);
                return error_setf(-EPERM, "%s.", why);
        }
        pwquality_free_settings(pq);
        return r;
}
