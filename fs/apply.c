/*
 * Applying one committed command. Deterministic: apply reads nothing but
 * the command and the replicated state (DESIGN.md contract 6). The command,
 * its duplicate-table record and the new applied index go into one
 * WriteBatch. A failed command changes nothing but the duplicate table and
 * the applied index.
 */

#include "fs/apply_io.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

/* ---------------------------------------------------------------------- */
/* Helpers.                                                                */

static bool too_long(const struct fs_apply *a, uint32_t len)
{
	return len > a->sb.name_max;
}

/* What a write, truncate or chown does with HANDLE_KILLPRIV: setuid goes,
 * setgid too when group-execute is set (otherwise it marks mandatory
 * locking and stays), as the kernel's should_remove_suid. */
static void kill_priv(struct fs_inode *in)
{
	if (S_ISDIR(in->mode))
		return;
	in->mode &= ~(uint32_t)S_ISUID;
	if (in->mode & S_IXGRP)
		in->mode &= ~(uint32_t)S_ISGID;
}

static void touch_dir(struct fs_apply *a, struct fs_inode *dir)
{
	dir->mtime = a->now;
	dir->ctime = a->now;
}

static void result_inode(struct fs_apply *a, const struct fs_inode *in)
{
	a->res->ino = in->ino;
	fs_inode_attr(in, a->sb.block_size, &a->res->attr);
}

static int inode_limit(const struct fs_apply *a)
{
	return a->sb.used_inodes >= a->sb.max_inodes ? ENOSPC : 0;
}

/* A new inode with the caller's identity (setgid directories pass their
 * group on, and their setgid bit to subdirectories). */
static void inode_new(struct fs_apply *a, const struct fs_inode *parent,
		      uint32_t mode, struct fs_inode *in)
{
	memset(in, 0, sizeof(*in));
	in->ino = a->sb.next_ino++;
	in->mode = mode;
	in->uid = a->c->uid;
	in->gid = a->c->gid;
	if (parent->mode & S_ISGID) {
		in->gid = parent->gid;
		if (S_ISDIR(mode))
			in->mode |= S_ISGID;
	}
	in->nlink = S_ISDIR(mode) ? 2 : 1;
	in->generation = a->index;
	in->atime = in->mtime = in->ctime = a->now;
	if (S_ISDIR(mode)) {
		in->parent = parent->ino;
		in->next_seq = 3; /* 1 and 2 are "." and ".." */
	}
	a->sb.used_inodes++;
}

/* ---------------------------------------------------------------------- */
/* Operations.                                                             */

static int op_init(struct fs_apply *a)
{
	const struct fs_cmd *c = a->c;
	struct fs_inode root;

	if (a->sb.formatted)
		return EEXIST;
	a->sb.formatted = true;
	memcpy(a->sb.fs_id, c->fs_id, sizeof(a->sb.fs_id));
	a->sb.block_size = c->block_size;
	a->sb.capacity_bytes = c->capacity_bytes;
	a->sb.max_inodes = c->max_inodes;
	a->sb.name_max = c->name_max;
	a->sb.feature_level = 1;
	a->sb.next_ino = FS_ROOT_INO + 1;
	a->sb.used_bytes = 0;
	a->sb.used_inodes = 1;
	memset(&root, 0, sizeof(root));
	root.ino = FS_ROOT_INO;
	root.mode = S_IFDIR | c->mode;
	root.uid = c->uid;
	root.gid = c->gid;
	root.nlink = 2;
	root.generation = a->index;
	root.atime = root.mtime = root.ctime = a->now;
	root.parent = FS_ROOT_INO;
	root.next_seq = 3;
	result_inode(a, &root);
	return fs_inode_store(a, &root);
}

/* 0 when the command's name is free in dir; EEXIST when it is taken, or
 * the store's error. */
static int name_free(struct fs_apply *a, const struct fs_inode *dir)
{
	struct fs_dentry de;
	int rc = fs_dentry_load(a, dir->ino, a->c->name, a->c->name_len, &de);
	if (rc != ENOENT)
		return rc == 0 ? EEXIST : rc;
	return 0;
}

static int op_create(struct fs_apply *a)
{
	const struct fs_cmd *c = a->c;
	struct fs_inode dir, in;
	int rc;

	if ((rc = fs_dir_load(a, c->ino, &dir)) != 0)
		return rc;
	if (too_long(a, c->name_len))
		return ENAMETOOLONG;
	if ((rc = name_free(a, &dir)) != 0)
		return rc;
	if (S_ISDIR(c->mode) && dir.nlink >= FS_LINK_MAX)
		return EMLINK;
	if ((rc = inode_limit(a)) != 0)
		return rc;
	inode_new(a, &dir, c->mode, &in);
	if (S_ISCHR(c->mode) || S_ISBLK(c->mode))
		in.rdev = c->rdev;
	if (S_ISDIR(c->mode))
		dir.nlink++;
	touch_dir(a, &dir);
	rc = fs_dentry_add(a, &dir, c->name, c->name_len, in.ino,
			   in.mode & S_IFMT);
	if (rc == 0)
		rc = fs_inode_store(a, &dir);
	if (rc == 0)
		rc = fs_inode_store(a, &in);
	result_inode(a, &in);
	return rc;
}

static int op_symlink(struct fs_apply *a)
{
	const struct fs_cmd *c = a->c;
	struct fs_inode dir, in;
	struct fs_key k;
	int rc;

	if ((rc = fs_dir_load(a, c->ino, &dir)) != 0)
		return rc;
	if (too_long(a, c->name_len) || c->data_len > FS_SYMLINK_MAX)
		return ENAMETOOLONG;
	if ((rc = name_free(a, &dir)) != 0)
		return rc;
	if ((rc = inode_limit(a)) != 0)
		return rc;
	inode_new(a, &dir, S_IFLNK | 0777, &in);
	in.size = c->data_len;
	touch_dir(a, &dir);
	fs_key1(&k, FS_KEY_SYMLINK, in.ino);
	rc = fs_txn_put(&a->txn, &k, c->data, c->data_len);
	if (rc == 0)
		rc = fs_dentry_add(a, &dir, c->name, c->name_len, in.ino,
				   S_IFLNK);
	if (rc == 0)
		rc = fs_inode_store(a, &dir);
	if (rc == 0)
		rc = fs_inode_store(a, &in);
	result_inode(a, &in);
	return rc;
}

static int op_link(struct fs_apply *a)
{
	const struct fs_cmd *c = a->c;
	struct fs_inode in, dir;
	int rc;

	if ((rc = fs_inode_load(a, c->ino, &in)) != 0)
		return rc;
	if ((rc = fs_dir_load(a, c->ino2, &dir)) != 0)
		return rc;
	if (too_long(a, c->name_len))
		return ENAMETOOLONG;
	if ((rc = name_free(a, &dir)) != 0)
		return rc;
	if (S_ISDIR(in.mode))
		return EPERM;
	if (in.nlink == 0)
		return ENOENT; /* an orphan cannot get a name back */
	if (in.nlink >= FS_LINK_MAX)
		return EMLINK;
	in.nlink++;
	in.ctime = a->now;
	touch_dir(a, &dir);
	rc = fs_dentry_add(a, &dir, c->name, c->name_len, in.ino,
			   in.mode & S_IFMT);
	if (rc == 0)
		rc = fs_inode_store(a, &dir);
	if (rc == 0)
		rc = fs_inode_store(a, &in);
	result_inode(a, &in);
	return rc;
}

/* The directory c->ino, its entry c->name and the inode it names: what
 * unlink and rmdir start from. An entry naming a missing inode is damage. */
static int load_named(struct fs_apply *a, struct fs_inode *dir,
		      struct fs_dentry *de, struct fs_inode *in)
{
	const struct fs_cmd *c = a->c;
	int rc;

	if ((rc = fs_dir_load(a, c->ino, dir)) != 0)
		return rc;
	if (too_long(a, c->name_len))
		return ENAMETOOLONG;
	if ((rc = fs_dentry_load(a, dir->ino, c->name, c->name_len, de)) != 0)
		return rc;
	if ((rc = fs_inode_load(a, de->ino, in)) != 0)
		return rc == ENOENT ? -EUCLEAN : rc;
	return 0;
}

static int op_unlink(struct fs_apply *a)
{
	const struct fs_cmd *c = a->c;
	struct fs_inode dir, in;
	struct fs_dentry de;
	int rc;

	if ((rc = load_named(a, &dir, &de, &in)) != 0)
		return rc;
	if (S_ISDIR(in.mode))
		return EISDIR;
	touch_dir(a, &dir);
	rc = fs_dentry_remove(a, &dir, c->name, c->name_len, &de);
	if (rc == 0)
		rc = fs_inode_store(a, &dir);
	if (rc == 0)
		rc = fs_inode_unlink(a, &in);
	result_inode(a, &dir);
	return rc;
}

static int op_rmdir(struct fs_apply *a)
{
	const struct fs_cmd *c = a->c;
	struct fs_inode dir, in;
	struct fs_dentry de;
	int rc;

	if ((rc = load_named(a, &dir, &de, &in)) != 0)
		return rc;
	if (!S_ISDIR(in.mode))
		return ENOTDIR;
	if (in.entries > 0)
		return ENOTEMPTY;
	touch_dir(a, &dir);
	dir.nlink--;
	rc = fs_dentry_remove(a, &dir, c->name, c->name_len, &de);
	if (rc == 0)
		rc = fs_inode_store(a, &dir);
	if (rc == 0)
		rc = fs_inode_free(a, &in);
	result_inode(a, &dir);
	return rc;
}

/* Whether directory ino is anc or lies below it (walking up the parent
 * pointers of directories). */
static int is_within(struct fs_apply *a, uint64_t ino, uint64_t anc,
		     bool *within)
{
	struct fs_inode d;
	uint64_t depth = 0;

	*within = false;
	for (;;) {
		int rc;
		if (ino == anc) {
			*within = true;
			return 0;
		}
		if (ino == FS_ROOT_INO)
			return 0;
		rc = fs_inode_load(a, ino, &d);
		if (rc != 0)
			return rc > 0 ? -EUCLEAN : rc;
		/* A parent chain longer than the inode count is a cycle. */
		if (++depth > a->sb.used_inodes)
			return -EUCLEAN;
		ino = d.parent;
	}
}

static int rename_exchange(struct fs_apply *a, struct fs_inode *sp,
			   struct fs_inode *dp, struct fs_inode *src,
			   const struct fs_dentry *sde, struct fs_inode *dst,
			   const struct fs_dentry *dde)
{
	const struct fs_cmd *c = a->c;
	bool src_dir = S_ISDIR(src->mode), dst_dir = S_ISDIR(dst->mode);
	bool within = false;
	int rc;

	if (dst_dir) {
		if ((rc = is_within(a, sp->ino, dst->ino, &within)) != 0)
			return rc;
		if (within)
			return EINVAL;
	}
	if (src_dir) {
		if ((rc = is_within(a, dp->ino, src->ino, &within)) != 0)
			return rc;
		if (within)
			return EINVAL;
	}
	if (sp != dp && src_dir != dst_dir) {
		if (src_dir) {
			sp->nlink--;
			dp->nlink++;
		} else {
			dp->nlink--;
			sp->nlink++;
		}
	}
	if (src_dir)
		src->parent = dp->ino;
	if (dst_dir)
		dst->parent = sp->ino;
	src->ctime = dst->ctime = a->now;
	touch_dir(a, sp);
	touch_dir(a, dp);
	rc = fs_dentry_retarget(a, sp->ino, c->name, c->name_len, sde->seq,
				dst->ino, dst->mode & S_IFMT);
	if (rc == 0)
		rc = fs_dentry_retarget(a, dp->ino, c->name2, c->name2_len,
					dde->seq, src->ino, src->mode & S_IFMT);
	if (rc == 0)
		rc = fs_inode_store(a, src);
	if (rc == 0)
		rc = fs_inode_store(a, dst);
	return rc;
}

static int op_rename(struct fs_apply *a)
{
	const struct fs_cmd *c = a->c;
	struct fs_inode spb, dpb, src, dst;
	struct fs_inode *sp = &spb, *dp = &dpb;
	struct fs_dentry sde, dde;
	bool have_dst, within = false;
	int rc;

	if ((c->flags & ~(FS_RENAME_NOREPLACE | FS_RENAME_EXCHANGE)) != 0 ||
	    c->flags == (FS_RENAME_NOREPLACE | FS_RENAME_EXCHANGE))
		return EINVAL;
	if ((rc = fs_dir_load(a, c->ino, sp)) != 0)
		return rc;
	if (c->ino2 == c->ino)
		dp = sp;
	else if ((rc = fs_dir_load(a, c->ino2, dp)) != 0)
		return rc;
	if (too_long(a, c->name_len) || too_long(a, c->name2_len))
		return ENAMETOOLONG;
	if ((rc = fs_dentry_load(a, sp->ino, c->name, c->name_len, &sde)) != 0)
		return rc;
	rc = fs_dentry_load(a, dp->ino, c->name2, c->name2_len, &dde);
	if (rc < 0)
		return rc;
	have_dst = rc == 0;
	if (have_dst && (c->flags & FS_RENAME_NOREPLACE))
		return EEXIST;
	if (!have_dst && (c->flags & FS_RENAME_EXCHANGE))
		return ENOENT;
	if ((rc = fs_inode_load(a, sde.ino, &src)) != 0)
		return rc == ENOENT ? -EUCLEAN : rc;
	if (have_dst && dde.ino == sde.ino)
		goto done; /* the same file: POSIX says do nothing */
	if (have_dst) {
		if ((rc = fs_inode_load(a, dde.ino, &dst)) != 0)
			return rc == ENOENT ? -EUCLEAN : rc;
	}
	if (c->flags & FS_RENAME_EXCHANGE) {
		rc = rename_exchange(a, sp, dp, &src, &sde, &dst, &dde);
		if (rc != 0)
			return rc;
		goto store_parents;
	}
	if (have_dst) {
		if (S_ISDIR(src.mode) && !S_ISDIR(dst.mode))
			return ENOTDIR;
		if (!S_ISDIR(src.mode) && S_ISDIR(dst.mode))
			return EISDIR;
		if (S_ISDIR(dst.mode) && dst.entries > 0)
			return ENOTEMPTY;
	}
	if (S_ISDIR(src.mode)) {
		if ((rc = is_within(a, dp->ino, src.ino, &within)) != 0)
			return rc;
		if (within)
			return EINVAL;
		if (sp != dp && !have_dst && dp->nlink >= FS_LINK_MAX)
			return EMLINK;
	}
	if (have_dst) {
		rc = fs_dentry_remove(a, dp, c->name2, c->name2_len, &dde);
		if (rc == 0 && S_ISDIR(dst.mode)) {
			dp->nlink--;
			rc = fs_inode_free(a, &dst);
		} else if (rc == 0) {
			rc = fs_inode_unlink(a, &dst);
		}
		if (rc != 0)
			return rc;
	}
	rc = fs_dentry_remove(a, sp, c->name, c->name_len, &sde);
	if (rc == 0)
		rc = fs_dentry_add(a, dp, c->name2, c->name2_len, src.ino,
				   src.mode & S_IFMT);
	if (rc != 0)
		return rc;
	if (S_ISDIR(src.mode) && sp != dp) {
		sp->nlink--;
		dp->nlink++;
		src.parent = dp->ino;
	}
	src.ctime = a->now;
	touch_dir(a, sp);
	touch_dir(a, dp);
	if ((rc = fs_inode_store(a, &src)) != 0)
		return rc;
store_parents:
	rc = fs_inode_store(a, sp);
	if (rc == 0 && dp != sp)
		rc = fs_inode_store(a, dp);
	if (rc != 0)
		return rc;
done:
	result_inode(a, &src);
	return 0;
}

static int op_setattr(struct fs_apply *a)
{
	const struct fs_cmd *c = a->c;
	struct fs_inode in;
	int rc;

	if ((rc = fs_inode_load(a, c->ino, &in)) != 0)
		return rc;
	if (c->valid & FS_SET_SIZE) {
		if (S_ISDIR(in.mode))
			return EISDIR;
		if (!S_ISREG(in.mode))
			return EINVAL;
		if (c->size > FS_FILE_SIZE_MAX)
			return EFBIG;
	}
	if (c->valid & FS_SET_MODE)
		in.mode = (in.mode & S_IFMT) | c->mode;
	if (c->valid & FS_SET_UID)
		in.uid = c->set_uid;
	if (c->valid & FS_SET_GID)
		in.gid = c->set_gid;
	if ((c->valid & (FS_SET_UID | FS_SET_GID | FS_SET_SIZE)) &&
	    !(c->valid & FS_SET_MODE))
		kill_priv(&in);
	if (c->valid & FS_SET_SIZE) {
		rc = fs_data_truncate(a, &in, c->size);
		if (rc != 0)
			return rc;
		in.size = c->size;
		in.mtime = a->now;
	}
	if (c->valid & FS_SET_ATIME)
		in.atime = c->atime;
	if (c->valid & FS_SET_ATIME_NOW)
		in.atime = a->now;
	if (c->valid & FS_SET_MTIME)
		in.mtime = c->mtime;
	if (c->valid & FS_SET_MTIME_NOW)
		in.mtime = a->now;
	in.ctime = a->now;
	result_inode(a, &in);
	return fs_inode_store(a, &in);
}

/* Regular files only: EISDIR for directories, other types as given. */
static int data_inode(struct fs_apply *a, uint64_t ino, int other,
		      struct fs_inode *in)
{
	int rc = fs_inode_load(a, ino, in);

	if (rc != 0)
		return rc;
	if (S_ISDIR(in->mode))
		return EISDIR;
	return S_ISREG(in->mode) ? 0 : other;
}

/* WRITE at the command's offset; APPEND at the size the file has when
 * the command is applied (O_APPEND exact across nodes). */
static int op_write(struct fs_apply *a)
{
	const struct fs_cmd *c = a->c;
	struct fs_inode in;
	uint64_t off;
	int rc;

	if ((rc = data_inode(a, c->ino, EINVAL, &in)) != 0)
		return rc;
	off = c->op == FS_OP_APPEND ? in.size : c->offset;
	if (off > FS_FILE_SIZE_MAX || c->data_len > FS_FILE_SIZE_MAX - off)
		return EFBIG;
	if (c->data_len > 0) {
		rc = fs_data_write(a, &in, off, c->data, c->data_len);
		if (rc != 0)
			return rc;
		in.mtime = in.ctime = a->now;
		kill_priv(&in);
	}
	a->res->count = c->data_len;
	result_inode(a, &in);
	return fs_inode_store(a, &in);
}

static int op_fallocate(struct fs_apply *a)
{
	const struct fs_cmd *c = a->c;
	uint32_t mode = c->flags & ~FS_FALLOC_KEEP_SIZE;
	bool keep = c->flags & FS_FALLOC_KEEP_SIZE;
	struct fs_inode in;
	uint64_t end;
	int rc;

	if ((rc = data_inode(a, c->ino, ENODEV, &in)) != 0)
		return rc;
	if (mode != 0 && mode != FS_FALLOC_PUNCH_HOLE &&
	    mode != FS_FALLOC_ZERO_RANGE)
		return EOPNOTSUPP;
	if (mode == FS_FALLOC_PUNCH_HOLE && !keep)
		return EOPNOTSUPP;
	if (c->length == 0)
		return EINVAL;
	if (c->offset > FS_FILE_SIZE_MAX ||
	    c->length > FS_FILE_SIZE_MAX - c->offset)
		return EFBIG;
	end = c->offset + c->length;
	if (mode != 0) {
		rc = fs_data_punch(a, &in, c->offset, end);
		if (rc != 0)
			return rc;
	}
	if (mode != FS_FALLOC_PUNCH_HOLE) {
		/* With KEEP_SIZE, nothing is stored past the size (the
		 * store keeps no preallocation beyond end of file). */
		uint64_t aend = keep && end > in.size ? in.size : end;
		if (aend > c->offset) {
			rc = fs_data_allocate(a, &in, c->offset, aend);
			if (rc != 0)
				return rc;
		}
		if (!keep && end > in.size)
			in.size = end;
	}
	in.mtime = in.ctime = a->now;
	kill_priv(&in);
	result_inode(a, &in);
	return fs_inode_store(a, &in);
}

static int op_setxattr(struct fs_apply *a)
{
	const struct fs_cmd *c = a->c;
	struct fs_inode in;
	struct fs_key k;
	uint8_t *val = NULL, *rec;
	size_t len;
	bool exists;
	int rc;

	if ((rc = fs_inode_load(a, c->ino, &in)) != 0)
		return rc;
	if (c->flags == (FS_XATTR_CREATE | FS_XATTR_REPLACE))
		return EINVAL;
	if (c->name_len > FS_XATTR_NAME_MAX)
		return ERANGE;
	fs_key_name(&k, FS_KEY_XATTR, in.ino, c->name, c->name_len);
	rc = fs_txn_get(&a->txn, &k, &val, &len);
	if (rc != 0 && rc != -ENOENT)
		return rc;
	free(val);
	exists = rc == 0;
	if (exists && (c->flags & FS_XATTR_CREATE))
		return EEXIST;
	if (!exists && (c->flags & FS_XATTR_REPLACE))
		return ENODATA;
	/* A one-byte tag keeps even an empty value a non-empty record. */
	rec = malloc(1 + (size_t)c->data_len);
	if (rec == NULL)
		return -ENOMEM;
	rec[0] = 1;
	if (c->data_len > 0)
		memcpy(rec + 1, c->data, c->data_len);
	rc = fs_txn_put(&a->txn, &k, rec, 1 + (size_t)c->data_len);
	free(rec);
	if (rc != 0)
		return rc;
	in.ctime = a->now;
	result_inode(a, &in);
	return fs_inode_store(a, &in);
}

static int op_removexattr(struct fs_apply *a)
{
	const struct fs_cmd *c = a->c;
	struct fs_inode in;
	struct fs_key k;
	uint8_t *val = NULL;
	size_t len;
	int rc;

	if ((rc = fs_inode_load(a, c->ino, &in)) != 0)
		return rc;
	if (c->name_len > FS_XATTR_NAME_MAX)
		return ERANGE;
	fs_key_name(&k, FS_KEY_XATTR, in.ino, c->name, c->name_len);
	rc = fs_txn_get(&a->txn, &k, &val, &len);
	free(val);
	if (rc == -ENOENT)
		return ENODATA;
	if (rc != 0)
		return rc;
	if ((rc = fs_txn_del(&a->txn, &k)) != 0)
		return rc;
	in.ctime = a->now;
	result_inode(a, &in);
	return fs_inode_store(a, &in);
}

/* The proposer leaves the holders of orphan ino (ENOENT: not held). */
static int release_one(struct fs_apply *a, uint64_t ino)
{
	const struct fs_cmd *c = a->c;
	uint64_t node = c->proposal.id.node, h[FS_HOLDERS_MAX];
	uint8_t *val = NULL, buf[4 + 8 * FS_HOLDERS_MAX];
	struct fs_wbuf w = {buf, sizeof(buf), 0, false};
	struct fs_rbuf r;
	struct fs_inode in;
	struct fs_key k;
	uint32_t n, m = 0;
	bool held = false;
	size_t len;
	int rc;

	fs_key1(&k, FS_KEY_ORPHAN, ino);
	rc = fs_txn_get(&a->txn, &k, &val, &len);
	if (rc == -ENOENT)
		return ENOENT;
	if (rc != 0)
		return rc;
	r = (struct fs_rbuf){val, len, 0, false};
	n = fs_get_u32(&r);
	for (uint32_t i = 0; i < n && i < FS_HOLDERS_MAX && !r.bad; i++) {
		uint64_t id = fs_get_u64(&r);
		if (id == node)
			held = true;
		else
			h[m++] = id;
	}
	rc = fs_rbuf_done(&r) && n > 0 && n <= FS_HOLDERS_MAX ? 0 : -EUCLEAN;
	free(val);
	if (rc != 0)
		return rc;
	if (!held)
		return ENOENT;
	if ((rc = fs_inode_load(a, ino, &in)) != 0)
		return rc == ENOENT ? -EUCLEAN : rc;
	if (c->op == FS_OP_RELEASE)
		result_inode(a, &in);
	if (m == 0)
		return fs_inode_free(a, &in);
	fs_put_u32(&w, m);
	for (uint32_t i = 0; i < m; i++)
		fs_put_u64(&w, h[i]);
	return fs_txn_put(&a->txn, &k, buf, w.len);
}

static int op_release(struct fs_apply *a)
{
	return release_one(a, a->c->ino);
}

/* Each inode of the list, in order; those not held are skipped. */
static int op_release_list(struct fs_apply *a)
{
	const uint8_t *p = a->c->data;
	int rc = 0;

	for (uint32_t i = 0; rc >= 0 && i + 8 <= a->c->data_len; i += 8) {
		uint64_t ino = 0;
		for (int b = 0; b < 8; b++)
			ino = ino << 8 | p[i + b];
		rc = release_one(a, ino);
		if (rc == ENOENT)
			rc = 0;
	}
	return rc < 0 ? rc : 0;
}

static int run_op(struct fs_apply *a)
{
	switch (a->c->op) {
	case FS_OP_INIT:
		return op_init(a);
	case FS_OP_CREATE:
		return op_create(a);
	case FS_OP_SYMLINK:
		return op_symlink(a);
	case FS_OP_LINK:
		return op_link(a);
	case FS_OP_UNLINK:
		return op_unlink(a);
	case FS_OP_RMDIR:
		return op_rmdir(a);
	case FS_OP_RENAME:
		return op_rename(a);
	case FS_OP_SETATTR:
		return op_setattr(a);
	case FS_OP_WRITE:
	case FS_OP_APPEND:
		return op_write(a);
	case FS_OP_FALLOCATE:
		return op_fallocate(a);
	case FS_OP_SETXATTR:
		return op_setxattr(a);
	case FS_OP_REMOVEXATTR:
		return op_removexattr(a);
	case FS_OP_RELEASE:
		return op_release(a);
	case FS_OP_CHECK:
		/* Nothing changes: the replicas hash their state here
		 * (fs/check_view.c), outside the apply. */
		return 0;
	case FS_OP_RELEASE_ALL: {
		/* The proposer (just started) holds nothing open, and no
		 * lock. */
		int rc = fs_orphans_release_node(a, a->c->proposal.id.node);

		/* Locks and leases exist from feature level 3 on: below it,
		 * a member of an older build applies this as it always did,
		 * and the replicas stay identical. */
		if (rc != 0 || a->sb.feature_level < 3)
			return rc;
		rc = fs_locks_release_node_apply(a, a->c->proposal.id.node);
		/* Its first renewal, too. */
		return rc ? rc : fs_lease_announce(a, true);
	}
	case FS_OP_LEASE:
		return fs_lease_announce(a, true);
	case FS_OP_LEASE_EXPIRE:
		return fs_apply_lease_expire(a);
	case FS_OP_LOCK:
	case FS_OP_LOCK_CANCEL:
	case FS_OP_UNLOCK_OWNER:
		return fs_apply_lock(a);
	case FS_OP_RELEASE_LIST:
		return op_release_list(a);
	case FS_OP_REPAIR_ENTRY:
	case FS_OP_REPAIR_FREE:
	case FS_OP_REPAIR_DATA:
	case FS_OP_REPAIR_LOST_FOUND:
	case FS_OP_REPAIR_LINKS:
	case FS_OP_REPAIR_COUNTERS:
		return fs_apply_repair(a);
	case FS_OP_FEATURE:
		/* A level this build cannot run: stop rather than differ. */
		if (a->c->flags > FS_FEATURE_LEVEL)
			return -EPROTONOSUPPORT;
		if (a->c->flags <= a->sb.feature_level)
			return EALREADY; /* raised already: changes nothing */
		a->sb.feature_level = a->c->flags;
		return 0;
	}
	return -EBADMSG;
}

/* ---------------------------------------------------------------------- */
/* The duplicate table in the store: P node -> {epoch, low_water};         */
/* R node seq -> encoded struct fs_result. The rules are raft/proposal's.  */

static int dedup_state(struct fs_apply *a, uint64_t node,
		       struct raft_dedup_state *st)
{
	struct fs_key k;
	struct fs_rbuf r;
	uint8_t *val = NULL;
	size_t len;
	int rc;

	fs_key1(&k, FS_KEY_DEDUP, node);
	rc = fs_txn_get(&a->txn, &k, &val, &len);
	if (rc == -ENOENT) {
		st->epoch = 0;
		st->low_water = 0;
		return 0;
	}
	if (rc != 0)
		return rc;
	r = (struct fs_rbuf){val, len, 0, false};
	st->epoch = fs_get_u64(&r);
	st->low_water = fs_get_u64(&r);
	rc = fs_rbuf_done(&r) ? 0 : -EUCLEAN;
	free(val);
	return rc;
}

/* Judge the command; on DUPLICATE fill a->res with the stored result. */
static int dedup_check(struct fs_apply *a, enum raft_dedup_verdict *v)
{
	const struct raft_proposal *p = &a->c->proposal;
	struct raft_dedup_state st;
	struct fs_key k;
	uint8_t *val = NULL;
	size_t len;
	int rc = dedup_state(a, p->id.node, &st);

	if (rc != 0)
		return rc;
	fs_key2(&k, FS_KEY_RESULT, p->id.node, p->id.seq);
	rc = fs_txn_get(&a->txn, &k, &val, &len);
	if (rc != 0 && rc != -ENOENT)
		return rc;
	*v = raft_dedup_judge(&st, p, rc == 0);
	if (*v == RAFT_DEDUP_DUPLICATE)
		rc = fs_result_decode(val, len, a->res);
	else
		rc = 0;
	free(val);
	return rc;
}

/* Evictions of at most this many results delete them by key (no scan). */
#define EVICT_BY_KEY_MAX 64u

/* Advance the proposer's state, evict, and store a NEW command's result. */
static int dedup_record(struct fs_apply *a, enum raft_dedup_verdict v)
{
	const struct raft_proposal *p = &a->c->proposal;
	struct raft_dedup_state st, next;
	struct raft_dedup_eviction ev;
	struct fs_key k, lo, hi, *keys = NULL;
	uint8_t buf[FS_RESULT_BYTES > 16 ? FS_RESULT_BYTES : 16];
	struct fs_wbuf w = {buf, sizeof(buf), 0, false};
	size_t n = 0;
	int rc = dedup_state(a, p->id.node, &st);

	if (rc != 0)
		return rc;
	raft_dedup_advance(&st, p, &next, &ev);
	if (!ev.all && ev.from < ev.to && ev.to - ev.from <= EVICT_BY_KEY_MAX) {
		/* The usual case, a few results: deleted by key. A scan from
		 * (node, from) would stop only at the first live key at or
		 * past (node, to), and LevelDB walks every deleted result in
		 * between one by one: with none of this node's left above,
		 * all those of the nodes after it (thousands, until a
		 * compaction). Deleting a key that is not there changes
		 * nothing. */
		for (uint64_t seq = ev.from; rc == 0 && seq < ev.to; seq++) {
			fs_key2(&k, FS_KEY_RESULT, p->id.node, seq);
			rc = fs_txn_del(&a->txn, &k);
		}
		if (rc != 0)
			return rc;
	} else if (ev.all || ev.from < ev.to) {
		fs_key2(&lo, FS_KEY_RESULT, p->id.node, ev.all ? 0 : ev.from);
		if (ev.all)
			fs_key1(&hi, FS_KEY_RESULT, p->id.node + 1);
		else
			fs_key2(&hi, FS_KEY_RESULT, p->id.node, ev.to);
		rc = fs_txn_keys(&a->txn, &lo, &hi, &keys, &n);
		for (size_t i = 0; rc == 0 && i < n; i++)
			rc = fs_txn_del(&a->txn, &keys[i]);
		free(keys);
		if (rc != 0)
			return rc;
	}
	if (next.epoch != st.epoch || next.low_water != st.low_water) {
		fs_put_u64(&w, next.epoch);
		fs_put_u64(&w, next.low_water);
		fs_key1(&k, FS_KEY_DEDUP, p->id.node);
		rc = fs_txn_put(&a->txn, &k, buf, w.len);
		if (rc != 0)
			return rc;
	}
	if (v != RAFT_DEDUP_NEW)
		return 0;
	fs_key2(&k, FS_KEY_RESULT, p->id.node, p->id.seq);
	return fs_txn_put(&a->txn, &k, buf, fs_result_encode(a->res, buf));
}

/* ---------------------------------------------------------------------- */

/* The command's time: the proposer's clock, but never before the last
 * applied time + 1 ns, so times never go backwards in log order. */
static struct fs_time command_time(struct fs_store *s, const struct fs_cmd *c,
				   struct fs_time last)
{
	struct fs_time t = c->clock, min = last;

	if (s->test_bugs & FS_BUG_CLOCK_IN_APPLY) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		t.sec = ts.tv_sec;
		t.nsec = (uint32_t)ts.tv_nsec;
	}
	if (++min.nsec == 1000000000u) {
		min.nsec = 0;
		min.sec++;
	}
	return fs_time_before(t, min) ? min : t;
}

static int write_super(struct fs_apply *a)
{
	struct fs_key k = {{FS_KEY_SUPER}, 1};
	uint8_t buf[FS_SUPER_BYTES];

	return fs_txn_put(&a->txn, &k, buf, fs_super_encode(&a->sb, buf));
}

int fs_apply_begin(struct fs_store *s, uint64_t index, struct fs_apply *a)
{
	int rc;

	memset(a, 0, sizeof(*a));
	rc = fs_txn_init(&a->txn, s);
	if (rc != 0)
		return rc;
	/* Readers wait for the whole entry: they see it all or not. */
	pthread_rwlock_wrlock(&s->lock);
	if (index != s->sb.applied_index + 1) {
		pthread_rwlock_unlock(&s->lock);
		fs_txn_release(&a->txn);
		return -EINVAL;
	}
	a->sb = s->sb;
	a->index = index;
	return 0;
}

int fs_apply_finish(struct fs_store *s, struct fs_apply *a, int rc)
{
	if (rc == 0) {
		a->sb.applied_index = a->index;
		rc = write_super(a);
	}
	if (rc == 0)
		rc = fs_txn_commit(&a->txn);
	if (rc == 0)
		s->sb = a->sb;
	pthread_rwlock_unlock(&s->lock);
	fs_txn_release(&a->txn);
	return rc;
}

/*
 * Whether a successful command changed something a kernel may cache (the
 * hook's FS_EVENT_CHANGED); fills in which inode's contents changed.
 * Releases only free orphans, which have no name and which no kernel
 * holds open (this node's hold keeps them while it has them open).
 */
static bool visible_change(const struct fs_cmd *c, struct fs_store_event *ev)
{
	switch (c->op) {
	case FS_OP_INIT:
	case FS_OP_CHECK:
	case FS_OP_RELEASE:
	case FS_OP_RELEASE_ALL:
	case FS_OP_RELEASE_LIST:
		return false;
	case FS_OP_APPEND:
		ev->append = true;
		/* fall through */
	case FS_OP_WRITE:
	case FS_OP_FALLOCATE:
		ev->data[ev->n_data++] = c->ino;
		break;
	case FS_OP_SETATTR:
		if (c->valid & FS_SET_SIZE)
			ev->data[ev->n_data++] = c->ino;
		break;
	default:
		break;
	}
	return ev->all || ev->n_inodes > 0 || ev->n_entries > 0;
}

int fs_store_apply(struct fs_store *s, uint64_t index, const void *buf,
		   size_t size, struct fs_result *res)
{
	struct fs_apply a;
	struct fs_cmd cmd;
	enum raft_dedup_verdict v;
	struct fs_store_event ev[3];
	int n_ev = 0, rc;

	memset(res, 0, sizeof(*res));
	if (fs_cmd_decode(buf, size, &cmd) != 0)
		return -EBADMSG;
	rc = fs_apply_begin(s, index, &a);
	if (rc != 0)
		return rc;
	if (!s->sb.formatted && cmd.op != FS_OP_INIT) {
		rc = -EBADMSG;
		goto out;
	}
	a.c = &cmd;
	a.res = res;
	rc = dedup_check(&a, &v);
	if (rc != 0)
		goto out;
	if (v == RAFT_DEDUP_NEW) {
		bool fenced = false;

		a.now = command_time(s, &cmd, a.sb.last_time);
		a.sb.last_time = a.now;
		/* Fencing: nothing of a node whose lease was revoked. */
		rc = cmd.op == FS_OP_INIT ? 0 : fs_lease_fenced(&a, &fenced);
		if (rc == 0)
			rc = fenced ? EIO : run_op(&a);
		if (rc > 0) {
			/* The command failed: none of its writes count. */
			fs_txn_reset(&a.txn);
			a.sb = s->sb;
			memset(res, 0, sizeof(*res));
			res->err = rc;
			a.orphaned = 0;
			a.dir_freed = false;
			a.n_lock_events = 0;
			memset(&a.ev, 0, sizeof(a.ev));
			rc = 0;
		}
		if (rc != 0)
			goto out;
	} else if (v != RAFT_DEDUP_DUPLICATE) {
		res->err = ESTALE;
	}
	rc = dedup_record(&a, v);
	if (rc != 0)
		goto out;
	a.sb.applied_index = index;
	rc = write_super(&a);
	if (rc == 0)
		rc = fs_txn_commit(&a.txn);
	if (rc == 0) {
		s->sb = a.sb;
		if (a.orphaned != 0)
			ev[n_ev++] = (struct fs_store_event){
				.kind = FS_EVENT_ORPHANED, .ino = a.orphaned};
		if (a.dir_freed)
			ev[n_ev++] = (struct fs_store_event){
				.kind = FS_EVENT_DIR_FREED,
				.ino = a.dir_attr.ino,
				.attr = a.dir_attr};
		if (v == RAFT_DEDUP_NEW && visible_change(&cmd, &a.ev)) {
			ev[n_ev] = a.ev;
			ev[n_ev].kind = FS_EVENT_CHANGED;
			ev[n_ev].index = index;
			ev[n_ev].node = cmd.proposal.id.node;
			n_ev++;
		}
	}
out:
	pthread_rwlock_unlock(&s->lock);
	fs_txn_release(&a.txn);
	if (rc != 0) {
		memset(res, 0, sizeof(*res));
		a.n_lock_events = 0;
	}
	/* Told after the lock is released: the hook may read the store. */
	if (n_ev > 0 || a.n_lock_events > 0) {
		pthread_mutex_lock(&s->hook_lock);
		for (int i = 0; i < n_ev && s->hook != NULL; i++)
			s->hook(s->hook_ctx, &ev[i]);
		for (size_t i = 0; i < a.n_lock_events && s->hook != NULL; i++)
			s->hook(s->hook_ctx, &a.lock_events[i]);
		pthread_mutex_unlock(&s->hook_lock);
	}
	free(a.lock_events);
	return rc;
}

void fs_store_set_hook(struct fs_store *s,
		       void (*fn)(void *ctx, const struct fs_store_event *ev),
		       void *ctx)
{
	pthread_mutex_lock(&s->hook_lock);
	s->hook = fn;
	s->hook_ctx = ctx;
	pthread_mutex_unlock(&s->hook_lock);
}

int fs_store_apply_other(struct fs_store *s, uint64_t index)
{
	struct fs_apply a;
	int rc = fs_apply_begin(s, index, &a);

	return rc != 0 ? rc : fs_apply_finish(s, &a, 0);
}
