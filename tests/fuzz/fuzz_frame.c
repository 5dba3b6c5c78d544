/*
 * libFuzzer target for the frame decoder (net/codec.c): the input is a byte
 * stream as a connection would deliver it. Every complete frame is decoded
 * by type, and every message the decoder accepts must encode back to
 * exactly the same bytes (the encoding is canonical), so the fuzzer checks
 * the decoder's validation, not only its memory safety.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net/net.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct raft_entry entries[RAFT_MAX_BATCH_ENTRIES];
static uint8_t out[1u << 20];

static void check_raft(const uint8_t *frame, size_t frame_bytes,
		       const struct net_frame *f)
{
	struct raft_message m;
	struct raft_snapshot_meta snap;
	size_t size;
	if (net_raft_decode(f->body, f->body_bytes, &m, entries,
			    RAFT_MAX_BATCH_ENTRIES, &snap, NULL) < 0)
		return;
	/* Accepted: the encoder must agree it is valid and reproduce it. */
	if (net_raft_frame_size(&m, &size) < 0 || size != frame_bytes)
		abort();
	if (size > sizeof(out))
		return;
	if (net_raft_frame_encode(&m, NULL, NULL, out, size) < 0 ||
	    memcmp(out, frame, size) != 0)
		abort();
}

static void check_admin(const uint8_t *frame, size_t frame_bytes,
			const struct net_frame *f)
{
	struct net_admin_msg a;
	if (net_admin_decode(f->body, f->body_bytes, &a, NULL) < 0)
		return;
	if (net_admin_frame_size(a.payload_bytes) != frame_bytes ||
	    net_admin_frame_encode(f->type, &a, out, frame_bytes) < 0 ||
	    memcmp(out, frame, frame_bytes) != 0)
		abort();
}

static void check_chunk(const uint8_t *frame, size_t frame_bytes,
			const struct net_frame *f)
{
	struct raft_chunk c;
	size_t size;
	if (net_chunk_decode(f->body, f->body_bytes, &c, NULL) < 0)
		return;
	if (net_chunk_frame_size(&c, &size) < 0 || size != frame_bytes)
		abort();
	if (size > sizeof(out))
		return;
	if (net_chunk_frame_encode(&c, out, size) < 0 ||
	    memcmp(out, frame, size) != 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t off = 0;
	while (off < size) {
		struct net_frame f;
		size_t frame_bytes;
		const char *why = NULL;
		int rc = net_frame_parse(data + off, size - off, &f,
					 &frame_bytes, &why);
		if (rc < 0) {
			if (why == NULL)
				abort(); /* every refusal has a reason */
			break;
		}
		if (frame_bytes > size - off)
			abort();
		const uint8_t *frame = data + off;
		if (f.type == NET_FRAME_RAFT)
			check_raft(frame, frame_bytes, &f);
		else if (f.type == NET_FRAME_SNAPSHOT)
			check_chunk(frame, frame_bytes, &f);
		else if (f.type == NET_FRAME_ADMIN_REQUEST ||
			 f.type == NET_FRAME_ADMIN_RESPONSE)
			check_admin(frame, frame_bytes, &f);
		off += frame_bytes;
	}
	return 0;
}
