/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* empty_tc.bpf.c - TC_ACT_OK and nothing else: the TC benchmarks' baseline. */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

SEC("tc")
int empty_tc(struct __sk_buff *skb)
{
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
