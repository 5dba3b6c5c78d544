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

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

static uint32_t crc_table[8][256];
static bool crc_hw;

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
/*
 * The crc32 instruction takes 3 cycles but can start one per cycle, so long
 * buffers run as three independent streams of STRIDE bytes, joined by the
 * identity reg(A B, r) = shift(reg(A, r)) ^ reg(B, 0), where shift is what
 * STRIDE zero bytes do to the register: a linear map, applied with four
 * byte tables built once (crc_init).
 */
#define STRIDE 4096u

static uint32_t crc_shift_table[4][256];

static uint32_t crc_shift(uint32_t r)
{
	return crc_shift_table[0][r & 0xff] ^
	       crc_shift_table[1][(r >> 8) & 0xff] ^
	       crc_shift_table[2][(r >> 16) & 0xff] ^ crc_shift_table[3][r >> 24];
}

static uint64_t load64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return v;
}

__attribute__((target("sse4.2"))) static uint32_t
crc_sse42(uint32_t crc, const uint8_t *p, size_t len)
{
	uint64_t c = crc;

	while (len > 0 && ((uintptr_t)p & 7) != 0) {
		c = _mm_crc32_u8((uint32_t)c, *p++);
		len--;
	}
	while (len >= 3 * STRIDE) {
		uint64_t c1 = 0, c2 = 0;

		for (size_t i = 0; i < STRIDE; i += 8) {
			c = _mm_crc32_u64(c, load64(p + i));
			c1 = _mm_crc32_u64(c1, load64(p + STRIDE + i));
			c2 = _mm_crc32_u64(c2, load64(p + 2 * STRIDE + i));
		}
		c = crc_shift(crc_shift((uint32_t)c) ^ (uint32_t)c1) ^
		    (uint32_t)c2;
		p += 3 * STRIDE;
		len -= 3 * STRIDE;
	}
	while (len >= 8) {
		c = _mm_crc32_u64(c, load64(p));
		p += 8;
		len -= 8;
	}
	while (len-- > 0)
		c = _mm_crc32_u8((uint32_t)c, *p++);
	return (uint32_t)c;
}

/* What STRIDE zero bytes do to register r (bit by bit; init only). */
static uint32_t crc_zeros(uint32_t r)
{
	for (unsigned i = 0; i < STRIDE * 8; i++)
		r = r & 1 ? (r >> 1) ^ 0x82f63b78u : r >> 1;
	return r;
}

static void crc_shift_init(void)
{
	uint32_t unit[32];

	for (int b = 0; b < 32; b++)
		unit[b] = crc_zeros(1u << b);
	for (int k = 0; k < 4; k++)
		for (uint32_t v = 0; v < 256; v++) {
			uint32_t r = 0;

			for (int b = 0; b < 8; b++)
				if (v & (1u << b))
					r ^= unit[8 * k + b];
			crc_shift_table[k][v] = r;
		}
}
#endif

/* Before main, so no thread can call in before the tables exist (the pure
 * core takes no locks), and first among constructors (101 is the first
 * priority programs may use): another constructor may already store or
 * check data (tests/fs/test_snapshot's killed installer does). */
__attribute__((constructor(101))) static void crc_init(void)
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
	if (crc_hw)
		crc_shift_init();
#endif
}

uint32_t raft_crc32c(uint32_t crc, const void *data, size_t len)
{
	const uint8_t *p = data;

#if defined(__x86_64__)
	if (crc_hw)
		return ~crc_sse42(~crc, p, len);
#endif
	return ~crc_soft(~crc, p, len);
}

bool raft_crc32c_hardware(void)
{
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
