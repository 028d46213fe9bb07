#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# imprint reset, the factory reset's command line, as support staff would use it on image files:
#   - usage errors exit 2 and write nothing;
#   - a disk imprint did not install is refused with the reason, exit 3, and not one byte changes;
#   - --dry-run prints what is erased and what is kept, per partition, and writes nothing (the
#     whole disk's checksum is compared); --dry-run --json says the same for machines;
#   - the disk's name typed wrong on a terminal (a pseudo terminal here) erases nothing (exit 6),
#     and without a terminal and without --yes nothing is written either;
#   - --json: a refusal ends with a result line.
# The reset itself (markers gone, audit record, …) is tests/integration/test-reset.sh's.
. "$(dirname "$0")/lib.sh"
need_tool jq
need_tool objcopy
need_tool mkfs.vfat
need_tool mcopy

src=$WORK/fakeos.img
bash "$(dirname "$0")/make-fake-ddi.sh" "$src" 200

# ---- usage errors: exit 2, before anything is looked at ----------------------------------------
truncate -s 1G "$WORK/any.img"
expect_exit 2 "$IMPRINT" reset --colour "$WORK/any.img"
expect_stderr 'unknown option "--colour"'
expect_exit 2 "$IMPRINT" reset "$WORK/any.img" "$WORK/any.img"
expect_stderr "a reset takes one disk"
expect_exit 2 "$IMPRINT" reset --entry-point=unattended "$WORK/any.img"
expect_stderr "not one of boot-menu, live-medium"
expect_exit 2 "$IMPRINT" reset --entry-point "$WORK/any.img"
expect_stderr "not one of boot-menu, live-medium"
expect_exit 2 "$IMPRINT" reset --real-name "Alice" "$WORK/any.img"
expect_stderr "need --user"
expect_exit 2 "$IMPRINT" reset --user "Not A Name" "$WORK/any.img"
expect_stderr "--user:"
expect_exit 2 "$IMPRINT" reset --hostname "-bad-" "$WORK/any.img"
expect_stderr "--hostname:"
expect_exit 2 "$IMPRINT" reset --dry-run --yes "$WORK/any.img"
expect_stderr "nothing to confirm"
expect_exit 2 "$IMPRINT" reset --keep-home=yes "$WORK/any.img"
expect_stderr "takes no value"
expect_exit 2 "$IMPRINT" reset --dry-run "$WORK/does-not-exist.img"
expect_stderr "does not exist"
[ "$(du -k "$WORK/any.img" | cut -f1)" = 0 ] || fail "a usage error wrote to the disk"
pass "usage errors exit 2 and write nothing"

# ---- a disk imprint did not install: refused, exit 3, nothing written ---------------------------
# A GPT with an ESP and a root, as another installer would leave it: no install record.
truncate -s 2G "$WORK/foreign.img"
sfdisk -q "$WORK/foreign.img" <<<'label: gpt
size=100M, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B
type=4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709'
mkfs.vfat -F 16 --offset=2048 "$WORK/foreign.img" $((100 * 1024)) >/dev/null 2>&1
sum=$(checksum "$WORK/foreign.img")
for args in "--yes" "--dry-run" "--yes --json"; do
        # shellcheck disable=SC2086 # the options are words
        expect_exit 3 "$IMPRINT" reset $args "$WORK/foreign.img"
        expect_stderr "Cannot reset"
        [ "$(checksum "$WORK/foreign.img")" = "$sum" ] || fail "reset $args of a disk imprint did not install wrote to it"
done
jq -e -s '.[-1] | .event == "result" and .success == false and .exitCode == 3 and (.message | test("Cannot reset"))' \
        "$WORK/stdout" >/dev/null || { cat "$WORK/stdout" >&2; fail "--json: no failed result line for a refused reset"; }
pass "a disk imprint did not install is refused with exit 3, nothing written"

# ---- a disk imprint installed ----------------------------------------------------------------------
# install_with_record IMAGE [PLAN OPTIONS…]: an install as imprint makes it, with its install record
# on the ESP. Written by the install's boot step; where this build's executor does not write it
# yet, the test writes what record_install_write() would (the plan as installed) with mtools.
install_with_record() {
        local img=$1 esp
        shift
        truncate -s 4G "$img"
        "$IMPRINT" plan --source "$src" --target "$img" --seed reset-cli "$@" --plan-file "$img.plan" >/dev/null
        "$IMPRINT" install --plan-file "$img.plan" --yes >/dev/null
        esp=$(sfdisk --json "$img" | jq '.partitiontable.partitions[0].start * 512')
        if ! mtype -i "$img@@$esp" ::/imprint/install.json >/dev/null 2>&1; then
                jq '{formatVersion: 1, imprintVersion: "test", installedAt: "2026-12-03T10:15:00Z", plan: .}' "$img.plan" >"$img.record"
                mmd -i "$img@@$esp" ::/imprint 2>/dev/null || true
                mcopy -i "$img@@$esp" "$img.record" ::/imprint/install.json
        fi
}

tgt=$WORK/installed.img
install_with_record "$tgt" --home-size 1G
sum=$(checksum "$tgt")

# --dry-run: the plan, per partition, and nothing written.
expect_exit 0 "$IMPRINT" reset --dry-run --source "$src" "$tgt"
cp "$WORK/stdout" "$WORK/dry.txt"
grep -q "Factory reset of $tgt" "$WORK/dry.txt" || { cat "$WORK/dry.txt" >&2; fail "--dry-run does not name the disk"; }
grep -qE '^ +1 +esp .*kept as it is' "$WORK/dry.txt" || { cat "$WORK/dry.txt" >&2; fail "--dry-run does not say the ESP is kept"; }
grep -qE '^ +[0-9]+ +root .*ERASED by ' "$WORK/dry.txt" || { cat "$WORK/dry.txt" >&2; fail "--dry-run does not say root is erased"; }
grep -qE '^ +[0-9]+ +home .*ERASED by ' "$WORK/dry.txt" || { cat "$WORK/dry.txt" >&2; fail "--dry-run does not say home is erased"; }
grep -q "Nothing was written" "$WORK/dry.txt" || fail "--dry-run does not say that nothing was written"
[ "$(checksum "$tgt")" = "$sum" ] || fail "--dry-run wrote to the disk"
pass "--dry-run shows what is erased and kept per partition, and writes nothing"

# --keep-home: home is kept (re-enrolled when encrypted), root still erased.
expect_exit 0 "$IMPRINT" reset --dry-run --keep-home --source "$src" "$tgt"
grep -qE '^ +[0-9]+ +home .*kept' "$WORK/stdout" || { cat "$WORK/stdout" >&2; fail "--keep-home: home is not kept"; }
grep -qE '^ +[0-9]+ +root .*ERASED by ' "$WORK/stdout" || { cat "$WORK/stdout" >&2; fail "--keep-home: root is not erased"; }

# --json: the same for machines.
expect_exit 0 "$IMPRINT" reset --dry-run --json --source "$src" "$tgt"
jq -e --arg t "$tgt" '.target == $t and .entryPoint == "live-medium" and .keepHome == false
        and ([.partitions[] | select(.role == "esp")][0].action == "keep")
        and ([.partitions[] | select(.role == "root")][0] | .action == "erase" and (.method | type == "string"))
        and ([.partitions[] | select(.role == "home")][0].action == "erase")
        and (.plan.mode == "reset")' "$WORK/stdout" >/dev/null \
        || { cat "$WORK/stdout" >&2; fail "--dry-run --json does not describe the reset"; }
expect_exit 0 "$IMPRINT" reset --dry-run --json --keep-home --entry-point=boot-menu --source "$src" "$tgt"
jq -e '.keepHome == true and .entryPoint == "boot-menu" and ([.partitions[] | select(.role == "home")][0].action != "erase")' \
        "$WORK/stdout" >/dev/null || { cat "$WORK/stdout" >&2; fail "--dry-run --json --keep-home does not keep home"; }
[ "$(checksum "$tgt")" = "$sum" ] || fail "--dry-run --json wrote to the disk"
pass "--dry-run --json describes the reset, per partition"

# No terminal and no --yes: nothing confirms the reset, nothing is written.
expect_exit 6 "$IMPRINT" reset --source "$src" "$tgt" </dev/null
expect_stderr "without confirmation"
[ "$(checksum "$tgt")" = "$sum" ] || fail "a reset without confirmation wrote to the disk"

# The wrong name typed on a terminal: nothing is erased.
rc=0
/usr/bin/python3 - "$IMPRINT" "$src" "$tgt" "$WORK/pty.txt" <<'PY' || rc=$?
import os, pty, re, select, sys, time
imprint, src, tgt, transcript = sys.argv[1:]
pid, fd = pty.fork()
if pid == 0:
    os.execv(imprint, [imprint, "reset", "--source", src, tgt])
out, deadline, answered = b"", time.time() + 60, False
while time.time() < deadline:
    r, _, _ = select.select([fd], [], [], 0.5)
    if not r:
        continue
    try:
        b = os.read(fd, 4096)
    except OSError:
        break
    if not b:
        break
    out += b
    if not answered and re.search(rb"anything else cancels: $", out):
        os.write(fd, b"not-the-disk\n")
        answered = True
_, status = os.waitpid(pid, 0)
open(transcript, "wb").write(out)
sys.exit(os.waitstatus_to_exitcode(status))
PY
[ "$rc" = 6 ] || { cat "$WORK/pty.txt" >&2; fail "a wrong name typed: exit $rc, expected 6"; }
grep -q "ERASES" "$WORK/pty.txt" || { cat "$WORK/pty.txt" >&2; fail "the confirmation does not say what it erases"; }
grep -qE 'root .*ERASED by ' "$WORK/pty.txt" || { cat "$WORK/pty.txt" >&2; fail "the confirmation does not show the plan"; }
[ "$(checksum "$tgt")" = "$sum" ] || fail "a wrong name typed changed the disk"
pass "a wrong name typed, or no terminal to type it on, erases nothing"

# --keep-home on a disk without home is bad input.
install_with_record "$WORK/nohome.img"
expect_exit 2 "$IMPRINT" reset --dry-run --keep-home --source "$src" "$WORK/nohome.img"
expect_stderr "no home partition"
pass "--keep-home without a home partition is refused"

# imprint disks says which disks imprint installed (and so can be reset), and never for others.
expect_exit 0 "$IMPRINT" disks "$tgt" "$WORK/foreign.img"
grep -qF "installed by imprint test on 2026-12-03T10:15:00Z: imprint reset $tgt resets it" "$WORK/stdout" \
        || grep -qF "imprint reset $tgt resets it" "$WORK/stdout" || { cat "$WORK/stdout" >&2; fail "imprint disks does not say the disk can be reset"; }
! grep -qF "imprint reset $WORK/foreign.img" "$WORK/stdout" || fail "imprint disks offers to reset a disk imprint did not install"
pass "imprint disks names the disks imprint installed"

# The last reset, from the newest audit record on the ESP (as a reset writes it: record.h), in
# imprint disks' text and JSON; an interrupted one (status "running") is said to be one.
esp=$(sfdisk --json "$tgt" | jq '.partitiontable.partitions[0].start * 512')
cat >"$WORK/audit.json" <<'JSON'
{"formatVersion":1,"status":"complete","startedAt":"2026-12-03T10:15:00Z","finishedAt":"2026-12-03T10:15:04Z",
 "entryPoint":"boot-menu","imprintVersion":"test","image":{"name":"Imprint Fake OS 7","id":"fakeos","version":"7","kind":"root"},
 "disk":{"path":"installed.img","model":null,"serial":null,"size":4294967296},"keepHome":false,"secureErase":false,"tpmClear":"not-asked",
 "partitions":[{"partno":2,"role":"root","action":"erased","method":"discard","dataDiscarded":true,"keyslotsDestroyed":0,"oldLuksUuid":null,"newLuksUuid":null}],
 "account":"left to the first boot","steps":[{"id":"erase-root","seconds":0.42}],"error":null}
JSON
mcopy -o -i "$tgt@@$esp" "$WORK/audit.json" ::/imprint/reset-20261203T101500Z.json
expect_exit 0 "$IMPRINT" disks "$tgt"
grep -qF "last reset: reset on 2026-12-03 10:15 UTC from the boot menu: erased root (discard) (complete)" "$WORK/stdout" \
        || { cat "$WORK/stdout" >&2; fail "imprint disks does not show the last reset"; }
expect_exit 0 "$IMPRINT" disks --json "$tgt"
jq -e '.[0].lastReset | .status == "complete" and .entryPoint == "boot-menu" and .partitions[0].method == "discard"' "$WORK/stdout" >/dev/null \
        || { cat "$WORK/stdout" >&2; fail "imprint disks --json has no lastReset"; }
jq '.status = "running" | .finishedAt = null' "$WORK/audit.json" >"$WORK/running.json"
mcopy -o -i "$tgt@@$esp" "$WORK/running.json" ::/imprint/reset-20261203T111500Z.json
expect_exit 0 "$IMPRINT" disks "$tgt"
grep -q "last reset: .*interrupted" "$WORK/stdout" || { cat "$WORK/stdout" >&2; fail "imprint disks does not say the last reset was interrupted"; }
pass "imprint disks shows the last reset from the audit record (text and --json), and an interrupted one"
