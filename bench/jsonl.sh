#!/usr/bin/env bash
# bench/jsonl.sh: compaction time against cp of the same file, and peak
# RSS, for a 100 MB and a 1 GB Papyra-format store (about 5 M records at
# 1 GB, half expired). Not a timed test: run it by hand (make bench) and
# read the figures. Needs bin/papyra-compact (make build) and /usr/bin/time.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-bin/papyra-compact}
OUT=${OUT:-bench/out}
SIZES=${SIZES:-"100M 1G"}
NOW=1795000000
command -v /usr/bin/time >/dev/null || { apt-get install -y -qq time >/dev/null; }
mkdir -p "$OUT"
go build -o "$OUT/genstore" ./bench/genstore

bytes() { numfmt --from=iec "$1"; }
rss_of() { awk -F': ' '/Maximum resident set size/ {print $2}' "$1"; }
secs() { awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$1" | awk -F: '{ if (NF==3) print $1*3600+$2*60+$3; else print $1*60+$2 }'; }

printf '%-6s %12s %10s %8s %8s %12s %8s %10s %14s %10s\n' size records compact_s cp_s ratio cp+sync_s ratio MB/s rss_compact_MB rss_cp_MB
for size in $SIZES; do
	dir="$OUT/$size"
	rm -rf "$dir" && mkdir -p "$dir/data"
	"$OUT/genstore" -out "$dir/store.orig" -size "$(bytes "$size")" -now $NOW >/dev/null
	records=$(wc -l < "$dir/store.orig")
	cat > "$dir/compact.yaml" <<YAML
state_dir: $PWD/$dir/state
lock_dir: $PWD/$dir/lock
quarantine_dir: $PWD/$dir/quarantine
metrics:
  textfile: ""
defaults:
  grace_period: 0s
targets:
  - name: bench
    kind: jsonl
    path: $PWD/$dir/data/store.jsonl
    retention:
      max_age: 1d
YAML
	# Warm the page cache for both contenders alike.
	cat "$dir/store.orig" > /dev/null
	/usr/bin/time -v cp "$dir/store.orig" "$dir/cp.copy" 2> "$dir/cp.time"
	rm -f "$dir/cp.copy"; sync
	# The compaction fsyncs what it writes; so does this second copy, for a
	# like-for-like figure next to plain cp (which leaves dirty pages).
	/usr/bin/time -v sh -c 'cp "$1" "$2" && sync "$2"' sh "$dir/store.orig" "$dir/cp.copy" 2> "$dir/cpsync.time"
	rm -f "$dir/cp.copy"; sync
	cp "$dir/store.orig" "$dir/data/store.jsonl"
	cat "$dir/data/store.jsonl" > /dev/null
	/usr/bin/time -v "$BIN" run --config "$dir/compact.yaml" --now $NOW --no-progress > "$dir/run.out" 2> "$dir/run.time"
	ct=$(secs "$dir/run.time"); cpt=$(secs "$dir/cp.time"); cst=$(secs "$dir/cpsync.time")
	printf '%-6s %12s %10.2f %8.2f %8.2f %12.2f %8.2f %10.1f %14.1f %10.1f\n' "$size" "$records" "$ct" "$cpt" \
		"$(echo "$cpt / $ct" | bc -l)" "$cst" "$(echo "$cst / $ct" | bc -l)" "$(echo "$(bytes "$size") / 1048576 / $ct" | bc -l)" \
		"$(echo "$(rss_of "$dir/run.time") / 1024" | bc -l)" "$(echo "$(rss_of "$dir/cp.time") / 1024" | bc -l)"
	sed 's/^/    /' "$dir/run.out"
	rm -rf "$dir"
done
echo "ratio = copy time / compaction time (target >= 0.5); peak RSS target <= 64 MB"
