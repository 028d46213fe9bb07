#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# test-oem-line.sh [--keep] — an OEM preinstall line and the customer's first boot ("oem": true,
# imprint(1)) proved in the VM rig (QEMU + OVMF + swtpm): one disk, one TPM state, one firmware
# variable store, four boots, with stock tools as referees.
#
# Images (cached in /var/cache/imprint-test): the usr test image v1 (tests/image/build-usr-ddi.sh)
# and the live medium (iso/build-live.sh).
#
#  1. Boot 1, the live medium as a line's machine: SMBIOS type 1 "Imprint Rig" / "Line Model 7" /
#     SKU "LM7-16" / serial "RIG-0001", type 2 board "Rig Board 2"; disks: the medium, the blank
#     8 GiB target, a 6 GiB spare, the usr image and an escrow disk. The line's operator,
#     tests/e2e/oem-line-client.sh (a unit given as a credential), runs `imprint unattended` with
#     each configuration of the matrix; every refusal must leave both disks as they were:
#     - a model not on the allowlist (exit 3; its report on the console says so);
#     - target rules that two disks match (both named), and rules no disk matches (each disk
#       named with the rule it failed);
#     - an escrow with neither certificate nor "plaintext": true.
#     - an image from the line's server whose SHA256SUMS is signed by another key (exit 7).
#     Then the line's install, as a service (NotifyAccess=main) whose `systemctl status` line the
#     client watches: allowlist matched, the target found by transport and size, imprint-usr_1
#     streamed from the line's HTTP server (stock nginx on the host, reached at 10.0.2.2 through
#     QEMU's user network) as .raw.zst with SHA256SUMS signed by the line's key (EC, openssl),
#     with "oem": true, root and a 1 GiB home encrypted (TPM2 PCR 7 + the line's recovery key),
#     the key encrypted to the OEM's certificate on the escrow disk, the report to the escrow disk
#     and the console. On the host: the console's and the disk's report are the same document,
#     checked field by field against SMBIOS, sfdisk, cryptsetup luksUUID, the image's SHA256SUMS
#     and the steps, with no key in it; stock `openssl cms -decrypt` with the OEM's private key
#     (which never left the host) recovers the key and it opens root and home; another key
#     decrypts nothing. No account, no settings.
#     At the same time a second machine (another live medium, its own blank disk, no TPM) installs
#     the same image from the same server: both wait until both are up, then fetch together, and
#     the host kills nginx (SIGKILL, every transfer cut) while both are streaming and starts it
#     again: both resume with range requests (nginx's log) and finish; the second disk's usr A
#     slot is byte for byte the image's (cmp), its report says "stream" resumed and read back.
#  2. Boot 2a, the installed disk, the customer's first boot, cut off: the answers below, then QEMU
#     is killed (a power cut) when the new key is shown and the confirmation asked. Boot 2: the
#     same first boot again; the hand-off repeats (a different key; homed-firstboot asks nothing,
#     bob exists), now completed:
#     the serial console answers stock
#     systemd-firstboot (time zone, host name; locale and keymap when the image has more than one),
#     stock systemd-homed-firstboot (user name, password twice), then imprint-handoff.service shows
#     a new recovery key: the rig reads it from the serial log, types a wrong confirmation first (the
#     script must ask again) and then the key's first and last groups. The image's test kernel
#     command line has systemd.firstboot=off; systemd-stub appends systemd.firstboot=on from the
#     SMBIOS string io.systemd.stub.kernel-cmdline-extra (the last one wins), on this boot and the
#     next, so that "asks nothing" on boot 3 is systemd's decision, not the command line's.
#     Host, VM off: the line's key and the key shown before the cut open neither root nor home (cryptsetup --test-passphrase on
#     read-only loop devices of the partitions), the new key opens both; each LUKS2 header has
#     exactly two keyslots, one systemd-tpm2 token (kept) and no other but systemd-recovery.
#  3. Boot 3: nothing is asked (no firstboot, homed-firstboot or hand-off prompt on the serial
#     log); root and home unlocked by the TPM2; the marker /var/lib/imprint/handoff-done exists
#     (a rig unit given as the credential systemd.extra-unit.*); the customer's account logs in on
#     the serial getty through PAM with the password typed at boot 2 and runs a command.
#
# Phase times are printed at the end. --keep keeps the disks, the TPM state and the firmware
# variables; the serial logs are always kept (their paths are printed).
#
# Needs root (building the images in a chroot; loop devices for cryptsetup on the host).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$here/../.." && pwd)
KEEP=0
while [ $# -gt 0 ]; do
        case $1 in
        --keep) KEEP=1 ;;
        -h | --help) sed -n '3,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//' >&2; exit 2 ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
        esac
        shift
done

[ "$(id -u)" = 0 ] || { echo "SKIP: needs root (the images are built in a chroot; loop devices)"; exit 77; }
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
need_pkgs=()
command -v qemu-img >/dev/null || need_pkgs+=(qemu-utils)
command -v sfdisk >/dev/null || need_pkgs+=(fdisk)
command -v jq >/dev/null || need_pkgs+=(jq)
command -v mdir >/dev/null || need_pkgs+=(mtools)
command -v mkfs.ext4 >/dev/null || need_pkgs+=(e2fsprogs)
command -v cryptsetup >/dev/null || need_pkgs+=(cryptsetup-bin)
command -v openssl >/dev/null || need_pkgs+=(openssl)
command -v zstd >/dev/null || need_pkgs+=(zstd)
command -v nginx >/dev/null || need_pkgs+=(nginx)
if [ ${#need_pkgs[@]} -gt 0 ]; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
fi
# shellcheck source=tests/e2e/disk-util.sh
. "$here/disk-util.sh"

WORK=$(mktemp -d /var/tmp/imprint-oem-e2e.XXXXXX)
STAMP_PID=
WATCH_PID=
BOOTS=0
SECOND_PID=
# shellcheck source=tests/e2e/lib-rig.sh
. "$here/lib-rig.sh"
# shellcheck source=tests/e2e/lib-http.sh
. "$here/lib-http.sh"
cleanup() {
        local rc=$?
        [ -z "$STAMP_PID" ] || kill "$STAMP_PID" 2>/dev/null || true
        [ -z "$WATCH_PID" ] || kill "$WATCH_PID" 2>/dev/null || true
        [ -z "$SECOND_PID" ] || kill "$SECOND_PID" 2>/dev/null || true
        http_stop || true
        if [ "$KEEP" = 0 ]; then
                rm -rf "$WORK/tpm"
                rm -f "$WORK/target.img" "$WORK/spare.img" "$WORK/line.p7m" "$WORK/live.qcow2" "$WORK/images.img" "$WORK/OVMF_VARS.fd" "$WORK/escrow.img" \
                        "$WORK"/*.key "$WORK/password" "$WORK/live.raw" "$WORK/confirm.fifo" "$WORK/target2.img" "$WORK/live2.qcow2" \
                        "$WORK/OVMF_VARS2.fd"
                rm -rf "$WORK/images" "$WORK/www"
        fi
        echo "work directory: $WORK ($([ "$KEEP" = 1 ] && echo "disks kept" || echo "logs only"))"
        exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

# --- images -------------------------------------------------------------------------------------
echo "== images"
t=$EPOCHREALTIME
usr_dir=$(bash "$top/tests/image/build-usr-ddi.sh") || failed "building the usr images (tests/image/build-usr-ddi.sh)"
[ -f "$usr_dir/complete" ] && [ -f "$usr_dir/imprint-usr_1.raw" ] || failed "$usr_dir has no complete imprint-usr_1.raw"
live=$(bash "$top/iso/build-live.sh") || failed "building the live medium"
phase_done "images (build or cache)" "$t"
echo "usr images: $usr_dir"
echo "medium:     $live"
[ -s "$usr_dir/test-cert.pem" ] || failed "no test-cert.pem in $usr_dir"

GUID_ROOT=4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709
GUID_HOME=933AC7E1-2EB4-4F13-B844-0E14E2AEF915
GUID_ESP=C12A7328-F81F-11D2-BA4B-00A0C93EC93B
KEY_RE='([cbdefghijklnrtuv]{8}-){7}[cbdefghijklnrtuv]{8}'
IMG=$WORK/target.img
VARS=$WORK/OVMF_VARS.fd
USER_NAME=bob
HOST_NAME=customer-pc

# --- boot 1: the line's install ------------------------------------------------------------------
keep_file "$live" "$WORK/live.raw"
# The image as a line serves it: a file with its SHA256SUMS line beside it, on a disk ("images",
# ext4, filled without mounting) that the live system mounts read-only; imprint checks the digest.
mkdir -p "$WORK/images"
keep_file "$usr_dir/imprint-usr_1.raw" "$WORK/images/imprint-usr_1.raw"
grep -E ' \*?imprint-usr_1\.raw$' "$usr_dir/SHA256SUMS" >"$WORK/images/SHA256SUMS" || failed "no imprint-usr_1.raw in $usr_dir/SHA256SUMS"
truncate -s 1G "$WORK/images.img"
mkfs.ext4 -q -F -L images -d "$WORK/images" "$WORK/images.img" || failed "making the images disk"
qemu-img create -q -f qcow2 -F raw -b "$WORK/live.raw" "$WORK/live.qcow2"
truncate -s 8G "$IMG"
truncate -s 64M "$WORK/escrow.img"
mkfs.ext4 -q -F -L escrow "$WORK/escrow.img"
truncate -s 6G "$WORK/spare.img"
# The OEM's escrow key pair: the certificate goes to the line (a credential), the private key stays
# here, as it stays with the OEM.
umask 077
openssl req -x509 -newkey rsa:3072 -nodes -keyout "$WORK/oem.key" -out "$WORK/oem.pem" -days 2 \
        -subj "/O=Imprint Rig OEM/CN=recovery key escrow" 2>/dev/null || failed "making the OEM's key pair"
umask 022
# The line's image server: stock nginx on the host (tests/e2e/lib-http.sh), which the guests reach
# at 10.0.2.2 through QEMU's user network. line/: the image as a line publishes it (.raw.zst, its
# SHA256SUMS signed by the line's EC key); forged/: the same file, SHA256SUMS signed by another
# key. Each response is limited to 8 MiB/s, so that both machines are still streaming when the
# host cuts the server off.
t=$EPOCHREALTIME
mkdir -p "$WORK/www/line" "$WORK/www/forged"
zstd -q -T0 "$WORK/images/imprint-usr_1.raw" -o "$WORK/www/line/imprint-usr_1.raw.zst" || failed "compressing the image"
ln "$WORK/www/line/imprint-usr_1.raw.zst" "$WORK/www/forged/imprint-usr_1.raw.zst"
sign_sums "$WORK/www/forged" ec || failed "signing the forged SHA256SUMS"
sign_sums "$WORK/www/line" ec || failed "signing the line's SHA256SUMS"
cp "$SIGN_PUBKEY" "$WORK/line-key.pem"
zst_sha=$(sha256sum <"$WORK/www/line/imprint-usr_1.raw.zst" | cut -d' ' -f1)
zst_size=$(stat -c %s "$WORK/www/line/imprint-usr_1.raw.zst")
HTTP_RATE=8m http_serve "$WORK/www" || failed "starting nginx"
URL=http://10.0.2.2:$HTTP_PORT/line/imprint-usr_1.raw.zst
phase_done "the line's server: zstd, signed SHA256SUMS, nginx" "$t"
echo "server:     nginx on port $HTTP_PORT, $URL ($zst_size bytes, log $HTTP_LOG)"
NIC=(--qemu-arg -nic --qemu-arg user,model=virtio-net-pci)

# The line's operator: tests/e2e/oem-line-client.sh, run on the medium by a unit given as a
# credential, on the serial console (the line-by-line dialogue is masked there).
client_unit=$(cat <<'UNIT'
[Unit]
Description=rig: an OEM line's configuration matrix and install
ConditionPathExists=!/etc/initrd-release
After=systemd-udev-trigger.service local-fs.target
[Service]
Type=exec
ImportCredential=imprint-rig.*
ExecStart=/bin/bash %d/imprint-rig.client
StandardOutput=tty
StandardError=tty
TTYPath=/dev/ttyS0
UNIT
)
client_wants=$(printf '[Unit]\nWants=imprint-rig-oem-client.service\n')
fstab_extra=$(printf '%s\n' '/dev/disk/by-id/virtio-escrow /run/imprint-escrow ext4 defaults,x-systemd.device-timeout=10min 0 0' \
        '/dev/disk/by-id/virtio-images /run/imprint-images ext4 ro,x-systemd.device-timeout=10min 0 0')
O='IMPRINT-OEM'
# The second machine: another live medium, its own blank disk and firmware variables, no TPM.
qemu-img create -q -f qcow2 -F raw -b "$WORK/live.raw" "$WORK/live2.qcow2"
truncate -s 8G "$WORK/target2.img"
log1b=$WORK/serial-1b-second.log
: >"$log1b"
bash "$here/boot-image.sh" "$WORK/target2.img" --no-tpm --vars "$WORK/OVMF_VARS2.fd" \
        --disk "$WORK/live2.qcow2:live" --boot-first live "${NIC[@]}" \
        --qemu-arg -smbios --qemu-arg "type=11,value=io.systemd.stub.kernel-cmdline-extra=systemd.mask=imprint@ttyS0.service" \
        --qemu-arg -smbios --qemu-arg "$(cred imprint-rig.client "$(cat "$here/oem-line-second.sh")")" \
        --qemu-arg -smbios --qemu-arg "$(cred imprint-rig.url "$URL")" \
        --qemu-arg -smbios --qemu-arg "$(cred imprint-rig.image-key "$(cat "$WORK/line-key.pem")")" \
        --qemu-arg -smbios --qemu-arg "$(cred systemd.extra-unit.imprint-rig-oem-client.service "$client_unit")" \
        --qemu-arg -smbios --qemu-arg "$(cred systemd.unit-dropin.multi-user.target "$client_wants")" \
        --no-check --log "$log1b" --timeout 2400 \
        --stop-after "IMPRINT-OEM2 FAIL" --stop-after 'You are in emergency mode' --stop-after "$FROZE" \
        --expect "IMPRINT-OEM2 PASS" >"$WORK/second.out" 2>&1 &
SECOND_PID=$!
# The host's part of the line: /go once both machines are ready, then, while both stream, nginx
# killed (SIGKILL: every transfer cut) and started again 2 s later.
coordinate() {
        local i
        for ((i = 0; i < 4800; i++)); do
                plain_log "$WORK/serial-1-install.log" 2>/dev/null | grep -aq "^$O ready" &&
                        plain_log "$log1b" 2>/dev/null | grep -aq "^IMPRINT-OEM2 ready" && break
                sleep 0.5
        done
        : >"$WORK/www/go"
        chmod 0644 "$WORK/www/go"
        echo "coordinator: both machines ready, go at $EPOCHREALTIME" >>"$WORK/coordinator.log"
        # The first machine's systemctl status line shows the stream step; then both are in it.
        for ((i = 0; i < 1200; i++)); do
                plain_log "$WORK/serial-1-install.log" 2>/dev/null | grep -aqE "^$O status: .*stream: [1-9]" && break
                sleep 0.25
        done
        sleep 2
        echo "coordinator: cutting the server off at $EPOCHREALTIME" >>"$WORK/coordinator.log"
        http_restart_after 0 2 >>"$WORK/coordinator.log" 2>&1
        echo "coordinator: server back at $EPOCHREALTIME" >>"$WORK/coordinator.log"
}
coordinate &
COORD_PID=$!
echo "== boot 1: live medium as a line's machine: the configuration matrix, then the line's install (oem, encrypted, TPM2, escrow to the OEM's certificate, report, from the line's server); a second machine installs from it at the same time"
t=$EPOCHREALTIME
BOOTS=$((BOOTS + 1))
again "boot 1" "$WORK/serial-1-install.log" run_stamped "$WORK/serial-1-install.log" "$WORK/serial-1-install.stamps" \
        bash "$here/boot-image.sh" "$IMG" --tpm-state "$WORK/tpm" --vars "$VARS" \
        --disk "$WORK/live.qcow2:live" --boot-first live --disk "$WORK/escrow.img:escrow" --disk "$WORK/images.img:images" \
        --disk "$WORK/spare.img:spare" \
        --qemu-arg -smbios --qemu-arg "type=1,manufacturer=Imprint Rig,product=Line Model 7,version=rev A,serial=RIG-0001,sku=LM7-16,family=Rig Line" \
        --qemu-arg -smbios --qemu-arg "type=2,manufacturer=Imprint Rig,product=Rig Board 2" \
        --qemu-arg -smbios --qemu-arg "type=11,value=io.systemd.stub.kernel-cmdline-extra=systemd.mask=imprint@ttyS0.service" \
        --qemu-arg -smbios --qemu-arg "$(cred imprint-rig.client "$(cat "$here/oem-line-client.sh")")" \
        --qemu-arg -smbios --qemu-arg "$(cred imprint-rig.image /run/imprint-images/imprint-usr_1.raw)" \
        --qemu-arg -smbios --qemu-arg "$(cred imprint-rig.image-cert "$(cat "$usr_dir/test-cert.pem")")" \
        --qemu-arg -smbios --qemu-arg "$(cred imprint-rig.oem-cert "$(cat "$WORK/oem.pem")")" \
        --qemu-arg -smbios --qemu-arg "$(cred imprint-rig.url "$URL")" \
        --qemu-arg -smbios --qemu-arg "$(cred imprint-rig.url-forged "${URL/\/line\//\/forged\/}")" \
        --qemu-arg -smbios --qemu-arg "$(cred imprint-rig.image-key "$(cat "$WORK/line-key.pem")")" \
        "${NIC[@]}" \
        --qemu-arg -smbios --qemu-arg "$(cred fstab.extra "$fstab_extra")" \
        --qemu-arg -smbios --qemu-arg "$(cred systemd.extra-unit.imprint-rig-oem-client.service "$client_unit")" \
        --qemu-arg -smbios --qemu-arg "$(cred systemd.unit-dropin.multi-user.target "$client_wants")" \
        --no-check --log "$WORK/serial-1-install.log" --timeout 2000 \
        --stop-after "$O FAIL" \
        --stop-after 'You are in emergency mode' \
        --stop-after "$FROZE" \
        --expect "$O ok: not-listed: " \
        --expect "$O ok: two-match: " \
        --expect "$O ok: no-match: " \
        --expect "$O ok: plaintext: " \
        --expect "$O ok: forged: " \
        --expect '"event": ?"target".*"target": ?"/dev/vd[a-z]"' \
        --expect '"event": ?"recoveryKey".*"deliveredTo": ?"/run/imprint-escrow/recovery-key-[^"]*\.p7m".*"format": ?"cms"' \
        --expect '"event": ?"end".*"id": ?"configure".*customer.s first boot' \
        --expect '"event": ?"end".*"id": ?"encrypt-home"' \
        --expect '"event": ?"result".*"success": ?true' \
        --expect "$O status: .*stream" \
        --expect "$O ok: line: installed to " \
        --expect "$O PASS" \
        || failed "the line's matrix and install (serial log $WORK/serial-1-install.log)"
phase_done "boot 1: live medium, matrix + the line's install" "$t"
plain_log "$WORK/serial-1-install.log" | grep -a "^$O ok:" | sed 's/^/  /'
echo "  systemctl status showed: $(plain_log "$WORK/serial-1-install.log" | grep -a "^$O status: .*stream" | tail -n 1 | sed "s/^$O status: //")"
t=$EPOCHREALTIME
rc=0
wait "$SECOND_PID" || rc=$?
SECOND_PID=
wait "$COORD_PID" 2>/dev/null || true
cat "$WORK/coordinator.log" 2>/dev/null | sed 's/^/  /'
[ "$rc" = 0 ] || { tail -n 20 "$WORK/second.out"; failed "the second machine's install from the same server (serial log $log1b)"; }
phase_done "the second machine (after the first)" "$t"
plain_log "$log1b" | grep -a "^IMPRINT-OEM2 " | grep -av '"event"' | sed 's/^/  /'

# The server's side: both machines were cut off mid-stream and resumed with range requests; the
# file went out about once per machine, not again from zero.
grep -q "go at" "$WORK/coordinator.log" && grep -q "server back at" "$WORK/coordinator.log" || failed "the server was not cut off and started again"
n206=$(grep -cE '^GET /line/imprint-usr_1\.raw\.zst HTTP/1\.[01] 206 [0-9]+ bytes=[1-9][0-9]*-' "$HTTP_LOG" || true)
[ "$n206" -ge 2 ] || { cat "$HTTP_LOG"; failed "nginx served $n206 resumed range requests of the image, not one per machine"; }
sent=$(awk '$2 == "/line/imprint-usr_1.raw.zst" { s += $5 } END { print s + 0 }' "$HTTP_LOG")
echo "ok: nginx: $n206 range requests resumed the image; $sent bytes of it sent for two machines ($zst_size each)"
# Cut-off responses are not in nginx's log: what it logged must not exceed two copies.
[ "$sent" -le $((2 * zst_size)) ] || failed "nginx sent $sent bytes of the $zst_size-byte image to two machines: a transfer restarted"

# The second machine's disk: the usr A slot is the image's, byte for byte.
plain_log "$log1b" | awk '/IMPRINT-REPORT-BEGIN/ { f = 1; s = ""; next } /IMPRINT-REPORT-END/ { if (f) print s; f = 0; next } f { s = s $0 }' \
        | tail -n 1 | jq -S . >"$WORK/report-second.json" || failed "no report of the second machine on its console"
jq -e --arg url "$URL" --arg sum "$zst_sha" '.result.success == true and .image.path == $url and .image.sha256 == $sum
        and .image.stream.compression == "zstd" and .image.stream.resumes >= 1
        and ([.steps[] | select(.id == "stream" and .result == "done" and .bytes > 0)] | length) == 1
        and ([.steps[] | select(.id == "verify-usr" and .result == "done")] | length) == 1' "$WORK/report-second.json" >/dev/null \
        || failed "the second machine's report: $(jq -c '{result, image, steps: [.steps[] | {id, result, bytes}]}' "$WORK/report-second.json")"
read -r _ s_start s_size _ <<<"$(du_part "$WORK/images/imprint-usr_1.raw" 8484680C-9521-48C6-9C11-B0720656F69E)"
read -r _ t_start _ _ <<<"$(du_part "$WORK/target2.img" 8484680C-9521-48C6-9C11-B0720656F69E)"
[ -n "$s_start" ] && [ -n "$t_start" ] || failed "no usr partition on the image or the second disk"
cmp -n $((s_size * 512)) -i $((s_start * 512)):$((t_start * 512)) "$WORK/images/imprint-usr_1.raw" "$WORK/target2.img" || failed "the second disk's usr A slot differs from the image's"
echo "ok: the second machine: installed from the same server at the same time, resumed $(jq -r '.image.stream.resumes' "$WORK/report-second.json") time(s), read back; its usr A slot is the image's byte for byte (cmp)"

# The report: the refused machine's on the console, and the install's both on the console and on
# the escrow disk — the same document.
plain_log "$WORK/serial-1-install.log" | awk '/IMPRINT-REPORT-BEGIN/ { f = 1; s = ""; next }
        /IMPRINT-REPORT-END/ { if (f) print s; f = 0; next } f { s = s $0 }' >"$WORK/reports.jsonl"
jq -s -e 'length >= 2' "$WORK/reports.jsonl" >/dev/null 2>&1 || failed "fewer than two reports (or not JSON) on the console (serial log $WORK/serial-1-install.log)"
head -n 1 "$WORK/reports.jsonl" | jq -S . >"$WORK/report-refused.json"
tail -n 1 "$WORK/reports.jsonl" | jq -S . >"$WORK/report.json"
jq -e '.result.success == false and .result.exitCode == 3 and .machine.product == "Line Model 7"
        and ([.refusals[] | select(.what == "machine")] | length) == 1 and .plan == null' "$WORK/report-refused.json" >/dev/null \
        || failed "the refused machine's report: $(jq -c '{result, refusals, machine}' "$WORK/report-refused.json")"
rname=$(debugfs -R 'ls -p /reports' "$WORK/escrow.img" 2>/dev/null | awk -F/ '$6 ~ /^imprint-RIG-0001-.*\.json$/ { print $6 }' | tail -n 1)
[ -n "$rname" ] || failed "no report imprint-RIG-0001-*.json on the escrow disk"
debugfs -R "cat /reports/$rname" "$WORK/escrow.img" 2>/dev/null | jq -S . >"$WORK/report-file.json" || failed "the report on the escrow disk is not JSON"
cmp -s "$WORK/report.json" "$WORK/report-file.json" || failed "the report on the escrow disk differs from the console's"
# Field by field, against the machine (SMBIOS as QEMU gave it), the disk (sfdisk, cryptsetup), the
# image (its SHA256SUMS) and the run.
r() { jq -r "$1" "$WORK/report.json"; }
[ "$(r '.machine | "\(.vendor)|\(.product)|\(.sku)|\(.serial)|\(.boardName)"')" = "Imprint Rig|Line Model 7|LM7-16|RIG-0001|Rig Board 2" ] \
        || failed "report machine: $(r '.machine')"
[ "$(r '.disk | "\(.serial)|\(.size)|\(.transport)"')" = "target|$(stat -c %s "$IMG")|virtio" ] || failed "report disk: $(r '.disk')"
[ "$(r '.image.sha256') $(r '.image.sha256Origin') $(r '.image.path')" = "$zst_sha ${URL%/*}/SHA256SUMS $URL" ] \
        || failed "report image $(r '.image.path') sha256 $(r '.image.sha256') from $(r '.image.sha256Origin'), not $zst_sha from ${URL%/*}/SHA256SUMS"
[ "$(r '.image.stream.compression') $(r '.image.stream.resumes >= 1')" = "zstd true" ] || failed "report stream: $(r '.image.stream')"
[ "$(r '.image.version')" = 1 ] || failed "report image version: $(r '.image.version')"
diff <(du_parts "$IMG" | awk '{ print $1, tolower($5) }' | sort) \
        <(r '.partitions[] | "\(.partno) \(.partUuid | ascii_downcase)"' | sort) >/dev/null \
        || failed "report partition UUIDs differ from the disk's: $(r '[.partitions[] | {partno, partUuid}]')"
for g in "$GUID_ROOT" "$GUID_HOME"; do
        read -r pno pstart psize _ <<<"$(du_part "$IMG" "$g")"
        loop=$(du_loop "$IMG" "$pstart" "$psize")
        luuid=$(cryptsetup luksUUID "$loop" 2>/dev/null || true)
        losetup -d "$loop"
        [ -n "$luuid" ] && [ "$(r ".partitions[] | select(.partno == $pno) | .luksUuid")" = "$luuid" ] \
                || failed "report LUKS UUID of partition $pno: $(r ".partitions[] | select(.partno == $pno) | .luksUuid"), disk: $luuid"
done
jq -e '.result.success == true and .result.exitCode == 0 and .encryption.tpm2.enrolled == true
        and .escrow.method == "cms" and (.escrow.path | test("\\.p7m$"))
        and ([.steps[] | select(.id == "stream" and .bytes > 0 and .durationSeconds >= 0 and .cpuSeconds >= 0)] | length) == 1
        and ([.steps[] | select(.id == "copy-usr")] | length) == 0
        and ([.steps[] | select(.result != "done")] | length) == 0 and (.logTail | length) > 0 and .plan.oem != null' \
        "$WORK/report.json" >/dev/null \
        || failed "the install's report: $(jq -c '{result, escrow, tpm2: .encryption.tpm2, steps: [.steps[] | {id, result, bytes}]}' "$WORK/report.json")"
echo "ok: reports: the refused machine's (exit 3, refusal 'machine'), and the install's on the console and the escrow disk, identical, its machine, disk, image, partition and LUKS UUIDs, TPM2, escrow and steps as checked here"

# The key, as only the OEM can read it: stock openssl with the private key that never left here.
f=$(plain_log "$WORK/serial-1-install.log" | grep -aoE '"deliveredTo": ?"/run/imprint-escrow/recovery-key-[^"/]*\.p7m"' | tail -n 1 | sed -E 's|.*/||; s|"$||' || true)
[ -n "$f" ] || failed "no escrowed key file named in the install's log"
debugfs -R "cat /$f" "$WORK/escrow.img" 2>/dev/null >"$WORK/line.p7m"
! grep -aqE "$KEY_RE" "$WORK/line.p7m" || failed "the escrowed file $f holds a recovery key in plain text"
umask 077
openssl cms -decrypt -in "$WORK/line.p7m" -inform PEM -inkey "$WORK/oem.key" 2>/dev/null | tr -d '\n' >"$WORK/line.key" \
        || failed "openssl cms -decrypt with the OEM's key failed on $f"
umask 022
grep -Eqx "$KEY_RE" "$WORK/line.key" || failed "the escrowed file $f does not decrypt to a recovery key"
! grep -aqF -- "$(cat "$WORK/line.key")" "$WORK/reports.jsonl" "$WORK/report-file.json" || failed "the recovery key is in the report"
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$WORK/other.key" -out /dev/null -days 1 -subj "/CN=not the OEM" 2>/dev/null
! openssl cms -decrypt -in "$WORK/line.p7m" -inform PEM -inkey "$WORK/other.key" >/dev/null 2>&1 || failed "another key decrypts the escrowed file"
echo "ok: the escrowed $f: no key in plain text; openssl cms -decrypt with the OEM's key recovers it, another key does not"

read -r _ esp_start _ <<<"$(du_part "$IMG" "$GUID_ESP")"
du_esp_cat "$IMG" "$esp_start" /imprint/install.json >"$WORK/install.json" 2>/dev/null || failed "no /imprint/install.json on the ESP"
jq -e '.plan.oem.account == "systemd-homed-firstboot" and .plan.oem.newRecoveryKey == true and .plan.account == null
        and (.plan.oem.firstbootAsks | index("hostname") != null)' "$WORK/install.json" >/dev/null \
        || failed "the recorded plan does not describe the hand-off: $(jq -c '.plan.oem' "$WORK/install.json")"
read -r ROOT_NO ROOT_START ROOT_SIZE _ <<<"$(du_part "$IMG" "$GUID_ROOT")"
read -r HOME_NO HOME_START HOME_SIZE _ <<<"$(du_part "$IMG" "$GUID_HOME")"
[ -n "$ROOT_NO" ] && [ -n "$HOME_NO" ] || failed "the installed disk has no root or no home partition"
du_luks_opens "$IMG" "$WORK/line.key" "$ROOT_START" "$ROOT_SIZE" || failed "the key decrypted from the OEM's escrow does not open root after the install"
du_luks_opens "$IMG" "$WORK/line.key" "$HOME_START" "$HOME_SIZE" || failed "the key decrypted from the OEM's escrow does not open home after the install"
echo "ok: installed; the line's key ($f) opens root and home; the plan: $(jq -c '.plan.oem | {firstbootAsks, account, newRecoveryKey}' "$WORK/install.json")"

# --- boot 2: the customer's first boot ------------------------------------------------------------
user_password="Handoff-kettle $(basename "$WORK") 7"
umask 077
printf '%s\n' "$user_password" >"$WORK/password"
umask 022
printf '%s\n' Europe/Berlin >"$WORK/a-timezone"
printf '%s\n' "$HOST_NAME" >"$WORK/a-hostname"
printf '%s\n' C.UTF-8 >"$WORK/a-locale"
printf '%s\n' us >"$WORK/a-keymap"
printf '%s\n' "$USER_NAME" >"$WORK/a-user"
printf '\n' >"$WORK/a-empty"
# The confirmation is typed through a FIFO that boot-image.sh reads when the prompt shows: the
# watcher writes into it once the key is on the serial log (always before the prompt), first a
# wrong answer, then the key's first and last groups.
mkfifo "$WORK/confirm.fifo"
watch_key() {
        local log=$1 key='' i
        for ((i = 0; i < 3600; i++)); do
                key=$(plain_log "$log" 2>/dev/null | grep -aoE "Recovery key: $KEY_RE" | tail -n 1 | grep -oE "$KEY_RE" || true)
                [ -n "$key" ] && break
                sleep 0.5
        done
        [ -n "$key" ] || return 0
        printf 'aaaaaaaa-bbbbbbbb\n' >"$WORK/confirm.fifo"
        # The second answer only once the first was read and refused: written while boot-image.sh
        # still held the FIFO open for the first, it would be lost with the rest of that read.
        for ((i = 0; i < 3600; i++)); do
                plain_log "$log" 2>/dev/null | grep -aq 'That does not match the key shown above' && break
                sleep 0.5
        done
        printf '%s-%s\n' "${key%%-*}" "${key##*-}" >"$WORK/confirm.fifo"
}
# The installed boots wait longer for devices and services than systemd's 90 s: on a loaded 2-core
# host, TCG took 60 s from switch-root to starting udevd, and the device units for ttyS0 and home's
# partition timed out (emergency mode) before udev ran at all.
CMDLINE_EXTRA='type=11,value=io.systemd.stub.kernel-cmdline-extra=systemd.firstboot=on systemd.default_timeout_start_sec=600 systemd.default_device_timeout_sec=600'
# Boot 2a: the customer's first boot, cut off (QEMU killed: a power cut) when the new key is on
# the screen and the confirmation is asked: the hand-off has not completed.
FIRSTBOOT_ANSWERS=(
        --answer '[Pp]ress any key' "$WORK/a-empty"
        --answer '[Pp]lease enter.*time ?zone' "$WORK/a-timezone"
        --answer '[Pp]lease enter.*host ?name' "$WORK/a-hostname"
        --answer '[Pp]lease enter.*locale' "$WORK/a-locale"
        --answer '[Pp]lease enter.*keymap' "$WORK/a-keymap"
        --answer '[Pp]lease enter.*root password' "$WORK/a-empty"
        --answer '[Pp]lease enter user name' "$WORK/a-user"
        --answer '[Pp]lease enter (the )?new password for user' "$WORK/password"
        --answer 'auxiliary group|shell to use' "$WORK/a-empty")
echo "== boot 2a: the customer's first boot, power cut while the new recovery key is shown"
t=$EPOCHREALTIME
BOOTS=$((BOOTS + 1))
log2a=$WORK/serial-2a-cut.log
again "boot 2a" "$log2a" run_stamped "$log2a" "$WORK/serial-2a-cut.stamps" \
        bash "$here/boot-image.sh" "$IMG" --tpm-state "$WORK/tpm" --vars "$VARS" \
        --no-check --log "$log2a" --timeout 1200 \
        --qemu-arg -smbios --qemu-arg "$CMDLINE_EXTRA" \
        "${FIRSTBOOT_ANSWERS[@]}" \
        --stop-after "$FROZE" \
        --stop-after '^Please enter passphrase' \
        --stop-after 'Please enter (the )?recovery key' \
        --stop-after 'You are in emergency mode' \
        --stop-after 'imprint: systemd-cryptenroll could not' \
        --stop-after '^Type the first and the last group of the recovery key' \
        --expect '^Type the first and the last group of the recovery key' \
        || failed "the customer's first boot, to the confirmation (serial log $log2a)"
phase_done "boot 2a: first boot, cut at the confirmation" "$t"
p2a=$(plain_log "$log2a")
grep -aqE '[Pp]lease enter.*time ?zone' <<<"$p2a" || failed "systemd-firstboot did not ask for the time zone (serial log $log2a)"
grep -aqE '[Pp]lease enter.*host ?name' <<<"$p2a" || failed "systemd-firstboot did not ask for the host name (serial log $log2a)"
grep -aqE '[Pp]lease enter user name' <<<"$p2a" || failed "systemd-homed-firstboot did not ask for a user name (serial log $log2a)"
! grep -aq 'the hand-off is complete' <<<"$p2a" || failed "the hand-off completed although it was cut off"
grep -aoE "Recovery key: $KEY_RE" <<<"$p2a" | tail -n 1 | grep -oE "$KEY_RE" | tr -d '\n' >"$WORK/cut.key"
grep -Eqx "$KEY_RE" "$WORK/cut.key" || failed "no recovery key on the console before the cut (serial log $log2a)"
echo "ok: firstboot asked the time zone and host name, homed-firstboot the user; a new key was shown; power cut at the confirmation"

echo "== boot 2: the customer's first boot again (the hand-off repeats), completed"
t=$EPOCHREALTIME
BOOTS=$((BOOTS + 1))
log2=$WORK/serial-2-handoff.log
: >"$log2"
watch_key "$log2" &
WATCH_PID=$!
again "boot 2" "$log2" run_stamped "$log2" "$WORK/serial-2-handoff.stamps" \
        bash "$here/boot-image.sh" "$IMG" --tpm-state "$WORK/tpm" --vars "$VARS" \
        --no-check --log "$log2" --timeout 1200 \
        --qemu-arg -smbios --qemu-arg "$CMDLINE_EXTRA" \
        --answer '[Pp]lease enter.*time ?zone' "$WORK/a-timezone" \
        --answer '[Pp]lease enter.*host ?name' "$WORK/a-hostname" \
        --answer '[Pp]lease enter.*locale' "$WORK/a-locale" \
        --answer '[Pp]lease enter.*keymap' "$WORK/a-keymap" \
        --answer '[Pp]lease enter.*root password' "$WORK/a-empty" \
        --answer '[Pp]lease enter user name' "$WORK/a-user" \
        --answer '[Pp]lease enter (the )?new password for user' "$WORK/password" \
        --answer 'auxiliary group|shell to use' "$WORK/a-empty" \
        --answer '[Pp]ress any key' "$WORK/a-empty" \
        --answer '^Type the first and the last group of the recovery key' "$WORK/confirm.fifo" \
        --stop-after "$FROZE" \
        --stop-after '^Please enter passphrase' \
        --stop-after 'Please enter (the )?recovery key' \
        --stop-after 'You are in emergency mode' \
        --stop-after 'imprint: systemd-cryptenroll could not' \
        --expect 'imprint: the hand-off is complete' \
        --expect 'IMPRINT-CHECK-DONE' \
        || failed "the customer's first boot (serial log $log2)"
kill "$WATCH_PID" 2>/dev/null || true
wait "$WATCH_PID" 2>/dev/null || true
WATCH_PID=
phase_done "boot 2: the customer's first boot" "$t"
a=$(stamp_of "$WORK/serial-2-handoff.stamps" 'Recovery key: ' first)
b=$(stamp_of "$WORK/serial-2-handoff.stamps" 'the hand-off is complete' last)
[ -n "$a" ] && [ -n "$b" ] && MEASURED+=("new key shown → hand-off complete (host clock) $(since "$a" "$b")s")
p2=$(plain_log "$log2")
! grep -aqE '[Pp]lease enter user name' <<<"$p2" || failed "systemd-homed-firstboot asked for a user again, although $USER_NAME exists (serial log $log2)"
grep -aqE '[Pp]lease enter.*time ?zone' <<<"$p2" && MEASURED+=("boot 2: systemd-firstboot asked again after the cut (the machine-id was not committed)") \
        || MEASURED+=("boot 2: systemd-firstboot did not ask again after the cut")
grep -aq 'That does not match the key shown above' <<<"$p2" || failed "the wrong confirmation was not refused (serial log $log2)"
[ "$(grep -acE '^Type the first and the last group' <<<"$p2")" -ge 2 ] || failed "the confirmation was not asked again after a wrong answer"
[ "$(grep -aoE "Recovery key: $KEY_RE" <<<"$p2" | sort -u | wc -l)" = 1 ] || failed "not exactly one new recovery key was shown"
grep -aoE "Recovery key: $KEY_RE" <<<"$p2" | grep -oE "$KEY_RE" | tr -d '\n' >"$WORK/new.key"
! cmp -s "$WORK/new.key" "$WORK/line.key" || failed "the key shown is the line's"
! cmp -s "$WORK/new.key" "$WORK/cut.key" || failed "the repeated hand-off showed the same key as the cut one"
val=$(check_val "$log2" account)
[ "$val" = "$USER_NAME" ] || failed "the account after the first boot is '$val', not $USER_NAME (serial log $log2)"
[ "$(check_val "$log2" root-crypt) $(check_val "$log2" root-unlock)" = "yes tpm2" ] || failed "root was not unlocked by the TPM2 on the first boot"
echo "ok: the hand-off repeated: $USER_NAME (uid $(check_val "$log2" uid)) kept, a different key shown, a wrong confirmation refused, the right one taken"

# --- the host: the line's key is gone, the new one opens, the TPM2 token stays ----------------
t=$EPOCHREALTIME
for part in "root $ROOT_START $ROOT_SIZE" "home $HOME_START $HOME_SIZE"; do
        read -r what start size <<<"$part"
        rc=0
        du_luks_opens "$IMG" "$WORK/line.key" "$start" "$size" || rc=$?
        [ "$rc" = 1 ] || failed "$what: the line's recovery key still opens it (or no LUKS: $rc)"
        rc=0
        du_luks_opens "$IMG" "$WORK/cut.key" "$start" "$size" || rc=$?
        [ "$rc" = 1 ] || failed "$what: the key shown before the power cut still opens it (or no LUKS: $rc)"
        du_luks_opens "$IMG" "$WORK/new.key" "$start" "$size" || failed "$what: the new recovery key does not open it"
        loop=$(du_loop "$IMG" "$start" "$size")
        j=$(cryptsetup luksDump --dump-json-metadata "$loop" 2>/dev/null) || true
        losetup -d "$loop"
        jq -e '(.keyslots | length) == 2 and ([.tokens[] | select(.type == "systemd-tpm2")] | length) == 1
                and ([.tokens[] | .type] - ["systemd-tpm2", "systemd-recovery"] | length) == 0' <<<"$j" >/dev/null \
                || failed "$what's LUKS2 header: keyslots $(jq -c '.keyslots | keys' <<<"$j"), tokens $(jq -c '[.tokens[] | .type]' <<<"$j"): not the new key's and the TPM2's"
done
phase_done "host: keyslots of root and home" "$t"
echo "ok: root and home: the line's key and the cut boot's key refused, the new key opens (cryptsetup --test-passphrase); two keyslots each, the systemd-tpm2 token kept"

# --- boot 3: a second boot asks nothing; the customer logs in --------------------------------------
marker_unit=$(printf '[Unit]\nDescription=rig: the hand-off marker\nAfter=multi-user.target\n[Service]\nType=oneshot\nExecStart=/bin/sh -c "if [ -e /var/lib/imprint/handoff-done ]; then echo IMPRINT-CHECK handoff-marker=yes; else echo IMPRINT-CHECK handoff-marker=no; fi >/dev/ttyS0"\n')
printf 'echo IMPRINT-LOGIN user=$(id -un) uid=$(id -u)\n' >"$WORK/a-command"
echo "== boot 3: the second boot asks nothing; $USER_NAME logs in on the serial console"
t=$EPOCHREALTIME
BOOTS=$((BOOTS + 1))
log3=$WORK/serial-3-second.log
again "boot 3" "$log3" run_stamped "$log3" "$WORK/serial-3-second.stamps" \
        bash "$here/boot-image.sh" "$IMG" --tpm-state "$WORK/tpm" --vars "$VARS" \
        --no-check --log "$log3" --timeout 900 \
        --qemu-arg -smbios --qemu-arg "$CMDLINE_EXTRA imprint-test.poweroff=0 systemd.wants=imprint-rig-handoff.service" \
        --qemu-arg -smbios --qemu-arg "$(cred systemd.extra-unit.imprint-rig-handoff.service "$marker_unit")" \
        --answer "^$HOST_NAME login:" "$WORK/a-user" \
        --answer '^Password:' "$WORK/password" \
        --answer "$USER_NAME@$HOST_NAME" "$WORK/a-command" \
        --stop-after "$FROZE" \
        --stop-after '^Please enter' \
        --stop-after '^Type the first and the last group' \
        --stop-after 'You are in emergency mode' \
        --stop-after "^IMPRINT-LOGIN user=$USER_NAME" \
        --expect "^IMPRINT-LOGIN user=$USER_NAME uid=[0-9]+" \
        || failed "the second boot (serial log $log3)"
phase_done "boot 3: second boot + login" "$t"
p3=$(plain_log "$log3")
! grep -aqE '[Pp]lease enter|Recovery key: |^Type the first and the last group' <<<"$p3" || failed "the second boot asked something (serial log $log3)"
[ "$(check_val "$log3" handoff-marker)" = yes ] || failed "the hand-off marker is '$(check_val "$log3" handoff-marker)' on the second boot (serial log $log3)"
[ "$(check_val "$log3" root-crypt) $(check_val "$log3" root-unlock)" = "yes tpm2" ] || failed "root was not unlocked by the TPM2 on the second boot (serial log $log3)"
case "$(check_val "$log3" home-crypt) $(check_val "$log3" home-unlock)" in
"yes tpm2" | "yes token") ;;
*) failed "home was not unlocked by the TPM2 with no prompt on the second boot (serial log $log3)" ;;
esac
echo "ok: the second boot asked nothing; marker present; root and home unlocked by the TPM2; $USER_NAME logged in through PAM ($(grep -aoE "^IMPRINT-LOGIN user=$USER_NAME uid=[0-9]+" <<<"$p3" | head -n 1))"

MEASURED+=("boots: $BOOTS")
report_times
echo "PASS: the OEM line (allowlist, disk rules, refusals that write nothing, the report, escrow to the OEM's certificate) and the hand-off: the customer's answers, a new recovery key (the line's refused), the TPM2 kept, a second boot that asks nothing, a PAM login"
