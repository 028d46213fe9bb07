#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# imprint install of a usr image (usr + usr-verity + usr-verity-sig, no root) into an image file,
# checked with stock tools only: sfdisk reads back the A slot with the image's types, UUIDs and
# sysupdate's name, the B slot named "_empty" with the same types and sizes and nothing in it
# (blkid finds no signature, first and last MiB are zeros); cmp finds the A slot bit-identical to
# the image's partitions; mtools finds the UKI under sysupdate's name with the boot counter
# (NAME+3-0.efi) and loader.conf defaulting to a glob of every version; blkid finds root made as
# ext4 (the image brings none). The image is make-fake-ddi.sh's usr variant (make-fake-usr.sh).
. "$(dirname "$0")/lib.sh"
need_root
need_tool jq
need_tool mdir
need_tool objcopy
need_tool sfdisk
need_tool blkid
need_tool veritysetup
need_tool mksquashfs
need_tool unsquashfs

src=$WORK/usr.img
FAKE_DDI_KIND=usr bash "$(dirname "$0")/make-fake-ddi.sh" "$src" >"$WORK/make.log" 2>&1 \
        || { cat "$WORK/make.log" >&2; fail "make-fake-ddi.sh cannot make the usr image"; }
tgt=$WORK/target.img
truncate -s 8G "$tgt"

# ---- the plan -------------------------------------------------------------------------------
"$IMPRINT" plan --source "$src" --target "$tgt" --seed usr --plan-file "$WORK/plan.json" >"$WORK/table" \
        || { cat "$WORK/table" >&2; fail "imprint plan refuses the usr image"; }
jq -e '.source.kind == "usr"
       and ([.partitions[].role] == ["esp", "usr", "usr-verity", "usr-verity-sig", "usr", "usr-verity", "usr-verity-sig", "root"])
       and ([.partitions[1:4][] | .copyFrom] == [0, 1, 2])
       and ([.partitions[4:7][] | .label] == ["_empty", "_empty", "_empty"])
       and ([.partitions[4:7][] | .copyFrom] == [null, null, null])
       and ([.partitions[4:7][] | .fstype] == [null, null, null])
       and ([range(1; 4)] | all(. as $i | $p.partitions[$i].typeUuid == $p.partitions[$i + 3].typeUuid
                                        and $p.partitions[$i].size == $p.partitions[$i + 3].size
                                        and $p.partitions[$i].uuid != $p.partitions[$i + 3].uuid))
       and (.partitions[7] | .copyFrom == null and .fstype == "ext4")
       and (.source.bootEntries[0].installAs | test("^[^/]+\\+3-0\\.efi$"))' \
        --argjson p "$(cat "$WORK/plan.json")" "$WORK/plan.json" >/dev/null \
        || { cat "$WORK/plan.json" >&2; fail "unexpected usr install plan"; }
grep -q "_empty" "$WORK/table" || fail "the plan table does not show the B slots"
grep -q "^Slots: " "$WORK/table" || fail "the plan table does not say what the A and B slots are"
pass "the plan copies the A slot, leaves a B slot named _empty of the same types and sizes, and makes root"

# The A slot's names are what the image's sysupdate.d names version 7 (fakeusr_@v), which is also
# how the image names its own partitions.
sfdisk --json "$src" >"$WORK/src.json"
[ "$(jq -r '[.partitions[1:4][] | .label] | join(",")' "$WORK/plan.json")" = fakeusr_7,fakeusr_7,fakeusr_7 ] \
        || fail "the A slot is not named as the image's sysupdate.d names version 7"
[ "$(jq -r '[.partitiontable.partitions[1:4][] | .name] | join(",")' "$WORK/src.json")" = fakeusr_7,fakeusr_7,fakeusr_7 ] \
        || fail "the fake image's partitions are not named fakeusr_7"
grep -q "did not check the usr partition's signature against a key" "$WORK/table" \
        || fail "without a certificate, the plan does not say that the signature was not checked against a key"

# With the image's certificate the signature is checked (and the note no longer says it was not);
# with another certificate the image is refused.
"$IMPRINT" plan --source "$src" --target "$tgt" --image-certificate "$src.cert.pem" >"$WORK/table-cert" \
        || { cat "$WORK/table-cert" >&2; fail "the image's own certificate is refused"; }
grep -q "did not check the usr partition's signature" "$WORK/table-cert" && fail "with a certificate, the plan still says the signature was not checked"
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$WORK/other.key" -out "$WORK/other.pem" -days 1 -subj "/CN=other" 2>/dev/null
if "$IMPRINT" plan --source "$src" --target "$tgt" --image-certificate "$WORK/other.pem" >"$WORK/out" 2>"$WORK/err"; then
        fail "a certificate that did not sign the image is accepted"
fi
[ -s "$WORK/err" ] || fail "no sentence for a signature that does not verify"
echo "not a certificate" >"$WORK/junk.pem"
"$IMPRINT" plan --source "$src" --target "$tgt" --image-certificate "$WORK/junk.pem" >/dev/null 2>"$WORK/err" && fail "a file that is no certificate is accepted"
grep -q "is not a PEM certificate" "$WORK/err" || { cat "$WORK/err" >&2; fail "no clear sentence for a file that is no certificate"; }
pass "--image-certificate: the signer's certificate is accepted, another one and a non-certificate are refused"

# A classic account cannot be made in the empty root a usr image starts with (an image file gets
# no homed account: the password cannot be sealed to the TPM of the machine that boots it).
if CREDENTIALS_DIRECTORY= "$IMPRINT" plan --source "$src" --target "$tgt" --user alice >"$WORK/out" 2>"$WORK/err" </dev/null; then
        fail "a classic account on a usr image is planned"
fi
grep -q "brings no root filesystem (only /usr)" "$WORK/err" || { cat "$WORK/err" >&2; fail "no clear sentence refusing a classic account"; }
pass "a classic account on a usr image is refused with a sentence"

# ---- the install ----------------------------------------------------------------------------
# The target held something before where the B slot goes: a copy of the image's partitions at
# its start (squashfs, verity superblock, signature JSON) and random bytes in its last MiB.
# After the install blkid must find nothing there.
for i in 1 2 3; do
        s_off=$(jq -r ".source.partitions[$i - 1].start" "$WORK/plan.json")
        s_len=$(jq -r ".source.partitions[$i - 1].size" "$WORK/plan.json")
        b_off=$(jq -r ".partitions[$((i + 3))].start" "$WORK/plan.json")
        b_len=$(jq -r ".partitions[$((i + 3))].size" "$WORK/plan.json")
        n=$(( s_len < b_len ? s_len : b_len ))
        dd if="$src" of="$tgt" bs=4096 skip=$((s_off / 4096)) seek=$((b_off / 4096)) count=$((n / 4096)) conv=notrunc status=none
        dd if=/dev/urandom of="$tgt" bs=1M seek=$(( (b_off + b_len) / 1048576 - 1 )) count=1 conv=notrunc status=none
done
b_off=$(jq -r ".partitions[4].start" "$WORK/plan.json")
[ "$(blkid -p -o value -s TYPE -O "$b_off" "$tgt" || true)" = squashfs ] || fail "the test did not put a squashfs where the B slot goes"
"$IMPRINT" install --plan-file "$WORK/plan.json" --yes --json >"$WORK/events.json" \
        || { tail -5 "$WORK/events.json" >&2; fail "imprint install fails"; }
jq -e -s '.[-1].success == true' "$WORK/events.json" >/dev/null || fail "install did not report success"
jq -e -s '[.[] | select(.event == "end") | .id] as $ids
          | (["copy-usr", "verify-usr", "copy-usr-verity", "verify-usr-verity", "copy-usr-verity-sig", "verify-usr-verity-sig",
              "clear-usr", "clear-usr-verity", "clear-usr-verity-sig", "format-root", "boot"] | all(. as $s | $ids | index($s) != null))' \
        "$WORK/events.json" >/dev/null || fail "the install does not copy, verify and clear every slot, format root and install boot"
pass "install --json copies and reads back the A slot, clears the B slot, formats root"

compare_with_sfdisk "$WORK/plan.json" "$tgt"
sfdisk --json "$tgt" >"$WORK/tgt.json"
# The A slot's PARTUUIDs are the image's (halves of the usrhash), the B slot's are not.
for i in 1 2 3; do
        sp=$(jq -r ".partitions[$i].copyFrom" "$WORK/plan.json")
        img_uuid=$(jq -r ".source.partitions[$sp].uuid" "$WORK/plan.json")
        img_partno=$(jq -r ".source.partitions[$sp].partno" "$WORK/plan.json")
        a=$(jq -r ".partitiontable.partitions[$i].uuid | ascii_downcase" "$WORK/tgt.json")
        b=$(jq -r ".partitiontable.partitions[$((i + 3))].uuid | ascii_downcase" "$WORK/tgt.json")
        want=$(jq -r --argjson n "$img_partno" '.partitiontable.partitions[] | select(.node | endswith("img" + ($n | tostring))) | .uuid | ascii_downcase' "$WORK/src.json")
        [ "$a" = "$img_uuid" ] && [ "$a" = "$want" ] || fail "partition $((i + 1)) has UUID $a, the image's is $want"
        [ "$b" != "$a" ] || fail "the B slot shares the A slot's UUID $a"
        [ "$(jq -r ".partitiontable.partitions[$((i + 3))].name" "$WORK/tgt.json")" = _empty ] || fail "partition $((i + 4)) is not named _empty"
        [ "$(jq -r ".partitiontable.partitions[$((i + 3))].type" "$WORK/tgt.json")" = \
          "$(jq -r ".partitiontable.partitions[$i].type" "$WORK/tgt.json")" ] || fail "the B slot's type differs from the A slot's"
        [ "$(jq -r ".partitiontable.partitions[$((i + 3))].size" "$WORK/tgt.json")" = \
          "$(jq -r ".partitiontable.partitions[$i].size" "$WORK/tgt.json")" ] || fail "the B slot's size differs from the A slot's"
done
pass "sfdisk: the A slot has the image's types and UUIDs, the B slot is _empty with the same types and sizes"

# The A slot is bit-identical to the image's partitions; the B slot holds nothing blkid knows.
for i in 1 2 3; do
        sp=$(jq -r ".partitions[$i].copyFrom" "$WORK/plan.json")
        s_off=$(jq -r ".source.partitions[$sp].start" "$WORK/plan.json")
        s_len=$(jq -r ".source.partitions[$sp].size" "$WORK/plan.json")
        t_off=$(jq -r ".partitions[$i].start" "$WORK/plan.json")
        cmp -n "$s_len" -i "$s_off:$t_off" "$src" "$tgt" || fail "partition $((i + 1)) differs from the image's"
        b_off=$(jq -r ".partitions[$((i + 3))].start" "$WORK/plan.json")
        b_len=$(jq -r ".partitions[$((i + 3))].size" "$WORK/plan.json")
        [ -z "$(blkid -p -o value -s TYPE -O "$b_off" -S "$b_len" "$tgt" || true)" ] || fail "blkid finds a signature in the B slot $((i + 4))"
        cmp -n 1048576 -i "$b_off:0" "$tgt" /dev/zero || fail "the first MiB of the B slot $((i + 4)) is not zeros"
        cmp -n 1048576 -i "$((b_off + b_len - 1048576)):0" "$tgt" /dev/zero || fail "the last MiB of the B slot $((i + 4)) is not zeros"
done
[ "$(blkid -p -o value -s TYPE -O "$(jq -r '.partitions[1].start' "$WORK/plan.json")" "$tgt")" = squashfs ] \
        || fail "the usr A slot is not the image's squashfs"
pass "the A slot is bit-identical to the image's, the B slot is empty (zeros, no signature)"

r_off=$(jq -r '.partitions[7].start' "$WORK/plan.json")
[ "$(blkid -p -o value -s TYPE -O "$r_off" "$tgt")" = ext4 ] || fail "root is not ext4"
[ "$(blkid -p -o value -s LABEL -O "$r_off" "$tgt")" = root ] || fail "root's filesystem label is not root"
pass "root is made here: ext4, labelled root"

# ---- boot -----------------------------------------------------------------------------------
name=$(jq -r '.source.bootEntries[0].installAs' "$WORK/plan.json")
file=$(jq -r '.source.bootEntries[0].file' "$WORK/plan.json")
id=$(jq -r '.source.imageId' "$WORK/plan.json")
esp="$tgt@@$(jq -r '.partitions[0].start' "$WORK/plan.json")"
mdir -/ -b -i "$esp" ::/ >"$WORK/esp.list"
grep -qxF "::/EFI/Linux/$name" "$WORK/esp.list" || { cat "$WORK/esp.list" >&2; fail "$name is not in /EFI/Linux on the ESP"; }
grep -qxF "::/EFI/Linux/$file" "$WORK/esp.list" && fail "the UKI is also there under its name without the boot counter"
case $name in "${id}_"*+3-0.efi) ;; *) fail "$name is not ${id}_VERSION+3-0.efi" ;; esac
img_esp="$src@@$(jq -r '.partitiontable.partitions[] | select(.type == "C12A7328-F81F-11D2-BA4B-00A0C93EC93B") | .start * 512' "$WORK/src.json")"
mtype -i "$esp" "::/EFI/Linux/$name" | cmp - <(mtype -i "$img_esp" "::/EFI/Linux/$file") || fail "the installed UKI differs from the image's"
mtype -i "$esp" ::/loader/loader.conf | grep -qxF "default ${id}_*" || fail "loader.conf does not default to a glob of every version"
pass "the UKI is on the ESP as $name, loader.conf defaults to ${id}_*"

# ---- settings on the empty root ----------------------------------------------------------------
# The root a usr image gets starts empty; imprint writes only what was chosen into its /etc (the
# image fills the rest from /usr/share/factory/etc at boot without replacing these).
truncate -s 8G "$WORK/settings.img"
"$IMPRINT" install --source "$src" --target "$WORK/settings.img" --hostname usrhost --timezone Europe/Berlin --locale C.UTF-8 \
        --keymap de --yes >"$WORK/settings.log" 2>&1 || { tail -5 "$WORK/settings.log" >&2; fail "install with settings fails"; }
r_off=$(sfdisk --json "$WORK/settings.img" | jq '.partitiontable.partitions[] | select(.name == "root-x86-64") | .start * 512')
mkdir "$WORK/root"
mount -o loop,ro,offset="$r_off" "$WORK/settings.img" "$WORK/root" || fail "cannot mount the installed root"
MOUNTS+=("$WORK/root")
[ "$(cat "$WORK/root/etc/hostname")" = usrhost ] || fail "/etc/hostname is not usrhost"
[ "$(readlink "$WORK/root/etc/localtime")" = ../usr/share/zoneinfo/Europe/Berlin ] || fail "/etc/localtime does not point to Europe/Berlin"
grep -qx "LANG=C.UTF-8" "$WORK/root/etc/locale.conf" || fail "/etc/locale.conf does not set LANG"
grep -qx "KEYMAP=de" "$WORK/root/etc/vconsole.conf" || fail "/etc/vconsole.conf does not set KEYMAP"
[ -z "$(find "$WORK/root" -mindepth 1 -not -path "$WORK/root/etc*" -not -path "$WORK/root/lost+found")" ] \
        || fail "imprint wrote outside /etc of the empty root"
[ ! -e "$WORK/root/etc/machine-id" ] || fail "the empty root has a machine ID before its first boot"
umount "$WORK/root"
pass "hostname, timezone, locale and keymap are written into the empty root's /etc, and nothing else"

# ---- unattended: "imageCertificate" ------------------------------------------------------------
truncate -s 8G "$WORK/unattended.img"
printf '{"source": "%s", "target": "%s", "imageCertificate": "%s"}\n' "$src" "$WORK/unattended.img" "$WORK/other.pem" >"$WORK/bad.json"
"$IMPRINT" unattended --config "$WORK/bad.json" >"$WORK/bad.out" 2>&1 && fail "an unattended install with a certificate that did not sign the image succeeds"
jq -e -s '.[-1].success == false and (.[-1].message | test("verif"))' <(grep '^{' "$WORK/bad.out") >/dev/null \
        || { cat "$WORK/bad.out" >&2; fail "the unattended refusal does not say that the signature does not verify"; }
[ "$(sfdisk --json "$WORK/unattended.img" 2>/dev/null | jq -r '.partitiontable.label // empty')" = "" ] || fail "the refused install wrote a partition table"
printf '{"source": "%s", "target": "%s", "imageCertificate": "%s"}\n' "$src" "$WORK/unattended.img" "$src.cert.pem" >"$WORK/good.json"
"$IMPRINT" unattended --config "$WORK/good.json" >"$WORK/good.out" 2>&1 || { tail -3 "$WORK/good.out" >&2; fail "the unattended install with the image's certificate fails"; }
pass "unattended: imageCertificate is checked before anything is written"

# ---- a block device ------------------------------------------------------------------------------
# Through partition nodes, as on a real disk: the same layout, the B slot empty, root formatted.
truncate -s 8G "$WORK/block.img"
attach "$WORK/block.img"
"$IMPRINT" plan --source "$src" --target "$ATTACHED" --no-encrypt --seed block --plan-file "$WORK/block.json" >/dev/null
"$IMPRINT" install --plan-file "$WORK/block.json" --no-variables --yes >"$WORK/block.log" 2>&1 \
        || { tail -5 "$WORK/block.log" >&2; fail "install to the loop device fails"; }
compare_with_sfdisk "$WORK/block.json" "$ATTACHED"
partx -u "$ATTACHED" 2>/dev/null || true
for n in 5 6 7; do
        [ -z "$(blkid -p -o value -s TYPE "${ATTACHED}p$n" || true)" ] || fail "blkid finds a filesystem in the B slot ${ATTACHED}p$n"
done
[ "$(blkid -p -o value -s TYPE "${ATTACHED}p2")" = squashfs ] || fail "the usr A slot on ${ATTACHED}p2 is not squashfs"
[ "$(blkid -p -o value -s TYPE "${ATTACHED}p8")" = ext4 ] || fail "root on ${ATTACHED}p8 is not ext4"
pass "the same install to a loop device: A slot copied, B slot empty, root ext4"
