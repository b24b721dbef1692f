package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/papyra-compact/papyra-compact/backends"
)

func TestProgressBar(t *testing.T) {
	tests := []struct {
		name    string
		age     time.Duration
		done    int64
		want    []string
		wantOut bool
	}{
		{"QuietForShortWork", 0, 50 << 20, nil, false},
		{"DrawsAfterASecond", 2 * time.Second, 50 << 20, []string{"orders scan", "50%", "50.0 MiB/100.0 MiB", "ETA"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			p := newProgressBar(&buf)
			p.start = p.start.Add(-tt.age)
			p.update("orders", backends.Step{Phase: "scan", Total: 100 << 20})
			p.phaseAt = p.phaseAt.Add(-time.Second)
			p.last = time.Time{}
			p.update("orders", backends.Step{Phase: "scan", Done: tt.done, Total: 100 << 20})
			p.clear()
			out := buf.String()
			if (out != "") != tt.wantOut {
				t.Fatalf("output %q: want output %v", out, tt.wantOut)
			}
			for _, s := range tt.want {
				if !strings.Contains(out, s) {
					t.Errorf("progress line %q lacks %q", out, s)
				}
			}
		})
	}
}

func TestProgressBar_Entries(t *testing.T) {
	var buf bytes.Buffer
	p := newProgressBar(&buf)
	p.start = p.start.Add(-2 * time.Second)
	p.phaseAt = p.phaseAt.Add(-time.Second)
	p.phase = "orders/trim"
	p.update("orders", backends.Step{Phase: "trim", Unit: backends.Entries, Done: 2500, Total: 10000})
	if out := buf.String(); !strings.Contains(out, "orders trim [") || !strings.Contains(out, "2500/10000") {
		t.Errorf("progress line %q: want entries counted as numbers, not bytes", out)
	}
}
