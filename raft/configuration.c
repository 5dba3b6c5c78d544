/* Configurations: explicit encoding (big-endian, fixed-size address field) so
 * every replica stores the same bytes, and validation of decoded ones. */
#include <errno.h>
#include <string.h>

#include "raft/core.h"
#include "raft/byteorder.h"

#define CONF_VERSION 1u
#define MEMBER_BYTES (8u + 1u + RAFT_MAX_ADDRESS)

size_t raft_configuration_encoded_size(uint32_t n)
{
	return 2u + (size_t)n * MEMBER_BYTES;
}

void raft_configuration_encode(const struct raft_configuration *conf,
			       uint8_t *buf)
{
	buf[0] = CONF_VERSION;
	buf[1] = (uint8_t)conf->n;
	uint8_t *p = buf + 2;
	for (uint32_t i = 0; i < conf->n; i++) {
		const struct raft_member *m = &conf->members[i];
		raft_put_u64(p, m->id);
		p[8] = m->role;
		memset(p + 9, 0, RAFT_MAX_ADDRESS);
		size_t len = strnlen(m->address, RAFT_MAX_ADDRESS - 1);
		memcpy(p + 9, m->address, len);
		p += MEMBER_BYTES;
	}
}

int raft_configuration_decode(const uint8_t *buf, size_t size,
			      struct raft_configuration *conf)
{
	if (size < 2 || buf[0] != CONF_VERSION)
		return -EINVAL;
	uint32_t n = buf[1];
	if (n > RAFT_MAX_MEMBERS || size != raft_configuration_encoded_size(n))
		return -EINVAL;
	struct raft_configuration c;
	memset(&c, 0, sizeof(c));
	c.n = n;
	const uint8_t *p = buf + 2;
	for (uint32_t i = 0; i < n; i++) {
		struct raft_member *m = &c.members[i];
		m->id = raft_get_u64(p);
		m->role = p[8];
		if (m->id == 0 || m->role < RAFT_VOTER || m->role > RAFT_REMOVED)
			return -EINVAL;
		/* The address must end in NUL within its field, with nothing
		 * but NULs after it, so equal configurations encode equally. */
		const uint8_t *a = p + 9;
		size_t len = strnlen((const char *)a, RAFT_MAX_ADDRESS);
		if (len >= RAFT_MAX_ADDRESS)
			return -EINVAL;
		for (size_t k = len; k < RAFT_MAX_ADDRESS; k++)
			if (a[k] != 0)
				return -EINVAL;
		memcpy(m->address, a, len + 1);
		for (uint32_t j = 0; j < i; j++)
			if (c.members[j].id == m->id)
				return -EINVAL;
		p += MEMBER_BYTES;
	}
	*conf = c;
	return 0;
}

const struct raft_member *
raft_configuration_get(const struct raft_configuration *conf, uint64_t id)
{
	for (uint32_t i = 0; i < conf->n; i++)
		if (conf->members[i].id == id)
			return &conf->members[i];
	return NULL;
}

bool raft_configuration_is_valid(const struct raft_configuration *conf)
{
	if (!conf || conf->n == 0 || conf->n > RAFT_MAX_MEMBERS)
		return false;
	/* Valid exactly when its encoding decodes: one set of rules. */
	uint8_t buf[2 + RAFT_MAX_MEMBERS * MEMBER_BYTES];
	struct raft_configuration check;
	raft_configuration_encode(conf, buf);
	return raft_configuration_decode(
		       buf, raft_configuration_encoded_size(conf->n), &check) == 0;
}

bool raft_chunk_is_valid(const struct raft_chunk *c)
{
	if (c->from == 0 || c->to == 0 || c->from == c->to || c->stream == 0 ||
	    c->meta.index == 0 || c->meta.term == 0)
		return false;
	if (c->type == RAFT_CHUNK_DATA)
		return !c->done && !c->reject && c->size > 0 &&
		       c->size <= RAFT_MAX_CHUNK_BYTES && c->data != NULL &&
		       c->offset <= UINT64_MAX - c->size &&
		       c->meta.conf_index <= c->meta.index &&
		       raft_configuration_is_valid(&c->meta.conf);
	if (c->type == RAFT_CHUNK_ACK)
		return !c->last && !(c->done && c->reject) && c->size == 0;
	return false;
}
