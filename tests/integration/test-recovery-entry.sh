#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The recovery entry (recovery-entry.h): an install copies the recovery UKI ($IMPRINT_RECOVERY_UKI
# here: a small real UKI made with objcopy from this host's systemd-stub) to
# $BOOT/EFI/Linux/imprint-recovery.efi. Referees: mtools (byte-identical copy), jq on the plan,
# debugfs on the installed root (the factory-reset.target hook). Cases: an install to an image
# file; a reinstall beside an old entry on a kept ESP replaces it; a small ESP puts it on XBOOTLDR
# and removes the ESP's old copy; no UKI: no entry, and the plan says why. No privileges needed.
. "$(dirname "$0")/lib.sh"
need_tool jq
need_tool mdir
need_tool mtype
need_tool objcopy
need_tool debugfs
need_tool sfdisk
need_tool mkfs.vfat

SRCDIR=$(cd "$(dirname "$0")/../.." && pwd)
# The plan learns of the recovery UKI from the session (recovery_entry_find()), and the executor
# writes the hook; both calls live outside the recovery entry's own files. Until they exist in
# this tree nothing here can be observed through imprint's command line.
if ! grep -rqs "recovery_entry_find" "$SRCDIR/src/session" "$SRCDIR/src/imprint.c" "$SRCDIR/src/engine/plan.c"; then
        echo "SKIP: nothing in this tree calls recovery_entry_find() yet (the plan's recovery entry: branches reset/frontends)" >&2
        exit 77
fi
hook_wired=0
grep -qs "recovery_entry_write_request_hook" "$SRCDIR/src/engine/executor.c" && hook_wired=1

# make_uki OUT VERSION: a UKI as sd-boot lists it (.osrel, .linux, .cmdline on systemd-stub).
make_uki() {
        local out=$1 version=$2 d
        d=$(mktemp -d "$WORK/uki.XXXXXX")
        printf 'NAME="imprint recovery"\nPRETTY_NAME="Factory reset (imprint recovery)"\nID=imprint-recovery\nIMAGE_ID=imprint-recovery\nIMAGE_VERSION=%s\n' \
                "$version" >"$d/os-release"
        # A fake bzImage ("HdrS"), padded with random bytes so that two versions differ throughout.
        head -c 65536 /dev/urandom >"$d/linux"
        printf 'HdrS' | dd of="$d/linux" bs=1 seek=$((0x202)) conv=notrunc status=none
        echo -n "console=ttyS0 imprint.recovery=1 rd.systemd.unit=imprint-recovery.target" >"$d/cmdline"
        objcopy \
                --add-section .osrel="$d/os-release" --change-section-vma .osrel=0x20000 \
                --add-section .cmdline="$d/cmdline" --change-section-vma .cmdline=0x30000 \
                --add-section .linux="$d/linux" --change-section-vma .linux=0x2000000 \
                /usr/lib/systemd/boot/efi/linuxx64.efi.stub "$out"
}

# esp_of PLAN ROLE: the mtools name of that partition of the plan's target.
part_of() {
        echo "$2@@$(jq -r --arg r "$3" '.partitions[] | select(.role == $r) | .start' "$1")"
}

src=$WORK/fakeos.img
bash "$(dirname "$0")/make-fake-ddi.sh" "$src" 300 >/dev/null
make_uki "$WORK/recovery-1.efi" 1
make_uki "$WORK/recovery-2.efi" 2
size1=$(stat -c %s "$WORK/recovery-1.efi")
size2=$(stat -c %s "$WORK/recovery-2.efi")
cmp -s "$WORK/recovery-1.efi" "$WORK/recovery-2.efi" && fail "the two test UKIs are identical"

# --- 1. An install: the plan names the entry and its size; the ESP holds a byte-identical copy.
tgt=$WORK/target.img
truncate -s 6G "$tgt"
IMPRINT_RECOVERY_UKI=$WORK/recovery-1.efi "$IMPRINT" plan --source "$src" --target "$tgt" --seed rec \
        --plan-file "$WORK/plan.json" >"$WORK/table"
grep -i "recovery entry" "$WORK/table" | grep -q "imprint-recovery.efi" \
        || { cat "$WORK/table" >&2; fail "the plan table does not name the recovery entry"; }
jq -e --argjson n "$size1" '[.. | numbers] | index($n) != null' "$WORK/plan.json" >/dev/null \
        && jq -e '[.. | strings] | any(test("imprint-recovery"))' "$WORK/plan.json" >/dev/null \
        || { cat "$WORK/plan.json" >&2; fail "the plan JSON does not give the recovery entry and its size ($size1)"; }
pass "plan names the recovery entry and its size ($size1 bytes)"

IMPRINT_RECOVERY_UKI=$WORK/recovery-1.efi "$IMPRINT" install --plan-file "$WORK/plan.json" --yes >/dev/null
esp=$(part_of "$WORK/plan.json" "$tgt" esp)
mdir -/ -b -i "$esp" ::/EFI/Linux >"$WORK/esp.list"
grep -qx "::/EFI/Linux/imprint-recovery.efi" "$WORK/esp.list" || { cat "$WORK/esp.list" >&2; fail "no recovery entry on the ESP"; }
mtype -i "$esp" ::/EFI/Linux/imprint-recovery.efi | cmp - "$WORK/recovery-1.efi" \
        || fail "the recovery entry on the ESP differs from the UKI it was copied from"
grep -qx "::/EFI/Linux/fakeos_7.efi" "$WORK/esp.list" || fail "the image's own UKI is missing beside the recovery entry"
mtype -i "$esp" ::/loader/loader.conf | grep -qx "default fakeos_\*" || fail "the recovery entry must not become the default"
pass "install puts a byte-identical /EFI/Linux/imprint-recovery.efi on the ESP, the image stays the default"

if [ "$hook_wired" = 1 ]; then
        root_off=$(jq -r '.partitions[] | select(.role == "root") | .start' "$WORK/plan.json")
        debugfs -R "cat /etc/systemd/system/imprint-factory-reset.service" "$tgt?offset=$root_off" 2>/dev/null >"$WORK/hook" || true
        grep -qx "ExecStart=bootctl set-oneshot imprint-recovery.efi" "$WORK/hook" \
                || fail "the installed root has no factory-reset.target hook"
        debugfs -R "stat /etc/systemd/system/factory-reset.target.wants/imprint-factory-reset.service" "$tgt?offset=$root_off" 2>/dev/null \
                | grep -q "Type: symlink" || fail "the factory-reset.target hook is not enabled"
        pass "the installed root's factory-reset.target boots the recovery entry (bootctl set-oneshot)"
else
        echo "note: the executor does not write the factory-reset hook yet (branch reset); not checked"
fi

# --- 2. A kept ESP with an entry from an older medium: the reinstall replaces it.
# disk_with_esp IMG ESP_MIB: a disk with only an ESP (FAT32) holding an old recovery entry.
disk_with_esp() {
        truncate -s 8G "$1"
        printf 'label: gpt\nsize=%sMiB, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B\n' "$2" | sfdisk -q "$1"
        mkfs.vfat -F 32 -s 1 --offset 2048 "$1" $(($2 * 1024)) >/dev/null 2>&1
        mmd -i "$1@@1M" ::/EFI ::/EFI/Linux
        mcopy -i "$1@@1M" "$WORK/recovery-1.efi" ::/EFI/Linux/imprint-recovery.efi
}
disk_with_esp "$WORK/kept.img" 600
IMPRINT_RECOVERY_UKI=$WORK/recovery-2.efi "$IMPRINT" plan --free --source "$src" --target "$WORK/kept.img" --seed rec \
        --plan-file "$WORK/kept.json" >/dev/null
jq -e '[.partitions[] | select(.role == "esp")][0].action == "keep" and ([.partitions[] | select(.role == "xbootldr")] == [])' \
        "$WORK/kept.json" >/dev/null || { cat "$WORK/kept.json" >&2; fail "expected a kept 600 MiB ESP and no XBOOTLDR"; }
IMPRINT_RECOVERY_UKI=$WORK/recovery-2.efi "$IMPRINT" install --plan-file "$WORK/kept.json" --yes >/dev/null
mtype -i "$WORK/kept.img@@1M" ::/EFI/Linux/imprint-recovery.efi | cmp - "$WORK/recovery-2.efi" \
        || fail "the reinstall did not replace the older recovery entry"
[ "$(mdir -/ -b -i "$WORK/kept.img@@1M" ::/EFI/Linux | grep -ci "imprint-recovery")" = 1 ] || fail "more than one recovery entry"
pass "a reinstall replaces the recovery entry of an older medium ($size1 → $size2 bytes)"

# --- 3. An ESP too small for UKIs: the entry goes to XBOOTLDR, like the image's UKIs, and the
# ESP's old copy goes (two entries of one name would both be listed).
disk_with_esp "$WORK/small.img" 260
IMPRINT_RECOVERY_UKI=$WORK/recovery-2.efi "$IMPRINT" plan --free --source "$src" --target "$WORK/small.img" --seed rec \
        --plan-file "$WORK/small.json" >/dev/null
jq -e '[.partitions[] | select(.role == "xbootldr")][0].action == "create"' "$WORK/small.json" >/dev/null \
        || { cat "$WORK/small.json" >&2; fail "expected an XBOOTLDR partition beside a 260 MiB ESP"; }
IMPRINT_RECOVERY_UKI=$WORK/recovery-2.efi "$IMPRINT" install --plan-file "$WORK/small.json" --yes >/dev/null
xb=$(part_of "$WORK/small.json" "$WORK/small.img" xbootldr)
mtype -i "$xb" ::/EFI/Linux/imprint-recovery.efi | cmp - "$WORK/recovery-2.efi" \
        || fail "the recovery entry is not on the XBOOTLDR partition"
mdir -/ -b -i "$WORK/small.img@@1M" ::/EFI/Linux 2>/dev/null | grep -qi "imprint-recovery" \
        && fail "the old recovery entry is still on the small ESP"
pass "beside a small ESP the recovery entry is on XBOOTLDR, and the ESP's old copy is gone"

# --- 4. No recovery UKI: no entry, and the plan says why.
truncate -s 6G "$WORK/none.img"
IMPRINT_RECOVERY_UKI=$WORK/missing.efi "$IMPRINT" plan --source "$src" --target "$WORK/none.img" --seed rec \
        --plan-file "$WORK/none.json" >"$WORK/none.table"
grep -i "recovery" "$WORK/none.table" | grep -q "$WORK/missing.efi" \
        || { cat "$WORK/none.table" >&2; fail "the plan does not say why there is no recovery entry"; }
jq -e '[.. | strings] | any(test("missing.efi"))' "$WORK/none.json" >/dev/null \
        || { cat "$WORK/none.json" >&2; fail "the plan JSON does not say why there is no recovery entry"; }
IMPRINT_RECOVERY_UKI=$WORK/missing.efi "$IMPRINT" install --plan-file "$WORK/none.json" --yes >/dev/null
mdir -/ -b -i "$WORK/none.img@@1M" ::/EFI/Linux | grep -qi "imprint-recovery" && fail "a recovery entry appeared without a UKI"
pass "without a recovery UKI the install has no entry and the plan says why"

# --- 5. Something that is not a UKI is refused by name, before anything is written.
echo "not a PE file" >"$WORK/bogus.efi"
truncate -s 6G "$WORK/bogus.img"
if IMPRINT_RECOVERY_UKI=$WORK/bogus.efi "$IMPRINT" plan --source "$src" --target "$WORK/bogus.img" >"$WORK/bogus.out" 2>&1; then
        grep -i "recovery" "$WORK/bogus.out" | grep -q "bogus.efi" || { cat "$WORK/bogus.out" >&2; fail "a bogus recovery UKI is not reported"; }
else
        grep -q "bogus.efi" "$WORK/bogus.out" || { cat "$WORK/bogus.out" >&2; fail "the refusal does not name the bogus UKI"; }
fi
[ "$(head -c 1M "$WORK/bogus.img" | tr -d '\0' | wc -c)" = 0 ] || fail "something was written for a plan"
pass "a file that is not a UKI is reported by name"
