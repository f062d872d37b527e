/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* reload.c - SIGHUP (see daemon.h). */
#include <getopt.h>
#include <bpf/bpf.h>
#include "daemon.h"
#include "log.h"
#include "notify.h"
#include "tenants_daemon.h"

/* every key's name, joined by ", " */
#define SG_CONFIG_NAMES_LEN 2048

/*
 * SIGHUP: the file again. A file with an error changes nothing. Otherwise
 * every live key (lib/config.c's table says which) applies at once: the
 * classifier's settings and default rate class are written again, and new
 * proxy sessions take the proxy's keys; the restart keys keep what the
 * daemon started with, and the log names those that changed.
 */
void daemon_reload(struct daemon *d, int argc, char **argv)
{
	struct sg_config fresh, before;
	char names[SG_CONFIG_NAMES_LEN];
	int detach = 0, purge = 0, check = 0, n, ok;

	sg_notify_reloading();
	optind = 1;
	if (daemon_parse_args(argc, argv, &fresh, &detach, &purge, &check)) {
		sg_err("reload: keeping the running configuration");
		sg_notify_ready("running; the last reload failed (the log says why), the "
				"configuration before it stays");
		return;
	}
	/* the running fail_mode may be smtpguardctl's: what changed is the
	 * file's own */
	before = d->cfg;
	before.fail_mode = d->file_fail_mode;
	n = sg_config_changed(&before, &fresh, SG_RELOAD_RESTART, names, sizeof(names));
	if (n)
		sg_warn("reload: %s changed; %s effect at the next start", names,
			n == 1 ? "it takes" : "they take");
	n = sg_config_changed(&before, &fresh, SG_RELOAD_LIVE, names, sizeof(names));
	sg_config_apply_live(&d->cfg, &fresh);
	/* a `smtpguardctl fail-mode` holds over a reload, until the file's
	 * own fail_mode changes */
	if (fresh.fail_mode == d->file_fail_mode) {
		struct sg_settings live;
		__u32 zero = 0;

		if (bpf_map_lookup_elem(d->ld.maps.settings, &zero, &live) == 0)
			d->cfg.fail_mode = live.fail_mode;
	}
	d->file_fail_mode = fresh.fail_mode;
	if (n)
		sg_info("reload: %d key(s) changed: %s", n, names);
	else
		sg_info("reload: no key changed");
	ok = sg_loader_apply_config(&d->ld, &d->cfg) == 0;
	if (sg_bindings_reload(&d->cfg, &d->bindings))
		ok = 0;
	sg_bindings_apply(&d->ld.maps, &d->bindings);
	daemon_tenants_load(d);
	daemon_tenants_refresh(d, 0);
	sg_shared_configure(d->shared, &d->cfg);
	if (d->proxy && sg_proxy_process_reload(d->proxy, &d->cfg))
		ok = 0;
	/* a reload's last line, which scripts (and the e2e tests) wait for */
	if (ok)
		sg_info("reloaded the settings");
	else
		sg_warn("reload: done, except what the errors above name");
	sg_notify_ready(ok ? "running; reloaded" : "running; reloaded, except what the log names");
}
