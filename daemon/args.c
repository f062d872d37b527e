/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * args.c - smtpguardd's command line and the config file it names (see
 * daemon.h): read at start, and again at every reload.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "daemon.h"
#include "log.h"
#include "uplink.h"
#include "parse.h"
#include "tenants.h"
#include "tls.h"

#define MAX_SETS 64

static const char usage_text[] =
"usage: smtpguardd -c FILE [--set key=value]... [-v]\n"
"       smtpguardd -c FILE [--set key=value]... --detach [--purge]\n"
"       smtpguardd -c FILE [--set key=value]... --check-config\n"
"       smtpguardd -c FILE [--set key=value]... --check-upgrade\n"
"       smtpguardd -c FILE [--set key=value]... --upgrade\n"
"       smtpguardd --list-keys\n"
"  -c FILE        config file (keys and defaults: etc/smtpguard.conf)\n"
"  --set K=V      override a config key (repeatable)\n"
"  --detach       remove every program this instance attached, then exit\n"
"  --purge        with --detach: also remove the pinned maps (policy, state)\n"
"  --check-config validate the configuration and exit\n"
"  --check-upgrade validate the configuration and load the programs against\n"
"                 the pinned maps, attaching nothing (what SIGUSR2 runs first)\n"
"  --upgrade      have the smtpguardd running on this bpffs_root execute its\n"
"                 binary anew in place (SIGUSR2 to it), then exit\n"
"  --list-keys    print every key, its default and whether SIGHUP applies it\n"
"  -v             verbose\n";

/* --list-keys: the table in lib/config.c, one key a line. */
static void list_keys(void)
{
	size_t n;
	const struct sg_config_key *keys = sg_config_keys(&n);

	for (size_t i = 0; i < n; i++)
		printf("%s =%s%s  (reload: %s)\n", keys[i].name, keys[i].default_text[0] ? " " : "",
		       keys[i].default_text,
		       keys[i].reload == SG_RELOAD_LIVE ? "live" : "restart");
}

int daemon_parse_args(int argc, char **argv, struct sg_config *cfg, int *detach,
		      int *purge, int *check_only)
{
	static const struct option longopts[] = {
		{ "set", required_argument, NULL, 's' },
		{ "detach", no_argument, NULL, 'd' },
		{ "purge", no_argument, NULL, 'p' },
		{ "check-config", no_argument, NULL, 'k' },
		{ "check-upgrade", no_argument, NULL, 'u' },
		{ "upgrade", no_argument, NULL, 'U' },
		{ "list-keys", no_argument, NULL, 'l' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *sets[MAX_SETS], *config_path = NULL;
	char err[SG_ERR_LEN * 2];
	int nsets = 0, opt;

	while ((opt = getopt_long(argc, argv, "c:vh", longopts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			config_path = optarg;
			break;
		case 's':
			if (nsets == MAX_SETS) {
				sg_err("more than %d --set options", MAX_SETS);
				return 2;
			}
			sets[nsets++] = optarg;
			break;
		case 'd':
			*detach = 1;
			break;
		case 'p':
			*purge = 1;
			break;
		case 'k':
			*check_only = SG_RUN_CHECK_CONFIG;
			break;
		case 'u':
			*check_only = SG_RUN_CHECK_UPGRADE;
			break;
		case 'U':
			*check_only = SG_RUN_SIGNAL_UPGRADE;
			break;
		case 'v':
			sg_log_set_verbose(1);
			break;
		case 'h':
			fputs(usage_text, stdout);
			exit(0);
		case 'l':
			list_keys();
			exit(0);
		default:
			fputs(usage_text, stderr);
			return 2;
		}
	}
	if (optind < argc) {
		sg_err("unexpected argument '%s' (options only; see --help)", argv[optind]);
		return 2;
	}
	if (*purge && !*detach) {
		sg_err("--purge goes with --detach");
		return 2;
	}
	sg_config_defaults(cfg);
	if (config_path && sg_config_load(cfg, config_path, err, sizeof(err))) {
		sg_err("%s", err);
		return 2;
	}
	for (int i = 0; i < nsets; i++) {
		if (sg_config_set(cfg, sets[i], "--set", 0, err, sizeof(err))) {
			sg_err("%s", err);
			return 2;
		}
	}
	if (cfg->proxy && cfg->attach_mode == SG_ATTACH_XDP) {
		sg_err("%s: proxy = yes (the default) needs attach = tc: XDP cannot hand a "
		       "packet to a socket, so scan flows would never reach the proxy; set "
		       "proxy = no to classify at XDP alone",
		       config_path ? config_path : "--set");
		return 2;
	}
	/* no uplink set: the default route's (lib/uplink.h), found at each
	 * start and reload; a reload that finds another says it waits for
	 * the next start, as for any restart key. --detach needs none. */
	if (cfg->proxy && cfg->n_uplinks == 0 && !*detach) {
		char why[256];

		if (sg_uplink_detect(cfg, why, sizeof(why), err, sizeof(err))) {
			sg_err("%s: proxy = yes needs 'uplink', the interfaces where the MX's "
			       "replies arrive, and it was not set: %s", config_path ? config_path :
			       "--set", err);
			return 2;
		}
		sg_info("uplink: %s (uplink is not set)", why);
	}
	if (sg_config_check(cfg, config_path ? config_path : "--set", err, sizeof(err))) {
		sg_err("%s", err);
		return 2;
	}
	/* the certificate, key, CA file and cipher lists load, or no start */
	{
		struct sg_tls *tls = sg_tls_new(cfg, err, sizeof(err));

		if (!tls) {
			sg_err("%s: %s", config_path ? config_path : "--set", err);
			return 2;
		}
		sg_tls_free(tls);
	}
	/* the tenants file reads, or no start (a reload keeps the old) */
	{
		struct sg_tenants *t = sg_tenants_load(cfg->tenants, cfg->tenants_proxmox,
						       cfg->tenants_libvirt, err, sizeof(err));
		const char *dirs[2] = { cfg->tenants_proxmox, cfg->tenants_libvirt };
		char what[256];

		if (!t) {
			sg_err("tenants: %s", err);
			return 2;
		}
		sg_tenants_describe(t, what, sizeof(what));
		if (cfg->tenants[0] || dirs[0][0] || dirs[1][0])
			sg_info("tenants: %s%s", what, cfg->tenants[0] ? "" : " (no tenants file)");
		sg_tenants_free(t);
		for (int i = 0; i < 2; i++) {
			struct stat st;

			if (dirs[i][0] && (stat(dirs[i], &st) || !S_ISDIR(st.st_mode)))
				sg_warn("%s = %s is not a directory: that adapter finds no tenant",
					i ? "tenants_libvirt" : "tenants_proxmox", dirs[i]);
		}
	}
	return 0;
}
