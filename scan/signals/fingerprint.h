/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * fingerprint.h - a body's fingerprint: a fixed-size signature such that
 * two bodies that differ only in what a mass mailing varies (names,
 * numbers, tracking links) get nearly the same one, and unrelated bodies
 * do not. Fed the decoded text in chunks as it streams, in bounded memory
 * (struct sg_fingerprint_ctx, ~450 bytes, no allocation); the chunking
 * never changes the result.
 *
 * Normalisation, as the text streams:
 *  - words are runs of letters, digits and non-ASCII bytes (UTF-8 letters);
 *    everything else (whitespace, punctuation, markup) only separates
 *    words: whitespace collapses, and "Hello,  world!" is "hello world";
 *  - ASCII letters are lowercased;
 *  - a word with a digit in it becomes "#" (amounts, dates, order and
 *    tracking numbers, codes);
 *  - a URL (http://, https://, or a word "www" followed by a dot) becomes
 *    "u:" and the last two labels of its host ("https://click.news.
 *    example.com/t/8Xk2?u=9" is "u:example.com"; an address literal is
 *    "u:#"): the path, the query and the fragment, where mailings put the
 *    recipient's tracking id, are dropped;
 *  - an e-mail address (a word followed by '@') becomes "@";
 *  - HTML is not stripped: tag and attribute names are words like any
 *    other (a template's markup is the same in every copy); the caller
 *    feeds what it has decoded, the text/plain part or text it extracted.
 * Shingles are the word 3-grams (one shingle of whatever there is when a
 * body has fewer than 3 words), hashed to 64 bits.
 *
 * The signature is a one-permutation min-hash (Li, Owen and Zhang, 2012)
 * of SG_FP_BINS bins: a shingle's top 6 hash bits pick a bin, which keeps
 * the smallest of the low 32 bits it has seen; bins left empty (short
 * bodies) borrow from the next non-empty bin with the distance mixed in
 * (Shrivastava and Li's rotation, 2014). The fraction of equal bins
 * between two signatures estimates the Jaccard similarity of their
 * shingle sets, with a standard error of about sqrt(J(1-J)/64): 0.05 at
 * J = 0.8.
 */
#ifndef SMTPGUARD_SCAN_FINGERPRINT_H
#define SMTPGUARD_SCAN_FINGERPRINT_H

#include <stddef.h>
#include <stdint.h>

#define SG_FP_BINS 64
#define SG_FP_SHINGLE_WORDS 3
#define SG_FP_HOST_TAIL 128	/* bytes of a URL's host kept: enough for its last two labels */

/* A message's fingerprint reads its first decoded text only, this many
 * bytes of it, whoever computes it (the content engine as the message
 * streams, the complaint reader from a report's copy): enough to know a
 * body again (a campaign's words are at its start), and its cost bounded
 * (it hashes every word: about 1.4 us a KiB) whatever the message's size. */
#define SG_FP_TEXT_MAX 4096

struct sg_fingerprint {
	uint32_t bins[SG_FP_BINS];
	uint32_t shingles;	/* how many were hashed (saturating); 0: an empty body */
};

struct sg_fingerprint_ctx {
	struct sg_fingerprint fp;
	uint64_t recent[SG_FP_SHINGLE_WORDS - 1];	/* the last words' hashes */
	uint32_t words;		/* saturating */
	uint8_t state;
	/* the word being read */
	uint64_t word_hash;
	uint32_t word_len;
	uint8_t word_has_digit;
	char word_head[6];	/* its first bytes: is it "http", "https", "www"? */
	uint8_t slashes;	/* of "://" after http: */
	/* the host of a URL being read: its last bytes */
	char host[SG_FP_HOST_TAIL];
	uint32_t host_len;
};

void sg_fingerprint_begin(struct sg_fingerprint_ctx *ctx);
/* Decoded text (the caller undoes quoted-printable and base64). */
void sg_fingerprint_feed(struct sg_fingerprint_ctx *ctx, const char *text, size_t n);
void sg_fingerprint_end(struct sg_fingerprint_ctx *ctx, struct sg_fingerprint *out);

/* The share of equal bins, in percent: 100 for the same body after
 * normalisation, near 0 for unrelated ones. */
unsigned sg_fingerprint_similarity(const struct sg_fingerprint *a, const struct sg_fingerprint *b);

/* A 64-bit digest of the signature: equal for bodies equal after
 * normalisation, for events and logs. */
uint64_t sg_fingerprint_digest(const struct sg_fingerprint *fp);

#endif
