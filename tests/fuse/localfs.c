/*
 * localfs: mount raftfs on one node without Raft, for tests.
 *
 *   localfs [-d] [--timeout-ms N] [--capacity BYTES] [--inodes N]
 *           [--allow-other] DATA MOUNTPOINT
 *
 * DATA holds the fs store (DATA/fs) and DATA/epoch, the boot epoch of the
 * local proposer, raised on every start so that the store's duplicate
 * table never mistakes a new command for an old one. A new store is
 * formatted (INIT) through the proposer. Runs in the foreground until
 * unmounted or SIGTERM/SIGINT/SIGHUP, then unmounts cleanly. Exit 0, 1 on
 * failure (one line on stderr), 2 on a usage error.
 *
 * SIGUSR1 toggles a hold on the proposer (fs_local_proposer_hold): commands
 * wait unapplied, so tests can watch the operation timeout answer EIO.
 */

#include "fs/fs.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define NODE_ID 1u

/* Format the store through the proposer: INIT is the first command. */
static int format(const struct fs_proposer *p, uint64_t capacity,
		  uint64_t inodes)
{
	struct fs_format_options o;

	memset(&o, 0, sizeof(o));
	memcpy(o.fs_id, "raftfs-localfs-0", 16);
	o.capacity_bytes = capacity;
	o.max_inodes = inodes;
	o.mode = 0755;
	return fs_format(p, &o);
}

/* Read DATA/epoch, raise it, write it back durably; *epoch the new one. */
static int next_epoch(const char *data, uint64_t *epoch)
{
	char path[PATH_MAX], tmp[PATH_MAX], line[32];
	unsigned long long old = 0;
	FILE *f;
	int fd, len;

	snprintf(path, sizeof(path), "%s/epoch", data);
	snprintf(tmp, sizeof(tmp), "%s/epoch.tmp", data);
	f = fopen(path, "r");
	if (f != NULL) {
		if (fscanf(f, "%llu", &old) != 1)
			old = 0;
		fclose(f);
	}
	*epoch = old + 1;
	len = snprintf(line, sizeof(line), "%llu\n",
		       (unsigned long long)*epoch);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		return -errno;
	if (write(fd, line, (size_t)len) != len || fsync(fd) != 0) {
		close(fd);
		return -EIO;
	}
	close(fd);
	return rename(tmp, path) == 0 ? 0 : -errno;
}

/* Toggles the hold on every SIGUSR1 (blocked in every other thread). */
static void *hold_thread(void *arg)
{
	struct fs_local_proposer *lp = arg;
	bool held = false;
	sigset_t set;
	int sig;

	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	for (;;) {
		if (sigwait(&set, &sig) != 0)
			continue;
		held = !held;
		fs_local_proposer_hold(lp, held);
	}
	return NULL;
}

static int usage(void)
{
	fprintf(stderr, "usage: localfs [-d] [--timeout-ms N] [--capacity "
			"BYTES] [--inodes N] [--allow-other] DATA MOUNTPOINT\n");
	return 2;
}

static bool parse_u64(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v == 0)
		return false;
	*out = v;
	return true;
}

int main(int argc, char **argv)
{
	struct fs_fuse_config cfg = {0};
	uint64_t capacity = 1ull << 30, inodes = 1000000, timeout = 0, epoch;
	struct fs_local_proposer *lp = NULL;
	struct fs_store *store = NULL;
	struct fs_fuse *fuse = NULL;
	struct fs_proposer prop;
	const char *data = NULL;
	char dir[PATH_MAX];
	pthread_t holder;
	bool holder_started = false;
	sigset_t usr1;
	int i, rc, status = 1;


	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		const char *opt = argv[i], *val = i + 1 < argc ? argv[i + 1] : "";
		bool ok = true;

		if (strcmp(opt, "-d") == 0) {
			cfg.debug = true;
			continue;
		}
		if (strcmp(opt, "--allow-other") == 0) {
			cfg.allow_other = true;
			continue;
		}
		if (strcmp(opt, "--timeout-ms") == 0)
			ok = parse_u64(val, &timeout) && timeout <= UINT32_MAX;
		else if (strcmp(opt, "--capacity") == 0)
			ok = parse_u64(val, &capacity);
		else if (strcmp(opt, "--inodes") == 0)
			ok = parse_u64(val, &inodes);
		else
			ok = false;
		if (!ok)
			return usage();
		i++;
	}
	if (argc - i != 2)
		return usage();
	data = argv[i];
	cfg.mountpoint = argv[i + 1];
	cfg.op_timeout_ms = (uint32_t)timeout;

	if (mkdir(data, 0700) != 0 && errno != EEXIST) {
		fprintf(stderr, "localfs: cannot create %s: %s\n", data,
			strerror(errno));
		return 1;
	}
	rc = next_epoch(data, &epoch);
	if (rc != 0) {
		fprintf(stderr, "localfs: cannot write %s/epoch: %s\n", data,
			strerror(-rc));
		return 1;
	}
	snprintf(dir, sizeof(dir), "%s/fs", data);
	rc = fs_store_open(dir, &store);
	if (rc != 0) {
		fprintf(stderr, "localfs: cannot open the store %s: %s\n", dir,
			strerror(-rc));
		return 1;
	}
	/* Before any thread starts, so that only hold_thread takes it. */
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &usr1, NULL);
	rc = fs_local_proposer_start(store, NODE_ID, epoch, &lp);
	if (rc != 0) {
		fprintf(stderr, "localfs: cannot start the proposer: %s\n",
			strerror(-rc));
		goto out;
	}
	fs_local_proposer_get(lp, &prop);
	rc = pthread_create(&holder, NULL, hold_thread, lp);
	if (rc != 0) {
		fprintf(stderr, "localfs: cannot start a thread: %s\n",
			strerror(rc));
		goto out;
	}
	holder_started = true;
	if (!fs_store_is_formatted(store)) {
		rc = format(&prop, capacity, inodes);
		if (rc != 0) {
			fprintf(stderr, "localfs: cannot format the store: %s\n",
				strerror(-rc));
			goto out;
		}
	}
	rc = fs_fuse_mount(store, &prop, &cfg, &fuse);
	if (rc != 0) {
		fprintf(stderr, "localfs: cannot mount %s: %s\n",
			cfg.mountpoint, strerror(-rc));
		goto out;
	}
	rc = fs_fuse_run(fuse, true);
	if (rc != 0)
		fprintf(stderr, "localfs: the session failed: %s\n",
			strerror(-rc));
	else
		status = 0;
out:
	if (holder_started) {
		/* Held commands are applied, so unmount waits for nothing. */
		pthread_cancel(holder); /* sigwait is a cancellation point */
		pthread_join(holder, NULL);
		fs_local_proposer_hold(lp, false);
	}
	fs_fuse_destroy(fuse);
	if (lp != NULL && fs_local_proposer_error(lp) != 0) {
		fprintf(stderr, "localfs: the store failed during apply: %s\n",
			strerror(-fs_local_proposer_error(lp)));
		status = 1;
	}
	fs_local_proposer_stop(lp);
	fs_store_close(store);
	return status;
}
