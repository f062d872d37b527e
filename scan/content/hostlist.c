/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * hostlist.c - loading and looking up the url-host target's lists of hosts
 * and domains (see hostlist.h).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "hostlist.h"
#include "keyhash.h"
#include "textfile.h"

/* A slot of the open-addressed table: the entry's arena offset + 1 (0: an
 * empty slot) and the low 32 bits of its hash, which also place it. */
struct hostlist_slot {
	uint32_t off1;
	uint32_t tag;
};

struct sg_hostlist {
	struct sg_hash_key key;
	unsigned char *arena;		/* entries as [length byte][bytes] */
	size_t arena_len, arena_cap;
	struct hostlist_slot *slots;
	size_t nslots;			/* a power of 2 */
	size_t count;
};

static int is_host_byte(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
	       c == '.' || c >= 0x80;
}

static int is_hex_digit(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

int sg_host_is_ip(const char *host, size_t len)
{
	int only_digits_and_dots = len > 0;

	for (size_t i = 0; i < len; i++) {
		if (host[i] == ':')
			return 1;
		if (!(host[i] == '.' || (host[i] >= '0' && host[i] <= '9')))
			only_digits_and_dots = 0;
	}
	return only_digits_and_dots;
}

int sg_host_normalize(const char *host, size_t len, char *out)
{
	while (len && host[len - 1] == '.')
		len--;
	if (!len || len > SG_HOST_MAX)
		return -1;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)host[i];

		out[i] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
	}
	return (int)len;
}

static int slot_find(const struct sg_hostlist *l, const char *host, size_t len, uint32_t tag)
{
	size_t mask = l->nslots - 1;

	for (size_t i = tag & mask;; i = (i + 1) & mask) {
		const struct hostlist_slot *s = &l->slots[i];
		const unsigned char *e;

		if (!s->off1)
			return -(int)(i + 1);	/* where it would go */
		if (s->tag != tag)
			continue;
		e = l->arena + s->off1 - 1;
		if (e[0] == len && memcmp(e + 1, host, len) == 0)
			return 1;
	}
}

static int table_grow(struct sg_hostlist *l)
{
	size_t n = l->nslots ? l->nslots * 2 : 1024, mask = n - 1;
	struct hostlist_slot *slots = calloc(n, sizeof(*slots));

	if (!slots)
		return -1;
	for (size_t i = 0; i < l->nslots; i++) {
		size_t j;

		if (!l->slots[i].off1)
			continue;
		for (j = l->slots[i].tag & mask; slots[j].off1; j = (j + 1) & mask)
			;
		slots[j] = l->slots[i];
	}
	free(l->slots);
	l->slots = slots;
	l->nslots = n;
	return 0;
}

/* Adds a normalized entry (a duplicate is kept once): 0, or -1 out of memory. */
static int hostlist_add(struct sg_hostlist *l, const char *host, size_t len)
{
	uint32_t tag = (uint32_t)sg_keyhash(&l->key, host, len);
	int where;

	if ((l->count + 1) * 2 > l->nslots && table_grow(l) < 0)
		return -1;
	where = slot_find(l, host, len, tag);
	if (where > 0)
		return 0;
	if (l->arena_len + len + 1 > l->arena_cap) {
		size_t cap = l->arena_cap ? l->arena_cap * 2 : 65536;
		unsigned char *a;

		while (cap < l->arena_len + len + 1)
			cap *= 2;
		a = realloc(l->arena, cap);
		if (!a)
			return -1;
		l->arena = a;
		l->arena_cap = cap;
	}
	l->slots[-where - 1].off1 = (uint32_t)(l->arena_len + 1);
	l->slots[-where - 1].tag = tag;
	l->arena[l->arena_len] = (unsigned char)len;
	memcpy(l->arena + l->arena_len + 1, host, len);
	l->arena_len += len + 1;
	l->count++;
	return 0;
}

/* One line's entry, normalized into out: its length, 0 for a line with
 * none (blank, comment), or -1 with why (and the column) in err. */
static int parse_entry(char *s, size_t len, char *out, size_t *column, char *why, size_t whylen)
{
	size_t a = 0, b, n = 0;
	char *hash = memchr(s, '#', len);
	int ip6 = 0;

	if (hash)
		len = (size_t)(hash - s);
	while (a < len && (s[a] == ' ' || s[a] == '\t'))
		a++;
	while (len > a && (s[len - 1] == ' ' || s[len - 1] == '\t'))
		len--;
	*column = a + 1;
	if (a == len)
		return 0;
	for (b = a; b < len; b++)
		if (s[b] == ' ' || s[b] == '\t') {
			*column = b + 1;
			snprintf(why, whylen, "more than one entry on the line; write one host "
				 "or domain a line");
			return -1;
		}
	if (len - a >= 2 && s[a] == '*' && s[a + 1] == '.')
		a += 2;		/* "*.evil.example": the domain, as every entry is */
	else if (a < len && s[a] == '.')
		a++;
	if (a < len && s[a] == '[' && s[len - 1] == ']') {
		a++;
		len--;
		ip6 = 1;
	}
	while (len > a && s[len - 1] == '.')
		len--;
	if (len == a) {
		snprintf(why, whylen, "an empty host");
		return -1;
	}
	if (len - a > SG_HOST_MAX) {
		snprintf(why, whylen, "the entry is %zu bytes; a host is at most %d", len - a,
			 SG_HOST_MAX);
		return -1;
	}
	for (b = a; b < len; b++) {
		unsigned char c = (unsigned char)s[b];

		if (c >= 'A' && c <= 'Z')
			c += 32;
		if (c == ':')
			ip6 = 1;
		out[n++] = (char)c;
	}
	for (b = 0; b < (size_t)n; b++) {
		unsigned char c = (unsigned char)out[b];
		int ok = ip6 ? (is_hex_digit(c) || c == ':' || c == '.') : is_host_byte(c);

		if (!ok || (!ip6 && c == '.' && (b == 0 || out[b - 1] == '.'))) {
			*column = a + b + 1;
			snprintf(why, whylen, "'%c' cannot be in a host name (letters, digits, "
				 "'-', '_' and '.' between labels; IPv6 hex digits and ':')",
				 c >= 0x20 && c < 0x7f ? c : '?');
			return -1;
		}
	}
	return (int)n;
}

struct sg_hostlist *sg_hostlist_load(const char *path, char *err, size_t errlen)
{
	struct sg_hostlist *l = calloc(1, sizeof(*l));
	struct sg_textfile tf;
	char entry[SG_HOST_MAX + 1], why[160];
	size_t len, column;
	char *line;
	int rc;

	if (!l) {
		snprintf(err, errlen, "%s: out of memory", path);
		return NULL;
	}
	sg_hash_key_random(&l->key);
	if (table_grow(l) < 0 || sg_textfile_open(&tf, path, SG_HOSTLIST_LINE_MAX,
						   SG_HOSTLIST_FILE_MAX, err, errlen) < 0) {
		if (!l->slots)
			snprintf(err, errlen, "%s: out of memory", path);
		sg_hostlist_free(l);
		return NULL;
	}
	while ((rc = sg_textfile_next(&tf, &line, &len, err, errlen)) > 0) {
		int n = parse_entry(line, len, entry, &column, why, sizeof(why));

		if (n < 0) {
			snprintf(err, errlen, "%s:%lu:%zu: %s", path, tf.lineno, column, why);
			rc = -1;
			break;
		}
		if (n == 0)
			continue;
		if (l->count == SG_HOSTLIST_MAX) {
			snprintf(err, errlen, "%s:%lu: more than %d hosts; split the list over "
				 "several rules", path, tf.lineno, SG_HOSTLIST_MAX);
			rc = -1;
			break;
		}
		if (hostlist_add(l, entry, (size_t)n) < 0) {
			snprintf(err, errlen, "%s:%lu: out of memory", path, tf.lineno);
			rc = -1;
			break;
		}
	}
	sg_textfile_close(&tf);
	if (rc < 0) {
		sg_hostlist_free(l);
		return NULL;
	}
	if (l->arena_len && l->arena_len < l->arena_cap) {	/* give back the doubling's slack */
		unsigned char *a = realloc(l->arena, l->arena_len);

		if (a) {
			l->arena = a;
			l->arena_cap = l->arena_len;
		}
	}
	return l;
}

void sg_hostlist_free(struct sg_hostlist *l)
{
	if (!l)
		return;
	free(l->arena);
	free(l->slots);
	free(l);
}

size_t sg_hostlist_count(const struct sg_hostlist *l)
{
	return l ? l->count : 0;
}

size_t sg_hostlist_memory(const struct sg_hostlist *l)
{
	return l ? sizeof(*l) + l->arena_cap + l->nslots * sizeof(struct hostlist_slot) : 0;
}

static int hostlist_has(const struct sg_hostlist *l, const char *host, size_t len)
{
	return slot_find(l, host, len, (uint32_t)sg_keyhash(&l->key, host, len)) > 0;
}

int sg_hostlist_match(const struct sg_hostlist *l, const char *host, size_t len)
{
	if (!l || !len || len > SG_HOST_MAX)
		return 0;
	if (sg_host_is_ip(host, len))
		return hostlist_has(l, host, len);
	/* the host, then each parent domain: a.b.evil.example, b.evil.example, ... */
	for (size_t i = 0; i < len;) {
		const char *dot;

		if (hostlist_has(l, host + i, len - i))
			return 1;
		dot = memchr(host + i, '.', len - i);
		if (!dot)
			break;
		i = (size_t)(dot - host) + 1;
	}
	return 0;
}
