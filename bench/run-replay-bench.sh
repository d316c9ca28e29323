#!/bin/bash
# run-replay-bench.sh -- drain rate of the delivery engine: bench/replay-bench
# fills a fresh spool with EVENTS capture events (~1 KB SPOE messages, the
# daemon's write path) and times replay_run_until_drained() into
# bench/sink-http on 127.0.0.1, for every batch size x request compression
# x max-inflight; RUNS runs per configuration, the median row printed with
# the range of events/s. Prints a Markdown table; asserts nothing (a row
# whose receiver count disagrees says FAIL). Everything is stopped by PID.
#
#   bench/run-replay-bench.sh [-n EVENTS] [-r RUNS] [-b "100 500 2000"]
#                             [-c "none gzip zstd"] [-k "1 2"] [-s BYTES]
#                             [-t SINK_THREADS] [-q PCT]
#
# -q PCT: a run during which other processes used more than PCT% of a CPU
# is run again (3 tries at most). The spool is filled once and copied for
# every run, so each run drains the same records.
#
# Columns: events/s of the median run and the range over the runs; events
# per second of the engine's own CPU time (user + system of replay-bench
# while draining: what one core would do alone, the figure least disturbed
# by other load); MB/s of NDJSON and of request bodies as sent ("wire",
# HTTP headers not counted) and their ratio; POSTs; CPU of the engine, the
# receiver and every other process (100 = one CPU); check: the receiver
# counted every event and the spool has nothing pending.
#
# Environment: top_builddir (default .), TMPDIR (where spools go, default
# /var/tmp).
set -u
b=${top_builddir:-.}
bench=$b/bench/replay-bench
sinkhttp=$b/bench/sink-http
py=${PYTHON3:-python3}
[ -x /usr/bin/python3 ] && [ -z "${PYTHON3:-}" ] && py=/usr/bin/python3
events=200000 runs=3 batches="100 500 2000" comps="none gzip zstd" inflights="1 2" size=1024
sthreads=1 quiet=""
while getopts n:r:b:c:k:s:t:q:h o; do
	case $o in
	n) events=$OPTARG ;;
	r) runs=$OPTARG ;;
	b) batches=$OPTARG ;;
	c) comps=$OPTARG ;;
	k) inflights=$OPTARG ;;
	s) size=$OPTARG ;;
	t) sthreads=$OPTARG ;;
	q) quiet=$OPTARG ;;
	*) sed -n '2,28p' "$0" >&2; exit 2 ;;
	esac
done
for x in "$bench" "$sinkhttp"; do
	[ -x "$x" ] || { echo "run-replay-bench: $x not found (make bench/replay-bench bench/sink-http; top_builddir=$b)" >&2; exit 2; }
done
work=$(mktemp -d "${TMPDIR:-/var/tmp}/replay-bench-run.XXXXXX")
spid=""
cleanup() { [ -n "$spid" ] && kill "$spid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

"$sinkhttp" --port-file "$work/port" --threads "$sthreads" >"$work/sink.out" 2>"$work/sink.err" &
spid=$!
for _ in $(seq 100); do [ -s "$work/port" ] && break; sleep 0.05; done
[ -s "$work/port" ] || { echo "run-replay-bench: sink-http did not start:" >&2; cat "$work/sink.err" >&2; exit 1; }
url="http://127.0.0.1:$(cat "$work/port")/events"
"$bench" --fill-only -n "$events" --size "$size" --dir "$work" >"$work/master" 2>"$work/fill.err" ||
	{ echo "run-replay-bench: filling the spool failed:" >&2; cat "$work/fill.err" >&2; exit 1; }
master=$(cat "$work/master")

echo "# replay drain benchmark, $(date -u +%FT%TZ), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# $events events per run (${size}-byte SPOE messages; $(cat "$work/fill.err" | sed 's/^replay-bench: //')), $runs runs per row (median; range of events/s), sink-http $sthreads thread(s)"
echo
echo "| batch | compress | inflight | events/s (median) | range | events per engine CPU-s | NDJSON MB/s | wire MB/s | ratio | requests | engine % | receiver % | other % | check |"
echo "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"
status=0
for batch in $batches; do
	for comp in $comps; do
		for k in $inflights; do
			: >"$work/rows"
			for _ in $(seq "$runs"); do
				for try in 1 2 3; do
					rm -rf "$work/run"
					cp -a "$master" "$work/run"
					"$bench" --spool "$work/run" --url "$url" --sink-pid "$spid" \
						--batch "$batch" --compress "$comp" --inflight "$k" --json \
						>"$work/one" 2>"$work/bench.err" ||
						{ status=1; cat "$work/bench.err" >&2; }
					other=$(sed -n 's/.*"other_cpu_pct":\([0-9-]*\).*/\1/p' "$work/one")
					[ -z "$quiet" ] || [ -z "$other" ] || [ "$other" -le "$quiet" ] && break
					echo "  (batch $batch $comp inflight $k: other processes used $other% of a CPU; run again)" >&2
				done
				cat "$work/one" >>"$work/rows"
			done
			"$py" - "$batch" "$comp" "$k" "$work/rows" <<'EOF'
import json, sys
batch, comp, k, path = sys.argv[1:]
rows = [json.loads(l) for l in open(path) if l.startswith("{")]
if not rows:
    print("| %s | %s | %s | - | - | - | - | - | - | - | - | - | - | no result |" % (batch, comp, k))
    sys.exit(0)
rows.sort(key=lambda r: r["events_s"])
m = rows[len(rows) // 2]
rng = "%.0fk-%.0fk" % (rows[0]["events_s"] / 1e3, rows[-1]["events_s"] / 1e3)
note = ""
if comp != "none" and m["sink_encoded_posts"] == 0:
    note = " (not compressed)"
ok = all(r["check"] == "ok" for r in rows)
# events per second of the engine's own CPU time: robust to other load
per_cpu = sorted(r["events_s"] * 100.0 / r["engine_cpu_pct"] for r in rows if r["engine_cpu_pct"] > 0)
pc = "%.0f" % per_cpu[len(per_cpu) // 2] if per_cpu else "-"
print("| %s | %s%s | %s | %.0f | %s | %s | %.1f | %.1f | %.2fx | %d | %.0f | %.0f | %.0f | %s |" % (
    batch, comp, note, k, m["events_s"], rng, pc, m["ndjson_mb_s"], m["wire_mb_s"],
    m["ndjson_bytes"] / max(m["wire_bytes"], 1), m["requests"], m["engine_cpu_pct"],
    m["sink_cpu_pct"], m["other_cpu_pct"],
    "ok (%d/%d received)" % (m["sink_events"], m["events"]) if ok else "FAIL"))
EOF
		done
	done
done
echo
echo "# load after: $(cut -d' ' -f1-3 /proc/loadavg)"
exit $status
