/* SHA-256 for the layer packer (sha256.c); not part of the ABI. */
#ifndef NOVABOX_SHA256_H
#define NOVABOX_SHA256_H

#include <stddef.h>
#include <stdint.h>

struct nb_sha256 {
	uint32_t s[8];
	uint64_t len;
	uint8_t buf[64];
	size_t fill;
	void *blocks; /* the block function chosen at init */
};

void nb_sha256_init(struct nb_sha256 *h);
void nb_sha256_update(struct nb_sha256 *h, const void *data, size_t len);
void nb_sha256_final(struct nb_sha256 *h, uint8_t out[32]);

#endif
