/*
 * The segment side of the log store's writes (raft/logstore_segment.h):
 * the set of live segments, where each large payload of a write goes, the
 * appends and syncs before the write's batch, and the deletions once it
 * is durable; the checks of an open. Writer thread only.
 */

#define _GNU_SOURCE
#include "raft/logstore_segment.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "raft/logstore.h"
#include "raft/raft.h"

int raft_seg_path(const char *dir, uint64_t num, char *path, size_t size)
{
	char name[RAFT_SEG_NAME_BYTES];
	int n;

	raft_seg_name(name, num);
	n = snprintf(path, size, "%s/%s", dir, name);
	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

void raft_seg_writer_init(struct raft_seg_writer *w, const char *dir,
			  uint64_t node_id)
{
	memset(w, 0, sizeof(*w));
	w->dir = dir;
	w->node_id = node_id;
	w->fd = -1;
	w->next = 1;
}

void raft_seg_writer_release(struct raft_seg_writer *w)
{
	if (w->fd >= 0)
		close(w->fd);
	w->fd = -1;
	free(w->live.v);
	w->live.v = NULL;
	w->live.n = w->live.cap = 0;
}

struct raft_seg_live *raft_seg_set_find(struct raft_seg_set *s, uint64_t num)
{
	for (size_t i = s->n; i-- > 0;)
		if (s->v[i].num == num)
			return &s->v[i];
	return NULL;
}

/* Add segment num (kept ascending). */
struct raft_seg_live *raft_seg_set_add(struct raft_seg_set *s, uint64_t num)
{
	size_t at = s->n;

	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 16;
		struct raft_seg_live *v = realloc(s->v, cap * sizeof(*v));
		if (v == NULL)
			return NULL;
		s->v = v;
		s->cap = cap;
	}
	while (at > 0 && s->v[at - 1].num > num)
		at--;
	memmove(&s->v[at + 1], &s->v[at], (s->n - at) * sizeof(*s->v));
	s->n++;
	s->v[at] = (struct raft_seg_live){num, UINT64_MAX, 0, 0};
	return &s->v[at];
}

static int seg_set_copy(struct raft_seg_set *dst, const struct raft_seg_set *src)
{
	dst->n = dst->cap = 0;
	dst->v = NULL;
	if (src->n == 0)
		return 0;
	dst->v = malloc(src->cap * sizeof(*dst->v));
	if (dst->v == NULL)
		return -ENOMEM;
	memcpy(dst->v, src->v, src->n * sizeof(*dst->v));
	dst->n = src->n;
	dst->cap = src->cap;
	return 0;
}

int raft_seg_stage_init(struct raft_seg_stage *g, const struct raft_seg_writer *w)
{
	memset(g, 0, sizeof(*g));
	g->cur = w->cur;
	g->size = w->size;
	g->next = w->next;
	g->new_fd = -1;
	return seg_set_copy(&g->segs, &w->live);
}

void raft_seg_stage_free(struct raft_seg_stage *g)
{
	free(g->segs.v);
	free(g->app);
	free(g->dead);
	if (g->new_fd >= 0)
		close(g->new_fd);
}

/* Segment i is no longer referenced: drop it, unlink it once durable. */
static int stage_kill(struct raft_seg_stage *g, size_t i)
{
	if (g->n_dead == g->cap_dead) {
		size_t cap = g->cap_dead ? g->cap_dead * 2 : 8;
		uint64_t *d = realloc(g->dead, cap * sizeof(*d));
		if (d == NULL)
			return -ENOMEM;
		g->dead = d;
		g->cap_dead = cap;
	}
	g->dead[g->n_dead++] = g->segs.v[i].num;
	if (g->segs.v[i].num == g->cur)
		g->cur = 0;
	memmove(&g->segs.v[i], &g->segs.v[i + 1],
		(g->segs.n - i - 1) * sizeof(*g->segs.v));
	g->segs.n--;
	return 0;
}

/* Entries from index t on are gone (a suffix truncation, or all of
 * them: t = 0). Appends after it start a new segment, so that a
 * segment's indexes never go backwards. */
int raft_seg_stage_truncate(struct raft_seg_stage *g, uint64_t t)
{
	for (size_t i = g->segs.n; i-- > 0;) {
		struct raft_seg_live *s = &g->segs.v[i];
		if (s->min_index >= t) {
			int rc = stage_kill(g, i);
			if (rc != 0)
				return rc;
		} else if (s->max_index >= t) {
			s->max_index = t - 1;
		}
	}
	g->cur = 0;
	return 0;
}

/* Entries below c are gone (a compaction). */
int raft_seg_stage_compact(struct raft_seg_stage *g, uint64_t c)
{
	for (size_t i = g->segs.n; i-- > 0;) {
		struct raft_seg_live *s = &g->segs.v[i];
		if (s->max_index < c) {
			int rc = stage_kill(g, i);
			if (rc != 0)
				return rc;
		} else if (s->min_index < c) {
			s->min_index = c;
		}
	}
	return 0;
}

/* Place e's payload: the current segment, or a new one when there is
 * none or this record would take it past RAFT_LOGSTORE_SEGMENT_BYTES. */
int raft_seg_stage_append(struct raft_seg_stage *g, const struct raft_entry *e,
			struct raft_seg_ref *ref)
{
	uint64_t rec = RAFT_SEG_RECORD_HEADER_BYTES + (uint64_t)e->size;
	struct raft_seg_live *s;

	if (g->cur == 0 || (g->size > RAFT_SEG_HEADER_BYTES &&
			    g->size + rec > RAFT_LOGSTORE_SEGMENT_BYTES)) {
		g->cur = g->next++;
		g->size = RAFT_SEG_HEADER_BYTES;
		s = raft_seg_set_add(&g->segs, g->cur);
	} else {
		s = raft_seg_set_find(&g->segs, g->cur);
	}
	if (s == NULL)
		return -ENOMEM;
	if (g->n_app == g->cap_app) {
		size_t cap = g->cap_app ? g->cap_app * 2 : 16;
		struct raft_seg_append *a = realloc(g->app, cap * sizeof(*a));
		if (a == NULL)
			return -ENOMEM;
		g->app = a;
		g->cap_app = cap;
	}
	if (e->index < s->min_index)
		s->min_index = e->index;
	if (e->index > s->max_index)
		s->max_index = e->index;
	ref->segment = g->cur;
	ref->offset = g->size;
	ref->size = e->size;
	ref->crc = raft_crc32c(0, e->data, e->size);
	g->app[g->n_app++] = (struct raft_seg_append){ref->segment, ref->offset, e,
						 ref->crc};
	g->size += rec;
	return 0;
}

static int sync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rc = 0;

	if (fd < 0)
		return -errno;
#ifndef RAFT_LOGSTORE_TEST_SKIP_SYNC
	if (fsync(fd) != 0)
		rc = -errno;
#endif
	close(fd);
	return rc;
}

/* Write iov (cnt entries, len bytes) at off, whole. */
static int pwrite_all(int fd, struct iovec *iov, int cnt, off_t off)
{
	while (cnt > 0) {
		int n_iov = cnt < IOV_MAX ? cnt : IOV_MAX;
		ssize_t n = pwritev(fd, iov, n_iov, off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO;
		off += n;
		while (cnt > 0 && (size_t)n >= iov->iov_len) {
			n -= (ssize_t)iov->iov_len;
			iov++;
			cnt--;
		}
		if (cnt > 0) {
			iov->iov_base = (uint8_t *)iov->iov_base + n;
			iov->iov_len -= (size_t)n;
		}
	}
	return 0;
}

/* Append the records g->app[from..to) (all of one segment) to its file,
 * creating it when new, and sync them. *fd: the open file (w->fd, or a
 * new one the caller then owns); *created when this call created it. */
static int write_group(struct raft_seg_writer *w, struct raft_seg_stage *g,
		       size_t from, size_t to, int *fd, bool *created,
		       char *what, size_t what_size)
{
	uint64_t num = g->app[from].seg;
	size_t n = 2 * (to - from) + 1;
	struct iovec *iov = calloc(n, sizeof(*iov));
	uint8_t *heads = malloc((to - from + 1) * RAFT_SEG_RECORD_HEADER_BYTES);
	char path[4096], name[RAFT_SEG_NAME_BYTES];
	int cnt = 0, rc;
	off_t off = (off_t)g->app[from].offset;

	raft_seg_name(name, num);
	*fd = -1;
	*created = false;
	if (iov == NULL || heads == NULL) {
		rc = -ENOMEM;
		snprintf(what, what_size, "out of memory");
		goto out;
	}
	rc = raft_seg_path(w->dir, num, path, sizeof(path));
	if (rc != 0) {
		snprintf(what, what_size, "%s: path too long", name);
		goto out;
	}
	if (num == w->cur && w->fd >= 0) {
		*fd = w->fd;
	} else {
		*fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
		if (*fd < 0) {
			rc = -errno;
			snprintf(what, what_size, "cannot create %s: %s", name,
				 strerror(errno));
			goto out;
		}
		*created = true;
		raft_seg_header_encode(heads, num, w->node_id);
		iov[cnt++] = (struct iovec){heads, RAFT_SEG_HEADER_BYTES};
		off = 0;
	}
	for (size_t i = from; i < to; i++) {
		const struct raft_seg_append *a = &g->app[i];
		uint8_t *h = heads + (i - from + 1) * RAFT_SEG_RECORD_HEADER_BYTES;
		raft_seg_record_header_encode(h, a->e->index, a->e->term,
					      a->e->size, a->crc);
		iov[cnt++] = (struct iovec){h, RAFT_SEG_RECORD_HEADER_BYTES};
		iov[cnt++] = (struct iovec){(void *)a->e->data, a->e->size};
	}
	rc = pwrite_all(*fd, iov, cnt, off);
#ifndef RAFT_LOGSTORE_TEST_SKIP_SYNC
	if (rc == 0 && fdatasync(*fd) != 0)
		rc = -errno;
#endif
	if (rc != 0)
		snprintf(what, what_size, "%s: %s", name, strerror(-rc));
out:
	free(iov);
	free(heads);
	return rc;
}

int raft_seg_stage_write(struct raft_seg_stage *g, struct raft_seg_writer *w,
			 char *what, size_t what_size)
{
	bool any_created = false;
	int rc = 0;

	for (size_t from = 0; rc == 0 && from < g->n_app;) {
		size_t to = from + 1;
		bool created = false;
		int fd = -1;
		while (to < g->n_app && g->app[to].seg == g->app[from].seg)
			to++;
		rc = write_group(w, g, from, to, &fd, &created, what, what_size);
		any_created |= created;
		if (created) {
			/* Keep the file the next writes append to. */
			if (rc == 0 && g->app[from].seg == g->cur)
				g->new_fd = fd;
			else if (fd >= 0)
				close(fd);
		}
		from = to;
	}
	if (rc == 0 && any_created) {
		rc = sync_dir(w->dir);
		if (rc != 0)
			snprintf(what, what_size, "syncing the directory: %s",
				 strerror(-rc));
	}
	return rc;
}

void raft_seg_stage_commit(struct raft_seg_stage *g, struct raft_seg_writer *w)
{
	char path[4096];

	if (w->cur != g->cur || g->cur == 0) {
		if (w->fd >= 0)
			close(w->fd);
		w->fd = -1;
		if (g->cur != 0 && g->new_fd >= 0) {
			w->fd = g->new_fd;
			g->new_fd = -1;
		}
	}
	w->cur = w->fd >= 0 ? g->cur : 0;
	w->size = g->size;
	w->next = g->next;
	free(w->live.v);
	w->live = g->segs;
	g->segs.v = NULL;
	g->segs.n = g->segs.cap = 0;
	for (size_t i = 0; i < g->n_dead; i++)
		if (raft_seg_path(w->dir, g->dead[i], path, sizeof(path)) == 0)
			unlink(path);
}

int raft_seg_writer_note(struct raft_seg_writer *w, uint64_t index,
			 const struct raft_seg_ref *ref)
{
	struct raft_seg_live *s;
	uint64_t end = ref->offset + RAFT_SEG_RECORD_HEADER_BYTES + ref->size;

	s = raft_seg_set_find(&w->live, ref->segment);
	if (s == NULL)
		s = raft_seg_set_add(&w->live, ref->segment);
	if (s == NULL)
		return -ENOMEM;
	if (index < s->min_index)
		s->min_index = index;
	if (index > s->max_index)
		s->max_index = index;
	if (end > s->end)
		s->end = end;
	return 0;
}

/* Every referenced segment file is there, with its header and at least
 * the bytes referenced (records are checked when read: fsck --data reads
 * them all). Then unreferenced segment files (a crash between a
 * segment's sync and its batch, or before a deletion) are removed, and
 * new appends go to a new segment numbered after every file present:
 * nothing is ever appended behind bytes this open did not account for. */
int raft_seg_writer_open_check(struct raft_seg_writer *w, char *err,
			       size_t err_size)
{
	uint8_t head[RAFT_SEG_HEADER_BYTES];
	char path[4096], name[RAFT_SEG_NAME_BYTES];
	uint64_t top = 0;
	struct dirent *de;
	DIR *d;
	int rc = 0;

	for (size_t i = 0; rc == 0 && i < w->live.n; i++) {
		const struct raft_seg_live *s = &w->live.v[i];
		struct stat st;
		int fd;
		raft_seg_name(name, s->num);
		if (raft_seg_path(w->dir, s->num, path, sizeof(path)) != 0)
			return -ENAMETOOLONG;
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			snprintf(err, err_size,
			       "log store %s: segment file %s: %s (entries "
			       "%" PRIu64 "..%" PRIu64 " reference it), refusing "
			       "to start; the node must be restored from the "
			       "cluster",
			       w->dir, name, strerror(errno), s->min_index,
			       s->max_index);
			return errno == ENOENT ? -EUCLEAN : -EIO;
		}
		if (pread(fd, head, sizeof(head), 0) != (ssize_t)sizeof(head) ||
		    (rc = raft_seg_header_check(head, s->num, w->node_id)) != 0) {
			snprintf(err, err_size,
			       "log store %s: segment file %s has no valid "
			       "header, refusing to start; the node must be "
			       "restored from the cluster",
			       w->dir, name);
			rc = rc == -EPROTONOSUPPORT ? rc : -EUCLEAN;
		} else if (fstat(fd, &st) != 0 || (uint64_t)st.st_size < s->end) {
			snprintf(err, err_size,
			       "log store %s: segment file %s is short (%jd "
			       "bytes, entries reference %" PRIu64 "), refusing "
			       "to start; the node must be restored from the "
			       "cluster",
			       w->dir, name, (intmax_t)st.st_size, s->end);
			rc = -EUCLEAN;
		}
		close(fd);
		if (s->num > top)
			top = s->num;
	}
	if (rc != 0)
		return rc;
	d = opendir(w->dir);
	if (d == NULL) {
		snprintf(err, err_size, "log store %s: cannot list it: %s",
		       w->dir, strerror(errno));
		return -EIO;
	}
	while ((de = readdir(d)) != NULL) {
		uint64_t num = raft_seg_parse_name(de->d_name);
		if (num == 0)
			continue;
		if (num > top)
			top = num;
		if (raft_seg_set_find(&w->live, num) == NULL &&
		    raft_seg_path(w->dir, num, path, sizeof(path)) == 0)
			unlink(path);
	}
	closedir(d);
	w->next = top + 1;
	w->cur = 0;
	return 0;
}

