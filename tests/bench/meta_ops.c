/*
 * meta_ops: one metadata operation over N numbered names with W threads,
 * timed per call; prints the rate and the p50/p99 latency. Used by
 * tests/bench/metadata_path.sh (docs/BENCHMARKS.md, "Metadata path").
 *
 *   meta_ops create|stat|unlink|mkdir|rmdir DIR N W [--per-dir]
 *
 * create: open(O_CREAT|O_EXCL|O_WRONLY, 0644), one 4 KiB write, close
 * (the small-file row of `make bench`). Names are DIR/f%06d, split
 * round-robin among the threads; with --per-dir thread k uses DIR/dk/
 * (made first), so the threads do not share one directory's lock.
 */

#define _GNU_SOURCE

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_THREADS 256
#define MAX_FILES 10000000L
#define FILE_BYTES 4096

enum op { OP_CREATE, OP_STAT, OP_UNLINK, OP_MKDIR, OP_RMDIR };

struct run {
	enum op op;
	const char *dir;
	long n;
	long workers;
	int per_dir;
	double *lat; /* seconds, one per name */
	int failed;  /* first errno seen, 0 when none */
	pthread_mutex_t lock;
};

struct worker {
	struct run *run;
	long k;
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int one(const struct run *r, const char *path, const char *data)
{
	struct stat st;
	int fd;

	switch (r->op) {
	case OP_CREATE:
		fd = open(path, O_CREAT | O_EXCL | O_WRONLY, 0644);
		if (fd < 0)
			return errno;
		if (write(fd, data, FILE_BYTES) != FILE_BYTES) {
			int e = errno ? errno : EIO;
			close(fd);
			return e;
		}
		return close(fd) == 0 ? 0 : errno;
	case OP_STAT:
		return stat(path, &st) == 0 ? 0 : errno;
	case OP_UNLINK:
		return unlink(path) == 0 ? 0 : errno;
	case OP_MKDIR:
		return mkdir(path, 0755) == 0 ? 0 : errno;
	case OP_RMDIR:
		return rmdir(path) == 0 ? 0 : errno;
	}
	return EINVAL;
}

static void *work(void *arg)
{
	struct worker *w = arg;
	struct run *r = w->run;
	static char data[FILE_BYTES];
	char path[4096];

	memset(data, 'r', sizeof(data));
	for (long i = w->k; i < r->n; i += r->workers) {
		double t0;
		int e;

		if (r->per_dir)
			snprintf(path, sizeof(path), "%s/d%ld/f%06ld", r->dir,
				 w->k, i);
		else
			snprintf(path, sizeof(path), "%s/f%06ld", r->dir, i);
		t0 = now_s();
		e = one(r, path, data);
		r->lat[i] = now_s() - t0;
		if (e != 0) {
			pthread_mutex_lock(&r->lock);
			if (r->failed == 0) {
				r->failed = e;
				fprintf(stderr, "meta_ops: %s: %s\n", path,
					strerror(e));
			}
			pthread_mutex_unlock(&r->lock);
			return NULL;
		}
	}
	return NULL;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static int parse_op(const char *s, enum op *op)
{
	static const struct {
		const char *name;
		enum op op;
	} ops[] = {{"create", OP_CREATE}, {"stat", OP_STAT},
		   {"unlink", OP_UNLINK}, {"mkdir", OP_MKDIR},
		   {"rmdir", OP_RMDIR}};

	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
		if (strcmp(s, ops[i].name) == 0) {
			*op = ops[i].op;
			return 0;
		}
	return -1;
}

static int parse_long(const char *s, long lo, long hi, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi)
		return -1;
	*out = v;
	return 0;
}

int main(int argc, char **argv)
{
	static pthread_t threads[MAX_THREADS];
	static struct worker workers[MAX_THREADS];
	struct run r;
	double t0, elapsed;
	long started = 0;

	memset(&r, 0, sizeof(r));
	if ((argc != 5 && argc != 6) || parse_op(argv[1], &r.op) != 0 ||
	    parse_long(argv[3], 1, MAX_FILES, &r.n) != 0 ||
	    parse_long(argv[4], 1, MAX_THREADS, &r.workers) != 0 ||
	    (argc == 6 && strcmp(argv[5], "--per-dir") != 0)) {
		fprintf(stderr, "usage: meta_ops create|stat|unlink|mkdir|rmdir "
				"DIR N(1..%ld) W(1..%d) [--per-dir]\n",
			MAX_FILES, MAX_THREADS);
		return 2;
	}
	r.dir = argv[2];
	r.per_dir = argc == 6;
	r.lat = calloc((size_t)r.n, sizeof(*r.lat));
	if (r.lat == NULL) {
		fprintf(stderr, "meta_ops: out of memory\n");
		return 1;
	}
	pthread_mutex_init(&r.lock, NULL);
	if (r.per_dir && (r.op == OP_CREATE || r.op == OP_MKDIR))
		for (long k = 0; k < r.workers; k++) {
			char path[4096];
			snprintf(path, sizeof(path), "%s/d%ld", r.dir, k);
			if (mkdir(path, 0755) != 0 && errno != EEXIST) {
				fprintf(stderr, "meta_ops: %s: %s\n", path,
					strerror(errno));
				return 1;
			}
		}
	t0 = now_s();
	for (long k = 0; k < r.workers; k++) {
		workers[k] = (struct worker){&r, k};
		if (pthread_create(&threads[k], NULL, work, &workers[k]) != 0)
			break;
		started++;
	}
	for (long k = 0; k < started; k++)
		pthread_join(threads[k], NULL);
	elapsed = now_s() - t0;
	if (started < r.workers || r.failed != 0) {
		if (started < r.workers)
			fprintf(stderr, "meta_ops: could not start threads\n");
		return 1;
	}
	qsort(r.lat, (size_t)r.n, sizeof(*r.lat), cmp_double);
	printf("%s n=%ld workers=%ld%s: %.0f/s p50 %.3f ms p99 %.3f ms\n",
	       argv[1], r.n, r.workers, r.per_dir ? " (a directory each)" : "",
	       (double)r.n / elapsed, r.lat[r.n / 2] * 1e3,
	       r.lat[(r.n * 99) / 100] * 1e3);
	free(r.lat);
	return 0;
}
