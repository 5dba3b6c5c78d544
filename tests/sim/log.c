/*
 * A simulated node's log as its disk (or its memory) holds it: entries with
 * payloads and chained prefix hashes, starting after a compacted prefix
 * (offset) whose last term and chain are remembered.
 */
#include <stdlib.h>
#include <string.h>

#include "tests/sim/internal.h"

uint64_t sim_log_last(const struct sim_log *log)
{
	return log->offset + log->n;
}

const struct sim_entry *sim_log_get(const struct sim_log *log, uint64_t index)
{
	if (index <= log->offset || index > sim_log_last(log))
		return NULL;
	return &log->e[index - log->offset - 1];
}

bool sim_log_chain_at(const struct sim_log *log, uint64_t index,
		      uint64_t *chain, uint64_t *term)
{
	if (index == log->offset) {
		*chain = log->offset_chain;
		*term = log->offset_term;
		return true;
	}
	const struct sim_entry *e = sim_log_get(log, index);
	if (!e)
		return false;
	*chain = e->chain;
	*term = e->term;
	return true;
}

void sim_log_free(struct sim_log *log)
{
	for (uint64_t i = 0; i < log->n; i++)
		free(log->e[i].data);
	free(log->e);
	memset(log, 0, sizeof(*log));
}

void sim_log_truncate(struct sim_log *log, uint64_t from)
{
	while (log->n > 0 && sim_log_last(log) >= from) {
		free(log->e[log->n - 1].data);
		log->n--;
	}
}

void sim_log_append(struct sim_log *log, uint64_t term, uint8_t type,
		    const void *data, uint32_t size)
{
	if (log->n == log->cap) {
		log->cap = log->cap ? log->cap * 2 : 64;
		log->e = realloc(log->e, log->cap * sizeof(*log->e));
		if (!log->e)
			abort();
	}
	struct sim_entry *e = &log->e[log->n];
	e->term = term;
	e->type = type;
	e->size = size;
	e->data = NULL;
	if (size) {
		e->data = malloc(size);
		if (!e->data)
			abort();
		memcpy(e->data, data, size);
	}
	uint64_t prev = log->n ? log->e[log->n - 1].chain : log->offset_chain;
	e->chain = sim_chain(prev, term, type, e->data, size);
	log->n++;
}

void sim_log_copy(struct sim_log *dst, const struct sim_log *src)
{
	sim_log_free(dst);
	dst->offset = src->offset;
	dst->offset_term = src->offset_term;
	dst->offset_chain = src->offset_chain;
	for (uint64_t i = 0; i < src->n; i++)
		sim_log_append(dst, src->e[i].term, src->e[i].type,
			       src->e[i].data, src->e[i].size);
}

void sim_log_compact(struct sim_log *log, uint64_t upto)
{
	if (upto <= log->offset || upto > sim_log_last(log))
		return;
	uint64_t drop = upto - log->offset;
	const struct sim_entry *last = &log->e[drop - 1];
	log->offset_term = last->term;
	log->offset_chain = last->chain;
	for (uint64_t i = 0; i < drop; i++)
		free(log->e[i].data);
	memmove(log->e, log->e + drop, (log->n - drop) * sizeof(*log->e));
	log->n -= drop;
	log->offset = upto;
}

void sim_log_reset(struct sim_log *log, uint64_t offset, uint64_t term,
		   uint64_t chain)
{
	sim_log_free(log);
	log->offset = offset;
	log->offset_term = term;
	log->offset_chain = chain;
}
