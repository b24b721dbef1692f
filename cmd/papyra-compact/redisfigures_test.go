package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/papyra-compact/papyra-compact/internal/testutil"
)

// TestRedisFigures: a real redis-server whose events stream has old
// entries Papyra cannot read, removed with retention under
// quarantine_corrupt: false, and whose audits stream has a consumer
// group holding back old entries it has pending, a count the run
// estimates. The corrupt entries are exported as
// records_removed_total{reason="corrupt"} (not as records), and the
// estimate is said to be one ("about") in the summary, in status (table
// and JSON) and in the metric's help.
func TestRedisFigures(t *testing.T) {
	srv := testutil.StartRedis(t)
	ctx := context.Background()
	rc := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer rc.Close()
	day := int64(86_400_000)
	add := func(stream string, i int, data string) {
		t.Helper()
		id := fmt.Sprintf("%d-0", int64(1793300000000)+int64(i)*day)
		if err := rc.XAdd(ctx, &redis.XAddArgs{Stream: stream, ID: id, Values: []any{"data", data}}).Err(); err != nil {
			t.Fatal(err)
		}
	}
	rec := func(i int) string { return fmt.Sprintf(`{"kind": "event", "timestamp": %d.0}`, 1793300000+i*86400) }
	for i := 1; i <= 20; i++ {
		data := rec(i)
		if i == 3 || i == 5 || i == 7 {
			data = "not json"
		}
		add("papyra:local:events", i, data)
		add("papyra:local:audits", i, rec(i))
	}
	if err := rc.XGroupCreate(ctx, "papyra:local:audits", "readers", "0").Err(); err != nil {
		t.Fatal(err)
	}
	if err := rc.XReadGroup(ctx, &redis.XReadGroupArgs{Group: "readers", Consumer: "c", Streams: []string{"papyra:local:audits", ">"}, Count: 4}).Err(); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	textfile := filepath.Join(dir, "papyra.prom")
	cfg := filepath.Join(dir, "compact.yaml")
	y := "state_dir: " + dir + "/state\nlock_dir: " + dir + "/lock\nquarantine_dir: " + dir + "/q\n" +
		"metrics:\n  textfile: " + textfile + "\ntargets:\n" +
		"  - name: ev\n    kind: redis\n    url: redis://" + srv.Addr + "/0\n    approximate: false\n" +
		"    quarantine_corrupt: false\n    retention:\n      max_age: 1d\n"
	if err := os.WriteFile(cfg, []byte(y), 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := cli(t, "run", "--config", cfg, "--now", "1795000000")
	if code != 0 {
		t.Fatalf("run: exit %d\n%s\n%s", code, stdout, stderr)
	}
	if !strings.Contains(stdout, "3 unreadable entries removed without quarantine") {
		t.Errorf("summary does not say the 3 unreadable entries were removed:\n%s", stdout)
	}
	if !strings.Contains(stdout, "about ") || !strings.Contains(stdout, "kept for consumer group readers") {
		t.Errorf("summary does not mark the held-back estimate \"about\":\n%s", stdout)
	}
	prom, err := os.ReadFile(textfile)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`papyra_compact_records_removed_total{backend="redis",reason="corrupt",target="ev"} 3`,
		`papyra_compact_records_removed_total{backend="redis",reason="age",target="ev"} 15`,
		`# HELP papyra_compact_redis_held_back_entries `,
	} {
		if !strings.Contains(string(prom), want) {
			t.Errorf("textfile lacks %s:\n%s", want, prom)
		}
	}
	if i := strings.Index(string(prom), "# HELP papyra_compact_redis_held_back_entries"); i >= 0 {
		if help, _, _ := strings.Cut(string(prom)[i:], "\n"); !strings.Contains(help, "estimate") || !strings.Contains(help, `"about"`) {
			t.Errorf("held-back help does not say it may be an estimate: %s", help)
		}
	}
	code, stdout, stderr = cli(t, "status", "--config", cfg)
	if code != 0 || !strings.Contains(stdout, "kept for Redis consumer groups") || !strings.Contains(stdout, "ev: about ") {
		t.Errorf("status: exit %d, want the held-back entries marked \"about\":\n%s\n%s", code, stdout, stderr)
	}
	code, stdout, stderr = cli(t, "status", "--config", cfg, "--json")
	var rep struct {
		Targets []struct {
			Target    string `json:"target"`
			HeldBack  *int64 `json:"redis_held_back_entries"`
			Estimated bool   `json:"redis_held_back_estimated"`
			Counters  struct {
				RemovedCorrupt uint64 `json:"removed_corrupt"`
			} `json:"counters"`
		} `json:"targets"`
	}
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil || code != 0 || len(rep.Targets) != 1 {
		t.Fatalf("status --json: exit %d, %v\n%s\n%s", code, err, stdout, stderr)
	}
	if r := rep.Targets[0]; r.HeldBack == nil || *r.HeldBack <= 0 || !r.Estimated || r.Counters.RemovedCorrupt != 3 {
		t.Errorf("status --json: held back %v, estimated %v, removed corrupt %d; want some, true, 3\n%s", r.HeldBack, r.Estimated, r.Counters.RemovedCorrupt, stdout)
	}
}
