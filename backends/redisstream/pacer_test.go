package redisstream

import (
	"testing"
	"time"
)

// TestPacer_Cap: the pause after a command is duty-cycle proportional to
// the command's own time, and capped, so that a server stall (seconds)
// is not multiplied into minutes of sleeping.
func TestPacer_Cap(t *testing.T) {
	for _, tt := range []struct {
		duty float64
		d    time.Duration
		want time.Duration
	}{
		{0.1, time.Millisecond, 9 * time.Millisecond},
		{0.05, 2 * time.Millisecond, 38 * time.Millisecond},
		{1, time.Second, 0},
		{0.1, 3 * time.Second, maxPause},
		{0.05, 8 * time.Second, maxPause},
	} {
		p := (&Backend{cfg: settings{duty: tt.duty}}).pacer("k")
		if got := p.pause(tt.d); got < tt.want-time.Microsecond || got > tt.want+time.Microsecond {
			t.Errorf("duty %v, command %s: pause %s, want %s", tt.duty, tt.d, got, tt.want)
		}
	}
	if maxPause > time.Second {
		t.Errorf("maxPause %s: a stall multiplied by it is no longer bounded", maxPause)
	}
}
