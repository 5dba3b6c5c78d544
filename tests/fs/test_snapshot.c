/*
 * Snapshots: stream a store as chunks, install them into another store,
 * compare tree and hash; reject damaged chunks; survive an installer killed
 * midway (the old store stays, the install restarts and finishes).
 * SNAP_FILES and SNAP_MIB size the large round trip (defaults 20,000 files
 * and 100 MiB); SEED replays the random logs.
 */

#define _GNU_SOURCE /* asprintf */

#include "tests/lib/test_main.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fs/fs.h"
#include "tests/fs/fs_test.h"
#include "tests/fs/model.h"

#define CHUNK_BYTES (4u << 20)

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Apply n random commands (after INIT) to s, starting at index 1. */
static void random_store(struct fs_store *s, size_t n, uint64_t log_seed)
{
	struct model m;
	struct fst_gen g;
	struct fs_result r, mr;
	struct fs_cmd c;

	model_init(&m);
	fst_gen_init(&g, &m, log_seed);
	for (size_t i = 0; i < n; i++) {
		size_t len;
		uint8_t *buf = i == 0 ? fst_gen_init_cmd(&g, &len)
				      : fst_gen_next(&g, &len);
		assert_int_equal(fs_store_apply(s, i + 1, buf, len, &r), 0);
		assert_int_equal(fs_cmd_decode(buf, len, &c), 0);
		model_apply(&m, i + 1, &c, &mr);
		free(buf);
	}
	fst_gen_release(&g);
	model_release(&m);
}

/* The snapshot of s as chunks in a file (fd at offset 0 afterwards);
 * returns the number of chunks and the payload bytes. */
static size_t snapshot_to_file(struct fs_store *s, int fd, uint64_t term,
			       uint64_t *bytes)
{
	struct fs_snapshot *snap = NULL;
	uint8_t *buf = malloc(CHUNK_BYTES);
	size_t n = 0;
	bool last = false;

	*bytes = 0;
	assert_int_equal(fs_snapshot_begin(s, term, &snap), 0);
	while (!last) {
		size_t len;
		uint8_t be[4];
		assert_int_equal(fs_snapshot_next(snap, buf, CHUNK_BYTES, &len,
						  &last),
				 0);
		assert_true(len <= CHUNK_BYTES);
		be[0] = (uint8_t)(len >> 24);
		be[1] = (uint8_t)(len >> 16);
		be[2] = (uint8_t)(len >> 8);
		be[3] = (uint8_t)len;
		assert_int_equal(write(fd, be, 4), 4);
		assert_int_equal(write(fd, buf, len), (ssize_t)len);
		*bytes += len;
		n++;
	}
	fs_snapshot_end(snap);
	free(buf);
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	return n;
}

/* Read the next chunk from the file; false at the end. */
static bool read_chunk(int fd, uint8_t *buf, size_t *len)
{
	uint8_t be[4];

	if (read(fd, be, 4) != 4)
		return false;
	*len = (size_t)be[0] << 24 | (size_t)be[1] << 16 | (size_t)be[2] << 8 |
	       be[3];
	assert_true(*len <= CHUNK_BYTES);
	assert_int_equal(read(fd, buf, *len), (ssize_t)*len);
	return true;
}

/* Install up to max_chunks chunks from fd (all: SIZE_MAX) and finish. */
static int install_from_file(struct fs_store *s, int fd, uint64_t index,
			     uint64_t term, size_t max_chunks)
{
	struct fs_install *in = NULL;
	uint8_t *buf = malloc(CHUNK_BYTES);
	size_t len, n = 0;
	int rc = fs_install_begin(s, index, term, &in);

	assert_int_equal(rc, 0);
	while (n < max_chunks && read_chunk(fd, buf, &len)) {
		rc = fs_install_chunk(in, buf, len);
		if (rc != 0)
			break;
		n++;
	}
	if (n == max_chunks && max_chunks != SIZE_MAX) {
		/* The injected stop point: the installer dies here. */
		raise(SIGKILL);
	}
	if (rc == 0)
		rc = fs_install_finish(in);
	else
		fs_install_abort(in);
	free(buf);
	return rc;
}

static void assert_same_hash(struct fs_store *a, struct fs_store *b)
{
	uint8_t ha[FS_HASH_BYTES], hb[FS_HASH_BYTES];

	assert_int_equal(fs_store_hash(a, ha), 0);
	assert_int_equal(fs_store_hash(b, hb), 0);
	assert_memory_equal(ha, hb, sizeof(ha));
	assert_int_equal(fs_store_subtree_hash(a, FS_ROOT_INO, ha), 0);
	assert_int_equal(fs_store_subtree_hash(b, FS_ROOT_INO, hb), 0);
	assert_memory_equal(ha, hb, sizeof(ha));
	assert_int_equal(fs_store_applied_index(a), fs_store_applied_index(b));
}

struct fix {
	char *src_dir;
	char *dst_dir;
	char *stream;
	struct fs_store *src;
	struct fs_store *dst;
	int fd;
	uint64_t seed;
};

static int setup(void **state)
{
	struct fix *f = calloc(1, sizeof(*f));
	char *tmp = fst_tmpdir("snap-stream");

	f->seed = fst_seed((uint64_t)time(NULL));
	f->src_dir = fst_tmpdir("snap-src");
	f->dst_dir = fst_tmpdir("snap-dst");
	if (asprintf(&f->stream, "%s/stream", tmp) < 0)
		abort();
	free(tmp);
	f->fd = open(f->stream, O_RDWR | O_CREAT | O_TRUNC, 0600);
	assert_true(f->fd >= 0);
	assert_int_equal(fs_store_open(f->src_dir, &f->src), 0);
	assert_int_equal(fs_store_open(f->dst_dir, &f->dst), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fix *f = *state;
	char *slash = strrchr(f->stream, '/');

	close(f->fd);
	fs_store_close(f->src);
	fs_store_close(f->dst);
	fst_rmrf(f->src_dir);
	fst_rmrf(f->dst_dir);
	*slash = '\0';
	fst_rmrf(f->stream);
	free(f->src_dir);
	free(f->dst_dir);
	free(f->stream);
	free(f);
	return 0;
}

static void test_round_trip_then_both_apply_on(void **state)
{
	struct fix *f = *state;
	uint64_t bytes, index;
	struct fst_proposer p = {5, 1, 0, 1};
	struct fs_cmd c;
	struct fs_result r1, r2;
	uint8_t *buf;
	size_t len;

	random_store(f->src, 5000, f->seed);
	random_store(f->dst, 300, f->seed + 1); /* an older, other state */
	index = fs_store_applied_index(f->src);
	snapshot_to_file(f->src, f->fd, 7, &bytes);
	assert_int_equal(install_from_file(f->dst, f->fd, index, 7, SIZE_MAX),
			 0);
	assert_same_hash(f->src, f->dst);
	/* Cookies, inode numbers and the duplicate table came along: the
	 * next command gives the same result on both. */
	fst_cmd(&c, FS_OP_CREATE, &p, (struct fs_time){1, 0});
	c.ino = FS_ROOT_INO;
	c.name = "after";
	c.name_len = 5;
	c.mode = S_IFDIR | 0700;
	buf = fst_encode(&c, &len);
	assert_int_equal(fs_store_apply(f->src, index + 1, buf, len, &r1), 0);
	assert_int_equal(fs_store_apply(f->dst, index + 1, buf, len, &r2), 0);
	assert_memory_equal(&r1, &r2, sizeof(r1));
	free(buf);
	assert_same_hash(f->src, f->dst);
	print_message("snapshot: seed %" PRIu64 ": round trip of %" PRIu64
		      " bytes\n", f->seed, bytes);
}

static void test_damaged_chunks_are_rejected(void **state)
{
	struct fix *f = *state;
	uint8_t before[FS_HASH_BYTES], after[FS_HASH_BYTES];
	uint8_t *buf = malloc(CHUNK_BYTES);
	struct fs_install *in = NULL;
	uint64_t bytes, index;
	size_t len;

	random_store(f->src, 2000, f->seed);
	index = fs_store_applied_index(f->src);
	snapshot_to_file(f->src, f->fd, 3, &bytes);
	assert_int_equal(fs_store_hash(f->dst, before), 0);
	assert_true(read_chunk(f->fd, buf, &len));
	for (int k = 0; k < 4; k++) {
		uint8_t *copy = malloc(len);
		memcpy(copy, buf, len);
		switch (k) {
		case 0: /* a flipped payload bit: the checksum */
			copy[len - 1] ^= 1;
			break;
		case 1: /* the wrong offset */
			copy[4 + 8 + 8 + 7] = 1;
			break;
		case 2: /* another snapshot's term */
			copy[4 + 8 + 7] ^= 1;
			break;
		case 3: /* truncated */
			len -= 1;
			break;
		}
		assert_int_equal(fs_install_begin(f->dst, index, 3, &in), 0);
		assert_int_equal(fs_install_chunk(in, copy, len), -EBADMSG);
		/* A failed install stays failed. */
		assert_int_equal(fs_install_chunk(in, buf, len), -EBADMSG);
		assert_int_equal(fs_install_finish(in), -EBADMSG);
		fs_install_abort(in);
		free(copy);
		if (k == 3)
			len += 1;
	}
	/* A stream cut short does not finish. */
	assert_int_equal(fs_install_begin(f->dst, index, 3, &in), 0);
	assert_int_equal(fs_install_chunk(in, buf, len), 0);
	if (bytes > len)
		assert_int_equal(fs_install_finish(in), -EBADMSG);
	fs_install_abort(in);
	assert_int_equal(fs_store_hash(f->dst, after), 0);
	assert_memory_equal(before, after, sizeof(before));
	free(buf);
}

/* A store of files files holding mib MiB, with subdirectories, a sparse
 * file, xattrs and symlinks. */
static void build_large(struct fs_store *s, uint64_t files, uint64_t mib)
{
	struct fst_proposer p = {1, 1, 0, 1};
	uint64_t per = mib * 1024 * 1024 / files, index = 0, dirs[100];
	uint8_t *data = malloc(per + 1);
	struct fs_time t = {1700000000, 0};
	struct fs_result r;
	struct fs_cmd c;
	char name[64];

	for (uint64_t i = 0; i < per + 1; i++)
		data[i] = (uint8_t)(i * 7 + 3);
#define APPLY()                                                                \
	do {                                                                   \
		size_t len_;                                                   \
		uint8_t *b_ = fst_encode(&c, &len_);                           \
		p.low_water = p.seq;                                           \
		assert_int_equal(fs_store_apply(s, ++index, b_, len_, &r), 0); \
		assert_int_equal(r.err, 0);                                    \
		free(b_);                                                      \
	} while (0)
	fst_cmd(&c, FS_OP_INIT, &p, t);
	c.block_size = FS_BLOCK_SIZE_DEFAULT;
	c.capacity_bytes = 1ull << 40;
	c.max_inodes = 10000000;
	c.name_max = 255;
	c.mode = 0755;
	APPLY();
	for (int d = 0; d < 100; d++) {
		snprintf(name, sizeof(name), "dir%02d", d);
		fst_cmd(&c, FS_OP_CREATE, &p, t);
		c.ino = d < 10 ? FS_ROOT_INO : dirs[d / 10 - 1];
		c.name = name;
		c.name_len = (uint32_t)strlen(name);
		c.mode = S_IFDIR | 0755;
		APPLY();
		dirs[d] = r.ino;
	}
	for (uint64_t i = 0; i < files; i++) {
		uint64_t ino;
		snprintf(name, sizeof(name), "file-%06" PRIu64, i);
		fst_cmd(&c, FS_OP_CREATE, &p, t);
		c.ino = dirs[i % 100];
		c.name = name;
		c.name_len = (uint32_t)strlen(name);
		c.mode = S_IFREG | 0644;
		APPLY();
		ino = r.ino;
		fst_cmd(&c, FS_OP_WRITE, &p, t);
		c.ino = ino;
		c.offset = i % 97 == 0 ? 5 * FS_BLOCK_SIZE_DEFAULT : 0;
		c.data = data + (i % 2);
		c.data_len = (uint32_t)per;
		APPLY();
		if (i % 500 == 0) {
			fst_cmd(&c, FS_OP_SETXATTR, &p, t);
			c.ino = ino;
			c.name = "user.checksum";
			c.name_len = 13;
			c.data = name;
			c.data_len = (uint32_t)strlen(name);
			APPLY();
			fst_cmd(&c, FS_OP_SYMLINK, &p, t);
			c.ino = dirs[(i + 1) % 100];
			snprintf(name, sizeof(name), "link-%06" PRIu64, i);
			c.name = name;
			c.name_len = (uint32_t)strlen(name);
			c.data = "../some/target";
			c.data_len = 14;
			APPLY();
		}
	}
#undef APPLY
	free(data);
}

static void test_large_round_trip_survives_killed_installer(void **state)
{
	struct fix *f = *state;
	uint64_t files = fst_env_count("SNAP_FILES", 20000);
	uint64_t mib = fst_env_count("SNAP_MIB", 100);
	uint8_t old_hash[FS_HASH_BYTES], h[FS_HASH_BYTES];
	uint64_t bytes, index, int_index = 0, int_term = 0;
	double t0, t_build, t_snap, t_install;
	size_t chunks;
	pid_t pid;
	int status;

	t0 = now_s();
	build_large(f->src, files, mib);
	t_build = now_s() - t0;
	random_store(f->dst, 500, f->seed);
	assert_int_equal(fs_store_hash(f->dst, old_hash), 0);
	index = fs_store_applied_index(f->src);

	t0 = now_s();
	chunks = snapshot_to_file(f->src, f->fd, 11, &bytes);
	t_snap = now_s() - t0;
	assert_true(chunks > 2);

	/* The installer, a fresh process (LevelDB's background thread does
	 * not survive a bare fork), dies after half the chunks. */
	fs_store_close(f->dst);
	f->dst = NULL;
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		char arg[256];
		snprintf(arg, sizeof(arg), "%s %s %" PRIu64 " %zu", f->dst_dir,
			 f->stream, index, chunks / 2);
		setenv("SNAP_KILLED_INSTALLER", arg, 1);
		execl("/proc/self/exe", "test_snapshot", (char *)NULL);
		_exit(5);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);

	/* Restart: the old store, and the unfinished install reported. */
	assert_int_equal(fs_store_open(f->dst_dir, &f->dst), 0);
	assert_true(fs_store_interrupted_install(f->dst, &int_index,
						 &int_term));
	assert_int_equal(int_index, index);
	assert_int_equal(int_term, 11);
	assert_int_equal(fs_store_hash(f->dst, h), 0);
	assert_memory_equal(h, old_hash, sizeof(h));
	assert_int_equal(fs_store_applied_index(f->dst), 500);

	/* The install restarts from the first chunk and finishes. */
	assert_int_equal(lseek(f->fd, 0, SEEK_SET), 0);
	t0 = now_s();
	assert_int_equal(install_from_file(f->dst, f->fd, index, 11, SIZE_MAX),
			 0);
	t_install = now_s() - t0;
	assert_same_hash(f->src, f->dst);

	/* And it is the store after another restart. */
	fs_store_close(f->dst);
	assert_int_equal(fs_store_open(f->dst_dir, &f->dst), 0);
	assert_false(fs_store_interrupted_install(f->dst, NULL, NULL));
	assert_same_hash(f->src, f->dst);
	print_message("snapshot: %" PRIu64 " files, %" PRIu64
		      " MiB: built in %.1fs; stream %.1f MiB in %zu chunks, "
		      "created in %.2fs (%.0f MB/s), installed in %.2fs "
		      "(%.0f MB/s)\n",
		      files, mib, t_build, bytes / 1048576.0, chunks, t_snap,
		      bytes / 1e6 / t_snap, t_install, bytes / 1e6 / t_install);
}

/*
 * The child of test_large_round_trip_survives_killed_installer: with
 * SNAP_KILLED_INSTALLER="DIR STREAM INDEX N" the program installs N chunks
 * of the stream into the store in DIR and kills itself there, before main.
 */
__attribute__((constructor)) static void killed_installer(void)
{
	const char *arg = getenv("SNAP_KILLED_INSTALLER");
	char dir[4096], stream[4096];
	unsigned long long index;
	size_t n;
	struct fs_store *s = NULL;
	int fd;

	if (arg == NULL)
		return;
	if (sscanf(arg, "%4095s %4095s %llu %zu", dir, stream, &index, &n) != 4)
		_exit(3);
	fd = open(stream, O_RDONLY);
	if (fd < 0 || fs_store_open(dir, &s) != 0)
		_exit(3);
	install_from_file(s, fd, index, 11, n);
	_exit(4); /* not reached: killed at the stop point */
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

TEST_MAIN(T(test_round_trip_then_both_apply_on),
	  T(test_damaged_chunks_are_rejected),
	  T(test_large_round_trip_survives_killed_installer))
