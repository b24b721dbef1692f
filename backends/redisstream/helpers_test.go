package redisstream_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/papyra-compact/papyra-compact/backends"
	"github.com/papyra-compact/papyra-compact/backends/backendtest"
	"github.com/papyra-compact/papyra-compact/backends/redisstream"
	"github.com/papyra-compact/papyra-compact/config"
)

func ptr[T any](v T) *T { return &v }

// newClient is the test's own client, for writing and checking.
func newClient(t testing.TB, addrs ...string) redis.UniversalClient {
	t.Helper()
	c := redis.NewUniversalClient(&redis.UniversalOptions{Addrs: addrs, DisableIdentity: true})
	t.Cleanup(func() { c.Close() })
	return c
}

// target is a redis target on addrs; mods adjust it.
func target(addrs []string, mods ...func(*config.Target)) config.Target {
	t := config.Target{Name: "t", Kind: config.KindRedis, Addrs: addrs}
	for _, m := range mods {
		m(&t)
	}
	return t
}

func system(id string) func(*config.Target) { return func(t *config.Target) { t.SystemID = id } }

func exact(t *config.Target) { t.Approximate = ptr(false) }

func newBackend(t testing.TB, tgt config.Target) backends.Backend {
	t.Helper()
	b, err := redisstream.New(tgt, backends.Env{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// compact runs what the agent runs: Recover, Plan, Apply.
func compact(t testing.TB, b backends.Backend, pol backends.Policy) (backends.Stats, error) {
	t.Helper()
	ctx := context.Background()
	if err := b.Recover(ctx); err != nil {
		return backends.Stats{}, err
	}
	p, err := b.Plan(ctx, pol)
	if err != nil {
		return backends.Stats{}, err
	}
	defer p.Close()
	return b.Apply(ctx, p)
}

// rec is one entry to write: its ID time and seq, its record's I and
// timestamp, or raw fields for a corrupt entry.
type rec struct {
	ms, seq int64
	i       int
	ts      float64
	fields  []any // when set, written instead of data=<record>
}

// papyra renders a record exactly as Papyra's Redis backend writes it
// (§5.2): the JSON backend's line without its newline.
func papyra(i int, ts float64) string {
	return backendtest.Record{Kind: "event", I: i, Timestamp: ts}.JSON()
}

// write XADDs recs to key with their explicit IDs, pipelined.
func write(t testing.TB, c redis.UniversalClient, key string, recs []rec) {
	t.Helper()
	ctx := context.Background()
	for start := 0; start < len(recs); start += 10000 {
		pipe := c.Pipeline()
		for _, r := range recs[start:min(start+10000, len(recs))] {
			values := r.fields
			if values == nil {
				values = []any{"data", papyra(r.i, r.ts)}
			}
			pipe.XAdd(ctx, &redis.XAddArgs{Stream: key, ID: fmt.Sprintf("%d-%d", r.ms, r.seq), Values: values})
		}
		if _, err := pipe.Exec(ctx); err != nil {
			t.Fatalf("XADD %s: %v", key, err)
		}
	}
}

// series returns n records one step apart from start, each timestamped
// 2 ms before its ID time, as a Papyra host with a synchronized clock
// writes them.
func series(start time.Time, n int, step time.Duration) []rec {
	recs := make([]rec, n)
	for i := range recs {
		at := start.Add(time.Duration(i) * step)
		recs[i] = rec{ms: at.UnixMilli(), i: i, ts: float64(at.UnixMilli()-2) / 1000}
	}
	return recs
}

// readI returns the I of every record in key, in order (small streams).
func readI(t testing.TB, c redis.UniversalClient, key string) []int {
	t.Helper()
	msgs, err := c.XRange(context.Background(), key, "-", "+").Result()
	if err != nil {
		t.Fatalf("XRANGE %s: %v", key, err)
	}
	out := []int{}
	for _, m := range msgs {
		var r struct{ Payload struct{ I *int } }
		data, _ := m.Values["data"].(string)
		if json.Unmarshal([]byte(backendtest.PythonJSON(data)), &r) != nil || r.Payload.I == nil {
			out = append(out, -1)
			continue
		}
		out = append(out, *r.Payload.I)
	}
	return out
}

func xlen(t testing.TB, c redis.UniversalClient, key string) int64 {
	t.Helper()
	n, err := c.XLen(context.Background(), key).Result()
	if err != nil {
		t.Fatalf("XLEN %s: %v", key, err)
	}
	return n
}

func seq(from, to int) []int {
	out := []int{}
	for i := from; i < to; i++ {
		out = append(out, i)
	}
	return out
}

func sameInts(a, b []int) bool { return slices.Equal(a, b) }

func itoa(i int) string { return strconv.Itoa(i) }

// xadd is Papyra's write: XADD key * data <json>.
func xadd(key, data string) *redis.XAddArgs {
	return &redis.XAddArgs{Stream: key, Values: []any{"data", data}}
}

func errorsIs(err, target error) bool { return errors.Is(err, target) }
