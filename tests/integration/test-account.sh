#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The account and the first-boot settings, on image files (root: the installed root is mounted
# through a loop device to write them). An image file gets a classic user (the password cannot be
# sealed to the TPM of the machine that will boot it), and the plan says so; checked here:
#   - the plan shows the account, its kind and why, and the settings;
#   - /etc/passwd, /etc/group (sudo) and /etc/shadow of the installed root hold the user, and the
#     shadow hash is a yescrypt hash that verifies the password (Python's crypt, i.e. libxcrypt);
#   - hostname, time zone, locale and keymap are what systemd-firstboot --root writes;
#   - the password appears nowhere on the disk image;
#   - weak passwords are refused (unless --allow-weak-password), bad names and settings are
#     refused, a missing password is refused — all before anything is written;
#   - a homed-capable image on a disk without a usable TPM is planned with a classic user and the
#     TPM's reason.
# The homed path (sealed password, homectl at first boot) is checked by the VM rig
# (tests/e2e/test-live-install.sh).
. "$(dirname "$0")/lib.sh"
need_root
need_tool useradd chpasswd systemd-firstboot debugfs losetup

src=$WORK/accounts.raw
FAKE_DDI_ACCOUNTS=1 FAKE_DDI_HOMED=1 bash "$(dirname "$0")/make-fake-ddi.sh" "$src" 200
img=$WORK/disk.img
truncate -s 2G "$img"
sum=$(checksum "$img")
mkdir -m 0700 "$WORK/creds"
password='Kestrel-harbour 9 lantern'
printf '%s' "$password" >"$WORK/creds/imprint.user-password"
chmod 0600 "$WORK/creds/imprint.user-password"
export CREDENTIALS_DIRECTORY=$WORK/creds

common=(--source "$src" --target "$img" --seed account --user alice --real-name "Alice Example" --admin
        --hostname imprint-test --timezone Europe/Berlin --locale de_DE.UTF-8 --keymap de)

# --- the plan -------------------------------------------------------------------------------------
"$IMPRINT" plan "${common[@]}" --json >"$WORK/plan.json"
jq -e '.account == {"userName":"alice","realName":"Alice Example","storage":"luks","admin":true,"autoLogin":false,"kind":"classic","note":.account.note}
       and (.account.note | test("image file"))
       and .settings == {"hostname":"imprint-test","timezone":"Europe/Berlin","locale":"de_DE.UTF-8","keymap":"de"}' \
        "$WORK/plan.json" >/dev/null || { cat "$WORK/plan.json" >&2; fail "the plan does not show the account and settings"; }
"$IMPRINT" plan "${common[@]}" >"$WORK/plan.txt"
grep -q '^Account: alice (Alice Example) — classic /etc/passwd user, administrator' "$WORK/plan.txt" || { cat "$WORK/plan.txt" >&2; fail "no Account: line"; }
grep -q '^System:  hostname imprint-test, timezone Europe/Berlin, locale de_DE.UTF-8, keymap de' "$WORK/plan.txt" || fail "no System: line"
pass "the plan shows the account (classic, and why) and the settings"

# --- refusals before anything is written ------------------------------------------------------------
expect_exit 2 "$IMPRINT" install "${common[@]/alice/Alice}" --yes
expect_stderr "cannot be a user name"
expect_exit 2 "$IMPRINT" install --source "$src" --target "$img" --user root --yes
expect_stderr "cannot be a user name"
expect_exit 2 "$IMPRINT" install --source "$src" --target "$img" --hostname "bad_host!" --yes
expect_stderr "is not a valid hostname"
expect_exit 2 "$IMPRINT" install --source "$src" --target "$img" --timezone "../../etc/passwd" --yes
expect_stderr "is not a timezone name"
expect_exit 2 "$IMPRINT" install --source "$src" --target "$img" --admin --yes
expect_stderr "need --user"
printf 'abc' >"$WORK/creds/imprint.user-password"
expect_exit 2 "$IMPRINT" install "${common[@]}" --yes
expect_stderr "is refused"
! grep -q abc "$WORK/stderr" || fail "the weak password was printed"
rm "$WORK/creds/imprint.user-password"
expect_exit 2 "$IMPRINT" install "${common[@]}" --yes </dev/null
expect_stderr "neither the credential imprint.user-password nor a terminal"
printf '%s' "$password" >"$WORK/creds/imprint.user-password"
[ "$(checksum "$img")" = "$sum" ] || fail "a refused install changed the image"
pass "bad names, settings, weak or missing passwords are refused; nothing written"

# --- the install ----------------------------------------------------------------------------------
"$IMPRINT" install "${common[@]}" --yes >"$WORK/out" 2>"$WORK/err" || { cat "$WORK/out" "$WORK/err" >&2; fail "install with an account failed"; }
root_off=$(sfdisk --json "$img" | jq '.partitiontable.partitions[] | select(.type == "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709") | .start * 512')
fsx() { debugfs -R "$1" "$img?offset=$root_off" 2>/dev/null; }
fsx 'cat /etc/passwd' | grep -qx 'alice:x:[0-9]*:[0-9]*:Alice Example:/home/alice:/bin/bash' || { fsx 'cat /etc/passwd' >&2; fail "alice is not in /etc/passwd"; }
fsx 'cat /etc/group' | grep -q '^sudo:x:27:alice$' || fail "alice is not in the sudo group"
hash=$(fsx 'cat /etc/shadow' | awk -F: '$1 == "alice" { print $2 }')
case $hash in '$y$'*) ;; *) fail "alice's shadow entry is not a yescrypt hash: ${hash:0:4}…" ;; esac
printf '%s' "$password" | /usr/bin/python3 -W ignore -c 'import crypt, sys; h = sys.argv[1]; sys.exit(0 if crypt.crypt(sys.stdin.read(), h) == h else 1)' "$hash" \
        || fail "the shadow hash does not verify the password"
printf 'wrong' | /usr/bin/python3 -W ignore -c 'import crypt, sys; h = sys.argv[1]; sys.exit(0 if crypt.crypt(sys.stdin.read(), h) == h else 1)' "$hash" \
        && fail "the shadow hash verifies a wrong password"
fsx 'stat /home/alice' | grep -q 'Type: directory' || fail "no /home/alice"
pass "a classic user: passwd, sudo group, a yescrypt hash that verifies the password, a home directory"

[ "$(fsx 'cat /etc/hostname')" = imprint-test ] || fail "hostname is '$(fsx 'cat /etc/hostname')'"
fsx 'stat /etc/localtime' | grep -q 'Fast link dest: "../usr/share/zoneinfo/Europe/Berlin"' || { fsx 'stat /etc/localtime' >&2; fail "/etc/localtime does not point to Europe/Berlin"; }
# Debian's systemd-firstboot writes the locale to /etc/default/locale, upstream's to /etc/locale.conf.
{ fsx 'cat /etc/locale.conf'; fsx 'cat /etc/default/locale'; } | grep -qx 'LANG=de_DE.UTF-8' || fail "the locale is not LANG=de_DE.UTF-8"
# Debian's /etc/vconsole.conf -> default/keyboard stays a link; the values land behind it.
fsx 'stat /etc/vconsole.conf' | grep -q 'Fast link dest: "default/keyboard"' || fail "/etc/vconsole.conf is no longer the link to default/keyboard"
fsx 'cat /etc/default/keyboard' >"$WORK/keyboard"
grep -qx 'KEYMAP=de' "$WORK/keyboard" && grep -qx 'XKBLAYOUT=de' "$WORK/keyboard" && grep -qx 'XKBMODEL="pc105"' "$WORK/keyboard" \
        && [ "$(grep -c '^XKBLAYOUT=' "$WORK/keyboard")" = 1 ] || { cat "$WORK/keyboard" >&2; fail "/etc/default/keyboard does not have the keymap"; }
pass "hostname, time zone, locale and keymap are set for the first boot"

! grep -aqF -- "$password" "$img" || fail "the password is on the disk image"
! grep -aqF -- "$password" "$WORK/out" "$WORK/err" || fail "the password was printed"
pass "the password is nowhere on the disk image or in the output"

# A weak password passes with --allow-weak-password (tests, kiosks).
printf 'abc' >"$WORK/creds/imprint.user-password"
truncate -s 0 "$img"; truncate -s 2G "$img"
"$IMPRINT" install "${common[@]}" --allow-weak-password --yes >/dev/null 2>&1 || fail "--allow-weak-password did not allow a weak password"
pass "--allow-weak-password accepts a weak password"

# --- a disk without a usable TPM: classic, with the TPM's reason ---------------------------------------
truncate -s 3G "$WORK/disk2.img"
attach "$WORK/disk2.img"
"$IMPRINT" plan --source "$src" --target "$ATTACHED" --no-encrypt --user alice --tcti swtpm:port=1 --json >"$WORK/plan2.json"
jq -e '.account.kind == "classic" and (.account.note | test("TPM") and test("classic user"))' "$WORK/plan2.json" >/dev/null \
        || { jq .account "$WORK/plan2.json" >&2; fail "a disk without a TPM is not planned with a classic user and the reason"; }
"$IMPRINT" plan --source "$src" --target "$ATTACHED" --no-encrypt --user alice --classic-user --json | jq -e '.account.note | test("as asked")' >/dev/null \
        || fail "--classic-user is not said"
pass "without a usable TPM a homed-capable image gets a classic user, and the plan says why"

# --- a classic account with a home partition: the home directory lives on it -----------------------
# systemd-gpt-auto-generator mounts the home partition on /home only while /home on root is empty
# ("\"/home\" already populated, ignoring."): the account's directory must be made inside the home
# volume, as useradd would make it (owner, mode from login.defs, /etc/skel), and root's /home left
# empty. The stock debugfs reads both filesystems of the image file.
printf '%s' "$password" >"$WORK/creds/imprint.user-password"
img3=$WORK/disk-home.img
truncate -s 3G "$img3"
"$IMPRINT" install --source "$src" --target "$img3" --seed home --user alice --home-size=1G --yes >"$WORK/out3" 2>&1 \
        || { cat "$WORK/out3" >&2; fail "install with --home-size and a classic user failed"; }
[ -z "$(losetup -j "$img3")" ] || fail "the install left a loop device on the image: $(losetup -j "$img3")"
part_off() { sfdisk --json "$img3" | jq --arg t "$1" '.partitiontable.partitions[] | select(.type == $t) | .start * 512'; }
root3=$(part_off 4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709)
home3=$(part_off 933AC7E1-2EB4-4F13-B844-0E14E2AEF915)
[ -n "$home3" ] || fail "no DPS home partition in the installed image"
rootfs() { debugfs -R "$1" "$img3?offset=$root3" 2>/dev/null; }
homefs() { debugfs -R "$1" "$img3?offset=$home3" 2>/dev/null; }
# debugfs ls -p: /inode/mode/uid/gid/name/size/ per entry.
entries=$(rootfs 'ls -p /home' | awk -F/ 'NF > 5 && $6 != "." && $6 != ".." { print $6 }')
[ -z "$entries" ] || fail "/home on the root filesystem is not empty: $(echo "$entries" | tr '\n' ' ')"
ids=$(rootfs 'cat /etc/passwd' | awk -F: '$1 == "alice" { print $3 ":" $4 ":" $6 }')
[ "${ids##*:}" = /home/alice ] || fail "alice's home in /etc/passwd is '${ids##*:}', not /home/alice"
uid=${ids%%:*} gid=${ids#*:}; gid=${gid%%:*}
# What useradd makes: HOME_MODE of the image's login.defs, else 0777 & ~UMASK.
want=$(rootfs 'cat /etc/login.defs' | awk '$1 == "HOME_MODE" { print $2 }')
if [ -z "$want" ]; then
        umask=$(rootfs 'cat /etc/login.defs' | awk '$1 == "UMASK" { print $2 }')
        want=$(printf '%o' $((0777 & ~8#${umask:-022})))
fi
want=$(printf '%o' $((8#$want)))
line=$(homefs 'ls -p /' | awk -F/ '$6 == "alice"')
[ -n "$line" ] || { homefs 'ls -l /' >&2; fail "the home partition has no alice/"; }
IFS=/ read -r _ _ mode fuid fgid _ <<<"$line"
[ "$fuid:$fgid" = "$uid:$gid" ] || fail "alice/ on the home partition is owned by $fuid:$fgid, not alice ($uid:$gid)"
[ "$mode" = "40$want" ] || [ "$mode" = "040$want" ] || fail "alice/ on the home partition has mode $mode, not directory $want"
for f in .bashrc .profile; do
        l=$(homefs 'ls -p /alice' | awk -F/ -v f="$f" '$6 == f')
        [ -n "$l" ] || fail "alice/$f (from /etc/skel) is not on the home partition"
        IFS=/ read -r _ _ _ fuid fgid _ <<<"$l"
        [ "$fuid:$fgid" = "$uid:$gid" ] || fail "alice/$f is owned by $fuid:$fgid"
        [ "$(homefs "cat /alice/$f")" = "$(rootfs "cat /etc/skel/$f")" ] || fail "alice/$f differs from /etc/skel/$f"
done
e2fsck -fn "$img3?offset=$home3" >/dev/null 2>&1 || fail "e2fsck finds errors on the home partition"
pass "a classic account's home (owner $uid:$gid, mode $want, skel files) is on the home partition; /home on root is empty"
