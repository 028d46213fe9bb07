#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Figures for the full-screen installer, printed, not asserted (goals: first screen < 100 ms,
# peak RSS during an install < 32 MiB):
#   - start to first screen: imprint --tui runs on a fresh pseudo-terminal (80x24); the time from
#     fork to the moment the terminal has received the welcome screen's title bar, and to the moment
#     it shows what the image holds (the image has been opened). Ten runs: min, median, max.
#   - peak RSS: a whole install onto an image file (no account, so no root needed), driven with
#     tmux keys; VmHWM of the imprint process read on the Done screen (the peak of its whole life;
#     the commands it runs, mkfs and the like, are other processes and not counted).
# Usage: tests/bench/tui.sh [BUILD_DIR]   (default: build)
set -eu -o pipefail
cd "$(dirname "$0")/../.."
build=${1:-build}
IMPRINT=$(realpath "$build/imprint")
command -v tmux >/dev/null || { echo "tmux is not installed" >&2; exit 1; }

D=$(mktemp -d /var/tmp/imprint-bench-tui.XXXXXX)
SOCK=imprint-bench-$$
trap 'tmux -L "$SOCK" kill-server 2>/dev/null || true; rm -rf "$D"' EXIT
bash tests/integration/make-fake-ddi.sh "$D/fakeos.img" 200 >/dev/null
truncate -s 4G "$D/target.img"

echo "== start to first screen (80x24 pty, 10 runs)"
/usr/bin/python3 - "$IMPRINT" "$D" <<'PY'
import fcntl, os, pty, select, statistics, struct, sys, termios, time
imprint, d = sys.argv[1:]
first, full = [], []
for i in range(10):
    t0 = time.monotonic()
    pid, fd = pty.fork()
    if pid == 0:
        os.chdir(d)
        os.environ.update(LANG="C.UTF-8", TERM="linux")
        os.execv(imprint, [imprint, "--tui", "--source", "fakeos.img", "--log", d + "/bench.log", "target.img"])
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    out, t_first, t_full = b"", None, None
    while time.monotonic() - t0 < 10 and t_full is None:
        r, _, _ = select.select([fd], [], [], 0.5)
        if not r:
            continue
        try:
            out += os.read(fd, 65536)
        except OSError:
            break
        now = time.monotonic()
        if t_first is None and b"Welcome to imprint" in out:
            t_first = now
        if t_full is None and b"Imprint Fake OS 7" in out:
            t_full = now
    os.write(fd, b"\x1b")          # Esc: quit?
    time.sleep(0.1)
    os.write(fd, b"\r")            # yes
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass
    os.close(fd)
    if t_first: first.append((t_first - t0) * 1000)
    if t_full: full.append((t_full - t0) * 1000)
for name, v in (("first screen drawn", first), ("welcome with the image read", full)):
    if v:
        print(f"{name:30s} min {min(v):6.1f} ms   median {statistics.median(v):6.1f} ms   max {max(v):6.1f} ms   (goal < 100 ms for the first)")
    else:
        print(f"{name:30s} never seen")
PY

echo "== peak RSS during an install (image file, 4 GiB target, 200 MiB root, no account)"
tm() { tmux -L "$SOCK" "$@"; }
tm -f /dev/null new-session -d -s main -x 80 -y 24 \
        "cd $D && exec env LANG=C.UTF-8 TERM=screen $IMPRINT --tui --source fakeos.img --log $D/bench.log target.img"
tm set-option -g remain-on-exit on >/dev/null
pid=$(tm display-message -p -t main '#{pane_pid}')
wait_for() {
        for ((i = 0; i < 1200; i++)); do
                tm capture-pane -p -t main | grep -qF -- "$1" && return 0
                sleep 0.1
        done
        echo "\"$1\" never appeared" >&2
        tm capture-pane -p -t main >&2
        exit 1
}
wait_for "Welcome to imprint"
for k in Enter Enter Enter Enter Enter; do tm send-keys -t main "$k"; sleep 0.4; done
wait_for 'Type "target.img" to install'
t0=$(date +%s.%N)
tm send-keys -t main target.img Enter
wait_for "is installed on"
t1=$(date +%s.%N)
hwm=$(awk '/^VmHWM/ { print $2 }' "/proc/$pid/status")
rss=$(awk '/^VmRSS/ { print $2 }' "/proc/$pid/status")
printf 'peak RSS (VmHWM)  %6.1f MiB   (goal < 32 MiB); RSS on the Done screen %.1f MiB; install took %.1f s\n' \
        "$(echo "$hwm / 1024" | bc -l)" "$(echo "$rss / 1024" | bc -l)" "$(echo "$t1 - $t0" | bc -l)"
tm send-keys -t main Enter
