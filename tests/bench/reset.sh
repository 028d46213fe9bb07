#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Reset speed: the factory reset's crypto-erase of root and home (src/engine/erase.c, run through
# the erase command of tests/unit/test-erase.c: keyslots destroyed by libcryptsetup, the whole
# LUKS2 metadata — both header copies and the keyslot area, 16 MiB — overwritten with random
# bytes and flushed, the data area discarded) on a 16 GiB and a 512 GiB target, to show that its
# time does not grow with the disk. Each target is a sparse image file (truncate) with a GPT of
# ESP, root (a quarter) and home (the rest), LUKS2 headers formatted on the host by cryptsetup
# (pbkdf2, 1000 iterations, a key file, two keyslots) before every round.
#
# Two ways to reach the partitions, as a reset does on a disk and on an image file:
#   loop   a loop device over the file (losetup -P), erase through the disk with the partition
#          node; the data area's discard goes to the loop driver, which punches the backing file
#   file   the image file itself, partitions as byte ranges (no node): libcryptsetup gets a loop
#          device over the range, the discard is a hole punched into the file
# Against, on the same ranges and in the same rounds:
#   dd       dd if=/dev/urandom bs=1M oflag=direct conv=fsync writing the same header bytes
#            (what overwriting the metadata alone costs)
#   discard  blkdiscard -o DATA_OFFSET -l DATA_SIZE of the node (loop), fallocate --punch-hole of
#            the range (file): what discarding the data area alone costs
# Page cache dropped before each timed command when root. Prints the best of N rounds per size
# (all rounds in brackets), the ratios erase/dd and erase/discard, and the growth from the
# smallest to the largest size. A measurement: the discard of a sparse file's never-written
# range is cheap, as on an SSD whose blocks are unmapped; a disk full of data is discarded by its
# firmware in the background, and an HDD cannot discard at all (then the data stays, unreadable
# without the destroyed keys). Exits 1 only when the crypto-erase grows more than 4x while the
# target grows 32x (a time proportional to size would grow 32x).
#
#   tests/bench/reset.sh            needs root (loop devices), cryptsetup, sfdisk, blkdiscard
#   SIZES="16 512"      target sizes in GiB (sparse files in $TMPDIR, default /var/tmp)
#   ROUNDS=5            rounds per size
#   MODES="loop file"   which ways to reach the partitions
#   TEST_ERASE=build/tests/test-erase
set -eu -o pipefail
cd "$(dirname "$0")/../.."
export PATH="$PATH:/usr/sbin:/sbin"

TOOL=${TEST_ERASE:-build/tests/test-erase}
SIZES=${SIZES:-16 512}
ROUNDS=${ROUNDS:-5}
MODES=${MODES:-loop file}
[ "$(id -u)" = 0 ] || { echo "reset.sh needs root (loop devices)" >&2; exit 1; }
[ -x "$TOOL" ] || { echo "$TOOL is not built (ninja -C build)" >&2; exit 1; }
for t in cryptsetup sfdisk blkdiscard losetup bc; do
        command -v "$t" >/dev/null || { echo "$t is not installed" >&2; exit 1; }
done

WORK=$(mktemp -d "${TMPDIR:-/var/tmp}/imprint-bench-reset.XXXXXX")
LOOP=
trap '[ -z "$LOOP" ] || losetup -d "$LOOP" 2>/dev/null || true; rm -rf "$WORK"' EXIT
head -c 64 /dev/urandom >"$WORK/key"
head -c 64 /dev/urandom >"$WORK/key2"

drop_caches() {
        sync
        echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true
}
now() { date +%s.%N; }
# timed VAR CMD…: runs CMD after dropping the caches, adds its wall-clock seconds to array VAR
timed() {
        local -n arr=$1
        local t0 t1
        shift
        drop_caches
        t0=$(now)
        "$@"
        t1=$(now)
        arr+=("$(echo "$t1 - $t0" | bc -l)")
}
best() { printf '%s\n' "$@" | sort -g | head -n1; }
rounds() { printf '%.3f ' "$@" | sed 's/ $//'; }
ratio() { echo "$1 / $2" | bc -l; }

# part_range N: "START SIZE" in bytes of partition N of the loop device
part_range() {
        local b
        b=$(basename "${LOOP}p$1")
        echo "$(( $(cat "/sys/class/block/$b/start") * 512 )) $(( $(cat "/sys/class/block/$b/size") * 512 ))"
}

format_luks() {
        local p
        for p in 2 3; do
                blockdev --flushbufs "${LOOP}p$p"
                cryptsetup luksFormat -q --type luks2 --pbkdf pbkdf2 --pbkdf-force-iterations 1000 \
                        --key-file "$WORK/key" "${LOOP}p$p"
                cryptsetup luksAddKey -q --pbkdf pbkdf2 --pbkdf-force-iterations 1000 \
                        --key-file "$WORK/key" --new-keyfile "$WORK/key2" "${LOOP}p$p"
        done
        sync
}

# erase_one MODE N: the erase of partition N, checked: crypto-erase of 2 keyslots, data discarded
erase_one() {
        local mode=$1 p=$2 start size
        read -r start size < <(part_range "$p")
        if [ "$mode" = loop ]; then
                "$TOOL" erase "$LOOP" "$start" "$size" --node "${LOOP}p$p" >"$WORK/out" 2>"$WORK/err"
        else
                "$TOOL" erase "$IMG" "$start" "$size" >"$WORK/out" 2>"$WORK/err"
        fi || { cat "$WORK/err" >&2; exit 1; }
        grep -qx "method=crypto-erase" "$WORK/out" && grep -qx "keyslots=2" "$WORK/out" && grep -qx "dataDiscarded=yes" "$WORK/out" ||
                { cat "$WORK/out" >&2; echo "partition $p was not crypto-erased with its data discarded" >&2; exit 1; }
}

dd_header() {
        local mode=$1 p=$2 start size
        read -r start size < <(part_range "$p")
        if [ "$mode" = loop ]; then
                dd if=/dev/urandom of="${LOOP}p$p" bs=1M count=$((HDR / 1048576)) oflag=direct conv=fsync status=none
        else
                dd if=/dev/urandom of="$IMG" bs=1M count=$((HDR / 1048576)) seek="$start" oflag=seek_bytes conv=notrunc,fsync status=none
        fi
}

discard_data() {
        local mode=$1 p=$2 start size
        read -r start size < <(part_range "$p")
        if [ "$mode" = loop ]; then
                blkdiscard -o "$HDR" -l $((size - HDR)) "${LOOP}p$p"
        else
                fallocate --punch-hole -o $((start + HDR)) -l $((size - HDR)) "$IMG"
                sync "$IMG"
        fi
}

# both FUNCTION MODE: FUNCTION on root, then on home
both() {
        "$1" "$2" 2
        "$1" "$2" 3
}

declare -A RESULT
bench_size() {
        local gib=$1 mode round
        IMG=$WORK/disk-$gib.img
        rm -f "$IMG"
        truncate -s "${gib}G" "$IMG"
        sfdisk -q "$IMG" <<EOF
label: gpt
size=256M, type=uefi, name=esp
size=$(( gib * 1024 / 4 ))M, type=4f68bce3-e8cd-4db1-96e7-fbcaf984b709, name=root
type=933ac7e1-2eb4-4f13-b844-0e14e2aef915, name=home
EOF
        LOOP=$(losetup -fP --show "$IMG")
        partx -a "$LOOP" 2>/dev/null || true
        udevadm settle 2>/dev/null || true
        format_luks
        HDR=$(( $(cryptsetup luksDump "${LOOP}p2" | awk '/^[[:space:]]*offset:/ { print $2; exit }') ))
        local r_start r_size h_start h_size
        read -r r_start r_size < <(part_range 2)
        read -r h_start h_size < <(part_range 3)
        printf '%s GiB target: root %s, home %s, LUKS2 metadata %s each\n' "$gib" \
                "$(numfmt --to=iec-i --suffix=B "$r_size")" "$(numfmt --to=iec-i --suffix=B "$h_size")" \
                "$(numfmt --to=iec-i --suffix=B "$HDR")"

        for mode in $MODES; do
                local -a er=() eh=() et=() dd=() di=()
                for round in $(seq "$ROUNDS"); do
                        format_luks
                        timed er erase_one "$mode" 2
                        timed eh erase_one "$mode" 3
                        et+=("$(echo "${er[-1]} + ${eh[-1]}" | bc -l)")
                        timed dd both dd_header "$mode"
                        timed di both discard_data "$mode"
                done
                local b_er b_eh b_et b_dd b_di
                b_er=$(best "${er[@]}") b_eh=$(best "${eh[@]}") b_et=$(best "${et[@]}") b_dd=$(best "${dd[@]}") b_di=$(best "${di[@]}")
                printf '  %-4s erase root %7.3f s  home %7.3f s  both %7.3f s | dd headers %7.3f s | discard data %7.3f s | erase/dd %5.2f  erase/discard %5.2f\n' \
                        "$mode" "$b_er" "$b_eh" "$b_et" "$b_dd" "$b_di" "$(ratio "$b_et" "$b_dd")" "$(ratio "$b_et" "$b_di")"
                printf '       rounds: erase both %s | dd %s | discard %s\n' "$(rounds "${et[@]}")" "$(rounds "${dd[@]}")" "$(rounds "${di[@]}")"
                RESULT[$mode,$gib]=$b_et
        done
        losetup -d "$LOOP"
        LOOP=
        rm -f "$IMG"
}

echo "Crypto-erase of root and home (reset), best of $ROUNDS rounds, target files on $(df --output=fstype "$WORK" | tail -1),"
echo "against dd writing the same header bytes and blkdiscard / hole punching of the same data ranges"
for gib in $SIZES; do
        bench_size "$gib"
done

# shellcheck disable=SC2086 # the list of sizes is meant to split
set -- $SIZES
small=$1 large=${!#} status=0
if [ "$small" != "$large" ]; then
        for mode in $MODES; do
                g=$(ratio "${RESULT[$mode,$large]}" "${RESULT[$mode,$small]}")
                verdict="does not grow with the size"
                if [ "$(echo "$g > 4" | bc -l)" = 1 ]; then
                        verdict="GROWS with the size"
                        status=1
                fi
                printf 'growth %s GiB / %s GiB (%s): %.2fx for a %sx bigger target: the crypto-erase %s\n' \
                        "$large" "$small" "$mode" "$g" "$((large / small))" "$verdict"
        done
fi
exit "$status"
