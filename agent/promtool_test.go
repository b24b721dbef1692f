package agent_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/papyra-compact/papyra-compact/internal/testutil"
)

// promtool returns the path of Debian's promtool (package prometheus).
func promtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err != nil {
		testutil.SkipOrFail(t, "promtool not installed (make deps installs Debian's prometheus package)")
	}
	return p
}

func rulesDir(t *testing.T) string {
	return filepath.Join(testutil.Root(t), "packaging", "prometheus")
}

// TestPromtool_CheckMetrics lints every golden textfile as Prometheus's
// own linter does (names, units, _total on counters, help texts).
func TestPromtool_CheckMetrics(t *testing.T) {
	bin := promtool(t)
	goldens, err := filepath.Glob(filepath.Join("testdata", "*.prom"))
	must(t, err)
	if len(goldens) == 0 {
		t.Fatal("no golden textfiles in testdata")
	}
	for _, g := range goldens {
		t.Run(filepath.Base(g), func(t *testing.T) {
			data, err := os.ReadFile(g)
			must(t, err)
			cmd := exec.Command(bin, "check", "metrics")
			cmd.Stdin = bytes.NewReader(data)
			if out, err := cmd.CombinedOutput(); err != nil || len(bytes.TrimSpace(out)) > 0 {
				t.Errorf("promtool check metrics: %v\n%s", err, out)
			}
		})
	}
}

// TestPromtool_Rules checks the rules and runs their unit tests.
func TestPromtool_Rules(t *testing.T) {
	bin := promtool(t)
	dir := rulesDir(t)
	for _, args := range [][]string{
		{"check", "rules", "papyra-compact.rules.yml"},
		{"test", "rules", "papyra-compact.rules.test.yml"},
	} {
		t.Run(strings.Join(args[:2], "_"), func(t *testing.T) {
			cmd := exec.Command(bin, args...)
			cmd.Dir = dir
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
			}
		})
	}
}

// TestRules_EveryAlertTested requires, for every alert, a unit test where
// it fires and one where it does not.
func TestRules_EveryAlertTested(t *testing.T) {
	var rules struct {
		Groups []struct {
			Rules []struct {
				Alert string `yaml:"alert"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	var tests struct {
		Tests []struct {
			AlertRuleTest []struct {
				Alertname string `yaml:"alertname"`
				ExpAlerts []any  `yaml:"exp_alerts"`
			} `yaml:"alert_rule_test"`
		} `yaml:"tests"`
	}
	readYAML(t, filepath.Join(rulesDir(t), "papyra-compact.rules.yml"), &rules)
	readYAML(t, filepath.Join(rulesDir(t), "papyra-compact.rules.test.yml"), &tests)
	fires, silent := map[string]bool{}, map[string]bool{}
	for _, tc := range tests.Tests {
		for _, a := range tc.AlertRuleTest {
			if len(a.ExpAlerts) > 0 {
				fires[a.Alertname] = true
			} else {
				silent[a.Alertname] = true
			}
		}
	}
	var alerts []string
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			if r.Alert != "" {
				alerts = append(alerts, r.Alert)
			}
		}
	}
	if len(alerts) < 6 {
		t.Errorf("got %d alerts, want at least the 6 the issue lists", len(alerts))
	}
	for _, a := range alerts {
		t.Run(a, func(t *testing.T) {
			if !fires[a] || !silent[a] {
				t.Errorf("got a firing test %v and a silent test %v, want both", fires[a], silent[a])
			}
		})
	}
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	data, err := os.ReadFile(path)
	must(t, err)
	if err := yaml.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// dashboard is the part of a Grafana dashboard the tests look at.
type dashboard struct {
	Title  string `json:"title"`
	UID    string `json:"uid"`
	Panels []struct {
		Title   string `json:"title"`
		Targets []struct {
			Expr string `json:"expr"`
		} `json:"targets"`
	} `json:"panels"`
}

func readDashboard(t *testing.T) dashboard {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(testutil.Root(t), "packaging", "grafana", "papyra-compact.json"))
	must(t, err)
	var d dashboard
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatalf("dashboard is not valid JSON: %v", err)
	}
	return d
}

// TestDashboard_Panels checks the panels the issue asks for exist and
// that every query is valid PromQL: each one, with Grafana's variables
// replaced, becomes a recording rule that promtool parses.
func TestDashboard_Panels(t *testing.T) {
	d := readDashboard(t)
	titles := map[string]bool{}
	for _, p := range d.Panels {
		titles[p.Title] = true
	}
	for _, want := range []string{"Runs per hour by result", "Failures", "Reclaimed bytes per hour", "Store size after compaction", "Oldest record age"} {
		t.Run(want, func(t *testing.T) {
			if !titles[want] {
				t.Errorf("no panel %q in %v", want, titles)
			}
		})
	}
	t.Run("PromQL", func(t *testing.T) {
		bin := promtool(t)
		vars := strings.NewReplacer("$instance", ".*", "$target", ".*", "$__range", "7d", "$__rate_interval", "5m", "$__interval", "1m")
		var b strings.Builder
		b.WriteString("groups:\n  - name: dashboard\n    rules:\n")
		n := 0
		for _, p := range d.Panels {
			for _, q := range p.Targets {
				n++
				expr, _ := json.Marshal(vars.Replace(q.Expr)) // a JSON string is a YAML string
				fmt.Fprintf(&b, "      - record: dashboard:q%d\n        expr: %s\n", n, expr)
			}
		}
		path := filepath.Join(t.TempDir(), "dashboard.rules.yml")
		must(t, os.WriteFile(path, []byte(b.String()), 0o644))
		if out, err := exec.Command(bin, "check", "rules", path).CombinedOutput(); err != nil {
			t.Errorf("dashboard queries: %v\n%s", err, out)
		}
	})
}

// TestRulesAndDashboard_KnownMetrics catches a renamed metric: every
// papyra_compact_* name the rules and the dashboard use must be one the
// goldens export.
func TestRulesAndDashboard_KnownMetrics(t *testing.T) {
	known := map[string]bool{}
	goldens, err := filepath.Glob(filepath.Join("testdata", "*.prom"))
	must(t, err)
	for _, g := range goldens {
		data, err := os.ReadFile(g)
		must(t, err)
		for name := range parsePromFamilies(t, data) {
			known[name] = true
		}
	}
	re := regexp.MustCompile(`papyra_compact_[a-z0-9_]+`)
	for _, f := range []string{
		filepath.Join(rulesDir(t), "papyra-compact.rules.yml"),
		filepath.Join(testutil.Root(t), "packaging", "grafana", "papyra-compact.json"),
	} {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			must(t, err)
			used := map[string]bool{}
			for _, m := range re.FindAllString(string(data), -1) {
				used[m] = true
			}
			if len(used) == 0 {
				t.Fatal("no metric used")
			}
			var unknown []string
			for m := range used {
				if !known[m] {
					unknown = append(unknown, m)
				}
			}
			sort.Strings(unknown)
			if len(unknown) > 0 {
				t.Errorf("got unknown metrics %v, want only names in testdata/*.prom", unknown)
			}
		})
	}
}

// parsePromFamilies returns the metric family names in a textfile.
func parsePromFamilies(t *testing.T, data []byte) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	for key := range parseProm(t, data) {
		name, _, _ := strings.Cut(key, "{")
		out[name] = true
	}
	return out
}
