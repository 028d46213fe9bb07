#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Bad images are refused with a clear sentence and exit code 7 (4 for a target that is too
# small) before anything is written: truncated, checksum mismatch, no root partition, a UKI that
# is not a PE file, no UKI at all. The target's content is unchanged afterwards.
. "$(dirname "$0")/lib.sh"
need_tool jq
need_tool objcopy

good=$WORK/good.img
bash "$(dirname "$0")/make-fake-ddi.sh" "$good" 200
tgt=$WORK/target.img
truncate -s 4G "$tgt"
"$IMPRINT" apply --target "$tgt" --seed before --yes >/dev/null   # something to keep intact
sum=$(checksum "$tgt")

unchanged() {
        [ "$(checksum "$tgt")" = "$sum" ] || fail "the target changed after: $1"
}

# Truncated: the download stopped early.
cp --sparse=always "$good" "$WORK/trunc.img"
truncate -s -100M "$WORK/trunc.img"
expect_exit 7 "$IMPRINT" install --source "$WORK/trunc.img" --target "$tgt" --yes
expect_stderr "is truncated"
unchanged "truncated image"
pass "truncated image refused (exit 7)"

# Checksum mismatch: one byte of the root changed after the checksum was published.
cp --sparse=always "$good" "$WORK/tampered.img"
cp "$good.sha256" "$WORK/tampered.img.sha256"
sed -i "s/good.img/tampered.img/" "$WORK/tampered.img.sha256"
printf 'X' | dd of="$WORK/tampered.img" bs=1 seek=$((600 * 1024 * 1024)) conv=notrunc status=none
expect_exit 7 "$IMPRINT" install --source "$WORK/tampered.img" --target "$tgt" --yes
expect_stderr "does not match its checksum"
expect_stderr "Nothing was written"
unchanged "checksum mismatch"
pass "checksum mismatch refused before writing (exit 7)"

# The same with a SHA256SUMS file beside the image.
mkdir "$WORK/sums"
cp --sparse=always "$WORK/tampered.img" "$WORK/sums/os.img"
(cd "$WORK/sums" && sed "s/tampered.img/os.img/" "$WORK/tampered.img.sha256" >SHA256SUMS && echo "0000000000000000000000000000000000000000000000000000000000000000  other.img" >>SHA256SUMS)
expect_exit 7 "$IMPRINT" install --source "$WORK/sums/os.img" --target "$tgt" --yes
expect_stderr "SHA256SUMS says"
unchanged "SHA256SUMS mismatch"
pass "SHA256SUMS mismatch refused (exit 7)"

# No root partition: the root is retyped as generic Linux data.
cp --sparse=always "$good" "$WORK/noroot.img"
sfdisk -q --part-type "$WORK/noroot.img" 2 0FC63DAF-8483-4772-8E79-3D69D8477DE4
expect_exit 7 "$IMPRINT" install --source "$WORK/noroot.img" --target "$tgt" --yes
expect_stderr "has no root partition"
unchanged "image without root"
pass "image without a root partition refused (exit 7)"

# A GPT entry that runs past the end of the image (primary and backup table alike, CRCs right):
# libblkid leaves such an entry out, so the refusal must name the overrun, not a missing root.
cp --sparse=always "$good" "$WORK/overrun.img"
/usr/bin/python3 - "$WORK/overrun.img" <<'PY'
import struct, sys, zlib
ss = 512
with open(sys.argv[1], "r+b") as f:
    sectors = f.seek(0, 2) // ss
    for hdr_lba in (1, sectors - 1):
        f.seek(hdr_lba * ss)
        hdr = bytearray(f.read(92))
        assert hdr[:8] == b"EFI PART"
        lba, n, esize = struct.unpack_from("<QII", hdr, 72)
        f.seek(lba * ss)
        ents = bytearray(f.read(n * esize))
        struct.pack_into("<Q", ents, esize + 40, sectors + 99)   # entry 2 (root): 100 sectors too far
        f.seek(lba * ss)
        f.write(ents)
        struct.pack_into("<I", hdr, 88, zlib.crc32(ents))
        struct.pack_into("<I", hdr, 16, 0)
        struct.pack_into("<I", hdr, 16, zlib.crc32(bytes(hdr)))
        f.seek(hdr_lba * ss)
        f.write(hdr)
PY
sfdisk -d "$WORK/overrun.img" 2>/dev/null | grep -q "overrun.img2 : start=" || fail "the damaged table is not what this test meant to make"
expect_exit 7 "$IMPRINT" install --source "$WORK/overrun.img" --target "$tgt" --yes
expect_stderr "its partition 2 (sectors "
expect_stderr "runs past the end of the image"
grep -q "no root partition" "$WORK/stderr" && fail "the overrun is reported as a missing root partition"
unchanged "image with an overrunning partition"
pass "a GPT entry past the end of the image refused, naming it (exit 7)"

# The image named as a FIFO: refused at once instead of waiting for a writer.
mkfifo "$WORK/fifo.img"
expect_exit 2 timeout 60 "$IMPRINT" plan --source "$WORK/fifo.img" --target "$tgt"
expect_stderr "is neither a file nor a block device"
unchanged "image that is a FIFO"
pass "an image that is a FIFO refused (exit 2)"

# A "UKI" that is not a PE file.
cp --sparse=always "$good" "$WORK/badpe.img"
echo "this is not a kernel" >"$WORK/fake.efi"
MTOOLS_SKIP_CHECK=1 mcopy -o -i "$WORK/badpe.img@@1M" "$WORK/fake.efi" ::/EFI/Linux/fakeos_7.efi
expect_exit 7 "$IMPRINT" install --source "$WORK/badpe.img" --target "$tgt" --yes
expect_stderr "/EFI/Linux/fakeos_7.efi in the image's esp is not a PE file"
unchanged "UKI that is not a PE file"
pass "a UKI that is not a PE file is refused (exit 7)"

# No UKI at all.
cp --sparse=always "$good" "$WORK/nouki.img"
MTOOLS_SKIP_CHECK=1 mdel -i "$WORK/nouki.img@@1M" ::/EFI/Linux/fakeos_7.efi
expect_exit 7 "$IMPRINT" install --source "$WORK/nouki.img" --target "$tgt" --yes
expect_stderr "has no unified kernel image"
unchanged "image without UKI"
pass "an image without a UKI is refused (exit 7)"

# A target smaller than the image needs.
truncate -s 1G "$WORK/small.img"
expect_exit 4 "$IMPRINT" install --source "$good" --target "$WORK/small.img" --yes
expect_stderr "root at least 200 MiB"
[ "$(du -k "$WORK/small.img" | cut -f1)" = 0 ] || fail "something was written to the small target"
pass "target too small for the image refused (exit 4)"

# A plan whose image changed afterwards.
"$IMPRINT" plan --source "$good" --target "$tgt" --plan-file "$WORK/plan.json" >/dev/null
sfdisk -q --part-uuid "$good" 2 11111111-2222-4333-8444-555555555555
expect_exit 5 "$IMPRINT" install --plan-file "$WORK/plan.json" --yes
expect_stderr "changed since the plan was made"
unchanged "changed image"
pass "an image changed after planning is refused (exit 5)"

# The image and the target must differ.
expect_exit 2 "$IMPRINT" install --source "$good" --target "$good" --yes
expect_stderr "are the same file"
pass "installing an image onto itself is refused"
