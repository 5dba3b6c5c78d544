/*
 * The fs store: its directory (CURRENT names the database in use,
 * store-<gen>; an INSTALL marker names a database being built by a
 * snapshot install), the cached superblock, and the per-command
 * transaction. See docs/FS_STORE.md.
 */

#include "fs/store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CURRENT_FILE "CURRENT"
#define INSTALL_FILE "INSTALL"

int fs_store_file_path(const struct fs_store *s, const char *name, char *buf,
		       size_t size)
{
	int n = snprintf(buf, size, "%s/%s", s->dir, name);

	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

int fs_store_db_path(const struct fs_store *s, uint64_t gen, char *buf,
		     size_t size)
{
	int n = snprintf(buf, size, "%s/store-%" PRIu64, s->dir, gen);

	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

static int sync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY);
	int rc = 0;

	if (fd < 0)
		return -errno;
	if (fsync(fd) != 0)
		rc = -errno;
	close(fd);
	return rc;
}

int fs_store_write_file(const struct fs_store *s, const char *name,
			const char *content)
{
	char path[4096], tmp[4096];
	size_t len = strlen(content);
	int fd, rc = 0;

	if (fs_store_file_path(s, name, path, sizeof(path)) != 0 ||
	    snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	if (write(fd, content, len) != (ssize_t)len)
		rc = -EIO;
	else if (fsync(fd) != 0)
		rc = -errno;
	close(fd);
	if (rc == 0 && rename(tmp, path) != 0)
		rc = -errno;
	if (rc == 0)
		rc = sync_dir(s->dir);
	if (rc != 0)
		unlink(tmp);
	return rc;
}

/* Read a small file dir/<name> into buf (NUL-terminated); -ENOENT. */
static int read_file(const struct fs_store *s, const char *name, char *buf,
		     size_t size)
{
	char path[4096];
	ssize_t n;
	int fd;

	if (fs_store_file_path(s, name, path, sizeof(path)) != 0)
		return -ENAMETOOLONG;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, size - 1);
	close(fd);
	if (n < 0)
		return -EIO;
	buf[n] = '\0';
	return 0;
}

static int parse_gen(const char *text, uint64_t *gen)
{
	char *end;
	unsigned long long v;

	if (strncmp(text, "store-", 6) != 0)
		return -EUCLEAN;
	errno = 0;
	v = strtoull(text + 6, &end, 10);
	if (errno != 0 || end == text + 6 || v == 0)
		return -EUCLEAN;
	*gen = v;
	return 0;
}

int fs_store_mark_install(struct fs_store *s, uint64_t gen, uint64_t index,
			  uint64_t term)
{
	char text[128];

	snprintf(text, sizeof(text), "store-%" PRIu64 " %" PRIu64 " %" PRIu64
		 "\n", gen, index, term);
	return fs_store_write_file(s, INSTALL_FILE, text);
}

int fs_store_unmark_install(struct fs_store *s)
{
	char path[4096];

	if (fs_store_file_path(s, INSTALL_FILE, path, sizeof(path)) != 0)
		return -ENAMETOOLONG;
	if (unlink(path) != 0 && errno != ENOENT)
		return -errno;
	return sync_dir(s->dir);
}

/* Remove every store-<g> directory except the current one: partial
 * installs and databases replaced by an install. */
static int remove_stale_dbs(struct fs_store *s)
{
	DIR *d = opendir(s->dir);
	struct dirent *e;
	char path[4096];
	int rc = 0;

	if (d == NULL)
		return -errno;
	while ((e = readdir(d)) != NULL) {
		uint64_t g;
		if (parse_gen(e->d_name, &g) != 0 || g == s->gen)
			continue;
		if (fs_store_db_path(s, g, path, sizeof(path)) != 0 ||
		    fs_kv_destroy(path) != 0)
			rc = -EIO;
	}
	closedir(d);
	return rc;
}

/* Handle an INSTALL marker left by a crash: before CURRENT was switched
 * the partial database is dropped (and the install reported); after it,
 * the install had finished. */
static int recover_install(struct fs_store *s)
{
	char text[256];
	unsigned long long g, index, term;
	int rc = read_file(s, INSTALL_FILE, text, sizeof(text));

	if (rc == -ENOENT)
		return 0;
	if (rc != 0)
		return rc;
	if (sscanf(text, "store-%llu %llu %llu", &g, &index, &term) != 3)
		return -EUCLEAN;
	if (g != s->gen) {
		s->interrupted = true;
		s->interrupted_index = index;
		s->interrupted_term = term;
	}
	return fs_store_unmark_install(s);
}

static int load_super(struct fs_store *s)
{
	struct fs_key k = {{FS_KEY_SUPER}, 1};
	void *val = NULL;
	size_t len;
	int rc = fs_kv_get(s->kv, NULL, k.b, k.len, &val, &len);

	if (rc == -ENOENT)
		return -EUCLEAN;
	if (rc != 0)
		return rc;
	rc = fs_super_decode(val, len, &s->sb);
	fs_kv_free(val);
	return rc;
}

/* A brand-new store: store-1 with an unformatted superblock, then
 * CURRENT. A crash before CURRENT leaves nothing that counts. */
static int create_fresh(struct fs_store *s)
{
	struct fs_key k = {{FS_KEY_SUPER}, 1};
	struct fs_kv_batch *b = NULL;
	uint8_t buf[FS_SUPER_BYTES];
	char path[4096];
	size_t len;
	int rc;

	s->gen = 1;
	rc = fs_store_db_path(s, 1, path, sizeof(path));
	if (rc != 0)
		return rc;
	fs_kv_destroy(path);
	rc = fs_kv_open(path, true, &s->kv);
	if (rc != 0)
		return rc;
	memset(&s->sb, 0, sizeof(s->sb));
	s->sb.version = FS_FORMAT_VERSION;
	len = fs_super_encode(&s->sb, buf);
	rc = fs_kv_batch_new(&b);
	if (rc != 0)
		return rc;
	fs_kv_batch_put(b, k.b, k.len, buf, len);
	rc = fs_kv_write(s->kv, b, true);
	fs_kv_batch_free(b);
	if (rc != 0)
		return rc;
	return fs_store_write_file(s, CURRENT_FILE, "store-1\n");
}

int fs_store_open(const char *dir, struct fs_store **out)
{
	struct fs_store *s = calloc(1, sizeof(*s));
	char text[256], path[4096];
	int rc;

	if (s == NULL)
		return -ENOMEM;
	s->dir = strdup(dir);
	pthread_mutex_init(&s->hook_lock, NULL);
	if (s->dir == NULL || pthread_rwlock_init(&s->lock, NULL) != 0) {
		pthread_mutex_destroy(&s->hook_lock);
		free(s->dir);
		free(s);
		return -ENOMEM;
	}
	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		rc = -errno;
		goto fail;
	}
	rc = read_file(s, CURRENT_FILE, text, sizeof(text));
	if (rc == -ENOENT) {
		rc = create_fresh(s);
		if (rc != 0)
			goto fail;
	} else if (rc != 0) {
		goto fail;
	} else {
		rc = parse_gen(text, &s->gen);
		if (rc != 0)
			goto fail;
		rc = fs_store_db_path(s, s->gen, path, sizeof(path));
		if (rc != 0)
			goto fail;
		rc = fs_kv_open(path, false, &s->kv);
		if (rc != 0)
			goto fail;
	}
	rc = recover_install(s);
	if (rc != 0)
		goto fail;
	rc = remove_stale_dbs(s);
	if (rc != 0)
		goto fail;
	rc = load_super(s);
	if (rc != 0)
		goto fail;
	*out = s;
	return 0;

fail:
	fs_store_close(s);
	return rc;
}

void fs_store_close(struct fs_store *s)
{
	if (s == NULL)
		return;
	fs_kv_close(s->kv);
	free(s->lock_keys);
	pthread_rwlock_destroy(&s->lock);
	pthread_mutex_destroy(&s->hook_lock);
	free(s->dir);
	free(s);
}

int fs_store_switch(struct fs_store *s, uint64_t gen, struct fs_kv *kv)
{
	struct fs_kv *old;
	uint64_t old_gen;
	char text[64], path[4096];
	int rc;

	snprintf(text, sizeof(text), "store-%" PRIu64 "\n", gen);
	/* The atomic point: from here on the new database is the store. */
	rc = fs_store_write_file(s, CURRENT_FILE, text);
	if (rc != 0)
		return rc;
	pthread_rwlock_wrlock(&s->lock);
	old = s->kv;
	old_gen = s->gen;
	s->kv = kv;
	s->gen = gen;
	s->lock_keys_valid = false; /* another database: rebuilt on use */
	rc = load_super(s);
	pthread_rwlock_unlock(&s->lock);
	fs_kv_close(old);
	if (fs_store_db_path(s, old_gen, path, sizeof(path)) == 0)
		fs_kv_destroy(path);
	if (rc == 0)
		rc = fs_store_unmark_install(s);
	return rc;
}

bool fs_store_interrupted_install(struct fs_store *s, uint64_t *index,
				  uint64_t *term)
{
	if (index != NULL)
		*index = s->interrupted_index;
	if (term != NULL)
		*term = s->interrupted_term;
	return s->interrupted;
}

uint64_t fs_store_applied_index(struct fs_store *s)
{
	uint64_t v;

	pthread_rwlock_rdlock(&s->lock);
	v = s->sb.applied_index;
	pthread_rwlock_unlock(&s->lock);
	return v;
}

uint32_t fs_store_feature_level(struct fs_store *s)
{
	uint32_t v;

	pthread_rwlock_rdlock(&s->lock);
	v = s->sb.formatted ? s->sb.feature_level : 1;
	pthread_rwlock_unlock(&s->lock);
	return v;
}

bool fs_store_is_formatted(struct fs_store *s)
{
	bool v;

	pthread_rwlock_rdlock(&s->lock);
	v = s->sb.formatted;
	pthread_rwlock_unlock(&s->lock);
	return v;
}

void fs_store_set_test_bugs(struct fs_store *s, uint32_t bugs)
{
	s->test_bugs = bugs;
}

int fs_store_sync(struct fs_store *s)
{
	struct fs_kv_batch *b = NULL;
	int rc = fs_kv_batch_new(&b);

	if (rc != 0)
		return rc;
	pthread_rwlock_rdlock(&s->lock);
	rc = fs_kv_write(s->kv, b, true);
	pthread_rwlock_unlock(&s->lock);
	fs_kv_batch_free(b);
	return rc;
}

/* ---------------------------------------------------------------------- */
/* Transactions.                                                           */

int fs_key_cmp(const struct fs_key *a, const struct fs_key *b)
{
	size_t n = a->len < b->len ? a->len : b->len;
	int c = memcmp(a->b, b->b, n);

	if (c != 0)
		return c;
	return a->len < b->len ? -1 : a->len > b->len ? 1 : 0;
}

static bool key_eq(const struct fs_key *a, const struct fs_key *b)
{
	return a->len == b->len && memcmp(a->b, b->b, a->len) == 0;
}

int fs_txn_init(struct fs_txn *t, struct fs_store *s)
{
	memset(t, 0, sizeof(*t));
	t->s = s;
	return fs_kv_batch_new(&t->batch);
}

void fs_txn_reset(struct fs_txn *t)
{
	for (size_t i = 0; i < t->n_ops; i++)
		free(t->ops[i].val);
	t->n_ops = 0;
	if (t->batch != NULL)
		fs_kv_batch_clear(t->batch);
}

void fs_txn_release(struct fs_txn *t)
{
	fs_txn_reset(t);
	free(t->ops);
	fs_kv_batch_free(t->batch);
	memset(t, 0, sizeof(*t));
}

static const struct fs_txn_op *find_op(const struct fs_txn *t,
				       const struct fs_key *key)
{
	for (size_t i = t->n_ops; i-- > 0;)
		if (key_eq(&t->ops[i].key, key))
			return &t->ops[i];
	return NULL;
}

int fs_txn_get(struct fs_txn *t, const struct fs_key *key, uint8_t **val,
	       size_t *len)
{
	const struct fs_txn_op *op = find_op(t, key);
	void *v = NULL;
	uint8_t *copy;
	size_t n;
	int rc;

	if (op != NULL) {
		if (op->val == NULL)
			return -ENOENT;
		copy = malloc(op->len);
		if (copy == NULL)
			return -ENOMEM;
		memcpy(copy, op->val, op->len);
		*val = copy;
		*len = op->len;
		return 0;
	}
	rc = fs_kv_get(t->s->kv, NULL, key->b, key->len, &v, &n);
	if (rc != 0)
		return rc;
	copy = malloc(n > 0 ? n : 1);
	if (copy == NULL) {
		fs_kv_free(v);
		return -ENOMEM;
	}
	memcpy(copy, v, n);
	fs_kv_free(v);
	*val = copy;
	*len = n;
	return 0;
}

/* Record one write; owned: a malloc'd val the txn keeps (NULL: a
 * delete). */
static int add_op(struct fs_txn *t, const struct fs_key *key, uint8_t *owned,
		  size_t len)
{
	struct fs_txn_op *op;

	if (t->n_ops == t->cap_ops) {
		size_t cap = t->cap_ops ? t->cap_ops * 2 : 16;
		struct fs_txn_op *ops = realloc(t->ops, cap * sizeof(*ops));
		if (ops == NULL) {
			free(owned);
			return -ENOMEM;
		}
		t->ops = ops;
		t->cap_ops = cap;
	}
	op = &t->ops[t->n_ops];
	op->key = *key;
	op->val = owned;
	op->len = owned != NULL ? len : 0;
	if (owned != NULL)
		fs_kv_batch_put(t->batch, key->b, key->len, owned, len);
	else
		fs_kv_batch_delete(t->batch, key->b, key->len);
	t->n_ops++;
	return 0;
}

int fs_txn_put(struct fs_txn *t, const struct fs_key *key, const void *val,
	       size_t len)
{
	uint8_t *copy = malloc(len > 0 ? len : 1);

	if (copy == NULL)
		return -ENOMEM;
	memcpy(copy, val, len);
	return add_op(t, key, copy, len);
}

int fs_txn_put_owned(struct fs_txn *t, const struct fs_key *key, uint8_t *val,
		     size_t len)
{
	if (val == NULL)
		return -EINVAL;
	return add_op(t, key, val, len);
}

int fs_txn_del(struct fs_txn *t, const struct fs_key *key)
{
	return add_op(t, key, NULL, 0);
}

static int cmp_keys(const void *a, const void *b)
{
	return fs_key_cmp(a, b);
}

static bool in_range(const struct fs_key *k, const struct fs_key *lo,
		     const struct fs_key *hi)
{
	return fs_key_cmp(k, lo) >= 0 && fs_key_cmp(k, hi) < 0;
}

/* Append k to the growing array; 0 or -ENOMEM. */
static int push_key(struct fs_key **keys, size_t *n, size_t *cap,
		    const struct fs_key *k)
{
	if (*n == *cap) {
		size_t ncap = *cap ? *cap * 2 : 16;
		struct fs_key *p = realloc(*keys, ncap * sizeof(*p));
		if (p == NULL)
			return -ENOMEM;
		*keys = p;
		*cap = ncap;
	}
	(*keys)[(*n)++] = *k;
	return 0;
}

/* The database's keys in [lo, hi) into arr, but those t wrote (t NULL:
 * every one). */
static int db_keys(struct fs_kv *kv, const struct fs_txn *t,
		   const struct fs_key *lo, const struct fs_key *hi,
		   struct fs_key **arr, size_t *cnt, size_t *cap)
{
	struct fs_kv_iter *it = NULL;
	struct fs_key k;
	int rc;

	rc = fs_kv_iter_new(kv, NULL, &it);
	if (rc != 0)
		return rc;
	for (fs_kv_iter_seek(it, lo->b, lo->len); fs_kv_iter_valid(it);
	     fs_kv_iter_next(it)) {
		const uint8_t *kb = fs_kv_iter_key(it, &k.len);
		if (k.len > FS_KEY_MAX) {
			rc = -EUCLEAN;
			goto out;
		}
		memcpy(k.b, kb, k.len);
		if (fs_key_cmp(&k, hi) >= 0)
			break;
		if (t != NULL && find_op(t, &k) != NULL)
			continue; /* the command's own writes decide */
		rc = push_key(arr, cnt, cap, &k);
		if (rc != 0)
			goto out;
	}
	rc = fs_kv_iter_status(it);
out:
	fs_kv_iter_free(it);
	return rc;
}

/* Add the keys in [lo, hi) whose last write by t is a put (arr holds
 * none t wrote), then sort arr. */
static int own_keys(const struct fs_txn *t, const struct fs_key *lo,
		    const struct fs_key *hi, struct fs_key **arr, size_t *cnt,
		    size_t *cap)
{
	size_t base = *cnt;

	for (size_t i = 0; i < t->n_ops; i++) {
		const struct fs_txn_op *op = &t->ops[i];
		bool dup = false;
		if (!in_range(&op->key, lo, hi) || find_op(t, &op->key) != op ||
		    op->val == NULL)
			continue;
		for (size_t j = base; j < *cnt && !dup; j++)
			dup = key_eq(&(*arr)[j], &op->key);
		if (!dup) {
			int rc = push_key(arr, cnt, cap, &op->key);
			if (rc != 0)
				return rc;
		}
	}
	if (*cnt > 1)
		qsort(*arr, *cnt, sizeof(**arr), cmp_keys);
	return 0;
}

int fs_txn_keys(struct fs_txn *t, const struct fs_key *lo,
		const struct fs_key *hi, struct fs_key **keys, size_t *n)
{
	struct fs_key *arr = NULL;
	size_t cnt = 0, cap = 0;
	int rc = db_keys(t->s->kv, t, lo, hi, &arr, &cnt, &cap);

	if (rc == 0)
		rc = own_keys(t, lo, hi, &arr, &cnt, &cap);
	if (rc != 0) {
		free(arr);
		return rc;
	}
	*keys = arr;
	*n = cnt;
	return 0;
}

static void lock_range(struct fs_key *lo, struct fs_key *hi)
{
	*lo = (struct fs_key){{FS_KEY_LOCKS}, 1};
	*hi = (struct fs_key){{FS_KEY_LOCKS + 1}, 1};
}

static void lock_keys_drop(struct fs_store *s)
{
	free(s->lock_keys);
	s->lock_keys = NULL;
	s->n_lock_keys = 0;
	s->cap_lock_keys = 0;
	s->lock_keys_valid = false;
}

int fs_txn_lock_keys(struct fs_txn *t, struct fs_key **keys, size_t *n)
{
	struct fs_store *s = t->s;
	struct fs_key lo, hi, *arr = NULL;
	size_t cnt = 0, cap = 0;
	int rc = 0;

	lock_range(&lo, &hi);
	if (!s->lock_keys_valid) {
		lock_keys_drop(s);
		rc = db_keys(s->kv, NULL, &lo, &hi, &s->lock_keys,
			     &s->n_lock_keys, &s->cap_lock_keys);
		if (rc != 0) {
			lock_keys_drop(s);
			return rc;
		}
		s->lock_keys_valid = true;
	}
	for (size_t i = 0; rc == 0 && i < s->n_lock_keys; i++)
		if (find_op(t, &s->lock_keys[i]) == NULL)
			rc = push_key(&arr, &cnt, &cap, &s->lock_keys[i]);
	if (rc == 0)
		rc = own_keys(t, &lo, &hi, &arr, &cnt, &cap);
	if (rc != 0) {
		free(arr);
		return rc;
	}
	*keys = arr;
	*n = cnt;
	return 0;
}

/* Where key is in the sorted cache, or where it would go. */
static size_t lock_keys_find(const struct fs_store *s, const struct fs_key *k,
			     bool *found)
{
	size_t a = 0, b = s->n_lock_keys;

	while (a < b) {
		size_t m = a + (b - a) / 2;
		int c = fs_key_cmp(&s->lock_keys[m], k);
		if (c == 0) {
			*found = true;
			return m;
		}
		if (c < 0)
			a = m + 1;
		else
			b = m;
	}
	*found = false;
	return a;
}

/* After t's batch was written: its lock record keys into the cache. */
static void lock_keys_note(struct fs_store *s, const struct fs_txn *t)
{
	struct fs_key lo, hi;

	lock_range(&lo, &hi);
	for (size_t i = 0; i < t->n_ops && s->lock_keys_valid; i++) {
		const struct fs_txn_op *op = &t->ops[i];
		bool found;
		size_t at;

		if (!in_range(&op->key, &lo, &hi) || find_op(t, &op->key) != op)
			continue;
		at = lock_keys_find(s, &op->key, &found);
		if (op->val == NULL && found) {
			memmove(&s->lock_keys[at], &s->lock_keys[at + 1],
				(s->n_lock_keys - at - 1) *
					sizeof(*s->lock_keys));
			s->n_lock_keys--;
		} else if (op->val != NULL && !found) {
			size_t end = s->n_lock_keys;
			if (push_key(&s->lock_keys, &s->n_lock_keys,
				     &s->cap_lock_keys, &op->key) != 0) {
				lock_keys_drop(s); /* rebuilt on use */
				break;
			}
			memmove(&s->lock_keys[at + 1], &s->lock_keys[at],
				(end - at) * sizeof(*s->lock_keys));
			s->lock_keys[at] = op->key;
		}
	}
}

int fs_txn_commit(struct fs_txn *t)
{
	int rc = fs_kv_write(t->s->kv, t->batch, false);

	if (rc != 0)
		lock_keys_drop(t->s); /* what the database holds is unsure */
	else if (t->s->lock_keys_valid)
		lock_keys_note(t->s, t);
	return rc;
}
