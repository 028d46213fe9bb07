#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# imprint reads a usr image (usr + usr-verity + usr-verity-sig, no root partition; made by
# make-fake-ddi.sh with FAKE_DDI_KIND=usr) without mounting it, takes what the image's repart.d
# and sysupdate.d say, and refuses, with one sentence each, the images that could not boot or
# could not be trusted: a usrhash= naming no partition, a verity partition of another usr
# partition, a signature of another hash or key, an initrd that finds neither root nor /usr.
# The command line (imprint plan --source) shows the refusals; the engine's own reading
# (tests/unit/test-imagedefs check IMAGE [CERT]) shows what a plan gets from the image.
. "$(dirname "$0")/lib.sh"
need_tool mksquashfs
need_tool veritysetup
need_tool openssl
need_tool cpio
need_tool zstd
need_tool mkfs.erofs
CHECK=${TEST_IMAGEDEFS:?TEST_IMAGEDEFS names tests/unit/test-imagedefs}

make_usr() { # NAME [BREAK]
        FAKE_DDI_KIND=usr FAKE_DDI_BREAK=${2:-} bash "$(dirname "$0")/make-fake-ddi.sh" "$WORK/$1.img" >/dev/null
}
tgt=$WORK/target.img
truncate -s 8G "$tgt"

# The accepted image, as the engine reads it.
make_usr good
"$CHECK" check "$WORK/good.img" >"$WORK/good.out" || fail "the good usr image is refused: $(cat "$WORK/good.out")"
expect_line() { # FILE LINE
        grep -qxF -- "$2" "$1" || fail "$1 lacks the line '$2':"$'\n'"$(cat "$1")"
}
expect_line "$WORK/good.out" "kind usr"
expect_line "$WORK/good.out" "source-kind usr"
expect_line "$WORK/good.out" "image fakeusr 7"
expect_line "$WORK/good.out" "repart 9 transfers 4"
expect_line "$WORK/good.out" "root-fstype ext4 home-fstype ext4"
# usr is 5 MiB in the image; the repart.d B slots say 64M, 8M and 1M; labels from sysupdate's @v.
expect_line "$WORK/good.out" "partition usr 2 size 5242880 slot 67108864 label fakeusr_7 install-label fakeusr_7"
expect_line "$WORK/good.out" "partition usr-verity 3 size 1048576 slot 8388608 label fakeusr_7 install-label fakeusr_7"
expect_line "$WORK/good.out" "partition usr-verity-sig 4 size 1048576 slot 1048576 label fakeusr_7 install-label fakeusr_7"
# The UKI goes where sysupdate's UKI transfer looks, with boot counting (TriesLeft=3, TriesDone=0).
expect_line "$WORK/good.out" "entry fakeusr_7.efi install-as fakeusr_7+3-0.efi on boot"
grep -q "^sdboot systemd-boot " "$WORK/good.out" || fail "systemd-boot not read from the usr partition"
# usrhash= of the UKI is the hash whose halves are the usr and verity partition UUIDs.
hash=$(sed -n 's/^usrhash //p' "$WORK/good.out")
[ "${#hash}" = 64 ] || fail "no usrhash read"
sfdisk -J "$WORK/good.img" | jq -e --arg u "${hash:0:8}-${hash:8:4}" '.partitiontable.partitions[1].uuid | ascii_downcase | startswith($u)' \
        >/dev/null || fail "usrhash does not name the usr partition"
# Without a certificate the signature is only checked for its shape and hash, and the note says so.
grep -q "^note imprint did not check the usr partition's signature against a key" "$WORK/good.out" ||
        fail "no note about the unchecked signature"
"$CHECK" check "$WORK/good.img" "$WORK/good.img.cert.pem" >"$WORK/good-cert.out" ||
        fail "the good usr image is refused with its certificate: $(cat "$WORK/good-cert.out")"
expect_line "$WORK/good-cert.out" "note -"
pass "usr image read: kind usr, B slots from repart.d, labels and UKI name from sysupdate.d, signature verified"

# The command line reads it as a usr image too (the plan itself is the planner's, tested elsewhere).
"$IMPRINT" -v plan --source "$WORK/good.img" --target "$tgt" --json >/dev/null 2>"$WORK/good.err" || true
grep -q "usr image, usr in partition 2 (squashfs" "$WORK/good.err" || fail "imprint does not read the usr image: $(cat "$WORK/good.err")"
grep -q "unsquashfs -o" "$WORK/good.err" || fail "usr was not read with unsquashfs"
pass "imprint reads the usr partition with unsquashfs, without mounting"

# Without sysupdate.d the UKI keeps its name.
make_usr nosysupdate no-sysupdate
"$CHECK" check "$WORK/nosysupdate.img" >"$WORK/nosysupdate.out" || fail "refused: $(cat "$WORK/nosysupdate.out")"
expect_line "$WORK/nosysupdate.out" "entry fakeusr_7.efi install-as - on boot"
expect_line "$WORK/nosysupdate.out" "repart 9 transfers 0"
pass "without sysupdate.d the UKI keeps its name"

# An initrd imprint cannot list (lzma) is not refused: the note says what imprint assumes.
make_usr lzma initrd-unknown
"$CHECK" check "$WORK/lzma.img" "$WORK/lzma.img.cert.pem" >"$WORK/lzma.out" || fail "refused: $(cat "$WORK/lzma.out")"
grep -q "^note imprint assumes that the initrd of fakeusr_7.efi finds root by systemd-gpt-auto-generator" "$WORK/lzma.out" ||
        fail "no assumption stated for an unreadable initrd: $(cat "$WORK/lzma.out")"
pass "an initrd imprint cannot read is stated as an assumption"

# Each broken image is refused by imprint plan with its sentence (exit 7: a bad image), the target
# untouched.
sum=$(checksum "$tgt")
refused() { # BREAK SENTENCE-PART [EXIT]
        make_usr "$1" "$1"
        expect_exit "${3:-7}" "$IMPRINT" plan --source "$WORK/$1.img" --target "$tgt" --json
        expect_stderr "$2"
        pass "refused ($1): $2"
}
refused usrhash "cannot boot: its UKI fakeusr_7.efi asks for usrhash="
expect_stderr "but no usr partition of the image has the partition UUID"
refused verity-uuid "does not belong to its usr partition: its partition UUID is"
refused verity-other-data "does not belong to usrhash="
expect_stderr "its hash tree has the root hash"
refused verity-size "does not describe its usr partition: it covers"
refused sig-roothash "The usr-verity-sig partition 4 of the image"
expect_stderr "signs the root hash $(printf other | sha256sum | cut -d' ' -f1), not usrhash="
refused sig-garbage "is not a PKCS#7 signature"
refused initrd-no-gpt-auto "has no systemd-gpt-auto-generator and its command line has no root="
refused initrd-no-verity "has no systemd-veritysetup, so /usr could not be opened with usrhash="
# This host's erofs-utils (bookworm: 1.5) cannot print files (dump.erofs --cat came in a later 1.8
# release); the refusal names the option needed.
if dump.erofs --help 2>&1 | grep -q -- --cat; then
        make_usr erofs erofs
        "$CHECK" check "$WORK/erofs.img" >"$WORK/erofs.out" || fail "erofs usr refused: $(cat "$WORK/erofs.out")"
        expect_line "$WORK/erofs.out" "kind usr"
        pass "erofs usr read with dump.erofs"
else
        # Not a bad image: this system lacks the tool (exit 2, as for what imprint does not support).
        refused erofs "is erofs, which imprint reads with the --cat option of dump.erofs" 2
fi
[ "$(checksum "$tgt")" = "$sum" ] || fail "a refused plan changed the target"

# A signature by another key than the certificate given is refused (the engine's check; the
# command line's --image-certificate passes the same text).
make_usr sig-key sig-key
"$CHECK" check "$WORK/sig-key.img" "$WORK/sig-key.img.cert.pem" >"$WORK/sig-key.out" && fail "a foreign signature is accepted"
expect_line "$WORK/sig-key.out" "refused: The signature in the usr-verity-sig partition 4 of the image $WORK/sig-key.img does not verify against the image certificate given: the usr partition is not signed by its key."
"$CHECK" check "$WORK/sig-key.img" >"$WORK/sig-key-nocert.out" || fail "refused without a certificate: $(cat "$WORK/sig-key-nocert.out")"
pass "a signature by another key is refused against the certificate, and only noted without one"
