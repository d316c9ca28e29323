#!/usr/bin/env python3
"""e2e.py -- helpers for the end-to-end scripts (python3 standard library).

    e2e.py freeport                      print a free TCP port on 127.0.0.1
    e2e.py wait-port HOST:PORT SECS      wait until HOST:PORT accepts
    e2e.py wait-up SOCK BACKEND SERVER SECS
                                         wait until HAProxy's health check
                                         has marked BACKEND/SERVER UP
    e2e.py load PORT N CONNS OUT         send N requests through HAProxy on
                                         127.0.0.1:PORT over CONNS keep-alive
                                         connections; OUT gets one JSON line
                                         per request; exit 1 unless every
                                         request got the backend's 200
    e2e.py ring SOCK NAME OUT N SECS     copy HAProxy's log ring NAME to OUT
                                         once it holds N transaction lines
    e2e.py check HAPROXY_LOG AGENT_LOG N FIRST
                                         print TAP lines FIRST.. for the
                                         log assertions (see check())

The scripts keep the process handling; everything that parses goes here.
"""
import http.client
import json
import random
import re
import socket
import sys
import threading
import time


def freeport():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    print(s.getsockname()[1])
    s.close()


def wait_port(hostport, secs):
    host, _, port = hostport.rpartition(":")
    deadline = time.monotonic() + float(secs)
    while time.monotonic() < deadline:
        try:
            socket.create_connection((host, int(port)), timeout=1).close()
            return 0
        except OSError:
            time.sleep(0.05)
    print("nothing accepts connections on %s after %s s" % (hostport, secs), file=sys.stderr)
    return 1


def cli(sock, command):
    """One command on HAProxy's stats socket; returns the whole answer."""
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(5)
    s.connect(sock)
    s.sendall(command.encode() + b"\n")
    data = b""
    while True:
        d = s.recv(65536)
        if not d:
            break
        data += d
    s.close()
    return data.decode(errors="replace")


def stats(sock):
    lines = cli(sock, "show stat").splitlines()
    if not lines or not lines[0].startswith("# "):
        return []
    names = lines[0][2:].split(",")
    return [dict(zip(names, l.split(","))) for l in lines[1:] if l]


def wait_up(sock, backend, server, secs):
    """UP alone is not enough: HAProxy starts servers UP before the first
    check. Wait for a completed check that succeeded (check_status L*OK)."""
    deadline = time.monotonic() + float(secs)
    last = "no answer on the stats socket"
    while time.monotonic() < deadline:
        try:
            for row in stats(sock):
                if row.get("pxname") == backend and row.get("svname") == server:
                    st = row.get("check_status", "").lstrip("* ")
                    last = "status=%s check_status=%s check_desc=%s" % (
                        row.get("status"), row.get("check_status"), row.get("last_chk", ""))
                    if row.get("status") == "UP" and st.startswith("L") and st.endswith("OK"):
                        print(last)
                        return 0
        except OSError as e:
            last = "stats socket %s: %s" % (sock, e)
        time.sleep(0.1)
    print("%s/%s not UP after %s s: %s" % (backend, server, secs, last), file=sys.stderr)
    return 1


def ring(sock, name, out, n, secs):
    """Copy HAProxy's log ring NAME to OUT once it holds N transaction lines
    (or SECS have passed: the check then reports what is missing).

    The tests read the log from a ring, not from stdout: HAProxy drops a
    line written to an fd (log stdout) when another thread holds that fd
    for 200 spins ("we prefer to fail on collision than to block"), which
    happens on a loaded machine. Ring writes are not dropped while the ring
    has room."""
    deadline = time.monotonic() + float(secs)
    while True:
        data = cli(sock, "show events %s" % name)
        count = sum(1 for line in data.splitlines() if LOG_RE.search(line))
        if count >= int(n) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    with open(out, "w") as f:
        f.write(data)
    dropped = re.findall(r"^\s*stdout\s*:.*?(\d+) dropped", cli(sock, "show events"), re.M)
    info = re.findall(r"^DroppedLogs: (\d+)", cli(sock, "show info"), re.M)
    print("%d transaction lines in ring %s; HAProxy's DroppedLogs: %s, lines dropped on stdout: %s" % (
        count, name, info[0] if info else "?", dropped[0] if dropped else "?"))
    return 0 if count >= int(n) else 1


# The request mix: GET with response bodies of varied sizes (some above the
# 32 KiB capture cap), POST and PUT with bodies from 0 bytes to well above
# the capture cap and the 64 KiB buffer, a server-sent-events response, odd
# query strings and long headers. Deterministic in the request index.
GET_SIZES = [0, 1, 512, 4096, 32767, 40000, 70000]
POST_SIZES = [0, 1, 100, 1000, 16000, 32767, 32768, 33000, 65536, 100000]
PUT_SIZES = [10, 5000, 50000]


def request_for(i):
    rnd = random.Random(i)
    headers = {"User-Agent": "spoolcap-e2e", "X-Test-Index": str(i)}
    if i % 7 == 0:
        headers["X-Long"] = "v" * rnd.randrange(100, 4000)
        headers["Cookie"] = "a=1; b=2; session=%08x" % rnd.getrandbits(32)
    k = i % 10
    body = None
    if k in (0, 1, 2):
        size = GET_SIZES[(i // 10) % len(GET_SIZES)]
        return "GET", "/get?i=%d&size=%d" % (i, size), headers, None, size
    if k == 3:
        return "GET", "/events?i=%d" % i, headers, None, None
    if k in (4, 5, 6, 7):
        n = POST_SIZES[(i // 10 + k) % len(POST_SIZES)]
        body = bytes(rnd.getrandbits(8) for _ in range(min(n, 256))) * (n // 256 + 1)
        body = body[:n]
        headers["Content-Type"] = "application/octet-stream"
        return "POST", "/post?i=%d" % i, headers, body, 0
    if k == 8:
        n = PUT_SIZES[(i // 10) % len(PUT_SIZES)]
        body = (b'{"k":"%d"}' % i).ljust(n, b" ")
        headers["Content-Type"] = "application/json"
        return "PUT", "/put/%d?i=%d" % (i, i), headers, body, 0
    return "GET", "/search?i=%d&q=caf%%C3%%A9+%%26+more&empty=&flag" % i, headers, None, 0


def check_response(method, path, body, extra, resp, data):
    if resp.status != 200:
        return "status %d" % resp.status
    if path.startswith("/events"):
        return None if resp.getheader("Content-Type") == "text/event-stream" else "not event-stream"
    head, _, rest = data.partition(b"\n")
    try:
        info = json.loads(head)
    except ValueError:
        return "body is not the backend's JSON: %r" % data[:80]
    sent = len(body) if body is not None else 0
    if info.get("method") != method or info.get("received") != sent:
        return "backend saw %s with %s bytes, client sent %s with %d" % (
            info.get("method"), info.get("received"), method, sent)
    if len(rest) != (extra or 0):
        return "response body %d bytes, expected %d" % (len(rest), extra or 0)
    return None


def load(port, n, conns, out):
    n, conns = int(n), int(conns)
    results = [None] * n

    def worker(t):
        c = None
        for i in range(t, n, conns):
            method, path, headers, body, extra = request_for(i)
            err = None
            try:
                if c is None:
                    c = http.client.HTTPConnection("127.0.0.1", int(port), timeout=60)
                c.request(method, path, body=body, headers=headers)
                r = c.getresponse()
                data = r.read()
                err = check_response(method, path, body, extra, r, data)
                status = r.status
                if r.will_close:
                    c.close()
                    c = None
            except (OSError, http.client.HTTPException) as e:
                err, status = "%s: %s" % (type(e).__name__, e), None
                if c is not None:
                    c.close()
                c = None
            results[i] = {"i": i, "method": method, "path": path, "status": status,
                          "sent": len(body) if body is not None else 0, "error": err}
        if c is not None:
            c.close()

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(conns)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - t0
    with open(out, "w") as f:
        for r in results:
            f.write(json.dumps(r) + "\n")
    bad = [r for r in results if r["error"]]
    methods = {}
    for r in results:
        methods[r["method"]] = methods.get(r["method"], 0) + 1
    print("%d requests (%s) over %d connections in %.1f s, %d failed" % (
        n, ", ".join("%d %s" % (v, k) for k, v in sorted(methods.items())), conns, elapsed, len(bad)))
    for r in bad[:10]:
        print("request %d %s %s: %s" % (r["i"], r["method"], r["path"][:60], r["error"]))
    return 1 if bad else 0


LOG_RE = re.compile(r'"(?P<method>\S+) (?P<target>\S+) [^"]*" uid=(?P<uid>\S*) '
                    r'spoe_err=(?P<err>\S*) spoe_ms=(?P<ms>\S*) spooled=(?P<spooled>\S*)')
IDX_RE = re.compile(r"[?&]i=(\d+)")


class Tap:
    def __init__(self, first):
        self.n = int(first)
        self.failed = 0

    def check(self, ok, what, diags=()):
        print("%s %d - %s" % ("ok" if ok else "not ok", self.n, what))
        if not ok:
            self.failed += 1
            for d in list(diags)[:10]:
                print("#   " + str(d))
        self.n += 1


def check(haproxy_log, events_file, n, first):
    """TAP lines: HAProxy logged one line per request with a distinct unique
    id; no SPOE error on any of them nor any SPOE error line; the spool
    (spoolcap dump) holds exactly one cap-req and one cap-res event per
    logged unique id, matching the log."""
    n = int(n)
    tap = Tap(first)
    txn, spoe_lines, other = [], [], []
    with open(haproxy_log, errors="replace") as f:
        for line in f:
            m = LOG_RE.search(line)
            if m:
                txn.append((m, line.rstrip("\n")))
            elif "SPOE" in line:
                spoe_lines.append(line.rstrip("\n"))
    idx = {}
    for m, line in txn:
        im = IDX_RE.search(m.group("target"))
        if im:
            idx.setdefault(int(im.group(1)), []).append(m.group("uid"))
    uids = [m.group("uid") for m, _ in txn]
    missing = [i for i in range(n) if i not in idx]
    dup_idx = [i for i, u in idx.items() if len(u) > 1]
    tap.check(len(txn) == n and not missing and not dup_idx and len(set(uids)) == n and "" not in uids,
              "haproxy logged %d transactions, one per request, each with its own unique id" % n,
              ["log lines: %d, distinct uids: %d" % (len(txn), len(set(uids)))] +
              ["request %d has no log line" % i for i in missing[:5]] +
              ["request %d logged %d times" % (i, len(idx[i])) for i in dup_idx[:5]])
    errs = [line for m, line in txn if m.group("err") != "-"]
    tap.check(not errs and not spoe_lines,
              "no SPOE error: txn.cap.err unset in every log line, no SPOE error log line",
              ["%d lines with an error code, %d SPOE lines" % (len(errs), len(spoe_lines))] +
              errs[:5] + spoe_lines[:5])
    ms = [int(m.group("ms")) for m, _ in txn if m.group("ms").isdigit()]
    if ms:
        ms.sort()
        print("# SPOE time per transaction (both events, ms): median %d, p99 %d, max %d" % (
            ms[len(ms) // 2], ms[min(len(ms) - 1, len(ms) * 99 // 100)], ms[-1]))

    # The spool, through `spoolcap dump`: one event per SPOE message.
    seen, events = {}, []
    with open(events_file, errors="replace") as f:
        for line in f:
            ev = json.loads(line)
            events.append(ev)
            seen.setdefault(ev.get("message"), []).append(ev.get("args", {}).get("uid"))
    logged = set(uids)
    for name in ("cap-req", "cap-res"):
        got = seen.get(name, [])
        dups = sorted(u for u in set(got) if got.count(u) > 1) if len(got) != len(set(got)) else []
        tap.check(len(got) == n and len(set(got)) == n and set(got) == logged,
                  "the spool holds exactly one %s per request (%d events, %d distinct uids)" % (
                      name, len(got), len(set(got))),
                  ["uids logged by haproxy but not in the spool: %d" % len(logged - set(got)),
                   "uids in the spool but not logged by haproxy: %d" % len(set(got) - logged)] +
                  ["duplicate uid %s" % u for u in dups[:5]])
    others = sorted(k for k in seen if k not in ("cap-req", "cap-res"))
    tap.check(not others, "the spool holds no other message names", ["unexpected: %s" % others])
    # Each request event matches its HAProxy log line, and every ACK told
    # HAProxy the messages were spooled.
    by_uid = {m.group("uid"): m for m, _ in txn}
    bad = []
    for ev in events:
        a = ev.get("args", {})
        m = by_uid.get(a.get("uid"))
        if ev.get("message") != "cap-req" or not m:
            continue
        path = m.group("target").split("?", 1)[0]
        if a.get("meth") != m.group("method") or a.get("path") != path or \
                not isinstance(a.get("hdrs"), list):
            bad.append("uid %s: meth %r path %r, logged %s %s" % (
                a.get("uid"), a.get("meth"), a.get("path"), m.group("method"), path))
    not_spooled = [line for m, line in txn if m.group("spooled") != "1"]
    tap.check(not bad and not not_spooled,
              "request events match the log (method, path, header list) and every "
              "transaction logged spooled=1",
              ["%d mismatched events, %d lines without spooled=1" % (len(bad), len(not_spooled))] +
              bad[:5] + not_spooled[:5])
    return 1 if tap.failed else 0


def main(argv):
    cmds = {"freeport": (freeport, 0), "wait-port": (wait_port, 2), "wait-up": (wait_up, 4),
            "load": (load, 4), "ring": (ring, 5), "check": (check, 4)}
    if len(argv) < 2 or argv[1] not in cmds or len(argv) - 2 != cmds[argv[1]][1]:
        sys.stderr.write(__doc__)
        return 2
    fn, _ = cmds[argv[1]]
    return fn(*argv[2:]) or 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
