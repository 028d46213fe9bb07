#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The second machine of tests/e2e/test-oem-line.sh: another live medium on the same line, which
# installs the same image from the same HTTP server at the same time as the first. Passed as the
# credential imprint-rig.client and run by a unit (also a credential) once the system is up, on
# the serial console. Its disk: the target (virtio, serial "target"); no TPM, no encryption.
#
# It waits for the network (DHCP) and the server, says "ready", waits until the server has /go
# (the host makes it once both machines are ready), then runs `imprint unattended` with the URL
# (credential imprint-rig.url) and the line's key (imprint-rig.image-key), the report on the
# console. Prints "IMPRINT-OEM2 …" lines, ends with "IMPRINT-OEM2 PASS" or "IMPRINT-OEM2 FAIL:
# why", then powers off.
set -u
export LC_ALL=C.UTF-8 SYSTEMD_COLORS=0
C=${CREDENTIALS_DIRECTORY:?no credentials}
W=/run/imprint-rig
mkdir -p "$W"
umask 077

say() { printf 'IMPRINT-OEM2 %s\n' "$*"; }
fail() {
        say "FAIL: $*"
        systemctl poweroff
        exit 1
}

url=$(cat "$C/imprint-rig.url")
cp "$C/imprint-rig.image-key" "$W/line-key.pem"
server=${url%/line/*}
udevadm wait --timeout=600 /dev/disk/by-id/virtio-target || fail "the target disk did not appear"
for i in $(seq 300); do curl -s -o /dev/null "${url%/*}/SHA256SUMS" && break; sleep 1; done
curl -sf -o /dev/null "${url%/*}/SHA256SUMS" || fail "the line's server does not answer at ${url%/*}/"
say ready
for i in $(seq 1200); do curl -sf -o /dev/null "$server/go" && break; sleep 1; done
curl -sf -o /dev/null "$server/go" || fail "the host never said go"

printf '{"source":"%s","imageKey":"%s","target":"/dev/disk/by-id/virtio-target","encrypt":false,"countdownSeconds":0,"afterInstall":"none","onFailure":"none","report":{"console":true}}\n' \
        "$url" "$W/line-key.pem" >"$W/second.json"
imprint unattended --config "$W/second.json" >"$W/second.out" 2>"$W/second.err"
rc=$?
grep -a '"event": *"\(result\|target\)"' "$W/second.out" | sed 's/^/IMPRINT-OEM2 /'
grep -a '"event": *"end"' "$W/second.out" | grep -ao '"id": *"[a-z-]*"' | tr '\n' ' ' | sed 's/^/IMPRINT-OEM2 steps: /'
echo
tail -n 5 "$W/second.err" | sed 's/^/IMPRINT-OEM2 stderr: /'
[ "$rc" = 0 ] || fail "the install failed (exit $rc)"
grep -aq '"event": *"result".*"success": *true' "$W/second.out" || fail "no successful result"
sync
say PASS
systemctl poweroff
