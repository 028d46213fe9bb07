#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# imprint unattended: a JSON configuration (file, credential directory, kernel command line) says
# what to install where; progress is one JSON object per line; mistakes in the configuration are
# refused before anything is written, and "auto" never guesses between disks.
. "$(dirname "$0")/lib.sh"
need_tool jq
need_tool objcopy

src=$WORK/fakeos.img
bash "$(dirname "$0")/make-fake-ddi.sh" "$src" 200
tgt=$WORK/golden.img
truncate -s 4G "$tgt"

cat >"$WORK/config.json" <<JSON
{ "source": "$src", "target": "$tgt", "seed": "oem-line-3", "homeSize": "1G", "afterInstall": "none" }
JSON
"$IMPRINT" unattended --config "$WORK/config.json" >"$WORK/events.json"
jq -e -s '.[0] | .event == "config" and .target == "'"$tgt"'"' "$WORK/events.json" >/dev/null || fail "no config event first"
jq -e -s '.[-1] == {"event":"result","success":true,"exitCode":0}' "$WORK/events.json" >/dev/null || fail "no success result"
jq -e -s 'all(.[]; type == "object" and has("event"))' "$WORK/events.json" >/dev/null || fail "a progress line is not a JSON object"
sfdisk --json "$tgt" | jq -e '[.partitiontable.partitions[].name] == ["ESP", "fakeos_7", "home"]' >/dev/null || fail "the layout does not follow the configuration"
pass "unattended install from a configuration file, JSON progress to the end"

# The same configuration as a systemd credential (what imprint-unattended.service receives).
mkdir "$WORK/creds"
sed "s|golden.img|cred.img|" "$WORK/config.json" >"$WORK/creds/imprint.config"
truncate -s 4G "$WORK/cred.img"
CREDENTIALS_DIRECTORY=$WORK/creds "$IMPRINT" unattended >"$WORK/events2.json"
jq -e -s '.[0].origin == "'"$WORK/creds/imprint.config"'" and .[-1].success == true' "$WORK/events2.json" >/dev/null \
        || fail "the credential imprint.config was not used"
# Same seed, same layout: an OEM line gets identical disks.
cmp <(sfdisk --json "$tgt" | jq -c '.partitiontable | del(.device) | .partitions |= map(del(.node))') \
    <(sfdisk --json "$WORK/cred.img" | jq -c '.partitiontable | del(.device) | .partitions |= map(del(.node))') \
        || fail "the same configuration produced different partition tables"
pass "the credential imprint.config works, and the same seed gives the same GPT"

# Bad configurations: each refused with a sentence and nothing written.
bad() {
        local want=$1 json=$2
        truncate -s 4G "$WORK/bad.img"
        echo "$json" >"$WORK/bad.json"
        expect_exit "$want" "$IMPRINT" unattended --config "$WORK/bad.json"
        [ "$(du -k "$WORK/bad.img" | cut -f1)" = 0 ] || fail "a refused configuration wrote to the target: $json"
        jq -e -s '.[-1].event == "result" and .[-1].success == false' "$WORK/stdout" >/dev/null || fail "no failed result event for: $json"
}
bad 2 '{ "source": "'"$src"'", "target": "'"$WORK/bad.img"'", "colour": "blue" }'
expect_stderr 'unknown key "colour"'
bad 2 '{ "source": "'"$src"'", "target": "'"$WORK/bad.img"'", "homeSize": "lots" }'
expect_stderr '"homeSize" must be a size'
bad 2 '{ "source": "'"$src"'", "target": "'"$WORK/bad.img"'", "afterInstall": "explode" }'
expect_stderr '"afterInstall" must be'
bad 2 '{ "target": "'"$WORK/bad.img"'" }'
expect_stderr 'no "source" image'
bad 2 '{ "source": "'"$src"'", "target": "'"$WORK/nonexistent.img"'", "waitForTargetSeconds": 1 }'
expect_stderr "did not appear within 1 seconds"
echo '{ not json' >"$WORK/broken.json"
expect_exit 2 "$IMPRINT" unattended --config "$WORK/broken.json"
expect_stderr "is not valid JSON"
expect_exit 2 "$IMPRINT" unattended
expect_stderr "No install configuration"
pass "bad configurations are refused before writing"

# "auto" takes the one disk that can be a target; loop devices and image files never count, so
# on a machine whose only disk holds the running system there is none, and nothing is written.
echo '{ "source": "'"$src"'", "target": "auto" }' >"$WORK/auto.json"   # a file: a pipe is refused (imprint(1), JSON input)
expect_exit 2 "$IMPRINT" unattended --config "$WORK/auto.json"
expect_stderr 'Target "auto"'
pass "target \"auto\" refuses to guess"

# ---- factory reset (issue 15): a configuration with a "reset" object -------------------------
# Its keys are checked like the install's, before anything is written: unknown keys, wrong types,
# an --entry-point for a configuration that resets nothing. No "source" is needed (usr images
# recreate root from the disk's own repart.d).
bad 2 '{ "reset": { "target": "'"$WORK/bad.img"'", "colour": "blue" } }'
expect_stderr 'unknown key "reset.colour"'
bad 2 '{ "reset": { "target": "'"$WORK/bad.img"'", "keepHome": "yes" } }'
expect_stderr '"reset.keepHome" must be true or false'
bad 2 '{ "reset": { "target": "'"$WORK/bad.img"'", "secureErase": 1 } }'
expect_stderr '"reset.secureErase" must be true or false'
bad 2 '{ "reset": { "target": "'"$WORK/bad.img"'", "tpmClear": null } }'
expect_stderr '"reset.tpmClear" must be true or false'
bad 2 '{ "reset": { "target": "'"$WORK/bad.img"'", "afterReset": "explode" } }'
expect_stderr '"reset.afterReset" must be'
bad 2 '{ "reset": { "target": "'"$WORK/bad.img"'", "user": { "name": "Not A Name" } } }'
expect_stderr '"user.name"'
bad 2 '{ "reset": [ "'"$WORK/bad.img"'" ] }'
expect_stderr '"reset" must be an object'
bad 2 '{ "reset": { "target": "" } }'
expect_stderr '"reset.target" must be a non-empty string'
bad 2 '{ "reset": { "target": "'"$WORK/nonexistent.img"'" }, "waitForTargetSeconds": 1 }'
expect_stderr "did not appear within 1 seconds"
echo '{ "source": "'"$src"'", "target": "'"$WORK/bad.img"'" }' >"$WORK/install.json"
expect_exit 2 "$IMPRINT" unattended --config "$WORK/install.json" --entry-point=boot-menu
expect_stderr 'has no "reset" object'
expect_exit 2 "$IMPRINT" unattended --config "$WORK/install.json" --entry-point=somewhere
expect_stderr 'not one of boot-menu, live-medium, unattended'
pass "bad reset configurations are refused before writing"

# A disk imprint did not install is never reset: refused (exit 3) with the reason, after the
# configuration was read (its event says it is a reset), and not one byte of it changes.
truncate -s 4G "$WORK/foreign.img"
sfdisk -q "$WORK/foreign.img" <<<'label: gpt
size=100M, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B
type=4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709'
mkfs.vfat -F 16 --offset=2048 "$WORK/foreign.img" $((100 * 1024)) >/dev/null 2>&1
sum=$(checksum "$WORK/foreign.img")
echo '{ "reset": { "target": "'"$WORK/foreign.img"'", "afterReset": "none" } }' >"$WORK/reset.json"
expect_exit 3 "$IMPRINT" unattended --config "$WORK/reset.json" --entry-point=boot-menu
jq -e -s '.[0].event == "config" and .[0].reset == true and .[0].entryPoint == "boot-menu" and .[-1].success == false and .[-1].exitCode == 3' \
        "$WORK/stdout" >/dev/null || { cat "$WORK/stdout" >&2; fail "no config event and failed result for a refused reset"; }
expect_stderr "Cannot reset"
[ "$(checksum "$WORK/foreign.img")" = "$sum" ] || fail "a refused reset wrote to the disk"
pass "an unattended reset of a disk imprint did not install is refused, nothing written"
