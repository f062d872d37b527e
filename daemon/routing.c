/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* routing.c - the steering's policy routing, through ip(8) (see routing.h). */
#include <errno.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "log.h"
#include "routing.h"

extern char **environ;

/* Runs ip(8) with argv; its exit status, or -1. quiet: discard its stderr. */
static int run_ip(char *const argv[], int quiet)
{
	posix_spawn_file_actions_t fa;
	int status, ret;
	pid_t pid;

	posix_spawn_file_actions_init(&fa);
	if (quiet)
		posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", 0x1 /* O_WRONLY */, 0);
	ret = posix_spawnp(&pid, "ip", &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (ret) {
		sg_err("running ip(8) failed: %s (install iproute2)", strerror(ret));
		return -1;
	}
	if (waitpid(pid, &status, 0) < 0)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static int read_sysctl(const char *path)
{
	FILE *f = fopen(path, "r");
	int v = -1;

	if (f) {
		if (fscanf(f, "%d", &v) != 1)
			v = -1;
		fclose(f);
	}
	return v;
}

static int rule_and_route(const struct sg_config *cfg, const char *family, int add)
{
	char mark[16], table[16];
	char *rule_del[] = { "ip", (char *)family, "rule", "del", "fwmark", mark, "lookup",
			     table, NULL };
	char *rule_add[] = { "ip", (char *)family, "rule", "add", "fwmark", mark, "lookup",
			     table, NULL };
	char *route[] = { "ip", (char *)family, "route", add ? "replace" : "del", "local",
			  strcmp(family, "-6") ? "0.0.0.0/0" : "::/0", "dev", "lo", "table",
			  table, NULL };

	snprintf(mark, sizeof(mark), "0x%x", cfg->steer_mark);
	snprintf(table, sizeof(table), "%u", cfg->route_table);
	/* one rule, however often the daemon starts */
	while (run_ip(rule_del, 1) == 0)
		;
	if (add && run_ip(rule_add, 0)) {
		sg_err("adding the rule 'ip %s rule add fwmark %s lookup %s' failed", family,
		       mark, table);
		return -1;
	}
	if (run_ip(route, !add) && add) {
		sg_err("adding the local route of table %s (%s) failed", table, family);
		return -1;
	}
	return 0;
}

int sg_routing_install(const struct sg_config *cfg)
{
	if (read_sysctl("/proc/sys/net/ipv4/conf/all/src_valid_mark") == 1)
		sg_warn("net.ipv4.conf.all.src_valid_mark = 1: with rp_filter it drops steered "
			"flows; set it to 0");
	if (read_sysctl("/proc/sys/net/ipv4/ip_forward") != 1)
		sg_warn("net.ipv4.ip_forward is not 1: this host does not route its VMs' traffic");
	/* without them steered flows are forwarded with a socket attached,
	 * and dropped: every scanned VM's mail would hang */
	if (rule_and_route(cfg, "-4", 1))
		goto fail;
	if (access("/proc/sys/net/ipv6", F_OK)) {
		sg_info("policy routing: fwmark 0x%x -> table %u (local delivery), IPv4 only "
			"(IPv6 is disabled on this host)", cfg->steer_mark, cfg->route_table);
		return 0;
	}
	if (rule_and_route(cfg, "-6", 1))
		goto fail;
	sg_info("policy routing: fwmark 0x%x -> table %u (local delivery), IPv4 and IPv6",
		cfg->steer_mark, cfg->route_table);
	return 0;
fail:
	sg_err("the proxy cannot receive steered flows without its policy routing (is 'ip' "
	       "from iproute2 installed, and does smtpguardd have CAP_NET_ADMIN? is "
	       "route_table %u or steer_mark 0x%x taken?)", cfg->route_table, cfg->steer_mark);
	sg_routing_remove(cfg);
	return -1;
}

void sg_routing_remove(const struct sg_config *cfg)
{
	rule_and_route(cfg, "-4", 0);
	rule_and_route(cfg, "-6", 0);
}
