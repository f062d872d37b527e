/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* test_config.c - unit tests of smtpguardd's config file and --set parsing:
 * defaults, comments and continuation lines, every error naming the file,
 * the line, the key and what is accepted. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include "config.h"
#include "parse.h"
#include "test.h"

static char *write_file(const char *text)
{
	static char path[64];
	FILE *f;
	int fd;

	snprintf(path, sizeof(path), "/tmp/sg-test-config-XXXXXX");
	fd = mkstemp(path);
	if (fd < 0)
		return NULL;
	f = fdopen(fd, "w");
	fputs(text, f);
	fclose(f);
	return path;
}

static int load_text(struct sg_config *cfg, const char *text, char *err, size_t errlen)
{
	char *path = write_file(text);
	int ret;

	sg_config_defaults(cfg);
	ret = sg_config_load(cfg, path, err, errlen);
	unlink(path);
	return ret;
}

static void test_defaults(void)
{
	struct sg_config cfg;
	struct sg_settings s;

	sg_config_defaults(&cfg);
	ASSERT_STREQ(cfg.bpffs_root, "/sys/fs/bpf/smtpguard", "defaults: bpffs_root");
	ASSERT_EQ(cfg.n_interfaces, 2, "defaults: two interface patterns");
	ASSERT_STREQ(cfg.interfaces[0], "tap*", "defaults: tap*");
	ASSERT_EQ(cfg.attach_mode, SG_ATTACH_TC, "defaults: attach = tc");
	ASSERT_EQ(cfg.smtp_ports[0], 25, "defaults: port 25");
	ASSERT_EQ(cfg.default_action, SG_ACTION_SCAN, "defaults: default_action = scan");
	ASSERT_EQ(cfg.refuse_mode, SG_REFUSE_DROP, "defaults: refuse = drop");
	ASSERT_EQ(cfg.malformed_mode, SG_MALFORMED_DROP, "defaults: malformed = drop");
	ASSERT_EQ(cfg.detach_on_exit, 0, "defaults: detach_on_exit = no");
	ASSERT_EQ(cfg.ipv6_source_prefix, 64, "defaults: IPv6 senders counted per /64");
	sg_config_to_settings(&cfg, &s);
	ASSERT_EQ(s.smtp_ports[0], 25, "settings: port 25 carried over");
	ASSERT_EQ(s.smtp_ports[1], 0, "settings: unused port slots are 0");
}

static void test_file(void)
{
	struct sg_config cfg;
	char err[SG_ERR_LEN * 2];

	ASSERT_EQ(load_text(&cfg,
		"# a comment\n"
		"\n"
		"bpffs_root = /sys/fs/bpf/sg-unit\n"
		"interfaces = tap* vnet*\n"
		"    veth-vm*\n"
		"attach=xdp\n"
		"smtp_ports = 25, 587 2525\n"
		"default_action = passthrough\n"
		"default_conn_rate = 30/min\n"
		"default_conn_burst = 5\n"
		"refuse = rst\n"
		"  # an indented comment line is still a comment\n"
		"detach_on_exit = yes\n"
		"state_idle_timeout = 10m\n", err, sizeof(err)), 0, "file: a full config loads");
	ASSERT_STREQ(cfg.bpffs_root, "/sys/fs/bpf/sg-unit", "file: bpffs_root");
	ASSERT_EQ(cfg.n_interfaces, 3, "file: continuation line adds a pattern");
	ASSERT_STREQ(cfg.interfaces[2], "veth-vm*", "file: continued pattern");
	ASSERT_EQ(cfg.attach_mode, SG_ATTACH_XDP, "file: attach=xdp without spaces");
	ASSERT_EQ(cfg.n_smtp_ports, 3, "file: three ports");
	ASSERT_EQ(cfg.smtp_ports[2], 2525, "file: third port");
	ASSERT_EQ(cfg.default_action, SG_ACTION_PASSTHROUGH, "file: default_action");
	ASSERT_EQ(cfg.default_conn_interval_ns, 2000000000ULL, "file: 30/min");
	ASSERT_EQ(cfg.default_conn_burst, 5, "file: burst");
	ASSERT_EQ(cfg.refuse_mode, SG_REFUSE_RST, "file: refuse = rst");
	ASSERT_EQ(cfg.detach_on_exit, 1, "file: detach_on_exit = yes");
	ASSERT_EQ(cfg.state_idle_timeout_ns, 600000000000ULL, "file: 10m idle timeout");
}

static void test_errors(void)
{
	struct sg_config cfg;
	char err[SG_ERR_LEN * 2];

	ASSERT_EQ(load_text(&cfg, "attach = tc\nbogus_key = 1\n", err, sizeof(err)), -1,
		  "errors: unknown key is refused");
	ASSERT_CONTAINS(err, "line 2", "errors: unknown key names the line");
	ASSERT_CONTAINS(err, "bogus_key", "errors: unknown key names the key");
	ASSERT_CONTAINS(err, "/tmp/sg-test-config-", "errors: unknown key names the file");

	ASSERT_EQ(load_text(&cfg, "\n\nattach = foo\n", err, sizeof(err)), -1, "errors: bad attach value");
	ASSERT_CONTAINS(err, "line 3", "errors: bad value names the line");
	ASSERT_CONTAINS(err, "'attach'", "errors: bad value names the key");
	ASSERT_CONTAINS(err, "tc|xdp", "errors: bad value lists the accepted values");

	ASSERT_EQ(load_text(&cfg, "default_action = allow\n", err, sizeof(err)), -1, "errors: bad action");
	ASSERT_CONTAINS(err, "scan|exempt|passthrough|block", "errors: bad action lists the actions");
	ASSERT_EQ(load_text(&cfg, "smtp_ports = 25 70000\n", err, sizeof(err)), -1, "errors: port out of range");
	ASSERT_CONTAINS(err, "1 to 65535", "errors: port error gives the range");
	ASSERT_EQ(load_text(&cfg, "smtp_ports = 1 2 3 4 5 6 7 8 9\n", err, sizeof(err)), -1, "errors: too many ports");
	ASSERT_EQ(load_text(&cfg, "default_conn_rate = 0/s\n", err, sizeof(err)), -1, "errors: zero rate");
	ASSERT_EQ(load_text(&cfg, "default_conn_burst = 0\n", err, sizeof(err)), -1, "errors: zero burst");
	ASSERT_EQ(load_text(&cfg, "bpffs_root = relative/path\n", err, sizeof(err)), -1, "errors: relative bpffs_root");
	ASSERT_CONTAINS(err, "absolute path", "errors: bpffs_root error says absolute");
	ASSERT_EQ(load_text(&cfg, "interfaces =\n", err, sizeof(err)), -1, "errors: empty value");
	ASSERT_CONTAINS(err, "no value", "errors: empty value says so");
	ASSERT_EQ(load_text(&cfg, "interfaces = averyveryverylongpattern*\n", err, sizeof(err)), -1,
		  "errors: pattern longer than an interface name");
	ASSERT_EQ(load_text(&cfg, "just some words\n", err, sizeof(err)), -1, "errors: a line without =");
	ASSERT_CONTAINS(err, "key = value", "errors: line without = shows the form");
	ASSERT_EQ(load_text(&cfg, "   indented = 1\n", err, sizeof(err)), -1, "errors: continuation with nothing before");
	ASSERT_EQ(load_text(&cfg, "detach_on_exit = perhaps\n", err, sizeof(err)), -1, "errors: bad boolean");
	ASSERT_EQ(load_text(&cfg, "ipv6_source_prefix = 60\n", err, sizeof(err)), -1,
		  "errors: IPv6 sender prefix not a multiple of 8");
	ASSERT_CONTAINS(err, "multiple of 8", "errors: IPv6 sender prefix error says why");
	ASSERT_EQ(load_text(&cfg, "ipv6_source_prefix = 32\n", err, sizeof(err)), -1,
		  "errors: IPv6 sender prefix below 48");

	sg_config_defaults(&cfg);
	ASSERT_EQ(sg_config_load(&cfg, "/nonexistent/smtpguard.conf", err, sizeof(err)), -1,
		  "errors: missing file");
	ASSERT_CONTAINS(err, "/nonexistent/smtpguard.conf", "errors: missing file is named");

	{
		char *big = malloc(10000);

		memset(big, 'a', 9998);
		big[9998] = '\n';
		big[9999] = '\0';
		ASSERT_EQ(load_text(&cfg, big, err, sizeof(err)), -1, "errors: over-long line");
		ASSERT_CONTAINS(err, "longer than", "errors: over-long line says so");
		free(big);
	}
}

static void test_proxy_keys(void)
{
	struct sg_config cfg;
	struct sg_settings s;
	char err[SG_ERR_LEN * 2];

	ASSERT_EQ(load_text(&cfg, "proxy = yes\nproxy_workers = 4\nuplink = eth0 bond*\n"
			    "steer_mark = 0x10\nroute_table = 100\nfail_mode = closed\n"
			    "connect_timeout = 5s\n", err, sizeof(err)), 0, "proxy: keys load");
	ASSERT_EQ(cfg.proxy, 1, "proxy: on");
	ASSERT_EQ(cfg.proxy_workers, 4, "proxy: 4 workers");
	ASSERT_EQ(cfg.n_uplinks, 2, "proxy: two uplink patterns");
	ASSERT_EQ(cfg.steer_mark, 0x10, "proxy: hex mark");
	ASSERT_EQ(cfg.route_table, 100, "proxy: table");
	ASSERT_EQ(cfg.fail_mode, SG_FAIL_CLOSED, "proxy: fail closed");
	sg_config_to_settings(&cfg, &s);
	ASSERT_EQ(s.steer_mark, 0x10, "proxy: settings carry the mark");
	ASSERT_EQ(s.fail_mode, SG_FAIL_CLOSED, "proxy: settings carry the fail mode");
	ASSERT_EQ(load_text(&cfg, "proxy = no\n", err, sizeof(err)), 0, "proxy: off loads");
	sg_config_to_settings(&cfg, &s);
	ASSERT_EQ(s.steer_mark, 0, "proxy: off means no steering mark");
	ASSERT_EQ(load_text(&cfg, "route_table = 254\n", err, sizeof(err)), -1,
		  "proxy: the main table is refused");
	ASSERT_CONTAINS(err, "kernel's own", "proxy: table error says why");
	ASSERT_EQ(load_text(&cfg, "steer_mark = 0\n", err, sizeof(err)), -1, "proxy: mark 0 refused");
	ASSERT_EQ(load_text(&cfg, "fail_mode = maybe\n", err, sizeof(err)), -1, "proxy: bad fail mode");
	ASSERT_CONTAINS(err, "open|closed", "proxy: fail mode error lists the modes");
	ASSERT_EQ(load_text(&cfg, "proxy_workers = 65\n", err, sizeof(err)), -1,
		  "proxy: more workers than the SOCKMAP holds");
	ASSERT_EQ(load_text(&cfg, "attach = uplink\n", err, sizeof(err)), -1,
		  "proxy: uplink is not an attach mode for VM interfaces");
}

static void test_overrides(void)
{
	struct sg_config cfg;
	char err[SG_ERR_LEN * 2];

	sg_config_defaults(&cfg);
	ASSERT_EQ(sg_config_set(&cfg, "attach=xdp", "--set", 0, err, sizeof(err)), 0, "--set: attach=xdp");
	ASSERT_EQ(cfg.attach_mode, SG_ATTACH_XDP, "--set: attach applied");
	ASSERT_EQ(sg_config_set(&cfg, "refuse = rst", "--set", 0, err, sizeof(err)), 0, "--set: spaces allowed");
	ASSERT_EQ(sg_config_set(&cfg, "nope=1", "--set", 0, err, sizeof(err)), -1, "--set: unknown key");
	ASSERT_CONTAINS(err, "--set", "--set: error names the origin");
	ASSERT_CONTAINS(err, "nope", "--set: error names the key");
}

static void test_feedback_keys(void)
{
	struct sg_config cfg;
	struct sg_settings s;
	char err[SG_ERR_LEN * 2];

	ASSERT_EQ(load_text(&cfg, "default_msg_rate = 100/h\ndefault_rcpt_rate = none\n"
			    "steer_mode = suspect\nsteer_sample = 50\nsteer_soft_percent = 75\n"
			    "suspect_duration = 30m\nrelay_ip4 = 203.0.113.5\n"
			    "relay_ip6 = 2001:db8::5\nescalation_rejects = 3\n"
			    "escalation_window = 5m\nescalation_penalty = 2h\n", err, sizeof(err)), 0,
		  "feedback: keys load");
	ASSERT_EQ(cfg.default_msg_interval_ns, 36000000000ULL, "feedback: 100/h is one per 36 s");
	ASSERT_EQ(cfg.default_msg_burst, 100, "feedback: 100/h lets 100 at once");
	ASSERT_EQ(cfg.default_rcpt_interval_ns, 0, "feedback: none is no limit");
	ASSERT_EQ(cfg.steer_mode, SG_STEER_SUSPECT, "feedback: steer mode suspect");
	ASSERT_STREQ(cfg.relay_ip4, "203.0.113.5", "feedback: relay_ip4");
	ASSERT_STREQ(cfg.relay_ip6, "2001:db8::5", "feedback: relay_ip6");
	ASSERT_EQ(cfg.escalation_rejects, 3, "feedback: escalation count");
	ASSERT_EQ(cfg.escalation_penalty_ns, 7200000000000ULL, "feedback: escalation penalty");
	sg_config_to_settings(&cfg, &s);
	ASSERT_EQ(s.steer_mode, SG_STEER_SUSPECT, "feedback: settings carry the steer mode");
	ASSERT_EQ(s.steer_sample, 50, "feedback: settings carry the sample");
	ASSERT_EQ(s.steer_soft_percent, 75, "feedback: settings carry the soft threshold");

	ASSERT_EQ(load_text(&cfg, "steer_mode = some\n", err, sizeof(err)), -1,
		  "feedback: bad steer mode");
	ASSERT_CONTAINS(err, "all|suspect", "feedback: steer mode error lists the modes");
	ASSERT_EQ(load_text(&cfg, "steer_soft_percent = 101\n", err, sizeof(err)), -1,
		  "feedback: soft threshold over 100%");
	ASSERT_EQ(load_text(&cfg, "relay_ip4 = 2001:db8::5\n", err, sizeof(err)), -1,
		  "feedback: IPv6 address as relay_ip4");
	ASSERT_CONTAINS(err, "not an IPv4 address", "feedback: relay_ip4 error says why");
	ASSERT_EQ(load_text(&cfg, "default_msg_rate = lots\n", err, sizeof(err)), -1,
		  "feedback: bad message rate");
	ASSERT_CONTAINS(err, "COUNT/UNIT", "feedback: message rate error shows the form");
}

static void test_tls_keys(void)
{
	struct sg_config cfg;
	struct sg_settings s;
	char err[SG_ERR_LEN * 2];

	ASSERT_EQ(load_text(&cfg, "", err, sizeof(err)), 0, "tls: defaults load");
	ASSERT_EQ(cfg.tls_mover, SG_MOVER_SPLICE, "tls: splice is the default mover");
	ASSERT_EQ(cfg.tls_min_version, 12, "tls: TLSv1.2 at least by default");
	ASSERT_EQ(cfg.tls_mx_without_starttls, SG_TLS_MIRROR, "tls: mirror by default");
	ASSERT_EQ(sg_config_check(&cfg, "unit", err, sizeof(err)), 0,
		  "tls: no certificate is fine while nothing terminates");
	ASSERT_EQ(load_text(&cfg, "smtp_ports = 25 465 587\ntls_cert_file = /etc/c.pem\n"
			    "tls_key_file = /etc/k.pem\ntls_mx_verify = verify\n"
			    "tls_ca_file = /etc/ca.pem\ntls_mx_without_starttls = require\n"
			    "tls_min_version = TLSv1.3\ntls_mover = sockmap\n"
			    "tls_handshake_timeout = 5s\ndefault_tls_mode = terminate\n",
			    err, sizeof(err)), 0, "tls: keys load");
	ASSERT_EQ(cfg.tls_mx_verify, SG_TLS_VERIFY_PEER, "tls: verify");
	ASSERT_EQ(cfg.tls_mx_without_starttls, SG_TLS_REQUIRE, "tls: require");
	ASSERT_EQ(cfg.tls_min_version, 13, "tls: TLSv1.3");
	ASSERT_EQ(cfg.tls_mover, SG_MOVER_SOCKMAP, "tls: sockmap mover");
	ASSERT_EQ(cfg.tls_handshake_timeout_ns, 5000000000ULL, "tls: handshake timeout");
	ASSERT_EQ(sg_config_check(&cfg, "unit", err, sizeof(err)), 0, "tls: terminate with a certificate");
	sg_config_to_settings(&cfg, &s);
	ASSERT_EQ(s.implicit_tls_ports, 1u << 1, "tls: 465, the second SMTP port, is implicit TLS");
	ASSERT_EQ(load_text(&cfg, "smtp_ports = 25\n", err, sizeof(err)), 0, "tls: port 25 only");
	sg_config_to_settings(&cfg, &s);
	ASSERT_EQ(s.implicit_tls_ports, 0, "tls: 465 not an SMTP port: no implicit TLS bit");

	ASSERT_EQ(load_text(&cfg, "default_tls_mode = terminate\n", err, sizeof(err)), 0,
		  "tls: terminate by default loads");
	ASSERT_EQ(sg_config_check(&cfg, "smtpguard.conf", err, sizeof(err)), -1,
		  "tls: terminate by default without a certificate");
	ASSERT_CONTAINS(err, "tls_cert_file", "tls: the error names the missing key");
	ASSERT_EQ(load_text(&cfg, "tls_cert_file = /etc/c.pem\n", err, sizeof(err)), 0,
		  "tls: a certificate alone loads");
	ASSERT_EQ(sg_config_check(&cfg, "smtpguard.conf", err, sizeof(err)), -1,
		  "tls: a certificate without its key");
	ASSERT_CONTAINS(err, "tls_key_file", "tls: the error names the key file");
	ASSERT_EQ(load_text(&cfg, "tls_mover = pigeon\n", err, sizeof(err)), -1, "tls: bad mover");
	ASSERT_CONTAINS(err, "copy|splice|sockmap", "tls: mover error lists the movers");
	ASSERT_EQ(load_text(&cfg, "tls_min_version = SSLv3\n", err, sizeof(err)), -1,
		  "tls: SSLv3 refused");
	ASSERT_CONTAINS(err, "TLSv1.2", "tls: version error lists the versions");
	ASSERT_EQ(load_text(&cfg, "tls_cert_file = cert.pem\n", err, sizeof(err)), -1,
		  "tls: relative certificate path");
	ASSERT_CONTAINS(err, "absolute path", "tls: path error says why");
	ASSERT_EQ(load_text(&cfg, "tls_mx_verify = strict\n", err, sizeof(err)), -1,
		  "tls: bad verify mode");
	ASSERT_CONTAINS(err, "none|verify", "tls: verify error lists the modes");
	ASSERT_EQ(load_text(&cfg, "implicit_tls_ports = none\n", err, sizeof(err)), 0,
		  "tls: no implicit TLS port");
	ASSERT_EQ(cfg.n_implicit_tls_ports, 0, "tls: none empties the list");
}

int main(void)
{
	test_defaults();
	test_file();
	test_errors();
	test_overrides();
	test_proxy_keys();
	test_feedback_keys();
	test_tls_keys();
	return test_exit_status();
}
