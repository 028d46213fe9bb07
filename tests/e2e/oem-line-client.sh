#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The OEM line's configuration matrix, run on the live medium by tests/e2e/test-oem-line.sh. The rig
# passes this file as the system credential imprint-rig.client and a unit (also a credential) runs
# it with bash once the system is up, on the serial console. It plays a preinstall line's operator:
# each case is one `imprint unattended --config FILE` on this machine, whose SMBIOS type 1 and 2
# fields the rig set ("Imprint Rig" / "Line Model 7" / SKU "LM7-16" / board "Rig Board 2"), with
# four disks besides the medium: the target (virtio, 8 GiB, serial "target"), a spare (virtio,
# 6 GiB, serial "spare"), the escrow disk (64 MiB, mounted on /run/imprint-escrow) and the images
# disk (the image file with its SHA256SUMS, mounted read-only on /run/imprint-images).
#
# The refusals must write nothing: before and after each, the first and last MiB of the target and
# the spare and their partition tables are hashed and compared. The last case is the line's real
# install: the allowlist matches, the target is found by its rules, root and home are encrypted
# with the TPM, the recovery key is escrowed to the OEM's certificate (credential
# imprint-rig.oem-cert; the private key stays on the host), the report goes to the escrow disk
# and the console, and "oem": true leaves the account to the customer.
#
# The line's install streams the image from the line's HTTP server (credential imprint-rig.url;
# SHA256SUMS signed by the key in imprint-rig.image-key); a copy whose SHA256SUMS another key
# signed (imprint-rig.url-forged) must be refused first. Before the install the client says
# "ready" and waits until the server has /go: the host starts it when a second machine is ready
# too, so that both fetch at the same time.
#
# Prints "IMPRINT-OEM ok: …" for each check that passed, the last install's JSON progress as it
# comes, and ends with "IMPRINT-OEM PASS" or "IMPRINT-OEM FAIL: why"; then powers off.
set -u
export LC_ALL=C.UTF-8 SYSTEMD_COLORS=0
C=${CREDENTIALS_DIRECTORY:?no credentials}
W=/run/imprint-rig
mkdir -p "$W"
umask 077

say() { printf 'IMPRINT-OEM %s\n' "$*"; }
ok() { say "ok: $*"; }
fail() {
        say "FAIL: $*"
        systemctl poweroff
        exit 1
}

image=$(cat "$C/imprint-rig.image")
url=$(cat "$C/imprint-rig.url")
url_forged=$(cat "$C/imprint-rig.url-forged")
cp "$C/imprint-rig.image-key" "$W/line-key.pem"
chmod 0644 "$W/line-key.pem"
cp "$C/imprint-rig.oem-cert" "$W/oem.pem"
cp "$C/imprint-rig.image-cert" "$W/image.pem"
chmod 0644 "$W/oem.pem" "$W/image.pem"
for s in target spare escrow images; do
        udevadm wait --timeout=600 "/dev/disk/by-id/virtio-$s" || fail "the $s disk did not appear"
done
target=$(readlink -f /dev/disk/by-id/virtio-target)
spare=$(readlink -f /dev/disk/by-id/virtio-spare)
mountpoint -q /run/imprint-escrow || fail "the escrow disk is not mounted on /run/imprint-escrow"
[ -f "$image" ] || fail "no image $image (the images disk is not mounted on /run/imprint-images?)"
say "disks: target $target, spare $spare"

# fingerprint: what a refused run must not change on the target and the spare.
fingerprint() {
        local d
        for d in "$target" "$spare"; do
                sfdisk --dump "$d" 2>/dev/null
                dd if="$d" bs=1M count=1 status=none | sha256sum
                dd if="$d" bs=1M skip=$(($(blockdev --getsize64 "$d") / 1048576 - 1)) count=1 status=none | sha256sum
        done | sha256sum | cut -d' ' -f1
}

# config NAME JSON: writes the case's configuration.
config() { printf '%s\n' "$2" >"$W/$1.json"; }

# refused NAME PATTERN WHAT: runs case NAME, which must fail with a message matching PATTERN (an
# extended regular expression) and leave the disks as they were.
refused() {
        local name=$1 pattern=$2 what=$3 before after rc
        before=$(fingerprint)
        imprint unattended --config "$W/$name.json" >"$W/$name.out" 2>"$W/$name.err"
        rc=$?
        after=$(fingerprint)
        sed "s/^/IMPRINT-OEM $name: /" "$W/$name.err" | tail -n 20
        grep -a '"event": *"result"' "$W/$name.out" | sed "s/^/IMPRINT-OEM $name: /"
        [ "$rc" != 0 ] || fail "$name: $what: imprint succeeded"
        [ "$before" = "$after" ] || fail "$name: $what: a disk changed"
        grep -aqE "$pattern" "$W/$name.out" "$W/$name.err" || fail "$name: $what: no message matches /$pattern/"
        ok "$name: $what: exit $rc, nothing written"
}

# Common to every case: the line's image (credential imprint-rig.image, checked against the
# SHA256SUMS beside it and its signing certificate), encrypted with the TPM, the line's settings.
common='"imageCertificate":"'"$W/image.pem"'","seed":"oem-line","homeSize":"1G","tpm2":"required","countdownSeconds":0,"afterInstall":"none","onFailure":"none"'
base='"source":"'"$image"'",'"$common"
# The same over the network: the URL and the line's key for SHA256SUMS' signature.
net='"source":"'"$url"'","imageKey":"'"$W/line-key.pem"'",'"$common"
forged='"source":"'"$url_forged"'","imageKey":"'"$W/line-key.pem"'",'"$common"
escrow='"recoveryKeyEscrow":{"directory":"/run/imprint-escrow","certificate":"'"$W/oem.pem"'"}'
allow='"machines":[{"vendor":"Imprint Rig","product":"Line Model *","sku":"LM7-*"},{"vendor":"Other*","board":"X*"}]'

# 1. A model the line is not set up for: the allowlist names another product.
config not-listed '{'"$base"','"$escrow"',"machines":[{"vendor":"Imprint Rig","product":"Line Model 9"}],"target":"/dev/disk/by-id/virtio-target","report":{"console":true}}'
refused not-listed 'Line Model 7' "a machine not on the allowlist is refused"
# Its report (console) says so, with the machine's identity.
grep -aq 'IMPRINT-REPORT-BEGIN' "$W/not-listed.err" "$W/not-listed.out" 2>/dev/null ||
        say "not-listed: the report went to /dev/console"

# 2. Two disks match the rules: the target and the spare are both virtio disks over 5 GiB.
config two-match '{'"$base"','"$escrow"','"$allow"',"target":{"transport":"virtio","minSize":"5G"}}'
refused two-match "$target.*$spare|$spare.*$target" "two matching disks are refused and listed"

# 3. No disk matches: none is NVMe; each disk is listed with the rule it failed.
config no-match '{'"$base"','"$escrow"','"$allow"',"target":{"transport":"nvme"}}'
refused no-match "$target[^.]*virtio" "no matching disk: each disk's reason is listed"

# 4. An escrow with neither a certificate nor an explicit "plaintext": refused before anything.
config plaintext '{'"$base"','"$allow"',"target":"/dev/disk/by-id/virtio-target","recoveryKeyEscrow":{"directory":"/run/imprint-escrow"}}'
refused plaintext 'plaintext' "an escrow without a key is refused unless allowed"

# 5. An image from the server whose SHA256SUMS another key signed: refused before any write.
# The network comes by DHCP; the server must answer first.
for i in $(seq 300); do curl -s -o /dev/null "${url%/*}/SHA256SUMS" && break; sleep 1; done
config forged '{'"$forged"','"$escrow"','"$allow"',"target":"/dev/disk/by-id/virtio-target"}'
refused forged 'signature' "an image whose SHA256SUMS another key signed is refused"

# 6. The line's install: the allowlist matches, the rules find the one disk of 7 GiB or more (the
# spare is 6 GiB, the escrow disk 64 MiB, the medium is the live system's), the key goes to the
# OEM's certificate, the report to the escrow disk and the console, the account to the customer.
config line '{'"$net"','"$escrow"','"$allow"',"target":{"transport":"virtio","minSize":"7G","byId":"virtio-*"},"oem":true,"report":{"directory":"/run/imprint-escrow/reports","console":true}}'
mkdir -p /run/imprint-escrow/reports
say "line: $(cat "$W/line.json")"
# Both machines fetch together: the host serves /go once the other one is ready too.
say ready
for i in $(seq 1200); do curl -sf -o /dev/null "${url%/line/*}/go" && break; sleep 1; done
curl -sf -o /dev/null "${url%/line/*}/go" || fail "line: the host never said go"
# As a service, the way the medium's own imprint-unattended.service runs it (NotifyAccess=main), so
# that what `systemctl status` shows, imprint's STATUS=, can be watched while it runs.
( last=
  while sleep 2; do
          st=$(systemctl show -P StatusText imprint-line.service 2>/dev/null) || continue
          [ -z "$st" ] || [ "$st" = "$last" ] || say "status: $st"
          last=$st
  done ) &
watcher=$!
systemd-run --quiet --unit=imprint-line --service-type=exec -p NotifyAccess=main --pipe --wait \
        "$(command -v imprint)" unattended --config "$W/line.json" 2>&1 | tee "$W/line.out"
rc=${PIPESTATUS[0]}
kill "$watcher" 2>/dev/null
[ "$rc" = 0 ] || fail "line: the install failed (exit $rc)"
grep -aq '"event": *"result".*"success": *true' "$W/line.out" || fail "line: no successful result"
ls -l /run/imprint-escrow /run/imprint-escrow/reports | sed 's/^/IMPRINT-OEM escrow: /'
sync
umount /run/imprint-escrow || fail "could not unmount the escrow disk"
ok "line: installed to $target"
say PASS
systemctl poweroff
