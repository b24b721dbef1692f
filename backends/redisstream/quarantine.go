package redisstream

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Fields of a quarantine entry besides Papyra's own (source, data,
// timestamp, §5.2). Papyra never reads quarantine streams; these make an
// entry the whole record of what was moved: where from, why, and every
// field/value pair of the original entry in its order, each name
// prefixed with quarantineField (an entry may have any fields, "data"
// among them or not, some twice).
const (
	quarantineSourceID = "source_id"
	quarantineReason   = "reason"
	quarantineField    = "field:"
)

// quarantineValues is what the quarantine entry of e (from source key
// src, unreadable for reason) holds, in order.
func quarantineValues(src string, e entry, reason string, now time.Time) []string {
	data, _ := e.get("data") // Papyra's quarantine keeps the raw payload, or ""
	v := make([]string, 0, 10+len(e.fields))
	v = append(v, "source", src, "data", data, "timestamp", pyTime(now),
		quarantineSourceID, e.id, quarantineReason, reason)
	for i := 0; i+1 < len(e.fields); i += 2 {
		v = append(v, quarantineField+e.fields[i], e.fields[i+1])
	}
	return v
}

// copyScript adds one entry to the quarantine stream KEYS[1] unless the
// move index KEYS[2] says it is there already, and records it in the
// index, atomically (both keys are in one slot, see movesKey): a move is
// never copied twice, and the copy is found without reading the
// quarantine stream.
//
//	ARGV[1] the index field (source key and ID); ARGV[2…] the values.
//
// The reply is {quarantine ID, 1 if added now or 0 if it was there}.
var copyScript = redis.NewScript(`
local q = redis.call('HGET', KEYS[2], ARGV[1])
if q and #redis.call('XRANGE', KEYS[1], q, q) == 1 then return {q, 0} end
local id = redis.call('XADD', KEYS[1], '*', unpack(ARGV, 2))
redis.call('HSET', KEYS[2], ARGV[1], id)
return {id, 1}
`)

// maxQuarantineFields bounds the values copyScript passes to XADD
// through unpack, which the Lua stack limits (LUAI_MAXCSTACK, 8000).
const maxQuarantineFields = 7000

// movesKey is the index of moves into qkey: a hash from source key and
// ID to the quarantine entry's ID. It lives in qkey's cluster slot (it
// carries qkey's hash tag, or qkey itself as one), so that one script
// can touch both. Only moves under way are in it: a finished move's
// field is deleted.
func movesKey(qkey string) (string, error) {
	if tag, ok := hashTag(qkey); ok {
		return "papyra-compact:moves:{" + tag + "}:" + qkey, nil
	}
	if strings.Contains(qkey, "}") {
		return "", fmt.Errorf("quarantine stream %s: its name has a \"}\" but no hash tag, so no key of papyra-compact can share its cluster slot", qkey)
	}
	return "papyra-compact:moves:{" + qkey + "}", nil
}

// hashTag is the part of key Redis Cluster hashes: what is between the
// first "{" and the next "}", when that is not empty.
func hashTag(key string) (string, bool) {
	open := strings.IndexByte(key, '{')
	if open < 0 {
		return "", false
	}
	end := strings.IndexByte(key[open+1:], '}')
	if end <= 0 {
		return "", false
	}
	return key[open+1 : open+1+end], true
}

// quarantine moves the plan's corrupt entries of sp to Papyra's
// quarantine stream, {prefix}:{system}:quarantine:{key with ':' → '_'}:
// Papyra's fields source, data and timestamp (§5.2, §5.6), then the
// source ID, the reason, and every field/value pair of the entry.
//
// A move is commands on keys that a cluster may keep on different nodes,
// so it cannot be one atomic script. For each entry, in order: read it
// again (the plan keeps only IDs: entries may be megabytes), copy it
// with copyScript, read the copy back and compare every pair, and only
// then delete the original through delScript (so an entry a consumer
// group still needs stays; it was copied, and a later run deletes it),
// and last drop the move from the index. A crash anywhere leaves the
// entry in the source, or in both with the move in the index, where the
// next run finds the copy instead of adding another: nothing is lost and
// nothing copied twice. Entries are moved one at a time, each command
// costing one entry, so a large entry blocks Redis no longer than
// reading it does.
func (b *Backend) quarantine(ctx context.Context, sp *streamPlan, prog *progress) (moved int64, err error) {
	qkey := b.quarantineKey(sp.system, sp.key)
	index, err := movesKey(qkey)
	if err != nil {
		return 0, b.fail("quarantine", sp.key, err)
	}
	pace := b.pacer(sp.key)
	for _, c := range sp.corrupt {
		if err := pace.wait(ctx); err != nil {
			return moved, err
		}
		n, err := b.move(ctx, sp.key, qkey, index, c)
		pace.done()
		if err != nil {
			return moved, err
		}
		moved += n
		prog.add(1)
	}
	return moved, nil
}

// move moves one entry; 1 if it was deleted from the source.
func (b *Backend) move(ctx context.Context, key, qkey, index string, c corruptEntry) (int64, error) {
	id := c.id.String()
	msgs, err := b.xrange(ctx, key, id, id, 1, false)
	if err != nil {
		return 0, err
	}
	if len(msgs) == 0 {
		return 0, nil // gone since planning (another agent, or Papyra's own recover)
	}
	want := quarantineValues(key, msgs[0], c.reason, time.Now())
	if len(want) > maxQuarantineFields {
		return 0, b.fail("quarantine", key+" "+id, fmt.Errorf("the entry has %d fields, more than a quarantine script can copy; left in place", len(msgs[0].fields)/2))
	}
	field := key + " " + id
	args := make([]any, 0, 1+len(want))
	args = append(args, field)
	for _, v := range want {
		args = append(args, v)
	}
	res, err := copyScript.Run(ctx, b.client, []string{qkey, index}, args...).Slice()
	if err != nil {
		return 0, b.failCtx(ctx, "XADD", qkey, err)
	}
	qid, _ := res[0].(string)
	// Verify the copy before anything is removed: every pair, in order.
	got, err := b.xrange(ctx, qkey, qid, qid, 1, false)
	if err != nil {
		return 0, err
	}
	if len(got) != 1 || !sameCopy(got[0].fields, want) {
		return 0, b.fail("verify quarantine copy", qkey+" "+qid, fmt.Errorf("the copy of %s %s does not match the original; the original was left in place", key, id))
	}
	res2, err := delScript.Run(ctx, b.client, []string{key}, id).Int64Slice()
	if err != nil {
		return 0, b.failCtx(ctx, "XDEL", key, err)
	}
	if res2[1] > 0 {
		return 0, nil // a group still needs it: copied, kept, still indexed
	}
	if err := b.client.HDel(ctx, index, field).Err(); err != nil {
		return res2[0], b.failCtx(ctx, "HDEL", index, err)
	}
	return res2[0], nil
}

// sameCopy compares a quarantine entry read back with what was written,
// except its timestamp: a copy found from an earlier, interrupted run
// carries that run's time.
func sameCopy(got, want []string) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if i > 0 && want[i-1] == "timestamp" && i%2 == 1 {
			continue
		}
		if got[i] != want[i] {
			return false
		}
	}
	return slices.Equal(got[:4], want[:4])
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
