#!/usr/bin/env python3
"""sdnotify.py -- plays systemd's side of sd_notify(3) for the tests.

Binds a unix datagram socket (the NOTIFY_SOCKET a service gets), and writes
each datagram received as one JSON line {"t": seconds, "msg": text} to
--out, flushed at once. With --probe ADDR, on the first READY=1 it connects
to ADDR at once (unix:PATH or HOST:PORT) and records "probe": "ok" or the
error, which tells whether the service really listened when it said ready.
Runs until --timeout seconds or SIGTERM.
"""
import argparse
import json
import os
import signal
import socket
import sys
import time


def probe(addr):
    try:
        if addr.startswith("unix:"):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            target = addr[5:]
        else:
            host, _, port = addr.rpartition(":")
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            target = (host, int(port))
        s.settimeout(2)
        s.connect(target)
        s.close()
        return "ok"
    except OSError as e:
        return "failed: %s" % e


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--socket", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--probe")
    ap.add_argument("--timeout", type=float, default=120)
    a = ap.parse_args()

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        os.unlink(a.socket)
    except FileNotFoundError:
        pass
    s.bind(a.socket)
    start = time.monotonic()
    probed = False
    with open(a.out, "a", encoding="utf-8") as out:
        while time.monotonic() - start < a.timeout:
            s.settimeout(0.5)
            try:
                data = s.recv(4096)
            except socket.timeout:
                continue
            rec = {"t": round(time.monotonic() - start, 3),
                   "msg": data.decode("utf-8", "backslashreplace")}
            if a.probe and not probed and "READY=1" in rec["msg"].split("\n"):
                rec["probe"] = probe(a.probe)
                probed = True
            out.write(json.dumps(rec) + "\n")
            out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
