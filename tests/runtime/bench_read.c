/*
 * bench_read: latency of a linearizable read barrier
 * (raft_runtime_read_index) on a 3-node cluster of Raft runtimes with real
 * log stores over the in-process loopback transport (tests/runtime/
 * harness.c), with N closed-loop readers: each waits for its barrier, then
 * asks for the next one. docs/BENCHMARKS.md ("Read barrier").
 *
 *   bench_read [--readers N] [--on leader|follower|all] [--seconds S]
 *              [--transport tls|loopback] [--port P]
 *
 * tls (the default): the nodes talk through net/ (mutual TLS 1.3) on
 * 127.0.0.1:P+1..P+3 (default P: 30000 + pid % 20000); loopback: the
 * harness's in-process transport (no network: a round trip is a few
 * thread hand-offs).
 * --on all spreads the readers over the three nodes (reader i on node
 * i % 3 + 1), so forwarded requests and the leader's own overlap in its
 * core. Prints barriers/s, p50/p90/p99 latency and (tls) the heartbeat
 * rounds the leader started (read rounds and periodic heartbeats).
 */

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "net/net.h"
#include "tests/runtime/harness.h"

#define MAX_READERS 256u
#define MAX_SAMPLES 2000000u
#define TIMEOUT_MS 5000u

struct waiter {
	pthread_mutex_t mu;
	pthread_cond_t cond;
	bool done;
	int rc;
};

struct reader {
	struct harness *h;
	uint64_t node;
	uint64_t end_us;
	uint64_t *lat;
	size_t n;
	size_t cap;
	int failures;
};

static void read_done(void *ctx, int rc)
{
	struct waiter *w = ctx;
	pthread_mutex_lock(&w->mu);
	w->rc = rc;
	w->done = true;
	pthread_mutex_unlock(&w->mu);
	pthread_cond_signal(&w->cond);
}

static void *reader_main(void *arg)
{
	struct reader *r = arg;
	struct waiter w;

	pthread_mutex_init(&w.mu, NULL);
	pthread_cond_init(&w.cond, NULL);
	while (harness_now_us() < r->end_us && r->n < r->cap) {
		uint64_t t0 = harness_now_us();
		w.done = false;
		w.rc = 0;
		int rc = raft_runtime_read_index(harness_runtime(r->h, r->node),
						 TIMEOUT_MS, read_done, &w);
		if (rc == 0) {
			pthread_mutex_lock(&w.mu);
			while (!w.done)
				pthread_cond_wait(&w.cond, &w.mu);
			pthread_mutex_unlock(&w.mu);
			rc = w.rc;
		}
		if (rc != 0) {
			r->failures++;
			usleep(1000);
			continue;
		}
		r->lat[r->n++] = harness_now_us() - t0;
	}
	pthread_mutex_destroy(&w.mu);
	pthread_cond_destroy(&w.cond);
	return NULL;
}

/* ---- net/ glue for three nodes in one process (as bench_runtime) ---- */

struct glue {
	struct net *net[4];
	struct harness *h;
	atomic_uint_fast64_t leader;
	atomic_uint_fast64_t rounds; /* read-round heartbeats of the leader */
};

static int glue_send(void *ctx, const struct raft_message *m)
{
	struct glue *g = ctx;
	if (m->from == 0 || m->from > 3)
		return -EINVAL;
	if (m->type == RAFT_MSG_HEARTBEAT && m->context != 0 &&
	    m->from == atomic_load_explicit(&g->leader, memory_order_relaxed))
		atomic_fetch_add_explicit(&g->rounds, 1, memory_order_relaxed);
	return net_send(g->net[m->from], m, NULL, NULL);
}

static void glue_on_raft(void *ctx, const struct raft_message *m)
{
	struct glue *g = ctx;
	harness_deliver(g->h, m->to, m);
}

static int glue_start(struct glue *g, const char *certs, unsigned port_base)
{
	char err[512];

	if (harness_net_create3(g->net, certs, port_base, glue_on_raft, g, err,
				sizeof(err)) != 0) {
		fprintf(stderr, "bench_read: net: %s\n", err);
		return -1;
	}
	return 0;
}

static void teardown(struct harness *h, struct glue *g, const char *rm)
{
	if (h != NULL)
		for (uint64_t id = 1; id <= 3; id++)
			harness_stop_node(h, id);
	for (int id = 1; id <= 3; id++)
		if (g->net[id] != NULL)
			net_destroy(g->net[id]);
	if (h != NULL)
		harness_destroy(h);
	if (system(rm) != 0)
		fprintf(stderr, "bench_read: %s failed\n", rm);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static int usage(void)
{
	fprintf(stderr, "usage: bench_read [--readers N (1-%u)] "
			"[--on leader|follower|all] [--seconds S (1-600)] "
			"[--transport tls|loopback] [--port P]\n",
		MAX_READERS);
	return 2;
}

int main(int argc, char **argv)
{
	unsigned readers = 1, seconds = 3;
	const char *on = "leader", *transport = "tls";
	unsigned port = 30000u + (unsigned)(getpid() % 20000);

	for (int i = 1; i < argc; i++) {
		if (i + 1 >= argc)
			return usage();
		char *end;
		if (strcmp(argv[i], "--readers") == 0) {
			readers = (unsigned)strtoul(argv[++i], &end, 10);
			if (*end || readers < 1 || readers > MAX_READERS)
				return usage();
		} else if (strcmp(argv[i], "--seconds") == 0) {
			seconds = (unsigned)strtoul(argv[++i], &end, 10);
			if (*end || seconds < 1 || seconds > 600)
				return usage();
		} else if (strcmp(argv[i], "--on") == 0) {
			on = argv[++i];
			if (strcmp(on, "leader") && strcmp(on, "follower") &&
			    strcmp(on, "all"))
				return usage();
		} else if (strcmp(argv[i], "--transport") == 0) {
			transport = argv[++i];
			if (strcmp(transport, "tls") && strcmp(transport, "loopback"))
				return usage();
		} else if (strcmp(argv[i], "--port") == 0) {
			port = (unsigned)strtoul(argv[++i], &end, 10);
			if (*end || port < 1 || port > 65532)
				return usage();
		} else {
			return usage();
		}
	}
	bool tls = strcmp(transport, "tls") == 0;
	static struct glue g;
	char tmpdir[] = "/tmp/bench_read.XXXXXX", certs[64], cmd[128];
	if (mkdtemp(tmpdir) == NULL) {
		fprintf(stderr, "bench_read: mkdtemp: %s\n", strerror(errno));
		return 1;
	}
	snprintf(certs, sizeof(certs), "%s/certs", tmpdir);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);

	struct harness_options o;
	struct harness *h = NULL;
	harness_options_default(&o, 3);
	o.quiet = true;
	int rc = 0;
	if (tls) {
		char err[512];
		if (net_certs_create(certs, 3, err, sizeof(err)) != 0) {
			fprintf(stderr, "bench_read: certs: %s\n", err);
			rc = -EIO;
		}
		o.send = glue_send;
		o.send_ctx = &g;
	}
	if (rc == 0)
		rc = harness_create(&o, &h);
	g.h = h;
	if (rc == 0 && tls && glue_start(&g, certs, port) != 0)
		rc = -EADDRINUSE;
	for (uint64_t id = 1; rc == 0 && id <= 3; id++)
		rc = harness_start_node(h, id);
	uint64_t leader = rc == 0 ? harness_wait_leader(h, TIMEOUT_MS) : 0;
	if (rc != 0 || leader == 0) {
		fprintf(stderr, "bench_read: cannot start the cluster (%s); "
				"check the temp dir is writable\n",
			rc ? strerror(-rc) : "no leader");
		teardown(h, &g, cmd);
		return 1;
	}
	/* The leader's term entry commits before the first barrier. */
	struct raft_proposal_id id;
	harness_next_id(h, leader, &id);
	rc = harness_propose(h, leader, &id, "x", 1, TIMEOUT_MS, NULL);
	if (rc != 0) {
		fprintf(stderr, "bench_read: first write failed: %s\n",
			strerror(-rc));
		teardown(h, &g, cmd);
		return 1;
	}

	static struct reader r[MAX_READERS];
	pthread_t t[MAX_READERS];
	size_t cap = MAX_SAMPLES / readers;
	atomic_store(&g.leader, leader);
	uint64_t rounds0 = atomic_load(&g.rounds);
	uint64_t t0 = harness_now_us();
	for (unsigned i = 0; i < readers; i++) {
		uint64_t node = leader;
		if (strcmp(on, "follower") == 0)
			node = leader % 3 + 1;
		else if (strcmp(on, "all") == 0)
			node = i % 3 + 1;
		r[i] = (struct reader){.h = h, .node = node,
				       .end_us = t0 + seconds * 1000000ull,
				       .lat = malloc(cap * sizeof(uint64_t)),
				       .cap = cap};
		if (r[i].lat == NULL ||
		    pthread_create(&t[i], NULL, reader_main, &r[i]) != 0) {
			fprintf(stderr, "bench_read: out of memory\n");
			abort();
		}
	}
	size_t n = 0;
	int failures = 0;
	for (unsigned i = 0; i < readers; i++) {
		pthread_join(t[i], NULL);
		n += r[i].n;
		failures += r[i].failures;
	}
	uint64_t elapsed = harness_now_us() - t0;
	/* Each round is a heartbeat to each of the 2 followers. */
	uint64_t rounds = (atomic_load(&g.rounds) - rounds0) / 2;
	uint64_t *all = malloc((n ? n : 1) * sizeof(uint64_t));
	if (all == NULL)
		abort();
	size_t k = 0;
	for (unsigned i = 0; i < readers; i++) {
		memcpy(all + k, r[i].lat, r[i].n * sizeof(uint64_t));
		k += r[i].n;
		free(r[i].lat);
	}
	qsort(all, n, sizeof(*all), cmp_u64);
#define PCT(p) (n ? all[(size_t)((p) * (double)(n - 1))] : 0)
	printf("%s, readers %u on %s: %zu barriers in %.2f s = %.0f/s, "
	       "p50 %llu us p90 %llu us p99 %llu us, %llu heartbeat rounds "
	       "(tls only), failures %d\n",
	       transport, readers, on, n, (double)elapsed / 1e6,
	       (double)n * 1e6 / (double)elapsed, (unsigned long long)PCT(0.5),
	       (unsigned long long)PCT(0.9), (unsigned long long)PCT(0.99),
	       (unsigned long long)rounds, failures);
	free(all);
	teardown(h, &g, cmd);
	return failures ? 1 : 0;
}
