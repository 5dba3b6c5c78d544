/*
 * CRC-32C (Castagnoli), with the SSE 4.2 instruction where the CPU has it
 * and slicing by 8 where it does not; both give the same values.
 *
 * It is also LevelDB's: every byte raftfs stores passes LevelDB's CRC-32C
 * several times (WAL record, table block, and again when a read or a
 * compaction verifies it), and Debian's LevelDB is built without its
 * hardware path (port::AcceleratedCRC32C is compiled out), which cost 16-22 %
 * of all CPU during bulk writes (docs/BENCHMARKS.md). raftfs links LevelDB's
 * static library, and this file defines leveldb::crc32c::Extend, so the
 * linker takes this definition instead of the library's member (the Makefile
 * forces it with -u). Same function, same values: stores written by either
 * read with the other.
 */

#include "raft/raft.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

static uint32_t crc_table[8][256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;
static bool crc_hw;

static void crc_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = c & 1 ? (c >> 1) ^ 0x82f63b78u : c >> 1;
		crc_table[0][i] = c;
	}
	for (uint32_t i = 0; i < 256; i++)
		for (int t = 1; t < 8; t++)
			crc_table[t][i] = (crc_table[t - 1][i] >> 8) ^
					  crc_table[0][crc_table[t - 1][i] & 0xff];
#if defined(__x86_64__)
	__builtin_cpu_init();
	crc_hw = __builtin_cpu_supports("sse4.2");
#endif
}

/* crc here is the running register (already inverted). */
static uint32_t crc_soft(uint32_t crc, const uint8_t *p, size_t len)
{
	while (len >= 8) {
		uint32_t lo = crc ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 |
				     (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24);
		crc = crc_table[7][lo & 0xff] ^ crc_table[6][(lo >> 8) & 0xff] ^
		      crc_table[5][(lo >> 16) & 0xff] ^ crc_table[4][lo >> 24] ^
		      crc_table[3][p[4]] ^ crc_table[2][p[5]] ^
		      crc_table[1][p[6]] ^ crc_table[0][p[7]];
		p += 8;
		len -= 8;
	}
	while (len-- > 0)
		crc = crc_table[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return crc;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint32_t
crc_sse42(uint32_t crc, const uint8_t *p, size_t len)
{
	uint64_t c = crc;

	while (len > 0 && ((uintptr_t)p & 7) != 0) {
		c = _mm_crc32_u8((uint32_t)c, *p++);
		len--;
	}
	while (len >= 8) {
		uint64_t v;

		memcpy(&v, p, 8);
		c = _mm_crc32_u64(c, v);
		p += 8;
		len -= 8;
	}
	while (len-- > 0)
		c = _mm_crc32_u8((uint32_t)c, *p++);
	return (uint32_t)c;
}
#endif

uint32_t raft_crc32c(uint32_t crc, const void *data, size_t len)
{
	const uint8_t *p = data;

	pthread_once(&crc_once, crc_init);
#if defined(__x86_64__)
	if (crc_hw)
		return ~crc_sse42(~crc, p, len);
#endif
	return ~crc_soft(~crc, p, len);
}

bool raft_crc32c_hardware(void)
{
	pthread_once(&crc_once, crc_init);
	return crc_hw;
}

/* leveldb::crc32c::Extend(uint32_t init_crc, const char *data, size_t n):
 * the CRC-32C of data continued from init_crc, the same contract as
 * raft_crc32c. */
uint32_t raft_leveldb_crc32c_extend(uint32_t crc, const char *data, size_t len)
	__asm__("_ZN7leveldb6crc32c6ExtendEjPKcm");

uint32_t raft_leveldb_crc32c_extend(uint32_t crc, const char *data, size_t len)
{
	return raft_crc32c(crc, data, len);
}
