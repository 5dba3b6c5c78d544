/*
 * The `--connect HOST:PORT --certs DIR` half of status, member, leader and
 * snapshot: one admin request to a node over TLS with the administrator's
 * certificate (DIR/admin.crt and admin.key, DIR/ca.crt).
 */

#include "tools/daemon.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BUSY_TRIES 20
#define BUSY_WAIT_US (100 * 1000)

int admin_remote_call(const char *address, const char *certs, uint16_t kind,
		      const char *payload, uint32_t timeout_ms, char **answer,
		      size_t *len, char *err, size_t err_size)
{
	char ca[4200], crt[4200], key[4200];
	struct net_client_options o = {0};
	struct net_admin_msg req = {0}, resp;
	uint8_t *buf = malloc(NET_MAX_ADMIN_PAYLOAD_BYTES + 1);
	int rc = 0;

	*answer = NULL;
	*len = 0;
	if (buf == NULL)
		return text_error(err, err_size, -ENOMEM, "out of memory");
	snprintf(ca, sizeof(ca), "%s/ca.crt", certs);
	snprintf(crt, sizeof(crt), "%s/admin.crt", certs);
	snprintf(key, sizeof(key), "%s/admin.key", certs);
	o.ca_file = ca;
	o.cert_file = crt;
	o.key_file = key;
	o.timeout_ms = timeout_ms;
	req.kind = kind;
	req.request_id = 1;
	req.payload = (const uint8_t *)payload;
	req.payload_bytes = (uint32_t)strlen(payload);
	/* A busy node (4 slow requests at once) says so: ask again. */
	for (int tries = 0; tries < BUSY_TRIES; tries++) {
		rc = net_admin_call(address, &o, &req, buf,
				    NET_MAX_ADMIN_PAYLOAD_BYTES, &resp, err,
				    err_size);
		if (rc != 0 || resp.payload_bytes != 5 ||
		    memcmp(resp.payload, "busy\n", 5) != 0)
			break;
		usleep(BUSY_WAIT_US);
	}
	if (rc != 0) {
		free(buf);
		return rc;
	}
	memmove(buf, resp.payload, resp.payload_bytes);
	buf[resp.payload_bytes] = '\0';
	*answer = (char *)buf;
	*len = resp.payload_bytes;
	return 0;
}
