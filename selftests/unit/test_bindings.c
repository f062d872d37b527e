/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* test_bindings.c - unit tests of the source_bindings file reader and of
 * src_bound's keys (lib/bindings.c). */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "bindings.h"
#include "test.h"

static char path[64];

static int load(const char *text, struct sg_bindings *b, char *err, size_t errlen)
{
	FILE *f = fopen(path, "w");

	if (!f)
		return -2;
	fputs(text, f);
	fclose(f);
	return sg_bindings_load(path, b, err, errlen);
}

static void test_file(void)
{
	struct sg_bindings b;
	char err[SG_ERR_LEN * 2];

	ASSERT_EQ(sg_bindings_load("", &b, err, sizeof(err)), 0, "file: no path, no bindings");
	ASSERT_EQ((long)b.n, 0, "file: no path holds nothing");
	ASSERT_EQ(load("# Proxmox hook\ntap101i0 192.0.2.11/32, 2001:db8:1::/64\n\n"
		       "tap102i0\t192.0.2.12 # a bare address\ntap101i0 198.51.100.0/28\n",
		       &b, err, sizeof(err)), 0, "file: a valid file loads");
	ASSERT_EQ((long)b.n, 4, "file: four prefixes");
	ASSERT_STREQ(b.v[0].ifname, "tap101i0", "file: the first line's interface");
	ASSERT_EQ(b.v[1].prefix.len, 64, "file: its second prefix, a /64");
	ASSERT_EQ(b.v[2].prefix.len, 32, "file: a bare IPv4 address is a /32");
	ASSERT_EQ(sg_bindings_names(&b, "tap102i0"), 1, "file: names tap102i0");
	ASSERT_EQ(sg_bindings_names(&b, "tap103i0"), 0, "file: does not name tap103i0");
	sg_bindings_free(&b);

	ASSERT_EQ(load("tap1 192.0.2.11\ntap2 192.0.2.11/32\n", &b, err, sizeof(err)), -1,
		  "file: one prefix on two interfaces is refused");
	ASSERT_CONTAINS(err, ":2: the prefix is bound to tap1 on line 1", "file: the error names both lines");
	ASSERT_EQ((long)b.n, 0, "file: a refused file holds nothing");
	ASSERT_EQ(load("tap1 192.0.2.11\ntap1 192.0.2.11\n", &b, err, sizeof(err)), 0,
		  "file: one prefix said twice for one interface is fine");
	sg_bindings_free(&b);
	ASSERT_EQ(load("tap1\n", &b, err, sizeof(err)), -1, "file: an interface without a prefix");
	ASSERT_CONTAINS(err, ":1: tap1 has no prefix", "file: ... says so");
	ASSERT_EQ(load("tap1 192.0.2.300\n", &b, err, sizeof(err)), -1, "file: a bad address");
	ASSERT_CONTAINS(err, ":1: ", "file: ... names the line");
	ASSERT_EQ(load("tap1 10.0.0.1/24\n", &b, err, sizeof(err)), -1, "file: host bits set");
	ASSERT_EQ(load("an-interface-name-too-long 10.0.0.1\n", &b, err, sizeof(err)), -1,
		  "file: a name longer than an interface's");
	ASSERT_EQ(sg_bindings_load("/nonexistent/bindings", &b, err, sizeof(err)), -1,
		  "file: a missing file is an error");
	ASSERT_CONTAINS(err, "cannot open source_bindings file /nonexistent/bindings", "file: ... naming it");
}

static void test_keys(void)
{
	struct sg_prefix p;
	struct sg_lpm_v6_key net, addr;
	char err[SG_ERR_LEN];

	sg_parse_prefix("192.0.2.0/24", &p, err, sizeof(err));
	sg_bound_key(&p, &net);
	ASSERT_EQ(net.prefixlen, 120, "keys: an IPv4 /24 is a /120 of ::ffff:0:0/96");
	ASSERT_EQ(net.addr[10] == 0xff && net.addr[11] == 0xff && net.addr[12] == 192, 1,
		  "keys: ... IPv4-mapped");
	sg_parse_prefix("192.0.2.77", &p, err, sizeof(err));
	sg_bound_key(&p, &addr);
	ASSERT_EQ(sg_bound_key_covers(&net, &addr), 1, "keys: 192.0.2.0/24 covers 192.0.2.77");
	sg_parse_prefix("192.0.3.77", &p, err, sizeof(err));
	sg_bound_key(&p, &addr);
	ASSERT_EQ(sg_bound_key_covers(&net, &addr), 0, "keys: ... not 192.0.3.77");
	sg_parse_prefix("2001:db8:1::/60", &p, err, sizeof(err));
	sg_bound_key(&p, &net);
	sg_parse_prefix("2001:db8:1:f::9", &p, err, sizeof(err));
	sg_bound_key(&p, &addr);
	ASSERT_EQ(sg_bound_key_covers(&net, &addr), 1, "keys: a /60 covers an address in its last /64");
	sg_parse_prefix("2001:db8:1:10::9", &p, err, sizeof(err));
	sg_bound_key(&p, &addr);
	ASSERT_EQ(sg_bound_key_covers(&net, &addr), 0, "keys: ... not the next /60's");
}

int main(void)
{
	snprintf(path, sizeof(path), "/tmp/sg-test-bindings-%d", (int)getpid());
	test_file();
	test_keys();
	unlink(path);
	return test_exit_status();
}
