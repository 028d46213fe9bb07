#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The full-screen installer, driven like a person at the keyboard: imprint --tui runs in a detached
# tmux pane of a fixed size (the recipe of tmux's own regress/ tests), the test sends the keys of
# a full install onto an image file, and `tmux capture-pane -p` screens at stable points (never
# mid-progress) are compared with the golden screens in tests/tui/golden/. Seven runs:
#   1. English at 80x24: every screen, F1 help, resizes (too small, 100x30, back to 80x24) while on
#      the layout screen, a wrong confirmation (nothing written), a failure (the image is changed
#      behind the installer's back after the summary: the checksum step fails, nothing is written,
#      the failure screen says so), Retry, the live log toggled during progress, and Done;
#   2. the same install in German (chosen on the welcome screen), at 80x24;
#   3. the same install in French (chosen on the welcome screen, from German: no German string may
#      stay on screen), at 80x24;
#   4. a failure after the target was written: the image file lies on a 16 MiB tmpfs, so the copy
#      of the root partition hits ENOSPC after the partition table and the ESP were written. The
#      failure screen names the step, says the disk was partly written and where the log is; the
#      log records the failed step, sfdisk finds the new partition table; "Save the log to a USB
#      stick" is tried when this machine has no removable disk (it says it found none); then Back
#      and Esc to the first screen, where quitting must not claim nothing was written and exits
#      with the failure's code;
#   5. English at 132x43, with the live log toggled on during progress and checked (by content,
#      not against a golden screen: it shows times) to fill the big terminal;
#   6. "Reset an installed system" on a disk imprint installed: the welcome screen's choice, the
#      disk list, what to keep, the erase/keep table confirmed by the disk's name (a wrong name and
#      quitting erase nothing), and imprint --tui --reset (the recovery entry's way in).
#   7. --record FILE: the done screen offers to record the install (chosen first), the message says
#      where and what a replay needs, and the file holds the choices and no password.
# After each install the image file is checked as tests/integration/test-install-image.sh and
# test-account.sh check it: stock sfdisk, the root bit-identical to the image's, systemd-boot and
# the UKI on the ESP, the account in /etc/passwd, the language and keymap of the installed system.
#
# Screens are deterministic: a fixed work directory (paths appear on screen), --seed (UUIDs), a
# fixed log path, the time zone typed in. Nothing volatile (rates, times) is ever compared.
#
# Regenerate the golden screens after an intended change of the UI:
#     IMPRINT_TUI_REGENERATE=1 meson test -C build test-tui.sh
# and review the diff of tests/tui/golden/ before committing it.
#
# Needs root: the account is written into the installed root through a loop device (as
# test-account.sh does), and run 4 mounts a tmpfs (unmounted by the exit trap). Skips (77) without
# root or tmux.
. "$(dirname "$0")/../integration/lib.sh"
need_root "the account written into the installed root"
need_tool tmux
need_tool objcopy
need_tool debugfs

GOLDEN=${SOURCE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/tui/golden
LOCALEDIR=$(dirname "$IMPRINT")/po
D=/var/tmp/imprint-tui-test
SMALL=$D/small   # run 4: the tmpfs the target image fills up
RUN=0
SOCK=imprint-tui-$$-$RUN

# The tmpfs of run 4 goes when the test ends, however it ends: lazily if imprint (killed with the
# tmux server) still holds the image open.
umount_small() {
        if mountpoint -q "$SMALL" 2>/dev/null; then
                umount "$SMALL" 2>/dev/null || umount -l "$SMALL"
        fi
}
umount_small   # left by a test that was killed
rm -rf "$D"
mkdir -p "$D"
trap 'tmux -L "$SOCK" kill-server 2>/dev/null || true; umount_small || true; cleanup; rm -rf "$D"' EXIT
cd "$D"

FAKE_DDI_ACCOUNTS=1 bash "$(dirname "$0")/../integration/make-fake-ddi.sh" "$D/fakeos.img" 200
password='Kestrel-harbour 9 lantern'
failures=0

tm() {
        tmux -L "$SOCK" "$@"
}

# [TARGET=PATH] start COLSxLINES [imprint options…]: imprint --tui in a fresh pane, installing to
# a new sparse 4 GiB image file (PATH relative to $D, target.img unless told); its exit code lands
# in $D/exit.
start() {
        local size=$1 target=${TARGET:-target.img}
        shift
        rm -f "$D/exit" "$D/imprint.log"
        rm -f "$D/$target"
        truncate -s 4G "$D/$target"
        # A server per run: a new session on a server that is still shutting down fails.
        tm kill-server 2>/dev/null || true
        RUN=$((RUN + 1))
        SOCK=imprint-tui-$$-$RUN
        tm -f /dev/null new-session -d -s main -x "${size%x*}" -y "${size#*x}" \
                "cd $D && env -u LANGUAGE -u LC_ALL LANG=C.UTF-8 TERM=screen IMPRINT_LOCALEDIR=$LOCALEDIR $IMPRINT --tui --source fakeos.img --seed tui --log $D/imprint.log $* $target; echo \$? >$D/exit; sleep 3600"
        tm set-option -g status off >/dev/null
        tm resize-window -t main -x "${size%x*}" -y "${size#*x}" 2>/dev/null || true
}

screen() {
        tm capture-pane -p -t main
}

# wait_for TEXT [SECONDS]: until TEXT is on the screen.
wait_for() {
        local i
        for ((i = 0; i < ${2:-30} * 10; i++)); do
                screen | grep -qF -- "$1" && return 0
                sleep 0.1
        done
        screen >&2
        fail "\"$1\" never appeared on the screen"
}

keys() {
        tm send-keys -t main "$@"
        sleep 0.3
}

# snap NAME: compares the screen with golden/NAME.txt (or writes it with IMPRINT_TUI_REGENERATE=1).
snap() {
        local g=$GOLDEN/$1.txt
        sleep 0.3
        # The fake image's data is random: mask its SHA256 wherever an error message quotes it.
        screen | sed -E 's/[0-9a-f]{64}/<sha256>/g' >"$D/screen.txt"
        if [ -n "${IMPRINT_TUI_REGENERATE:-}" ]; then
                mkdir -p "$(dirname "$g")"
                cp "$D/screen.txt" "$g"
                echo "regenerated $1"
                return 0
        fi
        [ -f "$g" ] || { cat "$D/screen.txt" >&2; fail "no golden screen $1 (IMPRINT_TUI_REGENERATE=1 writes it)"; }
        if ! diff -u "$g" "$D/screen.txt" >&2; then
                echo "FAIL: screen $1 differs from the golden one (above)" >&2
                failures=$((failures + 1))
        fi
}

wait_exit() {
        local i
        for ((i = 0; i < 300; i++)); do
                [ -f "$D/exit" ] && break
                sleep 0.1
        done
        [ -f "$D/exit" ] || fail "imprint did not exit"
        [ "$(cat "$D/exit")" = "${1:-0}" ] || fail "imprint exited with $(cat "$D/exit"), expected ${1:-0}"
}

# has_esp_and_root IMAGE: stock sfdisk reads a GPT with the ESP and the x86-64 root from it.
has_esp_and_root() {
        sfdisk --json "$1" | jq -e '[.partitiontable.partitions[].type] == ["C12A7328-F81F-11D2-BA4B-00A0C93EC93B", "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709"]' >/dev/null
}

# check_image LOCALE KEYMAP: the installed image file, as the integration tests check installs.
check_image() {
        local tgt=$D/target.img locale=$1 keymap=$2
        has_esp_and_root "$tgt" || fail "sfdisk does not show ESP and root in the installed image"
        local s_off=$((513 * 1024 * 1024))
        local t_off
        t_off=$(sfdisk --json "$tgt" | jq '.partitiontable.partitions[1].start * 512')
        local esp_off
        esp_off=$(sfdisk --json "$tgt" | jq '.partitiontable.partitions[0].start * 512')
        # The root was copied, then the account written into it: compare the image's root with
        # what was read back right after the copy is not possible any more; check it is the
        # image's filesystem (same UUID) with the account in it.
        [ "$(blkid -p -o value -s UUID -O "$t_off" "$tgt")" = "$(blkid -p -o value -s UUID -O "$s_off" "$D/fakeos.img")" ] \
                || fail "the installed root is not the image's filesystem"
        mdir -/ -b -i "$tgt@@$esp_off" ::/ >"$D/esp.list"
        for f in ::/EFI/systemd/systemd-bootx64.efi ::/EFI/BOOT/BOOTX64.EFI ::/EFI/Linux/fakeos_7.efi ::/loader/loader.conf; do
                grep -qxF "$f" "$D/esp.list" || fail "$f is missing on the ESP"
        done
        mtype -i "$tgt@@$esp_off" ::/EFI/Linux/fakeos_7.efi | cmp - <(mtype -i "$D/fakeos.img@@1M" ::/EFI/Linux/fakeos_7.efi) \
                || fail "the UKI on the target differs from the image's"
        fsx() { debugfs -R "$1" "$tgt?offset=$t_off" 2>/dev/null; }
        fsx 'cat /etc/passwd' | grep -qx 'alice:x:[0-9]*:[0-9]*:Alice Example:/home/alice:/bin/bash' || fail "alice is not in /etc/passwd"
        fsx 'cat /etc/group' | grep -q '^sudo:x:27:alice$' || fail "alice is not an administrator"
        fsx 'cat /etc/hostname' | grep -qx imprint || fail "the hostname is not imprint"
        # Debian's systemd-firstboot writes the locale to /etc/default/locale, upstream's to /etc/locale.conf.
        { fsx 'cat /etc/locale.conf'; fsx 'cat /etc/default/locale'; } | grep -qx "LANG=$locale" || fail "the locale is not $locale"
        # Debian's systemd-firstboot links /etc/vconsole.conf to default/keyboard.
        { fsx 'cat /etc/vconsole.conf'; fsx 'cat /etc/default/keyboard'; } | grep -qx "KEYMAP=$keymap" || fail "the keymap is not $keymap"
        fsx 'stat /etc/localtime' | grep -q 'Europe/Berlin' || fail "the time zone is not Europe/Berlin"
        ! grep -qaF "$password" "$tgt" || fail "the password is in the image"
}

# The steps every run shares: disk, layout, encryption, then the account typed in. DIR "-" snaps
# none of the screens.
through_account() {
        local dir=$1
        snap_in() { [ "$dir" = - ] || snap "$dir/$1"; }
        keys Enter
        wait_for "target.img"
        snap_in 02-disk
        keys Enter
        snap_in 03-layout
        keys Enter
        snap_in 04-encryption
        keys Enter
        keys 'Alice Example' Tab alice Tab "$password" Tab "$password" Tab Tab Tab C-u Europe/Berlin
        snap_in 05-user
        keys Enter
        snap_in 06-summary
}

finish_install() {
        local dir=$1 done_text=$2
        keys target.img Enter
        wait_for "$done_text" 120
        snap "$dir/08-done"
        keys Enter
        wait_exit 0
}

# ---- 1. English, 80x24, with resizes, a wrong confirmation, a failure and a retry -------------
start 80x24
wait_for "Welcome to imprint"
snap 80x24/01-welcome
keys F1
snap 80x24/01-help
keys Enter
keys Enter
wait_for "target.img"
snap 80x24/02-disk
keys Enter
snap 80x24/03-layout
tm resize-window -t main -x 60 -y 20
snap 80x24/03-too-small
tm resize-window -t main -x 100 -y 30
snap 80x24/03-layout-100x30
tm resize-window -t main -x 80 -y 24
snap 80x24/03-layout
pass "the layout screen redraws across resizes, and says when the terminal is too small"
# Esc goes back one screen, Enter comes again.
keys Escape
wait_for "Choose the disk to install to"
keys Enter
keys Enter
snap 80x24/04-encryption
keys Enter
keys 'Alice Example' Tab alice Tab "$password" Tab "$password" Tab Tab Tab C-u Europe/Berlin
snap 80x24/05-user
keys Enter
snap 80x24/06-summary
sum=$(checksum "$D/target.img")
keys nope Enter
snap 80x24/06-summary-wrong
[ "$(checksum "$D/target.img")" = "$sum" ] || fail "a wrong confirmation changed the target"
pass "a wrong confirmation writes nothing"

# Change one byte of the image after it was planned: the checksum step fails before any write.
offset=$((600 * 1024 * 1024))
orig=$(dd if="$D/fakeos.img" bs=1 skip=$offset count=1 status=none | od -An -tx1 | tr -d ' ')
printf '\x5a' | dd of="$D/fakeos.img" bs=1 seek=$offset conv=notrunc status=none
[ "$orig" != 5a ] || printf '\x5b' | dd of="$D/fakeos.img" bs=1 seek=$offset conv=notrunc status=none
keys C-u target.img Enter
wait_for "The install failed." 60
snap 80x24/07-failure
[ "$(checksum "$D/target.img")" = "$sum" ] || fail "a failed checksum step changed the target"
grep -q "FAILED: Verifying the image" "$D/imprint.log" || fail "the log does not record the failed step"
pass "a failure before writing says so, names the step and the log, and leaves the disk alone"

printf "\\x$orig" | dd of="$D/fakeos.img" bs=1 seek=$offset conv=notrunc status=none
keys Enter   # Retry
wait_for 'Type "target.img" to install'
# L right after confirming: the live log shows from the first progress event on.
tm send-keys -t main target.img Enter l
wait_for "Overall" 30
wait_for "step 1/" 30
screen | grep -q "F1 Help  L Show the steps" || fail "the live log view does not offer the steps back"
keys l
pass "progress shows the overall bar, and L toggles the live log"
wait_for "is installed on" 120
snap 80x24/08-done
keys Enter
wait_exit 0
check_image en_US.UTF-8 us
pass "an English install at 80x24 (with a retry after a failure) installs the image"

# ---- 2. German, 80x24 ------------------------------------------------------------------------
start 80x24
wait_for "Welcome to imprint"
keys Down
wait_for "Willkommen"
snap de/01-welcome
through_account de
finish_install de "ist auf"
check_image de_DE.UTF-8 de
pass "a German install at 80x24"

# ---- 3. French, 80x24 ------------------------------------------------------------------------
# Through German: what was shown in German before must not stay German (gettext caches).
start 80x24
wait_for "Welcome to imprint"
keys Down
wait_for "Willkommen"
keys Down
wait_for "Bienvenue"
! screen | grep -E "Willkommen|Schritt|Sprache|Tastatur" >&2 || fail "German text stayed on the French welcome screen"
snap fr/01-welcome
through_account fr
finish_install fr "est installé sur"
check_image fr_FR.UTF-8 fr
pass "a French install at 80x24 (chosen after German: no German left on screen)"

# ---- 4. A failure after the target was written: ENOSPC in the middle of the copy -----------------
# The image file on a 16 MiB tmpfs: the partition table and the ESP fit, the root's 56 MiB of data
# do not. A real reason, found where a real one would be: in the middle of writing.
mkdir -p "$SMALL"
mount -t tmpfs -o size=16M imprint-tui-test "$SMALL"
TARGET=small/target.img start 80x24
wait_for "Welcome to imprint"
through_account -
keys target.img Enter
wait_for "The install failed." 60
snap 80x24/07-failure-written
screen | grep -qF "What failed: Copying the image's root partition (200 MiB) to partition 2" \
        || fail "the failure screen does not name the copy of the root as the failed step"
screen | grep -q "No space left on device" || fail "the failure screen does not say why"
screen | grep -qF "The disk: $SMALL/target.img was partly written." \
        || fail "the failure screen does not say the disk was written"
! screen | grep -qF "nothing was written" || fail "the failure screen says nothing was written"
screen | grep -qF "The log of this install: $D/imprint.log" || fail "the failure screen does not name the log"
grep -qF "FAILED: Copying the image's root partition (200 MiB) to partition 2: " "$D/imprint.log" \
        || fail "the log does not record the failed step"
grep -q "FAILED: .*No space left on device" "$D/imprint.log" || fail "the log does not record why the step failed"
grep -q "done in .* s: Writing the partition table" "$D/imprint.log" || fail "the log does not record the partition table written"
has_esp_and_root "$SMALL/target.img" || fail "sfdisk does not find the partition table the failed install wrote"
esp_off=$(sfdisk --json "$SMALL/target.img" | jq '.partitiontable.partitions[0].start * 512')
[ "$(blkid -p -o value -s TYPE -O "$esp_off" "$SMALL/target.img")" = vfat ] \
        || fail "the ESP the failed install created is not there"
pass "a failure after writing names the step, says the disk was partly written and where the log is; the log and sfdisk agree"

# "Save the log to a USB stick" looks for a removable or USB disk with a filesystem, mounts it and
# copies the log there; it never takes a loop device or an image file, so this test cannot give it
# one. Where this machine has none it must say so and leave the screen usable; where it has one,
# the test leaves it alone (the installer would write the log onto it).
removable=$(lsblk -dJ -o NAME,RM,TRAN,TYPE | jq -r '.blockdevices[] | select(.type == "disk" and (.rm == true or .rm == "1" or .tran == "usb")) | .name')
if [ -z "$removable" ]; then
        keys Down Enter
        wait_for "No USB stick with a FAT, exFAT or ext4 filesystem was found." 30
        snap 80x24/07-failure-save-log
        ! grep -q " /tmp/imprint-usb\." /proc/self/mounts || fail "the failure screen left a USB stick mounted"
        pass "the failure screen's \"Save the log\" says when no USB stick is there"
        keys Down Enter   # Back: change the choices
else
        echo "note: removable disks ($(echo $removable)) are attached: \"Save the log to a USB stick\" is not tried" >&2
        keys Down Down Enter   # Back: change the choices
fi
# Back to the first screen and quit from there: the question must not claim that nothing was
# written, and the exit status is the failure's (ENOSPC: EXIT_TOO_SMALL, as the command line
# exits for the same failure), not "cancelled".
for _ in 1 2 3 4 5 6 7 8; do
        screen | grep -q "Welcome to imprint" && break
        keys Escape
done
wait_for "Welcome to imprint"
keys Escape
wait_for "Quit the installer?"
snap 80x24/07-failure-quit
! screen | grep -q "Nothing has been written" || fail "quitting after a failure that wrote says nothing was written"
keys Enter
wait_exit 4
umount_small
pass "quitting after a failure that wrote says so and exits with the failure's code"

# ---- 5. English, 132x43, the live log during progress -----------------------------------------
start 132x43
wait_for "Welcome to imprint"
snap 132x43/01-welcome
through_account 132x43
# L right after confirming (as in run 1). The install takes seconds and its log shows times, so
# the log view is checked by content, on one capture taken while it is up: rows 5-37 hold the log
# (what the engine logged: each step, each command), the overall bar, the step line and the
# warning under it, the key help at the bottom.
tm send-keys -t main target.img Enter l
for ((i = 0; i < 300; i++)); do
        screen >"$D/log-view.txt"
        # Until the log has filled the rows it has (or the install ends): the image is opened once,
        # before the summary, so the first step's lines alone may not fill them yet.
        grep -q "^  step 1/" "$D/log-view.txt" && grep -q "L Show the steps" "$D/log-view.txt" &&
                [ "$(sed -n 5,37p "$D/log-view.txt" | grep -c .)" -ge 20 ] && break
        sleep 0.1
done
grep -q "^  step 1/" "$D/log-view.txt" || { cat "$D/log-view.txt" >&2; fail "the live log never showed the first step"; }
lv() { sed -n "$1p" "$D/log-view.txt"; }
lv_fail() { cat "$D/log-view.txt" >&2; fail "$@"; }
[ "$(wc -l <"$D/log-view.txt")" = 43 ] || lv_fail "the capture is not 43 rows"
[ "$(lv 3)" = "  Installing Imprint Fake OS 7 on $D/target.img" ] || lv_fail "row 3 does not say what is installed where"
[ "$(lv 43 | sed 's/ *$//')" = " F1 Help  L Show the steps" ] || lv_fail "the key help is not on the last row, or does not offer the steps back"
lv 39 | grep -q "^  Overall  *\[.*\] *[0-9]*%$" || lv_fail "the overall bar is not on row 39"
lv 40 | grep -q "^  Step [0-9] of [0-9]" || lv_fail "the step line is not on row 40"
[ "$(lv 41 | sed 's/ *$//')" = "  Do not switch off the computer or remove the disk." ] || lv_fail "the warning is not on row 41"
[ -z "$(lv 38 | tr -d ' ')" ] || lv_fail "the log runs into the overall bar"
# The log fills the rows an 80x24 screen does not have (it has 14), and its lines use the width.
[ "$(sed -n 5,37p "$D/log-view.txt" | grep -c .)" -ge 20 ] || lv_fail "the live log uses fewer than 20 rows at 132x43"
grep -qxF "  plan for $D/target.img ready; asking for confirmation" "$D/log-view.txt" \
        || lv_fail "the live log does not show the planning"
sed -n 5,37p "$D/log-view.txt" | awk 'length > 80 { wide = 1 } END { exit !wide }' \
        || lv_fail "no line of the live log uses more than 80 columns at 132x43"
sed -n 5,37p "$D/log-view.txt" | awk 'length > 130 { over = 1 } END { exit over }' \
        || lv_fail "a line of the live log runs into the right margin"
pass "at 132x43, L shows the live log over the whole height and width during progress"
# The log view stays up until the end: the done screen is drawn over it whole (golden screen).
wait_for "is installed on" 120
snap 132x43/08-done
keys Enter
wait_exit 0
check_image en_US.UTF-8 us
pass "an install at 132x43"

# ---- 6. "Reset an installed system", 80x24 -----------------------------------------------------
# A disk imprint installed (with its install record on the ESP: written by the install; where this
# build's executor does not yet, the test writes what record_install_write() would), reset from
# the welcome screen's choice: the disk list, what to keep, the erase/keep table that is confirmed
# by the disk's name. A wrong name erases nothing (the whole file's checksum); Esc goes back, and
# quitting writes nothing. Then imprint --tui --reset, the recovery entry's way in.
R=$D/reset.img
rm -f "$R"
truncate -s 4G "$R"
"$IMPRINT" plan --source "$D/fakeos.img" --target "$R" --seed tui --home-size 1G --plan-file "$D/reset.plan" >/dev/null
"$IMPRINT" install --plan-file "$D/reset.plan" --yes >/dev/null
esp_off=$(sfdisk --json "$R" | jq '.partitiontable.partitions[0].start * 512')
if ! mtype -i "$R@@$esp_off" ::/imprint/install.json >/dev/null 2>&1; then
        jq '{formatVersion: 1, imprintVersion: "test", installedAt: "2026-12-03T10:15:00Z", plan: .}' "$D/reset.plan" >"$D/reset.record"
        mmd -i "$R@@$esp_off" ::/imprint 2>/dev/null || true
        mcopy -i "$R@@$esp_off" "$D/reset.record" ::/imprint/install.json
fi
sum=$(checksum "$R")

# start_reset COLSxLINES [imprint options…]: imprint --tui on reset.img as it is (start() would make
# a new empty target).
start_reset() {
        local size=$1
        shift
        rm -f "$D/exit" "$D/imprint.log"
        tm kill-server 2>/dev/null || true
        RUN=$((RUN + 1))
        SOCK=imprint-tui-$$-$RUN
        tm -f /dev/null new-session -d -s main -x "${size%x*}" -y "${size#*x}" \
                "cd $D && env -u LANGUAGE -u LC_ALL LANG=C.UTF-8 TERM=screen IMPRINT_LOCALEDIR=$LOCALEDIR $IMPRINT --tui --source fakeos.img --seed tui --log $D/imprint.log $* reset.img; echo \$? >$D/exit; sleep 3600"
        tm set-option -g status off >/dev/null
        tm resize-window -t main -x "${size%x*}" -y "${size#*x}" 2>/dev/null || true
}

start_reset 80x24
wait_for "Welcome to imprint"
keys Tab Tab Down
wait_for "Nothing is erased before you confirm"
snap reset/01-welcome
keys Enter
wait_for "Choose the disk to reset"
snap reset/02-disk
keys F1
snap reset/02-help
keys Enter
keys Enter
wait_for "Reset: what to keep"
snap reset/03-options
keys Space
snap reset/03-options-keep-home
keys Space Enter
wait_for 'Type "reset.img" to reset:'
snap reset/04-confirm
keys nope Enter
snap reset/04-confirm-wrong
[ "$(checksum "$R")" = "$sum" ] || fail "a wrong name typed on the reset screen changed the disk"
keys Escape
wait_for "Reset: what to keep"
keys Escape Escape
wait_for "Welcome to imprint"
keys Escape
wait_for "Quit the installer?"
keys Enter
wait_exit 6
[ "$(checksum "$R")" = "$sum" ] || fail "the reset screens wrote to the disk without a confirmation"
pass "reset from the welcome screen: disk, what to keep, the erase/keep table; a wrong name and quitting erase nothing"

start_reset 80x24 --reset
wait_for "Reset an installed system"
snap reset/01-welcome-recovery
keys Enter
wait_for "Choose the disk to reset"
keys Escape Escape
wait_for "Quit the installer?"
keys Enter
wait_exit 6
[ "$(checksum "$R")" = "$sum" ] || fail "imprint --tui --reset wrote to the disk without a confirmation"
pass "imprint --tui --reset goes straight to the reset"

# ---- 7. --record FILE: the last screen offers the configuration that repeats the install ---------
start 80x24 --record "$D/recorded.json"
wait_for "Welcome to imprint"
through_account -
keys target.img Enter
wait_for "is installed on" 120
snap 80x24/09-done-record
[ ! -e "$D/recorded.json" ] || fail "the record was written before it was chosen"
keys Enter
wait_for "Recorded"
snap 80x24/09-recorded
keys Enter
wait_for "The configuration that repeats this install is in"
snap 80x24/09-done-recorded
[ "$(stat -c %a "$D/recorded.json")" = 600 ] || fail "the record is not mode 0600"
! grep -qF "$password" "$D/recorded.json" || fail "the typed password is in the record"
jq -e --arg d "$D" '.source == "\($d)/fakeos.img" and .target == "\($d)/target.img" and .seed == "tui"
        and .encrypt == false and .tpm2 == "off" and .user.name == "alice" and .user.realName == "Alice Example"
        and .timezone == "Europe/Berlin" and .locale == "en_US.UTF-8" and .credentials == ["imprint.user-password"]' \
        "$D/recorded.json" >/dev/null || { cat "$D/recorded.json" >&2; fail "the record does not hold the install's choices"; }
keys Enter
wait_exit 0
check_image en_US.UTF-8 us
pass "with --record, the last screen records the install: 0600, the choices, no password"

[ "$failures" = 0 ] || fail "$failures screens differ from the golden ones"
pass "all screens match the golden screens"
