#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# make-fake-usr-ddi.sh OUT.img — a small usr image (as image-based desktops ship them) for install
# tests that do not boot: GPT with a FAT ESP holding a real UKI (systemd-stub with a fake kernel,
# .cmdline "usrhash=<root hash> …", no initrd), a squashfs usr partition (os-release with
# IMAGE_ID=fakeusr IMAGE_VERSION=3, this host's systemd-boot, repart.d with A and B slots and a
# root with FactoryReset=yes Format=ext4, sysupdate.d transfers for usr, verity, signature and the
# UKI with boot counting), a usr-verity partition made by stock veritysetup over it, and a
# usr-verity-sig partition: the JSON {rootHash, signature} with a PKCS#7 signature of the root
# hash by a key made here (openssl). Partition UUIDs are the halves of the root hash and names
# "fakeusr_3", as systemd-repart makes them. Writes OUT.img.sha256 and OUT.img.cert.pem (the
# certificate; the key is thrown away).
set -eu -o pipefail
export PATH="$PATH:/usr/sbin:/sbin" MTOOLS_SKIP_CHECK=1

out=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
MiB=1048576

stub=/usr/lib/systemd/boot/efi/linuxx64.efi.stub
sdboot=/usr/lib/systemd/boot/efi/systemd-bootx64.efi
[ -f "$stub" ] && [ -f "$sdboot" ] || { echo "systemd-boot-efi is not installed" >&2; exit 1; }

# ---- /usr --------------------------------------------------------------------------------------
usr=$tmp/usr
mkdir -p "$usr/lib/systemd/boot/efi" "$usr/lib/repart.d" "$usr/lib/sysupdate.d" "$usr/share/factory/etc" "$usr/share/data"
cat >"$usr/lib/os-release" <<'OSREL'
NAME="Imprint Fake usr OS"
PRETTY_NAME="Imprint Fake usr OS 3"
ID=imprintfakeusr
VERSION_ID=3
IMAGE_ID=fakeusr
IMAGE_VERSION=3
OSREL
cp "$sdboot" "$usr/lib/systemd/boot/efi/"
head -c $((6 * MiB)) /dev/urandom >"$usr/share/data/random"
echo "fakeusr" >"$usr/share/factory/etc/hostname"

def() { printf '%s\n' "${@:2}" >"$usr/lib/repart.d/$1"; }
def 10-esp.conf "[Partition]" "Type=esp" "Format=vfat" "SizeMinBytes=512M"
def 20-usr-A.conf "[Partition]" "Type=usr" "Label=fakeusr_%A" "Verity=data" "VerityMatchKey=usr" "SizeMinBytes=64M" "SizeMaxBytes=64M"
def 21-usr-verity-A.conf "[Partition]" "Type=usr-verity" "Label=fakeusr_%A" "Verity=hash" "VerityMatchKey=usr" "SizeMinBytes=8M" "SizeMaxBytes=8M"
def 22-usr-verity-sig-A.conf "[Partition]" "Type=usr-verity-sig" "Label=fakeusr_%A" "Verity=signature" "VerityMatchKey=usr"
def 30-usr-B.conf "[Partition]" "Type=usr" "Label=_empty" "SizeMinBytes=64M" "SizeMaxBytes=64M"
def 31-usr-verity-B.conf "[Partition]" "Type=usr-verity" "Label=_empty" "SizeMinBytes=8M" "SizeMaxBytes=8M"
def 32-usr-verity-sig-B.conf "[Partition]" "Type=usr-verity-sig" "Label=_empty"
def 40-root.conf "[Partition]" "Type=root" "Format=ext4" "FactoryReset=yes"

transfer() { # NAME SOURCE-PATTERN TARGET-TYPE…
        local name=$1 src=$2
        shift 2
        printf '%s\n' "[Transfer]" "ProtectVersion=%A" "" "[Source]" "Type=regular-file" "Path=/run/imprint-updates" \
                "MatchPattern=$src" "" "[Target]" "$@" >"$usr/lib/sysupdate.d/$name"
}
transfer 10-usr.transfer "fakeusr_@v.usr.raw" "Type=partition" "Path=auto" "MatchPattern=fakeusr_@v" "MatchPartitionType=usr" "ReadOnly=yes"
transfer 20-usr-verity.transfer "fakeusr_@v.usr-verity.raw" "Type=partition" "Path=auto" "MatchPattern=fakeusr_@v" \
        "MatchPartitionType=usr-verity" "ReadOnly=yes"
transfer 30-usr-verity-sig.transfer "fakeusr_@v.usr-verity-sig.raw" "Type=partition" "Path=auto" "MatchPattern=fakeusr_@v" \
        "MatchPartitionType=usr-verity-sig" "ReadOnly=yes"
transfer 50-uki.transfer "fakeusr_@v.efi" "Type=regular-file" "Path=/EFI/Linux" "PathRelativeTo=boot" \
        "MatchPattern=fakeusr_@v+@l-@d.efi fakeusr_@v+@l.efi fakeusr_@v.efi" "Mode=0444" "TriesLeft=3" "TriesDone=0" "InstancesMax=2"

mksquashfs "$usr" "$tmp/usr.squashfs" -quiet -noappend -all-root >/dev/null
truncate -s %4096 "$tmp/usr.squashfs"
veritysetup format "$tmp/usr.squashfs" "$tmp/usr.verity" >"$tmp/verity.out"
roothash=$(sed -n 's/^Root hash:[[:space:]]*//p' "$tmp/verity.out")
[ ${#roothash} = 64 ] || { cat "$tmp/verity.out" >&2; echo "veritysetup printed no root hash" >&2; exit 1; }
uuid_of() { echo "${1:0:8}-${1:8:4}-${1:12:4}-${1:16:4}-${1:20:12}"; }
usr_uuid=$(uuid_of "${roothash:0:32}")
verity_uuid=$(uuid_of "${roothash:32:32}")

# The signature partition: the root hash signed as systemd-repart signs it (PKCS#7, detached).
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$tmp/key.pem" -out "$out.cert.pem" -days 3650 -subj "/CN=imprint fake usr" \
        2>/dev/null
printf '%s' "$roothash" >"$tmp/roothash"
openssl smime -sign -in "$tmp/roothash" -signer "$out.cert.pem" -inkey "$tmp/key.pem" -binary -noattr -nocerts -outform DER \
        -out "$tmp/sig.der"
printf '{"rootHash":"%s","signature":"%s"}\n' "$roothash" "$(base64 -w0 "$tmp/sig.der")" >"$tmp/usr.sig"
truncate -s 16384 "$tmp/usr.sig"

# ---- the UKI ------------------------------------------------------------------------------------
/usr/bin/python3 - "$tmp/linux" <<'PY'
import struct, sys
k = bytearray(64 * 1024)
k[0x202:0x206] = b"HdrS"
ver = b"6.12.0-fake-amd64 (imprint@test) #1 SMP\0"
k[0x400:0x400 + len(ver)] = ver
struct.pack_into("<H", k, 0x20E, 0x400 - 0x200)
open(sys.argv[1], "wb").write(k)
PY
echo -n "usrhash=$roothash console=ttyS0" >"$tmp/cmdline"
echo -n "6.12.0-fake-amd64" >"$tmp/uname"
objcopy \
        --add-section .osrel="$usr/lib/os-release" --change-section-vma .osrel=0x20000 \
        --add-section .cmdline="$tmp/cmdline" --change-section-vma .cmdline=0x30000 \
        --add-section .uname="$tmp/uname" --change-section-vma .uname=0x38000 \
        --add-section .linux="$tmp/linux" --change-section-vma .linux=0x2000000 \
        "$stub" "$tmp/fakeusr_3.efi"

# ---- the disk image -----------------------------------------------------------------------------
size_mib() { echo $(( ($(stat -c %s "$1") + MiB - 1) / MiB )); }
esp_mib=100 usr_mib=$(size_mib "$tmp/usr.squashfs") ver_mib=$(size_mib "$tmp/usr.verity") sig_mib=1
rm -f "$out"
truncate -s $(( (1 + esp_mib + usr_mib + ver_mib + sig_mib + 1) * MiB )) "$out"
sfdisk --quiet --label gpt "$out" <<EOF
start=1MiB, size=${esp_mib}MiB, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name="ESP"
size=${usr_mib}MiB, type=8484680C-9521-48C6-9C11-B0720656F69E, uuid=$usr_uuid, name="fakeusr_3", attrs="GUID:60"
size=${ver_mib}MiB, type=77FF5F63-E7B6-4633-ACF4-1565B864C0E6, uuid=$verity_uuid, name="fakeusr_3", attrs="GUID:60"
size=${sig_mib}MiB, type=E7BB33FB-06CF-4E81-8273-E543B413E2E2, name="fakeusr_3", attrs="GUID:60"
EOF
esp_off=$MiB usr_off=$(( (1 + esp_mib) * MiB ))
ver_off=$(( usr_off + usr_mib * MiB )) sig_off=$(( ver_off + ver_mib * MiB ))
mkfs.vfat -n ESP --offset $((esp_off / 512)) "$out" $((esp_mib * 1024)) >/dev/null 2>&1
mmd -i "$out@@$esp_off" ::/EFI ::/EFI/Linux ::/EFI/BOOT
mcopy -i "$out@@$esp_off" "$tmp/fakeusr_3.efi" ::/EFI/Linux/
mcopy -i "$out@@$esp_off" "$sdboot" ::/EFI/BOOT/BOOTX64.EFI
dd if="$tmp/usr.squashfs" of="$out" bs=1M seek=$((usr_off / MiB)) conv=notrunc,sparse status=none
dd if="$tmp/usr.verity" of="$out" bs=1M seek=$((ver_off / MiB)) conv=notrunc,sparse status=none
dd if="$tmp/usr.sig" of="$out" bs=1M seek=$((sig_off / MiB)) conv=notrunc status=none
(cd "$(dirname "$out")" && sha256sum "$(basename "$out")") | cut -d' ' -f1 >"$out.sha256"
