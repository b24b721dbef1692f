#!/usr/bin/env bash
# bench/jsonl.sh: compaction time against cp of the same file, and peak
# RSS, for a 100 MB and a 1 GB Papyra-format store (about 5 M records at
# 1 GB, half expired). Not a timed test: run it by hand (make bench) and
# read the figures. Needs bin/papyra-compact (make build) and /usr/bin/time.
#
# Each contender runs RUNS times, alternating, and the median is shown:
# on a VM the time of a 1 GB write swings by a factor of several from one
# run to the next (page allocation, writeback of the previous run), for cp
# as much as for the compaction. LAYOUTS: "ordered" is a store as Papyra
# writes it (timestamps rise through the file, so the expired half comes
# first); "shuffled" expires records at random, line by line, the worst
# case for the rewrite (see bench/genstore).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-bin/papyra-compact}
OUT=${OUT:-bench/out}
# Absolute from here on: the config below names the store by this path,
# and a relative one would be joined to $PWD a second time.
OUT=$(realpath -m "$OUT")
SIZES=${SIZES-"100M 1G"}
LAYOUTS=${LAYOUTS:-"ordered shuffled"}
RUNS=${RUNS:-3}
NOW=1795000000
command -v /usr/bin/time >/dev/null || { apt-get install -y -qq time >/dev/null; }
mkdir -p "$OUT"
go build -o "$OUT/genstore" ./bench/genstore

bytes() { numfmt --from=iec "$1"; }

# check_run fails the bench unless the run it just timed did the work:
# a summary that says records and bytes were removed, and a store that
# really holds that many fewer lines and bytes than the original. A run
# that compacted nothing (a wrong path, say) is not a figure.
check_run() {
	local dir=$1 records=$2 out removed reclaimed after kept size
	out=$(cat "$dir/run.out")
	removed=$(grep -o 'removed [0-9]*' <<<"$out" | head -1 | awk '{print $2}') || true
	reclaimed=$(grep -o 'reclaimed [0-9]*' <<<"$out" | head -1 | awk '{print $2}') || true
	kept=$(grep -o 'records [0-9]* -> [0-9]*' <<<"$out" | head -1 | awk '{print $4}') || true
	after=$(wc -l < "$dir/data/store.jsonl")
	size=$(stat -c %s "$dir/data/store.jsonl")
	if ! grep -q 'success' <<<"$out" || [ "${removed:-0}" -le 0 ] || [ "${reclaimed:-0}" -le 0 ] ||
		[ "$after" != "${kept:-}" ] || [ "$after" -ge "$records" ] || [ "$size" -ge "$(stat -c %s "$dir/store.orig")" ]; then
		echo "bench: the run did not do the work it times (removed ${removed:-none}, reclaimed ${reclaimed:-none}; store $after of $records lines, $size bytes):" >&2
		echo "$out" >&2
		exit 1
	fi
}
rss_of() { awk -F': ' '/Maximum resident set size/ {print $2}' "$1"; }
secs() { awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$1" | awk -F: '{ if (NF==3) print $1*3600+$2*60+$3; else print $1*60+$2 }'; }
median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

printf '%-5s %-9s %10s %9s %7s %7s %9s %7s %6s %7s %8s %12s\n' size layout records compact_s cp_s ratio cp+sync ratio rm_s ratio MB/s peak_RSS_MB
for size in $SIZES; do
	for layout in $LAYOUTS; do
		dir="$OUT/$size-$layout"
		rm -rf "$dir" && mkdir -p "$dir/data"
		"$OUT/genstore" -out "$dir/store.orig" -size "$(bytes "$size")" -now $NOW -layout "$layout" >/dev/null
		records=$(wc -l < "$dir/store.orig")
		cat > "$dir/compact.yaml" <<YAML
state_dir: $dir/state
lock_dir: $dir/lock
quarantine_dir: $dir/quarantine
metrics:
  textfile: ""
defaults:
  grace_period: 0s
targets:
  - name: bench
    kind: jsonl
    path: $dir/data/store.jsonl
    retention:
      max_age: 1d
YAML
		: > "$dir/cp.s"; : > "$dir/cpsync.s"; : > "$dir/rm.s"; : > "$dir/run.s"; : > "$dir/run.rss"
		for run in $(seq "$RUNS"); do
			# Warm the page cache for every contender alike.
			cat "$dir/store.orig" > /dev/null; sync
			/usr/bin/time -v cp "$dir/store.orig" "$dir/cp.copy" 2> "$dir/cp.time"
			rm -f "$dir/cp.copy"; sync
			# The compaction fsyncs what it writes; so does this second copy,
			# for a like-for-like figure next to plain cp (which leaves dirty
			# pages).
			/usr/bin/time -v sh -c 'cp "$1" "$2" && sync "$2"' sh "$dir/store.orig" "$dir/cp.copy" 2> "$dir/cpsync.time"
			# What deleting the replaced store costs, which a compaction
			# cannot skip and cp does not do.
			/usr/bin/time -v rm "$dir/cp.copy" 2> "$dir/rm.time"
			rm -rf "$dir/quarantine" "$dir/state"
			cp "$dir/store.orig" "$dir/data/store.jsonl"; sync
			cat "$dir/data/store.jsonl" > /dev/null
			/usr/bin/time -v "$BIN" run --config "$dir/compact.yaml" --now $NOW --no-progress > "$dir/run.out" 2> "$dir/run.time"
			check_run "$dir" "$records"
			secs "$dir/cp.time" >> "$dir/cp.s"
			secs "$dir/cpsync.time" >> "$dir/cpsync.s"
			secs "$dir/rm.time" >> "$dir/rm.s"
			secs "$dir/run.time" >> "$dir/run.s"
			rss_of "$dir/run.time" >> "$dir/run.rss"
		done
		ct=$(median < "$dir/run.s"); cpt=$(median < "$dir/cp.s"); cst=$(median < "$dir/cpsync.s"); rmt=$(median < "$dir/rm.s")
		rss=$(sort -n "$dir/run.rss" | tail -1)
		printf '%-5s %-9s %10s %9.2f %7.2f %7.2f %9.2f %7.2f %6.2f %7.2f %8.1f %12.1f\n' "$size" "$layout" "$records" "$ct" "$cpt" \
			"$(echo "$cpt / $ct" | bc -l)" "$cst" "$(echo "$cst / $ct" | bc -l)" "$rmt" "$(echo "($cst + $rmt) / $ct" | bc -l)" \
			"$(echo "$(bytes "$size") / 1048576 / $ct" | bc -l)" "$(echo "$rss / 1024" | bc -l)"
		echo "      runs (s): compact $(paste -sd' ' "$dir/run.s") | cp $(paste -sd' ' "$dir/cp.s") | cp+sync $(paste -sd' ' "$dir/cpsync.s") | rm $(paste -sd' ' "$dir/rm.s")"
		sed 's/^/      /' "$dir/run.out"
		rm -rf "$dir"
	done
done
echo "ratio = baseline time / compaction time, medians of $RUNS runs (target >= 0.5); rm_s = unlinking the synced copy, and its"
echo "ratio is that of cp + sync + rm, what any durable rewrite that frees the space must at least do; peak RSS target <= 64 MB"

# The hourly timer with and without min_reclaim: a SIM_SIZE store (ordered,
# spanning two days) under max_age 1d, run every hour for SIM_HOURS hours
# starting a day before the bench's now, so that each run expires about
# 1/48 of what the store held. Without min_reclaim every run rewrites the
# whole survivor file to free those 2%; with it (SIM_MIN_RECLAIM) runs
# that would free less are skipped and the expired records are removed
# together later. Bytes written are the survivor files the compactions
# wrote (the summary's "bytes … -> AFTER" of every run that compacted; a
# skipped run writes none); reclaimed is the sum of "reclaimed". The bench
# fails unless both series reclaimed bytes, the min_reclaim series skipped
# some runs and compacted in others, and every run succeeded.
SIM_SIZE=${SIM_SIZE:-100M}
SIM_HOURS=${SIM_HOURS:-24}
SIM_MIN_RECLAIM=${SIM_MIN_RECLAIM:-10%}
simulate() {
	local min=$1 dir="$OUT/sim" written=0 reclaimed=0 skipped=0 compacted=0 h now out after rec
	rm -rf "$dir" && mkdir -p "$dir/data"
	"$OUT/genstore" -out "$dir/data/store.jsonl" -size "$(bytes "$SIM_SIZE")" -now $NOW -layout ordered >/dev/null
	{
		printf 'state_dir: %s/state\nlock_dir: %s/lock\nquarantine_dir: %s/quarantine\nmetrics:\n  textfile: ""\n' "$dir" "$dir" "$dir"
		printf 'defaults:\n  grace_period: 0s\ntargets:\n  - name: sim\n    kind: jsonl\n    path: %s/data/store.jsonl\n' "$dir"
		[ -n "$min" ] && printf '    min_reclaim: "%s"\n' "$min"
		printf '    retention:\n      max_age: 1d\n'
	} > "$dir/compact.yaml"
	for h in $(seq "$SIM_HOURS"); do
		now=$((NOW - 86400 + 3600 * h))
		out=$("$BIN" run --config "$dir/compact.yaml" --now $now --no-progress 2>/dev/null) || {
			echo "bench: simulated run $h failed:" >&2; echo "$out" >&2; exit 1; }
		grep -q '^sim: success' <<<"$out" || { echo "bench: simulated run $h did not succeed: $out" >&2; exit 1; }
		rec=$(grep -o 'reclaimed [0-9]*' <<<"$out" | head -1 | awk '{print $2}')
		if grep -q 'compaction skipped below min_reclaim' <<<"$out"; then
			skipped=$((skipped + 1))
		elif [ "${rec:-0}" -gt 0 ]; then
			after=$(grep -o 'bytes [0-9]* -> [0-9]*' <<<"$out" | head -1 | awk '{print $4}')
			written=$((written + after)); compacted=$((compacted + 1))
		fi
		reclaimed=$((reclaimed + ${rec:-0}))
	done
	if [ "$reclaimed" -le 0 ] || [ "$compacted" -le 0 ] || { [ -n "$min" ] && [ "$skipped" -le 0 ]; }; then
		echo "bench: the simulation did no work to measure (min_reclaim ${min:-unset}: $compacted compactions, $skipped skips, $reclaimed bytes reclaimed)" >&2
		exit 1
	fi
	printf '%-12s %6d %6d %14d %14d %12.2f %10s\n' "${min:-unset}" "$compacted" "$skipped" "$written" "$reclaimed" \
		"$(echo "$written / $reclaimed" | bc -l)" "$(numfmt --to=iec "$(stat -c %s "$dir/data/store.jsonl")")"
	rm -rf "$dir"
}
if [ "$SIM_HOURS" -gt 0 ]; then
	echo
	echo "hourly timer on a $SIM_SIZE store, max_age 1d, $SIM_HOURS runs (each expires about 1/48 of the store):"
	printf '%-12s %6s %6s %14s %14s %12s %10s\n' min_reclaim rewrites skips bytes_written bytes_reclaimed written/recl final_size
	simulate ""
	simulate "$SIM_MIN_RECLAIM"
fi

