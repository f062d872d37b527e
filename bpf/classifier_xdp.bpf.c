/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* classifier_xdp.bpf.c - the classifier at XDP on a VM-facing interface.
 * smtpguard_xdp runs either bucket (sg_lockfree_bucket); kernels before
 * 5.12 load smtpguard_xdp_locked instead, which holds no lock-free code. */
#define SG_CTX_TYPE struct xdp_md
#include "classify.bpf.h"
#include <xdp/xdp_helpers.h>

struct {
	__uint(priority, 10);
	__uint(XDP_PASS, 1);
} XDP_RUN_CONFIG(smtpguard_xdp);

struct {
	__uint(priority, 10);
	__uint(XDP_PASS, 1);
} XDP_RUN_CONFIG(smtpguard_xdp_locked);

static __always_inline int sg_xdp(struct xdp_md *ctx, int lf_ok)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct sg_pkt pkt = {};

	switch (sg_classify(ctx, data, data_end, &pkt, 0, lf_ok, ctx->ingress_ifindex)) {
	case SG_VERDICT_DROP:
		return XDP_DROP;
	case SG_VERDICT_RST:
		return XDP_TX;
	}
	return XDP_PASS;
}

SEC("xdp")
int smtpguard_xdp(struct xdp_md *ctx)
{
	return sg_xdp(ctx, 1);
}

SEC("xdp")
int smtpguard_xdp_locked(struct xdp_md *ctx)
{
	return sg_xdp(ctx, 0);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
