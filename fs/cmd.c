/*
 * The command codec: explicit big-endian encoding, every field validated on
 * decode. Layout (docs/FS_STORE.md): version u8, op u8, proposal (32 bytes),
 * clock (sec u64, nsec u32), uid u32, gid u32, then the fields of the op in
 * a fixed order; names and data as u32 length + bytes.
 */

#include "fs/codec.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#define CMD_VERSION 1u
/* Longest symlink target the codec carries (ENAMETOOLONG at apply beyond
 * FS_SYMLINK_MAX). */
#define CMD_SYMLINK_CODEC_MAX 65536u

static bool name_ok(const char *name, uint32_t len)
{
	if (name == NULL || len == 0 || len > FS_NAME_CODEC_MAX)
		return false;
	if (memchr(name, '/', len) != NULL || memchr(name, '\0', len) != NULL)
		return false;
	if ((len == 1 && name[0] == '.') ||
	    (len == 2 && name[0] == '.' && name[1] == '.'))
		return false;
	return true;
}

static bool xattr_name_ok(const char *name, uint32_t len)
{
	return name != NULL && len > 0 && len <= FS_NAME_CODEC_MAX &&
	       memchr(name, '\0', len) == NULL;
}

static bool time_ok(struct fs_time t)
{
	return t.nsec < 1000000000u;
}

static bool data_ok(const struct fs_cmd *c, uint32_t max)
{
	return c->data_len <= max && (c->data != NULL || c->data_len == 0);
}

static bool create_type_ok(uint32_t mode)
{
	if ((mode & ~(uint32_t)(S_IFMT | 07777)) != 0)
		return false;
	switch (mode & S_IFMT) {
	case S_IFREG:
	case S_IFDIR:
	case S_IFIFO:
	case S_IFSOCK:
	case S_IFCHR:
	case S_IFBLK:
		return true;
	}
	return false;
}

static bool holders_ok(const struct fs_cmd *c)
{
	if (c->n_holders > FS_HOLDERS_MAX)
		return false;
	for (uint32_t i = 0; i < c->n_holders; i++)
		if (c->holders[i] == 0)
			return false;
	return true;
}

static bool lock_kind_ok(uint8_t kind)
{
	return kind == FS_LOCK_POSIX || kind == FS_LOCK_FLOCK;
}

/* The validation shared by encode and decode. */
static bool cmd_is_valid(const struct fs_cmd *c)
{
	if (!raft_proposal_is_valid(&c->proposal) || !time_ok(c->clock))
		return false;
	switch (c->op) {
	case FS_OP_INIT:
		return c->block_size >= FS_BLOCK_SIZE_MIN &&
		       c->block_size <= FS_BLOCK_SIZE_MAX &&
		       (c->block_size & (c->block_size - 1)) == 0 &&
		       c->name_max >= 1 && c->name_max <= FS_NAME_MAX &&
		       c->capacity_bytes > 0 && c->max_inodes > 0 &&
		       c->mode <= 07777;
	case FS_OP_CREATE:
		return name_ok(c->name, c->name_len) &&
		       create_type_ok(c->mode);
	case FS_OP_SYMLINK:
		return name_ok(c->name, c->name_len) && c->data_len > 0 &&
		       data_ok(c, CMD_SYMLINK_CODEC_MAX) &&
		       memchr(c->data, '\0', c->data_len) == NULL;
	case FS_OP_LINK:
	case FS_OP_RMDIR:
		return name_ok(c->name, c->name_len);
	case FS_OP_UNLINK:
		return name_ok(c->name, c->name_len) && holders_ok(c);
	case FS_OP_RENAME:
		return name_ok(c->name, c->name_len) &&
		       name_ok(c->name2, c->name2_len) && holders_ok(c);
	case FS_OP_SETATTR:
		return (c->valid & ~(uint32_t)FS_SET_ALL) == 0 &&
		       c->mode <= 07777 && time_ok(c->atime) &&
		       time_ok(c->mtime) &&
		       !((c->valid & FS_SET_ATIME) &&
			 (c->valid & FS_SET_ATIME_NOW)) &&
		       !((c->valid & FS_SET_MTIME) &&
			 (c->valid & FS_SET_MTIME_NOW));
	case FS_OP_WRITE:
	case FS_OP_APPEND:
		return data_ok(c, FS_WRITE_MAX);
	case FS_OP_FALLOCATE:
	case FS_OP_RELEASE:
	case FS_OP_RELEASE_ALL:
		return true;
	case FS_OP_CHECK:
		return c->offset != 0;
	case FS_OP_RELEASE_LIST:
		return data_ok(c, 8 * FS_RELEASE_LIST_MAX) &&
		       c->data_len > 0 && c->data_len % 8 == 0;
	case FS_OP_SETXATTR:
		return xattr_name_ok(c->name, c->name_len) &&
		       data_ok(c, FS_XATTR_VALUE_MAX) && c->flags <= 3;
	case FS_OP_REMOVEXATTR:
		return xattr_name_ok(c->name, c->name_len);
	case FS_OP_LOCK:
		return c->ino != 0 && lock_kind_ok(c->lock_kind) &&
		       c->lock_type <= FS_LOCK_WRITE &&
		       c->lock_start <= c->lock_end &&
		       (c->lock_kind == FS_LOCK_POSIX ||
			(c->lock_start == 0 && c->lock_end == FS_LOCK_EOF)) &&
		       (c->flags & ~FS_LOCK_WAIT) == 0 &&
		       !(c->flags && c->lock_type == FS_LOCK_UNLOCK);
	case FS_OP_LOCK_CANCEL:
		return c->offset != 0;
	case FS_OP_UNLOCK_OWNER:
		return c->ino != 0 && lock_kind_ok(c->lock_kind);
	case FS_OP_LEASE:
		return true;
	case FS_OP_LEASE_EXPIRE:
		return c->offset != 0 && c->length != 0;
	case FS_OP_REPAIR_ENTRY:
		if (c->ino == 0)
			return false;
		if (c->flags == FS_REPAIR_ENTRY_NAME)
			return c->name_len == 0 && c->offset >= 3;
		return (c->flags == FS_REPAIR_ENTRY_COOKIE ||
			(c->flags == FS_REPAIR_ENTRY_REMOVE && c->ino2 != 0)) &&
		       name_ok(c->name, c->name_len);
	case FS_OP_REPAIR_FREE:
	case FS_OP_REPAIR_LOST_FOUND:
		return c->ino > FS_ROOT_INO && c->length <= UINT32_MAX &&
		       time_ok(c->mtime);
	case FS_OP_REPAIR_DATA:
		return c->ino != 0;
	case FS_OP_REPAIR_LINKS:
		return c->ino != 0 && c->length <= UINT32_MAX &&
		       c->size <= UINT32_MAX;
	case FS_OP_REPAIR_COUNTERS:
		return true;
	case FS_OP_FEATURE:
		return c->flags >= 2; /* every cluster starts at level 1 */
	}
	return false;
}

/* The one table of which level each op needs (fs/fs.h). */
uint32_t fs_op_feature_level(uint8_t op)
{
	switch (op) {
	case FS_OP_INIT:
	case FS_OP_CREATE:
	case FS_OP_SYMLINK:
	case FS_OP_LINK:
	case FS_OP_UNLINK:
	case FS_OP_RMDIR:
	case FS_OP_RENAME:
	case FS_OP_SETATTR:
	case FS_OP_WRITE:
	case FS_OP_FALLOCATE:
	case FS_OP_SETXATTR:
	case FS_OP_REMOVEXATTR:
	case FS_OP_RELEASE:
	case FS_OP_CHECK:
	case FS_OP_RELEASE_ALL:
	case FS_OP_RELEASE_LIST:
	case FS_OP_APPEND:
		return 1;
	case FS_OP_FEATURE:
		return 2;
	case FS_OP_LOCK:
	case FS_OP_LOCK_CANCEL:
	case FS_OP_UNLOCK_OWNER:
	case FS_OP_LEASE:
	case FS_OP_LEASE_EXPIRE:
	case FS_OP_REPAIR_ENTRY:
	case FS_OP_REPAIR_FREE:
	case FS_OP_REPAIR_DATA:
	case FS_OP_REPAIR_LOST_FOUND:
	case FS_OP_REPAIR_LINKS:
	case FS_OP_REPAIR_COUNTERS:
		return 3;
	}
	return 0;
}

bool fs_cmd_known(const uint8_t *buf, size_t size)
{
	return buf != NULL && size >= 2 && buf[0] == CMD_VERSION &&
	       fs_op_feature_level(buf[1]) != 0;
}

int fs_cmd_feature_check(const uint8_t *buf, size_t size, uint32_t level)
{
	struct fs_cmd c;

	if (!fs_cmd_known(buf, size))
		return -EBADMSG;
	if (buf[1] != FS_OP_FEATURE)
		return fs_op_feature_level(buf[1]) <= level ? 0 : -EOPNOTSUPP;
	/* FEATURE is judged by the level it sets: one every member
	 * supports (the proposer's business), above the current one. */
	if (fs_cmd_decode(buf, size, &c) != 0)
		return -EBADMSG;
	return c.flags > level && c.flags <= FS_FEATURE_LEVEL &&
			       fs_op_feature_level(FS_OP_FEATURE) <= c.flags
		       ? 0
		       : -EOPNOTSUPP;
}

static void put_blob(struct fs_wbuf *w, const void *p, uint32_t len)
{
	fs_put_u32(w, len);
	fs_put_bytes(w, p, len);
}

static void put_holders(struct fs_wbuf *w, const struct fs_cmd *c)
{
	fs_put_u32(w, c->n_holders);
	for (uint32_t i = 0; i < c->n_holders; i++)
		fs_put_u64(w, c->holders[i]);
}

static void encode(const struct fs_cmd *c, struct fs_wbuf *w)
{
	uint8_t prop[RAFT_PROPOSAL_BYTES];

	fs_put_u8(w, CMD_VERSION);
	fs_put_u8(w, c->op);
	raft_proposal_encode(&c->proposal, prop);
	fs_put_bytes(w, prop, sizeof(prop));
	fs_put_time(w, c->clock);
	fs_put_u32(w, c->uid);
	fs_put_u32(w, c->gid);
	switch (c->op) {
	case FS_OP_INIT:
		fs_put_bytes(w, c->fs_id, sizeof(c->fs_id));
		fs_put_u32(w, c->block_size);
		fs_put_u64(w, c->capacity_bytes);
		fs_put_u64(w, c->max_inodes);
		fs_put_u32(w, c->name_max);
		fs_put_u32(w, c->mode);
		break;
	case FS_OP_CREATE:
		fs_put_u64(w, c->ino);
		fs_put_u32(w, c->mode);
		fs_put_u64(w, c->rdev);
		put_blob(w, c->name, c->name_len);
		break;
	case FS_OP_SYMLINK:
		fs_put_u64(w, c->ino);
		put_blob(w, c->name, c->name_len);
		put_blob(w, c->data, c->data_len);
		break;
	case FS_OP_LINK:
		fs_put_u64(w, c->ino);
		fs_put_u64(w, c->ino2);
		put_blob(w, c->name, c->name_len);
		break;
	case FS_OP_UNLINK:
		fs_put_u64(w, c->ino);
		put_blob(w, c->name, c->name_len);
		put_holders(w, c);
		break;
	case FS_OP_RMDIR:
		fs_put_u64(w, c->ino);
		put_blob(w, c->name, c->name_len);
		break;
	case FS_OP_RENAME:
		fs_put_u64(w, c->ino);
		put_blob(w, c->name, c->name_len);
		fs_put_u64(w, c->ino2);
		put_blob(w, c->name2, c->name2_len);
		fs_put_u32(w, c->flags);
		put_holders(w, c);
		break;
	case FS_OP_SETATTR:
		fs_put_u64(w, c->ino);
		fs_put_u32(w, c->valid);
		fs_put_u32(w, c->mode);
		fs_put_u32(w, c->set_uid);
		fs_put_u32(w, c->set_gid);
		fs_put_u64(w, c->size);
		fs_put_time(w, c->atime);
		fs_put_time(w, c->mtime);
		break;
	case FS_OP_WRITE:
		fs_put_u64(w, c->ino);
		fs_put_u64(w, c->offset);
		put_blob(w, c->data, c->data_len);
		break;
	case FS_OP_FALLOCATE:
		fs_put_u64(w, c->ino);
		fs_put_u32(w, c->flags);
		fs_put_u64(w, c->offset);
		fs_put_u64(w, c->length);
		break;
	case FS_OP_SETXATTR:
		fs_put_u64(w, c->ino);
		fs_put_u32(w, c->flags);
		put_blob(w, c->name, c->name_len);
		put_blob(w, c->data, c->data_len);
		break;
	case FS_OP_REMOVEXATTR:
		fs_put_u64(w, c->ino);
		put_blob(w, c->name, c->name_len);
		break;
	case FS_OP_RELEASE:
		fs_put_u64(w, c->ino);
		break;
	case FS_OP_CHECK:
		fs_put_u64(w, c->offset);
		break;
	case FS_OP_RELEASE_ALL:
		break;
	case FS_OP_RELEASE_LIST:
		put_blob(w, c->data, c->data_len);
		break;
	case FS_OP_APPEND:
		fs_put_u64(w, c->ino);
		put_blob(w, c->data, c->data_len);
		break;
	case FS_OP_LOCK:
		fs_put_u64(w, c->ino);
		fs_put_u8(w, c->lock_kind);
		fs_put_u8(w, c->lock_type);
		fs_put_u32(w, c->flags);
		fs_put_u64(w, c->lock_owner);
		fs_put_u64(w, c->lock_start);
		fs_put_u64(w, c->lock_end);
		fs_put_u32(w, c->lock_pid);
		break;
	case FS_OP_LOCK_CANCEL:
		fs_put_u64(w, c->offset);
		break;
	case FS_OP_UNLOCK_OWNER:
		fs_put_u64(w, c->ino);
		fs_put_u8(w, c->lock_kind);
		fs_put_u64(w, c->lock_owner);
		break;
	case FS_OP_LEASE:
		break;
	case FS_OP_LEASE_EXPIRE:
		fs_put_u64(w, c->offset);
		fs_put_u64(w, c->length);
		break;
	case FS_OP_REPAIR_ENTRY:
		fs_put_u64(w, c->ino);
		fs_put_u32(w, c->flags);
		fs_put_u64(w, c->offset);
		fs_put_u64(w, c->ino2);
		put_blob(w, c->name, c->name_len);
		break;
	case FS_OP_REPAIR_FREE:
	case FS_OP_REPAIR_DATA:
		fs_put_u64(w, c->ino);
		break;
	case FS_OP_REPAIR_LOST_FOUND:
		fs_put_u64(w, c->ino);
		fs_put_u64(w, c->length);
		fs_put_time(w, c->mtime);
		break;
	case FS_OP_REPAIR_LINKS:
		fs_put_u64(w, c->ino);
		fs_put_u64(w, c->length);
		fs_put_u64(w, c->size);
		break;
	case FS_OP_REPAIR_COUNTERS:
		break;
	case FS_OP_FEATURE:
		fs_put_u32(w, c->flags);
		break;
	}
}

size_t fs_cmd_encoded_size(const struct fs_cmd *cmd)
{
	struct fs_wbuf w = {NULL, 0, 0, false};

	if (!cmd_is_valid(cmd))
		return 0;
	encode(cmd, &w);
	return w.len;
}

long fs_cmd_encode(const struct fs_cmd *cmd, uint8_t *buf, size_t size)
{
	struct fs_wbuf w = {buf, size, 0, false};

	if (!cmd_is_valid(cmd))
		return -EINVAL;
	if (buf == NULL)
		return -ENOSPC;
	encode(cmd, &w);
	if (w.overflow)
		return -ENOSPC;
	return (long)w.len;
}

/* A length-prefixed blob of at most max bytes. */
static const void *get_blob(struct fs_rbuf *r, uint32_t max, uint32_t *len)
{
	uint32_t n = fs_get_u32(r);

	if (n > max) {
		r->bad = true;
		*len = 0;
		return NULL;
	}
	*len = n;
	return fs_get_bytes(r, n);
}

static void get_holders(struct fs_rbuf *r, struct fs_cmd *c)
{
	c->n_holders = fs_get_u32(r);
	if (c->n_holders > FS_HOLDERS_MAX) {
		r->bad = true;
		c->n_holders = 0;
		return;
	}
	for (uint32_t i = 0; i < c->n_holders; i++)
		c->holders[i] = fs_get_u64(r);
}

int fs_cmd_decode(const uint8_t *buf, size_t size, struct fs_cmd *cmd)
{
	struct fs_rbuf r = {buf, size, 0, false};
	struct fs_cmd c;
	const uint8_t *prop;
	const uint8_t *id;

	if (buf == NULL)
		return -EBADMSG;
	memset(&c, 0, sizeof(c));
	if (fs_get_u8(&r) != CMD_VERSION)
		return -EBADMSG;
	c.op = fs_get_u8(&r);
	prop = fs_get_bytes(&r, RAFT_PROPOSAL_BYTES);
	if (prop == NULL ||
	    raft_proposal_decode(prop, RAFT_PROPOSAL_BYTES, &c.proposal) != 0)
		return -EBADMSG;
	c.clock = fs_get_time(&r);
	c.uid = fs_get_u32(&r);
	c.gid = fs_get_u32(&r);
	switch (c.op) {
	case FS_OP_INIT:
		id = fs_get_bytes(&r, sizeof(c.fs_id));
		if (id != NULL)
			memcpy(c.fs_id, id, sizeof(c.fs_id));
		c.block_size = fs_get_u32(&r);
		c.capacity_bytes = fs_get_u64(&r);
		c.max_inodes = fs_get_u64(&r);
		c.name_max = fs_get_u32(&r);
		c.mode = fs_get_u32(&r);
		break;
	case FS_OP_CREATE:
		c.ino = fs_get_u64(&r);
		c.mode = fs_get_u32(&r);
		c.rdev = fs_get_u64(&r);
		c.name = get_blob(&r, FS_NAME_CODEC_MAX, &c.name_len);
		break;
	case FS_OP_SYMLINK:
		c.ino = fs_get_u64(&r);
		c.name = get_blob(&r, FS_NAME_CODEC_MAX, &c.name_len);
		c.data = get_blob(&r, CMD_SYMLINK_CODEC_MAX, &c.data_len);
		break;
	case FS_OP_LINK:
		c.ino = fs_get_u64(&r);
		c.ino2 = fs_get_u64(&r);
		c.name = get_blob(&r, FS_NAME_CODEC_MAX, &c.name_len);
		break;
	case FS_OP_UNLINK:
		c.ino = fs_get_u64(&r);
		c.name = get_blob(&r, FS_NAME_CODEC_MAX, &c.name_len);
		get_holders(&r, &c);
		break;
	case FS_OP_RMDIR:
		c.ino = fs_get_u64(&r);
		c.name = get_blob(&r, FS_NAME_CODEC_MAX, &c.name_len);
		break;
	case FS_OP_RENAME:
		c.ino = fs_get_u64(&r);
		c.name = get_blob(&r, FS_NAME_CODEC_MAX, &c.name_len);
		c.ino2 = fs_get_u64(&r);
		c.name2 = get_blob(&r, FS_NAME_CODEC_MAX, &c.name2_len);
		c.flags = fs_get_u32(&r);
		get_holders(&r, &c);
		break;
	case FS_OP_SETATTR:
		c.ino = fs_get_u64(&r);
		c.valid = fs_get_u32(&r);
		c.mode = fs_get_u32(&r);
		c.set_uid = fs_get_u32(&r);
		c.set_gid = fs_get_u32(&r);
		c.size = fs_get_u64(&r);
		c.atime = fs_get_time(&r);
		c.mtime = fs_get_time(&r);
		break;
	case FS_OP_WRITE:
		c.ino = fs_get_u64(&r);
		c.offset = fs_get_u64(&r);
		c.data = get_blob(&r, FS_WRITE_MAX, &c.data_len);
		break;
	case FS_OP_FALLOCATE:
		c.ino = fs_get_u64(&r);
		c.flags = fs_get_u32(&r);
		c.offset = fs_get_u64(&r);
		c.length = fs_get_u64(&r);
		break;
	case FS_OP_SETXATTR:
		c.ino = fs_get_u64(&r);
		c.flags = fs_get_u32(&r);
		c.name = get_blob(&r, FS_NAME_CODEC_MAX, &c.name_len);
		c.data = get_blob(&r, FS_XATTR_VALUE_MAX, &c.data_len);
		break;
	case FS_OP_REMOVEXATTR:
		c.ino = fs_get_u64(&r);
		c.name = get_blob(&r, FS_NAME_CODEC_MAX, &c.name_len);
		break;
	case FS_OP_RELEASE:
		c.ino = fs_get_u64(&r);
		break;
	case FS_OP_CHECK:
		c.offset = fs_get_u64(&r);
		break;
	case FS_OP_RELEASE_ALL:
		break;
	case FS_OP_RELEASE_LIST:
		c.data = get_blob(&r, 8 * FS_RELEASE_LIST_MAX, &c.data_len);
		break;
	case FS_OP_APPEND:
		c.ino = fs_get_u64(&r);
		c.data = get_blob(&r, FS_WRITE_MAX, &c.data_len);
		break;
	case FS_OP_LOCK:
		c.ino = fs_get_u64(&r);
		c.lock_kind = fs_get_u8(&r);
		c.lock_type = fs_get_u8(&r);
		c.flags = fs_get_u32(&r);
		c.lock_owner = fs_get_u64(&r);
		c.lock_start = fs_get_u64(&r);
		c.lock_end = fs_get_u64(&r);
		c.lock_pid = fs_get_u32(&r);
		break;
	case FS_OP_LOCK_CANCEL:
		c.offset = fs_get_u64(&r);
		break;
	case FS_OP_UNLOCK_OWNER:
		c.ino = fs_get_u64(&r);
		c.lock_kind = fs_get_u8(&r);
		c.lock_owner = fs_get_u64(&r);
		break;
	case FS_OP_LEASE:
		break;
	case FS_OP_LEASE_EXPIRE:
		c.offset = fs_get_u64(&r);
		c.length = fs_get_u64(&r);
		break;
	case FS_OP_REPAIR_ENTRY:
		c.ino = fs_get_u64(&r);
		c.flags = fs_get_u32(&r);
		c.offset = fs_get_u64(&r);
		c.ino2 = fs_get_u64(&r);
		c.name = get_blob(&r, FS_NAME_CODEC_MAX, &c.name_len);
		break;
	case FS_OP_REPAIR_FREE:
	case FS_OP_REPAIR_DATA:
		c.ino = fs_get_u64(&r);
		break;
	case FS_OP_REPAIR_LOST_FOUND:
		c.ino = fs_get_u64(&r);
		c.length = fs_get_u64(&r);
		c.mtime = fs_get_time(&r);
		break;
	case FS_OP_REPAIR_LINKS:
		c.ino = fs_get_u64(&r);
		c.length = fs_get_u64(&r);
		c.size = fs_get_u64(&r);
		break;
	case FS_OP_REPAIR_COUNTERS:
		break;
	case FS_OP_FEATURE:
		c.flags = fs_get_u32(&r);
		break;
	default:
		return -EBADMSG;
	}
	if (!fs_rbuf_done(&r) || !cmd_is_valid(&c))
		return -EBADMSG;
	*cmd = c;
	return 0;
}
