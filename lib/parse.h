/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * parse.h - parsers shared by smtpguardd's config and smtpguardctl's
 * arguments: addresses, prefixes, rates, durations, counts and the names of
 * actions and modes. Each returns 0, or -1 with a one-line reason in err that
 * says what was wrong and what is accepted.
 */
#ifndef SMTPGUARD_PARSE_H
#define SMTPGUARD_PARSE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <smtpguard/maps.h>

#define SG_ERR_LEN 256

struct sg_prefix {
	int family;		/* AF_INET or AF_INET6 */
	uint8_t addr[16];	/* network byte order; IPv4 uses the first 4 */
	unsigned int len;	/* prefix length */
};

/* "192.0.2.0/24", "2001:db8::/32"; a bare address is a host prefix. Host
 * bits beyond the length are an error (it says which network was meant). */
int sg_parse_prefix(const char *s, struct sg_prefix *out, char *err, size_t errlen);
void sg_format_prefix(const struct sg_prefix *p, char *buf, size_t len);

/* An IPv4 or IPv6 address as the per-sender map's key (IPv4-mapped; IPv6
 * cut to v6_prefix bits as the classifier does, 0 or 128 = whole; an IPv6
 * "ADDR%IFNAME" is the sender on bridge port IFNAME). */
int sg_parse_source(const char *s, unsigned int v6_prefix, struct sg_src_key *out,
		    char *err, size_t errlen);
/* "192.0.2.10", "2001:db8::10", or "2001:db8:1::/64" for a cut IPv6 key,
 * with "%PORT" for one keyed by its bridge port. */
void sg_format_source(const struct sg_src_key *k, unsigned int v6_prefix, char *buf,
		      size_t len);

/* "30/min", "5/s", "100/h" (also /sec /second /m /minute /hour): the interval
 * in ns between two events. Zero, negative or faster than 1/us is an error. */
int sg_parse_rate(const char *s, uint64_t *interval_ns, char *err, size_t errlen);
/* A message or recipient limit: "COUNT/UNIT" (COUNT back to back, then one
 * every UNIT/COUNT) or "none" (interval and burst 0). */
int sg_parse_limit(const char *s, uint64_t *interval_ns, uint32_t *burst, char *err,
		   size_t errlen);
/* A limit as sg_parse_limit reads it back ("2/h", "none"). */
void sg_format_limit(uint64_t interval_ns, uint32_t burst, char *buf, size_t len);
/* The same rate in the largest unit that keeps it a whole count, "30/min". */
void sg_format_rate(uint64_t interval_ns, char *buf, size_t len);

/* "500ms", "30s", "10m", "2h", "1d"; a bare number is seconds. > 0. */
int sg_parse_duration(const char *s, uint64_t *ns, char *err, size_t errlen);

/* A whole number in [min, max]. */
int sg_parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out,
		  char *err, size_t errlen);

/* yes/no, on/off, true/false, 1/0 */
int sg_parse_bool(const char *s, int *out, char *err, size_t errlen);

/* Names <-> enum values; -1 for an unknown name. */
int sg_action_from_name(const char *s);
const char *sg_action_name(int action);
int sg_tls_mode_from_name(const char *s);
const char *sg_tls_mode_name(int mode);
int sg_source_mode_from_name(const char *s);
const char *sg_source_mode_name(int mode);
int sg_refuse_mode_from_name(const char *s);
const char *sg_refuse_mode_name(int mode);
int sg_malformed_mode_from_name(const char *s);
const char *sg_malformed_mode_name(int mode);
int sg_attach_mode_from_name(const char *s);
const char *sg_attach_mode_name(int mode);
const char *sg_stat_name(int stat);
/* The proxy's counters' names (enum sg_pstat). */
const char *sg_pstat_name(int stat);

/* The accepted names, "scan|exempt|passthrough|block", for error messages. */
extern const char SG_ACTION_NAMES[];
extern const char SG_TLS_MODE_NAMES[];
extern const char SG_SOURCE_MODE_NAMES[];

/* CLOCK_MONOTONIC in ns, the classifier's clock. */
uint64_t sg_now_ns(void);

/* A milter's address as Postfix writes it: inet:IPV4:PORT,
 * inet:[IPV6]:PORT or unix:/absolute/path (no host names: they would need a
 * lookup on the session's path). */
int sg_parse_milter_address(const char *s, struct sockaddr_storage *addr, socklen_t *len,
			    char *err, size_t errlen);

/* A sysctl's integer value from its /proc/sys path, or -1 when it cannot
 * be read. */
int sg_read_sysctl(const char *path);
/* Room for one more in *array, holding n of *cap elements of size bytes
 * (doubled, from 16, when full); 0, or -1 (no memory: *array unchanged). */
int sg_grow(void **array, size_t n, size_t *cap, size_t size);

#endif
