/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* shared_wire.c - the shared store's text: its address, senders, groups
 * (see shared_wire.h). */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "shared_wire.h"

#define REDIS_FORMS "write unix:/PATH (e.g. unix:/run/redis/redis.sock), tcp:HOST:PORT " \
		    "(e.g. tcp:10.0.0.5:6379, tcp:[2001:db8::5]:6379), or none"

static const __u8 v4mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

static int parse_port(const char *s, int *port)
{
	char *end;
	long v;

	if (!isdigit((unsigned char)s[0]))
		return -1;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || v < 1 || v > 65535)
		return -1;
	*port = (int)v;
	return 0;
}

static int parse_tcp(const char *rest, struct sg_redis_addr *out, const char *spec,
		     char *err, size_t errlen)
{
	const char *colon, *host = rest;
	size_t hlen;

	if (rest[0] == '[') {
		const char *close = strchr(rest, ']');

		if (!close || close[1] != ':') {
			snprintf(err, errlen, "'%s': an IPv6 address is written in brackets with "
				 "its port after them; %s", spec, REDIS_FORMS);
			return -1;
		}
		host = rest + 1;
		hlen = (size_t)(close - host);
		colon = close + 1;
	} else {
		colon = strrchr(rest, ':');
		if (!colon) {
			snprintf(err, errlen, "'%s' has no port; %s", spec, REDIS_FORMS);
			return -1;
		}
		hlen = (size_t)(colon - rest);
		if (memchr(rest, ':', hlen)) {
			snprintf(err, errlen, "'%s': an IPv6 address goes in brackets; %s", spec,
				 REDIS_FORMS);
			return -1;
		}
	}
	if (!hlen || hlen >= sizeof(out->host)) {
		snprintf(err, errlen, "'%s' has %s host; %s", spec, hlen ? "too long a" : "no",
			 REDIS_FORMS);
		return -1;
	}
	for (size_t i = 0; i < hlen; i++) {
		char c = host[i];

		if (!(isalnum((unsigned char)c) || c == '.' || c == '-' || c == '_' || c == ':')) {
			snprintf(err, errlen, "'%s': the host holds '%c'; %s", spec, c, REDIS_FORMS);
			return -1;
		}
	}
	if (parse_port(colon + 1, &out->port)) {
		snprintf(err, errlen, "'%s': '%s' is not a port from 1 to 65535 (Redis listens on "
			 "6379); %s", spec, colon + 1, REDIS_FORMS);
		return -1;
	}
	memcpy(out->host, host, hlen);
	out->host[hlen] = '\0';
	out->kind = SG_REDIS_TCP;
	return 0;
}

int sg_redis_addr_parse(const char *spec, struct sg_redis_addr *out, char *err,
			size_t errlen)
{
	memset(out, 0, sizeof(*out));
	if (!spec[0] || strcmp(spec, "none") == 0)
		return 0;
	if (strncmp(spec, "unix:", 5) == 0) {
		const char *path = spec + 5;

		if (path[0] != '/' || strlen(path) >= sizeof(out->path)) {
			snprintf(err, errlen, "'%s': a unix socket is an absolute path of at most "
				 "%zu characters; %s", spec, sizeof(out->path) - 1, REDIS_FORMS);
			return -1;
		}
		snprintf(out->path, sizeof(out->path), "%s", path);
		out->kind = SG_REDIS_UNIX;
		return 0;
	}
	if (strncmp(spec, "tcp:", 4) == 0)
		return parse_tcp(spec + 4, out, spec, err, errlen);
	snprintf(err, errlen, "'%s' names no transport; %s", spec, REDIS_FORMS);
	return -1;
}

void sg_shared_sender_name(const struct sg_src_key *key, char *buf, size_t len)
{
	if (memcmp(key->addr, v4mapped, sizeof(v4mapped)) == 0)
		inet_ntop(AF_INET, &key->addr[12], buf, (socklen_t)len);
	else
		inet_ntop(AF_INET6, key->addr, buf, (socklen_t)len);
}

int sg_shared_sender_parse(const char *name, struct sg_src_key *key)
{
	memset(key, 0, sizeof(*key));
	if (strlen(name) >= SG_SHARED_NAME_LEN)
		return -1;
	if (inet_pton(AF_INET, name, &key->addr[12]) == 1) {
		memcpy(key->addr, v4mapped, sizeof(v4mapped));
		return 0;
	}
	if (strchr(name, ':') && inet_pton(AF_INET6, name, key->addr) == 1 &&
	    memcmp(key->addr, v4mapped, sizeof(v4mapped)) != 0)
		return 0;
	memset(key, 0, sizeof(*key));
	return -1;
}

static void cut(__u8 *addr, int bytes_len, int prefix)
{
	for (int i = 0; i < bytes_len; i++) {
		int keep = prefix - i * 8;

		if (keep <= 0)
			addr[i] = 0;
		else if (keep < 8)
			addr[i] &= (__u8)(0xff << (8 - keep));
	}
}

void sg_shared_group_name(const struct sg_src_key *key, int prefix_v4, int prefix_v6,
			  char *buf, size_t len)
{
	char addr[INET6_ADDRSTRLEN];
	__u8 a[16];

	memcpy(a, key->addr, sizeof(a));
	if (memcmp(a, v4mapped, sizeof(v4mapped)) == 0) {
		cut(&a[12], 4, prefix_v4);
		inet_ntop(AF_INET, &a[12], addr, sizeof(addr));
		snprintf(buf, len, "%s/%d", addr, prefix_v4);
	} else {
		cut(a, 16, prefix_v6);
		inet_ntop(AF_INET6, a, addr, sizeof(addr));
		snprintf(buf, len, "%s/%d", addr, prefix_v6);
	}
}

void sg_shared_host_id(const char *hostname, const char *bpffs_root, char *buf, size_t len)
{
	if (!len)
		return;
	if (!hostname || !*hostname)
		hostname = "localhost";
	if (!bpffs_root || !*bpffs_root || strcmp(bpffs_root, "/sys/fs/bpf/smtpguard") == 0)
		snprintf(buf, len, "%s", hostname);
	else
		snprintf(buf, len, "%s:%s", hostname, bpffs_root);
}
