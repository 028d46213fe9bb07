#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# "Reset an installed system" in the line-by-line dialogue (imprint --plain), driven like support
# staff on a serial console: the first question offers install or reset; the disk list numbers
# the disk imprint installed (a loop device here) and gives the others' reasons; keep home?; the
# account left to the first start; then the plan, per partition what is erased and what is kept,
# and the disk's name to type. A wrong name erases nothing (the disk's checksum), and quitting
# writes nothing. imprint --plain --reset (the recovery entry's way in) skips the first question.
. "$(dirname "$0")/lib.sh"
need_root "loop devices: the dialogue offers the machine's disks"
need_tool objcopy
need_tool mcopy
need_tool jq

src=$WORK/fakeos.img
bash "$(dirname "$0")/make-fake-ddi.sh" "$src" 200
img=$WORK/disk.img
truncate -s 4G "$img"
"$IMPRINT" plan --source "$src" --target "$img" --seed reset-plain --home-size 1G --plan-file "$WORK/plan.json" >/dev/null
"$IMPRINT" install --plan-file "$WORK/plan.json" --yes >/dev/null
# The install record, as record_install_write() writes it, where this build's install does not yet.
esp=$(sfdisk --json "$img" | jq '.partitiontable.partitions[0].start * 512')
if ! mtype -i "$img@@$esp" ::/imprint/install.json >/dev/null 2>&1; then
        jq '{formatVersion: 1, imprintVersion: "test", installedAt: "2026-12-03T10:15:00Z", plan: .}' "$WORK/plan.json" >"$WORK/record.json"
        mmd -i "$img@@$esp" ::/imprint 2>/dev/null || true
        mcopy -i "$img@@$esp" "$WORK/record.json" ::/imprint/install.json
fi
attach "$img"
dev=$ATTACHED
sum=$(checksum "$img")

# run_dialogue TRANSCRIPT CONFIRMATION [imprint options…]: answers each question as it appears.
run_dialogue() {
        local transcript=$1 confirm=$2
        shift 2
        /usr/bin/python3 - "$IMPRINT" "$src" "$dev" "$confirm" "$transcript" "$@" <<'PY'
import os, re, select, subprocess, sys, time
imprint, src, dev, confirm, transcript = sys.argv[1:6]
args = sys.argv[6:]
p = subprocess.Popen([imprint, "--plain", "--source", src] + args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                     stderr=subprocess.STDOUT)
disk = lambda text: re.search(r"^\s*(\d+)\) " + re.escape(dev) + " ", text, re.M).group(1)
answers = [
    (rb"3\) Fran\xc3\xa7ais\n[^\n]*\]: $", lambda text: "1"),
    (rb"2\) Reset an installed system[^\n]*\n[^\n]*\]: $", lambda text: "2"),
    (rb"Reset which disk\? \[[^]]*\]: $", lambda text: "q" if "Nothing was written" in text else disk(text)),
    (rb"erase only the system\? \[y/N\]: $", lambda text: ""),
    (rb"first start\): $", lambda text: ""),
    (rb"anything else goes back: $", lambda text: confirm),
]
out, pending, deadline = b"", b"", time.time() + 120
while time.time() < deadline:
    if not select.select([p.stdout], [], [], max(deadline - time.time(), 0))[0]:
        break
    b = os.read(p.stdout.fileno(), 4096)
    if not b:
        break
    out += b
    pending += b
    for pattern, answer in answers:
        if re.search(pattern, pending):
            reply = answer(out.decode(errors="replace"))
            out += (reply + "\n").encode()
            p.stdin.write((reply + "\n").encode())
            p.stdin.flush()
            pending = b""
            break
p.stdin.close()
try:
    code = p.wait(timeout=60)
except subprocess.TimeoutExpired:
    p.kill()
    code = p.wait()
open(transcript, "wb").write(out + b"\nexit status %d\n" % code)
PY
}

t=$WORK/reset.txt
run_dialogue "$t" "not-the-disk"
grep -q "What do you want to do?" "$t" || { cat "$t" >&2; fail "the first question does not offer install or reset"; }
grep -qE "^ +[0-9]+\) $dev " "$t" || { cat "$t" >&2; fail "the disk imprint installed is not offered"; }
grep -q "installed by imprint; with a home partition" "$t" || { cat "$t" >&2; fail "the disk list does not say what is on the disk"; }
grep -q "What happens to each partition:" "$t" || { cat "$t" >&2; fail "the plan is not shown"; }
grep -qE '^ +1 +esp .*kept as it is' "$t" || { cat "$t" >&2; fail "the plan does not say the ESP is kept"; }
grep -qE '^ +2 +root .*ERASED by ' "$t" || { cat "$t" >&2; fail "the plan does not say root is erased"; }
grep -qE '^ +3 +home .*ERASED by ' "$t" || { cat "$t" >&2; fail "the plan does not say home is erased"; }
grep -q "This ERASES the system and every user's files on $dev for good" "$t" || { cat "$t" >&2; fail "the confirmation does not say what it erases"; }
grep -q "Nothing was written" "$t" || { cat "$t" >&2; fail "a wrong name did not stop the reset"; }
grep -q "exit status 6" "$t" || { cat "$t" >&2; fail "quitting after a wrong name does not exit 6"; }
[ "$(checksum "$img")" = "$sum" ] || fail "a wrong name typed in the reset dialogue changed the disk"
pass "the reset dialogue offers the disk, shows what is erased and kept, and a wrong name erases nothing"

t=$WORK/recovery.txt
run_dialogue "$t" "not-the-disk" --reset
! grep -q "What do you want to do?" "$t" || { cat "$t" >&2; fail "--plain --reset asks install or reset"; }
grep -q "What happens to each partition:" "$t" || { cat "$t" >&2; fail "--plain --reset does not show the plan"; }
[ "$(checksum "$img")" = "$sum" ] || fail "--plain --reset changed the disk without a confirmation"
pass "imprint --plain --reset goes straight to the reset"
