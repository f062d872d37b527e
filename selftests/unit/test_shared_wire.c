/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * test_shared_wire.c - the shared store's text and the sync's table: the
 * redis setting read (and every bad form refused with what to write), a
 * sender to its member and back, the group a sender counts in, and the
 * table bounded under a flood of senders, with deletions that keep every
 * other sender findable.
 */
#include <arpa/inet.h>
#include <stdlib.h>
#include "shared_table.h"
#include "shared_wire.h"
#include "test.h"

static struct sg_src_key v4(const char *s)
{
	struct sg_src_key k = {};

	k.addr[10] = 0xff;
	k.addr[11] = 0xff;
	inet_pton(AF_INET, s, &k.addr[12]);
	return k;
}

static void test_addr(void)
{
	struct sg_redis_addr a;
	char err[256];

	ASSERT_EQ(sg_redis_addr_parse("none", &a, err, sizeof(err)), 0, "addr: none");
	ASSERT_EQ(a.kind, SG_REDIS_NONE, "addr: none is none");
	ASSERT_EQ(sg_redis_addr_parse("", &a, err, sizeof(err)), 0, "addr: empty is none");
	ASSERT_EQ(sg_redis_addr_parse("unix:/run/redis/redis.sock", &a, err, sizeof(err)), 0,
		  "addr: unix");
	ASSERT_EQ(a.kind, SG_REDIS_UNIX, "addr: unix kind");
	ASSERT_STREQ(a.path, "/run/redis/redis.sock", "addr: unix path");
	ASSERT_EQ(sg_redis_addr_parse("tcp:10.0.0.5:6379", &a, err, sizeof(err)), 0, "addr: tcp v4");
	ASSERT_STREQ(a.host, "10.0.0.5", "addr: tcp host");
	ASSERT_EQ(a.port, 6379, "addr: tcp port");
	ASSERT_EQ(sg_redis_addr_parse("tcp:[2001:db8::5]:6380", &a, err, sizeof(err)), 0,
		  "addr: tcp v6");
	ASSERT_STREQ(a.host, "2001:db8::5", "addr: v6 host without brackets");
	ASSERT_EQ(a.port, 6380, "addr: v6 port");
	ASSERT_EQ(sg_redis_addr_parse("tcp:redis.example.net:6379", &a, err, sizeof(err)), 0,
		  "addr: tcp name");

	ASSERT_EQ(sg_redis_addr_parse("tcp:10.0.0.5", &a, err, sizeof(err)), -1, "bad: no port");
	ASSERT_TRUE(strstr(err, "has no port") && strstr(err, "tcp:HOST:PORT"),
		    "bad: no port says how to write it");
	ASSERT_EQ(sg_redis_addr_parse("tcp:10.0.0.5:0", &a, err, sizeof(err)), -1, "bad: port 0");
	ASSERT_EQ(sg_redis_addr_parse("tcp:10.0.0.5:65536", &a, err, sizeof(err)), -1,
		  "bad: port too big");
	ASSERT_TRUE(strstr(err, "not a port from 1 to 65535") != NULL, "bad: port range said");
	ASSERT_EQ(sg_redis_addr_parse("tcp:2001:db8::5:6379", &a, err, sizeof(err)), -1,
		  "bad: v6 without brackets");
	ASSERT_TRUE(strstr(err, "brackets") != NULL, "bad: brackets said");
	ASSERT_EQ(sg_redis_addr_parse("unix:run/redis.sock", &a, err, sizeof(err)), -1,
		  "bad: relative socket");
	ASSERT_EQ(sg_redis_addr_parse("redis://10.0.0.5:6379", &a, err, sizeof(err)), -1,
		  "bad: a URL");
	ASSERT_TRUE(strstr(err, "names no transport") && strstr(err, "unix:/PATH"),
		    "bad: URL says the forms");
	ASSERT_EQ(sg_redis_addr_parse("tcp::6379", &a, err, sizeof(err)), -1, "bad: no host");
	ASSERT_EQ(sg_redis_addr_parse("tcp:a b:6379", &a, err, sizeof(err)), -1, "bad: blank in host");
}

static void test_names(void)
{
	struct sg_src_key k = v4("192.0.2.11"), back, k6 = {};
	char buf[SG_SHARED_NAME_LEN];

	sg_shared_sender_name(&k, buf, sizeof(buf));
	ASSERT_STREQ(buf, "192.0.2.11", "name: v4 sender");
	ASSERT_EQ(sg_shared_sender_parse(buf, &back), 0, "name: v4 parses back");
	ASSERT_EQ(memcmp(&back, &k, sizeof(k)), 0, "name: v4 round trip");
	inet_pton(AF_INET6, "2001:db8:1::", k6.addr);
	k6.ifindex = 7;	/* a bridge port's: the host's own, not shared */
	sg_shared_sender_name(&k6, buf, sizeof(buf));
	ASSERT_STREQ(buf, "2001:db8:1::", "name: v6 sender");
	ASSERT_EQ(sg_shared_sender_parse(buf, &back), 0, "name: v6 parses back");
	ASSERT_EQ(back.ifindex, 0, "name: ifindex not shared");
	ASSERT_EQ(memcmp(back.addr, k6.addr, 16), 0, "name: v6 round trip");
	ASSERT_EQ(sg_shared_sender_parse("::ffff:192.0.2.1", &back), -1,
		  "name: a mapped v6 is not a member we write");
	ASSERT_EQ(sg_shared_sender_parse("192.0.2.300", &back), -1, "name: bad v4 refused");
	ASSERT_EQ(sg_shared_sender_parse("sg:p:x", &back), -1, "name: junk refused");

	sg_shared_group_name(&k, 28, 64, buf, sizeof(buf));
	ASSERT_STREQ(buf, "192.0.2.0/28", "group: v4 /28");
	k = v4("192.0.2.27");
	sg_shared_group_name(&k, 28, 64, buf, sizeof(buf));
	ASSERT_STREQ(buf, "192.0.2.16/28", "group: v4 /28 other block");
	sg_shared_group_name(&k, 32, 64, buf, sizeof(buf));
	ASSERT_STREQ(buf, "192.0.2.27/32", "group: v4 /32 is the address");
	inet_pton(AF_INET6, "2001:db8:1:ff00::", k6.addr);
	sg_shared_group_name(&k6, 32, 56, buf, sizeof(buf));
	ASSERT_STREQ(buf, "2001:db8:1:ff00::/56", "group: v6 /56");
	sg_shared_group_name(&k6, 32, 52, buf, sizeof(buf));
	ASSERT_STREQ(buf, "2001:db8:1:f000::/52", "group: v6 /52 cuts inside a byte");
}

static void test_table(void)
{
	struct sg_shared_table t;
	int created, all = 1;
	size_t max = 1024;

	if (!ASSERT_EQ(sg_shared_table_init(&t, max), 0, "table: made"))
		return;
	ASSERT_EQ(t.cap, SG_SHARED_TABLE_MIN, "table: small until senders come");
	/* a flood of random senders: the table stops at max */
	for (unsigned i = 0; i < 100000; i++) {
		struct sg_src_key k = {};

		k.addr[10] = 0xff;
		k.addr[11] = 0xff;
		memcpy(&k.addr[12], &i, 4);
		sg_shared_table_get(&t, &k, &created);
	}
	ASSERT_EQ(t.n, max, "table: bounded by max under a flood");
	ASSERT_TRUE(t.cap <= 2048, "table: its capacity bounded too (three quarters full at most)");
	/* every one of the first max is findable; remove every other one */
	for (unsigned i = 0; i < max; i++) {
		struct sg_src_key k = {};
		struct sg_shared_sender *e;

		k.addr[10] = 0xff;
		k.addr[11] = 0xff;
		memcpy(&k.addr[12], &i, 4);
		e = sg_shared_table_find(&t, &k);
		if (!e) {
			all = 0;
			continue;
		}
		if (i % 2)
			sg_shared_table_remove(&t, e);
	}
	ASSERT_TRUE(all, "table: every tracked sender found");
	ASSERT_EQ(t.n, max / 2, "table: half removed");
	all = 1;
	for (unsigned i = 0; i < max; i++) {
		struct sg_src_key k = {};

		k.addr[10] = 0xff;
		k.addr[11] = 0xff;
		memcpy(&k.addr[12], &i, 4);
		if ((sg_shared_table_find(&t, &k) == NULL) != (int)(i % 2))
			all = 0;
	}
	ASSERT_TRUE(all, "table: the rest still found after deletions (no lost runs)");
	{
		struct sg_src_key k = v4("198.51.100.1");
		struct sg_shared_sender *e = sg_shared_table_get(&t, &k, &created);

		ASSERT_TRUE(e && created, "table: room again after deletions");
	}
	sg_shared_table_free(&t);

	ASSERT_EQ(sg_shared_delta(15, 10), 5, "delta: counted on");
	ASSERT_EQ(sg_shared_delta(3, 10), 3, "delta: an entry made again is all new");
}

static void test_host_id(void)
{
	char id[SG_SHARED_HOST_ID_LEN];

	sg_shared_host_id("hv1", "/sys/fs/bpf/smtpguard", id, sizeof(id));
	ASSERT_STREQ(id, "hv1", "host id: the host name, with the default bpffs root");
	sg_shared_host_id("hv1", "/sys/fs/bpf/sg-b", id, sizeof(id));
	ASSERT_STREQ(id, "hv1:/sys/fs/bpf/sg-b", "host id: two instances on one host differ");
	sg_shared_host_id("", NULL, id, sizeof(id));
	ASSERT_STREQ(id, "localhost", "host id: no name");
	sg_shared_host_id("a-very-long-host-name", "/r", id, 8);
	ASSERT_STREQ(id, "a-very-", "host id: truncated to fit");
}

int main(void)
{
	test_host_id();
	test_addr();
	test_names();
	test_table();
	return test_exit_status();
}
