#!/bin/sh
# t-syslog.sh -- smoke test of --log-target syslog. glibc's syslog(3) always
# writes to /dev/log, so spoolcapd runs in a private user + mount namespace
# (unshare -rm) whose /dev is a tmpfs holding our own datagram socket as
# /dev/log (and the real null/zero/urandom). Checks the priority (facility
# local3 + level), the ident and pid, that nothing goes to stderr, and that
# logging goes on after SIGHUP (which reconnects to syslog). Skipped where
# unprivileged user namespaces are off.
set -u
: "${top_srcdir:=$(cd "$(dirname "$0")/.." && pwd)}"
: "${top_builddir:=$top_srcdir}"
. "$top_srcdir/tests/lib.sh"

daemon=${SPOOLCAPD:-$top_builddir/src/spoolcapd}
py=${PYTHON3:-python3}
[ -x "$daemon" ] || skip_all "no $daemon"
command -v "$py" >/dev/null 2>&1 || skip_all "no python3"
command -v unshare >/dev/null 2>&1 || skip_all "no unshare(1)"
unshare -rm true 2>/dev/null || skip_all "unprivileged user namespaces are not available"
workdir_new syslog

cat > "$work/sink.py" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
with open(sys.argv[2], "ab", buffering=0) as f:
    while True:
        d = s.recv(65536)
        f.write(d.rstrip(b"\0\n") + b"\n")
PY

cat > "$work/inner.sh" <<'SH'
# runs inside unshare -rm: private /dev with our /dev/log
set -e
w=$1 daemon=$2 py=$3
mkdir "$w/olddev"
mount --rbind /dev "$w/olddev"
mount -t tmpfs -o mode=755 none /dev
for n in null zero random urandom; do
	: > "/dev/$n"
	mount --bind "$w/olddev/$n" "/dev/$n"
done
"$py" "$w/sink.py" /dev/log "$w/syslog.txt" &
sink=$!
i=0; while [ ! -S /dev/log ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
"$daemon" --spool none --listen 127.0.0.1:0 --log-target syslog --log-facility local3 \
	2> "$w/stderr.txt" &
pid=$!
echo "$pid" > "$w/pid"
i=0; while ! grep -q ' ready' "$w/syslog.txt" 2>/dev/null && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
kill -HUP "$pid"
i=0; while ! grep -q 'reloaded\|not reloaded' "$w/syslog.txt" 2>/dev/null && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
kill -TERM "$pid"
wait "$pid"
echo "$?" > "$w/rc"
i=0; while ! grep -q 'stopped' "$w/syslog.txt" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
kill "$sink"
SH

unshare -rm sh "$work/inner.sh" "$work" "$daemon" "$py" > "$work/inner.log" 2>&1
pid=$(cat "$work/pid" 2>/dev/null)

# local3 = 19, info = 6: <19*8+6> = <158>
if grep -q "^<158>.*spoolcapd\[$pid\]: \[main\] spoolcapd .* ready" "$work/syslog.txt" 2>/dev/null; then
	ok "the ready line reaches syslog as local3.info with ident spoolcapd[$pid]"
else
	not_ok "the ready line reaches syslog as local3.info with ident spoolcapd[$pid]"
	diag_file syslog "$work/syslog.txt"
	diag_file inner "$work/inner.log"
fi
if grep -q "SIGHUP: delivery settings reloaded\|SIGHUP: no forward URL" "$work/syslog.txt" 2>/dev/null &&
   grep -q "^<158>.*\[main\] stopped" "$work/syslog.txt"; then
	ok "logging goes on after SIGHUP reconnects to syslog, up to 'stopped'"
else
	not_ok "logging goes on after SIGHUP reconnects to syslog, up to 'stopped'"
	diag_file syslog "$work/syslog.txt"
fi
if [ "$(cat "$work/rc" 2>/dev/null)" = 0 ]; then
	ok "spoolcapd exited 0 on SIGTERM"
else
	not_ok "spoolcapd exited 0 on SIGTERM (status $(cat "$work/rc" 2>/dev/null))"
fi
if [ ! -s "$work/stderr.txt" ]; then
	ok "nothing written to stderr with the syslog target"
else
	not_ok "nothing written to stderr with the syslog target"
	diag_file stderr "$work/stderr.txt"
fi
echo "1..$tap_n"
[ "$tap_failed" -eq 0 ]
