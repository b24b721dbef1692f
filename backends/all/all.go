// Package all assembles the registry of every backend this build has.
package all

import (
	"github.com/papyra-compact/papyra-compact/backends"
	"github.com/papyra-compact/papyra-compact/backends/jsonl"
	"github.com/papyra-compact/papyra-compact/backends/memory"
	"github.com/papyra-compact/papyra-compact/backends/redisstream"
	"github.com/papyra-compact/papyra-compact/backends/segments"
	"github.com/papyra-compact/papyra-compact/config"
)

// Backends returns a registry with every store papyra-compact supports.
func Backends() *backends.Registry {
	r := backends.NewRegistry()
	r.Register(config.KindJSONL, jsonl.New)
	r.Register(config.KindMemory, memory.New)
	r.Register(config.KindRedis, redisstream.New)
	r.Register(config.KindRotating, segments.New)
	return r
}
