package jsonl_test

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/papyra-compact/papyra-compact/internal/testutil"
)

// TestMain doubles as the Papyra writer process of the concurrency and
// crash tests: with PAPYRA_TEST_APPENDER set, the test binary appends
// records and exits instead of running tests.
func TestMain(m *testing.M) {
	if spec := os.Getenv("PAPYRA_TEST_APPENDER"); spec != "" {
		os.Exit(appender(spec))
	}
	os.Exit(m.Run())
}

// appenderSpec is "path|writer id|records|pause between records|hold".
// With a hold, every fourth record is written that long after its open:
// Papyra's open-to-write gap, which a rename can fall into, so that the
// record lands on the replaced inode and only the drain can carry it.
func appenderSpec(path string, id, n int, pause, hold time.Duration) string {
	return fmt.Sprintf("%s|%d|%d|%s|%s", path, id, n, pause, hold)
}

// expiredAppend tells which appended records are written already expired
// (for a 1-day max_age): one in ten.
func expiredAppend(k int) bool { return k%10 == 9 }

// appender writes n numbered records exactly as Papyra's JSON backend
// does: open O_APPEND, one write, close, per record.
func appender(spec string) int {
	parts := strings.Split(spec, "|")
	id, _ := strconv.Atoi(parts[1])
	n, _ := strconv.Atoi(parts[2])
	pause, _ := time.ParseDuration(parts[3])
	hold, _ := time.ParseDuration(parts[4])
	for k := 0; k < n; k++ {
		ts := float64(time.Now().UnixNano()) / 1e9
		if expiredAppend(k) {
			ts -= 10 * 86400 // keeps every compaction busy with something to remove
		}
		line := appendedLine(id, k, ts)
		write := testutil.AppendPapyra
		if hold > 0 && k%4 == 3 {
			write = func(path string, line []byte) error { return appendHeld(path, line, hold) }
		}
		if err := write(parts[0], []byte(line)); err != nil {
			fmt.Fprintln(os.Stderr, "appender:", err)
			return 1
		}
		if pause > 0 {
			time.Sleep(pause)
		}
	}
	return 0
}

// appendedLine is record k of writer id as Papyra writes it.
func appendedLine(id, k int, ts float64) string {
	return fmt.Sprintf(`{"kind": "event", "system_id": "local", "actor_address": {"system": "local", "actor_id": %d}, "event_type": "ActorStarted", "payload": {"w": %d, "n": %d}, "timestamp": %s}`+"\n",
		id, id, k, strconv.FormatFloat(ts, 'f', 6, 64))
}

// appendHeld is testutil.AppendPapyra with a pause between the open and
// the write.
func appendHeld(path string, line []byte, hold time.Duration) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	time.Sleep(hold)
	_, err = f.Write(line)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// census counts what a store holds: seeded records by their "i", and
// appended records by writer and number.
type census struct {
	seeded   map[int]int
	appended map[[2]int]int
	other    int
}

func takeCensus(t *testing.T, path string) census {
	t.Helper()
	c := census{seeded: map[int]int{}, appended: map[[2]int]int{}}
	for _, l := range testutil.ReadLines(t, path) {
		var r struct {
			Payload struct {
				I    *int
				W, N *int
			}
		}
		if json.Unmarshal([]byte(l), &r) != nil {
			c.other++
			continue
		}
		switch {
		case r.Payload.W != nil && r.Payload.N != nil:
			c.appended[[2]int{*r.Payload.W, *r.Payload.N}]++
		case r.Payload.I != nil:
			c.seeded[*r.Payload.I]++
		default:
			c.other++
		}
	}
	return c
}

// missingAppended lists appended records inside retention that are absent
// from c (writers 0..w-1, n records each), and counts duplicates. Expired
// ones that are still present count as missing too: retention failed.
func (c census) missingAppended(w, n int) (missing []string, dups int) {
	for id := 0; id < w; id++ {
		for k := 0; k < n; k++ {
			got, want := c.appended[[2]int{id, k}], 1
			if expiredAppend(k) {
				want = 0
			}
			switch {
			case got == want:
			case want == 1 && got > 1:
				dups++
			default:
				missing = append(missing, fmt.Sprintf("w%d/n%d present %d times, want %d", id, k, got, want))
			}
		}
	}
	return missing, dups
}
