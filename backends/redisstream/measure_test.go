package redisstream_test

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/papyra-compact/papyra-compact/backends"
	"github.com/papyra-compact/papyra-compact/config"
	"github.com/papyra-compact/papyra-compact/internal/testutil"
)

// maxCommand is the bound on any single command the agent sends;
// outlierCap bounds the few a starved CI machine may stretch.
const (
	maxCommand = 10 * time.Millisecond
	outlierCap = 50 * time.Millisecond
)

// fillScript writes ARGV[2] Papyra records to KEYS[1] from number
// ARGV[1] on, two per millisecond from ARGV[3]: the same text as papyra()
// (Lua's %.14g prints these timestamps as Python's repr does).
var fillScript = redis.NewScript(`
local first, n, base = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
for i = first, first + n - 1 do
  local ms = base + math.floor(i / 2)
  redis.call('XADD', KEYS[1], string.format('%d-%d', ms, i % 2), 'data',
    '{"kind": "event", "system_id": "local", "actor_address": {"system": "local", "actor_id": ' .. i ..
    '}, "event_type": "ActorStarted", "payload": {"i": ' .. i .. '}, "timestamp": ' .. tostring((ms - 2) / 1000) .. '}')
end
return n
`)

// fill writes n Papyra records to key, two per millisecond, the newest
// written a minute before the returned "now"; the older half is older
// than half the span. It writes server-side, 50,000 records per script
// call, so that a large stream takes seconds whatever the client's
// speed (the race detector), and checks the text against papyra().
func fill(tb testing.TB, c redis.UniversalClient, key string, n int) (now time.Time, span time.Duration) {
	tb.Helper()
	span = time.Duration(n/2) * time.Millisecond
	now = time.Now().Truncate(time.Millisecond)
	base := now.Add(-time.Minute - span).UnixMilli()
	ctx := context.Background()
	for start := 0; start < n; start += 50000 {
		if err := fillScript.Run(ctx, c, []string{key}, start, min(50000, n-start), base).Err(); err != nil {
			tb.Fatalf("fill %s: %v", key, err)
		}
	}
	for _, i := range []int{0, n - 1} {
		ms := base + int64(i/2)
		msgs, err := c.XRangeN(ctx, key, fmt.Sprintf("%d-%d", ms, i%2), "+", 1).Result()
		if err != nil || len(msgs) != 1 || msgs[0].Values["data"] != papyra(i, float64(ms-2)/1000) {
			tb.Fatalf("fill %s: entry %d is %v (%v), want %s", key, i, msgs, err, papyra(i, float64(ms-2)/1000))
		}
	}
	return now, span
}

// slowlogOn makes the server log every command, for the agent's commands
// to be measured by the server itself.
func slowlogOn(tb testing.TB, c redis.UniversalClient, maxLen int) {
	tb.Helper()
	ctx := context.Background()
	must(tb, c.ConfigSet(ctx, "slowlog-max-len", fmt.Sprint(maxLen)).Err())
	must(tb, c.ConfigSet(ctx, "slowlog-log-slower-than", "0").Err())
	must(tb, c.Do(ctx, "SLOWLOG", "RESET").Err())
}

// agentCommands returns the logged commands papyra-compact sent, longest
// first.
func agentCommands(tb testing.TB, c redis.UniversalClient) []redis.SlowLog {
	tb.Helper()
	logs, err := c.SlowLogGet(context.Background(), -1).Result()
	if err != nil {
		tb.Fatal(err)
	}
	var out []redis.SlowLog
	for _, l := range logs {
		if l.ClientName == "papyra-compact" {
			out = append(out, l)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Duration > out[j].Duration })
	return out
}

func describe(l redis.SlowLog) string {
	args := make([]string, 0, len(l.Args))
	for _, a := range l.Args {
		a = strings.Join(strings.Fields(a), " ") // a script's source
		if len(a) > 40 {
			a = a[:37] + "..."
		}
		args = append(args, a)
	}
	return fmt.Sprintf("%s (%s)", l.Duration, strings.Join(args, " "))
}

// TestLargestCommand builds a large stream (1 M entries, 200 k with
// -short) and compacts it twice, half by age then to the newest 50,000 by
// count, reading the server's SLOWLOG (threshold 0): no single command the
// agent sends may take more than maxCommand. It logs the figures.
func TestLargestCommand(t *testing.T) {
	n := 1_000_000
	if testing.Short() {
		n = 200_000
	}
	srv := testutil.StartRedis(t)
	c := newClient(t, srv.Addr)
	const key = "papyra:local:events"
	now, span := fill(t, c, key, n)
	b := newBackend(t, target([]string{srv.Addr}, exact))
	for _, step := range []struct {
		name string
		ret  config.Retention
		left int64
	}{
		{"AgeHalf", config.Retention{MaxAgeSeconds: ptr((span/2 + time.Minute).Seconds())}, int64(n / 2)},
		{"Count50k", config.Retention{MaxRecords: ptr[int64](50_000)}, 50_000},
	} {
		slowlogOn(t, c, 100_000)
		start := time.Now()
		st, err := compact(t, b, backends.Policy{Retention: step.ret, Now: now})
		took := time.Since(start)
		if err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		if got := xlen(t, c, key); got != step.left {
			t.Errorf("%s: %d entries left, want %d", step.name, got, step.left)
		}
		cmds := agentCommands(t, c)
		var server time.Duration
		for _, l := range cmds {
			server += l.Duration
		}
		t.Logf("%s: removed %d of %d entries in %s (%.0f entries/s); %d commands, %s of server time, p50 %s, p99 %s, longest %s",
			step.name, st.Removed(), st.RecordsBefore, took.Round(time.Millisecond), float64(st.Removed())/took.Seconds(),
			len(cmds), server.Round(time.Microsecond), cmds[len(cmds)/2].Duration, cmds[len(cmds)/100].Duration, describe(cmds[0]))
		// SLOWLOG times are wall time: on a busy CI machine (go test runs
		// packages in parallel) a command can be descheduled mid-way, and
		// even a GET then takes milliseconds. So two outliers are allowed,
		// up to outlierCap; an unbounded command (one XTRIM of the 500,000
		// entries here takes about 80 ms) still fails. bench/redis.sh
		// holds the strict bound.
		if len(cmds) > 2 && cmds[2].Duration > maxCommand || cmds[0].Duration > outlierCap {
			t.Errorf("%s: longest commands %s, %s, %s: want at most two over %s and none over %s",
				step.name, describe(cmds[0]), describe(cmds[1]), describe(cmds[2]), maxCommand, outlierCap)
		}
	}
}
