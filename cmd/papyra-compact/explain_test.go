package main_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/papyra-compact/papyra-compact/internal/testutil"
)

// explainDoc is the part of `explain --json` the tests read: the field
// names scripts rely on.
type explainDoc struct {
	Target     string     `json:"target"`
	Source     string     `json:"source"`
	AsOf       *time.Time `json:"as_of"`
	Unreadable string     `json:"unreadable"`
	Records    int64      `json:"records"`
	Ages       []struct {
		Age     string `json:"age"`
		Records int64  `json:"records"`
	} `json:"ages"`
	Remove struct {
		Records int64 `json:"records"`
		Age     int64 `json:"age"`
	} `json:"would_remove"`
	Keep struct {
		Records int64 `json:"records"`
	} `json:"would_keep"`
	Held []struct {
		Reason  string `json:"reason"`
		Detail  string `json:"detail"`
		Records int64  `json:"records"`
	} `json:"held"`
	Future struct {
		Records int64 `json:"records"`
		Newest  any   `json:"newest"`
	} `json:"future"`
	Corrupt int64    `json:"corrupt"`
	Lock    string   `json:"lock"`
	Sandbox []string `json:"sandbox_missing"`
}

func jsonlLine(i int, ts string) string {
	return fmt.Sprintf(`{"kind": "event", "system_id": "local", "actor_address": {"system": "local", "actor_id": 1}, "event_type": "ActorStarted", "payload": {"i": %d}, "timestamp": %s}`+"\n", i, ts)
}

// TestExplain_Unprivileged runs `explain` as nobody, as an operator
// without root would: a store it can read is explained now, without the
// lock it cannot take and without writing to the state directory; a 0600
// store and a Redis target whose password_file only root reads fall back
// to the last run's figures, marked as such. As root, the same Redis
// store is read and the entries its consumer group holds are named.
func TestExplain_Unprivileged(t *testing.T) {
	if os.Geteuid() != 0 {
		testutil.SkipOrFail(t, "needs root to run explain as another user")
	}
	dir := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.Chmod(dir, 0o755))
	for d := filepath.Dir(dir); d != "/"; d = filepath.Dir(d) {
		if fi, err := os.Stat(d); err == nil && fi.Mode().Perm()&0o001 == 0 {
			must(os.Chmod(d, fi.Mode().Perm()|0o001))
		}
	}
	now := time.Now().Unix()
	var pub strings.Builder
	for i, age := range []int64{100 * 86400, 40 * 86400, 3 * 86400, 3 * 86400, 7200, 60, 60} {
		pub.WriteString(jsonlLine(i, strconv.FormatInt(now-age, 10)+".5"))
	}
	pub.WriteString(jsonlLine(7, strconv.FormatInt(now+86400, 10)+".0"))
	pub.WriteString(jsonlLine(8, "Infinity"))
	pub.WriteString("{torn\n")
	public, private := filepath.Join(dir, "public.jsonl"), filepath.Join(dir, "private.jsonl")
	must(os.WriteFile(public, []byte(pub.String()), 0o644))
	must(os.WriteFile(private, []byte(pub.String()), 0o600))

	srv := testutil.StartRedis(t, "--requirepass", "s3cret")
	rc := redis.NewClient(&redis.Options{Addr: srv.Addr, Password: "s3cret"})
	defer rc.Close()
	ctx := context.Background()
	old := time.Now().Add(-72 * time.Hour).UnixMilli()
	for i := range 5 {
		must(rc.XAdd(ctx, &redis.XAddArgs{Stream: "papyra:local:events", ID: fmt.Sprintf("%d-%d", old, i+1),
			Values: map[string]any{"data": strings.TrimSuffix(jsonlLine(i, strconv.FormatInt(now-72*3600, 10)+".5"), "\n")}}).Err())
	}
	must(rc.XGroupCreate(ctx, "papyra:local:events", "billing", "0").Err())
	pass := filepath.Join(dir, "redis.pass")
	must(os.WriteFile(pass, []byte("s3cret\n"), 0o600))

	stateDir := filepath.Join(dir, "state")
	cfg := filepath.Join(dir, "compact.yaml")
	must(os.WriteFile(cfg, fmt.Appendf(nil, `state_dir: %[1]s/state
lock_dir: %[1]s/lock
quarantine_dir: %[1]s/quarantine
metrics:
  textfile: ""
targets:
  - name: public
    kind: jsonl
    path: %[2]s
    retention:
      max_age: 30d
  - name: private
    kind: jsonl
    path: %[3]s
    retention:
      max_age: 30d
  - name: events
    kind: redis
    addrs: ["%[4]s"]
    password_file: %[5]s
    retention:
      max_age: 1d
`, dir, public, private, srv.Addr, pass), 0o644))

	bin := filepath.Join(dir, "papyra-compact")
	testutil.CopyFile(t, testutil.Binary(t), bin)
	must(os.Chmod(bin, 0o755))
	// The private store and the Redis target ran once, as root.
	if code, out, errOut := runBinary(t, bin, nil, "run", "--config", cfg, "--target", "private", "--target", "events"); code != 0 {
		t.Fatalf("run: exit %d\n%s%s", code, out, errOut)
	}
	must(os.MkdirAll(filepath.Join(dir, "lock"), 0o700)) // nobody cannot take a lock
	stateBefore := treeOf(t, stateDir)

	nobody := &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	explain := func(t *testing.T, attr *syscall.SysProcAttr, target string) (explainDoc, string) {
		t.Helper()
		code, out, errOut := runBinary(t, bin, attr, "explain", target, "--config", cfg, "--json")
		if code != 0 || errOut != "" {
			t.Fatalf("explain %s --json: exit %d\n%s%s", target, code, out, errOut)
		}
		var doc explainDoc
		if err := json.Unmarshal([]byte(out), &doc); err != nil {
			t.Fatalf("explain --json: %v\n%s", err, out)
		}
		code, text, errOut := runBinary(t, bin, attr, "explain", "--config", cfg, target)
		if code != 0 || errOut != "" {
			t.Fatalf("explain %s: exit %d\n%s%s", target, code, text, errOut)
		}
		return doc, text
	}

	t.Run("ReadableStore", func(t *testing.T) {
		doc, text := explain(t, nobody, "public")
		ages := map[string]int64{}
		for _, a := range doc.Ages {
			ages[a.Age] = a.Records
		}
		want := map[string]int64{"1h": 2, "1d": 1, "7d": 2, "30d": 0, "90d": 1, "older": 1, "future": 2, "undated": 0}
		if fmt.Sprint(ages) != fmt.Sprint(want) {
			t.Errorf("ages %v, want %v", ages, want)
		}
		if doc.Source != "store" || doc.Records != 9 || doc.Remove.Age != 2 || doc.Keep.Records != 7 || doc.Corrupt != 1 ||
			doc.Future.Records != 2 || doc.Future.Newest != "Infinity" || !strings.HasPrefix(doc.Lock, "not taken") {
			t.Errorf("explain as nobody: %+v", doc)
		}
		for _, line := range []string{
			"public: jsonl store " + public,
			"policy: max_age 30d, max_clock_skew 5m0s",
			"It holds 9 records,",
			"  future-dated             2 ",
			"Retention would remove 2 records now (by age 2, by count 0, by size 0)",
			"7 records (", " stay, the oldest stamped ",
			"  7 inside the policy.",
			"  2 of them future-dated: stamped more than max_clock_skew (5m0s) ahead, the newest Infinity (never ages).",
			"Also: 1 corrupt line (a run moves them to quarantine), 0 blank lines",
			"SANDBOX: papyra-compact.service and papyra-compact-daemon.service cannot write " + dir,
		} {
			if !strings.Contains(text, line) {
				t.Errorf("text lacks %q:\n%s", line, text)
			}
		}
		if got, _ := os.ReadFile(public); string(got) != pub.String() {
			t.Error("explain changed the store")
		}
	})

	t.Run("PrivateStoreFallsBack", func(t *testing.T) {
		doc, text := explain(t, nobody, "private")
		if doc.Source != "last_run" || doc.AsOf == nil || !strings.Contains(doc.Unreadable, "permission denied") ||
			doc.Records != 9 || doc.Remove.Records != 2 || doc.Future.Records != 2 || len(doc.Ages) != 8 {
			t.Errorf("explain of a 0600 store as nobody: %+v", doc)
		}
		for _, line := range []string{"CANNOT READ THE STORE: ", "permission denied", "Figures as of the last run at " + doc.AsOf.UTC().Format(time.RFC3339),
			"It held 9 records", "That run removed 2 records"} {
			if !strings.Contains(text, line) {
				t.Errorf("text lacks %q:\n%s", line, text)
			}
		}
	})

	t.Run("RedisSecretFallsBack", func(t *testing.T) {
		doc, _ := explain(t, nobody, "events")
		if doc.Source != "last_run" || !strings.Contains(doc.Unreadable, "password_file") || len(doc.Held) != 1 || doc.Held[0].Records != 5 {
			t.Errorf("explain of a Redis target whose secret only root reads, as nobody: %+v", doc)
		}
	})

	t.Run("RedisAsRoot", func(t *testing.T) {
		doc, text := explain(t, nil, "events")
		if doc.Source != "store" || doc.Records != 5 || len(doc.Held) != 1 || doc.Held[0].Reason != "held_by_group" || doc.Held[0].Records != 5 ||
			!strings.Contains(doc.Held[0].Detail, "billing") {
			t.Errorf("explain of a Redis store with a group holding every entry: %+v", doc)
		}
		if !strings.Contains(text, "5 held by consumer group billing of papyra:local:events") {
			t.Errorf("text does not name the group:\n%s", text)
		}
	})

	if got := treeOf(t, stateDir); got != stateBefore {
		t.Errorf("explain changed the state directory:\n%s\nwas:\n%s", got, stateBefore)
	}
}

// treeOf lists every file under dir with its size, mtime and content.
func treeOf(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "%s %v %d %d\n", p, fi.Mode(), fi.Size(), fi.ModTime().UnixNano())
		if fi.Mode().IsRegular() {
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			b.Write(data)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}
