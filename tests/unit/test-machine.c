/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Which machine, which disk (machine.h): the "machines" allowlist (globs, every field an entry
 * gives must match, the refusal names the machine), the "target" rules against disks that exist
 * only in memory (each reason a disk fails, one match, several, none), the configuration's
 * refusals of bad rules, and the countdown's defaults. No root needed. */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "config.h"
#include "disk.h"
#include "dmi.h"
#include "error.h"
#include "machine.h"
#include "size.h"
#include "tests.h"

static DmiInfo thinkpad(void) {
        return (DmiInfo) {
                .sys_vendor = (char *) "LENOVO",
                .product_name = (char *) "21K5CTO1WW",
                .product_sku = (char *) "LENOVO_MT_21K5_BU_Think_FM_ThinkPad T14 Gen 4",
                .board_name = (char *) "21K5CTO1WW",
        };
}

static void test_machine_rules(void) {
        DmiInfo d = thinkpad(), bare = {};
        MachineRule any_lenovo = { .vendor = (char *) "LENOVO" };
        MachineRule t14 = { .vendor = (char *) "LENOVO", .product = (char *) "21K*" };
        MachineRule t14_wrong_sku = { .vendor = (char *) "LENOVO", .product = (char *) "21K*", .sku = (char *) "*X1 Carbon*" };
        MachineRule t14_sku = { .product = (char *) "21K?CTO1WW", .sku = (char *) "*ThinkPad T14 Gen 4", .board = (char *) "21K5*" };
        MachineRule lowercase = { .vendor = (char *) "lenovo" };
        MachineRule star_sku = { .sku = (char *) "*" };

        ASSERT_TRUE(machine_rule_matches(&any_lenovo, &d));
        ASSERT_TRUE(machine_rule_matches(&t14, &d));
        ASSERT_TRUE(machine_rule_matches(&t14_sku, &d));
        /* Every field an entry gives must match: a right product with a wrong SKU is not enough. */
        ASSERT_FALSE(machine_rule_matches(&t14_wrong_sku, &d));
        /* Globs are case-sensitive, as the firmware spells the names. */
        ASSERT_FALSE(machine_rule_matches(&lowercase, &d));
        /* A field the firmware left out matches only a glob that matches nothing at all. */
        ASSERT_FALSE(machine_rule_matches(&any_lenovo, &bare));
        ASSERT_TRUE(machine_rule_matches(&star_sku, &bare));
}

static void test_machine_allowlist(void) {
        InstallConfig c = { .origin = (char *) "line.json" };
        MachineRule rules[] = {
                { .vendor = (char *) "Dell Inc.", .product = (char *) "Latitude 7*" },
                { .vendor = (char *) "LENOVO", .product = (char *) "21K*" },
        };
        DmiInfo d = thinkpad(), other = { .sys_vendor = (char *) "QEMU", .product_name = (char *) "Standard PC (Q35 + ICH9, 2009)" }, bare = {};
        int r;

        /* No allowlist: every machine. */
        ASSERT_EQ(machine_check_allowed(&c, &other), 0);
        ASSERT_EQ(machine_check_allowed(&c, &bare), 0);

        c.machines = rules;
        c.n_machines = ELEMENTSOF(rules);
        ASSERT_EQ(machine_check_allowed(&c, &d), 0);

        r = machine_check_allowed(&c, &other);
        ASSERT_EQ(r, -EPERM);
        ASSERT_STREQ(error_message_for(r),
                     "This machine (vendor \"QEMU\", product \"Standard PC (Q35 + ICH9, 2009)\", SKU \"(none)\", board \"(none)\") "
                     "is not on the \"machines\" allowlist of line.json; nothing was written.");

        r = machine_check_allowed(&c, &bare);
        ASSERT_EQ(r, -EPERM);
        ASSERT_CONTAINS(error_message_for(r), "This machine has no DMI identity");
        ASSERT_CONTAINS(error_message_for(r), "nothing was written.");
}

static Disk *fake_disk(const char *node, Transport t, uint64_t size, bool rotational, const char *by_id) {
        Disk *d = calloc(1, sizeof(Disk));

        ASSERT_TRUE(d);
        d->kind = DISK_BLOCK;
        d->path = strdup(node);
        d->devnode = strdup(node);
        d->name = strdup(strrchr(node, '/') + 1);
        d->transport = t;
        d->size = size;
        d->rotational = rotational;
        d->by_id = calloc(2, sizeof(char *));
        if (by_id)
                d->by_id[0] = strdup(by_id);
        return d;
}

/* The rule as a configuration gives it, parsed by the configuration. */
static TargetRule *rule_from_json(InstallConfig *c, const char *json) {
        json_object *j = json_tokener_parse(json);
        int r;

        ASSERT_TRUE(j);
        install_config_init(c);
        r = install_config_merge_json(c, j, "line.json");
        json_object_put(j);
        if (r < 0)
                FAIL("%s: %s", json, error_message() ?: strerror(-r));
        ASSERT_TRUE(c->target_rule);
        ASSERT_TRUE(c->target == NULL);
        return c->target_rule;
}

static char *check(const TargetRule *rule, const Disk *d, char *const *by_path) {
        char *reason = (char *) "unset";

        ASSERT_OK(target_rule_check_disk(rule, d, by_path, &reason));
        return reason;
}

static void test_target_rules_per_disk(void) {
        _cleanup_(disk_freep) Disk *nvme = fake_disk("/dev/nvme0n1", TRANSPORT_NVME, 512 * GiB, false,
                                                     "/dev/disk/by-id/nvme-Samsung_SSD_990_PRO_1TB_S6Z1NJ0W123456");
        _cleanup_(disk_freep) Disk *sata = fake_disk("/dev/sda", TRANSPORT_SATA, 2 * TiB, true, "/dev/disk/by-id/ata-ST2000DM008-2UB102_ZK20ABCD");
        _cleanup_(disk_freep) Disk *usb = fake_disk("/dev/sdb", TRANSPORT_USB, 8 * GiB, false, NULL);
        char *nvme_path[] = { (char *) "/dev/disk/by-path/pci-0000:04:00.0-nvme-1", NULL };
        InstallConfig c;
        TargetRule *t;
        char *s;

        t = rule_from_json(&c, "{\"target\": {\"byId\": \"nvme-Samsung*\", \"byPath\": \"pci-*-nvme-1\", \"minSize\": \"100G\", "
                               "\"maxSize\": \"2T\", \"transport\": \"nvme\", \"rotational\": false}}");
        ASSERT_EQ(t->min_size, 100 * GiB);
        ASSERT_EQ(t->max_size, 2 * TiB);
        ASSERT_EQ(t->rotational, 0);
        ASSERT_TRUE(check(t, nvme, nvme_path) == NULL);
        /* Every rule the disk fails is named, with the disk's value and the rule's. */
        s = check(t, sata, NULL);
        ASSERT_STREQ(s, "transport sata (not nvme), rotational (not solid state), no /dev/disk/by-id name matches (byId \"nvme-Samsung*\"), "
                        "no /dev/disk/by-path name (byPath \"pci-*-nvme-1\")");
        free(s);
        s = check(t, usb, NULL);
        ASSERT_CONTAINS(s, "transport usb (not nvme), 8 GiB (below minSize 100 GiB)");
        ASSERT_CONTAINS(s, "no /dev/disk/by-id name (byId");
        free(s);
        /* The NVMe disk without its by-path link fails only that rule. */
        s = check(t, nvme, NULL);
        ASSERT_STREQ(s, "no /dev/disk/by-path name (byPath \"pci-*-nvme-1\")");
        free(s);
        s = target_rule_describe(t);
        ASSERT_STREQ(s, "byId \"nvme-Samsung*\", byPath \"pci-*-nvme-1\", transport nvme, minSize 100 GiB, maxSize 2 TiB, solid state");
        free(s);
        install_config_done(&c);

        /* A list of transports; a size only just too big reads in bytes, not as two equal roundings. */
        t = rule_from_json(&c, "{\"target\": {\"transport\": [\"nvme\", \"sata\"], \"maxSize\": \"2047G\"}}");
        s = check(t, usb, NULL);
        ASSERT_STREQ(s, "transport usb (not nvme or sata)");
        free(s);
        s = check(t, sata, NULL);
        ASSERT_STREQ(s, "2199023255552 bytes (above maxSize 2197949513728 bytes)");
        free(s);
        ASSERT_TRUE(check(t, nvme, NULL) == NULL);
        install_config_done(&c);

        t = rule_from_json(&c, "{\"target\": {\"minSize\": 2199023255553}}");
        s = check(t, sata, NULL);
        ASSERT_STREQ(s, "2199023255552 bytes (below minSize 2199023255553 bytes)");
        free(s);
        install_config_done(&c);

        /* A glob that starts with a slash names the whole link. */
        t = rule_from_json(&c, "{\"target\": {\"byId\": \"/dev/disk/by-id/ata-ST2000*\"}}");
        ASSERT_TRUE(check(t, sata, NULL) == NULL);
        s = check(t, nvme, NULL);
        ASSERT_STREQ(s, "no /dev/disk/by-id name matches (byId \"/dev/disk/by-id/ata-ST2000*\")");
        free(s);
        install_config_done(&c);
}

static void test_target_rules_resolve(void) {
        Disk *disks[] = {
                fake_disk("/dev/nvme0n1", TRANSPORT_NVME, 512 * GiB, false, NULL),
                fake_disk("/dev/nvme1n1", TRANSPORT_NVME, 1024 * GiB, false, NULL),
                fake_disk("/dev/sda", TRANSPORT_USB, 64 * GiB, false, NULL),
                fake_disk("/dev/loop0", TRANSPORT_LOOP, 600 * GiB, false, NULL),
        };
        DiskList l = { .disks = disks, .n_disks = ELEMENTSOF(disks) };
        InstallConfig c;
        TargetRule *t;
        char *found = NULL;
        int r;

        free(disks[1]->model);
        disks[1]->model = strdup("WD Blue SN580");
        /* The live medium: usable it is not, whatever the rules say. */
        disks[2]->refusals = REFUSE_LIVE_MEDIUM;
        disks[2]->refusal_text = strdup("It is the live medium imprint runs from.");
        unsetenv("IMPRINT_TARGET_ALLOW_LOOP");

        /* One match: its device node. */
        t = rule_from_json(&c, "{\"target\": {\"transport\": \"nvme\", \"maxSize\": \"600G\"}}");
        ASSERT_OK(target_rule_resolve(t, &l, "line.json", &found));
        ASSERT_STREQ(found, "/dev/nvme0n1");
        free(found);
        found = NULL;
        install_config_done(&c);

        /* Several: refused, each named with its model, size and transport. */
        t = rule_from_json(&c, "{\"target\": {\"transport\": \"nvme\"}}");
        r = target_rule_resolve(t, &l, "line.json", &found);
        ASSERT_EQ(r, -EBUSY);
        ASSERT_TRUE(found == NULL);
        ASSERT_STREQ(error_message_for(r), "2 disks match the \"target\" rules of line.json (transport nvme): "
                                           "/dev/nvme0n1 (no model, 512 GiB, nvme); /dev/nvme1n1 (WD Blue SN580, 1 TiB, nvme). "
                                           "Nothing was written; make the rules match one disk.");
        install_config_done(&c);

        /* None: each disk with why it failed; the live medium and the loop device say what they are. */
        t = rule_from_json(&c, "{\"target\": {\"minSize\": \"2T\"}}");
        r = target_rule_resolve(t, &l, "line.json", &found);
        ASSERT_EQ(r, -ENOENT);
        ASSERT_STREQ(error_message_for(r), "No disk matches the \"target\" rules of line.json (minSize 2 TiB): "
                                           "/dev/nvme0n1: 512 GiB (below minSize 2 TiB); "
                                           "/dev/nvme1n1: 1 TiB (below minSize 2 TiB); "
                                           "/dev/sda: 64 GiB (below minSize 2 TiB), and it cannot be a target: It is the live medium imprint runs from; "
                                           "/dev/loop0: 600 GiB (below minSize 2 TiB), a loop device (never a target). Nothing was written.");
        install_config_done(&c);

        /* The live medium is refused even when it alone meets the rules. */
        t = rule_from_json(&c, "{\"target\": {\"transport\": \"usb\"}}");
        r = target_rule_resolve(t, &l, "line.json", &found);
        ASSERT_EQ(r, -ENOENT);
        ASSERT_CONTAINS(error_message_for(r), "/dev/sda: it cannot be a target: It is the live medium imprint runs from;");
        install_config_done(&c);

        /* Loop devices count only in tests. */
        t = rule_from_json(&c, "{\"target\": {\"transport\": \"loop\"}}");
        r = target_rule_resolve(t, &l, "line.json", &found);
        ASSERT_EQ(r, -ENOENT);
        ASSERT_CONTAINS(error_message_for(r), "/dev/loop0: a loop device (never a target)");
        setenv("IMPRINT_TARGET_ALLOW_LOOP", "1", 1);
        ASSERT_OK(target_rule_resolve(t, &l, "line.json", &found));
        ASSERT_STREQ(found, "/dev/loop0");
        free(found);
        found = NULL;
        /* A test names its own loop devices: another test's are never picked. */
        setenv("IMPRINT_TARGET_ALLOW_LOOP", "/dev/loop9:/dev/loop0", 1);
        ASSERT_OK(target_rule_resolve(t, &l, "line.json", &found));
        ASSERT_STREQ(found, "/dev/loop0");
        free(found);
        found = NULL;
        setenv("IMPRINT_TARGET_ALLOW_LOOP", "/dev/loop00 /dev/loop", 1);
        ASSERT_EQ(target_rule_resolve(t, &l, "line.json", &found), -ENOENT);
        ASSERT_FALSE(target_allow_loop(disks[0]));
        unsetenv("IMPRINT_TARGET_ALLOW_LOOP");
        install_config_done(&c);

        for (size_t i = 0; i < ELEMENTSOF(disks); i++)
                disk_free(disks[i]);
}

/* Each bad configuration is refused with one sentence naming the key. */
static void expect_refused(const char *json, const char *sentence) {
        json_object *j = json_tokener_parse(json);
        InstallConfig c;
        int r;

        ASSERT_TRUE(j);
        install_config_init(&c);
        r = install_config_merge_json(&c, j, "line.json");
        json_object_put(j);
        install_config_done(&c);
        if (r != -EINVAL)
                FAIL("%s: expected -EINVAL, got %d", json, r);
        ASSERT_STREQ(error_message_for(r), sentence);
}

static void test_config(void) {
        json_object *j;
        InstallConfig c;

        expect_refused("{\"machines\": []}",
                       "line.json: \"machines\" must be a non-empty list of machines such as [{\"vendor\": \"LENOVO\", \"product\": \"21K*\"}].");
        expect_refused("{\"machines\": [{}]}", "line.json: \"machines[0]\" must be an object with at least one of vendor, product, sku, board.");
        expect_refused("{\"machines\": [{\"vendor\": \"LENOVO\"}, {\"vendor\": \"LENOVO\", \"colour\": \"black\"}]}",
                       "line.json: unknown key \"machines[1].colour\" (use vendor, product, sku, board).");
        expect_refused("{\"machines\": [{\"product\": 7}]}",
                       "line.json: \"machines[0].product\" must be a non-empty string (a glob such as \"LENOVO*\").");
        expect_refused("{\"target\": {}}",
                       "line.json: \"target\" needs at least one rule: byId, byPath, minSize, maxSize, transport or rotational.");
        expect_refused("{\"target\": {\"minSize\": \"2T\", \"maxSize\": \"100G\"}}",
                       "line.json: \"target.minSize\" (2 TiB) is larger than \"target.maxSize\" (100 GiB), so no disk could match.");
        expect_refused("{\"target\": {\"transport\": \"firewire\"}}",
                       "line.json: \"target.transport\": \"firewire\" is not a transport; use nvme, sata, usb, virtio, scsi or mmc.");
        expect_refused("{\"target\": {\"transport\": []}}", "line.json: \"target.transport\" is an empty list; name at least one transport.");
        expect_refused("{\"target\": {\"minSize\": \"lots\"}}", "line.json: \"target.minSize\" must be a size such as \"100G\" or \"2T\".");
        expect_refused("{\"target\": {\"rotational\": \"no\"}}", "line.json: \"target.rotational\" must be true or false.");
        expect_refused("{\"target\": {\"serial\": \"S6Z1*\"}}", "line.json: unknown key \"target.serial\".");
        expect_refused("{\"target\": 7}",
                       "line.json: \"target\" must be a disk's path, \"auto\", or an object of rules such as {\"transport\": \"nvme\", \"minSize\": \"100G\"}.");
        expect_refused("{\"countdownSeconds\": 3601}", "line.json: \"countdownSeconds\" must be a number from 0 to 3600.");
        expect_refused("{\"countdownSeconds\": \"10\"}", "line.json: \"countdownSeconds\" must be a number from 0 to 3600.");

        /* A later source replaces the target in either form: defaults say "auto", the line says rules. */
        install_config_init(&c);
        j = json_tokener_parse("{\"target\": \"auto\", \"countdownSeconds\": 0, "
                               "\"machines\": [{\"vendor\": \"QEMU\"}, {\"vendor\": \"LENOVO\", \"sku\": \"*T14*\"}]}");
        ASSERT_OK(install_config_merge_json(&c, j, "defaults"));
        json_object_put(j);
        ASSERT_STREQ(c.target, "auto");
        ASSERT_EQ(c.n_machines, 2);
        ASSERT_STREQ(c.machines[1].sku, "*T14*");
        ASSERT_TRUE(c.machines[1].product == NULL);
        ASSERT_EQ(machine_countdown_seconds(&c), 0);
        j = json_tokener_parse("{\"target\": {\"transport\": \"nvme\"}, \"countdownSeconds\": 15}");
        ASSERT_OK(install_config_merge_json(&c, j, "line.json"));
        json_object_put(j);
        ASSERT_TRUE(c.target == NULL);
        ASSERT_STREQ(c.target_rule->transports[0], "nvme");
        ASSERT_EQ(machine_countdown_seconds(&c), 15);
        j = json_tokener_parse("{\"target\": \"/dev/nvme0n1\"}");
        ASSERT_OK(install_config_merge_json(&c, j, "override"));
        json_object_put(j);
        ASSERT_STREQ(c.target, "/dev/nvme0n1");
        ASSERT_TRUE(c.target_rule == NULL);
        install_config_done(&c);
}

static void test_countdown_defaults(void) {
        InstallConfig c;

        /* Not given: none where nobody watches (this test's stdin and stderr are no terminal under
         * meson), and 0 seconds returns at once without touching a console. */
        install_config_init(&c);
        if (!isatty(0) || !isatty(2))
                ASSERT_EQ(machine_countdown_seconds(&c), 0);
        c.countdown_sec = 0;
        ASSERT_EQ(machine_countdown(&c, "/dev/nvme0n1"), 0);
        install_config_done(&c);
}

int main(void) {
        test_machine_rules();
        test_machine_allowlist();
        test_target_rules_per_disk();
        test_target_rules_resolve();
        test_config();
        test_countdown_defaults();
        printf("test-machine: ok\n");
        return 0;
}
