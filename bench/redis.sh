#!/usr/bin/env bash
# bench/redis.sh: trim half of a Redis stream of ENTRIES (default 10 M)
# Papyra records by age while another client runs XADD back to back, on a
# throwaway redis-server. Prints the longest command the agent sent (the
# server's SLOWLOG, threshold 0), the trim time, and the writer's XADD
# p50/p99 during the trim next to the same without it. Targets: no
# command over 10 ms, XADD p99 within 2x of the baseline.
# Not a timed test: run it by hand and read the figures. 10 M entries
# need about 3 GB of memory and a few minutes to write.
# Other settings: TRIM_LIMIT=… DUTY_CYCLE=… bench/redis.sh
set -euo pipefail
cd "$(dirname "$0")/.."
command -v redis-server >/dev/null || make deps
export PAPYRA_BENCH_ENTRIES=${ENTRIES:-10000000}
export PAPYRA_BENCH_TRIM_LIMIT=${TRIM_LIMIT:-}
export PAPYRA_BENCH_DUTY_CYCLE=${DUTY_CYCLE:-}
go test -count=1 -run '^$' -bench 'BenchmarkTrimUnderLoad' -benchtime 1x -timeout 60m ./backends/redisstream/
