/*
 * The core's view of the log: term, type and size of every entry after the
 * last snapshot, and the configuration entries whole. Payloads live with the
 * caller (docs/RAFT.md "Entries without payloads").
 */
#include <errno.h>
#include <string.h>

#include "raft/core.h"

void raft_log_init(struct raft_log *log)
{
	memset(log, 0, sizeof(*log));
}

void raft_log_release(struct raft *r, struct raft_log *log)
{
	for (size_t i = 0; i < log->n_confs; i++)
		raft_mem_free(r, log->confs[i].encoded);
	raft_mem_free(r, log->confs);
	raft_mem_free(r, log->metas);
	raft_log_init(log);
}

uint64_t raft_log_first_index(const struct raft_log *log)
{
	return log->compact_index + 1;
}

uint64_t raft_log_last_index(const struct raft_log *log)
{
	return log->compact_index + log->n;
}

uint64_t raft_log_last_term(const struct raft_log *log)
{
	if (log->n == 0)
		return log->compact_term;
	return log->metas[log->start + log->n - 1].term;
}

const struct log_meta *raft_log_meta(const struct raft_log *log, uint64_t index)
{
	if (index <= log->compact_index || index > raft_log_last_index(log))
		return NULL;
	return &log->metas[log->start + (index - log->compact_index - 1)];
}

uint64_t raft_log_term(const struct raft_log *log, uint64_t index)
{
	if (index == log->compact_index)
		return log->compact_term;
	const struct log_meta *m = raft_log_meta(log, index);
	return m ? m->term : 0;
}

static int grow_metas(struct raft *r, struct raft_log *log)
{
	if (log->start > 0 && log->start >= log->n) {
		/* Reclaim the space compaction left at the front. */
		memmove(log->metas, log->metas + log->start,
			log->n * sizeof(*log->metas));
		log->start = 0;
		if (log->n < log->cap)
			return 0;
	}
	size_t cap = log->cap ? log->cap * 2 : 256;
	struct log_meta *m =
		raft_mem_realloc(r, log->metas, cap * sizeof(*log->metas));
	if (!m)
		return -ENOMEM;
	log->metas = m;
	log->cap = cap;
	return 0;
}

static int add_conf(struct raft *r, struct raft_log *log, uint64_t index,
		    uint32_t size, const void *data)
{
	struct raft_configuration conf;
	int rc = raft_configuration_decode(data, size, &conf);
	if (rc != 0)
		return rc;
	if (log->n_confs == log->cap_confs) {
		size_t cap = log->cap_confs ? log->cap_confs * 2 : 4;
		struct log_conf *c =
			raft_mem_realloc(r, log->confs, cap * sizeof(*c));
		if (!c)
			return -ENOMEM;
		log->confs = c;
		log->cap_confs = cap;
	}
	uint8_t *copy = raft_mem_alloc(r, size);
	if (!copy)
		return -ENOMEM;
	memcpy(copy, data, size);
	struct log_conf *c = &log->confs[log->n_confs++];
	c->index = index;
	c->conf = conf;
	c->encoded = copy;
	c->encoded_size = size;
	return 0;
}

int raft_log_append(struct raft *r, struct raft_log *log, uint64_t term,
		    uint8_t type, uint32_t size, const void *data)
{
	uint64_t index = raft_log_last_index(log) + 1;
	if (log->start + log->n == log->cap) {
		int rc = grow_metas(r, log);
		if (rc != 0)
			return rc;
	}
	if (type == RAFT_ENTRY_CONFIG) {
		if (!data)
			return -EINVAL;
		int rc = add_conf(r, log, index, size, data);
		if (rc != 0)
			return rc;
	}
	struct log_meta *m = &log->metas[log->start + log->n];
	m->term = term;
	m->size = size;
	m->type = type;
	log->n++;
	return 0;
}

void raft_log_truncate(struct raft *r, struct raft_log *log, uint64_t index)
{
	if (index <= log->compact_index || index > raft_log_last_index(log))
		return;
	log->n = index - log->compact_index - 1;
	/* Configurations in the removed part roll back (thesis §4.1). */
	while (log->n_confs > 0 && log->confs[log->n_confs - 1].index >= index) {
		log->n_confs--;
		raft_mem_free(r, log->confs[log->n_confs].encoded);
	}
}

const struct raft_configuration *raft_log_conf(const struct raft_log *log,
					       uint64_t *index)
{
	if (log->n_confs > 0) {
		if (index)
			*index = log->confs[log->n_confs - 1].index;
		return &log->confs[log->n_confs - 1].conf;
	}
	if (index)
		*index = log->snapshot.conf_index;
	return &log->snapshot.conf;
}

const uint8_t *raft_log_conf_payload(const struct raft_log *log, uint64_t index)
{
	for (size_t i = log->n_confs; i > 0; i--) {
		if (log->confs[i - 1].index == index)
			return log->confs[i - 1].encoded;
	}
	return NULL;
}

uint64_t raft_log_find_conflict_by_term(const struct raft_log *log,
					uint64_t index, uint64_t term)
{
	uint64_t last = raft_log_last_index(log);
	if (index > last)
		index = last;
	while (index > log->compact_index) {
		if (raft_log_term(log, index) <= term)
			return index;
		index--;
	}
	return index;
}

bool raft_log_is_up_to_date(const struct raft_log *log, uint64_t index,
			    uint64_t term)
{
	uint64_t last_term = raft_log_last_term(log);
	return term > last_term ||
	       (term == last_term && index >= raft_log_last_index(log));
}

void raft_log_compact(struct raft *r, struct raft_log *log, uint64_t index)
{
	if (index <= log->compact_index || index > raft_log_last_index(log))
		return;
	uint64_t term = raft_log_term(log, index);
	size_t drop = index - log->compact_index;
	log->start += drop;
	log->n -= drop;
	log->compact_index = index;
	log->compact_term = term;
	/* Configuration entries compacted away are no longer needed for
	 * rollback (nothing at or below the commit index is truncated); the
	 * configuration in force is the snapshot's or a later entry's. */
	size_t k = 0;
	while (k < log->n_confs && log->confs[k].index <= index) {
		raft_mem_free(r, log->confs[k].encoded);
		k++;
	}
	if (k > 0) {
		memmove(log->confs, log->confs + k,
			(log->n_confs - k) * sizeof(*log->confs));
		log->n_confs -= k;
	}
}

void raft_log_reset(struct raft *r, struct raft_log *log,
		    const struct raft_snapshot_meta *meta)
{
	for (size_t i = 0; i < log->n_confs; i++)
		raft_mem_free(r, log->confs[i].encoded);
	log->n_confs = 0;
	log->start = 0;
	log->n = 0;
	log->compact_index = meta->index;
	log->compact_term = meta->term;
	log->snapshot = *meta;
}

const struct raft_configuration *raft_log_conf_at(const struct raft_log *log,
						  uint64_t index,
						  uint64_t *conf_index)
{
	for (size_t i = log->n_confs; i > 0; i--) {
		if (log->confs[i - 1].index <= index) {
			if (conf_index)
				*conf_index = log->confs[i - 1].index;
			return &log->confs[i - 1].conf;
		}
	}
	if (conf_index)
		*conf_index = log->snapshot.conf_index;
	return &log->snapshot.conf;
}
