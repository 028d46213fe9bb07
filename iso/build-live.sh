#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# build-live.sh [OUTDIR] — builds imprint's live medium and prints its path on stdout.
# build-live.sh --print-key-input — prints what the cache key is made of, and builds nothing.
#
# The medium is a raw disk image for a USB stick (dd it to the whole stick), built from Debian
# trixie packages (systemd 257) and assembled without mounts or loop devices:
#
#   partition 1  ESP   c12a7328-…  512 MiB FAT32: /EFI/BOOT/BOOTX64.EFI and
#                                  /EFI/systemd/systemd-bootx64.efi (systemd-boot),
#                                  /loader/loader.conf, /EFI/Linux/imprint-live.efi (the UKI)
#   partition 2  root  4f68bce3-…  ext4, read-write, GPT name "imprint-live"
#
# The root also carries imprint's recovery entry, /usr/lib/imprint/imprint-recovery.efi: a UKI
# (the same kernel, and a dracut systemd initrd that holds imprint, its tools and the
# imprint-recovery units, built with iso/recovery/) that an install copies to the installed
# disk's $BOOT/EFI/Linux, so that a factory reset can start from the machine's boot menu.
#
# The root holds imprint, built inside the chroot from this checkout (the files git lists,
# as they are in the work tree; the build dependencies are purged again), imprint's runtime
# tools, imprint's units (data/units/), the files of iso/rootfs/, and the OS image it installs:
# the test image of tests/image/build-ddi.sh, with its SHA256SUMS, in /usr/share/imprint/images/,
# named as the default source in /etc/imprint/imprint.conf. The UKI (kernel + dracut systemd
# initrd + .osrel + .cmdline) has no root=: gpt-auto finds the root on the disk sd-boot started
# from. Units: imprint-unattended.service when the system credential imprint.config exists,
# else imprint@tty1.service and imprint@ttyS0.service (in place of the gettys, which are masked);
# and imprint-varlink.socket always, for a front end driving imprint through io.imprint.Installer.
# See iso/README.md.
#
# Cache: the result lives in $IMPRINT_TEST_CACHE/live-KEY/ (default /var/cache/imprint-test),
# KEY = first 16 hex digits of the sha256 of this script, tests/image/lib-debian.sh, iso/rootfs/
# and data/units/ (paths, modes, contents), imprint's sources (see source_files), the carried
# image's cache key and SHA256SUMS, the suite, the mirror, the package lists and the command
# line. A complete entry (stamp "complete") is printed at once. The newest
# $IMPRINT_TEST_CACHE_KEEP (default 3) live-* entries are kept. The debootstrap tarball and the
# .deb cache are shared with build-ddi.sh. The cached medium is shared: boot a copy or a qcow2
# overlay of it (or pass OUTDIR, which gets a sparse copy).
#
# Files in live-KEY/: imprint-live.raw, SHA256SUMS, imprint-live.efi (the UKI, also on the
# ESP), imprint-recovery.efi (the recovery entry, also in the root), imprint-recovery-initrd.txt
# (lsinitrd of its initrd), packages.txt (the medium's packages), build-info.txt (key, carried
# image, sizes, timings).
#
# Environment: IMPRINT_TEST_CACHE, IMPRINT_TEST_CACHE_KEEP, IMPRINT_TEST_MIRROR,
# IMPRINT_TEST_VERBOSE=1 (as for build-ddi.sh).
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
        coreutils findutils tar
        git                                  # the list of imprint's sources
)

SUITE=trixie
MIRROR=${IMPRINT_TEST_MIRROR:-http://deb.debian.org/debian}
NAME=imprint-live
# The last console= is /dev/console: systemd's status lines and the unattended install's
# progress go to the serial port; the kernel writes to both; imprint@.service runs on both.
CMDLINE="console=tty1 console=ttyS0 systemd.firstboot=off rw"
# The recovery entry's command line: the initrd runs imprint-recovery.target and never switches
# root; imprint.recovery=1 tells imprint where it runs. loglevel=4: kernel warnings and worse
# only, so that kernel chatter does not break into the dialogue on the consoles.
# rd.systemd.gpt_auto=0: the initrd must not find, unlock and mount the installed root it is
# about to erase (seen in the rig: gpt-auto started systemd-cryptsetup@root there; an opened
# volume would make the disk busy, and the reset refuse it).
RECOVERY_NAME=imprint-recovery
RECOVERY_CMDLINE="console=tty1 console=ttyS0 imprint.recovery=1 rd.systemd.unit=imprint-recovery.target rd.systemd.gpt_auto=0 loglevel=4"

# What the medium runs: systemd, the kernel's initrd tools, and imprint's runtime tools and
# libraries (installed by name, so "apt-get purge --autoremove" of the build dependencies keeps
# them; the libraries the built binary links are also marked manual from its ldd output).
live_packages=(
        dracut zstd
        systemd systemd-sysv udev dbus kmod libpam-systemd
        util-linux fdisk dosfstools mtools e2fsprogs
        # usr images: usr read without mounting (squashfs, erofs), the UKI's initrd listed
        squashfs-tools erofs-utils xz-utils
        systemd-boot-efi systemd-boot-tools systemd-ukify
        systemd-cryptsetup cryptsetup-bin
        tpm2-tools libtss2-esys-3.0.2-0t64 libtss2-rc0t64 libtss2-mu-4.0.1-0t64 libtss2-tctildr0t64
        libtss2-tcti-device0t64
        systemd-homed
        libblkid1 libfdisk1 libcryptsetup12 libsystemd0 libpwquality1 libjson-c5 libqrencode4
        libncursesw6 libssl3t64
        # libpwquality checks words against the cracklib dictionary; without it every password fails.
        cracklib-runtime
        # Resets (here and in the recovery entry's initrd) recreate what an image's repart.d names.
        btrfs-progs xfsprogs
        # OEM lines: the per-machine report is POSTed with curl ("report": {"url": …}); images
        # served over http(s) need an address (systemd-networkd, DHCP) and names (resolved).
        curl systemd-resolved
        # image sources (issue 16 part 4): downloads, .raw.zst and .raw.xz, SHA256SUMS.gpg
        libcurl4t64 libzstd1 liblzma5 gpgv
)
kernel_packages=(linux-image-amd64)
# Build dependencies of imprint: installed for the build in the chroot, purged after it.
build_packages=(
        meson ninja-build gcc pkg-config
        libncurses-dev libblkid-dev libfdisk-dev libcryptsetup-dev libtss2-dev libsystemd-dev
        libpwquality-dev libjson-c-dev libqrencode-dev libssl-dev
        # image sources (issue 16 part 4)
        libcurl4-openssl-dev libzstd-dev liblzma-dev
)
# Only needed to make the UKI.
uki_only_packages=(systemd-ukify)

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRC=$(cd "$HERE/.." && pwd)                     # this checkout
OVERLAY=$HERE/rootfs
RECOVERY_DIR=$HERE/recovery                     # the recovery initrd: dracut.conf + module
UNITS=$SRC/data/units
LIB=$SRC/tests/image/lib-debian.sh
CACHE=${IMPRINT_TEST_CACHE:-/var/cache/imprint-test}
KEEP=${IMPRINT_TEST_CACHE_KEEP:-3}
OUTDIR=${1:-}
LIB_TAG=build-live
# shellcheck source-path=SCRIPTDIR source=../tests/image/lib-debian.sh
. "$LIB"

# ---------------------------------------------------------------------------------------------
# The image the medium carries (built or reused first: build-ddi.sh takes the cache lock
# itself, so it must run before this script takes it).

DDI=$(bash "$SRC/tests/image/build-ddi.sh")
DDI_DIR=${DDI%/*}
DDI_NAME=${DDI##*/}
[ -f "$DDI_DIR/SHA256SUMS" ] || die "no SHA256SUMS beside $DDI"
IMAGES_DIR=/usr/share/imprint/images

# ---------------------------------------------------------------------------------------------
# imprint's sources: the files git lists (tracked, plus untracked ones that are not ignored, so
# that a new file the work tree's meson.build already names is there), with their work-tree
# contents. iso/ is left out (it is not part of the build). Files below tests/ other than
# tests/meson.build are copied as empty placeholders: meson's find_program() wants them to
# exist, but only the imprint target is built and installed, so their contents can not change
# what the medium holds, and editing a test does not rebuild the medium.

git_src() {
        git -c safe.directory="$SRC" -C "$SRC" "$@"
}
git_src rev-parse --is-inside-work-tree >/dev/null 2>&1 || die "$SRC is not a git checkout"

SOURCES=()
PLACEHOLDERS=()
while IFS= read -r -d '' f; do
        [ -f "$SRC/$f" ] || continue            # deleted in the work tree
        case $f in
        iso/*) ;;
        tests/meson.build) SOURCES+=("$f") ;;
        tests/*) PLACEHOLDERS+=("$f") ;;
        *) SOURCES+=("$f") ;;
        esac
done < <(git_src ls-files -z --cached --others --exclude-standard | LC_ALL=C sort -z -u)
[ ${#SOURCES[@]} -gt 0 ] || die "git lists no sources in $SRC"

# ---------------------------------------------------------------------------------------------
# Cache key and the fast path.

cache_key_input() {
        echo "script $(sha256sum <"${BASH_SOURCE[0]}" | cut -d' ' -f1)"
        echo "library $(sha256sum <"$LIB" | cut -d' ' -f1)"
        echo "suite $SUITE"
        echo "mirror $MIRROR"
        echo "packages ${live_packages[*]}"
        echo "kernel ${kernel_packages[*]}"
        echo "build ${build_packages[*]}"
        echo "uki-only ${uki_only_packages[*]}"
        echo "cmdline $CMDLINE"
        echo "recovery-cmdline $RECOVERY_CMDLINE"
        echo "ddi $DDI_DIR"
        echo "ddi-name $DDI_NAME"
        echo "ddi-sums $(sha256sum <"$DDI_DIR/SHA256SUMS" | cut -d' ' -f1)"
        echo "rootfs:"
        deb_cache_key_tree "$OVERLAY"
        echo "units:"
        deb_cache_key_tree "$UNITS"
        echo "recovery:"
        deb_cache_key_tree "$RECOVERY_DIR"
        echo "sources:"
        (cd "$SRC" && printf '%s\0' "${SOURCES[@]}" | xargs -0 stat -c 'mode %n %a' \
                && printf '%s\0' "${SOURCES[@]}" | xargs -0 sha256sum)
        echo "placeholders:"
        [ ${#PLACEHOLDERS[@]} -eq 0 ] || (cd "$SRC" && printf '%s\0' "${PLACEHOLDERS[@]}" | xargs -0 stat -c 'mode %n %a')
}

# build-live.sh --print-key-input: what the key is made of (to see why a build was not cached).
if [ "${1:-}" = --print-key-input ]; then
        cache_key_input
        exit 0
fi
KEY_FULL=$(cache_key_input | sha256sum | cut -d' ' -f1)
KEY=${KEY_FULL:0:16}
RESULT=$CACHE/live-$KEY
IMAGE=$NAME.raw

deliver() { deb_deliver "$RESULT" "$NAME" "$OUTDIR"; }

# ---------------------------------------------------------------------------------------------
# Slow path, unless cached.
deb_use_cache "$RESULT" "$NAME" "$OUTDIR" "the live medium"
deb_install_host_packages "${host_packages[@]}"
deb_begin_build
log "building $NAME (key $KEY) in $WORK; log: $BUILDLOG"

phase debootstrap
deb_debootstrap

phase packages
deb_prepare_root "$OVERLAY/etc/dracut.conf.d/50-imprint-live.conf"
deb_apt install "${live_packages[@]}"
# systemd-resolved made /etc/resolv.conf a link to its stub, which the build's chroot (a /run of
# its own) cannot follow: the host's file for the rest of the build; the link comes back at the
# end (after deb_set_identity), for the medium.
rm -f "$ROOT/etc/resolv.conf"
cp -L /etc/resolv.conf "$ROOT/etc/resolv.conf"
deb_install_kernel "${kernel_packages[@]}"

# --- imprint, built in the chroot -------------------------------------------------------------
phase imprint
dest=$ROOT/usr/src/imprint
mkdir -p "$dest"
printf '%s\0' "${SOURCES[@]}" | tar -C "$SRC" --null -T - -cf - | tar -C "$dest" -xf - --no-same-owner
for f in "${PLACEHOLDERS[@]}"; do
        install -D -m "$(stat -c %a "$SRC/$f")" /dev/null "$dest/$f"
done
deb_apt install "${build_packages[@]}"
logged in_root sh -euc '
        meson setup --prefix=/usr --buildtype=release /var/tmp/imprint-build /usr/src/imprint
        meson compile -C /var/tmp/imprint-build imprint
        meson install -C /var/tmp/imprint-build --no-rebuild --strip
'
[ -x "$ROOT/usr/bin/imprint" ] || die "meson install put no /usr/bin/imprint in the root"
# The packages of the libraries imprint links stay when the build dependencies go.
libpkgs=$(in_root sh -euc '
        ldd /usr/bin/imprint | awk "\$2 == \"=>\" && \$3 ~ /^\\// { print \$3 }" | while read -r lib; do
                real=$(readlink -f "$lib")
                dpkg-query -S "$real" 2>/dev/null || dpkg-query -S "${real#/usr}" 2>/dev/null || echo "unowned: $real" >&2
        done | cut -d: -f1 | sort -u
')
# shellcheck disable=SC2086  # one package name per word
logged in_root apt-mark manual $libpkgs
deb_apt purge --autoremove "${build_packages[@]}"
rm -rf "$ROOT/usr/src/imprint" "$ROOT/var/tmp/imprint-build"
if in_root ldd /usr/bin/imprint | grep -q 'not found'; then
        in_root ldd /usr/bin/imprint >&2
        die "imprint lacks libraries after the build dependencies were purged"
fi
IMPRINT_VERSION=$(in_root /usr/bin/imprint --version 2>&1 | head -n 1)
log "built $IMPRINT_VERSION; runtime library packages: ${libpkgs//$'\n'/ }"

# --- configuration ------------------------------------------------------------------------------
phase configure
deb_install_overlay "$OVERLAY"
# imprint's own units, as the product ships them.
(cd "$UNITS" && find . -type f -print0) | while IFS= read -r -d '' f; do
        install -D -o 0 -g 0 -m 644 "$UNITS/$f" "$ROOT/usr/lib/systemd/system/${f#./}"
done
# The OS image to install, byte for byte the cached one (sparse), and its checksum.
install -d -m 755 "$ROOT$IMAGES_DIR"
cp --sparse=always "$DDI" "$ROOT$IMAGES_DIR/$DDI_NAME"
cp "$DDI_DIR/SHA256SUMS" "$ROOT$IMAGES_DIR/SHA256SUMS"
(cd "$ROOT$IMAGES_DIR" && sha256sum --quiet -c SHA256SUMS) || die "the copy of $DDI does not match its SHA256SUMS"
install -d -m 755 "$ROOT/etc/imprint"
printf '{\n  "source": "%s"\n}\n' "$IMAGES_DIR/$DDI_NAME" >"$ROOT/etc/imprint/imprint.conf"
# The installer in place of the login prompts on the screen and the serial port.
logged in_root systemctl enable imprint-unattended.service imprint@tty1.service imprint@ttyS0.service
# The Varlink service (imprint-varlink(7)): the socket listens, the first client starts imprint.
logged in_root systemctl enable imprint-varlink.socket
# The network for images served over http(s): wired cards by DHCP (iso/rootfs), names by resolved.
logged in_root systemctl enable systemd-networkd.service systemd-resolved.service
logged in_root systemctl mask getty@tty1.service serial-getty@ttyS0.service
deb_set_identity "$NAME"
ln -sfn ../run/systemd/resolve/stub-resolv.conf "$ROOT/etc/resolv.conf"
# The boot menu's title, and systemd's "Welcome to …!" line. Not "imprint …" first: the rig
# waits for imprint's own "Welcome to imprint." on the console.
sed -i 's/^PRETTY_NAME="\(.*\)"$/PRETTY_NAME="\1, imprint live medium"/' "$ROOT/usr/lib/os-release"

deb_make_uki "$NAME" "$CMDLINE"

# --- the recovery entry -------------------------------------------------------------------------
# A second initrd from the same root, with iso/recovery/dracut.conf alone (an empty --confdir keeps
# 50-imprint-live.conf out) and the 95imprint-recovery module, which is in the root only for this
# build. Its .osrel gives sd-boot's menu title; the UKI goes into the live root, where
# recovery_entry_find() looks for it (RECOVERY_UKI_PATH).
phase recovery
rec=/var/tmp/$RECOVERY_NAME
install -d -m 755 "$ROOT$rec/conf.d" "$ROOT/usr/lib/dracut/modules.d/95imprint-recovery"
install -m 755 "$RECOVERY_DIR/95imprint-recovery/module-setup.sh" "$ROOT/usr/lib/dracut/modules.d/95imprint-recovery/"
install -m 644 "$RECOVERY_DIR/dracut.conf" "$ROOT$rec/dracut.conf"
imprint_version_id=${IMPRINT_VERSION##* }
cat >"$ROOT$rec/os-release" <<EOF
NAME="imprint recovery"
PRETTY_NAME="Factory reset (imprint recovery)"
ID=imprint-recovery
IMAGE_ID=$RECOVERY_NAME
IMAGE_VERSION=$imprint_version_id
EOF
logged in_root dracut --force --conf "$rec/dracut.conf" --confdir "$rec/conf.d" --kver "$KVER" "$rec/initrd.img"
logged in_root ukify build \
        --linux="/boot/vmlinuz-$KVER" \
        --initrd="$rec/initrd.img" \
        --os-release=@"$rec/os-release" \
        --uname="$KVER" \
        --cmdline="$RECOVERY_CMDLINE" \
        --output="$rec/$RECOVERY_NAME.efi"
[ -s "$ROOT$rec/$RECOVERY_NAME.efi" ] || die "ukify made no recovery UKI"
install -D -m 644 "$ROOT$rec/$RECOVERY_NAME.efi" "$ROOT/usr/lib/imprint/$RECOVERY_NAME.efi"
cp "$ROOT$rec/$RECOVERY_NAME.efi" "$OUT/$RECOVERY_NAME.efi"
RECOVERY_INITRD_SIZE=$(stat -c %s "$ROOT$rec/initrd.img")
RECOVERY_KERNEL_SIZE=$(stat -c %s "$ROOT/boot/vmlinuz-$KVER")
RECOVERY_UKI_SIZE=$(stat -c %s "$OUT/$RECOVERY_NAME.efi")
# What went in: the referee is the initrd itself.
in_root lsinitrd "$rec/initrd.img" >"$OUT/$RECOVERY_NAME-initrd.txt" 2>&1 || true
for f in usr/bin/imprint usr/lib/systemd/system/imprint-recovery.target; do
        grep -q " $f\$" "$OUT/$RECOVERY_NAME-initrd.txt" || die "the recovery initrd lacks /$f (see $RECOVERY_NAME-initrd.txt)"
done
rm -rf "$ROOT$rec" "$ROOT/usr/lib/dracut/modules.d/95imprint-recovery"
log "recovery UKI: $((RECOVERY_UKI_SIZE / 1024)) KiB = kernel $((RECOVERY_KERNEL_SIZE / 1024)) KiB + initrd $((RECOVERY_INITRD_SIZE / 1024)) KiB (+ stub and sections); /usr/lib/imprint/$RECOVERY_NAME.efi"

phase trim
deb_apt purge --autoremove "${uki_only_packages[@]}"
in_root dpkg-query -W -f='${Package} ${Version}\n' >"$OUT/packages.txt"
deb_trim

phase assemble
sdboot=$ROOT/usr/lib/systemd/boot/efi/systemd-bootx64.efi
[ -f "$sdboot" ] || die "no $sdboot in the root"
printf 'timeout 0\n' >"$WORK/loader.conf"
ESP_FILES=(
        "$sdboot::/EFI/BOOT/BOOTX64.EFI"
        "$sdboot::/EFI/systemd/systemd-bootx64.efi"
        "$WORK/loader.conf::/loader/loader.conf"
        "$OUT/$NAME.efi::/EFI/Linux/$NAME.efi"
)
deb_assemble "$OUT/$IMAGE" "$NAME" ""

phase checksum
(cd "$OUT" && sha256sum "$IMAGE" >SHA256SUMS)

phase end
{
        echo "name $NAME"
        echo "key $KEY_FULL"
        echo "imprint $IMPRINT_VERSION"
        echo "carried-image $IMAGES_DIR/$DDI_NAME"
        echo "carried-from $DDI"
        echo "carried-sha256 $(cut -d' ' -f1 "$DDI_DIR/SHA256SUMS")"
        echo "suite $SUITE"
        echo "mirror $MIRROR"
        echo "kernel $KVER"
        echo "cmdline $CMDLINE"
        printf '%s\n' "${ASM_INFO[@]}"
        echo "uki-size $(stat -c %s "$OUT/$NAME.efi")"
        echo "recovery-cmdline $RECOVERY_CMDLINE"
        echo "recovery-uki-size $RECOVERY_UKI_SIZE"
        echo "recovery-kernel-size $RECOVERY_KERNEL_SIZE"
        echo "recovery-initrd-size $RECOVERY_INITRD_SIZE"
        echo "built $(date -u +%Y-%m-%dT%H:%M:%SZ) in $(elapsed "$T0")s"
        printf 'phase %s\n' "${TIMINGS[@]}"
} >"$OUT/build-info.txt"
deb_finish live
log "medium: $RESULT/$IMAGE ($((ASM_SIZE / MIB)) MiB, $(du -m "$RESULT/$IMAGE" | cut -f1) MiB allocated, UKI $(($(stat -c %s "$RESULT/$NAME.efi") / MIB)) MiB)"
log "recovery UKI: $RESULT/$RECOVERY_NAME.efi ($((RECOVERY_UKI_SIZE / 1024)) KiB, initrd $((RECOVERY_INITRD_SIZE / 1024)) KiB)"
log "built in $(elapsed "$T0")s"
deliver
