/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* test_scan_behaviour_capacity.c - the behaviour store's bounds: 1,000,000
 * distinct sender keys fill a table of 65,536 and no more (no allocation
 * after sg_behaviour_new), and the senders watched before the flood are
 * still there after it; a VM cycling through 10,000 sub-identities keeps
 * at most 32 and leaves another VM's alone; four threads noting into one
 * store lose no count. */
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include "behaviour.h"
#include "test.h"

#define NS 1000000000ULL
#define MIN (60 * NS)
#define T0 (20000 * 86400 * NS)

static struct sg_behaviour_thresholds limits;
static const char *const one_domain[] = { "example.net" };

static void note(struct sg_behaviour *b, const struct sg_behaviour_id *id, uint64_t now)
{
	struct sg_behaviour_message m = { .rcpts = 1, .rcpt_domains = one_domain,
					  .n_rcpt_domains = 1 };

	sg_behaviour_note_message(b, id, now, &m);
}

static struct sg_behaviour *new_store(uint32_t capacity, uint32_t shards)
{
	struct sg_behaviour_limits l;

	sg_behaviour_limits_default(&l);
	l.capacity = capacity;
	l.shards = shards;
	l.bulk.capacity = 256;
	return sg_behaviour_new(&l);
}

static size_t heap_in_use(void)
{
	return mallinfo2().uordblks;	/* 0 under ASan, which keeps its own books */
}

static void test_million_keys(void)
{
	struct sg_behaviour *b = new_store(65536, 64);
	struct sg_behaviour_stats before, after;
	size_t heap;
	int watched_kept = 1;

	if (!ASSERT_TRUE(b != NULL, "capacity: a store of 65,536"))
		return;
	/* 1,000 senders seen in two slots (protected), then the flood */
	for (uint32_t i = 0; i < 1000; i++) {
		char key[32];
		struct sg_behaviour_id id = { key, (size_t)snprintf(key, sizeof(key), "watched-%u", i), NULL, 0 };

		note(b, &id, T0);
		note(b, &id, T0 + 6 * MIN);
	}
	sg_behaviour_stats(b, &before);
	heap = heap_in_use();
	for (uint32_t i = 0; i < 1000000; i++) {
		uint8_t key[18] = { 0xfe, 0x80 };	/* an IPv6 /64 and an interface */
		struct sg_behaviour_id id = { key, sizeof(key), NULL, 0 };

		memcpy(key + 2, &i, sizeof(i));
		note(b, &id, T0 + 7 * MIN + i * 1000ULL);
	}
	sg_behaviour_stats(b, &after);
	printf("# 1,000,000 keys: %u held of %u, %llu evicted, %zu bytes before and %zu after, "
	       "%zu a sender\n", after.held, after.capacity, (unsigned long long)after.evictions,
	       before.bytes, after.bytes, after.bytes_per_sender);
	ASSERT_TRUE(after.held <= after.capacity, "capacity: 1,000,000 keys, at most 65,536 held");
	ASSERT_TRUE(after.held > after.capacity * 9 / 10, "capacity: and the table is used");
	ASSERT_EQ(after.bytes, before.bytes, "capacity: the store's size did not change");
	ASSERT_EQ(heap_in_use(), heap, "capacity: no heap allocated by a million notes");
	ASSERT_TRUE(after.evictions >= 1000000 - 65536, "capacity: the one-off keys evicted one another");
	for (uint32_t i = 0; i < 1000; i++) {
		char key[32];
		struct sg_behaviour_id id = { key, (size_t)snprintf(key, sizeof(key), "watched-%u", i), NULL, 0 };
		struct sg_behaviour_report r;

		watched_kept &= !sg_behaviour_assess(b, &id, T0 + 8 * MIN, &limits, &r) &&
				r.values.messages == 2;
	}
	ASSERT_TRUE(watched_kept, "capacity: the 1,000 senders seen twice before the flood are all kept");
	sg_behaviour_free(b);
}

static void test_sub_identity_cycling(void)
{
	struct sg_behaviour *b = new_store(4096, 4);
	struct sg_behaviour_stats st;
	struct sg_behaviour_sub subs[64];
	const char *vm = "vm-cycler", *other = "vm-neighbour";
	struct sg_behaviour_report r;
	struct sg_behaviour_id pid = { vm, strlen(vm), NULL, 0 };
	int n;

	if (!ASSERT_TRUE(b != NULL, "subs: a store"))
		return;
	for (uint32_t i = 0; i < 5; i++) {
		char key[32];
		struct sg_behaviour_id id = { key, (size_t)snprintf(key, sizeof(key), "from:n%u.example", i),
					      other, strlen(other) };

		note(b, &id, T0);
	}
	for (uint32_t i = 0; i < 10000; i++) {
		char key[32];
		struct sg_behaviour_id id = { key, (size_t)snprintf(key, sizeof(key), "from:x%u.example", i),
					      vm, strlen(vm) };

		note(b, &pid, T0 + i * 1000000ULL);
		note(b, &id, T0 + i * 1000000ULL);
	}
	sg_behaviour_stats(b, &st);
	n = sg_behaviour_subs(b, vm, strlen(vm), T0 + 20 * NS, &limits, subs, 64);
	ASSERT_EQ(n, 32, "subs: 10,000 sub-identities cycled, 32 kept");
	ASSERT_EQ(st.subs_recycled, 10000 - 32, "subs: each one past 32 took over the oldest");
	ASSERT_EQ(st.held, 1 + 32 + 1 + 5, "subs: the store holds the two VMs and their 37");
	ASSERT_EQ(sg_behaviour_subs(b, other, strlen(other), T0 + 20 * NS, &limits, subs, 64), 5,
		  "subs: the neighbour's 5 are untouched");
	sg_behaviour_assess(b, &pid, T0 + 20 * NS, &limits, &r);
	ASSERT_EQ(r.values.messages, 10000, "subs: the sender key still counts every message");
	sg_behaviour_free(b);
}

struct worker {
	struct sg_behaviour *b;
	int n;
};

static void *hammer(void *arg)
{
	struct worker *w = arg;
	struct sg_behaviour_id shared = { "shared", 6, NULL, 0 };
	struct sg_behaviour_report r;

	for (int i = 0; i < w->n; i++) {
		char key[32];
		struct sg_behaviour_id own = { key, (size_t)snprintf(key, sizeof(key), "k%d", i % 500), NULL, 0 };

		note(w->b, &shared, T0 + (uint64_t)i * 1000);
		note(w->b, &own, T0 + (uint64_t)i * 1000);
		sg_behaviour_note_reply(w->b, &shared, T0 + (uint64_t)i * 1000, SG_REPLY_RCPT, 550,
					"5.1.1", "unknown");
		sg_behaviour_assess(w->b, &own, T0 + (uint64_t)i * 1000, &limits, &r);
	}
	return NULL;
}

static void test_threads(void)
{
	struct sg_behaviour *b = new_store(4096, 8);
	struct worker w = { b, 20000 };
	pthread_t th[4];
	struct sg_behaviour_id shared = { "shared", 6, NULL, 0 };
	struct sg_behaviour_report r;

	if (!ASSERT_TRUE(b != NULL, "threads: a store"))
		return;
	for (int i = 0; i < 4; i++)
		pthread_create(&th[i], NULL, hammer, &w);
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	sg_behaviour_assess(b, &shared, T0 + 20000ULL * 1000, &limits, &r);
	ASSERT_EQ(r.values.messages, 80000, "threads: 4 x 20,000 messages on one key, none lost");
	ASSERT_EQ(r.values.rcpt_unknown, 80000, "threads: and as many replies");
	sg_behaviour_free(b);
}

static void test_bad_limits(void)
{
	ASSERT_TRUE(new_store(100, 3) == NULL, "limits: shards not a power of two are refused");
	ASSERT_TRUE(new_store(2, 4) == NULL, "limits: fewer senders than shards are refused");
}

int main(void)
{
	sg_behaviour_thresholds_default(&limits);
	test_million_keys();
	test_sub_identity_cycling();
	test_threads();
	test_bad_limits();
	return test_exit_status();
}
