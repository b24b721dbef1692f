package redisstream_test

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/papyra-compact/papyra-compact/backends"
	"github.com/papyra-compact/papyra-compact/config"
	"github.com/papyra-compact/papyra-compact/internal/testutil"
)

// BenchmarkTrimUnderLoad is what bench/redis.sh runs: a stream is
// trimmed by age while another client runs XADD back to back. It prints
// the longest commands the agent sent (the server's SLOWLOG with
// threshold 0), the trim time, and the writer's XADD latency p50 and p99
// during the trim next to the same without it. Run it with -benchtime
// 1x: one iteration is the whole scenario. PAPYRA_BENCH_SHAPE picks the
// stream:
//
//   - long (default): PAPYRA_BENCH_ENTRIES Papyra records (default 1 M;
//     the script uses 10 M), half of them old; quarantine_corrupt false,
//     so the plan reads only what it removes (PAPYRA_BENCH_SCAN=1: the
//     defaults, every entry read).
//   - large: PAPYRA_BENCH_LARGE old records of PAPYRA_BENCH_LARGE_MB MB
//     (default 60 of 10), then 1,000 small fresh ones; the defaults
//     (quarantine on: every entry is read).
//   - consumers: 200,000 old records and one group with
//     PAPYRA_BENCH_CONSUMERS consumers (default 100,000), the newest
//     10,000 pending: every trim step reads the group's floor.
//   - mixed: sizes in both orders, all old: PAPYRA_BENCH_MIXED_SMALL
//     (default 5,000) small records, half of the PAPYRA_BENCH_LARGE
//     large ones, as many small ones again, the other half, then 1,000
//     small fresh ones; the defaults (every entry is read).
//
// It fails when the trim did not remove what the shape makes old (no
// work measured), when the slowest agent command is over 10 ms (for
// large and mixed, over twice what reading one large entry costs; mixed
// excuses, and prints apart, only each read sized on small entries that
// first met large ones: Redis tells an entry's size only by returning
// it, see entries.go), or
// when the writer's XADD p99 during the trim is over twice its baseline
// and a quarter millisecond above it, or when the agent's heap grew by
// more than maxHeapGrowth (for mixed, plus what each excused read
// returned).
func BenchmarkTrimUnderLoad(b *testing.B) {
	ctx := context.Background()
	srv := testutil.StartRedis(b)
	c := newClient(b, srv.Addr)
	const key = "papyra:local:events"
	env := func(name string, def int) int {
		s := os.Getenv(name)
		if s == "" {
			return def
		}
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			b.Fatalf("%s=%q: want a positive integer", name, s)
		}
		return n
	}
	shape := os.Getenv("PAPYRA_BENCH_SHAPE")
	if shape == "" {
		shape = "long"
	}
	fillStart := time.Now()
	var (
		now    time.Time
		maxAge float64
		mods   = []func(*config.Target){exact, benchOverrides(b)}
		want   int64 // entries the trim must remove
		// written holds the IDs the mixed shape wrote, in order, large
		// ones marked, to tell which reads met large entries.
		shapeIDs []writtenID
	)
	switch shape {
	case "long":
		n := env("PAPYRA_BENCH_ENTRIES", 1_000_000)
		var span time.Duration
		now, span = fill(b, c, key, n)
		maxAge = (span/2 + time.Minute).Seconds()
		if os.Getenv("PAPYRA_BENCH_SCAN") == "" {
			mods = append(mods, func(t *config.Target) { t.QuarantineCorrupt = ptr(false) })
		}
		want = int64(n / 2)
	case "large":
		n, mb := env("PAPYRA_BENCH_LARGE", 60), env("PAPYRA_BENCH_LARGE_MB", 10)
		now = time.Now().Truncate(time.Millisecond)
		old := now.Add(-48 * time.Hour)
		for i := range n {
			at := old.Add(time.Duration(i) * time.Second)
			must(b, c.XAdd(ctx, &redis.XAddArgs{Stream: key, ID: fmt.Sprintf("%d-0", at.UnixMilli()),
				Values: []any{"data", bigRecord(i, float64(at.UnixMilli())/1000, mb<<20)}}).Err())
		}
		write(b, c, key, series(now.Add(-time.Minute), 1000, time.Millisecond))
		maxAge = 3600
		want = int64(n)
	case "consumers":
		n, consumers := 200_000, env("PAPYRA_BENCH_CONSUMERS", 100_000)
		now, _ = fill(b, c, key, n)
		maxAge = 30 // the newest entry is a minute old: everything is old
		must(b, c.XGroupCreate(ctx, key, "g", "0").Err())
		for start := 0; start < consumers; start += 10_000 {
			pipe := c.Pipeline()
			for i := start; i < min(consumers, start+10_000); i++ {
				pipe.XGroupCreateConsumer(ctx, key, "g", "c"+strconv.Itoa(i))
			}
			if _, err := pipe.Exec(ctx); err != nil {
				b.Fatal(err)
			}
		}
		// c0 reads everything and acknowledges all but the newest 10,000.
		for read := 0; read < n; {
			res, err := c.XReadGroup(ctx, &redis.XReadGroupArgs{Group: "g", Consumer: "c0", Streams: []string{key, ">"}, Count: 10_000}).Result()
			if err != nil {
				b.Fatal(err)
			}
			msgs := res[0].Messages
			var ids []string
			for i, m := range msgs {
				if read+i < n-10_000 {
					ids = append(ids, m.ID)
				}
			}
			if len(ids) > 0 {
				must(b, c.XAck(ctx, key, "g", ids...).Err())
			}
			read += len(msgs)
		}
		mods = append(mods, func(t *config.Target) { t.QuarantineCorrupt = ptr(false) })
		want = int64(n - 10_000)
		fmt.Printf("group g: %d consumers, 10000 entries pending\n", consumers)
	case "mixed":
		n, mb, small := env("PAPYRA_BENCH_LARGE", 60), env("PAPYRA_BENCH_LARGE_MB", 10), env("PAPYRA_BENCH_MIXED_SMALL", 5000)
		now = time.Now().Truncate(time.Millisecond)
		at := now.Add(-48 * time.Hour)
		var i int
		for _, part := range []struct{ small, large int }{{small, n / 2}, {small, n - n/2}} {
			recs := series(at, part.small, time.Millisecond)
			write(b, c, key, recs)
			for _, r := range recs {
				shapeIDs = append(shapeIDs, writtenID{streamIDText{uint64(r.ms), uint64(r.seq)}, false})
			}
			at = at.Add(time.Duration(part.small) * time.Millisecond)
			for range part.large {
				shapeIDs = append(shapeIDs, writtenID{streamIDText{uint64(at.UnixMilli()), 0}, true})
				must(b, c.XAdd(ctx, &redis.XAddArgs{Stream: key, ID: fmt.Sprintf("%d-0", at.UnixMilli()),
					Values: []any{"data", bigRecord(i, float64(at.UnixMilli())/1000, mb<<20)}}).Err())
				at = at.Add(time.Millisecond)
				i++
			}
		}
		write(b, c, key, series(now.Add(-time.Minute), 1000, time.Millisecond))
		maxAge = 3600
		want = int64(2*small + n)
		fmt.Printf("%d small, %d of %d MB, %d small, %d of %d MB, all old; 1000 fresh\n", small, n/2, mb, small, n-n/2, mb)
	default:
		b.Fatalf("PAPYRA_BENCH_SHAPE=%q: want long, large, consumers or mixed", shape)
	}
	mem := c.MemoryUsage(ctx, key).Val()
	before := xlen(b, c, key)
	fmt.Printf("shape %s: stream of %d entries, %.0f MB (MEMORY USAGE), written in %s\n", shape, before, float64(mem)/1e6, time.Since(fillStart).Round(time.Millisecond))
	// Leave the two cores to Redis and the writer, not to a collection
	// of the fill's garbage in the middle of the measurement.
	runtime.GC()
	debug.FreeOSMemory()

	// The writer: Papyra's XADD, back to back, on its own connection.
	// A long ReadTimeout: a slow reply is a figure to report, not an error.
	w := redis.NewClient(&redis.Options{Addr: srv.Addr, ClientName: "papyra-writer", DisableIdentity: true, ReadTimeout: time.Minute})
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
	bk := newBackend(b, target([]string{srv.Addr}, mods...))
	pol := backends.Policy{Retention: config.Retention{MaxAgeSeconds: ptr(maxAge)}, Now: now}
	// The agent's heap, sampled through the trim: compaction streams, so
	// it must not grow with the stream (the writer's latency slice is in
	// it too, some 8 bytes per XADD).
	runtime.GC()
	heapBase, heapPeak := heapBytes(), uint64(0)
	heapDone := make(chan struct{})
	heapStopped := make(chan struct{})
	go func() {
		defer close(heapStopped)
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			heapPeak = max(heapPeak, heapBytes())
			select {
			case <-heapDone:
				return
			case <-t.C:
			}
		}
	}()
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
	close(heapDone)
	<-heapStopped
	heapGrowth := int64(heapPeak) - int64(heapBase)
	during := phase()
	stop.Store(true)
	<-done
	if err != nil {
		b.Fatal(err)
	}
	must(b, c.ConfigSet(ctx, "slowlog-log-slower-than", "10000").Err())
	// A trim that removed nothing timed nothing: the figures below would
	// be of a no-op. Each shape knows what it must remove.
	if after := xlen(b, c, key); st.Removed() != want || after >= before+written.Load() {
		b.Fatalf("the trim did not do the work it times: removed %d of %d entries (want %d), %d left (+%d written meanwhile)", st.Removed(), before, want, after, written.Load())
	}

	// SLOWLOG holds every command of the run, the writer's too: a long
	// reply, read with a long timeout.
	slow := redis.NewClient(&redis.Options{Addr: srv.Addr, DisableIdentity: true, ReadTimeout: time.Minute})
	defer slow.Close()
	cmds := agentCommands(b, slow)
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
	fmt.Printf("slowest agent command: %s; writer XADD p99 during the trim: %s (baseline %s)\n",
		describe(cmds[0]), quantile(during, 0.99), quantile(baseline, 0.99))
	b.ReportMetric(float64(cmds[0].Duration.Microseconds())/1000, "max-cmd-ms")
	b.ReportMetric(took.Seconds(), "trim-s")
	limit := maxCommand
	if shape == "large" || shape == "mixed" {
		// A command that must touch one large entry costs that entry.
		must(b, c.XAdd(ctx, &redis.XAddArgs{Stream: "ref", ID: "1-0", Values: []any{"data", bigRecord(0, 1, env("PAPYRA_BENCH_LARGE_MB", 10)<<20)}}).Err())
		one := serverCost(b, c, 5, "XRANGE", "ref", "-", "+", "COUNT", 1)
		fmt.Printf("reading one large entry costs %s (median of 5)\n", one)
		limit = max(limit, 2*one)
	}
	// The one exception entries.go documents: a read sized on small
	// entries that meets several large ones (Redis tells an entry's size
	// only by returning it). Reported apart, and only that read excused.
	excused := map[int64]bool{}
	heapAllowed := int64(maxHeapGrowth)
	if shape == "mixed" {
		for _, fc := range firstContacts(b, cmds, key, shapeIDs) {
			excused[fc.l.ID] = true
			// Its reply is in the agent's memory too, parsed.
			heapAllowed = max(heapAllowed, maxHeapGrowth+int64(fc.large)*int64(env("PAPYRA_BENCH_LARGE_MB", 10)<<20)*3/2)
			fmt.Printf("first read to meet large entries after small ones (the exception entries.go documents): %s returned %d large entries\n", describe(fc.l), fc.large)
		}
	}
	for i, l := range cmds {
		if excused[l.ID] {
			continue
		}
		if i > 0 {
			fmt.Printf("slowest other agent command: %s (bound %s)\n", describe(l), limit)
		}
		if l.Duration > limit {
			b.Errorf("command %s, want at most %s", describe(l), limit)
		}
		break // the longest first: the rest are shorter
	}
	fmt.Printf("agent heap: peak %.1f MB above its %.1f MB before the trim (the stream: %.0f MB in Redis; bound %.0f MB)\n",
		float64(heapGrowth)/1e6, float64(heapBase)/1e6, float64(mem)/1e6, float64(heapAllowed)/1e6)
	b.ReportMetric(float64(heapGrowth)/1e6, "heap-peak-MB")
	if heapGrowth > heapAllowed {
		b.Errorf("the agent's heap grew by %.1f MB during the trim, want at most %.0f MB: compaction streams, one step at a time", float64(heapGrowth)/1e6, float64(heapAllowed)/1e6)
	}
	// An XADD that arrives during an agent step waits for it: with steps
	// busy 2-3 % of the time at the default duty cycle, the writer's p99
	// is about one step (0.2-0.3 ms), whatever the baseline.
	if p99, base := quantile(during, 0.99), quantile(baseline, 0.99); p99 > max(2*base, base+250*time.Microsecond) {
		b.Errorf("writer XADD p99 during the trim %s, want at most twice the baseline's %s or a quarter millisecond above it", p99, base)
	}
}

// quantile is the q-quantile of d (sorted by percentiles).
func quantile(d []time.Duration, q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	slices.Sort(d)
	return d[min(len(d)-1, int(q*float64(len(d))))]
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

// writtenID is one entry a bench shape wrote, and whether it is large.
type writtenID struct {
	id    streamIDText
	large bool
}

type firstContact struct {
	l     redis.SlowLog
	large int
}

// firstContacts replays, on the IDs the shape wrote (in order), the
// agent's forward reads of key before its first trim, and returns those
// that returned two or more large entries right after a read that
// returned none: the reads sized on small entries that met large ones.
func firstContacts(tb testing.TB, cmds []redis.SlowLog, key string, written []writtenID) []firstContact {
	inOrder := slices.Clone(cmds)
	slices.SortFunc(inOrder, func(a, b redis.SlowLog) int { return int(a.ID - b.ID) })
	// bound is the index of the first written entry past x ("(x": after
	// it, "x": at it), or the ends for "-" and "+".
	bound := func(x string, after bool) int {
		switch x {
		case "-":
			return 0
		case "+":
			return len(written)
		}
		if len(x) > 0 && x[0] == '(' {
			x, after = x[1:], !after
		}
		id := parseIDText(tb, x)
		return sort.Search(len(written), func(i int) bool {
			if after {
				return id.less(written[i].id)
			}
			return !written[i].id.less(id)
		})
	}
	var out []firstContact
	prev := -1
	for _, l := range inOrder {
		a := l.Args
		if len(a) >= 5 && strings.EqualFold(a[0], "EVALSHA") && a[3] == key && a[4] == "minid" {
			break
		}
		if len(a) < 6 || !strings.EqualFold(a[0], "XRANGE") || a[1] != key || !strings.EqualFold(a[4], "COUNT") {
			continue
		}
		count, err := strconv.Atoi(a[5])
		if err != nil {
			tb.Fatalf("%s: COUNT %q", describe(l), a[5])
		}
		lo, hi := bound(a[2], false), bound(a[3], true)
		var large int
		for _, w := range written[lo:max(lo, min(hi, lo+count))] {
			if w.large {
				large++
			}
		}
		if large >= 2 && prev == 0 {
			out = append(out, firstContact{l, large})
		}
		prev = large
	}
	return out
}

// maxHeapGrowth bounds how much the agent's heap may grow during a bench
// trim: a few steps of at most one large entry each, the plan's cuts, and
// the writer's latency samples; reading the 60 large entries at once
// would be 600 MB. A whole-stream scan (the default mode,
// PAPYRA_BENCH_SCAN=1) keeps counts, not an item per entry: the plan that
// kept 32 bytes per entry grew by 262 MB at 2 M entries.
const maxHeapGrowth = 128 << 20

// heapBytes is the memory occupied by live and not yet swept heap objects.
func heapBytes() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}
