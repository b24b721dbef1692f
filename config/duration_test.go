package config_test

import (
	"errors"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/papyra-compact/papyra-compact/config"
)

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Duration
		wantErr string
	}{
		{in: "0", want: 0},
		{in: "90", want: 90 * time.Second},
		{in: "90s", want: 90 * time.Second},
		{in: "1h30m", want: 90 * time.Minute},
		{in: "1.5h", want: 90 * time.Minute},
		{in: "250ms", want: 250 * time.Millisecond},
		{in: "10us", want: 10 * time.Microsecond},
		{in: "10µs", want: 10 * time.Microsecond},
		{in: "7d", want: 7 * 24 * time.Hour},
		{in: "2w", want: 14 * 24 * time.Hour},
		{in: "1d12h", want: 36 * time.Hour},
		{in: "1w1d1h1m1s", want: 8*24*time.Hour + time.Hour + time.Minute + time.Second},
		{in: "0.5d", want: 12 * time.Hour},
		{in: "+5m", want: 5 * time.Minute},
		{in: "-0s", want: 0},
		{in: "", wantErr: `invalid duration: empty`},
		{in: "-1h", wantErr: `must not be negative (got -1h)`},
		{in: "-5", wantErr: `must not be negative (got -5)`},
		{in: "abc", wantErr: `invalid duration; write it like 90s, 1h30m, 7d or 2w (got abc)`},
		{in: "1.2.3s", wantErr: `invalid duration; write it like 90s, 1h30m, 7d or 2w (got 1.2.3s)`},
		{in: "1h30", wantErr: `invalid duration: missing unit (got 1h30)`},
		{in: "1.5", wantErr: `invalid duration: missing unit (got 1.5)`},
		{in: "5y", wantErr: `invalid duration: unknown unit "y"; use ns, us, ms, s, m, h, d or w (got 5y)`},
		{in: "5 minutes", wantErr: `invalid duration; write it like 90s, 1h30m, 7d or 2w (got "5 minutes")`},
		{in: "1h-5m", wantErr: `invalid duration; write it like 90s, 1h30m, 7d or 2w (got 1h-5m)`},
		{in: "15250w", want: 15250 * 7 * 24 * time.Hour},
		{in: "15251w", wantErr: `invalid duration: out of range (got 15251w)`},
		{in: "9223372036855", wantErr: `invalid duration: out of range (got 9223372036855)`},
		{in: "99999999999999999999", wantErr: `invalid duration: out of range (got 99999999999999999999)`},
		{in: "2000000h2000000h", wantErr: `invalid duration: out of range (got 2000000h2000000h)`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := config.ParseDuration(tt.in)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Errorf("got %v, want %v", err, tt.wantErr)
				}
				if !errors.Is(err, config.ErrInvalidValue) {
					t.Errorf("got errors.Is(ErrInvalidValue) false, want true")
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseDuration: %v", err)
			}
			if time.Duration(got) != tt.want {
				t.Errorf("got %v, want %v", time.Duration(got), tt.want)
			}
		})
	}
}

func TestDuration_String(t *testing.T) {
	tests := []struct {
		in   time.Duration
		want string
	}{
		{0, "0s"},
		{1500 * time.Millisecond, "1.5s"},
		{90 * time.Second, "1m30s"},
		{10 * time.Minute, "10m"},
		{time.Hour, "1h"},
		{90 * time.Minute, "1h30m"},
		{24 * time.Hour, "1d"},
		{7 * 24 * time.Hour, "7d"},
		{36 * time.Hour, "1d12h"},
		{24*time.Hour + 500*time.Millisecond, "1d500ms"},
		{-time.Hour, "-1h"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := config.Duration(tt.in).String(); got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestDuration_UnmarshalYAML(t *testing.T) {
	tests := []struct {
		name    string
		yaml    string
		want    time.Duration
		wantErr string
	}{
		{"String", "d: 1d", 24 * time.Hour, ""},
		{"Integer", "d: 30", 30 * time.Second, ""},
		{"HexInteger", "d: 0x10", 16 * time.Second, ""},
		{"QuotedInteger", `d: "30"`, 30 * time.Second, ""},
		{"Float", "d: 1.5", 0, "line 1: invalid duration: missing unit (got 1.5)"},
		{"Negative", "d: -1", 0, "line 1: must not be negative (got -1)"},
		{"Sequence", "d: [1s]", 0, "line 1: must be a duration such as 90s or 7d, not a sequence"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var v struct{ D config.Duration }
			err := yaml.Unmarshal([]byte(tt.yaml), &v)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Errorf("got %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Unmarshal: %v", err)
			}
			if time.Duration(v.D) != tt.want {
				t.Errorf("got %v, want %v", time.Duration(v.D), tt.want)
			}
		})
	}
}

func TestDuration_MarshalYAML(t *testing.T) {
	out, err := yaml.Marshal(struct{ D config.Duration }{config.Duration(36 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(out), "d: 1d12h\n"; got != want {
		t.Errorf("got %v, want %v", got, want)
	}
}

func FuzzParseDuration(f *testing.F) {
	for _, seed := range []string{"0", "90", "1h30m", "7d", "1.5w", "-1s", "1d12h", "x"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := config.ParseDuration(s)
		if err != nil {
			return
		}
		if d < 0 {
			t.Fatalf("ParseDuration(%q) = %v, want >= 0", s, time.Duration(d))
		}
		back, err := config.ParseDuration(d.String())
		if err != nil || back != d {
			t.Fatalf("round trip of %q via %q: got %v, %v, want %v", s, d.String(), time.Duration(back), err, time.Duration(d))
		}
	})
}

func TestFormatSeconds(t *testing.T) {
	tests := []struct {
		secs float64
		want string
	}{
		{2.592e+06, "30d"},
		{604800, "7d"},
		{86400 + 43200, "1d12h"},
		{3600, "1h"},
		{5400, "1h30m"},
		{90, "1m30s"},
		{2.5, "2.5s"},
		{0.001, "1ms"},
		{0, "0s"},
		{1e-10, "1e-10s"},
		{1e30, "1e+30s"},
		{-5, "-5s"},
	}
	for _, tt := range tests {
		if got := config.FormatSeconds(tt.secs); got != tt.want {
			t.Errorf("FormatSeconds(%v): got %q, want %q", tt.secs, got, tt.want)
		}
	}
	// What it prints, a Duration reads back to the same seconds.
	for _, secs := range []float64{2.592e+06, 1.5, 86400.25, 123456789} {
		d, err := config.ParseDuration(config.FormatSeconds(secs))
		if err != nil || time.Duration(d).Seconds() != secs {
			t.Errorf("ParseDuration(FormatSeconds(%v)): got %v, %v", secs, time.Duration(d).Seconds(), err)
		}
	}
}
