/*
 * The TLS transport (net/transport.c, net/conn.c): real nodes on loopback
 * addresses exchange Raft and admin messages, and every bad input of
 * issue 8 is refused or closed with a logged reason while the node keeps
 * serving its other peers. A raw OpenSSL client plays the attacker.
 *
 * RAFTFS_NFT_TABLE names the nftables table the cut test makes (the suite
 * deletes it afterwards whatever happens); the test deletes it too.
 */
#define _GNU_SOURCE /* memmem */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "net/net.h"
#include "tests/lib/test_main.h"

#define MAX_NODES 4
#define LOG_BYTES (256 * 1024)

/* ---------------------------------------------------------------------- */
/* A node under test: its transport, its log and what it received.        */

struct node {
	uint64_t id;
	char host[16];
	uint16_t port;
	struct net *net;
	pthread_mutex_t lock;
	char log[LOG_BYTES];
	size_t log_len;
	uint64_t received;       /* Raft messages */
	uint64_t last_context;   /* of the last one */
	uint64_t payload_bytes;  /* entry payload bytes received */
	bool payload_ok;         /* every payload matched its pattern */
	atomic_bool block;       /* on_raft waits while set (stops reading) */
	uint64_t admin_requests;
};

struct fixture {
	char dir[64];
	struct node nodes[MAX_NODES + 1]; /* by id */
	char nft_table[64];
	bool nft_made;
};

static uint16_t next_port;

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
	nanosleep(&ts, NULL);
}

static void on_log(void *ctx, int level, const char *line)
{
	struct node *nd = ctx;
	pthread_mutex_lock(&nd->lock);
	int w = snprintf(nd->log + nd->log_len, LOG_BYTES - nd->log_len,
			 "%d %s\n", level, line);
	if (w > 0 && nd->log_len + (size_t)w < LOG_BYTES)
		nd->log_len += (size_t)w;
	pthread_mutex_unlock(&nd->lock);
	if (getenv("NET_TEST_VERBOSE"))
		fprintf(stderr, "%s\n", line);
}

static uint8_t pattern(uint64_t index, uint32_t i)
{
	return (uint8_t)(index * 13u + i * 5u + 3u);
}

static void on_raft(void *ctx, const struct raft_message *m)
{
	struct node *nd = ctx;
	while (atomic_load(&nd->block))
		sleep_ms(5);
	pthread_mutex_lock(&nd->lock);
	nd->received++;
	nd->last_context = m->context;
	for (uint32_t i = 0; i < m->n_entries; i++) {
		const struct raft_entry *e = &m->entries[i];
		const uint8_t *d = e->data;
		nd->payload_bytes += e->size;
		for (uint32_t k = 0; k < e->size; k += 4099) {
			if (d[k] != pattern(e->index, k))
				nd->payload_ok = false;
		}
	}
	pthread_mutex_unlock(&nd->lock);
}

static void on_admin(void *ctx, uint64_t conn_id,
		     const struct net_identity *who,
		     const struct net_admin_msg *req)
{
	struct node *nd = ctx;
	(void)who;
	pthread_mutex_lock(&nd->lock);
	nd->admin_requests++;
	pthread_mutex_unlock(&nd->lock);
	struct net_admin_msg resp = {.kind = req->kind,
				     .request_id = req->request_id,
				     .payload = (const uint8_t *)"pong",
				     .payload_bytes = 4};
	net_admin_reply(nd->net, conn_id, &resp);
}

static int fill_payload(void *ctx, const struct raft_entry *e, void *dst)
{
	(void)ctx;
	uint8_t *d = dst;
	for (uint32_t i = 0; i < e->size; i++)
		d[i] = pattern(e->index, i);
	return 0;
}

/* Whether one line of the node's log holds needle (and needle2, if not
 * NULL, after it). */
static bool log_has2(struct node *nd, const char *needle, const char *needle2)
{
	bool found = false;
	pthread_mutex_lock(&nd->lock);
	nd->log[nd->log_len] = '\0';
	for (const char *line = nd->log; *line && !found;) {
		const char *end = strchr(line, '\n');
		size_t len = end ? (size_t)(end - line) : strlen(line);
		const char *a = memmem(line, len, needle, strlen(needle));
		if (a && (needle2 == NULL ||
			  memmem(a, len - (size_t)(a - line), needle2,
				 strlen(needle2))))
			found = true;
		line += len + (end ? 1 : 0);
	}
	pthread_mutex_unlock(&nd->lock);
	return found;
}

static bool log_has(struct node *nd, const char *needle)
{
	return log_has2(nd, needle, NULL);
}

/* Wait up to ms for needle in the node's log; print the log if absent. */
static bool wait_log2(struct node *nd, const char *needle,
		      const char *needle2, int ms)
{
	int64_t end = now_ms() + ms;
	while (now_ms() < end) {
		if (log_has2(nd, needle, needle2))
			return true;
		sleep_ms(10);
	}
	pthread_mutex_lock(&nd->lock);
	fprintf(stderr, "no \"%s\"...\"%s\" in the log of node %" PRIu64
			":\n%s\n",
		needle, needle2 ? needle2 : "", nd->id, nd->log);
	pthread_mutex_unlock(&nd->lock);
	return false;
}

static bool wait_log(struct node *nd, const char *needle, int ms)
{
	return wait_log2(nd, needle, NULL, ms);
}

static void path(const char *dir, const char *name, char *buf)
{
	snprintf(buf, PATH_MAX, "%s/%s", dir, name);
}

static void address_of(const struct node *nd, char *buf, size_t size)
{
	snprintf(buf, size, "%s:%u", nd->host, nd->port);
}

/* Start node id with the peers listed (ids), on its host and port. */
static int start_node_with(struct fixture *f, uint64_t id, const char *crt,
			   const uint64_t *peers, int n_peers,
			   void (*tweak)(struct net_options *))
{
	struct node *nd = &f->nodes[id];
	char listen[32], ca[PATH_MAX], cert[PATH_MAX], key[PATH_MAX];
	char crtname[32], keyname[32];
	struct net_options o;
	net_options_default(&o, id);
	snprintf(crtname, sizeof(crtname), "%s.crt", crt);
	snprintf(keyname, sizeof(keyname), "%s.key", crt);
	path(f->dir, "ca.crt", ca);
	path(f->dir, crtname, cert);
	path(f->dir, keyname, key);
	o.ca_file = ca;
	o.cert_file = cert;
	o.key_file = key;
	o.on_raft = on_raft;
	o.on_admin = on_admin;
	o.log = on_log;
	o.ctx = nd;
	for (int i = 0; i < n_peers; i++) {
		o.peers[i].id = peers[i];
		address_of(&f->nodes[peers[i]], o.peers[i].address,
			   sizeof(o.peers[i].address));
	}
	o.n_peers = (uint32_t)n_peers;
	if (tweak)
		tweak(&o);
	char err[512];
	int rc;
	for (int attempt = 0; attempt < 20; attempt++) {
		address_of(nd, listen, sizeof(listen));
		o.listen = listen;
		rc = net_create(&o, &nd->net, err, sizeof(err));
		if (rc != -EADDRINUSE)
			break;
		/* Taken by someone else: peers learn the new port only if
		 * they start later, which is how the tests order starts. */
		nd->port = next_port++;
	}
	if (rc < 0)
		fprintf(stderr, "node %" PRIu64 ": %s\n", id, err);
	return rc;
}

static void init_node(struct fixture *f, uint64_t id, const char *host)
{
	struct node *nd = &f->nodes[id];
	nd->id = id;
	snprintf(nd->host, sizeof(nd->host), "%s", host);
	nd->port = next_port++;
	nd->payload_ok = true;
	pthread_mutex_init(&nd->lock, NULL);
}

static void stop_node(struct fixture *f, uint64_t id)
{
	net_destroy(f->nodes[id].net);
	f->nodes[id].net = NULL;
}

static bool wait_up(struct fixture *f, uint64_t from, uint64_t to, int ms)
{
	int64_t end = now_ms() + ms;
	struct net_peer_stats st;
	while (now_ms() < end) {
		if (net_peer_stats(f->nodes[from].net, to, &st) == 0 && st.up)
			return true;
		sleep_ms(5);
	}
	return false;
}

static struct raft_message heartbeat(uint64_t from, uint64_t to,
				     uint64_t context)
{
	struct raft_message m = {.type = RAFT_MSG_HEARTBEAT, .from = from,
				 .to = to, .term = 3, .commit = 5,
				 .context = context};
	return m;
}

/*
 * from sends heartbeats to `to` until one arrives (within 5 s). Resending
 * is what Raft does: in TLS 1.3 the dialer finishes its handshake before
 * the acceptor has checked it, so a message sent at once on a connection
 * the acceptor then refuses (or that a reconnect replaces) is lost.
 */
static bool exchange(struct fixture *f, uint64_t from, uint64_t to)
{
	static uint64_t context = 1000;
	uint64_t ctx = ++context;
	struct raft_message m = heartbeat(from, to, ctx);
	struct node *dst = &f->nodes[to];
	int64_t end = now_ms() + 5000;
	while (now_ms() < end) {
		if (!wait_up(f, from, to, (int)(end - now_ms())))
			break;
		(void)net_send(f->nodes[from].net, &m, NULL, NULL);
		int64_t resend = now_ms() + 300;
		while (now_ms() < resend) {
			pthread_mutex_lock(&dst->lock);
			bool got = dst->last_context == ctx;
			pthread_mutex_unlock(&dst->lock);
			if (got)
				return true;
			sleep_ms(2);
		}
	}
	fprintf(stderr, "node %" PRIu64 " -> %" PRIu64 ": nothing arrived\n",
		from, to);
	return false;
}

/* Nodes 1 and 2 still talk both ways. */
static void assert_still_serving(struct fixture *f)
{
	assert_true(exchange(f, 2, 1));
	assert_true(exchange(f, 1, 2));
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char err[512];
	signal(SIGPIPE, SIG_IGN); /* the raw client writes to closed peers */
	if (next_port == 0)
		next_port = (uint16_t)(20000 + (getpid() * 37) % 30000);
	snprintf(f->dir, sizeof(f->dir), "/tmp/raftfs-net-XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	if (net_certs_create(f->dir, 4, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s\n", err);
		return -1;
	}
	const char *table = getenv("RAFTFS_NFT_TABLE");
	snprintf(f->nft_table, sizeof(f->nft_table), "%s",
		 table ? table : "raftfs_net_test");
	for (uint64_t id = 1; id <= MAX_NODES; id++)
		init_node(f, id, "127.0.0.1");
	*state = f;
	return 0;
}

/* Nodes 1 and 2 (peers of each other and of 3), connected. */
static int setup_pair(void **state)
{
	if (setup(state) < 0)
		return -1;
	struct fixture *f = *state;
	const uint64_t p1[] = {2, 3}, p2[] = {1, 3};
	if (start_node_with(f, 1, "node1", p1, 2, NULL) < 0 ||
	    start_node_with(f, 2, "node2", p2, 2, NULL) < 0)
		return -1;
	return wait_up(f, 1, 2, 5000) && wait_up(f, 2, 1, 5000) ? 0 : -1;
}

static void nft_delete(struct fixture *f)
{
	char cmd[160];
	if (!f->nft_made)
		return;
	snprintf(cmd, sizeof(cmd), "nft delete table inet %s 2>/dev/null",
		 f->nft_table);
	if (system(cmd) == 0)
		f->nft_made = false;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[128];
	nft_delete(f);
	for (uint64_t id = 1; id <= MAX_NODES; id++) {
		stop_node(f, id);
		pthread_mutex_destroy(&f->nodes[id].lock);
	}
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	int rc = system(cmd);
	free(f);
	return rc == 0 ? 0 : -1;
}

/* ---------------------------------------------------------------------- */
/* A raw TLS client: the attacker.                                        */

struct raw {
	int fd;
	SSL_CTX *ctx;
	SSL *ssl;
};

static int tcp_connect(const struct node *nd)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET,
				 .sin_port = htons(nd->port)};
	struct timeval tv = {.tv_sec = 3};
	inet_pton(AF_INET, nd->host, &sa.sin_addr);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

/* Connect to nd with the certificate dir/name.crt; returns whether the
 * client side of the handshake succeeded. */
static bool raw_open(struct raw *r, const struct node *nd, const char *dir,
		     const char *name, int max_version)
{
	char crt[PATH_MAX], key[PATH_MAX], file[64];
	memset(r, 0, sizeof(*r));
	r->ctx = SSL_CTX_new(TLS_client_method());
	assert_non_null(r->ctx);
	if (max_version)
		SSL_CTX_set_max_proto_version(r->ctx, max_version);
	if (name) {
		snprintf(file, sizeof(file), "%s.crt", name);
		path(dir, file, crt);
		snprintf(file, sizeof(file), "%s.key", name);
		path(dir, file, key);
		assert_int_equal(SSL_CTX_use_certificate_file(
					 r->ctx, crt, SSL_FILETYPE_PEM),
				 1);
		assert_int_equal(SSL_CTX_use_PrivateKey_file(r->ctx, key,
							     SSL_FILETYPE_PEM),
				 1);
	}
	SSL_CTX_set_verify(r->ctx, SSL_VERIFY_NONE, NULL);
	r->fd = tcp_connect(nd);
	r->ssl = SSL_new(r->ctx);
	SSL_set_fd(r->ssl, r->fd);
	bool ok = SSL_connect(r->ssl) == 1;
	ERR_clear_error();
	return ok;
}

static void raw_close(struct raw *r)
{
	if (r->ssl) {
		SSL_shutdown(r->ssl);
		SSL_free(r->ssl);
	}
	if (r->fd > 0)
		close(r->fd);
	SSL_CTX_free(r->ctx);
	ERR_clear_error();
	memset(r, 0, sizeof(*r));
}

static void raw_write(struct raw *r, const void *buf, size_t len)
{
	size_t put = 0;
	assert_int_equal(SSL_write_ex(r->ssl, buf, len, &put), 1);
	assert_int_equal(put, len);
}

/* Whether the server closed the connection (read returns no data). */
static bool raw_sees_close(struct raw *r)
{
	uint8_t b[64];
	size_t got;
	bool closed = SSL_read_ex(r->ssl, b, sizeof(b), &got) != 1;
	ERR_clear_error();
	return closed;
}

static void raw_send_heartbeat(struct raw *r, uint64_t from, uint64_t to)
{
	struct raft_message m = heartbeat(from, to, 7);
	size_t size;
	uint8_t buf[256];
	assert_int_equal(net_raft_frame_size(&m, &size), 0);
	assert_int_equal(net_raft_frame_encode(&m, NULL, NULL, buf, size), 0);
	raw_write(r, buf, size);
}

/* ---------------------------------------------------------------------- */
/* Working traffic.                                                       */

static void test_nodes_exchange_heartbeats_both_ways(void **state)
{
	struct fixture *f = *state;
	assert_still_serving(f);
	assert_true(log_has(&f->nodes[1], "peer 2 (127.0.0.1:"));
	assert_true(log_has(&f->nodes[1], "established (TLS_AES_128_GCM"));
}

static void test_append_payloads_arrive_intact(void **state)
{
	struct fixture *f = *state;
	struct raft_entry e[3];
	for (int i = 0; i < 3; i++)
		e[i] = (struct raft_entry){.term = 3, .index = 10 + (uint64_t)i,
					   .type = RAFT_ENTRY_NORMAL,
					   .size = 300000u + (uint32_t)i};
	struct raft_message m = {.type = RAFT_MSG_APPEND, .from = 1, .to = 2,
				 .term = 3, .index = 9, .log_term = 3,
				 .n_entries = 3, .entries = e};
	for (int k = 0; k < 10; k++)
		assert_int_equal(net_send(f->nodes[1].net, &m, fill_payload,
					  NULL),
				 0);
	struct node *nd = &f->nodes[2];
	int64_t end = now_ms() + 5000;
	uint64_t want = 10 * (900000u + 3u);
	while (now_ms() < end) {
		pthread_mutex_lock(&nd->lock);
		uint64_t got = nd->payload_bytes;
		pthread_mutex_unlock(&nd->lock);
		if (got == want)
			break;
		sleep_ms(5);
	}
	pthread_mutex_lock(&nd->lock);
	assert_int_equal(nd->payload_bytes, want);
	assert_true(nd->payload_ok);
	pthread_mutex_unlock(&nd->lock);
}

static void test_send_refusals(void **state)
{
	struct fixture *f = *state;
	struct raft_message m = heartbeat(1, 9, 1);
	assert_int_equal(net_send(f->nodes[1].net, &m, NULL, NULL), -ENOENT);
	m = heartbeat(1, 3, 1); /* node 3 is not running */
	assert_int_equal(net_send(f->nodes[1].net, &m, NULL, NULL), -ENOTCONN);
	m = heartbeat(2, 1, 1); /* not from this node */
	assert_int_equal(net_send(f->nodes[1].net, &m, NULL, NULL), -EINVAL);
	struct net_peer_stats st;
	assert_int_equal(net_peer_stats(f->nodes[1].net, 3, &st), 0);
	assert_false(st.up);
	assert_true(st.dropped_frames >= 1);
}

static void test_admin_certificate_makes_admin_requests(void **state)
{
	struct fixture *f = *state;
	struct raw r;
	assert_true(raw_open(&r, &f->nodes[1], f->dir, "admin", 0));
	uint8_t buf[64], resp[64];
	struct net_admin_msg a = {.kind = 5, .request_id = 42,
				  .payload = (const uint8_t *)"ping",
				  .payload_bytes = 4};
	size_t size = net_admin_frame_size(4);
	assert_int_equal(net_admin_frame_encode(NET_FRAME_ADMIN_REQUEST, &a,
						buf, size),
			 0);
	raw_write(&r, buf, size);
	size_t got = 0, need = NET_FRAME_HEADER_BYTES;
	struct net_frame fr;
	while (net_frame_parse(resp, got, &fr, &need, NULL) == -EAGAIN) {
		size_t n;
		assert_int_equal(SSL_read_ex(r.ssl, resp + got, need - got, &n),
				 1);
		got += n;
	}
	struct net_admin_msg d;
	assert_int_equal(fr.type, NET_FRAME_ADMIN_RESPONSE);
	assert_int_equal(net_admin_decode(fr.body, fr.body_bytes, &d, NULL), 0);
	assert_int_equal(d.request_id, 42);
	assert_memory_equal(d.payload, "pong", 4);
	raw_close(&r);
	assert_still_serving(f);
}

static int admin_call(struct fixture *f, const char *ca_dir, const char *name,
		      struct net_admin_msg *resp, uint8_t *buf, size_t size,
		      char *err)
{
	char ca[PATH_MAX], crt[PATH_MAX], key[PATH_MAX], file[64], addr[32];
	path(ca_dir, "ca.crt", ca);
	snprintf(file, sizeof(file), "%s.crt", name);
	path(f->dir, file, crt);
	snprintf(file, sizeof(file), "%s.key", name);
	path(f->dir, file, key);
	address_of(&f->nodes[1], addr, sizeof(addr));
	struct net_client_options o = {.ca_file = ca, .cert_file = crt,
				       .key_file = key, .timeout_ms = 3000};
	struct net_admin_msg req = {.kind = 9, .request_id = 1234,
				    .payload = (const uint8_t *)"status?",
				    .payload_bytes = 7};
	return net_admin_call(addr, &o, &req, buf, size, resp, err, 512);
}

static void test_admin_call_gets_the_answer(void **state)
{
	struct fixture *f = *state;
	uint8_t buf[1024];
	char err[512] = "";
	struct net_admin_msg resp;
	int rc = admin_call(f, f->dir, "admin", &resp, buf, sizeof(buf), err);
	if (rc < 0)
		fprintf(stderr, "%s\n", err);
	assert_int_equal(rc, 0);
	assert_int_equal(resp.kind, 9);
	assert_int_equal(resp.request_id, 1234);
	assert_int_equal(resp.payload_bytes, 4);
	assert_memory_equal(resp.payload, "pong", 4);
	/* A buffer too small for the answer is an error, not an overflow. */
	rc = admin_call(f, f->dir, "admin", &resp, buf,
			NET_FRAME_HEADER_BYTES + NET_ADMIN_FIXED_BYTES + 3, err);
	assert_int_equal(rc, -EMSGSIZE);
	assert_still_serving(f);
}

static void test_admin_call_refuses_a_server_of_another_cluster(void **state)
{
	struct fixture *f = *state;
	char other[80], err[512];
	uint8_t buf[1024];
	struct net_admin_msg resp;
	/* The client trusts another cluster's CA: node 1 is a stranger. */
	snprintf(other, sizeof(other), "%s/other", f->dir);
	assert_int_equal(net_certs_create(other, 1, err, sizeof(err)), 0);
	int rc = admin_call(f, other, "admin", &resp, buf, sizeof(buf), err);
	assert_int_equal(rc, -EPROTO);
	assert_non_null(strstr(err, "certificate verif"));
	/* And nothing listens here: a clear connect error. */
	f->nodes[1].port = f->nodes[4].port;
	rc = admin_call(f, f->dir, "admin", &resp, buf, sizeof(buf), err);
	assert_int_equal(rc, -ECONNREFUSED);
}

static void test_peers_added_and_removed_at_run_time(void **state)
{
	struct fixture *f = *state;
	char addr4[32];
	const uint64_t p4[] = {1};
	assert_int_equal(start_node_with(f, 4, "node4", p4, 1, NULL), 0);
	/* Not a peer of node 1 yet: refused. */
	assert_true(wait_log(&f->nodes[1],
			     "certificate names node 4, not a peer of node 1",
			     5000));
	address_of(&f->nodes[4], addr4, sizeof(addr4));
	assert_int_equal(net_peer_add(f->nodes[1].net, 4, addr4), 0);
	assert_int_equal(net_peer_add(f->nodes[1].net, 4, addr4), -EEXIST);
	assert_int_equal(net_peer_add(f->nodes[1].net, 1, addr4), -EEXIST);
	assert_int_equal(net_peer_add(f->nodes[1].net, 5, "nowhere"), -EINVAL);
	assert_true(exchange(f, 1, 4));
	assert_true(exchange(f, 4, 1));
	assert_int_equal(net_peer_remove(f->nodes[1].net, 4), 0);
	assert_int_equal(net_peer_remove(f->nodes[1].net, 4), -ENOENT);
	assert_true(wait_log(&f->nodes[1], "peer 4: removed", 3000));
	struct raft_message m = heartbeat(1, 4, 1);
	assert_int_equal(net_send(f->nodes[1].net, &m, NULL, NULL), -ENOENT);
	/* Node 4 keeps dialling and is refused again. */
	pthread_mutex_lock(&f->nodes[1].lock);
	f->nodes[1].log_len = 0;
	pthread_mutex_unlock(&f->nodes[1].lock);
	assert_true(wait_log(&f->nodes[1],
			     "certificate names node 4, not a peer of node 1",
			     5000));
	/* The slot is reused by the next peer added. */
	assert_int_equal(net_peer_add(f->nodes[1].net, 4, addr4), 0);
	assert_true(exchange(f, 4, 1));
	assert_still_serving(f);
}

/* ---------------------------------------------------------------------- */
/* Bad input, one test each.                                              */

static void test_certificate_of_another_ca(void **state)
{
	struct fixture *f = *state;
	char other[80], err[512], crt[PATH_MAX], key[PATH_MAX];
	struct net_identity id;
	path(f->dir, "ca.crt", crt);
	assert_int_equal(net_cert_identity(crt, &id, err, sizeof(err)), 0);
	/* Same cluster id, same node id, another CA key. */
	snprintf(other, sizeof(other), "%s/other", f->dir);
	assert_int_equal(net_ca_create(other, id.cluster_id, err, sizeof(err)),
			 0);
	struct net_cert_request req = {.role = NET_ROLE_NODE, .node_id = 3,
				       .not_before_s = -60,
				       .not_after_s = 86400};
	path(other, "node3.crt", crt);
	path(other, "node3.key", key);
	assert_int_equal(net_cert_issue(other, &req, crt, key, err,
					sizeof(err)),
			 0);
	struct raw r;
	raw_open(&r, &f->nodes[1], other, "node3", 0);
	assert_true(raw_sees_close(&r));
	raw_close(&r);
	assert_true(wait_log(&f->nodes[1], "certificate verification failed",
			     3000));
	assert_still_serving(f);
}

static void test_certificate_of_another_cluster(void **state)
{
	struct fixture *f = *state;
	char err[512], crt[PATH_MAX], key[PATH_MAX];
	struct net_cert_request req = {
		.role = NET_ROLE_NODE, .node_id = 3,
		.cluster_id = "00000000000000000000000000000bad",
		.not_before_s = -60, .not_after_s = 86400};
	path(f->dir, "foreign3.crt", crt);
	path(f->dir, "foreign3.key", key);
	assert_int_equal(net_cert_issue(f->dir, &req, crt, key, err,
					sizeof(err)),
			 0);
	struct raw r;
	assert_true(raw_open(&r, &f->nodes[1], f->dir, "foreign3", 0));
	assert_true(raw_sees_close(&r));
	raw_close(&r);
	assert_true(wait_log(&f->nodes[1],
			     "certificate is for cluster "
			     "00000000000000000000000000000bad",
			     3000));
	assert_still_serving(f);
}

static void test_node_certificate_claiming_another_id(void **state)
{
	struct fixture *f = *state;
	struct raw r;
	/* Node 3's valid certificate, messages claiming to be node 2. */
	assert_true(raw_open(&r, &f->nodes[1], f->dir, "node3", 0));
	raw_send_heartbeat(&r, 2, 1);
	assert_true(raw_sees_close(&r));
	raw_close(&r);
	assert_true(wait_log(&f->nodes[1],
			     "claims to be from node 2 but the certificate "
			     "names node 3",
			     3000));
	pthread_mutex_lock(&f->nodes[1].lock);
	assert_int_not_equal(f->nodes[1].last_context, 7);
	pthread_mutex_unlock(&f->nodes[1].lock);
	assert_still_serving(f);
}

static void test_unknown_node_is_refused(void **state)
{
	struct fixture *f = *state;
	struct raw r;
	/* Node 4 has a valid certificate but is no peer of node 1. */
	raw_open(&r, &f->nodes[1], f->dir, "node4", 0);
	assert_true(raw_sees_close(&r));
	raw_close(&r);
	assert_true(wait_log(&f->nodes[1],
			     "certificate names node 4, not a peer of node 1",
			     3000));
	assert_still_serving(f);
}

static void test_dialled_peer_with_wrong_id(void **state)
{
	struct fixture *f = *state;
	/* Node 4's certificate listens where node 1 expects node 3. */
	f->nodes[4].port = f->nodes[3].port;
	assert_int_equal(start_node_with(f, 4, "node4", NULL, 0, NULL), 0);
	if (f->nodes[4].port != f->nodes[3].port)
		skip(); /* the port was taken: node 1 dials elsewhere */
	assert_true(wait_log(&f->nodes[1],
			     "dialled node 3 but its certificate names node 4",
			     5000));
	struct net_peer_stats st;
	assert_int_equal(net_peer_stats(f->nodes[1].net, 3, &st), 0);
	assert_false(st.up);
	assert_still_serving(f);
}

static void test_expired_certificate(void **state)
{
	struct fixture *f = *state;
	char err[512], crt[PATH_MAX], key[PATH_MAX];
	struct net_cert_request req = {.role = NET_ROLE_NODE, .node_id = 3,
				       .not_before_s = -7200,
				       .not_after_s = -3600};
	path(f->dir, "old3.crt", crt);
	path(f->dir, "old3.key", key);
	assert_int_equal(net_cert_issue(f->dir, &req, crt, key, err,
					sizeof(err)),
			 0);
	struct raw r;
	raw_open(&r, &f->nodes[1], f->dir, "old3", 0);
	assert_true(raw_sees_close(&r));
	raw_close(&r);
	assert_true(wait_log(&f->nodes[1], "certificate has expired", 3000));
	assert_still_serving(f);
}

static void test_admin_certificate_sending_raft(void **state)
{
	struct fixture *f = *state;
	struct raw r;
	assert_true(raw_open(&r, &f->nodes[1], f->dir, "admin", 0));
	raw_send_heartbeat(&r, 2, 1);
	assert_true(raw_sees_close(&r));
	raw_close(&r);
	assert_true(wait_log(&f->nodes[1],
			     "an admin certificate may not send raft traffic",
			     3000));
	assert_still_serving(f);
}

static void test_plaintext_client(void **state)
{
	struct fixture *f = *state;
	int fd = tcp_connect(&f->nodes[1]);
	const char req[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
	assert_int_equal(write(fd, req, sizeof(req) - 1), sizeof(req) - 1);
	char b[64];
	int reads = 0;
	while (reads < 10 && read(fd, b, sizeof(b)) > 0)
		reads++;
	assert_true(reads < 10); /* closed, not answered at length */
	close(fd);
	assert_true(wait_log(&f->nodes[1], "tls handshake: ", 3000));
	assert_true(log_has(&f->nodes[1], "http request") ||
		    log_has(&f->nodes[1], "wrong version number"));
	assert_still_serving(f);
}

static void test_tls12_client(void **state)
{
	struct fixture *f = *state;
	struct raw r;
	assert_false(raw_open(&r, &f->nodes[1], f->dir, "node3",
			      TLS1_2_VERSION));
	raw_close(&r);
	assert_true(wait_log(&f->nodes[1], "unsupported protocol", 3000));
	assert_still_serving(f);
}

static void test_random_bytes_after_handshake(void **state)
{
	struct fixture *f = *state;
	struct raw r;
	uint8_t junk[4096];
	uint64_t x = 0x9e3779b97f4a7c15ull;
	for (size_t i = 0; i < sizeof(junk); i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		junk[i] = (uint8_t)x;
	}
	junk[0] = 0x00; /* not the magic's first byte */
	assert_true(raw_open(&r, &f->nodes[1], f->dir, "node3", 0));
	raw_write(&r, junk, sizeof(junk));
	assert_true(raw_sees_close(&r));
	raw_close(&r);
	assert_true(wait_log(&f->nodes[1], "bad frame: bad frame magic", 3000));
	assert_still_serving(f);
}

static void test_4gib_length_field(void **state)
{
	struct fixture *f = *state;
	struct raw r;
	uint8_t hdr[NET_FRAME_HEADER_BYTES] = {0x52, 0x46, 0x53, 0x4e,
					       NET_PROTOCOL_VERSION,
					       NET_FRAME_RAFT, 0, 0,
					       0xff, 0xff, 0xff, 0xff};
	assert_true(raw_open(&r, &f->nodes[1], f->dir, "node3", 0));
	raw_write(&r, hdr, sizeof(hdr));
	/* Refused on the header alone: no body was needed to decide. */
	assert_true(raw_sees_close(&r));
	raw_close(&r);
	assert_true(wait_log(&f->nodes[1],
			     "bad frame: frame length beyond its limit", 3000));
	assert_still_serving(f);
}

static void test_truncated_frame(void **state)
{
	struct fixture *f = *state;
	struct raw r;
	struct raft_message m = heartbeat(3, 1, 9);
	uint8_t buf[256];
	size_t size;
	assert_int_equal(net_raft_frame_size(&m, &size), 0);
	assert_int_equal(net_raft_frame_encode(&m, NULL, NULL, buf, size), 0);
	assert_true(raw_open(&r, &f->nodes[1], f->dir, "node3", 0));
	raw_write(&r, buf, size - 10);
	raw_close(&r); /* close_notify with the frame unfinished */
	assert_true(wait_log(&f->nodes[1], "truncated frame", 3000));
	pthread_mutex_lock(&f->nodes[1].lock);
	assert_int_not_equal(f->nodes[1].last_context, 9);
	pthread_mutex_unlock(&f->nodes[1].lock);
	assert_still_serving(f);
}

/* Wait until node 1's receive buffers reach at least `bytes`. */
static uint64_t rbuf_after(struct fixture *f, uint64_t bytes)
{
	struct net_stats st;
	int64_t end = now_ms() + 3000;
	do {
		net_stats_get(f->nodes[1].net, &st);
		if (st.receive_buffer_bytes >= bytes)
			break;
		sleep_ms(10);
	} while (now_ms() < end);
	return st.receive_buffer_bytes;
}

static void test_claimed_length_is_not_allocated(void **state)
{
	struct fixture *f = *state;
	struct raw r;
	static uint8_t body[256 * 1024];
	struct net_stats st;
	/* Node 2's connection to node 1 is up and has read: its buffer is
	 * in the baseline. */
	assert_still_serving(f);
	net_stats_get(f->nodes[1].net, &st);
	uint64_t base = st.receive_buffer_bytes;
	/* A valid header claiming the largest frame, then little data. */
	uint32_t claimed = NET_MAX_FRAME_BYTES - NET_FRAME_HEADER_BYTES;
	uint8_t hdr[NET_FRAME_HEADER_BYTES] = {
		0x52, 0x46, 0x53, 0x4e, NET_PROTOCOL_VERSION, NET_FRAME_RAFT,
		0, 0, (uint8_t)(claimed >> 24), (uint8_t)(claimed >> 16),
		(uint8_t)(claimed >> 8), (uint8_t)claimed};
	assert_true(raw_open(&r, &f->nodes[1], f->dir, "node3", 0));
	raw_write(&r, hdr, sizeof(hdr));
	raw_write(&r, body, 1000);
	uint64_t grown = rbuf_after(f, base + 1) - base;
	/* Only the initial buffer: nothing sized by the claim (4 MiB). */
	assert_true(grown > 0 && grown <= 64 * 1024);
	/* 256 KiB more arrive: the buffer follows what arrived. */
	raw_write(&r, body, sizeof(body));
	grown = rbuf_after(f, base + 256 * 1024) - base;
	assert_true(grown <= 2 * (sizeof(body) + 1000 + sizeof(hdr)));
	assert_true(grown < claimed / 4);
	raw_close(&r);
	assert_true(wait_log(&f->nodes[1], "truncated frame", 3000));
	int64_t end = now_ms() + 3000;
	do {
		net_stats_get(f->nodes[1].net, &st);
		if (st.receive_buffer_bytes <= base)
			break;
		sleep_ms(10);
	} while (now_ms() < end);
	assert_true(st.receive_buffer_bytes <= base); /* freed with it */
	assert_still_serving(f);
}

static void small_queue(struct net_options *o)
{
	o->max_queue_bytes = 8u * 1024u * 1024u;
	o->idle_timeout_ms = 1000;
}

static void test_peer_that_stops_reading(void **state)
{
	struct fixture *f = *state;
	const uint64_t p1[] = {2, 3}, p2[] = {1, 3}, p3[] = {1, 2};
	assert_int_equal(start_node_with(f, 1, "node1", p1, 2, small_queue), 0);
	assert_int_equal(start_node_with(f, 2, "node2", p2, 2, NULL), 0);
	assert_int_equal(start_node_with(f, 3, "node3", p3, 2, NULL), 0);
	assert_true(wait_up(f, 1, 2, 5000));
	assert_true(wait_up(f, 1, 3, 5000));
	/* Node 2's I/O thread blocks in its callback: it stops reading. */
	atomic_store(&f->nodes[2].block, true);
	struct raft_entry e = {.term = 3, .index = 10,
			       .type = RAFT_ENTRY_NORMAL,
			       .size = 1024 * 1024};
	struct raft_message m = {.type = RAFT_MSG_APPEND, .from = 1, .to = 2,
				 .term = 3, .index = 9, .n_entries = 1,
				 .entries = &e};
	int enobufs = 0;
	uint64_t max_queued = 0;
	struct net_peer_stats st;
	int64_t end = now_ms() + 3000;
	for (int i = 0; i < 400 && now_ms() < end; i++) {
		int rc = net_send(f->nodes[1].net, &m, fill_payload, NULL);
		if (rc == -ENOBUFS)
			enobufs++;
		assert_int_equal(net_peer_stats(f->nodes[1].net, 2, &st), 0);
		if (st.queued_bytes > max_queued)
			max_queued = st.queued_bytes;
		if (enobufs > 20)
			break;
		sleep_ms(1);
	}
	assert_true(enobufs > 0);
	assert_true(max_queued <= 8u * 1024u * 1024u);
	/* Node 1 still serves node 3 meanwhile. */
	assert_true(exchange(f, 1, 3));
	assert_true(exchange(f, 3, 1));
	/* And gives up on the stuck connection after its idle timeout. */
	assert_true(wait_log(&f->nodes[1], "peer stopped reading", 5000));
	assert_int_equal(net_peer_stats(f->nodes[1].net, 2, &st), 0);
	assert_true(st.queued_bytes <= 8u * 1024u * 1024u);
	atomic_store(&f->nodes[2].block, false);
	assert_true(exchange(f, 1, 2));
	assert_true(exchange(f, 3, 1));
}

static int nft(const char *cmd)
{
	int rc = system(cmd);
	if (rc != 0)
		fprintf(stderr, "failed (%d): %s\n", rc, cmd);
	return rc;
}

static void test_silent_cut_then_heal(void **state)
{
	struct fixture *f = *state;
	init_node(f, 1, "127.0.0.2");
	init_node(f, 2, "127.0.0.3");
	const uint64_t p1[] = {2}, p2[] = {1};
	assert_int_equal(start_node_with(f, 1, "node1", p1, 1, NULL), 0);
	assert_int_equal(start_node_with(f, 2, "node2", p2, 1, NULL), 0);
	assert_true(exchange(f, 1, 2));
	assert_true(exchange(f, 2, 1));
	/* Drop every packet of exactly these two nodes' links, silently. */
	char cmd[1024];
	unsigned p1port = f->nodes[1].port, p2port = f->nodes[2].port;
	snprintf(cmd, sizeof(cmd),
		 "nft -f - <<'EOF'\n"
		 "table inet %s {\n"
		 "  chain in {\n"
		 "    type filter hook input priority 0; policy accept;\n"
		 "    ip saddr 127.0.0.2 ip daddr 127.0.0.3 tcp dport %u drop\n"
		 "    ip saddr 127.0.0.3 ip daddr 127.0.0.2 tcp sport %u drop\n"
		 "    ip saddr 127.0.0.3 ip daddr 127.0.0.2 tcp dport %u drop\n"
		 "    ip saddr 127.0.0.2 ip daddr 127.0.0.3 tcp sport %u drop\n"
		 "  }\n"
		 "}\n"
		 "EOF",
		 f->nft_table, p2port, p2port, p1port, p1port);
	f->nft_made = true; /* teardown deletes it whatever happens */
	assert_int_equal(nft(cmd), 0);
	int64_t cut = now_ms();
	/* Both sides notice within seconds: the dialer through
	 * TCP_USER_TIMEOUT on its unacknowledged pings, the acceptor through
	 * its idle timeout or TCP keepalive, whichever fires first. */
	assert_true(wait_log2(&f->nodes[1], "peer 2 (127.0.0.3:",
			      "closing: tls", 6000));
	assert_true(wait_log2(&f->nodes[2], "inbound from node 1 (127.0.0.2:",
			      "closing:", 6000));
	struct net_peer_stats st;
	int64_t end = now_ms() + 6000;
	do {
		net_peer_stats(f->nodes[1].net, 2, &st);
		if (!st.up)
			break;
		sleep_ms(20);
	} while (now_ms() < end);
	assert_false(st.up);
	int64_t down_ms = now_ms() - cut;
	/* Stay cut a while: reconnects time out and back off. */
	sleep_ms(2500);
	assert_true(wait_log2(&f->nodes[1], "peer 2 (127.0.0.3:",
			      "closing: connect timed out", 100));
	nft_delete(f);
	assert_false(f->nft_made);
	int64_t heal = now_ms();
	assert_true(exchange(f, 1, 2));
	assert_true(exchange(f, 2, 1));
	int64_t up_ms = now_ms() - heal;
	fprintf(stderr, "cut noticed after %" PRId64 " ms, link back %" PRId64
			" ms after the heal\n",
		down_ms, up_ms);
	assert_true(up_ms < 5000);
}

/*
 * A small frame to an idle connection is written by the sending thread
 * itself (net/send.c). When the peer vanishes under such writes, one of
 * them may fail with EPIPE: that must not kill the process with SIGPIPE
 * (here at its default action, as in an application that never heard of
 * it), and the connection is closed and dialled again as usual.
 */
struct hammer {
	struct net *net;
	int64_t end_ms;
	int sent, refused;
};

static void *hammer_main(void *arg)
{
	struct hammer *h = arg;
	struct raft_message m = heartbeat(1, 2, 7);
	for (int i = 0; i < 400000 && now_ms() < h->end_ms; i++) {
		if (net_send(h->net, &m, NULL, NULL) == 0)
			h->sent++;
		else
			h->refused++;
	}
	return NULL;
}

static void test_direct_writes_to_a_vanished_peer(void **state)
{
	struct fixture *f = *state;
	const uint64_t p2[] = {1, 3};
	void (*old)(int) = signal(SIGPIPE, SIG_DFL);
	assert_true(exchange(f, 1, 2));
	struct hammer h = {f->nodes[1].net, now_ms() + 1500, 0, 0};
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, hammer_main, &h), 0);
	sleep_ms(200); /* frames flow, most of them written directly */
	stop_node(f, 2);
	pthread_join(t, NULL);
	signal(SIGPIPE, old);
	fprintf(stderr, "%d frames sent, %d refused (peer gone)\n", h.sent,
		h.refused);
	assert_true(h.sent > 0);
	assert_true(h.refused > 0); /* the close was noticed */
	assert_int_equal(start_node_with(f, 2, "node2", p2, 2, NULL), 0);
	assert_true(exchange(f, 1, 2));
	assert_true(exchange(f, 2, 1));
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup_pair, teardown)
#define T0(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
TEST_MAIN(T(test_nodes_exchange_heartbeats_both_ways),
	  T(test_append_payloads_arrive_intact), T(test_send_refusals),
	  T(test_admin_certificate_makes_admin_requests),
	  T(test_admin_call_gets_the_answer),
	  T(test_admin_call_refuses_a_server_of_another_cluster),
	  T(test_peers_added_and_removed_at_run_time),
	  T(test_certificate_of_another_ca),
	  T(test_certificate_of_another_cluster),
	  T(test_node_certificate_claiming_another_id),
	  T(test_unknown_node_is_refused), T(test_dialled_peer_with_wrong_id),
	  T(test_expired_certificate), T(test_admin_certificate_sending_raft),
	  T(test_plaintext_client), T(test_tls12_client),
	  T(test_random_bytes_after_handshake), T(test_4gib_length_field),
	  T(test_truncated_frame), T(test_claimed_length_is_not_allocated),
	  T(test_direct_writes_to_a_vanished_peer),
	  T0(test_peer_that_stops_reading),
	  T0(test_silent_cut_then_heal))
