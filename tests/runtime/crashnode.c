/*
 * crashnode: one Raft runtime with a real log store in its own process,
 * under load, for the SIGKILL crash tests (tests/suites/40-runtime,
 * tests/long/soak/20-runtime-crash).
 *
 *   crashnode run --dir D --id I --nodes N --epoch E [--proposers P]
 *                 [--certs C --port-base B] [--payload BYTES]
 *       Run node I of an N-node cluster (N = 1: alone; N > 1: over net/'s
 *       TLS transport on 127.0.0.1:B+id with the certificates in C).
 *       P threads propose commands until killed; each command whose
 *       outcome is "committed and applied here" is acknowledged on stdout
 *       as "A index term node epoch seq". The load stops when the file
 *       D/STOP exists; the node stays up until killed.
 *   crashnode check --dir D --id I --acks FILE [--payload BYTES]
 *       Open node I's store (refusing a bad one like a start would), check
 *       every acknowledged entry is there with its term and payload, and
 *       print "hs TERM VOTE LAST".
 *
 * --payload: the bytes of each command after its proposal id (48 by
 * default, at most 512 KiB; from RAFT_LOGSTORE_SEGMENT_MIN_BYTES on, the
 * log store keeps them in a segment file). run and check must agree.
 *   crashnode compare --dir D --nodes N --min INDEX
 *       The N stores hold identical logs up to the shortest one, which
 *       reaches at least INDEX (the highest acknowledged): every node holds
 *       every committed entry. (A node may keep an uncommitted entry of an
 *       old term beyond that until the leader appends there: Raft removes
 *       it only on a conflict.)
 *
 * Exit 0 on success, 1 with one line on stderr otherwise.
 */

#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "net/net.h"
#include "raft/logstore.h"
#include "tests/runtime/harness.h"

#define PAYLOAD_BYTES 48u
#define PAYLOAD_MAX_BYTES (512u * 1024u)
#define TIMEOUT_MS 3000u

static uint32_t payload_bytes = PAYLOAD_BYTES;

static volatile sig_atomic_t stop_load;
static char stop_file[600];

static bool should_stop(void)
{
	if (!stop_load && access(stop_file, F_OK) == 0)
		stop_load = 1;
	return stop_load;
}

/* The bytes after the proposal id: a function of the id. */
static void payload_of(const struct raft_proposal_id *id, uint8_t *p)
{
	uint64_t x = id->node * 1000003u + id->epoch * 7919u + id->seq;
	for (uint32_t i = 0; i < payload_bytes; i++) {
		x = x * 6364136223846793005ull + 1442695040888963407ull;
		p[i] = (uint8_t)(x >> 56);
	}
}

struct loader {
	struct harness *h;
	uint64_t id;
	pthread_mutex_t *out_mu;
};

static void *load(void *arg)
{
	struct loader *l = arg;
	uint8_t *payload = malloc(payload_bytes);

	while (payload != NULL && !should_stop()) {
		struct raft_proposal_id id;
		struct harness_result res;
		int rc;
		harness_next_id(l->h, l->id, &id);
		payload_of(&id, payload);
		do {
			rc = harness_propose(l->h, l->id, &id, payload,
					     payload_bytes, TIMEOUT_MS, &res);
			if (rc == -EBUSY || rc == -EPERM)
				usleep(2000);
		} while (rc != 0 && rc != -EIO && !should_stop());
		if (rc != 0)
			break;
		char line[160];
		int n = snprintf(line, sizeof(line),
				 "A %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64
				 " %" PRIu64 "\n",
				 res.index, res.term, id.node, id.epoch, id.seq);
		pthread_mutex_lock(l->out_mu);
		if (write(STDOUT_FILENO, line, (size_t)n) != n) {
			pthread_mutex_unlock(l->out_mu);
			break;
		}
		pthread_mutex_unlock(l->out_mu);
	}
	free(payload);
	return NULL;
}

/* ---- net/ as the transport ---- */

struct glue {
	struct net *net;
	struct harness *h;
};

static int glue_send(void *ctx, const struct raft_message *m)
{
	struct glue *g = ctx;
	return net_send(g->net, m, NULL, NULL);
}

static void glue_on_raft(void *ctx, const struct raft_message *m)
{
	struct glue *g = ctx;
	harness_deliver(g->h, m->to, m);
}

static int usage(void)
{
	fprintf(stderr, "usage: crashnode run|check|compare --dir D ...\n");
	return 2;
}

struct args {
	const char *cmd, *dir, *certs, *acks;
	uint64_t id, nodes, epoch, proposers, port_base, min, payload;
};

static int parse(int argc, char **argv, struct args *a)
{
	memset(a, 0, sizeof(*a));
	a->nodes = 1;
	a->proposers = 8;
	if (argc < 2)
		return -1;
	a->cmd = argv[1];
	for (int i = 2; i + 1 < argc; i += 2) {
		const char *k = argv[i], *v = argv[i + 1];
		if (strcmp(k, "--dir") == 0)
			a->dir = v;
		else if (strcmp(k, "--certs") == 0)
			a->certs = v;
		else if (strcmp(k, "--acks") == 0)
			a->acks = v;
		else if (strcmp(k, "--id") == 0)
			a->id = strtoull(v, NULL, 10);
		else if (strcmp(k, "--nodes") == 0)
			a->nodes = strtoull(v, NULL, 10);
		else if (strcmp(k, "--epoch") == 0)
			a->epoch = strtoull(v, NULL, 10);
		else if (strcmp(k, "--proposers") == 0)
			a->proposers = strtoull(v, NULL, 10);
		else if (strcmp(k, "--min") == 0)
			a->min = strtoull(v, NULL, 10);
		else if (strcmp(k, "--port-base") == 0)
			a->port_base = strtoull(v, NULL, 10);
		else if (strcmp(k, "--payload") == 0)
			a->payload = strtoull(v, NULL, 10);
		else
			return -1;
	}
	if (argc % 2 != 0 || a->dir == NULL || a->nodes == 0 ||
	    a->nodes > HARNESS_MAX_NODES || a->payload > PAYLOAD_MAX_BYTES)
		return -1;
	return 0;
}

static int cmd_run(const struct args *a)
{
	struct harness_options o;
	struct harness *h = NULL;
	struct glue g = {NULL, NULL};
	pthread_t t[64];
	struct loader l;
	pthread_mutex_t out_mu = PTHREAD_MUTEX_INITIALIZER;
	uint64_t n_threads = a->proposers > 64 ? 64 : a->proposers;
	char err[512];
	int rc;

	if (a->id == 0 || a->id > a->nodes ||
	    (a->nodes > 1 && (a->certs == NULL || a->port_base == 0)))
		return usage();
	snprintf(stop_file, sizeof(stop_file), "%s/STOP", a->dir);
	harness_options_default(&o, (uint32_t)a->nodes);
	o.dir = a->dir;
	o.epoch_base = a->epoch;
	o.quiet = true;
	if (a->nodes > 1) {
		o.send = glue_send;
		o.send_ctx = &g;
	}
	rc = harness_create(&o, &h);
	if (rc != 0) {
		fprintf(stderr, "crashnode: harness: %s\n", strerror(-rc));
		return 1;
	}
	g.h = h;
	if (a->nodes > 1) {
		struct net_options no;
		char ca[512], crt[512], key[512], listen[64];
		net_options_default(&no, a->id);
		snprintf(ca, sizeof(ca), "%s/ca.crt", a->certs);
		snprintf(crt, sizeof(crt), "%s/node%" PRIu64 ".crt", a->certs,
			 a->id);
		snprintf(key, sizeof(key), "%s/node%" PRIu64 ".key", a->certs,
			 a->id);
		snprintf(listen, sizeof(listen), "127.0.0.1:%" PRIu64,
			 a->port_base + a->id);
		no.listen = listen;
		no.ca_file = ca;
		no.cert_file = crt;
		no.key_file = key;
		for (uint64_t p = 1; p <= a->nodes; p++) {
			if (p == a->id)
				continue;
			no.peers[no.n_peers].id = p;
			snprintf(no.peers[no.n_peers].address, RAFT_MAX_ADDRESS,
				 "127.0.0.1:%" PRIu64, a->port_base + p);
			no.n_peers++;
		}
		no.backoff_min_ms = 20;
		no.backoff_max_ms = 200;
		no.on_raft = glue_on_raft;
		no.ctx = &g;
		rc = net_create(&no, &g.net, err, sizeof(err));
		if (rc != 0) {
			fprintf(stderr, "crashnode: net: %s\n", err);
			harness_destroy(h);
			return 1;
		}
	}
	rc = harness_start_node(h, a->id);
	if (rc != 0) {
		fprintf(stderr, "crashnode: node %" PRIu64 " did not start: %s\n",
			a->id, strerror(-rc));
		net_destroy(g.net);
		harness_destroy(h);
		return 1;
	}
	l = (struct loader){h, a->id, &out_mu};
	for (uint64_t i = 0; i < n_threads; i++)
		pthread_create(&t[i], NULL, load, &l);
	for (uint64_t i = 0; i < n_threads; i++)
		pthread_join(t[i], NULL);
	/* Load stopped: stay up until killed, so the others can catch up
	 * through this node. */
	while (1)
		pause();
	return 0;
}

static int cmd_check(const struct args *a)
{
	struct raft_logstore *ls = NULL;
	struct raft_logstore_info info;
	char dir[600], err[512], line[256];
	uint64_t checked = 0;
	FILE *f;
	int rc;

	snprintf(dir, sizeof(dir), "%s/node%" PRIu64, a->dir, a->id);
	rc = raft_logstore_open(dir, HARNESS_CLUSTER_ID, a->id, false, &ls,
				&info, err, sizeof(err));
	if (rc == -ENOENT) {
		printf("hs 0 0 0\n"); /* killed before the store existed */
		return 0;
	}
	if (rc != 0) {
		fprintf(stderr, "crashnode check: %s\n", err);
		return 1;
	}
	f = a->acks != NULL ? fopen(a->acks, "r") : NULL;
	while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
		uint64_t index, term;
		struct raft_proposal_id id;
		struct raft_proposal p;
		struct raft_entry e;
		uint8_t *want = NULL;
		void *buf = NULL;
		if (sscanf(line, "A %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64
				 " %" SCNu64,
			   &index, &term, &id.node, &id.epoch, &id.seq) != 5)
			continue; /* a line torn by the kill */
		rc = raft_logstore_get(ls, index, &e, &buf);
		if (rc != 0 || e.term != term ||
		    e.size != RAFT_PROPOSAL_BYTES + payload_bytes ||
		    raft_proposal_decode(e.data, e.size, &p) != 0 ||
		    p.id.node != id.node || p.id.epoch != id.epoch ||
		    p.id.seq != id.seq) {
			fprintf(stderr,
				"crashnode check: acknowledged entry %" PRIu64
				" (term %" PRIu64 ", id %" PRIu64 "/%" PRIu64
				"/%" PRIu64 ") is missing or different in %s\n",
				index, term, id.node, id.epoch, id.seq, dir);
			free(buf);
			fclose(f);
			raft_logstore_close(ls);
			return 1;
		}
		want = malloc(payload_bytes);
		if (want != NULL)
			payload_of(&id, want);
		if (want == NULL ||
		    memcmp((const uint8_t *)e.data + RAFT_PROPOSAL_BYTES, want,
			   payload_bytes) != 0) {
			fprintf(stderr,
				"crashnode check: entry %" PRIu64
				" has another payload than acknowledged\n",
				index);
			free(want);
			free(buf);
			fclose(f);
			raft_logstore_close(ls);
			return 1;
		}
		free(want);
		free(buf);
		checked++;
	}
	if (f != NULL)
		fclose(f);
	printf("hs %" PRIu64 " %" PRIu64 " %" PRIu64 " checked %" PRIu64 "\n",
	       info.hs.term, info.hs.vote, info.last_index, checked);
	raft_logstore_close(ls);
	return 0;
}

static int cmd_compare(const struct args *a)
{
	struct raft_logstore *ls[HARNESS_MAX_NODES + 1] = {NULL};
	struct raft_logstore_info info[HARNESS_MAX_NODES + 1] = {0};
	char dir[600], err[512];
	int rc = 0;

	for (uint64_t id = 1; id <= a->nodes && rc == 0; id++) {
		snprintf(dir, sizeof(dir), "%s/node%" PRIu64, a->dir, id);
		rc = raft_logstore_open(dir, HARNESS_CLUSTER_ID, id, false,
					&ls[id], &info[id], err, sizeof(err));
		if (rc != 0)
			fprintf(stderr, "crashnode compare: %s\n", err);
	}
	uint64_t common = rc == 0 ? info[1].last_index : 0;
	for (uint64_t id = 2; id <= a->nodes && rc == 0; id++)
		if (info[id].last_index < common)
			common = info[id].last_index;
	if (rc == 0 && common < a->min) {
		fprintf(stderr,
			"crashnode compare: some node holds only %" PRIu64
			" entries, %" PRIu64 " were acknowledged\n",
			common, a->min);
		rc = 1;
	}
	for (uint64_t i = 1; i <= common && rc == 0; i++) {
		struct raft_entry e1;
		void *b1 = NULL;
		rc = raft_logstore_get(ls[1], i, &e1, &b1);
		for (uint64_t id = 2; id <= a->nodes && rc == 0; id++) {
			struct raft_entry e;
			void *b = NULL;
			rc = raft_logstore_get(ls[id], i, &e, &b);
			if (rc == 0 && (e.term != e1.term || e.size != e1.size ||
					memcmp(e.data, e1.data, e.size) != 0)) {
				fprintf(stderr,
					"crashnode compare: entry %" PRIu64
					" differs between nodes 1 and %" PRIu64
					"\n",
					i, id);
				rc = 1;
			}
			free(b);
		}
		free(b1);
	}
	if (rc == 0)
		printf("converged: %" PRIu64 " nodes hold the same first %" PRIu64
		       " entries (%" PRIu64 " acknowledged)\n",
		       a->nodes, common, a->min);
	for (uint64_t id = 1; id <= a->nodes; id++)
		raft_logstore_close(ls[id]);
	return rc == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
	struct args a;

	if (parse(argc, argv, &a) != 0)
		return usage();
	if (a.payload > 0)
		payload_bytes = (uint32_t)a.payload;
	if (strcmp(a.cmd, "run") == 0)
		return cmd_run(&a);
	if (strcmp(a.cmd, "check") == 0)
		return cmd_check(&a);
	if (strcmp(a.cmd, "compare") == 0)
		return cmd_compare(&a);
	return usage();
}
