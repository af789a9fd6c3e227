/*
 * SHA-256 (FIPS 180-4) for the layer packer, which hashes the tar while writing it.
 * Two block functions: the x86 SHA extensions (SHA-NI, ~1.5-2 GB/s, chosen at run time
 * with cpuid) and portable C for every other CPU (~200-400 MB/s). The packer calls
 * nb_sha256_update with whatever it writes, in order.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "novabox.h"
#include "sha256.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#include <immintrin.h>
#define NB_SHA_X86 1
#endif

static const uint32_t K[64] = {
	0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
	0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
	0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
	0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
	0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
	0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
	0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
	0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

#define ROR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static void blocks_c(uint32_t s[8], const uint8_t *p, size_t n) {
	for (; n; n--, p += 64) {
		uint32_t w[64];
		for (int i = 0; i < 16; i++) w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
		for (int i = 16; i < 64; i++) {
			uint32_t s0 = ROR(w[i - 15], 7) ^ ROR(w[i - 15], 18) ^ (w[i - 15] >> 3);
			uint32_t s1 = ROR(w[i - 2], 17) ^ ROR(w[i - 2], 19) ^ (w[i - 2] >> 10);
			w[i] = w[i - 16] + s0 + w[i - 7] + s1;
		}
		uint32_t a = s[0], b = s[1], c = s[2], d = s[3], e = s[4], f = s[5], g = s[6], h = s[7];
		for (int i = 0; i < 64; i++) {
			uint32_t t1 = h + (ROR(e, 6) ^ ROR(e, 11) ^ ROR(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + w[i];
			uint32_t t2 = (ROR(a, 2) ^ ROR(a, 13) ^ ROR(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
			h = g;
			g = f;
			f = e;
			e = d + t1;
			d = c;
			c = b;
			b = a;
			a = t1 + t2;
		}
		s[0] += a, s[1] += b, s[2] += c, s[3] += d, s[4] += e, s[5] += f, s[6] += g, s[7] += h;
	}
}

#ifdef NB_SHA_X86
/*
 * The SHA extensions keep the state as two vectors, ABEF and CDGH; sha256rnds2 does two
 * rounds, sha256msg1/msg2 extend the message schedule four words at a time.
 */
__attribute__((target("sha,sse4.1,ssse3"))) static void blocks_shani(uint32_t s[8], const uint8_t *p, size_t n) {
	const __m128i bswap = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
	__m128i t = _mm_loadu_si128((const __m128i *)&s[0]);   /* a b c d */
	__m128i s1 = _mm_loadu_si128((const __m128i *)&s[4]);  /* e f g h */
	t = _mm_shuffle_epi32(t, 0xB1);                         /* c d a b */
	s1 = _mm_shuffle_epi32(s1, 0x1B);                       /* h g f e */
	__m128i s0 = _mm_alignr_epi8(t, s1, 8);                 /* ABEF */
	s1 = _mm_blend_epi16(s1, t, 0xF0);                      /* CDGH */
	for (; n; n--, p += 64) {
		const __m128i abef = s0, cdgh = s1;
		__m128i w[4];
#pragma GCC unroll 16
		for (int i = 0; i < 16; i++) {
			__m128i m;
			if (i < 4) {
				m = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(p + 16 * i)), bswap);
			} else {
				/* W[i] from W[i-4], W[i-3], W[i-2], W[i-1] (four words each) */
				m = _mm_sha256msg1_epu32(w[i & 3], w[(i + 1) & 3]);
				m = _mm_add_epi32(m, _mm_alignr_epi8(w[(i + 3) & 3], w[(i + 2) & 3], 4));
				m = _mm_sha256msg2_epu32(m, w[(i + 3) & 3]);
			}
			w[i & 3] = m;
			__m128i k = _mm_add_epi32(m, _mm_loadu_si128((const __m128i *)&K[4 * i]));
			s1 = _mm_sha256rnds2_epu32(s1, s0, k);
			k = _mm_shuffle_epi32(k, 0x0E);
			s0 = _mm_sha256rnds2_epu32(s0, s1, k);
		}
		s0 = _mm_add_epi32(s0, abef);
		s1 = _mm_add_epi32(s1, cdgh);
	}
	t = _mm_shuffle_epi32(s0, 0x1B);                        /* F E B A */
	s1 = _mm_shuffle_epi32(s1, 0xB1);                       /* D C H G */
	s0 = _mm_blend_epi16(t, s1, 0xF0);                      /* D C B A -> a b c d in memory */
	s1 = _mm_alignr_epi8(s1, t, 8);                         /* H G F E -> e f g h in memory */
	_mm_storeu_si128((__m128i *)&s[0], s0);
	_mm_storeu_si128((__m128i *)&s[4], s1);
}

static int have_shani(void) {
	unsigned a, b, c, d;
	if (!__get_cpuid_count(7, 0, &a, &b, &c, &d) || !(b & (1u << 29))) return 0; /* SHA */
	if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
	return (c & (1u << 19)) && (c & (1u << 9)); /* SSE4.1, SSSE3 */
}
#endif

typedef void (*blocks_fn)(uint32_t s[8], const uint8_t *p, size_t n);

static blocks_fn pick(void) {
	const char *force = getenv("NOVABOX_SHA256_PORTABLE"); /* tests: exercise the portable code */
	if (force && force[0] == '1') return blocks_c;
#ifdef NB_SHA_X86
	if (have_shani()) return blocks_shani;
#endif
	return blocks_c;
}

void nb_sha256_init(struct nb_sha256 *h) {
	static const uint32_t iv[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
	memcpy(h->s, iv, sizeof iv);
	h->len = 0;
	h->fill = 0;
	h->blocks = (void *)pick();
}

void nb_sha256_update(struct nb_sha256 *h, const void *data, size_t len) {
	const uint8_t *p = data;
	blocks_fn f = (blocks_fn)h->blocks;
	h->len += len;
	if (h->fill) {
		size_t take = 64 - h->fill < len ? 64 - h->fill : len;
		memcpy(h->buf + h->fill, p, take);
		h->fill += take;
		p += take;
		len -= take;
		if (h->fill < 64) return;
		f(h->s, h->buf, 1);
		h->fill = 0;
	}
	if (len >= 64) {
		f(h->s, p, len / 64);
		p += len & ~(size_t)63;
		len &= 63;
	}
	if (len) {
		memcpy(h->buf, p, len);
		h->fill = len;
	}
}

void nb_sha256_final(struct nb_sha256 *h, uint8_t out[32]) {
	uint64_t bits = h->len * 8;
	uint8_t tail[72] = {0x80};
	size_t padlen = (h->fill < 56 ? 56 : 120) - h->fill;
	for (int i = 0; i < 8; i++) tail[padlen + i] = (uint8_t)(bits >> (56 - 8 * i));
	nb_sha256_update(h, tail, padlen + 8);
	for (int i = 0; i < 8; i++) {
		out[4 * i] = (uint8_t)(h->s[i] >> 24);
		out[4 * i + 1] = (uint8_t)(h->s[i] >> 16);
		out[4 * i + 2] = (uint8_t)(h->s[i] >> 8);
		out[4 * i + 3] = (uint8_t)h->s[i];
	}
}

/* The whole-buffer form, for the TypeScript side (src/sys/native.ts sha256Hex). */
NB_API void nb_sha256(const uint8_t *data, size_t len, uint8_t *out) {
	struct nb_sha256 h;
	nb_sha256_init(&h);
	nb_sha256_update(&h, data, len);
	nb_sha256_final(&h, out);
}
