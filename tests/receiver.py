#!/usr/bin/env python3
"""receiver.py -- a loopback HTTP event processor for the delivery tests
(python3 standard library only). It checks every batch against design.md's
delivery contract, records what it accepted, and fails on command.

Usage:
    receiver.py [--listen HOST:PORT] [--port-file F] [--record FILE]
                [--record-events FILE]
                [--tls-cert PEM --tls-key PEM [--tls-client-ca PEM]]
                [--control-listen HOST:PORT] [--control-port-file F]
                [--control-file C | --script S] [--verbose]
With port 0 the kernel picks a free port; the port files are written
(atomically) once the sockets listen, which is how scripts know it is ready.
SIGTERM or SIGINT: flush the record, print the counters to stderr, exit 0.

TLS: with --tls-cert and --tls-key the data port speaks HTTPS only (the
control port stays plain HTTP); --tls-client-ca also requires a client
certificate signed by that CA (mutual TLS). A failed handshake is counted
in /_stats as "tls_failures" and, with --verbose, logged with the reason.

A batch (any path except /_control and /_stats, any method) must be:
  Content-Type: application/x-ndjson                      else 415
  Content-Encoding: absent, identity, gzip or zstd        else 415 (zstd
      through libzstd.so.1 with ctypes; 415 when it cannot be loaded)
  body at most 64 MiB (once decoded too), Content-Length or chunked  else 413
  one JSON object per line, each with a string "id" of the form
  "<uuid>-<seq>" (seq decimal), all with the same uuid     else 400
  Idempotency-Key: "<uuid>-<first seq>-<last seq>" of the batch     else 400
A valid batch gets 200 and a JSON body {"accepted": N, "duplicates": D}.
An empty body (no events: the delivery engine's probe of the endpoint) is
valid with any Idempotency-Key or none; it gets 200 {"accepted": 0} and
is counted in /_stats as "probes" (failure modes apply to it as to any
batch, reject-ids cannot). Errors get a one-line text/plain body saying
what was wrong.

Record file (--record): one line per event of every batch that passed
validation, appended and flushed once per batch (no fsync):
    <status> <id> <idempotency-key> <new|dup>
status is what the receiver answered for the whole batch (2xx: delivered;
400/413 from reject-ids: not delivered). new/dup says whether the id had
already been delivered (2xx) before; only 2xx lines set it for later ones.
Batches refused before validation (by a failure mode, or malformed) are not
recorded; /_stats counts them. Delivered ids: awk '$1 ~ /^2/ {print $2}'.
--record-events FILE: the event lines themselves (decoded, byte for byte as
sent, one per line) of every batch answered 2xx, duplicates included,
appended once per batch: what a processor would have stored.

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
    delay S [for K]           accept the batch (recorded as delivered at
                              once), answer 200 only S seconds later: a
                              client that gives up or dies meanwhile lost
                              an ACK and will send a duplicate
    reject-ids ID... with N [ID... with N]...
                              answer N (400 or 413, any 4xx/5xx allowed) to
                              a batch holding one of the ids (the status of
                              the first such id in the batch): the whole
                              batch is refused. Replaces the previous list;
                              independent of the mode above; "reject-ids"
                              alone clears it
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
"probes", "tls_failures", "mode", "reject_ids" ({id: status})}.
by_status keys are HTTP statuses, plus "rst" (refuse or reset) and
"stall"; /_control and /_stats requests are not counted.
"""
import argparse
import ctypes
import ctypes.util
import json
import os
import re
import signal
import socket
import ssl
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

    def __init__(self, record_path, events_path, verbose):
        self.lock = threading.Lock()
        self.mode = ("ok",)
        self.left = None  # batches left in the mode ("for K"), None = until changed
        self.reject = {}  # id -> status (reject-ids)
        self.requests = 0
        self.by_status = {}
        self.batches_accepted = 0
        self.events_accepted = 0
        self.seen = set()
        self.duplicates = 0
        self.probes = 0
        self.tls_failures = 0
        self.verbose = verbose
        self.record = open(record_path, "a", encoding="utf-8") if record_path else None
        self.events = open(events_path, "ab") if events_path else None
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
        elif cmd == "delay" and len(args) == 1:
            mode = ("delay", seconds(args[0]))
        elif cmd == "slow-body" and len(args) <= 1:
            mode = ("slow-body", seconds(args[0]) if args else 3600.0)
        elif cmd == "reject-ids":
            table = reject_table(args)
            return lambda: self._set_reject(table)
        else:
            raise ValueError("unknown or malformed command %r (see the top of receiver.py)" % line)
        if left is not None and cmd in ("ok", "refuse", "clear"):
            raise ValueError("%s takes no 'for K'" % cmd)

        def apply():
            if cmd == "clear":
                self._set_reject({})
            self._set_mode(mode, left)
        return apply

    def command(self, text):
        """Apply every line of text, all or nothing (raises ValueError)."""
        acts = [a for a in (self.parse(l) for l in text.splitlines()) if a]
        for a in acts:
            a()

    def _set_reject(self, table):
        with self.lock:
            self.reject = table

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
        """(status, [rejected ids]) for a batch holding reject-ids, else
        None. The status is that of the first such id in the batch."""
        with self.lock:
            bad = [i for i in ids if i in self.reject] if self.reject else []
            return (self.reject[bad[0]], bad) if bad else None

    def deliver(self, status, ids, key, lines_raw=()):
        """Record a validated batch (ids, and for a 2xx its event lines for
        --record-events); returns the number of duplicates."""
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
            if self.events and ok:
                self.events.write(b"".join(l + b"\n" for l in lines_raw))
                self.events.flush()
        return dups

    def bump(self, counter):
        with self.lock:
            setattr(self, counter, getattr(self, counter) + 1)

    def stats(self):
        with self.lock:
            return {"requests": self.requests, "by_status": dict(self.by_status),
                    "batches_accepted": self.batches_accepted,
                    "events_accepted": self.events_accepted,
                    "distinct_ids": len(self.seen), "duplicates": self.duplicates,
                    "probes": self.probes, "tls_failures": self.tls_failures,
                    "mode": " ".join(str(m) for m in self.mode),
                    "reject_ids": {i: st for i, st in sorted(self.reject.items())}}


def vlog(line):
    """One --verbose line on stderr, stamped like spoolcapd's log (UTC)."""
    t = time.time()
    sys.stderr.write("receiver: %s.%03dZ %s\n" % (
        time.strftime("%H:%M:%S", time.gmtime(t)), int(t * 1000) % 1000, line))
    sys.stderr.flush()


def posint(s, what, zero=False):
    try:
        n = int(s)
    except ValueError:
        n = -1
    if n < 0 or (n == 0 and not zero):
        raise ValueError("%s: %r is not a %s integer" % (what, s, "non-negative" if zero else "positive"))
    return n


def reject_table(args):
    """"ID... with N [ID... with N]..." -> {id: N}; no args -> {} (clear)."""
    table, ids = {}, []
    it = iter(args)
    for w in it:
        if w != "with":
            ids.append(w)
            continue
        st = status_code(next(it, ""))
        if not ids:
            raise ValueError("reject-ids: 'with %d' follows no id" % st)
        table.update((i, st) for i in ids)
        ids = []
    if ids:
        raise ValueError("usage: reject-ids ID... with STATUS [ID... with STATUS]...")
    return table


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
            vlog("%s:%d %s %s %s %s" % (self.client_address[0], self.client_address[1],
                                        self.command, self.path, status, what))

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
            ids, key, lines = self._validate(body)
        except Reject as r:
            STATE.count(r.status)
            self._log(r.status, r.reason)
            return self._respond(r.status, r.reason + "\n", close=r.close)
        rej = STATE.rejected_ids(ids)
        if rej is not None:
            st, bad = rej
            STATE.deliver(st, ids, key)
            STATE.count(st)
            self._log(st, "rejected ids, key %s" % key)
            return self._respond(st, "rejected event ids: %s\n" % " ".join(bad))
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
        if not ids:
            STATE.bump("probes")
            STATE.count(200)
            self._log(200, "empty batch (probe), key %s" % key)
            return self._respond(200, '{"accepted": 0, "duplicates": 0}\n', "application/json")
        dups = STATE.deliver(200, ids, key, lines)
        STATE.count(200)
        self._log(200, "events=%d dup=%d key=%s%s" % (
            len(ids), dups, key, ", answering in %g s" % mode[1] if m == "delay" else ""))
        if m == "delay":
            time.sleep(mode[1])
        self._respond(200, json.dumps({"accepted": len(ids), "duplicates": dups}) + "\n",
                      "application/json")

    def _validate(self, body):
        ctype = self.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
        if ctype != "application/x-ndjson":
            raise Reject(415, "Content-Type must be application/x-ndjson, not %r" % ctype)
        enc = self.headers.get("Content-Encoding", "identity").strip().lower()
        if enc not in DECODERS:
            raise Reject(415, "Content-Encoding %r not supported (%s)" % (enc, ", ".join(
                sorted(e for e in DECODERS if e))))
        if body:  # a zero-length body is empty whatever its encoding
            body = DECODERS[enc](body)
        ids, lines = [], []
        uuid = None
        for n, line in enumerate(body.split(b"\n"), 1):
            if not line.strip():
                continue
            lines.append(line)
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
        key = self.headers.get("Idempotency-Key")
        if not ids:  # a probe: any key (or none) will do
            return [], key, []
        want = "%s-%s-%s" % (uuid, ID_RE.match(ids[0]).group(2), ID_RE.match(ids[-1]).group(2))
        if key is None:
            raise Reject(400, "no Idempotency-Key header (expected %s)" % want)
        if key.strip() != want:
            raise Reject(400, "Idempotency-Key %r does not match the batch (expected %s)" % (key, want))
        return ids, want, lines

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


class Zstd:
    """The few libzstd calls a bounded decode needs, through ctypes (python's
    standard library has no zstd). Loaded on first use; None if missing."""

    class InBuf(ctypes.Structure):
        _fields_ = [("src", ctypes.c_void_p), ("size", ctypes.c_size_t), ("pos", ctypes.c_size_t)]

    class OutBuf(ctypes.Structure):
        _fields_ = [("dst", ctypes.c_void_p), ("size", ctypes.c_size_t), ("pos", ctypes.c_size_t)]

    UNKNOWN, ERROR = 2**64 - 1, 2**64 - 2  # ZSTD_CONTENTSIZE_*
    lib = None
    why = None

    @classmethod
    def load(cls):
        if cls.lib is not None or cls.why is not None:
            return cls.lib
        try:
            lib = ctypes.CDLL("libzstd.so.1")
        except OSError as e:
            try:
                lib = ctypes.CDLL(ctypes.util.find_library("zstd") or "libzstd.so")
            except OSError:
                cls.why = "cannot load libzstd.so.1 (apt-get install libzstd1): %s" % e
                return None
        sz, ull, vp = ctypes.c_size_t, ctypes.c_ulonglong, ctypes.c_void_p
        for name, res, args in (
                ("ZSTD_getFrameContentSize", ull, [vp, sz]),
                ("ZSTD_decompress", sz, [vp, sz, vp, sz]),
                ("ZSTD_isError", ctypes.c_uint, [sz]),
                ("ZSTD_getErrorName", ctypes.c_char_p, [sz]),
                ("ZSTD_createDStream", vp, []),
                ("ZSTD_freeDStream", sz, [vp]),
                ("ZSTD_initDStream", sz, [vp]),
                ("ZSTD_DStreamOutSize", sz, []),
                ("ZSTD_decompressStream", sz, [vp, ctypes.POINTER(cls.OutBuf),
                                               ctypes.POINTER(cls.InBuf)])):
            f = getattr(lib, name)
            f.restype, f.argtypes = res, args
        cls.lib = lib
        return lib

    @classmethod
    def error(cls, rc):
        return cls.lib.ZSTD_isError(rc) and cls.lib.ZSTD_getErrorName(rc).decode()

    @classmethod
    def decode(cls, data):
        """zstd -> bytes, at most MAX_BODY: a frame that declares its size is
        decoded in one call, otherwise (or with several frames) streamed
        chunk by chunk, stopping as soon as the limit is passed."""
        lib = cls.load()
        if lib is None:
            raise Reject(415, "Content-Encoding zstd: %s" % cls.why)
        size = lib.ZSTD_getFrameContentSize(data, len(data))
        if size == cls.ERROR:
            raise Reject(400, "Content-Encoding zstd: not a zstd frame")
        if size != cls.UNKNOWN and size > MAX_BODY:
            raise Reject(413, "body larger than %d bytes once decoded (frame says %d)" % (MAX_BODY, size))
        if size != cls.UNKNOWN:
            out = ctypes.create_string_buffer(max(size, 1))
            rc = lib.ZSTD_decompress(out, size, data, len(data))
            if not cls.error(rc) and rc == size:
                return out.raw[:size]
            # Several frames (the first one's size is not the total), or
            # a bad frame: the streaming decoder says which.
        return cls.stream(data)

    @classmethod
    def stream(cls, data):
        lib = cls.lib
        ds = lib.ZSTD_createDStream()
        if not ds:
            raise Reject(500, "Content-Encoding zstd: ZSTD_createDStream failed")
        try:
            lib.ZSTD_initDStream(ds)
            chunk = lib.ZSTD_DStreamOutSize()
            buf = ctypes.create_string_buffer(chunk)
            src = ctypes.create_string_buffer(data, len(data))
            inb = cls.InBuf(ctypes.cast(src, ctypes.c_void_p), len(data), 0)
            outb = cls.OutBuf(ctypes.cast(buf, ctypes.c_void_p), chunk, 0)
            parts, total, rc = [], 0, 1
            while True:
                outb.pos = 0
                before = inb.pos
                rc = lib.ZSTD_decompressStream(ds, ctypes.byref(outb), ctypes.byref(inb))
                if cls.error(rc):
                    raise Reject(400, "Content-Encoding zstd: %s" % cls.error(rc))
                total += outb.pos
                if total > MAX_BODY:
                    raise Reject(413, "body larger than %d bytes once decoded" % MAX_BODY)
                parts.append(buf.raw[:outb.pos])
                # Done when the input is used up and the decoder had room
                # to spare (nothing left in its buffers); no progress at
                # all would mean a decoder bug: stop rather than spin.
                if inb.pos == inb.size and outb.pos < outb.size:
                    break
                if inb.pos == before and outb.pos == 0:
                    break
            if rc != 0:
                raise Reject(400, "Content-Encoding zstd: truncated zstd data")
            return b"".join(parts)
        finally:
            lib.ZSTD_freeDStream(ds)


DECODERS = {"": lambda b: b, "identity": lambda b: b, "gzip": gunzip, "zstd": Zstd.decode}


class Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 128
    tls = None  # an ssl.SSLContext on the data port with --tls-cert

    def finish_request(self, request, client_address):
        if self.tls is None:
            return super().finish_request(request, client_address)
        # The handshake runs here, on the connection's own thread, so a
        # slow or silent client cannot hold up the accept loop.
        request.settimeout(10)
        try:
            conn = self.tls.wrap_socket(request, server_side=True)
        except (OSError, ValueError) as e:
            STATE.bump("tls_failures")
            if STATE.verbose:
                vlog("%s:%d TLS handshake failed: %s" % (client_address[0], client_address[1], e))
            return
        conn.settimeout(None)
        try:
            super().finish_request(conn, client_address)
        finally:
            conn.close()

    def handle_error(self, request, client_address):
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError, OSError)):
            return
        sys.stderr.write("receiver: error serving %s: %r\n" % (client_address, exc))


class DataListener:
    """The data port: closed for "refuse", reopened on the same port."""

    def __init__(self, host, port, tls=None):
        self.host = host
        self.tls = tls
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
        self.srv.tls = self.tls
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
            vlog("script at %g s: %s" % (at, text))


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


def tls_context(cert, key, client_ca):
    """The data port's TLS server context (None without --tls-cert)."""
    if not cert:
        return None
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        ctx.load_cert_chain(cert, key)
        if client_ca:
            ctx.load_verify_locations(client_ca)
            ctx.verify_mode = ssl.CERT_REQUIRED
    except (OSError, ssl.SSLError) as e:
        raise SystemExit("receiver: TLS set-up: %s" % e)
    return ctx


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
    ap.add_argument("--record-events", metavar="FILE",
                    help="append the event lines of every 2xx batch here")
    ap.add_argument("--tls-cert", metavar="PEM", help="serve HTTPS on the data port with this certificate")
    ap.add_argument("--tls-key", metavar="PEM", help="its private key (default: in --tls-cert)")
    ap.add_argument("--tls-client-ca", metavar="PEM",
                    help="require a client certificate signed by this CA")
    ap.add_argument("--control-listen", default="127.0.0.1:0", help="control HOST:PORT")
    ap.add_argument("--control-port-file", help="write the control port here once listening")
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--control-file", help="apply this file's commands whenever it changes")
    g.add_argument("--script", help='apply "SECONDS COMMAND" lines on a timer')
    ap.add_argument("--verbose", action="store_true", help="one line per request on stderr (UTC time stamped)")
    a = ap.parse_args()
    if (a.tls_key or a.tls_client_ca) and not a.tls_cert:
        ap.error("--tls-key and --tls-client-ca need --tls-cert")
    tls = tls_context(a.tls_cert, a.tls_key, a.tls_client_ca)

    STATE = State(a.record, a.record_events, a.verbose)
    steps = load_script(a.script) if a.script else None

    def stop(signum, frame):
        with STATE.lock:
            for f in (STATE.record, STATE.events):
                if f:
                    f.flush()
        sys.stderr.write("receiver: %s\n" % json.dumps(STATE.stats()))
        sys.stderr.flush()
        os._exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    STATE.data = DataListener(*split_hostport(a.listen), tls=tls)
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
