/*
 * The filesystem over the Raft runtime (fs/fs.h, "The Raft proposer"): the
 * state machine the runtime applies committed entries to, and the proposer
 * interface the FUSE front end submits commands through.
 *
 * Apply runs on the runtime's apply thread, in log order: normal entries
 * are fs commands (fs_store_apply), no-op and configuration entries only
 * move the store's applied index. The command's result travels back to
 * the waiting proposer on this node as the bytes of a struct fs_result,
 * which never leaves the process.
 *
 * Snapshots (the optional half of struct raft_fsm): sync is
 * fs_store_sync; a view is an fs_snapshot (a consistent view at the
 * store's applied index, which the runtime opens between two applies, so
 * it is exactly the index it names); one stream chunk is one fs chunk
 * (FS_CHUNK_MIN bytes at most, checksummed by the fs layer); an install
 * is an fs_install (a fresh store beside the current one, synced and
 * switched atomically by fs_install_finish). An install never finishes
 * while a view is open (fs/fs.h): it fails with -EBUSY and the leader
 * retries.
 *
 * A submission's outcome comes from the runtime's completion (its apply
 * thread, or its driver on a timeout): the runtime retries a proposal with
 * the same id while it waits, and the store's duplicate table answers a
 * command that reached the log twice with its first result.
 */

#include "fs/fs.h"
#include "fs/open_seqs.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "raft/raft.h"

_Static_assert(RAFT_MAX_MEMBERS <= FS_HOLDERS_MAX,
	       "every member of a configuration can hold an orphan");
_Static_assert(sizeof(struct fs_result) <= RAFT_RUNTIME_MAX_RESULT_BYTES,
	       "a command's result must fit the runtime's result buffer");

/* A check point this node applied: a view of the store at its index. */
struct check {
	uint64_t id;                 /* 0: a free slot */
	struct fs_check_view *view;
	unsigned refs;               /* acquired and not released */
	time_t opened;               /* CLOCK_MONOTONIC seconds */
};

#define CHECKS_MAX 8
#define CHECK_KEEP_S 600

struct fs_raft {
	struct fs_store *store;
	uint64_t node;
	uint64_t epoch;
	uint32_t timeout_ms;
	_Atomic(struct raft_runtime *) rt; /* set once by fs_raft_attach */

	pthread_mutex_t lock; /* protects open, checks and views */
	struct fs_open_seqs open;
	struct check checks[CHECKS_MAX];
	uint32_t views; /* fs_snapshot views open */
	/* Held by an install from its check of views to its switch, and by
	 * a backup (any thread) while it counts its view in. */
	pthread_mutex_t switch_lock;
};

static time_t mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

/* After applying CHECK id (apply thread): keep a view at this index. The
 * first entry with an id is the one every replica applied; a retried
 * duplicate later in the log (answered from the duplicate table, not
 * applied) must not move the view, so a known id is left alone. */
static void check_opened(struct fs_raft *fr, uint64_t id)
{
	struct check *slot = NULL;
	struct fs_check_view *v = NULL, *old = NULL;
	time_t now = mono_s();

	pthread_mutex_lock(&fr->lock);
	for (int i = 0; i < CHECKS_MAX; i++) {
		struct check *c = &fr->checks[i];
		if (c->id == id) {
			pthread_mutex_unlock(&fr->lock);
			return;
		}
		/* A free slot, else the oldest unused one. */
		if (c->refs == 0 &&
		    (slot == NULL || c->id == 0 ||
		     (slot->id != 0 && c->opened < slot->opened)))
			slot = c;
	}
	pthread_mutex_unlock(&fr->lock);
	if (slot == NULL || fs_check_view_open(fr->store, &v) != 0)
		return; /* every slot in use: this check times out here */
	pthread_mutex_lock(&fr->lock);
	if (slot->refs == 0) {
		old = slot->view;
		*slot = (struct check){id, v, 0, now};
		v = NULL;
	}
	/* Views nobody asked about for long are let go. */
	for (int i = 0; i < CHECKS_MAX; i++) {
		struct check *c = &fr->checks[i];
		if (c->id != 0 && c->refs == 0 && c != slot &&
		    now - c->opened > CHECK_KEEP_S) {
			fs_check_view_close(c->view);
			*c = (struct check){0};
		}
	}
	pthread_mutex_unlock(&fr->lock);
	fs_check_view_close(old);
	fs_check_view_close(v);
}

int fs_raft_check_acquire(struct fs_raft *fr, uint64_t check_id,
			  struct fs_check_view **view)
{
	int rc = -EAGAIN;

	*view = NULL;
	pthread_mutex_lock(&fr->lock);
	for (int i = 0; i < CHECKS_MAX; i++) {
		struct check *c = &fr->checks[i];
		if (c->id == check_id && check_id != 0) {
			c->refs++;
			*view = c->view;
			rc = 0;
		}
	}
	pthread_mutex_unlock(&fr->lock);
	return rc;
}

void fs_raft_check_release(struct fs_raft *fr, struct fs_check_view *view)
{
	pthread_mutex_lock(&fr->lock);
	for (int i = 0; i < CHECKS_MAX; i++)
		if (fr->checks[i].view == view && fr->checks[i].refs > 0)
			fr->checks[i].refs--;
	pthread_mutex_unlock(&fr->lock);
}

/* One submitted command waiting for its outcome. */
struct submission {
	struct fs_raft *fr;
	uint64_t seq;
	void (*done)(void *arg, int err, const struct fs_result *res);
	void *arg;
};

/* One barrier waiting for its read index. */
struct barrier {
	void (*done)(void *arg, int err);
	void *arg;
};

/* A configuration entry: its voters and learners become the holders of
 * files that lose their last link (fs/orphans.c). An entry this build
 * cannot decode stops the node, as a bad command does. */
static int apply_config(struct fs_raft *fr, const struct raft_entry *e)
{
	struct raft_configuration conf;
	uint64_t ids[RAFT_MAX_MEMBERS];
	uint32_t n = 0;

	if (raft_configuration_decode(e->data, e->size, &conf) != 0)
		return -EBADMSG;
	for (uint32_t i = 0; i < conf.n; i++)
		if (conf.members[i].role == RAFT_VOTER ||
		    conf.members[i].role == RAFT_LEARNER)
			ids[n++] = conf.members[i].id;
	if (n == 0)
		return fs_store_apply_other(fr->store, e->index);
	return fs_store_apply_config(fr->store, e->index, ids, n);
}

static int fr_apply(void *ctx, const struct raft_entry *e,
		    struct raft_proposal_id *id, void *result,
		    size_t *result_size)
{
	struct fs_raft *fr = ctx;
	struct fs_result res;
	struct fs_cmd cmd;
	int rc;

	if (e->type == RAFT_ENTRY_CONFIG)
		return apply_config(fr, e);
	if (e->type != RAFT_ENTRY_NORMAL)
		return fs_store_apply_other(fr->store, e->index);
	memset(&res, 0, sizeof(res));
	/* A committed command this build cannot decode stops the node
	 * (-EBADMSG): skipping it would make this replica differ. One of a
	 * version or op it does not know (a newer build proposed it), or a
	 * feature level above its own: -EPROTONOSUPPORT. */
	if (!fs_cmd_known(e->data, e->size))
		return -EPROTONOSUPPORT;
	rc = fs_store_apply(fr->store, e->index, e->data, e->size, &res);
	if (rc != 0)
		return rc;
	if (fs_cmd_decode(e->data, e->size, &cmd) == 0) {
		*id = cmd.proposal.id;
		memcpy(result, &res, sizeof(res));
		*result_size = sizeof(res);
		if (cmd.op == FS_OP_CHECK && res.err == 0)
			check_opened(fr, cmd.offset);
	}
	return 0;
}

/* ---- snapshots (runtime apply and snapshot threads) ---- */

static int fr_sync(void *ctx)
{
	struct fs_raft *fr = ctx;

	return fs_store_sync(fr->store);
}

static int fr_snapshot_open(void *ctx, uint64_t index, uint64_t term,
			    void **view)
{
	struct fs_raft *fr = ctx;
	struct fs_snapshot *snap = NULL;
	int rc = fs_snapshot_begin(fr->store, term, &snap);

	if (rc != 0)
		return rc;
	/* Opened between two applies: the store is at exactly index. */
	if (fs_snapshot_index(snap) != index) {
		fs_snapshot_end(snap);
		return -ESTALE;
	}
	pthread_mutex_lock(&fr->lock);
	fr->views++;
	pthread_mutex_unlock(&fr->lock);
	*view = snap;
	return 0;
}

static int fr_snapshot_read(void *ctx, void *view, void *buf, size_t cap,
			    size_t *len, bool *last)
{
	(void)ctx;
	return fs_snapshot_next(view, buf, cap, len, last);
}

static void fr_snapshot_close(void *ctx, void *view)
{
	struct fs_raft *fr = ctx;

	if (view == NULL)
		return;
	fs_snapshot_end(view);
	pthread_mutex_lock(&fr->lock);
	fr->views--;
	pthread_mutex_unlock(&fr->lock);
}

int fs_raft_backup(struct fs_raft *fr, uint64_t term, const char *path,
		   struct fs_backup_info *info, char *err, size_t err_size)
{
	int rc;

	/* A view like a snapshot's: no install may switch under it. */
	pthread_mutex_lock(&fr->switch_lock);
	pthread_mutex_lock(&fr->lock);
	fr->views++;
	pthread_mutex_unlock(&fr->lock);
	pthread_mutex_unlock(&fr->switch_lock);
	rc = fs_backup_write(fr->store, term, path, info, err, err_size);
	pthread_mutex_lock(&fr->lock);
	fr->views--;
	pthread_mutex_unlock(&fr->lock);
	return rc;
}

static int fr_install_begin(void *ctx, uint64_t index, uint64_t term,
			    void **inst)
{
	struct fs_raft *fr = ctx;
	struct fs_install *in = NULL;
	int rc = fs_install_begin(fr->store, index, term, &in);

	if (rc == 0)
		*inst = in;
	return rc;
}

static int fr_install_chunk(void *ctx, void *inst, const void *data,
			    size_t len)
{
	(void)ctx;
	return fs_install_chunk(inst, data, len);
}

static int fr_install_finish(void *ctx, void *inst)
{
	struct fs_raft *fr = ctx;
	uint32_t views;
	int rc;

	struct fs_check_view *idle[CHECKS_MAX];
	int n_idle = 0;
	bool busy = false;

	/* No install may finish while a view reads the store (fs/fs.h):
	 * check views nobody holds are let go (their checks time out and
	 * are asked again), views in use make it wait for a retry. New
	 * views are opened on this (the apply) thread only. */
	pthread_mutex_lock(&fr->switch_lock);
	pthread_mutex_lock(&fr->lock);
	views = fr->views;
	for (int i = 0; i < CHECKS_MAX; i++) {
		struct check *c = &fr->checks[i];
		if (c->id == 0)
			continue;
		if (c->refs > 0) {
			busy = true;
			continue;
		}
		idle[n_idle++] = c->view;
		*c = (struct check){0};
	}
	pthread_mutex_unlock(&fr->lock);
	for (int i = 0; i < n_idle; i++)
		fs_check_view_close(idle[i]);
	if (views > 0 || busy) {
		pthread_mutex_unlock(&fr->switch_lock);
		fs_install_abort(inst);
		return -EBUSY;
	}
	rc = fs_install_finish(inst);
	pthread_mutex_unlock(&fr->switch_lock);
	/* -EBADMSG is found before anything is switched: drop the partial
	 * store. Any other failure may come from the switch itself: the
	 * store's state is for a restart to sort out (the runtime stops),
	 * so the install is left as it is. */
	if (rc == -EBADMSG)
		fs_install_abort(inst);
	return rc;
}

static void fr_install_abort(void *ctx, void *inst)
{
	(void)ctx;
	fs_install_abort(inst);
}

static int fr_begin(void *ctx, struct raft_proposal *p, struct fs_time *clock)
{
	struct fs_raft *fr = ctx;
	struct timespec ts;
	int rc;

	clock_gettime(CLOCK_REALTIME, &ts);
	pthread_mutex_lock(&fr->lock);
	rc = fs_open_seqs_begin(&fr->open, fr->node, fr->epoch, p);
	pthread_mutex_unlock(&fr->lock);
	clock->sec = ts.tv_sec;
	clock->nsec = (uint32_t)ts.tv_nsec;
	return rc;
}

static void seq_close(struct fs_raft *fr, uint64_t seq)
{
	pthread_mutex_lock(&fr->lock);
	fs_open_seqs_close(&fr->open, seq);
	pthread_mutex_unlock(&fr->lock);
}

static void submitted(void *ctx, int rc, const void *result,
		      size_t result_size)
{
	struct submission *sb = ctx;
	struct fs_result res;

	/* Known now, or given up on (never retried with this seq again): in
	 * both cases the low-water mark may pass it. */
	seq_close(sb->fr, sb->seq);
	if (rc == 0 && result_size == sizeof(res)) {
		memcpy(&res, result, sizeof(res));
		sb->done(sb->arg, 0, &res);
	} else {
		sb->done(sb->arg, -EIO, NULL);
	}
	free(sb);
}

static int fr_submit(void *ctx, const struct raft_proposal_id *id,
		     const void *cmd, size_t size,
		     void (*done)(void *arg, int err, const struct fs_result *res),
		     void *arg)
{
	struct fs_raft *fr = ctx;
	struct raft_runtime *rt = atomic_load(&fr->rt);
	struct submission *sb;
	int rc;

	if (rt == NULL || size > RAFT_MAX_ENTRY_BYTES) {
		seq_close(fr, id->seq);
		return rt == NULL ? -EIO : -EINVAL;
	}
	/* An op newer than the cluster's feature level: no member may
	 * ever meet a command it cannot decode. */
	rc = fs_cmd_feature_check(cmd, size, fs_store_feature_level(fr->store));
	if (rc != 0) {
		seq_close(fr, id->seq);
		return rc == -EOPNOTSUPP ? rc : -EINVAL;
	}
	sb = malloc(sizeof(*sb));
	if (sb == NULL) {
		seq_close(fr, id->seq);
		return -ENOMEM;
	}
	*sb = (struct submission){fr, id->seq, done, arg};
	rc = raft_runtime_propose_async(rt, id, cmd, (uint32_t)size,
					fr->timeout_ms, submitted, sb);
	if (rc != 0) {
		free(sb);
		seq_close(fr, id->seq);
		return rc == -ENOMEM ? -ENOMEM : -EIO;
	}
	return 0;
}

static void barrier_done(void *ctx, int rc)
{
	struct barrier *b = ctx;

	b->done(b->arg, rc == 0 ? 0 : -EIO);
	free(b);
}

static int fr_barrier(void *ctx, void (*done)(void *arg, int err), void *arg)
{
	struct fs_raft *fr = ctx;
	struct raft_runtime *rt = atomic_load(&fr->rt);
	struct barrier *b;
	int rc;

	if (rt == NULL)
		return -EIO;
	b = malloc(sizeof(*b));
	if (b == NULL)
		return -ENOMEM;
	*b = (struct barrier){done, arg};
	rc = raft_runtime_read_index(rt, fr->timeout_ms, barrier_done, b);
	if (rc != 0) {
		free(b);
		return rc == -ENOMEM ? -ENOMEM : -EIO;
	}
	return 0;
}

int fs_raft_create(struct fs_store *s, uint64_t node, uint64_t epoch,
		   uint32_t timeout_ms, struct fs_raft **out)
{
	struct fs_raft *fr;

	*out = NULL;
	if (s == NULL || node == 0 || epoch == 0 || timeout_ms == 0)
		return -EINVAL;
	fr = calloc(1, sizeof(*fr));
	if (fr == NULL)
		return -ENOMEM;
	fr->store = s;
	fr->node = node;
	fr->epoch = epoch;
	fr->timeout_ms = timeout_ms;
	atomic_init(&fr->rt, NULL);
	pthread_mutex_init(&fr->lock, NULL);
	pthread_mutex_init(&fr->switch_lock, NULL);
	fs_open_seqs_init(&fr->open);
	*out = fr;
	return 0;
}

void fs_raft_fsm(struct fs_raft *fr, struct raft_fsm *out)
{
	memset(out, 0, sizeof(*out));
	out->apply = fr_apply;
	out->ctx = fr;
	out->sync = fr_sync;
	out->snapshot_open = fr_snapshot_open;
	out->snapshot_read = fr_snapshot_read;
	out->snapshot_close = fr_snapshot_close;
	out->install_begin = fr_install_begin;
	out->install_chunk = fr_install_chunk;
	out->install_finish = fr_install_finish;
	out->install_abort = fr_install_abort;
	out->snapshot_chunk_bytes = FS_CHUNK_MIN;
}

void fs_raft_attach(struct fs_raft *fr, struct raft_runtime *rt)
{
	atomic_store(&fr->rt, rt);
}

void fs_raft_proposer(struct fs_raft *fr, struct fs_proposer *out)
{
	out->ctx = fr;
	out->node_id = fr->node;
	out->begin = fr_begin;
	out->submit = fr_submit;
	out->barrier = fr_barrier;
}

void fs_raft_destroy(struct fs_raft *fr)
{
	if (fr == NULL)
		return;
	for (int i = 0; i < CHECKS_MAX; i++)
		fs_check_view_close(fr->checks[i].view);
	fs_open_seqs_release(&fr->open);
	pthread_mutex_destroy(&fr->lock);
	pthread_mutex_destroy(&fr->switch_lock);
	free(fr);
}
