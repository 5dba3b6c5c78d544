/*
 * posix_op: one system call from the command line, for the POSIX suite
 * (tests/suites/65-posix). Prints "OK" (followed by a result where the call
 * has one) or the errno's name ("EACCES"), and exits 0 either way; a usage
 * error exits 2. The suite compares the output with what POSIX and
 * docs/FUSE.md promise.
 *
 *   rename2 FROM TO FLAGS        renameat2; FLAGS: none, noreplace, exchange,
 *                                whiteout or a number
 *   open PATH FLAGS [MODE]       FLAGS: letters r w a c x t d (rdonly, wronly,
 *                                append, creat, excl, trunc, directory);
 *                                rw = O_RDWR
 *   write PATH OFFSET TEXT       open O_WRONLY, pwrite TEXT at OFFSET
 *   append PATH TEXT             open O_WRONLY|O_APPEND, write TEXT
 *   mkdir PATH MODE | rmdir PATH | unlink PATH | link FROM TO
 *   symlink TARGET PATH | readlink PATH | mknod PATH MODE(octal, with type)
 *   chmod PATH MODE | chown PATH UID GID (-1 keeps) | truncate PATH SIZE
 *   utime PATH ASEC MSEC          explicit times (seconds)
 *   utimenow PATH                 both UTIME_NOW
 *   getxattr PATH NAME SIZE       prints the value length (SIZE 0: size query)
 *   listxattr PATH SIZE           prints the list length
 *   setxattr PATH NAME LEN [create|replace]   a value of LEN bytes 'v'
 *   removexattr PATH NAME
 *   seek PATH data|hole OFFSET    prints the offset
 *   fallocate PATH MODE OFFSET LEN   MODE a number (FALLOC_FL_*)
 *   copyrange FROM TO LEN         copy_file_range of LEN bytes from offset 0
 *   tmpfile DIR                   open(DIR, O_TMPFILE|O_RDWR)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/xattr.h>
#include <unistd.h>

static int usage(void)
{
	fprintf(stderr, "usage: posix_op OP ARGS... (see the source)\n");
	return 2;
}

static int result(long rc)
{
	if (rc < 0) {
		const char *name = strerrorname_np(errno);
		printf("%s\n", name != NULL ? name : "E?");
	} else {
		printf("OK\n");
	}
	return 0;
}

static int result_value(long rc, long long value)
{
	if (rc < 0)
		return result(rc);
	printf("OK %lld\n", value);
	return 0;
}

static int open_flags(const char *s)
{
	int acc = O_RDONLY, fl = 0;

	if (strchr(s, 'r') != NULL && strchr(s, 'w') != NULL)
		acc = O_RDWR;
	else if (strchr(s, 'w') != NULL)
		acc = O_WRONLY;
	for (; *s != '\0'; s++) {
		switch (*s) {
		case 'a':
			fl |= O_APPEND;
			break;
		case 'c':
			fl |= O_CREAT;
			break;
		case 'x':
			fl |= O_EXCL;
			break;
		case 't':
			fl |= O_TRUNC;
			break;
		case 'd':
			fl |= O_DIRECTORY;
			break;
		default:
			break;
		}
	}
	return acc | fl;
}

static unsigned rename_flags(const char *s)
{
	if (strcmp(s, "none") == 0)
		return 0;
	if (strcmp(s, "noreplace") == 0)
		return RENAME_NOREPLACE;
	if (strcmp(s, "exchange") == 0)
		return RENAME_EXCHANGE;
	if (strcmp(s, "whiteout") == 0)
		return RENAME_WHITEOUT;
	return (unsigned)strtoul(s, NULL, 0);
}

static int do_write(const char *path, int flags, long long off,
		    const char *text)
{
	int fd = open(path, flags);
	ssize_t n;

	if (fd < 0)
		return result(-1);
	if (flags & O_APPEND)
		n = write(fd, text, strlen(text));
	else
		n = pwrite(fd, text, strlen(text), off);
	if (n < 0) {
		int e = errno;
		close(fd);
		errno = e;
		return result(-1);
	}
	close(fd);
	return result_value(0, n);
}

static int do_setxattr(const char *path, const char *name, size_t len,
		       const char *how)
{
	char *v = malloc(len + 1);
	int flags = 0, rc;

	if (v == NULL)
		return 2;
	memset(v, 'v', len);
	if (how != NULL && strcmp(how, "create") == 0)
		flags = XATTR_CREATE;
	else if (how != NULL && strcmp(how, "replace") == 0)
		flags = XATTR_REPLACE;
	rc = lsetxattr(path, name, v, len, flags);
	free(v);
	return result(rc);
}

static int do_getxattr(const char *path, const char *name, size_t size)
{
	char *v = malloc(size + 1);
	ssize_t n;

	if (v == NULL)
		return 2;
	n = lgetxattr(path, name, size > 0 ? v : NULL, size);
	free(v);
	return result_value(n, n);
}

static int do_listxattr(const char *path, size_t size)
{
	char *v = malloc(size + 1);
	ssize_t n;

	if (v == NULL)
		return 2;
	n = llistxattr(path, size > 0 ? v : NULL, size);
	free(v);
	return result_value(n, n);
}

static int do_seek(const char *path, const char *whence, long long off)
{
	int fd = open(path, O_RDONLY);
	off_t r;

	if (fd < 0)
		return result(-1);
	r = lseek(fd, off, strcmp(whence, "data") == 0 ? SEEK_DATA : SEEK_HOLE);
	if (r < 0) {
		int e = errno;
		close(fd);
		errno = e;
		return result(-1);
	}
	close(fd);
	return result_value(0, r);
}

static int do_fallocate(const char *path, int mode, long long off,
			long long len)
{
	int fd = open(path, O_RDWR);
	int rc;

	if (fd < 0)
		return result(-1);
	rc = fallocate(fd, mode, off, len);
	if (rc < 0) {
		int e = errno;
		close(fd);
		errno = e;
		return result(-1);
	}
	close(fd);
	return result(0);
}

static int do_copyrange(const char *from, const char *to, size_t len)
{
	int in = open(from, O_RDONLY), out;
	ssize_t n;

	if (in < 0)
		return result(-1);
	out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (out < 0) {
		int e = errno;
		close(in);
		errno = e;
		return result(-1);
	}
	n = copy_file_range(in, NULL, out, NULL, len, 0);
	int e = errno;
	close(in);
	close(out);
	errno = e;
	return result_value(n, n);
}

int main(int argc, char **argv)
{
	const char *op = argc > 1 ? argv[1] : "";
	int n = argc - 2;
	char **a = argv + 2;

	if (strcmp(op, "rename2") == 0 && n == 3)
		return result(renameat2(AT_FDCWD, a[0], AT_FDCWD, a[1],
					rename_flags(a[2])));
	if (strcmp(op, "open") == 0 && (n == 2 || n == 3)) {
		int fd = open(a[0], open_flags(a[1]),
			      n == 3 ? (mode_t)strtoul(a[2], NULL, 8) : 0644);
		if (fd >= 0)
			close(fd);
		return result(fd);
	}
	if (strcmp(op, "write") == 0 && n == 3)
		return do_write(a[0], O_WRONLY, atoll(a[1]), a[2]);
	if (strcmp(op, "append") == 0 && n == 2)
		return do_write(a[0], O_WRONLY | O_APPEND, 0, a[1]);
	if (strcmp(op, "mkdir") == 0 && n == 2)
		return result(mkdir(a[0], (mode_t)strtoul(a[1], NULL, 8)));
	if (strcmp(op, "rmdir") == 0 && n == 1)
		return result(rmdir(a[0]));
	if (strcmp(op, "unlink") == 0 && n == 1)
		return result(unlink(a[0]));
	if (strcmp(op, "link") == 0 && n == 2)
		return result(link(a[0], a[1]));
	if (strcmp(op, "symlink") == 0 && n == 2)
		return result(symlink(a[0], a[1]));
	if (strcmp(op, "readlink") == 0 && n == 1) {
		char buf[8192];
		ssize_t len = readlink(a[0], buf, sizeof(buf));
		return result_value(len, len);
	}
	if (strcmp(op, "mknod") == 0 && n == 2)
		return result(
		    mknod(a[0], (mode_t)strtoul(a[1], NULL, 8), makedev(1, 3)));
	if (strcmp(op, "chmod") == 0 && n == 2)
		return result(chmod(a[0], (mode_t)strtoul(a[1], NULL, 8)));
	if (strcmp(op, "chown") == 0 && n == 3)
		return result(
		    lchown(a[0], (uid_t)atol(a[1]), (gid_t)atol(a[2])));
	if (strcmp(op, "truncate") == 0 && n == 2)
		return result(truncate(a[0], atoll(a[1])));
	if (strcmp(op, "utime") == 0 && n == 3) {
		struct timespec ts[2] = {{atoll(a[1]), 0}, {atoll(a[2]), 0}};
		return result(utimensat(AT_FDCWD, a[0], ts, 0));
	}
	if (strcmp(op, "utimenow") == 0 && n == 1)
		return result(utimensat(AT_FDCWD, a[0], NULL, 0));
	if (strcmp(op, "getxattr") == 0 && n == 3)
		return do_getxattr(a[0], a[1], strtoul(a[2], NULL, 0));
	if (strcmp(op, "listxattr") == 0 && n == 2)
		return do_listxattr(a[0], strtoul(a[1], NULL, 0));
	if (strcmp(op, "setxattr") == 0 && (n == 3 || n == 4))
		return do_setxattr(a[0], a[1], strtoul(a[2], NULL, 0),
				   n == 4 ? a[3] : NULL);
	if (strcmp(op, "removexattr") == 0 && n == 2)
		return result(lremovexattr(a[0], a[1]));
	if (strcmp(op, "seek") == 0 && n == 3)
		return do_seek(a[0], a[1], atoll(a[2]));
	if (strcmp(op, "fallocate") == 0 && n == 4)
		return do_fallocate(a[0], atoi(a[1]), atoll(a[2]), atoll(a[3]));
	if (strcmp(op, "copyrange") == 0 && n == 3)
		return do_copyrange(a[0], a[1], strtoul(a[2], NULL, 0));
	if (strcmp(op, "tmpfile") == 0 && n == 1) {
		int fd = open(a[0], O_TMPFILE | O_RDWR, 0600);
		if (fd >= 0)
			close(fd);
		return result(fd);
	}
	return usage();
}
