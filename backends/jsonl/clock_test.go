package jsonl_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/papyra-compact/papyra-compact/backends"
	"github.com/papyra-compact/papyra-compact/config"
	"github.com/papyra-compact/papyra-compact/internal/testutil"
)

// edgeNow is "now" of the edge fixtures (testdata/fixtures/README.md).
var edgeNow = time.Unix(1795000000, 0)

// TestBackend_SpecialTimestamps: a store whose timestamps carry no
// evidence of Papyra's monotonic clock (all Infinity, null, NaN,
// -Infinity, missing, or a mix of them) is compacted exactly as Papyra's
// own compaction does (Infinity kept, the others dropped), checked against
// what Papyra 0.1.1 left; the clock guard fires only on a finite
// timestamp that looks like seconds since boot, and quotes the newest one.
func TestBackend_SpecialTimestamps(t *testing.T) {
	ev := func(i int, ts string) string {
		if ts == "" {
			return `{"kind": "event", "payload": {"i": ` + string(rune('0'+i)) + `}}`
		}
		return `{"kind": "event", "payload": {"i": ` + string(rune('0'+i)) + `}, "timestamp": ` + ts + `}`
	}
	tests := []struct {
		name    string
		fixture string // under testdata/fixtures/edges: input and Papyra's result
		in      string
		want    string
		refuse  string // the newest timestamp the refusal must quote
	}{
		{name: "AllInfinity", fixture: "ts-infinity"},
		{name: "AllNull", fixture: "ts-null"},
		{name: "NaNThenUnixTime", fixture: "ts-nan"},
		{name: "NegInfinityThenUnixTime", fixture: "ts-neg-infinity"},
		{name: "AllNaN", in: lines(ev(1, "NaN"), ev(2, "NaN")), want: ""},
		{name: "AllNegInfinity", in: lines(ev(1, "-Infinity"), ev(2, "-Infinity")), want: ""},
		{name: "AllMissing", in: lines(ev(1, ""), ev(2, "")), want: ""},
		{name: "Mixed", in: lines(ev(1, "null"), ev(2, "Infinity"), ev(3, "NaN"), ev(4, ""), ev(5, "-Infinity"), ev(6, "Infinity")),
			want: lines(ev(2, "Infinity"), ev(6, "Infinity"))},
		{name: "InfinityAndBootClock", in: lines(ev(1, "Infinity"), ev(2, "9254.5"), ev(3, "9253.27")), refuse: "9254.5"},
		{name: "NullAndBootClock", in: lines(ev(1, "null"), ev(2, "12.125")), refuse: "12.125"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in, want := tt.in, tt.want
			if tt.fixture != "" {
				in = read(t, testutil.Fixture(t, "edges/"+tt.fixture+".input.jsonl"))
				want = read(t, testutil.Fixture(t, "edges/"+tt.fixture+".papyra.jsonl"))
			}
			path := filepath.Join(t.TempDir(), "s.jsonl")
			write(t, path, in, 0o644)
			b := newBackend(t, path)
			ctx := context.Background()
			p, err := b.Plan(ctx, backends.Policy{Retention: config.Retention{MaxAgeSeconds: ptr(86400.0)}, Now: edgeNow})
			if tt.refuse != "" {
				if !errors.Is(err, backends.ErrUnsafe) || !strings.Contains(err.Error(), "newest timestamp is "+tt.refuse+",") {
					t.Fatalf("plan: got %v, want a refusal quoting %s", err, tt.refuse)
				}
				if got := read(t, path); got != in {
					t.Errorf("a refused store changed: %q", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("plan: %v", err)
			}
			defer p.Close()
			if _, err := b.Apply(ctx, p); err != nil {
				t.Fatalf("apply: %v", err)
			}
			if got := read(t, path); got != want {
				t.Errorf("store after the run:\n%q\nwant (as Papyra's compaction leaves it):\n%q", got, want)
			}
		})
	}
}
