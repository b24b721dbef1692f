package config_test

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/papyra-compact/papyra-compact/config"
)

const file = "compact.yaml"

func ptr[T any](v T) *T { return &v }

// asJSON renders a Config so that a mismatch shows values, not pointers.
func asJSON(t *testing.T, c *config.Config) string {
	t.Helper()
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		t.Fatalf("marshal config: %v", err)
	}
	return string(b)
}

func withFile(c *config.Config, f string) *config.Config {
	c.File = f
	return c
}

func TestParse(t *testing.T) {
	const full = `# every option
state_dir: /srv/papyra/state
lock_dir: /run/papyra
quarantine_dir: /srv/papyra/quarantine
metrics:
  textfile: /srv/metrics/papyra.prom
defaults:
  grace_period: 1500ms
  retention:
    max_records: 1000
    max_age: 7d
    max_total_bytes: 1048576
targets:
  - name: events
    kind: jsonl
    path: /srv/app/events.jsonl
  - name: audit.log
    kind: rotating
    path: /srv/app/audit.jsonl
    max_bytes: 10485760
    max_files: 5
    grace_period: 10
    keep_free: 5%
    min_keep: 1d
    min_reclaim: 10MiB
    max_clock_skew: 1m
    retention:
      max_records: 0
      max_age_seconds: 2.5
  - name: cache-1
    kind: redis
    retention: {}
  - name: scratch_2
    kind: memory
    retention: ~
`
	want := &config.Config{
		File:          file,
		StateDir:      "/srv/papyra/state",
		LockDir:       "/run/papyra",
		QuarantineDir: "/srv/papyra/quarantine",
		Metrics:       config.Metrics{Textfile: "/srv/metrics/papyra.prom"},
		Defaults: config.Defaults{
			GracePeriod:  config.Duration(1500 * time.Millisecond),
			Interval:     config.Duration(time.Hour),
			MaxClockSkew: config.Duration(5 * time.Minute),
			Retention: &config.Retention{
				MaxRecords:    ptr[int64](1000),
				MaxAgeSeconds: ptr(604800.0),
				MaxTotalBytes: ptr[int64](1 << 20),
			},
		},
		Targets: []config.Target{
			{Line: 14, Name: "events", Kind: config.KindJSONL, Path: "/srv/app/events.jsonl"},
			{
				Line: 17, Name: "audit.log", Kind: config.KindRotating, Path: "/srv/app/audit.jsonl",
				MaxBytes: ptr[int64](10 << 20), MaxFiles: ptr[int64](5),
				GracePeriod:  ptr(config.Duration(10 * time.Second)),
				KeepFree:     &config.Amount{Percent: 5},
				MinKeep:      ptr(config.Duration(24 * time.Hour)),
				MinReclaim:   &config.Amount{Bytes: 10 << 20},
				MaxClockSkew: ptr(config.Duration(time.Minute)),
				Retention:    &config.Retention{MaxRecords: ptr[int64](0), MaxAgeSeconds: ptr(2.5)},
			},
			{Line: 30, Name: "cache-1", Kind: config.KindRedis, Retention: &config.Retention{}},
			{Line: 33, Name: "scratch_2", Kind: config.KindMemory},
		},
	}

	tests := []struct {
		name string
		yaml string
		want *config.Config
	}{
		{"Full", full, want},
		{"Empty", "", withFile(config.Default(), file)},
		{"OnlyComments", "# nothing yet\n\n", withFile(config.Default(), file)},
		{"EmptyDocument", "---\n", withFile(config.Default(), file)},
		{"NullDocument", "~\n", withFile(config.Default(), file)},
		{"EmptyMapping", "{}\n", withFile(config.Default(), file)},
		{
			"PartialMappingKeepsDefaults", "defaults:\n  retention:\n    max_records: 5\n",
			func() *config.Config {
				c := withFile(config.Default(), file)
				c.Defaults.Retention = &config.Retention{MaxRecords: ptr[int64](5)}
				return c
			}(),
		},
		{
			"Aliases", "defaults:\n  retention: &std {max_age: 1d}\ntargets:\n  - {name: a, kind: memory, retention: *std}\n",
			func() *config.Config {
				c := withFile(config.Default(), file)
				c.Defaults.Retention = &config.Retention{MaxAgeSeconds: ptr(86400.0)}
				c.Targets = []config.Target{{Line: 4, Name: "a", Kind: config.KindMemory,
					Retention: &config.Retention{MaxAgeSeconds: ptr(86400.0)}}}
				return c
			}(),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := config.Parse(file, []byte(tt.yaml))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if g, w := asJSON(t, got), asJSON(t, tt.want); g != w {
				t.Errorf("got %v, want %v", g, w)
			}
		})
	}
}

func TestParse_Null(t *testing.T) {
	tests := []struct {
		name  string
		yaml  string
		check func(*config.Config) bool
	}{
		{"PointerTilde", "defaults:\n  retention:\n    max_records: ~\n    max_total_bytes: 5\n",
			func(c *config.Config) bool {
				return c.Defaults.Retention.MaxRecords == nil && *c.Defaults.Retention.MaxTotalBytes == 5
			}},
		{"PointerEmpty", "defaults:\n  retention:\n", func(c *config.Config) bool { return c.Defaults.Retention == nil }},
		{"TargetRetention", "targets:\n  - {name: a, kind: memory, retention: null}\n",
			func(c *config.Config) bool { return c.Targets[0].Retention == nil }},
		{"Slice", "targets: ~\n", func(c *config.Config) bool { return c.Targets == nil }},
		{"StringIsEmpty", "metrics:\n  textfile: ~\n", func(c *config.Config) bool { return c.Metrics.Textfile == "" }},
		{"DurationIsZero", "defaults:\n  grace_period:\n", func(c *config.Config) bool { return c.Defaults.GracePeriod == 0 }},
		{"PointerDuration", "targets:\n  - {name: a, kind: memory, grace_period: ~}\n",
			func(c *config.Config) bool { return c.Targets[0].GracePeriod == nil }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := config.Parse(file, []byte(tt.yaml))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if !tt.check(got) {
				t.Errorf("got %v, want the null field unset", asJSON(t, got))
			}
		})
	}
}

func TestParse_MaxAge(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want float64
	}{
		{"Days", "max_age: 7d", 604800},
		{"Weeks", "max_age: 2w", 1209600},
		{"Mixed", "max_age: 1d12h", 129600},
		{"GoSyntax", "max_age: 1h30m", 5400},
		{"SubSecond", "max_age: 1500ms", 1.5},
		{"BareSeconds", "max_age: 90", 90},
		{"SecondsInt", "max_age_seconds: 86400", 86400},
		{"SecondsFloat", "max_age_seconds: 0.25", 0.25},
		{"SecondsZero", "max_age_seconds: 0", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := config.Parse(file, []byte("defaults:\n  retention:\n    "+tt.yaml+"\n"))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			r := got.Defaults.Retention
			if r.MaxAge != nil {
				t.Errorf("MaxAge: got %v, want nil", *r.MaxAge)
			}
			if r.MaxAgeSeconds == nil || *r.MaxAgeSeconds != tt.want {
				t.Errorf("MaxAgeSeconds: got %v, want %v", r.MaxAgeSeconds, tt.want)
			}
		})
	}
}

func TestConfig_Interval(t *testing.T) {
	const yaml = `defaults:
  interval: 6h
targets:
  - {name: default, kind: memory}
  - {name: own, kind: memory, interval: 90s}
  - {name: seconds, kind: memory, interval: 30}
  - {name: unset, kind: memory, interval: ~}
`
	c, err := config.Parse(file, []byte(yaml))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	want := map[string]time.Duration{
		"default": 6 * time.Hour,
		"own":     90 * time.Second,
		"seconds": 30 * time.Second,
		"unset":   6 * time.Hour,
	}
	for _, tgt := range c.Targets {
		t.Run(tgt.Name, func(t *testing.T) {
			if got := c.Interval(tgt); got != want[tgt.Name] {
				t.Errorf("got %v, want %v", got, want[tgt.Name])
			}
		})
	}
	t.Run("BuiltInDefault", func(t *testing.T) {
		d := config.Default()
		if got, want := d.Interval(config.Target{Name: "x"}), time.Hour; got != want {
			t.Errorf("got %v, want %v", got, want)
		}
	})
}

// problem is one expected FieldError: its class and its whole message.
type problem struct {
	is  error
	msg string
}

// checkProblems asserts that err is exactly the joined FieldErrors want, in
// order.
func checkProblems(t *testing.T, err error, want []problem) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want %d", len(want))
	}
	var got []error
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		got = joined.Unwrap()
	} else {
		got = []error{err}
	}
	var msgs []string
	for _, w := range want {
		msgs = append(msgs, w.msg)
	}
	if g, w := err.Error(), strings.Join(msgs, "\n"); g != w {
		t.Errorf("got %v, want %v", g, w)
	}
	if len(got) != len(want) {
		t.Fatalf("got %v errors, want %v", len(got), len(want))
	}
	for i, e := range got {
		var fe *config.FieldError
		if !errors.As(e, &fe) {
			t.Errorf("error %d: got %T, want *config.FieldError", i, e)
			continue
		}
		if fe.File != file {
			t.Errorf("error %d: File: got %v, want %v", i, fe.File, file)
		}
		if !errors.Is(e, want[i].is) {
			t.Errorf("error %d (%v): got errors.Is(%v) false, want true", i, e, want[i].is)
		}
	}
}

func target(lines ...string) string {
	return "targets:\n  - " + strings.Join(lines, "\n    ") + "\n"
}

func TestParse_MaxRemoveFraction(t *testing.T) {
	for _, tt := range []struct {
		value string
		want  float64
	}{{"0.5", 0.5}, {"1", 1}, {"0.001", 0.001}, {"50%", 0.5}, {`"97.5%"`, 0.975}, {"100%", 1}, {"'5 %'", 0.05}, {"1e-3", 0.001}} {
		t.Run(tt.value, func(t *testing.T) {
			c, err := config.Parse(file, []byte(target("name: a", "kind: memory", "max_remove_fraction: "+tt.value)))
			if err != nil {
				t.Fatal(err)
			}
			if got := c.Targets[0].MaxRemoveFraction; got == nil || float64(*got) != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
	c, err := config.Parse(file, []byte(target("name: a", "kind: memory")))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Targets[0].MaxRemoveFraction; got != nil {
		t.Errorf("unset: got %v, want nil (off by default)", *got)
	}
}

func TestParse_Amount(t *testing.T) {
	for _, tt := range []struct {
		value string
		want  config.Amount
	}{
		{"0", config.Amount{}}, {"1048576", config.Amount{Bytes: 1 << 20}}, {"10MiB", config.Amount{Bytes: 10 << 20}},
		{"10 mib", config.Amount{Bytes: 10 << 20}}, {"1G", config.Amount{Bytes: 1e9}}, {"1.5Ki", config.Amount{Bytes: 1536}},
		{"512k", config.Amount{Bytes: 512000}}, {"2TB", config.Amount{Bytes: 2e12}}, {"7B", config.Amount{Bytes: 7}},
		{"5%", config.Amount{Percent: 5}}, {`"0.5 %"`, config.Amount{Percent: 0.5}}, {"0%", config.Amount{}},
	} {
		t.Run(tt.value, func(t *testing.T) {
			c, err := config.Parse(file, []byte(target("name: a", "kind: memory", "min_reclaim: "+tt.value)))
			if err != nil {
				t.Fatal(err)
			}
			if got := c.Targets[0].MinReclaim; got == nil || *got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
	for _, tt := range []struct {
		a     config.Amount
		total int64
		want  int64
	}{
		{config.Amount{Bytes: 10}, 1 << 30, 10}, {config.Amount{Percent: 5}, 1000, 50},
		{config.Amount{Percent: 1}, 1, 1}, {config.Amount{Percent: 1}, 0, 0}, {config.Amount{Percent: 1}, -5, 0},
		{config.Amount{Percent: 0.5}, 1001, 6},
	} {
		if got := tt.a.Of(tt.total); got != tt.want {
			t.Errorf("%v.Of(%d) = %d, want %d", tt.a, tt.total, got, tt.want)
		}
	}
}

func TestConfig_ClockSkew(t *testing.T) {
	c, err := config.Parse(file, []byte("defaults:\n  max_clock_skew: 2m\n"+
		"targets:\n  - {name: a, kind: memory}\n  - {name: b, kind: memory, max_clock_skew: 0s}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.ClockSkew(c.Targets[0]); got != 2*time.Minute {
		t.Errorf("a: got %v, want the default 2m", got)
	}
	if got := c.ClockSkew(c.Targets[1]); got != 0 {
		t.Errorf("b: got %v, want its own 0s", got)
	}
	if got := config.Default().ClockSkew(config.Target{}); got != 5*time.Minute {
		t.Errorf("built-in default: got %v, want 5m", got)
	}
}

func TestParse_Owner(t *testing.T) {
	for _, owner := range []string{"papyra", "_svc-1", "www-data", "machine$", "1000", "0"} {
		t.Run(owner, func(t *testing.T) {
			c, err := config.Parse(file, []byte(target("name: a", "kind: jsonl", "path: /s", "owner: "+owner)))
			if err != nil {
				t.Fatal(err)
			}
			if got := c.Targets[0].Owner; got != owner {
				t.Errorf("got %q, want %q", got, owner)
			}
		})
	}
}

func TestParse_Errors(t *testing.T) {
	var (
		syntax    = config.ErrSyntax
		unknown   = config.ErrUnknownField
		wrongType = config.ErrWrongType
		invalid   = config.ErrInvalidValue
		dup       = config.ErrDuplicate
		required  = config.ErrRequired
		relative  = config.ErrRelativePath
		conflict  = config.ErrConflict
	)
	tests := []struct {
		name string
		yaml string
		want []problem
	}{
		// Syntax and document shape.
		{"NotYAML", "state_dir: /a\nlock_dir /b\nquarantine_dir: /c\n",
			[]problem{{syntax, "compact.yaml:2: invalid YAML: could not find expected ':'"}}},
		{"Tabs", "metrics:\n\ttextfile: /x\n",
			[]problem{{syntax, "compact.yaml:2: invalid YAML: found character that cannot start any token"}}},
		{"UnknownAnchor", "state_dir: *nope\n",
			[]problem{{syntax, "compact.yaml:1: invalid YAML: unknown anchor 'nope' referenced"}}},
		{"TwoDocuments", "state_dir: /a\n---\nstate_dir: /b\n",
			[]problem{{invalid, "compact.yaml:2: a second YAML document; the file must hold exactly one"}}},
		{"RootSequence", "- state_dir: /a\n",
			[]problem{{wrongType, "compact.yaml:1: must be a mapping, not a sequence"}}},
		{"RootScalar", "hello\n",
			[]problem{{wrongType, "compact.yaml:1: must be a mapping (got hello)"}}},

		// Unknown fields.
		{"UnknownTopLevel", "colour: blue\n",
			[]problem{{unknown, "compact.yaml:1: colour: unknown field"}}},
		{"UnknownTypo", "lock_dri: /run/x\n",
			[]problem{{unknown, "compact.yaml:1: lock_dri: unknown field; did you mean lock_dir?"}}},
		{"UnknownNested", target("name: a", "kind: memory", "retention:", "  max_agee: 7d"),
			[]problem{{unknown, "compact.yaml:5: targets[0].retention.max_agee: unknown field; did you mean max_age?"}}},
		{"UnknownIgnoredField", "file: /etc/other.yaml\n",
			[]problem{{unknown, "compact.yaml:1: file: unknown field"}}},
		{"UnknownQuotedKey", "\"state dir\": /x\n",
			[]problem{{unknown, `compact.yaml:1: "state dir": unknown field; did you mean state_dir?`}}},
		{"MergeKey", "defaults:\n  retention:\n    <<: {max_records: 1}\n",
			[]problem{{unknown, "compact.yaml:3: defaults.retention.<<: merge keys are not supported; repeat the fields or alias the whole value"}}},
		{"NonScalarKey", "? [a]\n: 1\n",
			[]problem{{wrongType, "compact.yaml:1: keys must be strings, not a sequence"}}},

		// Wrong types.
		{"StringForInteger", target("name: a", "kind: rotating", "path: /x", "max_bytes: ten", "max_files: 2"),
			[]problem{{wrongType, "compact.yaml:5: targets[0].max_bytes: must be an integer (got ten)"}}},
		{"QuotedNumber", "defaults:\n  retention:\n    max_records: \"10\"\n",
			[]problem{{wrongType, `compact.yaml:3: defaults.retention.max_records: must be an integer (got "10")`}}},
		{"FloatForInteger", "defaults:\n  retention:\n    max_total_bytes: 1.5\n",
			[]problem{{wrongType, "compact.yaml:3: defaults.retention.max_total_bytes: must be an integer (got 1.5)"}}},
		{"StringForFloat", "defaults:\n  retention:\n    max_age_seconds: soon\n",
			[]problem{{wrongType, "compact.yaml:3: defaults.retention.max_age_seconds: must be a number (got soon)"}}},
		{"IntegerOutOfRange", "defaults:\n  retention:\n    max_records: 99999999999999999999\n",
			[]problem{{invalid, "compact.yaml:3: defaults.retention.max_records: out of range (got 99999999999999999999)"}}},
		{"MappingForScalar", "state_dir:\n  path: /x\n",
			[]problem{{wrongType, "compact.yaml:1: state_dir: must be a string, not a mapping"}}},
		{"SequenceForScalar", target("name: [a, b]", "kind: memory"),
			[]problem{{wrongType, "compact.yaml:2: targets[0].name: must be a string, not a sequence"}}},
		{"ScalarForMapping", "metrics: /x.prom\n",
			[]problem{{wrongType, "compact.yaml:1: metrics: must be a mapping (got /x.prom)"}}},
		{"ScalarForSequence", "targets: all\n",
			[]problem{{wrongType, "compact.yaml:1: targets: must be a sequence (got all)"}}},
		{"MappingForSequence", "targets:\n  name: a\n",
			[]problem{{wrongType, "compact.yaml:1: targets: must be a sequence, not a mapping"}}},
		{"ScalarForTarget", "targets:\n  - a\n",
			[]problem{{wrongType, "compact.yaml:2: targets[0]: must be a mapping (got a)"}}},
		{"MappingForDuration", "defaults:\n  grace_period: {seconds: 2}\n",
			[]problem{{wrongType, "compact.yaml:2: defaults.grace_period: must be a duration such as 90s or 7d, not a mapping"}}},

		// Duplicates.
		{"DuplicateKey", "metrics:\n  textfile: /a.prom\n  textfile: /b.prom\n",
			[]problem{{dup, "compact.yaml:3: metrics.textfile: duplicate key, first at line 2"}}},
		{"DuplicateKeyInTarget", target("name: a", "kind: memory", "name: b"),
			[]problem{{dup, "compact.yaml:4: targets[0].name: duplicate key, first at line 2"}}},
		{"DuplicateName", "targets:\n  - {name: a, kind: memory}\n  - {name: b, kind: memory}\n  - {name: a, kind: redis}\n",
			[]problem{{dup, "compact.yaml:4: targets[2].name: duplicate target name, first used at line 2 (got a)"}}},

		// Directories.
		{"RelativeStateDir", "state_dir: var/lib/papyra\n",
			[]problem{{relative, "compact.yaml:1: state_dir: must be an absolute path (got var/lib/papyra)"}}},
		{"RelativeLockDir", "lock_dir: ./run\n",
			[]problem{{relative, "compact.yaml:1: lock_dir: must be an absolute path (got ./run)"}}},
		{"RelativeQuarantineDir", "quarantine_dir: \"my dir\"\n",
			[]problem{{relative, `compact.yaml:1: quarantine_dir: must be an absolute path (got "my dir")`}}},
		{"RelativeTextfile", "metrics:\n  textfile: papyra.prom\n",
			[]problem{{relative, "compact.yaml:2: metrics.textfile: must be an absolute path (got papyra.prom)"}}},
		{"EmptyStateDir", "state_dir: \"\"\n",
			[]problem{{required, "compact.yaml:1: state_dir: required"}}},
		{"NullLockDir", "lock_dir: ~\n",
			[]problem{{required, "compact.yaml:1: lock_dir: required"}}},

		// Retention.
		{"NegativeMaxRecords", "defaults:\n  retention:\n    max_records: -1\n",
			[]problem{{invalid, "compact.yaml:3: defaults.retention.max_records: must be >= 0 (got -1)"}}},
		{"NegativeMaxTotalBytes", target("name: a", "kind: memory", "retention:", "  max_total_bytes: -5"),
			[]problem{{invalid, "compact.yaml:5: targets[0].retention.max_total_bytes: must be >= 0 (got -5)"}}},
		{"NegativeMaxAgeSeconds", "defaults:\n  retention:\n    max_age_seconds: -0.5\n",
			[]problem{{invalid, "compact.yaml:3: defaults.retention.max_age_seconds: must be >= 0 (got -0.5)"}}},
		{"NaNMaxAgeSeconds", "defaults:\n  retention:\n    max_age_seconds: .nan\n",
			[]problem{{invalid, "compact.yaml:3: defaults.retention.max_age_seconds: must be a finite number (got NaN)"}}},
		{"ZeroMaxAge", target("name: a", "kind: memory", "retention:", "  max_age: 0s"),
			[]problem{{invalid, "compact.yaml:5: targets[0].retention.max_age: must be > 0 (got 0s)"}}},
		{"NegativeMaxAge", target("name: a", "kind: memory", "retention:", "  max_age: -1h"),
			[]problem{{invalid, "compact.yaml:5: targets[0].retention.max_age: must not be negative (got -1h)"}}},
		{"GarbageMaxAge", "defaults:\n  retention:\n    max_age: a week\n",
			[]problem{{invalid, `compact.yaml:3: defaults.retention.max_age: invalid duration; write it like 90s, 1h30m, 7d or 2w (got "a week")`}}},
		{"UnknownUnit", "defaults:\n  retention:\n    max_age: 3y\n",
			[]problem{{invalid, `compact.yaml:3: defaults.retention.max_age: invalid duration: unknown unit "y"; use ns, us, ms, s, m, h, d or w (got 3y)`}}},
		{"MaxAgeConflict", "defaults:\n  retention:\n    max_age_seconds: 60\n    max_age: 1m\n",
			[]problem{{conflict, "compact.yaml:4: defaults.retention.max_age: conflicts with max_age_seconds (line 3); set only one"}}},

		// Grace period.
		{"NegativeGrace", "defaults:\n  grace_period: -2s\n",
			[]problem{{invalid, "compact.yaml:2: defaults.grace_period: must not be negative (got -2s)"}}},
		{"NegativeGraceSeconds", target("name: a", "kind: memory", "grace_period: -3"),
			[]problem{{invalid, "compact.yaml:4: targets[0].grace_period: must not be negative (got -3)"}}},

		// Intervals.
		{"ZeroDefaultInterval", "defaults:\n  interval: 0s\n",
			[]problem{{invalid, "compact.yaml:2: defaults.interval: must be at least 1s (got 0s)"}}},
		{"NullDefaultInterval", "defaults:\n  interval:\n",
			[]problem{{invalid, "compact.yaml:2: defaults.interval: must be at least 1s (got 0s)"}}},
		{"SubSecondInterval", target("name: a", "kind: memory", "interval: 500ms"),
			[]problem{{invalid, "compact.yaml:4: targets[0].interval: must be at least 1s (got 500ms)"}}},
		{"NegativeInterval", target("name: a", "kind: memory", "interval: -5m"),
			[]problem{{invalid, "compact.yaml:4: targets[0].interval: must not be negative (got -5m)"}}},
		{"GarbageInterval", target("name: a", "kind: memory", "interval: hourly"),
			[]problem{{invalid, `compact.yaml:4: targets[0].interval: invalid duration; write it like 90s, 1h30m, 7d or 2w (got hourly)`}}},

		// Targets.
		{"NameRequired", target("kind: memory"),
			[]problem{{required, "compact.yaml:2: targets[0].name: required"}}},
		{"NameInvalid", target("name: ../etc", "kind: memory"),
			[]problem{{invalid, "compact.yaml:2: targets[0].name: must match ^[A-Za-z0-9][A-Za-z0-9_.-]*$ (got ../etc)"}}},
		{"NameWithBlank", target("kind: memory", "name: my store"),
			[]problem{{invalid, `compact.yaml:3: targets[0].name: must match ^[A-Za-z0-9][A-Za-z0-9_.-]*$ (got "my store")`}}},
		{"KindRequired", target("name: a"),
			[]problem{{required, "compact.yaml:2: targets[0].kind: required, one of jsonl, rotating, redis, memory"}}},
		{"KindInvalid", target("name: a", "kind: JSONL", "path: relative"),
			[]problem{{invalid, "compact.yaml:3: targets[0].kind: must be one of jsonl, rotating, redis, memory (got JSONL)"}}},
		{"JSONLPathRequired", target("name: a", "kind: jsonl"),
			[]problem{{required, "compact.yaml:2: targets[0].path: required for kind jsonl"}}},
		{"JSONLPathRelative", target("name: a", "kind: jsonl", "path: data/a.jsonl"),
			[]problem{{relative, "compact.yaml:4: targets[0].path: must be an absolute path (got data/a.jsonl)"}}},
		{"JSONLMaxBytes", target("name: a", "kind: jsonl", "path: /a.jsonl", "max_bytes: 10"),
			[]problem{{invalid, "compact.yaml:5: targets[0].max_bytes: not valid for kind jsonl, only for rotating"}}},
		{"RotatingRequired", target("name: a", "kind: rotating"),
			[]problem{
				{required, "compact.yaml:2: targets[0].path: required for kind rotating"},
				{required, "compact.yaml:2: targets[0].max_bytes: required for kind rotating"},
				{required, "compact.yaml:2: targets[0].max_files: required for kind rotating"},
			}},
		{"RotatingNotPositive", target("name: a", "kind: rotating", "path: /a", "max_bytes: 0", "max_files: -1"),
			[]problem{
				{invalid, "compact.yaml:5: targets[0].max_bytes: must be > 0 (got 0)"},
				{invalid, "compact.yaml:6: targets[0].max_files: must be > 0 (got -1)"},
			}},
		{"MemoryPath", target("name: a", "kind: memory", "path: /a"),
			[]problem{{invalid, "compact.yaml:4: targets[0].path: not valid for kind memory, only for jsonl, rotating"}}},
		{"RedisRotatingFields", target("name: a", "kind: redis", "max_files: 3", "max_bytes: 1"),
			[]problem{
				{invalid, "compact.yaml:4: targets[0].max_files: not valid for kind redis, only for rotating"},
				{invalid, "compact.yaml:5: targets[0].max_bytes: not valid for kind redis, only for rotating"},
			}},
		// Redis targets.
		{"RedisFieldOnJSONL", target("name: a", "kind: jsonl", "path: /a", "prefix: p"),
			[]problem{{invalid, "compact.yaml:5: targets[0].prefix: not valid for kind jsonl, only for redis"}}},
		{"RedisURLAndAddrs", target("name: a", "kind: redis", "url: redis://h:6379/0", "addrs: [h:6379]"),
			[]problem{{conflict, "compact.yaml:4: targets[0].url: conflicts with addrs; set only one (got redis://h:6379/0)"}}},
		{"RedisURLScheme", target("name: a", "kind: redis", "url: http://h"),
			[]problem{{invalid, "compact.yaml:4: targets[0].url: must be redis://, rediss:// or unix:// (got http://h)"}}},
		{"RedisURLPasswordRedacted", target("name: a", "kind: redis", "url: redis://u:secret@h:6379", "password_file: /etc/p"),
			[]problem{{conflict, "compact.yaml:4: targets[0].url: has a password and so does password or password_file; set only one (got redis://u:xxxxx@h:6379)"}}},
		{"RedisAddrsNotHostPort", target("name: a", "kind: redis", "addrs: [h1:6379, h2]"),
			[]problem{{invalid, "compact.yaml:4: targets[0].addrs: each address must be host:port (got h2)"}}},
		{"RedisAddrsEmpty", target("name: a", "kind: redis", "addrs: []"),
			[]problem{{invalid, "compact.yaml:4: targets[0].addrs: must list at least one host:port"}}},
		{"RedisMasterNameNeedsAddrs", target("name: a", "kind: redis", "master_name: mymaster"),
			[]problem{{required, "compact.yaml:4: targets[0].master_name: needs addrs, the Sentinel addresses (got mymaster)"}}},
		{"RedisClusterAndSentinel", target("name: a", "kind: redis", "addrs: [h:26379]", "master_name: m", "cluster: true"),
			[]problem{{conflict, "compact.yaml:6: targets[0].cluster: conflicts with master_name; Sentinel and Cluster are exclusive"}}},
		{"RedisDB", target("name: a", "kind: redis", "addrs: [h1:1, h2:2]", "db: 3"),
			[]problem{{invalid, "compact.yaml:5: targets[0].db: a Redis Cluster has only database 0 (got 3)"}}},
		{"RedisDBWithURL", target("name: a", "kind: redis", "url: redis://h/1", "db: 2"),
			[]problem{{conflict, "compact.yaml:5: targets[0].db: conflicts with url; put the database in the url (got 2)"}}},
		{"RedisPasswordTwice", target("name: a", "kind: redis", "password: x", "password_file: /run/p"),
			[]problem{{conflict, "compact.yaml:4: targets[0].password: conflicts with password_file; set only one"}}},
		{"RedisPasswordFileRelative", target("name: a", "kind: redis", "password_file: p.txt"),
			[]problem{{relative, "compact.yaml:4: targets[0].password_file: must be an absolute path (got p.txt)"}}},
		{"RedisTLS", target("name: a", "kind: redis", "tls: {cert_file: /c.pem}"),
			[]problem{{invalid, "compact.yaml:4: targets[0].tls: cert_file and key_file go together"}}},
		{"RedisTLSRelative", target("name: a", "kind: redis", "tls: {ca_file: ca.pem}"),
			[]problem{{relative, "compact.yaml:4: targets[0].tls: ca_file, cert_file and key_file must be absolute paths (got ca.pem)"}}},
		{"RedisAgeBy", target("name: a", "kind: redis", "age_by: json"),
			[]problem{{invalid, "compact.yaml:4: targets[0].age_by: must be id or timestamp (got json)"}}},
		{"RedisLimits", target("name: a", "kind: redis", "trim_limit: 0", "batch_size: 1000000", "duty_cycle: 1.5"),
			[]problem{
				{invalid, "compact.yaml:4: targets[0].trim_limit: must be between 1 and 1000000 (got 0)"},
				{invalid, "compact.yaml:5: targets[0].batch_size: must be between 1 and 100000 (got 1000000)"},
				{invalid, "compact.yaml:6: targets[0].duty_cycle: must be > 0 and <= 1 (got 1.5)"},
			}},
		{"RedisDurations", target("name: a", "kind: redis", "lease_ttl: 500ms", "timeout: 0s"),
			[]problem{
				{invalid, "compact.yaml:4: targets[0].lease_ttl: must be at least 1s (got 500ms)"},
				{invalid, "compact.yaml:5: targets[0].timeout: must be > 0 (got 0s)"},
			}},
		{"RedisBoolType", target("name: a", "kind: redis", "approximate: sometimes"),
			[]problem{{wrongType, "compact.yaml:4: targets[0].approximate: must be true or false (got sometimes)"}}},
		{"OwnerNotAUserName", target("name: a", "kind: jsonl", "path: /s", "owner: ../root"),
			[]problem{{invalid, "compact.yaml:5: targets[0].owner: must be a user name (^([a-z_][a-z0-9_-]{0,30}[a-z0-9_$-]?|[0-9]{1,10})$) or a numeric uid (got ../root)"}}},
		{"OwnerWithBlank", target("name: a", "kind: rotating", "path: /s", "max_bytes: 1", "max_files: 2", "owner: \"papyra app\""),
			[]problem{{invalid, "compact.yaml:7: targets[0].owner: must be a user name (^([a-z_][a-z0-9_-]{0,30}[a-z0-9_$-]?|[0-9]{1,10})$) or a numeric uid (got \"papyra app\")"}}},
		{"OwnerOnRedis", target("name: a", "kind: redis", "owner: papyra"),
			[]problem{{invalid, "compact.yaml:4: targets[0].owner: not valid for kind redis, only for jsonl, rotating"}}},
		// min_reclaim, keep_free, min_keep: amounts and durations; the
		// emergency pair only on rotating stores, and only together.
		{"MinReclaimWord", target("name: a", "kind: memory", "min_reclaim: lots"),
			[]problem{{invalid, `compact.yaml:4: targets[0].min_reclaim: must be a byte count such as 10485760, "10MiB" or "1G", or a percentage such as "5%" (got lots)`}}},
		{"MinReclaimNegative", target("name: a", "kind: memory", "min_reclaim: -1"),
			[]problem{{invalid, "compact.yaml:4: targets[0].min_reclaim: must be >= 0 (got -1)"}}},
		{"MinReclaimFraction", target("name: a", "kind: memory", "min_reclaim: 1.5"),
			[]problem{{invalid, `compact.yaml:4: targets[0].min_reclaim: must be a byte count such as 10485760, "10MiB" or "1G", or a percentage such as "5%" (got 1.5)`}}},
		{"MinReclaimWholeStore", target("name: a", "kind: jsonl", "path: /s", "min_reclaim: 100%"),
			[]problem{{invalid, "compact.yaml:5: targets[0].min_reclaim: must be less than 100% (a run can never free more than the whole store) (got 100%)"}}},
		{"MinReclaimPercentOver", target("name: a", "kind: memory", "min_reclaim: 101%"),
			[]problem{{invalid, "compact.yaml:4: targets[0].min_reclaim: must be between 0% and 100% (got 101%)"}}},
		{"MinReclaimList", target("name: a", "kind: memory", "min_reclaim: [1]"),
			[]problem{{wrongType, `compact.yaml:4: targets[0].min_reclaim: must be a byte count such as "10MiB" or a percentage such as "5%", not a sequence`}}},
		{"KeepFreeOnJSONL", target("name: a", "kind: jsonl", "path: /s", "keep_free: 5%", "min_keep: 1d"),
			[]problem{{invalid, "compact.yaml:5: targets[0].keep_free: not valid for kind jsonl, only for rotating"}, {invalid, "compact.yaml:6: targets[0].min_keep: not valid for kind jsonl, only for rotating"}}},
		{"KeepFreeWithoutMinKeep", target("name: a", "kind: rotating", "path: /s", "max_bytes: 1", "max_files: 2", "keep_free: 5%"),
			[]problem{{required, "compact.yaml:7: targets[0].keep_free: needs min_keep: the youngest record age an emergency drop may remove (such as 1d) (got 5%)"}}},
		{"MinKeepWithoutKeepFree", target("name: a", "kind: rotating", "path: /s", "max_bytes: 1", "max_files: 2", "min_keep: 1d"),
			[]problem{{invalid, "compact.yaml:7: targets[0].min_keep: is only used with keep_free (got 1d)"}}},
		{"KeepFreeZero", target("name: a", "kind: rotating", "path: /s", "max_bytes: 1", "max_files: 2", "keep_free: 0", "min_keep: 1d"),
			[]problem{{invalid, "compact.yaml:7: targets[0].keep_free: must be more than 0 (leave it out to opt out of emergency drops) (got 0)"}}},
		{"KeepFreeAll", target("name: a", "kind: rotating", "path: /s", "max_bytes: 1", "max_files: 2", "keep_free: 100%", "min_keep: 1d"),
			[]problem{{invalid, "compact.yaml:7: targets[0].keep_free: must be less than 100% (got 100%)"}}},
		{"MaxClockSkewNegative", target("name: a", "kind: memory", "max_clock_skew: -1m"),
			[]problem{{invalid, "compact.yaml:4: targets[0].max_clock_skew: must not be negative (got -1m)"}}},
		// max_remove_fraction: a number in (0, 1] or a percentage, on
		// any kind; every bad value names its line.
		{"MaxRemoveFractionZero", target("name: a", "kind: memory", "max_remove_fraction: 0"),
			[]problem{{invalid, "compact.yaml:4: targets[0].max_remove_fraction: must be > 0 and <= 1 (or > 0% and <= 100%) (got 0)"}}},
		{"MaxRemoveFractionOverOne", target("name: a", "kind: jsonl", "path: /s", "max_remove_fraction: 1.5"),
			[]problem{{invalid, "compact.yaml:5: targets[0].max_remove_fraction: must be > 0 and <= 1 (or > 0% and <= 100%) (got 1.5)"}}},
		{"MaxRemoveFractionNegative", target("name: a", "kind: redis", "max_remove_fraction: -0.1"),
			[]problem{{invalid, "compact.yaml:4: targets[0].max_remove_fraction: must be > 0 and <= 1 (or > 0% and <= 100%) (got -0.1)"}}},
		{"MaxRemoveFractionPercentOver", target("name: a", "kind: memory", "max_remove_fraction: 150%"),
			[]problem{{invalid, "compact.yaml:4: targets[0].max_remove_fraction: must be > 0 and <= 1 (or > 0% and <= 100%) (got 150%)"}}},
		{"MaxRemoveFractionPercentZero", target("name: a", "kind: memory", `max_remove_fraction: "0%"`),
			[]problem{{invalid, `compact.yaml:4: targets[0].max_remove_fraction: must be > 0 and <= 1 (or > 0% and <= 100%) (got "0%")`}}},
		{"MaxRemoveFractionWord", target("name: a", "kind: memory", "max_remove_fraction: half"),
			[]problem{{invalid, `compact.yaml:4: targets[0].max_remove_fraction: must be a number in (0, 1] such as 0.5, or a percentage such as "50%" (got half)`}}},
		{"MaxRemoveFractionNaN", target("name: a", "kind: memory", "max_remove_fraction: .nan"),
			[]problem{{invalid, `compact.yaml:4: targets[0].max_remove_fraction: must be a number in (0, 1] such as 0.5, or a percentage such as "50%" (got .nan)`}}},
		{"MaxRemoveFractionInf", target("name: a", "kind: memory", "max_remove_fraction: .inf"),
			[]problem{{invalid, `compact.yaml:4: targets[0].max_remove_fraction: must be a number in (0, 1] such as 0.5, or a percentage such as "50%" (got .inf)`}}},
		{"MaxRemoveFractionBool", target("name: a", "kind: memory", "max_remove_fraction: true"),
			[]problem{{wrongType, `compact.yaml:4: targets[0].max_remove_fraction: must be a number such as 0.5 or a percentage such as "50%" (got true)`}}},
		{"MaxRemoveFractionMapping", target("name: a", "kind: memory", "max_remove_fraction: {a: 1}"),
			[]problem{{wrongType, `compact.yaml:4: targets[0].max_remove_fraction: must be a number such as 0.5 or a percentage such as "50%", not a mapping`}}},
		{"MaxRemoveFractionInDefaults", "defaults:\n  max_remove_fraction: 0.5\n",
			[]problem{{unknown, "compact.yaml:2: defaults.max_remove_fraction: unknown field"}}},
		// A value that failed to decode is reported once, not again as
		// missing.
		{"DecodeErrorNotRepeated", target("name: a", "kind: {x: 1}"),
			[]problem{{wrongType, "compact.yaml:3: targets[0].kind: must be a string, not a mapping"}}},
		{"TargetErrorNotRepeated", "targets:\n  - [a]\n",
			[]problem{{wrongType, "compact.yaml:2: targets[0]: must be a mapping, not a sequence"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := config.Parse(file, []byte(tt.yaml))
			if got != nil {
				t.Errorf("Config: got %v, want nil", asJSON(t, got))
			}
			checkProblems(t, err, tt.want)
		})
	}
}

func TestParse_Redis(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want config.Target
	}{
		{"Defaults", target("name: a", "kind: redis"), config.Target{Line: 2, Name: "a", Kind: config.KindRedis}},
		{"URL", target("name: a", "kind: redis", "url: rediss://cache:6380/2", "password_file: /etc/papyra/redis.pass",
			"tls: {ca_file: /etc/ssl/ca.pem, server_name: cache.internal}"),
			config.Target{Line: 2, Name: "a", Kind: config.KindRedis, URL: "rediss://cache:6380/2", PasswordFile: "/etc/papyra/redis.pass",
				TLS: &config.RedisTLS{CAFile: "/etc/ssl/ca.pem", ServerName: "cache.internal"}}},
		{"Sentinel", target("name: a", "kind: redis", "addrs: [s1:26379, s2:26379]", "master_name: papyra", "db: 1", "username: compact"),
			config.Target{Line: 2, Name: "a", Kind: config.KindRedis, Addrs: []string{"s1:26379", "s2:26379"}, MasterName: "papyra",
				DB: ptr(1), Username: "compact"}},
		{"ClusterEverything", target("name: a", "kind: redis", "addrs: [c1:7000]", "cluster: true", "prefix: app", "system_id: '*'",
			"approximate: false", "age_by: timestamp", "trim_limit: 5000", "batch_size: 500", "duty_cycle: 0.25",
			"quarantine_corrupt: true", "delete_empty: true", "lease_ttl: 1m", "timeout: 2s"),
			config.Target{Line: 2, Name: "a", Kind: config.KindRedis, Addrs: []string{"c1:7000"}, Cluster: ptr(true),
				Prefix: "app", SystemID: "*", Approximate: ptr(false), AgeBy: "timestamp", TrimLimit: ptr[int64](5000),
				BatchSize: ptr[int64](500), DutyCycle: ptr(0.25), QuarantineCorrupt: ptr(true), DeleteEmpty: ptr(true),
				LeaseTTL: ptr(config.Duration(time.Minute)), Timeout: ptr(config.Duration(2 * time.Second))}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := config.Parse(file, []byte(tt.yaml))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			want := withFile(config.Default(), file)
			want.Targets = []config.Target{tt.want}
			if g, w := asJSON(t, got), asJSON(t, want); g != w {
				t.Errorf("got %v, want %v", g, w)
			}
		})
	}
}

func TestParse_AllErrorsAtOnce(t *testing.T) {
	const yaml = `state_dir: relative
metrics:
  textfile: 5x.prom
  colour: red
defaults:
  retention:
    max_records: many
    max_age: 7d
    max_age_seconds: 3600
targets:
  - name: web
    kind: jsonl
  - name: web
    kind: rotating
    path: /var/lib/web/segment.jsonl
    max_bytes: 1024
    max_files: 0
`
	checkProblems(t, errorsOf(yaml), []problem{
		{config.ErrRelativePath, "compact.yaml:1: state_dir: must be an absolute path (got relative)"},
		{config.ErrRelativePath, "compact.yaml:3: metrics.textfile: must be an absolute path (got 5x.prom)"},
		{config.ErrUnknownField, "compact.yaml:4: metrics.colour: unknown field"},
		{config.ErrWrongType, "compact.yaml:7: defaults.retention.max_records: must be an integer (got many)"},
		{config.ErrConflict, "compact.yaml:8: defaults.retention.max_age: conflicts with max_age_seconds (line 9); set only one"},
		{config.ErrRequired, "compact.yaml:11: targets[0].path: required for kind jsonl"},
		{config.ErrDuplicate, "compact.yaml:13: targets[1].name: duplicate target name, first used at line 11 (got web)"},
		{config.ErrInvalidValue, "compact.yaml:17: targets[1].max_files: must be > 0 (got 0)"},
	})
}

func errorsOf(yaml string) error {
	_, err := config.Parse(file, []byte(yaml))
	return err
}

func TestParse_TooManyErrors(t *testing.T) {
	// One anchored target with many unknown keys, aliased many times:
	// the problems multiply, the report does not.
	var b strings.Builder
	b.WriteString("x: &t {")
	for i := range 50 {
		b.WriteString("k" + strings.Repeat("x", i) + ": 1, ")
	}
	b.WriteString("}\ntargets: [")
	b.WriteString(strings.Repeat("*t, ", 1000))
	b.WriteString("]\n")
	err := errorsOf(b.String())
	joined, ok := err.(interface{ Unwrap() []error })
	if !ok {
		t.Fatalf("got %v, want a joined error", err)
	}
	errs := joined.Unwrap()
	if got, want := len(errs), 101; got != want {
		t.Errorf("got %v errors, want %v", got, want)
	}
	if got, want := errs[len(errs)-1].Error(), "compact.yaml: too many problems; only the first 100 are shown"; got != want {
		t.Errorf("got %v, want %v", got, want)
	}
}

// uncomment enables the commented-out settings of the example file: lines
// whose "#" is followed by a key or by two blanks, as opposed to prose,
// which reads "# Text".
func uncomment(s string) string {
	setting := regexp.MustCompile(`(?m)^(\s*)#(\S|  )`)
	return setting.ReplaceAllString(s, "$1$2")
}

func TestLoad_Example(t *testing.T) {
	const path = "testdata/example.yaml"
	t.Run("AsShipped", func(t *testing.T) {
		got, err := config.Load(path)
		if err != nil {
			t.Fatalf("Load: %v", err)
		}
		// The shipped file documents the built-in defaults and must
		// enable nothing.
		if g, w := asJSON(t, got), asJSON(t, withFile(config.Default(), path)); g != w {
			t.Errorf("got %v, want %v", g, w)
		}
	})
	t.Run("Uncommented", func(t *testing.T) {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		got, err := config.Parse(path, []byte(uncomment(string(data))))
		if err != nil {
			t.Fatalf("Parse: %v", err)
		}
		if got.Defaults.Retention == nil {
			t.Errorf("Defaults.Retention: got nil, want the example's")
		}
		var names []string
		for _, tgt := range got.Targets {
			names = append(names, tgt.Name)
		}
		if g, w := strings.Join(names, ","), "app-events,audit,orders-redis"; g != w {
			t.Errorf("targets: got %v, want %v", g, w)
		}
	})
}

func TestLoad_Missing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nope.yaml")
	_, err := config.Load(path)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("got %v, want fs.ErrNotExist", err)
	}
	if !errors.Is(err, config.ErrNoFile) || err.Error() != path+": does not exist" {
		t.Errorf("got %v, want %s: does not exist, wrapping ErrNoFile", err, path)
	}
}

func TestLoad_ErrorNamesPath(t *testing.T) {
	path := filepath.Join(t.TempDir(), "compact.yaml")
	if err := os.WriteFile(path, []byte("\n\nstate_dir: rel\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := config.Load(path)
	if got, want := err.Error(), path+":3: state_dir: must be an absolute path (got rel)"; got != want {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestFieldError_Error(t *testing.T) {
	cause := errors.New("must be > 0")
	tests := []struct {
		name string
		err  config.FieldError
		want string
	}{
		{"Full", config.FieldError{File: "compact.yaml", Line: 12, Field: "targets[0].max_age", Value: "-1h", Err: cause},
			"compact.yaml:12: targets[0].max_age: must be > 0 (got -1h)"},
		{"AbsolutePath", config.FieldError{File: "/etc/papyra/compact.yaml", Line: 3, Field: "state_dir", Err: cause},
			"/etc/papyra/compact.yaml:3: state_dir: must be > 0"},
		{"NoLine", config.FieldError{File: "compact.yaml", Err: cause}, "compact.yaml: must be > 0"},
		{"NoFile", config.FieldError{Line: 4, Value: "x", Err: cause}, "line 4: must be > 0 (got x)"},
		{"OnlyErr", config.FieldError{Err: cause}, "must be > 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.err.Error(); got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
			if !errors.Is(&tt.err, cause) {
				t.Errorf("got errors.Is false, want Unwrap to reach Err")
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		"",
		"state_dir: /a\nlock_dir: /b\nquarantine_dir: /c\nmetrics: {textfile: ''}\n",
		"defaults:\n  grace_period: 1d\n  retention: {max_records: 1, max_age: 7d, max_total_bytes: 3}\n",
		"targets:\n  - {name: a, kind: rotating, path: /a, max_bytes: 1, max_files: 2, grace_period: 3}\n",
		"targets: &x [*x]\n",
		"a: &a {b: *a}\n",
		"<<: {a: 1}\n",
		"---\n---\n",
		"targets:\n  - name: a\n    kind: jsonl\n    path: /x\n    retention: {max_age_seconds: .inf}\n",
	} {
		f.Add([]byte(seed))
	}
	if data, err := os.ReadFile("testdata/example.yaml"); err == nil {
		f.Add(data)
		f.Add([]byte(uncomment(string(data))))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := config.Parse(file, data)
		if err != nil {
			if c != nil {
				t.Fatalf("got a Config with error %v", err)
			}
			joined, ok := err.(interface{ Unwrap() []error })
			if !ok {
				t.Fatalf("got %T, want a joined error", err)
			}
			for _, e := range joined.Unwrap() {
				var fe *config.FieldError
				if !errors.As(e, &fe) {
					t.Fatalf("got %T (%v), want *config.FieldError", e, e)
				}
			}
			return
		}
		for _, dir := range []string{c.StateDir, c.LockDir, c.QuarantineDir} {
			if !filepath.IsAbs(dir) {
				t.Fatalf("valid config with relative dir %q", dir)
			}
		}
		for _, tgt := range c.Targets {
			if r := tgt.Retention; r != nil && r.MaxAge != nil {
				t.Fatalf("target %s: MaxAge not folded", tgt.Name)
			}
		}
	})
}
