/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* classifier_tc.bpf.c - the classifier at TC ingress on a VM-facing interface
 * (at TC egress on a macvtap, whose VM's frames cross no ingress hook).
 * smtpguard_tc runs either bucket (sg_lockfree_bucket); kernels before 5.12
 * load smtpguard_tc_locked instead, which holds no lock-free code. */
#define SG_CTX_TYPE struct __sk_buff
#define SG_CTX_IFINDEX(ctx) ((ctx)->ifindex)
#include "steer.bpf.h"

/* Headers a frame may need in the linear area: two VLAN tags, IPv6 with a
 * few extension headers, a full TCP header. */
#define SG_PULL_BYTES 256

/* The classifier, verified once per program (see sg_classify_ctx); the
 * locked one holds no lock-free code. */
__attribute__((noinline)) int sg_classify_tc(struct __sk_buff *skb, __u32 can_pull)
{
	return sg_classify_ctx(skb, can_pull, 1);
}

__attribute__((noinline)) int sg_classify_tc_locked(struct __sk_buff *skb, __u32 can_pull)
{
	return sg_classify_ctx(skb, can_pull, 0);
}

/* The program at TC egress of a macvtap (its record's mode says so: the one
 * program serves both sides, see attach.c). */
static __always_inline int sg_at_egress(struct __sk_buff *skb)
{
	__u32 ifindex = skb->ifindex;
	const struct sg_attachment *a = bpf_map_lookup_elem(&attachments, &ifindex);

	return a && a->mode == SG_ATTACH_TC_EGRESS;
}

/* What the classifier passes goes on to the filters after ours
 * (TC_ACT_UNSPEC: "continue"), as if ours were not there. */
static __always_inline int sg_tc(struct __sk_buff *skb, int lf_ok)
{
	int ret;

	ret = lf_ok ? sg_classify_tc(skb, 1) : sg_classify_tc_locked(skb, 1);
	if (SG_VERDICT_OF(ret) == SG_VERDICT_RETRY) {
		/* Headers may sit beyond the linear part (GSO frames from taps). */
		__u32 want = skb->len < SG_PULL_BYTES ? skb->len : SG_PULL_BYTES;

		bpf_skb_pull_data(skb, want);
		ret = lf_ok ? sg_classify_tc(skb, 0) : sg_classify_tc_locked(skb, 0);
	}
	switch (SG_VERDICT_OF(ret)) {
	case SG_VERDICT_DROP:
		return TC_ACT_SHOT;
	case SG_VERDICT_RST:
		/* back the way the frame came: a tap's egress reaches its VM,
		 * a macvtap's ingress (its receive path) does */
		return bpf_redirect(skb->ifindex, sg_at_egress(skb) ? BPF_F_INGRESS : 0);
	case SG_VERDICT_STEER:
		if (sg_at_egress(skb))
			return sg_steer_at_egress(skb, SG_VERDICT_L3(ret), SG_VERDICT_L4(ret));
		return sg_steer_from_vm(skb, SG_VERDICT_L3(ret), SG_VERDICT_L4(ret));
	}
	return TC_ACT_UNSPEC;
}

SEC("tc")
int smtpguard_tc(struct __sk_buff *skb)
{
	return sg_tc(skb, 1);
}

SEC("tc")
int smtpguard_tc_locked(struct __sk_buff *skb)
{
	return sg_tc(skb, 0);
}

/* TC ingress on the uplink: the MX's replies to the proxy's upstream sockets. */
SEC("tc")
int smtpguard_uplink(struct __sk_buff *skb)
{
	return sg_steer_from_uplink(skb);
}

/* TC ingress on a bridge whose ports are ours: see sg_steer_on_bridge. */
SEC("tc")
int smtpguard_bridge(struct __sk_buff *skb)
{
	return sg_steer_on_bridge(skb);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
