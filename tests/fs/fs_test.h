#ifndef TESTS_FS_FS_TEST_H
#define TESTS_FS_FS_TEST_H

/*
 * Helpers shared by the fs tests: temporary directories, a seeded random
 * generator, and a command generator that draws random but mostly
 * meaningful commands from the reference model's tree (renames over
 * targets, hard links, deep trees, sparse writes, truncates, xattrs,
 * orphans, retried duplicates, proposer restarts).
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fs/fs.h"
#include "tests/fs/model.h"

/* A fresh directory under $TMPDIR (or /tmp), malloc'd path. */
char *fst_tmpdir(const char *tag);
/* Remove a directory tree; quiet. */
void fst_rmrf(const char *path);

/* The seed from $SEED, or def. */
uint64_t fst_seed(uint64_t def);
/* A count from $name, or def. */
uint64_t fst_env_count(const char *name, uint64_t def);

uint64_t fst_rand(uint64_t *state);
uint64_t fst_below(uint64_t *state, uint64_t n);

struct fst_proposer {
	uint64_t node;
	uint64_t epoch;
	uint64_t seq;
	uint64_t low_water;
};

/* Start cmd as a new proposal of p (seq + 1) at clock. */
void fst_cmd(struct fs_cmd *c, uint8_t op, struct fst_proposer *p,
	     struct fs_time clock);
/* Encode into a malloc'd buffer; aborts on an invalid command. */
uint8_t *fst_encode(const struct fs_cmd *c, size_t *len);

#define FST_HISTORY 64

struct fst_gen {
	uint64_t rng;
	struct model *m; /* the model the generator reads the tree from */
	struct fst_proposer prop[3];
	struct fs_time clock;
	uint64_t last_dir; /* the most recent directory, for deep trees */
	uint8_t *history[FST_HISTORY]; /* recent encoded commands */
	size_t history_len[FST_HISTORY];
	size_t n_history;
	uint32_t block_size;
	uint64_t max_inodes;
	uint32_t max_offset; /* writes and sizes stay below this */
};

void fst_gen_init(struct fst_gen *g, struct model *m, uint64_t seed);
void fst_gen_release(struct fst_gen *g);
/* The INIT command (first of every log). */
uint8_t *fst_gen_init_cmd(struct fst_gen *g, size_t *len);
/* The next random command, encoded (malloc'd, the caller frees). */
uint8_t *fst_gen_next(struct fst_gen *g, size_t *len);

#endif
