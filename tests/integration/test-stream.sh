#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Streamed images (src/engine/stream.c, issue 16 part 4): a usr image published compressed
# (.raw.zst, .raw.xz) or served over HTTP is installed in one pass, and the result is the same as
# the install of the plain .raw: stock sfdisk reads the same table, cmp finds the A slot
# bit-identical, mtools finds the same UKI. Over HTTP (tests/http-server.py, Range support) with
# SHA256SUMS signed by the line's key (openssl EC, and gpg): a server that drops the connection
# twice mid-stream is resumed from where it stopped (its log shows the Range requests; it sends
# about the file once, not again from zero). Refused before anything is written (the target file
# stays without a single allocated block): a URL without a key, a bad signature, another key,
# an image SHA256SUMS does not list, a 404. An image that does not match the signed digest is
# found at the end of the stream: exit 7, and the target has no partition table.
. "$(dirname "$0")/lib.sh"
need_root
need_tool jq
need_tool zstd
need_tool xz
need_tool sfdisk
need_tool mdir
need_tool openssl
need_tool python3
need_tool gpg

SERVER=${SOURCE_ROOT:-$(dirname "$0")/../..}/tests/http-server.py

src=$WORK/fakeusr_7.raw
FAKE_DDI_KIND=usr bash "$(dirname "$0")/make-fake-ddi.sh" "$src" >"$WORK/make.log" 2>&1 \
        || { cat "$WORK/make.log" >&2; fail "make-fake-ddi.sh cannot make the usr image"; }
# Realistic padding: repart's SizeMinBytes leaves the usr partition mostly empty; here the image
# has a 512 MiB ESP that is mostly zeros too. The streamed install must keep those as holes.
mkdir -p "$WORK/pub"
zstd -q -T0 "$src" -o "$WORK/pub/fakeusr_7.raw.zst"
xz -T2 -c "$src" >"$WORK/pub/fakeusr_7.raw.xz"
(cd "$WORK/pub" && sha256sum fakeusr_7.raw.zst fakeusr_7.raw.xz >SHA256SUMS)

# The line's key: an EC key whose public half the configuration names.
openssl ecparam -name prime256v1 -genkey -noout -out "$WORK/line.key" 2>/dev/null
openssl ec -in "$WORK/line.key" -pubout -out "$WORK/line.pub" 2>/dev/null
openssl dgst -sha256 -sign "$WORK/line.key" -out "$WORK/pub/SHA256SUMS.sig" "$WORK/pub/SHA256SUMS"
openssl ecparam -name prime256v1 -genkey -noout -out "$WORK/other.key" 2>/dev/null
openssl ec -in "$WORK/other.key" -pubout -out "$WORK/other.pub" 2>/dev/null

# The reference: the plain image, installed as ever.
truncate -s 6G "$WORK/ref.img"
"$IMPRINT" install --source "$src" --target "$WORK/ref.img" --seed s --yes >"$WORK/ref.log" 2>&1 \
        || { cat "$WORK/ref.log" >&2; fail "the plain image does not install"; }

# same_as_reference TARGET: the table, the A slot and the ESP's UKI are the reference's.
same_as_reference() {
        local t=$1 i s n
        diff <(sfdisk -d "$WORK/ref.img" | sed "s|$WORK/ref.img|DISK|") <(sfdisk -d "$t" | sed "s|$t|DISK|") \
                || fail "$t: sfdisk reads another table than the plain install's"
        for i in 1 2 3; do
                s=$(sfdisk --json "$t" | jq ".partitiontable.partitions[$i].start")
                # What the image's partition holds (the slot after it keeps what was there).
                n=$(sfdisk --json "$src" | jq ".partitiontable.partitions[$i].size")
                cmp -n $((n * 512)) -i $((s * 512)):$((s * 512)) "$WORK/ref.img" "$t" || fail "$t: partition $((i + 1)) differs"
        done
        diff <(mdir -b -i "$WORK/ref.img@@1M" ::/EFI/Linux) <(mdir -b -i "$t@@1M" ::/EFI/Linux) || fail "$t: other UKIs on the ESP"
        mcopy -n -i "$t@@1M" ::/EFI/Linux/fakeusr_7+3-0.efi "$WORK/uki.efi"
        mcopy -n -i "$WORK/ref.img@@1M" ::/EFI/Linux/fakeusr_7+3-0.efi "$WORK/uki-ref.efi"
        cmp "$WORK/uki.efi" "$WORK/uki-ref.efi" || fail "$t: the UKI differs"
}

# untouched TARGET: not one block of the (sparse, fresh) target file was written.
untouched() {
        [ "$(stat -c %b "$1")" = 0 ] || fail "$1 was written to ($(stat -c %b "$1") blocks)"
}

# ---- local compressed files -----------------------------------------------------------------
for c in zst xz; do
        truncate -s 6G "$WORK/t-$c.img"
        "$IMPRINT" install --source "$WORK/pub/fakeusr_7.raw.$c" --target "$WORK/t-$c.img" --seed s --yes --json \
                >"$WORK/ev-$c.json" 2>"$WORK/err-$c" || { cat "$WORK/err-$c" >&2; tail -3 "$WORK/ev-$c.json" >&2; fail "the .raw.$c image does not install"; }
        jq -e -s '[.[] | select(.event == "end") | .id] as $ids
                  | $ids[0] == "stream" and ($ids | index("copy-usr")) == null and ($ids | index("verify-usr")) != null
                    and ($ids | index("copy-usr-verity")) != null and .[-1].success == true' "$WORK/ev-$c.json" >/dev/null \
                || fail ".raw.$c: the install does not stream usr first and read it back"
        same_as_reference "$WORK/t-$c.img"
done
pass "a .raw.zst and a .raw.xz install as the plain image does: same table, same A slot, same UKI"

# A loop device: zero runs are zeroed with BLKZEROOUT, not written. Stale bytes where usr goes
# must not survive.
truncate -s 6G "$WORK/loop.img"
usr_start=$(sfdisk --json "$WORK/ref.img" | jq '.partitiontable.partitions[1].start * 512')
dd if=/dev/urandom of="$WORK/loop.img" bs=1M seek=$((usr_start / 1048576)) count=8 conv=notrunc status=none
attach "$WORK/loop.img"
loop=$ATTACHED
"$IMPRINT" install --source "$WORK/pub/fakeusr_7.raw.zst" --target "$loop" --seed s --no-encrypt --yes >"$WORK/loop.log" 2>&1 \
        || { cat "$WORK/loop.log" >&2; fail "the .raw.zst image does not install onto a loop device"; }
losetup -d "$loop"
same_as_reference "$WORK/loop.img"
pass "onto a loop device over old random bytes: the same disk as the plain install"

# Stopped in the middle of the stream (SIGINT, as Ctrl-C): exit 130 with a sentence that says the
# old table is gone and the disk does not boot; blkid finds no table; the same command again
# installs the same disk.
truncate -s 6G "$WORK/t-int.img"
sfdisk -q "$WORK/t-int.img" <<<'label: gpt' >/dev/null
IMPRINT_TEST_PAUSE_AT=stream:middle "$IMPRINT" install --source "$WORK/pub/fakeusr_7.raw.zst" --target "$WORK/t-int.img" --seed s --yes \
        >"$WORK/int.out" 2>"$WORK/int.err" &
pid=$!
for _ in $(seq 600); do
        state=$(awk '{ print $3 }' "/proc/$pid/stat" 2>/dev/null || echo gone)
        [ "$state" = T ] && break
        [ "$state" = gone ] || [ "$state" = Z ] && { cat "$WORK/int.err" >&2; fail "imprint ended before the middle of the stream"; }
        sleep 0.05
done
kill -INT "$pid"
kill -CONT "$pid"
rc=0
wait "$pid" || rc=$?
[ "$rc" = 130 ] || { cat "$WORK/int.err" >&2; fail "interrupted in the stream: exit $rc, not 130"; }
grep -q "has no partition table any more and does not boot; run the same command again" "$WORK/int.err" \
        || { cat "$WORK/int.err" >&2; fail "no sentence saying what the interrupted stream left"; }
[ -z "$(blkid -p -o value -s PTTYPE "$WORK/t-int.img" || true)" ] || fail "blkid still finds a partition table after the interrupted stream"
"$IMPRINT" install --source "$WORK/pub/fakeusr_7.raw.zst" --target "$WORK/t-int.img" --seed s --yes >"$WORK/int2.log" 2>&1 \
        || { cat "$WORK/int2.log" >&2; fail "the same command after the interrupted stream fails"; }
same_as_reference "$WORK/t-int.img"
pass "interrupted in the middle of the stream: exit 130, no table left, said so; the same command again installs"

# Free mode (--free): the disk's own partition and its bytes stay; the stream lands in the free
# space, and the old table is not cleared first.
truncate -s 6G "$WORK/t-free.img"
printf 'label: gpt\nstart=2048, size=2097152, type=EBD0A0A2-B9E5-4433-87C0-68B6B72699C7, name="data"\n' \
        | sfdisk -q "$WORK/t-free.img" >/dev/null
dd if=/dev/urandom of="$WORK/t-free.img" bs=1M seek=1 count=4 conv=notrunc status=none
data_before=$(dd if="$WORK/t-free.img" bs=1M skip=1 count=1024 status=none | sha256sum)
entry_before=$(sfdisk -d "$WORK/t-free.img" | grep 'name="data"')
"$IMPRINT" install --free --source "$WORK/pub/fakeusr_7.raw.zst" --target "$WORK/t-free.img" --seed s --yes --json \
        >"$WORK/free.json" 2>"$WORK/free.err" || { cat "$WORK/free.err" >&2; fail "the .raw.zst image does not install in free mode"; }
[ "$(sfdisk -d "$WORK/t-free.img" | grep 'name="data"')" = "$entry_before" ] || fail "free mode: the disk's own partition entry changed"
[ "$(dd if="$WORK/t-free.img" bs=1M skip=1 count=1024 status=none | sha256sum)" = "$data_before" ] || fail "free mode: the disk's own partition's bytes changed"
usr_t=$(sfdisk --json "$WORK/t-free.img" | jq '[.partitiontable.partitions[] | select(.type == "8484680C-9521-48C6-9C11-B0720656F69E")][0].start')
usr_s=$(sfdisk --json "$src" | jq '.partitiontable.partitions[1].start')
usr_n=$(sfdisk --json "$src" | jq '.partitiontable.partitions[1].size')
cmp -n $((usr_n * 512)) -i $((usr_s * 512)):$((usr_t * 512)) "$src" "$WORK/t-free.img" || fail "free mode: the usr A slot differs from the image's"
jq -e -s '.[-1].success == true and ([.[] | select(.event == "end") | .id][0] == "stream")' "$WORK/free.json" >/dev/null \
        || fail "free mode: the install did not stream first and succeed"
pass "free mode: the disk's own partition and bytes stay, usr streamed into the free space"

# ---- HTTP -------------------------------------------------------------------------------------
# serve [ARGS…] → starts the test server on the published directory; PORT, SERVER_PID, its log
serve() {
        rm -f "$WORK/port" "$WORK/requests.log"
        python3 "$SERVER" "$WORK/port" "$WORK/pub" --log "$WORK/requests.log" "$@" 2>"$WORK/server.err" &
        SERVER_PID=$!
        for _ in $(seq 300); do [ -s "$WORK/port" ] && break; sleep 0.1; done
        [ -s "$WORK/port" ] || { cat "$WORK/server.err" >&2; fail "the test HTTP server does not start"; }
        PORT=$(cat "$WORK/port")
}
unserve() {
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
}
trap 'unserve; cleanup' EXIT

url_zst() { echo "http://127.0.0.1:$PORT/fakeusr_7.raw.zst"; }
size_zst=$(stat -c %s "$WORK/pub/fakeusr_7.raw.zst")

# Dropped twice, a third of the way in and again: resumed, not restarted.
serve --drop-after $((size_zst / 3)) --drop-times 2
truncate -s 6G "$WORK/t-http.img"
mkdir -p "$WORK/report"
cat >"$WORK/line.json" <<EOF
{"source": "$(url_zst)", "imageKey": "$WORK/line.pub", "target": "$WORK/t-http.img", "seed": "s",
 "afterInstall": "none", "report": {"directory": "$WORK/report"}}
EOF
"$IMPRINT" install --source "$(url_zst)" --image-key "$WORK/line.pub" --target "$WORK/t-http.img" --seed s --yes --json \
        >"$WORK/ev-http.json" 2>"$WORK/err-http" || { cat "$WORK/err-http" "$WORK/requests.log" >&2; fail "the image over HTTP does not install"; }
same_as_reference "$WORK/t-http.img"
grep -c "^GET /fakeusr_7.raw.zst " "$WORK/requests.log" | grep -qx 3 || { cat "$WORK/requests.log" >&2; fail "not three requests for the image (one, two resumed)"; }
grep -q "^GET /fakeusr_7.raw.zst bytes=[1-9][0-9]*- 206 " "$WORK/requests.log" || { cat "$WORK/requests.log" >&2; fail "no range request resumed the transfer"; }
sent=$(awk '$2 == "/fakeusr_7.raw.zst" { s += $NF } END { print s }' "$WORK/requests.log")
[ "$sent" -le $((size_zst + 2 * 65536)) ] || fail "the server sent $sent bytes of a $size_zst-byte file: the transfer restarted"
grep -q "^GET /SHA256SUMS " "$WORK/requests.log" && grep -q "^GET /SHA256SUMS.sig " "$WORK/requests.log" \
        || fail "SHA256SUMS and its signature were not fetched"
pass "over HTTP, dropped twice: resumed with range requests, the file sent about once, the same disk"
unserve

# The unattended line: the same with the configuration and the report.
serve
truncate -s 6G "$WORK/t-line.img"
sed -i "s|$WORK/t-http.img|$WORK/t-line.img|; s|http://127.0.0.1:[0-9]*/|http://127.0.0.1:$PORT/|" "$WORK/line.json"
IMPRINT_CONFIG= "$IMPRINT" unattended --config "$WORK/line.json" >"$WORK/ev-line.json" 2>"$WORK/err-line" \
        || { cat "$WORK/err-line" >&2; tail -3 "$WORK/ev-line.json" >&2; fail "imprint unattended does not install the image over HTTP"; }
same_as_reference "$WORK/t-line.img"
report=$(ls "$WORK"/report/*.json | head -1)
jq -e --arg url "$(url_zst)" --arg sum "$(sha256sum <"$WORK/pub/fakeusr_7.raw.zst" | cut -d' ' -f1)" '
        .result.success == true and .image.path == $url and .image.sha256 == $sum
        and (.image.sha256Origin | endswith("/SHA256SUMS")) and .image.stream.compression == "zstd"
        and (.steps[] | select(.id == "stream") | .result == "done" and .cpuSeconds > 0 and .bytes > 0)' "$report" >/dev/null \
        || { cat "$report" >&2; fail "the report does not say where the image came from, its digest and the stream step"; }
pass "imprint unattended with \"source\" a URL and \"imageKey\": installed, and the report says so"

# ---- refusals: nothing written ------------------------------------------------------------------
truncate -s 6G "$WORK/blank.img"
expect_exit 2 "$IMPRINT" install --source "$(url_zst)" --target "$WORK/blank.img" --yes
expect_stderr "imageKey"
untouched "$WORK/blank.img"

expect_exit 7 "$IMPRINT" install --source "$(url_zst)" --image-key "$WORK/other.pub" --target "$WORK/blank.img" --yes
expect_stderr "signature"
untouched "$WORK/blank.img"

cp "$WORK/pub/SHA256SUMS" "$WORK/sums.good"
c=$(head -c 1 "$WORK/pub/SHA256SUMS")
sed -i "1s/^./$([ "$c" = a ] && echo b || echo a)/" "$WORK/pub/SHA256SUMS"
cmp -s "$WORK/sums.good" "$WORK/pub/SHA256SUMS" && fail "the test did not change SHA256SUMS"
expect_exit 7 "$IMPRINT" install --source "$(url_zst)" --image-key "$WORK/line.pub" --target "$WORK/blank.img" --yes
expect_stderr "signature"
untouched "$WORK/blank.img"
cp "$WORK/sums.good" "$WORK/pub/SHA256SUMS"

expect_exit 2 "$IMPRINT" install --source "http://127.0.0.1:$PORT/nothing_1.raw.zst" --image-key "$WORK/line.pub" --target "$WORK/blank.img" --yes
expect_stderr "nothing_1.raw.zst"
untouched "$WORK/blank.img"
pass "refused before any write: no key, another key, a changed SHA256SUMS, an image it does not list"
unserve

serve --status-for fakeusr_7.raw.zst=404
expect_exit 2 "$IMPRINT" install --source "$(url_zst)" --image-key "$WORK/line.pub" --target "$WORK/blank.img" --yes
expect_stderr "404"
untouched "$WORK/blank.img"
unserve
pass "a 404 for the image: one sentence naming it, nothing written"

# An image that is not the one SHA256SUMS lists (the same name, other bytes): found at the end of
# the stream; nothing made bootable, and no partition table left.
cp "$WORK/pub/fakeusr_7.raw.zst" "$WORK/good.zst"
python3 - "$src" "$WORK/changed.raw" <<'PY'
import sys
data = bytearray(open(sys.argv[1], "rb").read())
data[len(data) // 2 + 123] ^= 0xff   # inside the ESP's or usr's area, not the GPT
open(sys.argv[2], "wb").write(data)
PY
zstd -q -f -T0 "$WORK/changed.raw" -o "$WORK/pub/fakeusr_7.raw.zst"
serve
truncate -s 6G "$WORK/bad.img"
expect_exit 7 "$IMPRINT" install --source "$(url_zst)" --image-key "$WORK/line.pub" --target "$WORK/bad.img" --yes
expect_stderr "does not match its checksum"
sfdisk -d "$WORK/bad.img" >/dev/null 2>&1 && fail "the target of an image that did not match has a partition table"
[ -z "$(blkid -p -o value -s PTTYPE "$WORK/bad.img" || true)" ] || fail "blkid finds a partition table on the target"
unserve
cp "$WORK/good.zst" "$WORK/pub/fakeusr_7.raw.zst"
pass "an image that does not match its signed digest: exit 7 at the end of the stream, no partition table"

# gpg: SHA256SUMS.gpg checked with the line's OpenPGP key (armoured), stock gpg made both.
export GNUPGHOME=$WORK/gnupg
mkdir -m 700 "$GNUPGHOME"
gpg --batch --quiet --passphrase '' --quick-gen-key "Line <line@example.org>" ed25519 sign never 2>/dev/null
gpg --batch --quiet --armor --export line@example.org >"$WORK/line.asc"
gpg --batch --quiet --detach-sign --output "$WORK/pub/SHA256SUMS.gpg" "$WORK/pub/SHA256SUMS"
unset GNUPGHOME
serve
truncate -s 6G "$WORK/t-gpg.img"
"$IMPRINT" install --source "$(url_zst)" --image-key "$WORK/line.asc" --target "$WORK/t-gpg.img" --seed s --yes >"$WORK/gpg.log" 2>&1 \
        || { cat "$WORK/gpg.log" >&2; fail "the image with SHA256SUMS.gpg does not install"; }
grep -q "^GET /SHA256SUMS.gpg " "$WORK/requests.log" || fail "SHA256SUMS.gpg was not fetched"
same_as_reference "$WORK/t-gpg.img"
unserve
pass "SHA256SUMS.gpg with an armoured OpenPGP key: installed"
