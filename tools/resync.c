/*
 * `raftfs fsck --data DIR --resync` asks the next start to rebuild the
 * node's tree rather than trust its fs store (docs/DATA_DIR.md). The
 * daemon sets the damaged store aside (DIR/fs.resync), starts from an
 * empty one and replays its own log from index 1 through the runtime, the
 * same commands in the same order as every replica: the result is the
 * replicas' tree, nothing is patched locally. That needs the whole log:
 * when it was compacted, the old store is put back and the start refused
 * (a node that lost its log's beginning is replaced: member remove, then
 * add under a new id). The log itself is never touched, so the node's
 * votes and acknowledgements stay what they were.
 */

#define _XOPEN_SOURCE 700
#include "tools/daemon.h"

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int remove_one(const char *path, const struct stat *st, int flag,
		      struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path) == 0 || errno == ENOENT ? 0 : -1;
}

static int remove_tree(const char *path)
{
	if (access(path, F_OK) != 0)
		return 0;
	return nftw(path, remove_one, 16, FTW_DEPTH | FTW_PHYS) == 0 ? 0
								      : -EIO;
}

int resync_begin(const char *data, char *err, size_t err_size)
{
	char marker[4200], fs[4200], aside[4200];

	snprintf(marker, sizeof(marker), "%s/RESYNC", data);
	if (access(marker, F_OK) != 0)
		return 0;
	snprintf(fs, sizeof(fs), "%s/fs", data);
	snprintf(aside, sizeof(aside), "%s/fs.resync", data);
	/* A resync interrupted before it finished left the old store aside
	 * and a partial new one: the old one stays, the new one goes. */
	if (access(aside, F_OK) == 0) {
		if (remove_tree(fs) != 0)
			return text_error(err, err_size, -EIO,
					  "resync: cannot remove %.300s", fs);
	} else if (access(fs, F_OK) == 0 && rename(fs, aside) != 0) {
		return text_error(err, err_size, -errno,
				  "resync: cannot move %.300s aside: %s", fs,
				  strerror(errno));
	}
	return 1;
}

int resync_finish(const char *data, bool rebuilt, char *err, size_t err_size)
{
	char marker[4200], fs[4200], aside[4200];

	snprintf(marker, sizeof(marker), "%s/RESYNC", data);
	snprintf(fs, sizeof(fs), "%s/fs", data);
	snprintf(aside, sizeof(aside), "%s/fs.resync", data);
	if (rebuilt) {
		if (remove_tree(aside) != 0 || unlink(marker) != 0)
			return text_error(err, err_size, -EIO,
					  "resync: cannot remove %.300s or its "
					  "marker",
					  aside);
		return 0;
	}
	/* Put the old store back; the marker stays for the operator. */
	if (remove_tree(fs) != 0 ||
	    (access(aside, F_OK) == 0 && rename(aside, fs) != 0))
		return text_error(err, err_size, -EIO,
				  "resync: cannot put %.300s back", aside);
	return 0;
}
