#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The image server of the e2e tests (tests/e2e/lib-http.sh) does what they rely on, checked with
# stock curl, openssl, gpgv and sha256sum: http_serve serves a directory with stock nginx on
# 0.0.0.0 (a whole file, and a Range request answered 206 with exactly the bytes asked for),
# http_restart_after cuts a transfer in flight and the server answers again on the same port,
# where a resumed curl (-C -) finishes the file; the access log has one line a finished request
# with the request, status, bytes sent and Range header; as root no nginx process runs as root.
# sign_sums writes a SHA256SUMS that sha256sum -c accepts, signed so that openssl dgst -verify
# (RSA, EC; pkeyutl -verify for Ed25519) and gpgv (binary and armoured keys) accept it, and a key
# from another call does not.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/../e2e/lib-http.sh"
need_tool nginx
need_tool curl
need_tool openssl
need_tool gpg
need_tool gpgv
need_tool python3
trap 'http_stop; cleanup' EXIT

srv=$WORK/srv
mkdir "$srv"
head -c $((8 * 1024 * 1024)) /dev/urandom >"$srv/img_1.raw"
zstd -q -T0 "$srv/img_1.raw" -o "$srv/img_1.raw.zst"

# ---- serving, ranges, the log ----
HTTP_RATE=2m http_serve "$srv" || fail "http_serve cannot start nginx"
[ -n "$HTTP_PORT" ] && [ -n "$HTTP_PID" ] && [ -f "$HTTP_LOG" ] || fail "http_serve does not set HTTP_PORT, HTTP_PID and HTTP_LOG"
ss -ltn "sport = :$HTTP_PORT" | grep -q "0.0.0.0:$HTTP_PORT" || fail "nginx does not listen on 0.0.0.0:$HTTP_PORT (QEMU guests reach 10.0.2.2)"
if [ "$(id -u)" = 0 ]; then
        [ -z "$(ps -o user= -g "$HTTP_PID" | grep -vx nobody)" ] || { ps -o pid,user,args -g "$HTTP_PID" >&2; fail "an nginx process runs as another user than nobody"; }
        [ "$(ps -o pid= -g "$HTTP_PID" | wc -l)" = 2 ] || fail "nginx is not one master and one worker"
fi
url=http://127.0.0.1:$HTTP_PORT
curl -sf -o "$WORK/whole.zst" "$url/img_1.raw.zst" || fail "curl cannot fetch the whole file"
cmp "$WORK/whole.zst" "$srv/img_1.raw.zst" || fail "the fetched file differs from the served one"
code=$(curl -s -o "$WORK/part" -w '%{http_code}' -H "Range: bytes=1000-1999" "$url/img_1.raw")
[ "$code" = 206 ] || fail "a Range request is answered $code, not 206"
cmp -n 1000 "$WORK/part" <(tail -c +1001 "$srv/img_1.raw") && [ "$(stat -c %s "$WORK/part")" = 1000 ] \
        || fail "the 206 answer is not bytes 1000-1999 of the file"
code=$(curl -s -o /dev/null -w '%{http_code}' "$url/nothing.raw.zst")
[ "$code" = 404 ] || fail "a missing file is answered $code, not 404"
pass "nginx on 0.0.0.0:$HTTP_PORT serves the file whole, a range as 206, a missing file as 404"

grep -qxF "GET /img_1.raw.zst HTTP/1.1 200 $(stat -c %s "$srv/img_1.raw.zst") -" "$HTTP_LOG" \
        || { cat "$HTTP_LOG" >&2; fail "the log has no line for the whole fetch with status, bytes and no range"; }
grep -qxF "GET /img_1.raw HTTP/1.1 206 1000 bytes=1000-1999" "$HTTP_LOG" \
        || { cat "$HTTP_LOG" >&2; fail "the log has no line for the range request with its Range header"; }
grep -q "^GET /nothing.raw.zst HTTP/1.1 404 [0-9]* -$" "$HTTP_LOG" || { cat "$HTTP_LOG" >&2; fail "the log has no 404 line"; }
pass "the access log says request, status, bytes sent and the Range header"

# ---- the server dies mid-stream ----
# 8 MiB at 2 MiB/s: the cut after 1.5 s comes in the middle; curl stops with a partial file.
: >"$HTTP_LOG"
old_pid=$HTTP_PID
curl -s -o "$WORK/cut" "$url/img_1.raw" &
curl_pid=$!
t0=$EPOCHREALTIME
http_restart_after 1.5 1 || fail "http_restart_after cannot start nginx again"
curl_rc=0
wait "$curl_pid" || curl_rc=$?
[ "$curl_rc" != 0 ] || fail "curl finished although the server was killed mid-stream"
got=$(stat -c %s "$WORK/cut")
[ "$got" -gt 0 ] && [ "$got" -lt $((8 * 1024 * 1024)) ] || fail "the cut transfer holds $got bytes, not part of the file"
awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { exit !(b - a >= 2.5) }' || fail "http_restart_after did not wait 1.5 s and pause 1 s"
[ "$HTTP_PID" != "$old_pid" ] && kill -0 "$HTTP_PID" || fail "HTTP_PID does not name the new server"
kill -0 "$old_pid" 2>/dev/null && fail "the old server still runs"
[ ! -s "$HTTP_LOG" ] || { cat "$HTTP_LOG" >&2; fail "the cut transfer was logged as if it had ended"; }
# The same port answers again; curl resumes with a Range from where it stopped.
curl -sf -C - -o "$WORK/cut" "$url/img_1.raw" || fail "curl cannot resume from the restarted server"
cmp "$WORK/cut" "$srv/img_1.raw" || fail "the resumed file differs from the served one"
grep -qxF "GET /img_1.raw HTTP/1.1 206 $((8 * 1024 * 1024 - got)) bytes=$got-" "$HTTP_LOG" \
        || { cat "$HTTP_LOG" >&2; fail "the log has no 206 line for the resumed rest (bytes=$got-)"; }
pass "http_restart_after cuts the transfer at $got bytes, the same port answers again, curl -C - resumes with bytes=$got-"

pid=$HTTP_PID
http_stop
curl -s -o /dev/null "$url/" && fail "the server still answers after http_stop"
# (a killed worker whose parent died too may linger as a zombie until PID 1 reaps it)
[ -z "$(ps -o stat= -g "$pid" | grep -v '^Z')" ] || { ps -o pid,stat,args -g "$pid" >&2; fail "an nginx process is left after http_stop"; }
pass "http_stop stops master and worker"

# ---- SHA256SUMS and its signature ----
sums_ok() { (cd "$srv" && sha256sum --quiet -c SHA256SUMS) || fail "sha256sum -c rejects SHA256SUMS"; }
for kind in rsa ec; do
        sign_sums "$srv" "$kind"
        sums_ok
        [ "$(cut -d' ' -f3 "$srv/SHA256SUMS" | sort | tr '\n' ' ')" = "img_1.raw img_1.raw.zst " ] || fail "SHA256SUMS does not list exactly the images"
        openssl dgst -sha256 -verify "$SIGN_PUBKEY" -signature "$srv/SHA256SUMS.sig" "$srv/SHA256SUMS" >/dev/null \
                || fail "openssl dgst -verify rejects the $kind signature"
        grep -q "BEGIN PUBLIC KEY" "$SIGN_PUBKEY" || fail "the $kind public key is not PEM"
        old=$SIGN_PUBKEY
        sign_sums "$srv" "$kind"
        openssl dgst -sha256 -verify "$old" -signature "$srv/SHA256SUMS.sig" "$srv/SHA256SUMS" >/dev/null 2>&1 \
                && fail "a $kind key of an earlier call verifies the new signature"
done
sign_sums "$srv" ed25519
openssl pkeyutl -verify -rawin -pubin -inkey "$SIGN_PUBKEY" -sigfile "$srv/SHA256SUMS.sig" -in "$srv/SHA256SUMS" >/dev/null \
        || fail "openssl pkeyutl -verify rejects the Ed25519 signature"
pass "sign_sums rsa/ec/ed25519: SHA256SUMS lists the images, openssl verifies SHA256SUMS.sig, another key does not"
for kind in gpg gpg-armor; do
        rm -f "$srv/SHA256SUMS.sig"
        sign_sums "$srv" "$kind"
        sums_ok
        [ ! -e "$srv/SHA256SUMS.sig" ] || fail "a gpg signing left a SHA256SUMS.sig"
        ring=$SIGN_PUBKEY
        if [ "$kind" = gpg-armor ]; then
                grep -q "BEGIN PGP PUBLIC KEY BLOCK" "$SIGN_PUBKEY" || fail "the armoured key is not armoured"
                ring=$WORK/dearmoured.gpg
                gpg --batch --yes --dearmor -o "$ring" "$SIGN_PUBKEY"
        fi
        gpgv --keyring "$ring" "$srv/SHA256SUMS.gpg" "$srv/SHA256SUMS" 2>/dev/null || fail "gpgv rejects the $kind signature"
        old=$ring
        sign_sums "$srv" gpg
        gpgv --keyring "$old" "$srv/SHA256SUMS.gpg" "$srv/SHA256SUMS" 2>/dev/null && fail "a gpg key of an earlier call verifies the new signature"
done
find "$srv" -name '*key*' -o -name '*.pem' -o -name '*.asc' | grep -q . && fail "a key was left in the served directory"
pass "sign_sums gpg/gpg-armor: gpgv accepts SHA256SUMS.gpg with the exported key, another key does not; no key is served"
