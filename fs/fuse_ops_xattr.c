/*
 * Handlers for extended attributes: setxattr, getxattr, listxattr,
 * removexattr. The kernel asks for security.capability before every
 * write (HANDLE_KILLPRIV); that lookup is answered from the local store
 * without a barrier, so writes do not pay a barrier round each. Any
 * security.capability change is a command like every other, so the local
 * answer is the state of the last apply.
 */

#include "fs/fuse_fe.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define CAPABILITY_XATTR "security.capability"
/* POSIX ACLs are not enforced (no FUSE_CAP_POSIX_ACL): storing them as
 * plain xattrs would let tools believe a mode change happened. No other
 * system.* attribute exists here either: every system.* set is EOPNOTSUPP. */
#define SYSTEM_XATTR_PREFIX "system."
/* listxattr buffers above this are treated as this large. */
#define LIST_MAX_BYTES (1024u * 1024u)

/* The namespaces Linux file systems know; a name in any other is
 * EOPNOTSUPP, as on ext4, xfs and tmpfs. */
static const char *const xattr_namespaces[] = {
	"user.", "trusted.", "security.", "system.",
};

/* Check an xattr name: 0, -ERANGE (empty or over 255 bytes), -EOPNOTSUPP
 * (no known namespace). */
static int xattr_name_check(const char *name, size_t *len)
{
	size_t i;

	*len = strnlen(name, FS_XATTR_NAME_MAX + 1);
	if (*len == 0 || *len > FS_XATTR_NAME_MAX)
		return -ERANGE;
	for (i = 0; i < sizeof(xattr_namespaces) / sizeof(xattr_namespaces[0]); i++)
		if (strncmp(name, xattr_namespaces[i], strlen(xattr_namespaces[i])) == 0)
			return 0;
	return -EOPNOTSUPP;
}

static void getxattr_answer(struct fs_fuse *fs, fuse_req_t req, uint64_t ino,
			    const char *name, size_t name_len, size_t size)
{
	size_t n = 0;
	void *buf = NULL;
	int rc;

	if (size > FS_XATTR_VALUE_MAX)
		size = FS_XATTR_VALUE_MAX; /* no value is larger */
	if (size > 0 && (buf = malloc(size)) == NULL) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	rc = fs_getxattr(fs->store, ino, name, name_len, buf, size, &n);
	if (rc != 0)
		fuse_reply_err(req, -rc);
	else if (size == 0)
		fuse_reply_xattr(req, n);
	else
		fuse_reply_buf(req, buf, n);
	free(buf);
}

static void getxattr_read(struct fs_fuse_req *r)
{
	getxattr_answer(r->fs, r->req, r->ino, r->name, r->name_len, r->size);
}

static void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
			size_t size)
{
	struct fs_fuse *fs = fuse_req_userdata(req);
	struct fs_fuse_req *r;
	size_t len;
	int rc = xattr_name_check(name, &len);

	if (rc != 0) {
		fuse_reply_err(req, -rc);
		return;
	}
	/* Local answers, no barrier: security.capability (above), and
	 * system.*, which no command of this build changes (every set is
	 * EOPNOTSUPP): `ls -l` asks for system.posix_acl_access of every
	 * file, one barrier round each before. */
	if (strcmp(name, CAPABILITY_XATTR) == 0 ||
	    strncmp(name, SYSTEM_XATTR_PREFIX, strlen(SYSTEM_XATTR_PREFIX)) ==
		    0) {
		getxattr_answer(fs, req, ino, name, len, size);
		return;
	}
	r = fs_fuse_req_new(req);
	if (r == NULL)
		return;
	r->ino = ino;
	r->size = size;
	r->name_len = (uint32_t)len;
	memcpy(r->name, name, len + 1);
	fs_fuse_read(r, getxattr_read);
}

static void listxattr_read(struct fs_fuse_req *r)
{
	size_t size = r->size > LIST_MAX_BYTES ? LIST_MAX_BYTES : r->size;
	size_t n = 0;
	char *buf = NULL;
	int rc;

	if (size > 0 && (buf = malloc(size)) == NULL) {
		fuse_reply_err(r->req, ENOMEM);
		return;
	}
	rc = fs_listxattr(r->fs->store, r->ino, buf, size, &n);
	if (rc == -ERANGE && size < r->size)
		rc = -E2BIG;
	if (rc != 0)
		fuse_reply_err(r->req, -rc);
	else if (size == 0)
		fuse_reply_xattr(r->req, n);
	else
		fuse_reply_buf(r->req, buf, n);
	free(buf);
}

static void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	struct fs_fuse_req *r = fs_fuse_req_new(req);

	if (r == NULL)
		return;
	r->ino = ino;
	r->size = size;
	fs_fuse_read(r, listxattr_read);
}

static void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
			const char *value, size_t size, int flags)
{
	struct fs_fuse_req *r;
	struct fs_cmd c;
	size_t len;
	int rc = xattr_name_check(name, &len);

	if (rc == 0 &&
	    strncmp(name, SYSTEM_XATTR_PREFIX, strlen(SYSTEM_XATTR_PREFIX)) == 0)
		rc = -EOPNOTSUPP;
	if (rc == 0 && size > FS_XATTR_VALUE_MAX)
		rc = -E2BIG;
	if (rc == 0 &&
	    (flags & ~(int)(FS_XATTR_CREATE | FS_XATTR_REPLACE)) != 0)
		rc = -EINVAL;
	if (rc != 0) {
		fuse_reply_err(req, -rc);
		return;
	}
	r = fs_fuse_req_new(req);
	if (r == NULL)
		return;
	memset(&c, 0, sizeof(c));
	c.op = FS_OP_SETXATTR;
	c.ino = ino;
	c.name = name; /* encoded before this handler returns */
	c.name_len = (uint32_t)len;
	c.data = value;
	c.data_len = (uint32_t)size;
	c.flags = (uint32_t)flags;
	fs_fuse_propose(r, &c, fs_fuse_finish_err);
}

static void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	struct fs_fuse_req *r;
	struct fs_cmd c;
	size_t len;
	int rc = xattr_name_check(name, &len);

	if (rc != 0) {
		fuse_reply_err(req, -rc);
		return;
	}
	r = fs_fuse_req_new(req);
	if (r == NULL)
		return;
	memset(&c, 0, sizeof(c));
	c.op = FS_OP_REMOVEXATTR;
	c.ino = ino;
	c.name = name;
	c.name_len = (uint32_t)len;
	fs_fuse_propose(r, &c, fs_fuse_finish_err);
}

void fs_fuse_ops_xattr(struct fuse_lowlevel_ops *ops)
{
	ops->setxattr = op_setxattr;
	ops->getxattr = op_getxattr;
	ops->listxattr = op_listxattr;
	ops->removexattr = op_removexattr;
}
