#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Which machine, which disk (issue 16): an OEM line's configuration names the machine models it
# may image ("machines", checked against DMI: a fake /sys/class/dmi/id through IMPRINT_DMI_DIR),
# the disk by rules ("target" as an object, matched against loop devices: tests allow them with
# IMPRINT_TARGET_ALLOW_LOOP, naming this test's own two), and a countdown a key press cancels. Every refusal writes nothing:
# the targets' contents are compared before and after.
. "$(dirname "$0")/lib.sh"
need_root "test-oem-match"
need_tool jq
need_tool sfdisk

src=$WORK/fakeos.img
bash "$(dirname "$0")/make-fake-ddi.sh" "$src" 200

dmi=$WORK/dmi
mkdir "$dmi"
echo "ImprintTest Inc." >"$dmi/sys_vendor"
echo "Line 7 Laptop" >"$dmi/product_name"
echo "LT7-SKU-0042" >"$dmi/product_sku"
echo "LT7-BOARD" >"$dmi/board_name"
export IMPRINT_DMI_DIR=$dmi

# run_config EXPECTED-EXIT JSON: writes the configuration, runs imprint unattended on it, keeps
# stdout and stderr in $WORK.
run_config() {
        local want=$1
        echo "$2" >"$WORK/config.json"
        expect_exit "$want" "$IMPRINT" unattended --config "$WORK/config.json"
}

untouched() {  # FILE: an image truncated to its size and never written has no blocks
        [ "$(du -k "$1" | cut -f1)" = 0 ] || fail "a refused configuration wrote to $1"
}

failed_result() {  # EXIT: the last JSON line says the install failed, with that code and a message
        jq -e -s --argjson c "$1" '.[-1].event == "result" and .[-1].success == false and .[-1].exitCode == $c and (.[-1].message | length > 0)' \
                "$WORK/stdout" >/dev/null || { cat "$WORK/stdout" >&2; fail "no failed result event with exit code $1"; }
}

# ---- the machine allowlist --------------------------------------------------------------------
tgt=$WORK/match.img
truncate -s 4G "$tgt"
run_config 0 '{ "source": "'"$src"'", "target": "'"$tgt"'", "afterInstall": "none", "countdownSeconds": 0,
                "machines": [ { "vendor": "Dell Inc." },
                              { "vendor": "ImprintTest*", "product": "Line 7*", "sku": "LT7-SKU-*", "board": "LT7-BOARD" } ] }'
jq -e -s '.[-1] == {"event":"result","success":true,"exitCode":0}' "$WORK/stdout" >/dev/null || fail "no success result"
sfdisk --json "$tgt" | jq -e '[.partitiontable.partitions[].name] | .[0] == "ESP" and length >= 2' >/dev/null || fail "the allowed machine was not installed"
pass "a machine that matches every field of an allowlist entry is installed"

# The same allowlist on another machine: refused, the machine named, nothing written, and the
# warning framed on the console.
echo "LT9-SKU-0001" >"$dmi/product_sku"
truncate -s 4G "$WORK/refused.img"
run_config 3 '{ "source": "'"$src"'", "target": "'"$WORK/refused.img"'", "afterInstall": "none", "countdownSeconds": 0,
                "machines": [ { "vendor": "ImprintTest*", "product": "Line 7*", "sku": "LT7-SKU-*" } ] }'
expect_stderr 'This machine (vendor "ImprintTest Inc.", product "Line 7 Laptop", SKU "LT9-SKU-0001", board "LT7-BOARD") is not on the "machines" allowlist of'
expect_stderr 'THIS MACHINE IS NOT ON THE ALLOWLIST - NOTHING WAS WRITTEN'
failed_result 3
jq -e -s '.[-1].message | test("not on the \"machines\" allowlist") and test("nothing was written")' "$WORK/stdout" >/dev/null ||
        fail "the result event does not carry the refusal"
untouched "$WORK/refused.img"
pass "a machine not on the allowlist is refused (exit 3) with its DMI identity, nothing written"

# A machine without DMI, when the configuration has an allowlist: refused.
IMPRINT_DMI_DIR=$WORK/no-dmi expect_exit 3 "$IMPRINT" unattended --config "$WORK/config.json"
expect_stderr "This machine has no DMI identity"
untouched "$WORK/refused.img"
pass "a machine without DMI is refused when there is an allowlist"

# ---- target rules on loop devices -------------------------------------------------------------
# Sizes no other test uses, so that loop devices of tests running beside this one stay out of the
# rules' windows.
truncate -s 4111M "$WORK/a.img"
truncate -s 4222M "$WORK/b.img"
attach "$WORK/a.img" --no-partscan; A=$ATTACHED
attach "$WORK/b.img" --no-partscan; B=$ATTACHED
sum_a=$(checksum "$WORK/a.img")
sum_b=$(checksum "$WORK/b.img")
both_untouched() {
        [ "$(checksum "$WORK/a.img")" = "$sum_a" ] && [ "$(checksum "$WORK/b.img")" = "$sum_b" ] || fail "a refused target rule wrote to a disk"
}
rules() {  # EXIT RULES-JSON [ENV...]
        local want=$1 rule=$2
        echo '{ "source": "'"$src"'", "target": '"$rule"', "afterInstall": "none", "countdownSeconds": 0, "encrypt": false,
                "waitForTargetSeconds": 0 }' >"$WORK/config.json"
        # Only this test's loop devices may be picked; every rule below also has a size window
        # only they fit in: other tests' loop devices may be attached at the same time.
        expect_exit "$want" env IMPRINT_TARGET_ALLOW_LOOP="$A:$B" "$IMPRINT" unattended --config "$WORK/config.json"
}

# Two disks match: refused, both listed with model, size and transport.
rules 3 '{ "transport": "loop", "minSize": "4100M", "maxSize": "4300M" }'
expect_stderr "2 disks match the \"target\" rules of"
expect_stderr "$A (no model, 4.0 GiB, loop)"
expect_stderr "$B (no model, 4.1 GiB, loop)"
expect_stderr "Nothing was written"
failed_result 3
both_untouched
pass "two disks matching the rules are refused (exit 3) and both listed"

# None matches: each disk and why.
rules 2 '{ "transport": ["nvme", "sata"], "minSize": "4200M", "maxSize": "4300M" }'
expect_stderr "No disk matches the \"target\" rules of"
expect_stderr "$A: transport loop (not nvme or sata), 4.0 GiB (below minSize 4.1 GiB)"
grep -qE "$B: transport loop \(not nvme or sata\)[;.]" "$WORK/stderr" || { cat "$WORK/stderr" >&2; fail "$B's reason is not just its transport"; }
failed_result 2
both_untouched
rules 2 '{ "transport": "loop", "minSize": "4300M", "maxSize": "4400M" }'
expect_stderr "$A: 4.0 GiB (below minSize 4.2 GiB)"
expect_stderr "$B: 4.1 GiB (below minSize 4.2 GiB)"
rules 2 '{ "transport": "loop", "minSize": "4000M", "maxSize": "4100M" }'
expect_stderr "$A: 4310695936 bytes (above maxSize 4299161600 bytes)"  # both "4.0 GiB": in bytes
both_untouched
# A loop device is as rotational as the disk under its file: the rule asks for the other kind.
if [ "$(cat "/sys/block/${A#/dev/}/queue/rotational")" = 1 ]; then is=rotational; other=false; not="solid state"
else is="solid state"; other=true; not=rotational; fi
rules 2 '{ "rotational": '"$other"', "minSize": "4100M", "maxSize": "4300M", "transport": "loop" }'
expect_stderr "$A: $is (not $not)"
both_untouched
# Without the tests' switch, loop devices are never targets.
echo '{ "source": "'"$src"'", "target": { "minSize": "4100M", "maxSize": "4300M" }, "countdownSeconds": 0, "waitForTargetSeconds": 0 }' >"$WORK/config.json"
expect_exit 2 env -u IMPRINT_TARGET_ALLOW_LOOP "$IMPRINT" unattended --config "$WORK/config.json"
expect_stderr "$A: a loop device (never a target)"
expect_stderr "$B: a loop device (never a target)"
both_untouched
pass "no disk matching is refused (exit 2) with each disk's reason: transport, size, rotational, loop device"

# A rule by size and transport that matches exactly one: the install goes there, and only there.
rules 0 '{ "transport": ["nvme", "loop"], "minSize": "4200M", "maxSize": "4300M", "rotational": '"$([ "$other" = true ] && echo false || echo true)"' }'
jq -e -s '.[-1] == {"event":"result","success":true,"exitCode":0}' "$WORK/stdout" >/dev/null || fail "no success result"
grep -qF "$B" "$WORK/stdout" || fail "the progress does not name $B"
! grep -qF "$A" "$WORK/stdout" || fail "the progress names $A, which the rules did not pick"
sfdisk --json "$B" | jq -e '[.partitiontable.partitions[].name] | .[0] == "ESP" and length >= 2' >/dev/null || fail "$B was not installed"
[ "$(checksum "$WORK/a.img")" = "$sum_a" ] || fail "$A was written, though the rules picked $B"
pass "a rule by size and transport matching exactly one disk installs to it ($B) and nothing else"
sum_b=$(checksum "$WORK/b.img")  # what the bad rules below must leave as it is

# ---- the countdown ----------------------------------------------------------------------------
# imprint runs on a terminal (a pty, as a person or the rig's serial console would see it);
# countdown_pty.py types a key once the countdown is on the screen, or none.
cat >"$WORK/countdown_pty.py" <<'PY'
import os, pty, select, subprocess, sys, time
transcript, stdout, key = sys.argv[1], sys.argv[2], sys.argv[3]
master, slave = pty.openpty()
with open(stdout, "wb") as out:
    p = subprocess.Popen(sys.argv[4:], stdin=slave, stdout=out, stderr=slave, start_new_session=True)
os.close(slave)
buf, typed, deadline = b"", False, time.time() + 240
while time.time() < deadline:
    r, _, _ = select.select([master], [], [], 0.2)
    if r:
        try:
            data = os.read(master, 4096)
        except OSError:
            data = b""
        if not data and p.poll() is not None:
            break
        buf += data
    elif p.poll() is not None:
        break
    if key == "key" and not typed and b"press any key to cancel" in buf:
        os.write(master, b"x")
        typed = True
open(transcript, "wb").write(buf)
try:
    sys.exit(p.wait(timeout=10))
except subprocess.TimeoutExpired:
    p.kill()
    sys.exit(99)
PY
tgt=$WORK/countdown.img
truncate -s 4G "$tgt"
echo '{ "source": "'"$src"'", "target": "'"$tgt"'", "afterInstall": "none", "countdownSeconds": 30 }' >"$WORK/config.json"
rc=0
python3 "$WORK/countdown_pty.py" "$WORK/pty.txt" "$WORK/stdout" key "$IMPRINT" unattended --config "$WORK/config.json" || rc=$?
[ "$rc" = 6 ] || { cat "$WORK/pty.txt" "$WORK/stdout" >&2; fail "a key during the countdown: exit $rc, expected 6 (canceled)"; }
grep -qF "Installing fakeos.img to $tgt (no model, 4 GiB) in 30 s - press any key to cancel" "$WORK/pty.txt" ||
        { cat "$WORK/pty.txt" >&2; fail "the countdown does not name the image and the disk"; }
grep -qF "The countdown was cancelled by a key press; nothing was written." "$WORK/pty.txt" || { cat "$WORK/pty.txt" >&2; fail "no cancel sentence"; }
jq -e -s --arg t "$tgt" 'any(.[]; . == {"event":"countdown","seconds":30,"target":$t}) and .[-1].exitCode == 6' "$WORK/stdout" >/dev/null ||
        { cat "$WORK/stdout" >&2; fail "no countdown event, or no canceled result"; }
untouched "$tgt"
pass "a key pressed during the countdown cancels (exit 6), nothing written"

# Nobody presses a key: after the countdown the install runs.
echo '{ "source": "'"$src"'", "target": "'"$tgt"'", "afterInstall": "none", "countdownSeconds": 2 }' >"$WORK/config.json"
rc=0
python3 "$WORK/countdown_pty.py" "$WORK/pty.txt" "$WORK/stdout" none "$IMPRINT" unattended --config "$WORK/config.json" || rc=$?
[ "$rc" = 0 ] || { cat "$WORK/pty.txt" "$WORK/stdout" >&2; fail "the countdown ran out, yet exit $rc"; }
grep -qF "in 2 s - press any key" "$WORK/pty.txt" && grep -qF "in 1 s - press any key" "$WORK/pty.txt" ||
        { cat "$WORK/pty.txt" >&2; fail "the countdown did not count each second"; }
sfdisk --json "$tgt" | jq -e '[.partitiontable.partitions[].name] | .[0] == "ESP" and length >= 2' >/dev/null || fail "no install after the countdown ran out"
pass "when the countdown runs out, the install goes on"

# ---- bad configurations: one sentence each, exit 2, nothing written ---------------------------
bad() {
        truncate -s 4G "$WORK/bad.img"
        run_config 2 "$1"
        untouched "$WORK/bad.img"
        failed_result 2
        expect_stderr "$2"
        [ "$(grep -c '^imprint: ' "$WORK/stderr")" = 1 ] || { cat "$WORK/stderr" >&2; fail "not one sentence for: $1"; }
}
bad '{ "source": "'"$src"'", "target": "'"$WORK/bad.img"'", "machines": [ { "vendor": "LENOVO", "colour": "black" } ] }' \
        'unknown key "machines[0].colour" (use vendor, product, sku, board).'
bad '{ "source": "'"$src"'", "target": "'"$WORK/bad.img"'", "machines": [] }' '"machines" must be a non-empty list'
bad '{ "source": "'"$src"'", "target": "'"$WORK/bad.img"'", "machines": [ {} ] }' '"machines[0]" must be an object with at least one of'
bad '{ "source": "'"$src"'", "target": { "minSize": "2T", "maxSize": "100G" } }' \
        '"target.minSize" (2 TiB) is larger than "target.maxSize" (100 GiB), so no disk could match.'
bad '{ "source": "'"$src"'", "target": { "transport": "firewire" } }' \
        '"target.transport": "firewire" is not a transport; use nvme, sata, usb, virtio, scsi or mmc.'
bad '{ "source": "'"$src"'", "target": { "serial": "S6Z1*" } }' 'unknown key "target.serial".'
bad '{ "source": "'"$src"'", "target": {} }' '"target" needs at least one rule'
bad '{ "source": "'"$src"'", "target": "'"$WORK/bad.img"'", "countdownSeconds": -1 }' '"countdownSeconds" must be a number from 0 to 3600.'
both_untouched
pass "bad machine, target and countdown settings are refused with one sentence each (exit 2), nothing written"
