/* The wire codec (net/codec.c): round trips of every message and every
 * rejection the decoder makes. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "net/net.h"
#include "tests/lib/test_main.h"

/* Big-endian helpers to forge frames. */
static void be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static void be64(uint8_t *p, uint64_t v)
{
	be32(p, (uint32_t)(v >> 32));
	be32(p + 4, (uint32_t)v);
}

/* Payload byte i of the entry with this index: a pattern the receiver can
 * check without keeping the original. */
static uint8_t pattern(uint64_t index, uint32_t i)
{
	return (uint8_t)(index * 31u + i * 7u + 1u);
}

static int fill_payload(void *ctx, const struct raft_entry *e, void *dst)
{
	int *calls = ctx;
	uint8_t *d = dst;
	for (uint32_t i = 0; i < e->size; i++)
		d[i] = pattern(e->index, i);
	(*calls)++;
	return 0;
}

static int failing_payload(void *ctx, const struct raft_entry *e, void *dst)
{
	(void)ctx;
	(void)e;
	(void)dst;
	return -EIO;
}

static struct raft_message base_message(uint8_t type)
{
	struct raft_message m = {
		.type = type,
		.from = 1,
		.to = 2,
		.term = 0x0102030405060708ull,
		.index = 77,
		.log_term = 6,
		.commit = 70,
		.context = 0xdeadbeefcafef00dull,
		.hint_index = 12,
		.hint_term = 3,
	};
	return m;
}

/* Encode m into a fresh buffer. */
static uint8_t *encode(const struct raft_message *m, size_t *size)
{
	int calls = 0;
	assert_int_equal(net_raft_frame_size(m, size), 0);
	uint8_t *buf = malloc(*size);
	assert_non_null(buf);
	assert_int_equal(net_raft_frame_encode(m, fill_payload, &calls, buf,
					       *size),
			 0);
	return buf;
}

struct decoded {
	struct raft_message m;
	struct raft_entry entries[64];
	struct raft_snapshot_meta snap;
};

/* Parse the frame and decode its body; returns the decoder's result. */
static int decode(const uint8_t *buf, size_t size, struct decoded *d)
{
	struct net_frame f;
	size_t frame_bytes;
	const char *why = NULL;
	int rc = net_frame_parse(buf, size, &f, &frame_bytes, &why);
	if (rc < 0)
		return rc;
	assert_int_equal(frame_bytes, size);
	assert_int_equal(f.type, NET_FRAME_RAFT);
	rc = net_raft_decode(f.body, f.body_bytes, &d->m, d->entries, 64,
			     &d->snap, &why);
	if (rc < 0)
		assert_non_null(why);
	return rc;
}

static void assert_same_header(const struct raft_message *a,
			       const struct raft_message *b)
{
	assert_int_equal(a->type, b->type);
	assert_int_equal(a->from, b->from);
	assert_int_equal(a->to, b->to);
	assert_int_equal(a->term, b->term);
	assert_int_equal(a->index, b->index);
	assert_int_equal(a->log_term, b->log_term);
	assert_int_equal(a->commit, b->commit);
	assert_int_equal(a->context, b->context);
	assert_int_equal(a->hint_index, b->hint_index);
	assert_int_equal(a->hint_term, b->hint_term);
	assert_int_equal(a->reject, b->reject);
	assert_int_equal(a->transfer, b->transfer);
	assert_int_equal(a->n_entries, b->n_entries);
}

static void test_every_type_without_entries_round_trips(void **state)
{
	(void)state;
	for (uint8_t t = 1; t <= RAFT_MSG_TYPE_MAX; t++) {
		if (t == RAFT_MSG_SNAPSHOT)
			continue;
		struct raft_message m = base_message(t);
		m.reject = t % 2;
		m.transfer = t == RAFT_MSG_VOTE;
		size_t size;
		uint8_t *buf = encode(&m, &size);
		assert_int_equal(size, NET_FRAME_HEADER_BYTES +
					       NET_RAFT_FIXED_BYTES);
		struct decoded d;
		assert_int_equal(decode(buf, size, &d), 0);
		assert_same_header(&m, &d.m);
		assert_null(d.m.entries);
		assert_null(d.m.snapshot);
		free(buf);
	}
}

static void test_append_entries_payloads_from_callback(void **state)
{
	(void)state;
	struct raft_entry e[4] = {
		{.term = 6, .index = 78, .type = RAFT_ENTRY_NORMAL, .size = 5000},
		{.term = 6, .index = 79, .type = RAFT_ENTRY_NOOP, .size = 0},
		{.term = 7, .index = 80, .type = RAFT_ENTRY_CONFIG, .size = 3,
		 .data = "abc"},
		{.term = 7, .index = 81, .type = RAFT_ENTRY_NORMAL, .size = 1},
	};
	struct raft_message m = base_message(RAFT_MSG_APPEND);
	m.entries = e;
	m.n_entries = 4;
	size_t size;
	int calls = 0;
	assert_int_equal(net_raft_frame_size(&m, &size), 0);
	uint8_t *buf = malloc(size);
	assert_int_equal(net_raft_frame_encode(&m, fill_payload, &calls, buf,
					       size),
			 0);
	assert_int_equal(calls, 2); /* the NULL-data entries with bytes */
	struct decoded d;
	assert_int_equal(decode(buf, size, &d), 0);
	assert_same_header(&m, &d.m);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(d.entries[i].term, e[i].term);
		assert_int_equal(d.entries[i].index, e[i].index);
		assert_int_equal(d.entries[i].type, e[i].type);
		assert_int_equal(d.entries[i].size, e[i].size);
	}
	for (uint32_t i = 0; i < 5000; i++)
		assert_int_equal(((const uint8_t *)d.entries[0].data)[i],
				 pattern(78, i));
	assert_null(d.entries[1].data);
	assert_memory_equal(d.entries[2].data, "abc", 3);
	assert_int_equal(((const uint8_t *)d.entries[3].data)[0],
			 pattern(81, 0));
	free(buf);
}

static void test_propose_round_trips(void **state)
{
	(void)state;
	struct raft_entry e[2] = {
		{.type = RAFT_ENTRY_NORMAL, .size = 2, .data = "hi"},
		{.type = RAFT_ENTRY_NORMAL, .size = 1, .data = "x"},
	};
	struct raft_message m = base_message(RAFT_MSG_PROPOSE);
	m.entries = e;
	m.n_entries = 2;
	size_t size;
	uint8_t *buf = encode(&m, &size);
	struct decoded d;
	assert_int_equal(decode(buf, size, &d), 0);
	assert_int_equal(d.m.n_entries, 2);
	assert_memory_equal(d.entries[0].data, "hi", 2);
	assert_memory_equal(d.entries[1].data, "x", 1);
	free(buf);
}

static struct raft_snapshot_meta full_snapshot(void)
{
	struct raft_snapshot_meta s = {.index = 1000, .term = 9,
				       .conf_index = 900};
	s.conf.n = RAFT_MAX_MEMBERS;
	for (uint32_t i = 0; i < RAFT_MAX_MEMBERS; i++) {
		struct raft_member *mb = &s.conf.members[i];
		mb->id = 100 + i;
		mb->role = i % 3 ? RAFT_VOTER : RAFT_LEARNER;
		/* The longest address: 63 characters. */
		memset(mb->address, 'a' + (char)i, RAFT_MAX_ADDRESS - 1);
		mb->address[RAFT_MAX_ADDRESS - 1] = '\0';
	}
	strcpy(s.conf.members[0].address, "127.0.0.1:7000");
	return s;
}

static void test_snapshot_with_full_configuration_round_trips(void **state)
{
	(void)state;
	struct raft_snapshot_meta s = full_snapshot();
	struct raft_message m = base_message(RAFT_MSG_SNAPSHOT);
	m.snapshot = &s;
	size_t size;
	uint8_t *buf = encode(&m, &size);
	assert_true(size <= NET_FRAME_HEADER_BYTES + NET_RAFT_FIXED_BYTES +
				    NET_SNAPSHOT_MAX_BYTES);
	struct decoded d;
	assert_int_equal(decode(buf, size, &d), 0);
	assert_ptr_equal(d.m.snapshot, &d.snap);
	assert_int_equal(d.snap.index, 1000);
	assert_int_equal(d.snap.term, 9);
	assert_int_equal(d.snap.conf_index, 900);
	assert_int_equal(d.snap.conf.n, RAFT_MAX_MEMBERS);
	for (uint32_t i = 0; i < RAFT_MAX_MEMBERS; i++) {
		assert_int_equal(d.snap.conf.members[i].id, 100 + i);
		assert_int_equal(d.snap.conf.members[i].role,
				 s.conf.members[i].role);
		assert_string_equal(d.snap.conf.members[i].address,
				    s.conf.members[i].address);
	}
	free(buf);
}

static void test_largest_batch_fits_a_frame(void **state)
{
	(void)state;
	/* RAFT_MAX_BATCH_ENTRIES entries carrying RAFT_MAX_BATCH_BYTES. */
	struct raft_entry *e = calloc(RAFT_MAX_BATCH_ENTRIES, sizeof(*e));
	uint32_t each = RAFT_MAX_BATCH_BYTES / RAFT_MAX_BATCH_ENTRIES;
	for (uint32_t i = 0; i < RAFT_MAX_BATCH_ENTRIES; i++)
		e[i] = (struct raft_entry){.term = 1, .index = 78 + i,
					   .type = RAFT_ENTRY_NORMAL,
					   .size = each};
	struct raft_message m = base_message(RAFT_MSG_APPEND);
	m.entries = e;
	m.n_entries = RAFT_MAX_BATCH_ENTRIES;
	size_t size;
	assert_int_equal(net_raft_frame_size(&m, &size), 0);
	assert_true(size <= NET_MAX_FRAME_BYTES);
	uint8_t *buf = encode(&m, &size);
	struct net_frame f;
	size_t fb;
	assert_int_equal(net_frame_parse(buf, size, &f, &fb, NULL), 0);
	struct raft_entry *out = calloc(RAFT_MAX_BATCH_ENTRIES, sizeof(*out));
	struct raft_message d;
	assert_int_equal(net_raft_decode(f.body, f.body_bytes, &d, out,
					 RAFT_MAX_BATCH_ENTRIES, NULL, NULL),
			 0);
	assert_int_equal(d.n_entries, RAFT_MAX_BATCH_ENTRIES);
	assert_int_equal(out[RAFT_MAX_BATCH_ENTRIES - 1].index,
			 78 + RAFT_MAX_BATCH_ENTRIES - 1);
	free(out);
	free(buf);
	free(e);
}

/* ---------------------------------------------------------------------- */
/* Encoder rejections.                                                    */

static void test_encoder_rejects_invalid_messages(void **state)
{
	(void)state;
	size_t size;
	struct raft_message m = base_message(RAFT_MSG_VOTE);
	m.type = 0;
	assert_int_equal(net_raft_frame_size(&m, &size), -EINVAL);
	m.type = RAFT_MSG_TYPE_MAX + 1;
	assert_int_equal(net_raft_frame_size(&m, &size), -EINVAL);
	m = base_message(RAFT_MSG_VOTE);
	m.from = 0;
	assert_int_equal(net_raft_frame_size(&m, &size), -EINVAL);
	m = base_message(RAFT_MSG_VOTE);
	m.to = m.from;
	assert_int_equal(net_raft_frame_size(&m, &size), -EINVAL);
	struct raft_entry e = {.type = RAFT_ENTRY_NORMAL, .size = 1,
			       .data = "x"};
	m = base_message(RAFT_MSG_VOTE);
	m.entries = &e;
	m.n_entries = 1;
	assert_int_equal(net_raft_frame_size(&m, &size), -EINVAL);
	m = base_message(RAFT_MSG_SNAPSHOT);
	assert_int_equal(net_raft_frame_size(&m, &size), -EINVAL);
	m = base_message(RAFT_MSG_APPEND);
	e.size = RAFT_MAX_ENTRY_BYTES + 1;
	m.entries = &e;
	m.n_entries = 1;
	assert_int_equal(net_raft_frame_size(&m, &size), -EMSGSIZE);
	e.size = 1;
	e.type = 9;
	assert_int_equal(net_raft_frame_size(&m, &size), -EINVAL);
	m.n_entries = RAFT_MAX_BATCH_ENTRIES + 1;
	assert_int_equal(net_raft_frame_size(&m, &size), -EMSGSIZE);
}

static void test_encoder_rejects_batch_beyond_limit(void **state)
{
	(void)state;
	struct raft_entry e[5];
	for (int i = 0; i < 5; i++)
		e[i] = (struct raft_entry){.term = 1, .index = 78 + (uint64_t)i,
					   .type = RAFT_ENTRY_NORMAL,
					   .size = RAFT_MAX_ENTRY_BYTES};
	struct raft_message m = base_message(RAFT_MSG_APPEND);
	m.entries = e;
	m.n_entries = 4; /* 4 * (1 MiB + 4 KiB) > 4 MiB */
	size_t size;
	assert_int_equal(net_raft_frame_size(&m, &size), -EMSGSIZE);
}

static void test_encoder_needs_payload_source(void **state)
{
	(void)state;
	struct raft_entry e = {.term = 1, .index = 78,
			       .type = RAFT_ENTRY_NORMAL, .size = 8};
	struct raft_message m = base_message(RAFT_MSG_APPEND);
	m.entries = &e;
	m.n_entries = 1;
	size_t size;
	assert_int_equal(net_raft_frame_size(&m, &size), 0);
	uint8_t *buf = malloc(size);
	assert_int_equal(net_raft_frame_encode(&m, NULL, NULL, buf, size),
			 -EINVAL);
	assert_int_equal(net_raft_frame_encode(&m, failing_payload, NULL, buf,
					       size),
			 -EIO);
	int calls = 0;
	assert_int_equal(net_raft_frame_encode(&m, fill_payload, &calls, buf,
					       size - 1),
			 -ENOSPC);
	free(buf);
}

static void test_encoder_rejects_bad_configuration(void **state)
{
	(void)state;
	struct raft_snapshot_meta s = full_snapshot();
	struct raft_message m = base_message(RAFT_MSG_SNAPSHOT);
	m.snapshot = &s;
	size_t size;
	s.conf.members[3].address[RAFT_MAX_ADDRESS - 1] = 'x'; /* no NUL */
	assert_int_equal(net_raft_frame_size(&m, &size), -EINVAL);
	s = full_snapshot();
	s.conf.members[2].id = s.conf.members[1].id;
	assert_int_equal(net_raft_frame_size(&m, &size), -EINVAL);
	s = full_snapshot();
	s.conf.n = RAFT_MAX_MEMBERS + 1;
	assert_int_equal(net_raft_frame_size(&m, &size), -EMSGSIZE);
}

/* ---------------------------------------------------------------------- */
/* Frame header rejections.                                               */

static void header(uint8_t *buf, uint8_t type, uint32_t len)
{
	be32(buf, NET_FRAME_MAGIC);
	buf[4] = NET_PROTOCOL_VERSION;
	buf[5] = type;
	buf[6] = buf[7] = 0;
	be32(buf + 8, len);
}

static int parse(const uint8_t *buf, size_t len, size_t *need)
{
	struct net_frame f;
	const char *why = NULL;
	int rc = net_frame_parse(buf, len, &f, need, &why);
	if (rc < 0)
		assert_non_null(why);
	return rc;
}

static void test_header_rejects_bad_magic_at_first_byte(void **state)
{
	(void)state;
	uint8_t buf[NET_FRAME_HEADER_BYTES];
	size_t need;
	header(buf, NET_FRAME_PING, 0);
	buf[0] = 'G'; /* "GET / HTTP/1.1" */
	assert_int_equal(parse(buf, 1, &need), -EPROTO);
	header(buf, NET_FRAME_PING, 0);
	buf[3] ^= 1;
	assert_int_equal(parse(buf, 3, &need), -EAGAIN);
	assert_int_equal(parse(buf, 4, &need), -EPROTO);
}

static void test_header_rejects_unknown_version(void **state)
{
	(void)state;
	uint8_t buf[NET_FRAME_HEADER_BYTES];
	size_t need;
	header(buf, NET_FRAME_PING, 0);
	buf[4] = NET_PROTOCOL_VERSION + 1;
	assert_int_equal(parse(buf, 5, &need), -EPROTO);
	buf[4] = 0;
	assert_int_equal(parse(buf, sizeof(buf), &need), -EPROTO);
}

static void test_header_rejects_unknown_type_and_flags(void **state)
{
	(void)state;
	uint8_t buf[NET_FRAME_HEADER_BYTES];
	size_t need;
	header(buf, 0, 0);
	assert_int_equal(parse(buf, sizeof(buf), &need), -EPROTO);
	header(buf, NET_FRAME_TYPE_MAX + 1, 0);
	assert_int_equal(parse(buf, 6, &need), -EPROTO);
	header(buf, NET_FRAME_PING, 0);
	buf[7] = 1;
	assert_int_equal(parse(buf, sizeof(buf), &need), -EPROTO);
}

static void test_header_rejects_4gib_length_before_the_body(void **state)
{
	(void)state;
	uint8_t buf[NET_FRAME_HEADER_BYTES];
	size_t need;
	header(buf, NET_FRAME_RAFT, 0xffffffffu);
	assert_int_equal(parse(buf, sizeof(buf), &need), -EMSGSIZE);
	header(buf, NET_FRAME_RAFT,
	       NET_MAX_FRAME_BYTES - NET_FRAME_HEADER_BYTES + 1);
	assert_int_equal(parse(buf, sizeof(buf), &need), -EMSGSIZE);
	header(buf, NET_FRAME_RAFT,
	       NET_MAX_FRAME_BYTES - NET_FRAME_HEADER_BYTES);
	assert_int_equal(parse(buf, sizeof(buf), &need), -EAGAIN);
	assert_int_equal(need, NET_MAX_FRAME_BYTES);
	header(buf, NET_FRAME_ADMIN_REQUEST,
	       NET_ADMIN_FIXED_BYTES + NET_MAX_ADMIN_PAYLOAD_BYTES + 1);
	assert_int_equal(parse(buf, sizeof(buf), &need), -EMSGSIZE);
	header(buf, NET_FRAME_PING, 1);
	assert_int_equal(parse(buf, sizeof(buf), &need), -EMSGSIZE);
}

static void test_every_truncation_is_incomplete(void **state)
{
	(void)state;
	struct raft_entry e = {.term = 1, .index = 78,
			       .type = RAFT_ENTRY_NORMAL, .size = 40,
			       .data = "0123456789012345678901234567890123456789"};
	struct raft_message m = base_message(RAFT_MSG_APPEND);
	m.entries = &e;
	m.n_entries = 1;
	size_t size;
	uint8_t *buf = encode(&m, &size);
	for (size_t len = 0; len < size; len++) {
		size_t need = 0;
		/* An exact-size copy so ASan sees any read past len. */
		uint8_t *part = malloc(len ? len : 1);
		memcpy(part, buf, len);
		assert_int_equal(parse(part, len, &need), -EAGAIN);
		assert_int_equal(need, len < NET_FRAME_HEADER_BYTES
					       ? NET_FRAME_HEADER_BYTES
					       : size);
		free(part);
	}
	free(buf);
}

/* ---------------------------------------------------------------------- */
/* Raft body rejections.                                                  */

/* A valid APPEND body with one 4-byte entry, to be corrupted. */
static size_t append_body(uint8_t *b)
{
	memset(b, 0, NET_RAFT_FIXED_BYTES + NET_ENTRY_HEADER_BYTES + 4);
	b[0] = RAFT_MSG_APPEND;
	be32(b + 4, 1);
	be64(b + 8, 1);  /* from */
	be64(b + 16, 2); /* to */
	uint8_t *e = b + NET_RAFT_FIXED_BYTES;
	be64(e, 3);
	be64(e + 8, 10);
	e[16] = RAFT_ENTRY_NORMAL;
	be32(e + 20, 4);
	memcpy(e + 24, "data", 4);
	return NET_RAFT_FIXED_BYTES + NET_ENTRY_HEADER_BYTES + 4;
}

static int decode_body(const uint8_t *b, size_t len)
{
	struct raft_message m;
	struct raft_entry entries[4];
	struct raft_snapshot_meta snap;
	const char *why = NULL;
	/* An exact-size copy so ASan sees any read past len. */
	uint8_t *copy = malloc(len ? len : 1);
	memcpy(copy, b, len);
	int rc = net_raft_decode(copy, len, &m, entries, 4, &snap, &why);
	free(copy);
	if (rc < 0)
		assert_non_null(why);
	return rc;
}

static void test_body_valid_baseline(void **state)
{
	(void)state;
	uint8_t b[256];
	assert_int_equal(decode_body(b, append_body(b)), 0);
}

static void test_body_rejects_unknown_message_type(void **state)
{
	(void)state;
	uint8_t b[256];
	size_t n = append_body(b);
	b[0] = 0;
	assert_int_equal(decode_body(b, n), -EBADMSG);
	b[0] = RAFT_MSG_TYPE_MAX + 1;
	assert_int_equal(decode_body(b, n), -EBADMSG);
}

static void test_body_rejects_unknown_flags_and_reserved(void **state)
{
	(void)state;
	uint8_t b[256];
	size_t n = append_body(b);
	b[1] = 0x04;
	assert_int_equal(decode_body(b, n), -EBADMSG);
	n = append_body(b);
	b[3] = 1;
	assert_int_equal(decode_body(b, n), -EBADMSG);
	n = append_body(b);
	b[NET_RAFT_FIXED_BYTES + 18] = 1; /* entry reserved byte */
	assert_int_equal(decode_body(b, n), -EBADMSG);
}

static void test_body_rejects_bad_addressing(void **state)
{
	(void)state;
	uint8_t b[256];
	size_t n = append_body(b);
	be64(b + 8, 0);
	assert_int_equal(decode_body(b, n), -EBADMSG);
	n = append_body(b);
	be64(b + 16, 0);
	assert_int_equal(decode_body(b, n), -EBADMSG);
	n = append_body(b);
	be64(b + 16, 1);
	assert_int_equal(decode_body(b, n), -EBADMSG);
}

static void test_body_rejects_entries_in_other_types(void **state)
{
	(void)state;
	uint8_t b[256];
	size_t n = append_body(b);
	b[0] = RAFT_MSG_HEARTBEAT;
	assert_int_equal(decode_body(b, n), -EBADMSG);
}

static void test_body_rejects_claimed_counts(void **state)
{
	(void)state;
	uint8_t b[256];
	size_t n = append_body(b);
	be32(b + 4, RAFT_MAX_BATCH_ENTRIES + 1);
	assert_int_equal(decode_body(b, n), -EMSGSIZE);
	be32(b + 4, 5); /* more than the receiver's array of 4 */
	assert_int_equal(decode_body(b, n), -EMSGSIZE);
	be32(b + 4, 2); /* more than the bytes that arrived hold */
	assert_int_equal(decode_body(b, n), -EBADMSG);
	be32(b + 4, 0xffffffffu);
	assert_int_equal(decode_body(b, n), -EMSGSIZE);
}

static void test_body_rejects_bad_entries(void **state)
{
	(void)state;
	uint8_t b[256];
	size_t n = append_body(b);
	uint8_t *e = b + NET_RAFT_FIXED_BYTES;
	e[16] = 0;
	assert_int_equal(decode_body(b, n), -EBADMSG);
	e[16] = RAFT_ENTRY_CONFIG + 1;
	assert_int_equal(decode_body(b, n), -EBADMSG);
	n = append_body(b);
	be32(e + 20, RAFT_MAX_ENTRY_BYTES + 1);
	assert_int_equal(decode_body(b, n), -EMSGSIZE);
	be32(e + 20, 0xffffffffu);
	assert_int_equal(decode_body(b, n), -EMSGSIZE);
	be32(e + 20, 5); /* one byte more than arrived */
	assert_int_equal(decode_body(b, n), -EBADMSG);
}

static void test_body_rejects_batch_beyond_limit(void **state)
{
	(void)state;
	/* Four maximal entries, all bytes present: each passes the entry
	 * limit, together they pass the batch limit. */
	size_t len = NET_RAFT_FIXED_BYTES +
		     4 * (NET_ENTRY_HEADER_BYTES + RAFT_MAX_ENTRY_BYTES);
	uint8_t *b = calloc(1, len);
	append_body(b);
	be32(b + 4, 4);
	uint8_t *p = b + NET_RAFT_FIXED_BYTES;
	for (int i = 0; i < 4; i++) {
		be64(p, 3);
		be64(p + 8, 10 + (uint64_t)i);
		p[16] = RAFT_ENTRY_NORMAL;
		p[17] = p[18] = p[19] = 0;
		be32(p + 20, RAFT_MAX_ENTRY_BYTES);
		p += NET_ENTRY_HEADER_BYTES + RAFT_MAX_ENTRY_BYTES;
	}
	struct raft_message m;
	struct raft_entry entries[4];
	const char *why = NULL;
	assert_int_equal(net_raft_decode(b, len, &m, entries, 4, NULL, &why),
			 -EMSGSIZE);
	assert_string_equal(why, "entries beyond the batch size limit");
	free(b);
}

static void test_body_rejects_truncation_and_trailing_bytes(void **state)
{
	(void)state;
	uint8_t b[256];
	size_t n = append_body(b);
	for (size_t len = 0; len < n; len++)
		assert_int_equal(decode_body(b, len), -EBADMSG);
	b[n] = 0;
	assert_int_equal(decode_body(b, n + 1), -EBADMSG);
}

static void test_body_rejects_snapshot_where_not_accepted(void **state)
{
	(void)state;
	struct raft_snapshot_meta s = full_snapshot();
	struct raft_message m = base_message(RAFT_MSG_SNAPSHOT);
	m.snapshot = &s;
	size_t size;
	uint8_t *buf = encode(&m, &size);
	struct raft_message d;
	struct raft_entry e[1];
	assert_int_equal(net_raft_decode(buf + NET_FRAME_HEADER_BYTES,
					 size - NET_FRAME_HEADER_BYTES, &d, e,
					 1, NULL, NULL),
			 -EBADMSG);
	free(buf);
}

/* Encode a snapshot message, corrupt one byte of member mb at offset off
 * (past its fixed part when off >= 10), and decode. */
static int corrupt_member(uint32_t mb, size_t off, uint8_t value)
{
	struct raft_snapshot_meta s = {.index = 5, .term = 2, .conf_index = 4};
	s.conf.n = 3;
	for (uint32_t i = 0; i < 3; i++) {
		s.conf.members[i].id = i + 1;
		s.conf.members[i].role = RAFT_VOTER;
		strcpy(s.conf.members[i].address, "127.0.0.1:7000");
	}
	struct raft_message m = base_message(RAFT_MSG_SNAPSHOT);
	m.snapshot = &s;
	size_t size;
	uint8_t *buf = encode(&m, &size);
	size_t member = NET_FRAME_HEADER_BYTES + NET_RAFT_FIXED_BYTES +
			NET_SNAPSHOT_FIXED_BYTES +
			mb * (NET_MEMBER_FIXED_BYTES + 14);
	buf[member + off] = value;
	int rc = decode_body(buf + NET_FRAME_HEADER_BYTES,
			     size - NET_FRAME_HEADER_BYTES);
	free(buf);
	return rc;
}

static void test_body_rejects_bad_members(void **state)
{
	(void)state;
	assert_int_equal(corrupt_member(0, 0, 0), 0); /* high byte of id */
	assert_int_equal(corrupt_member(1, 7, 0), -EBADMSG); /* id 0 */
	assert_int_equal(corrupt_member(2, 7, 1), -EBADMSG); /* duplicate */
	assert_int_equal(corrupt_member(1, 8, RAFT_REMOVED), 0); /* tombstone */
	assert_int_equal(corrupt_member(1, 8, RAFT_REMOVED + 1), -EBADMSG);
	assert_int_equal(corrupt_member(1, 8, 0), -EBADMSG); /* role */
	assert_int_equal(corrupt_member(1, 9, 64), -EMSGSIZE); /* length */
	assert_int_equal(corrupt_member(1, 9, 200), -EMSGSIZE);
	assert_int_equal(corrupt_member(2, 9, 15), -EBADMSG); /* truncated */
	assert_int_equal(corrupt_member(0, 12, ' '), -EBADMSG);
	assert_int_equal(corrupt_member(0, 12, 0), -EBADMSG);
	assert_int_equal(corrupt_member(0, 12, 0x80), -EBADMSG);
}

static void test_body_rejects_too_many_members(void **state)
{
	(void)state;
	struct raft_snapshot_meta s = full_snapshot();
	struct raft_message m = base_message(RAFT_MSG_SNAPSHOT);
	m.snapshot = &s;
	size_t size;
	uint8_t *buf = encode(&m, &size);
	be32(buf + NET_FRAME_HEADER_BYTES + NET_RAFT_FIXED_BYTES + 24,
	     RAFT_MAX_MEMBERS + 1);
	assert_int_equal(decode_body(buf + NET_FRAME_HEADER_BYTES,
				     size - NET_FRAME_HEADER_BYTES),
			 -EMSGSIZE);
	/* Every truncation of the snapshot message is refused. */
	be32(buf + NET_FRAME_HEADER_BYTES + NET_RAFT_FIXED_BYTES + 24,
	     RAFT_MAX_MEMBERS);
	for (size_t len = 0; len < size - NET_FRAME_HEADER_BYTES; len++)
		assert_int_not_equal(decode_body(buf + NET_FRAME_HEADER_BYTES,
						 len),
				     0);
	free(buf);
}

/* ---------------------------------------------------------------------- */
/* Admin and ping frames.                                                 */

static void test_admin_round_trips(void **state)
{
	(void)state;
	struct net_admin_msg a = {.kind = 7, .request_id = 99,
				  .payload = (const uint8_t *)"status",
				  .payload_bytes = 6};
	uint8_t buf[64];
	size_t size = net_admin_frame_size(6);
	assert_int_equal(net_admin_frame_encode(NET_FRAME_ADMIN_REQUEST, &a,
						buf, size),
			 0);
	struct net_frame f;
	size_t fb;
	assert_int_equal(net_frame_parse(buf, size, &f, &fb, NULL), 0);
	assert_int_equal(f.type, NET_FRAME_ADMIN_REQUEST);
	struct net_admin_msg d;
	assert_int_equal(net_admin_decode(f.body, f.body_bytes, &d, NULL), 0);
	assert_int_equal(d.kind, 7);
	assert_int_equal(d.request_id, 99);
	assert_int_equal(d.payload_bytes, 6);
	assert_memory_equal(d.payload, "status", 6);
}

static void test_admin_rejections(void **state)
{
	(void)state;
	struct net_admin_msg a = {.kind = 0};
	uint8_t buf[64];
	assert_int_equal(net_admin_frame_encode(NET_FRAME_ADMIN_REQUEST, &a,
						buf, sizeof(buf)),
			 -EINVAL);
	a.kind = 1;
	assert_int_equal(net_admin_frame_encode(NET_FRAME_RAFT, &a, buf,
						sizeof(buf)),
			 -EINVAL);
	a.payload_bytes = NET_MAX_ADMIN_PAYLOAD_BYTES + 1;
	a.payload = buf;
	assert_int_equal(net_admin_frame_encode(NET_FRAME_ADMIN_REQUEST, &a,
						buf, sizeof(buf)),
			 -EMSGSIZE);
	uint8_t body[NET_ADMIN_FIXED_BYTES] = {0};
	struct net_admin_msg d;
	const char *why = NULL;
	assert_int_equal(net_admin_decode(body, sizeof(body), &d, &why),
			 -EBADMSG); /* kind 0 */
	body[1] = 1;
	body[3] = 1;
	assert_int_equal(net_admin_decode(body, sizeof(body), &d, &why),
			 -EBADMSG); /* flags */
	body[3] = 0;
	assert_int_equal(net_admin_decode(body, sizeof(body) - 1, &d, &why),
			 -EBADMSG); /* truncated */
	assert_int_equal(net_admin_decode(body, sizeof(body), &d, &why), 0);
	assert_null(d.payload);
}

static void test_ping_is_an_empty_frame(void **state)
{
	(void)state;
	uint8_t buf[NET_FRAME_HEADER_BYTES];
	net_ping_frame_encode(buf);
	struct net_frame f;
	size_t fb;
	assert_int_equal(net_frame_parse(buf, sizeof(buf), &f, &fb, NULL), 0);
	assert_int_equal(f.type, NET_FRAME_PING);
	assert_int_equal(f.body_bytes, 0);
	assert_int_equal(fb, NET_FRAME_HEADER_BYTES);
}

/* ---- snapshot chunks ---- */

static void chunk_fixture(struct raft_chunk *c, const void *data,
			  uint32_t size)
{
	memset(c, 0, sizeof(*c));
	c->type = RAFT_CHUNK_DATA;
	c->from = 1;
	c->to = 2;
	c->term = 3;
	c->stream = 99;
	c->offset = 4096;
	c->meta.index = 500;
	c->meta.term = 3;
	c->meta.conf_index = 1;
	c->meta.conf.n = 2;
	for (uint32_t i = 0; i < 2; i++) {
		c->meta.conf.members[i].id = i + 1;
		c->meta.conf.members[i].role = RAFT_VOTER;
		strcpy(c->meta.conf.members[i].address, "127.0.0.1:7000");
	}
	c->size = size;
	c->data = data;
}

static int chunk_round_trip(const struct raft_chunk *c, struct raft_chunk *out,
			    uint8_t *buf, size_t cap)
{
	struct net_frame f;
	size_t size, fb;
	int rc = net_chunk_frame_size(c, &size);
	if (rc < 0)
		return rc;
	assert_true(size <= cap);
	assert_int_equal(net_chunk_frame_encode(c, buf, size), 0);
	assert_int_equal(net_frame_parse(buf, size, &f, &fb, NULL), 0);
	assert_int_equal(fb, size);
	assert_int_equal(f.type, NET_FRAME_SNAPSHOT);
	return net_chunk_decode(f.body, f.body_bytes, out, NULL);
}

static void test_chunk_and_ack_round_trip(void **state)
{
	(void)state;
	static uint8_t data[RAFT_MAX_CHUNK_BYTES], buf[RAFT_MAX_CHUNK_BYTES + 4096];
	struct raft_chunk c, d;
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i * 7);
	chunk_fixture(&c, data, RAFT_MAX_CHUNK_BYTES);
	c.last = true;
	assert_int_equal(chunk_round_trip(&c, &d, buf, sizeof(buf)), 0);
	assert_int_equal(d.type, RAFT_CHUNK_DATA);
	assert_true(d.last && !d.done && !d.reject);
	assert_int_equal(d.stream, 99);
	assert_int_equal(d.offset, 4096);
	assert_int_equal(d.meta.index, 500);
	assert_int_equal(d.meta.conf.n, 2);
	assert_string_equal(d.meta.conf.members[1].address, "127.0.0.1:7000");
	assert_int_equal(d.size, RAFT_MAX_CHUNK_BYTES);
	assert_memory_equal(d.data, data, d.size);

	struct raft_chunk a;
	memset(&a, 0, sizeof(a));
	a.type = RAFT_CHUNK_ACK;
	a.from = 2;
	a.to = 1;
	a.term = 3;
	a.stream = 99;
	a.offset = 8192;
	a.done = true;
	a.meta.index = 500;
	a.meta.term = 3;
	assert_int_equal(chunk_round_trip(&a, &d, buf, sizeof(buf)), 0);
	assert_int_equal(d.type, RAFT_CHUNK_ACK);
	assert_true(d.done && !d.reject && !d.last);
	assert_int_equal(d.offset, 8192);
	assert_int_equal(d.meta.term, 3);
}

static void test_chunk_rejections(void **state)
{
	(void)state;
	static uint8_t buf[8192];
	const uint8_t data[16] = {1};
	struct raft_chunk c, d;
	size_t size;

	/* The encoder refuses what the decoder would. */
	chunk_fixture(&c, data, 0);
	assert_int_equal(net_chunk_frame_size(&c, &size), -EINVAL);
	chunk_fixture(&c, data, RAFT_MAX_CHUNK_BYTES + 1);
	assert_int_equal(net_chunk_frame_size(&c, &size), -EMSGSIZE);
	chunk_fixture(&c, data, 16);
	c.stream = 0;
	assert_int_equal(net_chunk_frame_size(&c, &size), -EINVAL);
	chunk_fixture(&c, data, 16);
	c.to = c.from;
	assert_int_equal(net_chunk_frame_size(&c, &size), -EINVAL);
	chunk_fixture(&c, data, 16);
	c.done = true;
	assert_int_equal(net_chunk_frame_size(&c, &size), -EINVAL);
	chunk_fixture(&c, data, 16);
	c.meta.conf_index = 501;
	assert_int_equal(net_chunk_frame_size(&c, &size), -EINVAL);
	chunk_fixture(&c, data, 16);
	c.offset = UINT64_MAX - 3;
	assert_int_equal(net_chunk_frame_size(&c, &size), -EINVAL);
	chunk_fixture(&c, data, 16);
	c.type = 3;
	assert_int_equal(net_chunk_frame_size(&c, &size), -EINVAL);

	/* The decoder: each field of a valid frame broken in turn. */
	chunk_fixture(&c, data, 16);
	assert_int_equal(net_chunk_frame_size(&c, &size), 0);
	assert_int_equal(net_chunk_frame_encode(&c, buf, size), 0);
	uint8_t *body = buf + NET_FRAME_HEADER_BYTES;
	size_t len = size - NET_FRAME_HEADER_BYTES;
	assert_int_equal(net_chunk_decode(body, len, &d, NULL), 0);
	const struct {
		size_t off;
		uint8_t val;
	} breaks[] = {
		{0, 0}, {0, 9}, {1, 0x08}, {1, 0x02}, {2, 1}, {7, 17},
		{15, 0}, {23, 0}, {15, 2}, {39, 0},
	};
	for (size_t i = 0; i < sizeof(breaks) / sizeof(breaks[0]); i++) {
		uint8_t save = body[breaks[i].off];
		if (breaks[i].off == 15 || breaks[i].off == 23 ||
		    breaks[i].off == 39)
			memset(body + breaks[i].off - 7, 0, 7);
		body[breaks[i].off] = breaks[i].val;
		assert_true(net_chunk_decode(body, len, &d, NULL) < 0);
		assert_int_equal(net_chunk_frame_encode(&c, buf, size), 0);
		(void)save;
	}
	/* Truncated anywhere, or a byte more. */
	for (size_t cut = 0; cut < len; cut++)
		assert_true(net_chunk_decode(body, cut, &d, NULL) < 0);
	buf[size] = 0;
	assert_true(net_chunk_decode(body, len + 1, &d, NULL) < 0);
}

TEST_MAIN(cmocka_unit_test(test_chunk_and_ack_round_trip),
	  cmocka_unit_test(test_chunk_rejections),
	  cmocka_unit_test(test_every_type_without_entries_round_trips),
	  cmocka_unit_test(test_append_entries_payloads_from_callback),
	  cmocka_unit_test(test_propose_round_trips),
	  cmocka_unit_test(test_snapshot_with_full_configuration_round_trips),
	  cmocka_unit_test(test_largest_batch_fits_a_frame),
	  cmocka_unit_test(test_encoder_rejects_invalid_messages),
	  cmocka_unit_test(test_encoder_rejects_batch_beyond_limit),
	  cmocka_unit_test(test_encoder_needs_payload_source),
	  cmocka_unit_test(test_encoder_rejects_bad_configuration),
	  cmocka_unit_test(test_header_rejects_bad_magic_at_first_byte),
	  cmocka_unit_test(test_header_rejects_unknown_version),
	  cmocka_unit_test(test_header_rejects_unknown_type_and_flags),
	  cmocka_unit_test(test_header_rejects_4gib_length_before_the_body),
	  cmocka_unit_test(test_every_truncation_is_incomplete),
	  cmocka_unit_test(test_body_valid_baseline),
	  cmocka_unit_test(test_body_rejects_unknown_message_type),
	  cmocka_unit_test(test_body_rejects_unknown_flags_and_reserved),
	  cmocka_unit_test(test_body_rejects_bad_addressing),
	  cmocka_unit_test(test_body_rejects_entries_in_other_types),
	  cmocka_unit_test(test_body_rejects_claimed_counts),
	  cmocka_unit_test(test_body_rejects_bad_entries),
	  cmocka_unit_test(test_body_rejects_batch_beyond_limit),
	  cmocka_unit_test(test_body_rejects_truncation_and_trailing_bytes),
	  cmocka_unit_test(test_body_rejects_snapshot_where_not_accepted),
	  cmocka_unit_test(test_body_rejects_bad_members),
	  cmocka_unit_test(test_body_rejects_too_many_members),
	  cmocka_unit_test(test_admin_round_trips),
	  cmocka_unit_test(test_admin_rejections),
	  cmocka_unit_test(test_ping_is_an_empty_frame))
