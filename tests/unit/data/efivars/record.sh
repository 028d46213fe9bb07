#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# record.sh [OVMF_DIR] — regenerates the recorded efivarfs directories beside this script from
# Debian's OVMF variable stores (package ovmf, bookworm's 2022.11; OVMF_DIR defaults to
# /usr/share/OVMF). Each directory holds files named <Name>-<vendor-guid> with a 32-bit
# little-endian attributes word followed by the data, as Linux's efivarfs shows them.
#
# PK, KEK, db and dbx are copied byte for byte from the store's live authenticated-variable
# records (edk2 MdeModulePkg's format; the reader is the one of tests/e2e/ovmf-var.sh). SecureBoot,
# SetupMode, AuditMode and DeployedMode are volatile: the firmware computes them at boot and they
# are not in the store, so they are written here (attributes 0x6, boot service + runtime access,
# as efivarfs shows them) with the values edk2 computes for that store:
#   ms-secureboot/   OVMF_VARS_4M.ms.fd        PK, KEK, db, dbx as stored; SecureBoot 1, SetupMode 0
#   snakeoil/        OVMF_VARS_4M.snakeoil.fd  PK/KEK/db (the snakeoil cert); SecureBoot 1, SetupMode 0
#   setup-mode/      OVMF_VARS_4M.fd           no PK/KEK/db; SecureBoot 0, SetupMode 1
#   user-off/        OVMF_VARS_4M.ms.fd        as ms-secureboot with SecureBoot 0 (switched off)
#   no-secure-boot/  (none)                    only a BootOrder: UEFI without Secure Boot
# Only the Secure Boot variables are kept (the stores' other variables are boot entries and
# platform settings that say nothing here). Needs /usr/bin/python3 (stdlib only).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ovmf=${1:-/usr/share/OVMF}

/usr/bin/python3 - "$here" "$ovmf" <<'EOF'
import os, shutil, struct, sys, uuid

here, ovmf = sys.argv[1:3]
GLOBAL = uuid.UUID("8be4df61-93ca-11d2-aa0d-00e098032b8c")       # gEfiGlobalVariableGuid
SECURITY_DB = uuid.UUID("d719b2cb-3d3a-4596-a3bc-dad00e67656f")  # gEfiImageSecurityDatabaseGuid
WANT = {("PK", GLOBAL), ("KEK", GLOBAL), ("db", SECURITY_DB), ("dbx", SECURITY_DB)}

def read_store(path):
    data = open(path, "rb").read()
    NVDATA_FV = uuid.UUID("fff12b8d-7696-4c8b-a985-2747075b4f50")
    AUTH_STORE = uuid.UUID("aaf32c78-947b-439a-a180-2e144ec37792")
    if len(data) < 0x1000 or data[40:44] != b"_FVH" or uuid.UUID(bytes_le=data[16:32]) != NVDATA_FV:
        sys.exit(f"record.sh: {path}: not an OVMF variable store")
    vs = struct.unpack_from("<H", data, 48)[0]
    if uuid.UUID(bytes_le=data[vs:vs + 16]) != AUTH_STORE:
        sys.exit(f"record.sh: {path}: variable store is not of the authenticated kind")
    store_end = vs + struct.unpack_from("<I", data, vs + 16)[0]
    HDR = struct.Struct("<HBBIQ16sIII16s")
    VAR_ADDED, VAR_IN_DELETED_TRANSITION = 0x3F, 0xFE
    align4 = lambda n: (n + 3) & ~3
    off = align4(vs + 28)
    found = {}
    while off + HDR.size <= store_end:
        h = HDR.unpack_from(data, off)
        if h[0] != 0x55AA:
            break
        state, attr, nsize, dsize, guid = h[1], h[3], h[7], h[8], uuid.UUID(bytes_le=h[9])
        name = data[off + HDR.size:off + HDR.size + nsize].decode("utf-16-le", "replace").rstrip("\0")
        if state in (VAR_ADDED, VAR_ADDED & VAR_IN_DELETED_TRANSITION) and (name, guid) in WANT:
            found[(name, guid)] = (attr, data[off + HDR.size + nsize:off + HDR.size + nsize + dsize])
        off = align4(off + HDR.size + nsize + dsize)
    return found

def write_var(d, name, guid, attr, value):
    with open(os.path.join(d, f"{name}-{guid}"), "wb") as f:
        f.write(struct.pack("<I", attr) + value)

def make(dirname, store, secure_boot, setup_mode):
    d = os.path.join(here, dirname)
    shutil.rmtree(d, ignore_errors=True)
    os.mkdir(d)
    if store:
        for (name, guid), (attr, value) in sorted(read_store(os.path.join(ovmf, store)).items()):
            # efivarfs shows the attributes without EFI_VARIABLE_APPEND_WRITE (never stored)
            write_var(d, name, guid, attr & ~0x40, value)
    for name, v in (("SecureBoot", secure_boot), ("SetupMode", setup_mode),
                    ("AuditMode", 0), ("DeployedMode", 0)):
        write_var(d, name, GLOBAL, 0x6, bytes([v]))

make("ms-secureboot", "OVMF_VARS_4M.ms.fd", 1, 0)
make("snakeoil", "OVMF_VARS_4M.snakeoil.fd", 1, 0)
make("setup-mode", "OVMF_VARS_4M.fd", 0, 1)
make("user-off", "OVMF_VARS_4M.ms.fd", 0, 0)

d = os.path.join(here, "no-secure-boot")
shutil.rmtree(d, ignore_errors=True)
os.mkdir(d)
write_var(d, "BootOrder", GLOBAL, 0x7, struct.pack("<HH", 1, 0))
EOF
for d in ms-secureboot snakeoil setup-mode user-off no-secure-boot; do
        echo "$d: $(cd "$here/$d" && ls | tr '\n' ' ')"
done
