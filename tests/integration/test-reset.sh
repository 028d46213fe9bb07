#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# imprint reset of what imprint install made, on image files (unencrypted: dm-crypt is the VM
# rig's), checked with stock tools only:
#   - usr image: marker files written into root and home with debugfs are gone afterwards, root and
#     home have new filesystem UUIDs, root is made as the usr slot's repart.d says (the log says
#     so), the partition table (names, UUIDs) is what it was, the usr slots are byte-identical
#     (cmp of their ranges) and every file on the ESP is identical except the new
#     /imprint/reset-*.json; the audit record (jq) says what was erased and how, which steps ran
#     and how long they took; imprint disks shows it;
#   - keep home: the home marker survives, root's does not;
#   - interrupted (IMPRINT_TEST_PAUSE_AT=erase-root:end, then kill -9): imprint disks says the
#     reset was interrupted, root is named imprint-incomplete, the audit record says "running";
#     imprint reset again completes it and gives the names back;
#   - classic image: root is deployed again from the image (its files are back, the marker gone);
#     without the image, with another OS's image, a disk imprint did not install and a layout
#     that changed since the install, the reset is refused with the reason and nothing is written.
. "$(dirname "$0")/lib.sh"
need_root
need_tool jq
need_tool debugfs
need_tool mdir
need_tool mcopy
need_tool sfdisk
need_tool blkid
need_tool veritysetup
need_tool mksquashfs
need_tool objcopy

# part_field IMG N FIELD: start or size (bytes) of partition N, or its name.
part_start() { sfdisk --json "$1" | jq ".partitiontable.partitions[] | select(.node | test(\"[^0-9]$2\$\")) | .start * 512"; }
part_size() { sfdisk --json "$1" | jq ".partitiontable.partitions[] | select(.node | test(\"[^0-9]$2\$\")) | .size * 512"; }
part_name() { sfdisk --json "$1" | jq -r ".partitiontable.partitions[] | select(.node | test(\"[^0-9]$2\$\")) | .name"; }
part_by_type() { sfdisk --json "$1" | jq -r ".partitiontable.partitions | to_entries[] | select(.value.type == \"$2\") | .value.node" | sed 's/.*[^0-9]//'; }

ROOT_TYPE=4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709
HOME_TYPE=933AC7E1-2EB4-4F13-B844-0E14E2AEF915
USR_TYPES="8484680C-9521-48C6-9C11-B0720656F69E 77FF5F63-E7B6-4633-ACF4-1565B864C0E6 E7BB33FB-06CF-4E81-8273-E543B413E2E2"

echo "a file the owner wrote" >"$WORK/marker"
# put_marker IMG N NAME, has_marker IMG N NAME
put_marker() { debugfs -w -R "write $WORK/marker $3" "$1?offset=$(part_start "$1" "$2")" >/dev/null 2>&1; }
has_marker() { debugfs -R "ls -l /" "$1?offset=$(part_start "$1" "$2")" 2>/dev/null | grep -qw "$3"; }
fsuuid() { blkid -p -O "$(part_start "$1" "$2")" -s UUID -o value "$1"; }
range_sum() { dd if="$1" bs=1M skip=$(($(part_start "$1" "$2") / 1048576)) count=$(($(part_size "$1" "$2") / 1048576)) status=none | sha256sum | cut -d' ' -f1; }
esp_files() { # esp_files IMG DIR: every file of the ESP into DIR, the reset's audit records left out
        mkdir -p "$2"
        mcopy -s -n -i "$1@@$(part_start "$1" 1)" "::/*" "$2/"
        rm -f "$2"/imprint/reset-*.json
}
audit_of() { # audit_of IMG: the newest audit record
        local off name
        off=$(part_start "$1" 1)
        name=$(mdir -b -i "$1@@$off" ::/imprint | grep -o 'reset-[0-9TZ]*\.json' | sort | tail -n1)
        [ -n "$name" ] || return 1
        mtype -i "$1@@$off" "::/imprint/$name"
}
expect_exit() { # expect_exit CODE CMD…: stdout/stderr in $WORK/out, $WORK/err
        local want=$1 rc=0
        shift
        "$@" >"$WORK/out" 2>"$WORK/err" </dev/null || rc=$?
        [ "$rc" = "$want" ] || { cat "$WORK/out" "$WORK/err" >&2; fail "$* exited $rc, not $want"; }
}

# ==== usr image ===============================================================================
usr=$WORK/usr.img
FAKE_DDI_KIND=usr bash "$(dirname "$0")/make-fake-ddi.sh" "$usr" >"$WORK/make.log" 2>&1 \
        || { cat "$WORK/make.log" >&2; fail "make-fake-ddi.sh cannot make the usr image"; }
tgt=$WORK/usr-target.img
truncate -s 8G "$tgt"
"$IMPRINT" install --source "$usr" --target "$tgt" --home-size 1G --yes >"$WORK/install.log" 2>&1 \
        || { cat "$WORK/install.log" >&2; fail "the usr install fails"; }
root=$(part_by_type "$tgt" $ROOT_TYPE)
home=$(part_by_type "$tgt" $HOME_TYPE)
[ -n "$root" ] && [ -n "$home" ] || fail "the install made no root or home"
mtype -i "$tgt@@$(part_start "$tgt" 1)" ::/imprint/install.json | jq -e '.formatVersion == 1 and .plan.source.kind == "usr"' >/dev/null \
        || fail "the install wrote no install record on the ESP"
pass "the install leaves its install record on the ESP"

put_marker "$tgt" "$root" root-marker
put_marker "$tgt" "$home" home-marker
has_marker "$tgt" "$root" root-marker && has_marker "$tgt" "$home" home-marker || fail "debugfs cannot write the markers"
table_before=$(sfdisk -d "$tgt")
root_uuid=$(fsuuid "$tgt" "$root")
home_uuid=$(fsuuid "$tgt" "$home")
declare -A slot_sum
for t in $USR_TYPES; do
        for n in $(part_by_type "$tgt" "$t"); do slot_sum[$n]=$(range_sum "$tgt" "$n"); done
done
[ "${#slot_sum[@]}" = 6 ] || fail "expected six usr slot partitions, found ${#slot_sum[@]}"
esp_files "$tgt" "$WORK/esp-before"

"$IMPRINT" reset -v --yes "$tgt" >"$WORK/reset.log" 2>&1 || { cat "$WORK/reset.log" >&2; fail "the reset of the usr install fails"; }
grep -q "is complete" "$WORK/reset.log" || fail "the reset does not say it is complete"
! has_marker "$tgt" "$root" root-marker || fail "the root marker survived the reset"
! has_marker "$tgt" "$home" home-marker || fail "the home marker survived the reset"
[ "$(fsuuid "$tgt" "$root")" != "$root_uuid" ] || fail "root has its old filesystem UUID"
[ "$(fsuuid "$tgt" "$home")" != "$home_uuid" ] || fail "home has its old filesystem UUID"
[ "$(blkid -p -O "$(part_start "$tgt" "$root")" -s TYPE -o value "$tgt")" = ext4 ] || fail "root is not ext4 as the image's repart.d says"
grep -q "as the repart.d of the usr slot \"fakeusr_7\"" "$WORK/reset.log" || { cat "$WORK/reset.log" >&2; fail "the log does not say root is made as the usr slot's repart.d says"; }
pass "usr: the markers in root and home are gone, both have new filesystems as the image's repart.d says"

[ "$(sfdisk -d "$tgt")" = "$table_before" ] || { diff <(echo "$table_before") <(sfdisk -d "$tgt") >&2; fail "the partition table changed"; }
for n in "${!slot_sum[@]}"; do
        [ "$(range_sum "$tgt" "$n")" = "${slot_sum[$n]}" ] || fail "usr slot partition $n changed"
done
esp_files "$tgt" "$WORK/esp-after"
diff -r "$WORK/esp-before" "$WORK/esp-after" >&2 || fail "the ESP's files changed (other than the audit record)"
pass "usr: partition table, usr slots (byte for byte) and the ESP's files are as they were"

audit_of "$tgt" >"$WORK/audit.json" || fail "no audit record on the ESP"
jq -e --arg root "$root" --arg home "$home" '
        .formatVersion == 1 and .status == "complete" and .entryPoint == "live-medium"
        and (.startedAt | test("^[0-9-]+T[0-9:]+Z$")) and (.finishedAt | test("^[0-9-]+T[0-9:]+Z$"))
        and .image.kind == "usr" and .image.id == "fakeusr" and .image.version == "7"
        and .keepHome == false and .secureErase == false and .tpmClear == "not-asked" and .error == null
        and (.partitions[] | select(.partno == ($root | tonumber)) | .role == "root" and .action == "erased"
             and (.method == "discard" or .method == "overwrite"))
        and (.partitions[] | select(.partno == ($home | tonumber)) | .role == "home" and .action == "erased")
        and ([.partitions[] | select(.role == "usr" or .role == "esp") | .action] | all(. == "kept"))
        and ([.steps[].id] | index("erase-root") != null and index("format-root") != null and index("reset-begin") == 0)
        and ([.steps[].seconds] | all(. >= 0))
        and (.account | type == "string")' "$WORK/audit.json" >/dev/null \
        || { cat "$WORK/audit.json" >&2; fail "the audit record does not say what the reset did"; }
"$IMPRINT" disks "$tgt" >"$WORK/disks" 2>&1 || fail "imprint disks fails"
grep -q "last reset: reset on .* erased root" "$WORK/disks" || { cat "$WORK/disks" >&2; fail "imprint disks does not show the last reset"; }
"$IMPRINT" disks --json "$tgt" | jq -e '.[0].lastReset.status == "complete"' >/dev/null || fail "imprint disks --json has no lastReset"
pass "usr: the audit record says what was erased and kept, how and how long; imprint disks shows it"

# ---- keep home --------------------------------------------------------------------------------
put_marker "$tgt" "$root" root-marker
put_marker "$tgt" "$home" home-marker
home_uuid=$(fsuuid "$tgt" "$home")
"$IMPRINT" reset --keep-home --yes "$tgt" >"$WORK/keep.log" 2>&1 || { cat "$WORK/keep.log" >&2; fail "the reset keeping home fails"; }
! has_marker "$tgt" "$root" root-marker || fail "keep home: the root marker survived"
has_marker "$tgt" "$home" home-marker || fail "keep home: the home marker is gone"
[ "$(fsuuid "$tgt" "$home")" = "$home_uuid" ] || fail "keep home: home was recreated"
audit_of "$tgt" | jq -e '.keepHome and (.partitions[] | select(.role == "home") | .action == "kept")' >/dev/null \
        || fail "keep home: the audit record does not say home was kept"
pass "keep home: root is erased, home and its files stay"

# ---- interrupted -----------------------------------------------------------------------------
put_marker "$tgt" "$root" root-marker
IMPRINT_TEST_PAUSE_AT=erase-root:end "$IMPRINT" reset --yes "$tgt" >"$WORK/out" 2>"$WORK/err" &
pid=$!
for _ in $(seq 1 600); do
        state=$(awk '{ print $3 }' "/proc/$pid/stat" 2>/dev/null || echo gone)
        [ "$state" = T ] && break
        [ "$state" = gone ] && { cat "$WORK/err" >&2; fail "the reset ended before erase-root:end"; }
        sleep 0.1
done
[ "$state" = T ] || fail "the reset never stopped at erase-root:end"
kill -9 "$pid"
wait "$pid" 2>/dev/null || true
[ "$(part_name "$tgt" "$root")" = imprint-incomplete ] || fail "after an interrupted reset root is named $(part_name "$tgt" "$root")"
audit_of "$tgt" | jq -e '.status == "running"' >/dev/null || fail "the audit record of the interrupted reset does not say running"
"$IMPRINT" disks "$tgt" >"$WORK/disks" 2>&1 || true
grep -qi "interrupted" "$WORK/disks" || { cat "$WORK/disks" >&2; fail "imprint disks does not say the reset was interrupted"; }
"$IMPRINT" reset --yes "$tgt" >"$WORK/again.log" 2>&1 || { cat "$WORK/again.log" >&2; fail "the reset after an interrupted one fails"; }
[ "$(sfdisk -d "$tgt")" = "$table_before" ] || fail "after the resumed reset the partition names are not back"
! has_marker "$tgt" "$root" root-marker || fail "the root marker survived the interrupted and resumed reset"
audit_of "$tgt" | jq -e '.status == "complete"' >/dev/null || fail "the resumed reset's audit record is not complete"
pass "interrupted with kill -9 after erasing root: imprint disks says so, the disk is marked, a new reset completes"

# ==== classic image ===========================================================================
cls=$WORK/classic.img
bash "$(dirname "$0")/make-fake-ddi.sh" "$cls" 200 >"$WORK/make2.log" 2>&1 || { cat "$WORK/make2.log" >&2; fail "make-fake-ddi.sh fails"; }
ctgt=$WORK/classic-target.img
truncate -s 6G "$ctgt"
"$IMPRINT" install --source "$cls" --target "$ctgt" --home-size 1G --yes >"$WORK/cinstall.log" 2>&1 \
        || { cat "$WORK/cinstall.log" >&2; fail "the classic install fails"; }
croot=$(part_by_type "$ctgt" $ROOT_TYPE)
put_marker "$ctgt" "$croot" root-marker

# Refusals first: each leaves the disk exactly as it was.
sum=$(checksum "$ctgt")
expect_exit 2 "$IMPRINT" reset --yes "$ctgt"
grep -q "live medium" "$WORK/err" || { cat "$WORK/err" >&2; fail "a classic reset without its image is not refused with a sentence"; }
expect_exit 2 "$IMPRINT" reset --yes --source "$usr" "$ctgt"
[ -s "$WORK/err" ] || fail "a classic reset from a usr image is refused without a sentence"
[ "$(checksum "$ctgt")" = "$sum" ] || fail "a refused classic reset wrote to the disk"
pass "classic: without its image, or from another image, the reset is refused and nothing is written"

"$IMPRINT" reset --yes --source "$cls" "$ctgt" >"$WORK/creset.log" 2>&1 || { cat "$WORK/creset.log" >&2; fail "the classic reset fails"; }
! has_marker "$ctgt" "$croot" root-marker || fail "classic: the root marker survived"
has_marker "$ctgt" "$croot" data || fail "classic: the image's files are not back on root"
audit_of "$ctgt" | jq -e '.status == "complete" and .image.kind == "root" and ([.steps[].id] | index("copy-root") != null and index("verify-root") != null)' \
        >/dev/null || fail "classic: the audit record does not say root was copied again"
pass "classic: root is deployed again from the image, the marker is gone"

# A layout that changed since the install: home made smaller.
hn=$(part_by_type "$ctgt" $HOME_TYPE)
echo ", -1M" | sfdisk -q -N "$hn" "$ctgt" >/dev/null 2>&1 || sfdisk -d "$ctgt" | sed "/^[^ ]*$hn :/s/size= *[0-9]*/size=1024000/" | sfdisk -q "$ctgt"
sum=$(checksum "$ctgt")
expect_exit 3 "$IMPRINT" reset --yes --source "$cls" "$ctgt"
grep -q "Cannot reset" "$WORK/err" && grep -q "layout changed" "$WORK/err" || { cat "$WORK/err" >&2; fail "a changed layout is not refused with the reason"; }
[ "$(checksum "$ctgt")" = "$sum" ] || fail "a refused reset of a changed layout wrote to the disk"
pass "a layout that changed since the install is refused with the reason, nothing written"

# A disk imprint did not install: the same layout without the install record.
mdel -i "$ctgt@@$(part_start "$ctgt" 1)" ::/imprint/install.json
sum=$(checksum "$ctgt")
expect_exit 3 "$IMPRINT" reset --yes --source "$cls" "$ctgt"
grep -q "did not install" "$WORK/err" || { cat "$WORK/err" >&2; fail "a disk without install record is not refused with the reason"; }
[ "$(checksum "$ctgt")" = "$sum" ] || fail "a refused reset of a foreign disk wrote to it"
pass "a disk imprint did not install is refused with the reason, nothing written"
