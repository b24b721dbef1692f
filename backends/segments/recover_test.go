package segments_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/papyra-compact/papyra-compact/internal/fsutil"
	"github.com/papyra-compact/papyra-compact/internal/testutil"
)

// TestRecover_KilledBetweenSwapAndDrain lays by hand, without fail
// points, what a run killed after exchanging the active file and before
// (or during) its drain leaves: the replacement at the active name (or,
// when the writer has rotated since, at slot 1), the old active inode
// under its side name with records appended after the last copy, and the
// run record that says how much of it the replacement holds. Recover
// must append exactly the missing records once, to the replacement
// wherever it now is, quarantine a torn last fragment, remove the side
// name and the record, and change nothing when run again. A run killed
// inside a drained append (the lines written to the replacement, the
// record still saying they were about to go) must not append them twice.
func TestRecover_KilledBetweenSwapAndDrain(t *testing.T) {
	copied := rec(1, fresh) + rec(2, old) + rec(3, fresh)
	survivors := rec(1, fresh) + rec(3, fresh)
	late := rec(4, fresh) + rec(5, fresh) // on the old inode, after the last copy
	onNew := rec(6, fresh)                // Papyra's appends to the replacement
	for _, tc := range []struct {
		name     string
		oldTail  string
		rotated  bool   // the writer rotated the replacement to slot 1 since
		pending  bool   // killed inside an append of late: the replacement holds it already
		want     layout // after Recover
		quarantn string
	}{
		{name: "InPlace", want: layout{2: rec(0, fresh), 0: survivors + onNew + late}},
		{name: "TornFragment", oldTail: `{"system_id": "lo`, want: layout{2: rec(0, fresh), 0: survivors + onNew + late}, quarantn: `{\"system_id\": \"lo`},
		{name: "WriterRotatedSince", rotated: true, want: layout{2: rec(0, fresh), 1: survivors + onNew + late, 0: rec(7, fresh)}},
		{name: "KilledInsideAnAppend", pending: true, want: layout{2: rec(0, fresh), 0: survivors + late + onNew}},
		{name: "KilledInsideAnAppendRotatedSince", pending: true, rotated: true, want: layout{2: rec(0, fresh), 1: survivors + late + onNew, 0: rec(7, fresh)}},
		{name: "KilledBeforeAnAppend", pending: true, want: layout{2: rec(0, fresh), 0: survivors + onNew + late}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			active := lay(t, layout{2: rec(0, fresh), 0: copied + late + tc.oldTail})
			dir, base := filepath.Dir(active), filepath.Base(active)
			token := fsutil.RandomToken()
			side := fsutil.SideName(base, token, "swap.1")
			// The replacement, exchanged in: the old inode moves to the side name.
			if err := os.Rename(active, filepath.Join(dir, side)); err != nil {
				t.Fatal(err)
			}
			// Killed inside an append: the drained lines went in (after the
			// survivors), then Papyra appended to the replacement.
			appendedLate := tc.pending && !strings.HasPrefix(tc.name, "KilledBefore")
			newContent := survivors
			if appendedLate {
				newContent += late
			}
			if err := os.WriteFile(active, []byte(newContent+onNew), 0o644); err != nil {
				t.Fatal(err)
			}
			oldID, newID := fileIDOf(t, filepath.Join(dir, side)), fileIDOf(t, active)
			if tc.rotated {
				if err := os.Rename(active, active+".1"); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(active, []byte(rec(7, fresh)), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			e := env(t.TempDir())
			sw := map[string]any{
				"kind": "swap", "name": base, "side": side, "old": oldID, "new": newID,
				"offset": len(copied), "live": true,
			}
			if tc.pending {
				sw["pending"], sw["pending_at"], sw["pending_ino"] = len(late), len(survivors), newID["ino"]
			}
			writeRunRecordByHand(t, e.StateDir, filepath.Join(dir, base), map[string]any{
				"dir": dir, "base": base, "token": token,
				"steps": []map[string]any{sw},
			})
			b := newBackendIn(t, active, 1<<20, 4, e)
			for round := 1; round <= 2; round++ {
				if err := b.Recover(context.Background()); err != nil {
					t.Fatalf("Recover (round %d): %v", round, err)
				}
				got := contents(t, active)
				for i, want := range tc.want {
					if got[i] != want {
						t.Errorf("round %d: segment %d holds\n%s\nwant\n%s", round, i, got[i], want)
					}
				}
				if len(got) != len(tc.want) {
					t.Errorf("round %d: segments %v, want %d of them", round, got, len(tc.want))
				}
				testutil.AssertNoSideFiles(t, dir)
				if ents, _ := os.ReadDir(e.StateDir); len(ents) != 0 {
					t.Errorf("round %d: the state directory still holds %v", round, ents)
				}
			}
			q, _ := filepath.Glob(filepath.Join(e.QuarantineDir, "*"))
			var quarantined strings.Builder
			for _, f := range q {
				data, _ := os.ReadFile(f)
				quarantined.Write(data)
			}
			switch {
			case tc.quarantn == "" && quarantined.Len() > 0:
				t.Errorf("quarantined %q, want nothing", quarantined.String())
			case tc.quarantn != "" && !strings.Contains(quarantined.String(), tc.quarantn):
				t.Errorf("quarantine holds %q, want the torn fragment %s", quarantined.String(), tc.quarantn)
			}
		})
	}
}

func fileIDOf(t *testing.T, path string) map[string]uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return map[string]uint64{"dev": uint64(st.Dev), "ino": st.Ino}
}

// writeRunRecordByHand writes a run record where the backend looks for
// it: <state dir>/rotating-run-<first 8 bytes of sha256(the active file's
// real path), in hex>.json.
func writeRunRecordByHand(t *testing.T, stateDir, real string, v any) {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(stateDir, 0o750); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(real))
	if err := os.WriteFile(filepath.Join(stateDir, "rotating-run-"+hex.EncodeToString(sum[:8])+".json"), data, 0o640); err != nil {
		t.Fatal(err)
	}
}
