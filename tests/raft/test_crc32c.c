/*
 * CRC-32C (raft/crc32c.c): the published check values, continuation at
 * every split point, every alignment against a bit-at-a-time reference, and
 * LevelDB's entry point (which raftfs replaces at link time) giving the same
 * values. Corruption detection through LevelDB with this function is in
 * test_logstore (corrupt log and table files are refused).
 */

#include <stdlib.h>
#include <string.h>

/* The file itself, to reach both paths (software and SSE 4.2) whatever this
 * CPU has; it then provides raft_crc32c and LevelDB's symbol to this
 * program. */
#include "raft/crc32c.c"
#include "tests/lib/test_main.h"

static uint32_t leveldb_extend(uint32_t crc, const char *data, size_t n)
{
	return raft_leveldb_crc32c_extend(crc, data, n);
}

static uint32_t reference(uint32_t crc, const uint8_t *p, size_t len)
{
	crc = ~crc;
	while (len-- > 0) {
		crc ^= *p++;
		for (int k = 0; k < 8; k++)
			crc = crc & 1 ? (crc >> 1) ^ 0x82f63b78u : crc >> 1;
	}
	return ~crc;
}

static void test_check_values(void **state)
{
	uint8_t buf[32];

	(void)state;
	assert_int_equal(raft_crc32c(0, "123456789", 9), 0xe3069283u);
	assert_int_equal(raft_crc32c(0, "", 0), 0);
	/* RFC 3720, appendix B.4. */
	memset(buf, 0, sizeof(buf));
	assert_int_equal(raft_crc32c(0, buf, sizeof(buf)), 0x8a9136aau);
	memset(buf, 0xff, sizeof(buf));
	assert_int_equal(raft_crc32c(0, buf, sizeof(buf)), 0x62a8ab43u);
	for (int i = 0; i < 32; i++)
		buf[i] = (uint8_t)i;
	assert_int_equal(raft_crc32c(0, buf, sizeof(buf)), 0x46dd794eu);
	/* LevelDB's unit test values. */
	assert_int_equal(leveldb_extend(0, "a", 1), raft_crc32c(0, "a", 1));
	assert_int_equal(leveldb_extend(raft_crc32c(0, "hello ", 6), "world", 5),
			 raft_crc32c(0, "hello world", 11));
}

static void test_continuation(void **state)
{
	uint8_t buf[300];
	uint32_t whole;

	(void)state;
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(i * 131u + 7u);
	whole = raft_crc32c(0, buf, sizeof(buf));
	assert_int_equal(whole, reference(0, buf, sizeof(buf)));
	for (size_t cut = 0; cut <= sizeof(buf); cut++) {
		uint32_t c = raft_crc32c(0, buf, cut);
		assert_int_equal(raft_crc32c(c, buf + cut, sizeof(buf) - cut),
				 whole);
	}
}

static void test_alignments_and_lengths(void **state)
{
	enum { N = 6 * 4096 + 200 };
	uint8_t *buf = malloc(N);
	unsigned seed = 12345;

	(void)state;
	assert_non_null(buf);
	for (size_t i = 0; i < N; i++) {
		seed = seed * 1103515245u + 12345u;
		buf[i] = (uint8_t)(seed >> 16);
	}
	for (size_t off = 0; off < 16; off++)
		for (size_t len = 0; len < 80; len++)
			assert_int_equal(raft_crc32c(0x1234u, buf + off, len),
					 reference(0x1234u, buf + off, len));
	for (size_t off = 0; off < 8; off++) {
		size_t len = N - 64 + off;
		uint32_t want = reference(0, buf + off, len);

		assert_int_equal(raft_crc32c(0, buf + off, len), want);
		assert_int_equal(leveldb_extend(0, (const char *)buf + off,
						len),
				 want);
	}
	/* Both paths, whichever raft_crc32c picked on this CPU. */
	for (size_t off = 0; off < 9; off++)
		for (size_t len = 0; len < N - off; len += 1 + len / 3) {
			uint32_t want = ~reference(0, buf + off, len);

			assert_int_equal(crc_soft(~0u, buf + off, len), want);
#if defined(__x86_64__)
			if (raft_crc32c_hardware())
				assert_int_equal(crc_sse42(~0u, buf + off, len),
						 want);
#endif
		}
	/* Around the three-stream rounds of 3 x 4096 bytes. */
	for (size_t len = 3 * 4096 - 9; len < N - 8; len += 4096 - 3)
		for (size_t off = 0; off < 8; off++)
			assert_int_equal(raft_crc32c(7u, buf + off, len),
					 reference(7u, buf + off, len));
	free(buf);
}

TEST_MAIN(cmocka_unit_test(test_check_values),
	  cmocka_unit_test(test_continuation),
	  cmocka_unit_test(test_alignments_and_lengths))
