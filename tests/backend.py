#!/usr/bin/env python3
"""backend.py -- a small HTTP/1.1 application server for the demo and the
end-to-end tests (python3 standard library only).

Every request gets a 200 with a JSON body describing what arrived:
    {"method": "POST", "path": "/upload", "query": "i=7", "received": 40000}
A GET (or any method) with "size=N" in the query string gets N more bytes
of filler after the JSON, so response bodies of any size can be produced.
"/events" answers with a short text/event-stream (the capture recipe must
not hold such responses). Keep-alive, one thread per connection.

Usage: backend.py [--listen HOST:PORT] [--port-file FILE]
With port 0 the kernel picks a free port; --port-file receives it once the
socket is listening, which is how scripts know the server is ready.
"""
import argparse
import json
import os
import signal
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

MAX_BODY = 64 * 1024 * 1024  # refuse absurd uploads rather than buffer them
FILLER = b"0123456789abcdef" * 4096

served = 0
served_lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive unless the client closes
    server_version = "spoolcap-test-backend"
    sys_version = ""

    def setup(self):
        super().setup()
        # Headers and body go out in separate writes; without this, Nagle
        # plus the peer's delayed ACK would add 40 ms to most responses.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, fmt, *args):  # quiet: the tests count, not read
        pass

    def _read_body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            total = 0
            while True:
                line = self.rfile.readline(1024)
                size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass
                    return total
                total += size
                if total > MAX_BODY:
                    raise ValueError("body too large")
                self.rfile.read(size)
                self.rfile.readline(8)
        length = int(self.headers.get("Content-Length") or 0)
        if length < 0 or length > MAX_BODY:
            raise ValueError("bad Content-Length")
        left = length
        while left > 0:
            chunk = self.rfile.read(min(left, 65536))
            if not chunk:
                raise ValueError("client closed mid-body")
            left -= len(chunk)
        return length

    def _handle(self):
        global served
        try:
            received = self._read_body()
        except ValueError as e:
            self.send_error(400, str(e))
            return
        url = urlsplit(self.path)
        if url.path == "/events":
            body = b"data: one\n\ndata: two\n\n"
            ctype = "text/event-stream"
        else:
            info = {"method": self.command, "path": url.path,
                    "query": url.query, "received": received}
            body = json.dumps(info).encode() + b"\n"
            try:
                size = int(parse_qs(url.query).get("size", ["0"])[0])
            except ValueError:
                size = 0
            size = max(0, min(size, MAX_BODY))
            while size > 0:
                piece = FILLER[:size]
                body += piece
                size -= len(piece)
            ctype = "application/json"
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        with served_lock:
            served += 1

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = _handle


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def handle_error(self, request, client_address):
        # Proxies close idle keep-alive connections at will: not an error.
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError)):
            return
        sys.stderr.write("backend: error serving %s: %r\n" % (client_address, exc))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--listen", default="127.0.0.1:8000", help="HOST:PORT (port 0 = any free port)")
    ap.add_argument("--port-file", help="write the bound port here once listening")
    a = ap.parse_args()
    host, _, port = a.listen.rpartition(":")
    srv = Server((host.strip("[]"), int(port)), Handler)

    def stop(signum, frame):
        sys.stderr.write("backend: served %d requests\n" % served)
        sys.stderr.flush()
        os._exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if a.port_file:
        tmp = a.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % srv.server_address[1])
        os.rename(tmp, a.port_file)  # atomic: readers never see half a file
    srv.serve_forever()


if __name__ == "__main__":
    main()
