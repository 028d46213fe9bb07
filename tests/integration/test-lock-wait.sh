#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Another program holds a shared BSD lock on the target disk, as systemd-udevd does while it
# probes it (https://systemd.io/BLOCK_DEVICE_LOCKING/). imprint must wait for it: the install
# succeeds once the holder lets go. A holder that never lets go makes imprint give up after the
# timeout (IMPRINT_LOCK_TIMEOUT, 3 s here) with exit status 3, naming the holder's PID and command,
# and nothing is written. Shared locks taken back to back (a busy udev) do not keep imprint out
# either. The holder is flock(1).
. "$(dirname "$0")/lib.sh"
need_root "loop devices"
need_tool flock
need_tool jq
need_tool sfdisk

HOLDERS=()
trap 'for h in "${HOLDERS[@]:-}"; do [ -n "$h" ] && kill "$h" 2>/dev/null || true; done; cleanup' EXIT

src=$WORK/fakeos.img
bash "$(dirname "$0")/make-fake-ddi.sh" "$src" 300
truncate -s 4G "$WORK/disk.img"
attach "$WORK/disk.img"
dev=$ATTACHED
"$IMPRINT" plan --source "$src" --target "$dev" --seed lock --no-encrypt --plan-file "$WORK/plan.json" >/dev/null

# hold_shared: flock(1) takes LOCK_SH on $dev (as udev's probe does) and keeps it until
# $WORK/release exists; HOLDER is its PID, once /proc/locks shows the lock held.
hold_shared() {
        rm -f "$WORK/release"
        flock --shared "$dev" sh -c "while [ ! -e '$WORK/release' ]; do sleep 0.1; done" &
        HOLDER=$!
        HOLDERS+=("$HOLDER")
        for _ in $(seq 100); do
                awk -v pid="$HOLDER" '$2 != "->" && $5 == pid { found = 1 } END { exit !found }' /proc/locks && return 0
                sleep 0.1
        done
        fail "flock never took its lock on $dev"
}

# --- a holder that never lets go: imprint gives up, says who holds the disk, writes nothing ---
hold_shared
rc=0
IMPRINT_LOCK_TIMEOUT=3 "$IMPRINT" install --plan-file "$WORK/plan.json" --yes >"$WORK/stdout" 2>"$WORK/stderr" || rc=$?
[ "$rc" = 3 ] || { cat "$WORK/stdout" "$WORK/stderr" >&2; fail "install with the disk locked for good: exit $rc, not 3 (in use)"; }
expect_stderr "Cannot lock $dev: another program has held it for 3 s and still does: PID $HOLDER (flock)."
expect_stderr "Nothing was written."
! sfdisk --dump "$dev" >/dev/null 2>&1 || fail "a partition table was written to $dev although it stayed locked"
[ -z "$(blkid -p -o value -s PTTYPE "$dev" 2>/dev/null)" ] || fail "blkid finds a partition table on $dev"
pass "a disk locked by another program for good: exit 3 after 3 s, naming PID $HOLDER (flock); $dev is still blank"
touch "$WORK/release"
wait "$HOLDER" || true

# --- a holder that lets go: imprint waits for it and installs ---------------------------------------
# The holder lets go 2 s after imprint says it is waiting (a probe takes milliseconds; this is
# longer than any of them, and shorter than the default timeout).
hold_shared
"$IMPRINT" install -v --plan-file "$WORK/plan.json" --yes >"$WORK/stdout" 2>"$WORK/stderr" &
imprint_pid=$!
for _ in $(seq 600); do
        grep -qF "$dev is locked by PID $HOLDER (flock); waiting up to 30 s" "$WORK/stderr" && break
        kill -0 "$imprint_pid" 2>/dev/null || break
        sleep 0.1
done
grep -qF "$dev is locked by PID $HOLDER (flock); waiting up to 30 s" "$WORK/stderr" \
        || { cat "$WORK/stdout" "$WORK/stderr" >&2; fail "imprint did not say that it waits for the lock"; }
sleep 2
touch "$WORK/release"
wait "$HOLDER" || true
rc=0
wait "$imprint_pid" || rc=$?
[ "$rc" = 0 ] || { cat "$WORK/stdout" "$WORK/stderr" >&2; fail "install while another program held the disk for 2 s: exit $rc"; }
grep -qE "locked $dev after waiting [0-9.]+ s" "$WORK/stderr" || { cat "$WORK/stderr" >&2; fail "imprint did not log the wait"; }
compare_with_sfdisk "$WORK/plan.json" "$dev"
grep -q "Imprint Fake OS 7 is installed on $dev" "$WORK/stdout" || fail "no success message"
pass "imprint waited $(grep -oE "after waiting [0-9.]+ s" "$WORK/stderr" | grep -oE '[0-9.]+') s for the lock held by flock, then installed; sfdisk $dev matches the plan"

# --- holders back to back, as a busy udev probes: imprint gets the lock at the first gap ------------
# Each holder keeps the lock 0.1 s, the next one takes it as soon as it is started; the gaps last
# as long as starting flock(1) takes. A waiter that only polls can keep missing them; imprint waits
# in flock() itself (in a child process, as udevadm lock does) and is woken at the first one.
"$IMPRINT" plan --source "$src" --target "$dev" --seed lock2 --no-encrypt --plan-file "$WORK/plan2.json" >/dev/null
rm -f "$WORK/release"
( while [ ! -e "$WORK/release" ]; do flock --shared "$dev" sleep 0.1; done ) &
HOLDERS+=("$!")
sleep 0.5
rc=0
"$IMPRINT" install -v --plan-file "$WORK/plan2.json" --yes >"$WORK/stdout" 2>"$WORK/stderr" || rc=$?
touch "$WORK/release"
wait "${HOLDERS[-1]}" || true
[ "$rc" = 0 ] || { cat "$WORK/stdout" "$WORK/stderr" >&2; fail "install while shared locks came back to back: exit $rc"; }
compare_with_sfdisk "$WORK/plan2.json" "$dev"
pass "with shared locks back to back on $dev, imprint got the lock ($(grep -oE "after waiting [0-9.]+ s" "$WORK/stderr" || echo "free at once")) and installed; sfdisk matches the plan"
