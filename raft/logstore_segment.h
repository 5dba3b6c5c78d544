#ifndef RAFT_LOGSTORE_SEGMENT_H
#define RAFT_LOGSTORE_SEGMENT_H

/*
 * Segment files of the log store (private to raft/: raft/logstore.c writes
 * and reads them, raft/logstore_check.c verifies them). The payload of an
 * entry of at least RAFT_LOGSTORE_SEGMENT_MIN_BYTES is appended to a
 * segment file in the store's directory instead of going into LevelDB;
 * the entry's LevelDB record keeps its header and a reference (segment
 * number, offset, length, CRC-32C). Layout in raft/logstore.h.
 *
 * Everything here is stateless: file names, encodings, and reading one
 * record back with every check. No LevelDB, no locks; any thread.
 */

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#define RAFT_SEG_FILE_MAGIC 0x52465347u   /* "RFSG" */
#define RAFT_SEG_RECORD_MAGIC 0x52465352u /* "RFSR" */
#define RAFT_SEG_VERSION 1u
/* The file header and each record's header. */
#define RAFT_SEG_HEADER_BYTES 32u
#define RAFT_SEG_RECORD_HEADER_BYTES 32u
/* A reference in an entry's LevelDB value, after its 12-byte header. */
#define RAFT_SEG_REF_BYTES 24u
/* The name of segment n: "segment-" and 16 hex digits. */
#define RAFT_SEG_NAME_PREFIX "segment-"
#define RAFT_SEG_NAME_BYTES 25u /* with the terminating NUL */

/* Where an entry's payload lives. */
struct raft_seg_ref {
	uint64_t segment; /* segment number (>= 1) */
	uint64_t offset;  /* of the record header in the file */
	uint32_t size;    /* payload bytes */
	uint32_t crc;     /* CRC-32C of the payload */
};

/* "segment-%016" PRIx64 into name (RAFT_SEG_NAME_BYTES). */
void raft_seg_name(char *name, uint64_t segment);
/* The segment number a directory entry's name gives, or 0 when the name
 * is not a segment's. */
uint64_t raft_seg_parse_name(const char *name);

void raft_seg_ref_encode(const struct raft_seg_ref *ref, uint8_t *p);
void raft_seg_ref_decode(const uint8_t *p, struct raft_seg_ref *ref);

/* A segment file's header for (segment, node_id). */
void raft_seg_header_encode(uint8_t *p, uint64_t segment, uint64_t node_id);
/* 0 when p is a well-formed header of segment for node_id, -EUCLEAN
 * otherwise (-EPROTONOSUPPORT a newer version). */
int raft_seg_header_check(const uint8_t *p, uint64_t segment,
			  uint64_t node_id);

/* The header of the record holding entry (index, term) with the payload
 * ref describes. */
void raft_seg_record_header_encode(uint8_t *p, uint64_t index, uint64_t term,
				   uint32_t size, uint32_t crc);

/*
 * Read the record ref points at from fd (a segment file) into buf (at
 * least RAFT_SEG_RECORD_HEADER_BYTES + ref->size bytes) and check it: the
 * whole record there, its header well-formed and naming (index, term) and
 * the size and CRC of ref, the payload's CRC-32C. The payload is at buf +
 * RAFT_SEG_RECORD_HEADER_BYTES. 0, -EIO (read error) or -EUCLEAN with
 * what is wrong in why (a short phrase, no file name).
 */
int raft_seg_record_read(int fd, const struct raft_seg_ref *ref,
			 uint64_t index, uint64_t term, uint8_t *buf,
			 char *why, size_t why_size);

#endif
