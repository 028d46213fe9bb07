#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The recovery key's escrow to the OEM's key (imprint(1), "Escrow to the OEM's key"), as far as a
# host without device-mapper gets: the configuration's "recoveryKeyEscrow" and the command line's
# --recovery-key-escrow-certificate. Every bad form is refused with one sentence, exit status 2,
# before anything is written: the old string form (the sentence shows the object form), an object
# with neither a certificate nor "plaintext": true, both, a missing certificate, a file that is not
# PEM, the OEM's private key by mistake, an Ed25519 certificate. A good one gets as far as this
# host allows: the install stops at the missing device-mapper with no key delivered. That the
# .p7m file decrypts with stock openssl and opens the disk is tests/unit/test-escrow.c; an
# install that delivers one is the QEMU rig's.
. "$(dirname "$0")/lib.sh"
need_root "loop devices"
need_tool jq
need_tool objcopy
need_tool openssl

src=$WORK/fakeos.img
bash "$(dirname "$0")/make-fake-ddi.sh" "$src" 200
disk=$WORK/disk.img
truncate -s 4G "$disk"
attach "$disk"
dev=$ATTACHED
before=$(checksum "$disk")

has_dm=false
if dmsetup version >/dev/null 2>&1; then has_dm=true; fi

# The OEM's keys, made as the man page says.
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$WORK/oem.key" -out "$WORK/oem.pem" -subj "/CN=test OEM" -days 2 2>/dev/null
openssl pkey -in "$WORK/oem.key" -pubout -out "$WORK/oem.pub"
openssl req -x509 -newkey ed25519 -nodes -keyout "$WORK/ed.key" -out "$WORK/ed.pem" -subj "/CN=test OEM" -days 2 2>/dev/null
printf 'not a certificate\n' >"$WORK/garbage.pem"
escrow=$WORK/escrow
mkdir -m 0700 "$escrow"

assert_nothing_written() {
        [ "$(checksum "$disk")" = "$before" ] || fail "$1: the target was written"
        [ -z "$(ls -A "$escrow")" ] || fail "$1: something was written to the escrow directory: $(ls -A "$escrow")"
}

# unattended WANT-EXIT JSON: the last event says it failed, and nothing was written.
unattended() {
        echo "$2" >"$WORK/config.json"
        expect_exit "$1" "$IMPRINT" unattended --config "$WORK/config.json"
        jq -e -s '.[-1].event == "result" and .[-1].success == false and .[-1].exitCode == '"$1" "$WORK/stdout" >/dev/null \
                || { cat "$WORK/stdout" >&2; fail "no failed result event for: $2"; }
        assert_nothing_written "unattended: $2"
}
base='"source": "'"$src"'", "target": "'"$dev"'", "seed": "oem", "tpm2": "off", "afterInstall": "none", "onFailure": "none"'

# ---- the configuration ------------------------------------------------------------------------------
unattended 2 "{ $base, \"recoveryKeyEscrow\": \"$escrow\" }"
expect_stderr "\"recoveryKeyEscrow\" must say how the recovery key is protected: {\"directory\": \"$escrow\", \"certificate\": \"/etc/imprint/oem.pem\"} encrypts it"
expect_stderr "{\"directory\": \"$escrow\", \"plaintext\": true} writes it unencrypted."
[ "$(grep -c . "$WORK/stderr")" = 1 ] || { cat "$WORK/stderr" >&2; fail "the refusal is not one line"; }
unattended 2 "{ $base, \"reset\": {\"target\": \"auto\", \"recoveryKeyEscrow\": \"$escrow\"} }"
expect_stderr "\"reset.recoveryKeyEscrow\" must say how the recovery key is protected"
pass "the string form of recoveryKeyEscrow is refused with a sentence that shows the object form"

unattended 2 "{ $base, \"recoveryKeyEscrow\": {\"directory\": \"$escrow\"} }"
expect_stderr "\"recoveryKeyEscrow\" has no \"certificate\" to encrypt the recovery key to"
unattended 2 "{ $base, \"recoveryKeyEscrow\": {\"directory\": \"$escrow\", \"plaintext\": false} }"
expect_stderr "\"plaintext\": true to write the key unencrypted."
unattended 2 "{ $base, \"recoveryKeyEscrow\": {\"directory\": \"$escrow\", \"certificate\": \"$WORK/oem.pem\", \"plaintext\": true} }"
expect_stderr "gives a \"certificate\" and \"plaintext\": true; give one of them."
unattended 2 "{ $base, \"recoveryKeyEscrow\": {\"certificate\": \"$WORK/oem.pem\"} }"
expect_stderr "\"recoveryKeyEscrow\" needs a \"directory\""
unattended 2 "{ $base, \"recoveryKeyEscrow\": {\"directory\": \"escrow\", \"plaintext\": true} }"
expect_stderr "\"recoveryKeyEscrow.directory\" must be an absolute path."
unattended 2 "{ $base, \"recoveryKeyEscrow\": {\"directory\": \"$escrow\", \"cert\": \"$WORK/oem.pem\"} }"
expect_stderr "unknown key \"recoveryKeyEscrow.cert\"."
pass "an escrow without a certificate and without \"plaintext\": true is refused, and so are contradictions"

unattended 2 "{ $base, \"recoveryKeyEscrow\": {\"directory\": \"$escrow\", \"certificate\": \"$WORK/no-such.pem\"} }"
expect_stderr "\"recoveryKeyEscrow.certificate\": Cannot read the certificate $WORK/no-such.pem: it does not exist."
unattended 2 "{ $base, \"recoveryKeyEscrow\": {\"directory\": \"$escrow\", \"certificate\": \"$WORK/garbage.pem\"} }"
expect_stderr "$WORK/garbage.pem is neither a PEM certificate"
unattended 2 "{ $base, \"recoveryKeyEscrow\": {\"directory\": \"$escrow\", \"certificate\": \"$WORK/oem.key\"} }"
expect_stderr "$WORK/oem.key is a private key; give the certificate or public key that belongs to it"
unattended 2 "{ $base, \"recoveryKeyEscrow\": {\"directory\": \"$escrow\", \"certificate\": \"$WORK/ed.pem\"} }"
expect_stderr "$WORK/ed.pem holds a key of type ED25519; the recovery key can only be encrypted to an RSA or EC key."
pass "an unreadable certificate, a file that is not PEM, a private key and an Ed25519 key are refused, naming the file"

if ! $has_dm; then
        # Good forms get as far as this host allows; no key is made, so none is delivered.
        for escrow_json in "{\"directory\": \"$escrow\", \"certificate\": \"$WORK/oem.pem\"}" \
                           "{\"directory\": \"$escrow\", \"certificate\": \"$WORK/oem.pub\"}" \
                           "{\"directory\": \"$escrow\", \"plaintext\": true}"; do
                unattended 1 "{ $base, \"recoveryKeyEscrow\": $escrow_json }"
                expect_stderr "This system has no device-mapper"
        done
        pass "certificate, public key and plaintext forms are accepted; the install stops at the missing device-mapper"
fi

# ---- the command line ---------------------------------------------------------------------------------
expect_exit 2 "$IMPRINT" install --source "$src" --target "$dev" --tpm2=off --recovery-key-escrow-certificate="$WORK/oem.pem" --yes
expect_stderr "--recovery-key-escrow-certificate needs --recovery-key-escrow=DIR"
expect_exit 2 "$IMPRINT" install --source "$src" --target "$dev" --tpm2=off --recovery-key-escrow="$escrow" \
        --recovery-key-escrow-certificate="$WORK/garbage.pem" --yes
expect_stderr "imprint install: --recovery-key-escrow-certificate: $WORK/garbage.pem is neither a PEM certificate"
expect_exit 2 "$IMPRINT" install --source "$src" --target "$dev" --tpm2=off --recovery-key-escrow="$escrow" \
        --recovery-key-escrow-certificate="$WORK/oem.key" --yes
expect_stderr "is a private key"
expect_exit 2 "$IMPRINT" install --source "$src" --target "$dev" --no-encrypt --recovery-key-escrow="$escrow" \
        --recovery-key-escrow-certificate="$WORK/oem.pem" --yes
expect_stderr "--no-encrypt contradicts"
expect_exit 2 "$IMPRINT" reset "$dev" --recovery-key-escrow-certificate="$WORK/oem.pem" --yes
expect_stderr "imprint reset: --recovery-key-escrow-certificate needs --recovery-key-escrow=DIR"
expect_exit 2 "$IMPRINT" reset "$dev" --recovery-key-escrow="$escrow" --recovery-key-escrow-certificate="$WORK/no-such.pem" --yes
expect_stderr "Cannot read the certificate $WORK/no-such.pem: it does not exist."
assert_nothing_written "the command line's refusals"
"$IMPRINT" install --help | grep -q -- "--recovery-key-escrow-certificate=PEM" || fail "--help does not list --recovery-key-escrow-certificate"
pass "--recovery-key-escrow-certificate: needs --recovery-key-escrow, checked before anything is planned (exit 2)"

if ! $has_dm; then
        expect_exit 1 "$IMPRINT" install --source "$src" --target "$dev" --tpm2=off --recovery-key-escrow="$escrow" \
                --recovery-key-escrow-certificate="$WORK/oem.pem" --yes --json
        expect_stderr "This system has no device-mapper"
        assert_nothing_written "install with --recovery-key-escrow-certificate"
        pass "install --recovery-key-escrow-certificate with a good certificate stops at the missing device-mapper; nothing written"
fi
