#ifndef FS_FS_H
#define FS_FS_H

/*
 * The filesystem state machine: the tree in its own LevelDB store, changed
 * only by applying committed commands in log order, deterministically.
 *
 *   commands     struct fs_cmd, encoded explicitly (fs_cmd_encode) into a
 *                log entry payload and decoded + validated on apply
 *   apply        fs_store_apply: one command, its duplicate-table record
 *                and the new applied index in ONE LevelDB WriteBatch (not
 *                synced: the Raft log is the durable record)
 *   reads        lookup, getattr, readdir by cookie, read, readlink,
 *                getxattr/listxattr, statfs, lseek data/hole
 *   snapshots    fs_snapshot_* (bounded chunks with a running checksum),
 *                fs_install_* (fresh store beside the current one, synced,
 *                switched atomically)
 *   state hash   fs_store_hash (every replicated key), fs_store_subtree_hash
 *
 * The store layout and its format version: docs/FS_STORE.md.
 *
 * Errors: fallible functions return 0 or a negative errno. A command's own
 * outcome (ENOENT, EEXIST, ...) is NOT an error of the function: it is in
 * struct fs_result. A negative return from fs_store_apply is a store-level
 * error (malformed command -EBADMSG, out-of-order index -EINVAL, LevelDB
 * failure -EIO, -ENOMEM) and must stop the node; nothing was applied.
 *
 * Threads: one thread (the apply thread) calls fs_store_apply and the
 * install functions; read functions may be called from any number of other
 * threads at the same time. An internal read-write lock makes each read see
 * the state between two applied commands.
 *
 * Permissions: apply checks no permissions (the front end mounts with
 * default_permissions and the kernel checks against the attributes, which
 * are identical on every replica); creating commands carry the caller's
 * uid/gid, which become the new inode's owner.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "raft/proposal.h"

/* ---------------------------------------------------------------------- */
/* Limits.                                                                 */

#define FS_ROOT_INO 1u
/* Names longer than the superblock's name_max (at most this) get
 * ENAMETOOLONG; the command codec accepts up to FS_NAME_CODEC_MAX. */
#define FS_NAME_MAX 255u
#define FS_NAME_CODEC_MAX 1024u
/* Longest symlink target (ENAMETOOLONG beyond). */
#define FS_SYMLINK_MAX 4095u
/* Largest payload of one write, and largest xattr value. */
#define FS_WRITE_MAX (1024u * 1024u)
#define FS_XATTR_VALUE_MAX 65536u
#define FS_XATTR_NAME_MAX 255u
/* Largest file size (EFBIG beyond). */
#define FS_FILE_SIZE_MAX (1ull << 50)
/* Most hard links of one inode (EMLINK beyond). */
#define FS_LINK_MAX 65000u
/* Most nodes named as holders of an unlinked inode. */
#define FS_HOLDERS_MAX 16u
/* Most inodes one RELEASE_LIST releases. */
#define FS_RELEASE_LIST_MAX 1024u
/* Default block size and its bounds (powers of two). */
#define FS_BLOCK_SIZE_DEFAULT 65536u
#define FS_BLOCK_SIZE_MIN 4096u
#define FS_BLOCK_SIZE_MAX (1024u * 1024u)

/* ---------------------------------------------------------------------- */
/* Attributes.                                                             */

struct fs_time {
	int64_t sec;
	uint32_t nsec; /* < 1e9 */
};

struct fs_attr {
	uint64_t ino;
	uint32_t mode; /* file type and permission bits, as st_mode */
	uint32_t nlink;
	uint32_t uid;
	uint32_t gid;
	uint64_t rdev;
	uint64_t size;
	uint64_t blocks; /* 512-byte units actually stored (holes excluded) */
	uint32_t blksize; /* the store's block size */
	struct fs_time atime;
	struct fs_time mtime;
	struct fs_time ctime;
	uint64_t generation; /* log index of the inode's creation */
};

/* ---------------------------------------------------------------------- */
/* Commands.                                                               */

enum fs_op {
	FS_OP_INIT = 1,   /* format: superblock and root directory */
	FS_OP_CREATE = 2, /* create, mknod, mkdir: the type is in mode */
	FS_OP_SYMLINK = 3,
	FS_OP_LINK = 4,
	FS_OP_UNLINK = 5,
	FS_OP_RMDIR = 6,
	FS_OP_RENAME = 7,
	FS_OP_SETATTR = 8,
	FS_OP_WRITE = 9,
	FS_OP_FALLOCATE = 10,
	FS_OP_SETXATTR = 11,
	FS_OP_REMOVEXATTR = 12,
	FS_OP_RELEASE = 13, /* the proposing node no longer holds an orphan */
	FS_OP_CHECK = 14,   /* a check point: changes nothing; every replica
			       hashes its state at this index (offset: the
			       check's id) */
	FS_OP_RELEASE_ALL = 15, /* ... nor any orphan (it just started) */
	FS_OP_RELEASE_LIST = 16, /* ... nor these orphans */
	FS_OP_APPEND = 17, /* a write at the end of the file as applied */
	FS_OP_LOCK = 18,   /* set or remove a lock, or wait for it */
	FS_OP_LOCK_CANCEL = 19, /* the proposer's waiting LOCK is withdrawn */
	FS_OP_UNLOCK_OWNER = 20, /* every lock of one owner on an inode */
	FS_OP_LEASE = 21,  /* the proposer's node renews its lease */
	FS_OP_LEASE_EXPIRE = 22, /* the leader revokes a silent node's lease */
	/* Repairs proposed by `fsck --cluster --repair` (docs/FSCK.md): each
	 * checks its precondition on apply and changes nothing (err ESTALE)
	 * when the state moved since the check that proposed it. */
	FS_OP_REPAIR_ENTRY = 24,    /* restore or remove one entry's keys */
	FS_OP_REPAIR_FREE = 25,     /* free the records of a missing inode */
	FS_OP_REPAIR_DATA = 26,     /* drop data beyond the size */
	FS_OP_REPAIR_LOST_FOUND = 27, /* link an unreachable inode into
					 /lost+found */
	FS_OP_REPAIR_LINKS = 28,    /* set the link count (directories:
				       recount their entries) */
	FS_OP_REPAIR_COUNTERS = 29, /* recount the superblock's counters */
	FS_OP_FEATURE = 30, /* raise the cluster's feature level (flags) */
	FS_OP_MAX = 30,
};

/* FS_OP_REPAIR_ENTRY: what to do with the entry (in cmd.flags). */
enum fs_repair_entry {
	FS_REPAIR_ENTRY_NAME = 1,   /* restore the entry by name from the
				       record by cookie (ino, offset) */
	FS_REPAIR_ENTRY_COOKIE = 2, /* restore the record by cookie from the
				       entry by name (ino, name) */
	FS_REPAIR_ENTRY_REMOVE = 3, /* remove the entry (ino, name) that
				       points at missing inode ino2 */
};

/* Locks (fs/locks.h, docs/LOCKS.md): kinds, types, the end of every file
 * as a range end, and LOCK's flags. */
enum fs_lock_kind {
	FS_LOCK_POSIX = 1, /* fcntl byte-range locks */
	FS_LOCK_FLOCK = 2, /* flock(2) */
};

enum fs_lock_type {
	FS_LOCK_UNLOCK = 0,
	FS_LOCK_READ = 1,
	FS_LOCK_WRITE = 2,
};

#define FS_LOCK_EOF UINT64_MAX
#define FS_LOCK_WAIT 1u /* LOCK flags: queue when in conflict */

/*
 * Feature levels (docs/FS_STORE.md, "Feature level"). The superblock holds
 * the cluster's level, set to 1 by INIT and raised only by a FEATURE
 * command, which the leader proposes once every member reports that it
 * supports the new level. A command whose op needs a higher level than the
 * cluster's is refused when proposed (-EOPNOTSUPP), so no member ever
 * meets a command it cannot decode.
 *
 *   level 1  ops 1-17: every op that existed before the gate (every store
 *            formatted before it says 1 and uses them all)
 *   level 2  op 30 FEATURE: the cluster's level can change through the log
 *   level 3  ops 18-22 (locks and leases, docs/LOCKS.md) and 24-29 (the
 *            repairs of fsck --cluster --repair)
 *
 * A new op adds one line to fs_op_feature_level (fs/cmd.c) with a new
 * level, and FS_FEATURE_LEVEL becomes that level.
 */
#define FS_FEATURE_LEVEL 3u /* the highest level this build supports */

/* The level a cluster must be at before op may be proposed; 0 for an op
 * this build does not know. */
uint32_t fs_op_feature_level(uint8_t op);

/* Whether a command (encoded) may be proposed on a cluster at level:
 * 0, -EOPNOTSUPP (its op needs a higher level; FEATURE: a level this
 * build does not support, or not above the current one) or -EBADMSG (not
 * a command this build knows). */
int fs_cmd_feature_check(const uint8_t *buf, size_t size, uint32_t level);

/* Whether buf is a command of a version and op this build knows (its
 * fields may still be malformed). */
bool fs_cmd_known(const uint8_t *buf, size_t size);

/* setattr: which fields of the command to apply. */
enum fs_set {
	FS_SET_MODE = 1u << 0,
	FS_SET_UID = 1u << 1,
	FS_SET_GID = 1u << 2,
	FS_SET_SIZE = 1u << 3,
	FS_SET_ATIME = 1u << 4,     /* to cmd.atime, exactly */
	FS_SET_MTIME = 1u << 5,     /* to cmd.mtime, exactly */
	FS_SET_ATIME_NOW = 1u << 6, /* UTIME_NOW: the command's time */
	FS_SET_MTIME_NOW = 1u << 7,
	FS_SET_ALL = (1u << 8) - 1,
};

/* rename flags (values of RENAME_NOREPLACE and RENAME_EXCHANGE). */
#define FS_RENAME_NOREPLACE 1u
#define FS_RENAME_EXCHANGE 2u
/* setxattr flags (XATTR_CREATE, XATTR_REPLACE). */
#define FS_XATTR_CREATE 1u
#define FS_XATTR_REPLACE 2u
/* fallocate modes (FALLOC_FL_*). */
#define FS_FALLOC_KEEP_SIZE 0x01u
#define FS_FALLOC_PUNCH_HOLE 0x02u
#define FS_FALLOC_ZERO_RANGE 0x10u

/*
 * One command, flat; which fields mean what depends on op:
 *
 *   every op     proposal, clock (the proposer's clock reading), uid, gid
 *                (the caller, owner of what it creates)
 *   INIT         fs_id, block_size, capacity_bytes, max_inodes, name_max,
 *                mode (root permissions)
 *   CREATE       ino = parent, name, mode (type | permissions), rdev
 *   SYMLINK      ino = parent, name, data = target
 *   LINK         ino = existing inode, ino2 = new parent, name
 *   UNLINK       ino = parent, name, holders (nodes that still hold the
 *                inode open: when its last link goes, it becomes an orphan
 *                until each of them releases it)
 *   RMDIR        ino = parent, name
 *   RENAME       ino = parent, name, ino2 = new parent, name2, flags
 *                (FS_RENAME_*), holders (for a replaced target)
 *   SETATTR      ino, valid (FS_SET_*), mode, set_uid, set_gid, size,
 *                atime, mtime
 *   WRITE        ino, offset, data
 *   APPEND       ino, data (written at the file's size when applied)
 *   FALLOCATE    ino, flags = mode (FS_FALLOC_*), offset, length
 *   SETXATTR     ino, name, data = value, flags (FS_XATTR_*)
 *   REMOVEXATTR  ino, name
 *   RELEASE      ino (released by the proposal's node)
 *   RELEASE_ALL  (none: the proposal's node releases every orphan, and
 *                from feature level 3 drops every lock and waiter it had
 *                and renews its lease: it just started)
 *   FEATURE      flags = the new feature level (above the current one)
 *   RELEASE_LIST data = 1..FS_RELEASE_LIST_MAX inode numbers, u64
 *                big-endian each (those not held by the node are skipped)
 *   LOCK         ino, lock_kind, lock_type, lock_start, lock_end
 *                (inclusive; flock: 0..FS_LOCK_EOF), lock_owner (with the
 *                proposal's node: the owner), lock_pid, flags (FS_LOCK_WAIT,
 *                not with UNLOCK). Result: err 0 and count 0 set, count 1
 *                queued (granted later: FS_EVENT_LOCK_GRANTED), or err
 *                EAGAIN, EDEADLK, ENOLCK, ENOENT (no such inode)
 *   LOCK_CANCEL  offset = seq of the proposer's queued LOCK (same node and
 *                epoch). Result: err 0 withdrawn, ENOENT not queued
 *                (granted already)
 *   UNLOCK_OWNER ino, lock_kind, lock_owner (close: flush, release)
 *   LEASE        (none: the proposal's node, epoch renews its lease)
 *   LEASE_EXPIRE offset = node, length = its epoch whose lease is revoked:
 *                every command of that node from that epoch or an earlier
 *                one is refused from then on (err EIO: fencing), its locks
 *                and waiters go. Err ESTALE when the node announced a
 *                newer epoch already (it restarted), ENOENT when it holds
 *                no lock and waits for none (nothing to fence: the lease
 *                stays).
 *   REPAIR_ENTRY ino = directory, flags (enum fs_repair_entry), offset =
 *                cookie (NAME), name (COOKIE, REMOVE), ino2 = the
 *                missing target (REMOVE)
 *   REPAIR_FREE  ino (must not exist)
 *   REPAIR_DATA  ino
 *   REPAIR_LOST_FOUND ino, length = its nlink and mtime = its ctime as
 *                checked (non-directories: no entry may point at it)
 *   REPAIR_LINKS ino, length = its nlink as checked, size = the entries
 *                pointing at it then (directories: recounted on apply)
 *   REPAIR_COUNTERS (none)
 *
 * Names and data are referenced, not owned: after fs_cmd_decode they point
 * into the decoded buffer. Names are byte strings with explicit length
 * (not NUL-terminated).
 */
struct fs_cmd {
	uint8_t op; /* enum fs_op */
	struct raft_proposal proposal;
	struct fs_time clock;
	uint32_t uid;
	uint32_t gid;
	uint64_t ino;
	uint64_t ino2;
	const char *name;
	uint32_t name_len;
	const char *name2;
	uint32_t name2_len;
	const void *data;
	uint32_t data_len;
	uint32_t mode;
	uint64_t rdev;
	uint32_t flags;
	uint32_t valid;
	uint32_t set_uid;
	uint32_t set_gid;
	uint64_t size;
	uint64_t offset;
	uint64_t length;
	struct fs_time atime;
	struct fs_time mtime;
	uint32_t n_holders;
	uint64_t holders[FS_HOLDERS_MAX];
	/* LOCK, UNLOCK_OWNER */
	uint64_t lock_owner;
	uint64_t lock_start;
	uint64_t lock_end;
	uint32_t lock_pid;
	uint8_t lock_kind; /* enum fs_lock_kind */
	uint8_t lock_type; /* enum fs_lock_type */
	/* INIT only */
	uint8_t fs_id[16];
	uint32_t block_size;
	uint64_t capacity_bytes;
	uint64_t max_inodes;
	uint32_t name_max;
};

/* Bytes fs_cmd_encode needs for cmd (0 when cmd is invalid). */
size_t fs_cmd_encoded_size(const struct fs_cmd *cmd);

/*
 * Encode cmd into buf (size bytes). The same validation as fs_cmd_decode
 * runs first, so whatever encodes also decodes. Returns the number of bytes
 * written, or -EINVAL (invalid command), -ENOSPC (buf too small).
 */
long fs_cmd_encode(const struct fs_cmd *cmd, uint8_t *buf, size_t size);

/*
 * Decode and validate one command. Every field is checked: known op, known
 * flags, lengths within the codec limits, names without '/' or NUL and not
 * "." or "..", nanoseconds < 1e9, a valid proposal, no trailing bytes.
 * Returns 0, or -EBADMSG. cmd references buf.
 */
int fs_cmd_decode(const uint8_t *buf, size_t size, struct fs_cmd *cmd);

/* The outcome of one command, as stored in the duplicate table. */
struct fs_result {
	int32_t err;    /* 0 or a positive errno (ENOENT, EEXIST, ...) */
	uint64_t ino;   /* the inode created or changed (0 on error) */
	uint64_t count; /* bytes written (WRITE) */
	struct fs_attr attr; /* its attributes after the command */
};

/* ---------------------------------------------------------------------- */
/* The store.                                                              */

struct fs_store;

/*
 * Open (and create when missing) the store in directory dir, which the
 * store owns (it holds a CURRENT file naming the store-N LevelDB
 * directory in use and, during an install, an INSTALL marker). A store
 * left with an unfinished install is cleaned up: the old store is kept and
 * fs_store_interrupted_install reports the install to restart.
 * Returns 0, or -EIO (LevelDB or file error; corrupt contents), -ENOMEM,
 * -EUCLEAN (an unknown format version or a malformed superblock).
 */
int fs_store_open(const char *dir, struct fs_store **out);
/* Close; accepts NULL. */
void fs_store_close(struct fs_store *s);

/* The applied index: every command up to it is in the store. */
uint64_t fs_store_applied_index(struct fs_store *s);

/* Whether an INIT has been applied. */
bool fs_store_is_formatted(struct fs_store *s);

/* The cluster's feature level as of the applied index (1, the level
 * INIT sets, before INIT). */
uint32_t fs_store_feature_level(struct fs_store *s);

/*
 * Apply the committed log entry at index (== applied index + 1) holding an
 * encoded command. Fills *res with the command's outcome (for a duplicate:
 * the original outcome; for an expired or old-epoch id: err ESTALE, not
 * applied). Returns 0, or a store-level error (see the top of this file);
 * -EBADMSG for a malformed command or any command before INIT.
 */
int fs_store_apply(struct fs_store *s, uint64_t index, const void *cmd,
		   size_t size, struct fs_result *res);

/* A log entry at index (== applied + 1) that is not an fs command (no-op,
 * configuration): only the applied index moves. */
int fs_store_apply_other(struct fs_store *s, uint64_t index);

/*
 * A configuration entry at index (== applied + 1) with these members
 * (voters and learners, node ids): recorded (replicated) as the holders
 * of every regular file that later loses its last link, and every node
 * not among them is released from every orphan (docs/FS_STORE.md,
 * Orphans). Returns 0, -EINVAL (bad index or count), or a store error.
 */
int fs_store_apply_config(struct fs_store *s, uint64_t index,
			  const uint64_t *members, uint32_t n);

/* What apply tells the front end through the hook below. */
enum fs_store_event_kind {
	/* ino lost its last link and stays, held (the front end releases
	 * what this node does not hold open) */
	FS_EVENT_ORPHANED = 1,
	/* directory ino was removed; attr: its last attributes, nlink 0
	 * (the kernel may still know it: a removed current directory) */
	FS_EVENT_DIR_FREED = 2,
	/* a snapshot was installed (fs_install_finish; no ino): orphans it
	 * brought that this node holds but has not open are released */
	FS_EVENT_INSTALLED = 3,
	/* an applied command changed what a kernel may cache (one event per
	 * command that changed anything visible; the release of orphans,
	 * which have no name, is not one): the fields below */
	FS_EVENT_CHANGED = 4,
	/* a queued LOCK of (node, epoch, seq) on ino was granted: the lock
	 * is in the store; every node is told */
	FS_EVENT_LOCK_GRANTED = 5,
};

/* Most inodes and entries one FS_EVENT_CHANGED lists (a rename touches at
 * most 4 inodes and 2 entries); a command touching more sets all. */
#define FS_CHANGE_INODES_MAX 8u
#define FS_CHANGE_ENTRIES_MAX 4u

struct fs_change_entry {
	uint64_t dir;
	const char *name; /* not NUL-terminated; valid during the hook */
	uint32_t name_len;
	uint64_t removed; /* the inode this name no longer names, or 0 */
};

struct fs_store_event {
	uint8_t kind; /* enum fs_store_event_kind */
	uint64_t ino;
	struct fs_attr attr; /* FS_EVENT_DIR_FREED only */
	/* FS_EVENT_CHANGED (index also for FS_EVENT_INSTALLED: the
	 * snapshot's last index; and for FS_EVENT_LOCK_GRANTED: the
	 * granting command's) */
	uint64_t index;     /* the command's log index */
	uint64_t node;      /* the node that proposed it (LOCK_GRANTED:
			       the LOCK's proposal node, epoch, seq) */
	uint64_t epoch;
	uint64_t seq;
	bool all;           /* more than fits below: assume everything */
	bool append;        /* an APPEND (written where apply found the end) */
	uint32_t n_inodes;
	uint64_t inodes[FS_CHANGE_INODES_MAX];   /* attributes changed */
	uint64_t data[FS_CHANGE_INODES_MAX];     /* contents or size too */
	uint32_t n_data;
	uint32_t n_entries;
	struct fs_change_entry entries[FS_CHANGE_ENTRIES_MAX];
};

/*
 * fn(ctx, ev) runs on the apply thread for each event of a command, once
 * the command is in the store and the store's lock is released (it may
 * read the store). It must not apply or block for long. NULL removes it;
 * once this returns, the old hook is not running.
 */
void fs_store_set_hook(struct fs_store *s,
		       void (*fn)(void *ctx, const struct fs_store_event *ev),
		       void *ctx);

/* Make everything applied so far durable (a synced empty write). */
int fs_store_sync(struct fs_store *s);

/* Deliberate bugs for tests that show a checker can fail. */
enum fs_test_bug {
	/* apply stamps times from the local clock instead of the command */
	FS_BUG_CLOCK_IN_APPLY = 1u << 0,
};
void fs_store_set_test_bugs(struct fs_store *s, uint32_t bugs);

/* ---------------------------------------------------------------------- */
/* Reads (any thread).                                                     */

/* Returns 0, -ENOENT, -ENOTDIR (parent not a directory), -EIO. */
int fs_lookup(struct fs_store *s, uint64_t parent, const char *name,
	      size_t name_len, struct fs_attr *attr);
int fs_getattr(struct fs_store *s, uint64_t ino, struct fs_attr *attr);

struct fs_dirent {
	uint64_t cookie; /* resume after this entry with this cookie */
	uint64_t ino;
	uint32_t type;   /* S_IFMT bits */
	const char *name; /* valid during the callback only */
	size_t name_len;
};

/*
 * Entries of directory ino after cookie (0: from the start) in cookie
 * order: "." (cookie 1), ".." (cookie 2), then the entries, whose cookies
 * are sequence numbers given at apply, stable under other changes and
 * across snapshot install. fn returns non-zero to stop (that value is
 * returned); it runs with the store's lock held shared, so it may call
 * other read functions but must not apply. Returns 0, -ENOENT, -ENOTDIR,
 * -EIO.
 */
int fs_readdir(struct fs_store *s, uint64_t ino, uint64_t cookie,
	       int (*fn)(void *ctx, const struct fs_dirent *e), void *ctx);

/* Read up to len bytes at offset (holes read as zeros); *n gets the count
 * (short at end of file). Returns 0, -ENOENT, -EISDIR, -EINVAL, -EIO. */
int fs_read(struct fs_store *s, uint64_t ino, uint64_t offset, size_t len,
	    void *buf, size_t *n);

/* The target of a symlink into buf (not terminated); *n gets its full
 * length. Returns 0, -ENOENT, -EINVAL (not a symlink), -ERANGE. */
int fs_readlink(struct fs_store *s, uint64_t ino, char *buf, size_t size,
		size_t *n);

/* Value of an xattr; size 0 asks only for *n. Returns 0, -ENOENT,
 * -ENODATA, -ERANGE (buf too small). */
int fs_getxattr(struct fs_store *s, uint64_t ino, const char *name,
		size_t name_len, void *buf, size_t size, size_t *n);

/* Names of the xattrs, each NUL-terminated, in byte order; size 0 asks
 * only for *n. Returns 0, -ENOENT, -ERANGE. */
int fs_listxattr(struct fs_store *s, uint64_t ino, char *buf, size_t size,
		 size_t *n);

/* SEEK_DATA / SEEK_HOLE from offset (whence: the SEEK_* constant).
 * Returns 0 with *out, -ENXIO (no data at or after offset / offset beyond
 * the size), -ENOENT, -EINVAL. */
int fs_lseek(struct fs_store *s, uint64_t ino, uint64_t offset, int whence,
	     uint64_t *out);

/*
 * F_GETLK: whether the lock want (of owner (want->node, want->owner), a
 * kind, type READ or WRITE, [start, end]) on ino would conflict with a
 * lock held. Returns 1 with the first conflicting lock in *info, 0 none,
 * -EINVAL (malformed want), -EIO.
 */
/* Whether the LOCK of proposal (node, epoch, seq) waits in ino's queue:
 * 1 yes, 0 no (granted, withdrawn or dropped), -EIO. */
int fs_lock_is_queued(struct fs_store *s, uint64_t ino, uint64_t node,
		      uint64_t epoch, uint64_t seq);

struct fs_lock_info {
	uint64_t node;
	uint64_t owner;
	uint64_t start;
	uint64_t end; /* inclusive; FS_LOCK_EOF */
	uint32_t pid;
	uint8_t kind;
	uint8_t type;
};
int fs_lock_test(struct fs_store *s, uint64_t ino,
		 const struct fs_lock_info *want, struct fs_lock_info *info);

/*
 * What a non-waiting LOCK of want (kind, type READ, WRITE or UNLOCK,
 * [start, end], owner (node, owner), pid) would do to ino's locks as the
 * local store holds them now, without changing anything:
 * FS_LOCK_PROBE_CHANGES (applying it would change the table, or the
 * probe cannot tell), FS_LOCK_PROBE_NOOP (it would succeed and leave
 * ino's record byte for byte as it is: the owner already holds exactly
 * that, or unlocks what it does not hold), FS_LOCK_PROBE_CONFLICT (it
 * would fail with EAGAIN and change nothing); -EINVAL (malformed want),
 * -EIO, -ENOMEM. After a read barrier the answer is linearizable
 * (docs/LOCKS.md, "Requests that change nothing").
 */
enum {
	FS_LOCK_PROBE_CHANGES = 0,
	FS_LOCK_PROBE_NOOP = 1,
	FS_LOCK_PROBE_CONFLICT = 2,
};
int fs_lock_probe(struct fs_store *s, uint64_t ino,
		  const struct fs_lock_info *want);

/* A node's lease record (docs/LOCKS.md, "Leases"). */
struct fs_lease {
	uint64_t node;
	uint64_t epoch;    /* the newest epoch the node announced */
	uint64_t renewals; /* LEASE commands applied, all epochs */
	uint64_t revoked;  /* its epochs up to this one are fenced; 0: none */
};

/* Each lease record, by node; fn returning non-zero stops with that
 * value. Returns 0, -EIO. */
int fs_lease_each(struct fs_store *s,
		  int (*fn)(void *ctx, const struct fs_lease *l), void *ctx);

struct fs_statfs {
	uint32_t block_size;
	uint64_t blocks;      /* capacity in blocks */
	uint64_t blocks_free;
	uint64_t files;       /* inode limit */
	uint64_t files_free;
	uint32_t name_max;
};
int fs_statfs(struct fs_store *s, struct fs_statfs *st);

/* Whether ino is in the orphan table, and which nodes hold it. */
int fs_orphan_holders(struct fs_store *s, uint64_t ino, uint64_t *holders,
		      uint32_t max, uint32_t *n);

/* fn(ctx, ino) for every orphan node holds, in inode order; fn runs with
 * the store's lock held shared (it must not apply) and returns non-zero
 * to stop (that value is returned). Returns 0, -EIO. */
int fs_orphans_held_by(struct fs_store *s, uint64_t node,
		       int (*fn)(void *ctx, uint64_t ino), void *ctx);

/* ---------------------------------------------------------------------- */
/* State hash.                                                             */

#define FS_HASH_BYTES 32u

/* SHA-256 over every replicated key and value of the store, in key order
 * (each as u32 length + bytes). Two replicas at the same applied index
 * must agree. Holds the store's lock shared meanwhile (apply waits). */
int fs_store_hash(struct fs_store *s, uint8_t out[FS_HASH_BYTES]);

/*
 * A hash of the subtree under ino: its inode, data, xattrs and, for a
 * directory, every entry (name, cookie) with the subtree hash of its
 * target. Equal subtrees hash equal on every replica, so a mismatch found
 * by fs_store_hash can be narrowed down to paths. -ENOENT, -EIO.
 */
int fs_store_subtree_hash(struct fs_store *s, uint64_t ino,
			  uint8_t out[FS_HASH_BYTES]);

/* ---------------------------------------------------------------------- */
/* Snapshots.                                                              */

/*
 * A snapshot stream is a sequence of chunks, each at most the size the
 * reader was given, tagged with the snapshot's index and term and its byte
 * offset in the stream, and carrying the CRC-32C of the stream up to its
 * end; the last chunk is flagged and counts the records. The layout of a
 * chunk is in docs/FS_STORE.md.
 */
/* The stream's format, in every chunk; another one is refused by the
 * installer (-EPROTONOSUPPORT). */
#define FS_SNAPSHOT_VERSION 1u
/* Smallest chunk buffer: it holds any one record (a 1 MiB block). */
#define FS_CHUNK_MIN (FS_BLOCK_SIZE_MAX + 8192u)

struct fs_snapshot;

/* Start a snapshot of the current state (a consistent view at the applied
 * index; apply may go on meanwhile, but no install may finish until
 * fs_snapshot_end). term: the term of that log entry. */
int fs_snapshot_begin(struct fs_store *s, uint64_t term,
		      struct fs_snapshot **out);
/* The applied index the snapshot is at. */
uint64_t fs_snapshot_index(const struct fs_snapshot *snap);
/* The next chunk into buf (size >= FS_CHUNK_MIN); *len gets its length,
 * *last whether it is the final one. */
int fs_snapshot_next(struct fs_snapshot *snap, uint8_t *buf, size_t size,
		     size_t *len, bool *last);
void fs_snapshot_end(struct fs_snapshot *snap);

struct fs_install;

/*
 * Install a snapshot into store s: a fresh store is built beside the
 * current one (an INSTALL marker names it), chunks must arrive in order,
 * each is validated (index, term, offset, checksum, record encoding).
 * fs_install_finish, after the last chunk, syncs the new store and
 * switches to it atomically; the old store is removed. A crash before the
 * switch leaves the old store (the next open removes the partial one and
 * reports it); a crash after it leaves the new one. Returns 0, or -EBADMSG
 * (a bad chunk: the install must be restarted), -EPROTONOSUPPORT (a
 * stream version this build does not know), -EIO, -ENOMEM.
 */
int fs_install_begin(struct fs_store *s, uint64_t index, uint64_t term,
		     struct fs_install **out);
int fs_install_chunk(struct fs_install *in, const uint8_t *chunk, size_t len);
int fs_install_finish(struct fs_install *in);
/* Abandon an install (removes the partial store); accepts NULL. */
void fs_install_abort(struct fs_install *in);

/*
 * Backups (docs/FS_STORE.md, "Backup files"): the store's state at its
 * applied index in a file with a version and checksums. Write: path must
 * not exist (-EEXIST); written beside it and linked into place once
 * synced. Restore: into a store that holds no filesystem yet (-EEXIST),
 * validated while installed beside it and switched only when the whole
 * file checked out: -EBADMSG (damaged or cut short: the store is
 * unchanged), -EPROTONOSUPPORT (another version), -errno. The duplicate
 * table is not restored (a restore starts a new cluster). One line in
 * err on failure.
 */
#define FS_BACKUP_VERSION 1u

struct fs_backup_info {
	uint64_t index; /* the applied index it holds */
	uint64_t term;  /* the term it was taken in */
	uint64_t bytes; /* the file's size */
};

int fs_backup_write(struct fs_store *s, uint64_t term, const char *path,
		    struct fs_backup_info *info, char *err, size_t err_size);
int fs_backup_restore(struct fs_store *s, const char *path,
		      struct fs_backup_info *info, char *err, size_t err_size);

/* Whether the last open found and removed an unfinished install; its
 * index and term. */
bool fs_store_interrupted_install(struct fs_store *s, uint64_t *index,
				  uint64_t *term);

/*
 * Check points (`raftfs fsck --cluster`): a CHECK command changes nothing,
 * and right after applying it each replica opens a view of its store
 * (fs_check_view_open, on the apply thread) so that every replica hashes
 * the same applied index while apply goes on. The hashes are those of
 * fs_store_hash and fs_store_subtree_hash; a directory's entries with
 * their subtree hashes narrow a mismatch down to paths. The view must be
 * closed before the store is closed or replaced by an install. Errors as
 * for the hashes (-ENOENT no such inode, -EIO, -ENOMEM).
 */
struct fs_check_view;

int fs_check_view_open(struct fs_store *s, struct fs_check_view **out);
/* The applied index the view shows. */
uint64_t fs_check_view_index(const struct fs_check_view *v);
/* Every key of the store (fs_store_hash at the view). */
int fs_check_view_hash(struct fs_check_view *v, uint8_t out[FS_HASH_BYTES]);
/*
 * The same hash, computed once per view: 0 with out when computed (or the
 * hash's error); -EINPROGRESS when not yet, and then *claim tells the
 * caller it must compute it now (fs_check_view_hash_fill, on a thread
 * that may take seconds), every other caller coming back later.
 */
int fs_check_view_hash_peek(struct fs_check_view *v,
			    uint8_t out[FS_HASH_BYTES], bool *claim);
void fs_check_view_hash_fill(struct fs_check_view *v);
/* The inode's own keys (attributes, xattrs, data or target, orphan
 * record), not its entries; *mode its mode (may be NULL). */
int fs_check_view_node_hash(struct fs_check_view *v, uint64_t ino,
			    uint8_t out[FS_HASH_BYTES], uint32_t *mode);
/* Each entry of directory ino in cookie order (without "." and ".."),
 * with its target's subtree hash; fn returning non-zero stops the walk
 * with that value. */
typedef int (*fs_check_entry_fn)(void *ctx, const char *name, size_t len,
				 uint64_t ino,
				 const uint8_t hash[FS_HASH_BYTES]);
int fs_check_view_entries(struct fs_check_view *v, uint64_t ino,
			  fs_check_entry_fn fn, void *ctx);
void fs_check_view_close(struct fs_check_view *v);

/* ---------------------------------------------------------------------- */
/* The proposer: how the FUSE front end reaches the log.                   */

/*
 * The front end turns each change into an encoded command and hands it to
 * a proposer; it never talks to Raft itself. Two implementations: the
 * local proposer below (applies to a store on its own thread, no
 * replication; tests and single-node mounts) and the Raft runtime (the
 * daemon's, same interface).
 *
 * Protocol of one change:
 *   1. begin(): the proposer assigns the proposal id (node, epoch, seq and
 *      its low-water mark) and reads its clock. The front end then fills
 *      the command, encodes it and MUST call submit() once with that id.
 *   2. submit(): the proposer copies the encoded bytes (the caller frees
 *      its buffer when submit returns). A negative return (-EIO: stopped,
 *      -ENOMEM) means the command was not proposed: done is never called
 *      and the id's outcome is known. Return 0: done is called exactly
 *      once, later, on a proposer thread (never from inside submit), with
 *      err 0 and the command's result once it has been applied to the
 *      local store, or with err -EIO when its outcome is unknown (leader
 *      lost, the proposer gave up, the proposer is stopping).
 * A read: barrier() calls done(arg, 0) once reads of the local store may
 * be served linearizably (every change acknowledged before the barrier
 * began is applied locally), or done(arg, -EIO); exactly once; possibly
 * on the calling thread before barrier returns. A negative return means
 * done will not be called.
 *
 * The callbacks must not block for long: they run on the proposer's
 * apply/driver thread. The front end's callbacks read the store and send
 * the FUSE reply there, nothing more. Every function may be called from
 * any thread at the same time.
 */
struct fs_proposer {
	void *ctx;        /* passed to every function */
	uint64_t node_id; /* this node (holder id of open-but-unlinked files) */
	int (*begin)(void *ctx, struct raft_proposal *proposal,
		     struct fs_time *clock);
	int (*submit)(void *ctx, const struct raft_proposal_id *id,
		      const void *cmd, size_t size,
		      void (*done)(void *arg, int err,
				   const struct fs_result *res),
		      void *arg);
	int (*barrier)(void *ctx, void (*done)(void *arg, int err), void *arg);
};

/*
 * The local proposer: commands are applied to store s in submission order
 * by one apply thread of its own (index = applied + 1), the barrier is
 * trivial (answered at once: every acknowledged change is already
 * applied), the clock is CLOCK_REALTIME. node and epoch (non-zero) form the
 * proposal ids; epoch must be larger than in any earlier run over the same
 * store, or the store's duplicate table answers old results. A store-level
 * apply error stops it: that command and every later one gets -EIO and
 * fs_local_proposer_error tells the error. Not replicated, not durable (the
 * store is written without sync): for tests and single-node mounts.
 */
struct fs_local_proposer;

/* Start the apply thread. Returns 0, -EINVAL, -ENOMEM, or a pthread error
 * (negative). */
int fs_local_proposer_start(struct fs_store *s, uint64_t node, uint64_t epoch,
			    struct fs_local_proposer **out);
/* The interface to hand to the front end (valid until stop). */
void fs_local_proposer_get(struct fs_local_proposer *lp,
			   struct fs_proposer *out);
/* 0, or the store error that stopped it. */
int fs_local_proposer_error(struct fs_local_proposer *lp);
/* Fault injection for tests: while held, submitted commands wait in the
 * queue, neither applied nor answered (a proposer that lost its leader);
 * releasing the hold applies them in order. Barriers are not held. */
void fs_local_proposer_hold(struct fs_local_proposer *lp, bool hold);
/* Apply what was submitted, stop the thread, free; accepts NULL. Nobody
 * may call the interface any more. */
void fs_local_proposer_stop(struct fs_local_proposer *lp);

/*
 * The Raft proposer (fs/raft_proposer.c): the filesystem replicated by a
 * struct raft_runtime (raft/raft.h). Order of use:
 *   fs_raft_create(store, node, epoch, timeout) -> fr
 *   fs_raft_fsm(fr, &opts.fsm); raft_runtime_create(&opts, &rt, ...)
 *   fs_raft_attach(fr, rt); raft_runtime_start(rt)
 *   fs_raft_proposer(fr, &p) for the FUSE front end (fs_fuse_mount)
 *   ... raft_runtime_destroy(rt) (answers every waiter), fs_raft_destroy.
 * The state machine applies normal entries as fs commands and moves the
 * applied index over no-op and configuration entries; its errors stop the
 * runtime. It also supports snapshots (raft_fsm's optional half): sync is
 * fs_store_sync, a streamed view is an fs_snapshot at the applied index
 * (one stream chunk per fs chunk, FS_CHUNK_MIN bytes at most), an install
 * is an fs_install; an install finishes only while no snapshot or check
 * view is in use (idle check views are closed; otherwise -EBUSY and the
 * leader retries). A change waits at most timeout_ms for its commit and local
 * apply (the runtime retries it with the same id meanwhile), then gets
 * -EIO (outcome unknown); a barrier is the runtime's ReadIndex with the
 * same bound. node and epoch as for the local proposer: the epoch must
 * grow on every start of the node.
 */
struct fs_raft;
struct raft_fsm;
struct raft_runtime;

/* 0, -EINVAL, -ENOMEM. */
int fs_raft_create(struct fs_store *s, uint64_t node, uint64_t epoch,
		   uint32_t timeout_ms, struct fs_raft **out);
/* The state machine to put in raft_runtime_options.fsm. */
void fs_raft_fsm(struct fs_raft *fr, struct raft_fsm *out);
/* The runtime to propose to (before it starts; changes before this get
 * -EIO). */
void fs_raft_attach(struct fs_raft *fr, struct raft_runtime *rt);

/* fs_backup_write of the store from any thread, with the store's view
 * counted like a snapshot's (no install switches under it). */
int fs_raft_backup(struct fs_raft *fr, uint64_t term, const char *path,
		   struct fs_backup_info *info, char *err, size_t err_size);
/* The interface for the front end (valid until fs_raft_destroy). */
void fs_raft_proposer(struct fs_raft *fr, struct fs_proposer *out);
/* After the runtime was destroyed (closes every check view); accepts
 * NULL. */
void fs_raft_destroy(struct fs_raft *fr);
/*
 * The view this node opened when it applied check point check_id
 * (fs_check_point): 0 with *view, to be handed back with
 * fs_raft_check_release; -EAGAIN when this node has not applied it (yet,
 * or ever: views are kept for 10 minutes, 8 at most). Any thread.
 */
int fs_raft_check_acquire(struct fs_raft *fr, uint64_t check_id,
			  struct fs_check_view **view);
void fs_raft_check_release(struct fs_raft *fr, struct fs_check_view *view);

/*
 * Format a new filesystem through proposer p: propose INIT (which must be
 * the first fs command of a log) and wait for its outcome on the calling
 * thread (not a proposer thread). Returns 0, -EEXIST when the filesystem
 * was formatted already (a second INIT changes nothing), the proposer's
 * error (-EIO: outcome unknown; retry), or -EINVAL for bad options.
 */
struct fs_format_options {
	uint8_t fs_id[16];       /* the filesystem's id */
	uint32_t block_size;     /* 0: FS_BLOCK_SIZE_DEFAULT */
	uint64_t capacity_bytes; /* what statfs reports; ENOSPC beyond */
	uint64_t max_inodes;
	uint32_t name_max;       /* 0: FS_NAME_MAX */
	uint32_t mode;           /* the root directory's permission bits */
	uint32_t uid, gid;       /* its owner */
};

int fs_format(const struct fs_proposer *p, const struct fs_format_options *o);

/* Propose FEATURE: raise the cluster's feature level to level (every
 * member must support it: the caller asked them) and wait: 0, -EALREADY
 * (it was at least that already), -EOPNOTSUPP (refused at propose) or the
 * proposer's error. */
int fs_raise_feature_level(const struct fs_proposer *p, uint32_t level);

/* Propose a check point (FS_OP_CHECK) with this id (non-zero) and wait
 * until this node applied it, as fs_format. */
int fs_check_point(const struct fs_proposer *p, uint64_t check_id);
/*
 * Propose RELEASE_ALL through p (this node holds no orphan open: it just
 * started) and wait for its outcome on the calling thread. Returns 0 or
 * the proposer's error (-EIO: outcome unknown).
 */
int fs_release_all(const struct fs_proposer *p);

/*
 * The lease keeper (fs/lease.c, docs/LOCKS.md): a thread that renews this
 * node's lease through p every lease_ms / 3 and, while is_leader says this
 * node leads, proposes LEASE_EXPIRE for every other node whose renewals it
 * has not seen applied for lease_ms (counted from when it became leader:
 * a new leader first waits a full lease period). log as in
 * fs_fuse_config (may be NULL).
 */
struct fs_lease_options {
	uint32_t lease_ms; /* 0: FS_LEASE_DEFAULT_MS */
	bool (*is_leader)(void *ctx);
	void *ctx;
	void (*log)(void *ctx, int level, const char *line);
	void *log_ctx;
};
#define FS_LEASE_DEFAULT_MS 10000u

struct fs_lease_keeper;

/* 0, -EINVAL, -ENOMEM, or a pthread error (negative). */
int fs_lease_keeper_start(struct fs_store *s, const struct fs_proposer *p,
			  const struct fs_lease_options *o,
			  struct fs_lease_keeper **out);
/* Stop the thread, wait (bounded) for the proposals it made; accepts
 * NULL. Before the proposer stops. */
void fs_lease_keeper_stop(struct fs_lease_keeper *k);

/* ---------------------------------------------------------------------- */
/* The FUSE front end (docs/FUSE.md).                                      */

/*
 * A FUSE low-level session over a store and a proposer. Changes become
 * commands (one per request; one per write of at most FS_WRITE_MAX bytes)
 * and are answered from the proposer's completion callback; reads wait for
 * a barrier and are served from the local store; statfs and the kernel's
 * security.capability lookups are served from the local store at once.
 * libfuse worker threads never wait for the cluster: a handler validates,
 * submits and returns. A timer thread answers EIO to every request still
 * unanswered after op_timeout_ms; a late completion is then dropped, so
 * each request is answered exactly once.
 *
 * Mount: default_permissions, attribute and entry timeouts 0, no writeback
 * cache, no kernel page cache kept across opens; FUSE_CAP_DONT_MASK is not
 * used (the kernel applies the umask before creating).
 */
struct fs_fuse_config {
	const char *mountpoint;
	uint32_t op_timeout_ms; /* 0: 10,000 */
	unsigned max_threads;   /* libfuse workers; 0: libfuse's default */
	bool allow_other;       /* -o allow_other (other users may enter) */
	bool debug;             /* libfuse's request trace on stderr */
	/* Kernel caches (docs/FUSE.md): false, the default, linearizable
	 * (nothing cached that could go stale unseen, pages kept across
	 * opens when the file did not change); true (-o cache=relaxed):
	 * attributes and entries cached for cache_timeout_s seconds (0: 10)
	 * and invalidated on every change applied from another node. */
	bool cache_relaxed;
	uint32_t cache_timeout_s;
	/* One line (level 0 error .. 3 debug) for events worth a log line
	 * (requests timed out); from the front end's threads; NULL: none. */
	void (*log)(void *ctx, int level, const char *line);
	void *log_ctx;
};

struct fs_fuse;

/*
 * Create the session and mount it. store and proposer must outlive the
 * session (fs_fuse_destroy); the proposer struct is copied. Returns 0,
 * -EINVAL (bad config, store not formatted), -ENOMEM, -EIO (libfuse could
 * not create or mount the session; it printed why).
 */
int fs_fuse_mount(struct fs_store *store, const struct fs_proposer *proposer,
		  const struct fs_fuse_config *cfg, struct fs_fuse **out);

/*
 * Serve requests until the filesystem is unmounted (fusermount3 -u) or
 * fs_fuse_exit is called; with handle_signals, SIGTERM, SIGINT and SIGHUP
 * end it too (libfuse's handlers, removed on return). Returns 0, or a
 * negative errno from libfuse's loop.
 */
int fs_fuse_run(struct fs_fuse *f, bool handle_signals);

/* Ask fs_fuse_run to return (any thread). */
void fs_fuse_exit(struct fs_fuse *f);

/*
 * Unmount, wait until the proposer has called back for every submitted
 * request (bounded by twice the operation timeout), free; accepts NULL.
 */
void fs_fuse_destroy(struct fs_fuse *f);

/* ---------------------------------------------------------------------- */
/* Offline check (raftfs fsck --data DIR; fs/fsck*.c, docs/FSCK.md).        */

/*
 * The repair of one problem that a cluster can apply through the log when
 * the problem is on every replica (fsck --cluster --repair). Repairs come
 * in phases: those of phase 1 (entry keys, records of missing inodes,
 * data beyond the size) change what the later ones count, so only the
 * lowest phase found is applied before the tree is checked again.
 */
enum fs_fix_kind {
	FS_FIX_NONE = 0,
	FS_FIX_ENTRY_NAME = 1,   /* dir, cookie */
	FS_FIX_ENTRY_COOKIE = 2, /* dir, name */
	FS_FIX_ENTRY_REMOVE = 3, /* dir, name, ino (missing) */
	FS_FIX_FREE = 4,         /* ino (missing) */
	FS_FIX_DATA = 5,         /* ino */
	FS_FIX_LOST_FOUND = 6,   /* ino, seen_nlink, seen_ctime */
	FS_FIX_LINKS = 7,        /* ino, seen_nlink, want_nlink */
	FS_FIX_COUNTERS = 8,
};

struct fs_fsck_fix {
	uint8_t kind; /* enum fs_fix_kind */
	uint64_t ino;
	uint64_t dir;
	uint64_t cookie;
	const uint8_t *name; /* during the callback only */
	size_t name_len;
	uint32_t seen_nlink;
	uint32_t want_nlink;
	struct fs_time seen_ctime;
};

/* 1..3 (0 for FS_FIX_NONE). */
int fs_fix_phase(const struct fs_fsck_fix *f);
/* What the repair does, in a few words ("link count recounted"). */
const char *fs_fix_describe(const struct fs_fsck_fix *f);
/*
 * Propose the repair through p and wait for it on the calling thread (as
 * fs_format). Returns 0 (applied), -ESTALE (the state changed since the
 * check: nothing done), another command error (negative errno: nothing
 * done), or the proposer's error (-EIO: outcome unknown).
 */
int fs_fix_propose(const struct fs_proposer *p, const struct fs_fsck_fix *f);

/* One problem found. Strings live during the callback only. */
struct fs_fsck_problem {
	const char *store;  /* "fs" or "log" */
	const char *code;   /* short stable name: "nlink", "unreachable", ... */
	uint64_t ino;       /* the inode concerned, 0 when none */
	const char *path;   /* its path from the root, NULL when unknown */
	uint64_t index;     /* log problems: the log index, 0 when none */
	const char *detail; /* one line: what is wrong */
	struct fs_fsck_fix fix; /* FS_FIX_NONE: no repair through the log */
};

struct fs_fsck_options {
	/* Inodes whose incoming entries are counted per pass over the
	 * entries (memory: about 32 bytes each); 0: FS_FSCK_WINDOW. */
	uint64_t window_inodes;
	void (*problem)(void *ctx, const struct fs_fsck_problem *p);
	/* Optional: phase name, records done, records expected (0: unknown),
	 * called every 65,536 records. */
	void (*progress)(void *ctx, const char *phase, uint64_t done,
			 uint64_t total);
	void *ctx;
};
#define FS_FSCK_WINDOW (2u * 1024u * 1024u)

struct fs_fsck_summary {
	uint64_t problems;       /* fs and log problems reported */
	bool formatted;
	uint64_t applied_index;  /* the fs store's */
	uint64_t inodes;         /* inode records */
	uint64_t entries;        /* directory entries (by name) */
	uint64_t blocks;         /* data blocks */
	uint64_t passes;         /* passes over the entries */
	bool log_checked;        /* fs_fsck_data_dir: the log store too */
	bool log_has_snapshot;
	uint64_t log_snapshot_index;
	uint64_t log_first_index; /* 0: no entries */
	uint64_t log_last_index;
	uint64_t log_segments;    /* segment files of the log store */
};

/*
 * Check every structural invariant of the fs store in directory fs_dir
 * (docs/FSCK.md lists them), reporting each problem through opt->problem
 * with the inode and path it concerns. Reads only (nothing is repaired;
 * LevelDB may write its own bookkeeping files); the node must be stopped.
 * Memory is bounded by the window and the number of directories, not the
 * number of inodes. Returns 0 when the check ran to its end (*sum says how
 * many problems), or a negative errno when it could not check, with one
 * line in err: -ENOENT (no store), -EIO (unreadable: LevelDB refused to
 * open or read it, or in use), -EUCLEAN (no or malformed superblock),
 * -EPROTONOSUPPORT (a format version this build does not know), -ENOMEM.
 */
int fs_fsck_store(const char *fs_dir, const struct fs_fsck_options *opt,
		  struct fs_fsck_summary *sum, char *err, size_t err_size);

/*
 * The same check over a check point's view (fs_check_view_open) of a
 * running node's store: what is found there is on every replica whose
 * state hash at that index is the same. Same returns as fs_fsck_store.
 */
struct fs_check_view;
int fs_fsck_view(struct fs_check_view *v, const struct fs_fsck_options *opt,
		 struct fs_fsck_summary *sum, char *err, size_t err_size);

/*
 * Check a stopped node's data directory (docs/DATA_DIR.md): the fs store
 * in data_dir/fs, the log store in data_dir/log, and the two against each
 * other (the fs store's applied index within the log: not beyond its last
 * index, not below its snapshot). Same returns as fs_fsck_store.
 */
int fs_fsck_data_dir(const char *data_dir, const struct fs_fsck_options *opt,
		     struct fs_fsck_summary *sum, char *err, size_t err_size);

/*
 * Write data_dir/RESYNC (synced, atomically: temporary file, fsync,
 * rename, fsync of data_dir): on its next start the node discards its fs
 * store and installs a snapshot from the cluster. data_dir must hold a
 * log/ or fs/ store. Returns 0, -ENOENT (not a data dir), -errno, with one
 * line in err.
 */
int fs_data_dir_request_resync(const char *data_dir, char *err,
			       size_t err_size);

#endif
