/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* classifier_xdp.bpf.c - the classifier at XDP on a VM-facing interface. */
#include "classify.bpf.h"
#include <xdp/xdp_helpers.h>

struct {
	__uint(priority, 10);
	__uint(XDP_PASS, 1);
} XDP_RUN_CONFIG(smtpguard_xdp);

SEC("xdp")
int smtpguard_xdp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct sg_pkt pkt = {};

	switch (sg_classify(data, data_end, &pkt, 0)) {
	case SG_VERDICT_DROP:
		return XDP_DROP;
	case SG_VERDICT_RST:
		return XDP_TX;
	}
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
