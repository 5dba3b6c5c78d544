/*
 * plstore: the Raft log store (raft/logstore.h) under power loss. The writer
 * appends entries as fast as the store syncs them, raising the term now and
 * then and compacting, and records every write the store acknowledged in a
 * file outside the crashing filesystem; the checker opens the store after the
 * power loss and requires all of it.
 *
 *   plstore write DIR ACKS SEED   until killed or a write fails
 *   plstore check DIR ACKS        exit 0 when every acknowledged write is there
 *
 * ACKS lines: "o" the store is open (created whole, or recovered),
 * "e FIRST LAST TERM" entries FIRST..LAST of TERM persisted,
 * "h TERM VOTE" hard state persisted, "c INDEX TERM" compacted through INDEX.
 * Payloads follow from (index, term) alone, so the checker verifies every
 * entry it finds, acknowledged or not (a write in flight may have landed).
 * One entry in eight is larger than RAFT_LOGSTORE_SEGMENT_MIN_BYTES, so its
 * payload goes to a segment file: power losses land between a segment's
 * sync and its batch, inside new segments and their deletions too.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "raft/logstore.h"
#include "raft/raft.h"

#define CLUSTER_ID "powerloss"
#define NODE_ID 1u
#define SMALL_PAYLOAD 3000u
/* One entry in eight is large: its payload goes to a segment file. */
#define LARGE_EXTRA (16u * 1024u)
#define MAX_PAYLOAD (RAFT_LOGSTORE_SEGMENT_MIN_BYTES + LARGE_EXTRA)
#define MAX_BATCH 16u

static uint64_t mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

/* The payload of the entry (index, term): its length and bytes. */
static uint32_t payload_of(uint64_t index, uint64_t term, uint8_t *buf)
{
	uint64_t x = mix(index * 1000003u + term);
	uint32_t len, k;

	if (x % 8 == 0)
		len = RAFT_LOGSTORE_SEGMENT_MIN_BYTES +
		      (uint32_t)((x >> 16) % (LARGE_EXTRA + 1));
	else
		len = (uint32_t)((x >> 16) % (SMALL_PAYLOAD + 1));

	for (k = 0; k < len; k++) {
		if (k % 8 == 0)
			x = mix(x);
		buf[k] = (uint8_t)(x >> (8 * (k % 8)));
	}
	return len;
}

static struct raft_configuration one_voter(void)
{
	struct raft_configuration c;

	memset(&c, 0, sizeof(c));
	c.n = 1;
	c.members[0].id = NODE_ID;
	c.members[0].role = RAFT_VOTER;
	snprintf(c.members[0].address, RAFT_MAX_ADDRESS, "127.0.0.1:7000");
	return c;
}

static int ack(int fd, const char *line)
{
	size_t len = strlen(line);

	return write(fd, line, len) == (ssize_t)len ? 0 : -errno;
}

static int do_write(const char *dir, const char *acks, uint64_t seed)
{
	static uint8_t payloads[MAX_BATCH][MAX_PAYLOAD];
	struct raft_entry entries[MAX_BATCH];
	struct raft_logstore *ls = NULL;
	struct raft_logstore_info info;
	struct raft_hard_state hs;
	char err[512], line[128];
	uint64_t x = seed, n_writes = 0, next;
	int fd, rc;

	fd = open(acks, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0) {
		fprintf(stderr, "plstore: %s: %s\n", acks, strerror(errno));
		return 1;
	}
	rc = raft_logstore_open(dir, CLUSTER_ID, NODE_ID, true, &ls, &info,
				err, sizeof(err));
	if (rc != 0) {
		fprintf(stderr, "plstore: %s\n", err);
		close(fd);
		return 1;
	}
	hs = info.hs;
	next = info.last_index + 1;
	if (ack(fd, "o\n") != 0) {
		raft_logstore_close(ls);
		close(fd);
		return 1;
	}
	for (;;) {
		struct raft_logstore_write w;
		uint32_t n, i;

		memset(&w, 0, sizeof(w));
		x = mix(x);
		if (hs.term == 0 || x % 16 == 0) {
			hs.term++;
			hs.vote = NODE_ID;
			w.hard_state_changed = true;
			w.hard_state = hs;
		}
		n = (uint32_t)(x >> 8) % MAX_BATCH + 1;
		for (i = 0; i < n; i++) {
			entries[i].index = next + i;
			entries[i].term = hs.term;
			entries[i].type = RAFT_ENTRY_NORMAL;
			entries[i].size =
				payload_of(next + i, hs.term, payloads[i]);
			entries[i].data = payloads[i];
		}
		w.n_entries = n;
		w.entries = entries;
		rc = raft_logstore_write(ls, &w, 1, err, sizeof(err));
		if (rc != 0)
			break;
		if (w.hard_state_changed) {
			snprintf(line, sizeof(line), "h %" PRIu64 " %" PRIu64 "\n",
				 hs.term, hs.vote);
			if (ack(fd, line) != 0)
				break;
		}
		snprintf(line, sizeof(line),
			 "e %" PRIu64 " %" PRIu64 " %" PRIu64 "\n", next,
			 next + n - 1, hs.term);
		if (ack(fd, line) != 0)
			break;
		next += n;
		/* Now and then keep only the last 32 entries (log compaction). */
		if (++n_writes % 40 == 0 && next > 40) {
			struct raft_snapshot_meta snap = {
				.index = next - 33, .term = hs.term,
				.conf_index = 0, .conf = one_voter()};
			struct raft_entry e;
			void *buf = NULL;

			rc = raft_logstore_get(ls, snap.index, &e, &buf);
			free(buf);
			if (rc == -ENOENT)
				continue; /* already compacted past it */
			if (rc != 0)
				break;
			snap.term = e.term;
			rc = raft_logstore_compact(ls, &snap, err, sizeof(err));
			if (rc != 0)
				break;
			snprintf(line, sizeof(line), "c %" PRIu64 " %" PRIu64 "\n",
				 snap.index, snap.term);
			if (ack(fd, line) != 0)
				break;
		}
	}
	fprintf(stderr, "plstore: writer stopped after %" PRIu64 " writes: %s\n",
		n_writes, rc != 0 ? err : strerror(errno));
	raft_logstore_close(ls);
	close(fd);
	return 1;
}

/* What the acknowledgements promise. */
struct expect {
	uint64_t *term; /* by index; 0 = not acknowledged */
	uint64_t cap;
	uint64_t last;     /* highest acknowledged index */
	uint64_t hs_term;  /* highest acknowledged hard state term */
	uint64_t compacted; /* highest acknowledged compaction */
};

static int expect_load(struct expect *ex, const char *acks)
{
	FILE *f = fopen(acks, "r");
	char kind;
	uint64_t a, b, c, i;

	memset(ex, 0, sizeof(*ex));
	if (f == NULL)
		return errno == ENOENT ? 0 : -errno;
	while (fscanf(f, " %c", &kind) == 1) {
		if (kind == 'o')
			continue;
		if (kind == 'h' && fscanf(f, "%" SCNu64 " %" SCNu64, &a, &b) == 2) {
			if (a > ex->hs_term)
				ex->hs_term = a;
		} else if (kind == 'c' &&
			   fscanf(f, "%" SCNu64 " %" SCNu64, &a, &b) == 2) {
			if (a > ex->compacted)
				ex->compacted = a;
		} else if (kind == 'e' &&
			   fscanf(f, "%" SCNu64 " %" SCNu64 " %" SCNu64, &a,
				  &b, &c) == 3 && a >= 1 && b >= a) {
			if (b >= ex->cap) {
				uint64_t cap = (b + 1) * 2;
				uint64_t *t = realloc(ex->term, cap * sizeof(*t));
				if (t == NULL) {
					fclose(f);
					return -ENOMEM;
				}
				memset(t + ex->cap, 0,
				       (cap - ex->cap) * sizeof(*t));
				ex->term = t;
				ex->cap = cap;
			}
			for (i = a; i <= b; i++)
				ex->term[i] = c;
			if (b > ex->last)
				ex->last = b;
		} else {
			/* A torn last line cannot happen (one write(2) each);
			 * anything else is a broken file. */
			fclose(f);
			return -EUCLEAN;
		}
	}
	fclose(f);
	return 0;
}

static int do_check(const char *dir, const char *acks)
{
	static uint8_t want[MAX_PAYLOAD];
	struct raft_logstore *ls = NULL;
	struct raft_logstore_info info;
	struct expect ex;
	char err[512];
	uint64_t i, bad = 0, checked = 0;
	int rc;

	rc = expect_load(&ex, acks);
	if (rc != 0) {
		fprintf(stderr, "plstore: reading %s: %s\n", acks, strerror(-rc));
		return 1;
	}
	rc = raft_logstore_open(dir, CLUSTER_ID, NODE_ID, false, &ls, &info,
				err, sizeof(err));
	if (rc != 0) {
		fprintf(stderr, "plstore: the store does not open: %s\n", err);
		free(ex.term);
		return 1;
	}
	if (info.hs.term < ex.hs_term) {
		fprintf(stderr, "plstore: term went back from %" PRIu64
				" (acknowledged) to %" PRIu64 "\n",
			ex.hs_term, info.hs.term);
		bad++;
	}
	if (info.last_index < ex.last) {
		fprintf(stderr, "plstore: last index %" PRIu64 " but %" PRIu64
				" was acknowledged\n",
			info.last_index, ex.last);
		bad++;
	}
	if (ex.compacted > 0 &&
	    (!info.has_snapshot || info.snapshot.index < ex.compacted)) {
		fprintf(stderr, "plstore: compaction through %" PRIu64
				" acknowledged but lost\n",
			ex.compacted);
		bad++;
	}
	if (info.has_snapshot && info.snapshot.index < ex.cap &&
	    ex.term[info.snapshot.index] != 0 &&
	    ex.term[info.snapshot.index] != info.snapshot.term) {
		fprintf(stderr, "plstore: snapshot term %" PRIu64 " at %" PRIu64
				", acknowledged %" PRIu64 "\n",
			info.snapshot.term, info.snapshot.index,
			ex.term[info.snapshot.index]);
		bad++;
	}
	for (i = info.first_index; i <= info.last_index; i++) {
		struct raft_entry e;
		void *buf = NULL;
		uint32_t len;

		rc = raft_logstore_get(ls, i, &e, &buf);
		if (rc != 0) {
			char why[400] = "";
			if (rc == -EUCLEAN || rc == -EIO)
				raft_logstore_read_error(ls, why, sizeof(why));
			fprintf(stderr, "plstore: entry %" PRIu64 ": %s %s\n", i,
				strerror(-rc), why);
			bad++;
			break;
		}
		len = payload_of(i, e.term, want);
		if (i < ex.cap && ex.term[i] != 0 && ex.term[i] != e.term) {
			if (bad++ < 5)
				fprintf(stderr, "plstore: entry %" PRIu64
						" has term %" PRIu64
						", acknowledged %" PRIu64 "\n",
					i, e.term, ex.term[i]);
		} else if (e.size != len || memcmp(e.data, want, len) != 0) {
			if (bad++ < 5)
				fprintf(stderr, "plstore: entry %" PRIu64
						" has a wrong payload\n",
					i);
		}
		free(buf);
		checked++;
	}
	printf("store opens: entries %" PRIu64 "..%" PRIu64 " (%" PRIu64
	       " checked), term %" PRIu64 "; acknowledged up to %" PRIu64
	       ", term %" PRIu64 "; %" PRIu64 " problems\n",
	       info.first_index, info.last_index, checked, info.hs.term,
	       ex.last, ex.hs_term, bad);
	raft_logstore_close(ls);
	free(ex.term);
	return bad == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
	if (argc == 5 && strcmp(argv[1], "write") == 0)
		return do_write(argv[2], argv[3], strtoull(argv[4], NULL, 10));
	if (argc == 4 && strcmp(argv[1], "check") == 0)
		return do_check(argv[2], argv[3]);
	fprintf(stderr, "usage: plstore write DIR ACKS SEED | "
			"plstore check DIR ACKS\n");
	return 2;
}
