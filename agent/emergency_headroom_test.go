package agent_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/papyra-compact/papyra-compact/agent"
	"github.com/papyra-compact/papyra-compact/backends/all"
	"github.com/papyra-compact/papyra-compact/internal/testutil"
)

// TestEmergency_BelowHeadroom puts the state and quarantine directories
// on the nearly full file system itself, with less free than the agent's
// headroom (1% of it): a drop, whose own writes are a few hundred bytes,
// still goes through. A segment whose corrupt lines would need more room
// in quarantine than there is stays whole (its lines are never lost
// unquarantined) and the check goes on with the next store.
func TestEmergency_BelowHeadroom(t *testing.T) {
	tests := []struct {
		name    string
		corrupt bool // a.4 holds only corrupt lines, 64 KiB of them
		want    string
	}{
		{"Drops", false, "a:store.log.4"},
		{"QuarantineDoesNotFit", true, "b:store.log.3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mnt := smallFS(t, 1<<20+512<<10)
			now := time.Now()
			cfg := emStores(t, mnt, now)
			cfg.StateDir = filepath.Join(mnt, "state")
			cfg.QuarantineDir = filepath.Join(mnt, "q")
			seg4 := cfg.Targets[1].Path + ".4"
			if tt.corrupt {
				garbage := strings.Repeat(strings.Repeat("x", 99)+"\n", segmentBytes/100)
				if err := os.WriteFile(seg4, []byte(garbage), 0o644); err != nil {
					t.Fatal(err)
				}
				old := now.Add(-10 * 24 * time.Hour)
				if err := os.Chtimes(seg4, old, old); err != nil {
					t.Fatal(err)
				}
			}
			before, err := os.ReadFile(seg4)
			if err != nil {
				t.Fatal(err)
			}
			free := fill(t, mnt, 8<<10)
			if free >= int64(1<<20+512<<10)/100 {
				t.Fatalf("free %d is not below the headroom", free)
			}
			cfg.Targets[1].KeepFree.Bytes = free + segmentBytes/2
			rep := agent.New(cfg, all.Backends(), slog.New(slog.DiscardHandler)).Emergency(context.Background(), agent.EmergencyOptions{Now: now})
			f := rep.FileSystems[0]
			var got []string
			for _, d := range f.Drops {
				got = append(got, d.Target+":"+filepath.Base(d.Segment))
			}
			if strings.Join(got, " ") != tt.want || f.Unmet != "" {
				t.Errorf("dropped %v (unmet %q), want %s", got, f.Unmet, tt.want)
			}
			if tt.corrupt {
				after, err := os.ReadFile(seg4)
				if err != nil || string(after) != string(before) {
					t.Errorf("the segment whose quarantine did not fit changed: %v", err)
				}
			}
			testutil.AssertNoSideFiles(t, filepath.Dir(seg4))
		})
	}
}
