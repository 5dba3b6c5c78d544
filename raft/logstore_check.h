#ifndef RAFT_LOGSTORE_CHECK_H
#define RAFT_LOGSTORE_CHECK_H

/*
 * An offline check of a stopped node's log store (raftfs fsck): unlike
 * raft_logstore_open, which refuses a store at its first problem, it walks
 * every record, reports each problem it finds and goes on. The layout it
 * checks is raft/logstore.h's: a known header and format version, a
 * well-formed hard state and snapshot record, entries contiguous from the
 * snapshot index + 1 (or 1) with known types, terms non-decreasing, at
 * least the snapshot's term and at most the hard state's, and no unknown
 * records; every payload kept in a segment file read back and checked
 * (the file and its header, the record at the referenced offset naming
 * the entry, its length and CRC-32C), and every segment file no entry
 * references reported ("orphan-segment"). Nothing is written or repaired.
 *
 * Threads: any one thread; the store must not be open elsewhere (LevelDB
 * locks it; a running node makes the open fail).
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "raft/logstore.h"

/* What the check found (valid fields even when problems were reported). */
struct raft_logstore_check {
	bool has_header;      /* a well-formed header record */
	uint32_t format;      /* its format version */
	uint64_t node_id;
	char cluster_id[RAFT_LOGSTORE_MAX_CLUSTER_ID + 1];
	struct raft_hard_state hs;
	bool has_snapshot;
	uint64_t snapshot_index;
	uint64_t snapshot_term;
	uint64_t entries;     /* entry records found */
	uint64_t first_index; /* lowest entry index found (0: none) */
	uint64_t last_index;  /* highest entry index found (0: none) */
	uint64_t segments;    /* segment files in the store's directory */
	uint64_t problems;    /* problems reported */
};

/*
 * Check the log store in directory dir. problem(ctx, index, code, detail)
 * is called once per problem: index is the log index concerned (0 when
 * none), code a short stable name ("gap", "term-order", "format", ...),
 * detail one line; both strings live during the call only. progress (may
 * be NULL) is called every 65,536 records with the records seen.
 * Returns 0 when the check ran to its end (problems or not), or -ENOENT
 * (no store in dir), -EIO (LevelDB refused to open or read it: corrupt, or
 * in use by a running node), -ENOMEM, with one line in err; *out is then
 * partial.
 */
int raft_logstore_check(const char *dir,
			void (*problem)(void *ctx, uint64_t index,
					const char *code, const char *detail),
			void (*progress)(void *ctx, uint64_t records),
			void *ctx, struct raft_logstore_check *out, char *err,
			size_t err_size);

#endif
