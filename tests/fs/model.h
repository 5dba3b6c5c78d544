#ifndef TESTS_FS_MODEL_H
#define TESTS_FS_MODEL_H

/*
 * A small, obviously-correct in-memory reference model of the fs state
 * machine: the same commands, the same results, the same tree; files as
 * dense byte arrays, directories as arrays of entries, the duplicate table
 * of raft/proposal. Tests compare the store against it.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fs/fs.h"

struct model_entry {
	char name[FS_NAME_CODEC_MAX + 1];
	size_t name_len;
	uint64_t ino;
	uint64_t seq;
};

struct model_xattr {
	char name[FS_NAME_CODEC_MAX + 1];
	size_t name_len;
	uint8_t *value;
	size_t len;
};

struct model_inode {
	bool used;
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
	uint8_t *data;      /* regular files: size bytes */
	char *target;       /* symlinks */
	size_t target_len;
	struct model_entry *entries; /* directories */
	size_t n_entries;
	uint64_t next_seq;
	uint64_t parent;
	struct model_xattr *xattrs;
	size_t n_xattrs;
	uint64_t holders[FS_HOLDERS_MAX]; /* orphans (nlink 0) */
	uint32_t n_holders;
};

struct model {
	bool formatted;
	uint32_t block_size;
	uint64_t max_inodes;
	uint32_t name_max;
	uint64_t next_ino;
	uint64_t used_inodes;
	struct fs_time last_time;
	uint64_t applied;
	struct model_inode *inodes; /* indexed by ino */
	size_t cap;
	struct raft_dedup_table *dedup;
};

void model_init(struct model *m);
void model_release(struct model *m);
/* Apply one decoded command at index; fills res like fs_store_apply. */
void model_apply(struct model *m, uint64_t index, const struct fs_cmd *c,
		 struct fs_result *res);
/* The inode, or NULL when it does not exist. */
struct model_inode *model_inode(struct model *m, uint64_t ino);
void model_attr(const struct model *m, const struct model_inode *in,
		struct fs_attr *attr);
struct model_entry *model_find(struct model_inode *dir, const char *name,
			       size_t len);

#endif
