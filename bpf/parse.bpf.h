/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * parse.bpf.h - the one packet parser of the classifier, shared by the XDP
 * and TC programs: Ethernet, up to two VLAN tags (802.1Q/802.1ad), IPv4 (with
 * options; only a first fragment carries ports), IPv6 (a bounded walk of
 * extension headers), TCP. Every read is bounds-checked against data_end.
 *
 * The rule for bad frames (documented in README.md):
 *  - not IPv4/IPv6, not TCP, a later fragment: not SMTP, passed;
 *  - an IPv4/IPv6 frame whose headers are truncated or inconsistent before the
 *    TCP ports can be read, an IPv6 header chain longer than SG_MAX_IPV6_EXT,
 *    or a TCP header to an SMTP port that is truncated or has a data offset
 *    below 5 or beyond the frame: malformed, counted, and dropped or passed
 *    per the malformed_mode setting (default drop: a frame the kernel's own
 *    stack would discard anyway, and one that could hide a port-25 flow).
 */
#ifndef SMTPGUARD_PARSE_BPF_H
#define SMTPGUARD_PARSE_BPF_H

#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/in.h>
#include <linux/tcp.h>
#include <bpf/bpf_endian.h>
#include <smtpguard/maps.h>

#define SG_MAX_VLAN_TAGS	2
#define SG_MAX_IPV6_EXT		8
/* tcp_len when the IP header carries no length (BIG TCP GSO frames) */
#define SG_TCP_LEN_UNKNOWN	0xffff

#ifndef ETH_P_8021Q
#define ETH_P_8021Q	0x8100
#endif
#ifndef ETH_P_8021AD
#define ETH_P_8021AD	0x88A8
#endif

enum sg_parse_result {
	SG_PARSE_NOT_TCP = 0,	/* not TCP over IP, or a later fragment */
	SG_PARSE_TCP,		/* TCP header located (ports and flags valid) */
	SG_PARSE_MALFORMED,	/* inconsistent lengths or versions */
	SG_PARSE_TRUNCATED,	/* headers run past the end of the data seen */
};

struct sg_vlan_hdr {
	__be16 tci;
	__be16 encap_proto;
};

struct sg_pkt {
	struct ethhdr *eth;
	void *l3;		/* struct iphdr or struct ipv6hdr */
	struct tcphdr *tcp;
	__u16 tcp_len;		/* TCP header and payload, from the IP lengths,
				 * or SG_TCP_LEN_UNKNOWN */
	__u8 family;		/* AF_INET (2) or AF_INET6 (10) */
	__u8 plain_l3;		/* IPv4 without options, IPv6 without extension headers */
	struct sg_src_key src;	/* IPv6, or IPv4-mapped IPv6: sg_pkt_source() */
};

static __always_inline int sg_parse_ipv6_ext(void **cursor, void *data_end,
					     __u8 *nexthdr, int *later_fragment)
{
	#pragma unroll
	for (int i = 0; i < SG_MAX_IPV6_EXT; i++) {
		__u8 *hdr = *cursor;
		__u32 len;

		switch (*nexthdr) {
		case IPPROTO_HOPOPTS:
		case IPPROTO_ROUTING:
		case IPPROTO_DSTOPTS:
			if ((void *)(hdr + 2) > data_end)
				return SG_PARSE_TRUNCATED;
			len = ((__u32)hdr[1] + 1) * 8;
			break;
		case IPPROTO_AH:
			if ((void *)(hdr + 2) > data_end)
				return SG_PARSE_TRUNCATED;
			len = ((__u32)hdr[1] + 2) * 4;
			break;
		case IPPROTO_FRAGMENT:
			if ((void *)(hdr + 8) > data_end)
				return SG_PARSE_TRUNCATED;
			/* fragment offset: upper 13 bits of bytes 2-3 */
			if ((((__u16)hdr[2] << 8) | hdr[3]) & 0xfff8)
				*later_fragment = 1;
			len = 8;
			break;
		default:
			return SG_PARSE_TCP;	/* chain ends: caller checks nexthdr */
		}
		*nexthdr = hdr[0];
		*cursor = hdr + len;
		if (*later_fragment)
			return SG_PARSE_NOT_TCP;
	}
	switch (*nexthdr) {
	case IPPROTO_HOPOPTS:
	case IPPROTO_ROUTING:
	case IPPROTO_DSTOPTS:
	case IPPROTO_AH:
	case IPPROTO_FRAGMENT:
		return SG_PARSE_MALFORMED;	/* longer chain than we walk */
	}
	return SG_PARSE_TCP;
}

/* Locates the TCP header of a frame. Returns enum sg_parse_result. */
static __always_inline int sg_parse(void *data, void *data_end, struct sg_pkt *pkt)
{
	struct ethhdr *eth = data;
	void *cursor = eth + 1;
	__u16 proto;

	if (cursor > data_end)
		return SG_PARSE_NOT_TCP;	/* a runt: not IP, nothing to classify */
	pkt->eth = eth;
	proto = eth->h_proto;

	#pragma unroll
	for (int i = 0; i < SG_MAX_VLAN_TAGS; i++) {
		struct sg_vlan_hdr *vlan = cursor;

		if (proto != bpf_htons(ETH_P_8021Q) && proto != bpf_htons(ETH_P_8021AD))
			break;
		if ((void *)(vlan + 1) > data_end)
			return SG_PARSE_NOT_TCP;
		proto = vlan->encap_proto;
		cursor = vlan + 1;
	}

	pkt->l3 = cursor;
	if (proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = cursor;
		__u32 ihl_bytes, tot_len;

		if ((void *)(ip + 1) > data_end)
			return SG_PARSE_TRUNCATED;
		ihl_bytes = (__u32)ip->ihl * 4;
		tot_len = bpf_ntohs(ip->tot_len);
		/* tot_len 0: an IPv4 BIG TCP GSO frame, whose length only the skb knows */
		if (ip->version != 4 || ihl_bytes < sizeof(*ip) ||
		    (tot_len && tot_len < ihl_bytes))
			return SG_PARSE_MALFORMED;
		if (ip->protocol != IPPROTO_TCP)
			return SG_PARSE_NOT_TCP;
		if (ip->frag_off & bpf_htons(0x1fff))
			return SG_PARSE_NOT_TCP;	/* later fragment: no ports */
		cursor = (void *)ip + ihl_bytes;
		pkt->family = 2;
		pkt->plain_l3 = ihl_bytes == sizeof(*ip);
		pkt->tcp_len = tot_len ? tot_len - ihl_bytes : SG_TCP_LEN_UNKNOWN;
	} else if (proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = cursor;
		int later_fragment = 0, ret;
		__u32 ext_len;
		__u8 nexthdr;

		if ((void *)(ip6 + 1) > data_end)
			return SG_PARSE_TRUNCATED;
		if (ip6->version != 6)
			return SG_PARSE_MALFORMED;
		nexthdr = ip6->nexthdr;
		cursor = ip6 + 1;
		ret = sg_parse_ipv6_ext(&cursor, data_end, &nexthdr, &later_fragment);
		if (ret != SG_PARSE_TCP)
			return ret;
		if (nexthdr != IPPROTO_TCP)
			return SG_PARSE_NOT_TCP;
		pkt->family = 10;
		pkt->plain_l3 = cursor == (void *)(ip6 + 1);
		/* payload_len counts extension headers too */
		ext_len = (__u32)((void *)cursor - (void *)(ip6 + 1));
		if (!ip6->payload_len)
			pkt->tcp_len = SG_TCP_LEN_UNKNOWN;	/* jumbogram / BIG TCP */
		else if (bpf_ntohs(ip6->payload_len) < ext_len)
			return SG_PARSE_MALFORMED;
		else
			pkt->tcp_len = bpf_ntohs(ip6->payload_len) - ext_len;
	} else {
		return SG_PARSE_NOT_TCP;
	}

	pkt->tcp = cursor;
	/* ports and flags are within the first 14 bytes of the TCP header */
	if (cursor + sizeof(struct tcphdr) > data_end)
		return SG_PARSE_TRUNCATED;
	return SG_PARSE_TCP;
}

/* Fills pkt->src from the IP header sg_parse() found; done only for SMTP
 * frames, so that other traffic does not pay for it. */
static __always_inline int sg_pkt_source(struct sg_pkt *pkt, void *data_end)
{
	if (pkt->family == 2) {
		struct iphdr *ip = pkt->l3;

		if ((void *)(ip + 1) > data_end)
			return -1;
		__builtin_memset(&pkt->src, 0, 10);
		pkt->src.addr[10] = 0xff;
		pkt->src.addr[11] = 0xff;
		__builtin_memcpy(&pkt->src.addr[12], &ip->saddr, 4);
	} else {
		struct ipv6hdr *ip6 = pkt->l3;

		if ((void *)(ip6 + 1) > data_end)
			return -1;
		__builtin_memcpy(pkt->src.addr, &ip6->saddr, 16);
	}
	return 0;
}

#endif /* SMTPGUARD_PARSE_BPF_H */
