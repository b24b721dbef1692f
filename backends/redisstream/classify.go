package redisstream

import (
	"bytes"

	"github.com/papyra-compact/papyra-compact/backends/internal/pyjson"
)

// verdict is what Papyra's Redis reader makes of one entry (§5.6): it
// reads the "data" field and keeps the entry iff json.loads gives a dict.
type verdict struct {
	corrupt bool
	reason  string
	// ts is the record's "timestamp" when hasTS (a number, NaN, ±Inf, or
	// a boolean counted as 0/1, as Python compares them).
	ts    float64
	hasTS bool
	// size is len(repr(record).encode()) when asked for.
	size int64
}

// classifier judges entries; it is not safe for concurrent use.
type classifier struct {
	c   *pyjson.Classifier
	buf []byte
}

func newClassifier() *classifier { return &classifier{c: pyjson.NewClassifier(pyjson.DefaultMaxDepth)} }

// entry judges an entry's fields as Papyra's reader does: it takes the
// "data" value of the entry's dict (the last one, if the field is there
// twice).
func (k *classifier) entry(e entry, wantSize bool) verdict {
	data, ok := e.get("data")
	if !ok {
		return verdict{corrupt: true, reason: "no data field"}
	}
	return k.data(data, wantSize)
}

// data judges one payload with json.loads semantics. pyjson's Classify
// mimics Papyra's *file* reader (str.strip(), universal newlines), so it
// gets the payload only in a form where both readers agree: Papyra's own
// payloads (one line, "{" … "}") go straight in; anything else is first
// checked with json.loads rules (pyjson.ReprSize) and then handed over
// with its JSON whitespace normalized.
func (k *classifier) data(data string, wantSize bool) verdict {
	k.buf = append(k.buf[:0], data...)
	line := k.buf
	plain := len(line) > 0 && line[0] == '{' && line[len(line)-1] == '}' &&
		bytes.IndexByte(line, '\n') < 0 && bytes.IndexByte(line, '\r') < 0
	if !plain {
		if _, ok := k.c.ReprSize(line); !ok {
			return verdict{corrupt: true, reason: "not valid JSON"}
		}
		// Valid JSON has raw CR and LF only between tokens, where they
		// mean what a blank means.
		for i, c := range line {
			if c == '\n' || c == '\r' {
				line[i] = ' '
			}
		}
		line = bytes.Trim(line, " \t")
	}
	l := k.c.Classify(line, wantSize)
	switch l.Class {
	case pyjson.Record:
		return verdict{ts: l.Value, hasTS: l.TS == pyjson.TSNumber, size: l.ReprSize}
	case pyjson.Blank:
		return verdict{corrupt: true, reason: "empty data"}
	}
	return verdict{corrupt: true, reason: l.Reason.String()}
}

// keptByAge is Papyra's age rule on a record: keep iff timestamp is not
// None and timestamp >= cutoff. NaN compares false and is dropped.
func (v verdict) keptByAge(cutoff float64) bool {
	return !v.corrupt && v.hasTS && v.ts >= cutoff
}
