// Package jsonl compacts a Papyra JsonFilePersistence store: one file of
// JSON lines that live Papyra processes append to with no lock, opening the
// file with O_APPEND for every record (papyra-formats.md §2, §8.2).
//
// # Retention
//
// Exactly Papyra's apply_retention (§4.2), over all kinds together in file
// order: age first (timestamp >= now - max_age_seconds, boundary kept, no
// or null timestamp dropped), then the last max_records (0 keeps all), then
// the longest newest-first run whose Python repr sizes fit max_total_bytes.
// Survivors are copied byte for byte, never re-serialized.
//
// # Streaming
//
// Plan reads the file once, classifying every line, and writes one small
// entry per line to an unlinked scratch file (class, length, repr size,
// timestamp). Classifying is the CPU-bound step, so each core's worker
// reads whole 1 MiB blocks of the store itself and classifies the lines
// that start in them; a collector writes the entries in file order. The
// count and size cuts are then found from the scratch file alone (not even
// that when they remove nothing), and Apply rewrites the store guided by
// the entries, without reading a line twice: runs of adjacent survivors
// are copied inside the kernel (copy_file_range; short runs are gathered
// through a buffer) by a few goroutines at once, each to its own offset in
// the new file, with writeback started as they go. Memory stays at a few
// buffers per core whatever the store's size; the scratch file costs
// about 20 bytes per record on disk and vanishes with the process.
//
// # Live writers and the swap
//
// Apply never loses a record appended by a Papyra process, however the
// run ends:
//
//  1. It keeps the descriptor Plan opened on the original file; everything
//     after the last complete line Plan saw (a torn tail, records appended
//     since) is copied verbatim after the survivors, looping until the file
//     stops growing.
//  2. The temp file is created with O_EXCL next to the store under a name
//     starting with ".papyra-compact." (never with the store's name), given
//     the original's mode, owner and group (the run fails rather than swap
//     in a file others can no longer read) and fsynced.
//  3. Before the rename, the original inode gets a second name
//     (".papyra-compact.<store>.<token>.old") and a recovery record in the
//     state directory says how many of its bytes the new file holds; both
//     are fsynced. rename(2) then swaps the store atomically and the
//     directory is fsynced.
//  4. For the grace period the old inode is drained: complete lines that a
//     writer which opened the file just before the rename appended to it
//     are appended to the new file (O_APPEND, whole lines per write, so
//     they interleave with Papyra's own appends without tearing). Then the
//     second name and the recovery record are removed.
//
// A kill at any point leaves either the original untouched (plus a stale
// temp file that the next run's Recover deletes), or the new file plus the
// old inode's second name and its recovery record, from which Recover
// appends whatever the drain had not copied yet. Each drained chunk is
// announced in the record (its bytes and the new file's length) before its
// single write, so Recover finds a chunk that went in and does not append
// it twice. What is not guaranteed: a record appended to the old inode
// after the grace period ends is lost (Papyra's open-to-write gap is one
// event-loop step); and a kill that cuts a drained write short (Linux
// stops a write between pages for a fatal signal) leaves a torn line in
// the store, as a Papyra process killed mid-write does.
//
// Rejected alternatives: flock on the store (Papyra ignores it), copying
// back into the original inode with truncate (a crash mid-way loses data),
// and Papyra's own compaction (it re-serializes and loses concurrent
// appends, §8.2).
package jsonl
