package redisstream

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// streamID is a Redis stream entry ID, <ms>-<seq>: ms is the server's
// clock (Unix milliseconds) when XADD ran, seq orders entries of one ms.
type streamID struct{ ms, seq uint64 }

// minID is 0-0, below every entry; it doubles as "none" for boundaries.
var minID = streamID{}

func parseID(s string) (streamID, error) {
	msPart, seqPart, found := strings.Cut(s, "-")
	ms, err := strconv.ParseUint(msPart, 10, 64)
	if err != nil {
		return streamID{}, fmt.Errorf("stream ID %q: %w", s, err)
	}
	var seq uint64
	if found {
		if seq, err = strconv.ParseUint(seqPart, 10, 64); err != nil {
			return streamID{}, fmt.Errorf("stream ID %q: %w", s, err)
		}
	}
	return streamID{ms, seq}, nil
}

func (id streamID) String() string {
	return strconv.FormatUint(id.ms, 10) + "-" + strconv.FormatUint(id.seq, 10)
}

func (id streamID) less(o streamID) bool {
	return id.ms < o.ms || id.ms == o.ms && id.seq < o.seq
}

// compare orders IDs for the slices package: -1, 0 or 1.
func (id streamID) compare(o streamID) int {
	switch {
	case id.less(o):
		return -1
	case o.less(id):
		return 1
	}
	return 0
}

func (id streamID) isZero() bool { return id == minID }

// next is the smallest ID above id: XTRIM MINID next(x) removes x and
// everything before it.
func (id streamID) next() streamID {
	if id.seq == math.MaxUint64 {
		return streamID{id.ms + 1, 0}
	}
	return streamID{id.ms, id.seq + 1}
}

// idAt is the first ID of the millisecond containing t, rounded down: an
// entry written during that millisecond may be at or after t, so a
// boundary built from it never removes such an entry.
func idAt(t time.Time) streamID {
	ms := t.UnixMilli()
	if ms < 0 {
		return minID
	}
	return streamID{uint64(ms), 0}
}

func minIDOf(a, b streamID) streamID {
	if b.less(a) {
		return b
	}
	return a
}
