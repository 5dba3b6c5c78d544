/*
 * bench_runtime: durable commits per second and commit latency of a 3-node
 * cluster of Raft runtimes with real synced log stores, next to the disk's
 * own fdatasync rate and a loopback round trip measured in the same run
 * (make bench -> tests/long/bench/20-runtime; docs/BENCHMARKS.md).
 *
 *   bench_runtime [--dir D] [--seconds S] [--transport tls|loopback] [--port P]
 *                 [--proposers N]
 *
 * --port P: the round-trip probe listens on 127.0.0.1:P and the nodes on
 * P+1..P+3 (default: a port the kernel picks, nodes at 30000 + pid % 20000).
 * --proposers N: only the row of N proposers (1..128; for profiling), instead
 * of the rows 1, 16 and 128.
 *
 * tls: the three nodes talk through net/ (mutual TLS 1.3 on 127.0.0.1);
 * loopback: the in-process transport of tests/runtime/harness.c. A commit
 * is counted when raft_runtime_propose returned 0: committed by a
 * majority (each on its disk) and applied on the proposing node, the
 * leader.
 */

#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net/net.h"
#include "tests/runtime/harness.h"

#define MAX_PROPOSERS 128u

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static uint64_t pct(uint64_t *v, size_t n, double p)
{
	if (n == 0)
		return 0;
	qsort(v, n, sizeof(*v), cmp_u64);
	size_t i = (size_t)(p * (double)(n - 1));
	return v[i];
}

/* 4 KiB appends, each followed by fdatasync, for `seconds`. */
static void disk_rate(const char *dir, double seconds, double *per_s,
		      uint64_t *p50_us)
{
	char path[512];
	static uint8_t block[4096];
	uint64_t *lat = malloc(1000000 * sizeof(*lat));
	size_t n = 0;
	snprintf(path, sizeof(path), "%s/fdatasync-probe", dir);
	int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0600);
	if (fd < 0 || lat == NULL) {
		perror("bench: probe file");
		exit(1);
	}
	uint64_t start = harness_now_us(), end = start + (uint64_t)(seconds * 1e6);
	while (harness_now_us() < end && n < 1000000) {
		uint64_t t0 = harness_now_us();
		if (write(fd, block, sizeof(block)) != (ssize_t)sizeof(block) ||
		    fdatasync(fd) != 0) {
			perror("bench: probe write");
			exit(1);
		}
		lat[n++] = harness_now_us() - t0;
	}
	*per_s = (double)n / ((double)(harness_now_us() - start) / 1e6);
	*p50_us = pct(lat, n, 0.5);
	close(fd);
	unlink(path);
	free(lat);
}

/* ---- a loopback TCP round trip (64 bytes each way) ---- */

static void *echo_main(void *arg)
{
	int fd = *(int *)arg;
	char buf[64];
	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n <= 0 || write(fd, buf, (size_t)n) != n)
			break;
	}
	return NULL;
}

/* Round trip of 64 bytes over loopback TCP; port 0 lets the kernel pick. */
static uint64_t loopback_rtt_us(unsigned port)
{
	int ls = socket(AF_INET, SOCK_STREAM, 0), one = 1, c, s;
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t alen = sizeof(a);
	uint64_t lat[2000];
	pthread_t t;
	char buf[64] = {0};

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a.sin_port = htons((uint16_t)port);
	setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (ls < 0 || bind(ls, (struct sockaddr *)&a, sizeof(a)) != 0 ||
	    listen(ls, 1) != 0 ||
	    getsockname(ls, (struct sockaddr *)&a, &alen) != 0)
		return 0;
	c = socket(AF_INET, SOCK_STREAM, 0);
	if (connect(c, (struct sockaddr *)&a, sizeof(a)) != 0)
		return 0;
	s = accept(ls, NULL, NULL);
	setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	pthread_create(&t, NULL, echo_main, &s);
	for (size_t i = 0; i < 2000; i++) {
		uint64_t t0 = harness_now_us();
		if (write(c, buf, sizeof(buf)) != (ssize_t)sizeof(buf))
			break;
		size_t got = 0;
		while (got < sizeof(buf)) {
			ssize_t n = read(c, buf + got, sizeof(buf) - got);
			if (n <= 0)
				break;
			got += (size_t)n;
		}
		lat[i] = harness_now_us() - t0;
	}
	close(c);
	pthread_join(t, NULL);
	close(s);
	close(ls);
	return pct(lat, 2000, 0.5);
}

/* ---- net/ glue for three nodes in one process ---- */

struct glue {
	struct net *net[4];
	struct harness *h;
};

static int glue_send(void *ctx, const struct raft_message *m)
{
	struct glue *g = ctx;
	if (m->from == 0 || m->from > 3)
		return -EINVAL;
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
		fprintf(stderr, "bench: net: %s\n", err);
		return -1;
	}
	return 0;
}

/* ---- proposers ---- */

struct run {
	struct harness *h;
	uint64_t leader;
	uint64_t end_us;
	uint64_t *lat;
	size_t n, cap;
	uint64_t errors;
};

static void *proposer(void *arg)
{
	struct run *r = arg;
	uint8_t payload[128];
	memset(payload, 0x5a, sizeof(payload));
	while (harness_now_us() < r->end_us && r->n < r->cap) {
		struct raft_proposal_id id;
		struct harness_result res;
		harness_next_id(r->h, r->leader, &id);
		uint64_t t0 = harness_now_us();
		int rc = harness_propose(r->h, r->leader, &id, payload,
					 sizeof(payload), 5000, &res);
		if (rc != 0) {
			r->errors++;
			continue;
		}
		r->lat[r->n++] = harness_now_us() - t0;
	}
	return NULL;
}

/* CPU time (user + system) of the whole process so far, in us. */
static uint64_t cpu_us(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000u +
	       (uint64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

static void measure(struct harness *h, uint64_t leader, unsigned proposers,
		    double seconds, double *rate, uint64_t *p50, uint64_t *p99,
		    uint64_t *errors)
{
	struct run runs[MAX_PROPOSERS];
	pthread_t t[MAX_PROPOSERS];
	size_t cap = 400000 / proposers + 1000;
	uint64_t start = harness_now_us();
	size_t total = 0;

	*errors = 0;
	for (unsigned i = 0; i < proposers; i++) {
		runs[i] = (struct run){h, leader,
				       start + (uint64_t)(seconds * 1e6),
				       malloc(cap * sizeof(uint64_t)), 0, cap, 0};
		pthread_create(&t[i], NULL, proposer, &runs[i]);
	}
	for (unsigned i = 0; i < proposers; i++) {
		pthread_join(t[i], NULL);
		total += runs[i].n;
		*errors += runs[i].errors;
	}
	double elapsed = (double)(harness_now_us() - start) / 1e6;
	uint64_t *all = malloc((total + 1) * sizeof(uint64_t));
	size_t k = 0;
	for (unsigned i = 0; i < proposers; i++) {
		memcpy(all + k, runs[i].lat, runs[i].n * sizeof(uint64_t));
		k += runs[i].n;
		free(runs[i].lat);
	}
	*rate = (double)total / elapsed;
	*p50 = pct(all, total, 0.5);
	*p99 = pct(all, total, 0.99);
	free(all);
}

int main(int argc, char **argv)
{
	const char *dir = NULL, *transport = "tls";
	double seconds = 5;
	unsigned port = 0; /* --port P: P for the round trip, P+1..P+3 nodes */
	unsigned only = 0; /* --proposers N: only that row */
	char tmpdir[] = "/var/tmp/raftfs-bench-XXXXXX";
	char certs[600], cmd[1400];
	struct glue g;

	memset(&g, 0, sizeof(g));
	for (int i = 1; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--dir") == 0)
			dir = argv[i + 1];
		else if (strcmp(argv[i], "--seconds") == 0)
			seconds = atof(argv[i + 1]);
		else if (strcmp(argv[i], "--transport") == 0)
			transport = argv[i + 1];
		else if (strcmp(argv[i], "--port") == 0)
			port = (unsigned)atoi(argv[i + 1]);
		else if (strcmp(argv[i], "--proposers") == 0)
			only = (unsigned)atoi(argv[i + 1]);
	}
	if (only > MAX_PROPOSERS) {
		fprintf(stderr, "bench: --proposers: 1..%u\n", MAX_PROPOSERS);
		return 2;
	}
	if (port > 65530) {
		fprintf(stderr, "bench: --port: 1..65530\n");
		return 2;
	}
	if (dir == NULL) {
		if (mkdtemp(tmpdir) == NULL) {
			perror("bench: mkdtemp");
			return 1;
		}
		dir = tmpdir;
	}
	bool tls = strcmp(transport, "tls") == 0;

	double sync_rate;
	uint64_t sync_p50;
	disk_rate(dir, 2.0, &sync_rate, &sync_p50);
	uint64_t rtt = loopback_rtt_us(port);

	struct harness_options o;
	struct harness *h = NULL;
	harness_options_default(&o, 3);
	char data[600];
	snprintf(data, sizeof(data), "%s/data", dir);
	snprintf(cmd, sizeof(cmd), "mkdir -p '%s'", data);
	if (system(cmd) != 0)
		return 1;
	o.dir = data;
	if (tls) {
		snprintf(certs, sizeof(certs), "%s/certs", dir);
		char err[512];
		if (net_certs_create(certs, 3, err, sizeof(err)) != 0) {
			fprintf(stderr, "bench: certs: %s\n", err);
			return 1;
		}
		o.send = glue_send;
		o.send_ctx = &g;
	}
	if (harness_create(&o, &h) != 0)
		return 1;
	g.h = h;
	if (tls && glue_start(&g, certs,
			       port ? port : 30000u + (unsigned)(getpid() % 20000)) != 0)
		return 1;
	for (uint64_t id = 1; id <= 3; id++)
		if (harness_start_node(h, id) != 0)
			return 1;
	uint64_t leader = harness_wait_leader(h, 10000);
	if (leader == 0) {
		fprintf(stderr, "bench: no leader\n");
		return 1;
	}

	printf("disk: 4 KiB append + fdatasync %.0f/s, p50 %" PRIu64
	       " us; loopback TCP round trip p50 %" PRIu64 " us\n",
	       sync_rate, sync_p50, rtt);
	printf("3-node cluster, %s transport, real synced stores in %s, "
	       "128-byte commands, %.0f s per row\n",
	       tls ? "TLS (net/)" : "in-process loopback", dir, seconds);
	printf("%-10s %12s %10s %10s %8s %10s\n", "proposers", "commits/s",
	       "p50 us", "p99 us", "errors", "x fdatasync");
	unsigned rows[] = {1, 16, 128};
	double cpu_per_commit[3];
	size_t n_rows = 3;
	if (only != 0) {
		rows[0] = only;
		n_rows = 1;
	}
	for (size_t i = 0; i < n_rows; i++) {
		double rate;
		uint64_t p50, p99, errors;
		uint64_t cpu0 = cpu_us();
		measure(h, leader, rows[i], seconds, &rate, &p50, &p99, &errors);
		cpu_per_commit[i] = rate > 0 ? (double)(cpu_us() - cpu0) /
						       (rate * seconds)
					     : 0;
		printf("%-10u %12.0f %10" PRIu64 " %10" PRIu64 " %8" PRIu64
		       " %10.1f\n",
		       rows[i], rate, p50, p99, errors, rate / sync_rate);
		fflush(stdout);
	}
	printf("cpu (3 nodes and the proposers, user + system) per commit:");
	for (size_t i = 0; i < n_rows; i++)
		printf(" %u: %.0f us%s", rows[i], cpu_per_commit[i],
		       i + 1 < n_rows ? "," : "\n");
	struct raft_runtime_status st;
	raft_runtime_status_get(harness_runtime(h, leader), &st);
	printf("leader: %" PRIu64 " synced writes carried %" PRIu64
	       " updates\n",
	       st.syncs, st.synced_updates);
	printf("targets: 128 proposers >= 10x fdatasync; 1 proposer p50 <= "
	       "2 x (fdatasync p50 + round trip) = %" PRIu64 " us\n",
	       2 * (sync_p50 + rtt));
	for (uint64_t id = 1; id <= 3; id++)
		harness_stop_node(h, id);
	for (int id = 1; id <= 3; id++)
		net_destroy(g.net[id]);
	harness_destroy(h);
	if (dir == tmpdir) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
		if (system(cmd) != 0)
			return 1;
	}
	return 0;
}
