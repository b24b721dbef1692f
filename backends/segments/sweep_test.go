package segments_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"

	"github.com/papyra-compact/papyra-compact/internal/fsutil"
)

// TestBackend_RecoverSweepsRecordTemps: the temp file of a run record
// write a kill interrupted is removed by the next Recover; another
// store's is not.
func TestBackend_RecoverSweepsRecordTemps(t *testing.T) {
	active := lay(t, layout{1: rec(1, old), 0: rec(2, fresh)})
	dir, err := filepath.EvalSymlinks(filepath.Dir(active))
	if err != nil {
		t.Fatal(err)
	}
	e := env(t.TempDir())
	if err := os.MkdirAll(e.StateDir, 0o750); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(filepath.Join(dir, filepath.Base(active))))
	record := "rotating-run-" + hex.EncodeToString(sum[:8]) + ".json"
	ours := fsutil.Prefix + record + ".777.tmp"
	other := fsutil.Prefix + "rotating-run-0000000000000000.json.777.tmp"
	for _, n := range []string{ours, other} {
		if err := os.WriteFile(filepath.Join(e.StateDir, n), []byte(`{"half`), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	if err := newBackendIn(t, active, 1<<20, 5, e).Recover(context.Background()); err != nil {
		t.Fatalf("recover: %v", err)
	}
	if _, err := os.Stat(filepath.Join(e.StateDir, ours)); !os.IsNotExist(err) {
		t.Errorf("the record's leftover temp file is still there: %v", err)
	}
	if _, err := os.Stat(filepath.Join(e.StateDir, other)); err != nil {
		t.Errorf("another store's temp file was removed: %v", err)
	}
}
