package backends

import (
	"fmt"
	"sort"

	"github.com/papyra-compact/papyra-compact/config"
)

// Registry maps a target's kind to its factory. It is a plain value built
// by backends/all, never a package-level map filled by init().
type Registry struct {
	factories map[string]Factory
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{factories: map[string]Factory{}}
}

// Register adds a factory. A duplicate kind is a programming error and
// panics at start-up rather than silently shadowing a backend.
func (r *Registry) Register(kind string, f Factory) {
	if _, dup := r.factories[kind]; dup {
		panic(fmt.Sprintf("backends: kind %q registered twice", kind))
	}
	r.factories[kind] = f
}

// Kinds lists the registered kinds in order.
func (r *Registry) Kinds() []string {
	kinds := make([]string, 0, len(r.factories))
	for k := range r.factories {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	return kinds
}

// New builds the backend for t.
func (r *Registry) New(t config.Target, env Env) (Backend, error) {
	f, ok := r.factories[t.Kind]
	if !ok {
		return nil, fmt.Errorf("target %s: kind %q is not supported by this build (have %v)", t.Name, t.Kind, r.Kinds())
	}
	return f(t, env)
}
