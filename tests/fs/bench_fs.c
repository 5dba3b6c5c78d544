/*
 * Apply and snapshot throughput of the fs store (make bench ->
 * tests/long/bench/20-fs). One process, one apply thread, the store on the
 * local disk (LevelDB, unsynced batches as in production). Prints:
 *
 *   creates/s                 CREATE commands in 100 directories
 *   4 KiB writes/s and MB/s   sequential appends, then random overwrites
 *   1 MiB writes MB/s         sequential
 *   snapshot create MB/s      streaming the store into 4 MiB chunks (RAM)
 *   snapshot install MB/s     validating and installing them in a fresh
 *                             store, synced, switched
 *
 * BENCH_FILES (default 50,000) and BENCH_MIB (default 256) size the runs.
 */

#define _GNU_SOURCE /* asprintf */

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "fs/fs.h"
#include "tests/fs/fs_test.h"

#define CHUNK_BYTES (4u << 20)

static struct fs_store *store;
static uint64_t next_index;
static struct fst_proposer prop = {1, 1, 0, 1};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *what, int rc)
{
	fprintf(stderr, "bench_fs: %s failed: %d\n", what, rc);
	exit(1);
}

static struct fs_result apply(struct fs_cmd *c)
{
	struct fs_result r;
	size_t len;
	uint8_t *buf;
	int rc;

	prop.low_water = prop.seq;
	c->proposal.low_water = prop.seq;
	buf = fst_encode(c, &len);
	rc = fs_store_apply(store, ++next_index, buf, len, &r);
	free(buf);
	if (rc != 0)
		die("apply", rc);
	if (r.err != 0)
		die("command", r.err);
	return r;
}

static void cmd(struct fs_cmd *c, uint8_t op)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	fst_cmd(c, op, &prop, (struct fs_time){ts.tv_sec, (uint32_t)ts.tv_nsec});
}

static uint64_t create(uint64_t parent, const char *name, uint32_t mode)
{
	struct fs_cmd c;

	cmd(&c, FS_OP_CREATE);
	c.ino = parent;
	c.name = name;
	c.name_len = (uint32_t)strlen(name);
	c.mode = mode;
	return apply(&c).ino;
}

static void write_at(uint64_t ino, uint64_t off, const uint8_t *data,
		     uint32_t len)
{
	struct fs_cmd c;

	cmd(&c, FS_OP_WRITE);
	c.ino = ino;
	c.offset = off;
	c.data = data;
	c.data_len = len;
	apply(&c);
}

int main(void)
{
	uint64_t files = fst_env_count("BENCH_FILES", 50000);
	uint64_t mib = fst_env_count("BENCH_MIB", 256);
	char *dir = fst_tmpdir("bench"), *dst_dir = fst_tmpdir("bench-dst");
	uint8_t *data = malloc(FS_WRITE_MAX), **chunks = NULL;
	size_t *lens = NULL, n_chunks = 0, cap = 0;
	struct fs_snapshot *snap = NULL;
	struct fs_install *in = NULL;
	struct fs_store *dst = NULL;
	uint64_t dirs[100], ino, n4k, bytes = 0, rng = 1;
	struct fs_cmd c;
	double t0, t;
	char name[64];
	bool last = false;
	int rc;

	for (size_t i = 0; i < FS_WRITE_MAX; i++)
		data[i] = (uint8_t)(i * 131 + 7);
	if ((rc = fs_store_open(dir, &store)) != 0)
		die("open", rc);
	cmd(&c, FS_OP_INIT);
	c.block_size = FS_BLOCK_SIZE_DEFAULT;
	c.capacity_bytes = 1ull << 42;
	c.max_inodes = 100000000;
	c.name_max = 255;
	c.mode = 0755;
	apply(&c);
	for (int d = 0; d < 100; d++) {
		snprintf(name, sizeof(name), "d%02d", d);
		dirs[d] = create(FS_ROOT_INO, name, S_IFDIR | 0755);
	}

	t0 = now_s();
	for (uint64_t i = 0; i < files; i++) {
		snprintf(name, sizeof(name), "file-%08" PRIu64, i);
		create(dirs[i % 100], name, S_IFREG | 0644);
	}
	t = now_s() - t0;
	printf("creates: %" PRIu64 " in %.2fs = %.0f/s\n", files, t, files / t);

	n4k = mib * 256 / 2;
	ino = create(FS_ROOT_INO, "seq4k", S_IFREG | 0644);
	t0 = now_s();
	for (uint64_t i = 0; i < n4k; i++)
		write_at(ino, i * 4096, data, 4096);
	t = now_s() - t0;
	printf("4 KiB writes, sequential: %" PRIu64 " in %.2fs = %.0f/s, "
	       "%.1f MB/s\n",
	       n4k, t, n4k / t, n4k * 4096 / 1e6 / t);
	t0 = now_s();
	for (uint64_t i = 0; i < n4k; i++)
		write_at(ino, fst_below(&rng, n4k) * 4096, data, 4096);
	t = now_s() - t0;
	printf("4 KiB writes, random overwrite: %" PRIu64 " in %.2fs = %.0f/s, "
	       "%.1f MB/s\n",
	       n4k, t, n4k / t, n4k * 4096 / 1e6 / t);

	ino = create(FS_ROOT_INO, "seq1m", S_IFREG | 0644);
	t0 = now_s();
	for (uint64_t i = 0; i < mib / 2; i++)
		write_at(ino, i * FS_WRITE_MAX, data, FS_WRITE_MAX);
	t = now_s() - t0;
	printf("1 MiB writes, sequential: %" PRIu64 " in %.2fs = %.1f MB/s\n",
	       mib / 2, t, mib / 2 * 1.048576 / t);

	t0 = now_s();
	if ((rc = fs_snapshot_begin(store, 1, &snap)) != 0)
		die("snapshot", rc);
	while (!last) {
		if (n_chunks == cap) {
			cap = cap ? cap * 2 : 64;
			chunks = realloc(chunks, cap * sizeof(*chunks));
			lens = realloc(lens, cap * sizeof(*lens));
		}
		chunks[n_chunks] = malloc(CHUNK_BYTES);
		rc = fs_snapshot_next(snap, chunks[n_chunks], CHUNK_BYTES,
				      &lens[n_chunks], &last);
		if (rc != 0)
			die("snapshot chunk", rc);
		bytes += lens[n_chunks++];
	}
	fs_snapshot_end(snap);
	t = now_s() - t0;
	printf("snapshot create: %.1f MiB in %zu chunks in %.2fs = %.0f MB/s\n",
	       bytes / 1048576.0, n_chunks, t, bytes / 1e6 / t);

	if ((rc = fs_store_open(dst_dir, &dst)) != 0)
		die("open dst", rc);
	t0 = now_s();
	if ((rc = fs_install_begin(dst, next_index, 1, &in)) != 0)
		die("install", rc);
	for (size_t i = 0; i < n_chunks; i++)
		if ((rc = fs_install_chunk(in, chunks[i], lens[i])) != 0)
			die("install chunk", rc);
	if ((rc = fs_install_finish(in)) != 0)
		die("install finish", rc);
	t = now_s() - t0;
	printf("snapshot install: %.1f MiB in %.2fs = %.0f MB/s (synced)\n",
	       bytes / 1048576.0, t, bytes / 1e6 / t);

	for (size_t i = 0; i < n_chunks; i++)
		free(chunks[i]);
	free(chunks);
	free(lens);
	free(data);
	fs_store_close(dst);
	fs_store_close(store);
	fst_rmrf(dir);
	fst_rmrf(dst_dir);
	free(dir);
	free(dst_dir);
	return 0;
}
