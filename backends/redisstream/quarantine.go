package redisstream

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// quarantine moves the plan's corrupt entries of sp to Papyra's quarantine
// stream, {prefix}:{system}:quarantine:{key with ':' → '_'}, with Papyra's
// fields source, data and timestamp (§5.2, §5.6), plus source_id, the
// entry's ID in the source stream (Papyra never reads quarantine streams,
// and the extra field is what makes the move safe to repeat).
//
// A move is two commands on two keys that a cluster may keep on different
// nodes, so it cannot be one atomic script: XADD to the quarantine stream
// first, then XDEL from the source. A crash between them leaves the entry
// in both; the next run finds its source_id in the quarantine stream and
// only deletes it. The order never loses an entry, and the check never
// duplicates one. Deletion goes through delScript, so an entry a consumer
// group still needs stays (it was copied, and is deleted by a later run).
func (b *Backend) quarantine(ctx context.Context, sp *streamPlan, prog *progress) (moved int64, err error) {
	qkey := b.quarantineKey(sp.system, sp.key)
	copied, err := b.quarantined(ctx, qkey, sp)
	if err != nil {
		return 0, err
	}
	pace := b.pacer(sp.key)
	for start := 0; start < len(sp.corrupt); start += int(b.cfg.batch) {
		if err := pace.wait(ctx); err != nil {
			return moved, err
		}
		batch := sp.corrupt[start:min(start+int(b.cfg.batch), len(sp.corrupt))]
		pipe := b.client.Pipeline()
		ids := make([]any, 0, len(batch))
		for _, c := range batch {
			id := c.id.String()
			ids = append(ids, id)
			if copied[id] {
				continue
			}
			pipe.XAdd(ctx, &redis.XAddArgs{Stream: qkey, Values: []any{
				"source", sp.key, "data", c.data, "timestamp", pyTime(time.Now()), "source_id", id,
			}})
		}
		if pipe.Len() > 0 {
			if _, err := pipe.Exec(ctx); err != nil {
				return moved, b.failCtx(ctx, "XADD", qkey, err)
			}
		}
		res, err := delScript.Run(ctx, b.client, []string{sp.key}, ids...).Int64Slice()
		pace.done()
		if err != nil {
			return moved, b.failCtx(ctx, "XDEL", sp.key, err)
		}
		moved += res[0]
		prog.add(int64(len(batch)))
	}
	return moved, nil
}

// quarantined returns the source IDs of sp already in the quarantine
// stream, read batch by batch. The whole quarantine stream is read: it
// holds only corrupt entries, and its IDs cannot be bounded by the
// source's (in a cluster the two streams may live on nodes whose clocks
// differ).
func (b *Backend) quarantined(ctx context.Context, qkey string, sp *streamPlan) (map[string]bool, error) {
	copied := map[string]bool{}
	cursor := "-"
	pace := b.pacer(qkey)
	for {
		if err := pace.wait(ctx); err != nil {
			return nil, err
		}
		msgs, err := b.client.XRangeN(ctx, qkey, cursor, "+", b.cfg.batch).Result()
		pace.done()
		if err != nil {
			return nil, b.failCtx(ctx, "XRANGE", qkey, err)
		}
		for _, m := range msgs {
			if src, _ := m.Values["source"].(string); src == sp.key {
				if id, ok := m.Values["source_id"].(string); ok {
					copied[id] = true
				}
			}
		}
		if int64(len(msgs)) < b.cfg.batch {
			return copied, nil
		}
		cursor = "(" + msgs[len(msgs)-1].ID
	}
}

// pyTime is str(time.time()) in Python: the shortest repr of the float,
// always with a fraction ("1795000000.0").
func pyTime(t time.Time) string {
	s := strconv.FormatFloat(float64(t.UnixNano())/1e9, 'f', -1, 64)
	if !strings.ContainsAny(s, ".e") {
		s += ".0"
	}
	return s
}
