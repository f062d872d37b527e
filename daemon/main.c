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
#include "proxy.h"
#include "tls.h"
#include "routing.h"

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

static int make_signalfd(void)
{
	sigset_t mask;

	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGHUP);
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
}

int main(int argc, char **argv)
{
	struct daemon d = {};
	struct main_loop m = { .d = &d, .argc = argc, .argv = argv, .running = 1 };
	int detach = 0, purge = 0, check_only = 0, ret;
	int sig_fd = -1, nl_fd = -1, lock_fd = -1;
	struct sg_proxy *proxy = NULL;
	struct sg_metrics_server *metrics = NULL;

	sg_log_init("smtpguardd");
	/* a write to a socket its peer reset is an error to handle, not a
	 * signal that ends every session (OpenSSL and splice write without
	 * MSG_NOSIGNAL) */
	signal(SIGPIPE, SIG_IGN);
	ret = daemon_parse_args(argc, argv, &d.cfg, &detach, &purge, &check_only);
	if (ret)
		return ret;
	if (check_only) {
		sg_info("configuration is valid");
		return 0;
	}
	sg_attach_init_logging();
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
	if (sg_loader_apply_config(&d.ld, &d.cfg))
		goto cleanup;
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
	if (sg_loop_watch(m.loop, &m.signals, EPOLLIN) || sg_loop_watch(m.loop, &m.links, EPOLLIN) ||
	    sg_loop_timer_in(m.loop, &m.gc, d.cfg.gc_interval_ns)) {
		sg_err("registering the signal and netlink descriptors failed: %s",
		       strerror(errno));
		goto cleanup;
	}
	if (d.cfg.proxy) {
		if (sg_routing_install(&d.cfg))
			goto cleanup;
		proxy = sg_proxy_start(&d.cfg, &d.ld.maps);
		if (!proxy)
			goto cleanup;
		d.proxy = proxy;
	}
	if (d.cfg.metrics_listen[0] &&
	    !(metrics = sg_metrics_serve(m.loop, d.cfg.metrics_listen, &d.ld.maps)))
		goto cleanup;
	daemon_reconcile(&d);
	sg_netwatch_enumerate(daemon_on_link, &d);
	sg_info("ready: %d interface(s) attached at %s, maps pinned at %s", d.attached,
		sg_attach_mode_name(d.cfg.attach_mode), d.cfg.bpffs_root);

	while (m.running) {
		if (sg_loop_run_once(m.loop, UINT64_MAX) < 0) {
			sg_err("the main event loop failed: %s", strerror(errno));
			break;
		}
	}
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
	sg_metrics_stop(metrics);
	sg_proxy_stop(proxy);
	sg_loop_free(m.loop);
	if (sig_fd >= 0)
		close(sig_fd);
	if (nl_fd >= 0)
		close(nl_fd);
	sg_loader_close(&d.ld);
	close(lock_fd);
	return ret;
}
