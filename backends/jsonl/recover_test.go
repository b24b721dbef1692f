package jsonl_test

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

// TestRecover_KilledBetweenRenameAndDrain lays by hand what a run killed
// after the rename and before (or during) the drain leaves, without fail
// points: the store is the new file (survivors, and what Papyra appended
// to it since), the old inode lives on under its side name with records
// appended after the last copy, and the recovery record in the state
// directory says how much of it the new file holds. Recover must append
// exactly the missing records once, after what the new file holds,
// quarantine a torn last fragment, remove the side name and the record,
// and be a no-op when run again.
func TestRecover_KilledBetweenRenameAndDrain(t *testing.T) {
	copied := lines(rec(1, fresh), rec(2, fresh-10*86400), rec(3, fresh))
	survivors := lines(rec(1, fresh), rec(3, fresh))
	late := lines(rec(4, fresh), rec(5, fresh)) // appended to the old inode after the last copy
	onNew := lines(rec(6, fresh))               // appended by Papyra to the store after the rename
	for _, tc := range []struct {
		name     string
		oldTail  string // after late on the old inode
		pending  bool   // killed inside an append of late: it is in the new file already
		want     string
		quarantn string
	}{
		{name: "NothingDrainedYet", want: survivors + onNew + late},
		{name: "TornFragment", oldTail: `{"kind": "event", "ti`, want: survivors + onNew + late, quarantn: `{\"kind\": \"event\", \"ti`},
		{name: "KilledInsideAnAppend", pending: true, want: survivors + late + onNew},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			data := filepath.Join(dir, "data")
			if err := os.Mkdir(data, 0o755); err != nil {
				t.Fatal(err)
			}
			store := filepath.Join(data, "events.ndjson")
			e := env(filepath.Join(dir, "agent"))
			// The old inode, and its second name.
			write(t, store, copied+late+tc.oldTail, 0o644)
			old := filepath.Join(data, fsutil.SideName("events.ndjson", fsutil.RandomToken(), "old"))
			if err := os.Link(store, old); err != nil {
				t.Fatal(err)
			}
			// The new file, renamed over the store.
			newContent := survivors
			pendingAt := int64(len(survivors))
			if tc.pending {
				newContent += late
			}
			newContent += onNew
			tmp := filepath.Join(data, fsutil.SideName("events.ndjson", "0123456789abcdef", "tmp"))
			write(t, tmp, newContent, 0o644)
			var st unix.Stat_t
			if err := unix.Stat(tmp, &st); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(tmp, store); err != nil {
				t.Fatal(err)
			}
			rec := map[string]any{"store": store, "old": old, "offset": len(copied), "new_dev": st.Dev, "new_ino": st.Ino}
			if tc.pending {
				rec["pending"], rec["pending_at"] = len(late), pendingAt
			}
			writeRecordByHand(t, e.StateDir, "jsonl-swap", store, rec)

			b := newBackendIn(t, store, e)
			for round := 1; round <= 2; round++ {
				if err := b.Recover(context.Background()); err != nil {
					t.Fatalf("Recover (round %d): %v", round, err)
				}
				if got := read(t, store); got != tc.want {
					t.Errorf("round %d: store\n%s\nwant\n%s", round, got, tc.want)
				}
				testutil.AssertNoSideFiles(t, data)
				if ents, _ := os.ReadDir(e.StateDir); len(ents) != 0 {
					t.Errorf("round %d: the state directory still holds %v", round, ents)
				}
			}
			q, _ := filepath.Glob(filepath.Join(e.QuarantineDir, "*"))
			var quarantined strings.Builder
			for _, f := range q {
				quarantined.WriteString(read(t, f))
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

// writeRecordByHand writes a recovery record where the backend looks for
// it: <state dir>/<kind>-<first 8 bytes of sha256(store's real path), in
// hex>.json.
func writeRecordByHand(t *testing.T, stateDir, kind, real string, v any) {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(stateDir, 0o750); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(real))
	if err := os.WriteFile(filepath.Join(stateDir, kind+"-"+hex.EncodeToString(sum[:8])+".json"), data, 0o640); err != nil {
		t.Fatal(err)
	}
}
