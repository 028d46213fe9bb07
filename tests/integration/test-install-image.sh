#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# imprint install into an image file, without privileges: the result is checked with stock
# sfdisk, cmp, blkid and mtools — root bit-identical to the image's, systemd-boot and the UKI on
# the ESP, loader.conf, random seed — and the JSON progress has byte counts and rates.
. "$(dirname "$0")/lib.sh"
need_tool jq
need_tool mdir
need_tool objcopy
need_tool debugfs

src=$WORK/fakeos.img
bash "$(dirname "$0")/make-fake-ddi.sh" "$src" 300
tgt=$WORK/target.img
truncate -s 6G "$tgt"

"$IMPRINT" plan --source "$src" --target "$tgt" --seed install --plan-file "$WORK/plan.json" >"$WORK/table"
grep -q "Imprint Fake OS 7" "$WORK/table" || fail "the plan does not name the OS being installed"
grep -q "fakeos.img.sha256" "$WORK/table" || fail "the plan does not say which checksum it verifies against"
jq -e '.source.osName == "Imprint Fake OS 7" and (.source.sha256 | length == 64)
       and (.partitions[] | select(.role == "root") | .copyFrom == 0 and .label == "fakeos_7" and (.flagNames | index("growfs")))
       and (.partitions[] | select(.role == "esp") | .copyFrom == null and .fstype == "vfat")' "$WORK/plan.json" >/dev/null \
        || { cat "$WORK/plan.json" >&2; fail "unexpected install plan"; }
pass "plan names the image, its checksum, and copies its root"

"$IMPRINT" install --plan-file "$WORK/plan.json" --yes --json >"$WORK/events.json"
jq -e -s '[.[] | .id] | index("verify-image") < index("partition")' "$WORK/events.json" >/dev/null \
        || fail "the checksum must be verified before anything is written"
jq -e -s '[.[] | select(.event == "update" and .id == "verify-image")] | length > 0 and (.[-1].done == .[-1].total)' "$WORK/events.json" >/dev/null \
        || fail "no byte progress while verifying the image"
jq -e -s '[.[] | select(.event == "end" and .id == "copy-root")][0] | .total == 314572800 and .done == .total' "$WORK/events.json" >/dev/null \
        || fail "copy-root does not report the root partition's bytes"
jq -e -s '[.[] | select(.event == "update")] | all(.rate >= 0 and .total > 0 and .done <= .total)' "$WORK/events.json" >/dev/null \
        || fail "malformed update events"
jq -e -s '[.[] | .id] | index("verify-root") > index("copy-root") and index("boot") > index("verify-root")' "$WORK/events.json" >/dev/null \
        || fail "the root must be read back after the copy, and the boot loader installed after that"
jq -e -s '.[-1].success == true' "$WORK/events.json" >/dev/null || fail "install did not report success"
pass "install --json reports verify, copy and boot steps with byte counts"

compare_with_sfdisk "$WORK/plan.json" "$tgt"
pass "sfdisk reads back the planned GPT"

# The root partition holds the image's files (the copy was read back byte for byte by the
# verify step; afterwards the configure step wrote the factory-reset hook into it).
s_off=$(jq -r '.source.partitions[0].start' "$WORK/plan.json")
s_len=$(jq -r '.source.partitions[0].size' "$WORK/plan.json")
t_off=$(jq -r '.partitions[] | select(.role == "root") | .start' "$WORK/plan.json")
same_root_files "$src" "$s_off" "$tgt" "$t_off" || fail "the installed root differs from the image's root"
[ "$(blkid -p -o value -s LABEL -O "$t_off" "$tgt")" = root ] || fail "the installed root is not the image's ext4"
pass "root partition holds the image's files (the verify step read the $s_len bytes of the copy back)"

# The ESP as firmware and systemd-boot will read it.
esp="$tgt@@$(jq -r '.partitions[] | select(.role == "esp") | .start' "$WORK/plan.json")"
mdir -/ -b -i "$esp" ::/ >"$WORK/esp.list"
for f in ::/EFI/systemd/systemd-bootx64.efi ::/EFI/BOOT/BOOTX64.EFI ::/EFI/Linux/fakeos_7.efi \
         ::/loader/loader.conf ::/loader/random-seed ::/loader/entries.srel; do
        grep -qxF "$f" "$WORK/esp.list" || { cat "$WORK/esp.list" >&2; fail "$f is missing on the ESP"; }
done
mtype -i "$esp" ::/EFI/BOOT/BOOTX64.EFI | cmp - /usr/lib/systemd/boot/efi/systemd-bootx64.efi \
        || fail "BOOTX64.EFI is not the image's systemd-boot"
mtype -i "$esp" ::/EFI/Linux/fakeos_7.efi | cmp - <(mtype -i "$src@@1M" ::/EFI/Linux/fakeos_7.efi) \
        || fail "the UKI on the target differs from the image's"
mtype -i "$esp" ::/loader/loader.conf | grep -qx "default fakeos_\*" || fail "loader.conf does not default to the image's entries"
[ "$(mtype -i "$esp" ::/loader/random-seed | wc -c)" = 32 ] || fail "the random seed is not 32 bytes"
[ "$(mtype -i "$esp" ::/loader/entries.srel)" = type1 ] || fail "entries.srel is not type1"
pass "ESP holds systemd-boot, the fallback loader, the UKI, loader.conf, a random seed and entries.srel"

# Two installs get different random seeds.
truncate -s 6G "$WORK/second.img"
"$IMPRINT" install --source "$src" --target "$WORK/second.img" --yes >/dev/null
esp2="$WORK/second.img@@1048576"
cmp -s <(mtype -i "$esp" ::/loader/random-seed) <(mtype -i "$esp2" ::/loader/random-seed) && fail "two installs share a random seed"
pass "each install gets its own random seed"

# A golden image needs no privileges: an unprivileged user installs into a file it owns.
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null; then
        mkdir "$WORK/user"
        cp --sparse=always "$src" "$src.sha256" "$WORK/user/"
        truncate -s 6G "$WORK/user/golden.img"
        chown -R 65534:65534 "$WORK/user"
        chmod 755 "$WORK"
        setpriv --reuid=65534 --regid=65534 --clear-groups env HOME=/nonexistent \
                "$IMPRINT" install --source "$WORK/user/fakeos.img" --target "$WORK/user/golden.img" --seed golden --yes >"$WORK/user.out" 2>&1 \
                || { cat "$WORK/user.out" >&2; fail "an unprivileged user could not install into a file"; }
        # Without root the installed root is not mounted, so no factory-reset hook is written: the
        # root stays bit-identical to the image's.
        cmp -n "$s_len" -i "$s_off:$t_off" "$src" "$WORK/user/golden.img" || fail "the unprivileged install's root differs"
        pass "an unprivileged user installs into an image file (uid 65534)"
fi
