/*
 * Handlers for names and attributes: lookup, forget, getattr, setattr,
 * readlink, mknod, mkdir, unlink, rmdir, symlink, rename, link. Reads
 * wait for the barrier; changes become one command each.
 */

#define _GNU_SOURCE /* RENAME_NOREPLACE, RENAME_EXCHANGE */

#include "fs/fuse_fe.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#endif
#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1 << 1)
#endif

_Static_assert(RENAME_NOREPLACE == FS_RENAME_NOREPLACE &&
		       RENAME_EXCHANGE == FS_RENAME_EXCHANGE,
	       "rename flags are passed through");

static struct fs_fuse *fs_of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

static void cmd_init(struct fs_cmd *c, uint8_t op)
{
	memset(c, 0, sizeof(*c));
	c->op = op;
}

/* ---------------------------------------------------------------------- */
/* lookup, forget                                                          */

static void lookup_read(struct fs_fuse_req *r)
{
	struct fs_attr a;
	int rc = fs_lookup(r->fs->store, r->ino, r->name, r->name_len, &a);

	if (rc != 0)
		fuse_reply_err(r->req, -rc);
	else
		fs_fuse_reply_entry(r->fs, r->req, &a);
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fs_fuse_req *r = fs_fuse_req_named(req, parent, name);

	if (r != NULL)
		fs_fuse_read(r, lookup_read);
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	fs_fuse_inode_forget(fs_of(req), ino, nlookup);
	fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count,
			    struct fuse_forget_data *forgets)
{
	for (size_t i = 0; i < count; i++)
		fs_fuse_inode_forget(fs_of(req), forgets[i].ino,
				     forgets[i].nlookup);
	fuse_reply_none(req);
}

/* ---------------------------------------------------------------------- */
/* getattr, setattr, readlink                                              */

/* A getattr reply waiting for the notifier (default mode, regular files). */
struct attr_reply {
	fuse_req_t req;
	struct stat st;
	double timeout;
};

static void attr_reply_send(void *arg)
{
	struct attr_reply *o = arg;

	fuse_reply_attr(o->req, &o->st, o->timeout);
	free(o);
}

static void getattr_read(struct fs_fuse_req *r)
{
	struct fs_attr a;
	struct stat st;
	struct attr_reply *o;
	int rc = fs_fuse_ino_err(fs_getattr(r->fs->store, r->ino, &a));

	/* A removed current directory answers its last attributes. */
	if (rc == -ESTALE && fs_fuse_inode_last(r->fs, r->ino, &a))
		rc = 0;
	if (rc != 0) {
		fuse_reply_err(r->req, -rc);
		return;
	}
	fs_fuse_attr_to_stat(&a, &st);
	/* Default mode, a regular file: answer after every invalidation (and
	 * size store) up to the barrier was sent. The kernel drops this
	 * answer if an invalidation crosses it, and the read(2) that asked
	 * goes on with the size the kernel has: that size must then be at
	 * least this one (fs/fuse_notify.c, tail_store). The kernel holds no
	 * directory lock for a regular file's GETATTR, and the default mode's
	 * notifier takes none (it sends no entry invalidation). */
	if (!r->fs->relaxed && S_ISREG(a.mode) &&
	    (o = malloc(sizeof(*o))) != NULL) {
		*o = (struct attr_reply){r->req, st,
					 fs_fuse_attr_timeout(r->fs)};
		fs_fuse_notify_then(r->fs, fs_fuse_notify_told(r->fs),
				    attr_reply_send, o);
		return;
	}
	fuse_reply_attr(r->req, &st, fs_fuse_attr_timeout(r->fs));
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	struct fs_fuse_req *r = fs_fuse_req_new(req);

	(void)fi;
	if (r == NULL)
		return;
	r->ino = ino;
	fs_fuse_read(r, getattr_read);
}

static bool time_ok(const struct timespec *ts)
{
	return ts->tv_nsec >= 0 && ts->tv_nsec < 1000000000L;
}

static bool same_time(struct fs_time a, struct fs_time b)
{
	return a.sec == b.sec && a.nsec == b.nsec;
}

/*
 * Whether applying setattr c to an inode with attributes a would change
 * nothing but its ctime: only explicit values (no size, no UTIME_NOW),
 * each equal to the stored one, and no set-id bit that a chown would
 * clear (kill_priv in fs/apply.c).
 */
static bool setattr_changes_nothing(const struct fs_cmd *c,
				    const struct fs_attr *a)
{
	const uint32_t plain = FS_SET_MODE | FS_SET_UID | FS_SET_GID |
			       FS_SET_ATIME | FS_SET_MTIME;

	if (c->valid & ~plain)
		return false;
	if ((c->valid & FS_SET_MODE) && (a->mode & 07777) != c->mode)
		return false;
	if ((c->valid & FS_SET_UID) && a->uid != c->set_uid)
		return false;
	if ((c->valid & FS_SET_GID) && a->gid != c->set_gid)
		return false;
	if ((c->valid & (FS_SET_UID | FS_SET_GID)) &&
	    !(c->valid & FS_SET_MODE) && !S_ISDIR(a->mode) &&
	    (a->mode & (S_ISUID | S_ISGID)))
		return false;
	if ((c->valid & FS_SET_ATIME) && !same_time(a->atime, c->atime))
		return false;
	if ((c->valid & FS_SET_MTIME) && !same_time(a->mtime, c->mtime))
		return false;
	return true;
}

/* The local replica's hint (it may lag): worth a barrier to confirm. */
static bool setattr_changes_nothing_here(struct fs_fuse *fs,
					 const struct fs_cmd *c)
{
	struct fs_attr a;

	return fs_getattr(fs->store, c->ino, &a) == 0 &&
	       setattr_changes_nothing(c, &a);
}

/*
 * After a read barrier (every change committed before the request is
 * applied here): a setattr that changes nothing is answered with the
 * attributes, linearizably, without a log commit (`tar x` as root sends
 * a chown to the owner the file already has for every file it makes).
 * Its one difference from a commit: ctime stays (docs/FUSE.md, gap 6).
 * Anything else is proposed as usual (a new request: this one is
 * answered by then).
 */
static void setattr_read(struct fs_fuse_req *r)
{
	struct fs_fuse_req *p;
	struct fs_attr a;
	struct fs_cmd c;
	int rc = fs_getattr(r->fs->store, r->ino, &a);

	cmd_init(&c, FS_OP_SETATTR);
	c.ino = r->ino;
	c.valid = r->set_valid;
	c.mode = r->set_mode;
	c.set_uid = r->set_uid;
	c.set_gid = r->set_gid;
	c.atime = r->set_atime;
	c.mtime = r->set_mtime;
	if (rc != 0 || setattr_changes_nothing(&c, &a)) {
		getattr_read(r); /* answers the error too */
		return;
	}
	p = fs_fuse_req_new(r->req);
	if (p == NULL)
		return;
	p->ino = r->ino;
	fs_fuse_propose(p, &c, fs_fuse_finish_attr);
}

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr,
		       int to_set, struct fuse_file_info *fi)
{
	struct fs_fuse_req *r;
	struct fs_cmd c;

	(void)fi;
	cmd_init(&c, FS_OP_SETATTR);
	c.ino = ino;
	if (to_set & FUSE_SET_ATTR_MODE) {
		c.valid |= FS_SET_MODE;
		c.mode = attr->st_mode & 07777;
	}
	if (to_set & FUSE_SET_ATTR_UID) {
		c.valid |= FS_SET_UID;
		c.set_uid = attr->st_uid;
	}
	if (to_set & FUSE_SET_ATTR_GID) {
		c.valid |= FS_SET_GID;
		c.set_gid = attr->st_gid;
	}
	if (to_set & FUSE_SET_ATTR_SIZE) {
		if (attr->st_size < 0) {
			fuse_reply_err(req, EINVAL);
			return;
		}
		c.valid |= FS_SET_SIZE;
		c.size = (uint64_t)attr->st_size;
	}
	/* UTIME_NOW arrives as ATIME_NOW (with ATIME): the proposer's
	 * clock reading in the command resolves it at apply. */
	if (to_set & FUSE_SET_ATTR_ATIME_NOW) {
		c.valid |= FS_SET_ATIME_NOW;
	} else if (to_set & FUSE_SET_ATTR_ATIME) {
		if (!time_ok(&attr->st_atim)) {
			fuse_reply_err(req, EINVAL);
			return;
		}
		c.valid |= FS_SET_ATIME;
		c.atime.sec = attr->st_atim.tv_sec;
		c.atime.nsec = (uint32_t)attr->st_atim.tv_nsec;
	}
	if (to_set & FUSE_SET_ATTR_MTIME_NOW) {
		c.valid |= FS_SET_MTIME_NOW;
	} else if (to_set & FUSE_SET_ATTR_MTIME) {
		if (!time_ok(&attr->st_mtim)) {
			fuse_reply_err(req, EINVAL);
			return;
		}
		c.valid |= FS_SET_MTIME;
		c.mtime.sec = attr->st_mtim.tv_sec;
		c.mtime.nsec = (uint32_t)attr->st_mtim.tv_nsec;
	}
	r = fs_fuse_req_new(req);
	if (r == NULL)
		return;
	r->ino = ino;
	if (c.valid == 0) {
		/* Only bits we do not store (ctime, kill-suid hints): ctime
		 * follows every change anyway; answer the attributes. */
		fs_fuse_read(r, getattr_read);
		return;
	}
	if (setattr_changes_nothing_here(r->fs, &c)) {
		/* Confirmed after a barrier of its own (relaxed mode too: a
		 * change must not be dropped on a replica that lags). */
		r->set_valid = c.valid;
		r->set_mode = c.mode;
		r->set_uid = c.set_uid;
		r->set_gid = c.set_gid;
		r->set_atime = c.atime;
		r->set_mtime = c.mtime;
		r->fresh = true;
		fs_fuse_read(r, setattr_read);
		return;
	}
	fs_fuse_propose(r, &c, fs_fuse_finish_attr);
}

static void readlink_read(struct fs_fuse_req *r)
{
	char buf[FS_SYMLINK_MAX + 1];
	size_t n = 0;
	int rc = fs_readlink(r->fs->store, r->ino, buf, FS_SYMLINK_MAX, &n);

	if (rc == 0 && n > FS_SYMLINK_MAX)
		rc = -EIO; /* the store never holds a longer target */
	if (rc != 0) {
		fuse_reply_err(r->req, -rc);
		return;
	}
	buf[n] = '\0';
	fuse_reply_readlink(r->req, buf);
}

static void op_readlink(fuse_req_t req, fuse_ino_t ino)
{
	struct fs_fuse_req *r = fs_fuse_req_new(req);

	if (r == NULL)
		return;
	r->ino = ino;
	fs_fuse_read(r, readlink_read);
}

/* ---------------------------------------------------------------------- */
/* mknod, mkdir, symlink, link                                             */

static void create_node(fuse_req_t req, fuse_ino_t parent, const char *name,
			uint32_t mode, uint64_t rdev)
{
	struct fs_fuse_req *r = fs_fuse_req_named(req, parent, name);
	struct fs_cmd c;

	if (r == NULL)
		return;
	cmd_init(&c, FS_OP_CREATE);
	c.ino = parent;
	c.name = r->name;
	c.name_len = r->name_len;
	c.mode = mode;
	c.rdev = rdev;
	fs_fuse_propose(r, &c, fs_fuse_finish_entry);
}

static void op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name,
		     mode_t mode, dev_t rdev)
{
	switch (mode & S_IFMT) {
	case S_IFREG:
	case S_IFIFO:
	case S_IFSOCK:
	case S_IFCHR:
	case S_IFBLK:
		break;
	default:
		fuse_reply_err(req, EINVAL);
		return;
	}
	create_node(req, parent, name, mode & (S_IFMT | 07777), rdev);
}

static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name,
		     mode_t mode)
{
	create_node(req, parent, name, S_IFDIR | (mode & 07777), 0);
}

static void op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent,
		       const char *name)
{
	size_t len = strnlen(link, FS_SYMLINK_MAX + 1);
	struct fs_fuse_req *r;
	struct fs_cmd c;

	if (len == 0 || len > FS_SYMLINK_MAX) {
		fuse_reply_err(req, len == 0 ? ENOENT : ENAMETOOLONG);
		return;
	}
	r = fs_fuse_req_named(req, parent, name);
	if (r == NULL)
		return;
	cmd_init(&c, FS_OP_SYMLINK);
	c.ino = parent;
	c.name = r->name;
	c.name_len = r->name_len;
	c.data = link; /* encoded before this handler returns */
	c.data_len = (uint32_t)len;
	fs_fuse_propose(r, &c, fs_fuse_finish_entry);
}

static void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent,
		    const char *newname)
{
	struct fs_fuse_req *r = fs_fuse_req_named(req, newparent, newname);
	struct fs_cmd c;

	if (r == NULL)
		return;
	cmd_init(&c, FS_OP_LINK);
	c.ino = ino;
	c.ino2 = newparent;
	c.name = r->name;
	c.name_len = r->name_len;
	fs_fuse_propose(r, &c, fs_fuse_finish_entry);
}

/* ---------------------------------------------------------------------- */
/* unlink, rmdir, rename                                                   */

/*
 * The inode that parent/name names now, when this node holds it open: it
 * is pinned and the command names this node as a holder, so the file
 * survives its last link until this node's last handle closes. Decided on
 * the local state when proposing; see docs/FUSE.md for the race with a
 * change from another node in between.
 */
static void name_holder(struct fs_fuse_req *r, struct fs_cmd *c,
			uint64_t parent, const char *name, size_t name_len)
{
	struct fs_attr a;

	if (fs_lookup(r->fs->store, parent, name, name_len, &a) != 0 ||
	    S_ISDIR(a.mode))
		return;
	if (!fs_fuse_inode_unlink_begin(r->fs, a.ino))
		return;
	r->victim = a.ino;
	c->holders[0] = r->fs->prop.node_id;
	c->n_holders = 1;
}

static void finish_unlink(struct fs_fuse_req *r, int err,
			  const struct fs_result *res, bool answer)
{
	if (r->victim != 0)
		fs_fuse_inode_unlink_end(r->fs, r->victim);
	fs_fuse_finish_err(r, err, res, answer);
}

static void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fs_fuse_req *r = fs_fuse_req_named(req, parent, name);
	struct fs_cmd c;

	if (r == NULL)
		return;
	cmd_init(&c, FS_OP_UNLINK);
	c.ino = parent;
	c.name = r->name;
	c.name_len = r->name_len;
	name_holder(r, &c, parent, r->name, r->name_len);
	fs_fuse_propose(r, &c, finish_unlink);
}

static void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fs_fuse_req *r = fs_fuse_req_named(req, parent, name);
	struct fs_cmd c;

	if (r == NULL)
		return;
	cmd_init(&c, FS_OP_RMDIR);
	c.ino = parent;
	c.name = r->name;
	c.name_len = r->name_len;
	fs_fuse_propose(r, &c, fs_fuse_finish_err);
}

static void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
		      fuse_ino_t newparent, const char *newname,
		      unsigned int flags)
{
	struct fs_fuse *fs = fs_of(req);
	struct fs_fuse_req *r;
	struct fs_cmd c;
	int rc;

	if ((flags & ~(unsigned)(RENAME_NOREPLACE | RENAME_EXCHANGE)) != 0 ||
	    flags == (RENAME_NOREPLACE | RENAME_EXCHANGE)) {
		fuse_reply_err(req, EINVAL); /* RENAME_WHITEOUT among them */
		return;
	}
	rc = fs_fuse_name_check(fs, newname);
	if (rc != 0) {
		fuse_reply_err(req, -rc);
		return;
	}
	r = fs_fuse_req_named(req, parent, name);
	if (r == NULL)
		return;
	cmd_init(&c, FS_OP_RENAME);
	c.ino = parent;
	c.name = r->name;
	c.name_len = r->name_len;
	c.ino2 = newparent;
	c.name2 = newname; /* encoded before this handler returns */
	c.name2_len = (uint32_t)strlen(newname);
	c.flags = flags;
	if (!(flags & RENAME_EXCHANGE))
		name_holder(r, &c, newparent, newname, c.name2_len);
	fs_fuse_propose(r, &c, finish_unlink);
}

void fs_fuse_ops_entry(struct fuse_lowlevel_ops *ops)
{
	ops->lookup = op_lookup;
	ops->forget = op_forget;
	ops->forget_multi = op_forget_multi;
	ops->getattr = op_getattr;
	ops->setattr = op_setattr;
	ops->readlink = op_readlink;
	ops->mknod = op_mknod;
	ops->mkdir = op_mkdir;
	ops->symlink = op_symlink;
	ops->link = op_link;
	ops->unlink = op_unlink;
	ops->rmdir = op_rmdir;
	ops->rename = op_rename;
}
