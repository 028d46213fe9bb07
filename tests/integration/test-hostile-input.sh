#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Input that a fuzzer or an attacker hands over (issue 12, finding 7) is refused with exit code 2,
# a sentence that names the problem, and nothing written:
#   - a plan file or configuration gets exactly the checks the command-line options get (a
#     locale with a newline would otherwise land in the installed /etc/locale.conf);
#   - FIFOs, devices and oversized files are refused before they are read (no hang, no 2 GB RSS);
#   - JSON with duplicate keys, U+0000 in a string or key, or trailing data is refused.
. "$(dirname "$0")/lib.sh"
need_tool jq
need_tool objcopy

bash "$(dirname "$0")/make-fake-ddi.sh" "$WORK/os.img" 200 >/dev/null
tgt=$WORK/target.img
truncate -s 4G "$tgt"
untouched() {
        local f
        for f in "$tgt" "$@"; do
                [ "$(du -k "$f" | cut -f1)" = 0 ] || fail "$f was written to"
        done
}

# ---- a plan file gets the options' checks --------------------------------------------------
"$IMPRINT" plan --source "$WORK/os.img" --target "$tgt" --seed hostile --hostname desk --locale C.UTF-8 --keymap de \
        --plan-file "$WORK/settings.json" >/dev/null
"$IMPRINT" plan --source "$WORK/os.img" --target "$tgt" --seed hostile --user alice --real-name Alice \
        --plan-file "$WORK/account.json" >/dev/null

# tamper PLAN JQ-FILTER EXPECTED: the tampered plan is refused by install before anything happens.
tamper() {
        jq "$2" "$WORK/$1" >"$WORK/tampered.json"
        expect_exit 2 "$IMPRINT" install --plan-file "$WORK/tampered.json"
        expect_stderr "$3"
        untouched
}
evil_locale='C.UTF-8\nLD_PRELOAD=/tmp/evil.so'
tamper settings.json ".settings.locale = \"$evil_locale\"" 'is not a locale name such as de_DE.UTF-8.'
expect_stderr 'Plan file: "settings"'
tamper settings.json '.settings.keymap = "../../../etc/shadow\nKEYMAP=de"' 'is not a keymap name'
tamper settings.json '.settings.timezone = "../../../etc/passwd"' 'is not a timezone name'
tamper settings.json '.settings.hostname = "desk\nevil"' 'is not a valid hostname'
tamper settings.json '(.partitions[] | select(.role == "root") | .label) = "root\nX-Evil=1"' 'cannot be a partition label'
tamper settings.json '.seed = ""' 'The seed must not be empty'
tamper account.json '.account.userName = "../../etc/credstore/x"' 'cannot be a user name'
expect_stderr 'Plan file: "account"'
tamper account.json '.account.userName = "alice\n[Service]\nExecStart=/bin/sh"' 'cannot be a user name'
tamper account.json '.account.realName = "Alice\nroot::0:0::/root:/bin/sh"' 'The real name must not contain'
# The very same sentence as for the option.
expect_exit 2 "$IMPRINT" plan --source "$WORK/os.img" --target "$tgt" --locale "$(printf 'C.UTF-8\nLD_PRELOAD=/tmp/evil.so')"
expect_stderr 'is not a locale name such as de_DE.UTF-8.'
pass "a plan file's settings, account and labels get the options' checks"

# ---- and so does a configuration ------------------------------------------------------------
config() {
        printf '%s' "$1" >"$WORK/config.json"
        expect_exit 2 "$IMPRINT" unattended --config "$WORK/config.json"
        expect_stderr "$2"
        untouched
}
base="\"source\": \"$WORK/os.img\", \"target\": \"$tgt\", \"encrypt\": false, \"waitForTargetSeconds\": 0"
config "{ $base, \"user\": { \"name\": \"../x\" } }" "$WORK/config.json: \"user.name\": \"../x\" cannot be a user name"
config "{ $base, \"user\": { \"name\": \"alice\", \"realName\": \"A\\nroot::0:0\" } }" '"user.realName": The real name must not contain'
config "{ $base, \"keymap\": \"../x\\ny\" }" "$WORK/config.json: \"keymap\": "
config "{ $base, \"rootLabel\": \"r\\u0007\" }" '"rootLabel": '
pass "a configuration's values get the options' checks"

# ---- JSON that json-c would take ------------------------------------------------------------
cp "$WORK/settings.json" "$WORK/plan.json"
sed '0,/{/s//{ "mode": "free",/' "$WORK/plan.json" >"$WORK/dup.json"
expect_exit 2 "$IMPRINT" install --plan-file "$WORK/dup.json"
expect_stderr "The plan file $WORK/dup.json is not valid JSON: the key \"mode\" appears twice in one object"
expect_stderr "(line "
tamper plan.json ".target.path = \"$WORK/a.img\\u0000/dev/vda\"" 'a string holds a NUL character (\u0000)'
tamper plan.json '.["ver\u0000sion"] = 1' 'a key holds a NUL character (\u0000)'
{ cat "$WORK/plan.json"; echo '{ "mode": "free" }'; } >"$WORK/trailing.json"
expect_exit 2 "$IMPRINT" install --plan-file "$WORK/trailing.json"
expect_stderr "is not valid JSON: more follows the JSON value"

# The fuzzer's example: a target cut at \u0000 would have installed to a.img.
truncate -s 4G "$WORK/a.img"
config "{ \"source\": \"$WORK/os.img\", \"target\": \"$WORK/a.img\\u0000/dev/vda\", \"encrypt\": false }" \
        'is not valid JSON: a string holds a NUL character (\u0000), which would cut it short (line 1, column'
untouched "$WORK/a.img"
config "{ $base, \"target\": \"$WORK/a.img\" }" 'the key "target" appears twice in one object'
untouched "$WORK/a.img"
config "{ $base, \"sou\\u0000rce\": \"/dev/vda\" }" 'a key holds a NUL character'
config "{ $base } { \"target\": \"/dev/vda\" }" 'more follows the JSON value'
config "{ $base, 'seed': 'x' }" 'a key in double quotes is expected'
pass "duplicate keys, U+0000 in strings and keys, and trailing data are refused"

# ---- FIFOs, devices, big files ----------------------------------------------------------------
# timeout only stops a hang of the old code: the refusal itself is immediate.
mkfifo "$WORK/fifo"
expect_exit 2 timeout 60 "$IMPRINT" unattended --config "$WORK/fifo"
expect_stderr "Cannot read the configuration $WORK/fifo: it is a FIFO, not a regular file."
expect_exit 2 timeout 60 "$IMPRINT" install --plan-file "$WORK/fifo"
expect_stderr "Cannot read the plan file $WORK/fifo: it is a FIFO, not a regular file."
expect_exit 2 timeout 60 "$IMPRINT" unattended --config /dev/zero
expect_stderr "Cannot read the configuration /dev/zero: it is a character device, not a regular file."
expect_exit 2 timeout 60 "$IMPRINT" apply --plan-file /dev/zero
expect_stderr "Cannot read the plan file /dev/zero: it is a character device, not a regular file."
mkdir "$WORK/creds"
mkfifo "$WORK/creds/imprint.config"
CREDENTIALS_DIRECTORY=$WORK/creds expect_exit 2 timeout 60 "$IMPRINT" unattended
expect_stderr "$WORK/creds/imprint.config: it is a FIFO, not a regular file."
# A 2 MiB configuration: refused by its size (1 MiB, imprint(1)).
{ printf '{ %s, "seed": "' "$base"; head -c 2097152 /dev/zero | tr '\0' 'x'; printf '" }'; } >"$WORK/big.json"
expect_exit 2 "$IMPRINT" unattended --config "$WORK/big.json"
expect_stderr "is larger than 1024 KiB"
untouched
pass "FIFOs, devices and files over 1 MiB are refused before reading"

# The secrets' credentials too: a FIFO as imprint.user-password is refused, not waited on.
mkdir "$WORK/secrets"
mkfifo "$WORK/secrets/imprint.user-password"
CREDENTIALS_DIRECTORY=$WORK/secrets expect_exit 2 timeout 60 "$IMPRINT" install --source "$WORK/os.img" --target "$tgt" --user alice --yes
expect_stderr "Cannot read the credential imprint.user-password"
untouched
pass "a FIFO as a secret's credential is refused"
