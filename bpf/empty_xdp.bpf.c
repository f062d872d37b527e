/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* empty_xdp.bpf.c - XDP_PASS and nothing else: the benchmarks' baseline. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
int empty_xdp(struct xdp_md *ctx)
{
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
