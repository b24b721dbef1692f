// Package memory is the backend for Papyra's InMemoryPersistence, which
// keeps nothing on disk: compaction is a no-op (papyra-formats.md §9). It
// exists so that a config can list every store of a deployment, and so the
// shared backend suite has a trivial member. Having nothing to protect, it
// needs no lock.
package memory

import (
	"context"

	"github.com/papyra-compact/papyra-compact/backends"
	"github.com/papyra-compact/papyra-compact/config"
)

// Backend is a no-op backend.
type Backend struct{}

var _ backends.Backend = (*Backend)(nil)

// New returns a memory backend for target t.
func New(config.Target, backends.Env) (backends.Backend, error) {
	return &Backend{}, nil
}

type plan struct{}

func (plan) Stats() backends.Stats {
	return backends.Stats{Notes: []string{"memory store: nothing persisted, nothing to compact"}}
}
func (plan) Close() error { return nil }

// Plan implements backends.Backend.
func (b *Backend) Plan(context.Context, backends.Policy) (backends.Plan, error) { return plan{}, nil }

// Apply implements backends.Backend.
func (b *Backend) Apply(_ context.Context, p backends.Plan) (backends.Stats, error) {
	return p.Stats(), nil
}

// Recover implements backends.Backend.
func (b *Backend) Recover(context.Context) error { return nil }

// Close implements backends.Backend.
func (b *Backend) Close() error { return nil }
