/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * test_proxy_tenancy.c - unit tests of the proxy's tenant buckets and
 * senders' tenants (proxy/tenancy.c): a tenant's VMs share one bucket,
 * another tenant's is apart, the reason names the tenant limit, exempt and
 * limitless tenants are never held, the tables stay bounded; and the
 * interface of an accepted connection (IP_PKTINFO kept with the socket).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "tenancy.h"
#include "test.h"

static void test_buckets(void)
{
	struct sg_tenancy *t = sg_tenancy_new();
	struct sg_tenant_limits acme = { .msg_interval_ns = 1800000000000ULL, .msg_burst = 2,
					 .rcpt_interval_ns = 1200000000000ULL, .rcpt_burst = 3 };
	struct sg_tenant_limits exempt = { .exempt = 1 };
	char why[256] = "";
	int ok = 1;

	ASSERT_TRUE(t != NULL, "buckets: made");
	ASSERT_EQ(sg_tenancy_check_message(t, "acme", &acme, why, sizeof(why)), 0,
		  "buckets: a full bucket takes a message");
	ASSERT_EQ(sg_tenancy_charge(t, "acme", &acme, 1, why, sizeof(why)), 0,
		  "buckets: first message (vm1) charged");
	ASSERT_EQ(sg_tenancy_charge(t, "acme", &acme, 1, why, sizeof(why)), 0,
		  "buckets: second message (vm2, same tenant) charged");
	ASSERT_EQ(sg_tenancy_check_message(t, "acme", &acme, why, sizeof(why)), -1,
		  "buckets: the third is over the tenant's message rate");
	ASSERT_CONTAINS(why, "over the message rate of tenant acme (2, then ",
			"buckets: the reason names the tenant limit");
	ASSERT_EQ(sg_tenancy_charge(t, "acme", &acme, 1, why, sizeof(why)), -1,
		  "buckets: ... and its charge is refused");
	ASSERT_EQ(sg_tenancy_charge(t, "globex", &acme, 1, why, sizeof(why)), 0,
		  "buckets: another tenant with the same limits has its own bucket");
	ASSERT_EQ(sg_tenancy_charge(t, "globex", &acme, 3, why, sizeof(why)), -1,
		  "buckets: 1 + 3 recipients are over a recipient burst of 3");
	ASSERT_CONTAINS(why, "over the recipient rate of tenant globex",
			"buckets: ... the recipient limit named");
	for (int i = 0; i < 100; i++)
		ok &= sg_tenancy_charge(t, "trusted", &exempt, 50, why, sizeof(why)) == 0;
	ASSERT_TRUE(ok, "buckets: an exempt tenant is never held");
	ASSERT_EQ(sg_tenancy_charge(t, "acme", NULL, 1, why, sizeof(why)), 0,
		  "buckets: a tenant without limits is never held");
	ASSERT_EQ(sg_tenancy_charge(NULL, "acme", &acme, 1, why, sizeof(why)), 0,
		  "buckets: no tenancy (the relay's tests) holds nothing");
	/* bounded: past SG_MAX_TENANTS tenants, no bucket (and no limit) */
	ok = 1;
	for (int i = 0; i < SG_MAX_TENANTS + 10; i++) {
		char name[SG_TENANT_NAME_LEN];

		snprintf(name, sizeof(name), "t%d", i);
		ok &= sg_tenancy_charge(t, name, &acme, 1, why, sizeof(why)) == 0;
	}
	ASSERT_TRUE(ok, "buckets: 4106 tenants charged once each");
	sg_tenancy_free(t);
}

static void test_senders(void)
{
	struct sg_tenancy *t = sg_tenancy_new();
	struct sg_src_key a = { .addr = { [10] = 0xff, [11] = 0xff, 192, 0, 2, 11 } };
	struct sg_src_key b = a;
	char name[SG_TENANT_NAME_LEN];

	b.addr[15] = 12;
	ASSERT_EQ(sg_tenancy_sender(t, &a, name, sizeof(name)), 0, "senders: none noted yet");
	sg_tenancy_note_sender(t, &a, "acme");
	ASSERT_EQ(sg_tenancy_sender(t, &a, name, sizeof(name)), 1, "senders: noted");
	ASSERT_STREQ(name, "acme", "senders: ... as acme");
	ASSERT_EQ(sg_tenancy_sender(t, &b, name, sizeof(name)), 0, "senders: another is not");
	sg_tenancy_note_sender(t, &a, "");
	ASSERT_EQ(sg_tenancy_sender(t, &a, name, sizeof(name)), 0,
		  "senders: noted again without a tenant: none");
	/* a flood of senders overwrites slots (a fixed table), never grows it:
	 * the latest one is still found */
	for (int i = 0; i < 3 * SG_TENANCY_SENDERS; i++) {
		struct sg_src_key k = a;

		memcpy(k.addr + 12, &i, sizeof(i));
		sg_tenancy_note_sender(t, &k, "flood");
		if (i + 1 == 3 * SG_TENANCY_SENDERS) {
			ASSERT_EQ(sg_tenancy_sender(t, &k, name, sizeof(name)), 1,
				  "senders: after 12288 in 4096 slots, the latest found");
			ASSERT_STREQ(name, "flood", "senders: ... with its tenant");
		}
	}
	sg_tenancy_free(t);
}

/* A loopback connection accepted by a listener that asked for IP_PKTINFO:
 * its interface is lo's. */
static void test_ifindex(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	struct sockaddr_storage peer;
	socklen_t len = sizeof(sa), plen = sizeof(peer);
	int l = socket(AF_INET, SOCK_STREAM, 0), c = socket(AF_INET, SOCK_STREAM, 0), a;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (l < 0 || c < 0 || sg_tenancy_listener(l, AF_INET) ||
	    bind(l, (struct sockaddr *)&sa, sizeof(sa)) || listen(l, 1) ||
	    getsockname(l, (struct sockaddr *)&sa, &len) ||
	    connect(c, (struct sockaddr *)&sa, sizeof(sa))) {
		ASSERT_TRUE(0, "ifindex: a loopback connection");
		return;
	}
	a = accept(l, (struct sockaddr *)&peer, &plen);
	ASSERT_EQ(sg_tenancy_ifindex(a, &peer, NULL), 1,
		  "ifindex: the SYN's interface (lo, ifindex 1) kept with the socket");
	close(a);
	close(c);
	close(l);
}

int main(void)
{
	test_buckets();
	test_senders();
	test_ifindex();
	return test_exit_status();
}
