#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# build-bookworm.sh [OUTDIR] — builds imprint's second test OS image and prints its path on stdout.
#
# The first image (build-ddi.sh) is Debian trixie with systemd 257, ext4, a UKI made by ukify and
# systemd-homed-firstboot. This one is built differently on purpose, so that the installer is not
# tuned to one image: Debian 12 bookworm with its systemd 252 (no systemd-homed-firstboot, no
# homed at all: imprint must make a classic account), root on btrfs, and a UKI assembled with
# objcopy from bookworm's systemd-stub as systemd-stub(7) of v252 describes (bookworm has no
# ukify). Assembled without mounts or loop devices:
#
#   partition 1  ESP   c12a7328-…  512 MiB FAT32, /EFI/Linux/imprint-bookworm_1.efi (the UKI) and
#                                  /EFI/systemd/systemd-bootx64.efi (imprint cannot read btrfs
#                                  without mounting it, so it takes systemd-boot from the ESP)
#   partition 2  root  4f68bce3-…  btrfs (mkfs.btrfs --rootdir), GPT name "imprint-bookworm_1",
#                                  growfs flag (bit 59)
#
# The UKI has no root=: root is found by systemd-gpt-auto-generator. imprint-check.service and
# its check.d (tests/image/rootfs/usr/, shared with the first image) plus this image's own files
# (tests/image/rootfs-bookworm/: dracut configuration, check.d/40-system) print IMPRINT-CHECK
# lines on ttyS0 and power off; tests/e2e/boot-image.sh reads them.
#
# Cache: $IMPRINT_TEST_CACHE/bookworm-KEY/ (default /var/cache/imprint-test), KEY from this
# script, lib-debian.sh, both overlays, the suite, mirror, package lists and command line; the
# rest (stamp, debootstrap tarball, shared .deb cache, pruning, OUTDIR copies) as build-ddi.sh
# describes. Files: imprint-bookworm_1.raw, SHA256SUMS, imprint-bookworm_1.efi, packages.txt,
# build-info.txt.
#
# Environment: IMPRINT_TEST_CACHE, IMPRINT_TEST_CACHE_KEEP, IMPRINT_TEST_MIRROR, IMPRINT_TEST_VERBOSE.
# Needs root (debootstrap, chroot). Progress and timings go to stderr; stdout has only the path.
set -euo pipefail

host_packages=(
        debootstrap debian-archive-keyring
        util-linux fdisk dosfstools mtools coreutils findutils
        btrfs-progs                          # mkfs.btrfs --rootdir, btrfs check
        binutils                             # objcopy: the UKI
)

SUITE=bookworm
MIRROR=${IMPRINT_TEST_MIRROR:-http://deb.debian.org/debian}
IMAGE_ID=imprint-bookworm
IMAGE_VERSION=1
NAME=${IMAGE_ID}_${IMAGE_VERSION}
CMDLINE="console=ttyS0 systemd.firstboot=off systemd.show_status=1 rw"

# Before the kernel, so that dracut satisfies linux-image's initramfs dependency. bookworm's
# systemd package still carries systemd-cryptsetup and the gpt-auto generator. btrfs-progs: the
# dracut btrfs module needs it. The tss2 libraries: systemd 252 booted from a UKI measures the
# boot phases into PCR 11 (systemd-pcrphase*.service), which fails without them (systemd
# dlopen()s them). pamtester: check.d/60-account logs alice in through PAM.
image_packages=(
        dracut zstd
        systemd systemd-sysv udev dbus kmod util-linux fdisk btrfs-progs e2fsprogs
        systemd-boot-efi libpam-systemd
        libtss2-esys-3.0.2-0 libtss2-mu0 libtss2-rc0 libtss2-tcti-device0
        pamtester
)
kernel_packages=(linux-image-amd64)

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SHARED_OVERLAY=$HERE/rootfs/usr         # the boot check, shared with the first image
OVERLAY=$HERE/rootfs-bookworm
CACHE=${IMPRINT_TEST_CACHE:-/var/cache/imprint-test}
KEEP=${IMPRINT_TEST_CACHE_KEEP:-3}
OUTDIR=${1:-}
LIB_TAG=build-bookworm
# shellcheck source-path=SCRIPTDIR source=lib-debian.sh
. "$HERE/lib-debian.sh"

cache_key_input() {
        echo "script $(sha256sum <"${BASH_SOURCE[0]}" | cut -d' ' -f1)"
        echo "library $(sha256sum <"$HERE/lib-debian.sh" | cut -d' ' -f1)"
        echo "suite $SUITE"
        echo "mirror $MIRROR"
        echo "packages ${image_packages[*]}"
        echo "kernel ${kernel_packages[*]}"
        echo "cmdline $CMDLINE"
        echo "shared"
        deb_cache_key_tree "$SHARED_OVERLAY"
        echo "own"
        deb_cache_key_tree "$OVERLAY"
}

KEY_FULL=$(cache_key_input | sha256sum | cut -d' ' -f1)
KEY=${KEY_FULL:0:16}
RESULT=$CACHE/bookworm-$KEY
IMAGE=$NAME.raw

deb_use_cache "$RESULT" "$NAME" "$OUTDIR" "the bookworm test image"
deb_install_host_packages "${host_packages[@]}"
deb_begin_build
log "building $NAME (key $KEY) in $WORK; log: $BUILDLOG"

phase debootstrap
deb_debootstrap

phase packages
deb_prepare_root "$OVERLAY/etc/dracut.conf.d/50-imprint-bookworm.conf"
deb_apt install "${image_packages[@]}"
deb_install_kernel "${kernel_packages[@]}"
logged in_root --apt apt-get -q autoclean
in_root dpkg-query -W -f='${Package} ${Version}\n' >"$OUT/packages.txt"
SYSTEMD_VERSION=$(awk '$1 == "systemd" { print $2 }' "$OUT/packages.txt")
log "kernel $KVER, systemd $SYSTEMD_VERSION"
case $SYSTEMD_VERSION in 252.*) ;; *) die "bookworm's systemd is $SYSTEMD_VERSION, not 252" ;; esac
[ ! -e "$ROOT/usr/lib/systemd/system/systemd-homed-firstboot.service" ] || die "the image has systemd-homed-firstboot"

phase configure
install -d -m 755 "$ROOT/usr/lib"
(
        # Only the boot check of the first image's overlay (its dracut and PAM files are for trixie).
        cd "$HERE/rootfs" && find usr -type f -print0
) | while IFS= read -r -d '' f; do
        install -D -o 0 -g 0 -m "$(stat -c %a "$HERE/rootfs/$f")" "$HERE/rootfs/$f" "$ROOT/$f"
done
deb_install_overlay "$OVERLAY"
logged in_root systemctl enable imprint-check.service
deb_set_identity "$IMAGE_ID" "$IMAGE_VERSION"

# The UKI, the objcopy way of systemd-stub(7) (v252): the stub's own sections end below
# 0x20000; the kernel gets 16 MiB from 0x2000000, the initrd follows at 0x3000000.
phase initrd
logged in_root dracut --force --kver "$KVER" "/var/tmp/initrd.img-$KVER"
phase uki
stub=$ROOT/usr/lib/systemd/boot/efi/linuxx64.efi.stub
[ -f "$stub" ] || die "no $stub in the image"
kernel=$ROOT/boot/vmlinuz-$KVER
[ "$(stat -c %s "$kernel")" -lt $((16 * MIB)) ] || die "the kernel does not fit below the initrd's address"
printf '%s' "$CMDLINE" >"$WORK/cmdline"
printf '%s' "$KVER" >"$WORK/uname"
objcopy \
        --add-section .osrel="$ROOT/usr/lib/os-release" --change-section-vma .osrel=0x20000 \
        --add-section .cmdline="$WORK/cmdline" --change-section-vma .cmdline=0x30000 \
        --add-section .uname="$WORK/uname" --change-section-vma .uname=0x38000 \
        --add-section .linux="$kernel" --change-section-vma .linux=0x2000000 \
        --add-section .initrd="$ROOT/var/tmp/initrd.img-$KVER" --change-section-vma .initrd=0x3000000 \
        "$stub" "$OUT/$NAME.efi"
logged objdump -h "$OUT/$NAME.efi"

phase trim
deb_trim

phase assemble
# The layout of deb_assemble, with a btrfs root: mkfs.btrfs cannot write at an offset, so the
# filesystem is made in a file of the partition's size and copied in (sparse).
disk=$OUT/$IMAGE
esp_start=$MIB
used=$(du -sx -B1 "$ROOT" | cut -f1)
# btrfs keeps metadata twice (DUP) and needs room for its chunk trees: +50 %, plus 256 MiB.
root_mib=$(((used * 3 / 2 + 256 * MIB + MIB - 1) / MIB))
root_start=$((esp_start + ESP_MIB * MIB))
size=$((root_start + root_mib * MIB + MIB))
log "rootfs $((used / MIB)) MiB; root partition $root_mib MiB, disk $((size / MIB)) MiB"
truncate -s "$size" "$disk"
sfdisk --quiet --no-reread --no-tell-kernel "$disk" <<EOF
label: gpt
label-id: $(uuid_for disk)
unit: sectors
sector-size: 512
first-lba: 2048
start=$((esp_start / 512)), size=$((ESP_MIB * MIB / 512)), type=$ESP_TYPE, uuid=$(uuid_for esp), name="esp"
start=$((root_start / 512)), size=$((root_mib * MIB / 512)), type=$ROOT_TYPE, uuid=$(uuid_for root), name="$NAME", attrs="GUID:59"
EOF
logged mkfs.vfat -F 32 -n ESP -i "$(uuid_for esp-fs | cut -c1-8)" -S 512 --offset $((esp_start / 512)) "$disk" $((ESP_MIB * 1024))
esp_img="$disk@@$esp_start"
# systemd-boot on the ESP as well: the installer takes it from the root where it can read the root
# without mounting it (ext4 through debugfs), and from the image's ESP otherwise (btrfs here).
mmd -i "$esp_img" ::/EFI ::/EFI/Linux ::/EFI/systemd
mcopy -i "$esp_img" "$OUT/$NAME.efi" "::/EFI/Linux/$NAME.efi"
mcopy -i "$esp_img" "$ROOT/usr/lib/systemd/boot/efi/systemd-bootx64.efi" ::/EFI/systemd/systemd-bootx64.efi
truncate -s $((root_mib * MIB)) "$WORK/root.btrfs"
logged mkfs.btrfs -q -f -L root -U "$(uuid_for root-fs)" --rootdir "$ROOT" "$WORK/root.btrfs"
logged btrfs check --readonly "$WORK/root.btrfs" || die "btrfs check found errors in the root file system"
dd if="$WORK/root.btrfs" of="$disk" bs=1M seek=$((root_start / MIB)) conv=notrunc,sparse status=none
rm -f "$WORK/root.btrfs"
logged sfdisk --dump "$disk"
logged mdir -/ -i "$esp_img" ::/

phase checksum
(cd "$OUT" && sha256sum "$IMAGE" >SHA256SUMS)

phase end
{
        echo "name $NAME"
        echo "key $KEY_FULL"
        echo "suite $SUITE"
        echo "mirror $MIRROR"
        echo "kernel $KVER"
        echo "systemd $SYSTEMD_VERSION"
        echo "cmdline $CMDLINE"
        echo "disk-size $size"
        echo "disk-allocated $(du -B1 "$disk" | cut -f1)"
        echo "rootfs-used $used"
        echo "root-fstype btrfs"
        echo "root-offset $root_start"
        echo "root-size $((root_mib * MIB))"
        echo "uki-size $(stat -c %s "$OUT/$NAME.efi")"
        echo "built $(date -u +%Y-%m-%dT%H:%M:%SZ) in $(elapsed "$T0")s"
        printf 'phase %s\n' "${TIMINGS[@]}"
} >"$OUT/build-info.txt"
deb_finish bookworm
log "image: $RESULT/$IMAGE ($((size / MIB)) MiB, UKI $(($(stat -c %s "$RESULT/$NAME.efi") / MIB)) MiB)"
log "built in $(elapsed "$T0")s"
deb_deliver "$RESULT" "$NAME" "$OUTDIR"
