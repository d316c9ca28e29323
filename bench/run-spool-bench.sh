#!/bin/bash
# run-spool-bench.sh -- spoolcapd with a real spool, under bench/spop-load:
#   1. messages/s and ACK latency for each durability mode (process, relaxed,
#      durable, receipt) with ~1 KB and ~8 KB messages: at full rate, then
#      paced at half that rate for latency;
#   2. bytes on disk per message with and without a zstd dictionary;
#   3. RSS of the agent while the spool grows to RECORDS records (default
#      10 million), sampled every 10 s: memory must stay flat.
# Prints figures; asserts nothing. Everything runs on 127.0.0.1 and is
# stopped by PID. Usage:
#   bench/run-spool-bench.sh [modes|disk|rss|all]     (default all)
# Environment: top_builddir (default .), SECONDS_PER_RUN (5), RECORDS
# (10000000), BENCH_DIR (a scratch directory; default under /var/tmp).
set -u
part=${1:-all}
b=${top_builddir:-.}
agent=$b/src/spoolcapd
cli=$b/src/spoolcap
load=$b/bench/spop-load
secs=${SECONDS_PER_RUN:-5}
records=${RECORDS:-10000000}
work=${BENCH_DIR:-$(mktemp -d /var/tmp/spool-bench.XXXXXX)}
for x in "$agent" "$cli" "$load"; do
	[ -x "$x" ] || { echo "run-spool-bench: $x not found (make first; top_builddir=$b)" >&2; exit 2; }
done
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
apid=""
cleanup() { [ -n "$apid" ] && kill "$apid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

start_agent() {     # extra flags...
	rm -rf "$work/spool"
	"$agent" --listen "127.0.0.1:$port" --spool "$work/spool" --threads 2 --log-level warn \
		"$@" 2>>"$work/agent.log" &
	apid=$!
	for _ in $(seq 100); do
		python3 -c "import socket; socket.create_connection(('127.0.0.1',$port),0.2)" 2>/dev/null && return 0
		sleep 0.05
	done
	echo "run-spool-bench: spoolcapd did not start:" >&2; tail "$work/agent.log" >&2; exit 1
}
stop_agent() { kill -TERM "$apid"; wait "$apid"; apid=""; }

# run LABEL SIZE RATE: prints one table row from spop-load --json.
run() {
	"$load" --connect "127.0.0.1:$port" -c 4 -p 20 -d "$secs" -w 1 -s "$2" ${3:+-r "$3"} -j \
		>"$work/out.json" 2>"$work/load.err" || { cat "$work/load.err" >&2; return 1; }
	python3 - "$1" "$work/out.json" <<'EOF'
import json, sys
d = json.load(open(sys.argv[2]))
l = d["lat_us"]
print("| %-34s | %9.0f | %7.1f | %7.0f | %7.0f | %7.0f | %6d |" % (
    sys.argv[1], d["rate"], d["mb_s"], l["p50"], l["p99"], l["p99_9"], d["errors"]))
EOF
	python3 -c "import json; print(int(json.load(open('$work/out.json'))['rate']))" >"$work/rate"
}

header() {
	echo "| run | msgs/s | MB/s | p50 us | p99 us | p99.9 us | errors |"
	echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
}

modes() {
	echo "## Durability modes (spop-load -c 4 -p 20, $secs s; half rate paced with -r)"
	header
	for size in 1024 8192; do
		for mode in process relaxed durable receipt; do
			start_agent --durability "$mode"
			run "$mode, ${size} B, full rate" "$size" ""
			half=$(( $(cat "$work/rate") / 2 ))
			[ "$half" -gt 0 ] && run "$mode, ${size} B, at $half/s" "$size" "$half"
			stop_agent
		done
	done
}

disk() {
	echo "## Bytes on disk per message (3 s of load at full rate, process mode)"
	echo "| message | dictionary | records | value bytes/msg | LMDB pages bytes/msg | ratio |"
	echo "| --- | --- | ---: | ---: | ---: | ---: |"
	for size in 1024 8192; do
		for dict in off on; do
			start_agent --dictionary "$dict" --dictionary-samples 2000
			"$load" --connect "127.0.0.1:$port" -c 4 -p 20 -d 3 -w 1 -s "$size" -j >/dev/null 2>&1
			stop_agent
			"$cli" stat --json "$work/spool" | python3 -c "
import json, sys
d = json.load(sys.stdin)
n = d['records'] or 1
print('| %d B | %s | %d | %.0f | %.0f | %.2fx |' % ($size, '$dict', d['records'], d['bytes'] / n,
      d['lmdb']['used_bytes'] / n, d['compression']['ratio'] or 0))"
		done
	done
}

rss() {
	echo "## Agent memory while the spool grows to $records records (~512 B messages)"
	echo "| records | spool file | VmRSS | RssAnon | RssFile |"
	echo "| ---: | ---: | ---: | ---: | ---: |"
	start_agent --max-size 64G
	"$load" --connect "127.0.0.1:$port" -c 4 -p 20 -d 100000 -w 0 -s 512 -j >/dev/null 2>&1 &
	lpid=$!
	while :; do
		sleep 10
		n=$("$cli" stat --json "$work/spool" | python3 -c 'import json,sys; print(json.load(sys.stdin)["records"])')
		f=$(du -h "$work/spool/data.mdb" | cut -f1)
		awk -v n="$n" -v f="$f" '/^VmRSS|^RssAnon|^RssFile/ {v[$1]=$2" kB"}
			END {printf "| %d | %s | %s | %s | %s |\n", n, f, v["VmRSS:"], v["RssAnon:"], v["RssFile:"]}' \
			"/proc/$apid/status"
		[ "$n" -ge "$records" ] && break
		kill -0 "$lpid" 2>/dev/null || break
	done
	kill "$lpid" 2>/dev/null
	wait "$lpid" 2>/dev/null
	stop_agent
}

echo "# spoolcapd spool benchmark, $(date -u +%FT%TZ), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
case $part in
modes) modes ;;
disk) disk ;;
rss) rss ;;
all) modes; disk; rss ;;
*) echo "usage: $0 [modes|disk|rss|all]" >&2; exit 2 ;;
esac
