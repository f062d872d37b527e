/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* netwatch.c - rtnetlink link events (see netwatch.h). */
#include <errno.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include "log.h"
#include "netwatch.h"

int sg_netwatch_open(void)
{
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK,
				  .nl_groups = RTMGRP_LINK | RTMGRP_TC };
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, NETLINK_ROUTE);
	/* attaching to hundreds of interfaces at start raises two tc events
	 * each; a deeper queue spares the rescan an overflow costs */
	int rcvbuf = 4 << 20;

	if (fd < 0) {
		sg_err("opening an rtnetlink socket failed: %s", strerror(errno));
		return -1;
	}
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf)))
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		sg_err("subscribing to rtnetlink link events failed: %s", strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

static void link_message(struct nlmsghdr *nh, sg_link_cb cb, void *ctx)
{
	struct ifinfomsg *ifi = NLMSG_DATA(nh);
	int len = (int)nh->nlmsg_len - (int)NLMSG_LENGTH(sizeof(*ifi));
	char name[IF_NAMESIZE] = "";

	if (len < 0)
		return;
	for (struct rtattr *rta = IFLA_RTA(ifi); RTA_OK(rta, len); rta = RTA_NEXT(rta, len)) {
		if (rta->rta_type == IFLA_IFNAME) {
			size_t n = RTA_PAYLOAD(rta) < sizeof(name) - 1 ? RTA_PAYLOAD(rta) :
				   sizeof(name) - 1;

			memcpy(name, RTA_DATA(rta), n);
			name[n] = '\0';
		}
	}
	cb(nh->nlmsg_type == RTM_DELLINK ? SG_LINK_GONE : SG_LINK_NEW, ifi->ifi_index,
	   name, ctx);
}

int sg_netwatch_read(int fd, sg_link_cb cb, void *ctx)
{
	char buf[16384] __attribute__((aligned(NLMSG_ALIGNTO)));

	for (;;) {
		ssize_t n = recv(fd, buf, sizeof(buf), 0);

		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return 0;
			if (errno == ENOBUFS) {
				/* events were lost: the caller rescans */
				sg_warn("rtnetlink events overflowed; rescanning interfaces");
				return sg_netwatch_enumerate(cb, ctx);
			}
			sg_err("reading rtnetlink events failed: %s", strerror(errno));
			return -1;
		}
		for (struct nlmsghdr *nh = (struct nlmsghdr *)buf; NLMSG_OK(nh, (unsigned int)n);
		     nh = NLMSG_NEXT(nh, n)) {
			if (nh->nlmsg_type == RTM_NEWLINK || nh->nlmsg_type == RTM_DELLINK)
				link_message(nh, cb, ctx);
			else if ((nh->nlmsg_type == RTM_DELQDISC ||
				  nh->nlmsg_type == RTM_DELTFILTER) &&
				 nh->nlmsg_len >= NLMSG_LENGTH(sizeof(struct tcmsg)))
				cb(SG_LINK_TC_REMOVED,
				   ((struct tcmsg *)NLMSG_DATA(nh))->tcm_ifindex, "", ctx);
		}
	}
}

int sg_netwatch_enumerate(sg_link_cb cb, void *ctx)
{
	struct if_nameindex *ifs = if_nameindex();

	if (!ifs) {
		sg_err("listing interfaces failed: %s", strerror(errno));
		return -1;
	}
	for (struct if_nameindex *i = ifs; i->if_index; i++)
		cb(SG_LINK_NEW, (int)i->if_index, i->if_name, ctx);
	if_freenameindex(ifs);
	return 0;
}

/* One RTM_GETLINK answer for ifindex: its master's ifindex (0: none), its
 * kind ("bridge", "veth"... or ""), its MAC address, and (xdp_id not NULL)
 * the id of its XDP program (0: none). */
static int link_query_xdp(int ifindex, int *master, char *kind, size_t kind_len,
			  unsigned char mac[6], __u32 *xdp_id)
{
	struct {
		struct nlmsghdr nh;
		struct ifinfomsg ifi;
	} req = {
		.nh = { .nlmsg_len = sizeof(req), .nlmsg_type = RTM_GETLINK,
			.nlmsg_flags = NLM_F_REQUEST },
		.ifi = { .ifi_family = AF_UNSPEC, .ifi_index = ifindex },
	};
	char buf[16384] __attribute__((aligned(NLMSG_ALIGNTO)));
	struct nlmsghdr *nh = (struct nlmsghdr *)buf;
	struct ifinfomsg *ifi;
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE), len;
	ssize_t n;

	*master = 0;
	if (xdp_id)
		*xdp_id = 0;
	kind[0] = '\0';
	memset(mac, 0, 6);
	if (fd < 0)
		return -1;
	if (send(fd, &req, sizeof(req), 0) < 0 || (n = recv(fd, buf, sizeof(buf), 0)) < 0) {
		close(fd);
		return -1;
	}
	close(fd);
	if (!NLMSG_OK(nh, (size_t)n) || nh->nlmsg_type != RTM_NEWLINK)
		return -1;
	ifi = NLMSG_DATA(nh);
	len = (int)nh->nlmsg_len - (int)NLMSG_LENGTH(sizeof(*ifi));
	for (struct rtattr *rta = IFLA_RTA(ifi); RTA_OK(rta, len); rta = RTA_NEXT(rta, len)) {
		if (rta->rta_type == IFLA_MASTER && RTA_PAYLOAD(rta) >= sizeof(int)) {
			memcpy(master, RTA_DATA(rta), sizeof(int));
		} else if (rta->rta_type == IFLA_ADDRESS && RTA_PAYLOAD(rta) == 6) {
			memcpy(mac, RTA_DATA(rta), 6);
		} else if (rta->rta_type == IFLA_XDP && xdp_id) {
			int xlen = (int)RTA_PAYLOAD(rta);

			for (struct rtattr *x = RTA_DATA(rta); RTA_OK(x, xlen);
			     x = RTA_NEXT(x, xlen))
				if (x->rta_type == IFLA_XDP_PROG_ID &&
				    RTA_PAYLOAD(x) >= sizeof(__u32))
					memcpy(xdp_id, RTA_DATA(x), sizeof(__u32));
		} else if (rta->rta_type == IFLA_LINKINFO) {
			int ilen = (int)RTA_PAYLOAD(rta);

			for (struct rtattr *in = RTA_DATA(rta); RTA_OK(in, ilen);
			     in = RTA_NEXT(in, ilen))
				if (in->rta_type == IFLA_INFO_KIND)
					snprintf(kind, kind_len, "%.*s", (int)RTA_PAYLOAD(in),
						 (const char *)RTA_DATA(in));
		}
	}
	return 0;
}

static int link_query(int ifindex, int *master, char *kind, size_t kind_len,
		      unsigned char mac[6])
{
	return link_query_xdp(ifindex, master, kind, kind_len, mac, NULL);
}

int sg_link_xdp_prog_id(int ifindex, __u32 *prog_id)
{
	unsigned char mac[6];
	char kind[32];
	int master;

	return link_query_xdp(ifindex, &master, kind, sizeof(kind), mac, prog_id);
}

int sg_link_tx_only(int ifindex)
{
	unsigned char mac[6];
	char kind[32];
	int master;

	if (link_query(ifindex, &master, kind, sizeof(kind), mac))
		return -1;
	return strcmp(kind, "macvtap") == 0 || strcmp(kind, "ipvtap") == 0;
}

int sg_link_bridge_mac(int ifindex, unsigned char mac[6], int *bridge)
{
	char kind[32];
	int master, none;

	*bridge = 0;
	if (link_query(ifindex, &master, kind, sizeof(kind), mac))
		return -1;
	memset(mac, 0, 6);
	if (!master)
		return 0;
	if (link_query(master, &none, kind, sizeof(kind), mac))
		return -1;
	if (strncmp(kind, "bridge", sizeof(kind)) != 0) {
		memset(mac, 0, 6);
		return 0;
	}
	*bridge = master;
	return 1;
}
