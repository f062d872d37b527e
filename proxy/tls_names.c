/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * tls_names.c - which names may authenticate an MX's certificate
 * (tls_mx_verify = verify; see tls.h): the operator's file tls_mx_names
 * (the names of the MXes at an address or prefix), and the checks of a
 * certificate against a name from it, the VM's SNI or a recipient domain.
 *
 * The VM chooses its SNI and its recipients, and may be hostile: a name of
 * its choosing only ever proves that the MX holds a CA-signed certificate
 * for that name (or, for a recipient domain, a name under that domain),
 * which makes the MX that domain's server. So the checks refuse anything
 * that is not a plain host name of two labels or more: no wildcard, no
 * leading dot (OpenSSL would read ".net" as "any name under net"), no
 * address literal, no single label ("net" would admit every *.net host).
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/x509v3.h>
#include "parse.h"
#include "tls.h"

#define SG_NAMES_LINE_MAX 4096
#define SG_NAMES_PER_LINE 16
#define SG_NAMES_ENTRIES_MAX 65536
#define SG_HOST_NAME_MAX 253

struct mx_names_entry {
	struct sg_prefix prefix;
	int line;
	int n;
	char *names[SG_NAMES_PER_LINE];
};

struct sg_mx_names {
	struct mx_names_entry *entries;
	int n, cap;
};

int sg_tls_host_name_ok(const char *name, int allow_wildcard)
{
	size_t len = strlen(name), label = 0;
	int labels = 1, last_all_digits = 1;

	if (allow_wildcard && name[0] == '*' && name[1] == '.') {
		name += 2;
		len -= 2;
	}
	if (len == 0 || len > SG_HOST_NAME_MAX)
		return -1;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];

		if (c == '.') {
			/* an empty label, or one that ends with a hyphen */
			if (label == 0 || name[i - 1] == '-')
				return -1;
			labels++;
			label = 0;
			last_all_digits = 1;
			continue;
		}
		if (!isalnum(c) && c != '-')
			return -1;
		if (c == '-' && label == 0)
			return -1;
		if (!isdigit(c))
			last_all_digits = 0;
		if (++label > 63)
			return -1;
	}
	if (label == 0 || name[len - 1] == '-')
		return -1;
	/* "192.0.2.1" is an address, not a name; "net" a top-level domain */
	return labels >= 2 && !last_all_digits ? 0 : -1;
}

/* No partial wildcards ("mx*.example.net"): RFC 6125's advice, and what
 * the MTAs that verify names (Postfix, Exim) accept. */
#define CHECK_FLAGS X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS

int sg_tls_cert_valid_for_host(X509 *cert, const char *host)
{
	return cert && sg_tls_host_name_ok(host, 0) == 0 &&
	       X509_check_host(cert, host, 0, CHECK_FLAGS, NULL) == 1;
}

int sg_tls_cert_valid_for_domain(X509 *cert, const char *domain)
{
	char under[SG_HOST_NAME_MAX + 2];

	if (!cert || sg_tls_host_name_ok(domain, 0))
		return 0;
	if (X509_check_host(cert, domain, 0, CHECK_FLAGS, NULL) == 1)
		return 1;
	/* OpenSSL matches a name that starts with a dot against every name
	 * under it; the dot keeps the match on a label's boundary */
	snprintf(under, sizeof(under), ".%s", domain);
	return X509_check_host(cert, under, 0, CHECK_FLAGS, NULL) == 1;
}

int sg_tls_cert_valid_for_trusted(X509 *cert, const char *name)
{
	if (!cert || sg_tls_host_name_ok(name, 1))
		return 0;
	if (name[0] != '*')
		return sg_tls_cert_valid_for_host(cert, name);
	/* "*.mail.example.com": a name one label under mail.example.com */
	return X509_check_host(cert, name + 1, 0,
			       CHECK_FLAGS | X509_CHECK_FLAG_SINGLE_LABEL_SUBDOMAINS, NULL) == 1;
}

void sg_mx_names_free(struct sg_mx_names *names)
{
	if (!names)
		return;
	for (int i = 0; i < names->n; i++)
		for (int j = 0; j < names->entries[i].n; j++)
			free(names->entries[i].names[j]);
	free(names->entries);
	free(names);
}

int sg_mx_names_count(const struct sg_mx_names *names)
{
	return names ? names->n : 0;
}

/* One line's entry (comments and blanks already gone); 0, or -1 with err
 * (what is wrong; the caller adds the file and the line). */
static int parse_entry(char *text, struct mx_names_entry *e, char *err, size_t errlen)
{
	char *save = NULL, *tok = strtok_r(text, " \t", &save);
	char perr[SG_ERR_LEN];

	if (sg_parse_prefix(tok, &e->prefix, perr, sizeof(perr))) {
		snprintf(err, errlen, "%s", perr);
		return -1;
	}
	while ((tok = strtok_r(NULL, " \t", &save)) != NULL) {
		size_t len = strlen(tok);

		if (e->n == SG_NAMES_PER_LINE) {
			snprintf(err, errlen, "more than %d names for %s", SG_NAMES_PER_LINE,
				 text);
			return -1;
		}
		/* names are compared without case; a final dot (the root) is
		 * how DNS writes them, not part of the name */
		for (char *c = tok; *c; c++)
			*c = (char)tolower((unsigned char)*c);
		if (len > 1 && tok[len - 1] == '.')
			tok[--len] = '\0';
		if (sg_tls_host_name_ok(tok, 1)) {
			snprintf(err, errlen, "'%s' is not a host name (letters, digits and "
				 "hyphens in labels apart by dots, at least two labels; a wildcard "
				 "only as a whole first label, e.g. *.mail.example.com)", tok);
			return -1;
		}
		e->names[e->n] = strdup(tok);
		if (!e->names[e->n]) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		e->n++;
	}
	if (e->n == 0) {
		snprintf(err, errlen, "%s has no name after it (expected 'ADDRESS-or-PREFIX NAME "
			 "[NAME...]', e.g. '198.51.100.25 mx.example.net')", text);
		return -1;
	}
	return 0;
}

static int same_prefix(const struct sg_prefix *a, const struct sg_prefix *b)
{
	return a->family == b->family && a->len == b->len &&
	       memcmp(a->addr, b->addr, sizeof(a->addr)) == 0;
}

/* One line of the file into names; 0 for a blank or comment line. */
static int add_line(struct sg_mx_names *names, char *line, int lineno, char *err, size_t errlen)
{
	struct mx_names_entry e = { .line = lineno };
	char *hash = strchr(line, '#');

	if (hash)
		*hash = '\0';
	line += strspn(line, " \t\r\n");
	line[strcspn(line, "\r\n")] = '\0';
	if (!*line)
		return 0;
	if (parse_entry(line, &e, err, errlen))
		goto fail;
	for (int i = 0; i < names->n; i++) {
		if (same_prefix(&names->entries[i].prefix, &e.prefix)) {
			char net[INET6_ADDRSTRLEN + 8];

			sg_format_prefix(&e.prefix, net, sizeof(net));
			snprintf(err, errlen, "%s is listed already, on line %d (one line an "
				 "address or prefix, with all its names)", net,
				 names->entries[i].line);
			goto fail;
		}
	}
	if (names->n == SG_NAMES_ENTRIES_MAX) {
		snprintf(err, errlen, "more than %d entries", SG_NAMES_ENTRIES_MAX);
		goto fail;
	}
	if (names->n == names->cap) {
		int cap = names->cap ? names->cap * 2 : 16;
		struct mx_names_entry *grown = realloc(names->entries, (size_t)cap * sizeof(e));

		if (!grown) {
			snprintf(err, errlen, "out of memory");
			goto fail;
		}
		names->entries = grown;
		names->cap = cap;
	}
	names->entries[names->n++] = e;
	return 0;
fail:
	for (int j = 0; j < e.n; j++)
		free(e.names[j]);
	return -1;
}

struct sg_mx_names *sg_mx_names_load(const char *path, char *err, size_t errlen)
{
	struct sg_mx_names *names = calloc(1, sizeof(*names));
	char line[SG_NAMES_LINE_MAX], why[SG_ERR_LEN * 2];
	int lineno = 0;
	FILE *f;

	if (!names) {
		snprintf(err, errlen, "tls_mx_names %s: out of memory", path);
		return NULL;
	}
	f = fopen(path, "re");
	if (!f) {
		snprintf(err, errlen, "tls_mx_names %s: cannot open it: %s", path, strerror(errno));
		free(names);
		return NULL;
	}
	while (fgets(line, sizeof(line), f)) {
		lineno++;
		if (!strchr(line, '\n') && !feof(f)) {
			snprintf(err, errlen, "tls_mx_names %s, line %d: longer than %d characters",
				 path, lineno, SG_NAMES_LINE_MAX - 2);
			goto fail;
		}
		if (add_line(names, line, lineno, why, sizeof(why))) {
			snprintf(err, errlen, "tls_mx_names %s, line %d: %s", path, lineno, why);
			goto fail;
		}
	}
	if (ferror(f)) {
		snprintf(err, errlen, "tls_mx_names %s: reading it failed", path);
		goto fail;
	}
	fclose(f);
	return names;
fail:
	fclose(f);
	sg_mx_names_free(names);
	return NULL;
}

/* Whether the first len bits of a and b agree. */
static int bits_match(const uint8_t *a, const uint8_t *b, unsigned int len)
{
	unsigned int whole = len / 8, rest = len % 8;

	if (memcmp(a, b, whole))
		return 0;
	return !rest || ((a[whole] ^ b[whole]) & (uint8_t)(0xff << (8 - rest))) == 0;
}

const char *const *sg_mx_names_find(const struct sg_mx_names *names,
				    const struct sockaddr_storage *addr, int *n)
{
	static const uint8_t v4mapped[12] = { [10] = 0xff, [11] = 0xff };
	const struct mx_names_entry *best = NULL;
	uint8_t bytes[16];
	int family;

	*n = 0;
	if (!names)
		return NULL;
	if (addr->ss_family == AF_INET) {
		family = AF_INET;
		memcpy(bytes, &((const struct sockaddr_in *)addr)->sin_addr, 4);
	} else if (addr->ss_family == AF_INET6) {
		const uint8_t *a = ((const struct sockaddr_in6 *)addr)->sin6_addr.s6_addr;

		family = memcmp(a, v4mapped, sizeof(v4mapped)) ? AF_INET6 : AF_INET;
		memcpy(bytes, family == AF_INET ? a + 12 : a, family == AF_INET ? 4 : 16);
	} else {
		return NULL;
	}
	for (int i = 0; i < names->n; i++) {
		const struct mx_names_entry *e = &names->entries[i];

		if (e->prefix.family == family && bits_match(e->prefix.addr, bytes, e->prefix.len) &&
		    (!best || e->prefix.len > best->prefix.len))
			best = e;
	}
	if (!best)
		return NULL;
	*n = best->n;
	return (const char *const *)best->names;
}
