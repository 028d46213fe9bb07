#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The full-screen installer, stopped by SIGTERM (a shutdown, a closed terminal) in the middle of
# the copy: before, it died at once with the disk half written and said nothing. Now it stops at
# the next safe point, leaves the screen, says in one sentence on stderr what state the target is
# in, and exits 143; `imprint disks` lists the target as an incomplete install. Driven in tmux
# like test-tui.sh; IMPRINT_TEST_PAUSE_AT stops it halfway through the copy.
. "$(dirname "$0")/../integration/lib.sh"
need_root "the account written into the installed root"
need_tool tmux

D=$WORK
FAKE_DDI_ACCOUNTS=1 bash "$(dirname "$0")/../integration/make-fake-ddi.sh" "$D/fakeos.img" 60
truncate -s 4G "$D/target.img"
password='Kestrel-harbour 9 lantern'
SOCK=imprint-tui-interrupt-$$
tm() { tmux -L "$SOCK" "$@"; }
trap 'tm kill-server 2>/dev/null || true; cleanup' EXIT
keys() { tm send-keys -t main "$@"; sleep 0.3; }
wait_for() {
        local i
        for ((i = 0; i < ${2:-30} * 10; i++)); do
                tm capture-pane -p -t main | grep -qF -- "$1" && return 0
                sleep 0.1
        done
        tm capture-pane -p -t main >&2
        fail "\"$1\" never appeared on the screen"
}

tm -f /dev/null new-session -d -s main -x 80 -y 24 \
        "cd $D && env LANG=C.UTF-8 TERM=screen IMPRINT_TEST_PAUSE_AT=copy-root:middle $IMPRINT --tui --source fakeos.img --seed tui target.img 2>$D/err; echo \$? >$D/exit; sleep 3600"
wait_for "Welcome to imprint"
keys Enter
wait_for "target.img"
keys Enter
keys Enter
keys Enter
keys 'Alice Example' Tab alice Tab "$password" Tab "$password" Tab Tab Tab C-u Europe/Berlin
keys Enter
wait_for 'Type "target.img" to install'
keys target.img Enter

pid=
for ((i = 0; i < 600; i++)); do
        pid=$(pgrep -f -x "$IMPRINT --tui --source fakeos.img --seed tui target.img" || true)
        [ -n "$pid" ] && [ "$(awk '{ print $3 }' "/proc/$pid/stat" 2>/dev/null)" = T ] && break
        sleep 0.1
done
[ -n "$pid" ] && [ "$(awk '{ print $3 }' "/proc/$pid/stat")" = T ] || fail "the installer did not reach the middle of the copy"
kill -TERM "$pid"
kill -CONT "$pid"
for ((i = 0; i < 300; i++)); do [ -f "$D/exit" ] && break; sleep 0.1; done
[ -f "$D/exit" ] || fail "the installer did not end after SIGTERM"
[ "$(cat "$D/exit")" = 143 ] || { cat "$D/err" >&2; fail "exit status $(cat "$D/exit"), expected 143"; }
grep -qx "imprint: Interrupted: $D/target.img is partitioned but not completely installed and does not boot; run the same command again to install it." "$D/err" \
        || { cat "$D/err" >&2; fail "no sentence on the target's state"; }
"$IMPRINT" disks --json "$D/target.img" | jq -e '.[0].incompleteInstall' >/dev/null || fail "disks does not call the target incomplete"
[ -z "$(losetup -j "$D/target.img")" ] || fail "a loop device on the target is left"
pass "SIGTERM in the copy: the full-screen installer stops, says what state the disk is in, exits 143"
