/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* probe.c - kernel feature probes for the classifier (see probe.h). */
#include <string.h>
#include <unistd.h>
#include <linux/bpf.h>
#include <bpf/bpf.h>
#include "probe.h"

static struct bpf_insn insn(__u8 code, __u8 dst, __u8 src, __s16 off, __s32 imm)
{
	struct bpf_insn i;

	memset(&i, 0, sizeof(i));
	i.code = code;
	i.dst_reg = dst & 0xf;
	i.src_reg = src & 0xf;
	i.off = off;
	i.imm = imm;
	return i;
}

int sg_probe_lockfree_bucket(void)
{
	static int known = -1;

	if (known < 0)
		known = sg_probe_lockfree_bucket_now();
	return known;
}

int sg_probe_lockfree_bucket_now(void)
{
	/* *(u64 *)(fp - 8) = 0; r0 = 0; r1 = 1;
	 * r0 = cmpxchg((u64 *)(fp - 8), r0, r1); call ktime_get_coarse_ns;
	 * r0 = 0; exit */
	struct bpf_insn prog[] = {
		insn(BPF_ST | BPF_MEM | BPF_DW, BPF_REG_10, 0, -8, 0),
		insn(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, 0),
		insn(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_1, 0, 0, 1),
		insn(BPF_STX | BPF_ATOMIC | BPF_DW, BPF_REG_10, BPF_REG_1, -8, BPF_CMPXCHG),
		insn(BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_ktime_get_coarse_ns),
		insn(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, 0),
		insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0),
	};
	int fd = bpf_prog_load(BPF_PROG_TYPE_SCHED_CLS, "sg_probe", "GPL", prog,
			       sizeof(prog) / sizeof(prog[0]), NULL);

	if (fd < 0)
		return 0;
	close(fd);
	return 1;
}
