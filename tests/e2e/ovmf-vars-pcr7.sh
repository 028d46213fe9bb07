#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# ovmf-vars-pcr7.sh IN OUT [TAG] — writes OUT, a copy of the OVMF variable store IN (an
# OVMF_VARS_4M.fd or a copy a VM has used) whose next boot measures a different PCR 7, while
# Secure Boot stays off, so unsigned systemd-boot and UKIs still start.
#
# How: one more entry in dbx, the UEFI forbidden-signatures database, as a firmware update of
# dbx would add: an EFI_SIGNATURE_LIST with one EFI_CERT_SHA256 entry, the sha256 of
# "imprint-test pcr7 TAG" (TAG defaults to "1"; run it on its own OUT with another TAG for yet
# another PCR 7). The firmware (edk2's Tcg2Dxe) measures SecureBoot, PK, KEK, db and dbx into
# PCR 7 at every boot (EV_EFI_VARIABLE_DRIVER_CONFIG events), enforced or not, so a changed dbx
# changes PCR 7. No PK gets enrolled: an IN without one (OVMF_VARS_4M.fd and the copies VMs
# made of it) stays in setup mode with SecureBoot 0, so nothing is verified. Nothing else
# changes (boot entries, BootOrder and every other variable are kept byte for byte). The hash
# matches no real binary.
#
# The variable is written straight into the store in the firmware's own format (an
# authenticated-variable record; a dbx that exists already is marked deleted and rewritten with
# the new list appended), as virt-fw-vars from python3-virt-firmware would do; that package is
# not in bookworm, hence this stdlib-only Python. Checked with Debian 12's ovmf 2022.11 (4 MiB
# VARS) and QEMU's pflash; the file must not be in use by a running QEMU.
#
# Prints the dbx entry count before and after. Exit status: 0 written, 1 IN is not an OVMF
# variable store, has no room, or already has TAG's entry, 2 bad usage.
set -euo pipefail

usage() {
        sed -n '3,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//' >&2
        exit 2
}
if [ $# -lt 2 ] || [ $# -gt 3 ]; then usage; fi
case $1 in -h | --help) usage ;; esac
IN=$1 OUT=$2 TAG=${3:-1}
[ -f "$IN" ] || { echo "no such file: $IN" >&2; exit 2; }

PY=/usr/bin/python3     # Debian's, not another python3 on PATH
if [ ! -x "$PY" ]; then
        [ "$(id -u)" = 0 ] || { echo "needs $PY (package python3-minimal)" >&2; exit 1; }
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-minimal >/dev/null
fi

exec "$PY" - "$IN" "$OUT" "$TAG" <<'EOF'
import hashlib, os, struct, sys, uuid

src, dst, tag = sys.argv[1:4]
data = bytearray(open(src, "rb").read())

def die(msg):
    print(f"ovmf-vars-pcr7: {src}: {msg}", file=sys.stderr)
    sys.exit(1)

# Firmware volume header (PI spec): ZeroVector[16], FileSystemGuid, FvLength, "_FVH", ...
NVDATA_FV = uuid.UUID("fff12b8d-7696-4c8b-a985-2747075b4f50")   # gEfiSystemNvDataFvGuid
AUTH_STORE = uuid.UUID("aaf32c78-947b-439a-a180-2e144ec37792")  # gEfiAuthenticatedVariableGuid
if len(data) < 0x1000 or data[40:44] != b"_FVH" or uuid.UUID(bytes_le=bytes(data[16:32])) != NVDATA_FV:
    die("not an OVMF variable store (no NV data firmware volume)")
fv_hdr_len = struct.unpack_from("<H", data, 48)[0]
vs = fv_hdr_len
# VARIABLE_STORE_HEADER: Signature GUID, Size u32, Format u8 (0x5a), State u8 (0xfe), 6 reserved
if uuid.UUID(bytes_le=bytes(data[vs:vs + 16])) != AUTH_STORE:
    die("variable store is not of the authenticated kind")
store_size, fmt, state = struct.unpack_from("<IBB", data, vs + 16)
if fmt != 0x5A or state != 0xFE:
    die(f"variable store not formatted/healthy (format {fmt:#x}, state {state:#x})")
store_end = vs + store_size

# AUTHENTICATED_VARIABLE_HEADER (MdeModulePkg/Include/Guid/VariableFormat.h), 60 bytes:
# StartId u16 (0x55aa), State u8, Reserved u8, Attributes u32, MonotonicCount u64,
# TimeStamp EFI_TIME (16), PubKeyIndex u32, NameSize u32, DataSize u32, VendorGuid.
HDR = struct.Struct("<HBBIQ16sIII16s")
VAR_ADDED, VAR_DELETED, VAR_IN_DELETED_TRANSITION = 0x3F, 0xFD, 0xFE
SECURITY_DB = uuid.UUID("d719b2cb-3d3a-4596-a3bc-dad00e67656f")  # gEfiImageSecurityDatabaseGuid
GLOBAL = uuid.UUID("8be4df61-93ca-11d2-aa0d-00e098032b8c")       # gEfiGlobalVariableGuid

def align4(n):
    return (n + 3) & ~3

off = align4(vs + 28)
dbx = None          # (offset, header tuple) of the live dbx
has_pk = False
while off + HDR.size <= store_end:
    h = HDR.unpack_from(data, off)
    if h[0] != 0x55AA:
        break
    start, st, _, attrs, mc, ts, pki, nsize, dsize, guid = h
    name = bytes(data[off + HDR.size:off + HDR.size + nsize]).decode("utf-16-le", "replace").rstrip("\0")
    live = st in (VAR_ADDED, VAR_ADDED & VAR_IN_DELETED_TRANSITION)
    if live and name == "dbx" and uuid.UUID(bytes_le=guid) == SECURITY_DB:
        dbx = (off, h)
    if live and name == "PK" and uuid.UUID(bytes_le=guid) == GLOBAL:
        has_pk = True
    off = align4(off + HDR.size + nsize + dsize)
free = off
if any(b != 0xFF for b in data[free:store_end]):
    die(f"unexpected data after the last variable at {free:#x}")

# The new EFI_SIGNATURE_LIST: EFI_CERT_SHA256_GUID, ListSize, HeaderSize 0, SignatureSize 48,
# one EFI_SIGNATURE_DATA (owner GUID + 32-byte hash).
CERT_SHA256 = uuid.UUID("c1c41626-504c-4092-aca9-41f936934328")
OWNER = uuid.UUID("7a8e0b6c-9c4f-4d6b-8a2e-696d7072696e")       # arbitrary, "imprin" at the end
digest = hashlib.sha256(f"imprint-test pcr7 {tag}".encode()).digest()
esl = CERT_SHA256.bytes_le + struct.pack("<III", 28 + 48, 0, 48) + OWNER.bytes_le + digest

old_payload = b""
if dbx:
    o, h = dbx
    nsize, dsize = h[7], h[8]
    old_payload = bytes(data[o + HDR.size + nsize:o + HDR.size + nsize + dsize])
    if digest in old_payload:
        die(f"dbx already holds the entry for tag {tag!r}: pass another TAG")

def count_entries(payload):
    n, p = 0, 0
    while p + 28 <= len(payload):
        lsize, hsize, ssize = struct.unpack_from("<III", payload, p + 16)
        if lsize < 28 or ssize == 0:
            break
        n += (lsize - 28 - hsize) // ssize
        p += lsize
    return n

payload = old_payload + esl
name = "dbx\0".encode("utf-16-le")
# NV | BS | RT | TIME_BASED_AUTHENTICATED_WRITE_ACCESS, as the firmware stores dbx.
attrs = 0x01 | 0x02 | 0x04 | 0x20
# EFI_TIME: 2025-01-01 00:00:00 UTC (later than the old dbx's, if any, as an update would be).
ts = struct.pack("<HBBBBBBIhBB", 2025, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0)
def when(t):    # EFI_TIME as a comparable tuple (year, month, day, hour, minute, second, ns)
    return struct.unpack_from("<HBBBBBBI", t)[:6] + struct.unpack_from("<HBBBBBBI", t)[7:]
if dbx and when(dbx[1][5]) > when(ts):  # keep timestamps monotonic: reuse a later one
    ts = dbx[1][5]
record = HDR.pack(0x55AA, VAR_ADDED, 0, attrs, 0, ts, 0, len(name), len(payload), SECURITY_DB.bytes_le)
record += name + payload
if free + len(record) > store_end:
    die("no room left in the variable store")
data[free:free + len(record)] = record
if dbx:         # the old record: deleted once the new one is in place, as the firmware does it
    data[dbx[0] + 2] &= VAR_DELETED

tmp = dst + ".tmp"
with open(tmp, "wb") as f:
    f.write(data)
os.replace(tmp, dst)
print(f"{dst}: dbx entries {count_entries(old_payload)} -> {count_entries(payload)}"
      f" (added sha256 {digest.hex()[:16]}… for tag {tag!r}); "
      + ("PK enrolled: Secure Boot as IN had it" if has_pk else "no PK: Secure Boot stays off"))
EOF
