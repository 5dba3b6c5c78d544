/*
 * Handing frames to the I/O thread: the bounded send queues and the calls
 * other threads make (net_send, net_admin_reply). A frame is encoded on the
 * caller's thread outside the lock; room for it is reserved first, so a
 * full queue refuses a message before any work is done for it.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "net/transport.h"

/* All frames queued so far, in order (I/O thread). */
struct out_frame *net_sendq_take(struct net *n, struct sendq *q)
{
	pthread_mutex_lock(&n->lock);
	struct out_frame *f = q->head;
	q->head = q->tail = NULL;
	pthread_mutex_unlock(&n->lock);
	return f;
}

/* A frame written (or dropped): release its share of the queue bound. */
void net_sendq_done(struct net *n, struct sendq *q, struct out_frame *f)
{
	if (f->counted) {
		pthread_mutex_lock(&n->lock);
		q->bytes -= f->size;
		q->frames--;
		pthread_mutex_unlock(&n->lock);
	}
	free(f);
}

void net_sendq_drop_all(struct net *n, struct sendq *q)
{
	struct out_frame *f = net_sendq_take(n, q);
	while (f) {
		struct out_frame *next = f->next;
		net_sendq_done(n, q, f);
		f = next;
	}
}

void net_wake(struct net *n)
{
	uint64_t one = 1;
	/* One system call per wake-up of the I/O thread, not one per frame
	 * (a driver round queues a frame to every peer). The I/O thread
	 * clears the flag AFTER it drained the eventfd and BEFORE it takes
	 * the queues, so a frame queued while the flag is set is taken, and
	 * one queued after it was cleared writes the eventfd again. */
	if (atomic_exchange(&n->wake_pending, true))
		return;
	ssize_t rc = write(n->wake_fd, &one, sizeof(one));
	(void)rc; /* EAGAIN: the counter is already non-zero, it wakes */
}

/*
 * Reserve room for size bytes in q, or refuse. Called with n->lock held.
 */
static int sendq_reserve(struct sendq *q, size_t size)
{
	if (q->frames >= q->limit_frames || q->bytes + size > q->limit_bytes)
		return -ENOBUFS;
	q->bytes += size;
	q->frames++;
	return 0;
}

static void sendq_append(struct sendq *q, struct out_frame *f)
{
	f->next = NULL;
	if (q->tail)
		q->tail->next = f;
	else
		q->head = f;
	q->tail = f;
}

struct encode_args {
	const struct raft_message *m;
	net_payload_fn payload;
	void *payload_ctx;
	const struct raft_chunk *c;
};

static int encode_frame(const struct encode_args *a, uint8_t *buf,
			size_t size)
{
	if (a->c != NULL)
		return net_chunk_frame_encode(a->c, buf, size);
	return net_raft_frame_encode(a->m, a->payload, a->payload_ctx, buf,
				     size);
}

static int queue_frame(struct net *n, uint64_t to, size_t size,
		       const struct encode_args *a);

/* p's outbound connection with its mutex taken, when a frame of size
 * bytes may be written to it by the caller now: established, nothing
 * queued or being written before it (order), small (a large frame is the
 * I/O thread's, corked), and the connection not in use by the I/O thread
 * or another sender. n->lock held: a connection is closed (and direct
 * cleared) only under its mutex, so it stays alive while the caller holds
 * that. */
static struct conn *idle_conn(struct peer *p, size_t size)
{
	struct conn *c = p->direct;
	if (c == NULL || p->q.head != NULL || size > NET_DIRECT_MAX_BYTES)
		return NULL;
	if (pthread_mutex_trylock(&c->mu) != 0)
		return NULL;
	if (c->closed || c->state != CONN_ESTABLISHED || c->cur != NULL ||
	    c->wq != NULL || c->write_failed) {
		pthread_mutex_unlock(&c->mu);
		return NULL;
	}
	return c;
}

int net_send(struct net *n, const struct raft_message *m,
	     net_payload_fn payload, void *payload_ctx)
{
	struct encode_args a = {m, payload, payload_ctx, NULL};
	size_t size;
	int rc;
	if (m->from != n->id)
		return -EINVAL;
	rc = net_raft_frame_size(m, &size);
	if (rc < 0)
		return rc;
	return queue_frame(n, m->to, size, &a);
}

int net_send_chunk(struct net *n, const struct raft_chunk *c)
{
	struct encode_args a = {NULL, NULL, NULL, c};
	size_t size;
	int rc;
	if (c->from != n->id)
		return -EINVAL;
	rc = net_chunk_frame_size(c, &size);
	if (rc < 0)
		return rc;
	return queue_frame(n, c->to, size, &a);
}

static int queue_frame(struct net *n, uint64_t to, size_t size,
		       const struct encode_args *a)
{
	int rc;
	pthread_mutex_lock(&n->lock);
	struct peer *p = net_peer_find(n, to);
	if (p == NULL)
		rc = -ENOENT;
	else
		rc = p->up ? sendq_reserve(&p->q, size) : -ENOTCONN;
	if (rc < 0 && p)
		p->dropped_frames++;
	pthread_mutex_unlock(&n->lock);
	if (rc < 0)
		return rc;
	/* Encode outside the lock: this is the copy of the payloads. */
	struct out_frame *f = malloc(sizeof(*f) + size);
	if (f == NULL)
		rc = -ENOMEM;
	else
		rc = encode_frame(a, f->data, size);
	struct conn *direct = NULL;
	pthread_mutex_lock(&n->lock);
	/* The peer may have gone down (its queue dropped) or been removed
	 * meanwhile; then this frame goes nowhere. */
	if (rc == 0 && p->up && p->id == to) {
		f->size = size;
		f->counted = true;
		direct = idle_conn(p, size);
		if (direct == NULL)
			sendq_append(&p->q, f);
	} else {
		/* Failed, or the connection went down meanwhile: its queue
		 * was dropped, and this frame with it. */
		p->q.bytes -= size;
		p->q.frames--;
		p->dropped_frames++;
		if (rc == 0)
			rc = -ENOTCONN;
	}
	pthread_mutex_unlock(&n->lock);
	if (direct != NULL) {
		/* Written here, without waking the I/O thread, unless the
		 * socket took only part of it. */
		bool whole = net_conn_write_direct(n, direct, f);
		pthread_mutex_unlock(&direct->mu);
		if (!whole)
			net_wake(n);
		return 0;
	}
	if (rc != 0)
		free(f);
	if (rc == 0)
		net_wake(n);
	return rc;
}

int net_admin_reply(struct net *n, uint64_t conn_id,
		    const struct net_admin_msg *resp)
{
	size_t size = net_admin_frame_size(resp->payload_bytes);
	struct out_frame *f = malloc(sizeof(*f) + size);
	if (f == NULL)
		return -ENOMEM;
	int rc = net_admin_frame_encode(NET_FRAME_ADMIN_RESPONSE, resp, f->data,
					size);
	if (rc < 0) {
		free(f);
		return rc;
	}
	f->size = size;
	f->counted = true;
	rc = -ENOENT;
	pthread_mutex_lock(&n->lock);
	for (struct conn *c = n->inbound; c; c = c->next) {
		if (c->id == conn_id) {
			rc = sendq_reserve(&c->own_q, size);
			if (rc == 0) {
				sendq_append(&c->own_q, f);
				f = NULL;
			}
			break;
		}
	}
	pthread_mutex_unlock(&n->lock);
	free(f);
	if (rc == 0)
		net_wake(n);
	return rc;
}

