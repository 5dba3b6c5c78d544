/* The open sequence numbers of a proposer (fs/open_seqs.h). */

#include "fs/open_seqs.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void fs_open_seqs_init(struct fs_open_seqs *o)
{
	memset(o, 0, sizeof(*o));
	o->next = 1;
}

void fs_open_seqs_release(struct fs_open_seqs *o)
{
	free(o->seqs);
	o->seqs = NULL;
	o->n = o->cap = 0;
}

int fs_open_seqs_begin(struct fs_open_seqs *o, uint64_t node, uint64_t epoch,
		       struct raft_proposal *p)
{
	if (o->n == o->cap) {
		size_t cap = o->cap ? o->cap * 2 : 64;
		uint64_t *a = realloc(o->seqs, cap * sizeof(*a));
		if (a == NULL)
			return -ENOMEM;
		o->seqs = a;
		o->cap = cap;
	}
	p->id.node = node;
	p->id.epoch = epoch;
	p->id.seq = o->next++;
	/* Seqs are handed out increasing: appending keeps the order. */
	o->seqs[o->n++] = p->id.seq;
	p->low_water = o->seqs[0];
	return 0;
}

void fs_open_seqs_close(struct fs_open_seqs *o, uint64_t seq)
{
	size_t lo = 0, hi = o->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (o->seqs[mid] < seq)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < o->n && o->seqs[lo] == seq) {
		memmove(&o->seqs[lo], &o->seqs[lo + 1],
			(o->n - lo - 1) * sizeof(o->seqs[0]));
		o->n--;
	}
}
