package agent_test

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/papyra-compact/papyra-compact/agent"
	"github.com/papyra-compact/papyra-compact/config"
)

func TestTargetState_Apply(t *testing.T) {
	ok := okResult("orders", config.KindJSONL, t0())
	failed := agent.Result{Target: "orders", Kind: config.KindJSONL, Outcome: agent.OutcomeFailed, Started: t0().Add(time.Hour), Err: errors.New("boom")}
	tests := []struct {
		name    string
		results []agent.Result
		check   func(t *testing.T, s agent.TargetState)
	}{
		{"Success", []agent.Result{ok}, func(t *testing.T, s agent.TargetState) {
			want := agent.Counters{RunsSuccess: 1, RecordsScanned: 2000, RecordsKept: 500, RemovedAge: 1020, RemovedCount: 470,
				RemovedBytes: 10, RecordsQuarantined: 20, ReclaimedBytes: 416379 - 104162}
			if s.Counters != want {
				t.Errorf("got %+v, want %+v", s.Counters, want)
			}
			if !s.Store.Exists || s.Store.BytesAfter != 104162 || s.Store.Removed != 1500 || s.Store.OldestAge != 3600.5 {
				t.Errorf("got store %+v", s.Store)
			}
			if s.Failing() || !s.LastSuccess.Equal(t0()) || s.LastResult != "success" || s.LastDuration != 1.5 {
				t.Errorf("got %+v", s)
			}
		}},
		{"DryRunCountsNoRecords", []agent.Result{{Target: "orders", Outcome: agent.OutcomeDryRun, Started: t0(), Stats: ok.Stats}}, func(t *testing.T, s agent.TargetState) {
			if want := (agent.Counters{RunsDryRun: 1}); s.Counters != want {
				t.Errorf("got %+v, want %+v", s.Counters, want)
			}
			if !s.Store.At.IsZero() || !s.LastSuccess.IsZero() || s.LastResult != "dry_run" {
				t.Errorf("a dry run changed the store state: %+v", s)
			}
		}},
		{"FailureKeepsLastStore", []agent.Result{ok, failed}, func(t *testing.T, s agent.TargetState) {
			if !s.Failing() || s.LastError != "boom" || s.Counters.RunsFailure != 1 || s.Store.BytesAfter != 104162 {
				t.Errorf("got %+v", s)
			}
		}},
		{"SkipAndDryRunDoNotHideFailure", []agent.Result{ok, failed,
			{Target: "orders", Outcome: agent.OutcomeLocked, Started: t0().Add(2 * time.Hour)},
			{Target: "orders", Outcome: agent.OutcomeDryRun, Started: t0().Add(3 * time.Hour)}}, func(t *testing.T, s agent.TargetState) {
			if !s.Failing() || s.LastResult != "dry_run" || s.Counters.RunsSkippedLocked != 1 {
				t.Errorf("got %+v", s)
			}
		}},
		{"SuccessClearsFailure", []agent.Result{failed, okResult("orders", config.KindJSONL, t0().Add(2*time.Hour))}, func(t *testing.T, s agent.TargetState) {
			if s.Failing() || s.LastError != "" || !s.LastFailure.Equal(t0().Add(time.Hour)) {
				t.Errorf("got %+v", s)
			}
		}},
		{"NothingToDoIsSuccess", []agent.Result{ok, {Target: "orders", Outcome: agent.OutcomeNothingToDo, Started: t0().Add(time.Hour)}}, func(t *testing.T, s agent.TargetState) {
			if s.Counters.RunsSuccess != 2 || s.Store.Exists || s.Store.At.IsZero() || s.LastResult != "nothing_to_do" {
				t.Errorf("got %+v", s)
			}
		}},
		{"MissingSinceFirstMiss", []agent.Result{ok,
			{Target: "orders", Outcome: agent.OutcomeNothingToDo, Started: t0().Add(time.Hour)},
			failed,
			{Target: "orders", Outcome: agent.OutcomeLocked, Started: t0().Add(3 * time.Hour)},
			{Target: "orders", Outcome: agent.OutcomeNothingToDo, Started: t0().Add(4 * time.Hour)}}, func(t *testing.T, s agent.TargetState) {
			if !s.MissingSince.Equal(t0().Add(time.Hour)) {
				t.Errorf("missing since: got %v, want the first miss %v", s.MissingSince, t0().Add(time.Hour))
			}
		}},
		{"StoreBackClearsMissing", []agent.Result{{Target: "orders", Outcome: agent.OutcomeNothingToDo, Started: t0()},
			okResult("orders", config.KindJSONL, t0().Add(time.Hour))}, func(t *testing.T, s agent.TargetState) {
			if !s.MissingSince.IsZero() {
				t.Errorf("missing since: got %v after a compaction, want zero", s.MissingSince)
			}
		}},
		{"ClockSteppedBack", []agent.Result{okResult("orders", config.KindJSONL, t0().Add(2*time.Hour)), failed}, func(t *testing.T, s agent.TargetState) {
			if !s.Failing() {
				t.Errorf("a failure after a success is not failing when the clock went back: %+v", s)
			}
		}},
		{"NeverRun", nil, func(t *testing.T, s agent.TargetState) {
			if s.Failing() || s.HasRun() {
				t.Errorf("got %+v", s)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s agent.TargetState
			for _, r := range tt.results {
				s.Apply(r)
			}
			tt.check(t, s)
		})
	}
}

func TestState_SaveLoad(t *testing.T) {
	t.Run("RoundTrip", func(t *testing.T) {
		dir := t.TempDir()
		var s agent.TargetState
		s.Apply(okResult("orders", config.KindJSONL, t0()))
		must(t, agent.SaveTargetState(dir, s))
		got, found, err := agent.LoadTargetState(dir, "orders")
		if err != nil || !found {
			t.Fatalf("got found %v, err %v", found, err)
		}
		if !reflect.DeepEqual(got, s) {
			t.Errorf("got %+v, want %+v", got, s)
		}
		st, err := os.Stat(agent.TargetStatePath(dir, "orders"))
		must(t, err)
		if st.Mode().Perm() != 0o644 {
			t.Errorf("got mode %v, want 0644 (status runs without root)", st.Mode().Perm())
		}
	})
	t.Run("Missing", func(t *testing.T) {
		got, found, err := agent.LoadTargetState(t.TempDir(), "orders")
		if err != nil || found || got.Target != "orders" || got.Counters != (agent.Counters{}) {
			t.Errorf("got %+v, found %v, err %v", got, found, err)
		}
	})
	t.Run("ErrStateVersion", func(t *testing.T) {
		dir := t.TempDir()
		path := agent.TargetStatePath(dir, "orders")
		must(t, os.MkdirAll(filepath.Dir(path), 0o755))
		must(t, os.WriteFile(path, []byte(`{"version": 99, "target": "orders"}`), 0o644))
		if _, _, err := agent.LoadTargetState(dir, "orders"); !errors.Is(err, agent.ErrStateVersion) {
			t.Errorf("got %v, want ErrStateVersion", err)
		}
	})
	t.Run("ReadStateSkipsTempFiles", func(t *testing.T) {
		dir := t.TempDir()
		for _, name := range []string{"orders", "audit"} {
			var s agent.TargetState
			s.Apply(okResult(name, config.KindJSONL, t0()))
			must(t, agent.SaveTargetState(dir, s))
		}
		tmp := filepath.Join(dir, "targets", ".orders.json.123.tmp")
		must(t, os.WriteFile(tmp, []byte("{half"), 0o644))
		st, err := agent.ReadState(dir)
		must(t, err)
		if got := st.TargetNames(); len(got) != 2 || got[0] != "audit" || got[1] != "orders" {
			t.Errorf("got %v, want [audit orders]", got)
		}
	})
	t.Run("ReadStateEmptyDir", func(t *testing.T) {
		st, err := agent.ReadState(filepath.Join(t.TempDir(), "nonexistent"))
		if err != nil || len(st.Targets) != 0 || st.Agent.Reload.Known {
			t.Errorf("got %+v, %v", st, err)
		}
	})
}
