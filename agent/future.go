package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"time"

	"github.com/papyra-compact/papyra-compact/backends"
)

// MsgFutureRecords is the one line a run logs when the store keeps
// future-dated records.
const MsgFutureRecords = "future-dated records kept"

// logFuture logs, once per run, the future-dated records the store kept:
// how many, the newest timestamp and how far ahead of the run's clock it
// is. Papyra keeps them (they pass every max_age), so nothing is wrong
// with the store; a writer's clock is.
func logFuture(ctx context.Context, log *slog.Logger, s backends.Stats, now time.Time, skew time.Duration) {
	if s.Future <= 0 {
		return
	}
	if now.IsZero() {
		now = time.Now()
	}
	log.LogAttrs(ctx, slog.LevelWarn, MsgFutureRecords,
		slog.Int64("future_records", s.Future),
		slog.String("newest_future", FormatStamp(s.NewestFuture)),
		slog.String("ahead", Ahead(s.NewestFuture, now)),
		slog.Duration("max_clock_skew", skew))
}

// FormatStamp is FormatTimestamp, with +Infinity spelled as Papyra
// writes it.
func FormatStamp(ts float64) string {
	if math.IsInf(ts, 1) {
		return "Infinity"
	}
	return FormatTimestamp(ts)
}

// Ahead says how far the timestamp ts (Unix seconds) is after now, in
// whole seconds and up ("3h0m5s"); "forever" for +Infinity.
func Ahead(ts float64, now time.Time) string {
	if math.IsInf(ts, 1) {
		return "forever (Infinity)"
	}
	d := ts - float64(now.UnixNano())/1e9
	if d >= float64(math.MaxInt64/int64(time.Second)) {
		return fmt.Sprintf("%.0f years", d/(365.25*86400))
	}
	return (time.Duration(math.Ceil(d)) * time.Second).String()
}

// Stamp is a Papyra timestamp (float Unix seconds) as state and --json
// write it: a JSON number, or the string "Infinity", "-Infinity" or
// "NaN", which a JSON number cannot be and Papyra's stores can hold.
type Stamp float64

// MarshalJSON implements json.Marshaler.
func (s Stamp) MarshalJSON() ([]byte, error) {
	f := float64(s)
	switch {
	case math.IsInf(f, 1):
		return []byte(`"Infinity"`), nil
	case math.IsInf(f, -1):
		return []byte(`"-Infinity"`), nil
	case math.IsNaN(f):
		return []byte(`"NaN"`), nil
	}
	return strconv.AppendFloat(nil, f, 'f', -1, 64), nil
}

// UnmarshalJSON implements json.Unmarshaler.
func (s *Stamp) UnmarshalJSON(b []byte) error {
	var str string
	if json.Unmarshal(b, &str) == nil {
		switch str {
		case "Infinity":
			*s = Stamp(math.Inf(1))
		case "-Infinity":
			*s = Stamp(math.Inf(-1))
		case "NaN":
			*s = Stamp(math.NaN())
		default:
			return fmt.Errorf("timestamp %q: want a number, Infinity, -Infinity or NaN", str)
		}
		return nil
	}
	var f float64
	if err := json.Unmarshal(b, &f); err != nil {
		return fmt.Errorf("timestamp %s: %w", b, err)
	}
	*s = Stamp(f)
	return nil
}
