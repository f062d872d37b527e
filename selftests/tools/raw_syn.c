// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * raw_syn - sends TCP SYNs with a source address of its choosing, as a VM
 * spoofing its neighbour's address (or random ones) would, for the source
 * check's end-to-end test. Whole Ethernet frames through an AF_PACKET
 * socket, so that the sender's own stack (its routes, its addresses) has no
 * say in the source.
 *
 *   raw_syn IFNAME DST_MAC SRC DST PORT COUNT
 *
 * SRC is an IPv4 or IPv6 address, or PREFIX/LEN (e.g. 10.200.0.0/16,
 * 2001:db8:99::/48): each SYN then has a random source in it. DST is of the
 * same family. Source ports and sequence numbers are random. Prints
 * "sent=N" and exits 0, or 2 for bad arguments or a setup error.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

static int usage(const char *why)
{
	fprintf(stderr, "raw_syn: %s\nusage: raw_syn IFNAME DST_MAC SRC[/LEN] DST PORT COUNT\n",
		why);
	return 2;
}

static uint32_t sum16(const uint8_t *p, size_t len, uint32_t sum)
{
	for (size_t i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)(p[i] << 8 | p[i + 1]);
	if (len & 1)
		sum += (uint32_t)p[len - 1] << 8;
	return sum;
}

static uint16_t fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

/* src with its host bits (beyond plen) random */
static void randomise(uint8_t *addr, int alen, int plen)
{
	uint8_t r[16];

	if (plen >= alen * 8)
		return;
	if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r))
		memset(r, 0x5a, sizeof(r));
	for (int bit = plen; bit < alen * 8; bit++) {
		uint8_t m = (uint8_t)(0x80 >> (bit % 8));

		addr[bit / 8] = (uint8_t)((addr[bit / 8] & ~m) | (r[bit / 8] & m));
	}
}

int main(int argc, char **argv)
{
	uint8_t frame[128], mac[6], src[16], dst[16], base[16];
	struct sockaddr_ll ll = { .sll_family = AF_PACKET };
	unsigned int m[6];
	int v6, alen, plen, fd, len;
	long count, sent = 0, port;
	char srcbuf[64], *slash;

	if (argc != 7)
		return usage("six arguments");
	if (sscanf(argv[2], "%x:%x:%x:%x:%x:%x", &m[0], &m[1], &m[2], &m[3], &m[4], &m[5]) != 6)
		return usage("DST_MAC is not aa:bb:cc:dd:ee:ff");
	for (int i = 0; i < 6; i++)
		mac[i] = (uint8_t)m[i];
	snprintf(srcbuf, sizeof(srcbuf), "%s", argv[3]);
	slash = strchr(srcbuf, '/');
	if (slash)
		*slash++ = '\0';
	v6 = strchr(srcbuf, ':') != NULL;
	alen = v6 ? 16 : 4;
	if (inet_pton(v6 ? AF_INET6 : AF_INET, srcbuf, base) != 1 ||
	    inet_pton(v6 ? AF_INET6 : AF_INET, argv[4], dst) != 1)
		return usage("SRC and DST must be addresses of one family");
	plen = slash ? atoi(slash) : alen * 8;
	port = strtol(argv[5], NULL, 10);
	count = strtol(argv[6], NULL, 10);
	if (plen < 0 || plen > alen * 8 || port < 1 || port > 65535 || count < 1)
		return usage("bad prefix length, port or count");
	ll.sll_ifindex = (int)if_nametoindex(argv[1]);
	ll.sll_halen = 6;
	memcpy(ll.sll_addr, mac, 6);
	if (!ll.sll_ifindex)
		return usage("no such interface");
	fd = socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL));
	if (fd < 0) {
		fprintf(stderr, "raw_syn: AF_PACKET socket: %s\n", strerror(errno));
		return 2;
	}

	for (long n = 0; n < count; n++) {
		uint8_t *ip = frame + 14, *tcp;
		uint32_t rnd[2], sum;
		int iphl = v6 ? 40 : 20;

		memset(frame, 0, sizeof(frame));
		memcpy(src, base, 16);
		randomise(src, alen, plen);
		if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
			rnd[0] = rnd[1] = (uint32_t)n;
		memcpy(frame, mac, 6);
		frame[6] = 0x02;	/* a locally administered sender MAC */
		frame[11] = 0x99;
		put16(frame + 12, v6 ? ETH_P_IPV6 : ETH_P_IP);
		tcp = ip + iphl;
		put16(tcp, (uint16_t)(1024 + rnd[0] % 60000));
		put16(tcp + 2, (uint16_t)port);
		memcpy(tcp + 4, &rnd[1], 4);
		tcp[12] = 5 << 4;
		tcp[13] = 0x02;		/* SYN */
		put16(tcp + 14, 64240);
		if (v6) {
			ip[0] = 0x60;
			put16(ip + 4, 20);
			ip[6] = IPPROTO_TCP;
			ip[7] = 64;
			memcpy(ip + 8, src, 16);
			memcpy(ip + 24, dst, 16);
			sum = sum16(ip + 8, 32, 0);
		} else {
			ip[0] = 0x45;
			put16(ip + 2, 40);
			ip[6] = 0x40;	/* DF */
			ip[8] = 64;
			ip[9] = IPPROTO_TCP;
			memcpy(ip + 12, src, 4);
			memcpy(ip + 16, dst, 4);
			put16(ip + 10, fold(sum16(ip, 20, 0)));
			sum = sum16(ip + 12, 8, 0);
		}
		sum += IPPROTO_TCP + 20;
		put16(tcp + 16, fold(sum16(tcp, 20, sum)));
		len = 14 + iphl + 20;
		if (len < 60)
			len = 60;
		if (sendto(fd, frame, (size_t)len, 0, (struct sockaddr *)&ll, sizeof(ll)) == len)
			sent++;
	}
	close(fd);
	printf("sent=%ld\n", sent);
	return 0;
}
