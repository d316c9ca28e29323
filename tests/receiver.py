#!/usr/bin/env python3
"""receiver.py -- a loopback HTTP event processor for the delivery tests
(python3 standard library only). It checks every batch against design.md's
delivery contract, records what it accepted, and fails on command.

Usage:
    receiver.py [--listen HOST:PORT] [--port-file F] [--record FILE]
                [--control-listen HOST:PORT] [--control-port-file F]
                [--control-file C | --script S] [--verbose]
With port 0 the kernel picks a free port; the port files are written
(atomically) once the sockets listen, which is how scripts know it is ready.
SIGTERM or SIGINT: flush the record, print the counters to stderr, exit 0.

A batch (any path except /_control and /_stats, any method) must be:
  Content-Type: application/x-ndjson                      else 415
  Content-Encoding: absent, identity or gzip              else 415 (zstd
      included: python's standard library has no zstd decoder)
  body at most 64 MiB (after gzip too), Content-Length or chunked  else 413
  one JSON object per line, each with a string "id" of the form
  "<uuid>-<seq>" (seq decimal), all with the same uuid     else 400
  Idempotency-Key: "<uuid>-<first seq>-<last seq>" of the batch     else 400
A valid batch gets 200 and a JSON body {"accepted": N, "duplicates": D}.
Errors get a one-line text/plain body saying what was wrong.

Record file (--record): one line per event of every batch that passed
validation, appended and flushed once per batch (no fsync):
    <status> <id> <idempotency-key> <new|dup>
status is what the receiver answered for the whole batch (2xx: delivered;
400/413 from reject-ids: not delivered). new/dup says whether the id had
already been delivered (2xx) before; only 2xx lines set it for later ones.
Batches refused before validation (by a failure mode, or malformed) are not
recorded; /_stats counts them. Delivered ids: awk '$1 ~ /^2/ {print $2}'.

Control: one command per line, the same grammar everywhere:
    ok                        answer batches normally (200)
    refuse                    close the listening socket (connections are
                              refused; open keep-alive connections get an
                              RST on their next request); reopened on the
                              same port by any other mode
    status N [for K]          answer N (e.g. 503, 401) to every batch
    retry-after N [for K]     answer 429 with "Retry-After: N"
    reset [for K]             read part of the body, then close with an RST
                              (SO_LINGER 0)
    stall S [for K]           read nothing, send nothing for S seconds, close
    slow-body [S] [for K]     read the batch, send 200's headers, then
                              nothing for S seconds (default 3600), close;
                              the batch is not counted as delivered
    reject-ids ID... with N   answer N (400 or 413, any 4xx/5xx allowed) to
                              a batch holding one of the ids: the whole batch
                              is refused. Independent of the mode above;
                              "reject-ids" alone clears it
    clear                     ok, and clear reject-ids
"for K": that many batches, then back to ok. A mode applies to batches
only, never to /_control or /_stats. Three ways to send commands:
  - HTTP (the robust one for shell tests): POST /_control with the commands
    as a text body (or JSON {"cmd": "..."}); 200 "ok" once applied, 400 with
    the reason otherwise. It is served on the data port and on a separate
    control port (--control-listen, default 127.0.0.1:0, port written to
    --control-port-file) that stays open while the data port refuses.
  - --control-file C: the file's commands are applied, in order, whenever its
    content changes (checked on each request and every 0.1 s). Replace it
    with mv, never rewrite it in place: a half-written file is a command too.
  - --script S: lines "SECONDS COMMAND", each applied that many seconds
    after start (an outage scenario that runs by itself); # comments.
GET /_stats (either port): JSON counters {"requests", "by_status",
"batches_accepted", "events_accepted", "distinct_ids", "duplicates",
"mode", "reject_ids"}.
"""
import argparse
import json
import os
import re
import signal
import socket
import struct
import sys
import threading
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MAX_BODY = 64 * 1024 * 1024  # bounded request size: beyond it, 413
ID_RE = re.compile(r"^(.+)-([0-9]+)$")


class Reject(Exception):
    """A batch that fails validation: status and the reason sent back."""

    def __init__(self, status, reason, close=False):
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.close = close


class State:
    """Everything shared by the handler threads, under one lock."""

    def __init__(self, record_path, verbose):
        self.lock = threading.Lock()
        self.mode = ("ok",)
        self.left = None  # batches left in the mode ("for K"), None = until changed
        self.reject_ids = set()
        self.reject_status = 400
        self.requests = 0
        self.by_status = {}
        self.batches_accepted = 0
        self.events_accepted = 0
        self.seen = set()
        self.duplicates = 0
        self.verbose = verbose
        self.record = open(record_path, "a", encoding="utf-8") if record_path else None
        self.data = None  # the DataListener, for refuse/reopen

    # ---- commands ----
    def parse(self, line):
        """One command line -> a closure applying it (raises ValueError)."""
        w = line.split()
        if not w:
            return None
        cmd, args = w[0], w[1:]
        left = None
        if cmd != "reject-ids" and len(args) >= 2 and args[-2] == "for":
            left = posint(args[-1], "for K")
            args = args[:-2]
        if cmd in ("ok", "refuse", "reset", "clear") and not args:
            mode = (cmd if cmd != "clear" else "ok",)
        elif cmd == "status" and len(args) == 1:
            mode = ("status", status_code(args[0]))
        elif cmd == "retry-after" and len(args) == 1:
            mode = ("retry-after", posint(args[0], "retry-after N", zero=True))
        elif cmd == "stall" and len(args) == 1:
            mode = ("stall", seconds(args[0]))
        elif cmd == "slow-body" and len(args) <= 1:
            mode = ("slow-body", seconds(args[0]) if args else 3600.0)
        elif cmd == "reject-ids":
            if not args:
                return lambda: self._set_reject(set(), 400)
            if len(args) < 3 or args[-2] != "with":
                raise ValueError("usage: reject-ids ID... with STATUS")
            ids, st = set(args[:-2]), status_code(args[-1])
            return lambda: self._set_reject(ids, st)
        else:
            raise ValueError("unknown or malformed command %r (see the top of receiver.py)" % line)
        if left is not None and cmd in ("ok", "refuse", "clear"):
            raise ValueError("%s takes no 'for K'" % cmd)

        def apply():
            if cmd == "clear":
                self._set_reject(set(), 400)
            self._set_mode(mode, left)
        return apply

    def command(self, text):
        """Apply every line of text, all or nothing (raises ValueError)."""
        acts = [a for a in (self.parse(l) for l in text.splitlines()) if a]
        for a in acts:
            a()

    def _set_reject(self, ids, st):
        with self.lock:
            self.reject_ids, self.reject_status = ids, st

    def _set_mode(self, mode, left):
        with self.lock:
            self.mode, self.left = mode, left
        self.data.want(mode[0] != "refuse")

    def take_mode(self):
        """The mode for the batch arriving now (counts down "for K")."""
        with self.lock:
            mode = self.mode
            if self.left is not None:
                self.left -= 1
                if self.left <= 0:
                    self.mode, self.left = ("ok",), None
            return mode

    # ---- counters and record ----
    def count(self, status):
        with self.lock:
            self.requests += 1
            self.by_status[str(status)] = self.by_status.get(str(status), 0) + 1

    def rejected_ids(self, ids):
        with self.lock:
            if self.reject_ids and not self.reject_ids.isdisjoint(ids):
                return self.reject_status
        return None

    def deliver(self, status, ids, key):
        """Record a validated batch; returns the number of duplicates."""
        ok = 200 <= status < 300
        dups = 0
        lines = []
        with self.lock:
            for i in ids:
                dup = i in self.seen
                if ok:
                    dups += dup
                    self.seen.add(i)
                lines.append("%d %s %s %s\n" % (status, i, key, "dup" if dup else "new"))
            if ok:
                self.batches_accepted += 1
                self.events_accepted += len(ids)
                self.duplicates += dups
            if self.record:
                self.record.write("".join(lines))
                self.record.flush()
        return dups

    def stats(self):
        with self.lock:
            return {"requests": self.requests, "by_status": dict(self.by_status),
                    "batches_accepted": self.batches_accepted,
                    "events_accepted": self.events_accepted,
                    "distinct_ids": len(self.seen), "duplicates": self.duplicates,
                    "mode": " ".join(str(m) for m in self.mode),
                    "reject_ids": sorted(self.reject_ids)}


def posint(s, what, zero=False):
    try:
        n = int(s)
    except ValueError:
        n = -1
    if n < 0 or (n == 0 and not zero):
        raise ValueError("%s: %r is not a %s integer" % (what, s, "non-negative" if zero else "positive"))
    return n


def status_code(s):
    n = posint(s, "status")
    if not 100 <= n <= 599:
        raise ValueError("status %r is not an HTTP status (100-599)" % s)
    return n


def seconds(s):
    try:
        v = float(s)
    except ValueError:
        v = -1.0
    if not 0 <= v <= 86400:
        raise ValueError("%r is not a number of seconds (0-86400)" % s)
    return v


STATE = None  # set in main()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive unless the client closes
    server_version = "spoolcap-test-receiver"
    sys_version = ""
    control_only = False  # True on the control port

    def setup(self):
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def handle_expect_100(self):
        # Refuse an oversized upload before the client sends it.
        try:
            too_big = int(self.headers.get("Content-Length") or 0) > MAX_BODY
        except ValueError:
            too_big = False
        if too_big and not self.control_only:
            STATE.count(413)
            self._log(413, "Expect: 100-continue refused, body too large")
            self._respond(413, "body larger than %d bytes\n" % MAX_BODY, close=True)
            return False
        return super().handle_expect_100()

    def log_message(self, fmt, *args):
        pass  # one line per request is written by _log when --verbose

    def _log(self, status, what):
        if STATE.verbose:
            sys.stderr.write("receiver: %s:%d %s %s %s %s\n" % (
                self.client_address[0], self.client_address[1], self.command,
                self.path, status, what))
            sys.stderr.flush()

    def _respond(self, status, body, ctype="text/plain", extra=(), close=False):
        if isinstance(body, str):
            body = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in extra:
            self.send_header(k, v)
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _rst(self):
        """Close the connection with an RST instead of a FIN."""
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       struct.pack("ii", 1, 0))
        except OSError:
            pass
        self.close_connection = True
        # Close the descriptor itself: rfile/wfile hold references that
        # would otherwise delay the close (and the RST) to the end of handle().
        os.close(self.connection.detach())

    # ---- body ----
    def _read_body(self, limit=MAX_BODY):
        """The request body (Content-Length or chunked), at most limit bytes."""
        te = self.headers.get("Transfer-Encoding", "").lower()
        if te:
            if te.strip() != "chunked":
                raise Reject(501, "Transfer-Encoding %r not supported" % te, close=True)
            parts, total = [], 0
            while True:
                line = self.rfile.readline(1026)
                if not line.endswith(b"\n"):
                    raise Reject(400, "bad chunk size line", close=True)
                try:
                    size = int(line.split(b";", 1)[0].strip(), 16)
                except ValueError:
                    raise Reject(400, "bad chunk size line", close=True)
                if size == 0:
                    while True:  # trailers
                        t = self.rfile.readline(8192)
                        if t in (b"\r\n", b"\n"):
                            return b"".join(parts)
                        if not t.endswith(b"\n"):
                            raise Reject(400, "bad chunked trailer", close=True)
                total += size
                if total > limit:
                    raise Reject(413, "body larger than %d bytes" % limit, close=True)
                data = self.rfile.read(size)
                if len(data) != size:
                    raise Reject(400, "client closed mid-body", close=True)
                parts.append(data)
                if self.rfile.readline(3) not in (b"\r\n", b"\n"):
                    raise Reject(400, "chunk not followed by CRLF", close=True)
        cl = self.headers.get("Content-Length")
        if cl is None:
            return b""
        try:
            length = int(cl)
        except ValueError:
            length = -1
        if length < 0:
            raise Reject(400, "bad Content-Length %r" % cl, close=True)
        if length > limit:
            raise Reject(413, "body larger than %d bytes" % limit, close=True)
        data = self.rfile.read(length)
        if len(data) != length:
            raise Reject(400, "client closed mid-body", close=True)
        return data

    # ---- control and stats ----
    def _control(self):
        try:
            text = self._read_body(1 << 20).decode("utf-8", "replace")
            if text.lstrip().startswith("{"):
                text = str(json.loads(text).get("cmd", ""))
            STATE.command(text)
        except Reject as r:
            return self._respond(r.status, r.reason + "\n", close=r.close)
        except (ValueError, AttributeError) as e:
            self._log(400, "control %r: %s" % (text, e))
            return self._respond(400, "control: %s\n" % e)
        self._log(200, "control %r" % text.strip())
        self._respond(200, "ok\n")

    def _stats(self):
        self._respond(200, json.dumps(STATE.stats()) + "\n", "application/json")
        self._log(200, "stats")

    # ---- batches ----
    def _batch(self):
        check_control_file()
        mode = STATE.take_mode()
        m = mode[0]
        if m == "refuse":  # a keep-alive connection opened before refuse
            STATE.count("rst")
            self._log("rst", "refusing")
            return self._rst()
        if m == "reset":
            # Read part of the body so the client is mid-upload, then RST.
            want = int(self.headers.get("Content-Length") or 0) // 2
            if want > 0:
                self.rfile.read(min(want, 65536))
            STATE.count("rst")
            self._log("rst", "reset")
            return self._rst()
        if m == "stall":
            STATE.count("stall")
            self._log("stall", "%g s" % mode[1])
            time.sleep(mode[1])
            self.close_connection = True
            return
        try:
            body = self._read_body()
        except Reject as r:
            STATE.count(r.status)
            self._log(r.status, r.reason)
            return self._respond(r.status, r.reason + "\n", close=r.close)
        if m == "status":
            STATE.count(mode[1])
            self._log(mode[1], "scripted")
            return self._respond(mode[1], "scripted failure: status %d\n" % mode[1])
        if m == "retry-after":
            STATE.count(429)
            self._log(429, "retry-after %d" % mode[1])
            return self._respond(429, "scripted failure: retry after %d s\n" % mode[1],
                                 extra=[("Retry-After", str(mode[1]))])
        try:
            ids, key = self._validate(body)
        except Reject as r:
            STATE.count(r.status)
            self._log(r.status, r.reason)
            return self._respond(r.status, r.reason + "\n", close=r.close)
        rej = STATE.rejected_ids(ids)
        if rej is not None:
            STATE.deliver(rej, ids, key)
            STATE.count(rej)
            self._log(rej, "rejected ids, key %s" % key)
            bad = sorted(STATE.reject_ids.intersection(ids))
            return self._respond(rej, "rejected event ids: %s\n" % " ".join(bad))
        if m == "slow-body":
            STATE.count("slow-body")
            self._log("slow-body", "%g s, key %s" % (mode[1], key))
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.wfile.flush()
            time.sleep(mode[1])
            self.close_connection = True
            return
        dups = STATE.deliver(200, ids, key)
        STATE.count(200)
        self._log(200, "events=%d dup=%d key=%s" % (len(ids), dups, key))
        self._respond(200, json.dumps({"accepted": len(ids), "duplicates": dups}) + "\n",
                      "application/json")

    def _validate(self, body):
        ctype = self.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
        if ctype != "application/x-ndjson":
            raise Reject(415, "Content-Type must be application/x-ndjson, not %r" % ctype)
        enc = self.headers.get("Content-Encoding", "identity").strip().lower()
        if enc == "gzip":
            body = gunzip(body)
        elif enc == "zstd":
            raise Reject(415, "Content-Encoding zstd: this test receiver has no zstd "
                              "decoder (python standard library); use gzip or none")
        elif enc not in ("", "identity"):
            raise Reject(415, "Content-Encoding %r not supported (gzip, identity)" % enc)
        ids = []
        uuid = None
        for n, line in enumerate(body.split(b"\n"), 1):
            if not line.strip():
                continue
            try:
                ev = json.loads(line)
            except (ValueError, UnicodeDecodeError) as e:
                raise Reject(400, "line %d: not valid JSON: %s" % (n, e))
            if not isinstance(ev, dict) or not isinstance(ev.get("id"), str):
                raise Reject(400, "line %d: not a JSON object with a string \"id\"" % n)
            mo = ID_RE.match(ev["id"])
            if not mo or " " in ev["id"]:
                raise Reject(400, "line %d: id %r is not <uuid>-<seq>" % (n, ev["id"]))
            if uuid is None:
                uuid = mo.group(1)
            elif mo.group(1) != uuid:
                raise Reject(400, "line %d: id %r is not from spool %s" % (n, ev["id"], uuid))
            ids.append(ev["id"])
        if not ids:
            raise Reject(400, "empty batch: no events")
        key = self.headers.get("Idempotency-Key")
        want = "%s-%s-%s" % (uuid, ID_RE.match(ids[0]).group(2), ID_RE.match(ids[-1]).group(2))
        if key is None:
            raise Reject(400, "no Idempotency-Key header (expected %s)" % want)
        if key.strip() != want:
            raise Reject(400, "Idempotency-Key %r does not match the batch (expected %s)" % (key, want))
        return ids, want

    def _dispatch(self):
        try:
            path = self.path.split("?", 1)[0]
            if path == "/_control" and self.command == "POST":
                return self._control()
            if path == "/_stats" and self.command in ("GET", "HEAD"):
                return self._stats()
            if self.control_only:
                self._read_body(1 << 20)
                return self._respond(404, "control port: POST /_control or GET /_stats\n")
            return self._batch()
        except Reject as r:
            self._respond(r.status, r.reason + "\n", close=r.close)
        except (ConnectionError, TimeoutError, ValueError, OSError):
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = _dispatch


class ControlHandler(Handler):
    control_only = True


def gunzip(data):
    """gzip -> bytes, bounded by MAX_BODY (a small bomb cannot eat memory)."""
    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = d.decompress(data, MAX_BODY + 1)
    except zlib.error as e:
        raise Reject(400, "Content-Encoding gzip: bad gzip data: %s" % e)
    if len(out) > MAX_BODY:
        raise Reject(413, "body larger than %d bytes once gunzipped" % MAX_BODY)
    if not d.eof:
        raise Reject(400, "Content-Encoding gzip: truncated gzip data")
    return out


class Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 128

    def handle_error(self, request, client_address):
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError, OSError)):
            return
        sys.stderr.write("receiver: error serving %s: %r\n" % (client_address, exc))


class DataListener:
    """The data port: closed for "refuse", reopened on the same port."""

    def __init__(self, host, port):
        self.host = host
        self.lock = threading.Lock()
        self.srv = None
        self.port = port
        self._open()

    def _open(self):
        deadline = time.monotonic() + 5
        while True:
            try:
                self.srv = Server((self.host, self.port), Handler)
                break
            except OSError as e:
                if self.port == 0 or time.monotonic() > deadline:
                    raise SystemExit("receiver: cannot listen on %s:%d: %s" % (self.host, self.port, e))
                time.sleep(0.05)
        self.port = self.srv.server_address[1]
        threading.Thread(target=self.srv.serve_forever, args=(0.05,), daemon=True).start()

    def want(self, up):
        with self.lock:
            if up and self.srv is None:
                self._open()
            elif not up and self.srv is not None:
                srv, self.srv = self.srv, None
                srv.shutdown()
                srv.server_close()


CONTROL_FILE = None
control_seen = [None]
control_lock = threading.Lock()


def check_control_file():
    if not CONTROL_FILE:
        return
    with control_lock:
        try:
            with open(CONTROL_FILE, "rb") as f:
                text = f.read(1 << 20)
        except OSError:
            return
        if text == control_seen[0]:
            return
        control_seen[0] = text
        try:
            STATE.command(text.decode("utf-8", "replace"))
        except ValueError as e:
            sys.stderr.write("receiver: %s: %s (ignored)\n" % (CONTROL_FILE, e))


def poll_control_file():
    while True:
        check_control_file()
        time.sleep(0.1)


def run_script(steps, t0):
    for at, text in steps:
        time.sleep(max(0.0, t0 + at - time.monotonic()))
        STATE.command(text)
        if STATE.verbose:
            sys.stderr.write("receiver: script at %g s: %s\n" % (at, text))


def load_script(path):
    steps = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            at, _, text = line.partition(" ")
            try:
                STATE.parse(text)  # reject a bad script at start, not mid-test
                steps.append((seconds(at), text))
            except ValueError as e:
                raise SystemExit("receiver: %s:%d: %s" % (path, n, e))
    return sorted(steps, key=lambda s: s[0])


def write_port(path, port):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % port)
    os.rename(tmp, path)  # atomic: readers never see half a file


def split_hostport(s):
    host, _, port = s.rpartition(":")
    return host.strip("[]") or "127.0.0.1", int(port)


def main():
    global STATE, CONTROL_FILE
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="See the top of receiver.py for the protocol.")
    ap.add_argument("--listen", default="127.0.0.1:0", help="data HOST:PORT (port 0 = any free port)")
    ap.add_argument("--port-file", help="write the data port here once listening")
    ap.add_argument("--record", help="append one line per event here")
    ap.add_argument("--control-listen", default="127.0.0.1:0", help="control HOST:PORT")
    ap.add_argument("--control-port-file", help="write the control port here once listening")
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--control-file", help="apply this file's commands whenever it changes")
    g.add_argument("--script", help='apply "SECONDS COMMAND" lines on a timer')
    ap.add_argument("--verbose", action="store_true", help="one line per request on stderr")
    a = ap.parse_args()

    STATE = State(a.record, a.verbose)
    steps = load_script(a.script) if a.script else None

    def stop(signum, frame):
        with STATE.lock:
            if STATE.record:
                STATE.record.flush()
        sys.stderr.write("receiver: %s\n" % json.dumps(STATE.stats()))
        sys.stderr.flush()
        os._exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    STATE.data = DataListener(*split_hostport(a.listen))
    csrv = Server(split_hostport(a.control_listen), ControlHandler)
    threading.Thread(target=csrv.serve_forever, args=(0.2,), daemon=True).start()
    if a.control_file:
        CONTROL_FILE = a.control_file
        check_control_file()
        threading.Thread(target=poll_control_file, daemon=True).start()
    if steps:
        threading.Thread(target=run_script, args=(steps, time.monotonic()), daemon=True).start()
    if a.control_port_file:
        write_port(a.control_port_file, csrv.server_address[1])
    if a.port_file:
        write_port(a.port_file, STATE.data.port)
    while True:
        signal.pause()


if __name__ == "__main__":
    main()
