#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# make-update-disk.sh CACHE_DIR VERSION... OUT — the update disk of the usr life-cycle test: an
# ext4 file system image at OUT, label "imprint-upd", holding the published versions of the usr
# test image from CACHE_DIR (the directory build-usr-ddi.sh prints): per VERSION the split
# artefacts imprint-usr_V.usr.UUID.raw, imprint-usr_V.usr-verity.UUID.raw,
# imprint-usr_V.usr-verity-sig.UUID.raw and the UKI imprint-usr_V.efi, plus a SHA256SUMS of them
# (the index a url-file source would have). The image mounts it on /run/imprint-updates
# (run-imprint\x2dupdates.mount), where its sysupdate.d transfers look (Type=regular-file).
# Made without mounting (mkfs.ext4 -d). Prints OUT on stdout.
set -euo pipefail

[ $# -ge 3 ] || { echo "usage: $0 CACHE_DIR VERSION... OUT" >&2; exit 2; }
src=$1
shift
out=${*: -1}
versions=("${@:1:$#-1}")
[ -f "$src/complete" ] || { echo "make-update-disk: $src is not a complete build of build-usr-ddi.sh" >&2; exit 1; }
command -v mkfs.ext4 >/dev/null || { echo "make-update-disk: mkfs.ext4 (e2fsprogs) is missing" >&2; exit 1; }

stage=$(mktemp -d "${TMPDIR:-/var/tmp}/imprint-upd.XXXXXX")
trap 'rm -rf "$stage"' EXIT
chmod 755 "$stage"
for v in "${versions[@]}"; do
        n=0
        for f in "$src/imprint-usr_$v".usr.*.raw "$src/imprint-usr_$v".usr-verity.*.raw \
                "$src/imprint-usr_$v".usr-verity-sig.*.raw "$src/imprint-usr_$v.efi"; do
                [ -f "$f" ] || continue
                ln "$f" "$stage/" 2>/dev/null || cp --sparse=always "$f" "$stage/"
                n=$((n + 1))
        done
        [ "$n" = 4 ] || { echo "make-update-disk: version $v of $src has $n of the 4 artefacts" >&2; exit 1; }
done
(cd "$stage" && sha256sum -- * >SHA256SUMS)

used=$(du -sb --apparent-size "$stage" | cut -f1)
size_mib=$(((used * 11 / 10) / 1048576 + 32))
rm -f "$out"
truncate -s "${size_mib}M" "$out"
mkfs.ext4 -q -F -L imprint-upd -m 0 -E root_owner=0:0 -d "$stage" "$out"
echo "$out"
