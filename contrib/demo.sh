#!/bin/bash
# demo.sh -- run the capture pipeline on loopback and show what it captured.
#
# Starts a small HTTP backend (tests/backend.py), an event processor
# (tests/receiver.py), spoolcapd with a spool in a scratch directory and
# --forward to the processor, and HAProxy with the capture recipe in
# contrib/haproxy/ (unchanged; addresses come from the SPOOLCAP_* environment
# variables it documents), all on 127.0.0.1 with free ports. Sends a few
# requests with curl, then shows HAProxy's log, `spoolcap stat`, the captured
# events (`spoolcap dump`), what the processor received, and stops everything
# it started.
#
# Usage: contrib/demo.sh [BUILDDIR]      (default: _build, as quickstart.sh
#        makes it; SPOOLCAPD, SPOOLCAP and HAPROXY override the programs)
# Needs: haproxy (2.6 or later), python3, curl.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
builddir=${1:-$top/_build}
spoolcapd=${SPOOLCAPD:-$builddir/src/spoolcapd}
spoolcap=${SPOOLCAP:-$builddir/src/spoolcap}
haproxy=${HAPROXY:-$(command -v haproxy || echo /usr/sbin/haproxy)}

die() { echo "demo: $*" >&2; exit 1; }
[ -x "$spoolcapd" ] || die "$spoolcapd not found: build first (./quickstart.sh demo does it)"
[ -x "$spoolcap" ] || die "$spoolcap not found: build first (./quickstart.sh demo does it)"
[ -x "$haproxy" ] || die "haproxy not found: apt-get install haproxy (or set HAPROXY)"
command -v python3 >/dev/null || die "python3 not found: apt-get install python3"
command -v curl >/dev/null || die "curl not found: apt-get install curl"

bold="" off=""
if [ -t 1 ]; then bold=$(printf '\033[1m'); off=$(printf '\033[0m'); fi
step() { printf '\n%s==> %s%s\n' "$bold" "$*" "$off"; }
indent() { sed 's/^/    /'; }

work=$(mktemp -d "${TMPDIR:-/tmp}/spoolcap-demo.XXXXXX")
spool=$work/spool
pids=()
cleanup() {
	local p
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

freeport() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
SPOOLCAP_FRONTEND=127.0.0.1:$(freeport)
SPOOLCAP_AGENT=127.0.0.1:$(freeport)
SPOOLCAP_SPOE_CONF=$top/contrib/haproxy/capture.spoe.conf
export SPOOLCAP_FRONTEND SPOOLCAP_AGENT SPOOLCAP_SPOE_CONF

step "Starting a backend, an event processor, spoolcapd and $("$haproxy" -v | head -n 1 | cut -d' ' -f1-3)"
python3 "$top/tests/backend.py" --listen 127.0.0.1:0 --port-file "$work/backend.port" 2>"$work/backend.log" &
pids+=("$!")
# The event processor: tests/receiver.py checks each batch against the
# delivery contract and records every event id it accepted.
python3 "$top/tests/receiver.py" --listen 127.0.0.1:0 --port-file "$work/receiver.port" \
	--record "$work/receiver.rec" 2>"$work/receiver.log" &
pids+=("$!")
for _ in $(seq 100); do [ -s "$work/receiver.port" ] && break; sleep 0.05; done
[ -s "$work/receiver.port" ] || die "the event processor did not start: $(cat "$work/receiver.log")"
processor=http://127.0.0.1:$(cat "$work/receiver.port")/events
# --retain keeps delivered records, so that spoolcap dump below still shows them.
"$spoolcapd" --foreground --listen "$SPOOLCAP_AGENT" --spool "$spool" --threads 2 \
	--retain 1h --forward "$processor" --forward-linger 50ms 2>"$work/spoolcapd.log" &
agent_pid=$!
pids+=("$agent_pid")
for _ in $(seq 100); do [ -s "$work/backend.port" ] && break; sleep 0.05; done
[ -s "$work/backend.port" ] || die "the backend did not start: $(cat "$work/backend.log")"
SPOOLCAP_BACKEND=127.0.0.1:$(cat "$work/backend.port")
export SPOOLCAP_BACKEND
python3 "$top/tests/e2e.py" wait-port "$SPOOLCAP_AGENT" 10 ||
	die "spoolcapd did not start: $(tail -n 5 "$work/spoolcapd.log")"
# A stats socket (demo only) lets us wait for HAProxy's health check.
printf 'global\n    stats socket %s mode 600\n' "$work/haproxy.sock" >"$work/demo.cfg"
"$haproxy" -f "$work/demo.cfg" -f "$top/contrib/haproxy/haproxy.cfg" >"$work/haproxy.log" 2>"$work/haproxy.err" &
haproxy_pid=$!
pids+=("$haproxy_pid")
python3 "$top/tests/e2e.py" wait-up "$work/haproxy.sock" be_capture cap1 30 >/dev/null ||
	die "HAProxy did not mark spoolcapd UP: $(grep -v 'root' "$work/haproxy.err" | tail -n 5)"
echo "    backend    $SPOOLCAP_BACKEND    (tests/backend.py)"
echo "    spoolcapd  $SPOOLCAP_AGENT    spool in $spool (HAProxy's spop-check says UP)"
echo "    processor  $processor    (tests/receiver.py; spoolcapd --forward)"
echo "    HAProxy    http://$SPOOLCAP_FRONTEND/    (contrib/haproxy/haproxy.cfg)"

step "Sending a few requests through HAProxy"
url=http://$SPOOLCAP_FRONTEND
# req "WHAT" CURL-ARGS...: show the request, run it, show the answer.
req() {
	printf '    %-40s' "$1"
	shift
	curl -sS -o /dev/null -w '-> %{http_code}, %{size_download} bytes back\n' "$@"
}
head -c 50000 /dev/urandom >"$work/upload.bin"
req "GET  /hello?name=world" "$url/hello?name=world"
req "POST /orders (JSON, 36 bytes)" -H 'Content-Type: application/json' \
	--data '{"order":42,"items":["tea","cake"]}' "$url/orders"
req "PUT  /upload (50,000 random bytes)" --data-binary @"$work/upload.bin" -X PUT "$url/upload"
req "GET  /report?size=100000" "$url/report?size=100000"
req "GET  /events (text/event-stream)" "$url/events"

# Stop HAProxy gracefully so every transaction is logged.
kill -USR1 "$haproxy_pid"
wait "$haproxy_pid" || true

step "HAProxy's log: one line per transaction, its unique id, SPOE error (- = none)"
grep ' uid=' "$work/haproxy.log" | sed 's/^[^[]*\[[^]]*\] //' | indent

step "spoolcap stat $spool   (the spool, read while spoolcapd runs)"
"$spoolcap" stat "$spool" | indent

step "What was captured: spoolcap dump (one event per SPOE message, NDJSON)"
"$spoolcap" dump "$spool" >"$work/dump.ndjson"
grep -o 'uid=[0-9a-f-]*' "$work/haproxy.log" | cut -d= -f2 >"$work/uids"
captured=0
python3 - "$work/dump.ndjson" "$work/uids" <<'EOF' | indent || captured=1
import base64, json, sys
events = [json.loads(l) for l in open(sys.argv[1])]
logged = [l.strip() for l in open(sys.argv[2]) if l.strip()]
req = {e["args"]["uid"]: e for e in events if e["message"] == "cap-req"}
res = {e["args"]["uid"]: e for e in events if e["message"] == "cap-res"}

def body(e):
    # "body" is text when it is valid UTF-8, else {"base64": ...}.
    a, b = e["args"], e["args"].get("body")
    got = len(base64.b64decode(b["base64"])) if isinstance(b, dict) else len((b or "").encode())
    return "%d of %d" % (got, a.get("bsize") or 0)

print("%-8s  %-6s %-10s %-16s %-6s %s" % ("uid", "method", "path", "request body", "status", "response body"))
for uid in logged:
    q, r = req.get(uid), res.get(uid)
    if not q or not r:
        print("%-8s  missing %s" % (uid[:8], "cap-req" if not q else "cap-res"))
        continue
    print("%-8s  %-6s %-10s %-16s %-6s %s" % (uid[:8], q["args"]["meth"], q["args"]["path"],
          body(q), r["args"]["status"], body(r)))
print("(bytes captured of the real size: the recipe sends at most 32 KiB of each")
print(" body, and does not wait for the body of a text/event-stream response)")

def short(v):
    if isinstance(v, str) and len(v) > 70:
        return v[:67] + "..."
    if isinstance(v, dict):
        return {k: short(x) for k, x in v.items()}
    if isinstance(v, list):
        return [short(x) for x in v]
    return v

print()
print("The POST's two events as spoolcap dump writes them (one line each; laid")
print("out here one argument per line, long strings cut):")
post = next((u for u in logged if u in req and req[u]["args"].get("meth") == "POST"), None)
for e in (req.get(post), res.get(post)):
    if not e:
        continue
    head = {k: v for k, v in e.items() if k != "args"}
    print(json.dumps(head)[:-1] + ', "args": {')
    for k, v in e["args"].items():
        print('    "%s": %s,' % (k, json.dumps(short(v))))
    print("}}")
ok = all(u in req and u in res for u in logged) and len(events) == 2 * len(logged)
print()
print("%d transactions logged by HAProxy; %d events in the spool: %s" % (
    len(logged), len(events), "one cap-req and one cap-res each" if ok else "MISMATCH"))
sys.exit(0 if ok else 1)
EOF

step "What the event processor received (spoolcapd --forward $processor)"
want=$(wc -l <"$work/dump.ndjson")
got=0
for _ in $(seq 100); do
	got=$(awk '$1 ~ /^2/ && $4 == "new"' "$work/receiver.rec" 2>/dev/null | wc -l)
	[ "$got" -ge "$want" ] && break
	sleep 0.1
done
echo "    $got of the $want events in the spool were delivered (HTTP 2xx), in"
echo "    $(awk '{print $3}' "$work/receiver.rec" | sort -u | wc -l) NDJSON batches with an Idempotency-Key each:"
awk '{print $3}' "$work/receiver.rec" | sort -u | head -n 3 | indent
[ "$got" -ge "$want" ] || captured=1

kill -TERM "$agent_pid"
agent_rc=0
wait "$agent_pid" || agent_rc=$?
step "spoolcapd's log (status $agent_rc after SIGTERM)"
grep -vE ': accepted on |health check| 0 frames' "$work/spoolcapd.log" | sed 's/^[^ ]* //' | tail -n 10 | indent

step "Done"
cat <<EOF
    Everything above ran on loopback and has been stopped; the scratch
    directory is removed. spoolcapd ACKs each message once it is committed
    to the LMDB spool, and delivers the spool to the event processor in
    NDJSON batches (retried through outages: see README.md).
    The recipe: contrib/haproxy/haproxy.cfg and contrib/haproxy/capture.spoe.conf.
EOF
if [ "$captured" -ne 0 ] || [ "$agent_rc" -ne 0 ]; then
	die "the capture did not match the traffic, or spoolcapd failed (see above)"
fi
