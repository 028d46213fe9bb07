#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# build-usr-ddi.sh [OUTDIR] — builds imprint's second test OS image, a /usr-only Debian trixie
# as image-based desktops ship it, in versions 1, 2, 3 and a broken 4, and prints the directory
# that holds them on stdout (one line).
#
# How: the Debian tree is built once (debootstrap + apt in a chroot, as build-ddi.sh does, from
# the same cached tarball and .debs, with lib-debian.sh), its /etc moved to /usr/share/factory/etc.
# Then, per version, only /usr/lib/os-release (IMAGE_VERSION), /usr/lib/imprint-usr/version and,
# in version 4, a unit that boot-complete.target requires and that fails, change; trixie's
# systemd-repart (257), run inside the chroot with --offline=yes (no loop devices, no
# device-mapper: the host kernel has none), makes the DDI from build-time definitions:
#
#   partition 1  esp             512 MiB FAT32, /EFI/Linux/imprint-usr_N.efi (the UKI)
#   partition 2  usr             squashfs of /usr (lz4), Verity=data, GPT name imprint-usr_N
#   partition 3  usr-verity      Verity=hash, GPT name imprint-usr_N
#   partition 4  usr-verity-sig  Verity=signature (PKCS#7 of the root hash, by a test key made
#                                with openssl for this build and thrown away), GPT name imprint-usr_N
#
# repart derives the usr partition UUID from the first and the verity UUID from the last 128 bits
# of the root hash (usrhash). The UKI (kernel + dracut systemd initrd, built once) gets the command
# line "usrhash=HASH mount.usr=/dev/mapper/usr mount.usrfstype=squashfs mount.usrflags=ro …": no
# root=, root comes from gpt-auto. mount.usr= is needed with systemd 257: its gpt-auto generator
# does not mount /usr, and systemd-fstab-generator mounts /usr only when mount.usr= is set; the
# veritysetup generator opens /dev/mapper/usr from usrhash=. In the initrd, imprint-populate-root
# (tests/image/rootfs-usr/usr/lib/dracut/modules.d/95imprint-usr) gives an empty root the merged-
# /usr links, the top-level directories and /etc from /usr/share/factory/etc (cp -n: never over
# what the installer wrote). In the image: /usr/lib/repart.d (ESP, usr/verity/sig A and B slots,
# root and home with FactoryReset=yes), /usr/lib/sysupdate.d (usr, verity, signature, UKI with
# boot counting), imprint-lifecycle.service (the guest side of the life-cycle test).
#
# Why repart and not mkosi: repart is what mkosi runs underneath for these partitions; calling it
# directly reuses the cached debootstrap/apt of the classic image, needs no loop devices or
# device-mapper, and keeps the whole build in one chroot.
#
# Cache: $IMPRINT_TEST_CACHE/usr-KEY/ (default /var/cache/imprint-test), stamp "complete", the
# newest $IMPRINT_TEST_CACHE_KEEP (default 3) usr-* entries kept. KEY = sha256 of this script,
# lib-debian.sh, the overlay trees (tests/image/rootfs-usr/ and the classic dracut configuration
# it builds on), the suite, mirror, package lists, command line and versions. Files in usr-KEY/:
#
#   imprint-usr_N.raw                          the whole DDI of version N (N = 1 2 3 4)
#   imprint-usr_N.usr.UUID.raw                 the usr partition's contents (UUID: 32 hex digits,
#   imprint-usr_N.usr-verity.UUID.raw          the partition's UUID without dashes: the file names
#   imprint-usr_N.usr-verity-sig.UUID.raw      of repart --split=yes; sysupdate.d reads @u there)
#   imprint-usr_N.efi                          the UKI
#   SHA256SUMS                                 of all of the above
#   test-cert.pem                              the certificate of the signing key (no key kept)
#   build-info.txt                             key, usrhash/UUIDs/sizes per version, timings
#   packages.txt                               dpkg -l of the image
#
# The cached files are shared: copy before writing (OUTDIR gets a sparse copy of everything).
# Environment: IMPRINT_TEST_CACHE, IMPRINT_TEST_CACHE_KEEP, IMPRINT_TEST_MIRROR,
# IMPRINT_TEST_VERBOSE=1 (stream the build log to stderr). Needs root. Progress on stderr.
set -euo pipefail

# Host packages this script runs (installed with apt when missing); the image's own tools
# (repart, ukify, veritysetup, openssl, sysupdate, dissect) run from trixie inside the chroot.
host_packages=(
        debootstrap debian-archive-keyring util-linux fdisk mtools coreutils findutils
        python3         # reads sfdisk's JSON after the sysupdate check
)

SUITE=trixie
MIRROR=${IMPRINT_TEST_MIRROR:-http://deb.debian.org/debian}
IMAGE_ID=imprint-usr
VERSIONS=(1 2 3 4)
BROKEN_VERSION=4
# usrhash= and the rest are added per version.
CMDLINE_TAIL="mount.usr=/dev/mapper/usr mount.usrfstype=squashfs mount.usrflags=ro console=ttyS0 systemd.firstboot=off systemd.show_status=1 rw"
# lz4, not zstd or xz: under TCG the guest reads /usr through dm-verity (sha256-generic) and the
# squashfs decompressor; with zstd the first boot's generators took longer than PID 1's 90 s
# limit for them on a loaded 2-core host ("Failed to fork off sandboxing environment for
# executing generators: Protocol error", then "Failed to start up manager"). lz4 decompresses
# several times faster for about a quarter more bytes.
SQUASHFS_COMPRESSION=lz4

image_packages=(
        dracut zstd
        systemd systemd-sysv udev dbus kmod util-linux fdisk e2fsprogs
        systemd-boot systemd-boot-efi systemd-boot-tools systemd-ukify
        systemd-cryptsetup cryptsetup-bin dmsetup
        tpm2-tools libtss2-esys-3.0.2-0t64 libtss2-rc0t64 libtss2-mu-4.0.1-0t64 libtss2-tcti-device0t64
        systemd-homed libpam-systemd libnss-systemd
        # sysupdate (and, for local files, systemd-container's import tools), repart (the image's
        # own repart.d; also the build tool here, with squashfs-tools, dosfstools and openssl).
        systemd-container systemd-repart squashfs-tools dosfstools openssl
        tzdata
)
kernel_packages=(linux-image-amd64)

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
OVERLAY=$HERE/rootfs-usr
CLASSIC_DRACUT_CONF=$HERE/rootfs/etc/dracut.conf.d/50-imprint-test.conf
CACHE=${IMPRINT_TEST_CACHE:-/var/cache/imprint-test}
KEEP=${IMPRINT_TEST_CACHE_KEEP:-3}
OUTDIR=${1:-}
LIB_TAG=build-usr-ddi
# shellcheck source-path=SCRIPTDIR source=lib-debian.sh
. "$HERE/lib-debian.sh"

cache_key_input() {
        echo "script $(sha256sum <"${BASH_SOURCE[0]}" | cut -d' ' -f1)"
        echo "library $(sha256sum <"$HERE/lib-debian.sh" | cut -d' ' -f1)"
        echo "classic-dracut $(sha256sum <"$CLASSIC_DRACUT_CONF" | cut -d' ' -f1)"
        echo "suite $SUITE"
        echo "mirror $MIRROR"
        echo "packages ${image_packages[*]}"
        echo "kernel ${kernel_packages[*]}"
        echo "cmdline $CMDLINE_TAIL"
        echo "versions ${VERSIONS[*]} broken $BROKEN_VERSION"
        deb_cache_key_tree "$OVERLAY"
}

KEY_FULL=$(cache_key_input | sha256sum | cut -d' ' -f1)
KEY=${KEY_FULL:0:16}
RESULT=$CACHE/usr-$KEY

deliver() {
        if [ -z "$OUTDIR" ]; then
                echo "$RESULT"
                return
        fi
        mkdir -p "$OUTDIR"
        cp --sparse=always "$RESULT"/* "$OUTDIR/"
        (cd "$OUTDIR" && pwd)
}

if [ -f "$RESULT/complete" ]; then
        log "cached: $RESULT"
        deliver
        exit 0
fi
[ "$(id -u)" = 0 ] || die "building the usr test image needs root (debootstrap, chroot); the cache $RESULT is empty"
[ "$(uname -m)" = x86_64 ] || die "only x86-64 hosts are supported"
deb_lock
if [ -f "$RESULT/complete" ]; then
        log "cached: $RESULT (built while we waited for the lock)"
        deliver
        exit 0
fi
# Timings count from here: the wait for another build's lock is not this build's cost.
log "lock taken after $(elapsed "$T0")s"
T0=$EPOCHREALTIME
deb_install_host_packages "${host_packages[@]}"
deb_begin_build
log "building $IMAGE_ID versions ${VERSIONS[*]} (key $KEY) in $WORK; log: $BUILDLOG"

# ---------------------------------------------------------------------------------------------
phase debootstrap
deb_debootstrap

phase packages
deb_prepare_root "$CLASSIC_DRACUT_CONF"
deb_apt install "${image_packages[@]}"
deb_install_kernel "${kernel_packages[@]}"
logged in_root --apt apt-get -q autoclean
in_root dpkg-query -W -f='${Package} ${Version}\n' >"$OUT/packages.txt"
log "kernel $KVER, systemd $(awk '$1 == "systemd" { print $2 }' "$OUT/packages.txt")"

# ---------------------------------------------------------------------------------------------
phase configure
deb_install_overlay "$OVERLAY"
# Units that must run on the first boot of an empty root: enabled in /usr (the /etc symlinks
# the packages made come along in /usr/share/factory/etc, but /usr is what every boot has).
install -d -m 755 "$ROOT/usr/lib/systemd/system/multi-user.target.wants"
ln -sfn ../imprint-lifecycle.service "$ROOT/usr/lib/systemd/system/multi-user.target.wants/imprint-lifecycle.service"
ln -sfn ../systemd-homed.service "$ROOT/usr/lib/systemd/system/multi-user.target.wants/systemd-homed.service"
deb_set_identity "$IMAGE_ID" 0
for tool in /usr/lib/systemd/systemd-bless-boot /usr/lib/systemd/systemd-sysupdate /usr/bin/systemd-repart \
        /usr/bin/homectl /usr/lib/systemd/boot/efi/systemd-bootx64.efi /usr/lib/systemd/system-generators/systemd-veritysetup-generator; do
        [ -e "$ROOT$tool" ] || die "the image lacks $tool"
done

phase trim
# deb_trim empties /boot and /var/tmp: the kernel is kept aside for the UKIs.
cp "$ROOT/boot/vmlinuz-$KVER" "$WORK/vmlinuz"
deb_trim

# The initrd, once for all versions (its contents do not depend on the version).
phase initrd
logged in_root dracut --force --kver "$KVER" "/var/tmp/initrd.img-$KVER"
cp "$WORK/vmlinuz" "$ROOT/var/tmp/vmlinuz-$KVER"
initrd_list=$(in_root lsinitrd "/var/tmp/initrd.img-$KVER" 2>/dev/null)
for f in usr/lib/systemd/systemd-veritysetup usr/lib/systemd/system-generators/systemd-veritysetup-generator \
        usr/lib/systemd/system-generators/systemd-gpt-auto-generator usr/lib/systemd/systemd-cryptsetup \
        usr/lib/systemd/system/imprint-populate-root.service dm-verity.ko squashfs.ko libcryptsetup-token-systemd-tpm2.so; do
        grep -q "$f" <<<"$initrd_list" || die "the initrd lacks $f"
done
# The image's root starts empty: /etc lives in /usr/share/factory/etc (copied by the initrd's
# imprint-populate-root, and by systemd-tmpfiles' "C" lines for the files systemd lists).
install -d -m 755 "$ROOT/usr/share/factory/etc"
cp -a "$ROOT/etc/." "$ROOT/usr/share/factory/etc/"
rm -f "$ROOT/usr/share/factory/etc/dracut.conf.d/51-imprint-usr.conf" "$ROOT/usr/share/factory/etc/dracut.conf.d/50-imprint-test.conf"

# The in-image repart.d: the layout an installer makes (imprint reads it) and the one systemd-repart
# would make on a factory reset. B slots are fixed-size so that every later version fits: the size
# of the uncompressed /usr (the lz4 squashfs is about 2/3 of it: the kernel modules are xz
# already), rounded up to 64 MiB.
usr_bytes=$(du -sb "$ROOT/usr" | cut -f1)
round_up() { echo $((($1 + $2 - 1) / $2 * $2)); }
SLOT_USR=$(round_up "$usr_bytes" $((64 * MIB)))
SLOT_VERITY=$(round_up $((SLOT_USR / 64)) "$MIB")       # hash tree ≈ 1/127 of the data
SLOT_SIG=$((16 * 1024))                                 # repart writes 16 KiB signature partitions
log "/usr is $((usr_bytes / MIB)) MiB uncompressed; slots: usr $((SLOT_USR / MIB)) MiB, verity $((SLOT_VERITY / MIB)) MiB, signature 16 KiB"
rd=$ROOT/usr/lib/repart.d
install -d -m 755 "$rd"
part() {        # part FILE LINES...: one repart.d file
        local f=$1
        shift
        {
                echo "# imprint usr test image (tests/image/build-usr-ddi.sh); see repart.d(5)."
                echo "[Partition]"
                printf '%s\n' "$@"
        } >"$rd/$f"
}
part 00-esp.conf Type=esp Format=vfat SizeMinBytes=512M SizeMaxBytes=512M
part 10-usr-a.conf Type=usr Label=imprint-usr_%A Verity=data VerityMatchKey=usr "SizeMinBytes=$SLOT_USR" "SizeMaxBytes=$SLOT_USR" ReadOnly=yes
part 11-usr-verity-a.conf Type=usr-verity Label=imprint-usr_%A Verity=hash VerityMatchKey=usr "SizeMinBytes=$SLOT_VERITY" "SizeMaxBytes=$SLOT_VERITY" ReadOnly=yes
part 12-usr-verity-sig-a.conf Type=usr-verity-sig Label=imprint-usr_%A Verity=signature VerityMatchKey=usr "SizeMinBytes=$SLOT_SIG" "SizeMaxBytes=$SLOT_SIG"
part 20-usr-b.conf Type=usr Label=_empty "SizeMinBytes=$SLOT_USR" "SizeMaxBytes=$SLOT_USR" ReadOnly=yes
part 21-usr-verity-b.conf Type=usr-verity Label=_empty "SizeMinBytes=$SLOT_VERITY" "SizeMaxBytes=$SLOT_VERITY" ReadOnly=yes
part 22-usr-verity-sig-b.conf Type=usr-verity-sig Label=_empty "SizeMinBytes=$SLOT_SIG" "SizeMaxBytes=$SLOT_SIG"
part 50-root.conf Type=root Format=ext4 FactoryReset=yes SizeMinBytes=1G
part 60-home.conf Type=home Format=ext4 FactoryReset=yes SizeMinBytes=256M

# ---------------------------------------------------------------------------------------------
# The signing key, for this build only: the certificate goes to the cache, the key is deleted.
phase key
install -d -m 700 "$ROOT/var/tmp/sign"
logged in_root openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=imprint usr test image ($KEY)" \
        -keyout /var/tmp/sign/key.pem -out /var/tmp/sign/cert.pem
cp "$ROOT/var/tmp/sign/cert.pem" "$OUT/test-cert.pem"

# Build-time repart definitions (outside /usr: not part of the image).
bd=$ROOT/var/tmp/build-repart.d
install -d -m 755 "$bd"
build_definitions() {   # build_definitions VERSION
        local v=$1 label=${IMAGE_ID}_$1
        rm -f "$bd"/*.conf
        printf '[Partition]\nType=esp\nFormat=vfat\nLabel=esp\nSizeMinBytes=512M\nSizeMaxBytes=512M\nSplitName=-\n' >"$bd/00-esp.conf"
        printf '[Partition]\nType=usr\nLabel=%s\nFormat=squashfs\nCopyFiles=/usr:/\nVerity=data\nVerityMatchKey=usr\nMinimize=best\nCompression=%s\nSplitName=usr.%%U\n' \
                "$label" "$SQUASHFS_COMPRESSION" >"$bd/10-usr.conf"
        printf '[Partition]\nType=usr-verity\nLabel=%s\nVerity=hash\nVerityMatchKey=usr\nMinimize=best\nSplitName=usr-verity.%%U\n' "$label" >"$bd/20-usr-verity.conf"
        printf '[Partition]\nType=usr-verity-sig\nLabel=%s\nVerity=signature\nVerityMatchKey=usr\nSplitName=usr-verity-sig.%%U\n' "$label" >"$bd/30-usr-verity-sig.conf"
        : "$v"
}

# set_version VERSION: the only differences between the versions.
set_version() {
        local v=$1
        sed -i 's/^IMAGE_VERSION=.*/IMAGE_VERSION='"$v"'/' "$ROOT/usr/lib/os-release"
        grep -q "^IMAGE_VERSION=$v\$" "$ROOT/usr/lib/os-release" || die "os-release has no IMAGE_VERSION=$v"
        echo "$v" >"$ROOT/usr/lib/imprint-usr/version"
        local unit=$ROOT/usr/lib/systemd/system/imprint-broken.service
        local link=$ROOT/usr/lib/systemd/system/boot-complete.target.requires/imprint-broken.service
        if [ "$v" = "$BROKEN_VERSION" ]; then
                install -m 644 "$ROOT/usr/lib/imprint-usr/broken/imprint-broken.service" "$unit"
                install -d -m 755 "${link%/*}"
                ln -sfn ../imprint-broken.service "$link"
        else
                rm -f "$unit" "$link"
                rmdir "${link%/*}" 2>/dev/null || true
        fi
        # ConditionNeedsUpdate=/etc compares /etc/.updated with /usr's mtime.
        touch -r "$ROOT/usr" "$ROOT/usr/share/factory/etc/.updated"
}

INFO=()
for v in "${VERSIONS[@]}"; do
        name=${IMAGE_ID}_$v
        phase "version-$v"
        set_version "$v"
        build_definitions "$v"
        rm -rf "$ROOT/var/tmp/out"
        install -d -m 755 "$ROOT/var/tmp/out"
        # --seed: the same inputs give the same disk and ESP UUIDs; usr and verity UUIDs come
        # from the root hash anyway.
        seed=$(printf '%s/%s' "$KEY_FULL" "$v" | sha256sum | cut -c1-32)
        in_root systemd-repart --empty=create --size=auto --offline=yes --dry-run=no --split=yes \
                --definitions=/var/tmp/build-repart.d --seed="$seed" \
                --private-key=/var/tmp/sign/key.pem --certificate=/var/tmp/sign/cert.pem \
                --json=short "/var/tmp/out/$name.raw" >"$WORK/repart-$v.json" 2>>"$BUILDLOG" \
                || die "systemd-repart failed for version $v"
        roothash=$(grep -o '"roothash":"[0-9a-f]*"' "$WORK/repart-$v.json" | head -n 1 | cut -d'"' -f4)
        [ ${#roothash} = 64 ] || die "no root hash in repart's output for version $v"
        cmdline="usrhash=$roothash $CMDLINE_TAIL"
        logged in_root ukify build \
                --linux="/var/tmp/vmlinuz-$KVER" \
                --initrd="/var/tmp/initrd.img-$KVER" \
                --os-release=@/usr/lib/os-release \
                --uname="$KVER" \
                --cmdline="$cmdline" \
                --output="/var/tmp/out/$name.efi"
        # The UKI onto the DDI's ESP, found by its offset in the partition table.
        esp_start=$(sfdisk -J "$ROOT/var/tmp/out/$name.raw" | awk '/"start"/ { gsub(/[^0-9]/, ""); print; exit }')
        esp_img="$ROOT/var/tmp/out/$name.raw@@$((esp_start * 512))"
        mmd -i "$esp_img" ::/EFI ::/EFI/Linux
        mcopy -i "$esp_img" "$ROOT/var/tmp/out/$name.efi" "::/EFI/Linux/$name.efi"
        mv "$ROOT/var/tmp/out/"* "$OUT/"
        usr_file=$(cd "$OUT" && ls "$name".usr.*.raw)
        verity_file=$(cd "$OUT" && ls "$name".usr-verity.*.raw)
        sig_file=$(cd "$OUT" && ls "$name".usr-verity-sig.*.raw)
        usr_size=$(stat -c %s "$OUT/$usr_file")
        [ "$usr_size" -le $((SLOT_USR * 4 / 5)) ] || die "version $v's usr ($usr_size bytes) leaves less than 20 % of the B slot ($SLOT_USR) free"
        INFO+=("version $v usrhash $roothash"
                "version $v usr $usr_file $usr_size"
                "version $v usr-verity $verity_file $(stat -c %s "$OUT/$verity_file")"
                "version $v usr-verity-sig $sig_file $(stat -c %s "$OUT/$sig_file")"
                "version $v uki $name.efi $(stat -c %s "$OUT/$name.efi")"
                "version $v cmdline $cmdline")
        log "version $v: usrhash $roothash, usr $((usr_size / MIB)) MiB"
done
rm -rf "$ROOT/var/tmp/sign"

# ---------------------------------------------------------------------------------------------
# What stock tools say about the result (trixie's, in the chroot; the key is gone by now).
phase verify
verify_version() {      # verify_version VERSION: signature, verity, partition table, sysupdate
        local v=$1 name=${IMAGE_ID}_$1 hash usr verity sig
        hash=$(printf '%s\n' "${INFO[@]}" | awk -v v="$v" '$1 == "version" && $2 == v && $3 == "usrhash" { print $4 }')
        usr=$(cd "$OUT" && ls "$name".usr.*.raw)
        verity=$(cd "$OUT" && ls "$name".usr-verity.*.raw)
        sig=$(cd "$OUT" && ls "$name".usr-verity-sig.*.raw)
        [ "${usr#"$name".usr.}" = "${hash:0:32}.raw" ] || die "$usr: its UUID is not the first half of usrhash"
        [ "${verity#"$name".usr-verity.}" = "${hash:32:32}.raw" ] || die "$verity: its UUID is not the second half of usrhash"
        install -d -m 755 "$ROOT/var/tmp/verify"
        ln -f "$OUT/$usr" "$OUT/$verity" "$OUT/$sig" "$OUT/test-cert.pem" "$ROOT/var/tmp/verify/"
        in_root sh -euc '
                cd /var/tmp/verify
                veritysetup verify "$1" "$2" "$4"
                tr -d "\000" <"$3" >sig.json
                python3 -c "
import base64, json, sys
d = json.load(open(\"sig.json\"))
assert d[\"rootHash\"] == sys.argv[1], \"rootHash differs\"
open(\"sig.der\", \"wb\").write(base64.b64decode(d[\"signature\"]))
" "$4"
                printf %s "$4" >roothash.txt
                openssl cms -verify -binary -inform DER -in sig.der -content roothash.txt \
                        -CAfile test-cert.pem -purpose any -out /dev/null
                ' verify "$usr" "$verity" "$sig" "$hash" >>"$BUILDLOG" 2>&1 \
                || die "version $v: veritysetup verify or the signature check failed (see the log)"
        rm -rf "$ROOT/var/tmp/verify"
        logged sfdisk --dump "$OUT/$name.raw"
        mdir -i "$OUT/$name.raw@@$((1 * MIB))" ::/EFI/Linux | grep -q "$name" || die "$name.raw: the UKI is not on the ESP"
}
for v in "${VERSIONS[@]}"; do
        verify_version "$v"
done
# systemd-dissect --validate checks the DDI against the Discoverable Partitions Specification; it
# needs a loop device (not device-mapper: it does not open verity for this).
DISSECT_INFO="dissect-validate skipped (no loop device)"
if [ -e /dev/loop-control ]; then
        ln -f "$OUT/${IMAGE_ID}_1.raw" "$ROOT/var/tmp/v1.raw"
        logged in_root systemd-dissect --validate --read-only /var/tmp/v1.raw \
                || die "systemd-dissect --validate rejects ${IMAGE_ID}_1.raw"
        rm -f "$ROOT/var/tmp/v1.raw"
        DISSECT_INFO="dissect-validate ok"
fi
log "$DISSECT_INFO"

# Stock sysupdate (trixie's, in the chroot) on the image's own sysupdate.d, with only the paths
# changed: the target is a copy of the v1 DDI with _empty B slots sized as the image's repart.d
# says (a file: no loop device needed), the source a directory with the v2 artefacts, $BOOT a
# directory. list must offer 2, check-new must say 2, update must fill the B slots with the v2
# labels and the UUIDs that usrhash= of v2 names, and install the UKI with boot counting.
phase sysupdate-check
sc=$ROOT/var/tmp/sysupdate-check
install -d -m 755 "$sc/sysupdate.d" "$sc/updates" "$sc/boot/EFI/Linux"
for f in "$OUT/${IMAGE_ID}_2".usr*.raw "$OUT/${IMAGE_ID}_2.efi"; do ln -f "$f" "$sc/updates/"; done
cp "$OUT/${IMAGE_ID}_1.efi" "$sc/boot/EFI/Linux/${IMAGE_ID}_1.efi"
cp --sparse=always "$OUT/${IMAGE_ID}_1.raw" "$sc/disk.raw"
truncate -s +$((SLOT_USR + SLOT_VERITY + 2 * MIB)) "$sc/disk.raw"
logged sfdisk --no-reread --no-tell-kernel --append "$sc/disk.raw" <<EOF2
size=$((SLOT_USR / 512)), type=8484680c-9521-48c6-9c11-b0720656f69e, name="_empty"
size=$((SLOT_VERITY / 512)), type=77ff5f63-e7b6-4633-acf4-1565b864c0e6, name="_empty"
size=$((SLOT_SIG / 512)), type=e7bb33fb-06cf-4e81-8273-e543b413e2e2, name="_empty"
EOF2
for f in "$ROOT"/usr/lib/sysupdate.d/*.transfer; do
        sed -e 's|^Path=/run/imprint-updates$|Path=/var/tmp/sysupdate-check/updates|' \
                -e 's|^Path=auto$|Path=/var/tmp/sysupdate-check/disk.raw|' \
                -e 's|^Path=/EFI/Linux$|Path=/var/tmp/sysupdate-check/boot/EFI/Linux|' \
                -e '/^PathRelativeTo=/d' "$f" >"$sc/sysupdate.d/${f##*/}"
done
# The chroot's os-release says the last version built; ProtectVersion=%A reads it.
sed -i 's/^IMAGE_VERSION=.*/IMAGE_VERSION=1/' "$ROOT/usr/lib/os-release"
sysupdate() { in_root /usr/lib/systemd/systemd-sysupdate --definitions=/var/tmp/sysupdate-check/sysupdate.d --no-pager "$@"; }
sysupdate list >"$WORK/sysupdate-list.txt" 2>&1 || { cat "$WORK/sysupdate-list.txt" >>"$BUILDLOG"; die "systemd-sysupdate list failed"; }
cat "$WORK/sysupdate-list.txt" >>"$BUILDLOG"
new=$(sysupdate check-new 2>>"$BUILDLOG") || die "systemd-sysupdate check-new found no update"
[ "$new" = 2 ] || die "systemd-sysupdate check-new offered '$new', not 2"
logged sysupdate update || die "systemd-sysupdate update failed"
logged sfdisk --dump "$sc/disk.raw"
hash2=$(printf '%s\n' "${INFO[@]}" | awk '$1 == "version" && $2 == 2 && $3 == "usrhash" { print $4 }')
sfdisk -J "$sc/disk.raw" >"$WORK/updated.json"
python3 - "$WORK/updated.json" "$hash2" <<'EOF2' || die "after systemd-sysupdate update the B slots do not hold version 2"
import json, sys, uuid
parts = json.load(open(sys.argv[1]))["partitiontable"]["partitions"]
h = sys.argv[2]
want = {"8484680C-9521-48C6-9C11-B0720656F69E": str(uuid.UUID(h[:32])).upper(),
        "77FF5F63-E7B6-4633-ACF4-1565B864C0E6": str(uuid.UUID(h[32:])).upper()}
b = [p for p in parts if p.get("name") == "imprint-usr_2"]
assert len(b) == 3, "three partitions named imprint-usr_2: %r" % parts
for p in b:
    if p["type"] in want:
        assert p["uuid"] == want[p["type"]], "%s has UUID %s, not %s" % (p["type"], p["uuid"], want[p["type"]])
assert not [p for p in parts if p.get("name") == "_empty"], "an _empty slot is left"
EOF2
[ -f "$sc/boot/EFI/Linux/${IMAGE_ID}_2+1-0.efi" ] || die "systemd-sysupdate did not install ${IMAGE_ID}_2+1-0.efi: $(ls "$sc/boot/EFI/Linux")"
SYSUPDATE_INFO="sysupdate-check list=$(awk '$2 ~ /^[0-9]+$/ { printf "%s:%s,", $2, $NF }' "$WORK/sysupdate-list.txt")check-new=$new update=ok uki=$(ls "$sc/boot/EFI/Linux" | paste -sd,)"
log "$SYSUPDATE_INFO"
rm -rf "$sc"

phase checksum
(cd "$OUT" && sha256sum -- *.raw *.efi test-cert.pem >SHA256SUMS)

phase end
{
        echo "image-id $IMAGE_ID"
        echo "key $KEY_FULL"
        echo "suite $SUITE"
        echo "mirror $MIRROR"
        echo "kernel $KVER"
        echo "systemd $(awk '$1 == "systemd" { print $2 }' "$OUT/packages.txt")"
        echo "squashfs $SQUASHFS_COMPRESSION"
        echo "usr-uncompressed $usr_bytes"
        echo "slot-usr $SLOT_USR"
        echo "slot-usr-verity $SLOT_VERITY"
        echo "slot-usr-verity-sig $SLOT_SIG"
        printf '%s\n' "${INFO[@]}"
        echo "$SYSUPDATE_INFO"
        echo "$DISSECT_INFO"
        echo "layout-v1 $(sfdisk -J "$OUT/${IMAGE_ID}_1.raw" | tr -d ' \n')"
        echo "built $(date -u +%Y-%m-%dT%H:%M:%SZ) in $(elapsed "$T0")s"
        printf 'phase %s\n' "${TIMINGS[@]}"
} >"$OUT/build-info.txt"
deb_finish usr
log "built in $(elapsed "$T0")s: $RESULT"
deliver
