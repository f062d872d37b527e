// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * tap_wire - plays QEMU's part for a lab VM on a macvtap: copies Ethernet
 * frames between the macvtap's character device (/dev/tapN, what QEMU
 * opens) and a tap interface in the VM's network namespace (the guest's
 * NIC), so that a real TCP stack and real MTAs in that namespace send
 * through the macvtap as a guest does. What the VM sends is written to
 * /dev/tapN: the kernel transmits it on the macvtap (its TC egress), which
 * hands it to the lower device; what arrives for the macvtap's address is
 * read from /dev/tapN.
 *
 *   tap_wire MACVTAP_CHARDEV NETNS_PATH TAP_IFNAME
 *
 * TAP_IFNAME must already exist in NETNS_PATH (ip tuntap add ... mode tap);
 * tap_wire attaches to it and runs until killed. No virtio-net headers on
 * either side: every frame is whole, checksummed, at most 64 KiB. Exits 2
 * on bad arguments or a setup error (with what failed), 1 on an I/O error.
 */
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <linux/if_tun.h>

static int attach_tap(int fd, const char *name, const char *what)
{
	struct ifreq ifr;

	memset(&ifr, 0, sizeof(ifr));
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI;	/* no IFF_VNET_HDR: whole frames */
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
		fprintf(stderr, "tap_wire: TUNSETIFF on %s: %s\n", what, strerror(errno));
		return -1;
	}
	return 0;
}

/* One frame from one side to the other; a frame the other side refuses
 * (its queue full, the interface down) is lost, as on a wire. */
static int copy_frame(int from, int to, const char *what)
{
	static unsigned char frame[65536];
	ssize_t n = read(from, frame, sizeof(frame));

	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? 0 : (perror(what), -1);
	if (n > 0 && write(to, frame, (size_t)n) < 0 && errno != EAGAIN && errno != EIO &&
	    errno != ENOBUFS) {
		perror(what);
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct pollfd pfd[2];
	int macvtap, ns, tap;

	if (argc != 4) {
		fprintf(stderr, "usage: tap_wire MACVTAP_CHARDEV NETNS_PATH TAP_IFNAME\n");
		return 2;
	}
	macvtap = open(argv[1], O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (macvtap < 0) {
		fprintf(stderr, "tap_wire: %s: %s\n", argv[1], strerror(errno));
		return 2;
	}
	/* a macvtap queue opens with IFF_VNET_HDR: cleared, as for the tap */
	if (attach_tap(macvtap, "", argv[1]))
		return 2;
	ns = open(argv[2], O_RDONLY | O_CLOEXEC);
	if (ns < 0 || setns(ns, CLONE_NEWNET) < 0) {
		fprintf(stderr, "tap_wire: entering %s: %s\n", argv[2], strerror(errno));
		return 2;
	}
	close(ns);
	tap = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (tap < 0) {
		fprintf(stderr, "tap_wire: /dev/net/tun: %s\n", strerror(errno));
		return 2;
	}
	if (attach_tap(tap, argv[3], argv[3]))
		return 2;
	pfd[0] = (struct pollfd){ .fd = macvtap, .events = POLLIN };
	pfd[1] = (struct pollfd){ .fd = tap, .events = POLLIN };
	for (;;) {
		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			perror("tap_wire: poll");
			return 1;
		}
		if ((pfd[0].revents & POLLIN) && copy_frame(macvtap, tap, "tap_wire: to the VM"))
			return 1;
		if ((pfd[1].revents & POLLIN) && copy_frame(tap, macvtap, "tap_wire: from the VM"))
			return 1;
		if ((pfd[0].revents | pfd[1].revents) & (POLLERR | POLLHUP | POLLNVAL)) {
			fprintf(stderr, "tap_wire: a side was closed\n");
			return 1;
		}
	}
}
