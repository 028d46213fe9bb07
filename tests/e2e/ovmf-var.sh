#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# ovmf-var.sh VARS NAME [GUID] — prints the value of the live EFI variable NAME (vendor GUID,
# default systemd's Boot Loader Interface 4a67b082-0a4c-41cf-b6c7-440b29bb8c4f) from an OVMF
# variable store file (a copy of OVMF_VARS_4M.fd a VM has used; QEMU must not be running on it),
# read straight from the firmware's own format (the authenticated-variable records of edk2's
# MdeModulePkg, as ovmf-vars-pcr7.sh writes them). The value is printed as text when it is a
# UTF-16LE string (as sd-boot and logind write LoaderEntryDefault, LoaderEntryOneShot: a NUL at
# the end is dropped), else as hex. Exit status: 0 printed, 3 no such (live) variable, 1 VARS is
# not an OVMF variable store, 2 bad usage.
#
# The host's referee for what the guest and the boot loader left in the firmware between two
# boots (LoaderEntryOneShot set by "systemctl reboot --boot-loader-entry=…", consumed by sd-boot;
# LoaderEntryDefault set while a reset runs), with no tool of the guest involved.
set -euo pipefail

usage() {
        sed -n '3,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//' >&2
        exit 2
}
if [ $# -lt 2 ] || [ $# -gt 3 ]; then usage; fi
case $1 in -h | --help) usage ;; esac
[ -f "$1" ] || { echo "no such file: $1" >&2; exit 2; }

exec /usr/bin/python3 - "$1" "$2" "${3:-4a67b082-0a4c-41cf-b6c7-440b29bb8c4f}" <<'EOF'
import struct, sys, uuid

path, want_name, want_guid = sys.argv[1], sys.argv[2], uuid.UUID(sys.argv[3])
data = open(path, "rb").read()

def die(msg, rc=1):
    print(f"ovmf-var: {path}: {msg}", file=sys.stderr)
    sys.exit(rc)

NVDATA_FV = uuid.UUID("fff12b8d-7696-4c8b-a985-2747075b4f50")   # gEfiSystemNvDataFvGuid
AUTH_STORE = uuid.UUID("aaf32c78-947b-439a-a180-2e144ec37792")  # gEfiAuthenticatedVariableGuid
if len(data) < 0x1000 or data[40:44] != b"_FVH" or uuid.UUID(bytes_le=data[16:32]) != NVDATA_FV:
    die("not an OVMF variable store (no NV data firmware volume)")
vs = struct.unpack_from("<H", data, 48)[0]
if uuid.UUID(bytes_le=data[vs:vs + 16]) != AUTH_STORE:
    die("variable store is not of the authenticated kind")
store_end = vs + struct.unpack_from("<I", data, vs + 16)[0]

# AUTHENTICATED_VARIABLE_HEADER: StartId, State, Reserved, Attributes, MonotonicCount,
# TimeStamp, PubKeyIndex, NameSize, DataSize, VendorGuid.
HDR = struct.Struct("<HBBIQ16sIII16s")
VAR_ADDED, VAR_IN_DELETED_TRANSITION = 0x3F, 0xFE
align4 = lambda n: (n + 3) & ~3
off = align4(vs + 28)
value = None
while off + HDR.size <= store_end:
    h = HDR.unpack_from(data, off)
    if h[0] != 0x55AA:
        break
    state, nsize, dsize, guid = h[1], h[7], h[8], h[9]
    name = data[off + HDR.size:off + HDR.size + nsize].decode("utf-16-le", "replace").rstrip("\0")
    # The last live record wins (a record in deleted transition is live until its successor is).
    if state in (VAR_ADDED, VAR_ADDED & VAR_IN_DELETED_TRANSITION) and name == want_name \
            and uuid.UUID(bytes_le=guid) == want_guid:
        value = data[off + HDR.size + nsize:off + HDR.size + nsize + dsize]
    off = align4(off + HDR.size + nsize + dsize)
if value is None:
    sys.exit(3)
text = None
if len(value) % 2 == 0:
    try:
        t = value.decode("utf-16-le")
        if t.endswith("\0"):
            t = t[:-1]
        if t.isprintable():
            text = t
    except UnicodeDecodeError:
        pass
print(text if text is not None else value.hex())
EOF
