/*
 * ldbcrash: LevelDB on lazyfs. The writer puts keys with synced writes and
 * records each acknowledged one in a file outside the mount; after a power
 * loss the checker opens the database (paranoid checks) and requires every
 * acknowledged key with its exact value.
 *
 *   ldbcrash write DB ACKS FIRST COUNT   keys FIRST.. (stops at the first error)
 *   ldbcrash check DB ACKS               every key listed in ACKS present
 *
 * A small write buffer makes LevelDB flush tables, compact, roll its log and
 * write new MANIFEST/CURRENT files often; every fourth put is unsynced and
 * may be lost, and the value sizes vary so that records straddle blocks.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <leveldb/c.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The value of key i: its length and bytes follow from i alone. */
static size_t value_of(uint64_t i, char *buf, size_t size)
{
	uint64_t x = i * 0x9e3779b97f4a7c15ull + 1;
	size_t len = (size_t)(x % 3 == 0 ? 2000 + x % 9000 : x % 300), k;

	if (len > size)
		len = size;
	for (k = 0; k < len; k++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		buf[k] = (char)('a' + x % 26);
	}
	return len;
}

static leveldb_t *db_open(const char *dir, int create)
{
	leveldb_options_t *o = leveldb_options_create();
	leveldb_t *db;
	char *err = NULL;

	leveldb_options_set_create_if_missing(o, create);
	leveldb_options_set_paranoid_checks(o, 1);
	leveldb_options_set_write_buffer_size(o, 64u << 10);
	leveldb_options_set_compression(o, leveldb_no_compression);
	db = leveldb_open(o, dir, &err);
	leveldb_options_destroy(o);
	if (db == NULL) {
		fprintf(stderr, "ldbcrash: open %s: %s\n", dir, err);
		leveldb_free(err);
	}
	return db;
}

static int do_write(const char *dir, const char *acks, uint64_t first,
		    uint64_t count)
{
	leveldb_writeoptions_t *sync_w = leveldb_writeoptions_create();
	leveldb_writeoptions_t *lazy_w = leveldb_writeoptions_create();
	leveldb_t *db = db_open(dir, 1);
	int fd = open(acks, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	static char val[16384];
	uint64_t i;
	int rc = 1;

	leveldb_writeoptions_set_sync(sync_w, 1);
	if (db == NULL || fd < 0)
		goto out;
	for (i = first; i < first + count; i++) {
		char key[32], line[32];
		size_t vlen = value_of(i, val, sizeof(val));
		bool synced = i % 4 != 0;
		char *err = NULL;
		int klen = snprintf(key, sizeof(key), "k%012" PRIu64, i);
		int llen;

		leveldb_put(db, synced ? sync_w : lazy_w, key, (size_t)klen,
			    val, vlen, &err);
		if (err != NULL) {
			fprintf(stderr, "ldbcrash: put %s: %s\n", key, err);
			leveldb_free(err);
			goto out;
		}
		if (!synced)
			continue;
		llen = snprintf(line, sizeof(line), "%" PRIu64 "\n", i);
		if (write(fd, line, (size_t)llen) != llen)
			goto out;
	}
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	if (db != NULL)
		leveldb_close(db);
	leveldb_writeoptions_destroy(sync_w);
	leveldb_writeoptions_destroy(lazy_w);
	return rc;
}

static int do_check(const char *dir, const char *acks)
{
	leveldb_readoptions_t *ro = leveldb_readoptions_create();
	leveldb_t *db = db_open(dir, 0);
	FILE *f = fopen(acks, "r");
	static char want[16384];
	uint64_t i, n = 0, bad = 0;
	int rc = 1;

	leveldb_readoptions_set_verify_checksums(ro, 1);
	if (db == NULL || f == NULL)
		goto out;
	while (fscanf(f, "%" SCNu64, &i) == 1) {
		char key[32], *err = NULL, *got;
		size_t glen, wlen = value_of(i, want, sizeof(want));
		int klen = snprintf(key, sizeof(key), "k%012" PRIu64, i);

		got = leveldb_get(db, ro, key, (size_t)klen, &glen, &err);
		if (err != NULL) {
			fprintf(stderr, "ldbcrash: get %s: %s\n", key, err);
			leveldb_free(err);
			goto out;
		}
		if (got == NULL || glen != wlen || memcmp(got, want, wlen) != 0) {
			if (bad++ < 5)
				fprintf(stderr, "ldbcrash: acknowledged key %s %s\n",
					key, got == NULL ? "lost" : "has a wrong value");
		}
		leveldb_free(got);
		n++;
	}
	printf("%" PRIu64 " acknowledged keys checked, %" PRIu64 " missing or wrong\n",
	       n, bad);
	rc = bad == 0 ? 0 : 1;
out:
	if (f != NULL)
		fclose(f);
	if (db != NULL)
		leveldb_close(db);
	leveldb_readoptions_destroy(ro);
	return rc;
}

int main(int argc, char **argv)
{
	if (argc == 6 && strcmp(argv[1], "write") == 0)
		return do_write(argv[2], argv[3], strtoull(argv[4], NULL, 10),
				strtoull(argv[5], NULL, 10));
	if (argc == 4 && strcmp(argv[1], "check") == 0)
		return do_check(argv[2], argv[3]);
	fprintf(stderr, "usage: ldbcrash write DB ACKS FIRST COUNT | "
			"ldbcrash check DB ACKS\n");
	return 2;
}
