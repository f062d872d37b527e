/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * test_scan_bulk_share.c - the outbreak signal over hosts: a body one
 * sender spreads here and one more sender spreads on each of two other
 * hosts (as the shared store reports them, through the share hook):
 *  - alone (no hook, or the other hosts' count still 0): no outbreak;
 *  - with the other hosts' 2: an outbreak, its reason saying which are here;
 *  - the hook is given this host's counts of the body (its digest, 1
 *    spreading sender), so that the proxy can publish them;
 *  - which bodies are worth sharing: 2 senders or 1 spreading, not a one-off.
 */
#include <stdio.h>
#include <string.h>
#include "behaviour.h"
#include "test.h"

#define NS 1000000000ULL
#define HOUR (3600 * NS)
#define T0 (20000 * 24 * HOUR + 12 * HOUR)

struct fake_store {
	uint32_t others_spreading;	/* what the store says of the other hosts */
	uint32_t calls;
	struct sg_bulk_view last;	/* what this host published */
};

static uint32_t fake_share(void *ctx, const struct sg_bulk_view *v, uint64_t now)
{
	struct fake_store *f = ctx;

	(void)now;
	f->calls++;
	f->last = *v;
	return f->others_spreading;
}

static void offer(struct sg_fingerprint *fp, uint32_t recipient)
{
	char text[1024];
	struct sg_fingerprint_ctx ctx;

	snprintf(text, sizeof(text), "Hello %c%c, cheap watches and designer bags at wholesale "
		 "prices, direct from the factory with worldwide shipping in plain packaging. "
		 "Visit our store at https://shop.example.org/p/%u?r=%u and use the secret coupon "
		 "for an extra discount on your first purchase, limited stock available now.",
		 'a' + recipient % 26, 'a' + recipient / 26 % 26, recipient * 31, recipient);
	sg_fingerprint_begin(&ctx);
	sg_fingerprint_feed(&ctx, text, strlen(text));
	sg_fingerprint_end(&ctx, fp);
}

static const struct sg_behaviour_finding *outbreak(const struct sg_behaviour_report *r)
{
	for (int i = 0; i < r->n_findings; i++)
		if (r->findings[i].signal == SG_SIGNAL_OUTBREAK)
			return &r->findings[i];
	return NULL;
}

/* One sender spreading the offer to 12 domains; the report after. */
static void spread(struct sg_behaviour *b, const struct sg_behaviour_thresholds *t,
		   struct sg_behaviour_report *r)
{
	struct sg_behaviour_id id = { "vm-host-a", 9, NULL, 0 };
	struct sg_fingerprint fp;

	for (uint32_t j = 0; j < 12; j++) {
		char dom[32];
		const char *to[1] = { dom };
		struct sg_behaviour_message m = { .rcpts = 1, .rcpt_domains = to,
						  .n_rcpt_domains = 1,
						  .mail_from_domain = "shop.example",
						  .fingerprint = &fp };

		snprintf(dom, sizeof(dom), "target%u.example", j);
		offer(&fp, j);
		sg_behaviour_note_message(b, &id, T0 + j * NS, &m);
	}
	sg_behaviour_assess(b, &id, T0 + 20 * NS, t, r);
}

static struct sg_behaviour *store_new(void)
{
	struct sg_behaviour_limits l;

	sg_behaviour_limits_default(&l);
	l.capacity = 256;
	l.shards = 4;
	l.hash_key[0] = 0x5347544553543031ULL;
	l.hash_key[1] = 0x6275696b73686172ULL;
	l.bulk.capacity = 64;
	return sg_behaviour_new(&l);
}

int main(void)
{
	struct sg_behaviour_thresholds t;
	struct sg_behaviour_report r;
	struct fake_store f = { 0 };
	const struct sg_behaviour_finding *o;
	struct sg_behaviour *b;

	sg_behaviour_thresholds_default(&t);
	t.outbreak_senders = 2;	/* more than 2: 3 or more */
	t.spread_domains = 10;

	b = store_new();
	if (!ASSERT_TRUE(b != NULL, "store: created"))
		return test_exit_status();
	spread(b, &t, &r);
	o = outbreak(&r);
	ASSERT_TRUE(r.known && r.values.bulk_known, "alone: the body is in the bulk table");
	ASSERT_EQ(r.values.bulk.spreading_senders, 1, "alone: 1 spreading sender here");
	ASSERT_TRUE(!o, "alone: 1 spreading sender is no outbreak (limit: more than 2)");
	sg_behaviour_free(b);

	b = store_new();
	sg_behaviour_share_bulk(b, fake_share, &f);
	spread(b, &t, &r);
	o = outbreak(&r);
	ASSERT_TRUE(f.calls >= 1, "shared, none yet: the hook was asked");
	ASSERT_TRUE(!o, "shared, the other hosts' count 0: no outbreak");
	ASSERT_EQ(f.last.spreading_senders, 1, "hook: given this host's 1 spreading sender");
	ASSERT_TRUE(f.last.digest != 0, "hook: given the body's digest");
	ASSERT_TRUE(sg_bulk_view_shareable(&f.last), "hook: 1 spreading sender is shareable");

	f.others_spreading = 2;
	spread(b, &t, &r);
	o = outbreak(&r);
	ASSERT_TRUE(o != NULL, "shared, 2 on other hosts: 1 + 2 = 3 spreading, an outbreak");
	if (o) {
		printf("# %s\n", o->reason);
		ASSERT_CONTAINS(o->reason, "from 3 senders (1 here, 2 on other hosts)",
				"shared: the reason tells this host's from the others'");
	}
	ASSERT_EQ(r.values.bulk.shared_spreading_senders, 2, "shared: the value carries the 2");
	sg_behaviour_free(b);

	{
		struct sg_bulk_view v = { .senders = 1 };

		ASSERT_TRUE(!sg_bulk_view_shareable(&v), "shareable: a one-off of one sender is not");
		v.senders = 2;
		ASSERT_TRUE(sg_bulk_view_shareable(&v), "shareable: 2 senders are");
	}
	return test_exit_status();
}
