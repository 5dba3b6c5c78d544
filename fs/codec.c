/* Explicit encoding of the fs store's keys and records. */

#include "fs/codec.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>

void fs_be64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--) {
		p[i] = (uint8_t)v;
		v >>= 8;
	}
}

uint64_t fs_rd64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = (v << 8) | p[i];
	return v;
}

static uint8_t *wspace(struct fs_wbuf *w, size_t n)
{
	uint8_t *p = NULL;

	if (w->buf != NULL) {
		if (w->len + n > w->cap || w->overflow) {
			w->overflow = true;
			return NULL;
		}
		p = w->buf + w->len;
	}
	w->len += n;
	return p;
}

void fs_put_u8(struct fs_wbuf *w, uint8_t v)
{
	uint8_t *p = wspace(w, 1);

	if (p != NULL)
		*p = v;
}

void fs_put_u32(struct fs_wbuf *w, uint32_t v)
{
	uint8_t *p = wspace(w, 4);

	if (p != NULL) {
		p[0] = (uint8_t)(v >> 24);
		p[1] = (uint8_t)(v >> 16);
		p[2] = (uint8_t)(v >> 8);
		p[3] = (uint8_t)v;
	}
}

void fs_put_u64(struct fs_wbuf *w, uint64_t v)
{
	uint8_t *p = wspace(w, 8);

	if (p != NULL)
		fs_be64(p, v);
}

void fs_put_bytes(struct fs_wbuf *w, const void *src, size_t n)
{
	uint8_t *p = wspace(w, n);

	if (p != NULL && n > 0)
		memcpy(p, src, n);
}

void fs_put_time(struct fs_wbuf *w, struct fs_time t)
{
	fs_put_u64(w, (uint64_t)t.sec);
	fs_put_u32(w, t.nsec);
}

const uint8_t *fs_get_bytes(struct fs_rbuf *r, size_t n)
{
	const uint8_t *p;

	if (r->bad || n > r->len - r->off) {
		r->bad = true;
		return NULL;
	}
	p = r->p + r->off;
	r->off += n;
	return p;
}

uint8_t fs_get_u8(struct fs_rbuf *r)
{
	const uint8_t *p = fs_get_bytes(r, 1);

	return p != NULL ? p[0] : 0;
}

uint32_t fs_get_u32(struct fs_rbuf *r)
{
	const uint8_t *p = fs_get_bytes(r, 4);

	if (p == NULL)
		return 0;
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

uint64_t fs_get_u64(struct fs_rbuf *r)
{
	const uint8_t *p = fs_get_bytes(r, 8);

	return p != NULL ? fs_rd64(p) : 0;
}

struct fs_time fs_get_time(struct fs_rbuf *r)
{
	struct fs_time t;

	t.sec = (int64_t)fs_get_u64(r);
	t.nsec = fs_get_u32(r);
	if (t.nsec >= 1000000000u)
		r->bad = true;
	return t;
}

bool fs_rbuf_done(const struct fs_rbuf *r)
{
	return !r->bad && r->off == r->len;
}

bool fs_time_before(struct fs_time t1, struct fs_time t2)
{
	return t1.sec < t2.sec || (t1.sec == t2.sec && t1.nsec < t2.nsec);
}

void fs_key1(struct fs_key *k, uint8_t prefix, uint64_t a)
{
	k->b[0] = prefix;
	fs_be64(k->b + 1, a);
	k->len = 9;
}

void fs_key2(struct fs_key *k, uint8_t prefix, uint64_t a, uint64_t b)
{
	fs_key1(k, prefix, a);
	fs_be64(k->b + 9, b);
	k->len = 17;
}

void fs_key_name(struct fs_key *k, uint8_t prefix, uint64_t a,
		 const char *name, size_t name_len)
{
	fs_key1(k, prefix, a);
	if (name_len > FS_NAME_CODEC_MAX)
		name_len = FS_NAME_CODEC_MAX;
	memcpy(k->b + 9, name, name_len);
	k->len = 9 + name_len;
}

size_t fs_super_encode(const struct fs_super *sb, uint8_t *buf)
{
	struct fs_wbuf w = {buf, FS_SUPER_BYTES, 0, false};

	fs_put_u32(&w, FS_SUPER_MAGIC);
	fs_put_u32(&w, sb->version);
	fs_put_u8(&w, sb->formatted ? 1 : 0);
	fs_put_bytes(&w, sb->fs_id, sizeof(sb->fs_id));
	fs_put_u32(&w, sb->block_size);
	fs_put_u64(&w, sb->capacity_bytes);
	fs_put_u64(&w, sb->max_inodes);
	fs_put_u32(&w, sb->name_max);
	fs_put_u32(&w, sb->feature_level);
	fs_put_u64(&w, sb->next_ino);
	fs_put_time(&w, sb->last_time);
	fs_put_u64(&w, sb->applied_index);
	fs_put_u64(&w, sb->used_bytes);
	fs_put_u64(&w, sb->used_inodes);
	return w.len;
}

static bool is_pow2(uint32_t v)
{
	return v != 0 && (v & (v - 1)) == 0;
}

int fs_super_decode(const uint8_t *p, size_t len, struct fs_super *sb)
{
	struct fs_rbuf r = {p, len, 0, false};
	struct fs_super d;
	uint8_t formatted;

	memset(&d, 0, sizeof(d));
	if (fs_get_u32(&r) != FS_SUPER_MAGIC)
		return -EUCLEAN;
	d.version = fs_get_u32(&r);
	if (d.version != FS_FORMAT_VERSION)
		return -EUCLEAN;
	formatted = fs_get_u8(&r);
	memcpy(d.fs_id, fs_get_bytes(&r, 16) ?: d.fs_id, 16);
	d.block_size = fs_get_u32(&r);
	d.capacity_bytes = fs_get_u64(&r);
	d.max_inodes = fs_get_u64(&r);
	d.name_max = fs_get_u32(&r);
	d.feature_level = fs_get_u32(&r);
	d.next_ino = fs_get_u64(&r);
	d.last_time = fs_get_time(&r);
	d.applied_index = fs_get_u64(&r);
	d.used_bytes = fs_get_u64(&r);
	d.used_inodes = fs_get_u64(&r);
	if (!fs_rbuf_done(&r) || formatted > 1)
		return -EUCLEAN;
	d.formatted = formatted == 1;
	if (d.formatted &&
	    (!is_pow2(d.block_size) || d.block_size < FS_BLOCK_SIZE_MIN ||
	     d.block_size > FS_BLOCK_SIZE_MAX || d.name_max == 0 ||
	     d.name_max > FS_NAME_MAX || d.next_ino <= FS_ROOT_INO))
		return -EUCLEAN;
	*sb = d;
	return 0;
}

size_t fs_inode_encode(const struct fs_inode *in, uint8_t *buf)
{
	struct fs_wbuf w = {buf, FS_INODE_BYTES, 0, false};

	fs_put_u64(&w, in->ino);
	fs_put_u32(&w, in->mode);
	fs_put_u32(&w, in->uid);
	fs_put_u32(&w, in->gid);
	fs_put_u32(&w, in->nlink);
	fs_put_u64(&w, in->size);
	fs_put_u64(&w, in->rdev);
	fs_put_u64(&w, in->generation);
	fs_put_time(&w, in->atime);
	fs_put_time(&w, in->mtime);
	fs_put_time(&w, in->ctime);
	fs_put_u64(&w, in->parent);
	fs_put_u64(&w, in->next_seq);
	fs_put_u64(&w, in->entries);
	fs_put_u64(&w, in->alloc_bytes);
	return w.len;
}

static bool mode_type_known(uint32_t mode)
{
	switch (mode & S_IFMT) {
	case S_IFREG:
	case S_IFDIR:
	case S_IFLNK:
	case S_IFIFO:
	case S_IFSOCK:
	case S_IFCHR:
	case S_IFBLK:
		return true;
	}
	return false;
}

int fs_inode_decode(const uint8_t *p, size_t len, struct fs_inode *in)
{
	struct fs_rbuf r = {p, len, 0, false};
	struct fs_inode d;

	d.ino = fs_get_u64(&r);
	d.mode = fs_get_u32(&r);
	d.uid = fs_get_u32(&r);
	d.gid = fs_get_u32(&r);
	d.nlink = fs_get_u32(&r);
	d.size = fs_get_u64(&r);
	d.rdev = fs_get_u64(&r);
	d.generation = fs_get_u64(&r);
	d.atime = fs_get_time(&r);
	d.mtime = fs_get_time(&r);
	d.ctime = fs_get_time(&r);
	d.parent = fs_get_u64(&r);
	d.next_seq = fs_get_u64(&r);
	d.entries = fs_get_u64(&r);
	d.alloc_bytes = fs_get_u64(&r);
	if (!fs_rbuf_done(&r) || d.ino == 0 || !mode_type_known(d.mode) ||
	    (d.mode & ~(uint32_t)(S_IFMT | 07777)) != 0)
		return -EUCLEAN;
	*in = d;
	return 0;
}

size_t fs_result_encode(const struct fs_result *res, uint8_t *buf)
{
	struct fs_wbuf w = {buf, FS_RESULT_BYTES, 0, false};
	const struct fs_attr *a = &res->attr;

	fs_put_u32(&w, (uint32_t)res->err);
	fs_put_u64(&w, res->ino);
	fs_put_u64(&w, res->count);
	fs_put_u64(&w, a->ino);
	fs_put_u32(&w, a->mode);
	fs_put_u32(&w, a->nlink);
	fs_put_u32(&w, a->uid);
	fs_put_u32(&w, a->gid);
	fs_put_u64(&w, a->rdev);
	fs_put_u64(&w, a->size);
	fs_put_u64(&w, a->blocks);
	fs_put_u32(&w, a->blksize);
	fs_put_time(&w, a->atime);
	fs_put_time(&w, a->mtime);
	fs_put_time(&w, a->ctime);
	fs_put_u64(&w, a->generation);
	return w.len;
}

int fs_result_decode(const uint8_t *p, size_t len, struct fs_result *res)
{
	struct fs_rbuf r = {p, len, 0, false};
	struct fs_result d;
	struct fs_attr *a = &d.attr;

	d.err = (int32_t)fs_get_u32(&r);
	d.ino = fs_get_u64(&r);
	d.count = fs_get_u64(&r);
	a->ino = fs_get_u64(&r);
	a->mode = fs_get_u32(&r);
	a->nlink = fs_get_u32(&r);
	a->uid = fs_get_u32(&r);
	a->gid = fs_get_u32(&r);
	a->rdev = fs_get_u64(&r);
	a->size = fs_get_u64(&r);
	a->blocks = fs_get_u64(&r);
	a->blksize = fs_get_u32(&r);
	a->atime = fs_get_time(&r);
	a->mtime = fs_get_time(&r);
	a->ctime = fs_get_time(&r);
	a->generation = fs_get_u64(&r);
	if (!fs_rbuf_done(&r) || d.err < 0 || d.err > 4095)
		return -EUCLEAN;
	*res = d;
	return 0;
}

void fs_inode_attr(const struct fs_inode *in, uint32_t block_size,
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
	attr->blocks = (in->alloc_bytes + 511) / 512;
	attr->blksize = block_size;
	attr->atime = in->atime;
	attr->mtime = in->mtime;
	attr->ctime = in->ctime;
	attr->generation = in->generation;
}
