#!/bin/bash
# t-receiver.sh -- self-test of tests/receiver.py, the scripted loopback
# event processor the delivery tests use (TAP). Drives it with curl: the
# delivery contract checks (content type, JSON, Idempotency-Key, gzip,
# chunked), the record file, duplicates in /_stats, every failure mode
# switched on through POST /_control and observed from the client side,
# a --control-file and a --script instance, and a clean stop on SIGTERM.
#
# Environment: top_srcdir (set by make check), PYTHON3, CURL,
# SPOOLCAP_KEEP_WORK (keep the scratch directory).
set -u
here=$(cd "$(dirname "$0")" && pwd)
top_srcdir=${top_srcdir:-$(cd "$here/.." && pwd)}
. "$top_srcdir/tests/lib.sh"

py=${PYTHON3:-}
[ -n "$py" ] || py=$(command -v python3) || skip_all "python3 not found (apt-get install python3)"
curl=${CURL:-}
[ -n "$curl" ] || curl=$(command -v curl) || skip_all "curl not found (apt-get install curl)"
workdir_new receiver
rx="$top_srcdir/tests/receiver.py"
U=0b7f3c2e-1d2a-4c61-9a55-3f0e8d7c6b5a

# start_rx NAME ARGS...: start a receiver; sets $pid, $port, $cport.
start_rx() {
	_n=$1
	shift
	"$py" "$rx" --listen 127.0.0.1:0 --port-file "$work/$_n.port" \
		--control-port-file "$work/$_n.cport" --verbose "$@" 2>"$work/$_n.err" &
	pid=$!
	bg_add "$pid"
	for _i in $(seq 100); do
		[ -s "$work/$_n.port" ] && [ -s "$work/$_n.cport" ] && break
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	[ -s "$work/$_n.port" ] || { diag_file receiver "$work/$_n.err"; bail "receiver.py did not start"; }
	port=$(cat "$work/$_n.port")
	cport=$(cat "$work/$_n.cport")
}

# events FIRST LAST: an NDJSON batch of spool $U
events() {
	for s in $(seq "$1" "$2"); do
		printf '{"id":"%s-%d","seq":%d,"message":"cap-req","args":{}}\n' "$U" "$s" "$s"
	done
}

# post FILE KEY [curl args...]: POST a batch; prints the HTTP status, sets $rc
# (curl's exit status). Headers are saved in $work/h.
post() {
	_f=$1 _k=$2
	shift 2
	"$curl" -sS -o "$work/body" -D "$work/h" -w '%{http_code}' \
		-H 'Content-Type: application/x-ndjson' -H "Idempotency-Key: $_k" \
		--data-binary "@$_f" "$@" "http://127.0.0.1:$port/events" 2>"$work/curl.err"
	rc=$?
}
ctl() {
	"$curl" -sS -o "$work/ctl.out" -w '%{http_code}' --data-binary "$1" \
		"http://127.0.0.1:${2:-$cport}/_control" 2>>"$work/curl.err"
}
# rx_stat EXPR: a python expression over s, the /_stats JSON (from the control port)
rx_stat() { "$curl" -sS "http://127.0.0.1:$cport/_stats" | "$py" -c 'import json, sys; s = json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"; }
is() { if [ "$2" = "$3" ]; then ok "$1"; else not_ok "$1 (got '$2', expected '$3')"; fi; }
rc_in() { # NAME RC ALLOWED...
	_name=$1 _rc=$2
	shift 2
	for _a in "$@"; do [ "$_rc" = "$_a" ] && { ok "$_name (curl exit $_rc)"; return; }; done
	not_ok "$_name (curl exit $_rc, expected one of $*)"
	diag_file curl "$work/curl.err" 3
}

echo "1..39"
start_rx main --record "$work/record"
ok "receiver listens on port $port (control port $cport)"

# ---- the delivery contract ----
events 1 3 >"$work/b1"
is "good batch: 200" "$(post "$work/b1" "$U-1-3")" 200
is "good batch recorded, one line per event" "$(cat "$work/record")" \
	"$(printf '200 %s-1 %s-1-3 new\n200 %s-2 %s-1-3 new\n200 %s-3 %s-1-3 new' "$U" "$U" "$U" "$U" "$U" "$U")"
is "wrong Content-Type: 415" "$("$curl" -sS -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' \
	-H "Idempotency-Key: $U-1-3" --data-binary "@$work/b1" "http://127.0.0.1:$port/")" 415
printf '{"id":"%s-4"}\n{"id":\n' "$U" >"$work/bad"
is "bad JSON: 400" "$(post "$work/bad" "$U-4-5")" 400
printf '{"id":"%s-4"}\n{"seq":5}\n' "$U" >"$work/noid"
is "event without an id: 400" "$(post "$work/noid" "$U-4-5")" 400
events 4 5 >"$work/b2"
is "wrong Idempotency-Key: 400" "$(post "$work/b2" "$U-4-6")" 400
is "missing Idempotency-Key: 400" "$("$curl" -sS -o /dev/null -w '%{http_code}' -H 'Content-Type: application/x-ndjson' \
	--data-binary "@$work/b2" "http://127.0.0.1:$port/")" 400
gzip -c "$work/b2" >"$work/b2.gz"
is "gzip batch: 200" "$(post "$work/b2.gz" "$U-4-5" -H 'Content-Encoding: gzip')" 200
is "zstd batch: 415 (no zstd in python's stdlib)" "$(post "$work/b2" "$U-4-5" -H 'Content-Encoding: zstd')" 415
events 6 7 >"$work/b3"
is "chunked batch: 200" "$(post "$work/b3" "$U-6-7" -H 'Transfer-Encoding: chunked')" 200
is "keep-alive: two batches on one connection" "$("$curl" -sS -o /dev/null -o /dev/null -w '%{http_code}%{num_connects} ' \
	-H 'Content-Type: application/x-ndjson' -H "Idempotency-Key: $U-6-7" --data-binary "@$work/b3" \
	"http://127.0.0.1:$port/a" "http://127.0.0.1:$port/b")" "2001 2000 "
is "duplicate batch: 200" "$(post "$work/b1" "$U-1-3")" 200
is "stats: duplicates counted" "$(rx_stat "s['duplicates']")" 7
is "stats: distinct ids" "$(rx_stat "s['distinct_ids']")" 7
is "stats: events accepted" "$(rx_stat "s['events_accepted']")" 14
is "record marks the duplicates" "$(grep -c ' dup$' "$work/record")" 7
is "unknown control command: 400" "$(ctl 'explode now')" 400

# ---- failure modes ----
is "control: refuse" "$(ctl refuse)" 200
post "$work/b1" "$U-1-3" >/dev/null
rc_in "refuse: connection refused" "$rc" 7
is "refuse: /_stats still on the control port" "$(rx_stat "s['mode']")" refuse
ctl ok >/dev/null
is "ok again: same port accepts" "$(post "$work/b1" "$U-1-3")" 200
ctl 'status 503 for 2' >/dev/null
is "status 503 for 2: 503, 503, then 200" \
	"$(post "$work/b1" "$U-1-3") $(post "$work/b1" "$U-1-3") $(post "$work/b1" "$U-1-3")" "503 503 200"
ctl 'status 401' >/dev/null
is "status 401 until changed" "$(post "$work/b1" "$U-1-3") $(post "$work/b1" "$U-1-3")" "401 401"
ctl 'retry-after 7' >/dev/null
is "retry-after: 429" "$(post "$work/b1" "$U-1-3")" 429
is "retry-after: Retry-After header" "$(tr -d '\r' <"$work/h" | sed -n 's/^Retry-After: //Ip')" 7
ctl reset >/dev/null
post "$work/b1" "$U-1-3" >/dev/null
rc_in "reset: connection reset" "$rc" 52 55 56
ctl 'stall 3' >/dev/null
post "$work/b1" "$U-1-3" --max-time 1 >/dev/null
rc_in "stall: curl --max-time 1 times out" "$rc" 28
ctl 'slow-body 3' >/dev/null
post "$work/b1" "$U-1-3" --max-time 1 >/dev/null
rc_in "slow-body: headers, then a timeout" "$rc" 28
is "slow-body: the status line arrived" "$(head -n 1 "$work/h" | tr -d '\r')" "HTTP/1.1 200 OK"
printf 'ok\nreject-ids %s-9 %s-20 with 413\n' "$U" "$U" >"$work/cmd"
ctl "@$work/cmd" >/dev/null
events 8 10 >"$work/b4"
is "reject-ids: 413 for a batch holding a chosen id" "$(post "$work/b4" "$U-8-10")" 413
events 11 12 >"$work/b5"
is "reject-ids: 200 for a batch without" "$(post "$work/b5" "$U-11-12")" 200
is "reject-ids: no event of the rejected batch delivered" \
	"$(awk '$1 == 200 {print $2}' "$work/record" | grep -c -e "-8\$" -e "-9\$" -e "-10\$")" 0
is "stats: requests by status" "$(rx_stat "s['by_status']['413'], s['by_status']['503'], s['by_status']['rst']")" "(1, 2, 1)"

stop_pid "$pid" TERM 5
is "SIGTERM: exit 0" "$stop_rc$stop_forced" 00

# ---- --control-file and --script ----
echo 'status 503' >"$work/ctl"
start_rx cf --control-file "$work/ctl"
is "control file: its mode applies" "$(post "$work/b1" "$U-1-3")" 503
echo 'refuse' >"$work/ctl.new" && mv "$work/ctl.new" "$work/ctl"
for _i in $(seq 50); do post "$work/b1" "$U-1-3" >/dev/null; [ "$rc" = 7 ] && break; sleep 0.1; done
rc_in "control file: refuse picked up" "$rc" 7
echo 'ok' >"$work/ctl.new" && mv "$work/ctl.new" "$work/ctl"
for _i in $(seq 50); do post "$work/b1" "$U-1-3" >/dev/null; [ "$rc" = 0 ] && break; sleep 0.1; done
is "control file: reopened while refusing (polled)" "$(post "$work/b1" "$U-1-3")" 200
stop_pid "$pid" TERM 5

printf "# a scripted outage\n0 status 503\n2 ok\n" >"$work/script"
start_rx sc --script "$work/script"
first=$(post "$work/b1" "$U-1-3")
for _i in $(seq 100); do [ "$(post "$work/b1" "$U-1-3")" = 200 ] && break; sleep 0.1; done
is "script: 503 at first, 200 once the script says ok" "$first $(post "$work/b1" "$U-1-3")" "503 200"
stop_pid "$pid" TERM 5
