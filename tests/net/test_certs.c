/* Certificates (net/certs.c): what `raftfs certs` writes and refuses. */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include "net/net.h"
#include "tests/lib/test_main.h"

struct fixture {
	char dir[64];
	char err[512];
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	snprintf(f->dir, sizeof(f->dir), "/tmp/raftfs-certs-XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	if (system(cmd) != 0)
		return -1;
	free(f);
	return 0;
}

static void path(const struct fixture *f, const char *name, char *buf)
{
	snprintf(buf, PATH_MAX, "%s/%s", f->dir, name);
}

static mode_t mode_of(const struct fixture *f, const char *name)
{
	char p[PATH_MAX];
	struct stat st;
	path(f, name, p);
	assert_int_equal(stat(p, &st), 0);
	return st.st_mode & 0777;
}

static struct net_identity identity(const struct fixture *f, const char *name)
{
	char p[PATH_MAX], err[512];
	struct net_identity id;
	path(f, name, p);
	assert_int_equal(net_cert_identity(p, &id, err, sizeof(err)), 0);
	return id;
}

/* Whether the certificate at name chains to dir/ca.crt for purpose. */
static bool verifies(const struct fixture *f, const char *name, int purpose)
{
	char p[PATH_MAX];
	path(f, "ca.crt", p);
	FILE *in = fopen(p, "r");
	X509 *ca = PEM_read_X509(in, NULL, NULL, NULL);
	fclose(in);
	path(f, name, p);
	in = fopen(p, "r");
	X509 *crt = PEM_read_X509(in, NULL, NULL, NULL);
	fclose(in);
	X509_STORE *store = X509_STORE_new();
	X509_STORE_add_cert(store, ca);
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	X509_STORE_CTX_init(ctx, store, crt, NULL);
	X509_STORE_CTX_set_purpose(ctx, purpose);
	bool ok = X509_verify_cert(ctx) == 1;
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(store);
	X509_free(crt);
	X509_free(ca);
	return ok;
}

static void read_file(const struct fixture *f, const char *name, char *buf,
		      size_t size)
{
	char p[PATH_MAX];
	path(f, name, p);
	FILE *in = fopen(p, "r");
	assert_non_null(in);
	size_t n = fread(buf, 1, size - 1, in);
	buf[n] = '\0';
	fclose(in);
}

static void test_create_writes_ca_nodes_and_admin(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(net_certs_create(f->dir, 3, f->err, sizeof(f->err)),
			 0);
	struct net_identity ca = identity(f, "ca.crt");
	assert_int_equal(ca.role, NET_ROLE_CA);
	assert_int_equal(strlen(ca.cluster_id), NET_CLUSTER_ID_CHARS);
	for (uint64_t id = 1; id <= 3; id++) {
		char crt[32], key[32];
		snprintf(crt, sizeof(crt), "node%" PRIu64 ".crt", id);
		snprintf(key, sizeof(key), "node%" PRIu64 ".key", id);
		struct net_identity n = identity(f, crt);
		assert_int_equal(n.role, NET_ROLE_NODE);
		assert_int_equal(n.node_id, id);
		assert_string_equal(n.cluster_id, ca.cluster_id);
		assert_int_equal(mode_of(f, key), 0600);
		assert_true(verifies(f, crt, X509_PURPOSE_SSL_SERVER));
		assert_true(verifies(f, crt, X509_PURPOSE_SSL_CLIENT));
	}
	struct net_identity admin = identity(f, "admin.crt");
	assert_int_equal(admin.role, NET_ROLE_ADMIN);
	assert_string_equal(admin.cluster_id, ca.cluster_id);
	assert_int_equal(mode_of(f, "admin.key"), 0600);
	assert_int_equal(mode_of(f, "ca.key"), 0600);
	assert_true(verifies(f, "admin.crt", X509_PURPOSE_SSL_CLIENT));
	/* clientAuth only: an admin certificate cannot act as a node's
	 * server side. */
	assert_false(verifies(f, "admin.crt", X509_PURPOSE_SSL_SERVER));
	/* A node certificate expires in about NET_CERT_DAYS. */
	int64_t days = (identity(f, "node1.crt").not_after - time(NULL)) /
		       86400;
	assert_true(days >= NET_CERT_DAYS - 1 && days <= NET_CERT_DAYS);
}

static void test_create_refuses_existing_keys(void **state)
{
	struct fixture *f = *state;
	char before[4096], after[4096];
	assert_int_equal(net_certs_create(f->dir, 2, f->err, sizeof(f->err)),
			 0);
	read_file(f, "ca.key", before, sizeof(before));
	assert_int_equal(net_certs_create(f->dir, 2, f->err, sizeof(f->err)),
			 -EEXIST);
	assert_non_null(strstr(f->err, "ca.key exists"));
	read_file(f, "ca.key", after, sizeof(after));
	assert_string_equal(before, after);
}

static void test_create_refuses_when_a_node_key_exists(void **state)
{
	struct fixture *f = *state;
	char p[PATH_MAX];
	path(f, "node2.key", p);
	FILE *out = fopen(p, "w");
	fputs("precious", out);
	fclose(out);
	assert_int_equal(net_certs_create(f->dir, 3, f->err, sizeof(f->err)),
			 -EEXIST);
	path(f, "ca.key", p);
	assert_int_not_equal(access(p, F_OK), 0); /* nothing written */
	char buf[64];
	read_file(f, "node2.key", buf, sizeof(buf));
	assert_string_equal(buf, "precious");
}

static void test_create_refuses_bad_counts(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(net_certs_create(f->dir, 0, f->err, sizeof(f->err)),
			 -EINVAL);
	assert_int_equal(net_certs_create(f->dir, NET_MAX_NODE_ID + 1, f->err,
					  sizeof(f->err)),
			 -EINVAL);
}

static void test_add_issues_one_more_node(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(net_certs_create(f->dir, 3, f->err, sizeof(f->err)),
			 0);
	assert_int_equal(net_certs_add(f->dir, 4, f->err, sizeof(f->err)), 0);
	struct net_identity n = identity(f, "node4.crt");
	assert_int_equal(n.node_id, 4);
	assert_string_equal(n.cluster_id, identity(f, "ca.crt").cluster_id);
	assert_int_equal(mode_of(f, "node4.key"), 0600);
	assert_true(verifies(f, "node4.crt", X509_PURPOSE_SSL_SERVER));
	assert_int_equal(net_certs_add(f->dir, 4, f->err, sizeof(f->err)),
			 -EEXIST);
	assert_int_equal(net_certs_add(f->dir, 2, f->err, sizeof(f->err)),
			 -EEXIST);
}

static void test_add_without_ca_fails(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(net_certs_add(f->dir, 1, f->err, sizeof(f->err)),
			 -ENOENT);
	assert_non_null(strstr(f->err, "ca.crt"));
}

static void test_renew_replaces_the_pair(void **state)
{
	struct fixture *f = *state;
	char before[4096], after[4096];
	assert_int_equal(net_certs_create(f->dir, 3, f->err, sizeof(f->err)),
			 0);
	read_file(f, "node2.key", before, sizeof(before));
	assert_int_equal(net_certs_renew(f->dir, 2, f->err, sizeof(f->err)),
			 0);
	read_file(f, "node2.key", after, sizeof(after));
	assert_string_not_equal(before, after);
	assert_int_equal(mode_of(f, "node2.key"), 0600);
	assert_int_equal(identity(f, "node2.crt").node_id, 2);
	assert_true(verifies(f, "node2.crt", X509_PURPOSE_SSL_SERVER));
	assert_int_equal(net_certs_renew(f->dir, 9, f->err, sizeof(f->err)),
			 -ENOENT);
}

static void test_issue_other_cluster_and_expired(void **state)
{
	struct fixture *f = *state;
	char crt[PATH_MAX], key[PATH_MAX];
	assert_int_equal(net_certs_create(f->dir, 1, f->err, sizeof(f->err)),
			 0);
	struct net_cert_request req = {
		.role = NET_ROLE_NODE,
		.node_id = 2,
		.cluster_id = "0123456789abcdef0123456789abcdef",
		.not_before_s = -7200,
		.not_after_s = -3600,
	};
	path(f, "x.crt", crt);
	path(f, "x.key", key);
	assert_int_equal(net_cert_issue(f->dir, &req, crt, key, f->err,
					sizeof(f->err)),
			 0);
	struct net_identity x = identity(f, "x.crt");
	assert_string_equal(x.cluster_id, "0123456789abcdef0123456789abcdef");
	assert_true(x.not_after < time(NULL));
	assert_false(verifies(f, "x.crt", X509_PURPOSE_SSL_SERVER));
	/* Never over an existing key. */
	assert_int_equal(net_cert_issue(f->dir, &req, crt, key, f->err,
					sizeof(f->err)),
			 -EEXIST);
	req.cluster_id = "not-a-cluster-id";
	path(f, "y.crt", crt);
	path(f, "y.key", key);
	assert_int_equal(net_cert_issue(f->dir, &req, crt, key, f->err,
					sizeof(f->err)),
			 -EINVAL);
}

static void test_identity_of_a_foreign_certificate(void **state)
{
	struct fixture *f = *state;
	char p[PATH_MAX];
	path(f, "junk.crt", p);
	FILE *out = fopen(p, "w");
	fputs("not a certificate\n", out);
	fclose(out);
	struct net_identity id;
	assert_int_equal(net_cert_identity(p, &id, f->err, sizeof(f->err)),
			 -EIO);
}

static void test_expiry_warning(void **state)
{
	struct fixture *f = *state;
	char warn[512];
	assert_int_equal(net_certs_create(f->dir, 2, f->err, sizeof(f->err)),
			 0);
	int64_t now = time(NULL);
	assert_int_equal(net_certs_expiry_warning(f->dir, 2, now, warn,
						  sizeof(warn)),
			 0);
	/* 20 days before the node certificate expires. */
	int64_t later = identity(f, "node2.crt").not_after - 20 * 86400;
	assert_int_equal(net_certs_expiry_warning(f->dir, 2, later, warn,
						  sizeof(warn)),
			 1);
	assert_non_null(strstr(warn, "node2.crt expires in 20 days"));
	assert_non_null(strstr(warn, "certs renew"));
	later = identity(f, "node2.crt").not_after + 86400;
	assert_int_equal(net_certs_expiry_warning(f->dir, 2, later, warn,
						  sizeof(warn)),
			 1);
	assert_non_null(strstr(warn, "node2.crt expired on"));
	/* A renewed certificate is good again. */
	assert_int_equal(net_certs_renew(f->dir, 2, f->err, sizeof(f->err)),
			 0);
	assert_int_equal(net_certs_expiry_warning(f->dir, 2, now + 86400,
						  warn, sizeof(warn)),
			 0);
	assert_int_equal(net_certs_expiry_warning(f->dir, 7, now, warn,
						  sizeof(warn)),
			 -ENOENT);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
TEST_MAIN(T(test_create_writes_ca_nodes_and_admin),
	  T(test_create_refuses_existing_keys),
	  T(test_create_refuses_when_a_node_key_exists),
	  T(test_create_refuses_bad_counts), T(test_add_issues_one_more_node),
	  T(test_add_without_ca_fails), T(test_renew_replaces_the_pair),
	  T(test_issue_other_cluster_and_expired),
	  T(test_identity_of_a_foreign_certificate), T(test_expiry_warning))
