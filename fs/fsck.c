/*
 * The offline check of the fs store (fs_fsck_store, docs/FSCK.md).
 *
 * Memory stays bounded for huge trees: LevelDB is read in key order and
 * most invariants are checked by merging ranges that share their leading
 * inode number (inodes with their blocks, symlink target, xattrs, orphan
 * record and cookie entries) without remembering anything. Only the
 * entries pointing AT an inode arrive in another order (keyed by their
 * directory); they are counted per window of inodes (a sorted array of the
 * window's inode numbers and one counter slot each), one pass over the
 * entries per window. Directories (usually few) are kept in one sorted
 * index for reachability. Memory: ~40 bytes per window inode + ~24 bytes
 * per directory.
 */

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fs/codec.h"
#include "fs/fs.h"
#include "fs/fsck_locks.h"
#include "fs/store.h"
#include "fs/store_kv.h"

#define PROGRESS_EVERY 65536u
/* Paths are looked up (a scan of each parent directory) for this many
 * problems; later ones name the inode only. */
#define PATHS_MAX 1000u
#define PATH_DEPTH_MAX 512u
#define UNKNOWN_KEYS_MAX 100u

enum dir_state { DIR_UNKNOWN, DIR_ON_CHAIN, DIR_REACHABLE, DIR_UNREACHABLE };

/* One directory of the index (sorted by ino). */
struct dirx {
	uint64_t ino;
	uint64_t parent;  /* its parent field */
	uint8_t state;    /* enum dir_state */
	bool entry_ok;    /* an entry of its parent points at it */
};

/* Entries pointing at, and held by, one inode of the window. */
struct slot {
	uint64_t first_parent; /* directory of the first entry seen */
	uint32_t refs;         /* entries pointing at it */
	uint32_t subdirs;      /* its entries of type directory */
	uint64_t dentries;     /* its entries (by name) */
	uint8_t type;          /* type code of the first entry pointing at it */
	bool type_mixed;       /* entries disagree on the type */
	bool reached;          /* an entry of a reachable directory */
};

struct ck {
	const struct fs_fsck_options *opt;
	struct fs_fsck_summary *sum;
	struct fs_kv *kv;
	const struct fs_kv_view *view; /* NULL: the database as it is */
	bool own_kv;                   /* opened here, closed at the end */
	struct fs_fsck_fix fix;        /* the next problem's repair */
	struct fs_super sb;
	char *err;
	size_t err_size;
	uint64_t n_inodes;
	uint64_t max_ino;
	struct dirx *dirs;
	size_t n_dirs;
	size_t cap_dirs;
	/* The window: inode numbers [lo, hi), the ones present sorted. */
	uint64_t lo, hi;
	uint64_t *win;
	struct slot *slots;
	size_t n_win;
	bool first_pass;
	uint64_t block_bytes; /* every stored block byte */
	uint64_t paths;       /* paths looked up so far */
	uint64_t unknown_keys;
	uint64_t progress_done;
};

/* ---------------------------------------------------------------------- */
/* Reporting.                                                              */

static uint64_t rd64be(const uint8_t *p)
{
	return fs_rd64(p);
}

static uint32_t rd32be(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

static struct dirx *dir_find(const struct ck *c, uint64_t ino)
{
	size_t lo = 0, hi = c->n_dirs;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (c->dirs[mid].ino == ino)
			return &c->dirs[mid];
		if (c->dirs[mid].ino < ino)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* The name of the entry of dir pointing at ino, into name (NUL-ended). */
static bool entry_name(struct ck *c, uint64_t dir, uint64_t ino, char *name,
		       size_t size)
{
	struct fs_kv_iter *it = NULL;
	struct fs_key k;
	bool found = false;

	if (fs_kv_iter_new(c->kv, c->view, &it) != 0)
		return false;
	fs_key1(&k, FS_KEY_DENTRY, dir);
	for (fs_kv_iter_seek(it, k.b, k.len); fs_kv_iter_valid(it);
	     fs_kv_iter_next(it)) {
		size_t klen, vlen;
		const uint8_t *kb = fs_kv_iter_key(it, &klen);
		const uint8_t *v = fs_kv_iter_value(it, &vlen);
		if (klen < 9 || memcmp(kb, k.b, 9) != 0)
			break;
		if (vlen == 20 && rd64be(v + 8) == ino && klen > 9) {
			size_t n = klen - 9 < size - 1 ? klen - 9 : size - 1;
			memcpy(name, kb + 9, n);
			name[n] = '\0';
			found = true;
			break;
		}
	}
	fs_kv_iter_free(it);
	return found;
}

/* Prepend "/comp" to the path being built backwards at buf[*pos..]. */
static bool prepend(char *buf, size_t *pos, const char *comp)
{
	size_t n = strlen(comp);

	if (n + 1 > *pos)
		return false;
	*pos -= n;
	memcpy(buf + *pos, comp, n);
	buf[--*pos] = '/';
	return true;
}

/* The path of ino, reached through an entry of directory via (0: ino is a
 * directory, found through its parent field). false when unknown. */
static bool path_of(struct ck *c, uint64_t ino, uint64_t via, char *out,
		    size_t size)
{
	char buf[4096], name[FS_NAME_CODEC_MAX + 1];
	size_t pos = sizeof(buf) - 1;
	uint64_t cur = ino, parent = via;

	buf[pos] = '\0';
	if (ino == FS_ROOT_INO) {
		snprintf(out, size, "/");
		return true;
	}
	for (unsigned depth = 0; depth < PATH_DEPTH_MAX; depth++) {
		if (parent == 0) {
			const struct dirx *d = dir_find(c, cur);
			if (d == NULL)
				return false;
			parent = d->parent;
		}
		if (!entry_name(c, parent, cur, name, sizeof(name)) ||
		    !prepend(buf, &pos, name))
			return false;
		if (parent == FS_ROOT_INO) {
			snprintf(out, size, "%s", buf + pos);
			return true;
		}
		cur = parent;
		parent = 0;
	}
	return false;
}

static void vreport(struct ck *c, const char *code, uint64_t ino,
		    const char *path, const char *fmt, va_list ap)
	__attribute__((format(printf, 5, 0)));

static void vreport(struct ck *c, const char *code, uint64_t ino,
		    const char *path, const char *fmt, va_list ap)
{
	char detail[1024];
	struct fs_fsck_problem p = {"fs", code, ino, path, 0, detail, c->fix};

	memset(&c->fix, 0, sizeof(c->fix));
	vsnprintf(detail, sizeof(detail), fmt, ap);
	c->sum->problems++;
	if (c->opt->problem != NULL)
		c->opt->problem(c->opt->ctx, &p);
}

static void report(struct ck *c, const char *code, uint64_t ino,
		   uint64_t via, bool want_path, const char *fmt, ...)
	__attribute__((format(printf, 6, 7)));

/* One problem; its path is looked up when want_path (via: a directory
 * holding an entry for ino, or 0). */
static void report(struct ck *c, const char *code, uint64_t ino,
		   uint64_t via, bool want_path, const char *fmt, ...)
{
	char path[4096];
	bool found = false;
	va_list ap;

	if (want_path && ino != 0 && c->paths < PATHS_MAX) {
		c->paths++;
		found = path_of(c, ino, via, path, sizeof(path));
	}
	va_start(ap, fmt);
	vreport(c, code, ino, found ? path : NULL, fmt, ap);
	va_end(ap);
}

static void report_named(struct ck *c, const char *code, uint64_t ino,
			 uint64_t dir, const uint8_t *name, size_t nlen,
			 const char *fmt, ...)
	__attribute__((format(printf, 7, 8)));

/* One problem about the entry (dir, name): the path is dir's path and
 * name, even when the entry itself is what is missing. */
static void report_named(struct ck *c, const char *code, uint64_t ino,
			 uint64_t dir, const uint8_t *name, size_t nlen,
			 const char *fmt, ...)
{
	char path[4096];
	bool found = false;
	va_list ap;

	if (c->paths < PATHS_MAX) {
		c->paths++;
		found = path_of(c, dir, 0, path, sizeof(path));
		if (found) {
			size_t len = strlen(path);
			int n = snprintf(path + len, sizeof(path) - len, "%s%.*s",
					 dir == FS_ROOT_INO ? "" : "/",
					 (int)nlen, (const char *)name);
			found = n >= 0 && (size_t)n < sizeof(path) - len;
		}
	}
	va_start(ap, fmt);
	vreport(c, code, ino, found ? path : NULL, fmt, ap);
	va_end(ap);
}

static void progress(struct ck *c, const char *phase, uint64_t total)
{
	if (++c->progress_done % PROGRESS_EVERY == 0 &&
	    c->opt->progress != NULL)
		c->opt->progress(c->opt->ctx, phase, c->progress_done, total);
}

static int iter_error(struct ck *c, struct fs_kv_iter *it, const char *what)
{
	if (fs_kv_iter_status(it) == 0)
		return 0;
	snprintf(c->err, c->err_size,
		 "cannot read the fs store (%s): LevelDB reports corruption "
		 "or an I/O error", what);
	return -EIO;
}

/* ---------------------------------------------------------------------- */
/* Small validators.                                                       */

static uint8_t type_code(uint32_t mode)
{
	switch (mode & S_IFMT) {
	case S_IFREG: return 1;
	case S_IFDIR: return 2;
	case S_IFLNK: return 3;
	case S_IFCHR: return 4;
	case S_IFBLK: return 5;
	case S_IFIFO: return 6;
	case S_IFSOCK: return 7;
	default: return 0;
	}
}

static const char *type_name(uint8_t code)
{
	static const char *const names[] = {"unknown", "file", "directory",
					    "symlink", "char device",
					    "block device", "fifo", "socket"};
	return code < 8 ? names[code] : "unknown";
}

static bool name_ok(const struct ck *c, const uint8_t *name, size_t len)
{
	if (len == 0 || len > c->sb.name_max)
		return false;
	if ((len == 1 && name[0] == '.') ||
	    (len == 2 && name[0] == '.' && name[1] == '.'))
		return false;
	return memchr(name, '/', len) == NULL && memchr(name, '\0', len) == NULL;
}

static bool time_ok(struct fs_time t)
{
	return t.nsec < 1000000000u;
}

/* ---------------------------------------------------------------------- */
/* The superblock and the inode index.                                    */

static int load_super(struct ck *c)
{
	struct fs_key k = {{FS_KEY_SUPER}, 1};
	void *val = NULL;
	size_t len = 0;
	int rc = fs_kv_get(c->kv, c->view, k.b, k.len, &val, &len);

	if (rc == -ENOENT) {
		snprintf(c->err, c->err_size,
			 "the fs store has no superblock: not a raftfs store, "
			 "or damaged");
		return -EUCLEAN;
	}
	if (rc != 0) {
		snprintf(c->err, c->err_size,
			 "cannot read the fs store's superblock");
		return -EIO;
	}
	if (len >= 8 && rd32be(val) == FS_SUPER_MAGIC &&
	    rd32be((uint8_t *)val + 4) != FS_FORMAT_VERSION) {
		snprintf(c->err, c->err_size,
			 "fs store format version %" PRIu32
			 " is not known to this build (%u); use the raftfs "
			 "that wrote it",
			 rd32be((uint8_t *)val + 4), FS_FORMAT_VERSION);
		rc = -EPROTONOSUPPORT;
	} else if (fs_super_decode(val, len, &c->sb) != 0) {
		snprintf(c->err, c->err_size,
			 "the fs store's superblock is malformed (%zu bytes)",
			 len);
		rc = -EUCLEAN;
	}
	fs_kv_free(val);
	return rc;
}

static int dirs_push(struct ck *c, uint64_t ino, uint64_t parent)
{
	if (c->n_dirs == c->cap_dirs) {
		size_t cap = c->cap_dirs ? c->cap_dirs * 2 : 1024;
		struct dirx *d = realloc(c->dirs, cap * sizeof(*d));
		if (d == NULL) {
			snprintf(c->err, c->err_size, "out of memory");
			return -ENOMEM;
		}
		c->dirs = d;
		c->cap_dirs = cap;
	}
	c->dirs[c->n_dirs++] = (struct dirx){ino, parent, DIR_UNKNOWN, false};
	return 0;
}

/* Pass over the inodes: count them, find the largest number, index the
 * directories. Malformed records are reported in the merge pass. */
static int scan_inodes(struct ck *c)
{
	struct fs_kv_iter *it = NULL;
	uint8_t prefix = FS_KEY_INODE;
	int rc = fs_kv_iter_new(c->kv, c->view, &it);

	if (rc != 0)
		return rc;
	for (fs_kv_iter_seek(it, &prefix, 1); rc == 0 && fs_kv_iter_valid(it);
	     fs_kv_iter_next(it)) {
		size_t klen, vlen;
		const uint8_t *k = fs_kv_iter_key(it, &klen);
		const uint8_t *v = fs_kv_iter_value(it, &vlen);
		struct fs_inode in;
		if (klen == 0 || k[0] != FS_KEY_INODE)
			break;
		progress(c, "inodes", c->sb.used_inodes);
		if (klen != 9)
			continue;
		c->n_inodes++;
		c->max_ino = rd64be(k + 1);
		if (fs_inode_decode(v, vlen, &in) == 0 && S_ISDIR(in.mode))
			rc = dirs_push(c, rd64be(k + 1), in.parent);
	}
	if (rc == 0)
		rc = iter_error(c, it, "inodes");
	fs_kv_iter_free(it);
	c->sum->inodes = c->n_inodes;
	return rc;
}

/* ---------------------------------------------------------------------- */
/* Entries: each by name (D) checked alone and against its cookie (C)      */
/* record; directory entries marked in the index.                          */

static int check_entry_alone(struct ck *c, uint64_t dir, const uint8_t *name,
			     size_t nlen, const uint8_t *v, size_t vlen)
{
	struct fs_key k;
	void *cv = NULL;
	size_t clen = 0;
	uint64_t seq, ino;
	uint32_t type;
	int rc;

	if (vlen != 20) {
		report(c, "entry", dir, 0, true,
		       "entry '%.*s' of directory %" PRIu64
		       ": malformed record (%zu bytes)",
		       (int)nlen, (const char *)name, dir, vlen);
		return 0;
	}
	seq = rd64be(v);
	ino = rd64be(v + 8);
	type = rd32be(v + 16);
	if (!name_ok(c, name, nlen))
		report(c, "entry-name", dir, 0, true,
		       "entry of directory %" PRIu64
		       " has an invalid name (%zu bytes)", dir, nlen);
	if (ino == 0 || type_code(type) == 0 || (type & ~(uint32_t)S_IFMT))
		report_named(c, "entry", ino, dir, name, nlen,
		       "entry '%.*s' of directory %" PRIu64
		       ": invalid inode %" PRIu64 " or type 0%o",
		       (int)nlen, (const char *)name, dir, ino, type);
	fs_key2(&k, FS_KEY_COOKIE, dir, seq);
	rc = fs_kv_get(c->kv, c->view, k.b, k.len, &cv, &clen);
	if (rc == -ENOENT) {
		c->fix = (struct fs_fsck_fix){.kind = FS_FIX_ENTRY_COOKIE,
					      .dir = dir, .name = name,
					      .name_len = nlen};
		report_named(c, "entry-keys", ino, dir, name, nlen,
		       "entry '%.*s' of directory %" PRIu64 " (cookie %" PRIu64
		       ") has no record by cookie",
		       (int)nlen, (const char *)name, dir, seq);
		return 0;
	}
	if (rc != 0) {
		snprintf(c->err, c->err_size, "cannot read the fs store");
		return -EIO;
	}
	if (clen < 12 || rd64be(cv) != ino || rd32be((uint8_t *)cv + 8) != type ||
	    clen - 12 != nlen || memcmp((uint8_t *)cv + 12, name, nlen) != 0)
		report_named(c, "entry-keys", ino, dir, name, nlen,
		       "entry '%.*s' of directory %" PRIu64 " (cookie %" PRIu64
		       ") and its record by cookie disagree",
		       (int)nlen, (const char *)name, dir, seq);
	fs_kv_free(cv);
	return 0;
}

/* The window slot of ino, or NULL when ino has no inode record there. */
static struct slot *slot_find(const struct ck *c, uint64_t ino)
{
	size_t lo = 0, hi = c->n_win;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (c->win[mid] == ino)
			return &c->slots[mid];
		if (c->win[mid] < ino)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static bool in_window(const struct ck *c, uint64_t ino)
{
	return ino >= c->lo && ino < c->hi;
}

/* One entry (dir, name) -> (ino, type) counted into the window. */
static void count_entry(struct ck *c, uint64_t dir, const uint8_t *name,
			size_t nlen, uint64_t ino, uint32_t type)
{
	const struct dirx *dx = dir_find(c, dir);
	struct slot *s;

	if (in_window(c, ino)) {
		s = slot_find(c, ino);
		if (s == NULL) {
			c->fix = (struct fs_fsck_fix){
				.kind = FS_FIX_ENTRY_REMOVE, .ino = ino,
				.dir = dir, .name = name, .name_len = nlen};
			report(c, "dangling-entry", ino, dir, true,
			       "entry '%.*s' of directory %" PRIu64
			       " points at missing inode %" PRIu64,
			       (int)nlen, (const char *)name, dir, ino);
		} else {
			if (s->refs == 0) {
				s->first_parent = dir;
				s->type = type_code(type);
			} else if (s->type != type_code(type)) {
				s->type_mixed = true;
			}
			if (s->refs < UINT32_MAX)
				s->refs++;
			if (dx != NULL && dx->state == DIR_REACHABLE)
				s->reached = true;
		}
	}
	if (in_window(c, dir)) {
		s = slot_find(c, dir);
		if (s == NULL) {
			c->fix = (struct fs_fsck_fix){.kind = FS_FIX_FREE,
						      .ino = dir};
			report(c, "stray-entry", dir, 0, false,
			       "entry '%.*s' -> %" PRIu64
			       " belongs to missing directory %" PRIu64,
			       (int)nlen, (const char *)name, ino, dir);
			return;
		}
		s->dentries++;
		if (type == S_IFDIR && s->subdirs < UINT32_MAX)
			s->subdirs++;
	}
}

/*
 * One pass over every entry by name. The first pass checks each record
 * alone and against its cookie record and marks, in the directory index,
 * directories that an entry of their parent points at; every pass counts
 * the entries into the window.
 */
static int scan_entries(struct ck *c, bool mark_dirs)
{
	struct fs_kv_iter *it = NULL;
	uint8_t prefix = FS_KEY_DENTRY;
	int rc = fs_kv_iter_new(c->kv, c->view, &it);

	if (rc != 0)
		return rc;
	c->progress_done = 0;
	for (fs_kv_iter_seek(it, &prefix, 1); rc == 0 && fs_kv_iter_valid(it);
	     fs_kv_iter_next(it)) {
		size_t klen, vlen;
		const uint8_t *k = fs_kv_iter_key(it, &klen);
		const uint8_t *v = fs_kv_iter_value(it, &vlen);
		uint64_t dir, ino;
		if (klen == 0 || k[0] != FS_KEY_DENTRY)
			break;
		progress(c, "entries", c->sum->entries);
		if (klen <= 9) {
			if (mark_dirs)
				report(c, "bad-key", 0, 0, false,
				       "entry key of %zu bytes", klen);
			continue;
		}
		dir = rd64be(k + 1);
		if (mark_dirs) {
			c->sum->entries++;
			rc = check_entry_alone(c, dir, k + 9, klen - 9, v, vlen);
			if (rc != 0)
				break;
		}
		if (vlen != 20)
			continue;
		ino = rd64be(v + 8);
		if (mark_dirs && rd32be(v + 16) == S_IFDIR) {
			struct dirx *d = dir_find(c, ino);
			if (d != NULL && d->parent == dir)
				d->entry_ok = true;
		}
		if (!mark_dirs)
			count_entry(c, dir, k + 9, klen - 9, ino,
				    rd32be(v + 16));
	}
	if (rc == 0)
		rc = iter_error(c, it, "entries");
	fs_kv_iter_free(it);
	return rc;
}

/* ---------------------------------------------------------------------- */
/* Reachability of directories: the root, or an entry of a reachable       */
/* parent points at it (the parent field is checked against the entry).    */

static int reach_dirs(struct ck *c)
{
	size_t *chain = NULL, cap = 0;
	int rc = 0;

	for (size_t i = 0; i < c->n_dirs; i++) {
		size_t n = 0, cur = i;
		uint8_t result;
		for (;;) {
			struct dirx *d = &c->dirs[cur], *p;
			if (d->state == DIR_REACHABLE ||
			    d->state == DIR_UNREACHABLE) {
				result = d->state;
				break;
			}
			if (d->state == DIR_ON_CHAIN) { /* a cycle */
				result = DIR_UNREACHABLE;
				break;
			}
			if (d->ino == FS_ROOT_INO) {
				result = d->parent == FS_ROOT_INO
						 ? DIR_REACHABLE
						 : DIR_UNREACHABLE;
				d->state = result;
				break;
			}
			if (n == cap) {
				size_t ncap = cap ? cap * 2 : 64;
				size_t *nc = realloc(chain, ncap * sizeof(*nc));
				if (nc == NULL) {
					snprintf(c->err, c->err_size,
						 "out of memory");
					rc = -ENOMEM;
					goto out;
				}
				chain = nc;
				cap = ncap;
			}
			chain[n++] = cur;
			d->state = DIR_ON_CHAIN;
			p = dir_find(c, d->parent);
			if (!d->entry_ok || p == NULL) {
				result = DIR_UNREACHABLE;
				break;
			}
			cur = (size_t)(p - c->dirs);
		}
		while (n > 0)
			c->dirs[chain[--n]].state = result;
	}
out:
	free(chain);
	return rc;
}

/* ---------------------------------------------------------------------- */
/* The merge pass over one window: each inode with the records keyed by    */
/* its number.                                                              */

/* A cursor over one key range (prefix, then the inode number). */
struct cursor {
	struct fs_kv_iter *it;
	uint8_t prefix;
	const char *what; /* for messages */
};

static bool cur_valid(const struct cursor *cu)
{
	size_t klen;
	const uint8_t *k;

	if (!fs_kv_iter_valid(cu->it))
		return false;
	k = fs_kv_iter_key(cu->it, &klen);
	return klen > 0 && k[0] == cu->prefix;
}

/* The inode number of the cursor's key (UINT64_MAX when the key is too
 * short to hold one; such keys are reported and skipped by the caller). */
static uint64_t cur_ino(const struct cursor *cu)
{
	size_t klen;
	const uint8_t *k = fs_kv_iter_key(cu->it, &klen);

	return klen >= 9 ? rd64be(k + 1) : UINT64_MAX;
}

/* What the side records of one inode add up to. */
struct side {
	uint64_t blocks;
	uint64_t block_bytes;
	uint64_t data_end;  /* end of the last stored byte */
	bool has_target;
	uint64_t target_len;
	bool orphan;
	uint32_t holders;
	uint64_t cookies;
	uint64_t max_seq;
};

static void side_block(struct ck *c, uint64_t ino, const uint8_t *k,
		       size_t klen, size_t vlen, struct side *sd)
{
	uint64_t no;

	if (klen != 17 || vlen == 0 || vlen > c->sb.block_size) {
		report(c, "block", ino, 0, true,
		       "malformed block record of inode %" PRIu64
		       " (key %zu bytes, value %zu bytes)", ino, klen, vlen);
		return;
	}
	no = rd64be(k + 9);
	sd->blocks++;
	sd->block_bytes += vlen;
	if (no > (UINT64_MAX - vlen) / c->sb.block_size) {
		sd->data_end = UINT64_MAX;
		return;
	}
	if (no * c->sb.block_size + vlen > sd->data_end)
		sd->data_end = no * c->sb.block_size + vlen;
}

static void side_xattr(struct ck *c, uint64_t ino, size_t klen,
		       const uint8_t *v, size_t vlen)
{
	if (klen <= 9 || klen - 9 > FS_XATTR_NAME_MAX || vlen == 0 ||
	    v[0] != 1 || vlen - 1 > FS_XATTR_VALUE_MAX)
		report(c, "xattr", ino, 0, true,
		       "malformed xattr record of inode %" PRIu64
		       " (name %zu bytes, value %zu bytes)",
		       ino, klen > 9 ? klen - 9 : 0, vlen);
}

static void side_orphan(struct ck *c, uint64_t ino, size_t klen,
			const uint8_t *v, size_t vlen, struct side *sd)
{
	uint32_t n = vlen >= 4 ? rd32be(v) : 0;
	bool ok = klen == 9 && vlen >= 4 && n >= 1 && n <= FS_HOLDERS_MAX &&
		  vlen == 4 + 8 * (size_t)n;

	for (uint32_t i = 0; ok && i < n; i++) {
		uint64_t h = rd64be(v + 4 + 8 * i);
		if (h == 0 || (i > 0 && h <= rd64be(v + 4 + 8 * (i - 1))))
			ok = false;
	}
	if (!ok)
		report(c, "orphan-record", ino, 0, false,
		       "malformed orphan record of inode %" PRIu64
		       " (holders must be 1..%u node ids, ascending, unique)",
		       ino, FS_HOLDERS_MAX);
	sd->orphan = true;
	sd->holders = n;
}

/* A cookie record: well-formed, and its entry by name agrees. */
static int side_cookie(struct ck *c, uint64_t dir, const uint8_t *k,
		       size_t klen, const uint8_t *v, size_t vlen,
		       struct side *sd)
{
	struct fs_key dk;
	void *dv = NULL;
	size_t dlen = 0;
	uint64_t seq;
	int rc;

	if (klen != 17 || vlen <= 12 || vlen - 12 > FS_NAME_CODEC_MAX) {
		report(c, "entry-keys", dir, 0, true,
		       "malformed record by cookie in directory %" PRIu64
		       " (key %zu bytes, value %zu bytes)", dir, klen, vlen);
		return 0;
	}
	seq = rd64be(k + 9);
	sd->cookies++;
	if (seq > sd->max_seq)
		sd->max_seq = seq;
	fs_key_name(&dk, FS_KEY_DENTRY, dir, (const char *)v + 12, vlen - 12);
	rc = fs_kv_get(c->kv, c->view, dk.b, dk.len, &dv, &dlen);
	if (rc == -ENOENT) {
		c->fix = (struct fs_fsck_fix){.kind = FS_FIX_ENTRY_NAME,
					      .dir = dir, .cookie = seq};
		report_named(c, "entry-keys", rd64be(v), dir, v + 12, vlen - 12,
		       "record by cookie %" PRIu64 " of directory %" PRIu64
		       " names '%.*s' -> %" PRIu64 ", which has no entry by name",
		       seq, dir, (int)(vlen - 12), (const char *)v + 12,
		       rd64be(v));
		return 0;
	}
	if (rc != 0) {
		snprintf(c->err, c->err_size, "cannot read the fs store");
		return -EIO;
	}
	/* A disagreement is reported from the entry's side. */
	fs_kv_free(dv);
	return 0;
}

/* Report the side record at the cursor as belonging to no inode. */
static void stray(struct ck *c, const struct cursor *cu)
{
	size_t klen;
	const uint8_t *k = fs_kv_iter_key(cu->it, &klen);

	if (klen < 9) {
		report(c, "bad-key", 0, 0, false, "%s key of %zu bytes",
		       cu->what, klen);
		return;
	}
	c->fix = (struct fs_fsck_fix){.kind = FS_FIX_FREE, .ino = rd64be(k + 1)};
	report(c, "stray", rd64be(k + 1), 0, false,
	       "%s of missing inode %" PRIu64, cu->what, rd64be(k + 1));
}

/* Consume the records of cu with an inode number below ino as strays. */
static void drain(struct ck *c, struct cursor *cu, uint64_t ino)
{
	while (cur_valid(cu) && cur_ino(cu) < ino) {
		if (cu->prefix == FS_KEY_BLOCK) {
			size_t vlen;
			fs_kv_iter_value(cu->it, &vlen);
			c->block_bytes += vlen;
		}
		stray(c, cu);
		fs_kv_iter_next(cu->it);
	}
}

enum { CU_BLOCK, CU_TARGET, CU_XATTR, CU_ORPHAN, CU_COOKIE, CU_N };

/* Gather the side records of inode ino. */
static int gather(struct ck *c, struct cursor *cu, uint64_t ino,
		  struct side *sd)
{
	int rc = 0;

	memset(sd, 0, sizeof(*sd));
	for (int i = 0; i < CU_N; i++) {
		drain(c, &cu[i], ino);
		while (rc == 0 && cur_valid(&cu[i]) && cur_ino(&cu[i]) == ino) {
			size_t klen, vlen;
			const uint8_t *k = fs_kv_iter_key(cu[i].it, &klen);
			const uint8_t *v = fs_kv_iter_value(cu[i].it, &vlen);
			switch (i) {
			case CU_BLOCK:
				c->block_bytes += vlen;
				side_block(c, ino, k, klen, vlen, sd);
				break;
			case CU_TARGET:
				if (klen != 9)
					report(c, "bad-key", ino, 0, false,
					       "symlink target key of %zu bytes",
					       klen);
				sd->has_target = true;
				sd->target_len = vlen;
				break;
			case CU_XATTR:
				side_xattr(c, ino, klen, v, vlen);
				break;
			case CU_ORPHAN:
				side_orphan(c, ino, klen, v, vlen, sd);
				break;
			default:
				rc = side_cookie(c, ino, k, klen, v, vlen, sd);
				break;
			}
			fs_kv_iter_next(cu[i].it);
		}
	}
	return rc;
}

static void check_dir(struct ck *c, const struct fs_inode *in,
		      const struct slot *s, const struct side *sd)
{
	const struct dirx *d = dir_find(c, in->ino);
	uint64_t want_nlink = 2 + (uint64_t)s->subdirs;
	const struct fs_fsck_fix links = {.kind = FS_FIX_LINKS,
					  .ino = in->ino,
					  .seen_nlink = in->nlink};

	if (in->nlink != want_nlink)
		c->fix = links;
	if (in->nlink != want_nlink)
		report(c, "nlink", in->ino, 0, true,
		       "directory has nlink %" PRIu32 ", expected %" PRIu64
		       " (2 + %" PRIu32 " subdirectories)",
		       in->nlink, want_nlink, s->subdirs);
	if (in->entries != s->dentries || in->entries != sd->cookies)
		c->fix = links;
	if (in->entries != s->dentries || in->entries != sd->cookies)
		report(c, "dir-entries", in->ino, 0, true,
		       "directory counts %" PRIu64 " entries; %" PRIu64
		       " by name and %" PRIu64 " by cookie are stored",
		       in->entries, s->dentries, sd->cookies);
	if (in->next_seq < 3 || (sd->cookies > 0 && in->next_seq <= sd->max_seq))
		c->fix = links;
	if (in->next_seq < 3 || (sd->cookies > 0 && in->next_seq <= sd->max_seq))
		report(c, "dir-cookie", in->ino, 0, true,
		       "directory's next cookie %" PRIu64
		       " is not above its largest (%" PRIu64 ") and 2",
		       in->next_seq, sd->max_seq);
	if (in->ino == FS_ROOT_INO) {
		if (in->parent != FS_ROOT_INO || s->refs != 0)
			report(c, "root", in->ino, 0, false,
			       "the root's parent is %" PRIu64
			       " and %" PRIu32 " entries point at it",
			       in->parent, s->refs);
		return;
	}
	if (s->refs != 1 || s->first_parent != in->parent)
		report(c, "dir-links", in->ino, s->refs ? s->first_parent : 0,
		       s->refs > 0,
		       "directory has %" PRIu32 " entries pointing at it "
		       "(the first in directory %" PRIu64 "), expected "
		       "exactly one, in its parent %" PRIu64, s->refs,
		       s->refs ? s->first_parent : 0, in->parent);
	if (d == NULL || d->state != DIR_REACHABLE) {
		/* Only the top of an unreachable subtree moves: no entry
		 * points at it (cycles are not repaired). */
		if (s->refs == 0)
			c->fix = (struct fs_fsck_fix){
				.kind = FS_FIX_LOST_FOUND, .ino = in->ino,
				.seen_nlink = in->nlink,
				.seen_ctime = in->ctime};
		report(c, "unreachable", in->ino, 0, false,
		       "directory is not reachable from the root");
	}
}

static void check_nondir(struct ck *c, const struct fs_inode *in,
			 const struct slot *s, const struct side *sd)
{
	uint64_t via = s->refs ? s->first_parent : 0;
	bool path = s->refs > 0;

	/* No entry at all: /lost+found gives it one (below). */
	if (in->nlink != s->refs && s->refs > 0)
		c->fix = (struct fs_fsck_fix){.kind = FS_FIX_LINKS,
					      .ino = in->ino,
					      .seen_nlink = in->nlink,
					      .want_nlink = s->refs};
	if (in->nlink != s->refs)
		report(c, "nlink", in->ino, via, path,
		       "%s has nlink %" PRIu32 " but %" PRIu32
		       " entries point at it",
		       type_name(type_code(in->mode)), in->nlink, s->refs);
	if ((in->nlink == 0) != sd->orphan)
		report(c, "orphan", in->ino, via, path,
		       sd->orphan ? "inode in the orphan table has nlink %" PRIu32
				  : "inode with nlink %" PRIu32
				    " is not in the orphan table",
		       in->nlink);
	if (!s->reached && !sd->orphan && s->refs == 0)
		c->fix = (struct fs_fsck_fix){.kind = FS_FIX_LOST_FOUND,
					      .ino = in->ino,
					      .seen_nlink = in->nlink,
					      .seen_ctime = in->ctime};
	if (!s->reached && !sd->orphan)
		report(c, "unreachable", in->ino, 0, false,
		       "%s is neither reachable from the root nor an orphan"
		       " (%" PRIu32 " entries point at it)",
		       type_name(type_code(in->mode)), s->refs);
	if (in->parent != 0 || in->next_seq != 0 || in->entries != 0)
		report(c, "type", in->ino, via, path,
		       "non-directory with directory fields (parent %" PRIu64
		       ", next cookie %" PRIu64 ", entries %" PRIu64 ")",
		       in->parent, in->next_seq, in->entries);
}

static void check_inode(struct ck *c, const struct fs_inode *in,
			const struct slot *s, const struct side *sd)
{
	uint8_t t = type_code(in->mode);
	uint64_t via = s->refs ? s->first_parent : 0;
	bool path = s->refs > 0 || t == 2;

	if (in->ino >= c->sb.next_ino)
		c->fix = (struct fs_fsck_fix){.kind = FS_FIX_COUNTERS};
	if (in->ino >= c->sb.next_ino)
		report(c, "next-ino", in->ino, via, path,
		       "inode number is not below the superblock's next "
		       "inode number %" PRIu64, c->sb.next_ino);
	if (in->generation > c->sb.applied_index)
		report(c, "generation", in->ino, via, path,
		       "created at log index %" PRIu64
		       ", beyond the applied index %" PRIu64,
		       in->generation, c->sb.applied_index);
	if (!time_ok(in->atime) || !time_ok(in->mtime) || !time_ok(in->ctime))
		report(c, "time", in->ino, via, path,
		       "a time has nanoseconds of 10^9 or more");
	if (s->refs > 0 && (s->type_mixed || s->type != t))
		report(c, "entry-type", in->ino, via, path,
		       "entries give the type %s, the inode is a %s",
		       type_name(s->type), type_name(t));
	if (t != 1 && sd->blocks > 0)
		report(c, "type", in->ino, via, path,
		       "%s has %" PRIu64 " data blocks", type_name(t),
		       sd->blocks);
	if (t != 3 && sd->has_target)
		report(c, "type", in->ino, via, path,
		       "%s has a symlink target", type_name(t));
	if (t == 2 && sd->orphan)
		report(c, "orphan", in->ino, via, path,
		       "directory in the orphan table");
	if (t != 2 && sd->cookies > 0)
		report(c, "type", in->ino, via, path,
		       "%s holds %" PRIu64 " directory entries", type_name(t),
		       sd->cookies);
	if (t != 2 && s->dentries > 0 && sd->cookies == 0)
		report(c, "type", in->ino, via, path,
		       "%s holds %" PRIu64 " directory entries", type_name(t),
		       s->dentries);
	switch (t) {
	case 1:
		if (in->alloc_bytes != sd->block_bytes ||
		    sd->data_end > in->size)
			c->fix = (struct fs_fsck_fix){.kind = FS_FIX_DATA,
						      .ino = in->ino};
		if (in->alloc_bytes != sd->block_bytes)
			report(c, "alloc-bytes", in->ino, via, path,
			       "file counts %" PRIu64 " stored bytes, its "
			       "blocks hold %" PRIu64,
			       in->alloc_bytes, sd->block_bytes);
		if (sd->data_end > in->size)
			c->fix = (struct fs_fsck_fix){.kind = FS_FIX_DATA,
						      .ino = in->ino};
		if (sd->data_end > in->size)
			report(c, "data-beyond-size", in->ino, via, path,
			       "data stored up to byte %" PRIu64
			       ", beyond the size %" PRIu64,
			       sd->data_end, in->size);
		if (in->size > FS_FILE_SIZE_MAX)
			report(c, "size", in->ino, via, path,
			       "size %" PRIu64 " above the largest file",
			       in->size);
		break;
	case 3:
		if (!sd->has_target)
			report(c, "symlink", in->ino, via, path,
			       "symlink without a target");
		else if (sd->target_len != in->size ||
			 sd->target_len > FS_SYMLINK_MAX)
			report(c, "symlink", in->ino, via, path,
			       "symlink size %" PRIu64 ", target %" PRIu64
			       " bytes", in->size, sd->target_len);
		break;
	default:
		if (in->size != 0)
			report(c, "size", in->ino, via, path,
			       "%s has size %" PRIu64, type_name(t), in->size);
		break;
	}
	if (t != 1 && in->alloc_bytes != 0)
		report(c, "alloc-bytes", in->ino, via, path,
		       "%s counts %" PRIu64 " stored bytes", type_name(t),
		       in->alloc_bytes);
	if (t == 2)
		check_dir(c, in, s, sd);
	else
		check_nondir(c, in, s, sd);
}

static int cursors_open(struct ck *c, struct cursor *cu)
{
	static const struct {
		uint8_t prefix;
		const char *what;
	} kinds[CU_N] = {
		{FS_KEY_BLOCK, "data block"},
		{FS_KEY_SYMLINK, "symlink target"},
		{FS_KEY_XATTR, "xattr"},
		{FS_KEY_ORPHAN, "orphan record"},
		{FS_KEY_COOKIE, "entry by cookie"},
	};
	for (int i = 0; i < CU_N; i++) {
		struct fs_key k;
		int rc = fs_kv_iter_new(c->kv, c->view, &cu[i].it);
		if (rc != 0)
			return rc;
		cu[i].prefix = kinds[i].prefix;
		cu[i].what = kinds[i].what;
		fs_key1(&k, kinds[i].prefix, c->lo);
		fs_kv_iter_seek(cu[i].it, k.b, k.len);
	}
	return 0;
}

/* The merge over the window's inodes. */
static int merge_window(struct ck *c)
{
	struct cursor cu[CU_N] = {{NULL, 0, NULL}};
	struct fs_kv_iter *it = NULL;
	struct fs_key k;
	size_t idx = 0;
	int rc = fs_kv_iter_new(c->kv, c->view, &it);

	if (rc == 0)
		rc = cursors_open(c, cu);
	fs_key1(&k, FS_KEY_INODE, c->lo);
	c->progress_done = 0;
	for (fs_kv_iter_seek(it, k.b, k.len); rc == 0 && fs_kv_iter_valid(it);
	     fs_kv_iter_next(it)) {
		size_t klen, vlen;
		const uint8_t *kb = fs_kv_iter_key(it, &klen);
		const uint8_t *v = fs_kv_iter_value(it, &vlen);
		struct fs_inode in;
		struct side sd;
		uint64_t ino;
		if (klen == 0 || kb[0] != FS_KEY_INODE)
			break;
		if (klen != 9) {
			if (c->first_pass)
				report(c, "bad-key", 0, 0, false,
				       "inode key of %zu bytes", klen);
			continue;
		}
		ino = rd64be(kb + 1);
		if (ino >= c->hi)
			break;
		progress(c, "inodes", c->n_inodes);
		rc = gather(c, cu, ino, &sd);
		if (rc != 0)
			break;
		while (idx < c->n_win && c->win[idx] < ino)
			idx++;
		if (fs_inode_decode(v, vlen, &in) != 0) {
			report(c, "inode", ino, 0, false,
			       "malformed inode record (%zu bytes)", vlen);
			continue;
		}
		if (in.ino != ino) {
			report(c, "inode", ino, 0, false,
			       "inode record under key %" PRIu64
			       " names inode %" PRIu64, ino, in.ino);
			continue;
		}
		if (ino == 0)
			continue;
		check_inode(c, &in, &c->slots[idx], &sd);
	}
	if (rc == 0)
		rc = iter_error(c, it, "inodes");
	/* Side records up to the window's end have no inode. */
	for (int i = 0; i < CU_N && rc == 0; i++) {
		drain(c, &cu[i], c->hi);
		if (c->hi == UINT64_MAX)
			while (cur_valid(&cu[i])) { /* ino UINT64_MAX, or short */
				stray(c, &cu[i]);
				fs_kv_iter_next(cu[i].it);
			}
		rc = iter_error(c, cu[i].it, cu[i].what);
	}
	for (int i = 0; i < CU_N; i++)
		fs_kv_iter_free(cu[i].it);
	fs_kv_iter_free(it);
	return rc;
}

/* Load the next window: up to w inode numbers from c->lo. */
static int load_window(struct ck *c, uint64_t w)
{
	struct fs_kv_iter *it = NULL;
	struct fs_key k;
	int rc = fs_kv_iter_new(c->kv, c->view, &it);

	if (rc != 0)
		return rc;
	c->n_win = 0;
	c->hi = UINT64_MAX;
	fs_key1(&k, FS_KEY_INODE, c->lo);
	for (fs_kv_iter_seek(it, k.b, k.len); fs_kv_iter_valid(it);
	     fs_kv_iter_next(it)) {
		size_t klen;
		const uint8_t *kb = fs_kv_iter_key(it, &klen);
		if (klen == 0 || kb[0] != FS_KEY_INODE)
			break;
		if (klen != 9)
			continue;
		if (c->n_win == w) {
			c->hi = rd64be(kb + 1);
			break;
		}
		c->win[c->n_win++] = rd64be(kb + 1);
	}
	rc = iter_error(c, it, "inodes");
	fs_kv_iter_free(it);
	memset(c->slots, 0, c->n_win * sizeof(*c->slots));
	return rc;
}

static int check_windows(struct ck *c)
{
	uint64_t w = c->opt->window_inodes ? c->opt->window_inodes
					   : FS_FSCK_WINDOW;
	int rc;

	if (w > c->n_inodes + 1)
		w = c->n_inodes + 1;
	c->win = malloc(w * sizeof(*c->win));
	c->slots = malloc(w * sizeof(*c->slots));
	if (c->win == NULL || c->slots == NULL) {
		snprintf(c->err, c->err_size, "out of memory");
		return -ENOMEM;
	}
	c->lo = 0;
	c->first_pass = true;
	for (;;) {
		rc = load_window(c, w);
		if (rc == 0) {
			c->sum->passes++;
			rc = scan_entries(c, false);
		}
		if (rc == 0)
			rc = merge_window(c);
		if (rc != 0 || c->hi == UINT64_MAX)
			return rc;
		c->lo = c->hi;
		c->first_pass = false;
	}
}

/* ---------------------------------------------------------------------- */
/* The duplicate table, unknown keys, the superblock's counters.           */

static int check_dedup(struct ck *c)
{
	struct fs_kv_iter *pi = NULL, *ri = NULL;
	uint8_t pp = FS_KEY_DEDUP, rp = FS_KEY_RESULT;
	int rc = fs_kv_iter_new(c->kv, c->view, &pi);

	if (rc == 0)
		rc = fs_kv_iter_new(c->kv, c->view, &ri);
	if (rc != 0)
		goto out;
	fs_kv_iter_seek(pi, &pp, 1);
	for (fs_kv_iter_seek(ri, &rp, 1); fs_kv_iter_valid(ri);
	     fs_kv_iter_next(ri)) {
		size_t klen, vlen, pklen = 0, pvlen = 0;
		const uint8_t *k = fs_kv_iter_key(ri, &klen);
		const uint8_t *v = fs_kv_iter_value(ri, &vlen);
		const uint8_t *pk = NULL, *pv = NULL;
		struct fs_result res;
		uint64_t node, seq;
		if (klen == 0 || k[0] != FS_KEY_RESULT)
			break;
		if (klen != 17) {
			report(c, "dedup", 0, 0, false,
			       "duplicate-table result key of %zu bytes", klen);
			continue;
		}
		node = rd64be(k + 1);
		seq = rd64be(k + 9);
		/* The proposer record of node (P keys sorted by node). */
		while (fs_kv_iter_valid(pi)) {
			pk = fs_kv_iter_key(pi, &pklen);
			if (pklen == 0 || pk[0] != FS_KEY_DEDUP ||
			    (pklen == 9 && rd64be(pk + 1) >= node))
				break;
			fs_kv_iter_next(pi); /* below node, or malformed */
		}
		if (fs_kv_iter_valid(pi)) {
			pk = fs_kv_iter_key(pi, &pklen);
			pv = fs_kv_iter_value(pi, &pvlen);
		}
		if (pk == NULL || pklen != 9 || pk[0] != FS_KEY_DEDUP ||
		    rd64be(pk + 1) != node)
			report(c, "dedup", 0, 0, false,
			       "result of proposal (node %" PRIu64 ", seq %" PRIu64
			       ") without a proposer record", node, seq);
		else if (pvlen == 16 && seq < rd64be(pv + 8))
			report(c, "dedup", 0, 0, false,
			       "result of proposal (node %" PRIu64 ", seq %" PRIu64
			       ") below the low-water mark %" PRIu64
			       " (should have been evicted)",
			       node, seq, rd64be(pv + 8));
		if (seq == 0 || fs_result_decode(v, vlen, &res) != 0)
			report(c, "dedup", 0, 0, false,
			       "malformed result of proposal (node %" PRIu64
			       ", seq %" PRIu64 ")", node, seq);
	}
	rc = iter_error(c, ri, "duplicate table");
	if (rc != 0)
		goto out;
	for (fs_kv_iter_seek(pi, &pp, 1); fs_kv_iter_valid(pi);
	     fs_kv_iter_next(pi)) {
		size_t klen, vlen;
		const uint8_t *k = fs_kv_iter_key(pi, &klen);
		const uint8_t *v = fs_kv_iter_value(pi, &vlen);
		if (klen == 0 || k[0] != FS_KEY_DEDUP)
			break;
		if (klen != 9 || rd64be(k + 1) == 0 || vlen != 16 ||
		    rd64be(v) == 0)
			report(c, "dedup", 0, 0, false,
			       "malformed proposer record (key %zu bytes, "
			       "value %zu bytes)", klen, vlen);
	}
	rc = iter_error(c, pi, "duplicate table");
out:
	fs_kv_iter_free(pi);
	fs_kv_iter_free(ri);
	return rc;
}

/* The configuration's members (M, docs/FS_STORE.md): absent, or 1..16
 * node ids, ascending, unique, non-zero. */
static int check_members(struct ck *c)
{
	struct fs_key k = {{FS_KEY_MEMBERS}, 1};
	uint8_t *val = NULL;
	size_t len = 0;
	uint32_t n;
	bool ok;
	int rc = fs_kv_get(c->kv, c->view, k.b, k.len, (void **)&val, &len);

	if (rc == -ENOENT)
		return 0;
	if (rc != 0) {
		snprintf(c->err, c->err_size, "cannot read the members record");
		return -EIO;
	}
	n = len >= 4 ? rd32be(val) : 0;
	ok = len >= 4 && n >= 1 && n <= FS_HOLDERS_MAX && len == 4 + 8 * (size_t)n;
	for (uint32_t i = 0; ok && i < n; i++) {
		uint64_t id = rd64be(val + 4 + 8 * i);
		ok = id != 0 && (i == 0 || id > rd64be(val + 4 + 8 * (i - 1)));
	}
	if (!ok)
		report(c, "members", 0, 0, false,
		       "malformed members record (%zu bytes)", len);
	fs_kv_free(val);
	return 0;
}

static void lock_problem(void *ctx, uint64_t ino, const char *detail)
{
	report(ctx, "lock", ino, 0, ino != 0, "%s", detail);
}

static bool prefix_known(uint8_t b)
{
	return memchr("BCDEIKLMOPRSX", b, 13) != NULL;
}

static int check_unknown_keys(struct ck *c)
{
	struct fs_kv_iter *it = NULL;
	int rc = fs_kv_iter_new(c->kv, c->view, &it);
	uint8_t sk[2] = {FS_KEY_SUPER, 0};
	unsigned b = 0;

	if (rc != 0)
		return rc;
	while (b < 256) {
		uint8_t start = (uint8_t)b;
		if (prefix_known(start)) {
			b++;
			continue;
		}
		fs_kv_iter_seek(it, &start, 1);
		while (fs_kv_iter_valid(it)) {
			size_t klen;
			const uint8_t *k = fs_kv_iter_key(it, &klen);
			if (klen > 0 && prefix_known(k[0]))
				break;
			if (c->unknown_keys++ < UNKNOWN_KEYS_MAX)
				report(c, "unknown-key", 0, 0, false,
				       "unknown key (%zu bytes, first 0x%02x)",
				       klen, klen ? k[0] : 0);
			fs_kv_iter_next(it);
		}
		if (!fs_kv_iter_valid(it))
			break;
		size_t klen;
		b = (unsigned)fs_kv_iter_key(it, &klen)[0] + 1;
	}
	/* "S" is the only key of its prefix. */
	fs_kv_iter_seek(it, sk, 2);
	if (fs_kv_iter_valid(it)) {
		size_t klen;
		const uint8_t *k = fs_kv_iter_key(it, &klen);
		if (klen > 0 && k[0] == FS_KEY_SUPER)
			report(c, "unknown-key",
			       0, 0, false, "unknown key (%zu bytes) after the "
			       "superblock", klen);
	}
	rc = iter_error(c, it, "keys");
	fs_kv_iter_free(it);
	return rc;
}

static void check_counters(struct ck *c)
{
	const struct fs_super *sb = &c->sb;

	const struct fs_fsck_fix counters = {.kind = FS_FIX_COUNTERS};

	if (sb->used_inodes != c->n_inodes)
		c->fix = counters;
	if (sb->used_inodes != c->n_inodes)
		report(c, "counter", 0, 0, false,
		       "superblock counts %" PRIu64 " inodes, %" PRIu64
		       " are stored", sb->used_inodes, c->n_inodes);
	if (sb->used_bytes != c->block_bytes)
		c->fix = counters;
	if (sb->used_bytes != c->block_bytes)
		report(c, "counter", 0, 0, false,
		       "superblock counts %" PRIu64 " stored bytes, the blocks "
		       "hold %" PRIu64, sb->used_bytes, c->block_bytes);
	if (c->n_inodes > 0 && sb->next_ino <= c->max_ino)
		c->fix = counters;
	if (c->n_inodes > 0 && sb->next_ino <= c->max_ino)
		report(c, "next-ino", c->max_ino, 0, false,
		       "superblock's next inode number %" PRIu64
		       " is not above inode %" PRIu64, sb->next_ino, c->max_ino);
	if (sb->used_inodes > sb->max_inodes)
		report(c, "counter", 0, 0, false,
		       "%" PRIu64 " inodes exceed the limit %" PRIu64,
		       sb->used_inodes, sb->max_inodes);
	if (sb->used_bytes > sb->capacity_bytes)
		report(c, "counter", 0, 0, false,
		       "%" PRIu64 " stored bytes exceed the capacity %" PRIu64,
		       sb->used_bytes, sb->capacity_bytes);
	if (!time_ok(sb->last_time))
		report(c, "time", 0, 0, false,
		       "superblock's last time has nanoseconds of 10^9 or more");
	if (dir_find(c, FS_ROOT_INO) == NULL)
		report(c, "root", FS_ROOT_INO, 0, false,
		       "no root directory (inode 1)");
}

/* An unformatted store holds its superblock and nothing else. */
static int check_unformatted(struct ck *c)
{
	struct fs_kv_iter *it = NULL;
	int rc = fs_kv_iter_new(c->kv, c->view, &it);

	if (rc != 0)
		return rc;
	for (fs_kv_iter_first(it); fs_kv_iter_valid(it); fs_kv_iter_next(it)) {
		size_t klen;
		const uint8_t *k = fs_kv_iter_key(it, &klen);
		if (klen == 1 && k[0] == FS_KEY_SUPER)
			continue;
		report(c, "unformatted", 0, 0, false,
		       "unformatted store holds a record (key %zu bytes, "
		       "first 0x%02x)", klen, klen ? k[0] : 0);
		break;
	}
	rc = iter_error(c, it, "keys");
	fs_kv_iter_free(it);
	return rc;
}

/* ---------------------------------------------------------------------- */

/* Open the database CURRENT names, creating nothing. */
static int open_db(struct ck *c, const char *fs_dir)
{
	char path[4096], text[64];
	unsigned long long gen;
	char *end;
	FILE *f;
	int n;

	n = snprintf(path, sizeof(path), "%s/CURRENT", fs_dir);
	if (n < 0 || (size_t)n >= sizeof(path)) {
		snprintf(c->err, c->err_size, "path too long: %s", fs_dir);
		return -ENAMETOOLONG;
	}
	f = fopen(path, "re");
	if (f == NULL) {
		int e = errno;
		snprintf(c->err, c->err_size, "no fs store at %s: %s", fs_dir,
			 strerror(e));
		return e == ENOENT ? -ENOENT : -EIO;
	}
	if (fgets(text, sizeof(text), f) == NULL)
		text[0] = '\0';
	fclose(f);
	errno = 0;
	gen = strncmp(text, "store-", 6) == 0 ? strtoull(text + 6, &end, 10)
					      : 0;
	if (gen == 0 || errno != 0 || (*end != '\n' && *end != '\0')) {
		snprintf(c->err, c->err_size,
			 "%s does not name a store (store-<generation>)", path);
		return -EUCLEAN;
	}
	snprintf(path, sizeof(path), "%s/store-%llu", fs_dir, gen);
	if (fs_kv_open(path, false, &c->kv) != 0) {
		snprintf(c->err, c->err_size,
			 "cannot open the fs store %s (LevelDB refused it: "
			 "missing, corrupt, or the node is running)", path);
		return -EIO;
	}
	return 0;
}

/* Every check, over c->kv (and c->view) once opened. */
static int run_checks(struct ck *c)
{
	int rc = load_super(c);

	if (rc != 0)
		return rc;
	c->sum->formatted = c->sb.formatted;
	c->sum->applied_index = c->sb.applied_index;
	if (!c->sb.formatted)
		return check_unformatted(c);
	rc = scan_inodes(c);
	if (rc == 0)
		rc = scan_entries(c, true);
	if (rc == 0)
		rc = reach_dirs(c);
	if (rc == 0)
		rc = check_windows(c);
	if (rc == 0)
		rc = check_dedup(c);
	if (rc == 0)
		rc = check_members(c);
	if (rc == 0)
		rc = fs_fsck_locks(c->kv, c->view, lock_problem, c, c->err,
				   c->err_size);
	if (rc == 0)
		rc = check_unknown_keys(c);
	if (rc == 0)
		check_counters(c);
	return rc;
}

static void ck_init(struct ck *c, const struct fs_fsck_options *opt,
		    struct fs_fsck_summary *sum, char *err, size_t err_size)
{
	memset(c, 0, sizeof(*c));
	c->opt = opt;
	c->sum = sum;
	c->err = err;
	c->err_size = err_size;
}

static void ck_free(struct ck *c)
{
	free(c->win);
	free(c->slots);
	free(c->dirs);
	if (c->own_kv)
		fs_kv_close(c->kv);
}

int fs_fsck_store(const char *fs_dir, const struct fs_fsck_options *opt,
		  struct fs_fsck_summary *sum, char *err, size_t err_size)
{
	struct ck c;
	int rc;

	ck_init(&c, opt, sum, err, err_size);
	rc = open_db(&c, fs_dir);
	if (rc == 0) {
		c.own_kv = true;
		rc = run_checks(&c);
	}
	ck_free(&c);
	return rc;
}

int fs_fsck_view(struct fs_check_view *v, const struct fs_fsck_options *opt,
		 struct fs_fsck_summary *sum, char *err, size_t err_size)
{
	struct ck c;
	int rc;

	ck_init(&c, opt, sum, err, err_size);
	fs_check_view_kv(v, &c.kv, &c.view);
	rc = run_checks(&c);
	ck_free(&c);
	return rc;
}
