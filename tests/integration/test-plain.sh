#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# imprint --plain, the line-by-line dialogue, driven like a person on a serial console would:
# read the disk list, pick the test's loop device by its number, accept the layout, type the
# disk's name to confirm. The installed disk is then checked with stock sfdisk and mtools.
# Also: quitting writes nothing, and a wrong confirmation goes back without writing.
. "$(dirname "$0")/lib.sh"
need_root "loop devices"
need_tool objcopy

src=$WORK/fakeos.img
bash "$(dirname "$0")/make-fake-ddi.sh" "$src" 200
tgt=$WORK/disk.img
truncate -s 4G "$tgt"
attach "$tgt"
dev=$ATTACHED
name=${dev#/dev/}
sum=$(checksum "$tgt")

# run_dialogue CONFIRMATION: answers each question as it appears (prompts end without a newline,
# so the driver reads byte by byte) and appends the transcript to $WORK/transcript.
run_dialogue() {
        /usr/bin/python3 - "$IMPRINT" "$src" "$dev" "$1" "$WORK/transcript" <<'PY'
import os, re, subprocess, sys, time
imprint, src, dev, confirm, transcript = sys.argv[1:]
p = subprocess.Popen([imprint, "--plain", "--source", src], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                     stderr=subprocess.STDOUT)
out, pending, deadline = b"", b"", time.time() + 120
answers = [
    # The first question, in whatever language the environment preselects: English is 1.
    (rb"3\) Fran\xc3\xa7ais\n[^\n]*\]: $", lambda text: "1"),
    # Install, not "Reset an installed system" (test-reset-cli.sh and test-reset.sh cover that).
    (rb"2\) Reset an installed system[^\n]*\n[^\n]*\]: $", lambda text: "1"),
    (rb"Install to which disk\? \[[^]]*\]: $", lambda text: re.search(r"^\s*(\d+)\) " + re.escape(dev) + " ", text, re.M).group(1)),
    (rb"use free space \(f\)\? \[e\]: $", lambda text: "e"),
    (rb"or press Enter for none: $", lambda text: ""),
    (rb"Encrypt root and home \(recommended\)\? \[Y/n\]: $", lambda text: "n"),
    (rb"User name \(lower case; Enter for none\): $", lambda text: ""),
    # The fake image has no time zone data or keymaps: keep what it has.
    (rb"(Computer name|Time zone|Language \(locale\)|Keyboard layout \(keymap\)) \[[^]]*\]: $", lambda text: "-"),
    (rb"anything else goes back: $", lambda text: confirm),
    (rb"or \[s\]hell\? $", lambda text: "s"),
]
while time.time() < deadline:
    b = p.stdout.read1(4096) if hasattr(p.stdout, "read1") else os.read(p.stdout.fileno(), 4096)
    if not b:
        break
    out += b
    pending += b
    for pattern, answer in answers:
        if re.search(pattern, pending):
            reply = answer(out.decode(errors="replace"))
            if pattern.startswith(rb"Install") and confirm != os.path.basename(dev) and b"Nothing was written" in out:
                reply = "q"
            out += (reply + "\n").encode()
            p.stdin.write((reply + "\n").encode())
            p.stdin.flush()
            pending = b""
            break
p.stdin.close()
p.wait(timeout=60)
open(transcript, "ab").write(out)
PY
}

# A wrong confirmation writes nothing.
: >"$WORK/transcript"
run_dialogue "not-the-disk"
grep -q "Welcome to imprint" "$WORK/transcript" || { cat "$WORK/transcript" >&2; fail "no welcome line"; }
grep -q "This installs Imprint Fake OS 7" "$WORK/transcript" || fail "the dialogue does not say what it installs"
grep -q "Nothing was written" "$WORK/transcript" || { cat "$WORK/transcript" >&2; fail "a wrong confirmation did not stop"; }
[ "$(checksum "$tgt")" = "$sum" ] || fail "a wrong confirmation changed the disk"
pass "a wrong confirmation writes nothing"

# The real thing.
: >"$WORK/transcript"
run_dialogue "$name"
grep -q "DESTROYS everything" "$WORK/transcript" || { cat "$WORK/transcript" >&2; fail "the confirmation does not warn"; }
grep -q "Imprint Fake OS 7 is installed on $dev" "$WORK/transcript" || { cat "$WORK/transcript" >&2; fail "the install did not finish"; }
sfdisk --json "$dev" | jq -e '[.partitiontable.partitions[].type] == ["C12A7328-F81F-11D2-BA4B-00A0C93EC93B", "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709"]' >/dev/null \
        || fail "sfdisk does not show ESP and root on $dev"
MTOOLS_SKIP_CHECK=1 mdir -b -i "${dev}p1" ::/EFI/Linux 2>/dev/null | grep -q fakeos_7.efi || fail "the UKI is not on the ESP"
pass "the plain dialogue installs onto the chosen disk"
