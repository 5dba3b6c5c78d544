/*
 * lazyfs: a FUSE filesystem over a backing directory that keeps everything
 * not yet synced in memory, so that a simulated power loss can drop it
 * (docs/POWER_LOSS.md has the model and how tests use it).
 *
 *   lazyfs [-d] BACKING MOUNTPOINT
 *
 * Runs in the foreground until unmounted. A clean unmount (fusermount3 -u,
 * SIGTERM, SIGINT) writes everything to BACKING first, as a clean shutdown
 * of a real disk would. Power loss:
 *
 *   echo crash > MOUNTPOINT/.lazyfs        drop everything unsynced
 *   echo "tear SEED" > MOUNTPOINT/.lazyfs  the same, but the newest unsynced
 *                                          write lands torn (a prefix of it)
 *   echo sync > MOUNTPOINT/.lazyfs         make everything durable
 *
 * After crash or tear every request fails with EIO and lazyfs unmounts
 * itself and exits; BACKING then holds exactly what survived. SIGKILL of
 * lazyfs is a power loss too (nothing unsynced ever reached BACKING); the
 * dead mount is cleared with fusermount3 -u.
 *
 * Threads: one (fuse_session_loop), so requests are handled one at a time
 * and a crash is atomic with respect to every operation; the state in
 * tests/lazyfs/state.h needs no lock. The lookup counts are kept but nodes
 * live until unmount (a test run creates few files).
 *
 * Unix sockets (bind(2) in the mount) are kept in memory and never made
 * durable (docs/POWER_LOSS.md), so that a daemon's control socket can live
 * in a data dir on lazyfs.
 *
 * Kernel caching: attribute and entry timeouts 0, no writeback cache, no
 * direct I/O, so the page cache serves mmap reads (LevelDB maps its table
 * files) and every write reaches lazyfs when it is made.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "tests/lazyfs/state.h"

static struct lz_state lz;
static struct fuse_session *lz_session;
static bool lz_crashed; /* a crash command ran: nothing more is written */

static struct lz_node *node_of(fuse_req_t req, fuse_ino_t ino)
{
	struct lz_node *n = NULL;

	if (lz_crashed || lz.failed)
		fuse_reply_err(req, EIO);
	else if ((n = lz_node_get(&lz, ino)) == NULL)
		fuse_reply_err(req, ESTALE);
	return n;
}

static void ctl_stat(struct stat *stbuf)
{
	memset(stbuf, 0, sizeof(*stbuf));
	stbuf->st_ino = LZ_CTL_INO;
	stbuf->st_mode = S_IFREG | 0600;
	stbuf->st_nlink = 1;
}

static void reply_entry(fuse_req_t req, struct lz_node *n)
{
	struct fuse_entry_param e;

	memset(&e, 0, sizeof(e));
	e.ino = n->ino;
	lz_node_stat(n, &e.attr);
	n->nlookup++;
	fuse_reply_entry(req, &e);
}

static void lzfs_init(void *userdata, struct fuse_conn_info *conn)
{
	(void)userdata;
	conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
}

static void lzfs_destroy(void *userdata)
{
	(void)userdata;
	if (!lz_crashed && !lz.failed && lz_sync_all(&lz) != 0)
		fprintf(stderr, "lazyfs: writing everything at unmount "
				"failed: %s\n",
			lz.err);
}

static void lzfs_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct lz_node *dir = node_of(req, parent), *n;

	if (dir == NULL)
		return;
	if (parent == LZ_ROOT_INO && strcmp(name, LZ_CTL_NAME) == 0) {
		struct fuse_entry_param e;
		memset(&e, 0, sizeof(e));
		e.ino = LZ_CTL_INO;
		ctl_stat(&e.attr);
		fuse_reply_entry(req, &e);
		return;
	}
	n = dir->is_dir ? lz_child(dir, name) : NULL;
	if (n == NULL) {
		fuse_reply_err(req, dir->is_dir ? ENOENT : ENOTDIR);
		return;
	}
	reply_entry(req, n);
}

static void lzfs_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	struct lz_node *n = lz_node_get(&lz, ino);

	if (n != NULL)
		n->nlookup -= nlookup < n->nlookup ? nlookup : n->nlookup;
	fuse_reply_none(req);
}

static void lzfs_getattr(fuse_req_t req, fuse_ino_t ino,
			 struct fuse_file_info *fi)
{
	struct stat st;
	struct lz_node *n;

	(void)fi;
	if (ino == LZ_CTL_INO) {
		ctl_stat(&st);
		fuse_reply_attr(req, &st, 0);
		return;
	}
	n = node_of(req, ino);
	if (n == NULL)
		return;
	lz_node_stat(n, &st);
	fuse_reply_attr(req, &st, 0);
}

static void set_time(struct timespec *t, const struct timespec *given,
		     bool use_now)
{
	if (use_now)
		clock_gettime(CLOCK_REALTIME, t);
	else
		*t = *given;
}

static void lzfs_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr,
			 int to_set, struct fuse_file_info *fi)
{
	struct lz_node *n;
	struct stat st;
	int rc;

	(void)fi;
	if (ino == LZ_CTL_INO) {
		ctl_stat(&st);
		fuse_reply_attr(req, &st, 0);
		return;
	}
	n = node_of(req, ino);
	if (n == NULL)
		return;
	if (to_set & FUSE_SET_ATTR_SIZE) {
		rc = lz_truncate(&lz, n, (uint64_t)attr->st_size);
		if (rc != 0) {
			fuse_reply_err(req, -rc);
			return;
		}
	}
	/* Attributes other than the size live in memory only (POWER_LOSS.md). */
	if (to_set & FUSE_SET_ATTR_MODE)
		n->mode = (n->mode & S_IFMT) | (attr->st_mode & 07777);
	if (to_set & FUSE_SET_ATTR_UID)
		n->uid = attr->st_uid;
	if (to_set & FUSE_SET_ATTR_GID)
		n->gid = attr->st_gid;
	if (to_set & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_ATIME_NOW))
		set_time(&n->atime, &attr->st_atim,
			 to_set & FUSE_SET_ATTR_ATIME_NOW);
	if (to_set & (FUSE_SET_ATTR_MTIME | FUSE_SET_ATTR_MTIME_NOW))
		set_time(&n->mtime, &attr->st_mtim,
			 to_set & FUSE_SET_ATTR_MTIME_NOW);
	clock_gettime(CLOCK_REALTIME, &n->ctime);
	lz_node_stat(n, &st);
	fuse_reply_attr(req, &st, 0);
}

static void make_node(fuse_req_t req, fuse_ino_t parent, const char *name,
		      mode_t mode, struct fuse_file_info *fi)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	struct lz_node *dir = node_of(req, parent), *n = NULL;
	struct fuse_entry_param e;
	int rc;

	if (dir == NULL)
		return;
	rc = lz_create(&lz, dir, name, mode, ctx->uid, ctx->gid, &n);
	if (rc != 0) {
		fuse_reply_err(req, -rc);
		return;
	}
	memset(&e, 0, sizeof(e));
	e.ino = n->ino;
	lz_node_stat(n, &e.attr);
	n->nlookup++;
	if (fi == NULL) {
		fuse_reply_entry(req, &e);
		return;
	}
	n->opens++;
	fuse_reply_create(req, &e, fi);
}

static void lzfs_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name,
		       mode_t mode)
{
	make_node(req, parent, name, S_IFDIR | (mode & 07777), NULL);
}

static void lzfs_mknod(fuse_req_t req, fuse_ino_t parent, const char *name,
		       mode_t mode, dev_t rdev)
{
	(void)rdev;
	make_node(req, parent, name, mode, NULL);
}

static void lzfs_create(fuse_req_t req, fuse_ino_t parent, const char *name,
			mode_t mode, struct fuse_file_info *fi)
{
	make_node(req, parent, name, S_IFREG | (mode & 07777), fi);
}

static void remove_entry(fuse_req_t req, fuse_ino_t parent, const char *name,
			 bool is_dir)
{
	struct lz_node *dir = node_of(req, parent);

	if (dir == NULL)
		return;
	if (parent == LZ_ROOT_INO && strcmp(name, LZ_CTL_NAME) == 0) {
		fuse_reply_err(req, EPERM);
		return;
	}
	fuse_reply_err(req, -lz_unlink(&lz, dir, name, is_dir));
}

static void lzfs_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	remove_entry(req, parent, name, false);
}

static void lzfs_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	remove_entry(req, parent, name, true);
}

static void lzfs_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
			fuse_ino_t newparent, const char *newname,
			unsigned int flags)
{
	struct lz_node *dir = node_of(req, parent), *newdir;

	if (dir == NULL)
		return;
	newdir = lz_node_get(&lz, newparent);
	if (newdir == NULL) {
		fuse_reply_err(req, ESTALE);
		return;
	}
	fuse_reply_err(req,
		       -lz_rename(&lz, dir, name, newdir, newname, flags));
}

static void lzfs_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent,
		      const char *newname)
{
	(void)ino;
	(void)newparent;
	(void)newname;
	fuse_reply_err(req, EPERM); /* hard links are not modelled */
}

static void lzfs_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct lz_node *n;
	int rc;

	if (ino == LZ_CTL_INO) {
		fi->direct_io = 1;
		fuse_reply_open(req, fi);
		return;
	}
	n = node_of(req, ino);
	if (n == NULL)
		return;
	if (n->is_dir) {
		fuse_reply_err(req, EISDIR);
		return;
	}
	if (fi->flags & O_TRUNC) {
		rc = lz_truncate(&lz, n, 0);
		if (rc != 0) {
			fuse_reply_err(req, -rc);
			return;
		}
	}
	n->opens++;
	fuse_reply_open(req, fi);
}

static void lzfs_release(fuse_req_t req, fuse_ino_t ino,
			 struct fuse_file_info *fi)
{
	struct lz_node *n = lz_node_get(&lz, ino);

	(void)fi;
	if (n != NULL && n->opens > 0 && --n->opens == 0 &&
	    n->parent == NULL && !lz_crashed)
		lz_forget_file(&lz, n);
	fuse_reply_err(req, 0);
}

static void lzfs_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		      struct fuse_file_info *fi)
{
	struct lz_node *n;
	char *buf;
	long got;

	(void)fi;
	if (ino == LZ_CTL_INO) {
		fuse_reply_buf(req, NULL, 0);
		return;
	}
	n = node_of(req, ino);
	if (n == NULL)
		return;
	buf = malloc(size ? size : 1);
	if (buf == NULL) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	got = lz_read(&lz, n, (uint64_t)off, buf, size);
	if (got < 0)
		fuse_reply_err(req, (int)-got);
	else
		fuse_reply_buf(req, buf, (size_t)got);
	free(buf);
}

/*
 * A command written to the control file. The crash commands answer the
 * write first, then end the session: the kernel's later requests fail.
 */
static void control(fuse_req_t req, const char *buf, size_t size)
{
	char cmd[64], desc[512];
	uint64_t seed = 0;
	size_t len = size < sizeof(cmd) - 1 ? size : sizeof(cmd) - 1;

	memcpy(cmd, buf, len);
	cmd[len] = '\0';
	cmd[strcspn(cmd, "\n")] = '\0';
	if (strcmp(cmd, "sync") == 0) {
		if (lz_sync_all(&lz) != 0)
			fuse_reply_err(req, EIO);
		else
			fuse_reply_write(req, size);
		return;
	}
	if (strcmp(cmd, "crash") == 0) {
		fprintf(stderr, "lazyfs: crash: %zu namespace operations and "
				"all unsynced data dropped\n",
			lz.n_ops);
	} else if (sscanf(cmd, "tear %" SCNu64, &seed) == 1) {
		if (lz_tear_last_write(&lz, seed, desc, sizeof(desc)) < 0) {
			fuse_reply_err(req, EIO);
			return;
		}
		fprintf(stderr, "lazyfs: crash: %s; %zu namespace operations "
				"and all other unsynced data dropped\n",
			desc, lz.n_ops);
	} else {
		fuse_reply_err(req, EINVAL);
		return;
	}
	lz_crashed = true;
	fuse_reply_write(req, size);
	fuse_session_exit(lz_session);
}

static void lzfs_write(fuse_req_t req, fuse_ino_t ino, const char *buf,
		       size_t size, off_t off, struct fuse_file_info *fi)
{
	struct lz_node *n;
	int rc;

	(void)fi;
	if (ino == LZ_CTL_INO && !lz_crashed) {
		control(req, buf, size);
		return;
	}
	n = node_of(req, ino);
	if (n == NULL)
		return;
	if (n->is_dir) {
		fuse_reply_err(req, EISDIR);
		return;
	}
	rc = lz_write(&lz, n, (uint64_t)off, buf, size);
	if (rc != 0)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_write(req, size);
}

static void lzfs_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
		       struct fuse_file_info *fi)
{
	struct lz_node *n;

	(void)datasync; /* both make the data and the creating entry durable */
	(void)fi;
	if (ino == LZ_CTL_INO) {
		fuse_reply_err(req, 0);
		return;
	}
	n = node_of(req, ino);
	if (n == NULL)
		return;
	fuse_reply_err(req, -lz_fsync_file(&lz, n));
}

/* A directory handle: the entries as they were at opendir. */
struct dir_handle {
	size_t n;
	struct dir_entry {
		uint64_t ino;
		mode_t mode;
		char *name;
	} *e;
};

static void dir_handle_free(struct dir_handle *h)
{
	size_t i;

	if (h == NULL)
		return;
	for (i = 0; i < h->n; i++)
		free(h->e[i].name);
	free(h->e);
	free(h);
}

static int dir_handle_add(struct dir_handle *h, size_t cap, uint64_t ino,
			  mode_t mode, const char *name)
{
	if (h->n == cap)
		return -ENOMEM;
	h->e[h->n].name = strdup(name);
	if (h->e[h->n].name == NULL)
		return -ENOMEM;
	h->e[h->n].ino = ino;
	h->e[h->n].mode = mode;
	h->n++;
	return 0;
}

static void lzfs_opendir(fuse_req_t req, fuse_ino_t ino,
			 struct fuse_file_info *fi)
{
	struct lz_node *dir = node_of(req, ino), *c;
	struct dir_handle *h = NULL;
	size_t cap = 2;
	int rc = -ENOMEM;

	if (dir == NULL)
		return;
	if (!dir->is_dir) {
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	for (c = dir->first_child; c != NULL; c = c->next_sibling)
		cap++;
	h = calloc(1, sizeof(*h));
	if (h == NULL || (h->e = calloc(cap, sizeof(*h->e))) == NULL)
		goto fail;
	rc = dir_handle_add(h, cap, dir->ino, S_IFDIR, ".");
	if (rc == 0)
		rc = dir_handle_add(h, cap,
				    dir->parent ? dir->parent->ino : dir->ino,
				    S_IFDIR, "..");
	for (c = dir->first_child; rc == 0 && c != NULL; c = c->next_sibling)
		rc = dir_handle_add(h, cap, c->ino, c->mode, c->name);
	if (rc != 0)
		goto fail;
	fi->fh = (uint64_t)(uintptr_t)h;
	fuse_reply_open(req, fi);
	return;
fail:
	dir_handle_free(h);
	fuse_reply_err(req, -rc);
}

static void lzfs_readdir(fuse_req_t req, fuse_ino_t ino, size_t size,
			 off_t off, struct fuse_file_info *fi)
{
	struct dir_handle *h = (struct dir_handle *)(uintptr_t)fi->fh;
	char *buf = malloc(size);
	size_t used = 0, i;

	(void)ino;
	if (buf == NULL) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	for (i = (size_t)off; i < h->n; i++) {
		struct stat st;
		size_t want;

		memset(&st, 0, sizeof(st));
		st.st_ino = h->e[i].ino;
		st.st_mode = h->e[i].mode;
		want = fuse_add_direntry(req, buf + used, size - used,
					 h->e[i].name, &st, (off_t)(i + 1));
		if (want > size - used)
			break;
		used += want;
	}
	fuse_reply_buf(req, buf, used);
	free(buf);
}

static void lzfs_releasedir(fuse_req_t req, fuse_ino_t ino,
			    struct fuse_file_info *fi)
{
	(void)ino;
	dir_handle_free((struct dir_handle *)(uintptr_t)fi->fh);
	fuse_reply_err(req, 0);
}

static void lzfs_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync,
			  struct fuse_file_info *fi)
{
	struct lz_node *n = node_of(req, ino);

	(void)datasync;
	(void)fi;
	if (n != NULL)
		fuse_reply_err(req, -lz_fsync_dir(&lz, n));
}

static void lzfs_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct statvfs sv;

	(void)ino;
	if (fstatvfs(lz.root_fd, &sv) != 0)
		fuse_reply_err(req, errno);
	else
		fuse_reply_statfs(req, &sv);
}

static const struct fuse_lowlevel_ops lzfs_ops = {
	.init = lzfs_init,
	.destroy = lzfs_destroy,
	.lookup = lzfs_lookup,
	.forget = lzfs_forget,
	.getattr = lzfs_getattr,
	.setattr = lzfs_setattr,
	.mknod = lzfs_mknod,
	.mkdir = lzfs_mkdir,
	.unlink = lzfs_unlink,
	.rmdir = lzfs_rmdir,
	.rename = lzfs_rename,
	.link = lzfs_link,
	.open = lzfs_open,
	.read = lzfs_read,
	.write = lzfs_write,
	.release = lzfs_release,
	.fsync = lzfs_fsync,
	.opendir = lzfs_opendir,
	.readdir = lzfs_readdir,
	.releasedir = lzfs_releasedir,
	.fsyncdir = lzfs_fsyncdir,
	.statfs = lzfs_statfs,
	.create = lzfs_create,
};

static int usage(void)
{
	fprintf(stderr, "usage: lazyfs [-d] BACKING MOUNTPOINT\n");
	return 2;
}

int main(int argc, char **argv)
{
	char *fargv[8], fsname[PATH_MAX + 32], err[512];
	struct fuse_args args;
	struct rlimit rl;
	bool debug = false;
	int root_fd, rc = 1, i = 1, fargc = 0;

	if (argc > 1 && strcmp(argv[1], "-d") == 0) {
		debug = true;
		i++;
	}
	if (argc - i != 2)
		return usage();
	/* One backing fd per file LevelDB keeps open, and more. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	root_fd = open(argv[i], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (root_fd < 0) {
		fprintf(stderr, "lazyfs: cannot open backing directory %s: %s\n",
			argv[i], strerror(errno));
		return 1;
	}
	if (lz_state_init(&lz, root_fd, err, sizeof(err)) != 0) {
		fprintf(stderr, "lazyfs: loading %s: %s\n", argv[i], err);
		lz_state_release(&lz);
		return 1;
	}
	snprintf(fsname, sizeof(fsname), "fsname=lazyfs:%s,subtype=lazyfs",
		 argv[i]);
	fargv[fargc++] = argv[0];
	fargv[fargc++] = (char *)"-o";
	fargv[fargc++] = fsname;
	if (debug)
		fargv[fargc++] = (char *)"-d";
	fargv[fargc] = NULL;
	args = (struct fuse_args)FUSE_ARGS_INIT(fargc, fargv);
	lz_session = fuse_session_new(&args, &lzfs_ops, sizeof(lzfs_ops), NULL);
	if (lz_session == NULL)
		goto out_state;
	if (fuse_set_signal_handlers(lz_session) != 0)
		goto out_session;
	if (fuse_session_mount(lz_session, argv[i + 1]) != 0)
		goto out_signals;
	rc = fuse_session_loop(lz_session) != 0 ? 1 : 0;
	fuse_session_unmount(lz_session);
out_signals:
	fuse_remove_signal_handlers(lz_session);
out_session:
	fuse_session_destroy(lz_session);
out_state:
	fuse_opt_free_args(&args); /* fuse_session_new may have added some */
	lz_state_release(&lz);
	return rc;
}
