/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* test_scan_behaviour.c - the behaviour store and its judgment
 * (scan/behaviour*.c) on synthetic senders, with the default thresholds:
 *  - an honest small business stays at 0, new and later;
 *  - a newsletter at 10 messages a second to 2,000 subscribers with 1%
 *    unknown: 1 (volume alone) on its first campaign as a new sender, 0
 *    from the day its usual holds its campaigns;
 *  - a compromised host, 1,000 messages in 60 s to many domains, 30%
 *    unknown: 2 within its first 10 seconds, new or long known;
 *  - an outbreak, the same body from 5 clean senders: an outbreak finding
 *    on each (1), which the newsletter never has;
 *  - a VM spreading through TLS to 300 MXes an hour; MX policy refusals;
 *  - the MX replies that count as unknown users or policy refusals;
 *  - sub-identities listed with their levels, released with their parent;
 *  - hostile keys: empty, long, almost alike. */
#include <stdio.h>
#include <string.h>
#include "behaviour.h"
#include "test.h"

#define NS 1000000000ULL
#define MS 1000000ULL
#define MIN (60 * NS)
#define HOUR (60 * MIN)
#define DAY (24 * HOUR)
#define DAY0 (20000 * DAY)	/* a UTC midnight */

static struct sg_behaviour *store;
static struct sg_behaviour_thresholds limits;

static struct sg_behaviour_id id_of(const char *key)
{
	return (struct sg_behaviour_id){ key, strlen(key), NULL, 0 };
}

enum body_kind { NEWSLETTER, PRIZE, OFFER };

/* Three unrelated mass mailings, personalised with a name and a link. */
static void body(struct sg_fingerprint *fp, enum body_kind kind, uint32_t recipient)
{
	static const char *const texts[] = {
		[NEWSLETTER] = "Dear customer %c%c, this is the newsletter of this month with our "
			"news. Our spring collection has arrived in the shop and online, with new "
			"colours and sizes for the whole family. Members save on every order this "
			"week and delivery is free above a small amount. Read more at "
			"https://t.example.com/c/%u?u=%u or reply with your questions.",
		[PRIZE] = "Congratulations %c%c! You have been selected as the lucky winner of our "
			"international lottery draw. To claim the cash prize transferred to your "
			"bank account, confirm your identity today at https://claim.example.net/%u/%u "
			"before the offer expires. Do not tell anyone until the funds arrive.",
		[OFFER] = "Hello %c%c, cheap watches and designer bags at wholesale prices, direct "
			"from the factory with worldwide shipping in plain packaging. Visit our store "
			"at https://shop.example.org/p/%u?r=%u and use the secret coupon for an extra "
			"discount on your first purchase, limited stock available now.",
	};
	char text[1024];
	struct sg_fingerprint_ctx ctx;

	snprintf(text, sizeof(text), texts[kind], 'a' + recipient % 26,
		 'a' + recipient / 26 % 26, recipient * 31, recipient);
	sg_fingerprint_begin(&ctx);
	sg_fingerprint_feed(&ctx, text, strlen(text));
	sg_fingerprint_end(&ctx, fp);
}

static void unique_body(struct sg_fingerprint *fp, uint64_t seed)
{
	static const char *const w[] = { "invoice", "meeting", "order", "delivery", "question",
					  "thanks", "monday", "attached", "price", "contract",
					  "please", "call", "review", "draft", "account", "visit" };
	char text[512];
	size_t used = 0;
	struct sg_fingerprint_ctx ctx;

	for (int i = 0; i < 40; i++) {
		seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
		used += (size_t)snprintf(text + used, sizeof(text) - used, "%s ", w[seed >> 60]);
	}
	sg_fingerprint_begin(&ctx);
	sg_fingerprint_feed(&ctx, text, used);
	sg_fingerprint_end(&ctx, fp);
}

/* One message: a RCPT reply for each recipient (unknown or taken), then
 * the message; returns the sender's level just after. */
static int send_one(const char *key, uint64_t now, const char *const *domains, uint32_t n,
		    int unknown, const char *from, const struct sg_fingerprint *fp)
{
	struct sg_behaviour_id id = id_of(key);
	struct sg_behaviour_message m = { .rcpts = n, .rcpt_domains = domains,
					  .n_rcpt_domains = n, .mail_from_domain = from,
					  .fingerprint = fp };
	struct sg_behaviour_report r;

	for (uint32_t i = 0; i < n; i++) {
		if (unknown)
			sg_behaviour_note_reply(store, &id, now, SG_REPLY_RCPT, 550, "5.1.1",
						"<x@y>: Recipient address rejected: User unknown");
		else
			sg_behaviour_note_reply(store, &id, now, SG_REPLY_RCPT, 250, "2.1.5", "Ok");
	}
	sg_behaviour_note_message(store, &id, now, &m);
	sg_behaviour_assess(store, &id, now, &limits, &r);
	return r.level;
}

/* 20 messages an hour from 8:00 to 18:00, to 15 customer domains, one
 * recipient in 40 unknown; the highest level it reached that day. */
static int business_day(const char *key, uint64_t day)
{
	static const char *const customers[] = {
		"gmail.com", "outlook.com", "yahoo.com", "bakery.example", "garage.example",
		"school.example", "clinic.example", "hotel.example", "farm.example",
		"lawyer.example", "dentist.example", "florist.example", "gym.example",
		"library.example", "museum.example",
	};
	struct sg_fingerprint fp;
	int worst = 0;

	for (uint32_t i = 0; i < 200; i++) {
		uint64_t now = day + 8 * HOUR + i * 3 * MIN;
		const char *to[1] = { customers[(i * 7) % 15] };
		int level;

		unique_body(&fp, day + i);
		level = send_one(key, now, to, 1, i % 40 == 39, "shop.example", &fp);
		if (level > worst)
			worst = level;
	}
	return worst;
}

static void test_small_business(void)
{
	ASSERT_EQ(business_day("vm-shop", DAY0), 0, "small business: its first day (new) at 0");
	ASSERT_EQ(business_day("vm-shop", DAY0 + DAY), 0, "small business: its second day at 0");
	ASSERT_EQ(business_day("vm-shop", DAY0 + 2 * DAY), 0, "small business: its third day at 0");
}

/* 2,000 subscribers in 400 domains at 10 a second from 10:00, 1% unknown,
 * one body personalised; the highest level it reached, and its report
 * at the end. */
static int campaign(uint64_t day, struct sg_behaviour_report *end)
{
	struct sg_behaviour_id id = id_of("vm-news");
	struct sg_fingerprint fp;
	int worst = -1;

	for (uint32_t i = 0; i < 2000; i++) {
		char dom[32];
		const char *to[1] = { dom };
		uint64_t now = day + 10 * HOUR + i * 100 * MS;
		int level;

		snprintf(dom, sizeof(dom), "d%u.example", i % 400);
		body(&fp, NEWSLETTER, i);
		level = send_one("vm-news", now, to, 1, i % 100 == 17, "news.example", &fp);
		if (level > worst)
			worst = level;
	}
	sg_behaviour_assess(store, &id, day + 10 * HOUR + 200 * NS, &limits, end);
	return worst;
}

static int has_finding(const struct sg_behaviour_report *r, enum sg_signal s)
{
	for (int i = 0; i < r->n_findings; i++)
		if (r->findings[i].signal == s)
			return 1;
	return 0;
}

static const char *reason(const struct sg_behaviour_report *r, enum sg_signal s)
{
	for (int i = 0; i < r->n_findings; i++)
		if (r->findings[i].signal == s)
			return r->findings[i].reason;
	return NULL;
}

static void print_report(const char *who, const struct sg_behaviour_report *r)
{
	char text[2048];

	sg_behaviour_report_format(r, text, sizeof(text));
	printf("# %s:\n", who);
	for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n"))
		printf("#   %s\n", line);
}

static void test_newsletter(void)
{
	struct sg_behaviour_report peak, last;
	int worst_later = 0;

	ASSERT_EQ(campaign(DAY0, &peak), 1, "newsletter: its first campaign, as a new sender, at 1");
	print_report("newsletter, end of its first campaign (new sender)", &peak);
	ASSERT_TRUE(!has_finding(&peak, SG_SIGNAL_UNKNOWN_RCPTS) &&
		    !has_finding(&peak, SG_SIGNAL_OUTBREAK),
		    "newsletter: volume alone (1% unknown is fine, one sender is no outbreak)");
	ASSERT_TRUE(campaign(DAY0 + DAY, &peak) <= 1, "newsletter: its second campaign at most 1");
	for (int d = 2; d < 8; d++) {
		int level = campaign(DAY0 + (uint64_t)d * DAY, &last);

		if (level > worst_later)
			worst_later = level;
	}
	ASSERT_EQ(worst_later, 0, "newsletter: from its third day (its usual warm) at 0 throughout");
	print_report("newsletter, end of its eighth campaign", &last);
	ASSERT_EQ(last.values.messages, 2000, "newsletter: 2,000 messages in the last hour");
	ASSERT_TRUE(last.values.unknown_pct == 1, "newsletter: 1% unknown");
	ASSERT_TRUE(last.values.bulk_known && last.values.bulk.senders == 1,
		    "newsletter: its body from 1 sender");
	ASSERT_TRUE(last.values.usual_warm && last.values.usual_messages == 2000,
		    "newsletter: its usual busiest hour is 2,000 messages");
}

/* 1,000 messages in 60 s, each to its own domain, 30% unknown: the
 * seconds until level 2 (-1: never), and the report at 60 s. */
static double compromise(const char *key, uint64_t start, struct sg_behaviour_report *end)
{
	struct sg_fingerprint fp;
	struct sg_behaviour_id id = id_of(key);
	double first_abusive = -1;

	for (uint32_t i = 0; i < 1000; i++) {
		char dom[32];
		const char *to[1] = { dom };
		uint64_t now = start + i * 60 * MS;

		snprintf(dom, sizeof(dom), "victim%u.example", i);
		body(&fp, PRIZE, i);
		if (send_one(key, now, to, 1, i % 10 < 3, i % 2 ? "bank.example" : "prize.example",
			     &fp) == 2 && first_abusive < 0)
			first_abusive = (double)(now - start) / NS;
	}
	sg_behaviour_assess(store, &id, start + 60 * NS, &limits, end);
	return first_abusive;
}

static void test_compromised_new(void)
{
	struct sg_behaviour_report r;
	double at = compromise("vm-owned", DAY0 + 3 * HOUR, &r);
	const char *why;

	printf("# compromised new host: level 2 after %.2f s\n", at);
	print_report("compromised new host, after 60 s", &r);
	ASSERT_TRUE(at >= 0 && at <= 10, "compromised new host: level 2 within 10 s");
	ASSERT_EQ(r.level, 2, "compromised new host: at 2 after 60 s");
	why = reason(&r, SG_SIGNAL_UNKNOWN_RCPTS);
	ASSERT_CONTAINS(why, "30% of 1000 recipients unknown at the MX (limit 10%)",
			"compromised new host: the reason names the unknown ratio");
	why = reason(&r, SG_SIGNAL_RCPT_DOMAINS);
	ASSERT_CONTAINS(why, "recipient domains in the last hour (limit 200, new sender: 100)",
			"compromised new host: the reason names the domains and the new sender's limit");
	ASSERT_TRUE(has_finding(&r, SG_SIGNAL_BURST) && has_finding(&r, SG_SIGNAL_MESSAGES),
		    "compromised new host: a burst and too many messages");
	ASSERT_TRUE(r.values.rcpt_domains > 610 && r.values.rcpt_domains < 1390,
		    "compromised new host: 1,000 recipient domains, within 3 standard errors (39%)");
}

static void test_compromised_known(void)
{
	struct sg_behaviour_report r;
	double at;

	for (int d = 0; d < 3; d++)
		business_day("vm-shop2", DAY0 + (uint64_t)d * DAY);
	at = compromise("vm-shop2", DAY0 + 3 * DAY + 11 * HOUR, &r);
	printf("# compromised long-known host: level 2 after %.2f s\n", at);
	ASSERT_TRUE(at >= 0 && at <= 10, "compromised long-known host: level 2 within 10 s");
	ASSERT_TRUE(has_finding(&r, SG_SIGNAL_OVER_USUAL),
		    "compromised long-known host: far over its usual");
	ASSERT_CONTAINS(reason(&r, SG_SIGNAL_OVER_USUAL), "its usual busiest hour of 20",
			"compromised long-known host: the reason names its usual");
}

static void test_outbreak(void)
{
	static const char *const vms[] = { "vm-a", "vm-b", "vm-c", "vm-d", "vm-e" };
	struct sg_behaviour_report r;
	struct sg_fingerprint fp;
	int all_found = 1, worst = 0;

	for (int v = 0; v < 5; v++)
		for (int d = 0; d < 3; d++)
			business_day(vms[v], DAY0 + (uint64_t)d * DAY);
	for (uint32_t j = 0; j < 40; j++)
		for (uint32_t v = 0; v < 5; v++) {
			char dom[32];
			const char *to[1] = { dom };

			snprintf(dom, sizeof(dom), "target%u.example", v * 100 + j);
			body(&fp, OFFER, v * 40 + j);
			send_one(vms[v], DAY0 + 3 * DAY + 12 * HOUR + (j * 5 + v) * NS, to, 1, 0,
				 "shop.example", &fp);
		}
	for (int v = 0; v < 5; v++) {
		struct sg_behaviour_id id = id_of(vms[v]);

		sg_behaviour_assess(store, &id, DAY0 + 3 * DAY + 12 * HOUR + 200 * NS, &limits, &r);
		all_found &= has_finding(&r, SG_SIGNAL_OUTBREAK);
		if (r.level > worst)
			worst = r.level;
	}
	print_report("outbreak, one of 5 clean senders", &r);
	ASSERT_TRUE(all_found, "outbreak: each of the 5 senders has the outbreak finding");
	ASSERT_CONTAINS(reason(&r, SG_SIGNAL_OUTBREAK), "the same body from 5 senders",
			"outbreak: the reason counts the senders");
	ASSERT_EQ(worst, 1, "outbreak: clean senders otherwise, so at 1");
}

static void test_tls(void)
{
	struct sg_behaviour_id spreader = id_of("vm-tls"), honest = id_of("vm-tls-ok");
	struct sg_behaviour_report r;

	for (uint32_t i = 0; i < 300; i++) {
		uint8_t addr[4] = { 203, 0, (uint8_t)(113 + i / 256), (uint8_t)i };
		char name[32];
		struct sg_behaviour_tls s = { addr, sizeof(addr), name, 4000, 800 * MS };

		snprintf(name, sizeof(name), "mx%u.example", i);
		sg_behaviour_note_tls_session(store, &spreader, DAY0 + 5 * HOUR + i * 10 * NS, &s);
	}
	for (uint32_t i = 0; i < 20; i++) {
		uint8_t addr[4] = { 198, 51, 100, (uint8_t)(i % 3) };
		struct sg_behaviour_tls s = { addr, sizeof(addr), "mx.example", 20000, 2 * NS };

		sg_behaviour_note_tls_session(store, &honest, DAY0 + 5 * HOUR + i * MIN, &s);
	}
	sg_behaviour_assess(store, &spreader, DAY0 + 5 * HOUR + 50 * MIN, &limits, &r);
	print_report("TLS to 300 MXes in 50 minutes", &r);
	ASSERT_TRUE(r.values.tls_mx > 183 && r.values.tls_mx < 417,
		    "tls: 300 MX addresses, within 3 standard errors (39%)");
	ASSERT_TRUE(has_finding(&r, SG_SIGNAL_TLS_MX), "tls: too many MX addresses");
	ASSERT_EQ(r.level, 1, "tls: content-blind spreading is suspicious (1)");
	sg_behaviour_assess(store, &honest, DAY0 + 5 * HOUR + 50 * MIN, &limits, &r);
	ASSERT_EQ(r.level, 0, "tls: 20 sessions to 3 MXes at 0");
	ASSERT_EQ(r.values.tls_bytes, 20 * 20480, "tls: bytes counted (in KiB, rounded up)");
	ASSERT_EQ(r.values.tls_mean_ms, 2000, "tls: mean duration 2 s");
	ASSERT_TRUE(r.values.tls_mx >= 2 && r.values.tls_mx <= 4, "tls: 3 MX addresses (give or take 1)");
}

static void test_policy_refusals(void)
{
	struct sg_behaviour_id id = id_of("vm-refused");
	struct sg_behaviour_report r;

	for (int d = 0; d < 3; d++)
		business_day("vm-refused", DAY0 + (uint64_t)d * DAY);
	for (int i = 0; i < 25; i++)
		sg_behaviour_note_reply(store, &id, DAY0 + 3 * DAY + 9 * HOUR + (uint64_t)i * MIN,
					SG_REPLY_DATA, 550, "5.7.1",
					"Message rejected as spam by Content Filtering");
	sg_behaviour_assess(store, &id, DAY0 + 3 * DAY + 9 * HOUR + 30 * MIN, &limits, &r);
	ASSERT_EQ(r.values.policy_refusals, 25, "policy: 25 refusals counted");
	ASSERT_EQ(r.level, 2, "policy: 25 spam refusals in an hour (limit 10) make 2");
}

static void test_classify_replies(void)
{
	static const struct {
		int code;
		const char *enhanced, *text;
		enum sg_reply_kind want;
		const char *name;
	} cases[] = {
		{ 550, "5.1.1", "User unknown", SG_REPLY_UNKNOWN_USER, "reply: 550 5.1.1 is an unknown user" },
		{ 550, NULL, "5.1.1 <a@b.example>: Recipient address rejected: User unknown in virtual mailbox table",
		  SG_REPLY_UNKNOWN_USER, "reply: the code read from the text" },
		{ 550, "5.1.0", "Address rejected", SG_REPLY_UNKNOWN_USER, "reply: 5.1.0 is unknown" },
		{ 556, NULL, "5.1.10 Recipient address has null MX", SG_REPLY_UNKNOWN_USER,
		  "reply: 5.1.10 (null MX) is unknown" },
		{ 550, NULL, "Requested action not taken: USER UNKNOWN", SG_REPLY_UNKNOWN_USER,
		  "reply: a 550 without a code that says user unknown" },
		{ 550, "5.0.0", "No such user here", SG_REPLY_UNKNOWN_USER,
		  "reply: 5.0.0 with 'no such user'" },
		{ 550, "5.2.2", "Mailbox full", SG_REPLY_OTHER, "reply: a full mailbox is not unknown" },
		{ 550, "5.2.1", "The email account that you tried to reach does not exist",
		  SG_REPLY_OTHER, "reply: a code that says otherwise wins over the text" },
		{ 450, "4.1.1", "User unknown, try later", SG_REPLY_OTHER, "reply: 4xx never counts" },
		{ 451, "4.7.1", "Greylisted, try again", SG_REPLY_OTHER, "reply: greylisting is not policy" },
		{ 550, "5.7.1", "Service unavailable; client host blocked", SG_REPLY_POLICY,
		  "reply: 5.7.1 is a policy refusal" },
		{ 554, NULL, "Your IP is on a blocklist", SG_REPLY_POLICY,
		  "reply: a 554 without a code that says blocklist" },
		{ 550, "5.99999.1", NULL, SG_REPLY_OTHER, "reply: a malformed code and no text" },
		{ 550, "", "", SG_REPLY_OTHER, "reply: empty code and text" },
		{ 550, NULL, NULL, SG_REPLY_OTHER, "reply: no code, no text" },
		{ 250, "2.1.5", "Ok", SG_REPLY_OTHER, "reply: 250 is nothing" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		ASSERT_EQ(sg_behaviour_classify_reply(cases[i].code, cases[i].enhanced, cases[i].text),
			  cases[i].want, cases[i].name);
}

static void test_sub_identities(void)
{
	static const char *const subs[] = { "from:a.example", "from:b.example",
					    "script:/var/www/html/wp-content/x.php" };
	const char *parent = "vm-host";
	struct sg_behaviour_sub out[8];
	struct sg_behaviour_report r;
	int n, level_of[3] = { -1, -1, -1 };

	for (uint32_t i = 0; i < 300; i++) {
		uint64_t now = DAY0 + 4 * HOUR + i * 100 * MS;
		uint32_t s = i < 20 ? i % 2 : 2;	/* x.php takes over after 20 */
		char dom[32];
		const char *to[1] = { dom };
		struct sg_behaviour_id sub = { subs[s], strlen(subs[s]), parent, strlen(parent) };
		struct sg_behaviour_message m = { .rcpts = 1, .rcpt_domains = to,
						  .n_rcpt_domains = 1 };
		int unknown = s == 2 && i % 10 < 4;

		snprintf(dom, sizeof(dom), "%s%u.example", s == 2 ? "v" : "c", s == 2 ? i : i % 3);
		send_one(parent, now, to, 1, unknown, "host.example", NULL);
		sg_behaviour_note_reply(store, &sub, now, SG_REPLY_RCPT, unknown ? 550 : 250,
					unknown ? "5.1.1" : "2.1.5", "");
		sg_behaviour_note_message(store, &sub, now, &m);
	}
	n = sg_behaviour_subs(store, parent, strlen(parent), DAY0 + 4 * HOUR + 30 * NS, &limits,
			      out, 8);
	ASSERT_EQ(n, 3, "subs: the sender key lists its 3 sub-identities");
	for (int i = 0; i < n; i++)
		for (int s = 0; s < 3; s++)
			if (out[i].key_len == strlen(subs[s]) && !memcmp(out[i].key, subs[s], out[i].key_len))
				level_of[s] = out[i].level;
	ASSERT_EQ(level_of[0], 0, "subs: from:a.example at 0");
	ASSERT_EQ(level_of[1], 0, "subs: from:b.example at 0");
	ASSERT_EQ(level_of[2], 2, "subs: the script sending to unknown users at 2");
	{
		struct sg_behaviour_id pid = id_of(parent);

		sg_behaviour_assess(store, &pid, DAY0 + 4 * HOUR + 30 * NS, &limits, &r);
		ASSERT_EQ(r.values.subs, 3, "subs: the sender key's report counts them");
		ASSERT_EQ(sg_behaviour_release(store, &pid), 0, "release: the sender key is forgotten");
	}
	{
		struct sg_behaviour_id sub = { subs[2], strlen(subs[2]), parent, strlen(parent) };

		ASSERT_EQ(sg_behaviour_assess(store, &sub, DAY0 + 4 * HOUR + 31 * NS, &limits, &r), -1,
			  "release: its sub-identities went with it");
		ASSERT_EQ(r.known, 0, "release: an unknown id reads as not known");
		ASSERT_EQ(sg_behaviour_subs(store, parent, strlen(parent), DAY0, &limits, out, 8), -1,
			  "release: nothing to list");
		ASSERT_EQ(sg_behaviour_release(store, &sub), -1, "release: twice is refused");
	}
}

static void test_hostile_keys(void)
{
	char long_a[200], long_b[200], k64[64], k65[65];
	struct sg_behaviour_id empty = { "", 0, NULL, 0 }, nokey = { NULL, 5, NULL, 0 };
	struct sg_behaviour_id bad_parent = { "x", 1, "", 0 };
	struct sg_behaviour_message m = { .rcpts = 1 };
	struct sg_behaviour_report r;

	ASSERT_EQ(sg_behaviour_note_message(store, &empty, DAY0, &m), -1, "keys: an empty key is refused");
	ASSERT_EQ(sg_behaviour_note_message(store, &nokey, DAY0, &m), -1, "keys: a NULL key is refused");
	ASSERT_EQ(sg_behaviour_note_message(store, &bad_parent, DAY0, &m), -1,
		  "keys: an empty parent is refused");
	memset(long_a, 'k', sizeof(long_a));
	memcpy(long_b, long_a, sizeof(long_b));
	long_b[199] = 'z';
	memset(k64, 'k', sizeof(k64));
	memset(k65, 'k', sizeof(k65));
	{
		struct sg_behaviour_id a = { long_a, sizeof(long_a), NULL, 0 };
		struct sg_behaviour_id b = { long_b, sizeof(long_b), NULL, 0 };
		struct sg_behaviour_id c = { k64, sizeof(k64), NULL, 0 };
		struct sg_behaviour_id d = { k65, sizeof(k65), NULL, 0 };

		sg_behaviour_note_message(store, &a, DAY0, &m);
		sg_behaviour_note_message(store, &b, DAY0, &m);
		sg_behaviour_note_message(store, &b, DAY0, &m);
		sg_behaviour_note_message(store, &c, DAY0, &m);
		sg_behaviour_note_message(store, &d, DAY0, &m);
		sg_behaviour_note_message(store, &d, DAY0, &m);
		sg_behaviour_note_message(store, &d, DAY0, &m);
		sg_behaviour_assess(store, &a, DAY0, &limits, &r);
		ASSERT_EQ(r.values.messages, 1, "keys: 200-byte keys differing in their last byte are two");
		sg_behaviour_assess(store, &b, DAY0, &limits, &r);
		ASSERT_EQ(r.values.messages, 2, "keys: the other counts its own");
		sg_behaviour_assess(store, &c, DAY0, &limits, &r);
		ASSERT_EQ(r.values.messages, 1, "keys: a 64-byte key and its 65-byte extension are two");
		sg_behaviour_assess(store, &d, DAY0, &limits, &r);
		ASSERT_EQ(r.values.messages, 3, "keys: the 65-byte one counts its own");
	}
	{
		const char *many[SG_BEHAVIOUR_DOMAINS_MAX + 10];
		struct sg_behaviour_id id = id_of("vm-many-rcpts");
		struct sg_behaviour_message big = { .rcpts = 100000, .rcpt_domains = many,
						    .n_rcpt_domains = SG_BEHAVIOUR_DOMAINS_MAX + 10,
						    .mail_from_domain = "" };

		for (size_t i = 0; i < SG_BEHAVIOUR_DOMAINS_MAX + 10; i++)
			many[i] = i % 3 ? "Example.COM." : i % 2 ? NULL : "example.com";
		ASSERT_EQ(sg_behaviour_note_message(store, &id, DAY0, &big), 0,
			  "keys: a message with 1,034 domains, NULLs among them, is taken");
		sg_behaviour_assess(store, &id, DAY0, &limits, &r);
		ASSERT_EQ(r.values.rcpt_domains, 1, "domains: case and a final dot do not count");
		ASSERT_EQ(r.values.mail_from_domains, 0, "domains: the null sender has no domain");
	}
}

static void test_unknown_and_format(void)
{
	struct sg_behaviour_id id = id_of("never-seen");
	struct sg_behaviour_report r;
	char text[64];

	ASSERT_EQ(sg_behaviour_assess(store, &id, DAY0, &limits, &r), -1, "assess: an unknown sender");
	ASSERT_EQ(r.level, 0, "assess: an unknown sender is at 0");
	sg_behaviour_report_format(&r, text, sizeof(text));
	ASSERT_STREQ(text, "not seen lately\n", "format: an unknown sender");
	id = id_of("vm-owned");
	sg_behaviour_assess(store, &id, DAY0 + 3 * HOUR + 60 * NS, &limits, &r);
	ASSERT_TRUE(sg_behaviour_report_format(&r, text, sizeof(text)) > (int)sizeof(text),
		    "format: says how much room it needed");
	ASSERT_TRUE(strlen(text) == sizeof(text) - 1, "format: truncated to the buffer");
	ASSERT_CONTAINS(text, "level 2 (abusive)", "format: starts with the level");
}

int main(void)
{
	struct sg_behaviour_limits l;
	struct sg_behaviour_stats st;

	sg_behaviour_limits_default(&l);
	l.capacity = 4096;
	l.shards = 16;
	/* a fixed hash key: the distinct counts are the same every run */
	l.hash_key[0] = 0x5347544553543031ULL;
	l.hash_key[1] = 0x6265686176696f75ULL;
	sg_behaviour_thresholds_default(&limits);
	store = sg_behaviour_new(&l);
	if (!ASSERT_TRUE(store != NULL, "store: created"))
		return test_exit_status();
	test_classify_replies();
	test_small_business();
	test_newsletter();
	test_compromised_new();
	test_compromised_known();
	test_outbreak();
	test_tls();
	test_policy_refusals();
	test_sub_identities();
	test_hostile_keys();
	test_unknown_and_format();
	sg_behaviour_stats(store, &st);
	printf("# store: %u of %u held, %zu bytes a sender, %zu bytes in all\n", st.held,
	       st.capacity, st.bytes_per_sender, st.bytes);
	sg_behaviour_free(store);
	return test_exit_status();
}
