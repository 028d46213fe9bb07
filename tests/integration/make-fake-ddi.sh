#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# make-fake-ddi.sh OUT.img [ROOT_MIB] — a small Discoverable Disk Image for install tests that do
# not boot: a real GPT, a 512 MiB FAT32 ESP holding a real UKI (systemd-stub with a fake kernel,
# assembled with objcopy as systemd-stub(7) describes), and an ext4 root carrying os-release,
# systemd-boot from this host's systemd-boot-efi package, and some data (random and zero blocks,
# so sparse copying and verification have something to do). Writes OUT.img.sha256 too.
# tests/image/build-ddi.sh builds the real, bootable image; this one takes two seconds.
# FAKE_DDI_KIND=usr makes a usr image instead (make-fake-usr.sh says what is in it).
set -eu -o pipefail
export PATH="$PATH:/usr/sbin:/sbin" MTOOLS_SKIP_CHECK=1

out=$1
root_mib=${2:-300}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

stub=/usr/lib/systemd/boot/efi/linuxx64.efi.stub
# FAKE_DDI_SDBOOT=FILE: another systemd-boot binary than the host's.
sdboot=${FAKE_DDI_SDBOOT:-/usr/lib/systemd/boot/efi/systemd-bootx64.efi}
[ -f "$stub" ] && [ -f "$sdboot" ] || { echo "systemd-boot-efi is not installed" >&2; exit 1; }

cat >"$tmp/os-release" <<'OSREL'
NAME="Imprint Fake OS"
PRETTY_NAME="Imprint Fake OS 7"
ID=imprintfake
VERSION_ID=7
IMAGE_ID=fakeos
IMAGE_VERSION=7
OSREL

# A fake bzImage: "HdrS" at 0x202 and a version string the header points at (formats.md §2.9).
/usr/bin/python3 - "$tmp/linux" <<'PY'
import struct, sys
k = bytearray(64 * 1024)
k[0x202:0x206] = b"HdrS"
ver = b"6.1.0-fake-amd64 (imprint@test) #1 SMP\0"
k[0x400:0x400 + len(ver)] = ver
struct.pack_into("<H", k, 0x20E, 0x400 - 0x200)
open(sys.argv[1], "wb").write(k)
PY
echo -n "6.1.0-fake-amd64" >"$tmp/uname"

# FAKE_DDI_KIND=usr: a usr image as image-based desktops ship them (no root partition).
if [ "${FAKE_DDI_KIND:-root}" = usr ]; then
        # shellcheck source=make-fake-usr.sh
        . "$(dirname "${BASH_SOURCE[0]}")/make-fake-usr.sh"
        exit 0
fi

echo -n "console=ttyS0 rw" >"$tmp/cmdline"

objcopy \
        --add-section .osrel="$tmp/os-release" --change-section-vma .osrel=0x20000 \
        --add-section .cmdline="$tmp/cmdline" --change-section-vma .cmdline=0x30000 \
        --add-section .uname="$tmp/uname" --change-section-vma .uname=0x38000 \
        --add-section .linux="$tmp/linux" --change-section-vma .linux=0x2000000 \
        "$stub" "$tmp/fakeos_7.efi"
# FAKE_DDI_PCRPKEY=FILE: a .pcrpkey section (the PEM public key of signed PCR 11 policies).
if [ -n "${FAKE_DDI_PCRPKEY:-}" ]; then
        objcopy --add-section .pcrpkey="$FAKE_DDI_PCRPKEY" --change-section-vma .pcrpkey=0x3c000 "$tmp/fakeos_7.efi" "$tmp/pk.efi"
        mv "$tmp/pk.efi" "$tmp/fakeos_7.efi"
fi
# FAKE_DDI_PCRSIG=FILE: a .pcrsig section (the signed PCR 11 policies, JSON as systemd-measure writes).
if [ -n "${FAKE_DDI_PCRSIG:-}" ]; then
        objcopy --add-section .pcrsig="$FAKE_DDI_PCRSIG" --change-section-vma .pcrsig=0x3e000 "$tmp/fakeos_7.efi" "$tmp/ps.efi"
        mv "$tmp/ps.efi" "$tmp/fakeos_7.efi"
fi
# FAKE_DDI_SIGN=DIR: the UKI and systemd-boot signed with sbsign by DIR/db.key + DIR/db.crt
# (systemd-boot as usr/lib/systemd/boot/efi/systemd-bootx64.efi.signed, as Debian ships it); with
# DIR/auth/{PK,KEK,db}.auth (efitools) the ESP carries them in loader/keys/auto/.
if [ -n "${FAKE_DDI_SIGN:-}" ]; then
        sbsign --key "$FAKE_DDI_SIGN/db.key" --cert "$FAKE_DDI_SIGN/db.crt" --output "$tmp/signed.efi" "$tmp/fakeos_7.efi" 2>/dev/null
        mv "$tmp/signed.efi" "$tmp/fakeos_7.efi"
fi

mkdir -p "$tmp/root/usr/lib/systemd/boot/efi" "$tmp/root/etc" "$tmp/root/efi" "$tmp/root/boot" "$tmp/root/data"
cp "$tmp/os-release" "$tmp/root/usr/lib/os-release"
ln -s ../usr/lib/os-release "$tmp/root/etc/os-release"
cp "$sdboot" "$tmp/root/usr/lib/systemd/boot/efi/"
if [ -n "${FAKE_DDI_SIGN:-}" ]; then
        sbsign --key "$FAKE_DDI_SIGN/db.key" --cert "$FAKE_DDI_SIGN/db.crt" \
                --output "$tmp/root/usr/lib/systemd/boot/efi/systemd-bootx64.efi.signed" "$sdboot" 2>/dev/null
fi
# FAKE_DDI_SHIM=FILE: a shim where Debian's shim-signed puts it (usr/lib/shim/shimx64.efi.signed).
if [ -n "${FAKE_DDI_SHIM:-}" ]; then
        mkdir -p "$tmp/root/usr/lib/shim"
        cp "$FAKE_DDI_SHIM" "$tmp/root/usr/lib/shim/shimx64.efi.signed"
fi
head -c $((24 * 1024 * 1024)) /dev/urandom >"$tmp/root/data/random"
head -c $((16 * 1024 * 1024)) /dev/zero >"$tmp/root/data/zeros"
# FAKE_DDI_ACCOUNTS=1: account databases (root, a sudo group), login.defs, /etc/skel (two dot files) and two time
# zones, as useradd, chpasswd and systemd-firstboot --root expect of a real root.
# FAKE_DDI_HOMED=1 also: a systemd-homed-firstboot.service that imports home.* credentials (v256+).
if [ -n "${FAKE_DDI_ACCOUNTS:-}" ]; then
        mkdir -p "$tmp/root/etc/skel" "$tmp/root/home" "$tmp/root/usr/share/zoneinfo/Europe" "$tmp/root/usr/lib/systemd/system"
        printf 'root:x:0:0:root:/root:/bin/bash\n' >"$tmp/root/etc/passwd"
        printf 'root:x:0:\nsudo:x:27:\nusers:x:100:\n' >"$tmp/root/etc/group"
        printf 'root:*:19000:0:99999:7:::\n' >"$tmp/root/etc/shadow"
        printf 'root:*::\nsudo:*::\nusers:*::\n' >"$tmp/root/etc/gshadow"
        chmod 0640 "$tmp/root/etc/shadow" "$tmp/root/etc/gshadow"
        printf '# ~/.bashrc from the fake image\n' >"$tmp/root/etc/skel/.bashrc"
        printf '# ~/.profile from the fake image\n' >"$tmp/root/etc/skel/.profile"
        cp /etc/login.defs "$tmp/root/etc/login.defs"
        cp /usr/share/zoneinfo/Europe/Berlin "$tmp/root/usr/share/zoneinfo/Europe/Berlin"
        cp /usr/share/zoneinfo/UTC "$tmp/root/usr/share/zoneinfo/UTC"
        # As Debian trixie keeps it (tmpfiles restores the link at every boot).
        mkdir -p "$tmp/root/etc/default"
        printf 'XKBMODEL="pc105"\nXKBLAYOUT="us"\n' >"$tmp/root/etc/default/keyboard"
        ln -s default/keyboard "$tmp/root/etc/vconsole.conf"
fi
if [ -n "${FAKE_DDI_HOMED:-}" ]; then
        printf '[Unit]\nDescription=First Boot Wizard for systemd-homed\nConditionFirstBoot=yes\n\n[Service]\nType=oneshot\nExecStart=homectl firstboot --prompt-new-user\nImportCredential=home.*\n' \
                >"$tmp/root/usr/lib/systemd/system/systemd-homed-firstboot.service"
fi
# FAKE_DDI_FILL=dense fills the root with random data (benchmarks); "sparse" adds 64 MiB.
case "${FAKE_DDI_FILL:-}" in
dense) head -c $(((root_mib - root_mib / 16 - 48) * 1024 * 1024)) /dev/urandom >"$tmp/root/data/dense" ;;
sparse) head -c $((64 * 1024 * 1024)) /dev/urandom >"$tmp/root/data/more" ;;
esac

esp_mib=512
rm -f "$out"
truncate -s $((1 + esp_mib + root_mib + 1))M "$out"
sfdisk -q "$out" <<SFDISK
label: gpt
size=${esp_mib}MiB, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name="ESP"
size=${root_mib}MiB, type=4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709, name="fakeos_7", attrs="GUID:59"
SFDISK
mkfs.vfat -F 32 -n ESP --offset 2048 "$out" $((esp_mib * 1024)) >/dev/null 2>&1
mmd -i "$out@@1M" ::/EFI ::/EFI/Linux
mcopy -i "$out@@1M" "$tmp/fakeos_7.efi" ::/EFI/Linux/fakeos_7.efi
if [ -n "${FAKE_DDI_SIGN:-}" ] && [ -d "$FAKE_DDI_SIGN/auth" ]; then
        mmd -i "$out@@1M" ::/loader ::/loader/keys ::/loader/keys/auto
        mcopy -i "$out@@1M" "$FAKE_DDI_SIGN"/auth/*.auth ::/loader/keys/auto/
fi
mkfs.ext4 -q -F -L root -d "$tmp/root" -E offset=$(((1 + esp_mib) * 1024 * 1024)) "$out" ${root_mib}M
(cd "$(dirname "$out")" && sha256sum "$(basename "$out")" >"$(basename "$out").sha256")
