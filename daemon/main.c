/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * smtpguardd - the daemon: reads its config, creates or reuses the pinned
 * maps, attaches the classifier to every VM-facing interface (and to new
 * ones as they appear), evicts idle per-source state, and on request
 * detaches what it attached.
 */
#include <errno.h>
#include <fnmatch.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/epoll.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include "attach.h"
#include "daemon.h"
#include "config.h"
#include "events.h"
#include "gc.h"
#include "instance.h"
#include "loader.h"
#include "log.h"
#include "loop.h"
#include "metrics_listener.h"
#include "netwatch.h"
#include "tenants_daemon.h"
#include "notify.h"
#include "reconcile.h"
#include "routing.h"

/* what a stop takes besides the proxy's wait: detaching, closing */
#define SG_STOP_MARGIN_NS (30ULL * 1000000000ULL)

static int run_detach(struct sg_config *cfg, int purge)
{
	struct sg_maps maps;
	char err[SG_ERR_LEN * 2];
	int failed;

	if (sg_maps_open(cfg->bpffs_root, &maps, err, sizeof(err))) {
		if (purge) {
			sg_info("nothing attached from %s", cfg->bpffs_root);
			sg_instance_forget(cfg->bpffs_root);
			return sg_bpffs_purge(cfg->bpffs_root) ? 1 : 0;
		}
		sg_err("%s", err);
		return 1;
	}
	failed = sg_detach_all(&maps);
	sg_maps_close(&maps);
	if (cfg->proxy)
		sg_routing_remove(cfg);
	if (failed) {
		sg_err("%d interface(s) could not be detached; the pins are kept", failed);
		return 1;
	}
	if (purge && sg_bpffs_purge(cfg->bpffs_root))
		return 1;
	if (purge)
		sg_instance_forget(cfg->bpffs_root);
	sg_info("detached%s", purge ? " and removed the pinned maps" : "");
	return 0;
}

/* --check-upgrade: what an upgrade in place asks of the new binary before
 * it is executed: the configuration (already read) and the programs loaded
 * against the pinned maps, nothing attached. */
static int check_upgrade(const struct sg_config *cfg)
{
	struct sg_loader ld = { .dry_run = 1 };

	if (sg_loader_open(&ld, cfg))
		return 1;
	sg_loader_close(&ld);
	sg_info("configuration is valid, and the maps pinned at %s suit this binary",
		cfg->bpffs_root);
	return 0;
}

/* --upgrade: SIGUSR2 to the daemon running on this bpffs_root (what a
 * package's postinst runs once the new binary is in place). */
static int signal_upgrade(const struct sg_config *cfg)
{
	int pid = sg_instance_running(cfg->bpffs_root);

	if (pid <= 0) {
		sg_err("no smtpguardd runs with bpffs_root = %s: nothing to upgrade (start it)",
		       cfg->bpffs_root);
		return 1;
	}
	if (kill(pid, SIGUSR2)) {
		sg_err("signalling smtpguardd %d: %s", pid, strerror(errno));
		return 1;
	}
	sg_info("asked smtpguardd %d to upgrade in place; its log says how it went", pid);
	return 0;
}

static int make_signalfd(void)
{
	sigset_t mask;

	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGUSR2);
	if (sigprocmask(SIG_BLOCK, &mask, NULL))
		return -1;
	return signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
}

/* The main thread's loop: signals, interfaces that come and go, the GC. */
struct main_loop {
	struct daemon *d;
	int argc;
	char **argv;
	struct sg_loop *loop;
	struct sg_watch signals, links;
	struct sg_timer gc;
	struct sg_timer watchdog;	/* the service manager's, when it watches */
	uint64_t watchdog_ns;
	int running;
};

static void on_signal(struct sg_watch *watch, uint32_t events)
{
	struct main_loop *m = watch->ctx;
	struct signalfd_siginfo si;

	(void)events;
	while (read(watch->fd, &si, sizeof(si)) == sizeof(si)) {
		if (si.ssi_signo == SIGHUP)
			daemon_reload(m->d, m->argc, m->argv);
		else if (si.ssi_signo == SIGUSR2)
			daemon_upgrade(m->d, m->argc, m->argv);
		else
			m->running = 0;
	}
}

static void on_links(struct sg_watch *watch, uint32_t events)
{
	struct main_loop *m = watch->ctx;

	(void)events;
	sg_netwatch_read(watch->fd, daemon_on_link, m->d);
}

static void on_gc(struct sg_timer *timer)
{
	struct main_loop *m = timer->ctx;

	sg_loop_timer_in(m->loop, &m->gc, m->d->cfg.gc_interval_ns);
	sg_gc_sources(&m->d->ld.maps, m->d->cfg.state_idle_timeout_ns);
	sg_bindings_gc(&m->d->ld.maps, m->d->cfg.source_learn_idle_ns);
}

/* Pinged from this loop's own timer: a loop stuck anywhere stops the
 * pings, and the service manager restarts the daemon. */
static void on_watchdog(struct sg_timer *timer)
{
	struct main_loop *m = timer->ctx;

	sg_notify_watchdog();
	sg_loop_timer_in(m->loop, &m->watchdog, m->watchdog_ns);
}

int main(int argc, char **argv)
{
	struct daemon d = {};
	struct main_loop m = { .d = &d, .argc = argc, .argv = argv, .running = 1 };
	int detach = 0, purge = 0, check_only = 0, ret;
	int sig_fd = -1, nl_fd = -1, lock_fd = -1;
	char takeover[64] = "";
	ssize_t self_len;
	struct sg_proxy_process *proxy = NULL;
	char err[SG_ERR_LEN * 2];
	struct sg_metrics_server *metrics = NULL;

	sg_log_init("smtpguardd");
	/* a write to a socket its peer reset is an error to handle, not a
	 * signal that ends every session (OpenSSL and splice write without
	 * MSG_NOSIGNAL) */
	signal(SIGPIPE, SIG_IGN);
	ret = daemon_parse_args(argc, argv, &d.cfg, &detach, &purge, &check_only);
	if (ret)
		return ret;
	if (check_only == SG_RUN_CHECK_UPGRADE)
		return check_upgrade(&d.cfg);
	if (check_only == SG_RUN_SIGNAL_UPGRADE)
		return signal_upgrade(&d.cfg);
	if (check_only) {
		sg_info("configuration is valid");
		return 0;
	}
	/* an upgrade in place (upgrade.c) left the old proxy running */
	if (getenv(SG_TAKEOVER_ENV)) {
		snprintf(takeover, sizeof(takeover), "%s", getenv(SG_TAKEOVER_ENV));
		unsetenv(SG_TAKEOVER_ENV);
	}
	self_len = readlink("/proc/self/exe", d.self_path, sizeof(d.self_path) - 1);
	d.self_path[self_len > 0 ? self_len : 0] = '\0';
	sg_attach_init_logging();
	if (sg_privileges_limit_daemon(err, sizeof(err)))
		sg_warn("%s; the daemon keeps every capability it was given", err);
	lock_fd = sg_instance_lock(d.cfg.bpffs_root);
	if (lock_fd < 0)
		return 1;
	if (detach) {
		ret = run_detach(&d.cfg, purge);
		close(lock_fd);
		return ret;
	}

	if (sg_bpffs_prepare(d.cfg.bpffs_root) || sg_loader_open(&d.ld, &d.cfg)) {
		close(lock_fd);
		return 1;
	}
	ret = 1;
	d.file_fail_mode = d.cfg.fail_mode;
	/* the proxy's user; without one only the pins' group is missing */
	if (sg_identity_resolve(d.cfg.proxy_user, &d.proxy_id, err, sizeof(err))) {
		if (d.cfg.proxy) {
			sg_err("%s", err);
			goto cleanup;
		}
		sg_warn("%s; the pins stay root's alone", err);
	} else {
		sg_pins_share(d.cfg.bpffs_root, d.proxy_id.gid);
	}
	if (sg_loader_apply_config(&d.ld, &d.cfg) || sg_bindings_reload(&d.cfg, &d.bindings))
		goto cleanup;
	daemon_tenants_load(&d);
	m.loop = sg_loop_new();
	sig_fd = make_signalfd();
	nl_fd = sg_netwatch_open();
	if (!m.loop || sig_fd < 0 || nl_fd < 0) {
		sg_err("setting up the event loop, signal or netlink descriptors failed: %s",
		       strerror(errno));
		goto cleanup;
	}
	sg_watch_init(&m.signals, sig_fd, on_signal, &m);
	sg_watch_init(&m.links, nl_fd, on_links, &m);
	sg_timer_init(&m.gc, on_gc, &m);
	sg_timer_init(&m.watchdog, on_watchdog, &m);
	m.watchdog_ns = sg_notify_watchdog_interval_ns();
	if (sg_loop_watch(m.loop, &m.signals, EPOLLIN) || sg_loop_watch(m.loop, &m.links, EPOLLIN) ||
	    sg_loop_timer_in(m.loop, &m.gc, d.cfg.gc_interval_ns) ||
	    (m.watchdog_ns && sg_loop_timer_in(m.loop, &m.watchdog, m.watchdog_ns))) {
		sg_err("registering the signal and netlink descriptors failed: %s",
		       strerror(errno));
		goto cleanup;
	}
	if (d.cfg.proxy) {
		if (sg_routing_install(&d.cfg))
			goto cleanup;
		proxy = sg_proxy_process_start(m.loop, &d.cfg, &d.ld.maps, &d.proxy_id);
		if (!proxy)
			goto cleanup;
		d.proxy = proxy;
	}
	/* the new proxy holds the listeners' slots: the old one may drain */
	if (takeover[0])
		sg_proxy_process_retire(m.loop, takeover);
	{
		int off;

		d.shared = sg_shared_start(m.loop, &d.cfg, &d.ld.maps, &off);
		if (!d.shared && !off)
			goto cleanup;
		sg_shared_use_tenants(d.shared, &d.tenants);
	}
	if (d.cfg.metrics_listen[0] &&
	    !(metrics = sg_metrics_serve(m.loop, d.cfg.metrics_listen, &d.ld.maps)))
		goto cleanup;
	daemon_reconcile(&d);
	sg_netwatch_enumerate(daemon_on_link, &d);
	sg_bindings_apply(&d.ld.maps, &d.bindings);
	if (daemon_reconcile_start(&d, m.loop))
		goto cleanup;
	sg_info("ready: %d interface(s) attached at %s, maps pinned at %s", d.attached,
		sg_attach_mode_name(d.cfg.attach_mode), d.cfg.bpffs_root);
	sg_notify_ready("running: %d interface(s) attached at %s%s", d.attached,
			sg_attach_mode_name(d.cfg.attach_mode), proxy ? ", proxy up" : "");

	while (m.running) {
		if (sg_loop_run_once(m.loop, UINT64_MAX) < 0) {
			sg_err("the main event loop failed: %s", strerror(errno));
			break;
		}
	}
	/* the proxy may wait shutdown_timeout for the MX's replies to dots
	 * already sent; the manager's stop timeout grows by that */
	sg_notify_stopping(proxy ? d.cfg.shutdown_timeout_ns + SG_STOP_MARGIN_NS : 0);
	ret = 0;
	if (d.cfg.detach_on_exit) {
		if (sg_detach_all(&d.ld.maps))
			ret = 1;
		if (d.cfg.proxy)
			sg_routing_remove(&d.cfg);
		sg_info("stopped; detached from every interface");
	} else {
		sg_info("stopped; the classifier stays attached and the maps stay pinned "
			"(detach_on_exit = no)");
	}
cleanup:
	sg_shared_stop(d.shared);
	sg_metrics_stop(metrics);
	sg_proxy_process_stop(proxy);
	sg_loop_free(m.loop);
	if (sig_fd >= 0)
		close(sig_fd);
	if (nl_fd >= 0)
		close(nl_fd);
	sg_loader_close(&d.ld);
	sg_bindings_free(&d.bindings);
	sg_tenants_free(d.tenants);
	close(lock_fd);
	return ret;
}
