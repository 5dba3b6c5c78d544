/*
 * Handlers for directories and the filesystem: opendir, readdir,
 * readdirplus, releasedir, fsyncdir, statfs. Directory offsets are the
 * store's cookies ("." 1, ".." 2, then per-directory sequence numbers
 * given at apply), so a listing resumed after other changes neither
 * repeats nor skips an entry that stayed.
 */

#include "fs/fuse_fe.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

/* Larger readdir buffers than the kernel asks for are refused. */
#define READDIR_MAX_BYTES (1024u * 1024u)

static void opendir_read(struct fs_fuse_req *r)
{
	struct fs_attr a;
	int rc = fs_fuse_ino_err(fs_getattr(r->fs->store, r->ino, &a));

	/* A removed current directory opens, empty. */
	if (rc == -ESTALE && fs_fuse_inode_last(r->fs, r->ino, &a))
		rc = 0;
	if (rc == 0 && !S_ISDIR(a.mode))
		rc = -ENOTDIR;
	if (rc != 0) {
		fuse_reply_err(r->req, -rc);
		return;
	}
	/* Owns the flock locks set through this open (fs_fuse_lock_handle):
	 * releasedir carries no lock owner, only this handle. */
	r->fi.fh = fs_fuse_lock_handle(r->fs);
	r->fi.keep_cache = 0;
	r->fi.cache_readdir = 0; /* every readdir asks the store */
	fs_fuse_reply_open(r, false);
}

static void op_opendir(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	struct fs_fuse_req *r = fs_fuse_req_new(req);

	if (r == NULL)
		return;
	r->ino = ino;
	r->fi = *fi;
	r->fresh = true; /* close-to-open */
	fs_fuse_read(r, opendir_read);
}

struct fill {
	struct fs_fuse_req *r;
	char *buf;
	size_t size;
	size_t used;
	/* readdirplus: the inodes of the entries in buf, each of which
	 * takes a lookup reference when the buffer is sent */
	uint64_t *inos;
	size_t n_inos;
	int err;
};

static bool is_dot(const struct fs_dirent *e)
{
	return (e->name_len == 1 && e->name[0] == '.') ||
	       (e->name_len == 2 && e->name[0] == '.' && e->name[1] == '.');
}

/* One entry into the buffer; 1 stops the walk (buffer full or error). */
static int fill_one(void *ctx, const struct fs_dirent *e)
{
	struct fill *f = ctx;
	char name[FS_NAME_MAX + 1];
	size_t need, left = f->size - f->used;

	if (e->name_len == 0 || e->name_len > FS_NAME_MAX ||
	    e->cookie > INT64_MAX) {
		f->err = -EIO; /* the store never holds such an entry */
		return 1;
	}
	memcpy(name, e->name, e->name_len);
	name[e->name_len] = '\0';
	if (!f->r->plus) {
		struct stat st;

		memset(&st, 0, sizeof(st));
		st.st_ino = e->ino;
		st.st_mode = e->type;
		need = fuse_add_direntry(f->r->req, f->buf + f->used, left,
					 name, &st, (off_t)e->cookie);
	} else {
		struct fuse_entry_param ep;
		struct fs_attr a;

		if (is_dot(e)) {
			/* No lookup reference for "." and "..": the
			 * kernel takes none (ino 0 in the entry). */
			memset(&ep, 0, sizeof(ep));
			ep.attr.st_ino = e->ino;
			ep.attr.st_mode = e->type;
		} else {
			int rc = fs_getattr(f->r->fs->store, e->ino, &a);
			if (rc != 0) {
				f->err = rc == -ENOENT ? -EIO : rc;
				return 1;
			}
			fs_fuse_entry_param(f->r->fs, &a, &ep);
		}
		need = fuse_add_direntry_plus(f->r->req, f->buf + f->used,
					      left, name, &ep,
					      (off_t)e->cookie);
		if (need <= left && !is_dot(e))
			f->inos[f->n_inos++] = e->ino;
	}
	if (need > left)
		return 1;
	f->used += need;
	return 0;
}

static void readdir_read(struct fs_fuse_req *r)
{
	struct fill f = {.r = r, .size = r->size};
	size_t taken = 0;
	int rc;

	f.buf = malloc(r->size > 0 ? r->size : 1);
	/* Every entry takes at least 24 bytes of the buffer. */
	if (r->plus)
		f.inos = malloc((r->size / 24 + 1) * sizeof(*f.inos));
	if (f.buf == NULL || (r->plus && f.inos == NULL)) {
		rc = -ENOMEM;
		goto reply_err;
	}
	rc = fs_readdir(r->fs->store, r->ino, r->off, fill_one, &f);
	if (f.err != 0)
		rc = f.err;
	/* The directory itself is gone (removed here, or by another node
	 * since the kernel opened it): an open handle of a removed
	 * directory lists nothing, as on a local disk. */
	if (rc == -ENOENT)
		rc = 0;
	if (rc < 0)
		goto reply_err;
	rc = 0; /* 1: the buffer filled up */
	for (; taken < f.n_inos; taken++) {
		rc = fs_fuse_inode_ref(r->fs, f.inos[taken], 1);
		if (rc != 0)
			break;
	}
	if (rc == 0 && fuse_reply_buf(r->req, f.buf, f.used) == 0)
		goto out;
	/* A reference failed, or the reply did: the kernel took none. */
	for (size_t i = 0; i < taken; i++)
		fs_fuse_inode_forget(r->fs, f.inos[i], 1);
	if (rc == 0)
		goto out;
reply_err:
	fuse_reply_err(r->req, -rc);
out:
	free(f.inos);
	free(f.buf);
}

static void readdir_any(fuse_req_t req, fuse_ino_t ino, size_t size,
			off_t off, bool plus)
{
	struct fs_fuse_req *r;

	if (off < 0 || size > READDIR_MAX_BYTES) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	r = fs_fuse_req_new(req);
	if (r == NULL)
		return;
	r->ino = ino;
	r->off = (uint64_t)off;
	r->size = size;
	r->plus = plus;
	fs_fuse_read(r, readdir_read);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	(void)fi;
	readdir_any(req, ino, size, off, false);
}

static void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size,
			   off_t off, struct fuse_file_info *fi)
{
	(void)fi;
	readdir_any(req, ino, size, off, true);
}

static void op_releasedir(fuse_req_t req, fuse_ino_t ino,
			  struct fuse_file_info *fi)
{
	struct fs_fuse *fs = fuse_req_userdata(req); /* req dies at the reply */

	/* The last close of the open directory: its flock lock goes. The
	 * kernel sends releasedir without FUSE_RELEASE_FLOCK_UNLOCK (and
	 * libfuse passes neither flag nor owner), so ask every time: it
	 * costs nothing when the handle never locked. */
	fs_fuse_lock_release(fs, ino, fi);
	fuse_reply_err(req, 0);
}

static void op_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync,
			struct fuse_file_info *fi)
{
	(void)ino;
	(void)datasync;
	(void)fi;
	fuse_reply_err(req, 0); /* every change was answered after commit */
}

/* From the replicated counters of the local store, without a barrier:
 * df answers on a node cut off from the majority (possibly stale). */
static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct fs_fuse *fs = fuse_req_userdata(req);
	struct fs_statfs s;
	struct statvfs st;
	int rc;

	(void)ino;
	rc = fs_statfs(fs->store, &s);
	if (rc != 0) {
		fuse_reply_err(req, -rc);
		return;
	}
	memset(&st, 0, sizeof(st));
	st.f_bsize = s.block_size;
	st.f_frsize = s.block_size;
	st.f_blocks = s.blocks;
	st.f_bfree = s.blocks_free;
	st.f_bavail = s.blocks_free;
	st.f_files = s.files;
	st.f_ffree = s.files_free;
	st.f_favail = s.files_free;
	st.f_namemax = s.name_max;
	fuse_reply_statfs(req, &st);
}

void fs_fuse_ops_dir(struct fuse_lowlevel_ops *ops)
{
	ops->opendir = op_opendir;
	ops->readdir = op_readdir;
	ops->readdirplus = op_readdirplus;
	ops->releasedir = op_releasedir;
	ops->fsyncdir = op_fsyncdir;
	ops->statfs = op_statfs;
}
