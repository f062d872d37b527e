/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * probe.h - what the running kernel offers the classifier. The lock-free
 * token bucket needs BPF atomics with cmpxchg (5.12) and
 * bpf_ktime_get_coarse_ns (5.11); older kernels (Debian 11's 5.10) get the
 * spin-locked bucket on bpf_ktime_get_ns. Both are exact under concurrency.
 */
#ifndef SMTPGUARD_PROBE_H
#define SMTPGUARD_PROBE_H

/* 1 when the lock-free bucket can be loaded, else 0 (asked once). */
int sg_probe_lockfree_bucket(void);
/* The same, asked of the kernel every time. */
int sg_probe_lockfree_bucket_now(void);

#endif
