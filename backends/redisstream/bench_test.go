package redisstream_test

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/papyra-compact/papyra-compact/backends"
	"github.com/papyra-compact/papyra-compact/config"
	"github.com/papyra-compact/papyra-compact/internal/testutil"
)

// BenchmarkTrimUnderLoad is what bench/redis.sh runs: a stream of
// PAPYRA_BENCH_ENTRIES entries (default 1 M; the script uses 10 M) is
// trimmed by half by age while another client runs XADD back to back.
// It prints the longest command the agent sent (the server's SLOWLOG
// with threshold 0), the trim time, and the writer's XADD latency p50 and
// p99 during the trim next to the same without it. Run it with
// -benchtime 1x: one iteration is the whole scenario.
func BenchmarkTrimUnderLoad(b *testing.B) {
	n := 1_000_000
	if s := os.Getenv("PAPYRA_BENCH_ENTRIES"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil {
			b.Fatalf("PAPYRA_BENCH_ENTRIES: %v", err)
		}
	}
	ctx := context.Background()
	srv := testutil.StartRedis(b)
	c := newClient(b, srv.Addr)
	const key = "papyra:local:events"
	fillStart := time.Now()
	now, span := fill(b, c, key, n)
	mem := c.MemoryUsage(ctx, key).Val()
	fmt.Printf("stream: %d entries, %.0f MB (MEMORY USAGE), written in %s\n", n, float64(mem)/1e6, time.Since(fillStart).Round(time.Millisecond))
	// Leave the two cores to Redis and the writer, not to a collection
	// of the fill's garbage in the middle of the measurement.
	runtime.GC()
	debug.FreeOSMemory()

	// The writer: Papyra's XADD, back to back, on its own connection.
	w := redis.NewClient(&redis.Options{Addr: srv.Addr, ClientName: "papyra-writer", DisableIdentity: true})
	defer w.Close()
	var (
		mu      sync.Mutex
		lat     []time.Duration
		stop    atomic.Bool
		written atomic.Int64
		done    = make(chan struct{})
	)
	go func() {
		defer close(done)
		for i := 0; !stop.Load(); i++ {
			t0 := time.Now()
			if err := w.XAdd(ctx, xadd(key, papyra(i, float64(time.Now().UnixNano())/1e9))).Err(); err != nil {
				b.Error(err)
				return
			}
			d := time.Since(t0)
			mu.Lock()
			lat = append(lat, d)
			mu.Unlock()
			written.Add(1)
		}
	}()
	phase := func() []time.Duration {
		mu.Lock()
		defer mu.Unlock()
		out := lat
		lat = nil
		return out
	}

	time.Sleep(200 * time.Millisecond)
	phase() // warm-up
	time.Sleep(3 * time.Second)
	baseline := phase()

	slowlogOn(b, c, 5_000_000)
	bk := newBackend(b, target([]string{srv.Addr}, exact, benchOverrides(b)))
	pol := backends.Policy{Retention: config.Retention{MaxAgeSeconds: ptr((span/2 + time.Minute).Seconds())}, Now: now}
	b.ResetTimer()
	t0 := time.Now()
	p, err := bk.Plan(ctx, pol)
	if err != nil {
		b.Fatal(err)
	}
	planned := time.Since(t0)
	st, err := bk.Apply(ctx, p)
	took := time.Since(t0)
	b.StopTimer()
	during := phase()
	stop.Store(true)
	<-done
	if err != nil {
		b.Fatal(err)
	}
	must(b, c.ConfigSet(ctx, "slowlog-log-slower-than", "10000").Err())
	// A trim that removed nothing timed nothing: the figures below would
	// be of a no-op. About half the stream is older than the cutoff.
	if after := xlen(b, c, key); st.Removed() < int64(n)/4 || after >= int64(n)+written.Load() {
		b.Fatalf("the trim did not do the work it times: removed %d of %d entries, %d left (+%d written meanwhile)", st.Removed(), n, after, written.Load())
	}

	cmds := agentCommands(b, c)
	var server time.Duration
	for _, l := range cmds {
		server += l.Duration
	}
	fmt.Printf("trim: removed %d entries in %s (plan %s), %.2f M entries/s; %d agent commands, %s of server time\n",
		st.Removed(), took.Round(time.Millisecond), planned.Round(time.Millisecond), float64(st.Removed())/took.Seconds()/1e6,
		len(cmds), server.Round(time.Microsecond))
	fmt.Printf("longest agent commands (SLOWLOG, threshold 0):\n")
	for _, l := range cmds[:min(5, len(cmds))] {
		fmt.Printf("  %s\n", describe(l))
	}
	fmt.Printf("XADD latency, baseline: %s\n", percentiles(baseline))
	fmt.Printf("XADD latency, during the trim: %s\n", percentiles(during))
	b.ReportMetric(float64(cmds[0].Duration.Microseconds())/1000, "max-cmd-ms")
	b.ReportMetric(took.Seconds(), "trim-s")
	if cmds[0].Duration > maxCommand {
		b.Errorf("longest command %s, want at most %s", describe(cmds[0]), maxCommand)
	}
}

func percentiles(d []time.Duration) string {
	if len(d) == 0 {
		return "no samples"
	}
	slices.Sort(d)
	at := func(q float64) time.Duration { return d[min(len(d)-1, int(q*float64(len(d))))] }
	return fmt.Sprintf("n=%d p50=%s p99=%s p99.9=%s max=%s", len(d), at(0.5), at(0.99), at(0.999), d[len(d)-1])
}

// benchOverrides lets bench/redis.sh try other settings:
// PAPYRA_BENCH_TRIM_LIMIT, PAPYRA_BENCH_DUTY_CYCLE.
func benchOverrides(b *testing.B) func(*config.Target) {
	return func(t *config.Target) {
		if s := os.Getenv("PAPYRA_BENCH_TRIM_LIMIT"); s != "" {
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				b.Fatalf("PAPYRA_BENCH_TRIM_LIMIT: %v", err)
			}
			t.TrimLimit = &n
		}
		if s := os.Getenv("PAPYRA_BENCH_DUTY_CYCLE"); s != "" {
			d, err := strconv.ParseFloat(s, 64)
			if err != nil {
				b.Fatalf("PAPYRA_BENCH_DUTY_CYCLE: %v", err)
			}
			t.DutyCycle = &d
		}
		fmt.Printf("settings: trim_limit %v, duty_cycle %v (nil: default)\n", deref(t.TrimLimit), deref(t.DutyCycle))
	}
}

func deref[T any](p *T) any {
	if p == nil {
		return nil
	}
	return *p
}
