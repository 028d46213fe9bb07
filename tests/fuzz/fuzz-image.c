/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* GPT and DDI discovery on an image file (src/engine/image.c, disk.c): the source image's partition
 * table, read with libblkid, and the planner on the same bytes as a target whose partitions are
 * kept (free mode). Only the in-process part: image_load_boot() runs mtools and debugfs, which
 * are not fuzzed here. */
#include "disk.h"
#include "fuzz.h"
#include "image.h"
#include "plan.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        const char *path;
        Image *img = NULL;
        Disk *disk = NULL;

        fuzz_quiet();
        path = fuzz_file(data, size);

        if (image_open(path, &img) >= 0) {
                PlanFingerprint fp = {};

                (void) image_default_uki(img);
                if (plan_fingerprint_from_disk(img->disk, &fp) >= 0)
                        plan_fingerprint_done(&fp);
        }
        image_free(img);

        /* The same bytes as a target: discovery, the JSON of `imprint disks`, and a plan that
         * keeps what is there. */
        if (disk_discover(path, &(DiscoverOptions) {}, &disk) >= 0) {
                json_object *j = disk_to_json(disk);
                PlanOptions o;
                Plan *p = NULL;

                json_object_put(j);
                plan_options_init(&o);
                o.mode = PLAN_FREE;
                if (plan_build(disk, &o, &p) >= 0) {
                        j = plan_to_json(p);
                        json_object_put(j);
                        plan_free(p);
                }
                disk_free(disk);
        }
        return 0;
}
