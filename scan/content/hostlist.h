/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * hostlist.h - lists of hosts and domains for the content rules' url-host
 * target ("file:PATH"): one host or domain a line, '#' comments. A listed
 * domain matches itself and every subdomain (evil.example matches
 * a.b.evil.example); an IP address matches only itself.
 *
 * A list is a hash set of its entries (keyhash.h: SipHash under a random
 * key a list), so a lookup costs one probe per label of the host looked
 * up, whatever the list's size. Memory: the entries' bytes plus one byte
 * each (the arena), plus 8 bytes a slot at a load of at most 1/2 (16 to 32
 * bytes an entry): a million 21-byte names take 39 MiB and load in 0.6 s.
 * Read-only once loaded: shared by every thread.
 */
#ifndef SMTPGUARD_HOSTLIST_H
#define SMTPGUARD_HOSTLIST_H

#include <stddef.h>

#define SG_HOST_MAX 253			/* bytes of a DNS name, without a trailing dot */
#define SG_HOSTLIST_MAX 1000000		/* entries a list */
#define SG_HOSTLIST_LINE_MAX 1024
#define SG_HOSTLIST_FILE_MAX (256ULL << 20)

struct sg_hostlist;

/* Loads a list; NULL with err ("PATH:LINE: what, how to fix") on error. */
struct sg_hostlist *sg_hostlist_load(const char *path, char *err, size_t errlen);
void sg_hostlist_free(struct sg_hostlist *list);
size_t sg_hostlist_count(const struct sg_hostlist *list);
/* Bytes the list holds in memory (arena and table). */
size_t sg_hostlist_memory(const struct sg_hostlist *list);
/* Whether host (lowercase, no trailing dot, as the URL extractor gives it)
 * or one of its parent domains is listed. */
int sg_hostlist_match(const struct sg_hostlist *list, const char *host, size_t len);

/* A host as hosts are compared: ASCII lowercased, trailing dots dropped,
 * into out (SG_HOST_MAX + 1 bytes, not NUL-terminated). Its length, or -1
 * when it is empty or longer than SG_HOST_MAX. */
int sg_host_normalize(const char *host, size_t len, char *out);
/* An IPv4 or IPv6 literal (digits and dots only, or a ':'): no parent
 * domains. */
int sg_host_is_ip(const char *host, size_t len);

#endif
