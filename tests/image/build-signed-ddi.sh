#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# build-signed-ddi.sh [OUTDIR] — builds the Secure Boot variant of imprint's test OS image (issue
# 17) and prints its path on stdout: the image of tests/image/build-ddi.sh (Debian trixie,
# systemd 257, same name imprint-test_1, same partitions, same overlay tests/image/rootfs/), plus
# its own test keys, with everything the firmware runs signed by them:
#
#   ESP   /EFI/Linux/imprint-test_1.efi   the UKI, signed (sbsign, through ukify) by the db key,
#                                         with .pcrsig + .pcrpkey: the signed PCR 11 policy of
#                                         systemd-measure for the four boot phases, made with a
#                                         separate RSA-2048 PCR key
#         /loader/keys/auto/{PK,KEK,db}.auth   for systemd-boot's enrollment in setup mode
#                                         (secure-boot-enroll in loader.conf; the installer
#                                         writes that): efitools' cert-to-efi-sig-list and
#                                         sign-efi-sig-list, PK.auth signed by PK, KEK.auth by
#                                         PK, db.auth by KEK (the UEFI chain)
#   root  /usr/lib/systemd/boot/efi/systemd-bootx64.efi.signed   systemd-boot signed by the db
#                                         key (installers prefer .signed, as bootctl does)
#         /usr/lib/imprint-test/check.d/40-secureboot   (tests/image/rootfs-sb/) the firmware's
#                                         Secure Boot state and the TPM2 tokens' PCRs, each boot
#         sbsigntool, efitools            in the image (sbverify, efi-readvar, efi-updatevar for
#                                         the guest; they signed the above in the chroot)
#
# The keys: one RSA-2048 key and self-signed certificate each for PK, KEK and db (openssl req
# -x509, CN "imprint test PK|KEK|db", 10 years), one RSA-2048 key pair for the PCR policy, and one
# signature owner GUID, all made by this build (never committed) and kept in the cache entry's
# keys/ for the tests (e.g. a dbx update signed by the KEK). No private key is left in the image.
#
# Cache: $IMPRINT_TEST_CACHE/sbddi-KEY/ (not "ddi-…", so that build-ddi.sh's pruning of its
# newest $IMPRINT_TEST_CACHE_KEEP entries never counts these, nor ours its), KEY = first 16 hex
# digits of the sha256 of this script, lib-debian.sh, tests/image/rootfs/ and
# tests/image/rootfs-sb/, suite, mirror, packages and command line. build-ddi.sh, its key and its
# bytes are untouched. Files in sbddi-KEY/: imprint-test_1.raw, SHA256SUMS, imprint-test_1.efi,
# packages.txt, build-info.txt (as build-ddi.sh), keys/ (PK KEK db: .key .crt .esl .auth; pcr.key
# pcr.pub.pem; owner-guid), systemd-bootx64.efi.signed, sbverify.txt (what sbverify said).
#
# Environment: as build-ddi.sh. Needs root. Progress on stderr; stdout has only the path.
set -euo pipefail

host_packages=(
        debootstrap debian-archive-keyring util-linux fdisk dosfstools mtools e2fsprogs
        coreutils findutils openssl binutils   # openssl: the keys; objdump: the UKI's sections
)

SUITE=trixie
MIRROR=${IMPRINT_TEST_MIRROR:-http://deb.debian.org/debian}
IMAGE_ID=imprint-test
IMAGE_VERSION=1
NAME=${IMAGE_ID}_${IMAGE_VERSION}
CMDLINE="console=ttyS0 systemd.firstboot=off systemd.show_status=1 rw"

# build-ddi.sh's list, then what signs (and, in the guest, reads and updates) Secure Boot.
image_packages=(
        dracut zstd
        systemd systemd-sysv udev dbus kmod util-linux fdisk e2fsprogs
        systemd-boot-efi systemd-boot-tools systemd-ukify
        systemd-cryptsetup cryptsetup-bin
        tpm2-tools libtss2-esys-3.0.2-0t64 libtss2-rc0t64 libtss2-mu-4.0.1-0t64 libtss2-tcti-device0t64
        systemd-homed libpam-systemd
        pamtester python3 tzdata
        sbsigntool efitools
)
kernel_packages=(linux-image-amd64)

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
OVERLAY=$HERE/rootfs
OVERLAY_SB=$HERE/rootfs-sb
CACHE=${IMPRINT_TEST_CACHE:-/var/cache/imprint-test}
KEEP=${IMPRINT_TEST_CACHE_KEEP:-3}
OUTDIR=${1:-}
LIB_TAG=build-signed-ddi
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
        deb_cache_key_tree "$OVERLAY"
        echo "overlay-sb"
        deb_cache_key_tree "$OVERLAY_SB"
}

KEY_FULL=$(cache_key_input | sha256sum | cut -d' ' -f1)
KEY=${KEY_FULL:0:16}
RESULT=$CACHE/sbddi-$KEY
IMAGE=$NAME.raw

# With OUTDIR: deb_deliver's files, plus the keys and the signed boot loader.
deliver_all() {
        local path
        path=$(deb_deliver "$RESULT" "$NAME" "$OUTDIR")
        if [ -n "$OUTDIR" ]; then
                rm -rf "$OUTDIR/keys"
                cp -a "$RESULT/keys" "$RESULT/systemd-bootx64.efi.signed" "$RESULT/sbverify.txt" "$OUTDIR/"
        fi
        echo "$path"
}
if [ -f "$RESULT/complete" ]; then
        log "cached: $RESULT"
        deliver_all
        exit 0
fi
[ "$(id -u)" = 0 ] || die "building the signed test image needs root (debootstrap, chroot); the cache $RESULT is empty"
[ "$(uname -m)" = x86_64 ] || die "only x86-64 hosts are supported"
deb_lock
if [ -f "$RESULT/complete" ]; then
        log "cached: $RESULT (built while we waited for the lock)"
        deliver_all
        exit 0
fi
deb_install_host_packages "${host_packages[@]}"
deb_begin_build
log "building the signed $NAME (key $KEY) in $WORK; log: $BUILDLOG"

phase keys
# The private keys live in $OUT/keys (mode 700) and, while signing, in the chroot's /var/tmp/sb
# (removed again below; deb_trim empties /var/tmp as well).
KEYS=$OUT/keys
install -d -m 700 "$KEYS"
for k in PK KEK db; do
        logged openssl req -new -x509 -newkey rsa:2048 -nodes -sha256 -days 3650 \
                -subj "/CN=imprint test $k/" -keyout "$KEYS/$k.key" -out "$KEYS/$k.crt"
done
logged openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$KEYS/pcr.key"
openssl pkey -in "$KEYS/pcr.key" -pubout -out "$KEYS/pcr.pub.pem" 2>>"$BUILDLOG"
OWNER=$(uuid_for sb-owner)
echo "$OWNER" >"$KEYS/owner-guid"
chmod 600 "$KEYS"/*.key

phase debootstrap
deb_debootstrap

phase packages
deb_prepare_root "$OVERLAY/etc/dracut.conf.d/50-imprint-test.conf"
deb_apt install "${image_packages[@]}"
deb_install_kernel "${kernel_packages[@]}"
logged in_root --apt apt-get -q autoclean
in_root dpkg-query -W -f='${Package} ${Version}\n' >"$OUT/packages.txt"
log "kernel $KVER, systemd $(awk '$1 == "systemd" { print $2 }' "$OUT/packages.txt"), sbsigntool $(awk '$1 == "sbsigntool" { print $2 }' "$OUT/packages.txt"), efitools $(awk '$1 == "efitools" { print $2 }' "$OUT/packages.txt")"

phase configure
deb_install_overlay "$OVERLAY"
deb_install_overlay "$OVERLAY_SB"
install -d -m 755 "$ROOT/usr/lib/imprint-test/check.d"
logged in_root systemctl enable imprint-check.service
deb_set_identity "$IMAGE_ID" "$IMAGE_VERSION"

phase initrd
logged in_root dracut --force --kver "$KVER" "/var/tmp/initrd.img-$KVER"

phase sign
SB=$ROOT/var/tmp/sb
install -d -m 700 "$SB"
cp "$KEYS"/* "$SB/"
# The key databases: an EFI_SIGNATURE_LIST per certificate (owner GUID $OWNER), as
# time-based authenticated writes signed by the key one level up (PK signs itself in setup mode).
logged in_root sh -euc '
        cd /var/tmp/sb
        for k in PK KEK db; do cert-to-efi-sig-list -g "$1" "$k.crt" "$k.esl"; done
        sign-efi-sig-list -g "$1" -k PK.key -c PK.crt PK PK.esl PK.auth
        sign-efi-sig-list -g "$1" -k PK.key -c PK.crt KEK KEK.esl KEK.auth
        sign-efi-sig-list -g "$1" -k KEK.key -c KEK.crt db db.esl db.auth
        sbsign --key db.key --cert db.crt \
                --output /usr/lib/systemd/boot/efi/systemd-bootx64.efi.signed \
                /usr/lib/systemd/boot/efi/systemd-bootx64.efi
' sh "$OWNER"
logged in_root ukify build \
        --linux="/boot/vmlinuz-$KVER" \
        --initrd="/var/tmp/initrd.img-$KVER" \
        --os-release=@/usr/lib/os-release \
        --uname="$KVER" \
        --cmdline="$CMDLINE" \
        --signtool=sbsign \
        --secureboot-private-key=/var/tmp/sb/db.key \
        --secureboot-certificate=/var/tmp/sb/db.crt \
        --pcr-private-key=/var/tmp/sb/pcr.key \
        --pcr-public-key=/var/tmp/sb/pcr.pub.pem \
        --output="/var/tmp/$NAME.efi"
# The referees: sbverify against the db certificate, and the UKI's PE sections.
in_root sh -c "sbverify --cert /var/tmp/sb/db.crt /usr/lib/systemd/boot/efi/systemd-bootx64.efi.signed 2>&1 \
        && sbverify --cert /var/tmp/sb/db.crt /var/tmp/$NAME.efi 2>&1 \
        && ! sbverify --cert /var/tmp/sb/KEK.crt /var/tmp/$NAME.efi >/dev/null 2>&1" >"$OUT/sbverify.txt" \
        || die "sbverify does not accept the signed boot loader and UKI with the db certificate (only with it): $(tr '\n' ' ' <"$OUT/sbverify.txt")"
for f in PK KEK db; do
        cp "$SB/$f.esl" "$SB/$f.auth" "$KEYS/"
done
mv "$ROOT/var/tmp/$NAME.efi" "$OUT/$NAME.efi"
cp "$ROOT/usr/lib/systemd/boot/efi/systemd-bootx64.efi.signed" "$OUT/"
rm -rf "$SB"
sections=$(objdump -h "$OUT/$NAME.efi" | awk '$2 ~ /^\./ { print $2 }' | tr '\n' ' ')
for s in .linux .initrd .osrel .cmdline .uname .pcrsig .pcrpkey; do
        case " $sections " in *" $s "*) ;; *) die "the UKI has no $s section (it has: $sections)" ;; esac
done
log "UKI sections: $sections"
# No private key in the image: a base64 line of each key file, looked for in every file of the root.
for k in "$KEYS"/*.key; do sed -n 2p "$k"; done >"$WORK/key-lines"
if leak=$(grep -rlF -f "$WORK/key-lines" "$ROOT" 2>/dev/null | head -n 1) && [ -n "$leak" ]; then
        die "a private key was left in the image root: ${leak#"$ROOT"}"
fi

phase trim
deb_trim

phase assemble
ESP_FILES=("$OUT/$NAME.efi::/EFI/Linux/$NAME.efi")
for f in PK KEK db; do
        ESP_FILES+=("$KEYS/$f.auth::/loader/keys/auto/$f.auth")
done
DISK=$OUT/$IMAGE
deb_assemble "$DISK" "$NAME" GUID:59

phase checksum
(cd "$OUT" && sha256sum "$IMAGE" >SHA256SUMS)

phase end
{
        echo "name $NAME"
        echo "variant signed (Secure Boot: own PK/KEK/db, signed sd-boot and UKI, signed PCR 11 policy)"
        echo "key $KEY_FULL"
        echo "suite $SUITE"
        echo "mirror $MIRROR"
        echo "kernel $KVER"
        echo "cmdline $CMDLINE"
        echo "owner-guid $OWNER"
        for k in PK KEK db; do
                echo "cert-$k $(openssl x509 -in "$KEYS/$k.crt" -noout -subject -fingerprint -sha256 | tr '\n' ' ')"
        done
        echo "uki-sections $sections"
        printf '%s\n' "${ASM_INFO[@]}"
        echo "uki-size $(stat -c %s "$OUT/$NAME.efi")"
        echo "built $(date -u +%Y-%m-%dT%H:%M:%SZ) in $(elapsed "$T0")s"
        printf 'phase %s\n' "${TIMINGS[@]}"
} >"$OUT/build-info.txt"
deb_finish sbddi
log "image: $RESULT/$IMAGE ($((ASM_SIZE / MIB)) MiB; UKI $(($(stat -c %s "$RESULT/$NAME.efi") / MIB)) MiB, signed)"
log "built in $(elapsed "$T0")s"
deliver_all
