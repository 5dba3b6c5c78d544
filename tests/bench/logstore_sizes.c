/*
 * logstore_sizes: the cost of one synced log-store write by entry size,
 * to choose RAFT_LOGSTORE_SEGMENT_MIN_BYTES (docs/BENCHMARKS.md, "Bulk
 * data path"). For each size, COUNT writes of one entry each (a follower
 * persisting one FUSE write), then COUNT/4 writes of 8 entries: p50 and
 * p99 wall time per write, CPU (user + system) per MiB of payload, and the
 * bytes the process wrote to disk per byte of payload (/proc/self/io,
 * which also counts LevelDB's background flushes and compactions).
 *
 *   logstore_sizes DIR [COUNT]
 *
 * Built twice (tests/bench/module.mk): logstore_sizes as raftfs builds
 * the store, logstore_sizes-inline with every payload in LevelDB.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "raft/logstore.h"

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static double cpu_s(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

static uint64_t disk_written(void)
{
	FILE *f = fopen("/proc/self/io", "r");
	char line[128];
	uint64_t v = 0;

	if (f == NULL)
		return 0;
	while (fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "write_bytes: %" SCNu64, &v) == 1)
			break;
	fclose(f);
	return v;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* One row: count writes of per entries of size bytes each, into a fresh
 * store under dir. */
static int row(const char *dir, uint32_t size, uint32_t per, uint32_t count)
{
	struct raft_entry e[8];
	struct raft_logstore *ls = NULL;
	uint64_t *lat = calloc(count, sizeof(*lat));
	uint8_t *buf = malloc(size);
	char path[4096], err[512], cmd[4200];
	uint64_t w0, index = 1;
	double c0;
	int rc;

	if (lat == NULL || buf == NULL)
		return -ENOMEM;
	for (uint32_t i = 0; i < size; i++)
		buf[i] = (uint8_t)(i * 131 + (i >> 8));
	snprintf(path, sizeof(path), "%s/log-%" PRIu32 "-%" PRIu32, dir, size,
		 per);
	rc = raft_logstore_open(path, "bench", 1, true, &ls, NULL, err,
				sizeof(err));
	if (rc != 0) {
		fprintf(stderr, "logstore_sizes: %s\n", err);
		return rc;
	}
	c0 = cpu_s();
	w0 = disk_written();
	for (uint32_t n = 0; n < count && rc == 0; n++) {
		struct raft_logstore_write w = {n == 0, {1, 1}, 0, per, e,
						NULL, NULL, 0};
		for (uint32_t j = 0; j < per; j++)
			e[j] = (struct raft_entry){1, index++,
						   RAFT_ENTRY_NORMAL, size, buf};
		uint64_t t0 = now_ns();
		rc = raft_logstore_write(ls, &w, 1, err, sizeof(err));
		lat[n] = now_ns() - t0;
	}
	raft_logstore_close(ls); /* LevelDB's pending compactions finish */
	if (rc != 0) {
		fprintf(stderr, "logstore_sizes: %s\n", err);
	} else {
		double mib = (double)size * per * count / 1048576.0;
		double cpu = cpu_s() - c0;
		uint64_t wr = disk_written() - w0;
		qsort(lat, count, sizeof(*lat), cmp_u64);
		printf("%8" PRIu32 " B x %" PRIu32 ": p50 %7.0f us  p99 %7.0f "
		       "us  CPU %6.1f ms/MiB  disk %.2f B/B\n",
		       size, per, lat[count / 2] / 1e3,
		       lat[count * 99 / 100] / 1e3, cpu * 1e3 / mib,
		       (double)wr / (mib * 1048576.0));
	}
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path);
	if (system(cmd) != 0)
		rc = rc ? rc : -EIO;
	free(lat);
	free(buf);
	return rc;
}

int main(int argc, char **argv)
{
	static const uint32_t sizes[] = {4096, 16384, 32768, 65536, 131072,
					 262144, 1048576};
	uint32_t count = argc > 2 ? (uint32_t)strtoul(argv[2], NULL, 10) : 400;

	if (argc < 2 || count < 4) {
		fprintf(stderr, "usage: logstore_sizes DIR [COUNT >= 4]\n");
		return 2;
	}
	printf("%s: %s\n", argv[0],
	       strstr(argv[0], "inline") != NULL
		       ? "every payload in LevelDB"
		       : "payloads of 64 KiB and more in segment files");
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		uint32_t c = sizes[i] >= 262144 ? count / 4 : count;
		if (row(argv[1], sizes[i], 1, c) != 0 ||
		    row(argv[1], sizes[i], 8, c / 4) != 0)
			return 1;
	}
	return 0;
}
