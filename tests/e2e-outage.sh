#!/bin/sh
# e2e-outage.sh [--kill] [--compression none|gzip|zstd] VERSION -- delivery
# through an event-processor outage, end to end (TAP).
#
# HAProxy VERSION runs the contrib capture recipe unchanged in front of
# tests/backend.py; spoolcapd spools every message and forwards it to
# tests/receiver.py. While N requests (default 3000, so 2N events) flow
# through HAProxy, the receiver goes through each failure mode in turn,
# on command (POST /_control):
#   ok -> refuse -> 503 -> 429 Retry-After: 1 -> reset -> stall
#      -> 401 (paused) -> reject 3 chosen ids with 400 and one with 413 -> ok
# then the spool must drain. Checks: every seq of the spool reached the
# receiver with a 2xx except exactly the poison ids, which are the dead
# letters (rejected 3, too_large 1); every delivered copy is byte for byte
# `spoolcap dump`; each request's cap-req and cap-res were delivered (by
# unique id); HAProxy logged no SPOE error and spooled=1 for every request;
# spoolcapd exits 0 on SIGTERM. Duplicates are allowed and reported.
#
# --kill: spoolcapd is also SIGKILLed and restarted twice: in the 503
# phase, and in an extra phase before the last "ok" where the receiver
# accepts batches but answers only 1 s later (lost ACKs: duplicates).
# Requests that meet the dead agent lose their capture (HAProxy fails open
# and logs the SPOE error); everything HAProxy was told was spooled must
# still be delivered.
#
# VERSION is 2.6 (the system's haproxy), 3.2 or 3.4 (Debian unstable /
# experimental via tests/fetch-haproxy.sh; SKIP when unavailable), as in
# tests/e2e-haproxy.sh. Delivered records are retained (--retain 1h) so the
# drained spool can be compared with what was received.
#
# Environment: top_srcdir, top_builddir (set by make check), HAPROXY,
# PYTHON3, SPOOLCAPD, SPOOLCAP, SPOOLCAP_OUTAGE_REQUESTS (default 3000),
# SPOOLCAP_OUTAGE_PHASE (seconds per failure mode, default 2.5),
# SPOOLCAP_KEEP_WORK (keep the scratch directory).
set -u
here=$(cd "$(dirname "$0")" && pwd)
top_srcdir=${top_srcdir:-$(cd "$here/.." && pwd)}
top_builddir=${top_builddir:-$(pwd)}
. "$top_srcdir/tests/lib.sh"

kill_agent=0
compression=zstd
while [ $# -gt 1 ]; do
	case $1 in
	--kill) kill_agent=1; shift ;;
	--compression) compression=$2; shift 2 ;;
	*) break ;;
	esac
done
version=${1-}
requests=${SPOOLCAP_OUTAGE_REQUESTS:-3000}
phase=${SPOOLCAP_OUTAGE_PHASE:-2.5}
py=${PYTHON3:-}
[ -n "$py" ] || py=$(command -v python3) || skip_all "python3 not found (apt-get install python3)"
# The interpreter itself, not a wrapper (a pyenv shim costs ~1 s a call).
py=$("$py" -c 'import sys; print(sys.executable)') || bail "$py does not run"
e2e() { "$py" "$top_srcdir/tests/e2e.py" "$@"; }
outage() { "$py" "$top_srcdir/tests/outage.py" "$@"; }
t_start=$(now_ms)
name=outage-$version
[ $kill_agent -eq 1 ] && name=$name-kill
workdir_new "$name"

hap_select "$version" ||
	{ echo "usage: $0 [--kill] [--compression none|gzip|zstd] 2.6|3.2|3.4" >&2; exit 2; }
got=$hap_got

spoolcapd=${SPOOLCAPD:-$top_builddir/src/spoolcapd}
spoolcap=${SPOOLCAP:-$top_builddir/src/spoolcap}
for _p in "$spoolcapd" "$spoolcap"; do [ -x "$_p" ] || bail "$_p not found: build it first (make)"; done
"$spoolcapd" --help 2>&1 | grep -q -e '--forward-max-inflight' ||
	skip_all "this spoolcapd cannot forward yet (no --forward-max-inflight in --help)"

if [ $kill_agent -eq 1 ]; then echo "1..11"; else echo "1..17"; fi

# ---- configuration: the contrib recipe plus a stats socket and a log ring ----
hap_config

# ---- backend and receiver (ports from the kernel, via port files) ----
wait_file() { # FILE PID WHAT LOG
	while [ ! -s "$1" ]; do
		kill -0 "$2" 2>/dev/null || { diag_file "$3" "$4"; bail "$3 exited"; }
		sleep 0.05
	done
}
"$py" "$top_srcdir/tests/backend.py" --listen 127.0.0.1:0 --port-file "$work/backend.port" \
	2>"$work/backend.log" &
backend_pid=$!
bg_add $backend_pid
"$py" "$top_srcdir/tests/receiver.py" --port-file "$work/rx.port" --control-port-file "$work/rx.cport" \
	--record "$work/record" --record-events "$work/received.ndjson" --verbose 2>"$work/receiver.log" &
rx_pid=$!
bg_add $rx_pid
wait_file "$work/backend.port" $backend_pid backend.py "$work/backend.log"
wait_file "$work/rx.cport" $rx_pid receiver.py "$work/receiver.log"
wait_file "$work/rx.port" $rx_pid receiver.py "$work/receiver.log"
SPOOLCAP_BACKEND=127.0.0.1:$(cat "$work/backend.port")
export SPOOLCAP_BACKEND
rx_url=http://127.0.0.1:$(cat "$work/rx.port")/events
rx_ctl=http://127.0.0.1:$(cat "$work/rx.cport")

# ctl COMMAND...: one receiver command (through its control port)
ctl() {
	curl -sS -o "$work/ctl.out" --max-time 10 --data-binary "$*" "$rx_ctl/_control" 2>"$work/ctl.err" ||
		diag "receiver control '$*' failed: $(cat "$work/ctl.out" "$work/ctl.err")"
	echo "$(now_ms) $*" >>"$work/phases"
}

# ---- spoolcapd: short backoff so the test is quick, records retained ----
agent_runs=0
start_agent() {
	agent_runs=$((agent_runs + 1))
	"$spoolcapd" --foreground --listen "$SPOOLCAP_AGENT" --spool "$work/spool" --threads 2 \
		--dictionary-samples 500 --log-level info --retain 1h \
		--forward "$rx_url" --forward-batch-events 200 --forward-linger 50ms \
		--forward-max-inflight 2 --forward-backoff-base 50ms --forward-backoff-cap 500ms \
		--forward-timeout 2s --forward-compression "$compression" --forward-stop-timeout 2s \
		2>>"$work/spoolcapd.log" &
	agent_pid=$!
	bg_add $agent_pid
	e2e wait-port "$SPOOLCAP_AGENT" 20 2>>"$work/wait.err"
}
if start_agent; then
	ok "spoolcapd listens on $SPOOLCAP_AGENT, forwarding to $rx_url ($compression)"
else
	not_ok "spoolcapd listens on $SPOOLCAP_AGENT"
	diag_file spoolcapd "$work/spoolcapd.log"
	bail "spoolcapd did not start"
fi
# spool_field KEY: one field of `spoolcap stat --json`
spool_field() {
	"$spoolcap" stat "$work/spool" --json | "$py" -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"
}
uuid=$(spool_field uuid)

if hap_start; then
	ok "haproxy $got serves $SPOOLCAP_FRONTEND, spop-check marked the agent UP"
else
	not_ok "haproxy $got serves $SPOOLCAP_FRONTEND, spop-check marked the agent UP"
	diag_file wait "$work/up.out"
	diag_file "haproxy stderr" "$work/haproxy.err"
	bail "haproxy or the agent did not come up"
fi
diag "start-up: $(since "$t_start"); spool $uuid"

# ---- traffic, spread over the whole outage ----
# The phases below take 7 (8 with --kill) x $phase seconds after the first
# deliveries, plus about a second of commands and restarts each: traffic
# lasts about as long.
outage_secs=$(awk -v p="$phase" -v k=$kill_agent 'BEGIN { print p * (7 + k) + 5 + 2 * k }')
t0=$(now_ms)
outage traffic "${SPOOLCAP_FRONTEND##*:}" "$requests" 4 "$outage_secs" "$work/results.json" \
	>"$work/load.out" 2>&1 &
load_pid=$!
bg_add $load_pid

# kill_restart: SIGKILL spoolcapd while it works, start it again at once.
kill_restart() {
	stop_pid $agent_pid KILL 5
	if start_agent; then
		diag "spoolcapd SIGKILLed (status $stop_rc) and restarted (run $agent_runs)"
	else
		diag_file spoolcapd "$work/spoolcapd.log"
		bail "spoolcapd did not restart after SIGKILL"
	fi
}
# during SECS COMMAND: the receiver in COMMAND's mode for SECS seconds (in
# the --kill variant, half of them once it was killed and restarted).
during() {
	ctl "$2"
	if [ "$kill_agent" -eq 1 ] && [ -n "${3-}" ]; then
		sleep "$(awk -v s="$1" 'BEGIN { print s / 2 }')"
		kill_restart
		sleep "$(awk -v s="$1" 'BEGIN { print s / 2 }')"
	else
		sleep "$1"
	fi
}
# ok: until the first events are delivered (this also waits out a slow
# start of the traffic generator on a loaded machine).
ctl ok
outage wait "$spoolcap" "$work/spool" 60 delivered 200 >"$work/flowing.out" 2>&1
diag "traffic flowing: $(cat "$work/flowing.out")"
during "$phase" refuse
during "$phase" "status 503" kill
during "$phase" "retry-after 1"
during "$phase" reset
during "$phase" "stall 3"
ctl "status 401"
sleep 1
# The poison: ids pending now (nothing is delivered while 401 holds),
# rejected from here on whichever mode applies.
if outage poison "$spoolcap" "$work/spool" "$work/record" 3 "$work/poison.ndjson" >"$work/poison.ids" 2>"$work/poison.err"; then
	ctl "reject-ids $(head -n 1 "$work/poison.ids") with 400 $(tail -n 1 "$work/poison.ids") with 413"
	diag "poison ids (400): $(head -n 1 "$work/poison.ids" | sed "s/$uuid-//g"); (413): $(tail -n 1 "$work/poison.ids" | sed "s/$uuid-//g")"
else
	diag_file "outage.py poison" "$work/poison.err"
	: >"$work/poison.ndjson"
fi
during "$phase" "status 401"
# Killed while the receiver holds two accepted batches unanswered: their
# ACKs are lost, so they come again (duplicates, by design).
[ $kill_agent -eq 0 ] || during "$phase" "delay 1" kill
backlog=$(spool_field records)
upto=$(spool_field last_seq)
ctl ok
diag "outage scripted: $(since "$t0"); $backlog events pending when it ended"
outage wait "$spoolcap" "$work/spool" 120 delivered "$upto" >"$work/backlog.out" 2>&1
diag "the backlog, up to seq $upto: $(cat "$work/backlog.out")"

# ---- the traffic ends, the spool drains ----
wait $load_pid
load_rc=$?
bg_forget $load_pid
if [ "$load_rc" -eq 0 ]; then
	ok "$requests requests answered 200 by the backend: $(head -n 1 "$work/load.out")"
else
	not_ok "$requests requests answered 200 by the backend"
	sed 's/^/#   /' "$work/load.out"
fi
e2e ring "$work/haproxy.sock" e2e "$work/haproxy-ring.log" "$requests" 30 >"$work/ring.out" 2>&1
diag "$(cat "$work/ring.out")"
t0=$(now_ms)
if outage wait "$spoolcap" "$work/spool" 120 drained >"$work/drain.out" 2>&1; then
	ok "the spool drained: $(cat "$work/drain.out")"
else
	not_ok "the spool drained: $(cat "$work/drain.out")"
	diag_file spoolcapd "$work/spoolcapd.log"
fi

# ---- stop: haproxy first, then the agent (must exit 0), then the receiver ----
stopped_ok $hap_pid USR1 20 "haproxy (soft stop)" "$work/haproxy.err"
stopped_ok $agent_pid TERM 20 spoolcapd "$work/spoolcapd.log"
grep -o 'delivery: .*' "$work/spoolcapd.log" | tail -n 1 | sed 's/^/# /'
curl -sS --max-time 10 "$rx_ctl/_stats" >"$work/rxstats.json" 2>&1
stop_pid $rx_pid TERM 10
"$spoolcap" stat "$work/spool" --json >"$work/stat.json" 2>"$work/stat.err" || diag_file "spoolcap stat" "$work/stat.err"
"$spoolcap" dump "$work/spool" >"$work/dump.ndjson" 2>"$work/dump.err" || diag_file "spoolcap dump" "$work/dump.err"

# ---- what reached the receiver (5 TAP lines) ----
verify() {
	_k=
	[ $kill_agent -eq 1 ] && _k=--kill
	outage $_k verify "$1" "$requests" "$work/haproxy-ring.log" "$work/record" \
		"$work/received.ndjson" "$work/dump.ndjson" "$work/poison.ndjson" "$work/stat.json" \
		"$work/rxstats.json"
}
tap_from 5 "outage.py verify" verify

# ---- the HAProxy side, as in e2e-haproxy.sh (6 TAP lines); the captured
# events are the spool's records plus the dead letters ----
if [ $kill_agent -eq 0 ]; then
	cat "$work/dump.ndjson" "$work/poison.ndjson" >"$work/events.ndjson"
	tap_from 6 "e2e.py check" e2e check "$work/haproxy-ring.log" "$work/events.ndjson" "$requests"
fi
stop_pid $backend_pid TERM 10

if [ "$tap_failed" -ne 0 ]; then
	diag "spoolcapd log (end):"
	tail -n 15 "$work/spoolcapd.log" | sed 's/^/#   /'
fi
grep -E ' (warn|error) ' "$work/spoolcapd.log" | head -n 8 | sed 's/^/# spoolcapd said: /'
diag "HAProxy $got, $requests requests, compression $compression$([ $kill_agent -eq 1 ] && echo ", agent killed twice"): $(since "$t_start") in all"
[ "$tap_failed" -eq 0 ]
