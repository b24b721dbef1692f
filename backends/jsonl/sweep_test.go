package jsonl_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"

	"github.com/papyra-compact/papyra-compact/internal/fsutil"
)

// TestBackend_RecoverSweepsRecordTemps: the temp file of a recovery record
// write a kill interrupted (named after the record, in the state
// directory) is removed by the next Recover; another store's are not
// (their run may be writing them right now, under another lock).
func TestBackend_RecoverSweepsRecordTemps(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "s.jsonl")
	write(t, path, lines(rec(1, old), rec(2, fresh)), 0o644)
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		t.Fatal(err)
	}
	e := env(dir)
	if err := os.MkdirAll(e.StateDir, 0o750); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(real))
	record := "jsonl-swap-" + hex.EncodeToString(sum[:8]) + ".json"
	ours := []string{fsutil.Prefix + record + ".4242.tmp", fsutil.Prefix + record + ".1.tmp"}
	others := []string{
		fsutil.Prefix + "jsonl-swap-0000000000000000.json.123.tmp", // another store's
		fsutil.Prefix + record + ".abc.tmp",                        // not a temp name of ours
		record + ".4242.tmp",
	}
	for _, n := range append(ours, others...) {
		if err := os.WriteFile(filepath.Join(e.StateDir, n), []byte(`{"half`), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	if err := newBackendIn(t, path, e).Recover(context.Background()); err != nil {
		t.Fatalf("recover: %v", err)
	}
	for _, n := range ours {
		if _, err := os.Stat(filepath.Join(e.StateDir, n)); !os.IsNotExist(err) {
			t.Errorf("the record's leftover temp file %s is still there: %v", n, err)
		}
	}
	for _, n := range others {
		if _, err := os.Stat(filepath.Join(e.StateDir, n)); err != nil {
			t.Errorf("%s was removed: %v", n, err)
		}
	}
	if got := read(t, path); got != lines(rec(1, old), rec(2, fresh)) {
		t.Errorf("Recover changed the store: %q", got)
	}
}
