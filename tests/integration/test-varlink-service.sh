#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# imprint --varlink --listen=PATH driven as a front end drives it: a small Python client speaks the
# wire protocol (NUL-terminated JSON over AF_UNIX) on a socket in $WORK. Checked, with stat,
# sfdisk, e2fsck, mtools, cmp and grep as the referees:
#   - the socket is 0600; GetInfo names io.imprint.Installer; GetInterfaceDescription is exactly
#     data/io.imprint.Installer.varlink;
#   - ListCandidateDevices needs "more"; a loop device of ours is a candidate with its size; the
#     disk of / is refused (mounted/system_disk, with a reason) and left out with candidatesOnly;
#   - GetTPMStatus says why there is no usable TPM;
#   - Plan is the very plan `imprint plan --json` prints for the same options; bad requests get
#     InvalidRequest / InvalidParameter naming the parameter, and the root disk DeviceRefused;
#   - Install with the wrong "confirm" writes nothing; with "more" it streams planned/begin/end
#     events and ends with "finished", and the image file then holds a complete install with the
#     account; the password given is nowhere in the server's log or on the image; without "more"
#     only the final reply comes;
#   - a second Install while one runs gets Busy; a client that goes away in the middle of an
#     install does not stop it: the server keeps answering and the install completes
#     (IMPRINT_TEST_PAUSE_AT holds the first install at a known point, as in test-interrupt.sh);
#   - oversized, invalid and non-object messages get InvalidMessage and then end of stream, an
#     unknown method MethodNotFound; the server answers new connections after each;
#   - the server leaves no loop device and no mount behind.
. "$(dirname "$0")/lib.sh"
need_root
need_tool jq sfdisk losetup findmnt lsblk e2fsck debugfs mdir mtype useradd chpasswd systemd-firstboot
PY=/usr/bin/python3

SERVERS=()
CLIENTS=()
vl_cleanup() {
        local p
        for p in "${CLIENTS[@]:-}" "${SERVERS[@]:-}"; do
                [ -n "$p" ] || continue
                kill -CONT "$p" 2>/dev/null || true
                kill "$p" 2>/dev/null || true
                wait "$p" 2>/dev/null || true
        done
        cleanup
}
trap vl_cleanup EXIT

# The client: vl SOCK call METHOD [PARAMS] [--more] [--sent-file F] [--close-after-event EV --wait-file F]
#             vl SOCK raw FILE [--shut-wr]   (sends FILE's bytes as they are [and then its end])
#             vl SOCK hold   (connects and keeps the connection open)
# prints every message the server sends, one JSON object a line, as it arrives, and {"eof": true}
# when the server closes the connection ({"reset": true} for a reset). --sent-file: touched once the
# call is on the socket. --close-after-event: after the first reply with that event, waits for the
# file F, then closes the connection (a front end that goes away in the middle of a call).
cat >"$WORK/vl.py" <<'PY'
import json, os, socket, sys, time

def out(obj):
    print(json.dumps(obj, sort_keys=True), flush=True)

def messages(s, stop_after_final):
    buf = b""
    while True:
        while b"\0" in buf:
            msg, buf = buf.split(b"\0", 1)
            m = json.loads(msg)
            yield m
            if stop_after_final and not m.get("continues"):
                return
        try:
            data = s.recv(65536)
        except ConnectionResetError:
            out({"reset": True})
            return
        if not data:
            if buf:
                out({"partial": buf.decode(errors="replace")})
            out({"eof": True})
            return
        buf += data

def opt(args, name):
    return args[args.index(name) + 1] if name in args else None

path, what = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(path)
s.settimeout(None if what == "hold" else 240)
if what == "hold":
    while True:
        time.sleep(3600)
if what == "raw":
    with open(sys.argv[3], "rb") as f:
        s.sendall(f.read())
    if "--shut-wr" in sys.argv:
        s.shutdown(socket.SHUT_WR)
    for m in messages(s, False):
        out(m)
    sys.exit(0)
args = sys.argv[3:]
call = {"method": args.pop(0)}
if args and not args[0].startswith("--"):
    call["parameters"] = json.loads(args.pop(0))
if "--more" in args:
    call["more"] = True
s.sendall(json.dumps(call).encode() + b"\0")
if opt(args, "--sent-file"):
    open(opt(args, "--sent-file"), "w").close()
for m in messages(s, True):
    out(m)
    if opt(args, "--close-after-event") and m.get("parameters", {}).get("event") == opt(args, "--close-after-event"):
        while not os.path.exists(opt(args, "--wait-file")):
            time.sleep(0.05)
        s.close()
        out({"closed": True})
        break
PY
# (an array, not a function: the pid of "${VL[@]}" … & is the client's own, for kill)
VL=("$PY" "$WORK/vl.py")
# call SOCK METHOD [PARAMS] [--more]: the replies in $WORK/reply (one a line)
call() { "${VL[@]}" "$1" call "${@:2}" >"$WORK/reply" || { cat "$WORK/reply" >&2; fail "the client failed: $*"; }; }
# expect JQ-FILTER WHAT: the replies (slurped) satisfy the filter
expect() { jq -e -s "$1" "$WORK/reply" >/dev/null || { cat "$WORK/reply" >&2; fail "$2"; }; }
# expect_error NAME [PARAMETER]: the one reply is that error (naming that parameter)
expect_error() {
        expect "length == 1 and .[0].error == \"$1\"${2:+ and .[0].parameters.parameter == \"$2\"}" \
                "expected the error $1${2:+ naming $2}"
}

# start_server SOCK LOG [ENV...]: sets SERVER to its pid once the socket is there
start_server() {
        local sock=$1 log=$2 i
        shift 2
        env "$@" "$IMPRINT" --varlink --listen="$sock" 2>"$log" &
        SERVER=$!
        SERVERS+=("$SERVER")
        for i in $(seq 200); do
                [ -S "$sock" ] && return 0
                kill -0 "$SERVER" 2>/dev/null || { cat "$log" >&2; fail "imprint --varlink exited"; }
                sleep 0.05
        done
        fail "imprint --varlink does not listen on $sock"
}
alive() { kill -0 "$1" 2>/dev/null || fail "the server is gone ($2)"; }
# wait_stopped PID WHAT: until the server stops at IMPRINT_TEST_PAUSE_AT (a bound, not a verdict)
wait_stopped() {
        local i
        for i in $(seq 1200); do
                [ "$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null)" = T ] && return 0
                sleep 0.05
        done
        fail "$2: the install did not reach its pause point"
}
wait_file() {
        local i
        for i in $(seq 1200); do [ -e "$1" ] && return 0; sleep 0.05; done
        fail "$2"
}

src=$WORK/fakeos.img
FAKE_DDI_ACCOUNTS=1 bash "$(dirname "$0")/make-fake-ddi.sh" "$src" 100
password='Kestrel-harbour 9 lantern'
sock=$WORK/sock
log=$WORK/server.log
start_server "$sock" "$log"
main_server=$SERVER

# A front end that keeps its connection open: the server does not leave on its idle timeout
# (a minute) while the slower checks below run.
"${VL[@]}" "$sock" hold >/dev/null &
CLIENTS+=("$!")

# --- the service itself ------------------------------------------------------------------------------
[ "$(stat -c '%a %u %F' "$sock")" = "600 0 socket" ] || fail "the socket is $(stat -c '%a %u %F' "$sock"), not a 0600 socket of root's"
call "$sock" org.varlink.service.GetInfo
expect 'length == 1 and (.[0].parameters.interfaces | index("io.imprint.Installer") != null)' "GetInfo does not name io.imprint.Installer"
call "$sock" org.varlink.service.GetInterfaceDescription '{"interface": "io.imprint.Installer"}'
jq -j -s '.[0].parameters.description' "$WORK/reply" >"$WORK/description"
cmp "$WORK/description" "$SOURCE_ROOT/data/io.imprint.Installer.varlink" || fail "GetInterfaceDescription is not data/io.imprint.Installer.varlink"
pass "socket 0600, GetInfo names io.imprint.Installer, GetInterfaceDescription is the published file"

# --- ListCandidateDevices --------------------------------------------------------------------------------
truncate -s 8G "$WORK/disk.img"
attach "$WORK/disk.img" --no-partscan
loopdev=$ATTACHED
rootdisk=$(findmnt -nvo SOURCE /)
[ "$(lsblk -dno TYPE "$rootdisk")" = disk ] || rootdisk=/dev/$(lsblk -no PKNAME "$rootdisk" | head -n1)
[ -b "$rootdisk" ] || fail "cannot tell the disk of / (findmnt says $(findmnt -nvo SOURCE /))"

call "$sock" io.imprint.Installer.ListCandidateDevices
expect_error org.varlink.service.ExpectedMore
call "$sock" io.imprint.Installer.ListCandidateDevices '{}' --more
expect '(.[:-1] | all(.continues == true)) and (.[-1] | has("continues") | not)' "the replies do not continue up to the last one"
expect "[.[].parameters | select(.node == \"$loopdev\")] | length == 1 and (.[0] | .fit == \"enough_free_space\"
        and .sizeBytes == $(blockdev --getsize64 "$loopdev") and .sizeBytes == 8589934592 and .reason == null)" \
        "$loopdev (8 GiB, empty) is not listed as a candidate with its size"
expect "[.[].parameters | select(.node == \"$rootdisk\")] | length == 1 and (.[0] | .fit == \"refused\"
        and (.reason | type == \"string\" and length > 0)
        and (.refusals | index(\"mounted\") != null or index(\"system_disk\") != null))" \
        "$rootdisk (the disk of /) is not refused with a reason"
call "$sock" io.imprint.Installer.ListCandidateDevices '{"candidatesOnly": true}' --more
expect "([.[].parameters.node] | index(\"$rootdisk\") == null) and ([.[].parameters.node] | index(\"$loopdev\") != null)
        and all(.[].parameters; .fit == \"enough_free_space\")" "candidatesOnly lists the disk of / or leaves out $loopdev"
pass "ListCandidateDevices: needs more; $loopdev fits with its size; $rootdisk refused with a reason, left out with candidatesOnly"

# --- GetTPMStatus ------------------------------------------------------------------------------------------
call "$sock" io.imprint.Installer.GetTPMStatus
if [ -e /dev/tpmrm0 ]; then
        expect 'length == 1 and (.[0].parameters | (.usable, .present, .sha256Bank, .lockout, .transientRoom | type == "boolean")
                and (.problem | type == "string" or type == "null"))' "GetTPMStatus: malformed reply"
else
        expect 'length == 1 and (.[0].parameters | .usable == false and .present == false and (.problem | type == "string" and length > 0))' \
                "GetTPMStatus does not say that there is no usable TPM, and why"
fi
pass "GetTPMStatus"

# --- Plan ----------------------------------------------------------------------------------------------------
tgt=$WORK/target.img
truncate -s 2G "$tgt"
request() { jq -c -n --arg node "$1" --arg image "$src" --arg pw "$password" \
        '{node: $node, image: $image, seed: "varlink", userName: "alice", userPassword: $pw, hostname: "vltest"}'; }
req=$(request "$tgt")
call "$sock" io.imprint.Installer.Plan "{\"request\": $req}"
# (Python, not jq: jq 1.6 rounds integers above 2^53, such as the root's GPT flags)
"$PY" -c 'import json, sys; json.dump(json.loads(open(sys.argv[1]).readline())["parameters"]["plan"], open(sys.argv[2], "w"))' \
        "$WORK/reply" "$WORK/plan-varlink.json"
"$IMPRINT" plan --json --target "$tgt" --source "$src" --seed varlink --user alice --hostname vltest >"$WORK/plan-cli.json" 2>"$WORK/plan-cli.err" \
        || { cat "$WORK/plan-cli.err" >&2; fail "imprint plan failed"; }
"$PY" -c 'import json, sys; sys.exit(json.load(open(sys.argv[1])) != json.load(open(sys.argv[2])))' "$WORK/plan-varlink.json" "$WORK/plan-cli.json" \
        || { diff <(jq -S . "$WORK/plan-varlink.json") <(jq -S . "$WORK/plan-cli.json") >&2; fail "Plan differs from imprint plan --json"; }
jq -e '.account.userName == "alice" and .target.name == "target.img"' "$WORK/plan-varlink.json" >/dev/null || fail "the plan lacks the account or the target's name"
pass "Plan is exactly what imprint plan --json prints for the same request"

plan_with() { call "$sock" io.imprint.Installer.Plan "{\"request\": $(jq -c "$1" <<<"$req")}"; }
plan_with '.userPassword = "abc"'
expect_error io.imprint.Installer.InvalidRequest request.userPassword
grep -q '"abc"' "$WORK/reply" && fail "the refusal repeats the password"
plan_with '.homeSize = "12Q"'
expect_error io.imprint.Installer.InvalidRequest request.homeSize
plan_with 'del(.node)'
expect_error org.varlink.service.InvalidParameter request.node
plan_with '.bogus = 1'
expect_error org.varlink.service.InvalidParameter request.bogus
plan_with '.userName = 5'
expect_error org.varlink.service.InvalidParameter request.userName
call "$sock" io.imprint.Installer.Plan "{\"request\": $req, \"bogus\": true}"
expect_error org.varlink.service.InvalidParameter bogus
plan_with ".node = \"$rootdisk\" | del(.userName, .userPassword)"
expect "length == 1 and .[0].error == \"io.imprint.Installer.DeviceRefused\" and .[0].parameters.node == \"$rootdisk\"" "Plan on $rootdisk is not refused"
pass "Plan: weak password, bad size, missing node, unknown and mistyped fields, the disk of / are refused, naming the parameter"

# Paths: the service's working directory is not the caller's, and a missing image is not a
# missing disk.
plan_with '.node = "target.img"'
expect_error io.imprint.Installer.InvalidRequest request.node
plan_with '.node = ""'
expect_error io.imprint.Installer.InvalidRequest request.node
plan_with '.image = "fakeos.img"'
expect_error io.imprint.Installer.InvalidRequest request.image
plan_with ".image = \"$WORK/no-such.img\""
expect_error io.imprint.Installer.InvalidRequest request.image
grep -qF "$WORK/no-such.img" "$WORK/reply" || fail "the refusal of a missing image does not name it"
plan_with ".node = \"$WORK/no-such-disk.img\""
expect "length == 1 and .[0].error == \"io.imprint.Installer.NoSuchDevice\" and .[0].parameters.node == \"$WORK/no-such-disk.img\"" \
        "a missing target is not NoSuchDevice naming it"
pass "Plan: relative or empty paths are refused; a missing image is request.image, a missing target NoSuchDevice"

# A usr image's certificate is a request field, as --image-certificate is on the command line.
usrsrc=$WORK/usr.img
FAKE_DDI_KIND=usr bash "$(dirname "$0")/make-fake-ddi.sh" "$usrsrc" >"$WORK/make-usr.log" 2>&1 || { cat "$WORK/make-usr.log" >&2; fail "no fake usr image"; }
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$WORK/other.key" -out "$WORK/other.pem" -days 1 -subj "/CN=other" 2>/dev/null
truncate -s 4G "$WORK/usr-target.img"
plan_with "del(.userName, .userPassword) | .node = \"$WORK/usr-target.img\" | .image = \"$usrsrc\" | .imageCertificate = \"$usrsrc.cert.pem\""
expect 'length == 1 and .[0].parameters.plan.source.kind == "usr" and ([.[0].parameters.plan.partitions[] | select(.label == "_empty")] | length) == 3' \
        "Plan of a usr image with its certificate: no usr plan with three _empty B slots"
grep -q "did not check the usr partition's signature" "$WORK/reply" && fail "with imageCertificate, the plan still says the signature was not checked"
plan_with "del(.userName, .userPassword) | .node = \"$WORK/usr-target.img\" | .image = \"$usrsrc\" | .imageCertificate = \"$WORK/other.pem\""
expect 'length == 1 and .[0].error == "io.imprint.Installer.BadImage" and (.[0].parameters.message | test("does not verify against the image certificate"))' \
        "a certificate that did not sign the usr image is not BadImage"
plan_with "del(.userName, .userPassword) | .node = \"$WORK/usr-target.img\" | .image = \"$usrsrc\" | .imageCertificate = \"other.pem\""
expect_error io.imprint.Installer.InvalidRequest request.imageCertificate
plan_with "del(.userName, .userPassword) | .node = \"$WORK/usr-target.img\" | .image = \"$usrsrc\" | .imageCertificate = \"$WORK/other.key\""
expect_error io.imprint.Installer.InvalidRequest request.imageCertificate
pass "Plan of a usr image: imageCertificate checks its signature (BadImage for another key); a relative path or a key file is InvalidRequest"

call "$sock" io.imprint.Installer.ConfirmRecoveryKey '{"token": "0123456789abcdef0123456789abcdef", "typed": "123456-654321"}'
expect_error io.imprint.Installer.NoSuchRecoveryKey
pass "ConfirmRecoveryKey with a made-up token: NoSuchRecoveryKey"

# --- Install -----------------------------------------------------------------------------------------------
before=$(checksum "$tgt")
call "$sock" io.imprint.Installer.Install "{\"request\": $req, \"confirm\": \"vda\"}" --more
expect 'length == 1 and .[0].error == "io.imprint.Installer.NotConfirmed" and .[0].parameters.expected == "target.img"' \
        "Install with the wrong confirm is not NotConfirmed naming target.img"
[ "$(checksum "$tgt")" = "$before" ] || fail "Install with the wrong confirm changed the target"
call "$sock" io.imprint.Installer.Install "{\"request\": $req, \"confirm\": \"target.img\", \"recoveryKeyEscrow\": \"keys\"}" --more
expect_error io.imprint.Installer.InvalidRequest recoveryKeyEscrow
[ "$(checksum "$tgt")" = "$before" ] || fail "Install with a relative recoveryKeyEscrow changed the target"
pass "Install with the wrong confirm, or a relative recoveryKeyEscrow: refused, the target is byte for byte unchanged"
# recoveryKeyEscrowCertificate (the OEM's key, imprint(1) "Escrow to the OEM's key"): only with
# recoveryKeyEscrow, an absolute path, a certificate or public key; checked before anything is written.
call "$sock" io.imprint.Installer.Install "{\"request\": $req, \"confirm\": \"target.img\", \"recoveryKeyEscrowCertificate\": \"$WORK/other.pem\"}" --more
expect_error io.imprint.Installer.InvalidRequest recoveryKeyEscrowCertificate
call "$sock" io.imprint.Installer.Install "{\"request\": $req, \"confirm\": \"target.img\", \"recoveryKeyEscrow\": \"$WORK\", \"recoveryKeyEscrowCertificate\": \"other.pem\"}" --more
expect_error io.imprint.Installer.InvalidRequest recoveryKeyEscrowCertificate
call "$sock" io.imprint.Installer.Install "{\"request\": $req, \"confirm\": \"target.img\", \"recoveryKeyEscrow\": \"$WORK\", \"recoveryKeyEscrowCertificate\": \"$WORK/other.key\"}" --more
expect 'length == 1 and .[0].error == "io.imprint.Installer.InvalidRequest" and .[0].parameters.parameter == "recoveryKeyEscrowCertificate"
        and (.[0].parameters.message | test("is a private key"))' "a private key as recoveryKeyEscrowCertificate is not InvalidRequest saying so"
[ "$(checksum "$tgt")" = "$before" ] || fail "Install with a bad recoveryKeyEscrowCertificate changed the target"
pass "Install with recoveryKeyEscrowCertificate alone, relative, or a private key: InvalidRequest, the target is unchanged"

call "$sock" io.imprint.Installer.Install "{\"request\": $req, \"confirm\": \"target.img\"}" --more
cp "$WORK/reply" "$WORK/events"
expect '(.[:-1] | all(.continues == true)) and (.[-1] | (has("continues") | not) and .parameters.event == "finished"
        and .parameters.osName == "Imprint Fake OS 7" and .parameters.target == "'"$tgt"'")' "the stream does not end with finished"
expect '[.[:-1][].parameters] as $e | ($e | length > 0)
        and ($e | all(.event | IN("planned", "begin", "update", "end")))
        and ($e | all((.phase | type == "string" and length > 0) and (.progress | type == "number" and . >= 0 and . <= 100)
                      and .steps == $e[0].steps and .step >= 1 and .step <= .steps and (.description | length > 0)))
        and ([$e[] | select(.event == "planned") | .phase] == [$e[] | select(.event == "begin") | .phase])
        and ([$e[] | select(.event == "begin") | .phase] == [$e[] | select(.event == "end") | .phase])
        and ([$e[] | select(.event == "begin") | .step] == [range(1; $e[0].steps + 1)])
        and ($e | all(select(.event == "end") | .progress == 100))
        and ([$e[] | .phase] | index("copy-root") != null and index("configure") != null and index("boot") != null)' \
        "the events are not planned, then begin/end for each step with phase, progress 0..100 and step/steps"
alive "$main_server" "after an install"
pass "Install with more: planned, begin/update/end for every step with phase, progress and step/steps, then finished"

# The target, by stock tools.
sfdisk -J "$tgt" >"$WORK/sfdisk.json"
jq -e '.partitiontable.label == "gpt" and ([.partitiontable.partitions[].type] == ["C12A7328-F81F-11D2-BA4B-00A0C93EC93B", "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709"])
       and ([.partitiontable.partitions[] | select(.name == "imprint-incomplete")] | length == 0)' "$WORK/sfdisk.json" >/dev/null \
        || { cat "$WORK/sfdisk.json" >&2; fail "the target is not an ESP and an x86-64 root (DPS types)"; }
esp_off=$(jq '.partitiontable.partitions[0].start * 512' "$WORK/sfdisk.json")
root_off=$(jq '.partitiontable.partitions[1].start * 512' "$WORK/sfdisk.json")
root_size=$(jq '.partitiontable.partitions[1].size * 512' "$WORK/sfdisk.json")
ro=$(losetup -r -f --show -o "$root_off" --sizelimit "$root_size" "$tgt")
LOOPS+=("$ro")
e2fsck -fn "$ro" >"$WORK/e2fsck.out" 2>&1 || { cat "$WORK/e2fsck.out" >&2; fail "e2fsck finds errors on the installed root"; }
losetup -d "$ro"
fsx() { debugfs -R "$1" "$tgt?offset=$root_off" 2>/dev/null; }
fsx 'cat /etc/passwd' | grep -q '^alice:' || fail "alice is not in the installed /etc/passwd"
hash=$(fsx 'cat /etc/shadow' | awk -F: '$1 == "alice" { print $2 }')
printf '%s' "$password" | "$PY" -W ignore -c 'import crypt, sys; h = sys.argv[1]; sys.exit(0 if h.startswith("$") and crypt.crypt(sys.stdin.read(), h) == h else 1)' "$hash" \
        || fail "alice's shadow hash does not verify the password given in the request"
[ "$(fsx 'cat /etc/hostname')" = vltest ] || fail "the hostname is not vltest"
mdir -/ -b -i "$tgt@@$esp_off" ::/ >"$WORK/esp.list"
grep -qxF ::/EFI/Linux/fakeos_7.efi "$WORK/esp.list" && grep -qxF ::/EFI/BOOT/BOOTX64.EFI "$WORK/esp.list" \
        || { cat "$WORK/esp.list" >&2; fail "the UKI or the boot loader is missing on the ESP"; }
mtype -i "$tgt@@$esp_off" ::/EFI/Linux/fakeos_7.efi | cmp - <(mtype -i "$src@@1M" ::/EFI/Linux/fakeos_7.efi) \
        || fail "the UKI on the ESP differs from the image's"
pass "the target: GPT with ESP and root (DPS types), e2fsck clean, alice with the password's hash, the UKI on the ESP"

! grep -aqF -- "$password" "$tgt" || fail "the password is on the target"
! grep -aqF -- "$password" "$log" || fail "the password is in the server's log"
pass "the password is neither on the target nor in the server's log"

# Without "more": the final reply alone.
tgt2=$WORK/target2.img
truncate -s 2G "$tgt2"
call "$sock" io.imprint.Installer.Install "{\"request\": $(request "$tgt2" | jq -c 'del(.userName, .userPassword, .hostname)'), \"confirm\": \"target2.img\"}"
expect 'length == 1 and (.[0] | (has("continues") | not) and .parameters.event == "finished" and .parameters.target == "'"$tgt2"'")' \
        "Install without more does not answer with the final reply alone"
s_off=$(jq '.source.partitions[0].start' "$WORK/plan-cli.json")
s_len=$(jq '.source.partitions[0].size' "$WORK/plan-cli.json")
sfdisk -J "$tgt2" >"$WORK/sfdisk2.json"
t_off=$(jq '.partitiontable.partitions[] | select(.type == "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709") | .start * 512' "$WORK/sfdisk2.json")
same_root_files "$src" "$s_off" "$tgt2" "$t_off" || fail "the root installed without more differs from the image's root"
pass "Install without more: one final reply; the root is bit-identical to the image's"

# --- bad messages -------------------------------------------------------------------------------------------
"$PY" - "$WORK" <<'PY'
import json, sys
w = sys.argv[1]
big = json.dumps({"method": "org.varlink.service.GetInfo", "parameters": {"pad": "x" * (129 * 1024)}}).encode()
open(w + "/msg-big", "wb").write(big + b"\0")
open(w + "/msg-invalid", "wb").write(b'{"method": "org.varlink.service.GetInfo", "parameters": {\0')
open(w + "/msg-array", "wb").write(b'["org.varlink.service.GetInfo"]\0')
open(w + "/msg-unknown", "wb").write(b'{"method": "io.imprint.Installer.Frobnicate", "parameters": {}}\0'
                                     b'{"method": "org.varlink.service.GetInfo"}\0')
PY
for m in big invalid array; do
        "${VL[@]}" "$sock" raw "$WORK/msg-$m" >"$WORK/reply"
        expect 'length == 2 and .[0].error == "io.imprint.Installer.InvalidMessage" and (.[0].parameters.reason | length > 0) and .[1].eof == true' \
                "a message that is $m: not InvalidMessage, then end of stream"
        call "$sock" org.varlink.service.GetInfo
        expect 'length == 1 and (.[0].parameters.interfaces | index("io.imprint.Installer") != null)' "no answer after a message that is $m"
done
"${VL[@]}" "$sock" raw "$WORK/msg-unknown" --shut-wr >"$WORK/reply"
expect 'length == 3 and .[0].error == "org.varlink.service.MethodNotFound" and .[0].parameters.method == "io.imprint.Installer.Frobnicate"
        and (.[1].parameters.interfaces | length > 0) and .[2].eof == true' "an unknown method: not MethodNotFound, or the connection did not go on"
call "$sock" org.varlink.service.GetInfo
expect 'length == 1' "no answer after an unknown method"
alive "$main_server" "after bad messages"
pass "129 KiB, invalid JSON, a non-object: InvalidMessage then end of stream; unknown method: MethodNotFound; the server goes on"

# --- Busy and a client that goes away, with the install held at a known point ------------------------------
# A server whose installs stop (SIGSTOP, the whole process) halfway through copying the root.
psock=$WORK/psock
plog=$WORK/pserver.log
start_server "$psock" "$plog" IMPRINT_TEST_PAUSE_AT=copy-root:middle
paused_server=$SERVER
tgt3=$WORK/target3.img tgt4=$WORK/target4.img
truncate -s 2G "$tgt3" "$tgt4"
before4=$(checksum "$tgt4")
"${VL[@]}" "$psock" call io.imprint.Installer.Install "{\"request\": $(request "$tgt3"), \"confirm\": \"target3.img\"}" --more >"$WORK/first" &
first=$!
CLIENTS+=("$first")
wait_stopped "$paused_server" "Busy"
# The second call is on the socket before the server goes on: the loop reads it at once, while
# the first install has the rest of the copy, the read-back, the account and the boot loader
# ahead of it.
"${VL[@]}" "$psock" call io.imprint.Installer.Install "{\"request\": $(request "$tgt4"), \"confirm\": \"target4.img\"}" --more \
        --sent-file "$WORK/second-sent" >"$WORK/reply" &
second=$!
CLIENTS+=("$second")
wait_file "$WORK/second-sent" "the second Install was not sent"
kill -CONT "$paused_server"
wait "$second" || fail "the second client failed"
expect_error io.imprint.Installer.Busy
wait "$first" || fail "the first client failed"
jq -e -s '.[-1].parameters.event == "finished"' "$WORK/first" >/dev/null || { tail -n3 "$WORK/first" >&2; fail "the first install did not finish"; }
[ "$(checksum "$tgt4")" = "$before4" ] || fail "the Install refused as Busy wrote to its target"
pass "a second Install while one runs: Busy, its target untouched; the first one finishes"

# A front end that goes away once the install began, while the install is held in the copy.
tgt5=$WORK/target5.img
truncate -s 2G "$tgt5"
"${VL[@]}" "$psock" call io.imprint.Installer.Install "{\"request\": $(request "$tgt5"), \"confirm\": \"target5.img\"}" --more \
        --close-after-event begin --wait-file "$WORK/go-away" >"$WORK/gone" &
gone=$!
CLIENTS+=("$gone")
wait_stopped "$paused_server" "disconnect"
touch "$WORK/go-away"
wait "$gone" || fail "the client that goes away failed"
jq -e -s '.[-1].closed == true and ([.[].parameters.event] | index("begin") != null)' "$WORK/gone" >/dev/null || fail "the client did not see a begin event"
kill -CONT "$paused_server"
call "$psock" org.varlink.service.GetInfo
expect 'length == 1 and (.[0].parameters.interfaces | index("io.imprint.Installer") != null)' "no answer on a new connection after a client went away"
# Until the install ends, another Install is Busy (a wrong "confirm" writes nothing either way).
for i in $(seq 600); do
        call "$psock" io.imprint.Installer.Install "{\"request\": $(request "$tgt4"), \"confirm\": \"nothing\"}"
        jq -e -s '.[0].error == "io.imprint.Installer.Busy"' "$WORK/reply" >/dev/null || break
        sleep 0.1
done
expect_error io.imprint.Installer.NotConfirmed
alive "$paused_server" "after a client went away"
grep -qF "Imprint Fake OS 7 is installed on $tgt5." "$plog" || { cat "$plog" >&2; fail "the server does not say the install completed"; }
sfdisk -J "$tgt5" >"$WORK/sfdisk5.json"
jq -e '([.partitiontable.partitions[] | select(.name == "imprint-incomplete")] | length == 0)
       and [.partitiontable.partitions[].name] == ["ESP", "fakeos_7"]' "$WORK/sfdisk5.json" >/dev/null \
        || { cat "$WORK/sfdisk5.json" >&2; fail "the install whose client went away is not complete"; }
root5=$(jq '.partitiontable.partitions[1].start * 512' "$WORK/sfdisk5.json")
debugfs -R 'cat /etc/passwd' "$tgt5?offset=$root5" 2>/dev/null | grep -q '^alice:' || fail "the install whose client went away lacks the account"
[ "$(checksum "$tgt4")" = "$before4" ] || fail "an Install with a wrong confirm wrote to its target"
pass "a client that goes away in the middle: the server answers on, the install runs to its end (no imprint-incomplete)"

# --- the end: nothing left behind ---------------------------------------------------------------------------
kill "$main_server" "$paused_server"
wait "$main_server" "$paused_server" 2>/dev/null || true
SERVERS=()
for f in "$tgt" "$tgt2" "$tgt3" "$tgt4" "$tgt5" "$src"; do
        [ -z "$(losetup -j "$f")" ] || fail "a loop device is left on $f: $(losetup -j "$f")"
done
for d in $(grep -ho -- '--root=/run/imprint-target\.[A-Za-z0-9]*' "$log" "$plog" | sed 's/^--root=//' | sort -u); do
        ! findmnt -rno TARGET | grep -qxF "$d" || fail "$d is still mounted"
        [ ! -e "$d" ] || fail "$d is left behind"
done
! grep -qF -- "$password" "$plog" || fail "the password is in the log of the second server"
pass "the servers are gone, no loop device, mount or mount point of theirs is left"
