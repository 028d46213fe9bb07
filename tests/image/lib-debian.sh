# SPDX-License-Identifier: LGPL-2.1-or-later
# shellcheck shell=bash
#
# lib-debian.sh — shared code of the Debian image builds: tests/image/build-ddi.sh (the test OS
# image) and iso/build-live.sh (the live medium). Sourced, never run. It builds a Debian root
# in a chroot from a cached debootstrap tarball and a shared .deb cache, makes a dracut
# systemd initrd and a UKI with ukify, and assembles a GPT disk image (ESP + root) without
# mounts or loop devices: sfdisk, mkfs.vfat --offset + mtools, mkfs.ext4 -d.
#
# The caller sets, before sourcing:
#   LIB_TAG      prefix of log lines ("build-ddi")
#   SUITE MIRROR CACHE KEEP
# and before deb_begin_build: KEY KEY_FULL (its cache key), RESULT (the cache entry directory).
#
# The flow of a build:
#   deb_cache_key_tree DIR          key lines for the files below DIR (path, mode, sha256)
#   deb_lock                        one build at a time per cache ($CACHE/.lock)
#   deb_install_host_packages P…    apt-get install on the host, only what is missing
#   deb_begin_build                 WORK, ROOT, OUT, BUILDLOG; cleanup trap
#   phase NAME                      timing of the build's phases (TIMINGS, build-info.txt)
#   deb_debootstrap                 minbase from $CACHE/debootstrap-SUITE-KEY.tgz
#   deb_prepare_root DRACUT_CONF    dpkg path excludes, policy-rc.d, dracut configuration
#   deb_apt P…                      apt-get in the chroot with the shared archive cache
#   deb_install_overlay DIR         copy a tree into the root (modes kept, owned by root)
#   deb_set_identity ID [VERSION]   os-release IMAGE_ID/IMAGE_VERSION, hostname, first boot
#   deb_make_uki NAME CMDLINE       dracut initrd + ukify UKI → $OUT/NAME.efi
#   deb_trim                        docs, caches, logs, /boot contents; marks /etc and /var updated
#   deb_assemble DISK LABEL ATTRS   GPT image: ESP (files from ESP_FILES) + ext4 root from $ROOT
#   deb_finish PREFIX               stamp, move $OUT to $RESULT, prune old PREFIX-* entries
#
# Every chroot command runs in a private mount namespace (in_root), so no mount outlives the
# build, however it ends.

ESP_TYPE=c12a7328-f81f-11d2-ba4b-00a0c93ec93b
ROOT_TYPE=4f68bce3-e8cd-4db1-96e7-fbcaf984b709      # root, x86-64 (DPS)
ESP_MIB=512             # smaller FAT32 has too few clusters for mtools (docs/vm-rig.md)
MIB=$((1024 * 1024))

T0=$EPOCHREALTIME

elapsed() {
        local now=$EPOCHREALTIME
        awk -v a="$1" -v b="$now" 'BEGIN { printf "%.1f", b - a }'
}

log() {
        printf '[%s %6.1fs] %s\n' "$LIB_TAG" "$(elapsed "$T0")" "$*" >&2
}

die() {
        log "ERROR: $*"
        exit 1
}

# deb_cache_key_tree DIR: one line per file below DIR, sorted: "file PATH MODE SHA256".
# A single sha256sum for all files keeps the cached path fast.
deb_cache_key_tree() {
        local dir=$1
        (
                cd "$dir" || exit 1
                find . -type f -print0 | LC_ALL=C sort -z | xargs -0 -r stat -c 'mode %n %a'
                find . -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum
        )
}

deb_install_host_packages() {
        local p missing=()
        for p in "$@"; do
                dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
        done
        [ ${#missing[@]} -eq 0 ] && return 0
        log "installing host packages: ${missing[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# deb_lock: one build per cache at a time (fd 9 stays open until the script ends). Callers
# check their stamp again afterwards: the holder may have built the same key.
deb_lock() {
        mkdir -p "$CACHE" "$CACHE/apt-archives/partial"
        exec 9>"$CACHE/.lock"
        if ! flock -n 9; then
                log "waiting for another build (lock $CACHE/.lock)"
                flock 9
        fi
}

deb_cleanup() {
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
                        cp "$BUILDLOG" "$CACHE/failed-$LIB_TAG.log" 2>/dev/null || true
                        log "FAILED in phase ${PHASE:-setup} (exit $rc); last lines of $CACHE/failed-$LIB_TAG.log:"
                        tail -n 40 "$BUILDLOG" >&2 || true
                fi
                rm -rf --one-file-system "$WORK"
        fi
        exit "$rc"
}

# deb_begin_build: the work directory (in the cache, so that the result can be moved into
# place) and the cleanup trap.
deb_begin_build() {
        export PATH=/usr/sbin:/usr/bin:/sbin:/bin
        export LC_ALL=C
        export MTOOLS_SKIP_CHECK=1
        WORK=$(mktemp -d "$CACHE/.build-$LIB_TAG-$KEY.XXXXXX")
        ROOT=$WORK/root
        OUT=$WORK/out
        BUILDLOG=$WORK/build.log
        mkdir -p "$ROOT" "$OUT"
        : >"$BUILDLOG"
        trap deb_cleanup EXIT
        trap 'exit 130' INT TERM HUP
}

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

# deb_debootstrap: a minbase $SUITE in $ROOT, from a cached tarball of the minbase .debs.
deb_debootstrap() {
        local bs_key tarball
        bs_key=$(printf '%s\n' "$SUITE" "$MIRROR" minbase amd64 "$(dpkg-query -W -f='${Version}' debootstrap)" \
                | sha256sum | cut -c1-16)
        tarball=$CACHE/debootstrap-$SUITE-$bs_key.tgz
        if [ ! -f "$tarball" ]; then
                log "downloading the $SUITE minbase packages into $tarball"
                logged unshare --mount --propagation private --fork --kill-child -- \
                        debootstrap --variant=minbase --arch=amd64 --make-tarball="$WORK/base.tgz" \
                        "$SUITE" "$WORK/tarball-root" "$MIRROR"
                rm -rf --one-file-system "$WORK/tarball-root"
                mv "$WORK/base.tgz" "$tarball"
        fi
        logged unshare --mount --propagation private --fork --kill-child -- \
                debootstrap --variant=minbase --arch=amd64 --unpack-tarball="$tarball" \
                "$SUITE" "$ROOT" "$MIRROR"
}

APT_OPTS=(-y -q -o Dpkg::Use-Pty=0 -o APT::Keep-Downloaded-Packages=true --no-install-recommends)

# deb_prepare_root DRACUT_CONF: before the first package: no documentation, no daemons started
# in the chroot, dracut's configuration in place before dracut and the kernel; then the package
# lists and a dist-upgrade (the tarball may predate a point release).
deb_prepare_root() {
        local dracut_conf=$1
        cat >"$ROOT/etc/dpkg/dpkg.cfg.d/01-imprint-trim" <<'EOF'
# imprint images: no documentation, manuals or translations.
path-exclude=/usr/share/doc/*
path-exclude=/usr/share/man/*
path-exclude=/usr/share/info/*
path-exclude=/usr/share/locale/*
path-include=/usr/share/locale/locale.alias
path-exclude=/usr/share/lintian/*
EOF
        printf '#!/bin/sh\nexit 101\n' >"$ROOT/usr/sbin/policy-rc.d"
        chmod 755 "$ROOT/usr/sbin/policy-rc.d"
        install -D -m 644 "$dracut_conf" "$ROOT/etc/dracut.conf.d/${dracut_conf##*/}"
        logged in_root --apt apt-get update
        logged in_root --apt apt-get "${APT_OPTS[@]}" dist-upgrade
}

# deb_apt ARGS...: apt-get in the chroot, with the shared .deb cache.
deb_apt() {
        logged in_root --apt apt-get "${APT_OPTS[@]}" "$@"
}

# deb_install_kernel P…: the kernel (after dracut, so that dracut and not initramfs-tools
# satisfies "initramfs-tools | linux-initramfs-tool"); sets KVER. INITRD=No (set by in_root)
# makes the kernel's postinst hooks skip the initrd: deb_make_uki builds it with the final
# configuration, and a hook can not fail the install.
deb_install_kernel() {
        deb_apt install "$@"
        if in_root dpkg-query -W -f='${Status}\n' initramfs-tools 2>/dev/null | grep -q "install ok installed"; then
                die "initramfs-tools got installed; the image needs dracut's systemd initrd"
        fi
        KVER=$(in_root sh -c 'linux-version list | linux-version sort | tail -n 1')
        [ -n "$KVER" ] || die "no kernel installed"
}

# deb_install_overlay DIR: every file below DIR into the root, same mode, owned by root.
deb_install_overlay() {
        local dir=$1 f
        (cd "$dir" && find . -type f -print0) | while IFS= read -r -d '' f; do
                install -D -o 0 -g 0 -m "$(stat -c %a "$dir/$f")" "$dir/$f" "$ROOT/${f#./}"
        done
}

# deb_set_identity IMAGE_ID [IMAGE_VERSION]: os-release (Debian's, plus the image's identity:
# sd-boot's sort key and version), hostname, and a first boot with nothing of the build host.
# "uninitialized", not an empty file: systemd 257 treats only a missing file or "uninitialized"
# as first boot (ConditionFirstBoot=, presets, machine-id committed by
# systemd-machine-id-commit.service); an empty file just gets an ID.
deb_set_identity() {
        local id=$1 version=${2:-}
        sed -i '/^IMAGE_ID=/d; /^IMAGE_VERSION=/d' "$ROOT/usr/lib/os-release"
        printf 'IMAGE_ID=%s\n' "$id" >>"$ROOT/usr/lib/os-release"
        [ -z "$version" ] || printf 'IMAGE_VERSION=%s\n' "$version" >>"$ROOT/usr/lib/os-release"
        [ "$(readlink "$ROOT/etc/os-release")" = ../usr/lib/os-release ] || ln -sfn ../usr/lib/os-release "$ROOT/etc/os-release"
        echo uninitialized >"$ROOT/etc/machine-id"
        rm -f "$ROOT/var/lib/dbus/machine-id" "$ROOT/var/lib/systemd/random-seed" "$ROOT/var/lib/systemd/credential.secret"
        echo "$id" >"$ROOT/etc/hostname"
        printf '127.0.0.1\tlocalhost\n127.0.1.1\t%s\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' "$id" >"$ROOT/etc/hosts"
        rm -f "$ROOT/etc/resolv.conf"
}

# deb_make_uki NAME CMDLINE: dracut initrd for $KVER and a UKI (kernel + initrd + .osrel +
# .uname + .cmdline) at $OUT/NAME.efi. Two phases: initrd, uki.
deb_make_uki() {
        local name=$1 cmdline=$2
        phase initrd
        logged in_root dracut --force --kver "$KVER" "/var/tmp/initrd.img-$KVER"
        phase uki
        logged in_root ukify build \
                --linux="/boot/vmlinuz-$KVER" \
                --initrd="/var/tmp/initrd.img-$KVER" \
                --os-release=@/usr/lib/os-release \
                --uname="$KVER" \
                --cmdline="$cmdline" \
                --output="/var/tmp/$name.efi"
        mv "$ROOT/var/tmp/$name.efi" "$OUT/$name.efi"
        [ -s "$OUT/$name.efi" ] || die "ukify made no UKI"
}

# deb_trim: what an installed system does not need. /boot and /efi stay, empty: gpt-auto mounts
# the ESP only on an empty directory (docs/vm-rig.md). The kernel lives in the UKI; its modules
# stay in /usr/lib/modules.
deb_trim() {
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
        # The caches that ConditionNeedsUpdate= units rebuild on first boot (ld.so.cache, hwdb.bin,
        # the journal catalog) were made by the package scripts already: mark /etc and /var up to
        # date, as systemd-update-done would, so that first boot under TCG does not redo them.
        touch -r "$ROOT/usr" "$ROOT/etc/.updated" "$ROOT/var/.updated"
}

# uuid_for NAME: a version-4-shaped UUID derived from the cache key: the same inputs give the
# same partition table.
uuid_for() {
        local h
        h=$(printf '%s/%s' "$KEY_FULL" "$1" | sha256sum | cut -c1-32)
        printf '%s-%s-4%s-%x%s-%s\n' "${h:0:8}" "${h:8:4}" "${h:13:3}" $(((0x${h:16:1} & 3) | 8)) "${h:17:3}" "${h:20:12}"
}

# deb_assemble DISK ROOT_LABEL ROOT_ATTRS: a GPT disk image at DISK with a 512 MiB FAT32 ESP
# holding ESP_FILES (an array of "SOURCE::/DEST" pairs; directories are made) and an ext4 root
# made from $ROOT (GPT name ROOT_LABEL, attribute string ROOT_ATTRS for sfdisk, may be empty).
# Sets the ASM_* variables for build-info.txt. Referees: sfdisk --dump, e2fsck -fn, mdir.
deb_assemble() {
        local disk=$1 label=$2 attrs=$3 used inodes root_mib esp_start root_start size esp_img pair src dst d
        local disk_uuid esp_uuid root_uuid fs_uuid vfat_id free_blocks
        disk_uuid=$(uuid_for disk)
        esp_uuid=$(uuid_for esp)
        root_uuid=$(uuid_for root)
        fs_uuid=$(uuid_for root-fs)
        vfat_id=$(uuid_for esp-fs | cut -c1-8)

        used=$(du -sx -B1 "$ROOT" | cut -f1)
        inodes=$(find "$ROOT" -xdev | wc -l)
        # +25 % headroom, plus 64 MiB for the journal, inode tables and group descriptors.
        root_mib=$(((used * 5 / 4 + 64 * MIB + MIB - 1) / MIB))
        esp_start=$((1 * MIB))
        root_start=$((esp_start + ESP_MIB * MIB))
        size=$((root_start + root_mib * MIB + MIB))        # + 1 MiB for the backup GPT
        log "rootfs $((used / MIB)) MiB in $inodes inodes; root partition $root_mib MiB, disk $((size / MIB)) MiB"

        local attr_field=
        [ -z "$attrs" ] || attr_field=", attrs=\"$attrs\""
        truncate -s "$size" "$disk"
        sfdisk --quiet --no-reread --no-tell-kernel "$disk" <<EOF
label: gpt
label-id: $disk_uuid
unit: sectors
sector-size: 512
first-lba: 2048
start=$((esp_start / 512)), size=$((ESP_MIB * MIB / 512)), type=$ESP_TYPE, uuid=$esp_uuid, name="esp"
start=$((root_start / 512)), size=$((root_mib * MIB / 512)), type=$ROOT_TYPE, uuid=$root_uuid, name="$label"$attr_field
EOF

        logged mkfs.vfat -F 32 -n ESP -i "$vfat_id" -S 512 --offset $((esp_start / 512)) "$disk" $((ESP_MIB * 1024))
        esp_img="$disk@@$esp_start"
        local -A made=()
        local dirs=()
        for pair in "${ESP_FILES[@]}"; do
                src=${pair%%::*}
                dst=${pair#*::}
                dirs=()
                d=${dst%/*}
                while [ -n "$d" ]; do
                        dirs=("$d" "${dirs[@]}")
                        d=${d%/*}
                done
                for d in "${dirs[@]}"; do
                        [ -n "${made[$d]:-}" ] || mmd -i "$esp_img" "::$d"
                        made[$d]=1
                done
                mcopy -i "$esp_img" "$src" "::$dst"
        done

        logged mkfs.ext4 -F -q -L root -U "$fs_uuid" -b 4096 \
                -E "offset=$root_start,nodiscard,hash_seed=$fs_uuid,root_owner=0:0" \
                -d "$ROOT" "$disk" "${root_mib}M"

        logged sfdisk --dump "$disk"
        logged e2fsck -fn "$disk?offset=$root_start" || die "e2fsck found errors in the root file system"
        logged mdir -/ -i "$esp_img" ::/
        free_blocks=$(dumpe2fs -h "$disk?offset=$root_start" 2>/dev/null | awk -F: '/^Free blocks/ { gsub(/ /, "", $2); print $2 }')

        # shellcheck disable=SC2034  # read by the caller
        ASM_INFO=(
                "disk-size $size"
                "disk-allocated $(du -B1 "$disk" | cut -f1)"
                "rootfs-used $used"
                "root-free $((free_blocks * 4096))"
                "esp-offset $esp_start"
                "esp-size $((ESP_MIB * MIB))"
                "root-offset $root_start"
                "root-size $((root_mib * MIB))"
                "disk-uuid $disk_uuid"
                "esp-partuuid $esp_uuid"
                "root-partuuid $root_uuid"
        )
        # shellcheck disable=SC2034  # read by the caller
        ASM_SIZE=$size
}

# deb_finish PREFIX: stamps $OUT complete, moves it to $RESULT and keeps only the newest $KEEP
# PREFIX-* entries of the cache.
deb_finish() {
        local prefix=$1 old
        date -u +%Y-%m-%dT%H:%M:%SZ >"$OUT/complete"
        rm -rf --one-file-system "$RESULT"      # an incomplete leftover (no stamp) of an interrupted run
        mv "$OUT" "$RESULT"
        ls -1dt "$CACHE/$prefix"-*/ 2>/dev/null | tail -n +$((KEEP + 1)) | while read -r old; do
                log "pruning old cache entry $old"
                rm -rf --one-file-system "$old"
        done
}

# deb_deliver RESULT NAME OUTDIR: prints the path of RESULT/NAME.raw, or copies the result
# (sparse) to OUTDIR, if one was given, and prints the path of the copy.
deb_deliver() {
        local result=$1 name=$2 outdir=$3 f
        if [ -z "$outdir" ]; then
                echo "$result/$name.raw"
                return
        fi
        mkdir -p "$outdir"
        for f in "$name.raw" SHA256SUMS "$name.efi" packages.txt build-info.txt; do
                cp --sparse=always "$result/$f" "$outdir/$f"
        done
        echo "$(cd "$outdir" && pwd)/$name.raw"
}

# deb_use_cache RESULT NAME OUTDIR WHAT: when RESULT is complete, delivers it and exits; otherwise
# checks that a build can run here, takes the cache lock, and looks again, since another build
# may have finished while we waited for the lock.
deb_use_cache() {
        local result=$1 name=$2 outdir=$3 what=$4
        if [ -f "$result/complete" ]; then
                log "cached: $result"
                deb_deliver "$result" "$name" "$outdir"
                exit 0
        fi
        [ "$(id -u)" = 0 ] || die "building $what needs root (debootstrap, chroot); the cache $result is empty"
        [ "$(uname -m)" = x86_64 ] || die "only x86-64 hosts are supported"
        deb_lock
        if [ -f "$result/complete" ]; then
                log "cached: $result (built while we waited for the lock)"
                deb_deliver "$result" "$name" "$outdir"
                exit 0
        fi
}
