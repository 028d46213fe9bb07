#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Record and replay (issue 16): an attended install with imprint --plain --record FILE writes the
# configuration that repeats it. FILE is checked with jq (what was chosen is there, mode 0600, the
# typed password nowhere in it, the credential that must carry it named), then replayed by
# imprint unattended onto a second disk of the same size: stock sfdisk reads the same partition
# table from both (but for the UUIDs), and debugfs the same account and settings in both roots.
# Without the credential the replay is refused before anything is written; --record is checked
# before the dialogue starts.
. "$(dirname "$0")/lib.sh"
need_root "loop devices"
need_tool objcopy debugfs useradd jq

src=$WORK/fakeos.img
FAKE_DDI_ACCOUNTS=1 bash "$(dirname "$0")/make-fake-ddi.sh" "$src" 200
truncate -s 4G "$WORK/first.img" "$WORK/second.img"
attach "$WORK/first.img"
dev=$ATTACHED
attach "$WORK/second.img"
dev2=$ATTACHED
password="Kestrel-harbour 9 lantern"
# The attended install takes the password from a credential too: a pipe is no terminal to ask on.
mkdir -p "$WORK/creds"
printf '%s' "$password" >"$WORK/creds/imprint.user-password"
rec=$WORK/recorded.json

# run_dialogue TRANSCRIPT [ARGS…]: the English dialogue, answered as it asks (prompts end without
# a newline, so the driver reads as it comes).
run_dialogue() {
        local transcript=$1
        shift
        env -u LANGUAGE -u LC_ALL -u LC_MESSAGES LANG=C.UTF-8 CREDENTIALS_DIRECTORY="$WORK/creds" \
                /usr/bin/python3 - "$IMPRINT" "$src" "$dev" "$transcript" "$@" <<'PY'
import os, re, select, subprocess, sys, time
imprint, src, dev, transcript = sys.argv[1:5]
args = sys.argv[5:]
name = os.path.basename(dev)
p = subprocess.Popen([imprint, "--plain", "--source", src] + args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                     stderr=subprocess.STDOUT)
disk = lambda text: re.search(r"^\s*(\d+)\) " + re.escape(dev) + " ", text, re.M).group(1)
answers = [(re.compile(pat), a) for pat, a in [
    (r"3\) Français\n[^\n]*\]: $", "1"),
    (r"2\) Reset an installed system[^\n]*\n[^\n]*\]: $", "1"),
    (r"Install to which disk\? \[[^]]*\]: $", disk),
    (r"use free space \(f\)\? \[e\]: $", "e"),
    (r"or press Enter for none: $", "1G"),
    (r"Encrypt root and home \(recommended\)\? \[Y/n\]: $", "n"),
    (r"User name \(lower case; Enter for none\): $", "alice"),
    (r"Your full name: $", "Alice Example"),
    (r"administer the system \(sudo\)\? y/n \[y\]: $", "y"),
    (r"Computer name \[[^]]*\]: $", "line-7"),
    (r"Time zone \[[^]]*\]: $", "Europe/Berlin"),
    (r"(Language \(locale\)|Keyboard layout \(keymap\)) \[[^]]*\]: $", ""),
    (r"anything else goes back: $", name),
    (r"or \[s\]hell\? $", "s"),
]]
out, pending, deadline = b"", b"", time.time() + 120
while time.time() < deadline:
    if not select.select([p.stdout], [], [], max(deadline - time.time(), 0))[0]:
        break
    b = os.read(p.stdout.fileno(), 4096)
    if not b:
        break
    out += b
    pending += b
    text = pending.decode(errors="replace")
    for pattern, reply in answers:
        if pattern.search(text):
            reply = reply(out.decode(errors="replace")) if callable(reply) else reply
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

# ---- --record is checked before anything is asked ------------------------------------------------
sum=$(checksum "$WORK/first.img")
expect_exit 2 "$IMPRINT" --plain --source "$src" --record "$WORK/no/such/dir/r.json" </dev/null
expect_stderr "the directory $WORK/no/such/dir does not exist"
expect_exit 2 "$IMPRINT" --plain --reset --record "$rec" </dev/null
expect_stderr "a reset is not recorded"
expect_exit 2 "$IMPRINT" --plain --source "$src" --record "$WORK" </dev/null
expect_stderr "it is a directory, not a file"
[ ! -e "$rec" ] || fail "a refused --record wrote $rec"
[ "$(checksum "$WORK/first.img")" = "$sum" ] || fail "a refused --record wrote to the disk"
pass "--record names a file in a directory that exists, and is refused for a reset, before the dialogue"

# ---- the attended install, recorded ------------------------------------------------------------
t=$WORK/transcript.txt
run_dialogue "$t" --record "$rec"
grep -q "exit status 0" "$t" || { cat "$t" >&2; fail "the dialogue did not finish"; }
grep -q "Imprint Fake OS 7 is installed on $dev" "$t" || { cat "$t" >&2; fail "the install did not finish"; }
grep -qF "The configuration that repeats this install is in $rec. The replay needs the credentials it lists: imprint.user-password." "$t" \
        || { cat "$t" >&2; fail "the dialogue does not say where the record is and what it needs"; }
[ -f "$rec" ] || fail "no record was written"
[ "$(stat -c %a "$rec")" = 600 ] || fail "the record is mode $(stat -c %a "$rec"), not 0600"
! grep -qF "$password" "$rec" || fail "the typed password is in the record"
! grep -qiE '"(password|hashedPassword|recoveryKey)"' "$rec" || fail "the record has a secret's key"
ls "$WORK" | grep -q '^recorded\.json\.' && fail "a temporary file was left beside the record"
jq -e --arg src "$src" --arg dev "$dev" '
        . == {
                "source": $src, "target": $dev, "mode": "erase", "homeSize": "1G",
                "encrypt": false, "tpm2": "off",
                "user": { "name": "alice", "realName": "Alice Example", "storage": "luks", "admin": true,
                          "autoLogin": false, "classic": true },
                "hostname": "line-7", "timezone": "Europe/Berlin", "locale": "en_US.UTF-8", "keymap": "us",
                "noVariables": false, "credentials": ["imprint.user-password"]
        }' "$rec" >/dev/null || { cat "$rec" >&2; fail "the record does not hold what was chosen"; }
pass "imprint --plain --record writes what was chosen, 0600, without the password, naming its credential"

# ---- the replay: refused without the credential, then the same install on the second disk ---------
jq --arg dev "$dev2" '.target = $dev | .afterInstall = "none"' "$rec" >"$WORK/replay.json"
sum2=$(checksum "$WORK/second.img")
mkdir "$WORK/nocreds"
CREDENTIALS_DIRECTORY=$WORK/nocreds expect_exit 2 "$IMPRINT" unattended --config "$WORK/replay.json"
expect_stderr "imprint.user-password"
[ "$(checksum "$WORK/second.img")" = "$sum2" ] || fail "a replay without its credential wrote to the disk"
pass "a replay without the credential it lists is refused, and writes nothing"

CREDENTIALS_DIRECTORY=$WORK/creds "$IMPRINT" unattended --config "$WORK/replay.json" >"$WORK/events.json" 2>"$WORK/stderr" \
        || { cat "$WORK/events.json" "$WORK/stderr" >&2; fail "the replay failed"; }
jq -e -s '.[-1] == {"event":"result","success":true,"exitCode":0}' "$WORK/events.json" >/dev/null || fail "the replay did not succeed"
# The same partition table but for the UUIDs (the attended install had no seed) and the node names.
layout() {
        sfdisk --json "$1" | jq -c '.partitiontable | del(.device, .id) | .partitions |= map(del(.node, .uuid))'
}
[ "$(layout "$dev")" = "$(layout "$dev2")" ] || { layout "$dev"; layout "$dev2"; fail "the replay's partition table differs"; } >&2
sfdisk --json "$dev2" | jq -e '[.partitiontable.partitions[].name] == ["ESP", "fakeos_7", "home"]' >/dev/null \
        || fail "the replay has not ESP, root and home"
# The same account and settings in both installed roots.
fsx() { debugfs -R "$2" "${1}p2" 2>/dev/null; }
for f in /etc/passwd /etc/group /etc/hostname; do
        [ "$(fsx "$dev" "cat $f")" = "$(fsx "$dev2" "cat $f")" ] || fail "$f differs between the install and its replay"
done
fsx "$dev2" 'cat /etc/passwd' | grep -qx 'alice:x:[0-9]*:[0-9]*:Alice Example:/home/alice:/bin/bash' || fail "alice is not in the replay's /etc/passwd"
fsx "$dev2" 'cat /etc/group' | grep -q '^sudo:x:27:alice$' || fail "alice is not an administrator in the replay"
fsx "$dev2" 'cat /etc/hostname' | grep -qx line-7 || fail "the replay's hostname is not line-7"
fsx "$dev2" 'stat /etc/localtime' | grep -q 'Europe/Berlin' || fail "the replay's time zone is not Europe/Berlin"
# The password came from the credential: it opens the account in both (same yescrypt, not the same salt).
for d in "$dev" "$dev2"; do
        hash=$(fsx "$d" 'cat /etc/shadow' | awk -F: '$1 == "alice" { print $2 }')
        [ "$(python3 -c 'import crypt, sys; print(crypt.crypt(sys.argv[1], sys.argv[2]))' "$password" "$hash" 2>/dev/null)" = "$hash" ] \
                || fail "the password does not open alice's account on $d"
done
pass "imprint unattended replays the record onto a second disk: the same layout, account and settings"
