/*
 * Certificates of a cluster, made with the OpenSSL library: a CA per
 * cluster, a pair per node and one for the administrator (layout and
 * naming in net/net.h). Keys are P-256; private keys are written with mode
 * 0600 through O_EXCL, so an existing key is never overwritten by accident.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "net/identity.h"

#define DAY_S (24 * 3600)
/* Certificates start to be valid a little in the past: clocks of a
 * cluster's machines are not exactly equal. */
#define SKEW_S 3600

struct ca {
	X509 *crt;
	EVP_PKEY *key;
	struct net_identity id;
};

static int openssl_fail(char *err, size_t size, const char *what)
{
	char errs[512];
	return net_err(err, size, -EIO, "%s: %s", what,
		       net_openssl_errors(errs, sizeof(errs)));
}

static void path_join(char *buf, size_t size, const char *dir,
		      const char *name)
{
	snprintf(buf, size, "%s/%s", dir, name);
}

static void node_names(uint64_t id, char *crt, char *key, size_t size)
{
	snprintf(crt, size, "node%" PRIu64 ".crt", id);
	snprintf(key, size, "node%" PRIu64 ".key", id);
}

static EVP_PKEY *new_key(void)
{
	return EVP_EC_gen("P-256");
}

/* Write a PEM object to a file made with O_EXCL (never overwriting). */
static int write_pem(const char *path, mode_t mode, EVP_PKEY *key, X509 *crt,
		     char *err, size_t err_size)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	if (fd < 0)
		return net_err(err, err_size, -errno, "cannot create %s: %s",
			       path, strerror(errno));
	FILE *f = fdopen(fd, "w");
	if (f == NULL) {
		int rc = -errno;
		close(fd);
		unlink(path);
		return net_err(err, err_size, rc, "cannot write %s: %s", path,
			       strerror(-rc));
	}
	int ok = key ? PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL)
		     : PEM_write_X509(f, crt);
	if (fflush(f) != 0 || fsync(fileno(f)) != 0)
		ok = 0;
	if (fclose(f) != 0)
		ok = 0;
	if (!ok) {
		unlink(path);
		return openssl_fail(err, err_size, path);
	}
	return 0;
}

static bool exists(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0;
}

static int add_ext(X509 *crt, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509V3_set_ctx_nodb(&ctx);
	X509V3_set_ctx(&ctx, issuer, crt, NULL, NULL, 0);
	X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	if (ext == NULL)
		return -EIO;
	int ok = X509_add_ext(crt, ext, -1);
	X509_EXTENSION_free(ext);
	return ok ? 0 : -EIO;
}

/* A random positive 127-bit serial number. */
static int set_serial(X509 *crt)
{
	unsigned char bytes[16];
	if (RAND_bytes(bytes, sizeof(bytes)) != 1)
		return -EIO;
	bytes[0] &= 0x7f;
	bytes[0] |= 0x01; /* never zero, never shortened */
	BIGNUM *bn = BN_bin2bn(bytes, sizeof(bytes), NULL);
	if (bn == NULL)
		return -ENOMEM;
	ASN1_INTEGER *serial = BN_to_ASN1_INTEGER(bn, NULL);
	BN_free(bn);
	if (serial == NULL)
		return -ENOMEM;
	int ok = X509_set_serialNumber(crt, serial);
	ASN1_INTEGER_free(serial);
	return ok ? 0 : -EIO;
}

/*
 * Build and sign a certificate for key. issuer NULL: self-signed CA.
 */
static X509 *build_cert(EVP_PKEY *key, const char *cluster_id, uint8_t role,
			uint64_t node_id, int64_t not_before_s,
			int64_t not_after_s, const struct ca *issuer)
{
	char uri[160], cn[96], san[200];
	X509 *crt = X509_new();
	if (crt == NULL)
		return NULL;
	net_identity_uri(cluster_id, role, node_id, uri, sizeof(uri));
	if (role == NET_ROLE_CA)
		snprintf(cn, sizeof(cn), "raftfs CA %s", cluster_id);
	else if (role == NET_ROLE_NODE)
		snprintf(cn, sizeof(cn), "raftfs node %" PRIu64, node_id);
	else
		snprintf(cn, sizeof(cn), "raftfs admin");
	snprintf(san, sizeof(san), "URI:%s", uri);
	X509_NAME *name = X509_get_subject_name(crt);
	X509 *issuer_crt = issuer ? issuer->crt : crt;
	EVP_PKEY *sign_key = issuer ? issuer->key : key;
	if (!X509_set_version(crt, 2) || set_serial(crt) < 0 ||
	    !X509_gmtime_adj(X509_getm_notBefore(crt), (long)not_before_s) ||
	    !X509_gmtime_adj(X509_getm_notAfter(crt), (long)not_after_s) ||
	    !X509_set_pubkey(crt, key) ||
	    !X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
					(const unsigned char *)"raftfs", -1, -1,
					0) ||
	    !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
					(const unsigned char *)cn, -1, -1, 0) ||
	    !X509_set_issuer_name(crt, X509_get_subject_name(issuer_crt)))
		goto fail;
	int rc = add_ext(crt, issuer_crt, NID_subject_key_identifier, "hash");
	if (rc == 0 && issuer)
		rc = add_ext(crt, issuer_crt, NID_authority_key_identifier,
			     "keyid:always");
	if (rc == 0 && role == NET_ROLE_CA) {
		rc = add_ext(crt, issuer_crt, NID_basic_constraints,
			     "critical,CA:TRUE,pathlen:0");
		if (rc == 0)
			rc = add_ext(crt, issuer_crt, NID_key_usage,
				     "critical,keyCertSign,cRLSign");
	} else if (rc == 0) {
		rc = add_ext(crt, issuer_crt, NID_basic_constraints,
			     "critical,CA:FALSE");
		if (rc == 0)
			rc = add_ext(crt, issuer_crt, NID_key_usage,
				     "critical,digitalSignature");
		if (rc == 0)
			rc = add_ext(crt, issuer_crt, NID_ext_key_usage,
				     role == NET_ROLE_NODE
					     ? "serverAuth,clientAuth"
					     : "clientAuth");
	}
	if (rc == 0)
		rc = add_ext(crt, issuer_crt, NID_subject_alt_name, san);
	if (rc < 0 || X509_sign(crt, sign_key, EVP_sha256()) <= 0)
		goto fail;
	return crt;
fail:
	X509_free(crt);
	return NULL;
}

static void ca_release(struct ca *ca)
{
	X509_free(ca->crt);
	EVP_PKEY_free(ca->key);
	ca->crt = NULL;
	ca->key = NULL;
}

static int ca_load(const char *dir, struct ca *ca, char *err, size_t err_size)
{
	char path[PATH_MAX];
	const char *why;
	int rc = 0;
	FILE *f = NULL;
	memset(ca, 0, sizeof(*ca));
	path_join(path, sizeof(path), dir, "ca.crt");
	f = fopen(path, "re");
	if (f == NULL)
		return net_err(err, err_size, -errno, "cannot open %s: %s",
			       path, strerror(errno));
	ca->crt = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	if (ca->crt == NULL) {
		rc = openssl_fail(err, err_size, path);
		goto fail;
	}
	if (net_identity_from_x509(ca->crt, &ca->id, &why) < 0 ||
	    ca->id.role != NET_ROLE_CA) {
		rc = net_err(err, err_size, -EINVAL,
			     "%s is not a raftfs cluster CA", path);
		goto fail;
	}
	path_join(path, sizeof(path), dir, "ca.key");
	f = fopen(path, "re");
	if (f == NULL) {
		rc = net_err(err, err_size, -errno, "cannot open %s: %s", path,
			     strerror(errno));
		goto fail;
	}
	ca->key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	if (ca->key == NULL) {
		rc = openssl_fail(err, err_size, path);
		goto fail;
	}
	if (X509_check_private_key(ca->crt, ca->key) != 1) {
		rc = net_err(err, err_size, -EINVAL,
			     "%s does not match ca.crt", path);
		ERR_clear_error();
		goto fail;
	}
	return 0;
fail:
	ca_release(ca);
	return rc;
}

/* Make a key and a certificate for it, write key first (O_EXCL), then the
 * certificate. */
static int issue_with(const struct ca *ca, const struct net_cert_request *req,
		      const char *crt_path, const char *key_path, char *err,
		      size_t err_size)
{
	const char *cid = req->cluster_id ? req->cluster_id : ca->id.cluster_id;
	int rc;
	if (!net_cluster_id_is_valid(cid))
		return net_err(err, err_size, -EINVAL, "bad cluster id '%s'",
			       cid);
	if (req->role != NET_ROLE_NODE && req->role != NET_ROLE_ADMIN)
		return net_err(err, err_size, -EINVAL, "bad certificate role");
	if (req->role == NET_ROLE_NODE &&
	    (req->node_id == 0 || req->node_id > NET_MAX_NODE_ID))
		return net_err(err, err_size, -EINVAL,
			       "node id %" PRIu64 " out of 1..%u",
			       req->node_id, NET_MAX_NODE_ID);
	EVP_PKEY *key = new_key();
	if (key == NULL)
		return openssl_fail(err, err_size, "cannot make a P-256 key");
	X509 *crt = build_cert(key, cid, req->role, req->node_id,
			       req->not_before_s, req->not_after_s, ca);
	if (crt == NULL) {
		rc = openssl_fail(err, err_size, "cannot sign a certificate");
		goto out;
	}
	rc = write_pem(key_path, 0600, key, NULL, err, err_size);
	if (rc < 0)
		goto out;
	rc = write_pem(crt_path, 0644, NULL, crt, err, err_size);
	if (rc < 0)
		unlink(key_path);
out:
	X509_free(crt);
	EVP_PKEY_free(key);
	return rc;
}

int net_cert_issue(const char *ca_dir, const struct net_cert_request *req,
		   const char *crt_path, const char *key_path, char *err,
		   size_t err_size)
{
	struct ca ca;
	int rc = ca_load(ca_dir, &ca, err, err_size);
	if (rc < 0)
		return rc;
	rc = issue_with(&ca, req, crt_path, key_path, err, err_size);
	ca_release(&ca);
	return rc;
}

int net_ca_create(const char *dir, const char *cluster_id, char *err,
		  size_t err_size)
{
	char crt_path[PATH_MAX], key_path[PATH_MAX];
	int rc;
	if (!net_cluster_id_is_valid(cluster_id))
		return net_err(err, err_size, -EINVAL, "bad cluster id '%s'",
			       cluster_id);
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return net_err(err, err_size, -errno, "cannot create %s: %s",
			       dir, strerror(errno));
	path_join(crt_path, sizeof(crt_path), dir, "ca.crt");
	path_join(key_path, sizeof(key_path), dir, "ca.key");
	if (exists(key_path))
		return net_err(err, err_size, -EEXIST,
			       "%s exists; not overwriting it", key_path);
	EVP_PKEY *key = new_key();
	if (key == NULL)
		return openssl_fail(err, err_size, "cannot make a P-256 key");
	X509 *crt = build_cert(key, cluster_id, NET_ROLE_CA, 0, -SKEW_S,
			       (int64_t)NET_CERT_CA_DAYS * DAY_S, NULL);
	if (crt == NULL) {
		rc = openssl_fail(err, err_size, "cannot sign the CA");
		goto out;
	}
	rc = write_pem(key_path, 0600, key, NULL, err, err_size);
	if (rc < 0)
		goto out;
	/* A stale ca.crt without its key is replaced. */
	unlink(crt_path);
	rc = write_pem(crt_path, 0644, NULL, crt, err, err_size);
	if (rc < 0)
		unlink(key_path);
out:
	X509_free(crt);
	EVP_PKEY_free(key);
	return rc;
}

static struct net_cert_request node_request(uint64_t id)
{
	struct net_cert_request req = {
		.role = NET_ROLE_NODE,
		.node_id = id,
		.not_before_s = -SKEW_S,
		.not_after_s = (int64_t)NET_CERT_DAYS * DAY_S,
	};
	return req;
}

int net_certs_create(const char *dir, uint32_t nodes, char *err,
		     size_t err_size)
{
	char crt[64], key[64], crt_path[PATH_MAX], key_path[PATH_MAX];
	unsigned char raw[NET_CLUSTER_ID_CHARS / 2];
	char cid[NET_CLUSTER_ID_CHARS + 1];
	struct ca ca;
	int rc;
	if (nodes == 0 || nodes > NET_MAX_NODE_ID)
		return net_err(err, err_size, -EINVAL,
			       "--nodes %u out of 1..%u", nodes,
			       NET_MAX_NODE_ID);
	/* Refuse before writing anything if any key is there already. */
	for (uint64_t id = 0; id <= nodes + 1; id++) {
		if (id == 0)
			snprintf(key, sizeof(key), "ca.key");
		else if (id == nodes + 1)
			snprintf(key, sizeof(key), "admin.key");
		else
			node_names(id, crt, key, sizeof(key));
		path_join(key_path, sizeof(key_path), dir, key);
		if (exists(key_path))
			return net_err(err, err_size, -EEXIST,
				       "%s exists; not overwriting it",
				       key_path);
	}
	if (RAND_bytes(raw, sizeof(raw)) != 1)
		return openssl_fail(err, err_size, "no random bytes");
	for (size_t i = 0; i < sizeof(raw); i++)
		snprintf(cid + 2 * i, 3, "%02x", raw[i]);
	rc = net_ca_create(dir, cid, err, err_size);
	if (rc < 0)
		return rc;
	rc = ca_load(dir, &ca, err, err_size);
	if (rc < 0)
		return rc;
	for (uint64_t id = 1; id <= nodes && rc == 0; id++) {
		struct net_cert_request req = node_request(id);
		node_names(id, crt, key, sizeof(crt));
		path_join(crt_path, sizeof(crt_path), dir, crt);
		path_join(key_path, sizeof(key_path), dir, key);
		unlink(crt_path);
		rc = issue_with(&ca, &req, crt_path, key_path, err, err_size);
	}
	if (rc == 0) {
		struct net_cert_request req = node_request(0);
		req.role = NET_ROLE_ADMIN;
		path_join(crt_path, sizeof(crt_path), dir, "admin.crt");
		path_join(key_path, sizeof(key_path), dir, "admin.key");
		unlink(crt_path);
		rc = issue_with(&ca, &req, crt_path, key_path, err, err_size);
	}
	ca_release(&ca);
	return rc;
}

int net_certs_add(const char *dir, uint64_t node_id, char *err,
		  size_t err_size)
{
	char crt[64], key[64], crt_path[PATH_MAX], key_path[PATH_MAX];
	struct net_cert_request req = node_request(node_id);
	node_names(node_id, crt, key, sizeof(crt));
	path_join(crt_path, sizeof(crt_path), dir, crt);
	path_join(key_path, sizeof(key_path), dir, key);
	if (exists(key_path))
		return net_err(err, err_size, -EEXIST,
			       "%s exists; use 'certs renew' for a fresh pair",
			       key_path);
	if (exists(crt_path))
		return net_err(err, err_size, -EEXIST,
			       "%s exists; use 'certs renew' for a fresh pair",
			       crt_path);
	return net_cert_issue(dir, &req, crt_path, key_path, err, err_size);
}

int net_certs_renew(const char *dir, uint64_t node_id, char *err,
		    size_t err_size)
{
	char crt[64], key[64], crt_path[PATH_MAX], key_path[PATH_MAX];
	char tmp_crt[PATH_MAX + 8], tmp_key[PATH_MAX + 8];
	struct net_cert_request req = node_request(node_id);
	int rc;
	node_names(node_id, crt, key, sizeof(crt));
	path_join(crt_path, sizeof(crt_path), dir, crt);
	path_join(key_path, sizeof(key_path), dir, key);
	if (!exists(crt_path))
		return net_err(err, err_size, -ENOENT,
			       "%s does not exist; use 'certs add' for a new "
			       "node",
			       crt_path);
	snprintf(tmp_crt, sizeof(tmp_crt), "%s.new", crt_path);
	snprintf(tmp_key, sizeof(tmp_key), "%s.new", key_path);
	unlink(tmp_crt);
	unlink(tmp_key);
	rc = net_cert_issue(dir, &req, tmp_crt, tmp_key, err, err_size);
	if (rc < 0)
		return rc;
	/* The key first: a crash between the renames leaves a new key with
	 * the old certificate, which the node refuses at start with a clear
	 * reason, and renew can simply be run again. */
	if (rename(tmp_key, key_path) < 0 || rename(tmp_crt, crt_path) < 0) {
		rc = net_err(err, err_size, -errno, "cannot replace %s: %s",
			     crt_path, strerror(errno));
		unlink(tmp_key);
		unlink(tmp_crt);
	}
	return rc;
}

int net_cert_identity(const char *path, struct net_identity *id, char *err,
		      size_t err_size)
{
	const char *why;
	FILE *f = fopen(path, "re");
	if (f == NULL)
		return net_err(err, err_size, -errno, "cannot open %s: %s",
			       path, strerror(errno));
	X509 *crt = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	if (crt == NULL)
		return openssl_fail(err, err_size, path);
	int rc = net_identity_from_x509(crt, id, &why);
	X509_free(crt);
	if (rc < 0)
		return net_err(err, err_size, rc, "%s: %s", path, why);
	return 0;
}

int net_certs_expiry_warning(const char *dir, uint64_t node_id, int64_t now,
			     char *warn, size_t warn_size)
{
	char name[2][64], path[PATH_MAX], day[32];
	snprintf(name[0], sizeof(name[0]), "ca.crt");
	snprintf(name[1], sizeof(name[1]), "node%" PRIu64 ".crt", node_id);
	for (int i = 0; i < 2; i++) {
		struct net_identity id;
		path_join(path, sizeof(path), dir, name[i]);
		int rc = net_cert_identity(path, &id, warn, warn_size);
		if (rc < 0)
			return rc;
		int64_t left_s = id.not_after - now;
		if (left_s >= (int64_t)NET_CERT_WARN_DAYS * DAY_S)
			continue;
		time_t t = (time_t)id.not_after;
		struct tm tm;
		gmtime_r(&t, &tm);
		strftime(day, sizeof(day), "%Y-%m-%d", &tm);
		const char *fix = i == 0 ? "a new CA means new certificates for "
					   "every node ('raftfs certs create' "
					   "in a new directory)"
					 : "run 'raftfs certs renew --node N'";
		if (left_s <= 0)
			net_err(warn, warn_size, 1, "%s expired on %s; %s",
				name[i], day, fix);
		else
			net_err(warn, warn_size, 1,
				"%s expires in %" PRId64 " days, on %s; %s",
				name[i], left_s / DAY_S, day, fix);
		return 1;
	}
	return 0;
}
