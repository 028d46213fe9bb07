#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Encryption in plans, plan files and unattended configurations, without writing a byte: image
# files are not encrypted (and --encrypt on one is refused); disks are, with the recovery key and
# the TPM when it passes the pre-flight check (a swtpm started here), and the plan says what
# unlocks them and why the TPM is not used; the LUKS2 header gets its 16 MiB; seeds give the same
# LUKS UUIDs; tampered plan files are refused; and, since this host has no device-mapper, an
# encrypted install is refused before anything is written, with the reason. Unattended installs
# refuse to make a recovery key nobody receives, and to go on without a required TPM.
. "$(dirname "$0")/lib.sh"
need_root "loop devices, swtpm"
need_tool jq
need_tool objcopy
need_tool swtpm
need_tool blockdev
# The tss2 libraries log TCTI trouble (the dead swtpm port) to stderr; imprint says it in one sentence.
export TSS2_LOG=all+NONE

src=$WORK/fakeos.img
bash "$(dirname "$0")/make-fake-ddi.sh" "$src" 200
src_root_size=$(sfdisk --json "$src" | jq '.partitiontable as $t | $t.partitions[1].size * $t.sectorsize')
[ "$src_root_size" = $((200 * 1024 * 1024)) ] || fail "the fake image's root is $src_root_size bytes"
LUKS_HEADER=$((16 * 1024 * 1024))
UUID_RE='^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'

# This host's kernel may lack device-mapper; then every encrypted install must stop before writing.
has_dm=false
if dmsetup version >/dev/null 2>&1; then has_dm=true; fi

# ---- a private swtpm ----------------------------------------------------------------------------
state=$WORK/tpm
mkdir "$state"
port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
unused_port() {
        local p
        while :; do
                p=$((20000 + RANDOM % 20000))
                port_in_use "$p" || port_in_use $((p + 1)) || { echo "$p"; return; }
        done
}
port=$(unused_port)
swtpm socket --tpm2 --tpmstate dir="$state" --server type=tcp,port="$port",bindaddr=127.0.0.1 \
        --ctrl type=tcp,port=$((port + 1)),bindaddr=127.0.0.1 --flags not-need-init,startup-clear \
        --daemon --pid file="$WORK/swtpm.pid"
for _ in $(seq 50); do port_in_use "$port" && break; sleep 0.1; done
port_in_use "$port" || fail "swtpm did not start"
stop_swtpm() { [ -f "$WORK/swtpm.pid" ] && kill "$(cat "$WORK/swtpm.pid")" 2>/dev/null || true; }
trap 'stop_swtpm; cleanup' EXIT
TCTI="swtpm:port=$port"
dead_port=$(unused_port)
DEAD_TCTI="swtpm:port=$dead_port"

# ---- targets ------------------------------------------------------------------------------------
img=$WORK/target.img
truncate -s 4G "$img"
disk=$WORK/disk.img
truncate -s 4G "$disk"
attach "$disk"
dev=$ATTACHED

# disk_sum: the content of the loop device's backing file, after flushing the device's buffers.
disk_sum() {
        sync
        blockdev --flushbufs "$dev"
        checksum "$disk"
}
img_before=$(checksum "$img")
disk_before=$(disk_sum)
assert_unchanged() {
        [ "$(checksum "$img")" = "$img_before" ] || fail "$img was written to: $1"
        [ "$(disk_sum)" = "$disk_before" ] || fail "$dev was written to: $1"
}

plan_json() { "$IMPRINT" plan --source "$src" --json "$@"; }

# ---- image files: not encrypted, and said so --------------------------------------------------------
plan_json --target "$img" --seed file >"$WORK/file.json"
jq -e '.encryption.enabled == false and .encryption.tpm2 == false and .encryption.recoveryKey == false
       and (.encryption.note | test("image file"))
       and all(.partitions[]; .encrypt == false and .luksUuid == null)' "$WORK/file.json" >/dev/null \
        || { jq .encryption "$WORK/file.json" >&2; fail "a plan for an image file is not unencrypted with a note"; }
"$IMPRINT" plan --source "$src" --target "$img" --seed file >"$WORK/file.table"
grep -q "^Encrypt: no .*image file" "$WORK/file.table" || { cat "$WORK/file.table" >&2; fail "the table does not say why an image file is not encrypted"; }
pass "an image file is planned unencrypted, with a note saying why"

expect_exit 2 "$IMPRINT" plan --source "$src" --target "$img" --encrypt
expect_stderr "Cannot encrypt an install into the image file"
expect_exit 2 "$IMPRINT" install --source "$src" --target "$img" --encrypt --yes
expect_stderr "Cannot encrypt an install into the image file"
assert_unchanged "--encrypt on an image file"
pass "--encrypt on an image file is refused with the reason; nothing written"

# ---- a disk, the TPM turned off -----------------------------------------------------------------------
plan_json --target "$dev" --tpm2=off --seed s1 >"$WORK/off.json"
jq -e --argjson min $((src_root_size + LUKS_HEADER)) --arg re "$UUID_RE" '
        .encryption.enabled == true and .encryption.tpm2 == false and .encryption.recoveryKey == true
        and .encryption.passphrase == false and .encryption.tpm2Tcti == null
        and (.encryption.note | test("turned off"))
        and ([.partitions[] | select(.role == "root")] | length == 1 and (.[0] | .encrypt == true and (.luksUuid | test($re))
              and .size >= $min))
        and ([.partitions[] | select(.role == "esp")][0] | .encrypt == false and .luksUuid == null)' "$WORK/off.json" >/dev/null \
        || { jq '.encryption, .partitions' "$WORK/off.json" >&2; fail "the plan with --tpm2=off is not encrypted as expected"; }
root_uuid=$(jq -r '.partitions[] | select(.role == "root") | .luksUuid' "$WORK/off.json")
"$IMPRINT" plan --source "$src" --target "$dev" --tpm2=off --seed s1 >"$WORK/off.table"
grep -q "^Encrypt: root with LUKS2 (aes-xts-plain64)" "$WORK/off.table" || { cat "$WORK/off.table" >&2; fail "no Encrypt: line"; }
grep -q "turned off" "$WORK/off.table" || { cat "$WORK/off.table" >&2; fail "the table does not say the TPM is turned off"; }
grep -q "└ LUKS2 $root_uuid, opened as \"root\" at boot" "$WORK/off.table" || { cat "$WORK/off.table" >&2; fail "no LUKS2 line for root"; }
grep -q "Nothing was written." "$WORK/off.table" || fail "plan does not say nothing was written"
pass "a disk with --tpm2=off: root encrypted (LUKS $root_uuid), recovery key only, the note and the table say so"

# The same seed gives the same LUKS UUIDs (and the same plan); another seed others.
plan_json --target "$dev" --tpm2=off --seed s1 >"$WORK/off2.json"
cmp -s <(jq -S . "$WORK/off.json") <(jq -S . "$WORK/off2.json") || fail "two plans with the same seed differ"
plan_json --target "$dev" --tpm2=off --seed s2 >"$WORK/off3.json"
[ "$(jq -r '.partitions[] | select(.role == "root") | .luksUuid' "$WORK/off3.json")" != "$root_uuid" ] \
        || fail "another seed gives the same LUKS UUID"
"$IMPRINT" plan --source "$src" --target "$dev" --tpm2=off --seed s1 --plan-file "$WORK/off-saved.json" >/dev/null
cmp -s <(jq -S . "$WORK/off.json") <(jq -S . "$WORK/off-saved.json") || fail "--json and --plan-file differ for the same seed"
pass "the same seed gives the same LUKS UUID; another seed another"

# Home is encrypted too, with its own UUID; a passphrase is planned (asked for only when installing).
plan_json --target "$dev" --tpm2=off --passphrase --home-size 1G --seed s1 >"$WORK/home.json"
jq -e --arg re "$UUID_RE" '
        ([.partitions[] | select(.role == "root" or .role == "home")] | length == 2
          and all(.[]; .encrypt and (.luksUuid | test($re))) and (.[0].luksUuid != .[1].luksUuid))
        and .encryption.passphrase == true and (.encryption.note | test("the passphrase or the recovery key"))' "$WORK/home.json" >/dev/null \
        || { jq '.encryption, .partitions' "$WORK/home.json" >&2; fail "home is not encrypted with its own LUKS UUID"; }
pass "home is encrypted too, with its own LUKS UUID; a passphrase is planned"

# The LUKS2 header needs its 16 MiB beside the image's root: 210M fits unencrypted, not encrypted.
plan_json --target "$dev" --no-encrypt --root-size 210M >"$WORK/small.json"
jq -e '.encryption.enabled == false and .encryption.note == null and all(.partitions[]; .encrypt == false)' "$WORK/small.json" >/dev/null \
        || fail "--no-encrypt on a disk still encrypts"
expect_exit 2 "$IMPRINT" plan --source "$src" --target "$dev" --tpm2=off --root-size 210M
expect_stderr "it needs at least 216 MiB"
plan_json --target "$dev" --tpm2=off --root-size 216M >"$WORK/exact.json"
jq -e --argjson min $((src_root_size + LUKS_HEADER)) '.partitions[] | select(.role == "root") | .size == $min' "$WORK/exact.json" >/dev/null \
        || fail "a 216 MiB encrypted root was not planned at 216 MiB"
pass "an encrypted root gets the image's root plus 16 MiB for the LUKS2 header"

# ---- a disk and the swtpm -------------------------------------------------------------------------
plan_json --target "$dev" --tcti "$TCTI" --seed tpm >"$WORK/tpm.json"
jq -e --arg tcti "$TCTI" '.encryption | .enabled and .tpm2 and .tpm2Pcrs == 128 and .tpm2Tcti == $tcti and .recoveryKey
        and .tpm2PublicKeyPcrs == 0 and .tpm2PublicKey == null and .tpm2Pin == false and .note == null' "$WORK/tpm.json" >/dev/null \
        || { jq .encryption "$WORK/tpm.json" >&2; fail "with a working TPM the plan does not enroll it on PCR 7"; }
"$IMPRINT" plan --source "$src" --target "$dev" --tcti "$TCTI" --seed tpm >"$WORK/tpm.table"
grep -q "^Encrypt: root with LUKS2 (aes-xts-plain64); unlocked by the TPM2 (PCR 7)" "$WORK/tpm.table" \
        || { cat "$WORK/tpm.table" >&2; fail "the table does not say the TPM2 unlocks it"; }
plan_json --target "$dev" --tcti "$TCTI" --tpm2=required --tpm2-pcrs=0+7 --tpm2-pin >"$WORK/tpm2.json"
jq -e '.encryption | .tpm2 and .tpm2Pcrs == 129 and .tpm2Pin' "$WORK/tpm2.json" >/dev/null \
        || { jq .encryption "$WORK/tpm2.json" >&2; fail "--tpm2-pcrs=0+7 --tpm2-pin not planned"; }
pass "with the swtpm: the TPM2 is enrolled on PCR 7 (or the PCRs asked for)"

expect_exit 1 "$IMPRINT" plan --source "$src" --target "$dev" --tpm2=required --tcti "$DEAD_TCTI"
expect_stderr "A TPM2 is required, but it cannot be used"
expect_stderr "No TPM 2.0 answered at $DEAD_TCTI"
plan_json --target "$dev" --tcti "$DEAD_TCTI" >"$WORK/dead.json"
jq -e --arg tcti "$DEAD_TCTI" '.encryption | .enabled and (.tpm2 | not) and .recoveryKey and (.note | contains($tcti))
        and (.note | test("the TPM2 is not used"))' "$WORK/dead.json" >/dev/null \
        || { jq .encryption "$WORK/dead.json" >&2; fail "--tpm2=auto without a TPM does not say why the TPM is not used"; }
pass "a required TPM that does not answer is refused, naming it; auto goes on without and says why"

expect_exit 1 "$IMPRINT" plan --source "$src" --target "$dev" --tcti "$TCTI" --tpm2-signed-pcr11
expect_stderr ".pcrpkey"
pass "--tpm2-signed-pcr11 with a UKI without .pcrpkey is refused"

expect_exit 2 "$IMPRINT" plan --source "$src" --target "$dev" --tpm2-pcrs=24
expect_stderr '--tpm2-pcrs: "24"'
expect_exit 2 "$IMPRINT" plan --source "$src" --target "$dev" --tpm2-pcrs=7+
expect_exit 2 "$IMPRINT" plan --source "$src" --target "$dev" --tpm2=maybe
expect_stderr '--tpm2: "maybe" is not one of auto, required, off.'
pass "bad --tpm2-pcrs and --tpm2 values are usage errors"
assert_unchanged "planning"

# ---- installing: refused before writing without device-mapper --------------------------------------
if $has_dm; then
        echo "SKIP: this host has device-mapper; the refusal without it is not tested"
else
        expect_exit 1 "$IMPRINT" install --source "$src" --target "$dev" --yes
        expect_stderr "This system has no device-mapper"
        expect_exit 1 "$IMPRINT" install --source "$src" --target "$dev" --tcti "$TCTI" --yes --json
        expect_stderr "This system has no device-mapper"
        jq -e -s '.[-1].event == "result" and .[-1].success == false and (.[-1].message | test("device-mapper"))' "$WORK/stdout" >/dev/null \
                || { cat "$WORK/stdout" >&2; fail "no failed result event naming device-mapper"; }
        ! grep -q '"recoveryKey"' "$WORK/stdout" || fail "a recovery key was handed over although nothing can be encrypted"
        assert_unchanged "install without device-mapper"
        pass "install with encryption (the default on a disk) is refused before writing: no device-mapper"
fi

# ---- plan files -------------------------------------------------------------------------------------
"$IMPRINT" plan --source "$src" --target "$dev" --tcti "$TCTI" --seed pf --home-size 1G --plan-file "$WORK/plan.json" >"$WORK/saved.table"
grep -q "Run: imprint install --plan-file" "$WORK/saved.table" || fail "no hint how to run the saved plan"
jq -e '.encryption.enabled and .encryption.tpm2 and ([.partitions[] | select(.encrypt)] | map(.role) | sort == ["home", "root"])' \
        "$WORK/plan.json" >/dev/null || fail "the saved plan does not encrypt root and home"
if ! $has_dm; then
        # It loads (no "Plan file:" complaint) and stops only at device-mapper.
        expect_exit 1 "$IMPRINT" install --plan-file "$WORK/plan.json" --yes
        expect_stderr "This system has no device-mapper"
        ! grep -q "Plan file" "$WORK/stderr" || fail "a saved encrypted plan does not load"
        assert_unchanged "install --plan-file without device-mapper"
        pass "a saved encrypted plan loads, and its install stops at the missing device-mapper"
fi

# tamper JQ-FILTER EXPECTED-MESSAGE: the edited plan is refused as a plan file, nothing written.
tamper() {
        jq "$1" "$WORK/plan.json" >"$WORK/tampered.json"
        expect_exit 2 "$IMPRINT" install --plan-file "$WORK/tampered.json" --yes
        expect_stderr "Plan file: "
        expect_stderr "$2"
}
OTHER_UUID=0d3f6a3e-1111-4222-8333-444455556666
tamper '.partitions |= map(if .role == "esp" then .encrypt = true | .luksUuid = "'$OTHER_UUID'" else . end)' \
        "partition 1 is marked encrypted, which this plan cannot do"
tamper '.encryption.recoveryKey = false' "an encrypted install must enroll a recovery key"
tamper '.encryption.enabled = false' "is marked encrypted, which this plan cannot do"
tamper '.partitions |= map(if .role == "home" then .encrypt = false | .luksUuid = null else . end)' \
        "encryption is on, but partition 3 (home) is not encrypted"
tamper '.partitions |= map(if .role == "root" then .luksUuid = "not-a-uuid" else . end)' 'field "luksUuid" is not a UUID'
tamper '.partitions |= map(if .role == "root" then del(.luksUuid) else . end)' 'field "luksUuid" is missing'
tamper '.partitions |= map(if .role == "root" then .encrypt = "yes" else . end)' 'field "encrypt" must be true or false'
tamper '.partitions |= map(if .role == "root" then .size = '"$src_root_size"' else . end)' \
        "has no room for the LUKS2 header beside the image partition"
tamper '.encryption.tpm2Pcrs = 0' "the TPM2 policy binds no PCR"
tamper '.encryption.tpm2Pcrs = 16777216' "a TPM2 PCR mask names PCRs beyond 23"
tamper '.encryption.tpm2PublicKeyPcrs = 2048' "a signed TPM2 policy needs both its PCRs and its public key"
tamper '.encryption = "yes"' 'field "encryption" must be an object'
tamper '.encryption |= del(.recoveryKey)' 'field "recoveryKey" is missing'
tamper '.target.kind = "file" | .target.path = "'"$img"'"' "is marked encrypted, which this plan cannot do"
tamper '.partitions |= map(if .role == "root" then .luksUuid = "00000000-0000-0000-0000-000000000000" else . end)' "has no LUKS UUID"
tamper '(.partitions | map(select(.role == "root"))[0].luksUuid) as $u | .partitions |= map(if .role == "home" then .luksUuid = $u else . end)' \
        "have the same LUKS UUID"
tamper '.encryption.tpm2Tcti = "cmd:touch '"$WORK"'/pwned"' "is not a device:, swtpm: or mssim: TCTI"
[ ! -e "$WORK/pwned" ] || fail "a cmd: TCTI from a plan file ran a command"
assert_unchanged "tampered plan files"
# The same for the command line: a cmd: TCTI would run a command as root.
expect_exit 2 "$IMPRINT" plan --source "$src" --target "$dev" --tcti "cmd:touch $WORK/pwned"
expect_exit 2 "$IMPRINT" tpm --tcti "cmd:touch $WORK/pwned"
expect_exit 2 "$IMPRINT" plan --source "$src" --target "$dev" --no-encrypt --passphrase
expect_stderr "contradicts"
expect_exit 2 "$IMPRINT" plan --source "$src" --target "$dev" --tpm2=off --tpm2-pin
expect_stderr "contradicts"
[ ! -e "$WORK/pwned" ] || fail "a cmd: TCTI ran a command"
pass "only device:, swtpm: and mssim: TCTIs are accepted; contradictory options are refused"
pass "tampered plan files are refused with \"Plan file:\" messages; nothing written"

# ---- unattended -----------------------------------------------------------------------------------
# unattended WANT-EXIT JSON: runs imprint unattended with this configuration; the last event says
# it failed, and nothing was written.
unattended() {
        echo "$2" >"$WORK/config.json"
        expect_exit "$1" "$IMPRINT" unattended --config "$WORK/config.json"
        jq -e -s '.[-1].event == "result" and .[-1].success == false' "$WORK/stdout" >/dev/null \
                || { cat "$WORK/stdout" >&2; fail "no failed result event for: $2"; }
        assert_unchanged "unattended: $2"
}
base='"source": "'"$src"'", "target": "'"$dev"'", "seed": "oem", "afterInstall": "none", "onFailure": "none"'

# Encrypted by default, with a working TPM, but nobody receives the recovery key.
unattended 2 "{ $base, \"tpm2Tcti\": \"$TCTI\" }"
expect_stderr '"recoveryKeyEscrow"'
expect_stderr "Nothing was written"
pass "unattended: an encrypted install without recoveryKeyEscrow is refused"

# The TPM is required by default in unattended installs.
if [ -e /dev/tpmrm0 ]; then no_tpm=', "tpm2Tcti": "device:/dev/imprint-no-such-tpm"'; else no_tpm=''; fi
unattended 1 "{ $base, \"recoveryKeyEscrow\": {\"directory\": \"$WORK\", \"plaintext\": true}$no_tpm }"
expect_stderr "A TPM2 is required, but it cannot be used"
unattended 1 "{ $base, \"tpm2\": \"required\", \"recoveryKeyEscrow\": {\"directory\": \"$WORK\", \"plaintext\": true}, \"tpm2Tcti\": \"$DEAD_TCTI\" }"
expect_stderr "A TPM2 is required, but it cannot be used: No TPM 2.0 answered at $DEAD_TCTI"
pass "unattended: a required TPM (the default) that is missing is refused, naming it"

# Unknown or mistyped values.
unattended 2 "{ $base, \"tpm2\": \"maybe\" }"
expect_stderr '"tpm2" must be "required", "auto" or "off".'
unattended 2 "{ $base, \"tpm2\": true }"
expect_stderr '"tpm2" must be'
unattended 2 "{ $base, \"tpm2Pcrs\": \"24\" }"
expect_stderr '"tpm2Pcrs" must be a list of PCRs'
unattended 2 "{ $base, \"tpm2Pcrs\": 7 }"
expect_stderr '"tpm2Pcrs" must be a list of PCRs'
unattended 2 "{ $base, \"encrypt\": \"yes\" }"
expect_stderr '"encrypt" must be true or false.'
unattended 2 "{ $base, \"tpm2Pin\": 1 }"
expect_stderr '"tpm2Pin" must be true or false.'
unattended 2 "{ $base, \"recoveryKeyEscrow\": {\"directory\": \"\", \"plaintext\": true} }"
expect_stderr '"recoveryKeyEscrow.directory" must be an absolute path.'
unattended 2 "{ $base, \"tpm2Tcti\": 5 }"
expect_stderr '"tpm2Tcti" must be a non-empty string.'
unattended 2 "{ $base, \"tpm2SignedPcr11\": \"no\" }"
expect_stderr '"tpm2SignedPcr11" must be true or false.'
pass "unattended: unknown encryption values are refused"

# A passphrase comes from the credential imprint.passphrase, never from a terminal; a weak one is refused.
escrow=$WORK/escrow
mkdir "$escrow"
unattended 2 "{ $base, \"tpm2\": \"off\", \"passphrase\": true, \"recoveryKeyEscrow\": {\"directory\": \"$escrow\", \"plaintext\": true} }"
expect_stderr "imprint.passphrase"
mkdir "$WORK/creds"
printf 'swordfish\n' >"$WORK/creds/imprint.passphrase"
CREDENTIALS_DIRECTORY=$WORK/creds unattended 2 "{ $base, \"tpm2\": \"off\", \"passphrase\": true, \"recoveryKeyEscrow\": {\"directory\": \"$escrow\", \"plaintext\": true} }"
expect_stderr "too weak"
! grep -q "swordfish" "$WORK/stderr" "$WORK/stdout" || fail "the weak passphrase was printed"
pass "unattended: a passphrase needs the credential imprint.passphrase, and a strong one"

if ! $has_dm; then
        # Everything in order: it stops at device-mapper, before the recovery key is delivered.
        printf 'Vq7#mT2!xLp9@wRz-Kestrel\n' >"$WORK/creds/imprint.passphrase"
        CREDENTIALS_DIRECTORY=$WORK/creds unattended 1 \
                "{ $base, \"tpm2Tcti\": \"$TCTI\", \"passphrase\": true, \"recoveryKeyEscrow\": {\"directory\": \"$escrow\", \"plaintext\": true} }"
        expect_stderr "This system has no device-mapper"
        ! grep -q 'Kestrel' "$WORK/stderr" "$WORK/stdout" || fail "the passphrase was printed"
        [ -z "$(ls -A "$escrow")" ] || fail "a recovery key was delivered for an install that never started"
        unattended 1 "{ $base, \"tpm2\": \"off\", \"recoveryKeyEscrow\": {\"directory\": \"$escrow\", \"plaintext\": true} }"
        expect_stderr "This system has no device-mapper"
        [ -z "$(ls -A "$escrow")" ] || fail "a recovery key was delivered for an install that never started"
        pass "unattended: a complete configuration stops at the missing device-mapper; no key is delivered"
fi

assert_unchanged "unattended refusals"

# "encrypt": false needs neither a TPM (required by default) nor an escrow directory: it installs.
echo "{ $base, \"encrypt\": false${no_tpm} }" >"$WORK/config.json"
"$IMPRINT" unattended --config "$WORK/config.json" >"$WORK/events.json" 2>"$WORK/stderr" \
        || { cat "$WORK/events.json" "$WORK/stderr" >&2; fail "an unencrypted unattended install failed"; }
jq -e -s '.[-1] == {"event":"result","success":true,"exitCode":0}' "$WORK/events.json" >/dev/null || fail "no success result"
! grep -q '"recoveryKey"' "$WORK/events.json" || fail "an unencrypted install handed over a recovery key"
[ "$(blkid -p -o value -s TYPE "${dev}p2")" = ext4 ] || fail "the unencrypted root is not a plain ext4"
pass "unattended: \"encrypt\": false installs without asking for a TPM or an escrow directory"
