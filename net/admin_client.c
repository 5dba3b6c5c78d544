/*
 * The blocking admin client: one connection, one request, one response.
 * Used by the command-line tools from another machine; the server side is
 * the transport's on_admin callback. Same TLS settings and identity rules
 * as the transport: the server must chain to the cluster CA and be a node
 * of the cluster that the CA names.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>

#include "net/identity.h"
#include "net/transport.h"

/* Wait until fd is ready for what the last SSL call wanted, or the
 * deadline passes. */
static int wait_ready(int fd, bool want_write, int64_t deadline_ms)
{
	int64_t left = deadline_ms - net_now_ms();
	if (left <= 0)
		return -ETIMEDOUT;
	struct pollfd p = {.fd = fd, .events = want_write ? POLLOUT : POLLIN};
	int rc = poll(&p, 1, (int)left);
	if (rc < 0)
		return -errno;
	return rc == 0 ? -ETIMEDOUT : 0;
}

/* Bind fd to source's host (any port). */
static int bind_source(int fd, const char *source, char *err,
		       size_t err_size)
{
	struct sockaddr_storage sa;
	socklen_t len;
	char host[RAFT_MAX_ADDRESS + 8];
	const char *colon = strrchr(source, ':');

	/* net_resolve wants host:port; port 0 lets the kernel choose. */
	if (colon != NULL)
		snprintf(host, sizeof(host), "%.*s:0", (int)(colon - source),
			 source);
	else
		snprintf(host, sizeof(host), "%s:0", source);
	if (net_resolve(host, &sa, &len) < 0)
		return net_err(err, err_size, -EINVAL,
			       "bad source address '%s'", source);
	if (bind(fd, (struct sockaddr *)&sa, len) < 0)
		return net_err(err, err_size, -errno, "bind to %s: %s", source,
			       strerror(errno));
	return 0;
}

static int dial(const char *address, const char *source, int64_t deadline_ms,
		int *out, char *err, size_t err_size)
{
	struct sockaddr_storage sa;
	socklen_t len;
	if (net_resolve(address, &sa, &len) < 0)
		return net_err(err, err_size, -EINVAL, "bad address '%s'",
			       address);
	int fd = socket(sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
			0);
	if (fd < 0)
		return net_err(err, err_size, -errno, "socket: %s",
			       strerror(errno));
	if (source != NULL) {
		int rc = bind_source(fd, source, err, err_size);
		if (rc < 0) {
			close(fd);
			return rc;
		}
	}
	if (connect(fd, (struct sockaddr *)&sa, len) < 0) {
		int rc = -errno;
		if (rc == -EINPROGRESS) {
			int soerr = 0;
			socklen_t sl = sizeof(soerr);
			rc = wait_ready(fd, true, deadline_ms);
			if (rc == 0 &&
			    getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0)
				rc = -errno;
			else if (rc == 0)
				rc = -soerr;
		}
		if (rc < 0) {
			close(fd);
			return net_err(err, err_size, rc, "connect to %s: %s",
				       address, strerror(-rc));
		}
	}
	*out = fd;
	return 0;
}

/* Run one SSL step (handshake, read or write) until it finishes or the
 * deadline passes. */
static enum tls_result step(struct conn *c, int op, void *buf, size_t len,
			    size_t *moved, int64_t deadline_ms, char *why,
			    size_t size)
{
	for (;;) {
		enum tls_result r;
		if (op == 0)
			r = net_tls_handshake(c, why, size);
		else if (op == 1)
			r = net_tls_read(c, buf, len, moved, why, size);
		else
			r = net_tls_write(c, buf, len, moved, why, size);
		if (r != TLS_AGAIN)
			return r;
		if (wait_ready(c->fd, c->want_write, deadline_ms) < 0) {
			snprintf(why, size, "timed out");
			return TLS_ERROR;
		}
	}
}

static int check_server(struct conn *c, const char *address,
			const char *ca_file, char *err, size_t err_size)
{
	struct net_identity ca;
	const char *why;
	int rc = net_cert_identity(ca_file, &ca, err, err_size);
	if (rc < 0)
		return rc;
	X509 *crt = SSL_get0_peer_certificate(c->ssl);
	if (crt == NULL || SSL_get_verify_result(c->ssl) != X509_V_OK)
		return net_err(err, err_size, -EPROTO,
			       "%s: server certificate not verified", address);
	if (net_identity_from_x509(crt, &c->who, &why) < 0)
		return net_err(err, err_size, -EPROTO, "%s: %s", address, why);
	if (c->who.role != NET_ROLE_NODE ||
	    strcmp(c->who.cluster_id, ca.cluster_id) != 0)
		return net_err(err, err_size, -EPROTO,
			       "%s is not a node of cluster %s", address,
			       ca.cluster_id);
	return 0;
}

int net_admin_call(const char *address, const struct net_client_options *o,
		   const struct net_admin_msg *req, uint8_t *resp_buf,
		   size_t resp_size, struct net_admin_msg *resp, char *err,
		   size_t err_size)
{
	int64_t deadline = net_now_ms() + (o->timeout_ms ? o->timeout_ms : 5000);
	struct net_options no;
	struct conn c;
	SSL_CTX *ctx = NULL;
	uint8_t req_buf[NET_FRAME_HEADER_BYTES + NET_ADMIN_FIXED_BYTES +
			NET_MAX_ADMIN_PAYLOAD_BYTES];
	char why[600];
	size_t moved;
	int rc;
	memset(&c, 0, sizeof(c));
	c.fd = -1;
	net_options_default(&no, 1);
	no.ca_file = o->ca_file;
	no.cert_file = o->cert_file;
	no.key_file = o->key_file;
	size_t req_size = net_admin_frame_size(req->payload_bytes);
	rc = net_admin_frame_encode(NET_FRAME_ADMIN_REQUEST, req, req_buf,
				    sizeof(req_buf));
	if (rc < 0)
		return net_err(err, err_size, rc, "bad admin request");
	rc = net_tls_ctx_create(&no, false, &ctx, err, err_size);
	if (rc < 0)
		return rc;
	rc = dial(address, o->source, deadline, &c.fd, err, err_size);
	if (rc < 0)
		goto out;
	c.ssl = SSL_new(ctx);
	if (c.ssl == NULL || !SSL_set_fd(c.ssl, c.fd)) {
		rc = net_err(err, err_size, -ENOMEM, "out of memory");
		goto out;
	}
	SSL_set_connect_state(c.ssl);
	if (step(&c, 0, NULL, 0, NULL, deadline, why, sizeof(why)) != TLS_OK) {
		rc = net_err(err, err_size, -EPROTO, "%s: %s", address, why);
		goto out;
	}
	rc = check_server(&c, address, o->ca_file, err, err_size);
	if (rc < 0)
		goto out;
	for (size_t off = 0; off < req_size; off += moved) {
		if (step(&c, 2, req_buf + off, req_size - off, &moved, deadline,
			 why, sizeof(why)) != TLS_OK) {
			rc = net_err(err, err_size, -EPROTO, "%s: %s", address,
				     why);
			goto out;
		}
	}
	size_t got = 0, need = NET_FRAME_HEADER_BYTES;
	struct net_frame f;
	const char *fwhy = NULL;
	while ((rc = net_frame_parse(resp_buf, got, &f, &need, &fwhy)) ==
	       -EAGAIN) {
		if (need > resp_size) {
			rc = net_err(err, err_size, -EMSGSIZE,
				     "%s: response of %zu bytes, buffer of %zu",
				     address, need, resp_size);
			goto out;
		}
		enum tls_result r = step(&c, 1, resp_buf + got, need - got,
					 &moved, deadline, why, sizeof(why));
		if (r != TLS_OK) {
			rc = net_err(err, err_size,
				     r == TLS_CLOSED ? -ECONNRESET : -EPROTO,
				     "%s: %s", address, why);
			goto out;
		}
		got += moved;
	}
	if (rc < 0 || f.type != NET_FRAME_ADMIN_RESPONSE ||
	    net_admin_decode(f.body, f.body_bytes, resp, &fwhy) < 0 ||
	    resp->request_id != req->request_id) {
		rc = net_err(err, err_size, -EBADMSG, "%s: bad response: %s",
			     address, fwhy ? fwhy : "not the answer asked for");
		goto out;
	}
	rc = 0;
	ERR_clear_error();
	SSL_shutdown(c.ssl);
out:
	ERR_clear_error();
	SSL_free(c.ssl);
	if (c.fd >= 0)
		close(c.fd);
	SSL_CTX_free(ctx);
	return rc;
}
