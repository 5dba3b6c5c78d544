/*
 * raftfs fsck over a whole data directory (docs/DATA_DIR.md): the fs
 * store, the log store, and the one invariant that ties them together
 * (the fs store's applied index lies within the log); and the RESYNC
 * marker that asks the daemon to reinstall the fs store from the cluster.
 */

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fs/fs.h"
#include "raft/logstore_check.h"

struct log_ctx {
	const struct fs_fsck_options *opt;
};

static void log_problem(void *ctx, uint64_t index, const char *code,
			const char *detail)
{
	const struct fs_fsck_options *opt = ((struct log_ctx *)ctx)->opt;
	struct fs_fsck_problem p = {
		.store = "log", .code = code, .index = index, .detail = detail};

	if (opt->problem != NULL)
		opt->problem(opt->ctx, &p);
}

static void log_progress(void *ctx, uint64_t records)
{
	const struct fs_fsck_options *opt = ((struct log_ctx *)ctx)->opt;

	if (opt->progress != NULL)
		opt->progress(opt->ctx, "log", records, 0);
}

static void cross_problem(const struct fs_fsck_options *opt,
			  struct fs_fsck_summary *sum, uint64_t index,
			  const char *detail)
{
	struct fs_fsck_problem p = {.store = "log",
				    .code = "applied-index",
				    .index = index, .detail = detail};

	sum->problems++;
	if (opt->problem != NULL)
		opt->problem(opt->ctx, &p);
}

/* The fs store's applied index against the log: every applied command
 * must be in the log or covered by its snapshot (applied <= last), and the
 * log may be compacted only below what the fs store holds (applied >=
 * snapshot index), else the node could not replay. */
static void cross_check(const struct fs_fsck_options *opt,
			struct fs_fsck_summary *sum,
			const struct raft_logstore_check *lc)
{
	uint64_t last = lc->last_index;
	char detail[256];

	if (lc->has_snapshot && lc->snapshot_index > last)
		last = lc->snapshot_index;
	if (sum->applied_index > last) {
		snprintf(detail, sizeof(detail),
			 "the fs store has applied index %" PRIu64
			 ", beyond the log's last index %" PRIu64,
			 sum->applied_index, last);
		cross_problem(opt, sum, sum->applied_index, detail);
	}
	if (lc->has_snapshot && sum->applied_index < lc->snapshot_index) {
		snprintf(detail, sizeof(detail),
			 "the fs store has applied index %" PRIu64
			 ", below the log's snapshot index %" PRIu64
			 " (entries it still needs were compacted)",
			 sum->applied_index, lc->snapshot_index);
		cross_problem(opt, sum, sum->applied_index, detail);
	}
}

static int join(char *buf, size_t size, const char *dir, const char *name)
{
	int n = snprintf(buf, size, "%s/%s", dir, name);

	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

int fs_fsck_data_dir(const char *data_dir, const struct fs_fsck_options *opt,
		     struct fs_fsck_summary *sum, char *err, size_t err_size)
{
	struct raft_logstore_check lc;
	struct log_ctx lctx = {opt};
	char fs_dir[4096], log_dir[4096];
	struct stat st;
	int rc;

	memset(sum, 0, sizeof(*sum));
	if (stat(data_dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
		snprintf(err, err_size, "%s is not a directory", data_dir);
		return -ENOENT;
	}
	if (join(fs_dir, sizeof(fs_dir), data_dir, "fs") != 0 ||
	    join(log_dir, sizeof(log_dir), data_dir, "log") != 0) {
		snprintf(err, err_size, "path too long: %s", data_dir);
		return -ENAMETOOLONG;
	}
	rc = fs_fsck_store(fs_dir, opt, sum, err, err_size);
	if (rc != 0)
		return rc;
	rc = raft_logstore_check(log_dir, log_problem, log_progress, &lctx,
				 &lc, err, err_size);
	if (rc != 0)
		return rc;
	sum->problems += lc.problems;
	sum->log_checked = true;
	sum->log_has_snapshot = lc.has_snapshot;
	sum->log_snapshot_index = lc.snapshot_index;
	sum->log_first_index = lc.first_index;
	sum->log_last_index = lc.last_index;
	sum->log_segments = lc.segments;
	cross_check(opt, sum, &lc);
	return 0;
}

int fs_data_dir_request_resync(const char *data_dir, char *err,
			       size_t err_size)
{
	char path[4096], tmp[4096], text[128];
	struct stat st;
	int fd = -1, dfd = -1, rc = 0;
	size_t len;

	if (join(path, sizeof(path), data_dir, "log") != 0 ||
	    join(tmp, sizeof(tmp), data_dir, "fs") != 0) {
		snprintf(err, err_size, "path too long: %s", data_dir);
		return -ENAMETOOLONG;
	}
	if (stat(path, &st) != 0 && stat(tmp, &st) != 0) {
		snprintf(err, err_size,
			 "%s is not a raftfs data dir (no log/ or fs/ store)",
			 data_dir);
		return -ENOENT;
	}
	join(path, sizeof(path), data_dir, "RESYNC");
	join(tmp, sizeof(tmp), data_dir, "RESYNC.tmp");
	len = (size_t)snprintf(text, sizeof(text),
			       "requested-by=fsck time=%lld\n",
			       (long long)time(NULL));
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, text, len) != (ssize_t)len || fsync(fd) != 0 ||
	    close(fd) != 0) {
		rc = errno ? -errno : -EIO;
		fd = -1;
		goto fail;
	}
	fd = -1;
	if (rename(tmp, path) != 0) {
		rc = -errno;
		goto fail;
	}
	dfd = open(data_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0 || fsync(dfd) != 0) {
		rc = -errno;
		if (dfd >= 0)
			close(dfd);
		snprintf(err, err_size, "cannot sync %s: %s", data_dir,
			 strerror(-rc));
		return rc;
	}
	close(dfd);
	return 0;
fail:
	snprintf(err, err_size, "cannot write %s: %s", path, strerror(-rc));
	unlink(tmp);
	return rc;
}
