/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * keyhash.h - the hashes of the behaviour store: a keyed hash for whatever
 * an attacker chooses (sender keys, domains, MX names) and a fast unkeyed
 * mixer for the body fingerprint's words.
 *
 * Keys and domains come from the VMs, which may read this code: hashed
 * with a public function, they could be chosen to pile into one hash chain
 * or to starve a HyperLogLog (names whose hashes have no leading zeros are
 * never counted). SipHash-2-4 under a per-store secret key (struct
 * sg_hash_key) makes both a guess. The fingerprint's words need no secret
 * (varying a body is what a spammer does anyway) and must hash the same in
 * every process, so fingerprints can be logged and compared between hosts.
 */
#ifndef SMTPGUARD_SCAN_KEYHASH_H
#define SMTPGUARD_SCAN_KEYHASH_H

#include <stddef.h>
#include <stdint.h>

struct sg_hash_key {
	uint64_t k0, k1;
};

/* SipHash-2-4 of data under key. */
uint64_t sg_keyhash(const struct sg_hash_key *key, const void *data, size_t len);

/* A key from the kernel's random source; a fixed fallback if it fails
 * (early boot): the hashes then still work, only less secretly. */
void sg_hash_key_random(struct sg_hash_key *key);

/* A finaliser that spreads every input bit over the output (the one of
 * SplitMix64): for values that are already hashes, or not chosen by an
 * attacker. */
static inline uint64_t sg_mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	x ^= x >> 31;
	return x;
}

#endif
