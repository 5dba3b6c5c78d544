/*
 * lazyfs's durability model: the current view in memory, the durable view
 * in the backing directory, and the rules that move the one into the other
 * (docs/POWER_LOSS.md).
 */
#define _GNU_SOURCE /* RENAME_NOREPLACE, syncfs */
#include "tests/lazyfs/state.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum lz_op_kind { OP_CREATE, OP_MKDIR, OP_UNLINK, OP_RMDIR, OP_RENAME };

/*
 * One namespace operation not yet durable. Node pointers stay valid: nodes
 * live until the state is released.
 */
struct lz_op {
	enum lz_op_kind kind;
	struct lz_node *node;   /* created, removed or moved */
	struct lz_node *dir;    /* its directory (the source of a rename) */
	char *name;
	struct lz_node *newdir; /* rename: the target directory */
	char *newname;
	struct lz_node *victim; /* rename: the node it replaced, or NULL */
	struct lz_op *next;
};

static void fail(struct lz_state *st, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* A backing operation failed: the two views no longer match, stop. */
static void fail(struct lz_state *st, const char *fmt, ...)
{
	va_list ap;

	if (st->failed)
		return;
	st->failed = true;
	va_start(ap, fmt);
	vsnprintf(st->err, sizeof(st->err), fmt, ap);
	va_end(ap);
	fprintf(stderr, "lazyfs: %s; every request fails with EIO now\n",
		st->err);
}

static void now(struct timespec *ts)
{
	clock_gettime(CLOCK_REALTIME, ts);
}

static struct lz_node *node_new(struct lz_state *st, bool is_dir, mode_t mode)
{
	struct lz_node *n;

	if (st->n_nodes == st->cap_nodes) {
		size_t cap = st->cap_nodes ? st->cap_nodes * 2 : 64;
		struct lz_node **nodes =
			realloc(st->nodes, cap * sizeof(*nodes));
		if (nodes == NULL)
			return NULL;
		st->nodes = nodes;
		st->cap_nodes = cap;
	}
	n = calloc(1, sizeof(*n));
	if (n == NULL)
		return NULL;
	n->ino = st->n_nodes;
	n->is_dir = is_dir;
	n->mode = mode;
	n->bfd = -1;
	now(&n->mtime);
	n->atime = n->ctime = n->mtime;
	st->nodes[st->n_nodes++] = n;
	return n;
}

struct lz_node *lz_node_get(struct lz_state *st, uint64_t ino)
{
	if (ino >= st->n_nodes)
		return NULL;
	return st->nodes[ino];
}

struct lz_node *lz_child(const struct lz_node *dir, const char *name)
{
	struct lz_node *c;

	for (c = dir->first_child; c != NULL; c = c->next_sibling)
		if (strcmp(c->name, name) == 0)
			return c;
	return NULL;
}

static void link_child(struct lz_node *dir, struct lz_node *n)
{
	n->parent = dir;
	n->next_sibling = dir->first_child;
	dir->first_child = n;
}

static void unlink_child(struct lz_node *n)
{
	struct lz_node **p;

	for (p = &n->parent->first_child; *p != NULL; p = &(*p)->next_sibling)
		if (*p == n) {
			*p = n->next_sibling;
			break;
		}
	n->parent = NULL;
	n->next_sibling = NULL;
}

void lz_node_stat(const struct lz_node *n, struct stat *stbuf)
{
	memset(stbuf, 0, sizeof(*stbuf));
	stbuf->st_ino = n->ino;
	stbuf->st_mode = n->mode;
	stbuf->st_nlink = n->is_dir ? 2 : (n->parent != NULL || n->ino ==
							   LZ_ROOT_INO);
	stbuf->st_uid = n->uid;
	stbuf->st_gid = n->gid;
	stbuf->st_size = n->is_dir ? 4096 : (off_t)n->size;
	stbuf->st_blksize = 4096;
	stbuf->st_blocks = (stbuf->st_size + 511) / 512;
	stbuf->st_atim = n->atime;
	stbuf->st_mtim = n->mtime;
	stbuf->st_ctim = n->ctime;
}

/* The path of n's durable entry relative to the backing root. */
static int dpath(const struct lz_node *n, char *buf, size_t size)
{
	const struct lz_node *p;
	size_t len = 0, need;

	if (!n->durable)
		return -ENOENT;
	if (n->dparent == NULL) {
		snprintf(buf, size, ".");
		return 0;
	}
	/* Measure, then fill from the end. */
	for (p = n; p->dparent != NULL; p = p->dparent)
		len += strlen(p->dname) + 1;
	if (len > size)
		return -ENAMETOOLONG;
	buf[len - 1] = '\0';
	need = len - 1;
	for (p = n; p->dparent != NULL; p = p->dparent) {
		size_t l = strlen(p->dname);
		need -= l;
		memcpy(buf + need, p->dname, l);
		if (need > 0)
			buf[--need] = '/';
	}
	return 0;
}

/* dpath(dir) + "/" + name. */
static int dpath_in(const struct lz_node *dir, const char *name, char *buf,
		    size_t size)
{
	char d[PATH_MAX];
	int rc = dpath(dir, d, sizeof(d));

	if (rc != 0)
		return rc;
	if ((size_t)snprintf(buf, size, "%s/%s", d, name) >= size)
		return -ENAMETOOLONG;
	return 0;
}

static int scan(struct lz_state *st, struct lz_node *dir, int dir_fd,
		char *err, size_t err_size)
{
	int fd = dup(dir_fd);
	DIR *d;
	struct dirent *de;
	int rc = 0;

	if (fd < 0 || (d = fdopendir(fd)) == NULL) {
		if (fd >= 0)
			close(fd);
		snprintf(err, err_size, "cannot read a backing directory: %s",
			 strerror(errno));
		return -errno;
	}
	while (rc == 0 && (de = readdir(d)) != NULL) {
		struct stat sb;
		struct lz_node *n;

		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		if (fstatat(dir_fd, de->d_name, &sb, AT_SYMLINK_NOFOLLOW) != 0) {
			rc = -errno;
			snprintf(err, err_size, "stat %s: %s", de->d_name,
				 strerror(errno));
			break;
		}
		if (!S_ISDIR(sb.st_mode) && !S_ISREG(sb.st_mode)) {
			fprintf(stderr, "lazyfs: skipping %s: only files and "
					"directories are supported\n",
				de->d_name);
			continue;
		}
		if (dir->ino == LZ_ROOT_INO &&
		    strcmp(de->d_name, LZ_CTL_NAME) == 0)
			continue;
		n = node_new(st, S_ISDIR(sb.st_mode), sb.st_mode);
		if (n == NULL || (n->name = strdup(de->d_name)) == NULL ||
		    (n->dname = strdup(de->d_name)) == NULL) {
			rc = -ENOMEM;
			snprintf(err, err_size, "out of memory");
			break;
		}
		n->uid = sb.st_uid;
		n->gid = sb.st_gid;
		n->atime = sb.st_atim;
		n->mtime = sb.st_mtim;
		n->ctime = sb.st_ctim;
		n->durable = true;
		n->dparent = dir;
		n->size = n->dsize = n->keep = (uint64_t)sb.st_size;
		link_child(dir, n);
		if (n->is_dir) {
			int sub = openat(dir_fd, de->d_name,
					 O_RDONLY | O_DIRECTORY | O_CLOEXEC);
			if (sub < 0) {
				rc = -errno;
				snprintf(err, err_size, "open %s: %s",
					 de->d_name, strerror(errno));
				break;
			}
			rc = scan(st, n, sub, err, err_size);
			close(sub);
		}
	}
	closedir(d);
	return rc;
}

int lz_state_init(struct lz_state *st, int root_fd, char *err, size_t err_size)
{
	struct lz_node *root;
	struct stat sb;

	memset(st, 0, sizeof(*st));
	st->root_fd = root_fd;
	if (fstat(root_fd, &sb) != 0) {
		snprintf(err, err_size, "stat backing dir: %s", strerror(errno));
		return -errno;
	}
	/* Inodes 0 and 2 (the control file) have no node. */
	if (node_new(st, false, 0) == NULL ||
	    (root = node_new(st, true, sb.st_mode)) == NULL ||
	    node_new(st, false, 0) == NULL) {
		snprintf(err, err_size, "out of memory");
		return -ENOMEM;
	}
	free(st->nodes[0]);
	free(st->nodes[2]);
	st->nodes[0] = st->nodes[2] = NULL;
	root->uid = sb.st_uid;
	root->gid = sb.st_gid;
	root->mtime = sb.st_mtim;
	root->durable = true;
	return scan(st, root, root_fd, err, err_size);
}

static void ext_free(struct lz_node *n)
{
	size_t i;

	for (i = 0; i < n->n_ext; i++)
		free(n->ext[i].data);
	n->n_ext = 0;
}

static void op_free(struct lz_op *op)
{
	free(op->name);
	free(op->newname);
	free(op);
}

void lz_state_release(struct lz_state *st)
{
	size_t i;

	while (st->ops_head != NULL) {
		struct lz_op *op = st->ops_head;
		st->ops_head = op->next;
		op_free(op);
	}
	for (i = 0; i < st->n_nodes; i++) {
		struct lz_node *n = st->nodes[i];
		if (n == NULL)
			continue;
		ext_free(n);
		free(n->ext);
		free(n->name);
		free(n->dname);
		if (n->bfd >= 0)
			close(n->bfd);
		free(n);
	}
	free(st->nodes);
	if (st->root_fd >= 0)
		close(st->root_fd);
	memset(st, 0, sizeof(*st));
	st->root_fd = -1;
}

static int op_add(struct lz_state *st, enum lz_op_kind kind,
		  struct lz_node *node, struct lz_node *dir, const char *name,
		  struct lz_node *newdir, const char *newname,
		  struct lz_node *victim)
{
	struct lz_op *op = calloc(1, sizeof(*op));

	if (op == NULL || (op->name = strdup(name)) == NULL ||
	    (newname != NULL && (op->newname = strdup(newname)) == NULL)) {
		if (op != NULL)
			op_free(op);
		return -ENOMEM;
	}
	op->kind = kind;
	op->node = node;
	op->dir = dir;
	op->newdir = newdir;
	op->victim = victim;
	if (st->ops_tail != NULL)
		st->ops_tail->next = op;
	else
		st->ops_head = op;
	st->ops_tail = op;
	st->n_ops++;
	return 0;
}

/*
 * n's durable entry is gone. A file still open keeps its backing fd (opened
 * before the entry went, see keep_open), so its durable bytes stay
 * readable, as an unlinked open file's are.
 */
static void lose_durable(struct lz_node *n)
{
	n->durable = false;
	n->dparent = NULL;
	free(n->dname);
	n->dname = NULL;
}

static int backing_fd(struct lz_state *st, struct lz_node *n);

/* Before n's durable entry goes: an open file needs its fd from now on. */
static int keep_open(struct lz_state *st, struct lz_node *n)
{
	if (n == NULL || n->is_dir || n->opens == 0)
		return 0;
	return backing_fd(st, n) < 0 ? -EIO : 0;
}

static int set_durable(struct lz_node *n, struct lz_node *dir,
		       const char *name)
{
	char *dname = strdup(name);

	if (dname == NULL)
		return -ENOMEM;
	free(n->dname);
	n->dname = dname;
	n->dparent = dir;
	n->durable = true;
	return 0;
}

/* Apply one operation to the backing directory (it is the oldest pending). */
static int op_apply(struct lz_state *st, struct lz_op *op)
{
	char path[PATH_MAX], newpath[PATH_MAX];
	int rc, fd;

	rc = dpath_in(op->dir, op->name, path, sizeof(path));
	if (rc != 0)
		return rc;
	switch (op->kind) {
	case OP_CREATE:
		fd = openat(st->root_fd, path,
			    O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC,
			    op->node->mode & 07777);
		if (fd < 0)
			return -errno;
		if (fchown(fd, op->node->uid, op->node->gid) != 0) {
			rc = -errno;
			close(fd);
			return rc;
		}
		op->node->bfd = fd;
		op->node->dsize = op->node->keep = 0;
		return set_durable(op->node, op->dir, op->name);
	case OP_MKDIR:
		if (mkdirat(st->root_fd, path, op->node->mode & 07777) != 0)
			return -errno;
		if (fchownat(st->root_fd, path, op->node->uid, op->node->gid,
			     AT_SYMLINK_NOFOLLOW) != 0)
			return -errno;
		return set_durable(op->node, op->dir, op->name);
	case OP_UNLINK:
	case OP_RMDIR:
		rc = keep_open(st, op->node);
		if (rc != 0)
			return rc;
		if (unlinkat(st->root_fd, path,
			     op->kind == OP_RMDIR ? AT_REMOVEDIR : 0) != 0)
			return -errno;
		lose_durable(op->node);
		return 0;
	case OP_RENAME:
		rc = dpath_in(op->newdir, op->newname, newpath,
			      sizeof(newpath));
		if (rc == 0)
			rc = keep_open(st, op->victim);
		if (rc != 0)
			return rc;
		if (renameat(st->root_fd, path, st->root_fd, newpath) != 0)
			return -errno;
		if (op->victim != NULL)
			lose_durable(op->victim);
		return set_durable(op->node, op->newdir, op->newname);
	}
	return -EINVAL;
}

/* Make the pending operations up to and including last durable, in order. */
static int commit_through(struct lz_state *st, const struct lz_op *last)
{
	while (last != NULL && st->ops_head != NULL) {
		struct lz_op *op = st->ops_head;
		bool done = op == last;
		int rc = op_apply(st, op);

		if (rc != 0) {
			fail(st, "applying a %d operation on %s to the backing "
				 "directory: %s",
			     (int)op->kind, op->name, strerror(-rc));
			return -EIO;
		}
		st->ops_head = op->next;
		if (st->ops_head == NULL)
			st->ops_tail = NULL;
		st->n_ops--;
		op_free(op);
		if (done)
			break;
	}
	return 0;
}

int lz_create(struct lz_state *st, struct lz_node *dir, const char *name,
	      mode_t mode, uid_t uid, gid_t gid, struct lz_node **out)
{
	struct lz_node *n;
	bool is_dir = S_ISDIR(mode);
	int rc;

	if (!dir->is_dir)
		return -ENOTDIR;
	if (strlen(name) > 255)
		return -ENAMETOOLONG;
	if (lz_child(dir, name) != NULL)
		return -EEXIST;
	if (dir->ino == LZ_ROOT_INO && strcmp(name, LZ_CTL_NAME) == 0)
		return -EEXIST;
	if (!is_dir && !S_ISREG(mode) && !S_ISSOCK(mode))
		return -EPERM; /* files, directories, sockets (POWER_LOSS.md) */
	n = node_new(st, is_dir, mode);
	if (n == NULL || (n->name = strdup(name)) == NULL)
		return -ENOMEM;
	n->uid = uid;
	n->gid = gid;
	if (S_ISSOCK(mode)) {
		/* In memory only: never durable, so no operation to replay. */
		link_child(dir, n);
		now(&dir->mtime);
		dir->ctime = dir->mtime;
		*out = n;
		return 0;
	}
	rc = op_add(st, is_dir ? OP_MKDIR : OP_CREATE, n, dir, name, NULL,
		    NULL, NULL);
	if (rc != 0)
		return rc;
	link_child(dir, n);
	now(&dir->mtime);
	dir->ctime = dir->mtime;
	*out = n;
	return 0;
}

int lz_unlink(struct lz_state *st, struct lz_node *dir, const char *name,
	      bool is_dir)
{
	struct lz_node *n = lz_child(dir, name);
	int rc;

	if (n == NULL)
		return -ENOENT;
	if (is_dir && !n->is_dir)
		return -ENOTDIR;
	if (!is_dir && n->is_dir)
		return -EISDIR;
	if (is_dir && n->first_child != NULL)
		return -ENOTEMPTY;
	if (S_ISSOCK(n->mode)) {
		unlink_child(n); /* never durable: nothing to replay */
		now(&dir->mtime);
		dir->ctime = n->ctime = dir->mtime;
		return 0;
	}
	rc = op_add(st, is_dir ? OP_RMDIR : OP_UNLINK, n, dir, name, NULL,
		    NULL, NULL);
	if (rc != 0)
		return rc;
	unlink_child(n);
	now(&dir->mtime);
	dir->ctime = n->ctime = dir->mtime;
	if (n->opens == 0)
		lz_forget_file(st, n);
	return 0;
}

int lz_rename(struct lz_state *st, struct lz_node *dir, const char *name,
	      struct lz_node *newdir, const char *newname, unsigned int flags)
{
	struct lz_node *n = lz_child(dir, name), *victim, *p;
	char *moved;
	int rc;

	if (flags & ~(unsigned int)RENAME_NOREPLACE)
		return -EINVAL; /* RENAME_EXCHANGE, WHITEOUT: not modelled */
	if (n == NULL)
		return -ENOENT;
	if (!newdir->is_dir)
		return -ENOTDIR;
	if (strlen(newname) > 255)
		return -ENAMETOOLONG;
	if (newdir->ino == LZ_ROOT_INO && strcmp(newname, LZ_CTL_NAME) == 0)
		return -EPERM;
	victim = lz_child(newdir, newname);
	if (victim == n)
		return 0;
	if (S_ISSOCK(n->mode) || (victim != NULL && S_ISSOCK(victim->mode)))
		return -EPERM; /* renaming sockets is not modelled */
	if (victim != NULL && (flags & RENAME_NOREPLACE))
		return -EEXIST;
	if (n->is_dir)
		for (p = newdir; p != NULL; p = p->parent)
			if (p == n)
				return -EINVAL;
	if (victim != NULL) {
		if (victim->is_dir && !n->is_dir)
			return -EISDIR;
		if (!victim->is_dir && n->is_dir)
			return -ENOTDIR;
		if (victim->first_child != NULL)
			return -ENOTEMPTY;
	}
	moved = strdup(newname);
	if (moved == NULL)
		return -ENOMEM;
	rc = op_add(st, OP_RENAME, n, dir, name, newdir, newname, victim);
	if (rc != 0) {
		free(moved);
		return rc;
	}
	if (victim != NULL) {
		unlink_child(victim);
		if (victim->opens == 0)
			lz_forget_file(st, victim);
	}
	unlink_child(n);
	free(n->name);
	n->name = moved;
	link_child(newdir, n);
	now(&dir->mtime);
	dir->ctime = newdir->mtime = newdir->ctime = n->ctime = dir->mtime;
	return 0;
}

void lz_drop_data(struct lz_state *st, struct lz_node *n)
{
	ext_free(n);
	if (st->last_writer == n)
		st->last_writer = NULL;
}

void lz_forget_file(struct lz_state *st, struct lz_node *n)
{
	lz_drop_data(st, n);
	if (n->bfd >= 0) {
		close(n->bfd);
		n->bfd = -1;
	}
}

/*
 * Append the write as the newest extent. The previous newest one is merged
 * into its predecessor when it continues it (appends stay one extent),
 * so that the newest write always stands alone for lz_tear_last_write.
 */
int lz_write(struct lz_state *st, struct lz_node *n, uint64_t off,
	     const char *buf, size_t len)
{
	struct lz_extent *e;

	if (len == 0)
		return 0;
	if (n->n_ext >= 2) {
		struct lz_extent *a = &n->ext[n->n_ext - 2];
		struct lz_extent *b = &n->ext[n->n_ext - 1];
		if (a->off + a->len == b->off) {
			if (a->len + b->len > a->cap) {
				size_t cap = (a->len + b->len) * 2;
				char *d = realloc(a->data, cap);
				if (d == NULL)
					return -ENOMEM;
				a->data = d;
				a->cap = cap;
			}
			memcpy(a->data + a->len, b->data, b->len);
			a->len += b->len;
			free(b->data);
			n->n_ext--;
		}
	}
	if (n->n_ext == n->cap_ext) {
		size_t cap = n->cap_ext ? n->cap_ext * 2 : 8;
		struct lz_extent *ext = realloc(n->ext, cap * sizeof(*ext));
		if (ext == NULL)
			return -ENOMEM;
		n->ext = ext;
		n->cap_ext = cap;
	}
	e = &n->ext[n->n_ext];
	e->data = malloc(len);
	if (e->data == NULL)
		return -ENOMEM;
	memcpy(e->data, buf, len);
	e->off = off;
	e->len = e->cap = len;
	n->n_ext++;
	if (off + len > n->size)
		n->size = off + len;
	now(&n->mtime);
	n->ctime = n->mtime;
	st->last_writer = n;
	return 0;
}

int lz_truncate(struct lz_state *st, struct lz_node *n, uint64_t size)
{
	size_t i, j = 0;

	if (n->is_dir)
		return -EISDIR;
	for (i = 0; i < n->n_ext; i++) {
		struct lz_extent *e = &n->ext[i];
		if (e->off >= size) {
			free(e->data);
			continue;
		}
		if (e->off + e->len > size)
			e->len = size - e->off;
		n->ext[j++] = *e;
	}
	n->n_ext = j;
	if (size < n->keep)
		n->keep = size;
	n->size = size;
	if (st->last_writer == n)
		st->last_writer = NULL; /* its newest write may be clipped */
	now(&n->mtime);
	n->ctime = n->mtime;
	return 0;
}

static int backing_fd(struct lz_state *st, struct lz_node *n)
{
	char path[PATH_MAX];
	int rc;

	if (n->bfd >= 0)
		return n->bfd;
	rc = dpath(n, path, sizeof(path));
	if (rc != 0)
		return rc;
	n->bfd = openat(st->root_fd, path, O_RDWR | O_CLOEXEC);
	return n->bfd >= 0 ? n->bfd : -errno;
}

long lz_read(struct lz_state *st, struct lz_node *n, uint64_t off, char *buf,
	     size_t len)
{
	uint64_t end;
	size_t i;

	if (n->is_dir)
		return -EISDIR;
	if (off >= n->size)
		return 0;
	if (len > n->size - off)
		len = n->size - off;
	end = off + len;
	memset(buf, 0, len);
	/* The durable bytes still valid, then the unsynced writes in order. */
	if (off < n->keep && (n->durable || n->bfd >= 0)) {
		size_t want = (size_t)((end < n->keep ? end : n->keep) - off);
		size_t got = 0;
		int fd = n->durable ? backing_fd(st, n) : n->bfd;
		if (fd < 0)
			return fd;
		while (got < want) {
			ssize_t r = pread(fd, buf + got, want - got,
					  (off_t)(off + got));
			if (r < 0)
				return -errno;
			if (r == 0)
				break;
			got += (size_t)r;
		}
	}
	for (i = 0; i < n->n_ext; i++) {
		const struct lz_extent *e = &n->ext[i];
		uint64_t s = e->off > off ? e->off : off;
		uint64_t t = e->off + e->len < end ? e->off + e->len : end;
		if (s < t)
			memcpy(buf + (s - off), e->data + (s - e->off),
			       (size_t)(t - s));
	}
	return (long)len;
}

static int pwrite_all(int fd, const char *buf, size_t len, uint64_t off)
{
	while (len > 0) {
		ssize_t w = pwrite(fd, buf, len, (off_t)off);
		if (w < 0)
			return -errno;
		buf += w;
		len -= (size_t)w;
		off += (uint64_t)w;
	}
	return 0;
}

/*
 * Write n's unsynced data to its durable file: the truncation, the writes
 * in order (the newest one cut to tear_len bytes when tear_len is not
 * SIZE_MAX), and, unless torn, the final size. No sync of the backing file
 * here: the backing disk does not crash, lazyfs does.
 */
static int apply_data(struct lz_state *st, struct lz_node *n, size_t tear_len)
{
	int fd = backing_fd(st, n);
	size_t i;
	int rc;

	if (fd < 0)
		return fd;
	if (n->keep < n->dsize && ftruncate(fd, (off_t)n->keep) != 0)
		return -errno;
	for (i = 0; i < n->n_ext; i++) {
		const struct lz_extent *e = &n->ext[i];
		size_t len = e->len;
		if (tear_len != SIZE_MAX && i == n->n_ext - 1)
			len = tear_len;
		rc = pwrite_all(fd, e->data, len, e->off);
		if (rc != 0)
			return rc;
	}
	if (tear_len == SIZE_MAX && ftruncate(fd, (off_t)n->size) != 0)
		return -errno;
	return 0;
}

/* The last pending operation that created n, or NULL. */
static const struct lz_op *creating_op(const struct lz_state *st,
				       const struct lz_node *n)
{
	const struct lz_op *op, *last = NULL;

	for (op = st->ops_head; op != NULL; op = op->next)
		if (op->node == n &&
		    (op->kind == OP_CREATE || op->kind == OP_MKDIR))
			last = op;
	return last;
}

static int flush_data(struct lz_state *st, struct lz_node *n, bool sync)
{
	int rc;

	if (!n->durable) {
		/* No entry on disk holds it: nothing can be made durable. */
		lz_drop_data(st, n);
		return 0;
	}
	if (n->n_ext == 0 && n->keep == n->dsize && n->size == n->dsize)
		return 0;
	rc = apply_data(st, n, SIZE_MAX);
	if (rc == 0 && sync && fdatasync(n->bfd) != 0)
		rc = -errno;
	if (rc != 0) {
		fail(st, "writing the data of inode %" PRIu64 ": %s", n->ino,
		     strerror(-rc));
		return -EIO;
	}
	lz_drop_data(st, n);
	n->dsize = n->keep = n->size;
	return 0;
}

int lz_fsync_file(struct lz_state *st, struct lz_node *n)
{
	int rc;

	/* fsync makes the entry that created the file durable (and, journal
	 * order, everything before it), then its data. */
	rc = commit_through(st, creating_op(st, n));
	if (rc != 0)
		return rc;
	return flush_data(st, n, true);
}

int lz_fsync_dir(struct lz_state *st, struct lz_node *dir)
{
	const struct lz_op *op, *last = NULL;
	char path[PATH_MAX];
	int rc, fd;

	/* Every operation on an entry of dir, and dir's own creation. */
	for (op = st->ops_head; op != NULL; op = op->next)
		if (op->dir == dir || op->newdir == dir ||
		    (op->node == dir && op->kind == OP_MKDIR))
			last = op;
	rc = commit_through(st, last);
	if (rc != 0 || dpath(dir, path, sizeof(path)) != 0)
		return rc;
	fd = openat(st->root_fd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || fsync(fd) != 0) {
		fail(st, "syncing backing directory %s: %s", path,
		     strerror(errno));
		if (fd >= 0)
			close(fd);
		return -EIO;
	}
	close(fd);
	return 0;
}

int lz_sync_all(struct lz_state *st)
{
	size_t i;
	int rc = commit_through(st, st->ops_tail);

	for (i = 0; rc == 0 && i < st->n_nodes; i++) {
		struct lz_node *n = st->nodes[i];
		if (n != NULL && !n->is_dir)
			rc = flush_data(st, n, false);
	}
	if (rc == 0 && syncfs(st->root_fd) != 0)
		rc = -errno;
	return rc;
}

int lz_tear_last_write(struct lz_state *st, uint64_t seed, char *desc,
		       size_t desc_size)
{
	struct lz_node *n = st->last_writer;
	const struct lz_extent *e;
	uint64_t x = seed + 0x9e3779b97f4a7c15ull;
	size_t k;
	int rc;

	snprintf(desc, desc_size, "no unsynced write to tear");
	if (n == NULL || n->n_ext == 0 || !n->durable)
		return 0;
	e = &n->ext[n->n_ext - 1];
	/* splitmix64: one draw, replayable from the seed */
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	x ^= x >> 31;
	k = (size_t)(x % e->len);
	rc = apply_data(st, n, k);
	if (rc != 0) {
		fail(st, "tearing a write of inode %" PRIu64 ": %s", n->ino,
		     strerror(-rc));
		return -EIO;
	}
	snprintf(desc, desc_size,
		 "tore the write of %zu bytes at offset %" PRIu64
		 " of %s to %zu bytes (seed %" PRIu64 ")",
		 e->len, e->off, n->dname, k, seed);
	return 1;
}
