#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# imprint install and apply into sparse image files of 16 GiB, 17 GiB, 64 GiB, 2 TiB and 8 TiB
# (OEM golden images are such files) and onto a loop device with 4096-byte sectors. Judged by
# stock tools: sfdisk reads back the plan; fsck.fat -n finds the ESP clean, with no warning, and
# FAT32 with at least 65525 clusters (fewer is read as FAT16 by mtools and by firmware that
# follows the FAT specification); mtools lists systemd-boot and the UKI; e2fsck -fn finds root
# clean; the file stays sparse. Also: a filesystem that fails its checker fails the step.
. "$(dirname "$0")/lib.sh"
need_root "loop devices with 4096-byte sectors"
need_tool jq
need_tool mdir
need_tool fsck.fat
need_tool e2fsck
need_tool objcopy

src=$WORK/fakeos.img
bash "$(dirname "$0")/make-fake-ddi.sh" "$src" 300

# region FILE OFFSET SIZE OUT: a sparse copy of a partition's range, for fsck.fat, which cannot
# read at an offset (only the data regions are read: an ESP in a 8 TiB file costs its FATs).
region() {
        /usr/bin/python3 - "$@" <<'PY'
import os, sys
src, off, size, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
fd = os.open(src, os.O_RDONLY)
o = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
os.ftruncate(o, size)
pos = off
while pos < off + size:
    try:
        data = os.lseek(fd, pos, os.SEEK_DATA)
    except OSError:
        break
    if data >= off + size:
        break
    hole = min(os.lseek(fd, data, os.SEEK_HOLE), off + size)
    while data < hole:
        buf = os.pread(fd, min(hole - data, 1 << 22), data)
        os.pwrite(o, buf, data - off)
        data += len(buf)
    pos = hole
PY
}

# check_esp DEV-OR-FILE WHAT: fsck.fat -n finds a clean FAT32 with enough clusters.
check_esp() {
        local dev=$1 what=$2 rc=0
        fsck.fat -n -v "$dev" >"$WORK/fsck.out" 2>&1 || rc=$?
        [ "$rc" = 0 ] || { cat "$WORK/fsck.out" >&2; fail "fsck.fat -n finds errors on the ESP of $what (exit $rc)"; }
        ! grep -qi "warning" "$WORK/fsck.out" || { cat "$WORK/fsck.out" >&2; fail "fsck.fat -n warns about the ESP of $what"; }
        grep -q "32 bit entries" "$WORK/fsck.out" || { cat "$WORK/fsck.out" >&2; fail "the ESP of $what is not FAT32"; }
        local clusters
        clusters=$(sed -n 's/^ *\([0-9]*\) data clusters.*/\1/p' "$WORK/fsck.out")
        [ "${clusters:-0}" -ge 65525 ] || { cat "$WORK/fsck.out" >&2; fail "the ESP of $what has $clusters clusters, fewer than FAT32's 65525"; }
}

# check_installed_esp MTOOLS-IMAGE WHAT: systemd-boot, the fallback loader and the UKI are there.
check_installed_esp() {
        local esp=$1 what=$2 f
        # mtools says "Could not get geometry" on a partition node; its other complaints matter.
        mdir -/ -b -i "$esp" ::/ >"$WORK/esp.list" 2>"$WORK/mtools.err" || { cat "$WORK/mtools.err" >&2; fail "mdir cannot list the ESP of $what"; }
        for f in ::/EFI/systemd/systemd-bootx64.efi ::/EFI/BOOT/BOOTX64.EFI ::/EFI/Linux/fakeos_7.efi ::/loader/loader.conf; do
                grep -qxF "$f" "$WORK/esp.list" || { cat "$WORK/esp.list" >&2; fail "$f is missing on the ESP of $what"; }
        done
        mtype -i "$esp" ::/EFI/Linux/fakeos_7.efi 2>>"$WORK/mtools.err" | cmp -s - <(mtype -i "$src@@1M" ::/EFI/Linux/fakeos_7.efi) \
                || fail "the UKI on the ESP of $what differs from the image's"
}

check_root() {
        local fs=$1 what=$2
        e2fsck -fn "$fs" >"$WORK/e2fsck.out" 2>&1 || { cat "$WORK/e2fsck.out" >&2; fail "e2fsck -fn finds errors on the root of $what"; }
}

# The partition's start and size from the plan.
part() { jq -r --arg r "$1" ".partitions[] | select(.role == \$r) | .$2" "$WORK/plan.json"; }

# One image file: install (or apply) into it, then judge it and delete it.
try_file() {
        local verb=$1 size=$2 tgt=$WORK/big.img what="$1 into a $2 file" kib
        truncate -s "$size" "$tgt"
        if [ "$verb" = install ]; then
                "$IMPRINT" plan --source "$src" --target "$tgt" --seed big --plan-file "$WORK/plan.json" >/dev/null
        else
                "$IMPRINT" plan --target "$tgt" --seed big --plan-file "$WORK/plan.json" >/dev/null
        fi
        "$IMPRINT" "$verb" --plan-file "$WORK/plan.json" --yes >"$WORK/out" 2>&1 || { cat "$WORK/out" >&2; fail "$what failed"; }
        compare_with_sfdisk "$WORK/plan.json" "$tgt"

        region "$tgt" "$(part esp start)" "$(part esp size)" "$WORK/esp.img"
        check_esp "$WORK/esp.img" "$what"
        if [ "$verb" = install ]; then
                check_installed_esp "$tgt@@$(part esp start)" "$what"
        else
                # An empty ESP must take what the boot loader step will write.
                mmd -i "$WORK/esp.img" ::/EFI ::/EFI/systemd || fail "mmd cannot make directories on the ESP of $what"
        fi
        check_root "$tgt?offset=$(part root start)" "$what"

        kib=$(du -k "$tgt" | cut -f1)
        [ "$kib" -lt $((2 * 1024 * 1024)) ] || fail "$what is no longer sparse: $kib KiB allocated"
        rm -f "$tgt" "$WORK/esp.img"
        pass "$what: sfdisk layout, clean FAT32 ESP, clean root, $((kib / 1024)) MiB allocated"
}

for size in 16G 17G 64G 2T 8T; do
        try_file install "$size"
        try_file apply "$size"
done

# A 4Kn disk: partition nodes, FAT with 4096-byte sectors.
truncate -s 64G "$WORK/4k.img"
ATTACHED=$(losetup -fP --show --sector-size 4096 "$WORK/4k.img")
LOOPS+=("$ATTACHED")
partx -a "$ATTACHED" 2>/dev/null || true
dev=$ATTACHED
[ "$(blockdev --getss "$dev")" = 4096 ] || fail "$dev does not have 4096-byte sectors"
for verb in apply install; do
        what="$verb onto a 4Kn loop device"
        if [ "$verb" = install ]; then
                "$IMPRINT" plan --source "$src" --target "$dev" --seed big4k --no-encrypt --plan-file "$WORK/plan.json" >/dev/null
        else
                "$IMPRINT" plan --target "$dev" --seed big4k --no-encrypt --plan-file "$WORK/plan.json" >/dev/null
        fi
        "$IMPRINT" "$verb" --plan-file "$WORK/plan.json" --yes >"$WORK/out" 2>&1 || { cat "$WORK/out" >&2; fail "$what failed"; }
        compare_with_sfdisk "$WORK/plan.json" "$dev"
        udevadm settle 2>/dev/null || true
        esp_node="${dev}p$(part esp partno)"
        root_node="${dev}p$(part root partno)"
        check_esp "$esp_node" "$what"
        fsck.fat -n -v "$esp_node" 2>&1 | grep -q "4096 bytes per logical sector" || fail "the ESP of $what does not use the disk's 4096-byte sectors"
        [ "$verb" = install ] && check_installed_esp "$esp_node" "$what"
        check_root "$root_node" "$what"
        pass "$what: sfdisk layout, clean FAT32 ESP with 4096-byte sectors, clean root"
done
losetup -d "$dev"
LOOPS=()
kib=$(du -k "$WORK/4k.img" | cut -f1)
[ "$kib" -lt $((2 * 1024 * 1024)) ] || fail "the 4Kn disk's file is no longer sparse: $kib KiB allocated"
rm -f "$WORK/4k.img"

# A filesystem that fails its checker fails the step, and the error quotes the checker. The stock
# fsck.fat is replaced by one that reports what the old ESPs got.
mkdir "$WORK/bin"
cat >"$WORK/bin/fsck.fat" <<'SH'
#!/bin/sh
echo "fsck.fat 4.2 (2021-01-31)"
echo "Warning: Filesystem is FAT32 according to fat_length and fat32_length fields,"
echo "  but has only 65502 clusters, less than the required minimum of 65525."
exit 0
SH
chmod +x "$WORK/bin/fsck.fat"
truncate -s 17G "$WORK/bad.img"
expect_exit 1 env PATH="$WORK/bin:$PATH" "$IMPRINT" apply --target "$WORK/bad.img" --yes
expect_stderr "vfat"
expect_stderr "esp"
expect_stderr "fsck.fat -n"
expect_stderr "but has only 65502 clusters"
grep -q "partitioned as planned" "$WORK/stdout" && fail "apply reports success although the ESP failed its check"
rm -f "$WORK/bad.img"
pass "an ESP that fsck.fat warns about fails the step with fsck.fat's words"
