/* Memory for the core goes through the caller's hook (struct raft_alloc), so
 * tests can fail the Nth allocation. */
#include <stdlib.h>

#include "raft/core.h"

void *raft_mem_alloc(struct raft *r, size_t size)
{
	if (r->opts.alloc.malloc)
		return r->opts.alloc.malloc(r->opts.alloc.ctx, size);
	return malloc(size);
}

void *raft_mem_realloc(struct raft *r, void *ptr, size_t size)
{
	if (r->opts.alloc.realloc)
		return r->opts.alloc.realloc(r->opts.alloc.ctx, ptr, size);
	return realloc(ptr, size);
}

void raft_mem_free(struct raft *r, void *ptr)
{
	if (!ptr)
		return;
	if (r->opts.alloc.free)
		r->opts.alloc.free(r->opts.alloc.ctx, ptr);
	else
		free(ptr);
}
