package livefile

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/papyra-compact/papyra-compact/internal/fsutil"
)

// Record is the recovery record of one store: a small JSON file in the
// state directory that exists only while a run changes the store, and
// says what the next run must finish or undo after a kill. It is keyed
// by a hash of the store's real path, not by the target's name, so that
// renaming a target in the config does not lose it, and so that two
// targets naming one store (refused by the config) could not have two.
type Record struct {
	space *fsutil.Space
	dir   string
	name  string
}

// RecordFor returns the record of the store whose real path is key, in
// stateDir. kind names the backend ("jsonl-swap", "rotating-run"), so that
// a store that changes kind never reads the other kind's record. Every
// write is claimed from space, the run's budget: a record that would eat
// into the headroom Papyra's appends need is not written (the error wraps
// ENOSPC), and the previous one stays.
func RecordFor(space *fsutil.Space, stateDir, kind, key string) Record {
	sum := sha256.Sum256([]byte(key))
	return Record{space: space, dir: stateDir, name: kind + "-" + hex.EncodeToString(sum[:8]) + ".json"}
}

// Path is the record's path, for messages.
func (r Record) Path() string { return filepath.Join(r.dir, r.name) }

// Write replaces the record with v, atomically and durably: the next run
// reads the previous record or this one, never a part.
func (r Record) Write(v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode recovery record %s: %w", r.Path(), err)
	}
	if err := os.MkdirAll(r.dir, 0o750); err != nil {
		return fmt.Errorf("create state directory %s: %w", r.dir, err)
	}
	return r.space.WriteFileAtomic("the recovery record", r.Path(), data, 0o640)
}

// Read decodes the record into v. found is false when there is none: no
// run was interrupted.
func (r Record) Read(v any) (found bool, err error) {
	data, err := os.ReadFile(r.Path())
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read recovery record: %w", err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		return false, fmt.Errorf("read recovery record %s: %w", r.Path(), err)
	}
	return true, nil
}

// Sweep removes the temp files of a Write a kill interrupted (the record
// itself, old or new, is intact: Write renames). It must run under the
// store's lock, like every Write, and returns how many it removed.
func (r Record) Sweep() (int, error) { return fsutil.SweepTemps(r.Path()) }

// Remove deletes the record once everything it names is settled.
func (r Record) Remove() error {
	if err := os.Remove(r.Path()); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove recovery record %s: %w", r.Path(), err)
	}
	return nil
}
