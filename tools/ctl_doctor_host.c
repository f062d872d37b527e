/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * ctl_doctor_host.c - doctor's checks of the host around the daemon (see
 * ctl_doctor.h): sysctls, the interfaces against the patterns, the proxy's
 * policy routing, milters reachable, the certificate's expiry, the
 * metrics listener. Everything is read in the network namespace doctor
 * runs in (the daemon's, when run beside it): interfaces through
 * rtnetlink (if_nameindex), sysctls from /proc/sys/net, routes from ip(8).
 */
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <net/if.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include "ctl_doctor.h"
#include "parse.h"
#include "uplink.h"

static int matches(char patterns[][SG_PATTERN_LEN], int n, const char *name)
{
	for (int i = 0; i < n; i++)
		if (fnmatch(patterns[i], name, 0) == 0)
			return 1;
	return 0;
}

/* rp_filter as it applies to an interface: the larger of all's and its own. */
static int rp_filter_of(const char *ifname)
{
	char path[128];
	int all = sg_read_sysctl("/proc/sys/net/ipv4/conf/all/rp_filter"), own;

	snprintf(path, sizeof(path), "/proc/sys/net/ipv4/conf/%s/rp_filter", ifname);
	own = sg_read_sysctl(path);
	return own > all ? own : all;
}

void check_sysctls(struct doctor *d)
{
	int forward = sg_read_sysctl("/proc/sys/net/ipv4/ip_forward");
	int valid_mark = sg_read_sysctl("/proc/sys/net/ipv4/conf/all/src_valid_mark");
	int nf_iptables = sg_read_sysctl("/proc/sys/net/bridge/bridge-nf-call-iptables");
	struct if_nameindex *ifs = if_nameindex();
	char strict[256] = "";

	if (forward == 1)
		finding(d, DOCTOR_OK, "sysctl ip_forward", NULL, "net.ipv4.ip_forward = 1");
	else
		finding(d, DOCTOR_WARN, "sysctl ip_forward", "sysctl -w net.ipv4.ip_forward=1, and "
			"keep it in /etc/sysctl.d/ (a bridged host does not need it)",
			"net.ipv4.ip_forward = %d: this host does not route its VMs' traffic", forward);
	/* rp_filter alone is fine; with src_valid_mark it drops steered flows
	 * (KERNEL-NOTES) on the interfaces that carry them */
	for (struct if_nameindex *i = ifs; i && i->if_index; i++) {
		size_t used = strlen(strict);

		if (!matches(d->cfg.interfaces, d->cfg.n_interfaces, i->if_name) &&
		    !matches(d->cfg.uplinks, d->cfg.n_uplinks, i->if_name))
			continue;
		if (rp_filter_of(i->if_name) > 0 && used + IF_NAMESIZE + 2 < sizeof(strict))
			snprintf(strict + used, sizeof(strict) - used, "%s%s", used ? " " : "",
				 i->if_name);
	}
	if (ifs)
		if_freenameindex(ifs);
	if (valid_mark == 1 && strict[0] && d->cfg.proxy)
		finding(d, DOCTOR_FAIL, "sysctl src_valid_mark", "sysctl -w "
			"net.ipv4.conf.all.src_valid_mark=0 (or rp_filter=0 on those interfaces)",
			"net.ipv4.conf.all.src_valid_mark = 1 with rp_filter on %s: flows steered "
			"to the proxy are dropped", strict);
	else
		finding(d, DOCTOR_OK, "sysctl rp_filter", NULL, "src_valid_mark = %d; rp_filter on "
			"in: %s", valid_mark, strict[0] ? strict : "none of the VM-facing or uplink "
			"interfaces");
	if (nf_iptables < 0)
		finding(d, DOCTOR_OK, "br_netfilter", NULL, "not loaded: bridged frames skip "
			"iptables (both ways work)");
	else
		finding(d, DOCTOR_OK, "br_netfilter", NULL, "loaded, bridge-nf-call-iptables = %d "
			"(both work: on a bridged host smtpguard also attaches to the bridge itself "
			"for it)", nf_iptables);
}

/* uplink not set: the one smtpguardd found at start, found the same way */
void check_uplink_found(struct doctor *d)
{
	char why[256], err[SG_ERR_LEN];

	if (!d->cfg.proxy || d->cfg.n_uplinks)
		return;
	if (sg_uplink_detect(&d->cfg, why, sizeof(why), err, sizeof(err)))
		finding(d, DOCTOR_FAIL, "uplink", "set uplink = the interface the MX's replies come "
			"in on", "uplink is not set and cannot be found: %s", err);
	else
		finding(d, DOCTOR_OK, "uplink found", NULL, "uplink is not set; from the routes: %s",
			why);
}

void check_interfaces(struct doctor *d)
{
	struct if_nameindex *ifs = if_nameindex();
	char missing[256] = "", missing_up[256] = "";
	int vm = 0, up = 0, attached = 0, stale = 0;
	__u32 key, prev;
	int have_prev = 0;

	if (!d->have_maps) {
		if (ifs)
			if_freenameindex(ifs);
		return;
	}
	for (struct if_nameindex *i = ifs; i && i->if_index; i++) {
		int is_vm = matches(d->cfg.interfaces, d->cfg.n_interfaces, i->if_name);
		int is_up = d->cfg.proxy && matches(d->cfg.uplinks, d->cfg.n_uplinks, i->if_name);
		struct sg_attachment a;
		__u32 idx = i->if_index;
		char *list = is_vm ? missing : missing_up;
		size_t used = strlen(list);

		if (!is_vm && !is_up)
			continue;
		vm += is_vm;
		up += !is_vm;
		if (bpf_map_lookup_elem(d->ctl->maps.attachments, &idx, &a) == 0) {
			attached++;
			continue;
		}
		if (used + IF_NAMESIZE + 2 < 256)
			snprintf(list + used, 256 - used, "%s%s", used ? " " : "", i->if_name);
	}
	while (bpf_map_get_next_key(d->ctl->maps.attachments, have_prev ? &prev : NULL, &key) == 0) {
		char name[IF_NAMESIZE];

		prev = key;
		have_prev = 1;
		stale += !if_indextoname(key, name);
	}
	if (ifs)
		if_freenameindex(ifs);
	if (missing[0])
		finding(d, DOCTOR_FAIL, "interfaces", "read smtpguardd's log for why, then restart "
			"it (it attaches to every match)", "%s match interfaces = %s... but the "
			"classifier is not attached: their VMs' mail is not filtered", missing,
			d->cfg.interfaces[0]);
	else if (!vm)
		finding(d, DOCTOR_WARN, "interfaces", "check the interfaces patterns (ip link shows "
			"the names), or start a VM", "no interface matches interfaces = %s%s: "
			"nothing is filtered yet", d->cfg.n_interfaces ? d->cfg.interfaces[0] : "",
			d->cfg.n_interfaces > 1 ? " ..." : "");
	else
		finding(d, DOCTOR_OK, "interfaces", NULL, "%d VM-facing interface(s) match, the "
			"classifier is attached to all", vm);
	if (d->cfg.proxy && missing_up[0])
		finding(d, DOCTOR_FAIL, "uplink", "read smtpguardd's log, then restart it",
			"%s match uplink but are not attached: the MX's replies to the proxy "
			"never reach it", missing_up);
	else if (d->cfg.proxy && d->cfg.n_uplinks && !up)
		finding(d, DOCTOR_FAIL, "uplink", "correct uplink = (ip link shows the names)",
			"no interface matches uplink = %s%s: the MX's replies to the proxy never "
			"reach it", d->cfg.uplinks[0], d->cfg.n_uplinks > 1 ? " ..." : "");
	else if (d->cfg.proxy && d->cfg.n_uplinks)
		finding(d, DOCTOR_OK, "uplink", NULL, "%d uplink interface(s) match, the uplink "
			"program is attached to all", up);

	if (stale)
		finding(d, DOCTOR_WARN, "attachments", "restart smtpguardd: it forgets interfaces "
			"that are gone", "%d attachment(s) name interfaces that no longer exist", stale);
}

/* ip(8)'s output for args, in out; -1 when ip cannot be run. */
static int run_ip(const char *args, char *out, size_t len)
{
	static const char *const paths[] = { "/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip" };
	char cmd[256];
	size_t n = 0;
	FILE *p;

	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		if (access(paths[i], X_OK))
			continue;
		snprintf(cmd, sizeof(cmd), "%s %s 2>/dev/null", paths[i], args);
		p = popen(cmd, "r");
		if (!p)
			return -1;
		n = fread(out, 1, len - 1, p);
		out[n] = '\0';
		pclose(p);
		return 0;
	}
	return -1;
}

static void check_family_routing(struct doctor *d, const char *family, const char *any)
{
	char args[96], out[8192], want[64], check[32], todo[1024];

	snprintf(check, sizeof(check), "routing %s", family[1] == '6' ? "IPv6" : "IPv4");
	snprintf(todo, sizeof(todo), "restart smtpguardd (it installs them), or: ip %s rule add "
		 "fwmark 0x%x lookup %u; ip %s route replace local %s dev lo table %u", family,
		 d->cfg.steer_mark, d->cfg.route_table, family, any, d->cfg.route_table);
	snprintf(args, sizeof(args), "%s rule show", family);
	if (run_ip(args, out, sizeof(out))) {
		finding(d, DOCTOR_WARN, check, "install iproute2", "cannot run ip(8) to read the "
			"policy routing");
		return;
	}
	snprintf(want, sizeof(want), "fwmark 0x%x lookup %u", d->cfg.steer_mark, d->cfg.route_table);
	if (!strstr(out, want)) {
		finding(d, DOCTOR_FAIL, check, todo, "no rule '%s': flows steered to the proxy are "
			"forwarded with a socket attached, and dropped", want);
		return;
	}
	snprintf(args, sizeof(args), "%s route show table %u", family, d->cfg.route_table);
	run_ip(args, out, sizeof(out));
	if (!strstr(out, "local") || !strstr(out, "dev lo")) {
		finding(d, DOCTOR_FAIL, check, todo, "table %u has no local route on lo: steered "
			"flows never reach the proxy", d->cfg.route_table);
		return;
	}
	finding(d, DOCTOR_OK, check, NULL, "rule '%s' and its local route are in place", want);
}

void check_routing(struct doctor *d)
{
	if (!d->cfg.proxy)
		return;
	check_family_routing(d, "-4", "0.0.0.0/0");
	if (access("/proc/sys/net/ipv6", F_OK) == 0)
		check_family_routing(d, "-6", "::/0");
}

/* Connects to addr within timeout_ms: 0, or an errno. */
static int try_connect(const struct sockaddr_storage *addr, socklen_t len, int timeout_ms)
{
	int fd = socket(addr->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), err = 0;
	socklen_t elen = sizeof(err);
	struct pollfd p;

	if (fd < 0)
		return errno;
	if (connect(fd, (const struct sockaddr *)addr, len) && errno != EINPROGRESS) {
		err = errno;
		close(fd);
		return err;
	}
	p.fd = fd;
	p.events = POLLOUT;
	if (poll(&p, 1, timeout_ms) <= 0)
		err = ETIMEDOUT;
	else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen))
		err = errno;
	close(fd);
	return err;
}

void check_milters(struct doctor *d)
{
	static const char *const actions[] = { "tempfail", "accept", "reject" };

	for (int i = 0; i < d->cfg.milters.n; i++) {
		const char *spec = d->cfg.milters.addr[i];
		struct sockaddr_storage addr;
		char err[SG_ERR_LEN], todo[1024];
		socklen_t len;
		int e;

		if (sg_parse_milter_address(spec, &addr, &len, err, sizeof(err)))
			continue;	/* the config check said so */
		e = try_connect(&addr, len, 2000);
		if (!e) {
			finding(d, DOCTOR_OK, "milter", NULL, "%s accepts connections", spec);
			continue;
		}
		snprintf(todo, sizeof(todo), "start the milter at %s, or correct milters =; until "
			 "then milter_default_action = %s applies to every message", spec,
			 actions[d->cfg.milter_default_action % 3]);
		finding(d, DOCTOR_FAIL, "milter", todo, "%s cannot be reached: %s", spec, strerror(e));
	}
}

void check_certificate(struct doctor *d)
{
	const char *path = d->cfg.tls_cert_file;
	int days = 0, secs = 0;
	char todo[1024];
	X509 *cert;
	FILE *f;

	if (!path[0])
		return;
	snprintf(todo, sizeof(todo), "renew the certificate, replace %s and its key, then "
		 "SIGHUP smtpguardd (no session is dropped)", path);
	f = fopen(path, "r");
	cert = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
	if (f)
		fclose(f);
	if (!cert) {
		finding(d, DOCTOR_FAIL, "certificate", "give tls_cert_file a PEM certificate "
			"(chain) smtpguardd can read", "cannot read a certificate from %s%s%s", path,
			f ? "" : ": ", f ? "" : strerror(errno));
		return;
	}
	if (!ASN1_TIME_diff(&days, &secs, NULL, X509_get0_notAfter(cert))) {
		X509_free(cert);
		finding(d, DOCTOR_FAIL, "certificate", todo, "%s: its expiry cannot be read", path);
		return;
	}
	X509_free(cert);
	if (days < 0 || (days == 0 && secs <= 0))
		finding(d, DOCTOR_FAIL, "certificate", todo, "%s expired %d day(s) ago: VMs that "
			"verify it fail their STARTTLS", path, -days);
	else if (days < 30)
		finding(d, DOCTOR_WARN, "certificate", todo, "%s expires in %d day(s)", path, days);
	else
		finding(d, DOCTOR_OK, "certificate", NULL, "%s is valid for %d more days", path, days);
}

void check_metrics_listener(struct doctor *d)
{
	struct sockaddr_storage addr;
	char spec[SG_LISTEN_LEN + 8], err[SG_ERR_LEN];
	socklen_t len;
	int e;

	if (!d->cfg.metrics_listen[0])
		return;
	snprintf(spec, sizeof(spec), "inet:%s", d->cfg.metrics_listen);
	if (sg_parse_milter_address(spec, &addr, &len, err, sizeof(err)))
		return;
	e = try_connect(&addr, len, 2000);
	if (e)
		finding(d, DOCTOR_FAIL, "metrics", "read smtpguardd's log (is the port taken?)",
			"nothing answers at metrics_listen = %s: %s", d->cfg.metrics_listen,
			strerror(e));
	else
		finding(d, DOCTOR_OK, "metrics", NULL, "served at http://%s/metrics",
			d->cfg.metrics_listen);
}
