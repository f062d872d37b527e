/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* uplink.c - the uplink found from the default route (see uplink.h). */
#include <errno.h>
#include <fnmatch.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>
#include "uplink.h"

#define DUMP_BUF 32768

/* Sends a dump request of type for family; the socket, or -1. */
static int dump_request(int type, int family)
{
	struct {
		struct nlmsghdr nh;
		union {
			struct rtmsg rt;
			struct ifinfomsg ifi;
		} u;
	} req;
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);

	if (fd < 0)
		return -1;
	memset(&req, 0, sizeof(req));
	req.nh.nlmsg_len = NLMSG_LENGTH(type == RTM_GETROUTE ? sizeof(struct rtmsg) :
					 sizeof(struct ifinfomsg));
	req.nh.nlmsg_type = (__u16)type;
	req.nh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	if (type == RTM_GETROUTE)
		req.u.rt.rtm_family = (unsigned char)family;
	else
		req.u.ifi.ifi_family = AF_UNSPEC;
	if (send(fd, &req, req.nh.nlmsg_len, 0) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Calls fn for each message of a dump until its end; -1 on error. */
static int read_dump(int fd, void (*fn)(struct nlmsghdr *nh, void *ctx), void *ctx)
{
	static char buf[DUMP_BUF] __attribute__((aligned(NLMSG_ALIGNTO)));

	for (;;) {
		ssize_t n = recv(fd, buf, sizeof(buf), 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		for (struct nlmsghdr *nh = (struct nlmsghdr *)buf; NLMSG_OK(nh, (unsigned int)n);
		     nh = NLMSG_NEXT(nh, n)) {
			if (nh->nlmsg_type == NLMSG_DONE)
				return 0;
			if (nh->nlmsg_type == NLMSG_ERROR)
				return -1;
			fn(nh, ctx);
		}
	}
}

struct best_route {
	int ifindex;
	__u32 metric;
};

static void on_route(struct nlmsghdr *nh, void *ctx)
{
	struct best_route *best = ctx;
	struct rtmsg *rt = NLMSG_DATA(nh);
	int len = (int)RTM_PAYLOAD(nh), oif = 0;
	__u32 table = rt->rtm_table, metric = 0;

	if (nh->nlmsg_type != RTM_NEWROUTE || rt->rtm_dst_len != 0 || rt->rtm_type != RTN_UNICAST)
		return;
	for (struct rtattr *a = RTM_RTA(rt); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
		if (a->rta_type == RTA_OIF && RTA_PAYLOAD(a) >= 4)
			oif = *(int *)RTA_DATA(a);
		else if (a->rta_type == RTA_TABLE && RTA_PAYLOAD(a) >= 4)
			table = *(__u32 *)RTA_DATA(a);
		else if (a->rta_type == RTA_PRIORITY && RTA_PAYLOAD(a) >= 4)
			metric = *(__u32 *)RTA_DATA(a);
		else if (a->rta_type == RTA_MULTIPATH && !oif &&
			 RTA_PAYLOAD(a) >= sizeof(struct rtnexthop))
			oif = ((struct rtnexthop *)RTA_DATA(a))->rtnh_ifindex;
	}
	if (table != RT_TABLE_MAIN || !oif)
		return;
	if (!best->ifindex || metric < best->metric) {
		best->ifindex = oif;
		best->metric = metric;
	}
}

static int default_route_ifindex(int family)
{
	struct best_route best = { 0, 0 };
	int fd = dump_request(RTM_GETROUTE, family);

	if (fd < 0)
		return 0;
	if (read_dump(fd, on_route, &best))
		best.ifindex = 0;
	close(fd);
	return best.ifindex;
}

struct links {
	int bridge;			/* the ifindex whose ports are listed */
	int is_bridge;			/* that interface is a Linux bridge */
	char ports[SG_MAX_IFACE_PATTERNS][IF_NAMESIZE];
	int n_ports;
};

static void on_link(struct nlmsghdr *nh, void *ctx)
{
	struct links *l = ctx;
	struct ifinfomsg *ifi = NLMSG_DATA(nh);
	int len = (int)IFLA_PAYLOAD(nh), master = 0;
	const char *name = NULL;

	if (nh->nlmsg_type != RTM_NEWLINK)
		return;
	for (struct rtattr *a = IFLA_RTA(ifi); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
		if (a->rta_type == IFLA_IFNAME)
			name = RTA_DATA(a);
		else if (a->rta_type == IFLA_MASTER && RTA_PAYLOAD(a) >= 4)
			master = *(int *)RTA_DATA(a);
		else if (a->rta_type == IFLA_LINKINFO && ifi->ifi_index == l->bridge) {
			int ilen = (int)RTA_PAYLOAD(a);

			for (struct rtattr *i = RTA_DATA(a); RTA_OK(i, ilen); i = RTA_NEXT(i, ilen))
				if (i->rta_type == IFLA_INFO_KIND &&
				    strncmp(RTA_DATA(i), "bridge", RTA_PAYLOAD(i)) == 0 &&
				    RTA_PAYLOAD(i) >= 6)
					l->is_bridge = 1;
		}
	}
	if (master == l->bridge && name && l->n_ports < SG_MAX_IFACE_PATTERNS)
		snprintf(l->ports[l->n_ports++], IF_NAMESIZE, "%s", name);
}

static int vm_facing(const struct sg_config *cfg, const char *name)
{
	for (int i = 0; i < cfg->n_interfaces; i++)
		if (fnmatch(cfg->interfaces[i], name, 0) == 0)
			return 1;
	return 0;
}

/* An interface's name as an uplink pattern: taken literally, so a name
 * with fnmatch's special characters is not one. */
static int add_uplink(struct sg_config *cfg, const char *name, char *err, size_t errlen)
{
	if (strpbrk(name, "*?[\\") || strlen(name) >= SG_PATTERN_LEN) {
		snprintf(err, errlen, "the uplink found, %s, cannot be written as a pattern: set "
			 "uplink = a pattern that matches it", name);
		return -1;
	}
	snprintf(cfg->uplinks[cfg->n_uplinks++], SG_PATTERN_LEN, "%s", name);
	return 0;
}

int sg_uplink_detect(struct sg_config *cfg, char *why, size_t whylen, char *err, size_t errlen)
{
	int family = AF_INET, ifindex = default_route_ifindex(AF_INET);
	char name[IF_NAMESIZE];
	struct links links;
	size_t used;
	int fd;

	if (!ifindex) {
		family = AF_INET6;
		ifindex = default_route_ifindex(AF_INET6);
	}
	if (!ifindex || !if_indextoname((unsigned)ifindex, name)) {
		snprintf(err, errlen, "no default route to find the uplink by (ip route show "
			 "default shows none): set uplink = the interface the MX's replies come in "
			 "on");
		return -1;
	}
	memset(&links, 0, sizeof(links));
	links.bridge = ifindex;
	fd = dump_request(RTM_GETLINK, AF_UNSPEC);
	if (fd < 0 || read_dump(fd, on_link, &links)) {
		if (fd >= 0)
			close(fd);
		snprintf(err, errlen, "listing the interfaces failed: %s", strerror(errno));
		return -1;
	}
	close(fd);
	cfg->n_uplinks = 0;
	if (!links.is_bridge) {
		snprintf(why, whylen, "%s, the interface of the %s default route", name,
			 family == AF_INET ? "IPv4" : "IPv6");
		return add_uplink(cfg, name, err, errlen);
	}
	used = (size_t)snprintf(why, whylen, "the ports of bridge %s (the %s default route's) "
				"that are not VM-facing:", name, family == AF_INET ? "IPv4" : "IPv6");
	for (int i = 0; i < links.n_ports; i++) {
		if (vm_facing(cfg, links.ports[i]))
			continue;
		if (add_uplink(cfg, links.ports[i], err, errlen))
			return -1;
		if (used < whylen)
			used += (size_t)snprintf(why + used, whylen - used, " %s", links.ports[i]);
	}
	if (!cfg->n_uplinks) {
		snprintf(err, errlen, "the default route is on bridge %s, and every port of it "
			 "matches interfaces (VM-facing): set uplink = its physical port", name);
		return -1;
	}
	return 0;
}
