/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* routing.c - the steering's policy routing, through ip(8) (see routing.h). */
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "log.h"
#include "parse.h"
#include "routing.h"

extern char **environ;

/* ip(8) where iproute2 installs it, never as PATH finds it: a daemon
 * running as root must not run whatever an environment names "ip". */
static const char *ip_path(void)
{
	static const char *const paths[] = { "/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip" };

	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
		if (access(paths[i], X_OK) == 0)
			return paths[i];
	return NULL;
}

/* Runs ip(8) with argv; its exit status, or -1. quiet: discard its stderr.
 * out: what it printed (at most outlen - 1 bytes), or NULL to leave stdout. */
static int run_ip_output(char *const argv[], int quiet, char *out, size_t outlen)
{
	posix_spawn_file_actions_t fa;
	const char *ip = ip_path();
	int status, ret, pipefd[2] = { -1, -1 };
	size_t have = 0;
	pid_t pid;

	if (!ip) {
		sg_err("no ip(8) in /usr/sbin, /sbin, /usr/bin or /bin (install iproute2)");
		return -1;
	}
	if (out && pipe2(pipefd, O_CLOEXEC))
		return -1;
	posix_spawn_file_actions_init(&fa);
	if (quiet)
		posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", 0x1 /* O_WRONLY */, 0);
	if (out)
		posix_spawn_file_actions_adddup2(&fa, pipefd[1], 1);
	ret = posix_spawn(&pid, ip, &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (out) {
		close(pipefd[1]);
		for (ssize_t n = 1; !ret && n > 0 && have + 1 < outlen; have += (size_t)n) {
			n = read(pipefd[0], out + have, outlen - 1 - have);
			if (n < 0 && errno == EINTR)
				n = 0;
			if (n <= 0)
				break;
		}
		out[have] = '\0';
		close(pipefd[0]);
	}
	if (ret) {
		sg_err("running %s failed: %s (install iproute2)", ip, strerror(ret));
		return -1;
	}
	if (waitpid(pid, &status, 0) < 0)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static int run_ip(char *const argv[], int quiet)
{
	return run_ip_output(argv, quiet, NULL, 0);
}

static int rule_and_route(const struct sg_config *cfg, const char *family, int add)
{
	char mark[16], table[16];
	char *rule_del[] = { "ip", (char *)family, "rule", "del", "fwmark", mark, "lookup",
			     table, NULL };
	char *rule_add[] = { "ip", (char *)family, "rule", "add", "fwmark", mark, "lookup",
			     table, NULL };
	char *rule_show[] = { "ip", (char *)family, "rule", "show", "fwmark", mark, "lookup",
			      table, NULL };
	char shown[512];
	char *route[] = { "ip", (char *)family, "route", add ? "replace" : "del", "local",
			  strcmp(family, "-6") ? "0.0.0.0/0" : "::/0", "dev", "lo", "table",
			  table, NULL };

	snprintf(mark, sizeof(mark), "0x%x", cfg->steer_mark);
	snprintf(table, sizeof(table), "%u", cfg->route_table);
	/* a restart or an upgrade finds the rule in place and leaves it: taken
	 * away even for a moment, steered SYNs would be dropped meanwhile; it
	 * is added only when none is there (the kernel takes duplicates) */
	if (add && run_ip_output(rule_show, 1, shown, sizeof(shown)) == 0 && shown[0])
		;
	else if (add && run_ip(rule_add, 0)) {
		sg_err("adding the rule 'ip %s rule add fwmark %s lookup %s' failed", family,
		       mark, table);
		return -1;
	}
	while (!add && run_ip(rule_del, 1) == 0)
		;
	if (run_ip(route, !add) && add) {
		sg_err("adding the local route of table %s (%s) failed", table, family);
		return -1;
	}
	return 0;
}

int sg_routing_install(const struct sg_config *cfg)
{
	if (sg_read_sysctl("/proc/sys/net/ipv4/conf/all/src_valid_mark") == 1)
		sg_warn("net.ipv4.conf.all.src_valid_mark = 1: with rp_filter it drops steered "
			"flows; set it to 0");
	if (sg_read_sysctl("/proc/sys/net/ipv4/ip_forward") != 1)
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
