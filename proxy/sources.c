/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * sources.c - the proxy's sessions counted per sender, across its workers,
 * so that one VM cannot hold every session (and descriptor) of the host:
 * a sender at its rate class's session limit is refused more until some
 * end. The sender is the classifier's key (an IPv4 address, or an IPv6
 * address cut to ipv6_source_prefix), so a VM cannot spread over the
 * addresses of its own /64.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include "sources.h"

#define SG_SOURCE_BUCKETS 4096

struct source {
	struct sg_src_key key;
	uint32_t sessions;
	struct source *next;
};

struct sg_sources {
	pthread_mutex_t lock;
	struct source *bucket[SG_SOURCE_BUCKETS];
};

struct sg_sources *sg_sources_new(void)
{
	struct sg_sources *t = calloc(1, sizeof(*t));

	if (t)
		pthread_mutex_init(&t->lock, NULL);
	return t;
}

void sg_sources_free(struct sg_sources *t)
{
	if (!t)
		return;
	for (int i = 0; i < SG_SOURCE_BUCKETS; i++) {
		while (t->bucket[i]) {
			struct source *e = t->bucket[i];

			t->bucket[i] = e->next;
			free(e);
		}
	}
	pthread_mutex_destroy(&t->lock);
	free(t);
}

/* FNV-1a over the key. */
static unsigned int bucket_of(const struct sg_src_key *key)
{
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < sizeof(key->addr); i++)
		h = (h ^ key->addr[i]) * 16777619u;
	return h % SG_SOURCE_BUCKETS;
}

int sg_sources_enter(struct sg_sources *t, const struct sg_src_key *key, uint32_t max)
{
	unsigned int b = bucket_of(key);
	struct source *e;
	int ret = 0;

	pthread_mutex_lock(&t->lock);
	for (e = t->bucket[b]; e; e = e->next)
		if (!memcmp(&e->key, key, sizeof(*key)))
			break;
	if (e && max && e->sessions >= max) {
		ret = -1;
	} else if (e) {
		e->sessions++;
	} else if ((e = calloc(1, sizeof(*e))) != NULL) {
		e->key = *key;
		e->sessions = 1;
		e->next = t->bucket[b];
		t->bucket[b] = e;
	} else {
		ret = -1;	/* out of memory: refused, as over a limit */
	}
	pthread_mutex_unlock(&t->lock);
	return ret;
}

void sg_sources_leave(struct sg_sources *t, const struct sg_src_key *key)
{
	unsigned int b = bucket_of(key);
	struct source **pe, *e;

	pthread_mutex_lock(&t->lock);
	for (pe = &t->bucket[b]; (e = *pe) != NULL; pe = &e->next) {
		if (memcmp(&e->key, key, sizeof(*key)))
			continue;
		if (--e->sessions == 0) {
			*pe = e->next;
			free(e);
		}
		break;
	}
	pthread_mutex_unlock(&t->lock);
}
