/*
 * The wire codec: frame headers, Raft messages and admin messages, encoded
 * field by field in network byte order (layout in net/net.h).
 *
 * The decoder works on bytes that have already arrived and only ever moves
 * forward through them after checking that enough remain; it allocates
 * nothing (entries go to an array the caller owns), so a claimed count or
 * length can never make it allocate or read more than what was received.
 * The encoder checks the same rules, so what one node encodes the other
 * accepts.
 */
#include <errno.h>
#include <string.h>

#include "net/bytes.h"
#include "net/net.h"

#define RAFT_FLAG_REJECT 0x01u
#define RAFT_FLAG_TRANSFER 0x02u

static int fail(const char **why, const char *reason, int rc)
{
	if (why)
		*why = reason;
	return rc;
}

static uint32_t body_limit(uint8_t type)
{
	switch (type) {
	case NET_FRAME_RAFT:
		return NET_MAX_FRAME_BYTES - NET_FRAME_HEADER_BYTES;
	case NET_FRAME_ADMIN_REQUEST:
	case NET_FRAME_ADMIN_RESPONSE:
		return NET_ADMIN_FIXED_BYTES + NET_MAX_ADMIN_PAYLOAD_BYTES;
	case NET_FRAME_SNAPSHOT:
		return NET_CHUNK_FIXED_BYTES + NET_SNAPSHOT_MAX_BYTES +
		       RAFT_MAX_CHUNK_BYTES;
	default:
		return 0; /* PING: empty */
	}
}

static void put_header(uint8_t *buf, uint8_t type, uint32_t body_bytes)
{
	put_u32(buf, NET_FRAME_MAGIC);
	buf[4] = NET_PROTOCOL_VERSION;
	buf[5] = type;
	put_u16(buf + 6, 0);
	put_u32(buf + 8, body_bytes);
}

int net_frame_parse(const uint8_t *buf, size_t len, struct net_frame *frame,
		    size_t *frame_bytes, const char **why)
{
	*frame_bytes = NET_FRAME_HEADER_BYTES;
	/* Check what has arrived of the header byte by byte, so garbage is
	 * refused as early as possible. */
	static const uint8_t magic[4] = {
		(uint8_t)(NET_FRAME_MAGIC >> 24), (uint8_t)(NET_FRAME_MAGIC >> 16),
		(uint8_t)(NET_FRAME_MAGIC >> 8), (uint8_t)NET_FRAME_MAGIC};
	size_t n = len < 4 ? len : 4;
	if (memcmp(buf, magic, n) != 0)
		return fail(why, "bad frame magic", -EPROTO);
	if (len > 4 && buf[4] != NET_PROTOCOL_VERSION)
		return fail(why, "unknown protocol version", -EPROTO);
	if (len > 5 && (buf[5] == 0 || buf[5] > NET_FRAME_TYPE_MAX))
		return fail(why, "unknown frame type", -EPROTO);
	if (len > 7 && get_u16(buf + 6) != 0)
		return fail(why, "reserved frame flags set", -EPROTO);
	if (len < NET_FRAME_HEADER_BYTES)
		return fail(why, "incomplete frame header", -EAGAIN);
	uint32_t body_bytes = get_u32(buf + 8);
	if (body_bytes > body_limit(buf[5]))
		return fail(why, "frame length beyond its limit", -EMSGSIZE);
	*frame_bytes = NET_FRAME_HEADER_BYTES + (size_t)body_bytes;
	if (len < *frame_bytes)
		return fail(why, "incomplete frame body", -EAGAIN);
	frame->type = buf[5];
	frame->body = buf + NET_FRAME_HEADER_BYTES;
	frame->body_bytes = body_bytes;
	return 0;
}

/* ---------------------------------------------------------------------- */
/* Raft messages: checks shared by the encoder and the decoder.          */

static bool message_may_carry_entries(uint8_t type)
{
	return type == RAFT_MSG_APPEND || type == RAFT_MSG_PROPOSE;
}

static int check_header_fields(uint8_t type, uint64_t from, uint64_t to,
			       uint32_t n_entries, const char **why)
{
	if (type == 0 || type > RAFT_MSG_TYPE_MAX)
		return fail(why, "unknown raft message type", -EBADMSG);
	if (from == 0 || to == 0)
		return fail(why, "raft message from or to node 0", -EBADMSG);
	if (from == to)
		return fail(why, "raft message to its sender", -EBADMSG);
	if (n_entries > RAFT_MAX_BATCH_ENTRIES)
		return fail(why, "too many entries", -EMSGSIZE);
	if (n_entries > 0 && !message_may_carry_entries(type))
		return fail(why, "entries in a message type without entries",
			    -EBADMSG);
	return 0;
}

static int check_entry_fields(uint8_t type, uint32_t size, uint64_t *total,
			      const char **why)
{
	if (type < RAFT_ENTRY_NORMAL || type > RAFT_ENTRY_CONFIG)
		return fail(why, "unknown entry type", -EBADMSG);
	if (size > RAFT_MAX_ENTRY_BYTES)
		return fail(why, "entry beyond the entry size limit", -EMSGSIZE);
	*total += size;
	if (*total > RAFT_MAX_BATCH_BYTES)
		return fail(why, "entries beyond the batch size limit",
			    -EMSGSIZE);
	return 0;
}

static bool address_byte_ok(uint8_t c)
{
	return c > 0x20 && c < 0x7f;
}

/* The length of a member's address, or -1 when it is not a terminated
 * printable string. */
static int address_length(const char *address)
{
	for (int i = 0; i < (int)RAFT_MAX_ADDRESS; i++) {
		if (address[i] == '\0')
			return i;
		if (!address_byte_ok((uint8_t)address[i]))
			return -1;
	}
	return -1;
}

static int check_configuration(const struct raft_configuration *conf,
			       size_t *bytes, const char **why)
{
	if (conf->n > RAFT_MAX_MEMBERS)
		return fail(why, "too many members", -EMSGSIZE);
	*bytes = NET_SNAPSHOT_FIXED_BYTES;
	for (uint32_t i = 0; i < conf->n; i++) {
		const struct raft_member *mb = &conf->members[i];
		if (mb->id == 0)
			return fail(why, "member id 0", -EBADMSG);
		for (uint32_t j = 0; j < i; j++) {
			if (conf->members[j].id == mb->id)
				return fail(why, "duplicate member id",
					    -EBADMSG);
		}
		if (mb->role < RAFT_VOTER || mb->role > RAFT_REMOVED)
			return fail(why, "unknown member role", -EBADMSG);
		int alen = address_length(mb->address);
		if (alen < 0)
			return fail(why, "bad member address", -EBADMSG);
		*bytes += NET_MEMBER_FIXED_BYTES + (size_t)alen;
	}
	return 0;
}

/* ---------------------------------------------------------------------- */
/* Encoding.                                                              */

static int raft_body_size(const struct raft_message *m, size_t *size)
{
	int rc = check_header_fields(m->type, m->from, m->to, m->n_entries,
				     NULL);
	if (rc < 0)
		return rc == -EMSGSIZE ? rc : -EINVAL;
	if (m->n_entries > 0 && m->entries == NULL)
		return -EINVAL;
	size_t bytes = NET_RAFT_FIXED_BYTES;
	uint64_t total = 0;
	for (uint32_t i = 0; i < m->n_entries; i++) {
		const struct raft_entry *e = &m->entries[i];
		rc = check_entry_fields(e->type, e->size, &total, NULL);
		if (rc < 0)
			return rc == -EMSGSIZE ? rc : -EINVAL;
		bytes += NET_ENTRY_HEADER_BYTES + e->size;
	}
	if (m->type == RAFT_MSG_SNAPSHOT) {
		size_t snap_bytes;
		if (m->snapshot == NULL)
			return -EINVAL;
		rc = check_configuration(&m->snapshot->conf, &snap_bytes, NULL);
		if (rc < 0)
			return rc == -EMSGSIZE ? rc : -EINVAL;
		bytes += snap_bytes;
	}
	if (NET_FRAME_HEADER_BYTES + bytes > NET_MAX_FRAME_BYTES)
		return -EMSGSIZE;
	*size = bytes;
	return 0;
}

int net_raft_frame_size(const struct raft_message *m, size_t *size)
{
	size_t body;
	int rc = raft_body_size(m, &body);
	if (rc < 0)
		return rc;
	*size = NET_FRAME_HEADER_BYTES + body;
	return 0;
}

static uint8_t *encode_snapshot(const struct raft_snapshot_meta *s,
				uint8_t *p)
{
	put_u64(p, s->index);
	put_u64(p + 8, s->term);
	put_u64(p + 16, s->conf_index);
	put_u32(p + 24, s->conf.n);
	p += NET_SNAPSHOT_FIXED_BYTES;
	for (uint32_t i = 0; i < s->conf.n; i++) {
		const struct raft_member *mb = &s->conf.members[i];
		size_t alen = strlen(mb->address); /* checked: < 64 */
		put_u64(p, mb->id);
		p[8] = mb->role;
		p[9] = (uint8_t)alen;
		memcpy(p + NET_MEMBER_FIXED_BYTES, mb->address, alen);
		p += NET_MEMBER_FIXED_BYTES + alen;
	}
	return p;
}

int net_raft_frame_encode(const struct raft_message *m, net_payload_fn payload,
			  void *payload_ctx, uint8_t *buf, size_t size)
{
	size_t body;
	int rc = raft_body_size(m, &body);
	if (rc < 0)
		return rc;
	if (size < NET_FRAME_HEADER_BYTES + body)
		return -ENOSPC;
	put_header(buf, NET_FRAME_RAFT, (uint32_t)body);
	uint8_t *p = buf + NET_FRAME_HEADER_BYTES;
	p[0] = m->type;
	p[1] = (uint8_t)((m->reject ? RAFT_FLAG_REJECT : 0) |
			 (m->transfer ? RAFT_FLAG_TRANSFER : 0));
	put_u16(p + 2, 0);
	put_u32(p + 4, m->n_entries);
	const uint64_t fields[9] = {m->from,    m->to,     m->term,
				    m->index,   m->log_term, m->commit,
				    m->context, m->hint_index, m->hint_term};
	for (int i = 0; i < 9; i++)
		put_u64(p + 8 + 8 * i, fields[i]);
	p += NET_RAFT_FIXED_BYTES;
	for (uint32_t i = 0; i < m->n_entries; i++) {
		const struct raft_entry *e = &m->entries[i];
		put_u64(p, e->term);
		put_u64(p + 8, e->index);
		p[16] = e->type;
		p[17] = p[18] = p[19] = 0;
		put_u32(p + 20, e->size);
		p += NET_ENTRY_HEADER_BYTES;
		if (e->size == 0)
			continue;
		if (e->data) {
			memcpy(p, e->data, e->size);
		} else {
			if (payload == NULL)
				return -EINVAL;
			rc = payload(payload_ctx, e, p);
			if (rc < 0)
				return rc;
		}
		p += e->size;
	}
	if (m->type == RAFT_MSG_SNAPSHOT)
		encode_snapshot(m->snapshot, p);
	return 0;
}

/* ---------------------------------------------------------------------- */
/* Decoding.                                                              */

static int decode_snapshot(const uint8_t *p, size_t left,
			   struct raft_snapshot_meta *s, size_t *used,
			   const char **why)
{
	if (left < NET_SNAPSHOT_FIXED_BYTES)
		return fail(why, "truncated snapshot metadata", -EBADMSG);
	s->index = get_u64(p);
	s->term = get_u64(p + 8);
	s->conf_index = get_u64(p + 16);
	uint32_t n = get_u32(p + 24);
	if (n > RAFT_MAX_MEMBERS)
		return fail(why, "too many members", -EMSGSIZE);
	size_t off = NET_SNAPSHOT_FIXED_BYTES;
	memset(&s->conf, 0, sizeof(s->conf));
	for (uint32_t i = 0; i < n; i++) {
		if (left - off < NET_MEMBER_FIXED_BYTES)
			return fail(why, "truncated member", -EBADMSG);
		struct raft_member *mb = &s->conf.members[i];
		mb->id = get_u64(p + off);
		mb->role = p[off + 8];
		uint8_t alen = p[off + 9];
		off += NET_MEMBER_FIXED_BYTES;
		if (alen >= RAFT_MAX_ADDRESS)
			return fail(why, "member address too long", -EMSGSIZE);
		if (left - off < alen)
			return fail(why, "truncated member address", -EBADMSG);
		for (uint8_t k = 0; k < alen; k++) {
			if (!address_byte_ok(p[off + k]))
				return fail(why, "bad member address",
					    -EBADMSG);
		}
		memcpy(mb->address, p + off, alen);
		mb->address[alen] = '\0';
		off += alen;
		s->conf.n = i + 1;
	}
	size_t bytes;
	int rc = check_configuration(&s->conf, &bytes, why);
	if (rc < 0)
		return rc;
	*used = off;
	return 0;
}

int net_raft_decode(const uint8_t *body, size_t len, struct raft_message *m,
		    struct raft_entry *entries, uint32_t max_entries,
		    struct raft_snapshot_meta *snap, const char **why)
{
	memset(m, 0, sizeof(*m));
	if (len < NET_RAFT_FIXED_BYTES)
		return fail(why, "truncated raft message", -EBADMSG);
	uint8_t type = body[0];
	uint8_t flags = body[1];
	uint32_t n_entries = get_u32(body + 4);
	uint64_t f[9];
	for (int i = 0; i < 9; i++)
		f[i] = get_u64(body + 8 + 8 * i);
	if (flags & ~(RAFT_FLAG_REJECT | RAFT_FLAG_TRANSFER))
		return fail(why, "unknown raft message flags", -EBADMSG);
	if (get_u16(body + 2) != 0)
		return fail(why, "reserved raft message bytes set", -EBADMSG);
	int rc = check_header_fields(type, f[0], f[1], n_entries, why);
	if (rc < 0)
		return rc;
	if (n_entries > max_entries)
		return fail(why, "more entries than the receiver takes",
			    -EMSGSIZE);
	size_t off = NET_RAFT_FIXED_BYTES;
	/* Every entry needs its header: a claimed count larger than the
	 * bytes that arrived is refused before looking at any entry. */
	if ((len - off) / NET_ENTRY_HEADER_BYTES < n_entries)
		return fail(why, "entry count beyond the message", -EBADMSG);
	uint64_t total = 0;
	for (uint32_t i = 0; i < n_entries; i++) {
		if (len - off < NET_ENTRY_HEADER_BYTES)
			return fail(why, "truncated entry header", -EBADMSG);
		const uint8_t *p = body + off;
		struct raft_entry *e = &entries[i];
		e->term = get_u64(p);
		e->index = get_u64(p + 8);
		e->type = p[16];
		e->size = get_u32(p + 20);
		if (p[17] || p[18] || p[19])
			return fail(why, "reserved entry bytes set", -EBADMSG);
		rc = check_entry_fields(e->type, e->size, &total, why);
		if (rc < 0)
			return rc;
		off += NET_ENTRY_HEADER_BYTES;
		if (len - off < e->size)
			return fail(why, "truncated entry payload", -EBADMSG);
		e->data = e->size ? body + off : NULL;
		off += e->size;
	}
	if (type == RAFT_MSG_SNAPSHOT) {
		size_t used;
		if (snap == NULL)
			return fail(why, "snapshot message not accepted here",
				    -EBADMSG);
		rc = decode_snapshot(body + off, len - off, snap, &used, why);
		if (rc < 0)
			return rc;
		off += used;
	}
	if (off != len)
		return fail(why, "trailing bytes after raft message", -EBADMSG);
	m->type = type;
	m->reject = flags & RAFT_FLAG_REJECT;
	m->transfer = flags & RAFT_FLAG_TRANSFER;
	m->from = f[0];
	m->to = f[1];
	m->term = f[2];
	m->index = f[3];
	m->log_term = f[4];
	m->commit = f[5];
	m->context = f[6];
	m->hint_index = f[7];
	m->hint_term = f[8];
	m->n_entries = n_entries;
	m->entries = n_entries ? entries : NULL;
	m->snapshot = type == RAFT_MSG_SNAPSHOT ? snap : NULL;
	return 0;
}

/* ---------------------------------------------------------------------- */
/* Admin and ping frames.                                                 */

size_t net_admin_frame_size(uint32_t payload_bytes)
{
	return NET_FRAME_HEADER_BYTES + NET_ADMIN_FIXED_BYTES + payload_bytes;
}

int net_admin_frame_encode(uint8_t frame_type, const struct net_admin_msg *a,
			   uint8_t *buf, size_t size)
{
	if (frame_type != NET_FRAME_ADMIN_REQUEST &&
	    frame_type != NET_FRAME_ADMIN_RESPONSE)
		return -EINVAL;
	if (a->kind == 0 || (a->payload_bytes > 0 && a->payload == NULL))
		return -EINVAL;
	if (a->payload_bytes > NET_MAX_ADMIN_PAYLOAD_BYTES)
		return -EMSGSIZE;
	if (size < net_admin_frame_size(a->payload_bytes))
		return -ENOSPC;
	put_header(buf, frame_type, NET_ADMIN_FIXED_BYTES + a->payload_bytes);
	uint8_t *p = buf + NET_FRAME_HEADER_BYTES;
	put_u16(p, a->kind);
	put_u16(p + 2, 0);
	put_u64(p + 4, a->request_id);
	if (a->payload_bytes)
		memcpy(p + NET_ADMIN_FIXED_BYTES, a->payload, a->payload_bytes);
	return 0;
}

int net_admin_decode(const uint8_t *body, size_t len, struct net_admin_msg *a,
		     const char **why)
{
	if (len < NET_ADMIN_FIXED_BYTES)
		return fail(why, "truncated admin message", -EBADMSG);
	if (len - NET_ADMIN_FIXED_BYTES > NET_MAX_ADMIN_PAYLOAD_BYTES)
		return fail(why, "admin payload beyond its limit", -EMSGSIZE);
	a->kind = get_u16(body);
	if (a->kind == 0)
		return fail(why, "admin message kind 0", -EBADMSG);
	if (get_u16(body + 2) != 0)
		return fail(why, "reserved admin flags set", -EBADMSG);
	a->request_id = get_u64(body + 4);
	a->payload_bytes = (uint32_t)(len - NET_ADMIN_FIXED_BYTES);
	a->payload = a->payload_bytes ? body + NET_ADMIN_FIXED_BYTES : NULL;
	return 0;
}

void net_ping_frame_encode(uint8_t *buf)
{
	put_header(buf, NET_FRAME_PING, 0);
}

/* ---------------------------------------------------------------------- */
/* Snapshot chunks and their acknowledgments.                             */

#define CHUNK_FLAG_LAST 0x01u
#define CHUNK_FLAG_DONE 0x02u
#define CHUNK_FLAG_REJECT 0x04u
#define NET_CHUNK_ACK_META_BYTES 16u

/* The rules of raft_chunk_is_valid (raft/raft.h), checked here without
 * calling into raft/ so that net/ stays a codec of shapes. */
static int check_chunk(const struct raft_chunk *c, size_t *meta_bytes,
		       const char **why)
{
	if (c->from == 0 || c->to == 0)
		return fail(why, "chunk from or to node 0", -EBADMSG);
	if (c->from == c->to)
		return fail(why, "chunk to its sender", -EBADMSG);
	if (c->stream == 0)
		return fail(why, "chunk of stream 0", -EBADMSG);
	if (c->meta.index == 0 || c->meta.term == 0)
		return fail(why, "chunk of snapshot index or term 0", -EBADMSG);
	if (c->type == RAFT_CHUNK_DATA) {
		if (c->done || c->reject)
			return fail(why, "data chunk with ack flags", -EBADMSG);
		if (c->size == 0)
			return fail(why, "empty data chunk", -EBADMSG);
		if (c->size > RAFT_MAX_CHUNK_BYTES)
			return fail(why, "chunk beyond its size limit",
				    -EMSGSIZE);
		if (c->offset > UINT64_MAX - c->size)
			return fail(why, "chunk offset overflows", -EBADMSG);
		if (c->meta.conf_index > c->meta.index)
			return fail(why, "configuration after the snapshot",
				    -EBADMSG);
		if (c->meta.conf.n == 0)
			return fail(why, "snapshot without members", -EBADMSG);
		return check_configuration(&c->meta.conf, meta_bytes, why);
	}
	if (c->type == RAFT_CHUNK_ACK) {
		if (c->last)
			return fail(why, "ack with the last flag", -EBADMSG);
		if (c->done && c->reject)
			return fail(why, "ack both done and rejected",
				    -EBADMSG);
		if (c->size != 0)
			return fail(why, "ack with data", -EBADMSG);
		*meta_bytes = NET_CHUNK_ACK_META_BYTES;
		return 0;
	}
	return fail(why, "unknown chunk type", -EBADMSG);
}

int net_chunk_frame_size(const struct raft_chunk *c, size_t *size)
{
	size_t meta = 0;
	int rc = check_chunk(c, &meta, NULL);
	if (rc < 0)
		return rc == -EMSGSIZE ? rc : -EINVAL;
	if (c->size > 0 && c->data == NULL)
		return -EINVAL;
	*size = NET_FRAME_HEADER_BYTES + NET_CHUNK_FIXED_BYTES + meta + c->size;
	return 0;
}

int net_chunk_frame_encode(const struct raft_chunk *c, uint8_t *buf,
			   size_t size)
{
	size_t need;
	int rc = net_chunk_frame_size(c, &need);
	if (rc < 0)
		return rc;
	if (size < need)
		return -ENOSPC;
	put_header(buf, NET_FRAME_SNAPSHOT,
		   (uint32_t)(need - NET_FRAME_HEADER_BYTES));
	uint8_t *p = buf + NET_FRAME_HEADER_BYTES;
	p[0] = c->type;
	p[1] = (uint8_t)((c->last ? CHUNK_FLAG_LAST : 0) |
			 (c->done ? CHUNK_FLAG_DONE : 0) |
			 (c->reject ? CHUNK_FLAG_REJECT : 0));
	put_u16(p + 2, 0);
	put_u32(p + 4, c->size);
	put_u64(p + 8, c->from);
	put_u64(p + 16, c->to);
	put_u64(p + 24, c->term);
	put_u64(p + 32, c->stream);
	put_u64(p + 40, c->offset);
	p += NET_CHUNK_FIXED_BYTES;
	if (c->type == RAFT_CHUNK_DATA) {
		p = encode_snapshot(&c->meta, p);
		memcpy(p, c->data, c->size);
	} else {
		put_u64(p, c->meta.index);
		put_u64(p + 8, c->meta.term);
	}
	return 0;
}

int net_chunk_decode(const uint8_t *body, size_t len, struct raft_chunk *c,
		     const char **why)
{
	size_t off = NET_CHUNK_FIXED_BYTES, meta = 0;
	int rc;

	memset(c, 0, sizeof(*c));
	if (len < NET_CHUNK_FIXED_BYTES)
		return fail(why, "truncated chunk", -EBADMSG);
	uint8_t flags = body[1];
	if (flags & ~(CHUNK_FLAG_LAST | CHUNK_FLAG_DONE | CHUNK_FLAG_REJECT))
		return fail(why, "unknown chunk flags", -EBADMSG);
	if (get_u16(body + 2) != 0)
		return fail(why, "reserved chunk bytes set", -EBADMSG);
	c->type = body[0];
	c->last = flags & CHUNK_FLAG_LAST;
	c->done = flags & CHUNK_FLAG_DONE;
	c->reject = flags & CHUNK_FLAG_REJECT;
	c->size = get_u32(body + 4);
	c->from = get_u64(body + 8);
	c->to = get_u64(body + 16);
	c->term = get_u64(body + 24);
	c->stream = get_u64(body + 32);
	c->offset = get_u64(body + 40);
	if (c->type == RAFT_CHUNK_DATA) {
		size_t used;
		rc = decode_snapshot(body + off, len - off, &c->meta, &used,
				     why);
		if (rc < 0)
			return rc;
		off += used;
		if (len - off != c->size)
			return fail(why, "chunk length differs from its data",
				    -EBADMSG);
		c->data = c->size ? body + off : NULL;
		off += c->size;
	} else if (c->type == RAFT_CHUNK_ACK) {
		if (len - off < NET_CHUNK_ACK_META_BYTES)
			return fail(why, "truncated chunk ack", -EBADMSG);
		c->meta.index = get_u64(body + off);
		c->meta.term = get_u64(body + off + 8);
		off += NET_CHUNK_ACK_META_BYTES;
	}
	rc = check_chunk(c, &meta, why);
	if (rc < 0)
		return rc;
	if (off != len)
		return fail(why, "trailing bytes after chunk", -EBADMSG);
	return 0;
}
