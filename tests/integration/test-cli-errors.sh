#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Bad input gets a clear sentence and the documented exit code, and nothing is written.
. "$(dirname "$0")/lib.sh"
need_tool jq

img=$WORK/disk.img
truncate -s 8G "$img"

expect_exit 0 "$IMPRINT" --help
grep -q "imprint plan" "$WORK/stdout" || fail "--help does not list plan"
expect_exit 0 "$IMPRINT" --version
expect_exit 2 "$IMPRINT" frobnicate
expect_stderr 'unknown command "frobnicate"'
expect_exit 2 "$IMPRINT" plan
expect_stderr "--target"
expect_exit 2 "$IMPRINT" plan --target "$img" --root-size 12Q
expect_stderr 'invalid size "12Q"'
expect_exit 2 "$IMPRINT" plan --target "$img" --root-fs ntfs
expect_stderr 'Unsupported filesystem for root: "ntfs"'
expect_exit 2 "$IMPRINT" plan --target "$img" --root-size rest --home-size rest
expect_stderr "Only one of root and home"
expect_exit 2 "$IMPRINT" plan --target "$img" --esp-size 100M
expect_stderr "FAT32 needs at least 512 MiB"
expect_exit 2 "$IMPRINT" plan --target "$WORK/nonexistent.img"
expect_stderr "nonexistent.img"
expect_exit 2 "$IMPRINT" plan --target /dev/null
pass "option errors"

# A plan file that is not JSON, misses fields, or describes overlapping partitions.
echo '{ not json' >"$WORK/bad.json"
expect_exit 2 "$IMPRINT" apply --plan-file "$WORK/bad.json" --yes
expect_stderr "bad.json"
"$IMPRINT" plan --target "$img" --seed x --plan-file "$WORK/plan.json" >/dev/null
jq 'del(.partitions[0].typeUuid)' "$WORK/plan.json" >"$WORK/missing.json"
expect_exit 2 "$IMPRINT" apply --plan-file "$WORK/missing.json" --yes
expect_stderr 'field "typeUuid" is missing'
jq '.partitions[1].start = .partitions[0].start' "$WORK/plan.json" >"$WORK/overlap.json"
expect_exit 2 "$IMPRINT" apply --plan-file "$WORK/overlap.json" --yes
expect_stderr "overlap"
jq '.partitions[1].size = 99999999999488' "$WORK/plan.json" >"$WORK/huge.json"
expect_exit 2 "$IMPRINT" apply --plan-file "$WORK/huge.json" --yes
expect_stderr "outside the usable area"
expect_exit 2 "$IMPRINT" apply --plan-file "$WORK/plan.json" --target "$img" --yes
expect_stderr "not both"
[ "$(du -k "$img" | cut -f1)" = 0 ] || fail "a refused command wrote to the image"
pass "bad plan files refused, nothing written"

# A plan for one file applied after the file was replaced by a bigger one.
truncate -s 9G "$img"
expect_exit 5 "$IMPRINT" apply --plan-file "$WORK/plan.json" --yes
expect_stderr "its size was 8 GiB"
pass "changed target refused (exit 5)"
