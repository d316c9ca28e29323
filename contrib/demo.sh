#!/bin/bash
# demo.sh -- run the capture pipeline on loopback and show what it captured.
#
# Starts a small HTTP backend (tests/backend.py), spoolcapd, and HAProxy with
# the capture recipe in contrib/haproxy/ (unchanged; addresses come from the
# SPOOLCAP_* environment variables it documents), all on 127.0.0.1 with free
# ports; sends a few requests with curl; shows HAProxy's log, what the agent
# received, and stops everything it started.
#
# Usage: contrib/demo.sh [BUILDDIR]      (default: _build, as quickstart.sh
#        makes it; SPOOLCAPD and HAPROXY override the programs used)
# Needs: haproxy (2.6 or later), python3, curl.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
builddir=${1:-$top/_build}
spoolcapd=${SPOOLCAPD:-$builddir/src/spoolcapd}
haproxy=${HAPROXY:-$(command -v haproxy || echo /usr/sbin/haproxy)}

die() { echo "demo: $*" >&2; exit 1; }
[ -x "$spoolcapd" ] || die "$spoolcapd not found: build first (./quickstart.sh demo does it)"
[ -x "$haproxy" ] || die "haproxy not found: apt-get install haproxy (or set HAPROXY)"
command -v python3 >/dev/null || die "python3 not found: apt-get install python3"
command -v curl >/dev/null || die "curl not found: apt-get install curl"

bold=""; off=""
if [ -t 1 ]; then bold=$(printf '\033[1m'); off=$(printf '\033[0m'); fi
step() { printf '\n%s==> %s%s\n' "$bold" "$*" "$off"; }
indent() { sed 's/^/    /'; }

work=$(mktemp -d "${TMPDIR:-/tmp}/spoolcap-demo.XXXXXX")
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
export SPOOLCAP_FRONTEND=127.0.0.1:$(freeport)
export SPOOLCAP_AGENT=127.0.0.1:$(freeport)
export SPOOLCAP_SPOE_CONF=$top/contrib/haproxy/capture.spoe.conf

step "Starting a backend, spoolcapd and $("$haproxy" -v | head -n 1 | cut -d' ' -f1-3)"
python3 "$top/tests/backend.py" --listen 127.0.0.1:0 --port-file "$work/backend.port" 2>"$work/backend.log" &
pids+=($!)
"$spoolcapd" --foreground --listen "$SPOOLCAP_AGENT" --threads 2 --log-level debug 2>"$work/spoolcapd.log" &
agent_pid=$!
pids+=($agent_pid)
for _ in $(seq 100); do [ -s "$work/backend.port" ] && break; sleep 0.05; done
[ -s "$work/backend.port" ] || die "the backend did not start: $(cat "$work/backend.log")"
export SPOOLCAP_BACKEND=127.0.0.1:$(cat "$work/backend.port")
python3 "$top/tests/e2e.py" wait-port "$SPOOLCAP_AGENT" 10 ||
	die "spoolcapd did not start: $(tail -n 5 "$work/spoolcapd.log")"
# A stats socket (demo only) lets us wait for HAProxy's health check.
printf 'global\n    stats socket %s mode 600\n' "$work/haproxy.sock" >"$work/demo.cfg"
"$haproxy" -f "$top/contrib/haproxy/haproxy.cfg" -f "$work/demo.cfg" >"$work/haproxy.log" 2>"$work/haproxy.err" &
haproxy_pid=$!
pids+=($haproxy_pid)
python3 "$top/tests/e2e.py" wait-up "$work/haproxy.sock" be_capture cap1 30 >/dev/null ||
	die "HAProxy did not mark spoolcapd UP: $(grep -v 'root' "$work/haproxy.err" | tail -n 5)"
echo "    backend   $SPOOLCAP_BACKEND   (tests/backend.py)"
echo "    spoolcapd $SPOOLCAP_AGENT   (HAProxy's spop-check says UP)"
echo "    HAProxy   http://$SPOOLCAP_FRONTEND/   (contrib/haproxy/haproxy.cfg)"

step "Sending a few requests through HAProxy"
url=http://$SPOOLCAP_FRONTEND
# req "WHAT" CURL-ARGS...: show the request, run it, show the answer.
req() {
	printf '    %-44s' "$1"
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
echo "    Bodies are captured up to 32 KiB each, with their real sizes."

# Stop HAProxy gracefully so every transaction is logged, then the agent.
kill -USR1 "$haproxy_pid"; wait "$haproxy_pid" || true
kill -TERM "$agent_pid"; agent_rc=0; wait "$agent_pid" || agent_rc=$?

step "HAProxy's log: one line per transaction, with its unique id and the SPOE error (- = none)"
grep ' uid=' "$work/haproxy.log" | sed 's/^[^[]*\[[^]]*\] //' | indent

step "What spoolcapd received (one cap-req and one cap-res message per transaction)"
grep -E ' message cap-re[qs] uid=' "$work/spoolcapd.log" | sed 's/^[^ ]* //' | indent
uid=$(grep -m 1 -o 'uid=[0-9a-f-]*' "$work/haproxy.log" | cut -d= -f2)
nreq=$(grep -c ' message cap-req uid=' "$work/spoolcapd.log" || true)
nres=$(grep -c ' message cap-res uid=' "$work/spoolcapd.log" || true)
nlog=$(grep -c ' uid=' "$work/haproxy.log" || true)
errs=$(grep ' uid=' "$work/haproxy.log" | grep -vc 'spoe_err=- ' || true)
echo
echo "    $nlog transactions logged by HAProxy, $errs with an SPOE error;"
echo "    $nreq request and $nres response messages received by spoolcapd."
echo "    Transaction $uid appears in both:"
grep -h "$uid" "$work/haproxy.log" "$work/spoolcapd.log" | sed 's/^[^ ]* //' | indent

step "spoolcapd's own log (connections, HELLO negotiation, exit summary; status $agent_rc on SIGTERM)"
grep -vE ' message cap-re[qs] uid=| frame [A-Z-]+ len |: accepted on |health check| 0 frames' "$work/spoolcapd.log" |
	sed 's/^[^ ]* //' | tail -n 12 | indent

step "Done"
cat <<EOF
    Everything above ran on loopback and has been stopped. spoolcapd currently
    counts and acknowledges what it receives; the durable spool, delivery to
    an HTTP endpoint and the spoolcap CLI come next (see README.md, Status).
    The recipe: contrib/haproxy/haproxy.cfg and contrib/haproxy/capture.spoe.conf.
EOF
[ "$nreq" -eq "$nlog" ] && [ "$nres" -eq "$nlog" ] && [ "$errs" -eq 0 ] && [ "$agent_rc" -eq 0 ] ||
	die "the capture did not match the traffic (see above)"
