#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# One complete install into an image file under valgrind: the fake DDI with an account and the
# system settings (so every step runs: checksum, partition, copy, read-back, boot loader, account),
# then `imprint disks` on the result. Fails on any invalid read or write, use of uninitialised
# memory, bad free, or definitely lost block (valgrind's own verdict, --error-exitcode), and checks
# with stock sfdisk and mtools that the install really happened. Child processes (mkfs, mtools,
# useradd) are not traced: they are not imprint's code.
. "$(dirname "$0")/lib.sh"
need_root
need_tool valgrind
need_tool useradd
need_tool mdir
need_tool jq

src=$WORK/fakeos.img
FAKE_DDI_ACCOUNTS=1 bash "$(dirname "$0")/make-fake-ddi.sh" "$src" 200
img=$WORK/disk.img
truncate -s 4G "$img"
mkdir -m 0700 "$WORK/creds"
printf '%s' 'Kestrel-harbour 9 lantern' >"$WORK/creds/imprint.user-password"
chmod 0600 "$WORK/creds/imprint.user-password"

vg() {
        local log=$1
        shift
        # 99: valgrind found something; imprint's own exit codes are 0-4.
        valgrind --quiet --error-exitcode=99 --leak-check=full --show-leak-kinds=definite \
                --errors-for-leak-kinds=definite --log-file="$log" "$@"
}

set +e
CREDENTIALS_DIRECTORY=$WORK/creds vg "$WORK/install.vg" "$IMPRINT" install --source "$src" --target "$img" \
        --seed valgrind --home-size 512M --user alice --real-name "Alice Example" \
        --hostname imprint-vg --timezone Europe/Berlin --locale de_DE.UTF-8 --keymap de --yes >"$WORK/install.out" 2>&1
rc=$?
set -e
if [ $rc -ne 0 ]; then
        cat "$WORK/install.out" >&2
        cat "$WORK/install.vg" >&2
        [ $rc -eq 99 ] && fail "valgrind found errors or definite leaks in imprint install"
        fail "imprint install under valgrind exited $rc"
fi
# valgrind cannot check the loop device ioctls (LOOP_CTL_GET_FREE, LOOP_CONFIGURE) and says so in a
# three-line warning each time: that is a limit of valgrind, not a finding. Anything else is.
grep -v -e 'Warning: noted but unhandled ioctl 0x4c' -e 'This could cause spurious value errors' \
        -e 'See README_MISSING_SYSCALL_OR_IOCTL' "$WORK/install.vg" >"$WORK/install.findings" || true
[ ! -s "$WORK/install.findings" ] || { cat "$WORK/install.vg" >&2; fail "valgrind reported something during the install"; }
pass "imprint install under valgrind: no invalid accesses, no definite leaks"

# The install is real: the GPT as planned, systemd-boot and the UKI on the ESP.
sfdisk --json "$img" | jq -e '[.partitiontable.partitions[].name] == ["ESP", "fakeos_7", "home"]' >/dev/null \
        || { sfdisk --dump "$img" >&2; fail "unexpected partition table after the install under valgrind"; }
esp_start=$(sfdisk --json "$img" | jq '.partitiontable.partitions[0].start * 512')
mdir -b -i "$img@@$esp_start" ::/EFI/Linux | grep -q 'fakeos_7.efi' || fail "no UKI on the ESP"
mdir -b -i "$img@@$esp_start" ::/EFI/systemd | grep -qi 'systemd-bootx64.efi' || fail "no systemd-boot on the ESP"
pass "stock sfdisk and mtools see the installed system"

# Reading it back: discovery and the installed-system probe.
set +e
vg "$WORK/disks.vg" "$IMPRINT" disks --json "$img" >"$WORK/disks.json" 2>"$WORK/disks.err"
rc=$?
set -e
[ $rc -eq 0 ] && [ ! -s "$WORK/disks.vg" ] || { cat "$WORK/disks.err" "$WORK/disks.vg" >&2; fail "imprint disks under valgrind exited $rc"; }
jq -e '.. | objects | select(has("installed")) | .installed | tostring | test("Imprint Fake OS")' "$WORK/disks.json" >/dev/null \
        || { cat "$WORK/disks.json" >&2; fail "imprint disks does not see the installed system"; }
pass "imprint disks under valgrind: clean, and it sees the installed system"
