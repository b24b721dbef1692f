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
	// unsure is a valid object nested deeper than pyjson.DefaultMaxDepth:
	// whether Papyra reads it depends on its Python version and call
	// stack. It is kept, never quarantined, and not counted as a record
	// (as in the file backends).
	unsure bool
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
// brought to that form by loadsForm.
func (k *classifier) data(data string, wantSize bool) verdict {
	k.buf = append(k.buf[:0], data...)
	line := k.buf
	plain := len(line) > 0 && line[0] == '{' && line[len(line)-1] == '}' &&
		bytes.IndexByte(line, '\n') < 0 && bytes.IndexByte(line, '\r') < 0
	if !plain {
		var ok bool
		if line, ok = loadsForm(line); !ok {
			return verdict{corrupt: true, reason: "not valid JSON"}
		}
	}
	l := k.c.Classify(line, wantSize)
	switch l.Class {
	case pyjson.Record:
		return verdict{ts: l.Value, hasTS: l.TS == pyjson.TSNumber, size: l.ReprSize}
	case pyjson.Unsure:
		return verdict{unsure: true, ts: l.Value, hasTS: l.TS == pyjson.TSNumber, size: l.ReprSize}
	case pyjson.Blank:
		return verdict{corrupt: true, reason: "empty data"}
	}
	return verdict{corrupt: true, reason: l.Reason.String()}
}

// loadsForm rewrites, in place, a payload json.loads may accept into one
// that pyjson's Classify judges the same way: json.loads allows ' ', \t,
// \n and \r between tokens, the file reader's str.strip() and line
// splitting treat them otherwise. A raw CR or LF is only valid JSON
// between tokens, where it means what a blank means: it becomes one. In
// a string it is invalid (json.loads is strict about control
// characters). Blanks and tabs around the value are trimmed; a value that
// still begins or ends with a control character or a non-ASCII byte (which
// str.strip() might remove) is not JSON: no JSON value begins or ends
// with one. Depth is not limited
// here, so a valid object nested deeper than Classify's limit comes out
// Unsure, as it should, not corrupt.
func loadsForm(line []byte) ([]byte, bool) {
	inString, escaped := false, false
	for i, c := range line {
		switch {
		case inString && escaped:
			escaped = false
		case inString && c == '\\':
			escaped = true
		case c == '"':
			inString = !inString
		case c == '\n' || c == '\r':
			if inString {
				return nil, false
			}
			line[i] = ' '
		}
	}
	line = bytes.Trim(line, " \t")
	if len(line) == 0 {
		return line, true // empty: Classify says Blank
	}
	if edge := func(c byte) bool { return c <= ' ' || c >= 0x80 }; edge(line[0]) || edge(line[len(line)-1]) {
		return nil, false
	}
	return line, true
}

// keptByAge is Papyra's age rule on a record: keep iff timestamp is not
// None and timestamp >= cutoff. NaN compares false and is dropped.
//
// An Unsure entry whose timestamp could not be read counts as kept: the
// age guard must not trim what Papyra may read and keep.
func (v verdict) keptByAge(cutoff float64) bool {
	if v.unsure && !v.hasTS {
		return true
	}
	return !v.corrupt && v.hasTS && v.ts >= cutoff
}
