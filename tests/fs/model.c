/* The reference model: each rule written the plain way, on plain arrays. */

#include "tests/fs/model.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

void model_init(struct model *m)
{
	memset(m, 0, sizeof(*m));
	if (raft_dedup_table_create(NULL, &m->dedup) != 0)
		abort();
}

static void inode_clear(struct model_inode *in)
{
	free(in->data);
	free(in->target);
	free(in->entries);
	for (size_t i = 0; i < in->n_xattrs; i++)
		free(in->xattrs[i].value);
	free(in->xattrs);
	memset(in, 0, sizeof(*in));
}

void model_release(struct model *m)
{
	for (size_t i = 0; i < m->cap; i++)
		inode_clear(&m->inodes[i]);
	free(m->inodes);
	raft_dedup_table_destroy(m->dedup);
	memset(m, 0, sizeof(*m));
}

struct model_inode *model_inode(struct model *m, uint64_t ino)
{
	if (ino == 0 || ino >= m->cap || !m->inodes[ino].used)
		return NULL;
	return &m->inodes[ino];
}

void model_attr(const struct model *m, const struct model_inode *in,
		struct fs_attr *attr)
{
	memset(attr, 0, sizeof(*attr));
	attr->ino = in->ino;
	attr->mode = in->mode;
	attr->nlink = in->nlink;
	attr->uid = in->uid;
	attr->gid = in->gid;
	attr->rdev = in->rdev;
	attr->size = in->size;
	attr->blksize = m->block_size;
	attr->atime = in->atime;
	attr->mtime = in->mtime;
	attr->ctime = in->ctime;
	attr->generation = in->generation;
}

struct model_entry *model_find(struct model_inode *dir, const char *name,
			       size_t len)
{
	for (size_t i = 0; i < dir->n_entries; i++)
		if (dir->entries[i].name_len == len &&
		    memcmp(dir->entries[i].name, name, len) == 0)
			return &dir->entries[i];
	return NULL;
}

static struct model_inode *new_inode(struct model *m, uint64_t ino)
{
	if (ino >= m->cap) {
		size_t cap = m->cap ? m->cap * 2 : 64;
		while (cap <= ino)
			cap *= 2;
		m->inodes = realloc(m->inodes, cap * sizeof(*m->inodes));
		assert(m->inodes != NULL);
		memset(m->inodes + m->cap, 0,
		       (cap - m->cap) * sizeof(*m->inodes));
		m->cap = cap;
	}
	memset(&m->inodes[ino], 0, sizeof(m->inodes[ino]));
	m->inodes[ino].used = true;
	m->inodes[ino].ino = ino;
	return &m->inodes[ino];
}

static void add_entry(struct model_inode *dir, const char *name, size_t len,
		      uint64_t ino)
{
	struct model_entry *e;

	dir->entries = realloc(dir->entries,
			       (dir->n_entries + 1) * sizeof(*dir->entries));
	assert(dir->entries != NULL);
	e = &dir->entries[dir->n_entries++];
	memcpy(e->name, name, len);
	e->name_len = len;
	e->ino = ino;
	e->seq = dir->next_seq++;
}

static void remove_entry(struct model_inode *dir, struct model_entry *e)
{
	size_t i = (size_t)(e - dir->entries);

	memmove(&dir->entries[i], &dir->entries[i + 1],
		(dir->n_entries - i - 1) * sizeof(*e));
	dir->n_entries--;
}

static bool time_before(struct fs_time a, struct fs_time b)
{
	return a.sec < b.sec || (a.sec == b.sec && a.nsec < b.nsec);
}

struct ctx {
	struct model *m;
	const struct fs_cmd *c;
	uint64_t index;
	struct fs_time now;
	struct fs_result *res;
};

static int get_dir(struct ctx *x, uint64_t ino, struct model_inode **out)
{
	struct model_inode *d = model_inode(x->m, ino);

	if (d == NULL)
		return ENOENT;
	if (!S_ISDIR(d->mode))
		return ENOTDIR;
	*out = d;
	return 0;
}

static void touch(struct ctx *x, struct model_inode *in)
{
	in->mtime = in->ctime = x->now;
}

static void kill_priv(struct model_inode *in)
{
	if (S_ISDIR(in->mode))
		return;
	in->mode &= ~(uint32_t)S_ISUID;
	if (in->mode & S_IXGRP)
		in->mode &= ~(uint32_t)S_ISGID;
}

static void result(struct ctx *x, const struct model_inode *in)
{
	x->res->ino = in->ino;
	model_attr(x->m, in, &x->res->attr);
}

static struct model_inode *make_inode(struct ctx *x, struct model_inode *dir,
				      uint32_t mode)
{
	uint64_t ino = x->m->next_ino++;
	uint64_t dino = dir->ino;
	struct model_inode *in = new_inode(x->m, ino);

	dir = &x->m->inodes[dino]; /* the array may have moved */
	in->mode = mode;
	in->uid = x->c->uid;
	in->gid = x->c->gid;
	if (dir->mode & S_ISGID) {
		in->gid = dir->gid;
		if (S_ISDIR(mode))
			in->mode |= S_ISGID;
	}
	in->nlink = S_ISDIR(mode) ? 2 : 1;
	in->generation = x->index;
	in->atime = in->mtime = in->ctime = x->now;
	if (S_ISDIR(mode)) {
		in->parent = dir->ino;
		in->next_seq = 3;
	}
	x->m->used_inodes++;
	return in;
}

static void free_inode(struct ctx *x, struct model_inode *in)
{
	inode_clear(in);
	x->m->used_inodes--;
}

static void drop_link(struct ctx *x, struct model_inode *in)
{
	const struct fs_cmd *c = x->c;

	in->nlink--;
	in->ctime = x->now;
	if (in->nlink > 0)
		return;
	in->n_holders = 0;
	/* A regular file is held by the members of the configuration: none
	 * in these stores, so the proposer stands in (fs/orphans.c). */
	if (S_ISREG(in->mode))
		in->holders[in->n_holders++] = c->proposal.id.node;
	if (c->n_holders == 0 && in->n_holders == 0) {
		free_inode(x, in);
		return;
	}
	for (uint32_t i = 0; i < c->n_holders; i++) {
		bool dup = false;
		for (uint32_t j = 0; j < in->n_holders; j++)
			dup = dup || in->holders[j] == c->holders[i];
		if (!dup)
			in->holders[in->n_holders++] = c->holders[i];
	}
}

static int m_create(struct ctx *x)
{
	const struct fs_cmd *c = x->c;
	struct model_inode *dir, *in;
	uint64_t dino;
	int rc;

	if ((rc = get_dir(x, c->ino, &dir)) != 0)
		return rc;
	if (c->name_len > x->m->name_max)
		return ENAMETOOLONG;
	if (model_find(dir, c->name, c->name_len) != NULL)
		return EEXIST;
	if (S_ISDIR(c->mode) && dir->nlink >= FS_LINK_MAX)
		return EMLINK;
	if (x->m->used_inodes >= x->m->max_inodes)
		return ENOSPC;
	dino = dir->ino;
	in = make_inode(x, dir, c->mode);
	dir = &x->m->inodes[dino];
	if (S_ISCHR(c->mode) || S_ISBLK(c->mode))
		in->rdev = c->rdev;
	if (S_ISDIR(c->mode))
		dir->nlink++;
	touch(x, dir);
	add_entry(dir, c->name, c->name_len, in->ino);
	result(x, in);
	return 0;
}

static int m_symlink(struct ctx *x)
{
	const struct fs_cmd *c = x->c;
	struct model_inode *dir, *in;
	uint64_t dino;
	int rc;

	if ((rc = get_dir(x, c->ino, &dir)) != 0)
		return rc;
	if (c->name_len > x->m->name_max || c->data_len > FS_SYMLINK_MAX)
		return ENAMETOOLONG;
	if (model_find(dir, c->name, c->name_len) != NULL)
		return EEXIST;
	if (x->m->used_inodes >= x->m->max_inodes)
		return ENOSPC;
	dino = dir->ino;
	in = make_inode(x, dir, S_IFLNK | 0777);
	dir = &x->m->inodes[dino];
	in->size = c->data_len;
	in->target = malloc(c->data_len);
	memcpy(in->target, c->data, c->data_len);
	in->target_len = c->data_len;
	touch(x, dir);
	add_entry(dir, c->name, c->name_len, in->ino);
	result(x, in);
	return 0;
}

static int m_link(struct ctx *x)
{
	const struct fs_cmd *c = x->c;
	struct model_inode *in = model_inode(x->m, c->ino), *dir;
	int rc;

	if (in == NULL)
		return ENOENT;
	if ((rc = get_dir(x, c->ino2, &dir)) != 0)
		return rc;
	if (c->name_len > x->m->name_max)
		return ENAMETOOLONG;
	if (model_find(dir, c->name, c->name_len) != NULL)
		return EEXIST;
	if (S_ISDIR(in->mode))
		return EPERM;
	if (in->nlink == 0)
		return ENOENT;
	if (in->nlink >= FS_LINK_MAX)
		return EMLINK;
	in->nlink++;
	in->ctime = x->now;
	touch(x, dir);
	add_entry(dir, c->name, c->name_len, in->ino);
	result(x, in);
	return 0;
}

static int m_unlink(struct ctx *x)
{
	const struct fs_cmd *c = x->c;
	struct model_inode *dir, *in;
	struct model_entry *e;
	int rc;

	if ((rc = get_dir(x, c->ino, &dir)) != 0)
		return rc;
	if (c->name_len > x->m->name_max)
		return ENAMETOOLONG;
	if ((e = model_find(dir, c->name, c->name_len)) == NULL)
		return ENOENT;
	in = model_inode(x->m, e->ino);
	if (S_ISDIR(in->mode))
		return EISDIR;
	touch(x, dir);
	remove_entry(dir, e);
	drop_link(x, in);
	result(x, dir);
	return 0;
}

static int m_rmdir(struct ctx *x)
{
	const struct fs_cmd *c = x->c;
	struct model_inode *dir, *in;
	struct model_entry *e;
	int rc;

	if ((rc = get_dir(x, c->ino, &dir)) != 0)
		return rc;
	if (c->name_len > x->m->name_max)
		return ENAMETOOLONG;
	if ((e = model_find(dir, c->name, c->name_len)) == NULL)
		return ENOENT;
	in = model_inode(x->m, e->ino);
	if (!S_ISDIR(in->mode))
		return ENOTDIR;
	if (in->n_entries > 0)
		return ENOTEMPTY;
	touch(x, dir);
	dir->nlink--;
	remove_entry(dir, e);
	free_inode(x, in);
	result(x, dir);
	return 0;
}

/* Whether directory ino is anc or below it. */
static bool within(struct model *m, uint64_t ino, uint64_t anc)
{
	for (;;) {
		if (ino == anc)
			return true;
		if (ino == FS_ROOT_INO)
			return false;
		ino = model_inode(m, ino)->parent;
	}
}

static int m_rename(struct ctx *x)
{
	const struct fs_cmd *c = x->c;
	struct model_inode *sp, *dp, *src, *dst = NULL;
	struct model_entry *se, *de;
	uint64_t src_ino;
	int rc;

	if ((c->flags & ~3u) != 0 || c->flags == 3)
		return EINVAL;
	if ((rc = get_dir(x, c->ino, &sp)) != 0)
		return rc;
	if ((rc = get_dir(x, c->ino2, &dp)) != 0)
		return rc;
	if (c->name_len > x->m->name_max || c->name2_len > x->m->name_max)
		return ENAMETOOLONG;
	if ((se = model_find(sp, c->name, c->name_len)) == NULL)
		return ENOENT;
	de = model_find(dp, c->name2, c->name2_len);
	if (de != NULL && (c->flags & FS_RENAME_NOREPLACE))
		return EEXIST;
	if (de == NULL && (c->flags & FS_RENAME_EXCHANGE))
		return ENOENT;
	src = model_inode(x->m, se->ino);
	if (de != NULL && de->ino == se->ino) {
		result(x, src);
		return 0;
	}
	if (de != NULL)
		dst = model_inode(x->m, de->ino);
	if (c->flags & FS_RENAME_EXCHANGE) {
		bool sd = S_ISDIR(src->mode), dd = S_ISDIR(dst->mode);
		if (dd && within(x->m, sp->ino, dst->ino))
			return EINVAL;
		if (sd && within(x->m, dp->ino, src->ino))
			return EINVAL;
		if (sp != dp && sd != dd) {
			if (sd) {
				sp->nlink--;
				dp->nlink++;
			} else {
				dp->nlink--;
				sp->nlink++;
			}
		}
		if (sd)
			src->parent = dp->ino;
		if (dd)
			dst->parent = sp->ino;
		src->ctime = dst->ctime = x->now;
		touch(x, sp);
		touch(x, dp);
		se->ino = dst->ino;
		de->ino = src->ino;
		result(x, src);
		return 0;
	}
	if (dst != NULL) {
		if (S_ISDIR(src->mode) && !S_ISDIR(dst->mode))
			return ENOTDIR;
		if (!S_ISDIR(src->mode) && S_ISDIR(dst->mode))
			return EISDIR;
		if (S_ISDIR(dst->mode) && dst->n_entries > 0)
			return ENOTEMPTY;
	}
	if (S_ISDIR(src->mode)) {
		if (within(x->m, dp->ino, src->ino))
			return EINVAL;
		if (sp != dp && dst == NULL && dp->nlink >= FS_LINK_MAX)
			return EMLINK;
	}
	if (dst != NULL) {
		remove_entry(dp, de);
		if (S_ISDIR(dst->mode)) {
			dp->nlink--;
			free_inode(x, dst);
		} else {
			drop_link(x, dst);
		}
	}
	/* The entry array of sp may have shifted: find it again. */
	src_ino = src->ino;
	se = model_find(sp, c->name, c->name_len);
	remove_entry(sp, se);
	add_entry(dp, c->name2, c->name2_len, src_ino);
	if (S_ISDIR(src->mode) && sp != dp) {
		sp->nlink--;
		dp->nlink++;
		src->parent = dp->ino;
	}
	src->ctime = x->now;
	touch(x, sp);
	touch(x, dp);
	result(x, src);
	return 0;
}

static void set_size(struct model_inode *in, uint64_t size)
{
	if (size > in->size) {
		in->data = realloc(in->data, size);
		assert(in->data != NULL);
		memset(in->data + in->size, 0, size - in->size);
	}
	in->size = size;
}

static int m_setattr(struct ctx *x)
{
	const struct fs_cmd *c = x->c;
	struct model_inode *in = model_inode(x->m, c->ino);

	if (in == NULL)
		return ENOENT;
	if (c->valid & FS_SET_SIZE) {
		if (S_ISDIR(in->mode))
			return EISDIR;
		if (!S_ISREG(in->mode))
			return EINVAL;
		if (c->size > FS_FILE_SIZE_MAX)
			return EFBIG;
	}
	if (c->valid & FS_SET_MODE)
		in->mode = (in->mode & S_IFMT) | c->mode;
	if (c->valid & FS_SET_UID)
		in->uid = c->set_uid;
	if (c->valid & FS_SET_GID)
		in->gid = c->set_gid;
	if ((c->valid & (FS_SET_UID | FS_SET_GID | FS_SET_SIZE)) &&
	    !(c->valid & FS_SET_MODE))
		kill_priv(in);
	if (c->valid & FS_SET_SIZE) {
		set_size(in, c->size);
		in->mtime = x->now;
	}
	if (c->valid & FS_SET_ATIME)
		in->atime = c->atime;
	if (c->valid & FS_SET_ATIME_NOW)
		in->atime = x->now;
	if (c->valid & FS_SET_MTIME)
		in->mtime = c->mtime;
	if (c->valid & FS_SET_MTIME_NOW)
		in->mtime = x->now;
	in->ctime = x->now;
	result(x, in);
	return 0;
}

static int data_inode(struct ctx *x, int other, struct model_inode **out)
{
	struct model_inode *in = model_inode(x->m, x->c->ino);

	if (in == NULL)
		return ENOENT;
	if (S_ISDIR(in->mode))
		return EISDIR;
	if (!S_ISREG(in->mode))
		return other;
	*out = in;
	return 0;
}

static int m_write(struct ctx *x)
{
	const struct fs_cmd *c = x->c;
	struct model_inode *in;
	int rc;

	if ((rc = data_inode(x, EINVAL, &in)) != 0)
		return rc;
	if (c->offset > FS_FILE_SIZE_MAX ||
	    c->data_len > FS_FILE_SIZE_MAX - c->offset)
		return EFBIG;
	if (c->data_len > 0) {
		if (c->offset + c->data_len > in->size)
			set_size(in, c->offset + c->data_len);
		memcpy(in->data + c->offset, c->data, c->data_len);
		in->mtime = in->ctime = x->now;
		kill_priv(in);
	}
	x->res->count = c->data_len;
	result(x, in);
	return 0;
}

static int m_fallocate(struct ctx *x)
{
	const struct fs_cmd *c = x->c;
	uint32_t mode = c->flags & ~FS_FALLOC_KEEP_SIZE;
	bool keep = c->flags & FS_FALLOC_KEEP_SIZE;
	struct model_inode *in;
	uint64_t end;
	int rc;

	if ((rc = data_inode(x, ENODEV, &in)) != 0)
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
	if (mode != 0 && c->offset < in->size)
		memset(in->data + c->offset, 0,
		       (end < in->size ? end : in->size) - c->offset);
	if (mode != FS_FALLOC_PUNCH_HOLE && !keep && end > in->size)
		set_size(in, end);
	in->mtime = in->ctime = x->now;
	kill_priv(in);
	result(x, in);
	return 0;
}

static struct model_xattr *find_xattr(struct model_inode *in,
				      const char *name, size_t len)
{
	for (size_t i = 0; i < in->n_xattrs; i++)
		if (in->xattrs[i].name_len == len &&
		    memcmp(in->xattrs[i].name, name, len) == 0)
			return &in->xattrs[i];
	return NULL;
}

static int m_setxattr(struct ctx *x)
{
	const struct fs_cmd *c = x->c;
	struct model_inode *in = model_inode(x->m, c->ino);
	struct model_xattr *xa;

	if (in == NULL)
		return ENOENT;
	if (c->flags == 3)
		return EINVAL;
	if (c->name_len > FS_XATTR_NAME_MAX)
		return ERANGE;
	xa = find_xattr(in, c->name, c->name_len);
	if (xa != NULL && (c->flags & FS_XATTR_CREATE))
		return EEXIST;
	if (xa == NULL && (c->flags & FS_XATTR_REPLACE))
		return ENODATA;
	if (xa == NULL) {
		in->xattrs = realloc(in->xattrs,
				     (in->n_xattrs + 1) * sizeof(*xa));
		xa = &in->xattrs[in->n_xattrs++];
		memcpy(xa->name, c->name, c->name_len);
		xa->name_len = c->name_len;
		xa->value = NULL;
	}
	free(xa->value);
	xa->value = malloc(c->data_len + 1);
	memcpy(xa->value, c->data, c->data_len);
	xa->len = c->data_len;
	in->ctime = x->now;
	result(x, in);
	return 0;
}

static int m_removexattr(struct ctx *x)
{
	const struct fs_cmd *c = x->c;
	struct model_inode *in = model_inode(x->m, c->ino);
	struct model_xattr *xa;
	size_t i;

	if (in == NULL)
		return ENOENT;
	if (c->name_len > FS_XATTR_NAME_MAX)
		return ERANGE;
	xa = find_xattr(in, c->name, c->name_len);
	if (xa == NULL)
		return ENODATA;
	free(xa->value);
	i = (size_t)(xa - in->xattrs);
	memmove(xa, xa + 1, (in->n_xattrs - i - 1) * sizeof(*xa));
	in->n_xattrs--;
	in->ctime = x->now;
	result(x, in);
	return 0;
}

static int m_release(struct ctx *x)
{
	const struct fs_cmd *c = x->c;
	struct model_inode *in = model_inode(x->m, c->ino);
	uint64_t node = c->proposal.id.node;
	uint32_t i;

	if (in == NULL || in->nlink > 0 || in->n_holders == 0)
		return ENOENT;
	for (i = 0; i < in->n_holders && in->holders[i] != node; i++)
		;
	if (i == in->n_holders)
		return ENOENT;
	result(x, in);
	in->holders[i] = in->holders[--in->n_holders];
	if (in->n_holders == 0)
		free_inode(x, in);
	return 0;
}

static int m_init(struct ctx *x)
{
	const struct fs_cmd *c = x->c;
	struct model_inode *root;

	if (x->m->formatted)
		return EEXIST;
	x->m->formatted = true;
	x->m->block_size = c->block_size;
	x->m->max_inodes = c->max_inodes;
	x->m->name_max = c->name_max;
	x->m->next_ino = 2;
	x->m->used_inodes = 1;
	root = new_inode(x->m, FS_ROOT_INO);
	root->mode = S_IFDIR | c->mode;
	root->uid = c->uid;
	root->gid = c->gid;
	root->nlink = 2;
	root->generation = x->index;
	root->atime = root->mtime = root->ctime = x->now;
	root->parent = FS_ROOT_INO;
	root->next_seq = 3;
	result(x, root);
	return 0;
}

static int run(struct ctx *x)
{
	switch (x->c->op) {
	case FS_OP_INIT:
		return m_init(x);
	case FS_OP_CREATE:
		return m_create(x);
	case FS_OP_SYMLINK:
		return m_symlink(x);
	case FS_OP_LINK:
		return m_link(x);
	case FS_OP_UNLINK:
		return m_unlink(x);
	case FS_OP_RMDIR:
		return m_rmdir(x);
	case FS_OP_RENAME:
		return m_rename(x);
	case FS_OP_SETATTR:
		return m_setattr(x);
	case FS_OP_WRITE:
		return m_write(x);
	case FS_OP_FALLOCATE:
		return m_fallocate(x);
	case FS_OP_SETXATTR:
		return m_setxattr(x);
	case FS_OP_REMOVEXATTR:
		return m_removexattr(x);
	case FS_OP_RELEASE:
		return m_release(x);
	case FS_OP_CHECK:
		return 0; /* a check point changes nothing */
	}
	abort();
}

void model_apply(struct model *m, uint64_t index, const struct fs_cmd *c,
		 struct fs_result *res)
{
	struct ctx x = {m, c, index, {0, 0}, res};
	struct fs_time min = m->last_time;
	const void *stored = NULL;
	size_t size = 0;
	enum raft_dedup_verdict v;

	memset(res, 0, sizeof(*res));
	m->applied = index;
	v = raft_dedup_table_check(m->dedup, &c->proposal, &stored, &size);
	if (v == RAFT_DEDUP_DUPLICATE) {
		assert(size == sizeof(*res));
		memcpy(res, stored, sizeof(*res));
	} else if (v != RAFT_DEDUP_NEW) {
		res->err = ESTALE;
	} else {
		int rc;
		min.nsec++;
		if (min.nsec == 1000000000u) {
			min.nsec = 0;
			min.sec++;
		}
		x.now = time_before(c->clock, min) ? min : c->clock;
		rc = run(&x);
		if (rc != 0) {
			memset(res, 0, sizeof(*res));
			res->err = rc;
		} else {
			m->last_time = x.now;
		}
	}
	if (raft_dedup_table_record(m->dedup, &c->proposal, v, res,
				    sizeof(*res)) != 0)
		abort();
}
