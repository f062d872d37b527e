/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* classifier_xdp.bpf.c - the classifier at XDP on a VM-facing interface.
 * smtpguard_xdp runs either bucket (sg_lockfree_bucket); kernels before
 * 5.12 load smtpguard_xdp_locked instead, which holds no lock-free code. */
#define SG_CTX_TYPE struct xdp_md
#define SG_CTX_IFINDEX(ctx) ((ctx)->ingress_ifindex)
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

/* The classifier, verified once per program (see sg_classify_ctx); the
 * locked one holds no lock-free code. */
__attribute__((noinline)) int sg_classify_xdp(struct xdp_md *ctx)
{
	return sg_classify_ctx(ctx, 0, 1);
}

__attribute__((noinline)) int sg_classify_xdp_locked(struct xdp_md *ctx)
{
	return sg_classify_ctx(ctx, 0, 0);
}

static __always_inline int sg_xdp(struct xdp_md *ctx, int lf_ok)
{
	int ret = lf_ok ? sg_classify_xdp(ctx) : sg_classify_xdp_locked(ctx);

	switch (SG_VERDICT_OF(ret)) {
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
