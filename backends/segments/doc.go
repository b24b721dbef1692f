// Package segments compacts a Papyra RotatingFilePersistence store (kind
// "rotating"): the active file `path` and the rotated segments path.1
// (newest) … path.{max_files-1} (oldest), written by a live Papyra process
// that takes no lock and renames path.{i} → path.{i+1} … path → path.1
// whenever the active file would exceed max_bytes and path.{max_files-1}
// does not exist (papyra-formats.md §3, §8.4). max_bytes and max_files
// must be the writer's own settings.
//
// # Retention, and what is read
//
// Exactly Papyra's apply_retention (§4.2) over all segments read oldest to
// newest as one sequence, all kinds together. Every numeric suffix present
// is a segment, also those ≥ max_files that Papyra itself no longer reads
// (they are the oldest and are reported). Survivors are copied byte for
// byte, never re-serialized.
//
// Plan reads the segments newest first, classifying every line as jsonl
// does. Count and size retention keep a newest run of records, so once a
// segment holds the oldest kept record every older segment is removed
// whole whatever it holds: any line there, even a corrupt one were it
// repaired, would fall to the same cut. Such segments are still read while
// that costs at most 4 MiB, so that counts are exact and their corrupt
// lines quarantined; past that budget they are dropped without being read
// (the summary says how many segments and bytes went unread, and their
// records are not counted). With max_age alone there is no such cut and
// every segment is read.
//
// Per segment: one with no line to keep is dropped (unlinked, a metadata
// operation); one whose lines all stay is left untouched (not rewritten);
// any other — the boundary segment, and with out-of-order timestamps or
// corrupt or blank lines possibly others — is rewritten atomically and
// durably: a replacement with the same mode and owner is written under a
// side name, fsynced, exchanged in, and the directory fsynced. The active
// file is never dropped. A torn last line of the active file is carried
// over; in a rotated segment, where nothing appends, it is corrupt — which
// is what it becomes when the run rotates the active file itself (point 4):
// it is quarantined once grace_period has shown it is not a write in
// flight, instead of being left for Papyra's next record to glue onto.
//
// # The live writer: what is guaranteed
//
// The invariant: no inode is unlinked or replaced unless its whole content
// is accounted for (kept, quarantined, or removed by retention).
//
//  1. Inodes, not names. Plan opens every segment in one consistent view
//     (the names and inodes are the same before and after the opens) and
//     keeps the descriptors. Apply finds each planned inode wherever the
//     writer has rotated it since; segments created since are left alone.
//  2. No destructive call by name. A segment is removed by renaming it
//     with renameat2(RENAME_NOREPLACE) to a side name of our own,
//     checking there that it is the planned inode at the planned size,
//     and only then unlinking it; a replacement goes in with
//     renameat2(RENAME_EXCHANGE), after which the inode swapped out must be
//     the planned one. A mismatch is undone and the run fails with
//     ErrChanged. Neither call can destroy an inode, so even a writer that
//     moves another segment under the name at the last instant loses
//     nothing. A filesystem without renameat2 is refused (ErrUnsafe) rather
//     than served with a check-then-rename race.
//  3. The writer is held still. Papyra rotates only while path.{max_files-1}
//     is absent, and a rotation that races our renames could fail half way
//     (Papyra then raises and drops the record it was writing). Before
//     changing anything Apply makes sure that slot exists, putting an empty
//     anchor file there if needed, and waits grace_period until no name
//     moves (a rotation that had already passed its check finishes; if it
//     renamed a segment over the anchor, that segment holds the writer
//     instead). From then on the writer only appends to the active file.
//     The anchor, or a dropped top segment, goes last; the writer then
//     rotates as usual, into the gaps the run left (Papyra reads gaps;
//     nothing is renumbered, which would only add renames).
//  4. The active file. Nothing but the active file is ever appended to.
//     When it must be rewritten and slot 1 is free (or holds a segment
//     being dropped, or the anchor), the compactor rotates it as Papyra
//     would — an empty file takes its place by exchange — and rewrites it
//     as path.1: a record whose write was already under way lands in the
//     old inode, now in front of the new active file, and the drain copies
//     it there for grace_period; order is kept. Otherwise (slot 1 holds a
//     segment that stays, or max_files is 1) it gets the JSON-lines
//     treatment: the replacement carries the tail appended meanwhile, is
//     exchanged in at path, and the old inode is drained into it.
//  5. Crashes. A run record in the state directory names, before each
//     change, the side files and inodes involved; Recover (and a failed
//     Apply at once) reads the inodes: a replacement that never went in is
//     removed, an accounted-for old inode is drained and removed, a file
//     that is not what the record says is moved back or reported, never
//     deleted; the anchor is removed. Side files are named
//     ".papyra-compact.<store>.<token>.<kind>", never <store>*, which
//     Papyra's scan would report (§8.5); Papyra's own path.compact.tmp and
//     *.recovered.tmp are reported and left alone.
//
// Not guaranteed: a writer paused inside its rotation for longer than
// grace_period can still have its rename fail when we move a name (the
// inode checks still keep every byte on disk; the run ends with
// ErrChanged); a record written to an old active inode after grace_period
// is lost, and with the in-place treatment a write in flight during the
// exchange may land after records written later; after a kill during a
// drain, lines appended between the last drained write and its record are
// appended again (duplicated, never lost); several Papyra processes on one
// rotating store are unsupported (their rotations overwrite each other);
// Papyra's list_* during a run may see some segments done and others not
// (never on disk); a store whose max_files differs from the writer's is
// not held still (point 3) and may see such failed rotations.
//
// # Emergency drops
//
// The backend is a backends.Shedder (shed.go): for a target's keep_free,
// ShedCandidates lists every rotated segment with the time span of its
// records (read whole, nothing written), and Shed removes one by planning
// it as a drop and every other segment as untouched, then running Apply —
// so an emergency drop has every guarantee above (the anchor, inodes not
// names, the size check, quarantine first, the run record). The active
// file is never a candidate.
//
// Rejected: unlinking or renaming by name after a stat (a race with every
// rotation), renumbering survivors to close gaps (more renames), flock
// (Papyra ignores it), truncating or collapsing ranges in place (not crash
// safe, not portable), and Papyra's own compaction (it re-serializes,
// keeps only max_files chunks and loses concurrent appends, §3.4).
package segments
