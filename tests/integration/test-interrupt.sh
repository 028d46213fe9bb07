#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Fault injection: an install with an account (so that the configure step mounts the installed
# root) into an image file and into a loop device is stopped at the beginning, the middle and the
# end of EVERY step, once with SIGINT and once with kill -9. The executor's test-only hook
# IMPRINT_TEST_PAUSE_AT=STEP:PHASE stops the process (SIGSTOP) at that point; the signal is sent
# to the stopped process, which SIGCONT then lets see it. After each stop:
#   - SIGINT: exit status 130 and one sentence saying what state the target is in;
#   - before the first write the target is unchanged (checksum of every byte), after it stock
#     sfdisk shows the partitions named "imprint-incomplete" and `imprint disks` (text and --json)
#     says "incomplete install" and names no installed system;
#   - no loop device on the image and no mount of imprint's is left over, after kill -9 too;
#   - the same command run again completes, and the result checks out with stock tools: sfdisk
#     shows the planned table and names, fsck.fat -n and e2fsck -fn find nothing, the ESP holds
#     systemd-boot and the UKI, alice is in the installed /etc/passwd, and `disks` lists the OS.
# Also once with --plan-file, whose saved fingerprint no longer matches the interrupted target.
# Before this, SIGINT killed imprint silently, `disks` called a half-copied target "installed",
# and kill -9 in the configure step left a loop device and a mount that made the re-run refuse.
. "$(dirname "$0")/lib.sh"
need_root
need_tool useradd chpasswd systemd-firstboot debugfs losetup sfdisk fsck.fat e2fsck mdir jq

src=$WORK/src.raw
FAKE_DDI_ACCOUNTS=1 bash "$(dirname "$0")/make-fake-ddi.sh" "$src" 40
src_nosum=$WORK/src-nosum.raw
cp --sparse=always "$src" "$src_nosum"
mkdir -m 0700 "$WORK/creds"
printf '%s' 'Kestrel-harbour 9 lantern' >"$WORK/creds/imprint.user-password"
chmod 0600 "$WORK/creds/imprint.user-password"
export CREDENTIALS_DIRECTORY=$WORK/creds

file_img=$WORK/target.img
loop_img=$WORK/loop-backing.img
truncate -s 2G "$file_img" "$loop_img"
attach "$loop_img"
loopdev=$ATTACHED

# backing TARGET: the file that holds the target's bytes
backing() { if [ -b "$1" ]; then echo "$loop_img"; else echo "$1"; fi; }

# install_cmd TARGET SOURCE: the command under test. A copy of the image without its .sha256 file
# is installed except where the verify-image step (which only reads the image, and only exists
# with a checksum) is interrupted, on the image file: each install then takes half the time.
install_cmd() { "$IMPRINT" install --source "$2" --target "$1" --seed interrupt --no-encrypt --user alice --hostname interrupted --yes --json; }

# on_region FILE OFFSET SIZE CMD...: runs CMD on a read-only loop device over that region of FILE
# (fsck.fat and e2fsck take no offset); output in $WORK/region.out.
on_region() {
        local f=$1 off=$2 size=$3 l rc=0
        shift 3
        l=$(losetup -r -f --show -o "$off" --sizelimit "$size" "$f")
        LOOPS+=("$l")
        "$@" "$l" >"$WORK/region.out" 2>&1 || rc=$?
        losetup -d "$l"
        return $rc
}

esp_check() { fsck.fat -n "$1" && mdir -/ -b -i "$1" ::/; }

# check_installed TARGET WHAT: the install on TARGET is complete and sound, by stock tools.
check_installed() {
        local t=$1 what=$2 esp_off root_off b
        b=$(backing "$t")
        "$IMPRINT" plan --source "$src_nosum" --target "$t" --seed interrupt --no-encrypt --user alice --hostname interrupted --json >"$WORK/plan.json" 2>/dev/null \
                || fail "$what: cannot plan again over the installed target"
        # The plan of a re-install erases partitions; what sfdisk reads must be what the plan
        # would write, names included (no "imprint-incomplete" left).
        compare_with_sfdisk "$WORK/plan.json" "$t"
        esp_off=$(jq '.partitions[] | select(.role == "esp") | .start' "$WORK/plan.json")
        esp_size=$(jq '.partitions[] | select(.role == "esp") | .size' "$WORK/plan.json")
        root_off=$(jq '.partitions[] | select(.role == "root") | .start' "$WORK/plan.json")
        root_size=$(jq '.partitions[] | select(.role == "root") | .size' "$WORK/plan.json")
        on_region "$b" "$esp_off" "$esp_size" esp_check || { cat "$WORK/region.out" >&2; fail "$what: fsck.fat finds errors on the ESP, or mtools cannot read it"; }
        grep -qi '::/EFI/systemd/systemd-bootx64.efi' "$WORK/region.out" || { cat "$WORK/region.out" >&2; fail "$what: no systemd-boot on the ESP"; }
        grep -qi '::/EFI/Linux/.*\.efi' "$WORK/region.out" || fail "$what: no UKI on the ESP"
        on_region "$b" "$root_off" "$root_size" e2fsck -fn || { cat "$WORK/region.out" >&2; fail "$what: e2fsck finds errors on the root"; }
        debugfs -R 'cat /etc/passwd' "$b?offset=$root_off" 2>/dev/null | grep -q '^alice:' || fail "$what: alice is not in the installed /etc/passwd"
        "$IMPRINT" disks --json "$t" >"$WORK/disks.json"
        jq -e '.[0].incompleteInstall == false and (.[0].installed | any(test("Imprint Fake OS 7")))' "$WORK/disks.json" >/dev/null \
                || { cat "$WORK/disks.json" >&2; fail "$what: disks does not list the installed system"; }
}

# check_incomplete TARGET WHAT: an interrupted install is listed as incomplete, and as nothing else.
check_incomplete() {
        local t=$1 what=$2
        sfdisk --json "$t" | jq -e '[.partitiontable.partitions[] | select(.name == "imprint-incomplete")] | length >= 2' >/dev/null \
                || { sfdisk -d "$t" >&2; fail "$what: the partitions are not marked as an incomplete install"; }
        "$IMPRINT" disks --json "$t" >"$WORK/disks.json"
        jq -e '.[0].incompleteInstall == true and (.[0].installed | any(test("incomplete install")))
               and (.[0].installed | all(test("Imprint Fake OS") | not))' "$WORK/disks.json" >/dev/null \
                || { cat "$WORK/disks.json" >&2; fail "$what: disks --json does not say incomplete install"; }
        "$IMPRINT" disks "$t" | grep -q 'installed: incomplete install' || fail "$what: disks does not say incomplete install"
}

# check_no_leftovers TARGET WHAT: nothing of imprint's on TARGET stays mounted or attached (other
# tests may have mounts of their own under /run/imprint-target.*: only this target's count).
check_no_leftovers() {
        local t=$1 what=$2
        if [ ! -b "$t" ]; then
                # A mount of the image's root would need a loop device on the image.
                [ -z "$(losetup -j "$t")" ] || { losetup -j "$t" >&2; fail "$what: a loop device on the image is left"; }
        else
                [ "$(losetup -j "$loop_img" | wc -l)" = 1 ] || { losetup -j "$loop_img" >&2; fail "$what: an extra loop device is left"; }
                ! awk -v p="${t}p" 'index($0, " - ") { split(substr($0, index($0, " - ") + 3), f, " "); if (index(f[2], p) == 1) found = 1 } END { exit !found }' /proc/self/mountinfo \
                        || fail "$what: a partition of $t is mounted"
        fi
}

# wait_stopped PID WHAT: until the process stops at its pause point (or fail if it ends first).
wait_stopped() {
        local pid=$1 what=$2 state i
        for i in $(seq 600); do
                state=$(awk '{ print $3 }' "/proc/$pid/stat" 2>/dev/null || echo gone)
                [ "$state" = T ] && return 0
                [ "$state" = gone ] || [ "$state" = Z ] && { cat "$WORK/err" >&2; fail "$what: imprint ended before reaching the pause point"; }
                sleep 0.05
        done
        fail "$what: imprint did not reach the pause point"
}

run_cases() {
        local t=$1 kind=$2 steps step phase sig before rc what first_write=0 s
        # A clean install first: the list of steps, and a complete target to start from.
        install_cmd "$t" "$src_nosum" >"$WORK/out" 2>"$WORK/err" || { cat "$WORK/out" "$WORK/err" >&2; fail "$kind: the first install failed"; }
        check_installed "$t" "$kind: clean install"
        steps=$(jq -r 'select(.event == "planned") | .id' "$WORK/out")
        [ -b "$t" ] || steps="verify-image $steps"
        echo "$kind: steps: $(echo $steps)"
        grep -qx configure <<<"$steps" || fail "$kind: the install has no configure step"
        for step in $steps; do
                [ "$step" = partition ] && first_write=1
                s=$src_nosum
                [ "$step" = verify-image ] && s=$src
                for phase in begin middle end; do
                        for sig in INT KILL; do
                                what="$kind, SIG$sig at $step:$phase"
                                echo "$what"
                                before=
                                if [ "$first_write" = 0 ] || [ "$step" = partition ]; then before=$(checksum "$(backing "$t")"); fi
                                IMPRINT_TEST_PAUSE_AT=$step:$phase "$IMPRINT" install --source "$s" --target "$t" --seed interrupt --no-encrypt \
                                        --user alice --hostname interrupted --yes --json >"$WORK/out" 2>"$WORK/err" &
                                pid=$!
                                wait_stopped "$pid" "$what"
                                kill -"$sig" "$pid"
                                kill -CONT "$pid" 2>/dev/null || true
                                rc=0
                                { wait "$pid"; } 2>/dev/null || rc=$? # no "Killed" line from bash
                                # The last step is the install's completion: once it has begun
                                # to write, it finishes.
                                if [ "$step" = finish ] && [ "$phase" != begin ]; then
                                        # The names are written: the install is complete, and
                                        # SIGINT no longer stops it.
                                        [ "$sig" = KILL ] || [ "$rc" = 0 ] || { cat "$WORK/err" >&2; fail "$what: exit $rc, expected 0"; }
                                        check_no_leftovers "$t" "$what"
                                        check_installed "$t" "$what"
                                        continue
                                fi
                                if [ "$sig" = INT ]; then
                                        [ "$rc" = 130 ] || { cat "$WORK/out" "$WORK/err" >&2; fail "$what: exit $rc, expected 130"; }
                                        [ "$(grep -c '^imprint: Interrupted' "$WORK/err")" = 1 ] || { cat "$WORK/err" >&2; fail "$what: not one sentence about the interruption"; }
                                        jq -e 'select(.event == "result") | .exitCode == 130' "$WORK/out" >/dev/null || fail "$what: no JSON result with exit code 130"
                                else
                                        [ "$rc" = 137 ] || fail "$what: exit $rc after kill -9"
                                fi
                                check_no_leftovers "$t" "$what"
                                if [ "$first_write" = 0 ] || { [ "$step" = partition ] && [ "$phase" = begin ]; }; then
                                        [ "$sig" = KILL ] || grep -qx "imprint: Interrupted before anything was written: $t is unchanged." "$WORK/err" \
                                                || { cat "$WORK/err" >&2; fail "$what: wrong message"; }
                                        [ "$(checksum "$(backing "$t")")" = "$before" ] || fail "$what: the target changed before the first write"
                                elif [ "$step" = partition ] && [ "$phase" = middle ] && [ "$sig" = KILL ]; then
                                        : # killed right after the table was written: it says incomplete, checked below
                                        check_incomplete "$t" "$what"
                                else
                                        [ "$sig" = KILL ] || grep -qx "imprint: Interrupted: $t is partitioned but not completely installed and does not boot; run the same command again to install it." "$WORK/err" \
                                                || { cat "$WORK/err" >&2; fail "$what: wrong message"; }
                                        check_incomplete "$t" "$what"
                                fi
                                install_cmd "$t" "$s" >"$WORK/out" 2>"$WORK/err" || { cat "$WORK/out" "$WORK/err" >&2; fail "$what: the same command run again failed"; }
                                check_installed "$t" "$what: run again"
                        done
                done
        done
        pass "$kind: SIGINT and kill -9 at the beginning, middle and end of every step; each run again completes"
}

run_cases "$file_img" "image file"
run_cases "$loopdev" "loop device"

# The same with a plan file: its fingerprint describes the target before the interrupted run, yet
# `install --plan-file` run again recognises its own interrupted install and finishes it.
truncate -s 0 "$file_img"
truncate -s 2G "$file_img"
"$IMPRINT" plan --source "$src_nosum" --target "$file_img" --seed interrupt --no-encrypt --user alice --hostname interrupted \
        --json --plan-file "$WORK/saved-plan.json" >/dev/null
IMPRINT_TEST_PAUSE_AT=copy-root:middle "$IMPRINT" install --plan-file "$WORK/saved-plan.json" --yes >"$WORK/out" 2>"$WORK/err" &
pid=$!
wait_stopped "$pid" "plan file"
kill -INT "$pid"
kill -CONT "$pid"
rc=0
wait "$pid" || rc=$?
[ "$rc" = 130 ] || { cat "$WORK/err" >&2; fail "plan file: exit $rc after SIGINT, expected 130"; }
check_incomplete "$file_img" "plan file"
"$IMPRINT" install --plan-file "$WORK/saved-plan.json" --yes >"$WORK/out" 2>"$WORK/err" || { cat "$WORK/err" >&2; fail "plan file: the same command run again failed"; }
check_installed "$file_img" "plan file"
pass "install --plan-file interrupted in the copy and run again completes"

# Free mode keeps what else is on the disk: run again, it replaces what the interrupted run left
# (the plan names those partitions as destroyed) and keeps the rest.
free_cmd=("$IMPRINT" install --source "$src_nosum" --target "$file_img" --free --seed interrupt --user alice --yes)
for sig in INT KILL; do
        truncate -s 0 "$file_img"
        truncate -s 3G "$file_img"
        printf 'label: gpt\nsize=100M, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name=keepme\n' | sfdisk -q "$file_img"
        keep_uuid=$(sfdisk --json "$file_img" | jq -r '.partitiontable.partitions[0].uuid')
        IMPRINT_TEST_PAUSE_AT=configure:middle "${free_cmd[@]}" >"$WORK/out" 2>"$WORK/err" &
        pid=$!
        wait_stopped "$pid" "free mode, SIG$sig"
        kill -"$sig" "$pid"
        kill -CONT "$pid" 2>/dev/null || true
        rc=0
        { wait "$pid"; } 2>/dev/null || rc=$?
        [ "$sig" = KILL ] || [ "$rc" = 130 ] || { cat "$WORK/err" >&2; fail "free mode: exit $rc after SIGINT, expected 130"; }
        check_no_leftovers "$file_img" "free mode, SIG$sig"
        check_incomplete "$file_img" "free mode, SIG$sig"
        "$IMPRINT" plan --source "$src_nosum" --target "$file_img" --free --seed interrupt --user alice --json >"$WORK/free-plan.json"
        jq -e '[.destroyed[] | select(.label == "imprint-incomplete")] | length == 2' "$WORK/free-plan.json" >/dev/null \
                || { cat "$WORK/free-plan.json" >&2; fail "free mode, SIG$sig: the plan does not name what it replaces"; }
        "${free_cmd[@]}" >"$WORK/out" 2>"$WORK/err" || { cat "$WORK/err" >&2; fail "free mode, SIG$sig: the same command run again failed"; }
        sfdisk --json "$file_img" >"$WORK/sfdisk.json"
        jq -e --arg u "$keep_uuid" '.partitiontable.partitions as $p
                | ($p | length) == 3 and ($p[0].uuid == $u) and ($p[0].name == "keepme")
                and ([$p[] | select(.name == "imprint-incomplete")] | length == 0)' "$WORK/sfdisk.json" >/dev/null \
                || { cat "$WORK/sfdisk.json" >&2; fail "free mode, SIG$sig: not the kept partition plus a complete install"; }
        "$IMPRINT" disks --json "$file_img" | jq -e '.[0].incompleteInstall == false' >/dev/null || fail "free mode, SIG$sig: still incomplete"
done
pass "free mode: interrupted in configure (SIGINT, kill -9), run again, replaces its own partitions and keeps the others"
