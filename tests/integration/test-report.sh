#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The per-machine report of an OEM line (issue 16): imprint unattended with "report" writes one
# JSON document to a directory, the console and an HTTP POST; the three copies are the same bytes,
# and every field a line's records rely on is checked against a stock tool (sfdisk, blkid,
# sha256sum, stat). A failed install still reports, with the failure. Progress also goes to
# sd_notify STATUS, received here on a datagram socket standing in for systemd. No secret (the
# user's password) is in any copy.
. "$(dirname "$0")/lib.sh"
need_root
need_tool jq
need_tool curl
need_tool python3
need_tool blkid
need_tool sfdisk
need_tool objcopy

src=$WORK/accounts.raw
FAKE_DDI_ACCOUNTS=1 bash "$(dirname "$0")/make-fake-ddi.sh" "$src" 200
tgt=$WORK/target.img
truncate -s 4G "$tgt"

# The machine as the firmware names it (dmi.h reads $IMPRINT_DMI_DIR in tests). The serial has
# characters a file name on a share must not carry.
mkdir "$WORK/dmi"
printf 'Example Computers\n' >"$WORK/dmi/sys_vendor"
printf 'Line Book 14\n' >"$WORK/dmi/product_name"
printf 'LB14-DE\n' >"$WORK/dmi/product_sku"
printf 'SN 123/45\n' >"$WORK/dmi/product_serial"
printf '4c4c4544-0000-1000-8000-000000000001\n' >"$WORK/dmi/product_uuid"
printf 'Example Boards\n' >"$WORK/dmi/board_vendor"
printf 'EB-1\n' >"$WORK/dmi/board_name"
printf '1.2.3\n' >"$WORK/dmi/bios_version"
export IMPRINT_DMI_DIR=$WORK/dmi

# An HTTP server that keeps every POST's body and Content-Type, as a line's report collector.
mkdir "$WORK/posted"
cat >"$WORK/server.py" <<'PY'
import http.server, os, sys
out = sys.argv[1]
class H(http.server.BaseHTTPRequestHandler):
    n = 0
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        H.n += 1
        with open(os.path.join(out, "%d.json" % H.n), "wb") as f:
            f.write(body)
        with open(os.path.join(out, "%d.type" % H.n), "w") as f:
            f.write(self.headers.get("Content-Type", ""))
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok\n")
    def log_message(self, *a):
        pass
s = http.server.HTTPServer(("127.0.0.1", 0), H)
with open(os.path.join(out, "port"), "w") as f:
    f.write(str(s.server_address[1]))
s.serve_forever()
PY
python3 "$WORK/server.py" "$WORK/posted" &
server_pid=$!
# The systemd side of sd_notify: a datagram socket; every message, one line per message.
cat >"$WORK/notify.py" <<'PY'
import os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
with open(sys.argv[2], "a") as f:
    while True:
        m = s.recv(65536).decode()
        f.write(m.replace("\n", " ") + "\n")
        f.flush()
PY
python3 "$WORK/notify.py" "$WORK/notify.sock" "$WORK/notify.log" &
notify_pid=$!
trap 'kill $server_pid $notify_pid 2>/dev/null || true; cleanup' EXIT
for _ in $(seq 50); do [ -s "$WORK/posted/port" ] && [ -S "$WORK/notify.sock" ] && break; sleep 0.1; done
port=$(cat "$WORK/posted/port")

mkdir -m 0700 "$WORK/creds" "$WORK/reports"
password='Kestrel-harbour 9 lantern'
printf '%s' "$password" >"$WORK/creds/imprint.user-password"
cat >"$WORK/config.json" <<JSON
{ "source": "$src", "target": "$tgt", "seed": "report-1", "homeSize": "1G", "afterInstall": "none",
  "user": { "name": "alice" },
  "report": { "directory": "$WORK/reports", "console": true, "url": "http://127.0.0.1:$port/report" } }
JSON
umask 077   # the report is 0644 whatever the umask
CREDENTIALS_DIRECTORY=$WORK/creds IMPRINT_CONSOLE=$WORK/console.log NOTIFY_SOCKET=$WORK/notify.sock \
        "$IMPRINT" unattended --config "$WORK/config.json" >"$WORK/events.json" 2>"$WORK/stderr" ||
        { cat "$WORK/events.json" "$WORK/stderr" >&2; fail "the unattended install failed"; }
umask 022
jq -e -s '.[-1] == {"event":"result","success":true,"exitCode":0}' "$WORK/events.json" >/dev/null || fail "no success result"
jq -e -s 'all(.[]; type == "object" and has("event"))' "$WORK/events.json" >/dev/null || fail "stdout holds more than JSON events"

# ---- the three copies ----
mapfile -t files < <(find "$WORK/reports" -type f)
[ ${#files[@]} = 1 ] || fail "expected one report in the directory, found: ${files[*]:-none}"
report=${files[0]}
[[ $(basename "$report") =~ ^imprint-SN_123_45-[0-9]{8}T[0-9]{6}Z\.json$ ]] || fail "the report's name is not imprint-SERIAL-UTCTIME.json: $report"
[ "$(stat -c %a "$report")" = 644 ] || fail "the report is not mode 0644: $(stat -c %a "$report")"
sed -n '/^IMPRINT-REPORT-BEGIN$/,/^IMPRINT-REPORT-END$/p' "$WORK/console.log" >"$WORK/console-block"
[ "$(wc -l <"$WORK/console-block")" = 3 ] || { cat "$WORK/console.log" >&2; fail "the console does not hold BEGIN, one JSON line, END"; }
sed -n 2p "$WORK/console-block" >"$WORK/console.json"
[ -f "$WORK/posted/1.json" ] && [ ! -f "$WORK/posted/2.json" ] || fail "the server did not receive exactly one POST"
[ "$(cat "$WORK/posted/1.type")" = application/json ] || fail "the POST's Content-Type is not application/json"
printf '\n' >>"$WORK/posted/1.json"   # the file and the console line end with a newline, the body need not
cmp "$report" "$WORK/console.json" || fail "the directory's and the console's reports differ"
cmp "$report" "$WORK/posted/1.json" || fail "the directory's and the POSTed reports differ"
pass "one report, the same bytes in the directory (named by the serial, 0644), on the console and POSTed as JSON"

# ---- the fields, each against a referee ----
jq -e '.formatVersion == 1 and .mode == "install" and (.imprintVersion | length > 0)
       and (.started | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$"))
       and (.ended | test("Z$")) and .ended >= .started and .durationSeconds >= 0' "$report" >/dev/null || fail "format version, mode or times are wrong"
jq -e '.machine == {"vendor":"Example Computers","product":"Line Book 14","version":null,"sku":"LB14-DE","family":null,
                     "serial":"SN 123/45","uuid":"4c4c4544-0000-1000-8000-000000000001","boardVendor":"Example Boards",
                     "boardName":"EB-1","biosVersion":"1.2.3"}' "$report" >/dev/null || { jq .machine "$report" >&2; fail "the DMI identity is wrong"; }
jq -e --arg p "$tgt" --argjson size "$(stat -c %s "$tgt")" \
        '.disk.path == $p and .disk.size == $size and .disk.kind == "file" and .disk.transport == "file" and .disk.partitionTable == "gpt"' \
        "$report" >/dev/null || { jq .disk "$report" >&2; fail "the target disk is not described"; }
sum=$(sha256sum "$src" | cut -d' ' -f1)
jq -e --arg s "$sum" --arg p "$src" '.image.sha256 == $s and .image.path == $p and .image.name == "Imprint Fake OS 7" and .image.version == "7"' \
        "$report" >/dev/null || { jq .image "$report" >&2; fail "the image's name, version or checksum is wrong (sha256sum: $sum)"; }
# The partitions as sfdisk reads them from the target, and the filesystems as blkid probes them.
sfdisk --json "$tgt" >"$WORK/sfdisk.json"
jq -e --slurpfile s "$WORK/sfdisk.json" '
        [.partitions[] | {uuid: .partUuid, label: .label, type: .typeUuid}] ==
        [$s[0].partitiontable.partitions[] | {uuid: (.uuid | ascii_downcase), label: .name, type: (.type | ascii_downcase)}]
        and (.disk.diskUuid == ($s[0].partitiontable.id | ascii_downcase))' "$report" >/dev/null ||
        { jq .partitions "$report" >&2; cat "$WORK/sfdisk.json" >&2; fail "the partition UUIDs differ from sfdisk --json"; }
n=0
while read -r start size fsuuid; do
        want=$(blkid -p -O "$start" -S "$size" -o value -s UUID "$tgt")
        [ "$fsuuid" = "$want" ] || fail "partition at $start: the report says filesystem UUID $fsuuid, blkid says $want"
        n=$((n + 1))
done < <(jq -r '.partitions[] | "\(.start) \(.size) \(.fsUuid)"' "$report")
[ "$n" = 3 ] || fail "expected 3 partitions in the report, got $n"
jq -e '.plan.target.path == .disk.path and (.plan.partitions | length) == 3 and .plan.diskUuid == .disk.diskUuid
       and .encryption.enabled == false and .encryption.tpm2.enrolled == false and (.encryption.note | length > 0)
       and .escrow == null and .refusals == []' "$report" >/dev/null || fail "the plan, encryption or escrow section is wrong"
jq -e '(.steps | length) >= 5 and all(.steps[]; .result == "done" and (.durationSeconds | type) == "number" and .durationSeconds >= 0
                                             and .startSeconds >= 0 and (.id | length > 0) and (.description | length > 0))
       and ([.steps[] | select(.id == "copy-root")][0].bytes == 209715200)
       and ([.steps[].startSeconds] | . == sort)' "$report" >/dev/null ||
        { jq .steps "$report" >&2; fail "the steps lack ids, durations or bytes"; }
# The steps are the install's own, in the order they ran.
cmp <(jq -r '.steps[].id' "$report") <(jq -r 'select(.event == "begin") | .id' "$WORK/events.json") ||
        fail "the report's steps are not the ones the progress stream began"
jq -e '.result == {"success":true,"exitCode":0,"message":null,"failedStep":null}
       and (.logTail | length) > 0 and (.logTail | length) <= 50 and any(.logTail[]; test("^running: "))' "$report" >/dev/null ||
        fail "the result or the log tail is wrong"
pass "the report's fields agree with sfdisk, blkid, sha256sum, stat and the progress stream"

for f in "$report" "$WORK/console.log" "$WORK/posted/1.json"; do
        ! grep -qF "$password" "$f" || fail "the user's password is in $f"
done
jq -e '.plan.account.userName == "alice"' "$report" >/dev/null || fail "the report does not name the account"
pass "no copy of the report holds the user's password"

# ---- sd_notify STATUS ----
grep -q '^STATUS=\[[0-9]*/[0-9]*\] copy-root: ' "$WORK/notify.log" || { cat "$WORK/notify.log" >&2; fail "no STATUS for the copy step"; }
grep -q '^STATUS=\[[0-9]*/[0-9]*\] copy-root: done$' "$WORK/notify.log" || fail "no STATUS when the copy step ended"
[ "$(tail -n1 "$WORK/notify.log")" = "STATUS=Finished successfully." ] || { tail -n3 "$WORK/notify.log" >&2; fail "the last STATUS is not the result"; }
pass "progress and the result reach NOTIFY_SOCKET as STATUS= lines ($(wc -l <"$WORK/notify.log") messages)"

# ---- a failed install still reports ----
rm -f "$WORK/reports"/* "$WORK/posted"/*.json "$WORK/posted"/*.type
truncate -s 1G "$WORK/small.img"
sed -e "s|$tgt|$WORK/small.img|" "$WORK/config.json" >"$WORK/small.json"
CREDENTIALS_DIRECTORY=$WORK/creds IMPRINT_CONSOLE=$WORK/console2.log NOTIFY_SOCKET=$WORK/notify.sock \
        expect_exit 4 "$IMPRINT" unattended --config "$WORK/small.json"
[ "$(du -k "$WORK/small.img" | cut -f1)" = 0 ] || fail "the refused install wrote to the target"
report=$(find "$WORK/reports" -type f)
[ -n "$report" ] || fail "a failed install wrote no report"
msg=$(jq -r -s '.[-1].message' "$WORK/stdout")
jq -e --arg m "$msg" --arg p "$WORK/small.img" '.result.success == false and .result.exitCode == 4 and .result.message == $m
        and ($m | length > 0) and .disk.path == $p and .disk.size == 1073741824 and .plan == null and .steps == []' "$report" >/dev/null ||
        { jq . "$report" >&2; fail "the failed install's report lacks the result"; }
posted=$(find "$WORK/posted" -name '*.json')
[ -n "$posted" ] && cmp <(printf '%s\n' "$(cat "$posted")") "$report" || fail "the failed install's report was not POSTed"
tail -n1 "$WORK/notify.log" | grep -q '^STATUS=Failed (exit status 4): ' || fail "the last STATUS is not the failure"
pass "a too-small target: refused, nothing written, and the report says so ($msg)"

# ---- one destination down: the others still get the report, the install still succeeds ----
rm -f "$WORK/reports"/*
truncate -s 4G "$WORK/third.img"
closed=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
sed -e "s|$tgt|$WORK/third.img|" -e "s|127.0.0.1:$port|127.0.0.1:$closed|" "$WORK/config.json" >"$WORK/down.json"
CREDENTIALS_DIRECTORY=$WORK/creds IMPRINT_CONSOLE=$WORK/console3.log expect_exit 0 "$IMPRINT" unattended --config "$WORK/down.json"
expect_stderr "Cannot POST the report to http://127.0.0.1:$closed/report"
[ "$(find "$WORK/reports" -type f | wc -l)" = 1 ] || fail "the directory got no report when the server was down"
grep -q '^IMPRINT-REPORT-END$' "$WORK/console3.log" || fail "the console got no report when the server was down"
pass "a server that is down: logged, the directory and the console still get the report, the install succeeds"

# ---- bad "report" blocks: one sentence each, nothing written ----
bad() {
        truncate -s 4G "$WORK/bad.img"
        jq --argjson rep "$1" '.target = "'"$WORK/bad.img"'" | .report = $rep' "$WORK/config.json" >"$WORK/bad.json"
        CREDENTIALS_DIRECTORY=$WORK/creds expect_exit 2 "$IMPRINT" unattended --config "$WORK/bad.json"
        expect_stderr "$2"
        [ "$(du -k "$WORK/bad.img" | cut -f1)" = 0 ] || fail "a refused configuration wrote to the target: $1"
}
bad '{ "url": "ftp://line.example/report" }' '"report.url" must start with http:// or https://'
bad '{ "url": "https://user:secret@line.example/" }' '"report.url" must not hold a user name or password'
bad '{ "directory": "reports" }' '"report.directory" must be an absolute path'
bad '{ "console": "yes" }' '"report.console" must be true or false'
bad '{ "colour": "blue", "console": true }' 'unknown key "report.colour"'
bad '{}' '"report" names no destination'
bad '"/mnt/reports"' '"report" must be an object'
pass "bad report configurations are refused before writing"
