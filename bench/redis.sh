#!/usr/bin/env bash
# bench/redis.sh: trim Redis streams of five shapes by age while another
# client runs XADD back to back, on a throwaway redis-server, and print
# for each the longest commands the agent sent (the server's SLOWLOG,
# threshold 0), the trim time, the agent's heap growth during it, and the
# writer's XADD p50/p99 during the trim next to the same without it:
#   long       ENTRIES (default 10 M) Papyra records, half of them old,
#              quarantine off (the plan reads only what it removes);
#   scan       the same in the default mode (quarantine on: the plan
#              reads every entry);
#   large      LARGE (default 60) old records of LARGE_MB (default 10) MB,
#              then small fresh ones;
#   consumers  200,000 old records, one group of CONSUMERS (default
#              100,000) consumers with the newest 10,000 pending;
#   mixed      MIXED_SMALL (default 5,000) small old records, LARGE/2
#              large ones, MIXED_SMALL small, LARGE/2 large, then small
#              fresh ones: sizes in both orders.
# Bounds, each failing the shape: no command over 10 ms (for large and
# mixed, over twice what reading one large entry costs: no command can
# touch less than one entry; mixed prints apart, and excuses, only each
# read sized on small entries that first met large ones, which no client
# can avoid: Redis tells an entry's size only by returning it), XADD p99
# within 2x of the baseline or 0.25 ms above it (an XADD arriving during
# an agent step waits for it), and
# the trim removed what the shape makes old (no work measured is a
# failure). Not a timed test: run it by hand and read the figures. 10 M
# entries need about 3 GB of memory and a few minutes to write.
# The heap may grow by at most 128 MB (compaction streams; reading the
# large entries at once would be 600 MB; keeping 32 bytes per entry
# while scanning, as the plan once did, grew it by 262 MB at 2 M entries).
# Other settings: SHAPES="long large" TRIM_LIMIT=… DUTY_CYCLE=… bench/redis.sh
set -euo pipefail
cd "$(dirname "$0")/.."
command -v redis-server >/dev/null || make deps
export PAPYRA_BENCH_ENTRIES=${ENTRIES:-10000000}
export PAPYRA_BENCH_LARGE=${LARGE:-60}
export PAPYRA_BENCH_LARGE_MB=${LARGE_MB:-10}
export PAPYRA_BENCH_CONSUMERS=${CONSUMERS:-100000}
export PAPYRA_BENCH_MIXED_SMALL=${MIXED_SMALL:-5000}
export PAPYRA_BENCH_TRIM_LIMIT=${TRIM_LIMIT:-}
export PAPYRA_BENCH_DUTY_CYCLE=${DUTY_CYCLE:-}
go test -c -o /tmp/redisstream.bench.$$ ./backends/redisstream/
trap 'rm -f /tmp/redisstream.bench.$$' EXIT
status=0
for shape in ${SHAPES:-long scan large consumers mixed}; do
	echo "== shape $shape"
	scan=
	if [ "$shape" = scan ]; then
		shape=long scan=1
	fi
	PAPYRA_BENCH_SCAN=$scan PAPYRA_BENCH_SHAPE=$shape /tmp/redisstream.bench.$$ -test.run '^$' -test.bench 'BenchmarkTrimUnderLoad' -test.benchtime 1x -test.timeout 60m || status=1
done
exit $status
