/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * bindings.h - the source_bindings file: which source prefixes belong to
 * which VM-facing interface, for the classifier's source check (bound and
 * auto modes). One interface a line, its name then its prefixes, apart by
 * blanks or commas; '#' starts a comment:
 *
 *     tap101i0  192.0.2.11/32 2001:db8:1::/64
 *     tap102i0  192.0.2.12
 *
 * A prefix may be bound to one interface only (the file says which lines
 * disagree); an interface may have several lines.
 */
#ifndef SMTPGUARD_BINDINGS_H
#define SMTPGUARD_BINDINGS_H

#include <net/if.h>
#include <stddef.h>
#include <smtpguard/maps.h>
#include "parse.h"

#define SG_MAX_BINDINGS SG_MAX_BOUND

struct sg_binding {
	char ifname[IF_NAMESIZE];
	struct sg_prefix prefix;
	int line;		/* where the file says so */
};

struct sg_bindings {
	struct sg_binding *v;
	size_t n, cap;
};

/* Reads path (an empty path: no bindings). On error out is left empty and
 * err names the file, the line and what to fix. */
int sg_bindings_load(const char *path, struct sg_bindings *out, char *err, size_t errlen);
void sg_bindings_free(struct sg_bindings *b);
/* Whether the file names the interface. */
int sg_bindings_names(const struct sg_bindings *b, const char *ifname);

/* A prefix as src_bound's key: IPv6, IPv4 as ::ffff:a.b.c.d/(96 + len). */
void sg_bound_key(const struct sg_prefix *p, struct sg_lpm_v6_key *key);
/* Whether the key (an address, /128) lies within prefix key p. */
int sg_bound_key_covers(const struct sg_lpm_v6_key *p, const struct sg_lpm_v6_key *k);

#endif
