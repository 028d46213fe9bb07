/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The plan file loader (plan_load() in src/engine/plan.c): `imprint apply/install --plan-file`.
 * What loads must also survive what the front ends do with it: the JSON round trip and the
 * table. */
#include <stdio.h>

#include "fuzz.h"
#include "plan.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        Plan *p = NULL, *again = NULL;

        fuzz_quiet();
        if (plan_load(fuzz_file(data, size), &p) < 0)
                return 0;

        json_object *j = plan_to_json(p);
        if (j) {
                /* What imprint wrote, it reads back. */
                if (plan_from_json(j, &again) < 0)
                        abort();
                plan_free(again);
                json_object_put(j);
        }
        FILE *f = fopen("/dev/null", "we");
        if (f) {
                plan_print_table(p, f);
                fclose(f);
        }
        plan_free(p);
        return 0;
}
