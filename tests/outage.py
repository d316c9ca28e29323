#!/usr/bin/env python3
"""outage.py -- helpers for tests/e2e-outage.sh (python3 standard library);
the HAProxy side (load, log ring, log checks) is e2e.py's, imported here.

    outage.py traffic PORT N CONNS SECS OUT
        e2e.py's load (same requests, same checks, same OUT), paced so the
        N requests are spread over about SECS seconds: capture goes on
        while the event processor fails.
    outage.py wait SPOOLCAP DIR SECS drained|delivered N|spooled N
        wait (at most SECS) until `spoolcap stat DIR --json` shows nothing
        pending (records 0, cursor = last seq), the cursor at N or more,
        or the last seq at N or more; print one line saying how it ended.
    outage.py poison SPOOLCAP DIR RECORD K OUT
        pick K+1 event ids that are in the spool and not yet delivered
        (per the receiver's RECORD file), spread over the pending range;
        write their events (`spoolcap dump --from SEQ --limit 1`) to OUT;
        print the ids, the last one on its own line (it gets 413, the
        others 400).
    outage.py [--kill] verify FIRST REQUESTS LOG RECORD EVENTS DUMP POISON STAT RXSTATS
        print TAP lines FIRST.. for what reached the receiver: see verify().
        --kill: the agent was killed during the run, so some transactions
        may not have been spooled (HAProxy logged a SPOE error for them);
        only those it was told were spooled must have been delivered.

The shell script keeps the process handling; everything that parses is
here or in e2e.py.
"""
import inspect
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import e2e  # noqa: E402  (the HAProxy-side helpers, shared)


def traffic(port, n, conns, secs, out):
    """e2e.load with request i sent no earlier than i * SECS / N seconds
    after the start (each connection sends its requests in index order)."""
    n, secs = int(n), float(secs)
    t0 = time.monotonic()
    plain = e2e.request_for

    def paced(i):
        wait = t0 + i * secs / n - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        return plain(i)

    e2e.request_for = paced
    try:
        return e2e.load(port, n, conns, out)
    finally:
        e2e.request_for = plain


def stat(spoolcap, d):
    out = subprocess.run([spoolcap, "stat", d, "--json"], capture_output=True, timeout=30)
    if out.returncode != 0:
        raise RuntimeError("spoolcap stat %s: %s" % (d, out.stderr.decode(errors="replace").strip()))
    return json.loads(out.stdout)


def wait(spoolcap, d, secs, what, n=0):
    t0 = time.monotonic()
    deadline = t0 + float(secs)
    done_if = {"drained": lambda s: s["records"] == 0 and s["cursor"] == s["last_seq"],
               "delivered": lambda s: s["cursor"] >= int(n),
               "spooled": lambda s: s["last_seq"] >= int(n)}.get(what)
    if done_if is None:
        sys.stderr.write(__doc__)
        return 2
    while True:
        try:
            s = stat(spoolcap, d)
            done = done_if(s)
            last = "records pending %d, cursor %d of last seq %d, dead letters %d" % (
                s["records"], s["cursor"], s["last_seq"], s["dead_letters"])
        except (RuntimeError, ValueError, KeyError, subprocess.SubprocessError) as e:
            done, last = False, str(e)
        if done or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    print("%s%s after %.1f s: %s" % ("" if done else "NOT ", what, time.monotonic() - t0, last))
    return 0 if done else 1


def read_record(path):
    """receiver.py --record lines -> [(status, id)]."""
    rows = []
    with open(path, errors="replace") as f:
        for line in f:
            w = line.split()
            if len(w) >= 2:
                rows.append((w[0], w[1]))
    return rows


def poison(spoolcap, d, record, k, out):
    k = int(k)
    s = stat(spoolcap, d)
    delivered = {i for st, i in read_record(record) if st.startswith("2")}
    lo, hi = s["cursor"] + 1, s["next_seq"] - 1
    if hi - lo + 1 < 4 * (k + 1):
        print("only %d records pending (seqs %d..%d): too few to pick %d poison events from" % (
            max(0, hi - lo + 1), lo, hi, k + 1), file=sys.stderr)
        return 1
    picked = []
    for j in range(1, k + 2):
        seq = lo + (hi - lo) * j // (k + 2)
        while "%s-%d" % (s["uuid"], seq) in delivered or seq in picked:
            seq += 1
        picked.append(seq)
    with open(out, "w") as f:
        for seq in picked:
            ev = subprocess.run([spoolcap, "dump", d, "--from", str(seq), "--limit", "1"],
                                capture_output=True, timeout=30).stdout
            want = "%s-%d" % (s["uuid"], seq)
            if json.loads(ev or b"{}").get("id") != want:
                print("spoolcap dump --from %d did not give event %s" % (seq, want), file=sys.stderr)
                return 1
            f.write(ev.decode())
    ids = ["%s-%d" % (s["uuid"], q) for q in picked]
    print(" ".join(ids[:-1]))
    print(ids[-1])
    return 0


def load_lines(path):
    with open(path, "rb") as f:
        return [l.rstrip(b"\n") for l in f if l.strip()]


def verify(first, requests, log, record, events, dump, poison_file, stat_file, rxstats):
    """TAP lines: the receiver met every failure mode; every seq of the
    spool reached it with a 2xx except exactly the poison ids, which are the
    dead letters (by reason); every delivered copy is byte for byte what
    `spoolcap dump` renders; every request HAProxy was told was spooled has
    its cap-req and cap-res delivered or dead-lettered."""
    tap = e2e.Tap(first)
    n = int(requests)
    with open(stat_file) as f:
        st = json.load(f)
    with open(rxstats) as f:
        rx = json.load(f)
    uuid, last = st["uuid"], st["last_seq"]
    all_ids = {"%s-%d" % (uuid, q) for q in range(1, last + 1)}
    pev = [json.loads(l) for l in load_lines(poison_file)]  # empty if none were picked
    p413 = pev[-1]["id"] if pev else None
    poison_ids = {e["id"] for e in pev}

    # The engine met each failure mode the receiver went through (refused
    # connections never reach it; an RST is a reset, or a keep-alive
    # connection that outlived "refuse").
    by = rx.get("by_status", {})
    modes = [("rst", "reset"), ("503", "503"), ("429", "429 Retry-After"), ("stall", "stall"),
             ("401", "401"), ("400", "400 reject"), ("413", "413 reject")]
    missing = [what for key, what in modes if not by.get(key)]
    tap.check(not missing, "the engine met every failure mode: %s; %d probes" % (
        ", ".join("%s %d" % (what, by.get(key, 0)) for key, what in modes), rx.get("probes", 0)),
        ["never seen: %s" % ", ".join(missing)])

    # Delivered (2xx) vs the spool's seqs.
    rows = read_record(record)
    delivered = {i for s, i in rows if s.startswith("2")}
    refused = {}
    for s, i in rows:
        if not s.startswith("2"):
            refused.setdefault(i, set()).add(s)
    want = all_ids - poison_ids
    tap.check(delivered == want and (KILL or last == 2 * n),
              "every seq 1..%d reached the receiver with a 2xx except the %d poison ids "
              "(%d delivered, %d duplicate deliveries)" % (last, len(poison_ids), len(delivered),
                                                          rx.get("duplicates", -1)),
              ["spool holds %d records for %d requests" % (last, n)] +
              ["never delivered: %s" % i for i in sorted(want - delivered)[:5]] +
              ["delivered but poison or foreign: %s" % i for i in sorted(delivered - want)[:5]])
    # A batch holding two poison ids gets the first one's status.
    bad = [i for i in poison_ids if ("413" if i == p413 else "400") not in refused.get(i, ())]
    reasons = st.get("dead_letters_by_reason", {})
    tap.check(pev and not bad and st["dead_letters"] == len(poison_ids) and
              reasons == {"rejected": len(poison_ids) - 1, "too_large": 1},
              "the poison ids are the dead letters: %s (%d)" % (
                  json.dumps(reasons, sort_keys=True), st["dead_letters"]),
              ["poison %s answered %s" % (i, sorted(refused.get(i, []))) for i in bad])

    # Byte for byte: each delivered copy is the dump's line for that id.
    rendered = {}
    for line in load_lines(dump):
        rendered[json.loads(line)["id"]] = line
    copies, differ, ids_seen = 0, [], set()
    for line in load_lines(events):
        copies += 1
        i = json.loads(line)["id"]
        ids_seen.add(i)
        if rendered.get(i) != line:
            differ.append(i)
    tap.check(not differ and ids_seen == delivered,
              "the %d event copies received are byte for byte `spoolcap dump` (%d ids)" % (
                  copies, len(ids_seen)),
              ["differs: %s" % i for i in differ[:5]] +
              ["ids in --record but not in --record-events: %d" % len(delivered - ids_seen)])

    # Pairing: what HAProxy was told was spooled reached the receiver.
    got = {}
    for i in ids_seen:
        a = json.loads(rendered[i]).get("args", {})
        got.setdefault(a.get("uid"), set()).add(json.loads(rendered[i]).get("message"))
    for e in pev:
        got.setdefault(e.get("args", {}).get("uid"), set()).add(e.get("message"))
    txn = []
    with open(log, errors="replace") as f:
        for line in f:
            m = e2e.LOG_RE.search(line)
            if m:
                txn.append(m)
    acked = [m for m in txn if m.group("err") == "-" and m.group("spooled") == "1"]
    lost = [m.group("uid") for m in acked if got.get(m.group("uid")) != {"cap-req", "cap-res"}]
    tap.check(not lost and (KILL or len(acked) == n),
              "each of the %d transactions HAProxy logged as spooled (of %d) has its cap-req "
              "and cap-res delivered or dead-lettered" % (len(acked), n),
              ["uid %s: got %s" % (u, sorted(got.get(u, []))) for u in lost[:5]])
    if KILL:
        print("# %d transactions with a SPOE error or not spooled (the agent was down)" % (
            len(txn) - len(acked)))
    return 1 if tap.failed else 0


KILL = False


def main(args):
    global KILL
    KILL = args[:1] == ["--kill"]
    args = args[KILL:]
    fn = {"traffic": traffic, "wait": wait, "poison": poison,
          "verify": verify}.get(args[0] if args else None)
    try:
        inspect.signature(fn).bind(*args[1:])
    except TypeError:  # no such command, or not its arguments
        sys.stderr.write(__doc__)
        return 2
    return fn(*args[1:]) or 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
