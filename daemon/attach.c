/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* attach.c - TC and XDP attachment of the classifier (see attach.h). */
#include <errno.h>
#include <net/if.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <linux/if_link.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <xdp/libxdp.h>
#include "attach.h"
#include "classifier_tc.skel.h"
#include "classifier_xdp.skel.h"
#include "log.h"
#include "netwatch.h"
#include "probe.h"

/* Our TC filter's identity on clsact ingress (egress for a macvtap); one
 * per interface. */
#define SG_TC_HANDLE	0x5347
#define SG_TC_PRIORITY	0x5347
/* smtpguard_xdp or smtpguard_xdp_locked; the kernel keeps 15 characters */
#define SG_XDP_PROG_PREFIX "smtpguard_xdp"

static int is_our_xdp_prog(const struct xdp_program *prog)
{
	return strncmp(xdp_program__name(prog), SG_XDP_PROG_PREFIX,
		       strlen(SG_XDP_PROG_PREFIX)) == 0;
}

/* Picks the XDP program this kernel can load (see classify.bpf.h) and sets
 * the object up to load only that one. */
static struct bpf_program *xdp_choose_variant(struct classifier_xdp *skel)
{
	int lockfree = sg_probe_lockfree_bucket();

	skel->rodata->sg_lockfree_bucket = (__u8)lockfree;
	bpf_program__set_autoload(lockfree ? skel->progs.smtpguard_xdp_locked :
					     skel->progs.smtpguard_xdp, false);
	return lockfree ? skel->progs.smtpguard_xdp : skel->progs.smtpguard_xdp_locked;
}

/* While libxdp probes for its dispatcher, libbpf's load failures are
 * expected; they are summed up in one warning afterwards. */
static int libbpf_quiet;

static int sg_libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	char buf[1024];

	if (level == LIBBPF_DEBUG)
		return 0;
	vsnprintf(buf, sizeof(buf), fmt, ap);
	buf[strcspn(buf, "\n")] = '\0';
	if (level == LIBBPF_WARN && !libbpf_quiet)
		sg_warn("%s", buf);
	else
		sg_debug("%s", buf);
	return 0;
}

static int sg_libxdp_print(enum libxdp_print_level level, const char *fmt, va_list ap)
{
	char buf[1024];

	if (level == LIBXDP_DEBUG)
		return 0;
	vsnprintf(buf, sizeof(buf), fmt, ap);
	buf[strcspn(buf, "\n")] = '\0';
	sg_debug("libxdp: %s", buf);
	return 0;
}

void sg_attach_init_logging(void)
{
	libbpf_set_print(sg_libbpf_print);
	libxdp_set_print(sg_libxdp_print);
}

static int record(const struct sg_maps *maps, int ifindex, const char *ifname,
		  int mode, int prog_fd)
{
	struct bpf_prog_info info = {};
	__u32 len = sizeof(info);
	struct sg_attachment a = { .mode = (__u32)mode };
	__u32 key = (__u32)ifindex;

	if (prog_fd >= 0 && bpf_obj_get_info_by_fd(prog_fd, &info, &len) == 0)
		a.prog_id = info.id;
	snprintf(a.ifname, sizeof(a.ifname), "%s", ifname);
	if (bpf_map_update_elem(maps->attachments, &key, &a, BPF_ANY)) {
		sg_err("recording the attachment to %s failed: %s", ifname, strerror(errno));
		return -1;
	}
	return 0;
}

/* Where on TC a mode's filter sits: egress for a macvtap's VM, else ingress. */
static enum bpf_tc_attach_point tc_point(int mode)
{
	return mode == SG_ATTACH_TC_EGRESS ? BPF_TC_EGRESS : BPF_TC_INGRESS;
}

static const char *tc_point_name(int mode)
{
	return mode == SG_ATTACH_TC_EGRESS ? "egress" : "ingress";
}

static int tc_attach(int prog_fd, int ifindex, const char *ifname, int mode)
{
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = tc_point(mode));
	LIBBPF_OPTS(bpf_tc_opts, opts, .handle = SG_TC_HANDLE, .priority = SG_TC_PRIORITY,
		    .prog_fd = prog_fd, .flags = BPF_TC_F_REPLACE);
	int ret;

	libbpf_quiet = 1;	/* EEXIST (clsact is there already) is the usual case */
	ret = bpf_tc_hook_create(&hook);
	libbpf_quiet = 0;
	if (ret && ret != -EEXIST) {
		sg_err("creating the clsact qdisc on %s failed: %s", ifname, strerror(-ret));
		return -1;
	}
	ret = bpf_tc_attach(&hook, &opts);
	if (ret) {
		sg_err("attaching at TC %s of %s failed: %s", tc_point_name(mode), ifname,
		       strerror(-ret));
		return -1;
	}
	return 0;
}

static int tc_detach(int ifindex, const char *ifname, int mode)
{
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = tc_point(mode));
	LIBBPF_OPTS(bpf_tc_opts, opts, .handle = SG_TC_HANDLE, .priority = SG_TC_PRIORITY);
	int ret = bpf_tc_detach(&hook, &opts);

	if (ret && ret != -ENOENT && ret != -ENODEV && ret != -EINVAL) {
		sg_err("detaching from TC %s of %s failed: %s", tc_point_name(mode), ifname,
		       strerror(-ret));
		return -1;
	}
	return 0;
}

/* Ours among what is attached at XDP on ifindex, or NULL; *mp to close. */
static struct xdp_program *xdp_find_ours(int ifindex, struct xdp_multiprog **mp)
{
	struct xdp_program *prog;

	*mp = xdp_multiprog__get_from_ifindex(ifindex);
	if (libxdp_get_error(*mp)) {
		*mp = NULL;
		return NULL;
	}
	if (xdp_multiprog__is_legacy(*mp)) {
		prog = xdp_multiprog__main_prog(*mp);
		return prog && is_our_xdp_prog(prog) ? prog : NULL;
	}
	for (prog = xdp_multiprog__next_prog(NULL, *mp); prog;
	     prog = xdp_multiprog__next_prog(prog, *mp))
		if (is_our_xdp_prog(prog))
			return prog;
	return NULL;
}

static int xdp_detach(int ifindex, const char *ifname)
{
	struct xdp_multiprog *mp;
	struct xdp_program *ours = xdp_find_ours(ifindex, &mp);
	int ret = 0;

	if (!ours)
		goto cleanup;
	if (xdp_multiprog__is_legacy(mp))
		ret = xdp_multiprog__detach(mp);
	else
		ret = xdp_program__detach(ours, ifindex, xdp_multiprog__attach_mode(mp), 0);
	if (ret)
		sg_err("detaching from XDP of %s failed: %s", ifname, strerror(-ret));
cleanup:
	xdp_multiprog__close(mp);
	return ret ? -1 : 0;
}

/*
 * A restart finds our program already attached. The same code (same tag) is
 * kept, so the fast path never stops; other code (an upgrade) replaces it
 * atomically where XDP runs without libxdp's dispatcher. Returns 0 when
 * done, 1 when the caller must attach anew (dispatcher mode), -1 on error.
 */
static int xdp_keep_or_replace(const struct sg_config *cfg, int ifindex, const char *ifname,
			       struct xdp_multiprog *mp, struct xdp_program *old,
			       int *prog_id)
{
	LIBBPF_OPTS(bpf_object_open_opts, opts, .pin_root_path = cfg->bpffs_root);
	LIBBPF_OPTS(bpf_xdp_attach_opts, xopts, .old_prog_fd = xdp_program__fd(old));
	struct classifier_xdp *skel = classifier_xdp__open_opts(&opts);
	struct bpf_program *chosen = NULL;
	struct bpf_prog_info info = {};
	__u32 len = sizeof(info), flags;
	int ret = -1, fd;

	if (skel)
		chosen = xdp_choose_variant(skel);
	if (!skel || classifier_xdp__load(skel)) {
		sg_err("loading the XDP classifier for %s failed", ifname);
		goto cleanup;
	}
	fd = bpf_program__fd(chosen);
	if (bpf_obj_get_info_by_fd(fd, &info, &len)) {
		sg_err("reading the new XDP program's tag failed: %s", strerror(errno));
		goto cleanup;
	}
	if (memcmp(info.tag, xdp_program__tag(old), sizeof(info.tag)) == 0) {
		*prog_id = (int)xdp_program__id(old);
		sg_info("%s already runs this XDP classifier (id %d): kept", ifname, *prog_id);
		ret = 0;
		goto cleanup;
	}
	if (!xdp_multiprog__is_legacy(mp)) {
		ret = 1;
		goto cleanup;
	}
	flags = XDP_FLAGS_REPLACE | (xdp_multiprog__attach_mode(mp) == XDP_MODE_SKB ?
				     XDP_FLAGS_SKB_MODE : XDP_FLAGS_DRV_MODE);
	ret = bpf_xdp_attach(ifindex, fd, flags, &xopts);
	if (ret) {
		sg_err("replacing the XDP classifier on %s failed: %s", ifname, strerror(-ret));
		ret = -1;
		goto cleanup;
	}
	*prog_id = (int)info.id;
	sg_info("%s: replaced the XDP classifier (id %u -> %u)", ifname,
		xdp_program__id(old), info.id);
cleanup:
	classifier_xdp__destroy(skel);
	return ret;
}

/*
 * Where libxdp's dispatcher is refused (see attach.h), every interface gets
 * the one program as its only XDP program. libxdp would load the object
 * again and probe for its dispatcher for each interface (about 350 ms
 * here, three minutes for 500 interfaces), so once it has fallen back, the
 * classifier is loaded once and attached directly.
 */
static struct {
	int legacy_only;		/* libxdp fell back to a single program */
	struct classifier_xdp *skel;	/* loaded once, kept for the process */
	int prog_fd;
	__u32 prog_id;
} xdp_direct;

static int xdp_attach_direct(const struct sg_config *cfg, int ifindex, const char *ifname,
			     int *prog_id)
{
	LIBBPF_OPTS(bpf_object_open_opts, opts, .pin_root_path = cfg->bpffs_root);
	/* never over another program: that is libxdp's EBUSY too */
	__u32 flags = XDP_FLAGS_UPDATE_IF_NOEXIST |
		      (cfg->xdp_generic ? XDP_FLAGS_SKB_MODE : XDP_FLAGS_DRV_MODE);
	int ret;

	if (!xdp_direct.skel) {
		struct classifier_xdp *skel = classifier_xdp__open_opts(&opts);
		struct bpf_program *chosen = skel ? xdp_choose_variant(skel) : NULL;
		struct bpf_prog_info info = {};
		__u32 len = sizeof(info);

		if (!skel || classifier_xdp__load(skel) ||
		    bpf_obj_get_info_by_fd(bpf_program__fd(chosen), &info, &len)) {
			sg_err("loading the XDP classifier for %s failed", ifname);
			classifier_xdp__destroy(skel);
			return -1;
		}
		xdp_direct.skel = skel;
		xdp_direct.prog_fd = bpf_program__fd(chosen);
		xdp_direct.prog_id = info.id;
	}
	ret = bpf_xdp_attach(ifindex, xdp_direct.prog_fd, flags, NULL);
	if (ret) {
		sg_err("attaching at XDP (%s) of %s failed: %s%s", cfg->xdp_generic ?
		       "generic" : "native", ifname, strerror(-ret),
		       ret == -EBUSY || ret == -EEXIST ? " (another XDP program holds the "
		       "interface and the libxdp dispatcher is not available to share it)" : "");
		return -1;
	}
	*prog_id = (int)xdp_direct.prog_id;
	return 0;
}

static int xdp_attach(const struct sg_config *cfg, int ifindex, const char *ifname,
		      int *prog_id)
{
	LIBBPF_OPTS(bpf_object_open_opts, opts, .pin_root_path = cfg->bpffs_root);
	enum xdp_attach_mode mode = cfg->xdp_generic ? XDP_MODE_SKB : XDP_MODE_NATIVE;
	struct classifier_xdp *skel = NULL;
	struct xdp_program *prog = NULL;
	struct xdp_multiprog *mp;
	__u32 old_id = 0;
	int ret;

	/* nothing at XDP there (the usual case): no need for libxdp's look */
	if (xdp_direct.legacy_only && sg_link_xdp_prog_id(ifindex, &old_id) == 0 && !old_id)
		return xdp_attach_direct(cfg, ifindex, ifname, prog_id);
	prog = xdp_find_ours(ifindex, &mp);
	if (prog) {
		old_id = xdp_program__id(prog);
		ret = xdp_keep_or_replace(cfg, ifindex, ifname, mp, prog, prog_id);
		xdp_multiprog__close(mp);
		if (ret <= 0)
			return ret;
		/* dispatcher mode: attach the new one below, then take the old off */
		prog = NULL;
	}
	xdp_multiprog__close(mp);
	if (xdp_direct.legacy_only)
		return xdp_attach_direct(cfg, ifindex, ifname, prog_id);

	skel = classifier_xdp__open_opts(&opts);
	if (!skel) {
		sg_err("opening the XDP classifier object failed: %s", strerror(errno));
		return -1;
	}
	{
		DECLARE_LIBXDP_OPTS(xdp_program_opts, xopts, .obj = skel->obj,
				    .prog_name = bpf_program__name(xdp_choose_variant(skel)));

		prog = xdp_program__create(&xopts);
	}
	if (libxdp_get_error(prog)) {
		ret = (int)libxdp_get_error(prog);
		prog = NULL;
		sg_err("preparing the XDP program for %s failed: %s", ifname, strerror(-ret));
		goto cleanup;
	}
	libbpf_quiet = 1;
	ret = xdp_program__attach(prog, ifindex, mode, 0);
	libbpf_quiet = 0;
	if (ret) {
		sg_err("attaching at XDP (%s) of %s failed: %s%s", cfg->xdp_generic ?
		       "generic" : "native", ifname, strerror(-ret),
		       ret == -EBUSY || ret == -EEXIST ? " (another XDP program holds the "
		       "interface and the libxdp dispatcher is not available to share it)" : "");
		goto cleanup;
	}
	*prog_id = (int)xdp_program__id(prog);
	mp = xdp_multiprog__get_from_ifindex(ifindex);
	if (!libxdp_get_error(mp) && xdp_multiprog__is_legacy(mp)) {
		sg_warn("%s: libxdp's multi-program dispatcher is not available on this "
			"kernel, so smtpguard is attached as the interface's only XDP program; "
			"another XDP program cannot share %s (nor the interfaces after it: "
			"the same holds for each)", ifname, ifname);
		xdp_direct.legacy_only = 1;
	}
	if (!libxdp_get_error(mp) && old_id) {
		/* dispatcher mode upgrade: the new one runs; take the old one off */
		for (struct xdp_program *p = xdp_multiprog__next_prog(NULL, mp); p;
		     p = xdp_multiprog__next_prog(p, mp))
			if (xdp_program__id(p) == old_id)
				xdp_program__detach(p, ifindex, xdp_multiprog__attach_mode(mp), 0);
	}
	if (!libxdp_get_error(mp))
		xdp_multiprog__close(mp);
cleanup:
	/* the kernel keeps the attached program; our handles can go */
	xdp_program__close(prog);
	classifier_xdp__destroy(skel);
	return ret ? -1 : 0;
}

/*
 * A macvtap's VM: at TC egress of the macvtap, whatever attach says (XDP
 * and TC ingress see only what the VM receives). The one TC program serves
 * both sides; its record tells it which (see sg_tc), so the record is
 * written before the filter goes on. Counting, rate limits, blocks and the
 * source check work there; the proxy cannot take its flows (bpf_sk_assign
 * works at ingress only): the fail mode decides them.
 */
static int tc_egress_attach(struct sg_loader *ld, const struct sg_config *cfg, int ifindex,
			    const char *ifname)
{
	int fd = sg_loader_tc_prog_fd(ld);

	if (record(&ld->maps, ifindex, ifname, SG_ATTACH_TC_EGRESS, fd))
		return -1;
	if (tc_attach(fd, ifindex, ifname, SG_ATTACH_TC_EGRESS)) {
		sg_forget(&ld->maps, ifindex);
		return -1;
	}
	if (cfg->proxy)
		sg_warn("%s is a macvtap: its VM's frames are filtered at TC egress, where the "
			"proxy cannot take them; its scan flows are not scanned (fail_mode = %s "
			"decides them). Give VMs that need scanning a tap on a bridge or a "
			"routed tap", ifname, cfg->fail_mode == SG_FAIL_CLOSED ? "closed" : "open");
	return 0;
}

int sg_attach(struct sg_loader *ld, const struct sg_config *cfg, int ifindex,
	      const char *ifname)
{
	struct sg_attachment old;
	__u32 key = (__u32)ifindex;
	int prog_id = 0, ret, mode = cfg->attach_mode;

	ret = sg_link_tx_only(ifindex);
	if (ret < 0) {
		sg_err("asking the kernel what kind of interface %s is failed", ifname);
		return -1;
	}
	if (ret)
		mode = SG_ATTACH_TC_EGRESS;

	/* switching attach mode: take the other one off first */
	if (bpf_map_lookup_elem(ld->maps.attachments, &key, &old) == 0 && old.mode != (__u32)mode)
		sg_detach(&ld->maps, ifindex);

	if (mode == SG_ATTACH_TC_EGRESS) {
		ret = tc_egress_attach(ld, cfg, ifindex, ifname);
	} else if (mode == SG_ATTACH_TC) {
		ret = tc_attach(sg_loader_tc_prog_fd(ld), ifindex, ifname, SG_ATTACH_TC);
		if (ret)
			return ret;
		ret = record(&ld->maps, ifindex, ifname, SG_ATTACH_TC, sg_loader_tc_prog_fd(ld));
	} else {
		ret = xdp_attach(cfg, ifindex, ifname, &prog_id);
		if (ret)
			return ret;
		ret = record(&ld->maps, ifindex, ifname, SG_ATTACH_XDP, -1);
		if (!ret) {
			struct sg_attachment a;

			if (bpf_map_lookup_elem(ld->maps.attachments, &key, &a) == 0) {
				a.prog_id = (__u32)prog_id;
				bpf_map_update_elem(ld->maps.attachments, &key, &a, BPF_ANY);
			}
		}
	}
	if (!ret) {
		sg_info("attached %s to %s (ifindex %d)", sg_attach_mode_name(mode), ifname,
			ifindex);
		sg_attach_follow_bridge(ld, ifindex);
	}
	return ret;
}

int sg_attach_uplink(struct sg_loader *ld, int ifindex, const char *ifname)
{
	int fd = bpf_program__fd(ld->tc_skel->progs.smtpguard_uplink);

	if (tc_attach(fd, ifindex, ifname, SG_ATTACH_UPLINK) ||
	    record(&ld->maps, ifindex, ifname, SG_ATTACH_UPLINK, fd))
		return -1;
	sg_info("attached uplink to %s (ifindex %d)", ifname, ifindex);
	sg_attach_follow_bridge(ld, ifindex);
	return 0;
}

void sg_attach_follow_bridge_ports(struct sg_loader *ld)
{
	__u32 keys[SG_MAX_ATTACHMENTS], key, next;
	int n = 0, have = 0;

	while (n < SG_MAX_ATTACHMENTS &&
	       bpf_map_get_next_key(ld->maps.attachments, have ? &key : NULL, &next) == 0) {
		keys[n++] = next;
		key = next;
		have = 1;
	}
	for (int i = 0; i < n; i++)
		sg_attach_follow_bridge(ld, (int)keys[i]);
}

/* The bridge program on a bridge, once (again when forced: another tool
 * took it off). */
static int attach_bridge(struct sg_loader *ld, int bridge, int force)
{
	int fd = bpf_program__fd(ld->tc_skel->progs.smtpguard_bridge);
	struct bpf_prog_info info = {};
	__u32 key = (__u32)bridge, len = sizeof(info);
	struct sg_attachment a;
	char name[IF_NAMESIZE];

	/* attached by this run already (a restart attaches its own program) */
	if (!force && bpf_map_lookup_elem(ld->maps.attachments, &key, &a) == 0 &&
	    a.mode == SG_ATTACH_BRIDGE && bpf_obj_get_info_by_fd(fd, &info, &len) == 0 &&
	    info.id == a.prog_id)
		return 0;
	if (!if_indextoname((unsigned int)bridge, name))
		return -1;
	if (tc_attach(fd, bridge, name, SG_ATTACH_BRIDGE) ||
	    record(&ld->maps, bridge, name, SG_ATTACH_BRIDGE, fd))
		return -1;
	sg_info("attached bridge to %s (ifindex %d): steered frames keep their socket with "
		"br_netfilter on", name, bridge);
	return 0;
}

void sg_attach_follow_bridge(struct sg_loader *ld, int ifindex)
{
	struct sg_attachment a;
	__u32 key = (__u32)ifindex;
	unsigned char mac[6];
	int bridge, port;

	if (bpf_map_lookup_elem(ld->maps.attachments, &key, &a) || a.mode == SG_ATTACH_BRIDGE)
		return;
	port = sg_link_bridge_mac(ifindex, mac, &bridge) == 1;
	if (!port)
		bridge = 0;
	if (port == a.bridge_port && memcmp(mac, a.local_mac, 6) == 0 &&
	    (__u32)bridge == a.bridge_ifindex)
		return;
	a.bridge_port = (__u8)port;
	a.bridge_ifindex = (__u32)bridge;
	memcpy(a.local_mac, mac, 6);
	if (bpf_map_update_elem(ld->maps.attachments, &key, &a, BPF_ANY)) {
		sg_err("recording %s's bridge failed: %s", a.ifname, strerror(errno));
		return;
	}
	if (!port) {
		sg_info("%s is no longer a bridge port", a.ifname);
		return;
	}
	sg_info("%s is a bridge port: frames steered to the proxy go to the bridge's address "
		"%02x:%02x:%02x:%02x:%02x:%02x", a.ifname, mac[0], mac[1], mac[2], mac[3],
		mac[4], mac[5]);
	if (attach_bridge(ld, bridge, 0))
		sg_err("attaching the bridge program to ifindex %d failed", bridge);
}

/* Our filter at its handle and priority on TC ingress of ifindex: 1 and its
 * program's id, 0 when there is none (no clsact, or no filter there), -1
 * when the kernel cannot be asked. */
static int tc_query(int ifindex, int mode, __u32 *prog_id)
{
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = tc_point(mode));
	LIBBPF_OPTS(bpf_tc_opts, opts, .handle = SG_TC_HANDLE, .priority = SG_TC_PRIORITY);
	int ret;

	libbpf_quiet = 1;
	ret = bpf_tc_query(&hook, &opts);
	libbpf_quiet = 0;
	*prog_id = 0;
	if (ret == 0) {
		*prog_id = opts.prog_id;
		return 1;
	}
	/* ENOENT: no filter there; EINVAL: no clsact qdisc at all */
	return ret == -ENOENT || ret == -EINVAL ? 0 : -1;
}

int sg_attach_intact(int ifindex, const struct sg_attachment *a)
{
	struct xdp_multiprog *mp;
	__u32 id;
	int ret;

	if (a->mode == SG_ATTACH_XDP) {
		/* one netlink query answers the usual cases; libxdp's look
		 * (it dumps every interface and opens every program) only a
		 * dispatcher's */
		if (sg_link_xdp_prog_id(ifindex, &id) == 0) {
			if (!id)
				return 0;
			if (id == a->prog_id)
				return 1;
		}
		ret = xdp_find_ours(ifindex, &mp) != NULL;
		xdp_multiprog__close(mp);
		return ret;
	}
	ret = tc_query(ifindex, (int)a->mode, &id);
	if (ret <= 0)
		return ret;
	return !a->prog_id || id == a->prog_id;
}

int sg_attach_restore(struct sg_loader *ld, const struct sg_config *cfg, int ifindex,
		      const struct sg_attachment *a)
{
	switch (a->mode) {
	case SG_ATTACH_UPLINK:
		return sg_attach_uplink(ld, ifindex, a->ifname);
	case SG_ATTACH_BRIDGE:
		return attach_bridge(ld, ifindex, 1);
	default:
		return sg_attach(ld, cfg, ifindex, a->ifname);
	}
}

void sg_forget(const struct sg_maps *maps, int ifindex)
{
	__u32 key = (__u32)ifindex;

	bpf_map_delete_elem(maps->attachments, &key);
}

int sg_detach(const struct sg_maps *maps, int ifindex)
{
	struct sg_attachment a;
	__u32 key = (__u32)ifindex;
	char name[IF_NAMESIZE] = "";
	int ret;

	if (bpf_map_lookup_elem(maps->attachments, &key, &a))
		return 0;
	if (!if_indextoname((unsigned int)ifindex, name)) {
		sg_forget(maps, ifindex);	/* gone, and its programs with it */
		return 0;
	}
	if (strncmp(name, a.ifname, sizeof(a.ifname)) != 0) {
		/* the index now names another interface: ours went with the old one */
		sg_forget(maps, ifindex);
		return 0;
	}
	ret = a.mode == SG_ATTACH_XDP ? xdp_detach(ifindex, name) :
					tc_detach(ifindex, name, (int)a.mode);
	if (!ret) {
		sg_info("detached %s from %s", sg_attach_mode_name((int)a.mode), name);
		sg_forget(maps, ifindex);
	}
	return ret;
}

int sg_detach_all(const struct sg_maps *maps)
{
	__u32 key, next;
	int failed = 0, have = 0;

	/* deleting while iterating restarts the walk; collect first */
	__u32 keys[SG_MAX_ATTACHMENTS];
	int n = 0;

	while (n < SG_MAX_ATTACHMENTS &&
	       bpf_map_get_next_key(maps->attachments, have ? &key : NULL, &next) == 0) {
		keys[n++] = next;
		key = next;
		have = 1;
	}
	for (int i = 0; i < n; i++)
		if (sg_detach(maps, (int)keys[i]))
			failed++;
	return failed;
}
