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
	r.Register(config.KindJSONL, backends.Kind{New: jsonl.New, LockKey: jsonl.LockKey})
	r.Register(config.KindMemory, backends.Kind{New: memory.New})
	r.Register(config.KindRedis, backends.Kind{New: redisstream.New, LockKey: redisstream.LockKey, Reports: backends.ReportsStream})
	r.Register(config.KindRotating, backends.Kind{New: segments.New, LockKey: segments.LockKey, Reports: backends.ReportsSegments})
	return r
}
