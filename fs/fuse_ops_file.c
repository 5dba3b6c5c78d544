/*
 * Handlers for file contents and handles: create, open, read, write,
 * flush, release, fsync, fallocate, lseek. Writes are write-through: one
 * command per FUSE write (at most FS_WRITE_MAX bytes, the session's
 * max_write), answered after its apply, so flush and fsync have nothing
 * left to wait for.
 */

#define _GNU_SOURCE /* SEEK_DATA, SEEK_HOLE */

#include "fs/fuse_fe.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Larger reads than the kernel ever sends (max_pages) are refused. */
#define READ_MAX_BYTES (4u * FS_WRITE_MAX)

static struct fs_fuse *fs_of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

/* The handle's options: the kernel keeps the pages it has of the file
 * only when its contents did not change since they were read (the
 * inode's data version, read after the open's barrier: docs/FUSE.md).
 * An O_APPEND handle bypasses the page cache: through it the kernel cuts
 * a write(2) at the end of the first page it does not hold whole (a write
 * that starts inside a page and goes on past it becomes two FUSE writes),
 * and each piece, flagged O_APPEND, would be appended on its own, so
 * another node's append could land between the two. Direct I/O sends the
 * write in one request of up to max_write bytes. */
static void handle_options(struct fs_fuse *fs, uint64_t ino,
			   struct fuse_file_info *fi)
{
	fi->keep_cache = fs_fuse_inode_keep_cache(fs, ino);
	fi->direct_io = (fi->flags & O_APPEND) ? 1 : 0;
	fi->fh = fs_fuse_lock_handle(fs); /* owns its flock locks */
}

/* ---------------------------------------------------------------------- */
/* create, open                                                            */

static void finish_create(struct fs_fuse_req *r, int err,
			  const struct fs_result *res, bool answer)
{
	struct fuse_entry_param e;
	uint64_t ino;
	int rc;

	if (!answer)
		return;
	if (err != 0 || res->err != 0) {
		fuse_reply_err(r->req, err != 0 ? -err : res->err);
		return;
	}
	ino = res->attr.ino;
	fs_fuse_entry_param(r->fs, &res->attr, &e);
	rc = fs_fuse_inode_ref(r->fs, ino, 1);
	if (rc == 0) {
		rc = fs_fuse_inode_hold_open(r->fs, ino, NULL);
		if (rc != 0)
			fs_fuse_inode_forget(r->fs, ino, 1);
	}
	if (rc != 0) {
		fuse_reply_err(r->req, -rc);
		return;
	}
	handle_options(r->fs, ino, &r->fi);
	if (fuse_reply_create(r->req, &e, &r->fi) != 0) {
		/* The kernel never saw it: no forget, no release. */
		fs_fuse_inode_forget(r->fs, ino, 1);
		fs_fuse_inode_close(r->fs, ino);
	}
}

static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name,
		      mode_t mode, struct fuse_file_info *fi)
{
	struct fs_fuse_req *r = fs_fuse_req_named(req, parent, name);
	struct fs_cmd c;

	if (r == NULL)
		return;
	r->fi = *fi;
	memset(&c, 0, sizeof(c));
	c.op = FS_OP_CREATE;
	c.ino = parent;
	c.name = r->name;
	c.name_len = r->name_len;
	c.mode = S_IFREG | (mode & 07777);
	fs_fuse_propose(r, &c, finish_create);
}

static void open_read(struct fs_fuse_req *r)
{
	struct fs_attr a;
	int rc = fs_fuse_inode_hold_open(r->fs, r->ino, &a);

	if (rc == 0 && S_ISDIR(a.mode)) {
		fs_fuse_inode_close(r->fs, r->ino);
		rc = -EISDIR;
	}
	if (rc != 0) {
		fuse_reply_err(r->req, -rc);
		return;
	}
	handle_options(r->fs, r->ino, &r->fi);
	fs_fuse_reply_open(r, true);
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs_fuse_req *r = fs_fuse_req_new(req);

	if (r == NULL)
		return;
	r->ino = ino;
	r->fi = *fi;
	r->fresh = true; /* close-to-open */
	fs_fuse_read(r, open_read);
}

static void op_release(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	struct fs_fuse *fs = fs_of(req); /* req is gone after the reply */

	if (fi->flock_release)
		fs_fuse_lock_release(fs, ino, fi);
	fuse_reply_err(req, 0);
	/* May propose the release of an orphan this node held. */
	fs_fuse_inode_close(fs, ino);
}

static void op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	/* The POSIX locks of the closing owner go with the close. */
	if (fs_fuse_lock_flush(req, ino, fi))
		return;
	fuse_reply_err(req, 0); /* every write was answered after commit */
}

static void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
		     struct fuse_file_info *fi)
{
	(void)ino;
	(void)datasync;
	(void)fi;
	fuse_reply_err(req, 0); /* every change was answered after commit */
}

/* ---------------------------------------------------------------------- */
/* read, write                                                             */

static void read_read(struct fs_fuse_req *r)
{
	void *buf = malloc(r->size > 0 ? r->size : 1);
	size_t n = 0;
	int rc;

	if (buf == NULL) {
		fuse_reply_err(r->req, ENOMEM);
		return;
	}
	rc = fs_read(r->fs->store, r->ino, r->off, r->size, buf, &n);
	if (rc != 0)
		fuse_reply_err(r->req, -rc);
	else
		fuse_reply_buf(r->req, buf, n);
	free(buf);
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct fs_fuse_req *r;

	(void)fi;
	if (off < 0 || size > READ_MAX_BYTES) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	fs_fuse_widen_readahead(fuse_req_userdata(req));
	r = fs_fuse_req_new(req);
	if (r == NULL)
		return;
	r->ino = ino;
	r->off = (uint64_t)off;
	r->size = size;
	fs_fuse_read(r, read_read);
}

static void finish_write(struct fs_fuse_req *r, int err,
			 const struct fs_result *res, bool answer)
{
	if (!answer)
		return;
	if (err != 0 || res->err != 0)
		fuse_reply_err(r->req, err != 0 ? -err : res->err);
	else
		fuse_reply_write(r->req, res->count);
}

static void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf,
		     size_t size, off_t off, struct fuse_file_info *fi)
{
	struct fs_fuse_req *r;
	struct fs_cmd c;

	if (off < 0 || size > FS_WRITE_MAX) {
		fuse_reply_err(req, off < 0 ? EINVAL : EFBIG);
		return;
	}
	r = fs_fuse_req_new(req);
	if (r == NULL)
		return;
	memset(&c, 0, sizeof(c));
	/* O_APPEND (the kernel passes the file's flags): the offset the
	 * kernel computed from its idea of the size may be stale when
	 * another node wrote; apply writes at the size it finds. */
	c.op = (fi->flags & O_APPEND) ? FS_OP_APPEND : FS_OP_WRITE;
	c.ino = ino;
	c.offset = (uint64_t)off;
	c.data = buf; /* encoded before this handler returns */
	c.data_len = (uint32_t)size;
	fs_fuse_propose(r, &c, finish_write);
}

/* ---------------------------------------------------------------------- */
/* fallocate, lseek                                                        */

static void op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode,
			 off_t offset, off_t length, struct fuse_file_info *fi)
{
	struct fs_fuse_req *r;
	struct fs_cmd c;

	(void)fi;
	if (offset < 0 || length <= 0 || mode < 0) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	r = fs_fuse_req_new(req);
	if (r == NULL)
		return;
	memset(&c, 0, sizeof(c));
	c.op = FS_OP_FALLOCATE;
	c.ino = ino;
	c.flags = (uint32_t)mode; /* apply refuses modes it does not know */
	c.offset = (uint64_t)offset;
	c.length = (uint64_t)length;
	fs_fuse_propose(r, &c, fs_fuse_finish_err);
}

static void lseek_read(struct fs_fuse_req *r)
{
	uint64_t out = 0;
	int rc = fs_lseek(r->fs->store, r->ino, r->off, r->whence, &out);

	if (rc == 0 && out > INT64_MAX)
		rc = -EOVERFLOW;
	if (rc != 0)
		fuse_reply_err(r->req, -rc);
	else
		fuse_reply_lseek(r->req, (off_t)out);
}

static void op_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence,
		     struct fuse_file_info *fi)
{
	struct fs_fuse_req *r;

	(void)fi;
	/* The kernel handles SEEK_SET, SEEK_CUR and SEEK_END itself. */
	if (whence != SEEK_DATA && whence != SEEK_HOLE) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	if (off < 0) {
		fuse_reply_err(req, ENXIO);
		return;
	}
	r = fs_fuse_req_new(req);
	if (r == NULL)
		return;
	r->ino = ino;
	r->off = (uint64_t)off;
	r->whence = whence;
	fs_fuse_read(r, lseek_read);
}

void fs_fuse_ops_file(struct fuse_lowlevel_ops *ops)
{
	ops->create = op_create;
	ops->open = op_open;
	ops->release = op_release;
	ops->flush = op_flush;
	ops->fsync = op_fsync;
	ops->read = op_read;
	ops->write = op_write;
	ops->fallocate = op_fallocate;
	ops->lseek = op_lseek;
}
