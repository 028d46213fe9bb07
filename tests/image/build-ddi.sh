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
# KEY = first 16 hex digits of the sha256 of this script, the files under tests/image/rootfs/,
# the suite, the mirror and the package lists. A complete entry (stamp file "complete") is
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
)
kernel_packages=(linux-image-amd64)

ESP_MIB=512             # smaller FAT32 has too few clusters for mtools (docs/vm-rig.md)
ESP_TYPE=c12a7328-f81f-11d2-ba4b-00a0c93ec93b
ROOT_TYPE=4f68bce3-e8cd-4db1-96e7-fbcaf984b709

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
OVERLAY=$HERE/rootfs
CACHE=${IMPRINT_TEST_CACHE:-/var/cache/imprint-test}
KEEP=${IMPRINT_TEST_CACHE_KEEP:-3}
OUTDIR=${1:-}
T0=$EPOCHREALTIME

log() {
        printf '[build-ddi %6.1fs] %s\n' "$(elapsed "$T0")" "$*" >&2
}

die() {
        log "ERROR: $*"
        exit 1
}

elapsed() {
        local now=$EPOCHREALTIME
        awk -v a="$1" -v b="$now" 'BEGIN { printf "%.1f", b - a }'
}

# ---------------------------------------------------------------------------------------------
# Cache key and the fast path (no root, no apt, no dpkg: just hashing a few small files).

cache_key_input() {
        local f
        echo "script $(sha256sum <"${BASH_SOURCE[0]}" | cut -d' ' -f1)"
        echo "suite $SUITE"
        echo "mirror $MIRROR"
        echo "packages ${image_packages[*]}"
        echo "kernel ${kernel_packages[*]}"
        echo "cmdline $CMDLINE"
        (cd "$OVERLAY" && find . -type f -print0 | LC_ALL=C sort -z) | while IFS= read -r -d '' f; do
                echo "file $f $(stat -c %a "$OVERLAY/$f") $(sha256sum <"$OVERLAY/$f" | cut -d' ' -f1)"
        done
}

KEY_FULL=$(cache_key_input | sha256sum | cut -d' ' -f1)
KEY=${KEY_FULL:0:16}
RESULT=$CACHE/ddi-$KEY
IMAGE=$NAME.raw

# deliver: print the image path, after copying the result to OUTDIR if one was given.
deliver() {
        if [ -z "$OUTDIR" ]; then
                echo "$RESULT/$IMAGE"
                return
        fi
        mkdir -p "$OUTDIR"
        local f
        for f in "$IMAGE" SHA256SUMS "$NAME.efi" packages.txt build-info.txt; do
                cp --sparse=always "$RESULT/$f" "$OUTDIR/$f"
        done
        echo "$(cd "$OUTDIR" && pwd)/$IMAGE"
}

if [ -f "$RESULT/complete" ]; then
        log "cached: $RESULT (key $KEY)"
        deliver
        exit 0
fi

# ---------------------------------------------------------------------------------------------
# Slow path.

[ "$(id -u)" = 0 ] || die "building the image needs root (debootstrap, chroot); the cache $RESULT is empty"
[ "$(uname -m)" = x86_64 ] || die "only x86-64 hosts are supported"

install_host_packages() {
        local p missing=()
        for p in "${host_packages[@]}"; do
                dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
        done
        [ ${#missing[@]} -eq 0 ] && return 0
        log "installing host packages: ${missing[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

export PATH=/usr/sbin:/usr/bin:/sbin:/bin
export LC_ALL=C
export MTOOLS_SKIP_CHECK=1

mkdir -p "$CACHE" "$CACHE/apt-archives/partial"
exec 9>"$CACHE/.lock"
if ! flock -n 9; then
        log "waiting for another build (lock $CACHE/.lock)"
        flock 9
fi
if [ -f "$RESULT/complete" ]; then      # built by whoever held the lock
        log "cached: $RESULT (key $KEY)"
        deliver
        exit 0
fi

install_host_packages

WORK=$(mktemp -d "$CACHE/.build-$KEY.XXXXXX")
ROOT=$WORK/root
OUT=$WORK/out
BUILDLOG=$WORK/build.log
mkdir -p "$ROOT" "$OUT"

cleanup() {
        local rc=$? m
        # Every mount is made inside "unshare --mount" (see in_root), so the kernel drops it when
        # that process ends. Check anyway, and never rm -rf through a mount (host /dev!).
        for m in $(findmnt -rno TARGET | grep -F "$WORK/" | sort -r); do
                umount -l "$m" 2>/dev/null || true
        done
        if findmnt -rno TARGET | grep -qF "$WORK/"; then
                log "leaving $WORK in place: something is still mounted below it"
        else
                if [ "$rc" != 0 ] && [ -f "$BUILDLOG" ]; then
                        cp "$BUILDLOG" "$CACHE/failed-build.log" 2>/dev/null || true
                        log "FAILED in phase ${PHASE:-setup} (exit $rc); last lines of $CACHE/failed-build.log:"
                        tail -n 40 "$BUILDLOG" >&2 || true
                fi
                rm -rf --one-file-system "$WORK"
        fi
        exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

PHASE=''
PHASE_T=''
TIMINGS=()
phase() {
        if [ -n "$PHASE" ]; then
                local d
                d=$(elapsed "$PHASE_T")
                TIMINGS+=("$PHASE ${d}s")
                log "done: $PHASE (${d}s)"
        fi
        PHASE=$1
        PHASE_T=$EPOCHREALTIME
        [ "$PHASE" = end ] || log "phase: $PHASE"
}

# logged CMD...: output to the build log (and stderr with IMPRINT_TEST_VERBOSE=1).
logged() {
        if [ "${IMPRINT_TEST_VERBOSE:-0}" = 1 ]; then
                "$@" 2>&1 | tee -a "$BUILDLOG" >&2
        else
                "$@" >>"$BUILDLOG" 2>&1
        fi
}

# in_root [--apt] CMD...: runs CMD chrooted into $ROOT, in a private mount namespace: proc, sys,
# dev, run, tmp (and with --apt the shared .deb cache) are mounted there only, and the kernel
# unmounts them when the namespace ends, whatever way the build ends.
in_root() {
        local apt=0
        if [ "$1" = --apt ]; then
                apt=1
                shift
        fi
        unshare --mount --propagation private --fork --kill-child -- bash -euc '
                root=$1 apt=$2 archives=$3
                shift 3
                mount -t proc proc "$root/proc"
                mount -t sysfs sysfs "$root/sys"
                mount --rbind /dev "$root/dev"
                mount -t tmpfs tmpfs "$root/run"
                mount -t tmpfs tmpfs "$root/tmp"
                [ "$apt" = 0 ] || mount --bind "$archives" "$root/var/cache/apt/archives"
                exec chroot "$root" /usr/bin/env -i \
                        PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 TERM=dumb \
                        DEBIAN_FRONTEND=noninteractive DEBCONF_NONINTERACTIVE_SEEN=true \
                        INITRD=No "$@"
        ' in_root "$ROOT" "$apt" "$CACHE/apt-archives" "$@"
}

log "building $NAME (key $KEY) in $WORK; log: $BUILDLOG"

# --- debootstrap, from a cached tarball of the minbase .debs when there is one -------------------
phase debootstrap
BS_KEY=$(printf '%s\n' "$SUITE" "$MIRROR" minbase amd64 "$(dpkg-query -W -f='${Version}' debootstrap)" \
        | sha256sum | cut -c1-16)
TARBALL=$CACHE/debootstrap-$SUITE-$BS_KEY.tgz
if [ ! -f "$TARBALL" ]; then
        log "downloading the $SUITE minbase packages into $TARBALL"
        logged unshare --mount --propagation private --fork --kill-child -- \
                debootstrap --variant=minbase --arch=amd64 --make-tarball="$WORK/base.tgz" \
                "$SUITE" "$WORK/tarball-root" "$MIRROR"
        rm -rf --one-file-system "$WORK/tarball-root"
        mv "$WORK/base.tgz" "$TARBALL"
fi
logged unshare --mount --propagation private --fork --kill-child -- \
        debootstrap --variant=minbase --arch=amd64 --unpack-tarball="$TARBALL" \
        "$SUITE" "$ROOT" "$MIRROR"

# --- packages ---------------------------------------------------------------------------------
phase packages
# Keep documentation, manuals and translations out of the image from the start.
cat >"$ROOT/etc/dpkg/dpkg.cfg.d/01-imprint-test-trim" <<'EOF'
# imprint test image: no documentation, manuals or translations.
path-exclude=/usr/share/doc/*
path-exclude=/usr/share/man/*
path-exclude=/usr/share/info/*
path-exclude=/usr/share/locale/*
path-include=/usr/share/locale/locale.alias
path-exclude=/usr/share/lintian/*
EOF
# No daemons started in the chroot.
printf '#!/bin/sh\nexit 101\n' >"$ROOT/usr/sbin/policy-rc.d"
chmod 755 "$ROOT/usr/sbin/policy-rc.d"
# dracut's configuration goes in before dracut and the kernel (the overlay is copied again later).
install -D -m 644 "$OVERLAY/etc/dracut.conf.d/50-imprint-test.conf" "$ROOT/etc/dracut.conf.d/50-imprint-test.conf"

APT_OPTS=(-y -q -o Dpkg::Use-Pty=0 -o APT::Keep-Downloaded-Packages=true --no-install-recommends)
logged in_root --apt apt-get update
logged in_root --apt apt-get "${APT_OPTS[@]}" dist-upgrade     # the tarball may predate a point release
logged in_root --apt apt-get "${APT_OPTS[@]}" install "${image_packages[@]}"
# INITRD=No (set by in_root) makes /etc/kernel/postinst.d/dracut and dracut's trigger skip the
# initrd: it is built below with the final configuration, and a hook can not fail the install.
logged in_root --apt apt-get "${APT_OPTS[@]}" install "${kernel_packages[@]}"
logged in_root --apt apt-get -q autoclean      # drop superseded .debs from the shared cache
if in_root dpkg-query -W -f='${Status}\n' initramfs-tools 2>/dev/null | grep -q "install ok installed"; then
        die "initramfs-tools got installed; the image needs dracut's systemd initrd"
fi
in_root dpkg-query -W -f='${Package} ${Version}\n' >"$OUT/packages.txt"
KVER=$(in_root sh -c 'linux-version list | linux-version sort | tail -n 1')
[ -n "$KVER" ] || die "no kernel installed"
log "kernel $KVER, systemd $(awk '$1 == "systemd" { print $2 }' "$OUT/packages.txt")"

# --- configuration ------------------------------------------------------------------------------
phase configure
(cd "$OVERLAY" && find . -type f -print0) | while IFS= read -r -d '' f; do
        install -D -o 0 -g 0 -m "$(stat -c %a "$OVERLAY/$f")" "$OVERLAY/$f" "$ROOT/${f#./}"
done
install -d -m 755 "$ROOT/usr/lib/imprint-test/check.d"
logged in_root systemctl enable imprint-check.service

# os-release: Debian's, plus the image's identity (sd-boot's sort key and version, §2.3).
sed -i '/^IMAGE_ID=/d; /^IMAGE_VERSION=/d' "$ROOT/usr/lib/os-release"
printf 'IMAGE_ID=%s\nIMAGE_VERSION=%s\n' "$IMAGE_ID" "$IMAGE_VERSION" >>"$ROOT/usr/lib/os-release"
[ "$(readlink "$ROOT/etc/os-release")" = ../usr/lib/os-release ] || ln -sfn ../usr/lib/os-release "$ROOT/etc/os-release"

# First boot, with nothing of the build host. "uninitialized", not an empty file: systemd 257
# treats only a missing file or "uninitialized" as first boot (ConditionFirstBoot=, presets,
# machine-id committed by systemd-machine-id-commit.service); an empty file just gets an ID.
echo uninitialized >"$ROOT/etc/machine-id"
rm -f "$ROOT/var/lib/dbus/machine-id" "$ROOT/var/lib/systemd/random-seed" "$ROOT/var/lib/systemd/credential.secret"
echo "$IMAGE_ID" >"$ROOT/etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\t%s\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' "$IMAGE_ID" >"$ROOT/etc/hosts"
rm -f "$ROOT/etc/resolv.conf"

# --- initrd and UKI ---------------------------------------------------------------------------
phase initrd
logged in_root dracut --force --kver "$KVER" "/var/tmp/initrd.img-$KVER"
phase uki
logged in_root ukify build \
        --linux="/boot/vmlinuz-$KVER" \
        --initrd="/var/tmp/initrd.img-$KVER" \
        --os-release=@/usr/lib/os-release \
        --uname="$KVER" \
        --cmdline="$CMDLINE" \
        --output="/var/tmp/$NAME.efi"
mv "$ROOT/var/tmp/$NAME.efi" "$OUT/$NAME.efi"
[ -s "$OUT/$NAME.efi" ] || die "ukify made no UKI"

# --- trim -------------------------------------------------------------------------------------
phase trim
# /boot and /efi stay, empty: gpt-auto mounts the ESP only on an empty directory (docs/vm-rig.md).
# The kernel lives in the UKI; its modules stay in /usr/lib/modules.
find "$ROOT/boot" -mindepth 1 -delete
rm -f "$ROOT"/vmlinuz* "$ROOT"/initrd.img*
install -d -m 755 "$ROOT/efi" "$ROOT/boot"
rm -f "$ROOT/usr/sbin/policy-rc.d"
rm -rf "$ROOT"/usr/share/doc/* "$ROOT"/usr/share/man/* "$ROOT"/usr/share/info/* "$ROOT"/usr/share/lintian/*
find "$ROOT/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} +
rm -rf "$ROOT"/var/lib/apt/lists/* "$ROOT"/var/cache/apt/*.bin "$ROOT"/var/cache/debconf/*-old \
        "$ROOT"/var/lib/dpkg/*-old "$ROOT"/var/tmp/* "$ROOT"/tmp/* "$ROOT"/root/.bash_history
find "$ROOT/var/cache/apt/archives" -name '*.deb' -delete
find "$ROOT/var/log" -type f -delete
install -d -m 755 "$ROOT/var/lib/apt/lists/partial"
# The caches that ConditionNeedsUpdate= units rebuild on first boot (ld.so.cache, hwdb.bin, the
# journal catalog) were made by the package scripts already: mark /etc and /var up to date, as
# systemd-update-done would, so that first boot under TCG does not redo them.
touch -r "$ROOT/usr" "$ROOT/etc/.updated" "$ROOT/var/.updated"

# --- assemble the disk image, without mounts or loop devices --------------------------------
phase assemble
# Stable UUIDs derived from the key: the same inputs give the same partition table.
uuid_for() {
        local h
        h=$(printf '%s/%s' "$KEY_FULL" "$1" | sha256sum | cut -c1-32)
        printf '%s-%s-4%s-%x%s-%s\n' "${h:0:8}" "${h:8:4}" "${h:13:3}" $(((0x${h:16:1} & 3) | 8)) "${h:17:3}" "${h:20:12}"
}
DISK_UUID=$(uuid_for disk)
ESP_UUID=$(uuid_for esp)
ROOT_UUID=$(uuid_for root)
FS_UUID=$(uuid_for root-fs)
VFAT_ID=$(uuid_for esp-fs | cut -c1-8)

MIB=$((1024 * 1024))
used=$(du -sx -B1 "$ROOT" | cut -f1)
inodes=$(find "$ROOT" -xdev | wc -l)
# +25 % headroom, plus 64 MiB for the journal, inode tables and group descriptors.
ROOT_MIB=$(((used * 5 / 4 + 64 * MIB + MIB - 1) / MIB))
ESP_START=$((1 * MIB))
ROOT_START=$((ESP_START + ESP_MIB * MIB))
DISK_SIZE=$((ROOT_START + ROOT_MIB * MIB + MIB))        # + 1 MiB for the backup GPT
log "rootfs $((used / MIB)) MiB in $inodes inodes; root partition $ROOT_MIB MiB, disk $((DISK_SIZE / MIB)) MiB"

DISK=$OUT/$IMAGE
truncate -s "$DISK_SIZE" "$DISK"
sfdisk --quiet --no-reread --no-tell-kernel "$DISK" <<EOF
label: gpt
label-id: $DISK_UUID
unit: sectors
sector-size: 512
first-lba: 2048
start=$((ESP_START / 512)), size=$((ESP_MIB * MIB / 512)), type=$ESP_TYPE, uuid=$ESP_UUID, name="esp"
start=$((ROOT_START / 512)), size=$((ROOT_MIB * MIB / 512)), type=$ROOT_TYPE, uuid=$ROOT_UUID, name="$NAME", attrs="GUID:59"
EOF

logged mkfs.vfat -F 32 -n ESP -i "$VFAT_ID" -S 512 --offset $((ESP_START / 512)) "$DISK" $((ESP_MIB * 1024))
ESP_IMG="$DISK@@$ESP_START"
mmd -i "$ESP_IMG" ::/EFI ::/EFI/Linux
mcopy -i "$ESP_IMG" "$OUT/$NAME.efi" "::/EFI/Linux/$NAME.efi"

logged mkfs.ext4 -F -q -L root -U "$FS_UUID" -b 4096 \
        -E "offset=$ROOT_START,nodiscard,hash_seed=$FS_UUID,root_owner=0:0" \
        -d "$ROOT" "$DISK" "${ROOT_MIB}M"

# Referees: the table as sfdisk reads it back, a forced read-only fsck, the ESP listing.
logged sfdisk --dump "$DISK"
logged e2fsck -fn "$DISK?offset=$ROOT_START" || die "e2fsck found errors in the root file system"
logged mdir -/ -i "$ESP_IMG" ::/
free_blocks=$(dumpe2fs -h "$DISK?offset=$ROOT_START" 2>/dev/null | awk -F: '/^Free blocks/ { gsub(/ /, "", $2); print $2 }')

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
        echo "disk-size $DISK_SIZE"
        echo "disk-allocated $(du -B1 "$DISK" | cut -f1)"
        echo "rootfs-used $used"
        echo "root-free $((free_blocks * 4096))"
        echo "esp-offset $ESP_START"
        echo "esp-size $((ESP_MIB * MIB))"
        echo "root-offset $ROOT_START"
        echo "root-size $((ROOT_MIB * MIB))"
        echo "disk-uuid $DISK_UUID"
        echo "esp-partuuid $ESP_UUID"
        echo "root-partuuid $ROOT_UUID"
        echo "uki-size $(stat -c %s "$OUT/$NAME.efi")"
        echo "built $(date -u +%Y-%m-%dT%H:%M:%SZ) in $(elapsed "$T0")s"
        printf 'phase %s\n' "${TIMINGS[@]}"
} >"$OUT/build-info.txt"
date -u +%Y-%m-%dT%H:%M:%SZ >"$OUT/complete"

rm -rf "$RESULT"        # an incomplete leftover (no stamp) of an interrupted older run
mv "$OUT" "$RESULT"
log "image: $RESULT/$IMAGE ($((DISK_SIZE / MIB)) MiB, $(du -m "$RESULT/$IMAGE" | cut -f1) MiB allocated, UKI $(($(stat -c %s "$RESULT/$NAME.efi") / MIB)) MiB)"

# Keep only the newest $KEEP results.
ls -1dt "$CACHE"/ddi-*/ 2>/dev/null | tail -n +$((KEEP + 1)) | while read -r old; do
        log "pruning old cache entry $old"
        rm -rf --one-file-system "$old"
done

log "built in $(elapsed "$T0")s"
deliver
