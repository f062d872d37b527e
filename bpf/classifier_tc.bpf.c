/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* classifier_tc.bpf.c - the classifier at TC ingress on a VM-facing interface. */
#include "classify.bpf.h"
#include <linux/pkt_cls.h>

/* Headers a frame may need in the linear area: two VLAN tags, IPv6 with a
 * few extension headers, a full TCP header. */
#define SG_PULL_BYTES 256

SEC("tc")
int smtpguard_tc(struct __sk_buff *skb)
{
	struct sg_pkt pkt = {};
	int verdict;

	verdict = sg_classify((void *)(long)skb->data, (void *)(long)skb->data_end, &pkt, 1);
	if (verdict == SG_VERDICT_RETRY) {
		/* Headers may sit beyond the linear part (GSO frames from taps). */
		__u32 want = skb->len < SG_PULL_BYTES ? skb->len : SG_PULL_BYTES;

		bpf_skb_pull_data(skb, want);
		verdict = sg_classify((void *)(long)skb->data,
				      (void *)(long)skb->data_end, &pkt, 0);
	}
	switch (verdict) {
	case SG_VERDICT_DROP:
		return TC_ACT_SHOT;
	case SG_VERDICT_RST:
		return bpf_redirect(skb->ifindex, 0);
	}
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
