/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* parse.c - addresses, prefixes, rates, durations and names (see parse.h). */
#include <arpa/inet.h>
#include <net/if.h>
#include <stddef.h>
#include <sys/un.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include "parse.h"

#define NS_PER_SEC 1000000000ULL

const char SG_ACTION_NAMES[] = "scan|exempt|passthrough|block";
const char SG_TLS_MODE_NAMES[] = "passthrough|terminate|strip";
const char SG_SOURCE_MODE_NAMES[] = "transparent|relay-ip";

static const char *const action_names[SG_ACTION__COUNT] = {
	[SG_ACTION_SCAN] = "scan",
	[SG_ACTION_EXEMPT] = "exempt",
	[SG_ACTION_PASSTHROUGH] = "passthrough",
	[SG_ACTION_BLOCK] = "block",
};
static const char *const tls_names[SG_TLS__COUNT] = {
	[SG_TLS_PASSTHROUGH] = "passthrough",
	[SG_TLS_TERMINATE] = "terminate",
	[SG_TLS_STRIP] = "strip",
};
static const char *const source_names[SG_SOURCE__COUNT] = {
	[SG_SOURCE_TRANSPARENT] = "transparent",
	[SG_SOURCE_RELAY_IP] = "relay-ip",
};
static const char *const refuse_names[SG_REFUSE__COUNT] = {
	[SG_REFUSE_DROP] = "drop",
	[SG_REFUSE_RST] = "rst",
};
static const char *const malformed_names[SG_MALFORMED__COUNT] = {
	[SG_MALFORMED_DROP] = "drop",
	[SG_MALFORMED_PASS] = "pass",
};
static const char *const attach_names[SG_ATTACH__COUNT] = {
	[SG_ATTACH_TC] = "tc",
	[SG_ATTACH_XDP] = "xdp",
	[SG_ATTACH_UPLINK] = "uplink",
	[SG_ATTACH_BRIDGE] = "bridge",
	[SG_ATTACH_TC_EGRESS] = "tc egress",
};
static const char *const stat_names[SG_STAT__COUNT] = {
	[SG_STAT_NON_SMTP] = "non_smtp",
	[SG_STAT_SMTP] = "smtp",
	[SG_STAT_SMTP_SYN] = "smtp_syn",
	[SG_STAT_EXEMPT] = "exempt",
	[SG_STAT_PASSTHROUGH] = "passthrough",
	[SG_STAT_SCAN] = "scan",
	[SG_STAT_BLOCKED] = "blocked",
	[SG_STAT_RATE_DROPPED] = "rate_dropped",
	[SG_STAT_PENALTY_DROPPED] = "penalty_dropped",
	[SG_STAT_MALFORMED] = "malformed",
	[SG_STAT_RST_SENT] = "rst_sent",
	[SG_STAT_STATE_FULL] = "state_full",
	[SG_STAT_STEERED] = "steered",
	[SG_STAT_FAIL_OPEN] = "fail_open",
	[SG_STAT_FAIL_CLOSED] = "fail_closed",
	[SG_STAT_UPLINK_STEERED] = "uplink_steered",
	[SG_STAT_FAST_PATH] = "fast_path",
	[SG_STAT_SPOOFED] = "spoofed",
	[SG_STAT_LEARNED] = "learned",
};

static int name_lookup(const char *const *names, int n, const char *s)
{
	for (int i = 0; s && i < n; i++)
		if (names[i] && strcmp(names[i], s) == 0)
			return i;
	return -1;
}

static const char *name_of(const char *const *names, int n, int v)
{
	return v >= 0 && v < n && names[v] ? names[v] : "unknown";
}

#define SG_NAME_FNS(kind, table, count)						\
int sg_##kind##_from_name(const char *s) { return name_lookup(table, count, s); } \
const char *sg_##kind##_name(int v) { return name_of(table, count, v); }

SG_NAME_FNS(action, action_names, SG_ACTION__COUNT)
SG_NAME_FNS(tls_mode, tls_names, SG_TLS__COUNT)
SG_NAME_FNS(source_mode, source_names, SG_SOURCE__COUNT)
SG_NAME_FNS(refuse_mode, refuse_names, SG_REFUSE__COUNT)
SG_NAME_FNS(malformed_mode, malformed_names, SG_MALFORMED__COUNT)
SG_NAME_FNS(attach_mode, attach_names, SG_ATTACH__COUNT)

static const char *const pstat_names[SG_PSTAT__COUNT] = {
	[SG_PSTAT_CONTENT_REFUSED] = "content_refused",
	[SG_PSTAT_CONTENT_FLAGGED] = "content_flagged",
	[SG_PSTAT_MILTER_MESSAGES] = "milter_messages",
	[SG_PSTAT_MILTER_REFUSED] = "milter_refused",
	[SG_PSTAT_MILTER_FAULT_CONNECT] = "milter_fault_connect",
	[SG_PSTAT_MILTER_FAULT_TIMEOUT] = "milter_fault_timeout",
	[SG_PSTAT_MILTER_FAULT_CLOSED] = "milter_fault_closed",
	[SG_PSTAT_MILTER_FAULT_PROTOCOL] = "milter_fault_protocol",
	[SG_PSTAT_MILTER_FAULT_NEGOTIATION] = "milter_fault_negotiation",
	[SG_PSTAT_LADDER_FLAGGED] = "ladder_flagged",
	[SG_PSTAT_LADDER_TEMPFAIL] = "ladder_tempfail",
	[SG_PSTAT_LADDER_REFUSED] = "ladder_refused",
	[SG_PSTAT_WEBHOOK_DELIVERED] = "webhook_delivered",
	[SG_PSTAT_WEBHOOK_DROPPED] = "webhook_dropped",
	[SG_PSTAT_WEBHOOK_EXPIRED] = "webhook_expired",
	[SG_PSTAT_REATTACHED] = "reattached",
	[SG_PSTAT_REDIS_SYNCS] = "redis_syncs",
	[SG_PSTAT_REDIS_ERRORS] = "redis_errors",
	[SG_PSTAT_REDIS_OUTAGES] = "redis_outages",
	[SG_PSTAT_REDIS_APPLIED] = "redis_applied",
	[SG_PSTAT_REDIS_UNTRACKED] = "redis_untracked",
};

const char *sg_pstat_name(int stat)
{
	return name_of(pstat_names, SG_PSTAT__COUNT, stat);
}

const char *sg_stat_name(int stat)
{
	return name_of(stat_names, SG_STAT__COUNT, stat);
}

int sg_parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out,
		  char *err, size_t errlen)
{
	unsigned long long v;
	char *end;

	if (!s || !*s || !isdigit((unsigned char)*s)) {
		snprintf(err, errlen, "'%s' is not a whole number (expected %llu to %llu)",
			 s ? s : "", (unsigned long long)min, (unsigned long long)max);
		return -1;
	}
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end) {
		snprintf(err, errlen, "'%s' is not a whole number (expected %llu to %llu)",
			 s, (unsigned long long)min, (unsigned long long)max);
		return -1;
	}
	if (v < min || v > max) {
		snprintf(err, errlen, "%s is out of range (expected %llu to %llu)",
			 s, (unsigned long long)min, (unsigned long long)max);
		return -1;
	}
	*out = v;
	return 0;
}

int sg_parse_bool(const char *s, int *out, char *err, size_t errlen)
{
	static const char *const yes[] = { "yes", "on", "true", "1" };
	static const char *const no[] = { "no", "off", "false", "0" };

	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*out = 1;
			return 0;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*out = 0;
			return 0;
		}
	}
	snprintf(err, errlen, "'%s' is not yes or no", s);
	return -1;
}

static void prefix_mask(struct sg_prefix *p)
{
	unsigned int bytes = p->family == AF_INET ? 4 : 16;

	for (unsigned int i = 0; i < bytes; i++) {
		unsigned int bit = i * 8;

		if (bit >= p->len)
			p->addr[i] = 0;
		else if (p->len - bit < 8)
			p->addr[i] &= (uint8_t)(0xff << (8 - (p->len - bit)));
	}
}

int sg_parse_prefix(const char *s, struct sg_prefix *out, char *err, size_t errlen)
{
	char addr[INET6_ADDRSTRLEN + 8];
	const char *slash = strchr(s, '/');
	size_t alen = slash ? (size_t)(slash - s) : strlen(s);
	struct sg_prefix masked;
	unsigned int max;

	memset(out, 0, sizeof(*out));
	if (alen == 0 || alen >= sizeof(addr)) {
		snprintf(err, errlen, "'%s' is not a prefix (expected ADDRESS[/LENGTH], "
			 "e.g. 192.0.2.0/24 or 2001:db8::/32)", s);
		return -1;
	}
	memcpy(addr, s, alen);
	addr[alen] = '\0';
	if (inet_pton(AF_INET, addr, out->addr) == 1) {
		out->family = AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, addr, out->addr) == 1) {
		out->family = AF_INET6;
		max = 128;
	} else {
		snprintf(err, errlen, "'%s' in '%s' is not an IPv4 or IPv6 address "
			 "(expected e.g. 192.0.2.0/24 or 2001:db8::/32)", addr, s);
		return -1;
	}
	out->len = max;
	if (slash) {
		uint64_t len;
		char lerr[SG_ERR_LEN];

		if (sg_parse_uint(slash + 1, 0, max, &len, lerr, sizeof(lerr))) {
			snprintf(err, errlen, "prefix length in '%s': %s", s, lerr);
			return -1;
		}
		out->len = (unsigned int)len;
	}
	masked = *out;
	prefix_mask(&masked);
	if (memcmp(masked.addr, out->addr, sizeof(out->addr)) != 0) {
		char net[INET6_ADDRSTRLEN + 8];

		sg_format_prefix(&masked, net, sizeof(net));
		snprintf(err, errlen, "'%s' has host bits set beyond /%u; did you mean %s?",
			 s, out->len, net);
		return -1;
	}
	return 0;
}

void sg_format_prefix(const struct sg_prefix *p, char *buf, size_t len)
{
	char addr[INET6_ADDRSTRLEN];

	inet_ntop(p->family, p->addr, addr, sizeof(addr));
	snprintf(buf, len, "%s/%u", addr, p->len);
}

static const uint8_t v4mapped_prefix[12] = { [10] = 0xff, [11] = 0xff };

int sg_parse_source(const char *s, unsigned int v6_prefix, struct sg_src_key *out,
		    char *err, size_t errlen)
{
	char addr[INET6_ADDRSTRLEN + IF_NAMESIZE + 1];
	char *port;

	memset(out, 0, sizeof(*out));
	if (inet_pton(AF_INET, s, &out->addr[12]) == 1) {
		out->addr[10] = 0xff;
		out->addr[11] = 0xff;
		return 0;
	}
	snprintf(addr, sizeof(addr), "%s", s);
	port = strchr(addr, '%');
	if (port)
		*port++ = '\0';
	if (inet_pton(AF_INET6, addr, out->addr) == 1) {
		if (v6_prefix && v6_prefix < 128)
			memset(out->addr + v6_prefix / 8, 0, 16 - v6_prefix / 8);
		/* a sender seen on a bridge port is keyed by the port too */
		if (port) {
			out->ifindex = if_nametoindex(port);
			if (!out->ifindex) {
				snprintf(err, errlen, "'%s': no interface %s here (ADDR%%IFNAME "
					 "names the bridge port an IPv6 sender is on)", s, port);
				return -1;
			}
		}
		return 0;
	}
	snprintf(err, errlen, "'%s' is not an IPv4 or IPv6 address (expected e.g. "
		 "192.0.2.10 or 2001:db8::10)", s);
	return -1;
}

void sg_format_source(const struct sg_src_key *k, unsigned int v6_prefix, char *buf,
		      size_t len)
{
	char addr[INET6_ADDRSTRLEN];

	if (memcmp(k->addr, v4mapped_prefix, sizeof(v4mapped_prefix)) == 0) {
		inet_ntop(AF_INET, &k->addr[12], buf, (socklen_t)len);
		return;
	}
	inet_ntop(AF_INET6, k->addr, addr, sizeof(addr));
	if (k->ifindex) {
		char port[IF_NAMESIZE];

		if (!if_indextoname(k->ifindex, port))
			snprintf(port, sizeof(port), "%u", k->ifindex);
		if (v6_prefix && v6_prefix < 128)
			snprintf(buf, len, "%s/%u%%%s", addr, v6_prefix, port);
		else
			snprintf(buf, len, "%s%%%s", addr, port);
	} else if (v6_prefix && v6_prefix < 128) {
		snprintf(buf, len, "%s/%u", addr, v6_prefix);
	} else {
		snprintf(buf, len, "%s", addr);
	}
}

struct unit {
	const char *name;
	uint64_t ns;
};

static const struct unit rate_units[] = {
	{ "s", NS_PER_SEC }, { "sec", NS_PER_SEC }, { "second", NS_PER_SEC },
	{ "m", 60 * NS_PER_SEC }, { "min", 60 * NS_PER_SEC }, { "minute", 60 * NS_PER_SEC },
	{ "h", 3600 * NS_PER_SEC }, { "hour", 3600 * NS_PER_SEC },
	{ "d", 86400 * NS_PER_SEC }, { "day", 86400 * NS_PER_SEC },
};

int sg_parse_rate(const char *s, uint64_t *interval_ns, char *err, size_t errlen)
{
	const char *slash = strchr(s, '/');
	char count_str[32], lerr[SG_ERR_LEN];
	uint64_t count;

	if (!slash || (size_t)(slash - s) >= sizeof(count_str) || slash == s) {
		snprintf(err, errlen, "'%s' is not a rate (expected COUNT/UNIT, e.g. "
			 "30/min, 5/s, 100/h)", s);
		return -1;
	}
	memcpy(count_str, s, (size_t)(slash - s));
	count_str[slash - s] = '\0';
	if (sg_parse_uint(count_str, 0, 1000000000ULL, &count, lerr, sizeof(lerr))) {
		snprintf(err, errlen, "count in rate '%s': %s", s, lerr);
		return -1;
	}
	if (count == 0) {
		snprintf(err, errlen, "rate '%s' is zero; give at least 1 per unit "
			 "(to refuse all connections use the block action)", s);
		return -1;
	}
	for (size_t i = 0; i < sizeof(rate_units) / sizeof(rate_units[0]); i++) {
		if (strcmp(slash + 1, rate_units[i].name) == 0) {
			uint64_t interval = rate_units[i].ns / count;

			if (interval < 1000) {
				snprintf(err, errlen, "rate '%s' is faster than 1,000,000/s, "
					 "the most a rate class can express", s);
				return -1;
			}
			*interval_ns = interval;
			return 0;
		}
	}
	snprintf(err, errlen, "unit '%s' in rate '%s' is unknown (expected s, min, h or d)",
		 slash + 1, s);
	return -1;
}

int sg_parse_limit(const char *s, uint64_t *interval_ns, uint32_t *burst, char *err,
		   size_t errlen)
{
	if (strcmp(s, "none") == 0) {
		*interval_ns = 0;
		*burst = 0;
		return 0;
	}
	if (sg_parse_rate(s, interval_ns, err, errlen))
		return -1;
	/* sg_parse_rate checked the count: 1 to 10^9 */
	*burst = (uint32_t)strtoull(s, NULL, 10);
	return 0;
}

void sg_format_limit(uint64_t interval_ns, uint32_t burst, char *buf, size_t len)
{
	static const struct unit units[] = {
		{ "s", NS_PER_SEC }, { "min", 60 * NS_PER_SEC }, { "h", 3600 * NS_PER_SEC },
		{ "d", 86400 * NS_PER_SEC },
	};
	char rate[32];

	if (!interval_ns) {
		snprintf(buf, len, "none");
		return;
	}
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (interval_ns * burst == units[i].ns) {
			snprintf(buf, len, "%u/%s", burst, units[i].name);
			return;
		}
	}
	sg_format_rate(interval_ns, rate, sizeof(rate));
	snprintf(buf, len, "%s,burst=%u", rate, burst);
}

void sg_format_rate(uint64_t interval_ns, char *buf, size_t len)
{
	static const struct unit units[] = {
		{ "s", NS_PER_SEC }, { "min", 60 * NS_PER_SEC },
		{ "h", 3600 * NS_PER_SEC }, { "d", 86400 * NS_PER_SEC },
	};

	if (!interval_ns) {
		snprintf(buf, len, "unlimited");
		return;
	}
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (units[i].ns % interval_ns == 0 || i + 1 == sizeof(units) / sizeof(units[0])) {
			snprintf(buf, len, "%llu/%s",
				 (unsigned long long)(units[i].ns / interval_ns), units[i].name);
			return;
		}
	}
}

int sg_parse_duration(const char *s, uint64_t *ns, char *err, size_t errlen)
{
	static const struct unit units[] = {
		{ "ms", 1000000ULL }, { "s", NS_PER_SEC }, { "", NS_PER_SEC },
		{ "m", 60 * NS_PER_SEC }, { "min", 60 * NS_PER_SEC },
		{ "h", 3600 * NS_PER_SEC }, { "d", 86400 * NS_PER_SEC },
	};
	unsigned long long v;
	char *end;

	if (!s || !isdigit((unsigned char)*s))
		goto bad;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		goto bad;
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcmp(end, units[i].name) == 0) {
			if (v == 0) {
				snprintf(err, errlen, "duration '%s' is zero; give a positive "
					 "duration such as 30s, 10m, 2h", s);
				return -1;
			}
			if (v > UINT64_MAX / units[i].ns / 4) {
				snprintf(err, errlen, "duration '%s' is too long", s);
				return -1;
			}
			*ns = v * units[i].ns;
			return 0;
		}
	}
bad:
	snprintf(err, errlen, "'%s' is not a duration (expected a number with ms, s, m, "
		 "h or d, e.g. 30s, 10m, 2h)", s ? s : "");
	return -1;
}

uint64_t sg_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * NS_PER_SEC + (uint64_t)ts.tv_nsec;
}

int sg_parse_milter_address(const char *s, struct sockaddr_storage *addr, socklen_t *len,
			    char *err, size_t errlen)
{
	char host[64];
	const char *port;
	uint64_t portnum;
	size_t n;

	memset(addr, 0, sizeof(*addr));
	if (strncmp(s, "unix:", 5) == 0) {
		struct sockaddr_un *un = (struct sockaddr_un *)addr;

		n = strlen(s + 5);
		if (s[5] != '/' || n >= sizeof(un->sun_path)) {
			snprintf(err, errlen, "'%s': a unix milter is unix:/absolute/path, "
				 "shorter than %zu bytes", s, sizeof(un->sun_path));
			return -1;
		}
		un->sun_family = AF_UNIX;
		memcpy(un->sun_path, s + 5, n + 1);
		*len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
		return 0;
	}
	if (strncmp(s, "inet:", 5) != 0) {
		snprintf(err, errlen, "'%s' is not a milter address: inet:127.0.0.1:11332, "
			 "inet:[::1]:11332 or unix:/run/milter.sock", s);
		return -1;
	}
	s += 5;
	if (*s == '[') {
		const char *close = strchr(s, ']');

		n = close ? (size_t)(close - s - 1) : 0;
		port = close && close[1] == ':' ? close + 2 : NULL;
		s++;
	} else {
		port = strrchr(s, ':');
		n = port ? (size_t)(port - s) : 0;
		port = port ? port + 1 : NULL;
	}
	if (!port || !n || n >= sizeof(host)) {
		snprintf(err, errlen, "'inet:%s': an inet milter is inet:ADDRESS:PORT "
			 "(an IPv6 address in brackets)", s);
		return -1;
	}
	memcpy(host, s, n);
	host[n] = '\0';
	if (sg_parse_uint(port, 1, 65535, &portnum, err, errlen))
		return -1;
	if (inet_pton(AF_INET, host, &((struct sockaddr_in *)addr)->sin_addr) == 1) {
		struct sockaddr_in *in = (struct sockaddr_in *)addr;

		in->sin_family = AF_INET;
		in->sin_port = htons((uint16_t)portnum);
		*len = sizeof(*in);
		return 0;
	}
	if (inet_pton(AF_INET6, host, &((struct sockaddr_in6 *)addr)->sin6_addr) == 1) {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)addr;

		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)portnum);
		*len = sizeof(*in6);
		return 0;
	}
	snprintf(err, errlen, "'%s' is not a numeric IPv4 or IPv6 address (milters are "
		 "reached without name lookups)", host);
	return -1;
}

int sg_read_sysctl(const char *path)
{
	FILE *f = fopen(path, "r");
	int v = -1;

	if (f) {
		if (fscanf(f, "%d", &v) != 1)
			v = -1;
		fclose(f);
	}
	return v;
}

int sg_grow(void **array, size_t n, size_t *cap, size_t size)
{
	void *bigger;

	if (n < *cap)
		return 0;
	bigger = realloc(*array, (*cap ? 2 * *cap : 16) * size);
	if (!bigger)
		return -1;
	*array = bigger;
	*cap = *cap ? 2 * *cap : 16;
	return 0;
}
