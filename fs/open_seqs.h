#ifndef FS_OPEN_SEQS_H
#define FS_OPEN_SEQS_H

/*
 * The sequence numbers a proposer handed out whose outcome it does not know
 * yet (private to fs/; used by the local and the Raft proposer). The
 * smallest open seq is the proposer's low-water mark (raft/proposal.h):
 * every seq below it has a known outcome and is never retried. Not
 * thread-safe: the proposer's own lock protects it.
 */

#include <stddef.h>
#include <stdint.h>

#include "raft/proposal.h"

struct fs_open_seqs {
	uint64_t next;  /* the next seq to hand out, from 1 */
	uint64_t *seqs; /* open seqs, increasing */
	size_t n;
	size_t cap;
};

void fs_open_seqs_init(struct fs_open_seqs *o);
void fs_open_seqs_release(struct fs_open_seqs *o);
/* Give out the next seq for node/epoch into p (id and low-water mark).
 * 0 or -ENOMEM. */
int fs_open_seqs_begin(struct fs_open_seqs *o, uint64_t node, uint64_t epoch,
		       struct raft_proposal *p);
/* The outcome of seq is known (or it will never be retried). */
void fs_open_seqs_close(struct fs_open_seqs *o, uint64_t seq);

#endif
