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
 * raft/logstore_segment.c is stateless: file names, encodings, and reading
 * one record back with every check (no LevelDB, no locks; any thread).
 * raft/logstore_segment_write.c is the writer's side: the live segments,
 * placing and writing the payloads of one store write, deleting segments
 * once nothing references them (the store's writer thread only).
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "raft/raft.h"

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

/* dir/"segment-..." into path: 0, or -ENAMETOOLONG. */
int raft_seg_path(const char *dir, uint64_t num, char *path, size_t size);

/* ---- the writer's side (raft/logstore_segment_write.c) ---- */

/* A segment file that kept entries reference: their indexes lie in
 * [min_index, max_index] (bounds: a truncation or a compaction narrows
 * them without knowing exactly which entries remain). */
struct raft_seg_live {
	uint64_t num;
	uint64_t min_index;
	uint64_t max_index;
	uint64_t end; /* at open: the end of the last referenced record */
};

struct raft_seg_set {
	struct raft_seg_live *v; /* ascending num */
	size_t n;
	size_t cap;
};

struct raft_seg_live *raft_seg_set_find(struct raft_seg_set *s, uint64_t num);
/* Add segment num (kept ascending); NULL when out of memory. */
struct raft_seg_live *raft_seg_set_add(struct raft_seg_set *s, uint64_t num);

/* The segments of one store, as of its last durable write. */
struct raft_seg_writer {
	const char *dir;        /* the store's directory (not owned) */
	uint64_t node_id;       /* written into each segment's header */
	struct raft_seg_set live; /* every segment a kept entry references */
	int fd;                 /* the segment appended to, or -1 */
	uint64_t cur;           /* its number; 0: the next append starts one */
	uint64_t size;          /* its size: the next record's offset */
	uint64_t next;          /* the number of the next new segment */
};

void raft_seg_writer_init(struct raft_seg_writer *w, const char *dir,
			  uint64_t node_id);
/* Close the open segment and free the set. */
void raft_seg_writer_release(struct raft_seg_writer *w);
/* Open: entry index references ref (the store's scan, in index order). */
int raft_seg_writer_note(struct raft_seg_writer *w, uint64_t index,
			 const struct raft_seg_ref *ref);
/*
 * Open, after the scan: every noted segment exists with a valid header
 * and holds every referenced byte (-EUCLEAN, or -EPROTONOSUPPORT, with one
 * line in err naming the file); then segment files no entry references
 * are unlinked and new segments are numbered after every file present.
 */
int raft_seg_writer_open_check(struct raft_seg_writer *w, char *err,
			       size_t err_size);

/* A large payload of the pending write, appended at (seg, offset). */
struct raft_seg_append {
	uint64_t seg;
	uint64_t offset;
	const struct raft_entry *e; /* the caller's, valid during the write */
	uint32_t crc;
};

/* The segment side of one store write (or compaction), built while its
 * batch is, applied to the writer only once the batch is durable. */
struct raft_seg_stage {
	struct raft_seg_set segs; /* the live set as the batch leaves it */
	uint64_t cur;             /* 0: the next append starts a segment */
	uint64_t size;
	uint64_t next;
	struct raft_seg_append *app;
	size_t n_app, cap_app;
	uint64_t *dead; /* segments no kept entry references any more */
	size_t n_dead, cap_dead;
	int new_fd; /* the stage's cur, when created by this write */
};

/* 0 or -ENOMEM. */
int raft_seg_stage_init(struct raft_seg_stage *g,
			const struct raft_seg_writer *w);
void raft_seg_stage_free(struct raft_seg_stage *g);
/* Entries from index t on are gone (a suffix truncation; 0: all, an
 * installed snapshot). The next append starts a new segment. */
int raft_seg_stage_truncate(struct raft_seg_stage *g, uint64_t t);
/* Entries below c are gone (a compaction). */
int raft_seg_stage_compact(struct raft_seg_stage *g, uint64_t c);
/* Place e's payload (e->size > 0): *ref says where, with its CRC-32C. */
int raft_seg_stage_append(struct raft_seg_stage *g, const struct raft_entry *e,
			  struct raft_seg_ref *ref);
/*
 * Append and fdatasync every payload of the stage, creating segments as
 * placed (and fsync the directory when one was created): BEFORE the batch
 * that references them. 0, or -errno with what failed in what (a short
 * phrase naming the segment file).
 */
int raft_seg_stage_write(struct raft_seg_stage *g, struct raft_seg_writer *w,
			 char *what, size_t what_size);
/* The batch is durable: the stage becomes w's state and the segments no
 * entry references any more are unlinked (an unlink that fails or is lost
 * in a crash leaves an orphan, which the next open removes). */
void raft_seg_stage_commit(struct raft_seg_stage *g, struct raft_seg_writer *w);

#endif
