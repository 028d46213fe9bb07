#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Streaming install speed (issue 16 part 4): imprint installing a compressed image (.raw.zst,
# .raw.xz), from a local file and from a local stock nginx over HTTP, against the pipelines a line
# would otherwise use on the same image and target:
#
#   zstdcat IMG | dd of=T bs=4M iflag=fullblock conv=notrunc,fsync        (xzcat for .raw.xz)
#   curl -s http://127.0.0.1:PORT/IMG | zstdcat | dd of=T bs=4M …
#
# Two images: "dense", the usr image of tests/integration/test-install-usr.sh (make-fake-ddi.sh
# FAKE_DDI_KIND=usr: ESP, usr squashfs, usr-verity, usr-verity-sig) with USR_MIB of random data
# in its usr filesystem (what a compressed squashfs holds looks random to zstd); and "sparse",
# the same image with its usr partition grown to SPARSE_USR_MIB, zeros after the filesystem (as
# systemd-repart's SizeMinBytes= pads it), the GPT rewritten with sfdisk. Each compressed with
# stock zstd -T0 and xz -T2, with SHA256SUMS and SHA256SUMS.sig (openssl, an EC key) beside it,
# as a line publishes it. Targets: a sparse file of TARGET_GIB, and a loop device over such a file
# (root: fresh for each run).
#
# For imprint: its "stream" step (read, decompress, SHA256 of the published bytes, usr partition
# written in place with zero runs not written) as the install's report gives it: durationSeconds
# and cpuSeconds (imprint's user+sys CPU during the step, all threads and children); and the
# whole install (wall clock and user+sys CPU of the process and its children, /usr/bin/time),
# which also partitions, copies the small partitions, reads usr back, formats root and installs
# the boot loader. For the pipelines: wall clock and user+sys of the whole pipeline
# (/usr/bin/time on bash -c: curl, the decompressor and dd). The pipelines write the whole image
# and fsync it, but check nothing; nginx's own CPU counts for neither. Page caches are dropped
# before each run (root); the tools take turns going first. Prints the best of ROUNDS (wall and
# CPU each the lowest), all rounds in brackets, and the ratios imprint ÷ pipeline (< 1: imprint
# is faster or cheaper). A measurement, not a pass/fail test.
#
#   tests/bench/bench-stream.sh
#   ROUNDS=3             rounds
#   IMAGES="dense sparse" FORMATS="zst xz" SOURCES="file http" TARGETS="file loop"
#   USR_MIB=512          random data in the usr filesystem (4 is test-install-usr.sh's image)
#   SPARSE_USR_MIB=2048  the sparse image's usr partition
#   TARGET_GIB=8         each target's size
#   SPARSE_DD=1          also time the pipelines with dd conv=sparse on file targets (a fair rival
#                        there: a new file holds zeros; on a used disk it would leave old data);
#                        empty: not
#   IMPRINT=build/imprint
#   KEEP=DIR             keep the images, SHA256SUMS and key in DIR (made if missing; reused when
#                        they are there: building and compressing takes a minute or two)
set -eu -o pipefail
cd "$(dirname "$0")/../.."
export PATH="$PATH:/usr/sbin:/sbin" MTOOLS_SKIP_CHECK=1

IMPRINT=${IMPRINT:-build/imprint}
case $IMPRINT in /*) ;; *) IMPRINT=$PWD/$IMPRINT ;; esac
ROUNDS=${ROUNDS:-3}
IMAGES=${IMAGES:-dense sparse}
FORMATS=${FORMATS:-zst xz}
SOURCES=${SOURCES:-file http}
TARGETS=${TARGETS:-file loop}
USR_MIB=${USR_MIB:-512}
SPARSE_USR_MIB=${SPARSE_USR_MIB:-2048}
TARGET_GIB=${TARGET_GIB:-8}
SPARSE_DD=${SPARSE_DD-1}

for t in zstd xz curl nginx jq sfdisk mksquashfs veritysetup objcopy mcopy bc python3; do
        command -v "$t" >/dev/null || { echo "bench-stream: $t is not installed (scripts/deps installs it)" >&2; exit 1; }
done
[ -x /usr/bin/time ] || { echo "bench-stream: /usr/bin/time is not installed (package time)" >&2; exit 1; }
[ -x "$IMPRINT" ] || { echo "bench-stream: no imprint at $IMPRINT (build it, or set IMPRINT=)" >&2; exit 1; }
if [ "$(id -u)" != 0 ]; then
        echo "bench-stream: not root: no loop device target, page caches not dropped" >&2
        TARGETS=${TARGETS//loop/}
fi

WORK=$(mktemp -d "${TMPDIR:-/var/tmp}/imprint-bench-stream.XXXXXX")
LOOP=
# shellcheck source=../e2e/lib-http.sh
. tests/e2e/lib-http.sh
cleanup() {
        http_stop 2>/dev/null || true
        [ -z "$LOOP" ] || losetup -d "$LOOP" 2>/dev/null || true
        rm -rf "$WORK"
}
trap cleanup EXIT

drop_caches() {
        sync
        [ "$(id -u)" = 0 ] && echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true
}

best() { printf '%s\n' "$@" | sort -g | head -n1; }
rounds() { printf '%.2f ' "$@" | sed 's/ $//'; }
mib() { echo "$(( $1 / 1048576 )) MiB"; }

# ---- the images ------------------------------------------------------------------------------

# make_dense OUT: test-install-usr.sh's usr image with USR_MIB of random data in usr. The image
# builder's copy in $WORK gets the size (the tests' 4 MiB is too small to time a stream).
make_dense() {
        local gen=$WORK/gen
        mkdir -p "$gen"
        cp tests/integration/make-fake-ddi.sh tests/integration/make-fake-usr.sh "$gen/"
        grep -q 'head -c $((4 \* 1024 \* 1024)) /dev/urandom >"$u/lib/fake-data"' "$gen/make-fake-usr.sh" \
                || { echo "bench-stream: make-fake-usr.sh no longer writes lib/fake-data as this bench expects" >&2; exit 1; }
        sed -i "s|head -c \$((4 \\* 1024 \\* 1024)) /dev/urandom|head -c \$(($USR_MIB * 1024 * 1024)) /dev/urandom|" "$gen/make-fake-usr.sh"
        FAKE_DDI_KIND=usr bash "$gen/make-fake-ddi.sh" "$1" >"$WORK/make.log" 2>&1 \
                || { cat "$WORK/make.log" >&2; exit 1; }
        rm -f "$1.sha256" "$1.cert.pem"
}

# make_sparse DENSE OUT: the same partitions, usr grown to SPARSE_USR_MIB (zeros after the
# filesystem); the partitions after it move up, keeping their types, UUIDs, names and flags.
make_sparse() {
        local in=$1 out=$2 usr_sectors total
        sfdisk -d "$in" >"$WORK/dense.sfdisk"
        usr_sectors=$(( SPARSE_USR_MIB * 2048 ))
        # The usr partition (type usr-x86-64) gets the new size; the ones after it lose their
        # start (sfdisk places them); last-lba and device go (sfdisk derives them).
        awk -v n="$usr_sectors" '
                /^(device|last-lba):/ { next }
                /type=8484680C-9521-48C6-9C11-B0720656F69E/ { sub(/size= *[0-9]+/, "size=" n); after = 1; print; next }
                after && /start=/ { sub(/start= *[0-9]+, */, "") }
                { print }' "$WORK/dense.sfdisk" >"$WORK/sparse.sfdisk"
        total=$(( $(stat -c %s "$in") + (usr_sectors - $(sfdisk --json "$in" | jq '.partitiontable.partitions[1].size')) * 512 ))
        rm -f "$out"
        truncate -s "$total" "$out"
        sfdisk -q "$out" <"$WORK/sparse.sfdisk"
        local i s_in n_in s_out
        for i in 0 1 2 3; do
                s_in=$(sfdisk --json "$in" | jq ".partitiontable.partitions[$i].start")
                n_in=$(sfdisk --json "$in" | jq ".partitiontable.partitions[$i].size")
                s_out=$(sfdisk --json "$out" | jq ".partitiontable.partitions[$i].start")
                dd if="$in" of="$out" bs=1M iflag=skip_bytes,count_bytes oflag=seek_bytes conv=notrunc,sparse status=none \
                        skip=$((s_in * 512)) seek=$((s_out * 512)) count=$((n_in * 512))
        done
}

# publish KIND RAW: DIR/KIND/fakeusr_7.raw.{zst,xz} with SHA256SUMS and SHA256SUMS.sig.
publish() {
        local kind=$1 raw=$2 dir=$SRV/$1
        mkdir -p "$dir"
        [[ " $FORMATS " == *" zst "* ]] && zstd -q -T0 -f "$raw" -o "$dir/fakeusr_7.raw.zst"
        [[ " $FORMATS " == *" xz "* ]] && xz -T2 -c "$raw" >"$dir/fakeusr_7.raw.xz"
        sign_sums "$dir" ec
        cp "$SIGN_PUBKEY" "$dir.pub.pem"
}

DATA=${KEEP:-$WORK/data}
mkdir -p "$DATA"
SRV=$DATA/srv
mkdir -p "$SRV"
if [ ! -s "$DATA/dense.raw" ]; then
        echo "building the dense usr image ($USR_MIB MiB of data in usr)…" >&2
        make_dense "$DATA/dense.raw"
fi
for kind in $IMAGES; do
        raw=$DATA/$kind.raw
        if [ "$kind" = sparse ] && [ ! -s "$raw" ]; then
                echo "building the sparse usr image (usr partition $SPARSE_USR_MIB MiB)…" >&2
                make_sparse "$DATA/dense.raw" "$raw"
        fi
        if [ ! -s "$SRV/$kind/SHA256SUMS" ] || [ ! -s "$SRV/$kind.pub.pem" ]; then
                echo "compressing and signing $kind…" >&2
                publish "$kind" "$raw"
        fi
done

http_serve "$SRV" >&2
URL=http://127.0.0.1:$HTTP_PORT

# ---- the runs --------------------------------------------------------------------------------

# new_target KIND: a fresh TARGET_GIB file, or a loop device over one; sets TGT.
# (A loop device that vanished, detached by someone else on a shared machine, is not an error.)
new_target() {
        [ -z "$LOOP" ] || losetup -d "$LOOP" 2>/dev/null || true
        LOOP=
        rm -f "$WORK/target.img"
        truncate -s "${TARGET_GIB}G" "$WORK/target.img"
        if [ "$1" = loop ]; then
                LOOP=$(losetup -fP --show "$WORK/target.img") || LOOP=$(losetup -fP --show "$WORK/target.img")
                TGT=$LOOP
        else
                TGT=$WORK/target.img
        fi
}

# run_timed OUT CMD: runs CMD under /usr/bin/time; sets WALL and CPU (user+sys, children
# included); the command's stdout goes to OUT, stderr to $WORK/stderr. Returns its exit status.
run_timed() {
        local out=$1 rc=0 e u s
        shift
        /usr/bin/time -f '%e %U %S' -o "$WORK/time" "$@" >"$out" 2>"$WORK/stderr" || rc=$?
        read -r e u s <"$WORK/time" || { echo "no timing: $(cat "$WORK/time")" >&2; return 1; }
        # time writes "Command exited with non-zero status N" first when the command fails.
        [ "$rc" = 0 ] || read -r e u s < <(tail -n1 "$WORK/time")
        WALL=$e
        CPU=$(echo "$u + $s" | bc -l)
        return "$rc"
}

declare -A R=()   # "image fmt src tgt what" → list of values over the rounds
declare -A NOTE=() # the same key → why imprint did not run to the end
declare -A PHASES=()

add() { R["$1"]+=" $2"; }

# run_pipeline IMG FMT SRC TGT [sparse]: "sparse" adds dd's conv=sparse (zero blocks skipped by
# seeking: right only on a target known to hold zeros, such as a new file, never on a used disk).
run_pipeline() {
        local img=$1 fmt=$2 src=$3 tgt=$4 cat=zstdcat from conv=notrunc,fsync what=pipe
        [ "$fmt" = xz ] && cat=xzcat
        if [ "${5:-}" = sparse ]; then
                conv+=,sparse
                what=pipes
        fi
        if [ "$src" = http ]; then
                from="curl -sf $URL/$img/fakeusr_7.raw.$fmt | $cat"
        else
                from="$cat $SRV/$img/fakeusr_7.raw.$fmt"
        fi
        new_target "$tgt"
        drop_caches
        if run_timed /dev/null bash -c "set -o pipefail; $from | dd of=$TGT bs=4M iflag=fullblock conv=$conv status=none"; then
                add "$img $fmt $src $tgt $what-wall" "$WALL"
                add "$img $fmt $src $tgt $what-cpu" "$CPU"
        else
                echo "the pipeline failed ($img $fmt $src $tgt $conv): $(tail -n3 "$WORK/stderr")" >&2
        fi
}

run_imprint() {
        local img=$1 fmt=$2 src=$3 tgt=$4 from rep k=$1\ $2\ $3\ $4 ok=1 s_wall s_cpu msg
        if [ "$src" = http ]; then
                from=$URL/$img/fakeusr_7.raw.$fmt
        else
                from=$SRV/$img/fakeusr_7.raw.$fmt
        fi
        new_target "$tgt"
        rm -rf "$WORK/report"
        mkdir "$WORK/report"
        jq -n --arg s "$from" --arg t "$TGT" --arg k "$SRV/$img.pub.pem" --arg r "$WORK/report" \
                '{source: $s, target: $t, imageKey: $k, encrypt: false, noVariables: true, seed: "bench",
                  report: {directory: $r}}' >"$WORK/config.json"
        drop_caches
        run_timed "$WORK/events.json" "$IMPRINT" unattended --config "$WORK/config.json" || ok=
        rep=$(find "$WORK/report" -name '*.json' | head -n1)
        if [ -z "$ok" ]; then
                msg=$(jq -r -s '[.[] | select(.event == "result" or .event == "failed") | .message // empty] | last // empty' "$WORK/events.json" 2>/dev/null || true)
                NOTE[$k]="failed: ${msg:-$(tail -n1 "$WORK/stderr")}"
                return 0
        fi
        add "$k whole-wall" "$WALL"
        add "$k whole-cpu" "$CPU"
        # The stream step as the report has it; the progress stream's end event as a fallback.
        s_wall=$( { [ -n "$rep" ] && jq -r '.steps[] | select(.id == "stream") | .durationSeconds // empty' "$rep"; } || true)
        s_cpu=$( { [ -n "$rep" ] && jq -r '.steps[] | select(.id == "stream") | .cpuSeconds // empty' "$rep"; } || true)
        [ -n "$s_wall" ] || s_wall=$(jq -r 'select(.event == "end" and .id == "stream") | .elapsedSeconds' "$WORK/events.json")
        [ -n "$s_cpu" ] || s_cpu=$(jq -r 'select(.event == "end" and .id == "stream") | .cpuSeconds // empty' "$WORK/events.json")
        if [ -z "$s_wall" ]; then
                NOTE[$k]="no stream step in the report (steps: $(jq -r -s '[.[] | select(.event == "end") | .id] | join(" ")' "$WORK/events.json"))"
        else
                add "$k stream-wall" "$s_wall"
                [ -z "$s_cpu" ] || add "$k stream-cpu" "$s_cpu"
        fi
        PHASES[$k]=$(jq -r -s '[.[] | select(.event == "end") | "\(.id) \(.elapsedSeconds * 100 | round / 100)"] | join(", ")' "$WORK/events.json")
}

for round in $(seq "$ROUNDS"); do
        echo "round $round of $ROUNDS…" >&2
        for img in $IMAGES; do
                for fmt in $FORMATS; do
                        for src in $SOURCES; do
                                for tgt in $TARGETS; do
                                        if [ $((round % 2)) = 1 ]; then
                                                run_pipeline "$img" "$fmt" "$src" "$tgt"
                                                run_imprint "$img" "$fmt" "$src" "$tgt"
                                        else
                                                run_imprint "$img" "$fmt" "$src" "$tgt"
                                                run_pipeline "$img" "$fmt" "$src" "$tgt"
                                        fi
                                        if [ "$tgt" = file ] && [ -n "$SPARSE_DD" ]; then
                                                run_pipeline "$img" "$fmt" "$src" "$tgt" sparse
                                        fi
                                done
                        done
                done
        done
done

# ---- the table -------------------------------------------------------------------------------

val() { # KEY → best of its rounds, or "-"
        # shellcheck disable=SC2086 # the list is meant to split
        if [ -n "${R[$1]:-}" ]; then best ${R[$1]}; else echo -; fi
}
ratio() { # A B → A ÷ B, or "-"
        if [ "$1" = - ] || [ "$2" = - ]; then echo -; else printf '%.2f' "$(echo "$1 / $2" | bc -l)"; fi
}
num() { if [ "$1" = - ]; then echo -; else printf '%.2f' "$1"; fi; }

echo
echo "Streaming install against decompress | dd, best of $ROUNDS rounds, targets on $(df --output=fstype "$WORK" | tail -1) ($(nproc) CPUs)"
for img in $IMAGES; do
        raw=$DATA/$img.raw
        usr=$(sfdisk --json "$raw" | jq '.partitiontable.partitions[1].size * 512')
        printf '%-7s %s image (%s allocated), usr partition %s' "$img" "$(mib "$(stat -c %s "$raw")")" \
                "$(mib "$(( $(stat -c %b "$raw") * 512 ))")" "$(mib "$usr")"
        for fmt in $FORMATS; do
                printf ', .raw.%s %s' "$fmt" "$(mib "$(stat -c %s "$SRV/$img/fakeusr_7.raw.$fmt")")"
        done
        echo
done
echo "Times in seconds (wall) and CPU seconds (user+sys). ratio = imprint ÷ pipeline: < 1 means imprint is faster (or cheaper)."
echo "pipeline = [curl -sf URL |] zstdcat/xzcat | dd bs=4M conv=fsync (whole image, nothing checked);"
echo "stream = imprint's stream step (decompress, SHA256, usr written in place, zero runs skipped);"
echo "install = imprint's whole install (plus partitioning, small partitions, usr read back, root mkfs, boot)."
printf '\n%-7s %-4s %-5s %-5s | %8s %7s | %8s %7s %6s %6s | %8s %7s %6s\n' image fmt from target \
        pipe-s cpu-s stream-s cpu-s ratio cpu-r install-s cpu-s ratio
for img in $IMAGES; do
        for fmt in $FORMATS; do
                for src in $SOURCES; do
                        for tgt in $TARGETS; do
                                k="$img $fmt $src $tgt"
                                pw=$(val "$k pipe-wall"); pc=$(val "$k pipe-cpu")
                                sw=$(val "$k stream-wall"); sc=$(val "$k stream-cpu")
                                ww=$(val "$k whole-wall"); wc=$(val "$k whole-cpu")
                                printf '%-7s %-4s %-5s %-5s | %8s %7s | %8s %7s %6s %6s | %8s %7s %6s\n' "$img" "$fmt" "$src" "$tgt" \
                                        "$(num "$pw")" "$(num "$pc")" "$(num "$sw")" "$(num "$sc")" "$(ratio "$sw" "$pw")" "$(ratio "$sc" "$pc")" \
                                        "$(num "$ww")" "$(num "$wc")" "$(ratio "$ww" "$pw")"
                        done
                done
        done
done

if [ -n "$SPARSE_DD" ] && [[ " $TARGETS " == *" file "* ]]; then
        echo
        echo "File targets against dd conv=sparse (zero blocks seeked over; right for a new file only):"
        printf '%-7s %-4s %-5s | %8s %7s | %8s %6s | %9s %6s\n' image fmt from pipe-s cpu-s stream-s ratio install-s ratio
        for img in $IMAGES; do for fmt in $FORMATS; do for src in $SOURCES; do
                k="$img $fmt $src file"
                pw=$(val "$k pipes-wall"); pc=$(val "$k pipes-cpu"); sw=$(val "$k stream-wall"); ww=$(val "$k whole-wall")
                printf '%-7s %-4s %-5s | %8s %7s | %8s %6s | %9s %6s\n' "$img" "$fmt" "$src" "$(num "$pw")" "$(num "$pc")" \
                        "$(num "$sw")" "$(ratio "$sw" "$pw")" "$(num "$ww")" "$(ratio "$ww" "$pw")"
        done; done; done
fi

echo
echo "Slower than the pipeline (stream ratio > 1), and runs that did not finish:"
slower=
for k in "${!NOTE[@]}"; do
        echo "  $k: ${NOTE[$k]}"
        slower=1
done
for img in $IMAGES; do for fmt in $FORMATS; do for src in $SOURCES; do for tgt in $TARGETS; do
        k="$img $fmt $src $tgt"
        for w in pipe pipes; do
                r=$(ratio "$(val "$k stream-wall")" "$(val "$k $w-wall")")
                if [ "$r" != - ] && [ "$(echo "$r > 1" | bc -l)" = 1 ]; then
                        echo "  $k: imprint's stream step takes ${r}x the time of the pipeline$([ $w = pipes ] && echo " with dd conv=sparse")"
                        slower=1
                fi
        done
done; done; done; done
[ -n "$slower" ] || echo "  none"

echo
echo "All rounds (wall seconds):"
for k in $(printf '%s\n' "${!R[@]}" | sed -E 's/ (pipes?|stream|whole)-(wall|cpu)$//' | sort -u | tr ' ' '/'); do
        k=${k//\// }
        line="  $k:"
        for w in pipe pipes stream whole; do
                # shellcheck disable=SC2086
                [ -z "${R[$k $w-wall]:-}" ] || line+=" $w ($(rounds ${R[$k $w-wall]}))"
        done
        echo "$line"
done
echo
echo "imprint's steps in the last round (seconds):"
for k in $(printf '%s\n' "${!PHASES[@]}" | sort | tr ' ' '/'); do
        echo "  ${k//\// }: ${PHASES[${k//\// }]}"
done
