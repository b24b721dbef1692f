// Package redisstream compacts Papyra's RedisStreamsPersistence: one Redis
// stream per kind, {prefix}:{system_id}:{events|audits|dead_letters}, each
// entry written by Papyra as XADD key * data <json> (papyra-formats.md §5).
// Papyra's own compaction only runs XTRIM MAXLEN (about 10,000 entries per
// run with ~), ignores age, bytes and consumer groups, and can trim
// entries a group has not acknowledged. This backend applies all three
// retention rules per stream, as Papyra's reader applies them, without
// blocking Redis and without trimming what a consumer group still needs.
// The commands are those of https://redis.io/docs/latest/commands/xtrim/.
//
// # Retention
//
// Every rule ends in a boundary ID: entries below it go (XTRIM MINID), so
// entries added while the agent works are never touched, and a boundary
// once planned stays valid however long Apply takes.
//
//   - Age (age_by: id, the default): an entry's age is the time in its ID,
//     the Redis server's clock when XADD ran; the boundary is the ID time
//     of now - max_age_seconds, rounded down to the millisecond. Papyra's
//     reader compares the record's JSON "timestamp" instead, which
//     ActorSystem.now() took on Papyra's host just before the write: with
//     time_fn=time.time it is a few milliseconds older than the ID time,
//     so an entry old by its ID is old by its timestamp too, and Papyra's
//     reader would drop it as well. The guard (planid.go) checks the
//     entries just below the boundary and lowers it below any whose
//     timestamp Papyra would keep (a Papyra clock ahead of the server's):
//     the newest 10,000 below it at most. A plan that reads the whole
//     stream holds those entries' verdicts back until it passes the
//     boundary and checks them there, instead of reading them twice.
//     With Papyra's default monotonic clock (§0.2) the JSON timestamps are
//     seconds since boot and Papyra's own age retention drops everything;
//     the ID time still measures age correctly, so age by ID works there.
//     Age by ID reads only a few entries per stream, whatever its length.
//   - Age (age_by: timestamp): exactly Papyra's rule, per record, on the
//     JSON timestamp. This reads every entry on every run (in batches);
//     records it drops above the trimmed prefix (timestamps out of order,
//     a missing or null timestamp) are deleted one by one with XDEL. It
//     refuses a store whose timestamps are not Unix time (ErrUnsafe).
//   - Count: the last max_records entries are kept. Plan finds the
//     boundary by walking back from the newest entry when it is cheap
//     (max_records up to 100,000) or needed (bytes retention, consumer
//     groups); otherwise it reads the oldest entries beyond max_records
//     (it reads what it removes anyway, to count the unreadable ones),
//     and Apply trims them with MINID up to the last one read; the
//     entries that what Papyra adds meanwhile pushes past max_records
//     are read the same way, then trimmed, so the run ends at
//     max_records as XTRIM MAXLEN would, and never below it: each step
//     tells its script at most how many entries are below its cut, and
//     the script refuses it when XLEN less that is below max_records
//     (others removed entries since the read: XDEL, Papyra's own XTRIM);
//     the entries are then read again. No step frees entries
//     nobody read (MAXLEN would, sized only by a script reading the
//     oldest entry at several times its cost). Entries are counted as
//     Papyra's own XTRIM MAXLEN counts them, unless the stream was read
//     whole (age_by timestamp, quarantine_corrupt), when only records
//     Papyra can read count, as in Papyra's reader.
//   - Bytes: walking back from the newest entry with XREVRANGE … COUNT,
//     Papyra's Python-repr sizes (package pyjson) are summed until the
//     first record that does not fit; the boundary is the oldest one that
//     does.
//
// # Never blocking Redis
//
// Redis runs one command at a time, so what one command costs is what a
// Papyra XADD may wait behind it, and that cost grows with bytes, not
// entries. Every read (XRANGE/XREVRANGE … COUNT) is sized by bytes (about
// 1 MiB at the size of the largest entry the last steps read), by the
// time the previous step took, and capped by batch_size, down to one
// entry (entries.go: reader, sizer): a command that must read one entry
// of 10 MB costs what that entry costs, and nothing less is possible.
// Each loop starts at one entry and grows at most twofold per step; a
// large entry brings it down to one at once, and it grows back as the
// entries after it turn out small. Not guaranteed: Redis cannot tell how
// large the entries ahead are without reading them, so the step that
// first meets a run of large entries after small ones reads up to its
// count of them (reading entry by entry in a script would bound it, at
// several times the cost of each large entry and ten times the cost of
// small ones). Loops never read past what they need: a walk back from
// the newest entry stops at the age boundary (the range ends there) and
// with max_records reads at most one entry past the n-th; the age guard
// reads no more than completes its window. The plan's first look at a
// stream is XLEN and the first and last entries, one command each
// (XINFO STREAM returns both entries whole: two large entries in one
// command). Trims need no reading: the plan has read every entry it
// removes, and cuts them into runs of at most 16 MiB; each trim step
// (XTRIM MINID ~ … LIMIT, in a script) frees at most one run and one
// entry, and trim_limit caps it; max_records beyond the walk is trimmed
// the same way up to the last entry read, never with a blind XTRIM
// MAXLEN. Only when a group's floor rises during the run above
// what the plan read does a step size itself by reading the oldest entry
// inside the script. Entries are read only where the run
// needs their contents (the age guard, walks for count and bytes, scans
// for quarantine or age_by timestamp, and, without quarantine, the
// entries it removes, to count the unreadable ones); the plan keeps no
// contents, so the agent's memory is bounded by one step. A scan keeps
// counts, not an item per entry: what it holds grows with what the run
// removes one by one (records age drops above the boundary, entries to
// quarantine), never with the stream's length; when max_records or
// max_total_bytes removes records, one walk back from the newest entry
// finds the survivors, reading only what is kept. KEYS, FLUSH*
// and unbounded XRANGE are never used; system_id "*" discovers systems
// with SCAN … TYPE stream on every master. Cancelling the context stops
// the run between two commands; the next run resumes from what is left.
//
// Bounded commands can still queue Papyra's XADDs behind them when sent
// back to back, so every loop is paced: after a command that took d, the
// next waits d × (1/duty_cycle - 1) (duty_cycle 0.1 by default), at most
// 250 ms, so that a server stall is not multiplied into minutes. A run
// stops cleanly at run_timeout (15 minutes by default) with what it did.
// bench/redis.sh measures the slowest agent command and the writer's
// XADD p99 for a long stream, large entries and many consumers.
//
// # Consumer groups
//
// A group needs every entry from the lower of its oldest pending ID and
// the ID after its last-delivered-id. The oldest pending ID comes from
// XPENDING's extended form with COUNT 1, which reads one PEL entry (the
// summary form walks every consumer: 175 ms per step at 100,000
// consumers). Every trim and delete runs in a Lua script that reads that
// floor and applies the command in one atomic step, lowering MINID to the
// floor and refusing XDEL at or above it, so an entry a group
// has not acknowledged or not yet received is never removed, even by a
// group created after planning. The stats report how many entries each
// group held back (Stats.Stream.HeldBack), at a cost bounded by the number of
// groups: exact when the stream was read whole or XINFO GROUPS knows the
// group's lag, otherwise estimated from the IDs and marked Estimated
// ("about" in the summary). With max_records beyond the walk, a group
// created during the run holds what is left past max_records (one XLEN).
//
// # Corrupt entries
//
// By default (quarantine_corrupt), Plan reads every entry and Apply moves
// those Papyra cannot read (no data field, data not JSON, not an object,
// or a timestamp that would crash Papyra's age retention) to Papyra's
// quarantine stream: Papyra's fields, then the source ID, the reason and
// every field/value pair of the entry, copied and verified before the
// original is removed; see quarantine.go for why a crash anywhere loses
// and duplicates nothing. One run moves at most 100,000 of a stream's
// unreadable entries (the plan holds an item for each): past that, it
// trims nothing at or above the first one left, and owes what retention
// removes from there on as backlog debt; the next run goes on. So with
// records deleted one by one (XDEL: those age drops above the trim, out
// of order by timestamp or above a too deeply nested entry): at most
// 100,000 a run, the oldest first. With quarantine_corrupt: false they are removed
// with retention, counted apart (Stats.Stream.RemovedCorrupt) and named in the
// log; those a trim leaves in place (part of a node an approximate trim
// keeps, a group's floor) count neither as removed nor as records. A valid entry nested deeper than 900 levels is not corrupt: whether
// Papyra reads it depends on its Python, so it is kept in place, never
// quarantined, not counted as a record, and the trim stays below it while
// age keeps it (as the file backends do).
//
// # Several hosts, one Redis
//
// Apply holds a lease per system in Redis while it works (lease.go); a
// second agent skips the system with an error wrapping backends.ErrLocked.
//
// # Failures
//
// Any Redis error (down, timeout, authentication, failover) fails the
// target with an error naming the server, the command and the key. With
// tls set, a server that does not speak TLS is named as such within the
// timeout. Before changing anything, Plan asks the server (ACL DRYRUN,
// Redis 7.0+) whether the ACL user may run every command the run needs,
// scripts' commands included, and refuses naming the command and the
// user; a refusal at run time is reported the same way. A Papyra key
// that is not a stream is skipped and reported: the rest is compacted
// and the run fails. A stream deleted while the plan looks at it has
// nothing to do this run. Plan writes nothing; each trim is atomic and
// bounded by the plan, so a run that fails part way has removed only
// entries retention removes, and the next run finishes the work. The
// figures of a plan are estimates where the plan did not read the
// entries it removes (Stats.Stream.Estimated); Apply reports what the server
// removed, and measures at the end, on the master, the entries left and
// the oldest entry kept (a group's held-back entries included).
package redisstream
