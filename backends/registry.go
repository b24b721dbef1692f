package backends

import (
	"fmt"
	"sort"

	"github.com/papyra-compact/papyra-compact/config"
)

// Registry maps a target's kind to what the agent needs of it. It is a
// plain value built by backends/all, never a package-level map filled by
// init().
type Registry struct {
	kinds map[string]Kind
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{kinds: map[string]Kind{}}
}

// Register adds a kind. A duplicate kind, or one without a factory, is a
// programming error and panics at start-up rather than silently
// shadowing a backend.
func (r *Registry) Register(kind string, k Kind) {
	if _, dup := r.kinds[kind]; dup {
		panic(fmt.Sprintf("backends: kind %q registered twice", kind))
	}
	if k.New == nil {
		panic(fmt.Sprintf("backends: kind %q registered without a factory", kind))
	}
	r.kinds[kind] = k
}

// Kinds lists the registered kinds in order.
func (r *Registry) Kinds() []string {
	kinds := make([]string, 0, len(r.kinds))
	for k := range r.kinds {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	return kinds
}

func (r *Registry) kind(t config.Target) (Kind, error) {
	k, ok := r.kinds[t.Kind]
	if !ok {
		return Kind{}, fmt.Errorf("target %s: kind %q is not supported by this build (have %v)", t.Name, t.Kind, r.Kinds())
	}
	return k, nil
}

// New builds the backend for t.
func (r *Registry) New(t config.Target, env Env) (Backend, error) {
	k, err := r.kind(t)
	if err != nil {
		return nil, err
	}
	return k.New(t, env)
}

// LockKey returns the key runs of t's store are serialized on, from the
// configuration alone (see Kind.LockKey); "" when the kind needs no lock.
func (r *Registry) LockKey(t config.Target) (string, error) {
	k, err := r.kind(t)
	if err != nil || k.LockKey == nil {
		return "", err
	}
	return k.LockKey(t)
}

// Reports returns the optional Stats groups t's kind fills; none for a
// kind this build lacks, or from a nil registry.
func (r *Registry) Reports(t config.Target) Reports {
	if r == nil {
		return 0
	}
	return r.kinds[t.Kind].Reports
}
