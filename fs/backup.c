/*
 * Backups: a snapshot stream (fs/snapshot.c) in a file, and its restore
 * into an empty store (docs/FS_STORE.md, "Backup files").
 *
 * File: header, then the snapshot's chunks, then a trailer.
 *   header  magic u32 "RFSB", version u32 (FS_BACKUP_VERSION), index u64,
 *           term u64, time u64 (Unix seconds), crc u32 (CRC-32C of the
 *           header's bytes before it)
 *   chunk   length u32 (1..FS_CHUNK_MIN), one snapshot chunk (its own
 *           version, offset, checksum; the last one flagged)
 *   trailer magic u32 "RFSE", chunks u64, bytes u64 (of the whole file up
 *           to the trailer), crc u32 (CRC-32C of every byte before it)
 *
 * A restore validates as it installs into a fresh store beside the empty
 * one (fs_install_*) and switches to it only after the trailer matched:
 * a damaged or cut file leaves the store as it was.
 */

#define _GNU_SOURCE
#include "fs/sha256.h"
#include "fs/store.h"
#include "raft/raft.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define BACKUP_MAGIC 0x52465342u  /* "RFSB" */
#define TRAILER_MAGIC 0x52465345u /* "RFSE" */
#define HEADER_BYTES (4 + 4 + 8 + 8 + 8 + 4)
#define TRAILER_BYTES (4 + 8 + 8 + 4)

static int say(char *err, size_t size, int rc, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int say(char *err, size_t size, int rc, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, size, fmt, ap);
	va_end(ap);
	return rc;
}

static int write_all(int fd, const void *p, size_t n)
{
	const uint8_t *b = p;

	while (n > 0) {
		ssize_t w = write(fd, b, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		b += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Exactly n bytes: 1, or 0 at a clean end of file before any, or -EBADMSG
 * (cut short), or -errno. */
static int read_all(int fd, void *p, size_t n)
{
	uint8_t *b = p;
	size_t got = 0;

	while (got < n) {
		ssize_t r = read(fd, b + got, n - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			return got == 0 ? 0 : -EBADMSG;
		got += (size_t)r;
	}
	return 1;
}

static int sync_dir_of(const char *path)
{
	char *copy = strdup(path);
	int fd, rc = 0;

	if (copy == NULL)
		return -ENOMEM;
	fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || fsync(fd) != 0)
		rc = -errno;
	if (fd >= 0)
		close(fd);
	free(copy);
	return rc;
}

int fs_backup_write(struct fs_store *s, uint64_t term, const char *path,
		    struct fs_backup_info *info, char *err, size_t err_size)
{
	struct fs_snapshot *snap = NULL;
	uint8_t head[HEADER_BYTES], tail[TRAILER_BYTES], lenb[4];
	struct fs_wbuf w;
	uint8_t *buf = NULL;
	char tmp[4200];
	uint64_t bytes = 0, chunks = 0;
	uint32_t crc = 0;
	bool last = false;
	int fd = -1, rc;

	memset(info, 0, sizeof(*info));
	if (access(path, F_OK) == 0)
		return say(err, err_size, -EEXIST,
			   "%s exists; remove it or name another file", path);
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp))
		return say(err, err_size, -ENAMETOOLONG, "%s: name too long",
			   path);
	buf = malloc(FS_CHUNK_MIN);
	if (buf == NULL)
		return say(err, err_size, -ENOMEM, "out of memory");
	rc = fs_snapshot_begin(s, term, &snap);
	if (rc != 0) {
		say(err, err_size, rc, "cannot read the fs store: %s",
		    strerror(-rc));
		goto out;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		rc = say(err, err_size, -errno, "cannot create %s: %s", tmp,
			 strerror(errno));
		goto out;
	}
	w = (struct fs_wbuf){head, sizeof(head), 0, false};
	fs_put_u32(&w, BACKUP_MAGIC);
	fs_put_u32(&w, FS_BACKUP_VERSION);
	fs_put_u64(&w, fs_snapshot_index(snap));
	fs_put_u64(&w, term);
	fs_put_u64(&w, (uint64_t)time(NULL));
	fs_put_u32(&w, raft_crc32c(0, head, HEADER_BYTES - 4));
	rc = write_all(fd, head, sizeof(head));
	crc = raft_crc32c(crc, head, sizeof(head));
	bytes += sizeof(head);
	while (rc == 0 && !last) {
		size_t len;
		rc = fs_snapshot_next(snap, buf, FS_CHUNK_MIN, &len, &last);
		if (rc != 0)
			break;
		w = (struct fs_wbuf){lenb, sizeof(lenb), 0, false};
		fs_put_u32(&w, (uint32_t)len);
		rc = write_all(fd, lenb, sizeof(lenb));
		if (rc == 0)
			rc = write_all(fd, buf, len);
		crc = raft_crc32c(crc, lenb, sizeof(lenb));
		crc = raft_crc32c(crc, buf, len);
		bytes += sizeof(lenb) + len;
		chunks++;
	}
	if (rc == 0) {
		w = (struct fs_wbuf){tail, sizeof(tail), 0, false};
		fs_put_u32(&w, TRAILER_MAGIC);
		fs_put_u64(&w, chunks);
		fs_put_u64(&w, bytes);
		crc = raft_crc32c(crc, tail, TRAILER_BYTES - 4);
		fs_put_u32(&w, crc);
		rc = write_all(fd, tail, sizeof(tail));
		bytes += sizeof(tail);
	}
	if (rc == 0 && fsync(fd) != 0)
		rc = -errno;
	if (rc != 0) {
		say(err, err_size, rc, "writing %s: %s", tmp, strerror(-rc));
		goto out;
	}
	close(fd);
	fd = -1;
	/* link, not rename: never over a file that appeared meanwhile. */
	if (link(tmp, path) != 0) {
		rc = say(err, err_size, -errno, "cannot create %s: %s", path,
			 strerror(errno));
		goto out;
	}
	unlink(tmp);
	rc = sync_dir_of(path);
	if (rc != 0) {
		say(err, err_size, rc, "syncing the directory of %s: %s", path,
		    strerror(-rc));
		goto out;
	}
	info->index = fs_snapshot_index(snap);
	info->term = term;
	info->bytes = bytes;
out:
	if (fd >= 0) {
		close(fd);
		unlink(tmp);
	} else if (rc != 0) {
		unlink(tmp);
	}
	fs_snapshot_end(snap);
	free(buf);
	return rc;
}

static int bad(char *err, size_t size, const char *path, const char *what)
{
	return say(err, size, -EBADMSG,
		   "%s is not a complete raftfs backup (%s); nothing was "
		   "restored",
		   path, what);
}

int fs_backup_restore(struct fs_store *s, const char *path,
		      struct fs_backup_info *info, char *err, size_t err_size)
{
	uint8_t head[HEADER_BYTES], tail[TRAILER_BYTES], lenb[4];
	struct fs_install *in = NULL;
	struct fs_rbuf r;
	uint8_t *buf = NULL;
	uint64_t index, term, bytes = 0, chunks = 0;
	uint32_t crc = 0, version, len;
	bool last = false;
	int fd, rc;

	memset(info, 0, sizeof(*info));
	if (fs_store_is_formatted(s))
		return say(err, err_size, -EEXIST,
			   "the fs store already holds a filesystem; restore "
			   "into a new data dir");
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return say(err, err_size, -errno, "cannot open %s: %s", path,
			   strerror(errno));
	rc = read_all(fd, head, sizeof(head));
	if (rc <= 0) {
		rc = rc < 0 && rc != -EBADMSG
			     ? say(err, err_size, rc, "reading %s: %s", path,
				   strerror(-rc))
			     : bad(err, err_size, path, "no header");
		goto out;
	}
	r = (struct fs_rbuf){head, sizeof(head), 0, false};
	if (fs_get_u32(&r) != BACKUP_MAGIC) {
		rc = bad(err, err_size, path, "not a backup file");
		goto out;
	}
	version = fs_get_u32(&r);
	index = fs_get_u64(&r);
	term = fs_get_u64(&r);
	(void)fs_get_u64(&r); /* the time it was taken */
	if (fs_get_u32(&r) != raft_crc32c(0, head, HEADER_BYTES - 4)) {
		rc = bad(err, err_size, path, "header checksum");
		goto out;
	}
	if (version != FS_BACKUP_VERSION) {
		rc = say(err, err_size, -EPROTONOSUPPORT,
			 "%s is a backup of format version %" PRIu32
			 "; this build reads version %u: use a build that "
			 "knows it",
			 path, version, FS_BACKUP_VERSION);
		goto out;
	}
	if (index == 0) {
		rc = bad(err, err_size, path, "index 0");
		goto out;
	}
	crc = raft_crc32c(crc, head, sizeof(head));
	bytes = sizeof(head);
	buf = malloc(FS_CHUNK_MIN);
	if (buf == NULL) {
		rc = say(err, err_size, -ENOMEM, "out of memory");
		goto out;
	}
	rc = fs_install_begin(s, index, term, &in);
	if (rc != 0) {
		say(err, err_size, rc, "cannot prepare the fs store: %s",
		    strerror(-rc));
		goto out;
	}
	/* A new cluster: no proposer of the old one will ever retry. */
	fs_install_forget_proposers(in);
	while (!last) {
		rc = read_all(fd, lenb, sizeof(lenb));
		if (rc <= 0)
			break;
		r = (struct fs_rbuf){lenb, sizeof(lenb), 0, false};
		len = fs_get_u32(&r);
		if (len == 0 || len > FS_CHUNK_MIN) {
			rc = -EBADMSG;
			break;
		}
		rc = read_all(fd, buf, len);
		if (rc <= 0) {
			rc = rc == 0 ? -EBADMSG : rc;
			break;
		}
		crc = raft_crc32c(crc, lenb, sizeof(lenb));
		crc = raft_crc32c(crc, buf, len);
		bytes += sizeof(lenb) + len;
		chunks++;
		rc = fs_install_chunk(in, buf, len);
		if (rc != 0)
			break;
		last = fs_install_complete(in);
	}
	if (rc == 0 && !last)
		rc = -EBADMSG; /* the file ends before the last chunk */
	if (rc == 1 || rc == 0) {
		uint8_t extra;
		rc = read_all(fd, tail, sizeof(tail));
		r = (struct fs_rbuf){tail, sizeof(tail), 0, false};
		if (rc == 1 &&
		    (fs_get_u32(&r) != TRAILER_MAGIC || fs_get_u64(&r) != chunks ||
		     fs_get_u64(&r) != bytes ||
		     fs_get_u32(&r) !=
			     raft_crc32c(crc, tail, TRAILER_BYTES - 4) ||
		     read_all(fd, &extra, 1) != 0))
			rc = -EBADMSG;
		else if (rc == 0)
			rc = -EBADMSG;
		else if (rc == 1)
			rc = 0;
	}
	if (rc == -EBADMSG) {
		bad(err, err_size, path,
		    last ? "its end is missing or damaged"
			 : "cut short or damaged");
		goto out;
	}
	if (rc == -EPROTONOSUPPORT) {
		say(err, err_size, rc,
		    "%s holds a snapshot stream of a version this build does "
		    "not know; use a build that knows it",
		    path);
		goto out;
	}
	if (rc != 0) {
		say(err, err_size, rc, "reading %s: %s", path, strerror(-rc));
		goto out;
	}
	rc = fs_install_finish(in);
	/* Released when it succeeds; -EBADMSG (the stream's superblock is
	 * not at its index) switched nothing: dropped below. Another error
	 * may come from the switch itself: the next open sorts it out. */
	if (rc != -EBADMSG)
		in = NULL;
	if (rc != 0) {
		say(err, err_size, rc, "installing %s: %s", path,
		    strerror(-rc));
		goto out;
	}
	info->index = index;
	info->term = term;
	info->bytes = bytes + TRAILER_BYTES;
out:
	if (in != NULL)
		fs_install_abort(in);
	close(fd);
	free(buf);
	return rc;
}
