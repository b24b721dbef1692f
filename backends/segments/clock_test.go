package segments_test

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/papyra-compact/papyra-compact/backends"
	"github.com/papyra-compact/papyra-compact/config"
	"github.com/papyra-compact/papyra-compact/internal/testutil"
)

// TestBackend_SpecialTimestamps: segments whose timestamps carry no
// evidence of Papyra's monotonic clock (all Infinity, null, NaN,
// -Infinity, missing) are compacted exactly as Papyra's retention does
// (Infinity kept, the others dropped), checked against what Papyra 0.1.1
// left for the same lines; the clock guard fires only on a finite
// timestamp that looks like seconds since boot, and quotes the newest one.
func TestBackend_SpecialTimestamps(t *testing.T) {
	now := time.Unix(1795000000, 0) // of the edge fixtures
	ev := func(i string, ts string) string {
		if ts == "" {
			return `{"payload": {"i": ` + i + `}, "kind": "event"}` + "\n"
		}
		return `{"payload": {"i": ` + i + `}, "timestamp": ` + ts + `, "kind": "event"}` + "\n"
	}
	fixture := func(name string) (string, string) {
		in, err := os.ReadFile(testutil.Fixture(t, "edges/"+name+".input.jsonl"))
		if err != nil {
			t.Fatal(err)
		}
		want, err := os.ReadFile(testutil.Fixture(t, "edges/"+name+".papyra.jsonl"))
		if err != nil {
			t.Fatal(err)
		}
		return string(in), string(want)
	}
	tests := []struct {
		name     string
		in, want string // of each of two segments
		refuse   string // the newest timestamp the refusal must quote
	}{
		{name: "AllNaN", in: ev("1", "NaN") + ev("2", "NaN")},
		{name: "AllNegInfinity", in: ev("1", "-Infinity")},
		{name: "AllMissing", in: ev("1", "") + ev("2", "")},
		{name: "Mixed", in: ev("1", "null") + ev("2", "Infinity") + ev("3", "NaN") + ev("4", "") + ev("5", "Infinity"),
			want: ev("2", "Infinity") + ev("5", "Infinity")},
		{name: "InfinityAndBootClock", in: ev("1", "Infinity") + ev("2", "9254.5") + ev("3", "9253.27"), refuse: "9254.5"},
		{name: "NullAndBootClock", in: ev("1", "null") + ev("2", "12.125"), refuse: "12.125"},
	}
	for _, f := range []string{"ts-infinity", "ts-null", "ts-nan", "ts-neg-infinity"} {
		in, want := fixture(f)
		tests = append(tests, struct {
			name     string
			in, want string
			refuse   string
		}{name: "Fixture-" + f, in: in, want: want})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			active := lay(t, layout{1: tt.in, 0: tt.in})
			_, err := compactAt(t.Context(), newBackend(t, active, 1<<20, 5), config.Retention{MaxAgeSeconds: ptr(86400.0)}, now)
			if tt.refuse != "" {
				if !errors.Is(err, backends.ErrUnsafe) || !strings.Contains(err.Error(), "newest timestamp is "+tt.refuse+",") {
					t.Fatalf("compact: got %v, want a refusal quoting %s", err, tt.refuse)
				}
				if got := string(readStoreBytes(t, active)); got != tt.in+tt.in {
					t.Errorf("a refused store changed: %q", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("compact: %v", err)
			}
			if got := string(readStoreBytes(t, active)); got != tt.want+tt.want {
				t.Errorf("store after the run:\n%q\nwant (as Papyra's retention leaves it):\n%q", got, tt.want+tt.want)
			}
		})
	}
}
