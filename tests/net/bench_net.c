/*
 * AppendEntries payload throughput between two nodes over loopback TLS:
 * node 1 sends APPEND messages of 1 MiB payload (16 entries of 64 KiB,
 * attached through the payload callback as the driver would from its log)
 * to node 2 as fast as its send queue accepts them; node 2 counts the
 * payload bytes it receives. Prints one line with GB/s (10^9 bytes/s).
 *
 *   bench_net [SECONDS]   (default 10)
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "net/net.h"

#define ENTRY_BYTES (64u * 1024u)
#define ENTRIES 16u
#define BATCH_BYTES (ENTRY_BYTES * ENTRIES)

static atomic_uint_fast64_t received_bytes;
static atomic_bool up;
static uint8_t payload_source[ENTRY_BYTES];

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void on_raft(void *ctx, const struct raft_message *m)
{
	(void)ctx;
	uint64_t bytes = 0;
	for (uint32_t i = 0; i < m->n_entries; i++)
		bytes += m->entries[i].size;
	atomic_fetch_add(&received_bytes, bytes);
}

static void on_peer(void *ctx, uint64_t peer, bool is_up)
{
	(void)ctx;
	(void)peer;
	if (is_up)
		atomic_store(&up, true);
}

static void on_log(void *ctx, int level, const char *line)
{
	(void)ctx;
	if (level <= NET_LOG_ERROR)
		fprintf(stderr, "%s\n", line);
}

static int attach(void *ctx, const struct raft_entry *e, void *dst)
{
	(void)ctx;
	memcpy(dst, payload_source, e->size);
	return 0;
}

static int start(const char *dir, uint64_t id, uint16_t port,
		 uint16_t peer_port, struct net **out)
{
	char listen[32], ca[PATH_MAX], crt[PATH_MAX], key[PATH_MAX], err[512];
	struct net_options o;
	net_options_default(&o, id);
	snprintf(listen, sizeof(listen), "127.0.0.1:%u", port);
	snprintf(ca, sizeof(ca), "%s/ca.crt", dir);
	snprintf(crt, sizeof(crt), "%s/node%" PRIu64 ".crt", dir, id);
	snprintf(key, sizeof(key), "%s/node%" PRIu64 ".key", dir, id);
	o.listen = listen;
	o.ca_file = ca;
	o.cert_file = crt;
	o.key_file = key;
	o.n_peers = 1;
	o.peers[0].id = id == 1 ? 2 : 1;
	snprintf(o.peers[0].address, sizeof(o.peers[0].address),
		 "127.0.0.1:%u", peer_port);
	o.on_raft = on_raft;
	o.on_peer = id == 1 ? on_peer : NULL;
	o.log = on_log;
	int rc = net_create(&o, out, err, sizeof(err));
	if (rc < 0)
		fprintf(stderr, "bench_net: node %" PRIu64 ": %s\n", id, err);
	return rc;
}

int main(int argc, char **argv)
{
	double seconds = argc > 1 ? atof(argv[1]) : 10.0;
	char dir[] = "/tmp/raftfs-bench-net-XXXXXX", err[512], cmd[128];
	struct net *a = NULL, *b = NULL;
	int rc = 1;
	if (seconds <= 0 || seconds > 600 || mkdtemp(dir) == NULL) {
		fprintf(stderr, "usage: bench_net [SECONDS (0..600]]\n");
		return 2;
	}
	for (size_t i = 0; i < sizeof(payload_source); i++)
		payload_source[i] = (uint8_t)(i * 7);
	if (net_certs_create(dir, 2, err, sizeof(err)) < 0) {
		fprintf(stderr, "bench_net: %s\n", err);
		goto out;
	}
	uint16_t p1 = (uint16_t)(20000 + (getpid() * 13) % 30000);
	if (start(dir, 2, p1 + 1, p1, &b) < 0 || start(dir, 1, p1, p1 + 1, &a) < 0)
		goto out;
	for (int i = 0; i < 500 && !atomic_load(&up); i++)
		usleep(10000);
	if (!atomic_load(&up)) {
		fprintf(stderr, "bench_net: the nodes did not connect\n");
		goto out;
	}
	struct raft_entry e[ENTRIES];
	struct raft_message m = {.type = RAFT_MSG_APPEND, .from = 1, .to = 2,
				 .term = 2, .commit = 1, .n_entries = ENTRIES,
				 .entries = e};
	uint64_t index = 1, sent = 0, full = 0;
	double t0 = now_s(), end = t0 + seconds;
	while (now_s() < end) {
		m.index = index - 1;
		m.log_term = 2;
		for (uint32_t i = 0; i < ENTRIES; i++)
			e[i] = (struct raft_entry){.term = 2, .index = index + i,
						   .type = RAFT_ENTRY_NORMAL,
						   .size = ENTRY_BYTES};
		int r = net_send(a, &m, attach, NULL);
		if (r == -ENOBUFS) {
			full++;
			usleep(100);
			continue;
		}
		if (r < 0) {
			fprintf(stderr, "bench_net: send: %s\n", strerror(-r));
			goto out;
		}
		index += ENTRIES;
		sent += BATCH_BYTES;
	}
	/* Everything queued arrives (bounded wait), then the clock stops. */
	for (int i = 0; i < 1000 && atomic_load(&received_bytes) < sent; i++)
		usleep(1000);
	double t = now_s() - t0;
	uint64_t got = atomic_load(&received_bytes);
	printf("AppendEntries payload over loopback TLS 1.3: %.2f GB/s "
	       "(%" PRIu64 " MiB in %.1f s, 1 MiB batches of %u x %u KiB, "
	       "%" PRIu64 " queue-full retries)\n",
	       (double)got / t / 1e9, got >> 20, t, ENTRIES, ENTRY_BYTES / 1024,
	       full);
	rc = got == sent ? 0 : 1;
	if (rc)
		fprintf(stderr, "bench_net: sent %" PRIu64 " bytes, received %" PRIu64 "\n",
			sent, got);
out:
	net_destroy(a);
	net_destroy(b);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		rc = 1;
	return rc;
}
