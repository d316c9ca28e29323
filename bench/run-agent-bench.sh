#!/bin/sh
# run-agent-bench.sh -- start spoolcapd on a free loopback port, drive it with
# spop-load at full speed and then at half the rate reached, print the
# figures, and stop the agent by its PID. Used by `make bench`; see
# doc/benchmarks.md for what the figures mean and how they were taken.
#
# usage: run-agent-bench.sh [-c CONNS] [-p PIPELINE] [-T AGENT_THREADS]
#            [-t GEN_THREADS] [-d SECONDS] [-s BYTES] [-n RUNS] [-r RATE]
#            [-q PCT] [-S] [--sweep]
#            [-- extra spoolcapd flags]
#   -r RATE   also RUNS paced runs at RATE NOTIFY/s (e.g. 75000)
#   -S        store into a fresh spool under $TMPDIR (default: --spool none,
#             i.e. the counting sink); pass --durability etc. after --
#   -q PCT    repeat a run (3 tries at most) while other processes used
#             more than PCT% of a CPU during it (shared machines)
#   --sweep   instead: every -c {1,4,16,64} x -p {1,8,20,64} at agent
#             --threads 1 and 2, one short run each, as a table
# Columns: agent%, gen% and other% are the CPU used during the run by
# spoolcapd, spop-load and every other process (100 = one CPU), so a run
# disturbed by other work on the machine shows up as a high other%.
# Binaries: $SPOOLCAPD and $SPOP_LOAD, else $top_builddir/src/spoolcapd and
# $top_builddir/bench/spop-load (top_builddir defaults to the current dir).
set -u

conns=4 pipeline=20 athreads=1 gthreads=1 secs=10 size=1024 runs=3 sweep=0
fixed_rate='' quiet_pct='' spool=0
while [ $# -gt 0 ]; do
	case $1 in
	-c) conns=$2; shift 2 ;;
	-p) pipeline=$2; shift 2 ;;
	-T) athreads=$2; shift 2 ;;
	-t) gthreads=$2; shift 2 ;;
	-d) secs=$2; shift 2 ;;
	-s) size=$2; shift 2 ;;
	-n) runs=$2; shift 2 ;;
	-r) fixed_rate=$2; shift 2 ;;
	-q) quiet_pct=$2; shift 2 ;;
	-S) spool=1; shift ;;
	--sweep) sweep=1; shift ;;
	--) shift; break ;;
	-h|--help) sed -n '2,24s/^# \{0,1\}//p' "$0"; exit 0 ;;
	*) echo "run-agent-bench.sh: unknown option $1 (try --help)" >&2; exit 2 ;;
	esac
done

top_builddir=${top_builddir:-.}
agent_exe=${SPOOLCAPD:-$top_builddir/src/spoolcapd}
load_exe=${SPOP_LOAD:-$top_builddir/bench/spop-load}
for f in "$agent_exe" "$load_exe"; do
	if [ ! -x "$f" ]; then
		echo "run-agent-bench.sh: $f not found: run make first (or set SPOOLCAPD / SPOP_LOAD)" >&2
		exit 1
	fi
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/spoolcap-bench.XXXXXX") || exit 1
agent_pid=
stop_agent() {
	if [ -n "$agent_pid" ]; then
		kill -TERM "$agent_pid" 2>/dev/null
		wait "$agent_pid" 2>/dev/null
		agent_pid=
	fi
}
trap 'stop_agent; rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM

free_port() {
	if command -v python3 >/dev/null 2>&1; then
		python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
	else
		echo $((20000 + $$ % 20000))
	fi
}

# start_agent THREADS [flags...]: sets agent_pid and port
start_agent() {
	at=$1; shift
	port=$(free_port)
	spool_dir=none
	if [ $spool = 1 ]; then
		rm -rf "$tmp/spool"
		spool_dir=$tmp/spool
	fi
	"$agent_exe" --foreground --listen "127.0.0.1:$port" --threads "$at" \
		--spool "$spool_dir" "$@" >"$tmp/agent.log" 2>&1 &
	agent_pid=$!
	i=0
	while [ $i -lt 50 ]; do
		if ! kill -0 "$agent_pid" 2>/dev/null; then
			echo "run-agent-bench.sh: spoolcapd exited at start; its log:" >&2
			cat "$tmp/agent.log" >&2
			agent_pid=
			exit 1
		fi
		# bash and dash lack a portable connect test; ask the generator
		if "$load_exe" --connect "127.0.0.1:$port" -c 1 -d 0.01 -w 0 >/dev/null 2>&1; then
			return 0
		fi
		sleep 0.1
		i=$((i + 1))
	done
	echo "run-agent-bench.sh: spoolcapd does not answer on 127.0.0.1:$port; its log:" >&2
	cat "$tmp/agent.log" >&2
	exit 1
}

jget() {    # jget JSON KEY: a number from spop-load --json
	printf '%s\n' "$1" | sed -n "s/.*\"$2\":\([-0-9.e+]*\).*/\1/p"
}

# CPU time in clock ticks: all CPUs busy (from /proc/stat), and the agent
cpu_busy() {
	awk '/^cpu /{print $2 + $3 + $4 + $7 + $8 + $9; exit}' /proc/stat
}
cpu_agent() {
	awk '{print $14 + $15}' "/proc/$agent_pid/stat" 2>/dev/null || echo 0
}

# load ARGS...: one spop-load run: JSON line in $out, the agent's CPU and
# everyone else's (other processes sharing the machine) in $agent_pct and
# $other_pct (100 = one CPU busy for the whole run)
load() {
	b0=$(cpu_busy); a0=$(cpu_agent)
	out=$("$load_exe" --connect "127.0.0.1:$port" --json "$@" 2>"$tmp/load.err")
	b1=$(cpu_busy); a1=$(cpu_agent)
	if [ -s "$tmp/load.err" ]; then
		sed 's/^/  /' "$tmp/load.err" >&2
	fi
	# shellcheck disable=SC2046 # two numbers, split on purpose
	set -- $(awk -v b="$((b1 - b0))" -v a="$((a1 - a0))" -v hz="$hz" \
		-v g="$(jget "$out" cpu_s)" -v w="$(jget "$out" wall_s)" 'BEGIN {
		if (w <= 0) { print "- -"; exit }
		o = (b - a) / hz - g; if (o < 0) o = 0
		printf "%.0f %.0f\n", 100 * a / hz / w, 100 * o / w }')
	agent_pct=$1 other_pct=$2
}

# measure ARGS...: load, repeated while the machine was busy (-q)
measure() {
	tries=1
	load "$@"
	while [ -n "$quiet_pct" ] && [ "$tries" -lt 3 ] &&
	      [ "${other_pct:-0}" != - ] && [ "${other_pct:-0}" -gt "$quiet_pct" ]; do
		echo "  (other processes used ${other_pct}% of a CPU: run again)" >&2
		sleep 5
		load "$@"
		tries=$((tries + 1))
	done
}

row() {     # row LABEL: one table line from $out
	printf '%-22s %9s %8s %8s %8s %8s %9s %6s %6s %6s %6s\n' "$1" \
		"$(jget "$out" rate)" "$(jget "$out" p50)" "$(jget "$out" p90)" \
		"$(jget "$out" p99)" "$(jget "$out" p99_9)" "$(jget "$out" max)" \
		"$(jget "$out" errors)" "$agent_pct" "$(jget "$out" cpu_pct)" "$other_pct"
}

header() {
	printf '%-22s %9s %8s %8s %8s %8s %9s %6s %6s %6s %6s\n' "$1" "msgs/s" "p50 us" \
		"p90 us" "p99 us" "p99.9 us" "max us" "errors" "agent%" "gen%" "other%"
}

hz=$(getconf CLK_TCK 2>/dev/null || echo 100)
echo "machine: $(nproc) CPUs, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1), kernel $(uname -r)"
echo "load:   $(uptime | sed 's/.*load average/load average/')"

if [ $sweep = 1 ]; then
	for at in 1 2; do
		start_agent "$at" "$@"
		echo
		echo "spoolcapd --threads $at --spool $spool_dir $*; spop-load -t $gthreads -s $size -d $secs -w 1"
		header "conns x pipeline"
		for c in 1 4 16 64; do
			for p in 1 8 20 64; do
				measure -t "$gthreads" -c "$c" -p "$p" -s "$size" -d "$secs" -w 1
				row "-c $c -p $p"
			done
		done
		stop_agent
	done
	exit 0
fi

start_agent "$athreads" "$@"
echo "spoolcapd --threads $athreads --spool $spool_dir $*; spop-load -t $gthreads -c $conns -p $pipeline -s $size -d $secs -w 2; best of $runs"
echo
header "run"
best=0
i=1
while [ "$i" -le "$runs" ]; do
	measure -t "$gthreads" -c "$conns" -p "$pipeline" -s "$size" -d "$secs" -w 2
	row "full speed #$i"
	r=$(jget "$out" rate)
	r=${r%.*}
	if [ "${r:-0}" -gt "$best" ]; then
		best=$r
	fi
	i=$((i + 1))
done
if [ "$best" -le 0 ]; then
	echo "run-agent-bench.sh: no ACKs at full speed; agent log:" >&2
	tail -n 20 "$tmp/agent.log" >&2
	exit 1
fi
half=$((best / 2))
i=1
while [ "$i" -le "$runs" ]; do
	measure -t "$gthreads" -c "$conns" -p "$pipeline" -s "$size" -d "$secs" -w 2 --rate "$half"
	row "rate $half/s #$i"
	i=$((i + 1))
done
i=1
while [ -n "$fixed_rate" ] && [ "$i" -le "$runs" ]; do
	measure -t "$gthreads" -c "$conns" -p "$pipeline" -s "$size" -d "$secs" -w 2 --rate "$fixed_rate"
	row "rate $fixed_rate/s #$i"
	i=$((i + 1))
done
stop_agent
echo
echo "best full speed: $best NOTIFY+ACK/s; half-rate runs paced at $half/s"
echo "load:   $(uptime | sed 's/.*load average/load average/')"
