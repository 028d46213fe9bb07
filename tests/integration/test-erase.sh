#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The factory reset's erase of one partition (src/engine/erase.c), through the engine's entry
# point as a command (tests/unit/test-erase.c), with stock cryptsetup as the referee.
#
# A GPT image with an ESP, LUKS2 root and home (formatted here by cryptsetup with a key file and
# a second keyslot), an unencrypted var, a LUKS1 partition and a spare; recognizable data in every
# data area. On its loop device (losetup -P) and on a copy of the image file (byte ranges, no
# partition node), after each erase:
#   - cryptsetup luksDump fails; cryptsetup open --test-passphrase with the key fails on the
#     device and on a byte copy of its first 16 MiB, while a copy taken BEFORE still opens with
#     the same key (so the key was right);
#   - not one 512-byte sector of the metadata (primary header, secondary header at 16 KiB, the
#     keyslot area) equals what was there before;
#   - the data area reads zeroes (loop device: discarded) / is a hole (image file: SEEK_DATA);
#   - every other partition, and the GPT, is byte-identical to before;
#   - the reported method is what was done: crypto-erase (LUKS2 and LUKS1), discard for the
#     unencrypted var, overwrite where the device or filesystem cannot discard (a file on ramfs,
#     which cannot punch holes, and a loop device over it), secure=no when a secure erase is
#     asked of a device that refuses it.
# A mounted partition is refused with its sentence and nothing is written.
. "$(dirname "$0")/lib.sh"
need_root "loop devices and cryptsetup"
need_tool cryptsetup
need_tool sfdisk
need_tool mkfs.ext4
need_tool debugfs
TOOL=${TEST_ERASE:?TEST_ERASE names the test-erase binary (tests/meson.build sets it)}
MiB=1048576
# The loop device over a file on the ramfs mount goes before lib.sh's cleanup unmounts it.
nl=
trap '[ -z "$nl" ] || losetup -d "$nl" 2>/dev/null || true; cleanup' EXIT

key=$WORK/key
head -c 64 /dev/urandom >"$key"
key2=$WORK/key2
head -c 64 /dev/urandom >"$key2"

img=$WORK/disk.img
truncate -s 200M "$img"
sfdisk -q "$img" <<'EOF'
label: gpt
size=16M, type=uefi, name=esp
size=40M, type=4f68bce3-e8cd-4db1-96e7-fbcaf984b709, name=root
size=40M, type=933ac7e1-2eb4-4f13-b844-0e14e2aef915, name=home
size=24M, type=4d21b016-b534-45c2-a9fb-5c16e091fd2d, name=var
size=24M, type=linux, name=old
size=24M, type=linux, name=spare
EOF

attach "$img"
dev=$ATTACHED
# A read-only flag set on this loop device by an earlier user (blockdev --setro) outlives its
# detaching: the disk is ours now.
[ "$(blockdev --getro "$dev")" = 0 ] || blockdev --setrw "$dev"
udevadm settle 2>/dev/null || true
for p in 1 2 3 4 5 6; do [ -b "${dev}p$p" ] || fail "${dev}p$p did not appear"; done

# start PART / size PART: the partition's byte range on the disk (sysfs, in 512-byte sectors)
start() { echo $(( $(cat "/sys/class/block/$(basename "${dev}p$1")/start") * 512 )); }
size() { echo $(( $(cat "/sys/class/block/$(basename "${dev}p$1")/size") * 512 )); }

# pattern TEXT BYTES: recognizable, non-zero data
pattern() { yes "$1" | head -c "$2" || true; } # yes ends with SIGPIPE

fmt() {
        local part=$1 type=$2
        cryptsetup luksFormat -q --type "$type" --pbkdf pbkdf2 --pbkdf-force-iterations 1000 \
                --key-file "$key" "${dev}p$part"
        cryptsetup luksAddKey -q --pbkdf pbkdf2 --pbkdf-force-iterations 1000 \
                --key-file "$key" --new-keyfile "$key2" "${dev}p$part"
}
fmt 2 luks2
fmt 3 luks2
fmt 5 luks1
pattern "the ESP" $((16 * MiB)) | dd of="${dev}p1" bs=1M iflag=fullblock oflag=direct status=none
pattern "var data" $((24 * MiB)) | dd of="${dev}p4" bs=1M iflag=fullblock oflag=direct status=none
pattern "spare" $((24 * MiB)) | dd of="${dev}p6" bs=1M iflag=fullblock oflag=direct status=none

# data_offset PART: where cryptsetup put the payload
data_offset() { echo $(( $(cryptsetup luksDump "${dev}p$1" | awk '/^[[:space:]]*offset:/ { print $2; exit } /^Payload offset:/ { print $3; exit }') * ${2:-1} )); }
root_data=$(data_offset 2)
home_data=$(data_offset 3)
old_data=$(data_offset 5 512)
[ "$root_data" = $((16 * MiB)) ] || fail "unexpected LUKS2 data offset $root_data"
[ "$old_data" -gt 0 ] || fail "no LUKS1 payload offset"
pattern "owner's root data" $(( $(size 2) - root_data )) | dd of="${dev}p2" bs=1M seek="$root_data" iflag=fullblock oflag=direct,seek_bytes status=none
pattern "owner's home data" $(( $(size 3) - home_data )) | dd of="${dev}p3" bs=1M seek="$home_data" iflag=fullblock oflag=direct,seek_bytes status=none
pattern "owner's old data" $(( $(size 5) - old_data )) | dd of="${dev}p5" bs=1M seek="$old_data" iflag=fullblock oflag=direct,seek_bytes status=none
sync

# The untouched copy of the image file, for the image-file half of the test.
cp --sparse=always "$img" "$WORK/file.img"
gpt_sum=$(head -c $((1 * MiB)) "$img" | sha256sum)

# sums: sha256 of every partition and of the GPT, read from the device
sums() {
        local p
        head -c $((1 * MiB)) "$dev" | sha256sum
        for p in 1 2 3 4 5 6; do dd if="${dev}p$p" bs=1M iflag=direct status=none | sha256sum | sed "s/-/p$p/"; done
        tail -c $((1 * MiB)) "$dev" | sha256sum
}
# unchanged_except PART BEFORE: every partition but PART (and both GPTs) reads as before
unchanged_except() {
        diff <(grep -v " p$1\$" "$2") <(sums | grep -v " p$1\$") >&2 || fail "erasing partition $1 changed another partition or the GPT"
}

# field NAME: a key=value line of the last erase's output
field() { sed -n "s/^$1=//p" "$WORK/out"; }

erase() {
        "$TOOL" erase "$@" >"$WORK/out" 2>"$WORK/err" || { cat "$WORK/out" "$WORK/err" >&2; fail "erase $* failed"; }
}

# zeroes FILE OFFSET LENGTH: the range reads as zeroes
zeroes() {
        local flags=skip_bytes
        [ -b "$1" ] && flags+=,direct # past the page cache, from the device
        cmp -s -n "$3" <(dd if="$1" bs=1M iflag="$flags" skip="$2" status=none) /dev/zero ||
                fail "$1 does not read zeroes at [$2, +$3)"
}

# sectors_all_changed BEFORE AFTER: not one 512-byte sector of AFTER equals BEFORE's
sectors_all_changed() {
        python3 - "$1" "$2" <<'PY' || fail "part of the metadata survived: $(cat "$WORK/same" 2>/dev/null)"
import sys
a = open(sys.argv[1], "rb").read()
b = open(sys.argv[2], "rb").read()
assert len(a) == len(b) and len(a) > 0, (len(a), len(b))
same = [i for i in range(0, len(a), 512) if a[i:i + 512] == b[i:i + 512]]
if same:
    print("first same sectors at", same[:8], file=sys.stderr)
    sys.exit(1)
PY
}

# check_crypto_erased NAME DEV-OR-FILE BEFORE-HEADER AFTER-HEADER: what stock cryptsetup says
check_crypto_erased() {
        local name=$1 target=$2 before=$3 after=$4
        cryptsetup open --test-passphrase --key-file "$key" "$before" || fail "$name: the copy taken before does not open with the key"
        cryptsetup open --test-passphrase --key-file "$key2" "$before" || fail "$name: the copy taken before does not open with the second key"
        ! cryptsetup luksDump "$target" >/dev/null 2>&1 || fail "$name: cryptsetup luksDump still reads a header"
        ! cryptsetup open --test-passphrase --key-file "$key" "$target" 2>/dev/null || fail "$name: the key still opens it"
        ! cryptsetup open --test-passphrase --key-file "$key" "$after" 2>/dev/null || fail "$name: the key opens a copy of its first 16 MiB"
        ! cryptsetup open --test-passphrase --key-file "$key2" "$after" 2>/dev/null || fail "$name: the second key opens a copy"
        ! cryptsetup isLuks "$after" || fail "$name: a copy is still LUKS"
}

expect() {
        local got
        got=$(field "$1")
        [ "$got" = "$2" ] || { cat "$WORK/out" >&2; fail "$3: $1 is \"$got\", not \"$2\""; }
}

###### Loop device, LUKS2 root, through the disk with the partition node
sums >"$WORK/sums0"
uuid=$(cryptsetup luksUUID "${dev}p2")
dd if="${dev}p2" of="$WORK/root-before" bs=1M count=16 iflag=direct status=none
"$TOOL" probe "$dev" "$(start 2)" "$(size 2)" --node "${dev}p2" >"$WORK/out"
expect method crypto-erase "probe of root"
expect estimateUsec 0 "probe of root"
erase "$dev" "$(start 2)" "$(size 2)" --node "${dev}p2"
expect method crypto-erase "root"
expect luks yes "root"
expect luksVersion 2 "root"
expect luksUuid "$uuid" "root"
expect keyslots 2 "root"
expect headerBytes "$root_data" "root"
expect dataDiscarded yes "root"
expect secure no "root"
expect describe "crypto-erase (LUKS2 header and 2 keyslots destroyed, data discarded)" "root"
# libcryptsetup destroyed the keyslots before the overwrite (luks_erase()'s log line)
grep -q "Erased 2 keyslot(s) of ${dev}p2" "$WORK/err" || { cat "$WORK/err" >&2; fail "root: libcryptsetup did not destroy the keyslots"; }
dd if="${dev}p2" of="$WORK/root-after" bs=1M count=16 iflag=direct status=none
check_crypto_erased root "${dev}p2" "$WORK/root-before" "$WORK/root-after"
sectors_all_changed "$WORK/root-before" "$WORK/root-after"
zeroes "${dev}p2" "$root_data" $(( $(size 2) - root_data ))
unchanged_except 2 "$WORK/sums0"
# The loop device passed the discard on: the backing file has a hole there.
python3 - "$img" $(( $(start 2) + root_data )) $(( $(start 2) + $(size 2) )) <<'PY' || fail "root's data area is not a hole in the backing file"
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
try:
    d = os.lseek(fd, int(sys.argv[2]), os.SEEK_DATA)
except OSError:
    d = os.fstat(fd).st_size
sys.exit(0 if d >= int(sys.argv[3]) else 1)
PY
pass "loop device: LUKS2 root crypto-erased (2 keyslots, both header copies, keyslot area), data discarded"

###### Home, with a secure erase asked: the loop device refuses BLKSECDISCARD, the result says so
sums >"$WORK/sums1"
dd if="${dev}p3" of="$WORK/home-before" bs=1M count=16 iflag=direct status=none
erase "$dev" "$(start 3)" "$(size 3)" --node "${dev}p3" --secure
expect method crypto-erase "home"
expect secure no "home (the loop device has no secure discard)"
expect dataDiscarded yes "home"
expect keyslots 2 "home"
field describe | grep -q "securely" && fail "home: the sentence claims a secure discard"
dd if="${dev}p3" of="$WORK/home-after" bs=1M count=16 iflag=direct status=none
check_crypto_erased home "${dev}p3" "$WORK/home-before" "$WORK/home-after"
sectors_all_changed "$WORK/home-before" "$WORK/home-after"
zeroes "${dev}p3" "$home_data" $(( $(size 3) - home_data ))
unchanged_except 3 "$WORK/sums1"
pass "loop device: LUKS2 home crypto-erased; secure erase asked, refused by the device, not claimed"

###### LUKS1: crypto-erased the same way, and named
sums >"$WORK/sums2"
dd if="${dev}p5" of="$WORK/old-before" bs=1M count=16 iflag=direct status=none
erase "$dev" "$(start 5)" "$(size 5)" --node "${dev}p5"
expect method crypto-erase "LUKS1"
expect luksVersion 1 "LUKS1"
expect keyslots 2 "LUKS1"
expect headerBytes "$old_data" "LUKS1"
grep -q "destroyed 2 LUKS1 keyslot(s) with libcryptsetup" "$WORK/err" || { cat "$WORK/err" >&2; fail "LUKS1: libcryptsetup did not destroy the keyslots"; }
field describe | grep -q "LUKS1 header and 2 keyslots destroyed" || fail "LUKS1: the sentence does not say so: $(field describe)"
dd if="${dev}p5" of="$WORK/old-after" bs=1M count=16 iflag=direct status=none
check_crypto_erased LUKS1 "${dev}p5" "$WORK/old-before" "$WORK/old-after"
sectors_all_changed <(head -c "$old_data" "$WORK/old-before") <(head -c "$old_data" "$WORK/old-after")
zeroes "${dev}p5" "$old_data" $(( $(size 5) - old_data ))
unchanged_except 5 "$WORK/sums2"
pass "loop device: LUKS1 crypto-erased and named LUKS1"

###### Unencrypted var: discarded, and zeroes at both ends
sums >"$WORK/sums3"
"$TOOL" probe "$dev" "$(start 4)" "$(size 4)" --node "${dev}p4" >"$WORK/out"
expect method discard "probe of var"
erase "$dev" "$(start 4)" "$(size 4)" --node "${dev}p4"
expect method discard "var"
expect luks no "var"
expect keyslots 0 "var"
expect dataDiscarded yes "var"
expect bytesWritten $((2 * MiB)) "var (first and last MiB)"
zeroes "${dev}p4" 0 "$(size 4)"
unchanged_except 4 "$WORK/sums3"
pass "loop device: unencrypted var discarded"

###### A mounted partition is refused, nothing written
mkfs.ext4 -q "${dev}p6"
mkdir "$WORK/mnt"
mount "${dev}p6" "$WORK/mnt"
MOUNTS+=("$WORK/mnt")
echo "the owner's file" >"$WORK/mnt/file"
sync
sums >"$WORK/sums4"
expect_exit 1 "$TOOL" erase "$dev" "$(start 6)" "$(size 6)" --node "${dev}p6"
expect_stderr "EBUSY: Refusing to erase ${dev}p6: it is in use"
umount "$WORK/mnt"
# (unmounting writes to p6 itself: its file is checked instead)
unchanged_except 6 "$WORK/sums4"
[ "$(debugfs -R "cat /file" "${dev}p6" 2>/dev/null)" = "the owner's file" ] || fail "a refused erase damaged the mounted filesystem"
pass "a mounted partition is refused and nothing is written"

###### The image file (a copy made before the loop device's erases): byte ranges, no node
file=$WORK/file.img
fsum() { python3 - "$file" "$@" <<'PY'
import hashlib, os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
for r in sys.argv[2:]:
    s, n = map(int, r.split("+"))
    print(r, hashlib.sha256(os.pread(fd, n, s)).hexdigest())
PY
}
ranges_except() {
        local p out=("0+$MiB")
        for p in 1 2 3 4 5 6; do [ "$p" = "$1" ] || out+=("$(start "$p")+$(size "$p")"); done
        out+=("$(( $(stat -c %s "$file") - MiB ))+$MiB")
        echo "${out[@]}"
}
# is_hole FROM TO: no data in [FROM, TO) of the file
is_hole() {
        python3 - "$file" "$1" "$2" <<'PY'
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
try:
    d = os.lseek(fd, int(sys.argv[2]), os.SEEK_DATA)
except OSError:
    d = os.fstat(fd).st_size
sys.exit(0 if d >= int(sys.argv[3]) else 1)
PY
}

# LUKS2 root in the file.
fsum $(ranges_except 2) >"$WORK/fsums0"
head -c $(( $(start 2) + 16 * MiB )) "$file" | tail -c $((16 * MiB)) >"$WORK/froot-before"
cryptsetup open --test-passphrase --key-file "$key" "$WORK/froot-before" || fail "file: the root header copy does not open"
erase "$file" "$(start 2)" "$(size 2)"
expect method crypto-erase "file root"
expect keyslots 2 "file root"
expect luksUuid "$uuid" "file root"
expect dataDiscarded yes "file root"
expect headerBytes "$root_data" "file root"
# no partition node: libcryptsetup reached the header through a loop device over the range
grep -q "Erased 2 keyslot(s) of /dev/loop" "$WORK/err" || { cat "$WORK/err" >&2; fail "file root: libcryptsetup did not destroy the keyslots"; }
head -c $(( $(start 2) + 16 * MiB )) "$file" | tail -c $((16 * MiB)) >"$WORK/froot-after"
check_crypto_erased "file root" "$WORK/froot-after" "$WORK/froot-before" "$WORK/froot-after"
sectors_all_changed "$WORK/froot-before" "$WORK/froot-after"
is_hole $(( $(start 2) + root_data )) $(( $(start 2) + $(size 2) )) || fail "file: root's data area is not a hole"
diff "$WORK/fsums0" <(fsum $(ranges_except 2)) >&2 || fail "file: erasing root changed another partition or the GPT"
pass "image file: LUKS2 root crypto-erased at its offset, data area punched out, neighbours identical"

# Unencrypted var in the file: punched out, nothing written.
fsum $(ranges_except 4) >"$WORK/fsums1"
erase "$file" "$(start 4)" "$(size 4)" --secure
expect method discard "file var"
expect secure no "file var (an image file has no secure discard)"
expect bytesWritten 0 "file var"
is_hole "$(start 4)" $(( $(start 4) + $(size 4) )) || fail "file: var is not a hole"
diff "$WORK/fsums1" <(fsum $(ranges_except 4)) >&2 || fail "file: erasing var changed another partition or the GPT"
[ "$(head -c $MiB "$file" | sha256sum)" = "$gpt_sum" ] || fail "file: the GPT changed"
pass "image file: unencrypted var punched out; secure erase not claimed"

###### Overwrite: a filesystem that cannot punch holes (ramfs), and a loop device over a file on it
mkdir "$WORK/ramfs"
mount -t ramfs -o size=80m none "$WORK/ramfs"
MOUNTS+=("$WORK/ramfs")
nd=$WORK/ramfs/disk.img
pattern "no discard here" $((64 * MiB)) >"$nd"
sync
off=$((8 * MiB)) len=$((40 * MiB))
"$TOOL" probe "$nd" "$off" "$len" >"$WORK/out"
expect method overwrite "probe on ramfs"
expect estimateUsec $(( len * 1000000 / 100000000 )) "probe on ramfs (40 MiB at the assumed 100 MB/s)"
erase "$nd" "$off" "$len"
expect method overwrite "file on ramfs"
expect dataDiscarded no "file on ramfs"
expect bytesWritten "$len" "file on ramfs"
field describe | grep -q "40 MiB written with zeroes" || fail "file on ramfs: the sentence does not say so: $(field describe)"
zeroes "$nd" "$off" "$len"
cmp -s -n "$off" "$nd" <(pattern "no discard here" $((64 * MiB))) || fail "file on ramfs: the range before changed"
cmp -s -i $((off + len)) "$nd" <(pattern "no discard here" $((64 * MiB))) || fail "file on ramfs: the range after changed"
pass "image file on ramfs (no hole punching): overwritten with zeroes, probe estimated the time"

pattern "no discard here" $((64 * MiB)) >"$nd"
sync
nl=$(losetup -f --show "$nd")
erase "$nl" "$off" "$len"
expect method overwrite "loop device over ramfs"
expect bytesWritten "$len" "loop device over ramfs"
zeroes "$nl" "$off" "$len"
cmp -s -n "$off" "$nl" <(pattern "no discard here" $((64 * MiB))) || fail "loop over ramfs: the range before changed"
cmp -s -i $((off + len)) "$nl" <(pattern "no discard here" $((64 * MiB))) || fail "loop over ramfs: the range after changed"
losetup -d "$nl"
nl=
pass "loop device that cannot discard: overwritten with zeroes"

echo "all erase checks passed"
