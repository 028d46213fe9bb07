/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Stock cryptsetup and systemd-cryptenroll as referees for the LUKS unit tests. Keys go in
 * through a pipe on stdin, never in argv. */

#include <stdio.h>
#include <stdlib.h>

#include <json-c/json.h>

#include "run.h"
#include "secret.h"
#include "tests.h"

static inline char *cli_output(char *const argv[]) {
        char *out = NULL;

        ASSERT_OK(run_command(argv, &(RunOptions) { .ret_stdout = &out }));
        ASSERT_TRUE(out);
        return out;
}

static inline json_object *cli_dump_json(const char *path) {
        char *argv[] = { (char *) "cryptsetup", (char *) "luksDump", (char *) "--dump-json-metadata", (char *) path, NULL };
        char *out = cli_output(argv);
        json_object *j = json_tokener_parse(out);

        if (!j)
                FAIL("luksDump printed no JSON: %s", out);
        free(out);
        return j;
}

static inline char *cli_dump_text(const char *path) {
        char *argv[] = { (char *) "cryptsetup", (char *) "luksDump", (char *) path, NULL };
        return cli_output(argv);
}

static inline char *cli_cryptenroll_list(const char *path) {
        char *argv[] = { (char *) "systemd-cryptenroll", (char *) path, NULL };
        return cli_output(argv);
}

/* cryptsetup open --test-passphrase; slot < 0: any keyslot. 0 when the key opens it. */
static inline int cli_test_passphrase(const char *path, const Secret *key, int slot) {
        char slot_arg[32];
        char *argv[] = { (char *) "cryptsetup", (char *) "open", (char *) "--test-passphrase",
                         (char *) "--key-file=-", slot_arg, (char *) path, NULL };

        snprintf(slot_arg, sizeof(slot_arg), "--key-slot=%d", slot);
        if (slot < 0)
                argv[4] = (char *) path, argv[5] = NULL;
        return run_command(argv, &(RunOptions) { .stdin_data = key->data, .stdin_size = key->size, .quiet_stderr = true });
}
