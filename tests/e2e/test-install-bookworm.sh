#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The installer is not tuned to one image: imprint installs the second test image
# (tests/image/build-bookworm.sh: Debian 12, systemd 252 without systemd-homed-firstboot, a btrfs
# root, a UKI made with objcopy) into an image file with a 1 GiB home partition and an account,
# which must be a classic one, and the file boots under QEMU + OVMF + swtpm. On the serial console
# the image's check unit (check, check.d/40-system, check.d/60-account) must show that:
#   - systemd-boot started the UKI and root came from gpt-auto (boot-image.sh's own checks);
#   - systemd 252 runs, and root is btrfs on the installed root partition;
#   - /home is mounted from the installed home partition (DPS home type, its PARTUUID), and root's
#     own /home is empty (else gpt-auto would have ignored the partition);
#   - alice is a classic user whose home directory lies on that volume, owned by her, with the
#     /etc/skel files, and her password logs her in through PAM (a wrong one does not).
# Each phase prints its time.
set -euo pipefail
here=$(dirname "$0")
IMPRINT=${IMPRINT:-$here/../../build/imprint}
WORK=$(mktemp -d "${TMPDIR:-/var/tmp}/imprint-e2e-bookworm.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
SECONDS=0
T=$EPOCHREALTIME

phase() {
        printf '== %s (previous phase %ss, %ds so far)\n' "$*" "$(awk -v a="$T" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')" "$SECONDS"
        T=$EPOCHREALTIME
}

phase "building (or reusing) the bookworm test image"
src=$(bash "$here/../image/build-bookworm.sh")
echo "image: $src"
grep -E '^(systemd|kernel|root-fstype) ' "${src%/*}/build-info.txt" || true

phase "installing it into a 4 GiB image file with a 1 GiB home and the account alice"
truncate -s 4G "$WORK/disk.img"
user=alice
password='Juniper-quarry 42 lantern'
mkdir -m 0700 "$WORK/creds"
printf '%s' "$password" >"$WORK/creds/imprint.user-password"
CREDENTIALS_DIRECTORY=$WORK/creds "$IMPRINT" plan --source "$src" --target "$WORK/disk.img" --home-size=1G --user "$user" --json \
        | jq -e '.account.kind == "classic" and (.account.note | test("homed-firstboot"))' >/dev/null \
        || { echo "FAIL: the plan does not make a classic account because the image has no homed-firstboot"; exit 1; }
CREDENTIALS_DIRECTORY=$WORK/creds "$IMPRINT" install --source "$src" --target "$WORK/disk.img" --seed e2e-bookworm \
        --home-size=1G --user "$user" --yes

table=$(sfdisk --json "$WORK/disk.img")
part() { jq -r --arg t "$1" --arg f "$2" '.partitiontable.partitions[] | select(.type == $t) | .[$f]' <<<"$table"; }
root_uuid=$(part 4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709 uuid | tr 'A-F' 'a-f')
home_uuid=$(part 933AC7E1-2EB4-4F13-B844-0E14E2AEF915 uuid | tr 'A-F' 'a-f')
[ -n "$home_uuid" ] && [ -n "$root_uuid" ] || { echo "FAIL: no root or home partition: $table"; exit 1; }

# An SMBIOS type 11 string carrying a system credential (systemd 252 reads them) for the check.
cred() { printf 'type=11,value=io.systemd.credential.binary:%s=%s' "$1" "$(printf '%s' "$2" | base64 -w0)"; }

phase "booting the installed disk alone (root $root_uuid, home $home_uuid)"
c='IMPRINT-CHECK check.d/40-system: '
a='IMPRINT-CHECK check.d/60-account: '
bash "$here/boot-image.sh" "$WORK/disk.img" --timeout 600 --expect-entry 'imprint-bookworm_*.efi' \
        --qemu-arg -smbios --qemu-arg "$(cred imprint-test.user "$user")" \
        --qemu-arg -smbios --qemu-arg "$(cred imprint-test.password "$password")" \
        --expect "^${c}systemd-version=252\$" \
        --expect '^IMPRINT-CHECK root-fstype=btrfs$' \
        --expect '^IMPRINT-CHECK root-partlabel=imprint-bookworm_1$' \
        --expect "^IMPRINT-CHECK lsblk: .*PARTUUID=\"$root_uuid\".*FSTYPE=\"btrfs\" MOUNTPOINT=\"/\"\$" \
        --expect "^${c}home-parttype=933ac7e1-2eb4-4f13-b844-0e14e2aef915\$" \
        --expect "^IMPRINT-CHECK lsblk: .*PARTTYPE=\"933ac7e1-2eb4-4f13-b844-0e14e2aef915\" PARTUUID=\"$home_uuid\".*MOUNTPOINT=\"/home\"\$" \
        --expect "^${c}root-home-entries=0\$" \
        --expect "^${a}user-kind=classic\$" \
        --expect "^${c}user-home=/home/$user\$" \
        --expect "^${c}user-home-mount=/home\$" \
        --expect "^${c}user-home-stat=$user:$user 7[0-5][0-5]\$" \
        --expect "^${c}user-home-skel=.*\\.bashrc.*\\.profile" \
        --expect "^${a}user-auth=ok\$" \
        --expect "^${a}user-auth-wrong=rejected\$"
phase "done"
echo "e2e: bookworm (systemd 252, btrfs, classic account on the home partition) install + boot passed in ${SECONDS}s"
