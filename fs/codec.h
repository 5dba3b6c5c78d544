#ifndef FS_CODEC_H
#define FS_CODEC_H

/*
 * Explicit big-endian encoding, field by field (no struct copies: padding
 * would make replicas differ), and the records of the fs store: the
 * superblock, inodes, directory entries, orphans and results. The layout
 * of each record is in docs/FS_STORE.md. Private to fs/.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fs/fs.h"

/* A writer into buf[0..cap); with buf NULL it only counts. */
struct fs_wbuf {
	uint8_t *buf;
	size_t cap;
	size_t len;
	bool overflow; /* a write did not fit */
};

/* A reader of p[0..len); bad is set by any read past the end. */
struct fs_rbuf {
	const uint8_t *p;
	size_t len;
	size_t off;
	bool bad;
};

void fs_put_u8(struct fs_wbuf *w, uint8_t v);
void fs_put_u32(struct fs_wbuf *w, uint32_t v);
void fs_put_u64(struct fs_wbuf *w, uint64_t v);
void fs_put_bytes(struct fs_wbuf *w, const void *p, size_t n);
void fs_put_time(struct fs_wbuf *w, struct fs_time t);

uint8_t fs_get_u8(struct fs_rbuf *r);
uint32_t fs_get_u32(struct fs_rbuf *r);
uint64_t fs_get_u64(struct fs_rbuf *r);
/* A pointer to the next n bytes (NULL and bad when short). */
const uint8_t *fs_get_bytes(struct fs_rbuf *r, size_t n);
struct fs_time fs_get_time(struct fs_rbuf *r);
/* Whether every byte was read and nothing was short. */
bool fs_rbuf_done(const struct fs_rbuf *r);

void fs_be64(uint8_t *p, uint64_t v);
uint64_t fs_rd64(const uint8_t *p);

/* ---------------------------------------------------------------------- */
/* Keys: one prefix byte, then big-endian numbers (so LevelDB's byte order */
/* is numeric order) and names.                                            */

enum fs_key_prefix {
	FS_KEY_SUPER = 'S',    /* "S" */
	FS_KEY_INODE = 'I',    /* I ino */
	FS_KEY_DENTRY = 'D',   /* D dir name */
	FS_KEY_COOKIE = 'C',   /* C dir seq */
	FS_KEY_BLOCK = 'B',    /* B ino blockno */
	FS_KEY_SYMLINK = 'L',  /* L ino */
	FS_KEY_XATTR = 'X',    /* X ino name */
	FS_KEY_ORPHAN = 'O',   /* O ino */
	FS_KEY_DEDUP = 'P',    /* P node: proposer state */
	FS_KEY_RESULT = 'R',   /* R node seq: stored result */
	FS_KEY_MEMBERS = 'M',  /* "M": the configuration's members */
	FS_KEY_LOCKS = 'K',    /* K ino: the inode's locks and waiters */
	FS_KEY_LEASE = 'E',    /* E node: the node's lease record */
};

/* Longest key: prefix, one u64 and a name. */
#define FS_KEY_MAX (1 + 8 + 8 + FS_NAME_CODEC_MAX)

struct fs_key {
	uint8_t b[FS_KEY_MAX];
	size_t len;
};

void fs_key1(struct fs_key *k, uint8_t prefix, uint64_t a);
void fs_key2(struct fs_key *k, uint8_t prefix, uint64_t a, uint64_t b);
void fs_key_name(struct fs_key *k, uint8_t prefix, uint64_t a,
		 const char *name, size_t name_len);

/* ---------------------------------------------------------------------- */
/* Records.                                                                */

#define FS_FORMAT_VERSION 1u
#define FS_SUPER_MAGIC 0x52465346u /* "RFSF" */

struct fs_super {
	uint32_t version;
	bool formatted;
	uint8_t fs_id[16];
	uint32_t block_size;
	uint64_t capacity_bytes;
	uint64_t max_inodes;
	uint32_t name_max;
	uint32_t feature_level;
	uint64_t next_ino;
	struct fs_time last_time; /* last time applied from a clock */
	uint64_t applied_index;
	uint64_t used_bytes;  /* bytes stored in blocks, all inodes */
	uint64_t used_inodes; /* inodes, orphans included */
};

struct fs_inode {
	uint64_t ino;
	uint32_t mode;
	uint32_t uid;
	uint32_t gid;
	uint32_t nlink;
	uint64_t size;
	uint64_t rdev;
	uint64_t generation;
	struct fs_time atime;
	struct fs_time mtime;
	struct fs_time ctime;
	uint64_t parent;      /* directories: the parent (root: itself) */
	uint64_t next_seq;    /* directories: the next entry cookie */
	uint64_t entries;     /* directories: number of entries */
	uint64_t alloc_bytes; /* regular files: bytes stored in blocks */
};

/* A directory entry; the D record holds seq, ino, type; the C record
 * holds ino, type, name. */
struct fs_dentry {
	uint64_t seq;
	uint64_t ino;
	uint32_t type;
};

/* Buffer sizes of the fixed records. */
#define FS_SUPER_BYTES 128u
#define FS_INODE_BYTES 160u
#define FS_RESULT_BYTES 160u

size_t fs_super_encode(const struct fs_super *sb, uint8_t *buf);
int fs_super_decode(const uint8_t *p, size_t len, struct fs_super *sb);
size_t fs_inode_encode(const struct fs_inode *in, uint8_t *buf);
int fs_inode_decode(const uint8_t *p, size_t len, struct fs_inode *in);
size_t fs_result_encode(const struct fs_result *res, uint8_t *buf);
int fs_result_decode(const uint8_t *p, size_t len, struct fs_result *res);

/* Attributes of an inode as the front end sees them. */
void fs_inode_attr(const struct fs_inode *in, uint32_t block_size,
		   struct fs_attr *attr);

/* Whether t1 < t2. */
bool fs_time_before(struct fs_time t1, struct fs_time t2);

#endif
