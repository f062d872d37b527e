/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * matcher_db.h - the compiled matcher's insides, shared by its builder
 * (matcher.c) and a message's matching (match_stream.c); no one else.
 */
#ifndef SMTPGUARD_MATCHER_DB_H
#define SMTPGUARD_MATCHER_DB_H

#include <hs/hs.h>
#include "matcher.h"
#include "keyhash.h"

struct sg_matcher {
	/* one database a target (NULL: no pattern rule of it): body in
	 * streaming mode, header vectored ("name", ": ", "value" without a
	 * copy), the others in block mode; a pattern's id is its rule's index */
	hs_database_t *db[SG_TARGET_COUNT];
	size_t db_bytes[SG_TARGET_COUNT];
	size_t stream_bytes;
	unsigned long long serial;	/* unique, for the threads' scratch (never reused) */
	unsigned int nrules;
	unsigned int *list_rules;	/* the url-host file: rules, by index */
	unsigned int nlists;
	int has_url_rules;		/* url-host rules of either kind */
	struct sg_hash_key host_key;	/* for a message's set of hosts looked at */
	double compile_ms;
};

/* The calling thread's scratch, grown to fit m's databases, into *scratch
 * (NULL if m has no database): 0, or -1 when it cannot be (memory). Used
 * only within calls into Hyperscan. */
int sg_matcher_scratch(const struct sg_matcher *m, hs_scratch_t **scratch);
/* A message's state in bytes, at its start, or at most (its set of URL
 * hosts full). */
size_t sg_match_state_bytes(const struct sg_matcher *m, int at_most);

#endif
