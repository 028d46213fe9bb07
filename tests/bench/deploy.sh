#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Deploy throughput: imprint's block copy of an image's root partition against `dd bs=4M
# conv=fsync` and against `systemd-repart` with CopyBlocks=, same source, same kind of target (a
# file on this filesystem), page cache dropped before each run when root. Prints figures and
# ratios; it is a measurement, not a pass/fail test.
#
#   tests/bench/deploy.sh [ROOT_MIB]      (default 1024; ROUNDS=5; needs a built imprint in build/)
set -eu -o pipefail
cd "$(dirname "$0")/../.."
export PATH="$PATH:/usr/sbin:/sbin"

IMPRINT=${IMPRINT:-build/imprint}
ROOT_MIB=${1:-1024}
ROUNDS=${ROUNDS:-5}
WORK=$(mktemp -d "${TMPDIR:-/var/tmp}/imprint-bench.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

drop_caches() {
        sync
        [ "$(id -u)" = 0 ] && echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true
}

now() { date +%s.%N; }

# make_image KIND: a DDI whose root partition is ROOT_MIB big and either dense (filled with
# random data) or sparse (a filesystem with 64 MiB of data, the rest never written).
make_image() {
        local kind=$1 img=$WORK/$1.img
        FAKE_DDI_FILL=$kind bash tests/integration/make-fake-ddi.sh "$img" "$ROOT_MIB" >&2
        echo "$img"
}

# root_range IMG → "offset size" of its root partition, from sfdisk
root_range() {
        sfdisk --json "$1" | jq -r '.partitiontable as $t | $t.partitions[] | select(.type == "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709")
                | "\(.start * $t.sectorsize) \(.size * $t.sectorsize)"'
}

# best of N: on a shared virtual disk the slow runs measure the neighbours, not the tool.
best() { printf '%s\n' "$@" | sort -g | head -n1; }

bench_one() {
        local kind=$1 img off size t0 t1 rss round
        local -a dd_t imprint_t verify_t total_t repart_t
        img=$(make_image "$kind")
        read -r off size < <(root_range "$img")
        local mib=$((size / 1024 / 1024))
        rm -f "$img.sha256"
        mkdir -p "$WORK/repart.d"
        dd if="$img" of="$WORK/root.raw" bs=4M iflag=skip_bytes,count_bytes skip="$off" count="$size" conv=sparse status=none
        printf '[Partition]\nType=root\nCopyBlocks=%s\n' "$WORK/root.raw" >"$WORK/repart.d/root.conf"

        # Rounds alternate the three tools so that neither cache warmth nor disk state favours one.
        for round in $(seq "$ROUNDS"); do
                # dd: the root partition into a file at the offset imprint uses (1 GiB + 1 MiB).
                rm -f "$WORK/dd.img"; truncate -s 8G "$WORK/dd.img"
                drop_caches
                t0=$(now)
                dd if="$img" of="$WORK/dd.img" bs=4M iflag=skip_bytes,count_bytes oflag=seek_bytes skip="$off" count="$size" \
                        seek=$((1025 * 1024 * 1024)) conv=fsync,notrunc status=none
                t1=$(now)
                dd_t+=("$(echo "$t1 - $t0" | bc -l)")

                # imprint: its copy-root step (copy + fsync) from its own progress events; the
                # read-back check and the whole install are reported beside it.
                rm -f "$WORK/imprint.img"; truncate -s 8G "$WORK/imprint.img"
                drop_caches
                /usr/bin/time -f "%M" -o "$WORK/rss" "$IMPRINT" install --source "$img" --target "$WORK/imprint.img" --yes --json >"$WORK/events.json"
                rss=$(cat "$WORK/rss")
                imprint_t+=("$(jq -s '[.[] | select(.event == "end" and .id == "copy-root")][0].elapsedSeconds' "$WORK/events.json")")
                verify_t+=("$(jq -s '[.[] | select(.event == "end" and .id == "verify-root")][0].elapsedSeconds' "$WORK/events.json")")
                total_t+=("$(jq -s '[.[] | select(.event == "end") | .elapsedSeconds] | add' "$WORK/events.json")")

                # systemd-repart: one root partition with CopyBlocks= into a new image file.
                rm -f "$WORK/repart.img"
                drop_caches
                t0=$(now)
                systemd-repart --empty=create --size=8G --dry-run=no --definitions="$WORK/repart.d" "$WORK/repart.img" >/dev/null 2>&1 \
                        && sync -f "$WORK/repart.img" || echo "systemd-repart failed" >&2
                t1=$(now)
                repart_t+=("$(echo "$t1 - $t0" | bc -l)")
        done

        local dd_s imprint_copy imprint_verify imprint_total repart_s
        dd_s=$(best "${dd_t[@]}")
        imprint_copy=$(best "${imprint_t[@]}")
        imprint_verify=$(best "${verify_t[@]}")
        imprint_total=$(best "${total_t[@]}")
        repart_s=$(best "${repart_t[@]}")
        printf '%-6s %5d MiB | dd %5.2f s %6.0f MiB/s | repart %5.2f s %6.0f MiB/s | imprint copy %5.2f s %6.0f MiB/s = %.2fx dd, %.2fx repart | verify %5.2f s | whole install %5.2f s | peak RSS %d KiB\n' \
                "$kind" "$mib" "$dd_s" "$(echo "$mib / $dd_s" | bc -l)" "$repart_s" "$(echo "$mib / $repart_s" | bc -l)" \
                "$imprint_copy" "$(echo "$mib / $imprint_copy" | bc -l)" \
                "$(echo "$dd_s / $imprint_copy" | bc -l)" "$(echo "$repart_s / $imprint_copy" | bc -l)" \
                "$imprint_verify" "$imprint_total" "$rss"
        echo "       (each the best of $ROUNDS rounds; dd: ${dd_t[*]}; imprint: ${imprint_t[*]}; repart: ${repart_t[*]})"
}

echo "Deploy throughput, root partition of $ROOT_MIB MiB, target: a file on $(df --output=fstype "$WORK" | tail -1)"
echo "(ratios > 1 mean imprint is faster; copy includes fsync; verify re-reads what was written)"
bench_one dense
bench_one sparse
