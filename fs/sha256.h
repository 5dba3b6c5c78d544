#ifndef FS_SHA256_H
#define FS_SHA256_H

/* SHA-256 (FIPS 180-4) for the state hash; fs/ may not use OpenSSL.
 * Private to fs/. */

#include <stddef.h>
#include <stdint.h>

struct fs_sha256 {
	uint32_t h[8];
	uint64_t len; /* bytes hashed */
	uint8_t buf[64];
	size_t n; /* bytes in buf */
};

void fs_sha256_init(struct fs_sha256 *c);
void fs_sha256_update(struct fs_sha256 *c, const void *data, size_t len);
void fs_sha256_final(struct fs_sha256 *c, uint8_t out[32]);

#endif
