/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* test_parse.c - unit tests of the prefix, address, rate, duration, number
 * and name parsers shared by smtpguardd and smtpguardctl. */
#include <arpa/inet.h>
#include "parse.h"
#include "test.h"

static void test_prefixes(void)
{
	struct sg_prefix p;
	char err[SG_ERR_LEN], buf[64];

	ASSERT_EQ(sg_parse_prefix("192.0.2.0/24", &p, err, sizeof(err)), 0, "prefix: 192.0.2.0/24 parses");
	ASSERT_EQ(p.family, AF_INET, "prefix: 192.0.2.0/24 is IPv4");
	ASSERT_EQ(p.len, 24, "prefix: 192.0.2.0/24 has length 24");
	sg_format_prefix(&p, buf, sizeof(buf));
	ASSERT_STREQ(buf, "192.0.2.0/24", "prefix: IPv4 formats back");

	ASSERT_EQ(sg_parse_prefix("2001:db8::/32", &p, err, sizeof(err)), 0, "prefix: 2001:db8::/32 parses");
	ASSERT_EQ(p.family, AF_INET6, "prefix: 2001:db8::/32 is IPv6");
	sg_format_prefix(&p, buf, sizeof(buf));
	ASSERT_STREQ(buf, "2001:db8::/32", "prefix: IPv6 formats back");

	ASSERT_EQ(sg_parse_prefix("198.51.100.7", &p, err, sizeof(err)), 0, "prefix: a bare address parses");
	ASSERT_EQ(p.len, 32, "prefix: a bare IPv4 address is a /32");
	ASSERT_EQ(sg_parse_prefix("2001:db8::1", &p, err, sizeof(err)), 0, "prefix: a bare IPv6 address parses");
	ASSERT_EQ(p.len, 128, "prefix: a bare IPv6 address is a /128");
	ASSERT_EQ(sg_parse_prefix("0.0.0.0/0", &p, err, sizeof(err)), 0, "prefix: 0.0.0.0/0 parses");

	ASSERT_EQ(sg_parse_prefix("10.0.0.1/24", &p, err, sizeof(err)), -1, "prefix: host bits set are refused");
	ASSERT_CONTAINS(err, "did you mean 10.0.0.0/24", "prefix: host bits error names the network meant");
	ASSERT_EQ(sg_parse_prefix("10.0.0.300/24", &p, err, sizeof(err)), -1, "prefix: octet 300 is refused");
	ASSERT_CONTAINS(err, "not an IPv4 or IPv6 address", "prefix: bad address error says why");
	ASSERT_EQ(sg_parse_prefix("10.0.0.0/33", &p, err, sizeof(err)), -1, "prefix: /33 is refused");
	ASSERT_CONTAINS(err, "0 to 32", "prefix: bad length error gives the range");
	ASSERT_EQ(sg_parse_prefix("2001:db8::/129", &p, err, sizeof(err)), -1, "prefix: IPv6 /129 is refused");
	ASSERT_EQ(sg_parse_prefix("10.0.0.0/", &p, err, sizeof(err)), -1, "prefix: empty length is refused");
	ASSERT_EQ(sg_parse_prefix("10.0.0.0/2x", &p, err, sizeof(err)), -1, "prefix: junk length is refused");
	ASSERT_EQ(sg_parse_prefix("/24", &p, err, sizeof(err)), -1, "prefix: missing address is refused");
	ASSERT_EQ(sg_parse_prefix("", &p, err, sizeof(err)), -1, "prefix: empty string is refused");
	ASSERT_EQ(sg_parse_prefix("example.com/24", &p, err, sizeof(err)), -1, "prefix: a name is refused");
}

static void test_sources(void)
{
	struct sg_src_key k;
	char err[SG_ERR_LEN], buf[64];

	ASSERT_EQ(sg_parse_source("192.0.2.10", 64, &k, err, sizeof(err)), 0, "source: IPv4 parses");
	ASSERT_EQ(k.addr[10], 0xff, "source: IPv4 is stored IPv4-mapped (byte 10)");
	ASSERT_EQ(k.addr[12], 192, "source: IPv4 address in the last four bytes");
	sg_format_source(&k, 128, buf, sizeof(buf));
	ASSERT_STREQ(buf, "192.0.2.10", "source: IPv4-mapped formats as IPv4");
	ASSERT_EQ(sg_parse_source("2001:db8::10", 128, &k, err, sizeof(err)), 0, "source: IPv6 parses");
	sg_format_source(&k, 128, buf, sizeof(buf));
	ASSERT_STREQ(buf, "2001:db8::10", "source: IPv6 formats back");
	ASSERT_EQ(sg_parse_source("192.0.2.0/24", 0, &k, err, sizeof(err)), -1, "source: a prefix is not an address");
	ASSERT_CONTAINS(err, "192.0.2.0/24", "source: error quotes the input");
	ASSERT_EQ(sg_parse_source("2001:db8:1:2:3:4:5:6", 64, &k, err, sizeof(err)), 0,
		  "source: IPv6 cut to /64 parses");
	sg_format_source(&k, 64, buf, sizeof(buf));
	ASSERT_STREQ(buf, "2001:db8:1:2::/64", "source: IPv6 sender is its /64");
	ASSERT_EQ(sg_parse_source("2001:db8:1:2:3:4:5:6", 56, &k, err, sizeof(err)), 0,
		  "source: IPv6 cut to /56 parses");
	sg_format_source(&k, 56, buf, sizeof(buf));
	ASSERT_STREQ(buf, "2001:db8:1::/56", "source: IPv6 sender is its /56");
	ASSERT_EQ(sg_parse_source("192.0.2.10", 48, &k, err, sizeof(err)), 0,
		  "source: IPv4 is never cut");
	sg_format_source(&k, 48, buf, sizeof(buf));
	ASSERT_STREQ(buf, "192.0.2.10", "source: IPv4 sender is its address");
}

static void test_rates(void)
{
	uint64_t ns;
	char err[SG_ERR_LEN], buf[32];

	ASSERT_EQ(sg_parse_rate("30/min", &ns, err, sizeof(err)), 0, "rate: 30/min parses");
	ASSERT_EQ(ns, 2000000000ULL, "rate: 30/min is one every 2 s");
	ASSERT_EQ(sg_parse_rate("5/s", &ns, err, sizeof(err)), 0, "rate: 5/s parses");
	ASSERT_EQ(ns, 200000000ULL, "rate: 5/s is one every 200 ms");
	ASSERT_EQ(sg_parse_rate("100/h", &ns, err, sizeof(err)), 0, "rate: 100/h parses");
	ASSERT_EQ(ns, 36000000000ULL, "rate: 100/h is one every 36 s");
	ASSERT_EQ(sg_parse_rate("10/hour", &ns, err, sizeof(err)), 0, "rate: long unit names parse");
	ASSERT_EQ(sg_parse_rate("1000000/s", &ns, err, sizeof(err)), 0, "rate: 1,000,000/s is the fastest");
	ASSERT_EQ(sg_parse_rate("2000000/s", &ns, err, sizeof(err)), -1, "rate: faster than 1,000,000/s is refused");

	ASSERT_EQ(sg_parse_rate("0/min", &ns, err, sizeof(err)), -1, "rate: zero is refused");
	ASSERT_CONTAINS(err, "zero", "rate: zero error says zero");
	ASSERT_EQ(sg_parse_rate("30/fortnight", &ns, err, sizeof(err)), -1, "rate: unknown unit is refused");
	ASSERT_CONTAINS(err, "fortnight", "rate: unknown unit error quotes the unit");
	ASSERT_EQ(sg_parse_rate("30", &ns, err, sizeof(err)), -1, "rate: a bare count is refused");
	ASSERT_CONTAINS(err, "COUNT/UNIT", "rate: missing unit error shows the form");
	ASSERT_EQ(sg_parse_rate("-3/s", &ns, err, sizeof(err)), -1, "rate: negative is refused");
	ASSERT_EQ(sg_parse_rate("/s", &ns, err, sizeof(err)), -1, "rate: missing count is refused");

	sg_format_rate(2000000000ULL, buf, sizeof(buf));
	ASSERT_STREQ(buf, "30/min", "rate: 2 s formats as 30/min");
	sg_format_rate(200000000ULL, buf, sizeof(buf));
	ASSERT_STREQ(buf, "5/s", "rate: 200 ms formats as 5/s");
	sg_format_rate(0, buf, sizeof(buf));
	ASSERT_STREQ(buf, "unlimited", "rate: 0 formats as unlimited");
}

static void test_durations(void)
{
	uint64_t ns;
	char err[SG_ERR_LEN];

	ASSERT_EQ(sg_parse_duration("500ms", &ns, err, sizeof(err)), 0, "duration: 500ms parses");
	ASSERT_EQ(ns, 500000000ULL, "duration: 500ms");
	ASSERT_EQ(sg_parse_duration("30s", &ns, err, sizeof(err)), 0, "duration: 30s parses");
	ASSERT_EQ(ns, 30000000000ULL, "duration: 30s");
	ASSERT_EQ(sg_parse_duration("10m", &ns, err, sizeof(err)), 0, "duration: 10m parses");
	ASSERT_EQ(ns, 600000000000ULL, "duration: 10m");
	ASSERT_EQ(sg_parse_duration("2h", &ns, err, sizeof(err)), 0, "duration: 2h parses");
	ASSERT_EQ(ns, 7200000000000ULL, "duration: 2h");
	ASSERT_EQ(sg_parse_duration("1d", &ns, err, sizeof(err)), 0, "duration: 1d parses");
	ASSERT_EQ(sg_parse_duration("45", &ns, err, sizeof(err)), 0, "duration: a bare number is seconds");
	ASSERT_EQ(ns, 45000000000ULL, "duration: 45 is 45 s");
	ASSERT_EQ(sg_parse_duration("0s", &ns, err, sizeof(err)), -1, "duration: zero is refused");
	ASSERT_EQ(sg_parse_duration("10 minutes", &ns, err, sizeof(err)), -1, "duration: unknown unit is refused");
	ASSERT_CONTAINS(err, "not a duration", "duration: error says what it expected");
	ASSERT_EQ(sg_parse_duration("m10", &ns, err, sizeof(err)), -1, "duration: unit first is refused");
	ASSERT_EQ(sg_parse_duration("99999999999999999999d", &ns, err, sizeof(err)), -1, "duration: overflow is refused");
	ASSERT_EQ(sg_parse_duration("", &ns, err, sizeof(err)), -1, "duration: empty is refused");
}

static void test_numbers_and_names(void)
{
	uint64_t v;
	int b;
	char err[SG_ERR_LEN];

	ASSERT_EQ(sg_parse_uint("20", 1, 100, &v, err, sizeof(err)), 0, "uint: 20 in 1..100");
	ASSERT_EQ(v, 20, "uint: value 20");
	ASSERT_EQ(sg_parse_uint("0", 1, 100, &v, err, sizeof(err)), -1, "uint: below min is refused");
	ASSERT_CONTAINS(err, "1 to 100", "uint: range error gives the range");
	ASSERT_EQ(sg_parse_uint("12abc", 1, 100, &v, err, sizeof(err)), -1, "uint: trailing junk is refused");
	ASSERT_EQ(sg_parse_uint("-1", 0, 100, &v, err, sizeof(err)), -1, "uint: negative is refused");
	ASSERT_EQ(sg_parse_uint("99999999999999999999999", 0, 100, &v, err, sizeof(err)), -1, "uint: overflow is refused");
	ASSERT_EQ(sg_parse_bool("yes", &b, err, sizeof(err)), 0, "bool: yes");
	ASSERT_EQ(b, 1, "bool: yes is 1");
	ASSERT_EQ(sg_parse_bool("Off", &b, err, sizeof(err)), 0, "bool: Off");
	ASSERT_EQ(b, 0, "bool: Off is 0");
	ASSERT_EQ(sg_parse_bool("maybe", &b, err, sizeof(err)), -1, "bool: maybe is refused");

	ASSERT_EQ(sg_action_from_name("exempt"), SG_ACTION_EXEMPT, "names: exempt");
	ASSERT_EQ(sg_action_from_name("block"), SG_ACTION_BLOCK, "names: block");
	ASSERT_EQ(sg_action_from_name("allow"), -1, "names: unknown action");
	ASSERT_STREQ(sg_action_name(SG_ACTION_PASSTHROUGH), "passthrough", "names: passthrough round trip");
	ASSERT_EQ(sg_tls_mode_from_name("terminate"), SG_TLS_TERMINATE, "names: tls terminate");
	ASSERT_EQ(sg_source_mode_from_name("relay-ip"), SG_SOURCE_RELAY_IP, "names: relay-ip");
	ASSERT_STREQ(sg_stat_name(SG_STAT_RATE_DROPPED), "rate_dropped", "names: stat rate_dropped");
	for (int i = 0; i < SG_STAT__COUNT; i++)
		ASSERT_TRUE(strcmp(sg_stat_name(i), "unknown") != 0, "names: every stat has a name");
}

int main(void)
{
	test_prefixes();
	test_sources();
	test_rates();
	test_durations();
	test_numbers_and_names();
	return test_exit_status();
}
