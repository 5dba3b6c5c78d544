/*
 * The FUSE session: mount options, the kernel connection's capabilities,
 * the multi-threaded loop, unmount. The options implement the visibility
 * contract of ../shared/DESIGN.md: default_permissions (the kernel checks
 * modes against attributes that are equal on every replica), attribute
 * and entry timeouts 0 (set in every reply), no writeback cache, no page
 * cache kept across opens.
 */

#define _GNU_SOURCE /* statx */

#include "fs/fuse_fe.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define OP_TIMEOUT_DEFAULT_MS 10000u
#define CACHE_TIMEOUT_DEFAULT_S 10u

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
	(void)userdata;
	/* Every write goes to the log at once and is answered after its
	 * apply: a writeback cache would acknowledge unreplicated data. */
	conn->want &= ~(unsigned)FUSE_CAP_WRITEBACK_CACHE;
	/* The kernel applies the umask before it asks us to create; we keep
	 * no default ACLs that would need it unmasked. */
	conn->want &= ~(unsigned)FUSE_CAP_DONT_MASK;
	/* O_TRUNC arrives as a setattr of the size, a command like any
	 * other, instead of a flag of open (which is a local read). */
	conn->want &= ~(unsigned)FUSE_CAP_ATOMIC_O_TRUNC;
	/* Apply clears setuid/setgid on write, truncate and chown. */
	if (conn->capable & FUSE_CAP_HANDLE_KILLPRIV)
		conn->want |= FUSE_CAP_HANDLE_KILLPRIV;
	/* Pages are checked against the attributes whenever the kernel
	 * fetches them: the backstop of keep_cache (docs/FUSE.md). */
	if (conn->capable & FUSE_CAP_AUTO_INVAL_DATA)
		conn->want |= FUSE_CAP_AUTO_INVAL_DATA;
	/* One command per write: the largest one command carries. libfuse
	 * lowers it to what its buffers hold. */
	conn->max_write = FS_WRITE_MAX;
}

/* The kernel's readahead for a FUSE mount is 128 KiB and its INIT reply
 * can only lower it; the mount's bdi (/sys/class/bdi/MAJ:MIN, the
 * mount's device) takes a larger one from root. Called on the first read,
 * which comes after INIT was processed (before, the INIT reply would cut
 * it back). Without the right (an unprivileged mount), reads stay at
 * 128 KiB: logged once, nothing else changes. */
void fs_fuse_widen_readahead(struct fs_fuse *f)
{
	char path[96], val[24], line[200];
	struct statx st;
	int fd, n, rc = 0;

	if (__atomic_exchange_n(&f->readahead_set, 1, __ATOMIC_ACQ_REL) != 0)
		return;
	/* AT_STATX_DONT_SYNC: the device number is the superblock's, and
	 * the kernel answers from what it has instead of sending this very
	 * daemon a GETATTR (which a busy or single-threaded loop could not
	 * answer while this request waits). */
	if (statx(AT_FDCWD, f->mountpoint, AT_STATX_DONT_SYNC, STATX_TYPE,
		  &st) != 0)
		rc = errno;
	if (rc == 0) {
		snprintf(path, sizeof(path), "/sys/class/bdi/%u:%u/read_ahead_kb",
			 st.stx_dev_major, st.stx_dev_minor);
		n = snprintf(val, sizeof(val), "%u", FS_WRITE_MAX / 1024u);
		fd = open(path, O_WRONLY | O_CLOEXEC);
		if (fd < 0)
			rc = errno;
		else {
			if (write(fd, val, (size_t)n) != n)
				rc = errno != 0 ? errno : EIO;
			close(fd);
		}
	}
	if (rc != 0 && f->log != NULL) {
		snprintf(line, sizeof(line),
			 "fuse: readahead stays at the kernel's 128 KiB (%s): "
			 "sequential reads are slower",
			 strerror(rc));
		f->log(f->log_ctx, 2, line);
	}
}

#ifdef RAFTFS_TEST_STALL_READ
/* Test builds only (build/tests/daemon/raftfs-stall, tests/daemon/
 * module.mk; never the product): a FUSE_READ at or past 1 GiB is never
 * answered, so the reader keeps its page locked, as behind a daemon that
 * died (tests/suites/61-mount-guard). */
#define STALL_READ_FROM ((off_t)1 << 30)
static void (*stall_real_read)(fuse_req_t, fuse_ino_t, size_t, off_t,
			       struct fuse_file_info *);

static void stall_read(fuse_req_t req, fuse_ino_t ino, size_t size,
		       off_t off, struct fuse_file_info *fi)
{
	if (off >= STALL_READ_FROM)
		return; /* never answered */
	stall_real_read(req, ino, size, off, fi);
}
#endif

/* libfuse copies the table into the session. */
static void ops_fill(struct fuse_lowlevel_ops *ops)
{
	memset(ops, 0, sizeof(*ops));
	fs_fuse_ops_entry(ops);
	fs_fuse_ops_file(ops);
	fs_fuse_ops_dir(ops);
	fs_fuse_ops_xattr(ops);
	fs_fuse_ops_lock(ops);
	ops->init = op_init;
#ifdef RAFTFS_TEST_STALL_READ
	stall_real_read = ops->read;
	ops->read = stall_read;
#endif
}

static void free_state(struct fs_fuse *f)
{
	free(f->mountpoint);
	free(f);
}

int fs_fuse_mount(struct fs_store *store, const struct fs_proposer *proposer,
		  const struct fs_fuse_config *cfg, struct fs_fuse **out)
{
	char opts[256];
	char *argv[4];
	struct fuse_lowlevel_ops ops;
	struct fuse_args args;
	struct fs_statfs st;
	struct fs_fuse *f;
	int argc = 0, rc;

	*out = NULL;
	if (store == NULL || proposer == NULL || cfg == NULL ||
	    cfg->mountpoint == NULL || proposer->node_id == 0 ||
	    !fs_store_is_formatted(store))
		return -EINVAL;
	rc = fs_statfs(store, &st);
	if (rc != 0)
		return rc;
	f = calloc(1, sizeof(*f));
	if (f == NULL)
		return -ENOMEM;
	f->store = store;
	f->prop = *proposer;
	f->op_timeout_ms = cfg->op_timeout_ms ? cfg->op_timeout_ms
					      : OP_TIMEOUT_DEFAULT_MS;
	f->max_threads = cfg->max_threads;
	f->log = cfg->log;
	f->log_ctx = cfg->log_ctx;
	f->name_max = st.name_max;
	f->relaxed = cfg->cache_relaxed;
	f->cache_timeout = cfg->cache_timeout_s ? cfg->cache_timeout_s
						: CACHE_TIMEOUT_DEFAULT_S;
	f->mountpoint = strdup(cfg->mountpoint);
	if (f->mountpoint == NULL) {
		free_state(f);
		return -ENOMEM;
	}
	fs_fuse_inodes_init(f);
	rc = fs_fuse_notify_init(f);
	if (rc != 0) {
		fs_fuse_inodes_release(f);
		free_state(f);
		return rc;
	}
	rc = fs_fuse_req_start(f);
	if (rc == 0)
		rc = fs_fuse_locks_init(f);
	if (rc == 0)
		rc = fs_fuse_releaser_start(f);
	if (rc != 0)
		goto fail;
	/* Orphans: release at once what this node does not hold open, and
	 * everything it held before it started (docs/FUSE.md). */
	fs_store_set_hook(store, fs_fuse_inode_event, f);
	rc = fs_release_all(proposer);
	if (rc != 0 && f->log != NULL) {
		snprintf(opts, sizeof(opts),
			 "fuse: releasing the orphans held before this start "
			 "failed (%d): they stay until the next start", rc);
		f->log(f->log_ctx, 1, opts);
	}

	snprintf(opts, sizeof(opts),
		 "default_permissions,fsname=raftfs,subtype=raftfs%s",
		 cfg->allow_other ? ",allow_other" : "");
	argv[argc++] = (char *)"raftfs";
	argv[argc++] = (char *)"-o";
	argv[argc++] = opts;
	if (cfg->debug)
		argv[argc++] = (char *)"-d";
	args = (struct fuse_args)FUSE_ARGS_INIT(argc, argv);
	ops_fill(&ops);
	f->se = fuse_session_new(&args, &ops, sizeof(ops), f);
	fuse_opt_free_args(&args); /* libfuse may have copied them */
	if (f->se == NULL) {
		rc = -EIO;
		goto fail;
	}
	if (fuse_session_mount(f->se, f->mountpoint) != 0) {
		rc = -EIO;
		goto fail;
	}
	f->mounted = true;
	rc = fs_fuse_notify_start(f);
	if (rc != 0)
		goto fail;
	*out = f;
	return 0;
fail:
	fs_store_set_hook(store, NULL, NULL);
	fs_fuse_notify_stop(f);
	if (f->mounted)
		fuse_session_unmount(f->se);
	fs_fuse_releaser_stop(f);
	fs_fuse_locks_release(f);
	if (f->se != NULL)
		fuse_session_destroy(f->se);
	fs_fuse_req_stop(f);
	fs_fuse_notify_free(f);
	fs_fuse_inodes_release(f);
	free_state(f);
	return rc;
}

int fs_fuse_run(struct fs_fuse *f, bool handle_signals)
{
	struct fuse_loop_config *loop;
	int rc;

	if (handle_signals && fuse_set_signal_handlers(f->se) != 0)
		return -EIO;
	loop = fuse_loop_cfg_create();
	if (loop == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	fuse_loop_cfg_set_clone_fd(loop, 0);
	/* max_threads is libfuse's bound on workers; 0 keeps its default. */
	if (f->max_threads > 0)
		fuse_loop_cfg_set_max_threads(loop, f->max_threads);
	rc = fuse_session_loop_mt(f->se, loop);
	if (rc > 0)
		rc = 0; /* ended by a signal */
	fuse_loop_cfg_destroy(loop);
out:
	if (handle_signals)
		fuse_remove_signal_handlers(f->se);
	return rc;
}

void fs_fuse_exit(struct fs_fuse *f)
{
	fuse_session_exit(f->se);
}

void fs_fuse_destroy(struct fs_fuse *f)
{
	if (f == NULL)
		return;
	fs_store_set_hook(f->store, NULL, NULL);
	/* Before the unmount closes the device: the notifier writes to it.
	 * Opens still waiting for invalidations are answered. */
	fs_fuse_notify_stop(f);
	if (f->mounted)
		fuse_session_unmount(f->se);
	/* What is still queued is proposed before the requests stop. */
	fs_fuse_releaser_stop(f);
	/* Callbacks still reply through the session: wait for them all
	 * before it goes. */
	fs_fuse_req_stop(f);
	if (f->pending != NULL)
		return; /* requests still out (logged): keep what they use */
	fs_fuse_locks_release(f);
	fuse_session_destroy(f->se);
	fs_fuse_notify_free(f);
	/* The kernel sends no forgets at unmount: entries may remain. */
	fs_fuse_inodes_release(f);
	free_state(f);
}
