/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* test_config.c - unit tests of smtpguardd's config file and --set parsing:
 * defaults, comments and continuation lines, every error naming the file,
 * the line, the key and what is accepted; the key table (each default
 * parses, each key writes its own field only, a reload's comparison and
 * copy); and etc/smtpguard.conf against the table: every key, its default
 * and the keys a reload leaves for the next start. The .conf is $SG_CONF,
 * else etc/smtpguard.conf under the working directory or above the test's
 * binary. */
#include <ctype.h>
#include <limits.h>
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
	ASSERT_EQ(cfg.n_interfaces, 3, "defaults: three interface patterns");
	ASSERT_STREQ(cfg.interfaces[0], "tap*", "defaults: tap*");
	ASSERT_STREQ(cfg.interfaces[2], "macvtap*", "defaults: macvtap* (at TC egress)");
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
	ASSERT_EQ(s.source_check, SG_SOURCE_CHECK_AUTO, "settings: source_check = auto by default");
	ASSERT_EQ(s.source_learn, 8, "settings: source_learn = 8 by default");
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
	ASSERT_EQ(load_text(&cfg, "source_check = bound\nsource_learn = 0\n", err, sizeof(err)),
		  0, "source_check = bound, source_learn = 0 reads");
	ASSERT_EQ(sg_config_check(&cfg, "unit", err, sizeof(err)), -1,
		  "source_check = bound with nothing bound nor learned is refused");
	ASSERT_CONTAINS(err, "would refuse every SMTP source", "... saying why");
	ASSERT_EQ(load_text(&cfg, "source_check = bogus\n", err, sizeof(err)), -1,
		  "source_check = bogus is refused");
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
	ASSERT_EQ(sg_config_set(&cfg, "scan_patterns = /etc/smtpguard/patterns", "t", 7, err,
				sizeof(err)), -1, "retired: scan_patterns is refused");
	ASSERT_STREQ(err, "t, line 7: scan_patterns is gone: write the rules as content rules "
		     "(content_rules = FILE; docs/content-rules.md): 'body REGEX' becomes "
		     "'NAME body /REGEX/i', 'header REGEX' becomes 'NAME header /REGEX/i'",
		     "retired: scan_patterns says what replaces it");
	ASSERT_EQ(sg_config_set(&cfg, "escalation_penalty = 1h", "--set", 0, err, sizeof(err)), -1,
		  "retired: escalation_penalty is refused");
	ASSERT_CONTAINS(err, "--set: escalation_penalty is gone", "retired: naming the key");
	ASSERT_CONTAINS(err, "ladder_penalties = 1h 6h 24h", "retired: and its replacement");
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
			    "escalation_window = 5m\nladder_penalties = 2h 4h\n", err, sizeof(err)), 0,
		  "feedback: keys load");
	ASSERT_EQ(cfg.default_msg_interval_ns, 36000000000ULL, "feedback: 100/h is one per 36 s");
	ASSERT_EQ(cfg.default_msg_burst, 100, "feedback: 100/h lets 100 at once");
	ASSERT_EQ(cfg.default_rcpt_interval_ns, 0, "feedback: none is no limit");
	ASSERT_EQ(cfg.steer_mode, SG_STEER_SUSPECT, "feedback: steer mode suspect");
	ASSERT_STREQ(cfg.relay_ip4, "203.0.113.5", "feedback: relay_ip4");
	ASSERT_STREQ(cfg.relay_ip6, "2001:db8::5", "feedback: relay_ip6");
	ASSERT_EQ(cfg.escalation_rejects, 3, "feedback: escalation count");
	ASSERT_EQ(cfg.ladder_penalties.n, 2, "feedback: two ladder penalties");
	ASSERT_EQ(cfg.ladder_penalties.ns[0], 7200000000000ULL, "feedback: the first penalty");
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

	/* the MX's names and the VMs' ticket keys */
	ASSERT_EQ(load_text(&cfg, "", err, sizeof(err)), 0, "tls names: defaults load");
	ASSERT_STREQ(cfg.tls_mx_names, "", "tls names: no names file by default");
	ASSERT_EQ(cfg.tls_ticket_key_rotation_ns, 12ULL * 3600 * 1000000000ULL,
		  "tls tickets: a new key every 12h by default");
	ASSERT_EQ(load_text(&cfg, "tls_mx_names = /etc/smtpguard/mx-names\n"
			    "tls_ticket_key_rotation = 90m\n", err, sizeof(err)), 0,
		  "tls names: both keys load");
	ASSERT_STREQ(cfg.tls_mx_names, "/etc/smtpguard/mx-names", "tls names: the file kept");
	ASSERT_EQ(cfg.tls_ticket_key_rotation_ns, 90ULL * 60 * 1000000000ULL,
		  "tls tickets: 90m");
	ASSERT_EQ(load_text(&cfg, "tls_mx_names = mx-names\n", err, sizeof(err)), -1,
		  "tls names: a relative path refused");
	ASSERT_CONTAINS(err, "line 1: key 'tls_mx_names': 'mx-names' is not an absolute path",
			"tls names: the error names the line, the key and why");
	ASSERT_EQ(load_text(&cfg, "tls_ticket_key_rotation = 0\n", err, sizeof(err)), -1,
		  "tls tickets: no rotation period of 0");
	ASSERT_CONTAINS(err, "key 'tls_ticket_key_rotation'", "tls tickets: the error names the key");
	ASSERT_EQ(load_text(&cfg, "tls_ticket_key_rotation = 500ms\n", err, sizeof(err)), -1,
		  "tls tickets: under a second refused");
	ASSERT_CONTAINS(err, "'500ms' is not from 1s to 7d", "tls tickets: the error gives the range");
	ASSERT_EQ(load_text(&cfg, "tls_ticket_key_rotation = 8d\n", err, sizeof(err)), -1,
		  "tls tickets: over a week refused");
	ASSERT_CONTAINS(err, "'8d' is not from 1s to 7d", "tls tickets: over a week, why");
	ASSERT_EQ(load_text(&cfg, "tls_ticket_key_rotation = twelve hours\n", err, sizeof(err)),
		  -1, "tls tickets: not a duration");
	ASSERT_EQ(load_text(&cfg, "tls_ticket_key_rotation = 7d\n", err, sizeof(err)), 0,
		  "tls tickets: a week is the longest");
	ASSERT_EQ(load_text(&cfg, "tls_ticket_key_rotation = 1s\n", err, sizeof(err)), 0,
		  "tls tickets: a second is the shortest");
}

static void test_milter_keys(void)
{
	struct sg_config cfg;
	char err[SG_ERR_LEN];

	sg_config_defaults(&cfg);
	ASSERT_EQ(cfg.milters.n, 0, "milters: none by default");
	ASSERT_EQ(cfg.milter_default_action, SG_MILTER_TEMPFAIL, "milters: tempfail by default");
	ASSERT_EQ(sg_config_set(&cfg, "milters = inet:127.0.0.1:11332, inet:[::1]:11333 "
				"unix:/run/clamav/clamav-milter.ctl", "t", 1, err, sizeof(err)), 0,
		  "milters: three, apart by blanks and commas");
	ASSERT_EQ(cfg.milters.n, 3, "milters: three kept");
	ASSERT_STREQ(cfg.milters.addr[1], "inet:[::1]:11333", "milters: in order");
	ASSERT_EQ(sg_config_set(&cfg, "milters = inet:1.2.3.4:1 inet:1.2.3.4:2 inet:1.2.3.4:3 "
				"inet:1.2.3.4:4", "t", 2, err, sizeof(err)), -1,
		  "milters: a fourth refused");
	ASSERT_CONTAINS(err, "more than 3 milters", "milters: says the limit");
	ASSERT_EQ(sg_config_set(&cfg, "milters = inet:localhost:11332", "t", 3, err, sizeof(err)),
		  -1, "milters: a host name refused");
	ASSERT_CONTAINS(err, "not a numeric IPv4 or IPv6 address", "milters: says why");
	ASSERT_EQ(sg_config_set(&cfg, "milters = tcp:127.0.0.1:11332", "t", 4, err, sizeof(err)),
		  -1, "milters: an unknown kind refused");
	ASSERT_CONTAINS(err, "inet:127.0.0.1:11332, inet:[::1]:11332 or unix:/run/milter.sock",
			"milters: shows the forms");
	ASSERT_EQ(sg_config_set(&cfg, "milters = inet:127.0.0.1:99999", "t", 5, err, sizeof(err)),
		  -1, "milters: a port past 65535 refused");
	ASSERT_EQ(sg_config_set(&cfg, "milters = unix:relative.sock", "t", 6, err, sizeof(err)),
		  -1, "milters: a relative socket path refused");
	ASSERT_EQ(sg_config_set(&cfg, "milter_default_action = discard", "t", 7, err, sizeof(err)),
		  -1, "milter_default_action: only tempfail|accept|reject");
}

static void test_metrics_keys(void)
{
	struct sg_config cfg;
	char err[SG_ERR_LEN];

	sg_config_defaults(&cfg);
	ASSERT_STREQ(cfg.metrics_listen, "", "metrics_listen: off by default");
	ASSERT_EQ(sg_config_check(&cfg, "t", err, sizeof(err)), 0, "metrics: off passes the check");
	ASSERT_EQ(sg_config_set(&cfg, "metrics_listen = 127.0.0.1:9425", "t", 1, err, sizeof(err)),
		  0, "metrics_listen: an IPv4 address and port");
	ASSERT_EQ(sg_config_check(&cfg, "t", err, sizeof(err)), 0, "metrics: loopback passes");
	ASSERT_EQ(sg_config_set(&cfg, "metrics_listen = [::1]:9425", "t", 2, err, sizeof(err)), 0,
		  "metrics_listen: an IPv6 address and port");
	ASSERT_EQ(sg_config_check(&cfg, "t", err, sizeof(err)), 0, "metrics: ::1 passes");
	ASSERT_EQ(sg_config_set(&cfg, "metrics_listen = localhost:9425", "t", 3, err, sizeof(err)),
		  -1, "metrics_listen: a host name refused");
	ASSERT_CONTAINS(err, "is not ADDRESS:PORT", "metrics_listen: says the form");
	ASSERT_EQ(sg_config_set(&cfg, "metrics_listen = 127.0.0.1", "t", 4, err, sizeof(err)), -1,
		  "metrics_listen: a port is needed");
	ASSERT_EQ(sg_config_set(&cfg, "metrics_listen = 127.0.0.1:70000", "t", 5, err, sizeof(err)),
		  -1, "metrics_listen: a port past 65535 refused");
	ASSERT_EQ(sg_config_set(&cfg, "metrics_listen = 192.0.2.1:9425", "t", 6, err, sizeof(err)),
		  0, "metrics_listen: a public address parses");
	ASSERT_EQ(sg_config_check(&cfg, "t", err, sizeof(err)), -1,
		  "metrics: a public address refused without metrics_remote");
	ASSERT_CONTAINS(err, "metrics_remote = yes", "metrics: says how to allow it");
	ASSERT_EQ(sg_config_set(&cfg, "metrics_remote = yes", "t", 7, err, sizeof(err)), 0,
		  "metrics_remote: yes");
	ASSERT_EQ(sg_config_check(&cfg, "t", err, sizeof(err)), 0,
		  "metrics: a public address with metrics_remote = yes passes");
	ASSERT_EQ(sg_listen_is_loopback("127.3.4.5:1"), 1, "loopback: 127/8");
	ASSERT_EQ(sg_listen_is_loopback("[::1]:1"), 1, "loopback: ::1");
	ASSERT_EQ(sg_listen_is_loopback("[::2]:1"), 0, "loopback: ::2 is not");
	ASSERT_EQ(sg_listen_is_loopback("0.0.0.0:1"), 0, "loopback: the wildcard is not");
}

/* the shared store: none by default; a bad address named with its line
 * and how to write it; shared limits need a store */
static void test_redis_keys(void)
{
	struct sg_config cfg;
	char err[SG_ERR_LEN * 2];

	sg_config_defaults(&cfg);
	ASSERT_STREQ(cfg.redis, "", "redis: none by default");
	ASSERT_EQ(cfg.redis_sync_interval_ns, 1000000000ULL, "redis: a round a second");
	ASSERT_EQ(cfg.shared_conn_interval_ns, 0, "shared_conn_rate: none by default");
	ASSERT_EQ(sg_config_set(&cfg, "redis = unix:/run/redis/redis.sock", "t", 1, err,
				sizeof(err)), 0, "redis: a unix socket");
	ASSERT_STREQ(cfg.redis, "unix:/run/redis/redis.sock", "redis: kept as written");
	ASSERT_EQ(sg_config_set(&cfg, "redis = none", "t", 2, err, sizeof(err)), 0, "redis: none");
	ASSERT_STREQ(cfg.redis, "", "redis: none is empty");
	ASSERT_EQ(sg_config_set(&cfg, "redis = tcp:10.0.0.5", "/etc/smtpguard.conf", 42, err,
				sizeof(err)), -1, "redis: no port refused");
	ASSERT_CONTAINS(err, "/etc/smtpguard.conf", "redis: the error names the file");
	ASSERT_CONTAINS(err, "42", "redis: the error names the line");
	ASSERT_CONTAINS(err, "redis", "redis: the error names the key");
	ASSERT_CONTAINS(err, "tcp:HOST:PORT", "redis: the error says what to write");
	ASSERT_EQ(sg_config_set(&cfg, "redis = 10.0.0.5:6379", "t", 3, err, sizeof(err)), -1,
		  "redis: no transport refused");
	ASSERT_EQ(sg_config_set(&cfg, "shared_conn_rate = 300/min", "t", 4, err, sizeof(err)), 0,
		  "shared_conn_rate: a limit");
	ASSERT_EQ(cfg.shared_conn_burst, 300, "shared_conn_rate: its count");
	ASSERT_EQ(cfg.shared_conn_interval_ns * cfg.shared_conn_burst, 60000000000ULL,
		  "shared_conn_rate: its window");
	ASSERT_EQ(sg_config_check(&cfg, "t", err, sizeof(err)), -1,
		  "shared limits without redis refused");
	ASSERT_CONTAINS(err, "set redis", "shared limits: says how to fix it");
	ASSERT_EQ(sg_config_set(&cfg, "redis = tcp:[2001:db8::5]:6379", "t", 5, err, sizeof(err)), 0,
		  "redis: an IPv6 address");
	ASSERT_EQ(sg_config_check(&cfg, "t", err, sizeof(err)), 0, "shared limits with redis pass");
	ASSERT_EQ(sg_config_set(&cfg, "redis_password_file = secret", "t", 6, err, sizeof(err)), -1,
		  "redis_password_file: a path, never the password");
	ASSERT_EQ(sg_config_set(&cfg, "shared_prefix_v4 = 33", "t", 7, err, sizeof(err)), -1,
		  "shared_prefix_v4: past 32 refused");
}

static void test_ladder_keys(void)
{
	struct sg_config cfg;
	char err[SG_ERR_LEN];

	sg_config_defaults(&cfg);
	ASSERT_EQ(cfg.default_ladder, SG_LADDER_REFUSED, "ladder: the default class may be refused");
	ASSERT_EQ(sg_config_set(&cfg, "ladder_penalties = 1h, 2h, 2h, 1d", "t", 1, err, sizeof(err)),
		  0, "ladder: penalties may repeat and grow");
	ASSERT_EQ(cfg.ladder_penalties.n, 4, "ladder: four penalties");
	ASSERT_EQ(sg_config_set(&cfg, "ladder_penalties = 6h 1h", "t", 2, err, sizeof(err)), -1,
		  "ladder: a shrinking penalty refused");
	ASSERT_CONTAINS(err, "at least the one before", "ladder: says why");
	ASSERT_EQ(sg_config_set(&cfg, "ladder_penalties = 1h 0s", "t", 3, err, sizeof(err)), -1,
		  "ladder: a zero penalty refused");
	ASSERT_EQ(sg_config_set(&cfg, "ladder_penalties = 1h 2h 3h 4h 5h 6h 7h 8h 9h", "t", 4, err,
				sizeof(err)), -1, "ladder: nine penalties refused");
	ASSERT_EQ(sg_config_set(&cfg, "ladder_penalties = soon", "t", 5, err, sizeof(err)), -1,
		  "ladder: not a duration refused");
	ASSERT_EQ(sg_config_set(&cfg, "default_ladder = ban", "t", 6, err, sizeof(err)), -1,
		  "ladder: an unknown top step refused");
	ASSERT_CONTAINS(err, "off|flag|tempfail|refuse", "ladder: lists the steps");
}

static void test_defaults_kept(void)
{
	struct sg_config cfg;

	/* the values the hand-written defaults had before the table */
	sg_config_defaults(&cfg);
	ASSERT_STREQ(cfg.interfaces[1], "vnet*", "defaults kept: vnet*");
	ASSERT_EQ(cfg.xdp_generic, 0, "defaults kept: xdp_mode = native");
	ASSERT_EQ(cfg.n_smtp_ports, 1, "defaults kept: one SMTP port");
	ASSERT_EQ(cfg.default_tls_mode, SG_TLS_PASSTHROUGH, "defaults kept: default_tls_mode");
	ASSERT_EQ(cfg.default_source_mode, SG_SOURCE_TRANSPARENT, "defaults kept: source mode");
	ASSERT_EQ(cfg.default_conn_interval_ns, 1000000000ULL, "defaults kept: 60/min");
	ASSERT_EQ(cfg.default_conn_burst, 20, "defaults kept: burst 20");
	ASSERT_EQ(cfg.default_msg_interval_ns, 0, "defaults kept: no message limit");
	ASSERT_EQ(cfg.default_rcpt_burst, 0, "defaults kept: no recipient limit");
	ASSERT_EQ(cfg.state_idle_timeout_ns, 3600ULL * 1000000000ULL, "defaults kept: idle 1h");
	ASSERT_EQ(cfg.gc_interval_ns, 60ULL * 1000000000ULL, "defaults kept: GC every 60s");
	ASSERT_EQ(cfg.proxy, 1, "defaults kept: proxy = yes");
	ASSERT_EQ(cfg.proxy_workers, 0, "defaults kept: a worker per core");
	ASSERT_EQ(cfg.n_uplinks, 0, "defaults kept: no uplink");
	ASSERT_EQ(cfg.steer_mark, 0x5347, "defaults kept: steer_mark");
	ASSERT_EQ(cfg.route_table, 5347, "defaults kept: route_table");
	ASSERT_EQ(cfg.fail_mode, SG_FAIL_OPEN, "defaults kept: fail open");
	ASSERT_EQ(cfg.connect_timeout_ns, 30ULL * 1000000000ULL, "defaults kept: connect 30s");
	ASSERT_EQ(cfg.steer_mode, SG_STEER_ALL, "defaults kept: steer all");
	ASSERT_EQ(cfg.steer_sample, 0, "defaults kept: no sample");
	ASSERT_EQ(cfg.steer_soft_percent, 50, "defaults kept: soft 50%");
	ASSERT_EQ(cfg.suspect_duration_ns, 3600ULL * 1000000000ULL, "defaults kept: suspect 1h");
	ASSERT_STREQ(cfg.relay_ip4, "", "defaults kept: no relay_ip4");
	ASSERT_EQ(cfg.escalation_rejects, 5, "defaults kept: 5 rejects");
	ASSERT_EQ(cfg.escalation_window_ns, 600ULL * 1000000000ULL, "defaults kept: window 10m");
	ASSERT_EQ(cfg.ladder_penalties.ns[0], 3600ULL * 1000000000ULL, "defaults kept: penalty 1h");
	ASSERT_EQ(cfg.ladder_penalties.ns[2], 24 * 3600ULL * 1000000000ULL,
		  "defaults kept: third penalty 24h");
	ASSERT_EQ(cfg.smtp_line_limit, 2048, "defaults kept: line limit");
	ASSERT_EQ(cfg.smtp_command_limit, 1000, "defaults kept: command limit");
	ASSERT_EQ(cfg.smtp_recipient_limit, 1000, "defaults kept: recipient limit");
	ASSERT_EQ(cfg.smtp_message_size_limit, 104857600, "defaults kept: 100 MiB messages");
	ASSERT_EQ(cfg.smtp_idle_timeout_ns, 300ULL * 1000000000ULL, "defaults kept: idle 300s");
	ASSERT_EQ(cfg.smtp_session_timeout_ns, 3600ULL * 1000000000ULL,
		  "defaults kept: session 3600s");
	ASSERT_STREQ(cfg.content_rules, "", "defaults kept: no content rules file");
	ASSERT_EQ(cfg.scan_timeout_ns, 60ULL * 1000000000ULL, "defaults kept: scan_timeout 60s");
	ASSERT_EQ(cfg.scan_timeout_action, SG_SCAN_TEMPFAIL, "defaults kept: tempfail");
	ASSERT_STREQ(cfg.events_file, "", "defaults kept: no events file");
	ASSERT_EQ(cfg.n_implicit_tls_ports, 1, "defaults kept: one implicit TLS port");
	ASSERT_EQ(cfg.implicit_tls_ports[0], 465, "defaults kept: 465");
	ASSERT_STREQ(cfg.tls_cert_file, "", "defaults kept: no certificate");
	ASSERT_EQ(cfg.tls_mx_verify, SG_TLS_VERIFY_NONE, "defaults kept: verify none");
	ASSERT_STREQ(cfg.tls_ciphers,
		     "ECDHE+AESGCM:ECDHE+CHACHA20:DHE+AESGCM:DHE+CHACHA20:!aNULL:!eNULL",
		     "defaults kept: cipher list");
	ASSERT_STREQ(cfg.tls_ciphersuites, "", "defaults kept: OpenSSL's TLS 1.3 suites");
	ASSERT_EQ(cfg.tls_handshake_timeout_ns, 30ULL * 1000000000ULL,
		  "defaults kept: handshake 30s");
}

static void test_table_defaults(void)
{
	struct sg_config defaults, cfg;
	char err[SG_ERR_LEN * 2], line[1024], names[2048];
	size_t n;
	const struct sg_config_key *keys = sg_config_keys(&n);
	int bad = 0, unset_nonzero = 0, changed = 0;

	sg_config_defaults(&defaults);
	for (size_t i = 0; i < n; i++) {
		const char *field = (const char *)&defaults + keys[i].offset;

		if (!keys[i].default_text[0]) {
			/* unset: the field is all zero */
			for (size_t b = 0; b < keys[i].size; b++)
				unset_nonzero += field[b] != 0;
			continue;
		}
		cfg = defaults;
		snprintf(line, sizeof(line), "%s = %s", keys[i].name, keys[i].default_text);
		if (sg_config_set(&cfg, line, "table", 0, err, sizeof(err))) {
			printf("# %s\n", err);
			bad++;
		}
		changed += sg_config_changed(&defaults, &cfg, SG_RELOAD_LIVE, names, sizeof(names));
		changed += sg_config_changed(&defaults, &cfg, SG_RELOAD_RESTART, names,
					     sizeof(names));
	}
	ASSERT_EQ(n, 116, "table: 116 keys");
	ASSERT_EQ(bad, 0, "table: every default parses");
	ASSERT_EQ(changed, 0, "table: a key set to its default changes nothing");
	ASSERT_EQ(unset_nonzero, 0, "table: a key without a default is all zero");
}

/* Two rows naming the same bytes would copy and compare each other's. */
static void test_table_fields_apart(void)
{
	size_t n, overlaps = 0, outside = 0;
	const struct sg_config_key *keys = sg_config_keys(&n);

	for (size_t i = 0; i < n; i++) {
		size_t ranges[2][2] = {
			{ keys[i].offset, keys[i].offset + keys[i].size },
			{ keys[i].pair_offset, keys[i].pair_offset + keys[i].pair_size },
		};

		outside += ranges[0][1] > sizeof(struct sg_config) ||
			   ranges[1][1] > sizeof(struct sg_config) || keys[i].size == 0;
		for (size_t j = 0; j < n; j++) {
			size_t other[2][2] = {
				{ keys[j].offset, keys[j].offset + keys[j].size },
				{ keys[j].pair_offset, keys[j].pair_offset + keys[j].pair_size },
			};

			for (int a = 0; a < 2; a++)
				for (int b = 0; b < 2; b++)
					if ((i != j || a != b) && ranges[a][0] < ranges[a][1] &&
					    other[b][0] < other[b][1] && ranges[a][0] < other[b][1] &&
					    other[b][0] < ranges[a][1])
						overlaps++;
		}
	}
	ASSERT_EQ(overlaps, 0, "table: no two fields overlap");
	ASSERT_EQ(outside, 0, "table: every field lies within struct sg_config");
}

/* A value other than the default for every key: each must change its own
 * row, and no other (the row's offset and size are its field's). */
static const struct { const char *key, *value; } samples[] = {
	{ "bpffs_root", "/sys/fs/bpf/other" }, { "interfaces", "eth1" },
	{ "attach", "xdp" }, { "xdp_mode", "generic" }, { "smtp_ports", "25 587" },
	{ "implicit_tls_ports", "none" }, { "default_action", "block" },
	{ "default_tls_mode", "terminate" }, { "default_source_mode", "relay-ip" },
	{ "default_conn_rate", "5/s" }, { "default_conn_burst", "3" },
	{ "default_msg_rate", "10/h" }, { "default_rcpt_rate", "100/h" },
	{ "refuse", "rst" }, { "malformed", "pass" }, { "ipv6_source_prefix", "56" },
	{ "source_check", "route" }, { "source_bindings", "/etc/smtpguard/bindings" },
	{ "source_learn", "2" }, { "source_learn_idle", "2h" }, { "source_state_max", "100" },
	{ "detach_on_exit", "yes" }, { "state_idle_timeout", "2h" }, { "gc_interval", "5s" },
	{ "proxy", "no" }, { "proxy_workers", "4" }, { "proxy_user", "nobody" },
	{ "uplink", "eth0" },
	{ "steer_mark", "0x10" }, { "route_table", "100" }, { "fail_mode", "closed" },
	{ "connect_timeout", "5s" }, { "steer_mode", "suspect" }, { "steer_soft_percent", "75" },
	{ "steer_sample", "10" }, { "suspect_duration", "10m" }, { "relay_ip4", "192.0.2.1" },
	{ "relay_ip6", "2001:db8::1" }, { "escalation_rejects", "0" },
	{ "escalation_window", "1m" }, { "default_ladder", "tempfail" },
	{ "ladder_penalties", "2h 12h" }, { "ladder_dwell", "5s" }, { "ladder_tempfail", "30m" },
	{ "ladder_forget", "1d" }, { "ladder_allow", "/etc/smtpguard/allow.list" },
	{ "tenants", "/etc/smtpguard/tenants" }, { "tenants_proxmox", "/etc/pve" },
	{ "tenants_libvirt", "/run/libvirt/qemu" },
	{ "behaviour_messages", "1001" },
	{ "behaviour_rcpts", "2001" },
	{ "behaviour_rcpt_domains", "201" },
	{ "behaviour_burst", "121" },
	{ "behaviour_mail_from_domains", "21" },
	{ "behaviour_tls_sessions", "601" },
	{ "behaviour_tls_mx", "101" },
	{ "behaviour_tls_greetings", "101" },
	{ "behaviour_over_usual", "11" },
	{ "behaviour_unknown_pct", "20" },
	{ "behaviour_unknown_min_rcpts", "51" },
	{ "behaviour_policy_refusals", "11" },
	{ "behaviour_outbreak_senders", "3" },
	{ "behaviour_new_sender_pct", "20" },
	{ "behaviour_new_sender", "2d" }, { "behaviour_senders", "4096" },
	{ "webhook_urls", "http://192.0.2.5:8080/smtpguard" }, { "webhook_timeout", "2s" },
	{ "webhook_max_attempts", "3" }, { "webhook_max_age", "10m" },
	{ "webhook_queue_events", "50" }, { "webhook_tls_ca_file", "/etc/ssl/ca.pem" },
	{ "smtp_line_limit", "1000" }, { "smtp_command_limit", "50" },
	{ "smtp_recipient_limit", "5" }, { "smtp_message_size_limit", "1048576" },
	{ "smtp_idle_timeout", "60s" }, { "smtp_session_timeout", "10m" },
	{ "smtp_min_data_rate", "0" }, { "shutdown_timeout", "5s" }, { "drain_timeout", "30s" },
	{ "reconcile_interval", "2s" },
	{ "default_max_sessions", "0" },
	{ "scan_timeout", "5s" },
	{ "scan_timeout_action", "accept" },
	{ "content_rules", "/etc/smtpguard/content.rules" }, { "content_scan", "no" },
	{ "milters", "inet:127.0.0.1:11332 unix:/run/clamav/clamav-milter.ctl" },
	{ "milter_connect_timeout", "5s" }, { "milter_command_timeout", "10s" },
	{ "milter_content_timeout", "1m" }, { "milter_default_action", "accept" }, { "events_file", "-" }, { "metrics_listen", "127.0.0.1:9425" },
	{ "metrics_remote", "yes" }, { "tls_mover", "copy" },
	{ "redis", "tcp:10.0.0.5:6379" }, { "redis_password_file", "/etc/smtpguard/redis.pass" },
	{ "redis_sync_interval", "2s" }, { "redis_timeout", "5s" },
	{ "shared_conn_rate", "600/min" }, { "shared_msg_rate", "1000/h" },
	{ "shared_penalty", "1h" }, { "shared_prefix_v4", "28" }, { "shared_prefix_v6", "56" },
	{ "shared_senders_max", "4096" },
	{ "tls_cert_file", "/etc/c.pem" }, { "tls_key_file", "/etc/k.pem" },
	{ "tls_mx_verify", "verify" }, { "tls_ca_file", "/etc/ca.pem" },
	{ "tls_mx_names", "/etc/smtpguard/mx-names" }, { "tls_ticket_key_rotation", "1h" },
	{ "tls_mx_without_starttls", "require" }, { "tls_min_version", "TLSv1.3" },
	{ "tls_ciphers", "HIGH" }, { "tls_ciphersuites", "TLS_AES_128_GCM_SHA256" },
	{ "tls_handshake_timeout", "10s" },
};

static void test_each_key_alone(void)
{
	struct sg_config defaults, cfg;
	char err[SG_ERR_LEN * 2], line[1024], live[2048], restart[2048], got[4200];
	size_t n, nsamples = sizeof(samples) / sizeof(samples[0]);
	const struct sg_config_key *keys = sg_config_keys(&n);

	sg_config_defaults(&defaults);
	for (size_t i = 0; i < n; i++) {
		const char *value = NULL;
		char name[256];

		for (size_t j = 0; j < nsamples; j++)
			if (strcmp(samples[j].key, keys[i].name) == 0)
				value = samples[j].value;
		cfg = defaults;
		snprintf(line, sizeof(line), "%s = %s", keys[i].name, value ? value : "");
		if (!value) {
			snprintf(got, sizeof(got), "no sample value in samples[]");
		} else if (sg_config_set(&cfg, line, "sample", 0, err, sizeof(err))) {
			snprintf(got, sizeof(got), "%s", err);
		} else {
			sg_config_changed(&defaults, &cfg, SG_RELOAD_LIVE, live, sizeof(live));
			sg_config_changed(&defaults, &cfg, SG_RELOAD_RESTART, restart,
					  sizeof(restart));
			snprintf(got, sizeof(got), "%s%s%s", live, live[0] && restart[0] ? ", " : "",
				 restart);
		}
		snprintf(name, sizeof(name), "table: '%.100s' changes %s alone", line, keys[i].name);
		ASSERT_STREQ(got, keys[i].name, name);
		snprintf(name, sizeof(name), "table: %s changes as a %s key", keys[i].name,
			 keys[i].reload == SG_RELOAD_LIVE ? "live" : "restart");
		if (value)
			ASSERT_STREQ(keys[i].reload == SG_RELOAD_LIVE ? live : restart,
				     keys[i].name, name);
	}
	ASSERT_EQ(nsamples, n, "table: a sample for every key, no more");
}

static void test_reload_scope(void)
{
	struct sg_config running, fresh;
	char err[SG_ERR_LEN * 2], names[2048];

	ASSERT_EQ(load_text(&running, "smtp_ports = 25 587\ninterfaces = tap*\n", err,
			    sizeof(err)), 0, "reload: the running config loads");
	ASSERT_EQ(load_text(&fresh, "smtp_ports = 25\ninterfaces = tap* vnet*\nproxy_workers = 2\n"
			    "smtp_line_limit = 1000\ntls_ciphers = HIGH\n", err, sizeof(err)), 0,
		  "reload: the file as changed loads");
	ASSERT_EQ(sg_config_changed(&running, &fresh, SG_RELOAD_RESTART, names, sizeof(names)), 2,
		  "reload: two restart keys changed");
	ASSERT_STREQ(names, "interfaces, proxy_workers", "reload: the restart keys, named");
	ASSERT_EQ(sg_config_changed(&running, &fresh, SG_RELOAD_LIVE, names, sizeof(names)), 3,
		  "reload: three live keys changed");
	ASSERT_STREQ(names, "smtp_ports, smtp_line_limit, tls_ciphers",
		     "reload: the live keys, named (a port list with its count)");
	sg_config_apply_live(&running, &fresh);
	ASSERT_EQ(running.n_smtp_ports, 1, "reload: a port list comes with its count");
	ASSERT_EQ(running.smtp_ports[1], 0, "reload: and with its emptied slots");
	ASSERT_EQ(running.smtp_line_limit, 1000, "reload: a live key applied");
	ASSERT_STREQ(running.tls_ciphers, "HIGH", "reload: a live string applied");
	ASSERT_EQ(running.n_interfaces, 1, "reload: a restart key keeps its running value");
	ASSERT_EQ(running.proxy_workers, 0, "reload: proxy_workers waits for the restart");
	ASSERT_EQ(sg_config_changed(&running, &fresh, SG_RELOAD_LIVE, names, sizeof(names)), 0,
		  "reload: no live key differs after the copy");
	ASSERT_STREQ(names, "", "reload: no live key named");
	ASSERT_EQ(sg_config_changed(&running, &fresh, SG_RELOAD_RESTART, names, sizeof(names)), 2,
		  "reload: the restart keys still wait");

	/* a limit is its interval and its burst: 10/h and 20/2h share one */
	ASSERT_EQ(load_text(&running, "default_msg_rate = 10/h\n", err, sizeof(err)), 0,
		  "reload: 10/h loads");
	ASSERT_EQ(load_text(&fresh, "default_msg_rate = 20/2h\n", err, sizeof(err)), -1,
		  "reload: 20/2h is not a rate");
	ASSERT_EQ(load_text(&fresh, "default_msg_rate = 240/d\n", err, sizeof(err)), 0,
		  "reload: 240/d loads (the interval of 10/h)");
	ASSERT_EQ(sg_config_changed(&running, &fresh, SG_RELOAD_LIVE, names, sizeof(names)), 1,
		  "reload: the same interval with another burst is a change");
	sg_config_apply_live(&running, &fresh);
	ASSERT_EQ(running.default_msg_burst, 240, "reload: a limit's burst comes with it");

	/* a short buffer keeps the count and says it was cut */
	ASSERT_EQ(load_text(&running, "", err, sizeof(err)), 0, "reload: defaults");
	ASSERT_EQ(load_text(&fresh, "smtp_line_limit = 1000\nsmtp_command_limit = 50\n", err,
			    sizeof(err)), 0, "reload: two keys changed");
	ASSERT_EQ(sg_config_changed(&running, &fresh, SG_RELOAD_LIVE, names, 20), 2,
		  "reload: a short buffer still counts every key");
	ASSERT_STREQ(names, "smtp_line_limit,...", "reload: a short buffer ends in ...");
}

/* The map enums' names are smtpguardctl's too (parse.c): the same list. */
static void test_enum_names_agree(void)
{
	static const struct {
		const char *key;
		int count;
		const char *(*name)(int);
		size_t offset;
	} enums[] = {
		{ "default_action", SG_ACTION__COUNT, sg_action_name,
		  offsetof(struct sg_config, default_action) },
		{ "default_tls_mode", SG_TLS__COUNT, sg_tls_mode_name,
		  offsetof(struct sg_config, default_tls_mode) },
		{ "default_source_mode", SG_SOURCE__COUNT, sg_source_mode_name,
		  offsetof(struct sg_config, default_source_mode) },
		{ "refuse", SG_REFUSE__COUNT, sg_refuse_mode_name,
		  offsetof(struct sg_config, refuse_mode) },
		{ "malformed", SG_MALFORMED__COUNT, sg_malformed_mode_name,
		  offsetof(struct sg_config, malformed_mode) },
	};
	char err[SG_ERR_LEN * 2], line[128];
	struct sg_config cfg;
	int disagree = 0;

	for (size_t e = 0; e < sizeof(enums) / sizeof(enums[0]); e++) {
		for (int v = 0; v < enums[e].count; v++) {
			sg_config_defaults(&cfg);
			snprintf(line, sizeof(line), "%s = %s", enums[e].key, enums[e].name(v));
			if (sg_config_set(&cfg, line, "enum", 0, err, sizeof(err)) ||
			    *(int *)((char *)&cfg + enums[e].offset) != v) {
				printf("# %s: %s\n", line, err);
				disagree++;
			}
		}
	}
	ASSERT_EQ(disagree, 0, "enums: the config's names are smtpguardctl's");
}

/* etc/smtpguard.conf: $SG_CONF, else under the working directory (make
 * check runs from the repository's root), else above the binary
 * (build/selftests/, build/asan/selftests/). */
static FILE *open_conf(char *path, size_t len)
{
	const char *env = getenv("SG_CONF");
	char exe[PATH_MAX];
	ssize_t n;

	if (env) {
		snprintf(path, len, "%s", env);
		return fopen(path, "r");
	}
	snprintf(path, len, "etc/smtpguard.conf");
	if (access(path, R_OK) == 0)
		return fopen(path, "r");
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0)
		return NULL;
	exe[n] = '\0';
	for (char *slash = strrchr(exe, '/'); slash; slash = strrchr(exe, '/')) {
		*slash = '\0';
		snprintf(path, len, "%s/etc/smtpguard.conf", exe);
		if (access(path, R_OK) == 0)
			return fopen(path, "r");
	}
	return NULL;
}

/* Runs of blanks as one space, none at either end. */
static void squeeze(char *s)
{
	char *out = s;

	for (char *in = s; *in; in++) {
		if (isspace((unsigned char)*in)) {
			if (out > s && out[-1] != ' ')
				*out++ = ' ';
		} else {
			*out++ = *in;
		}
	}
	while (out > s && out[-1] == ' ')
		out--;
	*out = '\0';
}

#define CONF_KEYS_MAX 128

static void test_conf_documents_table(void)
{
	static char comments[65536];
	char path[PATH_MAX + 32], line[1024], shown[CONF_KEYS_MAX][2][512];
	char restart[2048] = "", unknown[1024] = "";
	size_t n, nshown = 0, used = 0;
	const struct sg_config_key *keys = sg_config_keys(&n);
	const char *phrase = "keys that take effect only at the next start:";
	FILE *f = open_conf(path, sizeof(path));
	char *list, *end, *save = NULL;

	if (!ASSERT_TRUE(f != NULL, "conf: etc/smtpguard.conf found (run from the repository's "
			 "root, or set SG_CONF=path)"))
		return;
	/* "#key = value" and "key = value" lines show a key; every other
	 * comment line is prose */
	while (fgets(line, sizeof(line), f)) {
		char *text = line + (line[0] == '#'), *eq = strchr(text, '=');
		size_t klen = strspn(text, "abcdefghijklmnopqrstuvwxyz0123456789_");

		if (klen && eq && text + klen + strspn(text + klen, " \t") == eq &&
		    nshown < CONF_KEYS_MAX) {
			snprintf(shown[nshown][0], sizeof(shown[0][0]), "%.*s", (int)klen, text);
			snprintf(shown[nshown][1], sizeof(shown[0][1]), "%s", eq + 1);
			squeeze(shown[nshown++][1]);
		} else if (line[0] == '#') {
			used += (size_t)snprintf(comments + used, sizeof(comments) - used, "%s ",
						 line + 1);
			if (used >= sizeof(comments))
				used = sizeof(comments) - 1;
		}
	}
	fclose(f);
	squeeze(comments);

	for (size_t i = 0; i < n; i++) {
		char name[160], want[512], got[512] = "(not shown as '#key = default')";
		int times = 0;

		for (size_t j = 0; j < nshown; j++)
			if (strcmp(shown[j][0], keys[i].name) == 0 && times++ == 0)
				snprintf(got, sizeof(got), "%s", shown[j][1]);
		if (times > 1)
			snprintf(got, sizeof(got), "(shown %d times)", times);
		snprintf(want, sizeof(want), "%s", keys[i].default_text);
		squeeze(want);
		snprintf(name, sizeof(name), "conf: shows %s once, with the table's default",
			 keys[i].name);
		ASSERT_STREQ(got, want, name);
	}
	for (size_t j = 0; j < nshown; j++) {
		int known = 0;

		for (size_t i = 0; i < n; i++)
			known |= strcmp(shown[j][0], keys[i].name) == 0;
		if (!known)
			snprintf(unknown + strlen(unknown), sizeof(unknown) - strlen(unknown),
				 "%s%.64s", unknown[0] ? ", " : "", shown[j][0]);
	}
	ASSERT_STREQ(unknown, "", "conf: shows no key the table lacks");

	/* the one sentence that lists what a reload leaves for the restart */
	list = strstr(comments, phrase);
	if (!ASSERT_TRUE(list != NULL, "conf: says which keys take effect only at the next start"))
		return;
	list += strlen(phrase);
	end = strchr(list, '.');
	if (end)
		*end = '\0';
	for (char *tok = strtok_r(list, " ,", &save); tok; tok = strtok_r(NULL, " ,", &save)) {
		if (strcmp(tok, "and") == 0)
			continue;
		snprintf(restart + strlen(restart), sizeof(restart) - strlen(restart), "%s%s",
			 restart[0] ? ", " : "", tok);
	}
	{
		char want[2048] = "";

		for (size_t i = 0; i < n; i++)
			if (keys[i].reload == SG_RELOAD_RESTART)
				snprintf(want + strlen(want), sizeof(want) - strlen(want), "%s%s",
					 want[0] ? ", " : "", keys[i].name);
		ASSERT_STREQ(restart, want, "conf: the restart keys it lists are the table's");
	}
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
	test_milter_keys();
	test_metrics_keys();
	test_redis_keys();
	test_ladder_keys();
	test_defaults_kept();
	test_table_defaults();
	test_table_fields_apart();
	test_each_key_alone();
	test_reload_scope();
	test_enum_names_agree();
	test_conf_documents_table();
	return test_exit_status();
}
