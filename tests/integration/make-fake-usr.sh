# SPDX-License-Identifier: LGPL-2.1-or-later
# Sourced by make-fake-ddi.sh when FAKE_DDI_KIND=usr (it has set $out, $tmp, $stub, $sdboot, and
# made the fake kernel $tmp/linux and $tmp/uname). Writes a usr image as image-based desktops
# ship them, built without loop devices or device-mapper:
#   p1 ESP (FAT32, 512 MiB sparse) with /EFI/Linux/fakeusr_7.efi: a UKI whose .cmdline carries
#      usrhash=<root hash> and whose .initrd is an uncompressed early cpio followed by a
#      zstd-compressed cpio holding systemd-gpt-auto-generator and systemd-veritysetup;
#   p2 usr-x86-64 (squashfs, mksquashfs) holding what /usr/lib would: os-release, repart.d (A and
#      B slots, root and home with FactoryReset=yes), sysupdate.d (usr, verity, signature, UKI with
#      boot counting), systemd-boot from this host, and 4 MiB of random data;
#   p3 usr-x86-64-verity (veritysetup format on the squashfs file);
#   p4 usr-x86-64-verity-sig (JSON: rootHash and a PKCS#7 signature made with openssl cms over
#      the root hash in hex, by a key made here; the certificate is written to OUT.cert.pem).
# Partition UUIDs as systemd-repart derives them: usr = first 128 bits of the root hash, verity =
# last 128 bits. Labels "fakeusr_7". Also OUT.sha256.
#
# FAKE_DDI_BREAK makes one thing wrong, for the refusal tests:
#   usrhash            the UKI's usrhash= names no partition
#   verity-uuid        the verity partition's UUID is not the hash's last 128 bits
#   verity-other-data  the verity partition was made from other data (its root hash differs)
#   verity-size        the verity superblock covers more data than the usr partition holds
#   sig-roothash       the signature JSON's rootHash is another hash (signed correctly)
#   sig-key            signed by another key than the one in OUT.cert.pem
#   sig-garbage        the signature is not PKCS#7
#   initrd-no-gpt-auto the initrd has no systemd-gpt-auto-generator (and no root= on the cmdline)
#   initrd-no-verity   the initrd has no systemd-veritysetup
#   initrd-unknown     the initrd is lzma-compressed (imprint cannot list it: an assumption)
#   erofs              usr is erofs (mkfs.erofs) instead of squashfs
#   no-sysupdate       no sysupdate.d in usr
# shellcheck shell=bash

brk=${FAKE_DDI_BREAK:-}
v=7
name=fakeusr_$v

cat >"$tmp/os-release" <<OSREL
NAME="Imprint Fake usr OS"
PRETTY_NAME="Imprint Fake usr OS $v"
ID=imprintfakeusr
VERSION_ID=$v
IMAGE_ID=fakeusr
IMAGE_VERSION=$v
OSREL

u=$tmp/usr
mkdir -p "$u/lib/repart.d" "$u/lib/sysupdate.d" "$u/lib/systemd/boot/efi"
cp "$tmp/os-release" "$u/lib/os-release"
cp "$sdboot" "$u/lib/systemd/boot/efi/"
head -c $((4 * 1024 * 1024)) /dev/urandom >"$u/lib/fake-data"

part() { # FILE TYPE [LABEL [MIN [MAX [EXTRA…]]]]
        local f=$1 type=$2 label=${3:-} min=${4:-} max=${5:-}
        shift 5 2>/dev/null || shift $#
        {
                echo "# $f of the fake usr image"
                echo "[Partition]"
                echo "Type=$type"
                [ -z "$label" ] || echo "Label=$label"
                [ -z "$min" ] || echo "SizeMinBytes=$min"
                [ -z "$max" ] || echo "SizeMaxBytes=$max"
                for e in "$@"; do echo "$e"; done
        } >"$u/lib/repart.d/$f"
}
part 00-esp.conf esp
part 10-usr.conf usr "fakeusr_%A"
part 11-usr-verity.conf usr-verity "fakeusr_%A"
part 12-usr-verity-sig.conf usr-verity-sig "fakeusr_%A"
part 20-usr-B.conf usr-x86-64 _empty 64M 64M
part 21-usr-verity-B.conf usr-x86-64-verity _empty 8M 8M
part 22-usr-verity-sig-B.conf usr-x86-64-verity-sig _empty 1M 1M
part 50-root.conf root "" "" "" "Format=ext4" "FactoryReset=yes"
part 60-home.conf home "" "" "" "Format=ext4" "FactoryReset=yes"

transfer() { # FILE SOURCE-PATTERN TARGET-LINES…
        local f=$1 src=$2
        shift 2
        {
                echo "[Transfer]"
                echo "ProtectVersion=%A"
                echo
                echo "[Source]"
                echo "Type=regular-file"
                echo "Path=/run/imprint-updates"
                echo "MatchPattern=$src"
                echo
                echo "[Target]"
                for l in "$@"; do echo "$l"; done
        } >"$u/lib/sysupdate.d/$f"
}
if [ "$brk" != no-sysupdate ]; then
        transfer 10-usr.transfer "fakeusr_@v.usr.raw" Type=partition Path=auto MatchPattern=fakeusr_@v MatchPartitionType=usr ReadOnly=yes
        transfer 20-usr-verity.transfer "fakeusr_@v.usr-verity.raw" Type=partition Path=auto MatchPattern=fakeusr_@v \
                MatchPartitionType=usr-verity ReadOnly=yes
        transfer 30-usr-verity-sig.transfer "fakeusr_@v.usr-verity-sig.raw" Type=partition Path=auto MatchPattern=fakeusr_@v \
                MatchPartitionType=usr-verity-sig ReadOnly=yes
        transfer 50-uki.transfer "fakeusr_@v.efi" Type=regular-file PathRelativeTo=boot Path=/EFI/Linux \
                "MatchPattern=fakeusr_@v+@l-@d.efi fakeusr_@v+@l.efi" "MatchPattern=fakeusr_@v.efi" Mode=0444 TriesLeft=3 TriesDone=0 \
                InstancesMax=2
fi

if [ "$brk" = erofs ]; then
        mkfs.erofs --quiet "$tmp/usr.fs" "$u" >/dev/null
else
        mksquashfs "$u" "$tmp/usr.fs" -quiet -no-progress -noappend -all-root >/dev/null
fi
# Whole 4 KiB blocks, as dm-verity hashes them.
truncate -s $(((($(stat -c %s "$tmp/usr.fs") + 4095) / 4096) * 4096)) "$tmp/usr.fs"

roothash() { # DATA HASH → prints the root hash
        veritysetup format "$1" "$2" | sed -n 's/^Root hash:[[:space:]]*//p'
}
hash=$(roothash "$tmp/usr.fs" "$tmp/verity")
case "$brk" in
verity-other-data)
        head -c "$(stat -c %s "$tmp/usr.fs")" /dev/urandom >"$tmp/other.fs"
        roothash "$tmp/other.fs" "$tmp/verity" >/dev/null
        ;;
verity-size)
        cp "$tmp/usr.fs" "$tmp/big.fs"
        truncate -s +$((3 * 1024 * 1024)) "$tmp/big.fs"
        hash=$(roothash "$tmp/big.fs" "$tmp/verity")
        ;;
esac
uuid() { # 32 HEX → UUID text
        echo "${1:0:8}-${1:8:4}-${1:12:4}-${1:16:4}-${1:20:12}"
}
usr_uuid=$(uuid "${hash:0:32}")
verity_uuid=$(uuid "${hash:32:32}")
[ "$brk" != verity-uuid ] || verity_uuid=$(cat /proc/sys/kernel/random/uuid)

# The signing key lives only in $tmp; OUT.cert.pem is the certificate to check against.
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$tmp/key.pem" -out "$tmp/cert.pem" -subj /CN=imprint-fake-usr -days 3650 2>/dev/null
cp "$tmp/cert.pem" "$out.cert.pem"
signed=$hash
[ "$brk" != sig-roothash ] || signed=$(printf other | sha256sum | cut -d' ' -f1)
printf %s "$signed" >"$tmp/roothash.txt"
if [ "$brk" = sig-key ]; then
        openssl req -x509 -newkey rsa:2048 -nodes -keyout "$tmp/key.pem" -out "$tmp/cert.pem" -subj /CN=imprint-fake-usr -days 3650 2>/dev/null
fi
openssl cms -sign -binary -noattr -nocerts -in "$tmp/roothash.txt" -signer "$tmp/cert.pem" -inkey "$tmp/key.pem" -outform DER \
        -out "$tmp/sig.der"
[ "$brk" != sig-garbage ] || head -c 300 /dev/urandom >"$tmp/sig.der"
fpr=$(openssl x509 -in "$tmp/cert.pem" -outform DER | sha256sum | cut -d' ' -f1)
printf '{"rootHash":"%s","certificateFingerprint":"%s","signature":"%s"}\n' "$signed" "$fpr" "$(base64 -w0 "$tmp/sig.der")" \
        >"$tmp/sig.json"

# The initrd: an early cpio (as microcode updates come), then the main one, compressed.
mkdir -p "$tmp/early/kernel/x86/microcode" "$tmp/initrd/usr/lib/systemd/system-generators" "$tmp/initrd/etc"
echo fake >"$tmp/early/kernel/x86/microcode/GenuineIntel.bin"
cp "$tmp/os-release" "$tmp/initrd/etc/initrd-release"
[ "$brk" = initrd-no-gpt-auto ] || echo fake >"$tmp/initrd/usr/lib/systemd/system-generators/systemd-gpt-auto-generator"
[ "$brk" = initrd-no-verity ] || echo fake >"$tmp/initrd/usr/lib/systemd/systemd-veritysetup"
echo fake >"$tmp/initrd/usr/lib/systemd/system-generators/systemd-fstab-generator"
(cd "$tmp/early" && find . | LC_ALL=C sort | cpio -o -H newc --quiet) >"$tmp/initrd.img"
if [ "$brk" = initrd-unknown ]; then
        (cd "$tmp/initrd" && find . | LC_ALL=C sort | cpio -o -H newc --quiet) | xz --format=lzma -c >>"$tmp/initrd.img"
else
        (cd "$tmp/initrd" && find . | LC_ALL=C sort | cpio -o -H newc --quiet) | zstd -q -c >>"$tmp/initrd.img"
fi

cmdhash=$hash
[ "$brk" != usrhash ] || cmdhash=$(printf nothing | sha256sum | cut -d' ' -f1)
echo -n "usrhash=$cmdhash console=ttyS0" >"$tmp/cmdline"
objcopy \
        --add-section .osrel="$tmp/os-release" --change-section-vma .osrel=0x20000 \
        --add-section .cmdline="$tmp/cmdline" --change-section-vma .cmdline=0x30000 \
        --add-section .uname="$tmp/uname" --change-section-vma .uname=0x38000 \
        --add-section .linux="$tmp/linux" --change-section-vma .linux=0x2000000 \
        --add-section .initrd="$tmp/initrd.img" --change-section-vma .initrd=0x2400000 \
        "$stub" "$tmp/$name.efi"

mib() { echo $((($(stat -c %s "$1") + 1048575) / 1048576)); }
esp_mib=512
usr_mib=$(mib "$tmp/usr.fs")
verity_mib=$(mib "$tmp/verity")
sig_mib=1
rm -f "$out"
truncate -s $((1 + esp_mib + usr_mib + verity_mib + sig_mib + 1))M "$out"
sfdisk -q "$out" <<SFDISK
label: gpt
size=${esp_mib}MiB, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name="ESP"
size=${usr_mib}MiB, type=8484680C-9521-48C6-9C11-B0720656F69E, uuid=$usr_uuid, name="$name", attrs="GUID:60"
size=${verity_mib}MiB, type=77FF5F63-E7B6-4633-ACF4-1565B864C0E6, uuid=$verity_uuid, name="$name", attrs="GUID:60"
size=${sig_mib}MiB, type=E7BB33FB-06CF-4E81-8273-E543B413E2E2, name="$name", attrs="GUID:60"
SFDISK
mkfs.vfat -F 32 -n ESP --offset 2048 "$out" $((esp_mib * 1024)) >/dev/null 2>&1
mmd -i "$out@@1M" ::/EFI ::/EFI/Linux
mcopy -i "$out@@1M" "$tmp/$name.efi" "::/EFI/Linux/$name.efi"
put() { dd if="$1" of="$out" bs=1M seek="$2" conv=notrunc,sparse status=none; }
put "$tmp/usr.fs" $((1 + esp_mib))
put "$tmp/verity" $((1 + esp_mib + usr_mib))
put "$tmp/sig.json" $((1 + esp_mib + usr_mib + verity_mib))
(cd "$(dirname "$out")" && sha256sum "$(basename "$out")" >"$(basename "$out").sha256")
