#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
# Writes the synthetic seeds of corpus/fuzz-pe/: small PE images laid out as tests/unit/test-pe.c
# builds them (UKIs with and without optional sections, a PE32 image, a systemd-boot-like stamp),
# so that the corpus stays a few KiB. Run it from tests/fuzz/ to regenerate them.
import struct, sys, os

E_LFANEW, FILE_ALIGN, SECT_ALIGN = 0x80, 0x200, 0x1000

def up(n, a):
    return (n + a - 1) // a * a

def pe(sections, magic=0x20B, machine=0x8664, subsystem=10, tail=b""):
    opt = 240 if magic == 0x20B else 224
    table = E_LFANEW + 24 + opt
    off = up(table + 40 * len(sections), FILE_ALIGN)
    size = off + sum(up(len(d), FILE_ALIGN) for _, d in sections)
    p = bytearray(size)
    p[0:2] = b"MZ"
    struct.pack_into("<I", p, 0x3C, E_LFANEW)
    p[E_LFANEW:E_LFANEW + 4] = b"PE\0\0"
    struct.pack_into("<HHIIIHH", p, E_LFANEW + 4, machine, len(sections), 0, 0, 0, opt, 0x0206)
    o = E_LFANEW + 24
    struct.pack_into("<H", p, o, magic)
    struct.pack_into("<II", p, o + 32, SECT_ALIGN, FILE_ALIGN)
    struct.pack_into("<H", p, o + 68, subsystem)
    va = SECT_ALIGN
    for i, (name, data) in enumerate(sections):
        h = table + 40 * i
        raw = up(len(data), FILE_ALIGN)
        p[h:h + len(name)] = name
        struct.pack_into("<IIII", p, h + 8, len(data), va, raw, off)
        p[off:off + len(data)] = data
        off += raw
        va += up(max(raw, 1), SECT_ALIGN)
    struct.pack_into("<I", p, o + 56, va)
    return bytes(p) + tail

def bzimage(banner):
    k = bytearray(0x400)
    k[0:2] = b"MZ"
    k[0x202:0x206] = b"HdrS"
    struct.pack_into("<HH", k, 0x206, 0x020F, 0)
    struct.pack_into("<H", k, 0x20E, 0x100)
    k[0x300:0x300 + len(banner)] = banner
    return bytes(k)

osrel = (b'NAME="Imprint Fake OS"\nPRETTY_NAME="Imprint Fake OS 7"\nID=imprintfake\n'
         b'VERSION_ID=7\nIMAGE_ID=fakeos\nIMAGE_VERSION=7\n')
pem = b"-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEu1mOg9dwzO8x3R1Y\n-----END PUBLIC KEY-----\n"
out = "corpus/fuzz-pe"
os.makedirs(out, exist_ok=True)
seeds = {
    "uki-full": pe([(b".osrel", osrel), (b".cmdline", b"console=ttyS0 rw \n\0\0"), (b".uname", b"6.1.0-fake-amd64\n"),
                    (b".sbat", b"sbat,1,SBAT Version,sbat,1,https://example.org\n"), (b".pcrsig", b"{}"),
                    (b".pcrpkey", pem), (b".linux", bzimage(b"6.1.0-fake-amd64 (x@y) #1 SMP"))]),
    "uki-minimal": pe([(b".linux", bzimage(b"6.1.0-min (x) #1")), (b".osrel", b"ID=min\n")]),
    "uki-no-osrel": pe([(b".linux", bzimage(b""))]),
    "pe32-ia32": pe([(b".text", b"\xc3" * 16), (b".8charsx", b"x")], magic=0x10B, machine=0x14C, subsystem=11),
    "sdboot-stamp": pe([(b".text", b"\xc3" * 16), (b".sdmagic", b"#### LoaderInfo: systemd-boot 252.39-1~deb12u2 ####\0")],
                       tail=b"#### LoaderInfo: unterminated"),
    "edge-truncated": pe([(b".osrel", osrel), (b".linux", bzimage(b"6"))])[:0x1C0],
}
for name, data in seeds.items():
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)
