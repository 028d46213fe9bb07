#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The Secure Boot decision (imprint(1), "Secure Boot"), made before anything is written, on this
# host with recorded firmware variables (IMPRINT_EFIVARFS: tests/unit/data/efivars/, Debian's
# OVMF variable stores) and loop devices as the machine's disks. Stock tools are the referees:
# sbsign makes the signed images, efitools the key files systemd-boot enrolls, sbverify checks
# what imprint says is trusted, mtools reads the installed ESP.
#
#   - Secure Boot on with Microsoft's keys, an unsigned image: refused (exit 3) naming the binary
#     and what to do; the target is unchanged byte for byte. --allow-unbootable installs it, and
#     the plan says so.
#   - Secure Boot on with the snakeoil key: the image signed by that key is trusted and installed;
#     the one signed by another key is refused.
#   - Setup mode and an image that carries its keys (loader/keys/auto) and is signed by its db key:
#     the plan enrolls them; the installed ESP has the three .auth files, byte for byte, and
#     loader.conf says "secure-boot-enroll force". The same image with keys that do not sign its
#     chain is refused (it would start nothing once enrolled); --allow-unbootable installs it
#     without the keys.
#   - Setup mode, no keys; Secure Boot off (keys enrolled) with a keys image: installed as it is, no
#     key on the ESP, and the note says the machine is not protected by Secure Boot.
#   - An image file as the target: the machine that boots it decides; nothing is refused.
#   - With encryption and the TPM2 (swtpm): setup mode + keys seals to the UKI's signed PCR 11
#     policy alone and plans the re-seal to PCR 7; without a .pcrpkey the TPM2 is left out.
. "$(dirname "$0")/lib.sh"
need_root "loop devices"
need_tool jq
need_tool sbsign
need_tool sbverify
need_tool cert-to-efi-sig-list
need_tool sign-efi-sig-list
need_tool mtype
need_tool objcopy
need_tool debugfs

data=$(cd "$(dirname "$0")/../unit/data/efivars" && pwd)
for d in ms-secureboot snakeoil setup-mode user-off; do
        [ -d "$data/$d" ] || fail "no recorded efivarfs $data/$d"
done

# --- keys and images ------------------------------------------------------------------------------
# keys DIR NAME: an RSA key and self-signed certificate per PK, KEK and db, and the .auth files
# systemd-boot enrolls (efitools, as the systemd-boot man page describes).
keys() {
        local dir=$1 name=$2 guid
        guid=$(cat /proc/sys/kernel/random/uuid)
        mkdir -p "$dir/auth"
        for k in PK KEK db; do
                openssl req -new -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=$name $k/" \
                        -keyout "$dir/$k.key" -out "$dir/$k.crt" 2>/dev/null
                cert-to-efi-sig-list -g "$guid" "$dir/$k.crt" "$dir/$k.esl" >/dev/null
        done
        sign-efi-sig-list -g "$guid" -k "$dir/PK.key" -c "$dir/PK.crt" PK "$dir/PK.esl" "$dir/auth/PK.auth" >/dev/null
        sign-efi-sig-list -g "$guid" -k "$dir/PK.key" -c "$dir/PK.crt" KEK "$dir/KEK.esl" "$dir/auth/KEK.auth" >/dev/null
        sign-efi-sig-list -g "$guid" -k "$dir/KEK.key" -c "$dir/KEK.crt" db "$dir/db.esl" "$dir/auth/db.auth" >/dev/null
}
keys "$WORK/vendor" "imprint test vendor"
keys "$WORK/other" "imprint test other"
# The snakeoil key Debian's ovmf package ships for tests (its passphrase is "snakeoil").
mkdir -p "$WORK/snakeoil"
openssl rsa -in /usr/share/ovmf/PkKek-1-snakeoil.key -passin pass:snakeoil -out "$WORK/snakeoil/db.key" 2>/dev/null
cp /usr/share/ovmf/PkKek-1-snakeoil.pem "$WORK/snakeoil/db.crt"
# A PCR signing key, whose public half goes into the UKI's .pcrpkey.
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$WORK/pcr.key" 2>/dev/null
openssl pkey -in "$WORK/pcr.key" -pubout -out "$WORK/pcr.pem"
# The .pcrsig beside it: the form systemd-measure writes (its content is not checked before boot).
printf '{"sha256":[{"pcrs":[11],"pkfp":"00","pol":"00","sig":"AA=="}]}' >"$WORK/pcrsig.json"

mk() { # mk NAME [VAR=VALUE…]: a fake DDI of 100 MiB root
        local name=$1
        shift
        env "$@" bash "$(dirname "$0")/make-fake-ddi.sh" "$WORK/$name.img" 100 >/dev/null
}
mk unsigned
mk vendor FAKE_DDI_SIGN="$WORK/vendor" FAKE_DDI_PCRPKEY="$WORK/pcr.pem" FAKE_DDI_PCRSIG="$WORK/pcrsig.json"
# The same with a systemd-boot that says it is 257 (the host's 252 with its version stamp changed):
# systemd-cryptenroll can re-seal at first boot from 256 on.
python3 - /usr/lib/systemd/boot/efi/systemd-bootx64.efi "$WORK/sdboot-257.efi" <<'PY'
import re, sys
b = open(sys.argv[1], "rb").read()
m = re.search(rb"#### LoaderInfo: systemd-boot (\d{3})", b)
assert m, "no LoaderInfo stamp"
b = b[:m.start(1)] + b"257" + b[m.end(1):]
open(sys.argv[2], "wb").write(b)
PY
mk vendor257 FAKE_DDI_SIGN="$WORK/vendor" FAKE_DDI_PCRPKEY="$WORK/pcr.pem" FAKE_DDI_PCRSIG="$WORK/pcrsig.json" FAKE_DDI_SDBOOT="$WORK/sdboot-257.efi"
mk vendor-nopk FAKE_DDI_SIGN="$WORK/vendor"
mk vendor-nosig FAKE_DDI_SIGN="$WORK/vendor" FAKE_DDI_PCRPKEY="$WORK/pcr.pem"
mk snakeoil FAKE_DDI_SIGN="$WORK/snakeoil"
# Signed by "other", carrying vendor's keys: once enrolled, nothing would start.
mkdir -p "$WORK/mismatch" && cp "$WORK/other/db.key" "$WORK/other/db.crt" "$WORK/mismatch/" && cp -r "$WORK/vendor/auth" "$WORK/mismatch/auth"
mk mismatch FAKE_DDI_SIGN="$WORK/mismatch"

uki_of() { mtype -i "$WORK/$1.img@@1M" ::/EFI/Linux/fakeos_7.efi >"$WORK/$1.uki"; }
for i in vendor snakeoil unsigned; do uki_of $i; done
sbverify --cert "$WORK/vendor/db.crt" "$WORK/vendor.uki" >/dev/null 2>&1 || fail "sbverify: the vendor image's UKI is not signed by its db key"
sbverify --cert /usr/share/ovmf/PkKek-1-snakeoil.pem "$WORK/snakeoil.uki" >/dev/null 2>&1 || fail "sbverify: the snakeoil image's UKI"
! sbverify --cert /usr/share/ovmf/PkKek-1-snakeoil.pem "$WORK/vendor.uki" >/dev/null 2>&1 || fail "sbverify trusts the vendor UKI with the snakeoil key"
pass "test images: unsigned, signed by the vendor's db key (with its keys, with and without .pcrpkey), by snakeoil, and a mismatch (sbverify agrees)"

# A 3 GiB disk of random-looking old data, attached as a loop device: a disk of "this machine".
truncate -s 3G "$WORK/disk.img"
head -c $((8 << 20)) /dev/urandom | dd of="$WORK/disk.img" conv=notrunc status=none
head -c $((8 << 20)) /dev/urandom | dd of="$WORK/disk.img" bs=1M seek=$((3 * 1024 - 8)) conv=notrunc status=none
attach "$WORK/disk.img"
dev=$ATTACHED
before=$(checksum "$WORK/disk.img")

install_with() { # install_with STATE IMAGE [OPTIONS…]: the plan (JSON in $WORK/plan.json), then the install
        local state=$1 image=$2
        shift 2
        IMPRINT_EFIVARFS="$data/$state" "$IMPRINT" plan --source "$WORK/$image.img" --target "$dev" --no-encrypt --json "$@" >"$WORK/plan.json" 2>"$WORK/stderr" || return $?
        IMPRINT_EFIVARFS="$data/$state" "$IMPRINT" install --source "$WORK/$image.img" --target "$dev" --no-encrypt --yes "$@" >"$WORK/out" 2>&1 || {
                cat "$WORK/out" >&2
                return 1
        }
}
esp_file() { mtype -i "${dev}p1" "::$1" 2>/dev/null; }

# --- Secure Boot on, Microsoft's keys -------------------------------------------------------------
expect_exit 0 env IMPRINT_EFIVARFS="$data/ms-secureboot" "$IMPRINT" firmware --json
jq -e '.mode == "user" and .secureBoot == true' "$WORK/stdout" >/dev/null || fail "the recorded Microsoft store does not read as Secure Boot on"
expect_exit 3 env IMPRINT_EFIVARFS="$data/ms-secureboot" "$IMPRINT" install --source "$WORK/unsigned.img" --target "$dev" --no-encrypt --yes
expect_stderr "Secure Boot is on, and the installed system would not start"
expect_stderr "not signed"
expect_stderr "--allow-unbootable"
expect_stderr "Nothing was written"
[ "$(checksum "$WORK/disk.img")" = "$before" ] || fail "the refused install changed the disk"
pass "Secure Boot on (Microsoft keys), unsigned image: refused, exit 3, the reason and the way out named, the disk unchanged"

install_with ms-secureboot unsigned --allow-unbootable || fail "--allow-unbootable did not install"
jq -e '.secureBoot.action == "unbootable" and .secureBoot.allowedUnbootable == true' "$WORK/plan.json" >/dev/null \
        || fail "the plan does not say it installs an unbootable chain"
grep -q "allow-unbootable" "$WORK/out" || fail "the install's output does not warn about --allow-unbootable"
esp_file /loader/loader.conf | grep -q secure-boot-enroll && fail "keys enrollment in loader.conf of an unsigned install"
pass "--allow-unbootable installs it, and plan and output say the firmware will refuse it"

# --- Secure Boot on, the snakeoil key in db ---------------------------------------------------------
install_with snakeoil snakeoil || fail "the snakeoil-signed image was not installed with the snakeoil db"
jq -e '.secureBoot.action == "trusted" and (.secureBoot.chain | test("SnakeOil"))' "$WORK/plan.json" >/dev/null \
        || { jq .secureBoot "$WORK/plan.json" >&2; fail "the plan does not say the snakeoil chain is trusted"; }
expect_exit 3 env IMPRINT_EFIVARFS="$data/snakeoil" "$IMPRINT" install --source "$WORK/vendor.img" --target "$dev" --no-encrypt --yes
expect_stderr "imprint test vendor db"
pass "Secure Boot on (snakeoil db): the image signed by it is trusted and installed; one signed by another key is refused, naming its signer"

# --- setup mode -------------------------------------------------------------------------------------
install_with setup-mode vendor || fail "setup mode + an image with keys did not install"
jq -e '.secureBoot.action == "enroll" and .secureBoot.keys == "auto" and .secureBoot.firmwareMode == "setup"' "$WORK/plan.json" >/dev/null \
        || { jq .secureBoot "$WORK/plan.json" >&2; fail "the plan does not enroll the image's keys"; }
for k in PK KEK db; do
        esp_file "/loader/keys/auto/$k.auth" >"$WORK/got.auth" || fail "no loader/keys/auto/$k.auth on the installed ESP"
        cmp -s "$WORK/got.auth" "$WORK/vendor/auth/$k.auth" || fail "loader/keys/auto/$k.auth differs from the image's"
done
esp_file /loader/loader.conf | grep -qx "secure-boot-enroll force" || fail "loader.conf does not say secure-boot-enroll force"
IMPRINT_EFIVARFS="$data/setup-mode" "$IMPRINT" plan --source "$WORK/vendor.img" --target "$dev" --no-encrypt >"$WORK/plan.txt"
grep -q "first boot enrolls the image's Secure Boot keys" "$WORK/plan.txt" || fail "the plan's text does not say the first boot enrolls keys"
pass "setup mode + keys: PK, KEK and db.auth on the ESP byte for byte, loader.conf has secure-boot-enroll force, the plan says the first boot enrolls them"

# The recovery entry (the medium's UKI) is one more binary systemd-boot asks the firmware to start:
# unsigned, it would only say "Access denied" once the keys are enrolled, so it is left out, and
# the plan says why; signed by the image's db key it is installed.
# Tens of MiB, as the medium's recovery UKI (36 MiB) is: an extra section of 40 MiB.
head -c $((40 << 20)) /dev/urandom >"$WORK/initrd.big"
objcopy --add-section .initrd="$WORK/initrd.big" --change-section-vma .initrd=0x4000000 "$WORK/unsigned.uki" "$WORK/recovery-unsigned.efi"
sbsign --key "$WORK/vendor/db.key" --cert "$WORK/vendor/db.crt" --output "$WORK/recovery-signed.efi" "$WORK/recovery-unsigned.efi" 2>/dev/null
IMPRINT_RECOVERY_UKI=$WORK/recovery-unsigned.efi IMPRINT_EFIVARFS="$data/setup-mode" "$IMPRINT" plan --source "$WORK/vendor.img" \
        --target "$dev" --no-encrypt --json >"$WORK/plan.json"
jq -e '.secureBoot.recoveryEntryRefused == true and .recoveryUki == null and (.secureBoot.note | test("recovery entry is not installed"))' \
        "$WORK/plan.json" >/dev/null || { jq '.secureBoot, .recoveryUki' "$WORK/plan.json" >&2; fail "an unsigned recovery entry is planned after an enrollment"; }
IMPRINT_RECOVERY_UKI=$WORK/recovery-signed.efi IMPRINT_EFIVARFS="$data/setup-mode" "$IMPRINT" plan --source "$WORK/vendor.img" \
        --target "$dev" --no-encrypt --json >"$WORK/plan.json"
jq -e '.secureBoot.recoveryEntryRefused == false and .recoveryUki.path != null' "$WORK/plan.json" >/dev/null \
        || fail "a recovery entry signed by the image's db key is left out"
IMPRINT_RECOVERY_UKI=$WORK/recovery-unsigned.efi IMPRINT_EFIVARFS="$data/user-off" "$IMPRINT" plan --source "$WORK/vendor.img" \
        --target "$dev" --no-encrypt --json >"$WORK/plan.json"
jq -e '.recoveryUki.path != null' "$WORK/plan.json" >/dev/null || fail "Secure Boot off: the recovery entry is left out"
pass "the recovery entry: left out (and said) when the enrolled keys would refuse it, installed when they trust it or Secure Boot is off"

expect_exit 3 env IMPRINT_EFIVARFS="$data/setup-mode" "$IMPRINT" install --source "$WORK/mismatch.img" --target "$dev" --no-encrypt --yes
expect_stderr "do not trust its own boot chain"
install_with setup-mode mismatch --allow-unbootable || fail "--allow-unbootable did not install the mismatched image"
esp_file /loader/keys/auto/db.auth >/dev/null 2>&1 && fail "the mismatched keys were installed"
esp_file /loader/loader.conf | grep -q secure-boot-enroll && fail "loader.conf enrolls the mismatched keys"
pass "setup mode, keys that do not sign the chain: refused; --allow-unbootable installs without the keys"

install_with setup-mode unsigned || fail "setup mode + unsigned image"
jq -e '.secureBoot.action == "as-is" and (.secureBoot.note | test("not protected by Secure Boot"))' "$WORK/plan.json" >/dev/null \
        || fail "setup mode without keys: the plan does not say the machine stays unprotected"
install_with user-off vendor || fail "Secure Boot off + keys image"
jq -e '.secureBoot.action == "as-is" and (.secureBoot.note | test("not in setup mode"))' "$WORK/plan.json" >/dev/null \
        || fail "Secure Boot off: the plan does not say the keys are not enrolled"
esp_file /loader/keys/auto/PK.auth >/dev/null 2>&1 && fail "keys installed although the firmware is not in setup mode"
pass "setup mode without keys, and Secure Boot off with a keys image: installed as is, no keys, the note says so"

# Audit mode (AuditMode 1, and SetupMode 1 as the specification has it): nothing is enrolled.
cp -r "$data/setup-mode" "$WORK/audit-mode"
printf '\x06\x00\x00\x00\x01' >"$WORK/audit-mode/AuditMode-8be4df61-93ca-11d2-aa0d-00e098032b8c"
IMPRINT_EFIVARFS=$WORK/audit-mode "$IMPRINT" plan --source "$WORK/vendor.img" --target "$dev" --no-encrypt --json >"$WORK/plan.json"
jq -e '.secureBoot.firmwareMode == "audit" and .secureBoot.action == "as-is" and .secureBoot.keys == null' "$WORK/plan.json" >/dev/null \
        || { jq .secureBoot "$WORK/plan.json" >&2; fail "audit mode: keys would be enrolled"; }
pass "audit mode (SetupMode 1 too): nothing enrolled"

IMPRINT_EFIVARFS=$WORK/no-such-dir "$IMPRINT" plan --source "$WORK/unsigned.img" --target "$dev" --no-encrypt --json >"$WORK/plan.json"
jq -e '.secureBoot.firmwareMode == "not-uefi" and .secureBoot.action == "as-is"' "$WORK/plan.json" >/dev/null || fail "no efivarfs: not as-is"

# --- shim: firmware that trusts only the "UEFI CA" that signed shim --------------------------------
# A stand-in for Microsoft's UEFI CA signs a stand-in shim: an EFI binary with a .vendor_cert
# section (shim's cert_table: authorized size, deauthorized size, their offsets; then the DER) that
# holds the vendor's db certificate, as Debian's shim holds Debian's CA. The firmware variables are
# written here as efivarfs shows them: Secure Boot on, a PK, db = that CA alone.
openssl req -new -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=imprint test UEFI CA/" \
        -keyout "$WORK/uefica.key" -out "$WORK/uefica.crt" 2>/dev/null
openssl x509 -in "$WORK/vendor/db.crt" -outform DER -out "$WORK/vendor.der"
vlen=$(stat -c %s "$WORK/vendor.der")
{ python3 -c "import struct,sys; sys.stdout.buffer.write(struct.pack('<4I', $vlen, 0, 16, 16 + $vlen))"; cat "$WORK/vendor.der"; } >"$WORK/vendor_cert"
objcopy --add-section .vendor_cert="$WORK/vendor_cert" --change-section-vma .vendor_cert=0x40000 \
        /usr/lib/systemd/boot/efi/linuxx64.efi.stub "$WORK/shim.unsigned"
sbsign --key "$WORK/uefica.key" --cert "$WORK/uefica.crt" --output "$WORK/shim.efi" "$WORK/shim.unsigned" 2>/dev/null
mk vendor-shim FAKE_DDI_SIGN="$WORK/vendor" FAKE_DDI_SHIM="$WORK/shim.efi"
fw=$WORK/efivars-uefica
mkdir -p "$fw"
g=8be4df61-93ca-11d2-aa0d-00e098032b8c
printf '\x06\x00\x00\x00\x01' >"$fw/SecureBoot-$g"
printf '\x06\x00\x00\x00\x00' >"$fw/SetupMode-$g"
cert-to-efi-sig-list -g 77fa9abd-0359-4d32-bd60-28f4e78f784b "$WORK/uefica.crt" "$WORK/uefica.esl" >/dev/null
{ printf '\x27\x00\x00\x00'; cat "$WORK/uefica.esl"; } >"$fw/db-d719b2cb-3d3a-4596-a3bc-dad00e67656f"
{ printf '\x27\x00\x00\x00'; cat "$WORK/vendor/PK.esl"; } >"$fw/PK-$g"

IMPRINT_EFIVARFS=$fw "$IMPRINT" install --source "$WORK/vendor.img" --target "$dev" --no-encrypt --yes >"$WORK/out" 2>&1 \
        && fail "an image without shim, signed by a key db does not hold, was installed"
IMPRINT_EFIVARFS=$fw "$IMPRINT" plan --source "$WORK/vendor-shim.img" --target "$dev" --no-encrypt --json >"$WORK/plan.json" \
        || fail "the shim image was refused"
jq -e '.secureBoot.action == "trusted" and .secureBoot.shim == true' "$WORK/plan.json" >/dev/null \
        || { jq .secureBoot "$WORK/plan.json" >&2; fail "the plan does not boot through shim"; }
IMPRINT_EFIVARFS=$fw "$IMPRINT" install --source "$WORK/vendor-shim.img" --target "$dev" --no-encrypt --yes >"$WORK/out" 2>&1 \
        || { cat "$WORK/out" >&2; fail "installing the shim image"; }
esp_file /EFI/systemd/shimx64.efi | cmp -s - "$WORK/shim.efi" || fail "EFI/systemd/shimx64.efi is not the image's shim"
esp_file /EFI/BOOT/BOOTX64.EFI | cmp -s - "$WORK/shim.efi" || fail "the fallback loader is not shim"
debugfs -R "cat /usr/lib/systemd/boot/efi/systemd-bootx64.efi.signed" "$WORK/vendor-shim.img?offset=$((513 << 20))" 2>/dev/null >"$WORK/sdboot.signed" || true
[ -s "$WORK/sdboot.signed" ] || fail "cannot read the image's signed systemd-boot"
esp_file /EFI/systemd/grubx64.efi | cmp -s - "$WORK/sdboot.signed" || fail "EFI/systemd/grubx64.efi (what shim starts) is not the signed systemd-boot"
sbverify --cert "$WORK/uefica.crt" <(esp_file /EFI/systemd/shimx64.efi) >/dev/null 2>&1 || sbverify --cert "$WORK/uefica.crt" "$WORK/shim.efi" >/dev/null 2>&1 \
        || fail "sbverify: the shim is not signed by the stand-in UEFI CA"
pass "Secure Boot on, db holds only the CA that signed shim: the image without shim is refused; with shim it is trusted through shim's vendor certificate, and shim is the fallback loader and EFI/systemd/shimx64.efi with systemd-boot as grubx64.efi beside it"

# --- an image file as the target ---------------------------------------------------------------------
truncate -s 2G "$WORK/file.img"
IMPRINT_EFIVARFS="$data/ms-secureboot" "$IMPRINT" install --source "$WORK/unsigned.img" --target "$WORK/file.img" --yes >"$WORK/out" 2>&1 \
        || { cat "$WORK/out" >&2; fail "an image file target was refused"; }
IMPRINT_EFIVARFS="$data/ms-secureboot" "$IMPRINT" plan --source "$WORK/unsigned.img" --target "$WORK/file.img" --json >"$WORK/plan.json"
jq -e '.secureBoot.action == "other-machine"' "$WORK/plan.json" >/dev/null || fail "image file: not other-machine"
pass "an image file as the target: the machine that boots it decides; installed"

# --- encryption and the TPM2 -------------------------------------------------------------------------
if command -v swtpm >/dev/null; then
        port=$((20000 + RANDOM % 20000))
        mkdir -p "$WORK/tpm"
        swtpm socket --tpm2 --tpmstate dir="$WORK/tpm" --server type=tcp,port=$port --ctrl type=tcp,port=$((port + 1)) \
                --flags not-need-init,startup-clear --daemon --pid file="$WORK/swtpm.pid"
        enc_plan() { IMPRINT_EFIVARFS="$data/$1" "$IMPRINT" plan --source "$WORK/$2.img" --target "$dev" --encrypt --tcti "swtpm:port=$port" --json >"$WORK/plan.json"; }
        enc_plan setup-mode vendor || { kill "$(cat "$WORK/swtpm.pid")"; fail "encrypted plan, setup mode + keys, systemd 252"; }
        jq -e '.encryption.tpm2 == true and .encryption.tpm2Pcrs == 0 and .encryption.tpm2PublicKeyPcrs == 2048
               and .secureBoot.tpm2Reseal == false and (.encryption.note | test("older than 256"))' "$WORK/plan.json" >/dev/null \
                || { jq '.encryption, .secureBoot' "$WORK/plan.json" >&2; kill "$(cat "$WORK/swtpm.pid")"; fail "systemd 252: not the signed policy alone, or a re-seal planned that 252 cannot do"; }
        enc_plan setup-mode vendor257 || { kill "$(cat "$WORK/swtpm.pid")"; fail "encrypted plan, setup mode + keys"; }
        jq -e '.encryption.tpm2 == true and .encryption.tpm2Pcrs == 0 and .encryption.tpm2PublicKeyPcrs == 2048
               and (.encryption.tpm2PublicKey | test("BEGIN PUBLIC KEY")) and .secureBoot.tpm2Reseal == true' "$WORK/plan.json" >/dev/null \
                || { jq '.encryption, .secureBoot' "$WORK/plan.json" >&2; kill "$(cat "$WORK/swtpm.pid")"; fail "setup mode + keys: the TPM2 is not sealed to the signed PCR 11 policy alone"; }
        cmp -s <(jq -j .encryption.tpm2PublicKey "$WORK/plan.json") "$WORK/pcr.pem" || { kill "$(cat "$WORK/swtpm.pid")"; fail "the plan's public key is not the UKI's .pcrpkey"; }
        enc_plan setup-mode vendor-nopk || { kill "$(cat "$WORK/swtpm.pid")"; fail "encrypted plan, keys without .pcrpkey"; }
        jq -e '.encryption.tpm2 == false and (.encryption.note | test("pcrpkey"))' "$WORK/plan.json" >/dev/null \
                || { kill "$(cat "$WORK/swtpm.pid")"; fail "without .pcrpkey the TPM2 is still used across the enrollment"; }
        enc_plan setup-mode vendor-nosig || { kill "$(cat "$WORK/swtpm.pid")"; fail "encrypted plan, .pcrpkey without .pcrsig"; }
        jq -e '.encryption.tpm2 == false and (.encryption.note | test("pcrsig"))' "$WORK/plan.json" >/dev/null \
                || { kill "$(cat "$WORK/swtpm.pid")"; fail "a .pcrpkey without .pcrsig is sealed to: it could never unlock"; }
        enc_plan user-off vendor || { kill "$(cat "$WORK/swtpm.pid")"; fail "encrypted plan, Secure Boot off"; }
        jq -e '.encryption.tpm2Pcrs == 128 and .secureBoot.tpm2Reseal == false' "$WORK/plan.json" >/dev/null \
                || { kill "$(cat "$WORK/swtpm.pid")"; fail "Secure Boot off: the TPM2 is not on PCR 7 as always"; }
        kill "$(cat "$WORK/swtpm.pid")"
        pass "TPM2: setup mode + keys seals to the UKI's signed PCR 11 policy alone (the UKI's .pcrpkey), re-sealed to PCR 7 at the first Secure Boot boot with systemd 257 and not with 252 (the note says so); without .pcrpkey or .pcrsig the TPM2 waits; otherwise PCR 7 as always"
else
        fail "swtpm is not installed (the README's setup command installs it)"
fi
[ "$(checksum "$WORK/disk.img")" != "$before" ] || fail "nothing was installed at all"
echo "PASS"
