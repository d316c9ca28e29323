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
