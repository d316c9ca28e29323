# lib.sh -- helpers for the shell tests: TAP output, background processes
# stopped by PID, a scratch directory that is kept when something failed.
# Source it from a test script after setting $top_srcdir and $top_builddir.

tap_n=0
tap_failed=0
ok() { tap_n=$((tap_n + 1)); echo "ok $tap_n - $*"; }
not_ok() { tap_n=$((tap_n + 1)); tap_failed=$((tap_failed + 1)); echo "not ok $tap_n - $*"; }
diag() { echo "# $*"; }
# Indent a file's last lines as TAP comments (for failure reports).
diag_file() { [ -s "$2" ] && { diag "last lines of $1:"; tail -n "${3:-15}" "$2" | sed 's/^/#   /'; }; return 0; }
skip_all() { echo "1..0 # SKIP $*"; exit 0; }
bail() { echo "Bail out! $*"; exit 1; }

# Milliseconds since the epoch, and "N.N s" since a given value.
now_ms() { date +%s%3N; }
since() { awk -v a="$1" -v b="$(now_ms)" 'BEGIN { printf "%.1f s", (b - a) / 1000 }'; }

# Scratch directory under $TMPDIR (short paths: it holds unix sockets).
# Removed at exit when every test passed, kept (and named) otherwise.
workdir_new() {
	work=$(mktemp -d "${TMPDIR:-/tmp}/spoolcap-$1.XXXXXX") || bail "mktemp failed"
}

# Background processes are tracked by PID; cleanup stops what is left.
bg_pids=""
bg_add() { bg_pids="$bg_pids $1"; }
bg_forget() {
	_keep=""
	for _p in $bg_pids; do [ "$_p" = "$1" ] || _keep="$_keep $_p"; done
	bg_pids=$_keep
}

# stop_pid PID SIGNAL SECS: send SIGNAL, wait up to SECS for the process to
# exit, then SIGKILL it. Sets $stop_rc to its exit status (137 after a
# kill) and $stop_forced to 1 when SIGKILL was needed.
# shellcheck disable=SC2034 # stop_rc and stop_forced are for the caller
stop_pid() {
	stop_forced=0
	kill -s "$2" "$1" 2>/dev/null || true
	_t=$(( $3 * 10 ))
	while [ "$_t" -gt 0 ] && kill -0 "$1" 2>/dev/null; do
		# A zombie (exited, not yet reaped) still answers kill -0.
		case $(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) in Z|"") break ;; esac
		sleep 0.1
		_t=$((_t - 1))
	done
	if kill -0 "$1" 2>/dev/null && [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != Z ]; then
		stop_forced=1
		kill -s KILL "$1" 2>/dev/null || true
	fi
	wait "$1" 2>/dev/null
	stop_rc=$?
	bg_forget "$1"
}

cleanup() {
	_rc=$?
	for _p in $bg_pids; do kill -s TERM "$_p" 2>/dev/null || true; done
	for _p in $bg_pids; do stop_pid "$_p" TERM 5; done
	if [ -n "${work-}" ] && [ -d "$work" ]; then
		if [ "$_rc" -eq 0 ] && [ "$tap_failed" -eq 0 ] && [ -z "${SPOOLCAP_KEEP_WORK-}" ]; then
			rm -rf "$work"
		else
			diag "logs and configuration kept in $work"
		fi
	fi
	exit "$_rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# tap_from N WHAT COMMAND...: COMMAND (a helper that prints TAP lines
# numbered from its last argument) runs with $tap_n + 1 appended; its lines
# are counted in, and any of the N expected that it did not print is a
# failure (a crashed checker cannot pass).
tap_from() {
	_want=$1 _what=$2
	shift 2
	"$@" $((tap_n + 1)) >"$work/part.tap" 2>&1
	cat "$work/part.tap"
	_got=$(grep -c -E '^(not )?ok ' "$work/part.tap")
	tap_n=$((tap_n + _got))
	tap_failed=$((tap_failed + $(grep -c '^not ok' "$work/part.tap")))
	while [ "$_got" -lt "$_want" ]; do
		not_ok "$_what: check $((_got + 1)) of $_want did not run"
		_got=$((_got + 1))
	done
}

# stopped_ok PID SIGNAL SECS WHAT LOG: stop_pid, then one TAP line saying
# whether WHAT exited with status 0 on SIGNAL (else LOG's end is shown).
stopped_ok() {
	stop_pid "$1" "$2" "$3"
	if [ "$stop_rc" -eq 0 ] && [ "$stop_forced" -eq 0 ]; then
		ok "$4 exited 0 on SIG$2"
	else
		not_ok "$4 exited 0 on SIG$2 (status $stop_rc, killed: $stop_forced)"
		diag_file "$4" "$5"
	fi
}

# ---- HAProxy for the end-to-end tests (they define e2e(): tests/e2e.py) ----

# hap_select VERSION: sets $hap to a runnable HAProxy VERSION and $hap_got
# to the major.minor it reports. 2.6: the system's haproxy ($HAPROXY if
# set); 3.2 and 3.4: Debian unstable's and experimental's packages through
# tests/fetch-haproxy.sh, cached in $SPOOLCAP_TEST_CACHE (default
# $top_builddir/tests/.cache). Skips the test when that HAProxy cannot be
# had; returns 2 for another VERSION.
hap_select() {
	case $1 in
	2.6)
		hap=${HAPROXY:-}
		[ -n "$hap" ] || hap=$(command -v haproxy 2>/dev/null) || hap=/usr/sbin/haproxy
		[ -x "$hap" ] || skip_all "no haproxy at $hap (on Debian 12: apt-get install haproxy)"
		_origin="system package"
		;;
	3.2|3.4)
		[ "$1" = 3.2 ] && _suite=unstable || _suite=experimental
		_cache=${SPOOLCAP_TEST_CACHE:-$top_builddir/tests/.cache}/haproxy-$_suite
		_t0=$(now_ms)
		sh "$top_srcdir/tests/fetch-haproxy.sh" "$_suite" "$_cache" >"$work/fetch.out" 2>"$work/fetch.err"
		_rc=$?
		case $_rc in
		0) ;;
		3) skip_all "HAProxy $1 from Debian $_suite unavailable: $(tail -n 1 "$work/fetch.err")" ;;
		*) diag_file fetch-haproxy.sh "$work/fetch.err"; bail "tests/fetch-haproxy.sh $_suite failed (status $_rc)" ;;
		esac
		hap=$_cache/haproxy
		_origin="Debian $_suite, unpacked in $_cache ($(since "$_t0"))"
		;;
	*)
		return 2
		;;
	esac
	_v=$("$hap" -v 2>/dev/null | head -n 1)
	hap_got=$(echo "$_v" | sed -n 's/^HAProxy version \([0-9]*\.[0-9]*\).*/\1/p')
	[ -n "$hap_got" ] || bail "$hap does not run: $("$hap" -v 2>&1 | head -n 2)"
	diag "$_v ($_origin)"
	[ "$hap_got" = "$1" ] ||
		diag "NOTE: asked for HAProxy $1 but this is $hap_got (the Debian suite moved on); testing $hap_got"
}

# hap_config: free ports for the agent and the frontend, exported with the
# SPOE file's path for contrib/haproxy/haproxy.cfg (used unchanged), and
# $hap_cfg: that file preceded by $work/test.cfg, the test-only additions
# (HAProxy merges the global sections; "log global" copies the loggers
# defined so far): a stats socket, and a copy of the log in the ring "e2e"
# read through that socket, because HAProxy may drop lines written to
# stdout (see e2e.py ring).
hap_config() {
	SPOOLCAP_SPOE_CONF=$top_srcdir/contrib/haproxy/capture.spoe.conf
	SPOOLCAP_AGENT=127.0.0.1:$(e2e freeport)
	SPOOLCAP_FRONTEND=127.0.0.1:$(e2e freeport)
	export SPOOLCAP_SPOE_CONF SPOOLCAP_AGENT SPOOLCAP_FRONTEND
	cat >"$work/test.cfg" <<EOCFG
global
    stats socket $work/haproxy.sock mode 600 level admin
    log ring@e2e format raw local0
ring e2e
    format raw
    size 4194304
EOCFG
	hap_cfg="-f $work/test.cfg -f $top_srcdir/contrib/haproxy/haproxy.cfg"
}

# hap_start: starts $hap with $hap_cfg ($hap_pid; output in
# $work/haproxy.{log,err}) and waits until its spop-check has marked the
# agent UP and the frontend accepts; 0, or 1 with the reason in $work/up.out.
hap_start() {
	# shellcheck disable=SC2086
	"$hap" $hap_cfg >"$work/haproxy.log" 2>"$work/haproxy.err" &
	hap_pid=$!
	bg_add $hap_pid
	e2e wait-up "$work/haproxy.sock" be_capture cap1 30 >"$work/up.out" 2>&1 &&
		e2e wait-port "$SPOOLCAP_FRONTEND" 10 2>>"$work/up.out"
}
