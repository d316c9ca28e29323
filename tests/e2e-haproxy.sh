#!/bin/sh
# e2e-haproxy.sh VERSION -- end-to-end test of the capture recipe (TAP).
#
# Runs the real HAProxy VERSION with contrib/haproxy/haproxy.cfg and
# capture.spoe.conf unchanged, in front of tests/backend.py, with spoolcapd
# as the SPOE agent, all on 127.0.0.1 with free ports. Sends N requests
# (default 1000; GET and POST/PUT with bodies from 0 to 100 KB) and checks
# that every request got the backend's answer, that HAProxy logged no SPOE
# error, that the agent received exactly one cap-req and one cap-res message
# per request (matched by unique id), and that both daemons stop cleanly.
#
# VERSION: 2.6  the system's haproxy (Debian 12), $HAPROXY if set
#          3.2  Debian unstable's package, via tests/fetch-haproxy.sh
#          3.4  Debian experimental's package, likewise
# Fetched packages are cached in $SPOOLCAP_TEST_CACHE (default
# $top_builddir/tests/.cache). When the Debian mirror cannot be reached the
# test prints "1..0 # SKIP" with the reason.
#
# Environment: top_srcdir, top_builddir (set by make check; default: the
# source tree and the current directory), HAPROXY, PYTHON3, SPOOLCAPD,
# SPOOLCAP_E2E_REQUESTS, SPOOLCAP_KEEP_WORK (keep the scratch directory).
set -u
here=$(cd "$(dirname "$0")" && pwd)
top_srcdir=${top_srcdir:-$(cd "$here/.." && pwd)}
top_builddir=${top_builddir:-$(pwd)}
. "$top_srcdir/tests/lib.sh"

version=${1-}
requests=${SPOOLCAP_E2E_REQUESTS:-1000}
conns=4
py=${PYTHON3:-}
[ -n "$py" ] || py=$(command -v python3) || skip_all "python3 not found (apt-get install python3)"
e2e() { "$py" "$top_srcdir/tests/e2e.py" "$@"; }
t_start=$(now_ms)
workdir_new "e2e-$version"

# ---- which haproxy ----
hap_select "$version" || { echo "usage: $0 2.6|3.2|3.4" >&2; exit 2; }
got=$hap_got

spoolcapd=${SPOOLCAPD:-$top_builddir/src/spoolcapd}
[ -x "$spoolcapd" ] || bail "$spoolcapd not found: build it first (make)"

echo "1..12"

# ---- the contrib configuration, unchanged; addresses via the environment ----
hap_config

# 1: configuration check. 3.x complains about running as root without
# chroot/user; that is the test environment, not the recipe.
# shellcheck disable=SC2086
if "$hap" -c $hap_cfg >"$work/check.out" 2>&1 &&
	! grep -E '\[(WARNING|ALERT)\]' "$work/check.out" | grep -vq -E 'as root|root user'; then
	ok "contrib configuration is valid for HAProxy $got, without warnings"
else
	not_ok "contrib configuration is valid for HAProxy $got, without warnings"
	diag_file "haproxy -c" "$work/check.out"
fi

# ---- start backend, agent, haproxy ----
"$py" "$top_srcdir/tests/backend.py" --listen 127.0.0.1:0 --port-file "$work/backend.port" \
	2>"$work/backend.log" &
backend_pid=$!
bg_add $backend_pid
"$spoolcapd" --foreground --listen "$SPOOLCAP_AGENT" --spool "$work/spool" --threads 2 \
	--dictionary-samples 500 --log-level info \
	2>"$work/spoolcapd.log" &
agent_pid=$!
bg_add $agent_pid
t0=$(now_ms)
while [ ! -s "$work/backend.port" ]; do
	kill -0 $backend_pid 2>/dev/null || { diag_file backend "$work/backend.log"; bail "backend.py exited"; }
	sleep 0.05
done
SPOOLCAP_BACKEND=127.0.0.1:$(cat "$work/backend.port")
export SPOOLCAP_BACKEND
if e2e wait-port "$SPOOLCAP_AGENT" 20 2>"$work/wait.err"; then
	ok "spoolcapd listens on $SPOOLCAP_AGENT"
else
	not_ok "spoolcapd listens on $SPOOLCAP_AGENT"
	diag_file spoolcapd "$work/spoolcapd.log"
	bail "spoolcapd did not start"
fi

if hap_start; then
	ok "haproxy serves $SPOOLCAP_FRONTEND, spop-check marked the agent UP ($(head -n 1 "$work/up.out"))"
else
	not_ok "haproxy serves $SPOOLCAP_FRONTEND, spop-check marked the agent UP"
	diag_file wait "$work/up.out"
	diag_file "haproxy stderr" "$work/haproxy.err"
	diag_file spoolcapd "$work/spoolcapd.log"
	bail "haproxy or the agent did not come up"
fi
diag "start-up: $(since "$t0")"

# ---- traffic ----
t0=$(now_ms)
if e2e load "${SPOOLCAP_FRONTEND##*:}" "$requests" "$conns" "$work/results.json" >"$work/load.out" 2>&1; then
	ok "$requests requests answered 200 by the backend, bodies intact: $(head -n 1 "$work/load.out")"
else
	not_ok "$requests requests answered 200 by the backend, bodies intact"
	sed 's/^/#   /' "$work/load.out"
fi
diag "traffic: $(since "$t0")"
# Every transaction is logged once its response is sent; wait for the
# lines (bounded), then copy the log ring before HAProxy stops.
e2e ring "$work/haproxy.sock" e2e "$work/haproxy-ring.log" "$requests" 30 >"$work/ring.out" 2>&1
diag "$(cat "$work/ring.out")"

# ---- stop HAProxy first (soft stop: finishes its streams, flushes logs) ----
t0=$(now_ms)
stopped_ok $hap_pid USR1 20 "haproxy (soft stop)" "$work/haproxy.err"

# ---- the agent: graceful exit on SIGTERM ----
stopped_ok $agent_pid TERM 20 spoolcapd "$work/spoolcapd.log"
diag "$(grep -o 'spool sink: .*' "$work/spoolcapd.log" | tail -n 1)"

# ---- what was captured: the log and the spool (6 TAP lines) ----
spoolcap=${SPOOLCAP:-$top_builddir/src/spoolcap}
"$spoolcap" dump "$work/spool" >"$work/events.ndjson" 2>"$work/dump.err" ||
	diag_file "spoolcap dump" "$work/dump.err"
tap_from 6 "e2e.py check" e2e check "$work/haproxy-ring.log" "$work/events.ndjson" "$requests"
stop_pid $backend_pid TERM 10
diag "shutdown: $(since "$t0")"

if [ "$tap_failed" -ne 0 ]; then
	diag_file "haproxy stderr" "$work/haproxy.err" 10
	diag "spoolcapd log (end):"
	tail -n 15 "$work/spoolcapd.log" | sed 's/^/#   /'
fi
grep -E '\[(WARNING|ALERT)\]' "$work/haproxy.err" |
	grep -v -E 'as root|root user|Proxy .* stopped|stopping' | head -n 5 | sed 's/^/# haproxy said: /'
diag "HAProxy $got: $(since "$t_start") in all"
[ "$tap_failed" -eq 0 ]
