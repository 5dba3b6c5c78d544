/*
 * Identities in certificates: a raftfs certificate names its cluster and
 * role (and node id) with one URI in subjectAltName. Both the certificate
 * tools and the TLS handshake checks read them here, so the two can never
 * disagree on the format.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "net/identity.h"

bool net_cluster_id_is_valid(const char *s)
{
	size_t i;
	for (i = 0; i < NET_CLUSTER_ID_CHARS; i++) {
		char c = s[i];
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
			return false;
	}
	return s[i] == '\0';
}

void net_identity_uri(const char *cluster_id, uint8_t role, uint64_t node_id,
		      char *buf, size_t size)
{
	if (role == NET_ROLE_NODE)
		snprintf(buf, size, NET_URI_PREFIX "%s/node/%" PRIu64,
			 cluster_id, node_id);
	else if (role == NET_ROLE_ADMIN)
		snprintf(buf, size, NET_URI_PREFIX "%s/admin", cluster_id);
	else
		snprintf(buf, size, NET_URI_PREFIX "%s", cluster_id);
}

/* A decimal node id without sign or leading zero, 1..NET_MAX_NODE_ID. */
static int parse_node_id(const char *s, size_t len, uint64_t *out)
{
	if (len == 0 || len > 7 || s[0] == '0')
		return -EINVAL;
	uint64_t v = 0;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	if (v > NET_MAX_NODE_ID)
		return -EINVAL;
	*out = v;
	return 0;
}

/* Parse one URI (not NUL-terminated) of the raftfs scheme. */
static int parse_uri(const char *u, size_t len, struct net_identity *id,
		     const char **why)
{
	size_t plen = strlen(NET_URI_PREFIX);
	if (len < plen + NET_CLUSTER_ID_CHARS)
		goto bad;
	memcpy(id->cluster_id, u + plen, NET_CLUSTER_ID_CHARS);
	id->cluster_id[NET_CLUSTER_ID_CHARS] = '\0';
	if (!net_cluster_id_is_valid(id->cluster_id))
		goto bad;
	const char *rest = u + plen + NET_CLUSTER_ID_CHARS;
	size_t rlen = len - plen - NET_CLUSTER_ID_CHARS;
	id->node_id = 0;
	if (rlen == 0) {
		id->role = NET_ROLE_CA;
		return 0;
	}
	if (rlen == 6 && memcmp(rest, "/admin", 6) == 0) {
		id->role = NET_ROLE_ADMIN;
		return 0;
	}
	if (rlen > 6 && memcmp(rest, "/node/", 6) == 0 &&
	    parse_node_id(rest + 6, rlen - 6, &id->node_id) == 0) {
		id->role = NET_ROLE_NODE;
		return 0;
	}
bad:
	*why = "malformed raftfs identity in certificate";
	return -EINVAL;
}

int net_identity_from_x509(X509 *x, struct net_identity *id,
			   const char **why)
{
	int rc = -EINVAL;
	int found = 0;
	GENERAL_NAMES *names =
		X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	memset(id, 0, sizeof(*id));
	*why = "certificate names no raftfs identity";
	if (names == NULL)
		return -EINVAL;
	for (int i = 0; i < sk_GENERAL_NAME_num(names); i++) {
		const GENERAL_NAME *gn = sk_GENERAL_NAME_value(names, i);
		if (gn->type != GEN_URI)
			continue;
		const char *u =
			(const char *)ASN1_STRING_get0_data(gn->d.uniformResourceIdentifier);
		int len = ASN1_STRING_length(gn->d.uniformResourceIdentifier);
		size_t plen = strlen(NET_URI_PREFIX);
		if (len < (int)plen || memcmp(u, NET_URI_PREFIX, plen) != 0)
			continue;
		if (++found > 1) {
			*why = "certificate names more than one raftfs identity";
			rc = -EINVAL;
			goto out_names;
		}
		rc = parse_uri(u, (size_t)len, id, why);
		if (rc < 0)
			goto out_names;
	}
	if (found == 0)
		rc = -EINVAL;
	else {
		const ASN1_TIME *na = X509_get0_notAfter(x);
		struct tm tm;
		if (na == NULL || !ASN1_TIME_to_tm(na, &tm)) {
			*why = "certificate has no readable expiry";
			rc = -EINVAL;
			goto out_names;
		}
		id->not_after = (int64_t)timegm(&tm);
		rc = 0;
	}
out_names:
	GENERAL_NAMES_free(names);
	return rc;
}

const char *net_openssl_errors(char *buf, size_t size)
{
	size_t used = 0;
	unsigned long e;
	if (size == 0)
		return buf;
	buf[0] = '\0';
	while ((e = ERR_get_error()) != 0) {
		char one[256];
		ERR_error_string_n(e, one, sizeof(one));
		int n = snprintf(buf + used, size - used, "%s%s",
				 used ? "; " : "", one);
		if (n < 0 || (size_t)n >= size - used)
			used = size - 1;
		else
			used += (size_t)n;
	}
	return buf;
}

int net_err(char *err, size_t size, int rc, const char *fmt, ...)
{
	if (err && size) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err, size, fmt, ap);
		va_end(ap);
	}
	return rc;
}
