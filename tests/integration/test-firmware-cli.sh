#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# imprint firmware: the firmware's Secure Boot state, read from the efivarfs directory
# $IMPRINT_EFIVARFS names (the recorded copies of Debian's OVMF stores in tests/unit/data/efivars).
# For each: the mode, the flags, and every certificate of PK, KEK and db as stock tools see the same
# variable: efitools' sig-list-to-certs splits it, openssl x509 names the subject, sha256sum hashes
# the DER, owners as sig-list-to-certs prints them. A machine without efivarfs is "not UEFI" (exit 0);
# a malformed variable is exit 1 with a sentence naming it.
. "$(dirname "$0")/lib.sh"
need_tool jq
need_tool sig-list-to-certs
need_tool openssl

DATA=$SOURCE_ROOT/tests/unit/data/efivars
GLOBAL=8be4df61-93ca-11d2-aa0d-00e098032b8c
SECDB=d719b2cb-3d3a-4596-a3bc-dad00e67656f

# referee DIR VAR FILE-GUID: what the stock tools say of the certificates in DIR's variable, as the
# JSON array imprint should print: [{owner, subject, sha256}]
referee() {
        local dir=$1 var=$2 guid=$3 out=$WORK/ref-$2 i=0
        rm -rf "$out" && mkdir "$out"
        tail -c +5 "$dir/$var-$guid" >"$out/list.esl"       # efivarfs: 4 bytes of attributes first
        sig-list-to-certs "$out/list.esl" "$out/cert" >"$out/log"
        echo "[" >"$out/json"
        while [ -f "$out/cert-$i.der" ]; do
                local owner subject sha
                owner=$(sed -n "s/^file .*cert-$i\.der: Guid //p" "$out/log")
                subject=$(openssl x509 -inform der -in "$out/cert-$i.der" -noout -subject -nameopt RFC2253 | sed 's/^subject=//')
                sha=$(sha256sum "$out/cert-$i.der" | cut -d' ' -f1)
                [ "$i" = 0 ] || echo "," >>"$out/json"
                jq -n --arg o "$owner" --arg s "$subject" --arg h "$sha" '{owner: $o, subject: $s, sha256: $h}' >>"$out/json"
                i=$((i + 1))
        done
        echo "]" >>"$out/json"
        cat "$out/json"
}

# check_db JSON DIR VAR KEY GUID: imprint's certificates of KEY are the referee's, in order.
check_db() {
        local json=$1 dir=$2 var=$3 key=$4 guid=$5
        referee "$dir" "$var" "$guid" >"$WORK/ref.json"
        jq -e --slurpfile ref "$WORK/ref.json" --arg k "$key" \
                '[.[$k].certificates[] | {owner, subject, sha256}] == $ref[0] and (.[$k].certificates | length) > 0' \
                "$json" >/dev/null \
                || { jq ".$key" "$json" >&2; cat "$WORK/ref.json" >&2; fail "$(basename "$dir"): $key differs from sig-list-to-certs/openssl"; }
        jq -e --arg k "$key" --argjson size "$(($(stat -c %s "$dir/$var-$guid") - 4))" '.[$k].present and .[$k].size == $size' "$json" >/dev/null \
                || fail "$(basename "$dir"): $key's size is not the variable's size without the attributes"
}

# The Microsoft store, Secure Boot on.
dir=$DATA/ms-secureboot
IMPRINT_EFIVARFS=$dir "$IMPRINT" firmware --json >"$WORK/ms.json"
jq -e '.mode == "user" and .secureBoot and (.setupMode | not) and (.auditMode | not) and (.deployedMode | not)' "$WORK/ms.json" >/dev/null \
        || { cat "$WORK/ms.json" >&2; fail "ms-secureboot is not user mode with Secure Boot on"; }
check_db "$WORK/ms.json" "$dir" PK pk $GLOBAL
check_db "$WORK/ms.json" "$dir" KEK kek $GLOBAL
check_db "$WORK/ms.json" "$dir" db db $SECDB
jq -e '[.db.certificates[].commonName] == ["Microsoft Windows Production PCA 2011", "Microsoft Corporation UEFI CA 2011"]
       and .dbx.hashes == 1 and (.dbx.certificates | length) == 0 and .dbx.other == 0' "$WORK/ms.json" >/dev/null \
        || fail "ms-secureboot: db is not Microsoft's two CAs, or dbx is not one hash"
IMPRINT_EFIVARFS=$dir "$IMPRINT" firmware >"$WORK/ms.txt"
grep -qx "Mode  user" "$WORK/ms.txt" || { cat "$WORK/ms.txt" >&2; fail "the table does not show the mode"; }
grep -q "SecureBoot 1, SetupMode 0, AuditMode 0, DeployedMode 0" "$WORK/ms.txt" || fail "the table does not show the flags"
grep -q "^db    3143 bytes, 2 certificates, 0 hashes" "$WORK/ms.txt" || fail "the table does not show db"
grep -q "Microsoft Corporation UEFI CA 2011 (owner 77fa9abd-0359-4d32-bd60-28f4e78f784b)" "$WORK/ms.txt" || fail "the table does not name db's certificates"
grep -q "^dbx   76 bytes, 0 certificates, 1 hash$" "$WORK/ms.txt" || fail "the table does not show dbx"
grep -qx "Secure Boot is on (user mode); db trusts Microsoft Windows Production PCA 2011, Microsoft Corporation UEFI CA 2011; dbx has 1 entry." "$WORK/ms.txt" \
        || fail "the sentence is missing"
pass "ms-secureboot: user mode; PK, KEK and db as sig-list-to-certs and openssl read them"

dir=$DATA/snakeoil
IMPRINT_EFIVARFS=$dir "$IMPRINT" firmware --json >"$WORK/snakeoil.json"
jq -e '.mode == "user" and .secureBoot and [.pk, .kek, .db | .certificates[].commonName] == ["SnakeOil", "SnakeOil", "SnakeOil"]' \
        "$WORK/snakeoil.json" >/dev/null || { cat "$WORK/snakeoil.json" >&2; fail "snakeoil is not user mode with the snakeoil keys"; }
check_db "$WORK/snakeoil.json" "$dir" PK pk $GLOBAL
check_db "$WORK/snakeoil.json" "$dir" db db $SECDB
IMPRINT_EFIVARFS=$dir "$IMPRINT" firmware | grep -q "db trusts SnakeOil; dbx has 1 entry." || fail "snakeoil: the sentence is wrong"
pass "snakeoil: user mode, PK/KEK/db the snakeoil certificate"

IMPRINT_EFIVARFS=$DATA/setup-mode "$IMPRINT" firmware --json >"$WORK/setup.json"
jq -e '.mode == "setup" and .setupMode and (.secureBoot | not) and ([.pk, .kek, .db, .dbx | .present] == [false, false, false, false])' \
        "$WORK/setup.json" >/dev/null || { cat "$WORK/setup.json" >&2; fail "setup-mode is not setup mode without keys"; }
IMPRINT_EFIVARFS=$DATA/setup-mode "$IMPRINT" firmware >"$WORK/setup.txt"
grep -q "^PK    not enrolled" "$WORK/setup.txt" || fail "setup-mode: PK is not shown as not enrolled"
grep -qx "The firmware is in setup mode: Secure Boot is off and keys can be enrolled." "$WORK/setup.txt" || fail "setup-mode: the sentence is wrong"
pass "setup-mode: no keys, keys can be enrolled"

IMPRINT_EFIVARFS=$DATA/user-off "$IMPRINT" firmware --json >"$WORK/off.json"
jq -e '.mode == "user-off" and (.secureBoot | not) and (.setupMode | not) and (.db.certificates | length) == 2' "$WORK/off.json" >/dev/null \
        || { cat "$WORK/off.json" >&2; fail "user-off is not user mode with Secure Boot off"; }
IMPRINT_EFIVARFS=$DATA/user-off "$IMPRINT" firmware | grep -qx "Secure Boot is off; the machine is not protected by Secure Boot." \
        || fail "user-off: the sentence is wrong"
pass "user-off: keys enrolled, Secure Boot off, and it says the machine is not protected"

IMPRINT_EFIVARFS=$DATA/no-secure-boot "$IMPRINT" firmware --json >"$WORK/nosb.json"
jq -e '.mode == "no-secure-boot" and (.secureBoot | not) and (.db.present | not)' "$WORK/nosb.json" >/dev/null \
        || { cat "$WORK/nosb.json" >&2; fail "no-secure-boot is not reported as UEFI without Secure Boot"; }
pass "no-secure-boot: UEFI without Secure Boot"

expect_exit 0 env IMPRINT_EFIVARFS="$WORK/no-such-dir" "$IMPRINT" firmware
grep -qx "Mode  not-uefi" "$WORK/stdout" && grep -qx "This machine did not boot through UEFI." "$WORK/stdout" \
        || { cat "$WORK/stdout" >&2; fail "a missing efivarfs is not reported as not UEFI"; }
expect_exit 0 env IMPRINT_EFIVARFS="$WORK/no-such-dir" "$IMPRINT" firmware --json
jq -e '.mode == "not-uefi" and (.secureBoot | not)' "$WORK/stdout" >/dev/null || fail "--json of a missing efivarfs is not not-uefi"
pass "no efivarfs: not UEFI, exit 0"

# A db whose only list claims more bytes than the variable holds: exit 1, the variable named.
mkdir "$WORK/bad"
cp "$DATA/ms-secureboot/"* "$WORK/bad/"
head -c 100 "$DATA/ms-secureboot/db-$SECDB" >"$WORK/bad/db-$SECDB"
expect_exit 1 env IMPRINT_EFIVARFS="$WORK/bad" "$IMPRINT" firmware --json
expect_stderr "db-$SECDB"
expect_stderr "malformed"
[ ! -s "$WORK/stdout" ] || fail "a malformed db still printed a state"
printf '\x06\x00\x00\x00\x01\x00' >"$WORK/bad/SecureBoot-$GLOBAL"
expect_exit 1 env IMPRINT_EFIVARFS="$WORK/bad" "$IMPRINT" firmware
expect_stderr "SecureBoot-$GLOBAL"
pass "a malformed variable: exit 1, naming it"

expect_exit 2 "$IMPRINT" firmware --bogus
expect_exit 2 "$IMPRINT" firmware extra
pass "unknown options and arguments are usage errors"
