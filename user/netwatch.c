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
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK, .nl_groups = RTMGRP_LINK };
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, NETLINK_ROUTE);

	if (fd < 0) {
		sg_err("opening an rtnetlink socket failed: %s", strerror(errno));
		return -1;
	}
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
