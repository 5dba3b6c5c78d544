/*
 * Throughput of the pure Raft core: 3 nodes in one process, no network or
 * disk delay (persistence is acknowledged at once, messages delivered in
 * order), the leader proposing batches of entries. Reports entries
 * committed per second at the leader.
 *
 *   raft_core [--entries N] [--batch B] [--size BYTES]
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "raft/raft.h"

#define NODES 3

struct queued {
	struct raft_message m;
	struct raft_entry *entries;
};

struct queue {
	struct queued *q;
	size_t head, n, cap;
};

static uint8_t payload[RAFT_MAX_ENTRY_BYTES];
static struct raft *nodes[NODES + 1];
static struct queue inbox;

static void push(const struct raft_message *m)
{
	if (inbox.n == inbox.cap) {
		size_t cap = inbox.cap ? inbox.cap * 2 : 1024;
		struct queued *q = malloc(cap * sizeof(*q));
		if (!q)
			abort();
		for (size_t i = 0; i < inbox.n; i++)
			q[i] = inbox.q[(inbox.head + i) % inbox.cap];
		free(inbox.q);
		inbox.q = q;
		inbox.head = 0;
		inbox.cap = cap;
	}
	struct queued *e = &inbox.q[(inbox.head + inbox.n++) % inbox.cap];
	e->m = *m;
	e->entries = NULL;
	if (m->n_entries) {
		/* What a transport does: attach payloads to the entries. */
		e->entries = malloc(m->n_entries * sizeof(*e->entries));
		if (!e->entries)
			abort();
		for (uint32_t i = 0; i < m->n_entries; i++) {
			e->entries[i] = m->entries[i];
			if (!e->entries[i].data)
				e->entries[i].data = payload;
		}
	}
	e->m.entries = e->entries;
}

static void process(struct raft *r)
{
	while (raft_has_update(r)) {
		struct raft_update u;
		if (raft_update_get(r, &u) != 0)
			abort();
		for (uint32_t i = 0; i < u.n_messages; i++)
			push(&u.messages[i]);
		/* "Persisted" at once. */
		for (uint32_t i = 0; i < u.n_messages_after_persist; i++)
			push(&u.messages_after_persist[i]);
		uint64_t last = u.n_entries ? u.entries[u.n_entries - 1].index : 0;
		uint64_t term = u.n_entries ? u.entries[u.n_entries - 1].term : 0;
		raft_update_done(r, &u);
		if (last && raft_persisted(r, last, term) != 0)
			abort();
	}
}

static void deliver_all(void)
{
	while (inbox.n > 0) {
		struct queued e = inbox.q[inbox.head];
		inbox.head = (inbox.head + 1) % inbox.cap;
		inbox.n--;
		struct raft *to = nodes[e.m.to];
		if (raft_step(to, &e.m) != 0)
			abort();
		process(to);
		free(e.entries);
	}
}

static double now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	uint64_t entries = 4000000;
	uint32_t batch = 256, size = 128;
	for (int i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--entries"))
			entries = strtoull(argv[i + 1], NULL, 10);
		else if (!strcmp(argv[i], "--batch"))
			batch = (uint32_t)strtoul(argv[i + 1], NULL, 10);
		else if (!strcmp(argv[i], "--size"))
			size = (uint32_t)strtoul(argv[i + 1], NULL, 10);
	}
	if (batch == 0 || batch > 4096 || size > RAFT_MAX_ENTRY_BYTES) {
		fprintf(stderr, "raft_core: bad --batch or --size\n");
		return 2;
	}
	struct raft_configuration conf = {.n = NODES};
	for (uint32_t i = 0; i < NODES; i++) {
		conf.members[i].id = i + 1;
		conf.members[i].role = RAFT_VOTER;
	}
	for (uint64_t id = 1; id <= NODES; id++) {
		struct raft_options o;
		raft_options_default(&o, id);
		o.max_uncommitted_bytes = 1ull << 40;
		if (raft_create(&o, &nodes[id]) != 0 ||
		    raft_bootstrap(nodes[id], &conf) != 0)
			return 1;
		process(nodes[id]);
	}
	/* Node 1 campaigns. */
	while (!raft_is_leader(nodes[1])) {
		raft_tick(nodes[1]);
		process(nodes[1]);
		deliver_all();
	}
	struct raft *leader = nodes[1];
	const void **data = malloc(batch * sizeof(*data));
	uint32_t *sizes = malloc(batch * sizeof(*sizes));
	if (!data || !sizes)
		return 1;
	for (uint32_t i = 0; i < batch; i++) {
		data[i] = payload;
		sizes[i] = size;
	}
	uint64_t start_commit = raft_commit_index(leader);
	double t0 = now_s();
	uint64_t proposed = 0;
	while (raft_commit_index(leader) - start_commit < entries) {
		if (proposed < entries) {
			int rc = raft_propose(leader, data, sizes, batch, NULL,
					      NULL);
			if (rc == 0)
				proposed += batch;
			else if (rc != -EBUSY)
				return 1;
		}
		process(leader);
		deliver_all();
	}
	double secs = now_s() - t0;
	uint64_t committed = raft_commit_index(leader) - start_commit;
	printf("raft core, %d nodes, batches of %u entries of %u bytes: "
	       "%llu entries committed in %.2f s = %.0f entries/s\n",
	       NODES, batch, size, (unsigned long long)committed, secs,
	       (double)committed / secs);
	for (uint64_t id = 1; id <= NODES; id++)
		raft_destroy(nodes[id]);
	free(data);
	free(sizes);
	free(inbox.q);
	return 0;
}
