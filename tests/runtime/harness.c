/* The in-process cluster of tests/runtime/harness.h. */

#define _GNU_SOURCE
#include "tests/runtime/harness.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "net/net.h"
#include "raft/runtime_internal.h"

struct hnode {
	uint64_t id;
	struct harness *h;
	pthread_rwlock_t lock; /* rt: write to change, read to use */
	struct raft_runtime *rt;
	uint64_t epoch; /* proposal epoch: starts so far */
	uint64_t seq;
	uint64_t sent;  /* messages through the loopback */

	/* the test state machine (its apply thread; mu for readers) */
	pthread_mutex_t mu;
	uint64_t applied;
	uint64_t chain;
	uint64_t fresh, dups; /* commands applied, duplicates answered */
	struct raft_dedup_table *dedup;
	uint64_t applied_term;
	uint8_t *state; /* snapshots: h->o.state_bytes */
};

struct harness {
	struct harness_options o;
	char dir[256];
	bool own_dir;
	struct hnode nodes[HARNESS_MAX_NODES + 1];
	pthread_mutex_t cut_mu;
	bool cut[HARNESS_MAX_NODES + 1][HARNESS_MAX_NODES + 1];
	pthread_mutex_t seq_mu;
	/* the chunk loopback's faults */
	pthread_mutex_t chunk_mu;
	unsigned int chunk_seed;
	struct raft_chunk held; /* a chunk held back to reorder */
	uint8_t *held_data;
	bool have_held;
	uint64_t chunks_sent;
};

uint64_t harness_now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static uint64_t mix(uint64_t h, uint64_t v)
{
	h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
	h *= 0xff51afd7ed558ccdull;
	return h ^ (h >> 33);
}

/* ---- the loopback transport ---- */

static int loop_send(void *ctx, const struct raft_message *m)
{
	struct hnode *from = ctx;
	struct harness *h = from->h;
	bool cut;

	if (m->to == 0 || m->to > h->o.nodes)
		return -ENOENT;
	pthread_mutex_lock(&h->cut_mu);
	cut = h->cut[m->from][m->to];
	pthread_mutex_unlock(&h->cut_mu);
	__atomic_add_fetch(&from->sent, 1, __ATOMIC_RELAXED);
	if (cut)
		return -ENOTCONN;
	struct hnode *to = &h->nodes[m->to];
	pthread_rwlock_rdlock(&to->lock);
	if (to->rt != NULL)
		raft_runtime_receive(to->rt, m);
	pthread_rwlock_unlock(&to->lock);
	return 0;
}

static void chunk_deliver(struct harness *h, const struct raft_chunk *c)
{
	struct hnode *to = &h->nodes[c->to];
	pthread_rwlock_rdlock(&to->lock);
	if (to->rt != NULL)
		raft_runtime_receive_chunk(to->rt, c);
	pthread_rwlock_unlock(&to->lock);
}

static int loop_send_chunk(void *ctx, const struct raft_chunk *c)
{
	struct hnode *from = ctx;
	struct harness *h = from->h;
	struct raft_chunk held;
	uint8_t *held_data = NULL;
	bool cut, drop, dup, hold, release = false;

	if (c->to == 0 || c->to > h->o.nodes)
		return -ENOENT;
	if (h->o.chunk_delay_us > 0 && c->type == RAFT_CHUNK_DATA)
		usleep(h->o.chunk_delay_us);
	pthread_mutex_lock(&h->cut_mu);
	cut = h->cut[c->from][c->to];
	pthread_mutex_unlock(&h->cut_mu);
	if (cut)
		return -ENOTCONN;
	pthread_mutex_lock(&h->chunk_mu);
	h->chunks_sent++;
	drop = (uint32_t)(rand_r(&h->chunk_seed) % 100u) < h->o.chunk_drop_pct;
	dup = (uint32_t)(rand_r(&h->chunk_seed) % 100u) < h->o.chunk_dup_pct;
	hold = (uint32_t)(rand_r(&h->chunk_seed) % 100u) <
	       h->o.chunk_reorder_pct;
	if (h->have_held) {
		/* The one held back goes after this one. */
		held = h->held;
		held_data = h->held_data;
		h->have_held = false;
		h->held_data = NULL;
		release = true;
	}
	if (!drop && hold && !release) {
		h->held = *c;
		h->held_data = NULL;
		if (c->size > 0) {
			h->held_data = malloc(c->size);
			if (h->held_data != NULL)
				memcpy(h->held_data, c->data, c->size);
		}
		if (c->size == 0 || h->held_data != NULL) {
			h->held.data = h->held_data;
			h->have_held = true;
			drop = true; /* delivered later */
		}
	}
	pthread_mutex_unlock(&h->chunk_mu);
	if (!drop) {
		chunk_deliver(h, c);
		if (dup)
			chunk_deliver(h, c);
	}
	if (release) {
		chunk_deliver(h, &held);
		free(held_data);
	}
	return 0;
}

uint64_t harness_chunks_sent(struct harness *h)
{
	pthread_mutex_lock(&h->chunk_mu);
	uint64_t n = h->chunks_sent;
	pthread_mutex_unlock(&h->chunk_mu);
	return n;
}

void harness_deliver(struct harness *h, uint64_t to,
		     const struct raft_message *m)
{
	if (to == 0 || to > h->o.nodes)
		return;
	struct hnode *n = &h->nodes[to];
	pthread_rwlock_rdlock(&n->lock);
	if (n->rt != NULL)
		raft_runtime_receive(n->rt, m);
	pthread_rwlock_unlock(&n->lock);
}

/* ---- the test state machine ---- */

static int fsm_apply(void *ctx, const struct raft_entry *e,
		     struct raft_proposal_id *id, void *result,
		     size_t *result_size)
{
	struct hnode *n = ctx;
	struct harness_result res = {e->index, e->term};
	int rc = 0;

	if (n->h->o.apply_delay_us > 0)
		usleep(n->h->o.apply_delay_us);
	pthread_mutex_lock(&n->mu);
	if (e->index != n->applied + 1) {
		pthread_mutex_unlock(&n->mu);
		return -EILSEQ; /* applied out of order: stop the node */
	}
	n->chain = mix(mix(mix(n->chain, e->index), e->term), e->type);
	for (uint32_t i = 0; i < e->size; i++)
		n->chain = mix(n->chain, ((const uint8_t *)e->data)[i]);
	n->applied = e->index;
	n->applied_term = e->term;
	if (n->state != NULL)
		n->state[(e->index * 2654435761u) % n->h->o.state_bytes] ^=
			(uint8_t)n->chain;
	if (e->type == RAFT_ENTRY_NORMAL) {
		struct raft_proposal p;
		if (raft_proposal_decode(e->data, e->size, &p) != 0) {
			pthread_mutex_unlock(&n->mu);
			return -EBADMSG;
		}
		const void *old = NULL;
		size_t old_size = 0;
		enum raft_dedup_verdict v =
			raft_dedup_table_check(n->dedup, &p, &old, &old_size);
		if (v == RAFT_DEDUP_DUPLICATE && old_size == sizeof(res))
			memcpy(&res, old, sizeof(res));
		if (v == RAFT_DEDUP_DUPLICATE)
			n->dups++;
		else if (v == RAFT_DEDUP_NEW)
			n->fresh++;
		rc = raft_dedup_table_record(n->dedup, &p, v, &res, sizeof(res));
		*id = p.id;
		memcpy(result, &res, sizeof(res));
		*result_size = sizeof(res);
	}
	pthread_mutex_unlock(&n->mu);
	return rc;
}

/* ---- snapshots of the test state machine ---- */

#define SNAP_HEADER_BYTES 48u

static void state_path(struct hnode *n, char *buf, size_t size,
		       const char *suffix)
{
	snprintf(buf, size, "%s/state%llu%s", n->h->dir,
		 (unsigned long long)n->id, suffix);
}

static void put64(uint8_t *p, uint64_t v)
{
	memcpy(p, &v, 8);
}

static uint64_t get64(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return v;
}

/* The state as a stream: header then the state bytes (n->mu held). */
static size_t state_encode(struct hnode *n, uint8_t *buf)
{
	uint64_t len = n->h->o.state_bytes;
	put64(buf, n->applied);
	put64(buf + 8, n->applied_term);
	put64(buf + 16, n->chain);
	put64(buf + 24, n->fresh);
	put64(buf + 32, n->dups);
	put64(buf + 40, len);
	memcpy(buf + SNAP_HEADER_BYTES, n->state, len);
	return SNAP_HEADER_BYTES + len;
}

static int state_decode(struct hnode *n, const uint8_t *buf, size_t size)
{
	uint64_t len = n->h->o.state_bytes;
	if (size != SNAP_HEADER_BYTES + len || get64(buf + 40) != len)
		return -EBADMSG;
	pthread_mutex_lock(&n->mu);
	n->applied = get64(buf);
	n->applied_term = get64(buf + 8);
	n->chain = get64(buf + 16);
	n->fresh = get64(buf + 24);
	n->dups = get64(buf + 32);
	memcpy(n->state, buf + SNAP_HEADER_BYTES, len);
	pthread_mutex_unlock(&n->mu);
	return 0;
}

/* Write buf durably as the node's state file (temporary, fsync,
 * rename). */
static int state_write(struct hnode *n, const uint8_t *buf, size_t size)
{
	char tmp[320], path[320];
	int fd, rc = 0;

	state_path(n, tmp, sizeof(tmp), ".tmp");
	state_path(n, path, sizeof(path), "");
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0)
		return -errno;
	if (write(fd, buf, size) != (ssize_t)size || fsync(fd) != 0)
		rc = -EIO;
	close(fd);
	if (rc == 0 && rename(tmp, path) != 0)
		rc = -errno;
	return rc;
}

static int state_load(struct hnode *n)
{
	char path[320];
	size_t size = SNAP_HEADER_BYTES + n->h->o.state_bytes;
	uint8_t *buf;
	int fd, rc;

	state_path(n, path, sizeof(path), ".tmp");
	unlink(path); /* an unfinished write or install */
	state_path(n, path, sizeof(path), "");
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	buf = malloc(size);
	if (buf == NULL) {
		close(fd);
		return -ENOMEM;
	}
	rc = read(fd, buf, size) == (ssize_t)size ? 0 : -EIO;
	close(fd);
	if (rc == 0)
		rc = state_decode(n, buf, size);
	free(buf);
	return rc;
}

static int fsm_sync(void *ctx)
{
	struct hnode *n = ctx;
	uint8_t *buf = malloc(SNAP_HEADER_BYTES + n->h->o.state_bytes);
	size_t size;
	int rc;

	if (buf == NULL)
		return -ENOMEM;
	pthread_mutex_lock(&n->mu);
	size = state_encode(n, buf);
	pthread_mutex_unlock(&n->mu);
	rc = state_write(n, buf, size);
	free(buf);
	return rc;
}

struct view {
	uint8_t *buf;
	size_t size, off;
};

static int fsm_snapshot_open(void *ctx, uint64_t index, uint64_t term,
			     void **out)
{
	struct hnode *n = ctx;
	struct view *v = calloc(1, sizeof(*v));

	if (v == NULL)
		return -ENOMEM;
	v->buf = malloc(SNAP_HEADER_BYTES + n->h->o.state_bytes);
	if (v->buf == NULL) {
		free(v);
		return -ENOMEM;
	}
	pthread_mutex_lock(&n->mu);
	if (n->applied != index || n->applied_term != term) {
		pthread_mutex_unlock(&n->mu);
		free(v->buf);
		free(v);
		return -EINVAL; /* the runtime's indexes are wrong */
	}
	v->size = state_encode(n, v->buf);
	pthread_mutex_unlock(&n->mu);
	*out = v;
	return 0;
}

static int fsm_snapshot_read(void *ctx, void *view, void *buf, size_t cap,
			     size_t *len, bool *last)
{
	struct view *v = view;
	size_t k = v->size - v->off < cap ? v->size - v->off : cap;

	(void)ctx;
	memcpy(buf, v->buf + v->off, k);
	v->off += k;
	*len = k;
	*last = v->off == v->size;
	return 0;
}

static void fsm_snapshot_close(void *ctx, void *view)
{
	struct view *v = view;

	(void)ctx;
	if (v != NULL)
		free(v->buf);
	free(v);
}

struct install {
	uint64_t index, term;
	uint8_t *buf;
	size_t size, cap;
};

static int fsm_install_begin(void *ctx, uint64_t index, uint64_t term,
			     void **out)
{
	struct hnode *n = ctx;
	struct install *in = calloc(1, sizeof(*in));

	if (in == NULL)
		return -ENOMEM;
	in->index = index;
	in->term = term;
	in->cap = SNAP_HEADER_BYTES + n->h->o.state_bytes;
	in->buf = malloc(in->cap);
	if (in->buf == NULL) {
		free(in);
		return -ENOMEM;
	}
	*out = in;
	return 0;
}

static int fsm_install_chunk(void *ctx, void *inst, const void *data,
			     size_t len)
{
	struct install *in = inst;

	(void)ctx;
	if (len > in->cap - in->size)
		return -EBADMSG;
	memcpy(in->buf + in->size, data, len);
	in->size += len;
	return 0;
}

static void fsm_install_abort(void *ctx, void *inst)
{
	struct install *in = inst;

	(void)ctx;
	if (in != NULL)
		free(in->buf);
	free(in);
}

static int fsm_install_finish(void *ctx, void *inst)
{
	struct hnode *n = ctx;
	struct install *in = inst;
	int rc = 0;

	if (in->size != in->cap || get64(in->buf) != in->index ||
	    get64(in->buf + 8) != in->term)
		rc = -EBADMSG;
	if (rc == 0)
		rc = state_write(n, in->buf, in->size);
	if (rc == 0) {
		rc = state_decode(n, in->buf, in->size);
		/* The duplicate table is not part of the test snapshot. */
		pthread_mutex_lock(&n->mu);
		raft_dedup_table_destroy(n->dedup);
		n->dedup = NULL;
		if (raft_dedup_table_create(NULL, &n->dedup) != 0 && rc == 0)
			rc = -ENOMEM;
		pthread_mutex_unlock(&n->mu);
	}
	fsm_install_abort(ctx, inst);
	return rc;
}

uint64_t harness_log_first_index(struct harness *h, uint64_t id)
{
	struct raft_runtime_status st;
	struct hnode *n = &h->nodes[id];
	uint64_t first = 0;

	pthread_rwlock_rdlock(&n->lock);
	if (n->rt != NULL) {
		raft_runtime_status_get(n->rt, &st);
		first = st.log_first_index;
	}
	pthread_rwlock_unlock(&n->lock);
	return first;
}

/* ---- nodes ---- */

static void log_line(void *ctx, int level, const char *line)
{
	struct harness *h = ctx;
	if (h->o.log != NULL)
		h->o.log(h->o.log_ctx, level, line);
	if (!h->o.quiet || level == 0)
		fprintf(stderr, "%s\n", line);
}

const char *harness_node_dir(struct harness *h, uint64_t id, char *buf,
			     size_t size)
{
	snprintf(buf, size, "%s/node%llu", h->dir, (unsigned long long)id);
	return buf;
}

int harness_start_node_failing(struct harness *h, uint64_t id,
			       uint64_t fail_write_at, int err_no)
{
	struct hnode *n = &h->nodes[id];
	struct raft_runtime_options o;
	struct raft_runtime *rt = NULL;
	char dir[300], err[512];
	int rc;

	if (id == 0 || id > h->o.nodes || n->rt != NULL)
		return -EINVAL;
	raft_runtime_options_default(&o, id);
	o.dir = harness_node_dir(h, id, dir, sizeof(dir));
	o.cluster_id = HARNESS_CLUSTER_ID;
	o.bootstrap = true;
	o.conf.n = h->o.nodes;
	for (uint32_t i = 0; i < h->o.nodes; i++) {
		o.conf.members[i].id = i + 1;
		o.conf.members[i].role = RAFT_VOTER;
		snprintf(o.conf.members[i].address, RAFT_MAX_ADDRESS,
			 "127.0.0.%u:7000", i + 1);
	}
	o.raft.election_ticks = h->o.election_ticks;
	o.raft.heartbeat_ticks = h->o.election_ticks / 5 ? h->o.election_ticks / 5 : 1;
	o.raft.seed = id * 7919u + (uint64_t)harness_now_us();
	o.tick_ms = h->o.tick_ms;
	if (h->o.apply_queue_bytes)
		o.apply_queue_bytes = h->o.apply_queue_bytes;
	o.transport.send = loop_send;
	o.transport.ctx = n;
	if (h->o.send != NULL) {
		o.transport.send = h->o.send;
		o.transport.ctx = h->o.send_ctx;
	}
	o.fsm.apply = fsm_apply;
	o.fsm.ctx = n;
	if (h->o.snapshots) {
		o.transport.send_chunk = loop_send_chunk;
		o.fsm.sync = fsm_sync;
		o.fsm.snapshot_open = fsm_snapshot_open;
		o.fsm.snapshot_read = fsm_snapshot_read;
		o.fsm.snapshot_close = fsm_snapshot_close;
		o.fsm.install_begin = fsm_install_begin;
		o.fsm.install_chunk = fsm_install_chunk;
		o.fsm.install_finish = fsm_install_finish;
		o.fsm.install_abort = fsm_install_abort;
		o.fsm.snapshot_chunk_bytes = h->o.chunk_bytes;
		if (h->o.snapshot_entries != 0)
			o.snapshot_entries = h->o.snapshot_entries;
		o.snapshot_keep_entries = h->o.snapshot_keep;
	}
	o.log = log_line;
	o.log_ctx = h;

	/* The state machine is in memory: it replays the log from 1. */
	raft_dedup_table_destroy(n->dedup);
	n->dedup = NULL;
	rc = raft_dedup_table_create(NULL, &n->dedup);
	if (rc != 0)
		return rc;
	n->applied = 0;
	n->applied_term = 0;
	n->chain = 0;
	n->fresh = n->dups = 0;
	if (h->o.snapshots) {
		/* The state machine starts from its synced state. */
		if (n->state == NULL)
			n->state = malloc(h->o.state_bytes);
		if (n->state == NULL)
			return -ENOMEM;
		memset(n->state, 0, h->o.state_bytes);
		rc = state_load(n);
		if (rc != 0)
			return rc;
		o.applied_index = n->applied;
	}
	rc = raft_runtime_create(&o, &rt, err, sizeof(err));
	if (rc != 0) {
		fprintf(stderr, "node %llu: %s\n", (unsigned long long)id, err);
		return rc;
	}
	if (fail_write_at > 0)
		raft_logstore_fail_write_at(rt->ls, fail_write_at, err_no);
	pthread_rwlock_wrlock(&n->lock);
	n->rt = rt;
	if (n->epoch < h->o.epoch_base)
		n->epoch = h->o.epoch_base;
	n->epoch++;
	n->seq = 0;
	pthread_rwlock_unlock(&n->lock);
	rc = raft_runtime_start(rt);
	if (rc != 0)
		harness_stop_node(h, id);
	return rc;
}

int harness_start_node(struct harness *h, uint64_t id)
{
	return harness_start_node_failing(h, id, 0, 0);
}

void harness_stop_node(struct harness *h, uint64_t id)
{
	struct hnode *n = &h->nodes[id];
	struct raft_runtime *rt;

	pthread_rwlock_wrlock(&n->lock);
	rt = n->rt;
	n->rt = NULL;
	pthread_rwlock_unlock(&n->lock);
	raft_runtime_destroy(rt);
}

struct raft_runtime *harness_runtime(struct harness *h, uint64_t id)
{
	return h->nodes[id].rt;
}

void harness_options_default(struct harness_options *o, uint32_t nodes)
{
	memset(o, 0, sizeof(*o));
	o->nodes = nodes;
	o->tick_ms = 10;
	o->election_ticks = 10;
	o->quiet = true;
	o->state_bytes = 1u << 20;
	o->chunk_bytes = 64u << 10;
	o->snapshot_keep = 100;
}

int harness_create(const struct harness_options *o, struct harness **out)
{
	struct harness *h;

	*out = NULL;
	if (o->nodes == 0 || o->nodes > HARNESS_MAX_NODES)
		return -EINVAL;
	h = calloc(1, sizeof(*h));
	if (h == NULL)
		return -ENOMEM;
	h->o = *o;
	if (o->dir != NULL) {
		snprintf(h->dir, sizeof(h->dir), "%s", o->dir);
	} else {
		snprintf(h->dir, sizeof(h->dir), "/tmp/raftfs-runtime-XXXXXX");
		if (mkdtemp(h->dir) == NULL) {
			free(h);
			return -errno;
		}
		h->own_dir = true;
	}
	pthread_mutex_init(&h->cut_mu, NULL);
	pthread_mutex_init(&h->seq_mu, NULL);
	pthread_mutex_init(&h->chunk_mu, NULL);
	h->chunk_seed = (unsigned int)harness_now_us();
	for (uint64_t id = 1; id <= o->nodes; id++) {
		struct hnode *n = &h->nodes[id];
		n->id = id;
		n->h = h;
		pthread_rwlock_init(&n->lock, NULL);
		pthread_mutex_init(&n->mu, NULL);
	}
	*out = h;
	return 0;
}

static int rm_one(const char *path, const struct stat *sb, int flag,
		  struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

void harness_destroy(struct harness *h)
{
	if (h == NULL)
		return;
	for (uint64_t id = 1; id <= h->o.nodes; id++)
		harness_stop_node(h, id);
	for (uint64_t id = 1; id <= h->o.nodes; id++) {
		struct hnode *n = &h->nodes[id];
		raft_dedup_table_destroy(n->dedup);
		free(n->state);
		pthread_rwlock_destroy(&n->lock);
		pthread_mutex_destroy(&n->mu);
	}
	if (h->own_dir)
		harness_remove_tree(h->dir);
	pthread_mutex_destroy(&h->cut_mu);
	pthread_mutex_destroy(&h->seq_mu);
	pthread_mutex_destroy(&h->chunk_mu);
	free(h->held_data);
	free(h);
}

void harness_cut(struct harness *h, uint64_t from, uint64_t to, bool cut)
{
	pthread_mutex_lock(&h->cut_mu);
	h->cut[from][to] = cut;
	pthread_mutex_unlock(&h->cut_mu);
}

uint64_t harness_sent(struct harness *h, uint64_t id)
{
	return __atomic_load_n(&h->nodes[id].sent, __ATOMIC_RELAXED);
}

uint64_t harness_wait_leader(struct harness *h, uint32_t timeout_ms)
{
	uint64_t end = harness_now_us() + (uint64_t)timeout_ms * 1000u;

	do {
		uint64_t leader = 0, term = 0;
		uint32_t agree = 0, running = 0;
		for (uint64_t id = 1; id <= h->o.nodes; id++) {
			struct raft_runtime_status st;
			struct hnode *n = &h->nodes[id];
			pthread_rwlock_rdlock(&n->lock);
			if (n->rt != NULL) {
				raft_runtime_status_get(n->rt, &st);
				running++;
				if (st.failed == 0 &&
				    st.raft.state == RAFT_LEADER &&
				    st.raft.term >= term) {
					leader = id;
					term = st.raft.term;
				}
			}
			pthread_rwlock_unlock(&n->lock);
		}
		/* A leader the others follow (or a single node). */
		for (uint64_t id = 1; leader != 0 && id <= h->o.nodes; id++) {
			struct raft_runtime_status st;
			struct hnode *n = &h->nodes[id];
			pthread_rwlock_rdlock(&n->lock);
			if (n->rt != NULL) {
				raft_runtime_status_get(n->rt, &st);
				if (st.raft.leader == leader &&
				    st.raft.term == term)
					agree++;
			}
			pthread_rwlock_unlock(&n->lock);
		}
		if (leader != 0 && agree * 2 > h->o.nodes)
			return leader;
		(void)running;
		usleep(2000);
	} while (harness_now_us() < end);
	return 0;
}

void harness_next_id(struct harness *h, uint64_t node,
		     struct raft_proposal_id *id)
{
	struct hnode *n = &h->nodes[node];
	pthread_mutex_lock(&h->seq_mu);
	id->node = node;
	id->epoch = n->epoch;
	id->seq = ++n->seq;
	pthread_mutex_unlock(&h->seq_mu);
}

int harness_propose(struct harness *h, uint64_t node,
		    const struct raft_proposal_id *id, const void *payload,
		    uint32_t size, uint32_t timeout_ms,
		    struct harness_result *res)
{
	struct hnode *n = &h->nodes[node];
	struct raft_proposal p = {*id, id->seq};
	uint8_t *cmd = malloc(RAFT_PROPOSAL_BYTES + size);
	size_t rsize = 0;
	int rc;

	if (cmd == NULL)
		return -ENOMEM;
	raft_proposal_encode(&p, cmd);
	if (size > 0)
		memcpy(cmd + RAFT_PROPOSAL_BYTES, payload, size);
	pthread_rwlock_rdlock(&n->lock);
	if (n->rt == NULL)
		rc = -ESHUTDOWN;
	else
		rc = raft_runtime_propose(n->rt, id, cmd,
					  RAFT_PROPOSAL_BYTES + size,
					  timeout_ms, res, sizeof(*res), &rsize);
	pthread_rwlock_unlock(&n->lock);
	free(cmd);
	if (rc == 0 && rsize != sizeof(*res))
		rc = -EBADMSG;
	return rc;
}

void harness_applied(struct harness *h, uint64_t id, uint64_t *index,
		     uint64_t *chain)
{
	struct hnode *n = &h->nodes[id];
	pthread_mutex_lock(&n->mu);
	*index = n->applied;
	*chain = n->chain;
	pthread_mutex_unlock(&n->mu);
}

void harness_dedup_counts(struct harness *h, uint64_t id, uint64_t *fresh,
			  uint64_t *dups)
{
	struct hnode *n = &h->nodes[id];
	pthread_mutex_lock(&n->mu);
	*fresh = n->fresh;
	*dups = n->dups;
	pthread_mutex_unlock(&n->mu);
}

int harness_wait_converged(struct harness *h, uint64_t index,
			   uint32_t timeout_ms)
{
	uint64_t end = harness_now_us() + (uint64_t)timeout_ms * 1000u;

	do {
		uint64_t first = 0, chain0 = 0;
		bool ok = true, any = false;
		for (uint64_t id = 1; id <= h->o.nodes && ok; id++) {
			uint64_t a, c;
			if (h->nodes[id].rt == NULL)
				continue;
			harness_applied(h, id, &a, &c);
			if (!any) {
				first = a;
				chain0 = c;
				any = true;
			}
			ok = a >= index && a == first && c == chain0;
		}
		if (ok && any)
			return 0;
		usleep(2000);
	} while (harness_now_us() < end);
	return -ETIMEDOUT;
}

/* ---- one member, no transport ------------------------------------------- */

static int send_nothing(void *ctx, const struct raft_message *m)
{
	(void)ctx;
	(void)m;
	return 0; /* one member: nothing to send */
}

int harness_solo_start(const char *dir,
		       int (*apply)(void *ctx, const struct raft_entry *e,
				    struct raft_proposal_id *id, void *result,
				    size_t *size),
		       void *ctx, uint64_t applied, uint64_t bootstrap_index,
		       struct raft_runtime **out, char *err, size_t err_size)
{
	struct raft_runtime_options o;
	struct raft_runtime *rt = NULL;
	int rc;

	raft_runtime_options_default(&o, 1);
	o.dir = dir;
	o.cluster_id = "c0ffee00c0ffee00c0ffee00c0ffee00";
	o.bootstrap = true;
	o.bootstrap_index = bootstrap_index;
	o.applied_index = applied;
	o.conf.n = 1;
	o.conf.members[0].id = 1;
	o.conf.members[0].role = RAFT_VOTER;
	snprintf(o.conf.members[0].address, RAFT_MAX_ADDRESS,
		 "127.0.0.1:7000");
	o.tick_ms = 10;
	o.raft.election_ticks = 10;
	o.raft.heartbeat_ticks = 2;
	o.transport.send = send_nothing;
	o.fsm.apply = apply;
	o.fsm.ctx = ctx;
	rc = raft_runtime_create(&o, &rt, err, err_size);
	if (rc != 0)
		return rc;
	rc = raft_runtime_start(rt);
	if (rc != 0) {
		snprintf(err, err_size, "start: %d", rc);
		raft_runtime_destroy(rt);
		return rc;
	}
	*out = rt;
	return 0;
}

int harness_solo_propose(struct raft_runtime *rt, uint64_t seq)
{
	struct raft_proposal_id id = {1, 1, seq};
	size_t size = 0;
	uint8_t result[8];
	int rc = -1;

	for (int i = 0; i < 100 && rc != 0; i++) {
		rc = raft_runtime_propose(rt, &id, &id, sizeof(id), 2000, result,
					  sizeof(result), &size);
		if (rc != 0)
			usleep(50 * 1000);
	}
	return rc;
}

int harness_net_create3(struct net *net[4], const char *certs,
			unsigned port_base,
			void (*on_raft)(void *ctx, const struct raft_message *m),
			void *ctx, char *err, size_t err_size)
{
	for (uint64_t id = 1; id <= 3; id++) {
		struct net_options no;
		char ca[700], crt[700], key[700], listen[64];
		net_options_default(&no, id);
		snprintf(ca, sizeof(ca), "%s/ca.crt", certs);
		snprintf(crt, sizeof(crt), "%s/node%" PRIu64 ".crt", certs, id);
		snprintf(key, sizeof(key), "%s/node%" PRIu64 ".key", certs, id);
		snprintf(listen, sizeof(listen), "127.0.0.1:%" PRIu64,
			 port_base + id);
		no.listen = listen;
		no.ca_file = ca;
		no.cert_file = crt;
		no.key_file = key;
		for (uint64_t p = 1; p <= 3; p++) {
			if (p == id)
				continue;
			no.peers[no.n_peers].id = p;
			snprintf(no.peers[no.n_peers].address, RAFT_MAX_ADDRESS,
				 "127.0.0.1:%" PRIu64, port_base + p);
			no.n_peers++;
		}
		no.backoff_min_ms = 20;
		no.backoff_max_ms = 200;
		no.on_raft = on_raft;
		no.ctx = ctx;
		if (net_create(&no, &net[id], err, err_size) != 0)
			return -1;
	}
	return 0;
}

void harness_remove_tree(const char *dir)
{
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}
