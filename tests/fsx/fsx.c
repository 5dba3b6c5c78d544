/*
 * fsx: a seeded random data-integrity exerciser in the style of the classic
 * fsx (Avadis Tevanian's, later in xfstests). One file, random operations on
 * it, an in-memory copy of what it must hold, compared after every step.
 *
 *   fsx [-N ops] [-S seed] [-l max_file_bytes] [-o max_op_bytes]
 *       [-p fsync_percent] [-c full_check_every] [-r READER_PATH]
 *       [-x corrupt_at_op] [-T max_seconds] [-m min_ops] [-q] FILE
 *
 * Operations (weights in op_weights below): write (pwrite), read (pread,
 * compared), truncate (ftruncate up or down), fallocate with mode 0,
 * KEEP_SIZE, PUNCH_HOLE|KEEP_SIZE, ZERO_RANGE and ZERO_RANGE|KEEP_SIZE, mmap
 * read (MAP_SHARED, compared) and mmap write (MAP_SHARED, msync), and fsync.
 *
 * After every operation the file's size (fstat) must equal the copy's, and
 * every -c operations (default 1: each) the whole file is read back through
 * a second descriptor opened with O_DIRECT where the mount allows it, so the
 * bytes come from the filesystem rather than this node's page cache. After
 * every fsync, READER_PATH (the same file seen through another node's mount)
 * is opened afresh and read whole: it must hold exactly the copy.
 *
 * -x N (a test of fsx itself) flips one byte of the file behind fsx's back,
 * through another descriptor, right after operation N: the run must then
 * report a mismatch.
 *
 * -T S stops after S seconds of wall time even if fewer than -N operations
 * ran (a loaded machine); the run then fails unless at least -m operations
 * (default: all of -N) were done. Either way the count is printed.
 *
 * A fallocate mode the filesystem refuses with EOPNOTSUPP is counted and
 * never tried again (the copy is left alone); any other error fails the run.
 *
 * Output: the seed first, then per operation kind the count and the wall
 * time it took (fsync's without the reader), the time of the size,
 * whole-file and reader checks, ops/s at the end. On a mismatch: the last LOG_TAIL operations, the first differing
 * offset with the expected and found bytes around it, and exit status 1.
 * Exit 2: usage error or a failing system call.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/falloc.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define LOG_TAIL 40
#define ALIGN 4096

enum op_kind {
	OP_WRITE,
	OP_READ,
	OP_TRUNCATE,
	OP_FALLOC,
	OP_PUNCH,
	OP_ZERO,
	OP_MAPREAD,
	OP_MAPWRITE,
	OP_FSYNC,
	OP_KINDS
};

static const char *const op_names[OP_KINDS] = {
	"write", "read", "truncate", "fallocate", "punch_hole", "zero_range",
	"mapread", "mapwrite", "fsync",
};

/* Relative weights of the other kinds; fsync's share comes from -p. */
static const unsigned op_weights[OP_KINDS] = {
	[OP_WRITE] = 30, [OP_READ] = 20, [OP_TRUNCATE] = 8, [OP_FALLOC] = 6,
	[OP_PUNCH] = 6, [OP_ZERO] = 6, [OP_MAPREAD] = 10, [OP_MAPWRITE] = 10,
};

struct log_entry {
	uint64_t n;
	enum op_kind kind;
	int mode;
	uint64_t offset;
	uint64_t length;
	uint64_t size_after;
};

struct fsx {
	const char *path;
	const char *reader_path;
	int fd;
	int check_fd;          /* O_DIRECT when the mount allows it */
	bool check_direct;
	uint64_t seed;
	uint64_t rng;
	uint64_t max_len;
	uint64_t max_op;
	unsigned fsync_pct;
	uint64_t check_every;
	uint64_t corrupt_at;   /* UINT64_MAX: never */
	uint64_t max_seconds;  /* 0: no limit */
	bool quiet;
	unsigned char *model;  /* max_len bytes; [0, size) is the file */
	uint64_t size;
	unsigned char *buf;    /* max_len bytes, ALIGN-aligned */
	uint64_t counts[OP_KINDS];
	uint64_t unsupported[OP_KINDS];
	bool mode_refused[OP_KINDS][2];
	uint64_t full_checks;
	uint64_t reader_checks;
	double secs[OP_KINDS]; /* wall time per kind (fsync without the reader) */
	double full_check_secs;
	uint64_t size_checks;   /* fstat alone (a whole-file check has one) */
	double size_check_secs;
	double reader_secs;
	uint64_t op;
	struct log_entry log[LOG_TAIL];
};

static uint64_t rnd(struct fsx *f)
{
	/* xorshift64* */
	f->rng ^= f->rng >> 12;
	f->rng ^= f->rng << 25;
	f->rng ^= f->rng >> 27;
	return f->rng * 0x2545F4914F6CDD1DULL;
}

static uint64_t rnd_below(struct fsx *f, uint64_t n)
{
	return n == 0 ? 0 : rnd(f) % n;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void log_op(struct fsx *f, enum op_kind kind, int mode, uint64_t offset,
		   uint64_t length)
{
	struct log_entry *e = &f->log[f->op % LOG_TAIL];
	e->n = f->op;
	e->kind = kind;
	e->mode = mode;
	e->offset = offset;
	e->length = length;
	e->size_after = f->size;
}

static void print_log_tail(const struct fsx *f)
{
	uint64_t first = f->op + 1 > LOG_TAIL ? f->op + 1 - LOG_TAIL : 0;
	fprintf(stderr, "last %" PRIu64 " operations (op: kind offset+length -> size):\n",
		f->op + 1 - first);
	for (uint64_t n = first; n <= f->op; n++) {
		const struct log_entry *e = &f->log[n % LOG_TAIL];
		if (e->n != n)
			continue;
		fprintf(stderr, "  %6" PRIu64 ": %-10s", e->n, op_names[e->kind]);
		if (e->mode != 0)
			fprintf(stderr, " mode %#x", (unsigned)e->mode);
		fprintf(stderr, " %#" PRIx64 "+%#" PRIx64 " (%" PRIu64 "+%" PRIu64
			") -> %" PRIu64 "\n", e->offset, e->length, e->offset,
			e->length, e->size_after);
	}
}

static void die_sys(struct fsx *f, const char *what)
{
	fprintf(stderr, "fsx: op %" PRIu64 ": %s: %s (seed %" PRIu64 ")\n",
		f->op, what, strerror(errno), f->seed);
	print_log_tail(f);
	exit(2);
}

/* mismatch: report the first difference of GOT (LEN bytes from file offset
 * BASE) with the copy, and stop. */
static void mismatch(struct fsx *f, const char *where, uint64_t base,
		     const unsigned char *got, uint64_t len)
{
	uint64_t i = 0;
	while (i < len && got[i] == f->model[base + i])
		i++;
	fprintf(stderr, "fsx: MISMATCH after op %" PRIu64 " (%s), seed %" PRIu64
		": first differing offset %#" PRIx64 " (%" PRIu64 "), file size %"
		PRIu64 "\n", f->op, where, f->seed, base + i, base + i, f->size);
	uint64_t from = i >= 4 ? i - 4 : 0;
	uint64_t to = i + 12 < len ? i + 12 : len;
	fprintf(stderr, "  offset    want got\n");
	for (uint64_t k = from; k < to; k++)
		fprintf(stderr, "  %#8" PRIx64 "  %02x   %02x%s\n", base + k,
			f->model[base + k], got[k],
			got[k] != f->model[base + k] ? "  <" : "");
	print_log_tail(f);
	exit(1);
}

static void read_full(struct fsx *f, int fd, unsigned char *dst, uint64_t off,
		      uint64_t len, const char *what)
{
	uint64_t done = 0;
	while (done < len) {
		ssize_t n = pread(fd, dst + done, len - done, off + done);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			die_sys(f, what);
		}
		if (n == 0) {
			fprintf(stderr, "fsx: op %" PRIu64 ": %s: end of file at %"
				PRIu64 ", want %" PRIu64 " bytes (seed %" PRIu64 ")\n",
				f->op, what, off + done, off + len, f->seed);
			print_log_tail(f);
			exit(1);
		}
		done += (uint64_t)n;
	}
}

static void check_size(struct fsx *f, int fd, const char *where)
{
	struct stat st;
	if (fstat(fd, &st) != 0)
		die_sys(f, "fstat");
	if ((uint64_t)st.st_size != f->size) {
		fprintf(stderr, "fsx: MISMATCH after op %" PRIu64 " (%s), seed %"
			PRIu64 ": size %lld, want %" PRIu64 "\n", f->op, where,
			f->seed, (long long)st.st_size, f->size);
		print_log_tail(f);
		exit(1);
	}
}

/* The whole file through FD: size, every byte, and nothing past the end. */
static void check_whole(struct fsx *f, int fd, const char *where)
{
	check_size(f, fd, where);
	/* With O_DIRECT, read in aligned lengths; the short tail is fine. */
	uint64_t want = (f->size + ALIGN - 1) / ALIGN * ALIGN;
	uint64_t done = 0;
	while (done < want) {
		ssize_t n = pread(fd, f->buf + done, want - done + ALIGN, done);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			die_sys(f, where);
		}
		if (n == 0)
			break;
		done += (uint64_t)n;
	}
	if (done != f->size) {
		fprintf(stderr, "fsx: MISMATCH after op %" PRIu64 " (%s), seed %"
			PRIu64 ": read %" PRIu64 " bytes, want %" PRIu64 "\n",
			f->op, where, f->seed, done, f->size);
		print_log_tail(f);
		exit(1);
	}
	if (memcmp(f->buf, f->model, f->size) != 0)
		mismatch(f, where, 0, f->buf, f->size);
}

/* An offset and a length for an operation, the offset within the file's
 * possible range (sometimes past the end, for writes and fallocates). */
static void pick_range(struct fsx *f, bool past_end, uint64_t *off,
		       uint64_t *len)
{
	uint64_t limit = past_end ? f->max_len : f->size;
	if (limit == 0) {
		*off = 0;
		*len = 0;
		return;
	}
	*off = rnd_below(f, limit);
	*len = 1 + rnd_below(f, f->max_op);
	/* Now and then page-aligned, where the kernel and the store take other
	 * paths (whole pages, whole blocks). */
	if (rnd_below(f, 4) == 0) {
		*off &= ~(uint64_t)(ALIGN - 1);
		*len = (*len + ALIGN - 1) & ~(uint64_t)(ALIGN - 1);
	}
	if (*off + *len > limit)
		*len = limit - *off;
}

static void fill_random(struct fsx *f, unsigned char *dst, uint64_t len)
{
	uint64_t i = 0;
	while (i < len) {
		uint64_t r = rnd(f);
		for (int k = 0; k < 8 && i < len; k++, i++)
			dst[i] = (unsigned char)(r >> (8 * k));
	}
}

static void model_resize(struct fsx *f, uint64_t size)
{
	if (size > f->size)
		memset(f->model + f->size, 0, size - f->size);
	f->size = size;
}

static void do_write(struct fsx *f)
{
	uint64_t off, len;
	pick_range(f, true, &off, &len);
	if (len == 0)
		len = 1;
	if (off + len > f->max_len)
		off = f->max_len - len;
	fill_random(f, f->buf, len);
	uint64_t done = 0;
	while (done < len) {
		ssize_t n = pwrite(f->fd, f->buf + done, len - done, off + done);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			die_sys(f, "pwrite");
		}
		done += (uint64_t)n;
	}
	if (off + len > f->size)
		model_resize(f, off + len);
	memcpy(f->model + off, f->buf, len);
	log_op(f, OP_WRITE, 0, off, len);
}

static void do_read(struct fsx *f)
{
	uint64_t off, len;
	pick_range(f, false, &off, &len);
	log_op(f, OP_READ, 0, off, len);
	if (len == 0)
		return;
	read_full(f, f->fd, f->buf, off, len, "pread");
	if (memcmp(f->buf, f->model + off, len) != 0)
		mismatch(f, "read", off, f->buf, len);
}

static void do_truncate(struct fsx *f)
{
	uint64_t size;
	/* Mostly near the current size, now and then anywhere. */
	if (rnd_below(f, 2) == 0 && f->size > 0) {
		uint64_t delta = rnd_below(f, f->max_op);
		size = rnd_below(f, 2) == 0 ? f->size + delta :
		       (delta > f->size ? 0 : f->size - delta);
		if (size > f->max_len)
			size = f->max_len;
	} else {
		size = rnd_below(f, f->max_len + 1);
	}
	if (ftruncate(f->fd, (off_t)size) != 0)
		die_sys(f, "ftruncate");
	model_resize(f, size);
	log_op(f, OP_TRUNCATE, 0, size, 0);
}

/* One fallocate of KIND; MODE bits per kind, KEEP_SIZE at random. */
static void do_fallocate(struct fsx *f, enum op_kind kind)
{
	int keep = (int)rnd_below(f, 2);
	int mode = 0;
	uint64_t off, len;

	if (kind == OP_PUNCH)
		keep = 1; /* PUNCH_HOLE requires KEEP_SIZE */
	if (kind == OP_PUNCH)
		mode = FALLOC_FL_PUNCH_HOLE;
	else if (kind == OP_ZERO)
		mode = FALLOC_FL_ZERO_RANGE;
	if (keep)
		mode |= FALLOC_FL_KEEP_SIZE;
	if (f->mode_refused[kind][keep]) {
		/* Refused before: a write instead, so the op count stays. */
		do_write(f);
		f->counts[OP_WRITE]++;
		return;
	}
	pick_range(f, kind != OP_PUNCH, &off, &len);
	if (len == 0)
		len = 1;
	if (off + len > f->max_len)
		off = f->max_len - len;
	if (fallocate(f->fd, mode, (off_t)off, (off_t)len) != 0) {
		if (errno == EOPNOTSUPP) {
			f->mode_refused[kind][keep] = true;
			f->unsupported[kind]++;
			log_op(f, kind, mode, off, len);
			return;
		}
		die_sys(f, "fallocate");
	}
	uint64_t end = off + len;
	if (kind != OP_FALLOC) {
		/* Punch and zero: the range inside the file reads as zeros. */
		uint64_t zend = end < f->size ? end : f->size;
		if (off < zend)
			memset(f->model + off, 0, zend - off);
	}
	if (!keep && end > f->size)
		model_resize(f, end);
	log_op(f, kind, mode, off, len);
}

/* The pages covering [off, off + len) of a fresh MAP_SHARED mapping. */
static unsigned char *map_range(struct fsx *f, int prot, uint64_t off,
				uint64_t len, uint64_t *map_off, uint64_t *map_len)
{
	uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
	*map_off = off & ~(page - 1);
	*map_len = off + len - *map_off;
	void *p = mmap(NULL, *map_len, prot, MAP_SHARED, f->fd, (off_t)*map_off);
	if (p == MAP_FAILED)
		die_sys(f, "mmap");
	return p;
}

static void do_mapread(struct fsx *f)
{
	uint64_t off, len, map_off, map_len;
	pick_range(f, false, &off, &len);
	log_op(f, OP_MAPREAD, 0, off, len);
	if (len == 0)
		return;
	unsigned char *p = map_range(f, PROT_READ, off, len, &map_off, &map_len);
	memcpy(f->buf, p + (off - map_off), len);
	if (munmap(p, map_len) != 0)
		die_sys(f, "munmap");
	if (memcmp(f->buf, f->model + off, len) != 0)
		mismatch(f, "mapread", off, f->buf, len);
}

static void do_mapwrite(struct fsx *f)
{
	uint64_t off, len, map_off, map_len;
	pick_range(f, true, &off, &len);
	if (len == 0)
		len = 1;
	if (off + len > f->max_len)
		off = f->max_len - len;
	/* A mapping cannot grow the file: extend it first, as fsx does. */
	if (off + len > f->size) {
		if (ftruncate(f->fd, (off_t)(off + len)) != 0)
			die_sys(f, "ftruncate (mapwrite)");
		model_resize(f, off + len);
	}
	unsigned char *p = map_range(f, PROT_READ | PROT_WRITE, off, len,
				     &map_off, &map_len);
	fill_random(f, f->buf, len);
	memcpy(p + (off - map_off), f->buf, len);
	if (msync(p, map_len, MS_SYNC) != 0)
		die_sys(f, "msync");
	if (munmap(p, map_len) != 0)
		die_sys(f, "munmap");
	memcpy(f->model + off, f->buf, len);
	log_op(f, OP_MAPWRITE, 0, off, len);
}

static void do_fsync(struct fsx *f)
{
	if (fsync(f->fd) != 0)
		die_sys(f, "fsync");
	log_op(f, OP_FSYNC, 0, 0, 0);
	if (f->reader_path == NULL)
		return;
	double t = now_s();
	int fd = open(f->reader_path, O_RDONLY);
	if (fd < 0)
		die_sys(f, "open of the reader's path");
	check_whole(f, fd, "reader on the other mount after fsync");
	close(fd);
	f->reader_checks++;
	f->reader_secs += now_s() - t;
}

/* -x: one byte of the file changed through another descriptor, as a
 * filesystem that lost or garbled a write would show it. */
static void corrupt_file(struct fsx *f)
{
	unsigned char b;
	uint64_t off;
	int fd;

	if (f->size == 0)
		return;
	off = rnd_below(f, f->size);
	b = (unsigned char)(f->model[off] ^ 0x5a);
	fd = open(f->path, O_WRONLY);
	if (fd < 0 || pwrite(fd, &b, 1, (off_t)off) != 1 || fsync(fd) != 0)
		die_sys(f, "corrupting the file (-x)");
	close(fd);
	printf("fsx: -x: byte %#" PRIx64 " changed behind fsx's back after op %"
	       PRIu64 "\n", off, f->op);
	fflush(stdout);
}

static enum op_kind pick_kind(struct fsx *f)
{
	unsigned others = 0;
	uint64_t r;

	/* fsync_pct is a percentage of all operations; the others share the
	 * rest by their weights. */
	if (rnd_below(f, 100) < f->fsync_pct)
		return OP_FSYNC;
	for (int k = 0; k < OP_KINDS; k++)
		others += op_weights[k];
	r = rnd_below(f, others);
	for (int k = 0; k < OP_KINDS; k++) {
		if (r < op_weights[k])
			return (enum op_kind)k;
		r -= op_weights[k];
	}
	return OP_WRITE;
}

static int usage(void)
{
	fprintf(stderr, "usage: fsx [-N ops] [-S seed] [-l max_file_bytes] "
		"[-o max_op_bytes] [-p fsync_percent] [-c full_check_every] "
		"[-r reader_path] [-x corrupt_at_op] [-T max_seconds] [-m min_ops] "
		"[-q] FILE\n");
	return 2;
}

static bool parse_u64(const char *s, uint64_t *out)
{
	char *end;
	errno = 0;
	if (s[0] == '-' || s[0] == '\0')
		return false;
	unsigned long long v = strtoull(s, &end, 0);
	if (errno != 0 || *end != '\0')
		return false;
	*out = v;
	return true;
}

int main(int argc, char **argv)
{
	static struct fsx f;
	uint64_t nops = 10000, min_ops = UINT64_MAX, done_ops, v;
	int c;

	f.seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 20);
	f.max_len = 256 * 1024;
	f.max_op = 64 * 1024;
	f.fsync_pct = 2;
	f.check_every = 1;
	f.corrupt_at = UINT64_MAX;
	while ((c = getopt(argc, argv, "N:S:l:o:p:c:r:x:T:m:q")) != -1) {
		bool ok = true;
		switch (c) {
		case 'N':
			ok = parse_u64(optarg, &nops);
			break;
		case 'S':
			ok = parse_u64(optarg, &f.seed);
			break;
		case 'l':
			ok = parse_u64(optarg, &f.max_len) && f.max_len >= 1 &&
			     f.max_len <= (1ULL << 30);
			break;
		case 'o':
			ok = parse_u64(optarg, &f.max_op) && f.max_op >= 1;
			break;
		case 'p':
			ok = parse_u64(optarg, &v) && v <= 100;
			f.fsync_pct = (unsigned)v;
			break;
		case 'c':
			ok = parse_u64(optarg, &f.check_every);
			break;
		case 'x':
			ok = parse_u64(optarg, &f.corrupt_at);
			break;
		case 'T':
			ok = parse_u64(optarg, &f.max_seconds);
			break;
		case 'm':
			ok = parse_u64(optarg, &min_ops);
			break;
		case 'r':
			f.reader_path = optarg;
			break;
		case 'q':
			f.quiet = true;
			break;
		default:
			ok = false;
		}
		if (!ok)
			return usage();
	}
	if (optind != argc - 1)
		return usage();
	if (f.max_op > f.max_len)
		f.max_op = f.max_len;
	if (min_ops > nops)
		min_ops = nops;
	f.path = argv[optind];
	f.rng = f.seed * 0x9E3779B97F4A7C15ULL + 1;
	if (f.rng == 0)
		f.rng = 1;
	printf("fsx: seed %" PRIu64 ", %" PRIu64 " ops on %s, file up to %" PRIu64
	       " bytes, ops up to %" PRIu64 " bytes%s%s\n", f.seed, nops, f.path,
	       f.max_len, f.max_op, f.reader_path ? ", reader " : "",
	       f.reader_path ? f.reader_path : "");
	fflush(stdout);

	f.model = calloc(1, f.max_len);
	if (f.model == NULL ||
	    posix_memalign((void **)&f.buf, ALIGN, f.max_len + 2 * ALIGN) != 0) {
		fprintf(stderr, "fsx: out of memory\n");
		return 2;
	}
	f.fd = open(f.path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (f.fd < 0)
		die_sys(&f, "open");
	f.check_fd = open(f.path, O_RDONLY | O_DIRECT);
	f.check_direct = f.check_fd >= 0;
	if (f.check_fd < 0)
		f.check_fd = open(f.path, O_RDONLY);
	if (f.check_fd < 0)
		die_sys(&f, "open (checking descriptor)");

	double start = now_s();
	for (f.op = 0; f.op < nops; f.op++) {
		enum op_kind kind = pick_kind(&f);
		double t_op = now_s(), reader_before = f.reader_secs;
		f.counts[kind]++;
		switch (kind) {
		case OP_WRITE: do_write(&f); break;
		case OP_READ: do_read(&f); break;
		case OP_TRUNCATE: do_truncate(&f); break;
		case OP_FALLOC:
		case OP_PUNCH:
		case OP_ZERO: do_fallocate(&f, kind); break;
		case OP_MAPREAD: do_mapread(&f); break;
		case OP_MAPWRITE: do_mapwrite(&f); break;
		case OP_FSYNC: do_fsync(&f); break;
		case OP_KINDS: break;
		}
		if (f.op == f.corrupt_at)
			corrupt_file(&f);
		bool whole = f.check_every != 0 && (f.op + 1) % f.check_every == 0;
		double t_size = now_s();
		/* The size after every op; the whole-file check below begins
		 * with it, so it is not asked twice then. */
		if (!whole) {
			check_size(&f, f.fd, op_names[kind]);
			f.size_checks++;
		}
		f.size_check_secs += now_s() - t_size;
		f.secs[kind] += t_size - t_op - (f.reader_secs - reader_before);
		if (whole) {
			double t_check = now_s();
			check_whole(&f, f.check_fd, f.check_direct ?
				    "whole-file check (O_DIRECT)" : "whole-file check");
			f.full_checks++;
			f.full_check_secs += now_s() - t_check;
		}
		if (f.max_seconds != 0 && now_s() - start > (double)f.max_seconds) {
			f.op++;
			printf("fsx: the time limit of %" PRIu64 " s stopped the run "
			       "after %" PRIu64 " of %" PRIu64 " ops\n", f.max_seconds,
			       f.op, nops);
			break;
		}
		if (!f.quiet && (f.op + 1) % 5000 == 0) {
			printf("fsx: %" PRIu64 " ops, %.0f ops/s\n", f.op + 1,
			       (f.op + 1) / (now_s() - start));
			fflush(stdout);
		}
	}
	/* The end: one last fsync and the reader's view. */
	done_ops = f.op;
	do_fsync(&f);
	check_whole(&f, f.check_fd, "final check");
	double secs = now_s() - start;

	printf("fsx: %" PRIu64 " ops in %.1f s (%.0f ops/s), seed %" PRIu64
	       ", final size %" PRIu64 "\n", done_ops, secs, done_ops / secs,
	       f.seed, f.size);
	for (int k = 0; k < OP_KINDS; k++) {
		printf("  %-10s %8" PRIu64 " %8.1f s", op_names[k], f.counts[k],
		       f.secs[k]);
		if (f.unsupported[k] != 0)
			printf("  (EOPNOTSUPP for a mode: later ones became writes)");
		printf("\n");
	}
	printf("  size checks %" PRIu64 " %.1f s, whole-file checks %" PRIu64
	       " (%s) %.1f s, reader checks %" PRIu64 " %.1f s\n", f.size_checks,
	       f.size_check_secs, f.full_checks + 1,
	       f.check_direct ? "O_DIRECT" : "page cache", f.full_check_secs,
	       f.reader_checks, f.reader_secs);
	close(f.check_fd);
	close(f.fd);
	free(f.model);
	free(f.buf);
	if (done_ops < min_ops) {
		printf("fsx: only %" PRIu64 " ops within %" PRIu64 " s, want at "
		       "least %" PRIu64 "\n", done_ops, f.max_seconds, min_ops);
		return 1;
	}
	return 0;
}
