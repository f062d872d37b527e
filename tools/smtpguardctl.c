/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * smtpguardctl - the operator's CLI: reads and writes the maps smtpguardd
 * pinned below a bpffs root. Policy, rate classes, per-source state, blocks,
 * counters and top talkers. A change takes effect on the next packet. The
 * commands live in the ctl_*.c files (see ctl.h).
 */
#include <stdio.h>
#include <string.h>
#include "ctl.h"
#include "log.h"

static const char usage_text[] =
"usage: smtpguardctl [--root DIR] [--json] COMMAND [ARGS]\n"
"  policy add PREFIX ACTION [--class NAME] [--tls MODE] [--source MODE]\n"
"                           ACTION: scan|exempt|passthrough|block\n"
"  policy del PREFIX\n"
"  policy list\n"
"  rate-class set NAME [--conn RATE --burst N] [--msgs LIMIT] [--rcpts LIMIT]\n"
"                     [--sessions N] [--ladder off|flag|tempfail|refuse]\n"
"                           RATE: e.g. 30/min, 5/s, 100/h; a new class needs --conn, --burst\n"
"                           LIMIT: COUNT/UNIT (COUNT at once, then one every UNIT/COUNT) or none\n"
"                           N: concurrent sessions a sender holds on the proxy, or none\n"
"                           --ladder: the highest step the response ladder takes its senders\n"
"  rate-class list\n"
"  show ADDR [-c FILE]                        ADDR%IFNAME: an IPv6 sender on a bridge port\n"
"                           -c: the daemon's config (its tenants; default " DEFAULT_CONFIG ")\n"
"  block ADDR --for DURATION                  DURATION: e.g. 30s, 10m, 2h\n"
"  unblock ADDR                               lift a penalty (the ladder step stays)\n"
"  release ADDR                               back to normal: the ladder, the penalty\n"
"  stats\n"
"  metrics                                    the Prometheus text metrics_listen serves\n"
"  top [--by syns|drops|msgs|rejects] [-n N] [-d SECS]\n"
"                           live in a terminal (keys: s d m r sort, q quit)\n"
"  doctor [-c FILE]                           checks the host; exit 0 ok, 1 warnings, 2 failures\n"
"  fail-mode [open|closed]                    scan flows while the proxy is down\n"
"  tenants [-c FILE]                          per tenant: senders, messages, limits\n"
"  trace ID --events FILE                     which VM sent a message (Message-ID or ref)\n"
"  complaint FILE|DIR|--watch MAILDIR --events FILE [--confirm] [--window SECS]\n"
"                           an abuse report (ARF) traced to the VM, its session and tenant;\n"
"                           --confirm: an exact or strong match climbs the sender's ladder\n"
"--root: the bpffs root smtpguardd pins its maps in (default " DEFAULT_ROOT ")\n";

struct command {
	const char *group;
	const char *verb;	/* NULL: the group alone is the command */
	int (*run)(struct ctl *ctl, int argc, char **argv, int first);
};

static const struct command commands[] = {
	{ "policy", "add", cmd_policy_add },
	{ "policy", "del", cmd_policy_del },
	{ "policy", "list", cmd_policy_list },
	{ "rate-class", "set", cmd_rate_class_set },
	{ "rate-class", "list", cmd_rate_class_list },
	{ "show", NULL, cmd_show },
	{ "release", NULL, cmd_release },
	{ "block", NULL, cmd_block },
	{ "unblock", NULL, cmd_unblock },
	{ "stats", NULL, cmd_stats },
	{ "metrics", NULL, cmd_metrics },
	{ "doctor", NULL, cmd_doctor },
	{ "top", NULL, cmd_top },
	{ "fail-mode", NULL, cmd_fail_mode },
	{ "trace", NULL, cmd_trace },
	{ "complaint", NULL, cmd_complaint },
	{ "tenants", NULL, cmd_tenants },
};

int main(int argc, char **argv)
{
	struct ctl ctl = { .root = DEFAULT_ROOT };
	int i = 1, ret;

	memset(&ctl.maps, -1, sizeof(ctl.maps));
	sg_log_init("smtpguardctl");
	/* the global options may stand anywhere; take them out of argv */
	{
		int kept = 1;

		for (int a = 1; a < argc; a++) {
			if (strcmp(argv[a], "--json") == 0) {
				ctl.json = 1;
			} else if (strcmp(argv[a], "--root") == 0) {
				if (a + 1 >= argc)
					return usage_error("--root needs a directory%s", "");
				ctl.root = argv[++a];
			} else if (strcmp(argv[a], "--help") == 0 || strcmp(argv[a], "-h") == 0) {
				fputs(usage_text, stdout);
				return 0;
			} else {
				argv[kept++] = argv[a];
			}
		}
		argc = kept;
	}
	if (i < argc && argv[i][0] == '-')
		return usage_error("unknown option '%s' (options of a command follow it)", argv[i]);
	if (i >= argc)
		return usage_error("no command given%s", "");
	for (size_t c = 0; c < sizeof(commands) / sizeof(commands[0]); c++) {
		const struct command *cmd = &commands[c];

		if (strcmp(argv[i], cmd->group) != 0)
			continue;
		if (!cmd->verb) {
			ret = cmd->run(&ctl, argc, argv, i + 1);
			goto out;
		}
		if (i + 1 < argc && strcmp(argv[i + 1], cmd->verb) == 0) {
			ret = cmd->run(&ctl, argc, argv, i + 2);
			goto out;
		}
	}
	for (size_t c = 0; c < sizeof(commands) / sizeof(commands[0]); c++) {
		if (strcmp(argv[i], commands[c].group) == 0 && commands[c].verb)
			return usage_error(strcmp(argv[i], "policy") == 0 ?
					   "'%s' needs a subcommand: add, del or list" :
					   "'%s' needs a subcommand: set or list", argv[i]);
	}
	return usage_error("unknown command '%s'", argv[i]);
out:
	sg_maps_close(&ctl.maps);
	return ret;
}
