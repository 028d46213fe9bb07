#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Deploy speed: imprint's whole verified install of a DDI into an image file (partitioning,
# filesystems and their checks, block copy, read-back of every partition, boot loader, flush),
# against a plain `dd bs=4M conv=fsync` of the same image and `cp --sparse=always` + fsync, on a
# sparse image and a dense one. Page cache dropped before each run when root; the tools take
# turns in each round. Prints the best of N rounds, ratios against dd (> 1: imprint is faster)
# and imprint's phases from its --json progress stream. A measurement, not a pass/fail test:
# single rounds on a shared machine swing by ±50%, so compare the best-of-N of one run only.
#
#   tests/bench/deploy.sh [ROOT_MIB]      (default 2048: a 2.6 GB image)
#   ROUNDS=7            rounds per image
#   IMAGES="sparse dense"
#                       which generated images (tests/integration/make-fake-ddi.sh): "sparse" is
#                       a filesystem with ~150 MB of data, the rest never written; "dense" fills
#                       the root with random data
#   IMAGE=path.raw      bench an existing DDI (e.g. the cached test image) instead
#   CHECKSUM=1          keep the image's .sha256, so imprint also verifies the source (dd and cp
#                       do not; off by default to compare like with like)
#   IMPRINT=build/imprint
#   IMPRINT_BASE=path   another build of imprint (e.g. main's) to run in the same rounds, for a
#                       before/after comparison that the machine's noise does not swamp (the two
#                       take turns going first)
#   REPART=1            also time systemd-repart writing the root partition with CopyBlocks=
#                       (no read-back), beside imprint's copy-root step
set -eu -o pipefail
cd "$(dirname "$0")/../.."
export PATH="$PATH:/usr/sbin:/sbin"

IMPRINT=${IMPRINT:-build/imprint}
ROOT_MIB=${1:-2048}
ROUNDS=${ROUNDS:-7}
IMAGES=${IMAGES:-sparse dense}
WORK=$(mktemp -d "${TMPDIR:-/var/tmp}/imprint-bench.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

drop_caches() {
        sync
        [ "$(id -u)" = 0 ] && echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true
}

now() { date +%s.%N; }
elapsed() { echo "$2 - $1" | bc -l; }

# best of N: on a shared virtual disk the slow runs measure the neighbours, not the tool.
best() { printf '%s\n' "$@" | sort -g | head -n1; }
rounds() { printf '%.2f ' "$@" | sed 's/ $//'; }

# make_image KIND: a DDI whose root partition is ROOT_MIB big, dense or sparse.
make_image() {
        local kind=$1 img=$WORK/$1.img
        FAKE_DDI_FILL=$kind bash tests/integration/make-fake-ddi.sh "$img" "$ROOT_MIB" >&2
        echo "$img"
}

# run_imprint BINARY IMAGE TIMES OTHER PHASES: one whole install into a fresh sparse file as big
# as the image rounded up to the next GiB plus one; appends its wall-clock time to the array
# TIMES, the time outside its steps to OTHER, and each step's time to PHASES[id] (in step order,
# PHASES[_order] lists the ids).
run_imprint() {
        local bin=$1 img=$2 t0 t1 sum id t
        local -n times=$3 other=$4 ph=$5

        rm -f "$WORK/imprint.img"
        truncate -s $(( ($(stat -Lc %s "$img") / 1073741824 + 2) * 1073741824 )) "$WORK/imprint.img"
        drop_caches
        t0=$(now)
        /usr/bin/time -f "%M" -o "$WORK/rss" "$bin" install --source "$img" --target "$WORK/imprint.img" --yes --json >"$WORK/events.json"
        t1=$(now)
        times+=("$(elapsed "$t0" "$t1")")
        sum=$(jq -s '[.[] | select(.event == "end") | .elapsedSeconds] | add' "$WORK/events.json")
        other+=("$(echo "${times[-1]} - $sum" | bc -l)")
        while read -r id t; do
                [ -n "${ph[$id]+x}" ] || ph["_order"]+=" $id"
                ph[$id]+=" $t"
        done < <(jq -r 'select(.event == "end") | "\(.id) \(.elapsedSeconds)"' "$WORK/events.json")
        rm -f "$WORK/imprint.img"
}

# print_phases PHASES OTHER
print_phases() {
        local -n ph=$1 other=$2
        local id
        for id in ${ph["_order"]}; do
                # shellcheck disable=SC2086 # the list of times is meant to split
                printf '    %-18s %6.2f s   (%s)\n' "$id" "$(best ${ph[$id]})" "$(rounds ${ph[$id]})"
        done
        printf '    %-18s %6.2f s   (%s)\n' "outside the steps" "$(best "${other[@]}")" "$(rounds "${other[@]}")"
}

bench_one() {
        local name=$1 img=$2 t0 t1 rss=0
        # shellcheck disable=SC2034 # filled by run_imprint through namerefs
        local -a dd_t cp_t imprint_t base_t other_t base_other_t repart_t
        # shellcheck disable=SC2034
        local -A phase_t=() base_phase_t=()

        [ -n "${CHECKSUM:-}" ] || rm -f "$img.sha256"
        if [ -n "${REPART:-}" ]; then
                local off size
                read -r off size < <(sfdisk --json "$img" | jq -r '.partitiontable as $t | $t.partitions[]
                        | select(.type == "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709") | "\(.start * $t.sectorsize) \(.size * $t.sectorsize)"')
                mkdir -p "$WORK/repart.d"
                dd if="$img" of="$WORK/root.raw" bs=4M iflag=skip_bytes,count_bytes skip="$off" count="$size" conv=sparse status=none
                printf '[Partition]\nType=root\nCopyBlocks=%s\n' "$WORK/root.raw" >"$WORK/repart.d/root.conf"
        fi

        for round in $(seq "$ROUNDS"); do
                # dd: the whole image, as one would write it to a disk.
                rm -f "$WORK/dd.img"
                drop_caches
                t0=$(now)
                dd if="$img" of="$WORK/dd.img" bs=4M conv=fsync status=none
                t1=$(now)
                dd_t+=("$(elapsed "$t0" "$t1")")
                rm -f "$WORK/dd.img"

                # cp: sparse, then flushed (what cp leaves in the page cache is not on disk yet).
                drop_caches
                t0=$(now)
                cp --sparse=always "$img" "$WORK/cp.img"
                sync "$WORK/cp.img"
                t1=$(now)
                cp_t+=("$(elapsed "$t0" "$t1")")
                rm -f "$WORK/cp.img"

                # imprint: the whole verified install, from start to exit; a baseline build
                # goes first in odd rounds.
                if [ -n "${IMPRINT_BASE:-}" ] && [ $((round % 2)) = 1 ]; then
                        run_imprint "$IMPRINT_BASE" "$img" base_t base_other_t base_phase_t
                fi
                run_imprint "$IMPRINT" "$img" imprint_t other_t phase_t
                rss=$(( $(cat "$WORK/rss") > rss ? $(cat "$WORK/rss") : rss ))
                if [ -n "${IMPRINT_BASE:-}" ] && [ $((round % 2)) = 0 ]; then
                        run_imprint "$IMPRINT_BASE" "$img" base_t base_other_t base_phase_t
                fi

                if [ -n "${REPART:-}" ]; then
                        rm -f "$WORK/repart.img"
                        drop_caches
                        t0=$(now)
                        systemd-repart --empty=create --size=$(( size / 1048576 + 64 ))M --dry-run=no \
                                --definitions="$WORK/repart.d" "$WORK/repart.img" >/dev/null 2>&1 \
                                && sync "$WORK/repart.img" || echo "systemd-repart failed" >&2
                        t1=$(now)
                        repart_t+=("$(elapsed "$t0" "$t1")")
                        rm -f "$WORK/repart.img"
                fi
        done

        local dd_s cp_s im_s
        dd_s=$(best "${dd_t[@]}")
        cp_s=$(best "${cp_t[@]}")
        im_s=$(best "${imprint_t[@]}")
        printf '%-7s %s, %s of data\n' "$name" "$(numfmt --to=iec-i --suffix=B "$(stat -Lc %s "$img")")" \
                "$(numfmt --to=iec-i --suffix=B "$(( $(stat -Lc %b "$img") * 512 ))")"
        printf '  imprint install (verified) %6.2f s   = %.2fx dd\n' "$im_s" "$(echo "$dd_s / $im_s" | bc -l)"
        printf '  dd bs=4M conv=fsync        %6.2f s\n' "$dd_s"
        printf '  cp --sparse=always + fsync %6.2f s   = %.2fx dd\n' "$cp_s" "$(echo "$dd_s / $cp_s" | bc -l)"
        echo "  imprint's phases, each the best of its rounds (all rounds in brackets):"
        print_phases phase_t other_t
        echo "  rounds: imprint $(rounds "${imprint_t[@]}")"
        echo "          dd      $(rounds "${dd_t[@]}")"
        echo "          cp      $(rounds "${cp_t[@]}")"
        echo "  imprint peak RSS $rss KiB"
        if [ -n "${REPART:-}" ]; then
                # shellcheck disable=SC2086
                printf '  systemd-repart CopyBlocks= of the root %.2f s, imprint copy-root %.2f s (no read-back in either; rounds %s)\n' \
                        "$(best "${repart_t[@]}")" "$(best ${phase_t[copy-root]})" "$(rounds "${repart_t[@]}")"
        fi
        if [ -n "${IMPRINT_BASE:-}" ]; then
                local base_s
                base_s=$(best "${base_t[@]}")
                printf '  baseline %s: %.2f s = %.2fx dd (rounds %s); its phases:\n' "$IMPRINT_BASE" "$base_s" \
                        "$(echo "$dd_s / $base_s" | bc -l)" "$(rounds "${base_t[@]}")"
                print_phases base_phase_t base_other_t
        fi
}

echo "Whole verified install against dd and cp, best of $ROUNDS rounds, target: a file on $(df --output=fstype "$WORK" | tail -1)"
echo "(ratios > 1 mean faster than dd; imprint's time is the whole process, start to exit)"
[ -n "${CHECKSUM:-}" ] || echo "(the image's .sha256 is hidden from imprint: set CHECKSUM=1 to include its verify-image step)"
if [ -n "${IMAGE:-}" ]; then
        # A sparse copy of it, beside which no checksum file lies (unless CHECKSUM=1).
        cp --sparse=always "$IMAGE" "$WORK/image.raw"
        if [ -n "${CHECKSUM:-}" ]; then
                (cd "$WORK" && sha256sum image.raw >image.raw.sha256)
        fi
        bench_one "$(basename "$IMAGE")" "$WORK/image.raw"
else
        for kind in $IMAGES; do
                bench_one "$kind" "$(make_image "$kind")"
        done
fi
