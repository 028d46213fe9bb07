#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Bad input gets a clear sentence and the documented exit code, and nothing is written.
. "$(dirname "$0")/lib.sh"
need_tool jq

img=$WORK/disk.img
truncate -s 8G "$img"

expect_exit 0 "$IMPRINT" --help
grep -q "imprint plan" "$WORK/stdout" || fail "--help does not list plan"
expect_exit 0 "$IMPRINT" --version
expect_exit 2 "$IMPRINT" frobnicate
expect_stderr 'unknown command "frobnicate"'
expect_exit 2 "$IMPRINT" plan
expect_stderr "--target"
expect_exit 2 "$IMPRINT" plan --target "$img" --root-size 12Q
expect_stderr 'invalid size "12Q"'
expect_exit 2 "$IMPRINT" plan --target "$img" --root-fs ntfs
expect_stderr 'Unsupported filesystem for root: "ntfs"'
expect_exit 2 "$IMPRINT" plan --target "$img" --root-size rest --home-size rest
expect_stderr "Only one of root and home"
expect_exit 2 "$IMPRINT" plan --target "$img" --esp-size 100M
expect_stderr "FAT32 needs at least 512 MiB"
expect_exit 2 "$IMPRINT" plan --target "$WORK/nonexistent.img"
expect_stderr "nonexistent.img"
expect_exit 2 "$IMPRINT" plan --target /dev/null
pass "option errors"

# A plan file that is not JSON, misses fields, or describes overlapping partitions.
echo '{ not json' >"$WORK/bad.json"
expect_exit 2 "$IMPRINT" apply --plan-file "$WORK/bad.json" --yes
expect_stderr "bad.json"
"$IMPRINT" plan --target "$img" --seed x --plan-file "$WORK/plan.json" >/dev/null
jq 'del(.partitions[0].typeUuid)' "$WORK/plan.json" >"$WORK/missing.json"
expect_exit 2 "$IMPRINT" apply --plan-file "$WORK/missing.json" --yes
expect_stderr 'field "typeUuid" is missing'
jq '.partitions[1].start = .partitions[0].start' "$WORK/plan.json" >"$WORK/overlap.json"
expect_exit 2 "$IMPRINT" apply --plan-file "$WORK/overlap.json" --yes
expect_stderr "overlap"
jq '.partitions[1].size = 99999999999488' "$WORK/plan.json" >"$WORK/huge.json"
expect_exit 2 "$IMPRINT" apply --plan-file "$WORK/huge.json" --yes
expect_stderr "outside the usable area"
expect_exit 2 "$IMPRINT" apply --plan-file "$WORK/plan.json" --target "$img" --yes
expect_stderr "not both"
[ "$(du -k "$img" | cut -f1)" = 0 ] || fail "a refused command wrote to the image"
pass "bad plan files refused, nothing written"

# A plan for one file applied after the file was replaced by a bigger one.
truncate -s 9G "$img"
expect_exit 5 "$IMPRINT" apply --plan-file "$WORK/plan.json" --yes
expect_stderr "its size was 8 GiB"
pass "changed target refused (exit 5)"

# An unknown option: imprint's own sentence, naming the command, and a hint that works.
expect_exit 2 "$IMPRINT" install --frobnicate
expect_stderr 'imprint install: unknown option "--frobnicate".'
expect_stderr "Try 'imprint install --help'."
grep -q "unrecognized option" "$WORK/stderr" && fail "getopt's raw message is still printed"
expect_exit 2 "$IMPRINT" plan --target
expect_stderr "imprint plan: option --target needs a value."
expect_exit 2 "$IMPRINT" disks --json=yes
expect_stderr "imprint disks: option --json takes no value."
expect_stderr "Try 'imprint disks --help'."
for verb in disks plan apply install unattended tpm; do
        expect_exit 0 "$IMPRINT" "$verb" --help
        grep -q "^Usage:" "$WORK/stdout" || fail "imprint $verb --help does not print the usage"
done
pass "unknown options: a sentence and a hint; every command takes --help"

# A plan file that does not exist: one sentence, no json-c internals.
expect_exit 2 "$IMPRINT" apply --plan-file "$WORK/nowhere.json" --yes
expect_stderr "Cannot read the plan file $WORK/nowhere.json: it does not exist."
grep -q "json_object_from_file" "$WORK/stderr" && fail "json-c's function name leaks into the message"
pass "missing plan file: a clean sentence (exit 2)"

# No command and no terminal (a script, a pipe, a unit): what is possible here, not the whole help.
expect_exit 2 "$IMPRINT" </dev/null
expect_stderr "the full-screen installer needs a terminal"
for cmd in "imprint disks" "imprint plan" "imprint install" "imprint unattended" "imprint --plain"; do
        expect_stderr "$cmd"
done
[ ! -s "$WORK/stdout" ] || fail "imprint without a terminal still prints the help: $(head -3 "$WORK/stdout")"
[ "$(wc -l <"$WORK/stderr")" -le 5 ] || fail "imprint without a terminal says too much: $(cat "$WORK/stderr")"
pass "no command and no terminal: says why and names the non-interactive commands (exit 2)"

# install without arguments names everything that is missing at once.
expect_exit 2 "$IMPRINT" install
expect_stderr "--source IMAGE and --target DISK|FILE are required"
expect_stderr "--plan-file FILE"
expect_exit 2 "$IMPRINT" install --source "$WORK/os.img"
expect_stderr "--target DISK|FILE is required"
expect_exit 2 "$IMPRINT" apply
expect_stderr "--target DISK|FILE is required"
pass "install without arguments names --source and --target together"

# A target image file that does not exist: how to make one.
expect_exit 2 "$IMPRINT" plan --target "$WORK/new.img"
expect_stderr "$WORK/new.img does not exist."
expect_stderr "truncate -s 16G $WORK/new.img"
[ ! -e "$WORK/new.img" ] || fail "plan created the target file"
pass "a target file that does not exist: a hint to make one"

# Progress into a log or a pipe: every line names its step.
truncate -s 8G "$WORK/progress.img"
"$IMPRINT" apply --target "$WORK/progress.img" --seed progress --yes >"$WORK/progress.log"
grep -q " … done (" "$WORK/progress.log" || fail "no step finished: $(cat "$WORK/progress.log")"
if grep -E '^\[[0-9]+/[0-9]+\] done' "$WORK/progress.log"; then
        fail "a finished step does not name itself"
fi
while IFS= read -r line; do
        begin=${line% done (*}
        grep -qxF -- "$begin" "$WORK/progress.log" || fail "\"$line\" names another step than it began as"
done < <(grep " … done (" "$WORK/progress.log")
pass "progress without a terminal: each line names its step"

# A password the credential hands over and libpwquality refuses: bad input, exit 2 (imprint(1)),
# not 3 ("the target may not be written"). Nothing is written.
need_tool objcopy
bash "$(dirname "$0")/make-fake-ddi.sh" "$WORK/os.img" 200 >/dev/null
truncate -s 4G "$WORK/account.img"
mkdir -p "$WORK/creds"
printf '123' >"$WORK/creds/imprint.user-password"
CREDENTIALS_DIRECTORY=$WORK/creds expect_exit 2 "$IMPRINT" install --source "$WORK/os.img" --target "$WORK/account.img" --user alice --yes
expect_stderr "The password for alice from the credential imprint.user-password is refused"
[ "$(du -k "$WORK/account.img" | cut -f1)" = 0 ] || fail "a refused password still wrote to the target"
CREDENTIALS_DIRECTORY=$WORK/creds expect_exit 2 "$IMPRINT" install --source "$WORK/os.img" --target "$WORK/account.img" --user alice --yes --json
jq -e 'select(.event == "result") | .exitCode == 2' "$WORK/stdout" >/dev/null || fail "the JSON result does not say exit code 2"
awk '/^\.SH EXIT STATUS/ { s = 1 } s && /^\.B 2$/ { c = 1; next } c && /^\.TP/ { exit } c' "$SOURCE_ROOT/data/imprint.1" \
        | grep -q "password" || fail "imprint(1) does not document exit code 2 for a refused password"
pass "a refused password exits 2, as documented"
