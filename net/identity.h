#ifndef NET_IDENTITY_H
#define NET_IDENTITY_H

/*
 * Private to net/: who a certificate names (the raftfs URI in its
 * subjectAltName), and the OpenSSL error queue turned into text.
 */

#include <stdarg.h>
#include <stddef.h>

#include <openssl/x509.h>

#include "net/net.h"

#define NET_URI_PREFIX "raftfs://cluster/"

/*
 * Fill *id from the certificate: exactly one raftfs URI, of the form
 * raftfs://cluster/<cid> (CA), .../node/<id> (node) or .../admin (admin).
 * Returns 0, or -EINVAL with a static reason in *why.
 */
int net_identity_from_x509(X509 *x, struct net_identity *id,
			   const char **why);

/* The URI naming this identity, into buf. */
void net_identity_uri(const char *cluster_id, uint8_t role, uint64_t node_id,
		      char *buf, size_t size);

/* Whether s is a well-formed cluster id (32 lowercase hex digits). */
bool net_cluster_id_is_valid(const char *s);

/*
 * Drain OpenSSL's error queue of this thread into buf as "; "-separated
 * reason strings ("" when empty). Returns buf.
 */
const char *net_openssl_errors(char *buf, size_t size);

/* Format one line into err (if not NULL) and return rc. */
int net_err(char *err, size_t size, int rc, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

#endif
