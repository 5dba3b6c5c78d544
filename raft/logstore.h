#ifndef RAFT_LOGSTORE_H
#define RAFT_LOGSTORE_H

/*
 * The log store: one node's Raft log, hard state and snapshot metadata in a
 * LevelDB database of its own (the fs store is another one), and the
 * payloads of large entries in segment files beside it. Private to raft/
 * (the runtime uses it; tests and tools may open it to inspect a data dir).
 *
 * Layout of the database (every integer big-endian):
 *
 *   key "h"            header: u32 magic RAFT_LOGSTORE_MAGIC, u32 format
 *                      version, u64 node id, u8 cluster id length (1..64),
 *                      the cluster id bytes
 *   key "s"            hard state: u64 term, u64 vote
 *   key "p"            snapshot metadata (only once compacted): u64 index,
 *                      u64 term, u64 conf_index, then the configuration as
 *                      raft_configuration_encode writes it
 *   key "e" + u64 idx  an entry: u64 term, u8 type, u8 flags, u8[2] zero,
 *                      then with flags 0 the payload; with flags 1 (format
 *                      2, normal entries only) a reference to the payload
 *                      in a segment: u64 segment number, u64 offset of its
 *                      record, u32 payload size, u32 CRC-32C of the payload
 *
 * Nothing else in the database. In the same directory, next to LevelDB's
 * files, segment files "segment-%016x" (the segment number in hex, from 1):
 *
 *   file header (32 bytes)  u32 magic "RFSG", u32 version 1, u64 segment
 *                           number, u64 node id, u32 zero, u32 CRC-32C of
 *                           the 28 bytes before it
 *   records, appended       u32 magic "RFSR", u32 payload size, u64 index,
 *                           u64 term, u32 CRC-32C of the payload, u32
 *                           CRC-32C of the 28 header bytes before it, then
 *                           the payload
 *
 * The payload of a normal entry of at least RAFT_LOGSTORE_SEGMENT_MIN_BYTES
 * goes to the current segment (a new one once it would pass
 * RAFT_LOGSTORE_SEGMENT_BYTES, after a truncation, or after a reopen);
 * smaller entries are stored exactly as in format 1. A write appends the
 * batch's large payloads to the segment, fdatasyncs it (and the directory
 * when it created a segment), THEN commits the one synced LevelDB batch
 * that references them: a crash in between leaves bytes no entry
 * references, which are never read. A segment file is unlinked only after
 * a durable batch removed the last entry referencing it (a compaction, a
 * suffix truncation, an installed snapshot). Opening checks that every
 * referenced segment exists with a valid header and holds every
 * referenced byte (-EUCLEAN, naming the file), removes segment files no
 * entry references, and appends only to segments it creates: never behind
 * bytes it did not write. Reading an entry from a segment checks its
 * record (index, term, size) and the payload's CRC-32C: a mismatch, a
 * short or missing file is -EUCLEAN, with the file named by
 * raft_logstore_read_error. The writer keeps one segment open; every read
 * opens the file it needs and closes it when done.
 *
 * Format versions: 1 had no segments (flags always 0). A format-1 store
 * opens and works; the batch that first references a segment also raises
 * the header to 2, so that a build that knows no segments refuses it.
 *
 * Entries are contiguous from the first index to the last,
 * their terms non-decreasing and at most the hard state's term. Without a
 * snapshot the first index is 1. With one, the first index is at most the
 * snapshot index + 1: a compaction keeps a tail of entries the snapshot
 * covers (for followers slightly behind), and the entry at the snapshot
 * index, when held, has the snapshot's term. A restored core starts
 * after the snapshot (raft_restore_entry skips the tail).
 *
 * Opening validates all of this (a full scan) and refuses a data dir that
 * fails, with one line in err naming the problem: LevelDB corruption
 * (-EUCLEAN), a gap in the log or a term going backwards (-EUCLEAN), a
 * header for another cluster or node (-EINVAL), a newer format version
 * (-EPROTONOSUPPORT). Nothing is repaired.
 *
 * Every write is ONE synced LevelDB WriteBatch, however many updates of the
 * core it carries (group commit). After a failed write (ENOSPC, EIO) the
 * store refuses every further write (-EIO with the first error in err):
 * LevelDB may have left a partial record at the tail of its log, which it
 * ignores on the next open like a crash, but nothing may be appended
 * behind it. What was durable before stays durable.
 *
 * Threads: writes, compaction and close from one thread; get and read may
 * run on other threads at the same time (LevelDB is thread-safe), but
 * never for entries that thread's caller has not seen persisted. A read
 * racing with the compaction or truncation that removes its entry gets
 * -ENOENT, never -EUCLEAN: a segment found missing is re-checked against
 * the database before it is called damage.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "raft/raft.h"

#define RAFT_LOGSTORE_MAGIC 0x52464c47u /* "RFLG" */
#define RAFT_LOGSTORE_FORMAT 2u
#define RAFT_LOGSTORE_MAX_CLUSTER_ID 64u
/* Bytes of an entry's value before its payload. */
#define RAFT_LOGSTORE_ENTRY_HEADER_BYTES 12u
/* An entry's value when its payload is in a segment: the header, then
 * u64 segment, u64 offset, u32 size, u32 CRC-32C of the payload. */
#define RAFT_LOGSTORE_ENTRY_REF_BYTES 36u
/* Normal entries with at least this many bytes of payload go to segment
 * files; smaller ones (the consensus and metadata path) stay in LevelDB
 * (docs/BENCHMARKS.md, "Bulk data path": why this size). Only the
 * benchmark of tests/bench/module.mk builds the store with another value
 * (every payload in LevelDB, for comparison); a store reads both kinds
 * whatever the value. */
#ifndef RAFT_LOGSTORE_SEGMENT_MIN_BYTES
#define RAFT_LOGSTORE_SEGMENT_MIN_BYTES (64u * 1024u)
#endif
/* A segment file takes records until the next would take it past this
 * size (a record larger than that gets a segment of its own). */
#define RAFT_LOGSTORE_SEGMENT_BYTES (64u * 1024u * 1024u)

struct raft_logstore;

/* What a data dir holds, as found by raft_logstore_open. */
struct raft_logstore_info {
	bool created;                  /* the store was created by this open */
	struct raft_hard_state hs;
	bool has_snapshot;
	struct raft_snapshot_meta snapshot; /* when has_snapshot */
	uint64_t first_index; /* first entry held (maybe below the snapshot
				 index: a kept tail); last + 1 when none */
	uint64_t last_index;  /* 0 (or the snapshot index) when none */
	uint64_t last_term;
};

/*
 * Open the store in directory dir (a LevelDB database). When it does not
 * exist: create it with a header for (cluster_id, node_id) if create is
 * true, else -ENOENT. When it exists: check the header against cluster_id
 * and node_id and validate every record (see above). *info (may be NULL)
 * describes what was found. One line in err on failure.
 */
int raft_logstore_open(const char *dir, const char *cluster_id,
		       uint64_t node_id, bool create,
		       struct raft_logstore **out,
		       struct raft_logstore_info *info, char *err,
		       size_t err_size);
/* Close; accepts NULL. */
void raft_logstore_close(struct raft_logstore *ls);

/* The state as of the last successful write (writer thread only). */
void raft_logstore_info_get(const struct raft_logstore *ls,
			    struct raft_logstore_info *info);

/*
 * Feed the persisted state to a fresh core: raft_restore_begin with the
 * hard state and snapshot, raft_restore_entry for every entry (payloads
 * attached), raft_restore_end. Returns 0 or the first error (the core must
 * not be used then), with one line in err.
 */
int raft_logstore_restore(struct raft_logstore *ls, struct raft *r, char *err,
			  size_t err_size);

/* One update of the core to persist (the fields of struct raft_update). */
struct raft_logstore_write {
	bool hard_state_changed;
	struct raft_hard_state hard_state;
	uint64_t truncate_from; /* 0, or delete entries >= this first */
	uint32_t n_entries;
	const struct raft_entry *entries; /* data non-NULL when size > 0 */
	/* A snapshot was installed (update.install_snapshot): every entry
	 * is deleted and this becomes the snapshot record, after the hard
	 * state and before anything else of the write. NULL: none. */
	const struct raft_snapshot_meta *install;
	/* Compaction: record this snapshot (its index in the log, with its
	 * entry's term; newer than the current one) and delete the entries
	 * below compact_below (at most snapshot->index + 1). NULL: none. */
	const struct raft_snapshot_meta *snapshot;
	uint64_t compact_below;
};

/*
 * Persist n updates, in order, as ONE synced WriteBatch. Each is checked
 * against the state the previous ones leave: entries contiguous after the
 * truncation point (or the last index), truncation not below the snapshot,
 * terms non-decreasing and not above the hard state's term; -EINVAL and
 * nothing written otherwise. A LevelDB failure returns -ENOSPC (disk full)
 * or -EIO and fails the store for good (see above). One line in err.
 */
int raft_logstore_write(struct raft_logstore *ls,
			const struct raft_logstore_write *w, uint32_t n,
			char *err, size_t err_size);

/*
 * Compact: every entry up to snap->index is durable elsewhere (a synced fs
 * store write or an installed snapshot covers it), so delete them and
 * record snap, in one synced batch. snap->index must lie in the log
 * (above the current snapshot, at most the last index) with snap->term
 * its entry's term; -EINVAL otherwise.
 */
int raft_logstore_compact(struct raft_logstore *ls,
			  const struct raft_snapshot_meta *snap, char *err,
			  size_t err_size);

/*
 * The entry at index: e filled, e->data pointing into *buf (free with
 * free()). -ENOENT when not in the store (compacted or beyond the end),
 * -EUCLEAN a malformed record, -EIO.
 */
int raft_logstore_get(struct raft_logstore *ls, uint64_t index,
		      struct raft_entry *e, void **buf);

/*
 * Call fn for the entries from..to (inclusive) in order, stopping early
 * after max_bytes of payload (at least one entry is read). e and its data
 * are valid during the call only. Returns the number of entries read, or
 * the first error (fn's non-zero return, -ENOENT a missing entry, -EUCLEAN,
 * -EIO).
 */
long raft_logstore_read(struct raft_logstore *ls, uint64_t from, uint64_t to,
			uint64_t max_bytes,
			int (*fn)(void *ctx, const struct raft_entry *e),
			void *ctx);

/*
 * Why the last read (get, read or restore, on any thread) failed with
 * -EUCLEAN or -EIO: one line naming the log store and, for a payload in a
 * segment, the file and what is wrong with it. "no read failed" when none
 * did.
 */
void raft_logstore_read_error(struct raft_logstore *ls, char *buf,
			      size_t size);

/*
 * Fault injection for tests: the nth write from now (1 = the next) and
 * every one after it fail with err_no (e.g. -ENOSPC) before LevelDB is
 * touched, as a failed write would. n == 0 turns it off.
 */
void raft_logstore_fail_write_at(struct raft_logstore *ls, uint64_t n,
				 int err_no);

#endif
