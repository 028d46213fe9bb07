#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Saving the install log to a stick (src/engine/logsave.c), through the engine's entry points as
# a command (tests/unit/test-logsave.c): the log lands on an ext4 partition of a loop device with
# the same bytes (debugfs reads it back), never through a symlink or over an existing file; the
# install's target, a disk the system uses (its root, active swap), a partition somebody mounted,
# swap and empty partitions are refused with their sentence; after every case nothing is left
# mounted, no mount directory is left in /run, and a refused case wrote no file.
. "$(dirname "$0")/lib.sh"
need_root "loop devices and mounts"
need_tool debugfs
need_tool mkfs.ext4
need_tool mkswap
need_tool sfdisk
need_tool findmnt
TOOL=${TEST_LOGSAVE:?TEST_LOGSAVE names the test-logsave binary (tests/meson.build sets it)}

# A log with more than one read buffer of text and every byte value, as a failed install's may.
log=$WORK/install.log
for i in $(seq 3000); do echo "step $i: mkfs.ext4 -q /dev/sdz$i (exit 0) äöü"; done >"$log"
head -c 4096 /dev/urandom >>"$log"

# The stick: GPT, 1 ext4, 2 swap, 3 nothing.
img=$WORK/stick.img
truncate -s 96M "$img"
sfdisk -q "$img" <<'EOF'
label: gpt
size=48M, type=linux
size=16M, type=swap
type=linux
EOF
attach "$img"
dev=$ATTACHED
udevadm settle 2>/dev/null || true
for p in 1 2 3; do [ -b "${dev}p$p" ] || fail "${dev}p$p did not appear"; done
mkfs.ext4 -q -L STICK "${dev}p1"
mkswap -q "${dev}p2" >/dev/null
wipefs -q -a "${dev}p3"
mkdir "$WORK/mnt"
MOUNTS+=("$WORK/mnt")

imprint_logs() {
        debugfs -R "ls -l /" "${dev}p1" 2>/dev/null | grep -o 'imprint-[0-9-]*\.log' | sort || true
}

runs_before=$(ls -d /run/imprint-log.* 2>/dev/null | sort || true)
# After each case: no partition of the stick mounted here, no mount directory left behind.
no_leftovers() {
        local p majmin
        for p in "$dev" "${dev}p1" "${dev}p2" "${dev}p3"; do
                majmin=$(printf '%d:%d' "0x$(stat -c %t "$p")" "0x$(stat -c %T "$p")")
                ! awk -v d="$majmin" '$3 == d { found = 1 } END { exit !found }' /proc/self/mountinfo ||
                        fail "$1: $p is still mounted: $(grep " $majmin " /proc/self/mountinfo)"
        done
        [ "$(ls -d /run/imprint-log.* 2>/dev/null | sort || true)" = "$runs_before" ] ||
                fail "$1: a mount directory was left in /run: $(ls -d /run/imprint-log.*)"
}

# expect_refused CASE ERRNO SENTENCE TOOL-ARGS…: the tool fails with that errno and sentence,
# and no file was added to the stick; unless MOUNTED=1 (the failure came after the mount), not a
# byte of the stick changed.
expect_refused() {
        local what=$1 errno=$2 sentence=$3 before sum
        shift 3
        before=$(imprint_logs)
        sum=$(checksum "$img")
        expect_exit 1 "$TOOL" "$@"
        expect_stderr "$errno: "
        expect_stderr "$sentence"
        [ "$(imprint_logs)" = "$before" ] || fail "$what: a refused save wrote a file: $(imprint_logs)"
        [ "${MOUNTED:-0}" = 1 ] || [ "$(checksum "$img")" = "$sum" ] || fail "$what: a refused save changed the stick"
        no_leftovers "$what"
        pass "$what: refused ($errno): $(cat "$WORK/stderr")"
}

# 1. Saved: the same bytes, a regular file named by the time, the filesystem clean.
expect_exit 0 "$TOOL" save "$log" "${dev}p1" /dev/nonexistent-target
where=$(cat "$WORK/stdout")
[[ $where =~ ^The\ log\ was\ saved\ as\ (imprint-[0-9]{8}-[0-9]{6}\.log)\ on\ ${dev}p1\.$ ]] || fail "unexpected place: $where"
name=${BASH_REMATCH[1]}
no_leftovers "save"
debugfs -R "dump /$name $WORK/back.log" "${dev}p1" 2>/dev/null
cmp "$log" "$WORK/back.log" || fail "the saved log differs from the original"
debugfs -R "stat /$name" "${dev}p1" 2>/dev/null | grep -q "Type: regular" || fail "$name is not a regular file"
e2fsck -fn "${dev}p1" >"$WORK/fsck" 2>&1 || { cat "$WORK/fsck" >&2; fail "e2fsck finds the stick damaged"; }
pass "log saved as $where, same bytes (debugfs), e2fsck clean, nothing left mounted"

# 2. Never through a symlink, never over an existing file: symlinks to a file outside the stick
# wait under every name of the next 20 seconds; the save takes the next free name beside them.
echo "victim" >"$WORK/victim"
mount "${dev}p1" "$WORK/mnt"
now=$(date +%s)
for s in $(seq 0 20); do
        link=$WORK/mnt/imprint-$(date -d "@$((now + s))" +%Y%m%d-%H%M%S).log
        [ -e "$link" ] || ln -s "$WORK/victim" "$link"
done
umount "$WORK/mnt"
expect_exit 0 "$TOOL" save "$log" "${dev}p1"
where=$(cat "$WORK/stdout")
[[ $where =~ ^The\ log\ was\ saved\ as\ (imprint-[0-9]{8}-[0-9]{6}-2\.log)\ on\ ${dev}p1\.$ ]] || fail "did not step past the existing name: $where"
name2=${BASH_REMATCH[1]}
[ "$(cat "$WORK/victim")" = victim ] || fail "the save wrote through a symlink on the stick"
debugfs -R "dump /$name2 $WORK/back2.log" "${dev}p1" 2>/dev/null
cmp "$log" "$WORK/back2.log" || fail "the second saved log differs from the original"
debugfs -R "dump /$name $WORK/back.log" "${dev}p1" 2>/dev/null
cmp "$log" "$WORK/back.log" || fail "the first saved log was changed"
no_leftovers "symlinks"
mount "${dev}p1" "$WORK/mnt"
find "$WORK/mnt" -maxdepth 1 -type l -delete
umount "$WORK/mnt"
pass "existing names and symlinks are stepped over ($name2), the file they point to untouched"

# 3. The install's target, named as the disk, as another of its partitions, or as the image file.
expect_refused "target disk" EPERM "the disk being installed" save "$log" "${dev}p1" "$dev"
expect_refused "partition of the target" EPERM "it is on ${dev}p3, the disk being installed" save "$log" "${dev}p1" "${dev}p3"
expect_refused "target image file" EPERM "the disk being installed" save "$log" "${dev}p1" "$img"

# 4. Filesystems that cannot take a file.
expect_refused "swap partition" EMEDIUMTYPE "${dev}p2 holds swap, not a filesystem the log can be saved to" save "$log" "${dev}p2"
expect_refused "empty partition" EMEDIUMTYPE "${dev}p3 holds no filesystem" save "$log" "${dev}p3"

# 5. A disk the system uses: active swap on another partition of the stick.
swapon "${dev}p2"
SWAPS+=("${dev}p2")
expect_refused "disk with active swap" EBUSY "swap is active on ${dev}p2" save "$log" "${dev}p1"
swapoff "${dev}p2"

# 6. The partition this system's / is mounted from.
rootsrc=$(findmnt -no SOURCE /)
[ -b "$rootsrc" ] || fail "/ is not mounted from a block device here ($rootsrc)"
before_root=$(ls / | grep -c '^imprint-.*\.log$' || true)
expect_refused "the system's root ($rootsrc)" EBUSY "running system's root filesystem (/)" save "$log" "$rootsrc"
[ "$(ls / | grep -c '^imprint-.*\.log$' || true)" = "$before_root" ] || fail "a log was written to /"

# 7. A partition somebody mounted: refused, naming where to copy the log instead.
mount "${dev}p1" "$WORK/mnt"
expect_exit 1 "$TOOL" save "$log" "${dev}p1"
expect_stderr "EALREADY: ${dev}p1 is already mounted on $WORK/mnt: copy the log there yourself (cp $log $WORK/mnt/)"
[ "$(ls "$WORK/mnt" | grep -c '^imprint-.*\.log$')" = 2 ] || fail "a refused save wrote a file: $(ls "$WORK/mnt")"
umount "$WORK/mnt"
pass "mounted partition refused (EALREADY): $(cat "$WORK/stderr")"

# 8. Failures after the checks still clean up: a full stick (the mount was made, the write fails:
# the partial file goes, the mount goes); a read-only partition, a read-only disk.
head -c 56M /dev/urandom >"$WORK/huge.log"
MOUNTED=1 expect_refused "full stick" ENOSPC "Cannot write the log to ${dev}p1: No space left on device." save "$WORK/huge.log" "${dev}p1"
rm "$WORK/huge.log"
blockdev --setro "${dev}p1"
expect_refused "read-only partition" EROFS "Refusing to save the log to ${dev}p1: the disk is read-only." save "$log" "${dev}p1"
blockdev --setrw "${dev}p1"
blockdev --setro "$dev"
expect_refused "read-only disk" EROFS "Refusing to save the log to ${dev}p1: the disk is read-only." save "$log" "${dev}p1"
blockdev --setrw "$dev"

# 9. FAT, what most sticks carry. Where the kernel has vfat, the log lands there (mtools reads it
# back, fsck.fat finds it clean); where it has none (this project's host), the mount fails with
# its sentence and the same cleanup.
mkfs.vfat -n LOGS "${dev}p3" >/dev/null
if "$TOOL" save "$log" "${dev}p3" >"$WORK/stdout" 2>"$WORK/stderr"; then
        where=$(cat "$WORK/stdout")
        [[ $where =~ ^The\ log\ was\ saved\ as\ (imprint-[0-9]{8}-[0-9]{6}\.log)\ on\ ${dev}p3\.$ ]] || fail "unexpected place: $where"
        mtype -i "${dev}p3" "::/${BASH_REMATCH[1]}" >"$WORK/back3.log"
        cmp "$log" "$WORK/back3.log" || fail "the log saved to FAT differs from the original"
        fsck.fat -n "${dev}p3" >/dev/null || fail "fsck.fat finds the FAT stick damaged"
        pass "log saved to FAT as $where, same bytes (mtools)"
else
        expect_stderr "ENODEV: Cannot mount ${dev}p3 (vfat): No such device."
        ! grep -qw vfat /proc/filesystems || fail "the kernel has vfat, yet the mount failed: $(cat "$WORK/stderr")"
        [ -z "$(mdir -b -i "${dev}p3" :: 2>/dev/null)" ] || fail "something was written to the FAT stick"
        pass "no vfat in this kernel: refused (ENODEV): $(cat "$WORK/stderr")"
fi
no_leftovers "FAT"

# 10. A stick formatted without a partition table ("mkfs.ext4 /dev/sdb"): the whole disk holds
# the filesystem, and takes the log.
truncate -s 32M "$WORK/whole.img"
mkfs.ext4 -q "$WORK/whole.img"
attach "$WORK/whole.img" --no-partscan
whole=$ATTACHED
expect_exit 0 "$TOOL" save "$log" "$whole" "$dev"
where=$(cat "$WORK/stdout")
[[ $where =~ ^The\ log\ was\ saved\ as\ (imprint-[0-9]{8}-[0-9]{6}\.log)\ on\ ${whole}\.$ ]] || fail "unexpected place: $where"
debugfs -R "dump /${BASH_REMATCH[1]} $WORK/back4.log" "$whole" 2>/dev/null
cmp "$log" "$WORK/back4.log" || fail "the log saved to the whole-disk filesystem differs from the original"
! findmnt --source "$whole" >/dev/null || fail "$whole is still mounted"
no_leftovers "whole-disk filesystem"
pass "log saved to a filesystem with no partition table: $where, same bytes"

# 11. Looking for a stick: a loop device is no removable disk. Only where this machine has no
# removable or USB disk of its own, which would be written to.
if lsblk -dno RM,TRAN | awk '$1 == 1 || $2 == "usb" { found = 1 } END { exit !found }'; then
        echo "note: this machine has a removable disk; not running the search for one"
else
        expect_refused "no removable disk" ENODEV "No USB stick with a FAT, exFAT or ext4 filesystem was found." removable "$log"
fi

[ "$(imprint_logs | wc -l)" = 2 ] || fail "the stick holds other logs than the two saved: $(imprint_logs)"
e2fsck -fn "${dev}p1" >"$WORK/fsck" 2>&1 || { cat "$WORK/fsck" >&2; fail "e2fsck finds the stick damaged"; }
pass "the stick holds exactly the two saved logs and is clean"
