/*
 * TLS 1.3 contexts and non-blocking SSL calls. Each call maps OpenSSL's
 * result the way nginx's ngx_ssl_handle_recv does: WANT_READ/WANT_WRITE
 * mean "again", ZERO_RETURN (close_notify) and a bare EOF mean the peer
 * closed, anything else is an error whose reasons are drained from the
 * error queue into text for the log. The queue is cleared before every
 * call so an old error is never blamed on a new one.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "net/identity.h"
#include "net/transport.h"

#define NET_TLS_READ_BUFFER_BYTES (128u * 1024u)

/* AES-GCM first: hardware accelerated here (issue 8: ~4 GB/s a core). */
#define CIPHERSUITES                                                           \
	"TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:"                      \
	"TLS_CHACHA20_POLY1305_SHA256"

static int ctx_fail(SSL_CTX *ctx, char *err, size_t err_size,
		    const char *what, const char *path)
{
	char errs[512];
	SSL_CTX_free(ctx);
	return net_err(err, err_size, -EINVAL, "%s %s: %s", what,
		       path ? path : "", net_openssl_errors(errs, sizeof(errs)));
}

int net_tls_ctx_create(const struct net_options *o, bool server,
		       SSL_CTX **out, char *err, size_t err_size)
{
	SSL_CTX *ctx = SSL_CTX_new(server ? TLS_server_method()
					  : TLS_client_method());
	if (ctx == NULL)
		return ctx_fail(NULL, err, err_size, "cannot make a TLS context",
				NULL);
	if (!SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) ||
	    !SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) ||
	    !SSL_CTX_set_ciphersuites(ctx, CIPHERSUITES))
		return ctx_fail(ctx, err, err_size, "cannot set TLS 1.3", NULL);
	if (SSL_CTX_use_certificate_chain_file(ctx, o->cert_file) != 1)
		return ctx_fail(ctx, err, err_size, "cannot load certificate",
				o->cert_file);
	if (SSL_CTX_use_PrivateKey_file(ctx, o->key_file, SSL_FILETYPE_PEM) !=
		    1 ||
	    SSL_CTX_check_private_key(ctx) != 1)
		return ctx_fail(ctx, err, err_size, "cannot load key",
				o->key_file);
	if (SSL_CTX_load_verify_locations(ctx, o->ca_file, NULL) != 1)
		return ctx_fail(ctx, err, err_size, "cannot load CA",
				o->ca_file);
	/* Only the cluster CA is trusted, and the peer must show a
	 * certificate: the acceptor a client one, the dialer a server one
	 * (so an admin certificate, clientAuth only, can never act as a
	 * node being dialled). */
	SSL_CTX_set_verify(ctx,
			   SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
			   NULL);
	SSL_CTX_set_verify_depth(ctx, 2);
	if (!SSL_CTX_set_purpose(ctx, server ? X509_PURPOSE_SSL_CLIENT
					     : X509_PURPOSE_SSL_SERVER))
		return ctx_fail(ctx, err, err_size, "cannot set purpose",
				NULL);
	/* Connections are long-lived and re-authenticated in full: no
	 * session tickets (nothing is sent on an inbound connection that the
	 * dialer would have to read) and no resumption. */
	SSL_CTX_set_num_tickets(ctx, 0);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	/* A peer closing without close_notify is a close like any other:
	 * frames are self-delimiting, and a frame cut short is reported by
	 * the reader itself. */
	SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET | SSL_OP_NO_RENEGOTIATION |
					 SSL_OP_IGNORE_UNEXPECTED_EOF);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
				      SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	/* Read many records per system call instead of two calls (header,
	 * body) per 16 KiB record. */
	SSL_CTX_set_read_ahead(ctx, 1);
	SSL_CTX_set_default_read_buffer_len(ctx, NET_TLS_READ_BUFFER_BYTES);
	*out = ctx;
	return 0;
}

/* The failure of an SSL call as one line. */
static enum tls_result failure(struct conn *c, int sslerr, int saved_errno,
			       const char *op, char *why, size_t size)
{
	char errs[512];
	net_openssl_errors(errs, sizeof(errs));
	if (sslerr == SSL_ERROR_SYSCALL && errs[0] == '\0') {
		if (saved_errno == 0) {
			snprintf(why, size, "%s: connection closed by peer",
				 op);
			return TLS_CLOSED;
		}
		snprintf(why, size, "%s: %s", op, strerror(saved_errno));
		return TLS_ERROR;
	}
	long vr = SSL_get_verify_result(c->ssl);
	if (vr != X509_V_OK)
		snprintf(why, size, "%s: certificate verification failed: %s (%s)",
			 op, X509_verify_cert_error_string(vr), errs);
	else
		snprintf(why, size, "%s: %s", op,
			 errs[0] ? errs : "protocol error");
	return TLS_ERROR;
}

static enum tls_result classify(struct conn *c, int rc, const char *op,
				char *why, size_t size)
{
	int saved_errno = errno;
	int sslerr = SSL_get_error(c->ssl, rc);
	switch (sslerr) {
	case SSL_ERROR_WANT_READ:
		c->want_write = false;
		return TLS_AGAIN;
	case SSL_ERROR_WANT_WRITE:
		c->want_write = true;
		return TLS_AGAIN;
	case SSL_ERROR_ZERO_RETURN:
		snprintf(why, size, "%s: closed by peer", op);
		return TLS_CLOSED;
	default:
		return failure(c, sslerr, saved_errno, op, why, size);
	}
}

enum tls_result net_tls_handshake(struct conn *c, char *why, size_t size)
{
	ERR_clear_error();
	errno = 0;
	int rc = SSL_do_handshake(c->ssl);
	if (rc == 1)
		return TLS_OK;
	enum tls_result r = classify(c, rc, "tls handshake", why, size);
	return r == TLS_CLOSED ? TLS_ERROR : r;
}

enum tls_result net_tls_read(struct conn *c, void *buf, size_t len,
			     size_t *got, char *why, size_t size)
{
	ERR_clear_error();
	errno = 0;
	int rc = SSL_read_ex(c->ssl, buf, len, got);
	if (rc == 1)
		return TLS_OK;
	*got = 0;
	return classify(c, rc, "tls read", why, size);
}

enum tls_result net_tls_write(struct conn *c, const void *buf, size_t len,
			      size_t *put, char *why, size_t size)
{
	ERR_clear_error();
	errno = 0;
	int rc = SSL_write_ex(c->ssl, buf, len, put);
	if (rc == 1)
		return TLS_OK;
	*put = 0;
	return classify(c, rc, "tls write", why, size);
}
