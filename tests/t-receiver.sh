#!/bin/bash
# t-receiver.sh -- self-test of tests/receiver.py, the scripted loopback
# event processor the delivery tests use (TAP). Drives it with curl: the
# delivery contract checks (content type, JSON, Idempotency-Key, gzip,
# zstd, chunked, empty probe batches), the record files, duplicates in
# /_stats, every failure mode switched on through POST /_control and
# observed from the client side, a --control-file and a --script instance,
# HTTPS and mutual TLS with certificates from tests/mkcerts.sh, and a clean
# stop on SIGTERM.
#
# Environment: top_srcdir (set by make check), PYTHON3, CURL,
# SPOOLCAP_KEEP_WORK (keep the scratch directory).
set -u
here=$(cd "$(dirname "$0")" && pwd)
top_srcdir=${top_srcdir:-$(cd "$here/.." && pwd)}
. "$top_srcdir/tests/lib.sh"

py=${PYTHON3:-}
[ -n "$py" ] || py=$(command -v python3) || skip_all "python3 not found (apt-get install python3)"
# The interpreter itself, not a wrapper (a pyenv shim costs ~1 s a call).
py=$("$py" -c 'import sys; print(sys.executable)') || bail "$py does not run"
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

# post FILE KEY [curl args...]: POST a batch to $url (default the data port,
# plain HTTP); prints the HTTP status, sets $rc (curl's exit status).
# Headers are saved in $work/h.
post() {
	_f=$1 _k=$2
	shift 2
	"$curl" -sS -o "$work/body" -D "$work/h" -w '%{http_code}' \
		-H 'Content-Type: application/x-ndjson' -H "Idempotency-Key: $_k" \
		--data-binary "@$_f" "$@" "${url:-http://127.0.0.1:$port/events}" 2>"$work/curl.err"
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

echo "1..67"
start_rx main --record "$work/record" --record-events "$work/events"
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
is "unknown Content-Encoding: 415" "$(post "$work/b2" "$U-4-5" -H 'Content-Encoding: br')" 415
: >"$work/empty"
is "empty batch (probe) with any key: 200, accepted 0" \
	"$(post "$work/empty" "$U-probe") $(tr -d ' ' <"$work/body")" '200 {"accepted":0,"duplicates":0}'
gzip -c "$work/empty" >"$work/empty.gz"
is "empty batch without a key, gzip-encoded: 200" "$("$curl" -sS -o /dev/null -w '%{http_code}' \
	-H 'Content-Type: application/x-ndjson' -H 'Content-Encoding: gzip' \
	--data-binary "@$work/empty.gz" "http://127.0.0.1:$port/")" 200
events 6 7 >"$work/b3"
is "chunked batch: 200" "$(post "$work/b3" "$U-6-7" -H 'Transfer-Encoding: chunked')" 200
is "keep-alive: two batches on one connection" "$("$curl" -sS -o /dev/null -o /dev/null -w '%{http_code}%{num_connects} ' \
	-H 'Content-Type: application/x-ndjson' -H "Idempotency-Key: $U-6-7" --data-binary "@$work/b3" \
	"http://127.0.0.1:$port/a" "http://127.0.0.1:$port/b")" "2001 2000 "
is "duplicate batch: 200" "$(post "$work/b1" "$U-1-3")" 200
is "stats: duplicates counted" "$(rx_stat "s['duplicates']")" 7
is "stats: distinct ids" "$(rx_stat "s['distinct_ids']")" 7
is "stats: events accepted" "$(rx_stat "s['events_accepted']")" 14
is "stats: probes" "$(rx_stat "s['probes']")" 2
is "record marks the duplicates" "$(grep -c ' dup$' "$work/record")" 7
is "record-events: the event lines of the 2xx batches, as sent" \
	"$(cat "$work/b1" "$work/b2" "$work/b3" "$work/b3" "$work/b3" "$work/b1" | cksum)" "$(cksum <"$work/events")"
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
ctl 'delay 2 for 1' >/dev/null
before=$(rx_stat "s['events_accepted']")
post "$work/b1" "$U-1-3" --max-time 1 >/dev/null
rc_in "delay: no answer within 1 s" "$rc" 28
is "delay: the batch counts as delivered all the same" "$(rx_stat "s['events_accepted'] - $before")" 3
printf 'ok\nreject-ids %s-9 %s-20 with 413 %s-14 with 400\n' "$U" "$U" "$U" >"$work/cmd"
ctl "@$work/cmd" >/dev/null
events 8 10 >"$work/b4"
is "reject-ids: 413 for a batch holding a chosen id" "$(post "$work/b4" "$U-8-10")" 413
events 11 12 >"$work/b5"
is "reject-ids: 200 for a batch without" "$(post "$work/b5" "$U-11-12")" 200
events 13 15 >"$work/b6"
is "reject-ids: 400 for an id of the second group" "$(post "$work/b6" "$U-13-15")" 400
is "reject-ids: no event of the rejected batches delivered" \
	"$(awk '$1 == 200 {print $2}' "$work/record" | grep -c -e "-8\$" -e "-9\$" -e "-10\$" -e "-1[345]\$")" 0
is "reject-ids: the empty probe is not rejected" "$(post "$work/empty" "$U-probe")" 200
is "stats: reject-ids by id" "$(rx_stat "sorted(s['reject_ids'].items())")" \
	"[('$U-14', 400), ('$U-20', 413), ('$U-9', 413)]"
is "malformed reject-ids: 400" "$(ctl "reject-ids $U-1 with")$(ctl "reject-ids with 400")" 400400
is "stats: requests by status" "$(rx_stat "s['by_status']['413'], s['by_status']['503'], s['by_status']['rst']")" "(1, 2, 1)"

# ---- zstd (libzstd through ctypes), frames made by the zstd command ----
if command -v zstd >/dev/null 2>&1; then
	ctl clear >/dev/null
	zstd -q -c "$work/b2" >"$work/b2.zst"                      # content size in the header
	zstd -q -c <"$work/b2" >"$work/b2s.zst"                    # streamed: size unknown
	cat "$work/b2.zst" "$work/b2s.zst" >"$work/b22.zst"        # two frames
	head -c 70M /dev/zero | zstd -q -c >"$work/bomb.zst"       # 2 KB -> 70 MiB
	head -c 30 "$work/b2.zst" >"$work/trunc.zst"
	is "zstd batch (content size known): 200" "$(post "$work/b2.zst" "$U-4-5" -H 'Content-Encoding: zstd')" 200
	is "zstd batch (streamed, size unknown): 200" "$(post "$work/b2s.zst" "$U-4-5" -H 'Content-Encoding: zstd')" 200
	is "zstd batch of two frames: 200, 4 events" \
		"$(post "$work/b22.zst" "$U-4-5" -H 'Content-Encoding: zstd') $(tr -d ' ' <"$work/body")" \
		'200 {"accepted":4,"duplicates":4}'
	is "zstd bomb (70 MiB of zeros): 413" "$(post "$work/bomb.zst" "$U-1-1" -H 'Content-Encoding: zstd')" 413
	is "truncated zstd: 400" "$(post "$work/trunc.zst" "$U-4-5" -H 'Content-Encoding: zstd')" 400
	printf '' | zstd -q -c >"$work/empty.zst"
	is "empty zstd probe: 200" "$(post "$work/empty.zst" "$U-probe" -H 'Content-Encoding: zstd')" 200
else
	for _t in "known size" streamed "two frames" bomb truncated "empty probe"; do
		ok "# SKIP zstd $_t: no zstd command (apt-get install zstd)"
	done
fi

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

# ---- HTTPS and mutual TLS (certificates from tests/mkcerts.sh) ----
if sh "$top_srcdir/tests/mkcerts.sh" "$work/certs" 2>"$work/mkcerts.err"; then
	ok "mkcerts.sh made a CA, server and client certificates"
else
	not_ok "mkcerts.sh made a CA, server and client certificates"
	diag_file mkcerts.sh "$work/mkcerts.err"
fi
C=$work/certs
# tls HOST [curl args...]: post b1 over HTTPS to HOST:$port
tls() { _h=$1; shift; url=https://$_h:$port/ post "$work/b1" "$U-1-3" --cacert "$C/ca.pem" "$@"; }
start_rx tls --tls-cert "$C/server.pem" --tls-key "$C/server.key"
is "HTTPS: 200 for a client that trusts the CA" "$(tls 127.0.0.1)" 200
tls 127.0.0.1 --cacert "$C/ca2.pem" >/dev/null
rc_in "HTTPS: a client trusting another CA refuses the server" "$rc" 60
is "HTTPS: trusted through mkcerts.sh's hashed CA directory" \
	"$(url=https://127.0.0.1:$port/ post "$work/b1" "$U-1-3" --capath "$C/cadir")" 200
ctl refuse >/dev/null
ctl ok >/dev/null
is "HTTPS: still TLS once reopened after refuse" "$(tls localhost)" 200
stop_pid "$pid" TERM 5

start_rx wrongname --tls-cert "$C/wrongname.pem" --tls-key "$C/wrongname.key"
tls 127.0.0.1 >/dev/null
rc_in "HTTPS: a certificate for another host name is refused" "$rc" 60
stop_pid "$pid" TERM 5

start_rx mtls --tls-cert "$C/server.pem" --tls-key "$C/server.key" --tls-client-ca "$C/ca.pem"
is "mTLS: 200 with a client certificate signed by the CA (name localhost)" \
	"$(tls localhost --cert "$C/client.pem" --key "$C/client.key")" 200
tls 127.0.0.1 >/dev/null
rc_in "mTLS: no client certificate, no exchange" "$rc" 35 55 56
tls 127.0.0.1 --cert "$C/client2.pem" --key "$C/client2.key" >/dev/null
rc_in "mTLS: a client certificate from another CA, no exchange" "$rc" 35 55 56
"$curl" -sS -o /dev/null "http://127.0.0.1:$port/" 2>>"$work/curl.err"
rc_in "mTLS: plain HTTP on the TLS port, no exchange" "$?" 52 56
is "mTLS: failed handshakes counted, one batch delivered" \
	"$(rx_stat "s['tls_failures'], s['events_accepted']")" "(3, 3)"
stop_pid "$pid" TERM 5
is "mTLS: SIGTERM, exit 0" "$stop_rc$stop_forced" 00
