/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdlib.h>
#include <string.h>

#include "dps.h"

static const char *const architecture_table[_ARCH_MAX] = {
        [ARCH_X86_64] = "x86-64",
        [ARCH_ARM64] = "arm64",
        [ARCH_X86] = "x86",
        [ARCH_RISCV64] = "riscv64",
};
DEFINE_STRING_TABLE_LOOKUP(architecture, Architecture);

Architecture architecture_native(void) {
#if defined(__x86_64__)
        return ARCH_X86_64;
#elif defined(__aarch64__)
        return ARCH_ARM64;
#elif defined(__i386__)
        return ARCH_X86;
#elif defined(__riscv) && __riscv_xlen == 64
        return ARCH_RISCV64;
#else
#error "imprint does not know the Discoverable Partitions root type of this architecture"
#endif
}

static const char *const partition_role_table[_ROLE_MAX] = {
        [ROLE_ESP] = "esp",
        [ROLE_XBOOTLDR] = "xbootldr",
        [ROLE_SWAP] = "swap",
        [ROLE_ROOT] = "root",
        [ROLE_USR] = "usr",
        [ROLE_ROOT_VERITY] = "root-verity",
        [ROLE_USR_VERITY] = "usr-verity",
        [ROLE_ROOT_VERITY_SIG] = "root-verity-sig",
        [ROLE_USR_VERITY_SIG] = "usr-verity-sig",
        [ROLE_HOME] = "home",
        [ROLE_SRV] = "srv",
        [ROLE_VAR] = "var",
        [ROLE_TMP] = "tmp",
        [ROLE_USER_HOME] = "user-home",
        [ROLE_LINUX_GENERIC] = "linux-generic",
        [ROLE_OTHER] = "other",
};
DEFINE_STRING_TABLE_LOOKUP(partition_role, PartitionRole);

#define T(u, r, a, n) { .uuid_str = u, .role = r, .arch = a, .name = n }
#define NOARCH _ARCH_INVALID
#define OTHER(u, n) T(u, ROLE_OTHER, NOARCH, n)

/* Values from UAPI DPS, as 32 hex digits; parsed once on first use. */
static DpsType types[] = {
        T("c12a7328f81f11d2ba4b00a0c93ec93b", ROLE_ESP, NOARCH, "esp"),
        T("bc13c2ff59e64262a352b275fd6f7172", ROLE_XBOOTLDR, NOARCH, "xbootldr"),
        T("0657fd6da4ab43c484e50933c84b4f4f", ROLE_SWAP, NOARCH, "swap"),
        T("933ac7e12eb44f13b8440e14e2aef915", ROLE_HOME, NOARCH, "home"),
        T("3b8f842520e04f3b907f1a25a76f98e8", ROLE_SRV, NOARCH, "srv"),
        T("4d21b016b53445c2a9fb5c16e091fd2d", ROLE_VAR, NOARCH, "var"),
        T("7ec6f5573bc54acab29316ef5df639d1", ROLE_TMP, NOARCH, "tmp"),
        T("773f91ef66d449b5bd83d683bf40ad16", ROLE_USER_HOME, NOARCH, "user-home"),
        T("0fc63daf848347728e793d69d8477de4", ROLE_LINUX_GENERIC, NOARCH, "linux-generic"),

        T("4f68bce3e8cd4db196e7fbcaf984b709", ROLE_ROOT, ARCH_X86_64, "root-x86-64"),
        T("8484680c952148c69c11b0720656f69e", ROLE_USR, ARCH_X86_64, "usr-x86-64"),
        T("2c7357edebd246d9aec123d437ec2bf5", ROLE_ROOT_VERITY, ARCH_X86_64, "root-x86-64-verity"),
        T("77ff5f63e7b64633acf41565b864c0e6", ROLE_USR_VERITY, ARCH_X86_64, "usr-x86-64-verity"),
        T("41092b059fc84523994f2def0408b176", ROLE_ROOT_VERITY_SIG, ARCH_X86_64, "root-x86-64-verity-sig"),
        T("e7bb33fb06cf4e818273e543b413e2e2", ROLE_USR_VERITY_SIG, ARCH_X86_64, "usr-x86-64-verity-sig"),

        T("b921b0451df041c3af444c6f280d3fae", ROLE_ROOT, ARCH_ARM64, "root-arm64"),
        T("b0e01050ee5f4390949a9101b17104e9", ROLE_USR, ARCH_ARM64, "usr-arm64"),
        T("df3300ced69f4c92978c9bfb0f38d820", ROLE_ROOT_VERITY, ARCH_ARM64, "root-arm64-verity"),
        T("6e11a4e7fbca4dedb9e9e1a512bb664e", ROLE_USR_VERITY, ARCH_ARM64, "usr-arm64-verity"),
        T("6db69de629f44758a7a5962190f00ce3", ROLE_ROOT_VERITY_SIG, ARCH_ARM64, "root-arm64-verity-sig"),
        T("c23ce4ff44bd4b00b2d4b41b3419e02a", ROLE_USR_VERITY_SIG, ARCH_ARM64, "usr-arm64-verity-sig"),

        T("44479540f29741b29af7d131d5f0458a", ROLE_ROOT, ARCH_X86, "root-x86"),
        T("75250d768cc6458ebd66bd47cc81a812", ROLE_USR, ARCH_X86, "usr-x86"),
        T("d13c5d3bb5d1422ab29f9454fdc89d76", ROLE_ROOT_VERITY, ARCH_X86, "root-x86-verity"),
        T("8f461b0d14ee4e819aa9049b6fb97abd", ROLE_USR_VERITY, ARCH_X86, "usr-x86-verity"),
        T("5996fc05109c48de808b23fa0830b676", ROLE_ROOT_VERITY_SIG, ARCH_X86, "root-x86-verity-sig"),
        T("974a71c0de4143c3be5d5c5ccd1ad2c0", ROLE_USR_VERITY_SIG, ARCH_X86, "usr-x86-verity-sig"),

        T("72ec70a6cf7440e6bd494bda08e8f224", ROLE_ROOT, ARCH_RISCV64, "root-riscv64"),
        T("beaec34b8442439ba40b984381ed097d", ROLE_USR, ARCH_RISCV64, "usr-riscv64"),
        T("b6ed5582440b4209b8da5ff7c419ea3d", ROLE_ROOT_VERITY, ARCH_RISCV64, "root-riscv64-verity"),
        T("8f1056be9b0547c481d6be53128e5b54", ROLE_USR_VERITY, ARCH_RISCV64, "usr-riscv64-verity"),
        T("efe0f087ea8d4469821a4c2a96a8386a", ROLE_ROOT_VERITY_SIG, ARCH_RISCV64, "root-riscv64-verity-sig"),
        T("d2f9000a7a18453fb5cd4d32f77a7b32", ROLE_USR_VERITY_SIG, ARCH_RISCV64, "usr-riscv64-verity-sig"),

        /* Foreign types, so that disk listings can say what else lives on a disk. */
        OTHER("ebd0a0a2b9e5443387c068b6b72699c7", "microsoft-basic-data"),
        OTHER("e3c9e3160b5c4db8817df92df00215ae", "microsoft-reserved"),
        OTHER("de94bba406d14d40a16abfd50179d6ac", "windows-recovery"),
        OTHER("5808c8aa7e8f42e085d2e1e90434cfb3", "microsoft-ldm-metadata"),
        OTHER("af9b60a014314f62bc683311714a69ad", "microsoft-ldm-data"),
        OTHER("2168614864496e6f744e656564454649", "bios-boot"),
        OTHER("e6d6d379f50744c2a23c238f2a3df928", "linux-lvm"),
        OTHER("a19d880f05fc4d3ba006743f0f84911e", "linux-raid"),
        OTHER("ca7d7ccb63ed4c53861c1742536059cc", "linux-luks"),
        OTHER("48465300000011aaaa1100306543ecac", "apple-hfs"),
        OTHER("7c3457ef000011aaaa1100306543ecac", "apple-apfs"),
        OTHER("516e7cb46ecf11d68ff800022d09712b", "freebsd-data"),
        OTHER("6a898cc31dd211b299a6080020736631", "zfs"),
};

static void types_init(void) {
        static bool done = false;

        if (done)
                return;
        for (size_t i = 0; i < ELEMENTSOF(types); i++)
                if (sd_id128_from_string(types[i].uuid_str, &types[i].uuid) < 0)
                        abort(); /* a typo in the table above */
        done = true;
}

const DpsType *dps_type_from_uuid(sd_id128_t uuid) {
        types_init();
        for (size_t i = 0; i < ELEMENTSOF(types); i++)
                if (sd_id128_equal(types[i].uuid, uuid))
                        return &types[i];
        return NULL;
}

int dps_type_uuid(PartitionRole role, Architecture arch, sd_id128_t *ret) {
        types_init();
        for (size_t i = 0; i < ELEMENTSOF(types); i++) {
                if (types[i].role != role || role == ROLE_OTHER)
                        continue;
                if (types[i].arch != _ARCH_INVALID && types[i].arch != arch)
                        continue;
                *ret = types[i].uuid;
                return 0;
        }
        return -EOPNOTSUPP;
}

const char *dps_type_name(sd_id128_t uuid) {
        const DpsType *t = dps_type_from_uuid(uuid);
        return t ? t->name : NULL;
}

bool partition_role_is_auto_discovered(PartitionRole role) {
        switch (role) {
        case ROLE_ESP:
        case ROLE_XBOOTLDR:
        case ROLE_SWAP:
        case ROLE_ROOT:
        case ROLE_USR:
        case ROLE_HOME:
        case ROLE_SRV:
        case ROLE_VAR:
        case ROLE_TMP:
                return true;
        default:
                return false;
        }
}
