#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# build-ddi.sh [OUTDIR] — builds imprint's test OS image and prints its path on stdout.
#
# The image is a small, real, bootable Discoverable Disk Image (DDI) of Debian trixie
# (systemd 257), built from Debian packages and assembled without mounts or loop devices:
#
#   partition 1  ESP   c12a7328-…  512 MiB FAT32, /EFI/Linux/imprint-test_1.efi (a UKI; no
#                                  boot loader: the installer copies sd-boot from the root)
#   partition 2  root  4f68bce3-…  ext4, GPT name "imprint-test_1", growfs flag (bit 59)
#
# The UKI (kernel + dracut systemd initrd + .osrel + .uname) has no root=: root is found by
# systemd-gpt-auto-generator. imprint-check.service (tests/image/rootfs/) prints IMPRINT-CHECK
# lines on ttyS0 at the end of the boot and powers off; tests/e2e/boot-image.sh reads them.
# /etc/machine-id is "uninitialized" (first boot), and a "disable *" preset keeps that first boot
# from enabling every unit Debian ships. /efi and /boot are empty; systemd 257 automounts the ESP
# on /boot (it prefers /boot when there is no XBOOTLDR). Nothing here is for production use.
#
# Cache: the result lives in $IMPRINT_TEST_CACHE/ddi-KEY/ (default /var/cache/imprint-test),
# KEY = first 16 hex digits of the sha256 of this script, lib-debian.sh (the code it shares with
# iso/build-live.sh), the files under tests/image/rootfs/ (paths, modes, contents), the suite,
# the mirror, the package lists and the kernel command line. A complete entry (stamp file "complete") is
# printed at once. Beside it: debootstrap-*.tgz (the minbase tarball, keyed by suite, mirror
# and debootstrap version) and apt-archives/ (downloaded .debs, shared by all builds). Only the
# newest $IMPRINT_TEST_CACHE_KEEP (default 3) ddi-* entries are kept. Delete the directory to
# force fresh downloads. The cached image is shared: copy it before writing to it (or pass
# OUTDIR, which gets a sparse copy).
#
# Files in ddi-KEY/: imprint-test_1.raw, SHA256SUMS, imprint-test_1.efi (the UKI, also on the
# ESP), packages.txt (dpkg -l of the image), build-info.txt (key, sizes, offsets, timings).
#
# Environment: IMPRINT_TEST_CACHE, IMPRINT_TEST_CACHE_KEEP, IMPRINT_TEST_MIRROR (default
# http://deb.debian.org/debian), IMPRINT_TEST_VERBOSE=1 (stream debootstrap/apt/dracut output
# to stderr instead of only the build log).
#
# Needs root (debootstrap, chroot). Progress and timings go to stderr; stdout has only the path.
set -euo pipefail

# Host packages this script runs (installed with apt when missing).
host_packages=(
        debootstrap debian-archive-keyring   # debootstrap trixie (its keys are in bookworm's keyring)
        util-linux                           # unshare, flock
        fdisk                                # sfdisk
        dosfstools mtools                    # mkfs.vfat, mmd, mcopy, mdir
        e2fsprogs                            # mkfs.ext4 -d, e2fsck
        coreutils findutils
)

SUITE=trixie
MIRROR=${IMPRINT_TEST_MIRROR:-http://deb.debian.org/debian}
IMAGE_ID=imprint-test
IMAGE_VERSION=1
NAME=${IMAGE_ID}_${IMAGE_VERSION}
CMDLINE="console=ttyS0 systemd.firstboot=off systemd.show_status=1 rw"

# Installed in the chroot with --no-install-recommends, before the kernel, so that dracut (not
# initramfs-tools) satisfies linux-image's "initramfs-tools | linux-initramfs-tool".
image_packages=(
        dracut zstd
        systemd systemd-sysv udev dbus kmod util-linux fdisk e2fsprogs
        systemd-boot-efi systemd-boot-tools systemd-ukify
        systemd-cryptsetup cryptsetup-bin
        tpm2-tools libtss2-esys-3.0.2-0t64 libtss2-rc0t64 libtss2-mu-4.0.1-0t64 libtss2-tcti-device0t64
        systemd-homed libpam-systemd
        # check.d/60-account: systemd-homed ships pam_systemd_home.so itself (there is no separate
        # PAM package in trixie); pamtester authenticates through PAM without a terminal; python3
        # parses homectl's JSON (ukify pulls it in anyway); tzdata for /etc/localtime.
        pamtester python3 tzdata
)
kernel_packages=(linux-image-amd64)

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
OVERLAY=$HERE/rootfs
CACHE=${IMPRINT_TEST_CACHE:-/var/cache/imprint-test}
KEEP=${IMPRINT_TEST_CACHE_KEEP:-3}
OUTDIR=${1:-}
LIB_TAG=build-ddi
# shellcheck source-path=SCRIPTDIR source=lib-debian.sh
. "$HERE/lib-debian.sh"

# ---------------------------------------------------------------------------------------------
# Cache key and the fast path (no root, no apt, no dpkg: just hashing a few small files).

cache_key_input() {
        echo "script $(sha256sum <"${BASH_SOURCE[0]}" | cut -d' ' -f1)"
        echo "library $(sha256sum <"$HERE/lib-debian.sh" | cut -d' ' -f1)"
        echo "suite $SUITE"
        echo "mirror $MIRROR"
        echo "packages ${image_packages[*]}"
        echo "kernel ${kernel_packages[*]}"
        echo "cmdline $CMDLINE"
        deb_cache_key_tree "$OVERLAY"
}

KEY_FULL=$(cache_key_input | sha256sum | cut -d' ' -f1)
KEY=${KEY_FULL:0:16}
RESULT=$CACHE/ddi-$KEY
IMAGE=$NAME.raw

deliver() { deb_deliver "$RESULT" "$NAME" "$OUTDIR"; }

# ---------------------------------------------------------------------------------------------
# Slow path, unless cached.
deb_use_cache "$RESULT" "$NAME" "$OUTDIR" "the test image"
deb_install_host_packages "${host_packages[@]}"
deb_begin_build
log "building $NAME (key $KEY) in $WORK; log: $BUILDLOG"

phase debootstrap
deb_debootstrap

phase packages
deb_prepare_root "$OVERLAY/etc/dracut.conf.d/50-imprint-test.conf"
deb_apt install "${image_packages[@]}"
deb_install_kernel "${kernel_packages[@]}"
logged in_root --apt apt-get -q autoclean      # drop superseded .debs from the shared cache
in_root dpkg-query -W -f='${Package} ${Version}\n' >"$OUT/packages.txt"
log "kernel $KVER, systemd $(awk '$1 == "systemd" { print $2 }' "$OUT/packages.txt")"

phase configure
deb_install_overlay "$OVERLAY"
install -d -m 755 "$ROOT/usr/lib/imprint-test/check.d"
logged in_root systemctl enable imprint-check.service
# systemd-homed-firstboot.service stays disabled, as in stock Debian (neither its postinst nor
# 90-systemd.preset enables it): an installer that leaves home.create.* credentials must enable
# it in the target (systemd-homed.service.wants/); check.d/60-account reports the outcome.
deb_set_identity "$IMAGE_ID" "$IMAGE_VERSION"

deb_make_uki "$NAME" "$CMDLINE"

phase trim
deb_trim

phase assemble
# The installer copies sd-boot from the root: the ESP holds only the UKI.
ESP_FILES=("$OUT/$NAME.efi::/EFI/Linux/$NAME.efi")
DISK=$OUT/$IMAGE
deb_assemble "$DISK" "$NAME" GUID:59           # GUID:59 = growfs (DPS)

phase checksum
(cd "$OUT" && sha256sum "$IMAGE" >SHA256SUMS)

phase end
{
        echo "name $NAME"
        echo "key $KEY_FULL"
        echo "suite $SUITE"
        echo "mirror $MIRROR"
        echo "kernel $KVER"
        echo "cmdline $CMDLINE"
        printf '%s\n' "${ASM_INFO[@]}"
        echo "uki-size $(stat -c %s "$OUT/$NAME.efi")"
        echo "built $(date -u +%Y-%m-%dT%H:%M:%SZ) in $(elapsed "$T0")s"
        printf 'phase %s\n' "${TIMINGS[@]}"
} >"$OUT/build-info.txt"
deb_finish ddi
log "image: $RESULT/$IMAGE ($((ASM_SIZE / MIB)) MiB, $(du -m "$RESULT/$IMAGE" | cut -f1) MiB allocated, UKI $(($(stat -c %s "$RESULT/$NAME.efi") / MIB)) MiB)"
log "built in $(elapsed "$T0")s"
deliver
