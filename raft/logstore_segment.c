/*
 * Segment files of the log store: names, encodings and the checked read of
 * one record (raft/logstore_segment.h; the layout is in raft/logstore.h).
 */

#define _GNU_SOURCE
#include "raft/logstore_segment.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "raft/byteorder.h"
#include "raft/raft.h"

void raft_seg_name(char *name, uint64_t segment)
{
	snprintf(name, RAFT_SEG_NAME_BYTES, RAFT_SEG_NAME_PREFIX "%016" PRIx64,
		 segment);
}

uint64_t raft_seg_parse_name(const char *name)
{
	size_t plen = strlen(RAFT_SEG_NAME_PREFIX);
	uint64_t n = 0;

	if (strncmp(name, RAFT_SEG_NAME_PREFIX, plen) != 0 ||
	    strlen(name) != RAFT_SEG_NAME_BYTES - 1)
		return 0;
	for (const char *p = name + plen; *p != '\0'; p++) {
		int d;
		if (*p >= '0' && *p <= '9')
			d = *p - '0';
		else if (*p >= 'a' && *p <= 'f')
			d = *p - 'a' + 10;
		else
			return 0;
		n = n << 4 | (uint64_t)d;
	}
	return n;
}

void raft_seg_ref_encode(const struct raft_seg_ref *ref, uint8_t *p)
{
	raft_put_u64(p, ref->segment);
	raft_put_u64(p + 8, ref->offset);
	raft_put_u32(p + 16, ref->size);
	raft_put_u32(p + 20, ref->crc);
}

void raft_seg_ref_decode(const uint8_t *p, struct raft_seg_ref *ref)
{
	ref->segment = raft_get_u64(p);
	ref->offset = raft_get_u64(p + 8);
	ref->size = raft_get_u32(p + 16);
	ref->crc = raft_get_u32(p + 20);
}

void raft_seg_header_encode(uint8_t *p, uint64_t segment, uint64_t node_id)
{
	memset(p, 0, RAFT_SEG_HEADER_BYTES);
	raft_put_u32(p, RAFT_SEG_FILE_MAGIC);
	raft_put_u32(p + 4, RAFT_SEG_VERSION);
	raft_put_u64(p + 8, segment);
	raft_put_u64(p + 16, node_id);
	raft_put_u32(p + 28, raft_crc32c(0, p, 28));
}

int raft_seg_header_check(const uint8_t *p, uint64_t segment,
			  uint64_t node_id)
{
	if (raft_get_u32(p) != RAFT_SEG_FILE_MAGIC ||
	    raft_get_u32(p + 28) != raft_crc32c(0, p, 28))
		return -EUCLEAN;
	if (raft_get_u32(p + 4) > RAFT_SEG_VERSION)
		return -EPROTONOSUPPORT;
	if (raft_get_u32(p + 4) == 0 || raft_get_u64(p + 8) != segment ||
	    raft_get_u64(p + 16) != node_id || raft_get_u32(p + 24) != 0)
		return -EUCLEAN;
	return 0;
}

void raft_seg_record_header_encode(uint8_t *p, uint64_t index, uint64_t term,
				   uint32_t size, uint32_t crc)
{
	raft_put_u32(p, RAFT_SEG_RECORD_MAGIC);
	raft_put_u32(p + 4, size);
	raft_put_u64(p + 8, index);
	raft_put_u64(p + 16, term);
	raft_put_u32(p + 24, crc);
	raft_put_u32(p + 28, raft_crc32c(0, p, 28));
}

int raft_seg_record_read(int fd, const struct raft_seg_ref *ref,
			 uint64_t index, uint64_t term, uint8_t *buf,
			 char *why, size_t why_size)
{
	size_t want = RAFT_SEG_RECORD_HEADER_BYTES + (size_t)ref->size;
	size_t got = 0;

	while (got < want) {
		ssize_t n = pread(fd, buf + got, want - got,
				  (off_t)(ref->offset + got));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			snprintf(why, why_size, "read error at offset %" PRIu64
				 ": %s", ref->offset + got, strerror(errno));
			return -EIO;
		}
		if (n == 0) {
			snprintf(why, why_size,
				 "short: the record of entry %" PRIu64
				 " at offset %" PRIu64 " (%zu bytes) ends past "
				 "the end of the file",
				 index, ref->offset, want);
			return -EUCLEAN;
		}
		got += (size_t)n;
	}
	if (raft_get_u32(buf) != RAFT_SEG_RECORD_MAGIC ||
	    raft_get_u32(buf + 28) != raft_crc32c(0, buf, 28)) {
		snprintf(why, why_size,
			 "no valid record header at offset %" PRIu64
			 " (entry %" PRIu64 ")",
			 ref->offset, index);
		return -EUCLEAN;
	}
	if (raft_get_u32(buf + 4) != ref->size ||
	    raft_get_u64(buf + 8) != index || raft_get_u64(buf + 16) != term ||
	    raft_get_u32(buf + 24) != ref->crc) {
		snprintf(why, why_size,
			 "the record at offset %" PRIu64 " holds entry %" PRIu64
			 " term %" PRIu64 " (%" PRIu32 " bytes), not entry %" PRIu64
			 " term %" PRIu64 " (%" PRIu32 " bytes)",
			 ref->offset, raft_get_u64(buf + 8),
			 raft_get_u64(buf + 16), raft_get_u32(buf + 4), index,
			 term, ref->size);
		return -EUCLEAN;
	}
	if (raft_crc32c(0, buf + RAFT_SEG_RECORD_HEADER_BYTES, ref->size) !=
	    ref->crc) {
		snprintf(why, why_size,
			 "checksum mismatch in the payload of entry %" PRIu64
			 " at offset %" PRIu64,
			 index, ref->offset);
		return -EUCLEAN;
	}
	return 0;
}
