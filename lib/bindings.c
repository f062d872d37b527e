/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* bindings.c - reads the source_bindings file (see bindings.h). */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "bindings.h"

#define BINDINGS_LINE_MAX 4096

void sg_bindings_free(struct sg_bindings *b)
{
	free(b->v);
	memset(b, 0, sizeof(*b));
}

void sg_bound_key(const struct sg_prefix *p, struct sg_lpm_v6_key *key)
{
	memset(key, 0, sizeof(*key));
	if (p->family == AF_INET) {
		key->addr[10] = 0xff;
		key->addr[11] = 0xff;
		memcpy(key->addr + 12, p->addr, 4);
		key->prefixlen = 96 + p->len;
	} else {
		memcpy(key->addr, p->addr, 16);
		key->prefixlen = p->len;
	}
}

int sg_bound_key_covers(const struct sg_lpm_v6_key *p, const struct sg_lpm_v6_key *k)
{
	unsigned int bits = p->prefixlen, full = bits / 8;

	if (k->prefixlen < bits || memcmp(p->addr, k->addr, full) != 0)
		return 0;
	if (bits % 8) {
		uint8_t mask = (uint8_t)(0xff00 >> (bits % 8));

		return (p->addr[full] & mask) == (k->addr[full] & mask);
	}
	return 1;
}

int sg_bindings_names(const struct sg_bindings *b, const char *ifname)
{
	for (size_t i = 0; i < b->n; i++)
		if (strcmp(b->v[i].ifname, ifname) == 0)
			return 1;
	return 0;
}

static int add(struct sg_bindings *b, const char *ifname, const struct sg_prefix *p, int line,
	       const char *path, char *err, size_t errlen)
{
	struct sg_lpm_v6_key key, other;

	sg_bound_key(p, &key);
	for (size_t i = 0; i < b->n; i++) {
		sg_bound_key(&b->v[i].prefix, &other);
		if (other.prefixlen != key.prefixlen || memcmp(other.addr, key.addr, 16) != 0)
			continue;
		if (strcmp(b->v[i].ifname, ifname) == 0)
			return 0;	/* said twice: once is enough */
		snprintf(err, errlen, "%s:%d: the prefix is bound to %s on line %d already; a "
			 "source belongs to one interface", path, line, b->v[i].ifname,
			 b->v[i].line);
		return -1;
	}
	if (b->n == SG_MAX_BINDINGS) {
		snprintf(err, errlen, "%s:%d: more than %d prefixes", path, line, SG_MAX_BINDINGS);
		return -1;
	}
	if (b->n == b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 64;
		struct sg_binding *grown = realloc(b->v, cap * sizeof(*grown));

		if (!grown) {
			snprintf(err, errlen, "%s: out of memory", path);
			return -1;
		}
		b->v = grown;
		b->cap = cap;
	}
	memset(&b->v[b->n], 0, sizeof(b->v[b->n]));
	snprintf(b->v[b->n].ifname, sizeof(b->v[b->n].ifname), "%s", ifname);
	b->v[b->n].prefix = *p;
	b->v[b->n].line = line;
	b->n++;
	return 0;
}

static int read_line(struct sg_bindings *b, char *text, int line, const char *path,
		     char *err, size_t errlen)
{
	char *save = NULL, *ifname, *word, why[SG_ERR_LEN];
	char *hash = strchr(text, '#');
	int prefixes = 0;

	if (hash)
		*hash = '\0';
	ifname = strtok_r(text, " \t\r\n,", &save);
	if (!ifname)
		return 0;
	if (strlen(ifname) >= IF_NAMESIZE) {
		snprintf(err, errlen, "%s:%d: '%s' is longer than an interface name (%d "
			 "characters at most)", path, line, ifname, IF_NAMESIZE - 1);
		return -1;
	}
	while ((word = strtok_r(NULL, " \t\r\n,", &save))) {
		struct sg_prefix p;

		if (sg_parse_prefix(word, &p, why, sizeof(why))) {
			snprintf(err, errlen, "%s:%d: %s", path, line, why);
			return -1;
		}
		if (add(b, ifname, &p, line, path, err, errlen))
			return -1;
		prefixes++;
	}
	if (!prefixes) {
		snprintf(err, errlen, "%s:%d: %s has no prefix (write 'IFNAME PREFIX...', e.g. "
			 "'tap101i0 192.0.2.11/32 2001:db8:1::/64')", path, line, ifname);
		return -1;
	}
	return 0;
}

int sg_bindings_load(const char *path, struct sg_bindings *out, char *err, size_t errlen)
{
	char text[BINDINGS_LINE_MAX];
	int line = 0, ret = 0;
	FILE *f;

	memset(out, 0, sizeof(*out));
	if (!path || !path[0])
		return 0;
	f = fopen(path, "r");
	if (!f) {
		snprintf(err, errlen, "cannot open source_bindings file %s: %s", path,
			 strerror(errno));
		return -1;
	}
	while (!ret && fgets(text, sizeof(text), f)) {
		line++;
		if (!strchr(text, '\n') && !feof(f)) {
			snprintf(err, errlen, "%s:%d: line longer than %d characters (split the "
				 "interface's prefixes over several lines)", path, line,
				 BINDINGS_LINE_MAX - 2);
			ret = -1;
			break;
		}
		ret = read_line(out, text, line, path, err, errlen);
	}
	fclose(f);
	if (ret)
		sg_bindings_free(out);
	return ret;
}
