/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * allow.c - the response ladder's allow list (ladder_allow): senders the
 * ladder never moves, for the false positives an operator has looked at.
 * One entry a line, '#' comments: a prefix ("192.0.2.0/24",
 * "2001:db8::/48", a bare address) or a sub-identity ("from:DOMAIN" for a
 * MAIL FROM domain and its subdomains, "script:NAME" for an
 * X-PHP-Originating-Script, "user:NAME" for an authenticated user).
 */
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "allow.h"
#include "parse.h"

#define ALLOW_MAX 100000

struct allow_sub {
	char kind;		/* 'f' from, 's' script, 'u' user */
	char value[128];
};

struct sg_allow {
	struct sg_prefix *prefixes;
	size_t n_prefixes, cap_prefixes;
	struct allow_sub *subs;
	size_t n_subs, cap_subs;
};

void sg_allow_free(struct sg_allow *a)
{
	if (!a)
		return;
	free(a->prefixes);
	free(a->subs);
	free(a);
}

static int add_sub(struct sg_allow *a, char kind, const char *value, char *err, size_t errlen,
		   const char *path, int lineno)
{
	struct allow_sub *sub;

	if (!value[0] || strlen(value) >= sizeof(sub->value)) {
		snprintf(err, errlen, "%s, line %d: a sub-identity needs a value of 1 to %zu "
			 "characters", path, lineno, sizeof(sub->value) - 1);
		return -1;
	}
	if (sg_grow((void **)&a->subs, a->n_subs, &a->cap_subs, sizeof(*a->subs))) {
		snprintf(err, errlen, "%s: out of memory", path);
		return -1;
	}
	sub = &a->subs[a->n_subs++];
	sub->kind = kind;
	snprintf(sub->value, sizeof(sub->value), "%s", value);
	return 0;
}

struct sg_allow *sg_allow_load(const char *path, char *err, size_t errlen)
{
	struct sg_allow *a = calloc(1, sizeof(*a));
	char line[512], perr[SG_ERR_LEN];
	int lineno = 0;
	FILE *f;

	if (!a) {
		snprintf(err, errlen, "out of memory loading %s", path);
		return NULL;
	}
	f = fopen(path, "r");
	if (!f) {
		snprintf(err, errlen, "cannot open ladder_allow file %s: %s", path, strerror(errno));
		free(a);
		return NULL;
	}
	while (fgets(line, sizeof(line), f)) {
		char *s = line, *end;

		lineno++;
		line[strcspn(line, "#\r\n")] = '\0';
		while (isspace((unsigned char)*s))
			s++;
		end = s + strlen(s);
		while (end > s && isspace((unsigned char)end[-1]))
			*--end = '\0';
		if (!*s)
			continue;
		if (a->n_prefixes + a->n_subs >= ALLOW_MAX) {
			snprintf(err, errlen, "%s, line %d: more than %d entries", path, lineno,
				 ALLOW_MAX);
			goto fail;
		}
		if (!strncmp(s, "from:", 5) || !strncmp(s, "script:", 7) || !strncmp(s, "user:", 5)) {
			if (add_sub(a, s[0], strchr(s, ':') + 1, err, errlen, path, lineno))
				goto fail;
			continue;
		}
		if (strchr(s, ':') && !strchr(s, '.') && !strchr(s, '/') && isalpha((unsigned char)*s) &&
		    strchr(s, ':') - s > 4) {
			snprintf(err, errlen, "%s, line %d: '%.60s' is no entry: a prefix, or "
				 "from:DOMAIN, script:NAME or user:NAME", path, lineno, s);
			goto fail;
		}
		if (sg_grow((void **)&a->prefixes, a->n_prefixes, &a->cap_prefixes, sizeof(*a->prefixes))) {
			snprintf(err, errlen, "%s: out of memory", path);
			goto fail;
		}
		if (sg_parse_prefix(s, &a->prefixes[a->n_prefixes], perr, sizeof(perr))) {
			snprintf(err, errlen, "%s, line %d: %s (an entry is a prefix, or from:DOMAIN, "
				 "script:NAME or user:NAME)", path, lineno, perr);
			goto fail;
		}
		a->n_prefixes++;
	}
	fclose(f);
	return a;
fail:
	fclose(f);
	sg_allow_free(a);
	return NULL;
}

static int prefix_has(const struct sg_prefix *p, int family, const uint8_t *addr)
{
	unsigned int full = p->len / 8, rest = p->len % 8;

	if (p->family != family)
		return 0;
	if (memcmp(p->addr, addr, full))
		return 0;
	return !rest || ((p->addr[full] ^ addr[full]) & (uint8_t)(0xff << (8 - rest))) == 0;
}

int sg_allow_sender(const struct sg_allow *a, const struct sockaddr_storage *vm)
{
	const uint8_t *addr;
	int family = vm->ss_family;

	if (!a)
		return 0;
	if (family == AF_INET) {
		addr = (const uint8_t *)&((const struct sockaddr_in *)vm)->sin_addr;
	} else {
		addr = ((const struct sockaddr_in6 *)vm)->sin6_addr.s6_addr;
		if (IN6_IS_ADDR_V4MAPPED((const struct in6_addr *)addr)) {
			addr += 12;
			family = AF_INET;
		}
	}
	for (size_t i = 0; i < a->n_prefixes; i++)
		if (prefix_has(&a->prefixes[i], family, addr))
			return 1;
	return 0;
}

int sg_allow_sub(const struct sg_allow *a, char kind, const char *value)
{
	size_t n = value ? strlen(value) : 0;

	if (!a || !n)
		return 0;
	for (size_t i = 0; i < a->n_subs; i++) {
		const struct allow_sub *s = &a->subs[i];
		size_t m = strlen(s->value);

		if (s->kind != kind)
			continue;
		if (kind != 'f') {
			if (!strcmp(s->value, value))
				return 1;
			continue;
		}
		/* a domain, and its subdomains */
		if (n == m ? !strcasecmp(value, s->value) :
		    n > m && value[n - m - 1] == '.' && !strcasecmp(value + n - m, s->value))
			return 1;
	}
	return 0;
}
