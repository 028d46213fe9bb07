# SPDX-License-Identifier: LGPL-2.1-or-later
# shellcheck shell=bash
#
# disk-util.sh — sourced by the rig's tests: a VM's disk image read on the host while the VM is
# off, with stock tools only (sfdisk, dd, mtools, cryptsetup on a read-only loop device or a
# file; no device-mapper, no vfat mount: this host has neither).
#
#   du_parts IMG                      "PARTNO START SIZE TYPE UUID NAME" per partition (sectors of
#                                     512 bytes; TYPE and UUID upper case; NAME "-" when empty)
#   du_part IMG TYPE-GUID [N]         the Nth (default 1st) partition of that type, as du_parts
#   du_range_sha IMG START SIZE       sha256 of the bytes of a sector range
#   du_range_copy IMG START BYTES OUT the first BYTES of a range into the file OUT (sparse)
#   du_luks_opens FILE KEYFILE [START SIZE]
#                                     0 when KEYFILE's contents (a passphrase or recovery key)
#                                     open a keyslot of the LUKS header in FILE (a whole file, or
#                                     the sector range of a disk image through a read-only loop
#                                     device), 1 when not, 2 when there is no LUKS header
#   du_luks_uuid FILE [START SIZE]    the LUKS UUID (empty when not LUKS)
#   du_esp_pull IMG START DIR         every file of the FAT file system at sector START into DIR
#   du_esp_manifest DIR               "sha256  ./path" of every file below DIR, sorted
#   du_esp_cat IMG START PATH         one file of it on stdout
#   du_esp_ls IMG START DIR           the names in one directory of it, one a line
#
# Needs: fdisk (sfdisk), jq, mtools, cryptsetup-bin, util-linux (losetup), coreutils.

# shellcheck disable=SC2034  # for the tests that source this
DU_MIB=$((1024 * 1024))

du_parts() {
        sfdisk --json "$1" | jq -r '.partitiontable.partitions[] |
                "\(.node | capture("(?<n>[0-9]+)$").n) \(.start) \(.size) \(.type | ascii_upcase) \(.uuid | ascii_upcase) \(if (.name // "") == "" then "-" else .name end)"'
}

du_part() {
        du_parts "$1" | awk -v t="${2^^}" -v n="${3:-1}" '$4 == t { if (++k == n) { print; exit } }'
}

du_range_sha() {
        dd if="$1" bs=1M iflag=skip_bytes,count_bytes skip=$(($2 * 512)) count=$(($3 * 512)) status=none | sha256sum | cut -d' ' -f1
}

du_range_copy() {
        dd if="$1" of="$4" bs=1M iflag=skip_bytes,count_bytes skip=$(($2 * 512)) count="$3" conv=sparse status=none
}

# A loop device over a sector range, read-only; the caller detaches it.
du_loop() {
        losetup --find --show --read-only --offset $(($2 * 512)) --sizelimit $(($3 * 512)) "$1"
}

du_luks_opens() {
        local dev=$1 loop='' rc=0
        if [ $# -ge 4 ]; then
                loop=$(du_loop "$1" "$3" "$4") || return 2
                dev=$loop
        fi
        if ! cryptsetup isLuks "$dev" 2>/dev/null; then
                rc=2
        elif ! cryptsetup open --test-passphrase --key-file="$2" "$dev" 2>/dev/null; then
                rc=1
        fi
        [ -z "$loop" ] || losetup -d "$loop"
        return "$rc"
}

du_luks_uuid() {
        local dev=$1 loop=''
        if [ $# -ge 3 ]; then
                loop=$(du_loop "$1" "$2" "$3") || return 0
                dev=$loop
        fi
        cryptsetup luksUUID "$dev" 2>/dev/null || true
        [ -z "$loop" ] || losetup -d "$loop"
}

du_esp_pull() {
        mkdir -p "$3"
        MTOOLS_SKIP_CHECK=1 mcopy -s -n -m -i "$1@@$(($2 * 512))" '::/*' "$3/"
}

du_esp_manifest() {
        (cd "$1" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum)
}

du_esp_cat() {
        MTOOLS_SKIP_CHECK=1 mtype -i "$1@@$(($2 * 512))" "::$3"
}

du_esp_ls() {
        MTOOLS_SKIP_CHECK=1 mdir -b -i "$1@@$(($2 * 512))" "::$3" 2>/dev/null | sed 's|.*/||'
}
