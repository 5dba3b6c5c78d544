/*
 * `raftfs fsck --cluster [--repair]` (docs/FSCK.md): the state hashes of
 * every replica at a check point (tools/cluster_check.c), then, when they
 * are all identical, the structural check (fs_fsck_view) over this node's
 * view at that check point: whatever it finds is on EVERY replica (a bug
 * in apply, not a damaged node). With --repair, the repairs of those
 * problems are proposed through the log (FS_OP_REPAIR_*), so every
 * replica applies the same change; the lowest phase first, then a new
 * check point and check, until the tree is clean, nothing repairable is
 * left, or REPAIR_ROUNDS rounds ran. Repairs are refused when the replicas
 * differ (that is a damaged node: --resync it) or some could not be
 * checked.
 */

#define _GNU_SOURCE
#include "tools/daemon.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fs/fs.h"

#define PROBLEMS_KEPT 1000u
#define PROBLEMS_SHOWN 200u
#define REPAIR_ROUNDS 6u

/* One structural problem, copied out of the check's callback. */
struct problem {
	char code[32];
	uint64_t ino;
	char *path; /* NULL when unknown */
	char *detail;
	struct fs_fsck_fix fix;
	uint8_t *name; /* the fix's name, owned */
};

struct found {
	struct problem *p;
	uint32_t n;
	uint64_t total; /* found, also beyond those kept */
	bool oom;
};

static void found_free(struct found *f)
{
	for (uint32_t i = 0; i < f->n; i++) {
		free(f->p[i].path);
		free(f->p[i].detail);
		free(f->p[i].name);
	}
	free(f->p);
	memset(f, 0, sizeof(*f));
}

static void on_problem(void *ctx, const struct fs_fsck_problem *p)
{
	struct found *f = ctx;
	struct problem *q;

	f->total++;
	if (f->n == PROBLEMS_KEPT || f->oom)
		return;
	if (f->p == NULL) {
		f->p = calloc(PROBLEMS_KEPT, sizeof(*f->p));
		if (f->p == NULL) {
			f->oom = true;
			return;
		}
	}
	q = &f->p[f->n];
	memset(q, 0, sizeof(*q));
	snprintf(q->code, sizeof(q->code), "%s", p->code);
	q->ino = p->ino;
	q->path = p->path ? strdup(p->path) : NULL;
	q->detail = strdup(p->detail);
	q->fix = p->fix;
	q->fix.name = NULL;
	if (p->fix.name_len > 0) {
		q->name = malloc(p->fix.name_len);
		if (q->name != NULL)
			memcpy(q->name, p->fix.name, p->fix.name_len);
		q->fix.name = q->name;
	}
	if (q->detail == NULL || (p->path && q->path == NULL) ||
	    (p->fix.name_len > 0 && q->name == NULL)) {
		free(q->path);
		free(q->detail);
		free(q->name);
		f->oom = true;
		return;
	}
	f->n++;
}

/* The structural check over this node's view at the check point. 0, or
 * -1 with an "error: " line. */
static int structural(const struct control_source *src, uint64_t check_id,
		      struct found *f, struct text_buf *out)
{
	struct fs_fsck_options opt = {0, on_problem, NULL, f};
	struct fs_fsck_summary sum;
	struct fs_check_view *v;
	char err[256] = "";
	int rc;

	memset(f, 0, sizeof(*f));
	memset(&sum, 0, sizeof(sum));
	if (fs_raft_check_acquire(src->fr, check_id, &v) != 0) {
		text_printf(out, "error: this node has no view at the check "
			    "point (it expired); run the check again\n");
		return -1;
	}
	rc = fs_fsck_view(v, &opt, &sum, err, sizeof(err));
	fs_raft_check_release(src->fr, v);
	if (rc != 0 || f->oom) {
		text_printf(out, "error: the structural check failed: %s\n",
			    rc ? err : "out of memory");
		return -1;
	}
	return 0;
}

static void print_problem(struct cluster_report *rep, const struct problem *p,
			  bool first, const char *extra_key,
			  const char *extra)
{
	if (rep->json) {
		text_printf(&rep->out, "%s\n  {\"code\": ", first ? "" : ",");
		text_json_str(&rep->out, p->code);
		text_printf(&rep->out, ", \"ino\": %" PRIu64 ", \"path\": ",
			    p->ino);
		if (p->path)
			text_json_str(&rep->out, p->path);
		else
			text_printf(&rep->out, "null");
		text_printf(&rep->out, ", \"detail\": ");
		text_json_str(&rep->out, p->detail);
		text_printf(&rep->out, ", \"%s\": ", extra_key);
		if (extra)
			text_json_str(&rep->out, extra);
		else
			text_printf(&rep->out, "null");
		text_printf(&rep->out, "}");
		return;
	}
	text_printf(&rep->out, "  fs %s", p->code);
	if (p->ino)
		text_printf(&rep->out, " ino=%" PRIu64, p->ino);
	if (p->path)
		text_printf(&rep->out, " path=%s", p->path);
	text_printf(&rep->out, ": %s", p->detail);
	if (extra)
		text_printf(&rep->out, " [%s: %s]", extra_key, extra);
	text_printf(&rep->out, "\n");
}

/* The problems found, as a JSON array (the key already printed) or
 * lines. */
static void print_found(struct cluster_report *rep, const struct found *f)
{
	uint32_t shown = f->n < PROBLEMS_SHOWN ? f->n : PROBLEMS_SHOWN;

	for (uint32_t i = 0; i < shown; i++)
		print_problem(rep, &f->p[i], i == 0, "repair",
			      f->p[i].fix.kind != FS_FIX_NONE
				      ? fs_fix_describe(&f->p[i].fix)
				      : NULL);
	if (!rep->json && f->total > shown)
		text_printf(&rep->out, "  ... and %" PRIu64 " more\n",
			    f->total - shown);
}

static bool same_fix(const struct fs_fsck_fix *a, const struct fs_fsck_fix *b)
{
	return a->kind == b->kind && a->ino == b->ino && a->dir == b->dir &&
	       a->cookie == b->cookie && a->name_len == b->name_len &&
	       (a->name_len == 0 || memcmp(a->name, b->name, a->name_len) == 0);
}

struct repairs {
	uint32_t done;
	uint32_t failed;
	uint32_t printed;
};

/* Propose the fixes of the lowest phase found; false when there is
 * none. */
static bool repair_round(const struct control_source *src,
			 struct cluster_report *rep, const struct found *f,
			 struct repairs *r)
{
	struct fs_proposer p;
	int phase = 0;

	for (uint32_t i = 0; i < f->n; i++) {
		int ph = fs_fix_phase(&f->p[i].fix);
		if (ph > 0 && (phase == 0 || ph < phase))
			phase = ph;
	}
	if (phase == 0)
		return false;
	fs_raft_proposer(src->fr, &p);
	for (uint32_t i = 0; i < f->n; i++) {
		const struct problem *q = &f->p[i];
		char what[200];
		bool dup = false;
		int rc;
		if (fs_fix_phase(&q->fix) != phase)
			continue;
		for (uint32_t j = 0; j < i && !dup; j++)
			dup = same_fix(&f->p[j].fix, &q->fix);
		if (dup)
			continue;
		rc = fs_fix_propose(&p, &q->fix);
		if (rc == 0) {
			r->done++;
			if (q->fix.kind == FS_FIX_LOST_FOUND)
				snprintf(what, sizeof(what),
					 "linked into /lost+found as #%" PRIu64,
					 q->fix.ino);
			else
				snprintf(what, sizeof(what), "%s",
					 fs_fix_describe(&q->fix));
		} else {
			r->failed++;
			snprintf(what, sizeof(what), "not repaired: %s",
				 rc == -ESTALE
					 ? "it changed since the check; run "
					   "the check again"
				 : rc == -EIO
					 ? "outcome unknown (no leader?); run "
					   "the check again"
					 : strerror(-rc));
		}
		if (r->printed < PROBLEMS_SHOWN)
			print_problem(rep, q, r->printed == 0, "done", what);
		r->printed++;
	}
	return true;
}

size_t control_cluster_check(const struct control_source *src, bool json,
			     bool repair, char *out, size_t size)
{
	struct cluster_report rep = {{out, size, 0}, json, 0, 0};
	struct found f = {NULL, 0, 0, false};
	struct repairs r = {0, 0, 0};
	uint64_t check_id = 0, index = 0;
	uint32_t rounds = 0;
	int status;

	out[0] = '\0';
	text_printf(&rep.out, "exit 3\n"); /* the digit is set at the end */
	status = cluster_compare(src, &rep, &check_id, &index);
	if (status < 0) {
		status = 3;
		goto done;
	}
	if (status != 0) {
		if (repair && !json)
			text_printf(&rep.out,
				    "repair refused: %s; repairs go through "
				    "the log only when every replica holds "
				    "the same state (resync a diverging node: "
				    "stop it, 'raftfs fsck --data DIR "
				    "--resync', start it)\n",
				    status == 1 ? "the replicas differ"
						: "not every replica could be "
						  "checked");
		if (json)
			text_printf(&rep.out, "\n], \"repair\": %s}\n",
				    repair ? "\"refused\"" : "null");
		goto done;
	}
	if (structural(src, check_id, &f, &rep.out) != 0) {
		status = 3;
		goto done;
	}
	if (json) {
		text_printf(&rep.out, "\n], \"structural_problems\": %" PRIu64
			    ", \"problems\": [", f.total);
		print_found(&rep, &f);
		text_printf(&rep.out, "\n], \"repairs\": [");
	} else if (f.total == 0) {
		text_printf(&rep.out, "structure: clean at index %" PRIu64 "\n",
			    index);
	} else {
		text_printf(&rep.out,
			    "structural problems on every replica at index "
			    "%" PRIu64 " (an apply bug): %" PRIu64 "\n",
			    index, f.total);
		print_found(&rep, &f);
		if (!repair)
			text_printf(&rep.out, "those marked [repair: ...] are "
				    "repaired through the log by 'raftfs fsck "
				    "--cluster --data DIR --repair'\n");
	}
	status = f.total > 0 ? 1 : 0;
	while (repair && f.total > 0 && rounds < REPAIR_ROUNDS) {
		if (!json && rounds == 0)
			text_printf(&rep.out, "repairs (through the log):\n");
		if (!repair_round(src, &rep, &f, &r))
			break;
		rounds++;
		found_free(&f);
		/* Check again at a new check point, quietly. */
		{
			char buf[4096];
			struct cluster_report quiet = {{buf, sizeof(buf), 0},
						       false, 0, 0};
			int st = cluster_compare(src, &quiet, &check_id,
						 &index);
			if (st != 0) {
				text_printf(&rep.out, "%serror: after the "
					    "repairs the replicas %s\n",
					    json ? "\n" : "",
					    st == 1 ? "differ" :
					    "could not all be checked");
				status = st < 0 ? 3 : st;
				goto done_json;
			}
		}
		if (structural(src, check_id, &f, &rep.out) != 0) {
			status = 3;
			goto done_json;
		}
		status = f.total > 0 ? 1 : 0;
	}
	if (json) {
		text_printf(&rep.out, "\n], \"repaired\": %u, \"not_repaired\": "
			    "%u, \"remaining\": %" PRIu64 ", \"clean\": %s, "
			    "\"remaining_problems\": [",
			    r.done, r.failed, f.total,
			    f.total == 0 ? "true" : "false");
		if (repair)
			print_found(&rep, &f);
		text_printf(&rep.out, "\n]}\n");
	} else if (repair && rounds > 0) {
		text_printf(&rep.out, "%u repaired, %u not repaired; after the "
			    "repairs (index %" PRIu64 "): ",
			    r.done, r.failed, index);
		if (f.total == 0) {
			text_printf(&rep.out, "clean, every replica identical\n");
		} else {
			text_printf(&rep.out, "%" PRIu64 " problem(s) left\n",
				    f.total);
			print_found(&rep, &f);
		}
	} else if (repair && f.total > 0) {
		text_printf(&rep.out, "nothing here can be repaired through the "
			    "log: replace or restore the data\n");
	}
	goto done;
done_json:
	if (json)
		text_printf(&rep.out, "\n]}\n");
done:
	found_free(&f);
	if (rep.out.len > 5)
		out[5] = (char)('0' + status);
	return rep.out.len;
}
