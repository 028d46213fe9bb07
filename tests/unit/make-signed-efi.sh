#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Makes the fixtures of test-authenticode in directory $1 with the stock tools a distribution signs
# with: openssl for the keys, sbsign (sbsigntool) for the signatures, objcopy for a fake shim.
#   ca.{key,crt,der}          a CA ("Imprint Test CA")
#   leaf.{key,crt,der}        a code-signing key the CA issued ("Imprint Test Signer")
#   self.{key,crt,der}        a self-signed key ("Imprint Self Signed")
#   other.{crt,der}           an unrelated self-signed certificate ("Imprint Unrelated")
#   expired.{key,crt,der}     issued by the CA, expired in 2001 ("Imprint Expired Signer")
#   unsigned.efi              systemd-boot, padded to 8 bytes as sbsign pads before signing
#   leaf.efi                  unsigned.efi signed by leaf, with the CA in the signature's bag
#   self.efi, expired.efi     signed by self / expired
#   two.efi                   leaf.efi signed again by self (two signatures)
#   changed.efi               leaf.efi with one byte of its .text section changed
#   leaf.efi.p7               the PKCS#7 signature of leaf.efi, detached by sbattach
#   shim-unsigned.efi         a small PE whose .vendor_cert section holds self.der as shim's
#                             cert_table lays it out (shim's cert.S); shim.efi: it signed by leaf
#   shim-objcopy.efi          unsigned.efi with that section added by objcopy
set -eu -o pipefail

dir=$1
src=${2:-/usr/lib/systemd/boot/efi/systemd-bootx64.efi}
cd "$dir"

req() { # name subject [extra openssl req args...]
        local name=$1 subject=$2
        shift 2
        openssl req -new -newkey rsa:2048 -nodes -keyout "$name.key" -subj "$subject" "$@" 2>/dev/null
}

cat >ext.cnf <<EOF
[leaf]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = codeSigning
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF

req ca "/CN=Imprint Test CA/O=imprint tests" -x509 -days 3650 \
        -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign -out ca.crt
req leaf "/CN=Imprint Test Signer/O=imprint tests" -out leaf.csr
openssl x509 -req -in leaf.csr -CA ca.crt -CAkey ca.key -set_serial 0x1001 -days 3650 \
        -extfile ext.cnf -extensions leaf -out leaf.crt 2>/dev/null
req self "/CN=Imprint Self Signed" -x509 -days 3650 -out self.crt
req other "/CN=Imprint Unrelated" -x509 -days 3650 -out other.crt
rm -f other.key

# A certificate whose validity ended long ago: firmware does not look at the time. openssl x509
# (3.0) cannot date a certificate in the past; openssl ca can.
req expired "/CN=Imprint Expired Signer" -out expired.csr
mkdir cadb
touch cadb/index.txt
echo 1002 >cadb/serial
cat >ca.cnf <<EOF
[ca]
default_ca = test
[test]
database = cadb/index.txt
new_certs_dir = cadb
serial = cadb/serial
default_md = sha256
policy = any
unique_subject = no
[any]
commonName = supplied
EOF
openssl ca -batch -config ca.cnf -cert ca.crt -keyfile ca.key -in expired.csr -notext \
        -startdate 20000101000000Z -enddate 20010101000000Z -extfile ext.cnf -extensions leaf \
        -out expired.crt 2>/dev/null
rm -rf cadb ca.cnf
rm -f ./*.csr

for c in ca leaf self other expired; do
        openssl x509 -in "$c.crt" -outform DER -out "$c.der"
done

# sbsign pads the image to 8 bytes before it appends the certificate table, and signs the padded
# image; pad the unsigned copy the same way so that its hash is the one the signature carries.
cp "$src" unsigned.efi
size=$(stat -c %s unsigned.efi)
truncate -s $(( (size + 7) / 8 * 8 )) unsigned.efi

sbsign --key leaf.key --cert leaf.crt --addcert ca.crt --output leaf.efi unsigned.efi 2>/dev/null
sbsign --key self.key --cert self.crt --output self.efi unsigned.efi 2>/dev/null
sbsign --key expired.key --cert expired.crt --addcert ca.crt --output expired.efi unsigned.efi 2>/dev/null
sbsign --key self.key --cert self.crt --output two.efi leaf.efi 2>/dev/null
sbattach --detach leaf.efi.p7 leaf.efi >/dev/null 2>&1

# One byte of .text, wherever objdump says it starts.
text_offset=$(objdump -h leaf.efi | awk '$2 == ".text" { print $6; exit }')
[ -n "$text_offset" ]
text_offset=$(( 0x$text_offset ))
cp leaf.efi changed.efi
printf '\xcc' | dd of=changed.efi bs=1 seek=$(( text_offset + 16 )) conv=notrunc status=none
cmp -s leaf.efi changed.efi && printf '\x90' | dd of=changed.efi bs=1 seek=$(( text_offset + 16 )) conv=notrunc status=none

# A fake shim as shim's build lays it out: a .vendor_cert section whose name, longer than 8
# characters, is "/4", an offset into the COFF string table after the (empty) symbol table, and
# which holds struct cert_table { u32 vendor_authorized_size, vendor_deauthorized_size,
# vendor_authorized_offset, vendor_deauthorized_offset } with the certificate (self.der) after it.
python3 - self.der shim-unsigned.efi <<'PY'
import struct, sys
der = open(sys.argv[1], "rb").read()
vendor = struct.pack("<IIII", len(der), 0, 16, 16 + len(der)) + der
text = b"\xc3" + b"imprint fake shim".ljust(63, b"\0")
E_LFANEW, FA, SA, OPT = 0x80, 0x200, 0x1000, 240
up = lambda n, a: (n + a - 1) // a * a
sections = [(b".text", text, 0x60000020), (b"/4", vendor, 0x40000040)]
headers = up(E_LFANEW + 24 + OPT + 40 * len(sections), FA)
off, va, table, body = headers, SA, bytearray(), bytearray()
for name, data, flags in sections:
    raw = up(len(data), FA)
    table += name.ljust(8, b"\0") + struct.pack("<IIIIIIHHI", len(data), va, raw, off, 0, 0, 0, 0, flags)
    body += data.ljust(raw, b"\0")
    off += raw
    va += up(raw, SA)
strtab = b".vendor_cert\0"
strtab = struct.pack("<I", 4 + len(strtab)) + strtab
p = bytearray(headers)
p[0:2] = b"MZ"
struct.pack_into("<I", p, 0x3C, E_LFANEW)
p[E_LFANEW:E_LFANEW + 4] = b"PE\0\0"
# Machine, NumberOfSections, TimeDateStamp, PointerToSymbolTable (the string table follows the
# zero symbols), NumberOfSymbols, SizeOfOptionalHeader, Characteristics
struct.pack_into("<HHIIIHH", p, E_LFANEW + 4, 0x8664, len(sections), 0, off, 0, OPT, 0x0206)
o = E_LFANEW + 24
struct.pack_into("<HBBIII", p, o, 0x20B, 2, 40, len(text), len(vendor), 0)
struct.pack_into("<II", p, o + 16, SA, SA)           # AddressOfEntryPoint, BaseOfCode
struct.pack_into("<QII", p, o + 24, 0, SA, FA)       # ImageBase, SectionAlignment, FileAlignment
struct.pack_into("<II", p, o + 56, va, headers)      # SizeOfImage, SizeOfHeaders
struct.pack_into("<HH", p, o + 68, 10, 0)            # Subsystem: EFI application
struct.pack_into("<I", p, o + 108, 16)               # NumberOfRvaAndSizes
p[o + OPT:o + OPT + len(table)] = table
open(sys.argv[2], "wb").write(bytes(p) + body + strtab.ljust(up(len(strtab), 8), b"\0"))
PY
sbsign --key leaf.key --cert leaf.crt --addcert ca.crt --output shim.efi shim-unsigned.efi 2>/dev/null

# The same section added by GNU objcopy, which cuts the name to ".vendor_" in an image.
python3 - self.der vendor_cert.bin <<'PY'
import struct, sys
der = open(sys.argv[1], "rb").read()
open(sys.argv[2], "wb").write(struct.pack("<IIII", len(der), 0, 16, 16 + len(der)) + der)
PY
objcopy --add-section .vendor_cert=vendor_cert.bin --set-section-flags .vendor_cert=data,readonly \
        --change-section-vma .vendor_cert=0x80000 unsigned.efi shim-objcopy.efi
rm -f vendor_cert.bin ext.cnf
