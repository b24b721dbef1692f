package agent

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/papyra-compact/papyra-compact/backends"
	"github.com/papyra-compact/papyra-compact/config"
)

func TestBelowMinReclaim(t *testing.T) {
	amount := func(a config.Amount) *config.Amount { return &a }
	plan := backends.Stats{RecordsBefore: 100, RemovedAge: 10, BytesBefore: 10_000, BytesAfter: 9_000} // frees 1,000
	tests := []struct {
		name  string
		min   *config.Amount
		stats backends.Stats
		skip  bool
	}{
		{"Unset", nil, plan, false},
		{"Zero", amount(config.Amount{}), plan, false},
		{"Under", amount(config.Amount{Bytes: 999}), plan, false},
		{"Exactly", amount(config.Amount{Bytes: 1_000}), plan, false},
		{"Over", amount(config.Amount{Bytes: 1_001}), plan, true},
		{"PercentExactly", amount(config.Amount{Percent: 10}), plan, false},
		{"PercentOver", amount(config.Amount{Percent: 10.01}), plan, true},
		// Percent of the store's size rounds up: 0.001% of 10,000 bytes
		// is 1 byte, not 0.
		{"PercentTinyFreesNothing", amount(config.Amount{Percent: 0.001}), backends.Stats{RecordsBefore: 1, RemovedAge: 1, BytesBefore: 10_000, BytesAfter: 10_000}, true},
		// A plan that changes nothing is not a skip.
		{"NothingToDo", amount(config.Amount{Bytes: 1 << 30}), backends.Stats{RecordsBefore: 100, BytesBefore: 10_000, BytesAfter: 10_000}, false},
		// Quarantine alone is work a skip defers.
		{"QuarantineOnly", amount(config.Amount{Bytes: 1 << 30}), backends.Stats{RecordsBefore: 100, Quarantined: 1, BytesBefore: 10_000, BytesAfter: 9_990}, true},
		// Redis: BytesAfter can exceed BytesBefore in a plan (memory
		// estimates); Reclaimed is then 0.
		// Size unknown (Redis without MEMORY USAGE): never judged, or
		// every run would skip.
		{"SizeUnknown", amount(config.Amount{Bytes: 1}), backends.Stats{RecordsBefore: 100, RemovedAge: 10}, false},
		{"GrowsIsZero", amount(config.Amount{Bytes: 1}), backends.Stats{RecordsBefore: 100, RemovedAge: 1, BytesBefore: 100, BytesAfter: 200}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, skip := belowMinReclaim(config.Target{Name: "s", MinReclaim: tt.min}, tt.stats)
			if skip != tt.skip {
				t.Errorf("skip: got %v, want %v", skip, tt.skip)
			}
		})
	}
}

// TestSkipped: a skip reports the store as planning found it, counts
// nothing as removed, and owes what the plan would remove.
func TestSkipped(t *testing.T) {
	min := config.Amount{Bytes: 1 << 20}
	plan := backends.Stats{RecordsBefore: 100, RecordsAfter: 70, RemovedAge: 20, RemovedCount: 10, Quarantined: 2, BlankLines: 1,
		BytesBefore: 10_000, BytesAfter: 7_000, OldestKept: 5, HasOldest: true,
		Segments: &backends.SegmentStats{Dropped: 1, Rewritten: 1, Untouched: 3, BytesRead: 10_000},
		Debt:     []backends.Debt{{Reason: backends.DebtHeldByGroup, Records: 4, Bytes: -1}}}
	tgt := config.Target{Name: "s", MinReclaim: &min}
	got := skipped(plan, planDebt(backends.DebtBelowMinReclaim, minReclaimWhy(tgt, plan, min.Of(plan.BytesBefore)), plan))
	if got.Removed() != 0 || got.Quarantined != 0 || got.BlankLines != 0 || got.RecordsAfter != 100 || got.BytesAfter != 10_000 || got.Reclaimed() != 0 || got.HasOldest {
		t.Errorf("skip stats: got %+v, want the store unchanged and no oldest", got)
	}
	if s := got.Segments; s.Dropped != 0 || s.Rewritten != 0 || s.Untouched != 5 {
		t.Errorf("segments: got %+v, want all 5 untouched", s)
	}
	if len(got.Debt) != 2 || got.Debt[0].Reason != backends.DebtHeldByGroup || got.Debt[1] != (backends.Debt{
		Reason: backends.DebtBelowMinReclaim, Detail: "it would free 2.9 KiB, below min_reclaim 1.0 MiB", Records: 30, Bytes: 3_000}) {
		t.Errorf("debt: got %+v, want the plan's and 30 records below min_reclaim", got.Debt)
	}
}

// TestState_Debt: which runs replace the persisted debt, and how long
// each reason has been owed.
func TestState_Debt(t *testing.T) {
	at := func(h int) time.Time { return time.Date(2026, 12, 1, h, 0, 0, 0, time.UTC) }
	held := backends.Debt{Reason: backends.DebtHeldByGroup, Detail: "group billing of s", Records: 12, Bytes: -1}
	valve := backends.Debt{Reason: backends.DebtSafetyValve, Records: 90, Bytes: 900}
	clock := backends.Debt{Reason: backends.DebtClockGuard, Records: -1, Bytes: -1}
	ok := func(h int, d ...backends.Debt) Result {
		return Result{Target: "s", Outcome: OutcomeOK, Started: at(h), Stats: backends.Stats{Debt: d}}
	}
	steps := []struct {
		name  string
		res   Result
		want  []string // reasons owed
		since map[string]int
	}{
		{"OKHeld", ok(1, held), []string{"held_by_group"}, map[string]int{"held_by_group": 1}},
		{"OKHeldAgainKeepsSince", ok(2, held), []string{"held_by_group"}, map[string]int{"held_by_group": 1}},
		{"DryRunKeeps", Result{Target: "s", Outcome: OutcomeDryRun, Started: at(3), DebtKnown: true, Stats: backends.Stats{Debt: []backends.Debt{valve}}}, []string{"held_by_group"}, map[string]int{"held_by_group": 1}},
		{"LockedKeeps", Result{Target: "s", Outcome: OutcomeLocked, Started: at(3), Err: backends.ErrLocked}, []string{"held_by_group"}, map[string]int{"held_by_group": 1}},
		{"FailedBeforePlanKeeps", Result{Target: "s", Outcome: OutcomeFailed, Started: at(4), Err: errors.New("x")}, []string{"held_by_group"}, map[string]int{"held_by_group": 1}},
		{"Refused", Result{Target: "s", Outcome: OutcomeRefused, Started: at(5), DebtKnown: true, Err: ErrRefused, Stats: backends.Stats{Debt: []backends.Debt{held, valve}}},
			[]string{"held_by_group", "safety_valve"}, map[string]int{"held_by_group": 1, "safety_valve": 5}},
		{"ClockUnknownIsOwed", Result{Target: "s", Outcome: OutcomeFailed, Started: at(6), DebtKnown: true, Err: errors.New("clock"), Stats: backends.Stats{Debt: []backends.Debt{clock}}},
			[]string{"clock_guard"}, map[string]int{"clock_guard": 6}},
		{"ZeroRecordsIsNoDebt", ok(7, backends.Debt{Reason: backends.DebtIncomplete, Records: 0, Bytes: -1}), nil, map[string]int{}},
		{"HeldAgainStartsOver", ok(8, held), []string{"held_by_group"}, map[string]int{"held_by_group": 8}},
		{"NothingToDoClears", Result{Target: "s", Outcome: OutcomeNothingToDo, Started: at(9)}, nil, map[string]int{}},
	}
	var st TargetState
	for _, s := range steps {
		st.Apply(s.res)
		var got []string
		for _, d := range st.Debt {
			got = append(got, d.Reason)
		}
		if fmt.Sprint(got) != fmt.Sprint(s.want) {
			t.Errorf("%s: debt reasons: got %v, want %v", s.name, got, s.want)
		}
		if len(st.DebtSince) != len(s.since) {
			t.Errorf("%s: since: got %v, want %v", s.name, st.DebtSince, s.since)
		}
		for r, h := range s.since {
			if !st.DebtSince[r].Equal(at(h)) {
				t.Errorf("%s: since %s: got %v, want %v", s.name, r, st.DebtSince[r], at(h))
			}
		}
	}
}

func TestDescribeDebt(t *testing.T) {
	for _, tt := range []struct {
		d    backends.Debt
		want string
	}{
		{backends.Debt{Reason: backends.DebtHeldByGroup, Detail: "group billing of papyra:local:events", Records: 1204, Bytes: -1, Oldest: 1796025600, HasOldest: true},
			"policy cannot be met: group billing of papyra:local:events holds 1,204 entries since 2026-11-30T08:00:00Z"},
		{backends.Debt{Reason: backends.DebtHeldByGroup, Detail: "group g of s", Records: 5, Bytes: -1, Estimated: true},
			"policy cannot be met: group g of s holds about 5 entries"},
		{backends.Debt{Reason: backends.DebtBelowMinReclaim, Detail: "it would free 1.0 KiB, below min_reclaim 1.0 MiB", Records: 3, Bytes: 1024},
			"3 records (1.0 KiB) left because the compaction was skipped below min_reclaim: it would free 1.0 KiB, below min_reclaim 1.0 MiB"},
		{backends.Debt{Reason: backends.DebtClockGuard, Records: -1, Bytes: -1},
			"an unknown number of records left because the clock guard refused age retention"},
		{backends.Debt{Reason: backends.DebtRunTimeout, Detail: "papyra:local:events", Records: 7, Bytes: -1},
			"7 records left because the run stopped at run_timeout; the next run continues: papyra:local:events"},
	} {
		if got := DescribeDebt(tt.d); got != tt.want {
			t.Errorf("DescribeDebt(%+v):\n got %s\nwant %s", tt.d, got, tt.want)
		}
	}
	// Every reason has its own words.
	for _, r := range append(append([]backends.DebtReason{}, debtReasons...), streamDebtReasons...) {
		if got := DescribeDebt(backends.Debt{Reason: r, Records: 1}); strings.Contains(got, "("+string(r)+")") {
			t.Errorf("reason %s has no plain words: %s", r, got)
		}
	}
}
