# SPDX-License-Identifier: LGPL-2.1-or-later
# shellcheck shell=bash
# shellcheck disable=SC2034 # HTTP_* and SIGN_PUBKEY are set for the caller
# A line's image server for tests: stock nginx serving a directory, as a line would (imprint(1),
# "Serving images"), and the SHA256SUMS a line publishes beside its images, signed as a line signs
# it. Sourced; needs nginx, python3 (a free port), curl, openssl, gpg. Temporary files go under
# $WORK when the caller has one (its cleanup removes them), else under ${TMPDIR:-/var/tmp}.
#
#   http_serve DIR [PORT]
#       Starts nginx (daemon off, worker_processes 1, sendfile, ranges as nginx always does) on
#       0.0.0.0:PORT (a free port when not given), so that QEMU guests with user networking reach
#       it at http://10.0.2.2:PORT/. Sets HTTP_PORT, HTTP_PID (nginx's master, also the leader of
#       its process group) and HTTP_LOG: the access log, one line a request:
#           $request $status $body_bytes_sent $http_range
#       e.g. "GET /img.raw.zst HTTP/1.1 206 524288 bytes=1048576-" ("-" when there was no Range).
#       A request appears there when it ends; one cut off by http_restart_after never does.
#       HTTP_RATE (e.g. "4m") limits each response to that many bytes a second (nginx limit_rate),
#       so that a small image is still in flight when the test cuts the connection.
#       As root nginx runs as nobody (no process of it is root): DIR's files are made
#       world-readable and the directories above it that nobody cannot enter get o+x, but only
#       inside a temporary directory (under $WORK, $TMPDIR, /tmp or /var/tmp); elsewhere it
#       refuses.
#   http_stop
#       Stops it (kill -9 of its process group, so no worker is left serving) and waits.
#   http_restart_after SECONDS [PAUSE]
#       Waits SECONDS, kills nginx and its worker with SIGKILL (every open transfer is cut off
#       without a goodbye, as when a server dies mid-stream), waits PAUSE seconds (default 2: the
#       client's retry meets a refused connection first) and starts it again on the same port with
#       the same log (appended). Updates HTTP_PID; run it in the foreground while the client runs
#       in the background (or the reverse, then call http_stop from the same shell: it reads the
#       PID from nginx's pid file, not from HTTP_PID).
#   sign_sums DIR KIND
#       Writes DIR/SHA256SUMS (sha256sum of every regular file in DIR but SHA256SUMS*), then signs
#       it with a new key made for the call:
#           rsa, ec, ed25519   openssl dgst -sha256 -sign → DIR/SHA256SUMS.sig; the public key
#                              (PEM) in SIGN_PUBKEY
#           gpg, gpg-armor     gpg --detach-sign (a temporary GNUPGHOME) → DIR/SHA256SUMS.gpg;
#                              the public key, exported binary (a keyring for gpgv) or
#                              ASCII-armoured, in SIGN_PUBKEY
#       Keys live outside DIR (nothing secret is served). Each call makes a new key, so a public
#       key kept from an earlier call is "another key" for a bad-signature test.

# The directory for this library's files.
http_tmpdir() {
        local base=${WORK:-${TMPDIR:-/var/tmp}}
        mktemp -d "$base/http.XXXXXX"
}

http_free_port() {
        python3 -c 'import socket; s = socket.socket(); s.bind(("0.0.0.0", 0)); print(s.getsockname()[1])'
}

# As root, nginx's workers would switch to nobody anyway; the whole server runs as nobody.
http_as_nobody() { [ "$(id -u)" = 0 ]; }

# http_allow_nobody DIR: nobody must read DIR's files and enter every directory above it.
http_allow_nobody() {
        local dir d ok t
        dir=$(realpath "$1")
        chmod -R o+rX "$dir"
        d=$dir
        while [ "$d" != / ]; do
                d=$(dirname "$d")
                if ! setpriv --reuid=nobody --regid=nogroup --clear-groups test -x "$d"; then
                        ok=
                        for t in ${WORK:+"$(realpath "$WORK")"} ${TMPDIR:+"$(realpath "$TMPDIR")"} /tmp /var/tmp; do
                                case $d/ in "$t"/?*) ok=1 ;; esac
                        done
                        if [ -z "$ok" ]; then
                                echo "http_serve: nobody cannot enter $d (nginx runs as nobody); serve a directory under a temporary one" >&2
                                return 1
                        fi
                        chmod o+x "$d"
                fi
        done
}

http_start() {
        local i
        : >"$HTTP_DIR/error.log"
        if http_as_nobody; then
                chown nobody:nogroup "$HTTP_DIR/error.log"
                # setsid: nginx leads its own process group, which http_stop kills whole.
                setsid setpriv --reuid=nobody --regid=nogroup --clear-groups --inh-caps=-all \
                        nginx -p "$HTTP_DIR" -c "$HTTP_DIR/nginx.conf" -e "$HTTP_DIR/error.log" </dev/null &
        else
                setsid nginx -p "$HTTP_DIR" -c "$HTTP_DIR/nginx.conf" -e "$HTTP_DIR/error.log" </dev/null &
        fi
        HTTP_PID=$!
        for i in $(seq 100); do
                if curl -s -o /dev/null "http://127.0.0.1:$HTTP_PORT/.http-ready"; then
                        return 0
                fi
                if ! kill -0 "$HTTP_PID" 2>/dev/null; then
                        break
                fi
                sleep 0.05
        done
        echo "http_serve: nginx does not answer on port $HTTP_PORT:" >&2
        cat "$HTTP_DIR/error.log" >&2
        kill -9 -- "-$HTTP_PID" 2>/dev/null || true
        wait "$HTTP_PID" 2>/dev/null || true
        return 1
}

http_serve() {
        local root
        root=$(realpath "$1")
        [ -d "$root" ] || { echo "http_serve: $1 is not a directory" >&2; return 1; }
        HTTP_DIR=$(http_tmpdir)
        mkdir "$HTTP_DIR/tmp"
        HTTP_LOG=$HTTP_DIR/access.log
        : >"$HTTP_LOG"
        if http_as_nobody; then
                http_allow_nobody "$root" || return 1
                http_allow_nobody "$HTTP_DIR" || return 1
                chown -R nobody:nogroup "$HTTP_DIR"
        fi
        for _ in 1 2 3 4 5; do
                HTTP_PORT=${2:-$(http_free_port)}
                cat >"$HTTP_DIR/nginx.conf" <<EOF
daemon off;
worker_processes 1;
pid $HTTP_DIR/nginx.pid;
error_log $HTTP_DIR/error.log;
events { worker_connections 64; }
http {
        types { application/octet-stream raw zst xz; text/plain SHA256SUMS; }
        default_type application/octet-stream;
        log_format imprint '\$request \$status \$body_bytes_sent \$http_range';
        access_log $HTTP_LOG imprint;
        client_body_temp_path $HTTP_DIR/tmp/body;
        proxy_temp_path $HTTP_DIR/tmp/proxy;
        fastcgi_temp_path $HTTP_DIR/tmp/fastcgi;
        uwsgi_temp_path $HTTP_DIR/tmp/uwsgi;
        scgi_temp_path $HTTP_DIR/tmp/scgi;
        sendfile on;
        tcp_nopush on;
        gzip off;
        ${HTTP_RATE:+limit_rate $HTTP_RATE;}
        server {
                listen 0.0.0.0:$HTTP_PORT;
                root $root;
                autoindex on;
                # http_start's "are you up" probe, kept out of the log the tests read
                location = /.http-ready { access_log off; return 204; }
        }
}
EOF
                if http_as_nobody; then
                        chown nobody:nogroup "$HTTP_DIR/nginx.conf"
                fi
                if http_start; then
                        return 0
                fi
                # Another process took the free port between the look-up and nginx's bind.
                [ -z "${2:-}" ] && grep -q "Address already in use" "$HTTP_DIR/error.log" || return 1
        done
        return 1
}

# The master's PID from nginx's pid file (valid in any shell), else HTTP_PID.
http_pid() {
        local pid=
        [ -s "$HTTP_DIR/nginx.pid" ] && pid=$(cat "$HTTP_DIR/nginx.pid")
        echo "${pid:-${HTTP_PID:-}}"
}

http_kill() {
        local pid
        pid=$(http_pid)
        [ -n "$pid" ] || return 0
        kill -9 -- "-$pid" 2>/dev/null || kill -9 "$pid" 2>/dev/null || true
        # Not a child of every shell that calls this: wait for it to be gone, not with wait alone.
        wait "$pid" 2>/dev/null || true
        for _ in $(seq 100); do
                kill -0 "$pid" 2>/dev/null || break
                sleep 0.05
        done
        rm -f "$HTTP_DIR/nginx.pid"
}

http_stop() {
        [ -n "${HTTP_DIR:-}" ] || return 0
        http_kill
        HTTP_PID=
}

http_restart_after() {
        sleep "$1"
        http_kill
        sleep "${2:-2}"
        http_start
}

sign_sums() {
        local dir=$1 kind=$2 keys f
        keys=$(http_tmpdir)
        (
                cd "$dir" || exit
                rm -f SHA256SUMS SHA256SUMS.sig SHA256SUMS.gpg
                for f in *; do
                        [ -f "$f" ] || continue
                        case $f in SHA256SUMS*) continue ;; esac
                        sha256sum -- "$f"
                done >SHA256SUMS.new
                mv SHA256SUMS.new SHA256SUMS
        )
        case $kind in
        rsa | ec | ed25519)
                case $kind in
                rsa) openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$keys/key.pem" 2>/dev/null ;;
                ec) openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$keys/key.pem" ;;
                ed25519) openssl genpkey -algorithm ED25519 -out "$keys/key.pem" ;;
                esac
                openssl pkey -in "$keys/key.pem" -pubout -out "$keys/pub.pem"
                if [ "$kind" = ed25519 ]; then
                        # Ed25519 signs the message itself (no separate digest): openssl pkeyutl.
                        openssl pkeyutl -sign -rawin -inkey "$keys/key.pem" -in "$dir/SHA256SUMS" -out "$dir/SHA256SUMS.sig"
                else
                        openssl dgst -sha256 -sign "$keys/key.pem" -out "$dir/SHA256SUMS.sig" "$dir/SHA256SUMS"
                fi
                SIGN_PUBKEY=$keys/pub.pem
                ;;
        gpg | gpg-armor)
                mkdir -m 0700 "$keys/gnupg"
                GNUPGHOME=$keys/gnupg gpg --batch --quiet --pinentry-mode loopback --passphrase '' \
                        --quick-generate-key "imprint test line <line@imprint.invalid>" ed25519 sign never 2>/dev/null
                GNUPGHOME=$keys/gnupg gpg --batch --quiet --detach-sign -o "$dir/SHA256SUMS.gpg" "$dir/SHA256SUMS"
                if [ "$kind" = gpg ]; then
                        GNUPGHOME=$keys/gnupg gpg --batch --export -o "$keys/pub.gpg"
                        SIGN_PUBKEY=$keys/pub.gpg
                else
                        GNUPGHOME=$keys/gnupg gpg --batch --export --armor -o "$keys/pub.asc"
                        SIGN_PUBKEY=$keys/pub.asc
                fi
                GNUPGHOME=$keys/gnupg gpgconf --kill all 2>/dev/null || true
                ;;
        *)
                echo "sign_sums: unknown key kind $kind (rsa, ec, ed25519, gpg, gpg-armor)" >&2
                return 1
                ;;
        esac
}
