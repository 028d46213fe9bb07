#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""A small HTTP/1.1 file server for the tests of image downloads (src/engine/source.c).

    http-server.py PORTFILE DIR [--log FILE] [--drop-after BYTES] [--drop-times N] [--no-range]
                   [--status-for NAME=CODE] [--redirect NAME=TARGET] [--stall-after BYTES]
                   [--wrong-total]

Listens on 127.0.0.1, port 0, and writes the port it got into PORTFILE (atomically, once it
listens). Serves the files of DIR with Range support (206 and Content-Range; one range per
request). Every request is logged as one line "METHOD PATH RANGE STATUS BYTES_SENT" (RANGE is
"-" without a Range header) to --log FILE, else stderr.

--drop-after BYTES  closes the connection after that many body bytes of a response, the first
                    --drop-times N responses (default 1) that are longer; then serves normally.
--stall-after BYTES stops sending (keeping the connection open) after that many body bytes, for
                    the first --drop-times responses, until the client goes away.
--no-range          ignores Range headers: always 200 and the whole file.
--wrong-total       says in every Content-Range that the file is one byte longer than it is (as if
                    it had changed on the server between two requests).
--status-for        answers NAME (a path without the leading slash) with that HTTP status.
--redirect          answers NAME with a 302 to TARGET (a path on this server or a URL).
"""

import argparse
import http.server
import os
import re
import socket
import sys
import threading
import time

args = None
lock = threading.Lock()
drops_left = 0


def log(line):
    with lock:
        if args.log:
            with open(args.log, "a") as f:
                f.write(line + "\n")
        else:
            print(line, file=sys.stderr, flush=True)


def take_drop():
    global drops_left
    with lock:
        if drops_left > 0:
            drops_left -= 1
            return True
        return False


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *a):
        pass

    def finish_request(self, status, sent):
        log("%s %s %s %d %d" % (self.command, self.path, self.headers.get("Range") or "-", status, sent))

    def plain(self, status, body=b"", headers=()):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self.finish_request(status, len(body) if self.command != "HEAD" else 0)

    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        name = self.path.split("?", 1)[0].lstrip("/")
        if name in args.status_for:
            code = args.status_for[name]
            return self.plain(code, b"status %d\n" % code)
        if name in args.redirect:
            return self.plain(302, headers=[("Location", args.redirect[name])])
        path = os.path.join(args.dir, name)
        if not name or "/" in name or not os.path.isfile(path):
            return self.plain(404, b"not found\n")
        size = os.path.getsize(path)
        start, end = 0, size - 1
        status = 200
        rng = self.headers.get("Range")
        if rng and not args.no_range:
            m = re.fullmatch(r"bytes=(\d*)-(\d*)", rng.strip())
            if not m or (m.group(1) == "" and m.group(2) == ""):
                return self.plain(416, headers=[("Content-Range", "bytes */%d" % size)])
            if m.group(1) == "":
                start, end = max(0, size - int(m.group(2))), size - 1
            else:
                start = int(m.group(1))
                if m.group(2) != "":
                    end = min(int(m.group(2)), size - 1)
            if start >= size or start > end:
                return self.plain(416, headers=[("Content-Range", "bytes */%d" % size)])
            status = 206
        length = end - start + 1 if size > 0 else 0
        self.send_response(status)
        self.send_header("Content-Length", str(length))
        self.send_header("Content-Type", "application/octet-stream")
        if status == 206:
            self.send_header("Content-Range", "bytes %d-%d/%d" % (start, end, size + 1 if args.wrong_total else size))
        else:
            self.send_header("Accept-Ranges", "none" if args.no_range else "bytes")
        self.end_headers()
        if self.command == "HEAD":
            return self.finish_request(status, 0)

        limit = None
        mode = None
        if args.drop_after is not None and length > args.drop_after and take_drop():
            limit, mode = args.drop_after, "drop"
        elif args.stall_after is not None and length > args.stall_after and take_drop():
            limit, mode = args.stall_after, "stall"
        sent = 0
        with open(path, "rb") as f:
            f.seek(start)
            while sent < length:
                n = min(65536, length - sent)
                if limit is not None:
                    n = min(n, limit - sent)
                if n == 0:
                    break
                chunk = f.read(n)
                try:
                    self.wfile.write(chunk)
                except (BrokenPipeError, ConnectionResetError):
                    return self.finish_request(status, sent)
                sent += len(chunk)
        self.wfile.flush()
        self.finish_request(status, sent)
        if mode == "drop":
            # A clean close in the middle of the body: everything sent arrives, then EOF.
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
        elif mode == "stall":
            # Nothing more, until the client gives up.
            self.connection.settimeout(120)
            try:
                while self.connection.recv(4096):
                    pass
            except OSError:
                pass
            self.close_connection = True


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request, client_address):
        # A client that hangs up (after a drop, say) is no error of the server.
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


def pair(s, conv):
    name, _, value = s.partition("=")
    if not name or not value:
        raise argparse.ArgumentTypeError("expected NAME=VALUE: %r" % s)
    return name.lstrip("/"), conv(value)


def main():
    global args, drops_left
    p = argparse.ArgumentParser()
    p.add_argument("portfile")
    p.add_argument("dir")
    p.add_argument("--log")
    p.add_argument("--drop-after", type=int)
    p.add_argument("--stall-after", type=int)
    p.add_argument("--drop-times", type=int, default=1)
    p.add_argument("--no-range", action="store_true")
    p.add_argument("--wrong-total", action="store_true")
    p.add_argument("--status-for", action="append", default=[], type=lambda s: pair(s, int))
    p.add_argument("--redirect", action="append", default=[], type=lambda s: pair(s, str))
    args = p.parse_args()
    args.status_for = dict(args.status_for)
    args.redirect = dict(args.redirect)
    drops_left = args.drop_times

    server = Server(("127.0.0.1", 0), Handler)
    tmp = args.portfile + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % server.server_address[1])
    os.rename(tmp, args.portfile)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
