package memory_test

import (
	"context"
	"errors"
	"testing"

	"github.com/papyra-compact/papyra-compact/backends"
	"github.com/papyra-compact/papyra-compact/backends/backendtest"
	"github.com/papyra-compact/papyra-compact/backends/memory"
	"github.com/papyra-compact/papyra-compact/config"
)

func newBackend(t *testing.T) backends.Backend {
	t.Helper()
	b, err := memory.New(config.Target{Name: "cache", Kind: config.KindMemory}, backends.Env{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// TestBackend_Suite runs the shared suite. A memory store persists
// nothing, so there is nothing to write or read back: the suite checks
// the contract's data-free cases.
func TestBackend_Suite(t *testing.T) {
	backendtest.Run(t, backendtest.Harness{New: newBackend})
}

// TestBackend_NoOp: a run over any policy removes nothing and says why.
func TestBackend_NoOp(t *testing.T) {
	b := newBackend(t)
	ctx := context.Background()
	zero := int64(0)
	p, err := b.Plan(ctx, backends.Policy{Now: backendtest.Now, Retention: config.Retention{MaxTotalBytes: &zero}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	st, err := b.Apply(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if st.Removed() != 0 || st.RecordsBefore != 0 || len(st.Notes) != 1 || st.Segments != nil || st.Stream != nil {
		t.Errorf("stats %+v: want nothing removed, one note, no optional groups", st)
	}
	if err := p.Close(); err != nil || errors.Is(err, backends.ErrNothingToDo) {
		t.Errorf("second Close: %v", err)
	}
}
