#!/bin/bash
# run-latency-bench.sh -- what capture and delivery cost HAProxy's clients.
#
# Starts, all on 127.0.0.1 with free ports: bench/sink-http as the
# application backend (answers GET with a 64-byte body) and again as the
# event receiver; spoolcapd --spool DIR --forward URL; HAProxy with
# contrib/haproxy/haproxy.cfg + capture.spoe.conf unchanged (addresses from
# the environment, as tests/e2e-haproxy.sh does) plus a second frontend
# without the SPOE filter. Then drives wrk, in one run:
#   baseline   the frontend without SPOE (same HAProxy, same backend)
#   healthy    the capture frontend, receiver up (events delivered)
#   down       the capture frontend, receiver killed (connection refused:
#              delivery backs off, events stay in the spool)
#   recovering the receiver restarted on the same port while traffic goes
#              on: latency while the backlog drains, and how long the
#              engine took to deliver it (bounded by RECOVERY_WAIT s);
#              spoolcapd runs with --forward-backoff-cap 2s so that it
#              retries within the phase (the default cap is 60 s)
# and prints requests/s and latency percentiles per phase, with the CPU
# each process used, SPOE errors in HAProxy's log, events received and the
# spool's backlog. Prints figures; asserts nothing. Everything is stopped
# by PID.
#
#   bench/run-latency-bench.sh [-t WRK_THREADS] [-c CONNS] [-d SECONDS]
#                              [-R RATE] [-- spoolcapd flags...]
#
# wrk is closed-loop (each connection sends its next request when the
# previous answer arrives) unless -R RATE: then each connection waits
# CONNS/RATE s before each request (wrk's delay() hook), which paces the
# total to at most RATE requests/s. Defaults: -t 2 -c 16 -d 20.
# Environment: top_builddir (default .), top_srcdir (default: this
# script's tree), SPOOLCAPD, SPOOLCAP (default: the build tree's), HAPROXY
# (default /usr/sbin/haproxy), WRK, RECOVERY_WAIT
# (default 90), BENCH_DIR (scratch directory, default under /var/tmp).
set -u
here=$(cd "$(dirname "$0")" && pwd)
top_srcdir=${top_srcdir:-$(cd "$here/.." && pwd)}
b=${top_builddir:-.}
agent=${SPOOLCAPD:-$b/src/spoolcapd}
cli=${SPOOLCAP:-$b/src/spoolcap}
sinkhttp=$b/bench/sink-http
hap=${HAPROXY:-/usr/sbin/haproxy}
wrk=${WRK:-$(command -v wrk || echo /usr/bin/wrk)}
py=${PYTHON3:-python3}
[ -x /usr/bin/python3 ] && [ -z "${PYTHON3:-}" ] && py=/usr/bin/python3
recovery_wait=${RECOVERY_WAIT:-90}
wthreads=2 conns=16 secs=20 rate=""
while getopts t:c:d:R:h o; do
	case $o in
	t) wthreads=$OPTARG ;;
	c) conns=$OPTARG ;;
	d) secs=$OPTARG ;;
	R) rate=$OPTARG ;;
	*) sed -n '2,31p' "$0" >&2; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
for x in "$agent" "$cli" "$sinkhttp" "$hap" "$wrk"; do
	[ -x "$x" ] || { echo "run-latency-bench: $x not found (make; make bench/sink-http; apt-get install haproxy wrk)" >&2; exit 2; }
done
forward=1
if ! "$agent" --help 2>&1 | grep -q -- '--forward-max'; then
	forward=0
	echo "run-latency-bench: this spoolcapd has no delivery yet (no --forward-max-* in --help):" >&2
	echo "  running baseline and capture (spool only); the receiver phases are skipped" >&2
fi
work=${BENCH_DIR:-$(mktemp -d /var/tmp/latency-bench.XXXXXX)}
mkdir -p "$work"
pids=""
cleanup() {
	for p in $pids; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	[ -n "${BENCH_DIR:-}" ] || rm -rf "$work"
}
trap cleanup EXIT
e2e() { "$py" "$top_srcdir/tests/e2e.py" "$@"; }
die() { echo "run-latency-bench: $*" >&2; exit 1; }

# ---- processes ----
wait_file() { for _ in $(seq 200); do [ -s "$1" ] && return 0; sleep 0.05; done; return 1; }

"$sinkhttp" --port-file "$work/backend.port" --get-body 64 >/dev/null 2>"$work/backend.err" &
backend_pid=$!
pids="$pids $backend_pid"
start_receiver() {     # [PORT]
	rm -f "$work/rx.port"
	"$sinkhttp" --listen "127.0.0.1:${1:-0}" --port-file "$work/rx.port" \
		>>"$work/rx.out" 2>>"$work/rx.err" &
	rx_pid=$!
	pids="$pids $rx_pid"
	wait_file "$work/rx.port" || die "the receiver did not start: $(cat "$work/rx.err")"
	rx_port=$(cat "$work/rx.port")
}
start_receiver
wait_file "$work/backend.port" || die "the backend did not start: $(cat "$work/backend.err")"

SPOOLCAP_SPOE_CONF=$top_srcdir/contrib/haproxy/capture.spoe.conf
SPOOLCAP_AGENT=127.0.0.1:$(e2e freeport)
SPOOLCAP_FRONTEND=127.0.0.1:$(e2e freeport)
SPOOLCAP_BACKEND=127.0.0.1:$(cat "$work/backend.port")
export SPOOLCAP_SPOE_CONF SPOOLCAP_AGENT SPOOLCAP_FRONTEND SPOOLCAP_BACKEND
plain=127.0.0.1:$(e2e freeport)

# The retry backoff is capped at 2 s (default 60 s) so that the receiver's
# return is noticed within the "recovering" phase; flags after -- override.
fwd=()
[ "$forward" = 1 ] && fwd=(--forward "http://127.0.0.1:$rx_port/events" --forward-backoff-cap 2s)
"$agent" --foreground --listen "$SPOOLCAP_AGENT" --spool "$work/spool" --log-level warn \
	"${fwd[@]}" "$@" 2>"$work/spoolcapd.log" &
agent_pid=$!
pids="$pids $agent_pid"
e2e wait-port "$SPOOLCAP_AGENT" 20 || die "spoolcapd did not start: $(tail -n 5 "$work/spoolcapd.log")"

# Bench-only additions: a stats socket before the recipe, and after it (so
# it inherits the recipe's "defaults") a frontend without the filter.
cat >"$work/pre.cfg" <<EOF
global
    stats socket $work/haproxy.sock mode 600 level admin
EOF
cat >"$work/post.cfg" <<EOF
frontend fe_plain
    bind $plain
    log-format "%ci:%cp [%tr] %ft %b/%s %TR/%Tw/%Tc/%Tr/%Ta %ST %B %tsc %{+Q}r"
    default_backend be_app
EOF
hap_cfg=(-f "$work/pre.cfg" -f "$top_srcdir/contrib/haproxy/haproxy.cfg" -f "$work/post.cfg")
"$hap" -c "${hap_cfg[@]}" >"$work/check.out" 2>&1 || die "haproxy -c failed: $(cat "$work/check.out")"
"$hap" "${hap_cfg[@]}" >"$work/haproxy.log" 2>"$work/haproxy.err" &
hap_pid=$!
pids="$pids $hap_pid"
e2e wait-up "$work/haproxy.sock" be_capture cap1 30 >/dev/null 2>"$work/up.err" ||
	die "the agent is not UP in HAProxy: $(cat "$work/up.err")"
e2e wait-port "$SPOOLCAP_FRONTEND" 10 || die "haproxy does not listen on $SPOOLCAP_FRONTEND"

# ---- measuring ----
cat >"$work/wrk.lua" <<'EOF'
local d = tonumber(os.getenv("WRK_DELAY_MS") or "0")
if d > 0 then
	function delay() return d end
end
function done(s, lat, req)
	local e = s.errors
	io.write(string.format('WRKJSON {"requests":%d,"duration_us":%d,"sock_errors":%d,' ..
		'"non2xx":%d,"p50":%d,"p90":%d,"p99":%d,"p999":%d,"max":%d,"mean":%.1f}\n',
		s.requests, s.duration, e.connect + e.read + e.write + e.timeout, e.status,
		lat:percentile(50), lat:percentile(90), lat:percentile(99), lat:percentile(99.9),
		lat.max, lat.mean))
end
EOF
delay_ms=0
[ -n "$rate" ] && delay_ms=$(( (conns * 1000 + rate - 1) / rate ))

cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }
rx_ticks() { if kill -0 "$rx_pid" 2>/dev/null; then cpu_ticks "$rx_pid"; else echo 0; fi; }
busy_ticks() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat; }
rx_events() { curl -s --max-time 2 "http://127.0.0.1:$rx_port/stats" 2>/dev/null |
	sed -n 's/.*"events":\([0-9]*\).*/\1/p'; }
# A top-level number of spoolcap stat --json: the first "KEY":N (nested
# objects, such as the dictionaries', come later and reuse some names)
stat_field() { "$cli" stat --json "$work/spool" 2>/dev/null |
	grep -o "\"$1\":[0-9]*" | head -n 1 | cut -d: -f2; }
pending() { local n; n=$(stat_field records); echo "${n:-?}"; }
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
ms_s() { echo "$(($1 / 1000)).$(printf '%03d' $(($1 % 1000)))"; }
# In the background while the receiver is back: when the first events
# arrive, and when the cursor passes what was spooled before the restart.
watch_catchup() {      # T0_MS LAST_SEQ_AT_RESTART
	local first="" c
	while [ $(( $(now_ms) - $1 )) -lt $((recovery_wait * 1000)) ]; do
		[ -z "$first" ] && [ "$(rx_events)" != 0 ] && first=$(( $(now_ms) - $1 ))
		c=$(stat_field cursor)
		if [ -n "$c" ] && [ "$c" -ge "$2" ]; then
			echo "${first:-$(( $(now_ms) - $1 ))} $(( $(now_ms) - $1 ))" >"$work/catchup"
			return
		fi
		sleep 0.05
	done
	echo "${first:--} -" >"$work/catchup"
}

rows=""
phase() {      # NAME HOST:PORT
	local name=$1 target=$2 l0 a0 h0 k0 b0 ev0 ev1 out row r0 r1
	l0=$(wc -l <"$work/haproxy.log")
	a0=$(cpu_ticks "$agent_pid"); h0=$(cpu_ticks "$hap_pid"); k0=$(cpu_ticks "$backend_pid")
	r0=$(rx_ticks)
	b0=$(busy_ticks)
	ev0=$(rx_events)
	out=$(TIMEFORMAT='WRKCPU %U %S'
		{ time WRK_DELAY_MS=$delay_ms "$wrk" -t "$wthreads" -c "$conns" -d "${secs}s" \
			-s "$work/wrk.lua" "http://$target/api/v1/items?id=42"; } 2>&1)
	ev1=$(rx_events)
	local a1 h1 k1 b1 spoe lines
	a1=$(cpu_ticks "$agent_pid"); h1=$(cpu_ticks "$hap_pid"); k1=$(cpu_ticks "$backend_pid")
	r1=$(rx_ticks)
	b1=$(busy_ticks)
	lines=$(tail -n +"$((l0 + 1))" "$work/haproxy.log" | grep -c . || true)
	spoe=$(tail -n +"$((l0 + 1))" "$work/haproxy.log" | grep -o 'spoe_err=[^ ]*' |
		grep -vc 'spoe_err=-$' || true)
	echo "$out" | grep -q WRKJSON || { echo "$out" >&2; die "wrk failed in phase $name"; }
	row=$("$py" - "$name" "$secs" "$(echo "$out" | sed -n 's/^WRKJSON //p')" \
		"$((a1 - a0))" "$((h1 - h0))" "$((k1 - k0))" "$((b1 - b0))" "$(getconf CLK_TCK)" \
		"${ev0:-}" "${ev1:-}" "$spoe" "$lines" "$(pending)" \
		"$(echo "$out" | sed -n 's/^WRKCPU //p')" "$((r1 - r0))" <<'EOF'
import json, sys
name, secs, js, ag, hp, bk, busy, tck, ev0, ev1, spoe, lines, pend, wcpu, rx = sys.argv[1:]
d = json.loads(js)
s = d["duration_us"] / 1e6
pct = lambda t: 100.0 * int(t) / int(tck) / s
w = sum(float(x) for x in wcpu.split()) if wcpu else 0.0
wp = 100.0 * w / s
other = max(0.0, pct(busy) - pct(ag) - pct(hp) - pct(bk) - pct(rx) - wp)
ev = str(int(ev1) - int(ev0)) if ev0 and ev1 else "-"
ms = lambda us: "%.2f" % (us / 1000.0)
print("| %s | %.0f | %s | %s | %s | %s | %s | %d | %s | %s | %.0f | %.0f | %.0f | %.0f | %.0f | %.0f | %s | %s |" % (
    name, d["requests"] / s, ms(d["p50"]), ms(d["p90"]), ms(d["p99"]), ms(d["p999"]),
    ms(d["max"]), d["non2xx"] + d["sock_errors"], spoe if name != "baseline" else "-",
    lines, pct(hp), pct(ag), pct(bk), pct(rx), wp, other, ev, pend))
EOF
)
	[ -n "$row" ] || die "no figures for phase $name"
	rows="$rows$row"$'\n'
}

echo "# HAProxy latency with capture, $(date -u +%FT%TZ), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# $("$hap" -v | head -n 1); wrk -t$wthreads -c$conns -d${secs}s$([ -n "$rate" ] && echo " paced to <= $rate req/s (delay ${delay_ms} ms per connection)" || echo " closed-loop"); backend and receiver: bench/sink-http"
echo "# spoolcapd ${fwd[*]:-(spool only)} $*"
# warm-up: connections, the agent's dictionary (trained after 4,000 messages)
WRK_DELAY_MS=0 "$wrk" -t 1 -c 4 -d 3s "http://$SPOOLCAP_FRONTEND/warmup" >/dev/null 2>&1
sleep 1

phase baseline "$plain"
phase healthy "$SPOOLCAP_FRONTEND"
if [ "$forward" = 1 ]; then
	kill "$rx_pid"
	wait "$rx_pid" 2>/dev/null
	pids=$(echo "$pids" | sed "s/ $rx_pid\b//")   # never signal a recycled pid
	sleep 1
	phase down "$SPOOLCAP_FRONTEND"
	# the receiver comes back while traffic goes on: the backlog drains
	# (as fast as the engine goes) on the same two CPUs as HAProxy
	backlog=$(pending)
	last=$(stat_field last_seq)
	start_receiver "$rx_port"
	watch_catchup "$(now_ms)" "${last:-0}" &
	watch_pid=$!
	phase recovering "$SPOOLCAP_FRONTEND"
	wait "$watch_pid"
fi
echo
echo "| phase | req/s | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | errors | SPOE errors | log lines | haproxy % | spoolcapd % | backend % | receiver % | wrk % | other % | events received | spool backlog after |"
echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
printf '%s' "$rows"
if [ "$forward" = 1 ]; then
	read -r first took <"$work/catchup"
	echo
	if [ "$took" != - ]; then
		rate="about $(( backlog * 1000 / (took - first + 1) )) events/s"
		[ $((took - first)) -lt 300 ] && rate="too fast to time with this polling"
		echo "recovering: receiver back on port $rx_port with $backlog events pending; first events delivered after $(ms_s "$first") s (the retry backoff then running), the backlog delivered $(ms_s "$took") s after the restart ($rate)"
	else
		echo "recovering: receiver back on port $rx_port with $backlog events pending; not caught up after $recovery_wait s (first events after ${first} ms)"
	fi
fi
echo "# load after: $(cut -d' ' -f1-3 /proc/loadavg)"
grep -E '\[(ALERT)\]' "$work/haproxy.err" | head -n 3 | sed 's/^/# haproxy said: /'
grep -E 'error|warn' "$work/spoolcapd.log" | tail -n 3 | sed 's/^/# spoolcapd said: /'
exit 0
