#!/usr/bin/env python3
"""har-check.py -- validates a HAR file against the HAR 1.2 structure
(http://www.softwareishard.com/blog/har-12-spec/) for the export tests
(python3 standard library only).

Usage: har-check.py FILE [--expect EXPECT.json]

Checks every object the spec defines: required fields present with the
right JSON types, no unknown field unless it starts with "_" (the spec's
rule for custom fields), startedDateTime in ISO 8601, absolute URLs,
non-negative send/wait/receive and time equal to the sum of the timings
that are not -1. EXPECT (optional): {"entries": N, "match": [SUBSET, ...]}
where SUBSET i must be contained in entry i (objects: listed keys,
recursively; anything else: equal). Prints "ok: N entries" and exits 0,
or prints each problem and exits 1.
"""
import json
import re
import sys
from urllib.parse import urlsplit

ISO8601 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")
problems = []


def bad(path, msg):
    problems.append(f"{path}: {msg}")


def is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def is_num(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


TYPES = {"str": lambda v: isinstance(v, str), "int": is_int, "num": is_num,
         "obj": lambda v: isinstance(v, dict), "list": lambda v: isinstance(v, list),
         "bool": lambda v: isinstance(v, bool)}


def fields(path, obj, required, optional):
    """required/optional: {name: type}; unknown keys must start with _."""
    if not isinstance(obj, dict):
        bad(path, "not an object")
        return False
    for k, t in required.items():
        if k not in obj:
            bad(path, f"missing {k}")
        elif not TYPES[t](obj[k]):
            bad(f"{path}.{k}", f"not a {t}: {obj[k]!r}")
    for k, t in optional.items():
        if k in obj and not TYPES[t](obj[k]):
            bad(f"{path}.{k}", f"not a {t}: {obj[k]!r}")
    for k in obj:
        if k not in required and k not in optional and not k.startswith("_"):
            bad(path, f"unknown field {k} (custom fields start with _)")
    return True


def pairs(path, lst, extra=None):
    if not isinstance(lst, list):
        return
    for i, p in enumerate(lst):
        fields(f"{path}[{i}]", p, {"name": "str", "value": "str"},
               dict({"comment": "str"}, **(extra or {})))


def check_entry(path, e):
    if not fields(path, e, {"startedDateTime": "str", "time": "num", "request": "obj",
                            "response": "obj", "cache": "obj", "timings": "obj"},
                  {"pageref": "str", "serverIPAddress": "str", "connection": "str",
                   "comment": "str"}):
        return
    if isinstance(e.get("startedDateTime"), str) and not ISO8601.match(e["startedDateTime"]):
        bad(f"{path}.startedDateTime", f"not ISO 8601: {e['startedDateTime']}")
    rq = e.get("request")
    if isinstance(rq, dict):
        p = f"{path}.request"
        fields(p, rq, {"method": "str", "url": "str", "httpVersion": "str", "cookies": "list",
                       "headers": "list", "queryString": "list", "headersSize": "int",
                       "bodySize": "int"}, {"postData": "obj", "comment": "str"})
        url = rq.get("url")
        if isinstance(url, str) and url != "about:blank":
            u = urlsplit(url)
            if u.scheme not in ("http", "https") or not u.netloc:
                bad(f"{p}.url", f"not an absolute http(s) URL: {url}")
            if any(c <= " " or c > "~" for c in url):
                bad(f"{p}.url", f"has characters a URL cannot hold: {url!r}")
        pairs(f"{p}.cookies", rq.get("cookies"), {"path": "str", "domain": "str",
              "expires": "str", "httpOnly": "bool", "secure": "bool"})
        pairs(f"{p}.headers", rq.get("headers"))
        pairs(f"{p}.queryString", rq.get("queryString"))
        if "postData" in rq:
            pd = rq["postData"]
            fields(f"{p}.postData", pd, {"mimeType": "str"},
                   {"params": "list", "text": "str", "comment": "str"})
    rs = e.get("response")
    if isinstance(rs, dict):
        p = f"{path}.response"
        fields(p, rs, {"status": "int", "statusText": "str", "httpVersion": "str",
                       "cookies": "list", "headers": "list", "content": "obj",
                       "redirectURL": "str", "headersSize": "int", "bodySize": "int"},
               {"comment": "str"})
        pairs(f"{p}.cookies", rs.get("cookies"))
        pairs(f"{p}.headers", rs.get("headers"))
        if isinstance(rs.get("content"), dict):
            fields(f"{p}.content", rs["content"], {"size": "int", "mimeType": "str"},
                   {"compression": "int", "text": "str", "encoding": "str", "comment": "str"})
    fields(f"{path}.cache", e.get("cache", {}), {}, {"beforeRequest": "obj",
           "afterRequest": "obj", "comment": "str"})
    t = e.get("timings")
    if isinstance(t, dict):
        fields(f"{path}.timings", t, {"send": "num", "wait": "num", "receive": "num"},
               {"blocked": "num", "dns": "num", "connect": "num", "ssl": "num",
                "comment": "str"})
        for k in ("send", "wait", "receive"):
            if is_num(t.get(k)) and t[k] < 0:
                bad(f"{path}.timings.{k}", "negative")
        total = sum(v for k, v in t.items() if k not in ("comment", "ssl") and is_num(v)
                    and v != -1)
        if is_num(e.get("time")) and abs(e["time"] - total) > 0.01:
            bad(f"{path}.time", f"{e['time']} is not the sum of the timings ({total})")


def contains(path, got, want):
    if isinstance(want, dict):
        if not isinstance(got, dict):
            bad(path, f"expected an object, got {got!r}")
            return
        for k, v in want.items():
            if k not in got:
                bad(path, f"missing {k} (expected {v!r})")
            else:
                contains(f"{path}.{k}", got[k], v)
    elif got != want:
        bad(path, f"expected {want!r}, got {got!r}")


def main():
    args = sys.argv[1:]
    expect = None
    if len(args) == 3 and args[1] == "--expect":
        with open(args[2], encoding="utf-8") as f:
            expect = json.load(f)
        args = args[:1]
    if len(args) != 1:
        sys.exit("usage: har-check.py FILE [--expect EXPECT.json]")
    with open(args[0], "rb") as f:
        raw = f.read()
    try:
        har = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        print(f"not JSON: {e}")
        return 1
    if fields("$", har, {"log": "obj"}, {}):
        log = har["log"]
        fields("$.log", log, {"version": "str", "creator": "obj", "entries": "list"},
               {"browser": "obj", "pages": "list", "comment": "str"})
        if log.get("version") != "1.2":
            bad("$.log.version", f"{log.get('version')!r}, not 1.2")
        fields("$.log.creator", log.get("creator"), {"name": "str", "version": "str"},
               {"comment": "str"})
        entries = log.get("entries") if isinstance(log.get("entries"), list) else []
        for i, e in enumerate(entries):
            check_entry(f"$.log.entries[{i}]", e)
        if expect is not None:
            if "entries" in expect and len(entries) != expect["entries"]:
                bad("$.log.entries", f"{len(entries)} entries, expected {expect['entries']}")
            for i, want in enumerate(expect.get("match", [])):
                if i < len(entries):
                    contains(f"$.log.entries[{i}]", entries[i], want)
                else:
                    bad("$.log.entries", f"no entry {i}")
    for p in problems[:40]:
        print(p)
    if problems:
        return 1
    print(f"ok: {len(har['log']['entries'])} entries")
    return 0


if __name__ == "__main__":
    sys.exit(main())
