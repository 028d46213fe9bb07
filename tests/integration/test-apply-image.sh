#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# imprint plan + apply on a sparse image file, without privileges; stock sfdisk and blkid check
# the result against the saved plan.
. "$(dirname "$0")/lib.sh"
need_tool sfdisk
need_tool jq
need_tool blkid

img=$WORK/disk.img
truncate -s 8G "$img"

# The plan shown as JSON and the plan saved to a file are the same plan.
"$IMPRINT" plan --target "$img" --seed imprint-test --home-size 2G --swap-size 512M --plan-file "$WORK/plan.json" >"$WORK/table"
grep -q "root-x86-64" "$WORK/table" || fail "the plan table does not show the root partition"
grep -q "Nothing was written\|Saved to" "$WORK/table" || fail "plan does not say that nothing was written"
"$IMPRINT" plan --target "$img" --seed imprint-test --home-size 2G --swap-size 512M --json >"$WORK/plan2.json"
cmp -s <(jq -S . "$WORK/plan.json") <(jq -S . "$WORK/plan2.json") || fail "--json and --plan-file differ for the same seed"
pass "plan is reproducible with --seed"

# Planning writes nothing.
[ "$(du -k "$img" | cut -f1)" = 0 ] || fail "plan wrote to the image"

jq -e '.partitions | map(.role) == ["esp","swap","root","home"]' "$WORK/plan.json" >/dev/null || fail "unexpected roles"
jq -e '.partitions[] | select(.role=="root") | .flagNames == ["growfs"]' "$WORK/plan.json" >/dev/null || fail "root lacks growfs"
jq -e '.partitions[] | select(.role=="esp") | .size == 1073741824 and .start == 1048576' "$WORK/plan.json" >/dev/null || fail "ESP is not 1 GiB at 1 MiB"

"$IMPRINT" apply --plan-file "$WORK/plan.json" --yes --json >"$WORK/events.json"
jq -e -s 'map(select(.event=="end")) | length >= 5' "$WORK/events.json" >/dev/null || fail "too few progress events"
jq -e -s '.[-1] == {"event":"result","success":true,"exitCode":0}' "$WORK/events.json" >/dev/null || fail "no success result event"
jq -e -s 'map(select(.event=="begin")) | all(.steps == (.steps|tonumber) and .step >= 1 and .id != null)' "$WORK/events.json" >/dev/null \
        || fail "malformed progress events"
# The list of steps comes first, in order, and is the list of steps that then begin.
jq -e -s '(map(select(.event=="planned")) | map([.step, .id])) == (map(select(.event=="begin")) | map([.step, .id]))
          and (map(.event) | index("planned")) == 0
          and (map(.event) | rindex("planned")) < (map(.event) | index("begin"))' "$WORK/events.json" >/dev/null \
        || fail "the planned events are not the list of the steps that ran, before the first began"
pass "apply printed JSON progress events"

compare_with_sfdisk "$WORK/plan.json" "$img"
pass "sfdisk reads back the planned GPT (types, sizes, PARTUUIDs, names, flags)"

# Each new partition holds the planned filesystem with a UUID derived from the seed.
for role in esp swap root home; do
        start=$(jq -r ".partitions[] | select(.role==\"$role\") | .start" "$WORK/plan.json")
        want=$(jq -r ".partitions[] | select(.role==\"$role\") | .fstype" "$WORK/plan.json")
        got=$(blkid -p -o value -s TYPE -O "$start" "$img" || true)
        [ "$got" = "$want" ] || fail "$role: blkid finds '$got', the plan says '$want'"
done
pass "blkid finds vfat, swap, ext4, ext4 where planned"

# The image stays sparse: apply wrote metadata, not zeros.
used=$(du -k "$img" | cut -f1)
[ "$used" -lt $((300 * 1024)) ] || fail "the image uses $used KiB on disk; it should stay sparse"
pass "image stays sparse ($used KiB used of 8 GiB)"

# Re-applying the same plan is refused: the disk no longer looks as planned.
sum=$(checksum "$img")
expect_exit 5 "$IMPRINT" apply --plan-file "$WORK/plan.json" --yes
expect_stderr "changed since the plan was made"
[ "$(checksum "$img")" = "$sum" ] || fail "a refused apply changed the image"
pass "stale plan refused (exit 5), image unchanged"

# Free-space mode on the result is refused: a second x86-64 root would confuse gpt-auto.
truncate -s 12G "$img"
sfdisk --relocate gpt-bak-std "$img" >/dev/null 2>&1
expect_exit 3 "$IMPRINT" plan --free --target "$img" --seed second
expect_stderr "already has a x86-64 root partition"
pass "free mode refuses a disk that already has a root (exit 3)"

# btrfs root and xfs home: tools that cannot write at an offset build in a temporary file first.
img2=$WORK/fs.img
truncate -s 8G "$img2"
"$IMPRINT" apply --target "$img2" --seed fs --root-fs btrfs --home-fs xfs --home-size 2G --yes --json >"$WORK/fs.json"
for spec in "2:btrfs" "3:xfs"; do
        n=${spec%%:*} want=${spec#*:}
        start=$(sfdisk --json "$img2" | jq ".partitiontable.partitions[$((n - 1))].start * 512")
        got=$(blkid -p -o value -s TYPE -O "$start" "$img2" || true)
        [ "$got" = "$want" ] || fail "partition $n: blkid finds '$got', expected $want"
        uuid=$(blkid -p -o value -s UUID -O "$start" "$img2")
        [ -n "$uuid" ] || fail "partition $n has no filesystem UUID"
done
ls /tmp/.imprint* /var/tmp/.imprint* 2>/dev/null && fail "a temporary filesystem file was left behind"
pass "btrfs root and xfs home created inside an image file"
