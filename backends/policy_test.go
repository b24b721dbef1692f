package backends_test

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/papyra-compact/papyra-compact/backends"
	"github.com/papyra-compact/papyra-compact/config"
)

func ptr[T any](v T) *T { return &v }

func TestPolicy_Limits(t *testing.T) {
	now := time.Unix(1795000000, 0)
	tests := []struct {
		name             string
		ret              config.Retention
		cutoff           float64
		hasAge           bool
		count            int64
		hasCount         bool
		bytes            int64
		hasBytes         bool
		cutoffTimeOffset time.Duration
	}{
		{name: "None"},
		{name: "Age", ret: config.Retention{MaxAgeSeconds: ptr(86400.5)}, cutoff: 1795000000 - 86400.5, hasAge: true, cutoffTimeOffset: -86400500 * time.Millisecond},
		{name: "AgeZero", ret: config.Retention{MaxAgeSeconds: ptr(0.0)}, cutoff: 1795000000, hasAge: true},
		{name: "CountZeroKeepsEverything", ret: config.Retention{MaxRecords: ptr[int64](0)}},
		{name: "Count", ret: config.Retention{MaxRecords: ptr[int64](7)}, count: 7, hasCount: true},
		{name: "BytesZeroKeepsNothing", ret: config.Retention{MaxTotalBytes: ptr[int64](0)}, hasBytes: true},
		{name: "Bytes", ret: config.Retention{MaxTotalBytes: ptr[int64](4096)}, bytes: 4096, hasBytes: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := backends.Policy{Retention: tt.ret, Now: now}
			if c, ok := p.AgeCutoff(); ok != tt.hasAge || c != tt.cutoff {
				t.Errorf("AgeCutoff() = %v, %v; want %v, %v", c, ok, tt.cutoff, tt.hasAge)
			}
			if ct, ok := p.AgeCutoffTime(); ok != tt.hasAge || (ok && !ct.Equal(now.Add(tt.cutoffTimeOffset))) {
				t.Errorf("AgeCutoffTime() = %v, %v; want %v, %v", ct, ok, now.Add(tt.cutoffTimeOffset), tt.hasAge)
			}
			if n, ok := p.CountLimit(); ok != tt.hasCount || n != tt.count {
				t.Errorf("CountLimit() = %d, %v; want %d, %v", n, ok, tt.count, tt.hasCount)
			}
			if n, ok := p.ByteLimit(); ok != tt.hasBytes || n != tt.bytes {
				t.Errorf("ByteLimit() = %d, %v; want %d, %v", n, ok, tt.bytes, tt.hasBytes)
			}
		})
	}
}

// TestPolicy_CheckClock: the guard fires only on evidence, a finite newest
// timestamp below MinUnixTime, and quotes it as it is.
func TestPolicy_CheckClock(t *testing.T) {
	age := backends.Policy{Retention: config.Retention{MaxAgeSeconds: ptr(3600.0)}}
	tests := []struct {
		name   string
		pol    backends.Policy
		newest float64
		quote  string // "" when the guard must not fire
	}{
		{"BootClock", age, 9253.27, "9253.27"},
		{"Zero", age, 0, "the newest timestamp is 0,"},
		{"Negative", age, -5.5, "-5.5"},
		{"JustBelow", age, backends.MinUnixTime - 0.001, "999999999.999"},
		{"UnixTime", age, 1795000000.5, ""},
		{"Boundary", age, backends.MinUnixTime, ""},
		{"NoFiniteTimestamp", age, math.Inf(-1), ""},
		{"OnlyInfinity", age, math.Inf(1), ""},
		{"NaN", age, math.NaN(), ""},
		{"NoAgeRetention", backends.Policy{Retention: config.Retention{MaxRecords: ptr[int64](3)}}, 9253.27, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.pol.CheckClock("/s", tt.newest, "do something else")
			if tt.quote == "" {
				if err != nil {
					t.Fatalf("CheckClock(%v) = %v, want nil", tt.newest, err)
				}
				return
			}
			if !errors.Is(err, backends.ErrUnsafe) {
				t.Fatalf("CheckClock(%v) = %v, want ErrUnsafe", tt.newest, err)
			}
			for _, want := range []string{tt.quote, "/s", "time_fn=time.time", "do something else", "seconds since boot"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %q", err, want)
				}
			}
		})
	}
}

func TestPolicy_FutureAndAges(t *testing.T) {
	now := time.Unix(1795000000, 0)
	p := backends.Policy{Now: now, MaxClockSkew: 5 * time.Minute}
	n := float64(now.Unix())
	tests := []struct {
		name   string
		ts     float64
		ok     bool
		future bool
		bucket int // index into Buckets; -1 Future, -2 Undated
	}{
		{"Now", n, true, false, 0},
		{"WithinSkew", n + 300, true, false, 0},
		{"JustPastSkew", n + 300.001, true, true, -1},
		{"Infinity", math.Inf(1), true, true, -1},
		{"NaN", math.NaN(), true, false, -2},
		{"MinusInfinity", math.Inf(-1), true, false, -2},
		{"Missing", 0, false, false, -2},
		{"AlmostAnHour", n - 3599.999, true, false, 0},
		{"AnHour", n - 3600, true, false, 1},
		{"ADay", n - 86400, true, false, 2},
		{"AWeek", n - 7*86400, true, false, 3},
		{"AMonth", n - 30*86400, true, false, 4},
		{"NinetyDays", n - 90*86400, true, false, 5},
		{"Epoch", 0, true, false, 5},
		{"FarPast", -1e300, true, false, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.ok {
				if got := p.Future(tt.ts); got != tt.future {
					t.Errorf("Future(%v) = %v, want %v", tt.ts, got, tt.future)
				}
			}
			var a backends.Ages
			a.Add(p, tt.ts, tt.ok, 7)
			want := backends.Ages{}
			switch tt.bucket {
			case -1:
				want.Future = backends.AgeCount{Records: 1, Bytes: 7}
			case -2:
				want.Undated = backends.AgeCount{Records: 1, Bytes: 7}
			default:
				want.Buckets[tt.bucket] = backends.AgeCount{Records: 1, Bytes: 7}
			}
			if a != want {
				t.Errorf("Add(%v): got %+v, want %+v", tt.ts, a, want)
			}
		})
	}
}

func TestStats_DebtTotal(t *testing.T) {
	s := backends.Stats{Debt: []backends.Debt{
		{Reason: backends.DebtHeldByGroup, Records: 5, Bytes: -1},
		{Reason: backends.DebtBelowMinReclaim, Records: 7, Bytes: 100},
	}}
	if r, b := s.DebtTotal(); r != 12 || b != 100 {
		t.Errorf("DebtTotal = %d, %d; want 12, 100 (unknown bytes not summed)", r, b)
	}
}
