/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* tenancy.c - the proxy's side of tenants (see tenancy.h). */
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <bpf/bpf.h>
#include "feedback.h"
#include "parse.h"
#include "tenancy.h"

#ifndef IP_PKTOPTIONS
#define IP_PKTOPTIONS 9
#endif
#ifndef IPV6_2292PKTOPTIONS
#define IPV6_2292PKTOPTIONS 6
#endif

struct bucket {
	char tenant[SG_TENANT_NAME_LEN];
	uint64_t msg_tat_ns, rcpt_tat_ns;
};

struct sender {
	struct sg_src_key key;
	char tenant[SG_TENANT_NAME_LEN];
	int used;
};

struct sg_tenancy {
	pthread_mutex_t lock;
	struct bucket *buckets;		/* tenants with limits, as first charged */
	size_t n_buckets, cap_buckets;
	struct sender senders[SG_TENANCY_SENDERS];
};

struct sg_tenancy *sg_tenancy_new(void)
{
	struct sg_tenancy *t = calloc(1, sizeof(*t));

	if (t)
		pthread_mutex_init(&t->lock, NULL);
	return t;
}

void sg_tenancy_free(struct sg_tenancy *t)
{
	if (!t)
		return;
	pthread_mutex_destroy(&t->lock);
	free(t->buckets);
	free(t);
}

int sg_tenancy_listener(int fd, int family)
{
	int one = 1;

	if (family == AF_INET6)
		return setsockopt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &one, sizeof(one));
	return setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof(one));
}

/* The interface of the SYN: the kernel keeps it with an accepted TCP
 * socket that asked for IP_PKTINFO (IPV6_RECVPKTINFO), read back with
 * IP_PKTOPTIONS (IPV6_2292PKTOPTIONS). */
static unsigned int syn_ifindex(int fd, int family)
{
	union {
		char buf[256];
		struct cmsghdr align;
	} control;
	struct msghdr mh = { .msg_control = control.buf };
	socklen_t len = sizeof(control.buf);
	struct cmsghdr *c;

	if (getsockopt(fd, family == AF_INET6 ? IPPROTO_IPV6 : IPPROTO_IP,
		       family == AF_INET6 ? IPV6_2292PKTOPTIONS : IP_PKTOPTIONS, control.buf,
		       &len) || !len)
		return 0;
	mh.msg_controllen = len;
	for (c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
			struct in_pktinfo pi;

			memcpy(&pi, CMSG_DATA(c), sizeof(pi));
			return (unsigned int)pi.ipi_ifindex;
		}
		if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO) {
			struct in6_pktinfo pi;

			memcpy(&pi, CMSG_DATA(c), sizeof(pi));
			return pi.ipi6_ifindex;
		}
	}
	return 0;
}

unsigned int sg_tenancy_ifindex(int fd, const struct sockaddr_storage *vm,
				const struct sg_maps *maps)
{
	if (maps && maps->src_bound >= 0) {
		struct sg_lpm_v6_key key = { .prefixlen = 128 };
		struct sg_bound b;

		if (vm->ss_family == AF_INET6) {
			memcpy(key.addr, &((const struct sockaddr_in6 *)vm)->sin6_addr, 16);
		} else {
			key.addr[10] = key.addr[11] = 0xff;
			memcpy(key.addr + 12, &((const struct sockaddr_in *)vm)->sin_addr, 4);
		}
		if (bpf_map_lookup_elem(maps->src_bound, &key, &b) == 0 && b.ifindex)
			return b.ifindex;
	}
	return syn_ifindex(fd, vm->ss_family);
}

static size_t sender_slot(const struct sg_src_key *key)
{
	uint64_t h = 1469598103934665603ULL;	/* FNV-1a */
	const uint8_t *p = (const uint8_t *)key;

	for (size_t i = 0; i < offsetof(struct sg_src_key, pad); i++)
		h = (h ^ p[i]) * 1099511628211ULL;
	return (size_t)(h % SG_TENANCY_SENDERS);
}

void sg_tenancy_note_sender(struct sg_tenancy *t, const struct sg_src_key *key,
			    const char *tenant)
{
	struct sender *s;

	if (!t)
		return;
	s = &t->senders[sender_slot(key)];
	pthread_mutex_lock(&t->lock);
	s->key = *key;
	s->key.pad = 0;
	snprintf(s->tenant, sizeof(s->tenant), "%s", tenant ? tenant : "");
	s->used = 1;
	pthread_mutex_unlock(&t->lock);
}

int sg_tenancy_sender(struct sg_tenancy *t, const struct sg_src_key *key, char *name,
		      size_t len)
{
	struct sg_src_key k = *key;
	struct sender *s;
	int found = 0;

	if (len)
		name[0] = '\0';
	if (!t)
		return 0;
	k.pad = 0;
	s = &t->senders[sender_slot(&k)];
	pthread_mutex_lock(&t->lock);
	if (s->used && memcmp(&s->key, &k, sizeof(k)) == 0 && s->tenant[0]) {
		snprintf(name, len, "%s", s->tenant);
		found = 1;
	}
	pthread_mutex_unlock(&t->lock);
	return found;
}

/* The tenant's bucket (made on first use), with the lock; NULL when out
 * of memory or past SG_MAX_TENANTS (no limit then: logged by the caller). */
static struct bucket *bucket_of(struct sg_tenancy *t, const char *tenant)
{
	struct bucket *b;

	for (size_t i = 0; i < t->n_buckets; i++)
		if (strcmp(t->buckets[i].tenant, tenant) == 0)
			return &t->buckets[i];
	if (t->n_buckets == SG_MAX_TENANTS)
		return NULL;
	if (t->n_buckets == t->cap_buckets) {
		size_t cap = t->cap_buckets ? 2 * t->cap_buckets : 16;
		struct bucket *bigger = realloc(t->buckets, cap * sizeof(*bigger));

		if (!bigger)
			return NULL;
		t->buckets = bigger;
		t->cap_buckets = cap;
	}
	b = &t->buckets[t->n_buckets++];
	memset(b, 0, sizeof(*b));
	snprintf(b->tenant, sizeof(b->tenant), "%s", tenant);
	return b;
}

static void over(char *reason, size_t len, const char *what, const char *tenant,
		 uint64_t interval_ns, uint32_t burst)
{
	char rate[32];

	sg_format_rate(interval_ns, rate, sizeof(rate));
	snprintf(reason, len, "over the %s rate of tenant %s (%u, then %s, for all its VMs)", what,
		 tenant, burst, rate);
}

int sg_tenancy_check_message(struct sg_tenancy *t, const char *tenant,
			     const struct sg_tenant_limits *l, char *reason, size_t len)
{
	struct bucket *b;
	uint64_t tat;
	int ok = 1;

	if (!t || !l || l->exempt || !l->msg_interval_ns)
		return 0;
	pthread_mutex_lock(&t->lock);
	b = bucket_of(t, tenant);
	if (b)
		ok = sg_bucket_fits(b->msg_tat_ns, sg_now_ns(), l->msg_interval_ns, l->msg_burst, 1,
				    &tat);
	pthread_mutex_unlock(&t->lock);
	if (ok)
		return 0;
	over(reason, len, "message", tenant, l->msg_interval_ns, l->msg_burst);
	return -1;
}

int sg_tenancy_charge(struct sg_tenancy *t, const char *tenant, const struct sg_tenant_limits *l,
		      uint32_t nrcpts, char *reason, size_t len)
{
	uint64_t now = sg_now_ns(), msg_tat = 0, rcpt_tat = 0;
	int msg_ok = 1, rcpt_ok = 1;
	struct bucket *b;

	if (!t || !l || l->exempt || (!l->msg_interval_ns && !l->rcpt_interval_ns))
		return 0;
	pthread_mutex_lock(&t->lock);
	b = bucket_of(t, tenant);
	if (b) {
		msg_ok = sg_bucket_fits(b->msg_tat_ns, now, l->msg_interval_ns, l->msg_burst, 1,
					&msg_tat);
		rcpt_ok = sg_bucket_fits(b->rcpt_tat_ns, now, l->rcpt_interval_ns, l->rcpt_burst,
					 nrcpts ? nrcpts : 1, &rcpt_tat);
		if (msg_ok && rcpt_ok) {
			b->msg_tat_ns = msg_tat;
			b->rcpt_tat_ns = rcpt_tat;
		}
	}
	pthread_mutex_unlock(&t->lock);
	if (!msg_ok)
		over(reason, len, "message", tenant, l->msg_interval_ns, l->msg_burst);
	else if (!rcpt_ok)
		over(reason, len, "recipient", tenant, l->rcpt_interval_ns, l->rcpt_burst);
	return msg_ok && rcpt_ok ? 0 : -1;
}
