#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# `install --user` on a machine without the cracklib dictionary (no cracklib-runtime, as on a
# fresh Debian 12 or a live system). The dictionary is hidden from imprint only: it runs in a
# private mount namespace (unshare(1)) with an empty tmpfs over /var/cache/cracklib, so the host
# keeps its dictionary. Stock cracklib-check is the referee that the dictionary is really gone
# there. Checked:
#   - a strong password is accepted, the warning is printed once, and the installed shadow hash
#     verifies it;
#   - a short password is still refused with libpwquality's own reason, before anything is written;
#   - with the dictionary, a dictionary word is refused as before, and nothing is said about it.
. "$(dirname "$0")/lib.sh"
need_root
need_tool unshare
need_tool cracklib-check
need_tool debugfs

dict_dir=/var/cache/cracklib
[ -e "$dict_dir/cracklib_dict.pwd" ] || fail "$dict_dir has no cracklib dictionary on this machine (scripts/deps installs cracklib-runtime)"

# nodict CMD...: runs CMD where the cracklib dictionary cannot be loaded.
nodict() {
        unshare --mount --propagation private -- sh -c \
                'mount -t tmpfs -o size=1m,mode=0755 imprint-nodict "$1" && shift && exec "$@"' nodict "$dict_dir" "$@"
}

src=$WORK/accounts.raw
FAKE_DDI_ACCOUNTS=1 bash "$(dirname "$0")/make-fake-ddi.sh" "$src" 200
img=$WORK/disk.img
truncate -s 2G "$img"
sum=$(checksum "$img")
mkdir -m 0700 "$WORK/creds"
export CREDENTIALS_DIRECTORY=$WORK/creds
password='Kestrel-harbour 9 lantern'
common=(--source "$src" --target "$img" --seed nodict --user alice --yes)
warning='The password dictionary (cracklib) is missing, so passwords are not checked against it'

# --- the referee: inside, cracklib cannot load its dictionary; outside it can ------------------------
printf '%s\n' "$password" | cracklib-check | grep -q ': OK$' || fail "cracklib-check refuses the password with the dictionary"
printf '%s\n' "$password" | nodict cracklib-check 2>/dev/null | grep -q 'error loading dictionary' \
        || fail "the dictionary is still there inside the namespace"
[ -e "$dict_dir/cracklib_dict.pwd" ] || fail "the host lost its dictionary"
pass "the mount namespace hides the dictionary from cracklib; the host keeps it"

# --- without the dictionary -------------------------------------------------------------------------
printf 'abc' >"$WORK/creds/imprint.user-password"
expect_exit 2 nodict "$IMPRINT" install "${common[@]}"
expect_stderr "shorter than"
! grep -q "dictionary check" "$WORK/stderr" || { cat "$WORK/stderr" >&2; fail "a short password is refused for the dictionary"; }
[ "$(checksum "$img")" = "$sum" ] || fail "a refused install changed the image"
pass "without the dictionary, a short password is still refused for being short; nothing written"

printf '%s' "$password" >"$WORK/creds/imprint.user-password"
nodict "$IMPRINT" install "${common[@]}" >"$WORK/out" 2>"$WORK/err" \
        || { cat "$WORK/out" "$WORK/err" >&2; fail "install --user fails without the dictionary"; }
[ "$(grep -cF "$warning" "$WORK/err")" = 1 ] || { cat "$WORK/err" >&2; fail "the missing dictionary is not warned about exactly once"; }
root_off=$(sfdisk --json "$img" | jq '.partitiontable.partitions[] | select(.type == "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709") | .start * 512')
hash=$(debugfs -R 'cat /etc/shadow' "$img?offset=$root_off" 2>/dev/null | awk -F: '$1 == "alice" { print $2 }')
[ -n "$hash" ] || fail "alice is not in the installed /etc/shadow"
printf '%s' "$password" | /usr/bin/python3 -W ignore -c 'import crypt, sys; h = sys.argv[1]; sys.exit(0 if crypt.crypt(sys.stdin.read(), h) == h else 1)' "$hash" \
        || fail "the shadow hash does not verify the password"
pass "without the dictionary, a strong password is accepted with one warning, and alice can log in with it"

# --- with the dictionary ---------------------------------------------------------------------------
truncate -s 0 "$img"; truncate -s 2G "$img"
printf 'elephants' >"$WORK/creds/imprint.user-password"
expect_exit 2 "$IMPRINT" install "${common[@]}"
expect_stderr "dictionary word"
! grep -qF "$warning" "$WORK/stderr" || fail "the dictionary is called missing although it is there"
[ "$(checksum "$img")" = "$sum" ] || fail "a refused install changed the image"
pass "with the dictionary, a dictionary word is refused as before"
