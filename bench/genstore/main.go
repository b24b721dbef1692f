// Command genstore writes a Papyra-format JSON-lines store of a given size
// for the benchmarks: records as Papyra's JsonFilePersistence writes them
// ("kind" first, ", " and ": " separators, raw UTF-8), a mix of events,
// dead letters and audits, half of them expired relative to -now with
// max_age 1d, plus one corrupt line per 10,000 records.
//
// -layout ordered (the default) writes timestamps that rise through the
// file, as Papyra's processes append them (a second or two of jitter
// between writers): the expired half is the first half. -layout shuffled
// expires each record by a coin toss, so survivors and expired records
// alternate line by line: no real store looks like that, but it is the
// worst case for the rewrite, which then copies 2.5 M separate lines.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
)

func main() {
	out := flag.String("out", "store.jsonl", "output file")
	size := flag.Int64("size", 100<<20, "approximate size in bytes")
	now := flag.Float64("now", 1795000000, "the benchmark's now (Unix seconds)")
	layout := flag.String("layout", "ordered", "ordered or shuffled (see the package doc)")
	flag.Parse()
	if *layout != "ordered" && *layout != "shuffled" {
		fmt.Fprintf(os.Stderr, "genstore: -layout %q: want ordered or shuffled\n", *layout)
		os.Exit(2)
	}
	f, err := os.Create(*out)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	rng := rand.New(rand.NewPCG(1, 2))
	var n, written int64
	for written < *size {
		var ts float64
		if *layout == "ordered" {
			// From now-2d to now across the file, give or take two seconds.
			ts = *now - 2*86400 + 2*86400*float64(written)/float64(*size) - 2*rng.Float64()
		} else {
			ts = *now - 3600*rng.Float64()
			if rng.IntN(2) == 0 {
				ts = *now - 10*86400 - 86400*rng.Float64()
			}
		}
		t := strconv.FormatFloat(ts, 'f', 6, 64)
		var line string
		switch k := n % 10; {
		case k < 7:
			line = fmt.Sprintf(`{"kind": "event", "system_id": "local", "actor_address": {"system": "local", "actor_id": %d}, "event_type": "ActorStarted", "payload": {"reason": null, "i": %d, "note": "é"}, "timestamp": %s}`, n%997, n, t)
		case k < 9:
			line = fmt.Sprintf(`{"kind": "dead_letter", "system_id": "local", "target": {"system": "local", "actor_id": %d}, "message_type": "str", "payload": "late %d", "timestamp": %s}`, n%997, n, t)
		default:
			line = fmt.Sprintf(`{"kind": "audit", "system_id": "local", "timestamp": %s, "total_actors": 10, "alive_actors": 9, "stopping_actors": 0, "restarting_actors": 1, "registry_size": 10, "registry_orphans": [], "registry_dead": ["x"], "dead_letters_count": %d}`, t, n%50)
		}
		if n%10000 == 9999 {
			line = `{"kind": "event", "torn`
		}
		c, _ := w.WriteString(line + "\n")
		written += int64(c)
		n++
	}
	if err := w.Flush(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if err := f.Close(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("%s: %d lines, %d bytes\n", *out, n, written)
}
