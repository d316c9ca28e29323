#!/bin/sh
# t-deploy-notify.sh -- spoolcapd speaks systemd's sd_notify protocol (TAP).
#
# tests/sdnotify.py plays systemd: spoolcapd runs with NOTIFY_SOCKET set,
# as under a Type=notify unit. Checks: READY=1 comes once, only when the
# listener already accepts connections (sdnotify.py connects the moment it
# sees it) and the spool is open, with a STATUS= line naming both; SIGTERM
# brings STOPPING=1 and an EXTEND_TIMEOUT_USEC that covers the stop bounds
# (ACK grace + forward stop-timeout), then exit 0; a start-up failure never
# says READY=1. SKIP when spoolcapd was built without libsystemd.
#
# Environment: top_srcdir, top_builddir (set by make check), PYTHON3,
# SPOOLCAPD, SPOOLCAP_KEEP_WORK (keep the scratch directory).
set -u
here=$(cd "$(dirname "$0")" && pwd)
top_srcdir=${top_srcdir:-$(cd "$here/.." && pwd)}
top_builddir=${top_builddir:-$(pwd)}
. "$top_srcdir/tests/lib.sh"

py=${PYTHON3:-}
[ -n "$py" ] || py=$(command -v python3) || skip_all "python3 not found (apt-get install python3)"
grep -q '^#define HAVE_SYSTEMD 1' "$top_builddir/config.h" 2>/dev/null ||
	skip_all "spoolcapd built without libsystemd (configure found no libsystemd-dev, or --without-systemd)"
agent=${SPOOLCAPD:-$top_builddir/src/spoolcapd}
[ -x "$agent" ] || bail "$agent not built"
workdir_new notify

# start NAME ARGS...: sdnotify.py on $work/NAME.sock, then spoolcapd ARGS
# with NOTIFY_SOCKET pointing at it; sets $npid, $apid.
start() {
	_n=$1
	shift
	"$py" "$top_srcdir/tests/sdnotify.py" --socket "$work/$_n.sock" --out "$work/$_n.out" \
		--probe "unix:$work/$_n.spop" 2>"$work/$_n.sdnotify.err" &
	npid=$!
	bg_add "$npid"
	for _i in $(seq 100); do [ -S "$work/$_n.sock" ] && break; sleep 0.05; done
	[ -S "$work/$_n.sock" ] || bail "sdnotify.py did not start: $(cat "$work/$_n.sdnotify.err")"
	NOTIFY_SOCKET=$work/$_n.sock "$agent" --listen "unix:$work/$_n.spop" --threads 1 "$@" \
		2>"$work/$_n.log" &
	apid=$!
	bg_add "$apid"
}

# wait_msg NAME WORD SECS: wait until a datagram holding the line WORD came.
wait_msg() {
	_t=$(( $3 * 10 ))
	while [ "$_t" -gt 0 ]; do
		"$py" - "$work/$1.out" "$2" <<'PY' && return 0
import json, sys
try:
    lines = open(sys.argv[1], encoding="utf-8").read().splitlines()
except FileNotFoundError:
    sys.exit(1)
sys.exit(0 if any(sys.argv[2] in json.loads(l)["msg"].split("\n") for l in lines) else 1)
PY
		_t=$((_t - 1))
		sleep 0.1
	done
	return 1
}

# check NAME PYTHON-EXPR DESCRIPTION: EXPR over m (datagrams, in order, each
# a list of lines) and recs (the JSON records) must be true.
check() {
	if "$py" - "$work/$1.out" "$2" <<'PY'
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1], encoding="utf-8")]
m = [r["msg"].split("\n") for r in recs]
def idx(word):
    return next((i for i, x in enumerate(m) if word in x), -1)
def val(prefix):
    return [l[len(prefix):] for x in m for l in x if l.startswith(prefix)]
sys.exit(0 if eval(sys.argv[2]) else 1)
PY
	then ok "$3"
	else
		not_ok "$3"
		diag_file "datagrams" "$work/$1.out"
	fi
}

echo "1..11"

# 1. spool only
start a --spool "$work/spool-a"
if wait_msg a READY=1 20; then ok "READY=1 received"; else not_ok "READY=1 received"; diag_file spoolcapd "$work/a.log"; fi
check a 'sum("READY=1" in x for x in m) == 1' "READY=1 sent once"
check a 'next(r for r in recs if "READY=1" in r["msg"].split("\n")).get("probe") == "ok"' \
	"the listener accepted a connection the moment READY=1 arrived"
check a 'any(s.startswith("capturing on unix:") and "spool '"$work"'/spool-a" in s for s in val("STATUS="))' \
	"STATUS names the listener and the spool"
if grep -q 'ready: I/O threads' "$work/a.log"; then ok "the log says ready too"; else not_ok "the log says ready too"; fi
stop_pid "$apid" TERM 20
if [ "$stop_rc" -eq 0 ]; then
	ok "SIGTERM: exit 0"
else
	not_ok "SIGTERM: exit 0 (got $stop_rc)"
	diag_file spoolcapd "$work/a.log"
fi
wait_msg a STOPPING=1 5 >/dev/null
check a 'idx("READY=1") < idx("STOPPING=1")' "STOPPING=1 after READY=1"
stop_pid "$npid" TERM 5

# 2. with delivery to a port nobody listens on (it retries; the stop waits
# for no POST but announces the bound)
port=$("$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
start b --spool "$work/spool-b" --forward "http://127.0.0.1:$port/ingest" --forward-stop-timeout 40s
if wait_msg b READY=1 20; then
	check b 'any("; forwarding" in s for s in val("STATUS="))' "STATUS says it forwards"
else
	not_ok "STATUS says it forwards (no READY=1)"
	diag_file spoolcapd "$work/b.log"
fi
stop_pid "$apid" TERM 60
if [ "$stop_rc" -eq 0 ]; then
	ok "SIGTERM with --forward: exit 0"
else
	not_ok "SIGTERM with --forward: exit 0 (got $stop_rc)"
	diag_file spoolcapd "$work/b.log"
fi
wait_msg b STOPPING=1 5 >/dev/null
check b 'val("EXTEND_TIMEOUT_USEC=") and int(val("EXTEND_TIMEOUT_USEC=")[0]) >= (2 + 40) * 1000000' \
	"EXTEND_TIMEOUT_USEC covers the ACK grace and the forward stop-timeout"
stop_pid "$npid" TERM 5

# 3. a start-up failure (the spool is a file) never says READY=1
: >"$work/not-a-dir"
start c --spool "$work/not-a-dir"
# It exits by itself; TERM only if it has not after 10 s.
for _i in $(seq 100); do
	case $(awk '{print $3}' "/proc/$apid/stat" 2>/dev/null) in Z|"") break ;; esac
	sleep 0.1
done
stop_pid "$apid" TERM 20
arc=$stop_rc
sleep 0.5    # let sdnotify.py write what it may have received
stop_pid "$npid" TERM 5
if [ "$arc" -eq 2 ] && ! grep -q 'READY=1' "$work/c.out" 2>/dev/null; then
	ok "start-up failure: exit 2, no READY=1"
else
	not_ok "start-up failure: exit 2, no READY=1 (exit $arc)"
	diag_file datagrams "$work/c.out"
	diag_file spoolcapd "$work/c.log"
fi
